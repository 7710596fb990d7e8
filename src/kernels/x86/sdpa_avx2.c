/* sdpa_avx2.c - the attention kernels on AVX2+FMA (and F16C): the body
 * (sdpa_body.h) with 8-lane vectors and a 6-row register tile (12 of the
 * 16 ymm registers accumulate). Only this file (of the attention kernels)
 * is compiled with -mavx2 -mfma -mf16c. */
#define KN(name) attn__avx2_##name
enum { MR = 6 };
#include "kernels/x86/sdpa_body.h"
