/* sdpa_x86.h - the x86 kernels of scaled-dot-product attention on float32,
 * BF16 and F16 tensors, computing in float32, on the problem of
 * kernels/sdpa_kernels.h: one source (sdpa_body.h) built twice, as
 * attn__avx2_* (AVX2+FMA+F16C, sdpa_avx2.c) and attn__avx512_* (AVX-512F
 * with the AVX2 set, sdpa_avx512.c). Only the kernel table
 * (src/kernels/table.c) and the exp and conversion tests call them, and
 * only in a build that compiled them (ATTN_HAVE_AVX2, ATTN_HAVE_AVX512). */
#ifndef ATTN_KERNELS_SDPA_X86_H
#define ATTN_KERNELS_SDPA_X86_H

#include "kernels/sdpa_kernels.h"

/* Query blocks: 144 rows in forward (amortises packing K and V; a
 * sequence of up to 144 tokens is one block per head, so its K and V are
 * converted once, by that block), 48 in backward (less work wasted on
 * blocks that straddle a causal diagonal); key tiles of 64. The same for
 * both widths (multiples of either micro-kernel's rows, 6 and 8, and of
 * 16 lanes). */
enum { ATTN__X86_TILE_Q = 144, ATTN__X86_TILE_Q_BWD = 48, ATTN__X86_TILE_K = 64 };

/* The functions of one build, prefix P (attn__avx2 or attn__avx512). */
#define ATTN__SDPA_X86_DECLARE(P)                                                                         \
    int64_t P##_forward_ws(const attn__sdpa *p);                                                          \
    /* Forward of query rows i0 .. i0+nq-1 (nq <= ATTN__X86_TILE_Q) of head (b, h). */                    \
    void P##_forward_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws); \
    /* K and V in the forward's float32 layouts, once per call (attn__k_forward.pack). */                 \
    int64_t P##_forward_pack_bytes(const attn__sdpa *p);                                                  \
    void P##_forward_pack(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);             \
    int64_t P##_backward_ws(const attn__sdpa *p);                                                         \
    /* delta = rowsum(dO * O) of query block qb (ATTN__X86_TILE_K rows) of head (b, h), into delta [Sq]. */ \
    void P##_delta_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *delta);            \
    /* dK, dV of key tile kb (ATTN__X86_TILE_K keys) of kv head (b, hkv). */                              \
    void P##_dkdv_block(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta,      \
                        float *ws);                                                                       \
    /* Fused backward of a share of kv head (b, hkv) (attn__fused_part): dK, dV and dQ in one walk over   \
     * its key tiles, and a full-shape dbias if asked. Workspace P##_fused_ws. */                         \
    int64_t P##_fused_ws(const attn__sdpa *p);                                                            \
    int64_t P##_fused_sqp(const attn__sdpa *p);                                                           \
    /* The backward's Q and dO converted once per call (attn__k_bwd_pack.q): bytes per query block of     \
     * ATTN__X86_TILE_Q_BWD rows, and block qb of head (b, h). */                                         \
    int64_t P##_bwd_q_bytes(const attn__sdpa *p);                                                         \
    void P##_bwd_q_pack(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst);                \
    void P##_fused_kvhead(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,      \
                          const float *delta, float *ws);                                                 \
    /* dQ (and a full-shape dbias) of query block qb (ATTN__X86_TILE_Q_BWD rows) of head (b, h). */       \
    void P##_dq_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta,          \
                      bool write_dbias, float *ws);                                                       \
    /* The kernels' vector exp, for the accuracy test: y[i] = e^x[i]. */                                  \
    void P##_exp(const float *x, float *y, int64_t n);                                                    \
    /* The kernels' conversions, for the conversion tests, on the first n / 8 * 8 elements: y[i] = x[i]  \
     * rounded to dt (BF16 or F16), to nearest even; and y[i] = x[i] (dt) in float32. */                  \
    void P##_to_half(const float *x, uint16_t *y, int64_t n, attn_dtype dt);                              \
    void P##_from_half(const uint16_t *x, float *y, int64_t n, attn_dtype dt);                            \
    /* Decode (at most 64 rows per kv head; the table takes it up to 16). */                              \
    int64_t P##_decode_ws(const attn__sdpa *p); /* floats per worker */                                   \
    /* Online softmax of every row of kv head (b, hkv) over keys [s * split, (s + 1) * split),            \
     * unnormalised, into part (the decode partials of sdpa_kernels.h); the portable merge combines       \
     * them. */                                                                                           \
    void P##_decode_split(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split,          \
                          float *part, float *ws);                                                        \
    /* The same for every kv head of batch b at once (attn__k_decode.heads), reading the cache in the     \
     * order it is stored; false, with nothing written, for a problem it does not take. */                \
    bool P##_decode_heads(const attn__sdpa *p, int64_t b, int64_t s, int64_t split, float *part,          \
                          int64_t head_stride, float *ws);

ATTN__SDPA_X86_DECLARE(attn__avx2)
ATTN__SDPA_X86_DECLARE(attn__avx512)

/* The AVX-512 build's AMX-BF16 kernels (ATTN_HAVE_AMX), for BF16 tensors:
 * the forward, dK/dV, dQ and fused backward above with their products on
 * tiles (sdpa_body.h); workspaces forward_ws_amx, backward_ws_amx (dK/dV
 * and dQ) and fused_ws_amx. */
int64_t attn__avx512_forward_ws_amx(const attn__sdpa *p);
void attn__avx512_forward_block_amx(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq,
                                    float *ws);
/* The forward's K and V in its tiles' layouts, once per call
 * (attn__k_forward.pack): bytes per key tile, and key tile t of (b, hkv). */
int64_t attn__avx512_forward_pack_bytes_amx(const attn__sdpa *p);
void attn__avx512_forward_pack_amx(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);
int64_t attn__avx512_backward_ws_amx(const attn__sdpa *p);
/* The backward's inputs in its tiles' layouts, once per call
 * (attn__k_bwd_pack): K and V per key tile, Q and dO per query block. */
int64_t attn__avx512_bwd_kv_bytes_amx(const attn__sdpa *p);
void attn__avx512_bwd_kv_pack_amx(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);
int64_t attn__avx512_bwd_q_bytes_amx(const attn__sdpa *p);
void attn__avx512_bwd_q_pack_amx(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst);
void attn__avx512_dkdv_block_amx(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta,
                                 float *ws);
void attn__avx512_dq_block_amx(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta,
                               bool write_dbias, float *ws);
int64_t attn__avx512_fused_ws_amx(const attn__sdpa *p);
void attn__avx512_fused_kvhead_amx(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,
                                   const float *delta, float *ws);

/* The AVX-512 build's AVX512-BF16 kernels (ATTN_HAVE_AVX512BF16), for
 * BF16 tensors: the forward above with S = Q K^T and O += P V (P rounded
 * to bfloat16) on vdpbf16ps (sdpa_body.h); its workspace, and K and V
 * converted once per call into records of forward_pack_bytes_dp bytes per
 * key tile. */
int64_t attn__avx512_forward_ws_dp(const attn__sdpa *p);
/* One vdpbf16ps as the kernels compute it (the instruction, or the pair
 * build's AVX2 form), for the tests: out[16] from acc[16], a[32], b[32]. */
void attn__avx512_dpbf16(const float *acc, const uint16_t *a, const uint16_t *b, float *out);
void attn__avx512_forward_block_dp(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq,
                                   float *ws);
int64_t attn__avx512_forward_pack_bytes_dp(const attn__sdpa *p);
void attn__avx512_forward_pack_dp(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);
/* Its backward: dK/dV, dQ and the fused pass with S, dP, dV and dK on
 * vdpbf16ps (P f and dS rounded to bfloat16 for dV and dK; dQ's product
 * stays float32); workspaces backward_ws_dp (dK/dV and dQ) and
 * fused_ws_dp. */
int64_t attn__avx512_backward_ws_dp(const attn__sdpa *p);
void attn__avx512_dkdv_block_dp(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta,
                                float *ws);
void attn__avx512_dq_block_dp(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta,
                              bool write_dbias, float *ws);
int64_t attn__avx512_fused_ws_dp(const attn__sdpa *p);
/* The backward's Q and dO converted once per call (attn__k_bwd_pack.q). */
int64_t attn__avx512_bwd_q_bytes_dp(const attn__sdpa *p);
void attn__avx512_bwd_q_pack_dp(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst);
void attn__avx512_fused_kvhead_dp(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,
                                  const float *delta, float *ws);

#endif /* ATTN_KERNELS_SDPA_X86_H */
