/* attn_nn.h - the transformer toolkit built on attn.h: layers with forward
 * and backward, the multi-head attention module, models (encoder-decoder
 * and decoder-only), training (loss, AdamW, clipping, schedules) and
 * safetensors files (checkpoints and pretrained weights).
 *
 * Conventions, for every function here:
 *   - float32, row-major, contiguous. A shape comment gives each buffer,
 *     e.g. x [n, d]: n rows of d floats.
 *   - Forward functions overwrite their outputs.
 *   - Backward functions ACCUMULATE (+=) into every gradient they write
 *     (dx, dw, db, ...), so residual branches and shared weights add up;
 *     zero the buffers first. A gradient pointer may be NULL when not wanted
 *     (where noted).
 *   - Matrices follow PyTorch's layout: a linear weight is [out, in] and
 *     y = x w^T + b, so a torch state_dict maps to attn_nn tensors by name.
 *   - Errors: status codes of attn.h, detail in attn_last_error(); on error
 *     nothing is written. Allocation goes through attn_alloc (the hook).
 */
#ifndef ATTN_NN_H
#define ATTN_NN_H

#include <attn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- layers (src/nn/layers.c) --------------------------------------------- */

/* y [n, out] = x [n, in] w^T + b;  w [out, in], b [out] or NULL. CBLAS sgemm. */
ATTN_API attn_status attn_nn_linear_forward(const float *x, int64_t n, int64_t in,
                                            const float *w, const float *b,
                                            int64_t out, float *y);
/* dx [n, in] += dy w;  dw [out, in] += dy^T x;  db [out] += sum_rows dy.
 * dx, dw, db may each be NULL. */
ATTN_API attn_status attn_nn_linear_backward(const float *x, int64_t n, int64_t in,
                                             const float *w, int64_t out,
                                             const float *dy, float *dx, float *dw,
                                             float *db);

/* y [n, d] = table [vocab, d] rows ids[0..n); an id outside [0, vocab) is
 * ATTN_BAD_PARAM naming its position. */
ATTN_API attn_status attn_nn_embedding_forward(const int32_t *ids, int64_t n,
                                               const float *table, int64_t vocab,
                                               int64_t d, float *y);
/* dtable [vocab, d] rows ids[r] += dy [n, d] row r. */
ATTN_API attn_status attn_nn_embedding_backward(const int32_t *ids, int64_t n,
                                                int64_t vocab, int64_t d,
                                                const float *dy, float *dtable);

/* LayerNorm over the last dim: y = (x - mean) * rstd * gamma + beta.
 * mean, rstd [n] are saved for backward (may be NULL in forward). beta may be
 * NULL (no bias). eps > 0. */
ATTN_API attn_status attn_nn_layernorm_forward(const float *x, int64_t n, int64_t d,
                                               const float *gamma, const float *beta,
                                               double eps, float *y, float *mean,
                                               float *rstd);
ATTN_API attn_status attn_nn_layernorm_backward(const float *x, int64_t n, int64_t d,
                                                const float *gamma, const float *mean,
                                                const float *rstd, const float *dy,
                                                float *dx, float *dgamma, float *dbeta);
/* RMSNorm: y = x * rstd * gamma, rstd = 1/sqrt(mean(x^2) + eps)
 * (torch.nn.RMSNorm). rstd [n] saved for backward. */
ATTN_API attn_status attn_nn_rmsnorm_forward(const float *x, int64_t n, int64_t d,
                                             const float *gamma, double eps, float *y,
                                             float *rstd);
ATTN_API attn_status attn_nn_rmsnorm_backward(const float *x, int64_t n, int64_t d,
                                              const float *gamma, const float *rstd,
                                              const float *dy, float *dx,
                                              float *dgamma);

typedef enum attn_nn_act {
    ATTN_NN_GELU = 1, /* exact (erf) GELU, torch's default */
    ATTN_NN_RELU = 2
} attn_nn_act;
/* y [count] = act(x); in-place (y == x) allowed in forward. */
ATTN_API attn_status attn_nn_act_forward(attn_nn_act act, const float *x, int64_t count,
                                         float *y);
/* dx += act'(x) * dy. */
ATTN_API attn_status attn_nn_act_backward(attn_nn_act act, const float *x, int64_t count,
                                          const float *dy, float *dx);

/* Inverted dropout: y = keep ? x / (1 - p) : 0, where keep of element e is a
 * pure function of (seed, offset + e) (Philox4x32-10; see docs/nn.md), so
 * backward regenerates it. 0 <= p < 1; in-place allowed. */
ATTN_API attn_status attn_nn_dropout_forward(const float *x, int64_t count, double p,
                                             uint64_t seed, uint64_t offset, float *y);
ATTN_API attn_status attn_nn_dropout_backward(const float *dy, int64_t count, double p,
                                              uint64_t seed, uint64_t offset, float *dx);
/* 1 if element e is kept (the function both directions use). */
ATTN_API int attn_nn_dropout_keep(uint64_t seed, uint64_t offset, double p, int64_t e);

/* Sinusoidal positions (Vaswani et al.): table [n_pos, d],
 * table[p][2i] = sin(p / 10000^(2i/d)), table[p][2i+1] = cos(same). */
ATTN_API attn_status attn_nn_sinusoidal(int64_t n_pos, int64_t d, float *table);

/* Rotary positions (RoFormer, rotate-half / GPT-NeoX pairing): x [n, heads,
 * hd] with hd even, token r at position pos[r]; for i < hd/2 the pair
 * (x[i], x[i + hd/2]) is rotated by angle pos * theta^(-2i/hd).
 * Backward rotates dy by the opposite angle: dx += R^T dy. In-place allowed
 * in forward. */
ATTN_API attn_status attn_nn_rope_forward(const float *x, int64_t n, int64_t heads,
                                          int64_t hd, const int32_t *pos, double theta,
                                          float *y);
ATTN_API attn_status attn_nn_rope_backward(const float *dy, int64_t n, int64_t heads,
                                           int64_t hd, const int32_t *pos, double theta,
                                           float *dx);

/* Cross-entropy of logits [n, vocab] against targets [n], as
 * torch.nn.functional.cross_entropy(label_smoothing=ls, ignore_index=ignore,
 * reduction='mean'): rows whose target == ignore are skipped, and the mean
 * is over the rest. Writes *loss (0 if no row counts) and *count (rows
 * counted, may be NULL). dlogits [n, vocab], if not NULL, is OVERWRITTEN
 * with d(loss)/d(logits) times grad_scale (ignored rows get 0). */
ATTN_API attn_status attn_nn_cross_entropy(const float *logits, int64_t n, int64_t vocab,
                                           const int32_t *targets, int32_t ignore,
                                           double label_smoothing, double grad_scale,
                                           double *loss, int64_t *count,
                                           float *dlogits);

/* ---- optimisation (src/nn/optim.c) ---------------------------------------- */

typedef struct attn_nn_adamw {
    double lr, beta1, beta2, eps, weight_decay;
} attn_nn_adamw;
/* torch.optim.AdamW defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
 * weight_decay 1e-2. */
ATTN_API attn_nn_adamw attn_nn_adamw_default(void);
/* One AdamW step (torch.optim.AdamW semantics, step counted from 1):
 *   p *= 1 - lr * wd * decay;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * over count floats; decay is 0 or 1 (no weight decay for this tensor). */
ATTN_API attn_status attn_nn_adamw_step(const attn_nn_adamw *opt, int64_t step,
                                        float *param, const float *grad, float *m,
                                        float *v, int64_t count, int decay);
/* Global L2 norm of n_bufs gradient buffers; if it exceeds max_norm (> 0),
 * scales them all by max_norm / (norm + 1e-6) as
 * torch.nn.utils.clip_grad_norm_. Writes the norm before clipping. */
ATTN_API attn_status attn_nn_clip_grad_norm(float *const *bufs, const int64_t *counts,
                                            int n_bufs, double max_norm, double *norm);

typedef enum attn_nn_schedule {
    ATTN_NN_SCHED_CONSTANT = 0, /* warm-up, then base_lr */
    ATTN_NN_SCHED_COSINE = 1,   /* warm-up, then cosine from base_lr to min_lr at total */
    ATTN_NN_SCHED_INVSQRT = 2   /* warm-up, then base_lr * sqrt(warmup / step) */
} attn_nn_schedule;
/* The learning rate of step (counted from 1): linear warm-up from
 * base_lr / warmup at step 1 to base_lr at step warmup, then the decay. */
ATTN_API double attn_nn_lr(attn_nn_schedule kind, int64_t step, int64_t warmup,
                           int64_t total, double base_lr, double min_lr);

/* ---- safetensors files (src/nn/safetensors.c) ------------------------------- */

/* The safetensors format: 8-byte little-endian header length N, N bytes of
 * JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "string", ...}}, then the data. A file is read as
 * untrusted input: the header length, the JSON, every dtype, shape and
 * offset are checked against the file size before anything is used; any
 * inconsistency is ATTN_BAD_FILE naming what is wrong. */
typedef enum attn_st_dtype {
    ATTN_ST_F32 = 1,
    ATTN_ST_F16 = 2,
    ATTN_ST_BF16 = 3,
    ATTN_ST_F64 = 4,
    ATTN_ST_I64 = 5,
    ATTN_ST_I32 = 6,
    ATTN_ST_U8 = 7,
    ATTN_ST_BOOL = 8
} attn_st_dtype;

enum { ATTN_ST_MAX_DIMS = 8 };

typedef struct attn_st_file attn_st_file;

/* Reads and validates a whole file. */
ATTN_API attn_status attn_st_open(const char *path, attn_st_file **out);
/* The same from memory (copied). */
ATTN_API attn_status attn_st_open_memory(const void *data, size_t size,
                                         attn_st_file **out);
ATTN_API void attn_st_close(attn_st_file *f); /* accepts NULL */

ATTN_API int64_t attn_st_count(const attn_st_file *f);
typedef struct attn_st_info {
    const char *name; /* owned by the file */
    attn_st_dtype dtype;
    int ndim;
    int64_t shape[ATTN_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* little-endian bytes inside the file image */
    size_t bytes;
} attn_st_info;
/* Tensor index in [0, count), in file order. */
ATTN_API attn_status attn_st_get(const attn_st_file *f, int64_t index, attn_st_info *info);
/* By name: ATTN_BAD_FILE "missing tensor <name>" if absent. */
ATTN_API attn_status attn_st_find(const attn_st_file *f, const char *name,
                                  attn_st_info *info);
/* Copies tensor `name` into dst as float32 (F32, F16, BF16 and F64 are
 * converted), after checking that its shape is exactly shape[0..ndim). */
ATTN_API attn_status attn_st_read_f32(const attn_st_file *f, const char *name, int ndim,
                                      const int64_t *shape, float *dst);
/* A __metadata__ value, or NULL if the key is absent. */
ATTN_API const char *attn_st_metadata(const attn_st_file *f, const char *key);

typedef struct attn_st_entry {
    const char *name;
    attn_st_dtype dtype;
    int ndim;
    int64_t shape[ATTN_ST_MAX_DIMS];
    const void *data; /* numel * element size bytes */
} attn_st_entry;
/* Writes a safetensors file atomically: to "<path>.tmp", flushed and
 * fsync'ed, then renamed over path, so an existing file is never lost.
 * meta_keys/meta_values: n_meta strings for __metadata__ (may be 0). */
ATTN_API attn_status attn_st_save(const char *path, const attn_st_entry *entries,
                                  int64_t n, const char *const *meta_keys,
                                  const char *const *meta_values, int64_t n_meta);

/* ---- the multi-head attention module (src/nn/mha.c) ------------------------ */

/* torch.nn.MultiheadAttention(E, H, batch_first=True) and its grouped-query
 * generalisation. Weights (pointers into the caller's parameter memory, names
 * as in torch's state_dict):
 *   packed (kdim == vdim == E, Hkv == H): in_proj_weight [3E, E], in_proj_bias [3E]
 *   separate: q_proj_weight [H*hd, E], k_proj_weight [Hkv*hd, kdim],
 *             v_proj_weight [Hkv*hd, vdim], in_proj_bias [(H + 2 Hkv) hd] or NULL
 *   out_proj.weight [E, H*hd], out_proj.bias [E] or NULL.
 */
typedef struct attn_nn_mha {
    int64_t embed_dim, n_heads, n_kv_heads, head_dim, kdim, vdim;
    int packed;
    float *in_proj_weight, *in_proj_bias;           /* packed */
    float *q_proj_weight, *k_proj_weight, *v_proj_weight; /* separate */
    float *out_proj_weight, *out_proj_bias;
    /* gradients, same shapes (NULL when not training) */
    float *d_in_proj_weight, *d_in_proj_bias;
    float *d_q_proj_weight, *d_k_proj_weight, *d_v_proj_weight;
    float *d_out_proj_weight, *d_out_proj_bias;
} attn_nn_mha;

/* What one call attends to. */
typedef struct attn_nn_mha_opts {
    int causal;               /* top-left causal (torch is_causal) */
    const int64_t *k_lens;    /* [B] keys j >= k_lens[b] masked, or NULL */
    const uint8_t *key_keep;  /* [B, Sk] nonzero = attend, or NULL. NOTE: the
                                 opposite polarity of torch's key_padding_mask */
    double dropout_p;         /* on the attention weights (training) */
    uint64_t seed, offset;    /* dropout stream */
    const int32_t *rope_pos;  /* [B*Sq] / [B*Sk] positions if RoPE, or NULL */
    const int32_t *rope_kpos;
    double rope_theta;
} attn_nn_mha_opts;

/* Saved activations of one forward call, for backward (owned by the caller;
 * attn_nn_mha_saved_free releases its buffers). */
typedef struct attn_nn_mha_saved {
    int64_t B, Sq, Sk;
    float *q, *k, *v; /* projected (and rotated) [B,Sq,H,hd], [B,Sk,Hkv,hd] */
    float *o, *lse;   /* attention output [B,Sq,H,hd], LSE [B,H,Sq] */
} attn_nn_mha_saved;
ATTN_API void attn_nn_mha_saved_free(attn_nn_mha_saved *s);

/* out [B, Sq, E] = MHA(query [B, Sq, E], kv [B, Sk, kdim]); pass kv == query
 * for self-attention. The value input is kv too (so kdim == vdim).
 * weights, if not NULL: attention probabilities as torch's need_weights:
 * [B, Sq, Sk] averaged over heads if average, else [B, H, Sq, Sk].
 * saved, if not NULL, receives what backward needs. */
ATTN_API attn_status attn_nn_mha_forward(attn_ctx *ctx, const attn_nn_mha *m,
                                         const float *query, const float *kv, int64_t B,
                                         int64_t Sq, int64_t Sk,
                                         const attn_nn_mha_opts *opts, float *out,
                                         float *weights, int average,
                                         attn_nn_mha_saved *saved);
/* d_query [B,Sq,E] += ...; d_kv [B,Sk,kdim] += ... (for self-attention pass
 * the same pointer for both); parameter gradients accumulate into m->d_*. */
ATTN_API attn_status attn_nn_mha_backward(attn_ctx *ctx, const attn_nn_mha *m,
                                          const float *query, const float *kv,
                                          const attn_nn_mha_opts *opts,
                                          const attn_nn_mha_saved *saved,
                                          const float *d_out, float *d_query,
                                          float *d_kv);

/* ---- models (src/nn/model.c) ------------------------------------------------ */

typedef enum attn_nn_arch {
    ATTN_NN_ENCDEC = 1,    /* encoder-decoder transformer (Vaswani et al.) */
    ATTN_NN_DECODER = 2    /* decoder-only language model */
} attn_nn_arch;
typedef enum attn_nn_norm { ATTN_NN_LAYERNORM = 1, ATTN_NN_RMSNORM = 2 } attn_nn_norm;
typedef enum attn_nn_pos {
    ATTN_NN_POS_SINUSOIDAL = 1,
    ATTN_NN_POS_LEARNED = 2,
    ATTN_NN_POS_ROPE = 3
} attn_nn_pos;

typedef struct attn_nn_config {
    attn_nn_arch arch;
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
} attn_nn_config;

ATTN_API attn_nn_config attn_nn_config_default(attn_nn_arch arch);
/* JSON text of a config (for checkpoints), and back. The parser checks
 * every field's type and range. to_json writes at most cap bytes. */
ATTN_API attn_status attn_nn_config_to_json(const attn_nn_config *c, char *buf, size_t cap);
ATTN_API attn_status attn_nn_config_from_json(const char *json, attn_nn_config *c);

typedef struct attn_nn_model attn_nn_model;

/* Allocates parameters (initialised from seed), gradients and optimiser
 * state in one block each. */
ATTN_API attn_status attn_nn_model_create(const attn_nn_config *c, uint64_t seed,
                                          attn_nn_model **out);
ATTN_API void attn_nn_model_free(attn_nn_model *m);
ATTN_API const attn_nn_config *attn_nn_model_config(const attn_nn_model *m);
ATTN_API int64_t attn_nn_model_param_count(const attn_nn_model *m);

/* The parameter tensors, by index in [0, n_tensors): name (torch-style),
 * shape, value and gradient pointers. */
typedef struct attn_nn_param {
    const char *name;
    int ndim;
    int64_t shape[4];
    int64_t numel;
    float *value, *grad;
    int decay; /* AdamW weight decay applies (matrices and embeddings) */
} attn_nn_param;
ATTN_API int64_t attn_nn_model_n_tensors(const attn_nn_model *m);
ATTN_API attn_status attn_nn_model_tensor(const attn_nn_model *m, int64_t i,
                                          attn_nn_param *out);

/* A batch. Token ids are int32 in [0, vocab). ENCDEC: src [B, S_src] with
 * src_lens, tgt_in [B, S_tgt] (decoder input, starting with BOS) and tgt_out
 * [B, S_tgt] (labels; pad_id is ignored by the loss). DECODER: tgt_in and
 * tgt_out only (src NULL). Rows are padded to the longest; positions
 * beyond a length are never attended. */
typedef struct attn_nn_batch {
    int64_t B, S_src, S_tgt;
    const int32_t *src, *tgt_in, *tgt_out;
    const int64_t *src_lens, *tgt_lens;
    int32_t pad_id;
} attn_nn_batch;

typedef struct attn_nn_train_opts {
    int training;            /* 1: dropout on */
    uint64_t seed;           /* dropout stream of this step */
    double label_smoothing;
    int checkpointing;       /* recompute each block in backward */
} attn_nn_train_opts;

/* Forward + loss (+ backward into the gradients if grads != 0; gradients are
 * accumulated, zero them with attn_nn_model_zero_grad). logits, if not NULL,
 * receives [B, S_tgt, vocab]. *activation_bytes, if not NULL, receives the
 * peak bytes of saved activations (to show what checkpointing saves). */
ATTN_API attn_status attn_nn_model_step(attn_ctx *ctx, attn_nn_model *m,
                                        const attn_nn_batch *batch,
                                        const attn_nn_train_opts *opts, int grads,
                                        double *loss, float *logits,
                                        size_t *activation_bytes);
ATTN_API void attn_nn_model_zero_grad(attn_nn_model *m);

/* Optimiser state lives in the model (AdamW moments and the step count).
 * Clips the global gradient norm if clip > 0 (writes it to *grad_norm),
 * then takes one AdamW step at learning rate lr. */
ATTN_API attn_status attn_nn_model_update(attn_nn_model *m, const attn_nn_adamw *opt,
                                          double lr, double clip, double *grad_norm);
ATTN_API int64_t attn_nn_model_steps_taken(const attn_nn_model *m);

/* Checkpoints: safetensors with the config JSON, the step and (if
 * with_optim) the AdamW moments, written atomically; see docs/checkpoint.md.
 * Loading checks every tensor's presence, dtype and shape against the
 * config stored in the file and gives ATTN_BAD_FILE on any mismatch. */
ATTN_API attn_status attn_nn_model_save(const attn_nn_model *m, const char *path,
                                        int with_optim, const char *const *meta_keys,
                                        const char *const *meta_values, int64_t n_meta);
ATTN_API attn_status attn_nn_model_load(const char *path, attn_nn_model **out);
ATTN_API attn_status attn_nn_model_load_file(const attn_st_file *f, attn_nn_model **out);

/* ---- generation (src/nn/generate.c) ------------------------------------------- */

typedef struct attn_nn_gen_opts {
    int32_t bos_id, eos_id;
    int64_t max_new;      /* tokens to generate at most */
    int64_t beam;         /* 1: greedy */
    double length_penalty; /* beam score = logprob / len^alpha (GNMT-style) */
} attn_nn_gen_opts;

/* Generates for one source (ENCDEC: src[0..src_len)) or one prompt
 * (DECODER: the prompt is src[0..src_len)), with a KV cache. Writes up to
 * cap tokens (EOS excluded) and their count. cross_attn, if not NULL,
 * receives the last decoder layer's cross-attention averaged over heads,
 * [n_out, src_len] (ENCDEC only; row r is the step that produced token r). */
ATTN_API attn_status attn_nn_generate(attn_ctx *ctx, attn_nn_model *m, const int32_t *src,
                                      int64_t src_len, const attn_nn_gen_opts *opts,
                                      int32_t *out, int64_t cap, int64_t *n_out,
                                      float *cross_attn);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_NN_H */
