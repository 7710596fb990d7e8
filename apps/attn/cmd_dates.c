/* cmd_dates.c - the main job's subcommands: `attn train` (the encoder-decoder
 * or decoder-only model on the built-in dates task, with a progress bar),
 * `attn translate` (with cross-attention maps as PNG heatmaps), `attn eval`
 * and `attn info` (a checkpoint's config, or without --model the CPU and
 * the kernels attn runs on it). */
#include "task/charvocab.h"
#include "cli.h"
#include "core/fileio.h"
#include "task/dates.h"
#include "task/train.h"
#include "task/train_gru.h"

#include <attn/viz.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load_rnn(const char *cmd, const char *path, attn_seq2seq **m)
{
    attn_status st = attn_seq2seq_load(path, m);
    if (st != ATTN_OK) {
        fprintf(stderr, "%s %s: cannot load '%s': %s (%s)\n", cli_prog, cmd, path, attn_last_error(),
                attn_status_name(st));
        return 1;
    }
    return 0;
}

static int load(const char *cmd, const char *path, attn_transformer **m)
{
    if (!path) return cli_usage_error(cmd, "%s", "--model is required");
    attn_status st = attn_transformer_load(path, m);
    if (st != ATTN_OK) {
        fprintf(stderr, "%s %s: cannot load '%s': %s (%s)\n", cli_prog, cmd, path, attn_last_error(),
                attn_status_name(st));
        return 1;
    }
    return 0;
}

/* ---- attn train -------------------------------------------------------------------------- */

static void progress(const task_train_progress *p, void *user)
{
    int tty = *(int *)user;
    int every = p->steps >= 20 ? (int)(p->steps / 20) : 1;
    if (!tty && p->step % every != 0 && p->heldout_acc < 0 && p->step != p->steps) return;
    enum { W = 24 };
    int done = (int)((double)W * (double)p->step / (double)(p->steps > 0 ? p->steps : 1));
    char bar[W + 1];
    for (int i = 0; i < W; i++) bar[i] = i < done ? '=' : i == done ? '>' : ' ';
    bar[W] = '\0';
    int eta = (int)(p->eta_s + 0.5);
    fprintf(stderr, "%s[%s] step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  %3.0fs  ETA %dm%02ds",
            tty ? "\r" : "", bar, (long long)p->step, (long long)p->steps, p->loss, p->lr,
            p->tokens_per_s, p->elapsed_s, eta / 60, eta % 60);
    if (p->heldout_acc >= 0) fprintf(stderr, "  held-out %.2f%%", 100 * p->heldout_acc);
    fprintf(stderr, tty && p->heldout_acc < 0 ? "\033[K" : "\n");
    fflush(stderr);
}

typedef struct {
    const char *arch, *norm, *pos, *act, *schedule, *out, *resume;
    int64_t d_model, heads, kv_heads, ff, layers, enc_layers, dec_layers, threads;
    int64_t steps, batch, warmup, seed, data_seed, eval_every, eval_n;
    double lr, min_lr, clip, ls, wd, dropout, attn_dropout, target;
    int post_norm, checkpointing, padded, quiet;
} train_args;

static int train_config(const train_args *a, attn_transformer_config *c, task_train_cfg *t)
{
    static const char *const archs[] = {NULL, "encdec", "decoder"};
    static const char *const norms[] = {NULL, "layernorm", "rmsnorm"};
    static const char *const poss[] = {NULL, "sinusoidal", "learned", "rope"};
    static const char *const acts[] = {NULL, "gelu", "relu"};
    static const char *const scheds[] = {"constant", "cosine", "invsqrt"};
    int arch, norm, pos, act, sched;
    if (cli_pick("train", "--arch", a->arch, archs, 3, &arch) || cli_pick("train", "--norm", a->norm, norms, 3, &norm) ||
        cli_pick("train", "--pos", a->pos, poss, 4, &pos) || cli_pick("train", "--act", a->act, acts, 3, &act) ||
        cli_pick("train", "--schedule", a->schedule, scheds, 3, &sched))
        return 2;
    *c = attn_transformer_config_default((attn_transformer_arch)arch);
    c->norm = (attn_nn_norm)norm;
    c->pos = (attn_nn_pos)pos;
    c->act = (attn_nn_act)act;
    c->d_model = a->d_model;
    c->n_heads = a->heads;
    c->n_kv_heads = a->kv_heads ? a->kv_heads : a->heads;
    c->d_ff = a->ff;
    c->n_enc_layers = arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? (a->enc_layers ? a->enc_layers : a->layers) : 0;
    c->n_dec_layers = a->dec_layers ? a->dec_layers : a->layers;
    c->norm_first = !a->post_norm;
    c->dropout = a->dropout;
    c->attn_dropout = a->attn_dropout;
    c->max_len = 64;
    t->steps = a->steps;
    t->batch = a->batch;
    t->warmup = a->warmup;
    t->lr = a->lr;
    t->min_lr = a->min_lr;
    t->clip = a->clip;
    t->label_smoothing = a->ls;
    t->weight_decay = a->wd;
    t->schedule = (attn_nn_schedule)sched;
    t->seed = (uint64_t)a->seed;
    t->data_seed = (uint64_t)a->data_seed;
    t->checkpointing = a->checkpointing;
    t->padded = a->padded;
    t->eval_every = a->eval_every;
    t->eval_n = a->eval_n;
    t->target = a->target;
    t->save_path = a->out;
    return 0;
}

/* attn train --arch gru: the RNN encoder-decoder of attn/seq2seq.h with the
 * training options of the transformer (its sizes: task_gru_dates_config). */
static int train_gru_cmd(const train_args *a, const task_train_cfg *t)
{
    if (a->resume) return cli_usage_error("train", "%s", "--resume is not supported with --arch gru");
    attn_seq2seq_config gc = task_gru_dates_config();
    attn_seq2seq *m = NULL;
    attn_status st = attn_seq2seq_create(&gc, t->seed, &m);
    if (st != ATTN_OK) return cli_fail("train", st);
    attn_ctx *ctx = t->save_path && cli_prepare_output("train", "--out", t->save_path) ? NULL : cli_make_ctx("train", a->threads);
    if (!ctx) {
        attn_seq2seq_free(m);
        return 1;
    }
    if (!a->quiet)
        fprintf(stderr, "attn train: GRU encoder-decoder with additive attention, %lld parameters, "
                        "%lld steps of %lld examples, %d threads\n",
                (long long)attn_seq2seq_param_count(m), (long long)t->steps, (long long)t->batch,
                attn_ctx_threads(ctx));
    int tty = isatty(2);
    task_train_report rep;
    st = task_train_gru_dates(ctx, m, t, a->quiet ? NULL : progress, &tty, &rep);
    if (st == ATTN_OK && rep.heldout_acc < 0) st = task_gru_eval_dates(ctx, m, t->eval_n, &rep.heldout_acc);
    if (st == ATTN_OK)
        printf("trained %lld steps in %.1f s; final loss %.4f; held-out exact match %.2f%% (%lld "
               "examples); saved %s\n", (long long)rep.steps_run, rep.seconds, rep.final_loss,
               100 * rep.heldout_acc, (long long)t->eval_n, t->save_path ? t->save_path : "(not saved)");
    attn_ctx_free(ctx);
    attn_seq2seq_free(m);
    return st == ATTN_OK ? 0 : cli_fail("train", st);
}

int cmd_train(int argc, char **argv)
{
    task_train_cfg d = task_train_cfg_default();
    train_args a = {"encdec", "layernorm", "sinusoidal", "gelu", "cosine", "run/dates.safetensors", NULL,
                    128, 4, 0, 512, 2, 0, 0, 0,
                    d.steps, d.batch, d.warmup, (int64_t)d.seed, (int64_t)d.data_seed, d.eval_every, d.eval_n,
                    d.lr, d.min_lr, d.clip, d.label_smoothing, d.weight_decay, 0.0, 0.0, 0.99,
                    0, 0, 0, 0};
    const opt opts[] = {
        {"--out", OPT_STR, &a.out, 0, 0, "checkpoint to write (default run/dates.safetensors)"},
        {"--resume", OPT_STR, &a.resume, 0, 0, "continue a checkpoint bit-exactly (its config and schedule)"},
        {"--steps", OPT_INT, &a.steps, 1, 1e7, "optimiser steps (default 1500)"},
        {"--batch", OPT_INT, &a.batch, 1, 4096, "examples per step (default 64)"},
        {"--lr", OPT_REAL, &a.lr, 0, 1, "peak learning rate (default 2e-3)"},
        {"--min-lr", OPT_REAL, &a.min_lr, 0, 1, "final learning rate of the cosine (default 2e-5)"},
        {"--warmup", OPT_INT, &a.warmup, 0, 1e7, "linear warm-up steps (default 100)"},
        {"--schedule", OPT_STR, &a.schedule, 0, 0, "cosine | invsqrt | constant (default cosine)"},
        {"--clip", OPT_REAL, &a.clip, 0, 1e6, "global gradient-norm clip, 0 = off (default 1)"},
        {"--weight-decay", OPT_REAL, &a.wd, 0, 1, "AdamW weight decay (default 0.01)"},
        {"--label-smoothing", OPT_REAL, &a.ls, 0, 1, "cross-entropy label smoothing (default 0)"},
        {"--dropout", OPT_REAL, &a.dropout, 0, 0.99, "residual and feed-forward dropout (default 0: the data never repeat)"},
        {"--attn-dropout", OPT_REAL, &a.attn_dropout, 0, 0.99, "dropout on attention weights (default 0)"},
        {"--arch", OPT_STR, &a.arch, 0, 0, "encdec | decoder | gru (default encdec)"},
        {"--d-model", OPT_INT, &a.d_model, 8, 4096, "model width (default 128)"},
        {"--heads", OPT_INT, &a.heads, 1, 64, "attention heads (default 4)"},
        {"--kv-heads", OPT_INT, &a.kv_heads, 1, 64, "key/value heads, decoder only (default = heads)"},
        {"--ff", OPT_INT, &a.ff, 1, 65536, "feed-forward width (default 512)"},
        {"--layers", OPT_INT, &a.layers, 1, 48, "encoder and decoder layers (default 2)"},
        {"--enc-layers", OPT_INT, &a.enc_layers, 1, 48, "encoder layers (default --layers)"},
        {"--dec-layers", OPT_INT, &a.dec_layers, 1, 48, "decoder layers (default --layers)"},
        {"--post-norm", OPT_FLAG, &a.post_norm, 0, 0, "post-norm blocks (default pre-norm)"},
        {"--norm", OPT_STR, &a.norm, 0, 0, "layernorm | rmsnorm (default layernorm)"},
        {"--pos", OPT_STR, &a.pos, 0, 0, "sinusoidal | learned | rope (default sinusoidal)"},
        {"--act", OPT_STR, &a.act, 0, 0, "gelu | relu (default gelu)"},
        {"--checkpointing", OPT_FLAG, &a.checkpointing, 0, 0, "recompute each block in backward (less memory)"},
        {"--padded", OPT_FLAG, &a.padded, 0, 0, "padded batches (default: packed, no padding rows; the GRU is always padded)"},
        {"--seed", OPT_INT, &a.seed, 0, 4e9, "initialisation and dropout seed (default 2)"},
        {"--data-seed", OPT_INT, &a.data_seed, 0, 4e9, "training example stream (default 1)"},
        {"--eval-every", OPT_INT, &a.eval_every, 0, 1e7, "held-out check interval, 0 = only at the end (default 250)"},
        {"--eval-n", OPT_INT, &a.eval_n, 1, 1e6, "held-out examples per check (default 500)"},
        {"--target", OPT_REAL, &a.target, 0, 1, "stop once held-out exact match reaches this, 0 = never (default 0.99)"},
        {"--threads", OPT_INT, &a.threads, 0, 256, "threads, 0 = all cores (default 0)"},
        {"--quiet", OPT_FLAG, &a.quiet, 0, 0, "no progress output"},
    };
    char *pos[1];
    int n_pos, n = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("train", "[options]", argc, argv, opts, n, pos, &n_pos, 0);
    if (rc) return rc < 0 ? 0 : rc;
    attn_transformer_config c;
    task_train_cfg t = task_train_cfg_default();
    int gru = strcmp(a.arch, "gru") == 0;
    if (gru) a.arch = "encdec"; /* the training options are read as for the transformer */
    if ((rc = train_config(&a, &c, &t)) != 0) return rc;
    if (gru) return train_gru_cmd(&a, &t);
    attn_transformer *m = NULL;
    attn_status st;
    if (a.resume) {
        attn_safetensors *f = NULL;
        st = attn_safetensors_load(a.resume, &f);
        if (st == ATTN_OK) st = attn_transformer_load_safetensors(f, &m);
        int64_t steps = t.steps;
        if (st == ATTN_OK) st = task_train_cfg_from_meta(f, &t);
        attn_safetensors_free(f);
        if (st != ATTN_OK) {
            attn_transformer_free(m);
            fprintf(stderr, "%s train: cannot resume '%s': %s (%s)\n", cli_prog, a.resume, attn_last_error(),
                    attn_status_name(st));
            return 1;
        }
        for (int i = 0; i < argc; i++)
            if (strcmp(argv[i], "--steps") == 0) t.steps = steps; /* a longer run may be asked */
        t.save_path = a.out;
        t.padded = a.padded; /* the layout is not in the checkpoint: resume with the same */
        t.eval_every = a.eval_every;
        t.eval_n = a.eval_n;
        t.target = a.target;
    } else if ((st = attn_transformer_create(&c, t.seed, &m)) != ATTN_OK) {
        return cli_fail("train", st);
    }
    if (t.save_path && cli_prepare_output("train", "--out", t.save_path)) {
        attn_transformer_free(m);
        return 1;
    }
    attn_ctx *ctx = cli_make_ctx("train", a.threads);
    if (!ctx) {
        attn_transformer_free(m);
        return 1;
    }
    const attn_transformer_config *mc = attn_transformer_get_config(m);
    if (!a.quiet)
        fprintf(stderr, "attn train: %s, %lld parameters (d_model %lld, %lld+%lld layers, %lld heads), "
                        "%lld steps of %lld examples (%s batches), %d threads\n",
                mc->arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? "encoder-decoder" : "decoder-only",
                (long long)attn_transformer_param_count(m), (long long)mc->d_model,
                (long long)mc->n_enc_layers, (long long)mc->n_dec_layers, (long long)mc->n_heads,
                (long long)t.steps, (long long)t.batch, t.padded ? "padded" : "packed",
                attn_ctx_threads(ctx));
    int tty = isatty(2);
    task_train_report rep;
    st = task_train_dates(ctx, m, &t, a.quiet ? NULL : progress, &tty, &rep);
    if (st == ATTN_OK && rep.heldout_acc < 0) st = task_eval_dates(ctx, m, t.eval_n, 1, &rep.heldout_acc);
    if (st == ATTN_OK)
        printf("trained %lld steps in %.1f s; final loss %.4f; held-out exact match %.2f%% (%lld "
               "examples); activations %.1f MB%s; saved %s\n",
               (long long)rep.steps_run, rep.seconds, rep.final_loss, 100 * rep.heldout_acc,
               (long long)t.eval_n, (double)rep.activation_bytes / 1e6,
               t.checkpointing ? " (checkpointing)" : "", t.save_path ? t.save_path : "(not saved)");
    attn_ctx_free(ctx);
    attn_transformer_free(m);
    return st == ATTN_OK ? 0 : cli_fail("train", st);
}

/* ---- attn translate ----------------------------------------------------------------- */

/* The heatmap PNG at path of w [n_out, strlen(src)]: rows are the output's
 * characters, columns the source's (attn translate and attn compare). */
int cli_write_char_map(const char *cmd, const char *path, const char *title, const char *src,
                       const char *out, const float *w, int64_t n_out)
{
    int64_t S = (int64_t)strlen(src);
    const char *rows[TASK_DATES_TGT_LEN + 2], *cols[TASK_DATES_SRC_MAX + 1];
    char rbuf[TASK_DATES_TGT_LEN + 2][2], cbuf[TASK_DATES_SRC_MAX + 1][2];
    if (n_out > TASK_DATES_TGT_LEN + 2 || S > TASK_DATES_SRC_MAX + 1) {
        fprintf(stderr, "attn %s: a map of %lld x %lld is larger than the dates task allows\n", cmd,
                (long long)n_out, (long long)S);
        return 1;
    }
    for (int64_t r = 0; r < n_out; r++) {
        rbuf[r][0] = out[r];
        rbuf[r][1] = '\0';
        rows[r] = rbuf[r];
    }
    for (int64_t j = 0; j < S; j++) {
        cbuf[j][0] = src[j];
        cbuf[j][1] = '\0';
        cols[j] = cbuf[j];
    }
    attn_viz_heatmap h = {w, n_out, S, S, rows, cols, title, "output", "source", 0, 0};
    attn_status st = attn_viz_heatmap_png(path, &h);
    return st == ATTN_OK ? 0 : cli_fail(cmd, st);
}

static int write_map(const char *dir, int index, const char *src, const char *out,
                     const float *w, int64_t n_out)
{
    char path[ATTN__PATH_MAX + 16], title[200];
    snprintf(path, sizeof path, "%s/%02d.png", dir, index);
    snprintf(title, sizeof title, "%s -> %s", src, out);
    if (cli_write_char_map("translate", path, title, src, out, w, n_out)) return 1;
    printf("  cross-attention map: %s\n", path);
    return 0;
}

int cmd_translate(int argc, char **argv)
{
    const char *model = NULL, *maps = NULL;
    int64_t beam = 1, threads = 1;
    const opt opts[] = {
        {"--model", OPT_STR, &model, 0, 0, "checkpoint from 'attn train' (required)"},
        {"--beam", OPT_INT, &beam, 1, 16, "beam width, 1 = greedy (default 1)"},
        {"--maps", OPT_STR, &maps, 0, 0, "directory for one cross-attention PNG per input"},
        {"--threads", OPT_INT, &threads, 0, 256, "threads (default 1)"},
    };
    char *pos[256];
    int n_pos, rc = cli_parse("translate", "--model F [options] TEXT...", argc, argv, opts, 4, pos, &n_pos, 256);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos == 0) return cli_usage_error("translate", "%s", "give at least one date to translate");
    attn_transformer *m = NULL;
    attn_seq2seq *g = NULL;
    int rnn = cli_is_rnn_checkpoint(model);
    if (rnn && beam != 1) return cli_usage_error("translate", "%s", "the GRU model decodes greedily: --beam 1");
    if ((rc = rnn ? load_rnn("translate", model, &g) : load("translate", model, &m)) != 0) return rc;
    attn_ctx *ctx = cli_make_ctx("translate", threads);
    if (!ctx || (maps && cli_ensure_dir("translate", "--maps", maps) != 0)) {
        attn_ctx_free(ctx);
        attn_transformer_free(m);
        attn_seq2seq_free(g);
        return 1;
    }
    for (int i = 0; i < n_pos && rc == 0; i++) {
        float w[(TASK_DATES_TGT_LEN + 1) * TASK_DATES_SRC_MAX];
        char out[64];
        int64_t n_out = 0;
        attn_status st = rnn ? task_gru_translate(ctx, g, pos[i], out, sizeof out, w, &n_out)
                             : task_translate(ctx, m, pos[i], beam, out, sizeof out, w, &n_out);
        if (st != ATTN_OK) {
            fprintf(stderr, "%s translate: '%s': %s (%s)\n", cli_prog, pos[i], attn_last_error(),
                    attn_status_name(st));
            rc = 1;
            break;
        }
        printf("%s -> %s\n", pos[i], out);
        if (maps && (rnn || attn_transformer_get_config(m)->arch == ATTN_TRANSFORMER_ARCH_ENCDEC) && n_out > 0)
            rc = write_map(maps, i + 1, pos[i], out, w, n_out);
    }
    attn_ctx_free(ctx);
    attn_transformer_free(m);
    attn_seq2seq_free(g);
    return rc;
}

/* ---- attn eval, attn info --------------------------------------------------------------- */

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL;
    int64_t n = 2000, beam = 1, threads = 1;
    const opt opts[] = {
        {"--model", OPT_STR, &model, 0, 0, "checkpoint (required)"},
        {"--n", OPT_INT, &n, 1, 1e6, "held-out examples (default 2000)"},
        {"--beam", OPT_INT, &beam, 1, 16, "beam width (default 1)"},
        {"--threads", OPT_INT, &threads, 0, 256, "threads (default 1)"},
    };
    char *pos[1];
    int n_pos, rc = cli_parse("eval", "--model F [options]", argc, argv, opts, 4, pos, &n_pos, 0);
    if (rc) return rc < 0 ? 0 : rc;
    attn_transformer *m = NULL;
    attn_seq2seq *g = NULL;
    int rnn = cli_is_rnn_checkpoint(model);
    if (rnn && beam != 1) return cli_usage_error("eval", "%s", "the GRU model decodes greedily: --beam 1");
    if ((rc = rnn ? load_rnn("eval", model, &g) : load("eval", model, &m)) != 0) return rc;
    attn_ctx *ctx = cli_make_ctx("eval", threads);
    double acc = 0;
    attn_status st = !ctx ? ATTN_THREAD : rnn ? task_gru_eval_dates(ctx, g, n, &acc) : task_eval_dates(ctx, m, n, beam, &acc);
    if (st == ATTN_OK) printf("held-out exact match: %.2f%% of %lld (beam %lld)\n", 100 * acc, (long long)n, (long long)beam);
    attn_ctx_free(ctx);
    attn_transformer_free(m);
    attn_seq2seq_free(g);
    return st == ATTN_OK ? 0 : cli_fail("eval", st);
}

/* Without --model: the CPU, its features and the kernel each slot runs. */
static int describe_kernels(void)
{
    attn_ctx *ctx = cli_make_ctx("info", 1);
    if (ctx == NULL) return 1;
    size_t len = 0;
    attn_status st = attn_ctx_describe(ctx, NULL, 0, &len);
    char *text = st == ATTN_OK ? malloc(len + 1) : NULL;
    if (st == ATTN_OK && text == NULL) st = attn_fail(ATTN_NO_MEMORY, "attn_ctx_describe: %zu bytes", len + 1);
    if (st == ATTN_OK) st = attn_ctx_describe(ctx, text, len + 1, &len);
    if (st == ATTN_OK) fputs(text, stdout);
    free(text);
    attn_ctx_free(ctx);
    return st == ATTN_OK ? 0 : cli_fail("info", st);
}

int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    const opt opts[] = {{"--model", OPT_STR, &model, 0, 0, "checkpoint (without it: the CPU and the kernels)"}};
    char *pos[1];
    int n_pos, rc = cli_parse("info", "[--model F]", argc, argv, opts, 1, pos, &n_pos, 0);
    if (rc) return rc < 0 ? 0 : rc;
    if (model == NULL) return describe_kernels();
    attn_transformer *m = NULL;
    if (cli_is_rnn_checkpoint(model)) {
        attn_seq2seq *g = NULL;
        char json[512];
        if ((rc = load_rnn("info", model, &g)) != 0) return rc;
        attn_status st = attn_seq2seq_config_to_json(attn_seq2seq_get_config(g), json, sizeof json);
        if (st == ATTN_OK)
            printf("config: %s (GRU encoder-decoder)\nparameters: %lld in %lld tensors\noptimiser steps: %lld\n",
                   json, (long long)attn_seq2seq_param_count(g), (long long)attn_seq2seq_n_tensors(g),
                   (long long)attn_seq2seq_steps_taken(g));
        attn_seq2seq_free(g);
        return st == ATTN_OK ? 0 : cli_fail("info", st);
    }
    if ((rc = load("info", model, &m)) != 0) return rc;
    char json[2048];
    attn_status st = attn_transformer_config_to_json(attn_transformer_get_config(m), json, sizeof json);
    if (st == ATTN_OK)
        printf("config: %s\nparameters: %lld in %lld tensors\noptimiser steps: %lld\n", json,
               (long long)attn_transformer_param_count(m), (long long)attn_transformer_n_tensors(m),
               (long long)attn_transformer_steps_taken(m));
    attn_transformer_free(m);
    return st == ATTN_OK ? 0 : cli_fail("info", st);
}
