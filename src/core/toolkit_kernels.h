/* toolkit_kernels.h - the toolkit's slots of the kernel table
 * (src/kernels/table.h) as the libraries above libattn see them: a dense
 * product and three row kernels in float32, contiguous rows. The table
 * fills them (portable kernels first, then the chosen instruction set's);
 * the toolkit calls them through attn__ctx_toolkit. Not installed. */
#ifndef ATTN_CORE_TOOLKIT_KERNELS_H
#define ATTN_CORE_TOOLKIT_KERNELS_H

#include "core/check.h"

#include <stdint.h>

/* y [M, N] = beta * y + x [M, K] w^T, w [N, K] row-major; beta 0 (y is not
 * read) or 1. */
typedef void (*attn__gemm_fn)(const float *x, int64_t M, int64_t K, const float *w, int64_t N,
                              float beta, float *y);
/* y [d] = (x - mean) / sqrt(var + eps) * w + b (biased variance); y == x
 * allowed. */
typedef void (*attn__layernorm_row_fn)(const float *x, int64_t d, const float *w, const float *b,
                                       double eps, float *y);
/* y [n] = GELU(x + b) = v Phi(v) with v = x + b (the erf form); b NULL for
 * none; y == x allowed. */
typedef void (*attn__gelu_row_fn)(const float *x, const float *b, int64_t n, float *y);
/* y [n] = softmax(x): e^(x_i - max) / sum; a row of -inf only gives 0s, a
 * NaN anywhere gives NaNs; y == x allowed. */
typedef void (*attn__softmax_row_fn)(const float *x, int64_t n, float *y);

typedef struct attn__toolkit_kernels {
    attn__gemm_fn gemm;
    attn__layernorm_row_fn layernorm_row;
    attn__gelu_row_fn gelu_row;
    attn__softmax_row_fn softmax_row;
} attn__toolkit_kernels;

/* The toolkit kernels of ctx's kernel choice; with ctx NULL, those of
 * ATTN_KERNEL_AUTO (for layers that take no context). Never NULL. */
ATTN__SHARED const attn__toolkit_kernels *attn__ctx_toolkit(const attn_ctx *ctx);

#endif /* ATTN_CORE_TOOLKIT_KERNELS_H */
