/* cmd_ring.c - `mpirun -np P attn ring --seq N --heads H --dim D [--causal]
 * [--check]`: ring attention (attn/dist.h) over P ranks, each holding only
 * its rows of Q, K and V (values drawn from the global position, so they
 * do not depend on P). Prints the time, the bytes each rank sent and each
 * rank's peak memory. --check gathers O on rank 0 and compares it with a
 * single-process computation done there in chunks of queries (memory
 * linear in N); a mismatch exits 1 on every rank. Built only with MPI. */
#include "cli.h"

#include <attn/dist.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
    int64_t seq, heads, dim, threads, seed;
    int causal, check;
} ring_opts;

/* Rank 0: the whole sequence's O in chunks of 512 queries against all keys
 * (ATTN_ALIGN_OFFSET places each chunk), compared with the gathered ring O
 * (ring rows in rank order, `rows` their global positions). */
static int check_on_rank0(attn_ctx *ctx, const ring_opts *o, const float *ring_o, const int64_t *rows)
{
    int64_t S = o->seq, H = o->heads, D = o->dim, C = 512;
    float *q = malloc(sizeof(float) * (size_t)(C * H * D)), *k = malloc(sizeof(float) * (size_t)(S * H * D));
    float *v = malloc(sizeof(float) * (size_t)(S * H * D)), *out = malloc(sizeof(float) * (size_t)(C * H * D));
    int64_t *all = calloc((size_t)S, sizeof(int64_t)), *where = calloc((size_t)S, sizeof(int64_t));
    for (int64_t j = 0; j < S; j++) all[j] = j;
    for (int64_t r = 0; r < S; r++) where[rows[r]] = r; /* global row -> its place in ring_o */
    fill_rows(k, (uint64_t)o->seed, 1, all, S, H, D);
    fill_rows(v, (uint64_t)o->seed, 2, all, S, H, D);
    double worst = 0.0;
    attn_status st = ATTN_OK;
    for (int64_t i0 = 0; i0 < S && st == ATTN_OK; i0 += C) {
        int64_t n = S - i0 < C ? S - i0 : C;
        fill_rows(q, (uint64_t)o->seed, 0, all + i0, n, H, D);
        attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, n, H, D), tk = attn_tensor_make(k, ATTN_DTYPE_F32, 1, S, H, D);
        attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, 1, S, H, D), to = attn_tensor_make(out, ATTN_DTYPE_F32, 1, n, H, D);
        attn_sdpa_params a = attn_sdpa_params_default();
        a.causal = o->causal;
        a.align = ATTN_ALIGN_OFFSET;
        a.align_offset = i0;
        st = attn_sdpa_forward(ctx, &tq, &tk, &tv, &a, &to, NULL);
        for (int64_t r = 0; st == ATTN_OK && r < n; r++)
            for (int64_t e = 0; e < H * D; e++) {
                double d = fabs((double)out[r * H * D + e] - ring_o[where[i0 + r] * H * D + e]);
                worst = d > worst || isnan(d) ? (isnan(d) ? INFINITY : d) : worst;
            }
    }
    free(q); free(k); free(v); free(out); free(all); free(where);
    if (st != ATTN_OK) return cli_fail("ring", st);
    bool ok = worst <= 1e-4;
    printf("check: max |O_ring - O_single| = %.3g (limit 1e-4): %s\n", worst, ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
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
    float *out = malloc(n * sizeof(float));
    fill_rows(q, (uint64_t)o->seed, 0, rows, L, H, D);
    fill_rows(k, (uint64_t)o->seed, 1, rows, L, H, D);
    fill_rows(v, (uint64_t)o->seed, 2, rows, L, H, D);
    attn_ctx *ctx = cli_make_ctx("ring", o->threads);
    if (ctx == NULL) return 1;
    attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, L, H, D), tk = attn_tensor_make(k, ATTN_DTYPE_F32, 1, L, H, D);
    attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, 1, L, H, D), to = attn_tensor_make(out, ATTN_DTYPE_F32, 1, L, H, D);
    attn_ring_params rp = attn_ring_params_default();
    rp.sdpa.causal = o->causal;
    rp.split = split;
    rp.seq_len = o->seq;
    attn_ring_stats stats;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    st = attn_ring_forward(ctx, MPI_COMM_WORLD, &tq, &tk, &tv, &rp, &to, NULL, &stats);
    double t = MPI_Wtime() - t0;
    int rc = st == ATTN_OK ? 0 : cli_fail("ring", st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mem[2] = {(double)stats.bytes_sent, (double)ru.ru_maxrss / 1024.0}, *mems = malloc(sizeof(double) * 2 * (size_t)P);
    MPI_Gather(mem, 2, MPI_DOUBLE, mems, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double tmax;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("ring attention: %d ranks, seq %lld, heads %lld, dim %lld, %s, %s split: %.3f s\n", P,
               (long long)o->seq, (long long)H, (long long)D, o->causal ? "causal" : "dense",
               split == ATTN_RING_ZIGZAG ? "zigzag" : "contiguous", tmax);
        for (int r = 0; r < P; r++)
            printf("  rank %d: %.0f bytes sent, peak memory %.1f MB\n", r, mems[2 * r], mems[2 * r + 1]);
    }
    if (o->check && rc == 0) { /* O and the rows to rank 0, compared there */
        float *all_o = rank == 0 ? malloc(sizeof(float) * (size_t)(o->seq * H * D) + 1) : NULL;
        int64_t *all_rows = rank == 0 ? malloc(sizeof(int64_t) * (size_t)o->seq + 1) : NULL;
        MPI_Gather(out, (int)(L * H * D), MPI_FLOAT, all_o, (int)(L * H * D), MPI_FLOAT, 0, MPI_COMM_WORLD);
        MPI_Gather(rows, (int)L, MPI_INT64_T, all_rows, (int)L, MPI_INT64_T, 0, MPI_COMM_WORLD);
        if (rank == 0) rc = check_on_rank0(ctx, o, all_o, all_rows);
        MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
        free(all_o);
        free(all_rows);
    }
    attn_ctx_free(ctx);
    free(q); free(k); free(v); free(out); free(rows); free(mems);
    return rc;
}

int cmd_ring(int argc, char **argv)
{
    ring_opts o = {4096, 8, 64, 1, 1, 0, 0};
    const opt opts[] = {
        {"--seq", OPT_INT, &o.seq, 1, 1e9, "sequence length N (a multiple of P, of 2P with --causal)"},
        {"--heads", OPT_INT, &o.heads, 1, 1024, "heads H"},
        {"--dim", OPT_INT, &o.dim, 1, 1024, "head dim D"},
        {"--threads", OPT_INT, &o.threads, 0, 1024, "threads per rank (0: all cores)"},
        {"--seed", OPT_INT, &o.seed, 0, 9e18, "seed of Q, K, V"},
        {"--causal", OPT_FLAG, &o.causal, 0, 0, "causal mask (zigzag split)"},
        {"--check", OPT_FLAG, &o.check, 0, 0, "compare with a single-process computation on rank 0"},
    };
    char *pos[1];
    int n_pos;
    int r = cli_parse("ring", "mpirun -np P attn ring --seq N --heads H --dim D [--causal] [--check]", argc, argv,
                      opts, (int)(sizeof opts / sizeof opts[0]), pos, &n_pos, 0);
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
