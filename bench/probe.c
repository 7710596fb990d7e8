/* probe.c - the machine's ceilings, measured by the benchmark itself: the
 * product peaks (register-only loops with enough independent accumulators
 * to cover latency times the pipes: AVX2 and AVX-512 float32 FMA,
 * AVX512-FP16 FMA, AVX512-BF16 VDPBF16PS, AMX TDPBF16PS) and the read bandwidth (a STREAM-like
 * sum over a buffer far larger than the caches), on 1 thread and on all.
 * A probe runs only where the CPU and the OS have its instruction set
 * (asked of src/core/cpu.c, which also makes the AMX permission request)
 * and this build compiled its loop; otherwise it is absent, and says why.
 * This file is compiled with -mavx2 -mfma; the other loops live in
 * probe_avx512.c, probe_avx512fp16.c, probe_avx512bf16.c and probe_amx.c. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include "core/cpu.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 12 independent accumulators cover FMA latency x throughput. */
static double loop_avx2_fma(void)
{
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    long iters = 20000000;
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float keep[8];
    _mm256_storeu_ps(keep, s);
    volatile float sink = keep[0];
    (void)sink;
    return (double)iters * 12 * 16; /* 8 lanes x 2 flops */
}

typedef double (*loop_fn)(void);

typedef struct {
    loop_fn loop;
    double gflops;
} loop_arg;

static void *run_loop(void *arg)
{
    loop_arg *a = arg;
    double t0 = now(), flops = a->loop();
    a->gflops = flops / (now() - t0) / 1e9;
    return NULL;
}

/* The sum over threads of each one's rate, best of 5 runs: a peak is the
 * best sustained rate, and a moment of interference on a shared machine
 * must not lower it. */
static double best_rate(loop_fn loop, int threads)
{
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        loop_arg args[64];
        double sum = 0;
        for (int t = 0; t < threads; t++) {
            args[t] = (loop_arg){loop, 0.0};
            pthread_create(&th[t], NULL, run_loop, &args[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            sum += args[t].gflops;
        }
        if (sum > best) best = sum;
    }
    return best;
}

/* The peak of loop (NULL: not in this build, not_built says why) where the
 * machine has every feature of needs[n]. */
static bench_peak measure(loop_fn loop, const attn__feature *needs, int n, const char *not_built, int threads)
{
    bench_peak p = {false, 0.0, 0.0, ""};
    const attn__cpu *cpu = attn__cpu_get();
    size_t len = 0;
    for (int x = 0; x < n; x++)
        if (!cpu->has[needs[x]] && len < sizeof p.why)
            len += (size_t)snprintf(p.why + len, sizeof p.why - len, "%s%s (%s)", len == 0 ? "the machine lacks " : ", ",
                                    attn__cpu_feature_name(needs[x]), cpu->why_not[needs[x]]);
    if (len == 0 && loop == NULL) snprintf(p.why, sizeof p.why, "%s", not_built);
    if (p.why[0] != '\0') return p;
    p.present = true;
    p.one = best_rate(loop, 1);
    p.all = best_rate(loop, threads);
    return p;
}

bench_peak bench_avx2_fma(int threads)
{
    static const attn__feature needs[] = {ATTN__CPU_AVX2, ATTN__CPU_FMA};
    return measure(loop_avx2_fma, needs, 2, "", threads);
}

bench_peak bench_avx512_fma(int threads)
{
    static const attn__feature needs[] = {ATTN__CPU_AVX512F};
#if defined(BENCH_HAVE_AVX512)
    loop_fn loop = bench_loop_avx512_fma;
#else
    loop_fn loop = NULL;
#endif
    return measure(loop, needs, 1, "not in this build: the compiler does not accept -mavx512f", threads);
}

bench_peak bench_avx512_fp16(int threads)
{
    static const attn__feature needs[] = {ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW, ATTN__CPU_AVX512_FP16};
#if defined(BENCH_HAVE_AVX512FP16)
    loop_fn loop = bench_loop_avx512_fp16;
#else
    loop_fn loop = NULL;
#endif
    return measure(loop, needs, 3, "not in this build: the compiler does not accept -mavx512fp16", threads);
}

bench_peak bench_avx512_bf16(int threads)
{
    static const attn__feature needs[] = {ATTN__CPU_AVX512F, ATTN__CPU_AVX512_BF16};
#if defined(BENCH_HAVE_AVX512BF16)
    loop_fn loop = bench_loop_avx512_bf16;
#else
    loop_fn loop = NULL;
#endif
    return measure(loop, needs, 2, "not in this build: the compiler does not accept -mavx512bf16", threads);
}

bench_peak bench_amx_bf16(int threads)
{
    static const attn__feature needs[] = {ATTN__CPU_AMX_TILE, ATTN__CPU_AMX_BF16};
#if defined(BENCH_HAVE_AMX)
    loop_fn loop = bench_loop_amx_bf16;
#else
    loop_fn loop = NULL;
#endif
    return measure(loop, needs, 2, "not in this build: the compiler does not accept -mamx-tile -mamx-bf16", threads);
}

typedef struct {
    const float *p;
    size_t n;
    double gbs, sink;
} read_arg;

static void *read_loop(void *arg)
{
    read_arg *r = arg;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (size_t i = 0; i + 32 <= r->n; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_load_ps(r->p + i));
            s1 = _mm256_add_ps(s1, _mm256_load_ps(r->p + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_load_ps(r->p + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_load_ps(r->p + i + 24));
        }
        double gbs = (double)r->n * 4 / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    float keep[8];
    _mm256_storeu_ps(keep, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    r->gbs = best;
    r->sink = keep[0];
    return NULL;
}

double bench_read_bandwidth(int threads)
{
    size_t n = (size_t)1 << 27; /* 512 MiB of floats, far above the LLC */
    float *p = aligned_alloc(64, n * sizeof(float));
    if (p == NULL) return 0.0;
    for (size_t i = 0; i < n; i++) p[i] = (float)(i & 1023);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) { /* best of 3, as for the peaks */
        pthread_t th[64];
        read_arg ra[64];
        for (int t = 0; t < threads; t++) {
            ra[t].p = p + n / (size_t)threads * (size_t)t;
            ra[t].n = n / (size_t)threads;
            pthread_create(&th[t], NULL, read_loop, &ra[t]);
        }
        double sum = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            sum += ra[t].gbs;
        }
        if (sum > best) best = sum;
    }
    free(p);
    return best;
}
