/* weights.c - the transformer's parameters: the tensor registry (torch-style
 * names), one allocation for all parameters (and one each for gradients
 * and the AdamW moments), initialisation, tensor access and the optimiser
 * update. The configuration is in config.c, the training step in step.c,
 * decoding in generate.c, checkpoints in checkpoint.c.
 *
 * Names follow torch.nn.Transformer (encoder.layers.0.self_attn.in_proj_weight,
 * decoder.layers.0.multihead_attn..., linear1, linear2, norm1..3,
 * encoder.norm, decoder.norm) so a torch model loads by name; the
 * decoder-only model uses layers.N.* with separate (grouped-query)
 * projections, norm and lm_head. */
#include "transformer_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- tensor registry ---------------------------------------------------------- */

enum { INIT_ZERO, INIT_ONE, INIT_UNIFORM, INIT_NORMAL };

/* Where each tensor's value and gradient pointers go once allocated. */
typedef struct {
    float **value, **grad;
    int init;
    double scale; /* uniform bound or normal std */
} fixup;

typedef struct {
    attn_transformer *m;
    fixup *fix;
    int64_t cap_fix;
    attn_status st;
} registry;

static void add(registry *r, const char *name, int ndim, int64_t d0, int64_t d1, int decay,
                float **value, float **grad, int init, double scale)
{
    attn_transformer *m = r->m;
    if (r->st != ATTN_OK) return;
    if (m->n_tensors == m->cap_tensors) {
        int64_t cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        attn_nn_param *t = attn_calloc((size_t)cap, sizeof *t);
        fixup *f = attn_calloc((size_t)cap, sizeof *f);
        if (!t || !f) {
            attn_release(t);
            attn_release(f);
            r->st = attn_fail(ATTN_NO_MEMORY, "attn_transformer_create: out of memory");
            return;
        }
        if (m->n_tensors) {
            memcpy(t, m->tensors, (size_t)m->n_tensors * sizeof *t);
            memcpy(f, r->fix, (size_t)m->n_tensors * sizeof *f);
        }
        attn_release(m->tensors);
        attn_release(r->fix);
        m->tensors = t;
        r->fix = f;
        m->cap_tensors = cap;
    }
    size_t len = strlen(name) + 1;
    if (m->names_len + len > m->names_cap) {
        size_t cap = m->names_cap ? 2 * m->names_cap + len : 4096 + len;
        char *n = attn_alloc(cap);
        if (!n) {
            r->st = attn_fail(ATTN_NO_MEMORY, "attn_transformer_create: out of memory");
            return;
        }
        if (m->names_len) memcpy(n, m->names, m->names_len);
        attn_release(m->names);
        m->names = n;
        m->names_cap = cap;
    }
    memcpy(m->names + m->names_len, name, len);
    attn_nn_param *t = &m->tensors[m->n_tensors];
    t->name = (const char *)(uintptr_t)m->names_len; /* an offset until finalised */
    m->names_len += len;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->numel = ndim > 1 ? d0 * d1 : d0;
    t->decay = decay;
    t->value = (float *)(uintptr_t)m->n_params; /* an offset until finalised */
    r->fix[m->n_tensors] = (fixup){value, grad, init, scale};
    m->n_params += t->numel;
    m->n_tensors++;
}

static void add_linear(registry *r, const char *prefix, int64_t out, int64_t in, float **w,
                       float **dw, float **b, float **db)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(r, name, 2, out, in, 1, w, dw, INIT_UNIFORM, 1.0 / sqrt((double)in));
    if (b) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        add(r, name, 1, out, 0, 0, b, db, INIT_ZERO, 0);
    }
}

static void add_norm(registry *r, const char *prefix, attn__nn_norm *n)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(r, name, 1, r->m->c.d_model, 0, 0, &n->w, &n->dw, INIT_ONE, 0);
    if (r->m->c.norm == ATTN_NN_NORM_LAYERNORM) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        add(r, name, 1, r->m->c.d_model, 0, 0, &n->b, &n->db, INIT_ZERO, 0);
    }
}

static void add_attention(registry *r, const char *prefix, attn_nn_mha *a, int packed)
{
    const attn_transformer_config *c = &r->m->c;
    char name[192];
    int64_t d = c->d_model, hd = d / c->n_heads, hq = c->n_heads * hd, hk = c->n_kv_heads * hd;
    a->embed_dim = a->kdim = a->vdim = d;
    a->n_heads = c->n_heads;
    a->n_kv_heads = c->n_kv_heads;
    a->head_dim = hd;
    a->packed = packed;
    /* xavier_uniform, as torch initialises in_proj_weight */
    if (packed) {
        snprintf(name, sizeof name, "%s.in_proj_weight", prefix);
        add(r, name, 2, 3 * d, d, 1, &a->in_proj_weight, &a->d_in_proj_weight, INIT_UNIFORM,
            sqrt(6.0 / (double)(4 * d)));
    } else {
        const char *which[3] = {"q", "k", "v"};
        float **w[3] = {&a->q_proj_weight, &a->k_proj_weight, &a->v_proj_weight};
        float **dw[3] = {&a->d_q_proj_weight, &a->d_k_proj_weight, &a->d_v_proj_weight};
        for (int i = 0; i < 3; i++) {
            int64_t rows = i == 0 ? hq : hk;
            snprintf(name, sizeof name, "%s.%s_proj_weight", prefix, which[i]);
            add(r, name, 2, rows, d, 1, w[i], dw[i], INIT_UNIFORM,
                sqrt(6.0 / (double)(rows + d)));
        }
    }
    snprintf(name, sizeof name, "%s.in_proj_bias", prefix);
    add(r, name, 1, hq + 2 * hk, 0, 0, &a->in_proj_bias, &a->d_in_proj_bias, INIT_ZERO, 0);
    snprintf(name, sizeof name, "%s.out_proj", prefix);
    add_linear(r, name, d, hq, &a->out_proj_weight, &a->d_out_proj_weight, &a->out_proj_bias,
               &a->d_out_proj_bias);
}

static void add_block(registry *r, const char *prefix, attn__nn_block *b, bool cross)
{
    const attn_transformer_config *c = &r->m->c;
    char name[128];
    int packed = c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC; /* torch's layout; the LM's are separate */
    snprintf(name, sizeof name, "%s.self_attn", prefix);
    add_attention(r, name, &b->self, packed);
    b->has_cross = cross;
    if (cross) {
        snprintf(name, sizeof name, "%s.multihead_attn", prefix);
        add_attention(r, name, &b->cross, packed);
    }
    snprintf(name, sizeof name, "%s.linear1", prefix);
    add_linear(r, name, c->d_ff, c->d_model, &b->w1, &b->dw1, &b->b1, &b->db1);
    snprintf(name, sizeof name, "%s.linear2", prefix);
    add_linear(r, name, c->d_model, c->d_ff, &b->w2, &b->dw2, &b->b2, &b->db2);
    for (int i = 0; i < (cross ? 3 : 2); i++) {
        snprintf(name, sizeof name, "%s.norm%d", prefix, i + 1);
        add_norm(r, name, &b->norm[i]);
    }
}

static void register_all(registry *r)
{
    attn_transformer *m = r->m;
    const attn_transformer_config *c = &m->c;
    char name[64];
    add(r, "embed.weight", 2, c->vocab, c->d_model, 1, &m->embed, &m->d_embed, INIT_NORMAL,
        1.0 / sqrt((double)c->d_model));
    if (c->pos == ATTN_NN_POS_LEARNED) {
        if (c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC)
            add(r, "enc_pos.weight", 2, c->max_len, c->d_model, 0, &m->enc_pos, &m->d_enc_pos,
                INIT_NORMAL, 0.02);
        add(r, "dec_pos.weight", 2, c->max_len, c->d_model, 0, &m->dec_pos, &m->d_dec_pos,
            INIT_NORMAL, 0.02);
    }
    const char *dec_prefix = c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? "decoder.layers" : "layers";
    for (int64_t l = 0; l < c->n_enc_layers; l++) {
        snprintf(name, sizeof name, "encoder.layers.%lld", (long long)l);
        add_block(r, name, &m->enc[l], false);
    }
    for (int64_t l = 0; l < c->n_dec_layers; l++) {
        snprintf(name, sizeof name, "%s.%lld", dec_prefix, (long long)l);
        add_block(r, name, &m->dec[l], c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC);
    }
    if (c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC) {
        add_norm(r, "encoder.norm", &m->enc_norm);
        add_norm(r, "decoder.norm", &m->dec_norm);
    } else {
        add_norm(r, "norm", &m->dec_norm);
    }
    if (!c->tie_embeddings)
        add(r, "lm_head.weight", 2, c->vocab, c->d_model, 1, &m->lm_head, &m->d_lm_head,
            INIT_UNIFORM, 1.0 / sqrt((double)c->d_model));
}

/* splitmix64: the initialisation stream. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0; }

static void initialise(attn_transformer *m, const fixup *fix, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t t = 0; t < m->n_tensors; t++) {
        float *p = m->tensors[t].value;
        for (int64_t i = 0; i < m->tensors[t].numel; i++) {
            double v = 0;
            switch (fix[t].init) {
            case INIT_ONE: v = 1; break;
            case INIT_UNIFORM: v = (2 * uniform01(&s) - 1) * fix[t].scale; break;
            case INIT_NORMAL: {
                double u1 = uniform01(&s), u2 = uniform01(&s);
                v = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2) * fix[t].scale;
                break;
            }
            default: break;
            }
            p[i] = (float)v;
        }
    }
}

void attn_transformer_free(attn_transformer *m)
{
    if (m == NULL) return;
    attn_release(m->params);
    attn_release(m->grads);
    attn_release(m->adam_m);
    attn_release(m->adam_v);
    attn_release(m->tensors);
    attn_release(m->names);
    attn_release(m->enc);
    attn_release(m->dec);
    attn_release(m->sinusoid);
    attn_release(m);
}

static attn_status finalise(attn_transformer *m, registry *r, uint64_t seed)
{
    size_t n = (size_t)m->n_params;
    if (m->n_params > (int64_t)(SIZE_MAX / 4 / sizeof(float)))
        return attn_fail(ATTN_OVERFLOW, "attn_transformer_create: too many parameters");
    m->params = attn_calloc(n, sizeof(float));
    m->grads = attn_calloc(n, sizeof(float));
    m->adam_m = attn_calloc(n, sizeof(float));
    m->adam_v = attn_calloc(n, sizeof(float));
    m->sinusoid = attn_calloc((size_t)(m->c.max_len * m->c.d_model), sizeof(float));
    if (!m->params || !m->grads || !m->adam_m || !m->adam_v || !m->sinusoid)
        return attn_fail(ATTN_NO_MEMORY, "attn_transformer_create: out of memory for %lld "
                         "parameters", (long long)m->n_params);
    for (int64_t t = 0; t < m->n_tensors; t++) {
        attn_nn_param *p = &m->tensors[t];
        size_t off = (size_t)(uintptr_t)p->value;
        p->name = m->names + (size_t)(uintptr_t)p->name;
        p->value = m->params + off;
        p->grad = m->grads + off;
        *r->fix[t].value = p->value;
        *r->fix[t].grad = p->grad;
    }
    if (m->c.tie_embeddings) {
        m->lm_head = m->embed;
        m->d_lm_head = m->d_embed;
    }
    initialise(m, r->fix, seed);
    return attn_nn_sinusoidal(m->c.max_len, m->c.d_model, m->sinusoid);
}

attn_status attn_transformer_create(const attn_transformer_config *c, uint64_t seed, attn_transformer **out)
{
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "attn_transformer_create: 'out' is NULL");
    attn_status st = attn__transformer_config_check(c);
    if (st != ATTN_OK) return st;
    attn_transformer *m = attn_calloc(1, sizeof *m);
    if (!m) return attn_fail(ATTN_NO_MEMORY, "attn_transformer_create: out of memory");
    m->c = *c;
    if (c->n_enc_layers) m->enc = attn_calloc((size_t)c->n_enc_layers, sizeof *m->enc);
    m->dec = attn_calloc((size_t)c->n_dec_layers, sizeof *m->dec);
    registry r = {m, NULL, 0, ATTN_OK};
    if (!m->dec || (c->n_enc_layers && !m->enc))
        r.st = attn_fail(ATTN_NO_MEMORY, "attn_transformer_create: out of memory");
    else
        register_all(&r);
    st = r.st == ATTN_OK ? finalise(m, &r, seed) : r.st;
    attn_release(r.fix);
    if (st != ATTN_OK) {
        attn_transformer_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}

const attn_transformer_config *attn_transformer_get_config(const attn_transformer *m) { return m ? &m->c : NULL; }
int64_t attn_transformer_param_count(const attn_transformer *m) { return m ? m->n_params : 0; }
int64_t attn_transformer_n_tensors(const attn_transformer *m) { return m ? m->n_tensors : 0; }
int64_t attn_transformer_steps_taken(const attn_transformer *m) { return m ? m->steps : 0; }

attn_status attn_transformer_tensor(const attn_transformer *m, int64_t i, attn_nn_param *out)
{
    if (!m || !out) return attn_fail(ATTN_NULL_ARG, "attn_transformer_tensor: 'm' or 'out' is NULL");
    if (i < 0 || i >= m->n_tensors)
        return attn_fail(ATTN_BAD_PARAM, "attn_transformer_tensor: index %lld outside [0, %lld)",
                         (long long)i, (long long)m->n_tensors);
    *out = m->tensors[i];
    return ATTN_OK;
}

void attn_transformer_zero_grad(attn_transformer *m)
{
    if (m) memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
}

attn_status attn_transformer_update(attn_transformer *m, const attn_nn_adamw *opt, double lr,
                                   double clip, double *grad_norm)
{
    if (!m || !opt) return attn_fail(ATTN_NULL_ARG, "attn_transformer_update: 'm' or 'opt' is NULL");
    attn__nn_paramset ps = attn__transformer_params(m);
    return attn__nn_update("attn_transformer_update", &ps, opt, lr, clip, &m->steps, grad_norm);
}

attn__nn_paramset attn__transformer_params(const attn_transformer *m)
{
    return (attn__nn_paramset){m->tensors, m->n_tensors, m->params, m->grads, m->n_params,
                               m->adam_m, m->adam_v};
}
