/* sdpa.c - a program built against an installed attn (tests/install/run.sh):
 * one causal grouped-query attention forward through <attn/attn.h>, checked
 * against the same attention computed here in double, and the header's
 * version checked against ATTN_EXPECT_VERSION (the one pkg-config or
 * find_package reported). Prints "sdpa ok: ..." and exits 0 when both hold.
 *   q [B, Sq, Hq, D], k, v [B, Sk, Hkv, D], o [B, Sq, Hq, D], lse [B, Hq, Sq, 1] */
#include <attn/attn.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef ATTN_EXPECT_VERSION
#error "build with -DATTN_EXPECT_VERSION=\"x.y.z\""
#endif

enum { B = 2, SQ = 5, SK = 7, HQ = 4, HKV = 2, D = 8 };

static float q[B][SQ][HQ][D], k[B][SK][HKV][D], v[B][SK][HKV][D];
static float o[B][SQ][HQ][D], lse[B][HQ][SQ];

/* Deterministic inputs in [-1, 1): a 64-bit LCG's top bits. */
static void fill(float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(*state >> 40) / (double)(1ULL << 23) - 1.0);
    }
}

/* The largest |o - o_ref| and |lse - lse_ref| over every row, with causal
 * top-left alignment (query i sees keys 0..i) and scale 1/sqrt(D). */
static double max_error(void)
{
    double err = 0.0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HQ; h++)
            for (int i = 0; i < SQ; i++) {
                int g = h / (HQ / HKV);
                double s[SK], m = -INFINITY, sum = 0.0;
                for (int j = 0; j <= i; j++) {
                    double dot = 0.0;
                    for (int d = 0; d < D; d++) dot += (double)q[b][i][h][d] * k[b][j][g][d];
                    s[j] = dot / sqrt((double)D);
                    m = s[j] > m ? s[j] : m;
                }
                for (int j = 0; j <= i; j++) sum += exp(s[j] - m);
                for (int d = 0; d < D; d++) {
                    double acc = 0.0;
                    for (int j = 0; j <= i; j++) acc += exp(s[j] - m) / sum * v[b][j][g][d];
                    err = fmax(err, fabs(acc - o[b][i][h][d]));
                }
                err = fmax(err, fabs(m + log(sum) - lse[b][h][i]));
            }
    return err;
}

int main(void)
{
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", ATTN_VERSION_MAJOR, ATTN_VERSION_MINOR,
             ATTN_VERSION_PATCH);
    if (strcmp(version, ATTN_EXPECT_VERSION) != 0) {
        fprintf(stderr, "sdpa: the header says attn %s, the package %s\n", version,
                ATTN_EXPECT_VERSION);
        return 1;
    }
    uint64_t state = 42;
    fill(&q[0][0][0][0], sizeof q / sizeof(float), &state);
    fill(&k[0][0][0][0], sizeof k / sizeof(float), &state);
    fill(&v[0][0][0][0], sizeof v / sizeof(float), &state);

    attn_ctx *ctx = NULL;
    attn_status st = attn_ctx_create(2, &ctx);
    attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, B, SQ, HQ, D);
    attn_tensor tk = attn_tensor_make(k, ATTN_DTYPE_F32, B, SK, HKV, D);
    attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, B, SK, HKV, D);
    attn_tensor to = attn_tensor_make(o, ATTN_DTYPE_F32, B, SQ, HQ, D);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, B, HQ, SQ, 1);
    attn_sdpa_params p = attn_sdpa_params_default();
    p.causal = 1;
    if (st == ATTN_OK) st = attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, &tl);
    attn_ctx_free(ctx);
    if (st != ATTN_OK) {
        fprintf(stderr, "sdpa: %s (%s)\n", attn_status_name(st), attn_last_error());
        return 1;
    }
    const double tol = 1e-5;
    double err = max_error();
    if (!(err <= tol)) {
        fprintf(stderr, "sdpa: max error %.3g against double exceeds %.0e\n", err, tol);
        return 1;
    }
    printf("sdpa ok: attn %s, max |o - o_ref|, |lse - lse_ref| = %.2e <= %.0e\n", version, err,
           tol);
    return 0;
}
