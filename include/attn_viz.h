/* attn_viz.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/viz.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_VIZ_COMPAT_H
#define ATTN_VIZ_COMPAT_H

#include <attn/viz.h>

#endif
