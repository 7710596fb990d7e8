/* bert.c - BERT-family encoders (attn/bert.h): the strict loader of a
 * Hugging Face config.json + safetensors pair, the inference forward pass,
 * sentence embeddings (mean pooling + L2 normalisation) and attention maps.
 *
 * The forward pass works on PACKED rows: the T = sum(lens) real tokens of a
 * batch, one after another, so padding costs nothing. Per layer, with x the
 * hidden states (H = hidden, F = intermediate, nh heads of hd = H / nh):
 *   qkv [T, 3H] = x Wqkv^T + bqkv     one GEMM: q, k, v weights concatenated
 *   o   [T, H]  = attention per run of equal-length sequences, straight on
 *                 strided views of qkv (attn_sdpa_forward, no copies)
 *   y   [T, H]  = x + bo + o Wo^T;    x = LayerNorm(y)
 *   h   [T, F]  = GELU(x Wi^T + bi)   (bias and GELU fused in one pass)
 *   y   [T, H]  = x + bo2 + h Wo2^T;  x = LayerNorm(y)
 * Everything but the attention core is row-wise, so one "row pass" per layer
 * runs the output dense layer through to the next layer's qkv on blocks of
 * at most BLOCK_ROWS rows, each block start to end while its y and h
 * (a thread's scratch) are in cache; threads take blocks in turn. The dense
 * layers run on an AVX-512 GEMM over weights packed at load time (on CPUs
 * that have it), else on OpenBLAS sgemm: with OpenBLAS single-threaded the
 * blocks spread over the ctx's threads, otherwise one thread runs them and
 * OpenBLAS splits each GEMM. The blocks depend on T only, so results are
 * bitwise the same for every thread count.
 */
#include "formats/json.h"
#include "core/fileio.h"

#include <attn/bert.h>
#include <attn/safetensors.h>

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model ----------------------------------------------------------------------- */

typedef struct {
    float *wqkv, *bqkv; /* [3H, H] (query, key, value rows), [3H] */
    float *wo, *bo;     /* attention output dense [H, H], [H] */
    float *ln1_w, *ln1_b;
    float *wi, *bi;     /* intermediate dense [F, H], [F] */
    float *wo2, *bo2;   /* output dense [H, F], [H] */
    float *ln2_w, *ln2_b;
    /* The same four dense weights as AVX-512 GEMM panels (NULL without) */
    float *pqkv, *po, *pi, *po2;
} bert_layer;

struct attn_bert {
    attn_bert_config c;
    float *params;               /* every parameter, one block */
    float *word, *pos, *type;    /* [vocab, H], [max_position, H], [type_vocab, H] */
    float *emb_ln_w, *emb_ln_b;  /* [H] */
    bert_layer *layers;          /* [n_layers] */
    float *packed;               /* the panels of every layer, or NULL */
};

/* ---- config.json ---------------------------------------------------------------------- */

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
    ATTN__NN_NOT_NULL(__func__, json);
    ATTN__NN_NOT_NULL(__func__, c);
    return parse_config(json, len, "attn_bert_config_from_json: 'json'", c);
}


static attn_status load_config(const char *path, attn_bert_config *c)
{
    char *text = NULL, what[300];
    size_t len = 0;
    snprintf(what, sizeof what, "attn_bert_load: '%.200s'", path);
    attn_status st = attn__nn_read_file(what, path, CONFIG_MAX_BYTES, &text, &len);
    if (st != ATTN_OK) return st;
    st = parse_config(text, len, what, c);
    attn_release(text);
    return st;
}

/* sentence_bert_config.json: max_seq_length in [1, max_position]. */
static attn_status load_sbert_config(const char *path, attn_bert_config *c)
{
    char *text = NULL, what[300];
    size_t len = 0;
    snprintf(what, sizeof what, "attn_bert_load: '%.200s'", path);
    attn_status st = attn__nn_read_file(what, path, CONFIG_MAX_BYTES, &text, &len);
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

/* ---- the tensors of a config ------------------------------------------------------------ */

/* Names within a layer, in the order of the layer's parameter block. */
enum { N_LAYER_TENSORS = 16, N_EMB_TENSORS = 5 };
static const char *const layer_names[N_LAYER_TENSORS] = {
    "attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
    "attention.self.query.bias",   "attention.self.key.bias",   "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias",
    "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",   "intermediate.dense.bias",
    "output.dense.weight",         "output.dense.bias",
    "output.LayerNorm.weight",     "output.LayerNorm.bias"};
static const char *const emb_names[N_EMB_TENSORS] = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias"};

/* One expected tensor: its shape and its offset in the parameter block. */
typedef struct {
    int ndim;
    int64_t shape[2];
    int64_t offset;
} slot;

static slot mk(int64_t *off, int64_t d0, int64_t d1)
{
    slot s = {d1 ? 2 : 1, {d0, d1}, *off};
    *off += d1 ? d0 * d1 : d0;
    return s;
}

/* The slots of the embeddings (emb[N_EMB_TENSORS]) and of one layer
 * (lay[N_LAYER_TENSORS], offsets relative to the layer's block); returns the
 * floats of one layer, *emb_floats those of the embeddings. Sizes fit in
 * int64 for every config the parser accepts. */
static int64_t layout(const attn_bert_config *c, slot *emb, slot *lay, int64_t *emb_floats)
{
    int64_t H = c->hidden_size, F = c->intermediate_size, off = 0;
    emb[0] = mk(&off, c->vocab_size, H);
    emb[1] = mk(&off, c->max_position, H);
    emb[2] = mk(&off, c->type_vocab_size, H);
    emb[3] = mk(&off, H, 0);
    emb[4] = mk(&off, H, 0);
    *emb_floats = off;
    off = 0;
    for (int i = 0; i < 3; i++) lay[i] = mk(&off, H, H);   /* query, key, value */
    for (int i = 3; i < 6; i++) lay[i] = mk(&off, H, 0);   /* their biases */
    lay[6] = mk(&off, H, H);
    for (int i = 7; i < 10; i++) lay[i] = mk(&off, H, 0);
    lay[10] = mk(&off, F, H);
    lay[11] = mk(&off, F, 0);
    lay[12] = mk(&off, H, F);
    for (int i = 13; i < 16; i++) lay[i] = mk(&off, H, 0);
    return off;
}

/* Slot i of all 5 + 16 * n_layers tensors in file order of the parameter
 * block: its full name (under prefix) and its slot with an absolute offset. */
enum { NAME_CAP = 192 };

static slot slot_at(const attn_bert_config *c, const char *prefix, int64_t i, char *name)
{
    slot emb[N_EMB_TENSORS], lay[N_LAYER_TENSORS];
    int64_t emb_floats, layer_floats = layout(c, emb, lay, &emb_floats);
    if (i < N_EMB_TENSORS) {
        snprintf(name, NAME_CAP, "%s%s", prefix, emb_names[i]);
        return emb[i];
    }
    int64_t l = (i - N_EMB_TENSORS) / N_LAYER_TENSORS;
    int k = (int)((i - N_EMB_TENSORS) % N_LAYER_TENSORS);
    snprintf(name, NAME_CAP, "%sencoder.layer.%lld.%s", prefix, (long long)l, layer_names[k]);
    slot s = lay[k];
    s.offset += emb_floats + l * layer_floats;
    return s;
}

static int64_t n_slots(const attn_bert_config *c)
{
    return N_EMB_TENSORS + N_LAYER_TENSORS * c->n_layers;
}

static int is_float_dtype(attn_dtype d)
{
    return d == ATTN_DTYPE_F32 || d == ATTN_DTYPE_F16 || d == ATTN_DTYPE_BF16 || d == ATTN_DTYPE_F64;
}

/* Tensor t has a float dtype and exactly the shape of s. */
static attn_status check_info(const attn_safetensors_info *t, const char *what, const slot *s)
{
    if (!is_float_dtype(t->dtype))
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.120s' has dtype %s; it must be F32, F16, "
                         "BF16 or F64", what, t->name, attn_dtype_name(t->dtype));
    int same = t->ndim == s->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
    if (!same) {
        char want[64];
        if (s->ndim == 2)
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)s->shape[0],
                     (long long)s->shape[1]);
        else
            snprintf(want, sizeof want, "[%lld]", (long long)s->shape[0]);
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.120s' has %d dims (first %lld); expected "
                         "shape %s", what, t->name, t->ndim,
                         (long long)(t->ndim > 0 ? t->shape[0] : 0), want);
    }
    return ATTN_OK;
}

/* Is rest "<layer>.<layer tensor>" with a layer index below n (no leading zeros)? */
static int is_layer_tensor(const char *rest, int64_t n)
{
    int64_t l = 0;
    const char *p = rest;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        l = l * 10 + (*p - '0');
        if (l >= n) return 0;
    }
    if (*p != '.') return 0;
    for (int i = 0; i < N_LAYER_TENSORS; i++)
        if (strcmp(p + 1, layer_names[i]) == 0) return 1;
    return 0;
}

static int is_parameter(const char *rest, const attn_bert_config *c)
{
    if (strncmp(rest, "encoder.layer.", 14) == 0) return is_layer_tensor(rest + 14, c->n_layers);
    for (int i = 0; i < N_EMB_TENSORS; i++)
        if (strcmp(rest, emb_names[i]) == 0) return 1;
    return 0;
}

/* A tensor that may be present but is not used: position_ids and the
 * pooler, checked. *known = 0 if rest is none of them. */
static attn_status check_tolerated(const attn_safetensors_info *t, const char *what, const char *rest,
                                   const attn_bert_config *c, int *known)
{
    int64_t H = c->hidden_size;
    *known = 1;
    if (strcmp(rest, "embeddings.position_ids") == 0) {
        if (t->dtype != ATTN_DTYPE_I64 || t->ndim != 2 || t->shape[0] != 1 ||
            t->shape[1] != c->max_position)
            return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.120s' must be I64 [1, %lld]", what,
                             t->name, (long long)c->max_position);
        return ATTN_OK;
    }
    int w = strcmp(rest, "pooler.dense.weight") == 0, b = strcmp(rest, "pooler.dense.bias") == 0;
    if (w || b) {
        slot s = {w ? 2 : 1, {H, w ? H : 0}, 0};
        return check_info(t, what, &s);
    }
    *known = 0;
    return ATTN_OK;
}

/* Every tensor of f is a parameter (under prefix) or tolerated; with the
 * "bert." prefix, task heads "cls.*" are skipped. */
static attn_status check_no_extra(const attn_safetensors *f, const char *what, const char *prefix,
                                  const attn_bert_config *c)
{
    size_t pl = strlen(prefix);
    for (int64_t i = 0; i < attn_safetensors_count(f); i++) {
        attn_safetensors_info t;
        attn_status st = attn_safetensors_get(f, i, &t);
        if (st != ATTN_OK) return st;
        if (pl > 0 && strncmp(t.name, "cls.", 4) == 0) continue;
        int known = 0;
        if (strncmp(t.name, prefix, pl) == 0) {
            if (is_parameter(t.name + pl, c)) continue;
            if ((st = check_tolerated(&t, what, t.name + pl, c, &known)) != ATTN_OK) return st;
        }
        if (!known) return attn_fail(ATTN_BAD_FILE, "%s: unexpected tensor '%.120s'", what, t.name);
    }
    return ATTN_OK;
}

/* Every parameter is present with a float dtype and its exact shape. */
static attn_status check_parameters(const attn_safetensors *f, const char *what, const char *prefix,
                                    const attn_bert_config *c)
{
    char name[NAME_CAP];
    for (int64_t i = 0; i < n_slots(c); i++) {
        slot s = slot_at(c, prefix, i, name);
        attn_safetensors_info t;
        if (attn_safetensors_find(f, name, &t) != ATTN_OK)
            return attn_fail(ATTN_BAD_FILE, "%s: missing tensor '%s'", what, name);
        attn_status st = check_info(&t, what, &s);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

/* ---- dense layers: an AVX-512 GEMM on weights packed at load time ------------------------- */

/* On CPUs with AVX-512 the dense layers run on the packed-panel GEMM of
 * kernels/gemm_avx512.c instead of BLAS: as fast as OpenBLAS's own AVX-512
 * kernels on these shapes, and unaffected by OPENBLAS_CORETYPE. */
#include "kernels/x86/gemm_avx512.h"

#if defined(ATTN_NN_HAVE_AVX512)
#define BERT_AVX512 1
/* The CPU and the OS support AVX-512F (libgcc checks CPUID and XGETBV). */
static int have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#define gemm_avx512 attn__nn_gemm_avx512
#else
#define BERT_AVX512 0
static int have_avx512(void) { return 0; }
#endif

/* Floats of the panels of a [N, K] weight. */
static int64_t panel_floats(int64_t N, int64_t K)
{
    return (N + NR - 1) / NR * NR * K;
}

/* pw = the panels of w [N, K] */
static void pack_panels(const float *w, int64_t N, int64_t K, float *pw)
{
    for (int64_t p = 0; p * NR < N; p++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < NR; j++) {
                int64_t n = p * NR + j;
                pw[(p * K + k) * NR + j] = n < N ? w[n * K + k] : 0.0f;
            }
}

/* On an AVX-512 CPU: the panels of every layer's dense weights. */
static attn_status pack_weights(attn_bert *m)
{
    if (!BERT_AVX512 || !have_avx512()) return ATTN_OK;
    int64_t H = m->c.hidden_size, F = m->c.intermediate_size;
    int64_t per = panel_floats(3 * H, H) + panel_floats(H, H) + panel_floats(F, H) +
                  panel_floats(H, F);
    m->packed = attn_alloc((size_t)(per * m->c.n_layers) * sizeof(float));
    if (m->packed == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_bert_load: no memory for the packed weights");
    for (int64_t l = 0; l < m->c.n_layers; l++) {
        bert_layer *L = &m->layers[l];
        L->pqkv = m->packed + l * per;
        L->po = L->pqkv + panel_floats(3 * H, H);
        L->pi = L->po + panel_floats(H, H);
        L->po2 = L->pi + panel_floats(F, H);
        pack_panels(L->wqkv, 3 * H, H, L->pqkv);
        pack_panels(L->wo, H, H, L->po);
        pack_panels(L->wi, F, H, L->pi);
        pack_panels(L->wo2, H, F, L->po2);
    }
    return ATTN_OK;
}

/* ---- loading -------------------------------------------------------------------------------- */

static void set_pointers(attn_bert *m)
{
    const attn_bert_config *c = &m->c;
    slot emb[N_EMB_TENSORS], lay[N_LAYER_TENSORS];
    int64_t emb_floats, layer_floats = layout(c, emb, lay, &emb_floats);
    float *p = m->params;
    m->word = p + emb[0].offset;
    m->pos = p + emb[1].offset;
    m->type = p + emb[2].offset;
    m->emb_ln_w = p + emb[3].offset;
    m->emb_ln_b = p + emb[4].offset;
    for (int64_t l = 0; l < c->n_layers; l++) {
        float *q = p + emb_floats + l * layer_floats;
        bert_layer *L = &m->layers[l];
        L->wqkv = q + lay[0].offset; /* query, key, value: consecutive [H, H] blocks */
        L->bqkv = q + lay[3].offset;
        L->wo = q + lay[6].offset;
        L->bo = q + lay[7].offset;
        L->ln1_w = q + lay[8].offset;
        L->ln1_b = q + lay[9].offset;
        L->wi = q + lay[10].offset;
        L->bi = q + lay[11].offset;
        L->wo2 = q + lay[12].offset;
        L->bo2 = q + lay[13].offset;
        L->ln2_w = q + lay[14].offset;
        L->ln2_b = q + lay[15].offset;
    }
}

static attn_status alloc_model(const attn_bert_config *c, attn_bert **out)
{
    slot emb[N_EMB_TENSORS], lay[N_LAYER_TENSORS];
    int64_t emb_floats, layer_floats = layout(c, emb, lay, &emb_floats), all;
    ATTN__NN_MUL("attn_bert_load", layer_floats, c->n_layers, &all);
    if (all > ATTN__NN_MAX_ELEMS - emb_floats)
        return attn_fail(ATTN_OVERFLOW, "attn_bert_load: the parameter count overflows");
    attn_bert *m = attn_calloc(1, sizeof *m);
    if (m) m->params = attn_alloc((size_t)(all + emb_floats) * sizeof(float));
    if (m) m->layers = attn_calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m || !m->params || !m->layers) {
        attn_bert_free(m);
        return attn_fail(ATTN_NO_MEMORY, "attn_bert_load: no memory for %lld parameters",
                         (long long)(all + emb_floats));
    }
    m->c = *c;
    set_pointers(m);
    *out = m;
    return ATTN_OK;
}

/* Reads every parameter into m->params and checks that it is finite. */
static attn_status read_parameters(const attn_safetensors *f, const char *what, const char *prefix,
                                   attn_bert *m)
{
    char name[NAME_CAP];
    for (int64_t i = 0; i < n_slots(&m->c); i++) {
        slot s = slot_at(&m->c, prefix, i, name);
        float *dst = m->params + s.offset;
        attn_status st = attn_safetensors_read_f32(f, name, s.ndim, s.shape, dst);
        if (st != ATTN_OK) return st;
        int64_t n = s.ndim == 2 ? s.shape[0] * s.shape[1] : s.shape[0];
        for (int64_t e = 0; e < n; e++)
            if (!isfinite(dst[e]))
                return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' has a non-finite value at "
                                 "element %lld", what, name, (long long)e);
    }
    return ATTN_OK;
}

static attn_status load_weights(const char *path, const attn_bert_config *c, attn_bert **out)
{
    char what[300];
    snprintf(what, sizeof what, "attn_bert_load: '%.200s'", path);
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(path, &f);
    if (st != ATTN_OK) return st;
    attn_safetensors_info probe;
    const char *prefix =
        attn_safetensors_find(f, "bert.embeddings.word_embeddings.weight", &probe) == ATTN_OK ? "bert." : "";
    st = check_parameters(f, what, prefix, c);
    if (st == ATTN_OK) st = check_no_extra(f, what, prefix, c);
    attn_bert *m = NULL;
    if (st == ATTN_OK) st = alloc_model(c, &m);
    if (st == ATTN_OK) st = read_parameters(f, what, prefix, m);
    if (st == ATTN_OK) st = pack_weights(m);
    attn_safetensors_free(f);
    if (st != ATTN_OK) {
        attn_bert_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}

attn_status attn_bert_load_files(const char *config_path, const char *weights_path,
                                 const char *sbert_config_path, attn_bert **out)
{
    ATTN__NN_NOT_NULL(__func__, config_path);
    ATTN__NN_NOT_NULL(__func__, weights_path);
    ATTN__NN_NOT_NULL(__func__, out);
    attn_bert_config c;
    attn_status st = load_config(config_path, &c);
    if (st == ATTN_OK && sbert_config_path) st = load_sbert_config(sbert_config_path, &c);
    if (st == ATTN_OK) st = load_weights(weights_path, &c, out);
    return st;
}

attn_status attn_bert_load(const char *model_dir, attn_bert **out)
{
    ATTN__NN_NOT_NULL(__func__, model_dir);
    ATTN__NN_NOT_NULL(__func__, out);
    enum { PATH_CAP = 4096 };
    char cfg[PATH_CAP], wts[PATH_CAP], sb[PATH_CAP];
    int a = snprintf(cfg, PATH_CAP, "%s/config.json", model_dir);
    int b = snprintf(wts, PATH_CAP, "%s/model.safetensors", model_dir);
    int s = snprintf(sb, PATH_CAP, "%s/sentence_bert_config.json", model_dir);
    if (a < 0 || b < 0 || s < 0 || a >= PATH_CAP || b >= PATH_CAP || s >= PATH_CAP)
        return attn_fail(ATTN_BAD_PARAM, "attn_bert_load: argument 'model_dir' is too long");
    /* optional: read if anything is there, so that a FIFO or a directory
     * in its place is an error rather than a silent default (or a hang) */
    struct stat st;
    int has_sb = lstat(sb, &st) == 0 || errno != ENOENT;
    return attn_bert_load_files(cfg, wts, has_sb ? sb : NULL, out);
}

void attn_bert_free(attn_bert *m)
{
    if (m == NULL) return;
    attn_release(m->params);
    attn_release(m->packed);
    attn_release(m->layers);
    attn_release(m);
}

const attn_bert_config *attn_bert_get_config(const attn_bert *m)
{
    return m ? &m->c : NULL;
}

/* ---- row kernels: GELU with bias, LayerNorm, bias + residual --------------------------------- */

/* These loops are cloned for AVX-512 and AVX2 and picked at load time
 * (the same float operations in each clone; only the vector width differs). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BERT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BERT_CLONES
#endif

/* GELU(x) = x Phi(x) in float, branch-free so that it vectorises. With
 * a = min(|x|, 9), the normal tail Q(a) = erfc(a / sqrt 2) / 2 is
 *   Q(a) = e^(-a^2/2) S(t),  t = (4 - 17a/9) / (4 + a) in [-1, 1],
 * S a degree-9 polynomial fitted (weighted least squares, mpmath reference)
 * to |S_fit / S - 1| < 2e-9 on a in [0, 9]; Phi = Q for x < 0, else 1 - Q.
 * a^2 is split into sq + lo exactly (Dekker) so e^(-a^2/2) keeps float
 * accuracy. Beyond |x| = 9, Q < 1.2e-19 is taken as 0. Error: < 7 ulp of
 * GELU(x) for |x| <= 5, < 4e-7 absolute everywhere. NaN propagates. */
static const float s_poly[10] = {0.161005463f,    0.187813857f,     0.100940623f,
                                 0.0390896894f,   0.0100850726f,    0.00125976248f,
                                 -0.000132877797f, -6.55259398e-05f, 1.11406988e-06f,
                                 2.82236992e-06f};

/* e^t for t in [-41, 0]: t = n ln2 + r (Cody-Waite, ln2 split so n * hi is
 * exact), e^r by Taylor to r^7, 2^n written into the exponent bits. */
static inline float exp_neg_f(float t)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float k = t * 1.44269504f + shifter;
    float n = k - shifter;
    float r = (t - n * 0.693145752f) - n * 1.42860677e-06f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t kb, sb;
    memcpy(&kb, &k, sizeof kb);
    sb = (kb - 0x4B400000u + 127u) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &sb, sizeof scale);
    return p * scale;
}

/* h [n] = GELU(h + b) */
BERT_CLONES static void gelu_bias_row(float *h, const float *b, int64_t n)
{
    const int32_t a_max = 0x41100000; /* 9.0f */
    for (int64_t i = 0; i < n; i++) {
        float v = h[i] + b[i], a, phi;
        uint32_t xb, qb, pb;
        memcpy(&xb, &v, sizeof xb);
        int32_t ab = (int32_t)(xb & 0x7FFFFFFFu), acb = ab < a_max ? ab : a_max;
        memcpy(&a, &acb, sizeof a);
        float keep = (float)(ab <= a_max); /* 0 beyond 9 (and for NaN) */
        float t = (4.0f - 1.88888889f * a) / (4.0f + a), s = s_poly[9];
        for (int j = 8; j >= 0; j--) s = s * t + s_poly[j];
        float sq = a * a, c = 4097.0f * a, ah = c - (c - a), al = a - ah;
        float lo = ((ah * ah - sq) + 2.0f * ah * al) + al * al; /* a * a = sq + lo */
        float q = exp_neg_f(-0.5f * sq) * (1.0f - 0.5f * lo) * s * keep, p = 1.0f - q;
        uint32_t neg = 0u - (xb >> 31); /* all ones if the sign bit is set */
        memcpy(&qb, &q, sizeof qb);
        memcpy(&pb, &p, sizeof pb);
        uint32_t phib = (qb & neg) | (pb & ~neg);
        memcpy(&phi, &phib, sizeof phi);
        h[i] = v * phi;
    }
}

enum { LANES = 8 };

/* y [d] = (x - mean) / sqrt(var + eps) * w + b, statistics in double with
 * LANES partial sums (so that the loops vectorise); y == x allowed. */
BERT_CLONES static void layernorm_row(const float *x, int64_t d, const float *w, const float *b,
                                      double eps, float *y)
{
    double s[LANES] = {0}, ss[LANES] = {0}, mu = 0.0, var = 0.0;
    int64_t i = 0;
    for (; i + LANES <= d; i += LANES)
        for (int k = 0; k < LANES; k++) s[k] += x[i + k];
    for (int k = 0; i + k < d; k++) s[k] += x[i + k];
    for (int k = 0; k < LANES; k++) mu += s[k];
    mu /= (double)d;
    for (i = 0; i + LANES <= d; i += LANES)
        for (int k = 0; k < LANES; k++) ss[k] += ((double)x[i + k] - mu) * ((double)x[i + k] - mu);
    for (int k = 0; i + k < d; k++) ss[k] += ((double)x[i + k] - mu) * ((double)x[i + k] - mu);
    for (int k = 0; k < LANES; k++) var += ss[k];
    float rstd = (float)(1.0 / sqrt(var / (double)d + eps)), muf = (float)mu;
    for (i = 0; i < d; i++) y[i] = (x[i] - muf) * rstd * w[i] + b[i];
}

/* y [n, d] = x + b (x [n, d] or NULL for 0), row by row */
static void bias_rows(float *y, const float *x, const float *b, int64_t n, int64_t d)
{
    for (int64_t r = 0; r < n; r++) {
        float *yr = y + r * d;
        if (x)
            for (int64_t i = 0; i < d; i++) yr[i] = x[r * d + i] + b[i];
        else
            memcpy(yr, b, (size_t)d * sizeof(float));
    }
}

/* ---- the forward pass ------------------------------------------------------------------------ */

enum { MAX_THREADS = 64, BLOCK_ROWS = 128 };

/* One call's state: the packed batch and the work buffers. */
typedef struct {
    attn_ctx *ctx;
    const attn_bert *m;
    int threads;        /* row-parallel threads (1 unless BLAS is single-threaded) */
    int64_t B, T;       /* sequences, real tokens */
    const int64_t *lens;
    int64_t *start;     /* [B + 1] first packed row of each sequence */
    int32_t *tok, *pos; /* [T] id and position of each packed row */
    float *x, *qkv, *o; /* [T, H], [T, 3H], [T, H] */
    float *scratch;     /* [threads, BLOCK_ROWS * (H + F)] per-thread y and h */
    int64_t layer;      /* the layer a row pass works on */
    int fast;           /* dense layers on the AVX-512 GEMM, else BLAS */
} run;

/* y [n, out] = beta * y + x [n, in] w^T (w [out, in], or its panels pw),
 * beta 0 or 1: the AVX-512 GEMM when r->fast, else BLAS sgemm. */
static void dense(const run *r, const float *x, int64_t n, int64_t in, const float *w,
                  const float *pw, int64_t out, float beta, float *y)
{
#if BERT_AVX512
    if (r->fast) {
        gemm_avx512(x, n, in, pw, out, beta, y);
        return;
    }
#endif
    (void)r;
    (void)pw;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, x,
                (int)in, w, (int)in, beta, y, (int)out);
}

/* qkv [n, 3H] = x [n, H] Wqkv^T + bqkv of layer l (rows r0.. of the batch). */
static void qkv_rows(const run *r, int64_t l, int64_t r0, int64_t n)
{
    int64_t H = r->m->c.hidden_size;
    const bert_layer *L = &r->m->layers[l];
    bias_rows(r->qkv + r0 * 3 * H, NULL, L->bqkv, n, 3 * H);
    dense(r, r->x + r0 * H, n, H, L->wqkv, L->pqkv, 3 * H, 1.0f, r->qkv + r0 * 3 * H);
}

/* Rows [r0, r0 + n): embeddings, their LayerNorm and layer 0's q, k, v. */
static void embed_block(const run *r, int64_t r0, int64_t n, float *scratch)
{
    const attn_bert *m = r->m;
    int64_t H = m->c.hidden_size;
    (void)scratch;
    for (int64_t t = r0; t < r0 + n; t++) {
        float *x = r->x + t * H;
        const float *w = m->word + (int64_t)r->tok[t] * H, *p = m->pos + (int64_t)r->pos[t] * H;
        for (int64_t i = 0; i < H; i++) x[i] = (w[i] + m->type[i]) + p[i];
        layernorm_row(x, H, m->emb_ln_w, m->emb_ln_b, m->c.layer_norm_eps, x);
    }
    qkv_rows(r, 0, r0, n);
}

/* Rows [r0, r0 + n) of layer r->layer after the attention core: output
 * dense, LayerNorm, feed-forward, LayerNorm, then the next layer's q, k, v.
 * scratch: y [n, H], h [n, F]. */
static void layer_block(const run *r, int64_t r0, int64_t n, float *scratch)
{
    const attn_bert_config *c = &r->m->c;
    const bert_layer *L = &r->m->layers[r->layer];
    int64_t H = c->hidden_size, F = c->intermediate_size;
    float *x = r->x + r0 * H, *y = scratch, *h = scratch + n * H;
    bias_rows(y, x, L->bo, n, H); /* y = x + bo + o Wo^T */
    dense(r, r->o + r0 * H, n, H, L->wo, L->po, H, 1.0f, y);
    for (int64_t t = 0; t < n; t++)
        layernorm_row(y + t * H, H, L->ln1_w, L->ln1_b, c->layer_norm_eps, x + t * H);
    dense(r, x, n, H, L->wi, L->pi, F, 0.0f, h);
    for (int64_t t = 0; t < n; t++) gelu_bias_row(h + t * F, L->bi, F);
    bias_rows(y, x, L->bo2, n, H); /* y = x + bo2 + h Wo2^T */
    dense(r, h, n, F, L->wo2, L->po2, H, 1.0f, y);
    for (int64_t t = 0; t < n; t++)
        layernorm_row(y + t * H, H, L->ln2_w, L->ln2_b, c->layer_norm_eps, x + t * H);
    if (r->layer + 1 < c->n_layers) qkv_rows(r, r->layer + 1, r0, n);
}

typedef void (*block_fn)(const run *r, int64_t r0, int64_t n, float *scratch);

/* A row pass: blocks of `rows` rows handed out in order to the threads. */
typedef struct {
    const run *r;
    block_fn fn;
    int64_t rows;
    atomic_llong next; /* the next block to take */
} pass;

typedef struct {
    pass *p;
    float *scratch; /* this thread's [BLOCK_ROWS * (H + F)] */
} worker;

static void *worker_main(void *arg)
{
    const worker *w = arg;
    pass *p = w->p;
    for (;;) {
        int64_t r0 = (int64_t)atomic_fetch_add(&p->next, 1) * p->rows;
        if (r0 >= p->r->T) break;
        p->fn(p->r, r0, p->r->T - r0 < p->rows ? p->r->T - r0 : p->rows, w->scratch);
    }
    return NULL;
}

/* Rows per block: about T / 8 (so that threads share the work evenly),
 * rounded up to 16, at most BLOCK_ROWS. It depends on T only: the blocks,
 * and so every GEMM call, are the same for any number of threads. */
static int64_t block_rows(int64_t T)
{
    int64_t rows = ((T + 7) / 8 + 15) / 16 * 16;
    return rows < BLOCK_ROWS ? rows : BLOCK_ROWS;
}

/* Runs fn over all T rows on r->threads threads (the caller is one). A
 * thread that cannot be started leaves its blocks to the others: every
 * row's result is the same either way. */
static void row_pass(const run *r, block_fn fn)
{
    const attn_bert_config *c = &r->m->c;
    int64_t per = BLOCK_ROWS * (c->hidden_size + c->intermediate_size);
    pass p;
    p.r = r;
    p.fn = fn;
    p.rows = block_rows(r->T);
    atomic_init(&p.next, 0);
    worker w[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 0; i < r->threads; i++) w[i] = (worker){&p, r->scratch + i * per};
    for (int i = 1; i < r->threads; i++)
        started[i] = pthread_create(&th[i], NULL, worker_main, &w[i]) == 0;
    worker_main(&w[0]);
    for (int i = 1; i < r->threads; i++)
        if (started[i]) pthread_join(th[i], NULL);
}

/* A view of rows of `row` floats holding nb sequences of len tokens, nh
 * heads of hd floats each, at p: [nb, len, nh, hd]. */
static attn_tensor seq_view(const float *p, int64_t nb, int64_t len, int64_t nh, int64_t hd,
                            int64_t row)
{
    attn_tensor t = attn_tensor_make((void *)p, ATTN_DTYPE_F32, nb, len, nh, hd);
    t.stride[0] = len * row;
    t.stride[1] = row;
    return t;
}

/* o [T, H] = softmax(q k^T / sqrt(hd)) v from qkv [T, 3H], one call per run
 * of consecutive sequences of equal length. */
static attn_status attention(const run *r)
{
    const attn_bert_config *c = &r->m->c;
    int64_t H = c->hidden_size, nh = c->n_heads, hd = H / nh;
    attn_sdpa_params p = attn_sdpa_params_default();
    for (int64_t b0 = 0; b0 < r->B;) {
        int64_t len = r->lens[b0], b1 = b0 + 1;
        while (b1 < r->B && r->lens[b1] == len) b1++;
        const float *base = r->qkv + r->start[b0] * 3 * H;
        attn_tensor q = seq_view(base, b1 - b0, len, nh, hd, 3 * H);
        attn_tensor k = seq_view(base + H, b1 - b0, len, nh, hd, 3 * H);
        attn_tensor v = seq_view(base + 2 * H, b1 - b0, len, nh, hd, 3 * H);
        attn_tensor t = seq_view(r->o + r->start[b0] * H, b1 - b0, len, nh, hd, H);
        attn_status st = attn_sdpa_forward(r->ctx, &q, &k, &v, &p, &t, NULL);
        if (st != ATTN_OK) return st;
        b0 = b1;
    }
    return ATTN_OK;
}

/* An attention map request: layer, head and where its [len, len] goes. */
typedef struct {
    int64_t layer, head;
    float *weights;
} map_req;

/* weights [len, len] of head req->head, from the q, k of the one sequence of r. */
static attn_status attention_map(const run *r, const map_req *req)
{
    const attn_bert_config *c = &r->m->c;
    int64_t H = c->hidden_size, nh = c->n_heads, hd = H / nh, len = r->T;
    float *lse = attn_alloc((size_t)(nh * len) * sizeof(float)); /* [1, nh, len, 1] */
    if (lse == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_bert_attention: out of memory");
    attn_sdpa_params p = attn_sdpa_params_default();
    attn_tensor q = seq_view(r->qkv, 1, len, nh, hd, 3 * H);
    attn_tensor k = seq_view(r->qkv + H, 1, len, nh, hd, 3 * H);
    attn_tensor v = seq_view(r->qkv + 2 * H, 1, len, nh, hd, 3 * H);
    attn_tensor t = seq_view(r->o, 1, len, nh, hd, H);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, 1, nh, len, 1);
    attn_tensor w = attn_tensor_make(req->weights, ATTN_DTYPE_F32, 1, 1, len, len);
    attn_status st = attn_sdpa_forward(r->ctx, &q, &k, &v, &p, &t, &tl);
    if (st == ATTN_OK)
        st = attn_sdpa_weights(r->ctx, &q, &k, &tl, &p, &req->head, 1, NULL, 0, 0, &w);
    attn_release(lse);
    return st;
}

static void run_free(run *r)
{
    attn_release(r->start);
    attn_release(r->tok);
    attn_release(r->x);
}

/* The dense layers run on the AVX-512 GEMM when the model has its panels
 * and the ctx asks for the fast kernels (AUTO or AVX2); with REF or TILED
 * they run on BLAS, the portable path. */
static int use_fast(attn_ctx *ctx, const attn_bert *m)
{
    attn_kernel k = attn_ctx_kernel(ctx);
    return m->packed != NULL && (k == ATTN_KERNEL_AUTO || k == ATTN_KERNEL_AVX2);
}

/* Row-pass threads: the ctx's count when the dense layers run on the
 * AVX-512 GEMM or on a single-threaded BLAS (then attn_bert owns the
 * parallelism), else 1 and BLAS splits each GEMM; at most one per block. */
static int row_threads(attn_ctx *ctx, int fast, int64_t T)
{
    int64_t nt = fast || openblas_get_num_threads() == 1 ? attn_ctx_threads(ctx) : 1;
    int64_t blocks = (T + block_rows(T) - 1) / block_rows(T);
    if (nt > MAX_THREADS) nt = MAX_THREADS;
    if (nt > blocks) nt = blocks;
    return nt < 1 ? 1 : (int)nt;
}

/* Packs the batch (ids [B, S] into tok, pos) and allocates the work buffers. */
static attn_status run_init(run *r, attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                            const int64_t *lens, int64_t B, int64_t S)
{
    const attn_bert_config *c = &m->c;
    int64_t H = c->hidden_size, n, per;
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->m = m;
    r->B = B;
    r->lens = lens;
    r->start = attn_alloc((size_t)(B + 1) * sizeof(int64_t));
    if (r->start == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_bert: out of memory");
    r->start[0] = 0;
    for (int64_t b = 0; b < B; b++) r->start[b + 1] = r->start[b] + lens[b];
    r->T = r->start[B];
    r->fast = use_fast(ctx, m);
    r->threads = row_threads(ctx, r->fast, r->T);
    per = BLOCK_ROWS * (H + c->intermediate_size);
    if (!attn__nn_mul(r->T, 5 * H, &n) || n > ATTN__NN_MAX_ELEMS - r->threads * per) {
        run_free(r);
        return attn_fail(ATTN_OVERFLOW, "attn_bert: the work buffer size overflows");
    }
    r->tok = attn_alloc((size_t)(2 * r->T) * sizeof(int32_t));
    r->x = attn_alloc((size_t)(n + r->threads * per) * sizeof(float));
    if (r->tok == NULL || r->x == NULL) {
        run_free(r);
        return attn_fail(ATTN_NO_MEMORY, "attn_bert: no memory for %lld work floats",
                         (long long)(n + r->threads * per));
    }
    r->pos = r->tok + r->T;
    r->qkv = r->x + r->T * H;
    r->o = r->qkv + r->T * 3 * H;
    r->scratch = r->o + r->T * H;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < lens[b]; t++) {
            r->tok[r->start[b] + t] = ids[b * S + t];
            r->pos[r->start[b] + t] = (int32_t)t;
        }
    return ATTN_OK;
}

/* x [T, H] = the encoder's output, or (req) only the requested map. */
static attn_status encode(run *r, const map_req *req)
{
    row_pass(r, embed_block);
    for (int64_t l = 0; l < r->m->c.n_layers; l++) {
        if (req && req->layer == l) return attention_map(r, req);
        attn_status st = attention(r);
        if (st != ATTN_OK) return st;
        r->layer = l;
        row_pass(r, layer_block);
    }
    return ATTN_OK;
}

/* ---- the public calls --------------------------------------------------------------------------- */

/* Arguments of a batch call; *total = B * S. */
static attn_status check_batch(const char *fn, attn_ctx *ctx, const attn_bert *m,
                               const int32_t *ids, const int64_t *lens, int64_t B, int64_t S,
                               int64_t *total)
{
    ATTN__NN_NOT_NULL(fn, ctx);
    ATTN__NN_NOT_NULL(fn, m);
    ATTN__NN_NOT_NULL(fn, ids);
    ATTN__NN_NOT_NULL(fn, lens);
    ATTN__NN_DIM(fn, B);
    ATTN__NN_DIM(fn, S);
    if (S > m->c.max_position)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'S' is %lld; the model takes at most %lld "
                         "tokens (max_position)", fn, (long long)S, (long long)m->c.max_position);
    ATTN__NN_MUL(fn, B, S, total);
    if (*total > INT_MAX)
        return attn_fail(ATTN_OVERFLOW, "%s: B * S = %lld tokens exceeds %d", fn,
                         (long long)*total, INT_MAX);
    for (int64_t b = 0; b < B; b++) {
        if (lens[b] < 1 || lens[b] > S)
            return attn_fail(ATTN_BAD_PARAM, "%s: argument 'lens[%lld]' is %lld; it must be in "
                             "[1, S = %lld]", fn, (long long)b, (long long)lens[b], (long long)S);
        for (int64_t t = 0; t < lens[b]; t++) {
            int32_t id = ids[b * S + t];
            if (id < 0 || id >= m->c.vocab_size)
                return attn_fail(ATTN_BAD_PARAM, "%s: argument 'ids[%lld]' is %d; it must be in "
                                 "[0, %lld)", fn, (long long)(b * S + t), (int)id,
                                 (long long)m->c.vocab_size);
        }
    }
    return ATTN_OK;
}

/* ATTN_OVERLAP if out (out_bytes) shares a byte with ids or lens. */
static attn_status check_out(const char *fn, const float *out, size_t out_bytes,
                             const int32_t *ids, int64_t total, const int64_t *lens, int64_t B)
{
    attn__nn_span sp[] = {{"out", out, out_bytes},
                          {"ids", ids, (size_t)total * sizeof(int32_t)},
                          {"lens", lens, (size_t)B * sizeof(int64_t)}};
    return attn__nn_disjoint(fn, sp, 3, 1);
}

attn_status attn_bert_forward(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                              const int64_t *lens, int64_t B, int64_t S, float *hidden)
{
    int64_t total = 0, count;
    attn_status st = check_batch(__func__, ctx, m, ids, lens, B, S, &total);
    if (st != ATTN_OK) return st;
    ATTN__NN_NOT_NULL(__func__, hidden);
    int64_t H = m->c.hidden_size;
    ATTN__NN_MUL(__func__, total, H, &count);
    st = check_out(__func__, hidden, (size_t)count * sizeof(float), ids, total, lens, B);
    if (st != ATTN_OK || B == 0) return st;
    run r;
    if ((st = run_init(&r, ctx, m, ids, lens, B, S)) != ATTN_OK) return st;
    if ((st = encode(&r, NULL)) == ATTN_OK) {
        memset(hidden, 0, (size_t)count * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            memcpy(hidden + b * S * H, r.x + r.start[b] * H, (size_t)(lens[b] * H) * sizeof(float));
    }
    run_free(&r);
    return st;
}

/* emb [H] = normalize(mean of the rows x [n, H]), in double (acc [H]). */
static void pool_normalize(const float *x, int64_t n, int64_t H, double *acc, float *emb)
{
    for (int64_t i = 0; i < H; i++) acc[i] = 0.0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < H; i++) acc[i] += x[t * H + i];
    double ss = 0.0;
    for (int64_t i = 0; i < H; i++) {
        acc[i] /= (double)n;
        ss += acc[i] * acc[i];
    }
    double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
    for (int64_t i = 0; i < H; i++) emb[i] = (float)(acc[i] / norm);
}

attn_status attn_bert_embed(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                            const int64_t *lens, int64_t B, int64_t S, float *emb)
{
    int64_t total = 0, count;
    attn_status st = check_batch(__func__, ctx, m, ids, lens, B, S, &total);
    if (st != ATTN_OK) return st;
    ATTN__NN_NOT_NULL(__func__, emb);
    int64_t H = m->c.hidden_size;
    ATTN__NN_MUL(__func__, B, H, &count);
    st = check_out(__func__, emb, (size_t)count * sizeof(float), ids, total, lens, B);
    if (st != ATTN_OK || B == 0) return st;
    double *acc = attn_alloc((size_t)H * sizeof(double));
    if (acc == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    run r;
    if ((st = run_init(&r, ctx, m, ids, lens, B, S)) == ATTN_OK) {
        st = encode(&r, NULL);
        for (int64_t b = 0; st == ATTN_OK && b < B; b++)
            pool_normalize(r.x + r.start[b] * H, lens[b], H, acc, emb + b * H);
        run_free(&r);
    }
    attn_release(acc);
    return st;
}

attn_status attn_bert_attention(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                                int64_t len, int64_t layer, int64_t head, float *weights)
{
    int64_t total = 0, count;
    ATTN__NN_DIM_POS(__func__, len);
    attn_status st = check_batch(__func__, ctx, m, ids, &len, 1, len, &total);
    if (st != ATTN_OK) return st;
    ATTN__NN_NOT_NULL(__func__, weights);
    if (layer < 0 || layer >= m->c.n_layers)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'layer' is %lld; it must be in [0, %lld)",
                         __func__, (long long)layer, (long long)m->c.n_layers);
    if (head < 0 || head >= m->c.n_heads)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'head' is %lld; it must be in [0, %lld)",
                         __func__, (long long)head, (long long)m->c.n_heads);
    ATTN__NN_MUL(__func__, len, len, &count);
    st = check_out(__func__, weights, (size_t)count * sizeof(float), ids, total, &len, 1);
    if (st != ATTN_OK) return st;
    run r;
    if ((st = run_init(&r, ctx, m, ids, &len, 1, len)) != ATTN_OK) return st;
    map_req req = {layer, head, weights};
    st = encode(&r, &req);
    run_free(&r);
    return st;
}
