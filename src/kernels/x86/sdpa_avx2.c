/* sdpa_avx2.c - AVX2+FMA float32 kernels of scaled-dot-product attention.
 * Only this file is compiled with -mavx2 -mfma; it runs only when CPUID and
 * XGETBV say so (src/core/cpu.c).
 *
 * Everything is built on one register-blocked micro-kernel, gemm():
 * C[M x N] (+)= A[M x K] B[K x N] with 6 x 16 blocks of C held in 12 ymm
 * accumulators (6 broadcasts of A and 2 loads of B feed 12 FMAs per k).
 * Operands are packed per tile into zero-padded buffers, so any Dk, Dv,
 * sequence length or stride works:
 *   forward   S = Qs Kt, online softmax on S, O += P V;
 *   backward  S = Q Kt, dP = dO Vt, dS = P (dP - delta),
 *             dV += P^T dO, dK += dS^T Q (per key tile), dQ += dS K.
 * Tiles are classified per query block: skipped when no row sees them,
 * "full" (no per-element work) when every row sees all their keys and no
 * element-wise option (boolean mask, bias, ALiBi, soft-capping) is set,
 * otherwise masks are applied per element after the product. */
#include "../sdpa_kernels.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

enum { BQ = ATTN__AVX2_TILE_Q, BK = ATTN__AVX2_TILE_K, MR = 6 };

static int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }

/* ---- the micro-kernel ------------------------------------------------------ */

static inline __attribute__((always_inline)) void
block(int mr, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
      int64_t ldc, bool acc)
{
    __m256 c0[MR], c1[MR];
    for (int i = 0; i < mr; i++) {
        c0[i] = acc ? _mm256_loadu_ps(C + i * ldc) : _mm256_setzero_ps();
        c1[i] = acc ? _mm256_loadu_ps(C + i * ldc + 8) : _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);
        for (int i = 0; i < mr; i++) {
            __m256 a = _mm256_broadcast_ss(A + i * lda + k);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm256_storeu_ps(C + i * ldc, c0[i]);
        _mm256_storeu_ps(C + i * ldc + 8, c1[i]);
    }
}

/* C[M x N] (+)= A[M x K] B[K x N]; N a multiple of 16. */
static void gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, bool acc)
{
    for (int64_t j = 0; j < N; j += 16) {
        int64_t i = 0;
        for (; i + MR <= M; i += MR) block(MR, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc);
        switch (M - i) {
        case 5: block(5, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc); break;
        case 4: block(4, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc); break;
        case 3: block(3, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc); break;
        case 2: block(2, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc); break;
        case 1: block(1, K, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc); break;
        default: break;
        }
    }
}

/* ---- vector exp ------------------------------------------------------------- */

/* e^x for x <= 88: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a
 * degree-6 polynomial (Cephes' expf coefficients), and 2^n built in the
 * exponent field. Max error about 2 ulp (docs/kernels.md). x < -87 gives
 * exactly 0 (true value < 1.7e-38, below FLT_MIN), -inf gives 0, NaN gives
 * NaN. */
static inline __m256 exp256(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.0f), lo = _mm256_set1_ps(-87.0f);
    __m256 xc = _mm256_min_ps(hi, x); /* NaN stays NaN: min returns the 2nd operand */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y); /* x < -87 (and -inf): 0 */
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- packing ---------------------------------------------------------------- */

/* dst[r][x] = scale * t[b, s0 + r, h, x] for r < n, x < d; zeros up to
 * rows x ld (x in [d, ld) and r in [n, rows)). */
static void pack_rows(const attn_tensor *t, int64_t b, int64_t s0, int64_t n, int64_t h, int64_t d,
                      float scale, float *dst, int64_t ld, int64_t rows)
{
    const float *base = (const float *)t->data;
    for (int64_t r = 0; r < rows; r++) {
        float *o = dst + r * ld;
        int64_t x = 0;
        if (r < n) {
            const float *src = base + attn__off(t->stride, b, s0 + r, h, 0);
            if (t->stride[3] == 1)
                for (; x < d; x++) o[x] = scale * src[x];
            else
                for (; x < d; x++) o[x] = scale * src[x * t->stride[3]];
        }
        for (; x < ld; x++) o[x] = 0.0f;
    }
}

/* dst[x][c] = t[b, j0 + c, h, x] for c < n (transposed), zero for c in [n, BK). */
static void pack_cols(const attn_tensor *t, int64_t b, int64_t j0, int64_t n, int64_t h, int64_t d,
                      float *dst)
{
    const float *base = (const float *)t->data;
    for (int64_t c = 0; c < n; c++) {
        const float *src = base + attn__off(t->stride, b, j0 + c, h, 0);
        for (int64_t x = 0; x < d; x++) dst[x * BK + c] = src[x * t->stride[3]];
    }
    for (int64_t x = 0; n < BK && x < d; x++) memset(dst + x * BK + n, 0, sizeof(float) * (size_t)(BK - n));
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

/* ---- masks ------------------------------------------------------------------ */

/* Visible key interval [lo, hi) of row i (lengths, causal, window). */
static void key_range(const attn__sdpa *p, int64_t b, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t lq = attn__qlen(p, b), lk = attn__klen(p, b);
    *lo = 0;
    *hi = i < lq ? lk : 0;
    int64_t ia = p->align == ATTN_ALIGN_BOTTOM_RIGHT ? i + lk - lq : i;
    if (p->causal && ia + 1 < *hi) *hi = ia + 1;
    if (p->window_right >= 0 && ia + p->window_right + 1 < *hi) *hi = ia + p->window_right + 1;
    if (p->window_left >= 0 && ia - p->window_left > *lo) *lo = ia - p->window_left;
}

static bool elementwise(const attn__sdpa *p)
{
    return p->has_mask || p->has_bias || p->alibi != NULL || p->softcap > 0.0;
}

/* Scores of row i for keys j0 .. j0+BK-1 from the scaled dot products in
 * sr: -inf outside [lo, hi) and where the mask or bias masks; soft-cap,
 * bias and ALiBi applied. capgrad (may be NULL) receives d s / d raw. */
static void finish_scores(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0,
                          int64_t lo, int64_t hi, float *sr, float *capgrad)
{
    int64_t c0 = lo - j0 < 0 ? 0 : lo - j0 > BK ? BK : lo - j0;
    int64_t c1 = hi - j0 > BK ? BK : hi - j0 < c0 ? c0 : hi - j0;
    for (int64_t c = 0; c < c0; c++) sr[c] = -INFINITY;
    for (int64_t c = c1; c < BK; c++) sr[c] = -INFINITY;
    if (!elementwise(p)) return;
    int64_t lq = attn__qlen(p, b), lk = attn__klen(p, b);
    int64_t ia = p->align == ATTN_ALIGN_BOTTOM_RIGHT ? i + lk - lq : i;
    for (int64_t c = c0; c < c1; c++) {
        int64_t j = j0 + c;
        if (p->has_mask && p->mask[attn__off(p->mask_stride, b, h, i, j)] == 0) {
            sr[c] = -INFINITY;
            continue;
        }
        float s = sr[c];
        if (p->softcap > 0.0) {
            float cap = (float)p->softcap, t = tanhf(s / cap);
            s = cap * t;
            if (capgrad) capgrad[c] = 1.0f - t * t;
        }
        if (p->has_bias) {
            float bv = ((const float *)p->bias)[attn__off(p->bias_stride, b, h, i, j)];
            if (bv <= (float)ATTN__BIAS_MASK_LIMIT) {
                sr[c] = -INFINITY;
                continue;
            }
            s += bv;
        }
        if (p->alibi != NULL) s -= (float)p->alibi[h] * (float)llabs(ia - j);
        sr[c] = s;
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
        if (c == 0 || (j & 3) == 0) attn__dropout_block(p->seed, p->offset, b * p->Hq + h, i, j >> 2, r);
        f[c] = r[j & 3] >= p->drop_threshold ? keep : 0.0f;
    }
}

/* ---- forward ------------------------------------------------------------------ */

int64_t attn__avx2_forward_ws(const attn__sdpa *p)
{
    int64_t dv = pad16(p->Dv);
    return BQ * p->Dk + p->Dk * BK + BK * dv + 2 * BQ * BK + BQ * dv + BK + 3 * BQ;
}

void attn__avx2_forward_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *ws)
{
    int64_t i0 = qb * BQ, nq = p->Sq - i0 < BQ ? p->Sq - i0 : BQ, hk = h / p->group;
    int64_t Dk = p->Dk, Dv = p->Dv, dv = pad16(Dv), mq = (nq + MR - 1) / MR * MR;
    float *qs = ws;              /* (BQ, Dk) scale * Q */
    float *kt = qs + BQ * Dk;    /* (Dk, BK) K^T */
    float *vt = kt + Dk * BK;    /* (BK, dv) V */
    float *s = vt + BK * dv;     /* (BQ, BK) scores, then P */
    float *use = s + BQ * BK;    /* (BQ, BK) 1 where P_ij * V_j is taken (NaN-safe path) */
    float *acc = use + BQ * BK;  /* (BQ, dv) unnormalised O */
    float *f = acc + BQ * dv;    /* (BK) dropout factors of one row */
    float *m = f + BK, *l = m + BQ, *seen = l + BQ; /* (BQ) */
    int64_t lo[BQ], hi[BQ], jmin = INT64_MAX, jmax = 0;
    bool ew = elementwise(p), drop = p->dropout_p > 0.0;

    for (int64_t r = 0; r < nq; r++) {
        key_range(p, b, i0 + r, &lo[r], &hi[r]);
        if (lo[r] < hi[r]) {
            jmin = lo[r] < jmin ? lo[r] : jmin;
            jmax = hi[r] > jmax ? hi[r] : jmax;
        }
        m[r] = -INFINITY;
        l[r] = 0.0f;
        seen[r] = 0.0f;
    }
    memset(acc, 0, sizeof(float) * (size_t)(BQ * dv));
    if (jmin < jmax) pack_rows(&p->q, b, i0, nq, h, Dk, (float)p->scale, qs, Dk, mq);

    for (int64_t j0 = jmin < jmax ? jmin / BK * BK : jmax; j0 < jmax; j0 += BK) {
        int64_t nk = jmax - j0 < BK ? jmax - j0 : BK;
        bool full = !ew && nk == BK, any = false;
        for (int64_t r = 0; r < nq; r++) {
            full &= lo[r] <= j0 && hi[r] >= j0 + BK;
            any |= lo[r] < j0 + nk && hi[r] > j0 && lo[r] < hi[r];
        }
        if (!any) continue;
        pack_cols(&p->k, b, j0, nk, hk, Dk, kt);
        pack_rows(&p->v, b, j0, nk, hk, Dv, 1.0f, vt, dv, BK);
        bool v_bad = (!full || drop) && !all_finite(vt, nk * dv);
        gemm(mq, BK, Dk, qs, Dk, kt, BK, s, BK, false);

        for (int64_t r = 0; r < nq; r++) {
            float *sr = s + r * BK;
            if (!full) finish_scores(p, b, h, i0 + r, j0, lo[r], hi[r], sr, NULL);
            __m256 vmax = _mm256_set1_ps(-INFINITY), vnan = _mm256_setzero_ps();
            for (int c = 0; c < BK; c += 8) {
                __m256 x = _mm256_loadu_ps(sr + c);
                vmax = _mm256_max_ps(x, vmax); /* NaN scores are left out of the max ... */
                vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
            }
            float tmax = hmax(vmax);
            if (v_bad)
                for (int c = 0; c < BK; c++) use[r * BK + c] = sr[c] != -INFINITY ? 1.0f : 0.0f;
            if (tmax == -INFINITY && _mm256_movemask_ps(vnan) == 0) { /* nothing visible */
                memset(sr, 0, sizeof(float) * BK);
                continue;
            }
            seen[r] = 1.0f;
            float mnew = tmax > m[r] ? tmax : m[r];
            if (mnew == -INFINITY) mnew = 0.0f; /* ... and reach l and O through exp */
            float alpha = expf(m[r] - mnew);
            if (alpha != 1.0f) {
                __m256 va = _mm256_set1_ps(alpha);
                for (int64_t x = 0; x < dv; x += 8)
                    _mm256_storeu_ps(acc + r * dv + x, _mm256_mul_ps(va, _mm256_loadu_ps(acc + r * dv + x)));
            }
            __m256 vm = _mm256_set1_ps(mnew), vsum = _mm256_setzero_ps();
            for (int c = 0; c < BK; c += 8) {
                __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(sr + c), vm));
                vsum = _mm256_add_ps(vsum, e);
                _mm256_storeu_ps(sr + c, e);
            }
            l[r] = l[r] * alpha + hsum(vsum);
            m[r] = mnew;
            if (drop) {
                drop_factors(p, b, h, i0 + r, j0, nk, f);
                for (int64_t c = 0; c < nk; c++) {
                    sr[c] *= f[c];
                    if (v_bad && f[c] == 0.0f) use[r * BK + c] = 0.0f;
                }
            }
        }
        for (int64_t r = nq; r < mq; r++) memset(s + r * BK, 0, sizeof(float) * BK);
        if (!v_bad) {
            gemm(mq, dv, nk, s, BK, vt, dv, acc, dv, true);
        } else {
            /* A NaN or Inf in V: take exactly the visible, kept keys, with
             * the GEMM's fused multiply-adds in its order, so results equal
             * those of a finite V bit for bit. */
            for (int64_t r = 0; r < nq; r++)
                for (int64_t c = 0; c < nk; c++)
                    if (use[r * BK + c] != 0.0f)
                        for (int64_t x = 0; x < Dv; x++)
                            acc[r * dv + x] = fmaf(s[r * BK + c], vt[c * dv + x], acc[r * dv + x]);
        }
    }

    float *o = (float *)p->o.data;
    for (int64_t r = 0; r < nq; r++) {
        int64_t i = i0 + r;
        float inv = seen[r] != 0.0f ? 1.0f / l[r] : 0.0f;
        for (int64_t x = 0; x < Dv; x++)
            o[attn__off(p->o.stride, b, i, h, x)] = seen[r] != 0.0f ? acc[r * dv + x] * inv : 0.0f;
        if (p->lse.data != NULL)
            ((float *)p->lse.data)[attn__off(p->lse.stride, b, h, i, 0)] =
                seen[r] != 0.0f ? m[r] + logf(l[r]) : -INFINITY;
    }
}

bool attn__avx2_available(void)
{
    static atomic_int cached = -1; /* CPUID once */
    int v = atomic_load(&cached);
    if (v < 0) {
        v = attn__cpu_has_avx2_fma() ? 1 : 0;
        atomic_store(&cached, v);
    }
    return v == 1;
}
