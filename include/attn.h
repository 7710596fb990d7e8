/* attn.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/attn.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_COMPAT_H
#define ATTN_COMPAT_H

#include <attn/attn.h>

#define ATTN_F32 ATTN_DTYPE_F32
#define ATTN_F64 ATTN_DTYPE_F64
#define ATTN_BOOL ATTN_DTYPE_BOOL

#endif
