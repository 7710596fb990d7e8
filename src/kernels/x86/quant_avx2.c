/* quant_avx2.c - AVX2+FMA+F16C kernels of the quantized matrix products
 * (attn/quant.h); the portable twin is kernels/portable/quant_ref.c.
 *
 * GEMV (few rows of x, the decoding of one token): each block of W is
 * expanded in registers to 32 floats and multiplied with x in float32. A
 * Q4_1 block contributes d * sum(q * x) + m * sum(x), with the block sums of
 * x computed once per call (in->xsum), so the minimum m costs one scalar
 * FMA per block instead of 32 additions.
 *
 * GEMM (many rows, a prompt): a panel of 64 columns of W by 256 of K is
 * dequantized into ws as four [256][16] float slices, and a 6x16 register
 * tile of y accumulates x rows (broadcast) times a slice; the dequantization
 * is paid once per 128 rows of x. Dequantizing computes d * q + m with one
 * FMA, which rounds exactly like the twin's d * q + m (d * q is exact). */
#include "kernels/quant_kernels.h"

#include "kernels/x86/avx2_inline.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

enum { MR = 6, NR = 16 };

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* [d, m, ., .] from the first 8 bytes of a Q4_1 block (lanes 2 and 3 are
 * the first quants read as halves: never used). */
static inline __m128 scales_q4_1(const unsigned char *b)
{
    return _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)b));
}

/* [d, 0, 0, 0] from the first 2 bytes of a Q8_0 block. */
static inline __m128 scale_q8_0(const unsigned char *b)
{
    return _mm_cvtph_ps(_mm_cvtsi32_si128(attn__quant_u16(b)));
}

/* The 32 4-bit values of qs [16] as floats, f[t] = q[8t .. 8t+7]: bytes
 * 0..7 (8..15) widened to 32-bit lanes hold q[0..7] (q[8..15]) in their
 * low nibbles and q[16..23] (q[24..31]) in their high ones. */
static inline void q4_floats(const unsigned char *qs, __m256 f[4])
{
    const __m256i nib = _mm256_set1_epi32(15);
    __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)qs));
    __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8)));
    f[0] = _mm256_cvtepi32_ps(_mm256_and_si256(v0, nib));
    f[1] = _mm256_cvtepi32_ps(_mm256_and_si256(v1, nib));
    f[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4));
    f[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4));
}

/* The 32 int8 values of qs [32] as floats, f[t] = q[8t .. 8t+7]. */
static inline void q8_floats(const unsigned char *qs, __m256 f[4])
{
    for (int t = 0; t < 4; t++)
        f[t] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * t))));
}

/* sum over the block of q[i] * x[i], as 8 lanes: two chains of two, then
 * their sum (a chain of four FMAs per block kept the GEMV latency-bound:
 * 6-8% slower on Zen 3). */
static inline __m256 block_dot(const __m256 f[4], const float *x)
{
    __m256 s0 = _mm256_mul_ps(f[0], _mm256_loadu_ps(x));
    __m256 s1 = _mm256_mul_ps(f[2], _mm256_loadu_ps(x + 16));
    s0 = _mm256_fmadd_ps(f[1], _mm256_loadu_ps(x + 8), s0);
    s1 = _mm256_fmadd_ps(f[3], _mm256_loadu_ps(x + 24), s1);
    return _mm256_add_ps(s0, s1);
}

/* ---- GEMV ------------------------------------------------------------------- */

/* acc += d * (q . x) and accm += m * xs for Q4_1 block blk (xs the sum of
 * its 32 activations x). */
static inline void q4_1_step(const unsigned char *blk, const float *x, float xs, __m256 *acc, float *accm)
{
    __m256 f[4];
    q4_floats(blk + 4, f);
    __m128 dm = scales_q4_1(blk);
    *acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), block_dot(f, x), *acc);
    *accm = fmaf(_mm_cvtss_f32(_mm_movehdup_ps(dm)), xs, *accm);
}

static inline void q8_0_step(const unsigned char *blk, const float *x, __m256 *acc)
{
    __m256 f[4];
    q8_floats(blk + 2, f);
    *acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(scale_q8_0(blk)), block_dot(f, x), *acc);
}

/* One Q4_1 row of nb blocks times x, with xs [nb] the block sums of x. Two
 * accumulators (even and odd blocks) keep two FMA chains in flight. */
static float dot_q4_1(const unsigned char *w, const float *x, const float *xs, int64_t nb)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    float m0 = 0.0f, m1 = 0.0f;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        q4_1_step(w + b * ATTN__Q4_1_BYTES, x + 32 * b, xs[b], &a0, &m0);
        q4_1_step(w + (b + 1) * ATTN__Q4_1_BYTES, x + 32 * (b + 1), xs[b + 1], &a1, &m1);
    }
    if (b < nb) q4_1_step(w + b * ATTN__Q4_1_BYTES, x + 32 * b, xs[b], &a0, &m0);
    return hsum8(_mm256_add_ps(a0, a1)) + (m0 + m1);
}

static float dot_q8_0(const unsigned char *w, const float *x, int64_t nb)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        q8_0_step(w + b * ATTN__Q8_0_BYTES, x + 32 * b, &a0);
        q8_0_step(w + (b + 1) * ATTN__Q8_0_BYTES, x + 32 * (b + 1), &a1);
    }
    if (b < nb) q8_0_step(w + b * ATTN__Q8_0_BYTES, x + 32 * b, &a0);
    return hsum8(_mm256_add_ps(a0, a1));
}

void attn__quant_avx2_gemv(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1, int64_t j0,
                           int64_t j1, float *ws)
{
    int64_t nb = in->K / 32;
    (void)ws;
    for (int64_t j = j0; j < j1; j++) {
        const unsigned char *w = m->w + (size_t)j * m->row_bytes;
        for (int64_t i = i0; i < i1; i++) {
            const float *x = in->x + i * in->K;
            m->y[i * m->rows + j] = m->type == ATTN_QUANT_Q4_1 ? dot_q4_1(w, x, in->xsum + i * nb, nb)
                                                               : dot_q8_0(w, x, nb);
        }
    }
}

/* ---- GEMM ------------------------------------------------------------------- */

/* out [32] = the dequantized weights of one block. */
static void dequant_block(attn_quant q, const unsigned char *blk, float *out)
{
    __m256 f[4], d, m;
    if (q == ATTN_QUANT_Q4_1) {
        __m128 dm = scales_q4_1(blk);
        d = _mm256_broadcastss_ps(dm);
        m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
        q4_floats(blk + 4, f);
    } else {
        d = _mm256_broadcastss_ps(scale_q8_0(blk));
        m = _mm256_setzero_ps();
        q8_floats(blk + 2, f);
    }
    for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + 8 * t, _mm256_fmadd_ps(d, f[t], m));
}

/* ws [nsub][kc][16] = columns j0 .. j0+nc-1 of W (its rows), k in
 * [k0, k0 + kc), one 16-column slice after another; columns past nc are 0.
 * Eight columns at a time: their blocks are dequantized to rows of tmp,
 * then each 8 x 8 square is transposed in registers and stored as eight
 * aligned half rows of the slice. */
static void pack_panel(const attn__qmat *m, int64_t j0, int64_t nc, int64_t k0, int64_t kc, float *ws)
{
    int64_t nsub = (nc + NR - 1) / NR;
    size_t block = m->type == ATTN_QUANT_Q4_1 ? ATTN__Q4_1_BYTES : ATTN__Q8_0_BYTES;
    _Alignas(32) float tmp[8][32];
    for (int64_t c0 = 0; c0 < nsub * NR; c0 += 8) {
        float *dst = ws + (c0 / NR) * kc * NR + c0 % NR;
        int64_t live = nc - c0 < 8 ? (nc > c0 ? nc - c0 : 0) : 8; /* columns of W here, 0..8 */
        for (int64_t j = live; j < 8; j++)
            for (int t = 0; t < 4; t++) _mm256_store_ps(tmp[j] + 8 * t, _mm256_setzero_ps());
        for (int64_t kk = 0; kk < kc; kk += 32) {
            for (int64_t j = 0; j < live; j++)
                dequant_block(m->type, m->w + (size_t)(j0 + c0 + j) * m->row_bytes + (size_t)((k0 + kk) / 32) * block,
                              tmp[j]);
            for (int t = 0; t < 4; t++) {
                __m256 r[8];
                for (int j = 0; j < 8; j++) r[j] = _mm256_load_ps(tmp[j] + 8 * t);
                attn__avx2_transpose8(r);
                for (int i = 0; i < 8; i++) _mm256_store_ps(dst + (kk + 8 * t + i) * NR, r[i]);
            }
        }
    }
}

/* Row yr [nc] = (accumulate ? yr : 0) + the 16 sums in c0, c1. */
static inline void store_row(float *yr, __m256 c0, __m256 c1, int nc, bool accumulate)
{
    if (nc == NR) {
        if (accumulate) {
            c0 = _mm256_add_ps(c0, _mm256_loadu_ps(yr));
            c1 = _mm256_add_ps(c1, _mm256_loadu_ps(yr + 8));
        }
        _mm256_storeu_ps(yr, c0);
        _mm256_storeu_ps(yr + 8, c1);
        return;
    }
    float t[NR];
    _mm256_storeu_ps(t, c0);
    _mm256_storeu_ps(t + 8, c1);
    for (int j = 0; j < nc; j++) yr[j] = accumulate ? yr[j] + t[j] : t[j];
}

/* y [mr][nc] (row stride ldy) = (accumulate ? y : 0) + x [mr][kc] (row
 * stride ldx) times the slice p [kc][16], first nc columns. Rows past mr
 * repeat the last row of x and are not stored. The 12 accumulators are
 * named so that they stay in registers. */
static void tile_6x16(const float *x, int64_t ldx, int mr, const float *p, int64_t kc, float *y,
                      int64_t ldy, int nc, bool accumulate)
{
    const float *x0 = x, *x1 = x + (mr > 1 ? 1 : 0) * ldx, *x2 = x + (mr > 2 ? 2 : mr - 1) * ldx;
    const float *x3 = x + (mr > 3 ? 3 : mr - 1) * ldx, *x4 = x + (mr > 4 ? 4 : mr - 1) * ldx;
    const float *x5 = x + (mr > 5 ? 5 : mr - 1) * ldx;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t kk = 0; kk < kc; kk++) {
        __m256 b0 = _mm256_load_ps(p + kk * NR), b1 = _mm256_load_ps(p + kk * NR + 8), a;
        a = _mm256_broadcast_ss(x0 + kk);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(x1 + kk);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(x2 + kk);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(x3 + kk);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(x4 + kk);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(x5 + kk);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    store_row(y, c00, c01, nc, accumulate);
    if (mr > 1) store_row(y + ldy, c10, c11, nc, accumulate);
    if (mr > 2) store_row(y + 2 * ldy, c20, c21, nc, accumulate);
    if (mr > 3) store_row(y + 3 * ldy, c30, c31, nc, accumulate);
    if (mr > 4) store_row(y + 4 * ldy, c40, c41, nc, accumulate);
    if (mr > 5) store_row(y + 5 * ldy, c50, c51, nc, accumulate);
}

int64_t attn__quant_avx2_ws(int64_t K, bool many)
{
    (void)K;
    return many ? (int64_t)ATTN__QGEMM_COLS * ATTN__QGEMM_KC + 8 : 0;
}

/* The depth of the K chunks: K cut into as few chunks of at most
 * ATTN__QGEMM_KC as it takes, of equal depth (in whole blocks of 32) but
 * the last: K = 576 runs as 288 + 288, not 256 + 256 + 64, whose short
 * chunk pays a tile's loads and stores of y for a quarter of the work. */
static int64_t chunk_depth(int64_t K)
{
    int64_t n = (K + ATTN__QGEMM_KC - 1) / ATTN__QGEMM_KC;
    return (K / 32 + n - 1) / n * 32;
}

void attn__quant_avx2_gemm(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1, float *ws)
{
    float *panel = (float *)(((uintptr_t)ws + 31) & ~(uintptr_t)31); /* 32-byte aligned */
    int64_t nc = j1 - j0, nsub = (nc + NR - 1) / NR, K = in->K, depth = chunk_depth(K);
    for (int64_t k0 = 0; k0 < K; k0 += depth) {
        int64_t kc = K - k0 < depth ? K - k0 : depth;
        pack_panel(m, j0, nc, k0, kc, panel);
        /* a row tile's x (6 rows, at most 7.5 KB) stays in L1 while the
         * slices pass from L2 (slice-outer, each 20 KB slice held in L1 for
         * every row tile, measured 4% slower on Zen 3) */
        for (int64_t i = i0; i < i1; i += MR) {
            int mr = (int)(i1 - i < MR ? i1 - i : MR);
            for (int64_t s = 0; s < nsub; s++) {
                int ncs = (int)(nc - s * NR < NR ? nc - s * NR : NR);
                tile_6x16(in->x + i * K + k0, K, mr, panel + s * kc * NR, kc,
                          m->y + i * m->rows + j0 + s * NR, m->rows, ncs, k0 > 0);
            }
        }
    }
}
