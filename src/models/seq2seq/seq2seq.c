/* seq2seq.c - the RNN encoder-decoder of Bahdanau, Cho and Bengio (2015) in
 * attn/seq2seq.h: a bidirectional GRU encoder over embedded source tokens, a GRU
 * decoder whose first state comes from the encoder, and at every decoder
 * step the additive attention of attn/score.h (ATTN_SCORE_KIND_ADDITIVE) with
 * the previous decoder state as the query and the annotations as keys and
 * values. Teacher-forced training with backward through time, greedy
 * decoding that also returns the attention weights, AdamW, and safetensors
 * checkpoints read as untrusted input. docs/rnn.md has the equations.
 *
 * A training step allocates one block for all its activations; gradients
 * of the step go to a private buffer (the cells' and views' d_* pointers)
 * and are added to the model's gradients only when the whole step has
 * succeeded, so a failing call leaves the model unchanged. */
#include "models/ckpt_io.h"
#include "formats/json.h"
#include "core/check.h"

#include <attn/seq2seq.h>
#include <attn/score.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_TAG "attn-rnn-checkpoint-1"

enum { N_TENSORS = 22, INIT_ZERO = 0, INIT_UNIFORM = 1, INIT_NORMAL = 2 };

struct attn_seq2seq {
    attn_seq2seq_config c;
    int64_t n_params, steps;
    /* [n_params] each: values, accumulated gradients, one call's gradients
     * (where the d_* views point), AdamW moments */
    float *params, *grads, *gtmp, *adam_m, *adam_v;
    attn_nn_param tensors[N_TENSORS];
    float *src_emb, *tgt_emb, *init_w, *init_b, *wq, *wk, *ab, *va, *out_w, *out_b;
    float *d_src_emb, *d_tgt_emb, *d_init_w, *d_init_b, *d_wq, *d_wk, *d_ab, *d_va,
        *d_out_w, *d_out_b;
    attn_nn_gru enc;    /* bidirectional, E -> H per direction */
    attn_nn_gru_cell dec; /* E + 2H -> Hd */
};

static size_t fbytes(int64_t count) { return (size_t)count * sizeof(float); }

/* ---- config -------------------------------------------------------------------- */

static const char *const init_names[] = {NULL, "backward", "mean"};

attn_seq2seq_config attn_seq2seq_config_default(void)
{
    attn_seq2seq_config c = {99, 64, 128, 128, 128, ATTN_SEQ2SEQ_INIT_BACKWARD};
    return c;
}

typedef struct {
    const char *name;
    int64_t v, hi;
} dim_field;

static int dim_fields(const attn_seq2seq_config *c, dim_field *f)
{
    f[0] = (dim_field){"vocab", c->vocab, 1 << 24};
    f[1] = (dim_field){"embed", c->embed, 1 << 16};
    f[2] = (dim_field){"hidden", c->hidden, 1 << 16};
    f[3] = (dim_field){"dec_hidden", c->dec_hidden, 1 << 16};
    f[4] = (dim_field){"attn_dim", c->attn_dim, 1 << 16};
    return 5;
}

static attn_status check_config(const char *fn, const attn_seq2seq_config *c, attn_status code)
{
    if (!c) return attn_fail(ATTN_NULL_ARG, "%s: argument 'c' is NULL", fn);
    dim_field f[5];
    int n = dim_fields(c, f);
    for (int i = 0; i < n; i++)
        if (f[i].v < 1 || f[i].v > f[i].hi)
            return attn_fail(code, "%s: config '%s' = %lld is outside [1, %lld]", fn, f[i].name,
                             (long long)f[i].v, (long long)f[i].hi);
    if (c->init != ATTN_SEQ2SEQ_INIT_BACKWARD && c->init != ATTN_SEQ2SEQ_INIT_MEAN)
        return attn_fail(code == ATTN_BAD_DIM ? ATTN_BAD_PARAM : code,
                         "%s: config 'init' %d is not BACKWARD (1) or MEAN (2)", fn, (int)c->init);
    return ATTN_OK;
}

attn_status attn_seq2seq_config_to_json(const attn_seq2seq_config *c, char *buf, size_t cap)
{
    attn_status st = check_config(__func__, c, ATTN_BAD_DIM);
    if (st != ATTN_OK) return st;
    ATTN__NN_NOT_NULL(__func__, buf);
    attn__json_out o = {buf, cap, 0};
    dim_field f[5];
    int n = dim_fields(c, f);
    attn__json_out_raw(&o, "{", 1);
    for (int i = 0; i < n; i++) {
        attn__json_out_string(&o, f[i].name, strlen(f[i].name));
        attn__json_out_raw(&o, ": ", 2);
        attn__json_out_int(&o, f[i].v);
        attn__json_out_raw(&o, ", ", 2);
    }
    attn__json_out_raw(&o, "\"init\": ", 8);
    attn__json_out_string(&o, init_names[c->init], strlen(init_names[c->init]));
    attn__json_out_raw(&o, "}", 1);
    if (o.len >= cap)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' %zu is too small (%zu needed)", __func__,
                         cap, o.len + 1);
    return ATTN_OK;
}

static attn_status parse_config(const attn__json_value *root, attn_seq2seq_config *c)
{
    static const char *const known[] = {"vocab", "embed", "hidden", "dec_hidden", "attn_dim", "init"};
    if (root->kind != ATTN__JSON_OBJECT) return attn_fail(ATTN_BAD_FILE, "rnn config: not an object");
    for (size_t i = 0; i < root->count; i++) {
        size_t k = 0;
        while (k < 6 && strcmp(known[k], root->items[i].key) != 0) k++;
        if (k == 6) return attn_fail(ATTN_BAD_FILE, "rnn config: unknown field '%.60s'", root->items[i].key);
    }
    int64_t *dst[5] = {&c->vocab, &c->embed, &c->hidden, &c->dec_hidden, &c->attn_dim};
    for (int i = 0; i < 6; i++) {
        const attn__json_value *v = attn__json_get(root, known[i]);
        attn__json_kind want = i < 5 ? ATTN__JSON_NUMBER : ATTN__JSON_STRING;
        if (!v) return attn_fail(ATTN_BAD_FILE, "rnn config: missing field '%s'", known[i]);
        if (v->kind != want)
            return attn_fail(ATTN_BAD_FILE, "rnn config: field '%s' is %s, not %s", known[i],
                             attn__json_kind_name(v->kind), attn__json_kind_name(want));
        if (i < 5) {
            attn_status st = attn__json_int64(v, "rnn config", dst[i]);
            if (st != ATTN_OK) return st;
        } else if (strcmp(v->str, "backward") == 0 || strcmp(v->str, "mean") == 0) {
            c->init = v->str[0] == 'b' ? ATTN_SEQ2SEQ_INIT_BACKWARD : ATTN_SEQ2SEQ_INIT_MEAN;
        } else {
            return attn_fail(ATTN_BAD_FILE, "rnn config: 'init' = \"%.40s\" is unknown", v->str);
        }
    }
    return check_config("rnn config", c, ATTN_BAD_FILE);
}

attn_status attn_seq2seq_config_from_json(const char *json, attn_seq2seq_config *c)
{
    ATTN__NN_NOT_NULL(__func__, json);
    ATTN__NN_NOT_NULL(__func__, c);
    attn__json_value *root = NULL;
    attn_status st = attn__json_parse(json, strlen(json), NULL, "rnn config", &root);
    if (st != ATTN_OK) return st;
    attn_seq2seq_config tmp;
    memset(&tmp, 0, sizeof tmp);
    st = parse_config(root, &tmp);
    attn__json_free(root);
    if (st == ATTN_OK) *c = tmp;
    return st;
}

/* ---- parameters ------------------------------------------------------------------ */

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

/* The N_TENSORS tensors of m's config, in file order, with their views. */
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
static int64_t count_params(const attn_seq2seq_config *c)
{
    attn_seq2seq tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.c = *c;
    spec s[N_TENSORS];
    specs(&tmp, s);
    int64_t n = 0;
    for (int i = 0; i < N_TENSORS; i++) n += spec_numel(&s[i]);
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
    for (int t = 0; t < N_TENSORS; t++)
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
    for (int t = 0; t < N_TENSORS; t++) {
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
    ATTN__NN_NOT_NULL(__func__, out);
    attn_status st = check_config(__func__, c, ATTN_BAD_DIM);
    if (st != ATTN_OK) return st;
    attn_seq2seq *m = attn_calloc(1, sizeof *m);
    if (!m) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    m->c = *c;
    m->n_params = count_params(c);
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
    spec s[N_TENSORS];
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
int64_t attn_seq2seq_n_tensors(const attn_seq2seq *m) { return m ? N_TENSORS : 0; }
int64_t attn_seq2seq_steps_taken(const attn_seq2seq *m) { return m ? m->steps : 0; }

attn_status attn_seq2seq_tensor(const attn_seq2seq *m, int64_t i, attn_nn_param *out)
{
    ATTN__NN_NOT_NULL(__func__, m);
    ATTN__NN_NOT_NULL(__func__, out);
    if (i < 0 || i >= N_TENSORS)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'i' = %lld is outside [0, %d)", __func__,
                         (long long)i, N_TENSORS);
    *out = m->tensors[i];
    return ATTN_OK;
}

void attn_seq2seq_zero_grad(attn_seq2seq *m)
{
    if (m) memset(m->grads, 0, fbytes(m->n_params));
}

attn_status attn_seq2seq_update(attn_seq2seq *m, const attn_nn_adamw *opt, double lr,
                                  double clip, double *grad_norm)
{
    ATTN__NN_NOT_NULL(__func__, m);
    ATTN__NN_NOT_NULL(__func__, opt);
    if (!isfinite(lr) || lr < 0 || !isfinite(clip) || clip < 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: arguments 'lr' and 'clip' must be finite and >= 0", __func__);
    float *bufs[1] = {m->grads};
    int64_t counts[1] = {m->n_params};
    double norm = 0;
    attn_status st = attn_nn_clip_grad_norm(bufs, counts, 1, clip > 0 ? clip : INFINITY, &norm);
    if (st != ATTN_OK) return st;
    if (grad_norm) *grad_norm = norm;
    attn_nn_adamw o = *opt;
    o.lr = lr;
    m->steps++;
    for (int t = 0; t < N_TENSORS && st == ATTN_OK; t++) {
        attn_nn_param *p = &m->tensors[t];
        size_t off = (size_t)(p->value - m->params);
        st = attn_nn_adamw_step(&o, m->steps, p->value, p->grad, m->adam_m + off, m->adam_v + off,
                                p->numel, p->decay);
    }
    return st;
}

/* ---- activations ------------------------------------------------------------------- */

/* A call's sizes: B rows, S source and T target steps; lens [B] or NULL. */
typedef struct {
    int64_t B, S, T, E, H2, Hd, A, V, F, X, Ii;
    const int64_t *lens;
} dims;

static dims make_dims(const attn_seq2seq *m, int64_t B, int64_t S, int64_t T, const int64_t *lens)
{
    const attn_seq2seq_config *c = &m->c;
    dims d = {B, S, T, c->embed, 2 * c->hidden, c->dec_hidden, c->attn_dim, c->vocab, 0, 0, 0, lens};
    d.F = d.Hd + d.H2 + d.E;
    d.X = d.E + d.H2;
    d.Ii = c->init == ATTN_SEQ2SEQ_INIT_MEAN ? d.H2 : c->hidden;
    return d;
}

/* Buffers of a call (one block). Forward: xe [B,S,E], ann [B,S,2H],
 * hn [2,B,H], init_x [B,Ii], emb [B,T,E], s [T+1,B,Hd], c [T,B,2H],
 * lse [T,B], x [T,B,E+2H], gates [T,B,4Hd], feat [B,T,F], logits [B,T,V],
 * wts [B,S]. Backward (training only): dlogits [B,T,V], dfeat [B,T,F],
 * ds, ds2, dq [B,Hd], dx [B,E+2H], dc [B,2H], demb [B,T,E], dk, dv,
 * dann [B,S,2H], dinit [B,Ii], dhn [2,B,H], dxe [B,S,E], dpar [A*(Hd+2H+2)]. */
typedef struct {
    float *xe, *ann, *hn, *init_x, *emb, *s, *c, *lse, *x, *gates, *feat, *logits, *wts;
    float *dlogits, *dfeat, *ds, *ds2, *dq, *dx, *dc, *demb, *dk, *dv, *dann, *dinit, *dhn,
        *dxe, *dpar;
    attn_nn_gru_saved enc;
    float *block;
    attn_nn_attn_hook hook; /* the probe of each step's attention in backward, or NULL */
    void *hook_user;
} work;

/* a * b * c, or 0 and *ok = false if that overflows. */
static int64_t mul3(bool *ok, int64_t a, int64_t b, int64_t c)
{
    int64_t r = 0;
    if (attn__nn_mul(a, b, &r) && attn__nn_mul(r, c, &r)) return r;
    *ok = false;
    return 0;
}

typedef struct {
    float **p;
    int64_t n;
} piece;

static attn_status carve(const char *fn, const piece *pc, int n, bool ok, work *w)
{
    int64_t total = 1;
    for (int i = 0; i < n && ok; i++) {
        if (pc[i].n > ATTN__NN_MAX_ELEMS - total) ok = false;
        total += pc[i].n;
    }
    if (!ok) return attn_fail(ATTN_OVERFLOW, "%s: the sizes of the batch overflow", fn);
    w->block = attn_calloc((size_t)total, sizeof(float));
    if (!w->block) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    int64_t off = 0;
    for (int i = 0; i < n; i++, off += pc[i - 1].n) *pc[i].p = w->block + off;
    return ATTN_OK;
}

static attn_status work_alloc(const char *fn, const dims *d, int grads, work *w)
{
    bool ok = true;
    int64_t B = d->B, S = d->S, T = d->T, BS = mul3(&ok, B, S, 1), BT = mul3(&ok, B, T, 1);
    ok = ok && BS <= 2147483647 && BT <= 2147483647; /* rows of BLAS calls */
    memset(w, 0, sizeof *w);
    piece f[] = {{&w->xe, mul3(&ok, BS, d->E, 1)}, {&w->ann, mul3(&ok, BS, d->H2, 1)},
                 {&w->hn, mul3(&ok, B, d->H2, 1)}, {&w->init_x, mul3(&ok, B, d->Ii, 1)},
                 {&w->emb, mul3(&ok, BT, d->E, 1)}, {&w->s, mul3(&ok, T + 1, B, d->Hd)},
                 {&w->c, mul3(&ok, BT, d->H2, 1)}, {&w->lse, BT},
                 {&w->x, mul3(&ok, BT, d->X, 1)}, {&w->gates, mul3(&ok, BT, d->Hd, 4)},
                 {&w->feat, mul3(&ok, BT, d->F, 1)}, {&w->logits, mul3(&ok, BT, d->V, 1)},
                 {&w->wts, BS}};
    piece b[] = {{&w->dlogits, mul3(&ok, BT, d->V, 1)}, {&w->dfeat, mul3(&ok, BT, d->F, 1)},
                 {&w->ds, mul3(&ok, B, d->Hd, 1)}, {&w->ds2, mul3(&ok, B, d->Hd, 1)},
                 {&w->dq, mul3(&ok, B, d->Hd, 1)}, {&w->dx, mul3(&ok, B, d->X, 1)},
                 {&w->dc, mul3(&ok, B, d->H2, 1)}, {&w->demb, mul3(&ok, BT, d->E, 1)},
                 {&w->dk, mul3(&ok, BS, d->H2, 1)}, {&w->dv, mul3(&ok, BS, d->H2, 1)},
                 {&w->dann, mul3(&ok, BS, d->H2, 1)}, {&w->dinit, mul3(&ok, B, d->Ii, 1)},
                 {&w->dhn, mul3(&ok, B, d->H2, 1)}, {&w->dxe, mul3(&ok, BS, d->E, 1)},
                 {&w->dpar, mul3(&ok, d->A, d->Hd + d->H2 + 2, 1)}};
    piece all[sizeof f / sizeof f[0] + sizeof b / sizeof b[0]];
    int n = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) all[n++] = f[i];
    for (size_t i = 0; grads && i < sizeof b / sizeof b[0]; i++) all[n++] = b[i];
    return carve(fn, all, n, ok, w);
}

static void work_free(work *w)
{
    attn_release(w->block);
    attn_nn_gru_saved_free(&w->enc);
}

/* ---- forward ------------------------------------------------------------------------ */

/* The additive scorer's parameter views, and the masks (source lengths). */
typedef struct {
    attn_tensor w[4];
    attn_score_params p;
} scorer;

static void scorer_init(const attn_seq2seq *m, const dims *d, scorer *s)
{
    s->w[0] = attn_tensor_make(m->wq, ATTN_DTYPE_F32, 1, 1, d->A, d->Hd);
    s->w[1] = attn_tensor_make(m->wk, ATTN_DTYPE_F32, 1, 1, d->A, d->H2);
    s->w[2] = attn_tensor_make(m->ab, ATTN_DTYPE_F32, 1, 1, 1, d->A);
    s->w[3] = attn_tensor_make(m->va, ATTN_DTYPE_F32, 1, 1, 1, d->A);
    s->p = attn_score_params_default(ATTN_SCORE_KIND_ADDITIVE);
    s->p.w_q = &s->w[0];
    s->p.w_k = &s->w[1];
    s->p.b = &s->w[2];
    s->p.v_a = &s->w[3];
    s->p.masks.k_lens = d->lens;
}

static int64_t len_of(const dims *d, int64_t b) { return d->lens ? d->lens[b] : d->S; }

/* init_x [B, Ii]: the backward GRU's final state, or the mean annotation. */
static void init_input(const dims *d, work *w)
{
    int64_t H = d->H2 / 2;
    for (int64_t b = 0; b < d->B; b++) {
        float *dst = w->init_x + b * d->Ii;
        if (d->Ii == H) {
            memcpy(dst, w->hn + (d->B + b) * H, fbytes(H));
            continue;
        }
        int64_t len = len_of(d, b);
        for (int64_t k = 0; k < d->H2; k++) {
            double acc = 0;
            for (int64_t j = 0; j < len; j++) acc += w->ann[(b * d->S + j) * d->H2 + k];
            dst[k] = len > 0 ? (float)(acc / (double)len) : 0.0f;
        }
    }
}

/* The encoder: xe, ann, hn and s_0 = w->s [B, Hd]; saved (w->enc) if asked. */
static attn_status encode(const attn_seq2seq *m, const int32_t *src, const dims *d, work *w,
                          int save)
{
    attn_status st = attn_nn_embedding_forward(src, d->B * d->S, m->src_emb, d->V, d->E, w->xe);
    if (st == ATTN_OK)
        st = attn_nn_gru_forward(&m->enc, w->xe, d->B, d->S, d->lens, NULL, w->ann, w->hn,
                                  save ? &w->enc : NULL);
    if (st != ATTN_OK) return st;
    init_input(d, w);
    st = attn_nn_linear_forward(w->init_x, d->B, d->Ii, m->init_w, m->init_b, d->Hd, w->s);
    for (int64_t i = 0; i < d->B * d->Hd && st == ATTN_OK; i++) w->s[i] = tanhf(w->s[i]);
    return st;
}

/* One decoder step for the B rows: c [B,2H] and lse [B] attend from s_prev
 * [B,Hd] over ann; x [B,E+2H] = [emb; c] (emb rows ld_e apart); s_new =
 * GRU(x, s_prev) with gates [B,4Hd] (or NULL); feat rows (ld_f apart) =
 * [s_new; c; emb]. */
typedef struct {
    const float *emb, *s_prev;
    int64_t ld_e, ld_f;
    float *c, *lse, *x, *s_new, *gates, *feat;
} step_io;

static attn_status dec_step(attn_ctx *ctx, const attn_seq2seq *m, const scorer *sc,
                            const dims *d, const float *ann, const step_io *io)
{
    int64_t B = d->B, E = d->E, H2 = d->H2, Hd = d->Hd;
    attn_tensor q = attn_tensor_make((void *)io->s_prev, ATTN_DTYPE_F32, B, 1, 1, Hd);
    attn_tensor k = attn_tensor_make((void *)ann, ATTN_DTYPE_F32, B, d->S, 1, H2);
    attn_tensor o = attn_tensor_make(io->c, ATTN_DTYPE_F32, B, 1, 1, H2);
    attn_tensor l = attn_tensor_make(io->lse, ATTN_DTYPE_F32, B, 1, 1, 1);
    attn_status st = attn_score_forward(ctx, &q, &k, &k, &sc->p, &o, &l);
    if (st != ATTN_OK) return st;
    for (int64_t b = 0; b < B; b++) {
        memcpy(io->x + b * d->X, io->emb + b * io->ld_e, fbytes(E));
        memcpy(io->x + b * d->X + E, io->c + b * H2, fbytes(H2));
    }
    st = attn_nn_gru_cell_forward(&m->dec, io->x, io->s_prev, B, io->s_new, io->gates);
    for (int64_t b = 0; b < B && st == ATTN_OK; b++) {
        float *f = io->feat + b * io->ld_f;
        memcpy(f, io->s_new + b * Hd, fbytes(Hd));
        memcpy(f + Hd, io->c + b * H2, fbytes(H2));
        memcpy(f + Hd + H2, io->emb + b * io->ld_e, fbytes(E));
    }
    return st;
}

/* Teacher-forced forward of a batch: every step, then logits [B*T, V]. */
static attn_status forward(attn_ctx *ctx, const attn_seq2seq *m, const attn_nn_batch *bt,
                           const scorer *sc, const dims *d, work *w)
{
    int64_t B = d->B, T = d->T;
    attn_status st = encode(m, bt->src, d, w, 1);
    if (st == ATTN_OK) st = attn_nn_embedding_forward(bt->tgt_in, B * T, m->tgt_emb, d->V, d->E, w->emb);
    for (int64_t i = 0; i < T && st == ATTN_OK; i++) {
        step_io io = {w->emb + i * d->E, w->s + i * B * d->Hd, T * d->E, T * d->F,
                      w->c + i * B * d->H2, w->lse + i * B, w->x + i * B * d->X,
                      w->s + (i + 1) * B * d->Hd, w->gates + i * B * 4 * d->Hd, w->feat + i * d->F};
        st = dec_step(ctx, m, sc, d, w->ann, &io);
    }
    if (st == ATTN_OK) st = attn_nn_linear_forward(w->feat, B * T, d->F, m->out_w, m->out_b, d->V, w->logits);
    return st;
}

/* ---- backward ------------------------------------------------------------------------- */

/* The attention of step i backward from dc [B, 2H]: ds2 += dq, dann += dk +
 * dv, and the scorer's gradients. */
static attn_status attn_backward(attn_ctx *ctx, attn_seq2seq *m, const scorer *sc,
                                 const dims *d, work *w, int64_t i)
{
    int64_t B = d->B, A = d->A, H2 = d->H2, Hd = d->Hd, nk = B * d->S * H2;
    attn_tensor q = attn_tensor_make(w->s + i * B * Hd, ATTN_DTYPE_F32, B, 1, 1, Hd);
    attn_tensor k = attn_tensor_make(w->ann, ATTN_DTYPE_F32, B, d->S, 1, H2);
    attn_tensor o = attn_tensor_make(w->c + i * B * H2, ATTN_DTYPE_F32, B, 1, 1, H2);
    attn_tensor l = attn_tensor_make(w->lse + i * B, ATTN_DTYPE_F32, B, 1, 1, 1);
    attn_tensor dout = attn_tensor_make(w->dc, ATTN_DTYPE_F32, B, 1, 1, H2);
    attn_tensor dq = attn_tensor_make(w->dq, ATTN_DTYPE_F32, B, 1, 1, Hd);
    attn_tensor dk = attn_tensor_make(w->dk, ATTN_DTYPE_F32, B, d->S, 1, H2);
    attn_tensor dv = attn_tensor_make(w->dv, ATTN_DTYPE_F32, B, d->S, 1, H2);
    int64_t np = A * (Hd + H2 + 2);
    attn_tensor g[4] = {attn_tensor_make(w->dpar, ATTN_DTYPE_F32, 1, 1, A, Hd),
                        attn_tensor_make(w->dpar + A * Hd, ATTN_DTYPE_F32, 1, 1, A, H2),
                        attn_tensor_make(w->dpar + A * (Hd + H2), ATTN_DTYPE_F32, 1, 1, 1, A),
                        attn_tensor_make(w->dpar + A * (Hd + H2 + 1), ATTN_DTYPE_F32, 1, 1, 1, A)};
    attn_score_grads grads = {&g[0], &g[1], &g[2], &g[3], NULL, NULL};
    if (w->hook) { /* the attention of step i, with the gradient at its output c */
        attn_nn_attn_probe pr = {1, 0, 1, q, k, k, l, dout, NULL, &sc->p, i};
        attn_status st = w->hook(ctx, &pr, w->hook_user);
        if (st != ATTN_OK) return st;
    }
    memset(w->dq, 0, fbytes(B * Hd));
    memset(w->dk, 0, fbytes(nk));
    memset(w->dv, 0, fbytes(nk));
    memset(w->dpar, 0, fbytes(np));
    attn_status st = attn_score_backward(ctx, &q, &k, &k, &o, &dout, &l, &sc->p, &dq, &dk, &dv, &grads);
    if (st != ATTN_OK) return st;
    for (int64_t r = 0; r < B * Hd; r++) w->ds2[r] += w->dq[r];
    for (int64_t r = 0; r < nk; r++) w->dann[r] += w->dk[r] + w->dv[r];
    float *dst[4] = {m->d_wq, m->d_wk, m->d_ab, m->d_va};
    int64_t off[5] = {0, A * Hd, A * (Hd + H2), A * (Hd + H2 + 1), np};
    for (int p = 0; p < 4; p++)
        for (int64_t r = off[p]; r < off[p + 1]; r++) dst[p][r - off[p]] += w->dpar[r];
    return ATTN_OK;
}

/* Decoder step i backward: w->ds holds d s_{i+1} (without the output
 * layer's part, added here); leaves d s_i in w->ds. */
static attn_status step_backward(attn_ctx *ctx, attn_seq2seq *m, const scorer *sc,
                                 const dims *d, work *w, int64_t i)
{
    int64_t B = d->B, T = d->T, E = d->E, H2 = d->H2, Hd = d->Hd, F = d->F;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < Hd; k++) w->ds[b * Hd + k] += w->dfeat[(b * T + i) * F + k];
    memset(w->dx, 0, fbytes(B * d->X));
    memset(w->ds2, 0, fbytes(B * Hd));
    attn_status st = attn_nn_gru_cell_backward(&m->dec, w->x + i * B * d->X, w->s + i * B * Hd, B,
                                                w->gates + i * B * 4 * Hd, w->ds, w->dx, w->ds2);
    if (st != ATTN_OK) return st;
    for (int64_t b = 0; b < B; b++) {
        const float *df = w->dfeat + (b * T + i) * F, *dx = w->dx + b * d->X;
        float *de = w->demb + (b * T + i) * E;
        for (int64_t k = 0; k < H2; k++) w->dc[b * H2 + k] = df[Hd + k] + dx[E + k];
        for (int64_t k = 0; k < E; k++) de[k] += df[Hd + H2 + k] + dx[k];
    }
    st = attn_backward(ctx, m, sc, d, w, i);
    float *t = w->ds;
    w->ds = w->ds2;
    w->ds2 = t;
    return st;
}

/* s_0 = tanh(W_init init_x + b) and the encoder, backward from w->ds. */
static attn_status encoder_backward(attn_seq2seq *m, const int32_t *src, const dims *d, work *w)
{
    int64_t B = d->B, H = d->H2 / 2;
    for (int64_t r = 0; r < B * d->Hd; r++) w->ds[r] *= 1.0f - w->s[r] * w->s[r];
    attn_status st = attn_nn_linear_backward(w->init_x, B, d->Ii, m->init_w, d->Hd, w->ds, w->dinit,
                                             m->d_init_w, m->d_init_b);
    if (st != ATTN_OK) return st;
    for (int64_t b = 0; b < B; b++) {
        const float *g = w->dinit + b * d->Ii;
        int64_t len = len_of(d, b);
        if (d->Ii == H) {
            for (int64_t k = 0; k < H; k++) w->dhn[(B + b) * H + k] += g[k];
            continue;
        }
        for (int64_t j = 0; j < len; j++)
            for (int64_t k = 0; k < d->H2; k++)
                w->dann[(b * d->S + j) * d->H2 + k] += g[k] / (float)len;
    }
    st = attn_nn_gru_backward(&m->enc, w->xe, d->lens, &w->enc, w->dann, w->dhn, w->dxe, NULL);
    if (st == ATTN_OK)
        st = attn_nn_embedding_backward(src, B * d->S, d->V, d->E, w->dxe, m->d_src_emb);
    return st;
}

static attn_status backward(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *bt,
                            const scorer *sc, const dims *d, work *w)
{
    int64_t BT = d->B * d->T;
    attn_status st = attn_nn_linear_backward(w->feat, BT, d->F, m->out_w, d->V, w->dlogits,
                                             w->dfeat, m->d_out_w, m->d_out_b);
    for (int64_t i = d->T - 1; i >= 0 && st == ATTN_OK; i--) st = step_backward(ctx, m, sc, d, w, i);
    if (st == ATTN_OK) st = attn_nn_embedding_backward(bt->tgt_in, BT, d->V, d->E, w->demb, m->d_tgt_emb);
    if (st == ATTN_OK) st = encoder_backward(m, bt->src, d, w);
    return st;
}

/* ---- the training step ------------------------------------------------------------------- */

static attn_status check_lens(const char *fn, const char *name, const int64_t *lens, int64_t B,
                              int64_t lo, int64_t S)
{
    for (int64_t b = 0; lens && b < B; b++)
        if (lens[b] < lo || lens[b] > S)
            return attn_fail(ATTN_BAD_DIM, "%s: argument '%s' has [%lld] = %lld outside [%lld, %lld]",
                             fn, name, (long long)b, (long long)lens[b], (long long)lo, (long long)S);
    return ATTN_OK;
}

static attn_status check_batch(const char *fn, const attn_nn_batch *b)
{
    ATTN__NN_NOT_NULL(fn, b);
    ATTN__NN_DIM(fn, b->B);
    ATTN__NN_DIM(fn, b->S_src);
    ATTN__NN_DIM(fn, b->S_tgt);
    ATTN__NN_NOT_NULL(fn, b->src);
    ATTN__NN_NOT_NULL(fn, b->tgt_in);
    ATTN__NN_NOT_NULL(fn, b->tgt_out);
    return check_lens(fn, "batch->src_lens", b->src_lens, b->B, 0, b->S_src);
}

/* The step (fn names the public call), with hook (or NULL) called on each
 * decoder step's attention in backward. */
static attn_status step(const char *fn, attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *batch,
                        double label_smoothing, int grads, attn_nn_attn_hook hook, void *user,
                        double *loss, float *logits)
{
    ATTN__NN_NOT_NULL(fn, ctx);
    ATTN__NN_NOT_NULL(fn, m);
    ATTN__NN_NOT_NULL(fn, loss);
    attn_status st = check_batch(fn, batch);
    if (st != ATTN_OK) return st;
    dims d = make_dims(m, batch->B, batch->S_src, batch->S_tgt, batch->src_lens);
    work w;
    if ((st = work_alloc(fn, &d, grads, &w)) != ATTN_OK) return st;
    w.hook = hook;
    w.hook_user = user;
    scorer sc;
    scorer_init(m, &d, &sc);
    if (grads) memset(m->gtmp, 0, fbytes(m->n_params));
    double l = 0;
    st = forward(ctx, m, batch, &sc, &d, &w);
    if (st == ATTN_OK)
        st = attn_nn_cross_entropy(w.logits, d.B * d.T, d.V, batch->tgt_out, batch->pad_id,
                                   label_smoothing, 1.0, &l, NULL, grads ? w.dlogits : NULL);
    if (st == ATTN_OK && grads) st = backward(ctx, m, batch, &sc, &d, &w);
    if (st == ATTN_OK) {
        for (int64_t i = 0; grads && i < m->n_params; i++) m->grads[i] += m->gtmp[i];
        if (logits) memcpy(logits, w.logits, fbytes(d.B * d.T * d.V));
        *loss = l;
    }
    work_free(&w);
    return st;
}

attn_status attn_seq2seq_step(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *batch,
                                double label_smoothing, int grads, double *loss, float *logits)
{
    return step(__func__, ctx, m, batch, label_smoothing, grads, NULL, NULL, loss, logits);
}

attn_status attn_seq2seq_step_probe(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *batch,
                                    attn_nn_attn_hook hook, void *user, double *loss)
{
    ATTN__NN_NOT_NULL(__func__, hook);
    return step(__func__, ctx, m, batch, 0.0, 1, hook, user, loss, NULL);
}

/* ---- greedy decoding -------------------------------------------------------------------- */

static attn_status check_generate(const char *fn, const attn_seq2seq *m, const int32_t *src,
                                  int64_t B, int64_t S, const int64_t *lens,
                                  const attn_nn_gen_opts *o, int64_t cap, const int64_t *n_out)
{
    ATTN__NN_NOT_NULL(fn, m);
    ATTN__NN_NOT_NULL(fn, src);
    ATTN__NN_NOT_NULL(fn, lens);
    ATTN__NN_NOT_NULL(fn, o);
    ATTN__NN_NOT_NULL(fn, n_out);
    ATTN__NN_DIM(fn, B);
    ATTN__NN_DIM_POS(fn, S);
    ATTN__NN_DIM(fn, cap);
    ATTN__NN_DIM(fn, o->max_new);
    if (o->beam != 1)
        return attn_fail(ATTN_UNSUPPORTED, "%s: argument 'opts->beam' is %lld; only greedy (1) decoding",
                         fn, (long long)o->beam);
    if (o->bos_id < 0 || o->bos_id >= m->c.vocab || o->eos_id < 0 || o->eos_id >= m->c.vocab)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'opts' has bos_id or eos_id outside [0, %lld)",
                         fn, (long long)m->c.vocab);
    return check_lens(fn, "src_lens", lens, B, 1, S);
}

static int32_t argmax(const float *z, int64_t n)
{
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (z[j] > z[best]) best = j;
    return (int32_t)best;
}

/* Decoding state: ids [B] (last tokens), n [B] (emitted), done [B]. */
typedef struct {
    int32_t *ids, *out;
    int64_t *n;
    float *wts;
    uint8_t *done;
} gen_state;

/* Takes the argmax of each unfinished row of logits [B, V]; true while any
 * row is unfinished. */
static bool gen_emit(const dims *d, const work *w, int32_t eos, int64_t cap, gen_state *g)
{
    bool more = false;
    for (int64_t b = 0; b < d->B; b++) {
        if (g->done[b]) continue;
        int32_t tok = argmax(w->logits + b * d->V, d->V);
        if (tok == eos) {
            g->done[b] = 1;
            continue;
        }
        g->out[b * cap + g->n[b]] = tok;
        if (g->wts) memcpy(g->wts + (b * cap + g->n[b]) * d->S, w->wts + b * d->S, fbytes(d->S));
        g->n[b]++;
        g->ids[b] = tok;
        more = true;
    }
    return more;
}

static attn_status gen_loop(attn_ctx *ctx, attn_seq2seq *m, const dims *d, work *w,
                            const attn_nn_gen_opts *o, int64_t cap, gen_state *g)
{
    scorer sc;
    scorer_init(m, d, &sc);
    int64_t B = d->B, steps = o->max_new < cap ? o->max_new : cap;
    attn_status st = ATTN_OK;
    bool more = true;
    for (int64_t i = 0; i < steps && more && st == ATTN_OK; i++) {
        float *s_prev = w->s + (i % 2) * B * d->Hd, *s_new = w->s + ((i + 1) % 2) * B * d->Hd;
        st = attn_nn_embedding_forward(g->ids, B, m->tgt_emb, d->V, d->E, w->emb);
        step_io io = {w->emb, s_prev, d->E, d->F, w->c, w->lse, w->x, s_new, NULL, w->feat};
        if (st == ATTN_OK) st = dec_step(ctx, m, &sc, d, w->ann, &io);
        if (st == ATTN_OK && g->wts) {
            attn_tensor q = attn_tensor_make(s_prev, ATTN_DTYPE_F32, B, 1, 1, d->Hd);
            attn_tensor k = attn_tensor_make(w->ann, ATTN_DTYPE_F32, B, d->S, 1, d->H2);
            attn_tensor l = attn_tensor_make(w->lse, ATTN_DTYPE_F32, B, 1, 1, 1);
            attn_tensor wt = attn_tensor_make(w->wts, ATTN_DTYPE_F32, B, 1, 1, d->S);
            st = attn_score_weights(ctx, &q, &k, &l, &sc.p, 0, &wt);
        }
        if (st == ATTN_OK) st = attn_nn_linear_forward(w->feat, B, d->F, m->out_w, m->out_b, d->V, w->logits);
        if (st == ATTN_OK) more = gen_emit(d, w, o->eos_id, cap, g);
    }
    return st;
}

attn_status attn_seq2seq_generate(attn_ctx *ctx, attn_seq2seq *m, const int32_t *src, int64_t B,
                              int64_t S, const int64_t *src_lens, const attn_nn_gen_opts *opts,
                              int32_t *out, int64_t cap, int64_t *n_out, float *attn_w)
{
    ATTN__NN_NOT_NULL(__func__, ctx);
    attn_status st = check_generate(__func__, m, src, B, S, src_lens, opts, cap, n_out);
    if (st != ATTN_OK) return st;
    int64_t nout, nw;
    ATTN__NN_MUL(__func__, B, cap, &nout);
    ATTN__NN_MUL(__func__, nout, S, &nw);
    if (nout > 0) ATTN__NN_NOT_NULL(__func__, out);
    dims d = make_dims(m, B, S, 1, src_lens); /* T = 1: one step's buffers (s holds 2) */
    work w;
    if ((st = work_alloc(__func__, &d, 0, &w)) != ATTN_OK) return st;
    gen_state g = {attn_calloc((size_t)B + 1, sizeof(int32_t)),
                   attn_calloc((size_t)nout + 1, sizeof(int32_t)),
                   attn_calloc((size_t)B + 1, sizeof(int64_t)),
                   attn_w ? attn_calloc((size_t)nw + 1, sizeof(float)) : NULL,
                   attn_calloc((size_t)B + 1, 1)};
    if (!g.ids || !g.out || !g.n || !g.done || (attn_w && !g.wts))
        st = attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    for (int64_t b = 0; b < B && st == ATTN_OK; b++) g.ids[b] = opts->bos_id;
    if (st == ATTN_OK) st = encode(m, src, &d, &w, 0);
    if (st == ATTN_OK) st = gen_loop(ctx, m, &d, &w, opts, cap, &g);
    if (st == ATTN_OK) {
        if (nout > 0) memcpy(out, g.out, (size_t)nout * sizeof(int32_t));
        memcpy(n_out, g.n, (size_t)B * sizeof(int64_t));
        if (attn_w) memcpy(attn_w, g.wts, fbytes(nw));
    }
    attn_release(g.ids);
    attn_release(g.out);
    attn_release(g.n);
    attn_release(g.wts);
    attn_release(g.done);
    work_free(&w);
    return st;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static attn__nn_paramset paramset(const attn_seq2seq *m)
{
    return (attn__nn_paramset){m->tensors, N_TENSORS, m->params, m->adam_m, m->adam_v};
}

attn_status attn_seq2seq_save(const attn_seq2seq *m, const char *path, int with_optim,
                                const char *const *meta_keys, const char *const *meta_values,
                                int64_t n_meta)
{
    ATTN__NN_NOT_NULL(__func__, m);
    ATTN__NN_NOT_NULL(__func__, path);
    char config[512];
    attn_status st = attn_seq2seq_config_to_json(&m->c, config, sizeof config);
    if (st != ATTN_OK) return st;
    attn__nn_paramset ps = paramset(m);
    return attn__nn_ckpt_save(__func__, path, FORMAT_TAG, config, m->steps, &ps, with_optim,
                              meta_keys, meta_values, n_meta);
}

attn_status attn_seq2seq_load_safetensors(const attn_safetensors *f, attn_seq2seq **out)
{
    ATTN__NN_NOT_NULL(__func__, f);
    ATTN__NN_NOT_NULL(__func__, out);
    const char *cfg = NULL;
    int64_t steps = 0;
    double floats = 0;
    attn_seq2seq_config c;
    attn_status st = attn__nn_ckpt_header(f, "rnn checkpoint", FORMAT_TAG, &cfg, &steps, &floats);
    if (st == ATTN_OK) st = attn_seq2seq_config_from_json(cfg, &c);
    if (st != ATTN_OK) return st;
    if ((double)count_params(&c) > floats) /* no allocation for a config the file cannot hold */
        return attn_fail(ATTN_BAD_FILE, "rnn checkpoint: the config needs %lld parameters, the file "
                         "holds %.0f floats", (long long)count_params(&c), floats);
    attn_seq2seq *m = NULL;
    if ((st = attn_seq2seq_create(&c, 0, &m)) != ATTN_OK) return st;
    attn__nn_paramset ps = paramset(m);
    if ((st = attn__nn_ckpt_read(f, "rnn checkpoint", &ps)) != ATTN_OK) {
        attn_seq2seq_free(m);
        return st;
    }
    m->steps = steps;
    *out = m;
    return ATTN_OK;
}

attn_status attn_seq2seq_load(const char *path, attn_seq2seq **out)
{
    ATTN__NN_NOT_NULL(__func__, path);
    ATTN__NN_NOT_NULL(__func__, out);
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(path, &f);
    if (st != ATTN_OK) return st;
    st = attn_seq2seq_load_safetensors(f, out);
    attn_safetensors_free(f);
    return st;
}
