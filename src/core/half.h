/* half.h - private: IEEE binary16 (F16) and bfloat16 (BF16) to float32, for
 * the file readers (safetensors, GGUF). Both conversions are exact: every
 * F16 and BF16 value is a float32 value; NaNs keep their payload. */
#ifndef ATTN_CORE_HALF_H
#define ATTN_CORE_HALF_H

#include <stdint.h>
#include <string.h>

static inline float attn__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13); /* Inf, or NaN keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    } else {
        float v = (float)man * 0x1p-24f; /* zero or subnormal: man * 2^-24, exact */
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float attn__bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif /* ATTN_CORE_HALF_H */
