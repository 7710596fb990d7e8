/* attn_nn.h - compatibility header: the old include path of
 * attn/nn.h, attn/safetensors.h, attn/transformer.h (see docs/api.md). */
#ifndef ATTN_NN_COMPAT_H
#define ATTN_NN_COMPAT_H
#include <attn/nn.h>
#include <attn/safetensors.h>
#include <attn/transformer.h>
#endif
