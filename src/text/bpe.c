/* bpe.c - the byte-level BPE tokenizer of GPT-2-style models (attn/text.h),
 * as Hugging Face's Rust tokenizers runs SmolLM2's tokenizer.json: added
 * tokens, the digit split, the GPT-2 regex, GPT-2's byte characters, BPE by
 * merge rank; and decoding, whole or as a stream that holds back unfinished
 * UTF-8 characters.
 *
 * The vocabulary lives in one allocation: token strings and the bytes each
 * token decodes to in a pool, a hash table from strings to ids, and a hash
 * table from pairs of ids to (rank, merged id). BPE on a word runs on a
 * doubly linked list of symbols with a binary heap of candidate merges
 * ordered by (rank, position), with the reference's rule for stale entries
 * (the pair now at that position must still merge into the same token), so
 * the merges happen in the reference's order.
 *
 * Encoding walks the text up to three times with the same code: measuring
 * the longest word (for the scratch), counting ids when the caller's buffer
 * may be too small, and writing them.
 */
#include "text/bpe_build.h"

#include "core/carve.h"
#include "core/check.h"
#include "core/utf8.h"
#include "text/unicode_data.h"

#include <stdlib.h>
#include <string.h>

/* GPT-2's byte characters: code points below this. */
enum { N_BYTE_CHARS = 0x144 };

typedef struct merge_slot {
    uint64_t key;   /* (left << 32 | right) + 1; 0 empty */
    uint32_t rank;
    int32_t id;     /* the merged token */
} merge_slot;

struct attn_bpe {
    int32_t n;
    char *pool;              /* token strings (NUL-terminated), then decoded bytes */
    size_t *str_off;         /* [n] token string of id i at pool + str_off[i] */
    uint32_t *str_len;       /* [n] its bytes */
    size_t *dec_off;         /* [n] the bytes id i decodes to */
    uint32_t *dec_len;       /* [n] */
    uint8_t *type;           /* [n] attn_bpe_type */
    int32_t *slots;          /* [mask + 1] ids by string hash; -1 empty */
    size_t mask;
    merge_slot *merges;      /* [merge_mask + 1] */
    size_t merge_mask;
    uint64_t *added;         /* [n_added] CONTROL and USER_DEFINED tokens: first byte << 56
                                | (2^24 - 1 - bytes) << 32 | id, sorted: by first byte,
                                longest first */
    uint32_t added_start[257]; /* those starting with byte b: [added_start[b], added_start[b+1]) */
    int32_t n_added;
    int32_t byte_id[256];    /* the token of each byte's character; -1 if absent */
    int32_t special[4];      /* attn_bpe_special */
    attn_bpe_pre pre;
};

/* ---- GPT-2's byte characters -------------------------------------------------------- */

/* The character standing for byte b: printable Latin-1 bytes (33-126,
 * 161-172, 174-255) themselves, the other 68 U+0100 + k in byte order:
 * 0-32 are U+0100-U+0120, 127-160 U+0121-U+0142, 173 U+0143. */
static uint32_t byte_char(unsigned b)
{
    if (b <= 32) return 256 + b;
    if (b >= 127 && b <= 160) return b + 162;
    if (b == 173) return 0x143;
    return b;
}

/* The byte a character stands for, or -1. */
static int char_byte(uint32_t c)
{
    if (c >= N_BYTE_CHARS || c <= 32 || (c >= 127 && c <= 160) || c == 173) return -1;
    if (c < 256) return (int)c;
    if (c <= 288) return (int)(c - 256);
    if (c <= 322) return (int)(c - 162);
    return 173;
}

/* The bytes token s [len] (valid UTF-8) decodes to, into out (if not NULL);
 * returns their count. Characters are bytes if all of them are GPT-2 byte
 * characters, else the token is its own UTF-8. */
static size_t decoded(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = 0;
        i += (size_t)attn__utf8_decode((const unsigned char *)s + i, len - i, &c);
        int b = char_byte(c);
        if (b < 0) {
            if (out != NULL) memcpy(out, s, len);
            return len;
        }
        if (out != NULL) out[n] = (char)b;
        n++;
    }
    return n;
}

/* ---- lookups ------------------------------------------------------------------------- */

/* The slot of the token a [alen] followed by b [blen], or the empty slot where it would go. */
static size_t find_slot(const attn_bpe *t, const char *a, size_t alen, const char *b, size_t blen)
{
    uint32_t h = attn__hash_more(attn__hash_bytes(a, alen), b, blen);
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        int32_t id = t->slots[i];
        if (id < 0) return i;
        const char *s = t->pool + t->str_off[id];
        if (t->str_len[id] == alen + blen && memcmp(s, a, alen) == 0 &&
            memcmp(s + alen, b, blen) == 0)
            return i;
    }
}

static int32_t lookup2(const attn_bpe *t, const char *a, size_t alen, const char *b, size_t blen)
{
    return t->slots[find_slot(t, a, alen, b, blen)];
}

static size_t merge_hash(uint64_t key, size_t mask)
{
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key ^ (key >> 29)) & mask;
}

static merge_slot *merge_find(const attn_bpe *t, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (size_t i = merge_hash(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        merge_slot *m = &t->merges[i];
        if (m->key == key || m->key == 0) return m;
    }
}

/* ---- building ------------------------------------------------------------------------ */

attn_bpe_config attn_bpe_config_default(void)
{
    attn_bpe_config c;
    memset(&c, 0, sizeof c);
    c.pre = ATTN_BPE_PRE_GPT2;
    c.bos_id = c.eos_id = c.pad_id = c.unk_id = -1;
    return c;
}

static size_t str_len(const char *const *s, const size_t *lens, int64_t i)
{
    return lens != NULL ? lens[i] : strlen(s[i]);
}

/* Sizes of what a vocabulary needs, measured while checking it. */
typedef struct plan {
    size_t str_bytes, dec_bytes;
    int32_t n_added;
} plan;

/* Token i of the configuration: checked, its sizes added to p. */
static attn_status check_token(const attn__bpe_src *src, const attn_bpe_config *cfg, int64_t i,
                               plan *p)
{
    long long li = (long long)i;
    if (cfg->tokens[i] == NULL)
        return attn_fail(src->bad, "%s: %s[%lld] is NULL", src->prefix, src->tokens, li);
    size_t len = str_len(cfg->tokens, cfg->token_lens, i);
    const char *s = cfg->tokens[i];
    if (len == 0 || len > ATTN_BPE_MAX_TOKEN_BYTES)
        return attn_fail(src->bad, "%s: %s[%lld] is %zu bytes long; it must be 1 to %d", src->prefix,
                         src->tokens, li, len, ATTN_BPE_MAX_TOKEN_BYTES);
    if (memchr(s, 0, len) != NULL)
        return attn_fail(src->bad, "%s: %s[%lld] contains a NUL byte", src->prefix, src->tokens, li);
    for (size_t k = 0; k < len;) {
        uint32_t c;
        int m = attn__utf8_decode((const unsigned char *)s + k, len - k, &c);
        if (m == 0)
            return attn_fail(src->bad, "%s: %s[%lld] is not valid UTF-8 (byte %zu)", src->prefix,
                             src->tokens, li, k);
        k += (size_t)m;
    }
    int32_t type = cfg->token_types != NULL ? cfg->token_types[i] : ATTN_BPE_TYPE_NORMAL;
    if (type < 0 || type > ATTN_BPE_TYPE_BYTE)
        return attn_fail(src->bad, "%s: %s[%lld] is %d; token types are 0 to 6", src->prefix,
                         src->types, li, (int)type);
    if (type == ATTN_BPE_TYPE_CONTROL || type == ATTN_BPE_TYPE_USER_DEFINED) p->n_added++;
    p->str_bytes += len + 1;
    p->dec_bytes += decoded(s, len, NULL);
    return ATTN_OK;
}

static attn_status check_config(const attn__bpe_src *src, const attn_bpe_config *cfg, plan *p)
{
    if (cfg->n_tokens < 1 || cfg->n_tokens > INT32_MAX)
        return attn_fail(src->bad, "%s: the vocabulary has %lld tokens; it must have 1 to %d",
                         src->prefix, (long long)cfg->n_tokens, INT32_MAX);
    if (cfg->n_merges < 0 || cfg->n_merges > INT32_MAX)
        return attn_fail(src->bad, "%s: there are %lld merges; at most %d are allowed", src->prefix,
                         (long long)cfg->n_merges, INT32_MAX);
    if (cfg->tokens == NULL)
        return attn_fail(ATTN_NULL_ARG, "%s: %s is NULL", src->prefix, src->tokens);
    if (cfg->merges == NULL && cfg->n_merges > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: %s is NULL", src->prefix, src->merges);
    if (cfg->pre != ATTN_BPE_PRE_GPT2 && cfg->pre != ATTN_BPE_PRE_SMOLLM)
        return attn_fail(ATTN_BAD_PARAM, "%s: the pre-tokenizer is %d; it must be "
                         "ATTN_BPE_PRE_GPT2 or ATTN_BPE_PRE_SMOLLM", src->prefix, (int)cfg->pre);
    const int32_t ids[4] = {cfg->bos_id, cfg->eos_id, cfg->pad_id, cfg->unk_id};
    for (int k = 0; k < 4; k++)
        if (ids[k] < -1 || ids[k] >= cfg->n_tokens)
            return attn_fail(src->bad, "%s: %s is %d; it must be -1 or a token id below %lld",
                             src->prefix, src->special[k], (int)ids[k], (long long)cfg->n_tokens);
    memset(p, 0, sizeof *p);
    for (int64_t i = 0; i < cfg->n_tokens; i++) {
        attn_status st = check_token(src, cfg, i, p);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

/* One allocation for t and every table; NULL if it does not fit or fails. */
static attn_bpe *allocate(const attn_bpe_config *cfg, const plan *p)
{
    size_t n = (size_t)cfg->n_tokens, total = 0;
    size_t slots = attn__table_size(n), merge_slots = attn__table_size((size_t)cfg->n_merges);
    if (!attn__part_add(&total, 1, sizeof(attn_bpe)) || !attn__part_add(&total, n, sizeof(size_t)) ||
        !attn__part_add(&total, n, sizeof(uint32_t)) || !attn__part_add(&total, n, sizeof(size_t)) ||
        !attn__part_add(&total, n, sizeof(uint32_t)) || !attn__part_add(&total, n, 1) ||
        !attn__part_add(&total, slots, sizeof(int32_t)) ||
        !attn__part_add(&total, merge_slots, sizeof(merge_slot)) ||
        !attn__part_add(&total, (size_t)p->n_added, sizeof(uint64_t)) ||
        !attn__part_add(&total, p->str_bytes, 1) || !attn__part_add(&total, p->dec_bytes, 1))
        return NULL;
    unsigned char *block = attn_calloc(1, total), *q = block;
    if (block == NULL) return NULL;
    attn_bpe *t = attn__part_take(&q, 1, sizeof *t);
    t->str_off = attn__part_take(&q, n, sizeof(size_t));
    t->str_len = attn__part_take(&q, n, sizeof(uint32_t));
    t->dec_off = attn__part_take(&q, n, sizeof(size_t));
    t->dec_len = attn__part_take(&q, n, sizeof(uint32_t));
    t->type = attn__part_take(&q, n, 1);
    t->slots = attn__part_take(&q, slots, sizeof(int32_t));
    t->merges = attn__part_take(&q, merge_slots, sizeof(merge_slot));
    t->added = attn__part_take(&q, (size_t)p->n_added, sizeof(uint64_t));
    t->pool = attn__part_take(&q, p->str_bytes + p->dec_bytes, 1);
    t->n = (int32_t)n;
    t->mask = slots - 1;
    t->merge_mask = merge_slots - 1;
    t->n_added = p->n_added;
    memset(t->slots, 0xFF, slots * sizeof(int32_t));
    return t;
}

/* The strings, decoded bytes and hash table of the tokens (checked). */
static attn_status fill_tokens(const attn__bpe_src *src, const attn_bpe_config *cfg, attn_bpe *t,
                               size_t str_bytes)
{
    size_t so = 0, dof = str_bytes;
    for (int32_t i = 0; i < t->n; i++) {
        size_t len = str_len(cfg->tokens, cfg->token_lens, i);
        memcpy(t->pool + so, cfg->tokens[i], len);
        t->pool[so + len] = '\0';
        t->str_off[i] = so;
        t->str_len[i] = (uint32_t)len;
        t->dec_off[i] = dof;
        t->dec_len[i] = (uint32_t)decoded(t->pool + so, len, t->pool + dof);
        t->type[i] = (uint8_t)(cfg->token_types != NULL ? cfg->token_types[i]
                                                        : ATTN_BPE_TYPE_NORMAL);
        so += len + 1;
        dof += t->dec_len[i];
        size_t slot = find_slot(t, t->pool + t->str_off[i], len, "", 0);
        if (t->slots[slot] >= 0)
            return attn_fail(src->bad, "%s: %s[%d] (\"%.100s\") repeats %s[%d]", src->prefix,
                             src->tokens, (int)i, t->pool + t->str_off[i], src->tokens,
                             (int)t->slots[slot]);
        t->slots[slot] = i;
    }
    for (int b = 0; b < 256; b++) {
        char u[4];
        int k = attn__utf8_encode(byte_char((unsigned)b), u);
        t->byte_id[b] = lookup2(t, u, (size_t)k, "", 0);
    }
    return ATTN_OK;
}

/* Merge i: "left right" of two tokens whose concatenation is a token. */
static attn_status add_merge(const attn__bpe_src *src, const attn_bpe_config *cfg, attn_bpe *t,
                             int64_t i)
{
    long long li = (long long)i;
    const char *m = cfg->merges[i];
    if (m == NULL) return attn_fail(src->bad, "%s: %s[%lld] is NULL", src->prefix, src->merges, li);
    size_t len = str_len(cfg->merges, cfg->merge_lens, i);
    const char *sp = memchr(m, ' ', len);
    int shown = len > 100 ? 100 : (int)len; /* m may lack a NUL (lengths given) */
    if (sp == NULL || memchr(sp + 1, ' ', len - (size_t)(sp - m) - 1) != NULL)
        return attn_fail(src->bad, "%s: %s[%lld] (\"%.*s\") must be two tokens separated by "
                         "one space", src->prefix, src->merges, li, shown, m);
    size_t alen = (size_t)(sp - m), blen = len - alen - 1;
    int32_t a = lookup2(t, m, alen, "", 0), b = lookup2(t, sp + 1, blen, "", 0);
    int32_t ab = lookup2(t, m, alen, sp + 1, blen);
    if (a < 0 || b < 0 || ab < 0)
        return attn_fail(src->bad, "%s: %s[%lld] (\"%.*s\"): %s is not a token", src->prefix,
                         src->merges, li, shown, m,
                         a < 0 ? "the left part" : b < 0 ? "the right part" : "the merged pair");
    merge_slot *slot = merge_find(t, a, b);
    if (slot->key != 0)
        return attn_fail(src->bad, "%s: %s[%lld] (\"%.*s\") repeats %s[%u]", src->prefix,
                         src->merges, li, shown, m, src->merges, slot->rank);
    slot->key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    slot->rank = (uint32_t)i;
    slot->id = ab;
    return ATTN_OK;
}

static int by_key(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* The added tokens, sorted for match_added. */
static void index_added(attn_bpe *t)
{
    int32_t k = 0;
    for (int32_t i = 0; i < t->n; i++) {
        if (t->type[i] != ATTN_BPE_TYPE_CONTROL && t->type[i] != ATTN_BPE_TYPE_USER_DEFINED)
            continue;
        uint64_t first = (unsigned char)t->pool[t->str_off[i]];
        t->added[k++] = first << 56 | (uint64_t)(0xFFFFFFu - t->str_len[i]) << 32 | (uint32_t)i;
    }
    if (k > 1) qsort(t->added, (size_t)k, sizeof *t->added, by_key);
    for (int32_t i = 0; i < k; i++) t->added_start[(t->added[i] >> 56) + 1]++;
    for (int b = 0; b < 256; b++) t->added_start[b + 1] += t->added_start[b];
}

attn_status attn__bpe_build(const attn__bpe_src *src, const attn_bpe_config *cfg, attn_bpe **out)
{
    plan p;
    attn_status st = check_config(src, cfg, &p);
    if (st != ATTN_OK) return st;
    attn_bpe *t = allocate(cfg, &p);
    if (t == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for a vocabulary of %lld tokens and %lld "
                         "merges", src->prefix, (long long)cfg->n_tokens, (long long)cfg->n_merges);
    st = fill_tokens(src, cfg, t, p.str_bytes);
    for (int64_t i = 0; i < cfg->n_merges && st == ATTN_OK; i++) st = add_merge(src, cfg, t, i);
    if (st != ATTN_OK) {
        attn_release(t);
        return st;
    }
    index_added(t);
    t->special[ATTN_BPE_SPECIAL_BOS] = cfg->bos_id;
    t->special[ATTN_BPE_SPECIAL_EOS] = cfg->eos_id;
    t->special[ATTN_BPE_SPECIAL_PAD] = cfg->pad_id;
    t->special[ATTN_BPE_SPECIAL_UNK] = cfg->unk_id;
    t->pre = cfg->pre;
    *out = t;
    return ATTN_OK;
}

attn_status attn_bpe_create(const attn_bpe_config *cfg, attn_bpe **out)
{
    const char *fn = "attn_bpe_create";
    ATTN__NOT_NULL(fn, cfg);
    ATTN__NOT_NULL(fn, out);
    static const attn__bpe_src src = {
        "attn_bpe_create", ATTN_BAD_PARAM, "cfg->tokens", "cfg->token_types", "cfg->merges",
        {"cfg->bos_id", "cfg->eos_id", "cfg->pad_id", "cfg->unk_id"}};
    return attn__bpe_build(&src, cfg, out);
}

void attn_bpe_free(attn_bpe *t) { attn_release(t); }

/* ---- getters ------------------------------------------------------------------------- */

int64_t attn_bpe_vocab_size(const attn_bpe *t) { return t != NULL ? t->n : -1; }

static bool valid_id(const attn_bpe *t, int32_t id) { return t != NULL && id >= 0 && id < t->n; }

const char *attn_bpe_token(const attn_bpe *t, int32_t id)
{
    return valid_id(t, id) ? t->pool + t->str_off[id] : NULL;
}

const char *attn_bpe_token_bytes(const attn_bpe *t, int32_t id, size_t *len)
{
    if (!valid_id(t, id) || len == NULL) return NULL;
    *len = t->dec_len[id];
    return t->pool + t->dec_off[id];
}

int attn_bpe_token_type(const attn_bpe *t, int32_t id) { return valid_id(t, id) ? t->type[id] : -1; }

int32_t attn_bpe_token_id(const attn_bpe *t, const char *token)
{
    if (t == NULL || token == NULL) return -1;
    return lookup2(t, token, strlen(token), "", 0);
}

int32_t attn_bpe_special_id(const attn_bpe *t, attn_bpe_special which)
{
    if (t == NULL || (unsigned)which > ATTN_BPE_SPECIAL_UNK) return -1;
    return t->special[which];
}

/* ---- encoding ------------------------------------------------------------------------ */

/* Character classes of the pre-tokenizer. */
enum { C_OTHER = ATTN__UC_GPT2_OTHER, C_LETTER = ATTN__UC_GPT2_LETTER,
       C_NUMBER = ATTN__UC_GPT2_NUMBER, C_NUMERIC = ATTN__UC_GPT2_NUMERIC, C_SPACE = 4 };

/* The class of the character at s [n] (valid UTF-8); *len its bytes. */
static int char_class(const unsigned char *s, size_t n, size_t *len)
{
    unsigned b = s[0];
    if (b < 0x80) {
        *len = 1;
        if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return C_LETTER;
        if (b >= '0' && b <= '9') return C_NUMBER;
        if (b == ' ' || (b >= '\t' && b <= '\r')) return C_SPACE;
        return C_OTHER;
    }
    uint32_t c = 0;
    *len = (size_t)attn__utf8_decode(s, n, &c);
    return attn__uc_is_space(c) ? C_SPACE : attn__uc_gpt2_class(c);
}

/* The regex's class of a run: numeric-only characters are [^\s\p{L}\p{N}]. */
static int run_class(int c) { return c == C_NUMERIC ? C_OTHER : c; }

/* The length of the GPT-2 regex's match at the start of s [n] (n > 0). */
static size_t gpt2_match(const unsigned char *s, size_t n)
{
    if (s[0] == '\'' && n >= 2) {
        unsigned char a = s[1], b = n >= 3 ? s[2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    size_t len, i = 0;
    int c = char_class(s, n, &len);
    if (s[0] == ' ' && n > 1) { /* " ?X+": the space joins a run that follows it */
        size_t len1;
        int c1 = char_class(s + 1, n - 1, &len1);
        if (c1 != C_SPACE) {
            i = 1;
            c = c1;
            len = len1;
        }
    }
    if (c != C_SPACE) { /* \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+ */
        int want = run_class(c);
        i += len;
        while (i < n && run_class(char_class(s + i, n - i, &len)) == want) i += len;
        return i;
    }
    /* \s+(?!\S) gives back the last character of a run before a non-space;
     * a single space there is \s+ */
    size_t last = 0;
    i = len;
    while (i < n && char_class(s + i, n - i, &len) == C_SPACE) {
        last = i;
        i += len;
    }
    return i == n || last == 0 ? i : last;
}

typedef struct sym {
    int32_t id;      /* -1: merged into the symbol on its left */
    int64_t prev, next;
} sym;

typedef struct cand {
    uint32_t rank;
    int32_t id;      /* the token the pair merges into */
    int64_t pos;     /* the pair's left symbol */
} cand;

/* What a walk over the text does with each word: measure the longest,
 * count or write its ids, count or write its byte span. */
enum { MODE_MEASURE, MODE_COUNT, MODE_WRITE, MODE_SPANS };

typedef struct enc {
    const attn_bpe *t;
    int mode;
    size_t longest;      /* MODE_MEASURE: the longest word */
    int64_t n;           /* ids so far */
    int32_t *ids;        /* MODE_WRITE */
    const unsigned char *base; /* MODE_SPANS: the text */
    int64_t *spans;      /* MODE_SPANS: [n][2] word byte ranges, or NULL to count */
    sym *syms;           /* [longest] */
    cand *heap;          /* [3 * longest] */
    size_t heap_n;
} enc;

static bool cand_less(const cand *a, const cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(enc *e, cand c)
{
    size_t i = e->heap_n++;
    while (i > 0 && cand_less(&c, &e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = c;
}

static cand heap_pop(enc *e)
{
    cand top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= e->heap_n) break;
        if (k + 1 < e->heap_n && cand_less(&e->heap[k + 1], &e->heap[k])) k++;
        if (!cand_less(&e->heap[k], &last)) break;
        e->heap[i] = e->heap[k];
        i = k;
    }
    if (e->heap_n > 0) e->heap[i] = last;
    return top;
}

/* Pushes the merge of the pair starting at symbol pos, if it has one. */
static void push_pair(enc *e, int64_t pos)
{
    int64_t next = e->syms[pos].next;
    if (next < 0) return;
    const merge_slot *m = merge_find(e->t, e->syms[pos].id, e->syms[next].id);
    if (m->key == 0) return;
    cand c = {m->rank, m->id, pos};
    heap_push(e, c);
}

static void emit(enc *e, int32_t id)
{
    if (e->mode == MODE_WRITE) e->ids[e->n] = id;
    e->n++;
}

/* BPE of the bytes of one word. */
static void word(enc *e, const unsigned char *w, size_t len)
{
    if (e->mode == MODE_MEASURE) {
        if (len > e->longest) e->longest = len;
        return;
    }
    if (e->mode == MODE_SPANS) {
        if (e->spans != NULL) {
            e->spans[2 * e->n] = w - e->base;
            e->spans[2 * e->n + 1] = w - e->base + (int64_t)len;
        }
        e->n++;
        return;
    }
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = e->t->byte_id[w[i]];
        if (id < 0) continue; /* a byte the vocabulary lacks */
        e->syms[n].id = id;
        e->syms[n].prev = n - 1;
        e->syms[n].next = -1;
        if (n > 0) e->syms[n - 1].next = n;
        n++;
    }
    e->heap_n = 0;
    for (int64_t i = 0; i + 1 < n; i++) push_pair(e, i);
    while (e->heap_n > 0) {
        cand c = heap_pop(e);
        sym *s = &e->syms[c.pos];
        if (s->id < 0 || s->next < 0) continue;
        const merge_slot *m = merge_find(e->t, s->id, e->syms[s->next].id);
        if (m->key == 0 || m->id != c.id) continue; /* stale: the pair has changed */
        sym *r = &e->syms[s->next];
        s->id = c.id;
        r->id = -1;
        s->next = r->next;
        if (s->next >= 0) e->syms[s->next].prev = c.pos;
        if (s->prev >= 0) push_pair(e, s->prev);
        push_pair(e, c.pos);
    }
    for (int64_t i = n > 0 ? 0 : -1; i >= 0; i = e->syms[i].next) emit(e, e->syms[i].id);
}

/* Steps 3-5 on one piece. */
static void regex_words(enc *e, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t m = gpt2_match(s + i, n - i);
        word(e, s + i, m);
        i += m;
    }
}

/* Steps 2-5 on the text between two added tokens. */
static void segment(enc *e, const unsigned char *s, size_t n)
{
    if (e->t->pre != ATTN_BPE_PRE_SMOLLM) {
        regex_words(e, s, n);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        int c = char_class(s + i, n - i, &len);
        if (c == C_NUMBER || c == C_NUMERIC) {
            regex_words(e, s + start, i - start);
            word(e, s + i, len);
            start = i + len;
        }
        i += len;
    }
    regex_words(e, s + start, n - start);
}

/* The added token written at s [n], if any: its id, and *len its bytes. */
static int32_t match_added(const attn_bpe *t, const unsigned char *s, size_t n, int parse_special,
                           size_t *len)
{
    for (uint32_t k = t->added_start[s[0]]; k < t->added_start[s[0] + 1]; k++) {
        int32_t id = (int32_t)(uint32_t)t->added[k];
        size_t l = t->str_len[id];
        if (!parse_special && t->type[id] == ATTN_BPE_TYPE_CONTROL) continue;
        if (l <= n && memcmp(s, t->pool + t->str_off[id], l) == 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

static void encode_text(enc *e, const unsigned char *s, size_t n, int parse_special)
{
    e->n = 0;
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        int32_t id = e->t->n_added > 0 ? match_added(e->t, s + i, n - i, parse_special, &len) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        segment(e, s + start, i - start);
        if (e->mode != MODE_MEASURE) emit(e, id);
        i += len;
        start = i;
    }
    segment(e, s + start, n - start);
}

/* The arguments of attn_bpe_encode (out: ids, 4-byte elements) or
 * attn_bpe_pretokenize (out: spans, 16-byte elements). */
static attn_status check_encode_args(const char *fn, const char *out_name, size_t out_size,
                                     const attn_bpe *t, const char *text, size_t len,
                                     const void *out, int64_t cap, const int64_t *n)
{
    ATTN__NOT_NULL(fn, t);
    ATTN__NOT_NULL(fn, n);
    if (text == NULL && len > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'text' is NULL and len is %zu", fn, len);
    ATTN__DIM(fn, cap);
    if (out == NULL && cap > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument '%s' is NULL and cap is %lld", fn, out_name,
                         (long long)cap);
    int64_t out_bytes;
    ATTN__MUL(fn, cap, (int64_t)out_size, &out_bytes);
    attn__span spans[] = {{out_name, out, (size_t)out_bytes}, {"n", n, sizeof *n},
                             {"text", text, len}};
    attn_status st = attn__disjoint(fn, spans, 3, 2);
    if (st != ATTN_OK) return st;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = attn__utf8_decode((const unsigned char *)text + i, len - i, &c);
        if (k == 0)
            return attn_fail(ATTN_BAD_PARAM, "%s: argument 'text' is not valid UTF-8 at byte %zu "
                             "(0x%02x)", fn, i, (unsigned char)text[i]);
        i += (size_t)k;
    }
    return ATTN_OK;
}

attn_status attn_bpe_encode(const attn_bpe *t, const char *text, size_t len, int parse_special,
                            int32_t *ids, int64_t cap, int64_t *n)
{
    attn_status st = check_encode_args("attn_bpe_encode", "ids", 4, t, text, len, ids, cap, n);
    if (st != ATTN_OK) return st;
    const unsigned char *s = (const unsigned char *)text;
    enc e;
    memset(&e, 0, sizeof e);
    e.t = t;
    e.mode = MODE_MEASURE;
    encode_text(&e, s, len, parse_special);
    size_t w = e.longest > 0 ? e.longest : 1;
    if (w > SIZE_MAX / (sizeof(sym) + 3 * sizeof(cand)))
        return attn_fail(ATTN_NO_MEMORY, "attn_bpe_encode: a word of %zu bytes is too long", w);
    e.syms = attn_alloc(w * (sizeof(sym) + 3 * sizeof(cand)));
    if (e.syms == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_bpe_encode: no memory for a word of %zu bytes", w);
    e.heap = (cand *)(e.syms + w);
    if (ids == NULL || (uint64_t)cap < (uint64_t)len) { /* the ids may not fit: count first */
        e.mode = MODE_COUNT;
        encode_text(&e, s, len, parse_special);
        if (ids == NULL || e.n > cap) {
            attn_release(e.syms);
            if (ids != NULL)
                return attn_fail(ATTN_BAD_DIM, "attn_bpe_encode: argument 'cap' is %lld; the text "
                                 "needs %lld ids", (long long)cap, (long long)e.n);
            *n = e.n;
            return ATTN_OK;
        }
    }
    e.mode = MODE_WRITE;
    e.ids = ids;
    encode_text(&e, s, len, parse_special);
    attn_release(e.syms);
    *n = e.n;
    return ATTN_OK;
}

attn_status attn_bpe_pretokenize(const attn_bpe *t, const char *text, size_t len, int64_t *spans,
                                 int64_t cap, int64_t *n)
{
    attn_status st = check_encode_args("attn_bpe_pretokenize", "spans", 16, t, text, len, spans,
                                       cap, n);
    if (st != ATTN_OK) return st;
    enc e;
    memset(&e, 0, sizeof e);
    e.t = t;
    e.mode = MODE_SPANS;
    e.base = (const unsigned char *)text;
    if (spans == NULL || (uint64_t)cap < (uint64_t)len) { /* count first */
        segment(&e, e.base, len);
        if (spans == NULL || e.n > cap) {
            if (spans != NULL)
                return attn_fail(ATTN_BAD_DIM, "attn_bpe_pretokenize: argument 'cap' is %lld; the "
                                 "text has %lld words", (long long)cap, (long long)e.n);
            *n = e.n;
            return ATTN_OK;
        }
        e.n = 0;
    }
    e.spans = spans;
    segment(&e, e.base, len);
    *n = e.n;
    return ATTN_OK;
}

/* ---- decoding ------------------------------------------------------------------------- */

attn_status attn_bpe_decode(const attn_bpe *t, const int32_t *ids, int64_t n_ids, int skip_special,
                            char *buf, size_t cap, size_t *n)
{
    const char *fn = "attn_bpe_decode";
    ATTN__NOT_NULL(fn, t);
    ATTN__NOT_NULL(fn, n);
    ATTN__DIM(fn, n_ids);
    if (ids == NULL && n_ids > 0) return attn_fail(ATTN_NULL_ARG, "%s: argument 'ids' is NULL", fn);
    if (buf == NULL && cap > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'buf' is NULL and cap is %zu", fn, cap);
    size_t total = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        if (!valid_id(t, ids[i]))
            return attn_fail(ATTN_BAD_PARAM, "%s: ids[%lld] is %d; ids are 0 to %d", fn,
                             (long long)i, (int)ids[i], (int)t->n - 1);
        if (!(skip_special && t->type[ids[i]] == ATTN_BPE_TYPE_CONTROL)) total += t->dec_len[ids[i]];
    }
    if (buf == NULL) {
        *n = total;
        return ATTN_OK;
    }
    if (total > cap)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' is %zu; the ids decode to %zu bytes",
                         fn, cap, total);
    int64_t id_bytes;
    ATTN__MUL(fn, n_ids, 4, &id_bytes);
    attn__span spans[] = {{"buf", buf, cap}, {"n", n, sizeof *n}, {"ids", ids, (size_t)id_bytes}};
    attn_status st = attn__disjoint(fn, spans, 3, 2);
    if (st != ATTN_OK) return st;
    size_t k = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        if (skip_special && t->type[ids[i]] == ATTN_BPE_TYPE_CONTROL) continue;
        memcpy(buf + k, t->pool + t->dec_off[ids[i]], t->dec_len[ids[i]]);
        k += t->dec_len[ids[i]];
    }
    *n = k;
    return ATTN_OK;
}

/* How many bytes at the start of s [n] begin a well-formed UTF-8 sequence
 * of *need bytes (0 if s[0] cannot begin one). */
static size_t utf8_prefix(const unsigned char *s, size_t n, size_t *need)
{
    unsigned b0 = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) *need = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) *need = 3;
    else if (b0 >= 0xF0 && b0 <= 0xF4) *need = 4;
    else return 0;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
    size_t k = 1;
    if (k < n && k < *need && s[1] >= lo && s[1] <= hi) k++;
    else return k;
    while (k < n && k < *need && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

/* Whole characters of b [len] into out (if not NULL): returns the bytes
 * written; *used the bytes of b consumed (the rest is an unfinished
 * character); *bad whether a U+FFFD was written. With at_end, an
 * unfinished character becomes U+FFFD too. */
static size_t lossy(const unsigned char *b, size_t len, bool at_end, char *out, size_t *used,
                    bool *bad)
{
    size_t w = 0, i = 0;
    *bad = false;
    while (i < len) {
        uint32_t c;
        int k = attn__utf8_decode(b + i, len - i, &c);
        if (k > 0) {
            if (out != NULL) memcpy(out + w, b + i, (size_t)k);
            w += (size_t)k;
            i += (size_t)k;
            continue;
        }
        size_t need = 0, got = utf8_prefix(b + i, len - i, &need);
        if (got > 0 && i + got == len && got < need && !at_end) break; /* unfinished */
        if (out != NULL) memcpy(out + w, "\xEF\xBF\xBD", 3);
        w += 3;
        i += got > 0 ? got : 1;
        *bad = true;
    }
    *used = i;
    return w;
}

static attn_status stream_out(const char *fn, attn_bpe_stream *s, const unsigned char *b, size_t len,
                              bool at_end, char *buf, size_t cap, size_t *n, int *invalid)
{
    if (buf == NULL && cap > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'buf' is NULL and cap is %zu", fn, cap);
    size_t used;
    bool bad;
    size_t need = lossy(b, len, at_end, NULL, &used, &bad);
    if (buf == NULL) {
        *n = need;
        return ATTN_OK;
    }
    if (need > cap)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' is %zu; %zu bytes are needed", fn, cap,
                         need);
    *n = lossy(b, len, at_end, buf, &used, &bad);
    if (invalid != NULL) *invalid = bad;
    s->n_pending = (int)(len - used);
    memmove(s->pending, b + used, len - used);
    return ATTN_OK;
}

static attn_status check_stream(const char *fn, const attn_bpe_stream *s, const size_t *n)
{
    ATTN__NOT_NULL(fn, s);
    ATTN__NOT_NULL(fn, n);
    if (s->n_pending < 0 || s->n_pending > 3)
        return attn_fail(ATTN_BAD_PARAM, "%s: s->n_pending is %d; it must be 0 to 3 (zero the "
                         "state to start)", fn, s->n_pending);
    return ATTN_OK;
}

attn_status attn_bpe_stream_push(const attn_bpe *t, attn_bpe_stream *s, int32_t id, char *buf,
                                 size_t cap, size_t *n, int *invalid)
{
    const char *fn = "attn_bpe_stream_push";
    ATTN__NOT_NULL(fn, t);
    attn_status st = check_stream(fn, s, n);
    if (st != ATTN_OK) return st;
    if (!valid_id(t, id))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'id' is %d; ids are 0 to %d", fn, (int)id,
                         (int)t->n - 1);
    unsigned char b[3 + ATTN_BPE_MAX_TOKEN_BYTES]; /* a token decodes to at most its own bytes */
    size_t len = (size_t)s->n_pending + t->dec_len[id];
    memcpy(b, s->pending, (size_t)s->n_pending);
    memcpy(b + s->n_pending, t->pool + t->dec_off[id], t->dec_len[id]);
    return stream_out(fn, s, b, len, false, buf, cap, n, invalid);
}

attn_status attn_bpe_stream_flush(attn_bpe_stream *s, char *buf, size_t cap, size_t *n, int *invalid)
{
    const char *fn = "attn_bpe_stream_flush";
    attn_status st = check_stream(fn, s, n);
    if (st != ATTN_OK) return st;
    unsigned char b[4];
    size_t len = (size_t)s->n_pending;
    memcpy(b, s->pending, len);
    st = stream_out(fn, s, b, len, true, buf, cap, n, invalid);
    if (st == ATTN_OK && buf != NULL) memset(s, 0, sizeof *s);
    return st;
}
