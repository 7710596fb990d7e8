/* step.c - one training (or evaluation) step of a transformer: forward,
 * loss and backward, with optional gradient checkpointing; and the norm and
 * embedding helpers that decoding (generate.c) shares.
 *
 * A block is a list of sublayers (self-attention, cross-attention,
 * feed-forward), each wrapped in a residual and a norm:
 *   pre-norm  (norm_first): x = x + drop(f(norm(x)))
 *   post-norm:              x = norm(x + drop(f(x)))
 * as torch.nn.TransformerEncoderLayer / DecoderLayer. Every dropout mask is
 * a pure function of (seed, site, element), so a block recomputed in
 * backward (checkpointing) sees exactly the masks of its forward.
 *
 * Rows: N = B * S (one row per token) for a padded batch; for a packed
 * batch (batch->cu_seqlens_*) N is the number of real tokens, the
 * sequences back to back, and every attention call is one packed call of
 * the core (B = 1, the offsets in its options): the linear layers, norms
 * and the loss then run on real tokens only. d = d_model, ff = d_ff. */
#include "transformer_internal.h"

#include <math.h>
#include <string.h>

/* ---- norms and embeddings, shared with generate.c ------------------------------- */

attn_status attn__nn_norm_forward(const attn_transformer *m, const attn__nn_norm *n,
                                  const float *x, int64_t rows, float *y, float *mean,
                                  float *rstd)
{
    if (m->c.norm == ATTN_NN_NORM_RMSNORM)
        return attn_nn_rmsnorm_forward(x, rows, m->c.d_model, n->w, m->c.norm_eps, y, rstd);
    return attn_nn_layernorm_forward(x, rows, m->c.d_model, n->w, n->b, m->c.norm_eps, y, mean,
                                     rstd);
}

attn_status attn__nn_norm_backward(const attn_transformer *m, const attn__nn_norm *n,
                                   const float *x, int64_t rows, const float *mean,
                                   const float *rstd, const float *dy, float *dx)
{
    if (m->c.norm == ATTN_NN_NORM_RMSNORM)
        return attn_nn_rmsnorm_backward(x, rows, m->c.d_model, n->w, rstd, dy, dx, n->dw);
    return attn_nn_layernorm_backward(x, rows, m->c.d_model, n->w, mean, rstd, dy, dx, n->dw,
                                      n->db);
}

attn_status attn__nn_embed(const attn_transformer *m, const int32_t *ids, const int32_t *pos,
                           int64_t rows, const float *pos_table, float *x)
{
    int64_t d = m->c.d_model;
    attn_status st = attn_nn_embedding_forward(ids, rows, m->embed, m->c.vocab, d, x);
    if (st != ATTN_OK) return st;
    float scale = (float)sqrt((double)d);
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * d;
        if (pos[r] < 0 || pos[r] >= m->c.max_len)
            return attn_fail(ATTN_BAD_DIM, "model: position %d is beyond 'max_len' %lld",
                             (int)pos[r], (long long)m->c.max_len);
        const float *pr = pos_table ? pos_table + (int64_t)pos[r] * d : NULL;
        for (int64_t i = 0; i < d; i++) xr[i] = xr[i] * scale + (pr ? pr[i] : 0.0f);
    }
    return ATTN_OK;
}

/* Saved activations of one sublayer. */
typedef struct {
    float *x;           /* [N, d] sublayer input */
    float *h;           /* [N, d] pre-norm: norm(x); post-norm: x + drop(f(x)) */
    float *mean, *rstd; /* [N] statistics of the norm */
    attn_nn_mha_saved a;
    float *ff_a, *ff_u; /* [N, ff] linear1 output; drop(act(ff_a)) */
} sub_save;

typedef struct {
    float *x_in; /* [N, d] block input (all checkpointing keeps) */
    sub_save s[3];
} block_save;

/* One sequence stream through a stack of blocks. */
typedef struct {
    int64_t S;                /* padded: row width; packed: N */
    int64_t N;                /* rows */
    int causal;
    const int64_t *self_lens; /* key lengths for self-attention, or NULL */
    const int64_t *cu;        /* [B + 1] packed offsets, or NULL (padded) */
    const int32_t *pos;       /* [N] positions */
    uint64_t site0;           /* first dropout site of this stack */
} stream;

typedef struct {
    attn_ctx *ctx;
    attn_transformer *m;
    const attn_nn_train_opts *o;
    int64_t B;
    double p_drop, p_attn; /* 0 when not training */
    int grads;             /* backward follows: keep activations */
    size_t bytes, peak;    /* saved activations, now and at most */
    const float *mem;      /* [N_mem, d] encoder output (cross-attention) */
    float *d_mem;
    int64_t S_mem, N_mem;
    const int64_t *mem_lens;
    const int64_t *mem_cu; /* packed source offsets, or NULL */
    attn_nn_attn_hook hook; /* the probe of attention calls in backward, or NULL */
    void *hook_user;
    int stack;     /* the stack (0 encoder, 1 decoder) and */
    int64_t layer; /* the block that backward is in */
    attn_status st;
} run;

/* ---- activation memory, counted -------------------------------------------------- */

static float *act_alloc(run *r, int64_t n, int zero)
{
    if (r->st != ATTN_OK) return NULL;
    size_t bytes = (size_t)n * sizeof(float) + 16;
    unsigned char *p = zero ? attn_calloc(1, bytes) : attn_alloc(bytes);
    if (!p) {
        r->st = attn_fail(ATTN_NO_MEMORY, "attn_transformer_step: out of memory (%zu bytes)", bytes);
        return NULL;
    }
    memcpy(p, &bytes, sizeof bytes);
    r->bytes += bytes;
    if (r->bytes > r->peak) r->peak = r->bytes;
    return (float *)(void *)(p + 16);
}

static void act_free(run *r, float *f)
{
    if (!f) return;
    unsigned char *p = (unsigned char *)f - 16;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    r->bytes -= bytes;
    attn_release(p);
}

static size_t mha_bytes(const attn_nn_mha *a, const attn_nn_mha_saved *s)
{
    int64_t nq = s->B * s->Sq * a->n_heads * a->head_dim;
    int64_t nk = s->B * s->Sk * a->n_kv_heads * a->head_dim;
    return (size_t)(2 * nq + 2 * nk + s->B * a->n_heads * s->Sq) * sizeof(float);
}

static void sub_free(run *r, const attn_nn_mha *a, sub_save *sv)
{
    act_free(r, sv->x);
    act_free(r, sv->h);
    act_free(r, sv->mean);
    act_free(r, sv->rstd);
    act_free(r, sv->ff_a);
    act_free(r, sv->ff_u);
    if (sv->a.q) r->bytes -= mha_bytes(a, &sv->a);
    attn_nn_mha_saved_free(&sv->a);
    memset(sv, 0, sizeof *sv);
}

static void set(run *r, attn_status st)
{
    if (r->st == ATTN_OK) r->st = st;
}

/* ---- one sublayer ------------------------------------------------------------------ */

/* Dropout streams: residual, inner feed-forward, attention weights. */
static uint64_t off_resid(uint64_t site) { return site << 42; }
static uint64_t off_inner(uint64_t site) { return (site << 42) + (1ull << 41); }
static uint64_t attn_seed(uint64_t seed) { return seed ^ 0x5DEECE66Dull; }

static const attn_nn_mha *sub_mha(const attn__nn_block *L, int sub)
{
    return sub == ATTN__SUB_CROSS ? &L->cross : &L->self;
}

static attn__nn_norm *sub_norm(attn__nn_block *L, int sub)
{
    return &L->norm[sub == ATTN__SUB_FFN ? (L->has_cross ? 2 : 1) : sub];
}

static attn_nn_mha_opts mha_opts(const run *r, const stream *s, int sub, uint64_t site)
{
    attn_nn_mha_opts o;
    memset(&o, 0, sizeof o);
    o.dropout_p = r->p_attn;
    o.seed = attn_seed(r->o->seed);
    o.offset = site;
    if (sub == ATTN__SUB_SELF) {
        o.causal = s->causal;
        o.k_lens = s->cu ? NULL : s->self_lens;
        if (attn__nn_rope(r->m)) {
            o.rope_pos = s->pos;
            o.rope_theta = r->m->c.rope_theta;
        }
    } else {
        o.k_lens = s->cu ? NULL : r->mem_lens;
    }
    if (s->cu) { /* one packed call: sequence b's queries against its own keys */
        o.n_seqs = r->B;
        o.cu_seqlens_q = s->cu;
        o.cu_seqlens_k = sub == ATTN__SUB_SELF ? s->cu : r->mem_cu;
    }
    return o;
}

/* The attention call's batch, query and key rows: (B, S, S_keys) padded,
 * (1, N, N_keys) packed. */
static void mha_dims(const run *r, const stream *s, int sub, int64_t *B, int64_t *Sq, int64_t *Sk)
{
    *B = s->cu ? 1 : r->B;
    *Sq = s->cu ? s->N : s->S;
    *Sk = sub == ATTN__SUB_SELF ? *Sq : s->cu ? r->N_mem : r->S_mem;
}

/* y [N, d] = f(in) for sublayer sub, saving into sv. */
static void f_forward(run *r, attn__nn_block *L, int sub, const stream *s, uint64_t site,
                      const float *in, float *y, sub_save *sv)
{
    const attn_transformer_config *c = &r->m->c;
    int64_t N = s->N;
    if (sub == ATTN__SUB_FFN) {
        sv->ff_a = act_alloc(r, N * c->d_ff, 0);
        sv->ff_u = act_alloc(r, N * c->d_ff, 0);
        if (r->st != ATTN_OK) return;
        set(r, attn_nn_linear_forward(r->ctx, in, N, c->d_model, L->w1, L->b1, c->d_ff, sv->ff_a));
        if (r->st == ATTN_OK) set(r, attn_nn_act_forward(c->act, sv->ff_a, N * c->d_ff, sv->ff_u));
        if (r->st == ATTN_OK)
            set(r, attn_nn_dropout_forward(sv->ff_u, N * c->d_ff, r->p_drop, r->o->seed,
                                           off_inner(site), sv->ff_u));
        if (r->st == ATTN_OK)
            set(r, attn_nn_linear_forward(r->ctx, sv->ff_u, N, c->d_ff, L->w2, L->b2, c->d_model, y));
        return;
    }
    attn_nn_mha_opts o = mha_opts(r, s, sub, site);
    const float *kv = sub == ATTN__SUB_SELF ? in : r->mem;
    int64_t B, Sq, Sk;
    mha_dims(r, s, sub, &B, &Sq, &Sk);
    set(r, attn_nn_mha_forward(r->ctx, sub_mha(L, sub), in, kv, B, Sq, Sk, &o, y, NULL, 0, &sv->a));
    if (r->st == ATTN_OK) {
        r->bytes += mha_bytes(sub_mha(L, sub), &sv->a);
        if (r->bytes > r->peak) r->peak = r->bytes;
    }
}

/* Hands the attention core of sublayer sub to r->hook: its saved q, k, v
 * and LSE and d_o [N, H*hd] = dy W_out, the gradient before the output
 * projection (attn_nn_mha_backward computes the same inside). */
static void probe(run *r, attn__nn_block *L, int sub, const stream *s, uint64_t site,
                  const float *dy, const sub_save *sv)
{
    const attn_nn_mha *a = sub_mha(L, sub);
    const attn_nn_mha_saved *sa = &sv->a;
    int64_t B = sa->B, Sq = sa->Sq, Sk = sa->Sk, H = a->n_heads, Hk = a->n_kv_heads;
    int64_t hd = a->head_dim;
    float *d_o = act_alloc(r, B * Sq * H * hd, 1);
    if (r->st != ATTN_OK) return;
    set(r, attn_nn_linear_backward(r->ctx, sa->o, B * Sq, H * hd, a->out_proj_weight,
                                   a->embed_dim, dy, d_o, NULL, NULL));
    attn_nn_mha_opts o = mha_opts(r, s, sub, site);
    attn_tensor mask;
    attn_sdpa_params sp = attn__nn_mha_sdpa_params(&o, &mask, B, Sk);
    attn_nn_attn_probe p = {r->stack, r->layer, sub == ATTN__SUB_CROSS,
                            attn_tensor_make(sa->q, ATTN_DTYPE_F32, B, Sq, H, hd),
                            attn_tensor_make(sa->k, ATTN_DTYPE_F32, B, Sk, Hk, hd),
                            attn_tensor_make(sa->v, ATTN_DTYPE_F32, B, Sk, Hk, hd),
                            attn_tensor_make(sa->lse, ATTN_DTYPE_F32, B, H, Sq, 1),
                            attn_tensor_make(d_o, ATTN_DTYPE_F32, B, Sq, H, hd), &sp, NULL, 0};
    if (r->st == ATTN_OK) set(r, r->hook(r->ctx, &p, r->hook_user));
    act_free(r, d_o);
}

/* d_in [N, d] += df/din^T dy, parameter gradients accumulate. */
static void f_backward(run *r, attn__nn_block *L, int sub, const stream *s, uint64_t site,
                       const float *in, const float *dy, float *d_in, const sub_save *sv)
{
    const attn_transformer_config *c = &r->m->c;
    int64_t N = s->N, nf = N * c->d_ff;
    if (sub == ATTN__SUB_FFN) {
        float *du = act_alloc(r, nf, 1), *dg = act_alloc(r, nf, 1);
        if (r->st == ATTN_OK)
            set(r, attn_nn_linear_backward(r->ctx, sv->ff_u, N, c->d_ff, L->w2, c->d_model, dy, du, L->dw2,
                                           L->db2));
        if (r->st == ATTN_OK)
            set(r, attn_nn_dropout_backward(du, nf, r->p_drop, r->o->seed, off_inner(site), dg));
        if (r->st == ATTN_OK) {
            memset(du, 0, (size_t)nf * sizeof(float));
            set(r, attn_nn_act_backward(c->act, sv->ff_a, nf, dg, du));
        }
        if (r->st == ATTN_OK)
            set(r, attn_nn_linear_backward(r->ctx, in, N, c->d_model, L->w1, c->d_ff, du, d_in, L->dw1,
                                           L->db1));
        act_free(r, du);
        act_free(r, dg);
        return;
    }
    if (r->hook) probe(r, L, sub, s, site, dy, sv);
    if (r->st != ATTN_OK) return;
    attn_nn_mha_opts o = mha_opts(r, s, sub, site);
    const float *kv = sub == ATTN__SUB_SELF ? in : r->mem;
    float *d_kv = sub == ATTN__SUB_SELF ? d_in : r->d_mem;
    set(r, attn_nn_mha_backward(r->ctx, sub_mha(L, sub), in, kv, &o, &sv->a, dy, d_in, d_kv));
}

/* x [N, d] <- sublayer(x). */
static void sub_forward(run *r, attn__nn_block *L, int sub, const stream *s, uint64_t site,
                        float *x, sub_save *sv)
{
    const attn_transformer *m = r->m;
    int64_t N = s->N, d = m->c.d_model;
    attn__nn_norm *nrm = sub_norm(L, sub);
    sv->x = act_alloc(r, N * d, 0);
    sv->h = act_alloc(r, N * d, 0);
    sv->mean = act_alloc(r, N, 0);
    sv->rstd = act_alloc(r, N, 0);
    float *y = act_alloc(r, N * d, 0);
    if (r->st != ATTN_OK) {
        act_free(r, y);
        return;
    }
    memcpy(sv->x, x, (size_t)(N * d) * sizeof(float));
    if (m->c.norm_first) set(r, attn__nn_norm_forward(m, nrm, x, N, sv->h, sv->mean, sv->rstd));
    if (r->st == ATTN_OK) f_forward(r, L, sub, s, site, m->c.norm_first ? sv->h : sv->x, y, sv);
    if (r->st == ATTN_OK)
        set(r, attn_nn_dropout_forward(y, N * d, r->p_drop, r->o->seed, off_resid(site), y));
    if (r->st == ATTN_OK) {
        float *sum = m->c.norm_first ? x : sv->h;
        for (int64_t i = 0; i < N * d; i++) sum[i] = x[i] + y[i];
        if (!m->c.norm_first)
            set(r, attn__nn_norm_forward(m, nrm, sv->h, N, x, sv->mean, sv->rstd));
    }
    act_free(r, y);
}

/* dx [N, d]: gradient at the sublayer's output in, at its input out. */
static void sub_backward(run *r, attn__nn_block *L, int sub, const stream *s, uint64_t site,
                         float *dx, const sub_save *sv)
{
    const attn_transformer *m = r->m;
    int64_t N = s->N, d = m->c.d_model;
    attn__nn_norm *nrm = sub_norm(L, sub);
    float *g = act_alloc(r, N * d, 1), *t = act_alloc(r, N * d, 1);
    if (r->st != ATTN_OK) {
        act_free(r, g);
        act_free(r, t);
        return;
    }
    if (m->c.norm_first) {
        /* x_out = x + drop(f(norm(x))) */
        set(r, attn_nn_dropout_backward(dx, N * d, r->p_drop, r->o->seed, off_resid(site), g));
        if (r->st == ATTN_OK) f_backward(r, L, sub, s, site, sv->h, g, t, sv);
        if (r->st == ATTN_OK)
            set(r, attn__nn_norm_backward(m, nrm, sv->x, N, sv->mean, sv->rstd, t, dx));
    } else {
        /* x_out = norm(x + drop(f(x))) */
        set(r, attn__nn_norm_backward(m, nrm, sv->h, N, sv->mean, sv->rstd, dx, t));
        if (r->st == ATTN_OK) {
            memcpy(dx, t, (size_t)(N * d) * sizeof(float));
            set(r, attn_nn_dropout_backward(t, N * d, r->p_drop, r->o->seed, off_resid(site), g));
        }
        if (r->st == ATTN_OK) f_backward(r, L, sub, s, site, sv->x, g, dx, sv);
    }
    act_free(r, g);
    act_free(r, t);
}

/* ---- blocks and stacks ------------------------------------------------------------- */

static int n_subs(const attn__nn_block *L) { return L->has_cross ? 3 : 2; }
static int sub_kind(const attn__nn_block *L, int i)
{
    return i == 0 ? ATTN__SUB_SELF : (L->has_cross && i == 1) ? ATTN__SUB_CROSS : ATTN__SUB_FFN;
}

static void block_forward(run *r, attn__nn_block *L, const stream *s, uint64_t site, float *x,
                          block_save *bs, int keep)
{
    for (int i = 0; i < n_subs(L) && r->st == ATTN_OK; i++) {
        int sub = sub_kind(L, i);
        sub_forward(r, L, sub, s, site + (uint64_t)i, x, &bs->s[i]);
        if (!keep) sub_free(r, sub_mha(L, sub), &bs->s[i]);
    }
}

static void block_free(run *r, attn__nn_block *L, block_save *bs)
{
    for (int i = 0; i < n_subs(L); i++) sub_free(r, sub_mha(L, sub_kind(L, i)), &bs->s[i]);
    act_free(r, bs->x_in);
    bs->x_in = NULL;
}

/* Runs a stack of n blocks over x [N, d]; saves per block (all, or only the
 * inputs when checkpointing). */
static void stack_forward(run *r, attn__nn_block *Ls, int64_t n, const stream *s, float *x,
                          block_save *saves)
{
    int64_t N = s->N, d = r->m->c.d_model;
    int ckpt = r->o->checkpointing && r->grads;
    for (int64_t l = 0; l < n && r->st == ATTN_OK; l++) {
        if (ckpt) {
            saves[l].x_in = act_alloc(r, N * d, 0);
            if (r->st != ATTN_OK) return;
            memcpy(saves[l].x_in, x, (size_t)(N * d) * sizeof(float));
        }
        block_forward(r, &Ls[l], s, s->site0 + 4 * (uint64_t)l, x, &saves[l], r->grads && !ckpt);
    }
}

static void stack_backward(run *r, attn__nn_block *Ls, int64_t n, const stream *s, float *dx,
                           block_save *saves)
{
    int64_t N = s->N, d = r->m->c.d_model;
    for (int64_t l = n - 1; l >= 0 && r->st == ATTN_OK; l--) {
        attn__nn_block *L = &Ls[l];
        uint64_t site = s->site0 + 4 * (uint64_t)l;
        if (r->o->checkpointing) {
            /* recompute this block's activations from its saved input */
            float *x = act_alloc(r, N * d, 0);
            if (r->st != ATTN_OK) return;
            memcpy(x, saves[l].x_in, (size_t)(N * d) * sizeof(float));
            block_forward(r, L, s, site, x, &saves[l], 1);
            act_free(r, x);
        }
        r->stack = Ls == r->m->dec;
        r->layer = l;
        for (int i = n_subs(L) - 1; i >= 0 && r->st == ATTN_OK; i--)
            sub_backward(r, L, sub_kind(L, i), s, site + (uint64_t)i, dx, &saves[l].s[i]);
        block_free(r, L, &saves[l]);
    }
}

/* ---- embeddings ---------------------------------------------------------------------- */

static const float *pos_table(const attn_transformer *m, int enc)
{
    if (m->c.pos == ATTN_NN_POS_SINUSOIDAL) return m->sinusoid;
    if (m->c.pos == ATTN_NN_POS_LEARNED) return enc ? m->enc_pos : m->dec_pos;
    return NULL;
}

static void embed_forward(run *r, const int32_t *ids, const stream *s, int enc, float *x)
{
    int64_t N = s->N, d = r->m->c.d_model;
    set(r, attn__nn_embed(r->m, ids, s->pos, N, pos_table(r->m, enc), x));
    if (r->st == ATTN_OK)
        set(r, attn_nn_dropout_forward(x, N * d, r->p_drop, r->o->seed, off_resid(s->site0 - 1), x));
}

static void embed_backward(run *r, const int32_t *ids, const stream *s, int enc, const float *dx)
{
    attn_transformer *m = r->m;
    int64_t N = s->N, d = m->c.d_model;
    float *g = act_alloc(r, N * d, 1);
    if (r->st != ATTN_OK) return;
    set(r, attn_nn_dropout_backward(dx, N * d, r->p_drop, r->o->seed, off_resid(s->site0 - 1), g));
    float *dpos = m->c.pos == ATTN_NN_POS_LEARNED ? (enc ? m->d_enc_pos : m->d_dec_pos) : NULL;
    if (dpos)
        for (int64_t row = 0; row < N; row++)
            for (int64_t i = 0; i < d; i++) dpos[(int64_t)s->pos[row] * d + i] += g[row * d + i];
    float scale = (float)sqrt((double)d);
    for (int64_t i = 0; i < N * d; i++) g[i] *= scale;
    if (r->st == ATTN_OK) set(r, attn_nn_embedding_backward(ids, N, m->c.vocab, d, g, m->d_embed));
    act_free(r, g);
}

/* ---- the step ------------------------------------------------------------------------- */

/* A packed batch's offsets and the fields they replace. */
static attn_status check_packed(const attn_transformer *m, const attn_nn_batch *b)
{
    const char *fn = "attn_transformer_step";
    int enc = m->c.arch == ATTN_TRANSFORMER_ARCH_ENCDEC;
    if (b->cu_seqlens_tgt == NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'batch->cu_seqlens_src' is set but "
                         "'batch->cu_seqlens_tgt' is NULL; a packed batch has both", fn);
    if (!enc && b->cu_seqlens_src != NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'batch->cu_seqlens_src' is set for the decoder-only "
                         "model, which has no source", fn);
    if (enc && b->cu_seqlens_src == NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'batch->cu_seqlens_tgt' is set but "
                         "'batch->cu_seqlens_src' is NULL; the encoder-decoder's packed batch "
                         "has both", fn);
    if (b->src_lens != NULL || b->tgt_lens != NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'batch->%s' is set beside the packed offsets "
                         "('batch->cu_seqlens_tgt'), which give the lengths; it must be NULL", fn,
                         b->src_lens ? "src_lens" : "tgt_lens");
    if (b->B <= 0)
        return attn_fail(ATTN_BAD_DIM, "%s: 'batch->B' must be > 0", fn);
    attn_status st = attn__nn_check_offsets(fn, "batch->cu_seqlens_tgt", b->cu_seqlens_tgt, b->B,
                                            b->S_tgt, "'batch->S_tgt' (the target tokens)", 1,
                                            m->c.max_len);
    if (st == ATTN_OK && enc)
        st = attn__nn_check_offsets(fn, "batch->cu_seqlens_src", b->cu_seqlens_src, b->B, b->S_src,
                                    "'batch->S_src' (the source tokens)", 1, m->c.max_len);
    return st;
}

static attn_status check_batch(const attn_transformer *m, const attn_nn_batch *b)
{
    const attn_transformer_config *c = &m->c;
    int packed = b->cu_seqlens_src != NULL || b->cu_seqlens_tgt != NULL;
    int enc = c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC;
    if (!b->tgt_in || !b->tgt_out)
        return attn_fail(ATTN_NULL_ARG, "attn_transformer_step: 'batch->tgt_in' and 'tgt_out' are "
                                        "required");
    if (enc && !b->src)
        return attn_fail(ATTN_NULL_ARG, "attn_transformer_step: 'batch->src' is required by the "
                                        "encoder-decoder");
    if (packed) {
        attn_status st = check_packed(m, b);
        if (st != ATTN_OK) return st;
    } else {
        if (b->B <= 0 || b->S_tgt <= 0 || b->S_tgt > c->max_len)
            return attn_fail(ATTN_BAD_DIM, "attn_transformer_step: 'batch->B' must be > 0 and "
                             "'batch->S_tgt' in [1, max_len %lld]", (long long)c->max_len);
        if (enc) {
            if (!b->src_lens)
                return attn_fail(ATTN_NULL_ARG, "attn_transformer_step: 'batch->src_lens' is "
                                                "required by the encoder-decoder");
            if (b->S_src <= 0 || b->S_src > c->max_len)
                return attn_fail(ATTN_BAD_DIM, "attn_transformer_step: 'batch->S_src' must be in "
                                 "[1, max_len %lld]", (long long)c->max_len);
            for (int64_t i = 0; i < b->B; i++)
                if (b->src_lens[i] < 1 || b->src_lens[i] > b->S_src)
                    return attn_fail(ATTN_BAD_DIM, "attn_transformer_step: 'batch->src_lens[%lld]' = "
                                     "%lld is outside [1, S_src]", (long long)i,
                                     (long long)b->src_lens[i]);
        }
    }
    const int32_t *ids[3] = {b->tgt_in, b->tgt_out, enc ? b->src : NULL};
    int64_t rows = packed ? 1 : b->B;
    int64_t counts[3] = {rows * b->S_tgt, rows * b->S_tgt, rows * b->S_src};
    const char *names[3] = {"tgt_in", "tgt_out", "src"};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; ids[k] && i < counts[k]; i++)
            if (ids[k][i] < 0 || ids[k][i] >= c->vocab)
                return attn_fail(ATTN_BAD_PARAM, "attn_transformer_step: 'batch->%s[%lld]' = %d is "
                                 "not a token id in [0, %lld)", names[k], (long long)i,
                                 (int)ids[k][i], (long long)c->vocab);
    return ATTN_OK;
}

/* The position of every row: i % S (padded rows of S), or the index
 * within its sequence (packed: cu [B + 1], N = cu[B]), restarting at 0. */
static int32_t *positions(int64_t B, int64_t S, const int64_t *cu)
{
    int64_t N = cu ? cu[B] : B * S;
    int32_t *p = attn_alloc((size_t)(N > 0 ? N : 1) * sizeof(int32_t));
    if (p && cu)
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = cu[b]; i < cu[b + 1]; i++) p[i] = (int32_t)(i - cu[b]);
    else if (p)
        for (int64_t i = 0; i < N; i++) p[i] = (int32_t)(i % S);
    return p;
}

/* The encoder: mem [N_src, d] = norm(blocks(embed(src))); saves what
 * backward needs in saves / fin (final norm input) / stats. */
static void encode(run *r, const attn_nn_batch *b, const stream *s, block_save *saves,
                   float *fin, float *stats, float *mem)
{
    attn_transformer *m = r->m;
    embed_forward(r, b->src, s, 1, fin);
    if (r->st == ATTN_OK) stack_forward(r, m->enc, m->c.n_enc_layers, s, fin, saves);
    if (r->st == ATTN_OK)
        set(r, attn__nn_norm_forward(m, &m->enc_norm, fin, s->N, mem, stats,
                                     stats + s->N));
}

typedef struct {
    stream enc, dec;
    block_save *enc_saves, *dec_saves;
    float *enc_fin, *enc_stats, *mem, *dec_fin, *dec_stats, *h, *logits, *dlogits;
    int32_t *enc_pos, *dec_pos;
} step_state;

static void step_free(run *r, step_state *t)
{
    attn_transformer *m = r->m;
    for (int64_t l = 0; t->enc_saves && l < m->c.n_enc_layers; l++)
        block_free(r, &m->enc[l], &t->enc_saves[l]);
    for (int64_t l = 0; t->dec_saves && l < m->c.n_dec_layers; l++)
        block_free(r, &m->dec[l], &t->dec_saves[l]);
    attn_release(t->enc_saves);
    attn_release(t->dec_saves);
    float *bufs[] = {t->enc_fin, t->enc_stats, t->mem, r->d_mem, t->dec_fin,
                     t->dec_stats, t->h, t->logits, t->dlogits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) act_free(r, bufs[i]);
    attn_release(t->enc_pos);
    attn_release(t->dec_pos);
}

static void forward(run *r, const attn_nn_batch *b, step_state *t)
{
    attn_transformer *m = r->m;
    int64_t d = m->c.d_model, Ns = t->enc.N, Nt = t->dec.N;
    if (m->c.arch == ATTN_TRANSFORMER_ARCH_ENCDEC) {
        t->enc_fin = act_alloc(r, Ns * d, 0);
        t->enc_stats = act_alloc(r, 2 * Ns, 0);
        t->mem = act_alloc(r, Ns * d, 0);
        if (r->st == ATTN_OK) encode(r, b, &t->enc, t->enc_saves, t->enc_fin, t->enc_stats, t->mem);
        r->mem = t->mem;
        r->S_mem = b->S_src;
        r->N_mem = Ns;
        r->mem_lens = b->src_lens;
        r->mem_cu = b->cu_seqlens_src;
    }
    t->dec_fin = act_alloc(r, Nt * d, 0);
    t->dec_stats = act_alloc(r, 2 * Nt, 0);
    t->h = act_alloc(r, Nt * d, 0);
    t->logits = act_alloc(r, Nt * m->c.vocab, 0);
    if (r->st == ATTN_OK) embed_forward(r, b->tgt_in, &t->dec, 0, t->dec_fin);
    if (r->st == ATTN_OK) stack_forward(r, m->dec, m->c.n_dec_layers, &t->dec, t->dec_fin, t->dec_saves);
    if (r->st == ATTN_OK)
        set(r, attn__nn_norm_forward(m, &m->dec_norm, t->dec_fin, Nt, t->h, t->dec_stats,
                                     t->dec_stats + Nt));
    if (r->st == ATTN_OK)
        set(r, attn_nn_linear_forward(r->ctx, t->h, Nt, d, m->lm_head, NULL, m->c.vocab, t->logits));
}

static void backward(run *r, const attn_nn_batch *b, step_state *t)
{
    attn_transformer *m = r->m;
    int64_t d = m->c.d_model, Ns = t->enc.N, Nt = t->dec.N;
    float *dh = act_alloc(r, Nt * d, 1), *dx = act_alloc(r, Nt * d, 1);
    if (r->st == ATTN_OK)
        set(r, attn_nn_linear_backward(r->ctx, t->h, Nt, d, m->lm_head, m->c.vocab, t->dlogits, dh,
                                       m->d_lm_head, NULL));
    if (r->st == ATTN_OK)
        set(r, attn__nn_norm_backward(m, &m->dec_norm, t->dec_fin, Nt, t->dec_stats,
                                      t->dec_stats + Nt, dh, dx));
    if (m->c.arch == ATTN_TRANSFORMER_ARCH_ENCDEC) r->d_mem = act_alloc(r, Ns * d, 1);
    if (r->st == ATTN_OK) stack_backward(r, m->dec, m->c.n_dec_layers, &t->dec, dx, t->dec_saves);
    if (r->st == ATTN_OK) embed_backward(r, b->tgt_in, &t->dec, 0, dx);
    act_free(r, dh);
    act_free(r, dx);
    if (m->c.arch != ATTN_TRANSFORMER_ARCH_ENCDEC || r->st != ATTN_OK) return;
    dx = act_alloc(r, Ns * d, 1);
    if (r->st == ATTN_OK)
        set(r, attn__nn_norm_backward(m, &m->enc_norm, t->enc_fin, Ns, t->enc_stats,
                                      t->enc_stats + Ns, r->d_mem, dx));
    if (r->st == ATTN_OK) stack_backward(r, m->enc, m->c.n_enc_layers, &t->enc, dx, t->enc_saves);
    if (r->st == ATTN_OK) embed_backward(r, b->src, &t->enc, 1, dx);
    act_free(r, dx);
}

/* The step, with hook (or NULL) called on every attention call of backward. */
static attn_status step(attn_ctx *ctx, attn_transformer *m, const attn_nn_batch *batch,
                        const attn_nn_train_opts *opts, int grads, attn_nn_attn_hook hook,
                        void *user, double *loss, float *logits, size_t *activation_bytes)
{
    attn_status st = check_batch(m, batch);
    if (st != ATTN_OK) return st;
    if (!(opts->label_smoothing >= 0 && opts->label_smoothing <= 1))
        return attn_fail(ATTN_BAD_PARAM, "attn_transformer_step: 'label_smoothing' must be in [0, 1]");
    run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.m = m;
    r.o = opts;
    r.B = batch->B;
    r.p_drop = opts->training ? m->c.dropout : 0;
    r.p_attn = opts->training ? m->c.attn_dropout : 0;
    r.grads = grads != 0;
    r.hook = hook;
    r.hook_user = user;
    int enc = m->c.arch == ATTN_TRANSFORMER_ARCH_ENCDEC;
    step_state t;
    memset(&t, 0, sizeof t);
    /* packed: one row of N tokens; padded: B rows of S */
    const int64_t *cs = batch->cu_seqlens_src, *ct = batch->cu_seqlens_tgt;
    int64_t Ns = enc ? (cs ? batch->S_src : batch->B * batch->S_src) : 0;
    int64_t Nt = ct ? batch->S_tgt : batch->B * batch->S_tgt;
    t.enc = (stream){cs ? Ns : batch->S_src, Ns, 0, batch->src_lens, cs, NULL, 1};
    t.dec = (stream){ct ? Nt : batch->S_tgt, Nt, 1, NULL, ct, NULL,
                     4 * (uint64_t)m->c.n_enc_layers + 2};
    t.enc_pos = enc ? positions(batch->B, batch->S_src, cs) : NULL;
    t.dec_pos = positions(batch->B, batch->S_tgt, ct);
    t.enc.pos = t.enc_pos;
    t.dec.pos = t.dec_pos;
    t.enc_saves = enc ? attn_calloc((size_t)m->c.n_enc_layers, sizeof(block_save)) : NULL;
    t.dec_saves = attn_calloc((size_t)m->c.n_dec_layers, sizeof(block_save));
    if (!t.dec_pos || !t.dec_saves || (enc && (!t.enc_pos || !t.enc_saves)))
        r.st = attn_fail(ATTN_NO_MEMORY, "attn_transformer_step: out of memory");
    if (r.st == ATTN_OK) forward(&r, batch, &t);
    int64_t V = m->c.vocab;
    if (grads && r.st == ATTN_OK) t.dlogits = act_alloc(&r, Nt * V, 0);
    double l = 0;
    if (r.st == ATTN_OK)
        set(&r, attn_nn_cross_entropy(t.logits, Nt, V, batch->tgt_out, batch->pad_id,
                                      opts->label_smoothing, 1.0, &l, NULL, t.dlogits));
    if (r.st == ATTN_OK && logits) memcpy(logits, t.logits, (size_t)(Nt * V) * sizeof(float));
    if (r.st == ATTN_OK && grads) backward(&r, batch, &t);
    step_free(&r, &t);
    if (r.st != ATTN_OK) return r.st;
    *loss = l;
    if (activation_bytes) *activation_bytes = r.peak;
    return ATTN_OK;
}

attn_status attn_transformer_step(attn_ctx *ctx, attn_transformer *m, const attn_nn_batch *batch,
                               const attn_nn_train_opts *opts, int grads, double *loss,
                               float *logits, size_t *activation_bytes)
{
    if (!ctx || !m || !batch || !opts || !loss)
        return attn_fail(ATTN_NULL_ARG, "attn_transformer_step: 'ctx', 'm', 'batch', 'opts' and "
                                        "'loss' must not be NULL");
    return step(ctx, m, batch, opts, grads, NULL, NULL, loss, logits, activation_bytes);
}

attn_status attn_transformer_step_probe(attn_ctx *ctx, attn_transformer *m,
                                        const attn_nn_batch *batch, const attn_nn_train_opts *opts,
                                        attn_nn_attn_hook hook, void *user, double *loss)
{
    if (!ctx || !m || !batch || !opts || !hook || !loss)
        return attn_fail(ATTN_NULL_ARG, "attn_transformer_step_probe: 'ctx', 'm', 'batch', 'opts', "
                                        "'hook' and 'loss' must not be NULL");
    if (opts->training && m->c.attn_dropout > 0)
        return attn_fail(ATTN_UNSUPPORTED, "attn_transformer_step_probe: 'opts->training' is set "
                         "and the model has attention dropout; a probe needs the attention "
                         "without dropout");
    if (batch->cu_seqlens_src || batch->cu_seqlens_tgt)
        return attn_fail(ATTN_UNSUPPORTED, "attn_transformer_step_probe: 'batch->cu_seqlens_%s' is "
                         "set; explanations take padded batches", batch->cu_seqlens_tgt ? "tgt" : "src");
    return step(ctx, m, batch, opts, 1, hook, user, loss, NULL, NULL);
}

attn_status attn__nn_encode(attn_ctx *ctx, attn_transformer *m, const int32_t *src, int64_t len,
                            float *mem)
{
    attn_nn_train_opts o;
    memset(&o, 0, sizeof o);
    run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.m = m;
    r.o = &o;
    r.B = 1;
    attn_nn_batch b;
    memset(&b, 0, sizeof b);
    b.B = 1;
    b.S_src = len;
    b.src = src;
    b.src_lens = &len;
    stream s = {len, len, 0, &len, NULL, NULL, 1};
    int32_t *pos = positions(1, len, NULL);
    block_save *saves = attn_calloc((size_t)m->c.n_enc_layers, sizeof(block_save));
    float *fin = act_alloc(&r, len * m->c.d_model, 0), *stats = act_alloc(&r, 2 * len, 0);
    s.pos = pos;
    if (!pos || !saves) set(&r, attn_fail(ATTN_NO_MEMORY, "attn_transformer_generate: out of memory"));
    if (r.st == ATTN_OK) encode(&r, &b, &s, saves, fin, stats, mem);
    act_free(&r, fin);
    act_free(&r, stats);
    attn_release(saves);
    attn_release(pos);
    return r.st;
}
