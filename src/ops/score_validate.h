/* score_validate.h - every argument check of the learned-score entry points
 * (score_validate.c). A validation returns the prepared call; the entry
 * points (score.c) only plan the buffers, split the work into tasks and
 * call the kernel table. */
#ifndef ATTN_OPS_SCORE_VALIDATE_H
#define ATTN_OPS_SCORE_VALIDATE_H

#include "ops/sdpa_validate.h"

/* A prepared call: the resolved problem with its outputs and the parameter
 * gradients asked for, and the kernels that run it. */
typedef struct attn__score_call {
    attn__score p;
    const attn__kernels *k;         /* NULL: the float64 reference */
    const attn_sdpa_params *masks;  /* the caller's, for the core's attention kernels */
    bool empty;                     /* nothing to compute: the call returns ATTN_OK at once */
    bool with_dropout;              /* attn_score_weights */
    attn_tensor w;                  /* attn_score_weights: the output */
} attn__score_call;

attn_status attn__score_validate_forward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_score_params *params,
                                         const attn_tensor *out, const attn_tensor *lse, attn__score_call *c);
attn_status attn__score_validate_backward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                          const attn_tensor *v, const attn_tensor *out,
                                          const attn_tensor *d_out, const attn_tensor *lse,
                                          const attn_score_params *params, const attn_tensor *dq,
                                          const attn_tensor *dk, const attn_tensor *dv,
                                          const attn_score_grads *grads, attn__score_call *c);
attn_status attn__score_validate_weights(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *lse, const attn_score_params *params,
                                         int with_dropout, const attn_tensor *w, attn__score_call *c);

#endif /* ATTN_OPS_SCORE_VALIDATE_H */
