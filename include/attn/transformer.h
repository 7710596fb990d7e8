/* transformer.h - the transformer models of the toolkit (library attn_nn):
 * the encoder-decoder of Vaswani et al. and the decoder-only language model,
 * with the training step, the optimiser state, checkpoints and KV-cache
 * generation. Conventions are those of attn/nn.h. */
#ifndef ATTN_TRANSFORMER_H
#define ATTN_TRANSFORMER_H

#include <attn/nn.h>
#include <attn/safetensors.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- models (src/models/transformer) ------------------------------------- */


typedef enum attn_transformer_arch {
    ATTN_TRANSFORMER_ARCH_ENCDEC = 1,    /* encoder-decoder transformer (Vaswani et al.) */
    ATTN_TRANSFORMER_ARCH_DECODER = 2    /* decoder-only language model */
} attn_transformer_arch;

typedef struct attn_transformer_config {
    attn_transformer_arch arch;
    int64_t vocab;          /* shared by source and target */
    int64_t d_model, n_heads, n_kv_heads, d_ff;
    int64_t n_enc_layers;   /* ENCDEC only */
    int64_t n_dec_layers;
    int64_t max_len;        /* longest source or target sequence */
    int norm_first;         /* 1: pre-norm, 0: post-norm */
    attn_nn_norm norm;
    attn_nn_pos pos;
    attn_nn_act act;
    double norm_eps, dropout, attn_dropout, rope_theta;
    int tie_embeddings;     /* output projection = embedding table */
} attn_transformer_config;

ATTN_API attn_transformer_config attn_transformer_config_default(attn_transformer_arch arch);
/* JSON text of a config (for checkpoints), and back. The parser checks
 * every field's type and range. to_json writes at most cap bytes. */
ATTN_API attn_status attn_transformer_config_to_json(const attn_transformer_config *c, char *buf, size_t cap);
ATTN_API attn_status attn_transformer_config_from_json(const char *json, attn_transformer_config *c);

typedef struct attn_transformer attn_transformer;

/* Allocates parameters (initialised from seed), gradients and optimiser
 * state in one block each. */
ATTN_API attn_status attn_transformer_create(const attn_transformer_config *c, uint64_t seed,
                                          attn_transformer **out);
ATTN_API void attn_transformer_free(attn_transformer *m);
ATTN_API const attn_transformer_config *attn_transformer_get_config(const attn_transformer *m);
ATTN_API int64_t attn_transformer_param_count(const attn_transformer *m);

ATTN_API int64_t attn_transformer_n_tensors(const attn_transformer *m);
ATTN_API attn_status attn_transformer_tensor(const attn_transformer *m, int64_t i,
                                          attn_nn_param *out);

/* Forward + loss (+ backward into the gradients if grads != 0; gradients are
 * accumulated, zero them with attn_transformer_zero_grad). logits, if not NULL,
 * receives [B, S_tgt, vocab] ([S_tgt, vocab] for a packed batch).
 * *activation_bytes, if not NULL, receives the peak bytes of saved
 * activations (to show what checkpointing saves).
 *
 * The batch may be padded or packed (attn/nn.h, attn_nn_batch). A packed
 * batch gives the loss and gradients of the same sequences padded (up to
 * float32 rounding: sums run over other rows) while every layer works on
 * real tokens only and attention costs sum L_b^2 (sum Lt_b Ls_b across).
 * Dropout: the attention weights' masks are those of the padded batch
 * (drawn per sequence, as the core's packed calls do); the residual and
 * feed-forward masks are drawn over the rows as stored, so they differ
 * from the padded layout's (equally distributed, and still a pure
 * function of (seed, layout), which checkpointing recomputes exactly). */
ATTN_API attn_status attn_transformer_step(attn_ctx *ctx, attn_transformer *m,
                                        const attn_nn_batch *batch,
                                        const attn_nn_train_opts *opts, int grads,
                                        double *loss, float *logits,
                                        size_t *activation_bytes);
ATTN_API void attn_transformer_zero_grad(attn_transformer *m);

/* attn_transformer_step with backward (parameter gradients accumulate as
 * there) that also hands every attention call of the backward pass to
 * hook (attn/nn.h: attn_nn_attn_probe; stack 0 the encoder, 1 the decoder),
 * decoder blocks first, each block's calls last to first. With
 * attn_nn_attn_probe_weights the hook reads each layer's probabilities and
 * the gradient of the loss with respect to them: what `attn explain` needs.
 * ATTN_UNSUPPORTED with opts->training on a model with attention dropout,
 * and for a packed batch. */
ATTN_API attn_status attn_transformer_step_probe(attn_ctx *ctx, attn_transformer *m,
                                                 const attn_nn_batch *batch,
                                                 const attn_nn_train_opts *opts,
                                                 attn_nn_attn_hook hook, void *user,
                                                 double *loss);

/* Optimiser state lives in the model (AdamW moments and the step count).
 * Clips the global gradient norm if clip > 0 (writes it to *grad_norm),
 * then takes one AdamW step at learning rate lr. */
ATTN_API attn_status attn_transformer_update(attn_transformer *m, const attn_nn_adamw *opt,
                                          double lr, double clip, double *grad_norm);
ATTN_API int64_t attn_transformer_steps_taken(const attn_transformer *m);

/* Checkpoints: safetensors with the config JSON, the step and (if
 * with_optim) the AdamW moments, written atomically; see docs/checkpoint.md.
 * Loading checks every tensor's presence, dtype and shape against the
 * config stored in the file and gives ATTN_BAD_FILE on any mismatch. */
ATTN_API attn_status attn_transformer_save(const attn_transformer *m, const char *path,
                                        int with_optim, const char *const *meta_keys,
                                        const char *const *meta_values, int64_t n_meta);
ATTN_API attn_status attn_transformer_load(const char *path, attn_transformer **out);
ATTN_API attn_status attn_transformer_load_safetensors(const attn_safetensors *f, attn_transformer **out);

/* ---- generation (src/models/transformer/generate.c) ----------------------- */

/* Generates for one source (ENCDEC: src[0..src_len)) or one prompt
 * (DECODER: the prompt is src[0..src_len)), with a KV cache. Writes up to
 * cap tokens (EOS excluded) and their count. cross_attn, if not NULL,
 * receives the last decoder layer's cross-attention averaged over heads,
 * [n_out, src_len] (ENCDEC only; row r is the step that produced token r). */
ATTN_API attn_status attn_transformer_generate(attn_ctx *ctx, attn_transformer *m, const int32_t *src,
                                      int64_t src_len, const attn_nn_gen_opts *opts,
                                      int32_t *out, int64_t cap, int64_t *n_out,
                                      float *cross_attn);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_TRANSFORMER_H */
