/* gemm_avx512.c - the toolkit's AVX-512 GEMM on weights packed in panels
 * (the dense layers of the BERT encoder, src/models/bert/bert.c). The only toolkit
 * file compiled with -mavx512f; it runs only when attn__nn_avx512_ok()
 * says the CPU and OS support it. Its twin is OpenBLAS sgemm, and
 * tests/models/bert/test_bert.c checks both paths against a double-precision
 * forward.
 *
 * y [M, N] (+)= x [M, K] w^T, with w [N, K] packed once at load time into
 * panels of NR output columns, k-major: panel p holds w[p*NR + j][k] at
 * [k][j] (zeros past N). A tile of MR rows x NR columns keeps its 2 * MR
 * accumulators in registers over a chunk of KC k's (the panel's chunk, 32
 * KB, stays in L1). Every element is a plain k = 0, 1, ... sum of FMAs, so
 * results do not depend on how the rows are blocked. */
#include "kernels/x86/gemm_avx512.h"

#include <immintrin.h>

/* c [mr, 32 masked by m0:m1] (+)= a [mr, kc] (rows lda apart) b [kc, 32] */
static inline void
tile(int mr, const float *a, int64_t lda, const float *b, int64_t kc, float *c, int64_t ldc,
     __mmask16 m0, __mmask16 m1, int accumulate)
{
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < mr; i++) {
        c0[i] = accumulate ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps();
        c1[i] = accumulate ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * NR), b1 = _mm512_loadu_ps(b + k * NR + 16);
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i * lda + k]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
}

/* The full-height tile (registers, unrolled) and the last rows of a block. */
static void tile_full(const float *a, int64_t lda,
                                                         const float *b, int64_t kc, float *c,
                                                         int64_t ldc, __mmask16 m0,
                                                         __mmask16 m1, int accumulate)
{
    tile(MR, a, lda, b, kc, c, ldc, m0, m1, accumulate);
}

static void tile_part(int mr, const float *a, int64_t lda,
                                                         const float *b, int64_t kc, float *c,
                                                         int64_t ldc, __mmask16 m0,
                                                         __mmask16 m1, int accumulate)
{
    tile(mr, a, lda, b, kc, c, ldc, m0, m1, accumulate);
}

/* y [M, N] = beta * y + x [M, K] w^T, beta 0 or 1, w packed in panels pw. */
void attn__nn_gemm_avx512(const float *x, int64_t M, int64_t K, const float *pw, int64_t N,
                          float beta, float *y)
{
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        int64_t kc = K - k0 < KC ? K - k0 : KC;
        int accumulate = k0 > 0 || beta != 0.0f;
        for (int64_t p = 0; p * NR < N; p++) {
            int64_t nv = N - p * NR < NR ? N - p * NR : NR;
            __mmask16 m0 = (__mmask16)(nv >= 16 ? 0xFFFFu : (1u << nv) - 1);
            __mmask16 m1 = (__mmask16)(nv >= 32 ? 0xFFFFu : nv > 16 ? (1u << (nv - 16)) - 1 : 0);
            const float *b = pw + (p * K + k0) * NR;
            float *c = y + p * NR;
            int64_t m = 0;
            for (; m + MR <= M; m += MR)
                tile_full(x + m * K + k0, K, b, kc, c + m * N, N, m0, m1, accumulate);
            if (m < M)
                tile_part((int)(M - m), x + m * K + k0, K, b, kc, c + m * N, N, m0, m1,
                          accumulate);
        }
    }
}
