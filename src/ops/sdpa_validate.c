/* sdpa_validate.c - every argument check of the attention entry points, in
 * one place. Each validation returns the prepared call (the resolved
 * problem, its outputs and the kernels that run it), or a status whose
 * message names the public function and the bad argument; nothing has been
 * written then. */
#include "ops/sdpa_validate.h"

#include <string.h>

attn_sdpa_params attn_sdpa_params_default(void)
{
    attn_sdpa_params a;
    memset(&a, 0, sizeof a);
    a.window_left = -1;
    a.window_right = -1;
    return a;
}

/* ---- views ------------------------------------------------------------------------ */

/* Largest element offset of a view with at least one element; false if it
 * goes past ATTN__MAX_ELEMS. */
static bool max_offset(const attn_tensor *t, int64_t *out)
{
    int64_t off = 0, term;
    for (int d = 0; d < 4; d++) {
        if (!attn__mul(t->dim[d] - 1, t->stride[d], &term) || off > ATTN__MAX_ELEMS - term) return false;
        off += term;
    }
    *out = off;
    return true;
}

static bool has_elements(const attn_tensor *t)
{
    return t->dim[0] > 0 && t->dim[1] > 0 && t->dim[2] > 0 && t->dim[3] > 0;
}

/* Outputs: sorted by stride, each dim of size > 1 must step past the whole
 * extent of the smaller ones, else two elements share an address. */
static bool aliases(const attn_tensor *t)
{
    int order[4] = {0, 1, 2, 3};
    for (int a = 1; a < 4; a++)
        for (int b = a; b > 0 && t->stride[order[b]] < t->stride[order[b - 1]]; b--) {
            int tmp = order[b];
            order[b] = order[b - 1];
            order[b - 1] = tmp;
        }
    int64_t extent = 1; /* elements spanned by the dims seen so far */
    for (int a = 0; a < 4; a++) {
        int d = order[a];
        if (t->dim[d] <= 1) continue;
        if (t->stride[d] < extent) return true;
        extent = t->stride[d] * (t->dim[d] - 1) + extent;
    }
    return false;
}

attn_status attn__check_view(const char *fn, const attn__named *v)
{
    const attn_tensor *t = v->t;
    int64_t n = 1, maxoff;
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] < 0)
            return attn_fail(ATTN_BAD_DIM, "%s: %s.dim[%d] is %lld; dims must be >= 0", fn, v->name, d,
                             (long long)t->dim[d]);
        if (t->stride[d] < 0)
            return attn_fail(ATTN_BAD_STRIDE, "%s: %s.stride[%d] is %lld; strides must be >= 0", fn,
                             v->name, d, (long long)t->stride[d]);
        if (!attn__mul(n, t->dim[d], &n))
            return attn_fail(ATTN_OVERFLOW, "%s: %s: the element count overflows the addressable range",
                             fn, v->name);
    }
    if (n == 0) return ATTN_OK;
    if (!max_offset(t, &maxoff))
        return attn_fail(ATTN_OVERFLOW, "%s: %s: the strides reach past the addressable range", fn,
                         v->name);
    if (t->data == NULL) return attn_fail(ATTN_NULL_ARG, "%s: %s.data is NULL", fn, v->name);
    if (v->output && aliases(t))
        return attn_fail(ATTN_BAD_STRIDE,
                         "%s: %s: its strides make two elements share an address; an output "
                         "must not alias itself", fn, v->name);
    return ATTN_OK;
}

/* View t has exactly dims want[4]. */
static attn_status check_dims4(const char *fn, const attn_tensor *t, const char *name, const int64_t want[4])
{
    int64_t d0 = want[0], d1 = want[1], d2 = want[2], d3 = want[3];
    for (int d = 0; d < 4; d++)
        if (t->dim[d] != want[d])
            return attn_fail(ATTN_SHAPE_MISMATCH,
                             "%s: %s is [%lld, %lld, %lld, %lld]; expected [%lld, %lld, %lld, %lld]",
                             fn, name, (long long)t->dim[0], (long long)t->dim[1],
                             (long long)t->dim[2], (long long)t->dim[3], (long long)d0,
                             (long long)d1, (long long)d2, (long long)d3);
    return ATTN_OK;
}

attn_status attn__check_shape(const char *fn, const attn__sdpa *p, const attn_tensor *t,
                              const char *name, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (t->dtype != p->dtype)
        return attn_fail(ATTN_BAD_DTYPE, "%s: %s.dtype is %d; it must match q.dtype (%d)", fn, name,
                         (int)t->dtype, (int)p->dtype);
    const int64_t want[4] = {d0, d1, d2, d3};
    return check_dims4(fn, t, name, want);
}

attn_status attn__check_view_shape(const char *fn, const attn__sdpa *p, const attn__named *v,
                                   const int64_t dims[4])
{
    attn_status st = attn__check_view(fn, v);
    if (st != ATTN_OK) return st;
    return attn__check_shape(fn, p, v->t, v->name, dims[0], dims[1], dims[2], dims[3]);
}

/* The bytes from a checked view's first element to its last (0: none). */
static size_t extent_bytes(const attn_tensor *t)
{
    int64_t last;
    if (!has_elements(t) || !max_offset(t, &last)) return 0;
    return (size_t)(last + 1) * attn_dtype_size(t->dtype);
}

attn_status attn__check_overlap(const char *fn, const attn__named *views, int n)
{
    for (int x = 0; x < n; x++) {
        if (views[x].t == NULL || !views[x].output) continue;
        for (int y = 0; y < n; y++) {
            const attn_tensor *a = views[x].t, *b = views[y].t;
            if (y == x || b == NULL || (y > x && views[y].output)) continue; /* each pair once */
            if (attn__overlap(a->data, extent_bytes(a), b->data, extent_bytes(b)))
                return attn_fail(ATTN_OVERLAP, "%s: %s overlaps %s; outputs must not share memory "
                                 "with inputs or other outputs", fn, views[x].name, views[y].name);
        }
    }
    return ATTN_OK;
}

attn_status attn__call_kernels(const char *fn, const attn_ctx *ctx, attn_dtype dtype,
                               const attn__kernels **k)
{
    bool forced32 = ctx->kernel != ATTN_KERNEL_AUTO && ctx->kernel != ATTN_KERNEL_REF;
    if (forced32 && dtype == ATTN_DTYPE_F64)
        return attn_fail(ATTN_UNSUPPORTED, "%s: the %s kernel computes in float32 (on F32, BF16 or F16 "
                         "tensors); q.dtype is F64, which runs the reference", fn, attn_kernel_name(ctx->kernel));
    *k = dtype == ATTN_DTYPE_F64 || ctx->kernel == ATTN_KERNEL_REF ? NULL : ctx->table;
    return ATTN_OK;
}

/* ---- dtypes ------------------------------------------------------------------------- */

static bool is_half(attn_dtype d) { return d == ATTN_DTYPE_BF16 || d == ATTN_DTYPE_F16; }

/* The dtype of LSE: float32, or float64 in a F64 call. */
static attn_dtype lse_dtype(const attn__sdpa *p) { return p->dtype == ATTN_DTYPE_F64 ? ATTN_DTYPE_F64 : ATTN_DTYPE_F32; }

/* The attention slots of the table that run dtypes q (Q, O) and kv (K, V). */
static attn__sdpa_dt sdpa_dt(attn_dtype q, attn_dtype kv)
{
    if (q == ATTN_DTYPE_BF16) return ATTN__SDPA_BF16;
    if (q == ATTN_DTYPE_F16) return ATTN__SDPA_F16;
    if (kv == ATTN_DTYPE_BF16) return ATTN__SDPA_F32_BF16KV;
    return kv == ATTN_DTYPE_F16 ? ATTN__SDPA_F32_F16KV : ATTN__SDPA_F32;
}

static attn_status check_q_dtype(const char *fn, attn_dtype dq)
{
    if (dq != ATTN_DTYPE_F32 && dq != ATTN_DTYPE_F64 && !is_half(dq))
        return attn_fail(ATTN_BAD_DTYPE, "%s: q.dtype is %s (%d); it must be F32, F64, BF16 or F16", fn,
                         attn_dtype_name(dq), (int)dq);
    return ATTN_OK;
}

/* K and V against Q's dtype: one float dtype for all, or (mixed, forward
 * only) F32 Q against a K and V both BF16 or both F16. */
static attn_status check_kv_dtypes(const char *fn, attn_dtype dq, const attn_tensor *k, const attn_tensor *v,
                                   bool mixed_ok)
{
    attn_dtype dk = k->dtype;
    bool mixed = dq == ATTN_DTYPE_F32 && is_half(dk);
    if (mixed && !mixed_ok)
        return attn_fail(ATTN_BAD_DTYPE, "%s: k.dtype is %s with q.dtype F32: a half-precision K and V "
                         "under F32 Q (the mixed decode) is for attn_sdpa_forward only", fn, attn_dtype_name(dk));
    if (dk != dq && !mixed)
        return attn_fail(ATTN_BAD_DTYPE, "%s: k.dtype is %s (%d) with q.dtype %s; Q, K and V must share one "
                         "dtype, or K and V be both BF16 or both F16 under F32 Q (attn_sdpa_forward only)",
                         fn, attn_dtype_name(dk), (int)dk, attn_dtype_name(dq));
    if (v != NULL && v->dtype != dk)
        return attn_fail(ATTN_BAD_DTYPE, "%s: v.dtype is %s (%d) with k.dtype %s; V must have K's dtype", fn,
                         attn_dtype_name(v->dtype), (int)v->dtype, attn_dtype_name(dk));
    return ATTN_OK;
}

/* ---- options ------------------------------------------------------------------------ */

static attn_status check_params(const char *fn, const attn_sdpa_params *a, attn__sdpa *p)
{
    if (a->has_scale && !isfinite(a->scale))
        return attn_fail(ATTN_BAD_PARAM, "%s: params.scale is %g; it must be finite", fn, a->scale);
    if (!isfinite(a->softcap) || a->softcap < 0.0)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.softcap is %g; it must be 0 (off) or finite and > 0",
                         fn, a->softcap);
    if (!(a->dropout_p >= 0.0 && a->dropout_p < 1.0))
        return attn_fail(ATTN_BAD_PARAM, "%s: params.dropout_p is %g; it must be in [0, 1)", fn,
                         a->dropout_p);
    if (a->causal != 0 && a->causal != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.causal is %d; it must be 0 or 1", fn, a->causal);
    if (a->align != ATTN_ALIGN_TOP_LEFT && a->align != ATTN_ALIGN_BOTTOM_RIGHT && a->align != ATTN_ALIGN_OFFSET)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.align is %d; it must be an attn_align value", fn,
                         (int)a->align);
    if (a->align == ATTN_ALIGN_OFFSET && (a->align_offset < -ATTN__MAX_ELEMS || a->align_offset > ATTN__MAX_ELEMS))
        return attn_fail(ATTN_BAD_PARAM, "%s: params.align_offset is %lld; its magnitude must be at most %lld", fn,
                         (long long)a->align_offset, (long long)ATTN__MAX_ELEMS);
    if (a->window_left < -1 || a->window_right < -1)
        return attn_fail(ATTN_BAD_PARAM,
                         "%s: params.window_left/right are %lld/%lld; each must be >= 0, or -1 for "
                         "unbounded", fn, (long long)a->window_left, (long long)a->window_right);
    for (int64_t b = 0; a->q_lens != NULL && b < p->B; b++)
        if (a->q_lens[b] < 0 || a->q_lens[b] > p->Sq)
            return attn_fail(ATTN_BAD_PARAM, "%s: params.q_lens[%lld] is %lld; it must be in [0, Sq=%lld]",
                             fn, (long long)b, (long long)a->q_lens[b], (long long)p->Sq);
    for (int64_t b = 0; a->k_lens != NULL && b < p->B; b++)
        if (a->k_lens[b] < 0 || a->k_lens[b] > p->Sk)
            return attn_fail(ATTN_BAD_PARAM, "%s: params.k_lens[%lld] is %lld; it must be in [0, Sk=%lld]",
                             fn, (long long)b, (long long)a->k_lens[b], (long long)p->Sk);
    for (int64_t h = 0; a->alibi_slopes != NULL && h < p->Hq; h++)
        if (!isfinite(a->alibi_slopes[h]))
            return attn_fail(ATTN_BAD_PARAM, "%s: params.alibi_slopes[%lld] is %g; it must be finite", fn,
                             (long long)h, a->alibi_slopes[h]);
    p->scale = a->has_scale ? a->scale : 1.0 / sqrt((double)p->Dk);
    p->softcap = a->softcap;
    p->causal = a->causal;
    p->align = a->align;
    p->align_offset = a->align == ATTN_ALIGN_OFFSET ? a->align_offset : 0;
    p->window_left = attn__window(a->window_left);
    p->window_right = attn__window(a->window_right);
    p->q_lens = a->q_lens;
    p->k_lens = a->k_lens;
    p->alibi = a->alibi_slopes;
    p->dropout_p = a->dropout_p;
    p->drop_threshold = attn__dropout_threshold(a->dropout_p);
    p->seed = a->seed;
    p->offset = a->offset;
    return ATTN_OK;
}

/* Bias or mask (its dtype checked): a view of dims [B|1, Hq|1, Sq|1,
 * Sk|1]; broadcast dims get stride 0 in eff_stride. */
static attn_status check_broadcast(const char *fn, const attn__sdpa *p, const attn_tensor *t,
                                   const char *name, int64_t eff_stride[4])
{
    attn__named nv = {t, name, false};
    attn_status st = attn__check_view(fn, &nv);
    if (st != ATTN_OK) return st;
    int64_t full[4] = {p->B, p->Hq, p->Sq, p->Sk};
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] != full[d] && t->dim[d] != 1)
            return attn_fail(ATTN_BAD_MASK,
                             "%s: %s.dim[%d] is %lld; it must be %lld or 1 to broadcast to "
                             "[B, Hq, Sq, Sk]", fn, name, d, (long long)t->dim[d], (long long)full[d]);
        eff_stride[d] = t->dim[d] == 1 ? 0 : t->stride[d];
    }
    return ATTN_OK;
}

/* The block mask must cover Sq x Sk, and B (or 1) x Hq (or 1) layouts. */
static attn_status check_block_mask(const char *fn, const attn_block_mask *m, attn__sdpa *p)
{
    const attn_block_mask_shape *s = &m->shape;
    if (s->seq_q != p->Sq || s->seq_k != p->Sk)
        return attn_fail(ATTN_BAD_MASK, "%s: params.block_mask is %lld x %lld (seq_q x seq_k); it must be Sq x Sk = "
                         "%lld x %lld", fn, (long long)s->seq_q, (long long)s->seq_k, (long long)p->Sq,
                         (long long)p->Sk);
    if ((s->n_batch != 1 && s->n_batch != p->B) || (s->n_heads != 1 && s->n_heads != p->Hq))
        return attn_fail(ATTN_BAD_MASK, "%s: params.block_mask has n_batch %lld and n_heads %lld; they must be 1 or "
                         "B = %lld, and 1 or Hq = %lld", fn, (long long)s->n_batch, (long long)s->n_heads,
                         (long long)p->B, (long long)p->Hq);
    p->bm = m;
    return ATTN_OK;
}

/* Bias and mask of the options (a: params or the defaults). */
static attn_status check_bias_mask(const char *fn, const attn_sdpa_params *a, attn__sdpa *p)
{
    attn_status st;
    if (a->bias != NULL) {
        attn_dtype d = a->bias->dtype;
        if (d != p->dtype && !(d == ATTN_DTYPE_F32 && is_half(p->dtype)))
            return attn_fail(ATTN_BAD_DTYPE, "%s: params.bias.dtype is %s (%d) with q.dtype %s; the bias must "
                             "have Q's dtype, or be F32 under BF16 or F16 Q", fn, attn_dtype_name(d), (int)d,
                             attn_dtype_name(p->dtype));
        if ((st = check_broadcast(fn, p, a->bias, "params.bias", p->bias_stride)) != ATTN_OK) return st;
        p->has_bias = true;
        p->bias = a->bias->data;
        p->bias_dtype = d;
    }
    if (a->mask != NULL) {
        if (a->mask->dtype != ATTN_DTYPE_BOOL)
            return attn_fail(ATTN_BAD_DTYPE, "%s: params.mask.dtype is %s (%d); it must be BOOL", fn,
                             attn_dtype_name(a->mask->dtype), (int)a->mask->dtype);
        if ((st = check_broadcast(fn, p, a->mask, "params.mask", p->mask_stride)) != ATTN_OK) return st;
        p->has_mask = true;
        p->mask = (const uint8_t *)a->mask->data;
    }
    if (a->block_mask != NULL) return check_block_mask(fn, a->block_mask, p);
    return ATTN_OK;
}

/* ---- packed variable-length batches ------------------------------------------------- */

static attn_status check_offsets(const char *fn, const int64_t *cu, int64_t n, int64_t total, const char *name)
{
    if (cu[0] != 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.%s[0] is %lld; the offsets must start at 0", fn, name,
                         (long long)cu[0]);
    for (int64_t s = 0; s < n; s++)
        if (cu[s + 1] < cu[s])
            return attn_fail(ATTN_BAD_PARAM, "%s: params.%s[%lld] is %lld, below params.%s[%lld] = %lld; the "
                             "offsets must never decrease", fn, name, (long long)(s + 1), (long long)cu[s + 1],
                             name, (long long)s, (long long)cu[s]);
    if (cu[n] != total)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.%s[%lld] is %lld; the offsets must end at the packed "
                         "length %lld", fn, name, (long long)n, (long long)cu[n], (long long)total);
    return ATTN_OK;
}

/* The cu_seqlens fields: none, or a valid packed batch (B = 1). */
static attn_status check_varlen(const char *fn, const attn_sdpa_params *a, attn__sdpa_call *c)
{
    const attn__sdpa *p = &c->p;
    if (a->n_seqs == 0 && a->cu_seqlens_q == NULL && a->cu_seqlens_k == NULL) return ATTN_OK;
    if (a->n_seqs < 1 || a->cu_seqlens_q == NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.n_seqs is %lld with params.cu_seqlens_q %s; a packed batch "
                         "has n_seqs >= 1 and its query offsets", fn, (long long)a->n_seqs,
                         a->cu_seqlens_q ? "set" : "NULL");
    if (p->B != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: q.dim[0] is %lld; a packed batch (params.cu_seqlens_q) has one "
                         "packed row of sequences, so it must be 1", fn, (long long)p->B);
    if (a->q_lens != NULL || a->k_lens != NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.q_lens/k_lens are set beside params.cu_seqlens_q; the "
                         "offsets give the lengths", fn);
    if (a->bias != NULL || a->mask != NULL || a->block_mask != NULL)
        return attn_fail(ATTN_UNSUPPORTED, "%s: params.%s is set beside params.cu_seqlens_q; packed batches take "
                         "the structural masks only", fn, a->bias ? "bias" : a->mask ? "mask" : "block_mask");
    if (a->cu_seqlens_k == NULL && p->Sk != p->Sq)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.cu_seqlens_k is NULL (the query offsets) but Tk = %lld "
                         "differs from Tq = %lld", fn, (long long)p->Sk, (long long)p->Sq);
    const int64_t *cu_k = a->cu_seqlens_k ? a->cu_seqlens_k : a->cu_seqlens_q;
    attn_status st = check_offsets(fn, a->cu_seqlens_q, a->n_seqs, p->Sq, "cu_seqlens_q");
    if (st == ATTN_OK) st = check_offsets(fn, cu_k, a->n_seqs, p->Sk, "cu_seqlens_k");
    if (st != ATTN_OK) return st;
    c->n_seqs = a->n_seqs;
    c->cu_q = a->cu_seqlens_q;
    c->cu_k = cu_k;
    return ATTN_OK;
}

/* Rows r0 .. r0+n-1 of dim d of t. */
static attn_tensor slice(const attn_tensor *t, int d, int64_t r0, int64_t n)
{
    attn_tensor v = *t;
    if (v.data != NULL) v.data = (char *)v.data + (size_t)(r0 * t->stride[d]) * attn_dtype_size(t->dtype);
    v.dim[d] = n;
    return v;
}

attn__sdpa attn__sdpa_seq(const attn__sdpa_call *c, int64_t s)
{
    attn__sdpa p = c->p;
    int64_t q0 = c->cu_q[s], lq = c->cu_q[s + 1] - q0, k0 = c->cu_k[s], lk = c->cu_k[s + 1] - k0;
    p.Sq = lq;
    p.Sk = lk;
    p.batch0 = s;
    attn_tensor *qrows[4] = {&p.q, &p.o, &p.d_o, &p.dq}, *krows[4] = {&p.k, &p.v, &p.dk, &p.dv};
    for (int x = 0; x < 4; x++) {
        *qrows[x] = slice(qrows[x], 1, q0, lq);
        *krows[x] = slice(krows[x], 1, k0, lk);
    }
    p.lse = slice(&p.lse, 2, q0, lq);
    return p;
}

/* ---- the inputs every entry point has ------------------------------------------------ */

/* Dims of Q, K, V (v NULL for the weights, which need no V) into p. */
static attn_status check_dims(const char *fn, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *v, attn__sdpa *p)
{
    p->B = q->dim[0];
    p->Sq = q->dim[1];
    p->Hq = q->dim[2];
    p->Dk = q->dim[3];
    p->Sk = k->dim[1];
    p->Hkv = k->dim[2];
    p->Dv = v != NULL ? v->dim[3] : 1;
    if (p->Dk == 0) return attn_fail(ATTN_BAD_DIM, "%s: q.dim[3] (Dk) is 0; it must be positive", fn);
    if (p->Dv == 0) return attn_fail(ATTN_BAD_DIM, "%s: v.dim[3] (Dv) is 0; it must be positive", fn);
    if (k->dim[0] != p->B || k->dim[3] != p->Dk)
        return attn_fail(ATTN_SHAPE_MISMATCH,
                         "%s: k is [%lld, %lld, %lld, %lld]; its batch and head dim must match q's "
                         "(%lld, %lld)", fn, (long long)k->dim[0], (long long)k->dim[1],
                         (long long)k->dim[2], (long long)k->dim[3], (long long)p->B, (long long)p->Dk);
    if (v != NULL && (v->dim[0] != p->B || v->dim[1] != p->Sk || v->dim[2] != p->Hkv))
        return attn_fail(ATTN_SHAPE_MISMATCH,
                         "%s: v is [%lld, %lld, %lld, %lld]; its first three dims must match k's", fn,
                         (long long)v->dim[0], (long long)v->dim[1], (long long)v->dim[2],
                         (long long)v->dim[3]);
    if (p->Hkv == 0 ? p->Hq != 0 : p->Hq % p->Hkv != 0)
        return attn_fail(ATTN_BAD_HEADS, "%s: Hq = %lld is not a multiple of Hkv = %lld", fn,
                         (long long)p->Hq, (long long)p->Hkv);
    p->group = p->Hkv > 0 ? p->Hq / p->Hkv : 1;
    return ATTN_OK;
}

/* ctx, Q, K, V (need_v: V must be given; mixed_ok: the mixed dtypes are
 * allowed), the options, bias and mask. */
static attn_status prepare(const char *fn, const attn_ctx *ctx, const attn_tensor *q,
                           const attn_tensor *k, const attn_tensor *v, bool need_v, bool mixed_ok,
                           const attn_sdpa_params *params, attn__sdpa_call *c)
{
    attn__sdpa *p = &c->p;
    memset(c, 0, sizeof *c);
    if (ctx == NULL) return attn_fail(ATTN_NULL_ARG, "%s: ctx is NULL", fn);
    if (q == NULL) return attn_fail(ATTN_NULL_ARG, "%s: q is NULL", fn);
    if (k == NULL) return attn_fail(ATTN_NULL_ARG, "%s: k is NULL", fn);
    if (need_v && v == NULL) return attn_fail(ATTN_NULL_ARG, "%s: v is NULL", fn);
    attn_status st = check_q_dtype(fn, q->dtype);
    if (st != ATTN_OK) return st;
    p->dtype = q->dtype;
    const attn__kernels *table = NULL;
    if ((st = attn__call_kernels(fn, ctx, p->dtype, &table)) != ATTN_OK ||
        (st = check_kv_dtypes(fn, q->dtype, k, v, mixed_ok)) != ATTN_OK)
        return st;
    c->k = table != NULL ? &table->sdpa[sdpa_dt(q->dtype, k->dtype)] : NULL;
    attn__named in[3] = {{q, "q", false}, {k, "k", false}, {v, "v", false}};
    for (int x = 0; x < 3 && in[x].t != NULL; x++)
        if ((st = attn__check_view(fn, &in[x])) != ATTN_OK) return st;
    if ((st = check_dims(fn, q, k, v, p)) != ATTN_OK) return st;
    p->q = *q;
    p->k = *k;
    p->v = v != NULL ? *v : *k;
    attn_sdpa_params defaults = attn_sdpa_params_default();
    const attn_sdpa_params *a = params != NULL ? params : &defaults;
    if ((st = check_params(fn, a, p)) != ATTN_OK) return st;
    if ((st = check_varlen(fn, a, c)) != ATTN_OK) return st;
    return check_bias_mask(fn, a, p);
}

/* The inputs of every call for the overlap check: q, k, v, bias, mask
 * (NULL entries are skipped); returns how many entries it wrote. */
static int input_views(const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                       const attn_sdpa_params *params, attn__named *views)
{
    views[0] = (attn__named){q, "q", false};
    views[1] = (attn__named){k, "k", false};
    views[2] = (attn__named){v, "v", false};
    views[3] = (attn__named){params != NULL ? params->bias : NULL, "params.bias", false};
    views[4] = (attn__named){params != NULL ? params->mask : NULL, "params.mask", false};
    return 5;
}

/* Views beyond the inputs (NULL ones skipped), each checked against its
 * dtype (dt[x]) and dims (want[x]), then the overlap of all. */
static attn_status check_more(const char *fn, const attn__sdpa *p, const attn__named *views, int n_in,
                              int n_more, const attn_dtype *dt, const int64_t (*want)[4])
{
    attn_status st;
    for (int x = n_in; x < n_in + n_more; x++) {
        const attn__named *v = &views[x];
        if (v->t == NULL) continue;
        if ((st = attn__check_view(fn, v)) != ATTN_OK) return st;
        attn_dtype d = dt[x - n_in];
        if (v->t->dtype != d)
            return attn_fail(ATTN_BAD_DTYPE, "%s: %s.dtype is %s (%d) with q.dtype %s; it must be %s", fn,
                             v->name, attn_dtype_name(v->t->dtype), (int)v->t->dtype, attn_dtype_name(p->dtype),
                             attn_dtype_name(d));
        if ((st = check_dims4(fn, v->t, v->name, want[x - n_in])) != ATTN_OK) return st;
    }
    return attn__check_overlap(fn, views, n_in + n_more);
}

/* ---- the entry points ------------------------------------------------------------------ */

attn_status attn__sdpa_validate_forward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                        const attn_tensor *v, const attn_sdpa_params *params,
                                        const attn_tensor *o, const attn_tensor *lse, attn__sdpa_call *c)
{
    const char *fn = "attn_sdpa_forward";
    attn__sdpa *p = &c->p;
    attn_status st = prepare(fn, ctx, q, k, v, true, true, params, c);
    if (st != ATTN_OK) return st;
    if (o == NULL) return attn_fail(ATTN_NULL_ARG, "%s: o is NULL", fn);
    attn__named views[7];
    int n = input_views(q, k, v, params, views);
    views[n] = (attn__named){o, "o", true};
    views[n + 1] = (attn__named){lse, "lse", true};
    const attn_dtype dt[2] = {p->dtype, lse_dtype(p)};
    const int64_t want[2][4] = {{p->B, p->Sq, p->Hq, p->Dv}, {p->B, p->Hq, p->Sq, 1}};
    if ((st = check_more(fn, p, views, n, 2, dt, want)) != ATTN_OK) return st;
    p->o = *o;
    if (lse != NULL) p->lse = *lse;
    c->empty = p->B == 0 || p->Hq == 0 || p->Sq == 0;
    return ATTN_OK;
}

attn_status attn__sdpa_validate_backward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *o, const attn_tensor *d_o,
                                         const attn_tensor *lse, const attn_sdpa_params *params,
                                         const attn_tensor *dq, const attn_tensor *dk, const attn_tensor *dv,
                                         const attn_tensor *dbias, attn__sdpa_call *c)
{
    const char *fn = "attn_sdpa_backward";
    attn__sdpa *p = &c->p;
    attn_status st = prepare(fn, ctx, q, k, v, true, false, params, c);
    if (st != ATTN_OK) return st;
    const attn_tensor *need[] = {o, d_o, lse, dq, dk, dv};
    const char *names[] = {"o", "d_o", "lse", "dq", "dk", "dv"};
    attn__named views[12];
    int n = input_views(q, k, v, params, views);
    for (int x = 0; x < 6; x++) {
        if (need[x] == NULL) return attn_fail(ATTN_NULL_ARG, "%s: %s is NULL", fn, names[x]);
        views[n + x] = (attn__named){need[x], names[x], x >= 3};
    }
    const attn_tensor *bias = params != NULL ? params->bias : NULL;
    if (dbias != NULL && bias == NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: dbias is given but params.bias is NULL", fn);
    views[n + 6] = (attn__named){dbias, "dbias", true};
    const int64_t want[7][4] = {{p->B, p->Sq, p->Hq, p->Dv},  {p->B, p->Sq, p->Hq, p->Dv},
                                {p->B, p->Hq, p->Sq, 1},      {p->B, p->Sq, p->Hq, p->Dk},
                                {p->B, p->Sk, p->Hkv, p->Dk}, {p->B, p->Sk, p->Hkv, p->Dv},
                                {bias != NULL ? bias->dim[0] : 0, bias != NULL ? bias->dim[1] : 0,
                                 bias != NULL ? bias->dim[2] : 0, bias != NULL ? bias->dim[3] : 0}};
    const attn_dtype dt[7] = {p->dtype, p->dtype, lse_dtype(p), p->dtype, p->dtype, p->dtype,
                              bias != NULL ? bias->dtype : p->dtype};
    if ((st = check_more(fn, p, views, n, 7, dt, want)) != ATTN_OK) return st;
    p->o = *o;
    p->d_o = *d_o;
    p->lse = *lse;
    p->dq = *dq;
    p->dk = *dk;
    p->dv = *dv;
    if (dbias != NULL) p->dbias = *dbias;
    c->empty = p->B == 0 || p->Hq == 0;
    return ATTN_OK;
}

static attn_status check_indices(const char *fn, const int64_t *idx, int64_t n, int64_t limit,
                                 const char *name)
{
    for (int64_t x = 0; idx != NULL && x < n; x++)
        if (idx[x] < 0 || idx[x] >= limit)
            return attn_fail(ATTN_BAD_PARAM, "%s: %s[%lld] is %lld; it must be in [0, %lld)", fn, name,
                             (long long)x, (long long)idx[x], (long long)limit);
    return ATTN_OK;
}

attn_status attn__sdpa_validate_weights(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                        const attn_tensor *lse, const attn_sdpa_params *params,
                                        const int64_t *heads, int64_t n_heads, const int64_t *rows,
                                        int64_t n_rows, int with_dropout, const attn_tensor *w,
                                        attn__sdpa_call *c)
{
    const char *fn = "attn_sdpa_weights";
    attn__sdpa *p = &c->p;
    attn_status st = prepare(fn, ctx, q, k, NULL, false, false, params, c);
    if (st != ATTN_OK) return st;
    if (lse == NULL) return attn_fail(ATTN_NULL_ARG, "%s: lse is NULL", fn);
    if (w == NULL) return attn_fail(ATTN_NULL_ARG, "%s: w is NULL", fn);
    if (heads == NULL) n_heads = p->Hq;
    if (rows == NULL) n_rows = p->Sq;
    if (n_heads < 0)
        return attn_fail(ATTN_BAD_DIM, "%s: n_heads is %lld; it must be >= 0", fn, (long long)n_heads);
    if (n_rows < 0)
        return attn_fail(ATTN_BAD_DIM, "%s: n_rows is %lld; it must be >= 0", fn, (long long)n_rows);
    if ((st = check_indices(fn, heads, n_heads, p->Hq, "heads")) != ATTN_OK ||
        (st = check_indices(fn, rows, n_rows, p->Sq, "rows")) != ATTN_OK)
        return st;
    attn__named views[7];
    int n = input_views(q, k, NULL, params, views);
    views[n] = (attn__named){lse, "lse", false};
    views[n + 1] = (attn__named){w, "w", true};
    const attn_dtype dt[2] = {lse_dtype(p), p->dtype};
    const int64_t want[2][4] = {{p->B, p->Hq, p->Sq, 1}, {p->B, n_heads, n_rows, p->Sk}};
    if ((st = check_more(fn, p, views, n, 2, dt, want)) != ATTN_OK) return st;
    p->lse = *lse;
    c->heads = heads;
    c->rows = rows;
    c->n_heads = n_heads;
    c->n_rows = n_rows;
    c->with_dropout = with_dropout != 0;
    c->w = *w;
    c->empty = p->B == 0 || n_heads == 0 || n_rows == 0 || p->Sk == 0;
    return ATTN_OK;
}
