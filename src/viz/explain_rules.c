/* explain_rules.c - the arithmetic of the explorer's derived maps
 * (attn/explain.h): the head mean (plain, or of the positive part of
 * gradient times attention), Abnar & Zuidema's attention rollout and
 * Chefer et al.'s relevance update rules. Sums and products run in double;
 * the small matrices here ([n, n], n <= ATTN_EXPLAIN_MAX_TOKENS) are
 * multiplied with plain loops. */
#include <attn/explain.h>

#include "core/check.h"

#include <string.h>

/* c [n, m] = a [n, k] b [k, m], all double. */
static void matmul(const double *a, const double *b, int64_t n, int64_t k, int64_t m, double *c)
{
    memset(c, 0, (size_t)(n * m) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t p = 0; p < k; p++) {
            double x = a[i * k + p];
            if (x == 0.0) continue;
            for (int64_t j = 0; j < m; j++) c[i * m + j] += x * b[p * m + j];
        }
}

static void to_double(const float *x, int64_t n, double *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i];
}

/* Checks dims (>= 1, products in range) and returns the element count of a
 * [d0, d1] matrix in *count. */
static attn_status dims2(const char *fn, const char *w0, int64_t d0, const char *w1, int64_t d1,
                         int64_t *count)
{
    if (d0 < 1 || d1 < 1)
        return attn_fail(ATTN_BAD_DIM, "%s: arguments '%s' (%lld) and '%s' (%lld) must be >= 1", fn,
                         w0, (long long)d0, w1, (long long)d1);
    ATTN__MUL(fn, d0, d1, count);
    return ATTN_OK;
}

attn_status attn_explain_head_mean(const float *a, const float *grad, int64_t n_heads, int64_t n_q,
                                   int64_t n_k, float *out)
{
    ATTN__NOT_NULL(__func__, a);
    ATTN__NOT_NULL(__func__, out);
    int64_t plane = 0, all;
    attn_status st = dims2(__func__, "n_q", n_q, "n_k", n_k, &plane);
    if (st != ATTN_OK) return st;
    ATTN__DIM_POS(__func__, n_heads);
    ATTN__MUL(__func__, n_heads, plane, &all);
    for (int64_t e = 0; e < plane; e++) {
        double acc = 0;
        for (int64_t h = 0; h < n_heads; h++) {
            double x = a[h * plane + e];
            if (grad != NULL) x = x * grad[h * plane + e] > 0 ? x * grad[h * plane + e] : 0.0;
            acc += x;
        }
        out[e] = (float)(acc / (double)n_heads);
    }
    return ATTN_OK;
}

attn_status attn_explain_rollout(const float *a, int64_t n_layers, int64_t n_heads, int64_t n,
                                 float *r)
{
    ATTN__NOT_NULL(__func__, a);
    ATTN__NOT_NULL(__func__, r);
    int64_t sq = 0, per_layer, work;
    attn_status st = dims2(__func__, "n", n, "n", n, &sq);
    if (st != ATTN_OK) return st;
    if (n_layers < 1 || n_heads < 1)
        return attn_fail(ATTN_BAD_DIM, "%s: arguments 'n_layers' (%lld) and 'n_heads' (%lld) must "
                         "be >= 1", __func__, (long long)n_layers, (long long)n_heads);
    ATTN__MUL(__func__, n_heads, sq, &per_layer);
    ATTN__MUL(__func__, 3, sq, &work);
    double *buf = attn_alloc((size_t)work * sizeof(double));
    float *mean = attn_alloc((size_t)sq * sizeof(float));
    if (buf == NULL || mean == NULL) {
        attn_release(buf);
        attn_release(mean);
        return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    }
    double *acc = buf, *m = buf + sq, *next = buf + 2 * sq; /* [n, n] each */
    memset(acc, 0, (size_t)sq * sizeof(double));
    for (int64_t i = 0; i < n; i++) acc[i * n + i] = 1.0;
    for (int64_t l = 0; l < n_layers; l++) {
        attn_explain_head_mean(a + l * per_layer, NULL, n_heads, n, n, mean);
        for (int64_t i = 0; i < n; i++) { /* m = rownorm(0.5 mean + 0.5 I) */
            double sum = 0;
            for (int64_t j = 0; j < n; j++) {
                m[i * n + j] = 0.5 * mean[i * n + j] + (i == j ? 0.5 : 0.0);
                sum += m[i * n + j];
            }
            for (int64_t j = 0; sum != 0.0 && j < n; j++) m[i * n + j] /= sum;
        }
        matmul(m, acc, n, n, n, next);
        memcpy(acc, next, (size_t)sq * sizeof(double));
    }
    for (int64_t e = 0; e < sq; e++) r[e] = (float)acc[e];
    attn_release(buf);
    attn_release(mean);
    return ATTN_OK;
}

attn_status attn_explain_self_rule(const float *abar, int64_t n, float *r_xx, float *r_xy, int64_t m)
{
    ATTN__NOT_NULL(__func__, abar);
    ATTN__NOT_NULL(__func__, r_xx);
    int64_t sq = 0, sm = 0;
    attn_status st = dims2(__func__, "n", n, "n", n, &sq);
    if (st == ATTN_OK && r_xy != NULL) st = dims2(__func__, "n", n, "m", m, &sm);
    if (st != ATTN_OK) return st;
    int64_t wide = m > n && r_xy != NULL ? m : n, total;
    ATTN__MUL(__func__, 3 * n, wide, &total);
    double *buf = attn_alloc((size_t)total * sizeof(double));
    if (buf == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    double *a = buf, *x = buf + n * wide, *ax = buf + 2 * n * wide;
    to_double(abar, sq, a);
    float *targets[2] = {r_xx, r_xy};
    int64_t cols[2] = {n, m};
    for (int t = 0; t < 2; t++) { /* r += abar r, for r_xx then r_xy */
        if (targets[t] == NULL) continue;
        to_double(targets[t], n * cols[t], x);
        matmul(a, x, n, n, cols[t], ax);
        for (int64_t e = 0; e < n * cols[t]; e++) targets[t][e] = (float)(x[e] + ax[e]);
    }
    attn_release(buf);
    return ATTN_OK;
}

/* rbar [n, n] = rownorm(r - I) + I: Chefer et al.'s eqs. 8 and 9; a row of
 * r - I that sums to 0 stays 0. */
static void residual_norm(const float *r, int64_t n, double *rbar)
{
    for (int64_t i = 0; i < n; i++) {
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            rbar[i * n + j] = (double)r[i * n + j] - (i == j ? 1.0 : 0.0);
            sum += rbar[i * n + j];
        }
        for (int64_t j = 0; sum != 0.0 && j < n; j++) rbar[i * n + j] /= sum;
        rbar[i * n + i] += 1.0;
    }
}

attn_status attn_explain_cross_rule(const float *abar, const float *r_tt, int64_t t,
                                    const float *r_ss, int64_t s, float *r_ts)
{
    ATTN__NOT_NULL(__func__, abar);
    ATTN__NOT_NULL(__func__, r_tt);
    ATTN__NOT_NULL(__func__, r_ss);
    ATTN__NOT_NULL(__func__, r_ts);
    int64_t ts = 0, total;
    attn_status st = dims2(__func__, "t", t, "s", s, &ts);
    if (st != ATTN_OK) return st;
    int64_t big = t > s ? t : s;
    ATTN__MUL(__func__, big, 3 * big + 2 * s, &total);
    double *buf = attn_alloc((size_t)total * sizeof(double));
    if (buf == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    double *btt = buf, *bss = btt + t * t, *a = bss + s * s, *as = a + t * s, *tr = as + t * s;
    residual_norm(r_tt, t, btt);
    residual_norm(r_ss, s, bss);
    to_double(abar, ts, a);
    matmul(a, bss, t, s, s, as); /* as = abar Rbar_ss */
    for (int64_t i = 0; i < t; i++) /* tr = Rbar_tt^T */
        for (int64_t j = 0; j < t; j++) tr[i * t + j] = btt[j * t + i];
    matmul(tr, as, t, t, s, a); /* a = Rbar_tt^T abar Rbar_ss */
    for (int64_t e = 0; e < ts; e++) r_ts[e] = (float)((double)r_ts[e] + a[e]);
    attn_release(buf);
    return ATTN_OK;
}
