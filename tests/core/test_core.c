/* test_core.c - status strings, the version string, the Philox known
 * answers, the dropout keep rate, hand-computed attention cases, and
 * finite-difference checks of the reference backward and of the float32
 * backward. */
#include "problem.h"

#if defined(ATTN_HAVE_AVX2)
#include "kernels/x86/sdpa_x86.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_status_strings(void)
{
    static const attn_status all[] = {ATTN_OK, ATTN_NULL_ARG, ATTN_BAD_DIM, ATTN_SHAPE_MISMATCH,
                                      ATTN_BAD_DTYPE, ATTN_BAD_STRIDE, ATTN_OVERFLOW, ATTN_BAD_PARAM,
                                      ATTN_BAD_HEADS, ATTN_BAD_MASK, ATTN_OVERLAP, ATTN_NO_MEMORY,
                                      ATTN_THREAD, ATTN_UNSUPPORTED};
    for (size_t x = 0; x < sizeof all / sizeof all[0]; x++) {
        T_CHECK(strncmp(attn_status_name(all[x]), "ATTN_", 5) == 0);
        T_CHECK(strcmp(attn_status_name(all[x]), "ATTN_UNKNOWN") != 0);
        T_CHECK(strlen(attn_status_string(all[x])) > 5);
        for (size_t y = 0; y < x; y++) T_CHECK(strcmp(attn_status_name(all[x]), attn_status_name(all[y])) != 0);
    }
    T_CHECK(strcmp(attn_status_name((attn_status)-999), "ATTN_UNKNOWN") == 0);
    T_CHECK(strcmp(attn_status_name(ATTN_BAD_DIM), "ATTN_BAD_DIM") == 0);
}

/* The library reports the version of its header's macros, as "M.m.p". */
void test_version_string(void)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", ATTN_VERSION_MAJOR, ATTN_VERSION_MINOR,
             ATTN_VERSION_PATCH);
    T_CHECK(attn_version() != NULL);
    T_CHECK(strcmp(attn_version(), want) == 0);
}

void test_philox_known_answers(void)
{
    /* Random123's kat_vectors, philox4x32 with 10 rounds: ctr, key, output. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    for (int x = 0; x < 3; x++) {
        uint32_t out[4];
        attn_philox4x32_10(kat[x], kat[x] + 4, out);
        for (int w = 0; w < 4; w++) T_EQ_INT(out[w], kat[x][6 + w]);
    }
}

void test_dropout_keep_rate(void)
{
    static const double ps[] = {0.17, 0.5, 0.9};
    for (int x = 0; x < 3; x++) {
        double p = ps[x];
        long n = 0, kept = 0, kept_j[4] = {0};
        for (int64_t i = 0; i < 1000; i++)
            for (int64_t j = 0; j < 1000; j++, n++) {
                int k = attn_dropout_keep(42, 7, p, i % 3, i % 5, i, j, 8);
                kept += k;
                kept_j[j % 4] += k;
            }
        double mean = n * (1 - p), sigma = sqrt(n * p * (1 - p));
        T_LE(fabs((double)kept - mean), 6 * sigma);
        for (int w = 0; w < 4; w++) /* each word of a Philox output */
            T_LE(fabs((double)kept_j[w] - mean / 4), 6 * sigma / 2);
    }
    T_EQ_INT(attn_dropout_keep(1, 2, 0.0, 0, 0, 5, 5, 1), 1);
    /* The mask depends on every coordinate and on seed and offset. */
    int diff_seed = 0, diff_off = 0, diff_b = 0;
    for (int64_t j = 0; j < 256; j++) {
        int base = attn_dropout_keep(1, 0, 0.5, 0, 0, 3, j, 4);
        diff_seed += base != attn_dropout_keep(2, 0, 0.5, 0, 0, 3, j, 4);
        diff_off += base != attn_dropout_keep(1, 1, 0.5, 0, 0, 3, j, 4);
        diff_b += base != attn_dropout_keep(1, 0, 0.5, 1, 0, 3, j, 4);
    }
    T_CHECK(diff_seed > 64 && diff_off > 64 && diff_b > 64);
}

/* A tiny problem with every option off; callers set what they test. */
static t_cfg tiny(int64_t Sq, int64_t Sk, int64_t H, int64_t Dk, int64_t Dv)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = 1; c.Sq = Sq; c.Sk = Sk; c.Hq = H; c.Hkv = H; c.Dk = Dk; c.Dv = Dv;
    c.window_left = c.window_right = -1;
    c.threads = 1;
    return c;
}

static void expect_o(t_problem *P, const double *want, double tol)
{
    for (int path = 0; path < 2; path++) {
        t_result r;
        t_run(P, path ? ATTN_DTYPE_F32 : ATTN_DTYPE_F64, t_ctx(1), LAYOUT_BSHD, false, &r);
        T_EQ_STATUS(r.status, ATTN_OK);
        int64_t n = P->c.B * P->c.Sq * P->c.Hq * P->c.Dv;
        for (int64_t x = 0; x < n; x++) T_LE(fabs(r.o[x] - want[x]), path ? 1e-6 : tol);
        t_result_free(&r);
    }
}

void test_hand_computed(void)
{
    t_problem P;
    t_cfg c = tiny(1, 2, 1, 1, 1);
    c.scale = 1.0;
    t_problem_make(&P, &c);
    /* s = [0, ln 2] -> p = [1/3, 2/3]; O = 3/3 + 2*6/3 = 5; LSE = ln 3 */
    P.q[0] = 1.0; P.k[0] = 0.0; P.k[1] = log(2.0); P.v[0] = 3.0; P.v[1] = 6.0;
    double want1[1] = {5.0};
    expect_o(&P, want1, 1e-14);
    t_result r;
    t_run(&P, ATTN_DTYPE_F64, t_ctx(1), LAYOUT_BSHD, false, &r);
    T_LE(fabs(r.lse[0] - log(3.0)), 1e-15);
    t_result_free(&r);
    /* ALiBi slope 1, q = 0: s = [0, -1] -> O = (3e + 6) / (e + 1) */
    P.q[0] = 0.0;
    P.c.alibi = true;
    P.alibi = calloc(1, sizeof(double));
    P.alibi[0] = 1.0;
    double want2[1] = {(3.0 * exp(1.0) + 6.0) / (exp(1.0) + 1.0)};
    expect_o(&P, want2, 1e-14);
    t_problem_free(&P);

    /* Soft-capping: raw scores [10, 0] with cap 2 -> [2 tanh 5, 0]. */
    c = tiny(1, 2, 1, 1, 1);
    c.scale = 1.0;
    c.softcap = 2.0;
    t_problem_make(&P, &c);
    P.q[0] = 1.0; P.k[0] = 10.0; P.k[1] = 0.0; P.v[0] = 1.0; P.v[1] = 0.0;
    double e = exp(2.0 * tanh(5.0));
    double want3[1] = {e / (e + 1.0)};
    expect_o(&P, want3, 1e-14);
    t_problem_free(&P);

    /* q = 0 makes every visible key equally likely: O is the mean of the
     * visible V rows. Sq = 2, Sk = 3, v_j = j. */
    struct { int causal, align; int64_t wl, wr; double o0, o1; } cases[] = {
        {1, ATTN_ALIGN_TOP_LEFT, -1, -1, 0.0, 0.5},     /* rows see {0}, {0,1} */
        {1, ATTN_ALIGN_BOTTOM_RIGHT, -1, -1, 0.5, 1.0}, /* rows see {0,1}, {0,1,2} */
        {0, ATTN_ALIGN_BOTTOM_RIGHT, 0, 0, 1.0, 2.0},   /* window (0,0): the diagonal */
        {0, ATTN_ALIGN_TOP_LEFT, 0, 1, 0.5, 1.5},       /* window (0,1): {0,1}, {1,2} */
        {0, ATTN_ALIGN_TOP_LEFT, -1, 0, 0.0, 0.5},      /* window (inf,0) = causal */
    };
    for (size_t x = 0; x < sizeof cases / sizeof cases[0]; x++) {
        c = tiny(2, 3, 1, 2, 1);
        c.causal = cases[x].causal;
        c.align = cases[x].align;
        c.window_left = cases[x].wl;
        c.window_right = cases[x].wr;
        t_problem_make(&P, &c);
        memset(P.q, 0, 4 * sizeof(double));
        for (int j = 0; j < 3; j++) P.v[j] = j;
        double want[2] = {cases[x].o0, cases[x].o1};
        expect_o(&P, want, 1e-15);
        t_problem_free(&P);
    }

    /* Dropout: uniform weights 1/4 over 4 keys, kept ones scaled by 2. */
    c = tiny(1, 4, 1, 1, 1);
    c.dropout_p = 0.5;
    c.seed = 3;
    t_problem_make(&P, &c);
    P.q[0] = 0.0;
    attn_sdpa_params a = t_params(&P, NULL, NULL);
    double want4[1] = {0.0};
    for (int j = 0; j < 4; j++) {
        P.v[j] = j + 1;
        if (attn_dropout_keep(a.seed, a.offset, 0.5, 0, 0, 0, j, 1)) want4[0] += 0.25 * 2.0 * (j + 1);
    }
    expect_o(&P, want4, 1e-15);
    t_problem_free(&P);
}

/* L = sum(O * dO) from a float64 forward. */
static double loss(const t_problem *P)
{
    t_result r;
    t_run(P, ATTN_DTYPE_F64, t_ctx(1), LAYOUT_BSHD, false, &r);
    double l = 0.0;
    for (int64_t x = 0; x < P->c.B * P->c.Sq * P->c.Hq * P->c.Dv; x++) l += r.o[x] * P->dout[x];
    t_result_free(&r);
    return l;
}

/* Central differences of L over every input element, against the analytic
 * gradients of `dt` (F64: the reference, F32: the tiled kernel). */
static void finite_difference(attn_dtype dt, double tol)
{
    for (int variant = 0; variant < 3; variant++) {
        t_cfg c = tiny(5, 7, 4, 3, 2);
        c.B = 2;
        c.Hkv = 2;
        c.bias_kind = variant == 1 ? BIAS_FULL : BIAS_SHARED;
        c.dbias = true;
        c.softcap = variant == 0 ? 0.7 : 0.0;
        c.causal = variant != 2;
        c.align = variant == 1;
        c.alibi = variant == 0;
        c.dropout_p = variant == 2 ? 0.3 : 0.0;
        c.klens = variant == 1;
        c.seed = 11 + (uint64_t)variant;
        t_problem P;
        t_problem_make(&P, &c);
        for (int64_t x = 0; P.bias && x < t_numel(P.bias_dim); x++)
            if (!isfinite(P.bias[x]) || P.bias[x] < -1e30) P.bias[x] = 0.5; /* smooth everywhere */
        t_result g;
        t_run(&P, dt, t_ctx(2), LAYOUT_BSHD, true, &g);
        T_EQ_STATUS(g.status, ATTN_OK);
        struct { double *x, *grad; int64_t n; } ins[4] = {
            {P.q, g.dq, c.B * c.Sq * c.Hq * c.Dk}, {P.k, g.dk, c.B * c.Sk * c.Hkv * c.Dk},
            {P.v, g.dv, c.B * c.Sk * c.Hkv * c.Dv}, {P.bias, g.dbias, t_numel(P.bias_dim)}};
        double worst = 0.0;
        for (int t = 0; t < 4; t++)
            for (int64_t x = 0; x < ins[t].n; x++) {
                double keep = ins[t].x[x], h = 1e-5;
                ins[t].x[x] = keep + h;
                double lp = loss(&P);
                ins[t].x[x] = keep - h;
                double lm = loss(&P);
                ins[t].x[x] = keep;
                double num = (lp - lm) / (2 * h), err = fabs(num - ins[t].grad[x]) / fmax(1.0, fabs(num));
                if (err > worst) worst = err;
            }
        T_LE(worst, tol);
        t_result_free(&g);
        t_problem_free(&P);
    }
}

void test_ref64_finite_difference(void) { finite_difference(ATTN_DTYPE_F64, 1e-8); }

void test_tiled_finite_difference(void) { finite_difference(ATTN_DTYPE_F32, 2e-5); }

/* The AVX2 kernels' exp against double-precision exp: every 61st float in
 * [-87, 0], at most 2 ulp; exact 0 below -87 and for -inf; NaN for NaN. */
void test_avx2_exp_accuracy(void)
{
#if !defined(ATTN_HAVE_AVX2)
    printf("  (no AVX2 kernels in this build: nothing to measure)\n");
#else
    if (!t_kernel_available(ATTN_KERNEL_AVX2)) {
        printf("  (no AVX2 on this CPU: nothing to measure)\n");
        return;
    }
    enum { N = 4096 };
    static float x[N], y[N];
    uint32_t lo = 0x80000000u, hi; /* -0 .. -87 as bit patterns */
    float m87 = -87.0f;
    memcpy(&hi, &m87, 4);
    double worst = 0.0;
    long n = 0;
    for (uint64_t bits = lo; bits <= hi;) {
        int k = 0;
        for (; k < N && bits <= hi; k++, bits += 61) {
            uint32_t b32 = (uint32_t)bits;
            memcpy(&x[k], &b32, 4);
        }
        attn__avx2_exp(x, y, k);
        for (int i = 0; i < k; i++, n++) {
            double want = exp((double)x[i]);
            double ulp = nextafterf((float)want, INFINITY) - (float)want;
            double err = fabs((double)y[i] - want) / ulp;
            if (err > worst) worst = err;
        }
    }
    printf("  exp256: %ld inputs in [-87, 0], max error %.3f ulp\n", n, worst);
    T_LE(worst, 2.0);
    float sp[4] = {-87.5f, -1000.0f, -INFINITY, NAN}, so[4];
    attn__avx2_exp(sp, so, 4);
    T_CHECK(so[0] == 0.0f && so[1] == 0.0f && so[2] == 0.0f && isnan(so[3]));
#endif
}

/* The AVX-512 kernels' exp gives the AVX2 one's bits, lane for lane (the
 * same operations at 16 lanes): every 997th float pattern of [-88, 88] and
 * the specials, in lengths that end in every lane. */
void test_avx512_exp_equals_avx2(void)
{
#if !defined(ATTN_HAVE_AVX512) || !defined(ATTN_HAVE_AVX2)
    printf("  (no AVX-512 kernels in this build: nothing to compare)\n");
#else
    if (!t_kernel_available(ATTN_KERNEL_AVX512)) {
        printf("  avx512: skipped (not available on this machine)\n");
        return;
    }
    enum { N = 4099 };
    static float x[N], y2[N], y5[N];
    const float specials[] = {0.0f, -0.0f, 88.0f, 88.7f, 89.0f, -87.0f, -87.5f, -103.0f, 1e30f, -1e30f,
                              INFINITY, -INFINITY, NAN, -NAN, 1e-40f, -1e-40f};
    long n = 0, differ = 0;
    for (int s = 0; s < 2; s++) /* positive, then negative floats up to 88 */
        for (uint32_t bits = 0; bits <= 0x42B00000u;) {
            int k = 0;
            for (; k < N && bits <= 0x42B00000u; k++, bits += 997) {
                uint32_t b32 = bits | (s ? 0x80000000u : 0u);
                memcpy(&x[k], &b32, 4);
            }
            if (bits > 0x42B00000u) /* the last chunk also carries the specials */
                for (size_t i = 0; i < sizeof specials / sizeof specials[0] && k < N; i++) x[k++] = specials[i];
            attn__avx2_exp(x, y2, k);
            attn__avx512_exp(x, y5, k);
            for (int i = 0; i < k; i++, n++) differ += memcmp(&y2[i], &y5[i], 4) != 0;
        }
    printf("  %ld inputs, %ld differ\n", n, differ);
    T_EQ_INT(differ, 0);
    for (int len = 1; len <= 40; len++) { /* every tail length against the lane-wise result */
        for (int i = 0; i < len; i++) x[i] = -0.37f * (float)i;
        attn__avx512_exp(x, y5, len);
        attn__avx2_exp(x, y2, len);
        T_CHECK(memcmp(y2, y5, sizeof(float) * (size_t)len) == 0);
    }
#endif
}

/* vdpbf16ps (the AVX512-BF16 forward's product, kernels/x86/vec.h) against
 * the SDM's definition computed here in scalars: per lane j, acc +=
 * a[2j+1] b[2j+1] then acc += a[2j] b[2j], each one FMA rounded to nearest
 * even, subnormal inputs (acc included) read as zeros of their sign and
 * subnormal results written as such. On a CPU with AVX512-BF16 this
 * checks the instruction against the definition; in the pair build
 * (make test-avx512-emu) the AVX2 form; so the two builds' forwards agree
 * bit for bit (the digests compare them). Random values over the whole
 * exponent range, and every special class: zeros of both signs,
 * subnormals, the smallest normals, the largest finite, Inf, NaN. */
#if defined(ATTN_HAVE_AVX512BF16)
static float dp_flush(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

static float dp_bf(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
#endif

void test_avx512bf16_dot_definition(void)
{
#if !defined(ATTN_HAVE_AVX512BF16)
    printf("  (no AVX512-BF16 kernels in this build: nothing to check)\n");
#else
    if (!t_kernel_available(ATTN_KERNEL_AVX512BF16)) {
        printf("  avx512bf16: skipped (not available on this machine)\n");
        return;
    }
    static const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x8080, 0x7F7F, 0xFF7F,
                                       0x7F80, 0xFF80, 0x7FC0, 0x3F80, 0xBF80, 0x0040, 0x00FF, 0x4000};
    static const uint32_t special_acc[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807FFFFFu, 0x00800000u,
                                           0x7F7FFFFFu, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x3F800000u};
    uint64_t s = 0xBF16D07;
    long n = 0, differ = 0, nan_lanes = 0;
    for (int it = 0; it < 20000; it++) {
        float acc[16], got[16];
        uint16_t a[32], b[32];
        int mode = it % 4; /* 0: any bits; 1: moderate exponents; 2: near underflow; 3: specials mixed in */
        for (int i = 0; i < 32; i++) {
            uint64_t r = t_rand_u64(&s);
            if (mode == 0) a[i] = (uint16_t)r, b[i] = (uint16_t)(r >> 16);
            else if (mode == 1) a[i] = (uint16_t)((r & 0x807F) | ((120 + (r >> 8) % 16) << 7)),
                                b[i] = (uint16_t)(((r >> 16) & 0x807F) | ((120 + (r >> 24) % 16) << 7));
            else if (mode == 2) a[i] = (uint16_t)((r & 0x807F) | ((58 + (r >> 8) % 12) << 7)),
                                b[i] = (uint16_t)(((r >> 16) & 0x807F) | ((58 + (r >> 24) % 12) << 7));
            else a[i] = special[r % 16], b[i] = (r >> 8) % 3 ? (uint16_t)(r >> 16) : special[(r >> 12) % 16];
        }
        for (int j = 0; j < 16; j++) {
            uint64_t r = t_rand_u64(&s);
            uint32_t u = mode == 3 && r % 3 == 0 ? special_acc[(r >> 8) % 10]
                       : mode == 2 ? (uint32_t)((r & 0x807FFFFFu) | ((uint32_t)((r >> 32) % 8) << 23))
                       : mode == 1 ? (uint32_t)((r & 0x807FFFFFu) | ((uint32_t)(120 + (r >> 32) % 16) << 23))
                                   : (uint32_t)r;
            memcpy(&acc[j], &u, 4);
        }
        attn__avx512_dpbf16(acc, a, b, got);
        for (int j = 0; j < 16; j++, n++) {
            float want = dp_flush(acc[j]);
            want = dp_flush(fmaf(dp_flush(dp_bf(a[2 * j + 1])), dp_flush(dp_bf(b[2 * j + 1])), want));
            want = dp_flush(fmaf(dp_flush(dp_bf(a[2 * j])), dp_flush(dp_bf(b[2 * j])), want));
            if (isnan(want)) { /* a NaN's sign and payload are not specified here */
                nan_lanes++;
                differ += !isnan(got[j]);
            } else {
                differ += memcmp(&want, &got[j], 4) != 0;
            }
        }
    }
    printf("  %ld lanes (%ld NaN), %ld differ from the definition\n", n, nan_lanes, differ);
    T_EQ_INT(differ, 0);
#endif
}
