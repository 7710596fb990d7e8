/* cpu.c - run-time CPU feature detection: CPUID for the instruction sets
 * and XGETBV for the operating system's support of the AVX register state.
 * Compiler flags alone never decide which kernel runs. */
#include "core/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

bool attn__cpu_has_avx2_fma(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
    if (!fma || !osxsave || !avx) return false;
    if ((xgetbv0() & 6) != 6) return false; /* XMM and YMM state enabled by the OS */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b & (1u << 5)) != 0; /* AVX2 */
}

bool attn__cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#else
bool attn__cpu_has_avx2_fma(void) { return false; }
bool attn__cpu_has_f16c(void) { return false; }
#endif
