/* config.c - the GRU encoder-decoder's configuration: the defaults, the
 * range checks and the JSON text that checkpoints carry. */
#include "formats/json.h"
#include "seq2seq_internal.h"

#include <string.h>

static const char *const init_names[] = {NULL, "backward", "mean"};

attn_seq2seq_config attn_seq2seq_config_default(void)
{
    attn_seq2seq_config c = {99, 64, 128, 128, 128, ATTN_SEQ2SEQ_INIT_BACKWARD};
    return c;
}

typedef struct {
    const char *name;
    int64_t v, hi;
} dim_field;

static int dim_fields(const attn_seq2seq_config *c, dim_field *f)
{
    f[0] = (dim_field){"vocab", c->vocab, 1 << 24};
    f[1] = (dim_field){"embed", c->embed, 1 << 16};
    f[2] = (dim_field){"hidden", c->hidden, 1 << 16};
    f[3] = (dim_field){"dec_hidden", c->dec_hidden, 1 << 16};
    f[4] = (dim_field){"attn_dim", c->attn_dim, 1 << 16};
    return 5;
}

attn_status attn__s2s_config_check(const char *fn, const attn_seq2seq_config *c, attn_status code)
{
    if (!c) return attn_fail(ATTN_NULL_ARG, "%s: argument 'c' is NULL", fn);
    dim_field f[5];
    int n = dim_fields(c, f);
    for (int i = 0; i < n; i++)
        if (f[i].v < 1 || f[i].v > f[i].hi)
            return attn_fail(code, "%s: config '%s' = %lld is outside [1, %lld]", fn, f[i].name,
                             (long long)f[i].v, (long long)f[i].hi);
    if (c->init != ATTN_SEQ2SEQ_INIT_BACKWARD && c->init != ATTN_SEQ2SEQ_INIT_MEAN)
        return attn_fail(code == ATTN_BAD_DIM ? ATTN_BAD_PARAM : code,
                         "%s: config 'init' %d is not BACKWARD (1) or MEAN (2)", fn, (int)c->init);
    return ATTN_OK;
}

attn_status attn_seq2seq_config_to_json(const attn_seq2seq_config *c, char *buf, size_t cap)
{
    attn_status st = attn__s2s_config_check(__func__, c, ATTN_BAD_DIM);
    if (st != ATTN_OK) return st;
    ATTN__NN_NOT_NULL(__func__, buf);
    attn__json_out o = {buf, cap, 0};
    dim_field f[5];
    int n = dim_fields(c, f);
    attn__json_out_raw(&o, "{", 1);
    for (int i = 0; i < n; i++) {
        attn__json_out_string(&o, f[i].name, strlen(f[i].name));
        attn__json_out_raw(&o, ": ", 2);
        attn__json_out_int(&o, f[i].v);
        attn__json_out_raw(&o, ", ", 2);
    }
    attn__json_out_raw(&o, "\"init\": ", 8);
    attn__json_out_string(&o, init_names[c->init], strlen(init_names[c->init]));
    attn__json_out_raw(&o, "}", 1);
    if (o.len >= cap)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' %zu is too small (%zu needed)", __func__,
                         cap, o.len + 1);
    return ATTN_OK;
}

static attn_status parse_config(const attn__json_value *root, attn_seq2seq_config *c)
{
    static const char *const known[] = {"vocab", "embed", "hidden", "dec_hidden", "attn_dim", "init"};
    if (root->kind != ATTN__JSON_OBJECT) return attn_fail(ATTN_BAD_FILE, "rnn config: not an object");
    for (size_t i = 0; i < root->count; i++) {
        size_t k = 0;
        while (k < 6 && strcmp(known[k], root->items[i].key) != 0) k++;
        if (k == 6) return attn_fail(ATTN_BAD_FILE, "rnn config: unknown field '%.60s'", root->items[i].key);
    }
    int64_t *dst[5] = {&c->vocab, &c->embed, &c->hidden, &c->dec_hidden, &c->attn_dim};
    for (int i = 0; i < 6; i++) {
        const attn__json_value *v = attn__json_get(root, known[i]);
        attn__json_kind want = i < 5 ? ATTN__JSON_NUMBER : ATTN__JSON_STRING;
        if (!v) return attn_fail(ATTN_BAD_FILE, "rnn config: missing field '%s'", known[i]);
        if (v->kind != want)
            return attn_fail(ATTN_BAD_FILE, "rnn config: field '%s' is %s, not %s", known[i],
                             attn__json_kind_name(v->kind), attn__json_kind_name(want));
        if (i < 5) {
            attn_status st = attn__json_int64(v, "rnn config", dst[i]);
            if (st != ATTN_OK) return st;
        } else if (strcmp(v->str, "backward") == 0 || strcmp(v->str, "mean") == 0) {
            c->init = v->str[0] == 'b' ? ATTN_SEQ2SEQ_INIT_BACKWARD : ATTN_SEQ2SEQ_INIT_MEAN;
        } else {
            return attn_fail(ATTN_BAD_FILE, "rnn config: 'init' = \"%.40s\" is unknown", v->str);
        }
    }
    return attn__s2s_config_check("rnn config", c, ATTN_BAD_FILE);
}

attn_status attn_seq2seq_config_from_json(const char *json, attn_seq2seq_config *c)
{
    ATTN__NN_NOT_NULL(__func__, json);
    ATTN__NN_NOT_NULL(__func__, c);
    attn__json_value *root = NULL;
    attn_status st = attn__json_parse(json, strlen(json), NULL, "rnn config", &root);
    if (st != ATTN_OK) return st;
    attn_seq2seq_config tmp;
    memset(&tmp, 0, sizeof tmp);
    st = parse_config(root, &tmp);
    attn__json_free(root);
    if (st == ATTN_OK) *c = tmp;
    return st;
}
