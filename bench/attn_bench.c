/* attn_bench.c - the benchmark program (C side; the rules are in
 * docs/design.md, Benchmarks).
 *
 *   attn_bench probe [--threads N]
 *       FMA peak and read bandwidth, 1 thread and N threads, as JSON.
 *   attn_bench run --mode fwd|bwd|fwdbwd|decode --B b --Hq h --Hkv g --Sq s
 *                  --Sk k --D d --mask none|causal|window:W|padding
 *                  [--threads N] [--reps R] [--kernel auto|avx2|tiled|ref]
 *       long-context masks (docs/long-context.md; blocks of 64):
 *         longformer:W:G   window W each side, the first G tokens global
 *         bigbird:W:G:R    window W blocks each side, G global, R random blocks
 *         packed:L1,L2,..  the sequences packed (cu_seqlens; B, Sq, Sk from them)
 *         padded:L1,L2,..  the same sequences padded into a batch (q_lens, k_lens)
 *       times one shape (median and min of R runs after a warm-up) and prints
 *       one JSON line: times, FLOPs (visible and dense), GFLOP/s, bytes of K
 *       and V read (decode), and peak resident memory growth.
 *
 * bench/bench.py runs the table, alternates with PyTorch peers, and writes
 * bench/results.json and the chart. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <attn/attn.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static void die(attn_status st, const char *what);

enum { MAX_SEQS = 64 };

typedef struct {
    const char *mode, *mask, *kernel;
    long B, Hq, Hkv, Sq, Sk, D, threads, reps, window;
    int64_t n_seqs, lens[MAX_SEQS], cu[MAX_SEQS + 1]; /* packed: and padded: */
} shape;

/* "packed:L1,L2,.." or "padded:..": the lengths, and B, Sq, Sk of the call. */
static bool parse_seqs(shape *s)
{
    bool packed = strncmp(s->mask, "packed:", 7) == 0;
    if (!packed && strncmp(s->mask, "padded:", 7) != 0) return true;
    const char *c = s->mask + 7;
    long longest = 0;
    s->n_seqs = 0;
    s->cu[0] = 0;
    while (*c && s->n_seqs < MAX_SEQS) {
        char *end;
        long L = strtol(c, &end, 10);
        if (end == c || L < 1) return false;
        s->lens[s->n_seqs] = L;
        s->cu[s->n_seqs + 1] = s->cu[s->n_seqs] + L;
        s->n_seqs++;
        longest = L > longest ? L : longest;
        c = *end == ',' ? end + 1 : end;
    }
    s->B = packed ? 1 : (long)s->n_seqs;
    s->Sq = s->Sk = packed ? (long)s->cu[s->n_seqs] : longest;
    return s->n_seqs > 0;
}

/* A LONGFORMER or BIGBIRD block mask (blocks of 64) for "longformer:W:G"
 * or "bigbird:W:G:R", and the scores in its listed blocks; NULL for other
 * masks. */
static attn_block_mask *pattern_mask(const shape *s, double *listed)
{
    bool lf = strncmp(s->mask, "longformer:", 11) == 0, bb = strncmp(s->mask, "bigbird:", 8) == 0;
    if (!lf && !bb) return NULL;
    long w = 0, g = 0, r = 0;
    if (lf) sscanf(s->mask + 11, "%ld:%ld", &w, &g);
    if (bb) sscanf(s->mask + 8, "%ld:%ld:%ld", &w, &g, &r);
    attn_block_mask_shape sh = {1, 1, s->Sq, s->Sk, 64, 64};
    attn_block_pattern pt = attn_block_pattern_default(lf ? ATTN_BLOCK_PATTERN_LONGFORMER : ATTN_BLOCK_PATTERN_BIGBIRD);
    int64_t *globals = calloc((size_t)g + 1, sizeof(int64_t));
    for (long x = 0; x < g; x++) globals[x] = x;
    if (lf) {
        pt.window_left = pt.window_right = w;
        pt.global = globals;
        pt.n_global = g;
    } else {
        pt.window_blocks = w;
        pt.global_blocks = g;
        pt.random_blocks = r;
        pt.seed = 1;
    }
    attn_block_mask *m = NULL;
    die(attn_block_mask_from_pattern(&sh, &pt, &m), "attn_block_mask_from_pattern");
    free(globals);
    *listed = 0;
    for (int64_t qb = 0; qb * 64 < s->Sq; qb++)
        for (int64_t kb = 0; kb * 64 < s->Sk; kb++)
            if (attn_block_mask_kind(m, 0, 0, qb, kb) > 0) {
                int64_t nq = s->Sq - qb * 64 < 64 ? s->Sq - qb * 64 : 64, nk = s->Sk - kb * 64 < 64 ? s->Sk - kb * 64 : 64;
                *listed += (double)(nq * nk);
            }
    return m;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long max_rss_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t n, unsigned seed)
{
    float *p = malloc(n * sizeof(float) + 64);
    if (p == NULL) {
        fprintf(stderr, "attn_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

static void die(attn_status st, const char *what)
{
    if (st == ATTN_OK) return;
    fprintf(stderr, "attn_bench: %s: %s (%s)\n", what, attn_status_name(st), attn_last_error());
    exit(1);
}

static int run(const shape *s)
{
    long B = s->B, Sq = s->Sq, Sk = s->Sk, Hq = s->Hq, Hkv = s->Hkv, D = s->D;
    bool decode = strcmp(s->mode, "decode") == 0;
    bool need_bwd = strcmp(s->mode, "bwd") == 0 || strcmp(s->mode, "fwdbwd") == 0;
    long cap = decode ? Sk + 1024 : Sk; /* decode: K and V are views into a larger cache */
    float *q = filled((size_t)(B * Sq * Hq * D), 1), *k = filled((size_t)(B * cap * Hkv * D), 2);
    float *v = filled((size_t)(B * cap * Hkv * D), 3), *o = filled((size_t)(B * Sq * Hq * D), 4);
    float *lse = filled((size_t)(B * Hq * Sq), 5);
    float *d_o = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    if (need_bwd) {
        d_o = filled((size_t)(B * Sq * Hq * D), 6);
        dq = filled((size_t)(B * Sq * Hq * D), 7);
        dk = filled((size_t)(B * Sk * Hkv * D), 8);
        dv = filled((size_t)(B * Sk * Hkv * D), 9);
    }
    attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, B, Sq, Hq, D);
    attn_tensor tk = attn_tensor_make(k, ATTN_DTYPE_F32, B, Sk, Hkv, D), tv = attn_tensor_make(v, ATTN_DTYPE_F32, B, Sk, Hkv, D);
    tk.stride[0] = tv.stride[0] = cap * Hkv * D;
    attn_tensor to = attn_tensor_make(o, ATTN_DTYPE_F32, B, Sq, Hq, D), tl = attn_tensor_make(lse, ATTN_DTYPE_F32, B, Hq, Sq, 1);
    attn_tensor tdo = attn_tensor_make(d_o, ATTN_DTYPE_F32, B, Sq, Hq, D), tdq = attn_tensor_make(dq, ATTN_DTYPE_F32, B, Sq, Hq, D);
    attn_tensor tdk = attn_tensor_make(dk, ATTN_DTYPE_F32, B, Sk, Hkv, D), tdv = attn_tensor_make(dv, ATTN_DTYPE_F32, B, Sk, Hkv, D);

    attn_sdpa_params p = attn_sdpa_params_default();
    int64_t *klens = calloc((size_t)B, sizeof(int64_t));
    for (long b = 0; b < B; b++) klens[b] = Sk;
    if (strcmp(s->mask, "causal") == 0) {
        p.causal = 1;
        p.align = ATTN_ALIGN_BOTTOM_RIGHT; /* = top-left when Sq == Sk */
    } else if (s->window > 0) {
        p.causal = 1;
        p.window_left = s->window - 1; /* each query sees `window` keys */
    } else if (strcmp(s->mask, "padding") == 0 || decode) {
        unsigned seed = 12345;
        for (long b = 0; b < B; b++) { /* padding: lengths in [Sk/2, Sk]; decode: full cache */
            seed = seed * 1664525u + 1013904223u;
            klens[b] = decode ? Sk : Sk / 2 + (long)((seed >> 8) % (unsigned)(Sk / 2 + 1));
        }
        p.k_lens = klens;
    }
    double listed = 0;
    attn_block_mask *bm = pattern_mask(s, &listed);
    p.block_mask = bm;
    bool packed = strncmp(s->mask, "packed:", 7) == 0, padded = strncmp(s->mask, "padded:", 7) == 0;
    if (packed) {
        p.n_seqs = s->n_seqs;
        p.cu_seqlens_q = s->cu;
    }
    if (padded) {
        p.q_lens = s->lens;
        p.k_lens = s->lens;
    }
    /* Visible (i, j) pairs, counted from the same definitions (a block
     * mask: the scores of its listed blocks; packed or padded: sum L^2). */
    double visible = 0;
    for (long b = 0; (packed || padded) && b < s->n_seqs; b++) visible += (double)(s->lens[b] * s->lens[b]);
    if (bm != NULL) visible = listed;
    for (long b = 0; bm == NULL && !packed && !padded && b < B; b++)
        for (long i = 0; i < Sq; i++) {
            long lk = klens[b], ia = i + lk - Sq, hi = lk, lo = 0;
            if (p.causal && ia + 1 < hi) hi = ia + 1;
            if (p.window_left >= 0 && ia - p.window_left > lo) lo = ia - p.window_left;
            if (hi > lo) visible += (double)(hi - lo);
        }
    double fwd_flops = 4.0 * (double)Hq * visible * (double)D;
    double dense = 4.0 * (double)(B * Hq) * (double)Sq * (double)Sk * (double)D;
    double factor = strcmp(s->mode, "bwd") == 0 ? 2.5 : strcmp(s->mode, "fwdbwd") == 0 ? 3.5 : 1.0;

    attn_ctx *ctx;
    die(attn_ctx_create((int)s->threads, &ctx), "attn_ctx_create");
    attn_kernel kern = ATTN_KERNEL_AUTO;
    if (strcmp(s->kernel, "avx2") == 0) kern = ATTN_KERNEL_AVX2;
    if (strcmp(s->kernel, "tiled") == 0) kern = ATTN_KERNEL_TILED;
    if (strcmp(s->kernel, "ref") == 0) kern = ATTN_KERNEL_REF;
    die(attn_ctx_set_kernel(ctx, kern), "attn_ctx_set_kernel");

    long rss0 = max_rss_kb();
    double *times = calloc((size_t)s->reps, sizeof(double));
    for (long r = -1; r < s->reps; r++) { /* r = -1: warm-up */
        double t0 = now();
        if (strcmp(s->mode, "bwd") != 0 || r < 0)
            die(attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, &tl), "forward");
        if (strcmp(s->mode, "bwd") == 0) t0 = now();
        if (need_bwd)
            die(attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, &p, &tdq, &tdk, &tdv, NULL), "backward");
        if (r >= 0) times[r] = now() - t0;
    }
    long rss1 = max_rss_kb();
    qsort(times, (size_t)s->reps, sizeof(double), cmp_double);
    double med = times[s->reps / 2], mn = times[0];
    double flops = fwd_flops * factor, kv_bytes = 2.0 * (double)Hkv * D * 4.0;
    double kv_total = 0;
    for (long b = 0; b < B; b++) kv_total += kv_bytes * (double)klens[b];
    printf("{\"mode\": \"%s\", \"B\": %ld, \"Hq\": %ld, \"Hkv\": %ld, \"Sq\": %ld, \"Sk\": %ld, \"D\": %ld, "
           "\"mask\": \"%s\", \"threads\": %ld, \"kernel\": \"%s\", \"reps\": %ld, \"median_ms\": %.4f, "
           "\"min_ms\": %.4f, \"flops\": %.6g, \"flops_dense\": %.6g, \"gflops\": %.3f, "
           "\"gflops_dense\": %.3f, \"kv_bytes\": %.6g, \"kv_gbs\": %.3f, \"rss_growth_mb\": %.2f}\n",
           s->mode, B, Hq, Hkv, Sq, Sk, D, s->mask, s->threads,
           attn_kernel_name(attn_ctx_resolved_kernel(ctx)), s->reps, med * 1e3, mn * 1e3, flops,
           dense * factor, flops / med / 1e9, dense * factor / med / 1e9, kv_total, kv_total / med / 1e9,
           (double)(rss1 - rss0) / 1024.0);
    attn_ctx_free(ctx);
    attn_block_mask_free(bm);
    free(times); free(klens); free(q); free(k); free(v); free(o); free(lse);
    free(d_o); free(dq); free(dk); free(dv);
    return 0;
}

int main(int argc, char **argv)
{
    shape s = {"fwd", "none", "auto", 1, 8, 8, 1024, 1024, 64, 1, 5, 0, 0, {0}, {0}};
    if (argc < 2) {
        fprintf(stderr, "usage: attn_bench probe [--threads N] | run --mode M --B .. --Hq .. --Hkv .. "
                        "--Sq .. --Sk .. --D .. --mask none|causal|window:W|padding [--threads N] "
                        "[--reps R] [--kernel K]\n");
        return 2;
    }
    for (int a = 2; a + 1 < argc; a += 2) {
        const char *k = argv[a], *v = argv[a + 1];
        if (!strcmp(k, "--mode")) s.mode = v;
        else if (!strcmp(k, "--mask")) s.mask = v;
        else if (!strcmp(k, "--kernel")) s.kernel = v;
        else if (!strcmp(k, "--B")) s.B = atol(v);
        else if (!strcmp(k, "--Hq")) s.Hq = atol(v);
        else if (!strcmp(k, "--Hkv")) s.Hkv = atol(v);
        else if (!strcmp(k, "--Sq")) s.Sq = atol(v);
        else if (!strcmp(k, "--Sk")) s.Sk = atol(v);
        else if (!strcmp(k, "--D")) s.D = atol(v);
        else if (!strcmp(k, "--threads")) s.threads = atol(v);
        else if (!strcmp(k, "--reps")) s.reps = atol(v);
        else {
            fprintf(stderr, "attn_bench: unknown option %s\n", k);
            return 2;
        }
    }
    if (strncmp(s.mask, "window:", 7) == 0) s.window = atol(s.mask + 7);
    if (!parse_seqs(&s)) {
        fprintf(stderr, "attn_bench: --mask %s: lengths must be positive integers, at most %d\n", s.mask, MAX_SEQS);
        return 2;
    }
    if (s.reps < 1 || s.threads < 1 || s.threads > 64) {
        fprintf(stderr, "attn_bench: --reps must be >= 1 and --threads in [1, 64]\n");
        return 2;
    }
    if (!strcmp(argv[1], "probe")) {
        printf("{\"fma_gflops_1t\": %.2f, \"fma_gflops\": %.2f, \"read_gbs_1t\": %.2f, \"read_gbs\": %.2f, "
               "\"threads\": %ld}\n", bench_fma_peak(1), bench_fma_peak((int)s.threads),
               bench_read_bandwidth(1), bench_read_bandwidth((int)s.threads), s.threads);
        return 0;
    }
    if (!strcmp(argv[1], "run")) return run(&s);
    fprintf(stderr, "attn_bench: unknown command %s\n", argv[1]);
    return 2;
}
