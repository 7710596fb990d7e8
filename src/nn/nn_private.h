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

#endif /* ATTN_NN_PRIVATE_H */
