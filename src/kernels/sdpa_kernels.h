/* sdpa_kernels.h - the validated problem that src/ops hands to the kernels,
 * and the kernel entry points. A kernel is a pure function on valid input:
 * it does not validate, allocate, spawn threads or print. The ops layer
 * plans the workspace, splits the work into tasks and runs them. */
#ifndef ATTN_SDPA_KERNELS_H
#define ATTN_SDPA_KERNELS_H

#include "core/core.h"
#include "core/half.h"
#include "kernels/block_mask.h"

#include <math.h>
#include <stdlib.h>

/* Everything a kernel needs, resolved: defaults applied, broadcast dims of
 * bias and mask turned into zero strides, dropout threshold computed. */
typedef struct attn__sdpa {
    int64_t B, Sq, Sk, Hq, Hkv, Dk, Dv;
    int64_t group; /* Hq / Hkv */
    attn_dtype dtype; /* of Q, O, dO, dQ; K, V, dK, dV have theirs (a half K, V under F32 Q:
                       * the mixed decode); LSE is F32 (F64 for F64 calls) */

    attn_tensor q, k, v, o, lse; /* lse.data == NULL: not wanted */
    attn_tensor d_o, dq, dk, dv, dbias;

    double scale, softcap;
    int causal;
    attn_align align;
    int64_t align_offset; /* ATTN_ALIGN_OFFSET: i' = i + align_offset */
    int64_t window_left, window_right; /* -1: unbounded */
    const int64_t *q_lens, *k_lens;
    const double *alibi;

    bool has_bias, has_mask;
    const void *bias;
    attn_dtype bias_dtype; /* Q's dtype, or F32 under half Q */
    int64_t bias_stride[4];
    const uint8_t *mask;
    int64_t mask_stride[4];

    double dropout_p;
    uint32_t drop_threshold;
    uint64_t seed, offset;
    /* The dropout counter's batch index of b = 0: 0, or sequence s of a
     * packed batch run as a problem of its own (src/ops/sdpa.c). */
    int64_t batch0;

    const attn_block_mask *bm; /* NULL: none */

    /* K and V of every key tile already in the forward kernel's own layout
     * (attn__k_forward.pack, filled by the driver before the blocks), or
     * NULL: the blocks convert what they read. */
    const void *kv_packed;
    /* The backward's: its key tiles' and query blocks' records
     * (attn__k_bwd_pack), or NULL: the blocks convert what they read. */
    const void *bwd_kv_packed, *bwd_q_packed;
} attn__sdpa;

static inline int64_t attn__qlen(const attn__sdpa *p, int64_t b)
{
    return p->q_lens ? p->q_lens[b] : p->Sq;
}

static inline int64_t attn__klen(const attn__sdpa *p, int64_t b)
{
    return p->k_lens ? p->k_lens[b] : p->Sk;
}

static inline int64_t attn__off(const int64_t stride[4], int64_t a, int64_t b,
                                int64_t c, int64_t d)
{
    return a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3];
}

/* The fast kernels' view of the structural masks (the reference kernel
 * evaluates them from their definitions instead, on purpose): the aligned
 * query position i', and the interval [lo, hi) of keys that query row i of
 * batch b may see under lengths, causal and window (empty: lo >= hi). */
static inline int64_t attn__aligned(const attn__sdpa *p, int64_t b, int64_t i)
{
    if (p->align == ATTN_ALIGN_OFFSET) return i + p->align_offset;
    return p->align == ATTN_ALIGN_BOTTOM_RIGHT ? i + attn__klen(p, b) - attn__qlen(p, b) : i;
}

static inline void attn__key_range(const attn__sdpa *p, int64_t b, int64_t i, int64_t *lo,
                                   int64_t *hi)
{
    int64_t ia = attn__aligned(p, b, i);
    *lo = 0;
    *hi = i < attn__qlen(p, b) ? attn__klen(p, b) : 0;
    if (p->causal && ia + 1 < *hi) *hi = ia + 1;
    if (p->window_right >= 0 && ia + p->window_right + 1 < *hi) *hi = ia + p->window_right + 1;
    if (p->window_left >= 0 && ia - p->window_left > *lo) *lo = ia - p->window_left;
}

/* Intervals of query rows i0 .. i0+n-1 within the keys [k0, k1) into lo[]
 * and hi[], and the bounds [*jmin, *jmax) of their union (*jmin >= *jmax:
 * no row sees a key). */
static inline void attn__block_ranges_in(const attn__sdpa *p, int64_t b, int64_t i0, int64_t n,
                                         int64_t k0, int64_t k1, int64_t *lo, int64_t *hi,
                                         int64_t *jmin, int64_t *jmax)
{
    *jmin = INT64_MAX;
    *jmax = 0;
    for (int64_t r = 0; r < n; r++) {
        attn__key_range(p, b, i0 + r, &lo[r], &hi[r]);
        if (lo[r] < k0) lo[r] = k0;
        if (hi[r] > k1) hi[r] = k1;
        if (lo[r] < hi[r]) {
            *jmin = lo[r] < *jmin ? lo[r] : *jmin;
            *jmax = hi[r] > *jmax ? hi[r] : *jmax;
        }
    }
}

/* The same over all keys (a row never sees a key outside [0, Sk)). */
static inline void attn__block_ranges(const attn__sdpa *p, int64_t b, int64_t i0, int64_t n,
                                      int64_t *lo, int64_t *hi, int64_t *jmin, int64_t *jmax)
{
    attn__block_ranges_in(p, b, i0, n, 0, p->Sk, lo, hi, jmin, jmax);
}

/* The block mask as the fast kernels see it (kernels/block_mask.h), for
 * the tile of rows [i0, i0 + nq) of head (b, h) and keys [j0, j0 + nk):
 * its kind (FULL without a block mask), and the first key tile start >= j
 * (multiples of tile) that some of those rows may need (j itself without
 * one); the transposed walk for the dK/dV passes. */
static inline int attn__tile_kind(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq,
                                  int64_t j0, int64_t nk)
{
    return p->bm ? attn__bm_tile(p->bm, b, h, i0, nq, j0, nk) : ATTN__BLK_FULL;
}

static inline int64_t attn__next_key_tile(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq,
                                          int64_t j, int64_t tile)
{
    return p->bm ? attn__bm_next_key(p->bm, b, h, i0, nq, j, tile) : j;
}

static inline int64_t attn__next_query_tile(const attn__sdpa *p, int64_t b, int64_t h, int64_t j0, int64_t nk,
                                            int64_t i, int64_t tile)
{
    return p->bm ? attn__bm_next_query(p->bm, b, h, j0, nk, i, tile) : i;
}

/* s[c * st] = -inf for the keys j0 .. j0+n-1 the block mask hides from
 * row i of head (b, h); nothing without a block mask. */
static inline void attn__tile_hide(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t n,
                                   float *s, int64_t st)
{
    if (p->bm) attn__bm_hide(p->bm, b, h, i, j0, n, s, st);
}

/* The dropout counter's (batch, head) word of (b, h). */
static inline int64_t attn__drop_bh(const attn__sdpa *p, int64_t b, int64_t h)
{
    return (p->batch0 + b) * p->Hq + h;
}

/* Element off of a view in float32 (F32, BF16, F16: the fast kernels'
 * dtypes), exact. */
static inline float attn__ldf(const attn_tensor *t, int64_t off)
{
    switch (t->dtype) {
    case ATTN_DTYPE_BF16: return attn__bf16_to_f32(((const uint16_t *)t->data)[off]);
    case ATTN_DTYPE_F16: return attn__f16_to_f32(((const uint16_t *)t->data)[off]);
    default: return ((const float *)t->data)[off];
    }
}

/* v into element off of a view of F32, BF16 or F16, rounded to nearest even. */
static inline void attn__stf(const attn_tensor *t, int64_t off, float v)
{
    switch (t->dtype) {
    case ATTN_DTYPE_BF16: ((uint16_t *)t->data)[off] = attn__f32_to_bf16(v); break;
    case ATTN_DTYPE_F16: ((uint16_t *)t->data)[off] = attn__f32_to_f16(v); break;
    default: ((float *)t->data)[off] = v; break;
    }
}

/* Element access in double for the reference, which reads every float dtype. */
static inline double attn__ld(const attn_tensor *t, int64_t off)
{
    return t->dtype == ATTN_DTYPE_F64 ? ((const double *)t->data)[off] : (double)attn__ldf(t, off);
}

/* Half outputs of the reference round twice (double to float to half). */
static inline void attn__st(const attn_tensor *t, int64_t off, double v)
{
    if (t->dtype == ATTN_DTYPE_F64)
        ((double *)t->data)[off] = v;
    else
        attn__stf(t, off, (float)v);
}

/* The bias entry at element offset off (bias_stride applied by the caller). */
static inline double attn__bias_ld(const attn__sdpa *p, int64_t off)
{
    attn_tensor t = {(void *)(uintptr_t)p->bias, p->bias_dtype, {0, 0, 0, 0}, {0, 0, 0, 0}};
    return attn__ld(&t, off);
}

static inline float attn__bias_ldf(const attn__sdpa *p, int64_t off)
{
    attn_tensor t = {(void *)(uintptr_t)p->bias, p->bias_dtype, {0, 0, 0, 0}, {0, 0, 0, 0}};
    return attn__ldf(&t, off);
}

/* Bias at or below -FLT_MAX masks the key (docs/operator.md); of the half
 * dtypes only -inf is that low. */
#define ATTN__BIAS_MASK_LIMIT (-3.4028234663852886e38)

/* Decode partials, the one layout of every decode kernel and of the merge:
 * per split, per row r of a kv head (row r: query head hkv * group + r / Sq,
 * query r % Sq), attn__decode_ld(p) + 3 floats: the unnormalised
 * accumulator acc[Dv] (padded to a multiple of 16), the running max m, the
 * running sum l, and seen (1 if any key of the split was visible, else 0). */
static inline int64_t attn__decode_rows(const attn__sdpa *p) { return p->group * p->Sq; }
static inline int64_t attn__decode_ld(const attn__sdpa *p) { return (p->Dv + 15) / 16 * 16; }
static inline int64_t attn__decode_partial(const attn__sdpa *p) /* floats per split */
{
    return attn__decode_rows(p) * (attn__decode_ld(p) + 3);
}

/* The share of kv head (b, hkv) that one fused task computes: the query
 * heads [h0, h1) of its group and the key tiles [kb0, kb1) (of dkdv.tile_k
 * keys). The task stores, through p->dk and p->dv, dK and dV of its key
 * tiles summed over its heads, and through p->dq, dQ of its heads summed
 * over its key tiles (every row of them); when the task has only part of
 * the heads or of the keys, the driver points those tensors at float32
 * partial sums that it adds after, in a fixed order. With write_dbias (a
 * bias gradient of the full [B, Hq, Sq, Sk] shape) the task also writes
 * dbias for its heads and keys, zeros where nothing is visible; with
 * dbias_acc it adds dS into a broadcast one's float32 sums. */
typedef struct attn__fused_part {
    int64_t h0, h1, kb0, kb1;
    bool write_dbias;
    /* A broadcast bias gradient: dS added into dbias_acc (float32) at
     * attn__off(acc_stride, b, h, i, j) (stride 0 along the broadcast
     * dims), in the walk's order; the driver sees to it that the tasks
     * sharing an element of it are one task, so the sums have a fixed
     * order. NULL: none. */
    float *dbias_acc;
    int64_t acc_stride[4];
} attn__fused_part;

/* ---- double-precision reference (src/kernels/ref) ------------------------ */

/* Workspace in doubles for one (b, h) task. */
int64_t attn__ref_forward_ws(const attn__sdpa *p);
int64_t attn__ref_backward_ws(const attn__sdpa *p);
/* Forward of one (b, h): writes O rows and LSE of that head. */
void attn__ref_forward_head(const attn__sdpa *p, int64_t b, int64_t h, double *ws);
/* Backward of one (b, kv head): dQ of the group's query heads, dK and dV of
 * the kv head; adds the bias gradient into dbias_acc (dbias dims, doubles)
 * when it is not NULL. */
void attn__ref_backward_kvhead(const attn__sdpa *p, int64_t b, int64_t hkv,
                               double *ws, double *dbias_acc);
/* Probabilities of (b, h, row i) into out[Sk] (double), from the LSE. */
void attn__ref_weights_row(const attn__sdpa *p, int64_t b, int64_t h, int64_t i,
                           bool with_dropout, double *out);

/* ---- portable tiled float32 kernel (src/kernels/portable) ---------------- */

enum { ATTN__TILE_Q = 32, ATTN__TILE_K = 64 };

/* Workspace in floats for one worker. */
int64_t attn__tiled_forward_ws(const attn__sdpa *p);
int64_t attn__tiled_backward_ws(const attn__sdpa *p);
/* Forward of query rows i0 .. i0+nq-1 (nq <= ATTN__TILE_Q) of head (b, h). */
void attn__tiled_forward_block(const attn__sdpa *p, int64_t b, int64_t h,
                               int64_t i0, int64_t nq, float *ws);
/* delta[i] = dot(dO_i, O_i) for the rows of query block qb of head (b, h);
 * delta is [Sq] for that head. */
void attn__tiled_delta_block(const attn__sdpa *p, int64_t b, int64_t h,
                             int64_t qb, float *delta);
/* dK, dV of key block kb (ATTN__TILE_K keys) of kv head (b, hkv), summed
 * over the group's query heads. delta: [B, Hq, Sq]. */
void attn__tiled_dkdv_block(const attn__sdpa *p, int64_t b, int64_t hkv,
                            int64_t kb, const float *delta, float *ws);
/* dQ of query block qb of head (b, h), and the bias gradient of those rows
 * when dbias has the full [B, Hq, Sq, Sk] shape. */
void attn__tiled_dq_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb,
                          const float *delta, bool write_dbias, float *ws);
/* Fused backward of a share of kv head (b, hkv) (attn__fused_part above):
 * the dK/dV blocks of its key tiles in order, adding dQ
 * of its query heads as they go (the same sums, in the same order, as
 * attn__tiled_dq_block: bitwise the same dQ when the share is the whole
 * kv head). Workspace attn__tiled_fused_ws. */
int64_t attn__tiled_fused_ws(const attn__sdpa *p);
void attn__tiled_fused_kvhead(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,
                              const float *delta, float *ws);
/* Zeros the bias gradient of a fused share's heads and keys (key tiles of
 * `tile`) when it writes one (part->write_dbias). */
void attn__fused_zero_dbias(const attn__sdpa *p, int64_t b, const attn__fused_part *part, int64_t tile);
/* Decode: the online softmax of the forward over keys [s * split,
 * (s + 1) * split) for every row of kv head (b, hkv) (at most ATTN__TILE_Q
 * queries), into part; workspace attn__tiled_forward_ws. */
void attn__tiled_decode_split(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split,
                              float *part, float *ws);
/* Merges the n_splits partials of kv head (b, hkv) in order into O and LSE
 * (every decode kernel's merge). */
void attn__decode_merge(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t n_splits,
                        const float *parts);
/* Probabilities of (b, h, row i) into out[Sk] (float), from the LSE. */
void attn__tiled_weights_row(const attn__sdpa *p, int64_t b, int64_t h, int64_t i,
                             bool with_dropout, float *out);

#endif /* ATTN_SDPA_KERNELS_H */
