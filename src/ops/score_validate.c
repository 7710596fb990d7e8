/* score_validate.c - every argument check of the learned-score entry
 * points (attn/score.h), in one place. Each validation returns the
 * prepared call (the resolved problem, its outputs and gradients, and the
 * kernels that run it), or a status whose message names the public
 * function and the bad argument; nothing has been written then. */
#include "ops/score_validate.h"

#include <string.h>

attn_score_params attn_score_params_default(attn_score_kind kind)
{
    attn_score_params a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.masks = attn_sdpa_params_default();
    return a;
}

static const char *kind_name(attn_score_kind kind)
{
    switch (kind) {
    case ATTN_SCORE_KIND_ADDITIVE: return "ATTN_SCORE_KIND_ADDITIVE";
    case ATTN_SCORE_KIND_LUONG_GENERAL: return "ATTN_SCORE_KIND_LUONG_GENERAL";
    case ATTN_SCORE_KIND_LUONG_CONCAT: return "ATTN_SCORE_KIND_LUONG_CONCAT";
    default: return "ATTN_SCORE_KIND_SCALED_DOT";
    }
}

static attn_status check_mask_tensor(const char *fn, const attn__score *p, const attn_tensor *t,
                                     attn__sdpa *m)
{
    attn__named nv = {t, "params.masks.mask", false};
    if (t->dtype != ATTN_DTYPE_BOOL)
        return attn_fail(ATTN_BAD_DTYPE, "%s: params.masks.mask.dtype is %d; it must be ATTN_DTYPE_BOOL", fn,
                         (int)t->dtype);
    attn_status st = attn__check_view(fn, &nv);
    if (st != ATTN_OK) return st;
    int64_t full[4] = {m->B, p->H, m->Sq, m->Sk};
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] != full[d] && t->dim[d] != 1)
            return attn_fail(ATTN_BAD_MASK, "%s: params.masks.mask.dim[%d] is %lld; it must be %lld or 1 "
                             "to broadcast to [B, H, Sq, Sk]", fn, d, (long long)t->dim[d], (long long)full[d]);
        m->mask_stride[d] = t->dim[d] == 1 ? 0 : t->stride[d];
    }
    m->has_mask = true;
    m->mask = (const uint8_t *)t->data;
    return ATTN_OK;
}

static attn_status check_lens(const char *fn, const int64_t *lens, int64_t B, int64_t max, const char *name)
{
    for (int64_t b = 0; lens != NULL && b < B; b++)
        if (lens[b] < 0 || lens[b] > max)
            return attn_fail(ATTN_BAD_PARAM, "%s: params.masks.%s[%lld] is %lld; it must be in [0, %lld]", fn,
                             name, (long long)b, (long long)lens[b], (long long)max);
    return ATTN_OK;
}

/* The score function replaces the scale, soft-capping, bias and ALiBi of
 * attn_sdpa_params, so those must be off. */
static attn_status check_score_terms(const char *fn, const attn_sdpa_params *a)
{
    const char *field = a->has_scale ? "has_scale" : a->softcap != 0.0 ? "softcap" : a->bias != NULL ? "bias"
                        : a->alibi_slopes != NULL ? "alibi_slopes" : NULL;
    if (a->block_mask != NULL || a->cu_seqlens_q != NULL || a->cu_seqlens_k != NULL || a->n_seqs != 0)
        return attn_fail(ATTN_UNSUPPORTED, "%s: params.masks.%s is set; learned scores take the dense masks "
                         "and padded batches only", fn, a->block_mask ? "block_mask" : "cu_seqlens_q/k or n_seqs");
    if (field == NULL) return ATTN_OK;
    return attn_fail(ATTN_UNSUPPORTED, "%s: params.masks.%s is set; a learned score replaces the scale, "
                     "soft-cap, bias and ALiBi of attn_sdpa_params (leave them off)", fn, field);
}

/* The mask and dropout fields of params.masks. */
static attn_status check_masks(const char *fn, const attn_sdpa_params *a, attn__score *p)
{
    attn__sdpa *m = &p->m;
    attn_status st = check_score_terms(fn, a);
    if (st != ATTN_OK) return st;
    if (!(a->dropout_p >= 0.0 && a->dropout_p < 1.0))
        return attn_fail(ATTN_BAD_PARAM, "%s: params.masks.dropout_p is %g; it must be in [0, 1)", fn, a->dropout_p);
    if (a->causal != 0 && a->causal != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.masks.causal is %d; it must be 0 or 1", fn, a->causal);
    if (a->align != ATTN_ALIGN_TOP_LEFT && a->align != ATTN_ALIGN_BOTTOM_RIGHT)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.masks.align is %d; it must be an attn_align value", fn,
                         (int)a->align);
    if (a->window_left < -1 || a->window_right < -1)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.masks.window_left/right are %lld/%lld; each must be >= 0, "
                         "or -1 for unbounded", fn, (long long)a->window_left, (long long)a->window_right);
    if ((st = check_lens(fn, a->q_lens, m->B, m->Sq, "q_lens")) != ATTN_OK ||
        (st = check_lens(fn, a->k_lens, m->B, m->Sk, "k_lens")) != ATTN_OK)
        return st;
    if (a->mask != NULL && (st = check_mask_tensor(fn, p, a->mask, m)) != ATTN_OK) return st;
    m->causal = a->causal;
    m->align = a->align;
    m->window_left = attn__window(a->window_left);
    m->window_right = attn__window(a->window_right);
    m->q_lens = a->q_lens;
    m->k_lens = a->k_lens;
    m->dropout_p = a->dropout_p;
    m->drop_threshold = attn__dropout_threshold(a->dropout_p);
    m->seed = a->seed;
    m->offset = a->offset;
    return ATTN_OK;
}

enum { P_WQ, P_WK, P_B, P_VA, P_W, P_G, N_PARAMS };
static const char *const param_name[N_PARAMS] = {"params.w_q", "params.w_k", "params.b",
                                                 "params.v_a", "params.w", "params.g"};
static const char *const grad_name[N_PARAMS] = {"grads.d_w_q", "grads.d_w_k", "grads.d_b",
                                                "grads.d_v_a", "grads.d_w", "grads.d_g"};

static void param_slots(const attn_score_params *a, const attn_tensor *t[N_PARAMS])
{
    t[P_WQ] = a->w_q;
    t[P_WK] = a->w_k;
    t[P_B] = a->b;
    t[P_VA] = a->v_a;
    t[P_W] = a->w;
    t[P_G] = a->g;
}

/* Columns c0 .. c0+n-1 of a [1, H, R, C] view (LUONG_CONCAT's halves). */
static attn_tensor columns(const attn_tensor *t, int64_t c0, int64_t n)
{
    attn_tensor v = *t;
    size_t elem = t->dtype == ATTN_DTYPE_F64 ? sizeof(double) : sizeof(float);
    if (v.data != NULL && c0 > 0) v.data = (char *)v.data + (size_t)(c0 * t->stride[3]) * elem;
    v.dim[3] = n;
    return v;
}

/* Dims every parameter must have, from q, k and the attention dim A. */
static void param_dims(const attn__score *p, int64_t dims[N_PARAMS][4])
{
    int64_t H = p->H, A = p->A;
    int64_t want[N_PARAMS][4] = {{1, H, A, p->Dq}, {1, H, A, p->Dk}, {1, H, 1, A}, {1, H, 1, A},
                                 {1, H, p->kind == ATTN_SCORE_KIND_LUONG_GENERAL ? p->Dq : A,
                                  p->kind == ATTN_SCORE_KIND_LUONG_GENERAL ? p->Dk : p->Dq + p->Dk},
                                 {1, H, 1, 1}};
    memcpy(dims, want, sizeof want);
}

static attn_status check_params(const char *fn, const attn_score_params *a, attn__score *p)
{
    /* 0: must be NULL, 1: optional, 2: required; rows in attn_score_kind order */
    static const int need[4][N_PARAMS] = {{2, 2, 1, 2, 0, 0}, {0, 0, 0, 0, 2, 0},
                                          {0, 0, 0, 2, 2, 0}, {0, 0, 0, 0, 0, 2}};
    const attn_tensor *t[N_PARAMS];
    param_slots(a, t);
    const int *nd = need[p->kind - 1];
    for (int x = 0; x < N_PARAMS; x++) {
        attn__named nv = {t[x], param_name[x], false};
        if (t[x] == NULL && nd[x] == 2)
            return attn_fail(ATTN_NULL_ARG, "%s: %s is NULL; %s needs it", fn, param_name[x], kind_name(p->kind));
        if (t[x] != NULL && nd[x] == 0)
            return attn_fail(ATTN_BAD_PARAM, "%s: %s is given; %s does not use it (leave it NULL)", fn,
                             param_name[x], kind_name(p->kind));
        if (t[x] == NULL) continue;
        if (t[x]->dtype != p->m.dtype)
            return attn_fail(ATTN_BAD_DTYPE, "%s: %s.dtype is %d; it must match q.dtype (%d)", fn, param_name[x],
                             (int)t[x]->dtype, (int)p->m.dtype);
        attn_status st = attn__check_view(fn, &nv);
        if (st != ATTN_OK) return st;
    }
    int src = p->kind == ATTN_SCORE_KIND_ADDITIVE ? P_WQ : P_W;
    if (attn__score_is_tanh(p) && (p->A = t[src]->dim[2]) == 0)
        return attn_fail(ATTN_BAD_DIM, "%s: %s.dim[2] (A) is 0; the attention dim must be positive", fn,
                         param_name[src]);
    if (p->Dq > INT64_MAX - p->Dk) return attn_fail(ATTN_OVERFLOW, "%s: Dq + Dk overflows int64", fn);
    int64_t dims[N_PARAMS][4];
    param_dims(p, dims);
    for (int x = 0; x < N_PARAMS; x++) {
        attn_status st;
        if (t[x] != NULL &&
            (st = attn__check_shape(fn, &p->m, t[x], param_name[x], dims[x][0], dims[x][1], dims[x][2],
                                    dims[x][3])) != ATTN_OK)
            return st;
    }
    attn_tensor *dst[N_PARAMS] = {&p->wq, &p->wk, &p->b, &p->va, &p->w, &p->g};
    for (int x = 0; x < N_PARAMS; x++)
        if (t[x] != NULL) *dst[x] = *t[x];
    p->has_b = t[P_B] != NULL;
    if (p->kind == ATTN_SCORE_KIND_LUONG_CONCAT) {
        p->wq = columns(t[P_W], 0, p->Dq);
        p->wk = columns(t[P_W], p->Dq, p->Dk);
    }
    return ATTN_OK;
}

static attn_status check_inputs(const char *fn, const attn_tensor *q, const attn_tensor *k,
                                const attn_tensor *v, attn__score *p)
{
    const attn_tensor *in[3] = {q, k, v};
    const char *names[3] = {"q", "k", "v"};
    for (int x = 0; x < 3; x++) {
        attn__named nv = {in[x], names[x], false};
        if (in[x] == NULL) continue;
        if (in[x]->dtype != p->m.dtype)
            return attn_fail(ATTN_BAD_DTYPE, "%s: %s.dtype is %d; it must match q.dtype (%d)", fn, names[x],
                             (int)in[x]->dtype, (int)p->m.dtype);
        attn_status st = attn__check_view(fn, &nv);
        if (st != ATTN_OK) return st;
    }
    p->H = q->dim[2];
    p->Dq = q->dim[3];
    p->Dk = k->dim[3];
    if (p->Dq == 0) return attn_fail(ATTN_BAD_DIM, "%s: q.dim[3] (Dq) is 0; it must be positive", fn);
    if (p->Dk == 0) return attn_fail(ATTN_BAD_DIM, "%s: k.dim[3] (Dk) is 0; it must be positive", fn);
    if (v != NULL && v->dim[3] == 0)
        return attn_fail(ATTN_BAD_DIM, "%s: v.dim[3] (Dv) is 0; it must be positive", fn);
    if (k->dim[0] != q->dim[0] || k->dim[2] != p->H)
        return attn_fail(ATTN_SHAPE_MISMATCH, "%s: k is [%lld, %lld, %lld, %lld]; its batch and head dims "
                         "must match q's (%lld, %lld)", fn, (long long)k->dim[0], (long long)k->dim[1],
                          (long long)k->dim[2], (long long)k->dim[3], (long long)q->dim[0], (long long)p->H);
    if (v != NULL && (v->dim[0] != k->dim[0] || v->dim[1] != k->dim[1] || v->dim[2] != k->dim[2]))
        return attn_fail(ATTN_SHAPE_MISMATCH, "%s: v is [%lld, %lld, %lld, %lld]; its first three dims "
                         "must match k's", fn, (long long)v->dim[0], (long long)v->dim[1],
                          (long long)v->dim[2], (long long)v->dim[3]);
    if (p->kind == ATTN_SCORE_KIND_SCALED_DOT && p->Dk != p->Dq)
        return attn_fail(ATTN_SHAPE_MISMATCH, "%s: k.dim[3] (Dk) is %lld; ATTN_SCORE_KIND_SCALED_DOT needs "
                         "Dk == Dq (%lld)", fn, (long long)p->Dk, (long long)p->Dq);
    attn__sdpa *m = &p->m;
    m->B = q->dim[0];
    m->Sq = q->dim[1];
    m->Sk = k->dim[1];
    m->Hq = m->Hkv = p->H;
    m->group = 1;
    m->Dk = p->Dq;
    m->Dv = v != NULL ? v->dim[3] : 1;
    m->q = *q;
    m->k = *k;
    m->v = v != NULL ? *v : *k;
    return ATTN_OK;
}

/* Checks ctx, q, k, v (need_v: v must be given), params; fills c->p and
 * c->k. */
static attn_status prepare(const char *fn, const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                           const attn_tensor *v, bool need_v, const attn_score_params *params,
                           attn__score_call *c)
{
    attn__score *p = &c->p;
    memset(c, 0, sizeof *c);
    if (ctx == NULL) return attn_fail(ATTN_NULL_ARG, "%s: ctx is NULL", fn);
    if (q == NULL) return attn_fail(ATTN_NULL_ARG, "%s: q is NULL", fn);
    if (k == NULL) return attn_fail(ATTN_NULL_ARG, "%s: k is NULL", fn);
    if (need_v && v == NULL) return attn_fail(ATTN_NULL_ARG, "%s: v is NULL", fn);
    if (params == NULL) return attn_fail(ATTN_NULL_ARG, "%s: params is NULL", fn);
    if (params->kind < ATTN_SCORE_KIND_ADDITIVE || params->kind > ATTN_SCORE_KIND_SCALED_DOT)
        return attn_fail(ATTN_BAD_PARAM, "%s: params.kind is %d; it must be an attn_score_kind value", fn,
                         (int)params->kind);
    p->kind = params->kind;
    if (q->dtype != ATTN_DTYPE_F32 && q->dtype != ATTN_DTYPE_F64)
        return attn_fail(ATTN_BAD_DTYPE, "%s: q.dtype is %d; it must be ATTN_DTYPE_F32 or ATTN_DTYPE_F64", fn,
                         (int)q->dtype);
    p->m.dtype = q->dtype;
    attn_status st;
    if ((st = attn__call_kernels(fn, ctx, q->dtype, &c->k)) != ATTN_OK ||
        (st = check_inputs(fn, q, k, v, p)) != ATTN_OK || (st = check_masks(fn, &params->masks, p)) != ATTN_OK ||
        (st = check_params(fn, params, p)) != ATTN_OK)
        return st;
    c->masks = &params->masks;
    return ATTN_OK;
}

/* The gradients asked for: each must belong to a parameter of the call and
 * have its dims. */
static attn_status check_grads(const char *fn, const attn_score_grads *g, const attn_score_params *a,
                               attn__score *p)
{
    attn_tensor *gt[N_PARAMS] = {g->d_w_q, g->d_w_k, g->d_b, g->d_v_a, g->d_w, g->d_g};
    const attn_tensor *t[N_PARAMS];
    param_slots(a, t);
    for (int x = 0; x < N_PARAMS; x++) {
        attn__named nv = {gt[x], grad_name[x], true};
        if (gt[x] == NULL) continue;
        if (t[x] == NULL)
            return attn_fail(ATTN_BAD_PARAM, "%s: %s is given but %s is NULL (%s)", fn, grad_name[x], param_name[x],
                             kind_name(p->kind));
        attn_status st = attn__check_view(fn, &nv);
        if (st != ATTN_OK ||
            (st = attn__check_shape(fn, &p->m, gt[x], grad_name[x], t[x]->dim[0], t[x]->dim[1], t[x]->dim[2],
                                    t[x]->dim[3])) != ATTN_OK)
            return st;
    }
    attn_tensor *dst[N_PARAMS] = {&p->dwq, &p->dwk, &p->db, &p->dva, &p->dw, &p->dg};
    for (int x = 0; x < N_PARAMS; x++)
        if (gt[x] != NULL) *dst[x] = *gt[x];
    if (p->kind == ATTN_SCORE_KIND_LUONG_CONCAT && gt[P_W] != NULL) {
        p->dwq = columns(gt[P_W], 0, p->Dq);
        p->dwk = columns(gt[P_W], p->Dq, p->Dk);
    }
    return ATTN_OK;
}

/* Inputs of every call for the overlap check: q, k, v, the boolean mask and
 * the parameters; returns how many entries it filled. */
static int input_views(const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                       const attn_score_params *a, attn__named *views)
{
    const attn_tensor *t[N_PARAMS];
    param_slots(a, t);
    int n = 0;
    views[n++] = (attn__named){q, "q", false};
    views[n++] = (attn__named){k, "k", false};
    views[n++] = (attn__named){v, "v", false};
    views[n++] = (attn__named){a->masks.mask, "params.masks.mask", false};
    for (int x = 0; x < N_PARAMS; x++) views[n++] = (attn__named){t[x], param_name[x], false};
    return n;
}


/* ---- the entry points ------------------------------------------------------------------ */

attn_status attn__score_validate_forward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_score_params *params,
                                         const attn_tensor *out, const attn_tensor *lse, attn__score_call *c)
{
    const char *fn = "attn_score_forward";
    attn__named views[16];
    attn_status st = prepare(fn, ctx, q, k, v, true, params, c);
    if (st != ATTN_OK) return st;
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "%s: out is NULL", fn);
    attn__score *p = &c->p;
    const attn__sdpa *m = &p->m;
    int64_t od[4] = {m->B, m->Sq, p->H, m->Dv}, ld[4] = {m->B, p->H, m->Sq, 1};
    int n = input_views(q, k, v, params, views);
    views[n] = (attn__named){out, "out", true};
    views[n + 1] = (attn__named){lse, "lse", true};
    if ((st = attn__check_view_shape(fn, &p->m, &views[n], od)) != ATTN_OK ||
        (lse != NULL && (st = attn__check_view_shape(fn, &p->m, &views[n + 1], ld)) != ATTN_OK) ||
        (st = attn__check_overlap(fn, views, n + 2)) != ATTN_OK)
        return st;
    p->m.o = *out;
    if (lse != NULL) p->m.lse = *lse;
    c->empty = m->B == 0 || p->H == 0 || m->Sq == 0;
    return ATTN_OK;
}

attn_status attn__score_validate_backward(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                          const attn_tensor *v, const attn_tensor *out,
                                          const attn_tensor *d_out, const attn_tensor *lse,
                                          const attn_score_params *params, const attn_tensor *dq,
                                          const attn_tensor *dk, const attn_tensor *dv,
                                          const attn_score_grads *grads, attn__score_call *c)
{
    const char *fn = "attn_score_backward";
    attn__named views[32];
    attn_status st = prepare(fn, ctx, q, k, v, true, params, c);
    if (st != ATTN_OK) return st;
    const attn_tensor *need[] = {out, d_out, lse, dq, dk, dv};
    const char *names[] = {"out", "d_out", "lse", "dq", "dk", "dv"};
    attn__score *p = &c->p;
    const attn__sdpa *m = &p->m;
    int64_t dims[6][4] = {{m->B, m->Sq, p->H, m->Dv}, {m->B, m->Sq, p->H, m->Dv}, {m->B, p->H, m->Sq, 1},
                          {m->B, m->Sq, p->H, p->Dq}, {m->B, m->Sk, p->H, p->Dk}, {m->B, m->Sk, p->H, m->Dv}};
    int n = input_views(q, k, v, params, views);
    for (int x = 0; x < 6; x++) {
        if (need[x] == NULL) return attn_fail(ATTN_NULL_ARG, "%s: %s is NULL", fn, names[x]);
        views[n] = (attn__named){need[x], names[x], x >= 3};
        if ((st = attn__check_view_shape(fn, &p->m, &views[n++], dims[x])) != ATTN_OK) return st;
    }
    if (grads != NULL) {
        attn_tensor *gt[N_PARAMS] = {grads->d_w_q, grads->d_w_k, grads->d_b, grads->d_v_a, grads->d_w, grads->d_g};
        if ((st = check_grads(fn, grads, params, p)) != ATTN_OK) return st;
        for (int x = 0; x < N_PARAMS; x++) views[n++] = (attn__named){gt[x], grad_name[x], true};
    }
    if ((st = attn__check_overlap(fn, views, n)) != ATTN_OK) return st;
    p->m.o = *out;
    p->m.d_o = *d_out;
    p->m.lse = *lse;
    p->m.dq = *dq;
    p->m.dk = *dk;
    p->m.dv = *dv;
    return ATTN_OK;
}

attn_status attn__score_validate_weights(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *lse, const attn_score_params *params,
                                         int with_dropout, const attn_tensor *w, attn__score_call *c)
{
    const char *fn = "attn_score_weights";
    attn__named views[16];
    attn_status st = prepare(fn, ctx, q, k, NULL, false, params, c);
    if (st != ATTN_OK) return st;
    if (lse == NULL) return attn_fail(ATTN_NULL_ARG, "%s: lse is NULL", fn);
    if (w == NULL) return attn_fail(ATTN_NULL_ARG, "%s: w is NULL", fn);
    attn__score *p = &c->p;
    const attn__sdpa *m = &p->m;
    int64_t ld[4] = {m->B, p->H, m->Sq, 1}, wd[4] = {m->B, p->H, m->Sq, m->Sk};
    int n = input_views(q, k, NULL, params, views);
    views[n] = (attn__named){lse, "lse", false};
    views[n + 1] = (attn__named){w, "w", true};
    if ((st = attn__check_view_shape(fn, &p->m, &views[n], ld)) != ATTN_OK ||
        (st = attn__check_view_shape(fn, &p->m, &views[n + 1], wd)) != ATTN_OK ||
        (st = attn__check_overlap(fn, views, n + 2)) != ATTN_OK)
        return st;
    p->m.lse = *lse;
    c->with_dropout = with_dropout != 0;
    c->w = *w;
    c->empty = m->B == 0 || p->H == 0 || m->Sq == 0 || m->Sk == 0;
    return ATTN_OK;
}
