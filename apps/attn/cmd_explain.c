/* cmd_explain.c - `attn explain`: runs a model on one or two inputs and
 * writes the attention explorer, one self-contained HTML page
 * (attn/explain.h; docs/explain.md). The models are adapters (explain.h);
 * this file holds the command and what the adapters share: collecting the
 * probes of a backward pass, the relevance of a stack, the page's opening
 * layer and head, truncation notes. */
#include "explain.h"

#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const explain_model *const models[] = {&explain_minilm, &explain_translator, &explain_gru,
                                             &explain_chat};
enum { N_MODELS = sizeof models / sizeof models[0] };

/* ---- probes ----------------------------------------------------------------------------- */

attn_status explain_collect(attn_ctx *ctx, const attn_nn_attn_probe *p, void *user)
{
    explain_probes *c = user;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        explain_site *s = realloc(c->s, (size_t)cap * sizeof *s);
        if (!s) return attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
        c->s = s;
        c->cap = cap;
    }
    explain_site x = {p->stack, p->cross, p->layer, p->row, p->q.dim[0], p->q.dim[2], p->q.dim[1],
                      p->k.dim[1], NULL, NULL};
    size_t n = (size_t)(x.B * x.H * x.Sq * x.Sk);
    x.w = malloc(n * sizeof(float));
    x.dw = malloc(n * sizeof(float));
    attn_status st = x.w && x.dw ? attn_nn_attn_probe_weights(ctx, p, x.w, x.dw)
                                 : attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
    if (st != ATTN_OK) {
        free(x.w);
        free(x.dw);
        return st;
    }
    c->s[c->n++] = x;
    return ATTN_OK;
}

const explain_site *explain_find(const explain_probes *c, int stack, int64_t layer, int cross)
{
    for (int i = 0; i < c->n; i++)
        if (c->s[i].stack == stack && c->s[i].layer == layer && c->s[i].cross == cross)
            return &c->s[i];
    return NULL;
}

void explain_probes_free(explain_probes *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->s[i].w);
        free(c->s[i].dw);
    }
    free(c->s);
    memset(c, 0, sizeof *c);
}

static attn_status missing(int stack, int64_t layer, int cross)
{
    return attn_fail(ATTN_BAD_PARAM, "attn explain: the backward pass did not reach stack %d, "
                     "layer %lld, %s", stack, (long long)layer, cross ? "cross" : "self");
}

attn_status explain_set_group(attn_explain *doc, int64_t g, const explain_probes *c, int stack,
                              int64_t n_layers, int cross)
{
    for (int64_t l = 0; l < n_layers; l++) {
        const explain_site *s = explain_find(c, stack, l, cross);
        if (!s) return missing(stack, l, cross);
        for (int64_t h = 0; h < s->H; h++) {
            attn_status st = attn_explain_set_weights(doc, g, l, h, s->w + h * s->Sq * s->Sk);
            if (st != ATTN_OK) return st;
        }
    }
    return ATTN_OK;
}

attn_status explain_head_mean(const explain_site *s, int64_t b, double scale, float *out)
{
    int64_t n = s->H * s->Sq * s->Sk;
    if (scale == 0) return attn_explain_head_mean(s->w, NULL, s->H, s->Sq, s->Sk, out);
    float *g = malloc((size_t)n * sizeof *g);
    if (!g) return attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
    for (int64_t e = 0; e < n; e++) g[e] = (float)(scale * s->dw[b * n + e]);
    attn_status st = attn_explain_head_mean(s->w + b * n, g, s->H, s->Sq, s->Sk, out);
    free(g);
    return st;
}

attn_status explain_stack(const explain_probes *c, int stack, int64_t n_layers, int64_t b,
                          double scale, int64_t n, float *r)
{
    float *abar = malloc((size_t)(n * n) * sizeof *abar);
    if (!abar) return attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
    memset(r, 0, (size_t)(n * n) * sizeof *r);
    for (int64_t i = 0; i < n; i++) r[i * n + i] = 1;
    attn_status st = ATTN_OK;
    for (int64_t l = 0; st == ATTN_OK && l < n_layers; l++) {
        const explain_site *s = explain_find(c, stack, l, 0);
        st = s ? explain_head_mean(s, b, scale, abar) : missing(stack, l, 0);
        if (st == ATTN_OK) st = attn_explain_self_rule(abar, n, r, NULL, 0);
    }
    free(abar);
    return st;
}

void explain_column_mean(const float *m, int64_t q, int64_t k, int minus_eye, float *attr)
{
    for (int64_t j = 0; j < k; j++) {
        double acc = 0;
        for (int64_t i = 0; i < q; i++) acc += m[i * k + j] - (minus_eye && i == j ? 1.0 : 0.0);
        attr[j] = (float)(acc / (double)q);
    }
}

/* ---- the page's opening view and notes ---------------------------------------------------- */

int explain_check_range(const explain_args *a, int64_t n_layers, int64_t n_heads)
{
    if (a->layer >= n_layers || a->head >= n_heads) {
        fprintf(stderr, "%s explain: --layer %lld --head %lld: the model has layers 0..%lld and "
                "heads 0..%lld\n", cli_prog, (long long)(a->layer < 0 ? 0 : a->layer),
                (long long)(a->head < 0 ? 0 : a->head), (long long)n_layers - 1,
                (long long)n_heads - 1);
        return 2;
    }
    return 0;
}

int explain_select(const explain_args *a, attn_explain *doc, int64_t group, int64_t n_layers,
                   int64_t n_heads)
{
    int rc = explain_check_range(a, n_layers, n_heads);
    if (rc) return rc;
    attn_status st = attn_explain_select(doc, group, a->layer < 0 ? 0 : a->layer,
                                         a->head < 0 ? 0 : a->head);
    return st == ATTN_OK ? 0 : cli_fail("explain", st);
}

attn_status explain_note_truncated(attn_explain *doc, const char *what, int64_t n, int64_t kept,
                                   const char *why)
{
    char note[512];
    snprintf(note, sizeof note, "%s has %lld tokens; %s, so the page shows the first %lld "
             "(truncated).", what, (long long)n, why, (long long)kept);
    fprintf(stderr, "%s explain: %s\n", cli_prog, note);
    return attn_explain_add_note(doc, note);
}

/* ---- the command --------------------------------------------------------------------------- */

static int check_usage(const explain_model *m, const explain_args *a)
{
    if (a->n_texts < m->min_texts || a->n_texts > m->max_texts) {
        char what[160];
        snprintf(what, sizeof what, "--model %s takes %d to %d inputs, not %d", m->name,
                 m->min_texts, m->max_texts, a->n_texts);
        return cli_usage_error("explain", "%s", what);
    }
    if (m->checkpoint && !a->checkpoint)
        return cli_usage_error("explain", "--model %s needs --checkpoint PATH (from 'attn train')",
                               m->name);
    if (!m->checkpoint && a->checkpoint)
        return cli_usage_error("explain", "--checkpoint is for --model dates or gru, not %s",
                               m->name);
    if (a->model_dir && strcmp(m->name, "minilm") != 0)
        return cli_usage_error("explain", "--model-dir is for --model minilm, not %s", m->name);
    if (a->gguf && strcmp(m->name, "chat") != 0)
        return cli_usage_error("explain", "--gguf is for --model chat, not %s", m->name);
    return 0;
}

int cmd_explain(int argc, char **argv)
{
    const char *out = NULL, *model = "minilm";
    explain_args a = {NULL, 0, NULL, NULL, NULL, 0, -1, -1};
    const opt opts[] = {
        {"--out", OPT_STR, &out, 0, 0, "the HTML page to write (required)"},
        {"--model", OPT_STR, &model, 0, 0, "minilm (default) | dates (the translator) | gru | chat"},
        {"--checkpoint", OPT_STR, &a.checkpoint, 0, 0, "checkpoint from 'attn train' (dates, gru)"},
        {"--model-dir", OPT_STR, &a.model_dir, 0, 0, "MiniLM directory (default: as 'attn embed')"},
        {"--gguf", OPT_STR, &a.gguf, 0, 0, "the chat model's GGUF file (default: as 'attn chat')"},
        {"--layer", OPT_INT, &a.layer, 0, 65535, "layer the page opens on (default 0)"},
        {"--head", OPT_INT, &a.head, 0, 65535, "head the page opens on (default 0)"},
        {"--threads", OPT_INT, &a.threads, 0, 256, "threads (default 0 = every CPU)"},
    };
    char *pos[3];
    int n_pos, rc = cli_parse("explain", "--out F.html [--model minilm|dates|gru|chat] TEXT [TEXT2]", argc,
                              argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, &n_pos, 2);
    if (rc) return rc < 0 ? 0 : rc;
    const char *names[N_MODELS];
    for (int i = 0; i < N_MODELS; i++) names[i] = models[i]->name;
    int which = 0;
    if ((rc = cli_pick("explain", "--model", model, names, N_MODELS, &which)) != 0) return rc;
    if (!out) return cli_usage_error("explain", "%s", "--out F.html is required");
    a.texts = pos;
    a.n_texts = n_pos;
    if ((rc = check_usage(models[which], &a)) != 0) return rc;
    if (cli_prepare_output("explain", "--out", out)) return 1;
    attn_explain *doc = NULL;
    if ((rc = models[which]->build(&a, &doc)) != 0) {
        attn_explain_free(doc);
        return rc;
    }
    size_t bytes = 0;
    attn_status st = attn_explain_write(doc, out, &bytes);
    attn_explain_free(doc);
    if (st != ATTN_OK) return cli_fail("explain", st);
    printf("wrote %s (%zu bytes, %.2f MB)\n", out, bytes, (double)bytes / 1e6);
    return 0;
}
