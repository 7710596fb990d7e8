/* attn_viz.h - compatibility header: the old include path of
 * attn/viz.h (see docs/api.md). */
#ifndef ATTN_VIZ_COMPAT_H
#define ATTN_VIZ_COMPAT_H
#include <attn/viz.h>
#endif
