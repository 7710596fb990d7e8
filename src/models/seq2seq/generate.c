/* generate.c - greedy decoding of the GRU encoder-decoder
 * (attn_seq2seq_generate): all rows at once, with the attention weights of
 * every emitted token recomputed from the step's LSE. */
#include "seq2seq_internal.h"

#include <string.h>

static attn_status check_generate(const char *fn, const attn_seq2seq *m, const int32_t *src,
                                  int64_t B, int64_t S, const int64_t *lens,
                                  const attn_nn_gen_opts *o, int64_t cap, const int64_t *n_out)
{
    ATTN__NOT_NULL(fn, m);
    ATTN__NOT_NULL(fn, src);
    ATTN__NOT_NULL(fn, lens);
    ATTN__NOT_NULL(fn, o);
    ATTN__NOT_NULL(fn, n_out);
    ATTN__DIM(fn, B);
    ATTN__DIM_POS(fn, S);
    ATTN__DIM(fn, cap);
    ATTN__DIM(fn, o->max_new);
    if (o->beam != 1)
        return attn_fail(ATTN_UNSUPPORTED, "%s: argument 'opts->beam' is %lld; only greedy (1) decoding",
                         fn, (long long)o->beam);
    if (o->bos_id < 0 || o->bos_id >= m->c.vocab || o->eos_id < 0 || o->eos_id >= m->c.vocab)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'opts' has bos_id or eos_id outside [0, %lld)",
                         fn, (long long)m->c.vocab);
    return attn__s2s_check_lens(fn, "src_lens", lens, B, 1, S);
}

static int32_t argmax(const float *z, int64_t n)
{
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (z[j] > z[best]) best = j;
    return (int32_t)best;
}

/* Decoding state: ids [B] (last tokens), n [B] (emitted), done [B]. */
typedef struct {
    int32_t *ids, *out;
    int64_t *n;
    float *wts;
    uint8_t *done;
} gen_state;

/* Takes the argmax of each unfinished row of logits [B, V]; true while any
 * row is unfinished. */
static bool gen_emit(const attn__s2s_dims *d, const attn__s2s_work *w, int32_t eos, int64_t cap, gen_state *g)
{
    bool more = false;
    for (int64_t b = 0; b < d->B; b++) {
        if (g->done[b]) continue;
        int32_t tok = argmax(w->logits + b * d->V, d->V);
        if (tok == eos) {
            g->done[b] = 1;
            continue;
        }
        g->out[b * cap + g->n[b]] = tok;
        if (g->wts) memcpy(g->wts + (b * cap + g->n[b]) * d->S, w->wts + b * d->S, attn__s2s_fbytes(d->S));
        g->n[b]++;
        g->ids[b] = tok;
        more = true;
    }
    return more;
}

static attn_status gen_loop(attn_ctx *ctx, attn_seq2seq *m, const attn__s2s_dims *d, attn__s2s_work *w,
                            const attn_nn_gen_opts *o, int64_t cap, gen_state *g)
{
    attn__s2s_scorer sc;
    attn__s2s_scorer_init(m, d, &sc);
    int64_t B = d->B, steps = o->max_new < cap ? o->max_new : cap;
    attn_status st = ATTN_OK;
    bool more = true;
    for (int64_t i = 0; i < steps && more && st == ATTN_OK; i++) {
        float *s_prev = w->s + (i % 2) * B * d->Hd, *s_new = w->s + ((i + 1) % 2) * B * d->Hd;
        st = attn_nn_embedding_forward(g->ids, B, m->tgt_emb, d->V, d->E, w->emb);
        attn__s2s_step_io io = {w->emb, s_prev, d->E, d->F, w->c, w->lse, w->x, s_new, NULL, w->feat};
        if (st == ATTN_OK) st = attn__s2s_dec_step(ctx, m, &sc, d, w->ann, &io);
        if (st == ATTN_OK && g->wts) {
            attn_tensor q = attn_tensor_make(s_prev, ATTN_DTYPE_F32, B, 1, 1, d->Hd);
            attn_tensor k = attn_tensor_make(w->ann, ATTN_DTYPE_F32, B, d->S, 1, d->H2);
            attn_tensor l = attn_tensor_make(w->lse, ATTN_DTYPE_F32, B, 1, 1, 1);
            attn_tensor wt = attn_tensor_make(w->wts, ATTN_DTYPE_F32, B, 1, 1, d->S);
            st = attn_score_weights(ctx, &q, &k, &l, &sc.p, 0, &wt);
        }
        if (st == ATTN_OK) st = attn_nn_linear_forward(ctx, w->feat, B, d->F, m->out_w, m->out_b, d->V, w->logits);
        if (st == ATTN_OK) more = gen_emit(d, w, o->eos_id, cap, g);
    }
    return st;
}

attn_status attn_seq2seq_generate(attn_ctx *ctx, attn_seq2seq *m, const int32_t *src, int64_t B,
                              int64_t S, const int64_t *src_lens, const attn_nn_gen_opts *opts,
                              int32_t *out, int64_t cap, int64_t *n_out, float *attn_w)
{
    ATTN__NOT_NULL(__func__, ctx);
    attn_status st = check_generate(__func__, m, src, B, S, src_lens, opts, cap, n_out);
    if (st != ATTN_OK) return st;
    int64_t nout, nw;
    ATTN__MUL(__func__, B, cap, &nout);
    ATTN__MUL(__func__, nout, S, &nw);
    if (nout > 0) ATTN__NOT_NULL(__func__, out);
    attn__s2s_dims d = attn__s2s_make_dims(m, B, S, 1, src_lens); /* T = 1: one step's buffers (s holds 2) */
    attn__s2s_work w;
    if ((st = attn__s2s_work_alloc(__func__, &d, 0, &w)) != ATTN_OK) return st;
    gen_state g = {attn_calloc((size_t)B + 1, sizeof(int32_t)),
                   attn_calloc((size_t)nout + 1, sizeof(int32_t)),
                   attn_calloc((size_t)B + 1, sizeof(int64_t)),
                   attn_w ? attn_calloc((size_t)nw + 1, sizeof(float)) : NULL,
                   attn_calloc((size_t)B + 1, 1)};
    if (!g.ids || !g.out || !g.n || !g.done || (attn_w && !g.wts))
        st = attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    for (int64_t b = 0; b < B && st == ATTN_OK; b++) g.ids[b] = opts->bos_id;
    if (st == ATTN_OK) st = attn__s2s_encode(ctx, m, src, &d, &w, 0);
    if (st == ATTN_OK) st = gen_loop(ctx, m, &d, &w, opts, cap, &g);
    if (st == ATTN_OK) {
        if (nout > 0) memcpy(out, g.out, (size_t)nout * sizeof(int32_t));
        memcpy(n_out, g.n, (size_t)B * sizeof(int64_t));
        if (attn_w) memcpy(attn_w, g.wts, attn__s2s_fbytes(nw));
    }
    attn_release(g.ids);
    attn_release(g.out);
    attn_release(g.n);
    attn_release(g.wts);
    attn_release(g.done);
    attn__s2s_work_free(&w);
    return st;
}
