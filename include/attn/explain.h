/* attn/explain.h - an attention explorer as one self-contained HTML page
 * (library attn_explain: libattn and attn_formats, no libpng). docs/explain.md
 * describes the page and its views.
 *
 * A document (attn_explain) is the data model of one page:
 *   - token sequences (the rows and columns of the maps), at most
 *     ATTN_EXPLAIN_MAX_TOKENS tokens each;
 *   - attention groups: one kind of attention of a model (BERT's
 *     self-attention, a translator's cross-attention, ...) as n_layers x
 *     n_heads weight matrices w [n_q, n_k], rows the query sequence's
 *     tokens and columns the key sequence's;
 *   - targets: the outputs a relevance map explains ("output 3: '7'");
 *   - maps: matrices [n_q, n_k] derived from a group (attention rollout or
 *     gradient-weighted relevance), each with an optional attribution per
 *     key token [n_k];
 *   - notes shown at the top of the page, and the layer and head the page
 *     opens on.
 * attn_explain_html / attn_explain_write turn it into the page: HTML with
 * the CSS and the JavaScript inline and the data as JSON in a
 * <script type="application/json"> element (floats as base64 of their
 * little-endian float32 bytes). Every string is UTF-8; it is escaped for
 * HTML and for JSON inside <script> ("</script>", "<!--", quotes, U+2028,
 * U+2029 and control characters cannot end the script or change the
 * data), and invalid UTF-8 bytes become U+FFFD. The page needs no network.
 *
 * The arithmetic of the maps (attn_explain_rollout, attn_explain_head_mean,
 * attn_explain_self_rule, attn_explain_cross_rule) follows
 *   Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers":
 *     rollout = prod over layers of rownorm(0.5 mean_h A + 0.5 I);
 *   Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability for
 *   Interpreting Bi-Modal and Encoder-Decoder Transformers":
 *     Abar = mean_h (dy/dA * A)^+, and per layer
 *     self-attention   R_xx += Abar R_xx,  R_xy += Abar R_xy     (eq. 6, 7)
 *     cross-attention  R_ts += Rbar_tt^T Abar Rbar_ss            (eq. 10)
 *     with Rbar = rownorm(R - I) + I                             (eq. 8, 9).
 *
 * Errors: every function returns an attn_status and names the bad argument
 * in attn_last_error(); on error nothing is written and nothing leaks.
 */
#ifndef ATTN_EXPLAIN_H
#define ATTN_EXPLAIN_H

#include <attn/attn.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTN_EXPLAIN_MAX_TOKENS 512 /* tokens of one sequence the page embeds */
#define ATTN_EXPLAIN_MAX_TEXT 4096  /* bytes of one title, note, name or token */

typedef struct attn_explain attn_explain;

typedef enum attn_explain_kind {
    ATTN_EXPLAIN_KIND_ROLLOUT = 1,  /* attention rollout (no target) */
    ATTN_EXPLAIN_KIND_RELEVANCE = 2 /* gradient-weighted relevance of a target */
} attn_explain_kind;

/* ---- the document --------------------------------------------------------------- */

/* A new empty document with the page's title (copied). */
ATTN_API attn_status attn_explain_create(const char *title, attn_explain **out);
ATTN_API void attn_explain_free(attn_explain *e); /* accepts NULL */

/* A line of text at the top of the page (the model, the input, what was
 * truncated). */
ATTN_API attn_status attn_explain_add_note(attn_explain *e, const char *text);

/* A token sequence tokens[0..n) (strings copied), 1 <= n <=
 * ATTN_EXPLAIN_MAX_TOKENS (more is ATTN_BAD_DIM: the caller truncates and
 * says so in a note). *seq receives its index, from 0. */
ATTN_API attn_status attn_explain_add_tokens(attn_explain *e, const char *name,
                                             const char *const *tokens, int64_t n,
                                             int64_t *seq);

/* An attention group: n_layers x n_heads maps of q_seq x k_seq, all 0 until
 * set (n_layers, n_heads in [1, 4096]). *group receives its index. */
ATTN_API attn_status attn_explain_add_group(attn_explain *e, const char *name, int64_t q_seq,
                                            int64_t k_seq, int64_t n_layers, int64_t n_heads,
                                            int64_t *group);

/* Sets the weights w [n_q, n_k] (finite) of one layer and head of a group. */
ATTN_API attn_status attn_explain_set_weights(attn_explain *e, int64_t group, int64_t layer,
                                              int64_t head, const float *w);

/* The output a relevance map explains, as the page labels it. *target
 * receives its index. */
ATTN_API attn_status attn_explain_add_target(attn_explain *e, const char *label,
                                             int64_t *target);

/* A map of a group: m [n_q, n_k] and attr [n_k] (the attribution of each
 * key token, or NULL), both finite. target: an index from
 * attn_explain_add_target for RELEVANCE, -1 for ROLLOUT. One map per
 * (group, kind, target); another is ATTN_BAD_PARAM. */
ATTN_API attn_status attn_explain_add_map(attn_explain *e, int64_t group, attn_explain_kind kind,
                                          int64_t target, const float *m, const float *attr);

/* The group, layer and head the page opens on (default 0, 0, 0). */
ATTN_API attn_status attn_explain_select(attn_explain *e, int64_t group, int64_t layer,
                                         int64_t head);

/* The page as text: buf [cap] receives the HTML and a NUL, *n its length
 * without the NUL. buf == NULL and cap == 0 asks for *n only; a smaller
 * cap is ATTN_BAD_DIM naming the size needed. A document without a group
 * is ATTN_BAD_PARAM. */
ATTN_API attn_status attn_explain_html(const attn_explain *e, char *buf, size_t cap, size_t *n);

/* Writes the page to path by an atomic replacement, as
 * attn_safetensors_save does (docs/checkpoint.md "Files"): a symbolic link
 * is followed and the file it names replaced, only ever by a complete page;
 * *bytes (may be NULL) receives its size. ATTN_BAD_PARAM for an over-long
 * path; ATTN_IO if path names a directory, FIFO, socket or device (left
 * untouched), or cannot be written (nothing is left behind). */
ATTN_API attn_status attn_explain_write(const attn_explain *e, const char *path, size_t *bytes);

/* ---- the arithmetic of rollout and relevance -------------------------------------- */

/* out [n_q, n_k] = mean over heads of a [n_heads, n_q, n_k] if grad is
 * NULL, else of max(grad * a, 0) (grad [n_heads, n_q, n_k]: the gradient of
 * the explained output with respect to a). */
ATTN_API attn_status attn_explain_head_mean(const float *a, const float *grad, int64_t n_heads,
                                            int64_t n_q, int64_t n_k, float *out);

/* Attention rollout of a self-attention stack a [n_layers, n_heads, n, n]
 * (layer 0 the first): r [n, n] = prod_{l = last..0} rownorm(0.5 mean_h a_l
 * + 0.5 I), rows of r summing to 1. */
ATTN_API attn_status attn_explain_rollout(const float *a, int64_t n_layers, int64_t n_heads,
                                          int64_t n, float *r);

/* Chefer's self-attention rule: r_xx [n, n] += abar r_xx and, if r_xy is
 * not NULL, r_xy [n, m] += abar r_xy (abar [n, n], computed in double). */
ATTN_API attn_status attn_explain_self_rule(const float *abar, int64_t n, float *r_xx,
                                            float *r_xy, int64_t m);

/* Chefer's cross-attention rule: r_ts [t, s] += Rbar_tt^T abar Rbar_ss with
 * abar [t, s], r_tt [t, t], r_ss [s, s] and Rbar = rownorm(R - I) + I (a
 * row of R - I summing to 0 stays 0). */
ATTN_API attn_status attn_explain_cross_rule(const float *abar, const float *r_tt, int64_t t,
                                             const float *r_ss, int64_t s, float *r_ts);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_EXPLAIN_H */
