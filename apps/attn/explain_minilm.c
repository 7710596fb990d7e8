/* explain_minilm.c - the `attn explain` adapter of the BERT sentence model
 * (all-MiniLM-L6-v2 by default): one or two sentences, each a group of
 * every layer's and head's self-attention, their attention rollout, and
 * with two sentences the relevance of their cosine similarity.
 *
 * The weights come from attn_bert_attention_probe: one forward keeping
 * each layer's LSE, then the backward, whose probes recompute the
 * probabilities (and dL/dA) layer by layer. With two sentences the
 * explained output is cos(a, b) = a . b of the unit embeddings, so
 * dL/d emb_a = emb_b and dL/d emb_b = emb_a; with one there is no
 * output to explain and d emb = 0 (the probes give the weights only).
 * Token labels are the input's own bytes of each word piece (offsets), so
 * they read as typed; [CLS] and [SEP] keep their names. */
#include "explain.h"

#include "cli.h"
#include "minilm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One sentence: its word pieces (at most the model's and the page's
 * limit), their labels, and its embedding. */
typedef struct {
    const char *text;
    int32_t *ids;
    int64_t *offsets; /* [n][2] */
    char **labels;
    int64_t n;
    float *emb; /* [H] */
} sentence;

static void sentence_free(sentence *s)
{
    for (int64_t i = 0; s->labels && i < s->n; i++) free(s->labels[i]);
    free(s->labels);
    free(s->ids);
    free(s->offsets);
    free(s->emb);
}

/* label i = text[offsets[i][0] .. offsets[i][1]), or the token's name. */
static char *label(const minilm_engine *e, const sentence *s, int64_t i)
{
    int64_t b = s->offsets[2 * i], end = s->offsets[2 * i + 1];
    const char *name = attn_wordpiece_token(e->tok, s->ids[i]);
    size_t n = b < 0 ? strlen(name) : (size_t)(end - b);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, b < 0 ? name : s->text + b, n);
        out[n] = '\0';
    }
    return out;
}

static int tokenize(const minilm_engine *e, attn_explain *doc, const char *what, sentence *s)
{
    int64_t limit = e->max_len < ATTN_EXPLAIN_MAX_TOKENS ? e->max_len : ATTN_EXPLAIN_MAX_TOKENS;
    int64_t full = 0;
    attn_status st = attn_wordpiece_encode(e->tok, s->text, INT_MAX, NULL, 0, &full, NULL);
    s->ids = malloc((size_t)limit * sizeof *s->ids);
    s->offsets = malloc((size_t)limit * 2 * sizeof *s->offsets);
    s->emb = malloc((size_t)e->H * sizeof *s->emb);
    if (st == ATTN_OK && (!s->ids || !s->offsets || !s->emb))
        st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK)
        st = attn_wordpiece_encode(e->tok, s->text, limit, s->ids, limit, &s->n, s->offsets);
    if (st == ATTN_OK && full > limit)
        st = explain_note_truncated(doc, what, full, s->n,
                                    e->max_len <= ATTN_EXPLAIN_MAX_TOKENS
                                        ? "the model reads at most its max_seq_length"
                                        : "the page embeds at most ATTN_EXPLAIN_MAX_TOKENS");
    if (st == ATTN_OK && (s->labels = calloc((size_t)s->n, sizeof *s->labels)) == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    for (int64_t i = 0; st == ATTN_OK && i < s->n; i++)
        if ((s->labels[i] = label(e, s, i)) == NULL) st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st != ATTN_OK) {
        fprintf(stderr, "%s explain: %s: %s (%s)\n", cli_prog, what, attn_last_error(),
                attn_status_name(st));
        return 1;
    }
    return 0;
}

/* The group of sentence s (weights from its probes), its rollout and, with
 * d_emb (two sentences), its relevance for target. */
static attn_status add_sentence(const minilm_engine *e, attn_explain *doc, const char *name,
                                const sentence *s, const float *d_emb, int64_t target,
                                int64_t *group)
{
    const attn_bert_config *c = attn_bert_get_config(e->m);
    int64_t n = s->n, seq = 0;
    explain_probes pr = {0};
    float *zero = calloc((size_t)e->H, sizeof *zero), *r = malloc((size_t)(n * n) * sizeof *r);
    float *attr = malloc((size_t)n * sizeof *attr), *all = NULL;
    char gname[96];
    snprintf(gname, sizeof gname, "%s: self-attention", name);
    attn_status st = zero && r && attr ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK)
        st = attn_bert_attention_probe(e->ctx, e->m, s->ids, n, d_emb ? d_emb : zero,
                                       explain_collect, &pr, NULL);
    if (st == ATTN_OK) st = attn_explain_add_tokens(doc, name, (const char *const *)s->labels, n, &seq);
    if (st == ATTN_OK) st = attn_explain_add_group(doc, gname, seq, seq, c->n_layers, c->n_heads, group);
    if (st == ATTN_OK) st = explain_set_group(doc, *group, &pr, 0, c->n_layers, 0);
    int64_t per = c->n_heads * n * n;
    if (st == ATTN_OK && (all = malloc((size_t)(c->n_layers * per) * sizeof *all)) == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    for (int64_t l = 0; st == ATTN_OK && l < c->n_layers; l++)
        memcpy(all + l * per, explain_find(&pr, 0, l, 0)->w, (size_t)per * sizeof *all);
    if (st == ATTN_OK) st = attn_explain_rollout(all, c->n_layers, c->n_heads, n, r);
    if (st == ATTN_OK) explain_column_mean(r, n, n, 0, attr);
    if (st == ATTN_OK) st = attn_explain_add_map(doc, *group, ATTN_EXPLAIN_KIND_ROLLOUT, -1, r, attr);
    if (st == ATTN_OK && d_emb) {
        /* relevance R (identity included); the page shows R - I, what the
           layers add, and each token's mean over the query rows */
        st = explain_stack(&pr, 0, c->n_layers, 0, 1.0, n, r);
        explain_column_mean(r, n, n, 1, attr);
        for (int64_t i = 0; i < n; i++) r[i * n + i] -= 1.0f;
        if (st == ATTN_OK)
            st = attn_explain_add_map(doc, *group, ATTN_EXPLAIN_KIND_RELEVANCE, target, r, attr);
    }
    explain_probes_free(&pr);
    free(all);
    free(zero);
    free(r);
    free(attr);
    return st;
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static int build(const explain_args *a, attn_explain **doc)
{
    minilm_engine e;
    int rc = minilm_open("explain", "--model-dir", a->model_dir, a->threads, &e);
    if (rc) return rc;
    const attn_bert_config *c = attn_bert_get_config(e.m);
    if ((rc = explain_check_range(a, c->n_layers, c->n_heads)) != 0) {
        minilm_close(&e);
        return rc;
    }
    sentence s[2];
    memset(s, 0, sizeof s);
    const char *names[2] = {"sentence A", "sentence B"};
    char note[4200];
    attn_status st = attn_explain_create("attn explain: all-MiniLM-L6-v2", doc);
    snprintf(note, sizeof note, "BERT sentence model: %lld layers, %lld heads, hidden size %lld; "
             "embeddings are the mean of the last layer's tokens, L2-normalised.",
             (long long)c->n_layers, (long long)c->n_heads, (long long)c->hidden_size);
    if (st == ATTN_OK) st = attn_explain_add_note(*doc, note);
    for (int i = 0; st == ATTN_OK && rc == 0 && i < a->n_texts; i++) {
        s[i].text = a->texts[i];
        snprintf(note, sizeof note, "%s: %.4000s", names[i], s[i].text);
        st = attn_explain_add_note(*doc, note);
        if (st == ATTN_OK) rc = tokenize(&e, *doc, names[i], &s[i]);
        if (st == ATTN_OK && rc == 0)
            st = attn_bert_embed(e.ctx, e.m, s[i].ids, &s[i].n, 1, s[i].n, s[i].emb);
    }
    int64_t target = -1, group = 0;
    if (st == ATTN_OK && rc == 0 && a->n_texts == 2) {
        double cos = dot(s[0].emb, s[1].emb, e.H);
        snprintf(note, sizeof note, "cosine similarity of A and B = %.6f", cos);
        st = attn_explain_add_target(*doc, note, &target);
        if (st == ATTN_OK) st = attn_explain_add_note(*doc, note);
        if (st == ATTN_OK) printf("cosine similarity %.6f\n", cos);
    }
    for (int i = 0; st == ATTN_OK && rc == 0 && i < a->n_texts; i++) {
        int64_t g = 0;
        st = add_sentence(&e, *doc, names[i], &s[i], target >= 0 ? s[1 - i].emb : NULL, target, &g);
        if (i == 0) group = g;
    }
    if (st == ATTN_OK && rc == 0) rc = explain_select(a, *doc, group, c->n_layers, c->n_heads);
    if (st != ATTN_OK) rc = cli_fail("explain", st);
    for (int i = 0; i < 2; i++) sentence_free(&s[i]);
    minilm_close(&e);
    return rc;
}

const explain_model explain_minilm = {
    "minilm", "all-MiniLM-L6-v2 on one sentence, or two and the relevance of their cosine", 1, 2,
    0, build};
