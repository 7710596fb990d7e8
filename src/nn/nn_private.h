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

/* The attention options of a module call: causal, key lengths, dropout and
 * the key_keep mask, as a [B, 1, 1, Sk] view written to *mask (which must
 * outlive the returned params). */
attn_sdpa_params attn__nn_mha_sdpa_params(const attn_nn_mha_opts *o, attn_tensor *mask, int64_t B,
                                          int64_t Sk);

#endif /* ATTN_NN_PRIVATE_H */
