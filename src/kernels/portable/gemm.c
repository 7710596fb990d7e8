/* gemm.c - the toolkit's GEMM driver (core/toolkit_kernels.h) and its
 * portable micro-kernel.
 *
 * Blocking: K in chunks of at most KC (equal sizes, from K alone) so that a
 * panel chunk [kc][nr] stays in L1 while the row tiles of a block of A
 * stream past it; panels in groups of NC columns so that the block of C
 * stays in L2; A is read in place, except by the bfloat16 kernels with a
 * pack_a (AVX512-BF16, AMX), which get each tile of A in their own layout,
 * made once per chunk of k for all the panels of a group (a tile outer,
 * the panels inner: the group's panel chunks stay in L2). op(B) comes
 * packed (a layer's weights, packed at load time) or is packed one panel
 * chunk at a time into a buffer on the stack, once per block of rows:
 * nothing is allocated, so no
 * call can fail. Threads take blocks of C: blocks of at most ROWS rows
 * (ROWS_PACKING when they pack B, so that each packing serves more rows)
 * times groups of whole panels, about TASKS_PER_THREAD per thread. K is
 * never split between threads; as every element is computed the same way
 * in any block, the blocks may depend on the thread count. */
#include "kernels/nn_kernels.h"

#include "core/half.h"
#include "core/run.h"

#include <string.h>

enum {
    KC = 256,            /* k per chunk at most */
    KC_T = 128,          /* the same, A stored [K, M] */
    ROWS = 120,          /* rows of C per block at most, B packed (a multiple of 4, 6, 8) */
    ROWS_PACKING = 240,  /* the same, B packed per block */
    NC = 256,            /* columns of C per group (its block stays in L2) */
    TASKS_PER_THREAD = 4, /* blocks of C to aim for per thread (at least 8) */
    TASK_WORK = 1 << 19, /* multiply-adds a task does at least (~20 us): */
                         /* below, waking threads costs more than it saves */
    ALIGN = 64           /* bytes: the stack panel starts on a cache line */
};

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* p rounded up to the next ALIGN bytes (buffers have ALIGN spare bytes). */
static float *aligned(float *p)
{
    uintptr_t r = (uintptr_t)p % ALIGN;
    return r ? (float *)(void *)((char *)p + (ALIGN - r)) : p;
}

/* ---- the portable micro-kernel: 4 x 8 in plain C, vectorised by the compiler */

enum { P_MR = 4, P_NR = 8 };

static void micro_portable(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks,
                           const float *b, float *c, int64_t ldc, int mr, int nr, int acc)
{
    float t[P_MR][P_NR];
    int64_t off[P_MR];
    for (int i = 0; i < P_MR; i++) {
        off[i] = (i < mr ? i : 0) * a_rs; /* rows past mr repeat row 0, never stored */
        for (int j = 0; j < P_NR; j++) t[i][j] = acc && i < mr && j < nr ? c[i * ldc + j] : 0.0f;
    }
    for (int64_t k = 0; k < kc; k++, a += a_ks, b += P_NR)
        for (int i = 0; i < P_MR; i++) {
            float av = a[off[i]];
            for (int j = 0; j < P_NR; j++) t[i][j] += av * b[j];
        }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = t[i][j];
}

/* The same with B in bfloat16 panels (core/toolkit_kernels.h). */
static void micro_portable_bf16(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks,
                                const uint16_t *b, float *c, int64_t ldc, int mr, int nr, int acc)
{
    float t[P_MR][P_NR];
    int64_t off[P_MR];
    for (int i = 0; i < P_MR; i++) {
        off[i] = (i < mr ? i : 0) * a_rs;
        for (int j = 0; j < P_NR; j++) t[i][j] = acc && i < mr && j < nr ? c[i * ldc + j] : 0.0f;
    }
    for (int64_t k = 0; k < kc; k++, a += a_ks, b += P_NR) {
        float bk[P_NR];
        for (int j = 0; j < P_NR; j++) bk[j] = attn__bf16_to_f32(b[j]);
        for (int i = 0; i < P_MR; i++) {
            float av = a[off[i]];
            for (int j = 0; j < P_NR; j++) t[i][j] += av * bk[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = t[i][j];
}

/* ---- packing ------------------------------------------------------------------ */

int64_t attn__gemm_packed_floats(const attn__gemm_kernel *k, int64_t N, int64_t K)
{
    return cdiv(N, k->nr) * k->nr * (cdiv(K, k->kpad) * k->kpad);
}

void attn__gemm_pack_t_generic(int nr, const float *b, int64_t ldb, int w, int64_t kc, float *dst)
{
    for (int64_t j = 0; j < w; j++)
        for (int64_t k = 0; k < kc; k++) dst[k * nr + j] = b[j * ldb + k];
    for (int64_t k = 0; k < kc; k++)
        for (int64_t j = w; j < nr; j++) dst[k * nr + j] = 0.0f;
}

static void pack_t_portable(const float *b, int64_t ldb, int w, int64_t kc, float *dst)
{
    attn__gemm_pack_t_generic(P_NR, b, ldb, w, kc, dst);
}

const attn__gemm_kernel attn__gemm_portable = {.name = "portable",
                                               .mr = P_MR,
                                               .nr = P_NR,
                                               .micro = micro_portable,
                                               .pack_t = pack_t_portable,
                                               .micro_bf16 = micro_portable_bf16,
                                               .kpad = 1};

/* dst = op(B)[k0 .. k0 + kc, n0 .. n0 + nc] in panels of k's nr columns,
 * panel after panel ([kc][nr] each), zeros past column N. */
static void pack_block(const attn__gemm_kernel *kr, const float *b, int64_t ldb, attn__gemm_op tb,
                       int64_t N, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float *dst)
{
    int nr = kr->nr;
    for (int64_t p0 = n0; p0 < n0 + nc; p0 += nr, dst += kc * nr) {
        int w = (int)min64(nr, N - p0);
        if (tb == ATTN__GEMM_N) { /* op(B)[k][n] = b[k ldb + n]: rows of w floats */
            for (int64_t k = 0; k < kc; k++) {
                memcpy(dst + k * nr, b + (k0 + k) * ldb + p0, (size_t)w * sizeof(float));
                for (int64_t j = w; j < nr; j++) dst[k * nr + j] = 0.0f;
            }
        } else { /* op(B)[k][n] = b[n ldb + k]: column j of the panel is row p0 + j of b */
            kr->pack_t(b + p0 * ldb + k0, ldb, w, kc, dst);
        }
    }
}

void attn__gemm_pack_b(const attn__gemm_kernel *k, const float *b, int64_t ldb, attn__gemm_op tb,
                       int64_t N, int64_t K, float *bp)
{
    pack_block(k, b, ldb, tb, N, 0, cdiv(N, k->nr) * k->nr, 0, K, bp);
}

void attn__gemm_pack_b_bf16(const attn__gemm_kernel *k, const float *b, int64_t ldb,
                            attn__gemm_op tb, int64_t N, int64_t K, uint16_t *bp)
{
    int nr = k->nr;
    int64_t kp = cdiv(K, k->kpad) * k->kpad;
    for (int64_t p0 = 0; p0 < N; p0 += nr, bp += kp * nr)
        for (int64_t j = 0; j < nr; j++) /* column j of the panel is column p0 + j of op(B) */
            for (int64_t q = 0; q < kp; q++) {
                float v = p0 + j >= N || q >= K ? 0.0f
                          : tb == ATTN__GEMM_N  ? b[q * ldb + p0 + j]
                                                : b[(p0 + j) * ldb + q];
                bp[k->pairs ? (q / 2 * nr + j) * 2 + (k->swapped ? 1 - q % 2 : q % 2) : q * nr + j] =
                    attn__f32_to_bf16(v);
            }
}

void attn__round_bf16(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = attn__bf16_to_f32(attn__f32_to_bf16(x[i]));
}

/* ---- blocks of C ------------------------------------------------------------------ */

/* K in chunks of equal size, at most KC, or KC_T when A is stored [K, M]:
 * then each k of a tile reads a cache line of A, and kc of those lines and
 * the panel chunk must share L1. */
static int64_t chunk_k(const attn__gemm_kernel *k, const attn__gemm_args *g)
{
    int64_t most = g->ta == ATTN__GEMM_T ? KC_T : KC, kc = cdiv(g->K, cdiv(g->K, most));
    return g->bp16 ? cdiv(kc, k->kpad) * k->kpad : kc; /* bfloat16 panels: chunks of whole kpad */
}

/* C[m0 .. m1, panels p0 .. p1) over k in [k0, k0 + kc), B's panel p chunk at
 * bp + (p - p0) * pstride (already offset to k0), or, with bp NULL, in
 * bfloat16 at bp16 + (p - p0) * pstride. */
static void block(const attn__gemm_kernel *k, const attn__gemm_args *g, int64_t m0, int64_t m1,
                  int64_t p0, int64_t p1, int64_t k0, int64_t kc, const float *bp,
                  const uint16_t *bp16, int64_t pstride)
{
    int acc = k0 > 0 || g->beta != 0.0f;
    int64_t a_rs = g->ta == ATTN__GEMM_N ? g->lda : 1, a_ks = g->ta == ATTN__GEMM_N ? 1 : g->lda;
    if (!bp && k->pack_a) { /* each tile of A packed once for all the panels */
        float buf[ATTN__GEMM_APACK_MAX / sizeof(float) + ALIGN / sizeof(float)], *ap = aligned(buf);
        for (int64_t i = m0; i < m1; i += k->mr) {
            int mr = (int)min64(k->mr, m1 - i);
            k->pack_a(kc, g->a + i * a_rs + k0 * a_ks, a_rs, a_ks, mr, ap);
            for (int64_t p = p0; p < p1; p++)
                k->micro_ap(kc, ap, bp16 + (p - p0) * pstride, g->c + i * g->ldc + p * k->nr, g->ldc, mr,
                            (int)min64(k->nr, g->N - p * k->nr), acc);
        }
        return;
    }
    for (int64_t p = p0; p < p1; p++) {
        int nr = (int)min64(k->nr, g->N - p * k->nr);
        for (int64_t i = m0; i < m1; i += k->mr) {
            int mr = (int)min64(k->mr, m1 - i);
            const float *a = g->a + i * a_rs + k0 * a_ks;
            float *c = g->c + i * g->ldc + p * k->nr;
            if (bp)
                k->micro(kc, a, a_rs, a_ks, bp + (p - p0) * pstride, c, g->ldc, mr, nr, acc);
            else
                k->micro_bf16(kc, a, a_rs, a_ks, bp16 + (p - p0) * pstride, c, g->ldc, mr, nr,
                              acc);
        }
    }
}

/* C[m0 .. m1, panels p0 .. p1): from the whole packed op(B) at bp (or in
 * bfloat16 at g->bp16), or, with neither, packing each panel chunk into a
 * buffer on the stack. Panels go
 * in groups of NC columns, so that the group's block of C stays in L2
 * while the k chunks pass. */
static void block_all_k(const attn__gemm_kernel *k, const attn__gemm_args *g, int64_t m0,
                        int64_t m1, int64_t p0, int64_t p1, const float *bp)
{
    int64_t kc = chunk_k(k, g), group = NC / k->nr;
    int64_t kp = g->bp16 ? cdiv(g->K, k->kpad) * k->kpad : g->K; /* the panels' k extent */
    if (g->bp16) bp = NULL; /* the bfloat16 panels win */
    float stack[KC * ATTN__GEMM_NR_MAX + ALIGN / sizeof(float)], *buf = aligned(stack);
    for (int64_t q0 = p0; q0 < p1; q0 += group) {
        int64_t q1 = min64(p1, q0 + group);
        for (int64_t k0 = 0; k0 < g->K; k0 += kc) {
            int64_t kn = min64(kc, g->K - k0);
            int64_t at = (q0 * kp + k0) * k->nr;
            if (bp || g->bp16) {
                block(k, g, m0, m1, q0, q1, k0, kn, bp ? bp + at : NULL,
                      bp ? NULL : g->bp16 + at, kp * k->nr);
                continue;
            }
            for (int64_t p = q0; p < q1; p++) {
                pack_block(k, g->b, g->ldb, g->tb, g->N, p * k->nr, k->nr, k0, kn, buf);
                block(k, g, m0, m1, p, p + 1, k0, kn, buf, NULL, 0);
            }
        }
    }
}

/* K = 0: C = beta C. */
static void scale_only(const attn__gemm_args *g)
{
    if (g->beta != 0.0f) return;
    for (int64_t i = 0; i < g->M; i++) memset(g->c + i * g->ldc, 0, (size_t)g->N * sizeof(float));
}

/* ---- one thread ----------------------------------------------------------------------- */

void attn__gemm_serial(const attn__gemm_kernel *k, const attn__gemm_args *g)
{
    if (g->M <= 0 || g->N <= 0) return;
    if (g->K <= 0) {
        scale_only(g);
        return;
    }
    block_all_k(k, g, 0, g->M, 0, cdiv(g->N, k->nr), g->bp);
}

/* ---- the ctx's threads ---------------------------------------------------------------- */

/* The blocks of C of one call: rb x cb of them, rows rows (a multiple of
 * mr) by pb panels each (the last ones smaller), dealt to n_tasks tasks in
 * runs of consecutive blocks. */
typedef struct {
    const attn__gemm_kernel *k;
    const attn__gemm_args *g;
    const float *bp;
    int64_t panels, rows, pb, rb, cb, n_tasks;
} plan;

/* Tasks for `work` units done in chunks of at least `unit`, at most `most`. */
static int64_t task_count(int64_t work, int64_t unit, int64_t most)
{
    int64_t n = work / unit;
    return n < 1 ? 1 : min64(n, most);
}

static plan make_plan(const attn__gemm_kernel *k, const attn__gemm_args *g, int threads)
{
    plan p = {k, g, g->bp, cdiv(g->N, k->nr), 0, 0, 0, 0, 0};
    int64_t tiles = cdiv(g->M, k->mr), rb = cdiv(g->M, g->bp || g->bp16 ? ROWS : ROWS_PACKING);
    int64_t work;
    int64_t want = threads * TASKS_PER_THREAD < 8 ? 8 : threads * TASKS_PER_THREAD;
    p.rows = cdiv(tiles, rb) * k->mr;
    p.rb = cdiv(g->M, p.rows);
    int64_t cb = rb >= want ? 1 : min64(p.panels, cdiv(want, rb));
    p.pb = cdiv(p.panels, cb);
    p.cb = cdiv(p.panels, p.pb);
    work = g->M * g->N > INT64_MAX / g->K ? INT64_MAX : g->M * g->N * g->K;
    p.n_tasks = task_count(work, TASK_WORK, p.rb * p.cb);
    return p;
}

static void run_block(void *arg, int64_t task, int tid)
{
    const plan *p = arg;
    int64_t n = p->rb * p->cb, q = n / p->n_tasks, r = n % p->n_tasks;
    int64_t b0 = task * q + min64(task, r), b1 = b0 + q + (task < r);
    (void)tid;
    for (int64_t b = b0; b < b1; b++) {
        int64_t m0 = b / p->cb * p->rows, p0 = b % p->cb * p->pb;
        block_all_k(p->k, p->g, m0, min64(p->g->M, m0 + p->rows), p0,
                    min64(p->panels, p0 + p->pb), p->bp);
    }
}

void attn__gemm(attn_ctx *ctx, const attn__gemm_args *g)
{
    if (g->M <= 0 || g->N <= 0) return;
    if (g->K <= 0) {
        scale_only(g);
        return;
    }
    plan p = make_plan(attn__ctx_toolkit(ctx)->gemm, g, attn_ctx_threads(ctx));
    attn__ctx_run(ctx, p.n_tasks, run_block, &p);
}
