/* sdpa_validate.h - every argument check of the attention entry points
 * (sdpa_validate.c), and the view checks the score entry points share. A
 * validation returns the prepared call; the entry points (sdpa.c) only
 * plan the workspace, split the work into tasks and call the kernel table.
 * Every message starts with the public function's name (fn). */
#ifndef ATTN_OPS_SDPA_VALIDATE_H
#define ATTN_OPS_SDPA_VALIDATE_H

#include "ops/ctx.h"

/* A view with the name used in error messages and its role. */
typedef struct {
    const attn_tensor *t;
    const char *name;
    bool output;
} attn__named;

/* Checks one view: dims >= 0, strides >= 0, no overflow of its extent,
 * data non-NULL when it has elements, and for outputs no two elements at
 * the same address. */
attn_status attn__check_view(const char *fn, const attn__named *v);

/* Checks that view t has exactly dims d0..d3 and the problem's dtype. */
attn_status attn__check_shape(const char *fn, const attn__sdpa *p, const attn_tensor *t,
                              const char *name, int64_t d0, int64_t d1, int64_t d2, int64_t d3);

/* attn__check_view, then attn__check_shape against dims. */
attn_status attn__check_view_shape(const char *fn, const attn__sdpa *p, const attn__named *v,
                                   const int64_t dims[4]);

/* Rejects any output (NULL entries skipped) whose bytes meet an input's or
 * another output's. */
attn_status attn__check_overlap(const char *fn, const attn__named *views, int n);

/* The kernel table of a call: NULL when the float64 reference runs (F64
 * tensors, or a context forced to ATTN_KERNEL_REF); ATTN_UNSUPPORTED for
 * F64 tensors on a context forced to a table's kernels (they compute in
 * float32). */
attn_status attn__call_kernels(const char *fn, const attn_ctx *ctx, attn_dtype dtype,
                               const attn__kernels **k);

/* A prepared call: the resolved problem, outputs included (lse.data and
 * dbias.data NULL when not wanted), and the kernels that run it: the
 * table's attention slots of the call's dtype combination. */
typedef struct attn__sdpa_call {
    attn__sdpa p;
    const attn__sdpa_kernels *k; /* NULL: the float64 reference */
    bool empty;             /* nothing to compute: the call returns ATTN_OK at once */
    /* a packed variable-length batch: n_seqs > 0 and both offset arrays */
    int64_t n_seqs;
    const int64_t *cu_q, *cu_k;
    /* attn_sdpa_weights: the rows asked for and where they go */
    const int64_t *heads, *rows; /* NULL: all */
    int64_t n_heads, n_rows;
    bool with_dropout;
    attn_tensor w;
} attn__sdpa_call;

/* Sequence s of a packed call as a problem of its own: the views of its
 * rows (B = 1, Sq = Lq_s, Sk = Lk_s) and its dropout batch index. */
attn__sdpa attn__sdpa_seq(const attn__sdpa_call *c, int64_t s);

attn_status attn__sdpa_validate_forward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                        const attn_tensor *v, const attn_sdpa_params *params,
                                        const attn_tensor *o, const attn_tensor *lse, attn__sdpa_call *c);
attn_status attn__sdpa_validate_backward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *o, const attn_tensor *d_o,
                                         const attn_tensor *lse, const attn_sdpa_params *params,
                                         const attn_tensor *dq, const attn_tensor *dk, const attn_tensor *dv,
                                         const attn_tensor *dbias, attn__sdpa_call *c);
attn_status attn__sdpa_validate_weights(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                        const attn_tensor *lse, const attn_sdpa_params *params,
                                        const int64_t *heads, int64_t n_heads, const int64_t *rows,
                                        int64_t n_rows, int with_dropout, const attn_tensor *w,
                                        attn__sdpa_call *c);

#endif /* ATTN_OPS_SDPA_VALIDATE_H */
