/* test_json.c - the private JSON reader and writer (src/formats/json.h): tables
 * of valid texts with their canonical form, of invalid texts with the
 * exact byte offset and reason, numbers against the compiler's own
 * conversion of the same literals, int64 extraction, depth and size limits,
 * key lookup in a large object, the UTF-8 rule against an independent
 * decoder over every 1-3 byte sequence, the writer, and out-of-memory
 * injection. */
#include "nn_test.h"

#include "formats/json.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static attn_status parse_n(const char *text, size_t len, attn__json_value **root)
{
    return attn__json_parse(text, len, NULL, "t", root);
}

/* Compact re-serialisation of a tree, through the writer. */
static void dump(attn__json_out *o, const attn__json_value *v)
{
    switch (v->kind) {
    case ATTN__JSON_NULL: attn__json_out_raw(o, "null", 4); break;
    case ATTN__JSON_TRUE: attn__json_out_raw(o, "true", 4); break;
    case ATTN__JSON_FALSE: attn__json_out_raw(o, "false", 5); break;
    case ATTN__JSON_NUMBER: attn__json_out_raw(o, v->str, v->len); break;
    case ATTN__JSON_STRING: attn__json_out_string(o, v->str, v->len); break;
    case ATTN__JSON_ARRAY:
    case ATTN__JSON_OBJECT:
        attn__json_out_raw(o, v->kind == ATTN__JSON_ARRAY ? "[" : "{", 1);
        for (size_t i = 0; i < v->count; i++) {
            if (i > 0) attn__json_out_raw(o, ",", 1);
            if (v->kind == ATTN__JSON_OBJECT) {
                attn__json_out_string(o, v->items[i].key, v->items[i].key_len);
                attn__json_out_raw(o, ":", 1);
            }
            dump(o, &v->items[i]);
        }
        attn__json_out_raw(o, v->kind == ATTN__JSON_ARRAY ? "]" : "}", 1);
        break;
    }
}

/* ---- valid texts -------------------------------------------------------------- */

T_TEST(json_valid_table)
{
    static const struct {
        const char *in, *canon;
    } cases[] = {
        {"[]", "[]"},
        {" \t\r\n{}\n ", "{}"},
        {"0", "0"},
        {"true", "true"},
        {" null ", "null"},
        {"\"x\"", "\"x\""},
        {"{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
         "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"},
        {"[ 1 , -0 ,0.5, 1e10,1E-5,-1.25e+3 ]", "[1,-0,0.5,1e10,1E-5,-1.25e+3]"},
        {"{ \"b\" : 2 , \"a\" : 1 }", "{\"b\":2,\"a\":1}"}, /* order kept */
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\\"\\\\/\\b\\f\\n\\r\\t\""},
        {"\"\\u00e9\\u20AC\\ud83d\\ude00\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {"\"\\uDBFF\\uDFFF\\uD800\\uDC00\"", "\"\xf4\x8f\xbf\xbf\xf0\x90\x80\x80\""},
        {"\"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
         "\"A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\""},
        {"\"\\u001f\\u0001\"", "\"\\u001f\\u0001\""},
        {"{\"\":0}", "{\"\":0}"},
        {"[[[]],[{}]]", "[[[]],[{}]]"},
        {"{\"a\\u0000b\":1,\"a\":2}", "{\"a\\u0000b\":1,\"a\":2}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn__json_value *root = NULL;
        T_EQ_STATUS(parse_n(cases[i].in, strlen(cases[i].in), &root), ATTN_OK);
        if (root == NULL) continue;
        char buf[256];
        attn__json_out o = {buf, sizeof buf, 0};
        dump(&o, root);
        T_CHECK(o.len < o.cap);
        if (strcmp(buf, cases[i].canon) != 0)
            t_fail(__FILE__, __LINE__, "case %zu: canonical form %s, want %s", i, buf,
                   cases[i].canon);
        attn__json_free(root);
    }
}

T_TEST(json_decoded_strings_and_offsets)
{
    attn__json_value *root = NULL;
    const char *text = "{\"ab\": [10, \"x\\u0000y\"], \"k\": \"\\ud83d\\ude00\"}";
    T_EQ_STATUS(parse_n(text, strlen(text), &root), ATTN_OK);
    if (root == NULL) return;
    T_EQ_INT(root->kind, ATTN__JSON_OBJECT);
    T_EQ_INT(root->count, 2);
    T_EQ_INT(root->offset, 0);
    const attn__json_value *ab = &root->items[0], *k = &root->items[1];
    T_EQ_INT(ab->offset, 1); /* a member's offset is its key's */
    T_CHECK(strcmp(ab->key, "ab") == 0);
    T_EQ_INT(ab->count, 2);
    T_EQ_INT(ab->items[0].offset, 8);
    T_EQ_INT(ab->items[1].offset, 12);
    T_EQ_INT(ab->items[1].len, 3);
    T_CHECK(memcmp(ab->items[1].str, "x\0y", 4) == 0);
    T_EQ_INT(k->len, 4);
    T_CHECK(memcmp(k->str, "\xf0\x9f\x98\x80", 5) == 0);
    T_CHECK(attn__json_get(root, "k") == k);
    T_CHECK(attn__json_get(ab, "x") == NULL); /* not an object */
    attn__json_free(root);

    /* text need not be NUL-terminated: only len bytes are read */
    T_EQ_STATUS(parse_n("[1,2]xyz", 5, &root), ATTN_OK);
    if (root != NULL) T_EQ_INT(root->count, 2);
    attn__json_free(root);
    T_EQ_STATUS(parse_n(NULL, 0, &root), ATTN_BAD_FILE);
    T_EQ_STATUS(parse_n(NULL, 1, &root), ATTN_NULL_ARG);
    T_EQ_STATUS(parse_n("1", 1, NULL), ATTN_NULL_ARG);
}

/* ---- invalid texts ------------------------------------------------------------ */

T_TEST(json_invalid_table)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen(in) */
        const char *msg;
    } cases[] = {
        {"", 0, "t: byte 0: expected a value, found the end of the text"},
        {"   ", 0, "byte 3: expected a value, found the end"},
        {"[1,]", 0, "byte 3: expected a value, found ']'"},
        {"{\"a\":1,}", 0, "byte 7: expected a string key, found '}'"},
        {"{'a':1}", 0, "byte 1: expected a string key or '}', found '''"},
        {"[1 2]", 0, "byte 3: expected ',' or ']' after an array element, found '2'"},
        {"{\"a\" 1}", 0, "byte 5: expected ':' after an object key, found '1'"},
        {"{\"a\":1 \"b\":2}", 0, "byte 7: expected ',' or '}' after an object member"},
        {"[1] x", 0, "byte 4: expected the end of the text after the value, found 'x'"},
        {"[1]\0", 4, "byte 3: expected the end of the text after the value, found byte 0x00"},
        {"[1,2", 0, "byte 4: expected ',' or ']' after an array element, found the end"},
        {"{\"a\"", 0, "byte 4: expected ':' after an object key, found the end"},
        {"01", 0, "byte 1: leading zeros are not allowed"},
        {"-012", 0, "byte 2: leading zeros are not allowed"},
        {"1.", 0, "byte 2: expected a digit after '.'"},
        {"1.e5", 0, "byte 2: expected a digit after '.'"},
        {".5", 0, "byte 0: expected a value, found '.'"},
        {"+1", 0, "byte 0: expected a value, found '+'"},
        {"-", 0, "byte 1: expected a digit after '-'"},
        {"-Infinity", 0, "byte 1: expected a digit after '-'"},
        {"1e", 0, "byte 2: expected a digit in the exponent"},
        {"1e+", 0, "byte 3: expected a digit in the exponent"},
        {"0x10", 0, "byte 1: expected the end of the text after the value, found 'x'"},
        {"NaN", 0, "byte 0: expected a value, found 'N'"},
        {"Infinity", 0, "byte 0: expected a value, found 'I'"},
        {"tru", 0, "byte 0: expected a value (true, false or null?)"},
        {"nulL", 0, "byte 0: expected a value (true, false or null?)"},
        {"[1e309]", 0, "byte 1: number 1e309 overflows a double"},
        {"-1e400", 0, "byte 0: number -1e400 overflows a double"},
        {"\"abc", 0, "byte 0: unterminated string"},
        {"\"ab\\", 0, "byte 3: unterminated escape"},
        {"\"\\x\"", 0, "byte 1: unknown escape '\\x'"},
        {"\"\\'\"", 0, "byte 1: unknown escape '\\''"},
        {"\"\\u12\"", 0, "byte 1: expected 4 hex digits after \\u"},
        {"\"\\u12G4\"", 0, "byte 1: expected 4 hex digits after \\u"},
        {"\"\\ud800\"", 0, "byte 1: lone high surrogate \\ud800"},
        {"\"\\ud800\\u0041\"", 0, "byte 1: lone high surrogate \\ud800"},
        {"\"\\ud800\\ud800\"", 0, "byte 1: lone high surrogate"},
        {"\"x\\udc00\"", 0, "byte 2: lone low surrogate \\udc00"},
        {"\"a\tb\"", 0, "byte 2: raw control character 0x09"},
        {"\"\x01\"", 0, "byte 1: raw control character 0x01"},
        {"[\"\n\"]", 0, "byte 2: raw control character 0x0a"},
        {"\"\xc0\x80\"", 0, "byte 1: invalid UTF-8 byte 0xc0"},
        {"\"\xc1\xbf\"", 0, "byte 1: invalid UTF-8 byte 0xc1"},
        {"\"\xe0\x9f\xbf\"", 0, "byte 1: invalid UTF-8 byte 0xe0"},
        {"\"\xed\xa0\x80\"", 0, "byte 1: invalid UTF-8 byte 0xed"},
        {"\"\xf0\x8f\xbf\xbf\"", 0, "byte 1: invalid UTF-8 byte 0xf0"},
        {"\"\xf4\x90\x80\x80\"", 0, "byte 1: invalid UTF-8 byte 0xf4"},
        {"\"ab\xe2\x82\"", 0, "byte 3: invalid UTF-8 byte 0xe2"},
        {"\"\x80\"", 0, "byte 1: invalid UTF-8 byte 0x80"},
        {"\"\xff\"", 0, "byte 1: invalid UTF-8 byte 0xff"},
        {"\"\xf0\x9f\x98", 0, "byte 1: invalid UTF-8 byte 0xf0"},
        {"\xef\xbb\xbf[]", 0, "byte 0: expected a value, found byte 0xef"},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, "byte 13: duplicate key \"a\""},
        {"{\"k\":{\"x\":1,\"x\":1}}", 0, "byte 12: duplicate key \"x\""},
        {"/* c */ 1", 0, "byte 0: expected a value, found '/'"},
        {"[1]]", 0, "byte 3: expected the end of the text after the value, found ']'"},
        {"{\"a\":1}}", 0, "byte 7: expected the end of the text"},
        {"{1:2}", 0, "byte 1: expected a string key or '}', found '1'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn__json_value *root = NULL;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        attn_status st = parse_n(cases[i].in, len, &root);
        t_checks++;
        if (st != ATTN_BAD_FILE || root != NULL || strstr(attn_last_error(), cases[i].msg) == NULL)
            t_fail(__FILE__, __LINE__, "case %zu (%s): got %s \"%s\", want ATTN_BAD_FILE \"%s\"", i,
                   cases[i].in, attn_status_name(st), attn_last_error(), cases[i].msg);
    }
}

/* ---- numbers ------------------------------------------------------------------- */

T_TEST(json_numbers_match_the_compiler)
{
    /* The compiler's conversion of the same literal is the independent oracle. */
    static const struct {
        const char *in;
        double want;
    } cases[] = {
        {"0.1", 0.1},
        {"-2.5e-3", -2.5e-3},
        {"2.2250738585072011e-308", 2.2250738585072011e-308},
        {"4.9406564584124654e-324", 4.9406564584124654e-324},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"123456789012345678901234567890", 123456789012345678901234567890.0},
        {"9007199254740993", 9007199254740993.0},
        {"0.30000000000000004", 0.30000000000000004},
        {"1E+2", 1e2},
        {"1e-400", 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn__json_value *root = NULL;
        T_EQ_STATUS(parse_n(cases[i].in, strlen(cases[i].in), &root), ATTN_OK);
        if (root == NULL) continue;
        T_EQ_INT(root->kind, ATTN__JSON_NUMBER);
        T_CHECK(memcmp(&root->number, &cases[i].want, sizeof(double)) == 0);
        T_CHECK(strcmp(root->str, cases[i].in) == 0);
        attn__json_free(root);
    }
    attn__json_value *root = NULL;
    T_EQ_STATUS(parse_n("-0", 2, &root), ATTN_OK);
    if (root != NULL) T_CHECK(root->number == 0.0 && signbit(root->number));
    attn__json_free(root);
}

T_TEST(json_int64_extraction)
{
    static const struct {
        const char *in;
        attn_status st;
        int64_t want;
        const char *msg;
    } cases[] = {
        {"0", ATTN_OK, 0, NULL},
        {"-0", ATTN_OK, 0, NULL},
        {"42", ATTN_OK, 42, NULL},
        {"9223372036854775807", ATTN_OK, INT64_MAX, NULL},
        {"-9223372036854775808", ATTN_OK, INT64_MIN, NULL},
        {"9223372036854775808", ATTN_BAD_FILE, 0, "w: 9223372036854775808 is out of the int64 range"},
        {"-9223372036854775809", ATTN_BAD_FILE, 0, "is out of the int64 range"},
        {"18446744073709551616", ATTN_BAD_FILE, 0, "is out of the int64 range"},
        {"1.0", ATTN_BAD_FILE, 0, "w: 1.0 is not an integer"},
        {"1e2", ATTN_BAD_FILE, 0, "w: 1e2 is not an integer"},
        {"-5E0", ATTN_BAD_FILE, 0, "is not an integer"},
        {"\"5\"", ATTN_BAD_FILE, 0, "w: expected an integer, found a string"},
        {"true", ATTN_BAD_FILE, 0, "w: expected an integer, found true"},
        {"[1]", ATTN_BAD_FILE, 0, "w: expected an integer, found an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn__json_value *root = NULL;
        T_EQ_STATUS(parse_n(cases[i].in, strlen(cases[i].in), &root), ATTN_OK);
        if (root == NULL) continue;
        int64_t got = -7;
        T_EQ_STATUS(attn__json_int64(root, "w", &got), cases[i].st);
        if (cases[i].st == ATTN_OK) T_EQ_INT(got, cases[i].want);
        else T_EQ_INT(got, -7); /* untouched on error */
        if (cases[i].msg != NULL) T_CHECK(strstr(attn_last_error(), cases[i].msg) != NULL);
        attn__json_free(root);
    }
    T_EQ_STATUS(attn__json_int64(NULL, "w", &(int64_t){0}), ATTN_BAD_FILE);
}

/* ---- limits ------------------------------------------------------------------------ */

T_TEST(json_depth_and_size_limits)
{
    /* arrays only: [[[...]]] */
    char deep[200];
    for (int depth = 63; depth <= 66; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        attn__json_value *root = NULL;
        attn_status st = parse_n(deep, 2 * (size_t)depth, &root);
        T_EQ_STATUS(st, depth <= 64 ? ATTN_OK : ATTN_BAD_FILE);
        if (depth > 64) T_CHECK(strstr(attn_last_error(), "byte 64: arrays and objects nested deeper than 64 levels") != NULL);
        attn__json_free(root);
    }
    /* objects: {"a":{"a":...1}} 65 deep, accepted once the limit allows it */
    char obj[1024] = "";
    for (int i = 0; i < 65; i++) strcat(obj, "{\"a\":");
    strcat(obj, "1");
    for (int i = 0; i < 65; i++) strcat(obj, "}");
    attn__json_value *root = NULL;
    T_EQ_STATUS(parse_n(obj, strlen(obj), &root), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "nested deeper than 64") != NULL);
    attn__json_limits lim = attn__json_limits_default();
    lim.max_depth = 65;
    T_EQ_STATUS(attn__json_parse(obj, strlen(obj), &lim, "t", &root), ATTN_OK);
    attn__json_free(root);

    lim = attn__json_limits_default();
    lim.max_values = 3;
    T_EQ_STATUS(attn__json_parse("[1,2]", 5, &lim, "t", &root), ATTN_OK);
    attn__json_free(root);
    T_EQ_STATUS(attn__json_parse("[1,2,3]", 7, &lim, "t", &root), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "byte 5: more than 3 values") != NULL);
    T_EQ_STATUS(attn__json_parse("{\"a\":1,\"b\":2}", 13, &lim, "t", &root), ATTN_OK);
    attn__json_free(root);

    lim = attn__json_limits_default();
    lim.max_bytes = 4;
    T_EQ_STATUS(attn__json_parse("[1,2]", 5, &lim, "t", &root), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "t: the text is 5 bytes; the limit is 4") != NULL);
    T_EQ_STATUS(attn__json_parse("[12]", 4, &lim, "t", &root), ATTN_OK);
    attn__json_free(root);
}

/* ---- objects ------------------------------------------------------------------------ */

T_TEST(json_large_object_lookup)
{
    enum { N = 2000 };
    static int perm[N];
    uint64_t rng = 42;
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)t_rand_int(&rng, 0, i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    char *text = malloc((size_t)N * 24 + 8);
    size_t n = 0;
    text[n++] = '{';
    for (int i = 0; i < N; i++)
        n += (size_t)sprintf(text + n, "%s\"k%d\":%d", i ? "," : "", perm[i], perm[i]);
    text[n++] = '}';
    attn__json_value *root = NULL;
    T_EQ_STATUS(parse_n(text, n, &root), ATTN_OK);
    if (root != NULL) {
        T_EQ_INT(root->count, N);
        long order_ok = 0, found_ok = 0;
        for (int i = 0; i < N; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%d", perm[i]);
            order_ok += strcmp(root->items[i].key, key) == 0;
            snprintf(key, sizeof key, "k%d", i);
            const attn__json_value *v = attn__json_get(root, key);
            found_ok += v != NULL && v->number == i && strcmp(v->key, key) == 0;
        }
        T_EQ_INT(order_ok, N);
        T_EQ_INT(found_ok, N);
        T_CHECK(attn__json_get(root, "k") == NULL);
        T_CHECK(attn__json_get(root, "k2000") == NULL);
        T_CHECK(attn__json_get(root, "") == NULL);
        T_CHECK(attn__json_get(root, NULL) == NULL);
        attn__json_free(root);
    }
    /* a duplicate at the very end of the large object */
    n--;
    n += (size_t)sprintf(text + n, ",\"k%d\":0}", N / 2);
    T_EQ_STATUS(parse_n(text, n, &root), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "duplicate key \"k1000\"") != NULL);
    free(text);

    /* keys that differ only after a NUL, or by a prefix */
    const char *t2 = "{\"a\\u0000b\":1,\"ab\":2,\"a\":3}";
    T_EQ_STATUS(parse_n(t2, strlen(t2), &root), ATTN_OK);
    if (root != NULL) {
        const attn__json_value *a = attn__json_get(root, "a");
        T_CHECK(a != NULL && a->number == 3);
        T_CHECK(a == &root->items[2]);
        T_CHECK(attn__json_get(root, "ab") == &root->items[1]);
        T_EQ_INT(root->items[0].key_len, 3);
        attn__json_free(root);
    }
}

/* ---- UTF-8 against an independent decoder ----------------------------------------- */

/* Decode generically, then demand the shortest form, no surrogate and at
 * most U+10FFFF: the definition, not the parser's byte-range table. */
static bool oracle_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

T_TEST(json_utf8_rule_exhaustive)
{
    long mismatches = 0, valid = 0;
    unsigned char b[4];
    for (int x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        mismatches += attn__json_utf8_ok((char *)b, 1) != oracle_utf8(b, 1);
        for (int y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            mismatches += attn__json_utf8_ok((char *)b, 2) != oracle_utf8(b, 2);
            if (x < 0xC0) continue; /* 3-byte runs starting below 0xC0 repeat shorter cases */
            for (int z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                bool want = oracle_utf8(b, 3);
                valid += want;
                mismatches += attn__json_utf8_ok((char *)b, 3) != want;
            }
        }
    }
    /* 4-byte sequences: every lead and second byte, a spread of the rest */
    static const unsigned char tails[] = {0x00, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (int x = 0xF0; x < 256; x++)
        for (int y = 0; y < 256; y++)
            for (size_t z = 0; z < sizeof tails; z++)
                for (size_t w = 0; w < sizeof tails; w++) {
                    b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = tails[z], b[3] = tails[w];
                    bool want = oracle_utf8(b, 4);
                    valid += want;
                    mismatches += attn__json_utf8_ok((char *)b, 4) != want;
                }
    T_EQ_INT(mismatches, 0);
    T_CHECK(valid > 60000); /* the oracle is not trivially false */
}

/* ---- the writer ------------------------------------------------------------------- */

T_TEST(json_writer_strings)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out; /* NULL: rejected */
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"a\"b\\c/", 6, "\"a\\\"b\\\\c/\""},
        {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
        {"x\0y", 3, "\"x\\u0000y\""},
        {"\xc3\xa9\xf0\x9f\x98\x80", 6, "\"\xc3\xa9\xf0\x9f\x98\x80\""},
        {"", 0, "\"\""},
        {"\xff", 1, NULL},
        {"ok\xed\xa0\x80", 5, NULL},
        {"\xc3", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        attn__json_out o = {buf, sizeof buf, 0};
        attn__json_out_raw(&o, "", 0);
        bool ok = attn__json_out_string(&o, cases[i].in, cases[i].len);
        T_EQ_INT(ok, cases[i].out != NULL);
        if (cases[i].out == NULL) {
            T_EQ_INT(o.len, 0);
            continue;
        }
        T_EQ_INT(o.len, strlen(cases[i].out));
        T_CHECK(strcmp(buf, cases[i].out) == 0);
        /* and it reads back as the same bytes */
        attn__json_value *root = NULL;
        T_EQ_STATUS(parse_n(buf, o.len, &root), ATTN_OK);
        if (root != NULL) {
            T_EQ_INT(root->len, cases[i].len);
            T_CHECK(memcmp(root->str, cases[i].in, cases[i].len) == 0);
        }
        attn__json_free(root);
    }
    /* every single byte 0x01..0x7f round-trips */
    long bad = 0;
    for (int c = 1; c < 128; c++) {
        char in = (char)c, buf[16];
        attn__json_out o = {buf, sizeof buf, 0};
        attn__json_value *root = NULL;
        if (!attn__json_out_string(&o, &in, 1) || parse_n(buf, o.len, &root) != ATTN_OK ||
            root->len != 1 || root->str[0] != in)
            bad++;
        attn__json_free(root);
    }
    T_EQ_INT(bad, 0);
}

T_TEST(json_writer_measures_and_truncates)
{
    attn__json_out m = {NULL, 0, 0};
    attn__json_out_raw(&m, "abcdefgh", 8);
    attn__json_out_int(&m, -12);
    T_EQ_INT(m.len, 11);
    char buf[6];
    memset(buf, 'z', sizeof buf);
    attn__json_out o = {buf, 5, 0};
    attn__json_out_raw(&o, "abc", 3);
    T_CHECK(strcmp(buf, "abc") == 0);
    attn__json_out_raw(&o, "defgh", 5);
    T_EQ_INT(o.len, 8);
    T_CHECK(strcmp(buf, "abcd") == 0); /* cap - 1 bytes and a NUL */
    T_EQ_INT(buf[5], 'z');             /* nothing past cap */
    attn__json_out_int(&o, INT64_MIN);
    T_EQ_INT(o.len, 8 + 20);
    char num[32];
    attn__json_out n = {num, sizeof num, 0};
    attn__json_out_int(&n, INT64_MIN);
    T_CHECK(strcmp(num, "-9223372036854775808") == 0);
}

T_TEST(json_writer_doubles_round_trip)
{
    static const struct {
        double v;
        const char *text;
    } exact[] = {
        {0.1, "0.1"}, {1.0 / 3.0, "0.3333333333333333"}, {-0.0, "-0"},
        {1e300, "1e+300"}, {5e-324, "4.94065645841247e-324"}, {2.0, "2"},
        {0.30000000000000004, "0.30000000000000004"},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        char buf[64];
        attn__json_out o = {buf, sizeof buf, 0};
        T_CHECK(attn__json_out_double(&o, exact[i].v));
        if (strcmp(buf, exact[i].text) != 0)
            t_fail(__FILE__, __LINE__, "out_double(%.17g) = %s, want %s", exact[i].v, buf,
                   exact[i].text);
    }
    uint64_t rng = 7;
    long bad = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = t_rand_u64(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        char buf[64];
        attn__json_out o = {buf, sizeof buf, 0};
        attn__json_value *root = NULL;
        if (!isfinite(v)) {
            bad += attn__json_out_double(&o, v) || o.len != 0;
            continue;
        }
        if (!attn__json_out_double(&o, v) || parse_n(buf, o.len, &root) != ATTN_OK ||
            memcmp(&root->number, &v, sizeof v) != 0)
            bad++;
        attn__json_free(root);
    }
    T_EQ_INT(bad, 0);
    attn__json_out o = {NULL, 0, 0};
    T_CHECK(!attn__json_out_double(&o, NAN));
    T_CHECK(!attn__json_out_double(&o, -INFINITY));
    T_EQ_INT(o.len, 0);
}

/* ---- out of memory ----------------------------------------------------------------- */

T_TEST(json_out_of_memory)
{
    const char *text = "{\"a\":[1,2,{\"b\":\"\\u00e9\"}],\"c\":1.5}";
    long k = 1;
    for (;; k++) {
        t_counting c = {0, 0, k};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn__json_value *root = NULL;
        attn_status st = parse_n(text, strlen(text), &root);
        if (st == ATTN_OK) T_CHECK(attn__json_get(root, "c") != NULL);
        attn__json_free(root);
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(c.live, 0);
        if (c.calls < k) { /* the k-th allocation never happened: done */
            T_EQ_STATUS(st, ATTN_OK);
            break;
        }
        T_EQ_STATUS(st, ATTN_NO_MEMORY);
        T_CHECK(root == NULL);
    }
    T_EQ_INT(k, 3); /* exactly two allocations: the tree and the scratch */
}
