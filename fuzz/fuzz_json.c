/* fuzz_json.c - libFuzzer target for the JSON reader and writer
 * (src/formats/json.c). Any input must parse or fail with ATTN_BAD_FILE and a
 * message. A parsed tree is walked completely and checked: every member is
 * found again by lookup, an integer that attn__json_int64 accepts equals
 * the parsed double, and every string and number survives the writer and a
 * second parse unchanged. A failed check aborts (a crash for libFuzzer). */
#include "formats/json.h"

#include <stdlib.h>
#include <string.h>

static void check(bool ok)
{
    if (!ok) abort();
}

/* Writes v (a string or a finite double) with the writer, parses it back
 * and compares. */
static void round_trip(const attn__json_value *v)
{
    attn__json_out m = {NULL, 0, 0};
    if (v->kind == ATTN__JSON_STRING) check(attn__json_out_string(&m, v->str, v->len));
    else check(attn__json_out_double(&m, v->number));
    char *buf = malloc(m.len + 1);
    attn__json_out o = {buf, m.len + 1, 0};
    if (v->kind == ATTN__JSON_STRING) attn__json_out_string(&o, v->str, v->len);
    else attn__json_out_double(&o, v->number);
    check(o.len == m.len && strlen(buf) <= m.len);
    attn__json_value *back = NULL;
    check(attn__json_parse(buf, o.len, NULL, "again", &back) == ATTN_OK);
    check(back->kind == v->kind);
    if (v->kind == ATTN__JSON_STRING)
        check(back->len == v->len && memcmp(back->str, v->str, v->len) == 0);
    else
        check(memcmp(&back->number, &v->number, sizeof(double)) == 0);
    attn__json_free(back);
    free(buf);
}

static void walk(const attn__json_value *v)
{
    int64_t x;
    switch (v->kind) {
    case ATTN__JSON_NUMBER:
        if (attn__json_int64(v, "fuzz", &x) == ATTN_OK) check(v->number == (double)x);
        round_trip(v);
        break;
    case ATTN__JSON_STRING:
        check(attn__json_utf8_ok(v->str, v->len) && v->str[v->len] == '\0');
        round_trip(v);
        break;
    case ATTN__JSON_ARRAY:
    case ATTN__JSON_OBJECT:
        for (size_t i = 0; i < v->count; i++) {
            const attn__json_value *m = &v->items[i];
            if (v->kind == ATTN__JSON_OBJECT && strlen(m->key) == m->key_len)
                check(attn__json_get(v, m->key) == m);
            walk(m);
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    attn__json_value *root = NULL;
    attn_status st = attn__json_parse((const char *)data, size, NULL, "fuzz", &root);
    if (st != ATTN_OK) {
        check(st == ATTN_BAD_FILE && root == NULL && attn_last_error()[0] != '\0');
        return 0;
    }
    walk(root);
    attn__json_free(root);
    return 0;
}
