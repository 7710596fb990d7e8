/* vec.h - the float vector the x86 attention kernels compute with
 * (sdpa_body.h), in one of three forms chosen by the including file:
 *
 *   (default)            8 lanes, one AVX2 ymm register; masks are ymm
 *                        lane masks;
 *   ATTN_VEC_AVX512      16 lanes, one AVX-512 zmm register; masks are
 *                        __mmask16;
 *   ATTN_VEC_AVX512_PAIR 16 lanes as two ymm registers, AVX2 only: the
 *                        AVX-512 kernels' own code (their tile shapes,
 *                        tails and lane counts) run on a CPU without
 *                        AVX-512, for the tests. Every operation gives
 *                        the bits the zmm form gives: lane-wise IEEE
 *                        operations, and the reductions (vsum, vsum4, vmax)
 *                        in the same fixed order in both forms.
 *
 * Only what the kernels need: loads (float32, and bfloat16 or float16
 * converted exactly; whole vectors, or 8 values into the low lanes),
 * stores, broadcasts, FMA, min/max, the pieces of the vector exp, lane
 * masks and the reductions (sum, max, four sums at once); with
 * ATTN_VEC_DPBF16 (16-lane forms only) the bfloat16 pair products of
 * AVX512-BF16. */
#ifndef ATTN_KERNELS_X86_VEC_H
#define ATTN_KERNELS_X86_VEC_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define VEC_INLINE static inline __attribute__((always_inline))

/* Eight lanes in a fixed order: (a0+a4, a1+a5, ...) then pairs, then the
 * last two. The 16-lane forms add their two halves first. */
VEC_INLINE float vec8_sum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

VEC_INLINE float vec8_max(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 bfloat16 or float16 values to float32, exactly (a 16-bit shift;
 * F16C's vcvtph2ps). */
VEC_INLINE __m256 vec8_widen_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
VEC_INLINE __m256 vec8_bf16(const uint16_t *p) { return vec8_widen_bf16(_mm_loadu_si128((const __m128i *)(const void *)p)); }
VEC_INLINE __m256 vec8_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)); }

/* out[t] = the sum of the eight lanes of a_t, t < 4, in one fixed order:
 * adjacent pairs, then pairs of those, then the two 128-bit halves. */
VEC_INLINE void vec8_sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3, float *out)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
}

/* Lane t of the result all ones where bit t of bits is set (t < 8). */
VEC_INLINE __m256 vec8_bits(unsigned bits)
{
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i on = _mm256_and_si256(_mm256_set1_epi32((int)(bits & 0xFFu)), sel);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(on, sel));
}

/* 2^n for float lanes holding integers n in [-126, 127]: built in the
 * exponent field. */
VEC_INLINE __m256 vec8_pow2n(__m256 n)
{
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(e);
}

#if defined(ATTN_VEC_AVX512)

enum { VW = 16 };
typedef __m512 vf;
typedef __mmask16 vm;

VEC_INLINE vf vzero(void) { return _mm512_setzero_ps(); }
VEC_INLINE vf vset1(float x) { return _mm512_set1_ps(x); }
VEC_INLINE vf vload(const float *p) { return _mm512_loadu_ps(p); }
VEC_INLINE void vstore(float *p, vf v) { _mm512_storeu_ps(p, v); }
VEC_INLINE vf vbcast(const float *p) { return _mm512_set1_ps(*p); }
VEC_INLINE vf vfmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
VEC_INLINE vf vfnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
VEC_INLINE vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
VEC_INLINE vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
VEC_INLINE vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
/* max/min: the second operand where either is NaN (as vmaxps/vminps) */
VEC_INLINE vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
VEC_INLINE vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
VEC_INLINE vf vround(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
VEC_INLINE vf vpow2n(vf n)
{
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_castsi512_ps(e);
}
VEC_INLINE vm vm_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
VEC_INLINE vm vm_neq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); } /* NaN: true */
VEC_INLINE vm vm_unord(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
VEC_INLINE vm vm_none(void) { return 0; }
VEC_INLINE vm vm_or(vm a, vm b) { return (vm)(a | b); }
VEC_INLINE bool vm_any(vm a) { return a != 0; }
VEC_INLINE vm vm_bits(uint64_t bits) { return (vm)(bits & 0xFFFFu); }
/* v where m, else 0 */
VEC_INLINE vf vkeep(vm m, vf v) { return _mm512_maskz_mov_ps(m, v); }
/* v where m is clear, else 0 */
VEC_INLINE vf vdrop(vm m, vf v) { return _mm512_maskz_mov_ps((vm)~m, v); }
/* b where m, else a */
VEC_INLINE vf vblend(vf a, vf b, vm m) { return _mm512_mask_mov_ps(a, m, b); }
VEC_INLINE __m256 vec16_high(vf v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
VEC_INLINE float vsum(vf v) { return vec8_sum(_mm256_add_ps(_mm512_castps512_ps256(v), vec16_high(v))); }
VEC_INLINE float vmaxr(vf v) { return vec8_max(_mm256_max_ps(_mm512_castps512_ps256(v), vec16_high(v))); }
/* the sums of four vectors at once (the two halves added first, then
 * vec8_sum4's order: not vsum's bits) */
VEC_INLINE void vsum4(vf a0, vf a1, vf a2, vf a3, float *out)
{
    vec8_sum4(_mm256_add_ps(_mm512_castps512_ps256(a0), vec16_high(a0)),
              _mm256_add_ps(_mm512_castps512_ps256(a1), vec16_high(a1)),
              _mm256_add_ps(_mm512_castps512_ps256(a2), vec16_high(a2)),
              _mm256_add_ps(_mm512_castps512_ps256(a3), vec16_high(a3)), out);
}
/* 16 bfloat16 or float16 values to float32, exactly */
VEC_INLINE vf vload_bf16(const uint16_t *p)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
VEC_INLINE vf vload_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
/* 8 values into the low lanes, the high 8 lanes zero (only 8 read) */
VEC_INLINE vf vec16_low8(__m256 v)
{
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_setzero_pd(), _mm256_castps_pd(v), 0));
}
VEC_INLINE vf vload_lo8(const float *p) { return vec16_low8(_mm256_loadu_ps(p)); }
VEC_INLINE vf vload_bf16_lo8(const uint16_t *p) { return vec16_low8(vec8_bf16(p)); }
VEC_INLINE vf vload_f16_lo8(const uint16_t *p) { return vec16_low8(vec8_f16(p)); }

/* Pairs of bfloat16 (AVX512-BF16): vbh holds 32 of them, 16 pairs, one
 * pair per float lane. vdpbf16(acc, a, b) is vdpbf16ps: per lane j, acc +=
 * a[2j+1] b[2j+1], then acc += a[2j] b[2j], each an FMA rounded to
 * nearest even, with subnormal inputs read as zeros and subnormal results
 * written as zeros (the SDM's definition; AMD Zen 4 gives the same bits:
 * docs/kernels.md). */
#if defined(ATTN_VEC_DPBF16)
typedef __m512i vbh;
VEC_INLINE vbh vbh_load(const uint16_t *p) { return _mm512_loadu_si512((const void *)p); }
VEC_INLINE void vbh_store(uint16_t *p, vbh v) { _mm512_storeu_si512((void *)p, v); }
/* the first 16 values of v */
VEC_INLINE void vbh_store16(uint16_t *p, vbh v) { _mm256_storeu_si256((__m256i *)(void *)p, _mm512_castsi512_si256(v)); }
/* the pair at p in every lane */
VEC_INLINE vbh vbh_pair(const uint16_t *p)
{
    uint32_t x;
    memcpy(&x, p, sizeof x);
    return _mm512_set1_epi32((int)x);
}
VEC_INLINE vf vdpbf16(vf acc, vbh a, vbh b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
/* lo's 16 values, then hi's, rounded to bfloat16 (vcvtne2ps2bf16: to
 * nearest even, a NaN quieted, a subnormal input read as a zero) */
VEC_INLINE vbh vbh_round2(vf lo, vf hi) { return (vbh)_mm512_cvtne2ps_pbh(hi, lo); }
/* x rounded to bfloat16 the same way, as floats */
VEC_INLINE vf vround_bf16(vf x)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x)), 16));
}
#endif

#elif defined(ATTN_VEC_AVX512_PAIR)

enum { VW = 16 };
typedef struct {
    __m256 lo, hi;
} vf;
typedef vf vm;

#define VEC_PAIR1(name, op) \
    VEC_INLINE vf name(vf a) { return (vf){op(a.lo), op(a.hi)}; }
#define VEC_PAIR2(name, op) \
    VEC_INLINE vf name(vf a, vf b) { return (vf){op(a.lo, b.lo), op(a.hi, b.hi)}; }

VEC_INLINE vf vzero(void) { return (vf){_mm256_setzero_ps(), _mm256_setzero_ps()}; }
VEC_INLINE vf vset1(float x) { return (vf){_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
VEC_INLINE vf vload(const float *p) { return (vf){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
VEC_INLINE void vstore(float *p, vf v)
{
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
}
VEC_INLINE vf vbcast(const float *p) { return vset1(*p); }
VEC_INLINE vf vfmadd(vf a, vf b, vf c) { return (vf){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
VEC_INLINE vf vfnmadd(vf a, vf b, vf c) { return (vf){_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)}; }
VEC_PAIR2(vmul, _mm256_mul_ps)
VEC_PAIR2(vadd, _mm256_add_ps)
VEC_PAIR2(vsub, _mm256_sub_ps)
VEC_PAIR2(vmax, _mm256_max_ps)
VEC_PAIR2(vmin, _mm256_min_ps)
VEC_INLINE __m256 vec8_round(__m256 x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
VEC_PAIR1(vround, vec8_round)
VEC_PAIR1(vpow2n, vec8_pow2n)
VEC_INLINE __m256 vec8_lt(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
VEC_INLINE __m256 vec8_neq(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
VEC_INLINE __m256 vec8_unord(__m256 a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
VEC_PAIR2(vm_lt, vec8_lt)
VEC_PAIR2(vm_neq, vec8_neq)
VEC_PAIR1(vm_unord, vec8_unord)
VEC_INLINE vm vm_none(void) { return vzero(); }
VEC_PAIR2(vm_or, _mm256_or_ps)
VEC_INLINE bool vm_any(vm a) { return _mm256_movemask_ps(_mm256_or_ps(a.lo, a.hi)) != 0; }
VEC_INLINE vm vm_bits(uint64_t bits) { return (vm){vec8_bits((unsigned)bits), vec8_bits((unsigned)(bits >> 8))}; }
VEC_PAIR2(vkeep, _mm256_and_ps)
VEC_PAIR2(vdrop, _mm256_andnot_ps)
VEC_INLINE vf vblend(vf a, vf b, vm m) { return (vf){_mm256_blendv_ps(a.lo, b.lo, m.lo), _mm256_blendv_ps(a.hi, b.hi, m.hi)}; }
VEC_INLINE float vsum(vf v) { return vec8_sum(_mm256_add_ps(v.lo, v.hi)); }
VEC_INLINE float vmaxr(vf v) { return vec8_max(_mm256_max_ps(v.lo, v.hi)); }
VEC_INLINE void vsum4(vf a0, vf a1, vf a2, vf a3, float *out)
{
    vec8_sum4(_mm256_add_ps(a0.lo, a0.hi), _mm256_add_ps(a1.lo, a1.hi), _mm256_add_ps(a2.lo, a2.hi),
              _mm256_add_ps(a3.lo, a3.hi), out);
}
VEC_INLINE vf vload_bf16(const uint16_t *p) { return (vf){vec8_bf16(p), vec8_bf16(p + 8)}; }
VEC_INLINE vf vload_f16(const uint16_t *p) { return (vf){vec8_f16(p), vec8_f16(p + 8)}; }
VEC_INLINE vf vload_lo8(const float *p) { return (vf){_mm256_loadu_ps(p), _mm256_setzero_ps()}; }
VEC_INLINE vf vload_bf16_lo8(const uint16_t *p) { return (vf){vec8_bf16(p), _mm256_setzero_ps()}; }
VEC_INLINE vf vload_f16_lo8(const uint16_t *p) { return (vf){vec8_f16(p), _mm256_setzero_ps()}; }

#undef VEC_PAIR1
#undef VEC_PAIR2

/* The bfloat16 pairs (see the zmm form) as two ymm halves, and vdpbf16ps
 * computed as the SDM defines it, bit for bit: two FMAs per lane, the odd
 * pair first, subnormal inputs and results flushed to zeros of their sign.
 * One edge may differ: an exact sum in [2^-126 - 2^-150, 2^-126 - 2^-151)
 * rounds here (on the subnormal grid) up to 2^-126 and is kept, where
 * x86's rule (tininess judged on the sum rounded to 24 bits with an
 * unbounded exponent, still below 2^-126) flushes it; the test model
 * shares this, the CPU was not probed there, and no digest's input comes
 * near it. */
#if defined(ATTN_VEC_DPBF16)
typedef struct {
    __m256i lo, hi;
} vbh;
VEC_INLINE vbh vbh_load(const uint16_t *p)
{
    return (vbh){_mm256_loadu_si256((const __m256i *)(const void *)p),
                 _mm256_loadu_si256((const __m256i *)(const void *)(p + 16))};
}
VEC_INLINE void vbh_store(uint16_t *p, vbh v)
{
    _mm256_storeu_si256((__m256i *)(void *)p, v.lo);
    _mm256_storeu_si256((__m256i *)(void *)(p + 16), v.hi);
}
VEC_INLINE void vbh_store16(uint16_t *p, vbh v) { _mm256_storeu_si256((__m256i *)(void *)p, v.lo); }
VEC_INLINE vbh vbh_pair(const uint16_t *p)
{
    uint32_t x;
    memcpy(&x, p, sizeof x);
    __m256i v = _mm256_set1_epi32((int)x);
    return (vbh){v, v};
}
/* x with its subnormal lanes as zeros of their sign */
VEC_INLINE __m256 vec8_flush(__m256 x)
{
    __m256i e = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7F800000));
    __m256 sub = _mm256_castsi256_ps(_mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
    return _mm256_blendv_ps(x, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)), sub);
}
VEC_INLINE __m256 vec8_dpbf16(__m256 acc, __m256i a, __m256i b)
{
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256 a1 = vec8_flush(_mm256_castsi256_ps(_mm256_and_si256(a, high)));
    __m256 b1 = vec8_flush(_mm256_castsi256_ps(_mm256_and_si256(b, high)));
    __m256 a0 = vec8_flush(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)));
    __m256 b0 = vec8_flush(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16)));
    acc = vec8_flush(_mm256_fmadd_ps(a1, b1, vec8_flush(acc)));
    return vec8_flush(_mm256_fmadd_ps(a0, b0, acc));
}
VEC_INLINE vf vdpbf16(vf acc, vbh a, vbh b)
{
    return (vf){vec8_dpbf16(acc.lo, a.lo, b.lo), vec8_dpbf16(acc.hi, a.hi, b.hi)};
}
/* 8 floats to bfloat16 as vcvtne2ps2bf16 rounds them: to nearest even, a
 * NaN quieted (its high half with the quiet bit set), a subnormal input
 * read as a zero of its sign */
VEC_INLINE __m128i vec8_round_bf16(__m256 x)
{
    __m256i u = _mm256_castps_si256(vec8_flush(x));
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd)), 16);
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, q, _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
}
VEC_INLINE vbh vbh_round2(vf lo, vf hi)
{
    return (vbh){_mm256_set_m128i(vec8_round_bf16(lo.hi), vec8_round_bf16(lo.lo)),
                 _mm256_set_m128i(vec8_round_bf16(hi.hi), vec8_round_bf16(hi.lo))};
}
VEC_INLINE vf vround_bf16(vf x)
{
    return (vf){vec8_widen_bf16(vec8_round_bf16(x.lo)), vec8_widen_bf16(vec8_round_bf16(x.hi))};
}
#endif

#else /* AVX2 */

enum { VW = 8 };
typedef __m256 vf;
typedef __m256 vm;

VEC_INLINE vf vzero(void) { return _mm256_setzero_ps(); }
VEC_INLINE vf vset1(float x) { return _mm256_set1_ps(x); }
VEC_INLINE vf vload(const float *p) { return _mm256_loadu_ps(p); }
VEC_INLINE void vstore(float *p, vf v) { _mm256_storeu_ps(p, v); }
VEC_INLINE vf vbcast(const float *p) { return _mm256_broadcast_ss(p); }
VEC_INLINE vf vfmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
VEC_INLINE vf vfnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
VEC_INLINE vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
VEC_INLINE vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
VEC_INLINE vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
VEC_INLINE vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
VEC_INLINE vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
VEC_INLINE vf vround(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
VEC_INLINE vf vpow2n(vf n) { return vec8_pow2n(n); }
VEC_INLINE vm vm_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
VEC_INLINE vm vm_neq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
VEC_INLINE vm vm_unord(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
VEC_INLINE vm vm_none(void) { return _mm256_setzero_ps(); }
VEC_INLINE vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
VEC_INLINE bool vm_any(vm a) { return _mm256_movemask_ps(a) != 0; }
VEC_INLINE vm vm_bits(uint64_t bits) { return vec8_bits((unsigned)bits); }
VEC_INLINE vf vkeep(vm m, vf v) { return _mm256_and_ps(m, v); }
VEC_INLINE vf vdrop(vm m, vf v) { return _mm256_andnot_ps(m, v); }
VEC_INLINE vf vblend(vf a, vf b, vm m) { return _mm256_blendv_ps(a, b, m); }
VEC_INLINE float vsum(vf v) { return vec8_sum(v); }
VEC_INLINE float vmaxr(vf v) { return vec8_max(v); }
VEC_INLINE void vsum4(vf a0, vf a1, vf a2, vf a3, float *out) { vec8_sum4(a0, a1, a2, a3, out); }
VEC_INLINE vf vload_bf16(const uint16_t *p) { return vec8_bf16(p); }
VEC_INLINE vf vload_f16(const uint16_t *p) { return vec8_f16(p); }
/* (8 lanes: the whole vector) */
VEC_INLINE vf vload_lo8(const float *p) { return vload(p); }
VEC_INLINE vf vload_bf16_lo8(const uint16_t *p) { return vload_bf16(p); }
VEC_INLINE vf vload_f16_lo8(const uint16_t *p) { return vload_f16(p); }

#endif

#endif /* ATTN_KERNELS_X86_VEC_H */
