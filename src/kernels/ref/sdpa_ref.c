/* sdpa_ref.c - the double-precision reference kernel of scaled-dot-product
 * attention: the test oracle and the readable specification. It follows
 * the score definition of docs/operator.md line by line, materialises the
 * Sq x Sk scores of one head, and evaluates every mask by its definition
 * (it shares no mask logic with the fast kernels on purpose: a block mask
 * is applied through its definition, never through its layout). */
#include "kernels/sdpa_kernels.h"

/* i', the key position of query i (docs/operator.md). */
static int64_t aligned(const attn__sdpa *p, int64_t b, int64_t i)
{
    int64_t lq = attn__qlen(p, b), lk = attn__klen(p, b);
    if (p->align == ATTN_ALIGN_OFFSET) return i + p->align_offset;
    return p->align == ATTN_ALIGN_BOTTOM_RIGHT ? i + lk - lq : i;
}

/* Structural visibility of key j for query i: lengths, causal, window, the
 * boolean mask and the block mask. The bias is applied (and may mask) in
 * score(). */
static bool visible(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (i >= attn__qlen(p, b) || j >= attn__klen(p, b)) return false;
    int64_t ia = aligned(p, b, i);
    if (p->causal && j > ia) return false;
    if (p->window_left >= 0 && j < ia - p->window_left) return false;
    if (p->window_right >= 0 && j > ia + p->window_right) return false;
    if (p->has_mask && p->mask[attn__off(p->mask_stride, b, h, i, j)] == 0) return false;
    if (p->bm != NULL && !attn__bm_def(p->bm, b, h, i, j)) return false;
    return true;
}

/* The score of (i, j) after scale, soft-capping, bias and ALiBi; -inf when
 * the key is masked. Masked entries of K and the bias are not read. */
static double score(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (!visible(p, b, h, i, j)) return -INFINITY;
    int64_t hk = h / p->group;
    double dot = 0.0;
    for (int64_t d = 0; d < p->Dk; d++)
        dot += attn__ld(&p->q, attn__off(p->q.stride, b, i, h, d)) *
               attn__ld(&p->k, attn__off(p->k.stride, b, j, hk, d));
    double s = p->scale * dot;
    if (p->softcap > 0.0) s = p->softcap * tanh(s / p->softcap);
    if (p->has_bias) {
        int64_t off = attn__off(p->bias_stride, b, h, i, j);
        double bv = attn__bias_ld(p, off);
        if (bv <= ATTN__BIAS_MASK_LIMIT) return -INFINITY;
        s += bv;
    }
    if (p->alibi != NULL) s -= p->alibi[h] * (double)llabs(aligned(p, b, i) - j);
    return s;
}

/* Dropout factor of (b, h, i, j): 0 if dropped, 1/(1-p) if kept. */
static double drop_factor(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (p->dropout_p <= 0.0) return 1.0;
    bool keep = attn__dropout_keep(p->seed, p->offset, p->drop_threshold, attn__drop_bh(p, b, h), i, j);
    return keep ? 1.0 / (1.0 - p->dropout_p) : 0.0;
}

int64_t attn__ref_forward_ws(const attn__sdpa *p) { return p->Sq * p->Sk + p->Dv; }

void attn__ref_forward_head(const attn__sdpa *p, int64_t b, int64_t h, double *ws)
{
    double *s = ws;              /* (Sq, Sk) scores, then probabilities */
    double *acc = ws + p->Sq * p->Sk; /* (Dv) one output row */
    int64_t hk = h / p->group;
    for (int64_t i = 0; i < p->Sq; i++) {
        double *row = s + i * p->Sk;
        double m = -INFINITY;
        bool any = false;
        for (int64_t j = 0; j < p->Sk; j++) {
            row[j] = score(p, b, h, i, j);
            if (row[j] != -INFINITY) any = true;
            if (row[j] > m) m = row[j];
        }
        for (int64_t d = 0; d < p->Dv; d++) acc[d] = 0.0;
        double lse = -INFINITY;
        if (any) {
            if (m == -INFINITY) m = 0.0; /* only NaN scores remain: keep NaN */
            double l = 0.0;
            for (int64_t j = 0; j < p->Sk; j++)
                if (row[j] != -INFINITY) l += exp(row[j] - m);
            for (int64_t j = 0; j < p->Sk; j++) {
                if (row[j] == -INFINITY) continue; /* masked: V not read */
                double f = drop_factor(p, b, h, i, j);
                if (f == 0.0) continue; /* dropped: V not read */
                double pij = exp(row[j] - m) / l * f;
                for (int64_t d = 0; d < p->Dv; d++)
                    acc[d] += pij * attn__ld(&p->v, attn__off(p->v.stride, b, j, hk, d));
            }
            lse = m + log(l);
        }
        for (int64_t d = 0; d < p->Dv; d++)
            attn__st(&p->o, attn__off(p->o.stride, b, i, h, d), acc[d]);
        if (p->lse.data != NULL) attn__st(&p->lse, attn__off(p->lse.stride, b, h, i, 0), lse);
    }
}

void attn__ref_weights_row(const attn__sdpa *p, int64_t b, int64_t h, int64_t i,
                           bool with_dropout, double *out)
{
    double lse = attn__ld(&p->lse, attn__off(p->lse.stride, b, h, i, 0));
    for (int64_t j = 0; j < p->Sk; j++) {
        double s = lse == -INFINITY ? -INFINITY : score(p, b, h, i, j);
        out[j] = s == -INFINITY ? 0.0 : exp(s - lse);
        if (with_dropout && out[j] != 0.0) out[j] *= drop_factor(p, b, h, i, j);
    }
}

int64_t attn__ref_backward_ws(const attn__sdpa *p)
{
    return p->Sq * p->Sk + p->Sk * (p->Dk + p->Dv) + p->Dk;
}

/* d score / d raw score of soft-capping, from the raw score. */
static double softcap_grad(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (p->softcap <= 0.0) return 1.0;
    int64_t hk = h / p->group;
    double dot = 0.0;
    for (int64_t d = 0; d < p->Dk; d++)
        dot += attn__ld(&p->q, attn__off(p->q.stride, b, i, h, d)) *
               attn__ld(&p->k, attn__off(p->k.stride, b, j, hk, d));
    double t = tanh(p->scale * dot / p->softcap);
    return 1.0 - t * t;
}

/* Index of (b, h, i, j) in a contiguous buffer of the bias gradient's dims,
 * broadcast dims collapsing to 0. */
static int64_t dbias_index(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const int64_t *n = p->dbias.dim;
    int64_t bb = n[0] == 1 ? 0 : b, hb = n[1] == 1 ? 0 : h;
    int64_t ib = n[2] == 1 ? 0 : i, jb = n[3] == 1 ? 0 : j;
    return ((bb * n[1] + hb) * n[2] + ib) * n[3] + jb;
}

void attn__ref_backward_kvhead(const attn__sdpa *p, int64_t b, int64_t hkv,
                               double *ws, double *dbias_acc)
{
    double *prob = ws;                     /* (Sq, Sk) probabilities */
    double *dk = prob + p->Sq * p->Sk;     /* (Sk, Dk) */
    double *dv = dk + p->Sk * p->Dk;       /* (Sk, Dv) */
    double *dq = dv + p->Sk * p->Dv;       /* (Dk) one dQ row */
    for (int64_t x = 0; x < p->Sk * (p->Dk + p->Dv); x++) dk[x] = 0.0;

    for (int64_t h = hkv * p->group; h < (hkv + 1) * p->group; h++) {
        /* P = exp(S - LSE), recomputed from the saved LSE. */
        for (int64_t i = 0; i < p->Sq; i++) {
            double lse = attn__ld(&p->lse, attn__off(p->lse.stride, b, h, i, 0));
            for (int64_t j = 0; j < p->Sk; j++) {
                double s = lse == -INFINITY ? -INFINITY : score(p, b, h, i, j);
                prob[i * p->Sk + j] = s == -INFINITY ? -INFINITY : exp(s - lse); /* -inf: masked */
            }
        }
        for (int64_t i = 0; i < p->Sq; i++) {
            for (int64_t d = 0; d < p->Dk; d++) dq[d] = 0.0;
            /* delta_i = dot(dO_i, O_i) = sum_j P_ij dP_ij */
            double delta = 0.0;
            bool row_visible = false;
            for (int64_t j = 0; j < p->Sk; j++) row_visible |= prob[i * p->Sk + j] != -INFINITY;
            if (row_visible)
                for (int64_t d = 0; d < p->Dv; d++)
                    delta += attn__ld(&p->d_o, attn__off(p->d_o.stride, b, i, h, d)) *
                             attn__ld(&p->o, attn__off(p->o.stride, b, i, h, d));
            for (int64_t j = 0; j < p->Sk; j++) {
                double pij = prob[i * p->Sk + j];
                if (pij == -INFINITY) continue; /* masked: K, V, bias not read */
                double f = drop_factor(p, b, h, i, j);
                /* O_i = sum_j P_ij f_ij V_j  =>  dV_j += P_ij f_ij dO_i,
                 * dP_ij = f_ij dot(dO_i, V_j); a dropped key (f = 0) is not read */
                double dpij = 0.0;
                for (int64_t d = 0; f != 0.0 && d < p->Dv; d++) {
                    double g = attn__ld(&p->d_o, attn__off(p->d_o.stride, b, i, h, d));
                    dv[j * p->Dv + d] += pij * f * g;
                    dpij += g * attn__ld(&p->v, attn__off(p->v.stride, b, j, hkv, d));
                }
                dpij *= f;
                /* softmax: dS_ij = P_ij (dP_ij - delta_i); bias adds to S */
                double ds = pij * (dpij - delta);
                if (dbias_acc != NULL) dbias_acc[dbias_index(p, b, h, i, j)] += ds;
                /* s = cap*tanh(scale*q.k/cap): ds/d(q.k) = scale*(1 - t^2) */
                double dqk = ds * p->scale * softcap_grad(p, b, h, i, j);
                for (int64_t d = 0; d < p->Dk; d++) {
                    dq[d] += dqk * attn__ld(&p->k, attn__off(p->k.stride, b, j, hkv, d));
                    dk[j * p->Dk + d] += dqk * attn__ld(&p->q, attn__off(p->q.stride, b, i, h, d));
                }
            }
            for (int64_t d = 0; d < p->Dk; d++)
                attn__st(&p->dq, attn__off(p->dq.stride, b, i, h, d), dq[d]);
        }
    }
    for (int64_t j = 0; j < p->Sk; j++) {
        for (int64_t d = 0; d < p->Dk; d++)
            attn__st(&p->dk, attn__off(p->dk.stride, b, j, hkv, d), dk[j * p->Dk + d]);
        for (int64_t d = 0; d < p->Dv; d++)
            attn__st(&p->dv, attn__off(p->dv.stride, b, j, hkv, d), dv[j * p->Dv + d]);
    }
}
