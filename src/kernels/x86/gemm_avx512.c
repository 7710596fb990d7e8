/* gemm_avx512.c - the GEMM micro-kernel for AVX-512F (core/toolkit_kernels.h):
 * an 8 x 32 tile of C in 16 zmm accumulators. Each k step loads one row of
 * the packed B panel (two zmm), broadcasts the 8 values of A's column k and
 * does 16 FMAs. Edge tiles use masked loads and stores of the nr valid
 * columns and store only the mr valid rows. The bfloat16 twin widens B's
 * row to floats as it loads it. Compiled with the AVX-512 flags
 * (CMakeLists.txt); run only where kernels/table.c finds AVX-512 enabled
 * by the OS. */
#include "kernels/nn_kernels.h"

#include <immintrin.h>

enum { MR = 8, NR = 32 };

/* Row i of the tile: load (or zero) its two accumulators, one k step, store
 * (rows past mr are computed from row 0 of A and never loaded or stored). */
#define LOAD(i)                                                                        \
    __m512 c##i##0 = acc && i < mr ? _mm512_maskz_loadu_ps(m0, c + i * ldc)           \
                                   : _mm512_setzero_ps(),                             \
           c##i##1 = acc && i < mr ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16)      \
                                   : _mm512_setzero_ps();                             \
    const int64_t o##i = (i < mr ? i : 0) * a_rs
#define STEP(i)                                                                        \
    do {                                                                               \
        __m512 ai = _mm512_set1_ps(a[o##i]);                                           \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                    \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                    \
    } while (0)
#define STORE(i)                                                                       \
    do {                                                                               \
        if (i < mr) {                                                                  \
            _mm512_mask_storeu_ps(c + i * ldc, m0, c##i##0);                           \
            _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c##i##1);                      \
        }                                                                              \
    } while (0)

/* B's row k as two zmm: floats, or bfloat16 values widened exactly. */
#define LOAD_F32(b, j) _mm512_loadu_ps((b) + (j))
#define LOAD_BF16(b, j)                                                                   \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                                 \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)((b) + (j)))), 16))

/* The micro-kernel for one type of B (btype, loaded by load_b). */
#define DEFINE_MICRO(micro, btype, load_b)                                                  \
    static void micro(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks, const btype *b, \
                      float *c, int64_t ldc, int mr, int nr, int acc)                       \
    {                                                                                       \
        __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);                   \
        __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u); \
        LOAD(0);                                                                            \
        LOAD(1);                                                                            \
        LOAD(2);                                                                            \
        LOAD(3);                                                                            \
        LOAD(4);                                                                            \
        LOAD(5);                                                                            \
        LOAD(6);                                                                            \
        LOAD(7);                                                                            \
        for (int64_t k = 0; k < kc; k++, a += a_ks, b += NR) {                              \
            __m512 b0 = load_b(b, 0), b1 = load_b(b, 16);                                   \
            STEP(0);                                                                        \
            STEP(1);                                                                        \
            STEP(2);                                                                        \
            STEP(3);                                                                        \
            STEP(4);                                                                        \
            STEP(5);                                                                        \
            STEP(6);                                                                        \
            STEP(7);                                                                        \
        }                                                                                   \
        STORE(0);                                                                           \
        STORE(1);                                                                           \
        STORE(2);                                                                           \
        STORE(3);                                                                           \
        STORE(4);                                                                           \
        STORE(5);                                                                           \
        STORE(6);                                                                           \
        STORE(7);                                                                           \
    }

DEFINE_MICRO(micro_avx512, float, LOAD_F32)
DEFINE_MICRO(micro_avx512_bf16, uint16_t, LOAD_BF16)

static void pack_t_avx512(const float *b, int64_t ldb, int w, int64_t kc, float *dst)
{
    attn__gemm_pack_t_generic(NR, b, ldb, w, kc, dst);
}

const attn__gemm_kernel attn__gemm_avx512 = {.name = "avx512",
                                             .mr = MR,
                                             .nr = NR,
                                             .micro = micro_avx512,
                                             .pack_t = pack_t_avx512,
                                             .micro_bf16 = micro_avx512_bf16,
                                             .kpad = 1};
