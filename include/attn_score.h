/* attn_score.h - compatibility header: the old include path of
 * attn/score.h (see docs/api.md). */
#ifndef ATTN_SCORE_COMPAT_H
#define ATTN_SCORE_COMPAT_H
#include <attn/score.h>
#endif
