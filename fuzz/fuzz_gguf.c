/* fuzz_gguf.c - libFuzzer target for the GGUF reader (src/formats/gguf.c)
 * and the BPE tokenizer's GGUF constructor (src/text/bpe_gguf.c). Any input
 * must load or fail with ATTN_BAD_FILE and a message. A loaded file is
 * walked completely: every pair read back with the getters of its type,
 * arrays (nested ones too) element by element, every tensor found again by
 * name, inside the image, and its last row converted (or refused as
 * unsupported); then a tokenizer is built from it, when it has one, and
 * encodes a text. A failed check aborts. */
#include <attn/gguf.h>
#include <attn/text.h>

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) abort();
}

/* Every element of array a (depth-first). */
static void walk_array(const attn_gguf_value *a)
{
    attn_gguf_type type = attn_gguf_array_type(a);
    for (int64_t i = 0; i < attn_gguf_array_count(a); i++) {
        const char *s;
        size_t len;
        uint64_t u;
        int64_t v;
        double f;
        int b;
        const attn_gguf_value *sub;
        if (type == ATTN_GGUF_TYPE_STRING) {
            check(attn_gguf_array_string(a, i, &s, &len) == ATTN_OK);
            volatile char first = len > 0 ? s[0] : 0, last = len > 0 ? s[len - 1] : 0;
            (void)first, (void)last;
        } else if (type == ATTN_GGUF_TYPE_ARRAY) {
            check(attn_gguf_array_array(a, i, &sub) == ATTN_OK);
            walk_array(sub);
        } else if (type == ATTN_GGUF_TYPE_BOOL) {
            check(attn_gguf_array_bool(a, i, &b) == ATTN_OK && (b == 0 || b == 1));
        } else if (type == ATTN_GGUF_TYPE_FLOAT32 || type == ATTN_GGUF_TYPE_FLOAT64) {
            check(attn_gguf_array_float(a, i, &f) == ATTN_OK);
        } else {
            attn_status su = attn_gguf_array_uint(a, i, &u), si = attn_gguf_array_int(a, i, &v);
            check(su == ATTN_OK || si == ATTN_OK);
            check(su != ATTN_OK || si != ATTN_OK || (uint64_t)v == u);
        }
    }
}

static void walk_pairs(const attn_gguf *g)
{
    for (int64_t i = 0; i < attn_gguf_kv_count(g); i++) {
        const char *key, *s;
        attn_gguf_type type;
        size_t len;
        double f;
        int b;
        uint64_t u;
        const attn_gguf_value *a;
        check(attn_gguf_kv(g, i, &key, &type) == ATTN_OK && attn_gguf_kv_index(g, key) == i);
        if (type == ATTN_GGUF_TYPE_STRING) {
            check(attn_gguf_get_string(g, key, &s, &len) == ATTN_OK && strlen(s) <= len);
        } else if (type == ATTN_GGUF_TYPE_ARRAY) {
            check(attn_gguf_get_array(g, key, &a) == ATTN_OK);
            walk_array(a);
        } else if (type == ATTN_GGUF_TYPE_BOOL) {
            check(attn_gguf_get_bool(g, key, &b) == ATTN_OK);
        } else if (type == ATTN_GGUF_TYPE_FLOAT32 || type == ATTN_GGUF_TYPE_FLOAT64) {
            check(attn_gguf_get_float(g, key, &f) == ATTN_OK);
        } else {
            attn_status st = attn_gguf_get_uint(g, key, &u);
            check(st == ATTN_OK || st == ATTN_BAD_FILE);
        }
    }
}

static void walk_tensors(const attn_gguf *g, size_t size)
{
    for (int64_t i = 0; i < attn_gguf_tensor_count(g); i++) {
        attn_gguf_tensor_info t, f;
        check(attn_gguf_tensor_get(g, i, &t) == ATTN_OK);
        check(attn_gguf_tensor_find(g, t.name, &f) == ATTN_OK && f.data == t.data);
        check(t.offset <= size && t.bytes <= size - t.offset);
        check(t.n_rows * t.dims[0] == t.numel && t.bytes == (size_t)t.n_rows * t.row_bytes);
        if (t.n_rows == 0 || t.dims[0] > (1 << 16)) continue;
        float *row = malloc((size_t)t.dims[0] * sizeof(float) + 1);
        attn_status st = attn_gguf_read_rows(&t, t.n_rows - 1, 1, row);
        check(st == ATTN_OK || st == ATTN_UNSUPPORTED);
        free(row);
    }
}

static void tokenizer(const attn_gguf *g)
{
    attn_bpe *t = NULL;
    attn_status st = attn_bpe_load_gguf(g, &t);
    check(st == ATTN_OK || st == ATTN_BAD_FILE || st == ATTN_UNSUPPORTED || st == ATTN_NO_MEMORY);
    if (st != ATTN_OK) return;
    static const char text[] = "Hello, world! 12 <|im_start|>user\n\t\xc3\xa9 it's";
    int32_t ids[sizeof text];
    int64_t n = 0;
    check(attn_bpe_encode(t, text, sizeof text - 1, 1, ids, sizeof text, &n) == ATTN_OK);
    for (int64_t i = 0; i < n; i++) check(ids[i] >= 0 && ids[i] < attn_bpe_vocab_size(t));
    attn_bpe_free(t);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    attn_gguf *g = NULL;
    attn_status st = attn_gguf_load_memory(data, size, &g);
    if (st != ATTN_OK) {
        check(st == ATTN_BAD_FILE && g == NULL && attn_last_error()[0] != '\0');
        return 0;
    }
    check(attn_gguf_version(g) == 2 || attn_gguf_version(g) == 3);
    check(attn_gguf_data_offset(g) % attn_gguf_alignment(g) == 0);
    walk_pairs(g);
    walk_tensors(g, size);
    tokenizer(g);
    attn_gguf_free(g);
    return 0;
}
