/* bpe_gguf.c - a byte-level BPE tokenizer from a GGUF file's tokenizer.ggml.*
 * keys (attn_bpe_load_gguf, attn/text.h): the model and pre-tokenizer names,
 * the tokens, their types and the merges read in place from the file (the
 * strings are pointed at, then copied once by the builder), and the special
 * ids. Errors are ATTN_BAD_FILE naming the key. */
#include "text/bpe_build.h"

#include "core/check.h"

#include <string.h>

/* A string key that must be one of names [n] ("what" for the message);
 * returns its index, or -1 after recording an error in *st. */
static int one_of(const attn_gguf *g, const char *key, const char *const *names, int n,
                  const char *supported, attn_status *st)
{
    const char *fn = "attn_bpe_load_gguf";
    const char *s;
    size_t len;
    *st = attn_gguf_get_string(g, key, &s, &len);
    if (*st != ATTN_OK) return -1;
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) return i;
    *st = attn_fail(ATTN_UNSUPPORTED, "%s: %s is \"%.60s\"; attn supports %s", fn, key, s, supported);
    return -1;
}

/* The strings of a STRING array key into ptrs [count] and lens [count]. */
static attn_status string_array(const attn_gguf_value *a, const char **ptrs, size_t *lens)
{
    for (int64_t i = 0; i < attn_gguf_array_count(a); i++) {
        attn_status st = attn_gguf_array_string(a, i, &ptrs[i], &lens[i]);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

/* An optional special id: -1 if the key is absent. */
static attn_status special_id(const attn_gguf *g, const char *key, int32_t *id)
{
    *id = -1;
    if (attn_gguf_kv_index(g, key) < 0) return ATTN_OK;
    uint64_t v;
    attn_status st = attn_gguf_get_uint(g, key, &v);
    if (st != ATTN_OK) return st;
    *id = v > INT32_MAX ? INT32_MAX : (int32_t)v; /* the builder names an id out of range */
    return ATTN_OK;
}

typedef struct arrays {
    const char **tokens, **merges;
    size_t *token_lens, *merge_lens;
    int32_t *types;
} arrays;

/* The arrays of the configuration, pointing into the file. */
static attn_status read_arrays(const attn_gguf *g, attn_bpe_config *cfg, arrays *a)
{
    const char *fn = "attn_bpe_load_gguf";
    const attn_gguf_value *tok, *mer, *typ = NULL;
    attn_status st = attn_gguf_get_array(g, "tokenizer.ggml.tokens", &tok);
    if (st == ATTN_OK) st = attn_gguf_get_array(g, "tokenizer.ggml.merges", &mer);
    if (st == ATTN_OK && attn_gguf_kv_index(g, "tokenizer.ggml.token_type") >= 0)
        st = attn_gguf_get_array(g, "tokenizer.ggml.token_type", &typ);
    if (st != ATTN_OK) return st;
    int64_t n = attn_gguf_array_count(tok), m = attn_gguf_array_count(mer);
    if (typ != NULL && attn_gguf_array_count(typ) != n)
        return attn_fail(ATTN_BAD_FILE, "%s: tokenizer.ggml.token_type has %lld elements; "
                         "tokenizer.ggml.tokens has %lld", fn,
                         (long long)attn_gguf_array_count(typ), (long long)n);
    if (n > INT32_MAX || m > INT32_MAX)
        return attn_fail(ATTN_BAD_FILE, "%s: %lld tokens and %lld merges; at most %d of each are "
                         "allowed", fn, (long long)n, (long long)m, INT32_MAX);
    size_t each = 2 * sizeof(char *) + 2 * sizeof(size_t) + sizeof(int32_t);
    void *block = attn_alloc(((size_t)n + (size_t)m + 1) * each);
    if (block == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory to index %lld tokens and %lld merges", fn,
                         (long long)n, (long long)m);
    a->tokens = block;
    a->merges = a->tokens + n;
    a->token_lens = (size_t *)(a->merges + m);
    a->merge_lens = a->token_lens + n;
    a->types = (int32_t *)(a->merge_lens + m);
    st = string_array(tok, a->tokens, a->token_lens);
    if (st == ATTN_OK) st = string_array(mer, a->merges, a->merge_lens);
    for (int64_t i = 0; typ != NULL && i < n && st == ATTN_OK; i++) {
        int64_t v;
        st = attn_gguf_array_int(typ, i, &v);
        a->types[i] = v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
    }
    cfg->n_tokens = n;
    cfg->tokens = a->tokens;
    cfg->token_lens = a->token_lens;
    cfg->token_types = typ != NULL ? a->types : NULL;
    cfg->n_merges = m;
    cfg->merges = a->merges;
    cfg->merge_lens = a->merge_lens;
    return st;
}

attn_status attn_bpe_load_gguf(const attn_gguf *g, attn_bpe **out)
{
    const char *fn = "attn_bpe_load_gguf";
    ATTN__NOT_NULL(fn, g);
    ATTN__NOT_NULL(fn, out);
    static const char *const models[] = {"gpt2"};
    static const char *const pres[] = {"gpt-2", "smollm", "starcoder"};
    static const attn_bpe_pre pre_of[] = {ATTN_BPE_PRE_GPT2, ATTN_BPE_PRE_SMOLLM, ATTN_BPE_PRE_SMOLLM};
    attn_status st;
    if (one_of(g, "tokenizer.ggml.model", models, 1, "only \"gpt2\" (byte-level BPE)", &st) < 0)
        return st;
    int pre = one_of(g, "tokenizer.ggml.pre", pres, 3, "\"gpt-2\", \"smollm\" and \"starcoder\"", &st);
    if (pre < 0) return st;
    attn_bpe_config cfg = attn_bpe_config_default();
    cfg.pre = pre_of[pre];
    static const char *const keys[4] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id"};
    int32_t *ids[4] = {&cfg.bos_id, &cfg.eos_id, &cfg.pad_id, &cfg.unk_id};
    for (int k = 0; k < 4; k++)
        if ((st = special_id(g, keys[k], ids[k])) != ATTN_OK) return st;
    arrays a;
    memset(&a, 0, sizeof a);
    st = read_arrays(g, &cfg, &a);
    static const attn__bpe_src src = {
        "attn_bpe_load_gguf", ATTN_BAD_FILE, "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges", {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                  "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id"}};
    if (st == ATTN_OK) st = attn__bpe_build(&src, &cfg, out);
    attn_release(a.tokens);
    return st;
}
