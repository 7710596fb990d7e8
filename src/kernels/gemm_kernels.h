/* gemm_kernels.h - the toolkit's float32 GEMM (private; libattn exports it
 * to libattn_nn, which has no other matrix product):
 *
 *   C [M, N] = beta C + op(A) op(B),  beta 0 or 1, row-major,
 *   op(A) [M, K]: A as stored [M, K] (ATTN__GEMM_N) or stored [K, M] (ATTN__GEMM_T),
 *   op(B) [K, N]: B as stored [K, N] (ATTN__GEMM_N) or stored [N, K] (ATTN__GEMM_T).
 *
 * The layouts of a linear layer y = x w^T (w [out, in]): forward N,T; the
 * input gradient dx = dy w: N,N; the weight gradient dw = dy^T x: T,N.
 *
 * B is packed into panels of nr columns, k-major (panel p holds op(B)[k][p*nr + j]
 * at [k][j], zeros past N), either once (a layer's weights,
 * attn__gemm_pack_b) or a panel chunk at a time into a stack buffer as the
 * product runs; A is read in place (the micro-kernel takes its row and k
 * strides, so both layouts of A need no copy). A micro-kernel computes an
 * mr x nr tile in registers over a chunk of k. Every element of C is one
 * chain c = fma(a_k, b_k, c) over k = 0, 1, ... K-1 (c + a_k b_k, rounded
 * twice, in the portable kernel), starting from beta C (or 0): the result
 * does not depend on the blocking, the tile an element falls in, or the
 * thread that computes it. So every thread count gives the same bits (K is
 * never split between threads).
 *
 * A kernel is one descriptor (attn__gemm_kernel) per instruction set:
 * portable C (portable/gemm.c), AVX2+FMA (x86/gemm_avx2.c) and AVX-512
 * (x86/gemm_avx512.c), the last two compiled only when the compiler has the
 * flags. Which one runs is decided in kernels/choice.c from the CPU and the
 * ctx's kernel choice. */
#ifndef ATTN_KERNELS_GEMM_KERNELS_H
#define ATTN_KERNELS_GEMM_KERNELS_H

#include "core/check.h"

#include <attn/attn.h>

#include <stdint.h>

typedef enum { ATTN__GEMM_N = 0, ATTN__GEMM_T = 1 } attn__gemm_op;

/* c [mr, nr] (row stride ldc) = (acc ? c : 0) + a b over kc steps:
 * a(i, k) = a[i * a_rs + k * a_ks] for i < mr (rows mr.. are never read),
 * b the panel chunk [kc][NR]; mr <= MR, nr <= NR (only the mr x nr corner
 * of the tile is read and written). */
typedef void (*attn__gemm_micro_fn)(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks,
                                    const float *b, float *c, int64_t ldc, int mr, int nr,
                                    int acc);

/* The widest panel of any kernel (the stack buffer of a panel chunk). */
enum { ATTN__GEMM_NR_MAX = 32 };

/* dst [kc][NR] = one panel chunk of op(B) when B is stored [N, K]: b
 * points at its first element, b's rows (ldb apart) are the panel's
 * columns: dst[k][j] = b[j ldb + k] for j < w, 0 for w <= j < NR. (The
 * other layout packs by plain row copies.) */
typedef void (*attn__gemm_pack_t_fn)(const float *b, int64_t ldb, int w, int64_t kc, float *dst);

typedef struct attn__gemm_kernel {
    const char *name; /* "portable", "avx2", "avx512" */
    int mr, nr;       /* the micro-kernel's tile; nr <= ATTN__GEMM_NR_MAX */
    attn__gemm_micro_fn micro;
    attn__gemm_pack_t_fn pack_t;
} attn__gemm_kernel;

/* The C packing of a transposed panel chunk, for kernels without a faster
 * one (arguments as attn__gemm_pack_t_fn, with the panel width nr). */
ATTN__SHARED void attn__gemm_pack_t_generic(int nr, const float *b, int64_t ldb, int w,
                                            int64_t kc, float *dst);

/* One product (see the top of this file). bp, if not NULL, is op(B)
 * already packed for this kernel's nr (attn__gemm_pack_b); b is then
 * unused. */
typedef struct attn__gemm_args {
    int64_t M, N, K;
    attn__gemm_op ta, tb;
    const float *a, *b, *bp;
    int64_t lda, ldb;
    float beta; /* 0: C is only written (may hold NaN), 1: accumulated into */
    float *c;
    int64_t ldc;
} attn__gemm_args;

/* The kernels built into this library. */
extern const attn__gemm_kernel attn__gemm_portable;
#if defined(ATTN_HAVE_GEMM_AVX2)
extern const attn__gemm_kernel attn__gemm_avx2;
#endif
#if defined(ATTN_HAVE_GEMM_AVX512)
extern const attn__gemm_kernel attn__gemm_avx512;
#endif

/* ---- the choice (kernels/choice.c) ---------------------------------------- */

/* The kernel for ctx: portable when its kernel is REF or TILED, AVX2 when
 * AVX2, the best the CPU runs when AUTO. */
ATTN__SHARED const attn__gemm_kernel *attn__gemm_kernel_for(const attn_ctx *ctx);
/* The best kernel this CPU runs (what AUTO picks). */
ATTN__SHARED const attn__gemm_kernel *attn__gemm_kernel_best(void);
/* The kernel named "portable", "avx2" or "avx512" if this build has it and
 * the CPU runs it, else NULL with *why (if not NULL) saying what is missing. */
ATTN__SHARED const attn__gemm_kernel *attn__gemm_kernel_named(const char *name,
                                                              const char **why);

/* ---- the driver (portable/gemm.c) ------------------------------------------ */

/* Floats of op(B) [K, N] packed in panels of k's nr. */
ATTN__SHARED int64_t attn__gemm_packed_floats(const attn__gemm_kernel *k, int64_t N, int64_t K);
/* bp = op(B) [K, N] packed in panels of k's nr (b, ldb, tb as in the args). */
ATTN__SHARED void attn__gemm_pack_b(const attn__gemm_kernel *k, const float *b, int64_t ldb,
                                    attn__gemm_op tb, int64_t N, int64_t K, float *bp);
/* The product g on the calling thread with kernel k, for callers that
 * split the work themselves (inside their own ctx tasks). Without g->bp,
 * op(B) is packed a panel chunk at a time into a buffer on the stack. */
ATTN__SHARED void attn__gemm_serial(const attn__gemm_kernel *k, const attn__gemm_args *g);
/* The product g on ctx's threads with attn__gemm_kernel_for(ctx) (g->bp,
 * if given, packed for that kernel), split by blocks of C. Arguments are
 * the caller's to check. Allocates nothing and cannot fail. */
ATTN__SHARED void attn__gemm(attn_ctx *ctx, const attn__gemm_args *g);

#endif /* ATTN_KERNELS_GEMM_KERNELS_H */
