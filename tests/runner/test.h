/* test.h - the one test runner's asserts and shared helpers. Asserts print
 * both values and the location, count a failure and let the test go on. */
#ifndef ATTN_TEST_H
#define ATTN_TEST_H

#include <attn/attn.h>
#include <attn/quant.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern long t_checks, t_failed_checks;
extern bool t_verbose;
/* Grid sizes: configs per grid test (set by --configs or ATTN_TEST_CONFIGS). */
extern long t_configs;
/* Seed of a single config to rerun (--seed), or -1. */
extern long long t_only_seed;
/* Workers (--jobs N): a test of T_TESTS_SHARDED (list.h) runs in each of
 * the t_shards workers, worker t_shard taking configurations x with
 * t_mine(x); every other test sees t_shard 0 of 1. */
extern int t_shard, t_shards;
static inline bool t_mine(long x) { return x % t_shards == t_shard; }

void t_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define T_CHECK(cond)                                                      \
    do {                                                                   \
        t_checks++;                                                        \
        if (!(cond)) t_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
    } while (0)

#define T_EQ_INT(a, b)                                                                     \
    do {                                                                                   \
        long long t_a = (long long)(a), t_b = (long long)(b);                              \
        t_checks++;                                                                        \
        if (t_a != t_b) t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a, t_b); \
    } while (0)

#define T_EQ_STATUS(got, want)                                                         \
    do {                                                                               \
        attn_status t_g = (got), t_w = (want);                                         \
        t_checks++;                                                                    \
        if (t_g != t_w)                                                                \
            t_fail(__FILE__, __LINE__, "%s: got %s, want %s (last error: %s)", #got,   \
                   attn_status_name(t_g), attn_status_name(t_w), attn_last_error());   \
    } while (0)

#define T_LE(a, b)                                                                      \
    do {                                                                                \
        double t_a = (double)(a), t_b = (double)(b);                                    \
        t_checks++;                                                                     \
        if (!(t_a <= t_b)) t_fail(__FILE__, __LINE__, "%s <= %s: %.9g > %.9g", #a, #b, t_a, t_b); \
    } while (0)

/* ---- utilities (util.c) ---------------------------------------------------- */

uint64_t t_rand_u64(uint64_t *state);               /* splitmix64 */
double t_rand_uniform(uint64_t *state, double lo, double hi);
int64_t t_rand_int(uint64_t *state, int64_t lo, int64_t hi); /* inclusive */

/* A buffer with guard zones of known bytes before and after. */
typedef struct {
    unsigned char *raw;
    void *data;
    size_t bytes;
} t_buf;
t_buf t_buf_alloc(size_t bytes);
bool t_buf_guards_ok(const t_buf *b);
void t_buf_free(t_buf *b);

/* An allocator hook (attn_set_allocator) that counts live allocations and
 * fails call number fail_at (1-based; 0 = never): out-of-memory tests. */
typedef struct {
    long live, calls, fail_at;
} t_counting;
void *t_count_alloc(size_t bytes, void *user); /* user: a t_counting */
void t_count_free(void *p, void *user);
/* Runs op(arg) with the k-th allocation failing, for k = 1, 2, ... until it
 * succeeds (at most 1000 times); every failure must be ATTN_NO_MEMORY with
 * nothing left live. Returns the allocations of the successful run, or -1
 * after reporting a failure. */
long t_oom_sweep(attn_status (*op)(void *arg), void *arg);

/* The float32 kernels every test runs, and whether this CPU/build has each. */
enum { T_KERNELS = 6 };
extern const attn_kernel t_kernels[T_KERNELS];
bool t_kernel_available(attn_kernel k);
/* Prints "  <kernel>: skipped (<why>)" for each of t_kernels this CPU or
 * build cannot run, so a test that loops over the paths names the ones it
 * did not run. */
void t_report_absent_kernels(void);

attn_ctx *t_ctx(int threads); /* cached per thread count; freed at exit */
void t_ctx_free_all(void);

/* A fresh scratch directory for this run's files (removed at exit). */
const char *t_tmpdir(void);
/* t_tmpdir()/name, in one of 4 rotating static buffers. */
const char *t_path(const char *name);

/* |a - b| <= tol, printing both values. */
#define T_NEAR(a, b, tol)                                                         \
    do {                                                                          \
        double t_a = (double)(a), t_b = (double)(b), t_t = (double)(tol);         \
        t_checks++;                                                               \
        if (!(fabs(t_a - t_b) <= t_t))                                            \
            t_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %.3g)", #a, #b, \
                   t_a, t_b, t_t);                                                \
    } while (0)

/* Marks the running test as skipped, with the reason (what this build or CPU
 * lacks); the runner reports it as SKIP by name, never as passed. A test
 * that skips makes no checks. */
void t_skip(const char *why);

/* Defines test `name`; every test is listed once in tests/runner/list.h. */
#define T_TEST(name)            \
    void test_##name(void);     \
    void test_##name(void)

/* x [n] = uniform random in [lo, hi); the dot product of a, b [n] in double. */
void t_fill(uint64_t *state, float *x, int64_t n, double lo, double hi);
double t_dot(const float *a, const float *b, int64_t n);
/* nb random blocks of type q at b with the ranges of a real model's weights:
 * Q4_1 scales d ~ 2^-9 .. 2^-5 and minimums m ~ -(2^-7 .. 2^-2), Q8_0
 * scales d ~ 2^-12 .. 2^-9; random 4- and 8-bit values. */
void t_fill_quant(uint64_t *state, attn_quant q, unsigned char *b, int64_t nb);

/* Finite differences (t_fd_check): the loss is a weighted sum (or the mean
 * cross-entropy) of float32 outputs accumulated in double, and each
 * parameter is moved by +-eps with the step actually taken in float32
 * ((p + eps) - p). With eps = 1e-2 the truncation error of a centred
 * difference is eps^2 |L'''| / 6 ~ 2e-5 for these O(1) smooth functions,
 * and the float32 rounding of the loss (~1e-6 absolute for ~100 terms) adds
 * ~1e-6 / (2 eps) = 5e-5; so the tolerance is 5e-4 + 1e-2 |g|. A wrong
 * gradient term (a missing factor or index) is off by O(|g|), far above. */
typedef double (*t_loss_fn)(void *user);
/* Centred differences of f over n_pick entries of p [n] (first, last and
 * random ones) against the analytic gradient g; returns the failures. */
int t_fd_check(const char *what, float *p, int64_t n, const float *g, t_loss_fn f, void *user,
               int n_pick, uint64_t *rng);

#endif /* ATTN_TEST_H */
