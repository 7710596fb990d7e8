/* rows_kernels.h - the toolkit's dense and row kernels in float32 (the
 * portable ones in portable/rows.c fill the table's nn.* slots; other
 * instruction sets may override them), and their double-precision twins
 * (ref/rows_ref.c), which the tests hold every variant against. Contiguous
 * rows; the maps are those of the slot types in kernels/table.h. */
#ifndef ATTN_KERNELS_ROWS_KERNELS_H
#define ATTN_KERNELS_ROWS_KERNELS_H

#include <stdint.h>

/* y [M, N] = beta * y + x [M, K] w^T (w [N, K]); beta 0 (y not read) or 1.
 * Each element is one dot product summed in k order. */
void attn__portable_gemm(const float *x, int64_t M, int64_t K, const float *w, int64_t N,
                         float beta, float *y);
/* y [d] = (x - mean) / sqrt(var + eps) * w + b; statistics in double. */
void attn__portable_layernorm_row(const float *x, int64_t d, const float *w, const float *b,
                                  double eps, float *y);
/* y [n] = v Phi(v), v = x + b (b NULL: 0), Phi(v) = erfc(-v / sqrt 2) / 2. */
void attn__portable_gelu_row(const float *x, const float *b, int64_t n, float *y);
/* y [n] = e^(x_i - max) / sum_j e^(x_j - max); a row of -inf gives 0s,
 * a NaN anywhere NaNs. */
void attn__portable_softmax_row(const float *x, int64_t n, float *y);

/* The twins: the same maps in double from the same float inputs (gemm:
 * the product x w^T alone, without beta). */
void attn__ref_gemm(const float *x, int64_t M, int64_t K, const float *w, int64_t N, double *y);
void attn__ref_layernorm_row(const float *x, int64_t d, const float *w, const float *b, double eps,
                             double *y);
void attn__ref_gelu_row(const float *x, const float *b, int64_t n, double *y);
void attn__ref_softmax_row(const float *x, int64_t n, double *y);

#endif /* ATTN_KERNELS_ROWS_KERNELS_H */
