/* row_kernels.h - the toolkit's row kernels (private; libattn exports them
 * to libattn_nn): LayerNorm, GELU with a bias and its derivative, and the
 * log-sum-exp that normalises a softmax row. One implementation
 * (kernels/rows_impl.h), compiled twice: for the baseline ISA
 * (portable/rows.c) and with AVX2+FMA (x86/rows_avx2.c, where the compiler
 * has the flags), so the loops vectorise 4 or 8 floats wide. Row statistics
 * are accumulated in double, in LANES independent partial sums (fixed
 * order, so the loops still vectorise); GELU is computed in double. The
 * double-precision twins are in tests/kernels/test_rows.c. */
#ifndef ATTN_KERNELS_ROW_KERNELS_H
#define ATTN_KERNELS_ROW_KERNELS_H

#include "core/check.h"

#include <attn/attn.h>

#include <stdint.h>

typedef struct attn__row_kernels {
    const char *name; /* "portable", "avx2" */
    /* y [d] = (x - mean) * rstd * gamma + beta (beta may be NULL), d > 0,
     * rstd = 1 / sqrt(var + eps), mean and var (biased) in double; writes
     * *mean and *rstd as floats when not NULL. y == x allowed. */
    void (*layernorm)(const float *x, int64_t d, const float *gamma, const float *beta,
                      double eps, float *y, float *mean, float *rstd);
    /* y [n] = GELU(x + b) = v Phi(v) with v = x + b (b may be NULL: 0);
     * exact (erf) GELU within 1 float ulp; y == x allowed. */
    void (*gelu)(const float *x, const float *b, int64_t n, float *y);
    /* dx [n] += dy * GELU'(x), GELU'(x) = Phi(x) + x phi(x). */
    void (*gelu_backward)(const float *x, const float *dy, int64_t n, float *dx);
    /* log sum_j exp(z[j]) of z [n], n > 0, in double (the max subtracted). */
    double (*logsumexp)(const float *z, int64_t n);
} attn__row_kernels;

extern const attn__row_kernels attn__rows_portable;
#if defined(ATTN_HAVE_ROWS_AVX2)
extern const attn__row_kernels attn__rows_avx2;
#endif

/* The row kernels the CPU runs best (kernels/choice.c). */
ATTN__SHARED const attn__row_kernels *attn__row_kernels_best(void);
/* The row kernels for ctx: portable when its kernel is REF or TILED, else
 * the best. */
ATTN__SHARED const attn__row_kernels *attn__row_kernels_for(const attn_ctx *ctx);
/* The row kernels named "portable" or "avx2" if this build has them and the
 * CPU runs them, else NULL with *why (if not NULL) saying what is missing. */
ATTN__SHARED const attn__row_kernels *attn__row_kernels_named(const char *name, const char **why);

/* ---- row sums in double, LANES partial sums (also used by src/nn/layers.c) -- */

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

#endif /* ATTN_KERNELS_ROW_KERNELS_H */
