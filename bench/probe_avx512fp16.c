/* probe_avx512fp16.c - the AVX512-FP16 float16 FMA loop of the probe
 * (bench.h): the best float16 product rate where the CPU has it. Compiled
 * with -mavx512fp16 only when the compiler accepts it; run only where the
 * CPU and the OS have AVX512-FP16 (probe.c asks src/core/cpu.c). The
 * float16 constants are given as bit patterns (ISO C has no float16 type). */
#include "bench.h"

#include <immintrin.h>

static __m512h splat(unsigned short bits) { return _mm512_castsi512_ph(_mm512_set1_epi16((short)bits)); }

double bench_loop_avx512_fp16(void)
{
    /* a <- a m + c with m = 1 - 2^-11, c = 2^-14 tends to 2^-3: no overflow, no subnormals */
    __m512h a[12], m = splat(0x3BFF), c = splat(0x0400);
    for (int i = 0; i < 12; i++) a[i] = splat((unsigned short)(0x3C00 + i)); /* 1 + i 2^-10 */
    long iters = 20000000;
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ph(a[i], m, c);
    __m512h s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ph(s, a[i]);
    unsigned short keep[32];
    _mm512_storeu_si512(keep, _mm512_castph_si512(s));
    volatile unsigned short sink = keep[0];
    (void)sink;
    return (double)iters * 12 * 64; /* 32 lanes x 2 flops */
}
