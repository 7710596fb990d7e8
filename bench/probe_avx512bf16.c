/* probe_avx512bf16.c - the AVX512-BF16 dot-product loop of the probe
 * (bench.h): vdpbf16ps, two bfloat16 products per float32 lane, the rate
 * the avx512bf16 kernels' products run at. Compiled with -mavx512bf16
 * only when the compiler accepts it; run only where the CPU and the OS
 * have AVX512-BF16 (probe.c asks src/core/cpu.c). The bfloat16 constants
 * are given as bit patterns. */
#include "bench.h"

#include <immintrin.h>

/* 12 independent accumulators, as the FMA loops: a <- a + 2 m c with m =
 * 1 - 2^-8 and c = 2^-12 grows from 0-11 until the increment rounds away
 * (near 2^12), far from overflow and subnormals. */
double bench_loop_avx512_bf16(void)
{
    __m512 a[12];
    __m512i m = _mm512_set1_epi16(0x3F7F), c = _mm512_set1_epi16(0x3980);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    long iters = 20000000;
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], (__m512bh)m, (__m512bh)c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    volatile float keep = _mm512_reduce_add_ps(s);
    (void)keep;
    return (double)iters * 12 * 64; /* 16 lanes x 2 products x 2 flops */
}
