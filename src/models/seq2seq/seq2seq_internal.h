/* seq2seq_internal.h - the GRU encoder-decoder object and what its files
 * share: config.c (defaults, checks, JSON), weights.c (parameters), step.c
 * (activations, forward, loss, backward), generate.c (greedy decoding) and
 * checkpoint.c.
 *
 * A training step allocates one block for all its activations; gradients
 * of the step go to a private buffer (the cells' and views' d_* pointers)
 * and are added to the model's gradients only when the whole step has
 * succeeded, so a failing call leaves the model unchanged. */
#ifndef ATTN_SEQ2SEQ_INTERNAL_H
#define ATTN_SEQ2SEQ_INTERNAL_H

#include "nn/nn_private.h"

#include <attn/score.h>
#include <attn/seq2seq.h>

enum { ATTN__S2S_N_TENSORS = 22 };

struct attn_seq2seq {
    attn_seq2seq_config c;
    int64_t n_params, steps;
    /* [n_params] each: values, accumulated gradients, one call's gradients
     * (where the d_* views point), AdamW moments */
    float *params, *grads, *gtmp, *adam_m, *adam_v;
    attn_nn_param tensors[ATTN__S2S_N_TENSORS];
    float *src_emb, *tgt_emb, *init_w, *init_b, *wq, *wk, *ab, *va, *out_w, *out_b;
    float *d_src_emb, *d_tgt_emb, *d_init_w, *d_init_b, *d_wq, *d_wk, *d_ab, *d_va,
        *d_out_w, *d_out_b;
    attn_nn_gru enc;    /* bidirectional, E -> H per direction */
    attn_nn_gru_cell dec; /* E + 2H -> Hd */
};

static inline size_t attn__s2s_fbytes(int64_t count) { return (size_t)count * sizeof(float); }

/* ---- config.c ---------------------------------------------------------------------- */

/* attn_seq2seq_create's check of c: ATTN_NULL_ARG, ATTN_BAD_DIM for a size
 * out of range, ATTN_BAD_PARAM for 'init'. */
attn_status attn__s2s_config_check(const attn_seq2seq_config *c);

/* ---- weights.c --------------------------------------------------------------------- */

/* Parameters of a (valid) config: every dim <= 2^24, so no product overflows. */
int64_t attn__s2s_count_params(const attn_seq2seq_config *c);
/* The parameter block of m, for the update and checkpoints. */
attn__nn_paramset attn__s2s_params(const attn_seq2seq *m);

/* ---- step.c: what decoding shares with the training step ---------------------------- */

/* A call's sizes: B rows, S source and T target steps; lens [B] or NULL. */
typedef struct {
    int64_t B, S, T, E, H2, Hd, A, V, F, X, Ii;
    const int64_t *lens;
} attn__s2s_dims;

/* Buffers of a call (one block). Forward: xe [B,S,E], ann [B,S,2H],
 * hn [2,B,H], init_x [B,Ii], emb [B,T,E], s [T+1,B,Hd], c [T,B,2H],
 * lse [T,B], x [T,B,E+2H], gates [T,B,4Hd], feat [B,T,F], logits [B,T,V],
 * wts [B,S]. Backward (training only): dlogits [B,T,V], dfeat [B,T,F],
 * ds, ds2, dq [B,Hd], dx [B,E+2H], dc [B,2H], demb [B,T,E], dk, dv,
 * dann [B,S,2H], dinit [B,Ii], dhn [2,B,H], dxe [B,S,E], dpar [A*(Hd+2H+2)]. */
typedef struct {
    float *xe, *ann, *hn, *init_x, *emb, *s, *c, *lse, *x, *gates, *feat, *logits, *wts;
    float *dlogits, *dfeat, *ds, *ds2, *dq, *dx, *dc, *demb, *dk, *dv, *dann, *dinit, *dhn,
        *dxe, *dpar;
    attn_nn_gru_saved enc;
    float *block;
    attn_nn_attn_hook hook; /* the probe of each step's attention in backward, or NULL */
    void *hook_user;
} attn__s2s_work;

/* The additive scorer's parameter views, and the masks (source lengths). */
typedef struct {
    attn_tensor w[4];
    attn_score_params p;
} attn__s2s_scorer;

/* One decoder step for the B rows: c [B,2H] and lse [B] attend from s_prev
 * [B,Hd] over ann; x [B,E+2H] = [emb; c] (emb rows ld_e apart); s_new =
 * GRU(x, s_prev) with gates [B,4Hd] (or NULL); feat rows (ld_f apart) =
 * [s_new; c; emb]. */
typedef struct {
    const float *emb, *s_prev;
    int64_t ld_e, ld_f;
    float *c, *lse, *x, *s_new, *gates, *feat;
} attn__s2s_step_io;


attn__s2s_dims attn__s2s_make_dims(const attn_seq2seq *m, int64_t B, int64_t S, int64_t T,
                                   const int64_t *lens);
/* Carves w from one allocation (the backward buffers only if grads). */
attn_status attn__s2s_work_alloc(const char *fn, const attn__s2s_dims *d, int grads,
                                 attn__s2s_work *w);
void attn__s2s_work_free(attn__s2s_work *w);
void attn__s2s_scorer_init(const attn_seq2seq *m, const attn__s2s_dims *d, attn__s2s_scorer *s);
/* The encoder: xe, ann, hn and s_0 = w->s [B, Hd]; saved (w->enc) if asked. */
attn_status attn__s2s_encode(attn_ctx *ctx, const attn_seq2seq *m, const int32_t *src,
                             const attn__s2s_dims *d, attn__s2s_work *w, int save);
attn_status attn__s2s_dec_step(attn_ctx *ctx, const attn_seq2seq *m, const attn__s2s_scorer *sc,
                               const attn__s2s_dims *d, const float *ann,
                               const attn__s2s_step_io *io);
/* ATTN_BAD_DIM naming fn and name unless lo <= lens[b] <= S for every b
 * (lens may be NULL). */
attn_status attn__s2s_check_lens(const char *fn, const char *name, const int64_t *lens,
                                 int64_t B, int64_t lo, int64_t S);

#endif /* ATTN_SEQ2SEQ_INTERNAL_H */
