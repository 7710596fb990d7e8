/* weights.c - loading a BERT encoder (attn/bert.h): the safetensors file
 * is checked against the config before anything is read (every parameter
 * present with a float dtype and its exact shape, nothing unexpected beyond
 * position_ids, the pooler and, under the "bert." prefix, task heads),
 * read into one block of floats (each checked finite), and the four dense
 * weights of every layer are packed into the panels of the GEMM kernel this
 * CPU runs best (the nn.gemm slot of the AUTO kernel table,
 * core/toolkit_kernels.h), so the forward pass packs
 * nothing. */
#include "bert_internal.h"

#include <attn/safetensors.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
/* ---- the dense weights as GEMM panels -------------------------------------------------------- */

enum { ALIGN_FLOATS = 16 }; /* a cache line */

bert_panels attn__bert_panels(const attn_bert_config *c, const attn__gemm_kernel *k)
{
    int64_t H = c->hidden_size, F = c->intermediate_size;
    bert_panels p;
    p.at[BERT_QKV] = 0;
    p.at[BERT_O] = attn__gemm_packed_floats(k, 3 * H, H);
    p.at[BERT_I] = p.at[BERT_O] + attn__gemm_packed_floats(k, H, H);
    p.at[BERT_O2] = p.at[BERT_I] + attn__gemm_packed_floats(k, F, H);
    p.per = p.at[BERT_O2] + attn__gemm_packed_floats(k, H, F);
    return p;
}

/* The weight of layer L that a panel index names, with its in (K) and out
 * (N) sizes: each weight is [out, in], op(B) = w^T. */
static const float *weight_of(const attn_bert_config *c, const bert_layer *L, int which,
                              int64_t *in, int64_t *out)
{
    int64_t H = c->hidden_size, F = c->intermediate_size;
    *in = which == BERT_O2 ? F : H;
    *out = which == BERT_QKV ? 3 * H : which == BERT_I ? F : H;
    return which == BERT_QKV ? L->wqkv : which == BERT_O ? L->wo : which == BERT_I ? L->wi : L->wo2;
}

/* *base = a block of n_layers * per elements of `size` bytes, from a cache
 * line; *block is what to release. */
static attn_status panel_block(const char *fn, const attn_bert_config *c, int64_t per,
                               size_t size, void **block, void **base)
{
    int64_t all;
    *block = *base = NULL;
    if (!attn__mul(per, c->n_layers, &all))
        return attn_fail(ATTN_OVERFLOW, "%s: the packed weights' size overflows", fn);
    *block = attn_alloc((size_t)all * size + ALIGN_FLOATS * sizeof(float));
    if (*block == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: no memory for the packed weights", fn);
    uintptr_t mis = (uintptr_t)*block % (ALIGN_FLOATS * sizeof(float));
    *base = mis ? (char *)*block + ALIGN_FLOATS * sizeof(float) - mis : *block;
    return ATTN_OK;
}

attn_status attn__bert_pack(const char *fn, const attn_bert *m, attn_dtype dtype,
                            const attn__gemm_kernel *k, void **block, void **panels)
{
    bool half = dtype == ATTN_DTYPE_BF16;
    bert_panels p = attn__bert_panels(&m->c, k);
    attn_status st = panel_block(fn, &m->c, p.per, half ? sizeof(uint16_t) : sizeof(float), block, panels);
    if (st != ATTN_OK) return st;
    for (int64_t l = 0; l < m->c.n_layers; l++)
        for (int w = 0; w < 4; w++) { /* each weight [out, in]: op(B) = w^T */
            int64_t in, out, at = l * p.per + p.at[w];
            const float *src = weight_of(&m->c, &m->layers[l], w, &in, &out);
            if (half)
                attn__gemm_pack_b_bf16(k, src, in, ATTN__GEMM_T, out, in, (uint16_t *)*panels + at);
            else
                attn__gemm_pack_b(k, src, in, ATTN__GEMM_T, out, in, (float *)*panels + at);
        }
    return ATTN_OK;
}

/* m's panels in dtype for the best GEMM kernel of that dtype (the old ones
 * released); on failure m is unchanged. */
static attn_status pack_weights(const char *fn, attn_bert *m, attn_dtype dtype)
{
    const attn__toolkit_kernels *t = attn__ctx_toolkit(NULL);
    const attn__gemm_kernel *k = dtype == ATTN_DTYPE_BF16 ? t->gemm_bf16 : t->gemm;
    void *block, *panels;
    attn_status st = attn__bert_pack(fn, m, dtype, k, &block, &panels);
    if (st != ATTN_OK) return st;
    attn_release(m->panel_block);
    m->panel_block = block;
    m->panels = panels;
    m->pack_kernel = k;
    m->dtype = dtype;
    return ATTN_OK;
}

attn_status attn_bert_set_dtype(attn_bert *m, attn_dtype dtype)
{
    ATTN__NOT_NULL(__func__, m);
    if (dtype != ATTN_DTYPE_F32 && dtype != ATTN_DTYPE_BF16)
        return attn_fail(ATTN_BAD_DTYPE, "%s: argument 'dtype' is %s; the dense layers run in "
                         "F32 or BF16", __func__, attn_dtype_name(dtype));
    return dtype == m->dtype ? ATTN_OK : pack_weights(__func__, m, dtype);
}

attn_dtype attn_bert_get_dtype(const attn_bert *m)
{
    return m ? m->dtype : ATTN_DTYPE_F32;
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
    ATTN__MUL("attn_bert_load", layer_floats, c->n_layers, &all);
    if (all > ATTN__MAX_ELEMS - emb_floats)
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
    m->dtype = ATTN_DTYPE_F32;
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
    if (st == ATTN_OK) st = pack_weights("attn_bert_load", m, ATTN_DTYPE_F32);
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
    ATTN__NOT_NULL(__func__, config_path);
    ATTN__NOT_NULL(__func__, weights_path);
    ATTN__NOT_NULL(__func__, out);
    attn_bert_config c;
    attn_status st = attn__bert_load_config(config_path, &c);
    if (st == ATTN_OK && sbert_config_path) st = attn__bert_load_sbert_config(sbert_config_path, &c);
    if (st == ATTN_OK) st = load_weights(weights_path, &c, out);
    return st;
}

attn_status attn_bert_load(const char *model_dir, attn_bert **out)
{
    ATTN__NOT_NULL(__func__, model_dir);
    ATTN__NOT_NULL(__func__, out);
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
    attn_release(m->panel_block);
    attn_release(m->layers);
    attn_release(m);
}

const attn_bert_config *attn_bert_get_config(const attn_bert *m)
{
    return m ? &m->c : NULL;
}
