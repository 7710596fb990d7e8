/* test_probe.c - attn_transformer_step_probe: the attention calls a
 * backward pass hands to the hook (order, sites, shapes) and the gradient
 * of the loss with respect to each layer's probabilities, checked by
 * finite differences: a random change of one attention's query weights
 * moves the loss only through that attention's probabilities A, so
 * dL/de = sum(dL/dA * dA/de). Also errors from the hook and the options. */
#include "nn_test.h"

#include <stdlib.h>
#include <string.h>

enum { B = 2, SS = 6, ST = 5, MAX_SITES = 8 };

typedef struct {
    int stack, cross;
    int64_t layer, Hq, Sq, Sk;
    float *w, *dw; /* [B, Hq, Sq, Sk] */
} site;

typedef struct {
    site s[MAX_SITES];
    int n;
    attn_status fail_with;
} sites;

static attn_status collect(attn_ctx *ctx, const attn_nn_attn_probe *p, void *user)
{
    sites *c = user;
    if (c->fail_with != ATTN_OK) return c->fail_with;
    if (c->n == MAX_SITES) return ATTN_BAD_PARAM;
    site *s = &c->s[c->n++];
    s->stack = p->stack;
    s->cross = p->cross;
    s->layer = p->layer;
    s->Hq = p->q.dim[2];
    s->Sq = p->q.dim[1];
    s->Sk = p->k.dim[1];
    size_t n = (size_t)(p->q.dim[0] * s->Hq * s->Sq * s->Sk);
    s->w = malloc(n * sizeof(float));
    s->dw = malloc(n * sizeof(float));
    return attn_nn_attn_probe_weights(ctx, p, s->w, s->dw);
}

static void sites_free(sites *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->s[i].w);
        free(c->s[i].dw);
    }
    c->n = 0;
}

static attn_transformer *model(void)
{
    attn_transformer_config c = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    c.vocab = 13;
    c.d_model = 16;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.d_ff = 24;
    c.n_enc_layers = 2;
    c.n_dec_layers = 2;
    c.max_len = 12;
    attn_transformer *m = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 5, &m), ATTN_OK);
    return m;
}

/* Two rows: sources of lengths 6 and 4 (padded), the same target, and in
 * row b the loss of target position 1 + 2b only (the others are pad). */
static int32_t src[B * SS] = {4, 7, 5, 9, 11, 6, 8, 5, 10, 12, 0, 0};
static int32_t tgt_in[B * ST] = {1, 4, 9, 6, 7, 1, 4, 9, 6, 7};
static int32_t tgt_out[B * ST] = {0, 9, 0, 0, 0, 0, 0, 0, 7, 0};
static int64_t src_lens[B] = {6, 4};

static double probe(attn_transformer *m, sites *c)
{
    attn_nn_batch b = {B, SS, ST, src, tgt_in, tgt_out, src_lens, NULL, 0, NULL, NULL};
    attn_nn_train_opts o = {0, 0, 0, 0};
    double loss = 0;
    T_EQ_STATUS(attn_transformer_step_probe(t_ctx(2), m, &b, &o, collect, c, &loss), ATTN_OK);
    return loss;
}

/* The query rows [d, d] of the attention of site s (packed in_proj_weight)
 * and, in *grad, their gradient. */
static float *query_weights(attn_transformer *m, const site *s, const float **grad)
{
    char name[96];
    snprintf(name, sizeof name, "%s.layers.%lld.%s.in_proj_weight",
             s->stack ? "decoder" : "encoder", (long long)s->layer,
             s->cross ? "multihead_attn" : "self_attn");
    for (int64_t i = 0; i < attn_transformer_n_tensors(m); i++) {
        attn_nn_param p;
        attn_transformer_tensor(m, i, &p);
        if (strcmp(p.name, name) == 0) {
            *grad = p.grad;
            return p.value;
        }
    }
    t_fail(__FILE__, __LINE__, "no tensor named %s", name);
    return NULL;
}

T_TEST(transformer_probe_sites_and_shapes)
{
    attn_transformer *m = model();
    sites c = {0};
    probe(m, &c);
    /* decoder blocks last to first, cross before self; then the encoder */
    const int want[6][3] = {{1, 1, 1}, {1, 1, 0}, {1, 0, 1}, {1, 0, 0}, {0, 1, 0}, {0, 0, 0}};
    T_EQ_INT(c.n, 6);
    for (int i = 0; i < c.n && i < 6; i++) {
        const site *s = &c.s[i];
        T_EQ_INT(s->stack, want[i][0]);
        T_EQ_INT(s->layer, want[i][1]);
        T_EQ_INT(s->cross, want[i][2]);
        T_EQ_INT(s->Sq, s->stack ? ST : SS);
        T_EQ_INT(s->Sk, s->stack && !s->cross ? ST : SS);
        /* rows sum to 1 over the visible keys; padded keys and future
           positions get weight 0 and gradient 0 where never read */
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < s->Hq; h++)
                for (int64_t q = 0; q < s->Sq; q++) {
                    const float *w = s->w + ((b * s->Hq + h) * s->Sq + q) * s->Sk;
                    const float *dw = s->dw + ((b * s->Hq + h) * s->Sq + q) * s->Sk;
                    double sum = 0;
                    for (int64_t k = 0; k < s->Sk; k++) {
                        int hidden = (s->Sk == SS && k >= src_lens[b]) || (s->stack && !s->cross && k > q);
                        if (hidden) T_CHECK(w[k] == 0);
                        if (s->Sk == SS && k >= src_lens[b]) T_CHECK(dw[k] == 0);
                        sum += w[k];
                    }
                    T_NEAR(sum, 1.0, 1e-5);
                }
    }
    sites_free(&c);
    attn_transformer_free(m);
}

T_TEST(transformer_probe_grads_fd)
{
    attn_transformer *m = model();
    sites c = {0};
    attn_transformer_zero_grad(m);
    probe(m, &c);
    int64_t d = attn_transformer_get_config(m)->d_model;
    const double eps = 1e-2;
    float *dir = malloc((size_t)(d * d) * sizeof(float)), *save = malloc((size_t)(d * d) * sizeof(float));
    for (int k = 0; k < c.n; k++) {
        const site *s = &c.s[k];
        const float *g = NULL;
        float *wq = query_weights(m, s, &g);
        if (!wq) break;
        /* along the loss's gradient (from the first probe's backward), the
           direction in which the loss moves most */
        double gmax = 0;
        for (int64_t e = 0; e < d * d; e++) gmax = fmax(gmax, fabs(g[e]));
        for (int64_t e = 0; e < d * d; e++) dir[e] = (float)(g[e] / gmax);
        memcpy(save, wq, (size_t)(d * d) * sizeof(float));
        sites plus = {0}, minus = {0};
        for (int64_t e = 0; e < d * d; e++) wq[e] = (float)(save[e] + eps * dir[e]);
        double lp = probe(m, &plus);
        for (int64_t e = 0; e < d * d; e++) wq[e] = (float)(save[e] - eps * dir[e]);
        double lm = probe(m, &minus);
        memcpy(wq, save, (size_t)(d * d) * sizeof(float));
        int64_t n = B * s->Hq * s->Sq * s->Sk;
        double fd = (lp - lm) / (2 * eps), chain = 0;
        for (int64_t i = 0; i < n; i++)
            chain += (double)s->dw[i] * ((double)plus.s[k].w[i] - minus.s[k].w[i]) / (2 * eps);
        if (t_verbose)
            printf("  stack %d layer %lld cross %d: dL/de %.7g, sum dL/dA dA/de %.7g\n", s->stack,
                   (long long)s->layer, s->cross, fd, chain);
        T_CHECK(fabs(fd) > 1e-3); /* the direction moves the loss */
        T_NEAR(chain, fd, 2e-5 + 2e-4 * fabs(fd));
        sites_free(&plus);
        sites_free(&minus);
    }
    free(dir);
    free(save);
    sites_free(&c);
    attn_transformer_free(m);
}

T_TEST(transformer_probe_errors)
{
    attn_transformer *m = model();
    attn_nn_batch b = {B, SS, ST, src, tgt_in, tgt_out, src_lens, NULL, 0, NULL, NULL};
    attn_nn_train_opts o = {0, 0, 0, 0};
    double loss = -1;
    sites c = {0};
    attn_ctx *ctx = t_ctx(1);
    T_EQ_STATUS(attn_transformer_step_probe(ctx, m, &b, &o, NULL, &c, &loss), ATTN_NULL_ARG);
    c.fail_with = ATTN_IO; /* the hook's status stops the pass and comes back */
    T_EQ_STATUS(attn_transformer_step_probe(ctx, m, &b, &o, collect, &c, &loss), ATTN_IO);
    T_CHECK(loss == -1);
    T_EQ_INT(c.n, 0);
    attn_transformer_free(m);
    attn_transformer_config cfg = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    cfg.vocab = 13;
    cfg.d_model = 16;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 2;
    cfg.d_ff = 16;
    cfg.n_enc_layers = cfg.n_dec_layers = 1;
    cfg.max_len = 12;
    cfg.attn_dropout = 0.1;
    T_EQ_STATUS(attn_transformer_create(&cfg, 1, &m), ATTN_OK);
    o.training = 1;
    c.fail_with = ATTN_OK;
    T_EQ_STATUS(attn_transformer_step_probe(ctx, m, &b, &o, collect, &c, &loss), ATTN_UNSUPPORTED);
    o.training = 0;
    T_EQ_STATUS(attn_transformer_step_probe(ctx, m, &b, &o, collect, &c, &loss), ATTN_OK);
    T_EQ_INT(c.n, 3);
    sites_free(&c);
    attn_transformer_free(m);
}
