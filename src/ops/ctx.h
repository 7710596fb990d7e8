/* ctx.h - the context as the operators see it: a thread pool and the
 * kernels its float32 calls run (ctx.c). */
#ifndef ATTN_OPS_CTX_H
#define ATTN_OPS_CTX_H

#include "core/core.h"
#include "kernels/table.h"

struct attn_ctx {
    attn__pool *pool;
    attn_kernel kernel;          /* as chosen: AUTO, REF, TILED, AVX2, ... */
    const attn__kernels *table;  /* the kernels of that choice (REF: portable) */
};

/* The table of a context; NULL for a NULL context. (The libraries above
 * libattn reach its nn.* slots through core/toolkit_kernels.h.) */
const attn__kernels *attn__ctx_kernels(const attn_ctx *ctx);

#endif /* ATTN_OPS_CTX_H */
