/* gemm_avx512bf16.c - the toolkit's products over bfloat16 weights on
 * AVX512-BF16 dot products (the nn.gemm_bf16 slot of the avx512bf16
 * table; core/toolkit_kernels.h): an 8 x 32 tile of C in 16 zmm
 * accumulators, two k per vdpbf16ps. A holds bfloat16 values (the caller
 * rounds it, attn__round_bf16); the driver has each tile of 8 rows built
 * into pairs once per chunk of k and group of panels (pack_a_dp, eight
 * pairs per instruction where A's rows are contiguous) and runs it against
 * every panel of the group (micro_dp_bf16). vdpbf16ps adds a lane's odd (high) product first,
 * then the even one, each an exact product added with one rounding (the
 * SDM's definition, which AMD Zen 4 follows: the test
 * avx512bf16_dot_definition); both operands hold k in the high half of a
 * pair and k + 1 in the low one (the panel is packed swapped: kpad 2,
 * element (k, j) at [k / 2][j][1 - k % 2]), so the instruction adds k
 * before k + 1: the FMA chain over k in order, the other kernels' bits.
 * An odd last k takes one float32 FMA (its pair, over a zero low half, is
 * that float). (Where a product or a partial sum falls below 2^-126 the
 * instruction flushes it to zero and the chain does not; real activations
 * and weights stay far above.) Compiled with -mavx512bf16; run only where
 * kernels/table.c finds AVX512-BF16. */
#include "kernels/nn_kernels.h"

#include <immintrin.h>
#include <string.h>

enum { MR = 8, NR = 32, KMAX = 256, ROW = KMAX / 2 }; /* k per call at most: the driver's chunk (KC) */

/* The high halves (the bfloat16 bits) of a float holding a bfloat16 value. */
static inline uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* A's tile as pairs, row i at dst + i * ROW: pair p holds k = 2p in the
 * high half and 2p + 1 in the low one; an odd last k alone in the high
 * half over a zero low half, which is that float itself. */
static void pack_a_dp(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks, int mr, void *dst)
{
    uint32_t *o = dst;
    int64_t full = kc / 2, np = (kc + 1) / 2;
    for (int i = 0; i < MR; i++, o += ROW) {
        const float *r = a + i * a_rs;
        int64_t p = 0;
        if (i >= mr) {
            memset(o, 0, sizeof(uint32_t) * (size_t)np);
            continue;
        }
        if (a_ks == 1) /* 8 pairs at a time: a 64-bit lane holds k (low) and k + 1 (high) */
            for (; p < full; p += 8) {
                __mmask16 m = (__mmask16)(full - p >= 8 ? 0xFFFFu : (1u << (2 * (full - p))) - 1u);
                __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, r + 2 * p));
                __m512i y = _mm512_or_si512(_mm512_and_si512(x, _mm512_set1_epi64(0xFFFF0000)), _mm512_srli_epi64(x, 48));
                _mm256_mask_storeu_epi32(o + p, (__mmask8)(full - p >= 8 ? 0xFFu : (1u << (full - p)) - 1u),
                                         _mm512_cvtepi64_epi32(y));
            }
        else
            for (; p < full; p++)
                o[p] = (bits_of(r[2 * p * a_ks]) & 0xFFFF0000u) | (bits_of(r[(2 * p + 1) * a_ks]) >> 16);
        if (kc % 2) o[full] = bits_of(r[(kc - 1) * a_ks]) & 0xFFFF0000u;
    }
}

static void micro_dp_bf16(int64_t kc, const void *ap, const uint16_t *b, float *c, int64_t ldc, int mr, int nr,
                          int acc)
{
    const uint32_t *at = ap;
    int64_t np = kc / 2;
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) {
        c0[i] = acc && i < mr ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps();
        c1[i] = acc && i < mr ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < np; p++) {
        const uint16_t *bk = b + p * NR * 2;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)bk);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(bk + 32));
        for (int i = 0; i < MR; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)at[i * ROW + p]);
            c0[i] = _mm512_dpbf16_ps(c0[i], b0, ai); /* ai the memory operand: {1to16} */
            c1[i] = _mm512_dpbf16_ps(c1[i], b1, ai);
        }
    }
    if (kc % 2) { /* the last k alone: pair row np of the panel and of A hold it as floats */
        const uint16_t *bk = b + np * NR * 2;
        __m512 b0 = _mm512_loadu_ps((const void *)bk), b1 = _mm512_loadu_ps((const void *)(bk + 32));
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_castsi512_ps(_mm512_set1_epi32((int)at[i * ROW + np]));
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
}

const attn__gemm_kernel attn__gemm_avx512bf16 = {.name = "avx512bf16",
                                                 .mr = MR,
                                                 .nr = NR,
                                                 .pack_a = pack_a_dp,
                                                 .micro_ap = micro_dp_bf16,
                                                 .kpad = 2,
                                                 .pairs = true,
                                                 .swapped = true};
