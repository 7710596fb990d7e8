/* test_rows.c - the toolkit's row kernels (the nn.layernorm_row,
 * nn.gelu_row, nn.softmax_row and nn.swiglu_row slots of the kernel table,
 * core/toolkit_kernels.h) against double-precision twins written here from
 * the definitions, for each instruction set's own this machine runs
 * (portable, AVX2; an absent one is reported as skipped by name):
 *   LayerNorm   y = (x - mean) / sqrt(var + eps) * gamma + beta, mean and
 *               rstd outputs, with and without beta, in place, every
 *               length residue of the 8 partial sums, large offsets;
 *   GELU        v Phi(v), v = x + b, Phi from erfc: within 1 float ulp over
 *               [-16, 16] (the far tail relatively) and NaN propagating;
 *   GELU'       Phi(x) + x phi(x), accumulated into dx;
 *   logsumexp   of rows with a large spread, and with -inf entries;
 *   SwiGLU      g sigmoid(g) u: within 1 float ulp over [-120, 120] (the
 *               far negative side relatively, to the denormals) and for
 *               far negative gates times huge u; huge, infinite and NaN
 *               gates. */
#include "test.h"

#include "core/toolkit_kernels.h"
#include "kernels/table.h"

#include <stdlib.h>
#include <string.h>

/* The nn slots of instruction set isa's table, if the table runs here and
 * its row slots are that instruction set's own; else NULL, and the test is
 * skipped with the reason. */
static const attn__toolkit_kernels *kernels_or_skip(attn__isa isa)
{
    static char why[600];
    char what[512] = "";
    const attn__kernels *t = attn__kernels_get(attn__isa_kernel(isa), what, sizeof what);
    if (t != NULL && t->filled_by[ATTN__SLOT_GELU_ROW][ATTN__SDPA_F32] == isa) return &t->nn;
    snprintf(why, sizeof why, "rows %s: %s", attn__isa_name(isa),
             t == NULL ? what : "no row kernels of its own in this build");
    t_skip(why);
    return NULL;
}

/* ---- LayerNorm ------------------------------------------------------------------ */

/* Largest |y - twin| / (1 + |twin|) of one row, mean and rstd included. */
static double layernorm_error(const attn__toolkit_kernels *k, const float *x, int64_t d,
                              const float *g, const float *b, double eps, int in_place)
{
    float *y = malloc((size_t)d * sizeof(float)), mean, rstd;
    double mu = 0.0, var = 0.0, worst = 0.0;
    for (int64_t i = 0; i < d; i++) mu += x[i];
    mu /= (double)d;
    for (int64_t i = 0; i < d; i++) var += ((double)x[i] - mu) * ((double)x[i] - mu);
    double rs = 1.0 / sqrt(var / (double)d + eps);
    memcpy(y, x, (size_t)d * sizeof(float));
    k->layernorm_row(in_place ? y : x, d, g, b, eps, y, &mean, &rstd);
    for (int64_t i = 0; i < d; i++) {
        double want = ((double)x[i] - mu) * rs * g[i] + (b ? b[i] : 0.0);
        worst = fmax(worst, fabs(y[i] - want) / (1.0 + fabs(want)));
    }
    worst = fmax(worst, fabs(mean - mu) / (1.0 + fabs(mu)));
    worst = fmax(worst, fabs(rstd - rs) / rs);
    free(y);
    return worst;
}

static void layernorm_checks(const attn__toolkit_kernels *k, double *worst)
{
    uint64_t rng = 31;
    static const int64_t ds[] = {1, 2, 7, 8, 9, 15, 16, 17, 63, 264, 384, 1000};
    for (size_t t = 0; t < sizeof ds / sizeof ds[0]; t++) {
        int64_t d = ds[t];
        float *x = malloc((size_t)d * sizeof(float)), *g = malloc((size_t)d * sizeof(float));
        float *b = malloc((size_t)d * sizeof(float));
        t_fill(&rng, g, d, 0.5, 1.5);
        t_fill(&rng, b, d, -1, 1);
        for (int shift = 0; shift < 2; shift++) { /* a mean far from 0: cancellation */
            t_fill(&rng, x, d, -2, 2);
            for (int64_t i = 0; i < d && shift; i++) x[i] += 1000.0f;
            for (int variant = 0; variant < 3; variant++) {
                double e = layernorm_error(k, x, d, g, variant == 1 ? NULL : b,
                                           variant == 2 ? 0.25 : 1e-5, variant == 2);
                T_LE(e, 2e-6);
                *worst = fmax(*worst, e);
            }
        }
        free(x), free(g), free(b);
    }
}

/* ---- GELU ------------------------------------------------------------------------- */

/* GELU(v) = v Phi(v) and GELU'(v) = Phi(v) + v phi(v), in double. */
static double gelu_twin(double v) { return 0.5 * v * erfc(-v / sqrt(2.0)); }
static double gelu_grad_twin(double v)
{
    return 0.5 * erfc(-v / sqrt(2.0)) + v * exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846);
}

static void gelu_checks(const attn__toolkit_kernels *k, double *worst_y, double *worst_d)
{
    enum { M = 32001 };
    float *x = malloc(M * sizeof(float)), *b = malloc(M * sizeof(float)), *y = malloc(M * sizeof(float));
    float *dy = malloc(M * sizeof(float)), *dx = malloc(M * sizeof(float));
    uint64_t rng = 32;
    t_fill(&rng, b, M, -0.5, 0.5);
    t_fill(&rng, dy, M, -1, 1);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        /* a dense sweep over [-16, 16] (x + b in float, as the kernel adds) */
        for (int i = 0; i < M; i++) x[i] = -16.0f + (float)i * 0.001f;
        k->gelu_row(x, with_bias ? b : NULL, M, y);
        for (int i = 0; i < M; i++) {
            double v = with_bias ? (double)(x[i] + b[i]) : x[i], want = gelu_twin(v);
            /* relative beyond one denormal step (2^-149), for the underflow */
            double e = want == 0.0 ? fabs(y[i]) : (fabs(y[i] - want) - 1.5e-45) / fabs(want);
            if (!(e <= *worst_y)) *worst_y = e;
        }
    }
    for (int i = 0; i < M; i++) dx[i] = 0.5f;
    k->gelu_grad_row(x, dy, M, dx);
    for (int i = 0; i < M; i++) {
        double e = fabs(dx[i] - (0.5 + dy[i] * gelu_grad_twin(x[i])));
        if (!(e <= *worst_d)) *worst_d = e;
    }
    T_LE(*worst_y, 1.2e-7);
    T_LE(*worst_d, 2e-7);
    /* in place equals out of place; NaN propagates */
    memcpy(dx, x, M * sizeof(float));
    k->gelu_row(dx, b, M, dx);
    k->gelu_row(x, b, M, y);
    T_CHECK(memcmp(dx, y, M * sizeof(float)) == 0);
    float nan_in = NAN, out = 0.0f, zero = 0.0f;
    k->gelu_row(&nan_in, &zero, 1, &out);
    T_CHECK(isnan(out));
    free(x), free(b), free(y), free(dy), free(dx);
}

/* ---- logsumexp -------------------------------------------------------------------- */

static void logsumexp_checks(const attn__toolkit_kernels *k, double *worst)
{
    uint64_t rng = 33;
    static const int64_t ns[] = {1, 2, 9, 99, 1000};
    float z[1000];
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (int spread = 0; spread < 3; spread++) {
            int64_t n = ns[t];
            double hw = spread == 0 ? 1.0 : spread == 1 ? 40.0 : 300.0;
            t_fill(&rng, z, n, -hw, hw);
            if (spread == 2 && n > 1) z[n / 2] = -INFINITY; /* a masked entry */
            double mx = -INFINITY, s = 0.0;
            for (int64_t j = 0; j < n; j++) mx = fmax(mx, z[j]);
            for (int64_t j = 0; j < n; j++) s += exp((double)z[j] - mx);
            double want = mx + log(s), got = k->softmax_row(z, n);
            double e = fabs(got - want) / (1.0 + fabs(want));
            T_LE(e, 1e-13);
            *worst = fmax(*worst, e);
        }
}

/* ---- SwiGLU ----------------------------------------------------------------------- */

/* silu(g) u in double from the definition (the twin; exp from libm). */
static double swiglu_twin(double g, double u) { return g / (1.0 + exp(-g)) * u; }

static void swiglu_checks(const attn__toolkit_kernels *k, double *worst)
{
    enum { M = 48001 };
    float *g = malloc(M * sizeof(float)), *u = malloc(M * sizeof(float)), *y = malloc(M * sizeof(float));
    uint64_t rng = 34;
    t_fill(&rng, u, M, -2, 2);
    for (int i = 0; i < M; i++) g[i] = -120.0f + (float)i * 0.005f; /* [-120, 120] */
    memcpy(y, g, M * sizeof(float));
    k->swiglu_row(y, u, M);
    for (int i = 0; i < M; i++) {
        double want = swiglu_twin(g[i], u[i]);
        /* relative beyond one denormal step (2^-149), for the underflow */
        double e = want == 0.0 ? fabs(y[i]) : (fabs(y[i] - want) - 1.5e-45) / fabs(want);
        if (!(e <= *worst)) *worst = e;
    }
    T_LE(*worst, 1.2e-7);
    /* every length residue of the vector loop gives the same values */
    for (int n = 1; n <= 19; n++) {
        float a[19], b[19];
        memcpy(a, g + 24000 + 37 * n, sizeof a);
        memcpy(b, a, sizeof b);
        k->swiglu_row(a, u, n);
        k->swiglu_row(b, u, 19);
        T_CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
    }
    /* huge, infinite and NaN gates; far negative gates times huge u, where
     * g e^g is far below a float but the product is not */
    float sg[8] = {1e30f, -1e30f, INFINITY, -INFINITY, NAN, -0.0f, -121.0f, -600.0f};
    float su[8] = {0.5f, 3.0f, 2.0f, 1.0f, 1.0f, 1.0f, 1e38f, 3e38f};
    k->swiglu_row(sg, su, 8);
    for (int i = 6; i < 8; i++) {
        double g0 = i == 6 ? -121.0 : -600.0, want = swiglu_twin(g0, su[i]);
        T_LE(want == 0.0 ? fabs(sg[i]) : (fabs(sg[i] - want) - 1.5e-45) / fabs(want), 1.2e-7);
    }
    T_CHECK(sg[6] < 0.0f);
    T_CHECK(sg[0] == 0.5e30f);
    T_CHECK(sg[1] == 0.0f);
    T_CHECK(sg[2] == INFINITY);
    T_CHECK(isnan(sg[3]));
    T_CHECK(isnan(sg[4]));
    T_CHECK(sg[5] == 0.0f);
    free(g), free(u), free(y);
}

static void rows_vs_double(attn__isa isa)
{
    const attn__toolkit_kernels *k = kernels_or_skip(isa);
    if (k == NULL) return;
    const char *name = attn__isa_name(isa);
    double ln = 0.0, gy = 0.0, gd = 0.0, lse = 0.0, sw = 0.0;
    layernorm_checks(k, &ln);
    gelu_checks(k, &gy, &gd);
    logsumexp_checks(k, &lse);
    swiglu_checks(k, &sw);
    printf("  rows %s: layernorm %.3g, gelu %.3g (relative), gelu' %.3g, logsumexp %.3g, swiglu %.3g (relative)\n",
           name, ln, gy, gd, lse, sw);
}

T_TEST(kernels_rows_portable_vs_double) { rows_vs_double(ATTN__ISA_PORTABLE); }
T_TEST(kernels_rows_avx2_vs_double) { rows_vs_double(ATTN__ISA_AVX2); }
T_TEST(kernels_rows_avx512_vs_double) { rows_vs_double(ATTN__ISA_AVX512); }
