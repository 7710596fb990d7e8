/* layers.c - the toolkit's layers, forward and backward (attn/nn.h):
 * linear, embedding, LayerNorm, RMSNorm, GELU/ReLU, dropout, sinusoidal and
 * rotary positions, and cross-entropy.
 *
 * The matrix products run on libattn's GEMM on the ctx's threads; LayerNorm,
 * GELU and the softmax normaliser on its row kernels, shared with the BERT
 * encoder (the kernel table's nn.* slots, core/toolkit_kernels.h). Row
 * statistics (means, variances, dot products) are accumulated in double, in
 * 8 independent partial sums so the loops still vectorise; the softmax of
 * cross-entropy is done in double per row. Every function validates all
 * arguments before writing anything. Backward functions accumulate (+=)
 * into their gradients.
 */
#include "core/check.h"
#include "core/toolkit_kernels.h"

#include <attn/nn.h>

#include <math.h>
#include <string.h>

enum {
    LANES = ATTN__LANES, /* partial sums per row reduction */
    COLS = 64            /* columns per block when summing a gradient over rows */
};

static size_t fbytes(int64_t count) { return (size_t)count * sizeof(float); }

/* ---- row reductions in double --------------------------------------------- */

/* With g = dy * gamma and xhat = (x - mu) * rstd: *sg = sum g, *sgx = sum g xhat. */
static void sums_g_gx(const float *x, const float *dy, const float *gamma, int64_t d,
                      double mu, double rstd, double *sg, double *sgx)
{
    double a[LANES] = {0}, b[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= d; i += LANES)
        for (int k = 0; k < LANES; k++) {
            double g = (double)dy[i + k] * gamma[i + k];
            a[k] += g;
            b[k] += g * (((double)x[i + k] - mu) * rstd);
        }
    for (int k = 0; i + k < d; k++) {
        double g = (double)dy[i + k] * gamma[i + k];
        a[k] += g;
        b[k] += g * (((double)x[i + k] - mu) * rstd);
    }
    *sg = attn__lanes_total(a);
    *sgx = attn__lanes_total(b);
}

/* ---- linear ----------------------------------------------------------------- */

/* Element counts of x [n, in], w [out, in], y [n, out]. */
typedef struct {
    int64_t x, w, y;
} linear_sizes;

static attn_status linear_check(const char *fn, attn_ctx *ctx, const float *x, int64_t n,
                                int64_t in, const float *w, int64_t out, linear_sizes *sz)
{
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, x);
    ATTN__NOT_NULL(fn, w);
    ATTN__DIM(fn, n);
    ATTN__DIM(fn, in);
    ATTN__DIM(fn, out);
    ATTN__MUL(fn, n, in, &sz->x);
    ATTN__MUL(fn, out, in, &sz->w);
    ATTN__MUL(fn, n, out, &sz->y);
    return ATTN_OK;
}

/* c [M, N] = beta c + op(a) op(b) on ctx's threads (beta 0 or 1). */
static void gemm(attn_ctx *ctx, attn__gemm_op ta, attn__gemm_op tb, int64_t M, int64_t N,
                 int64_t K, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                 float *c)
{
    attn__gemm_args g = {M, N, K, ta, tb, a, b, NULL, lda, ldb, beta, c, N, NULL};
    attn__gemm(ctx, &g);
}

attn_status attn_nn_linear_forward(attn_ctx *ctx, const float *x, int64_t n, int64_t in,
                                   const float *w, const float *b, int64_t out, float *y)
{
    linear_sizes sz;
    attn_status s = linear_check(__func__, ctx, x, n, in, w, out, &sz);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, y);
    attn__span sp[] = {{"y", y, fbytes(sz.y)},
                       {"x", x, fbytes(sz.x)},
                       {"w", w, fbytes(sz.w)},
                       {"b", b, b ? fbytes(out) : 0}};
    if ((s = attn__disjoint(__func__, sp, 4, 1)) != ATTN_OK) return s;
    if (sz.y == 0) return ATTN_OK;
    for (int64_t r = 0; r < n; r++) { /* y [n, out] starts as the bias rows */
        if (b)
            memcpy(y + r * out, b, fbytes(out));
        else
            memset(y + r * out, 0, fbytes(out));
    }
    /* y += x [n, in] w^T [in, out] */
    gemm(ctx, ATTN__GEMM_N, ATTN__GEMM_T, n, out, in, x, in, w, in, 1.0f, y);
    return ATTN_OK;
}

/* db [out] += sum over rows of dy [n, out], summed in double per column block. */
static void bias_grad(const float *dy, int64_t n, int64_t out, float *db)
{
    for (int64_t c0 = 0; c0 < out; c0 += COLS) {
        int64_t w = out - c0 < COLS ? out - c0 : COLS;
        double acc[COLS] = {0};
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < w; c++) acc[c] += dy[r * out + c0 + c];
        for (int64_t c = 0; c < w; c++) db[c0 + c] += (float)acc[c];
    }
}

attn_status attn_nn_linear_backward(attn_ctx *ctx, const float *x, int64_t n, int64_t in,
                                    const float *w, int64_t out, const float *dy, float *dx,
                                    float *dw, float *db)
{
    linear_sizes sz;
    attn_status s = linear_check(__func__, ctx, x, n, in, w, out, &sz);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, dy);
    attn__span sp[] = {{"dx", dx, fbytes(sz.x)}, {"dw", dw, fbytes(sz.w)},
                       {"db", db, fbytes(out)},  {"x", x, fbytes(sz.x)},
                       {"w", w, fbytes(sz.w)},   {"dy", dy, fbytes(sz.y)}};
    if ((s = attn__disjoint(__func__, sp, 6, 3)) != ATTN_OK) return s;
    if (dx) /* dx [n, in] += dy [n, out] w [out, in] */
        gemm(ctx, ATTN__GEMM_N, ATTN__GEMM_N, n, in, out, dy, out, w, in, 1.0f, dx);
    if (dw) /* dw [out, in] += dy^T [out, n] x [n, in] */
        gemm(ctx, ATTN__GEMM_T, ATTN__GEMM_N, out, in, n, dy, out, x, in, 1.0f, dw);
    if (db) bias_grad(dy, n, out, db);
    return ATTN_OK;
}

/* ---- embedding ----------------------------------------------------------------- */

/* Checks dims and that every id is in [0, vocab); element counts of the
 * rows [n, d] and the table [vocab, d]. */
static attn_status embedding_check(const char *fn, const int32_t *ids, int64_t n,
                                   int64_t vocab, int64_t d, int64_t *rows, int64_t *table)
{
    ATTN__NOT_NULL(fn, ids);
    ATTN__DIM(fn, n);
    ATTN__DIM(fn, vocab);
    ATTN__DIM(fn, d);
    ATTN__MUL(fn, n, d, rows);
    ATTN__MUL(fn, vocab, d, table);
    for (int64_t r = 0; r < n; r++)
        if (ids[r] < 0 || ids[r] >= vocab)
            return attn_fail(ATTN_BAD_PARAM,
                             "%s: argument 'ids' has ids[%lld] = %d, outside [0, vocab=%lld)",
                             fn, (long long)r, (int)ids[r], (long long)vocab);
    return ATTN_OK;
}

attn_status attn_nn_embedding_forward(const int32_t *ids, int64_t n, const float *table,
                                      int64_t vocab, int64_t d, float *y)
{
    int64_t ny, nt;
    ATTN__NOT_NULL(__func__, table);
    ATTN__NOT_NULL(__func__, y);
    attn_status s = embedding_check(__func__, ids, n, vocab, d, &ny, &nt);
    if (s != ATTN_OK) return s;
    attn__span sp[] = {{"y", y, fbytes(ny)},
                       {"table", table, fbytes(nt)},
                       {"ids", ids, (size_t)n * sizeof(int32_t)}};
    if ((s = attn__disjoint(__func__, sp, 3, 1)) != ATTN_OK) return s;
    for (int64_t r = 0; r < n && d > 0; r++) /* y [n, d] row r = table row ids[r] */
        memcpy(y + r * d, table + (int64_t)ids[r] * d, fbytes(d));
    return ATTN_OK;
}

attn_status attn_nn_embedding_backward(const int32_t *ids, int64_t n, int64_t vocab,
                                       int64_t d, const float *dy, float *dtable)
{
    int64_t ny, nt;
    ATTN__NOT_NULL(__func__, dy);
    ATTN__NOT_NULL(__func__, dtable);
    attn_status s = embedding_check(__func__, ids, n, vocab, d, &ny, &nt);
    if (s != ATTN_OK) return s;
    attn__span sp[] = {{"dtable", dtable, fbytes(nt)},
                       {"dy", dy, fbytes(ny)},
                       {"ids", ids, (size_t)n * sizeof(int32_t)}};
    if ((s = attn__disjoint(__func__, sp, 3, 1)) != ATTN_OK) return s;
    for (int64_t r = 0; r < n; r++) { /* y = table[ids[r]]  =>  dtable[ids[r]] += dy[r] */
        float *t = dtable + (int64_t)ids[r] * d;
        const float *g = dy + r * d;
        for (int64_t c = 0; c < d; c++) t[c] += g[c];
    }
    return ATTN_OK;
}

/* ---- LayerNorm and RMSNorm ---------------------------------------------------------- */

/* x [n, d] with d > 0, gamma [d]; *count = n * d. */
static attn_status norm_check(const char *fn, const float *x, int64_t n, int64_t d,
                              const float *gamma, int64_t *count)
{
    ATTN__NOT_NULL(fn, x);
    ATTN__NOT_NULL(fn, gamma);
    ATTN__DIM(fn, n);
    ATTN__DIM_POS(fn, d);
    ATTN__MUL(fn, n, d, count);
    return ATTN_OK;
}

static attn_status eps_check(const char *fn, double eps)
{
    if (!(eps > 0.0) || !isfinite(eps))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'eps' is %g; it must be finite and > 0",
                         fn, eps);
    return ATTN_OK;
}

attn_status attn_nn_layernorm_forward(const float *x, int64_t n, int64_t d,
                                      const float *gamma, const float *beta, double eps,
                                      float *y, float *mean, float *rstd)
{
    int64_t cnt;
    attn_status s = norm_check(__func__, x, n, d, gamma, &cnt);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, y);
    if ((s = eps_check(__func__, eps)) != ATTN_OK) return s;
    attn__span sp[] = {{"y", y, fbytes(cnt)},         {"mean", mean, fbytes(n)},
                       {"rstd", rstd, fbytes(n)},      {"x", x, fbytes(cnt)},
                       {"gamma", gamma, fbytes(d)},    {"beta", beta, beta ? fbytes(d) : 0}};
    if ((s = attn__disjoint(__func__, sp, 6, 3)) != ATTN_OK) return s;
    const attn__toolkit_kernels *tk = attn__ctx_toolkit(NULL);
    for (int64_t r = 0; r < n; r++)
        tk->layernorm_row(x + r * d, d, gamma, beta, eps, y + r * d, mean ? mean + r : NULL,
                      rstd ? rstd + r : NULL);
    return ATTN_OK;
}

/* dgamma [d] += sum_r dy * xhat, dbeta [d] += sum_r dy (either may be NULL),
 * with xhat = (x - mean) * rstd, or x * rstd when mean is NULL (RMSNorm). */
static void norm_param_grads(const float *x, int64_t n, int64_t d, const float *mean,
                             const float *rstd, const float *dy, float *dgamma, float *dbeta)
{
    for (int64_t c0 = 0; c0 < d; c0 += COLS) {
        int64_t w = d - c0 < COLS ? d - c0 : COLS;
        double ag[COLS] = {0}, ab[COLS] = {0};
        for (int64_t r = 0; r < n; r++) {
            const float *xr = x + r * d + c0, *gr = dy + r * d + c0;
            double mu = mean ? mean[r] : 0.0, rs = rstd[r];
            for (int64_t c = 0; c < w; c++) {
                ag[c] += (double)gr[c] * (((double)xr[c] - mu) * rs);
                ab[c] += gr[c];
            }
        }
        for (int64_t c = 0; c < w; c++) {
            if (dgamma) dgamma[c0 + c] += (float)ag[c];
            if (dbeta) dbeta[c0 + c] += (float)ab[c];
        }
    }
}

/* Saved statistics and gradients of a norm backward: mean may be NULL
 * (RMSNorm); dx, dgamma, dbeta may be NULL. The checker only tests overlaps. */
typedef struct {
    const float *mean, *rstd, *dy;
    float *dx, *dgamma, *dbeta;
} norm_grads;

static attn_status norm_backward_check(const char *fn, int64_t n, int64_t cnt, int64_t d,
                                       const float *x, const float *gamma, const norm_grads *g)
{
    attn__span sp[] = {{"dx", g->dx, fbytes(cnt)},     {"dgamma", g->dgamma, fbytes(d)},
                       {"dbeta", g->dbeta, fbytes(d)}, {"x", x, fbytes(cnt)},
                       {"gamma", gamma, fbytes(d)},    {"mean", g->mean, fbytes(n)},
                       {"rstd", g->rstd, fbytes(n)},   {"dy", g->dy, fbytes(cnt)}};
    return attn__disjoint(fn, sp, 8, 3);
}

attn_status attn_nn_layernorm_backward(const float *x, int64_t n, int64_t d,
                                       const float *gamma, const float *mean,
                                       const float *rstd, const float *dy, float *dx,
                                       float *dgamma, float *dbeta)
{
    int64_t cnt;
    norm_grads g = {mean, rstd, dy, dx, dgamma, dbeta};
    attn_status s = norm_check(__func__, x, n, d, gamma, &cnt);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, mean);
    ATTN__NOT_NULL(__func__, rstd);
    ATTN__NOT_NULL(__func__, dy);
    if ((s = norm_backward_check(__func__, n, cnt, d, x, gamma, &g)) != ATTN_OK) return s;
    /* y = xhat gamma + beta, xhat = (x - mu) rstd, with g = dy gamma:
     * dx = rstd (g - mean(g) - xhat mean(g xhat)) */
    for (int64_t r = 0; r < n && dx; r++) {
        const float *xr = x + r * d, *gr = dy + r * d;
        double mu = mean[r], rs = rstd[r], sg, sgx;
        sums_g_gx(xr, gr, gamma, d, mu, rs, &sg, &sgx);
        double a = sg / (double)d, b = sgx / (double)d;
        for (int64_t i = 0; i < d; i++) {
            double xhat = ((double)xr[i] - mu) * rs;
            dx[r * d + i] += (float)(rs * ((double)gr[i] * gamma[i] - a - xhat * b));
        }
    }
    if (dgamma || dbeta) norm_param_grads(x, n, d, mean, rstd, dy, dgamma, dbeta);
    return ATTN_OK;
}

attn_status attn_nn_rmsnorm_forward(const float *x, int64_t n, int64_t d, const float *gamma,
                                    double eps, float *y, float *rstd)
{
    int64_t cnt;
    attn_status s = norm_check(__func__, x, n, d, gamma, &cnt);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, y);
    if ((s = eps_check(__func__, eps)) != ATTN_OK) return s;
    attn__span sp[] = {{"y", y, fbytes(cnt)},
                       {"rstd", rstd, fbytes(n)},
                       {"x", x, fbytes(cnt)},
                       {"gamma", gamma, fbytes(d)}};
    if ((s = attn__disjoint(__func__, sp, 4, 2)) != ATTN_OK) return s;
    for (int64_t r = 0; r < n; r++) { /* y = x rstd gamma, rstd = 1/sqrt(mean(x^2) + eps) */
        const float *xr = x + r * d;
        double rs = 1.0 / sqrt(attn__row_sum_sq_dev(xr, d, 0.0) / (double)d + eps);
        for (int64_t i = 0; i < d; i++) y[r * d + i] = (float)((double)xr[i] * rs) * gamma[i];
        if (rstd) rstd[r] = (float)rs;
    }
    return ATTN_OK;
}

attn_status attn_nn_rmsnorm_backward(const float *x, int64_t n, int64_t d, const float *gamma,
                                     const float *rstd, const float *dy, float *dx,
                                     float *dgamma)
{
    int64_t cnt;
    norm_grads g = {NULL, rstd, dy, dx, dgamma, NULL};
    attn_status s = norm_check(__func__, x, n, d, gamma, &cnt);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, rstd);
    ATTN__NOT_NULL(__func__, dy);
    if ((s = norm_backward_check(__func__, n, cnt, d, x, gamma, &g)) != ATTN_OK) return s;
    /* y = xhat gamma, xhat = x rstd, g = dy gamma:  dx = rstd (g - xhat mean(g xhat)) */
    for (int64_t r = 0; r < n && dx; r++) {
        const float *xr = x + r * d, *gr = dy + r * d;
        double rs = rstd[r], sg, sgx;
        sums_g_gx(xr, gr, gamma, d, 0.0, rs, &sg, &sgx);
        double b = sgx / (double)d;
        for (int64_t i = 0; i < d; i++)
            dx[r * d + i] += (float)(rs * ((double)gr[i] * gamma[i] - (double)xr[i] * rs * b));
    }
    if (dgamma) norm_param_grads(x, n, d, NULL, rstd, dy, dgamma, NULL);
    return ATTN_OK;
}

/* ---- activations --------------------------------------------------------------------- */

static attn_status act_check(const char *fn, attn_nn_act act, const float *x, int64_t count)
{
    if (act != ATTN_NN_ACT_GELU && act != ATTN_NN_ACT_RELU)
        return attn_fail(ATTN_BAD_PARAM,
                         "%s: argument 'act' is %d; it must be ATTN_NN_ACT_GELU or ATTN_NN_ACT_RELU",
                         fn, (int)act);
    ATTN__NOT_NULL(fn, x);
    ATTN__DIM(fn, count);
    if (count > ATTN__MAX_ELEMS)
        return attn_fail(ATTN_OVERFLOW, "%s: argument 'count' (%lld) is too large", fn,
                         (long long)count);
    return ATTN_OK;
}

attn_status attn_nn_act_forward(attn_nn_act act, const float *x, int64_t count, float *y)
{
    attn_status s = act_check(__func__, act, x, count);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, y);
    attn__span sp[] = {{"y", y, fbytes(count)}, {"x", x == y ? NULL : x, fbytes(count)}};
    if ((s = attn__disjoint(__func__, sp, 2, 1)) != ATTN_OK) return s;
    if (act == ATTN_NN_ACT_GELU) {
        attn__ctx_toolkit(NULL)->gelu_row(x, NULL, count, y);
    } else {
        for (int64_t i = 0; i < count; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN stays */
    }
    return ATTN_OK;
}

attn_status attn_nn_act_backward(attn_nn_act act, const float *x, int64_t count,
                                 const float *dy, float *dx)
{
    attn_status s = act_check(__func__, act, x, count);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, dy);
    ATTN__NOT_NULL(__func__, dx);
    attn__span sp[] = {{"dx", dx, fbytes(count)},
                       {"x", x, fbytes(count)},
                       {"dy", dy, fbytes(count)}};
    if ((s = attn__disjoint(__func__, sp, 3, 1)) != ATTN_OK) return s;
    if (act == ATTN_NN_ACT_GELU) { /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        attn__ctx_toolkit(NULL)->gelu_grad_row(x, dy, count, dx);
    } else { /* torch's threshold_backward: gradient where x > 0 */
        for (int64_t i = 0; i < count; i++) {
            float g = dy[i]; /* loaded unconditionally, so the select vectorises */
            dx[i] += x[i] > 0.0f ? g : 0.0f;
        }
    }
    return ATTN_OK;
}

/* ---- dropout ------------------------------------------------------------------------ */

/* The keep rule. Element e of a call has stream index u = offset + e
 * (mod 2^64). Its random word is word (u mod 4) of one Philox4x32-10 block:
 *
 *   q   = u >> 2 (so four consecutive indices share one block)
 *   ctr = { q mod 2^32, q >> 32, 0x6E6E6470 ("nndp"), 0 }
 *   key = { seed mod 2^32, seed >> 32 }
 *   r   = Philox4x32-10(ctr, key)[u mod 4]
 *   keep  <=>  r >= floor(p * 2^32)     (threshold capped at 2^32 - 1)
 *
 * So p = 0 keeps everything, the decision depends on (seed, offset + e) only,
 * and the ctr[2] tag keeps these streams apart from the attention dropout
 * of attn/attn.h, whose ctr[2] is b * Hq + h. */
#define DROPOUT_TAG 0x6E6E6470u

static uint32_t keep_threshold(double p)
{
    double t = p * 4294967296.0;
    return t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
}

static void dropout_block(uint64_t seed, uint64_t q, uint32_t r[4])
{
    const uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), DROPOUT_TAG, 0};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    attn_philox4x32_10(ctr, key, r);
}

int attn_nn_dropout_keep(uint64_t seed, uint64_t offset, double p, int64_t e)
{
    uint32_t r[4];
    uint64_t u = offset + (uint64_t)e;
    if (!(p > 0.0)) return 1;
    dropout_block(seed, u >> 2, r);
    return r[u & 3] >= keep_threshold(p);
}

/* out[e] (= or +=) keep(e) ? in[e] / (1 - p) : 0 over count elements. */
static void dropout_apply(const float *in, int64_t count, double p, uint64_t seed,
                          uint64_t offset, int accumulate, float *out)
{
    const uint32_t thr = keep_threshold(p);
    const float scale = (float)(1.0 / (1.0 - p));
    uint32_t r[4] = {0};
    if (!(p > 0.0)) { /* everything is kept, unscaled: no random numbers needed */
        for (int64_t e = 0; e < count; e++) out[e] = accumulate ? out[e] + in[e] : in[e];
        return;
    }
    for (int64_t e = 0; e < count; e++) {
        uint64_t u = offset + (uint64_t)e;
        if (e == 0 || (u & 3) == 0) dropout_block(seed, u >> 2, r);
        float v = r[u & 3] >= thr ? in[e] * scale : 0.0f;
        out[e] = accumulate ? out[e] + v : v;
    }
}

static attn_status dropout_check(const char *fn, int64_t count, double p)
{
    ATTN__DIM(fn, count);
    if (count > ATTN__MAX_ELEMS)
        return attn_fail(ATTN_OVERFLOW, "%s: argument 'count' (%lld) is too large", fn,
                         (long long)count);
    if (!(p >= 0.0 && p < 1.0))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'p' is %g; it must be in [0, 1)", fn, p);
    return ATTN_OK;
}

attn_status attn_nn_dropout_forward(const float *x, int64_t count, double p, uint64_t seed,
                                    uint64_t offset, float *y)
{
    ATTN__NOT_NULL(__func__, x);
    ATTN__NOT_NULL(__func__, y);
    attn_status s = dropout_check(__func__, count, p);
    if (s != ATTN_OK) return s;
    attn__span sp[] = {{"y", y, fbytes(count)}, {"x", x == y ? NULL : x, fbytes(count)}};
    if ((s = attn__disjoint(__func__, sp, 2, 1)) != ATTN_OK) return s;
    dropout_apply(x, count, p, seed, offset, 0, y);
    return ATTN_OK;
}

attn_status attn_nn_dropout_backward(const float *dy, int64_t count, double p, uint64_t seed,
                                     uint64_t offset, float *dx)
{
    ATTN__NOT_NULL(__func__, dy);
    ATTN__NOT_NULL(__func__, dx);
    attn_status s = dropout_check(__func__, count, p);
    if (s != ATTN_OK) return s;
    attn__span sp[] = {{"dx", dx, fbytes(count)}, {"dy", dy, fbytes(count)}};
    if ((s = attn__disjoint(__func__, sp, 2, 1)) != ATTN_OK) return s;
    dropout_apply(dy, count, p, seed, offset, 1, dx);
    return ATTN_OK;
}

/* ---- positions ------------------------------------------------------------------------ */

attn_status attn_nn_sinusoidal(int64_t n_pos, int64_t d, float *table)
{
    int64_t cnt;
    ATTN__DIM(__func__, n_pos);
    ATTN__DIM(__func__, d);
    ATTN__MUL(__func__, n_pos, d, &cnt);
    ATTN__NOT_NULL(__func__, table);
    for (int64_t c = 0; c < d; c++) { /* column c = 2i (sin) or 2i + 1 (cos) */
        double freq = pow(10000.0, -(double)(c - (c & 1)) / (double)d);
        for (int64_t p = 0; p < n_pos; p++) {
            double a = (double)p * freq;
            table[p * d + c] = (float)((c & 1) ? cos(a) : sin(a));
        }
    }
    return ATTN_OK;
}

static attn_status rope_check(const char *fn, int64_t n, int64_t heads, int64_t hd,
                              const int32_t *pos, double theta, int64_t *count)
{
    int64_t rows;
    ATTN__NOT_NULL(fn, pos);
    ATTN__DIM(fn, n);
    ATTN__DIM(fn, heads);
    ATTN__DIM(fn, hd);
    if (hd % 2 != 0)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'hd' is %lld; it must be even", fn,
                         (long long)hd);
    ATTN__MUL(fn, n, heads, &rows);
    ATTN__MUL(fn, rows, hd, count);
    if (!(theta > 0.0) || !isfinite(theta))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'theta' is %g; it must be finite and > 0",
                         fn, theta);
    return ATTN_OK;
}

/* out [n, heads, hd] (= or +=) rotation of in by sign * pos[r] * theta^(-2i/hd)
 * on the pairs (i, i + hd/2). With sign = -1 this is R^T (backward). */
static void rope_apply(const float *in, int64_t n, int64_t heads, int64_t hd,
                       const int32_t *pos, double theta, double sign, int accumulate,
                       float *out)
{
    const int64_t h2 = hd / 2;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < h2; i++) {
            double ang = sign * (double)pos[r] * pow(theta, -2.0 * (double)i / (double)hd);
            float c = (float)cos(ang), s = (float)sin(ang);
            for (int64_t h = 0; h < heads; h++) {
                const float *a = in + (r * heads + h) * hd;
                float *o = out + (r * heads + h) * hd;
                float x0 = a[i], x1 = a[i + h2];
                float y0 = x0 * c - x1 * s, y1 = x1 * c + x0 * s;
                o[i] = accumulate ? o[i] + y0 : y0;
                o[i + h2] = accumulate ? o[i + h2] + y1 : y1;
            }
        }
}

attn_status attn_nn_rope_forward(const float *x, int64_t n, int64_t heads, int64_t hd,
                                 const int32_t *pos, double theta, float *y)
{
    int64_t cnt;
    ATTN__NOT_NULL(__func__, x);
    ATTN__NOT_NULL(__func__, y);
    attn_status s = rope_check(__func__, n, heads, hd, pos, theta, &cnt);
    if (s != ATTN_OK) return s;
    attn__span sp[] = {{"y", y, fbytes(cnt)},
                       {"x", x == y ? NULL : x, fbytes(cnt)},
                       {"pos", pos, (size_t)n * sizeof(int32_t)}};
    if ((s = attn__disjoint(__func__, sp, 3, 1)) != ATTN_OK) return s;
    rope_apply(x, n, heads, hd, pos, theta, 1.0, 0, y);
    return ATTN_OK;
}

attn_status attn_nn_rope_backward(const float *dy, int64_t n, int64_t heads, int64_t hd,
                                  const int32_t *pos, double theta, float *dx)
{
    int64_t cnt;
    ATTN__NOT_NULL(__func__, dy);
    ATTN__NOT_NULL(__func__, dx);
    attn_status s = rope_check(__func__, n, heads, hd, pos, theta, &cnt);
    if (s != ATTN_OK) return s;
    attn__span sp[] = {{"dx", dx, fbytes(cnt)},
                       {"dy", dy, fbytes(cnt)},
                       {"pos", pos, (size_t)n * sizeof(int32_t)}};
    if ((s = attn__disjoint(__func__, sp, 3, 1)) != ATTN_OK) return s;
    rope_apply(dy, n, heads, hd, pos, theta, -1.0, 1, dx);
    return ATTN_OK;
}

/* ---- cross-entropy ----------------------------------------------------------------------- */

/* Loss of one row z [vocab] with target t and smoothing ls:
 *   lse - (1 - ls) z[t] - (ls / vocab) sum_c z[c]
 * and, if dz is not NULL, dz = (softmax(z) - (1 - ls) onehot(t) - ls / vocab) * gs.
 * dz may be z itself: each z[c] is read before dz[c] is written. */
static double ce_row(const float *z, int64_t vocab, int32_t t, double ls, double gs, float *dz)
{
    double lse = attn__ctx_toolkit(NULL)->softmax_row(z, vocab), zs = attn__row_sum(z, vocab);
    double loss = lse - (1.0 - ls) * z[t] - ls / (double)vocab * zs;
    for (int64_t c = 0; c < vocab && dz; c++) {
        double target = ls / (double)vocab + (c == t ? 1.0 - ls : 0.0);
        dz[c] = (float)((exp((double)z[c] - lse) - target) * gs);
    }
    return loss;
}

static attn_status ce_check(const char *fn, int64_t n, int64_t vocab, const int32_t *targets,
                            int32_t ignore, double ls, double grad_scale, int64_t *counted)
{
    if (!(ls >= 0.0 && ls <= 1.0))
        return attn_fail(ATTN_BAD_PARAM,
                         "%s: argument 'label_smoothing' is %g; it must be in [0, 1]", fn, ls);
    if (!isfinite(grad_scale))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'grad_scale' is %g; it must be finite",
                         fn, grad_scale);
    *counted = 0;
    for (int64_t r = 0; r < n; r++) {
        if (targets[r] == ignore) continue;
        if (targets[r] < 0 || targets[r] >= vocab)
            return attn_fail(ATTN_BAD_PARAM,
                             "%s: argument 'targets' has targets[%lld] = %d, outside [0, "
                             "vocab=%lld) and not ignore (%d)",
                             fn, (long long)r, (int)targets[r], (long long)vocab, (int)ignore);
        (*counted)++;
    }
    return ATTN_OK;
}

attn_status attn_nn_cross_entropy(const float *logits, int64_t n, int64_t vocab,
                                  const int32_t *targets, int32_t ignore,
                                  double label_smoothing, double grad_scale, double *loss,
                                  int64_t *count, float *dlogits)
{
    int64_t cnt, counted = 0;
    ATTN__NOT_NULL(__func__, logits);
    ATTN__NOT_NULL(__func__, targets);
    ATTN__NOT_NULL(__func__, loss);
    ATTN__DIM(__func__, n);
    ATTN__DIM_POS(__func__, vocab);
    ATTN__MUL(__func__, n, vocab, &cnt);
    attn_status s = ce_check(__func__, n, vocab, targets, ignore, label_smoothing, grad_scale,
                             &counted);
    if (s != ATTN_OK) return s;
    /* dlogits == logits (in place) is allowed; any other overlap is not */
    attn__span sp[] = {{"dlogits", dlogits, fbytes(cnt)},
                       {"logits", logits == dlogits ? NULL : logits, fbytes(cnt)},
                       {"targets", targets, (size_t)n * sizeof(int32_t)}};
    if ((s = attn__disjoint(__func__, sp, 3, 1)) != ATTN_OK) return s;
    double total = 0.0, gs = counted > 0 ? grad_scale / (double)counted : 0.0;
    for (int64_t r = 0; r < n; r++) {
        float *dz = dlogits ? dlogits + r * vocab : NULL;
        if (targets[r] == ignore) {
            if (dz) memset(dz, 0, fbytes(vocab));
            continue;
        }
        total += ce_row(logits + r * vocab, vocab, targets[r], label_smoothing, gs, dz);
    }
    *loss = counted > 0 ? total / (double)counted : 0.0;
    if (count) *count = counted;
    return ATTN_OK;
}
