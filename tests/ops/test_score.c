/* test_score.c - learned-score attention (attn/score.h).
 *
 * The float64 reference is checked first: hand-computed cases, agreement
 * with the core's attention where the math coincides, and finite
 * differences of every input and parameter. The float32 paths (chunked
 * kernel, core kernels on projected inputs, the reference on float32
 * tensors) are then checked against it on a random grid with the error
 * rule of docs/testing.md, the naive float32 math below being the
 * baseline. Then the exact contracts, every argument check, out-of-memory
 * injection and the accuracy of the chunked kernel's tanh. A failed grid config prints its
 * reproducer `attn_tests --seed S score_grid_vs_ref64`. */
#include "problem.h"

#include <attn/score.h>

#include <float.h>
#include <stdlib.h>
#include <string.h>

void attn__score_tanh(const float *x, float *y, int64_t n, float sat); /* src/kernels/portable */

/* ---- problems -------------------------------------------------------------------- */

enum { P_WQ, P_WK, P_B, P_VA, P_W, P_G, NP };
enum { SM_NONE, SM_FULL /* [B,H,Sq,Sk] */, SM_KEYS /* [B,1,1,Sk] */, SM_SHARED /* [1,1,Sq,Sk] */, SM_KINDS };

typedef struct {
    attn_score_kind kind;
    int64_t B, Sq, Sk, H, Dq, Dk, Dv, A;
    bool has_b, qlens, klens;
    int causal, align, mask_kind, layout, threads;
    int64_t wl, wr;
    double p;
    uint64_t seed;
} sc_cfg;

typedef struct {
    sc_cfg c;
    double *q, *k, *v, *dout;   /* canonical [B, S, H, D] */
    double *par[NP];            /* canonical [H, R, C]; NULL: the kind has no such parameter */
    int64_t pr[NP], pc[NP];     /* R, C */
    uint8_t *mask;
    int64_t mask_dim[4];
    int64_t *qlens, *klens;
} sc_prob;

/* Results in canonical layouts; dpar like par; w, wd: weights [B,H,Sq,Sk]
 * without and with dropout. */
typedef struct {
    double *o, *lse, *dq, *dk, *dv, *dpar[NP], *w, *wd;
    attn_status status;
    bool guards_ok;
} sc_res;

static void *xcalloc(int64_t n, size_t size)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (p == NULL) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    return p;
}

static void fill(uint64_t *s, double *x, int64_t n, double lo, double hi)
{
    for (int64_t a = 0; a < n; a++) x[a] = (double)(float)t_rand_uniform(s, lo, hi);
}

static int64_t n_of(const sc_cfg *c, int64_t S, int64_t D) { return c->B * S * c->H * D; }

static void sc_print(const sc_cfg *c, FILE *f)
{
    fprintf(f, "seed=%llu kind=%d B=%lld Sq=%lld Sk=%lld H=%lld Dq=%lld Dk=%lld Dv=%lld A=%lld b=%d "
            "causal=%d align=%d window=(%lld,%lld) mask=%d qlens=%d klens=%d p=%g layout=%d threads=%d",
            (unsigned long long)c->seed, (int)c->kind, (long long)c->B, (long long)c->Sq, (long long)c->Sk,
            (long long)c->H, (long long)c->Dq, (long long)c->Dk, (long long)c->Dv, (long long)c->A,
            c->has_b, c->causal, c->align, (long long)c->wl, (long long)c->wr, c->mask_kind, c->qlens,
            c->klens, c->p, c->layout, c->threads);
}

static void sc_make(sc_prob *P, const sc_cfg *c)
{
    memset(P, 0, sizeof *P);
    P->c = *c;
    uint64_t s = c->seed * 0x9E3779B97F4A7C15ull + 3;
    P->q = xcalloc(n_of(c, c->Sq, c->Dq), sizeof(double));
    P->k = xcalloc(n_of(c, c->Sk, c->Dk), sizeof(double));
    P->v = xcalloc(n_of(c, c->Sk, c->Dv), sizeof(double));
    P->dout = xcalloc(n_of(c, c->Sq, c->Dv), sizeof(double));
    fill(&s, P->q, n_of(c, c->Sq, c->Dq), -1, 1);
    fill(&s, P->k, n_of(c, c->Sk, c->Dk), -1, 1);
    fill(&s, P->v, n_of(c, c->Sk, c->Dv), -1, 1);
    fill(&s, P->dout, n_of(c, c->Sq, c->Dv), -1, 1);
    bool add = c->kind == ATTN_SCORE_KIND_ADDITIVE, cat = c->kind == ATTN_SCORE_KIND_LUONG_CONCAT;
    bool gen = c->kind == ATTN_SCORE_KIND_LUONG_GENERAL;
    int64_t rc[NP][2] = {{add ? c->A : 0, c->Dq}, {add ? c->A : 0, c->Dk}, {add && c->has_b, c->A},
                         {add || cat, c->A}, {gen ? c->Dq : cat ? c->A : 0, gen ? c->Dk : c->Dq + c->Dk},
                         {c->kind == ATTN_SCORE_KIND_SCALED_DOT, 1}};
    double amp[NP] = {1.5 / sqrt((double)c->Dq), 1.5 / sqrt((double)c->Dk), 0.5, 2.0 / sqrt((double)c->A),
                      gen ? 1.0 / sqrt((double)c->Dk) : 1.5 / sqrt((double)(c->Dq + c->Dk)), 1.5};
    for (int x = 0; x < NP; x++) {
        if (rc[x][0] == 0) continue;
        P->pr[x] = rc[x][0];
        P->pc[x] = rc[x][1];
        P->par[x] = xcalloc(c->H * rc[x][0] * rc[x][1], sizeof(double));
        fill(&s, P->par[x], c->H * rc[x][0] * rc[x][1], -amp[x], amp[x]);
    }
    if (c->mask_kind != SM_NONE) {
        static const int bc[SM_KINDS][4] = {{0}, {0, 0, 0, 0}, {0, 1, 1, 0}, {1, 1, 0, 0}};
        int64_t full[4] = {c->B, c->H, c->Sq, c->Sk};
        for (int d = 0; d < 4; d++) P->mask_dim[d] = bc[c->mask_kind][d] ? 1 : full[d];
        P->mask = xcalloc(t_numel(P->mask_dim), 1);
        for (int64_t a = 0; a < t_numel(P->mask_dim); a++) P->mask[a] = t_rand_int(&s, 0, 9) < 8;
    }
    if (c->qlens) P->qlens = xcalloc(c->B, sizeof(int64_t));
    if (c->klens) P->klens = xcalloc(c->B, sizeof(int64_t));
    for (int64_t b = 0; c->qlens && b < c->B; b++) P->qlens[b] = t_rand_int(&s, 0, c->Sq);
    for (int64_t b = 0; c->klens && b < c->B; b++) P->klens[b] = t_rand_int(&s, 0, c->Sk);
}

static void sc_free(sc_prob *P)
{
    free(P->q);
    free(P->k);
    free(P->v);
    free(P->dout);
    for (int x = 0; x < NP; x++) free(P->par[x]);
    free(P->mask);
    free(P->qlens);
    free(P->klens);
    memset(P, 0, sizeof *P);
}

static void res_free(sc_res *r)
{
    free(r->o);
    free(r->lse);
    free(r->dq);
    free(r->dk);
    free(r->dv);
    free(r->w);
    free(r->wd);
    for (int x = 0; x < NP; x++) free(r->dpar[x]);
    memset(r, 0, sizeof *r);
}

/* ---- strided views with sentinels --------------------------------------------------- */

/* A view of dims d in its own guarded buffer. layout 0: row-major; 1: dims
 * 1 and 2 swapped in memory (BHSD for [B, S, H, D]); 2: padded strides. The
 * bytes outside the view hold a sentinel. */
typedef struct {
    t_buf buf;
    attn_tensor t;
    int64_t n;
} sview;

static sview sv_make(const int64_t d[4], attn_dtype dt, int layout)
{
    sview x;
    int64_t st[4];
    if (layout == 1) {
        st[3] = 1; st[1] = d[3]; st[2] = d[1] * d[3]; st[0] = d[1] * d[2] * d[3];
        x.n = d[0] * d[1] * d[2] * d[3];
    } else if (layout == 2) {
        st[3] = 1; st[2] = d[3] + 3; st[1] = d[2] * (d[3] + 3) + 5; st[0] = d[1] * st[1] + 2;
        x.n = d[0] * st[0];
    } else {
        st[3] = 1; st[2] = d[3]; st[1] = d[2] * d[3]; st[0] = d[1] * d[2] * d[3];
        x.n = d[0] * d[1] * d[2] * d[3];
    }
    size_t es = dt == ATTN_DTYPE_F64 ? 8 : dt == ATTN_DTYPE_BOOL ? 1 : 4;
    x.buf = t_buf_alloc((size_t)(x.n > 0 ? x.n : 1) * es);
    memset(x.buf.data, 0x7F, x.buf.bytes);
    x.t.data = x.buf.data;
    x.t.dtype = dt;
    for (int a = 0; a < 4; a++) {
        x.t.dim[a] = d[a];
        x.t.stride[a] = st[a];
    }
    return x;
}

static int64_t sv_off(const attn_tensor *t, int64_t e)
{
    int64_t i3 = e % t->dim[3], i2 = e / t->dim[3] % t->dim[2];
    int64_t i1 = e / (t->dim[3] * t->dim[2]) % t->dim[1], i0 = e / (t->dim[3] * t->dim[2] * t->dim[1]);
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
}

static void sv_put(sview *x, const double *src)
{
    for (int64_t e = 0; e < t_numel(x->t.dim); e++) {
        int64_t o = sv_off(&x->t, e);
        if (x->t.dtype == ATTN_DTYPE_F64) ((double *)x->t.data)[o] = src[e];
        else if (x->t.dtype == ATTN_DTYPE_BOOL) ((uint8_t *)x->t.data)[o] = (uint8_t)src[e];
        else ((float *)x->t.data)[o] = (float)src[e];
    }
}

/* Reads the view into canonical doubles (dst may be NULL: only checked) and
 * frees it; false if a byte outside the view or a guard zone changed. */
static bool sv_take(sview *x, double **dst)
{
    int64_t n = t_numel(x->t.dim);
    size_t es = x->t.dtype == ATTN_DTYPE_F64 ? 8 : x->t.dtype == ATTN_DTYPE_BOOL ? 1 : 4;
    unsigned char *in_view = xcalloc(x->n, 1);
    double *out = dst ? xcalloc(n, sizeof(double)) : NULL;
    for (int64_t e = 0; e < n; e++) {
        int64_t o = sv_off(&x->t, e);
        in_view[o] = 1;
        if (out) out[e] = x->t.dtype == ATTN_DTYPE_F64 ? ((double *)x->t.data)[o] : (double)((float *)x->t.data)[o];
    }
    bool ok = t_buf_guards_ok(&x->buf);
    for (int64_t o = 0; o < x->n && ok; o++)
        for (size_t byte = 0; !in_view[o] && byte < es; byte++)
            ok = ((unsigned char *)x->buf.data)[(size_t)o * es + byte] == 0x7F;
    free(in_view);
    t_buf_free(&x->buf);
    if (dst) *dst = out;
    return ok;
}

/* ---- runs of the library ------------------------------------------------------------------ */

static attn_score_params sc_params(const sc_prob *P, const sview *par, const sview *mask)
{
    const sc_cfg *c = &P->c;
    attn_score_params a = attn_score_params_default(c->kind);
    const attn_tensor **slot[NP] = {&a.w_q, &a.w_k, &a.b, &a.v_a, &a.w, &a.g};
    for (int x = 0; x < NP; x++) *slot[x] = P->par[x] ? &par[x].t : NULL;
    a.masks.causal = c->causal;
    a.masks.align = (attn_align)c->align;
    a.masks.window_left = c->wl;
    a.masks.window_right = c->wr;
    a.masks.q_lens = P->qlens;
    a.masks.k_lens = P->klens;
    a.masks.mask = P->mask ? &mask->t : NULL;
    a.masks.dropout_p = c->p;
    a.masks.seed = c->seed * 7919u + 11u;
    a.masks.offset = c->seed % 7u;
    return a;
}

static void par_dims(const sc_prob *P, int x, int64_t d[4])
{
    d[0] = 1;
    d[1] = P->c.H;
    d[2] = P->pr[x];
    d[3] = P->pc[x];
}

/* Forward, backward (with every parameter gradient) and both weights, with
 * dtype dt on ctx, inputs and outputs in `layout`. */
static void sc_run(const sc_prob *P, attn_dtype dt, attn_ctx *ctx, int layout, sc_res *r)
{
    const sc_cfg *c = &P->c;
    memset(r, 0, sizeof *r);
    int64_t dq_[4] = {c->B, c->Sq, c->H, c->Dq}, dk_[4] = {c->B, c->Sk, c->H, c->Dk};
    int64_t dv_[4] = {c->B, c->Sk, c->H, c->Dv}, do_[4] = {c->B, c->Sq, c->H, c->Dv};
    int64_t dl_[4] = {c->B, c->H, c->Sq, 1}, dw_[4] = {c->B, c->H, c->Sq, c->Sk}, pd[4];
    sview q = sv_make(dq_, dt, layout), k = sv_make(dk_, dt, layout), v = sv_make(dv_, dt, layout);
    sview o = sv_make(do_, dt, layout), lse = sv_make(dl_, dt, layout), d_o = sv_make(do_, dt, layout);
    sview dq = sv_make(dq_, dt, layout), dk = sv_make(dk_, dt, layout), dv = sv_make(dv_, dt, layout);
    sview w = sv_make(dw_, dt, layout), wd = sv_make(dw_, dt, layout);
    sview mask = sv_make(P->mask ? P->mask_dim : dl_, ATTN_DTYPE_BOOL, 0), par[NP], dpar[NP];
    attn_tensor *gp[NP];
    sv_put(&q, P->q);
    sv_put(&k, P->k);
    sv_put(&v, P->v);
    sv_put(&d_o, P->dout);
    if (P->mask) memcpy(mask.t.data, P->mask, (size_t)t_numel(P->mask_dim));
    for (int x = 0; x < NP; x++) {
        par_dims(P, x, pd);
        par[x] = sv_make(pd, dt, layout);
        dpar[x] = sv_make(pd, dt, layout);
        if (P->par[x]) sv_put(&par[x], P->par[x]);
        gp[x] = P->par[x] ? &dpar[x].t : NULL;
    }
    attn_score_params a = sc_params(P, par, &mask);
    attn_score_grads g = {gp[P_WQ], gp[P_WK], gp[P_B], gp[P_VA], gp[P_W], gp[P_G]};
    r->status = attn_score_forward(ctx, &q.t, &k.t, &v.t, &a, &o.t, &lse.t);
    if (r->status == ATTN_OK)
        r->status = attn_score_backward(ctx, &q.t, &k.t, &v.t, &o.t, &d_o.t, &lse.t, &a, &dq.t, &dk.t, &dv.t, &g);
    if (r->status == ATTN_OK) r->status = attn_score_weights(ctx, &q.t, &k.t, &lse.t, &a, 0, &w.t);
    if (r->status == ATTN_OK) r->status = attn_score_weights(ctx, &q.t, &k.t, &lse.t, &a, 1, &wd.t);
    sview *in[] = {&q, &k, &v, &d_o, &mask}, *out[] = {&o, &lse, &dq, &dk, &dv, &w, &wd};
    double **dst[] = {&r->o, &r->lse, &r->dq, &r->dk, &r->dv, &r->w, &r->wd};
    bool ok = true;
    for (int x = 0; x < 5; x++) ok = sv_take(in[x], NULL) && ok;
    for (int x = 0; x < 7; x++) ok = sv_take(out[x], dst[x]) && ok;
    for (int x = 0; x < NP; x++) {
        ok = sv_take(&par[x], NULL) && ok;
        ok = sv_take(&dpar[x], P->par[x] ? &r->dpar[x] : NULL) && ok;
    }
    r->guards_ok = ok;
}

/* ---- naive float32 math: the baseline of the error rule --------------------------------------- */

/* Key j visible to query i: the mask rules written from the spec again. */
static bool sc_visible(const sc_prob *P, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const sc_cfg *c = &P->c;
    int64_t lq = P->qlens ? P->qlens[b] : c->Sq, lk = P->klens ? P->klens[b] : c->Sk;
    if (i >= lq || j >= lk) return false;
    int64_t ia = c->align ? i + lk - lq : i;
    if (c->causal && j > ia) return false;
    if (c->wl >= 0 && j < ia - c->wl) return false;
    if (c->wr >= 0 && j > ia + c->wr) return false;
    if (P->mask) {
        const int64_t *m = P->mask_dim;
        int64_t x = (((m[0] == 1 ? 0 : b) * m[1] + (m[1] == 1 ? 0 : h)) * m[2] + (m[2] == 1 ? 0 : i)) * m[3] +
                    (m[3] == 1 ? 0 : j);
        if (!P->mask[x]) return false;
    }
    return true;
}

static bool sc_tanh_kind(const sc_cfg *c)
{
    return c->kind == ATTN_SCORE_KIND_ADDITIVE || c->kind == ATTN_SCORE_KIND_LUONG_CONCAT;
}

static float parf(const sc_prob *P, int x, int64_t h, int64_t r, int64_t col)
{
    return (float)P->par[x][(h * P->pr[x] + r) * P->pc[x] + col];
}

/* Projection weights (feature f, input dim d): query side Wq (ADDITIVE) or
 * W[:, :Dq] (CONCAT); key side Wk, W[:, Dq:] or W (GENERAL). */
static float wq32(const sc_prob *P, int64_t h, int64_t f, int64_t d)
{
    return P->c.kind == ATTN_SCORE_KIND_ADDITIVE ? parf(P, P_WQ, h, f, d) : parf(P, P_W, h, f, d);
}

static float wk32(const sc_prob *P, int64_t h, int64_t f, int64_t d)
{
    if (P->c.kind == ATTN_SCORE_KIND_ADDITIVE) return parf(P, P_WK, h, f, d);
    return parf(P, P_W, h, f, P->c.kind == ATTN_SCORE_KIND_LUONG_CONCAT ? P->c.Dq + d : d);
}

static int64_t qi(const sc_cfg *c, int64_t b, int64_t i, int64_t h, int64_t D) { return ((b * c->Sq + i) * c->H + h) * D; }
static int64_t ki(const sc_cfg *c, int64_t b, int64_t j, int64_t h, int64_t D) { return ((b * c->Sk + j) * c->H + h) * D; }

/* Features of head (b, h) in float: fq [Sq][F], fk [Sk][F]. */
static void naive_features(const sc_prob *P, int64_t b, int64_t h, float *fq, float *fk)
{
    const sc_cfg *c = &P->c;
    bool th = sc_tanh_kind(c);
    int64_t F = th ? c->A : c->Dq;
    for (int64_t i = 0; i < c->Sq; i++)
        for (int64_t f = 0; f < F; f++) {
            float x = th ? 0.0f : (float)P->q[qi(c, b, i, h, c->Dq) + f];
            for (int64_t d = 0; th && d < c->Dq; d++) x += wq32(P, h, f, d) * (float)P->q[qi(c, b, i, h, c->Dq) + d];
            if (P->par[P_B]) x += parf(P, P_B, h, 0, f);
            fq[i * F + f] = x;
        }
    for (int64_t j = 0; j < c->Sk; j++)
        for (int64_t f = 0; f < F; f++) {
            bool dot = c->kind == ATTN_SCORE_KIND_SCALED_DOT;
            float x = dot ? (float)P->k[ki(c, b, j, h, c->Dk) + f] : 0.0f;
            for (int64_t d = 0; !dot && d < c->Dk; d++) x += wk32(P, h, f, d) * (float)P->k[ki(c, b, j, h, c->Dk) + d];
            fk[j * F + f] = x;
        }
}

static float naive_score(const sc_prob *P, int64_t h, const float *fq, const float *fk)
{
    const sc_cfg *c = &P->c;
    float s = 0.0f;
    if (sc_tanh_kind(c)) {
        for (int64_t a = 0; a < c->A; a++) s += parf(P, P_VA, h, 0, a) * tanhf(fq[a] + fk[a]);
        return s;
    }
    for (int64_t f = 0; f < c->Dq; f++) s += fq[f] * fk[f];
    return c->kind == ATTN_SCORE_KIND_SCALED_DOT ? parf(P, P_G, h, 0, 0) * s : s;
}

static float naive_drop(const sc_prob *P, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const sc_cfg *c = &P->c;
    if (c->p <= 0.0) return 1.0f;
    return attn_dropout_keep(c->seed * 7919u + 11u, c->seed % 7u, c->p, b, h, i, j, c->H)
               ? (float)(1.0 / (1.0 - c->p)) : 0.0f;
}

/* Forward of head (b, h): out, lse, weights; s becomes P (0 where masked). */
static void naive_forward(const sc_prob *P, int64_t b, int64_t h, const float *fq, const float *fk, float *s,
                          sc_res *r)
{
    const sc_cfg *c = &P->c;
    int64_t F = sc_tanh_kind(c) ? c->A : c->Dq;
    for (int64_t i = 0; i < c->Sq; i++) {
        float *row = s + i * c->Sk, mx = -INFINITY, l = 0.0f;
        bool any = false;
        for (int64_t j = 0; j < c->Sk; j++) {
            row[j] = sc_visible(P, b, h, i, j) ? naive_score(P, h, fq + i * F, fk + j * F) : -INFINITY;
            any |= row[j] != -INFINITY;
            if (row[j] > mx) mx = row[j];
        }
        for (int64_t j = 0; any && j < c->Sk; j++)
            if (row[j] != -INFINITY) l += expf(row[j] - mx);
        for (int64_t j = 0; j < c->Sk; j++) row[j] = row[j] == -INFINITY ? 0.0f : expf(row[j] - mx) / l;
        r->lse[(b * c->H + h) * c->Sq + i] = any ? (double)(mx + logf(l)) : -INFINITY;
        for (int64_t d = 0; d < c->Dv; d++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < c->Sk; j++)
                if (row[j] != 0.0f && naive_drop(P, b, h, i, j) != 0.0f)
                    acc += row[j] * naive_drop(P, b, h, i, j) * (float)P->v[ki(c, b, j, h, c->Dv) + d];
            r->o[qi(c, b, i, h, c->Dv) + d] = acc;
        }
        for (int64_t j = 0; j < c->Sk; j++) {
            int64_t x = ((b * c->H + h) * c->Sq + i) * c->Sk + j;
            r->w[x] = row[j];
            r->wd[x] = row[j] * (row[j] != 0.0f ? naive_drop(P, b, h, i, j) : 0.0f);
        }
    }
}

/* Float buffers of the naive backward of one head. */
typedef struct {
    float *fq, *fk, *s, *dfq, *dfk, *dv, *gpar[NP]; /* gpar: parameter gradients, summed over b */
} naive_bufs;

/* dS of head (b, h) into nb->s (which holds P), and dv:
 *   dv_j += P_ij f_ij dO_i;  dS_ij = P_ij (f_ij dO_i . v_j - dO_i . out_i) */
static void naive_softmax_backward(const sc_prob *P, int64_t b, int64_t h, naive_bufs *nb, const sc_res *r)
{
    const sc_cfg *c = &P->c;
    memset(nb->dv, 0, sizeof(float) * (size_t)(c->Sk * c->Dv));
    for (int64_t i = 0; i < c->Sq; i++) {
        float delta = 0.0f;
        for (int64_t d = 0; d < c->Dv; d++) delta += (float)P->dout[qi(c, b, i, h, c->Dv) + d] * (float)r->o[qi(c, b, i, h, c->Dv) + d];
        for (int64_t j = 0; j < c->Sk; j++) {
            float *pij = nb->s + i * c->Sk + j, f = naive_drop(P, b, h, i, j), dp = 0.0f;
            if (*pij == 0.0f) continue;
            for (int64_t d = 0; f != 0.0f && d < c->Dv; d++) {
                float g = (float)P->dout[qi(c, b, i, h, c->Dv) + d];
                nb->dv[j * c->Dv + d] += *pij * f * g;
                dp += g * (float)P->v[ki(c, b, j, h, c->Dv) + d];
            }
            *pij = *pij * (f * dp - delta);
        }
    }
}

/* Feature gradients from dS, and dv_a / dg. */
static void naive_feature_backward(const sc_prob *P, int64_t h, naive_bufs *nb)
{
    const sc_cfg *c = &P->c;
    int64_t F = sc_tanh_kind(c) ? c->A : c->Dq;
    float g = c->kind == ATTN_SCORE_KIND_SCALED_DOT ? parf(P, P_G, h, 0, 0) : 1.0f;
    memset(nb->dfq, 0, sizeof(float) * (size_t)(c->Sq * F));
    memset(nb->dfk, 0, sizeof(float) * (size_t)(c->Sk * F));
    for (int64_t i = 0; i < c->Sq; i++)
        for (int64_t j = 0; j < c->Sk; j++) {
            float ds = nb->s[i * c->Sk + j], *fq = nb->fq + i * F, *fk = nb->fk + j * F, dot = 0.0f;
            if (ds == 0.0f) continue;
            for (int64_t f = 0; f < F; f++) {
                if (sc_tanh_kind(c)) {
                    float t = tanhf(fq[f] + fk[f]), u = ds * parf(P, P_VA, h, 0, f) * (1.0f - t * t);
                    nb->dfq[i * F + f] += u;
                    nb->dfk[j * F + f] += u;
                    nb->gpar[P_VA][h * c->A + f] += ds * t;
                    continue;
                }
                nb->dfq[i * F + f] += g * ds * fk[f];
                nb->dfk[j * F + f] += g * ds * fq[f];
                dot += fq[f] * fk[f];
            }
            if (c->kind == ATTN_SCORE_KIND_SCALED_DOT) nb->gpar[P_G][h] += ds * dot;
        }
}

/* dq, dk, dv of head (b, h) and the projections' parameter gradients. */
static void naive_input_backward(const sc_prob *P, int64_t b, int64_t h, naive_bufs *nb, sc_res *r)
{
    const sc_cfg *c = &P->c;
    bool th = sc_tanh_kind(c), gen = c->kind == ATTN_SCORE_KIND_LUONG_GENERAL;
    int64_t F = th ? c->A : c->Dq, Cw = c->kind == ATTN_SCORE_KIND_LUONG_CONCAT ? c->Dq + c->Dk : c->Dk;
    int wslot = c->kind == ATTN_SCORE_KIND_ADDITIVE ? P_WK : P_W, kshift = c->kind == ATTN_SCORE_KIND_LUONG_CONCAT ? c->Dq : 0;
    for (int64_t i = 0; i < c->Sq; i++)
        for (int64_t d = 0; d < c->Dq; d++) {
            float x = th ? 0.0f : nb->dfq[i * F + d], qd = (float)P->q[qi(c, b, i, h, c->Dq) + d];
            for (int64_t f = 0; th && f < F; f++) {
                x += wq32(P, h, f, d) * nb->dfq[i * F + f];
                int slot = c->kind == ATTN_SCORE_KIND_ADDITIVE ? P_WQ : P_W;
                nb->gpar[slot][(h * P->pr[slot] + f) * P->pc[slot] + d] += nb->dfq[i * F + f] * qd;
                if (d == 0 && P->par[P_B]) nb->gpar[P_B][h * c->A + f] += nb->dfq[i * F + f];
            }
            r->dq[qi(c, b, i, h, c->Dq) + d] = x;
        }
    for (int64_t j = 0; j < c->Sk; j++) {
        for (int64_t d = 0; d < c->Dk; d++) {
            float x = th || gen ? 0.0f : nb->dfk[j * F + d], kd = (float)P->k[ki(c, b, j, h, c->Dk) + d];
            for (int64_t f = 0; (th || gen) && f < F; f++) {
                x += wk32(P, h, f, d) * nb->dfk[j * F + f];
                nb->gpar[wslot][(h * P->pr[wslot] + f) * Cw + kshift + d] += nb->dfk[j * F + f] * kd;
            }
            r->dk[ki(c, b, j, h, c->Dk) + d] = x;
        }
        for (int64_t d = 0; d < c->Dv; d++) r->dv[ki(c, b, j, h, c->Dv) + d] = nb->dv[j * c->Dv + d];
    }
}

static void naive32(const sc_prob *P, sc_res *r)
{
    const sc_cfg *c = &P->c;
    int64_t F = sc_tanh_kind(c) ? c->A : c->Dq;
    naive_bufs nb;
    memset(r, 0, sizeof *r);
    r->o = xcalloc(n_of(c, c->Sq, c->Dv), sizeof(double));
    r->lse = xcalloc(c->B * c->H * c->Sq, sizeof(double));
    r->dq = xcalloc(n_of(c, c->Sq, c->Dq), sizeof(double));
    r->dk = xcalloc(n_of(c, c->Sk, c->Dk), sizeof(double));
    r->dv = xcalloc(n_of(c, c->Sk, c->Dv), sizeof(double));
    r->w = xcalloc(c->B * c->H * c->Sq * c->Sk, sizeof(double));
    r->wd = xcalloc(c->B * c->H * c->Sq * c->Sk, sizeof(double));
    nb.fq = xcalloc(c->Sq * F, sizeof(float));
    nb.fk = xcalloc(c->Sk * F, sizeof(float));
    nb.s = xcalloc(c->Sq * c->Sk, sizeof(float));
    nb.dfq = xcalloc(c->Sq * F, sizeof(float));
    nb.dfk = xcalloc(c->Sk * F, sizeof(float));
    nb.dv = xcalloc(c->Sk * c->Dv, sizeof(float));
    for (int x = 0; x < NP; x++) nb.gpar[x] = xcalloc(c->H * P->pr[x] * P->pc[x], sizeof(float));
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++) {
            naive_features(P, b, h, nb.fq, nb.fk);
            naive_forward(P, b, h, nb.fq, nb.fk, nb.s, r);
            naive_softmax_backward(P, b, h, &nb, r);
            naive_feature_backward(P, h, &nb);
            naive_input_backward(P, b, h, &nb, r);
        }
    for (int x = 0; x < NP; x++) {
        if (P->par[x]) r->dpar[x] = xcalloc(c->H * P->pr[x] * P->pc[x], sizeof(double));
        for (int64_t e = 0; P->par[x] && e < c->H * P->pr[x] * P->pc[x]; e++) r->dpar[x][e] = nb.gpar[x][e];
        free(nb.gpar[x]);
    }
    free(nb.fq);
    free(nb.fk);
    free(nb.s);
    free(nb.dfq);
    free(nb.dfk);
    free(nb.dv);
    r->status = ATTN_OK;
    r->guards_ok = true;
}

/* ---- the random grid -------------------------------------------------------------------------- */

static sc_cfg sc_sample(uint64_t seed)
{
    /* around the chunk sizes: 32 query rows, 64 keys, 4 key-chunk groups */
    static const int64_t lens[] = {1, 2, 3, 5, 8, 13, 31, 32, 33, 47, 63, 64, 65, 100, 127, 128, 129, 191, 255, 256, 257};
    static const int64_t adims[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 33, 48};
    static const double drops[] = {0.0, 0.0, 0.17, 0.5};
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 7;
    sc_cfg c;
    memset(&c, 0, sizeof c);
    c.seed = seed;
    c.kind = (attn_score_kind)t_rand_int(&s, 1, 4);
    c.B = t_rand_int(&s, 1, 3);
    c.H = t_rand_int(&s, 0, 3) == 0 ? t_rand_int(&s, 2, 3) : 1;
    c.Sq = lens[t_rand_int(&s, 0, 20)];
    c.Sk = lens[t_rand_int(&s, 0, 20)];
    c.Dq = t_rand_int(&s, 1, 40);
    c.Dk = c.kind == ATTN_SCORE_KIND_SCALED_DOT ? c.Dq : t_rand_int(&s, 1, 40);
    c.Dv = t_rand_int(&s, 1, 40);
    c.A = adims[t_rand_int(&s, 0, 10)];
    c.has_b = t_rand_int(&s, 0, 1);
    c.causal = t_rand_int(&s, 0, 9) < 3;
    c.align = (int)t_rand_int(&s, 0, 1);
    c.wl = c.wr = -1;
    if (t_rand_int(&s, 0, 3) == 0) {
        c.wl = t_rand_int(&s, 0, c.Sk);
        c.wr = t_rand_int(&s, 0, 2) == 0 ? -1 : t_rand_int(&s, 0, c.Sk);
    }
    c.mask_kind = t_rand_int(&s, 0, 1) ? SM_NONE : (int)t_rand_int(&s, 1, SM_KINDS - 1);
    c.qlens = t_rand_int(&s, 0, 4) == 0;
    c.klens = t_rand_int(&s, 0, 9) < 3;
    c.p = drops[t_rand_int(&s, 0, 3)];
    c.layout = (int)t_rand_int(&s, 0, 2);
    c.threads = (int)t_rand_int(&s, 1, 3);
    /* bound the reference's cost: batch, heads, then dims */
    for (;;) {
        double F = sc_tanh_kind(&c) ? (double)c.A : (double)c.Dq;
        if ((double)(c.B * c.H * c.Sq * c.Sk) * (F + (double)c.Dv) <= 1.5e6) break;
        if (c.B > 1) c.B = 1;
        else if (c.H > 1) c.H = 1;
        else if (c.A > 8 || c.Dv > 8 || c.Dq > 8) {
            c.A = (c.A + 1) / 2;
            c.Dv = (c.Dv + 1) / 2;
            c.Dq = (c.Dq + 1) / 2;
            if (c.kind == ATTN_SCORE_KIND_SCALED_DOT) c.Dk = c.Dq;
        } else break;
    }
    return c;
}

static struct {
    long configs, failures;
    double worst_fwd, worst_grad, worst_ratio;
} gs;

/* The error rule of docs/testing.md for one output: e_impl <= k e_base + floor, and an
 * absolute bound, both relative to max(1, max|ref|). */
static bool sc_rule(const char *what, const double *impl, const double *base, const double *ref, int64_t n,
                    double k, double floor_rel, double abs_rel, bool grad)
{
    double scale = fmax(1.0, t_max_abs(ref, n));
    double e = t_max_err(impl, ref, n), eb = t_max_err(base, ref, n);
    double allowed = fmin(k * eb + floor_rel * scale, abs_rel * scale);
    double *worst = grad ? &gs.worst_grad : &gs.worst_fwd;
    if (e / scale > *worst) *worst = e / scale;
    if (allowed > 0 && e / allowed > gs.worst_ratio) gs.worst_ratio = e / allowed;
    if (e <= allowed) return true;
    fprintf(stderr, "    %s: e_impl %.3g > allowed %.3g (e_base %.3g, max|ref| %.3g)\n", what, e, allowed, eb, scale);
    return false;
}

/* Every output of path r against ref64 under the rule. */
static bool sc_compare(const char *path, const sc_prob *P, const sc_res *r, const sc_res *base, const sc_res *ref)
{
    static const char *pn[NP] = {"dWq", "dWk", "db", "dv_a", "dW", "dg"};
    const sc_cfg *c = &P->c;
    int64_t no = n_of(c, c->Sq, c->Dv), nl = c->B * c->H * c->Sq, nw = nl * c->Sk;
    double F = sc_tanh_kind(c) ? (double)c->A : 1.0;
    double tq = sqrt((double)c->Sk * F), tk = sqrt((double)c->Sq * F), tp = sqrt((double)(c->B * c->Sq * c->Sk));
    char w[64];
    bool ok = true;
#define RULE(name, field, n, kk, fl, ab, g)                                                   \
    do {                                                                                      \
        snprintf(w, sizeof w, "%s %s", path, name);                                           \
        ok &= sc_rule(w, r->field, base->field, ref->field, n, kk, fl, ab, g);                \
    } while (0)
    RULE("out", o, no, 2.0, 2e-6, 1e-4, false);
    RULE("lse", lse, nl, 2.0, 2e-6, 1e-4, false);
    RULE("weights", w, nw, 2.0, 2e-6, 1e-4, false);
    RULE("weights+dropout", wd, nw, 2.0, 2e-6, 1e-4, false);
    RULE("dq", dq, n_of(c, c->Sq, c->Dq), 3.0, 1e-5 * tq, 1e-3 * tq, true);
    RULE("dk", dk, n_of(c, c->Sk, c->Dk), 3.0, 1e-5 * tk, 1e-3 * tk, true);
    RULE("dv", dv, n_of(c, c->Sk, c->Dv), 3.0, 1e-5 * tk, 1e-3 * tk, true);
    for (int x = 0; x < NP; x++)
        if (P->par[x]) RULE(pn[x], dpar[x], c->H * P->pr[x] * P->pc[x], 3.0, 1e-5 * tp * F, 1e-3 * tp * F, true);
#undef RULE
    return ok;
}

static bool same_bits(const double *a, const double *b, int64_t n)
{
    return n == 0 || memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

/* True if every output of a and b is bitwise the same; else names the first
 * that differs on stderr. */
static bool sc_identical(const sc_prob *P, const sc_res *a, const sc_res *b)
{
    const sc_cfg *c = &P->c;
    int64_t nl = c->B * c->H * c->Sq;
    const char *names[7 + NP] = {"out", "lse", "dq", "dk", "dv", "weights", "weights+dropout",
                                 "dWq", "dWk", "db", "dv_a", "dW", "dg"};
    const double *pa[7 + NP] = {a->o, a->lse, a->dq, a->dk, a->dv, a->w, a->wd};
    const double *pb[7 + NP] = {b->o, b->lse, b->dq, b->dk, b->dv, b->w, b->wd};
    int64_t n[7 + NP] = {n_of(c, c->Sq, c->Dv), nl, n_of(c, c->Sq, c->Dq), n_of(c, c->Sk, c->Dk),
                         n_of(c, c->Sk, c->Dv), nl * c->Sk, nl * c->Sk};
    for (int x = 0; x < NP; x++) {
        pa[7 + x] = a->dpar[x];
        pb[7 + x] = b->dpar[x];
        n[7 + x] = P->par[x] ? c->H * P->pr[x] * P->pc[x] : 0;
    }
    for (int x = 0; x < 7 + NP; x++)
        if (!same_bits(pa[x], pb[x], n[x])) {
            fprintf(stderr, "    %s differs\n", names[x]);
            return false;
        }
    return true;
}

static void run_path(const sc_prob *P, attn_dtype dt, attn_kernel kernel, int threads, int layout, sc_res *r)
{
    attn_ctx *ctx = t_ctx(threads);
    attn_ctx_set_kernel(ctx, kernel);
    sc_run(P, dt, ctx, layout, r);
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
}

static bool sc_config(const sc_cfg *c)
{
    sc_prob P;
    sc_make(&P, c);
    sc_res ref, base, r[3], other;
    static const attn_kernel kernels[3] = {ATTN_KERNEL_AUTO, ATTN_KERNEL_TILED, ATTN_KERNEL_REF};
    static const char *names[3] = {"f32", "f32-tiled", "f32-ref"};
    run_path(&P, ATTN_DTYPE_F64, ATTN_KERNEL_AUTO, c->threads, 0, &ref);
    naive32(&P, &base);
    bool ok = ref.status == ATTN_OK && ref.guards_ok;
    for (int x = 0; x < 3; x++) {
        memset(&r[x], 0, sizeof r[x]);
        if (x == 1 && sc_tanh_kind(c)) continue; /* the chunked kernel either way */
        run_path(&P, ATTN_DTYPE_F32, kernels[x], c->threads, c->layout, &r[x]);
        if (r[x].status != ATTN_OK || !r[x].guards_ok) {
            fprintf(stderr, "    %s: status %s (%s), guards %s\n", names[x], attn_status_name(r[x].status),
                    attn_last_error(), r[x].guards_ok ? "ok" : "BROKEN");
            ok = false;
        }
    }
    for (int x = 0; ok && x < 3; x++)
        if (r[x].o != NULL) ok &= sc_compare(names[x], &P, &r[x], &base, &ref);
    if (ok) { /* bitwise the same on another thread count, contiguous */
        run_path(&P, ATTN_DTYPE_F32, ATTN_KERNEL_AUTO, c->threads == 1 ? 3 : 1, 0, &other);
        if (!sc_identical(&P, &r[0], &other)) {
            fprintf(stderr, "    f32: results differ across thread counts / layouts\n");
            ok = false;
        }
        res_free(&other);
    }
    res_free(&ref);
    res_free(&base);
    for (int x = 0; x < 3; x++) res_free(&r[x]);
    sc_free(&P);
    return ok;
}

void test_score_grid_vs_ref64(void)
{
    long n = t_configs / 4 > 20 ? t_configs / 4 : 20;
    memset(&gs, 0, sizeof gs);
    for (long x = 0; x < n; x++) {
        if (!t_mine(x)) continue;
        uint64_t seed = t_only_seed >= 0 ? (uint64_t)t_only_seed : 7000 + (uint64_t)x;
        sc_cfg c = sc_sample(seed);
        if (t_verbose) {
            sc_print(&c, stdout);
            printf("\n");
        }
        t_checks++;
        gs.configs++;
        if (!sc_config(&c)) {
            gs.failures++;
            t_fail(__FILE__, __LINE__, "config failed; reproduce: attn_tests --seed %llu score_grid_vs_ref64",
                   (unsigned long long)seed);
            fprintf(stderr, "    ");
            sc_print(&c, stderr);
            fprintf(stderr, "\n");
        }
        if (t_only_seed >= 0) break;
    }
    printf("  score_grid_vs_ref64: %ld configs, %ld failed; worst error / max(1,|ref|): forward %.3g, "
           "gradients %.3g; worst e_impl/allowed %.3f\n", gs.configs, gs.failures, gs.worst_fwd,
           gs.worst_grad, gs.worst_ratio);
}

/* ---- the reference, by hand and against the core --------------------------------------------- */

static sc_cfg tiny_cfg(attn_score_kind kind, uint64_t seed)
{
    sc_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.B = 1; c.Sq = 1; c.Sk = 2; c.H = 1; c.Dq = 1; c.Dk = 1; c.Dv = 1; c.A = 1;
    c.wl = c.wr = -1;
    c.threads = 2;
    c.seed = seed;
    return c;
}

/* ADDITIVE with one query, two keys and scalar dims, against the closed form:
 *   x_j = Wq q + b + Wk k_j, t_j = tanh(x_j), s_j = v_a t_j, p = softmax(s)
 *   out = sum p_j v_j;  dS_j = p_j (v_j - out) for dout = 1, u_j = dS_j v_a (1 - t_j^2)
 *   dq = Wq sum u, dk_j = Wk u_j, dv_j = p_j, dWq = q sum u, db = sum u,
 *   dWk = sum u_j k_j, dv_a = sum dS_j t_j */
static void hand_additive(attn_dtype dt, attn_kernel kernel, double tol)
{
    sc_cfg c = tiny_cfg(ATTN_SCORE_KIND_ADDITIVE, 1);
    c.has_b = true;
    sc_prob P;
    sc_make(&P, &c);
    double q = 1.0, k[2] = {0.5, -1.0}, v[2] = {3.0, -2.0}, wq = 0.5, wk = -1.0, b = 0.25, va = 2.0;
    P.q[0] = q; P.k[0] = k[0]; P.k[1] = k[1]; P.v[0] = v[0]; P.v[1] = v[1]; P.dout[0] = 1.0;
    P.par[P_WQ][0] = wq; P.par[P_WK][0] = wk; P.par[P_B][0] = b; P.par[P_VA][0] = va;
    double t[2], s[2], p[2], u[2], ds[2];
    for (int j = 0; j < 2; j++) {
        t[j] = tanh(wq * q + b + wk * k[j]);
        s[j] = va * t[j];
    }
    double lse = log(exp(s[0]) + exp(s[1])), out = 0.0, su = 0.0, suk = 0.0, sdt = 0.0;
    for (int j = 0; j < 2; j++) {
        p[j] = exp(s[j] - lse);
        out += p[j] * v[j];
    }
    for (int j = 0; j < 2; j++) {
        ds[j] = p[j] * (v[j] - out);
        u[j] = ds[j] * va * (1.0 - t[j] * t[j]);
        su += u[j];
        suk += u[j] * k[j];
        sdt += ds[j] * t[j];
    }
    sc_res r;
    run_path(&P, dt, kernel, 2, 0, &r);
    T_EQ_STATUS(r.status, ATTN_OK);
    double got[] = {r.o[0], r.lse[0], r.dq[0], r.dk[0], r.dk[1], r.dv[0], r.dv[1], r.dpar[P_WQ][0],
                    r.dpar[P_B][0], r.dpar[P_WK][0], r.dpar[P_VA][0], r.w[0], r.w[1]};
    double want[] = {out, lse, wq * su, wk * u[0], wk * u[1], p[0], p[1], q * su, su, suk, sdt, p[0], p[1]};
    for (size_t x = 0; x < sizeof want / sizeof want[0]; x++) T_LE(fabs(got[x] - want[x]), tol);
    res_free(&r);
    sc_free(&P);
}

/* One visible key: out = v exactly and every other gradient is 0. */
static void hand_one_key(attn_score_kind kind)
{
    sc_cfg c = tiny_cfg(kind, 2);
    c.Sq = 3; c.Sk = 1; c.Dq = 3; c.Dk = kind == ATTN_SCORE_KIND_SCALED_DOT ? 3 : 2; c.Dv = 2; c.A = 4; c.B = 2;
    c.has_b = kind == ATTN_SCORE_KIND_ADDITIVE;
    sc_prob P;
    sc_make(&P, &c);
    sc_res r;
    run_path(&P, ATTN_DTYPE_F64, ATTN_KERNEL_AUTO, 2, 0, &r);
    T_EQ_STATUS(r.status, ATTN_OK);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t i = 0; i < 3; i++)
            for (int64_t d = 0; d < 2; d++) T_CHECK(r.o[(b * 3 + i) * 2 + d] == P.v[b * 2 + d]);
    T_CHECK(t_max_abs(r.dq, n_of(&c, 3, c.Dq)) == 0.0 && t_max_abs(r.dk, n_of(&c, 1, c.Dk)) == 0.0);
    for (int x = 0; x < NP; x++)
        if (P.par[x]) T_CHECK(t_max_abs(r.dpar[x], c.H * P.pr[x] * P.pc[x]) == 0.0);
    res_free(&r);
    sc_free(&P);
}

/* LUONG_CONCAT is ADDITIVE with Wq, Wk the column blocks of W and no bias:
 * bitwise the same results on every path, dW's blocks = dWq, dWk. */
static void concat_is_additive(attn_dtype dt, attn_kernel kernel)
{
    sc_cfg c = sc_sample(31);
    c.kind = ATTN_SCORE_KIND_LUONG_CONCAT;
    c.B = 2; c.Sq = 33; c.Sk = 70; c.H = 2; c.Dq = 5; c.Dk = 3; c.Dv = 4; c.A = 6; c.p = 0.17; c.causal = 1;
    sc_prob Pc, Pa;
    sc_make(&Pc, &c);
    c.kind = ATTN_SCORE_KIND_ADDITIVE;
    c.has_b = false;
    sc_make(&Pa, &c);
    for (int64_t h = 0; h < c.H; h++)
        for (int64_t a = 0; a < c.A; a++) {
            for (int64_t d = 0; d < c.Dq; d++) Pa.par[P_WQ][(h * c.A + a) * c.Dq + d] = Pc.par[P_W][(h * c.A + a) * 8 + d];
            for (int64_t d = 0; d < c.Dk; d++) Pa.par[P_WK][(h * c.A + a) * c.Dk + d] = Pc.par[P_W][(h * c.A + a) * 8 + 5 + d];
            Pa.par[P_VA][h * c.A + a] = Pc.par[P_VA][h * c.A + a];
        }
    sc_res rc, ra;
    run_path(&Pc, dt, kernel, 3, 0, &rc);
    run_path(&Pa, dt, kernel, 3, 0, &ra);
    T_EQ_STATUS(rc.status, ATTN_OK);
    T_EQ_STATUS(ra.status, ATTN_OK);
    T_CHECK(same_bits(rc.dpar[P_VA], ra.dpar[P_VA], c.H * c.A));
    T_CHECK(same_bits(rc.o, ra.o, n_of(&c, c.Sq, c.Dv)) && same_bits(rc.dq, ra.dq, n_of(&c, c.Sq, c.Dq)));
    T_CHECK(same_bits(rc.dk, ra.dk, n_of(&c, c.Sk, c.Dk)) && same_bits(rc.lse, ra.lse, c.B * c.H * c.Sq));
    bool same = true;
    for (int64_t h = 0; h < c.H; h++)
        for (int64_t a = 0; a < c.A; a++) {
            for (int64_t d = 0; d < c.Dq; d++)
                same &= rc.dpar[P_W][(h * c.A + a) * 8 + d] == ra.dpar[P_WQ][(h * c.A + a) * c.Dq + d];
            for (int64_t d = 0; d < c.Dk; d++)
                same &= rc.dpar[P_W][(h * c.A + a) * 8 + 5 + d] == ra.dpar[P_WK][(h * c.A + a) * c.Dk + d];
        }
    T_CHECK(same);
    res_free(&rc);
    res_free(&ra);
    sc_free(&Pc);
    sc_free(&Pa);
}

static double rel_err(const double *a, const double *b, int64_t n)
{
    return t_max_err(a, b, n) / fmax(1.0, t_max_abs(b, n));
}

/* SCALED_DOT is the core's attention with scale g, and dg = sum_i q_i . dq_i / g;
 * LUONG_GENERAL is the core's attention on k' = W k (scale 1), with
 * dk = W^T dk' and dW = sum_j dk'_j k_j^T. Float64, one head. */
static void core_agrees(attn_score_kind kind)
{
    sc_cfg c = tiny_cfg(kind, 40 + (uint64_t)kind);
    c.B = 2; c.Sq = 9; c.Sk = 13; c.Dq = 6; c.Dk = kind == ATTN_SCORE_KIND_SCALED_DOT ? 6 : 4; c.Dv = 5;
    c.causal = 1; c.align = ATTN_ALIGN_BOTTOM_RIGHT; c.p = 0.17; c.klens = true;
    sc_prob P;
    sc_make(&P, &c);
    bool gen = kind == ATTN_SCORE_KIND_LUONG_GENERAL;
    double g = gen ? 1.0 : P.par[P_G][0], *kp = xcalloc(c.B * c.Sk * c.Dq, sizeof(double));
    for (int64_t x = 0; gen && x < c.B * c.Sk; x++) /* k' = W k */
        for (int64_t f = 0; f < c.Dq; f++)
            for (int64_t d = 0; d < c.Dk; d++) kp[x * c.Dq + f] += P.par[P_W][f * c.Dk + d] * P.k[x * c.Dk + d];
    int64_t no = n_of(&c, c.Sq, c.Dv), nq = n_of(&c, c.Sq, c.Dq), nk = n_of(&c, c.Sk, c.Dq), nv = n_of(&c, c.Sk, c.Dv);
    double *o = xcalloc(no, 8), *lse = xcalloc(c.B * c.Sq, 8), *dq = xcalloc(nq, 8), *dk = xcalloc(nk, 8);
    double *dv = xcalloc(nv, 8);
    attn_tensor tq = attn_tensor_make(P.q, ATTN_DTYPE_F64, c.B, c.Sq, 1, c.Dq);
    attn_tensor tk = attn_tensor_make(gen ? kp : P.k, ATTN_DTYPE_F64, c.B, c.Sk, 1, c.Dq);
    attn_tensor tv = attn_tensor_make(P.v, ATTN_DTYPE_F64, c.B, c.Sk, 1, c.Dv), to = attn_tensor_make(o, ATTN_DTYPE_F64, c.B, c.Sq, 1, c.Dv);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F64, c.B, 1, c.Sq, 1), tdo = attn_tensor_make(P.dout, ATTN_DTYPE_F64, c.B, c.Sq, 1, c.Dv);
    attn_tensor tdq = attn_tensor_make(dq, ATTN_DTYPE_F64, c.B, c.Sq, 1, c.Dq), tdk = attn_tensor_make(dk, ATTN_DTYPE_F64, c.B, c.Sk, 1, c.Dq);
    attn_tensor tdv = attn_tensor_make(dv, ATTN_DTYPE_F64, c.B, c.Sk, 1, c.Dv);
    attn_sdpa_params a = sc_params(&P, NULL, NULL).masks;
    a.has_scale = 1;
    a.scale = g;
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(2), &tq, &tk, &tv, &a, &to, &tl), ATTN_OK);
    T_EQ_STATUS(attn_sdpa_backward(t_ctx(2), &tq, &tk, &tv, &to, &tdo, &tl, &a, &tdq, &tdk, &tdv, NULL), ATTN_OK);
    sc_res r;
    run_path(&P, ATTN_DTYPE_F64, ATTN_KERNEL_AUTO, 2, 0, &r);
    T_LE(rel_err(r.o, o, no), 1e-13);
    T_LE(rel_err(r.lse, lse, c.B * c.Sq), 1e-13);
    T_LE(rel_err(r.dq, dq, nq), 1e-13);
    T_LE(rel_err(r.dv, dv, nv), 1e-13);
    double *want = xcalloc(gen ? c.Dq * c.Dk : 1, sizeof(double)), *dkk = xcalloc(n_of(&c, c.Sk, c.Dk), 8);
    for (int64_t x = 0; !gen && x < nq; x++) want[0] += P.q[x] * dq[x] / g;
    for (int64_t x = 0; gen && x < c.B * c.Sk; x++) /* dk = W^T dk', dW = sum dk' k^T */
        for (int64_t f = 0; f < c.Dq; f++)
            for (int64_t d = 0; d < c.Dk; d++) {
                dkk[x * c.Dk + d] += P.par[P_W][f * c.Dk + d] * dk[x * c.Dq + f];
                want[f * c.Dk + d] += dk[x * c.Dq + f] * P.k[x * c.Dk + d];
            }
    T_LE(rel_err(r.dk, gen ? dkk : dk, n_of(&c, c.Sk, c.Dk)), 1e-13);
    T_LE(rel_err(r.dpar[gen ? P_W : P_G], want, gen ? c.Dq * c.Dk : 1), 1e-12);
    free(want);
    free(dkk);
    free(kp);
    free(o);
    free(lse);
    free(dq);
    free(dk);
    free(dv);
    res_free(&r);
    sc_free(&P);
}

void test_score_hand_computed(void)
{
    hand_additive(ATTN_DTYPE_F64, ATTN_KERNEL_AUTO, 1e-15);
    hand_additive(ATTN_DTYPE_F32, ATTN_KERNEL_AUTO, 2e-6);
    hand_additive(ATTN_DTYPE_F32, ATTN_KERNEL_REF, 2e-6);
    for (int kind = 1; kind <= 4; kind++) hand_one_key((attn_score_kind)kind);
    concat_is_additive(ATTN_DTYPE_F64, ATTN_KERNEL_AUTO);
    concat_is_additive(ATTN_DTYPE_F32, ATTN_KERNEL_AUTO);
    core_agrees(ATTN_SCORE_KIND_SCALED_DOT);
    core_agrees(ATTN_SCORE_KIND_LUONG_GENERAL);
}

/* ---- finite differences of the reference ---------------------------------------------------- */

static double fd_loss(const sc_prob *P)
{
    sc_res r;
    run_path(P, ATTN_DTYPE_F64, ATTN_KERNEL_AUTO, 1, 0, &r);
    double L = 0.0;
    for (int64_t e = 0; e < n_of(&P->c, P->c.Sq, P->c.Dv); e++) L += r.o[e] * P->dout[e];
    res_free(&r);
    return L;
}

/* Central differences of L = sum(out * dout) in every element of x. */
static void fd_check(sc_prob *P, double *x, int64_t n, const double *grad, const char *what)
{
    const double h = 1e-6;
    double worst = 0.0;
    for (int64_t e = 0; e < n; e++) {
        double keep = x[e];
        x[e] = keep + h;
        double lp = fd_loss(P);
        x[e] = keep - h;
        double lm = fd_loss(P);
        x[e] = keep;
        double err = fabs((lp - lm) / (2 * h) - grad[e]) / fmax(1.0, fabs(grad[e]));
        if (!(err <= worst)) worst = err;
    }
    t_checks++;
    if (!(worst <= 1e-7))
        t_fail(__FILE__, __LINE__, "kind %d %s: finite differences differ by %.3g", (int)P->c.kind, what, worst);
}

void test_score_ref_finite_difference(void)
{
    static const char *pn[NP] = {"w_q", "w_k", "b", "v_a", "w", "g"};
    for (int kind = 1; kind <= 4; kind++) {
        sc_cfg c = tiny_cfg((attn_score_kind)kind, 60 + (uint64_t)kind);
        c.B = 2; c.Sq = 5; c.Sk = 7; c.H = 2; c.Dq = 3; c.Dk = kind == ATTN_SCORE_KIND_SCALED_DOT ? 3 : 4;
        c.Dv = 3; c.A = 5; c.has_b = true; c.mask_kind = SM_FULL; c.klens = c.qlens = true; c.p = 0.3;
        c.wl = 3; c.wr = 2; c.align = kind % 2;
        sc_prob P;
        sc_make(&P, &c);
        P.klens[0] = 6;
        P.qlens[1] = 4;
        sc_res r;
        run_path(&P, ATTN_DTYPE_F64, ATTN_KERNEL_AUTO, 1, 0, &r);
        T_EQ_STATUS(r.status, ATTN_OK);
        T_CHECK(t_max_abs(r.dk, n_of(&c, c.Sk, c.Dk)) > 0.0); /* something to check */
        fd_check(&P, P.q, n_of(&c, c.Sq, c.Dq), r.dq, "q");
        fd_check(&P, P.k, n_of(&c, c.Sk, c.Dk), r.dk, "k");
        fd_check(&P, P.v, n_of(&c, c.Sk, c.Dv), r.dv, "v");
        for (int x = 0; x < NP; x++)
            if (P.par[x]) fd_check(&P, P.par[x], c.H * P.pr[x] * P.pc[x], r.dpar[x], pn[x]);
        res_free(&r);
        sc_free(&P);
    }
}

/* ---- exact contracts ------------------------------------------------------------------------- */

enum { PATH_F64, PATH_F32, PATH_REF32, PATH_TILED, N_PATHS };
static const char *const path_name[N_PATHS] = {"f64", "f32", "f32-ref", "f32-tiled"};

static void run_on(const sc_prob *P, int path, int threads, sc_res *r)
{
    static const attn_kernel kern[N_PATHS] = {ATTN_KERNEL_AUTO, ATTN_KERNEL_AUTO, ATTN_KERNEL_REF, ATTN_KERNEL_TILED};
    run_path(P, path == PATH_F64 ? ATTN_DTYPE_F64 : ATTN_DTYPE_F32, kern[path], threads, 0, r);
    T_EQ_STATUS(r->status, ATTN_OK);
    T_CHECK(r->guards_ok);
}

static bool no_nan(const double *x, int64_t n)
{
    for (int64_t e = 0; e < n; e++)
        if (isnan(x[e])) return false;
    return true;
}

static bool all_zero(const double *x, int64_t n)
{
    for (int64_t e = 0; e < n; e++)
        if (x[e] != 0.0) return false;
    return true;
}

static bool par_grads_zero(const sc_prob *P, const sc_res *r)
{
    bool ok = true;
    for (int x = 0; x < NP; x++) ok &= !P->par[x] || all_zero(r->dpar[x], P->c.H * P->pr[x] * P->pc[x]);
    return ok;
}

static sc_cfg contract_cfg(attn_score_kind kind, uint64_t seed)
{
    sc_cfg c = tiny_cfg(kind, seed);
    c.B = 2; c.Sq = 37; c.Sk = 70; c.H = 2; c.Dq = 5; c.Dk = kind == ATTN_SCORE_KIND_SCALED_DOT ? 5 : 4;
    c.Dv = 3; c.A = 6; c.has_b = true; c.p = 0.17;
    return c;
}

/* 1. A row with no visible key, by every kind of mask: out 0, LSE -inf,
 * dq 0, weights 0, no NaN anywhere. */
void test_score_contract_masked_rows(void)
{
    for (int kind = 1; kind <= 4; kind++)
        for (int way = 0; way < 6; way++) {
            sc_cfg c = contract_cfg((attn_score_kind)kind, 100 + (uint64_t)(kind * 10 + way));
            int64_t db = 0, di = 5; /* a dead row */
            if (way <= 1) { c.Sq = 70; c.Sk = 37; }
            if (way == 0) { c.causal = 1; c.align = ATTN_ALIGN_BOTTOM_RIGHT; }
            if (way == 1) { c.wl = c.wr = 0; di = 50; }
            if (way == 2) c.klens = true;
            if (way == 3) { c.qlens = true; db = 1; di = 30; }
            if (way == 4) c.mask_kind = SM_FULL;
            if (way == 5) c.Sk = 0;
            sc_prob P;
            sc_make(&P, &c);
            if (way == 2) { P.klens[0] = 0; P.klens[1] = 3; }
            if (way == 3) { P.qlens[0] = 0; P.qlens[1] = 20; }
            for (int64_t h = 0; way == 4 && h < c.H; h++)
                for (int64_t j = 0; j < c.Sk; j++) P.mask[((db * c.H + h) * c.Sq + di) * c.Sk + j] = 0;
            for (int path = 0; path < N_PATHS; path++) {
                sc_res r;
                run_on(&P, path, 2, &r);
                bool ok = true;
                for (int64_t h = 0; h < c.H; h++) {
                    ok &= all_zero(r.o + qi(&c, db, di, h, c.Dv), c.Dv) && all_zero(r.dq + qi(&c, db, di, h, c.Dq), c.Dq);
                    ok &= r.lse[(db * c.H + h) * c.Sq + di] == -INFINITY;
                    ok &= all_zero(r.w + ((db * c.H + h) * c.Sq + di) * c.Sk, c.Sk);
                }
                ok &= no_nan(r.o, n_of(&c, c.Sq, c.Dv)) && no_nan(r.dq, n_of(&c, c.Sq, c.Dq)) &&
                      no_nan(r.dk, n_of(&c, c.Sk, c.Dk)) && no_nan(r.dv, n_of(&c, c.Sk, c.Dv)) &&
                      no_nan(r.w, c.B * c.H * c.Sq * c.Sk) && no_nan(r.lse, c.B * c.H * c.Sq);
                for (int x = 0; x < NP; x++) ok &= !P.par[x] || no_nan(r.dpar[x], c.H * P.pr[x] * P.pc[x]);
                if (way == 5) ok &= par_grads_zero(&P, &r);
                t_checks++;
                if (!ok) t_fail(__FILE__, __LINE__, "kind %d, masking way %d, %s: dead row not 0 / NaN", kind, way, path_name[path]);
                res_free(&r);
            }
            sc_free(&P);
        }
}

static void plant_nan(double *x, int64_t off, int64_t n)
{
    for (int64_t e = 0; e < n; e++) x[off + e] = NAN;
}

/* NaN into the keys of b no query may see (k and v), the v of keys dropped
 * for every query, and (pad_q) the padding query rows of q and dout. */
static void plant_masked(sc_prob *P, const sc_prob *clean, bool pad_q)
{
    const sc_cfg *c = &P->c;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++) {
            for (int64_t j = 0; j < c->Sk; j++) {
                bool masked = clean->klens && (j >= clean->klens[b] || clean->mask[b * c->Sk + j] == 0);
                bool dropped = c->Sq == 1 && !attn_dropout_keep(c->seed * 7919u + 11u, c->seed % 7u, c->p, b, h, 0, j, c->H);
                if (masked) plant_nan(P->k, ki(c, b, j, h, c->Dk), c->Dk);
                if (masked || dropped) plant_nan(P->v, ki(c, b, j, h, c->Dv), c->Dv);
            }
            for (int64_t i = clean->qlens ? clean->qlens[b] : c->Sq; pad_q && i < c->Sq; i++) {
                plant_nan(P->q, qi(c, b, i, h, c->Dq), c->Dq);
                plant_nan(P->dout, qi(c, b, i, h, c->Dv), c->Dv);
            }
        }
}

/* 2. NaN in masked keys (k, v), in the v of dropped keys and in padding
 * query rows (q, dout) changes nothing, bitwise. Padding query rows are not
 * planted where the core's AVX2 backward runs (dot kinds, f32): it reads
 * them (a NaN there reaches dK), which the core's contract does not cover. */
void test_score_contract_masked_never_read(void)
{
    for (int kind = 1; kind <= 4; kind++)
        for (int part = 0; part < 2; part++) {
            sc_cfg c = contract_cfg((attn_score_kind)kind, 200 + (uint64_t)kind);
            if (part == 0) { c.Sq = 40; c.Sk = 75; c.qlens = c.klens = true; c.mask_kind = SM_KEYS; }
            else { c.Sq = 1; c.H = 1; c.p = 0.5; }
            sc_prob clean, dirty[2];
            sc_make(&clean, &c);
            if (part == 0) {
                clean.klens[0] = 60; clean.klens[1] = 33; clean.qlens[0] = 37; clean.qlens[1] = 21;
            }
            for (int pad_q = 0; pad_q < 2; pad_q++) {
                sc_make(&dirty[pad_q], &c);
                if (part == 0) memcpy(dirty[pad_q].klens, clean.klens, 2 * sizeof(int64_t));
                if (part == 0) memcpy(dirty[pad_q].qlens, clean.qlens, 2 * sizeof(int64_t));
                plant_masked(&dirty[pad_q], &clean, pad_q);
            }
            for (int path = 0; path < N_PATHS; path++) {
                bool core_avx2 = path == PATH_F32 && !sc_tanh_kind(&c);
                sc_res a, b;
                run_on(&clean, path, 3, &a);
                run_on(&dirty[!core_avx2], path, 3, &b);
                t_checks++;
                if (!sc_identical(&clean, &a, &b) || !no_nan(a.o, n_of(&c, c.Sq, c.Dv)))
                    t_fail(__FILE__, __LINE__, "kind %d part %d %s: NaN in masked inputs changed a result", kind, part,
                           path_name[path]);
                res_free(&a);
                res_free(&b);
            }
            sc_free(&clean);
            sc_free(&dirty[0]);
            sc_free(&dirty[1]);
        }
}

/* 6. Empty sizes: B, H, Sq or Sk = 0 succeed; what exists is 0 (and LSE -inf). */
void test_score_contract_sizes(void)
{
    for (int kind = 1; kind <= 4; kind++)
        for (int which = 0; which < 4; which++) {
            sc_cfg c = contract_cfg((attn_score_kind)kind, 300);
            if (which == 0) c.B = 0;
            if (which == 1) c.H = 0;
            if (which == 2) c.Sq = 0;
            if (which == 3) c.Sk = 0;
            sc_prob P;
            sc_make(&P, &c);
            for (int path = 0; path < N_PATHS; path++) {
                sc_res r;
                run_on(&P, path, 2, &r);
                T_CHECK(par_grads_zero(&P, &r));
                T_CHECK(all_zero(r.dk, n_of(&c, c.Sk, c.Dk)) == (which != 3 ? c.Sq == 0 || c.B == 0 || c.H == 0 : true));
                T_CHECK(all_zero(r.dv, n_of(&c, c.Sk, c.Dv)) == (which != 3 ? c.Sq == 0 || c.B == 0 || c.H == 0 : true));
                if (which == 3) {
                    T_CHECK(all_zero(r.o, n_of(&c, c.Sq, c.Dv)) && all_zero(r.dq, n_of(&c, c.Sq, c.Dq)));
                    T_CHECK(r.lse[0] == -INFINITY && r.lse[c.B * c.H * c.Sq - 1] == -INFINITY);
                }
                res_free(&r);
            }
            sc_free(&P);
        }
}

/* 4. Huge inputs never overflow: finite results. Tanh kinds: q, k ~ 1e30
 * (tanh saturates). Dot kinds: equal logits of ~1e11 (q = k = 133120,
 * g = 1; or q = k = 2^20, W = 1/8), exactly representable in float like the
 * core's test (a float32 LSE cannot resolve arbitrary logits that large),
 * which must give the uniform average of v. */
void test_score_contract_huge(void)
{
    for (int kind = 1; kind <= 4; kind++) {
        sc_cfg c = contract_cfg((attn_score_kind)kind, 400);
        c.p = 0.0;
        sc_prob P;
        sc_make(&P, &c);
        bool dot = !sc_tanh_kind(&c), gen = kind == ATTN_SCORE_KIND_LUONG_GENERAL;
        double qk = gen ? 1048576.0 : 133120.0;
        for (int64_t e = 0; e < n_of(&c, c.Sq, c.Dq); e++) P.q[e] = dot ? qk : (double)(float)(P.q[e] * 1e30);
        for (int64_t e = 0; e < n_of(&c, c.Sk, c.Dk); e++) P.k[e] = dot ? qk : (double)(float)(P.k[e] * 1e30);
        for (int64_t e = 0; dot && e < c.H * P.pr[gen ? P_W : P_G] * P.pc[gen ? P_W : P_G]; e++)
            P.par[gen ? P_W : P_G][e] = gen ? 0.125 : 1.0;
        double mean = 0.0; /* of v[b = 0, :, h = 0, d = 0] */
        for (int64_t j = 0; j < c.Sk; j++) mean += P.v[ki(&c, 0, j, 0, c.Dv)] / (double)c.Sk;
        for (int path = 0; path < N_PATHS; path++) {
            sc_res r;
            run_on(&P, path, 2, &r);
            bool ok = true;
            for (int64_t e = 0; e < n_of(&c, c.Sq, c.Dv); e++) ok &= isfinite(r.o[e]);
            for (int64_t e = 0; e < c.B * c.H * c.Sq; e++) ok &= isfinite(r.lse[e]);
            for (int64_t e = 0; e < n_of(&c, c.Sk, c.Dv); e++) ok &= isfinite(r.dv[e]);
            for (int64_t e = 0; e < n_of(&c, c.Sk, c.Dk); e++) ok &= isfinite(r.dk[e]);
            if (dot) ok &= fabs(r.o[0] - mean) <= 1e-6;
            t_checks++;
            if (!ok) t_fail(__FILE__, __LINE__, "kind %d %s: huge inputs gave Inf/NaN or a non-uniform row", kind, path_name[path]);
            res_free(&r);
        }
        sc_free(&P);
    }
}

/* 7. A window wider than any query-key distance (INT64_MAX each side)
 * gives the bits of no window, with no overflow on the way. */
void test_score_contract_huge_window(void)
{
    for (int kind = 1; kind <= 4; kind++) {
        sc_cfg c = contract_cfg((attn_score_kind)kind, 500);
        c.causal = 0;
        c.align = ATTN_ALIGN_BOTTOM_RIGHT;
        c.wl = c.wr = -1;
        sc_prob P;
        sc_make(&P, &c);
        for (int path = 0; path < N_PATHS; path++) {
            sc_res base, r;
            P.c.wl = P.c.wr = -1;
            run_on(&P, path, 2, &base);
            P.c.wl = P.c.wr = INT64_MAX;
            run_on(&P, path, 2, &r);
            bool same = memcmp(base.o, r.o, sizeof(double) * (size_t)n_of(&c, c.Sq, c.Dv)) == 0 &&
                        memcmp(base.lse, r.lse, sizeof(double) * (size_t)(c.B * c.H * c.Sq)) == 0 &&
                        memcmp(base.dq, r.dq, sizeof(double) * (size_t)n_of(&c, c.Sq, c.Dq)) == 0 &&
                        memcmp(base.dk, r.dk, sizeof(double) * (size_t)n_of(&c, c.Sk, c.Dk)) == 0;
            t_checks++;
            if (!same) t_fail(__FILE__, __LINE__, "kind %d %s: a window of INT64_MAX differs from none", kind, path_name[path]);
            res_free(&base);
            res_free(&r);
        }
        sc_free(&P);
    }
}

/* The chunked kernel's tanh: at most 3 ulp from tanh over a dense sample of
 * floats, odd, NaN in gives NaN, +-inf gives +-1. */
void test_score_tanh_accuracy(void)
{
    enum { N = 4096 };
    static float x[N], y[N];
    double worst = 0.0;
    for (uint32_t u0 = 0; u0 < 0x41300000u; u0 += 37 * N) { /* 0 .. 11 */
        for (uint32_t k = 0; k < N; k++) {
            uint32_t u = u0 + 37 * k;
            memcpy(&x[k], &u, sizeof u);
            x[k] = k % 2 ? -x[k] : x[k];
        }
        attn__score_tanh(x, y, N, 9.0f);
        for (int k = 0; k < N; k++) {
            double want = tanh((double)x[k]);
            float fw = (float)fabs(want);
            double ulp = (double)nextafterf(fw, INFINITY) - (double)fw;
            double err = fabs((double)y[k] - want) / ulp;
            if (!(err <= worst)) worst = err;
        }
    }
    T_LE(worst, 3.0);
    float sp[6] = {NAN, INFINITY, -INFINITY, 3e38f, -0.0f, 9.5f}, so[6];
    attn__score_tanh(sp, so, 6, 9.0f);
    T_CHECK(isnan(so[0]));
    T_CHECK(so[1] == 1.0f && so[2] == -1.0f && so[3] == 1.0f && so[5] == 1.0f);
    T_CHECK(so[4] == 0.0f && signbit(so[4]));
    printf("  chunked tanh: max error %.2f ulp\n", worst);
}

/* ---- argument checks ---------------------------------------------------------------------------- */

enum { FB = 2, FSQ = 5, FSK = 6, FH = 2, FDQ = 3, FDK = 4, FDV = 2, FA = 3 };
enum { OP_FORWARD, OP_BACKWARD, OP_WEIGHTS };

/* A valid call of each entry point for a kind; a case breaks one thing.
 * SCALED_DOT uses the first FDQ of k's FDK columns (it needs Dk == Dq). */
typedef struct {
    float q[FB * FSQ * FH * FDQ], k[FB * FSK * FH * FDK], v[FB * FSK * FH * FDV];
    float o[FB * FSQ * FH * FDV], lse[FB * FH * FSQ], d_o[FB * FSQ * FH * FDV];
    float dq[FB * FSQ * FH * FDQ], dk[FB * FSK * FH * FDK], dv[FB * FSK * FH * FDV], w[FB * FH * FSQ * FSK];
    float wq[FH * FA * FDQ], wk[FH * FA * FDK], b[FH * FA], va[FH * FA], wg[FH * FDQ * FDK];
    float wc[FH * FA * (FDQ + FDK)], g[FH];
    float dwq[FH * FA * FDQ], dwk[FH * FA * FDK], db[FH * FA], dva[FH * FA], dwg[FH * FDQ * FDK];
    float dwc[FH * FA * (FDQ + FDK)], dg[FH];
    uint8_t mask[FB * FSK];
    int64_t qlens[FB], klens[FB];
    double q64[FB * FSQ * FH * FDQ], alibi[FH];
    attn_tensor tq, tk, tv, to, tl, tdo, tdq, tdk, tdv, tw, tm;
    attn_tensor twq, twk, tb, tva, twg, twc, tg, tdwq, tdwk, tdb, tdva, tdwg, tdwc, tdg;
    attn_tensor *pq, *pk, *pv, *po, *pl, *pdo, *pdq, *pdk, *pdv, *pw;
    attn_score_params prm, *pprm;
    attn_score_grads gr, *pgr;
    attn_ctx *ctx;
} sfx;

static void fill_f(float *x, size_t n, uint64_t *s)
{
    for (size_t e = 0; e < n; e++) x[e] = (float)t_rand_uniform(s, -1, 1);
}

static void fx_tensors(sfx *f, attn_score_kind kind)
{
    int64_t dk = kind == ATTN_SCORE_KIND_SCALED_DOT ? FDQ : FDK;
    f->tq = attn_tensor_make(f->q, ATTN_DTYPE_F32, FB, FSQ, FH, FDQ);
    f->tk = attn_tensor_make(f->k, ATTN_DTYPE_F32, FB, FSK, FH, dk);
    f->tv = attn_tensor_make(f->v, ATTN_DTYPE_F32, FB, FSK, FH, FDV);
    f->to = attn_tensor_make(f->o, ATTN_DTYPE_F32, FB, FSQ, FH, FDV);
    f->tl = attn_tensor_make(f->lse, ATTN_DTYPE_F32, FB, FH, FSQ, 1);
    f->tdo = attn_tensor_make(f->d_o, ATTN_DTYPE_F32, FB, FSQ, FH, FDV);
    f->tdq = attn_tensor_make(f->dq, ATTN_DTYPE_F32, FB, FSQ, FH, FDQ);
    f->tdk = attn_tensor_make(f->dk, ATTN_DTYPE_F32, FB, FSK, FH, dk);
    f->tdv = attn_tensor_make(f->dv, ATTN_DTYPE_F32, FB, FSK, FH, FDV);
    f->tw = attn_tensor_make(f->w, ATTN_DTYPE_F32, FB, FH, FSQ, FSK);
    f->tm = attn_tensor_make(f->mask, ATTN_DTYPE_BOOL, FB, 1, 1, FSK);
    f->twq = attn_tensor_make(f->wq, ATTN_DTYPE_F32, 1, FH, FA, FDQ);
    f->twk = attn_tensor_make(f->wk, ATTN_DTYPE_F32, 1, FH, FA, FDK);
    f->tb = attn_tensor_make(f->b, ATTN_DTYPE_F32, 1, FH, 1, FA);
    f->tva = attn_tensor_make(f->va, ATTN_DTYPE_F32, 1, FH, 1, FA);
    f->twg = attn_tensor_make(f->wg, ATTN_DTYPE_F32, 1, FH, FDQ, FDK);
    f->twc = attn_tensor_make(f->wc, ATTN_DTYPE_F32, 1, FH, FA, FDQ + FDK);
    f->tg = attn_tensor_make(f->g, ATTN_DTYPE_F32, 1, FH, 1, 1);
    f->tdwq = attn_tensor_make(f->dwq, ATTN_DTYPE_F32, 1, FH, FA, FDQ);
    f->tdwk = attn_tensor_make(f->dwk, ATTN_DTYPE_F32, 1, FH, FA, FDK);
    f->tdb = attn_tensor_make(f->db, ATTN_DTYPE_F32, 1, FH, 1, FA);
    f->tdva = attn_tensor_make(f->dva, ATTN_DTYPE_F32, 1, FH, 1, FA);
    f->tdwg = attn_tensor_make(f->dwg, ATTN_DTYPE_F32, 1, FH, FDQ, FDK);
    f->tdwc = attn_tensor_make(f->dwc, ATTN_DTYPE_F32, 1, FH, FA, FDQ + FDK);
    f->tdg = attn_tensor_make(f->dg, ATTN_DTYPE_F32, 1, FH, 1, 1);
}

static void fx_params(sfx *f, attn_score_kind kind)
{
    f->prm = attn_score_params_default(kind);
    memset(&f->gr, 0, sizeof f->gr);
    if (kind == ATTN_SCORE_KIND_ADDITIVE) {
        f->prm.w_q = &f->twq; f->prm.w_k = &f->twk; f->prm.b = &f->tb; f->prm.v_a = &f->tva;
        f->gr.d_w_q = &f->tdwq; f->gr.d_w_k = &f->tdwk; f->gr.d_b = &f->tdb; f->gr.d_v_a = &f->tdva;
    } else if (kind == ATTN_SCORE_KIND_LUONG_GENERAL) {
        f->prm.w = &f->twg;
        f->gr.d_w = &f->tdwg;
    } else if (kind == ATTN_SCORE_KIND_LUONG_CONCAT) {
        f->prm.w = &f->twc; f->prm.v_a = &f->tva;
        f->gr.d_w = &f->tdwc; f->gr.d_v_a = &f->tdva;
    } else {
        f->prm.g = &f->tg;
        f->gr.d_g = &f->tdg;
    }
    f->prm.masks.mask = &f->tm;
    f->prm.masks.dropout_p = 0.2;
    f->prm.masks.seed = 9;
}

static void fx_init(sfx *f, attn_score_kind kind)
{
    memset(f, 0, sizeof *f);
    uint64_t s = 5;
    fill_f(f->q, sizeof f->q / 4, &s);
    fill_f(f->k, sizeof f->k / 4, &s);
    fill_f(f->v, sizeof f->v / 4, &s);
    fill_f(f->d_o, sizeof f->d_o / 4, &s);
    fill_f(f->wq, sizeof f->wq / 4, &s);
    fill_f(f->wk, sizeof f->wk / 4, &s);
    fill_f(f->b, sizeof f->b / 4, &s);
    fill_f(f->va, sizeof f->va / 4, &s);
    fill_f(f->wg, sizeof f->wg / 4, &s);
    fill_f(f->wc, sizeof f->wc / 4, &s);
    fill_f(f->g, sizeof f->g / 4, &s);
    for (size_t x = 0; x < sizeof f->mask; x++) f->mask[x] = x % 5 != 3;
    fx_tensors(f, kind);
    fx_params(f, kind);
    f->pq = &f->tq; f->pk = &f->tk; f->pv = &f->tv; f->po = &f->to; f->pl = &f->tl; f->pdo = &f->tdo;
    f->pdq = &f->tdq; f->pdk = &f->tdk; f->pdv = &f->tdv; f->pw = &f->tw;
    f->pprm = &f->prm;
    f->pgr = &f->gr;
    f->ctx = t_ctx(2);
    attn_score_forward(f->ctx, &f->tq, &f->tk, &f->tv, &f->prm, &f->to, &f->tl); /* real O and LSE */
}

static attn_status fx_call(sfx *f, int op)
{
    if (op == OP_FORWARD) return attn_score_forward(f->ctx, f->pq, f->pk, f->pv, f->pprm, f->po, f->pl);
    if (op == OP_BACKWARD)
        return attn_score_backward(f->ctx, f->pq, f->pk, f->pv, f->po, f->pdo, f->pl, f->pprm, f->pdq, f->pdk,
                                   f->pdv, f->pgr);
    return attn_score_weights(f->ctx, f->pq, f->pk, f->pl, f->pprm, 1, f->pw);
}

/* Everything a call may write (and the inputs) is as it was. */
static bool fx_unchanged(const sfx *a, const sfx *b)
{
    size_t from = offsetof(sfx, q), to = offsetof(sfx, mask);
    return memcmp((const char *)a + from, (const char *)b + from, to - from) == 0;
}

typedef struct {
    const char *name;
    int op;
    attn_score_kind kind;
    void (*mutate)(sfx *);
    attn_status want;
    const char *names; /* the message must contain this */
} sc_case;

#define MUT(name, body) static void name(sfx *f) { body; }
MUT(m_ctx_null, f->ctx = NULL)
MUT(m_q_null, f->pq = NULL)
MUT(m_k_null, f->pk = NULL)
MUT(m_v_null, f->pv = NULL)
MUT(m_params_null, f->pprm = NULL)
MUT(m_out_null, f->po = NULL)
MUT(m_kind_bad, f->prm.kind = (attn_score_kind)9)
MUT(m_kind_zero, f->prm.kind = (attn_score_kind)0)
MUT(m_q_dtype, f->tq.dtype = ATTN_DTYPE_BOOL)
MUT(m_k_dtype, f->tk.dtype = ATTN_DTYPE_F64)
MUT(m_v_dtype, f->tv.dtype = ATTN_DTYPE_F64)
MUT(m_tiled_f64, attn_ctx_set_kernel(f->ctx, ATTN_KERNEL_TILED); f->tq.dtype = f->tk.dtype = f->tv.dtype = ATTN_DTYPE_F64;
    f->tq.data = f->q64)
MUT(m_q_dim_neg, f->tq.dim[1] = -1)
MUT(m_q_data_null, f->tq.data = NULL)
MUT(m_q_stride_neg, f->tq.stride[2] = -3)
MUT(m_q_overflow, f->tq.dim[0] = (int64_t)1 << 40; f->tq.dim[1] = (int64_t)1 << 40)
MUT(m_k_stride_overflow, f->tk.stride[1] = INT64_MAX / 2)
MUT(m_dq_zero, f->tq.dim[3] = 0)
MUT(m_dk_zero, f->tk.dim[3] = 0)
MUT(m_dv_zero, f->tv.dim[3] = 0)
MUT(m_k_batch, f->tk.dim[0] = 1)
MUT(m_k_heads, f->tk.dim[2] = 1)
MUT(m_v_seq, f->tv.dim[1] = 4)
MUT(m_scaled_dk, f->tk.dim[3] = FDK)
MUT(m_wq_null, f->prm.w_q = NULL)
MUT(m_va_null, f->prm.v_a = NULL)
MUT(m_w_given, f->prm.w = &f->twg)
MUT(m_g_given, f->prm.g = &f->tg)
MUT(m_w_null, f->prm.w = NULL)
MUT(m_va_given, f->prm.v_a = &f->tva)
MUT(m_b_given, f->prm.b = &f->tb)
MUT(m_g_null, f->prm.g = NULL)
MUT(m_wq_dtype, f->twq.dtype = ATTN_DTYPE_F64)
MUT(m_a_zero, f->twq.dim[2] = 0)
MUT(m_wk_a, f->twk.dim[2] = FA + 1)
MUT(m_wq_lead, f->twq.dim[0] = 2)
MUT(m_wq_dq, f->twq.dim[3] = FDQ - 1)
MUT(m_b_shape, f->tb.dim[2] = FA; f->tb.dim[3] = 1)
MUT(m_va_heads, f->tva.dim[1] = 1)
MUT(m_wg_shape, f->twg.dim[3] = FDK - 1)
MUT(m_wc_shape, f->twc.dim[3] = FDQ + FDK - 1)
MUT(m_g_shape, f->tg.dim[2] = 2)
MUT(m_wq_stride, f->twq.stride[3] = -1)
MUT(m_wq_data, f->twq.data = NULL)
MUT(m_has_scale, f->prm.masks.has_scale = 1; f->prm.masks.scale = 2.0)
MUT(m_softcap, f->prm.masks.softcap = 5.0)
MUT(m_bias, f->prm.masks.bias = &f->tw)
MUT(m_alibi, f->prm.masks.alibi_slopes = f->alibi)
MUT(m_p_one, f->prm.masks.dropout_p = 1.0)
MUT(m_p_nan, f->prm.masks.dropout_p = NAN)
MUT(m_p_neg, f->prm.masks.dropout_p = -0.5)
MUT(m_causal, f->prm.masks.causal = 2)
MUT(m_align, f->prm.masks.align = (attn_align)5)
MUT(m_window, f->prm.masks.window_right = -2)
MUT(m_qlens, f->qlens[0] = 1; f->qlens[1] = FSQ + 1; f->prm.masks.q_lens = f->qlens)
MUT(m_klens, f->klens[0] = -1; f->prm.masks.k_lens = f->klens)
MUT(m_mask_dtype, f->tm.dtype = ATTN_DTYPE_F32)
MUT(m_mask_bcast, f->tm.dim[0] = 3)
MUT(m_mask_data, f->tm.data = NULL)
MUT(m_out_shape, f->to.dim[1] = FSQ - 1)
MUT(m_out_dtype, f->to.dtype = ATTN_DTYPE_F64)
MUT(m_lse_shape, f->tl.dim[2] = FSQ - 1)
MUT(m_out_alias, f->to.stride[1] = 0)
MUT(m_out_over_q, f->to.data = f->q)
MUT(m_out_over_wq, f->to.data = f->wq)
MUT(m_lse_over_out, f->tl.data = f->o + 2)
MUT(m_out_over_mask, f->to.data = f->mask)
MUT(m_lse_null, f->pl = NULL)
MUT(m_do_null, f->pdo = NULL)
MUT(m_dq_null, f->pdq = NULL)
MUT(m_dk_null, f->pdk = NULL)
MUT(m_dv_null, f->pdv = NULL)
MUT(m_do_shape, f->tdo.dim[2] = 1)
MUT(m_dq_dtype, f->tdq.dtype = ATTN_DTYPE_F64)
MUT(m_dk_shape, f->tdk.dim[1] = FSK - 1)
MUT(m_dw_for_additive, f->gr.d_w = &f->tdwg)
MUT(m_db_without_b, f->prm.b = NULL)
MUT(m_dg_for_additive, f->gr.d_g = &f->tdg)
MUT(m_dwq_shape, f->tdwq.dim[2] = FA - 1)
MUT(m_dva_dtype, f->tdva.dtype = ATTN_DTYPE_F64)
MUT(m_dwk_alias, f->tdwk.stride[3] = 0)
MUT(m_dwq_over_wq, f->tdwq.data = f->wq)
MUT(m_dq_over_db, f->tdq.data = f->db)
MUT(m_dv_over_do, f->tdv.data = f->d_o)
MUT(m_dwc_over_dva, f->tdwc.data = f->dva)
MUT(m_w_null_out, f->pw = NULL)
MUT(m_w_shape, f->tw.dim[3] = FSK - 1)
MUT(m_w_over_k, f->tw.data = f->k)
MUT(m_a_overflow, f->tq.dim[2] = f->tk.dim[2] = f->tv.dim[2] = f->to.dim[2] = f->tdo.dim[2] = 0;
    f->tdq.dim[2] = f->tdk.dim[2] = f->tdv.dim[2] = f->tl.dim[1] = 0;
    f->twq.dim[1] = f->twk.dim[1] = f->tb.dim[1] = f->tva.dim[1] = 0;
    f->tdwq.dim[1] = f->tdwk.dim[1] = f->tdb.dim[1] = f->tdva.dim[1] = 0;
    f->twq.dim[2] = f->twk.dim[2] = f->tb.dim[3] = f->tva.dim[3] = (int64_t)1 << 60;
    f->tdwq.dim[2] = f->tdwk.dim[2] = f->tdb.dim[3] = f->tdva.dim[3] = (int64_t)1 << 60)
#undef MUT

#define AD ATTN_SCORE_KIND_ADDITIVE
#define GE ATTN_SCORE_KIND_LUONG_GENERAL
#define CC ATTN_SCORE_KIND_LUONG_CONCAT
#define SD ATTN_SCORE_KIND_SCALED_DOT
static const sc_case sc_cases[] = {
    {"ctx NULL", OP_FORWARD, AD, m_ctx_null, ATTN_NULL_ARG, "ctx"},
    {"q NULL", OP_FORWARD, AD, m_q_null, ATTN_NULL_ARG, "q is NULL"},
    {"k NULL", OP_FORWARD, GE, m_k_null, ATTN_NULL_ARG, "k is NULL"},
    {"v NULL", OP_FORWARD, AD, m_v_null, ATTN_NULL_ARG, "v is NULL"},
    {"params NULL", OP_FORWARD, AD, m_params_null, ATTN_NULL_ARG, "params is NULL"},
    {"out NULL", OP_FORWARD, AD, m_out_null, ATTN_NULL_ARG, "out is NULL"},
    {"kind 9", OP_FORWARD, AD, m_kind_bad, ATTN_BAD_PARAM, "params.kind"},
    {"kind 0", OP_WEIGHTS, AD, m_kind_zero, ATTN_BAD_PARAM, "params.kind"},
    {"q dtype", OP_FORWARD, AD, m_q_dtype, ATTN_BAD_DTYPE, "q.dtype"},
    {"k dtype", OP_FORWARD, AD, m_k_dtype, ATTN_BAD_DTYPE, "k.dtype"},
    {"v dtype", OP_BACKWARD, SD, m_v_dtype, ATTN_BAD_DTYPE, "v.dtype"},
    {"tiled kernel on F64", OP_FORWARD, GE, m_tiled_f64, ATTN_UNSUPPORTED, "float32"},
    {"q dim < 0", OP_FORWARD, AD, m_q_dim_neg, ATTN_BAD_DIM, "q.dim[1]"},
    {"q.data NULL", OP_FORWARD, AD, m_q_data_null, ATTN_NULL_ARG, "q.data"},
    {"q stride < 0", OP_FORWARD, AD, m_q_stride_neg, ATTN_BAD_STRIDE, "q.stride[2]"},
    {"q dims overflow", OP_FORWARD, AD, m_q_overflow, ATTN_OVERFLOW, "q:"},
    {"k stride overflow", OP_FORWARD, CC, m_k_stride_overflow, ATTN_OVERFLOW, "k:"},
    {"Dq = 0", OP_FORWARD, AD, m_dq_zero, ATTN_BAD_DIM, "(Dq)"},
    {"Dk = 0", OP_FORWARD, GE, m_dk_zero, ATTN_BAD_DIM, "(Dk)"},
    {"Dv = 0", OP_FORWARD, AD, m_dv_zero, ATTN_BAD_DIM, "(Dv)"},
    {"k batch", OP_FORWARD, AD, m_k_batch, ATTN_SHAPE_MISMATCH, "k is"},
    {"k heads", OP_FORWARD, SD, m_k_heads, ATTN_SHAPE_MISMATCH, "k is"},
    {"v seq", OP_FORWARD, AD, m_v_seq, ATTN_SHAPE_MISMATCH, "v is"},
    {"scaled dot Dk != Dq", OP_FORWARD, SD, m_scaled_dk, ATTN_SHAPE_MISMATCH, "Dk == Dq"},
    {"w_q missing", OP_FORWARD, AD, m_wq_null, ATTN_NULL_ARG, "params.w_q is NULL"},
    {"v_a missing", OP_FORWARD, CC, m_va_null, ATTN_NULL_ARG, "params.v_a is NULL"},
    {"w given to additive", OP_FORWARD, AD, m_w_given, ATTN_BAD_PARAM, "params.w is given"},
    {"g given to additive", OP_FORWARD, AD, m_g_given, ATTN_BAD_PARAM, "params.g is given"},
    {"w missing", OP_FORWARD, GE, m_w_null, ATTN_NULL_ARG, "params.w is NULL"},
    {"v_a given to general", OP_FORWARD, GE, m_va_given, ATTN_BAD_PARAM, "params.v_a is given"},
    {"b given to concat", OP_FORWARD, CC, m_b_given, ATTN_BAD_PARAM, "params.b is given"},
    {"g missing", OP_FORWARD, SD, m_g_null, ATTN_NULL_ARG, "params.g is NULL"},
    {"w_q dtype", OP_FORWARD, AD, m_wq_dtype, ATTN_BAD_DTYPE, "params.w_q.dtype"},
    {"A = 0", OP_FORWARD, AD, m_a_zero, ATTN_BAD_DIM, "(A)"},
    {"w_k's A", OP_FORWARD, AD, m_wk_a, ATTN_SHAPE_MISMATCH, "params.w_k is"},
    {"w_q dim[0]", OP_FORWARD, AD, m_wq_lead, ATTN_SHAPE_MISMATCH, "params.w_q is"},
    {"w_q's Dq", OP_FORWARD, AD, m_wq_dq, ATTN_SHAPE_MISMATCH, "params.w_q is"},
    {"b shape", OP_FORWARD, AD, m_b_shape, ATTN_SHAPE_MISMATCH, "params.b is"},
    {"v_a heads", OP_FORWARD, AD, m_va_heads, ATTN_SHAPE_MISMATCH, "params.v_a is"},
    {"general w shape", OP_FORWARD, GE, m_wg_shape, ATTN_SHAPE_MISMATCH, "params.w is"},
    {"concat w shape", OP_FORWARD, CC, m_wc_shape, ATTN_SHAPE_MISMATCH, "params.w is"},
    {"g shape", OP_FORWARD, SD, m_g_shape, ATTN_SHAPE_MISMATCH, "params.g is"},
    {"w_q stride", OP_FORWARD, AD, m_wq_stride, ATTN_BAD_STRIDE, "params.w_q.stride[3]"},
    {"w_q.data NULL", OP_FORWARD, AD, m_wq_data, ATTN_NULL_ARG, "params.w_q.data"},
    {"has_scale", OP_FORWARD, AD, m_has_scale, ATTN_UNSUPPORTED, "params.masks.has_scale"},
    {"softcap", OP_FORWARD, GE, m_softcap, ATTN_UNSUPPORTED, "params.masks.softcap"},
    {"bias", OP_FORWARD, AD, m_bias, ATTN_UNSUPPORTED, "params.masks.bias"},
    {"alibi", OP_FORWARD, SD, m_alibi, ATTN_UNSUPPORTED, "params.masks.alibi_slopes"},
    {"dropout p = 1", OP_FORWARD, AD, m_p_one, ATTN_BAD_PARAM, "dropout_p"},
    {"dropout p NaN", OP_BACKWARD, CC, m_p_nan, ATTN_BAD_PARAM, "dropout_p"},
    {"dropout p < 0", OP_WEIGHTS, AD, m_p_neg, ATTN_BAD_PARAM, "dropout_p"},
    {"causal = 2", OP_FORWARD, AD, m_causal, ATTN_BAD_PARAM, "params.masks.causal"},
    {"align 5", OP_FORWARD, AD, m_align, ATTN_BAD_PARAM, "params.masks.align"},
    {"window -2", OP_FORWARD, AD, m_window, ATTN_BAD_PARAM, "window"},
    {"q_lens > Sq", OP_FORWARD, AD, m_qlens, ATTN_BAD_PARAM, "q_lens[1]"},
    {"k_lens < 0", OP_BACKWARD, AD, m_klens, ATTN_BAD_PARAM, "k_lens[0]"},
    {"mask dtype", OP_FORWARD, AD, m_mask_dtype, ATTN_BAD_DTYPE, "params.masks.mask"},
    {"mask broadcast", OP_FORWARD, AD, m_mask_bcast, ATTN_BAD_MASK, "params.masks.mask.dim[0]"},
    {"mask.data NULL", OP_FORWARD, AD, m_mask_data, ATTN_NULL_ARG, "params.masks.mask.data"},
    {"out shape", OP_FORWARD, AD, m_out_shape, ATTN_SHAPE_MISMATCH, "out is"},
    {"out dtype", OP_FORWARD, AD, m_out_dtype, ATTN_BAD_DTYPE, "out.dtype"},
    {"lse shape", OP_FORWARD, AD, m_lse_shape, ATTN_SHAPE_MISMATCH, "lse is"},
    {"out aliases itself", OP_FORWARD, AD, m_out_alias, ATTN_BAD_STRIDE, "out:"},
    {"out overlaps q", OP_FORWARD, AD, m_out_over_q, ATTN_OVERLAP, "out overlaps q"},
    {"out overlaps w_q", OP_FORWARD, AD, m_out_over_wq, ATTN_OVERLAP, "out overlaps params.w_q"},
    {"lse overlaps out", OP_FORWARD, AD, m_lse_over_out, ATTN_OVERLAP, "lse overlaps out"},
    {"out overlaps mask", OP_FORWARD, AD, m_out_over_mask, ATTN_OVERLAP, "out overlaps params.masks.mask"},
    {"backward out NULL", OP_BACKWARD, AD, m_out_null, ATTN_NULL_ARG, "out is NULL"},
    {"backward lse NULL", OP_BACKWARD, AD, m_lse_null, ATTN_NULL_ARG, "lse is NULL"},
    {"backward d_out NULL", OP_BACKWARD, GE, m_do_null, ATTN_NULL_ARG, "d_out is NULL"},
    {"backward dq NULL", OP_BACKWARD, AD, m_dq_null, ATTN_NULL_ARG, "dq is NULL"},
    {"backward dk NULL", OP_BACKWARD, SD, m_dk_null, ATTN_NULL_ARG, "dk is NULL"},
    {"backward dv NULL", OP_BACKWARD, AD, m_dv_null, ATTN_NULL_ARG, "dv is NULL"},
    {"backward d_out shape", OP_BACKWARD, AD, m_do_shape, ATTN_SHAPE_MISMATCH, "d_out is"},
    {"backward dq dtype", OP_BACKWARD, AD, m_dq_dtype, ATTN_BAD_DTYPE, "dq.dtype"},
    {"backward dk shape", OP_BACKWARD, CC, m_dk_shape, ATTN_SHAPE_MISMATCH, "dk is"},
    {"backward params NULL", OP_BACKWARD, AD, m_params_null, ATTN_NULL_ARG, "params is NULL"},
    {"d_w for additive", OP_BACKWARD, AD, m_dw_for_additive, ATTN_BAD_PARAM, "grads.d_w is given"},
    {"d_b without b", OP_BACKWARD, AD, m_db_without_b, ATTN_BAD_PARAM, "grads.d_b is given"},
    {"d_g for additive", OP_BACKWARD, AD, m_dg_for_additive, ATTN_BAD_PARAM, "grads.d_g"},
    {"d_w_q shape", OP_BACKWARD, AD, m_dwq_shape, ATTN_SHAPE_MISMATCH, "grads.d_w_q is"},
    {"d_v_a dtype", OP_BACKWARD, CC, m_dva_dtype, ATTN_BAD_DTYPE, "grads.d_v_a.dtype"},
    {"d_w_k aliases itself", OP_BACKWARD, AD, m_dwk_alias, ATTN_BAD_STRIDE, "grads.d_w_k"},
    {"d_w_q overlaps w_q", OP_BACKWARD, AD, m_dwq_over_wq, ATTN_OVERLAP, "grads.d_w_q overlaps params.w_q"},
    {"dq overlaps d_b", OP_BACKWARD, AD, m_dq_over_db, ATTN_OVERLAP, "grads.d_b overlaps dq"},
    {"dv overlaps d_out", OP_BACKWARD, SD, m_dv_over_do, ATTN_OVERLAP, "dv overlaps d_out"},
    {"d_w overlaps d_v_a", OP_BACKWARD, CC, m_dwc_over_dva, ATTN_OVERLAP, "grads.d_w overlaps grads.d_v_a"},
    {"A overflows the workspace", OP_BACKWARD, AD, m_a_overflow, ATTN_OVERFLOW, "overflow"},
    {"weights lse NULL", OP_WEIGHTS, AD, m_lse_null, ATTN_NULL_ARG, "lse is NULL"},
    {"weights w NULL", OP_WEIGHTS, GE, m_w_null_out, ATTN_NULL_ARG, "w is NULL"},
    {"weights w shape", OP_WEIGHTS, AD, m_w_shape, ATTN_SHAPE_MISMATCH, "w is"},
    {"weights w overlaps k", OP_WEIGHTS, SD, m_w_over_k, ATTN_OVERLAP, "w overlaps k"},
    {"weights lse shape", OP_WEIGHTS, CC, m_lse_shape, ATTN_SHAPE_MISMATCH, "lse is"},
    {"weights q NULL", OP_WEIGHTS, AD, m_q_null, ATTN_NULL_ARG, "q is NULL"},
};
#undef AD
#undef GE
#undef CC
#undef SD

static sfx f_case, f_before; /* large: off the stack */

void test_score_argument_checks(void)
{
    for (int kind = 1; kind <= 4; kind++) /* the unbroken fixtures succeed */
        for (int op = 0; op < 3; op++) {
            fx_init(&f_case, (attn_score_kind)kind);
            T_EQ_STATUS(fx_call(&f_case, op), ATTN_OK);
        }
    for (size_t x = 0; x < sizeof sc_cases / sizeof sc_cases[0]; x++) {
        const sc_case *c = &sc_cases[x];
        fx_init(&f_case, c->kind);
        c->mutate(&f_case);
        memcpy(&f_before, &f_case, sizeof f_case);
        attn_status st = fx_call(&f_case, c->op);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        attn_ctx_set_kernel(t_ctx(2), ATTN_KERNEL_AUTO);
        t_checks++;
        if (st != c->want || strstr(msg, c->names) == NULL)
            t_fail(__FILE__, __LINE__, "case '%s': got %s '%s', want %s naming '%s'", c->name, attn_status_name(st),
                   msg, attn_status_name(c->want), c->names);
        T_CHECK(fx_unchanged(&f_case, &f_before));
    }
    attn_score_params d = attn_score_params_default(ATTN_SCORE_KIND_LUONG_CONCAT);
    T_CHECK(d.kind == ATTN_SCORE_KIND_LUONG_CONCAT && d.w == NULL && d.masks.window_left == -1 && d.masks.mask == NULL);
}

/* ---- out-of-memory injection ----------------------------------------------------------------- */

static long sc_live, sc_calls, sc_fail_at;

static void *sc_failing_alloc(size_t n, void *user)
{
    (void)user;
    long c = __atomic_fetch_add(&sc_calls, 1, __ATOMIC_SEQ_CST);
    if (c == sc_fail_at) return NULL;
    void *p = malloc(n);
    if (p) __atomic_fetch_add(&sc_live, 1, __ATOMIC_SEQ_CST);
    return p;
}

static void sc_counting_free(void *p, void *user)
{
    (void)user;
    if (p) __atomic_fetch_sub(&sc_live, 1, __ATOMIC_SEQ_CST);
    free(p);
}

/* Fails the k-th allocation for k = 0, 1, ... until the call succeeds:
 * each failure is ATTN_NO_MEMORY with no leak and nothing written. */
void test_score_out_of_memory(void)
{
    for (int kind = 1; kind <= 4; kind++)
        for (int op = 0; op < 3; op++)
            for (int ref = 0; ref < 2; ref++) {
                long k = 0;
                for (;; k++) {
                    fx_init(&f_case, (attn_score_kind)kind);
                    attn_ctx_set_kernel(f_case.ctx, ref ? ATTN_KERNEL_REF : ATTN_KERNEL_AUTO);
                    memcpy(&f_before, &f_case, sizeof f_case);
                    sc_live = sc_calls = 0;
                    sc_fail_at = k;
                    attn_set_allocator(sc_failing_alloc, sc_counting_free, NULL);
                    attn_status st = fx_call(&f_case, op);
                    attn_set_allocator(NULL, NULL, NULL);
                    attn_ctx_set_kernel(f_case.ctx, ATTN_KERNEL_AUTO);
                    T_EQ_INT(sc_live, 0);
                    if (sc_calls <= k) {
                        T_EQ_STATUS(st, ATTN_OK);
                        break;
                    }
                    t_checks++;
                    if (st != ATTN_NO_MEMORY)
                        t_fail(__FILE__, __LINE__, "kind %d op %d ref %d: allocation %ld failed, got %s", kind, op, ref,
                               k, attn_status_name(st));
                    T_CHECK(fx_unchanged(&f_case, &f_before));
                }
                T_CHECK(k >= 1);
            }
}
