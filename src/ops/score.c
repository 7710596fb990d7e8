/* score.c - the entry points of learned-score attention (attn/score.h):
 * every argument check (first half), then the plan (second half). F64
 * tensors, or a context forced to ATTN_KERNEL_REF, run the float64
 * reference per (b, h). F32 tensors compute the projections, then run the
 * chunked kernel (ADDITIVE, LUONG_CONCAT) or the core's attention kernels on
 * the projected inputs (LUONG_GENERAL: k' = W k, SCALED_DOT: q' = g q), and
 * finish with the projections' backward. Every buffer of a call comes from
 * one allocation made before anything is written. */
#include "ops/sdpa_ops.h"
#include "kernels/score_kernels.h"

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

/* ---- argument checks -------------------------------------------------------- */

static attn_status check_mask_tensor(const attn__score *p, const attn_tensor *t, attn__sdpa *m)
{
    attn__named nv = {t, "params.masks.mask", false};
    if (t->dtype != ATTN_DTYPE_BOOL)
        return attn_fail(ATTN_BAD_DTYPE, "params.masks.mask.dtype is %d; it must be ATTN_DTYPE_BOOL",
                         (int)t->dtype);
    attn_status st = attn__check_view(&nv);
    if (st != ATTN_OK) return st;
    int64_t full[4] = {m->B, p->H, m->Sq, m->Sk};
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] != full[d] && t->dim[d] != 1)
            return attn_fail(ATTN_BAD_MASK, "params.masks.mask.dim[%d] is %lld; it must be %lld or 1 "
                             "to broadcast to [B, H, Sq, Sk]", d, (long long)t->dim[d], (long long)full[d]);
        m->mask_stride[d] = t->dim[d] == 1 ? 0 : t->stride[d];
    }
    m->has_mask = true;
    m->mask = (const uint8_t *)t->data;
    return ATTN_OK;
}

static attn_status check_lens(const int64_t *lens, int64_t B, int64_t max, const char *name)
{
    for (int64_t b = 0; lens != NULL && b < B; b++)
        if (lens[b] < 0 || lens[b] > max)
            return attn_fail(ATTN_BAD_PARAM, "params.masks.%s[%lld] is %lld; it must be in [0, %lld]",
                             name, (long long)b, (long long)lens[b], (long long)max);
    return ATTN_OK;
}

/* The score function replaces the scale, soft-capping, bias and ALiBi of
 * attn_sdpa_params, so those must be off. */
static attn_status check_score_terms(const attn_sdpa_params *a)
{
    const char *field = a->has_scale ? "has_scale" : a->softcap != 0.0 ? "softcap" : a->bias != NULL ? "bias"
                        : a->alibi_slopes != NULL ? "alibi_slopes" : NULL;
    if (field == NULL) return ATTN_OK;
    return attn_fail(ATTN_UNSUPPORTED, "params.masks.%s is set; a learned score replaces the scale, "
                     "soft-cap, bias and ALiBi of attn_sdpa_params (leave them off)", field);
}

/* The mask and dropout fields of params.masks. */
static attn_status check_masks(const attn_sdpa_params *a, attn__score *p)
{
    attn__sdpa *m = &p->m;
    attn_status st = check_score_terms(a);
    if (st != ATTN_OK) return st;
    if (!(a->dropout_p >= 0.0 && a->dropout_p < 1.0))
        return attn_fail(ATTN_BAD_PARAM, "params.masks.dropout_p is %g; it must be in [0, 1)", a->dropout_p);
    if (a->causal != 0 && a->causal != 1)
        return attn_fail(ATTN_BAD_PARAM, "params.masks.causal is %d; it must be 0 or 1", a->causal);
    if (a->align != ATTN_ALIGN_TOP_LEFT && a->align != ATTN_ALIGN_BOTTOM_RIGHT)
        return attn_fail(ATTN_BAD_PARAM, "params.masks.align is %d; it must be an attn_align value", (int)a->align);
    if (a->window_left < -1 || a->window_right < -1)
        return attn_fail(ATTN_BAD_PARAM, "params.masks.window_left/right are %lld/%lld; each must be >= 0, "
                         "or -1 for unbounded", (long long)a->window_left, (long long)a->window_right);
    if ((st = check_lens(a->q_lens, m->B, m->Sq, "q_lens")) != ATTN_OK ||
        (st = check_lens(a->k_lens, m->B, m->Sk, "k_lens")) != ATTN_OK)
        return st;
    if (a->mask != NULL && (st = check_mask_tensor(p, a->mask, m)) != ATTN_OK) return st;
    m->causal = a->causal;
    m->align = a->align;
    m->window_left = a->window_left;
    m->window_right = a->window_right;
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

static attn_status check_params(const attn_score_params *a, attn__score *p)
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
            return attn_fail(ATTN_NULL_ARG, "%s is NULL; %s needs it", param_name[x], kind_name(p->kind));
        if (t[x] != NULL && nd[x] == 0)
            return attn_fail(ATTN_BAD_PARAM, "%s is given; %s does not use it (leave it NULL)",
                             param_name[x], kind_name(p->kind));
        if (t[x] == NULL) continue;
        if (t[x]->dtype != p->m.dtype)
            return attn_fail(ATTN_BAD_DTYPE, "%s.dtype is %d; it must match q.dtype (%d)", param_name[x],
                             (int)t[x]->dtype, (int)p->m.dtype);
        attn_status st = attn__check_view(&nv);
        if (st != ATTN_OK) return st;
    }
    int src = p->kind == ATTN_SCORE_KIND_ADDITIVE ? P_WQ : P_W;
    if (attn__score_is_tanh(p) && (p->A = t[src]->dim[2]) == 0)
        return attn_fail(ATTN_BAD_DIM, "%s.dim[2] (A) is 0; the attention dim must be positive", param_name[src]);
    if (p->Dq > INT64_MAX - p->Dk) return attn_fail(ATTN_OVERFLOW, "Dq + Dk overflows int64");
    int64_t dims[N_PARAMS][4];
    param_dims(p, dims);
    for (int x = 0; x < N_PARAMS; x++) {
        attn_status st;
        if (t[x] != NULL &&
            (st = attn__check_shape(&p->m, t[x], param_name[x], dims[x][0], dims[x][1], dims[x][2],
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

static attn_status check_inputs(const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                                attn__score *p)
{
    const attn_tensor *in[3] = {q, k, v};
    const char *names[3] = {"q", "k", "v"};
    for (int x = 0; x < 3; x++) {
        attn__named nv = {in[x], names[x], false};
        if (in[x] == NULL) continue;
        if (in[x]->dtype != p->m.dtype)
            return attn_fail(ATTN_BAD_DTYPE, "%s.dtype is %d; it must match q.dtype (%d)", names[x],
                             (int)in[x]->dtype, (int)p->m.dtype);
        attn_status st = attn__check_view(&nv);
        if (st != ATTN_OK) return st;
    }
    p->H = q->dim[2];
    p->Dq = q->dim[3];
    p->Dk = k->dim[3];
    if (p->Dq == 0) return attn_fail(ATTN_BAD_DIM, "q.dim[3] (Dq) is 0; it must be positive");
    if (p->Dk == 0) return attn_fail(ATTN_BAD_DIM, "k.dim[3] (Dk) is 0; it must be positive");
    if (v != NULL && v->dim[3] == 0) return attn_fail(ATTN_BAD_DIM, "v.dim[3] (Dv) is 0; it must be positive");
    if (k->dim[0] != q->dim[0] || k->dim[2] != p->H)
        return attn_fail(ATTN_SHAPE_MISMATCH, "k is [%lld, %lld, %lld, %lld]; its batch and head dims "
                         "must match q's (%lld, %lld)", (long long)k->dim[0], (long long)k->dim[1],
                          (long long)k->dim[2], (long long)k->dim[3], (long long)q->dim[0], (long long)p->H);
    if (v != NULL && (v->dim[0] != k->dim[0] || v->dim[1] != k->dim[1] || v->dim[2] != k->dim[2]))
        return attn_fail(ATTN_SHAPE_MISMATCH, "v is [%lld, %lld, %lld, %lld]; its first three dims "
                         "must match k's", (long long)v->dim[0], (long long)v->dim[1],
                          (long long)v->dim[2], (long long)v->dim[3]);
    if (p->kind == ATTN_SCORE_KIND_SCALED_DOT && p->Dk != p->Dq)
        return attn_fail(ATTN_SHAPE_MISMATCH, "k.dim[3] (Dk) is %lld; ATTN_SCORE_KIND_SCALED_DOT needs "
                         "Dk == Dq (%lld)", (long long)p->Dk, (long long)p->Dq);
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

/* Checks ctx, q, k, v (NULL for weights), params; fills p. */
static attn_status prepare(const attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                           const attn_tensor *v, bool need_v, const attn_score_params *params,
                           attn__score *p)
{
    memset(p, 0, sizeof *p);
    if (ctx == NULL) return attn_fail(ATTN_NULL_ARG, "ctx is NULL");
    if (q == NULL) return attn_fail(ATTN_NULL_ARG, "q is NULL");
    if (k == NULL) return attn_fail(ATTN_NULL_ARG, "k is NULL");
    if (need_v && v == NULL) return attn_fail(ATTN_NULL_ARG, "v is NULL");
    if (params == NULL) return attn_fail(ATTN_NULL_ARG, "params is NULL");
    if (params->kind < ATTN_SCORE_KIND_ADDITIVE || params->kind > ATTN_SCORE_KIND_SCALED_DOT)
        return attn_fail(ATTN_BAD_PARAM, "params.kind is %d; it must be an attn_score_kind value",
                         (int)params->kind);
    p->kind = params->kind;
    if (q->dtype != ATTN_DTYPE_F32 && q->dtype != ATTN_DTYPE_F64)
        return attn_fail(ATTN_BAD_DTYPE, "q.dtype is %d; it must be ATTN_DTYPE_F32 or ATTN_DTYPE_F64", (int)q->dtype);
    p->m.dtype = q->dtype;
    if ((ctx->kernel == ATTN_KERNEL_TILED || ctx->kernel == ATTN_KERNEL_AVX2) && q->dtype != ATTN_DTYPE_F32)
        return attn_fail(ATTN_UNSUPPORTED, "the %s kernel is float32 only; q.dtype is F64",
                         attn_kernel_name(ctx->kernel));
    attn_status st;
    if ((st = check_inputs(q, k, v, p)) != ATTN_OK || (st = check_masks(&params->masks, p)) != ATTN_OK ||
        (st = check_params(params, p)) != ATTN_OK)
        return st;
    return ATTN_OK;
}

/* The gradients asked for: each must belong to a parameter of the call and
 * have its dims. */
static attn_status check_grads(const attn_score_grads *g, const attn_score_params *a, attn__score *p)
{
    attn_tensor *gt[N_PARAMS] = {g->d_w_q, g->d_w_k, g->d_b, g->d_v_a, g->d_w, g->d_g};
    const attn_tensor *t[N_PARAMS];
    param_slots(a, t);
    for (int x = 0; x < N_PARAMS; x++) {
        attn__named nv = {gt[x], grad_name[x], true};
        if (gt[x] == NULL) continue;
        if (t[x] == NULL)
            return attn_fail(ATTN_BAD_PARAM, "%s is given but %s is NULL (%s)", grad_name[x], param_name[x],
                             kind_name(p->kind));
        attn_status st = attn__check_view(&nv);
        if (st != ATTN_OK ||
            (st = attn__check_shape(&p->m, gt[x], grad_name[x], t[x]->dim[0], t[x]->dim[1], t[x]->dim[2],
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

/* Views beyond the inputs: checked, then shape-checked against dims. */
static attn_status check_more(const attn__score *p, const attn__named *v, const int64_t dims[4])
{
    attn_status st = attn__check_view(v);
    if (st != ATTN_OK) return st;
    return attn__check_shape(&p->m, v->t, v->name, dims[0], dims[1], dims[2], dims[3]);
}

/* ---- plans ------------------------------------------------------------------ */

enum { OP_FORWARD, OP_BACKWARD, OP_WEIGHTS };
enum { ROWS = ATTN__SCORE_ROWS, WROWS = 16 /* rows of W per dW task */ };

typedef struct {
    const attn__score *p;
    attn_ctx *ctx;
    const attn_sdpa_params *masks; /* the caller's, for the core's kernels */
    attn__score_bufs s;
    attn__score_linear lq, lk;     /* projections of q (tanh kinds) and k */
    const attn__score_linear *lin; /* the one the current tasks work on */
    const float *wpack;            /* its W [H, R, C], for dx */
    const float *wq, *wk;          /* tanh kinds: packed Wq [H, A, Dq], Wk [H, A, Dk] */
    const float *gv;               /* SCALED_DOT: g [H] */
    float *feat, *dfeat;           /* k' (LUONG_GENERAL) or q' (SCALED_DOT) [B, H, S, Dq], and gradient */
    double *pg;                    /* reference: parameter gradients [B, H, nparam] */
    void *mem;                     /* the one allocation; per-worker workspace at its end */
    char *ws;
    size_t ws_bytes;
    int64_t nblk; /* blocks per head (or per W) of the current tasks */
    bool with_dropout;
    attn_tensor *w;
} run_state;

static int64_t blocks(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* a * b * c * d, or -1 on overflow. */
static int64_t prod4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t x;
    if (!attn__mul(a, b, &x) || !attn__mul(x, c, &x) || !attn__mul(x, d, &x)) return -1;
    return x;
}

/* One allocation: parts of n[0 .. count) elements of elem bytes, then a
 * workspace slice of per_worker elements for each worker. */
static attn_status alloc_all(run_state *rs, const int64_t *n, int count, int64_t per_worker, size_t elem)
{
    int64_t total = 0, ws = 0;
    if (per_worker < 1) per_worker = per_worker < 0 ? -1 : 1;
    for (int x = 0; x < count && total >= 0; x++)
        total = n[x] < 0 || total > INT64_MAX - n[x] ? -1 : total + n[x];
    if (total < 0 || per_worker < 0 || !attn__mul(per_worker, attn__pool_threads(rs->ctx->pool), &ws) ||
        total > INT64_MAX - ws || (uint64_t)(total + ws) > SIZE_MAX / elem)
        return attn_fail(ATTN_OVERFLOW, "the buffers of this call overflow the address space");
    rs->mem = attn__malloc((size_t)(total + ws) * elem);
    if (rs->mem == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate %zu bytes of buffers", (size_t)(total + ws) * elem);
    rs->ws = (char *)rs->mem + (size_t)total * elem;
    rs->ws_bytes = (size_t)per_worker * elem;
    return ATTN_OK;
}

static float *take(float **cur, int64_t n)
{
    float *x = *cur;
    *cur += n;
    return x;
}

static void *worker_ws(const run_state *rs, int tid) { return rs->ws + rs->ws_bytes * (size_t)tid; }

/* Floats per worker for the linear maps: rows, dx and dW tasks. */
static int64_t linear_ws(const attn__score *p)
{
    int64_t C = p->Dq > p->Dk ? p->Dq : p->Dk;
    return C < INT64_MAX / (2 * WROWS) ? (WROWS + 1) * C + WROWS : -1;
}

/* [B, S, H, D] view of a head-major [B, H, S, D] float buffer. */
static attn_tensor head_major(float *data, int64_t B, int64_t S, int64_t H, int64_t D)
{
    attn_tensor t = attn_tensor_make(data, ATTN_DTYPE_F32, B, S, H, D);
    t.stride[0] = H * S * D;
    t.stride[1] = D;
    t.stride[2] = S * D;
    return t;
}

/* ---- tasks (task index -> (b, h, block)) ----------------------------------------- */

static void ref_task(void *arg, int64_t t, int tid, int op)
{
    run_state *rs = arg;
    const attn__score *p = rs->p;
    int64_t b = t / p->H, h = t % p->H;
    if (op == OP_FORWARD) attn__score_ref_forward(p, b, h, worker_ws(rs, tid));
    else if (op == OP_BACKWARD)
        attn__score_ref_backward(p, b, h, worker_ws(rs, tid), rs->pg + t * attn__score_ref_nparam(p));
    else attn__score_ref_weights(p, b, h, rs->with_dropout, rs->w, worker_ws(rs, tid));
}

static void ref_forward_task(void *arg, int64_t t, int tid) { ref_task(arg, t, tid, OP_FORWARD); }
static void ref_backward_task(void *arg, int64_t t, int tid) { ref_task(arg, t, tid, OP_BACKWARD); }
static void ref_weights_task(void *arg, int64_t t, int tid) { ref_task(arg, t, tid, OP_WEIGHTS); }

static void linear_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, s0 = t % rs->nblk * ROWS, H = rs->p->H;
    attn__score_linear_rows(rs->lin, H, bh / H, bh % H, s0, min64(ROWS, rs->lin->S - s0), worker_ws(rs, tid));
}

static void linear_dx_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, s0 = t % rs->nblk * ROWS, H = rs->p->H;
    attn__score_linear_dx_rows(rs->lin, rs->wpack, H, bh / H, bh % H, s0, min64(ROWS, rs->lin->S - s0),
                               worker_ws(rs, tid));
}

static void linear_dw_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t r0 = t % rs->nblk * WROWS;
    attn__score_linear_dw_rows(rs->lin, rs->p->m.B, rs->p->H, t / rs->nblk, r0,
                               min64(WROWS, rs->lin->R - r0), worker_ws(rs, tid));
}

static void forward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, H = rs->p->H;
    attn__score_forward_block(rs->p, &rs->s, bh / H, bh % H, t % rs->nblk, worker_ws(rs, tid));
}

static void weights_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, H = rs->p->H;
    attn__score_weights_block(rs->p, &rs->s, bh / H, bh % H, t % rs->nblk, rs->with_dropout, rs->w,
                              worker_ws(rs, tid));
}

static void delta_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)tid;
    attn__score_delta_head(rs->p, &rs->s, t / rs->p->H, t % rs->p->H);
}

static void group_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->s.groups, H = rs->p->H;
    attn__score_backward_group(rs->p, &rs->s, bh / H, bh % H, t % rs->s.groups, worker_ws(rs, tid));
}

static void reduce_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, H = rs->p->H;
    (void)tid;
    attn__score_reduce_dpq(rs->p, &rs->s, bh / H, bh % H, t % rs->nblk);
}

static void gscale_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, i0 = t % rs->nblk * ROWS, H = rs->p->H;
    (void)tid;
    attn__score_gscale_rows(rs->p, rs->gv, rs->feat, bh / H, bh % H, i0, min64(ROWS, rs->p->m.Sq - i0));
}

static void gscale_dq_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, i0 = t % rs->nblk * ROWS, H = rs->p->H;
    (void)tid;
    attn__score_gscale_dq_rows(rs->p, rs->gv, rs->dfeat, bh / H, bh % H, i0, min64(ROWS, rs->p->m.Sq - i0));
}

/* Runs fn over the row blocks (of `tile` rows of S) of every head. */
static void run_rows(run_state *rs, int64_t S, int64_t tile, attn__task_fn fn)
{
    rs->nblk = blocks(S, tile);
    attn__pool_run(rs->ctx->pool, rs->p->m.B * rs->p->H * rs->nblk, fn, rs);
}

static void run_linear(run_state *rs, const attn__score_linear *L, attn__task_fn fn)
{
    rs->lin = L;
    run_rows(rs, L->S, ROWS, fn);
}

/* dW (and db) of map L, one task per WROWS rows of W per head. */
static void run_linear_dw(run_state *rs, const attn__score_linear *L)
{
    rs->lin = L;
    rs->nblk = blocks(L->R, WROWS);
    attn__pool_run(rs->ctx->pool, rs->p->H * rs->nblk, linear_dw_task, rs);
}

/* ---- the reference path ------------------------------------------------------------ */

/* Gradient t (dims [1, H, R, C]) from slot offset off of every head's
 * parameter gradients, summed over the batch in order. */
static void write_ref_grad(const attn__score *p, const attn_tensor *t, const double *pg, int64_t off,
                           int64_t R, int64_t C)
{
    int64_t np = attn__score_ref_nparam(p);
    for (int64_t h = 0; t->data != NULL && h < p->H; h++)
        for (int64_t x = 0; x < R * C; x++) {
            double sum = 0.0;
            for (int64_t b = 0; b < p->m.B; b++) sum += pg[(b * p->H + h) * np + off + x];
            attn__st(t, attn__off(t->stride, 0, h, x / C, x % C), sum);
        }
}

static attn_status run_ref(run_state *rs, int op)
{
    const attn__score *p = rs->p;
    int64_t n_pg = op == OP_BACKWARD ? prod4(p->m.B, p->H, attn__score_ref_nparam(p), 1) : 0;
    attn_status st = alloc_all(rs, &n_pg, 1, attn__score_ref_ws(p), sizeof(double));
    if (st != ATTN_OK) return st;
    rs->pg = rs->mem;
    attn__task_fn fn = op == OP_FORWARD ? ref_forward_task : op == OP_BACKWARD ? ref_backward_task : ref_weights_task;
    attn__pool_run(rs->ctx->pool, p->m.B * p->H, fn, rs);
    if (op == OP_BACKWARD && attn__score_is_tanh(p)) {
        int64_t A = p->A, AD = A * (p->Dq + p->Dk);
        write_ref_grad(p, &p->dwq, rs->pg, 0, A, p->Dq);
        write_ref_grad(p, &p->dwk, rs->pg, A * p->Dq, A, p->Dk);
        write_ref_grad(p, &p->db, rs->pg, AD, 1, A);
        write_ref_grad(p, &p->dva, rs->pg, AD + A, 1, A);
    } else if (op == OP_BACKWARD) {
        bool gen = p->kind == ATTN_SCORE_KIND_LUONG_GENERAL;
        write_ref_grad(p, gen ? &p->dw : &p->dg, rs->pg, 0, gen ? p->Dq : 1, gen ? p->Dk : 1);
    }
    attn__free(rs->mem);
    return ATTN_OK;
}

/* ---- the chunked float32 path (ADDITIVE, LUONG_CONCAT) --------------------------------- */

/* Buffers and packed parameters; then the projections pq = Wq q + b and
 * pk = Wk k. The backward also gets dpq, dpk, the group partials, delta
 * and Wq, Wk for dx. */
static attn_status tanh_setup(run_state *rs, bool bwd)
{
    const attn__score *p = rs->p;
    const attn__sdpa *m = &p->m;
    int64_t B = m->B, H = p->H, A = p->A, G = min64(ATTN__SCORE_GROUPS, blocks(m->Sk, ATTN__SCORE_TK));
    G = G > 0 ? G : 1;
    int64_t nq = prod4(B, H, m->Sq, A), nk = prod4(B, H, m->Sk, A), nwq = prod4(H, p->Dq, A, 1);
    int64_t nwk = prod4(H, p->Dk, A, 1), nha = prod4(H, A, 1, 1);
    int64_t n[] = {nq, nk, nwq, nwk, p->has_b ? nha : 0, nha, bwd ? nq : 0, bwd ? nk : 0,
                   bwd ? prod4(G, nq, 1, 1) : 0, bwd ? prod4(B, G, nha, 1) : 0,
                   bwd ? prod4(B, H, m->Sq, 1) : 0, bwd ? nwq : 0, bwd ? nwk : 0};
    int64_t ws = attn__score_chunked_ws(p), lws = linear_ws(p);
    attn_status st = alloc_all(rs, n, (int)(sizeof n / sizeof n[0]), ws < 0 || lws < 0 ? -1 : ws > lws ? ws : lws,
                               sizeof(float));
    if (st != ATTN_OK) return st;
    float *cur = rs->mem, *wqt, *wkt, *bias, *va, *wq, *wk;
    rs->s.pq = take(&cur, nq);
    rs->s.pk = take(&cur, nk);
    wqt = take(&cur, nwq);
    wkt = take(&cur, nwk);
    bias = take(&cur, n[4]);
    va = take(&cur, nha);
    rs->s.dpq = take(&cur, n[6]);
    rs->s.dpk = take(&cur, n[7]);
    rs->s.dpq_part = take(&cur, n[8]);
    rs->s.dva_part = take(&cur, n[9]);
    rs->s.delta = take(&cur, n[10]);
    wq = take(&cur, n[11]);
    wk = take(&cur, n[12]);
    for (int64_t h = 0; h < H; h++) {
        attn__score_pack(&p->wq, h, true, wqt + h * p->Dq * A);
        attn__score_pack(&p->wk, h, true, wkt + h * p->Dk * A);
        if (p->has_b) attn__score_pack(&p->b, h, false, bias + h * A);
        attn__score_pack(&p->va, h, false, va + h * A);
        if (bwd) attn__score_pack(&p->wq, h, false, wq + h * A * p->Dq);
        if (bwd) attn__score_pack(&p->wk, h, false, wk + h * A * p->Dk);
    }
    rs->s.wqt = wqt;
    rs->s.wkt = wkt;
    rs->s.bias = p->has_b ? bias : NULL;
    rs->s.va = va;
    rs->s.groups = G;
    rs->s.tanh_sat = ATTN__SCORE_TANH_SAT;
    rs->lq = (attn__score_linear){&m->q, m->Sq, A, p->Dq, m->q_lens, wqt, rs->s.bias, rs->s.pq, &m->dq,
                                  p->dwq.data ? &p->dwq : NULL, p->db.data ? &p->db : NULL};
    rs->lk = (attn__score_linear){&m->k, m->Sk, A, p->Dk, m->k_lens, wkt, NULL, rs->s.pk, &m->dk,
                                  p->dwk.data ? &p->dwk : NULL, NULL};
    rs->wq = wq;
    rs->wk = wk;
    run_linear(rs, &rs->lq, linear_task);
    run_linear(rs, &rs->lk, linear_task);
    return ATTN_OK;
}

/* dS per key-chunk group, dpq from the partials, then the projections'
 * backward (dq, dk, dWq, db, dWk) and dv_a. */
static void tanh_backward(run_state *rs)
{
    const attn__score *p = rs->p;
    int64_t B = p->m.B, H = p->H, A = p->A, G = rs->s.groups;
    attn__pool_run(rs->ctx->pool, B * H, delta_task, rs);
    attn__pool_run(rs->ctx->pool, B * H * G, group_task, rs);
    run_rows(rs, p->m.Sq, ATTN__SCORE_TQ, reduce_task);
    rs->lq.y = rs->s.dpq;
    rs->lk.y = rs->s.dpk;
    rs->wpack = rs->wq;
    run_linear(rs, &rs->lq, linear_dx_task);
    rs->wpack = rs->wk;
    run_linear(rs, &rs->lk, linear_dx_task);
    if (rs->lq.dw != NULL || rs->lq.db != NULL) run_linear_dw(rs, &rs->lq);
    if (rs->lk.dw != NULL) run_linear_dw(rs, &rs->lk);
    for (int64_t h = 0; p->dva.data != NULL && h < H; h++)
        for (int64_t a = 0; a < A; a++) {
            float sum = 0.0f;
            for (int64_t b = 0; b < B; b++)
                for (int64_t g = 0; g < G; g++) sum += rs->s.dva_part[((b * H + h) * G + g) * A + a];
            ((float *)p->dva.data)[attn__off(p->dva.stride, 0, h, 0, a)] = sum;
        }
}

static attn_status run_tanh(run_state *rs, int op)
{
    attn_status st = tanh_setup(rs, op == OP_BACKWARD);
    if (st != ATTN_OK) return st;
    if (op == OP_FORWARD) run_rows(rs, rs->p->m.Sq, ATTN__SCORE_TQ, forward_task);
    else if (op == OP_WEIGHTS) run_rows(rs, rs->p->m.Sq, ATTN__SCORE_TQ, weights_task);
    else tanh_backward(rs);
    attn__free(rs->mem);
    return ATTN_OK;
}

/* ---- the dot kinds through the core's kernels --------------------------------------- */

/* k' = W k (LUONG_GENERAL) or q' = g q (SCALED_DOT) into rs->feat, with
 * room for its gradient in the backward. */
static attn_status dot_setup(run_state *rs, bool bwd)
{
    const attn__score *p = rs->p;
    const attn__sdpa *m = &p->m;
    bool gen = p->kind == ATTN_SCORE_KIND_LUONG_GENERAL;
    int64_t H = p->H, nf = prod4(m->B, H, gen ? m->Sk : m->Sq, p->Dq);
    int64_t nw = gen ? prod4(H, p->Dq, p->Dk, 1) : H;
    int64_t n[] = {nf, bwd ? nf : 0, nw, gen && bwd ? nw : 0};
    attn_status st = alloc_all(rs, n, 4, gen ? linear_ws(p) : 0, sizeof(float));
    if (st != ATTN_OK) return st;
    float *cur = rs->mem, *packed, *w;
    rs->feat = take(&cur, nf);
    rs->dfeat = take(&cur, n[1]);
    packed = take(&cur, nw);
    w = take(&cur, n[3]);
    if (!gen) {
        for (int64_t h = 0; h < H; h++) packed[h] = ((const float *)p->g.data)[attn__off(p->g.stride, 0, h, 0, 0)];
        rs->gv = packed;
        run_rows(rs, m->Sq, ROWS, gscale_task);
        return ATTN_OK;
    }
    for (int64_t h = 0; h < H; h++) {
        attn__score_pack(&p->w, h, true, packed + h * p->Dk * p->Dq);
        if (bwd) attn__score_pack(&p->w, h, false, w + h * p->Dq * p->Dk);
    }
    rs->wpack = w;
    rs->lk = (attn__score_linear){&m->k, m->Sk, p->Dq, p->Dk, m->k_lens, packed, NULL, rs->feat, &m->dk,
                                  p->dw.data ? &p->dw : NULL, NULL};
    run_linear(rs, &rs->lk, linear_task);
    return ATTN_OK;
}

/* After the core's backward left dk' (or dq') in rs->dfeat. */
static void dot_backward(run_state *rs)
{
    const attn__score *p = rs->p;
    if (p->kind == ATTN_SCORE_KIND_LUONG_GENERAL) { /* k' = W k: dk = W^T dk', dW = sum dk' k^T */
        rs->lk.y = rs->dfeat;
        run_linear(rs, &rs->lk, linear_dx_task);
        if (rs->lk.dw != NULL) run_linear_dw(rs, &rs->lk);
        return;
    }
    run_rows(rs, p->m.Sq, ROWS, gscale_dq_task); /* q' = g q: dq = g dq', dg = sum q . dq' */
    for (int64_t h = 0; p->dg.data != NULL && h < p->H; h++) attn__score_dg_head(p, rs->dfeat, h);
}

static attn_status run_dot(run_state *rs, int op)
{
    attn_status st = dot_setup(rs, op == OP_BACKWARD);
    if (st != ATTN_OK) return st;
    const attn__score *p = rs->p;
    const attn__sdpa *m = &p->m;
    bool gen = p->kind == ATTN_SCORE_KIND_LUONG_GENERAL;
    attn_tensor f = head_major(rs->feat, m->B, gen ? m->Sk : m->Sq, p->H, p->Dq);
    attn_tensor df = head_major(rs->dfeat, m->B, gen ? m->Sk : m->Sq, p->H, p->Dq);
    attn_tensor o = m->o, lse = m->lse, dq = m->dq, dk = m->dk, dv = m->dv;
    const attn_tensor *cq = gen ? &m->q : &f, *ck = gen ? &f : &m->k;
    attn_sdpa_params sp = *rs->masks;
    sp.has_scale = 1;
    sp.scale = 1.0;
    if (op == OP_FORWARD)
        st = attn_sdpa_forward(rs->ctx, cq, ck, &m->v, &sp, &o, lse.data != NULL ? &lse : NULL);
    else if (op == OP_WEIGHTS)
        st = attn_sdpa_weights(rs->ctx, cq, ck, &lse, &sp, NULL, p->H, NULL, m->Sq, rs->with_dropout, rs->w);
    else if ((st = attn_sdpa_backward(rs->ctx, cq, ck, &m->v, &m->o, &m->d_o, &lse, &sp, gen ? &dq : &df,
                                      gen ? &df : &dk, &dv, NULL)) == ATTN_OK)
        dot_backward(rs);
    attn__free(rs->mem);
    return st;
}

static attn_status run(attn_ctx *ctx, const attn__score *p, const attn_score_params *a, int op,
                       bool with_dropout, attn_tensor *w)
{
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.p = p;
    rs.ctx = ctx;
    rs.masks = &a->masks;
    rs.with_dropout = with_dropout;
    rs.w = w;
    if (p->m.dtype == ATTN_DTYPE_F64 || ctx->kernel == ATTN_KERNEL_REF) return run_ref(&rs, op);
    return attn__score_is_tanh(p) ? run_tanh(&rs, op) : run_dot(&rs, op);
}

/* ---- entry points --------------------------------------------------------------------- */

attn_status attn_score_forward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_score_params *params,
                               attn_tensor *out, attn_tensor *lse)
{
    attn__clear_error();
    attn__score p;
    attn__named views[16];
    attn_status st = prepare(ctx, q, k, v, true, params, &p);
    if (st != ATTN_OK) return st;
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "out is NULL");
    const attn__sdpa *m = &p.m;
    int64_t od[4] = {m->B, m->Sq, p.H, m->Dv}, ld[4] = {m->B, p.H, m->Sq, 1};
    int n = input_views(q, k, v, params, views);
    views[n++] = (attn__named){out, "out", true};
    views[n++] = (attn__named){lse, "lse", true};
    if ((st = check_more(&p, &views[n - 2], od)) != ATTN_OK ||
        (lse != NULL && (st = check_more(&p, &views[n - 1], ld)) != ATTN_OK) ||
        (st = attn__check_overlap(views, n)) != ATTN_OK)
        return st;
    p.m.o = *out;
    if (lse != NULL) p.m.lse = *lse;
    if (m->B == 0 || p.H == 0 || m->Sq == 0) return ATTN_OK;
    return run(ctx, &p, params, OP_FORWARD, false, NULL);
}

attn_status attn_score_backward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                const attn_tensor *v, const attn_tensor *out, const attn_tensor *d_out,
                                const attn_tensor *lse, const attn_score_params *params,
                                attn_tensor *dq, attn_tensor *dk, attn_tensor *dv,
                                const attn_score_grads *grads)
{
    attn__clear_error();
    attn__score p;
    attn__named views[32];
    attn_status st = prepare(ctx, q, k, v, true, params, &p);
    if (st != ATTN_OK) return st;
    const attn_tensor *need[] = {out, d_out, lse, dq, dk, dv};
    const char *names[] = {"out", "d_out", "lse", "dq", "dk", "dv"};
    const attn__sdpa *m = &p.m;
    int64_t dims[6][4] = {{m->B, m->Sq, p.H, m->Dv}, {m->B, m->Sq, p.H, m->Dv}, {m->B, p.H, m->Sq, 1},
                          {m->B, m->Sq, p.H, p.Dq}, {m->B, m->Sk, p.H, p.Dk}, {m->B, m->Sk, p.H, m->Dv}};
    int n = input_views(q, k, v, params, views);
    for (int x = 0; x < 6; x++) {
        if (need[x] == NULL) return attn_fail(ATTN_NULL_ARG, "%s is NULL", names[x]);
        views[n] = (attn__named){need[x], names[x], x >= 3};
        if ((st = check_more(&p, &views[n++], dims[x])) != ATTN_OK) return st;
    }
    if (grads != NULL) {
        attn_tensor *gt[N_PARAMS] = {grads->d_w_q, grads->d_w_k, grads->d_b, grads->d_v_a, grads->d_w, grads->d_g};
        if ((st = check_grads(grads, params, &p)) != ATTN_OK) return st;
        for (int x = 0; x < N_PARAMS; x++) views[n++] = (attn__named){gt[x], grad_name[x], true};
    }
    if ((st = attn__check_overlap(views, n)) != ATTN_OK) return st;
    p.m.o = *out;
    p.m.d_o = *d_out;
    p.m.lse = *lse;
    p.m.dq = *dq;
    p.m.dk = *dk;
    p.m.dv = *dv;
    return run(ctx, &p, params, OP_BACKWARD, false, NULL);
}

attn_status attn_score_weights(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *lse, const attn_score_params *params, int with_dropout,
                               attn_tensor *w)
{
    attn__clear_error();
    attn__score p;
    attn__named views[16];
    attn_status st = prepare(ctx, q, k, NULL, false, params, &p);
    if (st != ATTN_OK) return st;
    if (lse == NULL) return attn_fail(ATTN_NULL_ARG, "lse is NULL");
    if (w == NULL) return attn_fail(ATTN_NULL_ARG, "w is NULL");
    const attn__sdpa *m = &p.m;
    int64_t ld[4] = {m->B, p.H, m->Sq, 1}, wd[4] = {m->B, p.H, m->Sq, m->Sk};
    int n = input_views(q, k, NULL, params, views);
    views[n++] = (attn__named){lse, "lse", false};
    views[n++] = (attn__named){w, "w", true};
    if ((st = check_more(&p, &views[n - 2], ld)) != ATTN_OK || (st = check_more(&p, &views[n - 1], wd)) != ATTN_OK ||
        (st = attn__check_overlap(views, n)) != ATTN_OK)
        return st;
    p.m.lse = *lse;
    if (m->B == 0 || p.H == 0 || m->Sq == 0 || m->Sk == 0) return ATTN_OK;
    return run(ctx, &p, params, OP_WEIGHTS, with_dropout != 0, w);
}
