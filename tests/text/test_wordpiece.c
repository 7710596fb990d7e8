/* test_wordpiece.c - the WordPiece tokenizer (attn/text.h): encodings of a
 * small hand-written vocabulary against hand-computed ids and byte offsets
 * (longest match, "##", [UNK], punctuation, accents, CJK, Hangul, special
 * tokens in the text, the reference's alignment of reordered marks,
 * truncation), the generated Unicode tables against known properties, a
 * catalogue of corrupt vocabularies (each with its own message), truncation
 * and byte-substitution sweeps of a vocabulary file, argument checks (every
 * status code), and out-of-memory injection at every allocation. The
 * comparison with Hugging Face's tokenizer is python/tests/test_tokenizer.py. */
#include "nn_test.h"
#include "text/unicode_data.h"

#include <attn/text.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */

/* The hand-written vocabulary: id = index. */
static const char *const small_vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",           /* 0-4 */
    "un", "##aff", "##able", "hello", "world",               /* 5-9 */
    ",", "!", ".", "cafe", "##s",                            /* 10-14 */
    "\xe4\xb8\xad", "\xe6\x96\x87", "x", "##x", "i",         /* 15-19: 中 文 */
    "\xcf\x83", "\xcf\x82", "a", "##a", "xy",                /* 20-24: σ ς */
    "##yz", "\xe1\x84\x80", "##\xe1\x85\xa1",                /* 25-27: ᄀ ##ᅡ */
    "##\xf0\x9e\xa5\x8a", "\xef\xac\x81", "\xc3\x9f",        /* 28-30: ##U+1E94A ﬁ ß */
    "\xef\xbd\x81\xef\xbd\x82\xef\xbd\x83", "[", "]",        /* 31-33: ａｂｃ */
};
enum { SMALL_N = sizeof small_vocab / sizeof small_vocab[0] };

/* The vocabulary file's bytes (malloc'ed, exact size), lines joined by sep. */
static char *vocab_text(const char *const *tokens, int n, const char *sep, size_t *size)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(tokens[i]) + strlen(sep);
    char *buf = malloc(total + 1), *p = buf;
    for (int i = 0; i < n; i++) p += sprintf(p, "%s%s", tokens[i], sep);
    *size = total;
    return buf;
}

static attn_wordpiece *small_tok(void)
{
    size_t size;
    char *text = vocab_text(small_vocab, SMALL_N, "\n", &size);
    attn_wordpiece *t = NULL;
    T_EQ_STATUS(attn_wordpiece_load_memory(text, size, &t), ATTN_OK);
    free(text);
    return t;
}

/* Encodes text with max_len and checks ids (and offsets as begin/end pairs)
 * against the expectation; want_n entries. */
static void check_encode(const attn_wordpiece *t, const char *text, int64_t max_len,
                         const int32_t *want_ids, const int64_t *want_offs, int64_t want_n)
{
    int64_t cap = want_n;
    t_buf ib = t_buf_alloc((size_t)cap * sizeof(int32_t));
    t_buf ob = t_buf_alloc((size_t)cap * 2 * sizeof(int64_t));
    int64_t n = -1;
    attn_status st = attn_wordpiece_encode(t, text, max_len, ib.data, cap, &n, ob.data);
    T_EQ_STATUS(st, ATTN_OK);
    T_EQ_INT(n, want_n);
    const int32_t *ids = ib.data;
    const int64_t *offs = ob.data;
    for (int64_t i = 0; st == ATTN_OK && i < n && i < want_n; i++) {
        if (ids[i] != want_ids[i] || offs[2 * i] != want_offs[2 * i] ||
            offs[2 * i + 1] != want_offs[2 * i + 1])
            t_fail(__FILE__, __LINE__, "'%s' piece %lld: id %d [%lld, %lld), want %d [%lld, %lld)",
                   text, (long long)i, ids[i], (long long)offs[2 * i],
                   (long long)offs[2 * i + 1], want_ids[i], (long long)want_offs[2 * i],
                   (long long)want_offs[2 * i + 1]);
    }
    T_CHECK(t_buf_guards_ok(&ib));
    T_CHECK(t_buf_guards_ok(&ob));
    t_buf_free(&ib);
    t_buf_free(&ob);
}

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))
#define CHECK_ENC(t, text, max_len, ids, offs)                 \
    do {                                                       \
        T_EQ_INT(N_OF(offs), 2 * N_OF(ids));                   \
        check_encode((t), (text), (max_len), (ids), (offs), N_OF(ids)); \
    } while (0)

/* ---- encodings ------------------------------------------------------------------- */

T_TEST(wordpiece_hand_computed)
{
    attn_wordpiece *t = small_tok();
    if (t == NULL) return;
    /* longest match first with ## continuations */
    CHECK_ENC(t, "unaffable", 256, ((int32_t[]){2, 5, 6, 7, 3}),
              ((int64_t[]){-1, -1, 0, 2, 2, 5, 5, 9, -1, -1}));
    CHECK_ENC(t, "xx", 256, ((int32_t[]){2, 17, 18, 3}), ((int64_t[]){-1, -1, 0, 1, 1, 2, -1, -1}));
    /* greedy, no backtracking: xy then no ##z, although x ##yz would do */
    CHECK_ENC(t, "xyz", 256, ((int32_t[]){2, 1, 3}), ((int64_t[]){-1, -1, 0, 3, -1, -1}));
    /* unknown word; punctuation split off; case folded; spaces */
    CHECK_ENC(t, "Hello, World! qqq", 256, ((int32_t[]){2, 8, 10, 9, 11, 1, 3}),
              ((int64_t[]){-1, -1, 0, 5, 5, 6, 7, 12, 12, 13, 14, 17, -1, -1}));
    /* accents: precomposed and combining (é = 2 bytes, U+0301 = 2 bytes) */
    CHECK_ENC(t, "Caf\xc3\xa9s CAFE cafe\xcc\x81", 256, ((int32_t[]){2, 13, 14, 13, 13, 3}),
              ((int64_t[]){-1, -1, 0, 5, 5, 6, 7, 11, 12, 16, -1, -1}));
    /* CJK ideographs are words of their own */
    CHECK_ENC(t, "\xe4\xb8\xad\xe6\x96\x87x", 256, ((int32_t[]){2, 15, 16, 17, 3}),
              ((int64_t[]){-1, -1, 0, 3, 3, 6, 6, 7, -1, -1}));
    /* U+0130 is i; capital sigma is always σ */
    CHECK_ENC(t, "\xc4\xb0 \xce\xa3 \xcf\x82", 256, ((int32_t[]){2, 19, 20, 21, 3}),
              ((int64_t[]){-1, -1, 0, 2, 3, 5, 6, 8, -1, -1}));
    /* special tokens in the text, case-sensitive, even inside a word */
    CHECK_ENC(t, "a[MASK]a [mask]", 256, ((int32_t[]){2, 22, 4, 22, 32, 1, 33, 3}),
              ((int64_t[]){-1, -1, 0, 1, 1, 7, 7, 8, 9, 10, 10, 14, 14, 15, -1, -1}));
    /* dropped characters join words (U+200B, U+0001); tabs/newlines are spaces */
    CHECK_ENC(t, "hel\xe2\x80\x8blo\t\n", 256, ((int32_t[]){2, 8, 3}),
              ((int64_t[]){-1, -1, 0, 8, -1, -1}));
    CHECK_ENC(t, "hello\x01world", 256, ((int32_t[]){2, 1, 3}),
              ((int64_t[]){-1, -1, 0, 11, -1, -1}));
    /* Hangul syllables decompose into jamo, each piece keeps the syllable's bytes */
    CHECK_ENC(t, "\xea\xb0\x80", 256, ((int32_t[]){2, 26, 27, 3}),
              ((int64_t[]){-1, -1, 0, 3, 0, 3, -1, -1}));
    /* ligature and ß stay; fullwidth letters lowercase to fullwidth */
    CHECK_ENC(t, "\xef\xac\x81 \xc3\x9f \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", 256,
              ((int32_t[]){2, 29, 30, 31, 3}), ((int64_t[]){-1, -1, 0, 3, 4, 6, 7, 16, -1, -1}));
    /* empty, spaces only, dropped only */
    CHECK_ENC(t, "", 256, ((int32_t[]){2, 3}), ((int64_t[]){-1, -1, -1, -1}));
    CHECK_ENC(t, " \t\r\n\xe3\x80\x80", 256, ((int32_t[]){2, 3}), ((int64_t[]){-1, -1, -1, -1}));
    CHECK_ENC(t, "\xe2\x80\x8b", 256, ((int32_t[]){2, 3}), ((int64_t[]){-1, -1, -1, -1}));
    attn_wordpiece_free(t);
}

/* U+1E94A (combining class 7, not Mn in Unicode 8) after U+0301 (230, Mn):
 * reordering puts it first, and the reference then aligns it with the
 * first source character of the run, U+0301 at bytes [1, 3). */
T_TEST(wordpiece_reordered_marks_alignment)
{
    attn_wordpiece *t = small_tok();
    if (t == NULL) return;
    CHECK_ENC(t, "x\xcc\x81\xf0\x9e\xa5\x8a", 256, ((int32_t[]){2, 17, 28, 3}),
              ((int64_t[]){-1, -1, 0, 1, 1, 3, -1, -1}));
    CHECK_ENC(t, "x\xf0\x9e\xa5\x8a\xcc\x81", 256, ((int32_t[]){2, 17, 28, 3}),
              ((int64_t[]){-1, -1, 0, 1, 1, 5, -1, -1}));
    /* a run longer than the encoder's inline buffer (200 marks) */
    char text[1 + 2 * 200 + 4 + 1] = "x";
    for (int i = 0; i < 200; i++) memcpy(text + 1 + 2 * i, "\xcc\x81", 2);
    memcpy(text + 401, "\xf0\x9e\xa5\x8a", 5);
    CHECK_ENC(t, text, 256, ((int32_t[]){2, 17, 28, 3}), ((int64_t[]){-1, -1, 0, 1, 1, 3, -1, -1}));
    attn_wordpiece_free(t);
}

T_TEST(wordpiece_long_words_and_truncation)
{
    attn_wordpiece *t = small_tok();
    if (t == NULL) return;
    char text[ATTN_WORDPIECE_MAX_WORD_CHARS + 2];
    memset(text, 'a', sizeof text - 1);
    text[ATTN_WORDPIECE_MAX_WORD_CHARS + 1] = '\0';
    /* 101 characters: one [UNK] over the whole word */
    CHECK_ENC(t, text, 256, ((int32_t[]){2, 1, 3}), ((int64_t[]){-1, -1, 0, 101, -1, -1}));
    /* 100 characters: a ##a ... ##a */
    text[ATTN_WORDPIECE_MAX_WORD_CHARS] = '\0';
    int32_t ids[102];
    int64_t offs[204];
    ids[0] = 2, ids[101] = 3, ids[1] = 22;
    offs[0] = offs[1] = offs[202] = offs[203] = -1;
    for (int i = 0; i < 100; i++) {
        if (i > 0) ids[1 + i] = 23;
        offs[2 + 2 * i] = i, offs[3 + 2 * i] = i + 1;
    }
    check_encode(t, text, 256, ids, offs, 102);
    /* truncation keeps the first max_len - 2 pieces, even mid-word */
    check_encode(t, text, 5, (int32_t[]){2, 22, 23, 23, 3},
                 (int64_t[]){-1, -1, 0, 1, 1, 2, 2, 3, -1, -1}, 5);
    CHECK_ENC(t, "unaffable", 3, ((int32_t[]){2, 5, 3}), ((int64_t[]){-1, -1, 0, 2, -1, -1}));
    CHECK_ENC(t, "a a a a a", 4, ((int32_t[]){2, 22, 22, 3}),
              ((int64_t[]){-1, -1, 0, 1, 2, 3, -1, -1}));
    CHECK_ENC(t, "a a a a a", 2, ((int32_t[]){2, 3}), ((int64_t[]){-1, -1, -1, -1}));
    attn_wordpiece_free(t);
}

T_TEST(wordpiece_vocab_variants)
{
    /* CRLF lines and no final newline load the same tokens */
    size_t size;
    char *crlf = vocab_text(small_vocab, SMALL_N, "\r\n", &size);
    attn_wordpiece *t = NULL;
    T_EQ_STATUS(attn_wordpiece_load_memory(crlf, size - 2, &t), ATTN_OK);
    T_EQ_INT(attn_wordpiece_vocab_size(t), SMALL_N);
    for (int i = 0; t != NULL && i < SMALL_N; i++) {
        T_CHECK(strcmp(attn_wordpiece_token(t, i), small_vocab[i]) == 0);
        T_EQ_INT(attn_wordpiece_id(t, small_vocab[i]), i);
    }
    T_EQ_INT(attn_wordpiece_special(t, "[MASK]"), 4);
    T_EQ_INT(attn_wordpiece_special(t, "[CLS]"), 2);
    T_EQ_INT(attn_wordpiece_special(t, "[FOO]"), -1);
    T_EQ_INT(attn_wordpiece_special(t, "un"), -1);
    T_EQ_INT(attn_wordpiece_id(t, "##ab"), -1);
    T_CHECK(attn_wordpiece_token(t, -1) == NULL);
    T_CHECK(attn_wordpiece_token(t, SMALL_N) == NULL);
    attn_wordpiece_free(t);
    free(crlf);
    /* without [MASK], "[MASK]" in a text is ordinary text */
    const char *no_mask[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[", "]", "mask"};
    char *text = vocab_text(no_mask, 7, "\n", &size);
    T_EQ_STATUS(attn_wordpiece_load_memory(text, size, &t), ATTN_OK);
    T_EQ_INT(attn_wordpiece_special(t, "[MASK]"), -1);
    CHECK_ENC(t, "[MASK]", 256, ((int32_t[]){2, 4, 6, 5, 3}),
              ((int64_t[]){-1, -1, 0, 1, 1, 5, 5, 6, -1, -1}));
    attn_wordpiece_free(t);
    free(text);
}

T_TEST(wordpiece_load_from_file)
{
    size_t size;
    char *text = vocab_text(small_vocab, SMALL_N, "\n", &size);
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.txt", t_tmpdir());
    FILE *fp = fopen(path, "wb");
    T_CHECK(fp != NULL);
    if (fp == NULL) return;
    T_EQ_INT(fwrite(text, 1, size, fp), size);
    fclose(fp);
    attn_wordpiece *t = NULL;
    T_EQ_STATUS(attn_wordpiece_load(path, &t), ATTN_OK);
    T_EQ_INT(attn_wordpiece_vocab_size(t), SMALL_N);
    CHECK_ENC(t, "unaffable", 256, ((int32_t[]){2, 5, 6, 7, 3}),
              ((int64_t[]){-1, -1, 0, 2, 2, 5, 5, 9, -1, -1}));
    attn_wordpiece_free(t);
    t = NULL;
    snprintf(path, sizeof path, "%s/no-such-vocab.txt", t_tmpdir());
    T_EQ_STATUS(attn_wordpiece_load(path, &t), ATTN_IO);
    T_CHECK(t == NULL && strstr(attn_last_error(), "cannot open") != NULL);
    T_EQ_STATUS(attn_wordpiece_load(t_tmpdir(), &t), ATTN_IO);
    T_CHECK(t == NULL && strstr(attn_last_error(), "not a regular file") != NULL);
    /* a FIFO without a writer: refused at once (an alarm ends a hang) */
    snprintf(path, sizeof path, "%s/vocab.fifo", t_tmpdir());
    T_EQ_INT(mkfifo(path, 0600), 0);
    alarm(20);
    T_EQ_STATUS(attn_wordpiece_load(path, &t), ATTN_IO);
    alarm(0);
    T_CHECK(t == NULL && strstr(attn_last_error(), "it is a FIFO, not a regular file") != NULL);
    free(text);
}

/* ---- the Unicode tables ------------------------------------------------------------ */

static bool maps_to(int (*f)(uint32_t, uint32_t *), uint32_t c, const uint32_t *want, int n)
{
    uint32_t out[ATTN__UC_MAX_NFD > ATTN__UC_MAX_LOWER ? ATTN__UC_MAX_NFD : ATTN__UC_MAX_LOWER];
    int got = f(c, out);
    if (got != n) return false;
    for (int i = 0; i < n; i++)
        if (out[i] != want[i]) return false;
    return true;
}

/* Known properties, including the version quirks of the reference:
 * categories of Unicode 8.0, NFD of 9.0, lowercase of 17.0. */
T_TEST(wordpiece_unicode_tables)
{
    T_CHECK(attn__uc_is_removed(0x00) && attn__uc_is_removed(0xFFFD));
    T_CHECK(attn__uc_is_removed(0x00AD) && attn__uc_is_removed(0x200B)); /* Cf */
    T_CHECK(attn__uc_is_removed(0x0085) && attn__uc_is_removed(0x001F)); /* Cc */
    T_CHECK(attn__uc_is_removed(0xE000) && attn__uc_is_removed(0x10FFFD)); /* Co */
    T_CHECK(!attn__uc_is_removed(0x0890)); /* Cf, but new in 14.0 */
    T_CHECK(!attn__uc_is_removed('\t') && !attn__uc_is_removed('\n') && !attn__uc_is_removed('\r'));
    T_CHECK(!attn__uc_is_removed(0x0378)); /* unassigned: kept */
    T_CHECK(attn__uc_is_space(' ') && attn__uc_is_space(0x3000) && attn__uc_is_space(0x00A0));
    T_CHECK(attn__uc_is_space(0x2028) && !attn__uc_is_space(0x200B));
    T_CHECK(!attn__uc_is_space(0x1C) && !attn__uc_is_space(0x180E));
    T_CHECK(attn__uc_is_punct('$') && attn__uc_is_punct('`') && attn__uc_is_punct('~'));
    T_CHECK(attn__uc_is_punct(0x00BF) && attn__uc_is_punct(0x3001) && attn__uc_is_punct(0xFF01));
    T_CHECK(attn__uc_is_punct(0x166D) && attn__uc_is_punct(0x111C9)); /* Po in 8.0 */
    T_CHECK(!attn__uc_is_punct(0x2E4F) && !attn__uc_is_punct(0x20AC) && !attn__uc_is_punct('a'));
    T_CHECK(attn__uc_is_nonspacing(0x0301) && attn__uc_is_nonspacing(0x1734));
    T_CHECK(!attn__uc_is_nonspacing(0x1885) && !attn__uc_is_nonspacing(0xA9BD));
    T_CHECK(!attn__uc_is_nonspacing(0x1DFA) && !attn__uc_is_nonspacing(0x0903));
    T_EQ_INT(attn__uc_ccc(0x0301), 230);
    T_EQ_INT(attn__uc_ccc(0x0316), 220);
    T_EQ_INT(attn__uc_ccc(0x1E94A), 7);  /* new in 9.0 */
    T_EQ_INT(attn__uc_ccc(0x1DFA), 0);   /* new in 14.0 */
    T_EQ_INT(attn__uc_ccc('a'), 0);
    T_CHECK(maps_to(attn__uc_nfd, 0x00E9, (uint32_t[]){0x65, 0x301}, 2));
    T_CHECK(maps_to(attn__uc_nfd, 0x1F82, (uint32_t[]){0x3B1, 0x313, 0x300, 0x345}, 4));
    T_CHECK(maps_to(attn__uc_nfd, 0xAC00, (uint32_t[]){0x1100, 0x1161}, 2));
    T_CHECK(maps_to(attn__uc_nfd, 0xD7A3, (uint32_t[]){0x1112, 0x1175, 0x11C2}, 3));
    T_CHECK(maps_to(attn__uc_nfd, 0x2126, (uint32_t[]){0x3A9}, 1));
    T_CHECK(maps_to(attn__uc_nfd, 0xF900, (uint32_t[]){0x8C48}, 1));
    T_CHECK(maps_to(attn__uc_nfd, 0x11938, (uint32_t[]){0x11938}, 1)); /* new in 13.0 */
    T_CHECK(maps_to(attn__uc_nfd, 0xFB01, (uint32_t[]){0xFB01}, 1));   /* compatibility only */
    T_CHECK(maps_to(attn__uc_lower, 'A', (uint32_t[]){'a'}, 1));
    T_CHECK(maps_to(attn__uc_lower, 0x0130, (uint32_t[]){0x69, 0x307}, 2));
    T_CHECK(maps_to(attn__uc_lower, 0x03A3, (uint32_t[]){0x3C3}, 1));
    T_CHECK(maps_to(attn__uc_lower, 0x1E9E, (uint32_t[]){0xDF}, 1));
    T_CHECK(maps_to(attn__uc_lower, 0xFF21, (uint32_t[]){0xFF41}, 1));
    T_CHECK(maps_to(attn__uc_lower, 0x10D50, (uint32_t[]){0x10D70}, 1)); /* 16.0 */
    T_CHECK(maps_to(attn__uc_lower, 0x00DF, (uint32_t[]){0xDF}, 1));
}

/* ---- corrupt vocabularies ---------------------------------------------------------- */

T_TEST(wordpiece_corrupt_catalogue)
{
    static const struct {
        const char *data;
        size_t len; /* 0: strlen */
        const char *message;
    } cases[] = {
        {"", 0, "is empty"},
        {"[PAD]\n\n[UNK]\n[CLS]\n[SEP]\n", 0, "line 2 (id 1) is empty"},
        {"[PAD]\n[UNK]\n[CLS]\n[SEP]\n\n", 0, "line 5 (id 4) is empty"},
        {"[PAD]\n[UNK]\n[CLS]\n[SEP]\r\n\r\n", 0, "line 5 (id 4) is empty"},
        {"[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\nab\n", 0, "line 6 repeats the token 'ab' of line 5"},
        {"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[UNK]\n", 0, "line 5 repeats the token '[UNK]' of line 2"},
        {"[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\xff\n", 0, "line 5: invalid UTF-8 at byte 2"},
        {"[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xc0\xaf\n", 0, "line 5: invalid UTF-8 at byte 0"},
        {"[PAD]\n[UNK]\n\xed\xa0\x80\n", 0, "line 3: invalid UTF-8 at byte 0"},
        {"[PAD]\n[UNK]\n\xf4\x90\x80\x80\n", 0, "line 3: invalid UTF-8"},
        {"[PAD]\n[UNK]\n\xe4\xb8\n", 0, "line 3: invalid UTF-8"},
        {"[PAD]\n[UNK]\na\tb\n", 0, "line 3: byte 1 is a control character or a space"},
        {"[PAD]\n[UNK]\na b\n", 0, "line 3: byte 1 is a control character or a space"},
        {"[PAD]\n[UNK]\n a\n", 0, "line 3: byte 0 is a control"},
        {"[PAD]\n[UNK]\na\rb\n", 0, "line 3: byte 1 is a control"},
        {"[PAD]\n[UNK]\na\x7f\n", 0, "line 3: byte 1 is a control"},
        {"[PAD]\n[UNK]\na\0b\n", 16, "line 3: byte 1 is a control"},
        {"[PAD]\n[CLS]\n[SEP]\n", 0, "has no [UNK] token"},
        {"[UNK]\n[CLS]\n[SEP]\n", 0, "has no [PAD] token"},
        {"[PAD]\n[UNK]\n[SEP]\n", 0, "has no [CLS] token"},
        {"[PAD]\n[UNK]\n[CLS]\n[MASK]\n", 0, "has no [SEP] token"},
        {"[pad]\n[unk]\n[cls]\n[sep]\n", 0, "has no [PAD] token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].data);
        char *data = malloc(len + 1); /* exact size: ASan sees an overread */
        memcpy(data, cases[i].data, len);
        attn_wordpiece *t = NULL;
        attn_status st = attn_wordpiece_load_memory(data, len, &t);
        T_EQ_STATUS(st, ATTN_BAD_FILE);
        T_CHECK(t == NULL);
        if (strstr(attn_last_error(), cases[i].message) == NULL)
            t_fail(__FILE__, __LINE__, "case %zu: message '%s' lacks '%s'", i, attn_last_error(),
                   cases[i].message);
        free(data);
    }
    /* a token of the largest size loads, one byte more does not */
    char big[ATTN_WORDPIECE_MAX_TOKEN_BYTES + 40];
    int k = sprintf(big, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
    memset(big + k, 'q', ATTN_WORDPIECE_MAX_TOKEN_BYTES);
    attn_wordpiece *t = NULL;
    T_EQ_STATUS(attn_wordpiece_load_memory(big, (size_t)k + ATTN_WORDPIECE_MAX_TOKEN_BYTES, &t), ATTN_OK);
    attn_wordpiece_free(t);
    t = NULL;
    big[k + ATTN_WORDPIECE_MAX_TOKEN_BYTES] = 'q';
    T_EQ_STATUS(attn_wordpiece_load_memory(big, (size_t)k + ATTN_WORDPIECE_MAX_TOKEN_BYTES + 1, &t),
                ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "the token has 257 bytes") != NULL);
    T_EQ_STATUS(attn_wordpiece_load_memory(big, ATTN_WORDPIECE_MAX_VOCAB_BYTES + 1, &t), ATTN_BAD_FILE);
    T_CHECK(t == NULL && strstr(attn_last_error(), "at most") != NULL);
}

/* A loaded vocabulary must be usable: encoding a fixed text works. */
static bool usable(const attn_wordpiece *t)
{
    int32_t ids[64];
    int64_t n = 0, offs[128];
    return attn_wordpiece_encode(t, "Hello, unaffable [MASK] \xe4\xb8\xad!", 64, ids, 64, &n, offs) ==
               ATTN_OK && n >= 2 && ids[0] == attn_wordpiece_special(t, "[CLS]");
}

/* Every prefix of a vocabulary file: a clean BAD_FILE (or success once the
 * required tokens are in), never a crash, nothing leaked. */
T_TEST(wordpiece_truncation_sweep)
{
    size_t size;
    char *full = vocab_text(small_vocab, SMALL_N, "\n", &size);
    long wrong = 0, leaks = 0, ok = 0;
    for (size_t len = 0; len <= size; len++) {
        char *cut = malloc(len + 1);
        memcpy(cut, full, len);
        t_counting c = {0, 0, 0};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_wordpiece *t = NULL;
        attn_status st = attn_wordpiece_load_memory(cut, len, &t);
        if (st == ATTN_OK) {
            ok++;
            wrong += !usable(t);
        } else {
            wrong += st != ATTN_BAD_FILE || t != NULL || attn_last_error()[0] == '\0';
        }
        attn_wordpiece_free(t);
        attn_set_allocator(NULL, NULL, NULL);
        leaks += c.live != 0;
        free(cut);
    }
    T_EQ_INT(wrong, 0);
    T_EQ_INT(leaks, 0);
    /* loads from the end of "[SEP]" on (a cut inside a multibyte token fails) */
    T_CHECK(ok > 0 && ok < (long)size);
    free(full);
}

/* Every byte replaced by each of a few hazardous values. */
T_TEST(wordpiece_byte_substitution_sweep)
{
    static const unsigned char subs[] = {0x00, '\n', '\r', ' ', 0x80, 0xC3, 0xF0, 0xFF, '#', 'a'};
    size_t size;
    char *img = vocab_text(small_vocab, SMALL_N, "\n", &size);
    long wrong = 0, leaks = 0, opened = 0, rejected = 0;
    for (size_t i = 0; i < size; i++) {
        char keep = img[i];
        for (size_t s = 0; s < sizeof subs; s++) {
            img[i] = (char)subs[s];
            t_counting c = {0, 0, 0};
            attn_set_allocator(t_count_alloc, t_count_free, &c);
            attn_wordpiece *t = NULL;
            attn_status st = attn_wordpiece_load_memory(img, size, &t);
            if (st == ATTN_OK) opened++, wrong += !usable(t);
            else rejected++, wrong += st != ATTN_BAD_FILE || t != NULL;
            attn_wordpiece_free(t);
            attn_set_allocator(NULL, NULL, NULL);
            leaks += c.live != 0;
        }
        img[i] = keep;
    }
    T_EQ_INT(wrong, 0);
    T_EQ_INT(leaks, 0);
    T_CHECK(opened > 0 && rejected > 0);
    free(img);
}

/* ---- arguments ------------------------------------------------------------------------ */

T_TEST(wordpiece_argument_checks)
{
    attn_wordpiece *t = small_tok();
    if (t == NULL) return;
    int32_t ids[16];
    int64_t n = 0, offs[32];
    static const struct {
        int which; /* what to break */
        attn_status want;
        const char *message;
    } cases[] = {
        {0, ATTN_NULL_ARG, "'t' is NULL"},       {1, ATTN_NULL_ARG, "'text' is NULL"},
        {2, ATTN_NULL_ARG, "'n' is NULL"},       {3, ATTN_NULL_ARG, "'ids' is NULL and cap is 16"},
        {4, ATTN_BAD_DIM, "'cap' is -1"},        {5, ATTN_BAD_PARAM, "'max_len' is 1"},
        {6, ATTN_BAD_PARAM, "'max_len' is -3"},  {7, ATTN_OVERFLOW, "overflows"},
        {8, ATTN_OVERLAP, "'ids' overlaps 'offsets'"},
        {9, ATTN_OVERLAP, "'ids' overlaps 'n'"},
        {10, ATTN_BAD_PARAM, "not valid UTF-8 at byte 5 (0xe9)"},
        {11, ATTN_BAD_DIM, "'cap' is 3; the text needs 5 ids"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w = cases[i].which;
        for (int k = 0; k < 16; k++) ids[k] = -7, offs[2 * k] = offs[2 * k + 1] = -7;
        n = -7;
        attn_status st = attn_wordpiece_encode(
            w == 0 ? NULL : t, w == 1 ? NULL : w == 10 ? "caf\xc3\xa9\xe9" : "unaffable",
            w == 5 ? 1 : w == 6 ? -3 : 256, w == 3 ? NULL : ids,
            w == 4 ? -1 : w == 7 ? INT64_MAX : w == 11 ? 3 : 16,
            w == 2 ? NULL : w == 9 ? (int64_t *)(void *)ids : &n,
            w == 8 ? (int64_t *)(void *)ids : offs);
        T_EQ_STATUS(st, cases[i].want);
        if (strstr(attn_last_error(), cases[i].message) == NULL)
            t_fail(__FILE__, __LINE__, "case %zu: message '%s' lacks '%s'", i, attn_last_error(),
                   cases[i].message);
        /* nothing written */
        bool untouched = n == -7;
        for (int k = 0; k < 16; k++)
            untouched = untouched && ids[k] == -7 && offs[2 * k] == -7;
        T_CHECK(untouched);
    }
    /* the size query */
    T_EQ_STATUS(attn_wordpiece_encode(t, "unaffable", 256, NULL, 0, &n, NULL), ATTN_OK);
    T_EQ_INT(n, 5);
    T_EQ_STATUS(attn_wordpiece_encode(t, "unaffable", 256, ids, 5, &n, NULL), ATTN_OK);
    /* loaders and accessors */
    attn_wordpiece *u = NULL;
    T_EQ_STATUS(attn_wordpiece_load(NULL, &u), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_wordpiece_load("vocab.txt", NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_wordpiece_load_memory(NULL, 3, &u), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_wordpiece_load_memory("[PAD]", 5, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_wordpiece_load_memory(NULL, 0, &u), ATTN_BAD_FILE);
    T_CHECK(u == NULL);
    T_EQ_INT(attn_wordpiece_vocab_size(NULL), -1);
    T_CHECK(attn_wordpiece_token(NULL, 0) == NULL);
    T_EQ_INT(attn_wordpiece_id(NULL, "un"), -1);
    T_EQ_INT(attn_wordpiece_id(t, NULL), -1);
    T_EQ_INT(attn_wordpiece_special(NULL, "[CLS]"), -1);
    T_EQ_INT(attn_wordpiece_special(t, NULL), -1);
    attn_wordpiece_free(NULL);
    attn_wordpiece_free(t);
}

/* ---- out of memory ------------------------------------------------------------------- */

static attn_status op_load_memory(void *arg)
{
    (void)arg;
    size_t size;
    char *text = vocab_text(small_vocab, SMALL_N, "\n", &size);
    attn_wordpiece *t = NULL;
    attn_status st = attn_wordpiece_load_memory(text, size, &t);
    free(text);
    int32_t ids[8];
    int64_t n = 0;
    if (st == ATTN_OK) st = attn_wordpiece_encode(t, "unaffable", 8, ids, 8, &n, NULL);
    if (st == ATTN_OK && n != 5) st = ATTN_BAD_FILE;
    attn_wordpiece_free(t);
    return st;
}

static attn_status op_load_file(void *arg)
{
    attn_wordpiece *t = NULL;
    attn_status st = attn_wordpiece_load(arg, &t);
    attn_wordpiece_free(t);
    return st;
}

static attn_status op_encode(void *arg)
{
    int32_t ids[8];
    int64_t n = -1;
    /* a long run of marks: the encoder's buffer outgrows its inline part */
    char text[1 + 2 * 100 + 1] = "e";
    for (int i = 0; i < 100; i++) memcpy(text + 1 + 2 * i, "\xcc\x81", 2);
    attn_status st = attn_wordpiece_encode(arg, text, 8, ids, 8, &n, NULL);
    if (st == ATTN_OK && (n != 3 || ids[1] != 1)) st = ATTN_BAD_FILE;
    return st;
}

T_TEST(wordpiece_out_of_memory)
{
    T_EQ_INT(t_oom_sweep(op_load_memory, NULL), 5); /* pool, tokenizer, index x2, encoder */
    size_t size;
    char *text = vocab_text(small_vocab, SMALL_N, "\n", &size);
    char path[512];
    snprintf(path, sizeof path, "%s/oom-vocab.txt", t_tmpdir());
    FILE *fp = fopen(path, "wb");
    T_CHECK(fp != NULL);
    if (fp == NULL) return;
    T_EQ_INT(fwrite(text, 1, size, fp), size);
    fclose(fp);
    free(text);
    T_EQ_INT(t_oom_sweep(op_load_file, path), 4);
    attn_wordpiece *t = small_tok();
    if (t == NULL) return;
    T_EQ_INT(t_oom_sweep(op_encode, t), 1);
    attn_wordpiece_free(t);
}
