/* checkpoint.c - model checkpoints as safetensors files: every parameter
 * under its torch-style name, optionally the AdamW moments
 * ("optim.m.<name>", "optim.v.<name>"), and in __metadata__ the format tag,
 * the config as JSON and the optimiser step. Loading treats the file as
 * untrusted: the config is parsed strictly and validated, and every tensor
 * must be present with exactly the shape the config implies, with nothing
 * extra. See docs/checkpoint.md. */
#include "models/ckpt_io.h"
#include "formats/json.h"
#include "transformer_internal.h"

#include <stdio.h>
#include <string.h>

#define FORMAT_TAG "attn-checkpoint-1"

static const char *arch_names[] = {NULL, "encdec", "decoder"};
static const char *norm_names[] = {NULL, "layernorm", "rmsnorm"};
static const char *pos_names[] = {NULL, "sinusoidal", "learned", "rope"};
static const char *act_names[] = {NULL, "gelu", "relu"};

static void out_key(attn__json_out *o, const char *key, int first)
{
    if (!first) attn__json_out_raw(o, ", ", 2);
    attn__json_out_string(o, key, strlen(key));
    attn__json_out_raw(o, ": ", 2);
}

static void out_name(attn__json_out *o, const char *key, const char *value)
{
    out_key(o, key, 0);
    attn__json_out_string(o, value, strlen(value));
}

attn_status attn_transformer_config_to_json(const attn_transformer_config *c, char *buf, size_t cap)
{
    if (!c || !buf) return attn_fail(ATTN_NULL_ARG, "attn_transformer_config_to_json: 'c' or 'buf' is NULL");
    if ((int)c->arch < 1 || (int)c->arch > 2 || (int)c->norm < 1 || (int)c->norm > 2 ||
        (int)c->pos < 1 || (int)c->pos > 3 || (int)c->act < 1 || (int)c->act > 2)
        return attn_fail(ATTN_BAD_PARAM, "attn_transformer_config_to_json: an enum field of 'c' is unknown");
    attn__json_out o = {buf, cap, 0};
    attn__json_out_raw(&o, "{", 1);
    out_key(&o, "arch", 1);
    attn__json_out_string(&o, arch_names[c->arch], strlen(arch_names[c->arch]));
    const struct {
        const char *k;
        int64_t v;
    } ints[] = {{"vocab", c->vocab},       {"d_model", c->d_model},
                {"n_heads", c->n_heads},   {"n_kv_heads", c->n_kv_heads},
                {"d_ff", c->d_ff},         {"n_enc_layers", c->n_enc_layers},
                {"n_dec_layers", c->n_dec_layers}, {"max_len", c->max_len},
                {"norm_first", c->norm_first}, {"tie_embeddings", c->tie_embeddings}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        out_key(&o, ints[i].k, 0);
        attn__json_out_int(&o, ints[i].v);
    }
    out_name(&o, "norm", norm_names[c->norm]);
    out_name(&o, "pos", pos_names[c->pos]);
    out_name(&o, "act", act_names[c->act]);
    const struct {
        const char *k;
        double v;
    } reals[] = {{"norm_eps", c->norm_eps}, {"dropout", c->dropout},
                 {"attn_dropout", c->attn_dropout}, {"rope_theta", c->rope_theta}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        out_key(&o, reals[i].k, 0);
        if (!attn__json_out_double(&o, reals[i].v))
            return attn_fail(ATTN_BAD_PARAM, "attn_transformer_config_to_json: '%s' is not finite", reals[i].k);
    }
    attn__json_out_raw(&o, "}", 1);
    if (o.len >= cap)
        return attn_fail(ATTN_BAD_DIM, "attn_transformer_config_to_json: 'cap' %zu is too small (%zu needed)",
                         cap, o.len + 1);
    return ATTN_OK;
}

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 1; i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return 0;
}

static attn_status field(const attn__json_value *root, const char *key, attn__json_kind kind,
                         const attn__json_value **v)
{
    *v = attn__json_get(root, key);
    if (!*v) return attn_fail(ATTN_BAD_FILE, "config: missing field '%s'", key);
    if ((*v)->kind != kind)
        return attn_fail(ATTN_BAD_FILE, "config: field '%s' is %s, not %s", key,
                         attn__json_kind_name((*v)->kind), attn__json_kind_name(kind));
    return ATTN_OK;
}

static attn_status parse_config(const attn__json_value *root, attn_transformer_config *c)
{
    if (root->kind != ATTN__JSON_OBJECT) return attn_fail(ATTN_BAD_FILE, "config: not an object");
    static const char *const known[] = {"arch", "vocab", "d_model", "n_heads", "n_kv_heads",
                                        "d_ff", "n_enc_layers", "n_dec_layers", "max_len",
                                        "norm_first", "tie_embeddings", "norm", "pos", "act",
                                        "norm_eps", "dropout", "attn_dropout", "rope_theta"};
    for (size_t i = 0; i < root->count; i++) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], root->items[i].key) != 0) k++;
        if (k == sizeof known / sizeof known[0])
            return attn_fail(ATTN_BAD_FILE, "config: unknown field '%.60s'", root->items[i].key);
    }
    const attn__json_value *v;
    attn_status st;
    const struct {
        const char *k;
        const char *const *names;
        int n;
        int *dst;
    } enums[] = {{"arch", arch_names, 3, (int *)&c->arch},
                 {"norm", norm_names, 3, (int *)&c->norm},
                 {"pos", pos_names, 4, (int *)&c->pos},
                 {"act", act_names, 3, (int *)&c->act}};
    for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++) {
        if ((st = field(root, enums[i].k, ATTN__JSON_STRING, &v)) != ATTN_OK) return st;
        int x = name_index(enums[i].names, enums[i].n, v->str);
        if (x == 0) return attn_fail(ATTN_BAD_FILE, "config: '%s' = \"%.40s\" is unknown", enums[i].k, v->str);
        *enums[i].dst = x;
    }
    struct {
        const char *k;
        int64_t *dst;
    } ints[] = {{"vocab", &c->vocab},     {"d_model", &c->d_model},   {"n_heads", &c->n_heads},
                {"n_kv_heads", &c->n_kv_heads}, {"d_ff", &c->d_ff}, {"n_enc_layers", &c->n_enc_layers},
                {"n_dec_layers", &c->n_dec_layers}, {"max_len", &c->max_len}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if ((st = field(root, ints[i].k, ATTN__JSON_NUMBER, &v)) != ATTN_OK) return st;
        if ((st = attn__json_int64(v, "config", ints[i].dst)) != ATTN_OK) return st;
    }
    int64_t flag;
    const char *flags[2] = {"norm_first", "tie_embeddings"};
    int *flag_dst[2] = {&c->norm_first, &c->tie_embeddings};
    for (int i = 0; i < 2; i++) {
        if ((st = field(root, flags[i], ATTN__JSON_NUMBER, &v)) != ATTN_OK) return st;
        if ((st = attn__json_int64(v, "config", &flag)) != ATTN_OK) return st;
        if (flag != 0 && flag != 1) return attn_fail(ATTN_BAD_FILE, "config: '%s' must be 0 or 1", flags[i]);
        *flag_dst[i] = (int)flag;
    }
    const char *reals[4] = {"norm_eps", "dropout", "attn_dropout", "rope_theta"};
    double *real_dst[4] = {&c->norm_eps, &c->dropout, &c->attn_dropout, &c->rope_theta};
    for (int i = 0; i < 4; i++) {
        if ((st = field(root, reals[i], ATTN__JSON_NUMBER, &v)) != ATTN_OK) return st;
        *real_dst[i] = v->number;
    }
    return ATTN_OK;
}

attn_status attn_transformer_config_from_json(const char *json, attn_transformer_config *c)
{
    if (!json || !c) return attn_fail(ATTN_NULL_ARG, "attn_transformer_config_from_json: 'json' or 'c' is NULL");
    attn__json_value *root = NULL;
    attn_status st = attn__json_parse(json, strlen(json), NULL, "config", &root);
    if (st != ATTN_OK) return st;
    attn_transformer_config tmp;
    memset(&tmp, 0, sizeof tmp);
    st = parse_config(root, &tmp);
    attn__json_free(root);
    if (st == ATTN_OK) *c = tmp;
    return st;
}

/* ---- save and load -------------------------------------------------------------- */

static attn__nn_paramset paramset(const attn_transformer *m)
{
    return (attn__nn_paramset){m->tensors, m->n_tensors, m->params, m->adam_m, m->adam_v};
}

attn_status attn_transformer_save(const attn_transformer *m, const char *path, int with_optim,
                               const char *const *meta_keys, const char *const *meta_values,
                               int64_t n_meta)
{
    if (!m || !path) return attn_fail(ATTN_NULL_ARG, "attn_transformer_save: 'm' or 'path' is NULL");
    char config[2048];
    attn_status st = attn_transformer_config_to_json(&m->c, config, sizeof config);
    if (st != ATTN_OK) return st;
    attn__nn_paramset ps = paramset(m);
    return attn__nn_ckpt_save("attn_transformer_save", path, FORMAT_TAG, config, m->steps, &ps,
                              with_optim, meta_keys, meta_values, n_meta);
}

attn_status attn_transformer_load_safetensors(const attn_safetensors *f, attn_transformer **out)
{
    if (!f || !out) return attn_fail(ATTN_NULL_ARG, "attn_transformer_load_safetensors: 'f' or 'out' is NULL");
    const char *cfg = NULL;
    int64_t steps = 0;
    double file_floats = 0;
    attn_status st = attn__nn_ckpt_header(f, "checkpoint", FORMAT_TAG, &cfg, &steps, &file_floats);
    if (st != ATTN_OK) return st;
    attn_transformer_config c;
    if ((st = attn_transformer_config_from_json(cfg, &c)) != ATTN_OK) return st;
    /* An absurd config must not make us allocate: a lower bound of its
     * parameter count must fit in the file's tensors. */
    double lower = (double)c.vocab * (double)c.d_model +
                   (double)(c.n_enc_layers + c.n_dec_layers) *
                       (2.0 * (double)c.d_model * (double)c.d_model +
                        2.0 * (double)c.d_model * (double)c.d_ff);
    if (!(lower <= file_floats))
        return attn_fail(ATTN_BAD_FILE, "checkpoint: the config needs at least %.0f parameters, "
                         "the file holds %.0f", lower, file_floats);
    attn_transformer *m = NULL;
    if ((st = attn_transformer_create(&c, 0, &m)) != ATTN_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", attn_last_error());
        return attn_fail(st == ATTN_NO_MEMORY ? st : ATTN_BAD_FILE, "checkpoint: config: %s", why);
    }
    attn__nn_paramset ps = paramset(m);
    if ((st = attn__nn_ckpt_read(f, "checkpoint", &ps)) != ATTN_OK) {
        attn_transformer_free(m);
        return st;
    }
    m->steps = steps;
    *out = m;
    return ATTN_OK;
}

attn_status attn_transformer_load(const char *path, attn_transformer **out)
{
    if (!path || !out) return attn_fail(ATTN_NULL_ARG, "attn_transformer_load: 'path' or 'out' is NULL");
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(path, &f);
    if (st != ATTN_OK) return st;
    st = attn_transformer_load_safetensors(f, out);
    attn_safetensors_free(f);
    return st;
}
