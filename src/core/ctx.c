/* ctx.c - the context: a thread pool and the kernel choice (ATTN_KERNEL
 * in the environment sets the initial one). */
#define _POSIX_C_SOURCE 200809L
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_THREADS = 1024 };

static attn_kernel kernel_from_env(void)
{
    const char *e = getenv("ATTN_KERNEL");
    if (e == NULL) return ATTN_KERNEL_AUTO;
    if (strcmp(e, "ref") == 0) return ATTN_KERNEL_REF;
    if (strcmp(e, "tiled") == 0) return ATTN_KERNEL_TILED;
    if (strcmp(e, "avx2") == 0 && attn__avx2_available()) return ATTN_KERNEL_AVX2;
    return ATTN_KERNEL_AUTO;
}

attn_status attn_ctx_create(int n_threads, attn_ctx **out)
{
    attn__clear_error();
    if (out == NULL) return attn__fail(ATTN_NULL_ARG, "out is NULL");
    *out = NULL;
    if (n_threads < 0 || n_threads > MAX_THREADS)
        return attn__fail(ATTN_BAD_PARAM, "n_threads is %d; it must be in [0, %d]",
                          n_threads, MAX_THREADS);
    if (n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
    }
    attn_ctx *ctx = attn__calloc(1, sizeof *ctx);
    if (ctx == NULL) return attn__fail(ATTN_NO_MEMORY, "attn_ctx_create: out of memory");
    attn_status st = attn__pool_create(n_threads, &ctx->pool);
    if (st != ATTN_OK) {
        attn__free(ctx);
        return st;
    }
    ctx->kernel = kernel_from_env();
    *out = ctx;
    return ATTN_OK;
}

void attn_ctx_free(attn_ctx *ctx)
{
    if (ctx == NULL) return;
    attn__pool_free(ctx->pool);
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
    if (ctx == NULL) return attn__fail(ATTN_NULL_ARG, "ctx is NULL");
    if (kernel != ATTN_KERNEL_AUTO && kernel != ATTN_KERNEL_REF && kernel != ATTN_KERNEL_TILED &&
        kernel != ATTN_KERNEL_AVX2)
        return attn__fail(ATTN_BAD_PARAM, "kernel is %d; it must be an attn_kernel value", (int)kernel);
    if (kernel == ATTN_KERNEL_AVX2 && !attn__avx2_available())
        return attn__fail(ATTN_UNSUPPORTED, "kernel avx2: this CPU or build has no AVX2+FMA");
    ctx->kernel = kernel;
    return ATTN_OK;
}

attn_kernel attn_ctx_kernel(const attn_ctx *ctx)
{
    return ctx == NULL ? ATTN_KERNEL_AUTO : ctx->kernel;
}

attn_kernel attn_ctx_resolved_kernel(const attn_ctx *ctx)
{
    attn_kernel k = attn_ctx_kernel(ctx);
    if (k != ATTN_KERNEL_AUTO) return k;
    return attn__avx2_available() ? ATTN_KERNEL_AVX2 : ATTN_KERNEL_TILED;
}

const char *attn_kernel_name(attn_kernel kernel)
{
    switch (kernel) {
    case ATTN_KERNEL_REF: return "ref";
    case ATTN_KERNEL_TILED: return "tiled";
    case ATTN_KERNEL_AVX2: return "avx2";
    default: return "auto";
    }
}
