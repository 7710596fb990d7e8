/* nn_kernels.h - the kernels behind the toolkit's slots of the kernel table
 * (nn.gemm, nn.layernorm_row, nn.gelu_row, nn.softmax_row, nn.swiglu_row; the slot types
 * and the GEMM driver are in core/toolkit_kernels.h). table.c fills the
 * slots from these: the portable ones first, then those of the chosen
 * instruction set.
 *
 * GEMM micro-kernels, one descriptor per instruction set: portable C 4 x 8
 * (portable/gemm.c), AVX2+FMA 6 x 16 (x86/gemm_avx2.c), AVX-512F 8 x 32
 * (x86/gemm_avx512.c). Row kernels: one source (rows_impl.h) compiled for
 * the baseline (portable/rows.c) and with AVX2+FMA (x86/rows_avx2.c). The
 * double-precision twins the tests hold them against are in tests/kernels. */
#ifndef ATTN_KERNELS_NN_KERNELS_H
#define ATTN_KERNELS_NN_KERNELS_H

#include "core/toolkit_kernels.h"

#include <stdint.h>

extern const attn__gemm_kernel attn__gemm_portable;
#if defined(ATTN_HAVE_AVX2)
extern const attn__gemm_kernel attn__gemm_avx2;
#endif
#if defined(ATTN_HAVE_AVX512)
extern const attn__gemm_kernel attn__gemm_avx512;
#endif
#if defined(ATTN_HAVE_AVX512BF16) && !defined(ATTN_AVX512BF16_EMULATED)
/* bfloat16 products only (micro is NULL): the nn.gemm_bf16 slot */
extern const attn__gemm_kernel attn__gemm_avx512bf16;
#endif
#if defined(ATTN_HAVE_AMX)
/* bfloat16 products only (micro is NULL): the nn.gemm_bf16 slot */
extern const attn__gemm_kernel attn__gemm_amx;
#endif

/* The C packing of a transposed panel chunk (attn__gemm_pack_t_fn with the
 * panel width nr), for kernels without a faster one. */
void attn__gemm_pack_t_generic(int nr, const float *b, int64_t ldb, int w, int64_t kc,
                               float *dst);

/* The row kernels of one build of rows_impl.h. */
typedef struct attn__row_kernels {
    attn__layernorm_row_fn layernorm;
    attn__gelu_row_fn gelu;
    attn__gelu_grad_row_fn gelu_grad;
    attn__softmax_row_fn logsumexp;
    attn__swiglu_row_fn swiglu;
} attn__row_kernels;

extern const attn__row_kernels attn__rows_portable;
#if defined(ATTN_HAVE_AVX2)
extern const attn__row_kernels attn__rows_avx2;
extern const attn__row_kernels attn__rows_avx512;
#endif

#endif /* ATTN_KERNELS_NN_KERNELS_H */
