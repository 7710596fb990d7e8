/* avx2_absent.c - stands in for sdpa_avx2.c in builds that cannot compile
 * it (non-x86 targets): the AVX2 path reports itself unavailable and is
 * never called. */
#include "kernels/sdpa_kernels.h"

bool attn__avx2_available(void) { return false; }

int64_t attn__avx2_forward_ws(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

void attn__avx2_forward_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *ws)
{
    (void)p, (void)b, (void)h, (void)qb, (void)ws;
}

int64_t attn__avx2_backward_ws(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

void attn__avx2_dkdv_block(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb,
                           const float *delta, float *ws, float *dqt, int64_t sqp)
{
    (void)p, (void)b, (void)hkv, (void)kb, (void)delta, (void)ws, (void)dqt, (void)sqp;
}

int64_t attn__avx2_fused_ws(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

int64_t attn__avx2_fused_sqp(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

void attn__avx2_fused_kvhead(const attn__sdpa *p, int64_t b, int64_t hkv, const float *delta, float *ws)
{
    (void)p, (void)b, (void)hkv, (void)delta, (void)ws;
}

void attn__avx2_dq_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta,
                         bool write_dbias, float *ws)
{
    (void)p, (void)b, (void)h, (void)qb, (void)delta, (void)write_dbias, (void)ws;
}

int64_t attn__avx2_decode_rows(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

int64_t attn__avx2_decode_ws(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

int64_t attn__avx2_decode_partial(const attn__sdpa *p)
{
    (void)p;
    return 0;
}

void attn__avx2_decode_split(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split,
                             float *part, float *ws)
{
    (void)p, (void)b, (void)hkv, (void)s, (void)split, (void)part, (void)ws;
}

void attn__avx2_decode_merge(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t n_splits,
                             const float *parts)
{
    (void)p, (void)b, (void)hkv, (void)n_splits, (void)parts;
}

void attn__avx2_exp(const float *x, float *y, int64_t n)
{
    (void)x, (void)y, (void)n;
}
