/* check.h - the one set of argument checks of every tier, the core
 * included: checks that return a status naming the argument (via
 * attn_fail), overflow-checked element counts and byte-range overlap tests.
 * Not installed. Every macro returns from the calling function on failure;
 * fn is the public function's name (pass __func__ there). */
#ifndef ATTN_CORE_CHECK_H
#define ATTN_CORE_CHECK_H

#include <attn/attn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marks a private function (attn__ prefix, declared in no installed header)
 * that one attn library calls in another: the shared libraries export it.
 * It is not part of the API and may change at any time. */
#if defined(__GNUC__) || defined(__clang__)
#define ATTN__SHARED __attribute__((visibility("default")))
#else
#define ATTN__SHARED
#endif

/* Largest element count of any buffer or view: its bytes, at up to 8 bytes
 * an element, fit in both int64_t and size_t. */
#define ATTN__MAX_ELEMS \
    ((int64_t)(((uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (uint64_t)SIZE_MAX : (uint64_t)INT64_MAX) / 8))

/* A window (keys each side of the aligned diagonal, -1: unbounded) as the
 * kernels take it: one wider than any distance between an aligned query
 * position (|i'| <= 2 ATTN__MAX_ELEMS: a row plus an offset or a length
 * difference) and a key (<= ATTN__MAX_ELEMS) hides nothing, so it is
 * narrowed to INT64_MAX / 2, which still hides nothing and keeps
 * i' - window - 1 and i' + window + 1 within int64_t. */
static inline int64_t attn__window(int64_t w) { return w > INT64_MAX / 2 ? INT64_MAX / 2 : w; }

/* ATTN_NULL_ARG if pointer p is NULL. */
#define ATTN__NOT_NULL(fn, p)                                                      \
    do {                                                                           \
        if ((p) == NULL)                                                           \
            return attn_fail(ATTN_NULL_ARG, "%s: argument '%s' is NULL", (fn), #p); \
    } while (0)

/* ATTN_BAD_DIM if dim d is negative. */
#define ATTN__DIM(fn, d)                                                           \
    do {                                                                           \
        if ((d) < 0)                                                               \
            return attn_fail(ATTN_BAD_DIM, "%s: argument '%s' is %lld; it must be >= 0", \
                             (fn), #d, (long long)(d));                            \
    } while (0)

/* ATTN_BAD_DIM if dim d is not positive. */
#define ATTN__DIM_POS(fn, d)                                                       \
    do {                                                                           \
        if ((d) <= 0)                                                              \
            return attn_fail(ATTN_BAD_DIM, "%s: argument '%s' is %lld; it must be > 0", \
                             (fn), #d, (long long)(d));                            \
    } while (0)

/* *out = a * b for a, b >= 0; false if the product exceeds ATTN__MAX_ELEMS. */
static inline bool attn__mul(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return false;
    if (a != 0 && b > ATTN__MAX_ELEMS / a) return false;
    *out = a * b;
    return true;
}

/* *out = a * b, or ATTN_OVERFLOW naming both factors. */
#define ATTN__MUL(fn, a, b, out)                                                   \
    do {                                                                           \
        if (!attn__mul((a), (b), (out)))                                           \
            return attn_fail(ATTN_OVERFLOW, "%s: the size %s * %s (%lld * %lld) overflows", \
                             (fn), #a, #b, (long long)(a), (long long)(b));        \
    } while (0)

/* True if the byte ranges [a, a + a_bytes) and [b, b + b_bytes) intersect
 * (never for a NULL pointer). */
static inline bool attn__overlap(const void *a, size_t a_bytes, const void *b,
                                 size_t b_bytes)
{
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return a != NULL && b != NULL && a_bytes > 0 && b_bytes > 0 && pa < pb + b_bytes &&
           pb < pa + a_bytes;
}

/* A named byte range of one argument, for attn__disjoint. */
typedef struct attn__span {
    const char *name;
    const void *p;
    size_t bytes;
} attn__span;

/* ATTN_OVERLAP naming both arguments if any of the first n_out spans (the
 * outputs) shares a byte with any other span of all[0..n_all). */
static inline attn_status attn__disjoint(const char *fn, const attn__span *all,
                                         int n_all, int n_out)
{
    for (int i = 0; i < n_out; i++)
        for (int j = 0; j < n_all; j++)
            if (j != i && attn__overlap(all[i].p, all[i].bytes, all[j].p, all[j].bytes))
                return attn_fail(ATTN_OVERLAP, "%s: argument '%s' overlaps '%s'", fn,
                                 all[i].name, all[j].name);
    return ATTN_OK;
}

#endif /* ATTN_CORE_CHECK_H */
