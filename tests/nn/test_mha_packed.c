/* test_mha_packed.c - the multi-head attention module on packed batches
 * (attn_nn_mha_opts.n_seqs, cu_seqlens_q/k): one packed call, forward and
 * backward, against each sequence run alone as a batch of one (self,
 * causal self with rotary positions, cross with other key lengths, empty
 * and one-token sequences; outputs, attention weights, input gradients,
 * and parameter gradients as the sum over the sequences); with dropout on
 * the weights, against the same sequences padded into a batch with k_lens
 * (the masks are drawn per sequence in both); and bad offsets refused with
 * ATTN_BAD_PARAM naming the argument, nothing allocated left behind. */
#include "nn_test.h"

#include <stdlib.h>
#include <string.h>

enum { MAXS = 6 };

/* A module's parameters in one block vals [n] (gradients: any block of n). */
typedef struct {
    int64_t E, H, Hk, hd, kd;
    int packed, bias;
    int64_t n, off[6]; /* in_proj (or q, k, v), in_proj_bias, out_proj_weight, out_proj_bias */
    float *vals;
} module;

static module module_make(uint64_t *rng, int64_t E, int64_t H, int64_t Hk, int64_t hd,
                          int64_t kd, int packed, int bias)
{
    module md = {E, H, Hk, hd, kd, packed, bias, 0, {0}, NULL};
    int64_t sizes[6] = {H * hd * E, Hk * hd * kd, Hk * hd * kd, (H + 2 * Hk) * hd, E * H * hd, E};
    for (int i = 0; i < 6; i++) {
        md.off[i] = md.n;
        md.n += sizes[i];
    }
    md.vals = malloc((size_t)md.n * sizeof(float));
    t_fill(rng, md.vals, md.n, -0.4, 0.4);
    return md;
}

/* The attn_nn_mha view of md with gradients into grads [md->n] (or none). */
static attn_nn_mha view(const module *md, float *grads)
{
    attn_nn_mha m;
    memset(&m, 0, sizeof m);
    m.embed_dim = md->E, m.n_heads = md->H, m.n_kv_heads = md->Hk, m.head_dim = md->hd;
    m.kdim = m.vdim = md->kd;
    m.packed = md->packed;
    float *v = md->vals, *g = grads;
    if (md->packed) { /* q, k, v blocks are contiguous: [3E, E] */
        m.in_proj_weight = v + md->off[0];
        m.d_in_proj_weight = g ? g + md->off[0] : NULL;
    } else {
        m.q_proj_weight = v + md->off[0], m.k_proj_weight = v + md->off[1];
        m.v_proj_weight = v + md->off[2];
        if (g)
            m.d_q_proj_weight = g + md->off[0], m.d_k_proj_weight = g + md->off[1],
            m.d_v_proj_weight = g + md->off[2];
    }
    if (md->bias) {
        m.in_proj_bias = v + md->off[3], m.out_proj_bias = v + md->off[5];
        if (g) m.d_in_proj_bias = g + md->off[3], m.d_out_proj_bias = g + md->off[5];
    }
    m.out_proj_weight = v + md->off[4];
    m.d_out_proj_weight = g ? g + md->off[4] : NULL;
    return m;
}

static float *fresh(uint64_t *rng, int64_t n, double s)
{
    float *x = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (s > 0) t_fill(rng, x, n, -s, s);
    return x;
}

/* max |a - b| / max(1, max |b|) over n. */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double e = 0, s = 1;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - (double)b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return e / s;
}

/* One packed problem: sequences, their rows, inputs and the module. */
typedef struct {
    int64_t ns, lq[MAXS], lk[MAXS], cq[MAXS + 1], ck[MAXS + 1], Tq, Tk;
    int cross, causal, rope, self_k_null;
    int32_t *qpos, *kpos; /* [Tq], [Tk] positions within the sequence */
    float *query, *kv, *dout;
} problem;

static problem problem_make(uint64_t *rng, const module *md, int cross, int causal, int rope)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.cross = cross, p.causal = causal, p.rope = rope;
    p.self_k_null = (int)t_rand_int(rng, 0, 1);
    p.ns = t_rand_int(rng, 1, MAXS);
    for (int64_t s = 0; s < p.ns; s++) {
        int64_t r = t_rand_int(rng, s == 0 ? 1 : 0, 9); /* one in five 1, one in ten 0 */
        p.lq[s] = r == 0 ? 0 : r <= 2 ? 1 : t_rand_int(rng, 2, 13);
        p.lk[s] = cross ? t_rand_int(rng, s == 0 ? 0 : 1, 11) : p.lq[s];
        p.cq[s + 1] = p.cq[s] + p.lq[s];
        p.ck[s + 1] = p.ck[s] + p.lk[s];
    }
    p.Tq = p.cq[p.ns], p.Tk = p.ck[p.ns];
    p.qpos = calloc((size_t)p.Tq + 1, sizeof(int32_t));
    p.kpos = calloc((size_t)p.Tk + 1, sizeof(int32_t));
    for (int64_t s = 0; s < p.ns; s++) {
        for (int64_t i = 0; i < p.lq[s]; i++) p.qpos[p.cq[s] + i] = (int32_t)i;
        for (int64_t j = 0; j < p.lk[s]; j++) p.kpos[p.ck[s] + j] = (int32_t)j;
    }
    p.query = fresh(rng, p.Tq * md->E, 1);
    p.kv = cross ? fresh(rng, p.Tk * md->kd, 1) : p.query;
    p.dout = fresh(rng, p.Tq * md->E, 1);
    return p;
}

static void problem_free(problem *p)
{
    free(p->qpos), free(p->kpos), free(p->query), free(p->dout);
    if (p->cross) free(p->kv);
}

static attn_nn_mha_opts base_opts(const problem *p)
{
    attn_nn_mha_opts o;
    memset(&o, 0, sizeof o);
    o.causal = p->causal;
    o.rope_theta = 10000;
    return o;
}

/* The packed call: out [Tq, E], weights [1, H, Tq, Tk] or averaged, the input
 * and parameter gradients (accumulated into zeroed buffers). */
typedef struct {
    float *out, *w, *dq, *dkv, *grads;
} result;

static result result_make(const module *md, const problem *p, int64_t nw)
{
    result r;
    r.out = fresh(NULL, p->Tq * md->E, 0);
    r.w = fresh(NULL, nw, 0);
    r.dq = fresh(NULL, p->Tq * md->E, 0);
    r.dkv = p->cross ? fresh(NULL, p->Tk * md->kd, 0) : r.dq;
    r.grads = fresh(NULL, md->n, 0);
    return r;
}

static void result_free(result *r, int cross)
{
    free(r->out), free(r->w), free(r->dq), free(r->grads);
    if (cross) free(r->dkv);
}

static void run_packed(attn_ctx *ctx, const module *md, const problem *p, int average, result *r)
{
    attn_nn_mha m = view(md, r->grads);
    attn_nn_mha_opts o = base_opts(p);
    o.n_seqs = p->ns;
    o.cu_seqlens_q = p->cq;
    o.cu_seqlens_k = p->cross ? p->ck : p->self_k_null ? NULL : p->cq;
    if (p->rope) o.rope_pos = p->qpos, o.rope_kpos = p->cross ? p->kpos : NULL;
    attn_nn_mha_saved sv;
    T_EQ_STATUS(attn_nn_mha_forward(ctx, &m, p->query, p->kv, 1, p->Tq, p->Tk, &o, r->out, r->w,
                                    average, &sv),
                ATTN_OK);
    T_EQ_STATUS(attn_nn_mha_backward(ctx, &m, p->query, p->kv, &o, &sv, p->dout, r->dq, r->dkv),
                ATTN_OK);
    attn_nn_mha_saved_free(&sv);
}

/* Each sequence alone (B = 1, its own rows), written where the packed call
 * writes it; the weights [.., Tq, Tk] hold each sequence's block. */
static void run_alone(attn_ctx *ctx, const module *md, const problem *p, int average, result *r)
{
    attn_nn_mha m = view(md, r->grads);
    int64_t H = average ? 1 : md->H;
    for (int64_t s = 0; s < p->ns; s++) {
        int64_t Lq = p->lq[s], Lk = p->lk[s];
        if (Lq == 0) continue; /* no rows: nothing to compute, no gradient */
        attn_nn_mha_opts o = base_opts(p);
        if (p->rope) o.rope_pos = p->qpos + p->cq[s], o.rope_kpos = p->cross ? p->kpos + p->ck[s] : NULL;
        const float *q = p->query + p->cq[s] * md->E;
        const float *kv = p->cross ? p->kv + p->ck[s] * md->kd : q;
        float *dq = r->dq + p->cq[s] * md->E, *dkv = p->cross ? r->dkv + p->ck[s] * md->kd : dq;
        float *w = malloc((size_t)(H * Lq * Lk + 1) * sizeof(float));
        attn_nn_mha_saved sv;
        T_EQ_STATUS(attn_nn_mha_forward(ctx, &m, q, kv, 1, Lq, Lk, &o, r->out + p->cq[s] * md->E, w,
                                        average, &sv),
                    ATTN_OK);
        T_EQ_STATUS(attn_nn_mha_backward(ctx, &m, q, kv, &o, &sv, p->dout + p->cq[s] * md->E, dq, dkv),
                    ATTN_OK);
        attn_nn_mha_saved_free(&sv);
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++)
                for (int64_t j = 0; j < Lk; j++)
                    r->w[(h * p->Tq + p->cq[s] + i) * p->Tk + p->ck[s] + j] = w[(h * Lq + i) * Lk + j];
        free(w);
    }
}

/* Each result's error against the reference, all within tol. */
static double compare(const module *md, const problem *p, const result *a, const result *b,
                      int64_t nw, double tol)
{
    double e[5] = {rel_err(a->out, b->out, p->Tq * md->E), rel_err(a->w, b->w, nw),
                   rel_err(a->dq, b->dq, p->Tq * md->E),
                   p->cross ? rel_err(a->dkv, b->dkv, p->Tk * md->kd) : 0,
                   rel_err(a->grads, b->grads, md->n)};
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        T_LE(e[i], tol);
        worst = fmax(worst, e[i]);
    }
    return worst;
}

T_TEST(mha_packed_equals_each_alone)
{
    uint64_t rng = 0x9ac4ed;
    double worst = 0;
    for (int round = 0; round < 48; round++) {
        int cross = round % 3 == 2, causal = round % 3 == 1 || (cross && round % 4 == 0);
        int sep = round % 2, gqa = sep && round % 4 == 1;
        int64_t H = gqa ? 4 : t_rand_int(&rng, 1, 3), Hk = gqa ? 2 : H, hd = 2 * t_rand_int(&rng, 1, 4);
        int64_t E = sep ? t_rand_int(&rng, 3, 12) : H * hd, kd = cross && sep ? t_rand_int(&rng, 2, 9) : E;
        int rope = round % 5 != 0 && !(cross && round % 2);
        module md = module_make(&rng, E, H, Hk, hd, kd, !sep, round % 7 != 3);
        problem p = problem_make(&rng, &md, cross, causal, rope);
        int average = round % 2 == 0;
        int64_t nw = (average ? 1 : H) * p.Tq * p.Tk;
        result a = result_make(&md, &p, nw), b = result_make(&md, &p, nw);
        attn_ctx *ctx = t_ctx((int)t_rand_int(&rng, 1, 2));
        run_packed(ctx, &md, &p, average, &a);
        run_alone(ctx, &md, &p, average, &b);
        worst = fmax(worst, compare(&md, &p, &a, &b, nw, 1e-6));
        result_free(&a, cross);
        result_free(&b, cross);
        problem_free(&p);
        free(md.vals);
    }
    if (t_verbose) printf("  packed vs each alone: worst relative error %.3g\n", worst);
}

/* With dropout on the weights: the padded batch of the same sequences with
 * k_lens draws the same masks (b = sequence, positions from its start). */
T_TEST(mha_packed_dropout_equals_padded)
{
    uint64_t rng = 0x5eed0d;
    double worst = 0;
    for (int round = 0; round < 24; round++) {
        int cross = round % 2, causal = round % 3 == 0;
        module md = module_make(&rng, 8, 2, 2, 4, cross && round % 4 < 2 ? 5 : 8, !(cross && round % 4 < 2) && round % 3 != 1, 1);
        problem p = problem_make(&rng, &md, cross, causal, 0);
        int64_t E = md.E, kd = md.kd, B = p.ns, Sq = 1, Sk = 1;
        for (int64_t s = 0; s < B; s++) Sq = p.lq[s] > Sq ? p.lq[s] : Sq, Sk = p.lk[s] > Sk ? p.lk[s] : Sk;
        if (!cross) Sk = Sq;
        /* padded copies: padding rows random (never attended), their d_out 0 */
        float *q = fresh(&rng, B * Sq * E, 1), *kv = cross ? fresh(&rng, B * Sk * kd, 1) : q;
        float *dout = fresh(NULL, B * Sq * E, 0), *out = fresh(NULL, B * Sq * E, 0);
        float *dq = fresh(NULL, B * Sq * E, 0), *dkv = cross ? fresh(NULL, B * Sk * kd, 0) : dq;
        int64_t klens[MAXS];
        for (int64_t s = 0; s < B; s++) {
            klens[s] = p.lk[s];
            memcpy(q + s * Sq * E, p.query + p.cq[s] * E, (size_t)(p.lq[s] * E) * sizeof(float));
            memcpy(dout + s * Sq * E, p.dout + p.cq[s] * E, (size_t)(p.lq[s] * E) * sizeof(float));
            if (cross) memcpy(kv + s * Sk * kd, p.kv + p.ck[s] * kd, (size_t)(p.lk[s] * kd) * sizeof(float));
        }
        result a = result_make(&md, &p, 1), b = result_make(&md, &p, 1);
        attn_ctx *ctx = t_ctx(2);
        attn_nn_mha m = view(&md, a.grads);
        attn_nn_mha_opts o = base_opts(&p);
        o.dropout_p = 0.3, o.seed = 77 + (uint64_t)round, o.offset = 5;
        o.n_seqs = p.ns, o.cu_seqlens_q = p.cq, o.cu_seqlens_k = cross ? p.ck : NULL;
        attn_nn_mha_saved sv;
        T_EQ_STATUS(attn_nn_mha_forward(ctx, &m, p.query, p.kv, 1, p.Tq, p.Tk, &o, a.out, NULL, 0, &sv), ATTN_OK);
        T_EQ_STATUS(attn_nn_mha_backward(ctx, &m, p.query, p.kv, &o, &sv, p.dout, a.dq, a.dkv), ATTN_OK);
        attn_nn_mha_saved_free(&sv);
        m = view(&md, b.grads);
        o.n_seqs = 0, o.cu_seqlens_q = o.cu_seqlens_k = NULL, o.k_lens = klens;
        T_EQ_STATUS(attn_nn_mha_forward(ctx, &m, q, kv, B, Sq, Sk, &o, out, NULL, 0, &sv), ATTN_OK);
        T_EQ_STATUS(attn_nn_mha_backward(ctx, &m, q, kv, &o, &sv, dout, dq, dkv), ATTN_OK);
        attn_nn_mha_saved_free(&sv);
        for (int64_t s = 0; s < B; s++) { /* the padded results' real rows, packed */
            memcpy(b.out + p.cq[s] * E, out + s * Sq * E, (size_t)(p.lq[s] * E) * sizeof(float));
            memcpy(b.dq + p.cq[s] * E, dq + s * Sq * E, (size_t)(p.lq[s] * E) * sizeof(float));
            if (cross) memcpy(b.dkv + p.ck[s] * kd, dkv + s * Sk * kd, (size_t)(p.lk[s] * kd) * sizeof(float));
        }
        worst = fmax(worst, compare(&md, &p, &a, &b, 1, 1e-6));
        result_free(&a, cross);
        result_free(&b, cross);
        free(q), free(dout), free(out), free(dq);
        if (cross) free(kv), free(dkv);
        problem_free(&p);
        free(md.vals);
    }
    if (t_verbose) printf("  packed vs padded with dropout: worst relative error %.3g\n", worst);
}

/* A call whose status must be want, the message naming what, with no
 * allocation left live and nothing written to out. */
static void refused(attn_ctx *ctx, const attn_nn_mha *m, const float *x, int64_t B, int64_t Sq,
                    int64_t Sk, const attn_nn_mha_opts *o, attn_status want, const char *what)
{
    enum { N = 64 };
    float out[N];
    for (int i = 0; i < N; i++) out[i] = 7.0f;
    t_counting c = {0, 0, 0};
    attn_set_allocator(t_count_alloc, t_count_free, &c);
    attn_status st = attn_nn_mha_forward(ctx, m, x, x, B, Sq, Sk, o, out, NULL, 0, NULL);
    attn_set_allocator(NULL, NULL, NULL);
    T_EQ_STATUS(st, want);
    T_EQ_INT(c.live, 0);
    if (strstr(attn_last_error(), what) == NULL)
        t_fail(__FILE__, __LINE__, "the message \"%s\" does not name %s", attn_last_error(), what);
    bool same = true;
    for (int i = 0; i < N; i++) same &= out[i] == 7.0f;
    T_CHECK(same);
}

T_TEST(mha_packed_bad_offsets)
{
    uint64_t rng = 0xbad0ff;
    module md = module_make(&rng, 4, 2, 2, 2, 4, 1, 1);
    attn_nn_mha m = view(&md, NULL);
    attn_ctx *ctx = t_ctx(1);
    float x[16 * 4];
    t_fill(&rng, x, 16 * 4, -1, 1);
    int64_t cu[4] = {0, 3, 5, 9}, ck[4] = {0, 2, 2, 7}, klens[1] = {3};
    attn_nn_mha_opts o;
    memset(&o, 0, sizeof o);
    o.n_seqs = 3, o.cu_seqlens_q = cu;
    float out[9 * 4];
    T_EQ_STATUS(attn_nn_mha_forward(ctx, &m, x, x, 1, 9, 9, &o, out, NULL, 0, NULL), ATTN_OK);

    cu[0] = 1; /* not starting at 0 */
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_q[0]'");
    cu[0] = 0, cu[2] = 2; /* decreasing */
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_q[2]'");
    cu[2] = 5, cu[3] = 8; /* not ending at Sq */
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_q[3]'");
    cu[3] = 9;
    refused(ctx, &m, x, 1, 10, 10, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_q[3]'");
    o.cu_seqlens_k = ck; /* keys of another total */
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_k[3]'");
    ck[3] = 9, ck[2] = 1, ck[1] = 3; /* decreasing keys */
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_k[2]'");
    o.cu_seqlens_k = NULL; /* self-attention offsets with other key rows */
    refused(ctx, &m, x, 1, 9, 8, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_k'");
    o.n_seqs = 2; /* an array of 3 sequences called 2: ends at 5, not 9 */
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_q[2]'");
    o.n_seqs = 0;
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->n_seqs'");
    o.n_seqs = 3, o.cu_seqlens_q = NULL;
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->cu_seqlens_q'");
    o.cu_seqlens_q = cu;
    refused(ctx, &m, x, 3, 3, 3, &o, ATTN_BAD_PARAM, "'B'");
    o.k_lens = klens;
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_BAD_PARAM, "'opts->k_lens'");
    o.k_lens = NULL;
    uint8_t keep[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    o.key_keep = keep;
    refused(ctx, &m, x, 1, 9, 9, &o, ATTN_UNSUPPORTED, "'opts->key_keep'");
    o.key_keep = NULL;

    /* backward checks its options too */
    attn_nn_mha_saved sv;
    T_EQ_STATUS(attn_nn_mha_forward(ctx, &m, x, x, 1, 9, 9, &o, out, NULL, 0, &sv), ATTN_OK);
    float dq[9 * 4] = {0};
    cu[1] = 4, cu[2] = 3;
    T_EQ_STATUS(attn_nn_mha_backward(ctx, &m, x, x, &o, &sv, out, dq, dq), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "'opts->cu_seqlens_q[2]'") != NULL);
    bool zero = true;
    for (int i = 0; i < 9 * 4; i++) zero &= dq[i] == 0;
    T_CHECK(zero);
    attn_nn_mha_saved_free(&sv);
    free(md.vals);
}
