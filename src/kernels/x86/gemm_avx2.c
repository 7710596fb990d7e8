/* gemm_avx2.c - the GEMM micro-kernel for AVX2+FMA (core/toolkit_kernels.h):
 * a 6 x 16 tile of C in 12 ymm accumulators. Each k step loads one row of
 * the packed B panel (two ymm), broadcasts the 6 values of A's column k
 * and does 12 FMAs: 12 independent chains cover the FMA latency of two
 * pipes. B stored [N, K] is packed by 8 x 8 register transposes. The
 * bfloat16 twin widens B's row to floats as it loads it. Compiled
 * with -mavx2 -mfma only; run only where kernels/table.c finds AVX2 and
 * FMA. */
#include "kernels/nn_kernels.h"

#include "kernels/x86/avx2_inline.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };

/* Row i of the tile: load (or zero) its two accumulators, one k step, store. */
#define LOAD(i)                                                                \
    __m256 c##i##0 = acc ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps(),  \
           c##i##1 = acc ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps()
#define STEP(i)                                                                \
    do {                                                                       \
        __m256 ai = _mm256_broadcast_ss(a + o##i);                             \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                            \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                            \
    } while (0)
#define STORE(i)                                                               \
    do {                                                                       \
        _mm256_storeu_ps(c + i * ldc, c##i##0);                                \
        _mm256_storeu_ps(c + i * ldc + 8, c##i##1);                            \
    } while (0)

/* B's row k as two ymm: floats, or bfloat16 values widened exactly (zero
 * extended to 32 bits and shifted into the high half). */
#define LOAD_F32(b, j) _mm256_loadu_ps((b) + (j))
#define LOAD_BF16(b, j)                                                                   \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                                 \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)((b) + (j)))), 16))

/* The full tile: c [6, 16] (=, or += if acc) a b over kc steps; row i of a
 * at a + off[i]. Named accumulators, so that they stay in registers. One
 * function per type of B (btype, loaded by load_b), and the micro-kernel
 * around it: the full tile in place, an edge tile on a copy of the mr x nr
 * corner. */
#define DEFINE_MICRO(tile, micro, btype, load_b)                                          \
    static inline void tile(int64_t kc, const float *a, const int64_t off[MR], int64_t a_ks, \
                            const btype *b, float *c, int64_t ldc, int acc)                 \
    {                                                                                       \
        const int64_t o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3], o4 = off[4],      \
                      o5 = off[5];                                                          \
        LOAD(0);                                                                            \
        LOAD(1);                                                                            \
        LOAD(2);                                                                            \
        LOAD(3);                                                                            \
        LOAD(4);                                                                            \
        LOAD(5);                                                                            \
        for (int64_t k = 0; k < kc; k++, a += a_ks, b += NR) {                              \
            __m256 b0 = load_b(b, 0), b1 = load_b(b, 8);                                    \
            STEP(0);                                                                        \
            STEP(1);                                                                        \
            STEP(2);                                                                        \
            STEP(3);                                                                        \
            STEP(4);                                                                        \
            STEP(5);                                                                        \
        }                                                                                   \
        STORE(0);                                                                           \
        STORE(1);                                                                           \
        STORE(2);                                                                           \
        STORE(3);                                                                           \
        STORE(4);                                                                           \
        STORE(5);                                                                           \
    }                                                                                       \
    static void micro(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks, const btype *b, \
                      float *c, int64_t ldc, int mr, int nr, int acc)                       \
    {                                                                                       \
        int64_t off[MR];                                                                    \
        for (int i = 0; i < MR; i++) off[i] = (i < mr ? i : 0) * a_rs; /* past mr: row 0 */ \
        if (mr == MR && nr == NR) {                                                         \
            tile(kc, a, off, a_ks, b, c, ldc, acc);                                         \
            return;                                                                         \
        }                                                                                   \
        float t[MR * NR];                                                                   \
        for (int i = 0; i < MR; i++)                                                        \
            for (int j = 0; j < NR; j++)                                                    \
                t[i * NR + j] = acc && i < mr && j < nr ? c[i * ldc + j] : 0.0f;            \
        tile(kc, a, off, a_ks, b, t, NR, acc);                                              \
        for (int i = 0; i < mr; i++)                                                        \
            for (int j = 0; j < nr; j++) c[i * ldc + j] = t[i * NR + j];                    \
    }

DEFINE_MICRO(tile_f32, micro_avx2, float, LOAD_F32)
DEFINE_MICRO(tile_bf16, micro_avx2_bf16, uint16_t, LOAD_BF16)

/* dst [8][16] at column j0 = the transpose of rows r[0..8) (8 floats at k):
 * dst[i * 16 + j0 + jj] = r_jj[i]. */
static inline void transpose8(const float *b, int64_t ldb, float *dst)
{
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(b + i * ldb);
    attn__avx2_transpose8(r);
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + i * NR, r[i]);
}

/* A transposed panel chunk (attn__gemm_pack_t_fn) by 8 x 8 transposes;
 * the last panel (w < 16) and the k tail by the C packing. */
static void pack_t_avx2(const float *b, int64_t ldb, int w, int64_t kc, float *dst)
{
    if (w < NR || kc < 8) {
        attn__gemm_pack_t_generic(NR, b, ldb, w, kc, dst);
        return;
    }
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        transpose8(b + k, ldb, dst + k * NR);
        transpose8(b + 8 * ldb + k, ldb, dst + k * NR + 8);
    }
    for (int j = 0; j < NR; j++)
        for (int64_t q = k; q < kc; q++) dst[q * NR + j] = b[j * ldb + q];
}

const attn__gemm_kernel attn__gemm_avx2 = {.name = "avx2",
                                           .mr = MR,
                                           .nr = NR,
                                           .micro = micro_avx2,
                                           .pack_t = pack_t_avx2,
                                           .micro_bf16 = micro_avx2_bf16,
                                           .kpad = 1};
