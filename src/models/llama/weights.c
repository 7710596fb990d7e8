/* weights.c - loading a Llama model from a GGUF file: the file must hold
 * exactly the tensors of the architecture its metadata describes, each of
 * its shape and of a supported type. Matrices stay in the file's mapping
 * (quantized); the norms (float32) are copied so that their alignment does
 * not depend on the file's. Then the tokenizer and the rotary frequencies. */
#include "llama_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FN = "attn_llama_load";

/* The tensors of one layer, named blk.N.<suffix>. */
enum { L_ATTN_NORM, L_Q, L_K, L_V, L_O, L_FFN_NORM, L_GATE, L_UP, L_DOWN, L_COUNT };
static const char *const LAYER_SUFFIX[L_COUNT] = {
    "attn_norm.weight", "attn_q.weight",   "attn_k.weight", "attn_v.weight", "attn_output.weight",
    "ffn_norm.weight",  "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};

/* Rows (outputs) and columns (inputs, the file's dims[0]) of layer tensor
 * `which`; rows 0 for a norm (a vector of cols). */
static void layer_shape(const attn_llama_config *c, int which, int64_t *rows, int64_t *cols)
{
    int64_t d = c->d_model, hd = c->n_heads * c->d_head, kvd = c->n_kv_heads * c->d_head;
    *rows = 0;
    *cols = d;
    switch (which) {
    case L_Q: *rows = hd; break;
    case L_K:
    case L_V: *rows = kvd; break;
    case L_O: *rows = d, *cols = hd; break;
    case L_GATE:
    case L_UP: *rows = c->d_ff; break;
    case L_DOWN: *rows = d, *cols = c->d_ff; break;
    default: break; /* the norms */
    }
}

static attn_status bad_shape(const char *name, const attn_gguf_tensor_info *t, int64_t cols, int64_t rows)
{
    char got[96];
    int at = 0;
    for (int i = 0; i < t->n_dims && at < (int)sizeof got - 24; i++)
        at += snprintf(got + at, sizeof got - (size_t)at, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    if (rows > 0)
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' has dims [%s]; the config needs [%lld, %lld]",
                         FN, name, got, (long long)cols, (long long)rows);
    return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' has dims [%s]; the config needs [%lld]", FN, name,
                     got, (long long)cols);
}

/* *out = the matrix `name` [rows, cols] (dims [cols, rows]), Q4_1 or Q8_0. */
static attn_status map_matrix(const attn_gguf *g, const char *name, int64_t rows, int64_t cols,
                              attn_quant_matrix *out)
{
    attn_gguf_tensor_info t;
    attn_status st = attn_gguf_tensor_find(g, name, &t);
    if (st != ATTN_OK) return st;
    if (t.n_dims != 2 || t.dims[0] != cols || t.dims[1] != rows) return bad_shape(name, &t, cols, rows);
    attn_quant q;
    if (t.type == ATTN_GGUF_TENSOR_TYPE_Q4_1) q = ATTN_QUANT_Q4_1;
    else if (t.type == ATTN_GGUF_TENSOR_TYPE_Q8_0) q = ATTN_QUANT_Q8_0;
    else {
        const char *tn = attn_gguf_tensor_type_name(t.type);
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' is of type %s; attn multiplies Q4_1 and Q8_0 matrices",
                         FN, name, tn ? tn : "?");
    }
    *out = (attn_quant_matrix){t.data, q, rows};
    return ATTN_OK;
}

/* dst [d] = the float32 vector `name` [d]. */
static attn_status copy_norm(const attn_gguf *g, const char *name, int64_t d, float *dst)
{
    attn_gguf_tensor_info t;
    attn_status st = attn_gguf_tensor_find(g, name, &t);
    if (st != ATTN_OK) return st;
    if (t.n_dims != 1 || t.dims[0] != d) return bad_shape(name, &t, d, 0);
    if (t.type != ATTN_GGUF_TENSOR_TYPE_F32) {
        const char *tn = attn_gguf_tensor_type_name(t.type);
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' is of type %s; norms must be F32", FN, name,
                         tn ? tn : "?");
    }
    memcpy(dst, t.data, (size_t)d * sizeof(float));
    return ATTN_OK;
}

/* True if name is one of the architecture's tensors. */
static bool expected_name(const char *name, int64_t n_layers)
{
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "output_norm.weight") == 0 ||
        strcmp(name, "output.weight") == 0)
        return true;
    if (strncmp(name, "blk.", 4) != 0 || name[4] < '0' || name[4] > '9') return false;
    char *end;
    long long l = strtoll(name + 4, &end, 10);
    char canon[32];
    snprintf(canon, sizeof canon, "blk.%lld.", l);
    if (l >= n_layers || *end != '.' || strncmp(name, canon, strlen(canon)) != 0) return false;
    for (int x = 0; x < L_COUNT; x++)
        if (strcmp(end + 1, LAYER_SUFFIX[x]) == 0) return true;
    return false;
}

static attn_status check_no_extra(const attn_gguf *g, int64_t n_layers)
{
    for (int64_t i = 0; i < attn_gguf_tensor_count(g); i++) {
        attn_gguf_tensor_info t;
        attn_status st = attn_gguf_tensor_get(g, i, &t);
        if (st != ATTN_OK) return st;
        if (!expected_name(t.name, n_layers))
            return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.200s' is not part of the llama architecture "
                             "that attn runs", FN, t.name);
    }
    return ATTN_OK;
}

static attn_status map_layer(attn_llama *m, int64_t l, float *norms)
{
    llama_layer *L = &m->layers[l];
    attn_quant_matrix *mats[L_COUNT] = {NULL, &L->q, &L->k, &L->v, &L->o, NULL, &L->gate, &L->up, &L->down};
    for (int x = 0; x < L_COUNT; x++) {
        char name[64];
        int64_t rows, cols;
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, LAYER_SUFFIX[x]);
        layer_shape(&m->cfg, x, &rows, &cols);
        attn_status st = mats[x] ? map_matrix(m->file, name, rows, cols, mats[x])
                                 : copy_norm(m->file, name, cols, norms + (x == L_FFN_NORM) * cols);
        if (st != ATTN_OK) return st;
    }
    L->attn_norm = norms;
    L->ffn_norm = norms + m->cfg.d_model;
    return ATTN_OK;
}

static bool has_tensor(const attn_gguf *g, const char *name)
{
    attn_gguf_tensor_info t;
    for (int64_t i = 0; i < attn_gguf_tensor_count(g); i++)
        if (attn_gguf_tensor_get(g, i, &t) == ATTN_OK && strcmp(t.name, name) == 0) return true;
    return false;
}

/* The embedding fixes n_vocab; llama.vocab_size, if given, must agree. */
static attn_status map_embedding(attn_llama *m)
{
    attn_gguf_tensor_info t;
    attn_status st = attn_gguf_tensor_find(m->file, "token_embd.weight", &t);
    if (st != ATTN_OK) return st;
    int64_t rows = t.n_dims == 2 ? t.dims[1] : 0;
    if (rows < 1 || rows > INT32_MAX) return bad_shape("token_embd.weight", &t, m->cfg.d_model, 1);
    m->cfg.n_vocab = rows;
    if (attn_gguf_kv_index(m->file, "llama.vocab_size") >= 0) {
        uint64_t v;
        if ((st = attn_gguf_get_uint(m->file, "llama.vocab_size", &v)) != ATTN_OK) return st;
        if (v != (uint64_t)rows)
            return attn_fail(ATTN_BAD_FILE, "%s: 'llama.vocab_size' is %llu but 'token_embd.weight' has %lld rows",
                             FN, (unsigned long long)v, (long long)rows);
    }
    if ((st = map_matrix(m->file, "token_embd.weight", rows, m->cfg.d_model, &m->embd)) != ATTN_OK) return st;
    m->cfg.tied = !has_tensor(m->file, "output.weight");
    m->head = m->embd;
    return m->cfg.tied ? ATTN_OK : map_matrix(m->file, "output.weight", rows, m->cfg.d_model, &m->head);
}

attn_status attn__llama_map_weights(attn_llama *m)
{
    const attn_llama_config *c = &m->cfg;
    int64_t n_norms = (2 * c->n_layers + 1) * c->d_model;
    m->layers = attn_calloc((size_t)c->n_layers, sizeof *m->layers);
    m->norms = attn_alloc((size_t)n_norms * sizeof(float));
    m->inv_freq = attn_alloc((size_t)(c->d_head / 2) * sizeof(float));
    if (m->layers == NULL || m->norms == NULL || m->inv_freq == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: out of memory for the model", FN);
    attn_status st = map_embedding(m);
    for (int64_t l = 0; l < c->n_layers && st == ATTN_OK; l++)
        st = map_layer(m, l, m->norms + 2 * l * c->d_model);
    if (st == ATTN_OK) st = copy_norm(m->file, "output_norm.weight", c->d_model, m->norms + 2 * c->n_layers * c->d_model);
    if (st == ATTN_OK) st = check_no_extra(m->file, c->n_layers);
    if (st != ATTN_OK) return st;
    m->out_norm = m->norms + 2 * c->n_layers * c->d_model;
    /* theta^(-2i/D) as transformers computes it: the exponent and the power
     * in float32, then 1 / power in float32. */
    for (int64_t i = 0; i < c->d_head / 2; i++) {
        float e = (float)(2 * i) / (float)c->d_head;
        m->inv_freq[i] = 1.0f / powf((float)c->rope_theta, e);
    }
    return ATTN_OK;
}

static attn_status load_tokenizer(attn_llama *m)
{
    attn_status st = attn_bpe_load_gguf(m->file, &m->tok);
    if (st != ATTN_OK) return st;
    if (attn_bpe_vocab_size(m->tok) != m->cfg.n_vocab)
        return attn_fail(ATTN_BAD_FILE, "%s: the tokenizer has %lld tokens but 'token_embd.weight' has %lld rows",
                         FN, (long long)attn_bpe_vocab_size(m->tok), (long long)m->cfg.n_vocab);
    m->eos_id = attn_bpe_special_id(m->tok, ATTN_BPE_SPECIAL_EOS);
    m->im_end_id = attn_bpe_token_id(m->tok, "<|im_end|>");
    return ATTN_OK;
}

attn_status attn_llama_load(const char *path, attn_llama **out)
{
    ATTN__NOT_NULL(FN, path);
    ATTN__NOT_NULL(FN, out);
    attn_llama *m = attn_calloc(1, sizeof *m);
    if (m == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", FN);
    attn_status st = attn_gguf_load(path, &m->file);
    if (st == ATTN_OK) st = attn__llama_read_config(m);
    if (st == ATTN_OK) st = attn__llama_map_weights(m);
    if (st == ATTN_OK) st = load_tokenizer(m);
    if (st != ATTN_OK) {
        attn_llama_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}

void attn_llama_free(attn_llama *m)
{
    if (m == NULL) return;
    attn_bpe_free(m->tok);
    attn_gguf_free(m->file);
    attn_release(m->layers);
    attn_release(m->norms);
    attn_release(m->inv_freq);
    attn_release(m->system);
    attn_release(m);
}

const attn_llama_config *attn_llama_get_config(const attn_llama *m) { return m ? &m->cfg : NULL; }
const attn_bpe *attn_llama_tokenizer(const attn_llama *m) { return m ? m->tok : NULL; }
int32_t attn_llama_eos_id(const attn_llama *m) { return m ? m->eos_id : -1; }
int32_t attn_llama_im_end_id(const attn_llama *m) { return m ? m->im_end_id : -1; }
const char *attn_llama_default_system(const attn_llama *m) { return m ? m->system : NULL; }
