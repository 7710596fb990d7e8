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

/* ---- the element rule as bits (attn__bm_bits) ------------------------------------ */

/* First position in the sorted g[0..n) with g >= x (n if none). */
static int64_t first_at_least(const int64_t *g, int64_t n, int64_t x)
{
    int64_t a = 0, b = n;
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (g[mid] < x) a = mid + 1; else b = mid;
    }
    return a;
}

/* Keys c < nk inside the window of position p: [p - left, p + right]
 * (-1: unbounded) as bits of a tile starting at key j0. */
static uint64_t window_bits(int64_t p, int64_t j0, int64_t nk, int64_t left, int64_t right)
{
    return attn__bits_span(left < 0 ? 0 : p - left - j0, right < 0 ? nk : p + right + 1 - j0, nk);
}

void attn__pattern_bits(const attn_block_pattern *pt, const attn_block_mask_shape *s, int64_t b, int64_t h,
                        int64_t i0, int64_t n, int64_t j0, int64_t nk, uint64_t *bits)
{
    switch (pt->kind) {
    case ATTN_BLOCK_PATTERN_DOCUMENTS: { /* one compare per key; rows of the same id share their bits */
        const int64_t *dq = pt->doc_q + b * s->seq_q, *dk = pt->doc_k + b * s->seq_k + j0;
        for (int64_t r = 0; r < n; r++) {
            int64_t id = dq[i0 + r];
            if (r > 0 && id == dq[i0 + r - 1]) {
                bits[r] = bits[r - 1];
                continue;
            }
            uint64_t v = 0;
            for (int64_t c = 0; c < nk; c++) v |= (uint64_t)(dk[c] == id) << c;
            bits[r] = v;
        }
        return;
    }
    case ATTN_BLOCK_PATTERN_PREFIX_LM: /* j < prefix or j <= p: one interval from 0 */
        for (int64_t r = 0; r < n; r++) {
            int64_t p = i0 + r + pt->q_offset, end = pt->prefix[b] > p + 1 ? pt->prefix[b] : p + 1;
            bits[r] = attn__bits_span(0, end - j0, nk);
        }
        return;
    case ATTN_BLOCK_PATTERN_LONGFORMER: { /* the window, the global keys, everything for a global query */
        const int64_t *g = pt->global;
        int64_t ng = pt->n_global, x = first_at_least(g, ng, j0), p0 = i0 + pt->q_offset;
        uint64_t gk = 0;
        for (; x < ng && g[x] < j0 + nk; x++) gk |= (uint64_t)1 << (g[x] - j0);
        x = first_at_least(g, ng, p0);
        for (int64_t r = 0; r < n; r++) {
            int64_t p = p0 + r;
            while (x < ng && g[x] < p) x++;
            bits[r] = x < ng && g[x] == p ? attn__bits_span(0, nk, nk)
                                          : gk | window_bits(p, j0, nk, pt->window_left, pt->window_right);
        }
        return;
    }
    case ATTN_BLOCK_PATTERN_BIGBIRD: { /* block-level: each key block's verdict for the row's query block */
        int64_t nkb = (s->seq_k + s->block_k - 1) / s->block_k, qb_prev = -1;
        for (int64_t r = 0; r < n; r++) {
            int64_t qb = (i0 + r) / s->block_q;
            if (qb == qb_prev) {
                bits[r] = bits[r - 1];
                continue;
            }
            uint64_t v = 0;
            for (int64_t kb = j0 / s->block_k; kb * s->block_k < j0 + nk; kb++)
                if (bigbird_visible(pt, nkb, h, qb, kb)) v |= attn__bits_span(kb * s->block_k - j0, (kb + 1) * s->block_k - j0, nk);
            bits[r] = v;
            qb_prev = qb;
        }
        return;
    }
    case ATTN_BLOCK_PATTERN_DILATED: { /* the keys j = p - k d of the window: every d-th from the first */
        int64_t d = pt->dilation, L = pt->window_left, R = pt->window_right;
        for (int64_t r = 0; r < n; r++) {
            int64_t p = i0 + r + pt->q_offset;
            uint64_t w = window_bits(p, j0, nk, L < 0 ? -1 : L * d, R < 0 ? -1 : R * d), v = 0;
            if (w != 0) {
                int64_t c = (p - j0) % d; /* the first c >= 0 with (p - j0 - c) % d == 0 */
                if (c < 0) c += d;
                for (; c < nk; c += d) v |= (uint64_t)1 << c;
            }
            bits[r] = v & w;
        }
        return;
    }
    default: /* CHUNKED: the keys of p's chunk */
        for (int64_t r = 0; r < n; r++) {
            int64_t start = floor_div(i0 + r + pt->q_offset, pt->chunk) * pt->chunk;
            bits[r] = attn__bits_span(start - j0, start + pt->chunk - j0, nk);
        }
        return;
    }
}
