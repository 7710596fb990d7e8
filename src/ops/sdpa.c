/* sdpa.c - the scaled-dot-product attention entry points. The arguments
 * are validated once (sdpa_validate.c), which returns the prepared call;
 * this file plans the workspace, splits the work into tasks over the
 * context's thread pool and calls the kernels of the call's table
 * (src/kernels/table.h), those of the call's dtype combination (F32, BF16,
 * F16, or a half K/V under F32 Q). F64 tensors, or a context forced to
 * ATTN_KERNEL_REF, run the double-precision reference instead. A packed
 * variable-length batch treats each sequence as a problem of its own
 * (attn__sdpa_seq), so its work is sum Lq_s * Lk_s; on the table's kernels
 * the tasks of all its sequences go to the pool together, one run per
 * pass (packed_run below), since a batch of many short sequences would
 * otherwise pay a run's start and end once per sequence and pass. */
#include "ops/sdpa_validate.h"

#include <string.h>

/* Number of blocks of `tile` rows in n. */
static int64_t blocks(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* What the tasks of one call share. The workspace holds one slice of
 * ws_bytes per worker. */
typedef struct {
    const attn__sdpa_call *c;
    const attn__sdpa *p;
    const attn__sdpa_kernels *k;
    attn_ctx *ctx;     /* whose buffers the call takes (ctx.h) */
    char *ws;
    size_t ws_bytes;   /* per worker */
    int64_t nqb, nkb;  /* query and key blocks per head */
    int64_t rows;      /* query rows per forward block */
    float *delta;      /* (B, Hq, Sq) rowsum(dO * O), the table's backward */
    int64_t hs, ks;    /* the fused backward's shares of a kv head: of its query heads, of its keys */
    float *dkv_part;   /* hs > 1: per head share, dK [B, Sk, Hkv, Dk] then dV [B, Sk, Hkv, Dv] */
    float *dq_part;    /* ks > 1: per key share, dQ [B, Sq, Hq, Dk] */
    bool fused;        /* a packed sequence's backward: fused (else two passes) */
    bool all_b, all_h; /* a fused task walks every batch, every kv head (a broadcast dbias) */
    float *dbias_sum;  /* a broadcast dbias's float32 sums (its own shape), or NULL */
    float *parts;      /* decode: per (b, kv head, split) partial softmax results */
    double *dbias_acc; /* reference backward */
    bool write_dbias;
    bool heads_inner;  /* forward tasks: every (b, head) of a block, then the next block */
} run_state;

static attn_status alloc_ws(run_state *rs, attn_ctx *ctx, int64_t per, size_t elem)
{
    int64_t n;
    int threads = attn__pool_threads(ctx->pool);
    if (per < 1) per = 1;
    if (!attn__mul(per, (int64_t)elem, &n) || (uint64_t)n > SIZE_MAX / (size_t)threads)
        return attn_fail(ATTN_OVERFLOW, "the kernel workspace size overflows");
    rs->ctx = ctx;
    rs->ws_bytes = (size_t)n;
    rs->ws = attn__ctx_take(ctx, rs->ws_bytes * (size_t)threads, false);
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
    void *p = count > SIZE_MAX / elem ? NULL : attn__ctx_take(rs->ctx, count * elem, zeroed);
    if (p == NULL) {
        attn__ctx_give(rs->ctx, rs->ws);
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

/* The forward's task order. Task t is query block nqb - 1 - t % nqb of
 * (b, head) t / nqb: a head's blocks are handed out last-first (under a
 * causal mask the largest start first, so the workers finish together),
 * one after the other, so that a kv head's key tiles stay in cache from
 * one block to the next. In a narrow band of keys (a sliding window: each
 * block sees a few tiles) the block's own rows weigh as much: in [B, S, H,
 * D] its rows of Q and of O walk a page or so each, which the heads of the
 * row share. There the tasks take every (b, head) of a block before the
 * next block (heads_inner).
 * Measured on AMD EPYC Zen 3 (2 threads, 8 heads x 16K tokens, D 64,
 * [B, S, H, D]): window 256 about 1.1x faster, window 64 1.1x; window 1024
 * and causal no faster or slower, [B, H, S, D] slower: hence the band of
 * at most NARROW_KEYS keys per block, strided rows only. */
enum { NARROW_KEYS = 512 };

static bool heads_inner(const attn__sdpa *p, int64_t rows)
{
    int64_t right = p->causal ? 0 : p->window_right; /* keys right of the aligned diagonal, -1: all */
    bool strided = p->q.stride[1] != p->Dk * p->q.stride[3] || p->o.stride[1] != p->Dv * p->o.stride[3];
    return strided && p->B * p->Hq > 1 && p->window_left >= 0 && right >= 0 && p->window_left <= NARROW_KEYS &&
           right <= NARROW_KEYS && p->window_left + right + rows <= NARROW_KEYS; /* no overflow: each bounded */
}

static void forward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t nbh = rs->p->B * rs->p->Hq;
    int64_t qb = rs->nqb - 1 - (rs->heads_inner ? t / nbh : t % rs->nqb);
    int64_t bh = rs->heads_inner ? t % nbh : t / rs->nqb, i0 = qb * rs->rows;
    rs->k->forward.block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, i0,
                         rs->p->Sq - i0 < rs->rows ? rs->p->Sq - i0 : rs->rows, worker_ws(rs, tid));
}

/* Query rows per forward block: the kernel's tile, or under a block mask
 * a count <= tile that is a multiple or a divisor of block_q (if one is at
 * least half the tile; else the tile, and blocks straddle), so that no
 * block straddles two block rows of the mask: block rows of ONE_ROW or
 * more rows are a block each (a block meets only that row's listed key
 * blocks, and a FULL block stays FULL for it), shorter ones as many whole
 * as the tile holds, taller ones the largest divisor. */
enum { ONE_ROW = 64 };

static int64_t forward_rows(int64_t tile, const attn__sdpa *p)
{
    if (p->bm == NULL) return tile;
    int64_t bq = p->bm->shape.block_q;
    if (bq <= tile) return bq >= ONE_ROW ? bq : tile / bq * bq; /* else > tile / 2 */
    for (int64_t d = tile; 2 * d >= tile; d--)
        if (bq % d == 0) return d;
    return tile;
}

/* Task (b, split) takes every kv head of its keys: in the [B, S, H, D]
 * layout the heads of one key share its page. The kernel that walks the
 * heads together (decode.heads) reads the cache in its own order; else
 * one head after the other. */
static void decode_split_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa *p = rs->p;
    int64_t s = t % rs->nkb, b = t / rs->nkb, partial = attn__decode_partial(p);
    if (rs->k->decode.heads != NULL &&
        rs->k->decode.heads(p, b, s, rs->k->decode.split, rs->parts + (b * p->Hkv * rs->nkb + s) * partial,
                            rs->nkb * partial, worker_ws(rs, tid)))
        return;
    for (int64_t hkv = 0; hkv < p->Hkv; hkv++)
        rs->k->decode.split_fn(p, b, hkv, s, rs->k->decode.split,
                               rs->parts + ((b * p->Hkv + hkv) * rs->nkb + s) * attn__decode_partial(p),
                               worker_ws(rs, tid));
}

static void decode_merge_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)tid;
    rs->k->decode.merge(rs->p, t / rs->p->Hkv, t % rs->p->Hkv, rs->nkb,
                        rs->parts + t * rs->nkb * attn__decode_partial(rs->p));
}

/* Few query rows per kv head against many keys: split the keys. */
static bool use_decode(const attn__sdpa_kernels *k, const attn__sdpa *p)
{
    return attn__decode_rows(p) <= k->decode.max_rows && p->Sk >= 2 * k->decode.split;
}

static attn_status run_decode(attn_ctx *ctx, run_state *rs)
{
    const attn__sdpa *p = rs->p;
    rs->nkb = blocks(p->Sk, rs->k->decode.split);
    int64_t n_parts;
    if (!attn__mul(p->B * p->Hkv * rs->nkb, attn__decode_partial(p), &n_parts))
        return attn_fail(ATTN_OVERFLOW, "the decode partial results overflow");
    attn_status st = alloc_ws(rs, ctx, rs->k->decode.ws(p), sizeof(float));
    if (st != ATTN_OK) return st;
    if ((rs->parts = alloc_extra(rs, n_parts, sizeof(float), false, "the decode partials", &st)) == NULL)
        return st;
    attn__pool_run(ctx->pool, p->B * rs->nkb, decode_split_task, rs);
    attn__pool_run(ctx->pool, p->B * p->Hkv, decode_merge_task, rs);
    attn__ctx_give(ctx, rs->parts);
    attn__ctx_give(ctx, rs->ws);
    return ATTN_OK;
}

/* Inputs converted once per call into a kernel's own layouts
 * (attn__k_forward.pack, attn__k_bwd_pack): a record of `bytes` per (b,
 * head, block), written by fn, at index (b * heads + head) * nblk + blk.
 * A task writes the records of one (b, block) for every head when there
 * are enough such tasks: in [B, S, H, D] the heads of a row share its
 * pages, so each page is walked once rather than once per head (measured
 * on the window-256 forward at 16K tokens, 8 heads, AMD EPYC Zen 3: its
 * packing from 12-14 ms to 8 ms; on a virtual machine each missed page
 * costs a nested page walk). Otherwise task t writes record t. */
typedef void (*record_fn)(const attn__sdpa *p, int64_t b, int64_t head, int64_t blk, void *dst);

typedef struct {
    const attn__sdpa *p;
    record_fn fn;
    char *dst;
    int64_t heads, nblk, bytes;
    bool all_heads; /* a task per (b, block), else per record */
} pack_state;

/* Heads whose records one task writes: all, or one. */
static int64_t task_heads(const pack_state *ps) { return ps->all_heads ? ps->heads : 1; }

static void pack_task(void *arg, int64_t t, int tid)
{
    const pack_state *ps = arg;
    int64_t hn = task_heads(ps), per_b = ps->nblk * (ps->heads / hn); /* tasks per batch entry */
    int64_t b = t / per_b, h0 = t % per_b / ps->nblk * hn, blk = t % ps->nblk;
    (void)tid;
    for (int64_t h = h0; h < h0 + hn; h++)
        ps->fn(ps->p, b, h, blk, ps->dst + ((b * ps->heads + h) * ps->nblk + blk) * ps->bytes);
}

/* *out = the records of every (b < B, head < heads, block < nblk), or
 * NULL when there are none. */
static attn_status make_records(attn_ctx *ctx, const attn__sdpa *p, record_fn fn, int64_t heads, int64_t nblk,
                                int64_t bytes, const char *what, void **out)
{
    pack_state ps = {.p = p, .fn = fn, .heads = heads, .nblk = nblk, .bytes = bytes};
    int64_t tasks, total;
    *out = NULL;
    if (!attn__mul(p->B * heads, nblk, &tasks) || !attn__mul(tasks, bytes, &total))
        return attn_fail(ATTN_OVERFLOW, "the size of %s overflows", what);
    if (total == 0) return ATTN_OK;
    if ((ps.dst = attn__ctx_take(ctx, (size_t)total, false)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate %lld bytes for %s", (long long)total, what);
    /* enough (b, block) tasks to keep every thread busy to the end */
    ps.all_heads = heads > 1 && p->B * nblk >= 8 * (int64_t)attn__pool_threads(ctx->pool);
    attn__pool_run(ctx->pool, tasks / task_heads(&ps), pack_task, &ps);
    *out = ps.dst;
    return ATTN_OK;
}

static attn_status run_forward(attn_ctx *ctx, const attn__sdpa_call *c, const attn__sdpa *p)
{
    attn_status st;
    run_state rs = {.c = c, .p = p, .k = c->k};
    if (c->k == NULL) {
        if ((st = alloc_ws(&rs, ctx, attn__ref_forward_ws(p), sizeof(double))) != ATTN_OK) return st;
        attn__pool_run(ctx->pool, p->B * p->Hq, ref_forward_task, &rs);
    } else if (use_decode(c->k, p)) {
        return run_decode(ctx, &rs);
    } else {
        attn__sdpa pk;
        void *packed;
        if ((st = alloc_ws(&rs, ctx, c->k->forward.ws(p), sizeof(float))) != ATTN_OK) return st;
        rs.rows = forward_rows(c->k->forward.tile_q, p);
        rs.nqb = blocks(p->Sq, rs.rows);
        rs.heads_inner = heads_inner(p, rs.rows);
        const attn__k_forward *f = &c->k->forward;
        pk = *p;
        packed = NULL;
        /* K and V meet more than one query block (and, for float32 records,
         * the blocks would otherwise walk a page per key of [B, S, H, D]) */
        bool strided = p->k.stride[1] != p->Dk * p->k.stride[3] || p->v.stride[1] != p->Dv * p->v.stride[3];
        if (f->pack != NULL && rs.nqb * p->group >= 2 && (strided || !f->pack_strided_only)) {
            st = make_records(ctx, p, f->pack, p->Hkv, blocks(p->Sk, f->pack_tile), f->pack_bytes(p),
                              "the packed K and V", &packed);
            if (st != ATTN_OK) {
                attn__ctx_give(ctx, rs.ws);
                return st;
            }
            pk.kv_packed = packed;
        }
        rs.p = &pk;
        attn__pool_run(ctx->pool, p->B * p->Hq * rs.nqb, forward_task, &rs);
        attn__ctx_give(ctx, packed);
    }
    attn__ctx_give(ctx, rs.ws);
    return ATTN_OK;
}

/* A packed batch's forward on the table's kernels (below, with the backward's passes). */
static attn_status packed_forward(attn_ctx *ctx, const attn__sdpa_call *c, bool *done);

attn_status attn_sdpa_forward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *v, const attn_sdpa_params *params,
                              attn_tensor *o, attn_tensor *lse)
{
    attn__clear_error();
    attn__sdpa_call c;
    attn_status st = attn__sdpa_validate_forward(ctx, q, k, v, params, o, lse, &c);
    if (st != ATTN_OK || c.empty) return st;
    if (c.n_seqs == 0) return run_forward(ctx, &c, &c.p);
    if (c.k != NULL) {
        bool done;
        if ((st = packed_forward(ctx, &c, &done)) != ATTN_OK || done) return st;
    }
    for (int64_t s = 0; s < c.n_seqs && st == ATTN_OK; s++) {
        attn__sdpa ps = attn__sdpa_seq(&c, s);
        if (ps.Sq > 0) st = run_forward(ctx, &c, &ps);
    }
    return st;
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

static attn_status run_ref_backward(attn_ctx *ctx, run_state *rs)
{
    const attn__sdpa *p = rs->p;
    attn_status st = alloc_ws(rs, ctx, attn__ref_backward_ws(p), sizeof(double));
    if (st != ATTN_OK) return st;
    if (p->dbias.data == NULL) {
        attn__pool_run(ctx->pool, p->B * p->Hkv, ref_backward_task, rs);
        attn__ctx_give(ctx, rs->ws);
        return ATTN_OK;
    }
    const int64_t *n = p->dbias.dim;
    int64_t count = n[0] * n[1] * n[2] * n[3];
    if ((rs->dbias_acc = alloc_extra(rs, count, sizeof(double), true, "the bias-gradient accumulator", &st)) ==
        NULL)
        return st;
    attn__pool_run(ctx->pool, 1, ref_backward_all, rs);
    for (int64_t x = 0; x < count; x++) {
        int64_t j = x % n[3], i = x / n[3] % n[2], h = x / (n[3] * n[2]) % n[1];
        int64_t b = x / (n[3] * n[2] * n[1]);
        attn__st(&p->dbias, attn__off(p->dbias.stride, b, h, i, j), rs->dbias_acc[x]);
    }
    attn__ctx_give(ctx, rs->dbias_acc);
    attn__ctx_give(ctx, rs->ws);
    return ATTN_OK;
}

static void delta_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)tid;
    int64_t qb = t % rs->nqb, bh = t / rs->nqb;
    rs->k->delta.block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb, rs->delta + bh * rs->p->Sq);
}

static void dkdv_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t kb = t % rs->nkb, bh = t / rs->nkb;
    rs->k->dkdv.block(rs->p, bh / rs->p->Hkv, bh % rs->p->Hkv, kb, rs->delta, worker_ws(rs, tid));
}

/* Query blocks last-first, as in the forward. */
static void dq_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t qb = rs->nqb - 1 - t % rs->nqb, bh = t / rs->nqb;
    rs->k->dq.block(rs->p, bh / rs->p->Hq, bh % rs->p->Hq, qb, rs->delta, rs->write_dbias,
                    worker_ws(rs, tid));
}

/* Task t: share (g, c) (of query heads g, of key tiles c) of unit u, the
 * kv head (b, hkv), or with a broadcast bias gradient the kv heads whose
 * dS add into the same elements of it (every batch when it broadcasts
 * over batches, every kv head when over heads), walked in order; the
 * share's sums into the partials when it has only a part (run_state.hs,
 * ks > 1). */
static void fused_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa *p = rs->p;
    int64_t c = t % rs->ks, g = t / rs->ks % rs->hs, u = t / (rs->ks * rs->hs), nkt = blocks(p->Sk, rs->k->dkdv.tile_k);
    int64_t uh = rs->all_h ? 1 : p->Hkv, b0 = rs->all_b ? 0 : u / uh, b1 = rs->all_b ? p->B : b0 + 1;
    int64_t h0 = rs->all_h ? 0 : u % uh, h1 = rs->all_h ? p->Hkv : h0 + 1, gs = p->group / rs->hs;
    attn__fused_part part = {0, 0, c * nkt / rs->ks, (c + 1) * nkt / rs->ks, rs->write_dbias, rs->dbias_sum, {0, 0, 0, 0}};
    if (rs->dbias_sum != NULL) {
        const int64_t *n = p->dbias.dim;
        part.acc_stride[3] = n[3] == 1 ? 0 : 1;
        part.acc_stride[2] = n[2] == 1 ? 0 : n[3];
        part.acc_stride[1] = n[1] == 1 ? 0 : n[2] * n[3];
        part.acc_stride[0] = n[0] == 1 ? 0 : n[1] * n[2] * n[3];
    }
    attn__sdpa ps = *p;
    if (rs->hs > 1) {
        float *dk = rs->dkv_part + g * p->B * p->Sk * p->Hkv * (p->Dk + p->Dv);
        ps.dk = attn_tensor_make(dk, ATTN_DTYPE_F32, p->B, p->Sk, p->Hkv, p->Dk);
        ps.dv = attn_tensor_make(dk + p->B * p->Sk * p->Hkv * p->Dk, ATTN_DTYPE_F32, p->B, p->Sk, p->Hkv, p->Dv);
    }
    if (rs->ks > 1)
        ps.dq = attn_tensor_make(rs->dq_part + c * p->B * p->Sq * p->Hq * p->Dk, ATTN_DTYPE_F32, p->B, p->Sq, p->Hq,
                                 p->Dk);
    for (int64_t b = b0; b < b1; b++)
        for (int64_t hkv = h0; hkv < h1; hkv++) {
            part.h0 = hkv * p->group + g * gs;
            part.h1 = part.h0 + gs;
            rs->k->fused.kvhead(&ps, b, hkv, &part, rs->delta, worker_ws(rs, tid));
        }
}

/* Rows per task of the passes that add up partial sums (below). */
enum { MERGE_ROWS = 64 };

/* Rows [t, t + 1) * MERGE_ROWS of a broadcast bias gradient's sums (rows
 * of its last dim), rounded into dbias. */
static void dbias_store_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const int64_t *n = rs->p->dbias.dim;
    (void)tid;
    for (int64_t r = t * MERGE_ROWS; r < (t + 1) * MERGE_ROWS && r < n[0] * n[1] * n[2]; r++)
        for (int64_t j = 0; j < n[3]; j++)
            attn__stf(&rs->p->dbias, attn__off(rs->p->dbias.stride, r / (n[1] * n[2]), r / n[2] % n[1], r % n[2], j),
                      rs->dbias_sum[r * n[3] + j]);
}

/* Rows [r0, r0 + MERGE_ROWS) of out [B, S, H, D] = the sum, in share
 * order, of n partials [B, S, H, D] (float32, contiguous) step floats
 * apart: dK and dV from the head shares, dQ from the key shares. */

static void merge_rows(const attn_tensor *out, int64_t B, int64_t S, int64_t H, int64_t D, const float *part,
                       int64_t n, int64_t step, int64_t r0)
{
    for (int64_t r = r0; r < r0 + MERGE_ROWS && r < B * S; r++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t x = 0; x < D; x++) {
                int64_t e = (r * H + h) * D + x;
                float sum = part[e];
                for (int64_t s = 1; s < n; s++) sum += part[s * step + e];
                attn__stf(out, attn__off(out->stride, r / S, r % S, h, x), sum);
            }
}

static void merge_dkv_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa *p = rs->p;
    int64_t nk = p->B * p->Sk * p->Hkv * p->Dk, step = nk + p->B * p->Sk * p->Hkv * p->Dv;
    (void)tid;
    merge_rows(&p->dk, p->B, p->Sk, p->Hkv, p->Dk, rs->dkv_part, rs->hs, step, t * MERGE_ROWS);
    merge_rows(&p->dv, p->B, p->Sk, p->Hkv, p->Dv, rs->dkv_part + nk, rs->hs, step, t * MERGE_ROWS);
}

static void merge_dq_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa *p = rs->p;
    (void)tid;
    merge_rows(&p->dq, p->B, p->Sq, p->Hq, p->Dk, rs->dq_part, rs->ks, p->B * p->Sq * p->Hq * p->Dk,
               t * MERGE_ROWS);
}

/* The fused backward needs enough tasks to keep the workers busy: with
 * fewer than min_kv_heads units (kv heads in the batch), each is split
 * into hs shares of its query heads (the smallest divisor of the group
 * that is enough, else the whole group) and then, if still too few, ks
 * shares of its key tiles (of at least 2 tiles each), whose partial sums
 * are added after in a fixed order; false (the two-pass backward) if that
 * still gives too few. A broadcast bias gradient (bcast: its dims, else
 * NULL) adds the dS of every batch (every kv head, every key) into the
 * same elements when it broadcasts over batches (heads, keys): those
 * must be one task, so a unit is then all the batches (all the kv heads)
 * and there are no head (key) shares; it is fused whatever the count,
 * since the other way, the two passes and a pass per dbias row, is an
 * order of magnitude slower. Decided by the shape alone, never by the
 * thread count, so results stay bitwise identical across thread counts. */
static bool plan_fused(const attn__sdpa_kernels *k, const attn__sdpa *p, const int64_t *bcast, int64_t *hs,
                       int64_t *ks)
{
    bool all_b = bcast != NULL && bcast[0] == 1, all_h = bcast != NULL && bcast[1] == 1;
    int64_t units = (all_b ? 1 : p->B) * (all_h ? 1 : p->Hkv), min = k->fused.min_kv_heads;
    int64_t half_tiles = bcast != NULL && bcast[3] == 1 ? 0 : blocks(p->Sk, k->dkdv.tile_k) / 2;
    *hs = *ks = 1;
    if (units >= min) return true;
    int64_t need = (min + units - 1) / units;
    *hs = all_h ? 1 : p->group;
    for (int64_t d = need; d < *hs; d++)
        if (p->group % d == 0) {
            *hs = d;
            break;
        }
    *ks = (need + *hs - 1) / *hs;
    if (*ks > half_tiles) *ks = half_tiles > 1 ? half_tiles : 1;
    return units * *hs * *ks >= min || bcast != NULL;
}

/* The floats of partial dK, dV (*dkv) and of partial dQ (*dq) that a
 * fused backward of p split into hs head shares and ks key shares needs;
 * false if a size overflows. */
static bool part_sizes(const attn__sdpa *p, int64_t hs, int64_t ks, int64_t *dkv, int64_t *dq)
{
    *dkv = *dq = 0;
    return (hs <= 1 || (attn__mul(p->B * p->Sk * p->Hkv, p->Dk + p->Dv, dkv) && attn__mul(*dkv, hs, dkv))) &&
           (ks <= 1 || (attn__mul(p->B * p->Sq * p->Hq, p->Dk, dq) && attn__mul(*dq, ks, dq)));
}

/* The float32 partial sums of the fused backward's shares (rs->hs, ks >
 * 1): dK and dV per head share, dQ per key share. */
static attn_status alloc_parts(run_state *rs)
{
    int64_t dkv, dq;
    if (!part_sizes(rs->p, rs->hs, rs->ks, &dkv, &dq))
        return attn_fail(ATTN_OVERFLOW, "the size of the partial dQ, dK and dV overflows");
    if (dkv > 0 && (rs->dkv_part = attn__ctx_take(rs->ctx, (size_t)dkv * sizeof(float), false)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate %lld floats for the partial dK and dV", (long long)dkv);
    if (dq > 0 && (rs->dq_part = attn__ctx_take(rs->ctx, (size_t)dq * sizeof(float), false)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate %lld floats for the partial dQ", (long long)dq);
    return ATTN_OK;
}

/* The table's backward (float32 math): rowsum(dO * O), then either the
 * fused pass per share of a kv head (plan_fused; the shares' partial sums
 * and a broadcast bias gradient's sums added after) or, without a bias
 * gradient or with a full-shape one only, dK/dV per key block and dQ (and
 * that dbias) per query block; each pass owns its outputs, so nothing
 * depends on the thread count. */
static attn_status run_table_backward(attn_ctx *ctx, run_state *rs)
{
    const attn__sdpa *p = rs->p;
    const attn__sdpa_kernels *k = rs->k;
    const int64_t *n = p->dbias.dim;
    bool has_dbias = p->dbias.data != NULL;
    rs->write_dbias = has_dbias && n[0] == p->B && n[1] == p->Hq && n[2] == p->Sq && n[3] == p->Sk;
    bool bcast = has_dbias && !rs->write_dbias, fused = plan_fused(k, p, bcast ? n : NULL, &rs->hs, &rs->ks);
    rs->all_b = bcast && n[0] == 1;
    rs->all_h = bcast && n[1] == 1;
    int64_t n_delta, per = fused ? k->fused.ws(p) : max64(k->dkdv.ws(p), k->dq.ws(p));
    if (!attn__mul(p->B * p->Hq, p->Sq > 0 ? p->Sq : 1, &n_delta))
        return attn_fail(ATTN_OVERFLOW, "B * Hq * Sq overflows");
    attn_status st = alloc_ws(rs, ctx, per, sizeof(float));
    if (st != ATTN_OK) return st;
    if ((rs->delta = alloc_extra(rs, n_delta, sizeof(float), false, "rowsum(dO * O)", &st)) == NULL)
        return st;
    if (fused && bcast &&
        (rs->dbias_sum = attn__ctx_take(ctx, (size_t)(n[0] * n[1] * n[2] * n[3]) * sizeof(float), true)) == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "cannot allocate %lld floats for the bias gradient's sums",
                       (long long)(n[0] * n[1] * n[2] * n[3]));
    rs->nqb = blocks(p->Sq, k->delta.tile_q);
    attn__pool_run(ctx->pool, p->B * p->Hq * rs->nqb, delta_task, rs);
    /* The kernels' own layouts of Q and dO (for the dK/dV blocks, when a
     * query block meets more than one key tile) and of K and V (for the dQ
     * blocks, when a key tile meets more than one query block). */
    attn__sdpa pk = *p;
    void *qrec = NULL, *kvrec = NULL;
    const attn__k_bwd_pack *bp = &k->bwd_pack;
    int64_t nkt = blocks(p->Sk, k->dkdv.tile_k), nqt = blocks(p->Sq, k->dq.tile_q);
    if (st == ATTN_OK && fused) st = alloc_parts(rs);
    if (st == ATTN_OK && bp->q != NULL && nkt >= 2)
        st = make_records(ctx, p, bp->q, p->Hq, nqt, bp->q_bytes(p), "the packed Q and dO", &qrec);
    if (st == ATTN_OK && bp->kv != NULL && !fused && nqt * p->group >= 2)
        st = make_records(ctx, p, bp->kv, p->Hkv, nkt, bp->kv_bytes(p), "the packed K and V", &kvrec);
    if (st == ATTN_OK) {
        pk.bwd_q_packed = qrec;
        pk.bwd_kv_packed = kvrec;
        rs->p = &pk;
        if (fused) {
            int64_t units = (rs->all_b ? 1 : p->B) * (rs->all_h ? 1 : p->Hkv);
            attn__pool_run(ctx->pool, units * rs->hs * rs->ks, fused_task, rs);
            if (rs->hs > 1) attn__pool_run(ctx->pool, blocks(p->B * p->Sk, MERGE_ROWS), merge_dkv_task, rs);
            if (rs->ks > 1) attn__pool_run(ctx->pool, blocks(p->B * p->Sq, MERGE_ROWS), merge_dq_task, rs);
            if (rs->dbias_sum != NULL)
                attn__pool_run(ctx->pool, blocks(n[0] * n[1] * n[2], MERGE_ROWS), dbias_store_task, rs);
        } else {
            rs->nkb = blocks(p->Sk, k->dkdv.tile_k);
            attn__pool_run(ctx->pool, p->B * p->Hkv * rs->nkb, dkdv_task, rs);
            rs->nqb = blocks(p->Sq, k->dq.tile_q);
            attn__pool_run(ctx->pool, p->B * p->Hq * rs->nqb, dq_task, rs);
        }
        rs->p = p;
    }
    attn__ctx_give(ctx, qrec);
    attn__ctx_give(ctx, kvrec);
    attn__ctx_give(ctx, rs->dkv_part);
    attn__ctx_give(ctx, rs->dq_part);
    attn__ctx_give(ctx, rs->dbias_sum);
    attn__ctx_give(ctx, rs->delta);
    attn__ctx_give(ctx, rs->ws);
    return st;
}

/* ---- packed batches: one pool run per pass over every sequence --------------- */

/* The last s < n with a[s] <= t, for a non-decreasing a with a[0] <= t. */
static int64_t last_at_most(const int64_t *a, int64_t n, int64_t t)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (a[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The passes of the table's kernels, each a per-sequence task of this file. */
typedef enum {
    PASS_FORWARD,
    PASS_DELTA,
    PASS_FUSED,
    PASS_DKDV,
    PASS_DQ,
    PASS_MERGE_DKV,
    PASS_MERGE_DQ
} pass_kind;

typedef struct {
    const attn__sdpa_call *c;
    attn_ctx *ctx;
    char *ws;
    size_t ws_bytes;
    float *delta;   /* [Hq, Tq]: sequence s's rows from Hq * cu_q[s] */
    int64_t *start; /* [n_seqs + 1]: the first task of each sequence in the pass */
    float *parts;   /* the fused shares' partial sums of every sequence */
    int64_t *part_at; /* [2 * n_seqs]: where sequence s's partial dK, dV and partial dQ start in parts */
    pass_kind pass;
} packed_state;

/* Sequence s's run_state for the pass: its problem (in *ps), the shared
 * workspace, its delta rows and block counts, and for the backward its
 * plan (fused or not, its shares) and partial sums. */
static run_state seq_state(const packed_state *st, int64_t s, attn__sdpa *ps)
{
    const attn__sdpa_call *c = st->c;
    const attn__sdpa_kernels *k = c->k;
    *ps = attn__sdpa_seq(c, s);
    run_state rs = {.c = c, .p = ps, .k = k, .ws = st->ws, .ws_bytes = st->ws_bytes, .hs = 1, .ks = 1};
    rs.delta = st->delta ? st->delta + ps->Hq * c->cu_q[s] : NULL;
    int64_t tile_q = st->pass == PASS_FORWARD ? forward_rows(k->forward.tile_q, ps)
                     : st->pass == PASS_DELTA ? k->delta.tile_q : k->dq.tile_q;
    rs.rows = tile_q;
    rs.nqb = blocks(ps->Sq, tile_q);
    rs.nkb = blocks(ps->Sk, k->dkdv.tile_k);
    if (st->pass != PASS_FORWARD && st->pass != PASS_DELTA) {
        rs.fused = plan_fused(k, ps, NULL, &rs.hs, &rs.ks);
        if (st->parts != NULL) {
            rs.dkv_part = st->parts + st->part_at[2 * s];
            rs.dq_part = st->parts + st->part_at[2 * s + 1];
        }
    }
    return rs;
}

/* The tasks of sequence s in the pass: those its own run would have. */
static int64_t seq_tasks(const packed_state *st, int64_t s)
{
    attn__sdpa ps;
    run_state rs = seq_state(st, s, &ps);
    switch (st->pass) {
    case PASS_FORWARD: return ps.Sq > 0 ? ps.Hq * rs.nqb : 0;
    case PASS_DELTA: return ps.Hq * rs.nqb;
    case PASS_DQ: return rs.fused ? 0 : ps.Hq * rs.nqb;
    case PASS_FUSED: return rs.fused ? ps.Hkv * rs.hs * rs.ks : 0;
    case PASS_DKDV: return rs.fused ? 0 : ps.Hkv * rs.nkb;
    case PASS_MERGE_DKV: return rs.fused && rs.hs > 1 ? blocks(ps.Sk, MERGE_ROWS) : 0;
    default: return rs.fused && rs.ks > 1 ? blocks(ps.Sq, MERGE_ROWS) : 0;
    }
}

static void packed_task(void *arg, int64_t t, int tid)
{
    const packed_state *st = arg;
    int64_t lo = last_at_most(st->start, st->c->n_seqs, t);
    attn__sdpa ps;
    run_state rs = seq_state(st, lo, &ps);
    static const attn__task_fn fns[] = {forward_task, delta_task,     fused_task,   dkdv_task,
                                        dq_task,      merge_dkv_task, merge_dq_task};
    fns[st->pass](&rs, t - st->start[lo], tid);
}

/* One pool run of pass over every sequence. */
static void packed_pass(attn_ctx *ctx, packed_state *st, pass_kind pass)
{
    st->pass = pass;
    st->start[0] = 0;
    for (int64_t s = 0; s < st->c->n_seqs; s++) st->start[s + 1] = st->start[s] + seq_tasks(st, s);
    attn__pool_run(ctx->pool, st->start[st->c->n_seqs], packed_task, st);
}

/* The largest per-worker workspace (floats) any sequence needs in the
 * given passes, and whether any sequence would take the decode path (its
 * split of the keys is not a pass here: the caller then runs the
 * sequences one by one). */
static int64_t packed_ws(const attn__sdpa_call *c, bool backward, bool *decode)
{
    const attn__sdpa_kernels *k = c->k;
    int64_t per = 1;
    *decode = false;
    for (int64_t s = 0; s < c->n_seqs; s++) {
        attn__sdpa ps = attn__sdpa_seq(c, s);
        if (!backward) {
            *decode |= ps.Sq > 0 && use_decode(k, &ps);
            per = max64(per, k->forward.ws(&ps));
        } else {
            int64_t hs, ks;
            per = max64(per, plan_fused(k, &ps, NULL, &hs, &ks) ? k->fused.ws(&ps) : max64(k->dkdv.ws(&ps), k->dq.ws(&ps)));
        }
    }
    return per;
}

static attn_status packed_begin(attn_ctx *ctx, const attn__sdpa_call *c, int64_t per, packed_state *st)
{
    memset(st, 0, sizeof *st);
    st->c = c;
    st->ctx = ctx;
    run_state rs = {.c = c};
    attn_status err = alloc_ws(&rs, ctx, per, sizeof(float));
    if (err != ATTN_OK) return err;
    st->ws = rs.ws;
    st->ws_bytes = rs.ws_bytes;
    if ((st->start = alloc_extra(&rs, c->n_seqs + 1, sizeof(int64_t), false, "the packed task table",
                                 &err)) == NULL)
        return err;
    return ATTN_OK;
}

static void packed_end(packed_state *st)
{
    attn__ctx_give(st->ctx, st->ws);
    attn__ctx_give(st->ctx, st->start);
    attn__ctx_give(st->ctx, st->delta);
    attn__ctx_give(st->ctx, st->parts);
    attn__ctx_give(st->ctx, st->part_at);
}

/* The forward of a packed batch on the table's kernels: one run. *done is
 * false (and nothing computed) when a sequence needs the decode path. */
static attn_status packed_forward(attn_ctx *ctx, const attn__sdpa_call *c, bool *done)
{
    bool decode;
    int64_t per = packed_ws(c, false, &decode);
    *done = false;
    if (decode) return ATTN_OK;
    packed_state st;
    attn_status err = packed_begin(ctx, c, per, &st);
    if (err != ATTN_OK) return err;
    packed_pass(ctx, &st, PASS_FORWARD);
    packed_end(&st);
    *done = true;
    return ATTN_OK;
}

/* The fused shares' partial sums of every sequence of a packed batch,
 * one after another (st->parts, st->part_at); none if no sequence has
 * shares. */
static attn_status packed_parts(packed_state *st)
{
    const attn__sdpa_call *c = st->c;
    int64_t total = 0;
    if ((st->part_at = attn__ctx_take(st->ctx, (size_t)c->n_seqs * 2 * sizeof(int64_t), false)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate the packed partial-sum table");
    for (int64_t s = 0; s < c->n_seqs; s++) {
        attn__sdpa ps = attn__sdpa_seq(c, s);
        int64_t hs, ks, dkv = 0, dq = 0;
        if (plan_fused(c->k, &ps, NULL, &hs, &ks) && !part_sizes(&ps, hs, ks, &dkv, &dq))
            return attn_fail(ATTN_OVERFLOW, "the size of the packed partial sums overflows");
        st->part_at[2 * s] = total;
        st->part_at[2 * s + 1] = total + dkv;
        total += dkv + dq; /* each at most ATTN__MAX_ELEMS: no int64 overflow */
        if (total > ATTN__MAX_ELEMS)
            return attn_fail(ATTN_OVERFLOW, "the size of the packed partial sums overflows");
    }
    if (total > 0 && (st->parts = attn__ctx_take(st->ctx, (size_t)total * sizeof(float), false)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "cannot allocate %lld floats for the partial dQ, dK and dV",
                         (long long)total);
    return ATTN_OK;
}

/* The backward of a packed batch on the table's kernels: rowsum(dO * O),
 * then each sequence's fused shares or its dK/dV and dQ passes, then the
 * shares' sums, each pass one run over every sequence (the passes and
 * their order those of run_table_backward per sequence; packed batches
 * have no bias, so no bias gradient). */
static attn_status packed_backward(attn_ctx *ctx, const attn__sdpa_call *c)
{
    bool decode;
    int64_t n_delta, per = packed_ws(c, true, &decode);
    if (!attn__mul(c->p.Hq, c->p.Sq > 0 ? c->p.Sq : 1, &n_delta))
        return attn_fail(ATTN_OVERFLOW, "Hq * Sq overflows");
    packed_state st;
    attn_status err = packed_begin(ctx, c, per, &st);
    if (err != ATTN_OK) return err;
    run_state rs = {.c = c, .ctx = ctx, .ws = st.ws};
    if ((st.delta = alloc_extra(&rs, n_delta, sizeof(float), false, "rowsum(dO * O)", &err)) == NULL) {
        attn__ctx_give(ctx, st.start);
        return err;
    }
    if ((err = packed_parts(&st)) == ATTN_OK) {
        static const pass_kind passes[] = {PASS_DELTA, PASS_FUSED,     PASS_DKDV,
                                           PASS_DQ,    PASS_MERGE_DKV, PASS_MERGE_DQ};
        for (size_t x = 0; x < sizeof passes / sizeof passes[0]; x++) packed_pass(ctx, &st, passes[x]);
    }
    packed_end(&st);
    return err;
}

attn_status attn_sdpa_backward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_tensor *o,
                               const attn_tensor *d_o, const attn_tensor *lse,
                               const attn_sdpa_params *params, attn_tensor *dq,
                               attn_tensor *dk, attn_tensor *dv, attn_tensor *dbias)
{
    attn__clear_error();
    attn__sdpa_call c;
    attn_status st = attn__sdpa_validate_backward(ctx, q, k, v, o, d_o, lse, params, dq, dk, dv, dbias, &c);
    if (st != ATTN_OK || c.empty) return st;
    if (c.n_seqs > 0 && c.k != NULL) return packed_backward(ctx, &c);
    /* every sequence runs, an empty one too: its dK, dV are written as 0 */
    for (int64_t s = 0; s < (c.n_seqs > 0 ? c.n_seqs : 1) && st == ATTN_OK; s++) {
        attn__sdpa ps = c.n_seqs > 0 ? attn__sdpa_seq(&c, s) : c.p;
        run_state rs = {.c = &c, .p = &ps, .k = c.k};
        st = c.k == NULL ? run_ref_backward(ctx, &rs) : run_table_backward(ctx, &rs);
    }
    return st;
}

/* ---- weights -------------------------------------------------------------- */

/* The sequence of packed query i: the last s with cu_q[s] <= i (empty
 * sequences hold no query). */
static int64_t seq_of(const attn__sdpa_call *c, int64_t i)
{
    return last_at_most(c->cu_q, c->n_seqs, i);
}

static void weights_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    const attn__sdpa_call *c = rs->c;
    const attn__sdpa *p = rs->p;
    int64_t r = t % c->n_rows, hx = t / c->n_rows % c->n_heads;
    int64_t b = t / (c->n_rows * c->n_heads);
    int64_t h = c->heads ? c->heads[hx] : hx, i = c->rows ? c->rows[r] : r, j0 = 0;
    void *row = worker_ws(rs, tid);
    attn__sdpa ps;
    if (c->n_seqs > 0) { /* the row's sequence, as a problem of its own; 0 outside it */
        int64_t s = seq_of(c, i);
        ps = attn__sdpa_seq(c, s);
        p = &ps;
        i -= c->cu_q[s];
        j0 = c->cu_k[s];
        for (int64_t j = 0; j < rs->p->Sk; j++) attn__st(&c->w, attn__off(c->w.stride, b, hx, r, j), 0.0);
    }
    if (rs->k == NULL) {
        attn__ref_weights_row(p, b, h, i, c->with_dropout, row);
        for (int64_t j = 0; j < p->Sk; j++)
            attn__st(&c->w, attn__off(c->w.stride, b, hx, r, j0 + j), ((double *)row)[j]);
    } else {
        rs->k->weights.row(p, b, h, i, c->with_dropout, row);
        for (int64_t j = 0; j < p->Sk; j++)
            attn__st(&c->w, attn__off(c->w.stride, b, hx, r, j0 + j), ((float *)row)[j]);
    }
}

attn_status attn_sdpa_weights(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *lse, const attn_sdpa_params *params,
                              const int64_t *heads, int64_t n_heads, const int64_t *rows,
                              int64_t n_rows, int with_dropout, attn_tensor *w)
{
    attn__clear_error();
    attn__sdpa_call c;
    attn_status st = attn__sdpa_validate_weights(ctx, q, k, lse, params, heads, n_heads, rows, n_rows,
                                                 with_dropout, w, &c);
    if (st != ATTN_OK || c.empty) return st;
    run_state rs = {.c = &c, .p = &c.p, .k = c.k};
    if ((st = alloc_ws(&rs, ctx, c.p.Sk, c.k == NULL ? sizeof(double) : sizeof(float))) != ATTN_OK) return st;
    attn__pool_run(ctx->pool, c.p.B * c.n_heads * c.n_rows, weights_task, &rs);
    attn__ctx_give(ctx, rs.ws);
    return ATTN_OK;
}
