/* json.c - the toolkit's strict RFC 8259 JSON reader and its small writer
 * (contract in json.h).
 *
 * The reader makes two passes with the same code: the first (build false)
 * validates the text and counts what the tree needs (values, object
 * members, string bytes, the deepest pile of pending children), the second
 * (build true) writes the tree into one allocation of exactly that size.
 * Children of an array or object wait on a scratch stack until their
 * container closes, then move next to each other, so every container's
 * items are one contiguous array. Only the second pass can find duplicate
 * keys (it sorts each object's members) and numbers that overflow.
 */
#include "formats/json.h"

#include "core/utf8.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

attn__json_limits attn__json_limits_default(void)
{
    attn__json_limits l = {(size_t)64 << 20, 64, (size_t)4 << 20};
    return l;
}

typedef struct parser {
    const unsigned char *s; /* the text [len] */
    size_t len, pos;
    const char *what;       /* error message prefix */
    attn__json_limits lim;
    const char *point;      /* the locale's decimal point, for strtod */
    size_t point_len;
    bool build;             /* second pass: write the tree */
    /* measured by the first pass (the second recounts the same) */
    size_t n_values;  /* every value, the root included */
    size_t n_members; /* object members: slots of the sorted indexes */
    size_t n_chars;   /* decoded strings and number literals, with NULs */
    size_t stack_len, stack_max; /* pending children of open containers */
    size_t num_max;   /* longest number literal */
    /* second pass: cursors into the tree's block and the scratch memory */
    attn__json_value *nodes;          /* next free child slot */
    const attn__json_value **sorted;  /* next free sorted-index slot */
    char *chars;                      /* next free string byte */
    attn__json_value *stack;          /* [stack_max] pending children */
    char *scratch;                    /* [num_max + point_len + 1] for strtod */
} parser;

static attn_status parse_value(parser *p, int depth, attn__json_value *v);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static attn_status perr(const parser *p, size_t at, const char *fmt, ...)
{
    char msg[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return attn_fail(ATTN_BAD_FILE, "%s: byte %zu: %s", p->what, at, msg);
}

/* "expected <thing>, found <what is at pos>". */
static attn_status expected(const parser *p, const char *thing)
{
    if (p->pos >= p->len) return perr(p, p->pos, "expected %s, found the end of the text", thing);
    unsigned char c = p->s[p->pos];
    if (c > 0x20 && c < 0x7f) return perr(p, p->pos, "expected %s, found '%c'", thing, c);
    return perr(p, p->pos, "expected %s, found byte 0x%02x", thing, c);
}

static int peek(const parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* ---- strings ----------------------------------------------------------------- */

bool attn__json_utf8_ok(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = (size_t)attn__utf8_decode(u + i, len - i, &cp);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

/* Writes code point cp as UTF-8 to dst (if not NULL); returns its length. */
static size_t put_utf8(char *dst, uint32_t cp)
{
    char b[4];
    size_t n = (size_t)attn__utf8_encode(cp, b);
    if (dst != NULL) memcpy(dst, b, n);
    return n;
}

/* Four hex digits at text position at, into *v. */
static bool hex4(const parser *p, size_t at, uint32_t *v)
{
    if (at > p->len || p->len - at < 4) return false;
    uint32_t x = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        uint32_t d;
        if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
        else return false;
        x = x * 16 + d;
    }
    *v = x;
    return true;
}

/* \uXXXX at `at` (p->pos just past the 'u'), pairing surrogates. */
static attn_status parse_u_escape(parser *p, size_t at, uint32_t *cp)
{
    uint32_t hi, lo;
    if (!hex4(p, p->pos, &hi)) return perr(p, at, "expected 4 hex digits after \\u");
    p->pos += 4;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return perr(p, at, "lone low surrogate \\u%04x (not after a high surrogate)", hi);
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return ATTN_OK;
    }
    if (p->len - p->pos >= 6 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u' &&
        hex4(p, p->pos + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
        p->pos += 6;
        *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return ATTN_OK;
    }
    return perr(p, at, "lone high surrogate \\u%04x (not followed by \\udc00-\\udfff)", hi);
}

/* The escape at p->pos (its backslash) into code point *cp. */
static attn_status parse_escape(parser *p, uint32_t *cp)
{
    size_t at = p->pos;
    if (p->len - p->pos < 2) return perr(p, at, "unterminated escape at the end of the text");
    unsigned char e = p->s[p->pos + 1];
    p->pos += 2;
    switch (e) {
    case '"': *cp = '"'; return ATTN_OK;
    case '\\': *cp = '\\'; return ATTN_OK;
    case '/': *cp = '/'; return ATTN_OK;
    case 'b': *cp = '\b'; return ATTN_OK;
    case 'f': *cp = '\f'; return ATTN_OK;
    case 'n': *cp = '\n'; return ATTN_OK;
    case 'r': *cp = '\r'; return ATTN_OK;
    case 't': *cp = '\t'; return ATTN_OK;
    case 'u': return parse_u_escape(p, at, cp);
    default:
        if (e > 0x20 && e < 0x7f) return perr(p, at, "unknown escape '\\%c'", e);
        return perr(p, at, "unknown escape: backslash before byte 0x%02x", e);
    }
}

/* The string whose opening quote is at p->pos: measured (first pass) or
 * decoded into p->chars (second pass, *out and *out_len set). */
static attn_status parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t start = p->pos++;
    char *dst = p->build ? p->chars : NULL;
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->len) return perr(p, start, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') break;
        if (c < 0x20)
            return perr(p, p->pos, "raw control character 0x%02x in a string (must be escaped)", c);
        if (c == '\\') {
            uint32_t cp = 0;
            attn_status st = parse_escape(p, &cp);
            if (st != ATTN_OK) return st;
            n += put_utf8(dst != NULL ? dst + n : NULL, cp);
            continue;
        }
        uint32_t cp;
        size_t k = (size_t)attn__utf8_decode(p->s + p->pos, p->len - p->pos, &cp);
        if (k == 0) return perr(p, p->pos, "invalid UTF-8 byte 0x%02x in a string", c);
        if (dst != NULL) memcpy(dst + n, p->s + p->pos, k);
        n += k;
        p->pos += k;
    }
    p->pos++;
    if (dst != NULL) {
        dst[n] = '\0';
        p->chars += n + 1;
        *out = dst;
    } else {
        p->n_chars += n + 1; /* decoding never grows a string: bounded by len */
        *out = NULL;
    }
    *out_len = n;
    return ATTN_OK;
}

/* ---- numbers and literals ------------------------------------------------------ */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static size_t skip_digits(const parser *p, size_t i)
{
    while (i < p->len && is_digit(p->s[i])) i++;
    return i;
}

/* The literal t[0..n) as a double, through strtod in the current locale. */
static double to_double(const parser *p, const char *t, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.') {
            memcpy(p->scratch + k, p->point, p->point_len);
            k += p->point_len;
        } else {
            p->scratch[k++] = t[i];
        }
    }
    p->scratch[k] = '\0';
    return strtod(p->scratch, NULL);
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at p->pos. */
static attn_status parse_number(parser *p, attn__json_value *v)
{
    size_t start = p->pos, i = start, j;
    if (i < p->len && p->s[i] == '-') i++;
    if (i >= p->len || !is_digit(p->s[i]))
        return perr(p, i, "expected a digit%s", i > start ? " after '-'" : "");
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && is_digit(p->s[i])) return perr(p, i, "leading zeros are not allowed");
    } else {
        i = skip_digits(p, i);
    }
    if (i < p->len && p->s[i] == '.') {
        j = skip_digits(p, i + 1);
        if (j == i + 1) return perr(p, j, "expected a digit after '.'");
        i = j;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        j = skip_digits(p, i);
        if (j == i) return perr(p, j, "expected a digit in the exponent");
        i = j;
    }
    size_t n = i - start;
    p->pos = i;
    v->kind = ATTN__JSON_NUMBER;
    v->len = n;
    if (!p->build) {
        p->n_chars += n + 1;
        if (n > p->num_max) p->num_max = n;
        return ATTN_OK;
    }
    char *t = p->chars;
    memcpy(t, p->s + start, n);
    t[n] = '\0';
    p->chars += n + 1;
    v->str = t;
    v->number = to_double(p, t, n);
    if (!isfinite(v->number))
        return perr(p, start, "number %.40s%s overflows a double", t, n > 40 ? "..." : "");
    return ATTN_OK;
}

static attn_status parse_literal(parser *p, const char *word, attn__json_kind kind,
                                 attn__json_value *v)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return expected(p, "a value (true, false or null?)");
    p->pos += n;
    v->kind = kind;
    return ATTN_OK;
}

/* ---- arrays and objects ------------------------------------------------------- */

static attn_status enter(parser *p, int depth)
{
    if (depth > p->lim.max_depth)
        return perr(p, p->pos, "arrays and objects nested deeper than %d levels", p->lim.max_depth);
    p->pos++;
    return ATTN_OK;
}

static void push(parser *p, const attn__json_value *child)
{
    if (p->build) p->stack[p->stack_len] = *child;
    p->stack_len++;
    if (p->stack_len > p->stack_max) p->stack_max = p->stack_len;
}

/* Moves the count children on top of the stack to their final place. */
static const attn__json_value *pop(parser *p, size_t count)
{
    p->stack_len -= count;
    if (!p->build || count == 0) return NULL;
    attn__json_value *dst = p->nodes;
    memcpy(dst, p->stack + p->stack_len, count * sizeof *dst);
    p->nodes += count;
    return dst;
}

static attn_status parse_array(parser *p, int depth, attn__json_value *v)
{
    attn_status st = enter(p, depth);
    size_t count = 0;
    if (st != ATTN_OK) return st;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
    } else {
        for (;;) {
            attn__json_value child;
            st = parse_value(p, depth + 1, &child);
            if (st != ATTN_OK) return st;
            push(p, &child);
            count++;
            skip_ws(p);
            int c = peek(p);
            p->pos++;
            if (c == ']') break;
            if (c != ',') {
                p->pos--;
                return expected(p, "',' or ']' after an array element");
            }
        }
    }
    v->kind = ATTN__JSON_ARRAY;
    v->items = pop(p, count);
    v->count = count;
    v->sorted = NULL;
    return ATTN_OK;
}

static int by_key(const void *a, const void *b)
{
    const attn__json_value *x = *(const attn__json_value *const *)a;
    const attn__json_value *y = *(const attn__json_value *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0) return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Second pass: the sorted index of object v, and the duplicate-key check. */
static attn_status index_members(parser *p, attn__json_value *v)
{
    const attn__json_value **s = p->sorted;
    p->sorted += v->count;
    for (size_t i = 0; i < v->count; i++) s[i] = &v->items[i];
    if (v->count > 1) qsort(s, v->count, sizeof *s, by_key);
    for (size_t i = 1; i < v->count; i++) {
        if (by_key(&s[i - 1], &s[i]) != 0) continue;
        size_t at = s[i]->offset > s[i - 1]->offset ? s[i]->offset : s[i - 1]->offset;
        int shown = s[i]->key_len > 60 ? 60 : (int)s[i]->key_len;
        return perr(p, at, "duplicate key \"%.*s\"%s", shown, s[i]->key,
                    s[i]->key_len > 60 ? "..." : "");
    }
    v->sorted = s;
    return ATTN_OK;
}

/* One "key": value member into *child. */
static attn_status parse_member(parser *p, int depth, attn__json_value *child)
{
    const char *key;
    size_t key_len, key_at = p->pos;
    attn_status st = parse_string(p, &key, &key_len);
    if (st != ATTN_OK) return st;
    skip_ws(p);
    if (peek(p) != ':') return expected(p, "':' after an object key");
    p->pos++;
    st = parse_value(p, depth + 1, child);
    child->key = key;
    child->key_len = key_len;
    child->offset = key_at;
    return st;
}

static attn_status parse_object(parser *p, int depth, attn__json_value *v)
{
    attn_status st = enter(p, depth);
    size_t count = 0;
    if (st != ATTN_OK) return st;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
    } else {
        for (;;) {
            attn__json_value child;
            skip_ws(p);
            if (peek(p) != '"') return expected(p, count == 0 ? "a string key or '}'" : "a string key");
            st = parse_member(p, depth, &child);
            if (st != ATTN_OK) return st;
            push(p, &child);
            count++;
            p->n_members++;
            skip_ws(p);
            int c = peek(p);
            p->pos++;
            if (c == '}') break;
            if (c != ',') {
                p->pos--;
                return expected(p, "',' or '}' after an object member");
            }
        }
    }
    v->kind = ATTN__JSON_OBJECT;
    v->items = pop(p, count);
    v->count = count;
    v->sorted = NULL;
    return p->build ? index_members(p, v) : ATTN_OK;
}

/* Any value at p->pos (after whitespace); depth is its nesting level. */
static attn_status parse_value(parser *p, int depth, attn__json_value *v)
{
    skip_ws(p);
    memset(v, 0, sizeof *v);
    v->offset = p->pos;
    if (++p->n_values > p->lim.max_values)
        return perr(p, p->pos, "more than %zu values", p->lim.max_values);
    switch (peek(p)) {
    case '{': return parse_object(p, depth, v);
    case '[': return parse_array(p, depth, v);
    case '"': v->kind = ATTN__JSON_STRING; return parse_string(p, &v->str, &v->len);
    case 't': return parse_literal(p, "true", ATTN__JSON_TRUE, v);
    case 'f': return parse_literal(p, "false", ATTN__JSON_FALSE, v);
    case 'n': return parse_literal(p, "null", ATTN__JSON_NULL, v);
    default:
        if (peek(p) == '-' || is_digit(peek(p))) return parse_number(p, v);
        return expected(p, "a value");
    }
}

/* ---- the two passes ---------------------------------------------------------- */

static attn_status run_pass(parser *p, attn__json_value *root)
{
    p->pos = 0;
    p->n_values = p->n_members = p->n_chars = 0;
    p->stack_len = p->stack_max = p->num_max = 0;
    attn_status st = parse_value(p, 1, root);
    if (st != ATTN_OK) return st;
    skip_ws(p);
    if (p->pos != p->len) return expected(p, "the end of the text after the value");
    return ATTN_OK;
}

/* *total += count * size, false on overflow. */
static bool add_bytes(size_t *total, size_t count, size_t size)
{
    if (size != 0 && count > (SIZE_MAX - *total) / size) return false;
    *total += count * size;
    return true;
}

attn_status attn__json_parse(const char *text, size_t len, const attn__json_limits *limits,
                             const char *what, attn__json_value **root)
{
    if (what == NULL) what = "JSON";
    if (root == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'root' is NULL", what);
    if (text == NULL && len > 0) return attn_fail(ATTN_NULL_ARG, "%s: argument 'text' is NULL", what);
    parser p;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)text;
    p.len = len;
    p.what = what;
    p.lim = limits != NULL ? *limits : attn__json_limits_default();
    p.point = localeconv()->decimal_point;
    p.point_len = strlen(p.point);
    if (len > p.lim.max_bytes)
        return attn_fail(ATTN_BAD_FILE, "%s: the text is %zu bytes; the limit is %zu", what, len,
                         p.lim.max_bytes);
    attn__json_value first;
    attn_status st = run_pass(&p, &first);
    if (st != ATTN_OK) return st;

    /* block: the root and every child [n_values], the sorted indexes
     * [n_members], the strings [n_chars]; scratch: the pending-children
     * stack [stack_max] and one number literal for strtod. */
    size_t block_bytes = 0, scratch_bytes = 0;
    bool ok = add_bytes(&block_bytes, p.n_values, sizeof(attn__json_value)) &&
              add_bytes(&block_bytes, p.n_members, sizeof(attn__json_value *)) &&
              add_bytes(&block_bytes, p.n_chars, 1) &&
              add_bytes(&scratch_bytes, p.stack_max, sizeof(attn__json_value)) &&
              add_bytes(&scratch_bytes, p.num_max + p.point_len + 1, 1);
    if (!ok) return attn_fail(ATTN_NO_MEMORY, "%s: the parsed tree would overflow size_t", what);
    attn__json_value *block = attn_alloc(block_bytes);
    attn__json_value *scratch = attn_alloc(scratch_bytes);
    if (block == NULL || scratch == NULL) {
        attn_release(block);
        attn_release(scratch);
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for the parsed tree (%zu + %zu bytes)",
                         what, block_bytes, scratch_bytes);
    }
    p.build = true;
    p.nodes = block + 1;
    p.sorted = (const attn__json_value **)(block + p.n_values);
    p.chars = (char *)(p.sorted + p.n_members);
    p.stack = scratch;
    p.scratch = (char *)(scratch + p.stack_max);
    st = run_pass(&p, block);
    attn_release(scratch);
    if (st != ATTN_OK) {
        attn_release(block);
        return st;
    }
    *root = block;
    return ATTN_OK;
}

void attn__json_free(attn__json_value *root) { attn_release(root); }

/* ---- reading the tree ------------------------------------------------------------ */

const attn__json_value *attn__json_get(const attn__json_value *obj, const char *key)
{
    if (obj == NULL || key == NULL || obj->kind != ATTN__JSON_OBJECT) return NULL;
    attn__json_value probe;
    const attn__json_value *pp = &probe;
    probe.key = key;
    probe.key_len = strlen(key);
    size_t lo = 0, hi = obj->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = by_key(&obj->sorted[mid], &pp);
        if (c == 0) return obj->sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *attn__json_kind_name(attn__json_kind kind)
{
    switch (kind) {
    case ATTN__JSON_NULL: return "null";
    case ATTN__JSON_FALSE: return "false";
    case ATTN__JSON_TRUE: return "true";
    case ATTN__JSON_NUMBER: return "a number";
    case ATTN__JSON_STRING: return "a string";
    case ATTN__JSON_ARRAY: return "an array";
    case ATTN__JSON_OBJECT: return "an object";
    }
    return "an unknown kind";
}

attn_status attn__json_int64(const attn__json_value *v, const char *what, int64_t *out)
{
    if (v == NULL) return attn_fail(ATTN_BAD_FILE, "%s: expected an integer, found nothing", what);
    if (v->kind != ATTN__JSON_NUMBER)
        return attn_fail(ATTN_BAD_FILE, "%s: expected an integer, found %s", what,
                         attn__json_kind_name(v->kind));
    const char *t = v->str, *more = v->len > 40 ? "..." : "";
    bool neg = t[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
    for (size_t i = neg ? 1 : 0; i < v->len; i++) {
        if (!is_digit(t[i]))
            return attn_fail(ATTN_BAD_FILE, "%s: %.40s%s is not an integer", what, t, more);
    }
    for (size_t i = neg ? 1 : 0; i < v->len; i++) {
        uint64_t d = (uint64_t)(t[i] - '0');
        if (acc > (limit - d) / 10)
            return attn_fail(ATTN_BAD_FILE, "%s: %.40s%s is out of the int64 range", what, t, more);
        acc = acc * 10 + d;
    }
    if (!neg) *out = (int64_t)acc;
    else *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    return ATTN_OK;
}

/* ---- writing ---------------------------------------------------------------------- */

void attn__json_out_raw(attn__json_out *o, const char *s, size_t n)
{
    if (o->buf != NULL && o->cap > 0 && o->len < o->cap - 1) {
        size_t room = o->cap - 1 - o->len, k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->buf[o->len + k] = '\0';
    }
    o->len += n;
}

bool attn__json_out_string(attn__json_out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!attn__json_utf8_ok(s, n)) return false;
    attn__json_out_raw(o, "\"", 1);
    size_t run = 0; /* start of the bytes not yet written */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k = 2;
        if (c == '"' || c == '\\') esc[1] = (char)c;
        else if (c == '\b') esc[1] = 'b';
        else if (c == '\f') esc[1] = 'f';
        else if (c == '\n') esc[1] = 'n';
        else if (c == '\r') esc[1] = 'r';
        else if (c == '\t') esc[1] = 't';
        else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        } else {
            continue;
        }
        attn__json_out_raw(o, s + run, i - run);
        attn__json_out_raw(o, esc, k);
        run = i + 1;
    }
    attn__json_out_raw(o, s + run, n - run);
    attn__json_out_raw(o, "\"", 1);
    return true;
}

void attn__json_out_int(attn__json_out *o, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    attn__json_out_raw(o, t, (size_t)n);
}

bool attn__json_out_double(attn__json_out *o, double v)
{
    if (!isfinite(v)) return false;
    char t[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    /* The locale's decimal point (strtod read it back above) becomes '.'. */
    const char *point = localeconv()->decimal_point;
    size_t point_len = strlen(point);
    char *at = point_len > 0 ? strstr(t, point) : NULL;
    if (at != NULL && !(point_len == 1 && point[0] == '.')) {
        *at = '.';
        memmove(at + 1, at + point_len, strlen(at + point_len) + 1);
    }
    attn__json_out_raw(o, t, strlen(t));
    return true;
}
