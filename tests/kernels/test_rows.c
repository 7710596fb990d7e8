/* test_rows.c - the toolkit slots of every kernel table this machine can
 * run (nn.gemm, nn.layernorm_row, nn.gelu_row, nn.softmax_row) against
 * their double-precision twins (src/kernels/ref/rows_ref.c), with error
 * bounds from float32 rounding, the edge cases (empty sizes, -inf, NaN),
 * and in-place use. */
#include "test.h"

#include "kernels/rows_kernels.h"
#include "kernels/table.h"

#include <stdlib.h>
#include <string.h>

static const double U = 5.9604644775390625e-08; /* 2^-24, float32 unit roundoff */

static float *rand_floats(uint64_t *s, int64_t n, double lo, double hi)
{
    float *x = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)t_rand_uniform(s, lo, hi);
    return x;
}

/* Fails with the worst ratio error / bound if it exceeds 1. */
static void check_ratio(const char *what, const char *isa, double worst)
{
    t_checks++;
    if (!(worst <= 1.0)) t_fail(__FILE__, __LINE__, "%s (%s): error / bound = %.3g", what, isa, worst);
    if (t_verbose) printf("  %s (%s): worst error / bound %.3g\n", what, isa, worst);
}

static void gemm_case(const attn__kernels *t, const char *isa, int64_t M, int64_t K, int64_t N, uint64_t seed)
{
    uint64_t s = seed;
    float *x = rand_floats(&s, M * K, -1, 1), *w = rand_floats(&s, N * K, -1, 1);
    float *y0 = rand_floats(&s, M * N, -1, 1), *y = malloc((size_t)(M * N + 1) * sizeof(float));
    double *ref = malloc((size_t)(M * N + 1) * sizeof(double)), worst = 0.0;
    attn__ref_gemm(x, M, K, w, N, ref);
    for (int beta = 0; beta < 2; beta++) {
        for (int64_t i = 0; i < M * N; i++) y[i] = beta ? y0[i] : NAN; /* beta 0 must not read y */
        t->nn.gemm(x, M, K, w, N, (float)beta, y);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double mag = 0.0;
                for (int64_t k = 0; k < K; k++) mag += fabs((double)x[m * K + k] * w[n * K + k]);
                double want = ref[m * N + n] + (beta ? y0[m * N + n] : 0.0);
                double bound = (K + 2) * U * (mag + (beta ? fabs(y0[m * N + n]) : 0.0)) + 1e-30;
                double e = fabs(y[m * N + n] - want) / bound;
                worst = isnan(e) ? INFINITY : e > worst ? e : worst;
            }
    }
    char what[64];
    snprintf(what, sizeof what, "gemm %lldx%lldx%lld", (long long)M, (long long)K, (long long)N);
    check_ratio(what, isa, worst);
    free(x);
    free(w);
    free(y0);
    free(y);
    free(ref);
}

static void layernorm_case(const attn__kernels *t, const char *isa, int64_t d, double eps, uint64_t seed)
{
    uint64_t s = seed;
    float *x = rand_floats(&s, d, 1, 5), *w = rand_floats(&s, d, -2, 2), *b = rand_floats(&s, d, -1, 1);
    float *y = malloc((size_t)d * sizeof(float));
    double *ref = malloc((size_t)d * sizeof(double)), worst = 0.0;
    attn__ref_layernorm_row(x, d, w, b, eps, ref);
    t->nn.layernorm_row(x, d, w, b, eps, y);
    double mu = 0.0, var = 0.0;
    for (int64_t i = 0; i < d; i++) mu += x[i] / (double)d;
    for (int64_t i = 0; i < d; i++) var += (x[i] - mu) * (x[i] - mu) / (double)d;
    double rstd = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < d; i++) { /* the float mean, then 5 roundings of (x - mean) * rstd * w + b */
        double xw = fabs((x[i] - mu) * rstd * w[i]);
        double bound = 2 * U * (fabs(mu) * rstd * fabs(w[i]) + 5 * xw + fabs(ref[i]) + fabs(b[i])) + 1e-30;
        double e = fabs(y[i] - ref[i]) / bound;
        worst = isnan(e) ? INFINITY : e > worst ? e : worst;
    }
    char what[64];
    snprintf(what, sizeof what, "layernorm d %lld", (long long)d);
    check_ratio(what, isa, worst);
    t->nn.layernorm_row(x, d, w, b, eps, x); /* in place: the same values */
    T_CHECK(memcmp(x, y, (size_t)d * sizeof(float)) == 0);
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
}

static void gelu_case(const attn__kernels *t, const char *isa, bool with_bias)
{
    enum { N = 4000 };
    uint64_t s = 77;
    float *x = rand_floats(&s, N, -12, 12), *b = rand_floats(&s, N, -0.5, 0.5), y[N];
    static const float edges[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 5.0f, -5.0f, 9.5f, -9.5f, 11.0f, -11.0f};
    memcpy(x, edges, sizeof edges);
    double ref[N], worst = 0.0;
    const float *bias = with_bias ? b : NULL;
    attn__ref_gelu_row(x, bias, N, ref);
    t->nn.gelu_row(x, bias, N, y);
    for (int i = 0; i < N; i++) { /* erfc's sensitivity grows like v^2 in the tail */
        double v = (double)x[i] + (with_bias ? b[i] : 0.0);
        double bound = (16 + 4 * v * v) * U * fabs(ref[i]) + 1e-37;
        double e = fabs(y[i] - ref[i]) / bound;
        worst = isnan(e) ? INFINITY : e > worst ? e : worst;
    }
    check_ratio(with_bias ? "gelu with bias" : "gelu", isa, worst);
    float nan_in[2] = {NAN, 1.0f}, out[2];
    t->nn.gelu_row(nan_in, NULL, 2, out);
    T_CHECK(isnan(out[0]) && out[1] > 0.84f && out[1] < 0.85f);
    memcpy(out, x, sizeof out);
    t->nn.gelu_row(out, bias, 2, out); /* in place */
    T_CHECK(memcmp(out, y, sizeof out) == 0);
    free(x);
    free(b);
}

static void softmax_case(const attn__kernels *t, const char *isa, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    float *x = rand_floats(&s, n, -20, 20), *y = malloc((size_t)n * sizeof(float));
    for (int64_t i = 1; i < n; i += 3) x[i] = -INFINITY; /* masked entries */
    double *ref = malloc((size_t)n * sizeof(double)), worst = 0.0;
    attn__ref_softmax_row(x, n, ref);
    t->nn.softmax_row(x, n, y);
    for (int64_t i = 0; i < n; i++) {
        double bound = (n + 8) * U * ref[i] + 1e-45;
        double e = fabs(y[i] - ref[i]) / bound;
        worst = isnan(e) ? INFINITY : e > worst ? e : worst;
    }
    char what[64];
    snprintf(what, sizeof what, "softmax n %lld", (long long)n);
    check_ratio(what, isa, worst);
    t->nn.softmax_row(x, n, x); /* in place */
    T_CHECK(memcmp(x, y, (size_t)n * sizeof(float)) == 0);
    free(x);
    free(y);
    free(ref);
}

static void softmax_edges(const attn__kernels *t)
{
    float all_masked[3] = {-INFINITY, -INFINITY, -INFINITY}, with_nan[3] = {1.0f, NAN, -INFINITY}, y[3];
    double ref[3];
    t->nn.softmax_row(all_masked, 3, y);
    attn__ref_softmax_row(all_masked, 3, ref);
    T_CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f && ref[0] == 0.0);
    t->nn.softmax_row(with_nan, 3, y);
    attn__ref_softmax_row(with_nan, 3, ref);
    T_CHECK(isnan(y[0]) && isnan(y[1]) && isnan(y[2]) && isnan(ref[0]));
    float one = 3.0f;
    t->nn.softmax_row(&one, 1, y);
    T_CHECK(y[0] == 1.0f);
}

void test_rows_kernels_vs_double(void)
{
    static const attn_kernel kinds[] = {ATTN_KERNEL_TILED, ATTN_KERNEL_AVX2, ATTN_KERNEL_AVX512, ATTN_KERNEL_AMX};
    static const int64_t gemm_sizes[][3] = {{1, 1, 1}, {3, 5, 7},   {17, 64, 33}, {9, 259, 40},
                                            {0, 4, 3}, {2, 0, 3},   {6, 16, 16},  {13, 384, 96}};
    int tested = 0;
    for (size_t x = 0; x < sizeof kinds / sizeof kinds[0]; x++) {
        const attn__kernels *t = attn__kernels_get(kinds[x], NULL, 0);
        if (t == NULL) continue;
        const char *isa = attn_kernel_name(kinds[x]);
        tested++;
        for (size_t g = 0; g < sizeof gemm_sizes / sizeof gemm_sizes[0]; g++)
            gemm_case(t, isa, gemm_sizes[g][0], gemm_sizes[g][1], gemm_sizes[g][2], 100 + g);
        static const int64_t dims[] = {1, 7, 64, 384};
        for (int d = 0; d < 4; d++) {
            layernorm_case(t, isa, dims[d], 1e-5, 200 + (uint64_t)d);
            layernorm_case(t, isa, dims[d], 1e-12, 300 + (uint64_t)d);
        }
        gelu_case(t, isa, false);
        gelu_case(t, isa, true);
        static const int64_t lens[] = {1, 5, 100, 1000};
        for (int n = 0; n < 4; n++) softmax_case(t, isa, lens[n], 400 + (uint64_t)n);
        softmax_edges(t);
    }
    printf("  toolkit slots checked on %d kernel table(s)\n", tested);
    T_CHECK(tested >= 1);
}
