/* config.c - the GRU encoder-decoder's configuration, described once: the
 * table below gives every field's JSON key, type, range and default, and
 * the defaults, the range checks and the JSON text that checkpoints carry
 * all walk it (models/config_io.c). */
#include "models/config_io.h"
#include "seq2seq_internal.h"

#include <string.h>

static const char *const init_names[] = {"backward", "mean"};

/* X(field, type, lo, hi, bounds, default, enum names), in JSON order. */
#define SEQ2SEQ_CONFIG(X)                                                  \
    X(vocab, INT64, 1, 1 << 24, "[]", 99, NULL)                            \
    X(embed, INT64, 1, 1 << 16, "[]", 64, NULL)                            \
    X(hidden, INT64, 1, 1 << 16, "[]", 128, NULL)                          \
    X(dec_hidden, INT64, 1, 1 << 16, "[]", 128, NULL)                      \
    X(attn_dim, INT64, 1, 1 << 16, "[]", 128, NULL)                        \
    X(init, ENUM, 1, 2, "[]", ATTN_SEQ2SEQ_INIT_BACKWARD, init_names)

#define FIELD(...) ATTN__CFG_FIELD(attn_seq2seq_config, __VA_ARGS__)
static const attn__cfg_field fields[] = {SEQ2SEQ_CONFIG(FIELD)};
#undef FIELD
static const attn__cfg_table table = {fields, (int)(sizeof fields / sizeof fields[0]),
                                      sizeof(attn_seq2seq_config)};

/* The table reads enums as ints. */
_Static_assert(sizeof(attn_seq2seq_init) == sizeof(int), "config enums are int-sized");

attn_seq2seq_config attn_seq2seq_config_default(void)
{
    attn_seq2seq_config c;
    attn__cfg_defaults(&table, &c);
    return c;
}

attn_status attn__s2s_config_check(const attn_seq2seq_config *c)
{
    ATTN__NOT_NULL("attn_seq2seq_create", c);
    return attn__cfg_check(&table, c, "attn_seq2seq_create: config", ATTN_BAD_DIM, ATTN_BAD_PARAM);
}

attn_status attn_seq2seq_config_to_json(const attn_seq2seq_config *c, char *buf, size_t cap)
{
    ATTN__NOT_NULL(__func__, c);
    ATTN__NOT_NULL(__func__, buf);
    return attn__cfg_to_json(&table, c, __func__, buf, cap);
}

attn_status attn_seq2seq_config_from_json(const char *json, attn_seq2seq_config *c)
{
    ATTN__NOT_NULL(__func__, json);
    ATTN__NOT_NULL(__func__, c);
    attn_seq2seq_config tmp;
    memset(&tmp, 0, sizeof tmp);
    attn_status st = attn__cfg_from_json(&table, json, "rnn config", &tmp);
    if (st == ATTN_OK) *c = tmp;
    return st;
}
