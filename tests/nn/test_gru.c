/* test_gru.c - the GRU cell and layer (attn/nn.h, src/nn/gru.c): backward
 * through time by finite differences, padding invariance, argument checks. */
#include "nn_test.h"

#include <stdlib.h>
#include <string.h>

/* ---- the GRU cell and layer ------------------------------------------------------- */

/* A layer's parameters and gradients in two blocks (per direction: w_ih
 * [3H,I], w_hh [3H,H], b_ih, b_hh [3H]). */
typedef struct {
    attn_nn_gru g;
    float *p, *dp;
    int64_t per;
} layer;

static void layer_make(layer *L, int64_t I, int64_t H, int bidi, uint64_t seed)
{
    L->per = 3 * H * I + 3 * H * H + 6 * H;
    L->p = calloc((size_t)(2 * L->per), sizeof(float));
    L->dp = calloc((size_t)(2 * L->per), sizeof(float));
    uint64_t s = seed;
    t_fill(&s, L->p, 2 * L->per, -0.6, 0.6);
    memset(&L->g, 0, sizeof L->g);
    L->g.bidirectional = bidi;
    for (int d = 0; d < 2; d++) {
        attn_nn_gru_cell *c = &L->g.dir[d];
        float *p = L->p + d * L->per, *dp = L->dp + d * L->per;
        c->input_size = I;
        c->hidden_size = H;
        c->weight_ih = p;
        c->weight_hh = p + 3 * H * I;
        c->bias_ih = p + 3 * H * I + 3 * H * H;
        c->bias_hh = c->bias_ih + 3 * H;
        c->d_weight_ih = dp;
        c->d_weight_hh = dp + 3 * H * I;
        c->d_bias_ih = dp + 3 * H * I + 3 * H * H;
        c->d_bias_hh = c->d_bias_ih + 3 * H;
    }
}

static void layer_free(layer *L)
{
    free(L->p);
    free(L->dp);
}

typedef struct {
    layer *L;
    int64_t B, T, D, H;
    const int64_t *lens;
    float *x, *h0, *a, *c; /* loss = a . out + c . h_n */
    float *out, *hn;
} layer_case;

static double layer_loss(void *user)
{
    layer_case *k = user;
    attn_status st = attn_nn_gru_forward(t_ctx(2), &k->L->g, k->x, k->B, k->T, k->lens, k->h0, k->out,
                                          k->hn, NULL);
    if (st != ATTN_OK) return NAN;
    return t_dot(k->a, k->out, k->B * k->T * k->D * k->H) + t_dot(k->c, k->hn, k->D * k->B * k->H);
}

T_TEST(gru_cell_backward_fd)
{
    enum { B = 3, I = 4, H = 5 };
    layer L;
    layer_make(&L, I, H, 0, 11);
    attn_nn_gru_cell *c = &L.g.dir[0];
    uint64_t s = 12;
    float x[B * I], h[B * H], a[B * H], hn[B * H], sv[B * 4 * H], dx[B * I] = {0}, dh[B * H] = {0};
    t_fill(&s, x, B * I, -1, 1);
    t_fill(&s, h, B * H, -1, 1);
    t_fill(&s, a, B * H, -1, 1);
    T_EQ_STATUS(attn_nn_gru_cell_forward(t_ctx(2), c, x, h, B, hn, sv), ATTN_OK);
    T_EQ_STATUS(attn_nn_gru_cell_backward(t_ctx(2), c, x, h, B, sv, a, dx, dh), ATTN_OK);
    /* the cell is the layer's single step: compare with T = 1 */
    float out1[B * H], hn1[B * H], zero[B * H] = {0};
    layer_case k = {&L, B, 1, 1, H, NULL, x, h, a, zero, out1, hn1};
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, B, 1, NULL, h, out1, hn1, NULL), ATTN_OK);
    for (int i = 0; i < B * H; i++) T_NEAR(hn1[i], hn[i], 1e-6);
    int bad = t_fd_check("cell dx", x, B * I, dx, layer_loss, &k, 6, &s);
    bad += t_fd_check("cell dh", h, B * H, dh, layer_loss, &k, 6, &s);
    const char *names[4] = {"cell d_weight_ih", "cell d_weight_hh", "cell d_bias_ih", "cell d_bias_hh"};
    float *ps[4] = {c->weight_ih, c->weight_hh, c->bias_ih, c->bias_hh};
    float *gs[4] = {c->d_weight_ih, c->d_weight_hh, c->d_bias_ih, c->d_bias_hh};
    int64_t ns[4] = {3 * H * I, 3 * H * H, 3 * H, 3 * H};
    for (int t = 0; t < 4; t++) bad += t_fd_check(names[t], ps[t], ns[t], gs[t], layer_loss, &k, 8, &s);
    T_EQ_INT(bad, 0);
    layer_free(&L);
}

/* Backward of a layer case into the gradients (zeroed first). */
static attn_status layer_backward(layer_case *k, float *dx, float *dh0)
{
    attn_nn_gru_saved sv;
    memset(k->L->dp, 0, (size_t)(2 * k->L->per) * sizeof(float));
    attn_status st = attn_nn_gru_forward(t_ctx(2), &k->L->g, k->x, k->B, k->T, k->lens, k->h0, k->out,
                                          k->hn, &sv);
    if (st != ATTN_OK) return st;
    st = attn_nn_gru_backward(t_ctx(2), &k->L->g, k->x, k->lens, &sv, k->a, k->c, dx, dh0);
    attn_nn_gru_saved_free(&sv);
    return st;
}

T_TEST(gru_layer_backward_fd_bidirectional_lengths)
{
    enum { B = 4, T = 5, I = 3, H = 4 };
    for (int bidi = 0; bidi <= 1; bidi++) {
        int64_t D = 1 + bidi, lens[B] = {5, 3, 0, 1};
        layer L;
        layer_make(&L, I, H, bidi, 21 + (uint64_t)bidi);
        uint64_t s = 22;
        float x[B * T * I], h0[2 * B * H], a[B * T * 2 * H], c[2 * B * H], out[B * T * 2 * H],
            hn[2 * B * H], dx[B * T * I] = {0}, dh0[2 * B * H] = {0};
        t_fill(&s, x, B * T * I, -1, 1);
        t_fill(&s, h0, 2 * B * H, -0.8, 0.8);
        t_fill(&s, a, B * T * 2 * H, -1, 1);
        t_fill(&s, c, 2 * B * H, -1, 1);
        layer_case k = {&L, B, T, D, H, lens, x, h0, a, c, out, hn};
        T_EQ_STATUS(layer_backward(&k, dx, dh0), ATTN_OK);
        /* padded x gets no gradient; padded outputs are 0 */
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = lens[b]; t < T; t++) {
                for (int64_t i = 0; i < I; i++) T_EQ_INT(dx[(b * T + t) * I + i] == 0.0f, 1);
                for (int64_t i = 0; i < D * H; i++) T_EQ_INT(out[(b * T + t) * D * H + i] == 0.0f, 1);
            }
        /* a row of length 0 keeps h0 */
        for (int64_t d = 0; d < D; d++)
            for (int64_t i = 0; i < H; i++) T_EQ_INT(hn[(d * B + 2) * H + i] == h0[(d * B + 2) * H + i], 1);
        int bad = t_fd_check("layer dx", x, B * T * I, dx, layer_loss, &k, 12, &s);
        bad += t_fd_check("layer dh0", h0, D * B * H, dh0, layer_loss, &k, 10, &s);
        bad += t_fd_check("layer params", L.p, D * L.per, L.dp, layer_loss, &k, 40, &s);
        T_EQ_INT(bad, 0);
        /* backward accumulates: a second call doubles the gradients */
        float dx2[B * T * I];
        memcpy(dx2, dx, sizeof dx);
        float g1 = L.dp[7];
        attn_nn_gru_saved sv;
        T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, B, T, lens, h0, out, hn, &sv), ATTN_OK);
        T_EQ_STATUS(attn_nn_gru_backward(t_ctx(2), &L.g, x, lens, &sv, a, c, dx2, NULL), ATTN_OK);
        attn_nn_gru_saved_free(&sv);
        T_NEAR(L.dp[7], 2 * g1, 1e-5 * (1 + fabs(g1)));
        T_NEAR(dx2[1], 2 * dx[1], 1e-5 * (1 + fabs(dx[1])));
        layer_free(&L);
    }
}

T_TEST(gru_layer_padding_invariance)
{
    enum { B = 3, T = 6, I = 3, H = 4, D = 2 };
    int64_t lens[B] = {6, 2, 4};
    layer L;
    layer_make(&L, I, H, 1, 31);
    uint64_t s = 32;
    float x[B * T * I], a[B * T * D * H], c[D * B * H], out[B * T * D * H], hn[D * B * H];
    t_fill(&s, x, B * T * I, -1, 1);
    t_fill(&s, a, B * T * D * H, -1, 1);
    t_fill(&s, c, D * B * H, -1, 1);
    float dxa[B * T * I] = {0}, dxb[B * T * I] = {0}, *g_batch = malloc((size_t)(2 * L.per) * sizeof(float));
    layer_case k = {&L, B, T, D, H, lens, x, NULL, a, c, out, hn};
    T_EQ_STATUS(layer_backward(&k, dxa, NULL), ATTN_OK);
    memcpy(g_batch, L.dp, (size_t)(2 * L.per) * sizeof(float));
    /* large garbage in the padding changes nothing */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = lens[b]; t < T; t++)
            for (int64_t i = 0; i < I; i++) x[(b * T + t) * I + i] = 1e3f * (float)(i + 1);
    float out2[B * T * D * H], hn2[D * B * H];
    k.out = out2;
    k.hn = hn2;
    T_EQ_STATUS(layer_backward(&k, dxb, NULL), ATTN_OK);
    T_EQ_INT(memcmp(out, out2, sizeof out) == 0 && memcmp(hn, hn2, sizeof hn) == 0, 1);
    T_EQ_INT(memcmp(dxa, dxb, sizeof dxa) == 0, 1);
    /* each row alone (B = 1, T = its length) gives its rows of the batch */
    float *g_sum = calloc((size_t)(2 * L.per), sizeof(float));
    for (int64_t b = 0; b < B; b++) {
        int64_t Tb = lens[b];
        float o1[T * D * H], h1[D * H], a1[T * D * H], c1[D * H], dx1[T * I] = {0};
        for (int64_t t = 0; t < Tb; t++)
            memcpy(a1 + t * D * H, a + (b * T + t) * D * H, sizeof(float) * D * H);
        for (int64_t d = 0; d < D; d++) memcpy(c1 + d * H, c + (d * B + b) * H, sizeof(float) * H);
        layer_case k1 = {&L, 1, Tb, D, H, NULL, x + b * T * I, NULL, a1, c1, o1, h1};
        T_EQ_STATUS(layer_backward(&k1, dx1, NULL), ATTN_OK);
        for (int64_t i = 0; i < Tb * D * H; i++) T_NEAR(o1[i], out[b * T * D * H + i], 1e-6);
        for (int64_t d = 0; d < D; d++)
            for (int64_t i = 0; i < H; i++) T_NEAR(h1[d * H + i], hn[(d * B + b) * H + i], 1e-6);
        for (int64_t i = 0; i < Tb * I; i++) T_NEAR(dx1[i], dxa[b * T * I + i], 1e-5);
        for (int64_t i = 0; i < 2 * L.per; i++) g_sum[i] += L.dp[i];
    }
    double worst = 0;
    for (int64_t i = 0; i < 2 * L.per; i++) worst = fmax(worst, fabs(g_sum[i] - g_batch[i]));
    T_LE(worst, 1e-4);
    free(g_sum);
    free(g_batch);
    layer_free(&L);
}

T_TEST(gru_args)
{
    layer L;
    layer_make(&L, 2, 3, 1, 41);
    float x[2 * 4 * 2] = {0}, out[2 * 4 * 6], hn[2 * 2 * 3];
    int64_t lens[2] = {4, 5};
    T_EQ_STATUS(attn_nn_gru_forward(NULL, &L.g, x, 2, 4, NULL, NULL, out, hn, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), NULL, x, 2, 4, NULL, NULL, out, hn, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, NULL, 2, 4, NULL, NULL, out, hn, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, NULL, hn, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, -1, 4, NULL, NULL, out, hn, NULL), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, lens, NULL, out, hn, NULL), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, out, out + 2, NULL), ATTN_OVERLAP);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, x, hn, NULL), ATTN_OVERLAP);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, INT64_MAX / 2, 4, NULL, NULL, out, hn, NULL), ATTN_OVERFLOW);
    L.g.bidirectional = 2;
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, out, hn, NULL), ATTN_BAD_PARAM);
    L.g.bidirectional = 1;
    L.g.dir[1].hidden_size = 4;
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, out, hn, NULL), ATTN_BAD_DIM);
    L.g.dir[1].hidden_size = 0;
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, out, hn, NULL), ATTN_BAD_DIM);
    L.g.dir[1].hidden_size = 3;
    L.g.dir[1].weight_hh = NULL;
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 4, NULL, NULL, out, hn, NULL), ATTN_NULL_ARG);
    L.g.dir[1].weight_hh = L.g.dir[1].weight_ih + 3 * 3 * 2;
    /* nothing was written by the failing calls; zero sizes are no-ops */
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 0, 4, NULL, NULL, out, NULL, NULL), ATTN_OK);
    T_EQ_STATUS(attn_nn_gru_forward(t_ctx(2), &L.g, x, 2, 0, NULL, NULL, out, hn, NULL), ATTN_OK);
    for (int i = 0; i < 12; i++) T_EQ_INT(hn[i] == 0.0f, 1);
    attn_nn_gru_saved sv = {2, 4, NULL, NULL};
    T_EQ_STATUS(attn_nn_gru_backward(t_ctx(2), &L.g, x, NULL, &sv, NULL, NULL, NULL, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_nn_gru_backward(t_ctx(2), &L.g, x, NULL, NULL, NULL, NULL, NULL, NULL), ATTN_NULL_ARG);
    float h[2 * 3] = {0}, hnew[2 * 3];
    T_EQ_STATUS(attn_nn_gru_cell_forward(t_ctx(2), &L.g.dir[0], x, h, 2, h, NULL), ATTN_OVERLAP);
    T_EQ_STATUS(attn_nn_gru_cell_forward(t_ctx(2), &L.g.dir[0], x, h, 2, hnew, NULL), ATTN_OK);
    T_EQ_STATUS(attn_nn_gru_cell_backward(t_ctx(2), &L.g.dir[0], x, h, 2, NULL, hnew, NULL, NULL), ATTN_NULL_ARG);
    attn_nn_gru_saved_free(NULL);
    layer_free(&L);
}
