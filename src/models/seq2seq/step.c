/* step.c - the GRU encoder-decoder's teacher-forced training step
 * (attn_seq2seq_step): the activations of a call in one block, the encoder,
 * the decoder steps with additive attention, the loss, and backward through
 * time. Decoding (generate.c) shares the activations, the encoder and the
 * decoder step. docs/rnn.md has the equations. */
#include "seq2seq_internal.h"

#include <math.h>
#include <string.h>

/* ---- activations ------------------------------------------------------------------- */

attn__s2s_dims attn__s2s_make_dims(const attn_seq2seq *m, int64_t B, int64_t S, int64_t T,
                                   const int64_t *lens)
{
    const attn_seq2seq_config *c = &m->c;
    attn__s2s_dims d = {B, S, T, c->embed, 2 * c->hidden, c->dec_hidden, c->attn_dim, c->vocab,
                        0, 0, 0, lens};
    d.F = d.Hd + d.H2 + d.E;
    d.X = d.E + d.H2;
    d.Ii = c->init == ATTN_SEQ2SEQ_INIT_MEAN ? d.H2 : c->hidden;
    return d;
}

/* a * b * c, or 0 and *ok = false if that overflows. */
static int64_t mul3(bool *ok, int64_t a, int64_t b, int64_t c)
{
    int64_t r = 0;
    if (attn__mul(a, b, &r) && attn__mul(r, c, &r)) return r;
    *ok = false;
    return 0;
}

typedef struct {
    float **p;
    int64_t n;
} piece;

static attn_status carve(const char *fn, const piece *pc, int n, bool ok, attn__s2s_work *w)
{
    int64_t total = 1;
    for (int i = 0; i < n && ok; i++) {
        if (pc[i].n > ATTN__MAX_ELEMS - total) ok = false;
        total += pc[i].n;
    }
    if (!ok) return attn_fail(ATTN_OVERFLOW, "%s: the sizes of the batch overflow", fn);
    w->block = attn_calloc((size_t)total, sizeof(float));
    if (!w->block) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    int64_t off = 0;
    for (int i = 0; i < n; i++, off += pc[i - 1].n) *pc[i].p = w->block + off;
    return ATTN_OK;
}

attn_status attn__s2s_work_alloc(const char *fn, const attn__s2s_dims *d, int grads,
                                 attn__s2s_work *w)
{
    bool ok = true;
    int64_t B = d->B, S = d->S, T = d->T, BS = mul3(&ok, B, S, 1), BT = mul3(&ok, B, T, 1);
    memset(w, 0, sizeof *w);
    piece f[] = {{&w->xe, mul3(&ok, BS, d->E, 1)}, {&w->ann, mul3(&ok, BS, d->H2, 1)},
                 {&w->hn, mul3(&ok, B, d->H2, 1)}, {&w->init_x, mul3(&ok, B, d->Ii, 1)},
                 {&w->emb, mul3(&ok, BT, d->E, 1)}, {&w->s, mul3(&ok, T + 1, B, d->Hd)},
                 {&w->c, mul3(&ok, BT, d->H2, 1)}, {&w->lse, BT},
                 {&w->x, mul3(&ok, BT, d->X, 1)}, {&w->gates, mul3(&ok, BT, d->Hd, 4)},
                 {&w->feat, mul3(&ok, BT, d->F, 1)}, {&w->logits, mul3(&ok, BT, d->V, 1)},
                 {&w->wts, BS}};
    piece b[] = {{&w->dlogits, mul3(&ok, BT, d->V, 1)}, {&w->dfeat, mul3(&ok, BT, d->F, 1)},
                 {&w->ds, mul3(&ok, B, d->Hd, 1)}, {&w->ds2, mul3(&ok, B, d->Hd, 1)},
                 {&w->dq, mul3(&ok, B, d->Hd, 1)}, {&w->dx, mul3(&ok, B, d->X, 1)},
                 {&w->dc, mul3(&ok, B, d->H2, 1)}, {&w->demb, mul3(&ok, BT, d->E, 1)},
                 {&w->dk, mul3(&ok, BS, d->H2, 1)}, {&w->dv, mul3(&ok, BS, d->H2, 1)},
                 {&w->dann, mul3(&ok, BS, d->H2, 1)}, {&w->dinit, mul3(&ok, B, d->Ii, 1)},
                 {&w->dhn, mul3(&ok, B, d->H2, 1)}, {&w->dxe, mul3(&ok, BS, d->E, 1)},
                 {&w->dpar, mul3(&ok, d->A, d->Hd + d->H2 + 2, 1)}};
    piece all[sizeof f / sizeof f[0] + sizeof b / sizeof b[0]];
    int n = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) all[n++] = f[i];
    for (size_t i = 0; grads && i < sizeof b / sizeof b[0]; i++) all[n++] = b[i];
    return carve(fn, all, n, ok, w);
}

void attn__s2s_work_free(attn__s2s_work *w)
{
    attn_release(w->block);
    attn_nn_gru_saved_free(&w->enc);
}

/* ---- forward ------------------------------------------------------------------------ */

void attn__s2s_scorer_init(const attn_seq2seq *m, const attn__s2s_dims *d, attn__s2s_scorer *s)
{
    s->w[0] = attn_tensor_make(m->wq, ATTN_DTYPE_F32, 1, 1, d->A, d->Hd);
    s->w[1] = attn_tensor_make(m->wk, ATTN_DTYPE_F32, 1, 1, d->A, d->H2);
    s->w[2] = attn_tensor_make(m->ab, ATTN_DTYPE_F32, 1, 1, 1, d->A);
    s->w[3] = attn_tensor_make(m->va, ATTN_DTYPE_F32, 1, 1, 1, d->A);
    s->p = attn_score_params_default(ATTN_SCORE_KIND_ADDITIVE);
    s->p.w_q = &s->w[0];
    s->p.w_k = &s->w[1];
    s->p.b = &s->w[2];
    s->p.v_a = &s->w[3];
    s->p.masks.k_lens = d->lens;
}

static int64_t len_of(const attn__s2s_dims *d, int64_t b) { return d->lens ? d->lens[b] : d->S; }

/* init_x [B, Ii]: the backward GRU's final state, or the mean annotation. */
static void init_input(const attn__s2s_dims *d, attn__s2s_work *w)
{
    int64_t H = d->H2 / 2;
    for (int64_t b = 0; b < d->B; b++) {
        float *dst = w->init_x + b * d->Ii;
        if (d->Ii == H) {
            memcpy(dst, w->hn + (d->B + b) * H, attn__s2s_fbytes(H));
            continue;
        }
        int64_t len = len_of(d, b);
        for (int64_t k = 0; k < d->H2; k++) {
            double acc = 0;
            for (int64_t j = 0; j < len; j++) acc += w->ann[(b * d->S + j) * d->H2 + k];
            dst[k] = len > 0 ? (float)(acc / (double)len) : 0.0f;
        }
    }
}

attn_status attn__s2s_encode(attn_ctx *ctx, const attn_seq2seq *m, const int32_t *src,
                             const attn__s2s_dims *d, attn__s2s_work *w, int save)
{
    attn_status st = attn_nn_embedding_forward(src, d->B * d->S, m->src_emb, d->V, d->E, w->xe);
    if (st == ATTN_OK)
        st = attn_nn_gru_forward(ctx, &m->enc, w->xe, d->B, d->S, d->lens, NULL, w->ann, w->hn,
                                  save ? &w->enc : NULL);
    if (st != ATTN_OK) return st;
    init_input(d, w);
    st = attn_nn_linear_forward(ctx, w->init_x, d->B, d->Ii, m->init_w, m->init_b, d->Hd, w->s);
    for (int64_t i = 0; i < d->B * d->Hd && st == ATTN_OK; i++) w->s[i] = tanhf(w->s[i]);
    return st;
}

attn_status attn__s2s_dec_step(attn_ctx *ctx, const attn_seq2seq *m, const attn__s2s_scorer *sc,
                               const attn__s2s_dims *d, const float *ann,
                               const attn__s2s_step_io *io)
{
    int64_t B = d->B, E = d->E, H2 = d->H2, Hd = d->Hd;
    attn_tensor q = attn_tensor_make((void *)io->s_prev, ATTN_DTYPE_F32, B, 1, 1, Hd);
    attn_tensor k = attn_tensor_make((void *)ann, ATTN_DTYPE_F32, B, d->S, 1, H2);
    attn_tensor o = attn_tensor_make(io->c, ATTN_DTYPE_F32, B, 1, 1, H2);
    attn_tensor l = attn_tensor_make(io->lse, ATTN_DTYPE_F32, B, 1, 1, 1);
    attn_status st = attn_score_forward(ctx, &q, &k, &k, &sc->p, &o, &l);
    if (st != ATTN_OK) return st;
    for (int64_t b = 0; b < B; b++) {
        memcpy(io->x + b * d->X, io->emb + b * io->ld_e, attn__s2s_fbytes(E));
        memcpy(io->x + b * d->X + E, io->c + b * H2, attn__s2s_fbytes(H2));
    }
    st = attn_nn_gru_cell_forward(ctx, &m->dec, io->x, io->s_prev, B, io->s_new, io->gates);
    for (int64_t b = 0; b < B && st == ATTN_OK; b++) {
        float *f = io->feat + b * io->ld_f;
        memcpy(f, io->s_new + b * Hd, attn__s2s_fbytes(Hd));
        memcpy(f + Hd, io->c + b * H2, attn__s2s_fbytes(H2));
        memcpy(f + Hd + H2, io->emb + b * io->ld_e, attn__s2s_fbytes(E));
    }
    return st;
}

/* Teacher-forced forward of a batch: every step, then logits [B*T, V]. */
static attn_status forward(attn_ctx *ctx, const attn_seq2seq *m, const attn_nn_batch *bt,
                           const attn__s2s_scorer *sc, const attn__s2s_dims *d, attn__s2s_work *w)
{
    int64_t B = d->B, T = d->T;
    attn_status st = attn__s2s_encode(ctx, m, bt->src, d, w, 1);
    if (st == ATTN_OK) st = attn_nn_embedding_forward(bt->tgt_in, B * T, m->tgt_emb, d->V, d->E, w->emb);
    for (int64_t i = 0; i < T && st == ATTN_OK; i++) {
        attn__s2s_step_io io = {w->emb + i * d->E, w->s + i * B * d->Hd, T * d->E, T * d->F,
                      w->c + i * B * d->H2, w->lse + i * B, w->x + i * B * d->X,
                      w->s + (i + 1) * B * d->Hd, w->gates + i * B * 4 * d->Hd, w->feat + i * d->F};
        st = attn__s2s_dec_step(ctx, m, sc, d, w->ann, &io);
    }
    if (st == ATTN_OK) st = attn_nn_linear_forward(ctx, w->feat, B * T, d->F, m->out_w, m->out_b, d->V, w->logits);
    return st;
}

/* ---- backward ------------------------------------------------------------------------- */

/* The attention of step i backward from dc [B, 2H]: ds2 += dq, dann += dk +
 * dv, and the attn__s2s_scorer's gradients. */
static attn_status attention_backward(attn_ctx *ctx, attn_seq2seq *m, const attn__s2s_scorer *sc,
                                 const attn__s2s_dims *d, attn__s2s_work *w, int64_t i)
{
    int64_t B = d->B, A = d->A, H2 = d->H2, Hd = d->Hd, nk = B * d->S * H2;
    attn_tensor q = attn_tensor_make(w->s + i * B * Hd, ATTN_DTYPE_F32, B, 1, 1, Hd);
    attn_tensor k = attn_tensor_make(w->ann, ATTN_DTYPE_F32, B, d->S, 1, H2);
    attn_tensor o = attn_tensor_make(w->c + i * B * H2, ATTN_DTYPE_F32, B, 1, 1, H2);
    attn_tensor l = attn_tensor_make(w->lse + i * B, ATTN_DTYPE_F32, B, 1, 1, 1);
    attn_tensor dout = attn_tensor_make(w->dc, ATTN_DTYPE_F32, B, 1, 1, H2);
    attn_tensor dq = attn_tensor_make(w->dq, ATTN_DTYPE_F32, B, 1, 1, Hd);
    attn_tensor dk = attn_tensor_make(w->dk, ATTN_DTYPE_F32, B, d->S, 1, H2);
    attn_tensor dv = attn_tensor_make(w->dv, ATTN_DTYPE_F32, B, d->S, 1, H2);
    int64_t np = A * (Hd + H2 + 2);
    attn_tensor g[4] = {attn_tensor_make(w->dpar, ATTN_DTYPE_F32, 1, 1, A, Hd),
                        attn_tensor_make(w->dpar + A * Hd, ATTN_DTYPE_F32, 1, 1, A, H2),
                        attn_tensor_make(w->dpar + A * (Hd + H2), ATTN_DTYPE_F32, 1, 1, 1, A),
                        attn_tensor_make(w->dpar + A * (Hd + H2 + 1), ATTN_DTYPE_F32, 1, 1, 1, A)};
    attn_score_grads grads = {&g[0], &g[1], &g[2], &g[3], NULL, NULL};
    if (w->hook) { /* the attention of step i, with the gradient at its output c */
        attn_nn_attn_probe pr = {1, 0, 1, q, k, k, l, dout, NULL, &sc->p, i};
        attn_status st = w->hook(ctx, &pr, w->hook_user);
        if (st != ATTN_OK) return st;
    }
    memset(w->dq, 0, attn__s2s_fbytes(B * Hd));
    memset(w->dk, 0, attn__s2s_fbytes(nk));
    memset(w->dv, 0, attn__s2s_fbytes(nk));
    memset(w->dpar, 0, attn__s2s_fbytes(np));
    attn_status st = attn_score_backward(ctx, &q, &k, &k, &o, &dout, &l, &sc->p, &dq, &dk, &dv, &grads);
    if (st != ATTN_OK) return st;
    for (int64_t r = 0; r < B * Hd; r++) w->ds2[r] += w->dq[r];
    for (int64_t r = 0; r < nk; r++) w->dann[r] += w->dk[r] + w->dv[r];
    float *dst[4] = {m->d_wq, m->d_wk, m->d_ab, m->d_va};
    int64_t off[5] = {0, A * Hd, A * (Hd + H2), A * (Hd + H2 + 1), np};
    for (int p = 0; p < 4; p++)
        for (int64_t r = off[p]; r < off[p + 1]; r++) dst[p][r - off[p]] += w->dpar[r];
    return ATTN_OK;
}

/* Decoder step i backward: w->ds holds d s_{i+1} (without the output
 * layer's part, added here); leaves d s_i in w->ds. */
static attn_status step_backward(attn_ctx *ctx, attn_seq2seq *m, const attn__s2s_scorer *sc,
                                 const attn__s2s_dims *d, attn__s2s_work *w, int64_t i)
{
    int64_t B = d->B, T = d->T, E = d->E, H2 = d->H2, Hd = d->Hd, F = d->F;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < Hd; k++) w->ds[b * Hd + k] += w->dfeat[(b * T + i) * F + k];
    memset(w->dx, 0, attn__s2s_fbytes(B * d->X));
    memset(w->ds2, 0, attn__s2s_fbytes(B * Hd));
    attn_status st = attn_nn_gru_cell_backward(ctx, &m->dec, w->x + i * B * d->X, w->s + i * B * Hd, B,
                                                w->gates + i * B * 4 * Hd, w->ds, w->dx, w->ds2);
    if (st != ATTN_OK) return st;
    for (int64_t b = 0; b < B; b++) {
        const float *df = w->dfeat + (b * T + i) * F, *dx = w->dx + b * d->X;
        float *de = w->demb + (b * T + i) * E;
        for (int64_t k = 0; k < H2; k++) w->dc[b * H2 + k] = df[Hd + k] + dx[E + k];
        for (int64_t k = 0; k < E; k++) de[k] += df[Hd + H2 + k] + dx[k];
    }
    st = attention_backward(ctx, m, sc, d, w, i);
    float *t = w->ds;
    w->ds = w->ds2;
    w->ds2 = t;
    return st;
}

/* s_0 = tanh(W_init init_x + b) and the encoder, backward from w->ds. */
static attn_status encoder_backward(attn_ctx *ctx, attn_seq2seq *m, const int32_t *src,
                                    const attn__s2s_dims *d, attn__s2s_work *w)
{
    int64_t B = d->B, H = d->H2 / 2;
    for (int64_t r = 0; r < B * d->Hd; r++) w->ds[r] *= 1.0f - w->s[r] * w->s[r];
    attn_status st = attn_nn_linear_backward(ctx, w->init_x, B, d->Ii, m->init_w, d->Hd, w->ds, w->dinit,
                                             m->d_init_w, m->d_init_b);
    if (st != ATTN_OK) return st;
    for (int64_t b = 0; b < B; b++) {
        const float *g = w->dinit + b * d->Ii;
        int64_t len = len_of(d, b);
        if (d->Ii == H) {
            for (int64_t k = 0; k < H; k++) w->dhn[(B + b) * H + k] += g[k];
            continue;
        }
        for (int64_t j = 0; j < len; j++)
            for (int64_t k = 0; k < d->H2; k++)
                w->dann[(b * d->S + j) * d->H2 + k] += g[k] / (float)len;
    }
    st = attn_nn_gru_backward(ctx, &m->enc, w->xe, d->lens, &w->enc, w->dann, w->dhn, w->dxe, NULL);
    if (st == ATTN_OK)
        st = attn_nn_embedding_backward(src, B * d->S, d->V, d->E, w->dxe, m->d_src_emb);
    return st;
}

static attn_status backward(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *bt,
                            const attn__s2s_scorer *sc, const attn__s2s_dims *d, attn__s2s_work *w)
{
    int64_t BT = d->B * d->T;
    attn_status st = attn_nn_linear_backward(ctx, w->feat, BT, d->F, m->out_w, d->V, w->dlogits,
                                             w->dfeat, m->d_out_w, m->d_out_b);
    for (int64_t i = d->T - 1; i >= 0 && st == ATTN_OK; i--) st = step_backward(ctx, m, sc, d, w, i);
    if (st == ATTN_OK) st = attn_nn_embedding_backward(bt->tgt_in, BT, d->V, d->E, w->demb, m->d_tgt_emb);
    if (st == ATTN_OK) st = encoder_backward(ctx, m, bt->src, d, w);
    return st;
}

/* ---- the training step ------------------------------------------------------------------- */

attn_status attn__s2s_check_lens(const char *fn, const char *name, const int64_t *lens,
                                 int64_t B, int64_t lo, int64_t S)
{
    for (int64_t b = 0; lens && b < B; b++)
        if (lens[b] < lo || lens[b] > S)
            return attn_fail(ATTN_BAD_DIM, "%s: argument '%s' has [%lld] = %lld outside [%lld, %lld]",
                             fn, name, (long long)b, (long long)lens[b], (long long)lo, (long long)S);
    return ATTN_OK;
}

static attn_status check_batch(const char *fn, const attn_nn_batch *b)
{
    ATTN__NOT_NULL(fn, b);
    ATTN__DIM(fn, b->B);
    ATTN__DIM(fn, b->S_src);
    ATTN__DIM(fn, b->S_tgt);
    ATTN__NOT_NULL(fn, b->src);
    ATTN__NOT_NULL(fn, b->tgt_in);
    ATTN__NOT_NULL(fn, b->tgt_out);
    if (b->cu_seqlens_src != NULL || b->cu_seqlens_tgt != NULL)
        return attn_fail(ATTN_UNSUPPORTED, "%s: 'batch->cu_seqlens_%s' is set; the recurrent model "
                         "takes padded batches only", fn, b->cu_seqlens_src ? "src" : "tgt");
    return attn__s2s_check_lens(fn, "batch->src_lens", b->src_lens, b->B, 0, b->S_src);
}

/* The step (fn names the public call), with hook (or NULL) called on each
 * decoder step's attention in backward. */
static attn_status step(const char *fn, attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *batch,
                        double label_smoothing, int grads, attn_nn_attn_hook hook, void *user,
                        double *loss, float *logits)
{
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, m);
    ATTN__NOT_NULL(fn, loss);
    attn_status st = check_batch(fn, batch);
    if (st != ATTN_OK) return st;
    attn__s2s_dims d = attn__s2s_make_dims(m, batch->B, batch->S_src, batch->S_tgt, batch->src_lens);
    attn__s2s_work w;
    if ((st = attn__s2s_work_alloc(fn, &d, grads, &w)) != ATTN_OK) return st;
    w.hook = hook;
    w.hook_user = user;
    attn__s2s_scorer sc;
    attn__s2s_scorer_init(m, &d, &sc);
    if (grads) memset(m->gtmp, 0, attn__s2s_fbytes(m->n_params));
    double l = 0;
    st = forward(ctx, m, batch, &sc, &d, &w);
    if (st == ATTN_OK)
        st = attn_nn_cross_entropy(w.logits, d.B * d.T, d.V, batch->tgt_out, batch->pad_id,
                                   label_smoothing, 1.0, &l, NULL, grads ? w.dlogits : NULL);
    if (st == ATTN_OK && grads) st = backward(ctx, m, batch, &sc, &d, &w);
    if (st == ATTN_OK) {
        for (int64_t i = 0; grads && i < m->n_params; i++) m->grads[i] += m->gtmp[i];
        if (logits) memcpy(logits, w.logits, attn__s2s_fbytes(d.B * d.T * d.V));
        *loss = l;
    }
    attn__s2s_work_free(&w);
    return st;
}

attn_status attn_seq2seq_step(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *batch,
                                double label_smoothing, int grads, double *loss, float *logits)
{
    return step(__func__, ctx, m, batch, label_smoothing, grads, NULL, NULL, loss, logits);
}

attn_status attn_seq2seq_step_probe(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *batch,
                                    attn_nn_attn_hook hook, void *user, double *loss)
{
    ATTN__NOT_NULL(__func__, hook);
    return step(__func__, ctx, m, batch, 0.0, 1, hook, user, loss, NULL);
}
