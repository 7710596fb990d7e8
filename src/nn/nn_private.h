/* nn_private.h - what the nn tier shares with the models built on it,
 * beyond the public attn/nn.h. Not installed. */
#ifndef ATTN_NN_PRIVATE_H
#define ATTN_NN_PRIVATE_H

#include "core/check.h"

#include <attn/nn.h>

/* Projection i (0 q, 1 k, 2 v) of an attention module: weight [rows, cols]
 * and bias [rows] (or NULL), slices of the packed weight if packed. */
void attn__nn_mha_proj(const attn_nn_mha *a, int i, const float **w, const float **b,
                       int64_t *rows, int64_t *cols);

/* The attention options of a module call: causal, key lengths, dropout,
 * the packed offsets and the key_keep mask, as a [B, 1, 1, Sk] view written
 * to *mask (which must outlive the returned params). */
attn_sdpa_params attn__nn_mha_sdpa_params(const attn_nn_mha_opts *o, attn_tensor *mask, int64_t B,
                                          int64_t Sk);

/* The offsets cu [n + 1] of a packed batch: cu[0] = 0, each sequence
 * cu[s+1] - cu[s] in [min_len, max_len] (so never decreasing when
 * min_len >= 0), cu[n] = total. ATTN_BAD_PARAM naming the entry (name is
 * the argument's name, total_name the total's) otherwise. Messages start
 * with fn. */
attn_status attn__nn_check_offsets(const char *fn, const char *name, const int64_t *cu, int64_t n,
                                   int64_t total, const char *total_name, int64_t min_len,
                                   int64_t max_len);

/* A model's parameters as one block: tensors[t].value and .grad lie at the
 * same offset e in params [n_params] and grads [n_params], and the AdamW
 * moments of that element are adam_m[e], adam_v[e]. */
typedef struct {
    const attn_nn_param *tensors;
    int64_t n;
    const float *params;
    float *grads;
    int64_t n_params;
    float *adam_m, *adam_v;
} attn__nn_paramset;

/* One optimiser update of a model (optim.c): clips the global norm of
 * grads if clip > 0 (the norm before clipping goes to *grad_norm, which
 * may be NULL), counts the step in *steps, then takes one AdamW step of
 * every tensor at rate lr, with weight decay where the tensor says.
 * Messages start with fn. */
attn_status attn__nn_update(const char *fn, const attn__nn_paramset *ps,
                            const attn_nn_adamw *opt, double lr, double clip, int64_t *steps,
                            double *grad_norm);

#endif /* ATTN_NN_PRIVATE_H */
