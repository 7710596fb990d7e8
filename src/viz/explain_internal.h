/* explain_internal.h - the document of attn/explain.h, shared by
 * explain.c (building it) and explain_page.c (writing the page). */
#ifndef ATTN_VIZ_EXPLAIN_INTERNAL_H
#define ATTN_VIZ_EXPLAIN_INTERNAL_H

#include <attn/explain.h>

#include <stddef.h>

typedef struct {
    char *name;
    char **tokens;
    int64_t n;
} attn__explain_seq;

typedef struct {
    char *name;
    int64_t q_seq, k_seq, n_layers, n_heads;
    float *w; /* [n_layers, n_heads, n_q, n_k] */
} attn__explain_group;

typedef struct {
    int64_t group, target; /* target -1: none */
    attn_explain_kind kind;
    float *m;    /* [n_q, n_k] */
    float *attr; /* [n_k] or NULL */
} attn__explain_map;

/* A growing array: items of `size` bytes, n used of cap. */
typedef struct {
    void *items;
    int64_t n, cap;
} attn__explain_list;

struct attn_explain {
    char *title;
    attn__explain_list notes;   /* char * */
    attn__explain_list seqs;    /* attn__explain_seq */
    attn__explain_list groups;  /* attn__explain_group */
    attn__explain_list targets; /* char * */
    attn__explain_list maps;    /* attn__explain_map */
    int64_t sel_group, sel_layer, sel_head;
};

/* The page's stylesheet and script (explain_page.css, explain_page.js),
 * NUL-terminated, embedded by the build (scripts/embed_assets.cmake). */
extern const char attn__explain_css[];
extern const char attn__explain_js[];

#endif /* ATTN_VIZ_EXPLAIN_INTERNAL_H */
