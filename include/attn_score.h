/* attn_score.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/score.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_SCORE_COMPAT_H
#define ATTN_SCORE_COMPAT_H

#include <attn/score.h>

#define ATTN_SCORE_ADDITIVE ATTN_SCORE_KIND_ADDITIVE
#define ATTN_SCORE_LUONG_GENERAL ATTN_SCORE_KIND_LUONG_GENERAL
#define ATTN_SCORE_LUONG_CONCAT ATTN_SCORE_KIND_LUONG_CONCAT
#define ATTN_SCORE_SCALED_DOT ATTN_SCORE_KIND_SCALED_DOT

#endif
