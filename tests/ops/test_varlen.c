/* test_varlen.c - packed variable-length batches (params.cu_seqlens_q/k):
 * forward, backward and weights equal those of the same sequences padded
 * into a batch with q_lens and k_lens (the documented promise: dropout,
 * causal alignment, window and ALiBi per sequence), on the float64
 * reference and on every kernel in float32, BF16 and F16, with empty
 * sequences and sequences without keys; bad offsets are rejected. */
#include "test.h"

#include "core/half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NS = 5, HQ = 4, HKV = 2, DK = 16, DV = 8 };
static const int64_t LQ[NS] = {37, 0, 70, 1, 129}, LK[NS] = {50, 3, 70, 0, 129};

typedef struct {
    double *o, *lse, *dq, *dk, *dv;
} outs;

/* Doubles x[n] into a fresh buffer of dtype dt (F64, F32, BF16, F16), rounded. */
static void *to_dt(const double *x, int64_t n, attn_dtype dt)
{
    void *b = calloc((size_t)(n > 0 ? n : 1), attn_dtype_size(dt));
    for (int64_t e = 0; e < n; e++) {
        if (dt == ATTN_DTYPE_F64) ((double *)b)[e] = x[e];
        else if (dt == ATTN_DTYPE_F32) ((float *)b)[e] = (float)x[e];
        else ((uint16_t *)b)[e] = dt == ATTN_DTYPE_BF16 ? attn__f32_to_bf16((float)x[e]) : attn__f32_to_f16((float)x[e]);
    }
    return b;
}

static double *from_dt(const void *b, int64_t n, attn_dtype dt)
{
    double *x = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int64_t e = 0; e < n; e++) {
        if (dt == ATTN_DTYPE_F64) x[e] = ((const double *)b)[e];
        else if (dt == ATTN_DTYPE_F32) x[e] = ((const float *)b)[e];
        else {
            uint16_t h = ((const uint16_t *)b)[e];
            x[e] = dt == ATTN_DTYPE_BF16 ? attn__bf16_to_f32(h) : attn__f16_to_f32(h);
        }
    }
    return x;
}

/* Forward and backward of [B, Sq, HQ, DK] x [B, Sk, HKV, *] on kernel k in
 * dtype dt (LSE in float32 but for F64). */
static outs run(attn_dtype dt, attn_kernel k, int64_t B, int64_t Sq, int64_t Sk, const double *q, const double *kk,
                const double *v, const double *dout, const attn_sdpa_params *a)
{
    int64_t nq = B * Sq * HQ * DK, nk = B * Sk * HKV * DK, nv = B * Sk * HKV * DV, no = B * Sq * HQ * DV;
    int64_t nl = B * HQ * Sq;
    void *bq = to_dt(q, nq, dt), *bk = to_dt(kk, nk, dt), *bv = to_dt(v, nv, dt), *bdo = to_dt(dout, no, dt);
    void *bo, *bl, *bdq, *bdk, *bdv;
    attn_dtype lt = dt == ATTN_DTYPE_F64 ? dt : ATTN_DTYPE_F32;
    size_t es = attn_dtype_size(dt);
    bo = calloc((size_t)no + 1, es);
    bl = calloc((size_t)nl + 1, attn_dtype_size(lt));
    bdq = calloc((size_t)nq + 1, es);
    bdk = calloc((size_t)nk + 1, es);
    bdv = calloc((size_t)nv + 1, es);
    attn_tensor tq = attn_tensor_make(bq, dt, B, Sq, HQ, DK), tk = attn_tensor_make(bk, dt, B, Sk, HKV, DK);
    attn_tensor tv = attn_tensor_make(bv, dt, B, Sk, HKV, DV), to = attn_tensor_make(bo, dt, B, Sq, HQ, DV);
    attn_tensor tdo = attn_tensor_make(bdo, dt, B, Sq, HQ, DV), tl = attn_tensor_make(bl, lt, B, HQ, Sq, 1);
    attn_tensor tdq = attn_tensor_make(bdq, dt, B, Sq, HQ, DK), tdk = attn_tensor_make(bdk, dt, B, Sk, HKV, DK);
    attn_tensor tdv = attn_tensor_make(bdv, dt, B, Sk, HKV, DV);
    attn_ctx *ctx = t_ctx(2);
    attn_ctx_set_kernel(ctx, k);
    T_EQ_STATUS(attn_sdpa_forward(ctx, &tq, &tk, &tv, a, &to, &tl), ATTN_OK);
    T_EQ_STATUS(attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, a, &tdq, &tdk, &tdv, NULL), ATTN_OK);
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    outs r = {from_dt(bo, no, dt), from_dt(bl, nl, lt), from_dt(bdq, nq, dt), from_dt(bdk, nk, dt),
              from_dt(bdv, nv, dt)};
    free(bq); free(bk); free(bv); free(bdo); free(bo); free(bl); free(bdq); free(bdk); free(bdv);
    return r;
}

static void outs_free(outs *r)
{
    free(r->o); free(r->lse); free(r->dq); free(r->dk); free(r->dv);
}

/* |a - b| <= tol max(1, |b|) (both -inf is equal). */
static bool near_eq(double a, double b, double tol) { return a == b || fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

/* Packed row `pr` of a [1, T, H, D] tensor against padded row (s, r) of [NS, S, H, D]. */
static long rows_differ(const double *packed, int64_t pr, const double *padded, int64_t s, int64_t S, int64_t r,
                        int64_t hd, double tol)
{
    long bad = 0;
    for (int64_t e = 0; e < hd; e++) bad += !near_eq(packed[pr * hd + e], padded[(s * S + r) * hd + e], tol);
    return bad;
}

static void compare(const outs *pk, const outs *pd, const int64_t *cu_q, const int64_t *cu_k, int64_t Tq,
                    int64_t Smq, int64_t Smk, double tol)
{
    long bad = 0;
    for (int64_t s = 0; s < NS; s++) {
        for (int64_t i = 0; i < LQ[s]; i++) {
            bad += rows_differ(pk->o, cu_q[s] + i, pd->o, s, Smq, i, HQ * DV, tol);
            bad += rows_differ(pk->dq, cu_q[s] + i, pd->dq, s, Smq, i, HQ * DK, tol);
            for (int64_t h = 0; h < HQ; h++)
                bad += !near_eq(pk->lse[h * Tq + cu_q[s] + i], pd->lse[(s * HQ + h) * Smq + i], tol);
        }
        for (int64_t j = 0; j < LK[s]; j++) {
            bad += rows_differ(pk->dk, cu_k[s] + j, pd->dk, s, Smk, j, HKV * DK, tol);
            bad += rows_differ(pk->dv, cu_k[s] + j, pd->dv, s, Smk, j, HKV * DV, tol);
        }
    }
    T_EQ_INT(bad, 0);
}

/* The options of round x: none, causal (both alignments), window + ALiBi,
 * soft-cap + dropout + GQA (always). */
static attn_sdpa_params options(int x, const double *slopes)
{
    attn_sdpa_params a = attn_sdpa_params_default();
    a.causal = x == 1 || x == 2;
    a.align = x == 2 ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    if (x == 3) {
        a.window_left = 5;
        a.window_right = 2;
        a.alibi_slopes = slopes;
    }
    if (x == 4) {
        a.softcap = 3.0;
        a.dropout_p = 0.3;
        a.seed = 77;
        a.offset = 2;
    }
    return a;
}

/* Random packed Q [Tq, HQ, DK], K [Tk, HKV, DK], V [Tk, HKV, DV] and dO
 * [Tq, HQ, DV] in double, from *rs (the caller frees them). */
static void packed_inputs(uint64_t *rs, int64_t Tq, int64_t Tk, double **q, double **k, double **v, double **d)
{
    *q = malloc(sizeof(double) * (size_t)(Tq * HQ * DK));
    *k = malloc(sizeof(double) * (size_t)(Tk * HKV * DK));
    *v = malloc(sizeof(double) * (size_t)(Tk * HKV * DV));
    *d = malloc(sizeof(double) * (size_t)(Tq * HQ * DV));
    for (int64_t e = 0; e < Tq * HQ * DK; e++) (*q)[e] = t_rand_uniform(rs, -2, 2);
    for (int64_t e = 0; e < Tk * HKV * DK; e++) (*k)[e] = t_rand_uniform(rs, -2, 2);
    for (int64_t e = 0; e < Tk * HKV * DV; e++) (*v)[e] = t_rand_uniform(rs, -1, 1);
    for (int64_t e = 0; e < Tq * HQ * DV; e++) (*d)[e] = t_rand_uniform(rs, -1, 1);
}

T_TEST(varlen_vs_padded)
{
    int64_t cu_q[NS + 1] = {0}, cu_k[NS + 1] = {0}, Smq = 0, Smk = 0;
    for (int s = 0; s < NS; s++) {
        cu_q[s + 1] = cu_q[s] + LQ[s];
        cu_k[s + 1] = cu_k[s] + LK[s];
        Smq = LQ[s] > Smq ? LQ[s] : Smq;
        Smk = LK[s] > Smk ? LK[s] : Smk;
    }
    int64_t Tq = cu_q[NS], Tk = cu_k[NS];
    uint64_t rs = 21;
    double *q, *k, *v, *d;
    packed_inputs(&rs, Tq, Tk, &q, &k, &v, &d);
    /* the padded batch: sequence s in row s, zeros after its length */
    double *pq = calloc((size_t)(NS * Smq * HQ * DK), sizeof(double)), *pk = calloc((size_t)(NS * Smk * HKV * DK), sizeof(double));
    double *pv = calloc((size_t)(NS * Smk * HKV * DV), sizeof(double)), *pd = calloc((size_t)(NS * Smq * HQ * DV), sizeof(double));
    for (int64_t s = 0; s < NS; s++) {
        memcpy(pq + s * Smq * HQ * DK, q + cu_q[s] * HQ * DK, sizeof(double) * (size_t)(LQ[s] * HQ * DK));
        memcpy(pd + s * Smq * HQ * DV, d + cu_q[s] * HQ * DV, sizeof(double) * (size_t)(LQ[s] * HQ * DV));
        memcpy(pk + s * Smk * HKV * DK, k + cu_k[s] * HKV * DK, sizeof(double) * (size_t)(LK[s] * HKV * DK));
        memcpy(pv + s * Smk * HKV * DV, v + cu_k[s] * HKV * DV, sizeof(double) * (size_t)(LK[s] * HKV * DV));
    }
    const double slopes[HQ] = {0.5, 0.25, 0.125, 0.0625};
    const attn_kernel ks[6] = {ATTN_KERNEL_AUTO, ATTN_KERNEL_TILED,  ATTN_KERNEL_AVX2,
                               ATTN_KERNEL_REF,  ATTN_KERNEL_AVX512, ATTN_KERNEL_AVX512BF16};
    /* F64 on the reference (kx 0), F32, BF16, F16 on each kernel; in a half
     * dtype the two calls may round a result to neighbouring values: 2 units */
    const attn_dtype dts[3] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16, ATTN_DTYPE_F16};
    const double tols[3] = {2e-5, 2e-5 + 0x1p-7, 2e-5 + 0x1p-10};
    for (int x = 0; x < 5; x++)
        for (int kd = 0; kd < 1 + 5 * 3; kd++) {
            int kx = kd == 0 ? 0 : 1 + (kd - 1) / 3;
            if (kx > 0 && !t_kernel_available(ks[kx])) continue;
            attn_dtype dt = kx == 0 ? ATTN_DTYPE_F64 : dts[(kd - 1) % 3];
            double tol = kx == 0 ? 1e-12 : tols[(kd - 1) % 3];
            attn_sdpa_params a = options(x, slopes), b = a;
            a.n_seqs = NS;
            a.cu_seqlens_q = cu_q;
            a.cu_seqlens_k = cu_k;
            b.q_lens = LQ;
            b.k_lens = LK;
            outs r1 = run(dt, ks[kx], 1, Tq, Tk, q, k, v, d, &a);
            outs r2 = run(dt, ks[kx], NS, Smq, Smk, pq, pk, pv, pd, &b);
            compare(&r1, &r2, cu_q, cu_k, Tq, Smq, Smk, tol);
            outs_free(&r1);
            outs_free(&r2);
        }
    free(q); free(k); free(v); free(d); free(pq); free(pk); free(pv); free(pd);
}

/* A packed call on the table's kernels hands the tasks of all its
 * sequences to the pool in one run per pass (src/ops/sdpa.c); each
 * sequence's results are bitwise those of the sequence called alone
 * (B = 1, its own rows), on every float32 kernel, forward and backward,
 * without dropout (with it the batch index differs), on two threads;
 * also for a batch with a sequence of few queries over many keys, whose
 * forward takes the per-sequence decode path. */
static bool same_doubles(const double *a, const double *b, int64_t n)
{
    return n == 0 || memcmp(a, b, sizeof(double) * (size_t)n) == 0;
}

T_TEST(varlen_one_run_equals_per_sequence_calls)
{
    enum { NB = 2, MAXN = 5 };
    static const int64_t lq[NB][MAXN] = {{37, 0, 70, 1, 129}, {3, 5, 1, 0, 0}};
    static const int64_t lk[NB][MAXN] = {{50, 3, 70, 0, 129}, {1100, 7, 1030, 0, 0}};
    static const int64_t ns[NB] = {5, 3};
    const double slopes[HQ] = {0.5, 0.25, 0.125, 0.0625};
    const attn_kernel ks[6] = {ATTN_KERNEL_AUTO,   ATTN_KERNEL_TILED,      ATTN_KERNEL_AVX2,
                               ATTN_KERNEL_AVX512, ATTN_KERNEL_AVX512BF16, ATTN_KERNEL_AMX};
    uint64_t rs = 91;
    long bad = 0, runs = 0;
    for (int set = 0; set < NB; set++) {
        int64_t cq[MAXN + 1] = {0}, ck[MAXN + 1] = {0};
        for (int64_t s = 0; s < ns[set]; s++) cq[s + 1] = cq[s] + lq[set][s], ck[s + 1] = ck[s] + lk[set][s];
        int64_t Tq = cq[ns[set]], Tk = ck[ns[set]];
        double *q, *k, *v, *d;
        packed_inputs(&rs, Tq, Tk, &q, &k, &v, &d);
        for (int x = 0; x < 4; x++)
            for (int kx = 0; kx < 6; kx++) {
                if (!t_kernel_available(ks[kx])) continue;
                attn_sdpa_params a = options(x, slopes), one = a;
                a.n_seqs = ns[set];
                a.cu_seqlens_q = cq;
                a.cu_seqlens_k = ck;
                outs r = run(ATTN_DTYPE_F32, ks[kx], 1, Tq, Tk, q, k, v, d, &a);
                for (int64_t s = 0; s < ns[set]; s++) {
                    int64_t Lq = lq[set][s], Lk = lk[set][s];
                    if (Lq == 0 && Lk == 0) continue;
                    outs r1 = run(ATTN_DTYPE_F32, ks[kx], 1, Lq, Lk, q + cq[s] * HQ * DK, k + ck[s] * HKV * DK,
                                  v + ck[s] * HKV * DV, d + cq[s] * HQ * DV, &one);
                    bad += !same_doubles(r.o + cq[s] * HQ * DV, r1.o, Lq * HQ * DV);
                    bad += !same_doubles(r.dq + cq[s] * HQ * DK, r1.dq, Lq * HQ * DK);
                    bad += !same_doubles(r.dk + ck[s] * HKV * DK, r1.dk, Lk * HKV * DK);
                    bad += !same_doubles(r.dv + ck[s] * HKV * DV, r1.dv, Lk * HKV * DV);
                    for (int64_t h = 0; h < HQ; h++)
                        bad += !same_doubles(r.lse + h * Tq + cq[s], r1.lse + h * Lq, Lq);
                    outs_free(&r1);
                    runs++;
                }
                outs_free(&r);
            }
        free(q); free(k); free(v); free(d);
    }
    if (t_verbose) printf("  %ld sequences compared, %ld differing outputs\n", runs, bad);
    T_EQ_INT(bad, 0);
    T_CHECK(runs > 0);
}

/* Self-attention offsets (cu_seqlens_k NULL) and the weights: each packed
 * row's weights are its sequence's, 0 outside it, summing to 1. */
T_TEST(varlen_weights)
{
    int64_t cu[4] = {0, 3, 3, 20}, T = 20;
    uint64_t rs = 4;
    float q[20 * HQ * DK], k[20 * HKV * DK], v[20 * HKV * DV], o[20 * HQ * DV], lse[HQ * 20], w[2 * 20 * 20];
    for (int e = 0; e < 20 * HQ * DK; e++) q[e] = (float)t_rand_uniform(&rs, -1, 1);
    for (int e = 0; e < 20 * HKV * DK; e++) k[e] = (float)t_rand_uniform(&rs, -1, 1);
    for (int e = 0; e < 20 * HKV * DV; e++) v[e] = (float)t_rand_uniform(&rs, -1, 1);
    attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, T, HQ, DK), tk = attn_tensor_make(k, ATTN_DTYPE_F32, 1, T, HKV, DK);
    attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, 1, T, HKV, DV), to = attn_tensor_make(o, ATTN_DTYPE_F32, 1, T, HQ, DV);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, 1, HQ, T, 1), tw = attn_tensor_make(w, ATTN_DTYPE_F32, 1, 2, T, T);
    attn_sdpa_params a = attn_sdpa_params_default();
    a.causal = 1;
    a.n_seqs = 3;
    a.cu_seqlens_q = cu;
    int64_t heads[2] = {3, 0};
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &tq, &tk, &tv, &a, &to, &tl), ATTN_OK);
    T_EQ_STATUS(attn_sdpa_weights(t_ctx(1), &tq, &tk, &tl, &a, heads, 2, NULL, T, 0, &tw), ATTN_OK);
    long bad = 0;
    for (int hx = 0; hx < 2; hx++)
        for (int64_t i = 0; i < T; i++) {
            int64_t s0 = i < 3 ? 0 : 3;
            double sum = 0.0;
            for (int64_t j = 0; j < T; j++) {
                float x = w[(hx * T + i) * T + j];
                bad += (j < s0 || j > i) && x != 0.0f; /* outside the sequence, or in its future */
                sum += x;
            }
            bad += fabs(sum - 1.0) > 1e-5;
            /* O = W V for this row */
            for (int64_t e = 0; e < DV; e++) {
                double acc = 0.0;
                for (int64_t j = 0; j < T; j++) acc += w[(hx * T + i) * T + j] * v[(j * HKV + heads[hx] / 2) * DV + e];
                bad += fabs(acc - o[(i * HQ + heads[hx]) * DV + e]) > 2e-6;
            }
        }
    T_EQ_INT(bad, 0);
}

T_TEST(varlen_bad_offsets)
{
    float buf[64] = {0};
    attn_tensor q = attn_tensor_make(buf, ATTN_DTYPE_F32, 1, 4, 1, 2), o = attn_tensor_make(buf + 32, ATTN_DTYPE_F32, 1, 4, 1, 2);
    attn_sdpa_params a = attn_sdpa_params_default();
    int64_t cu[3] = {0, 2, 4};
    a.n_seqs = 2;
    a.cu_seqlens_q = cu;
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &q, &q, &q, &a, &o, NULL), ATTN_OK);
    const int64_t bad[3][3] = {{1, 2, 4}, {0, 3, 2}, {0, 2, 3}};
    const char *names[3] = {"cu_seqlens_q[0]", "cu_seqlens_q[2]", "cu_seqlens_q[2]"};
    for (int x = 0; x < 3; x++) {
        memcpy(cu, bad[x], sizeof cu);
        o = attn_tensor_make(buf + 32, ATTN_DTYPE_F32, 1, 4, 1, 2);
        buf[32] = 123.0f;
        T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &q, &q, &q, &a, &o, NULL), ATTN_BAD_PARAM);
        T_CHECK(strstr(attn_last_error(), names[x]) != NULL);
        T_CHECK(buf[32] == 123.0f); /* nothing written */
    }
    cu[0] = 0; cu[1] = 2; cu[2] = 4;
    int64_t lens[1] = {4};
    a.q_lens = lens;
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &q, &q, &q, &a, &o, NULL), ATTN_BAD_PARAM);
    a.q_lens = NULL;
    attn_tensor bias = attn_tensor_make(buf + 48, ATTN_DTYPE_F32, 1, 1, 4, 4);
    a.bias = &bias;
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &q, &q, &q, &a, &o, NULL), ATTN_UNSUPPORTED);
    a.bias = NULL;
    a.n_seqs = 0;
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &q, &q, &q, &a, &o, NULL), ATTN_BAD_PARAM);
    a.n_seqs = 2;
    attn_tensor q2 = attn_tensor_make(buf, ATTN_DTYPE_F32, 2, 2, 1, 2), o2 = attn_tensor_make(buf + 32, ATTN_DTYPE_F32, 2, 2, 1, 2);
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &q2, &q2, &q2, &a, &o2, NULL), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "q.dim[0]") != NULL);
}
