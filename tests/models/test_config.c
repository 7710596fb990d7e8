/* test_config.c - the models' configurations, each described once as a
 * table (src/models/config_io.c and the models' config.c): the defaults and
 * the exact JSON text of the defaults, a round trip, and for every field,
 * listed here by hand: a missing key, a value of the wrong JSON type and a
 * value out of range are rejected by the reader, and a value out of range
 * in the struct by create and by the writer, each naming the field. */
#include "nn_test.h"

#include <attn/seq2seq.h>

#include <stdlib.h>
#include <string.h>

/* A field of a config's JSON text: its key and default value, a value of
 * the wrong JSON type, and a value of the right type out of range. */
typedef struct {
    const char *key, *value, *bad_type, *bad_range;
} json_field;

/* {"key": value, ...} of the fields, field `swap` with value `with` (or
 * left out if with is NULL), then the raw member text `extra` if given. */
static void make_json(const json_field *f, int n, int swap, const char *with, const char *extra,
                      char *buf, size_t cap)
{
    size_t len = 0;
    len += (size_t)snprintf(buf + len, cap - len, "{");
    for (int i = 0; i < n; i++) {
        const char *v = i == swap ? with : f[i].value;
        if (!v) continue;
        len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\": %s", len > 1 ? ", " : "",
                                f[i].key, v);
    }
    if (extra) len += (size_t)snprintf(buf + len, cap - len, ", %s", extra);
    snprintf(buf + len, cap - len, "}");
}

typedef attn_status (*parse_fn)(const char *json);

/* The reader fails on json with ATTN_BAD_FILE and a message holding both
 * needles. */
static void expect_rejected(parse_fn parse, const char *json, const char *n1, const char *n2)
{
    attn_status st = parse(json);
    const char *msg = attn_last_error();
    t_checks++;
    if (st != ATTN_BAD_FILE || !strstr(msg, n1) || !strstr(msg, n2))
        t_fail(__FILE__, __LINE__, "%s: got %s '%s', want ATTN_BAD_FILE naming '%s' and '%s'",
               json, attn_status_name(st), msg, n1, n2);
}

/* The reader accepts the full text and rejects each field missing, of the
 * wrong type and out of range, and an unknown key. */
static void check_reader(const json_field *f, int n, parse_fn parse)
{
    char json[1024];
    make_json(f, n, -1, NULL, NULL, json, sizeof json);
    T_EQ_STATUS(parse(json), ATTN_OK);
    for (int i = 0; i < n; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", f[i].key);
        make_json(f, n, i, NULL, NULL, json, sizeof json);
        expect_rejected(parse, json, "missing field", quoted);
        make_json(f, n, i, f[i].bad_type, NULL, json, sizeof json);
        expect_rejected(parse, json, quoted, " is ");
        make_json(f, n, i, f[i].bad_range, NULL, json, sizeof json);
        expect_rejected(parse, json, quoted, f[i].bad_range);
    }
    make_json(f, n, -1, NULL, "\"surprise\": 1", json, sizeof json);
    expect_rejected(parse, json, "unknown field", "'surprise'");
}

/* create and the writer reject config i of bad (one field out of range
 * each) with the status want[i], naming the field key[i]. */
#define CHECK_SPOILED(create_call, to_json_call, key, want)                                   \
    do {                                                                                     \
        attn_status st_ = (create_call);                                                     \
        const char *msg_ = attn_last_error();                                                \
        char quoted_[64];                                                                    \
        snprintf(quoted_, sizeof quoted_, "'%s'", (key));                                    \
        t_checks++;                                                                          \
        if (st_ != (want) || !strstr(msg_, quoted_))                                         \
            t_fail(__FILE__, __LINE__, "create, %s: got %s '%s'", (key), attn_status_name(st_), \
                   msg_);                                                                    \
        st_ = (to_json_call);                                                                \
        msg_ = attn_last_error();                                                            \
        t_checks++;                                                                          \
        if (st_ != (want) || !strstr(msg_, quoted_))                                         \
            t_fail(__FILE__, __LINE__, "to_json, %s: got %s '%s'", (key), attn_status_name(st_), \
                   msg_);                                                                    \
    } while (0)

/* ---- the transformer ------------------------------------------------------------------ */

static const json_field transformer_fields[] = {
    {"arch", "\"encdec\"", "1", "\"encoder\""},
    {"vocab", "99", "\"99\"", "16777217"},
    {"d_model", "128", "true", "65537"},
    {"n_heads", "4", "null", "0"},
    {"n_kv_heads", "4", "[4]", "1025"},
    {"d_ff", "512", "{}", "262145"},
    {"n_enc_layers", "2", "\"2\"", "-1"},
    {"n_dec_layers", "2", "\"2\"", "1025"},
    {"max_len", "64", "\"64\"", "0"},
    {"norm_first", "1", "true", "2"},
    {"tie_embeddings", "0", "false", "-1"},
    {"norm", "\"layernorm\"", "1", "\"batchnorm\""},
    {"pos", "\"sinusoidal\"", "2", "\"alibi\""},
    {"act", "\"gelu\"", "1", "\"swish\""},
    {"norm_eps", "1e-05", "\"1e-5\"", "0"},
    {"dropout", "0.1", "\"0.1\"", "1"},
    {"attn_dropout", "0.1", "null", "-0.5"},
    {"rope_theta", "10000", "\"1e4\"", "1"},
};
enum { N_TRANSFORMER = sizeof transformer_fields / sizeof transformer_fields[0] };

static attn_status parse_transformer(const char *json)
{
    attn_transformer_config c;
    return attn_transformer_config_from_json(json, &c);
}

static bool same_transformer(const attn_transformer_config *a, const attn_transformer_config *b)
{
    return a->arch == b->arch && a->vocab == b->vocab && a->d_model == b->d_model &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->d_ff == b->d_ff &&
           a->n_enc_layers == b->n_enc_layers && a->n_dec_layers == b->n_dec_layers &&
           a->max_len == b->max_len && a->norm_first == b->norm_first && a->norm == b->norm &&
           a->pos == b->pos && a->act == b->act && a->norm_eps == b->norm_eps &&
           a->dropout == b->dropout && a->attn_dropout == b->attn_dropout &&
           a->rope_theta == b->rope_theta && a->tie_embeddings == b->tie_embeddings;
}

T_TEST(config_transformer_table)
{
    /* the defaults, as transformer.h and docs/nn.md give them */
    attn_transformer_config d = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    attn_transformer_config want = {ATTN_TRANSFORMER_ARCH_ENCDEC, 99, 128, 4, 4, 512, 2, 2, 64, 1,
                                    ATTN_NN_NORM_LAYERNORM, ATTN_NN_POS_SINUSOIDAL,
                                    ATTN_NN_ACT_GELU, 1e-5, 0.1, 0.1, 10000.0, 0};
    T_CHECK(same_transformer(&d, &want));
    attn_transformer_config lm = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_DECODER);
    want.arch = ATTN_TRANSFORMER_ARCH_DECODER;
    want.n_enc_layers = 0;
    T_CHECK(same_transformer(&lm, &want));
    /* the text of the defaults, byte for byte */
    char json[1024], expect[1024];
    make_json(transformer_fields, N_TRANSFORMER, -1, NULL, NULL, expect, sizeof expect);
    T_EQ_STATUS(attn_transformer_config_to_json(&d, json, sizeof json), ATTN_OK);
    T_CHECK(strcmp(json, expect) == 0);
    T_EQ_STATUS(attn_transformer_config_to_json(&d, json, strlen(expect)), ATTN_BAD_DIM);
    /* a round trip of a config with every field away from its default */
    attn_transformer_config c = lm, back;
    c.vocab = 7, c.d_model = 12, c.n_heads = 6, c.n_kv_heads = 2, c.d_ff = 20;
    c.n_dec_layers = 3, c.max_len = 9, c.norm_first = 0, c.tie_embeddings = 1;
    c.norm = ATTN_NN_NORM_RMSNORM, c.pos = ATTN_NN_POS_ROPE, c.act = ATTN_NN_ACT_RELU;
    c.norm_eps = 1e-6, c.dropout = 0.25, c.attn_dropout = 0, c.rope_theta = 500000.5;
    T_EQ_STATUS(attn_transformer_config_to_json(&c, json, sizeof json), ATTN_OK);
    T_EQ_STATUS(attn_transformer_config_from_json(json, &back), ATTN_OK);
    T_CHECK(same_transformer(&c, &back));
    /* the reader: every field missing, mistyped, out of range; fractions */
    check_reader(transformer_fields, N_TRANSFORMER, parse_transformer);
    make_json(transformer_fields, N_TRANSFORMER, 2, "128.5", NULL, json, sizeof json);
    T_EQ_STATUS(parse_transformer(json), ATTN_BAD_FILE);
    /* create and the writer: each field out of range in the struct */
    attn_transformer_config bad[N_TRANSFORMER];
    for (int i = 0; i < N_TRANSFORMER; i++) bad[i] = d;
    bad[0].arch = (attn_transformer_arch)3, bad[1].vocab = 0, bad[2].d_model = 65537;
    bad[3].n_heads = 0, bad[4].n_kv_heads = 1025, bad[5].d_ff = 262145;
    bad[6].n_enc_layers = -1, bad[7].n_dec_layers = 1025, bad[8].max_len = 0;
    bad[9].norm_first = 2, bad[10].tie_embeddings = -1, bad[11].norm = (attn_nn_norm)0;
    bad[12].pos = (attn_nn_pos)4, bad[13].act = (attn_nn_act)3, bad[14].norm_eps = 1.0;
    bad[15].dropout = -0.1, bad[16].attn_dropout = NAN, bad[17].rope_theta = INFINITY;
    for (int i = 0; i < N_TRANSFORMER; i++) {
        attn_transformer *m = NULL;
        attn_status want_st = i >= 1 && i <= 8 ? ATTN_BAD_DIM : ATTN_BAD_PARAM;
        CHECK_SPOILED(attn_transformer_create(&bad[i], 1, &m),
                      attn_transformer_config_to_json(&bad[i], json, sizeof json),
                      transformer_fields[i].key, want_st);
        T_CHECK(m == NULL);
    }
}

/* ---- the GRU encoder-decoder ----------------------------------------------------------- */

static const json_field seq2seq_fields[] = {
    {"vocab", "99", "\"99\"", "16777217"},  {"embed", "64", "true", "0"},
    {"hidden", "128", "null", "65537"},     {"dec_hidden", "128", "[]", "-3"},
    {"attn_dim", "128", "\"128\"", "0"},    {"init", "\"backward\"", "1", "\"zeros\""},
};
enum { N_SEQ2SEQ = sizeof seq2seq_fields / sizeof seq2seq_fields[0] };

static attn_status parse_seq2seq(const char *json)
{
    attn_seq2seq_config c;
    return attn_seq2seq_config_from_json(json, &c);
}

T_TEST(config_seq2seq_table)
{
    attn_seq2seq_config d = attn_seq2seq_config_default(), back;
    T_CHECK(d.vocab == 99 && d.embed == 64 && d.hidden == 128 && d.dec_hidden == 128 &&
            d.attn_dim == 128 && d.init == ATTN_SEQ2SEQ_INIT_BACKWARD);
    char json[512], expect[512];
    make_json(seq2seq_fields, N_SEQ2SEQ, -1, NULL, NULL, expect, sizeof expect);
    T_EQ_STATUS(attn_seq2seq_config_to_json(&d, json, sizeof json), ATTN_OK);
    T_CHECK(strcmp(json, expect) == 0);
    attn_seq2seq_config c = {5, 6, 7, 8, 9, ATTN_SEQ2SEQ_INIT_MEAN};
    T_EQ_STATUS(attn_seq2seq_config_to_json(&c, json, sizeof json), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_config_from_json(json, &back), ATTN_OK);
    T_CHECK(back.vocab == 5 && back.embed == 6 && back.hidden == 7 && back.dec_hidden == 8 &&
            back.attn_dim == 9 && back.init == ATTN_SEQ2SEQ_INIT_MEAN);
    check_reader(seq2seq_fields, N_SEQ2SEQ, parse_seq2seq);
    attn_seq2seq_config bad[N_SEQ2SEQ];
    for (int i = 0; i < N_SEQ2SEQ; i++) bad[i] = d;
    bad[0].vocab = 16777217, bad[1].embed = 0, bad[2].hidden = 65537;
    bad[3].dec_hidden = -3, bad[4].attn_dim = 0, bad[5].init = (attn_seq2seq_init)3;
    for (int i = 0; i < N_SEQ2SEQ; i++) {
        attn_seq2seq *m = NULL;
        CHECK_SPOILED(attn_seq2seq_create(&bad[i], 1, &m),
                      attn_seq2seq_config_to_json(&bad[i], json, sizeof json),
                      seq2seq_fields[i].key, i < 5 ? ATTN_BAD_DIM : ATTN_BAD_PARAM);
        T_CHECK(m == NULL);
    }
}
