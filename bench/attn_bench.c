/* attn_bench.c - the benchmark program (C side; the rules are in
 * docs/design.md, Benchmarks).
 *
 *   attn_bench probe [--threads N]
 *       the product peaks (AVX2 and AVX-512 float32 FMA, AVX512-FP16 FMA,
 *       AVX512-BF16 and AMX bf16; absent ones named with the reason) and the read
 *       bandwidth, 1 thread and N threads, the peak each dtype's rows are
 *       held to, and the CPU, as JSON.
 *   attn_bench qgemv [--threads N] [--reps R] [--kernel K]
 *       the quantized GEMVs of one SmolLM2-135M decode step (its shapes,
 *       random weights, 96 MB), median ms and GB/s of weights, as JSON.
 *   attn_bench qgemm [--rows N] [--threads N] [--reps R] [--kernel K]
 *       the quantized GEMMs of SmolLM2-135M's layers over a prompt of N
 *       tokens (512), median ms, GFLOP/s and the fraction of the AVX2 FMA
 *       peak of the same threads, as JSON.
 *   attn_bench gemm [--rows N] [--dtype f32|bf16] [--reps R] [--kernel K]
 *       the toolkit's GEMM on one thread over all-MiniLM-L6-v2's dense
 *       products (x w^T: 384 -> 1152, 384 -> 384, 384 -> 1536, 1536 -> 384)
 *       for N rows (512), weights packed as the model packs them (bfloat16
 *       with --dtype bf16: the nn.gemm_bf16 slot), median ms and GFLOP/s
 *       per product, as JSON.
 *   attn_bench run --mode fwd|bwd|fwdbwd|decode --B b --Hq h --Hkv g --Sq s
 *                  --Sk k --D d --mask none|causal|window:W|padding
 *                  [--dtype f32|bf16|f16] [--kv-dtype bf16|f16]
 *                  [--threads N] [--reps R] [--kernel auto|ref|tiled|avx2|avx512|avx512bf16|amx]
 *                  [--layout bshd|bhsd]
 *       long-context masks (docs/long-context.md; blocks of 64):
 *         longformer:W:G   window W each side, the first G tokens global
 *         bigbird:W:G:R    window W blocks each side, G global, R random blocks
 *         packed:L1,L2,..  the sequences packed (cu_seqlens; B, Sq, Sk from them)
 *         padded:L1,L2,..  the same sequences padded into a batch (q_lens, k_lens)
 *       times one shape (median and min of R runs after a warm-up) and prints
 *       one JSON line: the kernel that ran (the instruction set of the
 *       slot and dtype the call ran; fwd/bwd when they differ) and the CPU, times, FLOPs
 *       (visible and dense), GFLOP/s, bytes of K and V read (decode),
 *       peak resident memory growth, and the median process CPU time of a
 *       run (cpu_ms, and cpu_min_ms; every thread's, so on a shared machine a 1-thread
 *       run's cpu_ms leaves out the time other processes took the core). --dtype is the dtype of every tensor
 *       (LSE: float32); --kv-dtype under --dtype f32 makes K and V half
 *       (the mixed decode, forward only). Without --kernel the context's
 *       choice stands (ATTN_KERNEL in the environment, else auto).
 *
 * bench/bench.py runs the table, alternates with PyTorch peers, and writes
 * bench/results.json and the chart. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include "core/cpu.h"
#include "core/half.h"
#include "core/toolkit_kernels.h"
#include "kernels/table.h"
#include "ops/ctx.h"

#include <attn/attn.h>
#include <attn/quant.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static void die(attn_status st, const char *what);

enum { MAX_SEQS = 64 };

typedef struct {
    const char *mode, *mask, *kernel, *dtype, *kv_dtype; /* kernel, kv_dtype: NULL if not given */
    long B, Hq, Hkv, Sq, Sk, D, threads, reps, window;
    long rows; /* qgemm: tokens of the prompt */
    int64_t n_seqs, lens[MAX_SEQS], cu[MAX_SEQS + 1]; /* packed: and padded: */
    bool bhsd; /* --layout bhsd: Q, K, V, O and the gradients head-major */
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

/* CPU seconds of the whole process (every thread): on a shared machine
 * less disturbed than the wall clock by other processes' time slices. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
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

/* n values in [-0.5, 0.5) in a new buffer of dtype dt (F32, BF16, F16). */
static void *filled(size_t n, unsigned seed, attn_dtype dt)
{
    unsigned char *p = malloc(n * attn_dtype_size(dt) + 64);
    if (p == NULL) {
        fprintf(stderr, "attn_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        float x = (float)(seed >> 8) / 16777216.0f - 0.5f;
        if (dt == ATTN_DTYPE_F32) memcpy(p + 4 * i, &x, 4);
        else ((uint16_t *)(void *)p)[i] = dt == ATTN_DTYPE_BF16 ? attn__f32_to_bf16(x) : attn__f32_to_f16(x);
    }
    return p;
}

/* The dtype named f32, bf16 or f16; 0 for any other name. */
static attn_dtype dtype_named(const char *name)
{
    return !strcmp(name, "f32") ? ATTN_DTYPE_F32 : !strcmp(name, "bf16") ? ATTN_DTYPE_BF16
           : !strcmp(name, "f16") ? ATTN_DTYPE_F16 : (attn_dtype)0;
}

static void die(attn_status st, const char *what)
{
    if (st == ATTN_OK) return;
    fprintf(stderr, "attn_bench: %s: %s (%s)\n", what, attn_status_name(st), attn_last_error());
    exit(1);
}

/* t [B, S, H, D] over memory laid out [B, H, rows, D] (PyTorch's layout;
 * rows >= S: a decode cache's capacity). */
static void head_major(attn_tensor *t, long rows)
{
    int64_t H = t->dim[2], D = t->dim[3];
    t->stride[3] = 1;
    t->stride[1] = D;
    t->stride[2] = rows * D;
    t->stride[0] = H * rows * D;
}

/* --kernel NAME (any attn_kernel_name: auto, ref, tiled, avx2, avx512, avx512bf16, amx;
 * NULL: the context's choice); an unknown name is a usage error. */
static void force_kernel(attn_ctx *ctx, const char *name)
{
    if (name == NULL) return;
    for (int k = ATTN_KERNEL_AUTO; k <= ATTN_KERNEL_AVX512BF16; k++)
        if (strcmp(name, attn_kernel_name((attn_kernel)k)) == 0) {
            die(attn_ctx_set_kernel(ctx, (attn_kernel)k), "attn_ctx_set_kernel");
            return;
        }
    fprintf(stderr, "attn_bench: unknown --kernel '%s' (auto, ref, tiled, avx2, avx512, avx512bf16, amx)\n", name);
    exit(2);
}

/* The instruction set whose kernels ran the call: the table's entry for
 * the call's slot and dtype combination (AUTO's choice fills some slots
 * and dtypes from the instruction sets below it, so the context's kernel
 * alone would misname them): the forward's, the decode split's, the fused
 * backward's; fwd+bwd: both, "fwd/bwd", when they differ. */
static void ran_kernel(attn_ctx *ctx, const shape *s, char *out, size_t cap)
{
    char dt[32];
    if (s->kv_dtype == NULL || strcmp(s->kv_dtype, s->dtype) == 0) snprintf(dt, sizeof dt, "%s", s->dtype);
    else snprintf(dt, sizeof dt, "%s+%skv", s->dtype, s->kv_dtype);
    const attn__kernels *t = attn__ctx_kernels(ctx);
    int d = 0;
    while (d < ATTN__N_SDPA_DT && strcmp(attn__sdpa_dt_name((attn__sdpa_dt)d), dt) != 0) d++;
    if (t == NULL || d == ATTN__N_SDPA_DT || attn_ctx_resolved_kernel(ctx) == ATTN_KERNEL_REF) {
        snprintf(out, cap, "%s", attn_kernel_name(attn_ctx_resolved_kernel(ctx)));
        return;
    }
    const char *fwd = attn__isa_name(t->filled_by[ATTN__SLOT_SDPA_FORWARD][d]);
    const char *dec = attn__isa_name(t->filled_by[ATTN__SLOT_SDPA_DECODE][d]);
    const char *bwd = attn__isa_name(t->filled_by[ATTN__SLOT_SDPA_FUSED][d]);
    if (strcmp(s->mode, "decode") == 0) snprintf(out, cap, "%s", dec);
    else if (strcmp(s->mode, "bwd") == 0) snprintf(out, cap, "%s", bwd);
    else if (strcmp(s->mode, "fwdbwd") == 0 && strcmp(fwd, bwd) != 0) snprintf(out, cap, "%s/%s", fwd, bwd);
    else snprintf(out, cap, "%s", fwd);
}

static int run(const shape *s)
{
    long B = s->B, Sq = s->Sq, Sk = s->Sk, Hq = s->Hq, Hkv = s->Hkv, D = s->D;
    bool decode = strcmp(s->mode, "decode") == 0;
    bool need_bwd = strcmp(s->mode, "bwd") == 0 || strcmp(s->mode, "fwdbwd") == 0;
    long cap = decode ? Sk + 1024 : Sk; /* decode: K and V are views into a larger cache */
    attn_dtype dq_t = dtype_named(s->dtype), dkv_t = s->kv_dtype ? dtype_named(s->kv_dtype) : dq_t;
    void *q = filled((size_t)(B * Sq * Hq * D), 1, dq_t), *k = filled((size_t)(B * cap * Hkv * D), 2, dkv_t);
    void *v = filled((size_t)(B * cap * Hkv * D), 3, dkv_t), *o = filled((size_t)(B * Sq * Hq * D), 4, dq_t);
    void *lse = filled((size_t)(B * Hq * Sq), 5, ATTN_DTYPE_F32);
    void *d_o = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    if (need_bwd) {
        d_o = filled((size_t)(B * Sq * Hq * D), 6, dq_t);
        dq = filled((size_t)(B * Sq * Hq * D), 7, dq_t);
        dk = filled((size_t)(B * Sk * Hkv * D), 8, dkv_t);
        dv = filled((size_t)(B * Sk * Hkv * D), 9, dkv_t);
    }
    attn_tensor tq = attn_tensor_make(q, dq_t, B, Sq, Hq, D);
    attn_tensor tk = attn_tensor_make(k, dkv_t, B, Sk, Hkv, D), tv = attn_tensor_make(v, dkv_t, B, Sk, Hkv, D);
    tk.stride[0] = tv.stride[0] = cap * Hkv * D;
    attn_tensor to = attn_tensor_make(o, dq_t, B, Sq, Hq, D), tl = attn_tensor_make(lse, ATTN_DTYPE_F32, B, Hq, Sq, 1);
    attn_tensor tdo = attn_tensor_make(d_o, dq_t, B, Sq, Hq, D), tdq = attn_tensor_make(dq, dq_t, B, Sq, Hq, D);
    attn_tensor tdk = attn_tensor_make(dk, dkv_t, B, Sk, Hkv, D), tdv = attn_tensor_make(dv, dkv_t, B, Sk, Hkv, D);
    if (s->bhsd) { /* the same logical tensors over head-major memory */
        head_major(&tq, Sq);
        head_major(&to, Sq);
        head_major(&tdo, Sq);
        head_major(&tdq, Sq);
        head_major(&tk, cap);
        head_major(&tv, cap);
        head_major(&tdk, Sk);
        head_major(&tdv, Sk);
    }

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
    force_kernel(ctx, s->kernel);

    long rss0 = max_rss_kb();
    double *times = calloc((size_t)s->reps, sizeof(double)), *cpu = calloc((size_t)s->reps, sizeof(double));
    for (long r = -1; r < s->reps; r++) { /* r = -1: warm-up */
        double t0 = now(), c0 = cpu_now();
        if (strcmp(s->mode, "bwd") != 0 || r < 0)
            die(attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, &tl), "forward");
        if (strcmp(s->mode, "bwd") == 0) {
            t0 = now();
            c0 = cpu_now();
        }
        if (need_bwd)
            die(attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, &p, &tdq, &tdk, &tdv, NULL), "backward");
        if (r >= 0) {
            times[r] = now() - t0;
            cpu[r] = cpu_now() - c0;
        }
    }
    long rss1 = max_rss_kb();
    char kernel[64];
    ran_kernel(ctx, s, kernel, sizeof kernel);
    qsort(times, (size_t)s->reps, sizeof(double), cmp_double);
    qsort(cpu, (size_t)s->reps, sizeof(double), cmp_double);
    double med = times[s->reps / 2], mn = times[0], cpu_med = cpu[s->reps / 2], cpu_min = cpu[0];
    double flops = fwd_flops * factor, kv_bytes = 2.0 * (double)Hkv * D * (double)attn_dtype_size(dkv_t);
    double kv_total = 0;
    for (long b = 0; b < B; b++) kv_total += kv_bytes * (double)klens[b];
    printf("{\"mode\": \"%s\", \"B\": %ld, \"Hq\": %ld, \"Hkv\": %ld, \"Sq\": %ld, \"Sk\": %ld, \"D\": %ld, "
           "\"dtype\": \"%s\", \"kv_dtype\": \"%s\", \"cpu\": \"%s\", "
           "\"mask\": \"%s\", \"layout\": \"%s\", \"threads\": %ld, \"kernel\": \"%s\", \"reps\": %ld, \"median_ms\": %.4f, "
           "\"min_ms\": %.4f, \"flops\": %.6g, \"flops_dense\": %.6g, \"gflops\": %.3f, "
           "\"gflops_dense\": %.3f, \"kv_bytes\": %.6g, \"kv_gbs\": %.3f, \"rss_growth_mb\": %.2f, "
           "\"cpu_ms\": %.4f, \"cpu_min_ms\": %.4f, \"gflops_per_cpu_s\": %.3f}\n",
           s->mode, B, Hq, Hkv, Sq, Sk, D, s->dtype, s->kv_dtype ? s->kv_dtype : s->dtype, attn__cpu_get()->brand,
           s->mask, s->bhsd ? "bhsd" : "bshd", s->threads,
           kernel, s->reps, med * 1e3, mn * 1e3, flops,
           dense * factor, flops / med / 1e9, dense * factor / med / 1e9, kv_total, kv_total / med / 1e9,
           (double)(rss1 - rss0) / 1024.0, cpu_med * 1e3, cpu_min * 1e3, flops / cpu_med / 1e9);
    attn_ctx_free(ctx);
    attn_block_mask_free(bm);
    free(times); free(cpu); free(klens); free(q); free(k); free(v); free(o); free(lse);
    free(d_o); free(dq); free(dk); free(dv);
    return 0;
}

/* A JSON string: s with quotes and backslashes escaped. */
static void put_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

/* "name_gflops_1t": x, "name_gflops": y (null when absent). */
static void put_peak(const char *name, const bench_peak *p)
{
    if (p->present) printf(", \"%s_gflops_1t\": %.2f, \"%s_gflops\": %.2f", name, p->one, name, p->all);
    else printf(", \"%s_gflops_1t\": null, \"%s_gflops\": null", name, name);
}

/* The peak the rows of one dtype are held to: name, at 1 and all threads. */
typedef struct {
    const char *name;
    double one, all;
} held_to;

static held_to better(held_to a, const char *name, const bench_peak *p)
{
    return p->present && p->all > a.all ? (held_to){name, p->one, p->all} : a;
}

/* float32 rows: the best float32 FMA peak; bf16 rows: AMX's if present,
 * else AVX512-BF16's (vdpbf16ps, the avx512bf16 kernels' products), else
 * the float32 one (bf16 is computed in float32 then); f16 rows: the best
 * f16 product rate (AVX512-FP16, else float32 FMA, as attn computes). */
static void probe(int threads)
{
    bench_peak peaks[5] = {bench_avx2_fma(threads), bench_avx512_fma(threads), bench_avx512_fp16(threads),
                           bench_avx512_bf16(threads), bench_amx_bf16(threads)};
    static const char *const names[5] = {"avx2_fma", "avx512_fma", "avx512_fp16", "avx512_bf16", "amx_bf16"};
    printf("{\"cpu\": ");
    put_str(attn__cpu_get()->brand);
    for (int x = 0; x < 5; x++) put_peak(names[x], &peaks[x]);
    printf(", \"absent\": {");
    for (int x = 0, n = 0; x < 5; x++)
        if (!peaks[x].present) {
            printf("%s\"%s\": ", n++ ? ", " : "", names[x]);
            put_str(peaks[x].why);
        }
    held_to f32 = better(better((held_to){"none", 0, 0}, "avx2_fma", &peaks[0]), "avx512_fma", &peaks[1]);
    held_to bf16 = peaks[4].present   ? better((held_to){"none", 0, 0}, "amx_bf16", &peaks[4])
                   : peaks[3].present ? better(f32, "avx512_bf16", &peaks[3])
                                      : f32;
    held_to f16 = better(f32, "avx512_fp16", &peaks[2]);
    printf("}, \"fma_gflops_1t\": %.2f, \"fma_gflops\": %.2f, \"f32_peak\": \"%s\", "
           "\"bf16_peak_gflops_1t\": %.2f, \"bf16_peak_gflops\": %.2f, \"bf16_peak\": \"%s\", "
           "\"f16_peak_gflops_1t\": %.2f, \"f16_peak_gflops\": %.2f, \"f16_peak\": \"%s\"",
           f32.one, f32.all, f32.name, bf16.one, bf16.all, bf16.name, f16.one, f16.all, f16.name);
    printf(", \"read_gbs_1t\": %.2f, \"read_gbs\": %.2f, \"threads\": %d}\n", bench_read_bandwidth(1),
           bench_read_bandwidth(threads), threads);
}

/* Random blocks of type q for a [rows, K] matrix; scales are 2^-7 (and
 * minimums -2^-7): no f16 specials. */
static unsigned char *random_blocks(attn_quant q, long rows, long K, unsigned *seed)
{
    size_t bb = attn_quant_block_bytes(q), n = (size_t)rows * (size_t)(K / 32);
    unsigned char *p = malloc(n * bb);
    if (p == NULL) {
        fprintf(stderr, "attn_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n * bb; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(*seed >> 24);
    }
    for (size_t b = 0; b < n; b++) {
        unsigned char *x = p + b * bb;
        x[0] = 0x00, x[1] = 0x20; /* d = 2^-7 */
        if (q == ATTN_QUANT_Q4_1) x[2] = 0x00, x[3] = 0xa0; /* m = -2^-7 */
    }
    return p;
}

/* The quantized products of SmolLM2-135M (docs/llm.md) over `rows`
 * tokens: per layer (30) the fused Q/K/V call (576 + 192 + 192 columns),
 * O (576), the fused gate/up call (2 x 1536) over K = 576 and down (576
 * columns, K = 1536), all Q4_1, each layer its own weights (66 MB). gemv
 * (`qgemv`, rows = 1, a decode step): also the tied head, 49152 x 576 in
 * Q8_0 (30 MB), so every step streams 96 MB from memory. Otherwise
 * (`qgemm`, a prompt of `rows` tokens) the head is left out, as the model computes it for
 * the last token only, and the figure is GFLOP/s beside the AVX2 FMA peak
 * of the same threads measured in the same run. */
static int quant_steps(const shape *s, long rows, bool gemv)
{
    enum { L = 30 };
    const long d = 576, ff = 1536, vocab = 49152;
    unsigned seed = 7;
    attn_quant_matrix qkv[L][3], o[L], gu[L][2], down[L], head;
    double bytes = 0;
    for (int l = 0; l < L; l++) {
        long r3[3] = {576, 192, 192};
        for (int m = 0; m < 3; m++)
            qkv[l][m] = (attn_quant_matrix){random_blocks(ATTN_QUANT_Q4_1, r3[m], d, &seed), ATTN_QUANT_Q4_1, r3[m]};
        o[l] = (attn_quant_matrix){random_blocks(ATTN_QUANT_Q4_1, d, d, &seed), ATTN_QUANT_Q4_1, d};
        for (int m = 0; m < 2; m++)
            gu[l][m] = (attn_quant_matrix){random_blocks(ATTN_QUANT_Q4_1, ff, d, &seed), ATTN_QUANT_Q4_1, ff};
        down[l] = (attn_quant_matrix){random_blocks(ATTN_QUANT_Q4_1, d, ff, &seed), ATTN_QUANT_Q4_1, d};
        bytes += (double)(960 * d + d * d + 2 * ff * d + d * ff) / 32.0 * 20.0;
    }
    double flops = 2.0 * (double)rows * L * (double)(960 * d + d * d + 2 * ff * d + d * ff);
    head = (attn_quant_matrix){gemv ? random_blocks(ATTN_QUANT_Q8_0, vocab, d, &seed) : NULL, ATTN_QUANT_Q8_0, vocab};
    double head_bytes = (double)(vocab * d) / 32.0 * 34.0;
    float *x = filled((size_t)(rows * ff), 11, ATTN_DTYPE_F32), *y0 = filled((size_t)(rows * ff), 12, ATTN_DTYPE_F32);
    float *y1 = filled((size_t)(rows * ff), 13, ATTN_DTYPE_F32), *y2 = filled((size_t)(rows * ff), 14, ATTN_DTYPE_F32);
    float *logits = gemv ? filled((size_t)vocab, 15, ATTN_DTYPE_F32) : NULL;
    attn_ctx *ctx;
    die(attn_ctx_create((int)s->threads, &ctx), "attn_ctx_create");
    force_kernel(ctx, s->kernel);
    double *tl = calloc((size_t)s->reps, sizeof(double)), *th = calloc((size_t)s->reps, sizeof(double));
    for (long r = -1; r < s->reps; r++) { /* r = -1: the warm-up */
        double t0 = now();
        for (int l = 0; l < L; l++) {
            float *out3[3] = {y0, y1, y2}, *out1[1] = {y0}, *out2[2] = {y1, y2};
            die(attn_quant_matmul(ctx, x, rows, d, qkv[l], 3, out3), "qkv");
            die(attn_quant_matmul(ctx, x, rows, d, &o[l], 1, out1), "o");
            die(attn_quant_matmul(ctx, x, rows, d, gu[l], 2, out2), "gate/up");
            die(attn_quant_matmul(ctx, x, rows, ff, &down[l], 1, out1), "down");
        }
        double t1 = now();
        if (gemv) {
            float *outh[1] = {logits};
            die(attn_quant_matmul(ctx, x, 1, d, &head, 1, outh), "head");
        }
        double t2 = now();
        if (r >= 0) tl[r] = t1 - t0, th[r] = t2 - t1;
    }
    qsort(tl, (size_t)s->reps, sizeof(double), cmp_double);
    qsort(th, (size_t)s->reps, sizeof(double), cmp_double);
    double ml = tl[s->reps / 2], mh = th[s->reps / 2];
    const char *cpu = attn__cpu_get()->brand, *kernel = attn_kernel_name(attn_ctx_resolved_kernel(ctx));
    if (gemv)
        printf("{\"bench\": \"qgemv\", \"model\": \"SmolLM2-135M decode step\", \"cpu\": \"%s\", \"kernel\": \"%s\", "
               "\"threads\": %ld, \"reps\": %ld, \"layers_ms\": %.3f, \"layers_gbs\": %.2f, \"head_ms\": %.3f, "
               "\"head_gbs\": %.2f, \"step_ms\": %.3f, \"step_gbs\": %.2f}\n",
               cpu, kernel, s->threads, s->reps, ml * 1e3, bytes / ml / 1e9, mh * 1e3, head_bytes / mh / 1e9,
               (ml + mh) * 1e3, (bytes + head_bytes) / (ml + mh) / 1e9);
    else {
        bench_peak peak = bench_avx2_fma((int)s->threads);
        printf("{\"bench\": \"qgemm\", \"model\": \"SmolLM2-135M prompt, layers\", \"cpu\": \"%s\", "
               "\"kernel\": \"%s\", \"threads\": %ld, \"reps\": %ld, \"rows\": %ld, \"ms\": %.3f, "
               "\"gflops\": %.2f, \"avx2_fma_peak_gflops\": %.2f, \"of_peak\": %.3f}\n",
               cpu, kernel, s->threads, s->reps, rows, ml * 1e3, flops / ml / 1e9, peak.all,
               flops / ml / 1e9 / peak.all);
    }
    attn_ctx_free(ctx);
    return 0;
}

/* The toolkit's GEMM over MiniLM's dense products (attn_bench gemm). */
static int gemm_bench(const shape *s)
{
    enum { N_PROD = 4 };
    const int64_t outs[N_PROD] = {1152, 384, 1536, 384}, ins[N_PROD] = {384, 384, 384, 1536};
    bool bf16 = !strcmp(s->dtype, "bf16");
    attn_ctx *ctx;
    die(attn_ctx_create(1, &ctx), "attn_ctx_create");
    force_kernel(ctx, s->kernel);
    const attn__toolkit_kernels *tk = attn__ctx_toolkit(ctx);
    const attn__gemm_kernel *k = bf16 ? tk->gemm_bf16 : tk->gemm;
    printf("{\"bench\": \"gemm\", \"model\": \"all-MiniLM-L6-v2 dense products\", \"cpu\": \"%s\", "
           "\"kernel\": \"%s\", \"dtype\": \"%s\", \"threads\": 1, \"rows\": %ld, \"reps\": %ld, \"products\": [",
           attn__cpu_get()->brand, k->name, bf16 ? "bf16" : "f32", s->rows, s->reps);
    double *t = calloc((size_t)s->reps, sizeof(double)); /* checked with the panels */
    for (int x = 0; x < N_PROD; x++) {
        int64_t M = s->rows, N = outs[x], K = ins[x], np = attn__gemm_packed_floats(k, N, K);
        float *a = filled((size_t)(M * K), 21, ATTN_DTYPE_F32), *w = filled((size_t)(N * K), 22, ATTN_DTYPE_F32);
        float *c = filled((size_t)(M * N), 23, ATTN_DTYPE_F32), *bp = NULL;
        uint16_t *bp16 = NULL;
        if (bf16)
            bp16 = malloc((size_t)np * sizeof(uint16_t));
        else
            bp = malloc((size_t)np * sizeof(float));
        if ((bf16 && bp16 == NULL) || (!bf16 && bp == NULL) || t == NULL) die(ATTN_NO_MEMORY, "malloc");
        if (bf16) {
            attn__round_bf16(a, M * K, a);
            attn__gemm_pack_b_bf16(k, w, K, ATTN__GEMM_T, N, K, bp16);
        } else {
            attn__gemm_pack_b(k, w, K, ATTN__GEMM_T, N, K, bp);
        }
        attn__gemm_args g = {M, N, K, ATTN__GEMM_N, ATTN__GEMM_T, a, w, bp, K, K, 0.0f, c, N, bp16};
        for (long r = -1; r < s->reps; r++) { /* r = -1: the warm-up */
            double t0 = now();
            attn__gemm_serial(k, &g);
            if (r >= 0) t[r] = now() - t0;
        }
        qsort(t, (size_t)s->reps, sizeof(double), cmp_double);
        printf("%s{\"M\": %ld, \"N\": %ld, \"K\": %ld, \"ms\": %.3f, \"gflops\": %.1f}", x ? ", " : "", (long)M,
               (long)N, (long)K, t[s->reps / 2] * 1e3, 2.0 * (double)(M * N * K) / t[s->reps / 2] / 1e9);
        free(a);
        free(w);
        free(c);
        free(bp);
        free(bp16);
    }
    printf("]}\n");
    free(t);
    attn_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    shape s = {"fwd", "none", NULL, "f32", NULL, 1, 8, 8, 1024, 1024, 64, 1, 5, 0, 512, 0, {0}, {0}, false};
    if (argc < 2) {
        fprintf(stderr, "usage: attn_bench probe [--threads N] | run --mode M --B .. --Hq .. --Hkv .. "
                        "--Sq .. --Sk .. --D .. --mask none|causal|window:W|padding [--dtype f32|bf16|f16] "
                        "[--kv-dtype bf16|f16] [--threads N] [--reps R] [--kernel K] [--layout bshd|bhsd]\n");
        return 2;
    }
    for (int a = 2; a + 1 < argc; a += 2) {
        const char *k = argv[a], *v = argv[a + 1];
        if (!strcmp(k, "--mode")) s.mode = v;
        else if (!strcmp(k, "--mask")) s.mask = v;
        else if (!strcmp(k, "--kernel")) s.kernel = v;
        else if (!strcmp(k, "--dtype")) s.dtype = v;
        else if (!strcmp(k, "--kv-dtype")) s.kv_dtype = v;
        else if (!strcmp(k, "--B")) s.B = atol(v);
        else if (!strcmp(k, "--Hq")) s.Hq = atol(v);
        else if (!strcmp(k, "--Hkv")) s.Hkv = atol(v);
        else if (!strcmp(k, "--Sq")) s.Sq = atol(v);
        else if (!strcmp(k, "--Sk")) s.Sk = atol(v);
        else if (!strcmp(k, "--D")) s.D = atol(v);
        else if (!strcmp(k, "--threads")) s.threads = atol(v);
        else if (!strcmp(k, "--reps")) s.reps = atol(v);
        else if (!strcmp(k, "--rows")) s.rows = atol(v);
        else if (!strcmp(k, "--layout") && (!strcmp(v, "bshd") || !strcmp(v, "bhsd"))) s.bhsd = !strcmp(v, "bhsd");
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
    if (s.reps < 1 || s.threads < 1 || s.threads > 64 || s.rows < 1 || s.rows > 65536) {
        fprintf(stderr, "attn_bench: --reps must be >= 1, --threads in [1, 64] and --rows in [1, 65536]\n");
        return 2;
    }
    if (dtype_named(s.dtype) == 0 || (s.kv_dtype != NULL && dtype_named(s.kv_dtype) == 0)) {
        fprintf(stderr, "attn_bench: --dtype and --kv-dtype take f32, bf16 or f16\n");
        return 2;
    }
    if (!strcmp(argv[1], "probe")) {
        probe((int)s.threads);
        return 0;
    }
    if (!strcmp(argv[1], "run")) return run(&s);
    if (!strcmp(argv[1], "qgemv")) return quant_steps(&s, 1, true);
    if (!strcmp(argv[1], "qgemm")) return quant_steps(&s, s.rows, false);
    if (!strcmp(argv[1], "gemm")) {
        if (strcmp(s.dtype, "f32") && strcmp(s.dtype, "bf16")) {
            fprintf(stderr, "attn_bench gemm: --dtype takes f32 or bf16\n");
            return 2;
        }
        return gemm_bench(&s);
    }
    fprintf(stderr, "attn_bench: unknown command %s\n", argv[1]);
    return 2;
}
