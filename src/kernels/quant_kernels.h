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
    ATTN__Q4_1_BYTES = 20  /* f16 d, f16 m, uint8 qs[16] */
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

/* The shared input: x [n, K] and, where the kernel asks for it (the
 * slot's few_xsum), the sum of every block of 32 activations, xsum [n, K/32]
 * (else NULL). */
typedef struct attn__qin {
    const float *x;
    const float *xsum;
    int64_t n, K;
} attn__qin;

/* out [32 * nb] = the weights of nb blocks of type q (portable). */
void attn__quant_dequant_blocks(attn_quant q, const unsigned char *blocks, int64_t nb, float *out);

/* The portable twin: y[i][j] for rows [i0, i1) of x and j in [j0, j1): the
 * row of W dequantized (attn__quant_dequant_blocks) into ws [K], then the
 * dot product in double. */
void attn__quant_ref(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1, int64_t j0,
                     int64_t j1, float *ws);
int64_t attn__quant_ref_ws(int64_t K, bool many);

#ifdef ATTN_HAVE_AVX2
/* AVX2+FMA+F16C (the table fills the slot only where the CPU has F16C).
 * GEMV: each block expanded in registers, x [i0, i1) row by row. GEMM: at
 * most ATTN__QGEMM_COLS columns, through packed float panels in ws. */
enum { ATTN__QGEMV_COLS = 32, ATTN__QGEMM_COLS = 64, ATTN__QGEMM_KC = 320, ATTN__QGEMM_ROWS = 528,
       ATTN__QGEMM_MR = 6, ATTN__QGEMM_MIN_ROWS = 8 };
void attn__quant_avx2_gemv(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1, int64_t j0,
                           int64_t j1, float *ws);
void attn__quant_avx2_gemm(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1, int64_t j0,
                           int64_t j1, float *ws);
int64_t attn__quant_avx2_ws(int64_t K, bool many);
#endif

#endif /* ATTN_QUANT_KERNELS_H */
