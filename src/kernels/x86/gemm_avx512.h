/* gemm_avx512.h - the toolkit's AVX-512 GEMM kernel (gemm_avx512.c) and
 * its panel layout, shared with src/models/bert/bert.c. */
#ifndef ATTN_NN_GEMM_AVX512_H
#define ATTN_NN_GEMM_AVX512_H

#include <stdint.h>

enum { NR = 32, MR = 8, KC = 256 };

/* y [M, N] = beta * y + x [M, K] w^T, beta 0 or 1, w packed in panels pw.
 * Only with ATTN_NN_HAVE_AVX512 (the build compiled the kernel) and on a
 * CPU that attn__nn_avx512_ok() accepts. */
void attn__nn_gemm_avx512(const float *x, int64_t M, int64_t K, const float *pw, int64_t N,
                          float beta, float *y);

#endif /* ATTN_NN_GEMM_AVX512_H */
