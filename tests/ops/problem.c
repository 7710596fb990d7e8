/* problem.c - test problems: sampling of grid configurations, inputs
 * (rounded to the dtypes of a run), strided layouts with sentinel-filled
 * outputs in every dtype, and runs of the library. */
#include "problem.h"

#include "core/half.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

int64_t t_numel(const int64_t d[4]) { return d[0] * d[1] * d[2] * d[3]; }

static void *xcalloc(int64_t n, size_t size)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (p == NULL) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- configurations ---------------------------------------------------------- */

static int64_t pick(uint64_t *s, const int64_t *xs, int n) { return xs[t_rand_int(s, 0, n - 1)]; }

t_cfg t_cfg_sample(uint64_t seed, bool big)
{
    /* around every tile size: 32 and 64 (portable), 144, 48 and 64 (x86; 96 was
     * its forward's), 512 (decode split) */
    static const int64_t lens[] = {1, 2, 3, 5, 7, 8, 13, 16, 31, 32, 33, 47, 48, 49, 63, 64, 65,
                                   95, 96, 97, 127, 128, 129, 143, 144, 145, 191};
    enum { N_LENS = (int)(sizeof lens / sizeof lens[0]) };
    static const int64_t big_lens[] = {255, 256, 257, 511, 512, 513, 1023, 1025};
    static const int64_t heads[][2] = {{1, 1}, {4, 4}, {6, 2}, {8, 1}, {2, 1}, {3, 3}};
    static const int64_t threads[] = {1, 2, 3, 8};
    static const double drops[] = {0.0, 0.0, 0.17, 0.5};
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.seed = seed;
    c.B = t_rand_int(&s, 0, 3) == 0 ? t_rand_int(&s, 2, 4) : 1;
    int hp = (int)t_rand_int(&s, 0, 5);
    c.Hq = heads[hp][0];
    c.Hkv = heads[hp][1];
    int dk_band = (int)t_rand_int(&s, 0, 9);
    c.Dk = dk_band < 5 ? t_rand_int(&s, 1, 32) : dk_band < 8 ? t_rand_int(&s, 33, 128) : t_rand_int(&s, 129, 256);
    c.Dv = t_rand_int(&s, 0, 9) < 6 ? c.Dk : t_rand_int(&s, 1, 160);
    bool go_big = big || t_rand_int(&s, 0, 24) == 0;
    c.Sq = go_big && t_rand_int(&s, 0, 1) ? pick(&s, big_lens, 8) : pick(&s, lens, N_LENS);
    c.Sk = go_big && t_rand_int(&s, 0, 2) ? pick(&s, big_lens, 8) : pick(&s, lens, N_LENS);
    bool decode = t_rand_int(&s, 0, 11) == 0; /* few queries, many keys: the decode path */
    if (decode) {
        static const int64_t dq[] = {1, 2, 3, 4}, dk[] = {1024, 1025, 1100, 1536, 2047};
        static const int64_t dh[][2] = {{4, 1}, {8, 2}, {6, 3}, {2, 2}, {16, 1}};
        int x = (int)t_rand_int(&s, 0, 4);
        c.Sq = pick(&s, dq, 4);
        c.Sk = pick(&s, dk, 5);
        c.Hq = dh[x][0];
        c.Hkv = dh[x][1];
        if (c.Dk > 64) c.Dk = t_rand_int(&s, 1, 64);
        if (c.Dv > 64) c.Dv = t_rand_int(&s, 1, 64);
    }
    int sc = (int)t_rand_int(&s, 0, 19);
    c.scale = sc < 14 ? 0.0 : sc < 17 ? t_rand_uniform(&s, 0.05, 1.0) : -t_rand_uniform(&s, 0.05, 1.0);
    c.softcap = t_rand_int(&s, 0, 4) == 0 ? t_rand_uniform(&s, 0.5, 5.0) : 0.0;
    c.dropout_p = drops[t_rand_int(&s, 0, 3)];
    c.causal = t_rand_int(&s, 0, 19) < 7;
    c.align = (int)t_rand_int(&s, 0, 1);
    c.window_left = c.window_right = -1;
    if (t_rand_int(&s, 0, 3) == 0) {
        c.window_left = t_rand_int(&s, 0, c.Sk);
        c.window_right = t_rand_int(&s, 0, 2) == 0 ? -1 : t_rand_int(&s, 0, c.Sk);
    }
    c.bias_kind = t_rand_int(&s, 0, 4) < 2 ? BIAS_NONE : (int)t_rand_int(&s, 1, BIAS_KINDS - 1);
    c.mask_kind = t_rand_int(&s, 0, 1) ? MASK_NONE : (int)t_rand_int(&s, 1, MASK_KINDS - 1);
    c.qlens = t_rand_int(&s, 0, 4) == 0;
    c.klens = t_rand_int(&s, 0, 9) < 3;
    c.alibi = t_rand_int(&s, 0, 6) == 0;
    c.dbias = c.bias_kind != BIAS_NONE && t_rand_int(&s, 0, 4) < 3;
    c.layout = (int)t_rand_int(&s, 0, LAYOUT_KINDS - 1);
    c.threads = (int)pick(&s, threads, 4);
    c.bias32 = t_rand_int(&s, 0, 2) == 0;
    /* Keep the reference's cost bounded: shrink batch, heads, then dims. */
    double budget = big ? 6e7 : decode ? 1.2e7 : 4e6;
    while ((double)c.B * c.Hq * c.Sq * c.Sk * (double)(c.Dk + c.Dv) > budget) {
        if (c.B > 1) c.B = 1;
        else if (c.Hq > 1) c.Hq = c.Hkv = 1;
        else if (c.Dk > 8 || c.Dv > 8) { c.Dk = (c.Dk + 1) / 2; c.Dv = (c.Dv + 1) / 2; }
        else break;
    }
    return c;
}

void t_cfg_print(const t_cfg *c, FILE *f)
{
    fprintf(f,
            "seed=%llu B=%lld Sq=%lld Sk=%lld Hq=%lld Hkv=%lld Dk=%lld Dv=%lld scale=%g "
            "softcap=%g p=%g causal=%d align=%d window=(%lld,%lld) bias=%d mask=%d qlens=%d "
            "klens=%d alibi=%d dbias=%d bias32=%d layout=%d threads=%d",
            (unsigned long long)c->seed, (long long)c->B, (long long)c->Sq, (long long)c->Sk,
            (long long)c->Hq, (long long)c->Hkv, (long long)c->Dk, (long long)c->Dv, c->scale,
            c->softcap, c->dropout_p, c->causal, c->align, (long long)c->window_left,
            (long long)c->window_right, c->bias_kind, c->mask_kind, c->qlens, c->klens,
            c->alibi, c->dbias, c->bias32, c->layout, c->threads);
}

/* ---- inputs --------------------------------------------------------------------- */

static void fill(uint64_t *s, double *x, int64_t n, double lo, double hi)
{
    for (int64_t a = 0; a < n; a++) x[a] = (double)(float)t_rand_uniform(s, lo, hi);
}

void t_problem_make(t_problem *P, const t_cfg *c)
{
    memset(P, 0, sizeof *P);
    P->c = *c;
    uint64_t s = c->seed ^ 0x5DEECE66Dull;
    int64_t nq = c->B * c->Sq * c->Hq * c->Dk, nk = c->B * c->Sk * c->Hkv * c->Dk;
    int64_t nv = c->B * c->Sk * c->Hkv * c->Dv, no = c->B * c->Sq * c->Hq * c->Dv;
    P->q = xcalloc(nq, sizeof(double));
    P->k = xcalloc(nk, sizeof(double));
    P->v = xcalloc(nv, sizeof(double));
    P->dout = xcalloc(no, sizeof(double));
    fill(&s, P->q, nq, -1.0, 1.0);
    fill(&s, P->k, nk, -1.0, 1.0);
    fill(&s, P->v, nv, -1.0, 1.0);
    fill(&s, P->dout, no, -1.0, 1.0);
    int64_t full[4] = {c->B, c->Hq, c->Sq, c->Sk};
    static const int bias_bcast[BIAS_KINDS][4] = {{0}, {0, 0, 0, 0}, {1, 1, 0, 0}, {0, 1, 1, 0}, {1, 0, 0, 1}};
    static const int mask_bcast[MASK_KINDS][4] = {{0}, {0, 0, 0, 0}, {0, 1, 1, 0}, {1, 1, 0, 0}};
    if (c->bias_kind != BIAS_NONE) {
        for (int d = 0; d < 4; d++) P->bias_dim[d] = bias_bcast[c->bias_kind][d] ? 1 : full[d];
        int64_t n = t_numel(P->bias_dim);
        P->bias = xcalloc(n, sizeof(double));
        fill(&s, P->bias, n, -2.0, 2.0);
        for (int64_t a = 0; a < n; a++) {
            int64_t r = t_rand_int(&s, 0, 99);
            if (r < 6) P->bias[a] = -INFINITY;
            else if (r < 8) P->bias[a] = -FLT_MAX;
        }
    }
    if (c->mask_kind != MASK_NONE) {
        for (int d = 0; d < 4; d++) P->mask_dim[d] = mask_bcast[c->mask_kind][d] ? 1 : full[d];
        int64_t n = t_numel(P->mask_dim);
        P->mask = xcalloc(n, 1);
        for (int64_t a = 0; a < n; a++) P->mask[a] = t_rand_int(&s, 0, 9) < 8;
    }
    if (c->qlens) {
        P->qlens = xcalloc(c->B, sizeof(int64_t));
        for (int64_t b = 0; b < c->B; b++) P->qlens[b] = t_rand_int(&s, 0, c->Sq);
    }
    if (c->klens) {
        P->klens = xcalloc(c->B, sizeof(int64_t));
        for (int64_t b = 0; b < c->B; b++) P->klens[b] = t_rand_int(&s, 0, c->Sk);
    }
    if (c->alibi) {
        P->alibi = xcalloc(c->Hq, sizeof(double));
        for (int64_t h = 0; h < c->Hq; h++) P->alibi[h] = pow(2.0, -8.0 * (double)(h + 1) / (double)c->Hq);
    }
}

/* x rounded to dtype dt (F32, BF16, F16; x is a float already). */
static double round_to(attn_dtype dt, double x)
{
    switch (dt) {
    case ATTN_DTYPE_BF16: return attn__bf16_to_f32(attn__f32_to_bf16((float)x));
    case ATTN_DTYPE_F16: return attn__f16_to_f32(attn__f32_to_f16((float)x));
    default: return (float)x;
    }
}

static void round_all(attn_dtype dt, double *x, int64_t n)
{
    for (int64_t a = 0; x != NULL && a < n; a++) x[a] = round_to(dt, x[a]);
}

void t_problem_as(t_problem *P, attn_dtype dt, attn_dtype kv_dt)
{
    const t_cfg *c = &P->c;
    bool half = dt == ATTN_DTYPE_BF16 || dt == ATTN_DTYPE_F16;
    P->kv_dt = kv_dt;
    P->bias_dt = half && !c->bias32 ? dt : ATTN_DTYPE_F32;
    round_all(dt, P->q, c->B * c->Sq * c->Hq * c->Dk);
    round_all(dt, P->dout, c->B * c->Sq * c->Hq * c->Dv);
    round_all(kv_dt, P->k, c->B * c->Sk * c->Hkv * c->Dk);
    round_all(kv_dt, P->v, c->B * c->Sk * c->Hkv * c->Dv);
    round_all(P->bias_dt, P->bias, P->bias ? t_numel(P->bias_dim) : 0);
}

void t_problem_free(t_problem *P)
{
    free(P->q);
    free(P->k);
    free(P->v);
    free(P->dout);
    free(P->bias);
    free(P->alibi);
    free(P->mask);
    free(P->qlens);
    free(P->klens);
    memset(P, 0, sizeof *P);
}

attn_sdpa_params t_params(const t_problem *P, attn_tensor *bias, attn_tensor *mask)
{
    attn_sdpa_params a = attn_sdpa_params_default();
    a.has_scale = P->c.scale != 0.0;
    a.scale = P->c.scale;
    a.softcap = P->c.softcap;
    a.causal = P->c.causal;
    a.align = (attn_align)P->c.align;
    a.align_offset = P->c.align_offset;
    a.window_left = P->c.window_left;
    a.window_right = P->c.window_right;
    a.q_lens = P->qlens;
    a.k_lens = P->klens;
    a.bias = P->bias ? bias : NULL;
    a.mask = P->mask ? mask : NULL;
    a.alibi_slopes = P->alibi;
    a.block_mask = P->bm;
    a.dropout_p = P->c.dropout_p;
    a.seed = P->c.seed * 7919u + 17u;
    a.offset = P->c.seed % 5u;
    return a;
}

/* ---- strided runs ------------------------------------------------------------------ */

/* A tensor of logical dims d in a buffer laid out per `layout`, with the
 * bytes outside the view filled with a sentinel. */
typedef struct {
    t_buf buf;
    attn_tensor t;
    int64_t n; /* buffer elements */
} strided;

static strided make_strided(const int64_t d[4], attn_dtype dt, int layout, bool seq_heads)
{
    /* seq_heads: dims are [B, S, H, D]; otherwise a plain [a, b, c, e] view. */
    strided x;
    int64_t B = d[0], S = d[1], H = d[2], D = d[3], st[4];
    if (!seq_heads) layout = LAYOUT_BSHD;
    switch (layout) {
    case LAYOUT_BHSD:
        st[0] = H * S * D; st[1] = D; st[2] = S * D; st[3] = 1;
        x.n = B * H * S * D;
        break;
    case LAYOUT_PADDED: {
        int64_t row = H * (D + 3) + 5;
        st[0] = S * row; st[1] = row; st[2] = D + 3; st[3] = 1;
        x.n = B * S * row;
        break;
    }
    case LAYOUT_CACHE:
        st[0] = (S + 7) * H * D; st[1] = H * D; st[2] = D; st[3] = 1;
        x.n = B * (S + 7) * H * D;
        break;
    default:
        st[0] = S * H * D; st[1] = H * D; st[2] = D; st[3] = 1;
        x.n = B * S * H * D;
    }
    size_t es = attn_dtype_size(dt);
    x.buf = t_buf_alloc((size_t)(x.n > 0 ? x.n : 1) * es);
    memset(x.buf.data, 0x7F, x.buf.bytes); /* sentinel: a NaN pattern outside the view */
    x.t.data = x.buf.data;
    x.t.dtype = dt;
    for (int a = 0; a < 4; a++) {
        x.t.dim[a] = d[a];
        x.t.stride[a] = st[a];
    }
    return x;
}

static int64_t view_off(const attn_tensor *t, int64_t e)
{
    int64_t i3 = e % t->dim[3], i2 = e / t->dim[3] % t->dim[2];
    int64_t i1 = e / (t->dim[3] * t->dim[2]) % t->dim[1], i0 = e / (t->dim[3] * t->dim[2] * t->dim[1]);
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
}

/* Element o of a view of any float dtype, as a double, and back (src
 * values are representable in the view's dtype: exact). */
static double get_elem(const attn_tensor *t, int64_t o)
{
    switch (t->dtype) {
    case ATTN_DTYPE_F64: return ((const double *)t->data)[o];
    case ATTN_DTYPE_BF16: return attn__bf16_to_f32(((const uint16_t *)t->data)[o]);
    case ATTN_DTYPE_F16: return attn__f16_to_f32(((const uint16_t *)t->data)[o]);
    default: return ((const float *)t->data)[o];
    }
}

static void set_elem(const attn_tensor *t, int64_t o, double v)
{
    switch (t->dtype) {
    case ATTN_DTYPE_F64: ((double *)t->data)[o] = v; break;
    case ATTN_DTYPE_BF16: ((uint16_t *)t->data)[o] = attn__f32_to_bf16((float)v); break;
    case ATTN_DTYPE_F16: ((uint16_t *)t->data)[o] = attn__f32_to_f16((float)v); break;
    default: ((float *)t->data)[o] = (float)v; break;
    }
}

static void put(strided *x, const double *src)
{
    int64_t n = t_numel(x->t.dim);
    for (int64_t e = 0; e < n; e++) set_elem(&x->t, view_off(&x->t, e), src[e]);
}

/* Reads the view into canonical doubles; returns false if any element
 * outside the view lost its sentinel or a guard zone was touched. */
static bool take(strided *x, double **dst)
{
    int64_t n = t_numel(x->t.dim);
    size_t es = attn_dtype_size(x->t.dtype);
    *dst = xcalloc(n, sizeof(double));
    unsigned char *in_view = xcalloc(x->n, 1);
    for (int64_t e = 0; e < n; e++) {
        int64_t o = view_off(&x->t, e);
        in_view[o] = 1;
        (*dst)[e] = get_elem(&x->t, o);
    }
    bool ok = t_buf_guards_ok(&x->buf);
    for (int64_t o = 0; o < x->n && ok; o++)
        for (size_t byte = 0; !in_view[o] && byte < es; byte++)
            ok = ((unsigned char *)x->buf.data)[(size_t)o * es + byte] == 0x7F;
    free(in_view);
    t_buf_free(&x->buf);
    return ok;
}

void t_run(const t_problem *P, attn_dtype dt, attn_ctx *ctx, int layout, bool want_grad, t_result *r)
{
    const t_cfg *c = &P->c;
    memset(r, 0, sizeof *r);
    bool f64 = dt == ATTN_DTYPE_F64;
    attn_dtype kv = f64 || P->kv_dt == 0 ? dt : P->kv_dt, bd = f64 || P->bias_dt == 0 ? dt : P->bias_dt;
    attn_dtype ld = f64 ? dt : ATTN_DTYPE_F32;
    int64_t dq_[4] = {c->B, c->Sq, c->Hq, c->Dk}, dk_[4] = {c->B, c->Sk, c->Hkv, c->Dk};
    int64_t dv_[4] = {c->B, c->Sk, c->Hkv, c->Dv}, do_[4] = {c->B, c->Sq, c->Hq, c->Dv};
    int64_t dl_[4] = {c->B, c->Hq, c->Sq, 1};
    strided q = make_strided(dq_, dt, layout, true), k = make_strided(dk_, kv, layout, true);
    strided v = make_strided(dv_, kv, layout, true), o = make_strided(do_, dt, layout, true);
    strided lse = make_strided(dl_, ld, LAYOUT_BSHD, false);
    strided bias = make_strided(P->bias ? P->bias_dim : dl_, bd, LAYOUT_BSHD, false);
    strided mask = make_strided(P->mask ? P->mask_dim : dl_, ATTN_DTYPE_F32, LAYOUT_BSHD, false);
    put(&q, P->q);
    put(&k, P->k);
    put(&v, P->v);
    if (P->bias) put(&bias, P->bias);
    if (P->mask) {
        mask.t.dtype = ATTN_DTYPE_BOOL;
        memcpy(mask.t.data, P->mask, (size_t)t_numel(P->mask_dim));
    }
    attn_sdpa_params a = t_params(P, &bias.t, &mask.t);
    r->status = attn_sdpa_forward(ctx, &q.t, &k.t, &v.t, &a, &o.t, &lse.t);
    r->guards_ok = true;
    if (r->status == ATTN_OK && want_grad) {
        strided d_o = make_strided(do_, dt, layout, true), dq = make_strided(dq_, dt, layout, true);
        strided dk = make_strided(dk_, kv, layout, true), dv = make_strided(dv_, kv, layout, true);
        strided db = make_strided(P->bias ? P->bias_dim : dl_, bd, LAYOUT_BSHD, false);
        put(&d_o, P->dout);
        r->status = attn_sdpa_backward(ctx, &q.t, &k.t, &v.t, &o.t, &d_o.t, &lse.t, &a, &dq.t,
                                       &dk.t, &dv.t, P->bias && c->dbias ? &db.t : NULL);
        double *tmp;
        r->guards_ok &= take(&d_o, &tmp);
        free(tmp);
        r->guards_ok &= take(&dq, &r->dq);
        r->guards_ok &= take(&dk, &r->dk);
        r->guards_ok &= take(&dv, &r->dv);
        r->guards_ok &= take(&db, &r->dbias);
    }
    double *tmp;
    r->guards_ok &= take(&o, &r->o);
    r->guards_ok &= take(&lse, &r->lse);
    r->guards_ok &= take(&q, &tmp);
    free(tmp);
    r->guards_ok &= take(&k, &tmp);
    free(tmp);
    r->guards_ok &= take(&v, &tmp);
    free(tmp);
    mask.t.dtype = ATTN_DTYPE_F32; /* restore for take(): its buffer was sized as floats */
    t_buf_free(&mask.buf);
    r->guards_ok &= t_buf_guards_ok(&bias.buf);
    t_buf_free(&bias.buf);
}

void t_result_free(t_result *r)
{
    free(r->o);
    free(r->lse);
    free(r->dq);
    free(r->dk);
    free(r->dv);
    free(r->dbias);
    memset(r, 0, sizeof *r);
}

double t_max_err(const double *a, const double *b, int64_t n)
{
    double e = 0.0;
    for (int64_t x = 0; x < n; x++) {
        if (isnan(a[x]) && isnan(b[x])) continue;
        if (a[x] == b[x]) continue; /* also equal infinities */
        double d = fabs(a[x] - b[x]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e;
}

double t_max_abs(const double *a, int64_t n)
{
    double m = 0.0;
    for (int64_t x = 0; x < n; x++)
        if (isfinite(a[x]) && fabs(a[x]) > m) m = fabs(a[x]);
    return m;
}
