/* cmd_ring.c - `mpirun -np P attn ring --seq N --heads H --dim D [--causal]
 * [--backward] [--check | --check-rows R]`: ring attention (attn/dist.h)
 * over P ranks, each holding only its rows of Q, K and V (and dO), their
 * values drawn from the global position, so they do not depend on P.
 * Prints the forward (and backward) time, the bytes each rank sent and
 * each rank's peak memory.
 *
 * --check gathers every row on rank 0 and compares it with a
 * single-process computation done there in chunks of queries (O; with
 * --backward also dQ, and dK, dV summed over the chunks).
 * --check-rows R checks a sample instead, in float64 and without attn's
 * kernels, for sequences too long to recompute: R query rows drawn from
 * the seed (O, and dQ with --backward) and, with --backward --causal, the
 * last R rows too, with their dK and dV (every query that sees them is
 * among the checked ones, so their sums are complete); each rank
 * checks the rows it holds,
 * generating K and V row by row (memory linear in R, not in N).
 * A mismatch exits 1 on every rank. Built only with MPI. */
#include "cli.h"

#include <attn/dist.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { T_Q, T_K, T_V, T_DO };

/* Element (row, h, d) of tensor `which` in [-1, 1), from seed and the
 * global row alone. */
static float value(uint64_t seed, int which, int64_t row, int64_t h, int64_t d)
{
    uint64_t x = seed ^ ((uint64_t)which << 56) ^ ((uint64_t)row << 24) ^ ((uint64_t)h << 12) ^ (uint64_t)d;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Rows `rows[r]` (global) of tensor `which` into buf [1, n, H, D]. */
static void fill_rows(float *buf, uint64_t seed, int which, const int64_t *rows, int64_t n, int64_t H, int64_t D)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t d = 0; d < D; d++) buf[(r * H + h) * D + d] = value(seed, which, rows[r], h, d);
}

typedef struct {
    int64_t seq, heads, dim, threads, seed, check_rows;
    int causal, backward, check;
} ring_opts;

/* The largest |got - want| over n values, NaN counting as infinite, and
 * the largest |want| into *scale. */
static void worst_diff(const float *got, const float *want, int64_t n, double *worst, double *scale)
{
    for (int64_t e = 0; e < n; e++) {
        double d = fabs((double)got[e] - (double)want[e]);
        if (!(d <= *worst)) *worst = isnan(d) ? INFINITY : d;
        if (fabs((double)want[e]) > *scale) *scale = fabs((double)want[e]);
    }
}

/* One line per checked tensor, |err| <= 1e-5 max(1, max |ref|); 0 if all pass. */
static int report(const char *how, const char *const *names, const double *err, const double *scale, int n)
{
    int bad = 0;
    printf("check (%s):", how);
    for (int t = 0; t < n; t++) {
        double lim = 1e-5 * (scale[t] > 1.0 ? scale[t] : 1.0);
        bool ok = err[t] <= lim;
        bad |= !ok;
        printf("%s max |%s err| = %.3g (limit %.3g)%s", t ? "," : "", names[t], err[t], lim, ok ? "" : " MISMATCH");
    }
    printf(": %s\n", bad ? "MISMATCH" : "ok");
    return bad;
}

/* The ring's results, gathered to rank 0 in ring order, for --check. */
typedef struct {
    const float *o, *dq, *dk, *dv; /* [N, H, D] each (dq, dk, dv NULL without --backward) */
    const int64_t *rows;           /* [N]: the global row of each */
} gathered;

/* Rank 0: the whole sequence in chunks of 512 queries against all keys
 * (ATTN_ALIGN_OFFSET places each chunk): O, and with --backward dQ and the
 * chunks' dK, dV summed, compared with the ring's. */
static int check_on_rank0(attn_ctx *ctx, const ring_opts *o, const gathered *g)
{
    int64_t S = o->seq, H = o->heads, D = o->dim, C = 512, HD = H * D;
    size_t all_bytes = sizeof(float) * (size_t)(S * HD), chunk_bytes = sizeof(float) * (size_t)(C * HD);
    float *q = malloc(chunk_bytes), *out = malloc(chunk_bytes), *k = malloc(all_bytes), *v = malloc(all_bytes);
    float *dout = malloc(chunk_bytes), *dq = malloc(chunk_bytes), *lse = malloc(sizeof(float) * (size_t)(C * H));
    float *dk = o->backward ? calloc((size_t)(S * HD), sizeof(float)) : NULL;
    float *dv = o->backward ? calloc((size_t)(S * HD), sizeof(float)) : NULL;
    float *dkp = o->backward ? malloc(all_bytes) : NULL, *dvp = o->backward ? malloc(all_bytes) : NULL;
    int64_t *all = calloc((size_t)S, sizeof(int64_t)), *where = calloc((size_t)S, sizeof(int64_t));
    attn_status st = ATTN_OK;
    if (!q || !out || !k || !v || !dout || !dq || !lse || !all || !where ||
        (o->backward && (!dk || !dv || !dkp || !dvp)))
        st = attn_fail(ATTN_NO_MEMORY, "--check: cannot allocate the single-process copy of %lld rows", (long long)S);
    double err[4] = {0, 0, 0, 0}, scale[4] = {0, 0, 0, 0};
    if (st == ATTN_OK) {
        for (int64_t j = 0; j < S; j++) all[j] = j;
        for (int64_t r = 0; r < S; r++) where[g->rows[r]] = r; /* global row -> its place in the gathered rows */
        fill_rows(k, (uint64_t)o->seed, T_K, all, S, H, D);
        fill_rows(v, (uint64_t)o->seed, T_V, all, S, H, D);
    }
    for (int64_t i0 = 0; i0 < S && st == ATTN_OK; i0 += C) {
        int64_t n = S - i0 < C ? S - i0 : C;
        fill_rows(q, (uint64_t)o->seed, T_Q, all + i0, n, H, D);
        attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, n, H, D), tk = attn_tensor_make(k, ATTN_DTYPE_F32, 1, S, H, D);
        attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, 1, S, H, D), to = attn_tensor_make(out, ATTN_DTYPE_F32, 1, n, H, D);
        attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, 1, H, n, 1);
        attn_sdpa_params a = attn_sdpa_params_default();
        a.causal = o->causal;
        a.align = ATTN_ALIGN_OFFSET;
        a.align_offset = i0;
        st = attn_sdpa_forward(ctx, &tq, &tk, &tv, &a, &to, &tl);
        if (st == ATTN_OK && o->backward) {
            fill_rows(dout, (uint64_t)o->seed, T_DO, all + i0, n, H, D);
            attn_tensor tdo = attn_tensor_make(dout, ATTN_DTYPE_F32, 1, n, H, D);
            attn_tensor tdq = attn_tensor_make(dq, ATTN_DTYPE_F32, 1, n, H, D);
            attn_tensor tdk = attn_tensor_make(dkp, ATTN_DTYPE_F32, 1, S, H, D);
            attn_tensor tdv = attn_tensor_make(dvp, ATTN_DTYPE_F32, 1, S, H, D);
            st = attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, &a, &tdq, &tdk, &tdv, NULL);
            for (int64_t e = 0; st == ATTN_OK && e < S * HD; e++) dk[e] += dkp[e], dv[e] += dvp[e];
        }
        for (int64_t r = 0; st == ATTN_OK && r < n; r++) {
            int64_t at = where[i0 + r] * HD;
            worst_diff(g->o + at, out + r * HD, HD, &err[0], &scale[0]);
            if (o->backward) worst_diff(g->dq + at, dq + r * HD, HD, &err[1], &scale[1]);
        }
    }
    for (int64_t j = 0; st == ATTN_OK && o->backward && j < S; j++) {
        worst_diff(g->dk + where[j] * HD, dk + j * HD, HD, &err[2], &scale[2]);
        worst_diff(g->dv + where[j] * HD, dv + j * HD, HD, &err[3], &scale[3]);
    }
    free(q), free(out), free(k), free(v), free(dout), free(dq), free(lse), free(dk), free(dv), free(dkp), free(dvp);
    free(all), free(where);
    if (st != ATTN_OK) return cli_fail("ring", st);
    static const char *const names[4] = {"O", "dQ", "dK", "dV"};
    return report("every row, against one process", names, err, scale, o->backward ? 4 : 1);
}

/* ---- --check-rows: a float64 check of a sample ------------------------------------------ */

/* The rows this rank holds (ascending: the zigzag's two chunks are in
 * order) -> the local index of global row r, or -1. */
static int64_t local_index(const int64_t *rows, int64_t L, int64_t r)
{
    int64_t lo = 0, hi = L;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rows[mid] < r) lo = mid + 1;
        else hi = mid;
    }
    return lo < L && rows[lo] == r ? lo : -1;
}

/* The float64 reference of n query rows qr[] (global, ascending) over every
 * key they see, keys generated one row at a time: O [n][H][D] and LSE
 * [n][H]; with dq (not NULL), dQ [n][H][D] and, for the keys j >= k0, dK
 * and dV [S - k0][H][D] summed over these rows (complete when every query
 * that sees those keys is among them). */
typedef struct {
    const ring_opts *o;
    const int64_t *qr;
    int64_t n, k0;
} ref_rows;

/* k, v [H * D] = key row j (global) in float64. */
static void key_row(const ring_opts *o, int64_t j, double *k, double *v)
{
    for (int64_t e = 0; e < o->heads * o->dim; e++) {
        k[e] = value((uint64_t)o->seed, T_K, j, e / o->dim, e % o->dim);
        v[e] = value((uint64_t)o->seed, T_V, j, e / o->dim, e % o->dim);
    }
}

static bool sees(const ring_opts *o, int64_t i, int64_t j) { return !o->causal || j <= i; }

static void reference(const ref_rows *rr, double *O, double *lse, double *dq, double *dk, double *dv)
{
    const ring_opts *o = rr->o;
    int64_t n = rr->n, H = o->heads, D = o->dim, HD = H * D, S = o->seq;
    uint64_t seed = (uint64_t)o->seed;
    double scale = 1.0 / sqrt((double)D);
    double *q = malloc(sizeof(double) * (size_t)(n * HD + 1)), *dout = malloc(sizeof(double) * (size_t)(n * HD + 1));
    double *k = malloc(sizeof(double) * (size_t)HD), *v = malloc(sizeof(double) * (size_t)HD);
    double *m = malloc(sizeof(double) * (size_t)(n * H + 1)), *l = malloc(sizeof(double) * (size_t)(n * H + 1));
    double *delta = malloc(sizeof(double) * (size_t)(n * H + 1));
    for (int64_t r = 0; r < n; r++)
        for (int64_t e = 0; e < HD; e++) {
            q[r * HD + e] = value(seed, T_Q, rr->qr[r], e / D, e % D);
            dout[r * HD + e] = value(seed, T_DO, rr->qr[r], e / D, e % D);
        }
    for (int64_t x = 0; x < n * H; x++) m[x] = -INFINITY, l[x] = 0.0;
    memset(O, 0, sizeof(double) * (size_t)(n * HD));
    int64_t last = rr->qr[n - 1], keys = o->causal ? last + 1 : S;
    for (int64_t j = 0; j < keys; j++) { /* the forward: an online softmax per row and head */
        key_row(o, j, k, v);
        for (int64_t r = 0; r < n; r++) {
            if (!sees(o, rr->qr[r], j)) continue;
            for (int64_t h = 0; h < H; h++) {
                const double *qh = q + r * HD + h * D, *kh = k + h * D, *vh = v + h * D;
                double s = 0.0, *acc = O + r * HD + h * D;
                for (int64_t d = 0; d < D; d++) s += qh[d] * kh[d];
                s *= scale;
                double *mh = &m[r * H + h], *lh = &l[r * H + h];
                if (s > *mh) {
                    double c = exp(*mh - s);
                    *lh *= c;
                    for (int64_t d = 0; d < D; d++) acc[d] *= c;
                    *mh = s;
                }
                double p = exp(s - *mh);
                *lh += p;
                for (int64_t d = 0; d < D; d++) acc[d] += p * vh[d];
            }
        }
    }
    for (int64_t x = 0; x < n * H; x++) {
        lse[x] = m[x] + log(l[x]);
        for (int64_t d = 0; d < D; d++) O[x * D + d] /= l[x];
        delta[x] = 0.0;
        for (int64_t d = 0; d < D; d++) delta[x] += dout[x * D + d] * O[x * D + d];
    }
    if (dq != NULL) { /* the backward: dS = P (dP - delta) */
        memset(dq, 0, sizeof(double) * (size_t)(n * HD));
        memset(dk, 0, sizeof(double) * (size_t)((S - rr->k0) * HD));
        memset(dv, 0, sizeof(double) * (size_t)((S - rr->k0) * HD));
        for (int64_t j = 0; j < keys; j++) {
            key_row(o, j, k, v);
            for (int64_t r = 0; r < n; r++) {
                if (!sees(o, rr->qr[r], j)) continue;
                for (int64_t h = 0; h < H; h++) {
                    const double *qh = q + r * HD + h * D, *kh = k + h * D, *vh = v + h * D, *doh = dout + r * HD + h * D;
                    double s = 0.0, dp = 0.0;
                    for (int64_t d = 0; d < D; d++) s += qh[d] * kh[d], dp += doh[d] * vh[d];
                    double p = exp(s * scale - lse[r * H + h]), ds = p * (dp - delta[r * H + h]);
                    for (int64_t d = 0; d < D; d++) dq[r * HD + h * D + d] += scale * ds * kh[d];
                    if (j < rr->k0) continue;
                    double *dkh = dk + (j - rr->k0) * HD + h * D, *dvh = dv + (j - rr->k0) * HD + h * D;
                    for (int64_t d = 0; d < D; d++) dkh[d] += scale * ds * qh[d], dvh[d] += p * doh[d];
                }
            }
        }
    }
    free(q), free(dout), free(k), free(v), free(m), free(l), free(delta);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every rank: its rows among the R sampled query rows and (with
 * --backward --causal) the last R rows, against the float64 reference; the worst
 * errors reduced to rank 0, which reports. */
static int check_sample(const ring_opts *o, int rank, const int64_t *rows, int64_t L, const float *ring_o,
                        const float *ring_dq, const float *ring_dk, const float *ring_dv)
{
    int64_t S = o->seq, H = o->heads, D = o->dim, HD = H * D, R = o->check_rows < S ? o->check_rows : S;
    /* dK, dV of the last R rows are complete only when no other query sees them (causal) */
    int64_t k0 = o->backward && o->causal ? S - R : S, *qr = malloc(sizeof(int64_t) * (size_t)(2 * R + 1)), n = 0;
    uint64_t x = (uint64_t)o->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t t = 0; t < R; t++) { /* the sample (the same on every rank) */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        qr[n++] = (int64_t)(x % (uint64_t)S);
    }
    for (int64_t r = k0; r < S; r++) qr[n++] = r;
    qsort(qr, (size_t)n, sizeof(int64_t), cmp_i64);
    int64_t u = 0;
    for (int64_t t = 0; t < n; t++)
        if (u == 0 || qr[t] != qr[u - 1]) qr[u++] = qr[t];
    n = u;
    double *O = malloc(sizeof(double) * (size_t)(n * HD + 1)), *lse = malloc(sizeof(double) * (size_t)(n * H + 1));
    double *dq = o->backward ? malloc(sizeof(double) * (size_t)(n * HD + 1)) : NULL;
    double *dk = o->backward ? malloc(sizeof(double) * (size_t)(R * HD + 1)) : NULL;
    double *dv = o->backward ? malloc(sizeof(double) * (size_t)(R * HD + 1)) : NULL;
    ref_rows rr = {o, qr, n, k0};
    reference(&rr, O, lse, dq, dk, dv);
    double err[4] = {0, 0, 0, 0}, scale[4] = {0, 0, 0, 0};
    for (int64_t r = 0; r < n; r++) {
        int64_t li = local_index(rows, L, qr[r]);
        if (li < 0) continue;
        for (int64_t e = 0; e < HD; e++) {
            const double *want[4] = {O, dq, dk, dv};
            const float *got[4] = {ring_o, ring_dq, ring_dk, ring_dv};
            for (int t = 0; t < (o->backward ? 4 : 1); t++) {
                if (t >= 2 && qr[r] < k0) continue; /* dK, dV: the last R rows only */
                int64_t wi = (t >= 2 ? qr[r] - k0 : r) * HD + e;
                double d = fabs((double)got[t][li * HD + e] - want[t][wi]);
                if (!(d <= err[t])) err[t] = isnan(d) ? INFINITY : d;
                if (fabs(want[t][wi]) > scale[t]) scale[t] = fabs(want[t][wi]);
            }
        }
    }
    double e_all[4], s_all[4];
    MPI_Reduce(err, e_all, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(scale, s_all, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    int bad = 0;
    if (rank == 0) {
        static const char *const names[4] = {"O", "dQ", "dK", "dV"};
        char how[160];
        snprintf(how, sizeof how, "float64, %lld query rows%s", (long long)n,
                 k0 < S ? ", the last of them with their dK, dV" : "");
        bad = report(how, names, e_all, s_all, k0 < S ? 4 : o->backward ? 2 : 1);
    }
    free(qr), free(O), free(lse), free(dq), free(dk), free(dv);
    return bad;
}

/* ---- the run ---------------------------------------------------------------------------------- */

static int gather_and_check(attn_ctx *ctx, const ring_opts *o, int rank, int64_t L, const int64_t *rows,
                            float *const bufs[4])
{
    int64_t HD = o->heads * o->dim, nb = o->backward ? 4 : 1;
    float *all[4] = {NULL, NULL, NULL, NULL};
    int64_t *all_rows = rank == 0 ? malloc(sizeof(int64_t) * (size_t)o->seq + 1) : NULL;
    for (int64_t t = 0; t < nb; t++) {
        if (rank == 0) all[t] = malloc(sizeof(float) * (size_t)(o->seq * HD) + 1);
        MPI_Gather(bufs[t], (int)(L * HD), MPI_FLOAT, all[t], (int)(L * HD), MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
    MPI_Gather(rows, (int)L, MPI_INT64_T, all_rows, (int)L, MPI_INT64_T, 0, MPI_COMM_WORLD);
    int rc = 0;
    if (rank == 0) {
        gathered g = {all[0], all[1], all[2], all[3], all_rows};
        rc = check_on_rank0(ctx, o, &g);
    }
    for (int t = 0; t < 4; t++) free(all[t]);
    free(all_rows);
    return rc;
}

static int run(const ring_opts *o, int rank, int P)
{
    attn_ring_split split = o->causal ? ATTN_RING_ZIGZAG : ATTN_RING_CONTIGUOUS;
    int64_t start[2], nch, c, H = o->heads, D = o->dim;
    attn_status st = attn_ring_rows(o->seq, P, rank, split, start, &nch, &c);
    if (st != ATTN_OK) return cli_fail("ring", st);
    int64_t L = nch * c, *rows = malloc(sizeof(int64_t) * (size_t)(L + 1));
    for (int64_t r = 0; r < L; r++) rows[r] = start[r / c] + r % c;
    size_t n = (size_t)(L * H * D) + 1;
    float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    float *out = malloc(n * sizeof(float)), *lse = malloc(sizeof(float) * (size_t)(L * H + 1));
    float *dout = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    if (o->backward) dout = malloc(n * sizeof(float)), dq = malloc(n * sizeof(float)), dk = malloc(n * sizeof(float)),
                     dv = malloc(n * sizeof(float));
    attn_ctx *ctx = NULL;
    int rc = 0;
    if (!rows || !q || !k || !v || !out || !lse || (o->backward && (!dout || !dq || !dk || !dv))) {
        fprintf(stderr, "%s ring: rank %d: out of memory for its %lld rows\n", cli_prog, rank, (long long)L);
        rc = 1;
    } else if ((ctx = cli_make_ctx("ring", o->threads)) == NULL) {
        rc = 1;
    }
    int any = 0; /* every rank stops together when one cannot start */
    MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    double t[2] = {0.0, 0.0};
    attn_ring_stats fs = {0, 0, 0}, bs = {0, 0, 0};
    if (any == 0) {
        fill_rows(q, (uint64_t)o->seed, T_Q, rows, L, H, D);
        fill_rows(k, (uint64_t)o->seed, T_K, rows, L, H, D);
        fill_rows(v, (uint64_t)o->seed, T_V, rows, L, H, D);
        if (o->backward) fill_rows(dout, (uint64_t)o->seed, T_DO, rows, L, H, D);
        attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, L, H, D), tk = attn_tensor_make(k, ATTN_DTYPE_F32, 1, L, H, D);
        attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, 1, L, H, D), to = attn_tensor_make(out, ATTN_DTYPE_F32, 1, L, H, D);
        attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, 1, H, L, 1);
        attn_ring_params rp = attn_ring_params_default();
        rp.sdpa.causal = o->causal;
        rp.split = split;
        rp.seq_len = o->seq;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        st = attn_ring_forward(ctx, MPI_COMM_WORLD, &tq, &tk, &tv, &rp, &to, &tl, &fs);
        t[0] = MPI_Wtime() - t0;
        if (st == ATTN_OK && o->backward) {
            attn_tensor tdo = attn_tensor_make(dout, ATTN_DTYPE_F32, 1, L, H, D), tdq = attn_tensor_make(dq, ATTN_DTYPE_F32, 1, L, H, D);
            attn_tensor tdk = attn_tensor_make(dk, ATTN_DTYPE_F32, 1, L, H, D), tdv = attn_tensor_make(dv, ATTN_DTYPE_F32, 1, L, H, D);
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            st = attn_ring_backward(ctx, MPI_COMM_WORLD, &tq, &tk, &tv, &to, &tdo, &tl, &rp, &tdq, &tdk, &tdv, &bs);
            t[1] = MPI_Wtime() - t0;
        }
        rc = st == ATTN_OK ? 0 : cli_fail("ring", st);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double mine[3] = {(double)fs.bytes_sent, (double)bs.bytes_sent, (double)ru.ru_maxrss / 1024.0};
        double *mems = rank == 0 ? malloc(sizeof(double) * 3 * (size_t)P) : NULL, tmax[2];
        MPI_Gather(mine, 3, MPI_DOUBLE, mems, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        MPI_Reduce(t, tmax, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            printf("ring attention: %d ranks, seq %lld, heads %lld, dim %lld, %s, %s split: %.3f s", P,
                   (long long)o->seq, (long long)H, (long long)D, o->causal ? "causal" : "dense",
                   split == ATTN_RING_ZIGZAG ? "zigzag" : "contiguous", tmax[0]);
            if (o->backward) printf(" forward, %.3f s backward", tmax[1]);
            printf("\n");
            for (int r = 0; r < P; r++) {
                printf("  rank %d: %.0f bytes sent", r, mems[3 * r]);
                if (o->backward) printf(" (+ %.0f in the backward)", mems[3 * r + 1]);
                printf(", peak memory %.1f MB\n", mems[3 * r + 2]);
            }
            fflush(stdout);
        }
        free(mems);
        int failed = 0;
        MPI_Allreduce(&rc, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        float *const bufs[4] = {out, dq, dk, dv};
        if (failed == 0 && o->check) rc = gather_and_check(ctx, o, rank, L, rows, bufs);
        if (failed == 0 && o->check_rows > 0) rc |= check_sample(o, rank, rows, L, out, dq, dk, dv);
        if (failed == 0 && (o->check || o->check_rows > 0)) MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    } else {
        rc = rc ? rc : 1;
    }
    attn_ctx_free(ctx);
    free(q), free(k), free(v), free(out), free(lse), free(rows), free(dout), free(dq), free(dk), free(dv);
    return rc;
}

int cmd_ring(int argc, char **argv)
{
    ring_opts o = {4096, 8, 64, 1, 1, 0, 0, 0, 0};
    const opt opts[] = {
        {"--seq", OPT_INT, &o.seq, 1, 1e9, "sequence length N (a multiple of P, of 2P with --causal)"},
        {"--heads", OPT_INT, &o.heads, 1, 1024, "heads H"},
        {"--dim", OPT_INT, &o.dim, 1, 1024, "head dim D"},
        {"--threads", OPT_INT, &o.threads, 0, 1024, "threads per rank (0: all cores)"},
        {"--seed", OPT_INT, &o.seed, 0, 9e18, "seed of Q, K, V and dO"},
        {"--causal", OPT_FLAG, &o.causal, 0, 0, "causal mask (zigzag split)"},
        {"--backward", OPT_FLAG, &o.backward, 0, 0, "the backward too (dQ, dK, dV for a seeded dO)"},
        {"--check", OPT_FLAG, &o.check, 0, 0, "compare every row with a single-process computation on rank 0"},
        {"--check-rows", OPT_INT, &o.check_rows, 0, 1e6,
         "compare R sampled rows (and the last R rows' dK, dV) with a float64 reference on every rank"},
    };
    char *pos[1];
    int n_pos;
    int r = cli_parse("ring",
                      "mpirun -np P attn ring --seq N --heads H --dim D [--causal] [--backward] "
                      "[--check | --check-rows R]",
                      argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, &n_pos, 0);
    if (r != 0) return r < 0 ? 0 : r;
    int inited = 0, rank = 0, P = 1;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    int rc = run(&o, rank, P);
    MPI_Finalize();
    return rc;
}
