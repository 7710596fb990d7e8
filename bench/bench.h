/* bench.h - the benchmark's machine probes (probe.c; the loops of the
 * instruction sets the build may lack in probe_avx512.c,
 * probe_avx512fp16.c, probe_avx512bf16.c and probe_amx.c, compiled only
 * with their flags). */
#ifndef ATTN_BENCH_H
#define ATTN_BENCH_H

#include <stdbool.h>

/* One ceiling at 1 thread and at all threads, or absent, and why. */
typedef struct {
    bool present;
    double one, all; /* GFLOP/s */
    char why[200];
} bench_peak;

/* The product peaks: register-only loops of independent accumulators. */
bench_peak bench_avx2_fma(int threads);    /* float32 FMA, 12 ymm accumulators */
bench_peak bench_avx512_fma(int threads);  /* float32 FMA, 12 zmm accumulators */
bench_peak bench_avx512_fp16(int threads); /* float16 FMA (AVX512-FP16), 12 zmm accumulators */
bench_peak bench_avx512_bf16(int threads); /* bfloat16 pair products (vdpbf16ps), 12 zmm accumulators */
bench_peak bench_amx_bf16(int threads);    /* TDPBF16PS into 4 tile accumulators */
double bench_read_bandwidth(int threads);  /* GB/s */

/* The loops themselves, in the files of their instruction sets: each runs
 * a fixed number of iterations and returns the floating-point operations
 * done (0 if it could not run). */
double bench_loop_avx512_fma(void);
double bench_loop_avx512_fp16(void);
double bench_loop_avx512_bf16(void);
double bench_loop_amx_bf16(void);

#endif
