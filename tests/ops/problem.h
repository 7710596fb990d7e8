/* problem.h - one attention problem for tests: its configuration, inputs
 * (exactly representable in float, so every path solves the same problem),
 * runs of the library in each dtype/kernel/layout, and the naive float32
 * baseline used by the error rule of docs/testing.md. */
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
    uint64_t seed;
} t_cfg;

typedef struct {
    t_cfg c;
    double *q, *k, *v, *dout, *bias, *alibi; /* canonical contiguous BSHD */
    uint8_t *mask;
    int64_t *qlens, *klens;
    int64_t bias_dim[4], mask_dim[4];
    const attn_block_mask *bm; /* set by the caller (NULL: none); not owned */
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
void t_problem_free(t_problem *P);
attn_sdpa_params t_params(const t_problem *P, attn_tensor *bias, attn_tensor *mask);

/* Runs forward (and backward if want_grad) with float64 tensors (the
 * reference kernel) or float32 tensors on ctx's kernel, in layout. */
void t_run(const t_problem *P, attn_dtype dt, attn_ctx *ctx, int layout, bool want_grad,
           t_result *r);
/* Naive float32 math, the baseline of the error rule. */
void t_naive32(const t_problem *P, bool want_grad, t_result *r);
void t_result_free(t_result *r);

/* Every available kernel (and naive float32) against ref64 on P by the
 * grid's error rule, forward and backward; with check_threads also
 * bitwise equality across thread counts (test_grid.c). */
bool t_check_problem(const t_problem *P, bool check_threads);

/* max |a - b| over n; NaN anywhere counts as +inf unless both are NaN. */
double t_max_err(const double *a, const double *b, int64_t n);
double t_max_abs(const double *a, int64_t n);

#endif /* ATTN_TEST_PROBLEM_H */
