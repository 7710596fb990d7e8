/* rows.c - the row kernels (kernels/row_kernels.h) for the baseline
 * instruction set: kernels/rows_impl.h compiled with the library's flags. */
#define ATTN_ROWS_KERNELS attn__rows_portable
#define ATTN_ROWS_LABEL "portable"
#include "kernels/rows_impl.h"
