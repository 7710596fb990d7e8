/* test_contracts.c - the exact contracts of docs/testing.md (numbered as
 * there), checked with no tolerance on every kernel path this machine has
 * (the table's kernels of every instruction set and the reference kernel
 * on the call's tensors) and the float64 reference, in every dtype
 * combination: F32, BF16, F16, and F32 Q over a BF16 or F16 K/V (forward
 * only: its gradients are not checked). The inputs of each problem are
 * rounded to the combination's dtypes, so the float64 reference solves the
 * same problem. */
#include "problem.h"

#include "core/half.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* The table's kernels of every instruction set, then the reference. */
enum { PATH_TILED, PATH_AVX2, PATH_AVX512, PATH_AVX512BF16, PATH_AMX, PATH_REF, PATH_REF64, PATHS };
static const char *path_name[PATHS] = {"tiled", "avx2", "avx512", "avx512bf16", "amx", "ref", "ref64"};
static const attn_kernel path_kernel[PATHS] = {ATTN_KERNEL_TILED,      ATTN_KERNEL_AVX2, ATTN_KERNEL_AVX512,
                                               ATTN_KERNEL_AVX512BF16, ATTN_KERNEL_AMX,  ATTN_KERNEL_REF,
                                               ATTN_KERNEL_AUTO};

/* The dtype combinations: Q's (and O's) and K/V's. */
enum { DT_F32, DT_BF16, DT_F16, DT_MIXED_BF16, DT_MIXED_F16, N_DT };
static const attn_dtype dt_q[N_DT] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16, ATTN_DTYPE_F16, ATTN_DTYPE_F32,
                                      ATTN_DTYPE_F32};
static const attn_dtype dt_kv[N_DT] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16, ATTN_DTYPE_F16, ATTN_DTYPE_BF16,
                                       ATTN_DTYPE_F16};
static const char *const dt_name[N_DT] = {"f32", "bf16", "f16", "f32+bf16kv", "f32+f16kv"};
static int cur; /* the combination the contracts run in now */

static bool with_grad(void) { return cur < DT_MIXED_BF16; }

/* Unit roundoff of the outputs O, dQ, dK, dV (0: float32). */
static double out_roundoff(void)
{
    return dt_q[cur] == ATTN_DTYPE_BF16 ? 0x1p-8 : dt_q[cur] == ATTN_DTYPE_F16 ? 0x1p-11 : 0.0;
}

/* Runs contract fn once per dtype combination (on the paths this machine
 * has; the others are named as skipped). */
static void every_dtype(void (*fn)(void))
{
    t_report_absent_kernels();
    for (cur = 0; cur < N_DT; cur++) fn();
    cur = DT_F32;
}

/* Paths this CPU and build can run (all but the portable one may be absent). */
static bool path_ok(int path) { return t_kernel_available(path_kernel[path]); }

/* Rounds the inputs of P (made, and planted with what a contract needs)
 * to the current dtypes. */
static void as_cur(t_problem *P) { t_problem_as(P, dt_q[cur], dt_kv[cur]); }

static void run_path(const t_problem *P, int path, int threads, int layout, t_result *r)
{
    attn_ctx *ctx = t_ctx(threads);
    attn_ctx_set_kernel(ctx, path_kernel[path]);
    t_run(P, path == PATH_REF64 ? ATTN_DTYPE_F64 : dt_q[cur], ctx, layout, with_grad(), r);
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    T_EQ_STATUS(r->status, ATTN_OK);
    T_CHECK(r->guards_ok);
}

static t_cfg base_cfg(uint64_t seed)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = 2; c.Sq = 37; c.Sk = 70; c.Hq = 4; c.Hkv = 2; c.Dk = 9; c.Dv = 5;
    c.window_left = c.window_right = -1;
    c.threads = 2;
    c.seed = seed;
    c.bias32 = cur == DT_BF16; /* a float32 bias under BF16 Q; F16 Q takes an F16 one */
    return c;
}

static bool row_is(const double *o, int64_t n, double want)
{
    for (int64_t x = 0; x < n; x++)
        if (!(o[x] == want)) return false;
    return true;
}

static bool all_finite(const double *x, int64_t n)
{
    for (int64_t a = 0; a < n; a++)
        if (!isfinite(x[a])) return false;
    return true;
}

/* 1. Every way of masking a whole row gives O = 0, LSE = -inf, zero dQ, no NaN. */
static void masked_rows(void)
{
    for (int kind = 0; kind < 7; kind++) {
        t_cfg c = base_cfg(100 + (uint64_t)kind);
        switch (kind) {
        case 0: c.causal = 1; c.align = ATTN_ALIGN_BOTTOM_RIGHT; c.Sq = 70; c.Sk = 37; break; /* rows < 33 */
        case 1: c.window_left = 0; c.window_right = 0; c.Sq = 70; c.Sk = 37; break;          /* rows >= 37 */
        case 2: c.klens = true; break;
        case 3: c.qlens = true; break;
        case 4: c.mask_kind = MASK_FULL; break;
        case 5: c.bias_kind = BIAS_FULL; c.dbias = true; break;
        default: c.Sk = 0; break;
        }
        t_problem P;
        t_problem_make(&P, &c);
        if (kind == 2) { P.klens[0] = 0; P.klens[1] = 3; }
        if (kind == 3) { P.qlens[0] = 0; P.qlens[1] = 20; }
        int64_t dead_b = 0, dead_i = 5; /* a row this kind masks completely */
        if (kind == 1) dead_i = 50;
        if (kind == 3) { dead_b = 1; dead_i = 30; }
        for (int64_t h = 0; h < c.Hq; h++) {
            for (int64_t j = 0; kind == 4 && j < c.Sk; j++) P.mask[((dead_b * c.Hq + h) * c.Sq + dead_i) * c.Sk + j] = 0;
            for (int64_t j = 0; kind == 5 && j < c.Sk; j++)
                P.bias[((dead_b * c.Hq + h) * c.Sq + dead_i) * c.Sk + j] = (j % 2) ? -INFINITY : -FLT_MAX;
        }
        as_cur(&P); /* in a half bias -FLT_MAX becomes -inf */
        for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
            t_result r;
            run_path(&P, path, 2, LAYOUT_BSHD, &r);
            for (int64_t h = 0; h < c.Hq; h++) {
                int64_t row = (dead_b * c.Sq + dead_i) * c.Hq + h;
                t_checks++;
                if (!row_is(r.o + row * c.Dv, c.Dv, 0.0) || r.lse[(dead_b * c.Hq + h) * c.Sq + dead_i] != -INFINITY ||
                    (with_grad() && !row_is(r.dq + row * c.Dk, c.Dk, 0.0)))
                    t_fail(__FILE__, __LINE__, "masked row, kind %d, %s %s: O/LSE/dQ not 0/-inf/0", kind,
                           dt_name[cur], path_name[path]);
            }
            int64_t no = c.B * c.Sq * c.Hq * c.Dv;
            for (int64_t x = 0; x < no; x++) T_CHECK(!isnan(r.o[x]));
            if (!with_grad()) {
                t_result_free(&r);
                continue;
            }
            T_CHECK(all_finite(r.dq, c.B * c.Sq * c.Hq * c.Dk));
            T_CHECK(all_finite(r.dk, c.B * c.Sk * c.Hkv * c.Dk));
            if (kind == 2) /* key length 0: batch 0 gets zero dK, dV */
                T_CHECK(row_is(r.dk, c.Sk * c.Hkv * c.Dk, 0.0) && row_is(r.dv, c.Sk * c.Hkv * c.Dv, 0.0));
            t_result_free(&r);
        }
        t_problem_free(&P);
    }
}

void test_contract_masked_rows(void) { every_dtype(masked_rows); }

/* 2. NaN/Inf planted where masks hide them leave every output bitwise equal. */
static void masked_never_read(void)
{
    for (int variant = 0; variant < 10; variant++) {
        t_cfg c = base_cfg(200 + (uint64_t)variant);
        c.qlens = variant >= 6;
        if (variant == 4 || variant == 5) { /* decode shape: few queries, keys split across tasks */
            c.Sq = 2;
            c.Sk = 1100;
        }
        if (variant >= 8) /* whole 64-key tiles with hidden keys: the x86 forward's packed K/V records */
            c.Sk = 200;
        c.klens = true;
        c.causal = variant & 1;
        c.align = ATTN_ALIGN_BOTTOM_RIGHT;
        c.mask_kind = variant == 2 || variant == 4 || variant == 8   ? MASK_KEYS
                      : variant == 3 || variant == 5 || variant == 9 ? MASK_FULL
                                                                     : MASK_NONE;
        c.bias_kind = BIAS_FULL;
        c.dbias = variant % 2 == 0; /* without a bias gradient the AVX2 backward is fused */
        c.window_left = variant == 3 ? 9 : -1;
        c.dropout_p = variant == 1 ? 0.2 : 0.0;
        t_problem clean, dirty;
        t_problem_make(&clean, &c);
        t_problem_make(&dirty, &c);
        dirty.klens[0] = clean.klens[0] = c.Sk > 1000 ? 1030 : c.Sk > 100 ? 150 : 40;
        dirty.klens[1] = clean.klens[1] = c.Sk > 1000 ? 700 : c.Sk > 100 ? 130 : 61;
        if (c.qlens) { /* the fused and the two-pass backward, with padding query rows */
            dirty.qlens[0] = clean.qlens[0] = c.Sq - 7;
            dirty.qlens[1] = clean.qlens[1] = c.Sq / 2;
        }
        for (int64_t b = 0; b < c.B; b++)
            for (int64_t j = 0; j < c.Sk; j++) {
                bool hidden = j >= dirty.klens[b] || (c.mask_kind == MASK_KEYS && !dirty.mask[b * c.Sk + j]);
                if (!hidden) continue; /* a key no query of batch b may see */
                for (int64_t x = 0; x < c.Hkv * c.Dk; x++) dirty.k[(b * c.Sk + j) * c.Hkv * c.Dk + x] = NAN;
                for (int64_t x = 0; x < c.Hkv * c.Dv; x++) dirty.v[(b * c.Sk + j) * c.Hkv * c.Dv + x] = (x % 2) ? INFINITY : NAN;
            }
        /* padding query rows (i >= q_lens[b]): their Q and dO are never read */
        if (c.qlens)
            for (int64_t b = 0; b < c.B; b++)
                for (int64_t i = dirty.qlens[b]; i < c.Sq; i++) {
                    for (int64_t x = 0; x < c.Hq * c.Dk; x++) dirty.q[(b * c.Sq + i) * c.Hq * c.Dk + x] = NAN;
                    for (int64_t x = 0; x < c.Hq * c.Dv; x++) dirty.dout[(b * c.Sq + i) * c.Hq * c.Dv + x] = NAN;
                }
        /* bias entries of masked (i, j): lengths, causal, window, bool mask */
        for (int64_t b = 0; b < c.B; b++)
            for (int64_t h = 0; h < c.Hq; h++)
                for (int64_t i = 0; i < c.Sq; i++)
                    for (int64_t j = 0; j < c.Sk; j++) {
                        int64_t lk = dirty.klens[b], ia = i + lk - (c.qlens ? dirty.qlens[b] : c.Sq), x = ((b * c.Hq + h) * c.Sq + i) * c.Sk + j;
                        uint8_t m = !dirty.mask ? 1 : c.mask_kind == MASK_KEYS ? dirty.mask[b * c.Sk + j] : dirty.mask[x];
                        bool masked = j >= lk || (c.causal && j > ia) || (c.window_left >= 0 && j < ia - c.window_left) || !m ||
                                      (c.qlens && i >= dirty.qlens[b]);
                        if (masked) dirty.bias[x] = NAN;
                    }
        as_cur(&clean);
        as_cur(&dirty);
        for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
            t_result a, b;
            run_path(&clean, path, 2, LAYOUT_BSHD, &a);
            run_path(&dirty, path, 3, LAYOUT_BSHD, &b);
            int64_t n[6] = {c.B * c.Sq * c.Hq * c.Dv, c.B * c.Hq * c.Sq, c.B * c.Sq * c.Hq * c.Dk,
                            c.B * c.Sk * c.Hkv * c.Dk, c.B * c.Sk * c.Hkv * c.Dv, t_numel(clean.bias_dim)};
            double *pa[6] = {a.o, a.lse, a.dq, a.dk, a.dv, a.dbias}, *pb[6] = {b.o, b.lse, b.dq, b.dk, b.dv, b.dbias};
            for (int t = 0; t < (with_grad() ? 6 : 2); t++) {
                t_checks++;
                if (memcmp(pa[t], pb[t], (size_t)n[t] * sizeof(double)) != 0)
                    t_fail(__FILE__, __LINE__, "variant %d, %s %s: output %d changed by NaN in masked inputs",
                           variant, dt_name[cur], path_name[path], t);
            }
            t_result_free(&a);
            t_result_free(&b);
        }
        t_problem_free(&clean);
        t_problem_free(&dirty);
    }
}

void test_contract_masked_never_read(void) { every_dtype(masked_never_read); }

/* 3. A NaN in an unmasked input reaches exactly the rows that see it. */
static void nan_propagation(void)
{
    for (int where = 0; where < 4; where++) { /* in q, k, v; 3: in v without a mask (whole 64-key tiles) */
        t_cfg c = base_cfg(300 + (uint64_t)where);
        c.causal = where < 3;
        t_problem P;
        t_problem_make(&P, &c);
        int64_t jn = 20, in = 11; /* key row 20 of kv head 1, batch 1; or query row 11 */
        if (where == 0) P.q[((1 * c.Sq + in) * c.Hq + 2) * c.Dk + 4] = NAN;
        if (where == 1) P.k[((1 * c.Sk + jn) * c.Hkv + 1) * c.Dk + 3] = NAN;
        if (where >= 2) P.v[((1 * c.Sk + jn) * c.Hkv + 1) * c.Dv + 2] = NAN;
        as_cur(&P);
        for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
            t_result r;
            run_path(&P, path, 2, LAYOUT_BSHD, &r);
            for (int64_t b = 0; b < c.B; b++)
                for (int64_t i = 0; i < c.Sq; i++)
                    for (int64_t h = 0; h < c.Hq; h++) {
                        bool depends = b == 1 && (where == 0 ? (i == in && h == 2) : (h / 2 == 1 && (where == 3 || i >= jn)));
                        const double *o = r.o + ((b * c.Sq + i) * c.Hq + h) * c.Dv;
                        int nans = 0;
                        for (int64_t x = 0; x < c.Dv; x++) nans += isnan(o[x]);
                        /* A NaN in V reaches only its own column; in q or k the whole row. */
                        int want = !depends ? 0 : where >= 2 ? 1 : (int)c.Dv;
                        t_checks++;
                        if (nans != want)
                            t_fail(__FILE__, __LINE__, "NaN in %s, %s %s: row b=%lld i=%lld h=%lld has %d NaN, want %d",
                                   where == 0 ? "q" : where == 1 ? "k" : where == 2 ? "v" : "v (no mask)", dt_name[cur], path_name[path], (long long)b,
                                   (long long)i, (long long)h, nans, want);
                    }
            t_result_free(&r);
        }
        t_problem_free(&P);
    }
}

void test_contract_nan_propagation(void) { every_dtype(nan_propagation); }

/* 4. Huge logits, equal logits, and a row of -FLT_MAX bias (-inf in a
 * half bias). "Huge" is as large as the dtypes hold: 1e30 in a bias (60000
 * in an F16 one), and 133120 in Q, K, V (60000 where one is F16). */
static void huge_logits(void)
{
    t_cfg c = base_cfg(400);
    c.B = 1; c.Hq = c.Hkv = 1; c.Sq = 3; c.Sk = 5; c.Dk = c.Dv = 64;
    c.bias_kind = BIAS_FULL;
    bool f16 = dt_q[cur] == ATTN_DTYPE_F16 || dt_kv[cur] == ATTN_DTYPE_F16;
    t_problem P;
    t_problem_make(&P, &c);
    double huge = dt_q[cur] == ATTN_DTYPE_F16 && !c.bias32 ? 60000.0 : 1e30, u = out_roundoff();
    for (int64_t x = 0; x < c.Sq * c.Sk; x++) P.bias[x] = 0.0;
    for (int64_t j = 0; j < c.Sk; j++) P.bias[0 * c.Sk + j] = j == 2 ? huge : 0.0; /* row 0: one huge logit */
    for (int64_t j = 0; j < c.Sk; j++) P.bias[2 * c.Sk + j] = -FLT_MAX;            /* row 2: all -FLT_MAX */
    for (int64_t x = 0; x < c.Sq * c.Dk; x++) P.q[x] = x >= c.Dk ? 0.0 : P.q[x];   /* row 1: equal logits */
    as_cur(&P);
    for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
        t_result r;
        run_path(&P, path, 1, LAYOUT_BSHD, &r);
        for (int64_t d = 0; d < c.Dv; d++) {
            T_CHECK(r.o[d] == P.v[2 * c.Dv + d]);
            double mean = 0.0;
            for (int64_t j = 0; j < c.Sk; j++) mean += P.v[j * c.Dv + d] / c.Sk;
            T_LE(fabs(r.o[c.Dv + d] - mean), path == PATH_REF64 ? 1e-15 : 1e-6 + u);
            T_CHECK(r.o[2 * c.Dv + d] == 0.0);
        }
        T_CHECK(r.lse[2] == -INFINITY);
        T_CHECK(isfinite(r.lse[0]) && isfinite(r.lse[1]));
        t_result_free(&r);
    }
    t_problem_free(&P);
    /* q = k = v = X everywhere: huge but equal logits, a uniform row. */
    double X = f16 ? 60000.0 : 133120.0;
    c = base_cfg(401);
    c.Dk = c.Dv = 64;
    t_problem_make(&P, &c);
    int64_t nq = c.B * c.Sq * c.Hq * c.Dk, nk = c.B * c.Sk * c.Hkv * c.Dk;
    for (int64_t x = 0; x < nq; x++) P.q[x] = X;
    for (int64_t x = 0; x < nk; x++) P.k[x] = P.v[x] = X;
    as_cur(&P);
    for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
        t_result r;
        run_path(&P, path, 2, LAYOUT_BSHD, &r);
        int64_t no = c.B * c.Sq * c.Hq * c.Dv;
        T_CHECK(all_finite(r.o, no) && all_finite(r.lse, c.B * c.Hq * c.Sq));
        for (int64_t x = 0; x < no; x++) T_LE(fabs(r.o[x] - X), X * (1e-6 + u));
        T_CHECK(!with_grad() || (all_finite(r.dq, nq) && all_finite(r.dk, nk)));
        t_result_free(&r);
    }
    t_problem_free(&P);
}

void test_contract_huge_logits(void) { every_dtype(huge_logits); }

/* 6. Sq = 0, B = 0, H = 0 are no-ops (backward with Sq = 0 zeroes dK, dV). */
static void sizes(void)
{
    static const int64_t shapes[][4] = {{1, 0, 6, 2}, {0, 4, 6, 2}, {2, 4, 6, 0}, {2, 4, 0, 2}};
    for (size_t s = 0; s < 4; s++) {
        t_cfg c = base_cfg(500 + s);
        c.B = shapes[s][0]; c.Sq = shapes[s][1]; c.Sk = shapes[s][2];
        c.Hq = c.Hkv = shapes[s][3];
        t_problem P;
        t_problem_make(&P, &c);
        as_cur(&P);
        for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
            t_result r;
            run_path(&P, path, 2, LAYOUT_BSHD, &r);
            int64_t nk = c.B * c.Sk * c.Hkv * c.Dk, nv = c.B * c.Sk * c.Hkv * c.Dv;
            bool g = with_grad();
            if (c.Sq == 0 && g) T_CHECK(row_is(r.dk, nk, 0.0) && row_is(r.dv, nv, 0.0));
            if (c.Sk == 0)
                T_CHECK(row_is(r.o, c.B * c.Sq * c.Hq * c.Dv, 0.0) && (!g || row_is(r.dq, c.B * c.Sq * c.Hq * c.Dk, 0.0)));
            t_result_free(&r);
        }
        t_problem_free(&P);
    }
}

void test_contract_sizes(void) { every_dtype(sizes); }

/* a and b bitwise equal in every output (of the forward only without gradients). */
static bool same_result(const t_cfg *c, const t_result *a, const t_result *b, int64_t nb)
{
    int64_t n[6] = {c->B * c->Sq * c->Hq * c->Dv, c->B * c->Hq * c->Sq, c->B * c->Sq * c->Hq * c->Dk,
                    c->B * c->Sk * c->Hkv * c->Dk, c->B * c->Sk * c->Hkv * c->Dv, nb};
    double *pa[6] = {a->o, a->lse, a->dq, a->dk, a->dv, a->dbias}, *pb[6] = {b->o, b->lse, b->dq, b->dk, b->dv, b->dbias};
    for (int t = 0; t < (with_grad() ? 6 : 2); t++)
        if (n[t] > 0 && memcmp(pa[t], pb[t], (size_t)n[t] * sizeof(double)) != 0) return false;
    return true;
}

static t_cfg busy_cfg(uint64_t seed)
{
    t_cfg c = base_cfg(seed);
    c.Sq = 70; c.Sk = 129;
    c.causal = 1; c.align = ATTN_ALIGN_BOTTOM_RIGHT; c.window_left = 50;
    c.bias_kind = BIAS_SHARED; c.dbias = true; c.mask_kind = MASK_KEYS;
    c.softcap = 3.0; c.alibi = true; c.dropout_p = 0.17; c.klens = true; c.qlens = true;
    return c;
}

/* 8. Every layout gives results bitwise equal to the contiguous one. */
static void strided_views(void)
{
    t_cfg c = busy_cfg(800);
    t_problem P;
    t_problem_make(&P, &c);
    as_cur(&P);
    for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
        t_result base;
        run_path(&P, path, 2, LAYOUT_BSHD, &base);
        for (int layout = 1; layout < LAYOUT_KINDS; layout++) {
            t_result r;
            run_path(&P, path, 2, layout, &r);
            t_checks++;
            if (!same_result(&c, &base, &r, t_numel(P.bias_dim)))
                t_fail(__FILE__, __LINE__, "%s %s: layout %d differs from contiguous", dt_name[cur], path_name[path],
                       layout);
            t_result_free(&r);
        }
        t_result_free(&base);
    }
    t_problem_free(&P);
}

void test_contract_strided_views(void) { every_dtype(strided_views); }

/* dst [n] = src [n] in dtype dt (F32, BF16, F16). */
static void store_as(void *dst, attn_dtype dt, const float *src, int n)
{
    for (int a = 0; a < n; a++)
        if (dt == ATTN_DTYPE_F32) ((float *)dst)[a] = src[a];
        else ((uint16_t *)dst)[a] = dt == ATTN_DTYPE_BF16 ? attn__f32_to_bf16(src[a]) : attn__f32_to_f16(src[a]);
}

/* 9. Inputs may share memory (self-attention with q = k = v; K = V under
 * the mixed dtypes); outputs may not. */
static void overlap(void)
{
    enum { S = 9, H = 2, D = 4, N = S * H * D };
    float src[N];
    unsigned char x[N * 4], kv[N * 4], kv2[N * 4], o[N * 4], o2[N * 4];
    attn_dtype dq = dt_q[cur], dkv = dt_kv[cur];
    bool mixed = dq != dkv;
    uint64_t s = 9;
    for (int a = 0; a < N; a++) src[a] = (float)t_rand_uniform(&s, -1, 1);
    store_as(x, dq, src, N);
    store_as(kv, dkv, src, N);
    store_as(kv2, dkv, src, N);
    memset(o, 0, sizeof o);
    memset(o2, 0, sizeof o2);
    attn_tensor t = attn_tensor_make(x, dq, 1, S, H, D), tkv = attn_tensor_make(kv, dkv, 1, S, H, D);
    attn_tensor tk2 = attn_tensor_make(kv2, dkv, 1, S, H, D);
    attn_tensor to = attn_tensor_make(o, dq, 1, S, H, D), to2 = attn_tensor_make(o2, dq, 1, S, H, D);
    const attn_tensor *shared = mixed ? &tkv : &t; /* K and V: the same memory as Q, or as each other */
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &t, shared, shared, NULL, &to, NULL), ATTN_OK);
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &t, &tk2, &tk2, NULL, &to2, NULL), ATTN_OK);
    T_CHECK(memcmp(o, o2, sizeof o) == 0);
    /* in-place (o = q) is rejected and leaves q unchanged */
    attn_tensor inplace = t;
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &t, &tk2, &tk2, NULL, &inplace, NULL), ATTN_OVERLAP);
    unsigned char want[N * 4];
    store_as(want, dq, src, N);
    T_CHECK(memcmp(x, want, (size_t)N * attn_dtype_size(dq)) == 0);
}

void test_contract_overlap(void) { every_dtype(overlap); }

/* 10. Repeated calls and every thread count give bitwise identical results.
 * Shapes: the busy one; few queries against many keys (the key-split
 * decode path); many key tiles (2 x 1100 keys: 36 tiles, so that 1 to 3
 * threads pack K and V a key tile of every head per task, 8 threads one
 * head's tile per task: src/ops/sdpa.c make_records). */
static void determinism(void)
{
    for (int shape = 0; shape < 3; shape++) {
    t_cfg c = busy_cfg(1000);
    if (shape == 1) {
        c.Sq = 3;
        c.Sk = 2100;
    } else {
        c.dbias = false; /* the fused AVX2 backward */
    }
    if (shape == 2) {
        c.Sq = 200;
        c.Sk = 1100;
    }
    t_problem P;
    t_problem_make(&P, &c);
    as_cur(&P);
    static const int threads[] = {1, 2, 3, 8};
    for (int path = PATH_TILED; path < PATH_REF; path++) {
        if (!path_ok(path)) continue;
        t_result base;
        run_path(&P, path, 1, LAYOUT_BSHD, &base);
        for (int rep = 0; rep < 2; rep++)
            for (int x = 0; x < 4; x++) {
                t_result r;
                run_path(&P, path, threads[x], LAYOUT_BSHD, &r);
                t_checks++;
                if (!same_result(&c, &base, &r, t_numel(P.bias_dim)))
                    t_fail(__FILE__, __LINE__, "%s %s: %d threads (repeat %d) differ from 1 thread",
                           dt_name[cur], path_name[path], threads[x], rep);
                t_result_free(&r);
            }
        t_result_free(&base);
    }
    t_result ref1, ref8;
    run_path(&P, PATH_REF64, 1, LAYOUT_BSHD, &ref1);
    run_path(&P, PATH_REF64, 8, LAYOUT_BSHD, &ref8);
    T_CHECK(same_result(&c, &ref1, &ref8, t_numel(P.bias_dim)));
    t_result_free(&ref1);
    t_result_free(&ref8);
    t_problem_free(&P);
    }
}

void test_contract_determinism(void) { every_dtype(determinism); }

/* 11. A window wider than any distance between a query and a key, up to
 * INT64_MAX each side, gives the bits of no window (under the sanitizers:
 * with no overflow on the way), with an offset alignment of the largest
 * magnitude allowed too. */
static void huge_window(void)
{
    for (int align = 0; align < 2; align++) {
        t_cfg c = busy_cfg(1100);
        c.causal = 0;
        c.window_left = c.window_right = -1;
        c.dbias = false;
        if (align) { /* every row sees every key, or none, at so large an offset */
            c.align = ATTN_ALIGN_OFFSET;
            c.align_offset = INT64_MAX / 8;
        }
        t_problem P;
        t_problem_make(&P, &c);
        as_cur(&P);
        for (int path = 0; path < PATHS; path++) {
            if (!path_ok(path)) continue;
            t_result base, r;
            run_path(&P, path, 2, LAYOUT_BSHD, &base);
            static const int64_t wide[][2] = {{INT64_MAX, INT64_MAX}, {INT64_MAX, -1}, {-1, INT64_MAX},
                                              {INT64_MAX - 1, INT64_MAX / 2}};
            for (int w = 0; w < 4; w++) {
                P.c.window_left = wide[w][0];
                P.c.window_right = wide[w][1];
                run_path(&P, path, 2, LAYOUT_BSHD, &r);
                t_checks++;
                if (!same_result(&c, &base, &r, t_numel(P.bias_dim)))
                    t_fail(__FILE__, __LINE__, "%s %s align %d: window (%lld, %lld) differs from none",
                           dt_name[cur], path_name[path], align, (long long)wide[w][0], (long long)wide[w][1]);
                t_result_free(&r);
            }
            P.c.window_left = P.c.window_right = -1;
            t_result_free(&base);
        }
        t_problem_free(&P);
    }
}

void test_contract_huge_window(void) { every_dtype(huge_window); }

/* x [n] in a new buffer of dtype dt (F64, F32, BF16, F16); x is representable. */
static void *as_buffer(const double *x, int64_t n, attn_dtype dt)
{
    void *buf = malloc((size_t)(n > 0 ? n : 1) * attn_dtype_size(dt));
    for (int64_t a = 0; a < n; a++) {
        float f = (float)x[a];
        if (dt == ATTN_DTYPE_F64) ((double *)buf)[a] = x[a];
        else store_as((char *)buf + a * (int64_t)attn_dtype_size(dt), dt, &f, 1);
    }
    return buf;
}

static double elem(const void *buf, attn_dtype dt, int64_t a)
{
    switch (dt) {
    case ATTN_DTYPE_F64: return ((const double *)buf)[a];
    case ATTN_DTYPE_BF16: return attn__bf16_to_f32(((const uint16_t *)buf)[a]);
    case ATTN_DTYPE_F16: return attn__f16_to_f32(((const uint16_t *)buf)[a]);
    default: return ((const float *)buf)[a];
    }
}

/* Weights recomputed from the LSE: they match the reference, their dropout
 * pattern is the keep function on every path, and O = W_dropout V. (Q and
 * K of one dtype: the weights take no mixed dtypes.) */
static void weights_and_dropout(void)
{
    t_cfg c = busy_cfg(1100);
    c.qlens = false;
    c.dropout_p = 0.5;
    t_problem P;
    t_problem_make(&P, &c);
    as_cur(&P);
    attn_sdpa_params a = t_params(&P, NULL, NULL);
    int64_t heads[2] = {3, 0}, rows[3] = {69, 0, 31}, Sk = c.Sk, nw = c.B * 2 * 3 * Sk;
    double *w[PATHS] = {NULL}, u = out_roundoff();
    for (int path = 0; path < PATHS; path++) {
        if (!path_ok(path)) continue;
        bool f64 = path == PATH_REF64;
        attn_dtype dt = f64 ? ATTN_DTYPE_F64 : dt_q[cur], ld = f64 ? ATTN_DTYPE_F64 : ATTN_DTYPE_F32;
        attn_dtype bd = f64 ? ATTN_DTYPE_F64 : P.bias_dt;
        t_result r;
        run_path(&P, path, 2, LAYOUT_BSHD, &r);
        /* rebuild the inputs in their dtypes for the weights call */
        int64_t nq = c.B * c.Sq * c.Hq * c.Dk, nk = c.B * c.Sk * c.Hkv * c.Dk, nl = c.B * c.Hq * c.Sq;
        void *q = as_buffer(P.q, nq, dt), *k = as_buffer(P.k, nk, dt), *l = as_buffer(r.lse, nl, ld);
        void *bias = as_buffer(P.bias, t_numel(P.bias_dim), bd), *out = calloc((size_t)nw, attn_dtype_size(dt));
        attn_tensor tq = attn_tensor_make(q, dt, c.B, c.Sq, c.Hq, c.Dk), tk = attn_tensor_make(k, dt, c.B, c.Sk, c.Hkv, c.Dk);
        attn_tensor tl = attn_tensor_make(l, ld, c.B, c.Hq, c.Sq, 1), tw = attn_tensor_make(out, dt, c.B, 2, 3, Sk);
        attn_tensor tb = attn_tensor_make(bias, bd, 1, 1, c.Sq, c.Sk), tm = attn_tensor_make(P.mask, ATTN_DTYPE_BOOL, c.B, 1, 1, c.Sk);
        attn_sdpa_params pa = t_params(&P, &tb, &tm);
        attn_ctx *ctx = t_ctx(2);
        attn_ctx_set_kernel(ctx, path_kernel[path]);
        T_EQ_STATUS(attn_sdpa_weights(ctx, &tq, &tk, &tl, &pa, heads, 2, rows, 3, 1, &tw), ATTN_OK);
        attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
        w[path] = malloc((size_t)nw * sizeof(double));
        for (int64_t x = 0; x < nw; x++) w[path][x] = elem(out, dt, x);
        /* O = W_dropout V for the selected rows (up to rounding: of W and
         * of O in a half dtype, relative to sum |w v| <= 2) */
        for (int64_t b = 0; b < c.B; b++)
            for (int hx = 0; hx < 2; hx++)
                for (int rx = 0; rx < 3; rx++)
                    for (int64_t d = 0; d < c.Dv; d++) {
                        double acc = 0.0;
                        int64_t h = heads[hx], hk = h / (c.Hq / c.Hkv);
                        for (int64_t j = 0; j < Sk; j++)
                            acc += w[path][((b * 2 + hx) * 3 + rx) * Sk + j] * P.v[((b * Sk + j) * c.Hkv + hk) * c.Dv + d];
                        T_LE(fabs(acc - r.o[((b * c.Sq + rows[rx]) * c.Hq + h) * c.Dv + d]), f64 ? 1e-12 : 2e-6 + 6 * u);
                    }
        free(q); free(k); free(l); free(bias); free(out);
        t_result_free(&r);
    }
    /* dropped entries are exactly the keep function's zeros, on every path */
    for (int64_t b = 0; b < c.B; b++)
        for (int hx = 0; hx < 2; hx++)
            for (int rx = 0; rx < 3; rx++)
                for (int64_t j = 0; j < Sk; j++) {
                    int64_t x = ((b * 2 + hx) * 3 + rx) * Sk + j;
                    bool keep = attn_dropout_keep(a.seed, a.offset, a.dropout_p, b, heads[hx], rows[rx], j, c.Hq);
                    for (int path = 0; path < PATHS; path++)
                        if (!keep && w[path] != NULL) T_CHECK(w[path][x] == 0.0);
                    /* kept weights are not 0 (F16 holds none below 2^-25); the
                     * two paths are absent when ATTN_TEST_KERNELS leaves them out */
                    if (w[PATH_REF64] == NULL || w[PATH_TILED] == NULL) continue;
                    if (fabs(w[PATH_REF64][x]) >= 0x1p-24) T_CHECK(w[PATH_TILED][x] != 0.0);
                    T_CHECK(w[PATH_REF64][x] != 0.0 || w[PATH_TILED][x] == 0.0);
                    T_LE(fabs(w[PATH_TILED][x] - w[PATH_REF64][x]), 2e-6 + 2 * u);
                }
    for (int path = 0; path < PATHS; path++) free(w[path]);
    t_problem_free(&P);
}

void test_weights_and_dropout_agree(void)
{
    for (cur = DT_F32; cur <= DT_F16; cur++) weights_and_dropout();
    cur = DT_F32;
}
