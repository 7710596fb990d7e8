/* score_kernels.h - the validated problem of the learned-score attention
 * entry points (include/attn/score.h) and its kernels: the float64
 * reference (ref/score_ref.c) and the chunked float32 kernel
 * (portable/score_chunked.c). Kernels are pure functions on valid input:
 * the ops layer (src/ops/score.c) validates, allocates and splits the work. */
#ifndef ATTN_SCORE_KERNELS_H
#define ATTN_SCORE_KERNELS_H

#include <attn/score.h>
#include "kernels/sdpa_kernels.h"

/* The resolved problem. m carries the shapes (Hq = Hkv = H, group 1, Dk = Dq),
 * the data tensors (q, k, v, o, lse, d_o, dq, dk, dv), masks and dropout, so
 * the core's mask helpers (attn__key_range, ...) apply unchanged. */
typedef struct attn__score {
    attn__sdpa m;
    attn_score_kind kind;
    int64_t H, Dq, Dk, A; /* A: attention dim of the tanh kinds, else 0 */
    bool has_b;
    /* Parameter views [1, H, rows, cols]; for LUONG_CONCAT wq and wk are the
     * two column blocks of w (and dwq, dwk those of dw). */
    attn_tensor wq, wk, b, va, w, g;
    attn_tensor dwq, dwk, db, dva, dw, dg; /* data == NULL: not wanted */
} attn__score;

static inline bool attn__score_is_tanh(const attn__score *p)
{
    return p->kind == ATTN_SCORE_KIND_ADDITIVE || p->kind == ATTN_SCORE_KIND_LUONG_CONCAT;
}

/* x + y * z for buffer sizes (operands >= 0); -1 if x < 0 or on overflow. */
static inline int64_t attn__size_fma(int64_t x, int64_t y, int64_t z)
{
    int64_t yz;
    if (x < 0 || !attn__mul(y, z, &yz) || yz > INT64_MAX - x) return -1;
    return x + yz;
}

/* ---- float64 reference (src/kernels/ref/score_ref.c) ---------------------- */

/* Parameter-gradient slots of one head, in doubles: tanh kinds
 * [dWq (A*Dq) | dWk (A*Dk) | db (A) | dv_a (A)], LUONG_GENERAL [dW (Dq*Dk)],
 * SCALED_DOT [dg (1)]. */
int64_t attn__score_ref_nparam(const attn__score *p);
/* Workspace in doubles for one (b, h) task; -1 if the size overflows. */
int64_t attn__score_ref_ws(const attn__score *p);
/* Forward of head (b, h): out rows and LSE. */
void attn__score_ref_forward(const attn__score *p, int64_t b, int64_t h, double *ws);
/* Backward of head (b, h): dq, dk, dv rows of the head, and its parameter
 * gradients (summed over its rows) into pg[attn__score_ref_nparam]. */
void attn__score_ref_backward(const attn__score *p, int64_t b, int64_t h, double *ws, double *pg);
/* Weights of head (b, h) into w (a [B, H, Sq, Sk] view). */
void attn__score_ref_weights(const attn__score *p, int64_t b, int64_t h, bool with_dropout,
                             const attn_tensor *w, double *ws);

/* ---- chunked float32 kernel (src/kernels/portable/score_chunked.c) -------- */

/* Query rows per forward task, keys per chunk, key-chunk groups of the
 * backward (a fixed count: results never depend on the thread count), rows
 * per projection task. */
enum { ATTN__SCORE_TQ = 32, ATTN__SCORE_TK = 64, ATTN__SCORE_GROUPS = 4, ATTN__SCORE_ROWS = 32 };

/* Buffers of one float32 call, owned by the ops layer. Projections are
 * head-major: pq [B, H, Sq, A] = Wq q + b, pk [B, H, Sk, A] = Wk k. */
typedef struct attn__score_bufs {
    float *pq, *pk, *dpq, *dpk;
    float *dpq_part;          /* [B, H, groups, Sq, A] dpq of each key-chunk group */
    float *dva_part;          /* [B, H, groups, A] */
    float *delta;             /* [B, H, Sq] rowsum(dO * O) */
    const float *wqt, *wkt;   /* [H, Dq, A], [H, Dk, A]: Wq^T, Wk^T per head */
    const float *bias, *va;   /* [H, A] (bias NULL: none) */
    int64_t groups;
    float tanh_sat;           /* ATTN__SCORE_TANH_SAT, passed at run time: see score_chunked.c */
} attn__score_bufs;

#define ATTN__SCORE_TANH_SAT 9.0f

/* Workspace in floats for one worker; -1 if the size overflows. */
int64_t attn__score_chunked_ws(const attn__score *p);
/* Forward of query block qb (ATTN__SCORE_TQ rows) of head (b, h). */
void attn__score_forward_block(const attn__score *p, const attn__score_bufs *s, int64_t b,
                               int64_t h, int64_t qb, float *ws);
/* Weights rows of query block qb of head (b, h) into w [B, H, Sq, Sk]. */
void attn__score_weights_block(const attn__score *p, const attn__score_bufs *s, int64_t b,
                               int64_t h, int64_t qb, bool with_dropout, const attn_tensor *w,
                               float *ws);
/* delta of the rows of head (b, h). */
void attn__score_delta_head(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h);
/* Backward of the key chunks kb = g, g + groups, ... of head (b, h): dv rows
 * and dpk rows of those keys, this group's dpq and dv_a partials. */
void attn__score_backward_group(const attn__score *p, const attn__score_bufs *s, int64_t b,
                                int64_t h, int64_t g, float *ws);
/* dpq rows of query block qb of head (b, h): the sum of the groups' partials. */
void attn__score_reduce_dpq(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                            int64_t qb);

/* Linear maps of the projections, per head h, W [R, C]:
 *   forward   y[b, h, s, :] = W x[b, s, h, :] (+ bias)   rows s < len, 0 beyond
 *   backward  dx[b, s, h, :] = W^T dy[b, h, s, :]         0 where dy's row is 0
 *             dW[r, :] = sum_{b, s} dy[b, h, s, r] x[b, s, h, :], db likewise,
 *             over the rows whose dy is not all zero (those take no part). */
typedef struct attn__score_linear {
    const attn_tensor *x;  /* [B, S, H, C] */
    int64_t S, R, C;
    const int64_t *lens;   /* [B] valid rows, or NULL (= S) */
    const float *wt;       /* [H, C, R] W^T (forward) */
    const float *bias;     /* [H, R] or NULL (forward) */
    float *y;              /* [B, H, S, R]: y in the forward, dy in the backward */
    const attn_tensor *dx; /* backward output [B, S, H, C] */
    const attn_tensor *dw, *db; /* [1, H, R, C], [1, H, 1, R]; NULL: not wanted */
} attn__score_linear;

/* Packs head h of parameter t ([1, H, R, C] view) into dst as [R, C], or as
 * [C, R] when transpose. */
void attn__score_pack(const attn_tensor *t, int64_t h, bool transpose, float *dst);
/* Rows s0 .. s0+n-1 of batch b, head h. Workspace: C floats. */
void attn__score_linear_rows(const attn__score_linear *L, int64_t H, int64_t b, int64_t h, int64_t s0,
                             int64_t n, float *ws);
/* dx rows s0 .. s0+n-1 of batch b, head h, with w [H, R, C] packed.
 * Workspace: C floats. */
void attn__score_linear_dx_rows(const attn__score_linear *L, const float *w, int64_t H, int64_t b,
                                int64_t h, int64_t s0, int64_t n, float *ws);
/* dW rows r0 .. r0+n-1 (and db) of head h. Workspace: (n + 1) * C + n floats. */
void attn__score_linear_dw_rows(const attn__score_linear *L, int64_t B, int64_t H, int64_t h,
                                int64_t r0, int64_t n, float *ws);

/* SCALED_DOT runs the core's kernels on q' = g q (g [H] packed), qs
 * [B, H, Sq, Dq]: qs rows i0 .. i0+n-1 of (b, h) (0 for padding rows); dq
 * rows = g dqs rows; dg of head h = sum_{b, i} q_i . dqs_i over the rows
 * whose dqs is not all zero, written to p->dg. */
void attn__score_gscale_rows(const attn__score *p, const float *g, float *qs, int64_t b, int64_t h,
                             int64_t i0, int64_t n);
void attn__score_gscale_dq_rows(const attn__score *p, const float *g, const float *dqs, int64_t b,
                                int64_t h, int64_t i0, int64_t n);
void attn__score_dg_head(const attn__score *p, const float *dqs, int64_t h);

/* y[i] = tanh(x[i]) with the chunked kernel's branch-free float tanh
 * (for the accuracy test); sat = ATTN__SCORE_TANH_SAT. */
void attn__score_tanh(const float *x, float *y, int64_t n, float sat);

#endif /* ATTN_SCORE_KERNELS_H */
