/* attn_rnn.h - compatibility header: the old include path of
 * attn/nn.h, attn/seq2seq.h (see docs/api.md). */
#ifndef ATTN_RNN_COMPAT_H
#define ATTN_RNN_COMPAT_H
#include <attn/nn.h>
#include <attn/seq2seq.h>
#endif
