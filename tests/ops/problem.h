/* problem.h - one attention problem for tests: its configuration, inputs
 * (exactly representable in the dtypes it runs in, so every path solves
 * the same problem), runs of the library in each dtype/kernel/layout, and
 * the naive baseline (float32, or every step rounded to a half type) of
 * the error rule of docs/testing.md. */
#ifndef ATTN_TEST_PROBLEM_H
#define ATTN_TEST_PROBLEM_H

#include "test.h"

enum { BIAS_NONE, BIAS_FULL, BIAS_SHARED /* [1,1,Sq,Sk] */, BIAS_KEYS /* [B,1,1,Sk] */,
       BIAS_HEADS /* [1,Hq,Sq,1] */, BIAS_KINDS };
enum { MASK_NONE, MASK_FULL, MASK_KEYS /* [B,1,1,Sk] */, MASK_SHARED /* [1,1,Sq,Sk] */, MASK_KINDS };
enum { LAYOUT_BSHD, LAYOUT_BHSD, LAYOUT_PADDED, LAYOUT_CACHE, LAYOUT_KINDS };

typedef struct {
    int64_t B, Sq, Sk, Hq, Hkv, Dk, Dv;
    double scale; /* 0: default */
    double softcap, dropout_p;
    int causal, align;
    int64_t align_offset; /* align == ATTN_ALIGN_OFFSET */
    int64_t window_left, window_right;
    int bias_kind, mask_kind, layout, threads;
    bool qlens, klens, alibi, dbias;
    bool bias32; /* under half Q: a float32 bias (else one of Q's dtype) */
    uint64_t seed;
} t_cfg;

typedef struct {
    t_cfg c;
    double *q, *k, *v, *dout, *bias, *alibi; /* canonical contiguous BSHD */
    uint8_t *mask;
    int64_t *qlens, *klens;
    int64_t bias_dim[4], mask_dim[4];
    const attn_block_mask *bm; /* set by the caller (NULL: none); not owned */
    attn_dtype kv_dt, bias_dt; /* of K, V and the bias when run in a dtype (t_problem_as) */
} t_problem;

/* Results in canonical layouts: o [B,Sq,Hq,Dv], lse [B,Hq,Sq], dq/dk/dv as
 * q/k/v, dbias with bias_dim. */
typedef struct {
    double *o, *lse, *dq, *dk, *dv, *dbias;
    attn_status status;
    bool guards_ok; /* no write outside the output views */
} t_result;

int64_t t_numel(const int64_t d[4]);
t_cfg t_cfg_sample(uint64_t seed, bool big);
void t_cfg_print(const t_cfg *c, FILE *f);
void t_problem_make(t_problem *P, const t_cfg *c);
/* Rounds the inputs to what the dtypes of a run hold: Q and dO to dt, K
 * and V to kv_dt (dt, or a half type under F32 Q: the mixed decode), the
 * bias to dt or (c.bias32 under half dt, and mixed) F32; t_run uses them. */
void t_problem_as(t_problem *P, attn_dtype dt, attn_dtype kv_dt);
void t_problem_free(t_problem *P);
attn_sdpa_params t_params(const t_problem *P, attn_tensor *bias, attn_tensor *mask);

/* Runs forward (and backward if want_grad) on ctx's kernel, in layout:
 * with float64 tensors (dt F64: the reference kernel, the oracle), or with
 * Q, O, dO, dQ in dt and K, V, dK, dV and the bias in the dtypes of
 * t_problem_as (by default dt; LSE in float32). */
void t_run(const t_problem *P, attn_dtype dt, attn_ctx *ctx, int layout, bool want_grad,
           t_result *r);
/* Naive math, the baseline of the error rule: float32 accumulators and
 * every intermediate (scores, probabilities, products, outputs) rounded to
 * dt (F32: plain float32 math; BF16, F16: like PyTorch's math path in that
 * dtype). */
void t_naive(const t_problem *P, attn_dtype dt, bool want_grad, t_result *r);
void t_result_free(t_result *r);

/* Every available kernel against ref64 on P by the grid's error rule, the
 * naive math in dt its baseline: Q, O, dO, dQ in dt, K and V in P->kv_dt
 * (t_problem_as; 0: dt); forward and backward (forward only for a half K/V
 * under F32 Q); with check_threads also bitwise equality across thread
 * counts (test_grid.c). */
bool t_check_problem(const t_problem *P, attn_dtype dt, bool check_threads);
/* The dtypes of the grid's run x (0 F32, 1 BF16, 2 F16, 3 F32 Q over a
 * half K/V, BF16 or F16 by seed): Q's (and the baseline's precision) and
 * K/V's. */
void t_grid_dtypes(int x, uint64_t seed, attn_dtype *q, attn_dtype *kv);

/* max |a - b| over n; NaN anywhere counts as +inf unless both are NaN. */
double t_max_err(const double *a, const double *b, int64_t n);
double t_max_abs(const double *a, int64_t n);

#endif /* ATTN_TEST_PROBLEM_H */
