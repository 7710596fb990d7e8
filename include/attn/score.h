/* attn/score.h - attention with learned scoring functions (Bahdanau additive,
 * Luong general and concat, dot product with a learned scale), forward and
 * backward, with the masks and dropout of attn/attn.h.
 *
 * This header is the manual (docs/scoring.md has the derivations). It is C11
 * and also compiles as C++.
 *
 * For each batch b and head h, query i and key j:
 *
 *   ATTN_SCORE_KIND_ADDITIVE       s_ij = v_a . tanh(Wq q_i + Wk k_j + b)
 *   ATTN_SCORE_KIND_LUONG_GENERAL  s_ij = q_i . (W k_j)
 *   ATTN_SCORE_KIND_LUONG_CONCAT   s_ij = v_a . tanh(W [q_i; k_j])
 *   ATTN_SCORE_KIND_SCALED_DOT     s_ij = g (q_i . k_j)
 *
 *   p_ij  = softmax_j(s_ij) over the visible keys (masks as in attn/attn.h)
 *   out_i = sum_j p_ij f_ij v_j          f_ij: dropout factor, 0 or 1/(1-p)
 *
 * Tensors are attn_tensor views (any non-negative strides), heads as in the
 * core (one head: H = 1):
 *
 *   q [B, Sq, H, Dq]   k [B, Sk, H, Dk]   v [B, Sk, H, Dv]
 *   out [B, Sq, H, Dv]   lse [B, H, Sq, 1]  (natural log of the softmax sum)
 *
 * Learned parameters are views of q's dtype with dims [1, H, rows, cols]
 * (each head has its own; A is the attention dim, A >= 1):
 *
 *   kind           parameters (params.*)                     gradients (grads->*)
 *   ADDITIVE       w_q [1,H,A,Dq]  w_k [1,H,A,Dk]            d_w_q  d_w_k
 *                  b [1,H,1,A] (optional)  v_a [1,H,1,A]      d_b    d_v_a
 *   LUONG_GENERAL  w [1,H,Dq,Dk]                              d_w
 *   LUONG_CONCAT   w [1,H,A,Dq+Dk]  v_a [1,H,1,A]             d_w    d_v_a
 *   SCALED_DOT     g [1,H,1,1]   (needs Dq == Dk)             d_g
 *
 * A parameter the kind does not use must be NULL (ATTN_BAD_PARAM otherwise).
 * LUONG_CONCAT is ADDITIVE with Wq = W[:, :Dq], Wk = W[:, Dq:] and no bias.
 *
 * Masks and dropout come from params.masks, an attn_sdpa_params: q_lens,
 * k_lens, causal, align, window_left/right, the boolean mask [B|1, H|1,
 * Sq|1, Sk|1] (nonzero means attend), dropout_p, seed, offset, all with the
 * meaning of attn/attn.h (the dropout keep mask is attn_dropout_keep(seed, offset,
 * p, b, h, i, j, H)). has_scale, softcap, bias and alibi_slopes must be off
 * (ATTN_UNSUPPORTED): the score function replaces them.
 *
 * Contracts as in the core: a row with no visible key gives out = 0, LSE =
 * -inf and zero gradients; masked keys and padding query rows do not change
 * any result (NaN there stays out); results are bitwise identical across runs
 * and thread counts. Memory is O((Sq + Sk) * max(A, D)) per head: no
 * Sq x Sk x A tensor (nor Sq x Sk matrix in float32) is ever stored.
 *
 * Kernels: F64 tensors, or a context forced to ATTN_KERNEL_REF, run the
 * double-precision reference. F32 tensors run the chunked float32 kernel
 * (ADDITIVE, LUONG_CONCAT) or the core's attention kernels on the projected
 * inputs (LUONG_GENERAL: k' = W k; SCALED_DOT: q' = g q).
 *
 * Errors: every function returns an attn_status; on error nothing is
 * written, nothing leaks, and attn_last_error() names the bad argument.
 */
#ifndef ATTN_SCORE_H
#define ATTN_SCORE_H

#include "attn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum attn_score_kind {
    ATTN_SCORE_KIND_ADDITIVE = 1,      /* Bahdanau: v_a . tanh(Wq q + Wk k + b) */
    ATTN_SCORE_KIND_LUONG_GENERAL = 2, /* q . (W k) */
    ATTN_SCORE_KIND_LUONG_CONCAT = 3,  /* v_a . tanh(W [q; k]) */
    ATTN_SCORE_KIND_SCALED_DOT = 4     /* g (q . k), g learned */
} attn_score_kind;

/* Start from attn_score_params_default(kind) and set the kind's parameters. */
typedef struct attn_score_params {
    attn_score_kind kind;
    const attn_tensor *w_q; /* ADDITIVE: Wq [1, H, A, Dq] */
    const attn_tensor *w_k; /* ADDITIVE: Wk [1, H, A, Dk] */
    const attn_tensor *b;   /* ADDITIVE: bias [1, H, 1, A], or NULL for none */
    const attn_tensor *v_a; /* ADDITIVE, LUONG_CONCAT: v_a [1, H, 1, A] */
    const attn_tensor *w;   /* LUONG_GENERAL: [1, H, Dq, Dk]; LUONG_CONCAT: [1, H, A, Dq + Dk] */
    const attn_tensor *g;   /* SCALED_DOT: g [1, H, 1, 1] */
    attn_sdpa_params masks; /* masks and dropout; see the header comment */
} attn_score_params;

/* Gradients of the parameters, each with its parameter's dims and q's dtype.
 * NULL entries are not computed; an entry for a parameter the call does not
 * have is ATTN_BAD_PARAM. Summed over the batch in a fixed order. */
typedef struct attn_score_grads {
    attn_tensor *d_w_q, *d_w_k, *d_b, *d_v_a, *d_w, *d_g;
} attn_score_grads;

/* kind, no parameters, masks = attn_sdpa_params_default(). */
ATTN_API attn_score_params attn_score_params_default(attn_score_kind kind);

/* Forward: writes out and, if lse is not NULL, lse [B, H, Sq, 1].
 * B, H, Sq or Sk = 0 are valid; Dq, Dk, Dv or A = 0 are ATTN_BAD_DIM. */
ATTN_API attn_status attn_score_forward(attn_ctx *ctx, const attn_tensor *q,
                                        const attn_tensor *k, const attn_tensor *v,
                                        const attn_score_params *params,
                                        attn_tensor *out, attn_tensor *lse);

/* Backward: from the forward's out and lse and d_out [B, Sq, H, Dv], writes
 * dq, dk, dv (shapes of q, k, v) and the parameter gradients asked for in
 * grads (grads may be NULL). Deterministic: bitwise identical across runs and
 * thread counts. */
ATTN_API attn_status attn_score_backward(attn_ctx *ctx, const attn_tensor *q,
                                         const attn_tensor *k, const attn_tensor *v,
                                         const attn_tensor *out, const attn_tensor *d_out,
                                         const attn_tensor *lse,
                                         const attn_score_params *params,
                                         attn_tensor *dq, attn_tensor *dk, attn_tensor *dv,
                                         const attn_score_grads *grads);

/* Attention weights for maps: w [B, H, Sq, Sk] (q's dtype), recomputed from
 * q, k and the forward's lse: w_ij = exp(s_ij - lse_i), 0 where masked.
 * with_dropout != 0 gives the weights applied to v (dropped entries 0, kept
 * ones times 1/(1-p)). */
ATTN_API attn_status attn_score_weights(attn_ctx *ctx, const attn_tensor *q,
                                        const attn_tensor *k, const attn_tensor *lse,
                                        const attn_score_params *params, int with_dropout,
                                        attn_tensor *w);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_SCORE_H */
