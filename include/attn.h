/* attn.h - compatibility header: the old include path of
 * attn/attn.h (see docs/api.md). */
#ifndef ATTN_COMPAT_H
#define ATTN_COMPAT_H
#include <attn/attn.h>
#endif
