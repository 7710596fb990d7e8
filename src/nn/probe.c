/* probe.c - what an explanation reads from one attention call during a
 * backward pass (attn/nn.h, attn_nn_attn_probe): the probabilities,
 * recomputed exactly from Q, K and the forward's LSE by attn_sdpa_weights
 * (or attn_score_weights for a learned scoring function), and their
 * gradient dP = dO V^T per head, the term of the backward before the
 * softmax (dS = P * (dP - rowsum(dO * O))).
 *
 *   q [B, Sq, Hq, D]  v [B, Sk, Hkv, Dv]  d_o [B, Sq, Hq, Dv]
 *   w, dw [B, Hq, Sq, Sk]
 */
#include "nn/nn_private.h"

#include <string.h>

/* The masks of the call: the scoring function's, or the dot product's. */
static const attn_sdpa_params *masks(const attn_nn_attn_probe *p)
{
    return p->score != NULL ? &p->score->masks : p->params;
}

static attn_status check_probe(const char *fn, const attn_nn_attn_probe *p)
{
    const attn_tensor *t[5] = {&p->q, &p->k, &p->v, &p->lse, &p->d_o};
    const char *names[5] = {"q", "k", "v", "lse", "d_o"};
    for (int i = 0; i < 5; i++) {
        if (t[i]->data == NULL)
            return attn_fail(ATTN_NULL_ARG, "%s: argument 'p->%s.data' is NULL", fn, names[i]);
        if (t[i]->dtype != ATTN_DTYPE_F32)
            return attn_fail(ATTN_BAD_DTYPE, "%s: argument 'p->%s' has dtype %s; it must be F32",
                             fn, names[i], attn_dtype_name(t[i]->dtype));
    }
    const attn_tensor *v = &p->v, *d = &p->d_o;
    int64_t B = p->q.dim[0], Sq = p->q.dim[1], Hq = p->q.dim[2];
    if (v->dim[0] != B || d->dim[0] != B || d->dim[1] != Sq || d->dim[2] != Hq ||
        d->dim[3] != v->dim[3] || v->dim[1] != p->k.dim[1] || v->dim[2] != p->k.dim[2])
        return attn_fail(ATTN_SHAPE_MISMATCH, "%s: 'p->d_o' must be [B, Sq, Hq, Dv] and 'p->v' "
                         "[B, Sk, Hkv, Dv] with the dims of q and k", fn);
    if (v->dim[2] < 1 || Hq % v->dim[2] != 0)
        return attn_fail(ATTN_BAD_HEADS, "%s: Hq = %lld is not a multiple of Hkv = %lld", fn,
                         (long long)Hq, (long long)v->dim[2]);
    const attn_sdpa_params *m = masks(p);
    if (m != NULL && (m->n_seqs != 0 || m->cu_seqlens_q != NULL))
        return attn_fail(ATTN_UNSUPPORTED, "%s: the masks' cu_seqlens_q is set; explanations take "
                         "padded batches (B sequences of q_lens, k_lens)", fn);
    if (m != NULL && m->dropout_p != 0)
        return attn_fail(ATTN_UNSUPPORTED, "%s: the masks' dropout_p is %g; explanations need the "
                         "attention without dropout", fn, m->dropout_p);
    return ATTN_OK;
}

static float at(const attn_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return ((const float *)t->data)[a * t->stride[0] + b * t->stride[1] + c * t->stride[2] +
                                    d * t->stride[3]];
}

/* dw = dO V^T per head, 0 outside the lengths. */
static void grad_weights(const attn_nn_attn_probe *p, float *dw)
{
    const attn_tensor *v = &p->v, *d = &p->d_o;
    int64_t B = d->dim[0], Sq = d->dim[1], Hq = d->dim[2], Dv = d->dim[3], Sk = v->dim[1];
    int64_t group = Hq / v->dim[2];
    const attn_sdpa_params *pr = masks(p);
    for (int64_t b = 0; b < B; b++) {
        int64_t lq = pr && pr->q_lens ? pr->q_lens[b] : Sq, lk = pr && pr->k_lens ? pr->k_lens[b] : Sk;
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < Sq; i++) {
                float *row = dw + ((b * Hq + h) * Sq + i) * Sk;
                memset(row, 0, (size_t)Sk * sizeof(float));
                for (int64_t j = 0; i < lq && j < lk; j++) {
                    double acc = 0;
                    for (int64_t e = 0; e < Dv; e++)
                        acc += (double)at(d, b, i, h, e) * at(v, b, j, h / group, e);
                    row[j] = (float)acc;
                }
            }
    }
}

attn_status attn_nn_attn_probe_weights(attn_ctx *ctx, const attn_nn_attn_probe *p, float *w,
                                       float *dw)
{
    ATTN__NOT_NULL(__func__, ctx);
    ATTN__NOT_NULL(__func__, p);
    attn_status st = check_probe(__func__, p);
    if (st != ATTN_OK) return st;
    int64_t B = p->q.dim[0], Hq = p->q.dim[2], Sq = p->q.dim[1], Sk = p->k.dim[1];
    if (w != NULL) {
        attn_tensor tw = attn_tensor_make(w, ATTN_DTYPE_F32, B, Hq, Sq, Sk);
        st = p->score ? attn_score_weights(ctx, &p->q, &p->k, &p->lse, p->score, 0, &tw)
                      : attn_sdpa_weights(ctx, &p->q, &p->k, &p->lse, p->params, NULL, 0, NULL, 0,
                                          0, &tw);
        if (st != ATTN_OK) return st;
    }
    if (dw != NULL) grad_weights(p, dw);
    return ATTN_OK;
}
