/* generate.c - decoding with a KV cache: greedy and beam search.
 *
 * Each step feeds one token per beam through the decoder. Self-attention
 * appends the step's keys and values to a per-layer cache
 * [beams, max_len, Hkv*hd] and attends the new query to the cache through
 * attn_sdpa_forward (the core's decode path); cross-attention keys and
 * values are projected from the encoder output once and shared by all
 * beams (batch stride 0). When beams are re-ranked, the caches, tokens and
 * attention rows of the surviving beams are gathered from their parents.
 */
#include "transformer_internal.h"

#include "core/toolkit_kernels.h"

#include <math.h>
#include <string.h>

typedef struct {
    attn_ctx *ctx;
    attn_transformer *m;
    int64_t nb, S_src, hd, kvw, cap_len; /* beams, source length, head dim, Hkv*hd */
    float **kc, **vc;                    /* per layer [nb, cap_len, kvw] self caches */
    float **ck, **cv;                    /* per layer [S_src, kvw] cross keys/values */
    float *x, *h, *y, *q, *o, *a, *lse, *w, *stats; /* per-step scratch */
    float *logits;                       /* [nb, V] */
    float *cross_row;                    /* [nb, S_src] last layer, head mean */
    attn_status st;
} dec;

static void set(dec *g, attn_status st)
{
    if (g->st == ATTN_OK) g->st = st;
}

static float *alloc_f(dec *g, int64_t n)
{
    float *p = n > 0 ? attn_calloc((size_t)n, sizeof(float)) : NULL;
    if (n > 0 && !p) set(g, attn_fail(ATTN_NO_MEMORY, "attn_transformer_generate: out of memory"));
    return p;
}

static void dec_free(dec *g)
{
    int64_t L = g->m->c.n_dec_layers;
    for (int64_t l = 0; l < L; l++) {
        if (g->kc) attn_release(g->kc[l]);
        if (g->vc) attn_release(g->vc[l]);
        if (g->ck) attn_release(g->ck[l]);
        if (g->cv) attn_release(g->cv[l]);
    }
    attn_release(g->kc);
    attn_release(g->vc);
    attn_release(g->ck);
    attn_release(g->cv);
    float *bufs[] = {g->stats, g->x, g->h, g->y, g->q, g->o, g->a, g->lse, g->w, g->logits, g->cross_row};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) attn_release(bufs[i]);
}

static void dec_init(dec *g, const float *mem)
{
    const attn_transformer_config *c = &g->m->c;
    int64_t L = c->n_dec_layers, nb = g->nb, d = c->d_model;
    g->hd = d / c->n_heads;
    g->kvw = c->n_kv_heads * g->hd;
    g->kc = attn_calloc((size_t)L, sizeof(float *));
    g->vc = attn_calloc((size_t)L, sizeof(float *));
    g->ck = attn_calloc((size_t)L, sizeof(float *));
    g->cv = attn_calloc((size_t)L, sizeof(float *));
    if (!g->kc || !g->vc || !g->ck || !g->cv) {
        set(g, attn_fail(ATTN_NO_MEMORY, "attn_transformer_generate: out of memory"));
        return;
    }
    for (int64_t l = 0; l < L && g->st == ATTN_OK; l++) {
        g->kc[l] = alloc_f(g, nb * g->cap_len * g->kvw);
        g->vc[l] = alloc_f(g, nb * g->cap_len * g->kvw);
        if (!mem) continue;
        const float *w, *b;
        int64_t rows, cols;
        g->ck[l] = alloc_f(g, g->S_src * g->kvw);
        g->cv[l] = alloc_f(g, g->S_src * g->kvw);
        for (int i = 1; i <= 2 && g->st == ATTN_OK; i++) {
            attn__nn_mha_proj(&g->m->dec[l].cross, i, &w, &b, &rows, &cols);
            set(g, attn_nn_linear_forward(g->ctx, mem, g->S_src, cols, w, b, rows, i == 1 ? g->ck[l] : g->cv[l]));
        }
    }
    int64_t wide = c->d_ff > d ? c->d_ff : d;
    g->x = alloc_f(g, nb * d);
    g->h = alloc_f(g, nb * d);
    g->y = alloc_f(g, nb * d);
    g->q = alloc_f(g, nb * d);
    g->o = alloc_f(g, nb * d);
    g->a = alloc_f(g, nb * wide);
    g->lse = alloc_f(g, nb * c->n_heads);
    g->stats = alloc_f(g, 2 * nb);
    g->w = alloc_f(g, nb * c->n_heads * (g->S_src > 0 ? g->S_src : 1));
    g->logits = alloc_f(g, nb * c->vocab);
    g->cross_row = alloc_f(g, nb * (g->S_src > 0 ? g->S_src : 1));
}

/* o [nb, H*hd] = attention of q [nb, H*hd] over keys/values with the given
 * batch stride and length; the head-mean weights go to cross_row if asked. */
static void attend(dec *g, const float *k, const float *v, int64_t batch_stride, int64_t len,
                   int want_weights)
{
    const attn_transformer_config *c = &g->m->c;
    int64_t H = c->n_heads, Hk = c->n_kv_heads, nb = g->nb;
    attn_tensor tq = attn_tensor_make(g->q, ATTN_DTYPE_F32, nb, 1, H, g->hd);
    attn_tensor tk = attn_tensor_make((void *)k, ATTN_DTYPE_F32, nb, len, Hk, g->hd);
    attn_tensor tv = attn_tensor_make((void *)v, ATTN_DTYPE_F32, nb, len, Hk, g->hd);
    tk.stride[0] = tv.stride[0] = batch_stride;
    attn_tensor to = attn_tensor_make(g->o, ATTN_DTYPE_F32, nb, 1, H, g->hd);
    attn_tensor tl = attn_tensor_make(g->lse, ATTN_DTYPE_F32, nb, H, 1, 1);
    attn_sdpa_params p = attn_sdpa_params_default();
    set(g, attn_sdpa_forward(g->ctx, &tq, &tk, &tv, &p, &to, &tl));
    if (!want_weights || g->st != ATTN_OK) return;
    attn_tensor tw = attn_tensor_make(g->w, ATTN_DTYPE_F32, nb, H, 1, len);
    set(g, attn_sdpa_weights(g->ctx, &tq, &tk, &tl, &p, NULL, 0, NULL, 0, 0, &tw));
    for (int64_t b = 0; b < nb && g->st == ATTN_OK; b++)
        for (int64_t j = 0; j < len; j++) {
            double acc = 0;
            for (int64_t h = 0; h < H; h++) acc += g->w[(b * H + h) * len + j];
            g->cross_row[b * len + j] = (float)(acc / (double)H);
        }
}

/* y [nb, d] = sublayer f of layer l on h [nb, d], at position t. */
static void f_step(dec *g, int64_t l, int sub, int64_t t, const float *in, float *y)
{
    attn_transformer *m = g->m;
    const attn_transformer_config *c = &m->c;
    attn__nn_block *L = &m->dec[l];
    int64_t nb = g->nb, d = c->d_model;
    if (sub == ATTN__SUB_FFN) {
        set(g, attn_nn_linear_forward(g->ctx, in, nb, d, L->w1, L->b1, c->d_ff, g->a));
        if (g->st == ATTN_OK) set(g, attn_nn_act_forward(c->act, g->a, nb * c->d_ff, g->a));
        if (g->st == ATTN_OK) set(g, attn_nn_linear_forward(g->ctx, g->a, nb, c->d_ff, L->w2, L->b2, d, y));
        return;
    }
    const attn_nn_mha *a = sub == ATTN__SUB_SELF ? &L->self : &L->cross;
    const float *w, *b;
    int64_t rows, cols;
    attn__nn_mha_proj(a, 0, &w, &b, &rows, &cols);
    set(g, attn_nn_linear_forward(g->ctx, in, nb, cols, w, b, rows, g->q));
    if (sub == ATTN__SUB_SELF) {
        int64_t stride = g->cap_len * g->kvw;
        for (int i = 1; i <= 2 && g->st == ATTN_OK; i++) {
            attn__nn_mha_proj(a, i, &w, &b, &rows, &cols);
            /* the new key/value row of each beam goes to cache position t */
            float *dst = (i == 1 ? g->kc[l] : g->vc[l]) + t * g->kvw;
            set(g, attn_nn_linear_forward(g->ctx, in, nb, cols, w, b, rows, g->a));
            for (int64_t bb = 0; bb < nb; bb++)
                memcpy(dst + bb * stride, g->a + bb * g->kvw, (size_t)g->kvw * sizeof(float));
        }
        if (attn__nn_rope(m) && g->st == ATTN_OK) {
            int32_t pos = (int32_t)t;
            for (int64_t bb = 0; bb < nb && g->st == ATTN_OK; bb++) {
                float *kr = g->kc[l] + bb * stride + t * g->kvw;
                set(g, attn_nn_rope_forward(g->q + bb * rows, 1, c->n_heads, g->hd, &pos,
                                            c->rope_theta, g->q + bb * rows));
                set(g, attn_nn_rope_forward(kr, 1, c->n_kv_heads, g->hd, &pos, c->rope_theta, kr));
            }
        }
        if (g->st == ATTN_OK) attend(g, g->kc[l], g->vc[l], stride, t + 1, 0);
    } else if (g->st == ATTN_OK) {
        attend(g, g->ck[l], g->cv[l], 0, g->S_src, l == c->n_dec_layers - 1);
    }
    if (g->st == ATTN_OK)
        set(g, attn_nn_linear_forward(g->ctx, g->o, nb, c->n_heads * g->hd, a->out_proj_weight,
                                      a->out_proj_bias, d, y));
}

/* logits [nb, V] for tokens tok [nb] at position t. */
static void step(dec *g, const int32_t *tok, int64_t t)
{
    attn_transformer *m = g->m;
    const attn_transformer_config *c = &m->c;
    int64_t nb = g->nb, d = c->d_model;
    int32_t pos[64];
    const float *table = c->pos == ATTN_NN_POS_SINUSOIDAL ? m->sinusoid
                         : c->pos == ATTN_NN_POS_LEARNED  ? m->dec_pos
                                                          : NULL;
    for (int64_t b = 0; b < nb; b++) pos[b] = (int32_t)t;
    set(g, attn__nn_embed(m, tok, pos, nb, table, g->x));
    for (int64_t l = 0; l < c->n_dec_layers && g->st == ATTN_OK; l++) {
        attn__nn_block *L = &m->dec[l];
        int n = L->has_cross ? 3 : 2;
        for (int i = 0; i < n && g->st == ATTN_OK; i++) {
            int sub = i == 0 ? ATTN__SUB_SELF : (L->has_cross && i == 1) ? ATTN__SUB_CROSS
                                                                          : ATTN__SUB_FFN;
            attn__nn_norm *nrm = &L->norm[sub == ATTN__SUB_FFN ? n - 1 : sub];
            if (c->norm_first) {
                set(g, attn__nn_norm_forward(m, nrm, g->x, nb, g->h, g->stats, g->stats + nb));
                if (g->st == ATTN_OK) f_step(g, l, sub, t, g->h, g->y);
                for (int64_t e = 0; e < nb * d; e++) g->x[e] += g->y[e];
            } else {
                f_step(g, l, sub, t, g->x, g->y);
                for (int64_t e = 0; e < nb * d; e++) g->h[e] = g->x[e] + g->y[e];
                if (g->st == ATTN_OK)
                    set(g, attn__nn_norm_forward(m, nrm, g->h, nb, g->x, g->stats, g->stats + nb));
            }
        }
    }
    if (g->st == ATTN_OK) set(g, attn__nn_norm_forward(m, &m->dec_norm, g->x, nb, g->h, g->stats, g->stats + nb));
    if (g->st == ATTN_OK)
        set(g, attn_nn_linear_forward(g->ctx, g->h, nb, d, m->lm_head, NULL, c->vocab, g->logits));
}

/* ---- beam search ---------------------------------------------------------------------- */

typedef struct {
    double score;
    int64_t parent;
    int32_t token;
} cand;

/* Keeps the k best candidates in c[0..*n), best first. */
static void offer(cand *c, int64_t *n, int64_t k, cand x)
{
    if (*n == k && !(x.score > c[k - 1].score)) return;
    int64_t i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && c[i - 1].score < x.score) {
        c[i] = c[i - 1];
        i--;
    }
    c[i] = x;
}

typedef struct {
    int64_t nb, T, S; /* beams, longest output, source length (attention rows) */
    int32_t *tok;     /* [nb, T] */
    float *att;       /* [nb, T, S] */
    double *score;    /* [nb] */
    int64_t n_live, len;
    /* the best finished hypothesis */
    int32_t *best_tok;
    float *best_att;
    int64_t best_len;
    double best_score;
    int64_t n_finished;
} beams;

static void finish(beams *B, int64_t b, double score, double alpha)
{
    double norm = score / pow((double)(B->len + 1), alpha);
    B->n_finished++;
    if (B->best_len >= 0 && !(norm > B->best_score)) return;
    B->best_score = norm;
    B->best_len = B->len;
    memcpy(B->best_tok, B->tok + b * B->T, (size_t)B->len * sizeof(int32_t));
    if (B->att) memcpy(B->best_att, B->att + b * B->T * B->S, (size_t)(B->len * B->S) * sizeof(float));
}

/* Gathers the rows [0, upto) of each layer's self cache from the parents. */
static void gather_caches(dec *g, const cand *c, int64_t n, int64_t upto, float *tmp)
{
    int64_t stride = g->cap_len * g->kvw, bytes = upto * g->kvw * (int64_t)sizeof(float);
    for (int64_t l = 0; l < g->m->c.n_dec_layers; l++)
        for (int kv = 0; kv < 2; kv++) {
            float *cache = kv ? g->vc[l] : g->kc[l];
            for (int64_t i = 0; i < n; i++)
                memcpy(tmp + i * stride, cache + c[i].parent * stride, (size_t)bytes);
            for (int64_t i = 0; i < n; i++)
                memcpy(cache + i * stride, tmp + i * stride, (size_t)bytes);
        }
}

/* One step's ranking: the surviving beams (from cands) and finished ones. */
static void advance(dec *g, beams *B, const attn_nn_gen_opts *o, int32_t *cur, float *tmp,
                    cand *cands, int64_t t_next)
{
    int64_t V = g->m->c.vocab, nb = B->nb, k = 2 * nb, n = 0;
    for (int64_t b = 0; b < B->n_live; b++) {
        const float *lg = g->logits + b * V;
        double lz = attn__ctx_toolkit(g->ctx)->softmax_row(lg, V);
        for (int64_t v = 0; v < V; v++)
            offer(cands, &n, k, (cand){B->score[b] + (double)lg[v] - lz, b, (int32_t)v});
    }
    cand *next = cands + k;
    int64_t n_next = 0;
    for (int64_t i = 0; i < n; i++) {
        if (cands[i].token == o->eos_id) {
            /* an ending counts only if it ranks among the beam's best */
            if (i < nb) finish(B, cands[i].parent, cands[i].score, o->length_penalty);
        } else if (n_next < nb) {
            next[n_next++] = cands[i];
        }
    }
    /* histories of the survivors, gathered from their parents */
    int32_t *tok2 = (int32_t *)(void *)tmp;
    for (int64_t i = 0; i < n_next; i++)
        memcpy(tok2 + i * B->T, B->tok + next[i].parent * B->T, (size_t)B->len * sizeof(int32_t));
    for (int64_t i = 0; i < n_next; i++) {
        memcpy(B->tok + i * B->T, tok2 + i * B->T, (size_t)B->len * sizeof(int32_t));
        B->tok[i * B->T + B->len] = next[i].token;
    }
    if (B->att) {
        int64_t rowlen = B->T * B->S;
        for (int64_t i = 0; i < n_next; i++) {
            memcpy(tmp + i * rowlen, B->att + next[i].parent * rowlen,
                   (size_t)(B->len * B->S) * sizeof(float));
            memcpy(tmp + i * rowlen + B->len * B->S, g->cross_row + next[i].parent * B->S,
                   (size_t)B->S * sizeof(float));
        }
        memcpy(B->att, tmp, (size_t)(n_next * rowlen) * sizeof(float));
    }
    gather_caches(g, next, n_next, t_next, tmp);
    for (int64_t i = 0; i < n_next; i++) {
        B->score[i] = next[i].score;
        cur[i] = next[i].token;
    }
    B->n_live = n_next;
    B->len++;
}

static attn_status check_args(const attn_transformer *m, const int32_t *src, int64_t src_len,
                              const attn_nn_gen_opts *o, const int32_t *out, int64_t cap,
                              const int64_t *n_out)
{
    if (!m || !o || !out || !n_out || (src_len > 0 && !src))
        return attn_fail(ATTN_NULL_ARG, "attn_transformer_generate: 'm', 'src', 'opts', 'out' and 'n_out' "
                                        "must not be NULL");
    const attn_transformer_config *c = &m->c;
    if (o->beam < 1 || o->beam > 16)
        return attn_fail(ATTN_BAD_PARAM, "attn_transformer_generate: 'beam' %lld is outside [1, 16]",
                         (long long)o->beam);
    if (o->max_new < 1 || cap < o->max_new)
        return attn_fail(ATTN_BAD_DIM, "attn_transformer_generate: 'max_new' must be >= 1 and 'cap' >= "
                                       "max_new");
    if (!isfinite(o->length_penalty) || o->length_penalty < 0)
        return attn_fail(ATTN_BAD_PARAM, "attn_transformer_generate: 'length_penalty' must be finite, >= 0");
    if (o->bos_id < 0 || o->bos_id >= c->vocab || o->eos_id < 0 || o->eos_id >= c->vocab)
        return attn_fail(ATTN_BAD_PARAM, "attn_transformer_generate: 'bos_id' or 'eos_id' is not a token");
    int64_t need = c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? 1 + o->max_new : src_len + o->max_new;
    if (src_len < (c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC) || src_len > c->max_len || need > c->max_len + 1)
        return attn_fail(ATTN_BAD_DIM, "attn_transformer_generate: 'src_len' %lld and 'max_new' %lld do "
                         "not fit 'max_len' %lld", (long long)src_len, (long long)o->max_new,
                         (long long)c->max_len);
    for (int64_t i = 0; i < src_len; i++)
        if (src[i] < 0 || src[i] >= c->vocab)
            return attn_fail(ATTN_BAD_PARAM, "attn_transformer_generate: 'src[%lld]' = %d is not a token",
                             (long long)i, (int)src[i]);
    return ATTN_OK;
}

attn_status attn_transformer_generate(attn_ctx *ctx, attn_transformer *m, const int32_t *src, int64_t src_len,
                             const attn_nn_gen_opts *o, int32_t *out, int64_t cap, int64_t *n_out,
                             float *cross_attn)
{
    attn_status st = check_args(m, src, src_len, o, out, cap, n_out);
    if (st != ATTN_OK) return st;
    if (!ctx) return attn_fail(ATTN_NULL_ARG, "attn_transformer_generate: 'ctx' is NULL");
    const attn_transformer_config *c = &m->c;
    int enc = c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC;
    dec g;
    memset(&g, 0, sizeof g);
    g.ctx = ctx;
    g.m = m;
    g.nb = o->beam;
    g.S_src = enc ? src_len : 0;
    /* positions: ENCDEC 0 (BOS) .. max_new-1; DECODER prompt then new tokens */
    int64_t first = enc ? 0 : (src_len > 0 ? src_len - 1 : 0);
    g.cap_len = first + o->max_new < c->max_len ? first + o->max_new : c->max_len;
    float *mem = enc ? attn_calloc((size_t)(src_len * c->d_model), sizeof(float)) : NULL;
    if (enc && !mem) return attn_fail(ATTN_NO_MEMORY, "attn_transformer_generate: out of memory");
    if (enc) set(&g, attn__nn_encode(ctx, m, src, src_len, mem));
    if (g.st == ATTN_OK) dec_init(&g, mem);
    attn_release(mem);

    beams B;
    memset(&B, 0, sizeof B);
    B.nb = g.nb;
    B.T = o->max_new;
    B.S = cross_attn && enc ? src_len : 0;
    B.best_len = -1;
    int64_t tmp_n = g.nb * g.cap_len * g.kvw;
    if (g.nb * B.T * (B.S + 1) > tmp_n) tmp_n = g.nb * B.T * (B.S + 1);
    float *tmp = alloc_f(&g, tmp_n);
    B.tok = attn_calloc((size_t)(g.nb * B.T), sizeof(int32_t));
    B.best_tok = attn_calloc((size_t)B.T, sizeof(int32_t));
    B.score = attn_calloc((size_t)g.nb, sizeof(double));
    B.att = B.S ? alloc_f(&g, g.nb * B.T * B.S) : NULL;
    B.best_att = B.S ? alloc_f(&g, B.T * B.S) : NULL;
    cand *cands = attn_calloc((size_t)(3 * g.nb), sizeof(cand));
    int32_t cur[16];
    if (!B.tok || !B.best_tok || !B.score || !cands)
        set(&g, attn_fail(ATTN_NO_MEMORY, "attn_transformer_generate: out of memory"));

    /* DECODER: run the prompt through the cache, all beams alike */
    for (int64_t t = 0; t < first && g.st == ATTN_OK; t++) {
        for (int64_t b = 0; b < g.nb; b++) cur[b] = src[t];
        step(&g, cur, t);
    }
    for (int64_t b = 0; b < g.nb; b++) cur[b] = enc || src_len == 0 ? o->bos_id : src[src_len - 1];
    B.n_live = 1;
    for (int64_t t = first; g.st == ATTN_OK && B.n_live > 0 && B.n_finished < g.nb &&
                            B.len < o->max_new;
         t++) {
        step(&g, cur, t);
        if (g.st == ATTN_OK) advance(&g, &B, o, cur, tmp, cands, t + 1);
    }
    /* nothing finished within max_new: the best live beam stands */
    if (g.st == ATTN_OK && B.best_len < 0 && B.n_live > 0)
        finish(&B, 0, B.score[0], o->length_penalty);
    if (g.st == ATTN_OK) {
        memcpy(out, B.best_tok, (size_t)B.best_len * sizeof(int32_t));
        if (B.S) memcpy(cross_attn, B.best_att, (size_t)(B.best_len * B.S) * sizeof(float));
        *n_out = B.best_len;
    }
    attn_release(tmp);
    attn_release(B.tok);
    attn_release(B.best_tok);
    attn_release(B.score);
    attn_release(B.att);
    attn_release(B.best_att);
    attn_release(cands);
    dec_free(&g);
    return g.st;
}
