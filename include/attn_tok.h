/* attn_tok.h - compatibility header: the old include path of
 * attn/text.h (see docs/api.md). */
#ifndef ATTN_TOK_COMPAT_H
#define ATTN_TOK_COMPAT_H
#include <attn/text.h>
#endif
