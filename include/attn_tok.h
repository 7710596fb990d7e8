/* attn_tok.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/text.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_TOK_COMPAT_H
#define ATTN_TOK_COMPAT_H

#include <attn/text.h>

#define attn_tok attn_wordpiece
#define attn_tok_load_vocab attn_wordpiece_load
#define attn_tok_load_vocab_memory attn_wordpiece_load_memory
#define attn_tok_free attn_wordpiece_free
#define attn_tok_vocab_size attn_wordpiece_vocab_size
#define attn_tok_token attn_wordpiece_token
#define attn_tok_id attn_wordpiece_id
#define attn_tok_special attn_wordpiece_special
#define attn_tok_encode attn_wordpiece_encode
#define ATTN_TOK_MAX_VOCAB_BYTES ATTN_WORDPIECE_MAX_VOCAB_BYTES
#define ATTN_TOK_MAX_TOKEN_BYTES ATTN_WORDPIECE_MAX_TOKEN_BYTES
#define ATTN_TOK_MAX_WORD_CHARS ATTN_WORDPIECE_MAX_WORD_CHARS

#endif
