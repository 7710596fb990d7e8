/* ring_ranks.c - the MPI program the dist tests (test_ring.c) start with
 * mpirun. `check`: every rank compares its slice of ring attention
 * (forward and backward, CONTIGUOUS and ZIGZAG splits; plain, causal,
 * causal + window, causal + document ids, key lengths) with the float64
 * single-process result, by the grid's rule (docs/testing.md): the ring's
 * float32 error at most 2x (forward) / 3x (gradients) that of the
 * single-process float32 call, plus a floor; then ranks that disagree on
 * the options all get an error. `kill`: rank 1 dies while the others are
 * inside a call (mpirun must end the job). Every allocation of attn goes
 * through a counting allocator: none may be live at the end (LeakSanitizer
 * cannot be used under mpirun: Open MPI's plugins keep memory). Exit
 * status 0: all passed. */
#include "attn/dist.h"

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, HQ = 4, HKV = 2, DK = 16, DV = 8, CH = 24 };

static long checks, failures, live_allocs;

/* attn's allocator hook: counts live allocations. */
static void *count_alloc(size_t bytes, void *user)
{
    (void)user;
    void *p = malloc(bytes);
    if (p != NULL) live_allocs++;
    return p;
}

static void count_free(void *p, void *user)
{
    (void)user;
    if (p != NULL) live_allocs--;
    free(p);
}
static int rank_id, n_ranks;

static void check(bool ok, const char *what, const char *cfg, double got, double allowed)
{
    checks++;
    if (ok) return;
    failures++;
    fprintf(stderr, "rank %d: FAIL %s [%s]: %.3g > %.3g\n", rank_id, what, cfg, got, allowed);
}

static uint64_t rng = 88172645463325252ull;
static double uni(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* A whole problem, [B, S, H, D] row-major in doubles, and the options. */
typedef struct {
    int64_t S;
    double *q, *k, *v, *d_o;
    int64_t *ids, klens[B];
    bool causal, docs, klen;
    int64_t wl, wr; /* window_left, window_right */
} problem;

typedef struct {
    double *o, *lse, *dq, *dk, *dv;
} result;

static void *to(const double *x, int64_t n, attn_dtype dt)
{
    void *p = calloc((size_t)n + 1, dt == ATTN_DTYPE_F64 ? 8 : 4);
    for (int64_t e = 0; x != NULL && e < n; e++)
        dt == ATTN_DTYPE_F64 ? (((double *)p)[e] = x[e]) : (((float *)p)[e] = (float)x[e]);
    return p;
}

static double *back(const void *p, int64_t n, attn_dtype dt)
{
    double *x = malloc(sizeof(double) * (size_t)n + 1);
    for (int64_t e = 0; e < n; e++) x[e] = dt == ATTN_DTYPE_F64 ? ((const double *)p)[e] : ((const float *)p)[e];
    return x;
}

static attn_sdpa_params options(const problem *P)
{
    attn_sdpa_params a = attn_sdpa_params_default();
    a.causal = P->causal;
    a.window_left = P->wl;
    a.window_right = P->wr;
    a.k_lens = P->klen ? P->klens : NULL;
    return a;
}

/* The whole sequence in one process, in dtype dt. */
static result single(attn_ctx *ctx, const problem *P, attn_dtype dt)
{
    int64_t S = P->S, nq = B * S * HQ * DK, nk = B * S * HKV * DK, nv = B * S * HKV * DV, no = B * S * HQ * DV;
    void *q = to(P->q, nq, dt), *k = to(P->k, nk, dt), *v = to(P->v, nv, dt), *d = to(P->d_o, no, dt);
    void *o = to(NULL, no, dt), *l = to(NULL, B * HQ * S, dt), *dq = to(NULL, nq, dt), *dk = to(NULL, nk, dt);
    void *dv = to(NULL, nv, dt);
    attn_tensor tq = attn_tensor_make(q, dt, B, S, HQ, DK), tk = attn_tensor_make(k, dt, B, S, HKV, DK);
    attn_tensor tv = attn_tensor_make(v, dt, B, S, HKV, DV), td = attn_tensor_make(d, dt, B, S, HQ, DV);
    attn_tensor to_ = attn_tensor_make(o, dt, B, S, HQ, DV), tl = attn_tensor_make(l, dt, B, HQ, S, 1);
    attn_tensor tdq = attn_tensor_make(dq, dt, B, S, HQ, DK), tdk = attn_tensor_make(dk, dt, B, S, HKV, DK);
    attn_tensor tdv = attn_tensor_make(dv, dt, B, S, HKV, DV);
    attn_sdpa_params a = options(P);
    attn_block_mask *bm = NULL;
    if (P->docs) {
        attn_block_mask_shape sh = {B, 1, S, S, 64, 64};
        attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_DOCUMENTS);
        pt.doc_q = P->ids;
        attn_block_mask_from_pattern(&sh, &pt, &bm);
        a.block_mask = bm;
    }
    attn_status s1 = attn_sdpa_forward(ctx, &tq, &tk, &tv, &a, &to_, &tl);
    attn_status s2 = attn_sdpa_backward(ctx, &tq, &tk, &tv, &to_, &td, &tl, &a, &tdq, &tdk, &tdv, NULL);
    check(s1 == ATTN_OK && s2 == ATTN_OK, "single-process call", attn_last_error(), 0, 0);
    result r = {back(o, no, dt), back(l, B * HQ * S, dt), back(dq, nq, dt), back(dk, nk, dt), back(dv, nv, dt)};
    attn_block_mask_free(bm);
    free(q); free(k); free(v); free(d); free(o); free(l); free(dq); free(dk); free(dv);
    return r;
}

/* This rank's rows of a [B, S, H, D] array (dim 1 = rows) or of the LSE
 * [B, H, S] (rows along dim 2), gathered into [B, L, H, D] / [B, H, L]. */
static double *gather(const double *x, int64_t S, int64_t H, int64_t D, bool lse, const int64_t *start,
                      int64_t nch, int64_t c)
{
    int64_t L = nch * c;
    double *y = malloc(sizeof(double) * (size_t)(B * L * H * D) + 1);
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < L; r++) {
            int64_t g = start[r / c] + r % c;
            for (int64_t h = 0; h < H; h++)
                for (int64_t d = 0; d < D; d++)
                    y[lse ? (b * H + h) * L + r : ((b * L + r) * H + h) * D + d] =
                        x[lse ? (b * H + h) * S + g : ((b * S + g) * H + h) * D + d];
        }
    return y;
}

static double max_err(const double *a, const double *b, int64_t n, double *scale)
{
    double e = 0.0, m = 1.0;
    for (int64_t x = 0; x < n; x++) {
        double d = a[x] == b[x] ? 0.0 : fabs(a[x] - b[x]);
        if (isnan(d)) d = INFINITY;
        e = d > e ? d : e;
        m = isfinite(b[x]) && fabs(b[x]) > m ? fabs(b[x]) : m;
    }
    *scale = m;
    return e;
}

/* The rule on this rank's rows of one output. */
static void rule(const char *what, const char *cfg, const double *ring, const double *full32, const double *full64,
                 int64_t S, int64_t H, int64_t D, bool lse, const int64_t *start, int64_t nch, int64_t c, double k,
                 double floor_rel)
{
    int64_t n = B * nch * c * H * D;
    double *b32 = gather(full32, S, H, D, lse, start, nch, c), *b64 = gather(full64, S, H, D, lse, start, nch, c);
    double scale, e = max_err(ring, b64, n, &scale), eb = max_err(b32, b64, n, &scale);
    double allowed = k * eb + floor_rel * scale;
    check(e <= allowed, what, cfg, e, allowed);
    free(b32);
    free(b64);
}

static void run_case(attn_ctx *ctx, MPI_Comm comm, const problem *P, attn_ring_split split, const char *cfg)
{
    int64_t start[2], nch, c, S = P->S;
    attn_ring_rows(S, n_ranks, rank_id, split, start, &nch, &c);
    int64_t L = nch * c;
    result r64 = single(ctx, P, ATTN_DTYPE_F64), r32 = single(ctx, P, ATTN_DTYPE_F32);
    double *q = gather(P->q, S, HQ, DK, false, start, nch, c), *k = gather(P->k, S, HKV, DK, false, start, nch, c);
    double *v = gather(P->v, S, HKV, DV, false, start, nch, c), *d = gather(P->d_o, S, HQ, DV, false, start, nch, c);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(B * L));
    for (int64_t b = 0; b < B; b++)
        for (int64_t x = 0; x < L; x++) ids[b * L + x] = P->ids[b * S + start[x / c] + x % c];
    attn_dtype dt = ATTN_DTYPE_F32;
    void *bq = to(q, B * L * HQ * DK, dt), *bk = to(k, B * L * HKV * DK, dt), *bv = to(v, B * L * HKV * DV, dt);
    void *bd = to(d, B * L * HQ * DV, dt), *bo = to(NULL, B * L * HQ * DV, dt), *bl = to(NULL, B * HQ * L, dt);
    void *bdq = to(NULL, B * L * HQ * DK, dt), *bdk = to(NULL, B * L * HKV * DK, dt), *bdv = to(NULL, B * L * HKV * DV, dt);
    attn_tensor tq = attn_tensor_make(bq, dt, B, L, HQ, DK), tk = attn_tensor_make(bk, dt, B, L, HKV, DK);
    attn_tensor tv = attn_tensor_make(bv, dt, B, L, HKV, DV), td = attn_tensor_make(bd, dt, B, L, HQ, DV);
    attn_tensor to_ = attn_tensor_make(bo, dt, B, L, HQ, DV), tl = attn_tensor_make(bl, dt, B, HQ, L, 1);
    attn_tensor tdq = attn_tensor_make(bdq, dt, B, L, HQ, DK), tdk = attn_tensor_make(bdk, dt, B, L, HKV, DK);
    attn_tensor tdv = attn_tensor_make(bdv, dt, B, L, HKV, DV);
    attn_ring_params rp = attn_ring_params_default();
    rp.sdpa = options(P);
    rp.split = split;
    rp.seq_len = S;
    rp.doc_ids = P->docs ? ids : NULL;
    attn_ring_stats st1, st2;
    attn_status s1 = attn_ring_forward(ctx, comm, &tq, &tk, &tv, &rp, &to_, &tl, &st1);
    attn_status s2 = attn_ring_backward(ctx, comm, &tq, &tk, &tv, &to_, &td, &tl, &rp, &tdq, &tdk, &tdv, &st2);
    check(s1 == ATTN_OK && s2 == ATTN_OK, "ring call status", attn_last_error(), 0, 0);
    check(n_ranks == 1 || (st1.bytes_sent > 0 && st2.bytes_sent > st1.bytes_sent), "bytes sent", cfg, 0, 0);
    double *o = back(bo, B * L * HQ * DV, dt), *l = back(bl, B * HQ * L, dt), *gq = back(bdq, B * L * HQ * DK, dt);
    double *gk = back(bdk, B * L * HKV * DK, dt), *gv = back(bdv, B * L * HKV * DV, dt);
    rule("O", cfg, o, r32.o, r64.o, S, HQ, DV, false, start, nch, c, 2.0, 2e-6);
    rule("LSE", cfg, l, r32.lse, r64.lse, S, HQ, 1, true, start, nch, c, 2.0, 2e-6);
    rule("dQ", cfg, gq, r32.dq, r64.dq, S, HQ, DK, false, start, nch, c, 3.0, 1e-5);
    rule("dK", cfg, gk, r32.dk, r64.dk, S, HKV, DK, false, start, nch, c, 3.0, 1e-5);
    rule("dV", cfg, gv, r32.dv, r64.dv, S, HKV, DV, false, start, nch, c, 3.0, 1e-5);
    result *rr[2] = {&r64, &r32};
    for (int x = 0; x < 2; x++) {
        free(rr[x]->o); free(rr[x]->lse); free(rr[x]->dq); free(rr[x]->dk); free(rr[x]->dv);
    }
    free(q); free(k); free(v); free(d); free(ids); free(o); free(l); free(gq); free(gk); free(gv);
    free(bq); free(bk); free(bv); free(bd); free(bo); free(bl); free(bdq); free(bdk); free(bdv);
}

static problem make(int64_t S)
{
    problem P;
    memset(&P, 0, sizeof P);
    P.S = S;
    P.wl = P.wr = -1;
    int64_t n[4] = {B * S * HQ * DK, B * S * HKV * DK, B * S * HKV * DV, B * S * HQ * DV};
    double **dst[4] = {&P.q, &P.k, &P.v, &P.d_o};
    for (int x = 0; x < 4; x++) {
        *dst[x] = malloc(sizeof(double) * (size_t)n[x]);
        for (int64_t e = 0; e < n[x]; e++) (*dst[x])[e] = uni() * (x < 2 ? 2.0 : 1.0);
    }
    P.ids = malloc(sizeof(int64_t) * (size_t)(B * S));
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < S; j++) P.ids[b * S + j] = (j * 7 + b * 5) / (S / 3 + 1); /* 3-4 documents */
    P.klens[0] = S - 5;
    P.klens[1] = S / 3;
    return P;
}

/* Rank n-1 asks for causal, the others not: every rank gets ATTN_BAD_PARAM,
 * and o stays as it was. */
static void disagree(attn_ctx *ctx, MPI_Comm comm)
{
    int64_t c = CH, L = c * 2, S = L * n_ranks;
    float *buf = calloc((size_t)(B * L * HQ * DK * 3), sizeof(float));
    attn_tensor q = attn_tensor_make(buf, ATTN_DTYPE_F32, B, L, HQ, DK);
    attn_tensor k = attn_tensor_make(buf, ATTN_DTYPE_F32, B, L, HKV, DK);
    attn_tensor v = attn_tensor_make(buf, ATTN_DTYPE_F32, B, L, HKV, DV);
    attn_tensor o = attn_tensor_make(buf + B * L * HQ * DK * 2, ATTN_DTYPE_F32, B, L, HQ, DV);
    buf[B * L * HQ * DK * 2] = 7.0f;
    attn_ring_params rp = attn_ring_params_default();
    rp.split = ATTN_RING_ZIGZAG;
    rp.seq_len = S;
    rp.sdpa.causal = rank_id == n_ranks - 1;
    attn_status s = attn_ring_forward(ctx, comm, &q, &k, &v, &rp, &o, NULL, NULL);
    check(s == ATTN_BAD_PARAM && strstr(attn_last_error(), "disagree") != NULL, "ranks that disagree fail",
          attn_last_error(), 0, 0);
    check(buf[B * L * HQ * DK * 2] == 7.0f, "nothing written on disagreement", "", 0, 0);
    /* one rank with an invalid argument: it gets its own error, the others "disagree" */
    rp.sdpa.causal = 0;
    rp.sdpa.dropout_p = rank_id == 0 ? 0.5 : 0.0;
    s = attn_ring_forward(ctx, comm, &q, &k, &v, &rp, &o, NULL, NULL);
    check(rank_id == 0 ? s == ATTN_UNSUPPORTED : s == ATTN_BAD_PARAM, "an invalid rank fails every rank",
          attn_last_error(), 0, 0);
    free(buf);
}

/* Half tensors are refused on every rank, the dtype named, nothing written. */
static void half_refused(attn_ctx *ctx, MPI_Comm comm)
{
    int64_t L = CH * 2;
    static const attn_dtype halves[2] = {ATTN_DTYPE_BF16, ATTN_DTYPE_F16};
    uint16_t *buf = calloc((size_t)(B * L * HQ * DK * 3), sizeof(uint16_t));
    for (int x = 0; x < 2; x++) {
        attn_dtype dt = halves[x];
        attn_tensor q = attn_tensor_make(buf, dt, B, L, HQ, DK), k = attn_tensor_make(buf, dt, B, L, HKV, DK);
        attn_tensor v = attn_tensor_make(buf, dt, B, L, HKV, DV);
        attn_tensor o = attn_tensor_make(buf + B * L * HQ * DK * 2, dt, B, L, HQ, DV);
        buf[B * L * HQ * DK * 2] = 0x4000;
        attn_ring_params rp = attn_ring_params_default();
        rp.seq_len = L * n_ranks;
        attn_status s = attn_ring_forward(ctx, comm, &q, &k, &v, &rp, &o, NULL, NULL);
        check(s == ATTN_UNSUPPORTED && strstr(attn_last_error(), attn_dtype_name(dt)) != NULL,
              "half tensors are ATTN_UNSUPPORTED naming the dtype", attn_last_error(), 0, 0);
        check(buf[B * L * HQ * DK * 2] == 0x4000, "nothing written for half tensors", "", 0, 0);
    }
    free(buf);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_id);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    attn_set_allocator(count_alloc, count_free, NULL);
    attn_ctx *ctx = NULL;
    attn_ctx_create(1, &ctx);
    bool kill_mode = argc > 1 && strcmp(argv[1], "kill") == 0;
    int64_t S = 2 * CH * n_ranks;
    problem P = make(S);
    if (kill_mode) { /* one good call, then rank 1 dies while the others are in the next */
        run_case(ctx, MPI_COMM_WORLD, &P, ATTN_RING_ZIGZAG, "before the kill");
        if (rank_id == 1) raise(SIGKILL);
        run_case(ctx, MPI_COMM_WORLD, &P, ATTN_RING_ZIGZAG, "after the kill");
        fprintf(stderr, "rank %d: the call returned after rank 1 died\n", rank_id);
        MPI_Finalize();
        return 3;
    }
    for (int split = 0; split < 2; split++)
        for (int opt = 0; opt < 6; opt++) {
            P.causal = opt >= 1 && opt <= 3;
            P.wl = opt == 2 ? 20 : opt == 5 ? INT64_MAX : -1;
            P.wr = opt == 5 ? INT64_MAX : -1; /* as wide as none: no overflow in the chunks' test */
            P.docs = opt == 3;
            P.klen = opt == 4;
            char cfg[128];
            snprintf(cfg, sizeof cfg, "P=%d %s causal=%d window=%lld/%lld docs=%d k_lens=%d", n_ranks,
                     split ? "zigzag" : "contiguous", P.causal, (long long)P.wl, (long long)P.wr, P.docs, P.klen);
            run_case(ctx, MPI_COMM_WORLD, &P, split ? ATTN_RING_ZIGZAG : ATTN_RING_CONTIGUOUS, cfg);
        }
    if (n_ranks > 1) disagree(ctx, MPI_COMM_WORLD);
    half_refused(ctx, MPI_COMM_WORLD);
    attn_ctx_free(ctx);
    check(live_allocs == 0, "no allocation of attn left live", "", (double)live_allocs, 0);
    long all[2] = {checks, failures}, sum[2];
    MPI_Allreduce(all, sum, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank_id == 0) printf("ring attention on %d ranks: %ld checks, %ld failed\n", n_ranks, sum[0], sum[1]);
    free(P.q); free(P.k); free(P.v); free(P.d_o); free(P.ids);
    MPI_Finalize();
    return sum[1] == 0 ? 0 : 1;
}
