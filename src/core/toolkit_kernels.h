/* toolkit_kernels.h - the toolkit's slots of the kernel table
 * (src/kernels/table.h) as the libraries above libattn see them, and the
 * GEMM driver that runs the nn.gemm slot. Not installed; not API.
 *
 * The dense product, float32, row-major:
 *
 *   C [M, N] = beta C + op(A) op(B),  beta 0 or 1,
 *   op(A) [M, K]: A as stored [M, K] (ATTN__GEMM_N) or stored [K, M] (ATTN__GEMM_T),
 *   op(B) [K, N]: B as stored [K, N] (ATTN__GEMM_N) or stored [N, K] (ATTN__GEMM_T).
 *
 * The layouts of a linear layer y = x w^T (w [out, in]): forward N,T; the
 * input gradient dx = dy w: N,N; the weight gradient dw = dy^T x: T,N.
 *
 * op(B) is packed into panels of nr columns, k-major (panel p holds
 * op(B)[k][p*nr + j] at [k][j], zeros past N), either once (a layer's
 * weights, attn__gemm_pack_b) or a panel chunk at a time into a stack
 * buffer as the product runs; A is read in place (the micro-kernel takes
 * its row and k strides, so neither layout of A is copied), or, for the
 * bfloat16 kernels that want their own layout of A (pack_a), a tile of A
 * at a time is copied once per chunk of k and group of panels and used by
 * every panel of the group. A micro-kernel
 * computes an mr x nr tile in registers over a chunk of k. Every element of
 * C is one chain c = fma(a_k, b_k, c) over k = 0, 1, ... K-1 (c + a_k b_k,
 * rounded twice, in the portable kernel), starting from beta C (or 0): the
 * result does not depend on the blocking, the tile an element falls in, or
 * the thread that computes it. So every thread count gives the same bits
 * (K is never split between threads).
 *
 * The row kernels: LayerNorm, GELU with a bias and its derivative, and the
 * log-sum-exp that normalises a softmax row; statistics and GELU's normal
 * CDF in double (src/kernels/rows_impl.h). */
#ifndef ATTN_CORE_TOOLKIT_KERNELS_H
#define ATTN_CORE_TOOLKIT_KERNELS_H

#include "core/check.h"

#include <attn/attn.h>

#include <stdint.h>

/* ---- the GEMM kernel of a slot -------------------------------------------------- */

typedef enum { ATTN__GEMM_N = 0, ATTN__GEMM_T = 1 } attn__gemm_op;

/* c [mr, nr] (row stride ldc) = (acc ? c : 0) + a b over kc steps:
 * a(i, k) = a[i * a_rs + k * a_ks] for i < mr (rows mr.. are never read),
 * b the panel chunk [kc][NR]; mr <= MR, nr <= NR (only the mr x nr corner
 * of the tile is read and written). */
typedef void (*attn__gemm_micro_fn)(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks,
                                    const float *b, float *c, int64_t ldc, int mr, int nr,
                                    int acc);

/* dst [kc][NR] = one panel chunk of op(B) when B is stored [N, K]: b
 * points at its first element, b's rows (ldb apart) are the panel's
 * columns: dst[k][j] = b[j ldb + k] for j < w, 0 for w <= j < NR. (The
 * other layout packs by plain row copies.) */
typedef void (*attn__gemm_pack_t_fn)(const float *b, int64_t ldb, int w, int64_t kc, float *dst);

/* The same product with op(B) in bfloat16 (attn_dtype BF16: the high
 * half of a float32's bits): b the panel chunk [kc][NR] of 16-bit values,
 * each widened to float32 exactly. When the caller rounds A to bfloat16
 * values too (attn__round_bf16), every product a b is exact in float32
 * (8 + 8 significant bits), so the fused and the unfused chain give the
 * same bits, and every kernel gives the same C. */
typedef void (*attn__gemm_micro_bf16_fn)(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks,
                                         const uint16_t *b, float *c, int64_t ldc, int mr, int nr,
                                         int acc);

/* A tile of A in a kernel's own layout: rows [0, mr) of a (a(i, k) =
 * a[i * a_rs + k * a_ks], bfloat16 values held in floats) over kc steps
 * written to dst (at most ATTN__GEMM_APACK_MAX bytes), the rows past mr
 * and the k past kc (up to the kernel's kpad) as zeros. The driver packs
 * each tile of A once per chunk of k and group of panels (NC columns) and
 * passes it to every panel of the group. */
typedef void (*attn__gemm_pack_a_fn)(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks, int mr,
                                     void *dst);
/* The bfloat16 product over a tile of A packed by the kernel's pack_a. */
typedef void (*attn__gemm_micro_ap_fn)(int64_t kc, const void *ap, const uint16_t *b, float *c,
                                       int64_t ldc, int mr, int nr, int acc);

/* The widest panel of any kernel (the stack buffer of a panel chunk), the
 * largest packed tile of A (AMX's 32 rows x 256 k in bfloat16). */
enum { ATTN__GEMM_NR_MAX = 32, ATTN__GEMM_APACK_MAX = 32 * 256 * 2 };

typedef struct attn__gemm_kernel {
    const char *name; /* "portable", "avx2", "avx512", "avx512bf16", "amx" */
    int mr, nr;       /* the micro-kernel's tile; nr <= ATTN__GEMM_NR_MAX */
    attn__gemm_micro_fn micro;           /* NULL: bfloat16 products only (AMX) */
    attn__gemm_pack_t_fn pack_t;
    attn__gemm_micro_bf16_fn micro_bf16; /* op(B) in bfloat16 panels, A as floats; or NULL and: */
    attn__gemm_pack_a_fn pack_a;         /* A packed once per tile and chunk of k, */
    attn__gemm_micro_ap_fn micro_ap;     /* then the products over it */
    /* The bfloat16 panels' layout: K rounded up to a multiple of kpad (1,
     * AVX512-BF16's 2, AMX's 32: zero rows past K, and every k chunk but the last a
     * multiple of it), and pairs: element (k, j) of a panel at
     * [k / 2][j][k % 2] (AMX's B operand) instead of [k][j], or, with
     * swapped, at [k / 2][j][1 - k % 2] (k in the high half: AVX512-BF16
     * adds the high half's product first). */
    int kpad;
    bool pairs, swapped;
} attn__gemm_kernel;

/* ---- the slots -------------------------------------------------------------------- */

/* y [d] = (x - mean) * rstd * gamma + beta (beta may be NULL), d > 0,
 * rstd = 1 / sqrt(var + eps), mean and var (biased) in double; writes *mean
 * and *rstd as floats when not NULL. y == x allowed. */
typedef void (*attn__layernorm_row_fn)(const float *x, int64_t d, const float *gamma,
                                       const float *beta, double eps, float *y, float *mean,
                                       float *rstd);
/* y [n] = GELU(x + b) = v Phi(v) with v = x + b (b may be NULL: 0), the erf
 * form, within 1 float ulp; y == x allowed. */
typedef void (*attn__gelu_row_fn)(const float *x, const float *b, int64_t n, float *y);
/* dx [n] += dy * GELU'(x), GELU'(x) = Phi(x) + x phi(x). */
typedef void (*attn__gelu_grad_row_fn)(const float *x, const float *dy, int64_t n, float *dx);
/* log sum_j exp(z[j]) of z [n], n > 0, in double (the max subtracted): the
 * normaliser of softmax(z); -inf entries count 0, a NaN gives NaN. */
typedef double (*attn__softmax_row_fn)(const float *z, int64_t n);
/* g [n] = silu(g) * u = g sigmoid(g) u (SwiGLU's gate), in double and
 * rounded once, within 1 float ulp; -inf in g gives NaN, as g / (1 + e^-g)
 * does. */
typedef void (*attn__swiglu_row_fn)(float *g, const float *u, int64_t n);

typedef struct attn__toolkit_kernels {
    const attn__gemm_kernel *gemm;          /* nn.gemm */
    const attn__gemm_kernel *gemm_bf16;     /* nn.gemm_bf16: products over bfloat16 panels */
    attn__layernorm_row_fn layernorm_row;   /* nn.layernorm_row */
    attn__gelu_row_fn gelu_row;             /* nn.gelu_row: forward */
    attn__gelu_grad_row_fn gelu_grad_row;   /*   and backward */
    attn__softmax_row_fn softmax_row;       /* nn.softmax_row */
    attn__swiglu_row_fn swiglu_row;         /* nn.swiglu_row */
} attn__toolkit_kernels;

/* The toolkit kernels of ctx's kernel choice; with ctx NULL, those of
 * ATTN_KERNEL_AUTO (for layers that take no context). Never NULL. */
ATTN__SHARED const attn__toolkit_kernels *attn__ctx_toolkit(const attn_ctx *ctx);

/* ---- the GEMM driver (src/kernels/portable/gemm.c) ------------------------------ */

/* One product (see the top of this file). bp, if not NULL, is op(B)
 * already packed for the kernel that runs it (attn__gemm_pack_b); b is
 * then unused. bp16, if not NULL, is op(B) rounded to bfloat16 and packed
 * for that kernel (attn__gemm_pack_b_bf16); b and bp are then unused, and
 * the caller rounds A to bfloat16 values for the exact products above. */
typedef struct attn__gemm_args {
    int64_t M, N, K;
    attn__gemm_op ta, tb;
    const float *a, *b, *bp;
    int64_t lda, ldb;
    float beta; /* 0: C is only written (may hold NaN), 1: accumulated into */
    float *c;
    int64_t ldc;
    const uint16_t *bp16;
} attn__gemm_args;

/* Floats of op(B) [K, N] packed in panels of k's nr (elements, for
 * bfloat16 panels: K rounded up to k's kpad). */
ATTN__SHARED int64_t attn__gemm_packed_floats(const attn__gemm_kernel *k, int64_t N, int64_t K);
/* bp = op(B) [K, N] packed in panels of k's nr (b, ldb, tb as in the args). */
ATTN__SHARED void attn__gemm_pack_b(const attn__gemm_kernel *k, const float *b, int64_t ldb,
                                    attn__gemm_op tb, int64_t N, int64_t K, float *bp);
/* bp [attn__gemm_packed_floats] = op(B) rounded to bfloat16 (to nearest,
 * ties to even) and packed in panels of k's nr, as attn__gemm_pack_b. */
ATTN__SHARED void attn__gemm_pack_b_bf16(const attn__gemm_kernel *k, const float *b, int64_t ldb,
                                         attn__gemm_op tb, int64_t N, int64_t K, uint16_t *bp);
/* y [n] = x rounded to bfloat16 (to nearest, ties to even) and widened
 * back to float32: the A of a bfloat16 product. y == x allowed. */
ATTN__SHARED void attn__round_bf16(const float *x, int64_t n, float *y);
/* The product g on the calling thread with kernel k, for callers that
 * split the work themselves (inside their own ctx tasks). Without g->bp,
 * op(B) is packed a panel chunk at a time into a buffer on the stack. */
ATTN__SHARED void attn__gemm_serial(const attn__gemm_kernel *k, const attn__gemm_args *g);
/* The product g on ctx's threads with the nn.gemm kernel of ctx (g->bp, if
 * given, packed for it), split by blocks of C. Arguments are the caller's
 * to check. Allocates nothing and cannot fail. */
ATTN__SHARED void attn__gemm(attn_ctx *ctx, const attn__gemm_args *g);

/* ---- row sums in double, LANES partial sums (the row kernels, src/nn) ---------- */

enum { ATTN__LANES = 8 };

static inline double attn__lanes_total(const double acc[ATTN__LANES])
{
    double s = 0.0;
    for (int k = 0; k < ATTN__LANES; k++) s += acc[k];
    return s;
}

/* sum_i x[i] over x [d] */
static inline double attn__row_sum(const float *x, int64_t d)
{
    double acc[ATTN__LANES] = {0};
    int64_t i = 0;
    for (; i + ATTN__LANES <= d; i += ATTN__LANES)
        for (int k = 0; k < ATTN__LANES; k++) acc[k] += x[i + k];
    for (int k = 0; i + k < d; k++) acc[k] += x[i + k];
    return attn__lanes_total(acc);
}

/* sum_i (x[i] - mu)^2 over x [d] */
static inline double attn__row_sum_sq_dev(const float *x, int64_t d, double mu)
{
    double acc[ATTN__LANES] = {0};
    int64_t i = 0;
    for (; i + ATTN__LANES <= d; i += ATTN__LANES)
        for (int k = 0; k < ATTN__LANES; k++)
            acc[k] += ((double)x[i + k] - mu) * ((double)x[i + k] - mu);
    for (int k = 0; i + k < d; k++) acc[k] += ((double)x[i + k] - mu) * ((double)x[i + k] - mu);
    return attn__lanes_total(acc);
}

#endif /* ATTN_CORE_TOOLKIT_KERNELS_H */
