/* sdpa_body.h - the x86 kernels of scaled-dot-product attention, compiled
 * once per vector width: sdpa_avx2.c includes it with 8-lane vectors (one
 * ymm), sdpa_avx512.c with 16-lane vectors (one zmm; or two ymm in the
 * tests' AVX2 build of the AVX-512 kernels). Each of those files defines
 * KN(name), the prefix of the functions it exports, and MR, the rows of
 * the micro-kernel's register tile, then includes this file once; the
 * vector operations are kernels/x86/vec.h's. The kernel table
 * (src/kernels/table.c) runs a build only when CPUID and XGETBV say so
 * (src/core/cpu.c).
 *
 * Everything is built on one register-blocked micro-kernel, gemm():
 * C[M x N] (+)= A[M x K] B[K x N] with MR x NV vectors of C held in
 * accumulators (AVX2: 6 x 2 ymm = 6 x 16 floats in 12 registers;
 * AVX-512: 8 x 2 zmm = 8 x 32 floats in 16 of its 32 registers); per k, NV
 * loads of B and MR broadcasts of A feed MR x NV FMAs. Every element of C
 * sums its K products in order whatever the tile shape, so the two widths
 * agree on every product bit for bit. Operands are packed per tile into
 * zero-padded buffers, so any Dk, Dv, sequence length or stride works:
 *   forward   S = Qs Kt, online softmax on S, O += P V;
 *   backward  S = Q Kt, dP = dO Vt, dS = P (dP - delta),
 *             dV += P^T dO, dK += dS^T Q (per key tile), dQ += dS K.
 * BF16 and F16 tensors are converted to float32 as their tiles are packed
 * (F16 with F16C's vcvtph2ps, BF16 by a 16-bit shift) and outputs are
 * rounded to their dtype, to nearest even, as they are stored; scores,
 * softmax, LSE and every accumulator stay float32. Packing and conversion
 * stay 8 lanes wide in both builds (they move memory; the products, the
 * softmax lines and the decode's in-register conversions are what the
 * width speeds up).
 * Tiles are classified per query block: skipped when no row sees them,
 * "full" (no per-element work) when every row sees all their keys and no
 * element-wise option (boolean mask, bias, ALiBi, soft-capping) is set,
 * otherwise masks are applied per element after the product. A block
 * mask skips the tiles it leaves EMPTY, and a tile it does not mark FULL
 * is not "full" (its hidden keys are set to -inf after the product). */
#include "kernels/x86/sdpa_x86.h"

#include "kernels/x86/avx2_inline.h"
#include "kernels/x86/vec.h"

#include <immintrin.h>
#include <string.h>

/* NV vectors of C per row of the register tile: 16 floats (AVX2) or 32
 * (AVX-512); column counts are multiples of 16, so the AVX-512 build ends
 * a row of tiles with one of a single vector when 16 columns remain. */
enum { BQ = ATTN__X86_TILE_Q, BQB = ATTN__X86_TILE_Q_BWD, BK = ATTN__X86_TILE_K, GR = 2 * MR, NV = 2 };

static int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }

/* ---- the micro-kernel ------------------------------------------------------ */

static inline __attribute__((always_inline)) void
block(int mr, int nv, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
      int64_t ldc, bool acc)
{
    vf c[MR][NV];
    for (int i = 0; i < mr; i++)
        for (int u = 0; u < nv; u++) c[i][u] = acc ? vload(C + i * ldc + u * VW) : vzero();
    for (int64_t k = 0; k < K; k++) {
        vf bv[NV];
        for (int u = 0; u < nv; u++) bv[u] = vload(B + k * ldb + u * VW);
        for (int i = 0; i < mr; i++) {
            vf a = vbcast(A + i * lda + k);
            for (int u = 0; u < nv; u++) c[i][u] = vfmadd(a, bv[u], c[i][u]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int u = 0; u < nv; u++) vstore(C + i * ldc + u * VW, c[i][u]);
}

/* Columns [0, nv VW) of C over every row: whole register tiles, then the
 * rows that remain. */
static inline __attribute__((always_inline)) void
gemm_cols(int nv, int64_t M, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
          int64_t ldc, bool acc)
{
    int64_t i = 0;
    for (; i + MR <= M; i += MR) block(MR, nv, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, acc);
    /* 1 .. MR-1 rows left (case labels up to 7, the widest MR, minus one;
     * a label >= MR never matches, and passes 1 so that its dead call still
     * indexes within the accumulators) */
#define ROWS_LEFT(n)                                                                        case n:                                                                                     if (n < MR) block(n < MR ? n : 1, nv, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, acc);         break;
    switch (M - i) {
        ROWS_LEFT(7)
        ROWS_LEFT(6)
        ROWS_LEFT(5)
        ROWS_LEFT(4)
        ROWS_LEFT(3)
        ROWS_LEFT(2)
        ROWS_LEFT(1)
    default: break;
    }
#undef ROWS_LEFT
}

/* C[M x N] (+)= A[M x K] B[K x N]; N a multiple of 16. */
static void gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, bool acc)
{
    int64_t j = 0;
    for (; j + NV * VW <= N; j += NV * VW) gemm_cols(NV, M, K, A, lda, B + j, ldb, C + j, ldc, acc);
    for (; j < N; j += 16) gemm_cols(16 / VW, M, K, A, lda, B + j, ldb, C + j, ldc, acc);
}

/* ---- vector exp ------------------------------------------------------------- */

/* e^x for x <= 88: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a
 * degree-6 polynomial (Cephes' expf coefficients), and 2^n built in the
 * exponent field. Max error about 2 ulp (docs/kernels.md). x < -87 gives
 * exactly 0 (true value < 1.7e-38, below FLT_MIN), -inf gives 0, NaN gives
 * NaN. Lane for lane the same bits at either width. */
static inline vf vexp(vf x)
{
    vf xc = vmin(vset1(88.0f), x); /* NaN stays NaN: min returns the 2nd operand */
    vf n = vround(vmul(xc, vset1(1.44269504088896341f)));
    vf r = vfnmadd(n, vset1(0.693359375f), xc);
    r = vfnmadd(n, vset1(-2.12194440e-4f), r);
    vf y = vset1(1.9875691500e-4f);
    y = vfmadd(y, r, vset1(1.3981999507e-3f));
    y = vfmadd(y, r, vset1(8.3334519073e-3f));
    y = vfmadd(y, r, vset1(4.1665795894e-2f));
    y = vfmadd(y, r, vset1(1.6666665459e-1f));
    y = vfmadd(y, r, vset1(5.0000001201e-1f));
    y = vfmadd(y, vmul(r, r), vadd(r, vset1(1.0f)));
    y = vmul(y, vpow2n(n));
    return vdrop(vm_lt(x, vset1(-87.0f)), y); /* x < -87 (and -inf): 0 */
}

/* ---- half-precision conversions --------------------------------------------- */

/* 8 halves (F16 or BF16) to float32, exactly (the rules of core/half.h). */
static inline __m256 half8_to_ps(const uint16_t *p, attn_dtype dt)
{
    return dt == ATTN_DTYPE_F16 ? vec8_f16(p) : vec8_bf16(p);
}

/* 8 floats to halves, rounded to nearest even, overflow to Inf, NaN to a
 * quiet NaN (the rules of core/half.h, bit for bit: tested on every float). */
static inline __m128i ps_to_half8(__m256 x, attn_dtype dt)
{
    if (dt == ATTN_DTYPE_F16) return _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT);
    __m256i u = _mm256_castps_si256(x);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF)));
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), nan);
    r = _mm256_srli_epi32(r, 16); /* 8 x 16 bits in the low halves; pack, then join the lanes */
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
}

/* Bytes of one element of t (F32, BF16 or F16). */
static inline int64_t esize(const attn_tensor *t) { return t->dtype == ATTN_DTYPE_F32 ? 4 : 2; }

/* 8 consecutive elements of t from element offset off, in float32. */
static inline __m256 load8(const attn_tensor *t, int64_t off)
{
    if (t->dtype == ATTN_DTYPE_F32) return _mm256_loadu_ps((const float *)t->data + off);
    return half8_to_ps((const uint16_t *)t->data + off, t->dtype);
}

/* t[off + x * stride[3]] = scale * src[x] for x < n, rounded to t's dtype. */
static void store_row(const attn_tensor *t, int64_t off, const float *src, int64_t n, float scale)
{
    __m256 sc = _mm256_set1_ps(scale);
    int64_t x = 0;
    if (t->stride[3] == 1 && t->dtype == ATTN_DTYPE_F32)
        for (; x + 8 <= n; x += 8)
            _mm256_storeu_ps((float *)t->data + off + x, _mm256_mul_ps(sc, _mm256_loadu_ps(src + x)));
    else if (t->stride[3] == 1)
        for (; x + 8 <= n; x += 8)
            _mm_storeu_si128((__m128i *)(void *)((uint16_t *)t->data + off + x),
                             ps_to_half8(_mm256_mul_ps(sc, _mm256_loadu_ps(src + x)), t->dtype));
    for (; x < n; x++) attn__stf(t, off + x * t->stride[3], scale * src[x]);
}

void KN(to_half)(const float *x, uint16_t *y, int64_t n, attn_dtype dt)
{
    for (int64_t i = 0; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(y + i), ps_to_half8(_mm256_loadu_ps(x + i), dt));
}

void KN(from_half)(const uint16_t *x, float *y, int64_t n, attn_dtype dt)
{
    for (int64_t i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, half8_to_ps(x + i, dt));
}

/* ---- packing ---------------------------------------------------------------- */

/* dst[r][x] = scale * t[b, s0 + r, h, x] for r < n, x < d (in float32,
 * whatever t's dtype); zeros up to rows x ld (x in [d, ld) and r in [n, rows)). */
static void pack_rows(const attn_tensor *t, int64_t b, int64_t s0, int64_t n, int64_t h, int64_t d,
                      float scale, float *dst, int64_t ld, int64_t rows)
{
    __m256 sc = _mm256_set1_ps(scale);
    for (int64_t r = 0; r < rows; r++) {
        float *restrict o = dst + r * ld;
        int64_t x = 0;
        if (r < n) {
            int64_t off = attn__off(t->stride, b, s0 + r, h, 0);
            if (t->stride[3] == 1 && t->dtype == ATTN_DTYPE_F32) {
                const float *restrict src = (const float *)t->data + off;
                for (; x < d; x++) o[x] = scale * src[x];
            } else if (t->stride[3] == 1) {
                for (; x + 8 <= d; x += 8) _mm256_storeu_ps(o + x, _mm256_mul_ps(sc, load8(t, off + x)));
            }
            for (; x < d; x++) o[x] = scale * attn__ldf(t, off + x * t->stride[3]);
        }
        for (; x < ld; x++) o[x] = 0.0f;
    }
}

/* 8 rows of 8 elements of t (row r from element offset off + r * ld) to 8
 * rows of 8 floats (row x at dst[x * width]), transposed and scaled. */
static inline void transpose8(const attn_tensor *t, int64_t off, int64_t ld, float *dst, int64_t width, __m256 sc)
{
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_mul_ps(sc, load8(t, off + i * ld));
    attn__avx2_transpose8(r);
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + i * width, r[i]);
}

/* dst[x][c] = scale * t[b, j0 + c, h, x] for c < n (transposed, rows of
 * `width`, in float32), zero for c in [n, width). */
static void pack_cols(const attn_tensor *t, int64_t b, int64_t j0, int64_t n, int64_t h, int64_t d,
                      float scale, float *dst, int64_t width)
{
    int64_t n8 = 0, d8 = 0;
    if (t->stride[3] == 1) { /* 8 x 8 blocks with AVX2 transposes */
        n8 = n / 8 * 8;
        d8 = d / 8 * 8;
        __m256 sc = _mm256_set1_ps(scale);
        for (int64_t c = 0; c < n8; c += 8)
            for (int64_t x = 0; x < d8; x += 8)
                transpose8(t, attn__off(t->stride, b, j0 + c, h, x), t->stride[1], dst + x * width + c, width, sc);
    }
    for (int64_t c = 0; c < n; c++) { /* what the blocks left: the last keys, the last dims */
        int64_t off = attn__off(t->stride, b, j0 + c, h, 0);
        for (int64_t x = c < n8 ? d8 : 0; x < d; x++) dst[x * width + c] = scale * attn__ldf(t, off + x * t->stride[3]);
    }
    for (int64_t x = 0; n < width && x < d; x++)
        memset(dst + x * width + n, 0, sizeof(float) * (size_t)(width - n));
}

/* t[b, i, h, x] = scale * src[x * ld + i] for i < n, x < d (the transpose
 * of pack_cols), rounded to t's dtype: 8 x 8 blocks with AVX2 transposes
 * where t's rows are contiguous, the rest element by element. */
static void store_cols(const attn_tensor *t, int64_t b, int64_t n, int64_t h, int64_t d, const float *src,
                       int64_t ld, float scale)
{
    int64_t n8 = t->stride[3] == 1 ? n / 8 * 8 : 0, d8 = t->stride[3] == 1 ? d / 8 * 8 : 0;
    __m256 sc = _mm256_set1_ps(scale);
    for (int64_t i = 0; i < n8; i += 8)
        for (int64_t x = 0; x < d8; x += 8) {
            __m256 r[8];
            for (int u = 0; u < 8; u++) r[u] = _mm256_mul_ps(sc, _mm256_loadu_ps(src + (x + u) * ld + i));
            attn__avx2_transpose8(r);
            for (int u = 0; u < 8; u++) {
                int64_t off = attn__off(t->stride, b, i + u, h, x);
                if (t->dtype == ATTN_DTYPE_F32)
                    _mm256_storeu_ps((float *)t->data + off, r[u]);
                else
                    _mm_storeu_si128((__m128i *)(void *)((uint16_t *)t->data + off), ps_to_half8(r[u], t->dtype));
            }
        }
    for (int64_t i = 0; i < n; i++) /* what the blocks left: the last rows, the last dims */
        for (int64_t x = i < n8 ? d8 : 0; x < d; x++)
            attn__stf(t, attn__off(t->stride, b, i, h, x), scale * src[x * ld + i]);
}

static bool all_finite(const float *x, int64_t n)
{
    __m256 bad = _mm256_setzero_ps();
    const __m256 inf = _mm256_set1_ps(INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) { /* |x| == inf or NaN */
        __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + i));
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
    }
    bool ok = _mm256_movemask_ps(bad) == 0;
    for (; i < n; i++) ok &= isfinite(x[i]) != 0;
    return ok;
}

/* Whether rows r < n of x (ld apart) are finite in their first d elements. */
static bool rows_finite(const float *x, int64_t ld, int64_t n, int64_t d)
{
    for (int64_t r = 0; r < n; r++)
        if (!all_finite(x + r * ld, d)) return false;
    return true;
}

/* V rows j0 .. j0+n-1 of kv head (b, h) as the B operand of O += P V:
 * where they are when `direct` (float32, contiguous rows of a width the
 * GEMM takes whole), else packed into vt (rows of ld, zero-padded to
 * `rows`). *ldv receives the row stride of what is returned. */
static const float *v_rows(const attn__sdpa *p, bool direct, int64_t b, int64_t j0, int64_t n, int64_t h, float *vt,
                           int64_t ld, int64_t rows, int64_t *ldv)
{
    if (direct) {
        *ldv = p->v.stride[1];
        return (const float *)p->v.data + attn__off(p->v.stride, b, j0, h, 0);
    }
    pack_rows(&p->v, b, j0, n, h, p->Dv, 1.0f, vt, ld, rows);
    *ldv = ld;
    return vt;
}

/* Prefetches key row j of t into L1. In the usual [B, S, H, D] layout one
 * head's consecutive keys are H * D floats apart, a new 4 KiB page every row
 * or few, where the hardware prefetchers stop following. */
static inline void prefetch_row(const attn_tensor *t, int64_t b, int64_t j, int64_t h, int64_t lines)
{
    const char *row = (const char *)t->data + attn__off(t->stride, b, j, h, 0) * esize(t);
    for (int64_t x = 0; x < lines; x++) _mm_prefetch(row + 64 * x, _MM_HINT_T0);
}

static int64_t row_lines(const attn_tensor *t, int64_t d)
{
    return (((d - 1) * t->stride[3] + 1) * esize(t) + 63) / 64;
}

/* ---- masks ------------------------------------------------------------------ */

static bool elementwise(const attn__sdpa *p)
{
    return p->has_mask || p->has_bias || p->alibi != NULL || p->softcap > 0.0;
}

/* Scores of row i for keys j0 .. j0+BK-1 from the scaled dot products in
 * sr: -inf outside [lo, hi) and where the mask or bias masks; soft-cap,
 * bias and ALiBi applied. capgrad (may be NULL) receives d s / d raw. */
static void finish_scores(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0,
                          int64_t lo, int64_t hi, float *sr, float *capgrad, int64_t st)
{
    int64_t c0 = lo - j0 < 0 ? 0 : lo - j0 > BK ? BK : lo - j0;
    int64_t c1 = hi - j0 > BK ? BK : hi - j0 < c0 ? c0 : hi - j0;
    for (int64_t c = 0; c < c0; c++) sr[c * st] = -INFINITY;
    for (int64_t c = c1; c < BK; c++) sr[c * st] = -INFINITY;
    for (int64_t c = 0; capgrad != NULL && c < BK; c++) capgrad[c * st] = 0.0f; /* masked: no gradient */
    if (!elementwise(p)) return;
    int64_t ia = attn__aligned(p, b, i);
    for (int64_t c = c0; c < c1; c++) {
        int64_t j = j0 + c;
        if (p->has_mask && p->mask[attn__off(p->mask_stride, b, h, i, j)] == 0) {
            sr[c * st] = -INFINITY;
            continue;
        }
        float s = sr[c * st];
        if (p->softcap > 0.0) {
            float cap = (float)p->softcap, t = tanhf(s / cap);
            s = cap * t;
            if (capgrad) capgrad[c * st] = 1.0f - t * t;
        }
        if (p->has_bias) {
            float bv = attn__bias_ldf(p, attn__off(p->bias_stride, b, h, i, j));
            if (bv <= (float)ATTN__BIAS_MASK_LIMIT) {
                sr[c * st] = -INFINITY;
                continue;
            }
            s += bv;
        }
        if (p->alibi != NULL) s -= (float)p->alibi[h] * (float)llabs(ia - j);
        sr[c * st] = s;
    }
}

/* Dropout factors of row (b, h, i), keys j0 .. j0+n-1, into f. */
static void drop_factors(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t n,
                         float *f)
{
    float keep = (float)(1.0 / (1.0 - p->dropout_p));
    uint32_t r[4];
    for (int64_t c = 0; c < n; c++) {
        int64_t j = j0 + c;
        if (c == 0 || (j & 3) == 0) attn__dropout_block(p->seed, p->offset, attn__drop_bh(p, b, h), i, j >> 2, r);
        f[c] = r[j & 3] >= p->drop_threshold ? keep : 0.0f;
    }
}

/* The online-softmax step (FlashAttention-2) of one row over one key tile.
 * sr holds the row's BK scores (-inf where masked, and everywhere outside
 * columns [c0, c1)); *m, *l and acc[dv] are the row's running max, sum and
 * unnormalised output. On return sr holds P f, the weights of this tile's
 * V rows, and acc is rescaled to the new max. use (may be NULL) receives 1
 * where P_ij V_j is to be taken: visible and, with dropout, kept. Returns
 * false (sr zeroed) if no key is visible. Only the vectors that meet
 * [c0, c1) are computed: the others would give exp(-inf) = +0 to P and
 * add +0 to each lane's sum, so skipping them keeps every bit. With lr
 * not NULL (the AVX512-BF16 forward, whose P V takes P in bfloat16) P is
 * rounded to bfloat16 here and *lr sums the rounded weights as *l sums the
 * exact ones: O divided by it is the weighted mean of V's rows under
 * exactly the weights P V used, while the LSE keeps the exact sum. */
static bool online_row(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t nk,
                       float *sr, float *m, float *l, float *acc, int64_t dv, float *use, float *f, int c0, int c1,
                       float *lr)
{
    int ca = c0 / VW * VW, cz = c1 > c0 ? (c1 + VW - 1) / VW * VW : ca;
    vf vmx = vset1(-INFINITY);
    vm vnan = vm_none();
    for (int c = ca; c < cz; c += VW) {
        vf x = vload(sr + c);
        vmx = vmax(x, vmx); /* NaN scores are left out of the max ... */
        vnan = vm_or(vnan, vm_unord(x));
    }
    float tmax = vmaxr(vmx);
    for (int c = 0; use != NULL && c < BK; c++) use[c] = sr[c] != -INFINITY ? 1.0f : 0.0f;
    if (tmax == -INFINITY && !vm_any(vnan)) { /* nothing visible */
        memset(sr, 0, sizeof(float) * BK);
        return false;
    }
    float mnew = tmax > *m ? tmax : *m;
    if (mnew == -INFINITY) mnew = 0.0f; /* ... and reach l and O through exp */
    float alpha = mnew == *m ? 1.0f : expf(*m - mnew); /* the max mostly stays: expf(0) is 1 */
    if (alpha != 1.0f) {
        vf va = vset1(alpha);
        for (int64_t x = 0; x < dv; x += VW) vstore(acc + x, vmul(va, vload(acc + x)));
    }
    vf vmn = vset1(mnew), vsm = vzero(), vsr = vzero();
    for (int c = 0; c < ca; c += VW) vstore(sr + c, vzero());
    for (int c = ca; c < cz; c += VW) {
        vf e = vexp(vsub(vload(sr + c), vmn));
        vsm = vadd(vsm, e);
#if defined(ATTN_SDPA_DP)
        if (lr != NULL) {
            e = vround_bf16(e);
            vsr = vadd(vsr, e);
        }
#endif
        vstore(sr + c, e);
    }
    for (int c = cz; c < BK; c += VW) vstore(sr + c, vzero());
    *l = *l * alpha + vsum(vsm);
    if (lr != NULL) *lr = *lr * alpha + vsum(vsr);
    *m = mnew;
    if (p->dropout_p > 0.0) {
        drop_factors(p, b, h, i, j0, nk, f);
        for (int64_t c = 0; c < nk; c++) {
            sr[c] *= f[c];
            if (use != NULL && f[c] == 0.0f) use[c] = 0.0f;
        }
    }
    return true;
}

/* ---- forward ------------------------------------------------------------------ */

int64_t KN(forward_ws)(const attn__sdpa *p)
{
    int64_t dv = pad16(p->Dv);
    return BQ * p->Dk + p->Dk * BK + BK * dv + 2 * BQ * BK + BQ * dv + BK + 3 * BQ;
}

/* ---- K and V packed once per call --------------------------------------------
 * Each query block of a kv head reads every key tile it sees: K transposed
 * into K^T [Dk][BK] (pack_cols) and V's rows, in place or packed. In the
 * usual [B, S, H, D] layout a head's keys are H * D elements apart, a page
 * or so per row, so every block walks thousands of pages (on a virtual
 * machine without huge pages the TLB misses cost a quarter of the forward's
 * time at 16 heads). When a kv head has more than one query block, the
 * driver has every tile packed once (forward_pack, before the blocks;
 * attn__k_forward.pack) into p->kv_packed, one record of forward_pack_bytes
 * per (b, kv head, tile): K^T [Dk][BK] and V [BK][dv] in float32 as
 * pack_cols and pack_rows make them (zeros past Sk and Dv), then a uint32_t,
 * 1 if every V row is finite. The blocks read those; the values are the
 * same, so are the results. (The AMX build's forward has records of its
 * own, below.) */
int64_t KN(forward_pack_bytes)(const attn__sdpa *p)
{
    return ((p->Dk * BK + BK * pad16(p->Dv)) * 4 + 4 + 63) / 64 * 64;
}

void KN(forward_pack)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst)
{
    int64_t dv = pad16(p->Dv), j0 = t * BK, nk = p->Sk - j0 < BK ? p->Sk - j0 : BK;
    float *kt = dst, *vt = kt + p->Dk * BK;
    pack_cols(&p->k, b, j0, nk, hkv, p->Dk, 1.0f, kt, BK);
    pack_rows(&p->v, b, j0, nk, hkv, p->Dv, 1.0f, vt, dv, BK);
    uint32_t finite = rows_finite(vt, dv, nk, p->Dv);
    memcpy(vt + BK * dv, &finite, sizeof finite);
}

/* Which rows of query block i0 (nq rows) of head (b, h) see a key: the
 * rows block_rows gives an LSE other than -inf (the others' Q and dO are
 * zeros in the blocks and in the records). */
static void rows_seeing(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, bool *keep)
{
    for (int64_t r = 0; r < nq; r++) {
        int64_t lo, hi;
        attn__key_range(p, b, i0 + r, &lo, &hi);
        keep[r] = lo < hi && ((const float *)p->lse.data)[attn__off(p->lse.stride, b, h, i0 + r, 0)] != -INFINITY;
    }
}

/* ---- bfloat16 pairs: the layouts of the half-precision products ------------
 * The AMX-BF16 tiles (tdpbf16ps) and the AVX512-BF16 dot products
 * (vdpbf16ps) both multiply pairs of bfloat16: an A operand's row holds
 * its k values in order, so that each 32 bits hold a pair (k, k + 1); a B
 * operand holds, for each pair of k, its columns side by side, each as
 * the pair [2]. These build them. */
#if defined(ATTN_SDPA_AMX) || defined(ATTN_SDPA_DP)
#include "core/half.h"

/* dst [rows][ld] = rows [0, n) of src [.][lds] (d floats each) in
 * bfloat16, rounded to nearest even; zeros elsewhere (an A operand). */
static void amx_rows(const float *src, int64_t lds, int64_t n, int64_t d, uint16_t *dst, int64_t ld, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) {
        uint16_t *o = dst + r * ld;
        int64_t x = 0;
        if (r < n) {
            for (; x + 8 <= d; x += 8)
                _mm_storeu_si128((__m128i *)(void *)(o + x),
                                 ps_to_half8(_mm256_loadu_ps(src + r * lds + x), ATTN_DTYPE_BF16));
            for (; x < d; x++) o[x] = attn__f32_to_bf16(src[r * lds + x]);
        }
        for (; x < ld; x++) o[x] = 0;
    }
}

/* 8 pairs (x[i], y[i]) of floats holding bfloat16 values as 8 x 2
 * bfloat16 at dst: the high halves of their bits, x's first (exact); a
 * NULL row is zeros. */
static inline void amx_pairs8(const float *x, const float *y, uint16_t *dst)
{
    __m256i a = x ? _mm256_srli_epi32(_mm256_castps_si256(_mm256_loadu_ps(x)), 16) : _mm256_setzero_si256();
    __m256i b = y ? _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(y)), _mm256_set1_epi32((int)0xFFFF0000u))
                  : _mm256_setzero_si256();
    _mm256_storeu_si256((__m256i *)(void *)dst, _mm256_or_si256(a, b));
}

/* kb [dk / 2][BK][2] from K^T [Dk][BK] (floats holding bfloat16 values,
 * as packed from a BF16 K), zeros past Dk. */
static void amx_kt(const float *kt, int64_t Dk, int64_t dk, uint16_t *kb)
{
    for (int64_t pr = 0; pr < dk / 2; pr++) {
        const float *x = 2 * pr < Dk ? kt + 2 * pr * BK : NULL, *y = 2 * pr + 1 < Dk ? kt + (2 * pr + 1) * BK : NULL;
        for (int64_t n = 0; n < BK; n += 8) amx_pairs8(x ? x + n : NULL, y ? y + n : NULL, kb + (pr * BK + n) * 2);
    }
}

/* The packers' row c of n rows (s0 + c) of head h of a BF16 tensor, or NULL
 * when keep says it is to stay zeros (keep NULL: every row). */
static inline const uint16_t *half_row(const attn_tensor *t, int64_t b, int64_t s0, int64_t h, int64_t c,
                                       const bool *keep)
{
    return keep == NULL || keep[c] ? (const uint16_t *)t->data + attn__off(t->stride, b, s0 + c, h, 0) : NULL;
}

/* dst [ka / 2][ldb][2] = rows [0, K) of src [.][lds] (N floats each) as a
 * B operand: element (k, n) at [k / 2][n][k % 2], rounded to nearest even;
 * zeros past K and N (up to ldb) and, if zero_row is not NULL, in the rows
 * k with zero_row[k]. */
static void amx_pairs(const float *src, int64_t lds, int64_t K, int64_t N, int64_t ka, uint16_t *dst, int64_t ldb,
                      const bool *zero_row)
{
    int64_t n8 = N / 8 * 8;
    for (int64_t pr = 0; pr < ka / 2; pr++) {
        const float *row[2];
        for (int64_t t = 0; t < 2; t++) {
            int64_t k = 2 * pr + t;
            row[t] = k < K && (zero_row == NULL || !zero_row[k]) ? src + k * lds : NULL;
        }
        uint16_t *o = dst + pr * ldb * 2;
        int64_t n = 0;
        for (; n < n8; n += 8) {
            __m128i a = row[0] ? ps_to_half8(_mm256_loadu_ps(row[0] + n), ATTN_DTYPE_BF16) : _mm_setzero_si128();
            __m128i c = row[1] ? ps_to_half8(_mm256_loadu_ps(row[1] + n), ATTN_DTYPE_BF16) : _mm_setzero_si128();
            _mm_storeu_si128((__m128i *)(void *)(o + 2 * n), _mm_unpacklo_epi16(a, c));
            _mm_storeu_si128((__m128i *)(void *)(o + 2 * n + 8), _mm_unpackhi_epi16(a, c));
        }
        for (; n < ldb; n++)
            for (int64_t t = 0; t < 2; t++) o[2 * n + t] = row[t] && n < N ? attn__f32_to_bf16(row[t][n]) : 0;
    }
}

/* pairs_t: the tensor's own bfloat16 bits in a tile's B layout, rows as
 * columns, into a zeroed dst: dst [(x / 2) * cols + c][2] = row c's
 * element x (K^T's d pairs: cols keys or queries), n rows of d elements
 * from s0; the rest stays zeros. */
static void pairs_t(const attn_tensor *t, int64_t b, int64_t s0, int64_t n, int64_t h, int64_t d,
                    const bool *keep, uint16_t *dst, int64_t cols)
{
    int64_t sx = t->stride[3];
    for (int64_t c = 0; c < n; c++) {
        const uint16_t *r = half_row(t, b, s0, h, c, keep);
        if (r == NULL) continue;
        int64_t x = 0;
        if (sx == 1)
            for (; x + 2 <= d; x += 2) memcpy(dst + (x / 2 * cols + c) * 2, r + x, 4);
        for (; x < d; x++) dst[(x / 2 * cols + c) * 2 + x % 2] = r[x * sx];
    }
}

/* 8 bfloat16 with Inf or NaN among them: lanes whose exponent is all ones. */
static inline __m128i half8_bad(__m128i x)
{
    const __m128i e = _mm_set1_epi16(0x7F80);
    return _mm_cmpeq_epi16(_mm_and_si128(x, e), e);
}

/* pairs_r: the tensor's own bfloat16 bits in a tile's B layout, rows as
 * pairs, into a zeroed dst: dst [(c / 2) * ld + x][2] = row c's element x
 * (V's key pairs, or Q's and dO's query pairs: ld columns), n rows of d elements from s0; the rest
 * stays zeros. Returns whether every element it wrote is finite. */
static bool pairs_r(const attn_tensor *t, int64_t b, int64_t s0, int64_t n, int64_t h, int64_t d,
                    const bool *keep, uint16_t *dst, int64_t ld)
{
    int64_t sx = t->stride[3];
    __m128i bad = _mm_setzero_si128();
    for (int64_t c = 0; c < n; c += 2) {
        const uint16_t *r0 = half_row(t, b, s0, h, c, keep), *r1 = c + 1 < n ? half_row(t, b, s0, h, c + 1, keep) : NULL;
        uint16_t *o = dst + c / 2 * ld * 2;
        int64_t x = 0;
        if (sx == 1 && r0 != NULL && r1 != NULL)
            for (; x + 8 <= d; x += 8) {
                __m128i u = _mm_loadu_si128((const __m128i *)(const void *)(r0 + x));
                __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(r1 + x));
                bad = _mm_or_si128(bad, _mm_or_si128(half8_bad(u), half8_bad(w)));
                _mm_storeu_si128((__m128i *)(void *)(o + x * 2), _mm_unpacklo_epi16(u, w));
                _mm_storeu_si128((__m128i *)(void *)(o + x * 2 + 8), _mm_unpackhi_epi16(u, w));
            }
        for (; x < d; x++) {
            uint16_t u0 = r0 != NULL ? r0[x * sx] : 0, u1 = r1 != NULL ? r1[x * sx] : 0;
            bad = _mm_or_si128(bad, half8_bad(_mm_setr_epi16((short)u0, (short)u1, 0, 0, 0, 0, 0, 0)));
            o[x * 2] = u0;
            o[x * 2 + 1] = u1;
        }
    }
    return _mm_movemask_epi8(bad) == 0;
}

#endif

#if defined(ATTN_SDPA_AMX)
/* ---- the AMX-BF16 forward's products (kernels/x86/amx.h) ---------------------
 *
 * The same forward with its two products on tiles, for BF16 Q, K and V:
 * S = Q K^T from Q rows and K^T in bfloat16 (exact: the tensors' own
 * values; the scale applied to S in float32 afterwards), and O += P V with
 * P as two bfloat16 terms (hi + lo, about 16 bits of it; amx_pv) and V in
 * bfloat16; both sums in the tiles' float32. Everything between the
 * products (masks, the online softmax, dropout, the NaN and Inf rules) is
 * the float32 forward's own code. Buffers (bfloat16, in the workspace after
 * the float32 ones):
 *   qb [AMX_TQ][dk]       Q's rows, dk = Dk rounded up to 32, zeros past
 *   kb [dk / 2][BK][2]    K^T as tdpbf16ps's B: d pairs, 16 keys a tile
 *   vb [BK / 2][dv][2]    V as B: key pairs, 16 columns a tile
 *   pb [AMX_TQ][2][BK]    P's rows, as two bfloat16 terms (hi, lo)
 * A 16-row tile starts at any row of a group, so the float32 S and the
 * accumulator have 16 rows more than BQ, whose results are never used. */
#include "kernels/x86/amx.h"

enum { AMX_TQ = BQ + 16 };
_Static_assert(BK == 64 && GR % 16 == 0, "the AMX products assume 64-key tiles and 16-row groups");

static int64_t pad32(int64_t n) { return (n + 31) / 32 * 32; }

int64_t KN(forward_ws_amx)(const attn__sdpa *p)
{
    int64_t dk = pad32(p->Dk), dv = pad16(p->Dv);
    return KN(forward_ws)(p) + 16 * (BK + dv) + (AMX_TQ * dk + dk * BK + BK * dv + 2 * AMX_TQ * BK) / 2;
}

/* vb [BK / 2][dv][2] from V's rows [nk][Dv] (row stride ldv; floats
 * holding bfloat16 values), zeros past; with v_bad (the forward's
 * NaN-safe case: a masked tile with a non-finite V), a row with a NaN or
 * an Inf is zeros too (amx_bad_v adds what it must); otherwise such a row
 * goes in as it is and propagates through the products, as in the float32
 * GEMM. */
static void amx_v(const float *v, int64_t ldv, int64_t nk, int64_t Dv, int64_t dv, bool v_bad, uint16_t *vb)
{
    int64_t d8 = Dv / 8 * 8;
    for (int64_t pr = 0; pr < BK / 2; pr++) {
        const float *row[2];
        for (int64_t t = 0; t < 2; t++) {
            int64_t key = 2 * pr + t;
            row[t] = key < nk && (!v_bad || rows_finite(v + key * ldv, ldv, 1, Dv)) ? v + key * ldv : NULL;
        }
        uint16_t *o = vb + pr * dv * 2;
        int64_t x = 0;
        for (; x < d8; x += 8) amx_pairs8(row[0] ? row[0] + x : NULL, row[1] ? row[1] + x : NULL, o + x * 2);
        for (; x < dv; x++)
            for (int64_t t = 0; t < 2; t++) o[x * 2 + t] = row[t] && x < Dv ? attn__f32_to_bf16(row[t][x]) : 0;
    }
}

/* ---- K and V converted once per call ------------------------------------------
 * Every query block of a kv head meets the same key tiles, and converting a
 * tile to the products' layouts (amx_kt, amx_v: 2 x 64 x D values) costs
 * about as many instructions as the block spends on the tile's products.
 * So the driver, when a kv head has more than one query block, has every
 * key tile converted once before the blocks (forward_pack_amx, one call
 * per tile, in parallel) into p->kv_packed, one record of
 * forward_pack_bytes_amx bytes per (b, kv head, tile) in that order:
 *   kb [dk / 2][BK][2], vb [BK / 2][dv][2]   as amx_kt and amx_v make them
 *                                            (zeros past Sk, Dk and Dv)
 *   uint32_t finite                          1: every V row of the tile is
 * and the blocks read them from there. A tile with a non-finite V row is
 * converted per block as before (the NaN-safe path zeroes its bad rows
 * when the block masks some key). The values are the tensors' own bfloat16
 * bits either way, so the results are the same bits. */
int64_t KN(forward_pack_bytes_amx)(const attn__sdpa *p)
{
    return ((pad32(p->Dk) * BK + BK * pad16(p->Dv)) * 2 + 4 + 63) / 64 * 64;
}


void KN(forward_pack_amx)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst)
{
    int64_t dk = pad32(p->Dk), dv = pad16(p->Dv), j0 = t * BK, nk = p->Sk - j0 < BK ? p->Sk - j0 : BK;
    uint16_t *kb = dst, *vb = kb + dk * BK;
    memset(dst, 0, (size_t)KN(forward_pack_bytes_amx)(p));
    pairs_t(&p->k, b, j0, nk, hkv, p->Dk, NULL, kb, BK);
    uint32_t finite = pairs_r(&p->v, b, j0, nk, hkv, p->Dv, NULL, vb, dv);
    memcpy(vb + BK * dv, &finite, sizeof finite);
}

/* After amx_pv over a V with non-finite rows (zeros in vb): acc rows
 * [ra, rb) += P V over exactly the visible, kept (row, key) pairs (use)
 * whose V row is not finite, so that their NaN and Inf propagate. A row
 * that does not take such a key is unchanged: its product with the zeros
 * added +-0 to a sum that is never -0 (it starts at +0 and P >= 0), so a
 * NaN hidden by a mask changes no bit. */
static void amx_bad_v(const float *use, int64_t ra, int64_t rb, int64_t nk, const float *v,
                      int64_t ldv, int64_t Dv, const uint16_t *pb, float *acc, int64_t dv)
{
    for (int64_t c = 0; c < nk; c++) {
        if (rows_finite(v + c * ldv, ldv, 1, Dv)) continue;
        for (int64_t r = ra; r < rb; r++)
            if (use[r * BK + c] != 0.0f) {
                float pv = attn__bf16_to_f32(pb[r * 2 * BK + c]) + attn__bf16_to_f32(pb[r * 2 * BK + BK + c]);
                for (int64_t x = 0; x < Dv; x++) acc[r * dv + x] = fmaf(pv, v[c * ldv + x], acc[r * dv + x]);
            }
    }
}

/* s rows [g0, g1) = scale * Q K^T over the tile's 64 keys, in 16-row tiles
 * from g0 (the rows past g1 of the last one are computed, not scaled). */
static void amx_scores(const uint16_t *qb, int64_t dk, int64_t g0, int64_t g1, const uint16_t *kb, float *s,
                       float scale)
{
    const int64_t ks = BK * 4, ss = BK * 4; /* bytes: a d pair row of kb, a row of s */
    for (int64_t r = g0; r < g1; r += AMX_ROWS) {
        AMX_ZERO(0);
        AMX_ZERO(1);
        AMX_ZERO(2);
        AMX_ZERO(3);
        for (int64_t e = 0; e < dk; e += 32) { /* 32 d at a time: one A tile, four B tiles */
            const uint16_t *kt = kb + e * BK;
            AMX_LOAD(4, qb + r * dk + e, dk * 2);
            AMX_LOAD(5, kt, ks);
            AMX_LOAD(6, kt + 32, ks);
            AMX_DPBF16(0, 4, 5);
            AMX_LOAD(7, kt + 64, ks);
            AMX_DPBF16(1, 4, 6);
            AMX_LOAD(5, kt + 96, ks);
            AMX_DPBF16(2, 4, 7);
            AMX_DPBF16(3, 4, 5);
        }
        float *sr = s + r * BK;
        AMX_STORE(0, sr, ss);
        AMX_STORE(1, sr + 16, ss);
        AMX_STORE(2, sr + 32, ss);
        AMX_STORE(3, sr + 48, ss);
    }
    const vf sc = vset1(scale);
    for (int64_t r = g0; r < g1; r++)
        for (int c = 0; c < BK; c += VW) vstore(s + r * BK + c, vmul(sc, vload(s + r * BK + c)));
}

/* acc rows [g0, g1) += P V over the key chunks of 32 that hold keys
 * [k0, k1). P goes in as two bfloat16 terms, hi = P rounded and lo = (P -
 * hi) rounded (the difference is exact), so that it keeps about 16 of its
 * 24 bits (one term alone gave up to 0.95 of the half-precision error
 * rule in 12000 grid configurations); pb row r holds hi [BK] then lo [BK],
 * the rows past g1 up to the last tile's end zeros, so that their acc rows
 * stay as they are. */
static void amx_pv(const float *s, int64_t g0, int64_t g1, int64_t k0, int64_t k1, uint16_t *pb,
                   const uint16_t *vb, int64_t dv, float *acc)
{
    int64_t end = g0 + (g1 - g0 + AMX_ROWS - 1) / AMX_ROWS * AMX_ROWS;
    for (int64_t r = g0; r < end; r++) {
        uint16_t *o = pb + r * 2 * BK;
        if (r >= g1) {
            memset(o, 0, sizeof(uint16_t) * 2 * BK);
            continue;
        }
        for (int c = 0; c < BK; c += 8) {
            __m256 x = _mm256_loadu_ps(s + r * BK + c);
            __m128i h = ps_to_half8(x, ATTN_DTYPE_BF16);
            __m256 hf = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
            _mm_storeu_si128((__m128i *)(void *)(o + c), h);
            _mm_storeu_si128((__m128i *)(void *)(o + BK + c), ps_to_half8(_mm256_sub_ps(x, hf), ATTN_DTYPE_BF16));
        }
    }
    bool c0 = k0 < 32, c1 = k1 > 32; /* which chunks of 32 keys */
    for (int64_t r = g0; r < g1; r += AMX_ROWS) {
        const uint16_t *pr = pb + r * 2 * BK;
        if (c0) {
            AMX_LOAD(4, pr, BK * 4);
            AMX_LOAD(1, pr + BK, BK * 4);
        }
        if (c1) {
            AMX_LOAD(6, pr + 32, BK * 4);
            AMX_LOAD(2, pr + BK + 32, BK * 4);
        }
        for (int64_t n = 0; n < dv; n += 16) {
            float *a = acc + r * dv + n;
            AMX_LOAD(0, a, dv * 4);
            if (c0) {
                AMX_LOAD(5, vb + n * 2, dv * 4);
                AMX_DPBF16(0, 4, 5);
                AMX_DPBF16(0, 1, 5);
            }
            if (c1) {
                AMX_LOAD(7, vb + 32 * dv + n * 2, dv * 4);
                AMX_DPBF16(0, 6, 7);
                AMX_DPBF16(0, 2, 7);
            }
            AMX_STORE(0, a, dv * 4);
        }
    }
}
#endif

/* ---- the AVX512-BF16 forward's products ---------------------------------------
 * For BF16 Q, K and V where the CPU has AVX512-BF16, both products on
 * vdpbf16ps (kernels/x86/vec.h), two bfloat16 products per float32 lane
 * per instruction, which on AMD Zen 4 runs at the float32 FMA's rate, so
 * twice the products per cycle:
 * - S = Q K^T: both operands the tensors' own bfloat16 values (each
 *   product exact), summed in float32 in a fixed order (per score: the d
 *   pairs in turn, the odd d of each first), then scaled in float32.
 * - O += P V: P rounded to bfloat16 (to nearest even, in online_row, which
 *   also sums the rounded weights; dp_pv packs them as A rows), V the
 *   tensor's own values as pairs of keys. This is FlashAttention's and
 *   PyTorch's CPU kernel's rounding of P; O is divided by the sum of the
 *   rounded weights, so it is their exact weighted mean up to float32
 *   sums, while the LSE keeps the sum of the unrounded ones. (With
 *   dropout, P f is rounded again for the product: the sums stay those of
 *   P.) The avx512 table's BF16 forward (ATTN_KERNEL=avx512) keeps P in
 *   float32. Like every vdpbf16ps product, this one reads a subnormal
 *   operand (a V value, a weight) as zero, where float32 FMAs keep it.
 * Everything else is the float32 forward's own: masks, the online softmax,
 * dropout and the NaN rules on float32 scores; a tile whose V has a NaN or
 * an Inf where the NaN-safe path runs takes it, in float32, as before.
 * Buffers (in the workspace after the float32 ones): lr [BQ] the rounded
 * weights' sums, then in bfloat16
 *   qd [BQ][dk]         Q's rows, dk = Dk rounded up to 2, zeros past
 *   kd [dk / 2][BK][2]  K^T as B (the pairs' layout above)
 *   pd [BQ][BK]         P's rows as A
 *   vd [BK / 2][dv][2]  V as B, zeros past the tile's keys
 * When K and V are converted once per call, the records (forward_pack_dp)
 * hold kd, vd, then V [BK][dv] in float32 and the uint32_t "every V row
 * finite", as the float32 records do. */
#if defined(ATTN_SDPA_DP)
enum { DPR = 6 }; /* rows of the register tile: 6 rows x 4 vectors of 16 keys */
_Static_assert(VW == 16 && BK == 64, "the AVX512-BF16 scores assume 16 lanes and 64-key tiles");

static int64_t pad2(int64_t n) { return (n + 1) / 2 * 2; }

void KN(dpbf16)(const float *acc, const uint16_t *a, const uint16_t *b, float *out)
{
    vstore(out, vdpbf16(vload(acc), vbh_load(a), vbh_load(b)));
}

int64_t KN(forward_ws_dp)(const attn__sdpa *p)
{
    int64_t dk = pad2(p->Dk);
    return KN(forward_ws)(p) + BQ + (BQ * dk + dk * BK + BQ * BK + BK * pad16(p->Dv)) / 2;
}

int64_t KN(forward_pack_bytes_dp)(const attn__sdpa *p)
{
    return (pad2(p->Dk) * BK * 2 + BK * pad16(p->Dv) * 6 + 4 + 63) / 64 * 64;
}

void KN(forward_pack_dp)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst)
{
    int64_t dk = pad2(p->Dk), dv = pad16(p->Dv), j0 = t * BK, nk = p->Sk - j0 < BK ? p->Sk - j0 : BK;
    uint16_t *kd = dst, *vd = kd + dk * BK;
    float *vt = (float *)(void *)(vd + BK * dv);
    memset(kd, 0, sizeof(uint16_t) * (size_t)(dk * BK));
    pairs_t(&p->k, b, j0, nk, hkv, p->Dk, NULL, kd, BK);
    pack_rows(&p->v, b, j0, nk, hkv, p->Dv, 1.0f, vt, dv, BK);
    amx_pairs(vt, dv, nk, p->Dv, BK, vd, dv, NULL);
    uint32_t finite = rows_finite(vt, dv, nk, p->Dv);
    memcpy(vt + BK * dv, &finite, sizeof finite);
}

/* C [mr][nv x 16] = sc * A B over np pairs: A's rows lda apart (bfloat16,
 * pairs in order), B pairs [np][ldb][2] from its first column (the layout
 * of kd, amx_pairs); C's rows ldc apart. */
static inline __attribute__((always_inline)) void
dp_block(int mr, int nv, int64_t np, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float *C,
         int64_t ldc, vf sc, bool add)
{
    vf c[DPR][4];
    for (int i = 0; i < mr; i++)
        for (int u = 0; u < nv; u++) c[i][u] = add ? vload(C + i * ldc + u * 16) : vzero();
    for (int64_t e = 0; e < np; e++) {
        vbh bv[4];
        for (int u = 0; u < nv; u++) bv[u] = vbh_load(B + (e * ldb + u * 16) * 2);
        for (int i = 0; i < mr; i++) {
            vbh a = vbh_pair(A + i * lda + 2 * e);
            for (int u = 0; u < nv; u++) c[i][u] = vdpbf16(c[i][u], a, bv[u]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int u = 0; u < nv; u++) vstore(C + i * ldc + u * 16, add ? c[i][u] : vmul(sc, c[i][u]));
}

/* dp_block over M rows: whole register tiles, then the rows left. */
static inline __attribute__((always_inline)) void
dp_rows(int nv, int64_t M, int64_t np, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float *C,
        int64_t ldc, vf sc, bool add)
{
    int64_t i = 0;
    for (; i + DPR <= M; i += DPR) dp_block(DPR, nv, np, A + i * lda, lda, B, ldb, C + i * ldc, ldc, sc, add);
#define DP_ROWS_LEFT(n) \
    case n: dp_block(n, nv, np, A + i * lda, lda, B, ldb, C + i * ldc, ldc, sc, add); break;
    switch (M - i) {
        DP_ROWS_LEFT(5)
        DP_ROWS_LEFT(4)
        DP_ROWS_LEFT(3)
        DP_ROWS_LEFT(2)
        DP_ROWS_LEFT(1)
    default: break;
    }
#undef DP_ROWS_LEFT
}

/* C [M][N] = scale * A B (dp_block's operands), or with add C += A B, N a
 * multiple of 16: in column blocks of 64, then the rest. */
static void dp_gemm(int64_t M, int64_t N, int64_t np, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb,
                    float *C, int64_t ldc, float scale, bool add)
{
    vf sc = vset1(scale);
    int64_t j = 0;
    for (; j + 64 <= N; j += 64) dp_rows(4, M, np, A, lda, B + j * 2, ldb, C + j, ldc, sc, add);
    switch ((N - j) / 16) {
    case 3: dp_rows(3, M, np, A, lda, B + j * 2, ldb, C + j, ldc, sc, add); break;
    case 2: dp_rows(2, M, np, A, lda, B + j * 2, ldb, C + j, ldc, sc, add); break;
    case 1: dp_rows(1, M, np, A, lda, B + j * 2, ldb, C + j, ldc, sc, add); break;
    default: break;
    }
}

/* s rows [g0, g1), columns [ga, gb) (multiples of 16) = scale * Q K^T
 * from qd (rows dk apart) and the tile's kd. */
static void dp_scores(const uint16_t *qd, int64_t dk, int64_t g0, int64_t g1, const uint16_t *kd, int ga, int gb,
                      float *s, float scale)
{
    dp_gemm(g1 - g0, gb - ga, dk / 2, qd + g0 * dk, dk, kd + ga * 2, BK, s + g0 * BK + ga, BK, scale, false);
}

/* dst [n][BQB] = rows [0, n) of src [.][BQB] rounded to bfloat16 as
 * vbh_round2 rounds (an A operand over the query pairs of a backward
 * block: P^T or dS^T). */
static void dp_rows_bqb(const float *src, int64_t n, uint16_t *dst)
{
    _Static_assert(BQB == 48, "two conversions of 32 and 16 values a row");
    for (int64_t r = 0; r < n; r++) {
        uint16_t *o = dst + r * BQB;
        vbh_store(o, vbh_round2(vload(src + r * BQB), vload(src + r * BQB + 16)));
        vbh_store16(o + 32, vbh_round2(vload(src + r * BQB + 32), vzero()));
    }
}

/* dst [BQB / 2][n][2] = src [BQB][lds] (n floats a row, n a multiple of 8,
 * floats holding bfloat16 values: the rows of Q or dO) as a B operand
 * over query pairs: exact, the high halves of the bits. */
static void dp_query_pairs(const float *src, int64_t lds, int64_t n, uint16_t *dst)
{
    for (int64_t pr = 0; pr < BQB / 2; pr++)
        for (int64_t x = 0; x < n; x += 8)
            amx_pairs8(src + 2 * pr * lds + x, src + (2 * pr + 1) * lds + x, dst + (pr * n + x) * 2);
}

/* acc rows [g0, g1) (dv apart) += P V over the keys [ga, kb) of the tile:
 * P's rows (s, BK apart) rounded to bfloat16 into pd, V as the pairs vd
 * [BK / 2][dv][2] (zeros past the tile's keys). */
static void dp_pv(const float *s, int64_t g0, int64_t g1, int ga, int64_t kb, uint16_t *pd, const uint16_t *vd,
                  int64_t dv, float *acc)
{
    for (int64_t r = g0; r < g1; r++)
        for (int c = 0; c < BK; c += 32)
            vbh_store(pd + r * BK + c, vbh_round2(vload(s + r * BK + c), vload(s + r * BK + c + 16)));
    dp_gemm(g1 - g0, dv, (kb - ga + 1) / 2, pd + g0 * BK + ga, BK, vd + ga * dv, dv, acc + g0 * dv, dv, 1.0f, true);
}
#endif

/* sr[c] = -inf for the keys c < BK whose bit is clear (a block mask's
 * hidden keys). */
static inline void hide_bits(float *sr, uint64_t bits)
{
    const vf ninf = vset1(-INFINITY);
    for (int c = 0; c < BK; c += VW) vstore(sr + c, vblend(ninf, vload(sr + c), vm_bits(bits >> c)));
}

/* The forward of one query block; with amx (the AMX build's second entry
 * point) its two products run on tiles, with dpbf (the AVX512-BF16 entry
 * point) both on vdpbf16ps, P rounded to bfloat16 (above). */
static inline __attribute__((always_inline)) void
forward_impl(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws, const bool amx,
             const bool dpbf)
{
    int64_t hk = h / p->group;
    int64_t Dk = p->Dk, Dv = p->Dv, dv = pad16(Dv), mq = (nq + MR - 1) / MR * MR;
    int64_t rows = amx ? BQ + 16 : BQ; /* of s and acc */
    float *qs = ws;              /* (BQ, Dk) scale * Q (AMX: Q) */
    float *kt = qs + BQ * Dk;    /* (Dk, BK) K^T */
    float *vt = kt + Dk * BK;    /* (BK, dv) V */
    float *s = vt + BK * dv;     /* (rows, BK) scores, then P */
    float *use = s + rows * BK;  /* (BQ, BK) 1 where P_ij * V_j is taken (NaN-safe path) */
    float *acc = use + BQ * BK;  /* (rows, dv) unnormalised O */
    float *f = acc + rows * dv;  /* (BK) dropout factors of one row */
    float *m = f + BK, *l = m + BQ, *seen = l + BQ; /* (BQ) */
#if defined(ATTN_SDPA_AMX)
    int64_t dk = pad32(Dk);
    uint16_t *qh = (uint16_t *)(void *)(seen + BQ), *kh = qh + AMX_TQ * dk, *vh = kh + dk * BK, *ph = vh + BK * dv;
    int64_t pack_bytes = amx ? KN(forward_pack_bytes_amx)(p) : KN(forward_pack_bytes)(p);
#else
    int64_t pack_bytes = KN(forward_pack_bytes)(p);
    (void)amx;
#endif
#if defined(ATTN_SDPA_DP)
    int64_t dkp = pad2(Dk);
    float *lr = seen + BQ; /* (BQ) the sums of the rounded weights */
    uint16_t *qd = (uint16_t *)(void *)(lr + BQ), *kd = qd + BQ * dkp, *pd = kd + dkp * BK, *vd = pd + BQ * BK;
    if (dpbf) pack_bytes = KN(forward_pack_bytes_dp)(p);
#else
    float *lr = l; /* not used */
    (void)dpbf;
#endif
    /* this kv head's packed tiles (float32 or AMX records, above), or NULL */
    const char *packed = p->kv_packed != NULL ? (const char *)p->kv_packed +
                                                    (b * p->Hkv + hk) * ((p->Sk + BK - 1) / BK) * pack_bytes
                                              : NULL;
    int64_t lo[BQ], hi[BQ], jmin, jmax;
    uint64_t bits[BQ]; /* a PARTIAL tile's visible keys per row (attn__bm_bits) */
    int cl[BQ], ch[BQ], ga[BQ], gb[BQ]; /* keys a row may see; a row group's columns */
    bool ew = elementwise(p), drop = p->dropout_p > 0.0;
    int64_t kl = row_lines(&p->k, Dk), vl = row_lines(&p->v, Dv);
    bool v_direct = p->v.dtype == ATTN_DTYPE_F32 && p->v.stride[3] == 1 && Dv % 16 == 0;

    attn__block_ranges(p, b, i0, nq, lo, hi, &jmin, &jmax);
    int64_t jn = jmin < jmax ? attn__next_key_tile(p, b, h, i0, nq, jmin / BK * BK, BK) : jmax;
    for (int64_t r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        seen[r] = 0.0f;
        if (dpbf) lr[r] = 0.0f;
    }
    memset(acc, 0, sizeof(float) * (size_t)(rows * dv));
    if (jmin < jmax) pack_rows(&p->q, b, i0, nq, h, Dk, amx || dpbf ? 1.0f : (float)p->scale, qs, Dk, mq);
#if defined(ATTN_SDPA_DP)
    if (dpbf && jmin < jmax) amx_rows(qs, Dk, nq, Dk, qd, dkp, mq);
#endif
#if defined(ATTN_SDPA_AMX)
    if (amx && jmin < jmax) amx_rows(qs, Dk, nq, Dk, qh, dk, AMX_TQ);
#endif

    for (int64_t j0 = jn; j0 < jmax; j0 = jn) {
        /* the next tile to visit (a block mask's next listed block), prefetched below */
        jn = j0 + BK < jmax ? attn__next_key_tile(p, b, h, i0, nq, j0 + BK, BK) : jmax;
        int64_t nk = jmax - j0 < BK ? jmax - j0 : BK;
        int kind = attn__tile_kind(p, b, h, i0, nq, j0, nk);
        if (kind == ATTN__BLK_EMPTY) continue;
        bool full = !ew && nk == BK && kind == ATTN__BLK_FULL, part = kind == ATTN__BLK_PARTIAL;
        if (part) attn__bm_bits(p->bm, b, h, i0, nq, j0, nk, bits);
        /* per row the keys [cl, ch) of the tile it may see (empty: cl >= ch),
         * and the rows that see any, [ra, rb): only they are computed */
        int64_t ra = nq, rb = 0;
        for (int64_t r = 0; r < nq; r++) {
            full &= lo[r] <= j0 && hi[r] >= j0 + BK;
            int64_t c0 = lo[r] - j0 > 0 ? lo[r] - j0 : 0, c1 = hi[r] - j0 < nk ? hi[r] - j0 : nk;
            if (lo[r] >= hi[r]) c1 = 0;
            if (part && c0 < c1) {
                uint64_t v = bits[r] & attn__bits_span(c0, c1, nk);
                c0 = v ? __builtin_ctzll(v) : 0;
                c1 = v ? 64 - __builtin_clzll(v) : 0;
            }
            cl[r] = (int)c0;
            ch[r] = (int)c1;
            if (c0 < c1) {
                ra = r < ra ? r : ra;
                rb = r + 1;
            }
        }
        if (ra >= rb) continue;
        attn__tiles_add(1);
        int64_t ldv = 0;
        const float *vsrc = NULL;
        bool v_bad = false, k_conv = true, v_conv = true; /* K, V to convert here (not packed, or V not finite) */
        const float *ktu = kt; /* K^T */
        /* the tile's record, unless this block needs only part of the tile
         * (its keys past nk are zeros when packed here, so that a +0 weight
         * times a negative value cannot make a -0) */
        const void *tile = packed != NULL && nk == (p->Sk - j0 < BK ? p->Sk - j0 : BK)
                               ? packed + (j0 / BK) * pack_bytes
                               : NULL;
#if defined(ATTN_SDPA_DP)
        const uint16_t *kdu = kd, *vdu = vd; /* the tile's K^T and V in pairs */
        if (dpbf && tile != NULL) { /* an AVX512-BF16 record: K^T and V in pairs, V in float32 */
            const uint16_t *rec = tile;
            const float *rv = (const float *)(const void *)(rec + dkp * BK + BK * dv);
            vdu = rec + dkp * BK;
            uint32_t finite;
            memcpy(&finite, rv + BK * dv, sizeof finite);
            kdu = rec;
            vsrc = rv;
            ldv = dv;
            v_bad = (!full || drop) && !finite;
            k_conv = v_conv = false;
        }
#endif
        if (!amx && !dpbf && tile != NULL) { /* a float32 record */
            const float *rec = tile;
            uint32_t finite;
            memcpy(&finite, rec + Dk * BK + BK * dv, sizeof finite);
            ktu = rec;
            vsrc = rec + Dk * BK;
            ldv = dv;
            v_bad = (!full || drop) && !finite;
            k_conv = v_conv = false;
        }
#if defined(ATTN_SDPA_AMX)
        const uint16_t *kuse = kh, *vuse = vh; /* the tile's K^T and V on tiles */
        if (amx && tile != NULL) { /* an AMX record */
            const uint16_t *rec = tile;
            uint32_t finite;
            memcpy(&finite, rec + dk * BK + BK * dv, sizeof finite);
            kuse = rec;
            k_conv = false;
            v_conv = !finite;
            if (finite) vuse = rec + dk * BK;
        }
#endif
        if (k_conv) pack_cols(&p->k, b, j0, nk, hk, Dk, 1.0f, kt, BK);
        if (v_conv) {
            vsrc = v_rows(p, v_direct, b, j0, nk, hk, vt, dv, BK, &ldv);
            v_bad = (!full || drop) && !rows_finite(vsrc, ldv, nk, Dv);
        }
#if defined(ATTN_SDPA_DP)
        if (dpbf && k_conv) amx_kt(kt, Dk, dkp, kd);
        if (dpbf && v_conv && !v_bad) amx_pairs(vsrc, ldv, nk, Dv, BK, vd, dv, NULL);
#endif
#if defined(ATTN_SDPA_AMX)
        if (amx && k_conv) amx_kt(kt, Dk, dk, kh);
        if (amx && v_conv) amx_v(vsrc, ldv, nk, Dv, dv, v_bad, vh);
#endif
        /* S = Qs K^T in groups of rows, each over the 16-key columns its rows
         * may see, [ga, gb) (a whole FULL tile: one group, every column) */
        int64_t grp = full ? rb - ra : GR, ng = 0;
        for (int64_t g0 = ra; g0 < rb; g0 += grp, ng++) {
            int64_t g1 = g0 + grp < rb ? g0 + grp : rb, a = BK, z = 0;
            for (int64_t r = g0; r < g1; r++)
                if (cl[r] < ch[r]) {
                    a = cl[r] < a ? cl[r] : a;
                    z = ch[r] > z ? ch[r] : z;
                }
            ga[ng] = (int)(a < z ? a / 16 * 16 : 0);
            gb[ng] = (int)(a < z ? (z + 15) / 16 * 16 : 0);
            if (ga[ng] >= gb[ng]) continue;
            int64_t mr = (g1 - g0 + MR - 1) / MR * MR; /* rows [g0, g0 + mr) are within qs's mq */
            if (g0 + mr > mq) mr = mq - g0;
#if defined(ATTN_SDPA_DP)
            if (dpbf) {
                dp_scores(qd, dkp, g0, g1, kdu, ga[ng], gb[ng], s, (float)p->scale);
                continue;
            }
#endif
#if defined(ATTN_SDPA_AMX)
            if (amx) { /* every column (those outside [ga, gb) are set to -inf below) */
                amx_scores(qh, dk, g0, g1, kuse, s, (float)p->scale);
                continue;
            }
#endif
            if (gb[ng] - ga[ng] == BK) /* all columns: the call the compiler specializes */
                gemm(mr, BK, Dk, qs + g0 * Dk, Dk, ktu, BK, s + g0 * BK, BK, false);
            else
                gemm(mr, gb[ng] - ga[ng], Dk, qs + g0 * Dk, Dk, ktu + ga[ng], BK, s + g0 * BK + ga[ng], BK, false);
        }

        int64_t nr = rb - ra, next = jn < jmax ? (jmax - jn < BK ? jmax - jn : BK) : 0;
        for (int64_t r = ra, g = 0, gend = ra + grp; r < rb; r++) {
            float *sr = s + r * BK;
            if (r == gend) { /* the next row group */
                g++;
                gend += grp;
            }
            for (int64_t c = r - ra; p->kv_packed == NULL && c < next; c += nr) { /* the next tile, spread over the rows */
                prefetch_row(&p->k, b, jn + c, hk, kl);
                prefetch_row(&p->v, b, jn + c, hk, vl);
            }
            if (cl[r] >= ch[r]) { /* sees no key here, so takes no V row (use: as of an earlier tile) */
                if (v_bad) memset(use + r * BK, 0, sizeof(float) * BK);
                continue;
            }
            for (int64_t c = 0; c < ga[g]; c += 8) _mm256_storeu_ps(sr + c, _mm256_set1_ps(-INFINITY));
            for (int64_t c = gb[g]; c < BK; c += 8) _mm256_storeu_ps(sr + c, _mm256_set1_ps(-INFINITY));
            if (!full) finish_scores(p, b, h, i0 + r, j0, lo[r], hi[r], sr, NULL, 1);
            if (part) hide_bits(sr, bits[r]);
            if (online_row(p, b, h, i0 + r, j0, nk, sr, &m[r], &l[r], acc + r * dv, dv,
                           v_bad ? use + r * BK : NULL, f, cl[r], ch[r], dpbf ? &lr[r] : NULL))
                seen[r] = 1.0f;
        }
        if (!v_bad || amx) { /* O += P V over each group's columns (the others' P is 0) */
            for (int64_t g0 = ra, g = 0; g0 < rb; g0 += grp, g++) {
                int64_t g1 = g0 + grp < rb ? g0 + grp : rb, kb = gb[g] < nk ? gb[g] : nk;
                if (ga[g] >= kb) continue;
                for (int64_t r = g0; r < g1; r++) /* rows that saw nothing: P 0 */
                    if (cl[r] >= ch[r]) memset(s + r * BK, 0, sizeof(float) * BK);
#if defined(ATTN_SDPA_AMX)
                if (amx) {
                    amx_pv(s, g0, g1, ga[g], kb, ph, vuse, dv, acc);
                    continue;
                }
#endif
#if defined(ATTN_SDPA_DP)
                if (dpbf) {
                    dp_pv(s, g0, g1, ga[g], kb, pd, vdu, dv, acc);
                    continue;
                }
#endif
                gemm(g1 - g0, dv, kb - ga[g], s + g0 * BK + ga[g], BK, vsrc + ga[g] * ldv, ldv, acc + g0 * dv, dv, true);
            }
#if defined(ATTN_SDPA_AMX)
            if (amx && v_bad) amx_bad_v(use, ra, rb, nk, vsrc, ldv, Dv, ph, acc, dv);
#endif
        } else {
            /* A NaN or Inf in V: take exactly the visible, kept keys, with
             * the GEMM's fused multiply-adds in its order, so results equal
             * those of a finite V bit for bit. */
            for (int64_t r = ra; r < rb; r++)
                for (int64_t c = 0; c < nk && cl[r] < ch[r]; c++)
                    if (use[r * BK + c] != 0.0f)
                        for (int64_t x = 0; x < Dv; x++)
                            acc[r * dv + x] = fmaf(s[r * BK + c], vsrc[c * ldv + x], acc[r * dv + x]);
        }
    }

    for (int64_t r = 0; r < nq; r++) {
        int64_t i = i0 + r;
        if (seen[r] == 0.0f) memset(acc + r * dv, 0, sizeof(float) * (size_t)Dv);
        store_row(&p->o, attn__off(p->o.stride, b, i, h, 0), acc + r * dv, Dv,
                  seen[r] != 0.0f ? 1.0f / (dpbf ? lr[r] : l[r]) : 1.0f);
        if (p->lse.data != NULL)
            ((float *)p->lse.data)[attn__off(p->lse.stride, b, h, i, 0)] =
                seen[r] != 0.0f ? m[r] + logf(l[r]) : -INFINITY;
    }
}

void KN(forward_block)(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws)
{
    forward_impl(p, b, h, i0, nq, ws, false, false);
}

#if defined(ATTN_SDPA_DP)
void KN(forward_block_dp)(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws)
{
    forward_impl(p, b, h, i0, nq, ws, false, true);
}
#endif

#if defined(ATTN_SDPA_AMX)
void KN(forward_block_amx)(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws)
{
    amx_begin();
    forward_impl(p, b, h, i0, nq, ws, true, false);
    amx_end();
}
#endif

/* ---- backward ------------------------------------------------------------------ */

#if defined(ATTN_SDPA_AMX)
/* The AMX-BF16 backward's products: every GEMM of the float32 backward on
 * tiles, each operand rounded to bfloat16 (Q, K, V and dO are the tensors'
 * own values; P and dS are rounded, as FlashAttention's backward rounds
 * them to the input type), sums in float32. Q enters unscaled: S is
 * scaled after its product and dK at its store (dQ already is). */

/* C [m][n] (+)= A B on tiles: A [m][lda] bfloat16 rows over ka (a multiple
 * of 32; zeros past the real k), B [ka / 2][ldb][2] (amx_pairs), C float32
 * [.][ldc]; m and n multiples of 16 (C's rows and columns up to them are
 * written). acc: from C's values, else from 0. C in blocks of up to 2 x 2
 * accumulator tiles (0, 1 / 2, 3), so that each A tile (4, 5) and B tile
 * (6, 7) loaded serves two products; every element's sum still runs over
 * k in order, one tile product per 32. */
static void amx_gemm(int64_t m, int64_t n, int64_t ka, const uint16_t *A, int64_t lda, const uint16_t *B,
                     int64_t ldb, float *C, int64_t ldc, bool acc)
{
    for (int64_t i = 0; i < m; i += 2 * AMX_ROWS)
        for (int64_t j = 0; j < n; j += 32) {
            bool i2 = i + AMX_ROWS < m, j2 = j + 16 < n; /* a second row tile, column tile */
            float *c0 = C + i * ldc + j, *c2 = c0 + AMX_ROWS * ldc;
            if (acc) {
                AMX_LOAD(0, c0, ldc * 4);
                if (j2) AMX_LOAD(1, c0 + 16, ldc * 4);
                if (i2) AMX_LOAD(2, c2, ldc * 4);
                if (i2 && j2) AMX_LOAD(3, c2 + 16, ldc * 4);
            } else {
                AMX_ZERO(0);
                AMX_ZERO(1);
                AMX_ZERO(2);
                AMX_ZERO(3);
            }
            for (int64_t k = 0; k < ka; k += 32) {
                const uint16_t *a = A + i * lda + k, *b = B + k * ldb + j * 2;
                AMX_LOAD(4, a, lda * 2);
                AMX_LOAD(6, b, ldb * 4);
                AMX_DPBF16(0, 4, 6);
                if (j2) {
                    AMX_LOAD(7, b + 32, ldb * 4);
                    AMX_DPBF16(1, 4, 7);
                }
                if (i2) {
                    AMX_LOAD(5, a + AMX_ROWS * lda, lda * 2);
                    AMX_DPBF16(2, 5, 6);
                    if (j2) AMX_DPBF16(3, 5, 7);
                }
            }
            AMX_STORE(0, c0, ldc * 4);
            if (j2) AMX_STORE(1, c0 + 16, ldc * 4);
            if (i2) AMX_STORE(2, c2, ldc * 4);
            if (i2 && j2) AMX_STORE(3, c2 + 16, ldc * 4);
        }
}

static void amx_scale(float *x, int64_t n, float scale)
{
    const vf sc = vset1(scale);
    for (int64_t i = 0; i < n; i += VW) vstore(x + i, vmul(sc, vload(x + i)));
}

/* The bfloat16 operands after the float32 workspace, in elements (a
 * multiple of 16 each, so that what follows stays aligned). */
static int64_t amx_bwd_halves(const attn__sdpa *p)
{
    int64_t dk = pad16(p->Dk), dv = pad16(p->Dv), dk32 = pad32(p->Dk), dv32 = pad32(p->Dv);
    return BK * (dk32 + dv32) + BQB * (dk32 + dv32) + 2 * BK * BK + BK * (dv + dk) + dk * BK + BK * BQB;
}

int64_t KN(backward_ws_amx)(const attn__sdpa *p)
{
    return KN(backward_ws)(p) + amx_bwd_halves(p) / 2 + pad16(p->Dk) * BQB;
}

/* ---- the backward's inputs converted once per call ---------------------------
 * As in the forward (forward_pack_amx): what a block converts although
 * every block on the other side converts the same again is converted once,
 * before the passes (attn__k_bwd_pack), as the blocks would have made it:
 *   a key tile's record (p->bwd_kv_packed, per (b, kv head, tile)), for dQ:
 *     ktB [dk32 / 2][BK][2], vtB [dv32 / 2][BK][2], krB [BK / 2][dk][2],
 *     then uint32_t finite: every K row of the tile is (else the dQ block
 *     converts the tile itself, for the NaN-safe path);
 *   a query block's record (p->bwd_q_packed, per (b, head, block of BQB
 *   rows)), for dK and dV: qB [dk32 / 2][BQB][2], doB [dv32 / 2][BQB][2],
 *     dobB [BK / 2][dv][2], qsB [BK / 2][dk][2]; the rows that see no key
 *     (LSE -inf) are zeros, as the blocks zero them. */
static int64_t record_bytes(int64_t halves) { return (halves * 2 + 4 + 63) / 64 * 64; }

int64_t KN(bwd_kv_bytes_amx)(const attn__sdpa *p)
{
    return record_bytes((pad32(p->Dk) + pad32(p->Dv)) * BK + BK * pad16(p->Dk));
}

void KN(bwd_kv_pack_amx)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst)
{
    int64_t dk32 = pad32(p->Dk), dv32 = pad32(p->Dv), dk = pad16(p->Dk), j0 = t * BK;
    int64_t nk = p->Sk - j0 < BK ? p->Sk - j0 : BK;
    uint16_t *ktB = dst, *vtB = ktB + dk32 * BK, *krB = vtB + dv32 * BK;
    memset(dst, 0, (size_t)KN(bwd_kv_bytes_amx)(p));
    pairs_t(&p->k, b, j0, nk, hkv, p->Dk, NULL, ktB, BK);
    pairs_t(&p->v, b, j0, nk, hkv, p->Dv, NULL, vtB, BK);
    uint32_t finite = pairs_r(&p->k, b, j0, nk, hkv, p->Dk, NULL, krB, dk);
    memcpy(krB + BK * dk, &finite, sizeof finite);
}

int64_t KN(bwd_q_bytes_amx)(const attn__sdpa *p)
{
    return record_bytes((pad32(p->Dk) + pad32(p->Dv)) * BQB + BK * (pad16(p->Dv) + pad16(p->Dk)));
}

void KN(bwd_q_pack_amx)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst)
{
    int64_t i0 = qb * BQB, nq = p->Sq - i0 < BQB ? p->Sq - i0 : BQB;
    int64_t dk32 = pad32(p->Dk), dv32 = pad32(p->Dv), dk = pad16(p->Dk), dv = pad16(p->Dv);
    uint16_t *qB = dst, *doB = qB + dk32 * BQB, *dobB = doB + dv32 * BQB, *qsB = dobB + BK * dv;
    bool keep[BQB] = {false};
    rows_seeing(p, b, h, i0, nq, keep);
    memset(dst, 0, (size_t)KN(bwd_q_bytes_amx)(p));
    pairs_t(&p->q, b, i0, nq, h, p->Dk, keep, qB, BQB);
    pairs_t(&p->d_o, b, i0, nq, h, p->Dv, keep, doB, BQB);
    pairs_r(&p->d_o, b, i0, nq, h, p->Dv, keep, dobB, dv);
    pairs_r(&p->q, b, i0, nq, h, p->Dk, keep, qsB, dk);
}
#endif

/* delta[i] = dot(dO_i, O_i) for the ATTN__X86_TILE_K rows of query block
 * qb of head (b, h) (0 past the query length): per row one FMA chain over
 * x = 0 .. Dv-1 in order, the order of the backward's dO . V products
 * (so that delta and dO . V cancel exactly where O = f V, as with one
 * visible key), eight rows at a time (a lane per row, the rows' elements
 * transposed in). */
void KN(delta_block)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *delta)
{
    int64_t i0 = qb * ATTN__X86_TILE_K, i1 = i0 + ATTN__X86_TILE_K < p->Sq ? i0 + ATTN__X86_TILE_K : p->Sq;
    int64_t lq = attn__qlen(p, b), Dv = p->Dv, d8 = p->d_o.stride[3] == 1 && p->o.stride[3] == 1 ? Dv / 8 * 8 : 0;
    for (int64_t g = i0; g < i1; g += 8) {
        int64_t od[8], oo[8];
        for (int r = 0; r < 8; r++) { /* rows past the block repeat its last, their sums unused */
            int64_t i = g + r < i1 ? g + r : i1 - 1;
            od[r] = attn__off(p->d_o.stride, b, i, h, 0);
            oo[r] = attn__off(p->o.stride, b, i, h, 0);
        }
        __m256 acc = _mm256_setzero_ps();
        for (int64_t x = 0; x < d8; x += 8) {
            __m256 a[8], c[8];
            for (int r = 0; r < 8; r++) {
                a[r] = load8(&p->d_o, od[r] + x);
                c[r] = load8(&p->o, oo[r] + x);
            }
            attn__avx2_transpose8(a);
            attn__avx2_transpose8(c);
            for (int u = 0; u < 8; u++) acc = _mm256_fmadd_ps(a[u], c[u], acc);
        }
        float sum[8];
        _mm256_storeu_ps(sum, acc);
        for (int r = 0; r < 8 && g + r < i1; r++) {
            for (int64_t x = d8; x < Dv; x++)
                sum[r] = fmaf(attn__ldf(&p->d_o, od[r] + x * p->d_o.stride[3]), attn__ldf(&p->o, oo[r] + x * p->o.stride[3]),
                              sum[r]);
            delta[g + r] = g + r < lq ? sum[r] : 0.0f;
        }
    }
}

/* One line of n (a multiple of VW) elements of a tile, in place: s holds the
 * scores (-inf where masked) and dp the products dO . V. On return s holds
 * P f (the weights applied to V, for dV) and dp holds dS = P (f dP - delta),
 * the gradient of the final score. lse and delta are per element (ls = 1)
 * or one value (ls = 0); f holds dropout factors or is NULL. Masked
 * elements give exactly 0, and a dropped element's dP is not used, so NaN
 * in a masked or dropped V never arrives. */
static void grad_line(float *s, float *dp, const float *lse, const float *delta, int ls,
                      const float *f, int64_t n)
{
    const vf ninf = vset1(-INFINITY), zero = vzero();
    for (int64_t x = 0; x < n; x += VW) {
        vf sv = vload(s + x);
        vf l = ls ? vload(lse + x) : vbcast(lse);
        vf d = ls ? vload(delta + x) : vbcast(delta);
        vm vis = vm_neq(sv, ninf); /* NaN counts as visible */
        vf pr = vkeep(vis, vexp(vsub(sv, l)));
        vf g = vload(dp + x), pf = pr;
        if (f != NULL) {
            vf fv = vload(f + x);
            g = vkeep(vm_neq(fv, zero), vmul(fv, g));
            pf = vmul(pr, fv);
        }
        vstore(s + x, pf);
        vstore(dp + x, vkeep(vis, vmul(pr, vsub(g, d))));
    }
}

static void mul_lines(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += VW) vstore(x + i, vmul(vload(x + i), vload(y + i)));
}

/* Rows i0 .. i0+nq-1 of head (b, h): key intervals, LSE and delta; false if
 * no row sees a key of [j0, j0 + nk). */
static bool block_rows(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t j0,
                       int64_t nk, const float *delta, int64_t *lo, int64_t *hi, float *lse, float *dl)
{
    bool any = false;
    for (int64_t r = 0; r < nq; r++) {
        attn__key_range(p, b, i0 + r, &lo[r], &hi[r]);
        lse[r] = lo[r] < hi[r] ? ((const float *)p->lse.data)[attn__off(p->lse.stride, b, h, i0 + r, 0)]
                               : -INFINITY;
        dl[r] = lse[r] != -INFINITY ? delta[(b * p->Hq + h) * p->Sq + i0 + r] : 0.0f;
        any |= lse[r] != -INFINITY && lo[r] < j0 + nk && hi[r] > j0;
    }
    for (int64_t r = nq; r < BQB; r++) {
        lse[r] = -INFINITY;
        dl[r] = 0.0f;
    }
    return any;
}

static bool covers(const int64_t *lo, const int64_t *hi, int64_t nq, int64_t j0)
{
    for (int64_t r = 0; r < nq; r++)
        if (lo[r] > j0 || hi[r] < j0 + BK) return false;
    return true;
}

/* A fused share's bias gradient from the dS tile dpt [nk keys][BQB rows]
 * (rows i0 .., keys j0 ..; a row that sees no key holds zeros): written
 * into a full-shape dbias, or added into a broadcast one's float32 sums
 * (part->dbias_acc; rows, then keys, in order per element), through 8 x 8
 * transposes where the keys are contiguous, element by element
 * elsewhere. */
static void ds_out(const attn__sdpa *p, const attn__fused_part *part, int64_t b, int64_t h, int64_t i0, int64_t nq,
                   int64_t j0, int64_t nk, const float *dpt)
{
    float *acc = part->dbias_acc;
    const int64_t *st = acc != NULL ? part->acc_stride : p->dbias.stride;
    int64_t n8 = st[3] == 1 ? nq / 8 * 8 : 0, k8 = st[3] == 1 ? nk / 8 * 8 : 0;
    for (int64_t r = 0; r < n8; r += 8)
        for (int64_t c = 0; c < k8; c += 8) {
            __m256 v[8];
            for (int u = 0; u < 8; u++) v[u] = _mm256_loadu_ps(dpt + (c + u) * BQB + r);
            attn__avx2_transpose8(v); /* v[u]: row r + u, keys c .. c + 7 */
            for (int u = 0; u < 8; u++) {
                int64_t off = attn__off(st, b, h, i0 + r + u, j0 + c);
                if (acc != NULL)
                    _mm256_storeu_ps(acc + off, _mm256_add_ps(_mm256_loadu_ps(acc + off), v[u]));
                else if (p->dbias.dtype == ATTN_DTYPE_F32)
                    _mm256_storeu_ps((float *)p->dbias.data + off, v[u]);
                else
                    _mm_storeu_si128((__m128i *)(void *)((uint16_t *)p->dbias.data + off), ps_to_half8(v[u], p->dbias.dtype));
            }
        }
    for (int64_t r = 0; r < nq; r++) /* what the blocks left: the last rows, the last keys */
        for (int64_t c = r < n8 ? k8 : 0; c < nk; c++) {
            int64_t off = attn__off(st, b, h, i0 + r, j0 + c);
            if (acc != NULL)
                acc[off] += dpt[c * BQB + r];
            else
                attn__stf(&p->dbias, off, dpt[c * BQB + r]);
        }
}

int64_t KN(backward_ws)(const attn__sdpa *p);

#if defined(ATTN_SDPA_DP)
/* The AVX512-BF16 backward: S and dP, whose operands (Q, K, V, dO) are
 * the tensors' own bfloat16 values, on vdpbf16ps (dp_gemm); so are dV +=
 * (P f)^T dO and dK += dS^T Q, with P f and dS rounded to bfloat16 once
 * (as FlashAttention's backward rounds them; dp_rows_bqb) against dO and Q
 * over pairs of queries (dp_query_pairs). dQ's product with dS stays
 * float32: with dS rounded it broke the half-precision rule on a PyTorch
 * oracle case (3.8x PyTorch's error, 3x allowed). vdpbf16ps reads a
 * subnormal operand or sum as zero (kernels/x86/vec.h). Q enters unscaled: S is
 * scaled after its product and dK at its store. The bfloat16 operands
 * follow the float32 workspace: dK/dV's K and V rows, Q^T and dO^T pairs,
 * P^T and dS^T rows, dO and Q over query pairs; or dQ's Q and dO rows and
 * K^T and V^T pairs. */
int64_t KN(backward_ws_dp)(const attn__sdpa *p)
{
    return KN(backward_ws)(p) + ((BK + BQB) * (pad2(p->Dk) + pad2(p->Dv)) + 2 * BK * BQB +
                                 BQB * (pad16(p->Dk) + pad16(p->Dv)) + 31) / 32 * 16;
}

/* Each dK/dV block walks every query block and would convert its Q and dO
 * again (Q^T and dO^T pairs for S and dP, Q and dO over query pairs for
 * dK and dV): with two key tiles or more the driver has each query block
 * converted once (attn__k_bwd_pack.q) into a record of bwd_q_bytes_dp
 * bytes per (b, head, block of BQB rows):
 *   qP [dk2 / 2][BQB][2], doP [dv2 / 2][BQB][2]   (pairs of d)
 *   dobD [BQB / 2][dv][2], qsD [BQB / 2][dk][2]     (pairs of queries)
 * all the tensors' own bfloat16 bits (Q unscaled), the rows that see no
 * key (LSE -inf) zeros, as the blocks zero them. */
/* The record's first part (qP, doP) in elements, a multiple of 16. */
static int64_t dp_q_halves(const attn__sdpa *p) { return ((pad2(p->Dk) + pad2(p->Dv)) * BQB + 15) / 16 * 16; }

int64_t KN(bwd_q_bytes_dp)(const attn__sdpa *p)
{
    return (dp_q_halves(p) * 2 + BQB * (pad16(p->Dk) + pad16(p->Dv)) * 2 + 63) / 64 * 64;
}

void KN(bwd_q_pack_dp)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst)
{
    int64_t i0 = qb * BQB, nq = p->Sq - i0 < BQB ? p->Sq - i0 : BQB, Dk = p->Dk, Dv = p->Dv;
    int64_t dk2 = pad2(Dk), dk = pad16(Dk), dv = pad16(Dv), halves = dp_q_halves(p);
    uint16_t *qP = dst, *doP = qP + dk2 * BQB, *dobD = qP + halves, *qsD = dobD + BQB * dv;
    bool keep[BQB] = {false};
    rows_seeing(p, b, h, i0, nq, keep);
    memset(dst, 0, sizeof(uint16_t) * (size_t)(halves + BQB * (dv + dk)));
    pairs_t(&p->q, b, i0, nq, h, Dk, keep, qP, BQB);
    pairs_t(&p->d_o, b, i0, nq, h, Dv, keep, doP, BQB);
    pairs_r(&p->d_o, b, i0, nq, h, Dv, keep, dobD, dv);
    pairs_r(&p->q, b, i0, nq, h, Dk, keep, qsD, dk);
}
#endif

/* Each dK/dV block (and fused share) walks every query block, and would
 * convert its Q and dO again for every key tile: with two key tiles or
 * more the driver has each query block converted once per call
 * (attn__k_bwd_pack.q) into a record of bwd_q_bytes bytes per (b, head,
 * block of BQB rows), in float32 as the blocks make them:
 *   qst [Dk][BQB] = scale Q^T, dot [Dv][BQB] = dO^T,
 *   qs [BQB][dk] = scale Q,    dob [BQB][dv] = dO,
 * the rows that see no key zeros. In the usual [B, S, H, D] layout the
 * transposes read a row per query, a page apart (15% of a D 128 backward's
 * time on AMD Zen 4 before). Same values, so the same bits. */
int64_t KN(bwd_q_bytes)(const attn__sdpa *p)
{
    return ((p->Dk + p->Dv + pad16(p->Dk) + pad16(p->Dv)) * BQB * 4 + 63) / 64 * 64;
}

/* Query block i0 (nq rows) of head (b, h) in the four float32 layouts of
 * the dK/dV products (the records above, or a block's own buffers), zeros
 * past nq and in the rows whose keep is false (they see no key: their Q
 * and dO are never used). */
static void pack_q_do(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float scale,
                      const bool *keep, float *qst, float *dot, float *qs, float *dob)
{
    int64_t Dk = p->Dk, Dv = p->Dv, dk = pad16(Dk), dv = pad16(Dv);
    pack_cols(&p->q, b, i0, nq, h, Dk, scale, qst, BQB);
    pack_cols(&p->d_o, b, i0, nq, h, Dv, 1.0f, dot, BQB);
    pack_rows(&p->q, b, i0, nq, h, Dk, scale, qs, dk, BQB);
    pack_rows(&p->d_o, b, i0, nq, h, Dv, 1.0f, dob, dv, BQB);
    for (int64_t r = 0; r < nq; r++)
        if (!keep[r]) {
            for (int64_t x = 0; x < Dv; x++) dot[x * BQB + r] = dob[r * dv + x] = 0.0f;
            for (int64_t x = 0; x < Dk; x++) qst[x * BQB + r] = qs[r * dk + x] = 0.0f;
        }
}

void KN(bwd_q_pack)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst)
{
    int64_t i0 = qb * BQB, nq = p->Sq - i0 < BQB ? p->Sq - i0 : BQB;
    float *qst = dst, *dot = qst + p->Dk * BQB, *qs = dot + p->Dv * BQB, *dob = qs + BQB * pad16(p->Dk);
    bool keep[BQB] = {false};
    rows_seeing(p, b, h, i0, nq, keep);
    pack_q_do(p, b, h, i0, nq, (float)p->scale, keep, qst, dot, qs, dob);
}

int64_t KN(backward_ws)(const attn__sdpa *p)
{
    int64_t Dk = p->Dk, Dv = p->Dv, dk = pad16(Dk), dv = pad16(Dv);
    int64_t dkdv = BK * (Dk + Dv) + BQB * (Dk + Dv) + BQB * (dk + dv) + 5 * BK * BQB + BK * (dk + dv) +
                   3 * BQB + Dk * BK;
    int64_t dq = BQB * (dk + dv) + BK * (Dk + Dv) + BK * dk + 4 * BQB * BK + BK + BQB * dk + 2 * BQB;
    return dkdv > dq ? dkdv : dq;
}

/* dK, dV of key tile kb of kv head (b, hkv), summed over the group's query
 * heads (a fused share's, part != NULL) and their query blocks in a fixed
 * order. Works on transposed tiles (keys as rows): St = K Qs^T, dPt = V
 * dO^T, then dV += (P f)^T dO and dK += dS^T Qs with Qs = scale * Q; the
 * fused share also adds dQ^T += K^T dS^T into dqt (group, Dk, sqp) and
 * writes the full-shape bias gradient if asked. */
static inline __attribute__((always_inline)) void
dkdv_impl(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const attn__fused_part *part,
          const float *delta, float *ws, float *dqt, int64_t sqp, const bool amx, const bool dpbf)
{
    int64_t j0 = kb * BK, nk = p->Sk - j0 < BK ? p->Sk - j0 : BK;
    int64_t Dk = p->Dk, Dv = p->Dv, dk = pad16(Dk), dv = pad16(Dv);
    float *kr = ws, *vr = kr + BK * Dk;            /* (BK, Dk), (BK, Dv) K and V rows */
    float *qst = vr + BK * Dv, *dot = qst + Dk * BQB; /* (Dk, BQB) Qs^T, (Dv, BQB) dO^T */
    float *qs = dot + Dv * BQB, *dob = qs + BQB * dk;  /* (BQB, dk) Qs, (BQB, dv) dO */
    float *st = dob + BQB * dv, *dpt = st + BK * BQB;  /* (BK, BQB) scores then P f; dO.V then dS */
    float *cgt = dpt + BK * BQB, *ft = cgt + BK * BQB; /* (BK, BQB) soft-cap grads; (BQB, BK) dropout */
    float *dka = ft + BQB * BK, *dva = dka + BK * dk; /* (BK, dk), (BK, dv) accumulators */
    float *lse = dva + BK * dv, *dl = lse + BQB, *fl = dl + BQB; /* (BQB) */
    float *kt = fl + BQB, *use = kt + Dk * BK;        /* (Dk, BK) K^T, (BK, BQB): fused dQ only */
    int64_t lo[BQB], hi[BQB];
    uint64_t bits[BQB]; /* a PARTIAL tile's visible keys per query row */
    bool ew = elementwise(p), drop = p->dropout_p > 0.0, cap = p->softcap > 0.0;
    float scale = (float)p->scale, qscale = amx || dpbf ? 1.0f : scale; /* AMX, dpbf: Q unscaled, dK scaled at the end */
    int64_t ql = row_lines(&p->q, Dk), dol = row_lines(&p->d_o, Dv);
#if defined(ATTN_SDPA_AMX)
    /* bfloat16 operands: K, V rows; Q^T, dO^T pairs; P, dS rows; dO, Q pairs; K^T rows; dS^T pairs */
    int64_t dk32 = pad32(Dk), dv32 = pad32(Dv);
    uint16_t *kA = (uint16_t *)(void *)(ws + KN(backward_ws)(p)), *vA = kA + BK * dk32, *qB = vA + BK * dv32;
    uint16_t *doB = qB + dk32 * BQB, *pA = doB + dv32 * BQB, *dsA = pA + BK * BK, *dobB = dsA + BK * BK;
    uint16_t *qsB = dobB + BK * dv, *ktA = qsB + BK * dk, *dsB = ktA + dk * BK;
    float *dqtmp = (float *)(void *)(dsB + BK * BQB); /* (dk, BQB) */
    bool kbad[BK];
    const bool *only = amx ? kbad : NULL; /* NaN-safe dQ: the keys the tiles left out, or NULL: all */
    int64_t nqb = (p->Sq + BQB - 1) / BQB, qbytes = KN(bwd_q_bytes_amx)(p);
    const char *qrecs = amx && p->bwd_q_packed != NULL /* the call's query-block records (above) */
                            ? (const char *)p->bwd_q_packed + b * p->Hq * nqb * qbytes
                            : NULL;
#else
    const bool *only = NULL;
    (void)amx;
#endif
#if defined(ATTN_SDPA_DP)
    int64_t dk2 = pad2(Dk), dv2 = pad2(Dv); /* K, V rows; Q^T, dO^T pairs */
    uint16_t *kP = (uint16_t *)(void *)(ws + KN(backward_ws)(p)), *vP = kP + BK * dk2, *qP = vP + BK * dv2;
    uint16_t *doP = qP + dk2 * BQB, *pD = doP + dv2 * BQB, *dsD = pD + BK * BQB; /* P^T, dS^T rows */
    uint16_t *dobD = dsD + BK * BQB, *qsD = dobD + BQB * dv; /* dO, Q over query pairs */
    int64_t nqb_dp = (p->Sq + BQB - 1) / BQB, qbytes_dp = KN(bwd_q_bytes_dp)(p);
    const char *qrecs_dp = dpbf && p->bwd_q_packed != NULL /* the call's query-block records (above) */
                               ? (const char *)p->bwd_q_packed + b * p->Hq * nqb_dp * qbytes_dp
                               : NULL;
#else
    (void)dpbf;
#endif

    memset(dka, 0, sizeof(float) * (size_t)(BK * (dk + dv)));
    pack_rows(&p->k, b, j0, nk, hkv, Dk, 1.0f, kr, Dk, BK);
    pack_rows(&p->v, b, j0, nk, hkv, Dv, 1.0f, vr, Dv, BK);
    bool k_bad = false;
    if (dqt != NULL) {
        pack_cols(&p->k, b, j0, nk, hkv, Dk, 1.0f, kt, BK);
        k_bad = !all_finite(kr, nk * Dk);
    }
#if defined(ATTN_SDPA_DP)
    if (dpbf) {
        amx_rows(kr, Dk, nk, Dk, kP, dk2, BK);
        amx_rows(vr, Dv, nk, Dv, vP, dv2, BK);
    }
#endif
#if defined(ATTN_SDPA_AMX)
    if (amx) {
        amx_rows(kr, Dk, nk, Dk, kA, dk32, BK);
        amx_rows(vr, Dv, nk, Dv, vA, dv32, BK);
        if (dqt != NULL) { /* K^T rows, a non-finite key's column zero (added after) */
            amx_rows(kt, BK, Dk, BK, ktA, BK, dk);
            for (int64_t c = 0; c < BK; c++) {
                kbad[c] = k_bad && c < nk && !rows_finite(kr + c * Dk, Dk, 1, Dk);
                if (kbad[c])
                    for (int64_t x = 0; x < Dk; x++) ktA[x * BK + c] = 0;
            }
        }
    }
#endif
    int64_t h0 = part ? part->h0 : hkv * p->group, h1 = part ? part->h1 : (hkv + 1) * p->group;
    bool dbias = part != NULL && part->write_dbias;
    float *acc = part != NULL ? part->dbias_acc : NULL; /* a broadcast bias gradient's sums */
    for (int64_t h = h0; h < h1; h++)
        for (int64_t i0 = 0; i0 < p->Sq; i0 += BQB) {
            if ((i0 = attn__next_query_tile(p, b, h, j0, nk, i0, BQB)) >= p->Sq) break;
            int64_t nq = p->Sq - i0 < BQB ? p->Sq - i0 : BQB;
            int kind = attn__tile_kind(p, b, h, i0, nq, j0, nk);
            if (kind == ATTN__BLK_EMPTY || !block_rows(p, b, h, i0, nq, j0, nk, delta, lo, hi, lse, dl)) continue;
            attn__tiles_add(1);
            bool full = !ew && nk == BK && kind == ATTN__BLK_FULL && covers(lo, hi, nq, j0);
            if (kind == ATTN__BLK_PARTIAL) attn__bm_bits(p->bm, b, h, i0, nq, j0, nk, bits);
            bool conv = true; /* Q and dO to convert here */
            const float *qsu = qs, *dobu = dob; /* Q (scaled unless amx or dpbf) and dO rows */
            const float *qstu = qst, *dotu = dot; /* their transposes */
            if (!amx && !dpbf && p->bwd_q_packed != NULL) { /* a float32 record (above) */
                int64_t blocks_q = (p->Sq + BQB - 1) / BQB;
                qstu = (const float *)(const void *)((const char *)p->bwd_q_packed +
                                                     ((b * p->Hq + h) * blocks_q + i0 / BQB) * KN(bwd_q_bytes)(p));
                dotu = qstu + Dk * BQB;
                qsu = dotu + Dv * BQB;
                dobu = qsu + BQB * dk;
                conv = false;
            }
#if defined(ATTN_SDPA_DP)
            const uint16_t *qPu = qP, *doPu = doP, *dobDu = dobD, *qsDu = qsD;
            if (qrecs_dp != NULL) {
                qPu = (const uint16_t *)(const void *)(qrecs_dp + (h * nqb_dp + i0 / BQB) * qbytes_dp);
                doPu = qPu + dk2 * BQB;
                dobDu = qPu + dp_q_halves(p);
                qsDu = dobDu + BQB * dv;
                conv = false;
            }
#endif
#if defined(ATTN_SDPA_AMX)
            const uint16_t *qBu = qB, *doBu = doB, *dobBu = dobB, *qsBu = qsB;
            if (qrecs != NULL) {
                qBu = (const uint16_t *)(const void *)(qrecs + (h * nqb + i0 / BQB) * qbytes);
                doBu = qBu + dk32 * BQB;
                dobBu = doBu + dv32 * BQB;
                qsBu = dobBu + BK * dv;
                conv = false;
            }
#endif
            if (conv) {
                bool keep[BQB];
                for (int64_t r = 0; r < nq; r++) keep[r] = lse[r] != -INFINITY;
                pack_q_do(p, b, h, i0, nq, qscale, keep, qst, dot, qs, dob);
            }
#if defined(ATTN_SDPA_DP)
            if (dpbf) {
                if (conv) {
                    amx_pairs(qst, BQB, Dk, BQB, dk2, qP, BQB, NULL);
                    amx_pairs(dot, BQB, Dv, BQB, dv2, doP, BQB, NULL);
                }
                dp_gemm(BK, BQB, dk2 / 2, kP, dk2, qPu, BQB, st, BQB, scale, false);
                dp_gemm(BK, BQB, dv2 / 2, vP, dv2, doPu, BQB, dpt, BQB, 1.0f, false);
            } else
#endif
#if defined(ATTN_SDPA_AMX)
            if (amx) {
                if (conv) {
                    amx_pairs(qst, BQB, Dk, BQB, dk32, qB, BQB, NULL);
                    amx_pairs(dot, BQB, Dv, BQB, dv32, doB, BQB, NULL);
                }
                amx_gemm(BK, BQB, dk32, kA, dk32, qBu, BQB, st, BQB, false);
                amx_scale(st, BK * BQB, scale);
                amx_gemm(BK, BQB, dv32, vA, dv32, doBu, BQB, dpt, BQB, false);
            } else
#endif
            {
                gemm(BK, BQB, Dk, kr, Dk, qstu, BQB, st, BQB, false);
                gemm(BK, BQB, Dv, vr, Dv, dotu, BQB, dpt, BQB, false);
            }
            int64_t nh = i0 + BQB < p->Sq ? h : h + 1, ni = i0 + BQB < p->Sq ? i0 + BQB : 0;
            int64_t nn = nh < h1 ? (p->Sq - ni < BQB ? p->Sq - ni : BQB) : 0;
            for (int64_t r = 0; r < BQB; r++) {
                if (r < nn && conv) { /* the next query block's rows */
                    prefetch_row(&p->q, b, ni + r, nh, ql);
                    prefetch_row(&p->d_o, b, ni + r, nh, dol);
                }
                if (r >= nq || lse[r] == -INFINITY) {
                    for (int64_t c = 0; c < BK; c++) {
                        st[c * BQB + r] = -INFINITY;
                        if (cap) cgt[c * BQB + r] = 0.0f;
                    }
                } else if (!full) {
                    finish_scores(p, b, h, i0 + r, j0, lo[r], hi[r], st + r, cap ? cgt + r : NULL, BQB);
                    if (kind == ATTN__BLK_PARTIAL) attn__bits_hide(bits[r], nk, st + r, BQB);
                }
                if (drop && r < nq) drop_factors(p, b, h, i0 + r, j0, nk, ft + r * BK);
            }
            if (dqt != NULL && k_bad) /* visible elements, for the NaN-safe dQ */
                for (int64_t x = 0; x < BK * BQB; x++) use[x] = st[x] != -INFINITY ? 1.0f : 0.0f;
            for (int64_t c = 0; c < nk; c++) {
                if (drop)
                    for (int64_t r = 0; r < BQB; r++) fl[r] = r < nq ? ft[r * BK + c] : 0.0f;
                grad_line(st + c * BQB, dpt + c * BQB, lse, dl, 1, drop ? fl : NULL, BQB);
            }
            if (dbias || acc != NULL) ds_out(p, part, b, h, i0, nq, j0, nk, dpt);
            for (int64_t c = 0; cap && c < nk; c++) mul_lines(dpt + c * BQB, cgt + c * BQB, BQB); /* dS -> d(raw score) */
#if defined(ATTN_SDPA_DP)
            if (dpbf) { /* P f and dS rounded to bfloat16, over the block's query pairs */
                if (conv) {
                    dp_query_pairs(dobu, dv, dv, dobD);
                    dp_query_pairs(qsu, dk, dk, qsD);
                }
                dp_rows_bqb(st, nk, pD);
                dp_gemm(nk, dv, BQB / 2, pD, BQB, dobDu, dv, dva, dv, 1.0f, true);
                dp_rows_bqb(dpt, nk, dsD);
                dp_gemm(nk, dk, BQB / 2, dsD, BQB, qsDu, dk, dka, dk, 1.0f, true);
            } else
#endif
#if defined(ATTN_SDPA_AMX)
            if (amx) { /* over BK query columns: those past BQB are zeros */
                amx_rows(st, BQB, nk, BQB, pA, BK, BK);
                if (conv) amx_pairs(dob, dv, BQB, dv, BK, dobB, dv, NULL);
                amx_gemm(BK, dv, BK, pA, BK, dobBu, dv, dva, dv, true);
                amx_rows(dpt, BQB, nk, BQB, dsA, BK, BK);
                if (conv) amx_pairs(qs, dk, BQB, dk, BK, qsB, dk, NULL);
                amx_gemm(BK, dk, BK, dsA, BK, qsBu, dk, dka, dk, true);
            } else
#endif
            {
                gemm(nk, dv, BQB, st, BQB, dobu, dv, dva, dv, true);
                gemm(nk, dk, BQB, dpt, BQB, qsu, dk, dka, dk, true);
            }
            if (dqt != NULL) { /* dQ^T += K^T dS^T, in this head's column block */
                float *c0 = dqt + (h - hkv * p->group) * Dk * sqp + i0;
#if defined(ATTN_SDPA_AMX)
                if (amx) { /* on tiles into dqtmp, added; then a non-finite key's visible pairs */
                    amx_pairs(dpt, BQB, nk, BQB, BK, dsB, BQB, NULL);
                    amx_gemm(dk, BQB, BK, ktA, BK, dsB, BQB, dqtmp, BQB, false);
                    for (int64_t x = 0; x < Dk; x++)
                        for (int64_t r = 0; r < BQB; r += VW)
                            vstore(c0 + x * sqp + r, vadd(vload(c0 + x * sqp + r), vload(dqtmp + x * BQB + r)));
                } else
#endif
                if (!k_bad)
                    gemm(Dk, BQB, nk, kt, BK, dpt, BQB, c0, sqp, true);
                if (k_bad) /* a NaN or Inf in K: the visible keys (of those the tiles left out), in the GEMM's order */
                    for (int64_t x = 0; x < Dk; x++)
                        for (int64_t r = 0; r < nq; r++)
                            for (int64_t c = 0; c < nk; c++)
                                if (use[c * BQB + r] != 0.0f && (only == NULL || only[c]))
                                    c0[x * sqp + r] = fmaf(kt[x * BK + c], dpt[c * BQB + r], c0[x * sqp + r]);
            }
        }
    for (int64_t c = 0; c < nk; c++) {
        store_row(&p->dk, attn__off(p->dk.stride, b, j0 + c, hkv, 0), dka + c * dk, Dk, amx || dpbf ? scale : 1.0f);
        store_row(&p->dv, attn__off(p->dv.stride, b, j0 + c, hkv, 0), dva + c * dv, Dv, 1.0f);
    }
}

void KN(dkdv_block)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta, float *ws)
{
    dkdv_impl(p, b, hkv, kb, NULL, delta, ws, NULL, 0, false, false);
}

#if defined(ATTN_SDPA_DP)
void KN(dkdv_block_dp)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta, float *ws)
{
    dkdv_impl(p, b, hkv, kb, NULL, delta, ws, NULL, 0, false, true);
}
#endif

#if defined(ATTN_SDPA_AMX)
void KN(dkdv_block_amx)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta, float *ws)
{
    amx_begin();
    dkdv_impl(p, b, hkv, kb, NULL, delta, ws, NULL, 0, true, false);
    amx_end();
}
#endif

int64_t KN(fused_ws)(const attn__sdpa *p)
{
    return KN(backward_ws)(p) + p->group * p->Dk * KN(fused_sqp)(p);
}

int64_t KN(fused_sqp)(const attn__sdpa *p) { return (p->Sq + BQB - 1) / BQB * BQB; }

/* The backward of a share of kv head (b, hkv) (attn__fused_part) but for
 * delta: its key tiles in order, each adding its dQ^T contribution to a
 * buffer owned by this task, so S and dP are computed once (5 GEMMs, not
 * 7) and the sums keep one order. */
static inline __attribute__((always_inline)) void
fused_impl(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part, const float *delta,
           float *ws, const bool amx, const bool dpbf)
{
    int64_t sqp = KN(fused_sqp)(p), Dk = p->Dk;
    int64_t g0 = part->h0 - hkv * p->group, g1 = part->h1 - hkv * p->group;
    float *dqt = ws + KN(backward_ws)(p); /* (group, Dk, sqp) dQ^T */
#if defined(ATTN_SDPA_AMX)
    if (amx) dqt = ws + KN(backward_ws_amx)(p);
    if (amx) amx_begin();
#endif
#if defined(ATTN_SDPA_DP)
    if (dpbf) dqt = ws + KN(backward_ws_dp)(p);
#endif
    memset(dqt + g0 * Dk * sqp, 0, sizeof(float) * (size_t)((g1 - g0) * Dk * sqp));
    attn__fused_zero_dbias(p, b, part, BK);
    for (int64_t kb = part->kb0; kb < part->kb1; kb++) dkdv_impl(p, b, hkv, kb, part, delta, ws, dqt, sqp, amx, dpbf);
#if defined(ATTN_SDPA_AMX)
    if (amx) amx_end();
#endif
    float scale = (float)p->scale;
    for (int64_t hl = g0; hl < g1; hl++)
        store_cols(&p->dq, b, p->Sq, hkv * p->group + hl, Dk, dqt + hl * Dk * sqp, sqp, scale);
}

void KN(fused_kvhead)(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part, const float *delta,
                      float *ws)
{
    fused_impl(p, b, hkv, part, delta, ws, false, false);
}

#if defined(ATTN_SDPA_DP)
int64_t KN(fused_ws_dp)(const attn__sdpa *p)
{
    return KN(backward_ws_dp)(p) + p->group * p->Dk * KN(fused_sqp)(p);
}

void KN(fused_kvhead_dp)(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,
                         const float *delta, float *ws)
{
    fused_impl(p, b, hkv, part, delta, ws, false, true);
}
#endif

#if defined(ATTN_SDPA_AMX)
int64_t KN(fused_ws_amx)(const attn__sdpa *p)
{
    return KN(backward_ws_amx)(p) + p->group * p->Dk * KN(fused_sqp)(p);
}

void KN(fused_kvhead_amx)(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,
                          const float *delta, float *ws)
{
    fused_impl(p, b, hkv, part, delta, ws, true, false);
}
#endif

/* dQ of query block qb of head (b, h), and the bias gradient of its rows
 * when dbias has the full [B, Hq, Sq, Sk] shape: S = Qs Kt, dP = dO Vt,
 * dQ += dS K over the visible key tiles, then dQ *= scale. */
static inline __attribute__((always_inline)) void
dq_impl(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta, bool write_dbias, float *ws,
        const bool amx, const bool dpbf)
{
    int64_t i0 = qb * BQB, nq = p->Sq - i0 < BQB ? p->Sq - i0 : BQB, hk = h / p->group;
    int64_t Dk = p->Dk, Dv = p->Dv, dk = pad16(Dk), dv = pad16(Dv), mq = (nq + MR - 1) / MR * MR;
    float *qs = ws, *dob = qs + BQB * dk;            /* (BQB, dk) Qs, (BQB, dv) dO */
    float *kt = dob + BQB * dv, *vt = kt + Dk * BK;  /* (Dk, BK) K^T, (Dv, BK) V^T */
    float *kr = vt + Dv * BK;                       /* (BK, dk) K rows */
    float *s = kr + BK * dk, *dp = s + BQB * BK;     /* (BQB, BK) */
    float *cg = dp + BQB * BK, *use = cg + BQB * BK;  /* (BQB, BK) */
    float *f = use + BQB * BK, *dqa = f + BK;        /* (BK), (BQB, dk) */
    float *lse = dqa + BQB * dk, *dl = lse + BQB;     /* (BQB) */
    int64_t lo[BQB], hi[BQB], jmin = INT64_MAX, jmax = 0;
    uint64_t bits[BQB]; /* a PARTIAL tile's visible keys per row */
    bool ew = elementwise(p), drop = p->dropout_p > 0.0, cap = p->softcap > 0.0;
    int64_t kl = row_lines(&p->k, Dk), vl = row_lines(&p->v, Dv);
#if defined(ATTN_SDPA_AMX)
    /* bfloat16 operands: Q, dO rows; K^T, V^T pairs; dS rows; K pairs */
    int64_t dk32 = pad32(Dk), dv32 = pad32(Dv);
    uint16_t *qA = (uint16_t *)(void *)(ws + KN(backward_ws)(p)), *doA = qA + BQB * dk32, *ktB = doA + BQB * dv32;
    uint16_t *vtB = ktB + dk32 * BK, *dsA = vtB + dv32 * BK, *krB = dsA + BQB * BK;
    bool kbad[BK];
    const bool *only = amx ? kbad : NULL; /* NaN-safe dQ: the keys the tiles left out, or NULL: all */
    int64_t kbytes = KN(bwd_kv_bytes_amx)(p);
    const char *krecs = amx && p->bwd_kv_packed != NULL /* the call's key-tile records (above) */
                            ? (const char *)p->bwd_kv_packed + (b * p->Hkv + hk) * ((p->Sk + BK - 1) / BK) * kbytes
                            : NULL;
#else
    const bool *only = NULL;
    const char *krecs = NULL;
    (void)amx;
#endif
#if defined(ATTN_SDPA_DP)
    int64_t dk2 = pad2(Dk), dv2 = pad2(Dv); /* Q, dO rows; K^T, V^T pairs */
    uint16_t *qP = (uint16_t *)(void *)(ws + KN(backward_ws)(p)), *doP = qP + BQB * dk2, *ktP = doP + BQB * dv2;
    uint16_t *vtP = ktP + dk2 * BK;
#else
    (void)dpbf;
#endif

    block_rows(p, b, h, i0, nq, 0, p->Sk, delta, lo, hi, lse, dl);
    for (int64_t r = 0; r < nq; r++)
        if (lse[r] != -INFINITY && lo[r] < hi[r]) {
            jmin = lo[r] < jmin ? lo[r] : jmin;
            jmax = hi[r] > jmax ? hi[r] : jmax;
        }
    memset(dqa, 0, sizeof(float) * (size_t)(BQB * dk));
    if (write_dbias)
        for (int64_t r = 0; r < nq; r++)
            for (int64_t j = 0; j < p->Sk; j++) attn__stf(&p->dbias, attn__off(p->dbias.stride, b, h, i0 + r, j), 0.0f);
    if (jmin < jmax) {
        pack_rows(&p->q, b, i0, nq, h, Dk, amx || dpbf ? 1.0f : (float)p->scale, qs, dk, mq);
        pack_rows(&p->d_o, b, i0, nq, h, Dv, 1.0f, dob, dv, mq);
        for (int64_t r = 0; r < nq; r++)
            if (lse[r] == -INFINITY) memset(dob + r * dv, 0, sizeof(float) * (size_t)dv);
#if defined(ATTN_SDPA_DP)
        if (dpbf) {
            amx_rows(qs, dk, nq, Dk, qP, dk2, mq);
            amx_rows(dob, dv, nq, Dv, doP, dv2, mq);
        }
#endif
#if defined(ATTN_SDPA_AMX)
        if (amx) {
            amx_rows(qs, dk, nq, Dk, qA, dk32, BQB);
            amx_rows(dob, dv, nq, Dv, doA, dv32, BQB);
        }
#endif
    }
    for (int64_t j0 = jmin < jmax ? jmin / BK * BK : jmax; j0 < jmax; j0 += BK) {
        if ((j0 = attn__next_key_tile(p, b, h, i0, nq, j0, BK)) >= jmax) break;
        int64_t nk = jmax - j0 < BK ? jmax - j0 : BK;
        int kind = attn__tile_kind(p, b, h, i0, nq, j0, nk);
        bool any = false;
        for (int64_t r = 0; r < nq; r++) any |= lse[r] != -INFINITY && lo[r] < j0 + nk && hi[r] > j0;
        if (!any || kind == ATTN__BLK_EMPTY) continue;
        attn__tiles_add(1);
        bool full = !ew && nk == BK && kind == ATTN__BLK_FULL && covers(lo, hi, nq, j0);
        if (kind == ATTN__BLK_PARTIAL) attn__bm_bits(p->bm, b, h, i0, nq, j0, nk, bits);
        bool conv = true, k_bad = false; /* K and V to convert here; a NaN or Inf in K */
#if defined(ATTN_SDPA_AMX)
        const uint16_t *ktBu = ktB, *vtBu = vtB, *krBu = krB;
        if (krecs != NULL && nk == (p->Sk - j0 < BK ? p->Sk - j0 : BK)) { /* as in the forward */
            const uint16_t *rec = (const uint16_t *)(const void *)(krecs + (j0 / BK) * kbytes);
            uint32_t finite;
            memcpy(&finite, rec + (dk32 + dv32) * BK + BK * dk, sizeof finite);
            if (finite) {
                ktBu = rec;
                vtBu = rec + dk32 * BK;
                krBu = vtBu + dv32 * BK;
                conv = false;
            }
        }
#endif
        if (conv) {
            pack_cols(&p->k, b, j0, nk, hk, Dk, 1.0f, kt, BK);
            pack_cols(&p->v, b, j0, nk, hk, Dv, 1.0f, vt, BK);
            pack_rows(&p->k, b, j0, nk, hk, Dk, 1.0f, kr, dk, BK);
            k_bad = !all_finite(kr, nk * dk);
        }
#if defined(ATTN_SDPA_DP)
        if (dpbf) {
            amx_pairs(kt, BK, Dk, BK, dk2, ktP, BK, NULL);
            amx_pairs(vt, BK, Dv, BK, dv2, vtP, BK, NULL);
            dp_gemm(mq, BK, dk2 / 2, qP, dk2, ktP, BK, s, BK, (float)p->scale, false);
            dp_gemm(mq, BK, dv2 / 2, doP, dv2, vtP, BK, dp, BK, 1.0f, false);
        } else
#endif
#if defined(ATTN_SDPA_AMX)
        if (amx) {
            if (conv) {
                amx_pairs(kt, BK, Dk, BK, dk32, ktB, BK, NULL);
                amx_pairs(vt, BK, Dv, BK, dv32, vtB, BK, NULL);
            }
            amx_gemm(BQB, BK, dk32, qA, dk32, ktBu, BK, s, BK, false);
            amx_scale(s, BQB * BK, (float)p->scale);
            amx_gemm(BQB, BK, dv32, doA, dv32, vtBu, BK, dp, BK, false);
        } else
#endif
        {
            gemm(mq, BK, Dk, qs, dk, kt, BK, s, BK, false);
            gemm(mq, BK, Dv, dob, dv, vt, BK, dp, BK, false);
        }
        int64_t next = j0 + BK < jmax ? (jmax - j0 - BK < BK ? jmax - j0 - BK : BK) : 0;
        for (int64_t r = 0; r < mq; r++) {
            float *sr = s + r * BK, *dr = dp + r * BK;
            for (int64_t c = r; krecs == NULL && c < next; c += mq) { /* the next tile's rows */
                prefetch_row(&p->k, b, j0 + BK + c, hk, kl);
                prefetch_row(&p->v, b, j0 + BK + c, hk, vl);
            }
            if (r >= nq || lse[r] == -INFINITY) {
                memset(sr, 0, sizeof(float) * BK);
                memset(dr, 0, sizeof(float) * BK);
                if (k_bad) memset(use + r * BK, 0, sizeof(float) * BK);
                continue;
            }
            if (!full) finish_scores(p, b, h, i0 + r, j0, lo[r], hi[r], sr, cap ? cg + r * BK : NULL, 1);
            if (kind == ATTN__BLK_PARTIAL) hide_bits(sr, bits[r]);
            if (k_bad)
                for (int64_t c = 0; c < BK; c++) use[r * BK + c] = sr[c] != -INFINITY ? 1.0f : 0.0f;
            if (drop) drop_factors(p, b, h, i0 + r, j0, BK, f);
            grad_line(sr, dr, &lse[r], &dl[r], 0, drop ? f : NULL, BK);
            if (write_dbias)
                for (int64_t c = 0; c < nk; c++) attn__stf(&p->dbias, attn__off(p->dbias.stride, b, h, i0 + r, j0 + c), dr[c]);
            if (cap) mul_lines(dr, cg + r * BK, BK);
        }
#if defined(ATTN_SDPA_AMX)
        if (amx) { /* a non-finite key's row of K zero, its visible pairs added after */
            for (int64_t c = 0; c < BK; c++) kbad[c] = k_bad && c < nk && !rows_finite(kr + c * dk, dk, 1, Dk);
            amx_rows(dp, BK, nq, BK, dsA, BK, BQB);
            if (conv) amx_pairs(kr, dk, nk, dk, BK, krB, dk, kbad);
            amx_gemm(BQB, dk, BK, dsA, BK, krBu, dk, dqa, dk, true);
        } else
#endif
        if (!k_bad)
            gemm(mq, dk, nk, dp, BK, kr, dk, dqa, dk, true);
        if (k_bad) /* a NaN or Inf in K: the visible keys (of those the tiles left out), in the GEMM's order */
            for (int64_t r = 0; r < nq; r++)
                for (int64_t c = 0; c < nk; c++)
                    if (use[r * BK + c] != 0.0f && (only == NULL || only[c]))
                        for (int64_t x = 0; x < Dk; x++)
                            dqa[r * dk + x] = fmaf(dp[r * BK + c], kr[c * dk + x], dqa[r * dk + x]);
    }
    for (int64_t r = 0; r < nq; r++)
        store_row(&p->dq, attn__off(p->dq.stride, b, i0 + r, h, 0), dqa + r * dk, Dk, (float)p->scale);
}

void KN(dq_block)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta, bool write_dbias,
                  float *ws)
{
    dq_impl(p, b, h, qb, delta, write_dbias, ws, false, false);
}

#if defined(ATTN_SDPA_DP)
void KN(dq_block_dp)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta, bool write_dbias,
                     float *ws)
{
    dq_impl(p, b, h, qb, delta, write_dbias, ws, false, true);
}
#endif

#if defined(ATTN_SDPA_AMX)
void KN(dq_block_amx)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta, bool write_dbias,
                      float *ws)
{
    amx_begin();
    dq_impl(p, b, h, qb, delta, write_dbias, ws, true, false);
    amx_end();
}
#endif

/* ---- decode: a few queries against a long KV cache --------------------------- */

/* The rows of a decode task are the group's query heads times the Sq
 * queries (row r: head hkv * group + r / Sq, query r % Sq), so K and V are
 * read once for all the query heads that share them. */
static int64_t dk8(int64_t d) { return (d + 7) / 8 * 8; }

static bool heads_decode(const attn__sdpa *p, int64_t M); /* KN(decode_heads) takes p */

/* A row's partial before its keys (sdpa_kernels.h): O 0, m -inf, l 0, not seen. */
static void decode_part_init(float *pr, int64_t dv)
{
    memset(pr, 0, sizeof(float) * (size_t)dv);
    pr[dv] = -INFINITY; /* m */
    pr[dv + 1] = 0.0f;  /* l */
    pr[dv + 2] = 0.0f;  /* seen */
}
static int64_t heads_decode_ws(const attn__sdpa *p);

int64_t KN(decode_ws)(const attn__sdpa *p)
{
    int64_t M = attn__decode_rows(p), dv = pad16(p->Dv);
    int64_t one = M * dk8(p->Dk) + BK * dk8(p->Dk) + BK * dv + 2 * M * BK + BK;
    int64_t all = heads_decode(p, M) ? heads_decode_ws(p) : 0; /* KN(decode_heads) */
    return one > all ? one : all;
}

/* S[r][c] = qs_r . kr_c for 4 rows and 2 keys at a time (ld = padded Dk). */
/* Rows prefetched while the dot products run, a pair per key pair: this
 * tile's V rows (P V comes next) and the next tile's K rows (NULL: none). */
typedef struct {
    const char *v, *k;
    int64_t v_ld, k_ld, v_lines, k_lines, n;
} prefetch_plan;

static inline __attribute__((always_inline)) void
dots4(int mr, int64_t nk, int64_t ld, int64_t ldk, const float *qs, const float *kr, float *S,
      const prefetch_plan *pf)
{
    for (int64_t c = 0; c < nk; c += 2) {
        __m256 a0[4], a1[4];
        for (int64_t r = c; pf != NULL && r < c + 2 && r < pf->n; r++) { /* rows may be >= nk */
            for (int64_t x = 0; x < pf->v_lines; x++) _mm_prefetch(pf->v + r * pf->v_ld + 64 * x, _MM_HINT_T1);
            for (int64_t x = 0; x < pf->k_lines; x++) _mm_prefetch(pf->k + r * pf->k_ld + 64 * x, _MM_HINT_T1);
        }
        const float *k0 = kr + c * ldk, *k1 = kr + (c + 1 < nk ? c + 1 : c) * ldk;
        for (int r = 0; r < mr; r++) a0[r] = a1[r] = _mm256_setzero_ps();
        for (int64_t x = 0; x < ld; x += 8) {
            __m256 v0 = _mm256_loadu_ps(k0 + x), v1 = _mm256_loadu_ps(k1 + x);
            for (int r = 0; r < mr; r++) {
                __m256 q = _mm256_loadu_ps(qs + r * ld + x);
                a0[r] = _mm256_fmadd_ps(q, v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(q, v1, a1[r]);
            }
        }
        for (int r = 0; r < mr; r++) {
            S[r * BK + c] = vec8_sum(a0[r]);
            if (c + 1 < nk) S[r * BK + c + 1] = vec8_sum(a1[r]);
        }
    }
}

/* ld: padded Dk of qs (and of K rows when packed); ldk: K's row stride. */
static void dots(int64_t M, int64_t nk, int64_t ld, int64_t ldk, const float *qs, const float *kr, float *S,
                 const prefetch_plan *pf)
{
    for (int64_t r = 0; r < M; r += 4) {
        const prefetch_plan *first = r == 0 ? pf : NULL; /* prefetch on the first pass only */
        switch (M - r < 4 ? M - r : 4) {
        case 4: dots4(4, nk, ld, ldk, qs + r * ld, kr, S + r * BK, first); break;
        case 3: dots4(3, nk, ld, ldk, qs + r * ld, kr, S + r * BK, first); break;
        case 2: dots4(2, nk, ld, ldk, qs + r * ld, kr, S + r * BK, first); break;
        default: dots4(1, nk, ld, ldk, qs + r * ld, kr, S + r * BK, first); break;
        }
    }
}

/* The block mask's kind of keys [j0, j0 + nk) for each decode row of kv
 * head (b, hkv) into kinds[r], and over all rows: EMPTY if every row's is,
 * FULL if every row's is, else PARTIAL (FULL for all without a mask). */
static int decode_tile_kind(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t j0, int64_t nk, int *kinds)
{
    int64_t M = attn__decode_rows(p);
    bool all_full = true, all_empty = true;
    for (int64_t r = 0; r < M; r++) {
        kinds[r] = attn__tile_kind(p, b, hkv * p->group + r / p->Sq, r % p->Sq, 1, j0, nk);
        all_full &= kinds[r] == ATTN__BLK_FULL;
        all_empty &= kinds[r] == ATTN__BLK_EMPTY;
    }
    return all_empty ? ATTN__BLK_EMPTY : all_full ? ATTN__BLK_FULL : ATTN__BLK_PARTIAL;
}

/* The tile a decode task reads after keys [j0, j0 + BK) of kv head hkv
 * (its keys [.., jmax) within split [k0, k1)): the next tile, or after the
 * last the first tile of the next kv head (the caller walks the heads of
 * its split in order), at *nj of head *nh; returns its rows (0: none). */
static int64_t next_tile(const attn__sdpa *p, int64_t hkv, int64_t j0, int64_t jmax, int64_t k0, int64_t k1,
                         int64_t *nj, int64_t *nh)
{
    *nj = j0 + BK;
    *nh = hkv;
    if (*nj < jmax) return jmax - *nj < BK ? jmax - *nj : BK;
    *nh = hkv + 1;
    *nj = k0;
    return *nh < p->Hkv ? (k1 - k0 < BK ? k1 - k0 : BK) : 0;
}

/* ---- decode across the kv heads: the cache read in the order it is stored ---- */

/* In the usual [B, S, H, D] layout the kv heads of a key are adjacent, and
 * reading one head's keys (D elements out of every H D) ran at half the
 * bandwidth of reading the cache in its own order (AMD Zen 4, 2 threads,
 * 512 MiB of float32 at 8 heads of 128: 15 against 30 GB/s). So for the
 * common decode (one query per row: a token against a KV cache; no
 * elementwise score terms, block mask or dropout; Dk = Dv a multiple of
 * 8; K and V rows contiguous, of one dtype) a task takes every kv head of
 * its keys at once and walks them in the order the cache is stored: tile
 * by tile, every head in each, in [B, S, H, D]; head by head otherwise.
 * Per tile and head: the scores of its rows (4 rows x HD_KS keys per
 * call), the online softmax of each row, then P V with the accumulators
 * of 4 rows x HD_NV vectors in registers over the tile's keys; K and V
 * are read in place and converted in registers (a row of 8 mod 16 ends
 * with a half vector on 16 lanes). The memory order comes from
 * prefetching: while a tile's scores compute, the tile's V rows and the
 * next tile's K rows, a few rows per step, in the order they are stored. */
enum {
    HD_KS = VW == 16 ? 4 : 2, /* keys per call of the scores */
    HD_NV = VW == 16 ? 4 : 3  /* vectors per row of a P V chunk */
};

static bool heads_decode(const attn__sdpa *p, int64_t M)
{
    return p->Sq == 1 && !elementwise(p) && p->bm == NULL && p->dropout_p == 0.0 && p->Dk == p->Dv &&
           p->Dk % 8 == 0 && p->k.stride[3] == 1 && p->v.stride[3] == 1 && p->k.dtype == p->v.dtype &&
           M <= 16;
}

static int64_t heads_decode_ws(const attn__sdpa *p)
{
    return p->Hkv * attn__decode_rows(p) * (p->Dk + BK) + 16; /* queries, scores, the touch's sink */
}

/* The vector of a row's elements x .., converted to float32; half: only
 * 8 of them, into the low lanes (the last of a row of 8 mod 16). */
static inline __attribute__((always_inline)) vf hd_load(const char *row, int64_t x, attn_dtype dt, bool half)
{
    if (dt == ATTN_DTYPE_F32) {
        const float *f = (const float *)(const void *)row + x;
        return half ? vload_lo8(f) : vload(f);
    }
    const uint16_t *h = (const uint16_t *)(const void *)row + x;
    if (dt == ATTN_DTYPE_BF16) return half ? vload_bf16_lo8(h) : vload_bf16(h);
    return half ? vload_f16_lo8(h) : vload_f16(h);
}

/* The rows hd_touch would read, prefetched a few at a time while another
 * part of the tile computes. */
typedef struct {
    const char *row;          /* the next row (NULL: none left) */
    const char *first;        /* the first row of its run (a key's heads, or a head's keys) */
    int64_t step, run_step;   /* bytes to the next row of a run, and to the next run */
    int64_t n, runs, i, r;    /* rows per run, runs; the next row's place */
    int64_t bytes;            /* of a row */
} hd_stream;

/* Keys [j0, j0 + nk) of heads [h0, h1) of t (b), rows of `bytes`, in the
 * order they are stored: a key's heads then the next key when a key's
 * heads are adjacent ([B, S, H, D]), else a head's keys then the next. */
static hd_stream hd_stream_of(const attn_tensor *t, int64_t b, int64_t j0, int64_t nk, int64_t h0, int64_t h1,
                              int64_t bytes, int64_t es)
{
    bool keys_outer = t->stride[2] < t->stride[1];
    hd_stream s = {NULL, NULL, 0, 0, 0, 0, 0, 0, bytes};
    if (nk <= 0 || h0 >= h1) return s;
    s.first = s.row = (const char *)t->data + attn__off(t->stride, b, j0, h0, 0) * es;
    s.step = (keys_outer ? t->stride[2] : t->stride[1]) * es;
    s.run_step = (keys_outer ? t->stride[1] : t->stride[2]) * es;
    s.n = keys_outer ? h1 - h0 : nk;
    s.runs = keys_outer ? nk : h1 - h0;
    return s;
}

/* The stream's next row, NULL when none is left. */
static inline const char *hd_stream_row(hd_stream *s)
{
    const char *row = s->row;
    if (row == NULL) return NULL;
    if (++s->i < s->n) {
        s->row += s->step;
    } else if (++s->r < s->runs) {
        s->i = 0;
        s->row = s->first += s->run_step;
    } else {
        s->row = NULL;
    }
    return row;
}

/* The next `rows` rows of the stream prefetched into the L2. */
static inline void hd_stream_next(hd_stream *s, int64_t rows)
{
    for (int64_t n = 0; n < rows; n++) {
        const char *row = hd_stream_row(s);
        if (row == NULL) return;
        for (int64_t l = 0; l < s->bytes; l += 64) _mm_prefetch(row + l, _MM_HINT_T1);
    }
}

/* Every row of a stream read, one load per cache line (the first tile, so
 * that it starts from the caches); the lines' first words or-ed into *sink. */
static void hd_touch(hd_stream s, int *sink)
{
    int acc = 0;
    for (const char *row; (row = hd_stream_row(&s)) != NULL;)
        for (int64_t l = 0; l < s.bytes; l += 64) {
            int x;
            memcpy(&x, row + l, sizeof x);
            acc |= x;
        }
    *sink |= acc;
}

/* S[r * BK + c + t] = q_r . K_t for r < mr (<= 4), t < nt (<= HD_KS): key
 * t's row at k + t k_ld (keys past nt repeat the last). On zmm: sixteen
 * accumulators, four key vectors and a query vector. */
static inline __attribute__((always_inline)) void
hd_scores(int mr, int64_t D, const float *q, const char *k, int64_t k_ld, int nt, attn_dtype dt, float *S,
          int64_t c)
{
    vf a[4][HD_KS];
    const char *kr[HD_KS];
    for (int t = 0; t < HD_KS; t++) kr[t] = k + (t < nt ? t : nt - 1) * k_ld;
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < HD_KS; t++) a[r][t] = vzero();
    int64_t x = 0;
    for (; x + VW <= D; x += VW) {
        vf kv[HD_KS];
        for (int t = 0; t < HD_KS; t++) kv[t] = hd_load(kr[t], x, dt, false);
        for (int r = 0; r < mr; r++) {
            vf qv = vload(q + r * D + x);
            for (int t = 0; t < HD_KS; t++) a[r][t] = vfmadd(qv, kv[t], a[r][t]);
        }
    }
    if (x < D) { /* the last 8 of D = 8 mod 16 (16 lanes): the high lanes add 0 x 0 */
        vf kv[HD_KS];
        for (int t = 0; t < HD_KS; t++) kv[t] = hd_load(kr[t], x, dt, true);
        for (int r = 0; r < mr; r++) {
            vf qv = vload_lo8(q + r * D + x);
            for (int t = 0; t < HD_KS; t++) a[r][t] = vfmadd(qv, kv[t], a[r][t]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float o[4];
        vsum4(a[r][0], a[r][1 % HD_KS], a[r][2 % HD_KS], a[r][3 % HD_KS], o);
        for (int t = 0; t < nt; t++) S[r * BK + c + t] = o[t];
    }
}

/* acc_r[x0 .. x0 + nv VW) += sum_t<nk P[r * BK + t] V_t[x0 ..] for r < mr
 * (<= 4), nv <= HD_NV: V_t's row at v + t v_ld; the accumulators stay in
 * registers over the keys. half: the last vector holds V's last 8 columns
 * (its high lanes add 0 to the accumulators' padding, pad16(Dv)). */
static inline __attribute__((always_inline)) void
hd_pv(int mr, int nv, const float *P, int64_t nk, const char *v, int64_t v_ld, int64_t x0, attn_dtype dt,
      bool half, float *const acc[4])
{
    vf a[4][HD_NV];
    for (int r = 0; r < mr; r++)
        for (int u = 0; u < nv; u++) a[r][u] = vload(acc[r] + x0 + u * VW);
    for (int64_t t = 0; t < nk; t++) {
        const char *row = v + t * v_ld;
        vf vv[HD_NV];
        for (int u = 0; u < nv; u++) vv[u] = hd_load(row, x0 + u * VW, dt, half && u == nv - 1);
        for (int r = 0; r < mr; r++) {
            vf w = vbcast(P + r * BK + t);
            for (int u = 0; u < nv; u++) a[r][u] = vfmadd(w, vv[u], a[r][u]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int u = 0; u < nv; u++) vstore(acc[r] + x0 + u * VW, a[r][u]);
}

static inline __attribute__((always_inline)) void
hd_pv_rows(int mr, int64_t D, const float *P, int64_t nk, const char *v, int64_t v_ld, attn_dtype dt,
           float *const acc[4])
{
    int64_t nvec = (D + VW - 1) / VW;
    for (int64_t x0 = 0; x0 < D; x0 += HD_NV * VW) {
        int64_t left = nvec - x0 / VW;
        bool half = D % VW != 0 && left <= HD_NV;
        switch (left < HD_NV ? left : HD_NV) {
        case 4: hd_pv(mr, HD_NV, P, nk, v, v_ld, x0, dt, half, acc); break;
        case 3: hd_pv(mr, 3, P, nk, v, v_ld, x0, dt, half, acc); break;
        case 2: hd_pv(mr, 2, P, nk, v, v_ld, x0, dt, half, acc); break;
        default: hd_pv(mr, 1, P, nk, v, v_ld, x0, dt, half, acc); break;
        }
    }
}

/* Keys [j0, j0 + nk) of kv heads [h0, h1) of batch b: their scores, the
 * online softmax of their rows, P V. While the scores compute, this tile's
 * V rows and the next tile's K rows (*next) are prefetched, a few rows per
 * step in the order they are stored (one tile ahead measured better than
 * prefetching the next K during P V: AMD Zen 4, [B, H, S, D] float32).
 * qs [Hkv][M][D] the scaled queries, S [Hkv][M][BK], head hkv's partials
 * at part + hkv head_stride. */
static inline __attribute__((always_inline)) void
hd_tile(const attn__sdpa *p, int64_t b, int64_t j0, int64_t nk, int64_t h0, int64_t h1, hd_stream *next,
        const float *qs, float *part, int64_t head_stride, float *S, attn_dtype dt)
{
    int64_t D = p->Dk, dv = pad16(p->Dv), M = attn__decode_rows(p), es = dt == ATTN_DTYPE_F32 ? 4 : 2;
    int64_t k_ld = p->k.stride[1] * es, v_ld = p->v.stride[1] * es;
    hd_stream pfv = hd_stream_of(&p->v, b, j0, nk, h0, h1, D * es, es);
    for (int64_t h = h0; h < h1; h++) {
        const char *k = (const char *)p->k.data + attn__off(p->k.stride, b, j0, h, 0) * es;
        const float *q = qs + h * M * D;
        float *sh = S + h * M * BK;
        for (int64_t c = 0; c < nk; c += HD_KS) {
            int nt = nk - c < HD_KS ? (int)(nk - c) : HD_KS;
            hd_stream_next(&pfv, HD_KS);
            hd_stream_next(next, HD_KS);
            for (int64_t r = 0; r < M; r += 4) {
                switch (M - r < 4 ? M - r : 4) {
                case 4: hd_scores(4, D, q + r * D, k + c * k_ld, k_ld, nt, dt, sh + r * BK, c); break;
                case 3: hd_scores(3, D, q + r * D, k + c * k_ld, k_ld, nt, dt, sh + r * BK, c); break;
                case 2: hd_scores(2, D, q + r * D, k + c * k_ld, k_ld, nt, dt, sh + r * BK, c); break;
                default: hd_scores(1, D, q + r * D, k + c * k_ld, k_ld, nt, dt, sh + r * BK, c); break;
                }
            }
        }
    }
    for (int64_t h = h0; h < h1; h++) {
        const char *v = (const char *)p->v.data + attn__off(p->v.stride, b, j0, h, 0) * es;
        float *ph = part + h * head_stride;
        for (int64_t r = 0; r < M; r++) {
            float *sr = S + (h * M + r) * BK, *pr = ph + r * (dv + 3);
            for (int64_t c = nk; c < BK; c++) sr[c] = -INFINITY;
            if (online_row(p, b, h * p->group + r, 0, j0, nk, sr, &pr[dv], &pr[dv + 1], pr, dv, NULL, NULL, 0, BK, NULL))
                pr[dv + 2] = 1.0f;
        }
        for (int64_t r = 0; r < M; r += 4) {
            float *acc[4];
            for (int64_t u = 0; u < 4; u++) acc[u] = ph + (r + u < M ? r + u : r) * (dv + 3);
            const float *P = S + (h * M + r) * BK;
            switch (M - r < 4 ? M - r : 4) {
            case 4: hd_pv_rows(4, D, P, nk, v, v_ld, dt, acc); break;
            case 3: hd_pv_rows(3, D, P, nk, v, v_ld, dt, acc); break;
            case 2: hd_pv_rows(2, D, P, nk, v, v_ld, dt, acc); break;
            default: hd_pv_rows(1, D, P, nk, v, v_ld, dt, acc); break;
            }
        }
    }
}

/* Keys [jmin, jmax) of every kv head of batch b, in the order the cache is
 * stored: tile by tile, every head in each, when a key's heads are
 * adjacent ([B, S, H, D]); else head by head, each over all its tiles. */
static inline __attribute__((always_inline)) void
decode_heads_dt(const attn__sdpa *p, int64_t b, int64_t jmin, int64_t jmax, const float *qs, float *part,
                int64_t head_stride, float *S, int *sink, attn_dtype dt)
{
    int64_t H = p->Hkv, es = dt == ATTN_DTYPE_F32 ? 4 : 2, bytes = p->Dk * es;
    bool keys_outer = p->k.stride[2] < p->k.stride[1];
    int64_t g = keys_outer ? H : 1; /* heads per tile */
    hd_touch(hd_stream_of(&p->k, b, jmin, jmax - jmin < BK ? jmax - jmin : BK, 0, g, bytes, es), sink);
    for (int64_t h0 = 0; h0 < H; h0 += g)
        for (int64_t j0 = jmin; j0 < jmax; j0 += BK) {
            int64_t j1 = j0 + BK < jmax ? j0 + BK : jmin, n1 = h0 + (j0 + BK < jmax ? 0 : g); /* the next tile */
            hd_stream next = hd_stream_of(&p->k, b, j1, jmax - j1 < BK ? jmax - j1 : BK, n1, n1 + g < H ? n1 + g : H,
                                          bytes, es);
            hd_tile(p, b, j0, jmax - j0 < BK ? jmax - j0 : BK, h0, h0 + g, &next, qs, part, head_stride, S, dt);
        }
}

bool KN(decode_heads)(const attn__sdpa *p, int64_t b, int64_t s, int64_t split, float *part, int64_t head_stride,
                      float *ws)
{
    int64_t M = attn__decode_rows(p);
    if (!heads_decode(p, M)) return false;
    int64_t D = p->Dk, dv = pad16(p->Dv), lo, hi;
    int64_t k0 = s * split, k1 = k0 + split < p->Sk ? k0 + split : p->Sk;
    float *qs = ws, *S = qs + p->Hkv * M * D;
    int *sink = (int *)(void *)(S + p->Hkv * M * BK);
    *sink = 0;
    for (int64_t h = 0; h < p->Hkv; h++)
        for (int64_t r = 0; r < M; r++) {
            decode_part_init(part + h * head_stride + r * (dv + 3), dv);
            pack_rows(&p->q, b, 0, 1, h * p->group + r, D, (float)p->scale, qs + (h * M + r) * D, D, 1);
        }
    attn__key_range(p, b, 0, &lo, &hi); /* one query: every row sees the same keys */
    int64_t jmin = lo > k0 ? lo : k0, jmax = hi < k1 ? hi : k1;
    if (jmin >= jmax) return true;
    switch (p->k.dtype) {
    case ATTN_DTYPE_F16: decode_heads_dt(p, b, jmin, jmax, qs, part, head_stride, S, sink, ATTN_DTYPE_F16); break;
    case ATTN_DTYPE_BF16: decode_heads_dt(p, b, jmin, jmax, qs, part, head_stride, S, sink, ATTN_DTYPE_BF16); break;
    default: decode_heads_dt(p, b, jmin, jmax, qs, part, head_stride, S, sink, ATTN_DTYPE_F32); break;
    }
    return true;
}

/* Split s (keys [s * split, (s + 1) * split)) of kv head (b, hkv): an online
 * softmax over its keys for every row, left unnormalised in `part` (the
 * layout of sdpa_kernels.h: dv = pad16(Dv) = attn__decode_ld). */
void KN(decode_split)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split,
                             float *part, float *ws)
{
    int64_t M = attn__decode_rows(p), Dk = p->Dk, Dv = p->Dv, ld = dk8(Dk), dv = pad16(Dv);
    float *qs = ws, *kr = qs + M * ld, *vt = kr + BK * ld; /* (M, ld), (BK, ld), (BK, dv) */
    float *S = vt + BK * dv, *use = S + M * BK, *f = use + M * BK; /* (M, BK), (M, BK), (BK) */
    int64_t lo[64], hi[64], k0 = s * split, k1 = k0 + split < p->Sk ? k0 + split : p->Sk;
    int64_t jmin = INT64_MAX, jmax = 0;
    int kinds[64];
    bool ew = elementwise(p), drop = p->dropout_p > 0.0;
    /* float32 V rows feed the GEMM in place (half ones are converted) */
    bool v_direct = p->v.dtype == ATTN_DTYPE_F32 && p->v.stride[3] == 1 && Dv % 16 == 0;

    for (int64_t r = 0; r < M; r++) {
        int64_t h = hkv * p->group + r / p->Sq, i = r % p->Sq;
        attn__key_range(p, b, i, &lo[r], &hi[r]);
        if (lo[r] < k0) lo[r] = k0;
        if (hi[r] > k1) hi[r] = k1;
        if (lo[r] < hi[r]) {
            jmin = lo[r] < jmin ? lo[r] : jmin;
            jmax = hi[r] > jmax ? hi[r] : jmax;
        }
        decode_part_init(part + r * (dv + 3), dv);
        pack_rows(&p->q, b, i, 1, h, Dk, (float)p->scale, qs + r * ld, ld, 1);
    }
    for (int64_t j0 = jmin < jmax ? jmin / BK * BK : jmax; j0 < jmax; j0 += BK) {
        int64_t nk = jmax - j0 < BK ? jmax - j0 : BK;
        int kind = decode_tile_kind(p, b, hkv, j0, nk, kinds);
        if (kind == ATTN__BLK_EMPTY) continue;
        attn__tiles_add(1);
        bool full = !ew && nk == BK && kind == ATTN__BLK_FULL;
        for (int64_t r = 0; full && r < M; r++) full = lo[r] <= j0 && hi[r] >= j0 + BK;
        const float *ksrc = kr; /* K rows feed the dot products in place when they can */
        int64_t ldk = ld;
        if (p->k.dtype == ATTN_DTYPE_F32 && p->k.stride[3] == 1 && Dk % 8 == 0) {
            ksrc = (const float *)p->k.data + attn__off(p->k.stride, b, j0, hkv, 0);
            ldk = p->k.stride[1];
        } else {
            pack_rows(&p->k, b, j0, nk, hkv, Dk, 1.0f, kr, ld, nk);
        }
        int64_t ldv;
        const float *vsrc = v_rows(p, v_direct, b, j0, nk, hkv, vt, dv, nk, &ldv);
        bool v_bad = (!full || drop) && !rows_finite(vsrc, ldv, nk, Dv); /* NaN or Inf: the exact path */
        /* K and V of the next tile stream in while this one computes (see
         * prefetch_row for why by hand); after
         * the last tile, the first tile of the next kv head (the caller
         * walks the heads of this split in order). */
        int64_t nj, nh, nn = next_tile(p, hkv, j0, jmax, k0, k1, &nj, &nh);
        prefetch_plan pf;
        pf.n = nn;
        pf.k = (const char *)p->k.data + attn__off(p->k.stride, b, nj, nh, 0) * esize(&p->k);
        pf.v = (const char *)p->v.data + attn__off(p->v.stride, b, nj, nh, 0) * esize(&p->v);
        pf.k_ld = p->k.stride[1] * esize(&p->k);
        pf.v_ld = p->v.stride[1] * esize(&p->v);
        pf.k_lines = row_lines(&p->k, Dk);
        pf.v_lines = row_lines(&p->v, Dv);
        dots(M, nk, ld, ldk, qs, ksrc, S, &pf);
        for (int64_t r = 0; r < M; r++) {
            int64_t h = hkv * p->group + r / p->Sq, i = r % p->Sq;
            float *sr = S + r * BK, *pr = part + r * (dv + 3), *acc = pr;
            for (int64_t c = nk; c < BK; c++) sr[c] = -INFINITY;
            if (!full) finish_scores(p, b, h, i, j0, lo[r], hi[r], sr, NULL, 1);
            if (kinds[r] == ATTN__BLK_EMPTY) {
                for (int64_t c = 0; c < BK; c++) sr[c] = -INFINITY;
            } else if (kinds[r] == ATTN__BLK_PARTIAL) {
                attn__tile_hide(p, b, h, i, j0, nk, sr, 1);
            }
            if (online_row(p, b, h, i, j0, nk, sr, &pr[dv], &pr[dv + 1], acc, dv, v_bad ? use + r * BK : NULL, f, 0, BK, NULL))
                pr[dv + 2] = 1.0f;
        }
        if (!v_bad) { /* all rows at once: the accumulators are rows of part */
            gemm(M, dv, nk, S, BK, vsrc, ldv, part, dv + 3, true);
        } else {
            for (int64_t r = 0; r < M; r++) {
                float *acc = part + r * (dv + 3);
                for (int64_t c = 0; c < nk; c++)
                    if (use[r * BK + c] != 0.0f)
                        for (int64_t x = 0; x < Dv; x++) acc[x] = fmaf(S[r * BK + c], vsrc[c * ldv + x], acc[x]);
            }
        }
    }
}

void KN(exp)(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + VW <= n; i += VW) vstore(y + i, vexp(vload(x + i)));
    for (; i < n; i++) {
        float t[VW] = {x[i]}, u[VW];
        vstore(u, vexp(vload(t)));
        y[i] = u[0];
    }
}
