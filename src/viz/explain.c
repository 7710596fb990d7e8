/* explain.c - the document of the attention explorer (attn/explain.h):
 * token sequences, attention groups, targets, derived maps and notes, each
 * checked as it is added and copied into memory the document owns. The
 * page itself is written by explain_page.c. */
#include "viz/explain_internal.h"

#include "core/check.h"

#include <math.h>
#include <string.h>

enum { MAX_ITEMS = 1 << 16, MAX_LAYERS_HEADS = 4096 };

/* ---- owned copies and growing lists ------------------------------------------------ */

/* *out = a copy of s, or ATTN_BAD_PARAM if it is longer than
 * ATTN_EXPLAIN_MAX_TEXT bytes (what names the argument). */
static attn_status copy_text(const char *fn, const char *what, const char *s, char **out)
{
    if (s == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument '%s' is NULL", fn, what);
    size_t n = strlen(s);
    if (n > ATTN_EXPLAIN_MAX_TEXT)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument '%s' has %zu bytes; at most %d are "
                         "allowed", fn, what, n, ATTN_EXPLAIN_MAX_TEXT);
    char *c = attn_alloc(n + 1);
    if (c == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    memcpy(c, s, n + 1);
    *out = c;
    return ATTN_OK;
}

/* Room for one more item of `size` bytes in l. */
static attn_status reserve(const char *fn, attn__explain_list *l, size_t size)
{
    if (l->n < l->cap) return ATTN_OK;
    if (l->n >= MAX_ITEMS)
        return attn_fail(ATTN_BAD_DIM, "%s: the document already holds %d items of this kind",
                         fn, MAX_ITEMS);
    int64_t cap = l->cap ? 2 * l->cap : 8;
    void *p = attn_alloc((size_t)cap * size);
    if (p == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    if (l->n > 0) memcpy(p, l->items, (size_t)l->n * size);
    attn_release(l->items);
    l->items = p;
    l->cap = cap;
    return ATTN_OK;
}

#define ITEM(l, type, i) (((type *)(l).items)[i])

static void free_strings(char **s, int64_t n)
{
    for (int64_t i = 0; s != NULL && i < n; i++) attn_release(s[i]);
    attn_release(s);
}

void attn_explain_free(attn_explain *e)
{
    if (e == NULL) return;
    attn_release(e->title);
    free_strings(e->notes.items, e->notes.n);
    free_strings(e->targets.items, e->targets.n);
    for (int64_t i = 0; i < e->seqs.n; i++) {
        attn__explain_seq *s = &ITEM(e->seqs, attn__explain_seq, i);
        attn_release(s->name);
        free_strings(s->tokens, s->n);
    }
    attn_release(e->seqs.items);
    for (int64_t i = 0; i < e->groups.n; i++) {
        attn_release(ITEM(e->groups, attn__explain_group, i).name);
        attn_release(ITEM(e->groups, attn__explain_group, i).w);
    }
    attn_release(e->groups.items);
    for (int64_t i = 0; i < e->maps.n; i++) {
        attn_release(ITEM(e->maps, attn__explain_map, i).m);
        attn_release(ITEM(e->maps, attn__explain_map, i).attr);
    }
    attn_release(e->maps.items);
    attn_release(e);
}

attn_status attn_explain_create(const char *title, attn_explain **out)
{
    ATTN__NOT_NULL(__func__, out);
    attn_explain *e = attn_calloc(1, sizeof *e);
    if (e == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    attn_status st = copy_text(__func__, "title", title, &e->title);
    if (st != ATTN_OK) {
        attn_explain_free(e);
        return st;
    }
    *out = e;
    return ATTN_OK;
}

/* Appends a copy of text to a list of strings. */
static attn_status push_text(const char *fn, const char *what, attn__explain_list *l,
                             const char *text)
{
    char *c = NULL;
    attn_status st = copy_text(fn, what, text, &c);
    if (st == ATTN_OK && (st = reserve(fn, l, sizeof(char *))) != ATTN_OK) attn_release(c);
    if (st == ATTN_OK) ITEM(*l, char *, l->n++) = c;
    return st;
}

attn_status attn_explain_add_note(attn_explain *e, const char *text)
{
    ATTN__NOT_NULL(__func__, e);
    return push_text(__func__, "text", &e->notes, text);
}

attn_status attn_explain_add_target(attn_explain *e, const char *label, int64_t *target)
{
    ATTN__NOT_NULL(__func__, e);
    ATTN__NOT_NULL(__func__, target);
    attn_status st = push_text(__func__, "label", &e->targets, label);
    if (st == ATTN_OK) *target = e->targets.n - 1;
    return st;
}

/* ---- sequences and groups ------------------------------------------------------------ */

attn_status attn_explain_add_tokens(attn_explain *e, const char *name, const char *const *tokens,
                                    int64_t n, int64_t *seq)
{
    ATTN__NOT_NULL(__func__, e);
    ATTN__NOT_NULL(__func__, tokens);
    ATTN__NOT_NULL(__func__, seq);
    if (n < 1 || n > ATTN_EXPLAIN_MAX_TOKENS)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'n' is %lld; it must be in [1, %d] "
                         "(ATTN_EXPLAIN_MAX_TOKENS)", __func__, (long long)n,
                         ATTN_EXPLAIN_MAX_TOKENS);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] == NULL)
            return attn_fail(ATTN_NULL_ARG, "%s: argument 'tokens[%lld]' is NULL", __func__,
                             (long long)i);
    attn__explain_seq s = {NULL, attn_calloc((size_t)n, sizeof(char *)), n};
    attn_status st = s.tokens ? copy_text(__func__, "name", name, &s.name)
                              : attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    for (int64_t i = 0; st == ATTN_OK && i < n; i++)
        st = copy_text(__func__, "tokens[i]", tokens[i], &s.tokens[i]);
    if (st == ATTN_OK) st = reserve(__func__, &e->seqs, sizeof s);
    if (st != ATTN_OK) {
        attn_release(s.name);
        free_strings(s.tokens, n);
        return st;
    }
    ITEM(e->seqs, attn__explain_seq, e->seqs.n++) = s;
    *seq = e->seqs.n - 1;
    return ATTN_OK;
}

static attn_status check_index(const char *fn, const char *what, int64_t i, int64_t n)
{
    if (i < 0 || i >= n)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument '%s' is %lld; it must be in [0, %lld)", fn,
                         what, (long long)i, (long long)n);
    return ATTN_OK;
}

/* Tokens of sequence i. */
static int64_t seq_len(const attn_explain *e, int64_t i)
{
    return ITEM(e->seqs, attn__explain_seq, i).n;
}

attn_status attn_explain_add_group(attn_explain *e, const char *name, int64_t q_seq, int64_t k_seq,
                                   int64_t n_layers, int64_t n_heads, int64_t *group)
{
    ATTN__NOT_NULL(__func__, e);
    ATTN__NOT_NULL(__func__, group);
    attn_status st = check_index(__func__, "q_seq", q_seq, e->seqs.n);
    if (st == ATTN_OK) st = check_index(__func__, "k_seq", k_seq, e->seqs.n);
    if (st != ATTN_OK) return st;
    if (n_layers < 1 || n_layers > MAX_LAYERS_HEADS || n_heads < 1 || n_heads > MAX_LAYERS_HEADS)
        return attn_fail(ATTN_BAD_DIM, "%s: arguments 'n_layers' (%lld) and 'n_heads' (%lld) must "
                         "be in [1, %d]", __func__, (long long)n_layers, (long long)n_heads,
                         MAX_LAYERS_HEADS);
    int64_t plane = seq_len(e, q_seq) * seq_len(e, k_seq), count;
    ATTN__MUL(__func__, n_layers * n_heads, plane, &count);
    attn__explain_group g = {NULL, q_seq, k_seq, n_layers, n_heads,
                             attn_calloc((size_t)count, sizeof(float))};
    st = g.w ? copy_text(__func__, "name", name, &g.name)
             : attn_fail(ATTN_NO_MEMORY, "%s: no memory for %lld weights", __func__,
                         (long long)count);
    if (st == ATTN_OK) st = reserve(__func__, &e->groups, sizeof g);
    if (st != ATTN_OK) {
        attn_release(g.name);
        attn_release(g.w);
        return st;
    }
    ITEM(e->groups, attn__explain_group, e->groups.n++) = g;
    *group = e->groups.n - 1;
    return ATTN_OK;
}

/* ATTN_BAD_PARAM naming the first non-finite x[i]. */
static attn_status check_finite(const char *fn, const char *what, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return attn_fail(ATTN_BAD_PARAM, "%s: argument '%s[%lld]' is %g; it must be finite",
                             fn, what, (long long)i, (double)x[i]);
    return ATTN_OK;
}

attn_status attn_explain_set_weights(attn_explain *e, int64_t group, int64_t layer, int64_t head,
                                     const float *w)
{
    ATTN__NOT_NULL(__func__, e);
    ATTN__NOT_NULL(__func__, w);
    attn_status st = check_index(__func__, "group", group, e->groups.n);
    if (st != ATTN_OK) return st;
    attn__explain_group *g = &ITEM(e->groups, attn__explain_group, group);
    st = check_index(__func__, "layer", layer, g->n_layers);
    if (st == ATTN_OK) st = check_index(__func__, "head", head, g->n_heads);
    int64_t plane = seq_len(e, g->q_seq) * seq_len(e, g->k_seq);
    if (st == ATTN_OK) st = check_finite(__func__, "w", w, plane);
    if (st == ATTN_OK)
        memcpy(g->w + (layer * g->n_heads + head) * plane, w, (size_t)plane * sizeof(float));
    return st;
}

attn_status attn_explain_select(attn_explain *e, int64_t group, int64_t layer, int64_t head)
{
    ATTN__NOT_NULL(__func__, e);
    attn_status st = check_index(__func__, "group", group, e->groups.n);
    if (st != ATTN_OK) return st;
    const attn__explain_group *g = &ITEM(e->groups, attn__explain_group, group);
    st = check_index(__func__, "layer", layer, g->n_layers);
    if (st == ATTN_OK) st = check_index(__func__, "head", head, g->n_heads);
    if (st != ATTN_OK) return st;
    e->sel_group = group;
    e->sel_layer = layer;
    e->sel_head = head;
    return ATTN_OK;
}

/* ---- maps ------------------------------------------------------------------------------ */

static attn_status check_map(const char *fn, const attn_explain *e, int64_t group,
                             attn_explain_kind kind, int64_t target)
{
    attn_status st = check_index(fn, "group", group, e->groups.n);
    if (st != ATTN_OK) return st;
    if (kind != ATTN_EXPLAIN_KIND_ROLLOUT && kind != ATTN_EXPLAIN_KIND_RELEVANCE)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'kind' is %d; it must be "
                         "ATTN_EXPLAIN_KIND_ROLLOUT or _RELEVANCE", fn, (int)kind);
    if (kind == ATTN_EXPLAIN_KIND_ROLLOUT && target != -1)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'target' is %lld; a rollout map takes -1",
                         fn, (long long)target);
    if (kind == ATTN_EXPLAIN_KIND_RELEVANCE && (st = check_index(fn, "target", target,
                                                                 e->targets.n)) != ATTN_OK)
        return st;
    for (int64_t i = 0; i < e->maps.n; i++) {
        const attn__explain_map *m = &ITEM(e->maps, attn__explain_map, i);
        if (m->group == group && m->kind == kind && m->target == target)
            return attn_fail(ATTN_BAD_PARAM, "%s: group %lld already has this map (kind %d, "
                             "target %lld)", fn, (long long)group, (int)kind, (long long)target);
    }
    return ATTN_OK;
}

/* A new copy of x [n]. */
static attn_status copy_floats(const char *fn, const float *x, int64_t n, float **out)
{
    *out = attn_alloc((size_t)n * sizeof(float));
    if (*out == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    memcpy(*out, x, (size_t)n * sizeof(float));
    return ATTN_OK;
}

attn_status attn_explain_add_map(attn_explain *e, int64_t group, attn_explain_kind kind,
                                 int64_t target, const float *m, const float *attr)
{
    ATTN__NOT_NULL(__func__, e);
    ATTN__NOT_NULL(__func__, m);
    attn_status st = check_map(__func__, e, group, kind, target);
    if (st != ATTN_OK) return st;
    const attn__explain_group *g = &ITEM(e->groups, attn__explain_group, group);
    int64_t nq = seq_len(e, g->q_seq), nk = seq_len(e, g->k_seq);
    attn__explain_map x = {group, target, kind, NULL, NULL};
    st = check_finite(__func__, "m", m, nq * nk);
    if (st == ATTN_OK && attr) st = check_finite(__func__, "attr", attr, nk);
    if (st == ATTN_OK) st = copy_floats(__func__, m, nq * nk, &x.m);
    if (st == ATTN_OK && attr) st = copy_floats(__func__, attr, nk, &x.attr);
    if (st == ATTN_OK) st = reserve(__func__, &e->maps, sizeof x);
    if (st != ATTN_OK) {
        attn_release(x.m);
        attn_release(x.attr);
        return st;
    }
    ITEM(e->maps, attn__explain_map, e->maps.n++) = x;
    return ATTN_OK;
}
