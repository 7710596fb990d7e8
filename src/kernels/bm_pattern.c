/* bm_pattern.c - the named block-mask patterns: element formulas and block
 * classification (bm_pattern.h). Positions: query i sits at key position
 * p = i + q_offset; a block (qb, kb) spans query positions [p0, p1] and
 * keys [j0, j1]. */
#include "kernels/bm_pattern.h"

#include "kernels/block_mask.h"

/* floor(a / d) for d > 0 and any a. */
static int64_t floor_div(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }

static bool in_window(int64_t p, int64_t j, int64_t left, int64_t right)
{
    return (left < 0 || j >= p - left) && (right < 0 || j <= p + right);
}

/* The window's verdict on a block: FULL if every (p, j) is inside, EMPTY if
 * none, PARTIAL otherwise. */
static int window_block(int64_t p0, int64_t p1, int64_t j0, int64_t j1, int64_t left, int64_t right)
{
    if ((left >= 0 && j1 < p0 - left) || (right >= 0 && j0 > p1 + right)) return ATTN__BLK_EMPTY;
    if ((left < 0 || j0 >= p1 - left) && (right < 0 || j1 <= p0 + right)) return ATTN__BLK_FULL;
    return ATTN__BLK_PARTIAL;
}

/* Number of sorted positions g[0..n) in [lo, hi]. */
static int64_t count_in(const int64_t *g, int64_t n, int64_t lo, int64_t hi)
{
    int64_t a = 0, b = n;
    while (a < b) { /* first >= lo */
        int64_t mid = a + (b - a) / 2;
        if (g[mid] < lo) a = mid + 1; else b = mid;
    }
    int64_t c = a, d = n;
    while (c < d) { /* first > hi */
        int64_t mid = c + (d - c) / 2;
        if (g[mid] <= hi) c = mid + 1; else d = mid;
    }
    return c - a;
}

int64_t attn__bigbird_random(const attn_block_pattern *pt, int64_t nkb, int64_t h, int64_t qb, int64_t *out)
{
    int64_t want = pt->random_blocks < nkb ? pt->random_blocks : nkb, n = 0;
    uint32_t key[2] = {(uint32_t)pt->seed, (uint32_t)(pt->seed >> 32)};
    for (uint32_t t = 0; n < want; t++) {
        uint32_t ctr[4] = {t, (uint32_t)qb, (uint32_t)h, 0x42494742u}, r[4];
        attn__philox(ctr, key, r);
        int64_t kb = (int64_t)(r[0] % (uint32_t)nkb);
        bool seen = false;
        for (int64_t x = 0; x < n; x++) seen |= out[x] == kb;
        if (!seen) out[n++] = kb;
    }
    return n;
}

static bool bigbird_visible(const attn_block_pattern *pt, int64_t nkb, int64_t h, int64_t qb, int64_t kb)
{
    int64_t d = qb > kb ? qb - kb : kb - qb;
    if (d <= pt->window_blocks || qb < pt->global_blocks || kb < pt->global_blocks) return true;
    int64_t r[ATTN__BIGBIRD_MAX_RANDOM], n = attn__bigbird_random(pt, nkb, h, qb, r);
    for (int64_t x = 0; x < n; x++)
        if (r[x] == kb) return true;
    return false;
}

bool attn__pattern_visible(const attn_block_pattern *pt, const attn_block_mask_shape *s, int64_t b,
                           int64_t h, int64_t i, int64_t j)
{
    int64_t p = i + pt->q_offset;
    switch (pt->kind) {
    case ATTN_BLOCK_PATTERN_DOCUMENTS: return pt->doc_q[b * s->seq_q + i] == pt->doc_k[b * s->seq_k + j];
    case ATTN_BLOCK_PATTERN_PREFIX_LM: return j < pt->prefix[b] || j <= p;
    case ATTN_BLOCK_PATTERN_LONGFORMER:
        return in_window(p, j, pt->window_left, pt->window_right) || count_in(pt->global, pt->n_global, p, p) > 0 ||
               count_in(pt->global, pt->n_global, j, j) > 0;
    case ATTN_BLOCK_PATTERN_BIGBIRD:
        return bigbird_visible(pt, (s->seq_k + s->block_k - 1) / s->block_k, h, i / s->block_q, j / s->block_k);
    case ATTN_BLOCK_PATTERN_DILATED: {
        int64_t d = p - j, L = pt->window_left, R = pt->window_right;
        return d % pt->dilation == 0 && (L < 0 || d <= L * pt->dilation) && (R < 0 || -d <= R * pt->dilation);
    }
    default: return floor_div(p, pt->chunk) == j / pt->chunk; /* CHUNKED */
    }
}

int attn__pattern_block(const attn_block_pattern *pt, const attn_block_mask_shape *s, int64_t b, int64_t h,
                        int64_t qb, int64_t kb, const attn__doc_span *doc)
{
    int64_t i1 = (qb + 1) * s->block_q < s->seq_q ? (qb + 1) * s->block_q : s->seq_q;
    int64_t p0 = qb * s->block_q + pt->q_offset, p1 = i1 - 1 + pt->q_offset;
    int64_t j0 = kb * s->block_k, j1 = ((kb + 1) * s->block_k < s->seq_k ? (kb + 1) * s->block_k : s->seq_k) - 1;
    switch (pt->kind) {
    case ATTN_BLOCK_PATTERN_DOCUMENTS:
        if (doc->qmax < doc->kmin || doc->kmax < doc->qmin) return ATTN__BLK_EMPTY;
        return doc->qmin == doc->qmax && doc->kmin == doc->kmax && doc->qmin == doc->kmin ? ATTN__BLK_FULL
                                                                                           : ATTN__BLK_PARTIAL;
    case ATTN_BLOCK_PATTERN_PREFIX_LM:
        if (j1 < pt->prefix[b] || j1 <= p0) return ATTN__BLK_FULL;
        return j0 >= pt->prefix[b] && j0 > p1 ? ATTN__BLK_EMPTY : ATTN__BLK_PARTIAL;
    case ATTN_BLOCK_PATTERN_LONGFORMER: {
        int w = window_block(p0, p1, j0, j1, pt->window_left, pt->window_right);
        int64_t gq = count_in(pt->global, pt->n_global, p0, p1), gk = count_in(pt->global, pt->n_global, j0, j1);
        if (w == ATTN__BLK_FULL || gq == p1 - p0 + 1 || gk == j1 - j0 + 1) return ATTN__BLK_FULL;
        return w == ATTN__BLK_EMPTY && gq == 0 && gk == 0 ? ATTN__BLK_EMPTY : ATTN__BLK_PARTIAL;
    }
    case ATTN_BLOCK_PATTERN_BIGBIRD:
        return bigbird_visible(pt, (s->seq_k + s->block_k - 1) / s->block_k, h, qb, kb) ? ATTN__BLK_FULL
                                                                                        : ATTN__BLK_EMPTY;
    case ATTN_BLOCK_PATTERN_DILATED: {
        int64_t L = pt->window_left, R = pt->window_right, d = pt->dilation;
        int w = window_block(p0, p1, j0, j1, L < 0 ? -1 : L * d, R < 0 ? -1 : R * d);
        return w == ATTN__BLK_FULL && d > 1 ? ATTN__BLK_PARTIAL : w;
    }
    default: { /* CHUNKED */
        int64_t c = pt->chunk, cp0 = floor_div(p0, c), cp1 = floor_div(p1, c), cj0 = j0 / c, cj1 = j1 / c;
        if (cp1 < cj0 || cj1 < cp0) return ATTN__BLK_EMPTY;
        return cp0 == cp1 && cj0 == cj1 && cp0 == cj0 ? ATTN__BLK_FULL : ATTN__BLK_PARTIAL;
    }
    }
}
