/* rows_ref.c - double-precision twins of the toolkit's float32 kernels
 * (kernels/rows_kernels.h), written from the definitions: the tests hold
 * every variant of the nn.* slots of the kernel table against these. */
#include "kernels/rows_kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

void attn__ref_gemm(const float *x, int64_t M, int64_t K, const float *w, int64_t N, double *y)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++) s += (double)x[m * K + k] * (double)w[n * K + k];
            y[m * N + n] = s;
        }
}

void attn__ref_layernorm_row(const float *x, int64_t d, const float *w, const float *b, double eps,
                             double *y)
{
    double mu = 0.0, var = 0.0;
    for (int64_t i = 0; i < d; i++) mu += x[i];
    mu /= (double)d;
    for (int64_t i = 0; i < d; i++) var += (x[i] - mu) * (x[i] - mu);
    var /= (double)d;
    for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mu) / sqrt(var + eps) * w[i] + b[i];
}

void attn__ref_gelu_row(const float *x, const float *b, int64_t n, double *y)
{
    for (int64_t i = 0; i < n; i++) {
        double v = (double)x[i] + (b != NULL ? (double)b[i] : 0.0);
        y[i] = 0.5 * v * erfc(-v / sqrt(2.0));
    }
}

void attn__ref_softmax_row(const float *x, int64_t n, double *y)
{
    double mx = -INFINITY, sum = 0.0;
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        mx = x[i] > mx ? x[i] : mx;
        nan = nan || isnan(x[i]);
    }
    for (int64_t i = 0; i < n; i++) sum += nan || mx == -INFINITY ? 0.0 : exp(x[i] - mx);
    for (int64_t i = 0; i < n; i++)
        y[i] = nan ? NAN : mx == -INFINITY ? 0.0 : exp(x[i] - mx) / sum;
}
