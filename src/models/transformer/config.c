/* config.c - the transformer's configuration, described once: the table
 * below gives every field's JSON key, type, range and default, and the
 * defaults, the range checks that attn_transformer_create applies, and the
 * JSON text that checkpoints carry (attn_transformer_config_to_json, read
 * back strictly by attn_transformer_config_from_json) all walk it
 * (models/config_io.c). The checks between fields follow the table's. */
#include "models/config_io.h"
#include "transformer_internal.h"

#include <string.h>

static const char *const arch_names[] = {"encdec", "decoder"};
static const char *const norm_names[] = {"layernorm", "rmsnorm"};
static const char *const pos_names[] = {"sinusoidal", "learned", "rope"};
static const char *const act_names[] = {"gelu", "relu"};

/* X(field, type, lo, hi, bounds, default, enum names), in JSON order. The
 * range of n_enc_layers is refined by the arch (check_between). */
#define TRANSFORMER_CONFIG(X)                                              \
    X(arch, ENUM, 1, 2, "[]", ATTN_TRANSFORMER_ARCH_ENCDEC, arch_names)    \
    X(vocab, INT64, 1, 1 << 24, "[]", 99, NULL)                            \
    X(d_model, INT64, 1, 1 << 16, "[]", 128, NULL)                         \
    X(n_heads, INT64, 1, 1024, "[]", 4, NULL)                              \
    X(n_kv_heads, INT64, 1, 1024, "[]", 4, NULL)                           \
    X(d_ff, INT64, 1, 1 << 18, "[]", 512, NULL)                            \
    X(n_enc_layers, INT64, 0, 1024, "[]", 2, NULL)                         \
    X(n_dec_layers, INT64, 1, 1024, "[]", 2, NULL)                         \
    X(max_len, INT64, 1, 1 << 20, "[]", 64, NULL)                          \
    X(norm_first, BOOL, 0, 1, "[]", 1, NULL)                               \
    X(tie_embeddings, BOOL, 0, 1, "[]", 0, NULL)                           \
    X(norm, ENUM, 1, 2, "[]", ATTN_NN_NORM_LAYERNORM, norm_names)          \
    X(pos, ENUM, 1, 3, "[]", ATTN_NN_POS_SINUSOIDAL, pos_names)            \
    X(act, ENUM, 1, 2, "[]", ATTN_NN_ACT_GELU, act_names)                  \
    X(norm_eps, DOUBLE, 0, 1, "()", 1e-5, NULL)                            \
    X(dropout, DOUBLE, 0, 1, "[)", 0.1, NULL)                              \
    X(attn_dropout, DOUBLE, 0, 1, "[)", 0.1, NULL)                         \
    X(rope_theta, DOUBLE, 1, 1e12, "()", 10000.0, NULL)

#define FIELD(...) ATTN__CFG_FIELD(attn_transformer_config, __VA_ARGS__)
static const attn__cfg_field fields[] = {TRANSFORMER_CONFIG(FIELD)};
#undef FIELD
static const attn__cfg_table table = {fields, (int)(sizeof fields / sizeof fields[0]),
                                      sizeof(attn_transformer_config)};

/* The table reads enums as ints. */
_Static_assert(sizeof(attn_transformer_arch) == sizeof(int) && sizeof(attn_nn_norm) == sizeof(int) &&
                   sizeof(attn_nn_pos) == sizeof(int) && sizeof(attn_nn_act) == sizeof(int),
               "config enums are int-sized");

attn_transformer_config attn_transformer_config_default(attn_transformer_arch arch)
{
    attn_transformer_config c;
    attn__cfg_defaults(&table, &c);
    c.arch = arch;
    if (arch != ATTN_TRANSFORMER_ARCH_ENCDEC) c.n_enc_layers = 0;
    return c;
}

/* What one field's range cannot say: the fields must fit each other. */
static attn_status check_between(const attn_transformer_config *c)
{
    int encdec = c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC;
    if (encdec && c->n_enc_layers < 1)
        return attn_fail(ATTN_BAD_DIM, "config: 'n_enc_layers' = %lld is outside [1, 1024] for "
                         "the encoder-decoder", (long long)c->n_enc_layers);
    if (!encdec && c->n_enc_layers != 0)
        return attn_fail(ATTN_BAD_DIM, "config: 'n_enc_layers' must be 0 for a decoder-only model");
    if (c->d_model % c->n_heads != 0)
        return attn_fail(ATTN_BAD_DIM, "config: 'd_model' %lld is not a multiple of 'n_heads' %lld",
                         (long long)c->d_model, (long long)c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return attn_fail(ATTN_BAD_HEADS, "config: 'n_heads' is not a multiple of 'n_kv_heads'");
    if (encdec && c->n_kv_heads != c->n_heads)
        return attn_fail(ATTN_BAD_HEADS, "config: the encoder-decoder (torch layout) needs "
                                         "'n_kv_heads' == 'n_heads'");
    if (c->pos == ATTN_NN_POS_ROPE && (c->d_model / c->n_heads) % 2 != 0)
        return attn_fail(ATTN_BAD_DIM, "config: rotary positions need an even head dim");
    return ATTN_OK;
}

attn_status attn__transformer_config_check(const attn_transformer_config *c)
{
    if (c == NULL) return attn_fail(ATTN_NULL_ARG, "attn_transformer_create: 'config' is NULL");
    attn_status st = attn__cfg_check(&table, c, "config", ATTN_BAD_DIM, ATTN_BAD_PARAM);
    return st == ATTN_OK ? check_between(c) : st;
}

attn_status attn_transformer_config_to_json(const attn_transformer_config *c, char *buf, size_t cap)
{
    if (!c || !buf) return attn_fail(ATTN_NULL_ARG, "attn_transformer_config_to_json: 'c' or 'buf' is NULL");
    return attn__cfg_to_json(&table, c, "attn_transformer_config_to_json", buf, cap);
}

attn_status attn_transformer_config_from_json(const char *json, attn_transformer_config *c)
{
    if (!json || !c) return attn_fail(ATTN_NULL_ARG, "attn_transformer_config_from_json: 'json' or 'c' is NULL");
    attn_transformer_config tmp;
    memset(&tmp, 0, sizeof tmp);
    attn_status st = attn__cfg_from_json(&table, json, "config", &tmp);
    if (st == ATTN_OK) *c = tmp;
    return st;
}
