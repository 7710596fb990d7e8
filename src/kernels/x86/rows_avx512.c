/* rows_avx512.c - the toolkit's row kernels (kernels/nn_kernels.h) for
 * AVX-512F: kernels/rows_impl.h compiled with the AVX-512 flags, 512-bit
 * vectors preferred and FMA contraction, so the same loops vectorise 16
 * floats (8 doubles) wide. table.c puts them in the AVX-512 table. */
#define ATTN_ROWS_KERNELS attn__rows_avx512
#include "kernels/rows_impl.h"
