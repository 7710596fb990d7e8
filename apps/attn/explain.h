/* explain.h - `attn explain`: the model adapters and what they share.
 *
 * An adapter turns one model and the command's inputs into an explorer
 * document (attn/explain.h): token sequences, attention groups with every
 * layer's and head's weights, rollout and relevance maps, notes. To explain
 * another model, write an explain_model in
 * its own file and add it to the table in cmd_explain.c; the command, the
 * page and its tests need nothing else.
 *
 * Adapters print their own messages and return 0 (success), 1 (failure:
 * a file, the model, memory) or 2 (bad usage: a layer or head the model
 * lacks, inputs it does not take). */
#ifndef ATTN_CLI_EXPLAIN_H
#define ATTN_CLI_EXPLAIN_H

#include <attn/explain.h>
#include <attn/nn.h>

/* The command's inputs. */
typedef struct {
    char *const *texts;     /* the positional inputs */
    int n_texts;
    const char *model_dir;  /* --model-dir, or NULL */
    const char *checkpoint; /* --checkpoint, or NULL */
    const char *gguf;       /* --gguf (the chat model's file), or NULL */
    int64_t threads;
    int64_t layer, head;    /* --layer, --head: the page opens there; -1 if not given */
} explain_args;

typedef struct {
    const char *name;    /* the value of --model */
    const char *summary; /* one line for --help */
    int min_texts, max_texts;
    int checkpoint;      /* 1: --checkpoint is required; 0: it is refused */
    int (*build)(const explain_args *a, attn_explain **doc);
} explain_model;

extern const explain_model explain_minilm;     /* explain_minilm.c */
extern const explain_model explain_translator; /* explain_dates.c */
extern const explain_model explain_gru;        /* explain_dates.c */
extern const explain_model explain_chat;       /* explain_chat.c */

/* ---- shared by the adapters (cmd_explain.c) ------------------------------------------ */

/* Every attention call of a backward pass (attn/nn.h probes), kept by
 * explain_collect: w, dw [B, H, Sq, Sk] (attn_nn_attn_probe_weights). */
typedef struct {
    int stack, cross;
    int64_t layer, row, B, H, Sq, Sk; /* row: a recurrent decoder's step */
    float *w, *dw;
} explain_site;

typedef struct {
    explain_site *s;
    int n, cap;
} explain_probes;

/* An attn_nn_attn_hook: user is an explain_probes. */
attn_status explain_collect(attn_ctx *ctx, const attn_nn_attn_probe *p, void *user);
/* The site of (stack, layer, cross), or NULL. */
const explain_site *explain_find(const explain_probes *c, int stack, int64_t layer, int cross);
void explain_probes_free(explain_probes *c);

/* Sets every layer's and head's weights of group g from row 0 of the sites
 * (stack, 0..n_layers-1, cross). */
attn_status explain_set_group(attn_explain *doc, int64_t g, const explain_probes *c, int stack,
                              int64_t n_layers, int cross);

/* out [Sq, Sk] = Chefer's head mean of site s: of max(scale dw_b * w_b, 0)
 * for batch row b, or (scale 0) of the raw weights of row 0. */
attn_status explain_head_mean(const explain_site *s, int64_t b, double scale, float *out);

/* r [n, n] = I, then the self-attention rule over layers 0..n_layers-1 of
 * a stack, with explain_head_mean(row b, scale). */
attn_status explain_stack(const explain_probes *c, int stack, int64_t n_layers, int64_t b,
                          double scale, int64_t n, float *r);

/* 2 after a message if --layer or --head is beyond the model's, else 0. */
int explain_check_range(const explain_args *a, int64_t n_layers, int64_t n_heads);
/* The page opens on --layer/--head if given (explain_check_range first). */
int explain_select(const explain_args *a, attn_explain *doc, int64_t group, int64_t n_layers,
                   int64_t n_heads);

/* A note (and the same line on stderr) that an input of n tokens was cut to
 * kept, the most the model or the page takes. */
attn_status explain_note_truncated(attn_explain *doc, const char *what, int64_t n, int64_t kept,
                                   const char *why);

/* attr [k] = the mean over the rows of m [q, k]; m - I when minus_eye. */
void explain_column_mean(const float *m, int64_t q, int64_t k, int minus_eye, float *attr);

#endif /* ATTN_CLI_EXPLAIN_H */
