/* explain_dates.c - the `attn explain` adapters of the two date
 * translators that `attn train` makes:
 *
 * The transformer (--model dates): the input is translated greedily, then
 * one teacher-forced step with the backward pass probes every attention
 * call (attn_transformer_step_probe). Its batch has one row per output
 * character t, all with the same source and decoder input and with the
 * loss on that row's character only, so the rows' gradients are those of
 * each output's log-probability (times -1/rows, the mean cross-entropy).
 * Groups: encoder self-attention (source x source), decoder
 * self-attention (output x decoder input) and cross-attention (output x
 * source), every layer and head. Maps: rollout of each stack (Abnar &
 * Zuidema) and, through the cross-attention, Chefer et al.'s rules on the
 * raw head means, rows normalised; relevance (Chefer et al.) for each
 * output character, and one cross-attention map whose row t explains
 * output t.
 *
 * The GRU with additive attention (--model gru): one attention layer and
 * one head (attn_seq2seq_generate's weights). Rollout over a single layer
 * is that layer. Relevance comes from the same one-row-per-output probe
 * step (attn_seq2seq_step_probe: one call per decoder step): with no
 * self-attention around it, Chefer et al.'s rules leave
 * Abar = (dlog p / dw * w)^+, step by step. */
#include "explain.h"

#include "cli.h"
#include "task/charvocab.h"
#include "task/dates.h"
#include "task/train.h"
#include "task/train_gru.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OUT_MAX = TASK_DATES_TGT_LEN + 1, LABEL_CAP = 8 };

/* The input, cut to the longest source the models take (with a note). */
static attn_status source_text(attn_explain *doc, const char *text, char *src)
{
    int64_t n = (int64_t)strlen(text);
    snprintf(src, TASK_DATES_SRC_MAX + 1, "%s", text);
    if (n <= TASK_DATES_SRC_MAX) return ATTN_OK;
    return explain_note_truncated(doc, "the input", n, TASK_DATES_SRC_MAX,
                                  "the date models read at most 48 characters");
}

/* labels [n][LABEL_CAP] of the characters of s as the page shows them:
 * the character itself, or the vocabulary's name of the id it reads. */
static void char_labels(const char *s, int64_t n, char (*labels)[LABEL_CAP], const char **ptrs)
{
    for (int64_t i = 0; i < n; i++) {
        int32_t id = task_charvocab_id((unsigned char)s[i]);
        snprintf(labels[i], LABEL_CAP, "%s", task_charvocab_label(id));
        ptrs[i] = labels[i];
    }
}

static int load_failed(const char *path, const char *as, attn_status st, const char *hint)
{
    fprintf(stderr, "%s explain: cannot load '%s' as %s: %s (%s)%s\n", cli_prog, path, as,
            attn_last_error(), attn_status_name(st), hint);
    return 1;
}

/* The batch of a probe step: one row per output character b, each with the
 * same source src [s] and decoder input (BOS, out[0 .. t-2]) and with the
 * loss on its own character only (out[b], or EOS for the last row when eos);
 * the other labels are PAD, which the loss ignores. */
typedef struct {
    attn_nn_batch b;
    int32_t *ids; /* src [t, s], tgt_in [t, t], tgt_out [t, t] */
    int64_t *lens;
} per_output;

static attn_status per_output_make(const int32_t *src, int64_t s, const int32_t *out, int64_t t,
                                   int eos, per_output *p)
{
    p->ids = calloc((size_t)(t * (s + 2 * t)), sizeof *p->ids);
    p->lens = malloc((size_t)t * sizeof *p->lens);
    if (!p->ids || !p->lens) {
        free(p->ids);
        free(p->lens);
        return attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
    }
    int32_t *bsrc = p->ids, *tin = p->ids + t * s, *tout = tin + t * t;
    for (int64_t b = 0; b < t; b++) {
        memcpy(bsrc + b * s, src, (size_t)s * sizeof *src);
        tin[b * t] = TASK_CHAR_BOS;
        for (int64_t i = 1; i < t; i++) tin[b * t + i] = out[i - 1];
        tout[b * t + b] = b < t - 1 || !eos ? out[b] : TASK_CHAR_EOS;
        p->lens[b] = s;
    }
    p->b = (attn_nn_batch){t, s, t, bsrc, tin, tout, p->lens, NULL, TASK_CHAR_PAD, NULL, NULL};
    return ATTN_OK;
}

static void per_output_free(per_output *p)
{
    free(p->ids);
    free(p->lens);
}

/* The target "every output" and its map of group g: row b of rows [t, s]
 * is output b's relevance. */
static attn_status every_output(attn_explain *doc, int64_t g, const float *rows)
{
    int64_t every = 0;
    attn_status st = attn_explain_add_target(doc, "every output (row t explains output t)", &every);
    return st == ATTN_OK ? attn_explain_add_map(doc, g, ATTN_EXPLAIN_KIND_RELEVANCE, every, rows, NULL)
                         : st;
}

/* ---- the transformer --------------------------------------------------------------------- */

typedef struct {
    attn_transformer *m;
    attn_ctx *ctx;
    int64_t Le, Ld, H, s, t; /* layers, heads, source and output lengths */
    explain_probes pr;
} translator;

/* Chefer et al.'s rules over the whole model for batch row b (scale: see
 * explain_head_mean): r_ss [s, s] over the encoder, then per decoder block
 * r_tt [t, t], r_ts [t, s] += its self-attention, r_ts += its
 * cross-attention (with r_ss). abar [t, max(s, t)] is scratch. */
static attn_status rules(const translator *x, int64_t b, double scale, float *r_ss, float *r_tt,
                         float *r_ts, float *abar)
{
    attn_status st = explain_stack(&x->pr, 0, x->Le, b, scale, x->s, r_ss);
    memset(r_tt, 0, (size_t)(x->t * x->t) * sizeof *r_tt);
    memset(r_ts, 0, (size_t)(x->t * x->s) * sizeof *r_ts);
    for (int64_t i = 0; i < x->t; i++) r_tt[i * x->t + i] = 1;
    for (int64_t l = 0; st == ATTN_OK && l < x->Ld; l++) {
        const explain_site *self = explain_find(&x->pr, 1, l, 0);
        const explain_site *cross = explain_find(&x->pr, 1, l, 1);
        if (!self || !cross)
            return attn_fail(ATTN_BAD_PARAM, "attn explain: no probe of decoder layer %lld",
                             (long long)l);
        st = explain_head_mean(self, b, scale, abar);
        if (st == ATTN_OK) st = attn_explain_self_rule(abar, x->t, r_tt, r_ts, x->s);
        if (st == ATTN_OK) st = explain_head_mean(cross, b, scale, abar);
        if (st == ATTN_OK) st = attn_explain_cross_rule(abar, r_tt, x->t, r_ss, x->s, r_ts);
    }
    return st;
}

/* w [L, H, n_q, n_k] of a stack's sites, batch row 0. */
static attn_status stack_weights(const translator *x, int stack, int64_t L, int cross, float *w)
{
    for (int64_t l = 0; l < L; l++) {
        const explain_site *s = explain_find(&x->pr, stack, l, cross);
        if (!s)
            return attn_fail(ATTN_BAD_PARAM, "attn explain: no probe of layer %lld", (long long)l);
        memcpy(w + l * s->H * s->Sq * s->Sk, s->w, (size_t)(s->H * s->Sq * s->Sk) * sizeof *w);
    }
    return ATTN_OK;
}

static void minus_eye(float *r, int64_t n)
{
    for (int64_t i = 0; i < n; i++) r[i * n + i] -= 1.0f;
}

static void normalise_rows(float *m, int64_t q, int64_t k)
{
    for (int64_t i = 0; i < q; i++) {
        double sum = 0;
        for (int64_t j = 0; j < k; j++) sum += m[i * k + j];
        for (int64_t j = 0; sum > 0 && j < k; j++) m[i * k + j] = (float)(m[i * k + j] / sum);
    }
}

/* Groups 0, 1, 2 (encoder, decoder, cross) with their rollout maps. */
static attn_status rollout_maps(const translator *x, attn_explain *doc, float *buf)
{
    int64_t s = x->s, t = x->t, big = s > t ? s : t;
    float *w = buf, *r_ss = w + (x->Le > x->Ld ? x->Le : x->Ld) * x->H * big * big;
    float *r_tt = r_ss + s * s, *r_ts = r_tt + t * t, *abar = r_ts + t * s;
    attn_status st = stack_weights(x, 0, x->Le, 0, w);
    if (st == ATTN_OK) st = attn_explain_rollout(w, x->Le, x->H, s, r_ss);
    if (st == ATTN_OK) st = attn_explain_add_map(doc, 0, ATTN_EXPLAIN_KIND_ROLLOUT, -1, r_ss, NULL);
    if (st == ATTN_OK) st = stack_weights(x, 1, x->Ld, 0, w);
    if (st == ATTN_OK) st = attn_explain_rollout(w, x->Ld, x->H, t, r_tt);
    if (st == ATTN_OK) st = attn_explain_add_map(doc, 1, ATTN_EXPLAIN_KIND_ROLLOUT, -1, r_tt, NULL);
    if (st == ATTN_OK) st = rules(x, 0, 0.0, r_ss, r_tt, r_ts, abar);
    if (st == ATTN_OK) normalise_rows(r_ts, t, s);
    if (st == ATTN_OK) st = attn_explain_add_map(doc, 2, ATTN_EXPLAIN_KIND_ROLLOUT, -1, r_ts, NULL);
    return st;
}

/* For each output b, its relevance maps; then the cross-attention map whose
 * row b is output b's. labels: the output characters. */
static attn_status relevance_maps(const translator *x, attn_explain *doc, const char *const *labels,
                                  float *buf)
{
    int64_t s = x->s, t = x->t, big = s > t ? s : t;
    float *r_ss = buf, *r_tt = r_ss + s * s, *r_ts = r_tt + t * t, *abar = r_ts + t * s;
    float *rows = abar + t * big; /* [t, s]: row b from output b */
    attn_status st = ATTN_OK;
    for (int64_t b = 0; st == ATTN_OK && b < t; b++) {
        char label[64];
        int64_t target = 0;
        snprintf(label, sizeof label, "output %lld: %s", (long long)b, labels[b]);
        st = attn_explain_add_target(doc, label, &target);
        /* the gradient of log p(output b) is -t times row b's (mean loss) */
        if (st == ATTN_OK) st = rules(x, b, -(double)t, r_ss, r_tt, r_ts, abar);
        if (st != ATTN_OK) break;
        minus_eye(r_ss, s);
        minus_eye(r_tt, t);
        memcpy(rows + b * s, r_ts + b * s, (size_t)s * sizeof *rows);
        st = attn_explain_add_map(doc, 0, ATTN_EXPLAIN_KIND_RELEVANCE, target, r_ss, NULL);
        if (st == ATTN_OK)
            st = attn_explain_add_map(doc, 1, ATTN_EXPLAIN_KIND_RELEVANCE, target, r_tt,
                                      r_tt + b * t);
        if (st == ATTN_OK)
            st = attn_explain_add_map(doc, 2, ATTN_EXPLAIN_KIND_RELEVANCE, target, r_ts,
                                      r_ts + b * s);
    }
    return st == ATTN_OK ? every_output(doc, 2, rows) : st;
}

static int load_translator(const char *path, attn_transformer **m)
{
    if (cli_is_rnn_checkpoint(path)) {
        fprintf(stderr, "%s explain: '%s' is a GRU checkpoint (attn-rnn-checkpoint-1), not the "
                "transformer translator's; use --model gru\n", cli_prog, path);
        return 1;
    }
    attn_status st = attn_transformer_load(path, m);
    if (st != ATTN_OK) return load_failed(path, "a translator checkpoint", st, "");
    if (attn_transformer_get_config(*m)->arch != ATTN_TRANSFORMER_ARCH_ENCDEC) {
        fprintf(stderr, "%s explain: '%s' is a decoder-only model; --model dates explains the "
                "encoder-decoder translator ('attn train' with --arch encdec)\n", cli_prog, path);
        return 1;
    }
    return 0;
}

/* Runs the probe step: one row per output character (see the top). */
static attn_status probe(translator *x, const int32_t *src, const int32_t *out, int eos)
{
    per_output p;
    attn_status st = per_output_make(src, x->s, out, x->t, eos, &p);
    if (st != ATTN_OK) return st;
    attn_nn_train_opts o = {0, 0, 0, 0};
    double loss = 0;
    st = attn_transformer_step_probe(x->ctx, x->m, &p.b, &o, explain_collect, &x->pr, &loss);
    per_output_free(&p);
    return st;
}

/* The document of a translated input: sequences, groups, maps. */
static attn_status document(translator *x, attn_explain *doc, const char *src, const char *out,
                            int eos)
{
    char labels[3][TASK_DATES_SRC_MAX + OUT_MAX][LABEL_CAP];
    const char *ptrs[3][TASK_DATES_SRC_MAX + OUT_MAX];
    char_labels(src, x->s, labels[0], ptrs[0]);
    ptrs[1][0] = "<s>";
    char_labels(out, x->t - 1, labels[1], ptrs[1] + 1); /* <s>, then the outputs but the last */
    char_labels(out, x->t - (eos ? 1 : 0), labels[2], ptrs[2]);
    if (eos) ptrs[2][x->t - 1] = "</s>";
    int64_t seq[3], g[3];
    attn_status st = ATTN_OK;
    const char *seq_names[3] = {"source", "decoder input", "output"};
    for (int i = 0; st == ATTN_OK && i < 3; i++)
        st = attn_explain_add_tokens(doc, seq_names[i], ptrs[i], i == 0 ? x->s : x->t, &seq[i]);
    const char *names[3] = {"encoder self-attention", "decoder self-attention", "cross-attention"};
    const int64_t q[3] = {0, 2, 2}, k[3] = {0, 1, 0}, L[3] = {x->Le, x->Ld, x->Ld};
    for (int i = 0; st == ATTN_OK && i < 3; i++)
        st = attn_explain_add_group(doc, names[i], seq[q[i]], seq[k[i]], L[i], x->H, &g[i]);
    if (st == ATTN_OK) st = explain_set_group(doc, 0, &x->pr, 0, x->Le, 0);
    if (st == ATTN_OK) st = explain_set_group(doc, 1, &x->pr, 1, x->Ld, 0);
    if (st == ATTN_OK) st = explain_set_group(doc, 2, &x->pr, 1, x->Ld, 1);
    int64_t big = x->s > x->t ? x->s : x->t, Lmax = x->Le > x->Ld ? x->Le : x->Ld;
    size_t floats = (size_t)((Lmax * x->H + 8) * big * big);
    float *buf = st == ATTN_OK ? malloc(floats * sizeof *buf) : NULL;
    if (st == ATTN_OK && !buf) st = attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
    if (st == ATTN_OK) st = rollout_maps(x, doc, buf);
    if (st == ATTN_OK) st = relevance_maps(x, doc, ptrs[2], buf);
    free(buf);
    return st;
}

static int build_translator(const explain_args *a, attn_explain **doc)
{
    translator x;
    memset(&x, 0, sizeof x);
    int rc = load_translator(a->checkpoint, &x.m);
    if (rc) return rc;
    const attn_transformer_config *c = attn_transformer_get_config(x.m);
    x.Le = c->n_enc_layers;
    x.Ld = c->n_dec_layers;
    x.H = c->n_heads;
    rc = explain_check_range(a, x.Ld, x.H);
    if (rc != 0 || !(x.ctx = cli_make_ctx("explain", a->threads))) {
        attn_transformer_free(x.m);
        return rc ? rc : 1;
    }
    char src[TASK_DATES_SRC_MAX + 1], out[64], note[512];
    int32_t src_ids[TASK_DATES_SRC_MAX], out_ids[OUT_MAX];
    int64_t n_out = 0, n = 0;
    attn_status st = attn_explain_create("attn explain: date translator (transformer)", doc);
    if (st == ATTN_OK) st = source_text(*doc, a->texts[0], src);
    if (st == ATTN_OK) st = task_translate(x.ctx, x.m, src, 1, out, sizeof out, NULL, &n_out);
    int eos = n_out < OUT_MAX;
    x.s = (int64_t)strlen(src);
    x.t = n_out + eos;
    if (st == ATTN_OK) st = task_charvocab_encode(src, src_ids, TASK_DATES_SRC_MAX, &n);
    if (st == ATTN_OK) st = task_charvocab_encode(out, out_ids, OUT_MAX, &n);
    snprintf(note, sizeof note, "Encoder-decoder transformer from '%.300s': %lld+%lld layers, %lld "
             "heads, d_model %lld. Greedy translation; row t of the decoder's maps is the step "
             "that produced output t.", a->checkpoint, (long long)x.Le, (long long)x.Ld,
             (long long)x.H, (long long)c->d_model);
    if (st == ATTN_OK) st = attn_explain_add_note(*doc, note);
    snprintf(note, sizeof note, "%s -> %s", src, out);
    if (st == ATTN_OK) st = attn_explain_add_note(*doc, note);
    if (st == ATTN_OK && x.t == 0)
        st = attn_fail(ATTN_BAD_PARAM, "the model produced nothing for '%s'", src);
    if (st == ATTN_OK) st = probe(&x, src_ids, out_ids, eos);
    if (st == ATTN_OK) st = document(&x, *doc, src, out, eos);
    if (st == ATTN_OK) printf("%s -> %s\n", src, out);
    rc = st == ATTN_OK ? explain_select(a, *doc, 2, x.Ld, x.H) : cli_fail("explain", st);
    explain_probes_free(&x.pr);
    attn_ctx_free(x.ctx);
    attn_transformer_free(x.m);
    return rc;
}

const explain_model explain_translator = {
    "dates", "the date translator of 'attn train': encoder, decoder and cross-attention", 1, 1, 1,
    build_translator};

/* ---- the GRU ---------------------------------------------------------------------------- */

static int load_gru(const char *path, attn_seq2seq **g)
{
    attn_status st = attn_seq2seq_load(path, g);
    if (st == ATTN_OK) return 0;
    attn_transformer *m = NULL;
    int transformer = attn_transformer_load(path, &m) == ATTN_OK;
    attn_transformer_free(m);
    return load_failed(path, "a GRU checkpoint", st,
                       transformer ? "; it is a transformer checkpoint: use --model dates" : "");
}

/* The probe step of the GRU: one row per output character (as probe() for
 * the transformer; the weights' rows end before EOS). */
static attn_status gru_probe(attn_ctx *ctx, attn_seq2seq *g, const int32_t *src, int64_t s,
                             const int32_t *out, int64_t t, explain_probes *pr)
{
    per_output p;
    attn_status st = per_output_make(src, s, out, t, 0, &p);
    if (st != ATTN_OK) return st;
    double loss = 0;
    st = attn_seq2seq_step_probe(ctx, g, &p.b, explain_collect, pr, &loss);
    per_output_free(&p);
    return st;
}

/* For each output b the relevance map [t, s]: row i = max(-t dw_b * w_b, 0)
 * of step i (the gradient of log p(output b) is -t times row b's), then
 * the map whose row b is output b's own. */
static attn_status gru_relevance(attn_explain *doc, const explain_probes *pr, int64_t g,
                                 const char *const *labels, int64_t t, int64_t s)
{
    float *m = malloc((size_t)(2 * t * s) * sizeof *m), *rows = m ? m + t * s : NULL;
    attn_status st = m ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "attn explain: out of memory");
    for (int64_t b = 0; st == ATTN_OK && b < t; b++) {
        for (int64_t i = 0; i < t; i++) {
            const explain_site *x = NULL;
            for (int k = 0; k < pr->n; k++)
                if (pr->s[k].row == i) x = &pr->s[k];
            if (!x) {
                st = attn_fail(ATTN_BAD_PARAM, "attn explain: no probe of step %lld", (long long)i);
                break;
            }
            for (int64_t j = 0; j < s; j++) {
                double v = -(double)t * x->dw[b * s + j] * x->w[b * s + j];
                m[i * s + j] = v > 0 ? (float)v : 0.0f;
            }
        }
        char label[64];
        int64_t target = 0;
        snprintf(label, sizeof label, "output %lld: %s", (long long)b, labels[b]);
        if (st == ATTN_OK) st = attn_explain_add_target(doc, label, &target);
        if (st == ATTN_OK)
            st = attn_explain_add_map(doc, g, ATTN_EXPLAIN_KIND_RELEVANCE, target, m, m + b * s);
        if (st == ATTN_OK) memcpy(rows + b * s, m + b * s, (size_t)s * sizeof *rows);
    }
    if (st == ATTN_OK) st = every_output(doc, g, rows);
    free(m);
    return st;
}

static attn_status gru_document(attn_explain *doc, const char *src, const char *out, int64_t n_out,
                                const float *w, const explain_probes *pr)
{
    int64_t s = (int64_t)strlen(src), seq_s = 0, seq_o = 0, g = 0;
    char labels[2][TASK_DATES_SRC_MAX][LABEL_CAP];
    const char *ptrs[2][TASK_DATES_SRC_MAX];
    char_labels(src, s, labels[0], ptrs[0]);
    char_labels(out, n_out, labels[1], ptrs[1]);
    attn_status st = attn_explain_add_tokens(doc, "source", ptrs[0], s, &seq_s);
    if (st == ATTN_OK) st = attn_explain_add_tokens(doc, "output", ptrs[1], n_out, &seq_o);
    if (st == ATTN_OK)
        st = attn_explain_add_group(doc, "additive attention", seq_o, seq_s, 1, 1, &g);
    if (st == ATTN_OK) st = attn_explain_set_weights(doc, g, 0, 0, w);
    /* one attention layer: its rollout is the layer itself */
    if (st == ATTN_OK) st = attn_explain_add_map(doc, g, ATTN_EXPLAIN_KIND_ROLLOUT, -1, w, NULL);
    if (st == ATTN_OK) st = gru_relevance(doc, pr, g, ptrs[1], n_out, s);
    if (st == ATTN_OK)
        st = attn_explain_add_note(doc, "One attention layer with one head: its rollout is the "
                                        "layer itself, and its relevance is the positive part of "
                                        "gradient times weight, step by step. The GRU's "
                                        "recurrence carries information past the attention; "
                                        "neither map attributes that.");
    return st;
}

static int build_gru(const explain_args *a, attn_explain **doc)
{
    attn_seq2seq *g = NULL;
    int rc = load_gru(a->checkpoint, &g);
    if (rc) return rc;
    attn_ctx *ctx = NULL;
    if ((rc = explain_check_range(a, 1, 1)) != 0 || !(ctx = cli_make_ctx("explain", a->threads))) {
        attn_seq2seq_free(g);
        return rc ? rc : 1;
    }
    char src[TASK_DATES_SRC_MAX + 1], out[64], note[512];
    float w[OUT_MAX * TASK_DATES_SRC_MAX];
    int64_t n_out = 0;
    attn_status st =
        attn_explain_create("attn explain: date translator (GRU + additive attention)", doc);
    if (st == ATTN_OK) st = source_text(*doc, a->texts[0], src);
    if (st == ATTN_OK) st = task_gru_translate(ctx, g, src, out, sizeof out, w, &n_out);
    snprintf(note, sizeof note, "GRU encoder-decoder with additive attention (Bahdanau et al. "
             "2015) from '%.300s'. Greedy translation; row t is the step that produced output t.",
             a->checkpoint);
    if (st == ATTN_OK) st = attn_explain_add_note(*doc, note);
    snprintf(note, sizeof note, "%s -> %s", src, out);
    if (st == ATTN_OK) st = attn_explain_add_note(*doc, note);
    if (st == ATTN_OK && n_out == 0)
        st = attn_fail(ATTN_BAD_PARAM, "the model produced nothing for '%s'", src);
    int32_t src_ids[TASK_DATES_SRC_MAX], out_ids[OUT_MAX];
    int64_t n = 0;
    explain_probes pr = {0};
    if (st == ATTN_OK) st = task_charvocab_encode(src, src_ids, TASK_DATES_SRC_MAX, &n);
    if (st == ATTN_OK) st = task_charvocab_encode(out, out_ids, OUT_MAX, &n);
    if (st == ATTN_OK) st = gru_probe(ctx, g, src_ids, (int64_t)strlen(src), out_ids, n_out, &pr);
    if (st == ATTN_OK) st = gru_document(*doc, src, out, n_out, w, &pr);
    explain_probes_free(&pr);
    if (st == ATTN_OK) printf("%s -> %s\n", src, out);
    rc = st == ATTN_OK ? explain_select(a, *doc, 0, 1, 1) : cli_fail("explain", st);
    attn_ctx_free(ctx);
    attn_seq2seq_free(g);
    return rc;
}

const explain_model explain_gru = {
    "gru", "the GRU date translator of 'attn train --arch gru': its additive attention", 1, 1, 1,
    build_gru};
