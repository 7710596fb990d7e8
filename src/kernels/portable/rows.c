/* rows.c - the toolkit's row kernels (kernels/nn_kernels.h) for the
 * baseline instruction set: kernels/rows_impl.h compiled with the
 * library's flags. They fill the nn.* row slots of every kernel table. */
#define ATTN_ROWS_KERNELS attn__rows_portable
#include "kernels/rows_impl.h"
