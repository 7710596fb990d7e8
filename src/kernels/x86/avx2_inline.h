/* avx2_inline.h - small AVX2 helpers shared by the x86 kernels (compiled
 * only into files built with -mavx2 -mfma). */
#ifndef ATTN_KERNELS_X86_AVX2_INLINE_H
#define ATTN_KERNELS_X86_AVX2_INLINE_H

#include <immintrin.h>

/* r[i] lane j <- r[j] lane i: an 8 x 8 transpose in registers
 * (unpack, shuffle, then swap the 128-bit halves). */
static inline __attribute__((always_inline)) void attn__avx2_transpose8(__m256 r[8])
{
    __m256 u[8];
    for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    __m256 s[8];
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(u[i], u[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(u[i], u[i + 2], 0xEE);
        s[i + 2] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

#endif
