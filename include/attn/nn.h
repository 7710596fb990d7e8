/* attn/nn.h - the neural-network layers of the toolkit (library attn_nn),
 * built on attn/attn.h: layers with forward and backward (linear,
 * embedding, norms, activations, dropout, positions, cross-entropy), the
 * optimiser (AdamW, clipping, schedules), the multi-head attention module,
 * the GRU, and what the models of attn/transformer.h and attn/seq2seq.h
 * share (parameter descriptors, batches, training and generation options).
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
 *   - Errors: status codes of attn/attn.h, detail in attn_last_error(); on error
 *     nothing is written. Allocation goes through attn_alloc (the hook).
 */
#ifndef ATTN_NN_H
#define ATTN_NN_H

#include <attn/attn.h>
#include <attn/score.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- layers (src/nn/layers.c) --------------------------------------------- */

/* y [n, out] = x [n, in] w^T + b;  w [out, in], b [out] or NULL. The
 * product runs on the GEMM of libattn (ctx's kernel choice and threads);
 * the result is the same for every thread count. */
ATTN_API attn_status attn_nn_linear_forward(attn_ctx *ctx, const float *x, int64_t n,
                                            int64_t in, const float *w, const float *b,
                                            int64_t out, float *y);
/* dx [n, in] += dy w;  dw [out, in] += dy^T x;  db [out] += sum_rows dy.
 * dx, dw, db may each be NULL. */
ATTN_API attn_status attn_nn_linear_backward(attn_ctx *ctx, const float *x, int64_t n,
                                             int64_t in, const float *w, int64_t out,
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
    ATTN_NN_ACT_GELU = 1, /* exact (erf) GELU, torch's default */
    ATTN_NN_ACT_RELU = 2
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
    ATTN_NN_SCHEDULE_CONSTANT = 0, /* warm-up, then base_lr */
    ATTN_NN_SCHEDULE_COSINE = 1,   /* warm-up, then cosine from base_lr to min_lr at total */
    ATTN_NN_SCHEDULE_INVSQRT = 2   /* warm-up, then base_lr * sqrt(warmup / step) */
} attn_nn_schedule;
/* *lr = the learning rate of step (counted from 1): linear warm-up from
 * base_lr / warmup at step 1 to base_lr at step warmup, then the decay.
 * warmup = 0: no warm-up. ATTN_BAD_PARAM for an unknown kind, step < 1,
 * warmup < 0, or a rate that is negative or not finite. */
ATTN_API attn_status attn_nn_lr(attn_nn_schedule kind, int64_t step, int64_t warmup,
                                int64_t total, double base_lr, double min_lr, double *lr);

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
    /* A packed variable-length batch (attn.h's params.cu_seqlens_q/k), or
     * n_seqs 0 and both NULL: the call takes B = 1, and query [Sq, E] and
     * kv [Sk, kdim] hold n_seqs >= 1 sequences back to back; sequence s is
     * the query rows cu_seqlens_q[s] .. cu_seqlens_q[s+1]-1 and the key
     * rows cu_seqlens_k[s] .. cu_seqlens_k[s+1]-1 (cu_seqlens_k NULL: the
     * query offsets, for self-attention; then Sk must equal Sq). Each
     * sequence attends to its own keys only: causal is top-left within it
     * (for self-attention, where Lq = Lk, both alignments agree), dropout
     * draws as in the padded batch of n_seqs rows with k_lens, and the
     * projections run on real rows only; the attention work is
     * sum Lq_s * Lk_s. rope_pos / rope_kpos give each packed row its
     * position within its sequence. The offsets (n_seqs + 1 each) must
     * start at 0, never decrease and end at Sq (Sk), else ATTN_BAD_PARAM
     * naming the entry; so are B != 1 and k_lens beside them; key_keep is
     * ATTN_UNSUPPORTED with them. weights, if asked, are [1, Sq, Sk]
     * (average) or [1, H, Sq, Sk], 0 outside each row's sequence. */
    int64_t n_seqs;
    const int64_t *cu_seqlens_q, *cu_seqlens_k;
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

/* ---- looking inside attention during a backward pass (src/nn/probe.c) ------- */

/* One attention call as a model's backward pass meets it, for explanations
 * (`attn explain`): the core's inputs and LSE saved by the forward, and the
 * gradient d_o at the core's output (before the output projection). The
 * views and params point into the model's buffers: valid during the hook
 * call only. */
typedef struct attn_nn_attn_probe {
    int stack;       /* 0: an encoder (BERT's stack), 1: a decoder (also decoder-only) */
    int64_t layer;   /* block index in the stack, from 0 */
    int cross;       /* 1: cross-attention (decoder queries, encoder keys) */
    attn_tensor q;   /* [B, Sq, Hq, D] */
    attn_tensor k;   /* [B, Sk, Hkv, D] */
    attn_tensor v;   /* [B, Sk, Hkv, Dv] */
    attn_tensor lse; /* [B, Hq, Sq, 1] */
    attn_tensor d_o; /* [B, Sq, Hq, Dv] */
    const attn_sdpa_params *params; /* the forward's masks and options (dot product) */
    /* A learned scoring function (attn/score.h; its masks in score->masks)
     * in place of the scaled dot product, or NULL (then params applies). */
    const attn_score_params *score;
    int64_t row; /* the first query position of the call: a recurrent
                    decoder's step, 0 for a whole sequence */
} attn_nn_attn_probe;

/* Called once per attention call of a backward pass, from the last block
 * to the first (in a decoder block, cross-attention before
 * self-attention). A status other than ATTN_OK stops the pass, which
 * returns it. */
typedef attn_status (*attn_nn_attn_hook)(attn_ctx *ctx, const attn_nn_attn_probe *p,
                                         void *user);

/* From a probe (float32 tensors): w [B, Hq, Sq, Sk] = the attention
 * probabilities (attn_sdpa_weights, or attn_score_weights with p->score,
 * from q, k and lse), and dw [B, Hq, Sq, Sk] = the gradient of the loss with
 * respect to them, dP = dO V^T per head (query head h reads value head
 * h / (Hq / Hkv)); both 0 for padding rows and keys (the masks' q_lens,
 * k_lens), whose V is never read. Either output may be NULL. The masks'
 * dropout_p must be 0 and they must not be packed (cu_seqlens_q):
 * ATTN_UNSUPPORTED otherwise. */
ATTN_API attn_status attn_nn_attn_probe_weights(attn_ctx *ctx, const attn_nn_attn_probe *p,
                                                float *w, float *dw);

/* ---- what models share: parameters, batches, training and generation options ---- */

typedef enum attn_nn_norm { ATTN_NN_NORM_LAYERNORM = 1, ATTN_NN_NORM_RMSNORM = 2 } attn_nn_norm;
typedef enum attn_nn_pos {
    ATTN_NN_POS_SINUSOIDAL = 1,
    ATTN_NN_POS_LEARNED = 2,
    ATTN_NN_POS_ROPE = 3
} attn_nn_pos;

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

/* A batch of B sequences. Token ids are int32 in [0, vocab).
 *
 * Padded (cu_seqlens_src and cu_seqlens_tgt NULL): ENCDEC: src [B, S_src]
 * with src_lens, tgt_in [B, S_tgt] (decoder input, starting with BOS) and
 * tgt_out [B, S_tgt] (labels; pad_id is ignored by the loss). DECODER:
 * tgt_in and tgt_out only (src NULL). Rows are padded to the longest;
 * positions beyond a length are never attended.
 *
 * Packed (attn_transformer_step only; the other models refuse it): the
 * sequences lie back to back with no padding. src [S_src] holds S_src
 * source tokens in all, sequence b at cu_seqlens_src[b] ..
 * cu_seqlens_src[b+1]-1; tgt_in and tgt_out [S_tgt] hold the targets at
 * cu_seqlens_tgt[b] .. cu_seqlens_tgt[b+1]-1 (source b's target in the
 * encoder-decoder). Each array has B + 1 entries, starts at 0, rises by
 * 1 to max_len per sequence and ends at S_src (S_tgt): else
 * ATTN_BAD_PARAM naming the entry (two arrays of different lengths show
 * as one that does not end at its total). src_lens and tgt_lens must be
 * NULL (the offsets give the lengths); DECODER takes cu_seqlens_tgt only.
 * Positions restart at 0 in each sequence; pad_id in tgt_out is still
 * ignored by the loss. */
typedef struct attn_nn_batch {
    int64_t B, S_src, S_tgt;
    const int32_t *src, *tgt_in, *tgt_out;
    const int64_t *src_lens, *tgt_lens;
    int32_t pad_id;
    const int64_t *cu_seqlens_src, *cu_seqlens_tgt;
} attn_nn_batch;

typedef struct attn_nn_train_opts {
    int training;            /* 1: dropout on */
    uint64_t seed;           /* dropout stream of this step */
    double label_smoothing;
    int checkpointing;       /* recompute each block in backward */
} attn_nn_train_opts;

typedef struct attn_nn_gen_opts {
    int32_t bos_id, eos_id;
    int64_t max_new;      /* tokens to generate at most */
    int64_t beam;         /* 1: greedy */
    double length_penalty; /* beam score = logprob / len^alpha (GNMT-style) */
} attn_nn_gen_opts;

/* ---- the GRU (src/nn/gru.c) ------------------------------------------------ */

/* One GRU cell, as torch.nn.GRUCell (gate order r, z, n):
 *
 *   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h
 *
 * weight_ih [3H, I] = [W_ir; W_iz; W_in], weight_hh [3H, H], bias_ih [3H],
 * bias_hh [3H]; a bias may be NULL (torch's bias=False: both NULL). The
 * gradient pointers (same shapes) are needed by backward only, and each may
 * be NULL when that gradient is not wanted. */
typedef struct attn_nn_gru_cell {
    int64_t input_size, hidden_size; /* I >= 0, H >= 1 */
    float *weight_ih, *weight_hh, *bias_ih, *bias_hh;
    float *d_weight_ih, *d_weight_hh, *d_bias_ih, *d_bias_hh;
} attn_nn_gru_cell;

/* h_new [B, H] = cell(x [B, I], h [B, H]). saved, if not NULL, receives
 * [B, 4H]: r, z, n and W_hn h + b_hn of each row, for backward. h_new must
 * not overlap x or h. */
ATTN_API attn_status attn_nn_gru_cell_forward(attn_ctx *ctx, const attn_nn_gru_cell *c,
                                               const float *x, const float *h, int64_t B,
                                               float *h_new, float *saved);
/* From dh_new [B, H]: dx [B, I] += ..., dh [B, H] += ... (each may be NULL)
 * and the parameter gradients += ... (those not NULL in c). */
ATTN_API attn_status attn_nn_gru_cell_backward(attn_ctx *ctx, const attn_nn_gru_cell *c,
                                                const float *x, const float *h, int64_t B,
                                                const float *saved, const float *dh_new,
                                                float *dx, float *dh);

/* A one-layer GRU over whole sequences, as torch.nn.GRU(I, H,
 * batch_first=True, bidirectional=...): dir[0] runs t = 0 .. T-1, dir[1]
 * (torch's *_l0_reverse parameters; only if bidirectional) runs T-1 .. 0.
 * Both cells have the same input_size and hidden_size.
 *
 * Lengths, as pack_padded_sequence: row b has lens[b] valid steps
 * (0 <= lens[b] <= T; lens NULL means all T). Steps t >= lens[b] do not
 * change the state and their outputs are 0; the reverse direction starts at
 * t = lens[b] - 1. So the final state of a row is its state at its length,
 * and the (finite) values of padded x never change a result.
 *
 * The input projections x W_ih^T of all steps are one GEMM; each step then
 * runs one recurrent GEMM [B, H] x [H, 3H] per direction (all on ctx's
 * threads, as attn_nn_linear_forward). */
typedef struct attn_nn_gru {
    int bidirectional; /* 0 or 1: D = 1 + bidirectional directions */
    attn_nn_gru_cell dir[2];
} attn_nn_gru;

/* What backward needs from one forward call (owned by the caller; free the
 * buffers with attn_nn_gru_saved_free). */
typedef struct attn_nn_gru_saved {
    int64_t B, T;
    float *h_prev; /* [D, T, B, H]: the state entering step t (time-major) */
    float *gates;  /* [D, T, B, 4H]: r, z, n, W_hn h + b_hn of step t */
} attn_nn_gru_saved;
ATTN_API void attn_nn_gru_saved_free(attn_nn_gru_saved *s); /* accepts NULL */

/* out [B, T, D*H] (direction d in columns d*H .. d*H+H-1, 0 past a row's
 * length), h_n [D, B, H] (may be NULL) from x [B, T, I] and h0 [D, B, H]
 * (NULL: zeros). saved, if not NULL, is filled for backward (its previous
 * contents are not freed). */
ATTN_API attn_status attn_nn_gru_forward(attn_ctx *ctx, const attn_nn_gru *g, const float *x,
                                          int64_t B, int64_t T, const int64_t *lens,
                                          const float *h0, float *out, float *h_n,
                                          attn_nn_gru_saved *saved);
/* Backward through time from d_out [B, T, D*H] and d_h_n [D, B, H] (either
 * may be NULL: zero): dx [B, T, I] += ..., dh0 [D, B, H] += ... (each may be
 * NULL) and the parameter gradients of both cells += .... x and lens must
 * be those of the forward call that filled saved. */
ATTN_API attn_status attn_nn_gru_backward(attn_ctx *ctx, const attn_nn_gru *g, const float *x,
                                           const int64_t *lens, const attn_nn_gru_saved *saved,
                                           const float *d_out, const float *d_h_n, float *dx,
                                           float *dh0);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_NN_H */
