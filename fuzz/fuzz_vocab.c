/* fuzz_vocab.c - libFuzzer target for the WordPiece vocabulary reader and
 * the tokenizer (src/text/wordpiece.c). The first half of the input is a
 * vocabulary, the second a text: the vocabulary loads or fails with
 * ATTN_BAD_FILE; a loaded one tokenizes the text (or rejects invalid UTF-8
 * with ATTN_BAD_PARAM) into ids that are all inside the vocabulary. */
#include <attn/text.h>

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    size_t half = size / 2;
    attn_wordpiece *t = NULL;
    attn_status st = attn_wordpiece_load_memory((const char *)data, half, &t);
    if (st != ATTN_OK) {
        check((st == ATTN_BAD_FILE || st == ATTN_NO_MEMORY) && t == NULL);
        return 0;
    }
    char *text = malloc(size - half + 1);
    memcpy(text, data + half, size - half);
    text[size - half] = '\0';
    int32_t ids[64];
    int64_t n = 0, offsets[64 * 2];
    st = attn_wordpiece_encode(t, text, 64, ids, 64, &n, offsets);
    check(st == ATTN_OK || st == ATTN_BAD_PARAM);
    for (int64_t i = 0; st == ATTN_OK && i < n; i++)
        check(ids[i] >= 0 && ids[i] < attn_wordpiece_vocab_size(t));
    free(text);
    attn_wordpiece_free(t);
    return 0;
}
