/* weights.c - the GRU encoder-decoder's parameters: the 22 tensors with
 * their torch-style names and shapes, one allocation for all parameters
 * (and one each for gradients and the AdamW moments), torch's
 * initialisation from a Philox stream, tensor access and the optimiser
 * update. */
#include "seq2seq_internal.h"

#include <math.h>
#include <string.h>

enum { INIT_ZERO = 0, INIT_UNIFORM = 1, INIT_NORMAL = 2 };

typedef struct {
    const char *name;
    int64_t d0, d1; /* d1 = 0: a vector */
    int decay, init;
    double scale; /* uniform bound or normal std */
    float **v, **g;
} spec;

static void gru_specs(attn_nn_gru_cell *c, const char *const names[4], int64_t in, int64_t hid,
                      spec *s)
{
    double u = 1.0 / sqrt((double)hid);
    s[0] = (spec){names[0], 3 * hid, in, 1, INIT_UNIFORM, u, &c->weight_ih, &c->d_weight_ih};
    s[1] = (spec){names[1], 3 * hid, hid, 1, INIT_UNIFORM, u, &c->weight_hh, &c->d_weight_hh};
    s[2] = (spec){names[2], 3 * hid, 0, 0, INIT_UNIFORM, u, &c->bias_ih, &c->d_bias_ih};
    s[3] = (spec){names[3], 3 * hid, 0, 0, INIT_UNIFORM, u, &c->bias_hh, &c->d_bias_hh};
}

/* The ATTN__S2S_N_TENSORS tensors of m's config, in file order, with their views. */
static void specs(attn_seq2seq *m, spec *s)
{
    static const char *const gru_names[3][4] = {
        {"encoder.gru.weight_ih_l0", "encoder.gru.weight_hh_l0", "encoder.gru.bias_ih_l0",
         "encoder.gru.bias_hh_l0"},
        {"encoder.gru.weight_ih_l0_reverse", "encoder.gru.weight_hh_l0_reverse",
         "encoder.gru.bias_ih_l0_reverse", "encoder.gru.bias_hh_l0_reverse"},
        {"decoder.gru.weight_ih", "decoder.gru.weight_hh", "decoder.gru.bias_ih", "decoder.gru.bias_hh"}};
    const attn_seq2seq_config *c = &m->c;
    int64_t E = c->embed, H = c->hidden, Hd = c->dec_hidden, A = c->attn_dim, V = c->vocab;
    int64_t Ii = c->init == ATTN_SEQ2SEQ_INIT_MEAN ? 2 * H : H, F = Hd + 2 * H + E;
    s[0] = (spec){"encoder.embedding.weight", V, E, 1, INIT_NORMAL, 1.0, &m->src_emb, &m->d_src_emb};
    gru_specs(&m->enc.dir[0], gru_names[0], E, H, s + 1);
    gru_specs(&m->enc.dir[1], gru_names[1], E, H, s + 5);
    s[9] = (spec){"decoder.embedding.weight", V, E, 1, INIT_NORMAL, 1.0, &m->tgt_emb, &m->d_tgt_emb};
    double ui = 1.0 / sqrt((double)Ii);
    s[10] = (spec){"decoder.init.weight", Hd, Ii, 1, INIT_UNIFORM, ui, &m->init_w, &m->d_init_w};
    s[11] = (spec){"decoder.init.bias", Hd, 0, 0, INIT_UNIFORM, ui, &m->init_b, &m->d_init_b};
    s[12] = (spec){"decoder.attention.w_q", A, Hd, 1, INIT_UNIFORM, 1.0 / sqrt((double)Hd), &m->wq, &m->d_wq};
    s[13] = (spec){"decoder.attention.w_k", A, 2 * H, 1, INIT_UNIFORM, 1.0 / sqrt(2.0 * (double)H),
                   &m->wk, &m->d_wk};
    s[14] = (spec){"decoder.attention.b", A, 0, 0, INIT_ZERO, 0, &m->ab, &m->d_ab};
    s[15] = (spec){"decoder.attention.v_a", A, 0, 0, INIT_UNIFORM, 1.0 / sqrt((double)A), &m->va, &m->d_va};
    gru_specs(&m->dec, gru_names[2], E + 2 * H, Hd, s + 16);
    double uo = 1.0 / sqrt((double)F);
    s[20] = (spec){"decoder.out.weight", V, F, 1, INIT_UNIFORM, uo, &m->out_w, &m->d_out_w};
    s[21] = (spec){"decoder.out.bias", V, 0, 0, INIT_UNIFORM, uo, &m->out_b, &m->d_out_b};
}

static int64_t spec_numel(const spec *s) { return s->d1 ? s->d0 * s->d1 : s->d0; }

/* Parameters of a (valid) config: every dim <= 2^24, so no product overflows. */
int64_t attn__s2s_count_params(const attn_seq2seq_config *c)
{
    attn_seq2seq tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.c = *c;
    spec s[ATTN__S2S_N_TENSORS];
    specs(&tmp, s);
    int64_t n = 0;
    for (int i = 0; i < ATTN__S2S_N_TENSORS; i++) n += spec_numel(&s[i]);
    return n;
}

/* Uniform (0, 1) number k of the stream of seed (Philox4x32-10), two of them
 * from one counter for Box-Muller. */
static void uniform2(uint64_t seed, uint64_t k, double u[2])
{
    uint32_t ctr[4] = {(uint32_t)k, (uint32_t)(k >> 32), 0x5eed, 0}, key[2] = {(uint32_t)seed,
                                                                           (uint32_t)(seed >> 32)};
    uint32_t r[4];
    attn_philox4x32_10(ctr, key, r);
    for (int i = 0; i < 2; i++)
        u[i] = ((double)(r[2 * i] >> 5) * 67108864.0 + (double)(r[2 * i + 1] >> 6) + 0.5) /
               9007199254740992.0;
}

static void initialise(attn_seq2seq *m, const spec *s, uint64_t seed)
{
    uint64_t k = 0;
    for (int t = 0; t < ATTN__S2S_N_TENSORS; t++)
        for (int64_t i = 0; i < m->tensors[t].numel; i++, k++) {
            double u[2], v = 0;
            uniform2(seed, k, u);
            if (s[t].init == INIT_UNIFORM) v = (2 * u[0] - 1) * s[t].scale;
            if (s[t].init == INIT_NORMAL)
                v = sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]) * s[t].scale;
            m->tensors[t].value[i] = (float)v;
        }
}

void attn_seq2seq_free(attn_seq2seq *m)
{
    if (!m) return;
    attn_release(m->params);
    attn_release(m->grads);
    attn_release(m->gtmp);
    attn_release(m->adam_m);
    attn_release(m->adam_v);
    attn_release(m);
}

static void set_views(attn_seq2seq *m, const spec *s)
{
    int64_t off = 0;
    for (int t = 0; t < ATTN__S2S_N_TENSORS; t++) {
        attn_nn_param *p = &m->tensors[t];
        p->name = s[t].name;
        p->ndim = s[t].d1 ? 2 : 1;
        p->shape[0] = s[t].d0;
        p->shape[1] = s[t].d1;
        p->numel = spec_numel(&s[t]);
        p->value = m->params + off;
        p->grad = m->grads + off;
        p->decay = s[t].decay;
        *s[t].v = m->params + off;
        *s[t].g = m->gtmp + off;
        off += p->numel;
    }
}

attn_status attn_seq2seq_create(const attn_seq2seq_config *c, uint64_t seed, attn_seq2seq **out)
{
    ATTN__NOT_NULL(__func__, out);
    attn_status st = attn__s2s_config_check(c);
    if (st != ATTN_OK) return st;
    attn_seq2seq *m = attn_calloc(1, sizeof *m);
    if (!m) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    m->c = *c;
    m->n_params = attn__s2s_count_params(c);
    size_t n = (size_t)m->n_params;
    m->params = attn_calloc(n, sizeof(float));
    m->grads = attn_calloc(n, sizeof(float));
    m->gtmp = attn_calloc(n, sizeof(float));
    m->adam_m = attn_calloc(n, sizeof(float));
    m->adam_v = attn_calloc(n, sizeof(float));
    if (!m->params || !m->grads || !m->gtmp || !m->adam_m || !m->adam_v) {
        attn_seq2seq_free(m);
        return attn_fail(ATTN_NO_MEMORY, "%s: out of memory for %lld parameters", __func__,
                         (long long)n);
    }
    spec s[ATTN__S2S_N_TENSORS];
    specs(m, s);
    set_views(m, s);
    m->enc.bidirectional = 1;
    for (int d = 0; d < 2; d++) {
        m->enc.dir[d].input_size = c->embed;
        m->enc.dir[d].hidden_size = c->hidden;
    }
    m->dec.input_size = c->embed + 2 * c->hidden;
    m->dec.hidden_size = c->dec_hidden;
    initialise(m, s, seed);
    *out = m;
    return ATTN_OK;
}

const attn_seq2seq_config *attn_seq2seq_get_config(const attn_seq2seq *m) { return m ? &m->c : NULL; }
int64_t attn_seq2seq_param_count(const attn_seq2seq *m) { return m ? m->n_params : 0; }
int64_t attn_seq2seq_n_tensors(const attn_seq2seq *m) { return m ? ATTN__S2S_N_TENSORS : 0; }
int64_t attn_seq2seq_steps_taken(const attn_seq2seq *m) { return m ? m->steps : 0; }

attn_status attn_seq2seq_tensor(const attn_seq2seq *m, int64_t i, attn_nn_param *out)
{
    ATTN__NOT_NULL(__func__, m);
    ATTN__NOT_NULL(__func__, out);
    if (i < 0 || i >= ATTN__S2S_N_TENSORS)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'i' = %lld is outside [0, %d)", __func__,
                         (long long)i, ATTN__S2S_N_TENSORS);
    *out = m->tensors[i];
    return ATTN_OK;
}

void attn_seq2seq_zero_grad(attn_seq2seq *m)
{
    if (m) memset(m->grads, 0, attn__s2s_fbytes(m->n_params));
}

attn_status attn_seq2seq_update(attn_seq2seq *m, const attn_nn_adamw *opt, double lr,
                                double clip, double *grad_norm)
{
    ATTN__NOT_NULL(__func__, m);
    ATTN__NOT_NULL(__func__, opt);
    attn__nn_paramset ps = attn__s2s_params(m);
    return attn__nn_update(__func__, &ps, opt, lr, clip, &m->steps, grad_norm);
}

attn__nn_paramset attn__s2s_params(const attn_seq2seq *m)
{
    return (attn__nn_paramset){m->tensors, ATTN__S2S_N_TENSORS, m->params, m->grads, m->n_params,
                               m->adam_m, m->adam_v};
}
