/* rows_impl.h - the one implementation of the toolkit's row kernels
 * (core/toolkit_kernels.h's slot types), included by portable/rows.c
 * (baseline flags) and x86/rows_avx2.c (-mavx2 -mfma -ffp-contract=fast):
 * the same C compiled for two vector widths. The includer defines
 * ATTN_ROWS_KERNELS (the attn__row_kernels variable it defines). Row
 * statistics in double, in ATTN__LANES partial sums (a fixed order, so the
 * loops still vectorise); branch-free loops without libm calls. */
#include "kernels/nn_kernels.h"

#include <math.h>
#include <string.h>

#if !defined(ATTN_ROWS_KERNELS)
#error "define ATTN_ROWS_KERNELS before including rows_impl.h"
#endif

/* ---- LayerNorm ---------------------------------------------------------------- */

static void layernorm_row(const float *x, int64_t d, const float *gamma, const float *beta,
                          double eps, float *y, float *mean, float *rstd)
{
    double mu = attn__row_sum(x, d) / (double)d;
    double rs = 1.0 / sqrt(attn__row_sum_sq_dev(x, d, mu) / (double)d + eps);
    if (beta)
        for (int64_t i = 0; i < d; i++) y[i] = (float)(((double)x[i] - mu) * rs) * gamma[i] + beta[i];
    else
        for (int64_t i = 0; i < d; i++) y[i] = (float)(((double)x[i] - mu) * rs) * gamma[i];
    if (mean) *mean = (float)mu;
    if (rstd) *rstd = (float)rs;
}

/* ---- GELU ------------------------------------------------------------------------ */

/* GELU is x Phi(x). Phi comes from the normal tail Q(a) = erfc(a/sqrt2)/2 of
 * a = |x| (Phi = Q for x < 0, 1 - Q otherwise), computed in double without
 * libm calls so the loops vectorise (3x faster than erfcf), and relatively
 * exact in the far negative tail, where 1 + erf(x/sqrt2) would cancel:
 *   Q(a) = e^(-a^2/2) S(a),  S a degree-12 polynomial in u = 7.2/(3 + a) - 1.4
 * (u in [-1, 1] for a in [0, 15]), fitted by weighted least squares in
 * relative error against mpmath: |S_fit/S - 1| < 2e-10 on [0, 15]. Beyond
 * a = 15, Q < 4e-51 is below the float range and taken as 0. */
static const double tail_poly[13] = {
    0.15955558909413148,    0.20952531428283533,     0.10222840561113883,
    0.02859581873690991,    0.001620822532831442,    -0.0014740745723850527,
    -0.00017203349288213467, 0.00012529365675813947, 5.9702108967316092e-06,
    -1.3156255650438597e-05, 1.195126528824586e-06,  1.0597020030089777e-06,
    -2.0453798704744841e-07};

/* Bits of double v, and the double of bits b. */
static inline uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline double double_of(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* e^t for t in [-700, 0]: t = n ln2 + r with |r| <= ln2/2 (ln2 split so
 * n * LN2_HI is exact), e^r by its Taylor series to r^8 (relative error
 * < 2.2e-10, as small as the tail polynomial's fit below and far below a
 * float ulp) in Estrin's scheme (short dependency chains, so that the
 * vector loop is not bound by latency), and 2^n written into the exponent
 * bits. */
static inline double exp_neg(double t)
{
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    const double LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
    double k = t * 1.4426950408889634 + shifter; /* shifter + round(t / ln2) */
    double n = k - shifter;
    double r = (t - n * LN2_HI) - n * LN2_LO, r2 = r * r, r4 = r2 * r2;
    double p03 = (1.0 + r) + r2 * (1.0 / 2 + r * (1.0 / 6));
    double p47 = (1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040));
    double p = p03 + r4 * (p47 + r4 * (1.0 / 40320));
    uint64_t scale_bits = (bits_of(k) - 0x4338000000000000u + 1023u) << 52; /* 2^n */
    return p * double_of(scale_bits);
}

/* S(u) = sum_j tail_poly[j] u^j, |u| <= 1, in Estrin's scheme. */
static inline double tail_sum(double u)
{
    const double *c = tail_poly;
    double u2 = u * u, u4 = u2 * u2;
    double s03 = (c[0] + u * c[1]) + u2 * (c[2] + u * c[3]);
    double s47 = (c[4] + u * c[5]) + u2 * (c[6] + u * c[7]);
    double s8b = (c[8] + u * c[9]) + u2 * (c[10] + u * c[11]);
    return (s03 + u4 * s47) + u4 * u4 * (s8b + u4 * c[12]);
}

/* Phi(x) and the normal density phi(x) of float x, in double. Branch-free
 * for the vectoriser (SSE2 has no 64-bit integer compare, so the clamp of
 * |x| to 15 is done on the float's 32-bit pattern; selects are bit masks).
 * A NaN x gives finite values here and propagates through the caller's x;
 * x = +-inf gives Phi = 1 or 0 and phi = 0. */
static inline double normal_cdf_pdf(float x, double *pdf)
{
    const int32_t a_max = 0x41700000; /* 15.0f */
    uint32_t xb;
    float acf;
    memcpy(&xb, &x, sizeof xb);
    int32_t ab = (int32_t)(xb & 0x7FFFFFFFu), acb = ab < a_max ? ab : a_max;
    memcpy(&acf, &acb, sizeof acf);
    double a = acf, keep = (double)(ab <= a_max); /* keep = 0 beyond 15 (and NaN) */
    double e = exp_neg(-0.5 * a * a) * keep;      /* a * a is exact for a float */
    double q = e * tail_sum(7.2 / (3.0 + a) - 1.4), p = 1.0 - q;
    uint64_t neg = (uint64_t)0 - (uint64_t)(x < 0.0f); /* all ones if x < 0 */
    *pdf = e * 0.39894228040143268;                   /* 1/sqrt(2 pi) */
    return double_of((bits_of(q) & neg) | (bits_of(p) & ~neg));
}

static void gelu_row(const float *x, const float *b, int64_t n, float *y)
{
    double pdf;
    if (b)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] + b[i];
            y[i] = (float)((double)v * normal_cdf_pdf(v, &pdf));
        }
    else
        for (int64_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * normal_cdf_pdf(x[i], &pdf));
}

static void gelu_backward_row(const float *x, const float *dy, int64_t n, float *dx)
{
    for (int64_t i = 0; i < n; i++) { /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        double pdf, cdf = normal_cdf_pdf(x[i], &pdf);
        dx[i] += (float)((double)dy[i] * (cdf + (double)x[i] * pdf));
    }
}

/* ---- the softmax normaliser -------------------------------------------------------- */

static double logsumexp_row(const float *z, int64_t n)
{
    float mx = z[0];
    for (int64_t j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
    double s = 0.0;
    for (int64_t j = 0; j < n; j++) s += exp((double)z[j] - mx);
    return mx + log(s);
}

/* ---- SwiGLU's gate --------------------------------------------------------------- */

/* silu(x) = x sigmoid(x) from e = e^-|x| (exp_neg, no overflow): sigmoid is
 * 1 / (1 + e) for x >= 0 and e / (1 + e) below, so neither side cancels.
 * |x| is clamped to 700 (exp_neg's range) on the float's bit pattern
 * (branch-free, as in normal_cdf_pdf); beyond it e is taken as 0: there
 * |x e^-|x| u| < 2^-870 even for the largest float u, 0 once rounded. A
 * NaN g stays NaN (e = 0, sigmoid 1); g = -inf gives -inf * 0 = NaN, as
 * g / (1 + e^-g) does. */
static void swiglu_row(float *g, const float *u, int64_t n)
{
    const int32_t a_max = 0x442F0000; /* 700.0f */
    for (int64_t i = 0; i < n; i++) {
        float x = g[i], acf;
        uint32_t xb;
        memcpy(&xb, &x, sizeof xb);
        int32_t ab = (int32_t)(xb & 0x7FFFFFFFu), acb = ab < a_max ? ab : a_max;
        memcpy(&acf, &acb, sizeof acf);
        uint64_t keep = (uint64_t)0 - (uint64_t)(ab <= a_max); /* a mask: gcc vectorises this, not a
                                                                  * multiply by (double)(ab <= a_max) */
        double e = double_of(bits_of(exp_neg(-(double)acf)) & keep), r = 1.0 / (1.0 + e);
        double pos = r, neg = e * r;
        uint64_t m = (uint64_t)0 - (uint64_t)(x < 0.0f); /* all ones if x < 0 */
        double sig = double_of((bits_of(neg) & m) | (bits_of(pos) & ~m));
        g[i] = (float)((double)x * sig * (double)u[i]);
    }
}

const attn__row_kernels ATTN_ROWS_KERNELS = {layernorm_row, gelu_row, gelu_backward_row,
                                             logsumexp_row, swiglu_row};
