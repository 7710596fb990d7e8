/* test_half.c - the half-precision conversions (core/half.h and the AVX2
 * kernels' vector twins, bit for bit) against an oracle computed in double
 * from the definition of rounding: float32 -> half on every float32 bit
 * pattern under `--configs 40000` or more (make test-long; 2^32 patterns
 * take about a minute), otherwise on a dense sample (every sign, exponent
 * and high fraction bits, with every tie position and its neighbours);
 * half -> float32 on all 65536 patterns of each half type. */
#include "test.h"

#include "core/half.h"
#if defined(ATTN_HAVE_AVX2)
#include "kernels/x86/sdpa_x86.h"
#endif

#include <stdlib.h>
#include <string.h>

/* The half formats: significand bits (with the implicit one), smallest
 * normal exponent, largest finite value, quiet bit and exponent field. */
typedef struct {
    const char *name;
    attn_dtype dt;
    int p, emin;
    double max;
    uint16_t quiet, exp_mask;
} fmt;

static const fmt formats[2] = {
    {"bf16", ATTN_DTYPE_BF16, 8, -126, 0x1.FEp127, 0x0040, 0x7F80},
    {"f16", ATTN_DTYPE_F16, 11, -14, 65504.0, 0x0200, 0x7C00},
};

/* The float32 value of pattern h, kept in a float: widening a signaling
 * NaN to double would make it quiet (and hide what the conversion did). */
static float half_value(const fmt *f, uint16_t h)
{
    return f->dt == ATTN_DTYPE_BF16 ? attn__bf16_to_f32(h) : attn__f16_to_f32(h);
}

static uint16_t to_half(const fmt *f, float x)
{
    return f->dt == ATTN_DTYPE_BF16 ? attn__f32_to_bf16(x) : attn__f32_to_f16(x);
}

/* The ulp in format f of the floats whose high 16 bits are hi (one sign
 * and exponent): 2^(e - p + 1) for the exponent e of their leading bit,
 * at least the format's smallest normal exponent. */
static double chunk_ulp(const fmt *f, uint32_t hi)
{
    int biased = (int)(hi >> 7 & 0xFF);
    int lead = biased == 0 ? -127 : biased - 127; /* float subnormals lie below 2^-126 */
    return ldexp(1.0, (lead < f->emin ? f->emin : lead) - (f->p - 1));
}

/* The nearest value of format f to x (not NaN), ties to even, or +-Inf
 * past the largest finite value: |x| in units of its ulp in f (a power of
 * two, so the scaling is exact), rounded to an integer by adding and
 * removing 2^52 (exact in double, in the default nearest-even mode),
 * scaled back. */
static double oracle(const fmt *f, double x, double ulp)
{
    double a = fabs(x);
    if (isinf(a)) return x;
    double y = a / ulp + 0x1p52;
    double r = (y - 0x1p52) * ulp;
    return copysign(r > f->max ? INFINITY : r, x);
}

static long mismatches;

/* Counts a wrong conversion of pattern bits; prints the first few. */
static void report(const char *what, uint32_t bits, double got, double want)
{
    if (++mismatches <= 8)
        t_fail(__FILE__, __LINE__, "%s of 0x%08x: got %.9g, want %.9g", what, (unsigned)bits, got, want);
}

/* x[n] (bit patterns bits[n]) to format f: the scalar conversion against
 * the oracle, and (if vec is not NULL) the vector one bit for bit. */
static void check_chunk(const fmt *f, const float *x, const uint32_t *bits, int n, const uint16_t *vec,
                        uint16_t *out)
{
    double ulp = chunk_ulp(f, bits[0] >> 16);
    for (int i = 0; i < n; i++) out[i] = to_half(f, x[i]);
    for (int i = 0; i < n; i++) {
        uint16_t h = out[i];
        if (vec != NULL && vec[i] != h) report("AVX2 vs scalar (bits)", bits[i], vec[i], h);
        if (isnan(x[i])) { /* a quiet NaN of the same sign keeping the payload's high bits */
            uint32_t keep = f->dt == ATTN_DTYPE_BF16 ? bits[i] >> 16 : ((bits[i] >> 16) & 0x8000u) | 0x7C00u |
                                                                          ((bits[i] >> 13) & 0x3FFu);
            if (h != (uint16_t)(keep | f->quiet)) report(f->name, bits[i], h, keep | f->quiet);
            continue;
        }
        double want = oracle(f, (double)x[i], ulp), got = half_value(f, h);
        if (!(got == want && !signbit(got) == !signbit(want))) report(f->name, bits[i], got, want);
    }
}

/* The low 16 bits to visit in sampled mode: every tie position and its
 * neighbours (with all high halves, this covers the ties of every
 * rounding position, subnormal ones included), and a stride. */
static int sample_lows(uint16_t *lo)
{
    int n = 0;
    for (uint32_t v = 0; v < 65536; v += 97) lo[n++] = (uint16_t)v;
    static const uint16_t fixed[] = {0x0001, 0x0002, 0x7FFF, 0x8000, 0x8001, 0xFFFE, 0xFFFF};
    for (size_t x = 0; x < sizeof fixed / sizeof fixed[0]; x++) lo[n++] = fixed[x];
    for (uint32_t k = 0; k < 65536; k += 0x1000) /* f16 ties (bit 12) and bf16's neighbours */
        for (int d = -1; d <= 1; d++) lo[n++] = (uint16_t)(k + 0x1000u + (uint32_t)d);
    return n;
}

void test_half_from_float(void)
{
    enum { N = 65536 };
    static float x[N];
    static uint32_t bits[N];
    static uint16_t out[N], vec[N], lows[N];
    bool vector = false;
#if defined(ATTN_HAVE_AVX2)
    vector = t_kernel_available(ATTN_KERNEL_AVX2);
#endif
    int n_low = N;
    if (t_configs >= 40000)
        for (int i = 0; i < N; i++) lows[i] = (uint16_t)i;
    else
        n_low = sample_lows(lows);
    long checked = 0;
    mismatches = 0;
    for (uint32_t hi = 0; hi < 65536; hi++) {
        for (int i = 0; i < n_low; i++) {
            bits[i] = hi << 16 | lows[i];
            memcpy(&x[i], &bits[i], 4);
        }
        for (int f = 0; f < 2; f++) {
#if defined(ATTN_HAVE_AVX2)
            if (vector) attn__avx2_to_half(x, vec, n_low / 8 * 8, formats[f].dt);
            for (int i = n_low / 8 * 8; vector && i < n_low; i++) vec[i] = to_half(&formats[f], x[i]);
#endif
            check_chunk(&formats[f], x, bits, n_low, vector ? vec : NULL, out);
        }
        checked += n_low;
    }
    t_checks++;
    if (mismatches > 0) t_fail(__FILE__, __LINE__, "%ld conversions differ from the oracle", mismatches);
    printf("  float32 -> bf16, f16: %ld patterns (%s), scalar against the oracle%s\n", checked,
           checked == 65536L * 65536L ? "every one" : "a sample with every tie class; every one under --configs 40000",
           vector ? ", AVX2 vectors against the scalar" : "; AVX2 vectors: skipped (no AVX2 on this CPU or build)");
}

/* The value of half pattern h by its definition (NaN: NaN). */
static double half_definition(const fmt *f, uint16_t h)
{
    int mbits = f->p - 1, ebias = -f->emin + 1;
    int e = (h & f->exp_mask) >> mbits, m = h & ((1 << mbits) - 1);
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if ((h & f->exp_mask) == f->exp_mask) return m == 0 ? s * INFINITY : NAN;
    return e == 0 ? s * ldexp(m, 1 - ebias - mbits) : s * ldexp(m + (1 << mbits), e - ebias - mbits);
}

void test_half_to_float(void)
{
    static uint16_t h[65536];
    static float vec[65536];
    bool vector = false;
#if defined(ATTN_HAVE_AVX2)
    vector = t_kernel_available(ATTN_KERNEL_AVX2);
#endif
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    mismatches = 0;
    for (int f = 0; f < 2; f++) {
        const fmt *F = &formats[f];
#if defined(ATTN_HAVE_AVX2)
        if (vector) attn__avx2_from_half(h, vec, 65536, F->dt);
#endif
        for (int i = 0; i < 65536; i++) {
            float got = half_value(F, h[i]);
            double want = half_definition(F, h[i]);
            uint32_t gb;
            memcpy(&gb, &got, 4);
            if (isnan(want)) { /* NaN: sign and payload kept, quiet for F16 (as F16C) */
                uint32_t keep = F->dt == ATTN_DTYPE_BF16 ? (uint32_t)h[i] << 16 : ((uint32_t)(h[i] & 0x8000u) << 16) |
                                                         0x7FC00000u | ((uint32_t)(h[i] & 0x3FFu) << 13);
                if (gb != keep) report(F->name, h[i], gb, keep);
            } else if (!((double)got == want && !signbit(got) == !signbit(want))) {
                report(F->name, h[i], got, want);
            }
            if (vector && memcmp(&vec[i], &got, 4) != 0) report("AVX2 vs scalar", h[i], vec[i], got);
        }
    }
    t_checks++;
    if (mismatches > 0) t_fail(__FILE__, __LINE__, "%ld half -> float conversions wrong", mismatches);
    printf("  bf16, f16 -> float32: all 65536 patterns each against their definition%s\n",
           vector ? ", AVX2 vectors against the scalar" : "; AVX2 vectors: skipped (no AVX2 on this CPU or build)");
}
