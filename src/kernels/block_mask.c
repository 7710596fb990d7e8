/* block_mask.c - the read side of block masks (block_mask.h): block kinds,
 * the element rule by definition and through the layouts, tile kinds and
 * the walks that let the kernels skip EMPTY blocks; the named patterns'
 * formulas; the tile counter. */
#include "kernels/block_mask.h"

#include "kernels/bm_pattern.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* First position in idx[0..n) with idx >= x (n if none). */
static int64_t lower_bound(const int64_t *idx, int64_t n, int64_t x)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (idx[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int64_t attn__bm_row(const attn_block_mask *m, int64_t b, int64_t h, int64_t qb, const int64_t **idx,
                     const uint8_t **kind)
{
    int64_t r = attn__bm_layout(m, b, h) * m->nqb + qb, s = m->rows.ptr[r];
    *idx = m->rows.idx + s;
    *kind = m->rows.kind + s;
    return m->rows.ptr[r + 1] - s;
}

/* The same for column (b, h, kb) of the transposed lists. */
static int64_t col_list(const attn_block_mask *m, int64_t b, int64_t h, int64_t kb, const int64_t **idx,
                        const uint8_t **kind)
{
    int64_t r = attn__bm_layout(m, b, h) * m->nkb + kb, s = m->cols.ptr[r];
    *idx = m->cols.idx + s;
    *kind = m->cols.kind + s;
    return m->cols.ptr[r + 1] - s;
}

int attn__bm_block(const attn_block_mask *m, int64_t b, int64_t h, int64_t qb, int64_t kb)
{
    const int64_t *idx;
    const uint8_t *kind;
    int64_t n = attn__bm_row(m, b, h, qb, &idx, &kind), x = lower_bound(idx, n, kb);
    return x < n && idx[x] == kb ? kind[x] : ATTN__BLK_EMPTY;
}

/* The rule of a leaf or an operator inside a PARTIAL block (or everywhere,
 * for the definition: through `def`). */
static bool rule(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j, bool def)
{
    int64_t bb = m->shape.n_batch == 1 ? 0 : b, hh = m->shape.n_heads == 1 ? 0 : h;
    switch (m->rule) {
    case ATTN__BM_FN: return m->fn(bb, hh, i, j, m->user) != 0;
    case ATTN__BM_LISTS: {
        int k = attn__bm_block(m, b, h, i / m->shape.block_q, j / m->shape.block_k);
        return k == ATTN__BLK_FULL || (k == ATTN__BLK_PARTIAL && m->fn(bb, hh, i, j, m->user) != 0);
    }
    case ATTN__BM_PATTERN: return attn__pattern_visible(&m->pat, &m->shape, bb, hh, i, j);
    case ATTN__BM_AND:
        return def ? attn__bm_def(m->a, b, h, i, j) && attn__bm_def(m->b, b, h, i, j)
                   : attn__bm_eval(m->a, b, h, i, j) && attn__bm_eval(m->b, b, h, i, j);
    default:
        return def ? attn__bm_def(m->a, b, h, i, j) || attn__bm_def(m->b, b, h, i, j)
                   : attn__bm_eval(m->a, b, h, i, j) || attn__bm_eval(m->b, b, h, i, j);
    }
}

bool attn__bm_def(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j)
{
    return rule(m, b, h, i, j, true);
}

bool attn__bm_eval(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j)
{
    int k = attn__bm_block(m, b, h, i / m->shape.block_q, j / m->shape.block_k);
    return k == ATTN__BLK_FULL || (k == ATTN__BLK_PARTIAL && rule(m, b, h, i, j, false));
}

int attn__bm_tile(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t j0,
                  int64_t nk)
{
    int64_t kb0 = j0 / m->shape.block_k, kb1 = (j0 + nk - 1) / m->shape.block_k, want = kb1 - kb0 + 1;
    bool all_full = true, any = false;
    for (int64_t qb = i0 / m->shape.block_q; qb <= (i0 + nq - 1) / m->shape.block_q; qb++) {
        const int64_t *idx;
        const uint8_t *kind;
        int64_t n = attn__bm_row(m, b, h, qb, &idx, &kind), full = 0, x = lower_bound(idx, n, kb0);
        for (; x < n && idx[x] <= kb1; x++) {
            any = true;
            full += kind[x] == ATTN__BLK_FULL;
        }
        all_full &= full == want;
    }
    return all_full ? ATTN__BLK_FULL : any ? ATTN__BLK_PARTIAL : ATTN__BLK_EMPTY;
}

/* The first tile start x >= j (multiples of tile) that meets a listed
 * block of lists r0 .. r1 (blocks of `bs` elements); INT64_MAX if none. */
typedef int64_t (*list_fn)(const attn_block_mask *m, int64_t b, int64_t h, int64_t r, const int64_t **idx,
                           const uint8_t **kind);

static int64_t next_tile(const attn_block_mask *m, list_fn lists, int64_t b, int64_t h, int64_t r0,
                         int64_t r1, int64_t bs, int64_t j, int64_t tile)
{
    int64_t best = INT64_MAX;
    for (int64_t r = r0; r <= r1; r++) {
        const int64_t *idx;
        const uint8_t *kind;
        int64_t n = lists(m, b, h, r, &idx, &kind), x = lower_bound(idx, n, j / bs);
        if (x == n) continue;
        int64_t start = idx[x] * bs / tile * tile;
        int64_t at = start > j ? start : j;
        if (at < best) best = at;
    }
    return best;
}

int64_t attn__bm_next_key(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq,
                          int64_t j, int64_t tile)
{
    return next_tile(m, attn__bm_row, b, h, i0 / m->shape.block_q, (i0 + nq - 1) / m->shape.block_q,
                     m->shape.block_k, j, tile);
}

int64_t attn__bm_next_query(const attn_block_mask *m, int64_t b, int64_t h, int64_t j0, int64_t nk,
                            int64_t i, int64_t tile)
{
    return next_tile(m, col_list, b, h, j0 / m->shape.block_k, (j0 + nk - 1) / m->shape.block_k,
                     m->shape.block_q, i, tile);
}

/* ---- visibility bits ---------------------------------------------------------------- */

/* Rows per pass of the bit walks (their scratch is on the stack). */
enum { BITS_ROWS = 128 };

static void layout_bits(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t j0,
                        int64_t nk, uint64_t *bits);

/* The rule of m (a leaf's, or its operands' through their layouts) as
 * bits, for rows i0 .. i0+n-1 (n <= BITS_ROWS) and keys [j0, j0 + nk),
 * inside one PARTIAL block of m's layout. */
static void rule_bits(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t n, int64_t j0,
                      int64_t nk, uint64_t *bits)
{
    int64_t bb = m->shape.n_batch == 1 ? 0 : b, hh = m->shape.n_heads == 1 ? 0 : h;
    switch (m->rule) {
    case ATTN__BM_FN:
    case ATTN__BM_LISTS: /* inside its own PARTIAL block a LISTS rule is its function */
        for (int64_t r = 0; r < n; r++) {
            uint64_t v = 0;
            for (int64_t c = 0; c < nk; c++) v |= (uint64_t)(m->fn(bb, hh, i0 + r, j0 + c, m->user) != 0) << c;
            bits[r] = v;
        }
        return;
    case ATTN__BM_PATTERN: attn__pattern_bits(&m->pat, &m->shape, bb, hh, i0, n, j0, nk, bits); return;
    default: {
        uint64_t other[BITS_ROWS];
        layout_bits(m->a, b, h, i0, n, j0, nk, bits);
        layout_bits(m->b, b, h, i0, n, j0, nk, other);
        for (int64_t r = 0; r < n; r++) bits[r] = m->rule == ATTN__BM_AND ? bits[r] & other[r] : bits[r] | other[r];
    }
    }
}

/* attn__bm_bits for n <= BITS_ROWS rows: per block row of the tile, the
 * listed key blocks it meets, FULL ones set whole, PARTIAL ones from the
 * rule. */
static void layout_bits(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t n, int64_t j0,
                        int64_t nk, uint64_t *bits)
{
    int64_t bq = m->shape.block_q, bk = m->shape.block_k;
    memset(bits, 0, sizeof(uint64_t) * (size_t)n);
    for (int64_t qb = i0 / bq; qb * bq < i0 + n; qb++) {
        int64_t ra = qb * bq - i0 > 0 ? qb * bq - i0 : 0, rb = (qb + 1) * bq - i0 < n ? (qb + 1) * bq - i0 : n;
        const int64_t *idx;
        const uint8_t *kind;
        int64_t cnt = attn__bm_row(m, b, h, qb, &idx, &kind), x = lower_bound(idx, cnt, j0 / bk);
        for (; x < cnt && idx[x] * bk < j0 + nk; x++) {
            int64_t c0 = idx[x] * bk - j0 > 0 ? idx[x] * bk - j0 : 0;
            int64_t c1 = (idx[x] + 1) * bk - j0 < nk ? (idx[x] + 1) * bk - j0 : nk;
            if (kind[x] == ATTN__BLK_FULL) {
                uint64_t v = attn__bits_span(c0, c1, nk);
                for (int64_t r = ra; r < rb; r++) bits[r] |= v;
            } else {
                uint64_t t[BITS_ROWS];
                rule_bits(m, b, h, i0 + ra, rb - ra, j0 + c0, c1 - c0, t);
                for (int64_t r = ra; r < rb; r++) bits[r] |= t[r - ra] << c0;
            }
        }
    }
}

void attn__bm_bits(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t j0, int64_t nk,
                   uint64_t *bits)
{
    for (int64_t r = 0; r < nq; r += BITS_ROWS)
        layout_bits(m, b, h, i0 + r, nq - r < BITS_ROWS ? nq - r : BITS_ROWS, j0, nk, bits + r);
}

void attn__bm_hide(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t n, float *s,
                   int64_t st)
{
    for (int64_t c = 0; c < n; c += 64) {
        int64_t w = n - c < 64 ? n - c : 64;
        uint64_t bits;
        layout_bits(m, b, h, i, 1, j0 + c, w, &bits);
        attn__bits_hide(bits, w, s + c * st, st);
    }
}

/* ---- the tile counter ------------------------------------------------------------ */

static _Atomic int64_t tiles;

void attn__tiles_add(int64_t n) { atomic_fetch_add_explicit(&tiles, n, memory_order_relaxed); }

int64_t attn__tiles_take(void) { return atomic_exchange_explicit(&tiles, 0, memory_order_relaxed); }
