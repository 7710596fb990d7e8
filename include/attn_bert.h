/* attn_bert.h - compatibility header: the old include path of
 * attn/bert.h (see docs/api.md). */
#ifndef ATTN_BERT_COMPAT_H
#define ATTN_BERT_COMPAT_H
#include <attn/bert.h>
#endif
