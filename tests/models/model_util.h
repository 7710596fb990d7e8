/* model_util.h - what the model tests (tests/models, tests/apps) share: a
 * tiny transformer config and parameter comparisons (model_util.c). */
#ifndef ATTN_TEST_MODEL_UTIL_H
#define ATTN_TEST_MODEL_UTIL_H

#include "nn_test.h"

#include <attn/seq2seq.h>

/* An encoder-decoder of 1 + 1 layers, d_model 16, 2 heads, vocab 99. */
attn_transformer_config t_tiny_transformer(void);
/* True if the two models' parameters are bitwise equal (and named alike). */
bool t_same_transformer_params(const attn_transformer *a, const attn_transformer *b);
bool t_same_seq2seq_params(const attn_seq2seq *a, const attn_seq2seq *b);

#endif /* ATTN_TEST_MODEL_UTIL_H */
