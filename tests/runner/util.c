/* util.c - test utilities: a seeded RNG, guarded buffers, cached contexts. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

uint64_t t_rand_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double t_rand_uniform(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * (double)(t_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t t_rand_int(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(t_rand_u64(s) % (uint64_t)(hi - lo + 1));
}

/* Guard zones catch stray writes in normal builds. Under AddressSanitizer
 * buffers are exact-size instead, so ASan sees every out-of-bounds read or
 * write itself (exact contract 7 of docs/testing.md). */
#if defined(__SANITIZE_ADDRESS__)
#define GUARD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GUARD 0
#endif
#endif
#ifndef GUARD
#define GUARD 64
#endif
#if GUARD > 0
static const unsigned char GUARD_BYTE = 0xA5;
#endif

t_buf t_buf_alloc(size_t bytes)
{
    t_buf b;
    b.bytes = bytes;
    b.raw = malloc(bytes + 2 * GUARD > 0 ? bytes + 2 * GUARD : 1);
    if (b.raw == NULL) {
        fprintf(stderr, "test: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
#if GUARD > 0
    memset(b.raw, GUARD_BYTE, GUARD);
    memset(b.raw + GUARD + bytes, GUARD_BYTE, GUARD);
#endif
    memset(b.raw + GUARD, 0, bytes);
    b.data = b.raw + GUARD;
    return b;
}

bool t_buf_guards_ok(const t_buf *b)
{
#if GUARD > 0
    for (size_t x = 0; x < GUARD; x++)
        if (b->raw[x] != GUARD_BYTE || b->raw[GUARD + b->bytes + x] != GUARD_BYTE) return false;
#else
    (void)b;
#endif
    return true;
}

void t_buf_free(t_buf *b)
{
    free(b->raw);
    b->raw = NULL;
    b->data = NULL;
}

static attn_ctx *ctxs[65];

attn_ctx *t_ctx(int threads)
{
    if (ctxs[threads] == NULL && attn_ctx_create(threads, &ctxs[threads]) != ATTN_OK) {
        fprintf(stderr, "test: attn_ctx_create(%d) failed: %s\n", threads, attn_last_error());
        exit(2);
    }
    return ctxs[threads];
}

void t_ctx_free_all(void)
{
    for (int x = 0; x < 65; x++) {
        attn_ctx_free(ctxs[x]);
        ctxs[x] = NULL;
    }
}

const attn_kernel t_kernels[T_KERNELS] = {ATTN_KERNEL_TILED,      ATTN_KERNEL_AVX2, ATTN_KERNEL_AVX512,
                                           ATTN_KERNEL_AVX512BF16, ATTN_KERNEL_AMX,  ATTN_KERNEL_REF};

/* Whether ATTN_TEST_KERNELS (a comma-separated list of kernel names, e.g.
 * "avx512"; unset or empty: every kernel) lets the tests run kernel k. */
static bool selected(attn_kernel k)
{
    const char *env = getenv("ATTN_TEST_KERNELS"), *name = attn_kernel_name(k);
    if (env == NULL || env[0] == '\0') return true;
    size_t n = strlen(name);
    for (const char *s = env; *s != '\0';) {
        size_t len = strcspn(s, ",");
        if (len == n && strncmp(s, name, n) == 0) return true;
        s += len + (s[len] == ',');
    }
    return false;
}

bool t_kernel_available(attn_kernel k)
{
    if (!selected(k)) return false;
    attn_ctx *ctx = t_ctx(1);
    bool ok = attn_ctx_set_kernel(ctx, k) == ATTN_OK;
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    return ok;
}

void t_report_absent_kernels(void)
{
    attn_ctx *ctx = t_ctx(1);
    for (int x = 0; x < T_KERNELS; x++) {
        if (!selected(t_kernels[x]))
            printf("  %s: skipped (not in ATTN_TEST_KERNELS)\n", attn_kernel_name(t_kernels[x]));
        else if (attn_ctx_set_kernel(ctx, t_kernels[x]) != ATTN_OK)
            printf("  %s: skipped (%s)\n", attn_kernel_name(t_kernels[x]), attn_last_error());
        attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    }
}

void *t_count_alloc(size_t bytes, void *user)
{
    t_counting *c = user;
    if (++c->calls == c->fail_at) return NULL;
    void *p = malloc(bytes);
    if (p != NULL) c->live++;
    return p;
}

void t_count_free(void *p, void *user)
{
    t_counting *c = user;
    if (p != NULL) c->live--;
    free(p);
}

long t_oom_sweep(attn_status (*op)(void *arg), void *arg)
{
    for (long k = 1; k <= 1000; k++) {
        t_counting c = {0, 0, k};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_status st = op(arg);
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(c.live, 0);
        if (c.calls < k) {
            T_EQ_STATUS(st, ATTN_OK);
            return k - 1;
        }
        if (st != ATTN_NO_MEMORY) {
            t_fail(__FILE__, __LINE__, "allocation %ld failing gave %s (%s)", k,
                   attn_status_name(st), attn_last_error());
            return -1;
        }
    }
    t_fail(__FILE__, __LINE__, "no success within 1000 allocations");
    return -1;
}

/* ---- finite differences and random fills (toolkit tests) ----------------- */

void t_fill(uint64_t *s, float *x, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)t_rand_uniform(s, lo, hi);
}

/* A random f16 of magnitude 2^(e-15), e in [lo, hi], with a random mantissa. */
static uint16_t rand_f16(uint64_t *rng, int lo, int hi, bool negative)
{
    uint16_t e = (uint16_t)t_rand_int(rng, lo, hi), man = (uint16_t)t_rand_int(rng, 0, 1023);
    return (uint16_t)((negative ? 0x8000u : 0u) | (uint32_t)e << 10 | man);
}

void t_fill_quant(uint64_t *rng, attn_quant q, unsigned char *b, int64_t nb)
{
    size_t bytes = attn_quant_block_bytes(q);
    for (int64_t x = 0; x < nb; x++) {
        unsigned char *blk = b + (size_t)x * bytes;
        for (size_t i = 0; i < bytes; i++) blk[i] = (unsigned char)t_rand_int(rng, 0, 255);
        uint16_t d = q == ATTN_QUANT_Q4_1 ? rand_f16(rng, 6, 10, false) : rand_f16(rng, 3, 6, false);
        memcpy(blk, &d, 2);
        if (q == ATTN_QUANT_Q4_1) {
            uint16_t m = rand_f16(rng, 8, 13, true);
            memcpy(blk + 2, &m, 2);
        }
    }
}

double t_dot(const float *a, const float *b, int64_t n)
{
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)a[i] * (double)b[i];
    return acc;
}

int t_fd_check(const char *what, float *p, int64_t n, const float *g, t_loss_fn f, void *user,
               int n_pick, uint64_t *rng)
{
    int bad = 0;
    for (int k = 0; k < n_pick && n > 0; k++) {
        int64_t i = k == 0 ? 0 : k == 1 ? n - 1 : t_rand_int(rng, 0, n - 1);
        float keep = p[i];
        p[i] = keep + 1e-2f;
        float up = p[i];
        double lp = f(user);
        p[i] = keep - 1e-2f;
        float dn = p[i];
        double lm = f(user);
        p[i] = keep;
        double fd = (lp - lm) / ((double)up - (double)dn);
        double tol = 5e-4 + 1e-2 * fabs((double)g[i]);
        t_checks++;
        if (!(fabs(fd - (double)g[i]) <= tol)) {
            bad++;
            t_fail(__FILE__, __LINE__, "%s[%lld]: analytic %.7g, finite difference %.7g", what,
                   (long long)i, (double)g[i], fd);
        }
    }
    return bad;
}

static char tmpdir[256];

static void remove_tmpdir(void)
{
    char cmd[300];
    if (tmpdir[0] == '\0') return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "attn_tests: could not remove %s\n", tmpdir);
}

const char *t_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/attn_tests.XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *t_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", t_tmpdir(), name);
    return buf[k];
}
