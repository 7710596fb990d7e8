/* ctx.c - the context: a thread pool and the kernel choice, checked
 * against what the CPU, its OS and this build allow (the kernel table,
 * src/kernels/table.c). ATTN_KERNEL in the environment sets the initial
 * choice. The context sits in src/ops because it joins the core's pool and
 * the kernels' table. */
#include "ops/ctx.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_THREADS = 1024, N_KERNELS = ATTN_KERNEL_AVX512BF16 + 1, WHY_CAP = 512 };

/* The table for kernel, or ATTN_UNSUPPORTED from fn naming what is missing;
 * what: how the caller asked ("kernel avx512", "ATTN_KERNEL=avx512"). */
static attn_status choose(attn_kernel kernel, const char *fn, const char *what,
                          const attn__kernels **table)
{
    char why[WHY_CAP];
    *table = attn__kernels_get(kernel, why, sizeof why);
    if (*table == NULL)
        return attn_fail(ATTN_UNSUPPORTED, "%s: %s is not available: %s", fn, what, why);
    return ATTN_OK;
}

/* The choice ATTN_KERNEL asks for (unset or empty: auto). */
static attn_status kernel_from_env(attn_kernel *kernel)
{
    const char *e = getenv("ATTN_KERNEL");
    *kernel = ATTN_KERNEL_AUTO;
    if (e == NULL || e[0] == '\0') return ATTN_OK;
    for (int k = 0; k < N_KERNELS; k++)
        if (strcmp(e, attn_kernel_name((attn_kernel)k)) == 0) {
            *kernel = (attn_kernel)k;
            return ATTN_OK;
        }
    return attn_fail(ATTN_BAD_PARAM, "attn_ctx_create: the environment variable ATTN_KERNEL is '%.64s'; "
                     "it must be one of ref, tiled, avx2, avx512, avx512bf16, amx, auto (or unset)", e);
}

attn_status attn_ctx_create(int n_threads, attn_ctx **out)
{
    attn__clear_error();
    ATTN__NOT_NULL("attn_ctx_create", out);
    *out = NULL;
    if (n_threads < 0 || n_threads > MAX_THREADS)
        return attn_fail(ATTN_BAD_PARAM, "attn_ctx_create: n_threads is %d; it must be in [0, %d]",
                         n_threads, MAX_THREADS);
    attn_kernel kernel;
    const attn__kernels *table;
    attn_status st = kernel_from_env(&kernel);
    if (st != ATTN_OK) return st;
    char what[32] = "ATTN_KERNEL=";
    strcat(what, attn_kernel_name(kernel));
    if ((st = choose(kernel, "attn_ctx_create", what, &table)) != ATTN_OK) return st;
    if (n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
    }
    attn_ctx *ctx = attn__calloc(1, sizeof *ctx);
    if (ctx == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_ctx_create: out of memory");
    if ((st = attn__pool_create(n_threads, &ctx->pool)) != ATTN_OK) {
        attn__free(ctx);
        return st;
    }
    ctx->kernel = kernel;
    ctx->table = table;
    ctx->keep_min = ATTN__KEEP_MIN;
    *out = ctx;
    return ATTN_OK;
}

/* ---- the buffers of calls (ctx.h) ---------------------------------------- */

enum { KEEP_AGE = 64 };

static bool hooks_now(const attn__buf *b)
{
    attn_alloc_fn a;
    attn_free_fn f;
    void *u;
    attn__alloc_hooks(&a, &f, &u);
    return b->alloc == a && b->release == f && b->user == u;
}

static void drop(attn__buf *b)
{
    if (b->ptr != NULL) b->release(b->ptr, b->user);
    memset(b, 0, sizeof *b);
}

void *attn__ctx_take(attn_ctx *ctx, size_t bytes, bool zeroed)
{
    if (bytes < ctx->keep_min) return zeroed ? attn__calloc(1, bytes) : attn__malloc(bytes);
    attn__buf *fit = NULL, *slot = NULL;
    for (int x = 0; x < ATTN__KEPT; x++) {
        attn__buf *b = &ctx->kept[x];
        if (b->ptr != NULL && b->bytes >= bytes && b->bytes / 2 <= bytes && hooks_now(b) &&
            (fit == NULL || b->bytes < fit->bytes))
            fit = b;
    }
    for (int x = 0; x < ATTN__LENT && slot == NULL; x++)
        if (ctx->lent[x].ptr == NULL) slot = &ctx->lent[x];
    attn__buf got;
    if (fit != NULL) {
        got = *fit;
        memset(fit, 0, sizeof *fit);
    } else {
        memset(&got, 0, sizeof got);
        if ((got.ptr = attn__malloc(bytes)) == NULL) return NULL;
        got.bytes = bytes;
        attn__alloc_hooks(&got.alloc, &got.release, &got.user);
    }
    got.stamp = ++ctx->takes;
    if (zeroed) memset(got.ptr, 0, bytes);
    if (slot != NULL) *slot = got; /* else untracked: attn__ctx_give frees it */
    return got.ptr;
}

void attn__ctx_give(attn_ctx *ctx, void *p)
{
    if (p == NULL) return;
    attn__buf b, *slot = NULL;
    int x = 0;
    for (; x < ATTN__LENT && ctx->lent[x].ptr != p; x++) {}
    if (x == ATTN__LENT) {
        attn__free(p);
        return;
    }
    b = ctx->lent[x];
    memset(&ctx->lent[x], 0, sizeof ctx->lent[x]);
    for (x = 0; x < ATTN__KEPT; x++) { /* age out, then a free slot or the least recently taken */
        attn__buf *k = &ctx->kept[x];
        if (k->ptr != NULL && k->stamp + KEEP_AGE < ctx->takes) drop(k);
        if (slot == NULL || k->ptr == NULL || (slot->ptr != NULL && k->stamp < slot->stamp)) slot = k;
    }
    if (!hooks_now(&b) || (slot->ptr != NULL && slot->stamp > b.stamp)) {
        drop(&b);
        return;
    }
    drop(slot);
    *slot = b;
}

void attn_ctx_trim(attn_ctx *ctx)
{
    if (ctx == NULL) return;
    for (int x = 0; x < ATTN__KEPT; x++) drop(&ctx->kept[x]);
}

void attn_ctx_free(attn_ctx *ctx)
{
    if (ctx == NULL) return;
    attn__pool_free(ctx->pool);
    attn_ctx_trim(ctx);
    for (int x = 0; x < ATTN__LENT; x++) drop(&ctx->lent[x]); /* none after a call; for safety */
    attn__free(ctx);
}

void attn__ctx_run(attn_ctx *ctx, int64_t n_tasks, attn__task_fn fn, void *arg)
{
    attn__pool_run(ctx->pool, n_tasks, fn, arg);
}

int attn_ctx_threads(const attn_ctx *ctx)
{
    return ctx == NULL ? 0 : attn__pool_threads(ctx->pool);
}

attn_status attn_ctx_set_kernel(attn_ctx *ctx, attn_kernel kernel)
{
    attn__clear_error();
    ATTN__NOT_NULL("attn_ctx_set_kernel", ctx);
    if ((int)kernel < 0 || (int)kernel >= N_KERNELS)
        return attn_fail(ATTN_BAD_PARAM, "attn_ctx_set_kernel: argument 'kernel' is %d; it must be an "
                         "attn_kernel value", (int)kernel);
    const attn__kernels *table;
    char what[32] = "kernel ";
    strcat(what, attn_kernel_name(kernel));
    attn_status st = choose(kernel, "attn_ctx_set_kernel", what, &table);
    if (st != ATTN_OK) return st;
    ctx->kernel = kernel;
    ctx->table = table;
    return ATTN_OK;
}

attn_kernel attn_ctx_kernel(const attn_ctx *ctx)
{
    return ctx == NULL ? ATTN_KERNEL_AUTO : ctx->kernel;
}

attn_kernel attn_ctx_resolved_kernel(const attn_ctx *ctx)
{
    if (ctx != NULL && ctx->kernel == ATTN_KERNEL_REF) return ATTN_KERNEL_REF;
    return ctx != NULL ? ctx->table->kernel : attn__kernels_get(ATTN_KERNEL_AUTO, NULL, 0)->kernel;
}

const attn__kernels *attn__ctx_kernels(const attn_ctx *ctx)
{
    return ctx == NULL ? NULL : ctx->table;
}

const attn__toolkit_kernels *attn__ctx_toolkit(const attn_ctx *ctx)
{
    return ctx != NULL ? &ctx->table->nn : &attn__kernels_get(ATTN_KERNEL_AUTO, NULL, 0)->nn;
}

attn_status attn_ctx_describe(const attn_ctx *ctx, char *buf, size_t cap, size_t *len)
{
    attn__clear_error();
    const char *fn = "attn_ctx_describe";
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, len);
    if (buf == NULL && cap > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'buf' is NULL and cap is %zu", fn, cap);
    size_t n = attn__kernels_describe(ctx->kernel, NULL, 0);
    if (buf != NULL && cap < n + 1)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' is %zu; the description needs %zu bytes "
                         "(with its NUL)", fn, cap, n + 1);
    if (buf != NULL) attn__kernels_describe(ctx->kernel, buf, cap);
    *len = n;
    return ATTN_OK;
}
