/* sdpa_validate.c - every argument check of the attention entry points, in
 * one place. On failure the status names the bad argument and nothing has
 * been written. */
#include "ops/sdpa_ops.h"

#include <float.h>
#include <string.h>

static size_t dtype_size(attn_dtype t)
{
    return t == ATTN_DTYPE_F64 ? 8 : t == ATTN_DTYPE_F32 ? 4 : t == ATTN_DTYPE_BOOL ? 1 : 0;
}

/* Largest element offset of a view with at least one element; false on
 * overflow. */
static bool max_offset(const attn_tensor *t, int64_t *out)
{
    int64_t off = 0, term;
    for (int d = 0; d < 4; d++) {
        if (!attn__mul(t->dim[d] - 1, t->stride[d], &term) || off > INT64_MAX - term)
            return false;
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

attn_status attn__check_view(const attn__named *v)
{
    const attn_tensor *t = v->t;
    int64_t n = 1, maxoff;
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] < 0)
            return attn_fail(ATTN_BAD_DIM, "%s.dim[%d] is %lld; dims must be >= 0", v->name, d,
                             (long long)t->dim[d]);
        if (t->stride[d] < 0)
            return attn_fail(ATTN_BAD_STRIDE, "%s.stride[%d] is %lld; strides must be >= 0",
                             v->name, d, (long long)t->stride[d]);
        if (!attn__mul(n, t->dim[d], &n))
            return attn_fail(ATTN_OVERFLOW, "%s: the element count overflows int64", v->name);
    }
    if (n == 0) return ATTN_OK;
    if (!max_offset(t, &maxoff) || (uint64_t)maxoff >= SIZE_MAX / 8)
        return attn_fail(ATTN_OVERFLOW, "%s: the strides reach past the addressable range",
                         v->name);
    if (t->data == NULL) return attn_fail(ATTN_NULL_ARG, "%s.data is NULL", v->name);
    if (v->output && aliases(t))
        return attn_fail(ATTN_BAD_STRIDE,
                         "%s: its strides make two elements share an address; an output "
                          "must not alias itself", v->name);
    return ATTN_OK;
}

attn_status attn__check_shape(const attn__sdpa *p, const attn_tensor *t, const char *name,
                              int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (t->dtype != p->dtype)
        return attn_fail(ATTN_BAD_DTYPE, "%s.dtype is %d; it must match q.dtype (%d)", name,
                         (int)t->dtype, (int)p->dtype);
    int64_t want[4] = {d0, d1, d2, d3};
    for (int d = 0; d < 4; d++)
        if (t->dim[d] != want[d])
            return attn_fail(ATTN_SHAPE_MISMATCH,
                             "%s is [%lld, %lld, %lld, %lld]; expected [%lld, %lld, %lld, %lld]",
                              name, (long long)t->dim[0], (long long)t->dim[1],
                              (long long)t->dim[2], (long long)t->dim[3], (long long)d0,
                              (long long)d1, (long long)d2, (long long)d3);
    return ATTN_OK;
}

static attn_status check_params(const attn_sdpa_params *a, attn__sdpa *p)
{
    if (a->has_scale && !isfinite(a->scale))
        return attn_fail(ATTN_BAD_PARAM, "params.scale is %g; it must be finite", a->scale);
    if (!isfinite(a->softcap) || a->softcap < 0.0)
        return attn_fail(ATTN_BAD_PARAM, "params.softcap is %g; it must be 0 (off) or finite and > 0",
                         a->softcap);
    if (!(a->dropout_p >= 0.0 && a->dropout_p < 1.0))
        return attn_fail(ATTN_BAD_PARAM, "params.dropout_p is %g; it must be in [0, 1)",
                         a->dropout_p);
    if (a->causal != 0 && a->causal != 1)
        return attn_fail(ATTN_BAD_PARAM, "params.causal is %d; it must be 0 or 1", a->causal);
    if (a->align != ATTN_ALIGN_TOP_LEFT && a->align != ATTN_ALIGN_BOTTOM_RIGHT)
        return attn_fail(ATTN_BAD_PARAM, "params.align is %d; it must be an attn_align value",
                         (int)a->align);
    if (a->window_left < -1 || a->window_right < -1)
        return attn_fail(ATTN_BAD_PARAM,
                         "params.window_left/right are %lld/%lld; each must be >= 0, or -1 for "
                          "unbounded", (long long)a->window_left, (long long)a->window_right);
    for (int64_t b = 0; a->q_lens != NULL && b < p->B; b++)
        if (a->q_lens[b] < 0 || a->q_lens[b] > p->Sq)
            return attn_fail(ATTN_BAD_PARAM, "params.q_lens[%lld] is %lld; it must be in [0, Sq=%lld]",
                             (long long)b, (long long)a->q_lens[b], (long long)p->Sq);
    for (int64_t b = 0; a->k_lens != NULL && b < p->B; b++)
        if (a->k_lens[b] < 0 || a->k_lens[b] > p->Sk)
            return attn_fail(ATTN_BAD_PARAM, "params.k_lens[%lld] is %lld; it must be in [0, Sk=%lld]",
                             (long long)b, (long long)a->k_lens[b], (long long)p->Sk);
    for (int64_t h = 0; a->alibi_slopes != NULL && h < p->Hq; h++)
        if (!isfinite(a->alibi_slopes[h]))
            return attn_fail(ATTN_BAD_PARAM, "params.alibi_slopes[%lld] is %g; it must be finite",
                             (long long)h, a->alibi_slopes[h]);
    p->scale = a->has_scale ? a->scale : 1.0 / sqrt((double)p->Dk);
    p->softcap = a->softcap;
    p->causal = a->causal;
    p->align = a->align;
    p->window_left = a->window_left;
    p->window_right = a->window_right;
    p->q_lens = a->q_lens;
    p->k_lens = a->k_lens;
    p->alibi = a->alibi_slopes;
    p->dropout_p = a->dropout_p;
    p->drop_threshold = attn__dropout_threshold(a->dropout_p);
    p->seed = a->seed;
    p->offset = a->offset;
    return ATTN_OK;
}

/* Bias or mask: a view of dims [B|1, Hq|1, Sq|1, Sk|1]; broadcast dims get
 * stride 0 in eff_stride. */
static attn_status check_broadcast(const attn__sdpa *p, const attn_tensor *t, const char *name,
                                   attn_dtype want, int64_t eff_stride[4])
{
    attn__named nv = {t, name, false};
    if (t->dtype != want)
        return attn_fail(ATTN_BAD_DTYPE, "%s.dtype is %d; it must be %d", name, (int)t->dtype,
                         (int)want);
    attn_status st = attn__check_view(&nv);
    if (st != ATTN_OK) return st;
    int64_t full[4] = {p->B, p->Hq, p->Sq, p->Sk};
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] != full[d] && t->dim[d] != 1)
            return attn_fail(ATTN_BAD_MASK,
                             "%s.dim[%d] is %lld; it must be %lld or 1 to broadcast to "
                              "[B, Hq, Sq, Sk]", name, d, (long long)t->dim[d], (long long)full[d]);
        eff_stride[d] = t->dim[d] == 1 ? 0 : t->stride[d];
    }
    return ATTN_OK;
}

attn_status attn__sdpa_prepare(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_sdpa_params *params,
                               attn__sdpa *p)
{
    memset(p, 0, sizeof *p);
    if (ctx == NULL) return attn_fail(ATTN_NULL_ARG, "ctx is NULL");
    if (q == NULL) return attn_fail(ATTN_NULL_ARG, "q is NULL");
    if (k == NULL) return attn_fail(ATTN_NULL_ARG, "k is NULL");
    if (q->dtype != ATTN_DTYPE_F32 && q->dtype != ATTN_DTYPE_F64)
        return attn_fail(ATTN_BAD_DTYPE, "q.dtype is %d; it must be ATTN_DTYPE_F32 or ATTN_DTYPE_F64",
                         (int)q->dtype);
    p->dtype = q->dtype;
    if ((ctx->kernel == ATTN_KERNEL_TILED || ctx->kernel == ATTN_KERNEL_AVX2) && p->dtype != ATTN_DTYPE_F32)
        return attn_fail(ATTN_UNSUPPORTED, "the %s kernel is float32 only; q.dtype is F64",
                         attn_kernel_name(ctx->kernel));
    attn__named views[3] = {{q, "q", false}, {k, "k", false}, {v, "v", false}};
    for (int x = 0; x < (v != NULL ? 3 : 2); x++) {
        if (views[x].t->dtype != p->dtype)
            return attn_fail(ATTN_BAD_DTYPE, "%s.dtype is %d; it must match q.dtype (%d)",
                             views[x].name, (int)views[x].t->dtype, (int)p->dtype);
        attn_status st = attn__check_view(&views[x]);
        if (st != ATTN_OK) return st;
    }
    p->B = q->dim[0];
    p->Sq = q->dim[1];
    p->Hq = q->dim[2];
    p->Dk = q->dim[3];
    p->Sk = k->dim[1];
    p->Hkv = k->dim[2];
    p->Dv = v != NULL ? v->dim[3] : 1;
    if (p->Dk == 0) return attn_fail(ATTN_BAD_DIM, "q.dim[3] (Dk) is 0; it must be positive");
    if (p->Dv == 0) return attn_fail(ATTN_BAD_DIM, "v.dim[3] (Dv) is 0; it must be positive");
    if (k->dim[0] != p->B || k->dim[3] != p->Dk)
        return attn_fail(ATTN_SHAPE_MISMATCH,
                         "k is [%lld, %lld, %lld, %lld]; its batch and head dim must match q's "
                          "(%lld, %lld)", (long long)k->dim[0], (long long)k->dim[1],
                          (long long)k->dim[2], (long long)k->dim[3], (long long)p->B,
                          (long long)p->Dk);
    if (v != NULL && (v->dim[0] != p->B || v->dim[1] != p->Sk || v->dim[2] != p->Hkv))
        return attn_fail(ATTN_SHAPE_MISMATCH,
                         "v is [%lld, %lld, %lld, %lld]; its first three dims must match k's",
                          (long long)v->dim[0], (long long)v->dim[1], (long long)v->dim[2],
                          (long long)v->dim[3]);
    if (p->Hkv == 0 ? p->Hq != 0 : p->Hq % p->Hkv != 0)
        return attn_fail(ATTN_BAD_HEADS, "Hq = %lld is not a multiple of Hkv = %lld",
                         (long long)p->Hq, (long long)p->Hkv);
    p->group = p->Hkv > 0 ? p->Hq / p->Hkv : 1;
    p->q = *q;
    p->k = *k;
    p->v = v != NULL ? *v : *k;

    attn_sdpa_params defaults = attn_sdpa_params_default();
    const attn_sdpa_params *a = params != NULL ? params : &defaults;
    attn_status st = check_params(a, p);
    if (st != ATTN_OK) return st;
    if (a->bias != NULL) {
        st = check_broadcast(p, a->bias, "params.bias", p->dtype, p->bias_stride);
        if (st != ATTN_OK) return st;
        p->has_bias = true;
        p->bias = a->bias->data;
    }
    if (a->mask != NULL) {
        st = check_broadcast(p, a->mask, "params.mask", ATTN_DTYPE_BOOL, p->mask_stride);
        if (st != ATTN_OK) return st;
        p->has_mask = true;
        p->mask = (const uint8_t *)a->mask->data;
    }
    return ATTN_OK;
}

static bool meets(const attn_tensor *a, const attn_tensor *b)
{
    int64_t ea = 0, eb = 0; /* both views were checked: no overflow here */
    if (!has_elements(a) || !has_elements(b) || !max_offset(a, &ea) || !max_offset(b, &eb))
        return false;
    uintptr_t a0 = (uintptr_t)a->data, a1 = a0 + (uintptr_t)(ea + 1) * dtype_size(a->dtype);
    uintptr_t b0 = (uintptr_t)b->data, b1 = b0 + (uintptr_t)(eb + 1) * dtype_size(b->dtype);
    return a0 < b1 && b0 < a1;
}

attn_status attn__check_overlap(const attn__named *views, int n)
{
    for (int x = 0; x < n; x++) {
        if (views[x].t == NULL || !views[x].output) continue;
        for (int y = 0; y < n; y++)
            if (y != x && views[y].t != NULL && (y < x || !views[y].output) &&
                meets(views[x].t, views[y].t))
                return attn_fail(ATTN_OVERLAP, "%s overlaps %s; outputs must not share memory "
                                 "with inputs or other outputs", views[x].name, views[y].name);
    }
    return ATTN_OK;
}
