/* score_ref.c - the double-precision reference of the learned-score
 * attention (include/attn/score.h): the test oracle and the readable
 * specification. Per head it computes the query and key features, then
 * materialises the Sq x Sk scores, evaluates every mask from its definition
 * (no mask code shared with the fast paths), and differentiates line by line.
 *
 * Features fq [Sq, F], fk [Sk, F] of one head:
 *   ADDITIVE, LUONG_CONCAT  fq_i = Wq q_i + b, fk_j = Wk k_j   (F = A)
 *                           s_ij = sum_a v_a tanh(fq_ia + fk_ja)
 *   LUONG_GENERAL           fq_i = q_i,        fk_j = W k_j    (F = Dq)
 *                           s_ij = fq_i . fk_j
 *   SCALED_DOT              fq_i = q_i,        fk_j = k_j      (F = Dq)
 *                           s_ij = g (fq_i . fk_j)
 * Rows and keys that no visible pair uses are neither read nor projected. */
#include "kernels/score_kernels.h"

/* Key j visible to query i of (b, h): lengths, causal, window, boolean mask. */
static bool visible(const attn__score *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const attn__sdpa *m = &p->m;
    int64_t lq = m->q_lens ? m->q_lens[b] : m->Sq, lk = m->k_lens ? m->k_lens[b] : m->Sk;
    if (i >= lq || j >= lk) return false;
    int64_t ia = m->align == ATTN_ALIGN_BOTTOM_RIGHT ? i + lk - lq : i; /* i' */
    if (m->causal && j > ia) return false;
    if (m->window_left >= 0 && j < ia - m->window_left) return false;
    if (m->window_right >= 0 && j > ia + m->window_right) return false;
    if (m->has_mask && m->mask[attn__off(m->mask_stride, b, h, i, j)] == 0) return false;
    return true;
}

static double drop_factor(const attn__score *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const attn__sdpa *m = &p->m;
    if (m->dropout_p <= 0.0) return 1.0;
    bool keep = attn__dropout_keep(m->seed, m->offset, m->drop_threshold, b * p->H + h, i, j);
    return keep ? 1.0 / (1.0 - m->dropout_p) : 0.0;
}

static int64_t feat_dim(const attn__score *p) { return attn__score_is_tanh(p) ? p->A : p->Dq; }

/* Element (r, c) of head h of a parameter view [1, H, R, C]. */
static double par(const attn_tensor *t, int64_t h, int64_t r, int64_t c)
{
    return attn__ld(t, attn__off(t->stride, 0, h, r, c));
}

/* The per-head buffers of a task, carved from its workspace. */
typedef struct {
    double *s;            /* (Sq, Sk) scores, then probabilities */
    double *fq, *fk;      /* (Sq, F), (Sk, F) features */
    double *dfq, *dfk;    /* (Sq, F), (Sk, F) their gradients */
    double *dv;           /* (Sk, Dv) */
    double *qused, *kused; /* (Sq), (Sk): 1 if the row / key takes part */
    double *row;          /* (max(Dq, Dk, Dv)) one gradient row */
} head_bufs;

int64_t attn__score_ref_ws(const attn__score *p)
{
    const attn__sdpa *m = &p->m;
    int64_t F = feat_dim(p), d = p->Dq > p->Dk ? p->Dq : p->Dk;
    if (m->Dv > d) d = m->Dv;
    int64_t n = attn__size_fma(d, m->Sq, m->Sk); /* Sq*Sk + 2(Sq+Sk)F + Sk*Dv + Sq + Sk + d */
    n = attn__size_fma(attn__size_fma(n, m->Sq, F), m->Sq, F);
    n = attn__size_fma(attn__size_fma(n, m->Sk, F), m->Sk, F);
    n = attn__size_fma(attn__size_fma(n, m->Sk, m->Dv), m->Sq, 1);
    return attn__size_fma(n, m->Sk, 1);
}

static head_bufs carve(const attn__score *p, double *ws)
{
    const attn__sdpa *m = &p->m;
    int64_t F = feat_dim(p);
    head_bufs hb;
    hb.s = ws;
    hb.fq = hb.s + m->Sq * m->Sk;
    hb.fk = hb.fq + m->Sq * F;
    hb.dfq = hb.fk + m->Sk * F;
    hb.dfk = hb.dfq + m->Sq * F;
    hb.dv = hb.dfk + m->Sk * F;
    hb.qused = hb.dv + m->Sk * m->Dv;
    hb.kused = hb.qused + m->Sq;
    hb.row = hb.kused + m->Sk;
    return hb;
}

/* Marks the rows and keys of (b, h) that take part in a visible pair, and
 * computes their features (others stay 0 and are never read). */
static void features(const attn__score *p, int64_t b, int64_t h, head_bufs *hb)
{
    const attn__sdpa *m = &p->m;
    int64_t F = feat_dim(p);
    for (int64_t i = 0; i < m->Sq; i++) hb->qused[i] = 0.0;
    for (int64_t j = 0; j < m->Sk; j++) hb->kused[j] = 0.0;
    for (int64_t i = 0; i < m->Sq; i++)
        for (int64_t j = 0; j < m->Sk; j++)
            if (visible(p, b, h, i, j)) hb->qused[i] = hb->kused[j] = 1.0;
    for (int64_t i = 0; i < m->Sq; i++)
        for (int64_t f = 0; f < F; f++) {
            double x = 0.0;
            if (hb->qused[i] != 0.0 && attn__score_is_tanh(p)) { /* Wq q_i + b */
                for (int64_t d = 0; d < p->Dq; d++)
                    x += par(&p->wq, h, f, d) * attn__ld(&m->q, attn__off(m->q.stride, b, i, h, d));
                if (p->has_b) x += par(&p->b, h, 0, f);
            } else if (hb->qused[i] != 0.0) { /* q_i */
                x = attn__ld(&m->q, attn__off(m->q.stride, b, i, h, f));
            }
            hb->fq[i * F + f] = x;
        }
    for (int64_t j = 0; j < m->Sk; j++)
        for (int64_t f = 0; f < F; f++) {
            double x = 0.0;
            if (hb->kused[j] != 0.0 && p->kind != ATTN_SCORE_KIND_SCALED_DOT) { /* Wk k_j or W k_j */
                const attn_tensor *w = attn__score_is_tanh(p) ? &p->wk : &p->w;
                for (int64_t d = 0; d < p->Dk; d++)
                    x += par(w, h, f, d) * attn__ld(&m->k, attn__off(m->k.stride, b, j, h, d));
            } else if (hb->kused[j] != 0.0) { /* k_j */
                x = attn__ld(&m->k, attn__off(m->k.stride, b, j, h, f));
            }
            hb->fk[j * F + f] = x;
        }
}

static double score(const attn__score *p, int64_t h, const double *fq, const double *fk)
{
    int64_t F = feat_dim(p);
    double s = 0.0;
    if (attn__score_is_tanh(p)) {
        for (int64_t a = 0; a < F; a++) s += par(&p->va, h, 0, a) * tanh(fq[a] + fk[a]);
        return s;
    }
    for (int64_t f = 0; f < F; f++) s += fq[f] * fk[f];
    return p->kind == ATTN_SCORE_KIND_SCALED_DOT ? par(&p->g, h, 0, 0) * s : s;
}

/* Scores of every pair of (b, h) into hb->s; -inf where not visible. */
static void scores(const attn__score *p, int64_t b, int64_t h, head_bufs *hb)
{
    const attn__sdpa *m = &p->m;
    int64_t F = feat_dim(p);
    features(p, b, h, hb);
    for (int64_t i = 0; i < m->Sq; i++)
        for (int64_t j = 0; j < m->Sk; j++)
            hb->s[i * m->Sk + j] = visible(p, b, h, i, j)
                                       ? score(p, h, hb->fq + i * F, hb->fk + j * F)
                                       : -INFINITY;
}

int64_t attn__score_ref_nparam(const attn__score *p)
{
    if (attn__score_is_tanh(p)) return p->A * (p->Dq + p->Dk) + 2 * p->A;
    return p->kind == ATTN_SCORE_KIND_LUONG_GENERAL ? p->Dq * p->Dk : 1;
}

void attn__score_ref_forward(const attn__score *p, int64_t b, int64_t h, double *ws)
{
    const attn__sdpa *m = &p->m;
    head_bufs hb = carve(p, ws);
    double *acc = hb.row;
    scores(p, b, h, &hb);
    for (int64_t i = 0; i < m->Sq; i++) {
        const double *row = hb.s + i * m->Sk;
        double mx = -INFINITY, l = 0.0, lse = -INFINITY;
        bool any = false;
        for (int64_t j = 0; j < m->Sk; j++) {
            any |= row[j] != -INFINITY;
            if (row[j] > mx) mx = row[j];
        }
        for (int64_t d = 0; d < m->Dv; d++) acc[d] = 0.0;
        if (any) {
            if (mx == -INFINITY) mx = 0.0; /* only NaN scores: keep the NaN */
            for (int64_t j = 0; j < m->Sk; j++)
                if (row[j] != -INFINITY) l += exp(row[j] - mx);
            for (int64_t j = 0; j < m->Sk; j++) {
                double f = row[j] == -INFINITY ? 0.0 : drop_factor(p, b, h, i, j);
                if (f == 0.0) continue; /* masked or dropped: v_j not read */
                double w = exp(row[j] - mx) / l * f;
                for (int64_t d = 0; d < m->Dv; d++)
                    acc[d] += w * attn__ld(&m->v, attn__off(m->v.stride, b, j, h, d));
            }
            lse = mx + log(l);
        }
        for (int64_t d = 0; d < m->Dv; d++) attn__st(&m->o, attn__off(m->o.stride, b, i, h, d), acc[d]);
        if (m->lse.data != NULL) attn__st(&m->lse, attn__off(m->lse.stride, b, h, i, 0), lse);
    }
}

void attn__score_ref_weights(const attn__score *p, int64_t b, int64_t h, bool with_dropout,
                             const attn_tensor *w, double *ws)
{
    const attn__sdpa *m = &p->m;
    head_bufs hb = carve(p, ws);
    scores(p, b, h, &hb);
    for (int64_t i = 0; i < m->Sq; i++) {
        double lse = attn__ld(&m->lse, attn__off(m->lse.stride, b, h, i, 0));
        for (int64_t j = 0; j < m->Sk; j++) {
            double s = hb.s[i * m->Sk + j], x = 0.0;
            if (s != -INFINITY && lse != -INFINITY) x = exp(s - lse);
            if (with_dropout && x != 0.0) x *= drop_factor(p, b, h, i, j);
            attn__st(w, attn__off(w->stride, b, h, i, j), x);
        }
    }
}

/* dS and dv of (b, h): P_ij = exp(s_ij - lse_i) replaces s in hb->s, then
 *   out_i = sum_j P_ij f_ij v_j  =>  dv_j += P_ij f_ij dO_i,  dP_ij = f_ij dO_i . v_j
 *   softmax                      =>  dS_ij = P_ij (dP_ij - D_i),  D_i = dO_i . out_i
 * dS (0 where not visible) overwrites P in hb->s. */
static void softmax_backward(const attn__score *p, int64_t b, int64_t h, head_bufs *hb)
{
    const attn__sdpa *m = &p->m;
    for (int64_t x = 0; x < m->Sk * m->Dv; x++) hb->dv[x] = 0.0;
    for (int64_t i = 0; i < m->Sq; i++) {
        double *row = hb->s + i * m->Sk;
        double lse = attn__ld(&m->lse, attn__off(m->lse.stride, b, h, i, 0)), delta = 0.0;
        if (hb->qused[i] == 0.0 || lse == -INFINITY) {
            for (int64_t j = 0; j < m->Sk; j++) row[j] = 0.0;
            continue;
        }
        for (int64_t d = 0; d < m->Dv; d++)
            delta += attn__ld(&m->d_o, attn__off(m->d_o.stride, b, i, h, d)) *
                     attn__ld(&m->o, attn__off(m->o.stride, b, i, h, d));
        for (int64_t j = 0; j < m->Sk; j++) {
            if (row[j] == -INFINITY) {
                row[j] = 0.0;
                continue;
            }
            double pij = exp(row[j] - lse), f = drop_factor(p, b, h, i, j), dp = 0.0;
            for (int64_t d = 0; f != 0.0 && d < m->Dv; d++) { /* dropped: v_j not read */
                double g = attn__ld(&m->d_o, attn__off(m->d_o.stride, b, i, h, d));
                hb->dv[j * m->Dv + d] += pij * f * g;
                dp += g * attn__ld(&m->v, attn__off(m->v.stride, b, j, h, d));
            }
            row[j] = pij * (f * dp - delta);
        }
    }
}

/* Gradients of the features from dS, and of v_a / g into pg:
 *   tanh:   s = sum_a v_a t_a, t_a = tanh(fq_a + fk_a)
 *           dfq_a += dS v_a (1 - t_a^2), dfk_a likewise, dv_a += dS t_a
 *   dot:    s = c (fq . fk), c = g or 1:  dfq += c dS fk, dfk += c dS fq,
 *           dg += dS (fq . fk) */
static void feature_backward(const attn__score *p, int64_t h, head_bufs *hb, double *pg)
{
    const attn__sdpa *m = &p->m;
    int64_t F = feat_dim(p);
    double *dva = pg + p->A * (p->Dq + p->Dk) + p->A;
    double c = p->kind == ATTN_SCORE_KIND_SCALED_DOT ? par(&p->g, h, 0, 0) : 1.0;
    for (int64_t x = 0; x < (m->Sq + m->Sk) * F; x++) hb->dfq[x] = 0.0; /* dfq, dfk */
    for (int64_t i = 0; i < m->Sq; i++)
        for (int64_t j = 0; j < m->Sk; j++) {
            double ds = hb->s[i * m->Sk + j];
            if (ds == 0.0) continue; /* not visible, or no gradient */
            const double *fq = hb->fq + i * F, *fk = hb->fk + j * F;
            double *dfq = hb->dfq + i * F, *dfk = hb->dfk + j * F;
            if (attn__score_is_tanh(p)) {
                for (int64_t a = 0; a < F; a++) {
                    double t = tanh(fq[a] + fk[a]), va = par(&p->va, h, 0, a);
                    dfq[a] += ds * va * (1.0 - t * t);
                    dfk[a] += ds * va * (1.0 - t * t);
                    dva[a] += ds * t;
                }
                continue;
            }
            double dot = 0.0;
            for (int64_t f = 0; f < F; f++) {
                dfq[f] += c * ds * fk[f];
                dfk[f] += c * ds * fq[f];
                dot += fq[f] * fk[f];
            }
            if (p->kind == ATTN_SCORE_KIND_SCALED_DOT) pg[0] += ds * dot;
        }
}

/* One input row from its feature gradient df (length F): x is q (rows of
 * Sq, width Dq) or k; w the projection (NULL: the feature is the row itself).
 *   f = W x (+ b)  =>  dx = W^T df,  dW += df x^T,  db += df
 * Unused rows get dx = 0 and are not read. */
static void input_backward(const attn__score *p, int64_t b, int64_t h, int64_t r, bool used,
                           const double *df, const attn_tensor *x, const attn_tensor *dx,
                           int64_t D, const attn_tensor *w, double *dw, double *db, double *row)
{
    int64_t F = feat_dim(p);
    for (int64_t d = 0; d < D; d++) {
        double g = 0.0;
        for (int64_t f = 0; used && f < F; f++) g += (w ? par(w, h, f, d) : (f == d)) * df[f];
        row[d] = g;
    }
    for (int64_t d = 0; d < D; d++) attn__st(dx, attn__off(dx->stride, b, r, h, d), row[d]);
    if (!used || w == NULL) return;
    for (int64_t f = 0; f < F; f++) {
        for (int64_t d = 0; d < D; d++) dw[f * D + d] += df[f] * attn__ld(x, attn__off(x->stride, b, r, h, d));
        if (db != NULL) db[f] += df[f];
    }
}

void attn__score_ref_backward(const attn__score *p, int64_t b, int64_t h, double *ws, double *pg)
{
    const attn__sdpa *m = &p->m;
    head_bufs hb = carve(p, ws);
    int64_t F = feat_dim(p);
    bool tanh_kind = attn__score_is_tanh(p);
    for (int64_t x = 0; x < attn__score_ref_nparam(p); x++) pg[x] = 0.0;
    scores(p, b, h, &hb);
    softmax_backward(p, b, h, &hb);
    feature_backward(p, h, &hb, pg);
    /* slots: tanh [dWq | dWk | db | dv_a], general [dW] */
    double *dwq = pg, *dwk = tanh_kind ? pg + p->A * p->Dq : pg, *db = dwk + p->A * p->Dk;
    const attn_tensor *wq = tanh_kind ? &p->wq : NULL;
    const attn_tensor *wk = tanh_kind ? &p->wk : p->kind == ATTN_SCORE_KIND_LUONG_GENERAL ? &p->w : NULL;
    for (int64_t i = 0; i < m->Sq; i++)
        input_backward(p, b, h, i, hb.qused[i] != 0.0, hb.dfq + i * F, &m->q, &m->dq, p->Dq, wq,
                       dwq, tanh_kind && p->has_b ? db : NULL, hb.row);
    for (int64_t j = 0; j < m->Sk; j++) {
        input_backward(p, b, h, j, hb.kused[j] != 0.0, hb.dfk + j * F, &m->k, &m->dk, p->Dk, wk,
                       dwk, NULL, hb.row);
        for (int64_t d = 0; d < m->Dv; d++)
            attn__st(&m->dv, attn__off(m->dv.stride, b, j, h, d), hb.dv[j * m->Dv + d]);
    }
}
