/* transformer_internal.h - the transformer object and what its files share:
 * config.c (defaults, checks, JSON), weights.c (parameters), step.c
 * (forward, loss, backward), generate.c (KV-cache decoding) and
 * checkpoint.c. */
#ifndef ATTN_TRANSFORMER_INTERNAL_H
#define ATTN_TRANSFORMER_INTERNAL_H

#include "nn/nn_private.h"

#include <attn/transformer.h>

#include <stdbool.h>

/* A norm's parameters: gamma [d], beta [d] (NULL for RMSNorm). */
typedef struct {
    float *w, *b, *dw, *db;
} attn__nn_norm;

/* One transformer block: self-attention, cross-attention (decoder of the
 * encoder-decoder only) and the feed-forward network, each with its norm:
 * norm[0] self, norm[1] cross or feed-forward, norm[2] feed-forward. */
typedef struct {
    attn_nn_mha self, cross;
    bool has_cross;
    attn__nn_norm norm[3];
    float *w1, *b1, *w2, *b2;     /* linear1 [ff, d], [ff]; linear2 [d, ff], [d] */
    float *dw1, *db1, *dw2, *db2;
} attn__nn_block;

struct attn_transformer {
    attn_transformer_config c;
    int64_t n_params;
    float *params, *grads, *adam_m, *adam_v; /* [n_params] each */
    int64_t steps;                           /* AdamW steps taken */

    attn_nn_param *tensors;
    int64_t n_tensors, cap_tensors;
    char *names; /* all tensor names, NUL-separated */
    size_t names_len, names_cap;

    float *embed, *d_embed;     /* [vocab, d] */
    float *enc_pos, *d_enc_pos; /* learned [max_len, d] (ENCDEC) */
    float *dec_pos, *d_dec_pos; /* learned [max_len, d] */
    float *lm_head, *d_lm_head; /* [vocab, d], or the embedding if tied */
    attn__nn_block *enc, *dec;
    attn__nn_norm enc_norm, dec_norm;
    float *sinusoid; /* [max_len, d] table (sinusoidal positions) */
};

/* ATTN_OK if c is a valid config (config.c); attn_transformer_create's check. */
attn_status attn__transformer_config_check(const attn_transformer_config *c);

/* The parameter block of m (weights.c), for the update and checkpoints. */
attn__nn_paramset attn__transformer_params(const attn_transformer *m);

/* The order of sublayers in a block. */
enum { ATTN__SUB_SELF = 0, ATTN__SUB_CROSS = 1, ATTN__SUB_FFN = 2 };

/* y [n, d] = norm(x) with the model's norm kind; mean may be NULL for RMS. */
attn_status attn__nn_norm_forward(const attn_transformer *m, const attn__nn_norm *n,
                                  const float *x, int64_t rows, float *y, float *mean,
                                  float *rstd);
attn_status attn__nn_norm_backward(const attn_transformer *m, const attn__nn_norm *n,
                                   const float *x, int64_t rows, const float *mean,
                                   const float *rstd, const float *dy, float *dx);

/* x [rows, d] = embed[ids] * sqrt(d) + position(pos[r]) (sinusoidal or
 * learned table pos_table; none for RoPE). */
attn_status attn__nn_embed(const attn_transformer *m, const int32_t *ids, const int32_t *pos,
                           int64_t rows, const float *pos_table, float *x);

/* mem [len, d] = the encoder's output for one source (no dropout). */
attn_status attn__nn_encode(attn_ctx *ctx, attn_transformer *m, const int32_t *src, int64_t len,
                            float *mem);

/* RoPE positions enabled? */
static inline bool attn__nn_rope(const attn_transformer *m)
{
    return m->c.pos == ATTN_NN_POS_ROPE;
}

#endif /* ATTN_TRANSFORMER_INTERNAL_H */
