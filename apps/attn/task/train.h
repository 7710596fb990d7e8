/* train.h - the main job's training and evaluation loop on the built-in
 * dates task (dates.h): batches from the generator, the schedule, AdamW,
 * clipping, held-out exact match, checkpoints that resume bit-exactly.
 * Used by the `attn` program and by the tests. Prints nothing itself; a
 * progress callback receives each step. */
#ifndef TASK_TRAIN_H
#define TASK_TRAIN_H

#include <attn/transformer.h>

#include <stdbool.h>

typedef struct task_train_cfg {
    int64_t steps, batch, warmup;
    int64_t stop_after; /* stop after this step (0: at steps); the schedule still spans steps */
    double lr, min_lr, weight_decay, clip, label_smoothing;
    attn_nn_schedule schedule;
    uint64_t data_seed; /* the example stream */
    uint64_t seed;      /* dropout streams */
    int checkpointing;
    int padded; /* 1: padded batches (src_lens); 0: packed batches (the default: no
                   padding rows). Not in a checkpoint's training config: a resumed run is
                   bit-exact when it uses the same layout (the transformer only; the GRU
                   always trains on padded batches) */
    int64_t eval_every, eval_n; /* held-out check every eval_every steps on eval_n examples */
    double target;              /* stop once the held-out exact match reaches it (0: never) */
    const char *save_path;      /* checkpoint written at the end (and at save_every), or NULL */
    int64_t save_every;
} task_train_cfg;

task_train_cfg task_train_cfg_default(void);

/* The training config a checkpoint carries in __metadata__ ("train.steps",
 * "train.lr", ... as task_train_dates saves it, so a resumed run continues
 * with exactly the same schedule and data), read by key. Each value is a
 * decimal number as the writer prints it (no spaces, hex, "inf" or "nan"):
 * train.steps and train.warmup integers in [0, 1e9], train.batch an integer
 * in [1, 1e6], train.schedule an integer in [0, 2] (attn_nn_schedule),
 * train.data_seed and train.seed integers in [0, 4e9], train.lr,
 * train.min_lr and train.weight_decay in [0, 10], train.clip in [0, 1e6],
 * train.label_smoothing in [0, 1]. Only those fields of cfg are written,
 * and only if every value is valid; otherwise ATTN_BAD_FILE naming the key
 * (cfg untouched). */
attn_status task_train_cfg_from_meta(const attn_safetensors *f, task_train_cfg *cfg);

typedef struct task_train_progress {
    int64_t step, steps;
    double loss, lr, grad_norm, tokens_per_s, elapsed_s, eta_s;
    double heldout_acc; /* -1 unless evaluated at this step */
    size_t activation_bytes;
} task_train_progress;
typedef void (*task_train_cb)(const task_train_progress *p, void *user);

typedef struct task_train_report {
    int64_t steps_run, last_step;
    double final_loss, heldout_acc, seconds;
    size_t activation_bytes;
} task_train_report;

/* Trains m from its current step (m's AdamW step count) to cfg->steps. */
attn_status task_train_dates(attn_ctx *ctx, attn_transformer *m, const task_train_cfg *cfg,
                             task_train_cb cb, void *user, task_train_report *rep);

/* Builds batch number `step` of the stream (length-bucketed: see train.c),
 * padded. The buffers are owned by b (task_train_batch_free). For a
 * decoder-only model the sequence is source, '=', target, EOS, with the
 * loss on the target only. */
typedef struct task_train_batch {
    attn_nn_batch nb;
    int32_t *src, *tgt_in, *tgt_out;
    int64_t *src_lens, *tgt_lens; /* [B]: each row's real tokens */
    int64_t *cu_src, *cu_tgt;     /* [B + 1] once packed, else NULL */
} task_train_batch;
attn_status task_train_batch_make(const attn_transformer *m, uint64_t data_seed, int64_t step,
                                  int64_t batch, task_train_batch *b);
/* The same without a model: dec_only 1 for the decoder-only layout, 0 for
 * the encoder-decoder's (which the RNN model of attn/seq2seq.h also reads). */
attn_status task_train_batch_make_arch(int dec_only, uint64_t data_seed, int64_t step,
                                       int64_t batch, task_train_batch *b);
void task_train_batch_free(task_train_batch *b);
/* Packs a padded batch in place (attn/nn.h, attn_nn_batch): the real tokens
 * of its rows back to back, with their offsets; the same sequences in the
 * same order. A batch already packed is left as it is. */
attn_status task_train_batch_pack(task_train_batch *b);

/* Translates one date string; out gets the text (NUL-terminated, cap
 * bytes). maps, if not NULL, receives [n_out, src_len] cross-attention
 * (ENCDEC) where *n_out counts output characters. */
attn_status task_translate(attn_ctx *ctx, attn_transformer *m, const char *src, int64_t beam,
                           char *out, size_t cap, float *maps, int64_t *n_out);

/* The seed of the held-out examples every evaluation draws (both models). */
enum { TASK_TRAIN_EVAL_SEED = 20241117 };

/* Exact match on n held-out examples (greedy decoding). */
attn_status task_eval_dates(attn_ctx *ctx, attn_transformer *m, int64_t n, int64_t beam,
                            double *acc);

#endif /* TASK_TRAIN_H */
