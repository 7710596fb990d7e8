/* unicode_data.h - private: the character properties the tokenizers need,
 * with the Unicode versions of their references: WordPiece (wordpiece.c;
 * the Rust tokenizers BertNormalizer/BertPreTokenizer) and the byte-level
 * BPE (bpe.c; the Rust tokenizers Digits and ByteLevel pre-tokenizers). See
 * scripts/gen_unicode_data.py, which generates unicode_data.c. Arguments are
 * Unicode scalar values.
 */
#ifndef ATTN_UNICODE_DATA_H
#define ATTN_UNICODE_DATA_H

#include <stdbool.h>
#include <stdint.h>

/* Longest full canonical decomposition and lowercase mapping. */
#define ATTN__UC_MAX_NFD 4
#define ATTN__UC_MAX_LOWER 3

/* Dropped by the clean-up step: U+0000, U+FFFD, categories Cc, Cf and Co of
 * Unicode 8.0 except tab, LF and CR. */
bool attn__uc_is_removed(uint32_t c);
/* White_Space (tab, LF, CR, space, Zs, Zl, Zp, ...). */
bool attn__uc_is_space(uint32_t c);
/* ASCII punctuation or a P* category of Unicode 8.0. */
bool attn__uc_is_punct(uint32_t c);
/* Category Mn of Unicode 8.0 (stripped after NFD). */
bool attn__uc_is_nonspacing(uint32_t c);
/* Canonical combining class of Unicode 9.0 (0 for unassigned). */
int attn__uc_ccc(uint32_t c);
/* Full canonical decomposition of Unicode 9.0 into out; returns its length
 * (1 and out[0] = c when c does not decompose). */
int attn__uc_nfd(uint32_t c, uint32_t out[ATTN__UC_MAX_NFD]);
/* Full lowercase mapping of c alone (no final-sigma context), Unicode 17.0;
 * returns its length (1 and out[0] = c when unchanged). */
int attn__uc_lower(uint32_t c, uint32_t out[ATTN__UC_MAX_LOWER]);

/* Classes of the BPE pre-tokenizer (attn__uc_gpt2_class). */
enum {
    ATTN__UC_GPT2_OTHER = 0,   /* none of the below */
    ATTN__UC_GPT2_LETTER = 1,  /* \p{L}: category L* of Unicode 16.0 */
    ATTN__UC_GPT2_NUMBER = 2,  /* \p{N}: category N* of Unicode 16.0 (also numeric) */
    ATTN__UC_GPT2_NUMERIC = 3  /* numeric (Nd, Nl, No of Unicode 17.0) but not \p{N} */
};
/* The class of c for the BPE pre-tokenizer; whitespace (\s) is
 * attn__uc_is_space, and such code points are OTHER here. */
int attn__uc_gpt2_class(uint32_t c);

#endif /* ATTN_UNICODE_DATA_H */
