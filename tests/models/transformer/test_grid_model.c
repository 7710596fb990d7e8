/* test_grid_model.c - a random grid of whole transformers
 * (attn_transformer_step) that needs no PyTorch: every parameter tensor's
 * gradient against centred differences of the model's own loss (first,
 * last and random entries), and two exact properties of the forward: the
 * logits and loss do not change when padded source tokens do (the key
 * lengths reach every attention over the source), and the logits of
 * positions before t do not change when target tokens from t on do
 * (causality). The PyTorch grid (python/tests/test_grid_models.py) compares
 * the same models with torch.nn.Transformer and a written-out LM.
 *
 * The differences are of a float32 forward with steps of 1e-2, as
 * t_fd_check's (test.h): within 5e-4 + 1e-2 |g|; so only GELU models'
 * (the steps straddle ReLU's kink; the layer grids check ReLU). */
#include "../../nn/grid_nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    attn_ctx *ctx;
    attn_transformer *m;
    attn_nn_batch b;
    attn_nn_train_opts o;
} model_case;

static double model_loss(void *user)
{
    model_case *k = user;
    double loss = 0;
    if (attn_transformer_step(k->ctx, k->m, &k->b, &k->o, 0, &loss, NULL, NULL) != ATTN_OK)
        return NAN;
    return loss;
}

static attn_transformer_config draw(g_grid *g)
{
    attn_transformer_arch arch = g_unif(g, 0, 1) < 0.5 ? ATTN_TRANSFORMER_ARCH_ENCDEC
                                                       : ATTN_TRANSFORMER_ARCH_DECODER;
    attn_transformer_config c = attn_transformer_config_default(arch);
    c.n_heads = g_log_int(g, 1, 4);
    int64_t hd = g_log_int(g, c.n_heads >= 4 ? 1 : 4 / c.n_heads + 1, 8);
    c.d_model = c.n_heads * hd;
    c.n_kv_heads = c.n_heads;
    if (arch == ATTN_TRANSFORMER_ARCH_DECODER && g_unif(g, 0, 1) < 0.5)
        do c.n_kv_heads = t_rand_int(&g->rng, 1, c.n_heads);
        while (c.n_heads % c.n_kv_heads != 0);
    c.vocab = g_log_int(g, 3, 20);
    c.d_ff = g_log_int(g, 1, 32);
    c.n_enc_layers = arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? g_log_int(g, 1, 2) : 0;
    c.n_dec_layers = g_log_int(g, 1, 2);
    c.max_len = 10;
    c.norm_first = g_unif(g, 0, 1) < 0.5;
    c.norm = g_unif(g, 0, 1) < 0.5 ? ATTN_NN_NORM_LAYERNORM : ATTN_NN_NORM_RMSNORM;
    c.pos = (attn_nn_pos)t_rand_int(&g->rng, 1, hd % 2 == 0 ? 3 : 2);
    c.act = g_unif(g, 0, 1) < 0.5 ? ATTN_NN_ACT_GELU : ATTN_NN_ACT_RELU;
    c.tie_embeddings = g_unif(g, 0, 1) < 0.3;
    c.dropout = c.attn_dropout = 0;
    return c;
}

static int32_t *tokens(g_grid *g, int64_t n, int64_t lo, int64_t vocab)
{
    int32_t *t = g_alloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)t_rand_int(&g->rng, lo, vocab - 1);
    return t;
}

/* The centred difference of the loss in entry v with step h (the step
 * taken in float32). */
static double centred(model_case *k, float *v, float h)
{
    float keep = *v;
    *v = keep + h;
    float up = *v;
    double lp = model_loss(k);
    *v = keep - h;
    float dn = *v;
    double lm = model_loss(k);
    *v = keep;
    return (lp - lm) / ((double)up - (double)dn);
}

/* Every parameter's gradient at 4 entries (first, last, random), as
 * t_fd_check; where the loss curves sharply (small d_model) a step of 1e-2
 * leaves a truncation error of a few percent, so steps of 3e-3 and 1e-3
 * are tried too (their float32 rounding is still below the tolerance) and
 * one must match. */
static void check_gradients(g_grid *g, model_case *k)
{
    double loss;
    attn_transformer_zero_grad(k->m);
    g_check(g, "step status", attn_transformer_step(k->ctx, k->m, &k->b, &k->o, 1, &loss, NULL,
                                                    NULL) == ATTN_OK);
    int64_t n = attn_transformer_n_tensors(k->m);
    for (int64_t t = 0; t < n; t++) {
        attn_nn_param p;
        if (attn_transformer_tensor(k->m, t, &p) != ATTN_OK) continue;
        for (int j = 0; j < 4; j++) {
            int64_t i = j == 0 ? 0 : j == 1 ? p.numel - 1 : t_rand_int(&g->rng, 0, p.numel - 1);
            double gi = p.grad[i], tol = 5e-4 + 1e-2 * fabs(gi), fd = 0;
            for (int s = 0; s < 3; s++) {
                fd = centred(k, &p.value[i], (float[]){1e-2f, 3e-3f, 1e-3f}[s]);
                if (fabs(fd - gi) <= tol) break;
            }
            char detail[160];
            snprintf(detail, sizeof detail, "d %s[%lld]: %.7g, centred difference %.7g", p.name,
                     (long long)i, gi, fd);
            g_within(g, "gradients - centred differences", fabs(fd - gi), tol, detail);
        }
    }
}

/* Logits and loss of the batch, into logits [B * S_tgt * vocab]. */
static double forward(g_grid *g, model_case *k, float *logits)
{
    double loss = NAN;
    g_check(g, "forward status", attn_transformer_step(k->ctx, k->m, &k->b, &k->o, 0, &loss,
                                                       logits, NULL) == ATTN_OK);
    return loss;
}

static void one_model(g_grid *g)
{
    attn_transformer_config c = draw(g);
    int enc = c.arch == ATTN_TRANSFORMER_ARCH_ENCDEC;
    int64_t B = g_log_int(g, 1, 3), S = g_log_int(g, 1, 8), T = g_log_int(g, 1, 8);
    double ls = g_unif(g, 0, 1) < 0.5 ? 0 : g_unif(g, 0, 0.3);
    g_desc(g, "arch=%d d_model=%lld heads=%lld/%lld d_ff=%lld layers=%lld+%lld vocab=%lld "
              "norm_first=%d norm=%d pos=%d act=%d tie=%d B=%lld S=%lld T=%lld ls=%g",
           (int)c.arch, (long long)c.d_model, (long long)c.n_heads, (long long)c.n_kv_heads,
           (long long)c.d_ff, (long long)c.n_enc_layers, (long long)c.n_dec_layers,
           (long long)c.vocab, c.norm_first, (int)c.norm, (int)c.pos, (int)c.act,
           c.tie_embeddings, (long long)B, (long long)S, (long long)T, ls);
    attn_transformer *m = NULL;
    if (attn_transformer_create(&c, t_rand_u64(&g->rng), &m) != ATTN_OK) {
        g_check(g, attn_last_error(), false);
        return;
    }
    int32_t *src = tokens(g, B * S, 1, c.vocab), *tin = tokens(g, B * T, 1, c.vocab);
    int32_t *tout = tokens(g, B * T, 0, c.vocab); /* 0: the pad id, ignored */
    int64_t *lens = g_alloc((size_t)B * sizeof(int64_t));
    for (int64_t b = 0; b < B; b++) lens[b] = t_rand_int(&g->rng, 1, S);
    tout[0] = 1;
    model_case k = {t_ctx((int)t_rand_int(&g->rng, 1, 3)), m,
                    {B, enc ? S : 0, T, enc ? src : NULL, tin, tout, enc ? lens : NULL, NULL, 0, NULL, NULL},
                    {0, 0, ls, 0}};
    if (c.act == ATTN_NN_ACT_GELU) /* steps of 1e-2 straddle ReLU's kink */
        check_gradients(g, &k);

    int64_t nl = B * T * c.vocab;
    float *l0 = g_alloc((size_t)nl * sizeof(float)), *l1 = g_alloc((size_t)nl * sizeof(float));
    double loss0 = forward(g, &k, l0);
    if (enc) { /* padded source tokens change nothing */
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = lens[b]; j < S; j++) src[b * S + j] = (int32_t)t_rand_int(&g->rng, 0, c.vocab - 1);
        double loss1 = forward(g, &k, l1);
        g_check(g, "padded source tokens change the logits",
                loss1 == loss0 && memcmp(l0, l1, (size_t)nl * sizeof(float)) == 0);
    }
    int64_t t0 = t_rand_int(&g->rng, 0, T - 1); /* targets from t0 on change no earlier logit */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = t0; t < T; t++) tin[b * T + t] = (int32_t)t_rand_int(&g->rng, 0, c.vocab - 1);
    forward(g, &k, l1);
    bool same = true;
    for (int64_t b = 0; b < B; b++)
        same &= memcmp(l0 + b * T * c.vocab, l1 + b * T * c.vocab,
                       (size_t)(t0 * c.vocab) * sizeof(float)) == 0;
    g_check(g, "later target tokens change earlier logits", same);
    attn_transformer_free(m);
    free(src), free(tin), free(tout), free(lens), free(l0), free(l1);
}

T_TEST(grid_models_transformer) { g_run("grid_models_transformer", 8500000, 0.25, one_model); }
