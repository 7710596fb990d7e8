/* cmd_compare.c - `attn compare`: trains the transformer of `attn train`
 * (its defaults) and the GRU encoder-decoder with additive attention
 * (Bahdanau et al. 2015, attn/seq2seq.h) on the same stream of dates with the
 * same batch size, each until its held-out exact match reaches --target or
 * --steps, then prints both side by side (parameters, steps, training time,
 * held-out exact match on the same examples) and, for each input, both
 * translations and both cross-attention maps as PNGs. */
#include "task/charvocab.h"
#include "cli.h"
#include "core/fileio.h"
#include "task/dates.h"
#include "task/train.h"
#include "task/train_gru.h"

#include <attn/viz.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name; /* "transformer", "gru" */
    int64_t params, steps;
    double seconds, loss, acc, eval_s;
} result;

static void progress(const task_train_progress *p, void *user)
{
    const char *who = user;
    if (p->heldout_acc < 0 && p->step % 100 != 0) return;
    fprintf(stderr, "  [%s] step %lld/%lld  loss %.4f  %.0fs", who, (long long)p->step,
            (long long)p->steps, p->loss, p->elapsed_s);
    if (p->heldout_acc >= 0) fprintf(stderr, "  held-out %.2f%%", 100 * p->heldout_acc);
    fputc('\n', stderr);
}

/* The transformer of `attn train` with its default options. */
static attn_transformer_config transformer_config(void)
{
    attn_transformer_config c = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    c.dropout = 0.0;
    c.attn_dropout = 0.0;
    c.max_len = 64;
    return c;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static attn_status train_transformer(attn_ctx *ctx, attn_transformer *m, const task_train_cfg *t,
                                     int64_t eval_n, int quiet, result *r)
{
    task_train_report rep;
    char who[] = "transformer";
    attn_status st = task_train_dates(ctx, m, t, quiet ? NULL : progress, who, &rep);
    double t0 = seconds_now(), acc = 0;
    if (st == ATTN_OK) st = task_eval_dates(ctx, m, eval_n, 1, &acc);
    *r = (result){"transformer", attn_transformer_param_count(m), rep.steps_run, rep.seconds,
                  rep.final_loss, acc, seconds_now() - t0};
    return st;
}

static attn_status train_gru(attn_ctx *ctx, attn_seq2seq *m, const task_train_cfg *t,
                             int64_t eval_n, int quiet, result *r)
{
    task_train_report rep;
    char who[] = "gru";
    attn_status st = task_train_gru_dates(ctx, m, t, quiet ? NULL : progress, who, &rep);
    double t0 = seconds_now(), acc = 0;
    if (st == ATTN_OK) st = task_gru_eval_dates(ctx, m, eval_n, &acc);
    *r = (result){"gru", attn_seq2seq_param_count(m), rep.steps_run, rep.seconds, rep.final_loss,
                  acc, seconds_now() - t0};
    return st;
}

static void print_table(const result *r, int64_t eval_n, int threads)
{
    printf("\n%-28s %18s %18s\n", "", "transformer", "GRU + additive");
    printf("%-28s %18lld %18lld\n", "parameters", (long long)r[0].params, (long long)r[1].params);
    printf("%-28s %18lld %18lld\n", "steps", (long long)r[0].steps, (long long)r[1].steps);
    printf("%-28s %17.1fs %17.1fs\n", "training time", r[0].seconds, r[1].seconds);
    printf("%-28s %18.4f %18.4f\n", "final training loss", r[0].loss, r[1].loss);
    char what[64];
    snprintf(what, sizeof what, "held-out exact match (%lld)", (long long)eval_n);
    printf("%-28s %17.2f%% %17.2f%%\n", what, 100 * r[0].acc, 100 * r[1].acc);
    printf("%-28s %17.1fs %17.1fs\n", "evaluation time", r[0].eval_s, r[1].eval_s);
    printf("(%d threads; training time includes the periodic held-out checks)\n", threads);
}

/* DIR/<k>-<model>.png: rows are the output characters, columns the source's. */
static int write_map(const char *dir, int k, const char *model, const char *src, const char *out,
                     const float *w, int64_t n_out)
{
    char path[ATTN__PATH_MAX + 32], title[200];
    snprintf(path, sizeof path, "%s/%d-%s.png", dir, k, model);
    snprintf(title, sizeof title, "%s: %s -> %s", model, src, out);
    if (cli_write_char_map("compare", path, title, src, out, w, n_out)) return 1;
    printf("  map: %s\n", path);
    return 0;
}

/* Both translations of src and, with dir, both maps. */
static int translate_both(attn_ctx *ctx, attn_transformer *tm, attn_seq2seq *gm, const char *src,
                          int k, const char *dir)
{
    enum { W = (TASK_DATES_TGT_LEN + 1) * TASK_DATES_SRC_MAX };
    float wt[W], wg[W];
    char ot[64], og[64];
    int64_t nt = 0, ng = 0;
    attn_status st = task_translate(ctx, tm, src, 1, ot, sizeof ot, wt, &nt);
    if (st == ATTN_OK) st = task_gru_translate(ctx, gm, src, og, sizeof og, wg, &ng);
    if (st != ATTN_OK) {
        fprintf(stderr, "%s compare: '%s': %s (%s)\n", cli_prog, src, attn_last_error(),
                attn_status_name(st));
        return 1;
    }
    printf("%s\n  transformer -> %s\n  gru         -> %s\n", src, ot, og);
    int rc = 0;
    if (dir && nt > 0) rc = write_map(dir, k, "transformer", src, ot, wt, nt);
    if (dir && ng > 0 && rc == 0) rc = write_map(dir, k, "gru", src, og, wg, ng);
    return rc;
}

static int save_both(const char *dir, attn_transformer *tm, attn_seq2seq *gm)
{
    char p[ATTN__PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/transformer.safetensors", dir);
    attn_status st = attn_transformer_save(tm, p, 0, NULL, NULL, 0);
    if (st == ATTN_OK) {
        printf("saved %s\n", p);
        snprintf(p, sizeof p, "%s/gru.safetensors", dir);
        st = attn_seq2seq_save(gm, p, 0, NULL, NULL, 0);
    }
    if (st != ATTN_OK) return cli_fail("compare", st);
    printf("saved %s\n", p);
    return 0;
}

static const char *const default_inputs[] = {"Sunday, March 17th 2024", "3/4/05", "12.11.1987",
                                             "the twenty-first of June, nineteen ninety-nine"};

static int run(attn_ctx *ctx, const task_train_cfg *tt, const task_train_cfg *gt, int64_t eval_n,
               int quiet, char **inputs, int n_in, const char *maps, const char *out_dir)
{
    attn_transformer_config tc = transformer_config();
    attn_seq2seq_config gc = task_gru_dates_config();
    attn_transformer *tm = NULL;
    attn_seq2seq *gm = NULL;
    result r[2];
    memset(r, 0, sizeof r);
    attn_status st = attn_transformer_create(&tc, tt->seed, &tm);
    if (st == ATTN_OK) st = attn_seq2seq_create(&gc, gt->seed, &gm);
    if (st == ATTN_OK && !quiet) fprintf(stderr, "attn compare: training the transformer\n");
    if (st == ATTN_OK) st = train_transformer(ctx, tm, tt, eval_n, quiet, &r[0]);
    if (st == ATTN_OK && !quiet) fprintf(stderr, "attn compare: training the GRU encoder-decoder\n");
    if (st == ATTN_OK) st = train_gru(ctx, gm, gt, eval_n, quiet, &r[1]);
    int rc = st == ATTN_OK ? 0 : cli_fail("compare", st);
    if (rc == 0) print_table(r, eval_n, attn_ctx_threads(ctx));
    if (rc == 0 && out_dir) rc = save_both(out_dir, tm, gm);
    if (rc == 0 && n_in > 0) printf("\n");
    for (int i = 0; i < n_in && rc == 0; i++) rc = translate_both(ctx, tm, gm, inputs[i], i + 1, maps);
    attn_transformer_free(tm);
    attn_seq2seq_free(gm);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    task_train_cfg tt = task_train_cfg_default(), gt = task_train_cfg_default();
    int64_t steps = tt.steps, threads = 0, eval_n = 2000, batch = tt.batch, data_seed = (int64_t)tt.data_seed;
    double target = 0.99;
    const char *maps = NULL, *out_dir = NULL;
    int quiet = 0;
    const opt opts[] = {
        {"--steps", OPT_INT, &steps, 1, 1e7, "at most this many steps for each model (default 1500)"},
        {"--target", OPT_REAL, &target, 0, 1,
         "stop a model once its held-out exact match reaches this (default 0.99)"},
        {"--batch", OPT_INT, &batch, 1, 4096, "examples per step for both (default 64)"},
        {"--data-seed", OPT_INT, &data_seed, 0, 4e9, "training example stream for both (default 1)"},
        {"--eval-n", OPT_INT, &eval_n, 1, 1e6, "held-out examples of the final comparison (default 2000)"},
        {"--maps", OPT_STR, &maps, 0, 0, "directory for DIR/<k>-transformer.png and DIR/<k>-gru.png"},
        {"--out-dir", OPT_STR, &out_dir, 0, 0, "directory to save both models in"},
        {"--threads", OPT_INT, &threads, 0, 256, "threads, 0 = all cores (default 0)"},
        {"--quiet", OPT_FLAG, &quiet, 0, 0, "no progress output"},
    };
    char *pos[64];
    int n_pos, rc = cli_parse("compare", "[options] [TEXT...]", argc, argv, opts,
                              (int)(sizeof opts / sizeof opts[0]), pos, &n_pos, 64);
    if (rc) return rc < 0 ? 0 : rc;
    task_train_cfg *both[2] = {&tt, &gt};
    for (int i = 0; i < 2; i++) {
        both[i]->steps = steps;
        both[i]->target = target;
        both[i]->batch = batch;
        both[i]->data_seed = (uint64_t)data_seed;
    }
    if ((maps && cli_ensure_dir("compare", "--maps", maps)) ||
        (out_dir && cli_ensure_dir("compare", "--out-dir", out_dir)))
        return 1;
    attn_ctx *ctx = cli_make_ctx("compare", threads);
    if (!ctx) return 1;
    char *defaults[sizeof default_inputs / sizeof default_inputs[0]], **inputs = pos;
    if (n_pos == 0) { /* no inputs given: a few of the README's */
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            defaults[i] = (char *)default_inputs[i];
        inputs = defaults;
        n_pos = (int)(sizeof defaults / sizeof defaults[0]);
    }
    rc = run(ctx, &tt, &gt, eval_n, quiet, inputs, n_pos, maps, out_dir);
    attn_ctx_free(ctx);
    return rc;
}
