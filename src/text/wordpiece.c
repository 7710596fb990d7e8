/* wordpiece.c - the WordPiece tokenizer of uncased BERT (attn/text.h): the
 * vocabulary (vocab.txt, untrusted) in a hash table, and encoding text the
 * way Hugging Face's Rust tokenizers does for such a model: added special
 * tokens, BertNormalizer, BertPreTokenizer, WordPiece, [CLS]/[SEP] and
 * truncation, with the byte range of the source text behind every id.
 *
 * Encoding streams through the text once, in stages, each feeding the next
 * one character at a time:
 *   source character -> clean-up, CJK spacing, NFD   (source_char)
 *   -> canonical reordering of combining marks      (entry, flush_run)
 *   -> drop Mn, lowercase                           (reordered)
 *   -> split into words                             (pretok)
 *   -> WordPiece, output                            (word_end, emit)
 * Offsets follow the reference's alignment rules: every normalized character
 * is aligned with the source character it came from, except inside a
 * reordered run of combining marks, where the reference assigns the source
 * characters by position (see flush_run).
 */
#include "core/fileio.h"
#include "core/utf8.h"
#include "text/unicode_data.h"
#include "core/utf8.h"

#include <attn/text.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the vocabulary ------------------------------------------------------- */

static const char *const special_names[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
enum { SP_PAD, SP_UNK, SP_CLS, SP_SEP, SP_MASK, N_SPECIAL, N_REQUIRED = SP_MASK };

typedef struct tok_entry {
    uint32_t start; /* offset of the token in pool */
    uint32_t len;   /* its bytes */
} tok_entry;

struct attn_wordpiece {
    char *pool;         /* the vocabulary file, each line end replaced by NULs */
    tok_entry *tokens;  /* [n] by id */
    int32_t *slots;     /* [mask + 1] ids by hash, open addressing; -1 empty */
    size_t mask;
    int32_t n;
    uint32_t max_bytes; /* longest token */
    int32_t special[N_SPECIAL];
};

/* The slot holding token s [n], or the empty slot where it would go. */
static size_t find_slot(const attn_wordpiece *t, const char *s, size_t n)
{
    size_t i = attn__hash_bytes(s, n) & t->mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0) return i;
        const tok_entry *e = &t->tokens[id];
        if (e->len == n && memcmp(t->pool + e->start, s, n) == 0) return i;
        i = (i + 1) & t->mask;
    }
}

/* The id of token s [n], or -1. */
static int32_t lookup(const attn_wordpiece *t, const char *s, size_t n)
{
    if (n > t->max_bytes) return -1;
    return t->slots[find_slot(t, s, n)];
}

void attn_wordpiece_free(attn_wordpiece *t)
{
    if (t == NULL) return;
    attn_release(t->pool);
    attn_release(t->tokens);
    attn_release(t->slots);
    attn_release(t);
}

/* ATTN_BAD_FILE unless line [len] (1-based number lineno) is a valid token. */
static attn_status check_token(const char *prefix, const char *line, size_t len,
                               int64_t lineno)
{
    if (len == 0)
        return attn_fail(ATTN_BAD_FILE, "%s: line %lld (id %lld) is empty", prefix,
                         (long long)lineno, (long long)lineno - 1);
    if (len > ATTN_WORDPIECE_MAX_TOKEN_BYTES)
        return attn_fail(ATTN_BAD_FILE, "%s: line %lld: the token has %zu bytes; at most %d "
                         "are allowed", prefix, (long long)lineno, len,
                         ATTN_WORDPIECE_MAX_TOKEN_BYTES);
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)line + i;
        uint32_t c = 0;
        int k = attn__utf8_decode(u, len - i, &c);
        if (k == 0)
            return attn_fail(ATTN_BAD_FILE, "%s: line %lld: invalid UTF-8 at byte %zu of the "
                             "line (0x%02x)", prefix, (long long)lineno, i, u[0]);
        if (c <= 0x20 || c == 0x7F)
            return attn_fail(ATTN_BAD_FILE, "%s: line %lld: byte %zu is a control character "
                             "or a space (0x%02x); tokens never hold one", prefix,
                             (long long)lineno, i, u[0]);
        i += (size_t)k;
    }
    return ATTN_OK;
}

/* Fills t->tokens and t->slots from t->pool [size] (NUL at pool[size]),
 * cutting the lines. */
static attn_status index_lines(const char *prefix, attn_wordpiece *t, size_t size)
{
    char *p = t->pool;
    size_t at = 0;
    for (int32_t id = 0; id < t->n; id++) {
        char *nl = memchr(p + at, '\n', size - at);
        size_t end = nl != NULL ? (size_t)(nl - p) : size, len = end - at;
        if (len > 0 && p[end - 1] == '\r') len--;
        attn_status st = check_token(prefix, p + at, len, (int64_t)id + 1);
        if (st != ATTN_OK) return st;
        p[at + len] = '\0';
        size_t slot = find_slot(t, p + at, len);
        if (t->slots[slot] >= 0)
            return attn_fail(ATTN_BAD_FILE, "%s: line %lld repeats the token '%.64s' of "
                             "line %lld", prefix, (long long)id + 1, p + at,
                             (long long)t->slots[slot] + 1);
        t->tokens[id].start = (uint32_t)at;
        t->tokens[id].len = (uint32_t)len;
        t->slots[slot] = id;
        if (len > t->max_bytes) t->max_bytes = (uint32_t)len;
        at = end + 1;
    }
    return ATTN_OK;
}

/* Builds t from its pool [size] (already owned by t). */
static attn_status parse_vocab(const char *prefix, attn_wordpiece *t, size_t size)
{
    int64_t lines = 0;
    for (const char *q = t->pool; (q = memchr(q, '\n', size - (size_t)(q - t->pool))) != NULL;
         q++)
        lines++;
    if (size > 0 && t->pool[size - 1] != '\n') lines++;
    if (lines == 0) return attn_fail(ATTN_BAD_FILE, "%s: the vocabulary is empty", prefix);
    if (lines > INT32_MAX)
        return attn_fail(ATTN_BAD_FILE, "%s: %lld lines; ids must fit int32", prefix,
                         (long long)lines);
    t->n = (int32_t)lines;
    size_t slots = 1;
    while (slots < 2 * (size_t)lines) slots *= 2; /* lines < 2^31: no overflow */
    t->mask = slots - 1;
    t->tokens = attn_calloc((size_t)lines, sizeof *t->tokens);
    t->slots = attn_calloc(slots, sizeof *t->slots);
    if (t->tokens == NULL || t->slots == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for the index of %lld tokens", prefix,
                         (long long)lines);
    memset(t->slots, 0xFF, slots * sizeof *t->slots); /* all -1 */
    attn_status st = index_lines(prefix, t, size);
    if (st != ATTN_OK) return st;
    for (int s = 0; s < N_SPECIAL; s++) {
        t->special[s] = lookup(t, special_names[s], strlen(special_names[s]));
        if (s < N_REQUIRED && t->special[s] < 0)
            return attn_fail(ATTN_BAD_FILE, "%s: the vocabulary has no %s token", prefix,
                             special_names[s]);
    }
    return ATTN_OK;
}

/* A new attn_wordpiece owning pool [size + 1] (pool[size] set to NUL here); on
 * failure the pool is released too. */
static attn_status make_tok(const char *prefix, char *pool, size_t size, attn_wordpiece **out)
{
    pool[size] = '\0';
    attn_wordpiece *t = attn_calloc(1, sizeof *t);
    if (t == NULL) {
        attn_release(pool);
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for the tokenizer", prefix);
    }
    t->pool = pool;
    attn_status st = parse_vocab(prefix, t, size);
    if (st != ATTN_OK) {
        attn_wordpiece_free(t);
        return st;
    }
    *out = t;
    return ATTN_OK;
}

attn_status attn_wordpiece_load_memory(const char *data, size_t len, attn_wordpiece **out)
{
    const char *prefix = "attn_wordpiece_load_memory";
    ATTN__NOT_NULL(prefix, out);
    if (data == NULL && len > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'data' is NULL and len is %zu", prefix,
                         len);
    if (len > ATTN_WORDPIECE_MAX_VOCAB_BYTES)
        return attn_fail(ATTN_BAD_FILE, "%s: %zu bytes; a vocabulary has at most %zu", prefix,
                         len, ATTN_WORDPIECE_MAX_VOCAB_BYTES);
    char *pool = attn_alloc(len + 1);
    if (pool == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for %zu bytes", prefix, len + 1);
    if (len > 0) memcpy(pool, data, len);
    return make_tok(prefix, pool, len, out);
}


attn_status attn_wordpiece_load(const char *vocab_path, attn_wordpiece **out)
{
    ATTN__NOT_NULL("attn_wordpiece_load", vocab_path);
    ATTN__NOT_NULL("attn_wordpiece_load", out);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "attn_wordpiece_load: '%.200s'", vocab_path);
    char *pool = NULL;
    size_t size = 0;
    attn_status st = attn__read_file(prefix, vocab_path, ATTN_WORDPIECE_MAX_VOCAB_BYTES, &pool, &size);
    if (st != ATTN_OK) return st;
    return make_tok(prefix, pool, size, out);
}

int64_t attn_wordpiece_vocab_size(const attn_wordpiece *t)
{
    return t == NULL ? -1 : t->n;
}

const char *attn_wordpiece_token(const attn_wordpiece *t, int32_t id)
{
    if (t == NULL || id < 0 || id >= t->n) return NULL;
    return t->pool + t->tokens[id].start;
}

int32_t attn_wordpiece_id(const attn_wordpiece *t, const char *token)
{
    if (t == NULL || token == NULL) return -1;
    return lookup(t, token, strlen(token));
}

int32_t attn_wordpiece_special(const attn_wordpiece *t, const char *name)
{
    if (t == NULL || name == NULL) return -1;
    for (int s = 0; s < N_SPECIAL; s++)
        if (strcmp(name, special_names[s]) == 0) return t->special[s];
    return -1;
}

/* ---- the encoder ---------------------------------------------------------- */

/* CJK ideographs as the reference (Rust tokenizers) lists them. Its fifth
 * range starts at U+2B920, not at U+2B820 like Google's BERT. */
static bool is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

typedef struct span {
    int64_t b, e; /* source bytes [b, e) */
} span;

/* A decomposed character in a run of nonzero combining classes. */
typedef struct run_entry {
    int64_t b;      /* its source character's first byte */
    uint32_t c;
    uint8_t ccc;
    uint8_t first;  /* the first character of its source's decomposition */
    uint8_t blen;   /* its source character's bytes */
} run_entry;

enum { RUN_INLINE = 32, WORD_BYTES = 4 * ATTN_WORDPIECE_MAX_WORD_CHARS };

typedef struct enc {
    const attn_wordpiece *t;
    /* output: ids [limit] and offsets [limit][2] (either may be NULL) */
    int32_t *ids;
    int64_t *offsets;
    int64_t n, limit;
    bool full;
    /* the run being reordered: run [run_cap], sorted [run_cap] */
    run_entry *run, *sorted;
    size_t run_n, run_cap;
    span last; /* source of the last decomposition start taken (see flush_run) */
    /* the current word: its first ATTN_WORDPIECE_MAX_WORD_CHARS characters */
    char word[WORD_BYTES];
    uint16_t at[ATTN_WORDPIECE_MAX_WORD_CHARS + 1]; /* byte offset of character i in word */
    span src[ATTN_WORDPIECE_MAX_WORD_CHARS];        /* source of character i */
    int64_t nchar;                            /* all its characters */
    span tail;                                /* source of the last one */
} enc;

static void emit(enc *e, int32_t id, int64_t b, int64_t end)
{
    if (e->full) return;
    if (e->ids != NULL) e->ids[e->n] = id;
    if (e->offsets != NULL) {
        e->offsets[2 * e->n] = b;
        e->offsets[2 * e->n + 1] = end;
    }
    if (++e->n == e->limit) e->full = true;
}

/* WordPiece of the current word (at most ATTN_WORDPIECE_MAX_WORD_CHARS
 * characters): greedy longest match first; [UNK] for the whole word if some
 * position has no match. */
static void wordpiece(enc *e)
{
    const attn_wordpiece *t = e->t;
    int nc = (int)e->nchar, count = 0;
    int32_t pid[ATTN_WORDPIECE_MAX_WORD_CHARS];
    uint8_t pb[ATTN_WORDPIECE_MAX_WORD_CHARS], pe[ATTN_WORDPIECE_MAX_WORD_CHARS];
    char key[2 + WORD_BYTES];
    key[0] = key[1] = '#';
    for (int i = 0; i < nc;) {
        size_t pre = i > 0 ? 2 : 0; /* the "##" of a continuation */
        int32_t id = -1;
        int j = nc;
        for (; j > i; j--) {
            size_t len = (size_t)(e->at[j] - e->at[i]);
            if (pre + len > t->max_bytes) continue;
            memcpy(key + 2, e->word + e->at[i], len);
            id = lookup(t, key + 2 - pre, pre + len);
            if (id >= 0) break;
        }
        if (id < 0) {
            emit(e, t->special[SP_UNK], e->src[0].b, e->tail.e);
            return;
        }
        pid[count] = id, pb[count] = (uint8_t)i, pe[count] = (uint8_t)(j - 1);
        count++;
        i = j;
    }
    for (int p = 0; p < count; p++) emit(e, pid[p], e->src[pb[p]].b, e->src[pe[p]].e);
}

/* Ends the current word: its pieces, or [UNK] if it is too long. */
static void word_end(enc *e)
{
    if (e->nchar == 0) return;
    if (e->nchar > ATTN_WORDPIECE_MAX_WORD_CHARS)
        emit(e, e->t->special[SP_UNK], e->src[0].b, e->tail.e);
    else
        wordpiece(e);
    e->nchar = 0;
}

static void word_add(enc *e, uint32_t c, span s)
{
    if (e->nchar < ATTN_WORDPIECE_MAX_WORD_CHARS) {
        int64_t i = e->nchar;
        if (i == 0) e->at[0] = 0;
        e->at[i + 1] = (uint16_t)(e->at[i] + attn__utf8_encode(c, e->word + e->at[i]));
        e->src[i] = s;
    }
    e->nchar++;
    e->tail = s;
}

/* BertPreTokenizer: words end at spaces; punctuation is a word of its own. */
static void pretok(enc *e, uint32_t c, span s)
{
    if (attn__uc_is_space(c)) {
        word_end(e);
    } else if (attn__uc_is_punct(c)) {
        word_end(e);
        word_add(e, c, s);
        word_end(e);
    } else {
        word_add(e, c, s);
    }
}

/* After NFD and reordering: strip Mn, then lowercase. */
static void reordered(enc *e, uint32_t c, span s)
{
    if (attn__uc_is_nonspacing(c)) return;
    uint32_t low[ATTN__UC_MAX_LOWER];
    int n = attn__uc_lower(c, low);
    for (int i = 0; i < n; i++) pretok(e, low[i], s);
}

/* Canonical reordering of the buffered run (a stable sort by combining
 * class), then its characters in that order. The reference aligns the
 * reordered characters by position: the k-th character that starts a
 * source character's decomposition takes the k-th source character of the
 * run, and every other character takes the source taken last (e->last). */
static void flush_run(enc *e)
{
    size_t n = e->run_n;
    if (n == 0) return;
    e->run_n = 0;
    run_entry *r = e->run, *s = e->sorted;
    if (n == 1) {
        s = r;
    } else {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[r[i].ccc + 1]++;
        for (int k = 1; k <= 256; k++) count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++) s[count[r[i].ccc]++] = r[i];
    }
    size_t next = 0; /* the next run entry that starts a decomposition */
    for (size_t i = 0; i < n; i++) {
        if (s[i].first) {
            while (!r[next].first) next++;
            e->last = (span){r[next].b, r[next].b + r[next].blen};
            next++;
        }
        reordered(e, s[i].c, e->last);
    }
}

/* One character of a decomposition: combining classes 0 pass through, runs
 * of nonzero ones wait for reordering. */
static void entry(enc *e, uint32_t c, bool first, int64_t b, int blen)
{
    int ccc = attn__uc_ccc(c);
    if (ccc == 0) { /* no decomposition puts class 0 after a mark: its source is b */
        flush_run(e);
        e->last = (span){b, b + blen};
        reordered(e, c, e->last);
        return;
    }
    /* run_cap >= the longest run (scan_text) */
    e->run[e->run_n++] = (run_entry){b, c, (uint8_t)ccc, first, (uint8_t)blen};
}

/* BertNormalizer up to NFD for the source character c at bytes [b, b+blen). */
static void source_char(enc *e, uint32_t c, int64_t b, int blen)
{
    if (attn__uc_is_removed(c)) return;
    if (attn__uc_is_space(c)) {
        entry(e, ' ', true, b, blen);
        return;
    }
    bool cjk = is_cjk(c);
    if (cjk) entry(e, ' ', false, b, blen);
    uint32_t d[ATTN__UC_MAX_NFD];
    int n = attn__uc_nfd(c, d);
    for (int i = 0; i < n; i++) entry(e, d[i], i == 0, b, blen);
    if (cjk) entry(e, ' ', false, b, blen);
}

/* The special token written at s [n], if any: its index, *len its bytes. */
static int match_special(const attn_wordpiece *t, const char *s, size_t n, size_t *len)
{
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < N_SPECIAL; k++) {
        size_t l = strlen(special_names[k]);
        if (t->special[k] >= 0 && l <= n && l > best_len && memcmp(s, special_names[k], l) == 0)
            best = k, best_len = l;
    }
    *len = best_len;
    return best;
}

/* [CLS] pieces [SEP] of text [len] (valid UTF-8) into e; returns the count. */
static int64_t encode_text(enc *e, const char *text, size_t len, int64_t max_len)
{
    const attn_wordpiece *t = e->t;
    e->n = 0;
    e->limit = max_len - 1; /* room for [SEP] */
    e->full = false;
    e->run_n = 0;
    e->nchar = 0;
    emit(e, t->special[SP_CLS], -1, -1);
    for (size_t i = 0; i < len && !e->full;) {
        size_t sl;
        int sp = text[i] == '[' ? match_special(t, text + i, len - i, &sl) : -1;
        if (sp >= 0) {
            flush_run(e);
            word_end(e);
            emit(e, t->special[sp], (int64_t)i, (int64_t)(i + sl));
            i += sl;
            continue;
        }
        uint32_t c = 0;
        int k = attn__utf8_decode((const unsigned char *)text + i, len - i, &c);
        source_char(e, c, (int64_t)i, k);
        i += (size_t)k;
    }
    flush_run(e);
    word_end(e);
    e->full = false;
    e->limit = e->n + 1;
    emit(e, t->special[SP_SEP], -1, -1);
    return e->n;
}

/* Checks that text [len] is valid UTF-8 and finds the longest run of
 * nonzero combining classes its decompositions can make. */
static attn_status scan_text(const char *text, size_t len, size_t *max_run)
{
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c, d[ATTN__UC_MAX_NFD];
        int k = attn__utf8_decode((const unsigned char *)text + i, len - i, &c);
        if (k == 0)
            return attn_fail(ATTN_BAD_PARAM, "attn_wordpiece_encode: argument 'text' is not valid "
                             "UTF-8 at byte %zu (0x%02x)", i, (unsigned char)text[i]);
        i += (size_t)k;
        if (attn__uc_is_removed(c)) continue;
        int n = attn__uc_is_space(c) || is_cjk(c) ? 0 : attn__uc_nfd(c, d);
        if (n == 0) run = 0;
        for (int j = 0; j < n; j++) {
            run = attn__uc_ccc(d[j]) == 0 ? 0 : run + 1;
            if (run > longest) longest = run;
        }
    }
    *max_run = longest;
    return ATTN_OK;
}

static attn_status check_encode_args(const attn_wordpiece *t, const char *text, int64_t max_len,
                                     const int32_t *ids, int64_t cap, const int64_t *n,
                                     const int64_t *offsets, size_t len)
{
    const char *fn = "attn_wordpiece_encode";
    ATTN__NOT_NULL(fn, t);
    ATTN__NOT_NULL(fn, text);
    ATTN__NOT_NULL(fn, n);
    ATTN__DIM(fn, cap);
    if (ids == NULL && cap > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'ids' is NULL and cap is %lld", fn,
                         (long long)cap);
    if (max_len < 2)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'max_len' is %lld; it must be >= 2 "
                         "(room for [CLS] and [SEP])", fn, (long long)max_len);
    int64_t id_bytes, off_bytes;
    ATTN__MUL(fn, cap, 4, &id_bytes);
    ATTN__MUL(fn, cap, 16, &off_bytes);
    attn__span spans[] = {{"ids", ids, (size_t)id_bytes},
                          {"offsets", offsets, (size_t)off_bytes},
                          {"n", n, sizeof *n},
                          {"text", text, len + 1}};
    return attn__disjoint(fn, spans, 4, 3);
}

attn_status attn_wordpiece_encode(const attn_wordpiece *t, const char *text, int64_t max_len, int32_t *ids,
                            int64_t cap, int64_t *n, int64_t *offsets)
{
    size_t len = text != NULL ? strlen(text) : 0, max_run = 0;
    attn_status st = check_encode_args(t, text, max_len, ids, cap, n, offsets, len);
    if (st == ATTN_OK) st = scan_text(text, len, &max_run);
    if (st != ATTN_OK) return st;
    size_t run_cap = max_run > RUN_INLINE ? max_run : RUN_INLINE;
    enc *e = run_cap > (SIZE_MAX - sizeof *e) / (2 * sizeof(run_entry))
                 ? NULL
                 : attn_alloc(sizeof *e + 2 * run_cap * sizeof(run_entry));
    if (e == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_wordpiece_encode: no memory for the encoder (a run "
                         "of %zu combining marks)", max_run);
    e->t = t;
    e->run_cap = run_cap;
    e->run = (run_entry *)(e + 1);
    e->sorted = e->run + e->run_cap;
    e->ids = NULL;
    e->offsets = NULL;
    if (cap < max_len) { /* the ids may not fit: count them first */
        int64_t count = encode_text(e, text, len, max_len);
        if (ids == NULL || count > cap) {
            attn_release(e);
            if (ids != NULL)
                return attn_fail(ATTN_BAD_DIM, "attn_wordpiece_encode: argument 'cap' is %lld; the "
                                 "text needs %lld ids", (long long)cap, (long long)count);
            *n = count;
            return ATTN_OK;
        }
    }
    e->ids = ids;
    e->offsets = offsets;
    *n = encode_text(e, text, len, max_len);
    attn_release(e);
    return ATTN_OK;
}
