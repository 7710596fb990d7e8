/* explain_text.h - the escapes of the explorer page (explain_text.c): HTML
 * text, JSON inside a <script> element, base64 floats, appended to the
 * JSON writer's byte sink (formats/json.h: it counts, or fills a buffer).
 * Private to attn_explain; the tests include it. */
#ifndef ATTN_VIZ_EXPLAIN_TEXT_H
#define ATTN_VIZ_EXPLAIN_TEXT_H

#include "formats/json.h"

#include <stdint.h>

/* Appends the NUL-terminated s as it is. */
void attn__explain_str(attn__json_out *o, const char *s);

/* s as a JSON string with its quotes, safe inside <script>: '"' and '\'
 * escaped, '<', '>', '&', U+2028, U+2029 and every control character as
 * \uXXXX, invalid UTF-8 bytes as \ufffd; valid UTF-8 otherwise as is. */
void attn__explain_json_string(attn__json_out *o, const char *s);

/* s as HTML text or attribute value: & < > " ' as character references,
 * control characters other than tab and line feed, and invalid UTF-8
 * bytes, as U+FFFD. */
void attn__explain_html_text(attn__json_out *o, const char *s);

/* x [n] as one JSON string of base64 (RFC 4648, padded) of the
 * little-endian bytes of each float32. */
void attn__explain_base64_f32(attn__json_out *o, const float *x, int64_t n);

#endif /* ATTN_VIZ_EXPLAIN_TEXT_H */
