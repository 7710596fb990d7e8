/* block_mask.c - the constructors of attn_block_mask (attn/attn.h): from a
 * function, from explicit lists, from a named pattern, and combinations;
 * each validates its arguments, classifies every block of every layout
 * once, and keeps the non-EMPTY ones as sorted lists by rows and by columns
 * (kernels/block_mask.h). The kernels' read side is
 * src/kernels/block_mask.c. */
#include "kernels/block_mask.h"

#include "kernels/bm_pattern.h"

#include <stdlib.h>
#include <string.h>

/* ---- building sorted lists ------------------------------------------------------ */

/* Lists being built row by row: entries appended in order, arrays grown by
 * doubling. */
typedef struct {
    int64_t *ptr, *idx;
    uint8_t *kind;
    int64_t n, cap, rows;
} builder;

static attn_status builder_init(builder *bd, int64_t rows)
{
    memset(bd, 0, sizeof *bd);
    bd->rows = rows;
    bd->ptr = attn__calloc((size_t)rows + 1, sizeof(int64_t));
    return bd->ptr ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "attn_block_mask: cannot allocate %lld list heads",
                                         (long long)rows + 1);
}

static void builder_free(builder *bd)
{
    attn__free(bd->ptr);
    attn__free(bd->idx);
    attn__free(bd->kind);
    memset(bd, 0, sizeof *bd);
}

static attn_status builder_push(builder *bd, int64_t idx, int kind)
{
    if (bd->n == bd->cap) {
        int64_t cap = bd->cap ? 2 * bd->cap : 64;
        int64_t *ni = attn__malloc((size_t)cap * sizeof(int64_t));
        uint8_t *nk = attn__malloc((size_t)cap);
        if (ni == NULL || nk == NULL) {
            attn__free(ni);
            attn__free(nk);
            return attn_fail(ATTN_NO_MEMORY, "attn_block_mask: cannot allocate %lld list entries", (long long)cap);
        }
        if (bd->n > 0) {
            memcpy(ni, bd->idx, (size_t)bd->n * sizeof(int64_t));
            memcpy(nk, bd->kind, (size_t)bd->n);
        }
        attn__free(bd->idx);
        attn__free(bd->kind);
        bd->idx = ni;
        bd->kind = nk;
        bd->cap = cap;
    }
    bd->idx[bd->n] = idx;
    bd->kind[bd->n++] = (uint8_t)kind;
    return ATTN_OK;
}

/* Moves the lists into out (an empty layout keeps valid zero-length arrays). */
static attn_status builder_finish(builder *bd, attn__bm_lists *out)
{
    if (bd->cap == 0) {
        bd->idx = attn__malloc(sizeof(int64_t));
        bd->kind = attn__malloc(1);
        if (bd->idx == NULL || bd->kind == NULL) {
            builder_free(bd);
            return attn_fail(ATTN_NO_MEMORY, "attn_block_mask: out of memory");
        }
    }
    out->ptr = bd->ptr;
    out->idx = bd->idx;
    out->kind = bd->kind;
    memset(bd, 0, sizeof *bd);
    return ATTN_OK;
}

/* The columns of m from its rows: column (l, kb) lists the query blocks of
 * layout l whose row lists kb, in increasing order. */
static attn_status transpose(attn_block_mask *m)
{
    int64_t layouts = m->shape.n_batch * m->shape.n_heads, n = m->rows.ptr[layouts * m->nqb];
    m->cols.ptr = attn__calloc((size_t)(layouts * m->nkb) + 1, sizeof(int64_t));
    m->cols.idx = attn__malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    m->cols.kind = attn__malloc((size_t)(n > 0 ? n : 1));
    int64_t *fill = attn__calloc((size_t)(layouts * m->nkb) + 1, sizeof(int64_t));
    if (!m->cols.ptr || !m->cols.idx || !m->cols.kind || !fill) {
        attn__free(fill);
        return attn_fail(ATTN_NO_MEMORY, "attn_block_mask: cannot allocate the column lists");
    }
    for (int64_t l = 0; l < layouts; l++)
        for (int64_t qb = 0; qb < m->nqb; qb++)
            for (int64_t x = m->rows.ptr[l * m->nqb + qb]; x < m->rows.ptr[l * m->nqb + qb + 1]; x++)
                m->cols.ptr[l * m->nkb + m->rows.idx[x] + 1]++;
    for (int64_t c = 0; c < layouts * m->nkb; c++) m->cols.ptr[c + 1] += m->cols.ptr[c];
    for (int64_t l = 0; l < layouts; l++)
        for (int64_t qb = 0; qb < m->nqb; qb++)
            for (int64_t x = m->rows.ptr[l * m->nqb + qb]; x < m->rows.ptr[l * m->nqb + qb + 1]; x++) {
                int64_t c = l * m->nkb + m->rows.idx[x], at = m->cols.ptr[c] + fill[c]++;
                m->cols.idx[at] = qb;
                m->cols.kind[at] = m->rows.kind[x];
            }
    attn__free(fill);
    return ATTN_OK;
}

/* ---- the mask object ---------------------------------------------------------------- */

void attn_block_mask_free(attn_block_mask *m)
{
    if (m == NULL) return;
    attn__bm_lists *l[2] = {&m->rows, &m->cols};
    for (int x = 0; x < 2; x++) {
        attn__free(l[x]->ptr);
        attn__free(l[x]->idx);
        attn__free(l[x]->kind);
    }
    attn__free(m->owned);
    attn_block_mask_free(m->a);
    attn_block_mask_free(m->b);
    attn__free(m);
}

static attn_status check_shape(const char *fn, const attn_block_mask_shape *s)
{
    int64_t rows;
    if (s->n_batch < 1 || s->n_heads < 1)
        return attn_fail(ATTN_BAD_DIM, "%s: shape.n_batch and shape.n_heads are %lld, %lld; each must be >= 1", fn,
                         (long long)s->n_batch, (long long)s->n_heads);
    if (s->seq_q < 0 || s->seq_k < 0)
        return attn_fail(ATTN_BAD_DIM, "%s: shape.seq_q and shape.seq_k are %lld, %lld; each must be >= 0", fn,
                         (long long)s->seq_q, (long long)s->seq_k);
    if (s->block_q < 1 || s->block_k < 1)
        return attn_fail(ATTN_BAD_DIM, "%s: shape.block_q and shape.block_k are %lld, %lld; each must be >= 1",
                         fn, (long long)s->block_q, (long long)s->block_k);
    int64_t nqb = (s->seq_q + s->block_q - 1) / s->block_q, nkb = (s->seq_k + s->block_k - 1) / s->block_k;
    if (!attn__mul(s->n_batch, s->n_heads, &rows) || !attn__mul(rows, nqb > nkb ? nqb : nkb, &rows) ||
        !attn__mul(s->seq_q > 0 ? s->seq_q : 1, s->seq_k, &rows))
        return attn_fail(ATTN_OVERFLOW, "%s: the mask's layouts are too large", fn);
    return ATTN_OK;
}

/* A new mask of shape s with no lists yet. */
static attn_status new_mask(const char *fn, const attn_block_mask_shape *s, attn__bm_rule rule,
                            attn_block_mask **out)
{
    attn_block_mask *m = attn__calloc(1, sizeof *m);
    if (m == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: cannot allocate the mask", fn);
    m->shape = *s;
    m->nqb = (s->seq_q + s->block_q - 1) / s->block_q;
    m->nkb = (s->seq_k + s->block_k - 1) / s->block_k;
    m->rule = rule;
    *out = m;
    return ATTN_OK;
}

/* Classifies block (qb, kb) of layout (b, h) of m. */
typedef int (*classify_fn)(const attn_block_mask *m, void *arg, int64_t b, int64_t h, int64_t qb, int64_t kb);

/* Fills m's rows (then columns) from classify, block by block. */
static attn_status build(attn_block_mask *m, classify_fn classify, void *arg)
{
    builder bd;
    int64_t nb = m->shape.n_batch, nh = m->shape.n_heads;
    attn_status st = builder_init(&bd, nb * nh * m->nqb);
    for (int64_t b = 0; b < nb && st == ATTN_OK; b++)
        for (int64_t h = 0; h < nh && st == ATTN_OK; h++)
            for (int64_t qb = 0; qb < m->nqb && st == ATTN_OK; qb++) {
                for (int64_t kb = 0; kb < m->nkb && st == ATTN_OK; kb++) {
                    int k = classify(m, arg, b, h, qb, kb);
                    if (k != ATTN__BLK_EMPTY) st = builder_push(&bd, kb, k);
                }
                bd.ptr[(b * nh + h) * m->nqb + qb + 1] = bd.n;
            }
    if (st == ATTN_OK) st = builder_finish(&bd, &m->rows);
    if (st == ATTN_OK) return transpose(m);
    builder_free(&bd);
    return st;
}

/* Ends a constructor: on success *out = m, on failure m is freed. */
static attn_status finish(attn_block_mask *m, attn_status st, attn_block_mask **out)
{
    if (st != ATTN_OK) {
        attn_block_mask_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}

/* ---- from a function ------------------------------------------------------------------- */

/* Every element of the block, once. */
static int classify_fn_block(const attn_block_mask *m, void *arg, int64_t b, int64_t h, int64_t qb, int64_t kb)
{
    (void)arg;
    const attn_block_mask_shape *s = &m->shape;
    int64_t i1 = (qb + 1) * s->block_q < s->seq_q ? (qb + 1) * s->block_q : s->seq_q;
    int64_t j1 = (kb + 1) * s->block_k < s->seq_k ? (kb + 1) * s->block_k : s->seq_k;
    int64_t seen = 0, all = (i1 - qb * s->block_q) * (j1 - kb * s->block_k);
    for (int64_t i = qb * s->block_q; i < i1; i++)
        for (int64_t j = kb * s->block_k; j < j1; j++) seen += m->fn(b, h, i, j, m->user) != 0;
    return seen == all ? ATTN__BLK_FULL : seen == 0 ? ATTN__BLK_EMPTY : ATTN__BLK_PARTIAL;
}

attn_status attn_block_mask_from_fn(const attn_block_mask_shape *shape, attn_mask_fn fn, void *user,
                                    attn_block_mask **out)
{
    const char *f = "attn_block_mask_from_fn";
    attn__clear_error();
    ATTN__NOT_NULL(f, shape);
    ATTN__NOT_NULL(f, fn);
    ATTN__NOT_NULL(f, out);
    attn_block_mask *m = NULL;
    attn_status st = check_shape(f, shape);
    if (st == ATTN_OK) st = new_mask(f, shape, ATTN__BM_FN, &m);
    if (st != ATTN_OK) return st;
    m->fn = fn;
    m->user = user;
    return finish(m, build(m, classify_fn_block, NULL), out);
}

/* ---- from explicit lists --------------------------------------------------------------- */

/* One list of a row: n entries strictly increasing in [0, nkb). */
static attn_status check_list(const char *name, const int64_t *idx, int64_t first, int64_t n, int64_t nkb,
                              int64_t row)
{
    const char *f = "attn_block_mask_from_layout";
    for (int64_t x = 0; x < n; x++) {
        int64_t v = idx[first + x];
        if (v < 0 || v >= nkb)
            return attn_fail(ATTN_BAD_MASK, "%s: layout.%s[%lld] (row %lld) is %lld; it must be in [0, %lld)", f,
                             name, (long long)(first + x), (long long)row, (long long)v, (long long)nkb);
        if (x > 0 && v <= idx[first + x - 1])
            return attn_fail(ATTN_BAD_MASK, "%s: layout.%s[%lld] (row %lld) is %lld after %lld; a row's blocks "
                             "must be strictly increasing (sorted, no duplicates)", f, name,
                             (long long)(first + x), (long long)row, (long long)v, (long long)idx[first + x - 1]);
    }
    return ATTN_OK;
}

/* Row r of the layout: its two lists merged in order into bd. */
static attn_status merge_row(const attn_block_layout *L, int64_t r, int64_t *pp, int64_t *pf, int64_t nkb,
                             builder *bd)
{
    int64_t np = L->partial_count[r], nf = L->full_count[r];
    const char *f = "attn_block_mask_from_layout";
    if (np < 0 || nf < 0)
        return attn_fail(ATTN_BAD_MASK, "%s: layout.%s_count[%lld] is %lld; it must be >= 0", f,
                         np < 0 ? "partial" : "full", (long long)r, (long long)(np < 0 ? np : nf));
    attn_status st = check_list("partial_idx", L->partial_idx, *pp, np, nkb, r);
    if (st == ATTN_OK) st = check_list("full_idx", L->full_idx, *pf, nf, nkb, r);
    int64_t a = *pp, b = *pf, ea = a + np, eb = b + nf;
    while (st == ATTN_OK && (a < ea || b < eb)) {
        bool take_p = b >= eb || (a < ea && L->partial_idx[a] < L->full_idx[b]);
        if (a < ea && b < eb && L->partial_idx[a] == L->full_idx[b])
            return attn_fail(ATTN_BAD_MASK, "%s: layout.full_idx[%lld] (row %lld) is %lld, which "
                             "layout.partial_idx[%lld] lists too; a block is PARTIAL or FULL, not both", f,
                             (long long)b, (long long)r, (long long)L->full_idx[b], (long long)a);
        st = take_p ? builder_push(bd, L->partial_idx[a++], ATTN__BLK_PARTIAL)
                    : builder_push(bd, L->full_idx[b++], ATTN__BLK_FULL);
    }
    *pp = ea;
    *pf = eb;
    return st;
}

attn_status attn_block_mask_from_layout(const attn_block_layout *layout, attn_mask_fn fn, void *user,
                                        attn_block_mask **out)
{
    const char *f = "attn_block_mask_from_layout";
    attn__clear_error();
    ATTN__NOT_NULL(f, layout);
    ATTN__NOT_NULL(f, out);
    attn_status st = check_shape(f, &layout->shape);
    if (st != ATTN_OK) return st;
    if (!layout->partial_count || !layout->full_count)
        return attn_fail(ATTN_NULL_ARG, "%s: layout.partial_count and layout.full_count must not be NULL", f);
    attn_block_mask *m = NULL;
    if ((st = new_mask(f, &layout->shape, ATTN__BM_LISTS, &m)) != ATTN_OK) return st;
    m->fn = fn;
    m->user = user;
    int64_t rows = layout->shape.n_batch * layout->shape.n_heads * m->nqb, pp = 0, pf = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (layout->partial_count[r] > 0 && (fn == NULL || layout->partial_idx == NULL))
            return finish(m, attn_fail(ATTN_NULL_ARG, "%s: row %lld has PARTIAL blocks, so layout.partial_idx "
                                       "and fn must not be NULL", f, (long long)r), out);
        if (layout->full_count[r] > 0 && layout->full_idx == NULL)
            return finish(m, attn_fail(ATTN_NULL_ARG, "%s: row %lld has FULL blocks, so layout.full_idx must "
                                       "not be NULL", f, (long long)r), out);
    }
    builder bd;
    st = builder_init(&bd, rows);
    for (int64_t r = 0; r < rows && st == ATTN_OK; r++) {
        st = merge_row(layout, r, &pp, &pf, m->nkb, &bd);
        bd.ptr[r + 1] = bd.n;
    }
    if (st == ATTN_OK) st = builder_finish(&bd, &m->rows);
    if (st != ATTN_OK) builder_free(&bd);
    if (st == ATTN_OK) st = transpose(m);
    return finish(m, st, out);
}

/* ---- from a named pattern ---------------------------------------------------------------- */

attn_block_pattern attn_block_pattern_default(attn_block_pattern_kind kind)
{
    attn_block_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.window_left = p.window_right = -1;
    p.dilation = p.chunk = 1;
    return p;
}

static attn_status check_window(const char *fn, const attn_block_pattern *p, int64_t scale)
{
    int64_t t;
    if (p->window_left < -1 || p->window_right < -1)
        return attn_fail(ATTN_BAD_PARAM, "%s: pattern.window_left/right are %lld/%lld; each must be >= 0, or -1 "
                         "for unbounded", fn, (long long)p->window_left, (long long)p->window_right);
    if (!attn__mul(p->window_left > 0 ? p->window_left : 0, scale, &t) ||
        !attn__mul(p->window_right > 0 ? p->window_right : 0, scale, &t))
        return attn_fail(ATTN_BAD_PARAM, "%s: pattern.window_left/right times pattern.dilation overflow", fn);
    return ATTN_OK;
}

static attn_status check_pattern(const char *fn, const attn_block_mask_shape *s, const attn_block_pattern *p)
{
    if (p->q_offset < -ATTN__MAX_ELEMS || p->q_offset > ATTN__MAX_ELEMS)
        return attn_fail(ATTN_BAD_PARAM, "%s: pattern.q_offset is %lld; its magnitude must be at most %lld", fn,
                         (long long)p->q_offset, (long long)ATTN__MAX_ELEMS);
    switch (p->kind) {
    case ATTN_BLOCK_PATTERN_DOCUMENTS:
        if (p->doc_q == NULL) return attn_fail(ATTN_NULL_ARG, "%s: pattern.doc_q is NULL", fn);
        if (p->doc_k == NULL && s->seq_q != s->seq_k)
            return attn_fail(ATTN_BAD_PARAM, "%s: pattern.doc_k is NULL but seq_q (%lld) != seq_k (%lld)", fn,
                             (long long)s->seq_q, (long long)s->seq_k);
        return ATTN_OK;
    case ATTN_BLOCK_PATTERN_PREFIX_LM:
        if (p->prefix == NULL) return attn_fail(ATTN_NULL_ARG, "%s: pattern.prefix is NULL", fn);
        for (int64_t b = 0; b < s->n_batch; b++)
            if (p->prefix[b] < 0)
                return attn_fail(ATTN_BAD_PARAM, "%s: pattern.prefix[%lld] is %lld; it must be >= 0", fn,
                                 (long long)b, (long long)p->prefix[b]);
        return ATTN_OK;
    case ATTN_BLOCK_PATTERN_LONGFORMER:
        if (p->n_global < 0 || (p->n_global > 0 && p->global == NULL))
            return attn_fail(ATTN_BAD_PARAM, "%s: pattern.n_global is %lld with pattern.global %s", fn,
                             (long long)p->n_global, p->global ? "set" : "NULL");
        for (int64_t x = 0; x < p->n_global; x++)
            if (p->global[x] < 0 || p->global[x] >= s->seq_k)
                return attn_fail(ATTN_BAD_PARAM, "%s: pattern.global[%lld] is %lld; it must be in [0, seq_k=%lld)",
                                 fn, (long long)x, (long long)p->global[x], (long long)s->seq_k);
        return check_window(fn, p, 1);
    case ATTN_BLOCK_PATTERN_BIGBIRD:
        if (s->block_q != s->block_k)
            return attn_fail(ATTN_BAD_PARAM, "%s: BIGBIRD needs square blocks; shape.block_q is %lld, block_k %lld",
                             fn, (long long)s->block_q, (long long)s->block_k);
        if (p->window_blocks < 0 || p->global_blocks < 0 || p->random_blocks < 0 ||
            p->random_blocks > ATTN__BIGBIRD_MAX_RANDOM)
            return attn_fail(ATTN_BAD_PARAM, "%s: pattern.window_blocks, global_blocks, random_blocks are %lld, "
                             "%lld, %lld; each must be >= 0, random_blocks at most %d", fn,
                             (long long)p->window_blocks, (long long)p->global_blocks, (long long)p->random_blocks,
                             ATTN__BIGBIRD_MAX_RANDOM);
        return ATTN_OK;
    case ATTN_BLOCK_PATTERN_DILATED:
        if (p->dilation < 1)
            return attn_fail(ATTN_BAD_PARAM, "%s: pattern.dilation is %lld; it must be >= 1", fn,
                             (long long)p->dilation);
        return check_window(fn, p, p->dilation);
    case ATTN_BLOCK_PATTERN_CHUNKED:
        if (p->chunk < 1)
            return attn_fail(ATTN_BAD_PARAM, "%s: pattern.chunk is %lld; it must be >= 1", fn, (long long)p->chunk);
        return ATTN_OK;
    default:
        return attn_fail(ATTN_BAD_PARAM, "%s: pattern.kind is %d; it must be an attn_block_pattern_kind value", fn,
                         (int)p->kind);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Copies the pattern's arrays into one owned allocation (the globals
 * sorted and without duplicates) and points m->pat at them. */
static attn_status own_arrays(attn_block_mask *m, const attn_block_pattern *p)
{
    const attn_block_mask_shape *s = &m->shape;
    int64_t nq = p->kind == ATTN_BLOCK_PATTERN_DOCUMENTS ? s->n_batch * s->seq_q : 0;
    int64_t nk = p->kind == ATTN_BLOCK_PATTERN_DOCUMENTS ? s->n_batch * s->seq_k : 0;
    int64_t np = p->kind == ATTN_BLOCK_PATTERN_PREFIX_LM ? s->n_batch : 0;
    int64_t ng = p->kind == ATTN_BLOCK_PATTERN_LONGFORMER ? p->n_global : 0;
    m->pat = *p;
    m->owned = attn__malloc((size_t)(nq + nk + np + ng + 1) * sizeof(int64_t));
    if (m->owned == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_block_mask_from_pattern: out of memory");
    int64_t *o = m->owned;
    if (nq > 0) memcpy(o, p->doc_q, (size_t)nq * sizeof(int64_t));
    if (nk > 0) memcpy(o + nq, p->doc_k ? p->doc_k : p->doc_q, (size_t)nk * sizeof(int64_t));
    if (np > 0) memcpy(o + nq + nk, p->prefix, (size_t)np * sizeof(int64_t));
    if (ng > 0) memcpy(o + nq + nk + np, p->global, (size_t)ng * sizeof(int64_t));
    m->pat.doc_q = o;
    m->pat.doc_k = o + nq;
    m->pat.prefix = o + nq + nk;
    int64_t *g = o + nq + nk + np, n = 0;
    qsort(g, (size_t)ng, sizeof(int64_t), cmp_i64);
    for (int64_t x = 0; x < ng; x++)
        if (n == 0 || g[x] != g[n - 1]) g[n++] = g[x];
    m->pat.global = g;
    m->pat.n_global = n;
    return ATTN_OK;
}

/* DOCUMENTS: the smallest and largest id of every query and key block of
 * every batch's layout, so a block is classified in O(1). */
typedef struct {
    int64_t *q, *k; /* [n_batch, nqb, 2], [n_batch, nkb, 2] */
} doc_spans;

static void span_of(const int64_t *ids, int64_t n, int64_t bs, int64_t nblocks, int64_t *out)
{
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int64_t x = blk * bs; x < (blk + 1) * bs && x < n; x++) {
            lo = ids[x] < lo ? ids[x] : lo;
            hi = ids[x] > hi ? ids[x] : hi;
        }
        out[2 * blk] = lo;
        out[2 * blk + 1] = hi;
    }
}

static int classify_pattern(const attn_block_mask *m, void *arg, int64_t b, int64_t h, int64_t qb, int64_t kb)
{
    const doc_spans *ds = arg;
    attn__doc_span d = {0, 0, 0, 0};
    if (m->pat.kind == ATTN_BLOCK_PATTERN_DOCUMENTS) {
        const int64_t *q = ds->q + 2 * (b * m->nqb + qb), *k = ds->k + 2 * (b * m->nkb + kb);
        d = (attn__doc_span){q[0], q[1], k[0], k[1]};
    }
    return attn__pattern_block(&m->pat, &m->shape, b, h, qb, kb, &d);
}

attn_status attn_block_mask_from_pattern(const attn_block_mask_shape *shape, const attn_block_pattern *pattern,
                                         attn_block_mask **out)
{
    const char *f = "attn_block_mask_from_pattern";
    attn__clear_error();
    ATTN__NOT_NULL(f, shape);
    ATTN__NOT_NULL(f, pattern);
    ATTN__NOT_NULL(f, out);
    attn_status st = check_shape(f, shape);
    if (st == ATTN_OK) st = check_pattern(f, shape, pattern);
    attn_block_mask *m = NULL;
    if (st == ATTN_OK) st = new_mask(f, shape, ATTN__BM_PATTERN, &m);
    if (st != ATTN_OK) return st;
    if ((st = own_arrays(m, pattern)) != ATTN_OK) return finish(m, st, out);
    doc_spans ds = {NULL, NULL};
    if (pattern->kind == ATTN_BLOCK_PATTERN_DOCUMENTS) {
        ds.q = attn__malloc((size_t)(2 * shape->n_batch * m->nqb + 1) * sizeof(int64_t));
        ds.k = attn__malloc((size_t)(2 * shape->n_batch * m->nkb + 1) * sizeof(int64_t));
        if (ds.q == NULL || ds.k == NULL) st = attn_fail(ATTN_NO_MEMORY, "%s: out of memory", f);
        for (int64_t b = 0; b < shape->n_batch && st == ATTN_OK; b++) {
            span_of(m->pat.doc_q + b * shape->seq_q, shape->seq_q, shape->block_q, m->nqb, ds.q + 2 * b * m->nqb);
            span_of(m->pat.doc_k + b * shape->seq_k, shape->seq_k, shape->block_k, m->nkb, ds.k + 2 * b * m->nkb);
        }
    }
    if (st == ATTN_OK) st = build(m, classify_pattern, &ds);
    attn__free(ds.q);
    attn__free(ds.k);
    return finish(m, st, out);
}

/* ---- combinations ---------------------------------------------------------------------------- */

/* A deep copy of m: its lists, arrays and operands. */
static attn_status copy_lists(const attn__bm_lists *src, int64_t heads, attn__bm_lists *dst)
{
    int64_t n = src->ptr[heads];
    dst->ptr = attn__malloc((size_t)(heads + 1) * sizeof(int64_t));
    dst->idx = attn__malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    dst->kind = attn__malloc((size_t)(n > 0 ? n : 1));
    if (!dst->ptr || !dst->idx || !dst->kind) return attn_fail(ATTN_NO_MEMORY, "attn_block_mask_combine: out of memory");
    memcpy(dst->ptr, src->ptr, (size_t)(heads + 1) * sizeof(int64_t));
    if (n > 0) {
        memcpy(dst->idx, src->idx, (size_t)n * sizeof(int64_t));
        memcpy(dst->kind, src->kind, (size_t)n);
    }
    return ATTN_OK;
}

static attn_status clone(const attn_block_mask *m, attn_block_mask **out)
{
    attn_block_mask *c = attn__calloc(1, sizeof *c);
    if (c == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_block_mask_combine: out of memory");
    *c = *m;
    c->rows = c->cols = (attn__bm_lists){NULL, NULL, NULL};
    c->owned = NULL;
    c->a = c->b = NULL;
    int64_t layouts = m->shape.n_batch * m->shape.n_heads;
    attn_status st = copy_lists(&m->rows, layouts * m->nqb, &c->rows);
    if (st == ATTN_OK) st = copy_lists(&m->cols, layouts * m->nkb, &c->cols);
    if (st == ATTN_OK && m->rule == ATTN__BM_PATTERN) st = own_arrays(c, &m->pat);
    if (st == ATTN_OK && m->a) st = clone(m->a, &c->a);
    if (st == ATTN_OK && m->b) st = clone(m->b, &c->b);
    return finish(c, st, out);
}

/* Row (b, h, qb) of the result: a's and b's rows merged, AND keeping the
 * blocks of both (the smaller kind), OR those of either (the larger). */
static attn_status combine_row(const attn_block_mask *a, const attn_block_mask *b, bool and_op, int64_t bb,
                               int64_t hh, int64_t qb, builder *bd)
{
    const int64_t *ia, *ib;
    const uint8_t *ka, *kb;
    int64_t na = attn__bm_row(a, bb, hh, qb, &ia, &ka), nb = attn__bm_row(b, bb, hh, qb, &ib, &kb);
    int64_t x = 0, y = 0;
    attn_status st = ATTN_OK;
    while (st == ATTN_OK && (x < na || y < nb)) {
        int64_t blk = x < na && (y >= nb || ia[x] <= ib[y]) ? ia[x] : ib[y];
        int k1 = x < na && ia[x] == blk ? ka[x++] : ATTN__BLK_EMPTY;
        int k2 = y < nb && ib[y] == blk ? kb[y++] : ATTN__BLK_EMPTY;
        int k = and_op ? (k1 < k2 ? k1 : k2) : (k1 > k2 ? k1 : k2);
        if (k != ATTN__BLK_EMPTY) st = builder_push(bd, blk, k);
    }
    return st;
}

attn_status attn_block_mask_combine(const attn_block_mask *a, const attn_block_mask *b, attn_block_mask_op op,
                                    attn_block_mask **out)
{
    const char *f = "attn_block_mask_combine";
    attn__clear_error();
    ATTN__NOT_NULL(f, a);
    ATTN__NOT_NULL(f, b);
    ATTN__NOT_NULL(f, out);
    if (op != ATTN_BLOCK_MASK_OP_AND && op != ATTN_BLOCK_MASK_OP_OR)
        return attn_fail(ATTN_BAD_PARAM, "%s: op is %d; it must be an attn_block_mask_op value", f, (int)op);
    const attn_block_mask_shape *sa = &a->shape, *sb = &b->shape;
    if (sa->seq_q != sb->seq_q || sa->seq_k != sb->seq_k || sa->block_q != sb->block_q || sa->block_k != sb->block_k)
        return attn_fail(ATTN_BAD_MASK, "%s: a is %lld x %lld in blocks of %lld x %lld, b %lld x %lld in blocks of "
                         "%lld x %lld; they must agree", f, (long long)sa->seq_q, (long long)sa->seq_k,
                         (long long)sa->block_q, (long long)sa->block_k, (long long)sb->seq_q, (long long)sb->seq_k,
                         (long long)sb->block_q, (long long)sb->block_k);
    if ((sa->n_batch != sb->n_batch && sa->n_batch != 1 && sb->n_batch != 1) ||
        (sa->n_heads != sb->n_heads && sa->n_heads != 1 && sb->n_heads != 1))
        return attn_fail(ATTN_BAD_MASK, "%s: a has %lld x %lld layouts (batch x heads), b %lld x %lld; each must "
                         "be equal or 1", f, (long long)sa->n_batch, (long long)sa->n_heads, (long long)sb->n_batch,
                         (long long)sb->n_heads);
    attn_block_mask_shape s = *sa;
    s.n_batch = sa->n_batch > sb->n_batch ? sa->n_batch : sb->n_batch;
    s.n_heads = sa->n_heads > sb->n_heads ? sa->n_heads : sb->n_heads;
    attn_block_mask *m = NULL;
    attn_status st = new_mask(f, &s, op == ATTN_BLOCK_MASK_OP_AND ? ATTN__BM_AND : ATTN__BM_OR, &m);
    if (st != ATTN_OK) return st;
    if ((st = clone(a, &m->a)) == ATTN_OK) st = clone(b, &m->b);
    if (st != ATTN_OK) return finish(m, st, out);
    builder bd;
    st = builder_init(&bd, s.n_batch * s.n_heads * m->nqb);
    for (int64_t bb = 0; bb < s.n_batch && st == ATTN_OK; bb++)
        for (int64_t hh = 0; hh < s.n_heads && st == ATTN_OK; hh++)
            for (int64_t qb = 0; qb < m->nqb && st == ATTN_OK; qb++) {
                st = combine_row(a, b, op == ATTN_BLOCK_MASK_OP_AND, bb, hh, qb, &bd);
                bd.ptr[(bb * s.n_heads + hh) * m->nqb + qb + 1] = bd.n;
            }
    if (st == ATTN_OK) st = builder_finish(&bd, &m->rows);
    if (st != ATTN_OK) builder_free(&bd);
    if (st == ATTN_OK) st = transpose(m);
    return finish(m, st, out);
}

/* ---- getters ------------------------------------------------------------------------------------ */

attn_block_mask_shape attn_block_mask_get_shape(const attn_block_mask *m)
{
    attn_block_mask_shape s;
    memset(&s, 0, sizeof s);
    return m ? m->shape : s;
}

int64_t attn_block_mask_n_blocks(const attn_block_mask *m, int full)
{
    if (m == NULL) return -1;
    int64_t n = 0, all = m->rows.ptr[m->shape.n_batch * m->shape.n_heads * m->nqb];
    for (int64_t x = 0; x < all; x++) n += (m->rows.kind[x] == ATTN__BLK_FULL) == (full != 0);
    return n;
}

int attn_block_mask_kind(const attn_block_mask *m, int64_t b, int64_t h, int64_t qb, int64_t kb)
{
    if (m == NULL || b < 0 || h < 0 || qb < 0 || kb < 0 || qb >= m->nqb || kb >= m->nkb ||
        (m->shape.n_batch > 1 && b >= m->shape.n_batch) || (m->shape.n_heads > 1 && h >= m->shape.n_heads))
        return -1;
    return attn__bm_block(m, b, h, qb, kb);
}
