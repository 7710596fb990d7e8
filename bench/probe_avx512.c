/* probe_avx512.c - the AVX-512 float32 FMA loop of the probe (bench.h),
 * compiled with -mavx512f only when the compiler accepts it; run only where
 * the CPU and the OS have AVX-512 (probe.c asks src/core/cpu.c). */
#include "bench.h"

#include <immintrin.h>

/* 12 independent accumulators: FMA latency (4) x 2 pipes with room. */
double bench_loop_avx512_fma(void)
{
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    long iters = 20000000;
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    volatile float keep = _mm512_reduce_add_ps(s);
    (void)keep;
    return (double)iters * 12 * 32; /* 16 lanes x 2 flops */
}
