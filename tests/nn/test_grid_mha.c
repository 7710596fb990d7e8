/* test_grid_mha.c - a random grid of the multi-head attention module
 * (attn_nn_mha_forward / backward) against a double-precision twin of the
 * module written here (projections, rotate-half RoPE, masked softmax with
 * the core's dropout keep function, grouped heads, output projection):
 * the output and the weights (averaged and per head) elementwise, and every
 * gradient (query, kv, each weight and bias, accumulated into random
 * starting values) by centred differences of the twin (grid_nn.h).
 *
 * Drawn: self- and cross-attention, packed and separate projections, kdim
 * and embed_dim apart from heads * head_dim, heads 1-16 with kv heads any
 * divisor, head dims 1-128, lengths 1-300 within a cost budget (one
 * configuration in twenty has the shapes of real models: 6-16 heads, head
 * dims 64-128, 64-300 tokens), key lengths and keep masks with rows that
 * see no key, top-left causal, RoPE, dropout, biases or not, 1-3 threads.
 * The PyTorch grid (python/tests/test_grid_mha.py) checks the same module
 * against torch.nn.MultiheadAttention. */
#include "grid_nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t B, Sq, Sk, E, H, Hkv, hd, kd;
    int packed, cross, causal, in_bias, out_bias, weights, threads; /* weights: 0 none, 1 average, 2 per head */
    const int64_t *k_lens;
    const uint8_t *keep;
    double p, theta;
    uint64_t seed, offset;
    const int32_t *qpos, *kpos;
} mha_cfg;

/* The twin's inputs, in double (the checker perturbs them). */
typedef struct {
    const mha_cfg *c;
    double *query, *kv; /* kv == query for self-attention */
    double *w[3];       /* q, k, v projections; packed: slices of one block */
    double *packed;     /* [3E, E] or NULL */
    double *bias, *wo, *bo;
    const float *r;     /* loss = sum r . out */
} mha_twin;

/* y [rows, nout] = x [rows, nin] w^T + b (b may be NULL). */
static void proj(const double *x, int64_t rows, int64_t nin, const double *w, const double *b,
                 int64_t nout, double *y)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t o = 0; o < nout; o++) {
            double s = b ? b[o] : 0;
            for (int64_t k = 0; k < nin; k++) s += x[i * nin + k] * w[o * nin + k];
            y[i * nout + o] = s;
        }
}

/* Rotate-half RoPE of x [rows, heads, hd] in place, row r at pos[r]. */
static void rope(double *x, int64_t rows, int64_t heads, int64_t hd, const int32_t *pos,
                 double theta)
{
    int64_t h2 = hd / 2;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < h2; k++) {
            double a = pos[r] * pow(theta, -2.0 * (double)k / (double)hd), cs = cos(a), sn = sin(a);
            for (int64_t h = 0; h < heads; h++) {
                double *v = x + (r * heads + h) * hd, x0 = v[k], x1 = v[k + h2];
                v[k] = x0 * cs - x1 * sn;
                v[k + h2] = x1 * cs + x0 * sn;
            }
        }
}

static bool visible(const mha_cfg *c, int64_t b, int64_t i, int64_t j)
{
    return (!c->k_lens || j < c->k_lens[b]) && (!c->keep || c->keep[b * c->Sk + j]) &&
           (!c->causal || j <= i);
}

/* out [B, Sq, E]; P [B, H, Sq, Sk] (the weights after dropout) if not NULL. */
static void mha_forward(const mha_twin *t, double *out, double *P)
{
    const mha_cfg *c = t->c;
    int64_t H = c->H, Hk = c->Hkv, hd = c->hd, Nq = c->B * c->Sq, Nk = c->B * c->Sk;
    double *q = g_alloc((size_t)(Nq * H * hd) * sizeof(double));
    double *k = g_alloc((size_t)(Nk * Hk * hd) * sizeof(double));
    double *v = g_alloc((size_t)(Nk * Hk * hd) * sizeof(double));
    double *o = g_alloc((size_t)(Nq * H * hd) * sizeof(double));
    double *s = g_alloc((size_t)c->Sk * sizeof(double));
    const double *b = t->bias;
    proj(t->query, Nq, c->E, t->w[0], b, H * hd, q);
    proj(t->kv, Nk, c->kd, t->w[1], b ? b + H * hd : NULL, Hk * hd, k);
    proj(t->kv, Nk, c->kd, t->w[2], b ? b + (H + Hk) * hd : NULL, Hk * hd, v);
    if (c->qpos) {
        rope(q, Nq, H, hd, c->qpos, c->theta);
        rope(k, Nk, Hk, hd, c->kpos ? c->kpos : c->qpos, c->theta);
    }
    for (int64_t bb = 0; bb < c->B; bb++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < c->Sq; i++) {
                const double *qi = q + ((bb * c->Sq + i) * H + h) * hd;
                int64_t kh = h / (H / Hk);
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < c->Sk; j++) {
                    const double *kj = k + ((bb * c->Sk + j) * Hk + kh) * hd;
                    double d = 0;
                    for (int64_t x = 0; x < hd; x++) d += qi[x] * kj[x];
                    s[j] = visible(c, bb, i, j) ? d / sqrt((double)hd) : -INFINITY;
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < c->Sk; j++) {
                    s[j] = mx == -INFINITY || s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                    sum += s[j];
                }
                double *oi = o + ((bb * c->Sq + i) * H + h) * hd;
                for (int64_t j = 0; j < c->Sk; j++) {
                    double pj = sum > 0 ? s[j] / sum : 0;
                    if (c->p > 0)
                        pj = attn_dropout_keep(c->seed, c->offset, c->p, bb, h, i, j, H)
                                 ? pj / (1 - c->p) : 0;
                    if (P) P[((bb * H + h) * c->Sq + i) * c->Sk + j] = pj;
                    const double *vj = v + ((bb * c->Sk + j) * Hk + kh) * hd;
                    for (int64_t x = 0; x < hd; x++) oi[x] += pj * vj[x];
                }
            }
    proj(o, Nq, H * hd, t->wo, t->bo, c->E, out);
    free(q), free(k), free(v), free(o), free(s);
}

static double mha_loss(void *user)
{
    const mha_twin *t = user;
    int64_t n = t->c->B * t->c->Sq * t->c->E;
    double *out = g_alloc((size_t)n * sizeof(double));
    mha_forward(t, out, NULL);
    double l = g_wsum(out, t->r, n);
    free(out);
    return l;
}

/* ---- drawing ----------------------------------------------------------------------- */

static int64_t pick_divisor(g_grid *g, int64_t H)
{
    int64_t d;
    do d = t_rand_int(&g->rng, 1, H);
    while (H % d != 0);
    return d;
}

static void draw(g_grid *g, mha_cfg *c, int real)
{
    static const int64_t heads[] = {1, 2, 3, 4, 6, 8, 9, 12, 16}, real_heads[] = {6, 8, 9, 12, 16};
    double budget = real ? 1e7 : 3e5;
    for (;;) {
        memset(c, 0, sizeof *c);
        c->H = real ? real_heads[t_rand_int(&g->rng, 0, 4)] : heads[t_rand_int(&g->rng, 0, 8)];
        int kvk = (int)t_rand_int(&g->rng, 0, 2); /* MHA, GQA, MQA */
        c->Hkv = kvk == 0 ? c->H : kvk == 2 ? 1 : pick_divisor(g, c->H);
        c->hd = real ? (int64_t[]){64, 80, 96, 128}[t_rand_int(&g->rng, 0, 3)] - t_rand_int(&g->rng, 0, 5)
                     : g_dim(g, 128);
        c->cross = g_unif(g, 0, 1) < 0.5;
        c->packed = c->Hkv == c->H && g_unif(g, 0, 1) < 0.4;
        if (c->packed) {
            c->E = c->kd = c->H * c->hd;
        } else {
            c->E = g_unif(g, 0, 1) < 0.3 ? c->H * c->hd : g_dim(g, 64);
            c->kd = c->cross && g_unif(g, 0, 1) < 0.5 ? g_dim(g, 64) : c->E;
        }
        c->B = g_log_int(g, 1, real ? 1 : 3);
        c->Sq = g_log_int(g, real ? 64 : 1, 300);
        c->Sk = c->cross ? g_log_int(g, real ? 64 : 1, 300) : c->Sq;
        double cost = (double)c->B * ((double)c->Sq * c->E * c->H * c->hd * 2 +
                                      2.0 * c->Sk * c->kd * c->Hkv * c->hd +
                                      2.0 * c->H * c->Sq * c->Sk * c->hd);
        if (cost <= budget) break;
    }
    c->in_bias = g_unif(g, 0, 1) < 0.8;
    c->out_bias = g_unif(g, 0, 1) < 0.8;
    c->causal = g_unif(g, 0, 1) < 0.4;
    c->p = g_unif(g, 0, 1) < 0.2 ? (double[]){0.1, 0.3, 0.5}[t_rand_int(&g->rng, 0, 2)] : 0;
    c->seed = t_rand_u64(&g->rng);
    c->offset = t_rand_u64(&g->rng) >> 24;
    c->weights = (int)t_rand_int(&g->rng, 0, 2);
    c->threads = (int)t_rand_int(&g->rng, 1, 3);
    c->theta = g_unif(g, 0, 1) < 0.5 ? 10000 : 500000;
}

static float *fcopy(const float *x, int64_t n)
{
    float *p = g_alloc((size_t)n * sizeof(float));
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

/* ---- one configuration ---------------------------------------------------------------- */

static void one_mha(g_grid *g)
{
    mha_cfg c;
    int real = g_unif(g, 0, 1) < 0.05;
    draw(g, &c, real);
    int64_t B = c.B, Sq = c.Sq, Sk = c.Sk, E = c.E, H = c.H, Hk = c.Hkv, hd = c.hd, kd = c.kd;
    int64_t *k_lens = NULL;
    uint8_t *keep = NULL;
    int32_t *qpos = NULL, *kpos = NULL;
    int pad = (int)t_rand_int(&g->rng, 0, 3), empty = g_unif(g, 0, 1) < 0.1;
    if (pad & 1) {
        k_lens = g_alloc((size_t)B * sizeof(int64_t));
        for (int64_t b = 0; b < B; b++) k_lens[b] = t_rand_int(&g->rng, empty ? 0 : 1, Sk);
    }
    if (pad & 2) {
        keep = g_alloc((size_t)(B * Sk));
        double rate = g_unif(g, 0.3, 1);
        for (int64_t e = 0; e < B * Sk; e++) keep[e] = g_unif(g, 0, 1) < rate;
        for (int64_t b = 0; b < B && !empty; b++) keep[b * Sk] = 1;
    }
    if (hd % 2 == 0 && g_unif(g, 0, 1) < 0.3) {
        qpos = g_alloc((size_t)(B * Sq) * sizeof(int32_t));
        for (int64_t e = 0; e < B * Sq; e++) qpos[e] = (int32_t)t_rand_int(&g->rng, 0, 4095);
        if (c.cross || g_unif(g, 0, 1) < 0.3) {
            kpos = g_alloc((size_t)(B * Sk) * sizeof(int32_t));
            for (int64_t e = 0; e < B * Sk; e++) kpos[e] = (int32_t)t_rand_int(&g->rng, 0, 4095);
        }
    }
    c.k_lens = k_lens;
    c.keep = keep;
    c.qpos = qpos;
    c.kpos = kpos;
    g_desc(g, "B=%lld Sq=%lld Sk=%lld E=%lld H=%lld Hkv=%lld hd=%lld kdim=%lld cross=%d "
              "packed=%d bias=%d/%d causal=%d k_lens=%d keep=%d empty=%d rope=%d p=%g "
              "weights=%d threads=%d real=%d",
           (long long)B, (long long)Sq, (long long)Sk, (long long)E, (long long)H, (long long)Hk,
           (long long)hd, (long long)kd, c.cross, c.packed, c.in_bias, c.out_bias, c.causal,
           k_lens != NULL, keep != NULL, empty, qpos != NULL, c.p, c.weights, c.threads, real);

    /* parameters: one block per tensor, gradients starting at small random values */
    int64_t n_w[3] = {H * hd * E, Hk * hd * kd, Hk * hd * kd};
    int64_t n_b = (H + 2 * Hk) * hd, n_wo = E * H * hd;
    float *w[3], *dw[3], *dw0[3];
    for (int i = 0; i < 3; i++) w[i] = g_floats(g, n_w[i], 1 / sqrt((double)(i ? kd : E)));
    float *bias = g_floats(g, n_b, 0.2), *wo = g_floats(g, n_wo, 1 / sqrt((double)(H * hd)));
    float *bo = g_floats(g, E, 0.2), *pk = NULL, *dpk = NULL, *dpk0 = NULL;
    for (int i = 0; i < 3; i++) dw0[i] = g_floats(g, n_w[i], 1e-3);
    float *db0 = g_floats(g, n_b, 1e-3), *dwo0 = g_floats(g, n_wo, 1e-3), *dbo0 = g_floats(g, E, 1e-3);
    for (int i = 0; i < 3; i++) dw[i] = fcopy(dw0[i], n_w[i]);
    float *db = fcopy(db0, n_b), *dwo = fcopy(dwo0, n_wo), *dbo = fcopy(dbo0, E);
    attn_nn_mha m;
    memset(&m, 0, sizeof m);
    m.embed_dim = E, m.n_heads = H, m.n_kv_heads = Hk, m.head_dim = hd, m.kdim = m.vdim = kd;
    m.packed = c.packed;
    if (c.packed) { /* [3E, E]: the three blocks stacked */
        pk = g_alloc((size_t)(3 * n_w[0]) * sizeof(float));
        dpk0 = g_alloc((size_t)(3 * n_w[0]) * sizeof(float));
        for (int i = 0; i < 3; i++) {
            memcpy(pk + i * n_w[0], w[i], (size_t)n_w[0] * sizeof(float));
            memcpy(dpk0 + i * n_w[0], dw0[i], (size_t)n_w[0] * sizeof(float));
        }
        dpk = fcopy(dpk0, 3 * n_w[0]);
        m.in_proj_weight = pk, m.d_in_proj_weight = dpk;
    } else {
        m.q_proj_weight = w[0], m.k_proj_weight = w[1], m.v_proj_weight = w[2];
        m.d_q_proj_weight = dw[0], m.d_k_proj_weight = dw[1], m.d_v_proj_weight = dw[2];
    }
    if (c.in_bias) m.in_proj_bias = bias, m.d_in_proj_bias = db;
    m.out_proj_weight = wo, m.d_out_proj_weight = dwo;
    if (c.out_bias) m.out_proj_bias = bo, m.d_out_proj_bias = dbo;

    int64_t nq = B * Sq * E, nkv = B * Sk * kd, nw = B * H * Sq * Sk;
    float *query = g_floats(g, nq, 1), *kv = c.cross ? g_floats(g, nkv, 1) : query;
    float *r = g_floats(g, nq, 1), *out = g_alloc((size_t)nq * sizeof(float));
    float *wts = g_alloc((size_t)(c.weights ? nw : 1) * sizeof(float));
    float *dq0 = g_floats(g, nq, 1e-3), *dq = fcopy(dq0, nq);
    float *dkv0 = c.cross ? g_floats(g, nkv, 1e-3) : dq0, *dkv = c.cross ? fcopy(dkv0, nkv) : dq;
    attn_nn_mha_opts o;
    memset(&o, 0, sizeof o);
    o.causal = c.causal, o.k_lens = k_lens, o.key_keep = keep, o.dropout_p = c.p;
    o.seed = c.seed, o.offset = c.offset, o.rope_pos = qpos, o.rope_kpos = kpos;
    o.rope_theta = c.theta;
    attn_nn_mha_saved sv;
    attn_ctx *ctx = t_ctx(c.threads);
    attn_status st = attn_nn_mha_forward(ctx, &m, query, kv, B, Sq, Sk, &o, out,
                                         c.weights ? wts : NULL, c.weights == 1, &sv);
    g_check(g, "mha_forward status", st == ATTN_OK);
    if (st == ATTN_OK) {
        g_check(g, "mha_backward status",
                attn_nn_mha_backward(ctx, &m, query, kv, &o, &sv, r, dq, dkv) == ATTN_OK);
        attn_nn_mha_saved_free(&sv);
    }

    /* the twin */
    mha_twin t = {&c, g_doubles(query, nq), NULL, {NULL, NULL, NULL}, NULL,
                  c.in_bias ? g_doubles(bias, n_b) : NULL, g_doubles(wo, n_wo),
                  c.out_bias ? g_doubles(bo, E) : NULL, r};
    t.kv = c.cross ? g_doubles(kv, nkv) : t.query;
    if (c.packed) {
        t.packed = g_doubles(pk, 3 * n_w[0]);
        for (int i = 0; i < 3; i++) t.w[i] = t.packed + i * n_w[0];
    } else {
        for (int i = 0; i < 3; i++) t.w[i] = g_doubles(w[i], n_w[i]);
    }
    double *oref = g_alloc((size_t)nq * sizeof(double)), *P = g_alloc((size_t)nw * sizeof(double));
    mha_forward(&t, oref, P);
    g_close(g, "out", out, oref, nq, 1e-5, 1.0);
    if (c.weights == 1) { /* [B, Sq, Sk]: the mean over heads */
        double *avg = g_alloc((size_t)(B * Sq * Sk) * sizeof(double));
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t e = 0; e < Sq * Sk; e++)
                    avg[b * Sq * Sk + e] += P[(b * H + h) * Sq * Sk + e] / (double)H;
        g_close(g, "weights (average)", wts, avg, B * Sq * Sk, 2e-6, 1.0);
        free(avg);
    } else if (c.weights == 2) {
        g_close(g, "weights (per head)", wts, P, nw, 2e-6, 1.0);
    }
    g_param ps[8];
    int n = 0;
    ps[n++] = (g_param){c.cross ? "query" : "query (= kv)", t.query, nq, dq, dq0};
    if (c.cross) ps[n++] = (g_param){"kv", t.kv, nkv, dkv, dkv0};
    if (c.packed) {
        ps[n++] = (g_param){"in_proj_weight", t.packed, 3 * n_w[0], dpk, dpk0};
    } else {
        static const char *names[3] = {"q_proj_weight", "k_proj_weight", "v_proj_weight"};
        for (int i = 0; i < 3; i++) ps[n++] = (g_param){names[i], t.w[i], n_w[i], dw[i], dw0[i]};
    }
    if (c.in_bias) ps[n++] = (g_param){"in_proj_bias", t.bias, n_b, db, db0};
    ps[n++] = (g_param){"out_proj.weight", t.wo, n_wo, dwo, dwo0};
    if (c.out_bias) ps[n++] = (g_param){"out_proj.bias", t.bo, E, dbo, dbo0};
    g_fd(g, ps, n, mha_loss, &t, real ? 2 : 4, 1e-4, 0);

    for (int i = 0; i < 3; i++) {
        free(w[i]), free(dw[i]), free(dw0[i]);
        if (!c.packed) free(t.w[i]);
    }
    free(bias), free(wo), free(bo), free(pk), free(dpk), free(dpk0), free(db0), free(dwo0);
    free(dbo0), free(db), free(dwo), free(dbo), free(r), free(out), free(wts), free(dq0), free(dq);
    if (c.cross) free(kv), free(dkv0), free(dkv), free(t.kv);
    free(query), free(t.query), free(t.packed), free(t.bias), free(t.wo), free(t.bo), free(oref);
    free(P), free(k_lens), free(keep), free(qpos), free(kpos);
}

T_TEST(grid_nn_mha) { g_run("grid_nn_mha", 8200000, 1.0, one_mha); }
