/* test_quant.c - the quantized matrix products (attn/quant.h).
 *
 * Dequantization against hand-computed blocks; the portable twin against
 * the test's own dot products in double of attn_quant_dequantize's weights
 * (the same computation: equal to a float ulp); the AVX2 kernels (GEMV and GEMM paths,
 * several matrices a call, every remainder of the tiles) against the twin
 * with a bound from float32 rounding; bitwise equality across thread
 * counts; scales that are subnormal, infinite or NaN; every argument check;
 * out-of-memory injection. */
#include "test.h"

#include "kernels/table.h"

#include <attn/quant.h>

#include <stdlib.h>
#include <string.h>

/* ---- random blocks -------------------------------------------------------------- */

static float f16(uint16_t h) { return attn__f16_to_f32(h); }

/* ---- dequantization ----------------------------------------------------------------- */

T_TEST(quant_dequantize_hand_computed)
{
    /* Q8_0: d = 0.5 (0x3800); q = 0, 1, -1, 127, -128, then 2, 3, ... */
    unsigned char q8[34] = {0x00, 0x38, 0, 1, 0xFF, 127, 0x80};
    for (int i = 5; i < 32; i++) q8[2 + i] = (unsigned char)(i - 3);
    float out[64];
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q8_0, q8, 1, out), ATTN_OK);
    T_EQ_INT(out[0] == 0.0f, 1);
    T_EQ_INT(out[1] == 0.5f, 1);
    T_EQ_INT(out[2] == -0.5f, 1);
    T_EQ_INT(out[3] == 63.5f, 1);
    T_EQ_INT(out[4] == -64.0f, 1);
    T_EQ_INT(out[31] == 14.0f, 1);
    /* Q4_1: d = 2 (0x4000), m = -1.5 (0xBE00); qs[i] = i | (15 - i) << 4:
     * w[i] = 2 i - 1.5, w[16 + i] = 2 (15 - i) - 1.5. A second block with
     * d = 2^-24 (the smallest subnormal, 0x0001) and m = 0. */
    unsigned char q4[40] = {0x00, 0x40, 0x00, 0xBE};
    for (int i = 0; i < 16; i++) q4[4 + i] = (unsigned char)(i | (15 - i) << 4);
    q4[20] = 0x01;
    for (int i = 0; i < 16; i++) q4[24 + i] = 0xF1; /* q = 1 low, 15 high */
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q4_1, q4, 2, out), ATTN_OK);
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        bad += out[i] != 2.0f * (float)i - 1.5f;
        bad += out[16 + i] != 2.0f * (float)(15 - i) - 1.5f;
        bad += out[32 + i] != 0x1p-24f;
        bad += out[48 + i] != 15.0f * 0x1p-24f;
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(attn_quant_block_bytes(ATTN_QUANT_Q8_0), 34);
    T_EQ_INT(attn_quant_block_bytes(ATTN_QUANT_Q4_1), 20);
    T_EQ_INT(attn_quant_block_bytes((attn_quant)9), 0);
    T_CHECK(strcmp(attn_quant_name(ATTN_QUANT_Q4_1), "Q4_1") == 0);
    T_CHECK(strcmp(attn_quant_name((attn_quant)0), "?") == 0);
}

/* ---- products ------------------------------------------------------------------------ */

enum { MAXW = 3 };

typedef struct {
    int64_t n, K, n_w;
    attn_quant type[MAXW];
    int64_t rows[MAXW];
    unsigned char *w[MAXW];
    float *x;
} qcase;

static void case_make(qcase *c, uint64_t *rng, int64_t n, int64_t K, int n_w, const int64_t *rows)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->K = K;
    c->n_w = n_w;
    c->x = malloc((size_t)(n * K + 1) * sizeof(float));
    t_fill(rng, c->x, n * K, -2.0, 2.0);
    for (int m = 0; m < n_w; m++) {
        c->type[m] = t_rand_int(rng, 0, 1) ? ATTN_QUANT_Q4_1 : ATTN_QUANT_Q8_0;
        c->rows[m] = rows[m];
        int64_t nb = rows[m] * (K / 32);
        c->w[m] = malloc((size_t)nb * attn_quant_block_bytes(c->type[m]) + 1);
        t_fill_quant(rng, c->type[m], c->w[m], nb);
    }
}

static void case_free(qcase *c)
{
    free(c->x);
    for (int m = 0; m < c->n_w; m++) free(c->w[m]);
}

/* y[m] = the product on ctx (y[m] allocated here). */
static attn_status case_run(const qcase *c, attn_ctx *ctx, float **y)
{
    attn_quant_matrix w[MAXW];
    for (int m = 0; m < c->n_w; m++) {
        w[m] = (attn_quant_matrix){c->w[m], c->type[m], c->rows[m]};
        y[m] = malloc((size_t)(c->n * c->rows[m] + 1) * sizeof(float));
    }
    return attn_quant_matmul(ctx, c->x, c->n, c->K, w, (int)c->n_w, y);
}

/* The test's own product of matrix m: dequantized weights, dot in double,
 * and the bound S = sum |x| (|w| + |m_block|) that float32 rounding of the
 * blocked sums scales with. */
static void own_product(const qcase *c, int m, double *y, double *bound)
{
    int64_t K = c->K, nb = K / 32;
    float *row = malloc((size_t)K * sizeof(float));
    size_t bytes = attn_quant_block_bytes(c->type[m]);
    for (int64_t j = 0; j < c->rows[m]; j++) {
        const unsigned char *wr = c->w[m] + (size_t)j * (size_t)nb * bytes;
        T_EQ_STATUS(attn_quant_dequantize(c->type[m], wr, nb, row), ATTN_OK);
        for (int64_t i = 0; i < c->n; i++) {
            double acc = 0.0, s = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double mb = c->type[m] == ATTN_QUANT_Q4_1
                                ? fabs((double)f16(attn__quant_u16(wr + (size_t)(k / 32) * bytes + 2)))
                                : 0.0;
                acc += (double)row[k] * (double)c->x[i * K + k];
                s += fabs((double)c->x[i * K + k]) * (fabs((double)row[k]) + mb);
            }
            y[i * c->rows[m] + j] = acc;
            bound[i * c->rows[m] + j] = s;
        }
    }
    free(row);
}

static attn_ctx *kernel_ctx(attn_kernel k, int threads)
{
    attn_ctx *ctx = NULL;
    if (attn_ctx_create(threads, &ctx) != ATTN_OK) return NULL;
    if (attn_ctx_set_kernel(ctx, k) != ATTN_OK) {
        attn_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Shapes: n covers the GEMV (< 8 rows) and GEMM paths, row tiles of 6,
 * row blocks cut for two threads and, at 600, beyond the 528-row cap; K one
 * block, several, and one, two (576: 288 + 288) and three (704: 256 + 256 +
 * 192) K chunks of the panels; rows every remainder of 16, 32 and 64
 * columns. */
static const int64_t NS[] = {1, 2, 5, 7, 8, 9, 13, 130, 200, 600};
static const int64_t KS[] = {32, 64, 288, 576, 704};
static const int64_t RS[] = {1, 5, 16, 17, 31, 33, 64, 65, 100, 192};

T_TEST(quant_matmul_vs_twin)
{
    attn_ctx *ref = kernel_ctx(ATTN_KERNEL_REF, 2), *fast = kernel_ctx(ATTN_KERNEL_AUTO, 2);
    T_CHECK(ref != NULL && fast != NULL);
    if (ref == NULL || fast == NULL) return;
    const attn__kernels *best = attn__kernels_get(ATTN_KERNEL_AUTO, NULL, 0);
    const attn__kernels *twin = attn__kernels_get(ATTN_KERNEL_REF, NULL, 0);
    bool avx2 = best->filled_by[ATTN__SLOT_QUANT_MATMUL][ATTN__SDPA_F32] == ATTN__ISA_AVX2;
    T_CHECK(twin->filled_by[ATTN__SLOT_QUANT_MATMUL][ATTN__SDPA_F32] == ATTN__ISA_PORTABLE && twin->quant.many == NULL);
    if (!avx2) printf("  (no AVX2+F16C on this CPU or build: the twin alone is checked)\n");
    uint64_t rng = 12345;
    double worst = 0.0;
    int cases = 0;
    for (size_t a = 0; a < sizeof NS / sizeof NS[0]; a++)
        for (size_t b = 0; b < sizeof KS / sizeof KS[0]; b++) {
            int n_w = (int)t_rand_int(&rng, 1, MAXW);
            int64_t rows[MAXW];
            for (int m = 0; m < n_w; m++) rows[m] = RS[t_rand_int(&rng, 0, 9)];
            qcase c;
            case_make(&c, &rng, NS[a], KS[b], n_w, rows);
            float *yr[MAXW], *yf[MAXW];
            T_EQ_STATUS(case_run(&c, ref, yr), ATTN_OK);
            T_EQ_STATUS(case_run(&c, fast, yf), ATTN_OK);
            for (int m = 0; m < n_w; m++) {
                int64_t ny = c.n * rows[m];
                double *own = malloc((size_t)ny * sizeof(double)), *bound = malloc((size_t)ny * sizeof(double));
                own_product(&c, m, own, bound);
                int twin_bad = 0, fast_bad = 0;
                for (int64_t e = 0; e < ny; e++) {
                    /* the same computation; a float ulp of room for FMA contraction */
                    twin_bad += !(fabs((double)yr[m][e] - own[e]) <= 0x1p-23 * fabs(own[e]) + 1e-30);
                    double err = fabs((double)yf[m][e] - own[e]) / (bound[e] + 1e-30);
                    if (err > worst) worst = err;
                    fast_bad += !(err <= 1e-5);
                }
                T_EQ_INT(twin_bad, 0);
                T_EQ_INT(fast_bad, 0);
                free(own);
                free(bound);
                free(yr[m]);
                free(yf[m]);
            }
            case_free(&c);
            cases++;
        }
    if (t_verbose || avx2)
        printf("  %d calls; largest |avx2 - exact| / sum |x| (|w| + |m|): %.3g\n", cases, worst);
    attn_ctx_free(ref);
    attn_ctx_free(fast);
}

T_TEST(quant_matmul_threads_bitwise)
{
    uint64_t rng = 777;
    int bad = 0;
    for (int path = 0; path < 2; path++) {
        int64_t rows[2] = {100, 33};
        qcase c;
        case_make(&c, &rng, path ? 150 : 3, 576, 2, rows);
        float *y1[MAXW], *y3[MAXW];
        attn_ctx *one = kernel_ctx(ATTN_KERNEL_AUTO, 1), *three = kernel_ctx(ATTN_KERNEL_AUTO, 3);
        T_EQ_STATUS(case_run(&c, one, y1), ATTN_OK);
        T_EQ_STATUS(case_run(&c, three, y3), ATTN_OK);
        for (int m = 0; m < 2; m++) {
            bad += memcmp(y1[m], y3[m], (size_t)(c.n * rows[m]) * sizeof(float)) != 0;
            free(y1[m]);
            free(y3[m]);
        }
        attn_ctx_free(one);
        attn_ctx_free(three);
        case_free(&c);
    }
    T_EQ_INT(bad, 0);
}

/* Scales at the edges of f16: subnormal ones are exact (the result equals
 * the twin's within rounding); an infinite or NaN scale makes its outputs
 * non-finite on every path, and leaves the other columns alone. */
T_TEST(quant_special_scales)
{
    attn_ctx *ref = kernel_ctx(ATTN_KERNEL_REF, 1), *fast = kernel_ctx(ATTN_KERNEL_AUTO, 2);
    static const uint16_t special[] = {0x0001, 0x03FF, 0x8200, 0x7C00, 0xFC00, 0x7E00};
    uint64_t rng = 99;
    for (int pass = 0; pass < 2; pass++) {
        int64_t rows[1] = {4};
        qcase c;
        case_make(&c, &rng, pass ? 9 : 1, 64, 1, rows);
        size_t bytes = attn_quant_block_bytes(c.type[0]);
        for (int64_t j = 0; j < 3; j++) {
            uint16_t h = special[t_rand_int(&rng, 0, 2) + 3 * (j == 2)];
            memcpy(c.w[0] + (size_t)j * 2 * bytes + bytes, &h, 2); /* second block of row j */
        }
        float *yr[MAXW], *yf[MAXW];
        T_EQ_STATUS(case_run(&c, ref, yr), ATTN_OK);
        T_EQ_STATUS(case_run(&c, fast, yf), ATTN_OK);
        double *own = malloc((size_t)(c.n * 4) * sizeof(double)), *bound = malloc((size_t)(c.n * 4) * sizeof(double));
        own_product(&c, 0, own, bound);
        for (int64_t i = 0; i < c.n; i++)
            for (int64_t j = 0; j < 4; j++) {
                int64_t e = i * 4 + j;
                if (j == 2) {
                    T_CHECK(!isfinite(yr[0][e]) && !isfinite(yf[0][e]));
                } else {
                    T_CHECK(isfinite(yf[0][e]));
                    T_LE(fabs((double)yf[0][e] - own[e]), 1e-5 * bound[e] + 1e-30);
                }
            }
        free(own);
        free(bound);
        free(yr[0]);
        free(yf[0]);
        case_free(&c);
    }
    attn_ctx_free(ref);
    attn_ctx_free(fast);
}

T_TEST(quant_argument_checks)
{
    attn_ctx *ctx = t_ctx(1);
    unsigned char w[2 * 20] = {0};
    float x[64] = {0}, y[8], out[64];
    float *ys[2] = {y, y + 4};
    attn_quant_matrix m[2] = {{w, ATTN_QUANT_Q4_1, 1}, {w, ATTN_QUANT_Q4_1, 1}};
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 1, ys), ATTN_OK);
    T_EQ_STATUS(attn_quant_matmul(NULL, x, 1, 64, m, 1, ys), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_quant_matmul(ctx, NULL, 1, 64, m, 1, ys), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_quant_matmul(ctx, NULL, 0, 64, m, 1, ys), ATTN_OK);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, NULL, 1, ys), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 1, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, -1, 64, m, 1, ys), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 48, m, 1, ys), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "'K' is 48") != NULL);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 0, m, 1, ys), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 0, ys), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 65, ys), ATTN_BAD_DIM);
    attn_quant_matrix bad = m[0];
    bad.type = (attn_quant)7;
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, &bad, 1, ys), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "w[0].type is 7") != NULL);
    bad = m[0];
    bad.rows = -2;
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, &bad, 1, ys), ATTN_BAD_DIM);
    bad.rows = INT64_MAX / 2;
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, &bad, 1, ys), ATTN_OVERFLOW);
    bad = m[1];
    bad.data = NULL;
    attn_quant_matrix two[2] = {m[0], bad};
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, two, 2, ys), ATTN_NULL_ARG);
    T_CHECK(strstr(attn_last_error(), "w[1].data") != NULL);
    float *ynull[2] = {y, NULL};
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 2, ynull), ATTN_NULL_ARG);
    float *same[2] = {y, y};
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 2, same), ATTN_OVERLAP);
    float *onx[1] = {x + 10};
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 1, onx), ATTN_OVERLAP);
    float *onw[1] = {(float *)(void *)(w + 4)};
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 1, onw), ATTN_OVERLAP);
    /* nothing is written on error */
    y[0] = 7.0f;
    T_EQ_STATUS(attn_quant_matmul(ctx, x, 1, 64, m, 2, same), ATTN_OVERLAP);
    T_CHECK(y[0] == 7.0f);

    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q8_0, w, 1, out), ATTN_OK);
    T_EQ_STATUS(attn_quant_dequantize((attn_quant)3, w, 1, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q8_0, w, -1, out), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q8_0, NULL, 1, out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q8_0, w, 1, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q8_0, NULL, 0, NULL), ATTN_OK);
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q4_1, w, 1, (float *)(void *)(w + 8)), ATTN_OVERLAP);
    T_EQ_STATUS(attn_quant_dequantize(ATTN_QUANT_Q4_1, w, INT64_MAX / 4, out), ATTN_OVERFLOW);
}

/* Every allocation failing in turn: ATTN_NO_MEMORY, no leak, then success. */
T_TEST(quant_out_of_memory)
{
    uint64_t rng = 5;
    for (int path = 0; path < 2; path++) {
        int64_t rows[1] = {40};
        qcase c;
        case_make(&c, &rng, path ? 20 : 1, 64, 1, rows);
        c.type[0] = ATTN_QUANT_Q4_1;
        t_fill_quant(&rng, ATTN_QUANT_Q4_1, c.w[0], 80);
        float *y = malloc((size_t)(c.n * 40) * sizeof(float));
        attn_quant_matrix w = {c.w[0], ATTN_QUANT_Q4_1, 40};
        attn_ctx *ctx = t_ctx(2);
        attn_status st = ATTN_NO_MEMORY;
        long fails = 0;
        for (long at = 1; st == ATTN_NO_MEMORY && at < 10; at++) {
            t_counting cnt = {0, 0, at};
            attn_set_allocator(t_count_alloc, t_count_free, &cnt);
            st = attn_quant_matmul(ctx, c.x, c.n, 64, &w, 1, &y);
            attn_set_allocator(NULL, NULL, NULL);
            T_EQ_INT(cnt.live, 0);
            fails += st == ATTN_NO_MEMORY;
        }
        T_EQ_STATUS(st, ATTN_OK);
        T_CHECK(fails >= 1);
        free(y);
        case_free(&c);
    }
}
