/* explain_page.c - the explorer page of a document (attn/explain.h): one
 * HTML file with the stylesheet and the script inline and the document as
 * JSON in <script type="application/json" id="attn-data">. The same code
 * measures the page and fills a buffer (the JSON writer's sink, counting
 * first); a file is written from that buffer by an atomic replacement
 * (core/fileio.h). The JSON's form is in docs/explain.md. */
#include "viz/explain_internal.h"
#include "viz/explain_text.h"

#include "core/check.h"
#include "core/fileio.h"

#include <stdio.h>
#include <string.h>

#define ITEM(l, type, i) (((const type *)(l).items)[i])

static void json_strings(attn__json_out *o, char *const *s, int64_t n)
{
    attn__json_out_raw(o, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) attn__json_out_raw(o, ",", 1);
        attn__explain_json_string(o, s[i]);
    }
    attn__json_out_raw(o, "]", 1);
}

/* "key": (the key is plain ASCII) */
static void key(attn__json_out *o, const char *k)
{
    attn__json_out_raw(o, "\"", 1);
    attn__explain_str(o, k);
    attn__json_out_raw(o, "\":", 2);
}

static void json_seqs(attn__json_out *o, const attn_explain *e)
{
    attn__json_out_raw(o, "[", 1);
    for (int64_t i = 0; i < e->seqs.n; i++) {
        const attn__explain_seq *s = &ITEM(e->seqs, attn__explain_seq, i);
        attn__explain_str(o, i ? ",\n{" : "{");
        key(o, "name");
        attn__explain_json_string(o, s->name);
        attn__json_out_raw(o, ",", 1);
        key(o, "tokens");
        json_strings(o, s->tokens, s->n);
        attn__json_out_raw(o, "}", 1);
    }
    attn__json_out_raw(o, "]", 1);
}

static int64_t seq_len(const attn_explain *e, int64_t i)
{
    return ITEM(e->seqs, attn__explain_seq, i).n;
}

static void json_groups(attn__json_out *o, const attn_explain *e)
{
    attn__json_out_raw(o, "[", 1);
    for (int64_t i = 0; i < e->groups.n; i++) {
        const attn__explain_group *g = &ITEM(e->groups, attn__explain_group, i);
        attn__explain_str(o, i ? ",\n{" : "{");
        key(o, "name");
        attn__explain_json_string(o, g->name);
        const char *keys[4] = {",\"q\":", ",\"k\":", ",\"layers\":", ",\"heads\":"};
        int64_t vals[4] = {g->q_seq, g->k_seq, g->n_layers, g->n_heads};
        for (int k = 0; k < 4; k++) {
            attn__explain_str(o, keys[k]);
            attn__json_out_int(o, vals[k]);
        }
        attn__explain_str(o, ",\"w\":");
        attn__explain_base64_f32(o, g->w,
                                 g->n_layers * g->n_heads * seq_len(e, g->q_seq) * seq_len(e, g->k_seq));
        attn__json_out_raw(o, "}", 1);
    }
    attn__json_out_raw(o, "]", 1);
}

static void json_maps(attn__json_out *o, const attn_explain *e)
{
    attn__json_out_raw(o, "[", 1);
    for (int64_t i = 0; i < e->maps.n; i++) {
        const attn__explain_map *m = &ITEM(e->maps, attn__explain_map, i);
        const attn__explain_group *g = &ITEM(e->groups, attn__explain_group, m->group);
        int64_t nq = seq_len(e, g->q_seq), nk = seq_len(e, g->k_seq);
        attn__explain_str(o, i ? ",\n{\"group\":" : "{\"group\":");
        attn__json_out_int(o, m->group);
        attn__explain_str(o, m->kind == ATTN_EXPLAIN_KIND_ROLLOUT ? ",\"kind\":\"rollout\""
                                                                 : ",\"kind\":\"relevance\"");
        attn__explain_str(o, ",\"target\":");
        attn__json_out_int(o, m->target);
        attn__explain_str(o, ",\"m\":");
        attn__explain_base64_f32(o, m->m, nq * nk);
        attn__explain_str(o, ",\"attr\":");
        if (m->attr) attn__explain_base64_f32(o, m->attr, nk);
        else attn__explain_str(o, "null");
        attn__json_out_raw(o, "}", 1);
    }
    attn__json_out_raw(o, "]", 1);
}

static void json_doc(attn__json_out *o, const attn_explain *e)
{
    attn__explain_str(o, "{\"version\":1,\"max_tokens\":");
    attn__json_out_int(o, ATTN_EXPLAIN_MAX_TOKENS);
    attn__explain_str(o, ",\n\"title\":");
    attn__explain_json_string(o, e->title);
    attn__explain_str(o, ",\n\"notes\":");
    json_strings(o, e->notes.items, e->notes.n);
    attn__explain_str(o, ",\n\"seqs\":");
    json_seqs(o, e);
    attn__explain_str(o, ",\n\"targets\":");
    json_strings(o, e->targets.items, e->targets.n);
    attn__explain_str(o, ",\n\"start\":{\"group\":");
    attn__json_out_int(o, e->sel_group);
    attn__explain_str(o, ",\"layer\":");
    attn__json_out_int(o, e->sel_layer);
    attn__explain_str(o, ",\"head\":");
    attn__json_out_int(o, e->sel_head);
    attn__explain_str(o, "},\n\"groups\":");
    json_groups(o, e);
    attn__explain_str(o, ",\n\"maps\":");
    json_maps(o, e);
    attn__explain_str(o, "}");
}

/* The whole page into o. */
static void page(attn__json_out *o, const attn_explain *e)
{
    attn__explain_str(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                         "<link rel=\"icon\" href=\"data:,\">\n<title>");
    attn__explain_html_text(o, e->title);
    attn__explain_str(o, "</title>\n<style>\n");
    attn__explain_str(o, attn__explain_css);
    attn__explain_str(o, "</style>\n</head>\n<body>\n<noscript>This page draws its views with "
                         "JavaScript; please enable it.</noscript>\n<div id=\"app\"></div>\n"
                         "<script type=\"application/json\" id=\"attn-data\">");
    json_doc(o, e);
    attn__explain_str(o, "</script>\n<script>\n");
    attn__explain_str(o, attn__explain_js);
    attn__explain_str(o, "</script>\n</body>\n</html>\n");
}

static attn_status check_doc(const char *fn, const attn_explain *e)
{
    ATTN__NOT_NULL(fn, e);
    if (e->groups.n == 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: the document has no attention group "
                         "(attn_explain_add_group)", fn);
    return ATTN_OK;
}

attn_status attn_explain_html(const attn_explain *e, char *buf, size_t cap, size_t *n)
{
    attn_status st = check_doc(__func__, e);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, n);
    if (buf == NULL && cap != 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'buf' is NULL with cap %zu", __func__, cap);
    attn__json_out count = {NULL, 0, 0};
    page(&count, e);
    if (buf == NULL) {
        *n = count.len;
        return ATTN_OK;
    }
    if (cap <= count.len)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' is %zu; the page needs %zu bytes with "
                         "its NUL", __func__, cap, count.len + 1);
    attn__json_out o = {buf, cap, 0};
    page(&o, e);
    *n = o.len;
    return ATTN_OK;
}

attn_status attn_explain_write(const attn_explain *e, const char *path, size_t *bytes)
{
    attn_status st = check_doc(__func__, e);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, path);
    attn__atomic a;
    if ((st = attn__atomic_open(__func__, path, &a)) != ATTN_OK) return st;
    size_t n = 0;
    st = attn_explain_html(e, NULL, 0, &n);
    char *text = st == ATTN_OK ? attn_alloc(n + 1) : NULL;
    if (st == ATTN_OK && text == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "%s: no memory for the page (%zu bytes)", __func__, n + 1);
    if (st == ATTN_OK) st = attn_explain_html(e, text, n + 1, &n);
    if (st == ATTN_OK) {
        attn__atomic_write(&a, text, n);
        st = attn__atomic_commit(&a);
    } else {
        attn__atomic_abort(&a);
    }
    attn_release(text);
    if (st == ATTN_OK && bytes) *bytes = n;
    return st;
}
