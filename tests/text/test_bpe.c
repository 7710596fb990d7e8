/* test_bpe.c - the byte-level BPE tokenizer (attn/text.h) on a small
 * hand-made vocabulary: encodings computed by hand from the rules of the
 * header (merge ranks, the GPT-2 regex, the digit split, added tokens,
 * bytes the vocabulary lacks), decoding whole and streamed (unfinished and
 * invalid UTF-8), the pre-tokenizer's Unicode classes, building from a GGUF
 * file, catalogues of bad configurations and GGUF tokenizers, argument
 * checks and out-of-memory injection. */
#include "gguf_write.h"
#include "test.h"
#include "text/unicode_data.h"

#include <attn/text.h>

#include <stdlib.h>
#include <string.h>

/* ---- the vocabulary ---------------------------------------------------------------- */

enum { N_TOK = 34, N_MERGE = 11 };
enum { CTRL = ATTN_BPE_TYPE_CONTROL, USER = ATTN_BPE_TYPE_USER_DEFINED, NORM = ATTN_BPE_TYPE_NORMAL };

/* GPT-2 byte characters: "Ġ" space, "Ċ" LF, "ĉ" tab, "Ã" 0xC3, "©" 0xA9,
 * "â" 0xE2, "Ĥ" 0x82, "¬" 0xAC; "→" is no byte character. */
static const char *const toks[N_TOK] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<u>", "a", "b", "c", "d",
    "\xc4\xa0", "\xc4\x8a", "'", "s", "1", "2", "!", "\xc3\x83", "\xc2\xa9", "ab", "bc", "abc",
    "\304\240a", "'s", "\304\240ab", "\xc4\xa0\xc4\xa0", "\xc3\x83\xc2\xa9", "!!", "cc", "12",
    "<u>!", "\xe2\x86\x92", "\xc3\xa2", "\xc4\xa4", "\xc2\xac", "\xc4\x89"};
static const int32_t types[N_TOK] = {CTRL, CTRL, CTRL, USER, NORM, NORM, NORM, NORM, NORM, NORM,
                                     NORM, NORM, NORM, NORM, NORM, NORM, NORM, NORM, NORM, NORM,
                                     NORM, NORM, NORM, NORM, NORM, NORM, NORM, NORM, USER, NORM,
                                     NORM, NORM, NORM, NORM};
static const char *const merges[N_MERGE] = {
    "a b", "\xc4\xa0 a", "b c", "ab c", "' s", "\304\240a b", "\xc4\xa0 \xc4\xa0",
    "\xc3\x83 \xc2\xa9", "! !", "c c", "1 2"};

static attn_bpe_config small_config(attn_bpe_pre pre)
{
    attn_bpe_config c = attn_bpe_config_default();
    c.n_tokens = N_TOK;
    c.tokens = toks;
    c.token_types = types;
    c.n_merges = N_MERGE;
    c.merges = merges;
    c.pre = pre;
    c.bos_id = 1;
    c.eos_id = 2;
    c.pad_id = 0;
    return c;
}

static attn_bpe *small_bpe(attn_bpe_pre pre)
{
    attn_bpe_config c = small_config(pre);
    attn_bpe *t = NULL;
    T_EQ_STATUS(attn_bpe_create(&c, &t), ATTN_OK);
    return t;
}

/* text [len] must encode to want [n_want]. */
static void expect_ids(const attn_bpe *t, const char *text, size_t len, int parse_special,
                       const int32_t *want, int n_want)
{
    int32_t ids[64];
    int64_t n = -1;
    attn_status st = attn_bpe_encode(t, text, len, parse_special, ids, 64, &n);
    bool same = st == ATTN_OK && n == n_want && (n_want == 0 || memcmp(ids, want, (size_t)n_want * 4) == 0);
    t_checks++;
    if (!same) {
        char got[256] = "", exp[256] = "";
        for (int64_t i = 0; st == ATTN_OK && i < n && i < 16; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %d", (int)ids[i]);
        for (int i = 0; i < n_want; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %d", (int)want[i]);
        t_fail(__FILE__, __LINE__, "\"%.*s\" (special %d): %s, ids [%s ], want [%s ]", (int)len,
               text, parse_special, attn_status_name(st), got, exp);
    }
    int64_t count = -1; /* the size query agrees */
    T_EQ_STATUS(attn_bpe_encode(t, text, len, parse_special, NULL, 0, &count), ATTN_OK);
    T_EQ_INT(count, n_want);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), (int)(sizeof((const int32_t[]){__VA_ARGS__}) / 4)
#define EXPECT(t, text, special, ...) expect_ids(t, text, sizeof(text) - 1, special, IDS(__VA_ARGS__))
#define EXPECT_NONE(t, text, special) expect_ids(t, text, sizeof(text) - 1, special, NULL, 0)

/* ---- encoding ---------------------------------------------------------------------- */

T_TEST(bpe_hand_computed)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    if (t == NULL) return;
    /* ranks: a b (0) before b c (2), then ab c (3) */
    EXPECT(t, "abc", 0, 19);
    /* b c a b: a b (rank 0) first, then b c; no merge joins bc and ab */
    EXPECT(t, "bcab", 0, 18, 17);
    /* Ġ a b: a b (0) beats Ġ a (1), and Ġ ab is no merge, so Ġab (rank 5) never forms */
    EXPECT(t, " ab", 0, 8, 17);
    EXPECT(t, "ab ab", 0, 17, 8, 17);
    /* equal ranks: the leftmost first (! ! ! -> !! !) */
    EXPECT(t, "!!!", 0, 25, 14);
    EXPECT(t, "a   ", 0, 4, 23, 8);
    /* bytes the vocabulary lacks are dropped, inside a word too (a x b -> ab) */
    EXPECT(t, "xax", 0, 4);
    EXPECT(t, "axb", 0, 17);
    EXPECT_NONE(t, "xyz", 0);
    EXPECT_NONE(t, "", 0);
    expect_ids(t, "a\0b", 3, 0, IDS(4, 5)); /* U+0000 is a word of its own, its byte missing */
    /* two-byte characters: Ã © -> é */
    EXPECT(t, "\xc3\xa9", 0, 24);
    attn_bpe_free(t);
}

T_TEST(bpe_regex_and_digits)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM), *g = small_bpe(ATTN_BPE_PRE_GPT2);
    if (t == NULL || g == NULL) return;
    /* contractions are case-sensitive and need the apostrophe first */
    EXPECT(t, "a's", 0, 4, 21);
    EXPECT(t, "'s", 0, 21);
    EXPECT(t, "a'S", 0, 4, 10);
    EXPECT(t, "''s", 0, 10, 10, 11);
    /* whitespace: a run before a word gives its last character to the word;
     * a single one stays alone (\s+); a run at the end stays whole */
    EXPECT(t, "a  b", 0, 4, 8, 8, 5);
    EXPECT(t, "a\n\nb", 0, 4, 9, 9, 5);
    EXPECT(t, "a\tb", 0, 4, 33, 5);
    EXPECT(t, "a\xe3\x80\x80" "b", 0, 4, 5); /* U+3000 is whitespace (bytes absent) */
    /* digits: one piece each with SMOLLM; \p{N}+ with GPT-2 */
    EXPECT(t, "a12", 0, 4, 12, 13);
    EXPECT(g, "a12", 0, 4, 27);
    EXPECT(t, " 12", 0, 8, 12, 13);
    EXPECT(g, " 12", 0, 8, 27);
    /* U+11DE0 (a digit of Unicode 17.0, bytes absent) is numeric for the
     * split but [^\s\p{L}\p{N}] for the regex: it joins the ! around it */
    EXPECT(t, "!\xf0\x91\xb7\xa0!", 0, 14, 14);
    EXPECT(g, "!\xf0\x91\xb7\xa0!", 0, 25);
    /* U+00BD (No) is \p{N}: "ab" "½" "ab" with both */
    EXPECT(t, "ab\xc2\xbd" "ab", 0, 17, 17);
    EXPECT(g, "ab\xc2\xbd" "ab", 0, 17, 17);
    attn_bpe_free(t);
    attn_bpe_free(g);
}

/* text must split into the byte ranges want [n_want][2]. */
static void expect_words(const attn_bpe *t, const char *text, const int64_t *want, int n_want)
{
    int64_t spans[64][2], n = -1, count = -1;
    size_t len = strlen(text);
    T_EQ_STATUS(attn_bpe_pretokenize(t, text, len, &spans[0][0], 64, &n), ATTN_OK);
    T_EQ_STATUS(attn_bpe_pretokenize(t, text, len, NULL, 0, &count), ATTN_OK);
    t_checks++;
    if (n != n_want || count != n_want ||
        (n_want > 0 && memcmp(spans, want, (size_t)n_want * 16) != 0))
        t_fail(__FILE__, __LINE__, "\"%s\": %lld words (count %lld), want %d; first [%lld, %lld)",
               text, (long long)n, (long long)count, n_want, n > 0 ? (long long)spans[0][0] : -1LL,
               n > 0 ? (long long)spans[0][1] : -1LL);
}

#define SPANS(...) ((const int64_t[]){__VA_ARGS__}), (int)(sizeof((const int64_t[]){__VA_ARGS__}) / 16)

T_TEST(bpe_pretokenize)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM), *g = small_bpe(ATTN_BPE_PRE_GPT2);
    if (t == NULL || g == NULL) return;
    expect_words(t, "a  b", SPANS(0, 1, 1, 2, 2, 4));
    expect_words(t, "x  1", SPANS(0, 1, 1, 3, 3, 4)); /* the digit ends the piece: "  " whole */
    expect_words(g, "x  1", SPANS(0, 1, 1, 2, 2, 4)); /* " 1" with GPT-2 */
    expect_words(t, "I'm", SPANS(0, 1, 1, 3));
    expect_words(t, "\xc3\xa9!", SPANS(0, 2, 2, 3));
    expect_words(t, "2024", SPANS(0, 1, 1, 2, 2, 3, 3, 4));
    expect_words(g, "2024", SPANS(0, 4));
    /* no added tokens here: the text of one is split like any other */
    expect_words(t, "<|im_start|>", SPANS(0, 2, 2, 4, 4, 5, 5, 10, 10, 12));
    expect_words(t, "", NULL, 0);
    int64_t spans[4][2] = {{-7, -7}, {-7, -7}, {-7, -7}, {-7, -7}}, n = -7;
    T_EQ_STATUS(attn_bpe_pretokenize(t, "a b c", 5, &spans[0][0], 2, &n), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "argument 'cap' is 2; the text has 3 words") != NULL);
    T_EQ_STATUS(attn_bpe_pretokenize(t, "a b", 3, &spans[0][0], 2, &n), ATTN_OK);
    T_CHECK(n == 2 && spans[1][0] == 1 && spans[1][1] == 3 && spans[2][0] == -7);
    n = -7;
    T_EQ_STATUS(attn_bpe_pretokenize(t, "\xe2\x82", 2, &spans[0][0], 4, &n), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bpe_pretokenize(t, (const char *)spans, 8, &spans[0][0], 4, &n), ATTN_OVERLAP);
    T_EQ_STATUS(attn_bpe_pretokenize(t, "a", 1, NULL, 4, &n), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_pretokenize(NULL, "a", 1, NULL, 0, &n), ATTN_NULL_ARG);
    T_EQ_INT(n, -7);
    attn_bpe_free(t);
    attn_bpe_free(g);
}

T_TEST(bpe_added_tokens)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    if (t == NULL) return;
    EXPECT(t, "<|im_start|>ab<|im_end|>", 1, 1, 17, 2);
    /* not parsed: "<|" "im" "_" "start" "|>" "ab" ... of which s, a, ab, d exist */
    EXPECT(t, "<|im_start|>ab<|im_end|>", 0, 11, 4, 17, 7);
    /* USER_DEFINED tokens are always cut out; the longest at a position wins */
    EXPECT(t, "a<u>b", 0, 4, 3, 5);
    EXPECT(t, "<u>!", 0, 28);
    EXPECT(t, "<u>!!", 1, 28, 14);
    EXPECT(t, "<u><u>", 0, 3, 3);
    /* an added token ends the piece before it: "a " + "<u>" keeps the space alone */
    EXPECT(t, "a <u>", 0, 4, 8, 3);
    EXPECT(t, "<|endoftext|><|endoftext|>", 1, 0, 0);
    EXPECT(t, "<|im_end", 1, 7); /* unfinished: plain text */
    attn_bpe_free(t);
}

/* ---- decoding ------------------------------------------------------------------------ */

static void expect_text(const attn_bpe *t, const int32_t *ids, int n_ids, int skip,
                        const char *want, size_t want_len)
{
    char buf[128];
    size_t n = 0, size = 0;
    T_EQ_STATUS(attn_bpe_decode(t, ids, n_ids, skip, NULL, 0, &size), ATTN_OK);
    T_EQ_STATUS(attn_bpe_decode(t, ids, n_ids, skip, buf, sizeof buf, &n), ATTN_OK);
    T_EQ_INT(n, want_len);
    T_EQ_INT(size, want_len);
    T_CHECK(n == want_len && memcmp(buf, want, want_len) == 0);
}

#define DECODES(t, skip, want, ...) expect_text(t, IDS(__VA_ARGS__), skip, want, sizeof(want) - 1)

T_TEST(bpe_decode)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    if (t == NULL) return;
    DECODES(t, 0, "abc", 19);
    DECODES(t, 0, " ab\n\t", 8, 17, 9, 33);
    DECODES(t, 0, "<|im_start|>ab<|im_end|>", 1, 17, 2);
    DECODES(t, 1, "ab", 1, 17, 2);
    DECODES(t, 1, "<u>!", 3, 14); /* USER_DEFINED tokens are not skipped */
    DECODES(t, 0, "\xc3\xa9", 24);
    DECODES(t, 0, "\xc3", 15);                 /* half a character */
    DECODES(t, 0, "\xe2\x86\x92", 29);         /* not byte characters: its own UTF-8 */
    DECODES(t, 0, "\xe2\x82\xac", 30, 31, 32); /* € in three tokens */
    expect_text(t, NULL, 0, 0, "", 0);
    size_t len = 0;
    T_CHECK(memcmp(attn_bpe_token_bytes(t, 23, &len), "  ", 2) == 0 && len == 2);
    T_CHECK(strcmp(attn_bpe_token(t, 23), "\xc4\xa0\xc4\xa0") == 0);
    /* round trips of texts whose bytes all have tokens */
    static const char *const texts[] = {"abc bcab", "a's  12\n\n!!!", "\xc3\xa9\t<u>! abab",
                                        "<|im_start|>ab<|im_end|>"};
    for (int k = 0; k < 4; k++) {
        int32_t ids[64];
        int64_t n = 0;
        char buf[128];
        size_t m = 0;
        T_EQ_STATUS(attn_bpe_encode(t, texts[k], strlen(texts[k]), 1, ids, 64, &n), ATTN_OK);
        T_EQ_STATUS(attn_bpe_decode(t, ids, n, 0, buf, sizeof buf, &m), ATTN_OK);
        T_CHECK(m == strlen(texts[k]) && memcmp(buf, texts[k], m) == 0);
    }
    /* errors: nothing written */
    char buf[4] = "zzz";
    size_t n = 77;
    T_EQ_STATUS(attn_bpe_decode(t, IDS(19, 19), 0, buf, 5, &n), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "argument 'cap' is 5; the ids decode to 6 bytes") != NULL);
    T_EQ_STATUS(attn_bpe_decode(t, IDS(4, 34), 0, buf, 4, &n), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "ids[1] is 34; ids are 0 to 33") != NULL);
    T_EQ_STATUS(attn_bpe_decode(t, IDS(-1), 0, NULL, 0, &n), ATTN_BAD_PARAM);
    T_CHECK(n == 77 && strcmp(buf, "zzz") == 0);
    attn_bpe_free(t);
}

/* Pushes ids through a stream: the concatenated output and the OR of the
 * invalid flags (flushed at the end when flush is set). */
static void stream(const attn_bpe *t, const int32_t *ids, int n_ids, bool flush, const char *want,
                   size_t want_len, int want_invalid)
{
    attn_bpe_stream s = {{0}, 0};
    char out[256], buf[64];
    size_t k = 0, n;
    int invalid = 0, any = 0;
    for (int i = 0; i < n_ids; i++) {
        size_t need = 99;
        attn_bpe_stream before = s;
        T_EQ_STATUS(attn_bpe_stream_push(t, &s, ids[i], NULL, 0, &need, NULL), ATTN_OK);
        T_CHECK(memcmp(&before, &s, sizeof s) == 0); /* a size query leaves the state */
        T_EQ_STATUS(attn_bpe_stream_push(t, &s, ids[i], buf, sizeof buf, &n, &invalid), ATTN_OK);
        T_EQ_INT(n, need);
        memcpy(out + k, buf, n);
        k += n;
        any |= invalid;
    }
    if (flush) {
        T_EQ_STATUS(attn_bpe_stream_flush(&s, buf, sizeof buf, &n, &invalid), ATTN_OK);
        memcpy(out + k, buf, n);
        k += n;
        any |= invalid;
        T_EQ_INT(s.n_pending, 0);
    }
    T_CHECK(k == want_len && memcmp(out, want, k) == 0);
    T_EQ_INT(any, want_invalid);
}

#define FFFD "\xef\xbf\xbd"

T_TEST(bpe_stream_decode)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    if (t == NULL) return;
    stream(t, IDS(15, 16), true, "\xc3\xa9", 2, 0);                /* é split in two */
    stream(t, IDS(30, 31, 32), true, "\xe2\x82\xac", 3, 0);        /* € split in three */
    stream(t, IDS(4, 30, 31), false, "a", 1, 0);                   /* unfinished: held back */
    stream(t, IDS(4, 30, 31), true, "a" FFFD, 4, 1);               /* ... until the end */
    stream(t, IDS(15, 4), true, FFFD "a", 4, 1);                   /* C3 then a letter */
    stream(t, IDS(16), true, FFFD, 3, 1);                          /* a lone continuation */
    stream(t, IDS(30, 16, 4), true, FFFD "a", 4, 1);               /* E2 A9 is one maximal part */
    stream(t, IDS(1, 17), true, "<|im_start|>ab", 14, 0);
    /* one push at a time: what is pending */
    attn_bpe_stream s = {{0}, 0};
    char buf[16];
    size_t n = 9;
    int invalid = 9;
    T_EQ_STATUS(attn_bpe_stream_push(t, &s, 30, buf, sizeof buf, &n, &invalid), ATTN_OK);
    T_CHECK(n == 0 && invalid == 0 && s.n_pending == 1 && s.pending[0] == 0xE2);
    T_EQ_STATUS(attn_bpe_stream_push(t, &s, 31, buf, sizeof buf, &n, NULL), ATTN_OK);
    T_CHECK(n == 0 && s.n_pending == 2);
    /* errors leave the state as it was */
    attn_bpe_stream before = s;
    T_EQ_STATUS(attn_bpe_stream_push(t, &s, 4, buf, 3, &n, NULL), ATTN_BAD_DIM); /* FFFD a: 4 */
    T_EQ_STATUS(attn_bpe_stream_push(t, &s, 34, buf, sizeof buf, &n, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bpe_stream_flush(&s, buf, 2, &n, NULL), ATTN_BAD_DIM);
    T_CHECK(memcmp(&before, &s, sizeof s) == 0);
    T_EQ_STATUS(attn_bpe_stream_push(t, &s, 32, buf, sizeof buf, &n, &invalid), ATTN_OK);
    T_CHECK(n == 3 && memcmp(buf, "\xe2\x82\xac", 3) == 0 && invalid == 0 && s.n_pending == 0);
    s.n_pending = 4;
    T_EQ_STATUS(attn_bpe_stream_push(t, &s, 4, buf, sizeof buf, &n, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bpe_stream_flush(&s, buf, sizeof buf, &n, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bpe_stream_push(NULL, &s, 4, buf, sizeof buf, &n, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_stream_push(t, NULL, 4, buf, sizeof buf, &n, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_stream_flush(NULL, buf, sizeof buf, &n, NULL), ATTN_NULL_ARG);
    attn_bpe_free(t);
}

/* ---- the Unicode classes ----------------------------------------------------------------- */

T_TEST(bpe_unicode_classes)
{
    static const struct { uint32_t c; int cls; } want[] = {
        {'A', ATTN__UC_GPT2_LETTER}, {'z', ATTN__UC_GPT2_LETTER}, {'5', ATTN__UC_GPT2_NUMBER},
        {'_', ATTN__UC_GPT2_OTHER}, {0x00AA, ATTN__UC_GPT2_LETTER},  /* ª Lo */
        {0x00B2, ATTN__UC_GPT2_NUMBER}, {0x00BD, ATTN__UC_GPT2_NUMBER}, /* ² ½ No */
        {0x0661, ATTN__UC_GPT2_NUMBER}, {0x216B, ATTN__UC_GPT2_NUMBER}, /* Nd, Nl */
        {0x4E00, ATTN__UC_GPT2_LETTER}, {0x0301, ATTN__UC_GPT2_OTHER},  /* Lo, Mn */
        {0x1C89, ATTN__UC_GPT2_LETTER},                                  /* Unicode 16.0 */
        {0x105C0, ATTN__UC_GPT2_LETTER}, {0x1E5F1, ATTN__UC_GPT2_NUMBER}, /* 16.0 */
        {0x11DE0, ATTN__UC_GPT2_NUMERIC}, {0x16FF4, ATTN__UC_GPT2_NUMERIC}, /* 17.0 */
        {0x16EA0, ATTN__UC_GPT2_OTHER},                                  /* 17.0 letter */
        {0x1F600, ATTN__UC_GPT2_OTHER}, {0x200B, ATTN__UC_GPT2_OTHER}, {0x10FFFF, ATTN__UC_GPT2_OTHER}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        t_checks++;
        if (attn__uc_gpt2_class(want[k].c) != want[k].cls)
            t_fail(__FILE__, __LINE__, "U+%04X: class %d, want %d", (unsigned)want[k].c,
                   attn__uc_gpt2_class(want[k].c), want[k].cls);
    }
    static const uint32_t spaces[] = {0x09, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    for (size_t k = 0; k < sizeof spaces / sizeof spaces[0]; k++) T_CHECK(attn__uc_is_space(spaces[k]));
    T_CHECK(!attn__uc_is_space(0x200B) && !attn__uc_is_space(0x180E) && !attn__uc_is_space('a'));
}

/* ---- building ------------------------------------------------------------------------------- */

/* cfg must fail with ATTN_BAD_PARAM (or want_st) and a message containing want. */
static void expect_bad_config(const char *what, const attn_bpe_config *cfg, attn_status want_st,
                              const char *want)
{
    attn_bpe *t = NULL;
    t_counting c = {0, 0, 0};
    attn_set_allocator(t_count_alloc, t_count_free, &c);
    attn_status st = attn_bpe_create(cfg, &t);
    attn_set_allocator(NULL, NULL, NULL);
    t_checks++;
    if (st != want_st || t != NULL || strstr(attn_last_error(), want) == NULL)
        t_fail(__FILE__, __LINE__, "%s: got %s \"%s\", want %s with \"%s\"", what,
               attn_status_name(st), attn_last_error(), attn_status_name(want_st), want);
    T_EQ_INT(c.live, 0);
}

T_TEST(bpe_config_catalogue)
{
    attn_bpe_config c;
    const char *tk[N_TOK], *mg[N_MERGE];
    int32_t ty[N_TOK];
    size_t lens[N_TOK];
#define RESET()                                                    \
    do {                                                           \
        c = small_config(ATTN_BPE_PRE_SMOLLM);                     \
        memcpy(tk, toks, sizeof tk), memcpy(mg, merges, sizeof mg); \
        memcpy(ty, types, sizeof ty);                              \
        c.tokens = tk, c.merges = mg, c.token_types = ty;          \
    } while (0)
    RESET(); c.n_tokens = 0;
    expect_bad_config("no tokens", &c, ATTN_BAD_PARAM, "the vocabulary has 0 tokens");
    RESET(); c.n_merges = -1;
    expect_bad_config("merges", &c, ATTN_BAD_PARAM, "there are -1 merges");
    RESET(); c.tokens = NULL;
    expect_bad_config("tokens NULL", &c, ATTN_NULL_ARG, "cfg->tokens is NULL");
    RESET(); tk[5] = NULL;
    expect_bad_config("token NULL", &c, ATTN_BAD_PARAM, "cfg->tokens[5] is NULL");
    RESET(); tk[5] = "";
    expect_bad_config("empty", &c, ATTN_BAD_PARAM, "cfg->tokens[5] is 0 bytes long; it must be 1 to 4096");
    RESET(); tk[6] = "\xc3";
    expect_bad_config("UTF-8", &c, ATTN_BAD_PARAM, "cfg->tokens[6] is not valid UTF-8 (byte 0)");
    RESET(); tk[7] = "a";
    expect_bad_config("twice", &c, ATTN_BAD_PARAM, "cfg->tokens[7] (\"a\") repeats cfg->tokens[4]");
    RESET();
    for (int i = 0; i < N_TOK; i++) lens[i] = strlen(toks[i]);
    lens[4] = 2, tk[4] = "a\0";
    c.token_lens = lens;
    expect_bad_config("NUL", &c, ATTN_BAD_PARAM, "cfg->tokens[4] contains a NUL byte");
    RESET(); ty[9] = 7;
    expect_bad_config("type", &c, ATTN_BAD_PARAM, "cfg->token_types[9] is 7; token types are 0 to 6");
    RESET(); mg[3] = "abc";
    expect_bad_config("no space", &c, ATTN_BAD_PARAM, "cfg->merges[3] (\"abc\") must be two tokens separated by one space");
    RESET(); mg[3] = "a b c";
    expect_bad_config("two spaces", &c, ATTN_BAD_PARAM, "must be two tokens");
    RESET(); mg[3] = "x b";
    expect_bad_config("left", &c, ATTN_BAD_PARAM, "cfg->merges[3] (\"x b\"): the left part is not a token");
    RESET(); mg[3] = "a ";
    expect_bad_config("right", &c, ATTN_BAD_PARAM, "the right part is not a token");
    RESET(); mg[3] = "b a";
    expect_bad_config("result", &c, ATTN_BAD_PARAM, "(\"b a\"): the merged pair is not a token");
    RESET(); mg[3] = "b c";
    expect_bad_config("repeat", &c, ATTN_BAD_PARAM, "cfg->merges[3] (\"b c\") repeats cfg->merges[2]");
    RESET(); c.bos_id = N_TOK;
    expect_bad_config("bos", &c, ATTN_BAD_PARAM, "cfg->bos_id is 34; it must be -1 or a token id below 34");
    RESET(); c.unk_id = -2;
    expect_bad_config("unk", &c, ATTN_BAD_PARAM, "cfg->unk_id is -2");
    RESET(); c.pre = (attn_bpe_pre)2;
    expect_bad_config("pre", &c, ATTN_BAD_PARAM, "the pre-tokenizer is 2");
    RESET(); c.merges = NULL;
    expect_bad_config("merges NULL", &c, ATTN_NULL_ARG, "cfg->merges is NULL");
    char long_tok[ATTN_BPE_MAX_TOKEN_BYTES + 2];
    memset(long_tok, 'q', sizeof long_tok - 1);
    long_tok[sizeof long_tok - 1] = '\0';
    RESET(); tk[8] = long_tok;
    expect_bad_config("long", &c, ATTN_BAD_PARAM, "cfg->tokens[8] is 4097 bytes long");
    /* the rules allow: no merges, no types, every special -1, lengths given */
    RESET(); c.n_merges = 0, c.merges = NULL, c.token_types = NULL;
    c.bos_id = c.eos_id = c.pad_id = c.unk_id = -1;
    attn_bpe *t = NULL;
    T_EQ_STATUS(attn_bpe_create(&c, &t), ATTN_OK);
    EXPECT(t, "ab<u>", 0, 4, 5); /* without types "<u>" is plain text, its bytes absent */
    attn_bpe_free(t);
#undef RESET
}

T_TEST(bpe_getters)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    if (t == NULL) return;
    T_EQ_INT(attn_bpe_vocab_size(t), N_TOK);
    T_EQ_INT(attn_bpe_token_id(t, "abc"), 19);
    T_EQ_INT(attn_bpe_token_id(t, "<|im_end|>"), 2);
    T_EQ_INT(attn_bpe_token_id(t, "ac"), -1);
    T_EQ_INT(attn_bpe_token_type(t, 1), ATTN_BPE_TYPE_CONTROL);
    T_EQ_INT(attn_bpe_token_type(t, 28), ATTN_BPE_TYPE_USER_DEFINED);
    T_EQ_INT(attn_bpe_token_type(t, 4), ATTN_BPE_TYPE_NORMAL);
    T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_BOS), 1);
    T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_EOS), 2);
    T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_PAD), 0);
    T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_UNK), -1);
    T_EQ_INT(attn_bpe_special_id(t, (attn_bpe_special)4), -1);
    size_t len = 0;
    T_CHECK(attn_bpe_token(t, 34) == NULL && attn_bpe_token(t, -1) == NULL);
    T_CHECK(attn_bpe_token_bytes(t, 34, &len) == NULL && attn_bpe_token_bytes(t, 3, NULL) == NULL);
    T_EQ_INT(attn_bpe_token_type(t, 34), -1);
    T_EQ_INT(attn_bpe_vocab_size(NULL), -1);
    T_EQ_INT(attn_bpe_token_id(NULL, "a"), -1);
    T_EQ_INT(attn_bpe_token_id(t, NULL), -1);
    T_EQ_INT(attn_bpe_special_id(NULL, ATTN_BPE_SPECIAL_BOS), -1);
    attn_bpe_free(NULL);
    attn_bpe_free(t);
}

T_TEST(bpe_argument_checks)
{
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    if (t == NULL) return;
    int32_t ids[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    int64_t n = -7;
    T_EQ_STATUS(attn_bpe_encode(NULL, "a", 1, 0, ids, 8, &n), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_encode(t, "a", 1, 0, ids, 8, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_encode(t, NULL, 1, 0, ids, 8, &n), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_encode(t, "a", 1, 0, NULL, 8, &n), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_encode(t, "a", 1, 0, ids, -1, &n), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_bpe_encode(t, "abab", 4, 0, ids, 1, &n), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "argument 'cap' is 1; the text needs 2 ids") != NULL);
    T_EQ_STATUS(attn_bpe_encode(t, "a\xff", 2, 0, ids, 8, &n), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "not valid UTF-8 at byte 1 (0xff)") != NULL);
    T_EQ_STATUS(attn_bpe_encode(t, "ab\xc3", 3, 0, ids, 8, &n), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bpe_encode(t, "\xc0\x80", 2, 0, ids, 8, &n), ATTN_BAD_PARAM);   /* overlong */
    T_EQ_STATUS(attn_bpe_encode(t, "\xed\xa0\x80", 3, 0, ids, 8, &n), ATTN_BAD_PARAM); /* surrogate */
    T_EQ_STATUS(attn_bpe_encode(t, "\xf4\x90\x80\x80", 4, 0, ids, 8, &n), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bpe_encode(t, (const char *)ids, 4, 0, ids, 8, &n), ATTN_OVERLAP);
    T_EQ_STATUS(attn_bpe_encode(t, "ab", 2, 0, ids, 8, (int64_t *)&ids[2]), ATTN_OVERLAP);
    for (int i = 0; i < 8; i++) T_EQ_INT(ids[i], -7);
    T_EQ_INT(n, -7);
    /* a buffer exactly as large as needed, smaller than the text */
    T_EQ_STATUS(attn_bpe_encode(t, "abab", 4, 0, ids, 2, &n), ATTN_OK);
    T_CHECK(n == 2 && ids[0] == 17 && ids[1] == 17 && ids[2] == -7);
    T_EQ_STATUS(attn_bpe_encode(t, NULL, 0, 0, NULL, 0, &n), ATTN_OK);
    T_EQ_INT(n, 0);
    size_t m;
    T_EQ_STATUS(attn_bpe_decode(NULL, ids, 1, 0, NULL, 0, &m), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_decode(t, NULL, 1, 0, NULL, 0, &m), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_decode(t, ids, 1, 0, NULL, 4, &m), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_decode(t, ids, -1, 0, NULL, 0, &m), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_bpe_decode(t, ids, 1, 0, NULL, 0, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_decode(t, ids, 1, 0, (char *)ids, 8, &m), ATTN_OVERLAP);
    attn_bpe *none = NULL;
    attn_bpe_config c = small_config(ATTN_BPE_PRE_GPT2);
    T_EQ_STATUS(attn_bpe_create(NULL, &none), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_create(&c, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bpe_load_gguf(NULL, &none), ATTN_NULL_ARG);
    T_CHECK(none == NULL);
    attn_bpe_free(t);
}

/* ---- from a GGUF file --------------------------------------------------------------------------- */

enum { GG_MODEL = 1, GG_PRE = 2, GG_TYPES = 4, GG_IDS = 8 };

/* A GGUF file holding the small vocabulary; parts selects what to write,
 * model and pre the names, n_types the length of the type array. */
static t_gguf vocab_file(int parts, const char *model, const char *pre, int n_types, uint32_t bos,
                         const char *merge3)
{
    int n_kv = 2 + !!(parts & GG_MODEL) + !!(parts & GG_PRE) + !!(parts & GG_TYPES) + 4 * !!(parts & GG_IDS);
    t_gguf w = {NULL, 0, 0};
    t_gguf_header(&w, 3, 0, (uint64_t)n_kv);
    if (parts & GG_MODEL) t_gguf_key(&w, "tokenizer.ggml.model", ATTN_GGUF_TYPE_STRING), t_gguf_str(&w, model);
    if (parts & GG_PRE) t_gguf_key(&w, "tokenizer.ggml.pre", ATTN_GGUF_TYPE_STRING), t_gguf_str(&w, pre);
    t_gguf_key(&w, "tokenizer.ggml.tokens", ATTN_GGUF_TYPE_ARRAY);
    t_gguf_array(&w, ATTN_GGUF_TYPE_STRING, N_TOK);
    for (int i = 0; i < N_TOK; i++) t_gguf_str(&w, toks[i]);
    if (parts & GG_TYPES) {
        t_gguf_key(&w, "tokenizer.ggml.token_type", ATTN_GGUF_TYPE_ARRAY);
        t_gguf_array(&w, ATTN_GGUF_TYPE_INT32, (uint64_t)n_types);
        for (int i = 0; i < n_types; i++) t_gguf_u32(&w, (uint32_t)types[i % N_TOK]);
    }
    t_gguf_key(&w, "tokenizer.ggml.merges", ATTN_GGUF_TYPE_ARRAY);
    t_gguf_array(&w, ATTN_GGUF_TYPE_STRING, N_MERGE);
    for (int i = 0; i < N_MERGE; i++) t_gguf_str(&w, i == 3 && merge3 ? merge3 : merges[i]);
    if (parts & GG_IDS) {
        t_gguf_key(&w, "tokenizer.ggml.bos_token_id", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, bos);
        t_gguf_key(&w, "tokenizer.ggml.eos_token_id", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, 2);
        t_gguf_key(&w, "tokenizer.ggml.unknown_token_id", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, 0);
        t_gguf_key(&w, "tokenizer.ggml.padding_token_id", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, 2);
    }
    return w;
}

static const int ALL = GG_MODEL | GG_PRE | GG_TYPES | GG_IDS;

static attn_status from_file(const t_gguf *w, attn_bpe **t)
{
    attn_gguf *g = NULL;
    attn_status st = attn_gguf_load_memory(w->b, w->n, &g);
    if (st == ATTN_OK) st = attn_bpe_load_gguf(g, t);
    attn_gguf_free(g);
    return st;
}

T_TEST(bpe_from_gguf)
{
    t_gguf w = vocab_file(ALL, "gpt2", "smollm", N_TOK, 1, NULL);
    attn_bpe *t = NULL;
    T_EQ_STATUS(from_file(&w, &t), ATTN_OK); /* the file is freed: t keeps its own copy */
    if (t != NULL) {
        T_EQ_INT(attn_bpe_vocab_size(t), N_TOK);
        T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_UNK), 0);
        T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_PAD), 2);
        EXPECT(t, "<|im_start|>bcab a12<u>!", 1, 1, 18, 17, 20, 12, 13, 28);
    }
    attn_bpe_free(t);
    t_gguf_free(&w);
    static const char *const pres[3] = {"gpt-2", "starcoder", "smollm"};
    static const int32_t digit_ids[3][3] = {{4, 27, -1}, {4, 12, 13}, {4, 12, 13}};
    for (int k = 0; k < 3; k++) { /* optional parts absent; each pre-tokenizer name */
        w = vocab_file(GG_MODEL | GG_PRE, "gpt2", pres[k], 0, 0, NULL);
        t = NULL;
        T_EQ_STATUS(from_file(&w, &t), ATTN_OK);
        if (t != NULL) {
            T_EQ_INT(attn_bpe_special_id(t, ATTN_BPE_SPECIAL_BOS), -1);
            T_EQ_INT(attn_bpe_token_type(t, 1), ATTN_BPE_TYPE_NORMAL); /* no types: plain text */
            expect_ids(t, "a12", 3, 1, digit_ids[k], k == 0 ? 2 : 3);
        }
        attn_bpe_free(t);
        t_gguf_free(&w);
    }
}

static void expect_bad_file(const char *what, t_gguf w, attn_status want_st, const char *want)
{
    attn_bpe *t = NULL;
    t_counting c = {0, 0, 0};
    attn_set_allocator(t_count_alloc, t_count_free, &c);
    attn_status st = from_file(&w, &t);
    attn_set_allocator(NULL, NULL, NULL);
    t_checks++;
    if (st != want_st || t != NULL || strstr(attn_last_error(), want) == NULL)
        t_fail(__FILE__, __LINE__, "%s: got %s \"%s\", want %s with \"%s\"", what,
               attn_status_name(st), attn_last_error(), attn_status_name(want_st), want);
    T_EQ_INT(c.live, 0);
    t_gguf_free(&w);
}

T_TEST(bpe_gguf_catalogue)
{
    expect_bad_file("model", vocab_file(ALL, "llama", "smollm", N_TOK, 1, NULL), ATTN_UNSUPPORTED,
                    "tokenizer.ggml.model is \"llama\"; attn supports only \"gpt2\"");
    expect_bad_file("pre", vocab_file(ALL, "gpt2", "qwen2", N_TOK, 1, NULL), ATTN_UNSUPPORTED,
                    "tokenizer.ggml.pre is \"qwen2\"");
    expect_bad_file("no model", vocab_file(ALL & ~GG_MODEL, "", "smollm", N_TOK, 1, NULL),
                    ATTN_BAD_FILE, "no key 'tokenizer.ggml.model'");
    expect_bad_file("no pre", vocab_file(ALL & ~GG_PRE, "gpt2", "", N_TOK, 1, NULL), ATTN_BAD_FILE,
                    "no key 'tokenizer.ggml.pre'");
    expect_bad_file("types", vocab_file(ALL, "gpt2", "smollm", N_TOK - 1, 1, NULL), ATTN_BAD_FILE,
                    "tokenizer.ggml.token_type has 33 elements; tokenizer.ggml.tokens has 34");
    expect_bad_file("bos", vocab_file(ALL, "gpt2", "smollm", N_TOK, 34, NULL), ATTN_BAD_FILE,
                    "tokenizer.ggml.bos_token_id is 34; it must be -1 or a token id below 34");
    expect_bad_file("merge", vocab_file(ALL, "gpt2", "smollm", N_TOK, 1, "a x"), ATTN_BAD_FILE,
                    "tokenizer.ggml.merges[3] (\"a x\"): the right part is not a token");
    /* a model name of another type, and tokens that are not strings */
    t_gguf w = {NULL, 0, 0};
    t_gguf_header(&w, 3, 0, 1);
    t_gguf_key(&w, "tokenizer.ggml.model", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, 2);
    expect_bad_file("model type", w, ATTN_BAD_FILE, "the key 'tokenizer.ggml.model' is a UINT32; expected a STRING");
    w = (t_gguf){NULL, 0, 0};
    t_gguf_header(&w, 3, 0, 4);
    t_gguf_key(&w, "tokenizer.ggml.model", ATTN_GGUF_TYPE_STRING), t_gguf_str(&w, "gpt2");
    t_gguf_key(&w, "tokenizer.ggml.pre", ATTN_GGUF_TYPE_STRING), t_gguf_str(&w, "smollm");
    t_gguf_key(&w, "tokenizer.ggml.tokens", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(&w, ATTN_GGUF_TYPE_UINT8, 1);
    t_gguf_u8(&w, 7);
    t_gguf_key(&w, "tokenizer.ggml.merges", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(&w, ATTN_GGUF_TYPE_STRING, 0);
    expect_bad_file("token type", w, ATTN_BAD_FILE, "the elements of 'tokenizer.ggml.tokens' are UINT8");
}

/* ---- out of memory ------------------------------------------------------------------------------- */

static attn_status op_create(void *arg)
{
    (void)arg;
    attn_bpe_config c = small_config(ATTN_BPE_PRE_SMOLLM);
    attn_bpe *t = NULL;
    attn_status st = attn_bpe_create(&c, &t);
    attn_bpe_free(t);
    return st;
}

static attn_status op_encode(void *arg)
{
    const attn_bpe *t = arg;
    int32_t ids[16];
    int64_t n = 0;
    attn_status st = attn_bpe_encode(t, "<|im_start|>abc bcab", 20, 1, ids, 16, &n);
    if (st == ATTN_OK && n != 5) st = ATTN_BAD_DIM;
    return st;
}

static attn_status op_gguf(void *arg)
{
    attn_bpe *t = NULL;
    attn_status st = from_file(arg, &t);
    attn_bpe_free(t);
    return st;
}

T_TEST(bpe_out_of_memory)
{
    T_EQ_INT(t_oom_sweep(op_create, NULL), 1); /* one block */
    attn_bpe *t = small_bpe(ATTN_BPE_PRE_SMOLLM);
    T_EQ_INT(t_oom_sweep(op_encode, t), 1); /* the scratch of the longest word */
    attn_bpe_free(t);
    t_gguf w = vocab_file(ALL, "gpt2", "smollm", N_TOK, 1, NULL);
    T_EQ_INT(t_oom_sweep(op_gguf, &w), 4); /* file copy and index, the string table, the tokenizer */
    t_gguf_free(&w);
}
