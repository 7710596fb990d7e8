/* bench.h - the benchmark's machine probes. */
#ifndef ATTN_BENCH_H
#define ATTN_BENCH_H
double bench_fma_peak(int threads);       /* GFLOP/s */
double bench_read_bandwidth(int threads); /* GB/s */
#endif
