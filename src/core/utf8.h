/* utf8.h - UTF-8 decoding and encoding (utf8.c), shared by the JSON reader,
 * the WordPiece tokenizer and the explorer page. Not installed. */
#ifndef ATTN_CORE_UTF8_H
#define ATTN_CORE_UTF8_H

#include "core/check.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes the scalar value at s [n] into *c; returns its byte length, or 0
 * if s does not start with a well-formed UTF-8 sequence (Unicode table 3-7:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
ATTN__SHARED int attn__utf8_decode(const unsigned char *s, size_t n, uint32_t *c);

/* Writes the scalar value c (at most U+10FFFF) as UTF-8 to out [4];
 * returns the byte count. */
ATTN__SHARED int attn__utf8_encode(uint32_t c, char *out);

#endif /* ATTN_CORE_UTF8_H */
