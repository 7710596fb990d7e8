/* train_gru.h - the RNN encoder-decoder of attn/seq2seq.h (Bahdanau et al. 2015)
 * on the built-in dates task: the loop of train.h (the same batches for the
 * same data seed, the schedule, AdamW, clipping, held-out checks), greedy
 * translation with the additive attention weights as maps, and held-out
 * exact match on the examples task_eval_dates uses. Prints nothing. */
#ifndef TASK_TRAIN_GRU_H
#define TASK_TRAIN_GRU_H

#include "train.h"

#include <attn/seq2seq.h>

/* The sizes used for the dates task: embedding 64, encoder 128 per
 * direction, decoder 128, attention 128, s_0 from the backward state. */
attn_seq2seq_config task_gru_dates_config(void);

/* Trains m from its current step to cfg->steps, as task_train_dates does
 * (task_train_cfg_default() suits both models: docs/rnn.md);
 * cfg->checkpointing and cfg->seed are not used (the model has no dropout).
 * A checkpoint at cfg->save_path holds the model and AdamW state. */
attn_status task_train_gru_dates(attn_ctx *ctx, attn_seq2seq *m, const task_train_cfg *cfg,
                                 task_train_cb cb, void *user, task_train_report *rep);

/* Translates one date string (greedy): out gets the text (NUL-terminated,
 * cap bytes); maps, if not NULL, receives [n_out, strlen(src)] attention
 * weights, row r from the step that produced character r. */
attn_status task_gru_translate(attn_ctx *ctx, attn_seq2seq *m, const char *src, char *out,
                               size_t cap, float *maps, int64_t *n_out);

/* Exact match on the first n held-out examples of task_eval_dates, decoded
 * in batches. */
attn_status task_gru_eval_dates(attn_ctx *ctx, attn_seq2seq *m, int64_t n, double *acc);

#endif /* TASK_TRAIN_GRU_H */
