/* attn_bert.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/bert.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_BERT_COMPAT_H
#define ATTN_BERT_COMPAT_H

#include <attn/bert.h>

/* attn_bert_config.num_layers and .num_heads are now n_layers and n_heads. */

#endif
