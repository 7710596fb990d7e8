/* fuzz_bpe.c - libFuzzer target for the byte-level BPE tokenizer
 * (src/text/bpe.c). The input is an option byte, a vocabulary and a text:
 *   byte 0: bit 0 the pre-tokenizer (GPT-2 or SmolLM), bit 1 parse_special
 *   then lines up to a blank line: tokens, and after a line "#merges" merges
 *   then the text.
 * The fuzzed vocabulary builds or fails with ATTN_BAD_PARAM; a built one
 * encodes the text into ids inside it. The text is also encoded with a
 * vocabulary of all 256 byte characters and some merges, where everything
 * must round-trip exactly: decoding the ids, streaming them, and the
 * pre-tokenizer's words tiling the text. Invalid UTF-8 is ATTN_BAD_PARAM
 * everywhere. A failed check aborts. */
#include <attn/text.h>

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) abort();
}

/* GPT-2's character for byte b, as UTF-8 into out; returns its length. */
static int byte_char(unsigned b, char *out)
{
    unsigned c = b <= 32 ? 256 + b : (b >= 127 && b <= 160) ? b + 162 : b == 173 ? 0x143 : b;
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

enum { N_FULL = 256 + 6 };
static char full_chars[256][3];
static const char *full_tokens[N_FULL];
static int32_t full_types[N_FULL];
static const char *const full_merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "1 2", "! !"};

/* All 256 byte characters, some merges, and <|im_start|> as a CONTROL token:
 * a fixed vocabulary, so it is built once per pre-tokenizer (on first use)
 * and reused by every input (encoding, decoding and streaming take it
 * const). */
static const attn_bpe *full_vocab(attn_bpe_pre pre)
{
    static attn_bpe *built[2];
    int which = pre == ATTN_BPE_PRE_SMOLLM;
    if (built[which] != NULL) return built[which];
    for (unsigned b = 0; b < 256; b++) {
        int k = byte_char(b, full_chars[b]);
        full_chars[b][k] = '\0';
        full_tokens[b] = full_chars[b];
        full_types[b] = ATTN_BPE_TYPE_NORMAL;
    }
    static const char *const extra[6] = {"\xc4\xa0t", "he", "\xc4\xa0the", "12", "!!", "<|im_start|>"};
    for (int k = 0; k < 6; k++) {
        full_tokens[256 + k] = extra[k];
        full_types[256 + k] = k == 5 ? ATTN_BPE_TYPE_CONTROL : ATTN_BPE_TYPE_NORMAL;
    }
    attn_bpe_config c = attn_bpe_config_default();
    c.n_tokens = N_FULL;
    c.tokens = full_tokens;
    c.token_types = full_types;
    c.n_merges = 5;
    c.merges = full_merges;
    c.pre = pre;
    check(attn_bpe_create(&c, &built[which]) == ATTN_OK);
    return built[which];
}

/* Everything must round-trip through the full vocabulary. */
static void round_trip(const attn_bpe *t, const char *text, size_t len, int special)
{
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    int64_t n = 0, count = 0;
    attn_status st = attn_bpe_encode(t, text, len, special, ids, (int64_t)len, &n);
    check(st == ATTN_OK || st == ATTN_BAD_PARAM);
    if (st == ATTN_OK) {
        check(attn_bpe_encode(t, text, len, special, NULL, 0, &count) == ATTN_OK && count == n);
        char *back = malloc(len + 1);
        size_t m = 0;
        check(attn_bpe_decode(t, ids, n, 0, back, len, &m) == ATTN_OK && m == len);
        check(len == 0 || memcmp(back, text, len) == 0);
        attn_bpe_stream s = {{0}, 0};
        char piece[3 * (3 + ATTN_BPE_MAX_TOKEN_BYTES)];
        size_t k = 0, got;
        int invalid = 0;
        for (int64_t i = 0; i < n; i++) {
            check(attn_bpe_stream_push(t, &s, ids[i], piece, sizeof piece, &got, &invalid) == ATTN_OK);
            check(!invalid && k + got <= len && memcmp(back + k, piece, got) == 0);
            k += got;
        }
        check(attn_bpe_stream_flush(&s, piece, sizeof piece, &got, &invalid) == ATTN_OK);
        check(got == 0 && !invalid && k == len);
        free(back);
        int64_t (*spans)[2] = malloc((len + 1) * sizeof *spans);
        check(attn_bpe_pretokenize(t, text, len, &spans[0][0], (int64_t)len, &n) == ATTN_OK);
        for (int64_t i = 0; i < n; i++)
            check(spans[i][0] == (i == 0 ? 0 : spans[i - 1][1]) && spans[i][1] > spans[i][0]);
        check(n == 0 ? len == 0 : spans[n - 1][1] == (int64_t)len);
        free(spans);
    }
    free(ids);
}

/* The fuzzed vocabulary: lines of vocab [len] (tokens, "#merges", merges). */
static void fuzzed_vocab(const char *vocab, size_t len, attn_bpe_pre pre, const char *text,
                         size_t text_len, int special)
{
    const char **lines = malloc((len + 1) * sizeof *lines);
    size_t *lens = malloc((len + 1) * sizeof *lens);
    int64_t n = 0, n_tok = -1;
    for (size_t i = 0; i <= len;) {
        const char *nl = memchr(vocab + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - vocab) : len;
        if (end - i == 7 && memcmp(vocab + i, "#merges", 7) == 0 && n_tok < 0) {
            n_tok = n;
        } else {
            lines[n] = vocab + i;
            lens[n++] = end - i;
        }
        i = end + 1;
    }
    if (n_tok < 0) n_tok = n;
    attn_bpe_config c = attn_bpe_config_default();
    c.n_tokens = n_tok;
    c.tokens = lines;
    c.token_lens = lens;
    c.n_merges = n - n_tok;
    c.merges = lines + n_tok;
    c.merge_lens = lens + n_tok;
    c.pre = pre;
    attn_bpe *t = NULL;
    attn_status st = attn_bpe_create(&c, &t);
    check(st == ATTN_OK || st == ATTN_BAD_PARAM);
    if (st == ATTN_OK) {
        int32_t *ids = malloc((text_len + 1) * sizeof *ids);
        int64_t m = 0;
        st = attn_bpe_encode(t, text, text_len, special, ids, (int64_t)text_len, &m);
        check(st == ATTN_OK || st == ATTN_BAD_PARAM);
        for (int64_t i = 0; st == ATTN_OK && i < m; i++) check(ids[i] >= 0 && ids[i] < n_tok);
        free(ids);
        attn_bpe_free(t);
    }
    free(lines);
    free(lens);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0) return 0;
    attn_bpe_pre pre = (data[0] & 1) ? ATTN_BPE_PRE_SMOLLM : ATTN_BPE_PRE_GPT2;
    int special = (data[0] >> 1) & 1;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1, split = n;
    for (size_t i = 0; i + 1 < n; i++)
        if (rest[i] == '\n' && rest[i + 1] == '\n') {
            split = i;
            break;
        }
    const char *text = split < n ? rest + split + 2 : rest + n;
    size_t text_len = split < n ? n - split - 2 : 0;
    fuzzed_vocab(rest, split, pre, text, text_len, special);
    round_trip(full_vocab(pre), text, text_len, special);
    return 0;
}
