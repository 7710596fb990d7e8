/* test_gguf.c - GGUF files (attn/gguf.h), from images the tests write
 * themselves (runner/gguf_write.h): a file with every value type, nested
 * arrays and a tensor of each supported type plus an unsupported one,
 * read back through every getter; conversion to float32 against values
 * computed by hand from the block definitions; alignment and versions; a
 * catalogue of corrupt files, each with its own message; a truncation
 * sweep at every byte; a byte-substitution sweep over the header; files on
 * disk (mmap); argument checks; out-of-memory injection. */
#include "gguf_write.h"
#include "test.h"

#include <attn/gguf.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the small file --------------------------------------------------------------- */

enum { SMALL_KV = 18, SMALL_TENSORS = 7 };

static const float f32_vals[6] = {1.0f, -2.0f, 3.5f, 0.0f, 1e-3f, 7.0f};
static const uint16_t f16_vals[4] = {0x3C00, 0xC000, 0x7BFF, 0x0001}; /* 1, -2, 65504, 2^-24 */
static const uint16_t bf16_vals[2] = {0x3F80, 0xC040};                 /* 1, -3 */

/* Q8_0: block 0 has d = 0.5 (f16 0x3800), q[j] = 8 j - 128; block 1 d = -2
 * (0xC000), q[j] = 3 - j. */
static void q8_blocks(unsigned char b[68])
{
    b[0] = 0x00, b[1] = 0x38;
    for (int j = 0; j < 32; j++) b[2 + j] = (unsigned char)(int8_t)(8 * j - 128);
    b[34] = 0x00, b[35] = 0xC0;
    for (int j = 0; j < 32; j++) b[36 + j] = (unsigned char)(int8_t)(3 - j);
}

static float q8_value(int i)
{
    return i < 32 ? 0.5f * (float)(8 * i - 128) : -2.0f * (float)(3 - (i - 32));
}

/* Q4_1: block 0 d = 0.25 (0x3400), m = -1 (0xBC00), byte j = j | (15 - j) << 4;
 * block 1 d = 2 (0x4000), m = 0.5 (0x3800), byte j = 7 | j << 4. */
static void q4_blocks(unsigned char b[40])
{
    b[0] = 0x00, b[1] = 0x34, b[2] = 0x00, b[3] = 0xBC;
    for (int j = 0; j < 16; j++) b[4 + j] = (unsigned char)(j | (15 - j) << 4);
    b[20] = 0x00, b[21] = 0x40, b[22] = 0x00, b[23] = 0x38;
    for (int j = 0; j < 16; j++) b[24 + j] = (unsigned char)(7 | j << 4);
}

/* Element i of the Q4_1 tensor: low nibbles are 0-15, high 16-31. */
static float q4_value(int i)
{
    int blk = i / 32, j = i % 32;
    if (blk == 0) return 0.25f * (float)(j < 16 ? j : 15 - (j - 16)) - 1.0f;
    return 2.0f * (float)(j < 16 ? 7 : j - 16) + 0.5f;
}

typedef struct small_tensor {
    const char *name;
    uint32_t n_dims;
    uint64_t dims[4];
    uint32_t type;
    size_t bytes;
} small_tensor;

static const small_tensor small_tensors[SMALL_TENSORS] = {
    {"w.f32", 2, {3, 2}, ATTN_GGUF_TENSOR_TYPE_F32, 24},
    {"w.f16", 1, {4}, ATTN_GGUF_TENSOR_TYPE_F16, 8},
    {"w.bf16", 2, {2, 1}, ATTN_GGUF_TENSOR_TYPE_BF16, 4},
    {"w.q8", 2, {32, 2}, ATTN_GGUF_TENSOR_TYPE_Q8_0, 68},
    {"w.empty", 2, {0, 5}, ATTN_GGUF_TENSOR_TYPE_F32, 0},
    {"w.q6k", 1, {256}, ATTN_GGUF_TENSOR_TYPE_Q6_K, 210},
    {"w.q4", 1, {64}, ATTN_GGUF_TENSOR_TYPE_Q4_1, 40},
};

/* The pairs of the small file (SMALL_KV of them). */
static void small_pairs(t_gguf *w)
{
    t_gguf_key(w, "t.u8", ATTN_GGUF_TYPE_UINT8), t_gguf_u8(w, 200);
    t_gguf_key(w, "t.i8", ATTN_GGUF_TYPE_INT8), t_gguf_u8(w, (uint8_t)-5);
    t_gguf_key(w, "t.u16", ATTN_GGUF_TYPE_UINT16), t_gguf_u16(w, 60000);
    t_gguf_key(w, "t.i16", ATTN_GGUF_TYPE_INT16), t_gguf_u16(w, (uint16_t)-30000);
    t_gguf_key(w, "t.u32", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(w, 4000000000u);
    t_gguf_key(w, "t.i32", ATTN_GGUF_TYPE_INT32), t_gguf_u32(w, (uint32_t)-2000000000);
    t_gguf_key(w, "t.f32", ATTN_GGUF_TYPE_FLOAT32), t_gguf_f32(w, 1.5f);
    t_gguf_key(w, "t.bool", ATTN_GGUF_TYPE_BOOL), t_gguf_u8(w, 1);
    t_gguf_key(w, "t.str", ATTN_GGUF_TYPE_STRING), t_gguf_str(w, "h\xc3\xa9llo");
    t_gguf_key(w, "t.u64", ATTN_GGUF_TYPE_UINT64), t_gguf_u64(w, 0x8000000000000005ull);
    t_gguf_key(w, "t.i64", ATTN_GGUF_TYPE_INT64), t_gguf_u64(w, (uint64_t)-(INT64_C(1) << 40));
    t_gguf_key(w, "t.f64", ATTN_GGUF_TYPE_FLOAT64), t_gguf_f64(w, 0.1);
    t_gguf_key(w, "t.strs", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(w, ATTN_GGUF_TYPE_STRING, 3);
    t_gguf_str(w, "a"), t_gguf_str(w, ""), t_gguf_str(w, "ccc");
    t_gguf_key(w, "t.i32s", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(w, ATTN_GGUF_TYPE_INT32, 3);
    t_gguf_u32(w, 1), t_gguf_u32(w, (uint32_t)-2), t_gguf_u32(w, 3);
    t_gguf_key(w, "t.bools", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(w, ATTN_GGUF_TYPE_BOOL, 2);
    t_gguf_u8(w, 1), t_gguf_u8(w, 0);
    t_gguf_key(w, "t.f64s", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(w, ATTN_GGUF_TYPE_FLOAT64, 2);
    t_gguf_f64(w, 2.5), t_gguf_f64(w, -0.25);
    /* [[1, 2] (UINT8), ["x"], [] (UINT16)] */
    t_gguf_key(w, "t.nested", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(w, ATTN_GGUF_TYPE_ARRAY, 3);
    t_gguf_array(w, ATTN_GGUF_TYPE_UINT8, 2), t_gguf_u8(w, 1), t_gguf_u8(w, 2);
    t_gguf_array(w, ATTN_GGUF_TYPE_STRING, 1), t_gguf_str(w, "x");
    t_gguf_array(w, ATTN_GGUF_TYPE_UINT16, 0);
    t_gguf_key(w, "t.empty", ATTN_GGUF_TYPE_ARRAY), t_gguf_array(w, ATTN_GGUF_TYPE_STRING, 0);
}

/* The data of small tensor k. */
static void small_data(int k, unsigned char *dst)
{
    unsigned char q8[68], q4[40];
    q8_blocks(q8);
    q4_blocks(q4);
    switch (k) {
    case 0: memcpy(dst, f32_vals, 24); break;
    case 1: memcpy(dst, f16_vals, 8); break;
    case 2: memcpy(dst, bf16_vals, 4); break;
    case 3: memcpy(dst, q8, 68); break;
    case 5: for (int i = 0; i < 210; i++) dst[i] = (unsigned char)(i * 7 + 1); break;
    case 6: memcpy(dst, q4, 40); break;
    default: break;
    }
}

/* The small file: version, general.alignment (0: absent, so 32). The last
 * tensor ends the file, so every shorter prefix is corrupt. *data_offset
 * receives the start of the data section, offsets[] each tensor's offset
 * in it. */
static t_gguf small_file(uint32_t version, uint32_t alignment, size_t *data_offset,
                         size_t offsets[SMALL_TENSORS])
{
    size_t a = alignment ? alignment : 32, pos = 0;
    size_t off[SMALL_TENSORS];
    for (int k = 0; k < SMALL_TENSORS; k++) {
        if (small_tensors[k].bytes == 0) {
            off[k] = 0;
            continue;
        }
        pos = (pos + a - 1) / a * a;
        off[k] = pos;
        pos += small_tensors[k].bytes;
    }
    t_gguf w = {NULL, 0, 0};
    t_gguf_header(&w, version, SMALL_TENSORS, SMALL_KV + (alignment != 0));
    small_pairs(&w);
    if (alignment) t_gguf_key(&w, "general.alignment", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, alignment);
    for (int k = 0; k < SMALL_TENSORS; k++) {
        const small_tensor *s = &small_tensors[k];
        t_gguf_tensor(&w, s->name, s->n_dims, s->dims, s->type, off[k]);
    }
    t_gguf_pad(&w, a);
    *data_offset = w.n;
    unsigned char buf[256];
    for (int k = 0; k < SMALL_TENSORS; k++) {
        if (small_tensors[k].bytes == 0) continue;
        while (w.n < *data_offset + off[k]) t_gguf_u8(&w, 0);
        small_data(k, buf);
        t_gguf_bytes(&w, buf, small_tensors[k].bytes);
        if (offsets != NULL) offsets[k] = off[k];
    }
    if (offsets != NULL) offsets[4] = 0;
    return w;
}

static attn_gguf *load(const t_gguf *w)
{
    attn_gguf *g = NULL;
    T_EQ_STATUS(attn_gguf_load_memory(w->b, w->n, &g), ATTN_OK);
    return g;
}

/* ---- values ------------------------------------------------------------------------ */

static void check_pairs(const attn_gguf *g)
{
    static const char *const keys[SMALL_KV] = {
        "t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32", "t.bool", "t.str",
        "t.u64", "t.i64", "t.f64", "t.strs", "t.i32s", "t.bools", "t.f64s", "t.nested", "t.empty"};
    static const attn_gguf_type types[SMALL_KV] = {
        ATTN_GGUF_TYPE_UINT8, ATTN_GGUF_TYPE_INT8, ATTN_GGUF_TYPE_UINT16, ATTN_GGUF_TYPE_INT16,
        ATTN_GGUF_TYPE_UINT32, ATTN_GGUF_TYPE_INT32, ATTN_GGUF_TYPE_FLOAT32, ATTN_GGUF_TYPE_BOOL,
        ATTN_GGUF_TYPE_STRING, ATTN_GGUF_TYPE_UINT64, ATTN_GGUF_TYPE_INT64, ATTN_GGUF_TYPE_FLOAT64,
        ATTN_GGUF_TYPE_ARRAY, ATTN_GGUF_TYPE_ARRAY, ATTN_GGUF_TYPE_ARRAY, ATTN_GGUF_TYPE_ARRAY,
        ATTN_GGUF_TYPE_ARRAY, ATTN_GGUF_TYPE_ARRAY};
    for (int i = 0; i < SMALL_KV; i++) {
        const char *key = NULL;
        attn_gguf_type type = ATTN_GGUF_TYPE_ARRAY;
        T_EQ_STATUS(attn_gguf_kv(g, i, &key, &type), ATTN_OK);
        T_CHECK(key != NULL && strcmp(key, keys[i]) == 0);
        T_EQ_INT(type, types[i]);
        T_EQ_INT(attn_gguf_kv_index(g, keys[i]), i);
    }
    T_EQ_INT(attn_gguf_kv_index(g, "t.none"), -1);
    T_EQ_INT(attn_gguf_kv_index(g, "t.u"), -1);
}

static void check_scalars(const attn_gguf *g)
{
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    int b = -1;
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.u8", &u), ATTN_OK); T_EQ_INT(u, 200);
    T_EQ_STATUS(attn_gguf_get_int(g, "t.i8", &i), ATTN_OK); T_EQ_INT(i, -5);
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.u16", &u), ATTN_OK); T_EQ_INT(u, 60000);
    T_EQ_STATUS(attn_gguf_get_int(g, "t.i16", &i), ATTN_OK); T_EQ_INT(i, -30000);
    T_EQ_STATUS(attn_gguf_get_int(g, "t.u32", &i), ATTN_OK); T_EQ_INT(i, 4000000000LL);
    T_EQ_STATUS(attn_gguf_get_int(g, "t.i32", &i), ATTN_OK); T_EQ_INT(i, -2000000000LL);
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.u64", &u), ATTN_OK);
    T_CHECK(u == 0x8000000000000005ull);
    T_EQ_STATUS(attn_gguf_get_int(g, "t.i64", &i), ATTN_OK); T_EQ_INT(i, -(INT64_C(1) << 40));
    T_EQ_STATUS(attn_gguf_get_float(g, "t.f32", &f), ATTN_OK); T_CHECK(f == 1.5);
    T_EQ_STATUS(attn_gguf_get_float(g, "t.f64", &f), ATTN_OK); T_CHECK(f == 0.1);
    T_EQ_STATUS(attn_gguf_get_bool(g, "t.bool", &b), ATTN_OK); T_EQ_INT(b, 1);
    const char *s = NULL;
    size_t len = 0;
    T_EQ_STATUS(attn_gguf_get_string(g, "t.str", &s, &len), ATTN_OK);
    T_CHECK(s != NULL && strcmp(s, "h\xc3\xa9llo") == 0);
    T_EQ_INT(len, 6);
    T_EQ_STATUS(attn_gguf_get_string(g, "t.str", &s, NULL), ATTN_OK);
    /* conversions that do not fit, and wrong types: nothing written */
    u = 77, i = 77, f = 77, b = 77;
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.i8", &u), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "'t.i8' is -5; expected a value >= 0") != NULL);
    T_EQ_STATUS(attn_gguf_get_int(g, "t.u64", &i), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "beyond int64_t") != NULL);
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.f32", &u), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "is a FLOAT32; expected an integer") != NULL);
    T_EQ_STATUS(attn_gguf_get_float(g, "t.i32", &f), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_gguf_get_bool(g, "t.u8", &b), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_gguf_get_string(g, "t.u8", &s, &len), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "'t.u8' is a UINT8; expected a STRING") != NULL);
    const attn_gguf_value *arr = NULL;
    T_EQ_STATUS(attn_gguf_get_array(g, "t.str", &arr), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.strs", &u), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.missing", &u), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "no key 't.missing'") != NULL);
    T_CHECK(u == 77 && i == 77 && f == 77 && b == 77 && arr == NULL);
}

static void check_arrays(const attn_gguf *g)
{
    const attn_gguf_value *a = NULL, *sub = NULL;
    const char *s = NULL;
    size_t len = 99;
    T_EQ_STATUS(attn_gguf_get_array(g, "t.strs", &a), ATTN_OK);
    T_EQ_INT(attn_gguf_array_count(a), 3);
    T_EQ_INT(attn_gguf_array_type(a), ATTN_GGUF_TYPE_STRING);
    T_EQ_STATUS(attn_gguf_array_string(a, 0, &s, &len), ATTN_OK);
    T_CHECK(len == 1 && memcmp(s, "a", 1) == 0);
    T_EQ_STATUS(attn_gguf_array_string(a, 1, &s, &len), ATTN_OK); T_EQ_INT(len, 0);
    T_EQ_STATUS(attn_gguf_array_string(a, 2, &s, &len), ATTN_OK);
    T_CHECK(len == 3 && memcmp(s, "ccc", 3) == 0);
    T_EQ_STATUS(attn_gguf_array_string(a, 3, &s, &len), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_array_string(a, -1, &s, &len), ATTN_BAD_PARAM);
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    int b = -1;
    T_EQ_STATUS(attn_gguf_array_uint(a, 0, &u), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "element 0 of 't.strs' is a STRING") != NULL);
    T_EQ_STATUS(attn_gguf_get_array(g, "t.i32s", &a), ATTN_OK);
    T_EQ_STATUS(attn_gguf_array_int(a, 1, &i), ATTN_OK); T_EQ_INT(i, -2);
    T_EQ_STATUS(attn_gguf_array_uint(a, 2, &u), ATTN_OK); T_EQ_INT(u, 3);
    T_EQ_STATUS(attn_gguf_array_uint(a, 1, &u), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_gguf_array_string(a, 0, &s, &len), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "elements of 't.i32s' are INT32") != NULL);
    T_EQ_STATUS(attn_gguf_get_array(g, "t.bools", &a), ATTN_OK);
    T_EQ_STATUS(attn_gguf_array_bool(a, 0, &b), ATTN_OK); T_EQ_INT(b, 1);
    T_EQ_STATUS(attn_gguf_array_bool(a, 1, &b), ATTN_OK); T_EQ_INT(b, 0);
    T_EQ_STATUS(attn_gguf_get_array(g, "t.f64s", &a), ATTN_OK);
    T_EQ_STATUS(attn_gguf_array_float(a, 1, &f), ATTN_OK); T_CHECK(f == -0.25);
    T_EQ_STATUS(attn_gguf_array_array(a, 0, &sub), ATTN_BAD_FILE);
    /* nested: [[1, 2], ["x"], []] */
    T_EQ_STATUS(attn_gguf_get_array(g, "t.nested", &a), ATTN_OK);
    T_EQ_INT(attn_gguf_array_count(a), 3);
    T_EQ_INT(attn_gguf_array_type(a), ATTN_GGUF_TYPE_ARRAY);
    T_EQ_STATUS(attn_gguf_array_array(a, 0, &sub), ATTN_OK);
    T_EQ_INT(attn_gguf_array_type(sub), ATTN_GGUF_TYPE_UINT8);
    T_EQ_INT(attn_gguf_array_count(sub), 2);
    T_EQ_STATUS(attn_gguf_array_uint(sub, 1, &u), ATTN_OK); T_EQ_INT(u, 2);
    T_EQ_STATUS(attn_gguf_array_array(a, 1, &sub), ATTN_OK);
    T_EQ_STATUS(attn_gguf_array_string(sub, 0, &s, &len), ATTN_OK);
    T_CHECK(len == 1 && s[0] == 'x');
    T_EQ_STATUS(attn_gguf_array_array(a, 2, &sub), ATTN_OK);
    T_EQ_INT(attn_gguf_array_count(sub), 0);
    T_EQ_INT(attn_gguf_array_type(sub), ATTN_GGUF_TYPE_UINT16);
    T_EQ_STATUS(attn_gguf_array_uint(sub, 0, &u), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_get_array(g, "t.empty", &a), ATTN_OK);
    T_EQ_INT(attn_gguf_array_count(a), 0);
    T_EQ_INT(attn_gguf_array_count(NULL), -1);
}

T_TEST(gguf_every_value_type)
{
    size_t data_offset, offsets[SMALL_TENSORS];
    t_gguf w = small_file(3, 0, &data_offset, offsets);
    attn_gguf *g = load(&w);
    if (g != NULL) {
        T_EQ_INT(attn_gguf_version(g), 3);
        T_EQ_INT(attn_gguf_alignment(g), 32);
        T_EQ_INT(attn_gguf_data_offset(g), data_offset);
        T_EQ_INT(attn_gguf_kv_count(g), SMALL_KV);
        T_EQ_INT(attn_gguf_tensor_count(g), SMALL_TENSORS);
        check_pairs(g);
        check_scalars(g);
        check_arrays(g);
    }
    attn_gguf_free(g);
    t_gguf_free(&w);
}

/* ---- tensors ------------------------------------------------------------------------- */

static void check_infos(const attn_gguf *g, const unsigned char *image, size_t data_offset,
                        const size_t *offsets)
{
    static const int64_t numel[SMALL_TENSORS] = {6, 4, 2, 64, 0, 256, 64};
    static const int64_t rows[SMALL_TENSORS] = {2, 1, 1, 2, 5, 1, 1};
    static const size_t row_bytes[SMALL_TENSORS] = {12, 8, 4, 34, 0, 210, 40};
    for (int k = 0; k < SMALL_TENSORS; k++) {
        const small_tensor *s = &small_tensors[k];
        attn_gguf_tensor_info t, f;
        T_EQ_STATUS(attn_gguf_tensor_get(g, k, &t), ATTN_OK);
        T_CHECK(strcmp(t.name, s->name) == 0);
        T_EQ_INT(t.type, s->type);
        T_EQ_INT(t.n_dims, s->n_dims);
        for (int d = 0; d < ATTN_GGUF_MAX_DIMS; d++)
            T_EQ_INT(t.dims[d], (uint32_t)d < s->n_dims ? (int64_t)s->dims[d] : 1);
        T_EQ_INT(t.numel, numel[k]);
        T_EQ_INT(t.n_rows, rows[k]);
        T_EQ_INT(t.row_bytes, row_bytes[k]);
        T_EQ_INT(t.bytes, s->bytes);
        T_EQ_INT(t.offset, data_offset + offsets[k]);
        T_CHECK(t.data == image + data_offset + offsets[k]);
        T_EQ_STATUS(attn_gguf_tensor_find(g, s->name, &f), ATTN_OK);
        T_CHECK(f.data == t.data && f.name == t.name);
    }
    attn_gguf_tensor_info t;
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.none", &t), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "missing tensor 'w.none'") != NULL);
    T_EQ_STATUS(attn_gguf_tensor_get(g, SMALL_TENSORS, &t), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_tensor_get(g, -1, &t), ATTN_BAD_PARAM);
}

/* Every row of every supported tensor, whole and one row at a time. */
static void check_rows(const attn_gguf *g)
{
    float out[64], want[64];
    attn_gguf_tensor_info t;
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.f32", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 2, out), ATTN_OK);
    T_CHECK(memcmp(out, f32_vals, sizeof f32_vals) == 0);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 1, 1, out), ATTN_OK);
    T_CHECK(out[0] == 0.0f && out[1] == 1e-3f && out[2] == 7.0f);
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.f16", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 1, out), ATTN_OK);
    T_CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f && out[3] == 0x1p-24f);
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.bf16", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 1, out), ATTN_OK);
    T_CHECK(out[0] == 1.0f && out[1] == -3.0f);
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.q8", &t), ATTN_OK);
    for (int i = 0; i < 64; i++) want[i] = q8_value(i);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 2, out), ATTN_OK);
    T_CHECK(memcmp(out, want, sizeof want) == 0);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 1, 1, out), ATTN_OK);
    T_CHECK(memcmp(out, want + 32, 32 * sizeof(float)) == 0);
    T_CHECK(want[0] == -64.0f && want[31] == 60.0f && want[32] == -6.0f && want[63] == 56.0f);
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.q4", &t), ATTN_OK);
    for (int i = 0; i < 64; i++) want[i] = q4_value(i);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 1, out), ATTN_OK);
    T_CHECK(memcmp(out, want, sizeof want) == 0);
    T_CHECK(want[0] == -1.0f && want[15] == 2.75f && want[16] == 2.75f && want[31] == -1.0f &&
            want[32] == 14.5f && want[48] == 0.5f && want[63] == 30.5f);
    T_EQ_STATUS(attn_gguf_dequantize(ATTN_GGUF_TENSOR_TYPE_Q4_1, (const char *)t.data + 20, 32, out),
                ATTN_OK);
    T_CHECK(memcmp(out, want + 32, 32 * sizeof(float)) == 0);
    /* a tensor with no elements per row, and zero rows of any tensor */
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.empty", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 5, NULL), ATTN_OK);
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.q8", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 2, 0, NULL), ATTN_OK);
}

/* Wrong rows, types and sizes. */
static void check_row_errors(const attn_gguf *g)
{
    float out[256];
    out[0] = 42.0f;
    attn_gguf_tensor_info t;
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.q6k", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 1, out), ATTN_UNSUPPORTED);
    T_CHECK(strstr(attn_last_error(), "tensor type Q6_K (14) cannot be converted") != NULL);
    T_EQ_STATUS(attn_gguf_dequantize(ATTN_GGUF_TENSOR_TYPE_Q6_K, t.data, 256, out), ATTN_UNSUPPORTED);
    T_EQ_STATUS(attn_gguf_tensor_find(g, "w.q8", &t), ATTN_OK);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 1, 2, out), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "not inside the 2 rows of tensor 'w.q8'") != NULL);
    T_EQ_STATUS(attn_gguf_read_rows(&t, -1, 1, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 3, 0, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 1, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_read_rows(NULL, 0, 1, out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_dequantize(ATTN_GGUF_TENSOR_TYPE_Q8_0, t.data, 31, out), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "multiple of the Q8_0 block size 32") != NULL);
    T_EQ_STATUS(attn_gguf_dequantize(ATTN_GGUF_TENSOR_TYPE_Q8_0, t.data, -32, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_dequantize((attn_gguf_tensor_type)4, t.data, 32, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_dequantize(ATTN_GGUF_TENSOR_TYPE_Q8_0, NULL, 32, out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_dequantize(ATTN_GGUF_TENSOR_TYPE_Q8_0, NULL, 0, NULL), ATTN_OK);
    T_CHECK(out[0] == 42.0f);
}

T_TEST(gguf_tensors_and_conversion)
{
    size_t data_offset, offsets[SMALL_TENSORS];
    t_gguf w = small_file(3, 0, &data_offset, offsets);
    attn_gguf *g = NULL;
    T_EQ_STATUS(attn_gguf_load_memory(w.b, w.n, &g), ATTN_OK);
    if (g != NULL) {
        /* the file keeps its own copy: find the image through a tensor */
        attn_gguf_tensor_info t0;
        T_EQ_STATUS(attn_gguf_tensor_get(g, 0, &t0), ATTN_OK);
        const unsigned char *image = (const unsigned char *)t0.data - t0.offset;
        T_CHECK(memcmp(image, w.b, w.n) == 0);
        check_infos(g, image, data_offset, offsets);
        check_rows(g);
        check_row_errors(g);
    }
    attn_gguf_free(g);
    t_gguf_free(&w);
}

T_TEST(gguf_tensor_type_table)
{
    int64_t e = 0;
    size_t b = 0;
    static const struct { attn_gguf_tensor_type t; const char *name; int64_t e; size_t b; } want[] = {
        {ATTN_GGUF_TENSOR_TYPE_F32, "F32", 1, 4},     {ATTN_GGUF_TENSOR_TYPE_F16, "F16", 1, 2},
        {ATTN_GGUF_TENSOR_TYPE_BF16, "BF16", 1, 2},   {ATTN_GGUF_TENSOR_TYPE_Q8_0, "Q8_0", 32, 34},
        {ATTN_GGUF_TENSOR_TYPE_Q4_1, "Q4_1", 32, 20}, {ATTN_GGUF_TENSOR_TYPE_Q6_K, "Q6_K", 256, 210},
        {ATTN_GGUF_TENSOR_TYPE_IQ4_XS, "IQ4_XS", 256, 136}, {ATTN_GGUF_TENSOR_TYPE_MXFP4, "MXFP4", 32, 17}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        T_CHECK(strcmp(attn_gguf_tensor_type_name(want[k].t), want[k].name) == 0);
        T_EQ_STATUS(attn_gguf_tensor_type_block(want[k].t, &e, &b), ATTN_OK);
        T_EQ_INT(e, want[k].e);
        T_EQ_INT(b, want[k].b);
    }
    T_CHECK(attn_gguf_tensor_type_name((attn_gguf_tensor_type)4) == NULL);
    T_CHECK(attn_gguf_tensor_type_name((attn_gguf_tensor_type)99) == NULL);
    T_EQ_STATUS(attn_gguf_tensor_type_block((attn_gguf_tensor_type)5, &e, &b), ATTN_BAD_PARAM);
    T_CHECK(strcmp(attn_gguf_type_name(ATTN_GGUF_TYPE_FLOAT64), "FLOAT64") == 0);
    T_CHECK(strcmp(attn_gguf_type_name((attn_gguf_type)13), "?") == 0);
}

/* Version 2, and alignments other than 32: offsets, padding, data offset. */
T_TEST(gguf_versions_and_alignment)
{
    static const uint32_t aligns[] = {0, 1, 8, 64, 4096};
    for (int v = 2; v <= 3; v++) {
        for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
            size_t data_offset, offsets[SMALL_TENSORS];
            t_gguf w = small_file((uint32_t)v, aligns[k], &data_offset, offsets);
            attn_gguf *g = load(&w);
            size_t a = aligns[k] ? aligns[k] : 32;
            if (g != NULL) {
                T_EQ_INT(attn_gguf_version(g), v);
                T_EQ_INT(attn_gguf_alignment(g), a);
                T_EQ_INT(attn_gguf_data_offset(g), data_offset);
                T_EQ_INT(data_offset % a, 0);
                attn_gguf_tensor_info t;
                T_EQ_STATUS(attn_gguf_tensor_find(g, "w.q4", &t), ATTN_OK);
                T_EQ_INT(t.offset, data_offset + offsets[6]);
                T_EQ_INT((t.offset - data_offset) % a, 0);
                float out[64];
                T_EQ_STATUS(attn_gguf_read_rows(&t, 0, 1, out), ATTN_OK);
                T_CHECK(out[63] == 30.5f);
            }
            attn_gguf_free(g);
            t_gguf_free(&w);
        }
    }
}

/* ---- corrupt files ---------------------------------------------------------------------- */

/* A file with one pair (key, type, value bytes) and no tensors. */
static t_gguf one_pair(const char *key, uint32_t type, const void *value, size_t n)
{
    t_gguf w = {NULL, 0, 0};
    t_gguf_header(&w, 3, 0, 1);
    t_gguf_key(&w, key, type);
    t_gguf_bytes(&w, value, n);
    return w;
}

/* A file with the given tensor infos (their data: bytes of zeros after the
 * aligned infos) and no pairs. */
static t_gguf tensors(int n, const char *const *names, const uint32_t *n_dims,
                      const uint64_t (*dims)[5], const uint32_t *types, const uint64_t *offsets,
                      size_t data_bytes)
{
    t_gguf w = {NULL, 0, 0};
    t_gguf_header(&w, 3, (uint64_t)n, 0);
    for (int i = 0; i < n; i++) t_gguf_tensor(&w, names[i], n_dims[i], dims[i], types[i], offsets[i]);
    t_gguf_pad(&w, 32);
    for (size_t i = 0; i < data_bytes; i++) t_gguf_u8(&w, 0);
    return w;
}

static t_gguf one_tensor(const char *name, uint32_t n_dims, const uint64_t dims[5], uint32_t type,
                         uint64_t offset, size_t data_bytes)
{
    uint64_t d[1][5];
    memcpy(d[0], dims, sizeof d[0]);
    return tensors(1, &name, &n_dims, (const uint64_t(*)[5])d, &type, &offset, data_bytes);
}

/* The image must fail with ATTN_BAD_FILE and a message containing want. */
static void expect_bad(const char *what, t_gguf w, const char *want)
{
    attn_gguf *g = NULL;
    t_counting c = {0, 0, 0};
    attn_set_allocator(t_count_alloc, t_count_free, &c);
    attn_status st = attn_gguf_load_memory(w.b, w.n, &g);
    attn_set_allocator(NULL, NULL, NULL);
    t_checks++;
    if (st != ATTN_BAD_FILE || g != NULL || strstr(attn_last_error(), want) == NULL)
        t_fail(__FILE__, __LINE__, "%s: got %s \"%s\", want ATTN_BAD_FILE with \"%s\"", what,
               attn_status_name(st), attn_last_error(), want);
    T_EQ_INT(c.live, 0);
    attn_gguf_free(g);
    t_gguf_free(&w);
}

static void corrupt_headers(void)
{
    t_gguf w = {NULL, 0, 0};
    t_gguf_bytes(&w, "GGUF\3\0\0\0\0\0", 10);
    expect_bad("short", w, "the file has 10 bytes; a GGUF header needs 24");
    w = one_pair("k", ATTN_GGUF_TYPE_UINT8, "\1", 1);
    memcpy(w.b, "GGML", 4);
    expect_bad("magic", w, "the magic is not \"GGUF\" (the file starts 47 47 4d 4c)");
    static const struct { uint32_t v; const char *msg; } versions[] = {
        {1, "version 1, with 32-bit counts, is not supported"},
        {4, "version 4; only versions 2 and 3 are supported"},
        {0x03000000u, "(a big-endian file?)"},
        {0, "version 0;"}};
    for (int k = 0; k < 4; k++) {
        w = one_pair("k", ATTN_GGUF_TYPE_UINT8, "\1", 1);
        for (int i = 0; i < 4; i++) w.b[4 + i] = (unsigned char)(versions[k].v >> (8 * i));
        expect_bad("version", w, versions[k].msg);
    }
    w = (t_gguf){NULL, 0, 0};
    t_gguf_header(&w, 3, 0, 3);
    t_gguf_key(&w, "k", ATTN_GGUF_TYPE_UINT8), t_gguf_u8(&w, 1);
    expect_bad("pair count", w, "3 metadata pairs cannot fit in the 14 bytes left");
    w = (t_gguf){NULL, 0, 0};
    t_gguf_header(&w, 3, UINT64_MAX / 2, 0);
    expect_bad("tensor count", w, "tensors cannot fit in the 0 bytes left");
    w = (t_gguf){NULL, 0, 0};
    t_gguf_header(&w, 3, 0, 2);
    t_gguf_key(&w, "k", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, 1);
    t_gguf_key(&w, "k", ATTN_GGUF_TYPE_UINT32), t_gguf_u32(&w, 2);
    expect_bad("repeated key", w, "the key 'k' appears twice (pairs 0 and 1)");
}

static void corrupt_keys_and_values(void)
{
    expect_bad("empty key", one_pair("", ATTN_GGUF_TYPE_UINT8, "\1", 1), "the key of pair 0 is empty");
    t_gguf w = {NULL, 0, 0};
    t_gguf_header(&w, 3, 0, 1);
    t_gguf_strn(&w, "a\0b", 3), t_gguf_u32(&w, ATTN_GGUF_TYPE_UINT8), t_gguf_u8(&w, 1);
    expect_bad("NUL key", w, "the key of pair 0 contains a NUL byte");
    expect_bad("UTF-8 key", one_pair("a\xff", ATTN_GGUF_TYPE_UINT8, "\1", 1), "is not valid UTF-8");
    char long_key[ATTN_GGUF_MAX_KEY_BYTES + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    expect_bad("long key", one_pair(long_key, ATTN_GGUF_TYPE_UINT8, "\1", 1),
               "is 65536 bytes long; at most 65535 are allowed");
    expect_bad("type 13", one_pair("k", 13, "\1", 1), "the value type of 'k' is 13, which is not a GGUF type");
    expect_bad("bool 2", one_pair("k", ATTN_GGUF_TYPE_BOOL, "\2", 1), "the BOOL 'k' is 2; it must be 0 or 1");
    expect_bad("short u64", one_pair("k", ATTN_GGUF_TYPE_UINT64, "\1\2\3", 3),
               "the value of 'k' needs 8 bytes; the file ends 3 bytes later");
    w = one_pair("s", ATTN_GGUF_TYPE_STRING, "\x10\0\0\0\0\0\0\0abc", 11);
    expect_bad("string length", w, "the value of 's' is 16 bytes long; the file ends 3 bytes later");
    w = one_pair("a", ATTN_GGUF_TYPE_ARRAY, "\x07\0\0\0\x03\0\0\0\0\0\0\0\1\7\0", 15);
    expect_bad("bool element", w, "element 1 of the BOOL array 'a' is 7");
    w = one_pair("a", ATTN_GGUF_TYPE_ARRAY, "\x63\0\0\0\1\0\0\0\0\0\0\0\0", 13);
    expect_bad("element type", w, "the array 'a' has element type 99");
    w = one_pair("a", ATTN_GGUF_TYPE_ARRAY, "\x04\0\0\0\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    expect_bad("array count", w, "the array 'a' of 3 UINT32 elements cannot fit in the 8 bytes left");
    w = one_pair("a", ATTN_GGUF_TYPE_ARRAY, "\x08\0\0\0\xff\xff\xff\xff\xff\xff\xff\x0f", 12);
    expect_bad("string count", w, "STRING elements cannot fit in the 0 bytes left");
    w = one_pair("a", ATTN_GGUF_TYPE_ARRAY, "\x08\0\0\0\x02\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0x\x09\0\0\0\0\0\0\0", 29);
    expect_bad("string element", w, "string 1 of 'a' is 9 bytes long; the file ends 0 bytes later");
}

/* Arrays nested ATTN_GGUF_MAX_DEPTH levels load; one more does not. */
static void corrupt_nesting(void)
{
    for (int depth = ATTN_GGUF_MAX_DEPTH; depth <= ATTN_GGUF_MAX_DEPTH + 1; depth++) {
        t_gguf w = {NULL, 0, 0};
        t_gguf_header(&w, 3, 0, 1);
        t_gguf_key(&w, "deep", ATTN_GGUF_TYPE_ARRAY);
        for (int d = 1; d < depth; d++) t_gguf_array(&w, ATTN_GGUF_TYPE_ARRAY, 1);
        t_gguf_array(&w, ATTN_GGUF_TYPE_UINT8, 1), t_gguf_u8(&w, 5);
        if (depth > ATTN_GGUF_MAX_DEPTH) {
            expect_bad("nesting", w, "'deep' nests arrays deeper than 8 levels");
            continue;
        }
        attn_gguf *g = load(&w);
        const attn_gguf_value *a = NULL;
        T_EQ_STATUS(attn_gguf_get_array(g, "deep", &a), ATTN_OK);
        for (int d = 1; d < depth && a != NULL; d++) T_EQ_STATUS(attn_gguf_array_array(a, 0, &a), ATTN_OK);
        uint64_t u = 0;
        T_EQ_STATUS(attn_gguf_array_uint(a, 0, &u), ATTN_OK);
        T_EQ_INT(u, 5);
        attn_gguf_free(g);
        t_gguf_free(&w);
    }
}

static void corrupt_alignment(void)
{
    expect_bad("alignment 48", one_pair("general.alignment", ATTN_GGUF_TYPE_UINT32, "\x30\0\0\0", 4),
               "general.alignment is 48; it must be a power of two");
    expect_bad("alignment 0", one_pair("general.alignment", ATTN_GGUF_TYPE_UINT32, "\0\0\0\0", 4),
               "general.alignment is 0");
    expect_bad("alignment type", one_pair("general.alignment", ATTN_GGUF_TYPE_INT32, "\x20\0\0\0", 4),
               "general.alignment is a INT32; it must be a UINT32");
}

static void corrupt_tensors(void)
{
    const uint64_t d64[5] = {64, 1, 1, 1, 1}, d33[5] = {33, 1, 1, 1, 1};
    const uint64_t big[5] = {UINT64_C(1) << 63, 1, 1, 1, 1};
    const uint64_t huge[5] = {UINT64_C(1) << 40, UINT64_C(1) << 40, 1, 1, 1};
    expect_bad("dims", one_tensor("t", 5, d64, 0, 0, 256), "tensor 't' has 5 dims; at most 4");
    expect_bad("dim 2^63", one_tensor("t", 1, big, 0, 0, 256), "dims[0] = 9223372036854775808 is not below 2^63");
    expect_bad("overflow", one_tensor("t", 2, huge, 0, 0, 256), "tensor 't': its element count overflows");
    expect_bad("type 4", one_tensor("t", 1, d64, 4, 0, 256), "tensor 't' has type 4, which is not a known");
    expect_bad("type 99", one_tensor("t", 1, d64, 99, 0, 256), "has type 99");
    expect_bad("blocks", one_tensor("t", 1, d33, ATTN_GGUF_TENSOR_TYPE_Q8_0, 0, 256),
               "dims[0] = 33 is not a whole number of Q8_0 blocks of 32 elements");
    expect_bad("unaligned", one_tensor("t", 1, d64, 0, 16, 512),
               "tensor 't': offset 16 is not a multiple of the alignment 32");
    expect_bad("beyond", one_tensor("t", 1, d64, 0, 32, 256),
               "tensor 't': its 256 bytes at offset 32 end beyond the 256 bytes");
    expect_bad("far beyond", one_tensor("t", 1, d64, 0, UINT64_C(1) << 62, 256), "end beyond");
    expect_bad("name", one_tensor("", 1, d64, 0, 0, 256), "the name of tensor 0 is empty");
    char long_name[ATTN_GGUF_MAX_NAME_BYTES + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    expect_bad("long name", one_tensor(long_name, 1, d64, 0, 0, 256), "at most 1024 are allowed");
    const char *names[2] = {"a", "b"}, *same[2] = {"a", "a"};
    const uint32_t nd[2] = {1, 1}, ty[2] = {0, 0};
    const uint64_t dd[2][5] = {{64, 1, 1, 1, 1}, {64, 1, 1, 1, 1}};
    const uint64_t overlap[2] = {0, 224}, apart[2] = {0, 256};
    expect_bad("overlap", tensors(2, names, nd, dd, ty, overlap, 512),
               "tensors 'a' and 'b' overlap (data bytes [0, 256) and [224, 480))");
    expect_bad("same name", tensors(2, same, nd, dd, ty, apart, 512), "two tensors are named 'a'");
    /* a file that ends before its data section starts */
    t_gguf w = {NULL, 0, 0};
    const uint64_t zero[5] = {0, 1, 1, 1, 1};
    t_gguf_header(&w, 3, 1, 0);
    t_gguf_tensor(&w, "t", 1, zero, 0, 0);
    expect_bad("no data", w, "the data section would start at byte 64, beyond the end of the 57-byte file");
    /* counts and truncations inside the infos */
    w = one_tensor("t", 2, d64, 0, 0, 256);
    w.n = 24 + 8 + 1 + 4 + 8 + 4; /* inside dims[1] */
    expect_bad("cut dims", w, "the dims of tensor 0 needs 8 bytes; the file ends 4 bytes later");
}

T_TEST(gguf_corrupt_catalogue)
{
    corrupt_headers();
    corrupt_keys_and_values();
    corrupt_nesting();
    corrupt_alignment();
    corrupt_tensors();
}

/* Every proper prefix of the small file is ATTN_BAD_FILE, with nothing left allocated. */
T_TEST(gguf_truncation_sweep)
{
    size_t data_offset;
    t_gguf w = small_file(3, 0, &data_offset, NULL);
    long clean = 0, leaks = 0;
    for (size_t len = 0; len < w.n; len++) {
        unsigned char *cut = malloc(len + 1); /* exact size: ASan sees any overread */
        memcpy(cut, w.b, len);
        t_counting c = {0, 0, 0};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_gguf *g = NULL;
        attn_status st = attn_gguf_load_memory(cut, len, &g);
        attn_gguf_free(g);
        attn_set_allocator(NULL, NULL, NULL);
        clean += st == ATTN_BAD_FILE && g == NULL && attn_last_error()[0] != '\0';
        leaks += c.live != 0;
        free(cut);
    }
    T_EQ_INT(clean, (long)w.n);
    T_EQ_INT(leaks, 0);
    attn_gguf *g = load(&w);
    attn_gguf_free(g);
    t_gguf_free(&w);
}

/* A loaded file is consistent: every pair readable by its type, every
 * tensor inside the image and found by name, every supported one readable. */
static void walk_all(const attn_gguf *g, const unsigned char *img, size_t size)
{
    for (int64_t i = 0; i < attn_gguf_kv_count(g); i++) {
        const char *key;
        attn_gguf_type type;
        T_EQ_STATUS(attn_gguf_kv(g, i, &key, &type), ATTN_OK);
        T_EQ_INT(attn_gguf_kv_index(g, key), i);
    }
    float *out = malloc(4096 * sizeof(float));
    for (int64_t i = 0; i < attn_gguf_tensor_count(g); i++) {
        attn_gguf_tensor_info t, f;
        T_EQ_STATUS(attn_gguf_tensor_get(g, i, &t), ATTN_OK);
        T_CHECK(t.offset <= size && t.bytes <= size - t.offset && (const unsigned char *)t.data == img + t.offset);
        T_EQ_STATUS(attn_gguf_tensor_find(g, t.name, &f), ATTN_OK);
        if (t.n_rows > 0 && t.dims[0] <= 4096) {
            attn_status st = attn_gguf_read_rows(&t, t.n_rows - 1, 1, out);
            T_CHECK(st == ATTN_OK || st == ATTN_UNSUPPORTED);
        }
    }
    free(out);
}

/* Each header byte replaced by 0x00, 0x7F, 0x80 and 0xFF: the file loads
 * consistently or fails with ATTN_BAD_FILE, never anything else, nothing
 * leaked (ASan also sees any read outside the exact-size copy). */
T_TEST(gguf_byte_substitution_sweep)
{
    static const unsigned char subs[4] = {0x00, 0x7F, 0x80, 0xFF};
    size_t data_offset;
    t_gguf w = small_file(3, 0, &data_offset, NULL);
    long bad = 0, ok = 0, other = 0, leaks = 0;
    unsigned char *img = malloc(w.n);
    for (size_t pos = 0; pos < data_offset; pos++) {
        for (int k = 0; k < 4; k++) {
            memcpy(img, w.b, w.n);
            if (img[pos] == subs[k]) continue;
            img[pos] = subs[k];
            t_counting c = {0, 0, 0};
            attn_set_allocator(t_count_alloc, t_count_free, &c);
            attn_gguf *g = NULL;
            attn_status st = attn_gguf_load_memory(img, w.n, &g);
            if (st == ATTN_OK) {
                attn_gguf_tensor_info t0;
                const unsigned char *copy = NULL;
                if (attn_gguf_tensor_count(g) > 0 && attn_gguf_tensor_get(g, 0, &t0) == ATTN_OK)
                    copy = (const unsigned char *)t0.data - t0.offset;
                if (copy != NULL) walk_all(g, copy, w.n);
                ok++;
            }
            bad += st == ATTN_BAD_FILE;
            other += st != ATTN_OK && st != ATTN_BAD_FILE;
            attn_gguf_free(g);
            attn_set_allocator(NULL, NULL, NULL);
            leaks += c.live != 0;
        }
    }
    T_EQ_INT(other, 0);
    T_EQ_INT(leaks, 0);
    T_CHECK(bad > 0 && ok > 0); /* both outcomes occur: string bytes and values can change freely */
    free(img);
    t_gguf_free(&w);
}

/* ---- files, arguments, memory ------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    T_CHECK(fp != NULL);
    if (fp == NULL) return;
    T_EQ_INT(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

T_TEST(gguf_load_from_file)
{
    size_t data_offset, offsets[SMALL_TENSORS];
    t_gguf w = small_file(3, 64, &data_offset, offsets);
    const char *path = t_path("small.gguf");
    write_file(path, w.b, w.n);
    attn_gguf *g = NULL;
    T_EQ_STATUS(attn_gguf_load(path, &g), ATTN_OK);
    if (g != NULL) {
        T_EQ_INT(attn_gguf_alignment(g), 64);
        check_pairs(g);
        check_scalars(g);
        check_arrays(g);
        attn_gguf_tensor_info t;
        T_EQ_STATUS(attn_gguf_tensor_get(g, 0, &t), ATTN_OK);
        const unsigned char *image = (const unsigned char *)t.data - t.offset;
        T_EQ_INT((uintptr_t)image % 4096, 0); /* mapped, not copied */
        check_infos(g, image, data_offset, offsets);
        check_rows(g);
    }
    attn_gguf_free(g);
    g = NULL;
    const char *cut = t_path("cut.gguf");
    write_file(cut, w.b, w.n - 1);
    T_EQ_STATUS(attn_gguf_load(cut, &g), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "cut.gguf") != NULL && strstr(attn_last_error(), "w.q4") != NULL);
    const char *empty = t_path("empty.gguf");
    write_file(empty, "", 0);
    T_EQ_STATUS(attn_gguf_load(empty, &g), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "the file has 0 bytes") != NULL);
    T_EQ_STATUS(attn_gguf_load(t_path("none.gguf"), &g), ATTN_IO);
    T_EQ_STATUS(attn_gguf_load(t_tmpdir(), &g), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "it is a directory, not a regular file") != NULL);
    /* a FIFO is refused at once, not opened for a writer that never comes */
    const char *fifo = t_path("gguf.fifo");
    T_EQ_INT(mkfifo(fifo, 0600), 0);
    alarm(20); /* a blocking open would hang: the alarm ends the run */
    T_EQ_STATUS(attn_gguf_load(fifo, &g), ATTN_IO);
    alarm(0);
    T_CHECK(strstr(attn_last_error(), "it is a FIFO, not a regular file") != NULL);
    T_CHECK(g == NULL);
    t_gguf_free(&w);
}

T_TEST(gguf_argument_checks)
{
    size_t data_offset;
    t_gguf w = small_file(3, 0, &data_offset, NULL);
    attn_gguf *g = load(&w);
    attn_gguf *none = NULL;
    const char *key = NULL, *s = NULL;
    size_t len = 0;
    attn_gguf_type type;
    uint64_t u;
    const attn_gguf_value *a = NULL;
    attn_gguf_tensor_info t;
    T_EQ_STATUS(attn_gguf_load(NULL, &none), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_load("x", NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_load_memory(NULL, 5, &none), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_load_memory(w.b, w.n, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_load_memory(NULL, 0, &none), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_gguf_kv(NULL, 0, &key, &type), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_kv(g, 0, NULL, &type), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_kv(g, 0, &key, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_kv(g, SMALL_KV, &key, &type), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_kv(g, -1, &key, &type), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_gguf_get_uint(NULL, "t.u8", &u), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_get_uint(g, NULL, &u), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_get_uint(g, "t.u8", NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_get_string(g, "t.str", NULL, &len), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_get_array(g, "t.strs", NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_get_array(g, "t.strs", &a), ATTN_OK);
    T_EQ_STATUS(attn_gguf_array_string(a, 0, NULL, &len), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_array_string(a, 0, &s, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_array_string(NULL, 0, &s, &len), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_tensor_get(NULL, 0, &t), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_tensor_get(g, 0, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_tensor_find(g, NULL, &t), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_gguf_tensor_type_block(ATTN_GGUF_TENSOR_TYPE_F32, NULL, &len), ATTN_NULL_ARG);
    T_EQ_INT(attn_gguf_kv_index(NULL, "t.u8"), -1);
    T_EQ_INT(attn_gguf_kv_index(g, NULL), -1);
    T_EQ_INT(attn_gguf_kv_count(NULL), 0);
    T_EQ_INT(attn_gguf_tensor_count(NULL), 0);
    T_EQ_INT(attn_gguf_version(NULL), 0);
    T_EQ_INT(attn_gguf_alignment(NULL), 0);
    T_EQ_INT(attn_gguf_data_offset(NULL), 0);
    T_CHECK(none == NULL);
    attn_gguf_free(NULL);
    attn_gguf_free(g);
    t_gguf_free(&w);
}

typedef struct {
    const t_gguf *w;
    const char *path;
} oom_arg;

static attn_status op_load_memory(void *p)
{
    const oom_arg *a = p;
    attn_gguf *g = NULL;
    attn_status st = attn_gguf_load_memory(a->w->b, a->w->n, &g);
    if (st == ATTN_OK && attn_gguf_tensor_count(g) != SMALL_TENSORS) st = ATTN_BAD_FILE;
    attn_gguf_free(g);
    return st;
}

static attn_status op_load_file(void *p)
{
    const oom_arg *a = p;
    attn_gguf *g = NULL;
    attn_status st = attn_gguf_load(a->path, &g);
    attn_gguf_free(g);
    return st;
}

T_TEST(gguf_out_of_memory)
{
    size_t data_offset;
    t_gguf w = small_file(3, 0, &data_offset, NULL);
    oom_arg a = {&w, t_path("oom.gguf")};
    write_file(a.path, w.b, w.n);
    T_EQ_INT(t_oom_sweep(op_load_memory, &a), 2); /* the copy, the index */
    T_EQ_INT(t_oom_sweep(op_load_file, &a), 1);   /* the index (the file is mapped) */
    t_gguf_free(&w);
}
