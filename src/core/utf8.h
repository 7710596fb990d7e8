/* utf8.h - private: UTF-8 decoding and encoding and a string hash, for the
 * tiers that read or write text (the JSON reader, the tokenizers, the
 * explorer page). Header-only, so no library exports it. */
#ifndef ATTN_CORE_UTF8_H
#define ATTN_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the scalar value at s [n] into *c; returns its byte length, or 0
 * if s does not start with a well-formed UTF-8 sequence (Unicode table 3-7:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static inline int attn__utf8_decode(const unsigned char *s, size_t n, uint32_t *c)
{
    if (n == 0) return 0;
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *c = b0;
        return 1;
    }
    int len;
    uint32_t v, lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2, v = b0 & 0x1F;
    else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3, v = b0 & 0x0F;
    else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4, v = b0 & 0x07;
    else return 0;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
    if ((size_t)len > n || s[1] < lo || s[1] > hi) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *c = v;
    return len;
}

/* Writes c as UTF-8 to out [4]; returns the byte count. */
static inline int attn__utf8_encode(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* FNV-1a of s [n] continued from the hash h of the bytes before it. */
static inline uint32_t attn__hash_more(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* FNV-1a of s [n]. */
static inline uint32_t attn__hash_bytes(const char *s, size_t n)
{
    return attn__hash_more(2166136261u, s, n);
}

#endif /* ATTN_CORE_UTF8_H */
