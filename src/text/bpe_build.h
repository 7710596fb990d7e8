/* bpe_build.h - private: building a byte-level BPE tokenizer (bpe.c) for
 * its two constructors, attn_bpe_create (from a configuration) and
 * attn_bpe_load_gguf (bpe_gguf.c, from a GGUF file), which differ only in
 * how errors are reported. */
#ifndef ATTN_TEXT_BPE_BUILD_H
#define ATTN_TEXT_BPE_BUILD_H

#include <attn/text.h>

/* How a constructor names things in its messages. */
typedef struct attn__bpe_src {
    const char *prefix;         /* starts every message (the function, and file) */
    attn_status bad;            /* the status of contents that break the rules */
    const char *tokens, *types, *merges; /* names of the arrays */
    const char *special[4];     /* names of the bos, eos, pad and unk ids */
} attn__bpe_src;

/* Checks cfg and builds *out from it (copying everything). */
attn_status attn__bpe_build(const attn__bpe_src *src, const attn_bpe_config *cfg, attn_bpe **out);

#endif /* ATTN_TEXT_BPE_BUILD_H */
