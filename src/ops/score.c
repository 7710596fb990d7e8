/* score.c - the entry points of learned-score attention (attn/score.h).
 * The arguments are validated once (score_validate.c), which returns the
 * prepared call; this file plans the buffers, splits the work into tasks
 * and calls the kernels of the call's table (the score.additive and
 * score.proj slots, src/kernels/table.h). F64 tensors, or a context forced
 * to ATTN_KERNEL_REF, run the float64 reference per (b, h). F32 tensors
 * compute the projections, then run the chunked kernel (ADDITIVE,
 * LUONG_CONCAT) or the core's attention kernels on the projected inputs
 * (LUONG_GENERAL: k' = W k, SCALED_DOT: q' = g q), and finish with the
 * projections' backward. Every buffer of a call comes from one allocation
 * made before anything is written. */
#include "ops/score_validate.h"

#include <string.h>

/* ---- plans ------------------------------------------------------------------ */

enum { OP_FORWARD, OP_BACKWARD, OP_WEIGHTS };
enum { WROWS = 16 /* rows of W per dW task */ };

typedef struct {
    const attn__score *p;
    attn_ctx *ctx;
    const attn__kernels *k;        /* the call's table (NULL: the reference runs) */
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
    rs->mem = attn__ctx_take(rs->ctx, (size_t)(total + ws) * elem, false);
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
    int64_t R = rs->k->score_proj.rows, bh = t / rs->nblk, s0 = t % rs->nblk * R, H = rs->p->H;
    rs->k->score_proj.linear_rows(rs->lin, H, bh / H, bh % H, s0, min64(R, rs->lin->S - s0), worker_ws(rs, tid));
}

static void linear_dx_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t R = rs->k->score_proj.rows, bh = t / rs->nblk, s0 = t % rs->nblk * R, H = rs->p->H;
    rs->k->score_proj.linear_dx_rows(rs->lin, rs->wpack, H, bh / H, bh % H, s0, min64(R, rs->lin->S - s0),
                               worker_ws(rs, tid));
}

static void linear_dw_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t r0 = t % rs->nblk * WROWS;
    rs->k->score_proj.linear_dw_rows(rs->lin, rs->p->m.B, rs->p->H, t / rs->nblk, r0,
                               min64(WROWS, rs->lin->R - r0), worker_ws(rs, tid));
}

static void forward_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, H = rs->p->H;
    rs->k->score.forward_block(rs->p, &rs->s, bh / H, bh % H, t % rs->nblk, worker_ws(rs, tid));
}

static void weights_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, H = rs->p->H;
    rs->k->score.weights_block(rs->p, &rs->s, bh / H, bh % H, t % rs->nblk, rs->with_dropout, rs->w,
                              worker_ws(rs, tid));
}

static void delta_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    (void)tid;
    rs->k->score.delta_head(rs->p, &rs->s, t / rs->p->H, t % rs->p->H);
}

static void group_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->s.groups, H = rs->p->H;
    rs->k->score.backward_group(rs->p, &rs->s, bh / H, bh % H, t % rs->s.groups, worker_ws(rs, tid));
}

static void reduce_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t bh = t / rs->nblk, H = rs->p->H;
    (void)tid;
    rs->k->score.reduce_dpq(rs->p, &rs->s, bh / H, bh % H, t % rs->nblk);
}

static void gscale_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t R = rs->k->score_proj.rows, bh = t / rs->nblk, i0 = t % rs->nblk * R, H = rs->p->H;
    (void)tid;
    rs->k->score_proj.gscale_rows(rs->p, rs->gv, rs->feat, bh / H, bh % H, i0, min64(R, rs->p->m.Sq - i0));
}

static void gscale_dq_task(void *arg, int64_t t, int tid)
{
    run_state *rs = arg;
    int64_t R = rs->k->score_proj.rows, bh = t / rs->nblk, i0 = t % rs->nblk * R, H = rs->p->H;
    (void)tid;
    rs->k->score_proj.gscale_dq_rows(rs->p, rs->gv, rs->dfeat, bh / H, bh % H, i0, min64(R, rs->p->m.Sq - i0));
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
    run_rows(rs, L->S, rs->k->score_proj.rows, fn);
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
    attn__ctx_give(rs->ctx, rs->mem);
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
    int64_t B = m->B, H = p->H, A = p->A, G = min64(rs->k->score.groups, blocks(m->Sk, rs->k->score.tile_k));
    G = G > 0 ? G : 1;
    int64_t nq = prod4(B, H, m->Sq, A), nk = prod4(B, H, m->Sk, A), nwq = prod4(H, p->Dq, A, 1);
    int64_t nwk = prod4(H, p->Dk, A, 1), nha = prod4(H, A, 1, 1);
    int64_t n[] = {nq, nk, nwq, nwk, p->has_b ? nha : 0, nha, bwd ? nq : 0, bwd ? nk : 0,
                   bwd ? prod4(G, nq, 1, 1) : 0, bwd ? prod4(B, G, nha, 1) : 0,
                   bwd ? prod4(B, H, m->Sq, 1) : 0, bwd ? nwq : 0, bwd ? nwk : 0};
    int64_t ws = rs->k->score.ws(p), lws = linear_ws(p);
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
        rs->k->score_proj.pack(&p->wq, h, true, wqt + h * p->Dq * A);
        rs->k->score_proj.pack(&p->wk, h, true, wkt + h * p->Dk * A);
        if (p->has_b) rs->k->score_proj.pack(&p->b, h, false, bias + h * A);
        rs->k->score_proj.pack(&p->va, h, false, va + h * A);
        if (bwd) rs->k->score_proj.pack(&p->wq, h, false, wq + h * A * p->Dq);
        if (bwd) rs->k->score_proj.pack(&p->wk, h, false, wk + h * A * p->Dk);
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
    run_rows(rs, p->m.Sq, rs->k->score.tile_q, reduce_task);
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
    if (op == OP_FORWARD) run_rows(rs, rs->p->m.Sq, rs->k->score.tile_q, forward_task);
    else if (op == OP_WEIGHTS) run_rows(rs, rs->p->m.Sq, rs->k->score.tile_q, weights_task);
    else tanh_backward(rs);
    attn__ctx_give(rs->ctx, rs->mem);
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
        run_rows(rs, m->Sq, rs->k->score_proj.rows, gscale_task);
        return ATTN_OK;
    }
    for (int64_t h = 0; h < H; h++) {
        rs->k->score_proj.pack(&p->w, h, true, packed + h * p->Dk * p->Dq);
        if (bwd) rs->k->score_proj.pack(&p->w, h, false, w + h * p->Dq * p->Dk);
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
    run_rows(rs, p->m.Sq, rs->k->score_proj.rows, gscale_dq_task); /* q' = g q: dq = g dq', dg = sum q . dq' */
    for (int64_t h = 0; p->dg.data != NULL && h < p->H; h++) rs->k->score_proj.dg_head(p, rs->dfeat, h);
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
    attn__ctx_give(rs->ctx, rs->mem);
    return st;
}

static attn_status run(attn_ctx *ctx, attn__score_call *c, int op)
{
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.p = &c->p;
    rs.ctx = ctx;
    rs.k = c->k;
    rs.masks = c->masks;
    rs.with_dropout = c->with_dropout;
    rs.w = &c->w;
    if (c->k == NULL) return run_ref(&rs, op);
    return attn__score_is_tanh(&c->p) ? run_tanh(&rs, op) : run_dot(&rs, op);
}

/* ---- entry points --------------------------------------------------------------------- */

attn_status attn_score_forward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_score_params *params,
                               attn_tensor *out, attn_tensor *lse)
{
    attn__clear_error();
    attn__score_call c;
    attn_status st = attn__score_validate_forward(ctx, q, k, v, params, out, lse, &c);
    if (st != ATTN_OK || c.empty) return st;
    return run(ctx, &c, OP_FORWARD);
}

attn_status attn_score_backward(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                                const attn_tensor *v, const attn_tensor *out, const attn_tensor *d_out,
                                const attn_tensor *lse, const attn_score_params *params,
                                attn_tensor *dq, attn_tensor *dk, attn_tensor *dv,
                                const attn_score_grads *grads)
{
    attn__clear_error();
    attn__score_call c;
    attn_status st = attn__score_validate_backward(ctx, q, k, v, out, d_out, lse, params, dq, dk, dv, grads, &c);
    if (st != ATTN_OK || c.empty) return st;
    return run(ctx, &c, OP_BACKWARD);
}

attn_status attn_score_weights(attn_ctx *ctx, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *lse, const attn_score_params *params, int with_dropout,
                               attn_tensor *w)
{
    attn__clear_error();
    attn__score_call c;
    attn_status st = attn__score_validate_weights(ctx, q, k, lse, params, with_dropout, w, &c);
    if (st != ATTN_OK || c.empty) return st;
    return run(ctx, &c, OP_WEIGHTS);
}

