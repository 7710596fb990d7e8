/* json.h - the toolkit's private JSON reader and writer (RFC 8259, strict),
 * for safetensors headers, checkpoint configs and model/tokenizer files.
 *
 * Reading: attn__json_parse turns text into a read-only tree held in ONE
 * allocation (freed by attn__json_free). It runs twice over the text: the
 * first pass validates everything and measures the tree, the second fills
 * exactly that much memory. Rejected, as ATTN_BAD_FILE with a message
 * "<what>: byte N: <what was expected>":
 *   - anything outside the RFC 8259 grammar (comments, trailing commas,
 *     single quotes, NaN/Infinity, leading zeros, '+1', '.5', '1.', a BOM),
 *     and any text after the value (whitespace aside);
 *   - in strings: invalid UTF-8 (overlong forms, encoded surrogates, code
 *     points above U+10FFFF, truncated sequences), raw control characters
 *     below 0x20, unknown escapes, lone \uD800-\uDFFF surrogates;
 *   - numbers that overflow a double;
 *   - duplicate keys in an object;
 *   - more than limits.max_depth nested arrays/objects, more than
 *     limits.max_values values, more than limits.max_bytes bytes of text.
 * Strings are decoded to UTF-8 and NUL-terminated; len counts their bytes
 * (a string may hold U+0000 from "\u0000").
 *
 * Writing: attn__json_out is a byte sink for "ask for the size, then pass
 * the memory": with buf NULL it only counts, so a caller measures a text,
 * allocates len + 1 bytes and writes it again.
 */
#ifndef ATTN_NN_JSON_H
#define ATTN_NN_JSON_H

#include "core/check.h"

#include <attn/attn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum attn__json_kind {
    ATTN__JSON_NULL = 1,
    ATTN__JSON_FALSE = 2,
    ATTN__JSON_TRUE = 3,
    ATTN__JSON_NUMBER = 4,
    ATTN__JSON_STRING = 5,
    ATTN__JSON_ARRAY = 6,
    ATTN__JSON_OBJECT = 7
} attn__json_kind;

typedef struct attn__json_value attn__json_value;
struct attn__json_value {
    attn__json_kind kind;
    /* Byte offset in the text of the value, or of its key for a member. */
    size_t offset;
    /* Member of an object: its key (decoded, NUL-terminated), else NULL. */
    const char *key;
    size_t key_len;
    union {
        struct {                /* STRING: decoded text; NUMBER: the literal */
            const char *str;    /* NUL-terminated */
            size_t len;         /* bytes of str */
            double number;      /* NUMBER: the value, correctly rounded */
        };
        struct {                /* ARRAY, OBJECT */
            const attn__json_value *items; /* count values; members in order */
            size_t count;
            /* OBJECT: the members sorted by key (bytewise), for lookup. */
            const attn__json_value *const *sorted;
        };
    };
};

typedef struct attn__json_limits {
    size_t max_bytes;  /* longest text accepted */
    int max_depth;     /* arrays/objects nested deeper fail; the root is 1 */
    size_t max_values; /* values in the whole text (members count once) */
} attn__json_limits;

/* 64 MiB of text, depth 64, 4 Mi values. */
ATTN__SHARED attn__json_limits attn__json_limits_default(void);

/* Parses text[0..len) (no NUL needed) into *root; limits NULL means the
 * defaults. `what` prefixes every error message ("attn_safetensors_load: 'f': header").
 * On error *root is untouched and nothing is allocated. */
ATTN__SHARED attn_status attn__json_parse(const char *text, size_t len, const attn__json_limits *limits,
                             const char *what, attn__json_value **root);
/* Releases a tree returned by attn__json_parse (only its root); NULL is fine. */
ATTN__SHARED void attn__json_free(attn__json_value *root);

/* The member of object obj whose key is key (NUL-terminated), or NULL if
 * there is none or obj is not an object. O(log count). A member's index is
 * (result - obj->items). */
ATTN__SHARED const attn__json_value *attn__json_get(const attn__json_value *obj, const char *key);

/* "an object", "an array", "a string", "a number", "true", "false", "null". */
ATTN__SHARED const char *attn__json_kind_name(attn__json_kind kind);

/* An integer literal (no fraction, no exponent) in int64 range into *out.
 * Otherwise ATTN_BAD_FILE with "<what>: ..." saying why (not a number, not
 * an integer, out of range). */
ATTN__SHARED attn_status attn__json_int64(const attn__json_value *v, const char *what, int64_t *out);

/* True if s[0..len) is valid UTF-8 (the rules the parser applies). */
ATTN__SHARED bool attn__json_utf8_ok(const char *s, size_t len);

/* ---- writing ---------------------------------------------------------------- */

typedef struct attn__json_out {
    char *buf;  /* NULL: only count */
    size_t cap; /* bytes of buf */
    size_t len; /* bytes the whole text needs so far (may exceed cap) */
} attn__json_out;
/* After every call, buf holds the first min(len, cap - 1) bytes followed by
 * a NUL (if cap > 0); the text is complete iff len < cap. */

/* Appends n raw bytes (punctuation, already valid JSON). */
ATTN__SHARED void attn__json_out_raw(attn__json_out *o, const char *s, size_t n);
/* Appends s[0..n) as a quoted JSON string: '"', '\\' and control bytes
 * are escaped, other UTF-8 is copied. False (nothing appended) if s is not
 * valid UTF-8. */
ATTN__SHARED bool attn__json_out_string(attn__json_out *o, const char *s, size_t n);
ATTN__SHARED void attn__json_out_int(attn__json_out *o, int64_t v);
/* The shortest of %.15g/%.16g/%.17g that reads back as v, with '.' as the
 * decimal point whatever the locale. False (nothing appended) if v is not
 * finite: JSON has no NaN or Infinity. */
ATTN__SHARED bool attn__json_out_double(attn__json_out *o, double v);

#endif /* ATTN_NN_JSON_H */
