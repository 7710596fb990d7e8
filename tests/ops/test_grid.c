/* test_grid.c - the random grid of docs/testing.md: each sampled configuration
 * runs the tiled float32 kernel (in the sampled layout and thread count),
 * the reference kernel on float32 tensors, and naive float32 math, all
 * against ref64. Error rule: e_impl <= 2 e_base + floor (forward), 3 e_base +
 * floor (gradients), plus an absolute bound. Every failure prints the
 * one-line reproducer `attn_tests --seed S grid_vs_ref64`. */
#include "problem.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    long configs, failures;
    double worst_fwd, worst_grad;   /* max e_impl / max(1, |ref|) */
    double worst_ratio;             /* max e_impl / (k e_base + floor) */
    double worst_lse;
} grid_stats;

static grid_stats stats;

/* One output compared with the rule; returns false on failure. */
static bool rule(const char *what, const double *impl, const double *base, const double *ref,
                 int64_t n, double k, double floor_rel, double abs_rel, bool grad)
{
    double scale = fmax(1.0, t_max_abs(ref, n));
    double e = t_max_err(impl, ref, n), eb = t_max_err(base, ref, n);
    double allowed = fmin(k * eb + floor_rel * scale, abs_rel * scale);
    double *worst = grad ? &stats.worst_grad : &stats.worst_fwd;
    if (e / scale > *worst) *worst = e / scale;
    if (allowed > 0 && e / allowed > stats.worst_ratio) stats.worst_ratio = e / allowed;
    if (e <= allowed) return true;
    fprintf(stderr, "    %s: e_impl %.3g > allowed %.3g (e_base %.3g, max|ref| %.3g)\n", what, e,
            allowed, eb, scale);
    return false;
}

static bool bitwise_equal(const double *a, const double *b, int64_t n)
{
    return n == 0 || memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

bool t_check_problem(const t_problem *Pp, bool check_threads)
{
    const t_problem P = *Pp;
    const t_cfg *c = &P.c;
    int64_t no = c->B * c->Sq * c->Hq * c->Dv, nl = c->B * c->Hq * c->Sq;
    int64_t nq = c->B * c->Sq * c->Hq * c->Dk, nk = c->B * c->Sk * c->Hkv * c->Dk;
    int64_t nv = c->B * c->Sk * c->Hkv * c->Dv, nb = P.bias ? t_numel(P.bias_dim) : 0;
    attn_ctx *ctx = t_ctx(c->threads);
    t_result ref, base, res[T_KERNELS];
    t_run(&P, ATTN_DTYPE_F64, ctx, LAYOUT_BSHD, true, &ref);
    t_naive32(&P, true, &base);
    bool ok = ref.status == ATTN_OK && ref.guards_ok;
    for (int x = 0; x < T_KERNELS; x++) {
        memset(&res[x], 0, sizeof res[x]);
        if (!t_kernel_available(t_kernels[x])) continue;
        attn_ctx_set_kernel(ctx, t_kernels[x]);
        t_run(&P, ATTN_DTYPE_F32, ctx, c->layout, true, &res[x]);
        attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
        if (res[x].status != ATTN_OK || !res[x].guards_ok) {
            fprintf(stderr, "    %s: status %s (%s), guards %s\n", attn_kernel_name(t_kernels[x]),
                    attn_status_name(res[x].status), attn_last_error(), res[x].guards_ok ? "ok" : "BROKEN");
            ok = false;
        }
    }
    for (int x = 0; ok && x < T_KERNELS; x++) {
        if (!t_kernel_available(t_kernels[x])) continue;
        const t_result *r = &res[x];
        const char *name = attn_kernel_name(t_kernels[x]);
        char w[64];
        snprintf(w, sizeof w, "%s O", name);
        ok &= rule(w, r->o, base.o, ref.o, no, 2.0, 2e-6, 1e-4, false);
        snprintf(w, sizeof w, "%s LSE", name);
        ok &= rule(w, r->lse, base.lse, ref.lse, nl, 2.0, 2e-6, 1e-4, false);
        /* Gradient floors grow with sqrt(terms summed into one element):
         * where the true gradient cancels to ~0 (one visible key makes dS
         * exactly 0), what is left is rounding noise of each term, e.g. from
         * FMA contraction of the recomputed score. */
        double tq = sqrt((double)c->Sk), tk = sqrt((double)(c->Sq * (c->Hq / c->Hkv)));
        snprintf(w, sizeof w, "%s dQ", name);
        ok &= rule(w, r->dq, base.dq, ref.dq, nq, 3.0, 1e-5 * tq, 1e-3 * tq, true);
        snprintf(w, sizeof w, "%s dK", name);
        ok &= rule(w, r->dk, base.dk, ref.dk, nk, 3.0, 1e-5 * tk, 1e-3 * tk, true);
        snprintf(w, sizeof w, "%s dV", name);
        ok &= rule(w, r->dv, base.dv, ref.dv, nv, 3.0, 1e-5 * tk, 1e-3 * tk, true);
        if (c->dbias) {
            double tb = sqrt((double)(c->B * c->Hq * c->Sq * c->Sk) / (double)nb);
            snprintf(w, sizeof w, "%s dbias", name);
            ok &= rule(w, r->dbias, base.dbias, ref.dbias, nb, 3.0, 1e-5 * tb, 1e-3 * tb, true);
        }
    }
    for (int x = 0; ok && x < T_KERNELS; x++) {
        if (!t_kernel_available(t_kernels[x])) continue;
        double lse_err = t_max_err(res[x].lse, ref.lse, nl);
        if (lse_err > stats.worst_lse) stats.worst_lse = lse_err;
        if (!check_threads || t_kernels[x] == ATTN_KERNEL_REF) continue;
        /* bitwise identical across thread counts */
        t_result other;
        attn_ctx *ctx2 = t_ctx(c->threads == 1 ? 3 : 1);
        attn_ctx_set_kernel(ctx2, t_kernels[x]);
        t_run(&P, ATTN_DTYPE_F32, ctx2, c->layout, true, &other);
        attn_ctx_set_kernel(ctx2, ATTN_KERNEL_AUTO);
        const t_result *r = &res[x];
        bool same = bitwise_equal(other.o, r->o, no) && bitwise_equal(other.lse, r->lse, nl) &&
                    bitwise_equal(other.dq, r->dq, nq) && bitwise_equal(other.dk, r->dk, nk) &&
                    bitwise_equal(other.dv, r->dv, nv) &&
                    (!c->dbias || bitwise_equal(other.dbias, r->dbias, nb));
        if (!same) fprintf(stderr, "    %s: results differ across thread counts\n", attn_kernel_name(t_kernels[x]));
        ok &= same;
        t_result_free(&other);
    }
    t_result_free(&ref);
    t_result_free(&base);
    for (int x = 0; x < T_KERNELS; x++) t_result_free(&res[x]);
    return ok;
}

static bool run_config(const t_cfg *c, bool check_threads)
{
    t_problem P;
    t_problem_make(&P, c);
    bool ok = t_check_problem(&P, check_threads);
    t_problem_free(&P);
    return ok;
}

static void run_grid(bool big, long n, uint64_t first_seed, const char *name)
{
    memset(&stats, 0, sizeof stats);
    for (long x = 0; x < n; x++) {
        uint64_t seed = t_only_seed >= 0 ? (uint64_t)t_only_seed : first_seed + (uint64_t)x;
        t_cfg c = t_cfg_sample(seed, big);
        if (t_verbose) {
            t_cfg_print(&c, stdout);
            printf("\n");
        }
        bool ok = run_config(&c, x % 8 == 0 || t_only_seed >= 0);
        t_checks++;
        stats.configs++;
        if (!ok) {
            stats.failures++;
            t_fail(__FILE__, __LINE__, "config failed; reproduce: attn_tests --seed %llu %s",
                   (unsigned long long)seed, name);
            fprintf(stderr, "    ");
            t_cfg_print(&c, stderr);
            fprintf(stderr, "\n");
        }
        if (t_only_seed >= 0) break;
    }
    printf("  %s: %ld configs, %ld failed; worst error / max(1,|ref|): forward %.3g, gradients "
           "%.3g; worst e_impl/allowed %.3f; worst |LSE err| %.3g\n",
           name, stats.configs, stats.failures, stats.worst_fwd, stats.worst_grad,
           stats.worst_ratio, stats.worst_lse);
}

void test_grid_vs_ref64(void) { run_grid(false, t_configs, 1000, "grid_vs_ref64"); }

/* Long sequences (up to 2048), fewer of them: tile edges at 255/256/257 and
 * 1023/1024/1025 with many key tiles. */
void test_grid_big_vs_ref64(void)
{
    long n = t_configs / 100 > 8 ? t_configs / 100 : 8;
    run_grid(true, n, 500000, "grid_big_vs_ref64");
}
