/* test_grid_gru.c - random grids of the GRU layer and cell (attn/nn.h,
 * src/nn/gru.c) against a double-precision twin of torch.nn.GRU's equations
 * written here: outputs and final states elementwise, every gradient (x,
 * h0, each weight and bias of each direction, accumulated into random
 * starting values) by centred differences of the twin (grid_nn.h).
 *
 * Drawn: one- and bidirectional; input sizes 0-48 (cell) / 1-48 (layer),
 * hidden 1-64, batch 1-6, 1-40 steps, per-row lengths 0..T or none, h0 or
 * zeros, d_out or d_h_n left out, either bias alone or none, 1-3 threads. The PyTorch
 * grid (python/tests/test_grid_gru.py) checks the same against torch. */
#include "grid_nn.h"

#include <stdlib.h>
#include <string.h>

/* One direction's parameters in double (NULL bias: absent). */
typedef struct {
    double *wih, *whh, *bih, *bhh;
} gru_w;

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* h' [H] = cell(x [I], h [H]) with torch.nn.GRUCell's equations. */
static void cell_twin(const gru_w *w, int64_t I, int64_t H, const double *x, const double *h,
                      double *out)
{
    for (int64_t u = 0; u < H; u++) {
        double g[6]; /* ih r z n, hh r z n */
        for (int k = 0; k < 3; k++) {
            int64_t row = k * H + u;
            double a = w->bih ? w->bih[row] : 0, b = w->bhh ? w->bhh[row] : 0;
            for (int64_t i = 0; i < I; i++) a += w->wih[row * I + i] * x[i];
            for (int64_t i = 0; i < H; i++) b += w->whh[row * H + i] * h[i];
            g[k] = a;
            g[3 + k] = b;
        }
        double r = sigm(g[0] + g[3]), z = sigm(g[1] + g[4]), n = tanh(g[2] + r * g[5]);
        out[u] = (1 - z) * n + z * h[u];
    }
}

typedef struct {
    int64_t I, H, B, T, D;
    const int64_t *lens;
    gru_w w[2];
    double *x, *h0; /* h0 NULL: zeros */
    const float *a, *cw; /* loss = a . out + cw . h_n (either NULL) */
} layer_twin;

/* out [B, T, D*H], hn [D, B, H]: each direction over t < lens[b]. */
static void layer_forward(const layer_twin *t, double *out, double *hn)
{
    int64_t H = t->H, D = t->D;
    double *h = g_alloc((size_t)H * sizeof(double)), *nh = g_alloc((size_t)H * sizeof(double));
    for (int64_t d = 0; d < D; d++)
        for (int64_t b = 0; b < t->B; b++) {
            int64_t len = t->lens ? t->lens[b] : t->T;
            for (int64_t u = 0; u < H; u++) h[u] = t->h0 ? t->h0[(d * t->B + b) * H + u] : 0;
            for (int64_t s = 0; s < len; s++) {
                int64_t tt = d ? len - 1 - s : s;
                cell_twin(&t->w[d], t->I, H, t->x + (b * t->T + tt) * t->I, h, nh);
                memcpy(h, nh, (size_t)H * sizeof(double));
                memcpy(out + (b * t->T + tt) * D * H + d * H, h, (size_t)H * sizeof(double));
            }
            memcpy(hn + (d * t->B + b) * H, h, (size_t)H * sizeof(double));
        }
    free(h), free(nh);
}

static double layer_loss(void *user)
{
    const layer_twin *t = user;
    int64_t no = t->B * t->T * t->D * t->H, nh = t->D * t->B * t->H;
    double *out = g_alloc((size_t)no * sizeof(double)), *hn = g_alloc((size_t)nh * sizeof(double));
    layer_forward(t, out, hn);
    double l = (t->a ? g_wsum(out, t->a, no) : 0) + (t->cw ? g_wsum(hn, t->cw, nh) : 0);
    free(out), free(hn);
    return l;
}

static float *fcopy(const float *x, int64_t n)
{
    float *p = g_alloc((size_t)n * sizeof(float));
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

/* A direction's float parameters, gradients (and their starts) as one cell. */
typedef struct {
    float *p[4], *dp[4], *dp0[4];
    int64_t n[4];
} cell_bufs;

static void cell_make(g_grid *g, cell_bufs *cb, attn_nn_gru_cell *c, int64_t I, int64_t H,
                      int bias_mask, int want_grads)
{
    int64_t n[4] = {3 * H * I, 3 * H * H, 3 * H, 3 * H};
    double s = 1 / sqrt((double)H);
    memset(cb, 0, sizeof *cb);
    for (int i = 0; i < 4; i++) {
        cb->n[i] = n[i];
        if (i >= 2 && !(bias_mask & (i - 1))) continue; /* bias_mask: 1 ih, 2 hh */
        cb->p[i] = g_floats(g, n[i], s);
        if (want_grads) {
            cb->dp0[i] = g_floats(g, n[i], 1e-3);
            cb->dp[i] = fcopy(cb->dp0[i], n[i]);
        }
    }
    memset(c, 0, sizeof *c);
    c->input_size = I;
    c->hidden_size = H;
    c->weight_ih = cb->p[0], c->weight_hh = cb->p[1], c->bias_ih = cb->p[2], c->bias_hh = cb->p[3];
    c->d_weight_ih = cb->dp[0], c->d_weight_hh = cb->dp[1];
    c->d_bias_ih = cb->dp[2], c->d_bias_hh = cb->dp[3];
}

static void cell_free(cell_bufs *cb)
{
    for (int i = 0; i < 4; i++) free(cb->p[i]), free(cb->dp[i]), free(cb->dp0[i]);
}

/* The twin's double copies of a direction's parameters, and their checks. */
static int twin_params(const cell_bufs *cb, gru_w *w, g_param *ps, int d)
{
    static const char *names[2][4] = {{"weight_ih", "weight_hh", "bias_ih", "bias_hh"},
                                      {"weight_ih_reverse", "weight_hh_reverse", "bias_ih_reverse",
                                       "bias_hh_reverse"}};
    double **slot[4] = {&w->wih, &w->whh, &w->bih, &w->bhh};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        *slot[i] = cb->p[i] ? g_doubles(cb->p[i], cb->n[i]) : NULL;
        if (cb->p[i] && cb->dp[i])
            ps[n++] = (g_param){names[d][i], *slot[i], cb->n[i], cb->dp[i], cb->dp0[i]};
    }
    return n;
}

static void twin_free(gru_w *w) { free(w->wih), free(w->whh), free(w->bih), free(w->bhh); }

/* ---- the layer ------------------------------------------------------------------------ */

static void one_layer(g_grid *g)
{
    int64_t I = g_dim(g, 48), H = g_dim(g, 64), B = g_log_int(g, 1, 6), T = g_log_int(g, 1, 40);
    while (B * T * (I + H) * H > 400000) T = T / 2 + 1, H = H / 2 + 1;
    int64_t D = g_unif(g, 0, 1) < 0.5 ? 2 : 1;
    int bias = g_unif(g, 0, 1) < 0.8 ? 3 : 0, use_lens = g_unif(g, 0, 1) < 0.7;
    int use_h0 = g_unif(g, 0, 1) < 0.7, use_a = g_unif(g, 0, 1) < 0.9, use_c = g_unif(g, 0, 1) < 0.7;
    int64_t *lens = NULL;
    if (use_lens) {
        lens = g_alloc((size_t)B * sizeof(int64_t));
        int64_t lo = g_unif(g, 0, 1) < 0.2 ? 0 : 1;
        for (int64_t b = 0; b < B; b++) lens[b] = t_rand_int(&g->rng, lo, T);
    }
    int threads = (int)t_rand_int(&g->rng, 1, 3);
    g_desc(g, "I=%lld H=%lld B=%lld T=%lld D=%lld bias=%d lens=%d h0=%d d_out=%d d_h_n=%d "
           "threads=%d", (long long)I, (long long)H, (long long)B, (long long)T, (long long)D,
           bias, use_lens, use_h0, use_a, use_c, threads);
    attn_nn_gru gru;
    memset(&gru, 0, sizeof gru);
    gru.bidirectional = D == 2;
    cell_bufs cb[2];
    memset(cb, 0, sizeof cb);
    for (int64_t d = 0; d < D; d++) cell_make(g, &cb[d], &gru.dir[d], I, H, bias, 1);
    int64_t nx = B * T * I, no = B * T * D * H, nh = D * B * H;
    float *x = g_floats(g, nx, 1), *h0 = use_h0 ? g_floats(g, nh, 0.5) : NULL;
    float *a = use_a ? g_floats(g, no, 1) : NULL, *cw = use_c ? g_floats(g, nh, 1) : NULL;
    float *out = g_alloc((size_t)no * sizeof(float)), *hn = g_alloc((size_t)nh * sizeof(float));
    float *dx0 = g_floats(g, nx, 1e-3), *dx = fcopy(dx0, nx);
    float *dh00 = g_floats(g, nh, 1e-3), *dh0 = fcopy(dh00, nh);
    attn_nn_gru_saved sv;
    memset(&sv, 0, sizeof sv);
    attn_ctx *ctx = t_ctx(threads);
    attn_status st = attn_nn_gru_forward(ctx, &gru, x, B, T, lens, h0, out, hn, &sv);
    g_check(g, "gru_forward status", st == ATTN_OK);
    if (st == ATTN_OK)
        g_check(g, "gru_backward status", attn_nn_gru_backward(ctx, &gru, x, lens, &sv, a, cw, dx,
                                                               use_h0 ? dh0 : NULL) == ATTN_OK);
    attn_nn_gru_saved_free(&sv);

    layer_twin t;
    memset(&t, 0, sizeof t);
    t.I = I, t.H = H, t.B = B, t.T = T, t.D = D, t.lens = lens, t.a = a, t.cw = cw;
    t.x = g_doubles(x, nx);
    t.h0 = use_h0 ? g_doubles(h0, nh) : NULL;
    g_param ps[10];
    int n = 0;
    ps[n++] = (g_param){"x", t.x, nx, dx, dx0};
    if (use_h0) ps[n++] = (g_param){"h0", t.h0, nh, dh0, dh00};
    for (int64_t d = 0; d < D; d++) n += twin_params(&cb[d], &t.w[d], ps + n, (int)d);
    double *oref = g_alloc((size_t)no * sizeof(double)), *href = g_alloc((size_t)nh * sizeof(double));
    layer_forward(&t, oref, href);
    g_close(g, "out", out, oref, no, 1e-5, 1.0);
    g_close(g, "h_n", hn, href, nh, 1e-5, 1.0);
    g_fd(g, ps, n, layer_loss, &t, 4, 1e-4, 0);
    if (!use_h0) g_check(g, "dh0 untouched (NULL)", memcmp(dh0, dh00, (size_t)nh * sizeof(float)) == 0);
    for (int64_t d = 0; d < D; d++) twin_free(&t.w[d]), cell_free(&cb[d]);
    free(lens), free(x), free(h0), free(a), free(cw), free(out), free(hn), free(dx0), free(dx);
    free(dh00), free(dh0), free(t.x), free(t.h0), free(oref), free(href);
}

T_TEST(grid_nn_gru_layer) { g_run("grid_nn_gru_layer", 8300000, 0.5, one_layer); }

/* ---- the cell --------------------------------------------------------------------------- */

typedef struct {
    int64_t I, H, B;
    gru_w w;
    double *x, *h;
    const float *a;
} cell_case;

static double cell_loss(void *user)
{
    const cell_case *k = user;
    double *y = g_alloc((size_t)k->H * sizeof(double)), l = 0;
    for (int64_t b = 0; b < k->B; b++) {
        cell_twin(&k->w, k->I, k->H, k->x + b * k->I, k->h + b * k->H, y);
        l += g_wsum(y, k->a + b * k->H, k->H);
    }
    free(y);
    return l;
}

static void one_cell(g_grid *g)
{
    int64_t I = g_unif(g, 0, 1) < 0.05 ? 0 : g_dim(g, 48), H = g_dim(g, 64), B = g_log_int(g, 1, 12);
    int bias = (int)t_rand_int(&g->rng, 0, 3), want_dw = g_unif(g, 0, 1) < 0.8;
    int want_dx = g_unif(g, 0, 1) < 0.8, want_dh = g_unif(g, 0, 1) < 0.8;
    int threads = (int)t_rand_int(&g->rng, 1, 3);
    g_desc(g, "I=%lld H=%lld B=%lld bias=%d dw=%d dx=%d dh=%d threads=%d", (long long)I,
           (long long)H, (long long)B, bias, want_dw, want_dx, want_dh, threads);
    attn_nn_gru_cell c;
    cell_bufs cb;
    cell_make(g, &cb, &c, I, H, bias, want_dw);
    float *x = g_floats(g, B * I, 1), *h = g_floats(g, B * H, 0.5), *a = g_floats(g, B * H, 1);
    float *hn = g_alloc((size_t)(B * H) * sizeof(float)), *sv = g_alloc((size_t)(B * 4 * H) * sizeof(float));
    float *dx0 = g_floats(g, B * I, 1e-3), *dx = fcopy(dx0, B * I);
    float *dh0 = g_floats(g, B * H, 1e-3), *dh = fcopy(dh0, B * H);
    attn_ctx *ctx = t_ctx(threads);
    attn_status st = attn_nn_gru_cell_forward(ctx, &c, x, h, B, hn, sv);
    g_check(g, "cell_forward status", st == ATTN_OK);
    if (st == ATTN_OK)
        g_check(g, "cell_backward status",
                attn_nn_gru_cell_backward(ctx, &c, x, h, B, sv, a, want_dx ? dx : NULL,
                                          want_dh ? dh : NULL) == ATTN_OK);
    cell_case k = {I, H, B, {NULL, NULL, NULL, NULL}, g_doubles(x, B * I), g_doubles(h, B * H), a};
    g_param ps[6];
    int n = 0;
    if (want_dx) ps[n++] = (g_param){"x", k.x, B * I, dx, dx0};
    if (want_dh) ps[n++] = (g_param){"h", k.h, B * H, dh, dh0};
    n += twin_params(&cb, &k.w, ps + n, 0);
    double *ref = g_alloc((size_t)(B * H) * sizeof(double));
    for (int64_t b = 0; b < B; b++) cell_twin(&k.w, I, H, k.x + b * I, k.h + b * H, ref + b * H);
    g_close(g, "h_new", hn, ref, B * H, 1e-6, 1.0);
    g_fd(g, ps, n, cell_loss, &k, 6, 1e-4, 0);
    if (!want_dx) g_check(g, "dx untouched (NULL)", memcmp(dx, dx0, (size_t)(B * I) * sizeof(float)) == 0);
    twin_free(&k.w), cell_free(&cb);
    free(x), free(h), free(a), free(hn), free(sv), free(dx0), free(dx), free(dh0), free(dh);
    free(k.x), free(k.h), free(ref);
}

T_TEST(grid_nn_gru_cell) { g_run("grid_nn_gru_cell", 8400000, 1.0, one_cell); }
