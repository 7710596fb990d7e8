/* explain_chat.c - the `attn explain` adapter of the chat model
 * (SmolLM2-135M-Instruct by default, attn/llama.h): one user message in
 * the file's chat template, the model's greedy reply (at most REPLY_TOKENS
 * tokens, printed), and one group of every layer's and head's causal
 * self-attention over prompt + reply, with its attention rollout.
 *
 * The weights come from attn_llama_attention, layer by layer (each call
 * runs the layers up to its own afresh). The Llama model has no backward,
 * so there is no gradient-weighted relevance: the page says so in a note.
 * The sequence is capped (MAX_PROMPT) so the page stays near 40 MB: its
 * data is n_layers x n_heads maps of n x n floats. */
#include "explain.h"

#include "chat.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { REPLY_TOKENS = 32, MAX_PROMPT = 128, REPLY_CAP = 2048 };

/* The reply as it streams: printed, and kept for the page's note. */
typedef struct {
    char text[REPLY_CAP];
    size_t len;
} reply_text;

static int on_token(void *user, int32_t id, const char *text, size_t len)
{
    reply_text *r = user;
    (void)id;
    fwrite(text, 1, len, stdout);
    size_t room = REPLY_CAP - 1 - r->len;
    memcpy(r->text + r->len, text, len < room ? len : room);
    r->len += len < room ? len : room;
    return 0;
}

/* The prompt's ids: the user message in the chat template with the
 * file's default system line; 2 after a message if it is too long. */
static int prompt_ids(const chat_engine *e, const char *user, int32_t **ids, int64_t *n)
{
    attn_llama_message msg = {"user", user};
    size_t len = 0;
    char *text = NULL;
    attn_status st = attn_llama_chat_format(e->m, &msg, 1, 1, 0, NULL, 0, &len);
    if (st == ATTN_OK && (text = malloc(len + 1)) == NULL) st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK) st = attn_llama_chat_format(e->m, &msg, 1, 1, 0, text, len, &len);
    if (st != ATTN_OK) {
        free(text);
        return cli_fail("explain", st);
    }
    text[len] = '\0';
    int rc = chat_encode("explain", e->m, text, ids, n);
    free(text);
    if (rc == 0 && *n > MAX_PROMPT) {
        fprintf(stderr, "%s explain: the message is %lld tokens in the chat template; --model chat "
                "takes at most %d (the page holds every layer's and head's map)\n", cli_prog,
                (long long)*n, MAX_PROMPT);
        free(*ids);
        return 2;
    }
    return rc;
}

/* The group of the session's tokens: labels, every layer's and head's
 * weights, and their rollout. */
static attn_status add_conversation(const chat_engine *e, attn_explain *doc, int64_t *group)
{
    const attn_llama_config *c = attn_llama_get_config(e->m);
    const int32_t *ids = attn_llama_session_tokens(e->s);
    int64_t n = attn_llama_session_length(e->s), L = c->n_layers, H = c->n_heads, seq = 0;
    int64_t per = H * n * n;
    char **labels = calloc((size_t)n, sizeof *labels);
    float *w = malloc((size_t)(L * per) * sizeof *w), *r = malloc((size_t)(n * n) * sizeof *r);
    float *attr = malloc((size_t)n * sizeof *attr);
    attn_status st = labels && w && r && attr ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "out of memory");
    for (int64_t i = 0; st == ATTN_OK && i < n; i++)
        if ((labels[i] = chat_token_label(e->m, ids[i])) == NULL) st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK) st = attn_explain_add_tokens(doc, "conversation", (const char *const *)labels, n, &seq);
    if (st == ATTN_OK) st = attn_explain_add_group(doc, "causal self-attention", seq, seq, L, H, group);
    for (int64_t l = 0; st == ATTN_OK && l < L; l++)
        st = attn_llama_attention(e->ctx, e->m, ids, n, l, NULL, 0, w + l * per);
    for (int64_t l = 0; l < L; l++)
        for (int64_t h = 0; st == ATTN_OK && h < H; h++)
            st = attn_explain_set_weights(doc, *group, l, h, w + l * per + h * n * n);
    if (st == ATTN_OK) st = attn_explain_rollout(w, L, H, n, r);
    if (st == ATTN_OK) explain_column_mean(r, n, n, 0, attr);
    if (st == ATTN_OK) st = attn_explain_add_map(doc, *group, ATTN_EXPLAIN_KIND_ROLLOUT, -1, r, attr);
    for (int64_t i = 0; labels && i < n; i++) free(labels[i]);
    free(labels);
    free(w);
    free(r);
    free(attr);
    return st;
}

/* The notes: the model, the message, the reply, what the page lacks. */
static attn_status add_notes(const chat_engine *e, attn_explain *doc, const char *user,
                             const reply_text *reply, int stopped)
{
    const attn_llama_config *c = attn_llama_get_config(e->m);
    char note[4200];
    snprintf(note, sizeof note, "Llama chat model: %lld layers, %lld query heads sharing %lld key/value "
             "heads, d_model %lld; the message in the file's chat template, then the greedy reply.",
             (long long)c->n_layers, (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->d_model);
    attn_status st = attn_explain_add_note(doc, note);
    snprintf(note, sizeof note, "message: %.4000s", user);
    if (st == ATTN_OK) st = attn_explain_add_note(doc, note);
    snprintf(note, sizeof note, "reply (%s): %.*s", stopped ? "complete" : "cut at the limit",
             (int)reply->len, reply->text);
    if (st == ATTN_OK) st = attn_explain_add_note(doc, note);
    if (st == ATTN_OK)
        st = attn_explain_add_note(doc, "Relevance needs the model's gradient, which attn's Llama model "
                                        "does not compute: the page has the weights and their rollout.");
    return st;
}

static int build(const explain_args *a, attn_explain **doc)
{
    chat_engine e;
    int rc = chat_open("explain", "--gguf", a->gguf, a->threads, 1, &e);
    if (rc) return rc;
    const attn_llama_config *c = attn_llama_get_config(e.m);
    int32_t *ids = NULL;
    int64_t n = 0, n_out = 0, group = 0;
    if ((rc = explain_check_range(a, c->n_layers, c->n_heads)) == 0) rc = prompt_ids(&e, a->texts[0], &ids, &n);
    if (rc) {
        chat_close(&e);
        return rc;
    }
    reply_text reply = {{0}, 0};
    attn_llama_generate_params gp = attn_llama_generate_params_default();
    gp.max_tokens = REPLY_TOKENS;
    int stopped = 0;
    attn_status st = attn_llama_generate(e.ctx, e.s, ids, n, &gp, on_token, &reply, NULL, 0, &n_out, &stopped);
    printf("\n");
    if (st == ATTN_OK) st = attn_explain_create("attn explain: chat model", doc);
    if (st == ATTN_OK) st = add_notes(&e, *doc, a->texts[0], &reply, stopped);
    if (st == ATTN_OK) st = add_conversation(&e, *doc, &group);
    rc = st == ATTN_OK ? explain_select(a, *doc, group, c->n_layers, c->n_heads) : cli_fail("explain", st);
    free(ids);
    chat_close(&e);
    return rc;
}

const explain_model explain_chat = {
    "chat", "the chat model's reply to one message: weights and rollout (no relevance)", 1, 1, 0, build};
