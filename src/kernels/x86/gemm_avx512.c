/* gemm_avx512.c - the GEMM micro-kernel for AVX-512F (kernels/gemm_kernels.h):
 * an 8 x 32 tile of C in 16 zmm accumulators. Each k step loads one row of
 * the packed B panel (two zmm), broadcasts the 8 values of A's column k and
 * does 16 FMAs. Edge tiles use masked loads and stores of the nr valid
 * columns and store only the mr valid rows. Compiled with -mavx512f -mfma
 * only; run only where kernels/choice.c finds AVX-512F enabled by the OS. */
#include "kernels/gemm_kernels.h"

#include <immintrin.h>

enum { MR = 8, NR = 32 };

static void micro_avx512(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks, const float *b,
                         float *c, int64_t ldc, int mr, int nr, int acc)
{
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    int64_t off[MR];
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) {
        off[i] = (i < mr ? i : 0) * a_rs; /* rows past mr repeat row 0, never stored */
        int load = acc && i < mr;
        c0[i] = load ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps();
        c1[i] = load ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++, a += a_ks, b += NR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[off[i]]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
}

const attn__gemm_kernel attn__gemm_avx512 = {"avx512", MR, NR, micro_avx512};
