/* ctx.h - the context as the operators see it: a thread pool and the
 * kernels its float32 calls run (ctx.c). */
#ifndef ATTN_OPS_CTX_H
#define ATTN_OPS_CTX_H

#include "core/core.h"
#include "kernels/table.h"

/* A buffer of a call, lent out or kept for the next calls: its size, when
 * it was last taken (ctx->takes then), and the hooks that allocated it. */
typedef struct {
    void *ptr;
    size_t bytes;
    uint64_t stamp;
    attn_alloc_fn alloc;
    attn_free_fn release;
    void *user;
} attn__buf;

/* ATTN__KEEP_MIN: glibc's malloc maps every allocation of 32 MiB or more
 * afresh and unmaps it on free (its largest mmap threshold), so each call
 * faults such buffers in and the kernel zeroes them; below that its heap
 * serves a repeated request from memory it already holds, and keeping the
 * buffers here measured no faster (a GQA fwd+bwd with 4-9 MB buffers, AMD
 * EPYC Zen 3: 3-5% slower, one thread). */
enum { ATTN__LENT = 16, ATTN__KEPT = 8, ATTN__KEEP_MIN = 32 << 20 };

struct attn_ctx {
    attn__pool *pool;
    attn_kernel kernel;          /* as chosen: AUTO, REF, TILED, AVX2, ... */
    const attn__kernels *table;  /* the kernels of that choice (REF: portable) */
    attn__buf lent[ATTN__LENT];  /* the large buffers the running call holds */
    attn__buf kept[ATTN__KEPT];  /* large buffers kept for the next calls */
    uint64_t takes;              /* buffers taken so far (the buffers' clock) */
    size_t keep_min;             /* the smallest buffer kept: ATTN__KEEP_MIN (tests: less) */
};

/* The buffers of a call (workspaces, packed operands, partial sums): a
 * buffer of bytes (zero-filled if asked; NULL on failure or bytes == 0),
 * and its return once the call is done with it. The context keeps up to
 * ATTN__KEPT returned buffers of ctx->keep_min bytes or more for its next
 * calls (a model calls the same shapes over and over: without them every
 * call maps, and faults in, fresh pages), each reused for a request of at
 * least half its size, freed once 64 such buffers have been taken without
 * it, by attn_ctx_trim, or with the context. One call at a time per context (the
 * public contract), so no lock. */
void *attn__ctx_take(attn_ctx *ctx, size_t bytes, bool zeroed);
void attn__ctx_give(attn_ctx *ctx, void *p);

/* The table of a context; NULL for a NULL context. (The libraries above
 * libattn reach its nn.* slots through core/toolkit_kernels.h.) */
const attn__kernels *attn__ctx_kernels(const attn_ctx *ctx);

#endif /* ATTN_OPS_CTX_H */
