/* test_layers.c - the layers and optimisation of attn/nn.h (src/nn/layers.c,
 * src/nn/optim.c): forward values against naive double-precision
 * reimplementations written here from the math; backward against centred
 * finite differences of a random projection L = sum(r * y) of the float
 * forward; the accumulate (+=) contract; dropout statistics and mask
 * agreement; AdamW, schedules and clipping at hand-computed points; and a
 * table of argument checks for every function (status and the argument's
 * name in attn_last_error()).
 */
#include "nn_test.h"

#include "nn/nn_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------- */

static float *fbuf(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (p == NULL) {
        fprintf(stderr, "test_layers: out of memory\n");
        exit(2);
    }
    return p;
}

static float *frand(uint64_t *st, int64_t n, double lo, double hi)
{
    float *p = fbuf(n);
    for (int64_t i = 0; i < n; i++) p[i] = (float)t_rand_uniform(st, lo, hi);
    return p;
}

static double dot_fd(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* max_i |got[i] - want[i]| / (1 + |want[i]|) */
static double max_rel(const float *got, const double *want, int64_t n)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(d <= e)) e = d; /* NaN wins */
    }
    return e;
}

static double max_rel_ff(const float *got, const float *want, int64_t n)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (1.0 + fabs((double)want[i]));
        if (!(d <= e)) e = d;
    }
    return e;
}

/* A scalar loss of the current contents of the buffers behind ctx. */
typedef double (*loss_fn)(void *ctx);

/* Largest |fd - grad| / (1 + |grad|) over p[0..count), fd the centred
 * difference of loss with step h (the step actually taken in float). */
static double fd_err(float *p, int64_t count, const float *grad, loss_fn loss, void *ctx,
                     float h)
{
    double e = 0.0;
    for (int64_t i = 0; i < count; i++) {
        float keep = p[i], hi = keep + h, lo = keep - h;
        p[i] = hi;
        double lp = loss(ctx);
        p[i] = lo;
        double lm = loss(ctx);
        p[i] = keep;
        double fd = (lp - lm) / ((double)hi - (double)lo);
        double d = fabs(fd - grad[i]) / (1.0 + fabs((double)grad[i]));
        if (!(d <= e)) e = d;
    }
    return e;
}

/* Checks that a call failed with `want` and that the message names `name`. */
#define T_ERR(call, want, name) t_err((call), (want), (name), #call, __LINE__)

static void t_err(attn_status got, attn_status want, const char *name, const char *call,
                  int line)
{
    t_checks++;
    if (got != want) {
        t_fail(__FILE__, line, "%s: got %s, want %s (%s)", call, attn_status_name(got),
               attn_status_name(want), attn_last_error());
        return;
    }
    t_checks++;
    if (strstr(attn_last_error(), name) == NULL)
        t_fail(__FILE__, line, "%s: message \"%s\" does not name '%s'", call,
               attn_last_error(), name);
}

/* ---- linear -------------------------------------------------------------------------- */

typedef struct {
    const float *x, *w, *b, *r;
    int64_t n, in, out;
    float *y;
} linear_case;

static double linear_loss(void *p)
{
    linear_case *c = p;
    T_EQ_STATUS(attn_nn_linear_forward(t_ctx(2), c->x, c->n, c->in, c->w, c->b, c->out, c->y), ATTN_OK);
    return dot_fd(c->y, c->r, c->n * c->out);
}

T_TEST(layers_linear_forward_vs_double)
{
    uint64_t st = 11;
    const int64_t n = 7, in = 13, out = 5;
    float *x = frand(&st, n * in, -1, 1), *w = frand(&st, out * in, -1, 1);
    float *b = frand(&st, out, -1, 1), *y = fbuf(n * out);
    double ref[7 * 5];
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        for (int64_t r = 0; r < n; r++)
            for (int64_t o = 0; o < out; o++) {
                double s = with_bias ? b[o] : 0.0;
                for (int64_t i = 0; i < in; i++) s += (double)x[r * in + i] * w[o * in + i];
                ref[r * out + o] = s;
            }
        T_EQ_STATUS(attn_nn_linear_forward(t_ctx(2), x, n, in, w, with_bias ? b : NULL, out, y), ATTN_OK);
        T_LE(max_rel(y, ref, n * out), 1e-6);
    }
    /* in = 0: y is the bias; n = 0: nothing written */
    T_EQ_STATUS(attn_nn_linear_forward(t_ctx(2), x, n, 0, w, b, out, y), ATTN_OK);
    for (int64_t r = 0; r < n; r++) T_CHECK(memcmp(y + r * out, b, sizeof(float) * 5) == 0);
    y[0] = 42.0f;
    T_EQ_STATUS(attn_nn_linear_forward(t_ctx(2), x, 0, in, w, b, out, y), ATTN_OK);
    T_CHECK(y[0] == 42.0f);
    free(x), free(w), free(b), free(y);
}

T_TEST(layers_linear_backward_fd_and_accumulate)
{
    uint64_t st = 12;
    const int64_t n = 6, in = 9, out = 4;
    linear_case c = {frand(&st, n * in, -1, 1), frand(&st, out * in, -1, 1),
                     frand(&st, out, -1, 1),    frand(&st, n * out, -1, 1),
                     n, in, out, fbuf(n * out)};
    float *dx = fbuf(n * in), *dw = fbuf(out * in), *db = fbuf(out);
    T_EQ_STATUS(attn_nn_linear_backward(t_ctx(2), c.x, n, in, c.w, out, c.r, dx, dw, db), ATTN_OK);
    T_LE(fd_err((float *)c.x, n * in, dx, linear_loss, &c, 1e-2f), 1e-3);
    T_LE(fd_err((float *)c.w, out * in, dw, linear_loss, &c, 1e-2f), 1e-3);
    T_LE(fd_err((float *)c.b, out, db, linear_loss, &c, 1e-2f), 1e-3);
    /* += : a second call from prefilled buffers adds the same gradients */
    float *dx2 = fbuf(n * in), *dw2 = fbuf(out * in), *db2 = fbuf(out), *want = fbuf(n * in);
    for (int64_t i = 0; i < n * in; i++) dx2[i] = 1.0f, want[i] = 1.0f + 2.0f * dx[i];
    for (int64_t i = 0; i < out * in; i++) dw2[i] = dw[i];
    for (int64_t i = 0; i < out; i++) db2[i] = -db[i];
    T_EQ_STATUS(attn_nn_linear_backward(t_ctx(2), c.x, n, in, c.w, out, c.r, dx2, dw2, db2), ATTN_OK);
    T_EQ_STATUS(attn_nn_linear_backward(t_ctx(2), c.x, n, in, c.w, out, c.r, dx2, NULL, NULL), ATTN_OK);
    T_LE(max_rel_ff(dx2, want, n * in), 1e-6);
    for (int64_t i = 0; i < out * in; i++) T_NEAR(dw2[i], 2.0f * dw[i], 1e-6 * (1 + fabsf(dw[i])));
    for (int64_t i = 0; i < out; i++) T_NEAR(db2[i], 0.0f, 1e-6);
    free((void *)c.x), free((void *)c.w), free((void *)c.b), free((void *)c.r), free(c.y);
    free(dx), free(dw), free(db), free(dx2), free(dw2), free(db2), free(want);
}

T_TEST(layers_linear_args)
{
    float x[12] = {0}, w[12] = {0}, b[4] = {0}, y[12] = {0}, dy[12] = {0}, dx[12], dw[12];
    T_ERR(attn_nn_linear_forward(NULL, x, 3, 4, w, b, 3, y), ATTN_NULL_ARG, "'ctx'");
    T_ERR(attn_nn_linear_backward(NULL, x, 3, 4, w, 3, dy, dx, dw, b), ATTN_NULL_ARG, "'ctx'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), NULL, 3, 4, w, b, 3, y), ATTN_NULL_ARG, "'x'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, 4, NULL, b, 3, y), ATTN_NULL_ARG, "'w'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, 4, w, b, 3, NULL), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, -1, 4, w, b, 3, y), ATTN_BAD_DIM, "'n'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, -4, w, b, 3, y), ATTN_BAD_DIM, "'in'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, 4, w, b, -3, y), ATTN_BAD_DIM, "'out'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, INT64_MAX / 2, 4, w, b, 3, y), ATTN_OVERFLOW, "n * in");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, 4, w, b, 3, x + 1), ATTN_OVERLAP, "'y' overlaps 'x'");
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, 4, w, y + 2, 3, y), ATTN_OVERLAP, "'b'");
    T_ERR(attn_nn_linear_backward(t_ctx(2), x, 3, 4, w, 3, NULL, dx, dw, b), ATTN_NULL_ARG, "'dy'");
    T_ERR(attn_nn_linear_backward(t_ctx(2), NULL, 3, 4, w, 3, dy, dx, dw, b), ATTN_NULL_ARG, "'x'");
    T_ERR(attn_nn_linear_backward(t_ctx(2), x, 3, 4, w, -3, dy, dx, dw, b), ATTN_BAD_DIM, "'out'");
    T_ERR(attn_nn_linear_backward(t_ctx(2), x, 3, 4, w, 3, dy, dx, dx + 2, b), ATTN_OVERLAP, "'dx'");
    T_ERR(attn_nn_linear_backward(t_ctx(2), x, 3, 4, w, 3, dy, dx, dw, dy), ATTN_OVERLAP, "'db'");
    T_ERR(attn_nn_linear_backward(t_ctx(2), x, 3, 4, w, 3, dy, w, NULL, NULL), ATTN_OVERLAP, "'dx'");
    /* nothing written on error */
    y[0] = 7.0f;
    T_ERR(attn_nn_linear_forward(t_ctx(2), x, 3, 4, w, b, -3, y), ATTN_BAD_DIM, "'out'");
    T_CHECK(y[0] == 7.0f);
}

/* ---- embedding ----------------------------------------------------------------------- */

T_TEST(layers_embedding)
{
    uint64_t st = 13;
    const int64_t vocab = 5, d = 3, n = 4;
    float *table = frand(&st, vocab * d, -1, 1), *y = fbuf(n * d), *dt = fbuf(vocab * d);
    const int32_t ids[4] = {3, 0, 3, 4};
    T_EQ_STATUS(attn_nn_embedding_forward(ids, n, table, vocab, d, y), ATTN_OK);
    for (int64_t r = 0; r < n; r++)
        T_CHECK(memcmp(y + r * d, table + ids[r] * d, sizeof(float) * 3) == 0);
    const float dy[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (int64_t i = 0; i < vocab * d; i++) dt[i] = 0.5f;
    T_EQ_STATUS(attn_nn_embedding_backward(ids, n, vocab, d, dy, dt), ATTN_OK);
    /* row 3 gets rows 0 and 2 of dy, row 0 row 1, row 4 row 3, rows 1, 2 nothing */
    const float want[15] = {4.5f, 5.5f, 6.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f,
                            0.5f, 8.5f, 10.5f, 12.5f, 10.5f, 11.5f, 12.5f};
    for (int64_t i = 0; i < vocab * d; i++) T_CHECK(dt[i] == want[i]);

    const int32_t bad[4] = {0, 1, 5, 2}, neg[2] = {0, -1};
    y[0] = 9.0f;
    T_ERR(attn_nn_embedding_forward(bad, n, table, vocab, d, y), ATTN_BAD_PARAM, "ids[2] = 5");
    T_CHECK(y[0] == 9.0f); /* the check comes before any copy */
    T_ERR(attn_nn_embedding_forward(neg, 2, table, vocab, d, y), ATTN_BAD_PARAM, "ids[1] = -1");
    T_ERR(attn_nn_embedding_backward(bad, n, vocab, d, dy, dt), ATTN_BAD_PARAM, "ids[2]");
    T_CHECK(dt[0] == 4.5f);
    T_ERR(attn_nn_embedding_forward(NULL, n, table, vocab, d, y), ATTN_NULL_ARG, "'ids'");
    T_ERR(attn_nn_embedding_forward(ids, n, NULL, vocab, d, y), ATTN_NULL_ARG, "'table'");
    T_ERR(attn_nn_embedding_forward(ids, n, table, vocab, d, NULL), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_embedding_forward(ids, -1, table, vocab, d, y), ATTN_BAD_DIM, "'n'");
    T_ERR(attn_nn_embedding_forward(ids, n, table, -5, d, y), ATTN_BAD_DIM, "'vocab'");
    T_ERR(attn_nn_embedding_forward(ids, n, table, vocab, -3, y), ATTN_BAD_DIM, "'d'");
    T_ERR(attn_nn_embedding_forward(ids, n, table, INT64_MAX, 4, y), ATTN_OVERFLOW, "vocab * d");
    T_ERR(attn_nn_embedding_forward(ids, n, table, vocab, d, table + 1), ATTN_OVERLAP, "'table'");
    T_ERR(attn_nn_embedding_backward(ids, n, vocab, d, NULL, dt), ATTN_NULL_ARG, "'dy'");
    T_ERR(attn_nn_embedding_backward(ids, n, vocab, d, dy, NULL), ATTN_NULL_ARG, "'dtable'");
    T_ERR(attn_nn_embedding_backward(ids, n, vocab, d, dt, dt), ATTN_OVERLAP, "'dy'");
    free(table), free(y), free(dt);
}

/* ---- LayerNorm and RMSNorm ------------------------------------------------------------------- */

typedef struct {
    int rms;
    const float *x, *gamma, *beta, *r;
    int64_t n, d;
    double eps;
    float *y;
} norm_case;

static double norm_loss(void *p)
{
    norm_case *c = p;
    if (c->rms)
        T_EQ_STATUS(attn_nn_rmsnorm_forward(c->x, c->n, c->d, c->gamma, c->eps, c->y, NULL),
                    ATTN_OK);
    else
        T_EQ_STATUS(attn_nn_layernorm_forward(c->x, c->n, c->d, c->gamma, c->beta, c->eps, c->y,
                                              NULL, NULL),
                    ATTN_OK);
    return dot_fd(c->y, c->r, c->n * c->d);
}

/* Naive double LayerNorm / RMSNorm of one row: mean (0 for RMS), rstd, y. */
static void norm_ref(int rms, const float *x, int64_t d, const float *g, const float *b,
                     double eps, double *mean, double *rstd, double *y)
{
    double mu = 0.0, var = 0.0;
    if (!rms) {
        for (int64_t i = 0; i < d; i++) mu += x[i];
        mu /= (double)d;
    }
    for (int64_t i = 0; i < d; i++) var += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *rstd = 1.0 / sqrt(var / (double)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mu) * *rstd * g[i] + (b ? b[i] : 0.0);
}

static void norm_forward_check(int rms)
{
    uint64_t st = 21 + (uint64_t)rms;
    const int64_t n = 5, d = 37;
    float *x = frand(&st, n * d, -2, 3), *g = frand(&st, d, 0.5, 1.5), *b = frand(&st, d, -1, 1);
    float *y = fbuf(n * d), mean[5], rstd[5];
    double ry[37], rm, rr;
    x[d] = 1000.0f; /* row 1: a large mean */
    for (int64_t i = 1; i < d; i++) x[d + i] = 1000.0f + (float)(i % 3) * 0.001f;
    for (int with_beta = 0; with_beta < 2 - rms; with_beta++) {
        const float *bb = with_beta ? b : NULL;
        attn_status s = rms ? attn_nn_rmsnorm_forward(x, n, d, g, 1e-5, y, rstd)
                            : attn_nn_layernorm_forward(x, n, d, g, bb, 1e-5, y, mean, rstd);
        T_EQ_STATUS(s, ATTN_OK);
        for (int64_t r = 0; r < n; r++) {
            norm_ref(rms, x + r * d, d, g, bb, 1e-5, &rm, &rr, ry);
            T_LE(max_rel(y + r * d, ry, d), 2e-6);
            if (!rms) T_NEAR(mean[r], rm, 1e-7 * (1 + fabs(rm)));
            T_NEAR(rstd[r], rr, 1e-6 * rr);
        }
    }
    free(x), free(g), free(b), free(y);
}

T_TEST(layers_layernorm_forward_vs_double) { norm_forward_check(0); }
T_TEST(layers_rmsnorm_forward_vs_double) { norm_forward_check(1); }

static void norm_backward_check(int rms)
{
    uint64_t st = 31 + (uint64_t)rms;
    const int64_t n = 4, d = 19;
    norm_case c = {rms, frand(&st, n * d, -1, 1), frand(&st, d, 0.5, 1.5), frand(&st, d, -1, 1),
                   frand(&st, n * d, -1, 1), n, d, 1e-5, fbuf(n * d)};
    float mean[4], rstd[4], *dx = fbuf(n * d), *dg = fbuf(d), *dbeta = fbuf(d);
    attn_status s = rms ? attn_nn_rmsnorm_forward(c.x, n, d, c.gamma, c.eps, c.y, rstd)
                        : attn_nn_layernorm_forward(c.x, n, d, c.gamma, c.beta, c.eps, c.y, mean,
                                                    rstd);
    T_EQ_STATUS(s, ATTN_OK);
    s = rms ? attn_nn_rmsnorm_backward(c.x, n, d, c.gamma, rstd, c.r, dx, dg)
            : attn_nn_layernorm_backward(c.x, n, d, c.gamma, mean, rstd, c.r, dx, dg, dbeta);
    T_EQ_STATUS(s, ATTN_OK);
    T_LE(fd_err((float *)c.x, n * d, dx, norm_loss, &c, 4e-3f), 2e-3);
    T_LE(fd_err((float *)c.gamma, d, dg, norm_loss, &c, 4e-3f), 2e-3);
    if (!rms) T_LE(fd_err((float *)c.beta, d, dbeta, norm_loss, &c, 4e-3f), 2e-3);
    /* += from prefilled buffers; NULL gradients are skipped */
    float *dx2 = fbuf(n * d), *dg2 = fbuf(d), *want = fbuf(n * d);
    for (int64_t i = 0; i < n * d; i++) dx2[i] = -1.0f, want[i] = dx[i] - 1.0f;
    for (int64_t i = 0; i < d; i++) dg2[i] = dg[i];
    s = rms ? attn_nn_rmsnorm_backward(c.x, n, d, c.gamma, rstd, c.r, dx2, dg2)
            : attn_nn_layernorm_backward(c.x, n, d, c.gamma, mean, rstd, c.r, dx2, dg2, NULL);
    T_EQ_STATUS(s, ATTN_OK);
    T_LE(max_rel_ff(dx2, want, n * d), 1e-6);
    for (int64_t i = 0; i < d; i++) T_NEAR(dg2[i], 2.0f * dg[i], 1e-6 * (1 + fabsf(dg[i])));
    free((void *)c.x), free((void *)c.gamma), free((void *)c.beta), free((void *)c.r), free(c.y);
    free(dx), free(dg), free(dbeta), free(dx2), free(dg2), free(want);
}

T_TEST(layers_layernorm_backward_fd_and_accumulate) { norm_backward_check(0); }
T_TEST(layers_rmsnorm_backward_fd_and_accumulate) { norm_backward_check(1); }

T_TEST(layers_norm_args)
{
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, g[4] = {1, 1, 1, 1}, y[8], m[2], r[2] = {1, 1};
    float dy[8] = {0}, dx[8], dg[4];
    T_ERR(attn_nn_layernorm_forward(NULL, 2, 4, g, NULL, 1e-5, y, m, r), ATTN_NULL_ARG, "'x'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, NULL, NULL, 1e-5, y, m, r), ATTN_NULL_ARG, "'gamma'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, 1e-5, NULL, m, r), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_layernorm_forward(x, -2, 4, g, NULL, 1e-5, y, m, r), ATTN_BAD_DIM, "'n'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 0, g, NULL, 1e-5, y, m, r), ATTN_BAD_DIM, "'d'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, 0.0, y, m, r), ATTN_BAD_PARAM, "'eps'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, -1e-5, y, m, r), ATTN_BAD_PARAM, "'eps'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, NAN, y, m, r), ATTN_BAD_PARAM, "'eps'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, INFINITY, y, m, r), ATTN_BAD_PARAM, "'eps'");
    T_ERR(attn_nn_layernorm_forward(x, INT64_MAX, 4, g, NULL, 1e-5, y, m, r), ATTN_OVERFLOW, "n * d");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, 1e-5, y, m, y), ATTN_OVERLAP, "'rstd'");
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, 1e-5, x, m, r), ATTN_OVERLAP, "'y'");
    T_ERR(attn_nn_layernorm_backward(x, 2, 4, g, NULL, r, dy, dx, dg, NULL), ATTN_NULL_ARG, "'mean'");
    T_ERR(attn_nn_layernorm_backward(x, 2, 4, g, m, NULL, dy, dx, dg, NULL), ATTN_NULL_ARG, "'rstd'");
    T_ERR(attn_nn_layernorm_backward(x, 2, 4, g, m, r, NULL, dx, dg, NULL), ATTN_NULL_ARG, "'dy'");
    T_ERR(attn_nn_layernorm_backward(x, 2, 4, g, m, r, dy, dx, dg, dg), ATTN_OVERLAP, "'dgamma'");
    T_ERR(attn_nn_layernorm_backward(x, 2, -1, g, m, r, dy, dx, dg, NULL), ATTN_BAD_DIM, "'d'");
    T_ERR(attn_nn_rmsnorm_forward(x, 2, 4, g, 0.0, y, r), ATTN_BAD_PARAM, "'eps'");
    T_ERR(attn_nn_rmsnorm_forward(x, 2, 4, NULL, 1e-6, y, r), ATTN_NULL_ARG, "'gamma'");
    T_ERR(attn_nn_rmsnorm_forward(x, 2, 4, g, 1e-6, NULL, r), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_rmsnorm_forward(x, 2, -4, g, 1e-6, y, r), ATTN_BAD_DIM, "'d'");
    T_ERR(attn_nn_rmsnorm_backward(x, 2, 4, g, NULL, dy, dx, dg), ATTN_NULL_ARG, "'rstd'");
    T_ERR(attn_nn_rmsnorm_backward(x, 2, 4, g, r, dy, dy, dg), ATTN_OVERLAP, "'dx'");
    /* nothing written on error */
    y[0] = 3.0f, m[0] = 3.0f;
    T_ERR(attn_nn_layernorm_forward(x, 2, 4, g, NULL, NAN, y, m, r), ATTN_BAD_PARAM, "'eps'");
    T_CHECK(y[0] == 3.0f && m[0] == 3.0f);
    /* n = 0 is a no-op */
    T_EQ_STATUS(attn_nn_layernorm_forward(x, 0, 4, g, NULL, 1e-5, y, m, r), ATTN_OK);
    T_CHECK(y[0] == 3.0f);
}

/* ---- activations -------------------------------------------------------------------------- */

typedef struct {
    attn_nn_act act;
    const float *x, *r;
    int64_t n;
    float *y;
} act_case;

static double act_loss(void *p)
{
    act_case *c = p;
    T_EQ_STATUS(attn_nn_act_forward(c->act, c->x, c->n, c->y), ATTN_OK);
    return dot_fd(c->y, c->r, c->n);
}

T_TEST(layers_act_forward_vs_double)
{
    enum { N = 64 };
    uint64_t st = 41;
    float *x = frand(&st, N, -4, 4), y[N];
    const float fixed[8] = {-12.0f, -7.5f, -5.0f, -1e-3f, 0.0f, 1e-3f, 5.0f, 12.0f};
    memcpy(x, fixed, sizeof fixed);
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_GELU, x, N, y), ATTN_OK);
    for (int i = 0; i < N; i++) { /* relative: the far negative tail is tiny but exact */
        double want = 0.5 * x[i] * erfc(-(double)x[i] / sqrt(2.0));
        T_NEAR(y[i], want, 2e-6 * fabs(want) + 1e-30);
    }
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_RELU, x, N, y), ATTN_OK);
    for (int i = 0; i < N; i++) T_CHECK(y[i] == (x[i] > 0 ? x[i] : 0.0f));
    /* a dense sweep over [-16, 16]: GELU within 1 float ulp (relative, so the
     * tail counts), its derivative Phi + x phi within 2e-7 */
    enum { M = 32001 };
    float *xs = fbuf(M), *ys = fbuf(M), *ds = fbuf(M), *ones = fbuf(M);
    for (int i = 0; i < M; i++) xs[i] = -16.0f + (float)i * 0.001f, ones[i] = 1.0f;
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_GELU, xs, M, ys), ATTN_OK);
    T_EQ_STATUS(attn_nn_act_backward(ATTN_NN_ACT_GELU, xs, M, ones, ds), ATTN_OK);
    double worst_y = 0.0, worst_d = 0.0;
    for (int i = 0; i < M; i++) {
        double v = xs[i], cdf = 0.5 * erfc(-v / sqrt(2.0));
        double want = v * cdf, dwant = cdf + v * exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846);
        /* relative error beyond one denormal step (2^-149), for the underflow */
        double ey = want == 0.0 ? fabs(ys[i]) : (fabs(ys[i] - want) - 1.5e-45) / fabs(want);
        double ed = fabs(ds[i] - dwant);
        worst_y = ey > worst_y || isnan(ey) ? ey : worst_y;
        worst_d = ed > worst_d || isnan(ed) ? ed : worst_d;
    }
    T_LE(worst_y, 1.2e-7);
    T_LE(worst_d, 2e-7);
    free(xs), free(ys), free(ds), free(ones);
    /* in place equals out of place, bitwise */
    float z[N];
    memcpy(z, x, sizeof z);
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_GELU, x, N, y), ATTN_OK);
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_GELU, z, N, z), ATTN_OK);
    T_CHECK(memcmp(y, z, sizeof z) == 0);
    /* NaN propagates through both */
    float nan_in = NAN, out = 0.0f;
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_RELU, &nan_in, 1, &out), ATTN_OK);
    T_CHECK(isnan(out));
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_GELU, &nan_in, 1, &out), ATTN_OK);
    T_CHECK(isnan(out));
    free(x);
}

T_TEST(layers_act_backward_fd_and_accumulate)
{
    enum { N = 48 };
    uint64_t st = 42;
    for (int k = 0; k < 2; k++) {
        attn_nn_act act = k == 0 ? ATTN_NN_ACT_GELU : ATTN_NN_ACT_RELU;
        act_case c = {act, frand(&st, N, -3, 3), frand(&st, N, -1, 1), N, fbuf(N)};
        float *xs = (float *)c.x, dx[N] = {0}, dx2[N];
        for (int i = 0; i < N; i++) /* keep ReLU's kink out of the difference stencil */
            if (fabsf(xs[i]) < 0.05f) xs[i] = 0.5f;
        T_EQ_STATUS(attn_nn_act_backward(act, c.x, N, c.r, dx), ATTN_OK);
        T_LE(fd_err(xs, N, dx, act_loss, &c, 1e-2f), 1e-3);
        for (int i = 0; i < N; i++) dx2[i] = 2.0f;
        T_EQ_STATUS(attn_nn_act_backward(act, c.x, N, c.r, dx2), ATTN_OK);
        for (int i = 0; i < N; i++) T_NEAR(dx2[i], 2.0f + dx[i], 1e-6);
        free(xs), free((void *)c.r), free(c.y);
    }
}

T_TEST(layers_act_args)
{
    float x[8] = {0}, y[8], dy[8] = {0}, dx[8];
    T_ERR(attn_nn_act_forward((attn_nn_act)0, x, 8, y), ATTN_BAD_PARAM, "'act'");
    T_ERR(attn_nn_act_forward((attn_nn_act)3, x, 8, y), ATTN_BAD_PARAM, "'act'");
    T_ERR(attn_nn_act_forward(ATTN_NN_ACT_GELU, NULL, 8, y), ATTN_NULL_ARG, "'x'");
    T_ERR(attn_nn_act_forward(ATTN_NN_ACT_GELU, x, 8, NULL), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_act_forward(ATTN_NN_ACT_GELU, x, -8, y), ATTN_BAD_DIM, "'count'");
    T_ERR(attn_nn_act_forward(ATTN_NN_ACT_GELU, x, INT64_MAX, y), ATTN_OVERFLOW, "'count'");
    T_ERR(attn_nn_act_forward(ATTN_NN_ACT_RELU, x, 4, x + 1), ATTN_OVERLAP, "'y'");
    T_ERR(attn_nn_act_backward((attn_nn_act)9, x, 8, dy, dx), ATTN_BAD_PARAM, "'act'");
    T_ERR(attn_nn_act_backward(ATTN_NN_ACT_RELU, x, 8, NULL, dx), ATTN_NULL_ARG, "'dy'");
    T_ERR(attn_nn_act_backward(ATTN_NN_ACT_RELU, x, 8, dy, NULL), ATTN_NULL_ARG, "'dx'");
    T_ERR(attn_nn_act_backward(ATTN_NN_ACT_RELU, x, 8, dy, dy), ATTN_OVERLAP, "'dy'");
    T_ERR(attn_nn_act_backward(ATTN_NN_ACT_RELU, x, 8, dy, x), ATTN_OVERLAP, "'x'");
}

/* ---- dropout ------------------------------------------------------------------------------- */

/* The documented rule (layers.c), written out again from its comment. */
static int keep_by_rule(uint64_t seed, uint64_t offset, double p, int64_t e)
{
    uint64_t u = offset + (uint64_t)e, q = u >> 2;
    uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), 0x6E6E6470u, 0};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
    attn_philox4x32_10(ctr, key, out);
    return (double)out[u & 3] >= floor(p * 4294967296.0);
}

T_TEST(layers_dropout_rate_and_masks)
{
    const int64_t N = 1000000;
    const double ps[3] = {0.1, 0.17, 0.5};
    float *x = fbuf(N), *y = fbuf(N), *dx = fbuf(N);
    for (int64_t i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
    for (int k = 0; k < 3; k++) {
        double p = ps[k];
        uint64_t seed = 0x1234567890ABCDEFull + (uint64_t)k, offset = 3 + ((uint64_t)k << 33);
        float scale = (float)(1.0 / (1.0 - p));
        T_EQ_STATUS(attn_nn_dropout_forward(x, N, p, seed, offset, y), ATTN_OK);
        memset(dx, 0, sizeof(float) * (size_t)N);
        T_EQ_STATUS(attn_nn_dropout_backward(x, N, p, seed, offset, dx), ATTN_OK);
        int64_t kept = 0, both = 0, mismatch = 0, rule_mismatch = 0;
        for (int64_t i = 0; i < N; i++) {
            int keep = attn_nn_dropout_keep(seed, offset, p, i);
            kept += keep;
            both += keep && i > 0 && y[i - 1] != 0.0f;
            mismatch += y[i] != (keep ? x[i] * scale : 0.0f) || dx[i] != y[i];
            if (i < 4096) rule_mismatch += keep != keep_by_rule(seed, offset, p, i);
        }
        double q = 1.0 - p, sd = sqrt((double)N * p * q);
        T_LE(fabs((double)kept - (double)N * q), 6.0 * sd);
        /* neighbours are independent: pairs kept together ~ (1-p)^2 */
        double q2 = q * q, sd2 = sqrt((double)(N - 1) * q2 * (1 - q2));
        T_LE(fabs((double)both - (double)(N - 1) * q2), 6.0 * sd2);
        T_EQ_INT(mismatch, 0);
        T_EQ_INT(rule_mismatch, 0);
        /* backward accumulates */
        T_EQ_STATUS(attn_nn_dropout_backward(x, 1000, p, seed, offset, dx), ATTN_OK);
        for (int64_t i = 0; i < 1000; i++) T_NEAR(dx[i], 2.0f * y[i], 1e-6 * fabsf(y[i]));
    }
    free(x), free(y), free(dx);
}

T_TEST(layers_dropout_pure_function_of_offset)
{
    enum { N = 103 };
    float x[N], y[N], y2[N], z[N];
    for (int i = 0; i < N; i++) x[i] = (float)i - 50.0f;
    /* elements [5, N) with offset + 5 are the same decisions as the full call */
    T_EQ_STATUS(attn_nn_dropout_forward(x, N, 0.5, 99, 1000, y), ATTN_OK);
    T_EQ_STATUS(attn_nn_dropout_forward(x + 5, N - 5, 0.5, 99, 1005, y2), ATTN_OK);
    T_CHECK(memcmp(y + 5, y2, sizeof(float) * (N - 5)) == 0);
    /* another seed gives another mask; in place equals out of place */
    T_EQ_STATUS(attn_nn_dropout_forward(x, N, 0.5, 100, 1000, y2), ATTN_OK);
    T_CHECK(memcmp(y, y2, sizeof y) != 0);
    memcpy(z, x, sizeof z);
    T_EQ_STATUS(attn_nn_dropout_forward(z, N, 0.5, 99, 1000, z), ATTN_OK);
    T_CHECK(memcmp(y, z, sizeof z) == 0);
    /* p = 0 keeps everything, bitwise */
    T_EQ_STATUS(attn_nn_dropout_forward(x, N, 0.0, 99, 1000, y), ATTN_OK);
    T_CHECK(memcmp(x, y, sizeof y) == 0);
    T_EQ_INT(attn_nn_dropout_keep(1, 2, 0.0, 3), 1);
    /* the stream index wraps mod 2^64 */
    T_EQ_INT(attn_nn_dropout_keep(7, UINT64_MAX, 0.5, 1), attn_nn_dropout_keep(7, 0, 0.5, 0));
}

T_TEST(layers_dropout_args)
{
    float x[4] = {1, 2, 3, 4}, y[4];
    T_ERR(attn_nn_dropout_forward(NULL, 4, 0.1, 0, 0, y), ATTN_NULL_ARG, "'x'");
    T_ERR(attn_nn_dropout_forward(x, 4, 0.1, 0, 0, NULL), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_dropout_forward(x, -4, 0.1, 0, 0, y), ATTN_BAD_DIM, "'count'");
    T_ERR(attn_nn_dropout_forward(x, INT64_MAX, 0.1, 0, 0, y), ATTN_OVERFLOW, "'count'");
    T_ERR(attn_nn_dropout_forward(x, 4, 1.0, 0, 0, y), ATTN_BAD_PARAM, "'p'");
    T_ERR(attn_nn_dropout_forward(x, 4, -0.1, 0, 0, y), ATTN_BAD_PARAM, "'p'");
    T_ERR(attn_nn_dropout_forward(x, 4, NAN, 0, 0, y), ATTN_BAD_PARAM, "'p'");
    T_ERR(attn_nn_dropout_forward(x, 3, 0.1, 0, 0, x + 1), ATTN_OVERLAP, "'y'");
    T_ERR(attn_nn_dropout_backward(NULL, 4, 0.1, 0, 0, y), ATTN_NULL_ARG, "'dy'");
    T_ERR(attn_nn_dropout_backward(x, 4, 0.1, 0, 0, NULL), ATTN_NULL_ARG, "'dx'");
    T_ERR(attn_nn_dropout_backward(x, 4, 1.5, 0, 0, y), ATTN_BAD_PARAM, "'p'");
    T_ERR(attn_nn_dropout_backward(x, 4, 0.1, 0, 0, x), ATTN_OVERLAP, "'dx'");
}

/* ---- positions ------------------------------------------------------------------------------ */

T_TEST(layers_sinusoidal)
{
    for (int64_t d = 5; d <= 6; d++) { /* odd d: the last column is a sine */
        float t[40 * 6];
        T_EQ_STATUS(attn_nn_sinusoidal(40, d, t), ATTN_OK);
        for (int64_t c = 0; c < d; c++) T_CHECK(t[c] == (c % 2 ? 1.0f : 0.0f));
        for (int64_t p = 0; p < 40; p++)
            for (int64_t c = 0; c < d; c++) {
                double a = (double)p / pow(10000.0, (double)(2 * (c / 2)) / (double)d);
                T_NEAR(t[p * d + c], c % 2 ? cos(a) : sin(a), 1e-7);
            }
        T_NEAR(t[39 * d + 0], sin(39.0), 1e-7);
        T_NEAR(t[39 * d + 1], cos(39.0), 1e-7);
    }
    float one = 5.0f;
    T_EQ_STATUS(attn_nn_sinusoidal(0, 4, &one), ATTN_OK);
    T_CHECK(one == 5.0f);
    T_ERR(attn_nn_sinusoidal(4, 4, NULL), ATTN_NULL_ARG, "'table'");
    T_ERR(attn_nn_sinusoidal(-1, 4, &one), ATTN_BAD_DIM, "'n_pos'");
    T_ERR(attn_nn_sinusoidal(4, -4, &one), ATTN_BAD_DIM, "'d'");
    T_ERR(attn_nn_sinusoidal(INT64_MAX, 4, &one), ATTN_OVERFLOW, "n_pos * d");
}

typedef struct {
    const float *x, *r;
    const int32_t *pos;
    int64_t n, heads, hd;
    double theta;
    float *y;
} rope_case;

static double rope_loss(void *p)
{
    rope_case *c = p;
    T_EQ_STATUS(attn_nn_rope_forward(c->x, c->n, c->heads, c->hd, c->pos, c->theta, c->y),
                ATTN_OK);
    return dot_fd(c->y, c->r, c->n * c->heads * c->hd);
}

T_TEST(layers_rope)
{
    uint64_t st = 51;
    const int64_t n = 3, heads = 2, hd = 8, cnt = n * heads * hd;
    const int32_t pos[3] = {0, 7, 1000};
    rope_case c = {frand(&st, cnt, -1, 1), frand(&st, cnt, -1, 1), pos, n, heads, hd, 500.0,
                   fbuf(cnt)};
    T_EQ_STATUS(attn_nn_rope_forward(c.x, n, heads, hd, pos, 500.0, c.y), ATTN_OK);
    double ref[48];
    for (int64_t r = 0; r < n; r++) /* the rotate-half pairing written out in double */
        for (int64_t h = 0; h < heads; h++)
            for (int64_t i = 0; i < hd; i++) {
                int64_t j = i < hd / 2 ? i : i - hd / 2, base = (r * heads + h) * hd;
                double a = pos[r] / pow(500.0, 2.0 * (double)j / (double)hd);
                double x1 = c.x[base + j], x2 = c.x[base + j + hd / 2];
                ref[base + i] = i < hd / 2 ? x1 * cos(a) - x2 * sin(a) : x2 * cos(a) + x1 * sin(a);
            }
    T_LE(max_rel(c.y, ref, cnt), 1e-6);
    T_CHECK(memcmp(c.y, c.x, sizeof(float) * heads * hd) == 0); /* position 0: identity */
    float dx[48] = {0}, back[48] = {0}, inplace[48];
    T_EQ_STATUS(attn_nn_rope_backward(c.r, n, heads, hd, pos, 500.0, dx), ATTN_OK);
    T_LE(fd_err((float *)c.x, cnt, dx, rope_loss, &c, 1e-2f), 1e-3);
    /* R^T R = I, so backward of the forward output gives x back; += holds */
    T_EQ_STATUS(attn_nn_rope_forward(c.x, n, heads, hd, pos, 500.0, c.y), ATTN_OK);
    for (int64_t i = 0; i < cnt; i++) back[i] = 1.0f;
    T_EQ_STATUS(attn_nn_rope_backward(c.y, n, heads, hd, pos, 500.0, back), ATTN_OK);
    for (int64_t i = 0; i < cnt; i++) T_NEAR(back[i], 1.0f + c.x[i], 1e-6);
    memcpy(inplace, c.x, sizeof inplace);
    T_EQ_STATUS(attn_nn_rope_forward(inplace, n, heads, hd, pos, 500.0, inplace), ATTN_OK);
    T_CHECK(memcmp(inplace, c.y, sizeof inplace) == 0);

    T_ERR(attn_nn_rope_forward(c.x, n, heads, 7, pos, 1e4, c.y), ATTN_BAD_DIM, "'hd'");
    T_ERR(attn_nn_rope_forward(c.x, n, heads, -2, pos, 1e4, c.y), ATTN_BAD_DIM, "'hd'");
    T_ERR(attn_nn_rope_forward(c.x, -1, heads, hd, pos, 1e4, c.y), ATTN_BAD_DIM, "'n'");
    T_ERR(attn_nn_rope_forward(c.x, n, -1, hd, pos, 1e4, c.y), ATTN_BAD_DIM, "'heads'");
    T_ERR(attn_nn_rope_forward(c.x, n, heads, hd, pos, 0.0, c.y), ATTN_BAD_PARAM, "'theta'");
    T_ERR(attn_nn_rope_forward(c.x, n, heads, hd, pos, INFINITY, c.y), ATTN_BAD_PARAM, "'theta'");
    T_ERR(attn_nn_rope_forward(NULL, n, heads, hd, pos, 1e4, c.y), ATTN_NULL_ARG, "'x'");
    T_ERR(attn_nn_rope_forward(c.x, n, heads, hd, NULL, 1e4, c.y), ATTN_NULL_ARG, "'pos'");
    T_ERR(attn_nn_rope_forward(c.x, n, heads, hd, pos, 1e4, NULL), ATTN_NULL_ARG, "'y'");
    T_ERR(attn_nn_rope_forward(c.x, INT64_MAX, 2, 2, pos, 1e4, c.y), ATTN_OVERFLOW, "n * heads");
    T_ERR(attn_nn_rope_forward(c.x, n, heads, hd, pos, 1e4, (float *)c.x + 1), ATTN_OVERLAP, "'y'");
    T_ERR(attn_nn_rope_backward(NULL, n, heads, hd, pos, 1e4, dx), ATTN_NULL_ARG, "'dy'");
    T_ERR(attn_nn_rope_backward(c.r, n, heads, hd, pos, 1e4, NULL), ATTN_NULL_ARG, "'dx'");
    T_ERR(attn_nn_rope_backward(c.r, n, heads, 3, pos, 1e4, dx), ATTN_BAD_DIM, "'hd'");
    T_ERR(attn_nn_rope_backward(c.r, n, heads, hd, pos, 1e4, (float *)c.r), ATTN_OVERLAP, "'dx'");
    free((void *)c.x), free((void *)c.r), free(c.y);
}

/* ---- cross-entropy ------------------------------------------------------------------------------ */

T_TEST(layers_cross_entropy_hand_computed)
{
    const float z[6] = {1, 2, 3, 1, 1, 1};
    const int32_t t[2] = {2, 0}, t_ign[2] = {2, -100}, t_all[2] = {-100, -100};
    const double row0 = 0.40760596444438013, row1 = 1.0986122886681098; /* log(e+e^2+e^3)-3, log 3 */
    double loss;
    int64_t count;
    float dz[6];
    T_EQ_STATUS(attn_nn_cross_entropy(z, 2, 3, t, -100, 0.0, 1.0, &loss, &count, dz), ATTN_OK);
    T_NEAR(loss, (row0 + row1) / 2, 1e-12);
    T_EQ_INT(count, 2);
    T_NEAR(dz[3], (1.0 / 3 - 1) / 2, 1e-7);
    T_NEAR(dz[4], (1.0 / 3) / 2, 1e-7);
    /* label smoothing 0.1: row 0 gains 0.1 (3 - mean z) = 0.1; row 1 is unchanged */
    T_EQ_STATUS(attn_nn_cross_entropy(z, 2, 3, t, -100, 0.1, 1.0, &loss, NULL, dz), ATTN_OK);
    T_NEAR(loss, (row0 + 0.1 + row1) / 2, 1e-12);
    T_NEAR(dz[3], (1.0 / 3 - (0.9 + 0.1 / 3)) / 2, 1e-7);
    /* an ignored row: mean over the other; its gradient row is 0 */
    for (int i = 0; i < 6; i++) dz[i] = 9.0f;
    T_EQ_STATUS(attn_nn_cross_entropy(z, 2, 3, t_ign, -100, 0.0, 2.0, &loss, &count, dz), ATTN_OK);
    T_NEAR(loss, row0, 1e-12);
    T_EQ_INT(count, 1);
    for (int i = 3; i < 6; i++) T_CHECK(dz[i] == 0.0f);
    double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0), s = e1 + e2 + e3;
    T_NEAR(dz[0], 2.0 * e1 / s, 1e-7); /* grad_scale 2, count 1 */
    T_NEAR(dz[2], 2.0 * (e3 / s - 1), 1e-7);
    /* every row ignored: loss 0, count 0, zero gradient */
    T_EQ_STATUS(attn_nn_cross_entropy(z, 2, 3, t_all, -100, 0.2, 1.0, &loss, &count, dz), ATTN_OK);
    T_CHECK(loss == 0.0 && count == 0);
    for (int i = 0; i < 6; i++) T_CHECK(dz[i] == 0.0f);
    /* ignore may be a class index: class 0 rows are skipped */
    T_EQ_STATUS(attn_nn_cross_entropy(z, 2, 3, t, 0, 0.0, 1.0, &loss, &count, NULL), ATTN_OK);
    T_NEAR(loss, row0, 1e-12);
    T_EQ_INT(count, 1);
}

typedef struct {
    const float *z;
    const int32_t *t;
    int64_t n, vocab;
    double ls;
} ce_case;

static double ce_loss(void *p)
{
    ce_case *c = p;
    double loss = 0.0;
    T_EQ_STATUS(attn_nn_cross_entropy(c->z, c->n, c->vocab, c->t, -1, c->ls, 1.0, &loss, NULL,
                                      NULL),
                ATTN_OK);
    return loss;
}

T_TEST(layers_cross_entropy_fd_and_in_place)
{
    uint64_t st = 61;
    const int64_t n = 5, vocab = 7;
    const int32_t t[5] = {3, -1, 0, 6, 3};
    ce_case c = {frand(&st, n * vocab, -3, 3), t, n, vocab, 0.2};
    float *dz = fbuf(n * vocab), *z2 = fbuf(n * vocab);
    double loss, loss2;
    T_EQ_STATUS(attn_nn_cross_entropy(c.z, n, vocab, t, -1, 0.2, 1.0, &loss, NULL, dz), ATTN_OK);
    T_LE(fd_err((float *)c.z, n * vocab, dz, ce_loss, &c, 1e-2f), 2e-4);
    for (int64_t r = 0; r < n; r++) { /* softmax and smoothed target both sum to 1 */
        double s = 0.0;
        for (int64_t k = 0; k < vocab; k++) s += dz[r * vocab + k];
        T_NEAR(s, 0.0, 1e-7);
    }
    memcpy(z2, c.z, sizeof(float) * (size_t)(n * vocab));
    T_EQ_STATUS(attn_nn_cross_entropy(z2, n, vocab, t, -1, 0.2, 1.0, &loss2, NULL, z2), ATTN_OK);
    T_CHECK(loss == loss2);
    T_CHECK(memcmp(z2, dz, sizeof(float) * (size_t)(n * vocab)) == 0);
    /* huge logits stay finite */
    float big[3] = {1e30f, -1e30f, 0.0f};
    int32_t t0 = 1;
    T_EQ_STATUS(attn_nn_cross_entropy(big, 1, 3, &t0, -1, 0.0, 1.0, &loss, NULL, big), ATTN_OK);
    T_NEAR(loss, 2e30, 1e24);
    T_CHECK(big[0] == 1.0f && big[1] == -1.0f && big[2] == 0.0f);
    free((void *)c.z), free(dz), free(z2);
}

T_TEST(layers_cross_entropy_args)
{
    float z[6] = {0}, dz[6];
    int32_t t[2] = {1, 2}, bad[2] = {1, 3};
    double loss = 5.0;
    int64_t count;
    T_ERR(attn_nn_cross_entropy(NULL, 2, 3, t, -1, 0, 1, &loss, &count, dz), ATTN_NULL_ARG, "'logits'");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, NULL, -1, 0, 1, &loss, &count, dz), ATTN_NULL_ARG, "'targets'");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, t, -1, 0, 1, NULL, &count, dz), ATTN_NULL_ARG, "'loss'");
    T_ERR(attn_nn_cross_entropy(z, -2, 3, t, -1, 0, 1, &loss, &count, dz), ATTN_BAD_DIM, "'n'");
    T_ERR(attn_nn_cross_entropy(z, 2, 0, t, -1, 0, 1, &loss, &count, dz), ATTN_BAD_DIM, "'vocab'");
    T_ERR(attn_nn_cross_entropy(z, INT64_MAX, 2, t, -1, 0, 1, &loss, &count, dz), ATTN_OVERFLOW, "n * vocab");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, t, -1, -0.1, 1, &loss, &count, dz), ATTN_BAD_PARAM, "'label_smoothing'");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, t, -1, 1.5, 1, &loss, &count, dz), ATTN_BAD_PARAM, "'label_smoothing'");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, t, -1, NAN, 1, &loss, &count, dz), ATTN_BAD_PARAM, "'label_smoothing'");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, t, -1, 0, INFINITY, &loss, &count, dz), ATTN_BAD_PARAM, "'grad_scale'");
    T_ERR(attn_nn_cross_entropy(z, 2, 3, bad, -1, 0, 1, &loss, &count, dz), ATTN_BAD_PARAM, "targets[1] = 3");
    T_CHECK(loss == 5.0); /* nothing written */
    T_ERR(attn_nn_cross_entropy(z, 2, 3, t, -1, 0, 1, &loss, &count, z + 1), ATTN_OVERLAP, "'dlogits'");
}

/* ---- AdamW, schedules, clipping ----------------------------------------------------------------- */

T_TEST(optim_adamw_two_steps_hand_computed)
{
    /* lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.01; grads step 1 then 2:
     * param 1.0: 0.5, -0.25;  param -2.0: -0.1, 0.3. Expected values from the
     * torch.optim.AdamW update rule evaluated by hand in double. */
    attn_nn_adamw o = {0.1, 0.9, 0.999, 1e-8, 0.01};
    const float g1[2] = {0.5f, -0.1f}, g2[2] = {-0.25f, 0.3f};
    const double want_decay[2] = {0.8714672987058463, -1.9455209911100655};
    const double want_plain[2] = {0.8733662987078463, -1.9494189911200654};
    const double want_m[2] = {0.02, 0.021}, want_v[2] = {0.00031225, 9.999e-05};
    for (int decay = 0; decay < 2; decay++) {
        float p[2] = {1.0f, -2.0f}, m[2] = {0}, v[2] = {0};
        T_EQ_STATUS(attn_nn_adamw_step(&o, 1, p, g1, m, v, 2, decay), ATTN_OK);
        T_EQ_STATUS(attn_nn_adamw_step(&o, 2, p, g2, m, v, 2, decay), ATTN_OK);
        for (int i = 0; i < 2; i++) {
            T_NEAR(p[i], decay ? want_decay[i] : want_plain[i], 1e-6);
            T_NEAR(m[i], want_m[i], 1e-8);
            T_NEAR(v[i], want_v[i], 1e-10);
        }
    }
    attn_nn_adamw d = attn_nn_adamw_default();
    T_CHECK(d.lr == 1e-3 && d.beta1 == 0.9 && d.beta2 == 0.999 && d.eps == 1e-8 &&
            d.weight_decay == 1e-2);
}

T_TEST(optim_adamw_args)
{
    attn_nn_adamw o = attn_nn_adamw_default(), b;
    float p[4] = {1, 2, 3, 4}, g[4] = {0}, m[4] = {0}, v[4] = {0};
    T_ERR(attn_nn_adamw_step(NULL, 1, p, g, m, v, 4, 1), ATTN_NULL_ARG, "'opt'");
    b = o, b.lr = NAN;
    T_ERR(attn_nn_adamw_step(&b, 1, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "lr");
    b = o, b.lr = -1e-3;
    T_ERR(attn_nn_adamw_step(&b, 1, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "lr");
    b = o, b.beta1 = 1.0;
    T_ERR(attn_nn_adamw_step(&b, 1, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "beta1");
    b = o, b.beta2 = -0.5;
    T_ERR(attn_nn_adamw_step(&b, 1, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "beta2");
    b = o, b.eps = -1e-8;
    T_ERR(attn_nn_adamw_step(&b, 1, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "eps");
    b = o, b.weight_decay = INFINITY;
    T_ERR(attn_nn_adamw_step(&b, 1, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "weight_decay");
    T_ERR(attn_nn_adamw_step(&o, 0, p, g, m, v, 4, 1), ATTN_BAD_PARAM, "'step'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, g, m, v, 4, 2), ATTN_BAD_PARAM, "'decay'");
    T_ERR(attn_nn_adamw_step(&o, 1, NULL, g, m, v, 4, 1), ATTN_NULL_ARG, "'param'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, NULL, m, v, 4, 1), ATTN_NULL_ARG, "'grad'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, g, NULL, v, 4, 1), ATTN_NULL_ARG, "'m'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, g, m, NULL, 4, 1), ATTN_NULL_ARG, "'v'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, g, m, v, -4, 1), ATTN_BAD_DIM, "'count'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, g, m, v, INT64_MAX, 1), ATTN_OVERFLOW, "'count'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, g, m, m + 2, 4, 1), ATTN_OVERLAP, "'m' overlaps 'v'");
    T_ERR(attn_nn_adamw_step(&o, 1, p, p, m, v, 4, 1), ATTN_OVERLAP, "'param' overlaps 'grad'");
    T_CHECK(p[0] == 1.0f && m[0] == 0.0f); /* nothing written */
}

/* attn_nn_lr's rate, or NaN if it fails. */
static double lr_of(attn_nn_schedule kind, int64_t step, int64_t warmup, int64_t total,
                    double base_lr, double min_lr)
{
    double lr = NAN;
    return attn_nn_lr(kind, step, warmup, total, base_lr, min_lr, &lr) == ATTN_OK ? lr : NAN;
}

T_TEST(optim_lr_schedules)
{
    const double base = 1e-3, lo = 1e-4;
    /* warm-up 10: base * step / 10 */
    for (int k = 0; k < 3; k++) {
        attn_nn_schedule s = (attn_nn_schedule)k;
        T_NEAR(lr_of(s, 1, 10, 110, base, lo), 1e-4, 1e-18);
        T_NEAR(lr_of(s, 5, 10, 110, base, lo), 5e-4, 1e-18);
        T_NEAR(lr_of(s, 10, 10, 110, base, lo), base, 1e-18);
    }
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_CONSTANT, 1000, 10, 110, base, lo), base, 0);
    /* cosine from 1e-3 at step 10 to 1e-4 at step 110: halfway 5.5e-4; a quarter
     * in: lo + (base - lo) (1 + cos(pi/4)) / 2 */
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_COSINE, 60, 10, 110, base, lo), 5.5e-4, 1e-15);
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_COSINE, 35, 10, 110, base, lo),
           1e-4 + 9e-4 * (1 + 0.70710678118654752) / 2, 1e-15);
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_COSINE, 110, 10, 110, base, lo), lo, 1e-18);
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_COSINE, 500, 10, 110, base, lo), lo, 1e-18);
    /* no warm-up: the cosine starts at step 0 */
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_COSINE, 1, 0, 101, base, 0.0), base * (1 + cos(3.14159265358979323846 / 101)) / 2,
           1e-15);
    /* inverse square root: base sqrt(warmup / step) */
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_INVSQRT, 400, 100, 0, base, 0.0), 5e-4, 1e-15);
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_INVSQRT, 50, 100, 0, base, 0.0), 5e-4, 1e-15);
    T_NEAR(lr_of(ATTN_NN_SCHEDULE_INVSQRT, 16, 0, 0, base, 0.0), 2.5e-4, 1e-15);
    /* invalid arguments are ATTN_BAD_PARAM (NULL_ARG for lr), and lr is untouched */
    double lr = 7.0;
    T_EQ_STATUS(attn_nn_lr((attn_nn_schedule)7, 5, 10, 110, base, lo, &lr), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_nn_lr(ATTN_NN_SCHEDULE_CONSTANT, 0, 10, 110, base, lo, &lr), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_nn_lr(ATTN_NN_SCHEDULE_CONSTANT, 5, -1, 110, base, lo, &lr), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_nn_lr(ATTN_NN_SCHEDULE_COSINE, 5, 10, 110, NAN, lo, &lr), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_nn_lr(ATTN_NN_SCHEDULE_COSINE, 5, 10, 110, base, -1.0, &lr), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_nn_lr(ATTN_NN_SCHEDULE_COSINE, 5, 10, 110, base, lo, NULL), ATTN_NULL_ARG);
    T_CHECK(lr == 7.0);
}

T_TEST(optim_clip_grad_norm)
{
    float a[2] = {3, 4}, b[1] = {12};
    float *bufs[2] = {a, b};
    const int64_t counts[2] = {2, 1};
    double norm = 0.0;
    T_EQ_STATUS(attn_nn_clip_grad_norm(bufs, counts, 2, 20.0, &norm), ATTN_OK);
    T_NEAR(norm, 13.0, 1e-12);
    T_CHECK(a[0] == 3.0f && a[1] == 4.0f && b[0] == 12.0f); /* under the limit: untouched */
    T_EQ_STATUS(attn_nn_clip_grad_norm(bufs, counts, 2, 6.5, &norm), ATTN_OK);
    T_NEAR(norm, 13.0, 1e-12);
    double c = 6.5 / (13.0 + 1e-6);
    T_NEAR(a[0], 3.0 * c, 1e-6);
    T_NEAR(a[1], 4.0 * c, 1e-6);
    T_NEAR(b[0], 12.0 * c, 1e-6);
    /* a NaN gradient gives a NaN norm and, as in torch, NaN gradients */
    float n1[2] = {NAN, 1.0f};
    float *nb[1] = {n1};
    const int64_t nc[1] = {2};
    T_EQ_STATUS(attn_nn_clip_grad_norm(nb, nc, 1, 1.0, &norm), ATTN_OK);
    T_CHECK(isnan(norm) && isnan(n1[1]));
    T_EQ_STATUS(attn_nn_clip_grad_norm(NULL, NULL, 0, 1.0, &norm), ATTN_OK);
    T_CHECK(norm == 0.0);

    const int64_t neg[2] = {2, -1}, huge[2] = {2, INT64_MAX};
    float *with_null[2] = {a, NULL}, *twice[2] = {a, a + 1};
    T_ERR(attn_nn_clip_grad_norm(bufs, counts, 2, 1.0, NULL), ATTN_NULL_ARG, "'norm'");
    T_ERR(attn_nn_clip_grad_norm(NULL, counts, 2, 1.0, &norm), ATTN_NULL_ARG, "'bufs'");
    T_ERR(attn_nn_clip_grad_norm(bufs, NULL, 2, 1.0, &norm), ATTN_NULL_ARG, "'counts'");
    T_ERR(attn_nn_clip_grad_norm(bufs, counts, -1, 1.0, &norm), ATTN_BAD_DIM, "'n_bufs'");
    T_ERR(attn_nn_clip_grad_norm(bufs, counts, 2, 0.0, &norm), ATTN_BAD_PARAM, "'max_norm'");
    T_ERR(attn_nn_clip_grad_norm(bufs, counts, 2, NAN, &norm), ATTN_BAD_PARAM, "'max_norm'");
    T_ERR(attn_nn_clip_grad_norm(bufs, neg, 2, 1.0, &norm), ATTN_BAD_DIM, "'counts[1]'");
    T_ERR(attn_nn_clip_grad_norm(bufs, huge, 2, 1.0, &norm), ATTN_OVERFLOW, "'counts[1]'");
    T_ERR(attn_nn_clip_grad_norm(with_null, counts, 2, 1.0, &norm), ATTN_NULL_ARG, "'bufs[1]'");
    T_ERR(attn_nn_clip_grad_norm(twice, counts, 2, 1.0, &norm), ATTN_OVERLAP, "'bufs[0]' overlaps 'bufs[1]'");
}

/* attn__nn_update, the models' one update loop, against its parts called
 * by hand: clip (or only measure, clip = 0), count the step, AdamW per
 * tensor at its offset with its decay flag. */
T_TEST(optim_model_update)
{
    const attn_nn_adamw o = {0.1, 0.9, 0.999, 1e-8, 0.01};
    for (int clip_on = 0; clip_on < 2; clip_on++) {
        /* a [1] (no decay) then b [2] (decay) in one block */
        float params[3] = {1.0f, -2.0f, 0.5f}, grads[3] = {12.0f, 3.0f, 4.0f};
        float adam_m[3] = {0}, adam_v[3] = {0};
        float want_p[3], want_g[3], want_m[3] = {0}, want_v[3] = {0};
        memcpy(want_p, params, sizeof params);
        memcpy(want_g, grads, sizeof grads);
        attn_nn_param t[2] = {{"a", 1, {1}, 1, params, grads, 0},
                              {"b", 1, {2}, 2, params + 1, grads + 1, 1}};
        attn__nn_paramset ps = {t, 2, params, grads, 3, adam_m, adam_v};
        int64_t steps = 4;
        double norm = -1, clip = clip_on ? 6.5 : 0.0;
        T_EQ_STATUS(attn__nn_update("update", &ps, &o, 0.05, clip, &steps, &norm), ATTN_OK);
        T_NEAR(norm, 13.0, 1e-12);
        T_EQ_INT(steps, 5);
        float *wg = want_g;
        const int64_t count = 3;
        double want_norm = 0;
        if (clip_on) T_EQ_STATUS(attn_nn_clip_grad_norm(&wg, &count, 1, 6.5, &want_norm), ATTN_OK);
        attn_nn_adamw at = o;
        at.lr = 0.05;
        T_EQ_STATUS(attn_nn_adamw_step(&at, 5, want_p, want_g, want_m, want_v, 1, 0), ATTN_OK);
        T_EQ_STATUS(attn_nn_adamw_step(&at, 5, want_p + 1, want_g + 1, want_m + 1, want_v + 1, 2, 1),
                    ATTN_OK);
        T_CHECK(memcmp(params, want_p, sizeof params) == 0);
        T_CHECK(memcmp(grads, want_g, sizeof grads) == 0);
        T_CHECK(memcmp(adam_m, want_m, sizeof adam_m) == 0 && memcmp(adam_v, want_v, sizeof adam_v) == 0);
        T_CHECK(clip_on ? grads[0] < 12.0f : grads[0] == 12.0f); /* clip 0: measured only */
        /* bad rates: nothing written, the step not counted */
        T_ERR(attn__nn_update("update", &ps, &o, NAN, clip, &steps, &norm), ATTN_BAD_PARAM, "'lr'");
        T_ERR(attn__nn_update("update", &ps, &o, 0.05, -1.0, &steps, NULL), ATTN_BAD_PARAM, "'clip'");
        T_ERR(attn__nn_update("update", &ps, &o, 0.05, INFINITY, &steps, NULL), ATTN_BAD_PARAM,
              "update: ");
        T_EQ_INT(steps, 5);
        T_CHECK(memcmp(params, want_p, sizeof params) == 0);
    }
}

/* ---- bounds: forward outputs written exactly in place ---------------------------------------------- */

T_TEST(layers_outputs_stay_in_bounds)
{
    uint64_t st = 71;
    const int64_t n = 3, d = 10;
    float *x = frand(&st, n * d, -1, 1), *g = frand(&st, d, 0, 1), *w = frand(&st, d * d, -1, 1);
    int32_t ids[3] = {0, 2, 1}, pos[3] = {1, 2, 3};
    t_buf y = t_buf_alloc(sizeof(float) * (size_t)(n * d)), st2 = t_buf_alloc(sizeof(float) * 3);
    T_EQ_STATUS(attn_nn_linear_forward(t_ctx(2), x, n, d, w, g, d, y.data), ATTN_OK);
    T_EQ_STATUS(attn_nn_embedding_forward(ids, n, x, n, d, y.data), ATTN_OK);
    T_EQ_STATUS(attn_nn_layernorm_forward(x, n, d, g, g, 1e-5, y.data, st2.data, NULL), ATTN_OK);
    T_EQ_STATUS(attn_nn_rmsnorm_forward(x, n, d, g, 1e-5, y.data, st2.data), ATTN_OK);
    T_EQ_STATUS(attn_nn_act_forward(ATTN_NN_ACT_GELU, x, n * d, y.data), ATTN_OK);
    T_EQ_STATUS(attn_nn_dropout_forward(x, n * d, 0.3, 1, 2, y.data), ATTN_OK);
    T_EQ_STATUS(attn_nn_sinusoidal(n, d, y.data), ATTN_OK);
    T_EQ_STATUS(attn_nn_rope_forward(x, n, 1, d, pos, 1e4, y.data), ATTN_OK);
    T_CHECK(t_buf_guards_ok(&y));
    T_CHECK(t_buf_guards_ok(&st2));
    t_buf_free(&y), t_buf_free(&st2);
    free(x), free(g), free(w);
}
