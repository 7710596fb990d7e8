/* gru.c - the GRU of attn/seq2seq.h: one cell (torch.nn.GRUCell) and a one-layer,
 * optionally bidirectional GRU over padded sequences (torch.nn.GRU with
 * pack_padded_sequence semantics), forward and backward through time.
 *
 * The dense products go through attn_nn_linear_forward/backward (the GEMM
 * on the ctx's threads): the
 * input projections of all steps in one GEMM, then one recurrent GEMM per
 * step; in backward the per-step gate gradients are kept (dgi [B, T, 3H] in
 * x's row order, dgh [T, B, 3H] in the saved states' order), so the weight
 * gradients are again one GEMM each after the loop. The gate arithmetic is
 * per row in float32, the order of torch's CPU kernel. */
#include "core/check.h"

#include <attn/nn.h>

#include <attn/seq2seq.h>

#include <math.h>
#include <string.h>

static size_t fbytes(int64_t count) { return (size_t)count * sizeof(float); }

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ---- one row of one step --------------------------------------------------- */

/* gi [3H] = W_i x + b_i, gh [3H] = W_h h + b_h, hp [H] = h: writes hn [H] = h'
 * and sv [4H] = (r, z, n, W_hn h + b_hn). */
static void row_forward(int64_t H, const float *gi, const float *gh, const float *hp,
                        float *hn, float *sv)
{
    for (int64_t k = 0; k < H; k++) {
        float r = sigmoidf(gi[k] + gh[k]);
        float z = sigmoidf(gi[H + k] + gh[H + k]);
        float ghn = gh[2 * H + k];
        float n = tanhf(gi[2 * H + k] + r * ghn);
        hn[k] = (1.0f - z) * n + z * hp[k];
        sv[k] = r;
        sv[H + k] = z;
        sv[2 * H + k] = n;
        sv[3 * H + k] = ghn;
    }
}

/* From dh' [H] (= dh), h [H] (= hp) and sv [4H]: dgi [3H] = d(W_i x + b_i),
 * dgh [3H] = d(W_h h + b_h), and dhz [H] = dh' * z, the direct part of dh. */
static void row_backward(int64_t H, const float *hp, const float *sv, const float *dh,
                         float *dgi, float *dgh, float *dhz)
{
    for (int64_t k = 0; k < H; k++) {
        float r = sv[k], z = sv[H + k], n = sv[2 * H + k], ghn = sv[3 * H + k];
        float dn = dh[k] * (1.0f - z);          /* h' = (1 - z) n + z h */
        float dz = dh[k] * (hp[k] - n);
        dhz[k] = dh[k] * z;
        float dnp = dn * (1.0f - n * n);        /* n = tanh(gi_n + r ghn) */
        float drp = dnp * ghn * r * (1.0f - r); /* r = sigmoid(gi_r + gh_r) */
        float dzp = dz * z * (1.0f - z);        /* z = sigmoid(gi_z + gh_z) */
        dgi[k] = dgh[k] = drp;
        dgi[H + k] = dgh[H + k] = dzp;
        dgi[2 * H + k] = dnp;
        dgh[2 * H + k] = dnp * r;
    }
}

/* ---- argument checks ----------------------------------------------------------- */

/* Dims and weights of a cell: 4H, 4H * I and 4H * H fit. */
static attn_status check_cell(const char *fn, attn_ctx *ctx, const attn_nn_gru_cell *c)
{
    int64_t n4h, sz;
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, c);
    ATTN__DIM(fn, c->input_size);
    ATTN__DIM_POS(fn, c->hidden_size);
    ATTN__NOT_NULL(fn, c->weight_ih);
    ATTN__NOT_NULL(fn, c->weight_hh);
    ATTN__MUL(fn, 4, c->hidden_size, &n4h);
    ATTN__MUL(fn, n4h, c->input_size, &sz);
    ATTN__MUL(fn, n4h, c->hidden_size, &sz);
    return ATTN_OK;
}

/* ---- the cell ---------------------------------------------------------------- */

attn_status attn_nn_gru_cell_forward(attn_ctx *ctx, const attn_nn_gru_cell *c, const float *x,
                                      const float *h, int64_t B, float *h_new, float *saved)
{
    attn_status st = check_cell(__func__, ctx, c);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, x);
    ATTN__NOT_NULL(__func__, h);
    ATTN__NOT_NULL(__func__, h_new);
    ATTN__DIM(__func__, B);
    int64_t H = c->hidden_size, I = c->input_size, nx, nh, ng;
    ATTN__MUL(__func__, B, I, &nx);
    ATTN__MUL(__func__, B, H, &nh);
    ATTN__MUL(__func__, nh, 4, &ng);
    attn__span sp[] = {{"h_new", h_new, fbytes(nh)}, {"saved", saved, fbytes(ng)},
                       {"x", x, fbytes(nx)}, {"h", h, fbytes(nh)}};
    if ((st = attn__disjoint(__func__, sp, 4, 2)) != ATTN_OK) return st;
    if (B == 0) return ATTN_OK;
    float *gi = attn_alloc(fbytes(nh) * 10); /* gi [B, 3H], gh [B, 3H], sv [B, 4H] */
    if (!gi) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    float *gh = gi + 3 * nh, *sv = gh + 3 * nh;
    st = attn_nn_linear_forward(ctx, x, B, I, c->weight_ih, c->bias_ih, 3 * H, gi);
    if (st == ATTN_OK)
        st = attn_nn_linear_forward(ctx, h, B, H, c->weight_hh, c->bias_hh, 3 * H, gh);
    if (st == ATTN_OK) {
        for (int64_t b = 0; b < B; b++)
            row_forward(H, gi + b * 3 * H, gh + b * 3 * H, h + b * H, h_new + b * H, sv + b * 4 * H);
        if (saved) memcpy(saved, sv, fbytes(ng));
    }
    attn_release(gi);
    return st;
}

attn_status attn_nn_gru_cell_backward(attn_ctx *ctx, const attn_nn_gru_cell *c, const float *x,
                                       const float *h, int64_t B, const float *saved,
                                       const float *dh_new, float *dx, float *dh)
{
    attn_status st = check_cell(__func__, ctx, c);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, x);
    ATTN__NOT_NULL(__func__, h);
    ATTN__NOT_NULL(__func__, saved);
    ATTN__NOT_NULL(__func__, dh_new);
    ATTN__DIM(__func__, B);
    int64_t H = c->hidden_size, I = c->input_size, nx, nh, ng;
    ATTN__MUL(__func__, B, I, &nx);
    ATTN__MUL(__func__, B, H, &nh);
    ATTN__MUL(__func__, nh, 4, &ng);
    attn__span sp[] = {{"dx", dx, fbytes(nx)}, {"dh", dh, fbytes(nh)},
                       {"x", x, fbytes(nx)}, {"h", h, fbytes(nh)},
                       {"saved", saved, fbytes(ng)}, {"dh_new", dh_new, fbytes(nh)}};
    if ((st = attn__disjoint(__func__, sp, 6, 2)) != ATTN_OK) return st;
    if (B == 0) return ATTN_OK;
    float *dgi = attn_alloc(fbytes(nh) * 7); /* dgi [B, 3H], dgh [B, 3H], dhz [B, H] */
    if (!dgi) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    float *dgh = dgi + 3 * nh, *dhz = dgh + 3 * nh;
    for (int64_t b = 0; b < B; b++)
        row_backward(H, h + b * H, saved + b * 4 * H, dh_new + b * H, dgi + b * 3 * H,
                     dgh + b * 3 * H, dhz + b * H);
    if (dh)
        for (int64_t i = 0; i < nh; i++) dh[i] += dhz[i];
    st = attn_nn_linear_backward(ctx, x, B, I, c->weight_ih, 3 * H, dgi, dx, c->d_weight_ih,
                                 c->d_bias_ih);
    if (st == ATTN_OK)
        st = attn_nn_linear_backward(ctx, h, B, H, c->weight_hh, 3 * H, dgh, dh, c->d_weight_hh,
                                     c->d_bias_hh);
    attn_release(dgi);
    return st;
}

/* ---- the layer: checks ---------------------------------------------------------- */

/* Element counts of one call: x [B, T, I], out [B, T, D*H], states [D, B, H],
 * per-direction step buffers [T, B, 3H] and [T, B, 4H], and 9 [B, H]. */
typedef struct {
    int64_t D, H, I, x, out, st, bh, g3, g4, bh9;
} layer_sizes;

static attn_status check_layer(const char *fn, attn_ctx *ctx, const attn_nn_gru *g, int64_t B,
                               int64_t T, const int64_t *lens, layer_sizes *z)
{
    ATTN__NOT_NULL(fn, g);
    if (g->bidirectional != 0 && g->bidirectional != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'g->bidirectional' is %d; it must be 0 or 1",
                         fn, g->bidirectional);
    z->D = 1 + g->bidirectional;
    for (int64_t d = 0; d < z->D; d++) {
        attn_status st = check_cell(fn, ctx, &g->dir[d]);
        if (st != ATTN_OK) return st;
    }
    if (z->D == 2 && (g->dir[1].input_size != g->dir[0].input_size ||
                      g->dir[1].hidden_size != g->dir[0].hidden_size))
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'g->dir[1]' has other sizes than 'g->dir[0]'", fn);
    ATTN__DIM(fn, B);
    ATTN__DIM(fn, T);
    z->H = g->dir[0].hidden_size;
    z->I = g->dir[0].input_size;
    int64_t bt, dh;
    ATTN__MUL(fn, B, T, &bt);
    ATTN__MUL(fn, bt, z->I, &z->x);
    ATTN__MUL(fn, z->D, z->H, &dh);
    ATTN__MUL(fn, bt, dh, &z->out);
    ATTN__MUL(fn, B, z->H, &z->bh);
    ATTN__MUL(fn, z->D, z->bh, &z->st);
    ATTN__MUL(fn, z->bh, 9, &z->bh9);
    ATTN__MUL(fn, bt, 4 * z->H, &z->g4); /* 4H cannot overflow: check_cell */
    z->g3 = z->g4 / 4 * 3;
    for (int64_t b = 0; lens && b < B; b++)
        if (lens[b] < 0 || lens[b] > T)
            return attn_fail(ATTN_BAD_DIM, "%s: argument 'lens' has lens[%lld] = %lld outside [0, T=%lld]",
                             fn, (long long)b, (long long)lens[b], (long long)T);
    return ATTN_OK;
}

static int64_t len_of(const int64_t *lens, int64_t b, int64_t T) { return lens ? lens[b] : T; }

void attn_nn_gru_saved_free(attn_nn_gru_saved *s)
{
    if (!s) return;
    attn_release(s->h_prev);
    attn_release(s->gates);
    memset(s, 0, sizeof *s);
}

/* ---- the layer: forward ---------------------------------------------------------- */

/* Scratch of one forward call: gi [B, T, 3H] (x's row order), gh [B, 3H],
 * h [B, H] (the state), hn [B, H] (the next), sv [B, 4H]. */
typedef struct {
    float *gi, *gh, *h, *hn, *sv;
} fwd_scratch;

/* Direction d over all steps; h starts as h0 of d (or 0). */
static attn_status forward_dir(attn_ctx *ctx, const attn_nn_gru *g, int64_t d, const float *x,
                               int64_t B, int64_t T, const int64_t *lens, const layer_sizes *z,
                               fwd_scratch *s, float *out, attn_nn_gru_saved *saved)
{
    const attn_nn_gru_cell *c = &g->dir[d];
    int64_t H = z->H, DH = z->D * H;
    attn_status st =
        attn_nn_linear_forward(ctx, x, B * T, z->I, c->weight_ih, c->bias_ih, 3 * H, s->gi);
    for (int64_t k = 0; k < T && st == ATTN_OK; k++) {
        int64_t t = d == 0 ? k : T - 1 - k;
        st = attn_nn_linear_forward(ctx, s->h, B, H, c->weight_hh, c->bias_hh, 3 * H, s->gh);
        if (st != ATTN_OK) break;
        for (int64_t b = 0; b < B; b++) {
            float *o = out + (b * T + t) * DH + d * H;
            if (t >= len_of(lens, b, T)) { /* padding: the state stays */
                memcpy(s->hn + b * H, s->h + b * H, fbytes(H));
                memset(s->sv + b * 4 * H, 0, fbytes(4 * H));
                memset(o, 0, fbytes(H));
                continue;
            }
            row_forward(H, s->gi + (b * T + t) * 3 * H, s->gh + b * 3 * H, s->h + b * H,
                        s->hn + b * H, s->sv + b * 4 * H);
            memcpy(o, s->hn + b * H, fbytes(H));
        }
        if (saved) {
            memcpy(saved->h_prev + (d * T + t) * z->bh, s->h, fbytes(z->bh));
            memcpy(saved->gates + (d * T + t) * 4 * z->bh, s->sv, fbytes(4 * z->bh));
        }
        float *tmp = s->h;
        s->h = s->hn;
        s->hn = tmp;
    }
    return st;
}

attn_status attn_nn_gru_forward(attn_ctx *ctx, const attn_nn_gru *g, const float *x, int64_t B,
                                 int64_t T, const int64_t *lens, const float *h0, float *out,
                                 float *h_n, attn_nn_gru_saved *saved)
{
    layer_sizes z;
    attn_status st = check_layer(__func__, ctx, g, B, T, lens, &z);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, x);
    ATTN__NOT_NULL(__func__, out);
    attn__span sp[] = {{"out", out, fbytes(z.out)}, {"h_n", h_n, fbytes(z.st)},
                       {"x", x, fbytes(z.x)}, {"h0", h0, fbytes(z.st)}};
    if ((st = attn__disjoint(__func__, sp, 4, 2)) != ATTN_OK) return st;
    attn_nn_gru_saved sv = {B, T, NULL, NULL};
    /* scratch: gi [B*T*3H], gh [B*3H], h, hn [B*H] each, sv [B*4H], h_last [D*B*H] */
    float *buf = attn_alloc(fbytes(z.g3 + z.bh9 + z.st + 1));
    if (saved) {
        sv.h_prev = attn_calloc((size_t)(z.D * z.g4 / 4) + 1, sizeof(float));
        sv.gates = attn_calloc((size_t)(z.D * z.g4) + 1, sizeof(float));
    }
    if (!buf || (saved && (!sv.h_prev || !sv.gates))) {
        attn_release(buf);
        attn_nn_gru_saved_free(&sv);
        return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    }
    fwd_scratch s = {buf, buf + z.g3, buf + z.g3 + 3 * z.bh, buf + z.g3 + 4 * z.bh,
                     buf + z.g3 + 5 * z.bh};
    float *h_last = buf + z.g3 + z.bh9;
    for (int64_t d = 0; d < z.D && st == ATTN_OK; d++) {
        if (h0)
            memcpy(s.h, h0 + d * z.bh, fbytes(z.bh));
        else
            memset(s.h, 0, fbytes(z.bh));
        st = forward_dir(ctx, g, d, x, B, T, lens, &z, &s, out, saved ? &sv : NULL);
        memcpy(h_last + d * z.bh, s.h, fbytes(z.bh));
    }
    if (st == ATTN_OK && h_n) memcpy(h_n, h_last, fbytes(z.st));
    attn_release(buf);
    if (st != ATTN_OK || !saved) {
        attn_nn_gru_saved_free(&sv);
        return st;
    }
    *saved = sv;
    return ATTN_OK;
}

/* ---- the layer: backward ---------------------------------------------------------- */

/* Scratch of one backward call: dgi [B, T, 3H], dgh [T, B, 3H], dh [B, H]
 * (the gradient of the state after the step), dn [B, H] (before it). */
typedef struct {
    float *dgi, *dgh, *dh, *dn;
} bwd_scratch;

static attn_status backward_dir(attn_ctx *ctx, const attn_nn_gru *g, int64_t d, const float *x,
                                const int64_t *lens, const attn_nn_gru_saved *sv,
                                const layer_sizes *z, const float *d_out, bwd_scratch *s,
                                float *dx)
{
    const attn_nn_gru_cell *c = &g->dir[d];
    int64_t B = sv->B, T = sv->T, H = z->H, DH = z->D * H;
    const float *hp = sv->h_prev + d * T * z->bh, *gates = sv->gates + d * T * 4 * z->bh;
    memset(s->dgi, 0, fbytes(z->g3));
    memset(s->dgh, 0, fbytes(z->g3));
    attn_status st = ATTN_OK;
    for (int64_t k = T - 1; k >= 0 && st == ATTN_OK; k--) {
        int64_t t = d == 0 ? k : T - 1 - k;
        float *dgh_t = s->dgh + t * 3 * z->bh;
        for (int64_t b = 0; b < B; b++) {
            float *dh = s->dh + b * H;
            if (t >= len_of(lens, b, T)) { /* padding: the gradient passes unchanged */
                memcpy(s->dn + b * H, dh, fbytes(H));
                continue;
            }
            if (d_out)
                for (int64_t j = 0; j < H; j++) dh[j] += d_out[(b * T + t) * DH + d * H + j];
            row_backward(H, hp + (t * B + b) * H, gates + (t * B + b) * 4 * H, dh,
                         s->dgi + (b * T + t) * 3 * H, dgh_t + b * 3 * H, s->dn + b * H);
        }
        /* dh_{t-1} = dh' z + dgh W_hh */
        st = attn_nn_linear_backward(ctx, hp + t * z->bh, B, H, c->weight_hh, 3 * H, dgh_t,
                                     s->dn, NULL, NULL);
        float *tmp = s->dh;
        s->dh = s->dn;
        s->dn = tmp;
    }
    if (st == ATTN_OK)
        st = attn_nn_linear_backward(ctx, x, B * T, z->I, c->weight_ih, 3 * H, s->dgi, dx,
                                     c->d_weight_ih, c->d_bias_ih);
    if (st == ATTN_OK && (c->d_weight_hh || c->d_bias_hh))
        st = attn_nn_linear_backward(ctx, hp, T * B, H, c->weight_hh, 3 * H, s->dgh, NULL,
                                     c->d_weight_hh, c->d_bias_hh);
    return st;
}

attn_status attn_nn_gru_backward(attn_ctx *ctx, const attn_nn_gru *g, const float *x,
                                  const int64_t *lens, const attn_nn_gru_saved *saved,
                                  const float *d_out, const float *d_h_n, float *dx, float *dh0)
{
    layer_sizes z;
    ATTN__NOT_NULL(__func__, saved);
    attn_status st = check_layer(__func__, ctx, g, saved->B, saved->T, lens, &z);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, x);
    ATTN__NOT_NULL(__func__, saved->h_prev);
    ATTN__NOT_NULL(__func__, saved->gates);
    attn__span sp[] = {{"dx", dx, fbytes(z.x)}, {"dh0", dh0, fbytes(z.st)},
                       {"x", x, fbytes(z.x)}, {"d_out", d_out, fbytes(z.out)},
                       {"d_h_n", d_h_n, fbytes(z.st)}};
    if ((st = attn__disjoint(__func__, sp, 5, 2)) != ATTN_OK) return st;
    float *buf = attn_alloc(fbytes(2 * z.g3 + 2 * z.bh + 1));
    if (!buf) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    bwd_scratch s = {buf, buf + z.g3, buf + 2 * z.g3, buf + 2 * z.g3 + z.bh};
    for (int64_t d = 0; d < z.D && st == ATTN_OK; d++) {
        if (d_h_n)
            memcpy(s.dh, d_h_n + d * z.bh, fbytes(z.bh));
        else
            memset(s.dh, 0, fbytes(z.bh));
        st = backward_dir(ctx, g, d, x, lens, saved, &z, d_out, &s, dx);
        if (st == ATTN_OK && dh0)
            for (int64_t i = 0; i < z.bh; i++) dh0[d * z.bh + i] += s.dh[i];
    }
    attn_release(buf);
    return st;
}
