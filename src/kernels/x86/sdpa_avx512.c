/* sdpa_avx512.c - the attention kernels on AVX-512F: the body
 * (sdpa_body.h) with 16-lane vectors and an 8-row register tile (16 of the
 * 32 zmm registers accumulate 8 x 32 floats). Compiled with the AVX-512
 * flags (and AVX2's: packing and conversions stay 8 lanes wide), or, for
 * the tests on CPUs without AVX-512, with ATTN_VEC_AVX512_PAIR and AVX2
 * only: the same code with each 16-lane vector as two ymm registers,
 * giving the same bits (kernels/x86/vec.h). With ATTN_HAVE_AMX it also
 * holds the AMX-BF16 kernels (the same forward and backward with their
 * products on tiles, kernels/x86/amx.h; compiled with -mamx-tile -mamx-bf16, or with
 * the tiles emulated in C for the tests: ATTN_AMX_EMULATED). With
 * ATTN_HAVE_AVX512BF16 it also holds the BF16 forward and backward with
 * their products (but the backward's dQ) on AVX512-BF16 dot products
 * (compiled with -mavx512bf16, or, in the pair build, vdpbf16ps computed
 * in AVX2 as the SDM defines it: vec.h). */
#if !defined(ATTN_VEC_AVX512_PAIR)
#define ATTN_VEC_AVX512
#endif
#if defined(ATTN_HAVE_AVX512BF16)
#define ATTN_VEC_DPBF16
#define ATTN_SDPA_DP
#endif
#define KN(name) attn__avx512_##name
#if defined(ATTN_HAVE_AMX)
#define ATTN_SDPA_AMX
#endif
enum { MR = 8 };
#include "kernels/x86/sdpa_body.h"
