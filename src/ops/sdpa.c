/* sdpa.c - the scaled-dot-product attention entry points: validate (once,
 * in sdpa_validate.c), plan the workspace, split the work into tasks over
 * the context's thread pool, and call a kernel. F64 tensors, or a context
 * forced to ATTN_KERNEL_REF, run the double-precision reference; F32
 * tensors otherwise run the tiled kernel. */
#include "ops/sdpa_ops.h"

#include <string.h>

attn_sdpa_params attn_sdpa_params_default(void)
{
    attn_sdpa_params a;
    memset(&a, 0, sizeof a);
    a.window_left = -1;
    a.window_right = -1;
    return a;
}

attn_tensor attn_tensor_make(void *data, attn_dtype dtype, int64_t d0, int64_t d1, int64_t d2,
                             int64_t d3)
{
    attn_tensor t;
    t.data = data;
    t.dtype = dtype;
    t.dim[0] = d0;
    t.dim[1] = d1;
    t.dim[2] = d2;
    t.dim[3] = d3;
    t.stride[3] = 1;
    t.stride[2] = d3;
    t.stride[1] = d2 * d3;
    t.stride[0] = d1 * d2 * d3;
    return t;
}

static bool use_ref(const attn_ctx *ctx, const attn__sdpa *p)
{
    return p->dtype == ATTN_DTYPE_F64 || ctx->kernel == ATTN_KERNEL_REF;
}

/* The float32 kernel of this call: AVX2 when forced or (AUTO) available. */
static bool use_avx2(const attn_ctx *ctx)
{
    return attn_ctx_resolved_kernel(ctx) == ATTN_KERNEL_AVX2;
}

/* Number of blocks of `tile` rows in n. */
static int64_t blocks(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

/* What the tasks of one call share. The workspace holds one slice of
 * ws_bytes per worker. */
typedef struct {
    const attn__sdpa *p;
    char *ws;
    size_t ws_bytes; /* per worker */
    int64_t nqb, nkb; /* query and key blocks per head */
    float *delta;     /* (B, Hq, Sq) rowsum(dO * O), tiled backward */
    float *parts;     /* decode: per (b, kv head, split) partial softmax results */
    double *dbias_acc; /* reference backward */
    const int64_t *heads, *rows;
    int64_t n_heads, n_rows;
    bool with_dropout, write_dbias, ref;
    attn_tensor *w;
} run_state;

static attn_status alloc_ws(run_state *rs, const attn_ctx *ctx, int64_t per, size_t elem)
{
    int64_t n;
    int threads = attn__pool_threads(ctx->pool);
    if (per < 1) per = 1;
    if (!attn__mul(per, (int64_t)elem, &n) || (uint64_t)n > SIZE_MAX / (size_t)threads)
        return attn_fail(ATTN_OVERFLOW, "the kernel workspace size overflows");
    rs->ws_bytes = (size_t)n;
    rs->ws = attn__malloc(rs->ws_bytes * (size_t)threads);
    if (rs->ws == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate %zu bytes of workspace",
                         rs->ws_bytes * (size_t)threads);
    return ATTN_OK;
}

/* A buffer of n elements beside the workspace (zeroed if asked); on failure
 * the workspace is freed too and *st says what could not be had. */
static void *alloc_extra(run_state *rs, int64_t n, size_t elem, bool zeroed, const char *what,
                         attn_status *st)
{
    size_t count = (size_t)(n > 0 ? n : 1);
    void *p = count > SIZE_MAX / elem ? NULL : zeroed ? attn__calloc(count, elem) : attn__malloc(count * elem);
    if (p == NULL) {
        attn__free(rs->ws);
        *st = attn_fail(ATTN_NO_MEMORY, "cannot allocate %lld elements for %s", (long long)n, what);
    }
    return p;
}

static void *worker_ws(const run_state *rs, int tid) { return rs->ws + rs->ws_bytes * (size_t)tid; }

/* ---- forward -------------------------------------------------------------- */

static void ref_forward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    attn__ref_forward_head(rs->p, t / rs->p->Hq, t % rs->p->Hq, worker_ws(rs, tid));
}

static void tiled_forward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t qb = t % rs->nqb, bh = t / rs->nqb;
    attn__tiled_forward_block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb, worker_ws(rs, tid));
}

/* AVX2 tasks take a head's query blocks last-first: under a causal mask the
 * largest blocks start first, so the workers finish together. */
static void avx2_forward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t qb = rs->nqb - 1 - t % rs->nqb, bh = t / rs->nqb;
    attn__avx2_forward_block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb, worker_ws(rs, tid));
}

/* Task (b, split) walks every kv head of its keys: in the [B, S, H, D]
 * layout the heads of one key share its page, so each page is read whole
 * once instead of one head's slice per task (TLB and prefetcher friendly). */
static void decode_split_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa *p = rs->p;
    int64_t s = t % rs->nkb, b = t / rs->nkb;
    for (int64_t hkv = 0; hkv < p->Hkv; hkv++)
        attn__avx2_decode_split(p, b, hkv, s, ATTN__DECODE_SPLIT,
                                rs->parts + ((b * p->Hkv + hkv) * rs->nkb + s) * attn__avx2_decode_partial(p),
                                worker_ws(rs, tid));
}

static void decode_merge_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)tid;
    attn__avx2_decode_merge(rs->p, t / rs->p->Hkv, t % rs->p->Hkv, rs->nkb,
                            rs->parts + t * rs->nkb * attn__avx2_decode_partial(rs->p));
}

/* Few query rows per kv head against many keys: split the keys. */
static bool use_decode(const attn_ctx *ctx, const attn__sdpa *p)
{
    return use_avx2(ctx) && attn__avx2_decode_rows(p) <= ATTN__DECODE_MAX_ROWS &&
           p->Sk >= 2 * ATTN__DECODE_SPLIT;
}

static attn_status run_decode(attn_ctx *ctx, const attn__sdpa *p)
{
    run_state rs = {.p = p};
    rs.nkb = blocks(p->Sk, ATTN__DECODE_SPLIT);
    int64_t n_parts;
    if (!attn__mul(p->B * p->Hkv * rs.nkb, attn__avx2_decode_partial(p), &n_parts))
        return attn_fail(ATTN_OVERFLOW, "the decode partial results overflow");
    attn_status st = alloc_ws(&rs, ctx, attn__avx2_decode_ws(p), sizeof(float));
    if (st != ATTN_OK) return st;
    if ((rs.parts = alloc_extra(&rs, n_parts, sizeof(float), false, "the decode partials", &st)) == NULL)
        return st;
    attn__pool_run(ctx->pool, p->B * rs.nkb, decode_split_task, &rs);
    attn__pool_run(ctx->pool, p->B * p->Hkv, decode_merge_task, &rs);
    attn__free(rs.parts);
    attn__free(rs.ws);
    return ATTN_OK;
}

attn_status attn_sdpa_forward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *v, const attn_sdpa_params *params,
                              attn_tensor *o, attn_tensor *lse)
{
    attn__clear_error();
    attn__sdpa p;
    if (ctx != NULL && q != NULL && k != NULL && v == NULL)
        return attn_fail(ATTN_NULL_ARG, "v is NULL");
    attn_status st = attn__sdpa_prepare(ctx, q, k, v, params, &p);
    if (st != ATTN_OK) return st;
    if (o == NULL) return attn_fail(ATTN_NULL_ARG, "o is NULL");
    attn__named views[] = {{q, "q", false}, {k, "k", false}, {v, "v", false},
                           {params ? params->bias : NULL, "params.bias", false},
                           {params ? params->mask : NULL, "params.mask", false},
                           {o, "o", true}, {lse, "lse", true}};
    for (int x = 5; x < 7; x++)
        if (views[x].t != NULL && (st = attn__check_view(&views[x])) != ATTN_OK) return st;
    if ((st = attn__check_shape(&p, o, "o", p.B, p.Sq, p.Hq, p.Dv)) != ATTN_OK) return st;
    if (lse != NULL && (st = attn__check_shape(&p, lse, "lse", p.B, p.Hq, p.Sq, 1)) != ATTN_OK)
        return st;
    if ((st = attn__check_overlap(views, 7)) != ATTN_OK) return st;
    p.o = *o;
    if (lse != NULL) p.lse = *lse;
    if (p.B == 0 || p.Hq == 0 || p.Sq == 0) return ATTN_OK;

    run_state rs = {.p = &p};
    if (use_ref(ctx, &p)) {
        if ((st = alloc_ws(&rs, ctx, attn__ref_forward_ws(&p), sizeof(double))) != ATTN_OK) return st;
        attn__pool_run(ctx->pool, p.B * p.Hq, ref_forward_task, &rs);
    } else if (use_decode(ctx, &p)) {
        return run_decode(ctx, &p);
    } else if (use_avx2(ctx)) {
        if ((st = alloc_ws(&rs, ctx, attn__avx2_forward_ws(&p), sizeof(float))) != ATTN_OK) return st;
        rs.nqb = blocks(p.Sq, ATTN__AVX2_TILE_Q);
        attn__pool_run(ctx->pool, p.B * p.Hq * rs.nqb, avx2_forward_task, &rs);
    } else {
        if ((st = alloc_ws(&rs, ctx, attn__tiled_forward_ws(&p), sizeof(float))) != ATTN_OK) return st;
        rs.nqb = blocks(p.Sq, ATTN__TILE_Q);
        attn__pool_run(ctx->pool, p.B * p.Hq * rs.nqb, tiled_forward_task, &rs);
    }
    attn__free(rs.ws);
    return ATTN_OK;
}

/* ---- backward ------------------------------------------------------------- */

static void ref_backward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    attn__ref_backward_kvhead(rs->p, t / rs->p->Hkv, t % rs->p->Hkv, worker_ws(rs, tid), NULL);
}

/* With a bias gradient the reference runs its heads in order on one thread,
 * so the broadcast sums have one fixed order. */
static void ref_backward_all(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)t;
    for (int64_t x = 0; x < rs->p->B * rs->p->Hkv; x++)
        attn__ref_backward_kvhead(rs->p, x / rs->p->Hkv, x % rs->p->Hkv, worker_ws(rs, tid),
                                  rs->dbias_acc);
}

static void tiled_delta_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)tid;
    int64_t qb = t % rs->nqb, bh = t / rs->nqb;
    attn__tiled_delta_block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb,
                            rs->delta + bh * rs->p->Sq);
}

static void tiled_dkdv_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t kb = t % rs->nkb, bh = t / rs->nkb;
    attn__tiled_dkdv_block(rs->p, bh / rs->p->Hkv, bh % rs->p->Hkv, kb, rs->delta,
                           worker_ws(rs, tid));
}

static void tiled_dq_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t qb = t % rs->nqb, bh = t / rs->nqb;
    attn__tiled_dq_block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb, rs->delta, rs->write_dbias,
                         worker_ws(rs, tid));
}

static void tiled_dbias_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const int64_t *n = rs->p->dbias.dim;
    attn__tiled_dbias_row(rs->p, t / (n[1] * n[2]), t / n[2] % n[1], t % n[2], rs->delta,
                          worker_ws(rs, tid));
}

static attn_status run_ref_backward(attn_ctx *ctx, const attn__sdpa *p)
{
    run_state rs = {.p = p};
    attn_status st = alloc_ws(&rs, ctx, attn__ref_backward_ws(p), sizeof(double));
    if (st != ATTN_OK) return st;
    if (p->dbias.data == NULL) {
        attn__pool_run(ctx->pool, p->B * p->Hkv, ref_backward_task, &rs);
        attn__free(rs.ws);
        return ATTN_OK;
    }
    const int64_t *n = p->dbias.dim;
    int64_t count = n[0] * n[1] * n[2] * n[3];
    if ((rs.dbias_acc = alloc_extra(&rs, count, sizeof(double), true, "the bias-gradient accumulator", &st)) ==
        NULL)
        return st;
    attn__pool_run(ctx->pool, 1, ref_backward_all, &rs);
    for (int64_t x = 0; x < count; x++) {
        int64_t j = x % n[3], i = x / n[3] % n[2], h = x / (n[3] * n[2]) % n[1];
        int64_t b = x / (n[3] * n[2] * n[1]);
        attn__st(&p->dbias, attn__off(p->dbias.stride, b, h, i, j), rs.dbias_acc[x]);
    }
    attn__free(rs.dbias_acc);
    attn__free(rs.ws);
    return ATTN_OK;
}

static void avx2_dkdv_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t kb = t % rs->nkb, bh = t / rs->nkb;
    attn__avx2_dkdv_block(rs->p, bh / rs->p->Hkv, bh % rs->p->Hkv, kb, rs->delta, worker_ws(rs, tid),
                          NULL, 0);
}

static void avx2_fused_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    attn__avx2_fused_kvhead(rs->p, t / rs->p->Hkv, t % rs->p->Hkv, rs->delta, worker_ws(rs, tid));
}

/* The fused AVX2 backward (5 GEMMs) needs enough kv heads to keep the
 * workers busy, and no bias gradient. Decided by the shape alone, never by
 * the thread count, so results stay bitwise identical across thread counts. */
static bool use_fused(const attn__sdpa *p)
{
    return p->B * p->Hkv >= 4 && p->dbias.data == NULL;
}

static void avx2_dq_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t qb = rs->nqb - 1 - t % rs->nqb, bh = t / rs->nqb;
    attn__avx2_dq_block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb, rs->delta, rs->write_dbias,
                        worker_ws(rs, tid));
}

/* Tiled or AVX2 backward: rowsum(dO * O), then dK/dV per key tile, dQ per
 * query block, and a broadcast bias gradient per dbias row; each pass owns
 * its outputs, so nothing depends on the thread count. */
static attn_status run_f32_backward(attn_ctx *ctx, const attn__sdpa *p)
{
    run_state rs = {.p = p};
    bool avx2 = use_avx2(ctx);
    int64_t n_delta, per = attn__tiled_backward_ws(p);
    if (!attn__mul(p->B * p->Hq, p->Sq > 0 ? p->Sq : 1, &n_delta))
        return attn_fail(ATTN_OVERFLOW, "B * Hq * Sq overflows");
    bool fused = avx2 && use_fused(p);
    if (avx2 && attn__avx2_backward_ws(p) > per) per = attn__avx2_backward_ws(p);
    if (fused && attn__avx2_fused_ws(p) > per) per = attn__avx2_fused_ws(p);
    attn_status st = alloc_ws(&rs, ctx, per, sizeof(float));
    if (st != ATTN_OK) return st;
    if ((rs.delta = alloc_extra(&rs, n_delta, sizeof(float), false, "rowsum(dO * O)", &st)) == NULL)
        return st;
    const int64_t *n = p->dbias.dim;
    bool has_dbias = p->dbias.data != NULL;
    rs.write_dbias = has_dbias && n[0] == p->B && n[1] == p->Hq && n[2] == p->Sq && n[3] == p->Sk;
    rs.nqb = blocks(p->Sq, ATTN__TILE_Q);
    attn__pool_run(ctx->pool, p->B * p->Hq * rs.nqb, tiled_delta_task, &rs);
    if (fused) {
        attn__pool_run(ctx->pool, p->B * p->Hkv, avx2_fused_task, &rs);
    } else if (avx2) {
        rs.nkb = blocks(p->Sk, ATTN__AVX2_TILE_K);
        attn__pool_run(ctx->pool, p->B * p->Hkv * rs.nkb, avx2_dkdv_task, &rs);
        rs.nqb = blocks(p->Sq, ATTN__AVX2_TILE_Q_BWD);
        attn__pool_run(ctx->pool, p->B * p->Hq * rs.nqb, avx2_dq_task, &rs);
    } else {
        rs.nkb = blocks(p->Sk, ATTN__TILE_K);
        attn__pool_run(ctx->pool, p->B * p->Hkv * rs.nkb, tiled_dkdv_task, &rs);
        attn__pool_run(ctx->pool, p->B * p->Hq * rs.nqb, tiled_dq_task, &rs);
    }
    if (has_dbias && !rs.write_dbias)
        attn__pool_run(ctx->pool, n[0] * n[1] * n[2], tiled_dbias_task, &rs);
    attn__free(rs.delta);
    attn__free(rs.ws);
    return ATTN_OK;
}

attn_status attn_sdpa_backward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_tensor *o,
                               const attn_tensor *d_o, const attn_tensor *lse,
                               const attn_sdpa_params *params, attn_tensor *dq,
                               attn_tensor *dk, attn_tensor *dv, attn_tensor *dbias)
{
    attn__clear_error();
    attn__sdpa p;
    if (ctx != NULL && q != NULL && k != NULL && v == NULL)
        return attn_fail(ATTN_NULL_ARG, "v is NULL");
    attn_status st = attn__sdpa_prepare(ctx, q, k, v, params, &p);
    if (st != ATTN_OK) return st;
    const attn_tensor *need[] = {o, d_o, lse, dq, dk, dv};
    const char *need_name[] = {"o", "d_o", "lse", "dq", "dk", "dv"};
    for (int x = 0; x < 6; x++)
        if (need[x] == NULL) return attn_fail(ATTN_NULL_ARG, "%s is NULL", need_name[x]);
    const attn_tensor *bias = params ? params->bias : NULL;
    if (dbias != NULL && bias == NULL)
        return attn_fail(ATTN_BAD_PARAM, "dbias is given but params.bias is NULL");
    attn__named views[] = {{q, "q", false}, {k, "k", false}, {v, "v", false},
                           {bias, "params.bias", false},
                           {params ? params->mask : NULL, "params.mask", false},
                           {o, "o", false}, {d_o, "d_o", false}, {lse, "lse", false},
                           {dq, "dq", true}, {dk, "dk", true}, {dv, "dv", true},
                           {dbias, "dbias", true}};
    for (int x = 5; x < 12; x++)
        if (views[x].t != NULL && (st = attn__check_view(&views[x])) != ATTN_OK) return st;
    if ((st = attn__check_shape(&p, o, "o", p.B, p.Sq, p.Hq, p.Dv)) != ATTN_OK ||
        (st = attn__check_shape(&p, d_o, "d_o", p.B, p.Sq, p.Hq, p.Dv)) != ATTN_OK ||
        (st = attn__check_shape(&p, lse, "lse", p.B, p.Hq, p.Sq, 1)) != ATTN_OK ||
        (st = attn__check_shape(&p, dq, "dq", p.B, p.Sq, p.Hq, p.Dk)) != ATTN_OK ||
        (st = attn__check_shape(&p, dk, "dk", p.B, p.Sk, p.Hkv, p.Dk)) != ATTN_OK ||
        (st = attn__check_shape(&p, dv, "dv", p.B, p.Sk, p.Hkv, p.Dv)) != ATTN_OK ||
        (dbias != NULL && (st = attn__check_shape(&p, dbias, "dbias", bias->dim[0], bias->dim[1],
                                                  bias->dim[2], bias->dim[3])) != ATTN_OK))
        return st;
    if ((st = attn__check_overlap(views, 12)) != ATTN_OK) return st;
    p.o = *o;
    p.d_o = *d_o;
    p.lse = *lse;
    p.dq = *dq;
    p.dk = *dk;
    p.dv = *dv;
    if (dbias != NULL) p.dbias = *dbias;
    if (p.B == 0 || p.Hq == 0) return ATTN_OK;
    return use_ref(ctx, &p) ? run_ref_backward(ctx, &p) : run_f32_backward(ctx, &p);
}

/* ---- weights -------------------------------------------------------------- */

static void weights_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa *p = rs->p;
    int64_t r = t % rs->n_rows, hx = t / rs->n_rows % rs->n_heads;
    int64_t b = t / (rs->n_rows * rs->n_heads);
    int64_t h = rs->heads ? rs->heads[hx] : hx, i = rs->rows ? rs->rows[r] : r;
    void *row = worker_ws(rs, tid);
    if (rs->ref) {
        attn__ref_weights_row(p, b, h, i, rs->with_dropout, row);
        for (int64_t j = 0; j < p->Sk; j++)
            attn__st(rs->w, attn__off(rs->w->stride, b, hx, r, j), ((double *)row)[j]);
    } else {
        attn__tiled_weights_row(p, b, h, i, rs->with_dropout, row);
        for (int64_t j = 0; j < p->Sk; j++)
            attn__st(rs->w, attn__off(rs->w->stride, b, hx, r, j), ((float *)row)[j]);
    }
}

static attn_status check_indices(const int64_t *idx, int64_t n, int64_t limit, const char *name)
{
    for (int64_t x = 0; idx != NULL && x < n; x++)
        if (idx[x] < 0 || idx[x] >= limit)
            return attn_fail(ATTN_BAD_PARAM, "%s[%lld] is %lld; it must be in [0, %lld)", name,
                             (long long)x, (long long)idx[x], (long long)limit);
    return ATTN_OK;
}

attn_status attn_sdpa_weights(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *lse, const attn_sdpa_params *params,
                              const int64_t *heads, int64_t n_heads, const int64_t *rows,
                              int64_t n_rows, int with_dropout, attn_tensor *w)
{
    attn__clear_error();
    attn__sdpa p;
    attn_status st = attn__sdpa_prepare(ctx, q, k, NULL, params, &p);
    if (st != ATTN_OK) return st;
    if (lse == NULL) return attn_fail(ATTN_NULL_ARG, "lse is NULL");
    if (w == NULL) return attn_fail(ATTN_NULL_ARG, "w is NULL");
    if (heads == NULL) n_heads = p.Hq;
    if (rows == NULL) n_rows = p.Sq;
    if (n_heads < 0) return attn_fail(ATTN_BAD_DIM, "n_heads is %lld; it must be >= 0", (long long)n_heads);
    if (n_rows < 0) return attn_fail(ATTN_BAD_DIM, "n_rows is %lld; it must be >= 0", (long long)n_rows);
    if ((st = check_indices(heads, n_heads, p.Hq, "heads")) != ATTN_OK ||
        (st = check_indices(rows, n_rows, p.Sq, "rows")) != ATTN_OK)
        return st;
    attn__named views[] = {{q, "q", false}, {k, "k", false}, {lse, "lse", false},
                           {params ? params->bias : NULL, "params.bias", false},
                           {params ? params->mask : NULL, "params.mask", false},
                           {w, "w", true}};
    if ((st = attn__check_view(&views[2])) != ATTN_OK || (st = attn__check_view(&views[5])) != ATTN_OK ||
        (st = attn__check_shape(&p, lse, "lse", p.B, p.Hq, p.Sq, 1)) != ATTN_OK ||
        (st = attn__check_shape(&p, w, "w", p.B, n_heads, n_rows, p.Sk)) != ATTN_OK ||
        (st = attn__check_overlap(views, 6)) != ATTN_OK)
        return st;
    p.lse = *lse;
    if (p.B == 0 || n_heads == 0 || n_rows == 0 || p.Sk == 0) return ATTN_OK;

    run_state rs = {.p = &p, .heads = heads, .rows = rows, .n_heads = n_heads, .n_rows = n_rows,
                    .with_dropout = with_dropout != 0, .w = w, .ref = use_ref(ctx, &p)};
    st = alloc_ws(&rs, ctx, p.Sk, rs.ref ? sizeof(double) : sizeof(float));
    if (st != ATTN_OK) return st;
    attn__pool_run(ctx->pool, p.B * n_heads * n_rows, weights_task, &rs);
    attn__free(rs.ws);
    return ATTN_OK;
}
