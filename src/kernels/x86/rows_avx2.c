/* rows_avx2.c - the toolkit's row kernels (kernels/nn_kernels.h) for
 * AVX2+FMA: kernels/rows_impl.h compiled with -mavx2 -mfma and FMA
 * contraction, so the same loops vectorise 8 floats (4 doubles) wide and
 * the polynomials run as FMAs. table.c puts them in the AVX2 table. */
#define ATTN_ROWS_KERNELS attn__rows_avx2
#include "kernels/rows_impl.h"
