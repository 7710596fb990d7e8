/* config.c - the Llama model's hyper-parameters from a GGUF file's
 * metadata (general.architecture "llama", llama.*), each checked for range
 * and consistency, and its chat template: whether it is ChatML and which
 * default system line it adds. */
#include "llama_internal.h"

#include <string.h>

static const char *const FN = "attn_llama_load";

/* *out = the unsigned integer at key, which must lie in [lo, hi]. */
static attn_status get_dim(const attn_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    uint64_t v;
    attn_status st = attn_gguf_get_uint(g, key, &v);
    if (st != ATTN_OK) return st;
    if (v < (uint64_t)lo || v > (uint64_t)hi)
        return attn_fail(ATTN_BAD_FILE, "%s: '%s' is %llu; it must be in [%lld, %lld]", FN, key,
                         (unsigned long long)v, (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return ATTN_OK;
}

/* get_dim, or def when the file lacks key. */
static attn_status get_dim_or(const attn_gguf *g, const char *key, int64_t def, int64_t lo, int64_t hi,
                              int64_t *out)
{
    if (attn_gguf_kv_index(g, key) < 0) {
        *out = def;
        return ATTN_OK;
    }
    return get_dim(g, key, lo, hi, out);
}

/* *out = the float at key, which must be finite and in (lo, hi). */
static attn_status get_real(const attn_gguf *g, const char *key, double lo, double hi, double *out)
{
    double v;
    attn_status st = attn_gguf_get_float(g, key, &v);
    if (st != ATTN_OK) return st;
    if (!(v > lo && v < hi))
        return attn_fail(ATTN_BAD_FILE, "%s: '%s' is %g; it must be in (%g, %g)", FN, key, v, lo, hi);
    *out = v;
    return ATTN_OK;
}

/* get_real, or def when the file lacks key. */
static attn_status get_real_or(const attn_gguf *g, const char *key, double def, double lo, double hi,
                               double *out)
{
    if (attn_gguf_kv_index(g, key) < 0) {
        *out = def;
        return ATTN_OK;
    }
    return get_real(g, key, lo, hi, out);
}

static attn_status check_arch(const attn_gguf *g)
{
    const char *arch;
    size_t len;
    attn_status st = attn_gguf_get_string(g, "general.architecture", &arch, &len);
    if (st != ATTN_OK) return st;
    if (len != 5 || strcmp(arch, "llama") != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: the architecture '%.64s' is not 'llama', the only one attn runs",
                         FN, arch);
    /* Rope scaling (linear, YaRN, ...) changes the angles: refused. */
    if (attn_gguf_kv_index(g, "llama.rope.scaling.type") >= 0) {
        const char *type;
        if ((st = attn_gguf_get_string(g, "llama.rope.scaling.type", &type, &len)) != ATTN_OK) return st;
        if (strcmp(type, "none") != 0)
            return attn_fail(ATTN_BAD_FILE, "%s: 'llama.rope.scaling.type' is '%.64s'; attn runs no rope scaling",
                             FN, type);
    }
    return ATTN_OK;
}

/* The shapes' consistency: heads divide the model, inner sizes of every
 * product are whole blocks of 32, the rotary dimension is the head's. */
static attn_status check_shapes(const attn_gguf *g, attn_llama_config *c)
{
    if (c->d_model % c->n_heads != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: 'llama.embedding_length' %lld is not a multiple of "
                         "'llama.attention.head_count' %lld", FN, (long long)c->d_model, (long long)c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: 'llama.attention.head_count' %lld is not a multiple of "
                         "'llama.attention.head_count_kv' %lld", FN, (long long)c->n_heads, (long long)c->n_kv_heads);
    c->d_head = c->d_model / c->n_heads;
    if (c->d_head % 2 != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: the head dimension %lld is odd; rotary positions need it even",
                         FN, (long long)c->d_head);
    if (c->d_model % 32 != 0 || c->d_ff % 32 != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: 'llama.embedding_length' %lld and 'llama.feed_forward_length' "
                         "%lld must be multiples of 32 (the quantization block)", FN, (long long)c->d_model,
                         (long long)c->d_ff);
    int64_t rot = 0;
    attn_status st = get_dim_or(g, "llama.rope.dimension_count", c->d_head, 1, 1 << 16, &rot);
    if (st != ATTN_OK) return st;
    if (rot != c->d_head)
        return attn_fail(ATTN_BAD_FILE, "%s: 'llama.rope.dimension_count' %lld differs from the head "
                         "dimension %lld; attn rotates whole heads", FN, (long long)rot, (long long)c->d_head);
    return ATTN_OK;
}

/* Text of the default system line in a ChatML template: what follows
 * "<|im_start|>system" and a newline (written as one, or as "\n" inside a
 * template string) up to "<|im_end|>", if that is plain text. */
static attn_status read_default_system(attn_llama *m, const char *tpl)
{
    const char *p = strstr(tpl, "<|im_start|>system");
    if (p == NULL) return ATTN_OK;
    p += strlen("<|im_start|>system");
    if (*p == '\n') p += 1;
    else if (p[0] == '\\' && p[1] == 'n') p += 2;
    else return ATTN_OK;
    const char *end = strstr(p, "<|im_end|>");
    if (end == NULL || end == p) return ATTN_OK;
    for (const char *c = p; c < end; c++)
        if (*c == '\'' || *c == '"' || *c == '{' || *c == '}' || *c == '\\' || *c == '\n') return ATTN_OK;
    size_t len = (size_t)(end - p);
    if ((m->system = attn_alloc(len + 1)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: out of memory for the chat template", FN);
    memcpy(m->system, p, len);
    m->system[len] = '\0';
    return ATTN_OK;
}

static attn_status read_template(attn_llama *m)
{
    const char *key = "tokenizer.chat_template", *tpl;
    if (attn_gguf_kv_index(m->file, key) < 0) return ATTN_OK;
    attn_status st = attn_gguf_get_string(m->file, key, &tpl, NULL);
    if (st != ATTN_OK) return st;
    m->chatml = strstr(tpl, "<|im_start|>") != NULL && strstr(tpl, "<|im_end|>") != NULL;
    return m->chatml ? read_default_system(m, tpl) : ATTN_OK;
}

attn_status attn__llama_read_config(attn_llama *m)
{
    const attn_gguf *g = m->file;
    attn_llama_config *c = &m->cfg;
    memset(c, 0, sizeof *c);
    attn_status st = check_arch(g);
    if (st != ATTN_OK) return st;
    if ((st = get_dim(g, "llama.block_count", 1, 1024, &c->n_layers)) != ATTN_OK ||
        (st = get_dim(g, "llama.embedding_length", 32, 1 << 16, &c->d_model)) != ATTN_OK ||
        (st = get_dim(g, "llama.feed_forward_length", 32, 1 << 20, &c->d_ff)) != ATTN_OK ||
        (st = get_dim(g, "llama.attention.head_count", 1, 1024, &c->n_heads)) != ATTN_OK ||
        (st = get_dim_or(g, "llama.attention.head_count_kv", c->n_heads, 1, 1024, &c->n_kv_heads)) != ATTN_OK ||
        (st = get_dim(g, "llama.context_length", 1, 1 << 20, &c->n_ctx)) != ATTN_OK ||
        (st = get_real_or(g, "llama.rope.freq_base", 10000.0, 0.0, 1e12, &c->rope_theta)) != ATTN_OK ||
        (st = get_real(g, "llama.attention.layer_norm_rms_epsilon", 0.0, 1.0, &c->rms_eps)) != ATTN_OK ||
        (st = check_shapes(g, c)) != ATTN_OK)
        return st;
    return read_template(m);
}
