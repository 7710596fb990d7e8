/* sdpa_ops.h - validation shared by the forward, backward and weights
 * entry points of scaled-dot-product attention. */
#ifndef ATTN_SDPA_OPS_H
#define ATTN_SDPA_OPS_H

#include "kernels/sdpa_kernels.h"

/* A view with the name used in error messages and its role. */
typedef struct {
    const attn_tensor *t;
    const char *name;
    bool output;
} attn__named;

/* Checks one view: dims >= 0, strides >= 0, no overflow of its extent,
 * data non-NULL when it has elements, and for outputs no two elements at
 * the same address. */
attn_status attn__check_view(const attn__named *v);

/* Checks Q, K, V (v may be NULL: weights need no V) and params, and fills
 * p with the resolved problem. Bias and mask are checked too. */
attn_status attn__sdpa_prepare(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_sdpa_params *params,
                               attn__sdpa *p);

/* Checks that view t has exactly dims d0..d3 and the problem's dtype. */
attn_status attn__check_shape(const attn__sdpa *p, const attn_tensor *t, const char *name,
                              int64_t d0, int64_t d1, int64_t d2, int64_t d3);

/* Rejects any output whose byte range meets an input's or another output's. */
attn_status attn__check_overlap(const attn__named *views, int n);

#endif /* ATTN_SDPA_OPS_H */
