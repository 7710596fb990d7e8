/* rows.c - portable float32 kernels of the toolkit: a dense product and
 * the LayerNorm, GELU and softmax rows. They fill the kernel table's nn.*
 * slots where no instruction set has faster ones; each is held against its
 * double twin (ref/rows_ref.c) by the tests. Plain loops, one fixed
 * summation order, no vector intrinsics. */
#include "kernels/rows_kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

static float dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

void attn__portable_gemm(const float *x, int64_t M, int64_t K, const float *w, int64_t N,
                         float beta, float *y)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float d = dot(x + m * K, w + n * K, K);
            y[m * N + n] = beta != 0.0f ? y[m * N + n] + d : d;
        }
}

void attn__portable_layernorm_row(const float *x, int64_t d, const float *w, const float *b,
                                  double eps, float *y)
{
    double mu = 0.0, var = 0.0;
    for (int64_t i = 0; i < d; i++) mu += x[i];
    mu /= (double)d;
    for (int64_t i = 0; i < d; i++) var += ((double)x[i] - mu) * ((double)x[i] - mu);
    float rstd = (float)(1.0 / sqrt(var / (double)d + eps)), muf = (float)mu;
    for (int64_t i = 0; i < d; i++) y[i] = (x[i] - muf) * rstd * w[i] + b[i];
}

void attn__portable_gelu_row(const float *x, const float *b, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        float v = b != NULL ? x[i] + b[i] : x[i];
        y[i] = 0.5f * v * erfcf(-v * 0.70710678f);
    }
}

void attn__portable_softmax_row(const float *x, int64_t n, float *y)
{
    float mx = -INFINITY, sum = 0.0f;
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] > mx) mx = x[i];
        nan |= isnan(x[i]);
    }
    if (nan || mx == -INFINITY) { /* NaN anywhere: all NaN; all masked: all 0 */
        for (int64_t i = 0; i < n; i++) y[i] = nan ? NAN : 0.0f;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}
