/* carve.h - private: one allocation carved into parts, for loaders that size
 * everything first and then allocate once (the GGUF index, the BPE
 * vocabulary), and the size of open-addressing hash tables. Every part
 * starts at a multiple of 8 bytes from the start of the block. */
#ifndef ATTN_CORE_CARVE_H
#define ATTN_CORE_CARVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Adds count items of size bytes (rounded up to 8) to *total; false on overflow. */
static inline bool attn__part_add(size_t *total, size_t count, size_t size)
{
    size_t bytes = (size + 7) / 8 * 8;
    if (count != 0 && bytes > (SIZE_MAX - *total) / count) return false;
    *total += count * bytes;
    return true;
}

/* The part of count items of size bytes at *p; *p moves past it. */
static inline void *attn__part_take(unsigned char **p, size_t count, size_t size)
{
    void *r = *p;
    *p += count * ((size + 7) / 8 * 8);
    return r;
}

/* Slots of a hash table for n keys: the smallest power of two >= 2 n (at
 * least 2), so it is at most half full. */
static inline size_t attn__table_size(size_t n)
{
    size_t s = 2;
    while (s < 2 * n) s *= 2;
    return s;
}

#endif /* ATTN_CORE_CARVE_H */
