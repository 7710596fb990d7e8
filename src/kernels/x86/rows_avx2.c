/* rows_avx2.c - the row kernels (kernels/row_kernels.h) for AVX2+FMA:
 * kernels/rows_impl.h compiled with -mavx2 -mfma, so the same loops
 * vectorise 8 floats (4 doubles) wide. Run only where kernels/choice.c
 * finds AVX2 and FMA. */
#define ATTN_ROWS_KERNELS attn__rows_avx2
#define ATTN_ROWS_LABEL "avx2"
#include "kernels/rows_impl.h"
