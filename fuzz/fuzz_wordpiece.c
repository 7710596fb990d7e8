/* fuzz_wordpiece.c - libFuzzer target for the WordPiece tokenizer
 * (src/text/wordpiece.c) on arbitrary bytes with a fixed vocabulary. The
 * input (up to its first NUL) is a text: attn_wordpiece_encode rejects it
 * with ATTN_BAD_PARAM exactly when it is not valid UTF-8 (decided here by
 * the JSON reader's independent check) and otherwise returns
 * [CLS] pieces [SEP] with ids inside the vocabulary, offsets inside the
 * text, the count the size query gave, and truncation that keeps the first
 * pieces of the untruncated encoding. */
#include "formats/json.h"

#include <attn/text.h>

#include <stdlib.h>
#include <string.h>

static const char vocab_text[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nun\n##aff\n##able\nhello\nworld\n##s\n##ing\n"
    "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np\nq\nr\ns\nt\nu\nv\nw\nx\ny\nz\n"
    "##a\n##b\n##c\n##d\n##e\n##i\n##n\n##o\n##r\n##t\n0\n1\n2\n9\n##0\n##1\n,\n.\n!\n?\n'\n"
    "-\n(\n)\n\xe4\xb8\xad\n\xe6\x96\x87\n\xc3\xa9\n\xce\xb1\n##\xce\xb2\n\xd0\xb4\n";

enum { BIG = 1 << 20, MAX = 64, SHORT = 6 };

static void check(int ok)
{
    if (!ok) abort();
}

static attn_wordpiece *vocab(void)
{
    static attn_wordpiece *t;
    if (!t) check(attn_wordpiece_load_memory(vocab_text, sizeof vocab_text - 1, &t) == ATTN_OK);
    return t;
}

/* The encoding of text with max_len MAX: its shape, ids and offsets. */
static void check_encoding(const attn_wordpiece *t, size_t len, const int32_t *ids,
                           const int64_t *off, int64_t n)
{
    int64_t V = attn_wordpiece_vocab_size(t);
    check(n >= 2 && n <= MAX);
    check(ids[0] == attn_wordpiece_special(t, "[CLS]") && ids[n - 1] == attn_wordpiece_special(t, "[SEP]"));
    check(off[0] == -1 && off[1] == -1 && off[2 * (n - 1)] == -1 && off[2 * (n - 1) + 1] == -1);
    for (int64_t i = 1; i < n - 1; i++) {
        check(ids[i] >= 0 && ids[i] < V);
        check(off[2 * i] >= 0 && off[2 * i] < off[2 * i + 1] && off[2 * i + 1] <= (int64_t)len);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const attn_wordpiece *t = vocab();
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);
    int valid = attn__json_utf8_ok(text, len);
    int64_t n_full = -1, n = -1, n_short = -1;
    attn_status st = attn_wordpiece_encode(t, text, BIG, NULL, 0, &n_full, NULL);
    if (!valid) {
        check(st == ATTN_BAD_PARAM && n_full == -1 && attn_last_error()[0] != '\0');
        free(text);
        return 0;
    }
    check(st == ATTN_OK && n_full >= 2);
    int32_t ids[MAX], ids_short[SHORT];
    int64_t off[2 * MAX];
    check(attn_wordpiece_encode(t, text, MAX, ids, MAX, &n, off) == ATTN_OK);
    check(n == (n_full < MAX ? n_full : MAX));
    check_encoding(t, len, ids, off, n);
    /* truncation keeps the first pieces */
    check(attn_wordpiece_encode(t, text, SHORT, ids_short, SHORT, &n_short, NULL) == ATTN_OK);
    check(n_short == (n < SHORT ? n : SHORT));
    check(memcmp(ids, ids_short, (size_t)(n_short - 1) * sizeof ids[0]) == 0);
    check(ids_short[n_short - 1] == ids[n - 1]);
    free(text);
    return 0;
}
