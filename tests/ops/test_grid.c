/* test_grid.c - the random grid of docs/testing.md: each sampled
 * configuration runs in every dtype combination (float32; BF16 and F16;
 * float32 Q over a BF16 or F16 K and V, forward only) on every kernel path
 * this machine has (in the sampled layout and thread count), with the
 * inputs rounded to that dtype, against ref64 on the same rounded inputs
 * and against the naive baseline computing in the same precision. Error
 * rule: e_impl <= 2 e_base + floor (forward), 3 e_base + floor (gradients),
 * plus an absolute bound. Every failure prints the one-line reproducer
 * `attn_tests --seed S grid_vs_ref64`. */
#include "problem.h"
#include "kernels/block_mask.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    long configs, failures;
    double worst_fwd, worst_grad;   /* max e_impl / max(1, |ref|) */
    double worst_ratio;             /* max e_impl / (k e_base + floor) */
    double worst_lse;
} grid_stats;

enum { DTYPES = 4 };
static grid_stats stats[DTYPES];
static const char *const dt_names[DTYPES] = {"f32", "bf16", "f16", "f32 over half K/V"};

void t_grid_dtypes(int x, uint64_t seed, attn_dtype *q, attn_dtype *kv)
{
    static const attn_dtype qs[DTYPES] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16, ATTN_DTYPE_F16, ATTN_DTYPE_F32};
    *q = qs[x];
    *kv = x < 3 ? qs[x] : seed % 2 ? ATTN_DTYPE_BF16 : ATTN_DTYPE_F16;
}

/* Unit roundoff of a stored dtype (0 for F32: no rounding beyond float's). */
static double unit_roundoff(attn_dtype dt)
{
    return dt == ATTN_DTYPE_BF16 ? 0x1p-8 : dt == ATTN_DTYPE_F16 ? 0x1p-11 : 0.0;
}

/* One output compared with the rule; returns false on failure. The floor
 * (relative to max(1, max|ref|)) grows by `noise` and the cap by 4 noise
 * (absolute). */
static bool rule(grid_stats *st, const char *what, const double *impl, const double *base, const double *ref,
                 int64_t n, double k, double floor_rel, double abs_rel, double noise, bool grad)
{
    double scale = fmax(1.0, t_max_abs(ref, n));
    double e = t_max_err(impl, ref, n), eb = t_max_err(base, ref, n);
    double allowed = fmin(k * eb + floor_rel * scale + noise, abs_rel * scale + 4 * noise);
    double *worst = grad ? &st->worst_grad : &st->worst_fwd;
    if (e / scale > *worst) *worst = e / scale;
    if (allowed > 0 && e / allowed > st->worst_ratio) st->worst_ratio = e / allowed;
    if (e <= allowed) return true;
    fprintf(stderr, "    %s: e_impl %.3g > allowed %.3g (e_base %.3g, max|ref| %.3g)\n", what, e,
            allowed, eb, scale);
    return false;
}

static bool bitwise_equal(const double *a, const double *b, int64_t n)
{
    return n == 0 || memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

/* The largest sqrt(sum_d (dO_id O_id)^2) over the rows of ref's O: the
 * size of the error of delta_i = rowsum(dO_i * O_i) per unit of relative
 * error in the stored O. */
static double delta_scale(const t_cfg *c, const t_problem *P, const t_result *ref)
{
    double worst = 0.0;
    for (int64_t row = 0; row < c->B * c->Sq * c->Hq; row++) {
        double s2 = 0.0;
        for (int64_t d = 0; d < c->Dv; d++) s2 += pow(P->dout[row * c->Dv + d] * ref->o[row * c->Dv + d], 2);
        worst = fmax(worst, sqrt(s2));
    }
    return worst;
}

/* Every output of r against ref64 and the baseline (want_grad: the
 * gradients too); u and ub: unit roundoffs of the call's and the bias's
 * dtypes (0 for float32). In a half dtype the caps grow by the one
 * rounding of each result (2 units). The gradients take delta = rowsum(dO
 * * O) from the stored O, rounded to the call's dtype: an error of about
 * u * delta_scale per row that reaches dS, dQ, dK and dbias (not dV), the
 * same for any implementation given a rounded O (PyTorch's, FlashAttention's)
 * but a random quantity, so for a few rows the baseline's can happen to be
 * smaller: it joins the floor as 2 u delta_scale per sqrt(term). */
static bool check_result(grid_stats *st, const t_cfg *c, const t_problem *P, const char *name,
                         const t_result *r, const t_result *base, const t_result *ref, bool want_grad,
                         double u, double ub)
{
    int64_t no = c->B * c->Sq * c->Hq * c->Dv, nl = c->B * c->Hq * c->Sq;
    int64_t nq = c->B * c->Sq * c->Hq * c->Dk, nk = c->B * c->Sk * c->Hkv * c->Dk;
    int64_t nv = c->B * c->Sk * c->Hkv * c->Dv, nb = P->bias ? t_numel(P->bias_dim) : 0;
    bool ok = true;
    char w[96];
    snprintf(w, sizeof w, "%s O", name);
    ok &= rule(st, w, r->o, base->o, ref->o, no, 2.0, 2e-6, 1e-4 + 2 * u, 0.0, false);
    snprintf(w, sizeof w, "%s LSE", name);
    ok &= rule(st, w, r->lse, base->lse, ref->lse, nl, 2.0, 2e-6, 1e-4, 0.0, false);
    if (!want_grad) return ok;
    double dn = 2 * u * delta_scale(c, P, ref);
    /* Gradient floors grow with sqrt(terms summed into one element):
     * where the true gradient cancels to ~0 (one visible key makes dS
     * exactly 0), what is left is rounding noise of each term, e.g. from
     * FMA contraction of the recomputed score. */
    double tq = sqrt((double)c->Sk), tk = sqrt((double)(c->Sq * (c->Hq / c->Hkv)));
    snprintf(w, sizeof w, "%s dQ", name);
    ok &= rule(st, w, r->dq, base->dq, ref->dq, nq, 3.0, 1e-5 * tq, 1e-3 * tq + 2 * u, dn * tq, true);
    snprintf(w, sizeof w, "%s dK", name);
    ok &= rule(st, w, r->dk, base->dk, ref->dk, nk, 3.0, 1e-5 * tk, 1e-3 * tk + 2 * u, dn * tk, true);
    snprintf(w, sizeof w, "%s dV", name);
    ok &= rule(st, w, r->dv, base->dv, ref->dv, nv, 3.0, 1e-5 * tk, 1e-3 * tk + 2 * u, 0.0, true);
    if (c->dbias) {
        double tb = sqrt((double)(c->B * c->Hq * c->Sq * c->Sk) / (double)nb);
        snprintf(w, sizeof w, "%s dbias", name);
        ok &= rule(st, w, r->dbias, base->dbias, ref->dbias, nb, 3.0, 1e-5 * tb, 1e-3 * tb + 2 * ub, dn * tb, true);
    }
    return ok;
}

static bool same_result(const t_cfg *c, const t_problem *P, const t_result *a, const t_result *b, bool grad)
{
    int64_t no = c->B * c->Sq * c->Hq * c->Dv, nl = c->B * c->Hq * c->Sq;
    int64_t nq = c->B * c->Sq * c->Hq * c->Dk, nk = c->B * c->Sk * c->Hkv * c->Dk;
    int64_t nv = c->B * c->Sk * c->Hkv * c->Dv, nb = P->bias ? t_numel(P->bias_dim) : 0;
    return bitwise_equal(a->o, b->o, no) && bitwise_equal(a->lse, b->lse, nl) &&
           (!grad || (bitwise_equal(a->dq, b->dq, nq) && bitwise_equal(a->dk, b->dk, nk) &&
                      bitwise_equal(a->dv, b->dv, nv) && (!c->dbias || bitwise_equal(a->dbias, b->dbias, nb))));
}

/* The index of the dtype combination (dt, kv) in stats and dt_names. */
static int dtype_index(attn_dtype dt, attn_dtype kv)
{
    if (kv != dt) return 3;
    return dt == ATTN_DTYPE_BF16 ? 1 : dt == ATTN_DTYPE_F16 ? 2 : 0;
}

bool t_check_problem(const t_problem *Pp, attn_dtype dt, bool check_threads)
{
    const t_problem P = *Pp;
    const t_cfg *c = &P.c;
    int x = dtype_index(dt, P.kv_dt != 0 ? P.kv_dt : dt);
    bool grad = x < 3; /* the mixed dtypes are forward only */
    attn_ctx *ctx = t_ctx(c->threads);
    t_result ref, base, res[T_KERNELS];
    t_run(&P, ATTN_DTYPE_F64, ctx, LAYOUT_BSHD, grad, &ref);
    t_naive(&P, dt, grad, &base);
    bool ok = ref.status == ATTN_OK && ref.guards_ok;
    for (int k = 0; k < T_KERNELS; k++) {
        memset(&res[k], 0, sizeof res[k]);
        if (!t_kernel_available(t_kernels[k])) continue;
        attn_ctx_set_kernel(ctx, t_kernels[k]);
        t_run(&P, dt, ctx, c->layout, grad, &res[k]);
        attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
        if (res[k].status != ATTN_OK || !res[k].guards_ok) {
            fprintf(stderr, "    %s %s: status %s (%s), guards %s\n", dt_names[x], attn_kernel_name(t_kernels[k]),
                    attn_status_name(res[k].status), attn_last_error(), res[k].guards_ok ? "ok" : "BROKEN");
            ok = false;
        }
    }
    double u = unit_roundoff(dt), ub = unit_roundoff(P.bias_dt);
    for (int k = 0; ok && k < T_KERNELS; k++) {
        if (!t_kernel_available(t_kernels[k])) continue;
        char name[64];
        snprintf(name, sizeof name, "%s %s", dt_names[x], attn_kernel_name(t_kernels[k]));
        ok &= check_result(&stats[x], c, &P, name, &res[k], &base, &ref, grad, u, ub);
    }
    for (int k = 0; ok && k < T_KERNELS; k++) {
        if (!t_kernel_available(t_kernels[k])) continue;
        double lse_err = t_max_err(res[k].lse, ref.lse, c->B * c->Hq * c->Sq);
        if (lse_err > stats[x].worst_lse) stats[x].worst_lse = lse_err;
        if (!check_threads || t_kernels[k] == ATTN_KERNEL_REF) continue;
        /* bitwise identical across thread counts */
        t_result other;
        attn_ctx *ctx2 = t_ctx(c->threads == 1 ? 3 : 1);
        attn_ctx_set_kernel(ctx2, t_kernels[k]);
        t_run(&P, dt, ctx2, c->layout, grad, &other);
        attn_ctx_set_kernel(ctx2, ATTN_KERNEL_AUTO);
        bool same = same_result(c, &P, &other, &res[k], grad);
        if (!same)
            fprintf(stderr, "    %s %s: results differ across thread counts\n", dt_names[x],
                    attn_kernel_name(t_kernels[k]));
        ok &= same;
        t_result_free(&other);
    }
    t_result_free(&ref);
    t_result_free(&base);
    for (int k = 0; k < T_KERNELS; k++) t_result_free(&res[k]);
    if (!ok) stats[x].failures++;
    stats[x].configs++;
    return ok;
}

/* Configuration c in every dtype combination, each on its own rounding of
 * the configuration's inputs. */
static bool run_config(const t_cfg *c, bool check_threads)
{
    bool ok = true;
    for (int x = 0; x < DTYPES; x++) {
        attn_dtype dt, kv;
        t_grid_dtypes(x, c->seed, &dt, &kv);
        t_problem P;
        t_problem_make(&P, c);
        t_problem_as(&P, dt, kv);
        ok &= t_check_problem(&P, dt, check_threads);
        t_problem_free(&P);
    }
    return ok;
}

/* n sampled configurations from first_seed on; shape (may be NULL)
 * narrows configuration x to the shapes a test aims at; every
 * threads_every-th also checks the thread counts. */
static void run_grid(bool big, long n, uint64_t first_seed, const char *name, void (*shape)(t_cfg *, long),
                     long threads_every)
{
    memset(stats, 0, sizeof stats);
    for (long x = 0; x < n; x++) {
        if (!t_mine(x)) continue;
        uint64_t seed = t_only_seed >= 0 ? (uint64_t)t_only_seed : first_seed + (uint64_t)x;
        t_cfg c = t_cfg_sample(seed, big);
        if (shape != NULL) shape(&c, x);
        if (t_verbose) {
            t_cfg_print(&c, stdout);
            printf("\n");
        }
        bool ok = run_config(&c, x % threads_every == 0 || t_only_seed >= 0);
        t_checks++;
        if (!ok) {
            t_fail(__FILE__, __LINE__, "config failed; reproduce: attn_tests --seed %llu %s",
                   (unsigned long long)seed, name);
            fprintf(stderr, "    ");
            t_cfg_print(&c, stderr);
            fprintf(stderr, "\n");
        }
        if (t_only_seed >= 0) break;
    }
    t_report_absent_kernels();
    for (int d = 0; d < DTYPES; d++)
        printf("  %s, %s: %ld configs, %ld failed; worst error / max(1,|ref|): forward %.3g, gradients "
               "%.3g; worst e_impl/allowed %.3f; worst |LSE err| %.3g\n",
               name, dt_names[d], stats[d].configs, stats[d].failures, stats[d].worst_fwd, stats[d].worst_grad,
               stats[d].worst_ratio, stats[d].worst_lse);
}

void test_grid_vs_ref64(void) { run_grid(false, t_configs, 1000, "grid_vs_ref64", NULL, 8); }

/* Long sequences (up to 2048), fewer of them: tile edges at 255/256/257 and
 * 1023/1024/1025 with many key tiles. */
void test_grid_big_vs_ref64(void)
{
    long n = t_configs / 100 > 8 ? t_configs / 100 : 8;
    run_grid(true, n, 500000, "grid_big_vs_ref64", NULL, 8);
}

/* The decode shapes the x86 kernels' all-heads decode takes (one query
 * per row, a cache of 1024+ keys, GQA groups up to 16 rows, Dk = Dv a
 * multiple of 8 (8 mod 16: the half-vector tails of the 16-lane builds),
 * no elementwise score terms, no dropout), in every dtype combination, on
 * every layout, with causal / window / lengths as sampled; one
 * configuration in four keeps a sampled bias, mask, ALiBi, softcap or
 * dropout, which takes the per-head packing path instead. */
static void decode_shape(t_cfg *c, long x)
{
    static const int64_t sks[] = {1024, 1025, 1100, 1536, 2047, 2600};
    /* groups of 3, 4, 16, 1, 8 and 12 rows (the all-heads decode takes
     * rows four at a time, the last 1 to 3 together) */
    static const int64_t heads[][2] = {{9, 3}, {4, 1}, {8, 2}, {16, 1}, {2, 2}, {6, 6}, {16, 2}, {12, 1}};
    static const int64_t ds[] = {8, 16, 40, 64, 72, 128, 256};
    uint64_t s = c->seed * 7 + 1;
    int h = (int)t_rand_int(&s, 0, 7);
    c->Sq = 1;
    c->Sk = sks[t_rand_int(&s, 0, 5)];
    c->Hq = heads[h][0];
    c->Hkv = heads[h][1];
    c->Dk = c->Dv = ds[t_rand_int(&s, 0, 6)];
    if (c->B > 2) c->B = 2;
    if (x % 4 != 3) {
        c->softcap = c->dropout_p = 0.0;
        c->bias_kind = BIAS_NONE;
        c->mask_kind = MASK_NONE;
        c->alibi = c->dbias = false;
    }
}

void test_grid_decode_vs_ref64(void)
{
    long n = t_configs / 50 > 24 ? t_configs / 50 : 24;
    run_grid(false, n, 700000, "grid_decode_vs_ref64", decode_shape, 4);
}

/* The all-heads decode takes a kv head's rows four at a time (GQA groups
 * of 4, 8, 12, 16), the last 1 to 3 together (groups of 2, 3, 5, 6, 7),
 * and a lone row by itself; each row's sums have the same terms in the
 * same order either way, and whatever the number of kv heads. So a group
 * of G query heads over one kv head must give the bits of G kv heads
 * holding copies of that head, one query head each: compared on the x86
 * kernels this machine has, in float32 Q over a float32, bf16 or f16
 * cache and in bf16 / f16 Q, in the token- and the head-major layouts. */
void test_decode_group_rows_bitwise(void)
{
    static const int64_t groups[] = {4, 8, 12, 16, 2, 3, 5, 6, 7}, sks[] = {1024, 1100, 2047};
    static const int64_t ds[] = {8, 64, 72, 128, 256};
    static const attn_kernel x86[] = {ATTN_KERNEL_AVX2, ATTN_KERNEL_AVX512, ATTN_KERNEL_AVX512BF16, ATTN_KERNEL_AMX};
    long ran = 0, differ = 0;
    t_report_absent_kernels();
    for (long x = 0; x < 24; x++) {
        uint64_t s = 0xDEC0DE + (uint64_t)x;
        t_cfg c;
        memset(&c, 0, sizeof c);
        c.B = t_rand_int(&s, 1, 2);
        c.Sq = 1;
        c.Sk = sks[t_rand_int(&s, 0, 2)];
        c.Hq = groups[x % 9]; /* every group, the multiples of 4 twice */
        c.Hkv = 1;
        c.Dk = c.Dv = ds[t_rand_int(&s, 0, 4)];
        c.window_left = c.window_right = -1;
        c.threads = 2;
        c.seed = s;
        t_cfg cs = c; /* the same problem with one kv head per query head */
        cs.Hkv = c.Hq;
        t_problem P, Ps;
        t_problem_make(&P, &c);
        t_problem_make(&Ps, &cs);
        memcpy(Ps.q, P.q, sizeof(double) * (size_t)(c.B * c.Hq * c.Dk));
        for (int64_t r = 0; r < c.B * c.Sk; r++)
            for (int64_t h = 0; h < c.Hq; h++) {
                memcpy(Ps.k + (r * c.Hq + h) * c.Dk, P.k + r * c.Dk, sizeof(double) * (size_t)c.Dk);
                memcpy(Ps.v + (r * c.Hq + h) * c.Dv, P.v + r * c.Dv, sizeof(double) * (size_t)c.Dv);
            }
        attn_dtype q_dt = x % 4 < 2 ? ATTN_DTYPE_F32 : x % 2 ? ATTN_DTYPE_BF16 : ATTN_DTYPE_F16;
        attn_dtype kv_dt = x % 8 == 4 ? ATTN_DTYPE_F32 : x % 2 ? ATTN_DTYPE_BF16 : ATTN_DTYPE_F16; /* F32 Q at 4 */
        t_problem_as(&P, q_dt, kv_dt);
        t_problem_as(&Ps, q_dt, kv_dt);
        int layout = x % 3 == 0 ? LAYOUT_BHSD : LAYOUT_BSHD;
        for (size_t k = 0; k < sizeof x86 / sizeof x86[0]; k++) {
            if (!t_kernel_available(x86[k])) continue;
            attn_ctx *ctx = t_ctx(2);
            attn_ctx_set_kernel(ctx, x86[k]);
            t_result a, b;
            t_run(&P, q_dt, ctx, layout, false, &a);
            t_run(&Ps, q_dt, ctx, layout, false, &b);
            attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
            T_EQ_STATUS(a.status, ATTN_OK);
            T_EQ_STATUS(b.status, ATTN_OK);
            bool same = a.status == ATTN_OK && b.status == ATTN_OK &&
                        bitwise_equal(a.o, b.o, c.B * c.Hq * c.Dv) && bitwise_equal(a.lse, b.lse, c.B * c.Hq);
            T_CHECK(same);
            if (!same) {
                differ++;
                fprintf(stderr, "    %s: group of %lld, Sk %lld, D %lld, Q %s over %s K/V: other bits\n",
                        attn_kernel_name(x86[k]), (long long)c.Hq, (long long)c.Sk, (long long)c.Dk,
                        attn_dtype_name(q_dt), attn_dtype_name(kv_dt));
            }
            ran++;
            t_result_free(&a);
            t_result_free(&b);
        }
        t_problem_free(&P);
        t_problem_free(&Ps);
    }
    printf("  %ld comparisons, %ld with other bits\n", ran, differ);
    if (ran == 0) t_skip("no x86 kernel on this machine (avx2, avx512, amx)");
}

/* The fused backward's shares (src/ops/sdpa.c plan_fused): fewer than 4
 * kv heads in the batch, so each is split into shares of its query heads
 * (groups 8, 12, 6, 3: 4, 4, 6 and 3 shares) or of its keys (one query
 * head per kv head, at least 4 key tiles: 2 to 4 shares), or both (group
 * 2 or 3 with one kv head), whose partial sums are added after; half the
 * configurations with a bias gradient (written by the shares when it has
 * the full shape, by its own pass when broadcast). Every other one checks
 * that 1, 2, 3 and 8 threads give the same bits. */
static void shares_shape(t_cfg *c, long x)
{
    static const int64_t heads[][2] = {{8, 1}, {12, 1}, {6, 1}, {3, 1}, {2, 1}, {1, 1}, {2, 2}, {4, 2}, {6, 2}, {3, 3}};
    static const int64_t sqs[] = {1, 17, 48, 97, 130};
    static const int64_t sks[] = {256, 257, 300, 511, 640};
    uint64_t s = c->seed * 13 + 5;
    int h = (int)t_rand_int(&s, 0, 9);
    c->B = 1;
    c->Hq = heads[h][0];
    c->Hkv = heads[h][1];
    c->Sq = sqs[t_rand_int(&s, 0, 4)];
    c->Sk = t_rand_int(&s, 0, 3) == 0 ? c->Sq : sks[t_rand_int(&s, 0, 4)];
    if (c->Sk < 256) c->Sk = sks[t_rand_int(&s, 0, 4)]; /* key shares need 4 key tiles */
    if (c->Dk > 48) c->Dk = t_rand_int(&s, 1, 48);
    if (c->Dv > 48) c->Dv = t_rand_int(&s, 1, 48);
    if (x % 2 == 0) {
        c->bias_kind = (int)t_rand_int(&s, 1, BIAS_KINDS - 1);
        c->dbias = true;
    }
}

void test_grid_fused_shares_vs_ref64(void)
{
    long n = t_configs / 50 > 24 ? t_configs / 50 : 24;
    run_grid(false, n, 800000, "grid_fused_shares_vs_ref64", shares_shape, 2);
}

/* Backward tiles of B x (Hq, Hkv) x S x S (dense, float32, D 8) on kernel
 * k: those of the forward and backward minus those of the forward. */
static int64_t backward_tiles(attn_kernel k, int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int bias)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = B; c.Sq = S; c.Sk = S; c.Hq = Hq; c.Hkv = Hkv; c.Dk = 8; c.Dv = 8;
    c.bias_kind = bias;
    c.dbias = bias != BIAS_NONE;
    c.window_left = c.window_right = -1;
    c.threads = 2;
    c.seed = 3;
    t_problem P;
    t_problem_make(&P, &c);
    attn_ctx *ctx = t_ctx(2);
    attn_ctx_set_kernel(ctx, k);
    t_result r;
    attn__tiles_take();
    t_run(&P, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, false, &r);
    int64_t fwd = attn__tiles_take();
    t_result_free(&r);
    t_run(&P, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, true, &r);
    int64_t all = attn__tiles_take();
    t_result_free(&r);
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    t_problem_free(&P);
    return all - fwd;
}

/* The shares really are the fused backward (one walk over the tiles, not
 * the two passes' two): a batch of one with 1 or 2 kv heads computes per
 * head exactly the tiles that a batch of 4 (fused whole) computes per
 * head, on every kernel path with a fused backward; and so does a call
 * with a bias gradient, full-shape or broadcast (shared by batch and
 * heads, or per head over the queries). */
void test_fused_shares_tile_counts(void)
{
    static const int64_t heads[][2] = {{8, 1}, {2, 2}, {1, 1}, {3, 1}};
    static const int biases[] = {BIAS_FULL, BIAS_SHARED, BIAS_HEADS, BIAS_KEYS};
    for (int x = 0; x < T_KERNELS; x++) {
        attn_kernel k = t_kernels[x];
        if (k == ATTN_KERNEL_REF || !t_kernel_available(k)) continue;
        int64_t four = 0;
        for (int h = 0; h < 4; h++) {
            int64_t one = backward_tiles(k, 1, heads[h][0], heads[h][1], 512, BIAS_NONE);
            four = backward_tiles(k, 4, heads[h][0], heads[h][1], 512, BIAS_NONE);
            if (t_verbose)
                printf("  %s, %lld/%lld heads: %lld backward tiles at B 1, %lld at B 4\n", attn_kernel_name(k),
                       (long long)heads[h][0], (long long)heads[h][1], (long long)one, (long long)four);
            T_CHECK(one > 0);
            T_CHECK(four == 4 * one);
        }
        for (int y = 0; y < 4; y++) { /* 4 x 3/1 heads, as the last above */
            int64_t with = backward_tiles(k, 4, 3, 1, 512, biases[y]);
            if (t_verbose)
                printf("  %s, bias kind %d with its gradient: %lld backward tiles (%lld without)\n",
                       attn_kernel_name(k), biases[y], (long long)with, (long long)four);
            T_CHECK(with == four);
        }
    }
    t_report_absent_kernels();
}
