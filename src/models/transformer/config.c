/* config.c - the transformer's configuration: the defaults, the range
 * checks that attn_transformer_create applies, and the JSON text that
 * checkpoints carry (written by attn_transformer_config_to_json, read back
 * strictly by attn_transformer_config_from_json). */
#include "formats/json.h"
#include "transformer_internal.h"

#include <string.h>

attn_transformer_config attn_transformer_config_default(attn_transformer_arch arch)
{
    attn_transformer_config c;
    memset(&c, 0, sizeof c);
    c.arch = arch;
    c.vocab = 99;
    c.d_model = 128;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.d_ff = 512;
    c.n_enc_layers = arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? 2 : 0;
    c.n_dec_layers = 2;
    c.max_len = 64;
    c.norm_first = 1;
    c.norm = ATTN_NN_NORM_LAYERNORM;
    c.pos = ATTN_NN_POS_SINUSOIDAL;
    c.act = ATTN_NN_ACT_GELU;
    c.norm_eps = 1e-5;
    c.dropout = 0.1;
    c.attn_dropout = 0.1;
    c.rope_theta = 10000.0;
    c.tie_embeddings = 0;
    return c;
}

attn_status attn__transformer_config_check(const attn_transformer_config *c)
{
    if (c == NULL) return attn_fail(ATTN_NULL_ARG, "attn_transformer_create: 'config' is NULL");
    if (c->arch != ATTN_TRANSFORMER_ARCH_ENCDEC && c->arch != ATTN_TRANSFORMER_ARCH_DECODER)
        return attn_fail(ATTN_BAD_PARAM, "config: 'arch' %d is not ENCDEC (1) or DECODER (2)",
                         (int)c->arch);
    const struct {
        const char *name;
        int64_t v, lo, hi;
    } dims[] = {{"vocab", c->vocab, 1, 1 << 24},       {"d_model", c->d_model, 1, 1 << 16},
                {"n_heads", c->n_heads, 1, 1024},       {"n_kv_heads", c->n_kv_heads, 1, 1024},
                {"d_ff", c->d_ff, 1, 1 << 18},          {"n_dec_layers", c->n_dec_layers, 1, 1024},
                {"n_enc_layers", c->n_enc_layers, c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC, 1024},
                {"max_len", c->max_len, 1, 1 << 20}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < dims[i].lo || dims[i].v > dims[i].hi)
            return attn_fail(ATTN_BAD_DIM, "config: '%s' = %lld is outside [%lld, %lld]",
                             dims[i].name, (long long)dims[i].v, (long long)dims[i].lo,
                             (long long)dims[i].hi);
    if (c->arch == ATTN_TRANSFORMER_ARCH_DECODER && c->n_enc_layers != 0)
        return attn_fail(ATTN_BAD_DIM, "config: 'n_enc_layers' must be 0 for a decoder-only model");
    if (c->d_model % c->n_heads != 0)
        return attn_fail(ATTN_BAD_DIM, "config: 'd_model' %lld is not a multiple of 'n_heads' %lld",
                         (long long)c->d_model, (long long)c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return attn_fail(ATTN_BAD_HEADS, "config: 'n_heads' is not a multiple of 'n_kv_heads'");
    if (c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC && c->n_kv_heads != c->n_heads)
        return attn_fail(ATTN_BAD_HEADS, "config: the encoder-decoder (torch layout) needs "
                                         "'n_kv_heads' == 'n_heads'");
    if (c->norm != ATTN_NN_NORM_LAYERNORM && c->norm != ATTN_NN_NORM_RMSNORM)
        return attn_fail(ATTN_BAD_PARAM, "config: 'norm' %d is unknown", (int)c->norm);
    if (c->pos < ATTN_NN_POS_SINUSOIDAL || c->pos > ATTN_NN_POS_ROPE)
        return attn_fail(ATTN_BAD_PARAM, "config: 'pos' %d is unknown", (int)c->pos);
    if (c->pos == ATTN_NN_POS_ROPE && (c->d_model / c->n_heads) % 2 != 0)
        return attn_fail(ATTN_BAD_DIM, "config: rotary positions need an even head dim");
    if (c->act != ATTN_NN_ACT_GELU && c->act != ATTN_NN_ACT_RELU)
        return attn_fail(ATTN_BAD_PARAM, "config: 'act' %d is unknown", (int)c->act);
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return attn_fail(ATTN_BAD_PARAM, "config: 'norm_eps' must be in (0, 1)");
    if (!(c->dropout >= 0 && c->dropout < 1) || !(c->attn_dropout >= 0 && c->attn_dropout < 1))
        return attn_fail(ATTN_BAD_PARAM, "config: 'dropout' and 'attn_dropout' must be in [0, 1)");
    if (!(c->rope_theta > 1 && c->rope_theta < 1e12))
        return attn_fail(ATTN_BAD_PARAM, "config: 'rope_theta' must be in (1, 1e12)");
    if (c->norm_first != 0 && c->norm_first != 1)
        return attn_fail(ATTN_BAD_PARAM, "config: 'norm_first' must be 0 or 1");
    if (c->tie_embeddings != 0 && c->tie_embeddings != 1)
        return attn_fail(ATTN_BAD_PARAM, "config: 'tie_embeddings' must be 0 or 1");
    return ATTN_OK;
}

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
