/* attn/seq2seq.h - the RNN encoder-decoder of the toolkit (library
 * attn_nn), the attention model of Bahdanau, Cho and Bengio (2015), on the
 * GRU of attn/nn.h: a bidirectional GRU encoder, a GRU
 * decoder and additive attention (attn/score.h, ATTN_SCORE_KIND_ADDITIVE).
 * docs/rnn.md has the equations and the tests.
 *
 * Conventions are those of attn/nn.h: float32, row-major, contiguous, shape
 * comments per buffer; forward functions overwrite their outputs, backward
 * functions ACCUMULATE (+=) into every gradient; errors are attn_status
 * codes with the detail in attn_last_error(), and nothing is written on
 * error. Compiles as C++.
 */
#ifndef ATTN_SEQ2SEQ_H
#define ATTN_SEQ2SEQ_H

#include <attn/nn.h>
#include <attn/safetensors.h>
#include <attn/score.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the Bahdanau et al. (2015) encoder-decoder (src/models/seq2seq) --------------------- */

/* How the decoder's first state s_0 is made from the encoder. */
typedef enum attn_seq2seq_init {
    ATTN_SEQ2SEQ_INIT_BACKWARD = 1, /* s_0 = tanh(W_init h<-_1 + b): the backward GRU's final
                                   state (the paper's choice); W_init [Hd, H] */
    ATTN_SEQ2SEQ_INIT_MEAN = 2      /* s_0 = tanh(W_init mean_j h_j + b) over the valid source
                                   positions; W_init [Hd, 2H] */
} attn_seq2seq_init;

/* Sizes. The encoder is a bidirectional GRU of hidden size H per direction,
 * so the annotations h_j = [h->_j; h<-_j] have 2H features. */
typedef struct attn_seq2seq_config {
    int64_t vocab;      /* shared by source and target (separate embeddings) */
    int64_t embed;      /* E: embedding size */
    int64_t hidden;     /* H: encoder GRU size per direction */
    int64_t dec_hidden; /* Hd: decoder GRU size */
    int64_t attn_dim;   /* A: the additive attention's hidden size */
    attn_seq2seq_init init;
} attn_seq2seq_config;

/* vocab 99, embed 64, hidden 128, dec_hidden 128, attn_dim 128, BACKWARD. */
ATTN_API attn_seq2seq_config attn_seq2seq_config_default(void);
/* JSON text of a config (at most cap bytes with the NUL), and back; the
 * parser checks every field's type and range and rejects unknown fields. */
ATTN_API attn_status attn_seq2seq_config_to_json(const attn_seq2seq_config *c, char *buf, size_t cap);
ATTN_API attn_status attn_seq2seq_config_from_json(const char *json, attn_seq2seq_config *c);

typedef struct attn_seq2seq attn_seq2seq;

/* Parameters (initialised from seed as torch does: embeddings N(0, 1), GRU
 * and linear weights and biases U(-1/sqrt(fan), 1/sqrt(fan)), attention
 * bias 0), gradients and AdamW moments, one block each. Tensor names:
 *   encoder.embedding.weight [V, E]
 *   encoder.gru.{weight_ih,weight_hh,bias_ih,bias_hh}_l0[_reverse]
 *   decoder.embedding.weight [V, E]
 *   decoder.init.weight [Hd, H or 2H], decoder.init.bias [Hd]
 *   decoder.attention.w_q [A, Hd], .w_k [A, 2H], .b [A], .v_a [A]
 *   decoder.gru.{weight_ih [3Hd, E+2H], weight_hh [3Hd, Hd], bias_ih, bias_hh}
 *   decoder.out.weight [V, Hd+2H+E], decoder.out.bias [V] */
ATTN_API attn_status attn_seq2seq_create(const attn_seq2seq_config *c, uint64_t seed,
                                           attn_seq2seq **out);
ATTN_API void attn_seq2seq_free(attn_seq2seq *m); /* accepts NULL */
ATTN_API const attn_seq2seq_config *attn_seq2seq_get_config(const attn_seq2seq *m);
ATTN_API int64_t attn_seq2seq_param_count(const attn_seq2seq *m);
ATTN_API int64_t attn_seq2seq_n_tensors(const attn_seq2seq *m);
/* Tensor i in [0, n_tensors), as attn_transformer_tensor (shape[2..3] = 0). */
ATTN_API attn_status attn_seq2seq_tensor(const attn_seq2seq *m, int64_t i,
                                           attn_nn_param *out);

/* Teacher-forced forward + loss on an encoder-decoder batch (attn/nn.h's
 * attn_nn_batch: src [B, S_src] with src_lens in [0, S_src], tgt_in,
 * tgt_out [B, S_tgt], labels equal to pad_id ignored). At decoder step i:
 *
 *   c_i    = sum_j softmax_j(v_a . tanh(W_q s_{i-1} + W_k h_j + b)) h_j
 *   s_i    = GRU([emb(y_{i-1}); c_i], s_{i-1})
 *   logits = W_out [s_i; c_i; emb(y_{i-1})] + b_out
 *
 * *loss = mean cross-entropy (attn_nn_cross_entropy with label_smoothing).
 * With grads != 0, backward through time ACCUMULATES into the gradients
 * (attn_seq2seq_zero_grad). logits, if not NULL, receives
 * [B, S_tgt, vocab]. The attention runs on ctx (its threads). */
ATTN_API attn_status attn_seq2seq_step(attn_ctx *ctx, attn_seq2seq *m,
                                         const attn_nn_batch *batch, double label_smoothing,
                                         int grads, double *loss, float *logits);
ATTN_API void attn_seq2seq_zero_grad(attn_seq2seq *m);

/* attn_seq2seq_step with backward (no label smoothing; the parameter
 * gradients accumulate as there) that hands each decoder step's attention
 * to hook (attn/nn.h: attn_nn_attn_probe with stack 1, layer 0, cross 1,
 * row = the step i, score = the additive scorer; q [B, 1, 1, Hd] = s_i,
 * k = v = the annotations [B, S_src, 1, 2H], d_o = dL/dc_i), from the last
 * step to the first. What `attn explain` reads dL/d(attention weights)
 * from (attn_nn_attn_probe_weights). */
ATTN_API attn_status attn_seq2seq_step_probe(attn_ctx *ctx, attn_seq2seq *m,
                                             const attn_nn_batch *batch, attn_nn_attn_hook hook,
                                             void *user, double *loss);
/* Clips the global gradient norm if clip > 0 (the norm before clipping goes
 * to *grad_norm, which may be NULL) and takes one AdamW step at rate lr
 * (weight decay on matrices and embeddings only). */
ATTN_API attn_status attn_seq2seq_update(attn_seq2seq *m, const attn_nn_adamw *opt,
                                           double lr, double clip, double *grad_norm);
ATTN_API int64_t attn_seq2seq_steps_taken(const attn_seq2seq *m);

/* Greedy decoding of B sources src [B, S] with lengths src_lens [B]
 * (1 <= src_lens[b] <= S), all rows at once: out [B, cap] receives each
 * row's tokens up to (excluding) EOS, at most min(cap, opts->max_new), and
 * n_out [B] their counts. attn_w, if not NULL, receives [B, cap, S]: row r
 * of source b holds the attention weights of the step that produced token r
 * (0 past the row's length and past n_out[b]). opts->beam must be 1. */
ATTN_API attn_status attn_seq2seq_generate(attn_ctx *ctx, attn_seq2seq *m, const int32_t *src,
                                       int64_t B, int64_t S, const int64_t *src_lens,
                                       const attn_nn_gen_opts *opts, int32_t *out, int64_t cap,
                                       int64_t *n_out, float *attn_w);

/* Checkpoints: safetensors with every parameter by name, optionally the
 * AdamW moments ("optim.m.<name>", "optim.v.<name>"), and in __metadata__
 * "attn.format" = "attn-rnn-checkpoint-1", "attn.config" (the JSON of the
 * config) and "attn.step", plus the caller's n_meta pairs. Written
 * atomically. Loading treats the file as untrusted: the config is parsed
 * strictly, and every tensor must be present as F32 with exactly the shape
 * the config implies, finite, with nothing extra (ATTN_BAD_FILE). */
ATTN_API attn_status attn_seq2seq_save(const attn_seq2seq *m, const char *path,
                                         int with_optim, const char *const *meta_keys,
                                         const char *const *meta_values, int64_t n_meta);
ATTN_API attn_status attn_seq2seq_load(const char *path, attn_seq2seq **out);
ATTN_API attn_status attn_seq2seq_load_safetensors(const attn_safetensors *f, attn_seq2seq **out);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_SEQ2SEQ_H */
