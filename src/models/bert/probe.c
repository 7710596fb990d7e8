/* probe.c - the backward pass of a BERT encoder for explanations
 * (attn_bert_attention_probe in attn/bert.h): one sequence of T tokens
 * through the toolkit's layers (attn/nn.h), keeping per layer what backward
 * needs, then from dL/d emb back through pooling and every layer, handing
 * each attention call (with the gradient at its output) to a hook.
 *
 * Per layer, H = hidden, F = intermediate, nh heads:
 *   qkv [T, 3H] = x_in Wqkv^T + bqkv      o [T, H], lse [nh, T] = attention
 *   y1  [T, H]  = x_in + o Wo^T + bo      x1 = LayerNorm(y1)
 *   h   [T, F]  = x1 Wi^T + bi            y2 = x1 + GELU(h) Wo2^T + bo2
 *   x_out       = LayerNorm(y2)           (the next layer's x_in)
 * No T x T buffer is kept: the attention weights are recomputed from the
 * LSE by whoever reads them (attn_nn_attn_probe_weights). */
#include "models/bert/bert_internal.h"

#include <string.h>

/* What backward needs of one layer (pointers into one block). */
typedef struct {
    float *x_in, *qkv, *o, *lse, *y1, *st1, *x1, *h, *y2, *st2; /* st: mean [T], rstd [T] */
} saved;

typedef struct {
    attn_ctx *ctx;
    const attn_bert *m;
    int64_t T, H, F, nh;
    saved *s;     /* [n_layers] */
    float *x_out; /* [T, H] the last layer's output */
    float *g;     /* [T, F] GELU(h), scratch */
    float *dx, *dy, *dt, *d_o, *dq, *dk, *dv; /* [T, H] each */
    float *dg, *dh;                           /* [T, F] each */
    float *block;
} probe_run;

static attn_status alloc_run(probe_run *r)
{
    int64_t T = r->T, H = r->H, F = r->F, L = r->m->c.n_layers;
    int64_t per = T * (8 * H + F) + r->nh * T + 4 * T, fixed = T * (8 * H + 3 * F), all;
    ATTN__MUL("attn_bert_attention_probe", per, L, &all);
    r->s = attn_calloc((size_t)L, sizeof(saved));
    r->block = all <= ATTN__MAX_ELEMS - fixed ? attn_alloc((size_t)(all + fixed) * sizeof(float))
                                                 : NULL;
    if (r->s == NULL || r->block == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_bert_attention_probe: no memory for %lld saved "
                         "floats", (long long)(per * L + fixed));
    float *p = r->block;
    for (int64_t l = 0; l < L; l++) {
        saved *s = &r->s[l];
        float **seq[] = {&s->x_in, &s->qkv, &s->o, &s->lse, &s->y1, &s->st1, &s->x1, &s->h,
                         &s->y2, &s->st2};
        int64_t sizes[] = {T * H, 3 * T * H, T * H, r->nh * T, T * H, 2 * T, T * H, T * F,
                           T * H, 2 * T};
        for (int k = 0; k < 10; k++) {
            *seq[k] = p;
            p += sizes[k];
        }
    }
    float **tmp[] = {&r->x_out, &r->dx, &r->dy, &r->dt, &r->d_o, &r->dq, &r->dk, &r->dv};
    for (int k = 0; k < 8; k++) {
        *tmp[k] = p;
        p += T * H;
    }
    r->g = p;
    r->dg = p + T * F;
    r->dh = p + 2 * T * F;
    return ATTN_OK;
}

/* Views [1, T, nh, hd] of q, k, v in qkv and of an attention output. */
static attn_tensor view(const probe_run *r, const float *p, int64_t row)
{
    return attn__bert_seq_view(p, 1, r->T, r->nh, r->H / r->nh, row);
}

/* y [T, d] += x [T, d] */
static void add(float *y, const float *x, int64_t n)
{
    for (int64_t e = 0; e < n; e++) y[e] += x[e];
}

static attn_status layer_forward(probe_run *r, int64_t l)
{
    const bert_layer *L = &r->m->layers[l];
    saved *s = &r->s[l];
    int64_t T = r->T, H = r->H, F = r->F;
    double eps = r->m->c.layer_norm_eps;
    float *out = l + 1 < r->m->c.n_layers ? r->s[l + 1].x_in : r->x_out;
    attn_tensor q = view(r, s->qkv, 3 * H), k = view(r, s->qkv + H, 3 * H);
    attn_tensor v = view(r, s->qkv + 2 * H, 3 * H), o = view(r, s->o, H);
    attn_tensor lse = attn_tensor_make(s->lse, ATTN_DTYPE_F32, 1, r->nh, T, 1);
    attn_status st = attn_nn_linear_forward(r->ctx, s->x_in, T, H, L->wqkv, L->bqkv, 3 * H, s->qkv);
    if (st == ATTN_OK) st = attn_sdpa_forward(r->ctx, &q, &k, &v, NULL, &o, &lse);
    if (st == ATTN_OK) st = attn_nn_linear_forward(r->ctx, s->o, T, H, L->wo, L->bo, H, s->y1);
    if (st != ATTN_OK) return st;
    add(s->y1, s->x_in, T * H);
    st = attn_nn_layernorm_forward(s->y1, T, H, L->ln1_w, L->ln1_b, eps, s->x1, s->st1, s->st1 + T);
    if (st == ATTN_OK) st = attn_nn_linear_forward(r->ctx, s->x1, T, H, L->wi, L->bi, F, s->h);
    if (st == ATTN_OK) st = attn_nn_act_forward(ATTN_NN_ACT_GELU, s->h, T * F, r->g);
    if (st == ATTN_OK) st = attn_nn_linear_forward(r->ctx, r->g, T, F, L->wo2, L->bo2, H, s->y2);
    if (st != ATTN_OK) return st;
    add(s->y2, s->x1, T * H);
    return attn_nn_layernorm_forward(s->y2, T, H, L->ln2_w, L->ln2_b, eps, out, s->st2, s->st2 + T);
}

/* The embeddings of ids into the first layer's input, then every layer. */
static attn_status forward(probe_run *r, const int32_t *ids)
{
    const attn_bert *m = r->m;
    int64_t H = r->H;
    float *x = r->dt; /* the sum before the embeddings' LayerNorm */
    for (int64_t t = 0; t < r->T; t++)
        for (int64_t i = 0; i < H; i++)
            x[t * H + i] = m->word[(int64_t)ids[t] * H + i] + m->type[i] + m->pos[t * H + i];
    attn_status st = attn_nn_layernorm_forward(x, r->T, H, m->emb_ln_w, m->emb_ln_b,
                                               m->c.layer_norm_eps, r->s[0].x_in, NULL, NULL);
    for (int64_t l = 0; st == ATTN_OK && l < m->c.n_layers; l++) st = layer_forward(r, l);
    return st;
}

static void zero(float *p, int64_t n)
{
    memset(p, 0, (size_t)n * sizeof(float));
}

/* From r->dx = dL/d x_out of layer l: r->d_o = dL/d o (the attention
 * output) and r->dx = dL/d x_in without the path through q, k, v. */
static attn_status through_dense(probe_run *r, int64_t l)
{
    const bert_layer *L = &r->m->layers[l];
    const saved *s = &r->s[l];
    int64_t T = r->T, H = r->H, F = r->F;
    zero(r->dy, T * H); /* dy = dL/d y2 */
    attn_status st = attn_nn_layernorm_backward(s->y2, T, H, L->ln2_w, s->st2, s->st2 + T, r->dx,
                                                r->dy, NULL, NULL);
    if (st == ATTN_OK) st = attn_nn_act_forward(ATTN_NN_ACT_GELU, s->h, T * F, r->g);
    zero(r->dg, T * F);
    zero(r->dh, T * F);
    if (st == ATTN_OK)
        st = attn_nn_linear_backward(r->ctx, r->g, T, F, L->wo2, H, r->dy, r->dg, NULL, NULL);
    if (st == ATTN_OK) st = attn_nn_act_backward(ATTN_NN_ACT_GELU, s->h, T * F, r->dg, r->dh);
    memcpy(r->dt, r->dy, (size_t)(T * H) * sizeof(float)); /* dt = dL/d x1: the residual */
    if (st == ATTN_OK) st = attn_nn_linear_backward(r->ctx, s->x1, T, H, L->wi, F, r->dh, r->dt, NULL, NULL);
    zero(r->dx, T * H); /* dx = dL/d y1 = dL/d x_in through the residual */
    if (st == ATTN_OK)
        st = attn_nn_layernorm_backward(s->y1, T, H, L->ln1_w, s->st1, s->st1 + T, r->dt, r->dx,
                                        NULL, NULL);
    zero(r->d_o, T * H);
    if (st == ATTN_OK) st = attn_nn_linear_backward(r->ctx, s->o, T, H, L->wo, H, r->dx, r->d_o, NULL, NULL);
    return st;
}

/* r->dx += the path of layer l's input through q, k and v. */
static attn_status through_attention(probe_run *r, int64_t l)
{
    const bert_layer *L = &r->m->layers[l];
    const saved *s = &r->s[l];
    int64_t T = r->T, H = r->H;
    attn_tensor q = view(r, s->qkv, 3 * H), k = view(r, s->qkv + H, 3 * H);
    attn_tensor v = view(r, s->qkv + 2 * H, 3 * H), o = view(r, s->o, H);
    attn_tensor d_o = view(r, r->d_o, H), dq = view(r, r->dq, H), dk = view(r, r->dk, H);
    attn_tensor dv = view(r, r->dv, H);
    attn_tensor lse = attn_tensor_make(s->lse, ATTN_DTYPE_F32, 1, r->nh, T, 1);
    attn_status st = attn_sdpa_backward(r->ctx, &q, &k, &v, &o, &d_o, &lse, NULL, &dq, &dk, &dv, NULL);
    const float *grads[3] = {r->dq, r->dk, r->dv};
    for (int i = 0; st == ATTN_OK && i < 3; i++) /* Wqkv rows: query, key, value blocks */
        st = attn_nn_linear_backward(r->ctx, s->x_in, T, H, L->wqkv + i * H * H, H, grads[i], r->dx, NULL,
                                     NULL);
    return st;
}

static attn_status backward(probe_run *r, attn_nn_attn_hook hook, void *user)
{
    int64_t H = r->H;
    attn_status st = ATTN_OK;
    for (int64_t l = r->m->c.n_layers - 1; st == ATTN_OK && l >= 0; l--) {
        saved *s = &r->s[l];
        if ((st = through_dense(r, l)) != ATTN_OK) break;
        attn_sdpa_params params = attn_sdpa_params_default();
        attn_nn_attn_probe p = {0, l, 0, view(r, s->qkv, 3 * H), view(r, s->qkv + H, 3 * H),
                                view(r, s->qkv + 2 * H, 3 * H),
                                attn_tensor_make(s->lse, ATTN_DTYPE_F32, 1, r->nh, r->T, 1),
                                view(r, r->d_o, H), &params, NULL, 0};
        st = hook(r->ctx, &p, user);
        if (st == ATTN_OK && l > 0) st = through_attention(r, l);
    }
    return st;
}

/* r->dx = dL/d x_out from d_emb, and e [H] = the embedding: e = u / |u|,
 * u = mean_t x_t (mean [H]), so dL/du = (d_emb - e (e . d_emb)) / |u| and
 * each row gets 1/T of it. */
static void from_embedding(probe_run *r, const float *d_emb, double *mean, float *e)
{
    int64_t T = r->T, H = r->H;
    double norm = attn__bert_pool_normalize(r->x_out, T, H, mean, e), dot = 0;
    for (int64_t i = 0; i < H; i++) dot += (double)e[i] * d_emb[i];
    for (int64_t i = 0; i < H; i++) {
        float du = (float)(((double)d_emb[i] - e[i] * dot) / norm / (double)T);
        for (int64_t t = 0; t < T; t++) r->dx[t * H + i] = du;
    }
}

attn_status attn_bert_attention_probe(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                                      int64_t len, const float *d_emb, attn_nn_attn_hook hook,
                                      void *user, float *emb)
{
    int64_t total = 0;
    ATTN__DIM_POS(__func__, len);
    attn_status st = attn__bert_check_batch(__func__, ctx, m, ids, &len, 1, len, &total);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, d_emb);
    ATTN__NOT_NULL(__func__, hook);
    probe_run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.m = m;
    r.T = len;
    r.H = m->c.hidden_size;
    r.F = m->c.intermediate_size;
    r.nh = m->c.n_heads;
    double *mean = attn_alloc((size_t)r.H * (sizeof(double) + sizeof(float)));
    float *e = (float *)(void *)(mean + r.H); /* [H] after the mean [H] */
    st = mean ? alloc_run(&r) : attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    if (st == ATTN_OK) st = forward(&r, ids);
    if (st == ATTN_OK) from_embedding(&r, d_emb, mean, e);
    if (st == ATTN_OK) st = backward(&r, hook, user);
    if (st == ATTN_OK && emb) memcpy(emb, e, (size_t)r.H * sizeof(float));
    attn_release(mean);
    attn_release(r.block);
    attn_release(r.s);
    return st;
}
