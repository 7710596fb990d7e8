/* mha.c - the multi-head attention module: input projections (torch's
 * packed in_proj_weight or separate q/k/v weights, grouped-query allowed),
 * optional rotary positions, attn_sdpa_forward/backward from the core, and
 * the output projection; plus torch's need_weights outputs.
 *
 * Buffers (N = B*Sq rows of queries, M = B*Sk rows of keys):
 *   q [N, H*hd]   k, v [M, Hkv*hd]   o [N, H*hd]   lse [B, H, Sq]
 * A packed batch (opts->cu_seqlens_q) is B = 1 with Sq, Sk the total rows:
 * the projections, rotations and output projection are row-wise, so only
 * the attention call needs the offsets, which it hands to the core.
 */
#include "nn/nn_private.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* a * b * c into *out; false on overflow (operands >= 0). */
static bool mul3(int64_t a, int64_t b, int64_t c, int64_t *out)
{
    if (a < 0 || b < 0 || c < 0) return false;
    if (a != 0 && b > INT64_MAX / a) return false;
    if (a * b != 0 && c > INT64_MAX / (a * b)) return false;
    *out = a * b * c;
    return true;
}

/* The three projection weights and biases of module m. */
typedef struct {
    const float *w[3], *b[3];
    float *dw[3], *db[3];
    int64_t rows[3], cols[3];
} proj;

static proj projections(const attn_nn_mha *m)
{
    proj p;
    int64_t hq = m->n_heads * m->head_dim, hk = m->n_kv_heads * m->head_dim;
    int64_t off[3] = {0, hq, hq + hk};
    p.rows[0] = hq;
    p.rows[1] = p.rows[2] = hk;
    p.cols[0] = m->embed_dim;
    p.cols[1] = m->kdim;
    p.cols[2] = m->vdim;
    for (int i = 0; i < 3; i++) {
        if (m->packed) {
            p.w[i] = m->in_proj_weight + off[i] * m->embed_dim;
            p.dw[i] = m->d_in_proj_weight ? m->d_in_proj_weight + off[i] * m->embed_dim : NULL;
        } else {
            p.w[i] = i == 0 ? m->q_proj_weight : i == 1 ? m->k_proj_weight : m->v_proj_weight;
            p.dw[i] = i == 0 ? m->d_q_proj_weight : i == 1 ? m->d_k_proj_weight : m->d_v_proj_weight;
        }
        p.b[i] = m->in_proj_bias ? m->in_proj_bias + off[i] : NULL;
        p.db[i] = m->d_in_proj_bias ? m->d_in_proj_bias + off[i] : NULL;
    }
    return p;
}

void attn__nn_mha_proj(const attn_nn_mha *a, int i, const float **w, const float **b,
                       int64_t *rows, int64_t *cols)
{
    proj p = projections(a);
    *w = p.w[i];
    *b = p.b[i];
    *rows = p.rows[i];
    *cols = p.cols[i];
}

static attn_status check_module(const attn_nn_mha *m)
{
    if (m == NULL) return attn_fail(ATTN_NULL_ARG, "attn_nn_mha: argument 'm' is NULL");
    if (m->embed_dim <= 0 || m->n_heads <= 0 || m->n_kv_heads <= 0 || m->head_dim <= 0 ||
        m->kdim <= 0 || m->vdim <= 0)
        return attn_fail(ATTN_BAD_DIM, "attn_nn_mha: 'embed_dim', 'n_heads', 'n_kv_heads', "
                                       "'head_dim', 'kdim' and 'vdim' must be > 0");
    if (m->n_heads % m->n_kv_heads != 0)
        return attn_fail(ATTN_BAD_HEADS, "attn_nn_mha: 'n_heads' %lld is not a multiple of "
                         "'n_kv_heads' %lld", (long long)m->n_heads, (long long)m->n_kv_heads);
    if (m->packed) {
        if (m->n_kv_heads != m->n_heads || m->kdim != m->embed_dim || m->vdim != m->embed_dim ||
            m->n_heads * m->head_dim != m->embed_dim)
            return attn_fail(ATTN_SHAPE_MISMATCH, "attn_nn_mha: 'packed' needs n_kv_heads == "
                             "n_heads, kdim == vdim == embed_dim == n_heads * head_dim");
        if (m->in_proj_weight == NULL)
            return attn_fail(ATTN_NULL_ARG, "attn_nn_mha: 'in_proj_weight' is NULL");
    } else if (!m->q_proj_weight || !m->k_proj_weight || !m->v_proj_weight) {
        return attn_fail(ATTN_NULL_ARG, "attn_nn_mha: a separate projection weight "
                                        "('q_proj_weight', 'k_proj_weight', 'v_proj_weight') is NULL");
    }
    if (m->out_proj_weight == NULL)
        return attn_fail(ATTN_NULL_ARG, "attn_nn_mha: 'out_proj_weight' is NULL");
    return ATTN_OK;
}

attn_status attn__nn_check_offsets(const char *fn, const char *name, const int64_t *cu, int64_t n,
                                   int64_t total, const char *total_name, int64_t min_len,
                                   int64_t max_len)
{
    if (cu == NULL) return attn_fail(ATTN_BAD_PARAM, "%s: '%s' is NULL", fn, name);
    if (cu[0] != 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: '%s[0]' is %lld; the offsets must start at 0", fn, name,
                         (long long)cu[0]);
    for (int64_t s = 0; s < n; s++) {
        if (cu[s + 1] < cu[s])
            return attn_fail(ATTN_BAD_PARAM, "%s: '%s[%lld]' is %lld, below '%s[%lld]' = %lld; the "
                             "offsets must never decrease", fn, name, (long long)(s + 1),
                             (long long)cu[s + 1], name, (long long)s, (long long)cu[s]);
        /* cu[s] >= 0 here, so the difference does not overflow */
        if (cu[s + 1] - cu[s] < min_len || cu[s + 1] - cu[s] > max_len)
            return attn_fail(ATTN_BAD_PARAM, "%s: sequence %lld of '%s' (entries %lld .. %lld) has "
                             "%lld tokens; it must have %lld to %lld", fn, (long long)s, name,
                             (long long)s, (long long)(s + 1), (long long)(cu[s + 1] - cu[s]),
                             (long long)min_len, (long long)max_len);
    }
    if (cu[n] != total)
        return attn_fail(ATTN_BAD_PARAM, "%s: '%s[%lld]' is %lld; the offsets must end at %s = %lld "
                         "(an array of another number of sequences ends elsewhere)", fn, name,
                         (long long)n, (long long)cu[n], total_name, (long long)total);
    return ATTN_OK;
}

/* The packed-batch fields of o: none, or a valid packed call (B = 1). */
static attn_status check_packed(const char *fn, const attn_nn_mha_opts *o, int64_t B, int64_t Sq,
                                int64_t Sk)
{
    if (o == NULL || (o->n_seqs == 0 && o->cu_seqlens_q == NULL && o->cu_seqlens_k == NULL))
        return ATTN_OK;
    if (o->n_seqs < 1 || o->cu_seqlens_q == NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'opts->n_seqs' is %lld with 'opts->cu_seqlens_q' %s; a "
                         "packed batch has n_seqs >= 1 and its query offsets", fn,
                         (long long)o->n_seqs, o->cu_seqlens_q ? "set" : "NULL");
    if (B != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'B' is %lld; a packed batch ('opts->cu_seqlens_q') is one "
                         "row of sequences, so B must be 1", fn, (long long)B);
    if (o->k_lens != NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'opts->k_lens' is set beside 'opts->cu_seqlens_q'; the "
                         "offsets give the lengths", fn);
    if (o->key_keep != NULL)
        return attn_fail(ATTN_UNSUPPORTED, "%s: 'opts->key_keep' is set beside 'opts->cu_seqlens_q'; "
                         "packed batches hold no padding to mask", fn);
    if (o->cu_seqlens_k == NULL && Sk != Sq)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'opts->cu_seqlens_k' is NULL (the query offsets, "
                         "self-attention) but 'Sk' = %lld differs from 'Sq' = %lld", fn,
                         (long long)Sk, (long long)Sq);
    attn_status st = attn__nn_check_offsets(fn, "opts->cu_seqlens_q", o->cu_seqlens_q, o->n_seqs, Sq,
                                            "'Sq'", 0, INT64_MAX);
    if (st == ATTN_OK && o->cu_seqlens_k)
        st = attn__nn_check_offsets(fn, "opts->cu_seqlens_k", o->cu_seqlens_k, o->n_seqs, Sk, "'Sk'",
                                    0, INT64_MAX);
    return st;
}

attn_sdpa_params attn__nn_mha_sdpa_params(const attn_nn_mha_opts *o, attn_tensor *mask, int64_t B,
                                          int64_t Sk)
{
    attn_sdpa_params p = attn_sdpa_params_default();
    if (o == NULL) return p;
    p.causal = o->causal;
    p.k_lens = o->k_lens;
    p.dropout_p = o->dropout_p;
    p.seed = o->seed;
    p.offset = o->offset;
    p.n_seqs = o->n_seqs;
    p.cu_seqlens_q = o->cu_seqlens_q;
    p.cu_seqlens_k = o->cu_seqlens_k;
    if (o->key_keep) {
        /* [B, 1, 1, Sk] broadcast over heads and queries */
        *mask = attn_tensor_make((void *)o->key_keep, ATTN_DTYPE_BOOL, B, 1, 1, Sk);
        mask->stride[1] = mask->stride[2] = 0;
        p.mask = mask;
    }
    return p;
}

void attn_nn_mha_saved_free(attn_nn_mha_saved *s)
{
    if (s == NULL) return;
    attn_release(s->q);
    attn_release(s->k);
    attn_release(s->v);
    attn_release(s->o);
    attn_release(s->lse);
    memset(s, 0, sizeof *s);
}

static attn_status alloc_saved(attn_nn_mha_saved *s, const attn_nn_mha *m, int64_t B,
                               int64_t Sq, int64_t Sk)
{
    int64_t nq, nk, nl;
    if (!mul3(B, Sq, m->n_heads * m->head_dim, &nq) ||
        !mul3(B, Sk, m->n_kv_heads * m->head_dim, &nk) ||
        !mul3(B, m->n_heads, Sq, &nl))
        return attn_fail(ATTN_OVERFLOW, "attn_nn_mha_forward: buffer sizes overflow");
    memset(s, 0, sizeof *s);
    s->B = B;
    s->Sq = Sq;
    s->Sk = Sk;
    /* at least one float each: a call without queries or keys (an empty
     * sequence, a packed batch of them) still hands valid pointers on */
    s->q = attn_alloc((size_t)(nq ? nq : 1) * sizeof(float));
    s->k = attn_alloc((size_t)(nk ? nk : 1) * sizeof(float));
    s->v = attn_alloc((size_t)(nk ? nk : 1) * sizeof(float));
    s->o = attn_alloc((size_t)(nq ? nq : 1) * sizeof(float));
    s->lse = attn_alloc((size_t)(nl ? nl : 1) * sizeof(float));
    if (!s->q || !s->o || !s->k || !s->v || !s->lse) {
        attn_nn_mha_saved_free(s);
        return attn_fail(ATTN_NO_MEMORY, "attn_nn_mha_forward: out of memory");
    }
    return ATTN_OK;
}

static attn_status head_weights(attn_ctx *ctx, const attn_nn_mha *m, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *lse,
                                const attn_sdpa_params *p, int64_t B, int64_t Sq, int64_t Sk,
                                float *weights, int average)
{
    int64_t H = m->n_heads, n;
    if (!average) {
        attn_tensor w = attn_tensor_make(weights, ATTN_DTYPE_F32, B, H, Sq, Sk);
        return attn_sdpa_weights(ctx, q, k, lse, p, NULL, 0, NULL, 0, p->dropout_p > 0, &w);
    }
    if (!mul3(B * H, Sq, Sk, &n))
        return attn_fail(ATTN_OVERFLOW, "attn_nn_mha_forward: weights size overflows");
    float *all = attn_alloc((size_t)n * sizeof(float));
    if (n && !all) return attn_fail(ATTN_NO_MEMORY, "attn_nn_mha_forward: out of memory");
    attn_tensor w = attn_tensor_make(all, ATTN_DTYPE_F32, B, H, Sq, Sk);
    attn_status st = attn_sdpa_weights(ctx, q, k, lse, p, NULL, 0, NULL, 0, p->dropout_p > 0, &w);
    if (st == ATTN_OK) {
        /* [B, Sq, Sk] = mean over heads of [B, H, Sq, Sk] */
        int64_t plane = Sq * Sk;
        for (int64_t b = 0; b < B; b++)
            for (int64_t e = 0; e < plane; e++) {
                double acc = 0;
                for (int64_t h = 0; h < H; h++) acc += all[(b * H + h) * plane + e];
                weights[b * plane + e] = (float)(acc / (double)H);
            }
    }
    attn_release(all);
    return st;
}

attn_status attn_nn_mha_forward(attn_ctx *ctx, const attn_nn_mha *m, const float *query,
                                const float *kv, int64_t B, int64_t Sq, int64_t Sk,
                                const attn_nn_mha_opts *opts, float *out, float *weights,
                                int average, attn_nn_mha_saved *saved)
{
    attn_status st = check_module(m);
    if (st != ATTN_OK) return st;
    if (!ctx || !query || !kv || !out)
        return attn_fail(ATTN_NULL_ARG, "attn_nn_mha_forward: 'ctx', 'query', 'kv' and 'out' "
                                        "must not be NULL");
    if (B < 0 || Sq < 0 || Sk < 0)
        return attn_fail(ATTN_BAD_DIM, "attn_nn_mha_forward: 'B', 'Sq', 'Sk' must be >= 0");
    if ((st = check_packed("attn_nn_mha_forward", opts, B, Sq, Sk)) != ATTN_OK) return st;
    attn_nn_mha_saved local;
    attn_nn_mha_saved *s = saved ? saved : &local;
    if ((st = alloc_saved(s, m, B, Sq, Sk)) != ATTN_OK) return st;

    proj p = projections(m);
    int64_t H = m->n_heads, Hk = m->n_kv_heads, hd = m->head_dim;
    st = attn_nn_linear_forward(ctx, query, B * Sq, p.cols[0], p.w[0], p.b[0], p.rows[0], s->q);
    if (st == ATTN_OK)
        st = attn_nn_linear_forward(ctx, kv, B * Sk, p.cols[1], p.w[1], p.b[1], p.rows[1], s->k);
    if (st == ATTN_OK)
        st = attn_nn_linear_forward(ctx, kv, B * Sk, p.cols[2], p.w[2], p.b[2], p.rows[2], s->v);
    if (st == ATTN_OK && opts && opts->rope_pos) {
        st = attn_nn_rope_forward(s->q, B * Sq, H, hd, opts->rope_pos, opts->rope_theta, s->q);
        if (st == ATTN_OK)
            st = attn_nn_rope_forward(s->k, B * Sk, Hk, hd,
                                      opts->rope_kpos ? opts->rope_kpos : opts->rope_pos,
                                      opts->rope_theta, s->k);
    }
    attn_tensor mask;
    attn_sdpa_params sp = attn__nn_mha_sdpa_params(opts, &mask, B, Sk);
    attn_tensor tq = attn_tensor_make(s->q, ATTN_DTYPE_F32, B, Sq, H, hd);
    attn_tensor tk = attn_tensor_make(s->k, ATTN_DTYPE_F32, B, Sk, Hk, hd);
    attn_tensor tv = attn_tensor_make(s->v, ATTN_DTYPE_F32, B, Sk, Hk, hd);
    attn_tensor to = attn_tensor_make(s->o, ATTN_DTYPE_F32, B, Sq, H, hd);
    attn_tensor tl = attn_tensor_make(s->lse, ATTN_DTYPE_F32, B, H, Sq, 1);
    if (st == ATTN_OK) st = attn_sdpa_forward(ctx, &tq, &tk, &tv, &sp, &to, &tl);
    if (st == ATTN_OK && weights)
        st = head_weights(ctx, m, &tq, &tk, &tl, &sp, B, Sq, Sk, weights, average);
    if (st == ATTN_OK)
        st = attn_nn_linear_forward(ctx, s->o, B * Sq, H * hd, m->out_proj_weight, m->out_proj_bias,
                                    m->embed_dim, out);
    if (st != ATTN_OK || saved == NULL) attn_nn_mha_saved_free(s);
    return st;
}

attn_status attn_nn_mha_backward(attn_ctx *ctx, const attn_nn_mha *m, const float *query,
                                 const float *kv, const attn_nn_mha_opts *opts,
                                 const attn_nn_mha_saved *s, const float *d_out,
                                 float *d_query, float *d_kv)
{
    attn_status st = check_module(m);
    if (st != ATTN_OK) return st;
    if (!ctx || !query || !kv || !s || !d_out || !s->q)
        return attn_fail(ATTN_NULL_ARG, "attn_nn_mha_backward: 'ctx', 'query', 'kv', 'saved' "
                                        "and 'd_out' must not be NULL");
    int64_t B = s->B, Sq = s->Sq, Sk = s->Sk, H = m->n_heads, Hk = m->n_kv_heads;
    int64_t hd = m->head_dim, nq = B * Sq * H * hd, nk = B * Sk * Hk * hd;
    if ((st = check_packed("attn_nn_mha_backward", opts, B, Sq, Sk)) != ATTN_OK) return st;
    proj p = projections(m);
    /* d_o [N, H*hd], dq [N, H*hd], dk, dv, dk0 [M, Hkv*hd]; dk0 is dk before the
     * rotation; d_o, done with after the core's backward, holds dq before it. */
    float *buf = attn_calloc((size_t)(2 * nq + 3 * nk + 1), sizeof(float));
    if (!buf) return attn_fail(ATTN_NO_MEMORY, "attn_nn_mha_backward: out of memory");
    float *d_o = buf, *dq = d_o + nq, *dk = dq + nq, *dv = dk + nk, *dk0 = dv + nk;
    float *dq0 = d_o;

    st = attn_nn_linear_backward(ctx, s->o, B * Sq, H * hd, m->out_proj_weight, m->embed_dim,
                                 d_out, d_o, m->d_out_proj_weight, m->d_out_proj_bias);
    attn_tensor mask;
    attn_sdpa_params sp = attn__nn_mha_sdpa_params(opts, &mask, B, Sk);
    attn_tensor tq = attn_tensor_make(s->q, ATTN_DTYPE_F32, B, Sq, H, hd);
    attn_tensor tk = attn_tensor_make(s->k, ATTN_DTYPE_F32, B, Sk, Hk, hd);
    attn_tensor tv = attn_tensor_make(s->v, ATTN_DTYPE_F32, B, Sk, Hk, hd);
    attn_tensor to = attn_tensor_make(s->o, ATTN_DTYPE_F32, B, Sq, H, hd);
    attn_tensor tdo = attn_tensor_make(d_o, ATTN_DTYPE_F32, B, Sq, H, hd);
    attn_tensor tl = attn_tensor_make(s->lse, ATTN_DTYPE_F32, B, H, Sq, 1);
    attn_tensor tdq = attn_tensor_make(dq, ATTN_DTYPE_F32, B, Sq, H, hd);
    attn_tensor tdk = attn_tensor_make(dk, ATTN_DTYPE_F32, B, Sk, Hk, hd);
    attn_tensor tdv = attn_tensor_make(dv, ATTN_DTYPE_F32, B, Sk, Hk, hd);
    if (st == ATTN_OK)
        st = attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, &sp, &tdq, &tdk, &tdv, NULL);
    const float *gq = dq, *gk = dk;
    if (st == ATTN_OK && opts && opts->rope_pos) {
        /* the projections saw the rotated q, k: undo the rotation on the grads */
        memset(dq0, 0, (size_t)nq * sizeof(float));
        st = attn_nn_rope_backward(dq, B * Sq, H, hd, opts->rope_pos, opts->rope_theta, dq0);
        if (st == ATTN_OK)
            st = attn_nn_rope_backward(dk, B * Sk, Hk, hd,
                                       opts->rope_kpos ? opts->rope_kpos : opts->rope_pos,
                                       opts->rope_theta, dk0);
        gq = dq0;
        gk = dk0;
    }
    if (st == ATTN_OK)
        st = attn_nn_linear_backward(ctx, query, B * Sq, p.cols[0], p.w[0], p.rows[0], gq, d_query,
                                     p.dw[0], p.db[0]);
    if (st == ATTN_OK)
        st = attn_nn_linear_backward(ctx, kv, B * Sk, p.cols[1], p.w[1], p.rows[1], gk, d_kv, p.dw[1],
                                     p.db[1]);
    if (st == ATTN_OK)
        st = attn_nn_linear_backward(ctx, kv, B * Sk, p.cols[2], p.w[2], p.rows[2], dv, d_kv, p.dw[2],
                                     p.db[2]);
    attn_release(buf);
    return st;
}
