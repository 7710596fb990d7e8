/* test_ctx_buffers.c - the buffers a context keeps between calls (ops/ctx.h):
 * the rules of attn__ctx_take / attn__ctx_give (which buffer is reused, when
 * one is dropped, the allocator hooks), and, through the public API, that
 * repeated calls reuse them, give the bits of a fresh context even when the
 * kept buffers hold garbage, and that attn_ctx_trim and attn_ctx_free
 * release everything. The tests lower the context's threshold
 * (ATTN__KEEP_MIN, 32 MiB) to 1 MiB, so that small problems exercise it. */
#include "problem.h"

#include "ops/ctx.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { MIB = 1 << 20 };

/* Two counting allocators (live allocations, and allocations of at least
 * 1 MiB), told apart by their user pointer. */
typedef struct {
    atomic_long live, big;
} counts;

static void *count_alloc(size_t n, void *user)
{
    counts *c = user;
    void *p = malloc(n);
    if (p != NULL) {
        atomic_fetch_add(&c->live, 1);
        if (n >= MIB) atomic_fetch_add(&c->big, 1);
    }
    return p;
}

static void count_free(void *p, void *user)
{
    counts *c = user;
    atomic_fetch_sub(&c->live, 1);
    free(p);
}

static bool all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *b = p;
    for (size_t x = 0; x < n; x++)
        if (b[x] != v) return false;
    return true;
}

/* The rules, on the internal functions. */
void test_ctx_buffers_rules(void)
{
    static counts ca, cb;
    attn_ctx *ctx = NULL;
    atomic_store(&ca.live, 0);
    atomic_store(&cb.live, 0);
    attn_set_allocator(count_alloc, count_free, &ca);
    T_EQ_STATUS(attn_ctx_create(1, &ctx), ATTN_OK);
    if (ctx == NULL) {
        attn_set_allocator(NULL, NULL, NULL);
        return;
    }
    long base = atomic_load(&ca.live);
    ctx->keep_min = MIB; /* (ATTN__KEEP_MIN is 32 MiB: small buffers here) */

    /* kept on return; reused for a request of at least half the size, the
     * smallest that fits; zero-filled when asked, whatever it held */
    char *a = attn__ctx_take(ctx, 2 * MIB, false), *b = attn__ctx_take(ctx, 3 * MIB, true);
    T_CHECK(a != NULL && b != NULL);
    if (a == NULL || b == NULL) goto out;
    T_CHECK(all_bytes(b, 3 * MIB, 0));
    memset(a, 0xAB, 2 * MIB);
    memset(b, 0xCD, 3 * MIB);
    attn__ctx_give(ctx, a);
    attn__ctx_give(ctx, b);
    T_EQ_INT(atomic_load(&ca.live), base + 2);
    char *c = attn__ctx_take(ctx, 3 * MIB / 2, false); /* fits both: the smaller */
    T_CHECK(c == a);
    char *d = attn__ctx_take(ctx, MIB, false); /* b is more than twice that: a new one */
    T_CHECK(d != NULL && d != b && d != a);
    char *e = attn__ctx_take(ctx, 3 * MIB, true);
    T_CHECK(e == b);
    if (e != NULL) T_CHECK(all_bytes(e, 3 * MIB, 0));
    char *small = attn__ctx_take(ctx, 4096, false); /* below keep_min: never kept */
    T_EQ_INT(atomic_load(&ca.live), base + 4);
    attn__ctx_give(ctx, small);
    attn__ctx_give(ctx, c);
    attn__ctx_give(ctx, d);
    attn__ctx_give(ctx, e);
    T_EQ_INT(atomic_load(&ca.live), base + 3);

    /* other hooks: the kept buffers are not lent under them, and each is
     * freed with the hooks that allocated it */
    attn_set_allocator(count_alloc, count_free, &cb);
    char *f = attn__ctx_take(ctx, 2 * MIB, false);
    T_CHECK(f != NULL && f != a && f != b && f != d);
    T_EQ_INT(atomic_load(&cb.live), 1);
    attn__ctx_give(ctx, f);
    T_EQ_INT(atomic_load(&cb.live), 1); /* kept */
    attn_ctx_trim(ctx);
    T_EQ_INT(atomic_load(&cb.live), 0);
    T_EQ_INT(atomic_load(&ca.live), base);
    attn_set_allocator(count_alloc, count_free, &ca);

    /* at most ATTN__KEPT kept: the least recently taken goes first */
    char *many[ATTN__KEPT + 1];
    for (int x = 0; x <= ATTN__KEPT; x++) many[x] = attn__ctx_take(ctx, (size_t)(x + 1) * MIB, false);
    for (int x = 0; x <= ATTN__KEPT; x++) attn__ctx_give(ctx, many[x]);
    T_EQ_INT(atomic_load(&ca.live), base + ATTN__KEPT);
    T_CHECK(attn__ctx_take(ctx, MIB, false) != many[0]); /* the first was dropped */
    attn_ctx_trim(ctx);
    T_EQ_INT(atomic_load(&ca.live), base + 1); /* the one just taken, lent */
    /* (it stays lent: attn_ctx_free frees it below) */

    /* more at once than the lent table tracks: the rest are plain
     * allocations, freed on return */
    char *lots[ATTN__LENT + 2];
    for (int x = 0; x < ATTN__LENT + 2; x++) lots[x] = attn__ctx_take(ctx, MIB, false);
    for (int x = 0; x < ATTN__LENT + 2; x++) attn__ctx_give(ctx, lots[x]);
    T_CHECK(atomic_load(&ca.live) <= base + 1 + ATTN__KEPT);

    /* a kept buffer not taken while 64 others were is freed */
    attn_ctx_trim(ctx);
    char *old = attn__ctx_take(ctx, 5 * MIB, false);
    attn__ctx_give(ctx, old);
    long with_old = atomic_load(&ca.live);
    for (int x = 0; x < 70; x++) attn__ctx_give(ctx, attn__ctx_take(ctx, MIB, false));
    T_EQ_INT(atomic_load(&ca.live), with_old); /* old gone, one 1 MiB kept instead */
    T_CHECK(attn__ctx_take(ctx, 5 * MIB, false) != NULL); /* (a new one; lent until the context goes) */
out:
    attn_ctx_free(ctx);
    T_EQ_INT(atomic_load(&ca.live), 0);
    attn_set_allocator(NULL, NULL, NULL);
}

static bool same(const double *a, const double *b, int64_t n)
{
    return (a == NULL) == (b == NULL) && (a == NULL || memcmp(a, b, (size_t)n * sizeof(double)) == 0);
}

static bool same_result(const t_problem *P, const t_result *a, const t_result *b)
{
    const t_cfg *c = &P->c;
    return a->status == ATTN_OK && b->status == ATTN_OK && same(a->o, b->o, c->B * c->Sq * c->Hq * c->Dv) &&
           same(a->lse, b->lse, c->B * c->Hq * c->Sq) && same(a->dq, b->dq, c->B * c->Sq * c->Hq * c->Dk) &&
           same(a->dk, b->dk, c->B * c->Sk * c->Hkv * c->Dk) && same(a->dv, b->dv, c->B * c->Sk * c->Hkv * c->Dv) &&
           same(a->dbias, b->dbias, t_numel(P->bias_dim));
}

/* Forward and backward (GQA with 2 kv heads: the fused shares' partial
 * sums; a bias shared by batch and heads with its gradient: its zeroed
 * float32 sums; packed K and V, packed Q and dO), each buffer of 1 MiB or
 * more: the second and third runs on one context allocate none, and all
 * give the bits of a fresh context, the third after its kept buffers were
 * filled with NaN bits. */
void test_ctx_buffers_reused(void)
{
    static counts cc;
    t_cfg c = {.B = 1, .Sq = 1024, .Sk = 1024, .Hq = 4, .Hkv = 2, .Dk = 128, .Dv = 128, .bias_kind = BIAS_SHARED,
               .dbias = true, .causal = 1, .layout = LAYOUT_BSHD, .threads = 2, .seed = 11};
    t_problem P;
    t_problem_make(&P, &c);
    static const attn_kernel kernels[] = {ATTN_KERNEL_AUTO, ATTN_KERNEL_TILED};
    for (size_t x = 0; x < sizeof kernels / sizeof kernels[0]; x++) {
        attn_ctx *fresh = NULL, *ctx = NULL;
        t_result r0, r[3];
        T_EQ_STATUS(attn_ctx_create(2, &fresh), ATTN_OK);
        if (fresh == NULL) break;
        T_EQ_STATUS(attn_ctx_set_kernel(fresh, kernels[x]), ATTN_OK);
        t_run(&P, ATTN_DTYPE_F32, fresh, LAYOUT_BSHD, true, &r0);
        attn_ctx_free(fresh);

        atomic_store(&cc.live, 0);
        attn_set_allocator(count_alloc, count_free, &cc);
        T_EQ_STATUS(attn_ctx_create(2, &ctx), ATTN_OK);
        if (ctx == NULL) {
            attn_set_allocator(NULL, NULL, NULL);
            t_result_free(&r0);
            break;
        }
        T_EQ_STATUS(attn_ctx_set_kernel(ctx, kernels[x]), ATTN_OK);
        ctx->keep_min = MIB;
        long base = atomic_load(&cc.live), big[3];
        for (int run = 0; run < 3; run++) {
            if (run == 2)
                for (int y = 0; y < ATTN__KEPT; y++)
                    if (ctx->kept[y].ptr != NULL) memset(ctx->kept[y].ptr, 0xFF, ctx->kept[y].bytes);
            atomic_store(&cc.big, 0);
            t_run(&P, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, true, &r[run]);
            big[run] = atomic_load(&cc.big);
        }
        T_CHECK(big[0] >= 2);
        T_EQ_INT(big[1], 0);
        T_EQ_INT(big[2], 0);
        T_CHECK(atomic_load(&cc.live) > base);
        attn_ctx_trim(ctx);
        T_EQ_INT(atomic_load(&cc.live), base);
        attn_ctx_free(ctx);
        T_EQ_INT(atomic_load(&cc.live), 0);
        attn_set_allocator(NULL, NULL, NULL);
        for (int run = 0; run < 3; run++) {
            if (!same_result(&P, &r0, &r[run]))
                t_fail(__FILE__, __LINE__, "kernel %s, run %d: not the bits of a fresh context",
                       attn_kernel_name(kernels[x]), run);
            t_checks++;
            t_result_free(&r[run]);
        }
        t_result_free(&r0);
    }
    t_problem_free(&P);
}
