/* quant_kernels.h - the kernels of the quantized matrix products
 * (attn/quant.h) and the problem src/ops/quant.c hands them, validated.
 * A kernel computes the outputs of a range of rows of x and of columns of
 * one matrix (rows of W); it does not validate, allocate or spawn threads.
 * The block layouts are those of attn/quant.h. */
#ifndef ATTN_QUANT_KERNELS_H
#define ATTN_QUANT_KERNELS_H

#include "core/core.h"
#include "core/half.h"

#include <attn/quant.h>

enum {
    ATTN__Q8_0_BYTES = 34, /* f16 d, int8 q[32] */
    ATTN__Q4_1_BYTES = 20, /* f16 d, f16 m, uint8 qs[16] */
    /* AVX2 tiles: the GEMV takes 32 columns a task; the GEMM packs 64
     * columns by 256 of K per panel and takes 128 rows of x a task. */
    ATTN__QGEMV_COLS = 32,
    ATTN__QGEMM_COLS = 64,
    ATTN__QGEMM_KC = 256,
    ATTN__QGEMM_ROWS = 128,
    /* From this many rows of x on, the AVX2 product packs panels (GEMM);
     * below, it dequantizes in registers per row (GEMV). */
    ATTN__QGEMM_MIN_ROWS = 8
};

/* The f16 at p (a block's scale; blocks need no alignment). Like the file
 * readers, this assumes a little-endian host. */
static inline uint16_t attn__quant_u16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return h;
}

/* One matrix of a call: W [rows, K] and its output y [n, rows]. */
typedef struct attn__qmat {
    const unsigned char *w;
    attn_quant type;
    int64_t rows;
    size_t row_bytes; /* K/32 blocks */
    float *y;
} attn__qmat;

/* The shared input: x [n, K] and, for Q4_1 on the AVX2 GEMV path, the sum
 * of every block of 32 activations, xsum [n, K/32] (else NULL). */
typedef struct attn__qin {
    const float *x;
    const float *xsum;
    int64_t n, K;
} attn__qin;

/* True if attn_quant_matmul on ctx runs the AVX2 kernels (else the twin). */
bool attn__quant_use_avx2(const attn_ctx *ctx);

/* out [32 * nb] = the weights of nb blocks of type q (portable). */
void attn__quant_dequant_blocks(attn_quant q, const unsigned char *blocks, int64_t nb, float *out);

/* The portable twin: y[i][j] for every row i of x and j in [j0, j1): the
 * row of W dequantized (attn__quant_dequant_blocks) into ws [K], then the
 * dot product in double. */
void attn__quant_ref_cols(const attn__qin *in, const attn__qmat *m, int64_t j0, int64_t j1,
                          float *ws);

#ifdef ATTN_HAVE_AVX2_KERNELS
/* AVX2+FMA+F16C. GEMV: every row of x, columns [j0, j1), dequantized in
 * registers. GEMM: rows [i0, i1) of x, columns [j0, j1) (at most
 * ATTN__QGEMM_COLS), through packed float panels in ws. */
void attn__quant_avx2_gemv(const attn__qin *in, const attn__qmat *m, int64_t j0, int64_t j1);
void attn__quant_avx2_gemm(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1, float *ws);
/* Floats of ws one GEMM call needs. */
int64_t attn__quant_avx2_gemm_ws(void);
#endif

#endif /* ATTN_QUANT_KERNELS_H */
