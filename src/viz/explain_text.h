/* explain_text.h - the text output of the explorer page (explain_text.c):
 * a sink that counts, fills a buffer or writes a file, and the escapes the
 * page needs (HTML text, JSON inside a <script> element, base64 floats).
 * Private to attn_explain; the tests include it. */
#ifndef ATTN_VIZ_EXPLAIN_TEXT_H
#define ATTN_VIZ_EXPLAIN_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Where text goes: len counts every byte; bytes go to buf while they fit
 * in cap (buf NULL: counting only) and to f if it is not NULL (err is set
 * on a write error). */
typedef struct attn__explain_out {
    char *buf;
    size_t cap, len;
    FILE *f;
    int err;
} attn__explain_out;

void attn__explain_raw(attn__explain_out *o, const char *s, size_t n);
void attn__explain_str(attn__explain_out *o, const char *s); /* raw, NUL-terminated */
void attn__explain_int(attn__explain_out *o, int64_t x);

/* s as a JSON string with its quotes, safe inside <script>: '"' and '\'
 * escaped, '<', '>', '&', U+2028, U+2029 and every control character as
 * \uXXXX, invalid UTF-8 bytes as \ufffd; valid UTF-8 otherwise as is. */
void attn__explain_json_string(attn__explain_out *o, const char *s);

/* s as HTML text or attribute value: & < > " ' as character references,
 * control characters other than tab and line feed, and invalid UTF-8
 * bytes, as U+FFFD. */
void attn__explain_html_text(attn__explain_out *o, const char *s);

/* x [n] as one JSON string of base64 (RFC 4648, padded) of the
 * little-endian bytes of each float32. */
void attn__explain_base64_f32(attn__explain_out *o, const float *x, int64_t n);

#endif /* ATTN_VIZ_EXPLAIN_TEXT_H */
