/* attn/quant.h - matrix products with block-quantized weights (the Q8_0 and
 * Q4_1 formats of GGUF files, as llama.cpp writes them), dequantized block
 * by block inside the product: no float copy of a weight matrix is made.
 *
 * A row of K weights (K a positive multiple of 32) is K/32 blocks of 32
 * weights, stored one after the other; a matrix [N, K] is N such rows.
 *   Q8_0  34 bytes: f16 d, int8 q[32]               w[i] = d * q[i]
 *   Q4_1  20 bytes: f16 d, f16 m, uint8 qs[16]      w[i] = d * q[i] + m,
 *         q[i] = qs[i] & 15 (i < 16), qs[i - 16] >> 4 (i >= 16)
 * f16 is IEEE binary16, little-endian; blocks need no alignment.
 *
 * The products accumulate in float32 with the activations kept in float32
 * (no 8-bit activations): the result differs from the dot product of the
 * dequantized weights in float64 by float32 rounding only. The kernel is
 * the context's (attn_ctx_resolved_kernel): AVX2 (which also needs F16C)
 * runs vectorised float32 kernels; REF and TILED run the portable twin,
 * which dequantizes a row and takes the dot product in float64. The result
 * is the same for any number of threads.
 *
 * Errors: statuses of attn/attn.h, the detail in attn_last_error(); on error
 * nothing is written and nothing leaks.
 */
#ifndef ATTN_QUANT_H
#define ATTN_QUANT_H

#include <attn/attn.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTN_QUANT_BLOCK 32 /* weights per block */

typedef enum attn_quant {
    ATTN_QUANT_Q8_0 = 1,
    ATTN_QUANT_Q4_1 = 2
} attn_quant;

/* "Q8_0", "Q4_1"; "?" outside the enum. */
ATTN_API const char *attn_quant_name(attn_quant q);
/* Bytes of one block of 32 weights (34, 20); 0 outside the enum. */
ATTN_API size_t attn_quant_block_bytes(attn_quant q);

/* out [n_blocks * 32] = the weights of n_blocks consecutive blocks, each
 * computed in float32 exactly as written above (d * q + m rounded once). */
ATTN_API attn_status attn_quant_dequantize(attn_quant q, const void *blocks, int64_t n_blocks,
                                           float *out);

/* One quantized matrix W [rows, K]: rows * K/32 blocks, row after row. */
typedef struct attn_quant_matrix {
    const void *data;
    attn_quant type;
    int64_t rows;
} attn_quant_matrix;

/* For each of the n_w matrices w[m] [N_m, K], all sharing the input x:
 *     y[m] [n, N_m] = x [n, K] w[m]^T          (row-major, contiguous)
 * Several matrices in one call (a layer's Q, K and V projections) share the
 * threads better than one call each. n >= 0; K a positive multiple of 32;
 * 1 <= n_w <= 64; rows >= 0. The outputs must not overlap x, the weights
 * or each other (ATTN_OVERLAP).
 * ATTN_NULL_ARG for a NULL ctx, x (with n > 0), w, y, w[m].data or y[m]
 * (with rows and n > 0); ATTN_BAD_DIM for a bad n, K or rows; ATTN_BAD_PARAM
 * for a type outside the enum; ATTN_OVERFLOW when a size overflows. */
ATTN_API attn_status attn_quant_matmul(attn_ctx *ctx, const float *x, int64_t n, int64_t K,
                                       const attn_quant_matrix *w, int n_w, float *const *y);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_QUANT_H */
