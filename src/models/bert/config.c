/* config.c - the BERT config (attn/bert.h): the strict reader of a Hugging
 * Face config.json (only what the encoder supports is accepted; every
 * number is range-checked) and of sentence_bert_config.json's
 * max_seq_length. Both files are untrusted input. */
#include "bert_internal.h"

#include "core/fileio.h"
#include "formats/json.h"

#include <stdio.h>
#include <string.h>

enum { CONFIG_MAX_BYTES = 1 << 20 };

static const struct {
    const char *key;
    int64_t lo, hi;
    size_t off;
} int_fields[] = {
    {"vocab_size", 1, (int64_t)1 << 24, offsetof(attn_bert_config, vocab_size)},
    {"hidden_size", 1, 65536, offsetof(attn_bert_config, hidden_size)},
    {"num_hidden_layers", 1, 1024, offsetof(attn_bert_config, n_layers)},
    {"num_attention_heads", 1, 65536, offsetof(attn_bert_config, n_heads)},
    {"intermediate_size", 1, (int64_t)1 << 20, offsetof(attn_bert_config, intermediate_size)},
    {"max_position_embeddings", 1, (int64_t)1 << 20, offsetof(attn_bert_config, max_position)},
    {"type_vocab_size", 1, 65536, offsetof(attn_bert_config, type_vocab_size)},
};

static attn_status bad(const char *what, const char *detail, const char *key)
{
    return attn_fail(ATTN_BAD_FILE, "%s: field '%s' %s", what, key, detail);
}

/* An optional string field that, if present, must equal want. */
static attn_status string_field(const attn__json_value *root, const char *what, const char *key,
                                const char *want, int required)
{
    const attn__json_value *v = attn__json_get(root, key);
    if (v == NULL) return required ? bad(what, "is missing", key) : ATTN_OK;
    if (v->kind != ATTN__JSON_STRING) return bad(what, "must be a string", key);
    if (strcmp(v->str, want) != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: field '%s' is \"%.40s\"; only \"%s\" is supported",
                         what, key, v->str, want);
    return ATTN_OK;
}

static attn_status config_fields(const attn__json_value *root, const char *what,
                                 attn_bert_config *c)
{
    if (root->kind != ATTN__JSON_OBJECT)
        return attn_fail(ATTN_BAD_FILE, "%s: the text is %s, not an object", what,
                         attn__json_kind_name(root->kind));
    for (size_t i = 0; i < sizeof int_fields / sizeof int_fields[0]; i++) {
        const attn__json_value *v = attn__json_get(root, int_fields[i].key);
        if (v == NULL) return bad(what, "is missing", int_fields[i].key);
        char field[160];
        snprintf(field, sizeof field, "%s: field '%s'", what, int_fields[i].key);
        int64_t x;
        attn_status st = attn__json_int64(v, field, &x);
        if (st != ATTN_OK) return st;
        if (x < int_fields[i].lo || x > int_fields[i].hi)
            return attn_fail(ATTN_BAD_FILE, "%s is %lld; it must be in [%lld, %lld]", field,
                             (long long)x, (long long)int_fields[i].lo,
                             (long long)int_fields[i].hi);
        memcpy((char *)c + int_fields[i].off, &x, sizeof x);
    }
    if (c->hidden_size % c->n_heads != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: hidden_size %lld is not a multiple of "
                         "num_attention_heads %lld", what, (long long)c->hidden_size,
                         (long long)c->n_heads);
    const attn__json_value *eps = attn__json_get(root, "layer_norm_eps");
    if (eps == NULL) return bad(what, "is missing", "layer_norm_eps");
    if (eps->kind != ATTN__JSON_NUMBER) return bad(what, "must be a number", "layer_norm_eps");
    if (!(eps->number > 0.0 && eps->number < 1.0))
        return attn_fail(ATTN_BAD_FILE, "%s: field 'layer_norm_eps' is %g; it must be in (0, 1)",
                         what, eps->number);
    c->layer_norm_eps = eps->number;
    c->max_seq_length = c->max_position;
    attn_status st = string_field(root, what, "hidden_act", "gelu", 1);
    if (st == ATTN_OK) st = string_field(root, what, "position_embedding_type", "absolute", 0);
    return st;
}

static attn_status parse_config(const char *text, size_t len, const char *what,
                                attn_bert_config *c)
{
    attn__json_limits lim = attn__json_limits_default();
    lim.max_bytes = CONFIG_MAX_BYTES;
    attn__json_value *root = NULL;
    attn_status st = attn__json_parse(text, len, &lim, what, &root);
    if (st != ATTN_OK) return st;
    attn_bert_config tmp;
    memset(&tmp, 0, sizeof tmp);
    st = config_fields(root, what, &tmp);
    attn__json_free(root);
    if (st == ATTN_OK) *c = tmp;
    return st;
}

attn_status attn_bert_config_from_json(const char *json, size_t len, attn_bert_config *c)
{
    ATTN__NOT_NULL(__func__, json);
    ATTN__NOT_NULL(__func__, c);
    return parse_config(json, len, "attn_bert_config_from_json: 'json'", c);
}


attn_status attn__bert_load_config(const char *path, attn_bert_config *c)
{
    char *text = NULL, what[300];
    size_t len = 0;
    snprintf(what, sizeof what, "attn_bert_load: '%.200s'", path);
    attn_status st = attn__read_file(what, path, CONFIG_MAX_BYTES, &text, &len);
    if (st != ATTN_OK) return st;
    st = parse_config(text, len, what, c);
    attn_release(text);
    return st;
}

/* sentence_bert_config.json: max_seq_length in [1, max_position]. */
attn_status attn__bert_load_sbert_config(const char *path, attn_bert_config *c)
{
    char *text = NULL, what[300];
    size_t len = 0;
    snprintf(what, sizeof what, "attn_bert_load: '%.200s'", path);
    attn_status st = attn__read_file(what, path, CONFIG_MAX_BYTES, &text, &len);
    if (st != ATTN_OK) return st;
    attn__json_value *root = NULL;
    st = attn__json_parse(text, len, NULL, what, &root);
    attn_release(text);
    if (st != ATTN_OK) return st;
    const attn__json_value *v = attn__json_get(root, "max_seq_length");
    char field[360];
    snprintf(field, sizeof field, "%s: field 'max_seq_length'", what);
    int64_t x = 0;
    if (root->kind != ATTN__JSON_OBJECT)
        st = attn_fail(ATTN_BAD_FILE, "%s: the text is not an object", what);
    else if (v == NULL)
        st = attn_fail(ATTN_BAD_FILE, "%s is missing", field);
    else if ((st = attn__json_int64(v, field, &x)) == ATTN_OK &&
             (x < 1 || x > c->max_position))
        st = attn_fail(ATTN_BAD_FILE, "%s is %lld; it must be in [1, %lld] (max_position)",
                       field, (long long)x, (long long)c->max_position);
    attn__json_free(root);
    if (st == ATTN_OK) c->max_seq_length = x;
    return st;
}
