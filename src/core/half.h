/* half.h - the two 16-bit float types of attn_dtype and their conversions
 * to and from float32, scalar and exact. The AVX2 kernels have vector twins
 * (src/kernels/x86/sdpa_avx2.c), tested bit for bit against these on every
 * float32 bit pattern (tests/core/test_half.c).
 *
 *   F16   IEEE 754 binary16: sign, 5 exponent bits (bias 15), 10 fraction bits
 *   BF16  the high half of a binary32: sign, 8 exponent bits, 7 fraction bits
 *
 * half -> float is exact: BF16 is a shift (bits kept as they are, NaNs
 * too); an F16 NaN keeps its sign and payload and is made quiet, as the
 * F16C instruction does.
 * float -> half rounds to nearest, ties to even, subnormals included;
 * values past the largest finite half (after rounding) give +-Inf; a NaN
 * gives a quiet NaN of the same sign keeping the high bits of its payload
 * (the F16C rule; for BF16 the high 7 bits of the fraction). */
#ifndef ATTN_CORE_HALF_H
#define ATTN_CORE_HALF_H

#include <stdint.h>
#include <string.h>

static inline float attn__bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t attn__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float attn__bf16_to_f32(uint16_t h)
{
    return attn__bits_f32((uint32_t)h << 16);
}

static inline uint16_t attn__f32_to_bf16(float f)
{
    uint32_t u = attn__f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN: quiet */
    /* Adding 0x7FFF plus the kept part's lowest bit carries into the kept
     * part exactly when the dropped part is above half, or half with an odd
     * kept part; the carry out of the largest finite value gives Inf. */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float attn__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return attn__bits_f32(sign | 0x7F800000u | (m << 13) | (m != 0 ? 0x00400000u : 0u));
    if (e != 0) return attn__bits_f32(sign | ((e + 112) << 23) | (m << 13)); /* rebias 15 -> 127 */
    float v = (float)m * 0x1p-24f; /* zero or subnormal: m * 2^-24, exact */
    return sign != 0 ? -v : v;
}

static inline uint16_t attn__f32_to_f16(float f)
{
    uint32_t u = attn__f32_bits(f), a = u & 0x7FFFFFFFu;
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)); /* NaN: quiet */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520 rounds past 65504: Inf */
    if (a >= 0x38800000u) { /* >= 2^-14: normal; rebias 127 -> 15, round the 13 dropped bits */
        uint32_t r = a - 0x38000000u;
        r += 0x0FFFu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25, half the smallest subnormal: 0 (ties to even) */
    /* subnormal result: the 24-bit significand in units of 2^-24 is
     * m * 2^(e - 126), a right shift by 126 - e in [14, 24] */
    uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u, s = 126 - e;
    uint32_t r = m >> s, rem = m & ((1u << s) - 1u), half = 1u << (s - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

#endif /* ATTN_CORE_HALF_H */
