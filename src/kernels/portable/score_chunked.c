/* score_chunked.c - the memory-efficient float32 kernel of the tanh scores
 * (ADDITIVE, LUONG_CONCAT), and the linear maps of every kind's
 * projections.
 *
 *   s_ij = sum_a v_a tanh(pq_ia + pk_ja),  pq = Wq q + b [B,H,Sq,A],
 *                                          pk = Wk k     [B,H,Sk,A]
 *
 * The projections are computed once (O((Sq + Sk) A) memory); no
 * Sq x Sk x A (or Sq x Sk) tensor ever exists. Forward: a block of TQ
 * queries walks key chunks of TK with an online softmax. Backward: a task
 * owns the key chunks kb = g, g + G, ... of a head (G fixed by the shape),
 * recomputes the tanh terms of each (row, chunk), and accumulates
 *   u = dS_ij v_a (1 - t_ija^2):  d pq_ia += u,  d pk_ja += u;  d v_a += dS_ij t_ija
 * dpk rows and dv rows of its keys are its own; dpq goes to a per-group
 * partial summed afterwards in group order. Every sum has a fixed order, so
 * results never depend on the thread count.
 *
 * The tanh terms are evaluated by tanh_f below, a branch-free float tanh
 * that compilers vectorize over the keys of a chunk (glibc's tanhf is scalar
 * and ~10x slower); max error 2.3 ulp, tested in tests/ops/test_score.c. */
#include "kernels/score_kernels.h"

#include <string.h>

enum { TQ = ATTN__SCORE_TQ, TK = ATTN__SCORE_TK };

/* ---- tanh ------------------------------------------------------------------ */

static inline float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* tanh(x) without branches:
 *   |x| < 0.4   odd Taylor series to x^13 (truncation < 1e-8 relative);
 *   otherwise   (1 - e) / (1 + e), e = exp(-2|x|) = 2^n p(r) with
 *               r = -2|x| - n ln2 (Cody-Waite), p of degree 7; |x| is first
 *               clamped to sat (tanh(9) rounds to 1 in float).
 * n is read from the low mantissa bits of the rounding shifter 1.5 * 2^23,
 * so no float-to-int conversion is needed. sat comes in at run time: with a
 * literal, GCC specialises the clamped branch to a constant and can no longer
 * vectorize the loop (the division may trap). NaN propagates; +-inf -> +-1. */
static inline float tanh_f(float x, float sat)
{
    float ax = fabsf(x), x2 = x * x;
    float p = 21844.0f / 6081075.0f;
    p = p * x2 - 1382.0f / 155925.0f;
    p = p * x2 + 62.0f / 2835.0f;
    p = p * x2 - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    float small = x + x * x2 * p;

    float y = ax > sat ? sat : ax, t = -2.0f * y;
    float shift = t * 1.44269504f + 12582912.0f; /* round(t / ln2) in the low bits */
    float n = shift - 12582912.0f;
    float r = t - n * 0.693145752f - n * 1.42860677e-6f;
    float e = 1.0f / 5040.0f;
    e = e * r + 1.0f / 720.0f;
    e = e * r + 1.0f / 120.0f;
    e = e * r + 1.0f / 24.0f;
    e = e * r + 1.0f / 6.0f;
    e = e * r + 0.5f;
    e = e * r + 1.0f;
    e = e * r + 1.0f;
    e *= bits_to_float((float_to_bits(shift) + 127u) << 23); /* 2^n, n in [-26, 0] */
    float big = (1.0f - e) / (1.0f + e);

    uint32_t use_small = (uint32_t)0 - (uint32_t)(ax < 0.4f);
    uint32_t u = (float_to_bits(small) & use_small) | (float_to_bits(big) & ~use_small);
    return copysignf(bits_to_float(u), x);
}

void attn__score_tanh(const float *x, float *y, int64_t n, float sat)
{
    for (int64_t i = 0; i < n; i++) y[i] = tanh_f(x[i], sat);
}

/* x where keep is all ones, +0 where it is 0 (a select the compiler keeps
 * branch-free, so NaN in a masked lane never reaches a sum). */
static inline float keep_if(float x, uint32_t keep) { return bits_to_float(float_to_bits(x) & keep); }

/* ---- shared pieces ------------------------------------------------------- */

static float drop_factor(const attn__score *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const attn__sdpa *m = &p->m;
    if (m->dropout_p <= 0.0) return 1.0f;
    bool keep = attn__dropout_keep(m->seed, m->offset, m->drop_threshold, b * p->H + h, i, j);
    return keep ? (float)(1.0 / (1.0 - m->dropout_p)) : 0.0f;
}

static bool mask_allows(const attn__sdpa *m, int64_t b, int64_t h, int64_t i, int64_t j)
{
    return !m->has_mask || m->mask[attn__off(m->mask_stride, b, h, i, j)] != 0;
}

static float lse_at(const attn__sdpa *m, int64_t b, int64_t h, int64_t i)
{
    return ((const float *)m->lse.data)[attn__off(m->lse.stride, b, h, i, 0)];
}

/* Projected keys j0 .. j0+nk-1 of (b, h) into dst (A, TK), transposed;
 * columns from nk on are 0 so whole-chunk loops stay finite. */
static void load_keys_t(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                        int64_t j0, int64_t nk, float *dst)
{
    const float *src = s->pk + ((b * p->H + h) * p->m.Sk + j0) * p->A;
    for (int64_t a = 0; a < p->A; a++)
        for (int64_t c = 0; c < TK; c++) dst[a * TK + c] = c < nk ? src[c * p->A + a] : 0.0f;
}

/* Values j0 .. j0+nk-1 of (b, h): rows (TK, Dv), or transposed (Dv, TK)
 * zero-padded. */
static void load_values(const attn__sdpa *m, int64_t b, int64_t h, int64_t j0, int64_t nk,
                        bool transpose, float *dst)
{
    const float *v = (const float *)m->v.data;
    for (int64_t c = 0; c < (transpose ? TK : nk); c++)
        for (int64_t d = 0; d < m->Dv; d++) {
            float x = c < nk ? v[attn__off(m->v.stride, b, j0 + c, h, d)] : 0.0f;
            dst[transpose ? d * TK + c : c * m->Dv + d] = x;
        }
}

static void tanh_axpy(float *restrict sc, const float *restrict k, float x0, float va, float sat)
{
    for (int c = 0; c < TK; c++) sc[c] += va * tanh_f(x0 + k[c], sat);
}

/* The same sum, keeping the tanh terms in t. */
static void tanh_axpy_keep(float *restrict sc, float *restrict t, const float *restrict k, float x0,
                           float va, float sat)
{
    for (int c = 0; c < TK; c++) {
        float y = tanh_f(x0 + k[c], sat);
        t[c] = y;
        sc[c] += va * y;
    }
}

/* Scores of query i against keys j0 .. j0+nk-1 (chunk in pkt) into sc[TK],
 * -inf where not visible ([lo, hi) is the row's key interval). With tt,
 * the tanh terms go to tt (A, TK). Returns false if no key is visible. */
static bool row_scores(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                       int64_t i, int64_t j0, int64_t nk, int64_t lo, int64_t hi,
                       const float *pkt, float *sc, float *tt)
{
    int64_t c0 = lo > j0 ? lo - j0 : 0, c1 = hi - j0 < nk ? hi - j0 : nk;
    if (c0 >= c1) return false;
    const float *pq = s->pq + ((b * p->H + h) * p->m.Sq + i) * p->A, *va = s->va + h * p->A;
    memset(sc, 0, sizeof(float) * TK);
    for (int64_t a = 0; a < p->A; a++) {
        if (tt != NULL)
            tanh_axpy_keep(sc, tt + a * TK, pkt + a * TK, pq[a], va[a], s->tanh_sat);
        else
            tanh_axpy(sc, pkt + a * TK, pq[a], va[a], s->tanh_sat);
    }
    bool any = false;
    for (int64_t c = 0; c < TK; c++) {
        bool vis = c >= c0 && c < c1 && mask_allows(&p->m, b, h, i, j0 + c);
        if (!vis) sc[c] = -INFINITY;
        any |= vis;
    }
    return any;
}

int64_t attn__score_chunked_ws(const attn__score *p)
{
    int64_t A = p->A, Dv = p->m.Dv;
    /* forward A TK + TK Dv + TQ Dv + TK + 2 TQ; backward 4 A TK + 2 Dv TK + Dv + 4 TK */
    int64_t fwd = attn__size_fma(attn__size_fma(TK + 2 * TQ, A, TK), Dv, TK + TQ);
    int64_t bwd = attn__size_fma(attn__size_fma(4 * TK, A, 4 * TK), Dv, 2 * TK + 1);
    return fwd < 0 || bwd < 0 ? -1 : fwd > bwd ? fwd : bwd;
}

/* ---- forward ------------------------------------------------------------------ */

/* One chunk of the online softmax of a row: running max *mx, sum *l and
 * unnormalised output acc (Dv). */
static void softmax_step(const attn__score *p, int64_t b, int64_t h, int64_t i, int64_t j0,
                         int64_t nk, const float *sc, const float *vt, float *acc, float *mx,
                         float *l)
{
    int64_t Dv = p->m.Dv;
    float tmax = -INFINITY;
    for (int64_t c = 0; c < nk; c++)
        if (sc[c] > tmax) tmax = sc[c];
    float mnew = tmax > *mx ? tmax : *mx;
    if (mnew == -INFINITY) mnew = 0.0f; /* only NaN scores so far: keep the NaN */
    float alpha = expf(*mx - mnew), lsum = 0.0f;
    for (int64_t d = 0; d < Dv; d++) acc[d] *= alpha;
    for (int64_t c = 0; c < nk; c++) {
        if (sc[c] == -INFINITY) continue; /* masked: v not read */
        float e = expf(sc[c] - mnew);
        lsum += e;
        float f = drop_factor(p, b, h, i, j0 + c);
        if (f == 0.0f) continue; /* dropped: v not read */
        for (int64_t d = 0; d < Dv; d++) acc[d] += e * f * vt[c * Dv + d];
    }
    *l = *l * alpha + lsum;
    *mx = mnew;
}

void attn__score_forward_block(const attn__score *p, const attn__score_bufs *s, int64_t b,
                               int64_t h, int64_t qb, float *ws)
{
    const attn__sdpa *m = &p->m;
    int64_t Dv = m->Dv, i0 = qb * TQ, nq = m->Sq - i0 < TQ ? m->Sq - i0 : TQ;
    float *pkt = ws;                   /* (A, TK) projected keys of a chunk, transposed */
    float *vt = pkt + p->A * TK;       /* (TK, Dv) values of the chunk */
    float *acc = vt + TK * Dv;         /* (TQ, Dv) unnormalised output rows */
    float *sc = acc + TQ * Dv;         /* (TK) scores of one row */
    float *mx = sc + TK, *l = mx + TQ; /* (TQ) running max and sum */
    int64_t lo[TQ], hi[TQ], jmin, jmax;
    bool seen[TQ];
    attn__block_ranges(m, b, i0, nq, lo, hi, &jmin, &jmax);
    for (int64_t r = 0; r < nq; r++) {
        mx[r] = -INFINITY;
        l[r] = 0.0f;
        seen[r] = false;
    }
    memset(acc, 0, sizeof(float) * (size_t)(TQ * Dv));
    for (int64_t j0 = jmin < jmax ? jmin / TK * TK : jmax; j0 < jmax; j0 += TK) {
        int64_t nk = jmax - j0 < TK ? jmax - j0 : TK;
        load_keys_t(p, s, b, h, j0, nk, pkt);
        load_values(m, b, h, j0, nk, false, vt);
        for (int64_t r = 0; r < nq; r++) {
            if (!row_scores(p, s, b, h, i0 + r, j0, nk, lo[r], hi[r], pkt, sc, NULL)) continue;
            seen[r] = true;
            softmax_step(p, b, h, i0 + r, j0, nk, sc, vt, acc + r * Dv, &mx[r], &l[r]);
        }
    }
    float *o = (float *)m->o.data;
    for (int64_t r = 0; r < nq; r++) {
        int64_t i = i0 + r;
        float inv = seen[r] ? 1.0f / l[r] : 0.0f;
        for (int64_t d = 0; d < Dv; d++)
            o[attn__off(m->o.stride, b, i, h, d)] = seen[r] ? acc[r * Dv + d] * inv : 0.0f;
        if (m->lse.data != NULL)
            ((float *)m->lse.data)[attn__off(m->lse.stride, b, h, i, 0)] =
                seen[r] ? mx[r] + logf(l[r]) : -INFINITY;
    }
}

void attn__score_weights_block(const attn__score *p, const attn__score_bufs *s, int64_t b,
                               int64_t h, int64_t qb, bool with_dropout, const attn_tensor *w,
                               float *ws)
{
    const attn__sdpa *m = &p->m;
    int64_t i0 = qb * TQ, nq = m->Sq - i0 < TQ ? m->Sq - i0 : TQ;
    float *pkt = ws, *sc = pkt + p->A * TK; /* (A, TK), (TK) */
    float *wd = (float *)w->data;
    for (int64_t j0 = 0; j0 < m->Sk; j0 += TK) {
        int64_t nk = m->Sk - j0 < TK ? m->Sk - j0 : TK;
        load_keys_t(p, s, b, h, j0, nk, pkt);
        for (int64_t r = 0; r < nq; r++) {
            int64_t i = i0 + r, lo, hi;
            attn__key_range(m, b, i, &lo, &hi);
            float lse = lo < hi ? lse_at(m, b, h, i) : -INFINITY;
            bool any = lse != -INFINITY && row_scores(p, s, b, h, i, j0, nk, lo, hi, pkt, sc, NULL);
            for (int64_t c = 0; c < nk; c++) {
                float x = any && sc[c] != -INFINITY ? expf(sc[c] - lse) : 0.0f;
                if (with_dropout && x != 0.0f) x *= drop_factor(p, b, h, i, j0 + c);
                wd[attn__off(w->stride, b, h, i, j0 + c)] = x;
            }
        }
    }
}

/* ---- backward ----------------------------------------------------------------- */

void attn__score_delta_head(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h)
{
    const attn__sdpa *m = &p->m;
    const float *o = (const float *)m->o.data, *d_o = (const float *)m->d_o.data;
    int64_t lq = attn__qlen(m, b);
    for (int64_t i = 0; i < m->Sq; i++) {
        float acc = 0.0f;
        for (int64_t d = 0; i < lq && d < m->Dv; d++)
            acc += d_o[attn__off(m->d_o.stride, b, i, h, d)] * o[attn__off(m->o.stride, b, i, h, d)];
        s->delta[(b * p->H + h) * m->Sq + i] = acc;
    }
}

/* x[0] + ... + x[TK-1] in a fixed pairwise order whose halvings the
 * compiler vectorizes (x is overwritten). */
static float sum_tree(float *restrict x)
{
    for (int c = 0; c < TK / 2; c++) x[c] += x[c + TK / 2];
    for (int c = 0; c < TK / 4; c++) x[c] += x[c + TK / 4];
    for (int c = 0; c < TK / 8; c++) x[c] += x[c + TK / 8];
    float sum = 0.0f;
    for (int c = 0; c < TK / 8; c++) sum += x[c];
    return sum;
}

/* Gradients through the tanh terms of one (row, chunk), dS in ds:
 *   u = dS_c v_a (1 - t_ac^2)  ->  dpk (chunk, transposed), and summed over
 *   the chunk into dpq_row[a];  dS_c t_ac  ->  dva (A, TK), summed later.
 * Columns with keep = 0 add exactly +0 (their t may be NaN). tt is
 * overwritten. */
static void tanh_grads(float *tt, const float *ds, const uint32_t *keep, const float *va, int64_t A,
                       float *dpkt, float *dva, float *dpq_row)
{
    for (int64_t a = 0; a < A; a++) {
        float *restrict t = tt + a * TK, *restrict dk = dpkt + a * TK, *restrict dv = dva + a * TK;
        float w = va[a];
        for (int c = 0; c < TK; c++) {
            float y = t[c];
            float u = keep_if(ds[c] * w * (1.0f - y * y), keep[c]);
            dk[c] += u;
            dv[c] += keep_if(ds[c] * y, keep[c]);
            t[c] = u;
        }
        dpq_row[a] += sum_tree(t);
    }
}

/* The chunk state of a backward task (see attn__score_backward_group). */
typedef struct {
    float *pkt, *vtt, *tt, *dpkt, *dvc, *dva, *dor, *sc, *dp, *ds, *pf;
    int64_t j0, nk;
} bwd_chunk;

/* dS of query row i against the chunk; adds its dv, dpk and dv_a terms and
 * its dpq into dpq_row (A). */
static void backward_row(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                         int64_t i, bwd_chunk *k, float *dpq_row)
{
    const attn__sdpa *m = &p->m;
    int64_t lo, hi, Dv = m->Dv, A = p->A;
    uint32_t keep[TK];
    attn__key_range(m, b, i, &lo, &hi);
    float lse = lo < hi ? lse_at(m, b, h, i) : -INFINITY;
    if (lse == -INFINITY || !row_scores(p, s, b, h, i, k->j0, k->nk, lo, hi, k->pkt, k->sc, k->tt))
        return;
    const float *d_o = (const float *)m->d_o.data;
    for (int64_t d = 0; d < Dv; d++) k->dor[d] = d_o[attn__off(m->d_o.stride, b, i, h, d)];
    memset(k->dp, 0, sizeof(float) * TK); /* dP_c = dO_i . v_c, all columns */
    for (int64_t d = 0; d < Dv; d++)
        for (int c = 0; c < TK; c++) k->dp[c] += k->dor[d] * k->vtt[d * TK + c];
    float delta = s->delta[(b * p->H + h) * m->Sq + i];
    for (int c = 0; c < TK; c++) {
        keep[c] = 0;
        k->ds[c] = k->pf[c] = 0.0f;
        if (k->sc[c] == -INFINITY) continue;
        float pr = expf(k->sc[c] - lse), f = drop_factor(p, b, h, i, k->j0 + c);
        float dpf = f == 0.0f ? 0.0f : f * k->dp[c]; /* dropped: v not read */
        k->ds[c] = pr * (dpf - delta);                /* dS = P (dP - D_i) */
        k->pf[c] = pr * f;
        keep[c] = ~(uint32_t)0;
    }
    for (int c = 0; c < TK; c++) /* dv_c += P f dO_i */
        for (int64_t d = 0; k->pf[c] != 0.0f && d < Dv; d++) k->dvc[c * Dv + d] += k->pf[c] * k->dor[d];
    tanh_grads(k->tt, k->ds, keep, s->va + h * A, A, k->dpkt, k->dva, dpq_row);
}

static bwd_chunk carve_bwd(const attn__score *p, float *ws)
{
    int64_t A = p->A, Dv = p->m.Dv;
    bwd_chunk k;
    k.pkt = ws;                  /* (A, TK) projected keys, transposed */
    k.vtt = k.pkt + A * TK;      /* (Dv, TK) values, transposed */
    k.tt = k.vtt + Dv * TK;      /* (A, TK) tanh terms of one row */
    k.dpkt = k.tt + A * TK;      /* (A, TK) dpk of the chunk, transposed */
    k.dvc = k.dpkt + A * TK;     /* (TK, Dv) dv of the chunk */
    k.dva = k.dvc + TK * Dv;     /* (A, TK) dv_a terms of the task */
    k.dor = k.dva + A * TK;      /* (Dv) one dO row */
    k.sc = k.dor + Dv;           /* (TK) scores, dP, dS, P f of one row */
    k.dp = k.sc + TK;
    k.ds = k.dp + TK;
    k.pf = k.ds + TK;
    k.j0 = k.nk = 0;
    return k;
}

void attn__score_backward_group(const attn__score *p, const attn__score_bufs *s, int64_t b,
                                int64_t h, int64_t g, float *ws)
{
    const attn__sdpa *m = &p->m;
    int64_t A = p->A, Dv = m->Dv, nkb = (m->Sk + TK - 1) / TK, bh = b * p->H + h;
    bwd_chunk k = carve_bwd(p, ws);
    float *dpq = s->dpq_part + (bh * s->groups + g) * m->Sq * A; /* (Sq, A) */
    float *dvp = (float *)m->dv.data;
    memset(dpq, 0, sizeof(float) * (size_t)(m->Sq * A));
    memset(k.dva, 0, sizeof(float) * (size_t)(A * TK));
    for (int64_t kb = g; kb < nkb; kb += s->groups) {
        k.j0 = kb * TK;
        k.nk = m->Sk - k.j0 < TK ? m->Sk - k.j0 : TK;
        load_keys_t(p, s, b, h, k.j0, k.nk, k.pkt);
        load_values(m, b, h, k.j0, k.nk, true, k.vtt);
        memset(k.dpkt, 0, sizeof(float) * (size_t)(A * TK));
        memset(k.dvc, 0, sizeof(float) * (size_t)(TK * Dv));
        for (int64_t i = 0; i < m->Sq; i++) backward_row(p, s, b, h, i, &k, dpq + i * A);
        for (int64_t c = 0; c < k.nk; c++) {
            float *dpk = s->dpk + (bh * m->Sk + k.j0 + c) * A;
            for (int64_t a = 0; a < A; a++) dpk[a] = k.dpkt[a * TK + c];
            for (int64_t d = 0; d < Dv; d++) dvp[attn__off(m->dv.stride, b, k.j0 + c, h, d)] = k.dvc[c * Dv + d];
        }
    }
    float *dva = s->dva_part + (bh * s->groups + g) * A;
    for (int64_t a = 0; a < A; a++) dva[a] = sum_tree(k.dva + a * TK);
}

void attn__score_reduce_dpq(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                            int64_t qb)
{
    int64_t Sq = p->m.Sq, A = p->A, bh = b * p->H + h, i0 = qb * TQ;
    int64_t nq = Sq - i0 < TQ ? Sq - i0 : TQ;
    for (int64_t x = i0 * A; x < (i0 + nq) * A; x++) {
        float sum = 0.0f;
        for (int64_t g = 0; g < s->groups; g++) sum += s->dpq_part[(bh * s->groups + g) * Sq * A + x];
        s->dpq[bh * Sq * A + x] = sum;
    }
}

/* ---- linear maps of the projections -------------------------------------------- */

void attn__score_pack(const attn_tensor *t, int64_t h, bool transpose, float *dst)
{
    const float *src = (const float *)t->data;
    int64_t R = t->dim[2], C = t->dim[3];
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++)
            dst[transpose ? c * R + r : r * C + c] = src[attn__off(t->stride, 0, h, r, c)];
}

static void load_row(const attn_tensor *x, int64_t b, int64_t s, int64_t h, int64_t C, float *dst)
{
    const float *src = (const float *)x->data;
    for (int64_t c = 0; c < C; c++) dst[c] = src[attn__off(x->stride, b, s, h, c)];
}

void attn__score_linear_rows(const attn__score_linear *L, int64_t H, int64_t b, int64_t h, int64_t s0,
                             int64_t n, float *ws)
{
    int64_t R = L->R, C = L->C, len = L->lens ? L->lens[b] : L->S;
    const float *wt = L->wt + h * C * R, *bias = L->bias ? L->bias + h * R : NULL;
    for (int64_t s = s0; s < s0 + n; s++) {
        float *y = L->y + ((b * H + h) * L->S + s) * R;
        memset(y, 0, sizeof(float) * (size_t)R);
        if (s >= len) continue; /* padding: not read */
        load_row(L->x, b, s, h, C, ws);
        for (int64_t c = 0; c < C; c++) {
            float xc = ws[c];
            const float *restrict wr = wt + c * R;
            for (int64_t r = 0; r < R; r++) y[r] += xc * wr[r];
        }
        for (int64_t r = 0; bias != NULL && r < R; r++) y[r] += bias[r];
    }
}

static bool all_zero(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return false;
    return true;
}

void attn__score_linear_dx_rows(const attn__score_linear *L, const float *w, int64_t H, int64_t b,
                                int64_t h, int64_t s0, int64_t n, float *ws)
{
    int64_t R = L->R, C = L->C;
    const float *wh = w + h * R * C;
    float *dx = (float *)L->dx->data;
    for (int64_t s = s0; s < s0 + n; s++) {
        const float *dy = L->y + ((b * H + h) * L->S + s) * R;
        memset(ws, 0, sizeof(float) * (size_t)C);
        bool used = !all_zero(dy, R); /* a zero row takes no part: dx = 0 */
        for (int64_t r = 0; used && r < R; r++) { /* dx = W^T dy */
            float g = dy[r];
            const float *restrict wr = wh + r * C;
            for (int64_t c = 0; c < C; c++) ws[c] += g * wr[c];
        }
        for (int64_t c = 0; c < C; c++) dx[attn__off(L->dx->stride, b, s, h, c)] = ws[c];
    }
}

void attn__score_linear_dw_rows(const attn__score_linear *L, int64_t B, int64_t H, int64_t h,
                                int64_t r0, int64_t n, float *ws)
{
    int64_t R = L->R, C = L->C;
    float *acc = ws, *xr = acc + n * C, *dbacc = xr + C; /* (n, C), (C), (n) */
    memset(acc, 0, sizeof(float) * (size_t)(n * C + C + n));
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < L->S; s++) {
            const float *dy = L->y + ((b * H + h) * L->S + s) * R;
            if (all_zero(dy, R)) continue; /* takes no part: x not read */
            load_row(L->x, b, s, h, C, xr);
            for (int64_t r = 0; r < n; r++) { /* dW += dy x^T, db += dy */
                float g = dy[r0 + r];
                float *restrict ar = acc + r * C;
                for (int64_t c = 0; c < C; c++) ar[c] += g * xr[c];
                dbacc[r] += g;
            }
        }
    for (int64_t r = 0; L->dw != NULL && r < n; r++)
        for (int64_t c = 0; c < C; c++)
            ((float *)L->dw->data)[attn__off(L->dw->stride, 0, h, r0 + r, c)] = acc[r * C + c];
    for (int64_t r = 0; L->db != NULL && r < n; r++)
        ((float *)L->db->data)[attn__off(L->db->stride, 0, h, 0, r0 + r)] = dbacc[r];
}

/* ---- SCALED_DOT through the core's kernels: q' = g q ------------------------------ */

void attn__score_gscale_rows(const attn__score *p, const float *g, float *qs, int64_t b, int64_t h,
                             int64_t i0, int64_t n)
{
    const attn__sdpa *m = &p->m;
    const float *q = (const float *)m->q.data;
    int64_t lq = attn__qlen(m, b);
    for (int64_t i = i0; i < i0 + n; i++) {
        float *row = qs + ((b * p->H + h) * m->Sq + i) * p->Dq;
        for (int64_t d = 0; d < p->Dq; d++)
            row[d] = i < lq ? g[h] * q[attn__off(m->q.stride, b, i, h, d)] : 0.0f; /* padding: not read */
    }
}

void attn__score_gscale_dq_rows(const attn__score *p, const float *g, const float *dqs, int64_t b,
                                int64_t h, int64_t i0, int64_t n)
{
    const attn__sdpa *m = &p->m;
    float *dq = (float *)m->dq.data;
    for (int64_t i = i0; i < i0 + n; i++) {
        const float *row = dqs + ((b * p->H + h) * m->Sq + i) * p->Dq;
        for (int64_t d = 0; d < p->Dq; d++) dq[attn__off(m->dq.stride, b, i, h, d)] = g[h] * row[d];
    }
}

void attn__score_dg_head(const attn__score *p, const float *dqs, int64_t h)
{
    const attn__sdpa *m = &p->m;
    const float *q = (const float *)m->q.data;
    float sum = 0.0f;
    for (int64_t b = 0; b < m->B; b++)
        for (int64_t i = 0; i < m->Sq; i++) {
            const float *row = dqs + ((b * p->H + h) * m->Sq + i) * p->Dq;
            if (all_zero(row, p->Dq)) continue; /* takes no part: q not read */
            for (int64_t d = 0; d < p->Dq; d++) sum += q[attn__off(m->q.stride, b, i, h, d)] * row[d];
        }
    ((float *)p->dg.data)[attn__off(p->dg.stride, 0, h, 0, 0)] = sum;
}
