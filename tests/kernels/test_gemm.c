/* test_gemm.c - the toolkit's GEMM (the nn.gemm slot of the kernel table,
 * core/toolkit_kernels.h) against a plain double-precision loop written
 * here, for every instruction set's kernel this build and CPU run (the
 * portable, AVX2 and AVX-512 tables' own; an absent one is reported as
 * skipped by name): a grid of shapes from 1 to a few hundred with every
 * residue of the micro-tiles, the three layouts, beta 0 and 1, padded
 * leading dimensions, B packed per call and packed once. Then the claim
 * the driver rests on: every element is computed the same way wherever it
 * falls, so packed and unpacked B, the serial and the threaded driver, and
 * every thread count give the same bits.
 *
 * The bound: each element is a chain of K fused (or, portable, unfused)
 * multiply-adds onto beta C, so |c - exact| <= 2 (K + 1) u (|beta c| +
 * sum_k |a_ik b_kj|) with u = 2^-24; a wrong index or a lost term is off
 * by about one |a b| term, far above it. */
#include "test.h"

#include "core/half.h"
#include "core/toolkit_kernels.h"
#include "kernels/nn_kernels.h"
#include "kernels/table.h"

#include <stdlib.h>
#include <string.h>

/* One product's buffers: op(A) [M, K], op(B) [K, N], C [M, N] with leading
 * dimensions padded by 3, and C's start value c0 and the double twin's
 * result ref with its error scale mag (|beta c0| + sum |a b|). */
typedef struct {
    int64_t M, N, K, lda, ldb, ldc;
    attn__gemm_op ta, tb;
    float *a, *b, *c, *c0;
    double *ref, *mag;
} prob;

static void *xalloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (p == NULL) {
        fprintf(stderr, "test_gemm: out of memory\n");
        exit(2);
    }
    return p;
}

static float op_a(const prob *p, int64_t i, int64_t k)
{
    return p->ta == ATTN__GEMM_N ? p->a[i * p->lda + k] : p->a[k * p->lda + i];
}

static float op_b(const prob *p, int64_t k, int64_t j)
{
    return p->tb == ATTN__GEMM_N ? p->b[k * p->ldb + j] : p->b[j * p->ldb + k];
}

/* The twin: ref = beta c0 + op(A) op(B) in double, plain loops. */
static void twin(prob *p, float beta)
{
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->N; j++) {
            double s = beta != 0.0f ? p->c0[i * p->ldc + j] : 0.0, m = fabs(s);
            for (int64_t k = 0; k < p->K; k++) {
                double t = (double)op_a(p, i, k) * op_b(p, k, j);
                s += t;
                m += fabs(t);
            }
            p->ref[i * p->N + j] = s;
            p->mag[i * p->N + j] = m;
        }
}

static prob prob_make(int64_t M, int64_t N, int64_t K, attn__gemm_op ta, attn__gemm_op tb,
                      uint64_t *rng)
{
    prob p = {M, N, K, (ta == ATTN__GEMM_N ? K : M) + 3, (tb == ATTN__GEMM_N ? N : K) + 3, N + 3,
              ta, tb, NULL, NULL, NULL, NULL, NULL, NULL};
    int64_t na = (ta == ATTN__GEMM_N ? M : K) * p.lda, nb = (tb == ATTN__GEMM_N ? K : N) * p.ldb;
    p.a = xalloc((size_t)na * sizeof(float));
    p.b = xalloc((size_t)nb * sizeof(float));
    p.c = xalloc((size_t)(M * p.ldc) * sizeof(float));
    p.c0 = xalloc((size_t)(M * p.ldc) * sizeof(float));
    p.ref = xalloc((size_t)(M * N) * sizeof(double));
    p.mag = xalloc((size_t)(M * N) * sizeof(double));
    t_fill(rng, p.a, na, -1, 1);
    t_fill(rng, p.b, nb, -1, 1);
    t_fill(rng, p.c0, M * p.ldc, -2, 2);
    return p;
}

static void prob_free(prob *p)
{
    free(p->a), free(p->b), free(p->c), free(p->c0), free(p->ref), free(p->mag);
}

static attn__gemm_args args_of(const prob *p, float beta, const float *bp)
{
    attn__gemm_args g = {p->M, p->N, p->K, p->ta, p->tb, p->a, p->b, bp,
                         p->lda, p->ldb, beta, p->c, p->ldc, NULL};
    return g;
}

/* C starts as c0, or as NaN where beta = 0 (it must not be read). */
static void c_start(prob *p, float beta)
{
    for (int64_t e = 0; e < p->M * p->ldc; e++)
        p->c[e] = beta != 0.0f || e % p->ldc >= p->N ? p->c0[e] : NAN;
}

/* Worst |c - ref| / bound over C, and whether the padding kept c0. */
static double check_c(const prob *p, bool *pad_ok)
{
    const double u = 1.0 / 16777216.0;
    double worst = 0.0;
    *pad_ok = true;
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->ldc; j++) {
            float got = p->c[i * p->ldc + j];
            if (j >= p->N) {
                *pad_ok = *pad_ok && got == p->c0[i * p->ldc + j];
                continue;
            }
            double bound = 2.0 * (double)(p->K + 1) * u * p->mag[i * p->N + j] + 1e-30;
            double e = fabs((double)got - p->ref[i * p->N + j]) / bound;
            if (!(e <= worst)) worst = e; /* NaN wins */
        }
    return worst;
}

/* The grid: every residue of MR in {4, 6, 8} and NR in {8, 16, 32} near the
 * sizes, k around the chunk sizes (128, 256), and a few large ones. */
static const int64_t Ms[] = {1, 2, 5, 6, 7, 8, 13, 23, 25, 48, 121, 250};
static const int64_t Ns[] = {1, 3, 8, 15, 16, 17, 31, 33, 64, 99, 130, 257};
static const int64_t Ks[] = {1, 2, 7, 16, 127, 129, 255, 257, 300};

/* Runs the grid on kernel k: *worst is the largest error / bound. */
static void grid(const attn__gemm_kernel *k, double *worst, long *count)
{
    uint64_t rng = 0x5EED0000u + (uint64_t)k->nr;
    size_t nm = sizeof Ms / sizeof Ms[0], nn = sizeof Ns / sizeof Ns[0], nk = sizeof Ks / sizeof Ks[0];
    for (size_t x = 0; x < nm * nn * 4; x++) {
        /* every (M, N) pair in every layout, K varying along the grid */
        size_t pair = x / 4;
        int64_t M = Ms[pair / nn], N = Ns[pair % nn], K = Ks[(pair * 5 + x + pair / nn) % nk];
        attn__gemm_op ta = (attn__gemm_op)(x % 2), tb = (attn__gemm_op)(x / 2 % 2);
        prob p = prob_make(M, N, K, ta, tb, &rng);
        float *bp = xalloc((size_t)attn__gemm_packed_floats(k, N, K) * sizeof(float));
        attn__gemm_pack_b(k, p.b, p.ldb, tb, N, K, bp);
        for (int beta = 0; beta < 2; beta++) {
            twin(&p, (float)beta);
            for (int packed = 0; packed < 2; packed++) {
                attn__gemm_args g = args_of(&p, (float)beta, packed ? bp : NULL);
                c_start(&p, (float)beta);
                attn__gemm_serial(k, &g);
                bool pad_ok;
                double e = check_c(&p, &pad_ok);
                T_CHECK(pad_ok);
                T_LE(e, 1.0);
                if (!(e <= 1.0) && t_verbose)
                    printf("    %s M=%lld N=%lld K=%lld ta=%d tb=%d beta=%d packed=%d: %.3g\n",
                           k->name, (long long)M, (long long)N, (long long)K, ta, tb, beta,
                           packed, e);
                if (!(e <= *worst)) *worst = e;
                (*count)++;
            }
        }
        free(bp);
        prob_free(&p);
    }
}

/* The kernel of slot (nn.gemm or nn.gemm_bf16) of instruction set isa's
 * table, if the table runs here and the slot is that instruction set's
 * own; else NULL, and the test is skipped with the reason. */
static const attn__gemm_kernel *isa_gemm(attn__isa isa, attn__slot slot)
{
    static char why[600];
    char what[512] = "";
    const attn__kernels *t = attn__kernels_get(attn__isa_kernel(isa), what, sizeof what);
    if (t != NULL && t->filled_by[slot][ATTN__SDPA_F32] == isa)
        return slot == ATTN__SLOT_GEMM ? t->nn.gemm : t->nn.gemm_bf16;
    snprintf(why, sizeof why, "%s %s: %s", attn__slot_name(slot), attn__isa_name(isa),
             t == NULL ? what : "no kernel of its own in this build");
    t_skip(why);
    return NULL;
}

static void kernel_vs_double(attn__isa isa)
{
    const attn__gemm_kernel *k = isa_gemm(isa, ATTN__SLOT_GEMM);
    if (k == NULL) return;
    const char *name = k->name;
    double worst = 0.0;
    long count = 0;
    grid(k, &worst, &count);
    printf("  gemm %s: %ld products vs double, worst error / bound %.3g\n", name, count, worst);
}

T_TEST(kernels_gemm_portable_vs_double) { kernel_vs_double(ATTN__ISA_PORTABLE); }
T_TEST(kernels_gemm_avx2_vs_double) { kernel_vs_double(ATTN__ISA_AVX2); }
T_TEST(kernels_gemm_avx512_vs_double) { kernel_vs_double(ATTN__ISA_AVX512); }

/* ---- bfloat16 weights ------------------------------------------------------------- */

/* The grid again with op(B) rounded to bfloat16 and packed so
 * (attn__gemm_pack_b_bf16) and A rounded by attn__round_bf16: against the
 * double twin on the rounded values (the same bound: the products are
 * exact, only the sums round), the packing against the scalar rounding of
 * core/half.h, and, as the products are exact, bit for bit against the
 * portable kernel's C (fused and unfused chains agree). */
static void kernel_bf16_vs_double(attn__isa isa)
{
    const attn__gemm_kernel *k = isa_gemm(isa, ATTN__SLOT_GEMM_BF16), *port = &attn__gemm_portable;
    if (k == NULL) return;
    /* AMX sums each pair as two roundings, as the SDM defines TDPBF16PS:
     * the FMA chain's bits, required where the tiles are emulated, counted
     * (not required) on a real CPU */
#if defined(ATTN_AMX_EMULATED)
    bool same_bits = true;
#else
    bool same_bits = isa != ATTN__ISA_AMX;
#endif
    uint64_t rng = 0xBF16u + (uint64_t)k->nr;
    size_t nm = sizeof Ms / sizeof Ms[0], nn = sizeof Ns / sizeof Ns[0], nk = sizeof Ks / sizeof Ks[0];
    double worst = 0.0;
    long count = 0, packs_bad = 0, differ = 0;
    for (size_t x = 0; x < nm * nn * 2; x++) {
        size_t pair = x / 2;
        int64_t M = Ms[pair / nn], N = Ns[pair % nn], K = Ks[(pair * 3 + x + pair / nn) % nk];
        attn__gemm_op ta = (attn__gemm_op)(x % 2), tb = (attn__gemm_op)(pair % 2);
        prob p = prob_make(M, N, K, ta, tb, &rng);
        int64_t nb = (tb == ATTN__GEMM_N ? K : N) * p.ldb, np = attn__gemm_packed_floats(k, N, K);
        attn__round_bf16(p.a, (ta == ATTN__GEMM_N ? M : K) * p.lda, p.a);
        uint16_t *bp = xalloc((size_t)np * sizeof(uint16_t));
        uint16_t *pp = xalloc((size_t)attn__gemm_packed_floats(port, N, K) * sizeof(uint16_t));
        attn__gemm_pack_b_bf16(k, p.b, p.ldb, tb, N, K, bp); /* from the unrounded B */
        attn__gemm_pack_b_bf16(port, p.b, p.ldb, tb, N, K, pp);
        int64_t kp = np / ((N + k->nr - 1) / k->nr * k->nr); /* K, padded to kpad */
        for (int64_t e = 0; e < np; e++) { /* panel, k, column (pairs: k pair, column, k % 2) */
            int64_t q = e / (kp * k->nr), w = e % (kp * k->nr), kk, jj;
            if (k->pairs) {
                kk = w / (2 * k->nr) * 2 + (k->swapped ? 1 - w % 2 : w % 2);
                jj = w / 2 % k->nr;
            } else {
                kk = w / k->nr;
                jj = w % k->nr;
            }
            int64_t j = q * k->nr + jj;
            uint16_t want = j < N && kk < K ? attn__f32_to_bf16(op_b(&p, kk, j)) : 0;
            packs_bad += bp[e] != want;
        }
        attn__round_bf16(p.b, nb, p.b); /* the twin's B */
        float *first = xalloc((size_t)(p.M * p.ldc) * sizeof(float));
        for (int beta = 0; beta < 2; beta++) {
            twin(&p, (float)beta);
            attn__gemm_args g = args_of(&p, (float)beta, NULL);
            g.b = NULL; /* unused: the panels are */
            g.bp16 = pp;
            c_start(&p, (float)beta);
            attn__gemm_serial(port, &g);
            memcpy(first, p.c, (size_t)(p.M * p.ldc) * sizeof(float));
            g.bp16 = bp;
            c_start(&p, (float)beta);
            attn__gemm_serial(k, &g);
            bool pad_ok;
            double e = check_c(&p, &pad_ok);
            T_CHECK(pad_ok);
            T_LE(e, 1.0);
            if (!(e <= worst)) worst = e;
            differ += memcmp(first, p.c, (size_t)(p.M * p.ldc) * sizeof(float)) != 0;
            count++;
        }
        free(first);
        free(bp);
        free(pp);
        prob_free(&p);
    }
    T_EQ_INT(packs_bad, 0);
    if (same_bits) T_EQ_INT(differ, 0);
    printf("  gemm %s, bfloat16 B: %ld products vs double, worst error / bound %.3g; "
           "%ld differ from the portable kernel's bits\n", k->name, count, worst, differ);
}

T_TEST(kernels_gemm_bf16_portable_vs_double) { kernel_bf16_vs_double(ATTN__ISA_PORTABLE); }
T_TEST(kernels_gemm_bf16_avx2_vs_double) { kernel_bf16_vs_double(ATTN__ISA_AVX2); }
T_TEST(kernels_gemm_bf16_avx512_vs_double) { kernel_bf16_vs_double(ATTN__ISA_AVX512); }
T_TEST(kernels_gemm_bf16_avx512bf16_vs_double) { kernel_bf16_vs_double(ATTN__ISA_AVX512BF16); }
T_TEST(kernels_gemm_bf16_amx_vs_double) { kernel_bf16_vs_double(ATTN__ISA_AMX); }

/* ---- the same bits everywhere ------------------------------------------------------ */

/* The threaded driver with 1-4 threads, the serial one, unpacked and
 * packed, for each ctx kernel this machine runs: bitwise equal. */
T_TEST(kernels_gemm_bitwise_across_threads_and_packing)
{
    static const int64_t shapes[][3] = {{250, 130, 300}, {1000, 99, 128}, {37, 515, 64},
                                        {7, 33, 1000}, {600, 40, 20}};
    const attn_kernel kernels[] = {ATTN_KERNEL_AUTO, ATTN_KERNEL_AVX2, ATTN_KERNEL_TILED};
    uint64_t rng = 77;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int lay = 0; lay < 3; lay++) { /* NT (forward), NN (dx), TN (dw) */
            attn__gemm_op ta = lay == 2 ? ATTN__GEMM_T : ATTN__GEMM_N;
            attn__gemm_op tb = lay == 0 ? ATTN__GEMM_T : ATTN__GEMM_N;
            prob p = prob_make(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, &rng);
            float *first = xalloc((size_t)(p.M * p.ldc) * sizeof(float));
            for (size_t q = 0; q < sizeof kernels / sizeof kernels[0]; q++) {
                if (!t_kernel_available(kernels[q])) continue;
                for (int threads = 1; threads <= 4; threads++) {
                    attn_ctx *ctx = t_ctx(threads);
                    T_EQ_STATUS(attn_ctx_set_kernel(ctx, kernels[q]), ATTN_OK);
                    const attn__gemm_kernel *k = attn__ctx_toolkit(ctx)->gemm;
                    attn__gemm_args g = args_of(&p, 1.0f, NULL);
                    c_start(&p, 1.0f);
                    attn__gemm(ctx, &g);
                    if (threads == 1) {
                        memcpy(first, p.c, (size_t)(p.M * p.ldc) * sizeof(float));
                        /* serial, B unpacked and packed: the same bits */
                        float *bp = xalloc((size_t)attn__gemm_packed_floats(k, p.N, p.K) * sizeof(float));
                        attn__gemm_pack_b(k, p.b, p.ldb, tb, p.N, p.K, bp);
                        for (int packed = 0; packed < 2; packed++) {
                            g.bp = packed ? bp : NULL;
                            c_start(&p, 1.0f);
                            attn__gemm_serial(k, &g);
                            T_CHECK(memcmp(first, p.c, (size_t)(p.M * p.ldc) * sizeof(float)) == 0);
                        }
                        free(bp);
                    } else {
                        T_CHECK(memcmp(first, p.c, (size_t)(p.M * p.ldc) * sizeof(float)) == 0);
                    }
                    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
                }
            }
            free(first);
            prob_free(&p);
        }
    }
}

/* K = 0 is C = beta C; M = 0 or N = 0 writes nothing. */
T_TEST(kernels_gemm_empty_products)
{
    uint64_t rng = 5;
    prob p = prob_make(5, 7, 0, ATTN__GEMM_N, ATTN__GEMM_T, &rng);
    for (int beta = 0; beta < 2; beta++) {
        attn__gemm_args g = args_of(&p, (float)beta, NULL);
        c_start(&p, (float)beta);
        attn__gemm(t_ctx(2), &g);
        for (int64_t i = 0; i < p.M; i++)
            for (int64_t j = 0; j < p.ldc; j++)
                T_CHECK(p.c[i * p.ldc + j] == (beta || j >= p.N ? p.c0[i * p.ldc + j] : 0.0f));
    }
    attn__gemm_args g = args_of(&p, 0.0f, NULL);
    g.K = 3;
    for (int e = 0; e < 2; e++) {
        g.M = e == 0 ? 0 : p.M;
        g.N = e == 0 ? p.N : 0;
        memcpy(p.c, p.c0, (size_t)(p.M * p.ldc) * sizeof(float));
        attn__gemm(t_ctx(2), &g);
        attn__gemm_serial(attn__ctx_toolkit(NULL)->gemm, &g);
        T_CHECK(memcmp(p.c, p.c0, (size_t)(p.M * p.ldc) * sizeof(float)) == 0);
    }
    prob_free(&p);
}
