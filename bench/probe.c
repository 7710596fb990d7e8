/* probe.c - the machine's ceilings, measured by the benchmark itself: the
 * FMA peak (a register-only loop of independent AVX2 FMAs) and the read
 * bandwidth (a STREAM-like sum over a buffer far larger than the caches).
 * Only this file of the benchmark is compiled with -mavx2 -mfma. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <immintrin.h>
#include <pthread.h>
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
static void *fma_loop(void *arg)
{
    double *out = arg;
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    long iters = 20000000;
    double t0 = now();
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    double t = now() - t0;
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float keep[8];
    _mm256_storeu_ps(keep, s);
    out[0] = (double)iters * 12 * 16 / t / 1e9; /* 8 lanes x 2 flops */
    out[1] = keep[0];
    return NULL;
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

/* The peak is the best sustained rate: the best of 5 runs, so that a
 * moment of interference on a shared machine does not lower it. */
double bench_fma_peak(int threads)
{
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        double out[64][2], sum = 0;
        for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, fma_loop, out[t]);
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            sum += out[t][0];
        }
        if (sum > best) best = sum;
    }
    return best;
}

double bench_read_bandwidth(int threads)
{
    size_t n = (size_t)1 << 27; /* 512 MiB of floats, far above the LLC */
    float *p = aligned_alloc(64, n * sizeof(float));
    if (p == NULL) return 0.0;
    for (size_t i = 0; i < n; i++) p[i] = (float)(i & 1023);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) { /* best of 3, as for the FMA peak */
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
