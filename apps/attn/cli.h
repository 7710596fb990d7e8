/* cli.h - what every `attn` subcommand shares: the option table parser
 * (--help, exit status 2 on bad usage), error reporting, contexts, and the
 * checks of output files and directories. Exit status convention: 0
 * success, 1 failure, 2 bad usage. */
#ifndef ATTN_CLI_H
#define ATTN_CLI_H

#include <attn/attn.h>

#include <stddef.h>
#include <stdint.h>

extern const char *cli_prog;

typedef enum { OPT_INT, OPT_REAL, OPT_STR, OPT_FLAG } opt_kind;
typedef struct {
    const char *name; /* "--steps" */
    opt_kind kind;
    void *dst;
    double lo, hi; /* range of numbers */
    const char *help;
} opt;

/* "attn CMD: <fmt with arg>" and a pointer to --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, const char *arg);
/* "attn CMD: <last error> (<status>)"; returns 1. */
int cli_fail(const char *cmd, attn_status st);
/* Parses argv into opts (int64_t for OPT_INT, double for OPT_REAL, const
 * char * for OPT_STR, int for OPT_FLAG); positional arguments go to pos.
 * Returns -1 after printing --help, 0 on success, 2 on a usage error. */
int cli_parse(const char *cmd, const char *synopsis, int argc, char **argv, const opt *opts,
              int n, char **pos, int *n_pos, int max_pos);
/* *out = index of val in names (NULL entries skipped), or 2 after a message. */
int cli_pick(const char *cmd, const char *opt_name, const char *val, const char *const *names,
             int n, int *out);
attn_ctx *cli_make_ctx(const char *cmd, int64_t threads);
/* A model's location into out [cap]: `given` (an option's value), else the
 * environment variable env_var if set and not empty, else the first path
 * matching venv_glob (a glob inside a virtual environment, such as
 * lib/python3.X/site-packages/PKG) for which ok holds, in ./.venv, else in
 * .venv beside the build directory of this program (<exe dir>/../.venv).
 * 0 when found; 2 after a usage message for a path too long for out; -1
 * when there is none (the caller says how to get the model). */
int cli_locate_model(const char *cmd, const char *given, const char *env_var, const char *venv_glob,
                     int (*ok)(const char *path), char *out, size_t cap);
/* An output file named by option opt_name, checked before any work: the
 * path within the limits of core/fileio.h (checked before anything is
 * created), the directories leading to it created, and what it names
 * (symbolic links followed) a regular file or nothing (a device, FIFO,
 * socket or directory is refused and left untouched). 0, or 1 after a
 * message. */
int cli_prepare_output(const char *cmd, const char *opt_name, const char *path);
/* An output directory: the path checked, then it and the directories
 * leading to it created. 0, or 1 after a message. */
int cli_ensure_dir(const char *cmd, const char *opt_name, const char *dir);
/* 1 if path is an RNN checkpoint (attn/seq2seq.h); errors are left to the loader. */
int cli_is_rnn_checkpoint(const char *path);
/* The heatmap PNG at path of w [n_out, strlen(src)], output characters by
 * source characters; 0, or 1 after printing the error. */
int cli_write_char_map(const char *cmd, const char *path, const char *title, const char *src,
                       const char *out, const float *w, int64_t n_out);

/* The subcommands (apps/attn/cmd_*.c): argv after the command name. */
int cmd_train(int argc, char **argv);
int cmd_translate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_compare(int argc, char **argv);
/* apps/attn/cmd_embed.c: sentence embeddings with a BERT model (all-MiniLM-L6-v2). */
int cmd_embed(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_bert_map(int argc, char **argv);
/* apps/attn/cmd_chat.c: a chat model (attn/llama.h; SmolLM2-135M-Instruct). */
int cmd_chat(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
/* apps/attn/cmd_explain.c: the attention explorer, one HTML page. */
int cmd_explain(int argc, char **argv);
/* apps/attn/cmd_ring.c: ring attention over MPI ranks (built with MPI only). */
int cmd_ring(int argc, char **argv);

#endif /* ATTN_CLI_H */
