/* test_safetensors.c - safetensors files (attn/safetensors.h): a round trip of every
 * dtype, the writer's exact bytes against hand-written files, float32
 * conversion against hand-computed values, a catalogue of hand-made corrupt
 * files (each with its own message), a truncation sweep at every byte, a
 * bit-flip sweep over the header, argument checks, atomic saving (failures
 * midway leave the old file and no temporary), and out-of-memory injection
 * at every allocation. */
#include "nn_test.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */

static size_t elsize(attn_dtype d)
{
    switch (d) {
    case ATTN_DTYPE_F64: case ATTN_DTYPE_I64: return 8;
    case ATTN_DTYPE_F32: case ATTN_DTYPE_I32: return 4;
    case ATTN_DTYPE_F16: case ATTN_DTYPE_BF16: return 2;
    case ATTN_DTYPE_U8: case ATTN_DTYPE_BOOL: return 1;
    }
    return 0;
}

/* name inside the run's scratch directory; a ring of 16 results, so a test
 * may hold up to 16 at once. */
static const char *tmp_path(const char *name)
{
    static char buf[16][512];
    static int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], "%s/%s", t_tmpdir(), name);
    return buf[k];
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    *size = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    return buf;
}

static void write_all(const char *path, const void *data, size_t size)
{
    FILE *fp = fopen(path, "wb");
    T_CHECK(fp != NULL);
    if (fp == NULL) return;
    T_EQ_INT(fwrite(data, 1, size, fp), size);
    fclose(fp);
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static bool same_file(const char *path, const unsigned char *want, size_t size)
{
    size_t n = 0;
    unsigned char *got = read_all(path, &n);
    bool same = got != NULL && n == size && memcmp(got, want, size) == 0;
    free(got);
    return same;
}

/* A file image: little-endian header length, the header, data_size bytes
 * of data (a fixed pattern). */
static unsigned char *make_image(const char *header, size_t header_len, size_t data_size,
                                 size_t *size)
{
    *size = 8 + header_len + data_size;
    unsigned char *b = malloc(*size);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    memcpy(b + 8, header, header_len);
    for (size_t i = 0; i < data_size; i++) b[8 + header_len + i] = (unsigned char)(i * 37 + 11);
    return b;
}

/* A small valid file as attn_safetensors_save writes it: three tensors, metadata. */
static unsigned char *small_file(size_t *size)
{
    static const float w[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    static const uint16_t h[4] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
    static const int64_t ids[2] = {5, -9};
    attn_safetensors_entry e[3] = {
        {"w", ATTN_DTYPE_F32, 2, {2, 3}, w},
        {"h", ATTN_DTYPE_F16, 1, {4}, h},
        {"ids", ATTN_DTYPE_I64, 1, {2}, ids},
    };
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    const char *path = tmp_path("small.safetensors");
    T_EQ_STATUS(attn_safetensors_save(path, e, 3, k, v, 1), ATTN_OK);
    return read_all(path, size);
}

/* ---- round trips ------------------------------------------------------------------ */

T_TEST(safetensors_round_trip_every_dtype)
{
    uint64_t rng = 11;
    static unsigned char data[10][64];
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 64; j++) data[i][j] = (unsigned char)t_rand_u64(&rng);
    attn_safetensors_entry e[10] = {
        {"f32", ATTN_DTYPE_F32, 2, {2, 3}, data[0]},
        {"f16", ATTN_DTYPE_F16, 1, {5}, data[1]},
        {"bf16", ATTN_DTYPE_BF16, 3, {1, 1, 3}, data[2]},
        {"f64", ATTN_DTYPE_F64, 0, {0}, data[3]},
        {"i64", ATTN_DTYPE_I64, 1, {4}, data[4]},
        {"i32", ATTN_DTYPE_I32, 2, {2, 2}, data[5]},
        {"u8", ATTN_DTYPE_U8, 1, {7}, data[6]},
        {"bool", ATTN_DTYPE_BOOL, 1, {3}, data[7]},
        {"empty", ATTN_DTYPE_F32, 2, {0, 4}, NULL},
        {"\xc3\xa9ight \"dims\"", ATTN_DTYPE_U8, 8, {1, 1, 1, 1, 1, 1, 1, 2}, data[9]},
    };
    const char *keys[2] = {"format", "note"}, *vals[2] = {"pt", "\xc3\xa9 \"quoted\"\n"};
    const char *path = tmp_path("rt.safetensors"), *tmp = tmp_path("rt.safetensors.tmp");
    T_EQ_STATUS(attn_safetensors_save(path, e, 10, keys, vals, 2), ATTN_OK);
    T_CHECK(!exists(tmp));

    size_t size = 0, total = 0;
    unsigned char *raw = read_all(path, &size);
    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--) n_header = n_header << 8 | raw[i];
    T_EQ_INT((8 + n_header) % 8, 0); /* data starts 8-aligned */

    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load(path, &f), ATTN_OK);
    if (f == NULL) return;
    T_EQ_INT(attn_safetensors_count(f), 10);
    for (int i = 0; i < 10; i++) {
        attn_safetensors_info info, found;
        T_EQ_STATUS(attn_safetensors_get(f, i, &info), ATTN_OK);
        T_CHECK(strcmp(info.name, e[i].name) == 0); /* file order = entry order */
        T_EQ_INT(info.dtype, e[i].dtype);
        T_EQ_INT(info.ndim, e[i].ndim);
        int64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) {
            T_EQ_INT(info.shape[d], e[i].shape[d]);
            numel *= e[i].shape[d];
        }
        T_EQ_INT(info.numel, numel);
        T_EQ_INT(info.bytes, (size_t)numel * elsize(e[i].dtype));
        if (info.bytes > 0) T_CHECK(memcmp(info.data, e[i].data, info.bytes) == 0);
        T_EQ_INT((uintptr_t)info.data % elsize(e[i].dtype), 0); /* aligned to its element */
        total += info.bytes;
        T_EQ_STATUS(attn_safetensors_find(f, e[i].name, &found), ATTN_OK);
        T_CHECK(found.data == info.data && found.name == info.name);
    }
    T_EQ_INT(size, 8 + n_header + total);
    T_CHECK(attn_safetensors_metadata(f, "format") != NULL && strcmp(attn_safetensors_metadata(f, "format"), "pt") == 0);
    T_CHECK(attn_safetensors_metadata(f, "note") != NULL && strcmp(attn_safetensors_metadata(f, "note"), vals[1]) == 0);
    T_CHECK(attn_safetensors_metadata(f, "other") == NULL);
    attn_safetensors_free(f);
    free(raw);

    /* no metadata, no tensors */
    T_EQ_STATUS(attn_safetensors_save(path, NULL, 0, NULL, NULL, 0), ATTN_OK);
    T_EQ_STATUS(attn_safetensors_load(path, &f), ATTN_OK);
    T_EQ_INT(attn_safetensors_count(f), 0);
    T_CHECK(attn_safetensors_metadata(f, "format") == NULL);
    attn_safetensors_free(f);
}

/* The writer's bytes, against files written out by hand from the format. */
T_TEST(safetensors_save_golden_bytes)
{
    static const float a[2] = {1.0f, 2.0f};
    attn_safetensors_entry e1[1] = {{"a", ATTN_DTYPE_F32, 1, {2}, a}};
    const char *p1 = tmp_path("golden1.safetensors");
    T_EQ_STATUS(attn_safetensors_save(p1, e1, 1, NULL, NULL, 0), ATTN_OK);
    static const char want1[] =
        "\x38\0\0\0\0\0\0\0"
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  "
        "\0\0\x80\x3f\0\0\0\x40";
    T_CHECK(same_file(p1, (const unsigned char *)want1, sizeof want1 - 1));

    /* The header lists entries in the caller's order; the data puts the
     * 8-byte elements before the 2-byte ones. */
    static const double a2 = 1.5;
    static const uint16_t b2 = 0x3F80;
    attn_safetensors_entry e2[2] = {{"b", ATTN_DTYPE_BF16, 1, {1}, &b2}, {"a", ATTN_DTYPE_F64, 0, {0}, &a2}};
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    const char *p2 = tmp_path("golden2.safetensors");
    T_EQ_STATUS(attn_safetensors_save(p2, e2, 2, k, v, 1), ATTN_OK);
    static const char want2[] =
        "\x90\0\0\0\0\0\0\0"
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[8,10]},"
        "\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}     "
        "\0\0\0\0\0\0\xf8\x3f"
        "\x80\x3f";
    T_CHECK(same_file(p2, (const unsigned char *)want2, sizeof want2 - 1));

    /* and a hand-written file with spaces padding, read back */
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load_memory(want2, sizeof want2 - 1, &f), ATTN_OK);
    float x[1];
    T_EQ_STATUS(attn_safetensors_read_f32(f, "a", 0, NULL, x), ATTN_OK);
    T_EQ_INT(x[0] == 1.5f, 1);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "b", 1, (int64_t[]){1}, x), ATTN_OK);
    T_EQ_INT(x[0] == 1.0f, 1);
    attn_safetensors_free(f);
}

/* ---- float32 conversion ------------------------------------------------------------ */

static bool same_float(float got, float want)
{
    if (isnan(want)) return isnan(got);
    return memcmp(&got, &want, sizeof got) == 0; /* bitwise: -0 is not +0 */
}

T_TEST(safetensors_read_f32_conversions)
{
    static const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                   0x8000, 0x7C00, 0xFC00, 0x3555, 0x7E00, 0x8001};
    static const float f16_want[] = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f,
                                     6.097555160522461e-05f, 6.103515625e-05f, -0.0f, INFINITY,
                                     -INFINITY, 0.333251953125f, NAN, -5.9604644775390625e-8f};
    static const uint16_t bf16[] = {0x3F80, 0xC040, 0x7F80, 0x0001, 0x4049, 0xFFC0, 0x8000};
    static const float bf16_want[] = {1.0f, -3.0f, INFINITY, 9.18354961579912115600575419705e-41f,
                                      3.140625f, NAN, -0.0f};
    static const double f64[] = {0.1, 1e300, -1e-50, 3.0, 16777217.0, 1.0000000596046448,
                                 1.0000000596046450, -1e300};
    static const float f64_want[] = {0.100000001490116119384765625f, INFINITY, -0.0f, 3.0f,
                                     16777216.0f, 1.0f, 1.00000011920928955078125f, -INFINITY};
    static const float f32[] = {1.5f, -0.0f, 3.4028234663852886e38f, 1.4e-45f};
    enum { N16 = sizeof f16 / 2, NB = sizeof bf16 / 2, N64 = sizeof f64 / 8, N32 = 4 };
    attn_safetensors_entry e[5] = {
        {"f16", ATTN_DTYPE_F16, 1, {N16}, f16},
        {"bf16", ATTN_DTYPE_BF16, 1, {NB}, bf16},
        {"f64", ATTN_DTYPE_F64, 1, {N64}, f64},
        {"f32", ATTN_DTYPE_F32, 2, {2, 2}, f32},
        {"i64", ATTN_DTYPE_I64, 1, {1}, f64},
    };
    const char *path = tmp_path("conv.safetensors");
    T_EQ_STATUS(attn_safetensors_save(path, e, 5, NULL, NULL, 0), ATTN_OK);
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load(path, &f), ATTN_OK);
    if (f == NULL) return;
    float out[16];
    const float *want[4] = {f16_want, bf16_want, f64_want, f32};
    for (int t = 0; t < 4; t++) {
        memset(out, 0x55, sizeof out);
        T_EQ_STATUS(attn_safetensors_read_f32(f, e[t].name, e[t].ndim, e[t].shape, out), ATTN_OK);
        int64_t n = e[t].shape[0] * (e[t].ndim == 2 ? e[t].shape[1] : 1);
        for (int64_t i = 0; i < n; i++)
            if (!same_float(out[i], want[t][i]))
                t_fail(__FILE__, __LINE__, "%s[%lld]: %.9g, want %.9g", e[t].name, (long long)i,
                       (double)out[i], (double)want[t][i]);
        t_checks++;
        T_EQ_INT(out[n] == out[15], 1); /* nothing written past numel */
    }
    /* shape, dtype and name are checked */
    T_EQ_STATUS(attn_safetensors_read_f32(f, "f32", 2, (int64_t[]){4, 1}, out), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "tensor 'f32' has shape [2, 2]; expected [4, 1]") != NULL);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "f32", 1, (int64_t[]){4}, out), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "f32", 3, (int64_t[]){2, 2, 1}, out), ATTN_BAD_FILE);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "i64", 1, (int64_t[]){1}, out), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "tensor 'i64' has dtype I64, which cannot be read as float32") != NULL);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "nope", 1, (int64_t[]){1}, out), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "missing tensor 'nope'") != NULL);
    attn_safetensors_free(f);
}

/* ---- the catalogue of corrupt files --------------------------------------------------- */

#define E(name, dt, shape, off) \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}"

T_TEST(safetensors_corrupt_catalogue)
{
    static const struct {
        const char *header;
        size_t data_size;
        const char *msg;
    } cases[] = {
        /* the JSON itself */
        {"{\"a\":", 0, "attn_safetensors_load_memory: header JSON: byte 5: expected a value, found the end"},
        {"{} x", 0, "header JSON: byte 3: expected the end of the text after the value, found 'x'"},
        {"[1,2]", 0, "header is not a JSON object (it must start with '{')"},
        {" {}", 0, "header is not a JSON object"},
        {"{" E("a", "F32", "[2]", "[0,8]") "," E("a", "F32", "[2]", "[8,16]") "}", 16,
         "header JSON: byte 54: duplicate key \"a\""},
        {"{\"\xff\":{}}", 0, "header JSON: byte 2: invalid UTF-8 byte 0xff"},
        {"{\"\\ud800\":{}}", 0, "header JSON: byte 2: lone high surrogate"},
        {"{\"a\x01\":{}}", 0, "header JSON: byte 3: raw control character 0x01"},
        /* entries */
        {"{\"a\":5}", 0, "tensor 'a': the entry is a number; it must be an object"},
        {"{" E("", "F32", "[2]", "[0,8]") "}", 8, "a tensor has an empty name"},
        {"{" E("a\\u0000b", "F32", "[2]", "[0,8]") "}", 8, "tensor 'a': the name contains a NUL"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a': missing field \"data_offsets\""},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing field \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing field \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}}", 8,
         "tensor 'a': unexpected field \"foo\""},
        {"{" E("a", "F8_E4M3", "[2]", "[0,2]") "}", 2, "tensor 'a': unknown dtype \"F8_E4M3\""},
        {"{" E("a", "f32", "[2]", "[0,8]") "}", 8, "tensor 'a': unknown dtype \"f32\""},
        {"{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "tensor 'a': dtype is a number; it must be a string"},
        {"{" E("a", "F32", "\"2\"", "[0,8]") "}", 8,
         "tensor 'a': shape is a string; it must be an array of integers"},
        {"{" E("a", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1,
         "tensor 'a': shape has 9 dims; at most 8 are supported"},
        {"{" E("a", "F32", "[-2]", "[0,8]") "}", 8, "tensor 'a': shape[0] is -2; it must be non-negative"},
        {"{" E("a", "F32", "[2.0]", "[0,8]") "}", 8, "tensor 'a': shape[0]: 2.0 is not an integer"},
        {"{" E("a", "F32", "[2,\"2\"]", "[0,8]") "}", 8,
         "tensor 'a': shape[1]: expected an integer, found a string"},
        {"{" E("a", "F32", "[9223372036854775808]", "[0,8]") "}", 8,
         "tensor 'a': shape[0]: 9223372036854775808 is out of the int64 range"},
        {"{" E("a", "F32", "[4294967296,4294967296]", "[0,8]") "}", 8,
         "tensor 'a': the element count of shape [4294967296, 4294967296] overflows int64"},
        {"{" E("a", "F64", "[2305843009213693952]", "[0,8]") "}", 8,
         "tensor 'a': the byte size of shape [2305843009213693952] overflows int64"},
        {"{" E("a", "F32", "[2]", "[0]") "}", 8, "tensor 'a': data_offsets must be an array of 2 integers"},
        {"{" E("a", "F32", "[2]", "{}") "}", 8, "tensor 'a': data_offsets must be an array of 2"},
        {"{" E("a", "F32", "[2]", "[-8,0]") "}", 8, "tensor 'a': data_offsets[0] is -8; it must be non-negative"},
        {"{" E("a", "F32", "[2]", "[0,8.0]") "}", 8, "tensor 'a': data_offsets[1]: 8.0 is not an integer"},
        {"{" E("a", "F32", "[2]", "[0,99999999999999999999]") "}", 8,
         "tensor 'a': data_offsets[1]: 99999999999999999999 is out of the int64 range"},
        {"{" E("a", "F32", "[2]", "[8,0]") "}", 8, "tensor 'a': data_offsets [8, 0] are reversed (begin > end)"},
        {"{" E("a", "F32", "[2]", "[0,8]") "}", 4,
         "tensor 'a': data_offsets [0, 8] end beyond the 4 bytes of data"},
        {"{" E("a", "F32", "[3]", "[0,8]") "}", 8,
         "tensor 'a': data_offsets [0, 8] hold 8 bytes but F32 shape [3] needs 12"},
        {"{" E("a", "BF16", "[2,2]", "[0,4]") "}", 4,
         "tensor 'a': data_offsets [0, 4] hold 4 bytes but BF16 shape [2, 2] needs 8"},
        /* the layout */
        {"{" E("a", "F32", "[2]", "[0,8]") "," E("b", "F32", "[2]", "[4,12]") "}", 16,
         "tensors 'a' and 'b' overlap (data bytes [4, 8))"},
        {"{" E("a", "F32", "[2]", "[0,8]") "," E("z", "F32", "[0]", "[4,4]") "}", 8,
         "tensors 'a' and 'z' overlap"},
        {"{" E("a", "U8", "[2]", "[0,2]") "," E("b", "U8", "[2]", "[1,3]") "}", 3,
         "tensors 'a' and 'b' overlap (data bytes [1, 2))"},
        {"{" E("b", "F32", "[2]", "[12,20]") "," E("a", "F32", "[2]", "[0,8]") "}", 20,
         "data bytes [8, 12) between tensors 'a' and 'b' belong to no tensor"},
        {"{" E("a", "F32", "[2]", "[4,12]") "}", 12, "data bytes [0, 4) before tensor 'a' belong to no tensor"},
        {"{" E("a", "F32", "[2]", "[0,8]") "}", 12,
         "data bytes [8, 12) after the last tensor 'a' belong to no tensor"},
        {"{}", 4, "data bytes [0, 4) belong to no tensor (the header lists none)"},
        /* __metadata__ */
        {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of \"k\" is a number; it must be a string"},
        {"{\"__metadata__\":[\"x\"]}", 0, "__metadata__ is an array; it must be an object of strings"},
        {"{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, "__metadata__ value of \"k\" contains a NUL"},
        {"{\"__metadata__\":{\"k\\u0000\":\"a\"}}", 0, "a __metadata__ key contains a NUL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        unsigned char *img = make_image(cases[i].header, strlen(cases[i].header), cases[i].data_size, &size);
        attn_safetensors *f = NULL;
        attn_status st = attn_safetensors_load_memory(img, size, &f);
        t_checks++;
        if (st != ATTN_BAD_FILE || f != NULL || strstr(attn_last_error(), cases[i].msg) == NULL)
            t_fail(__FILE__, __LINE__, "case %zu: got %s \"%s\", want ATTN_BAD_FILE \"%s\"", i,
                   attn_status_name(st), attn_last_error(), cases[i].msg);
        attn_safetensors_free(f);
        free(img);
    }
}

T_TEST(safetensors_corrupt_lengths_and_nesting)
{
    attn_safetensors *f = NULL;
    unsigned char raw[24] = {0};
    T_EQ_STATUS(attn_safetensors_load_memory(raw, 5, &f), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "the file is 5 bytes; too short for the 8-byte header length") != NULL);
    static const struct {
        uint64_t n;
        const char *msg;
    } lens[] = {
        {1000, "header length 1000 is larger than the 16 bytes after it"},
        {17, "header length 17 is larger than the 16 bytes after it"},
        {100000001, "header length 100000001 exceeds the limit of 100000000 bytes"},
        {UINT64_MAX, "header length 18446744073709551615 exceeds the limit"},
        {0, "header is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int b = 0; b < 8; b++) raw[b] = (unsigned char)(lens[i].n >> (8 * b));
        memcpy(raw + 8, "{}              ", 16);
        T_EQ_STATUS(attn_safetensors_load_memory(raw, sizeof raw, &f), ATTN_BAD_FILE);
        T_CHECK(strstr(attn_last_error(), lens[i].msg) != NULL);
    }
    /* the same 16-byte header is fine when its length is right */
    raw[0] = 16;
    memset(raw + 1, 0, 7);
    T_EQ_STATUS(attn_safetensors_load_memory(raw, sizeof raw, &f), ATTN_OK);
    attn_safetensors_free(f);

    /* deep nesting inside __metadata__ */
    char header[400] = "{\"__metadata__\":{\"k\":";
    for (int i = 0; i < 70; i++) strcat(header, "[");
    for (int i = 0; i < 70; i++) strcat(header, "]");
    strcat(header, "}}");
    size_t size;
    unsigned char *img = make_image(header, strlen(header), 0, &size);
    T_EQ_STATUS(attn_safetensors_load_memory(img, size, &f), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "header JSON: byte 83: arrays and objects nested deeper than 64 levels") != NULL);
    free(img);
}

T_TEST(safetensors_valid_edge_cases)
{
    static const struct {
        const char *header;
        size_t data_size;
        int64_t count;
    } cases[] = {
        {"{}", 0, 0},
        {"{\"__metadata__\":{}}       ", 0, 0},
        {"{" E("z", "F32", "[0,3]", "[0,0]") "," E("b", "F32", "[2]", "[0,8]") "}", 8, 2},
        {"{" E("a", "F32", "[2]", "[0,8]") "," E("z", "U8", "[0]", "[8,8]") "}", 8, 2},
        {"{" E("s", "F64", "[]", "[0,8]") "}", 8, 1},
        {"{" E("b", "F32", "[2]", "[8,16]") ",\"__metadata__\":{\"k\":\"v\"}," E("a", "I32", "[2]", "[0,8]") "}", 16, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        unsigned char *img = make_image(cases[i].header, strlen(cases[i].header), cases[i].data_size, &size);
        attn_safetensors *f = NULL;
        T_EQ_STATUS(attn_safetensors_load_memory(img, size, &f), ATTN_OK);
        T_EQ_INT(attn_safetensors_count(f), cases[i].count);
        attn_safetensors_free(f);
        free(img);
    }
    /* header order survives, and lookup skips __metadata__ */
    const char *h = "{" E("b", "F32", "[2]", "[8,16]") ",\"__metadata__\":{\"k\":\"v\"}," E("a", "I32", "[2]", "[0,8]") "}";
    size_t size;
    unsigned char *img = make_image(h, strlen(h), 16, &size);
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load_memory(img, size, &f), ATTN_OK);
    if (f != NULL) {
        attn_safetensors_info i0, i1, fa, fb;
        T_EQ_STATUS(attn_safetensors_get(f, 0, &i0), ATTN_OK);
        T_EQ_STATUS(attn_safetensors_get(f, 1, &i1), ATTN_OK);
        T_CHECK(strcmp(i0.name, "b") == 0 && strcmp(i1.name, "a") == 0);
        T_EQ_STATUS(attn_safetensors_find(f, "a", &fa), ATTN_OK);
        T_EQ_STATUS(attn_safetensors_find(f, "b", &fb), ATTN_OK);
        T_CHECK(fa.data == i1.data && fb.data == i0.data);
        T_CHECK(memcmp(fb.data, img + 8 + strlen(h) + 8, 8) == 0); /* b is bytes [8, 16) */
        T_EQ_STATUS(attn_safetensors_find(f, "__metadata__", &fa), ATTN_BAD_FILE);
        T_CHECK(strcmp(attn_safetensors_metadata(f, "k"), "v") == 0);
    }
    attn_safetensors_free(f);
    free(img);
}

/* ---- sweeps ----------------------------------------------------------------------------- */

T_TEST(safetensors_truncation_sweep)
{
    size_t size = 0;
    unsigned char *full = small_file(&size);
    if (full == NULL) return;
    long clean = 0, leaks = 0;
    for (size_t len = 0; len < size; len++) {
        unsigned char *cut = malloc(len + 1); /* exact size: ASan sees any overread */
        memcpy(cut, full, len);
        t_counting c = {0, 0, 0};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_safetensors *f = NULL;
        attn_status st = attn_safetensors_load_memory(cut, len, &f);
        attn_safetensors_free(f);
        attn_set_allocator(NULL, NULL, NULL);
        clean += st == ATTN_BAD_FILE && f == NULL && attn_last_error()[0] != '\0';
        leaks += c.live != 0;
        free(cut);
    }
    T_EQ_INT(clean, (long)size);
    T_EQ_INT(leaks, 0);
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load_memory(full, size, &f), ATTN_OK);
    attn_safetensors_free(f);
    /* and through a real file */
    const char *path = tmp_path("cut.safetensors");
    write_all(path, full, size - 1);
    T_EQ_STATUS(attn_safetensors_load(path, &f), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "after it") != NULL || strstr(attn_last_error(), "beyond") != NULL);
    free(full);
}

/* After a successful open of img: the tensors tile the data section
 * exactly, with the bytes of img's data section, and read_f32 works. */
static bool consistent(const attn_safetensors *f, const unsigned char *img, size_t size)
{
    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--) n_header = n_header << 8 | img[i];
    size_t data_size = size - 8 - (size_t)n_header, total = 0;
    const unsigned char *lo = NULL;
    for (int64_t i = 0; i < attn_safetensors_count(f); i++) {
        attn_safetensors_info info;
        if (attn_safetensors_get(f, i, &info) != ATTN_OK) return false;
        if (info.bytes != (size_t)info.numel * elsize(info.dtype)) return false;
        total += info.bytes;
        if (info.bytes > 0 && (lo == NULL || (const unsigned char *)info.data < lo)) lo = info.data;
        float *buf = malloc((size_t)info.numel * sizeof(float) + 1);
        attn_status st = attn_safetensors_read_f32(f, info.name, info.ndim, info.shape, buf);
        free(buf);
        bool is_float = info.dtype == ATTN_DTYPE_F32 || info.dtype == ATTN_DTYPE_F16 ||
                        info.dtype == ATTN_DTYPE_BF16 || info.dtype == ATTN_DTYPE_F64;
        if (st != (is_float ? ATTN_OK : ATTN_BAD_FILE)) return false;
    }
    if (total != data_size) return false;
    return data_size == 0 || memcmp(lo, img + 8 + n_header, data_size) == 0;
}

T_TEST(safetensors_bitflip_sweep)
{
    size_t size = 0;
    unsigned char *img = small_file(&size);
    if (img == NULL) return;
    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--) n_header = n_header << 8 | img[i];
    long opened = 0, rejected = 0, wrong = 0, leaks = 0;
    for (size_t bit = 0; bit < 8 * (8 + (size_t)n_header); bit++) {
        img[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        t_counting c = {0, 0, 0};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_safetensors *f = NULL;
        attn_status st = attn_safetensors_load_memory(img, size, &f);
        if (st == ATTN_OK) {
            opened++;
            wrong += !consistent(f, img, size);
        } else {
            rejected++;
            wrong += st != ATTN_BAD_FILE || f != NULL;
        }
        attn_safetensors_free(f);
        attn_set_allocator(NULL, NULL, NULL);
        leaks += c.live != 0;
        img[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    T_EQ_INT(wrong, 0);
    T_EQ_INT(leaks, 0);
    T_CHECK(opened > 0);  /* e.g. flips inside the metadata value */
    T_CHECK(rejected > opened);
    if (t_verbose) printf("  bit flips: %ld opened, %ld rejected\n", opened, rejected);
    free(img);
}

/* ---- arguments ---------------------------------------------------------------------------- */

T_TEST(safetensors_argument_checks)
{
    size_t size = 0;
    unsigned char *img = small_file(&size);
    if (img == NULL) return;
    attn_safetensors *f = NULL;
    attn_safetensors_info info;
    float dst[8];
    T_EQ_STATUS(attn_safetensors_load(NULL, &f), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_load(tmp_path("small.safetensors"), NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_load(tmp_path("no/such/file"), &f), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "cannot open") != NULL);
    T_EQ_STATUS(attn_safetensors_load(t_tmpdir(), &f), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "not a regular file") != NULL);
    T_EQ_STATUS(attn_safetensors_load_memory(NULL, 5, &f), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_load_memory(img, size, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_load_memory(NULL, 0, &f), ATTN_BAD_FILE);
    T_CHECK(f == NULL);
    T_EQ_INT(attn_safetensors_count(NULL), 0);
    attn_safetensors_free(NULL);
    T_CHECK(attn_safetensors_metadata(NULL, "format") == NULL);

    T_EQ_STATUS(attn_safetensors_load_memory(img, size, &f), ATTN_OK);
    if (f == NULL) return;
    T_CHECK(attn_safetensors_metadata(f, NULL) == NULL);
    T_EQ_STATUS(attn_safetensors_get(NULL, 0, &info), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_get(f, 0, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_get(f, -1, &info), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_safetensors_get(f, 3, &info), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "'index' is 3; the file has 3 tensors") != NULL);
    T_EQ_STATUS(attn_safetensors_find(NULL, "w", &info), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_find(f, NULL, &info), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_find(f, "w", NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_find(f, "W", &info), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "attn_safetensors_find: missing tensor 'W'") != NULL);
    T_EQ_STATUS(attn_safetensors_read_f32(NULL, "w", 2, (int64_t[]){2, 3}, dst), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_read_f32(f, NULL, 2, (int64_t[]){2, 3}, dst), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "w", 2, NULL, dst), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "w", 2, (int64_t[]){2, 3}, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "w", -1, (int64_t[]){2, 3}, dst), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "w", 9, (int64_t[9]){2, 3}, dst), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_safetensors_read_f32(f, "w", 2, (int64_t[]){2, 3}, dst), ATTN_OK);
    T_EQ_INT(dst[2] == 3.5f, 1);
    attn_safetensors_free(f);
    free(img);

    /* attn_safetensors_save: every check, and nothing is created by a failed call */
    static const float x[4] = {0};
    const char *path = tmp_path("args.safetensors");
    const char *k1[1] = {"k"}, *v1[1] = {"v"}, *kn[1] = {NULL}, *kd[2] = {"k", "k"};
    const char *kbad[1] = {"\xff"};
    const struct {
        attn_safetensors_entry e[2];
        int64_t n;
        const char *const *keys, *const *vals;
        int64_t n_meta;
        attn_status want;
        const char *msg;
    } cases[] = {
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, -1, NULL, NULL, 0, ATTN_BAD_PARAM, "'n' is -1"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, 1, NULL, NULL, -1, ATTN_BAD_PARAM, "'n_meta' is -1"},
        {{{NULL, ATTN_DTYPE_F32, 1, {4}, x}}, 1, NULL, NULL, 0, ATTN_NULL_ARG, "entries[0].name is NULL"},
        {{{"", ATTN_DTYPE_F32, 1, {4}, x}}, 1, NULL, NULL, 0, ATTN_BAD_PARAM, "entries[0].name \"\""},
        {{{"__metadata__", ATTN_DTYPE_F32, 1, {4}, x}}, 1, NULL, NULL, 0, ATTN_BAD_PARAM, "reserved"},
        {{{"\xc3", ATTN_DTYPE_F32, 1, {4}, x}}, 1, NULL, NULL, 0, ATTN_BAD_PARAM, "not UTF-8"},
        {{{"a", (attn_dtype)99, 1, {4}, x}}, 1, NULL, NULL, 0, ATTN_BAD_DTYPE, "entries[0].dtype is 99"},
        {{{"a", ATTN_DTYPE_F32, 9, {4}, x}}, 1, NULL, NULL, 0, ATTN_BAD_DIM, "entries[0].ndim is 9"},
        {{{"a", ATTN_DTYPE_F32, -1, {4}, x}}, 1, NULL, NULL, 0, ATTN_BAD_DIM, "entries[0].ndim is -1"},
        {{{"a", ATTN_DTYPE_F32, 2, {4, -1}, x}}, 1, NULL, NULL, 0, ATTN_BAD_DIM, "entries[0].shape[1] is -1"},
        {{{"a", ATTN_DTYPE_F32, 2, {(int64_t)1 << 62, 2}, x}}, 1, NULL, NULL, 0, ATTN_OVERFLOW, "overflows"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}, {"b", ATTN_DTYPE_F32, 1, {4}, NULL}}, 2, NULL, NULL, 0,
         ATTN_NULL_ARG, "entries[1].data is NULL"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}, {"a", ATTN_DTYPE_U8, 1, {4}, x}}, 2, NULL, NULL, 0,
         ATTN_BAD_PARAM, "two entries are named \"a\""},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, 1, NULL, v1, 1, ATTN_NULL_ARG, "'meta_keys' is NULL"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, 1, k1, NULL, 1, ATTN_NULL_ARG, "'meta_values' is NULL"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, 1, kn, v1, 1, ATTN_NULL_ARG, "meta_keys[0] is NULL"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, 1, kd, kd, 2, ATTN_BAD_PARAM, "metadata key \"k\" appears twice"},
        {{{"a", ATTN_DTYPE_F32, 1, {4}, x}}, 1, kbad, v1, 1, ATTN_BAD_PARAM, "not UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_status st = attn_safetensors_save(path, cases[i].e, cases[i].n, cases[i].keys, cases[i].vals,
                                      cases[i].n_meta);
        t_checks++;
        if (st != cases[i].want || strstr(attn_last_error(), cases[i].msg) == NULL)
            t_fail(__FILE__, __LINE__, "save case %zu: got %s \"%s\", want %s \"%s\"", i,
                   attn_status_name(st), attn_last_error(), attn_status_name(cases[i].want),
                   cases[i].msg);
        T_CHECK(!exists(path));
    }
    T_EQ_STATUS(attn_safetensors_save(NULL, cases[0].e, 1, NULL, NULL, 0), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_safetensors_save("", cases[0].e, 1, NULL, NULL, 0), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_safetensors_save(path, NULL, 1, NULL, NULL, 0), ATTN_NULL_ARG);
    T_CHECK(!exists(path));
}

/* ---- atomic saving ---------------------------------------------------------------------- */

T_TEST(safetensors_save_is_atomic)
{
    static const float a[4] = {1, 2, 3, 4};
    attn_safetensors_entry ea[1] = {{"a", ATTN_DTYPE_F32, 1, {4}, a}};
    const char *path = tmp_path("atomic.safetensors"), *tmp = tmp_path("atomic.safetensors.tmp");
    T_EQ_STATUS(attn_safetensors_save(path, ea, 1, NULL, NULL, 0), ATTN_OK);
    size_t old_size = 0;
    unsigned char *old = read_all(path, &old_size);
    if (old == NULL) return;

    /* an entry with NULL data: refused before anything is written */
    attn_safetensors_entry bad[2] = {{"a", ATTN_DTYPE_F32, 1, {4}, a}, {"b", ATTN_DTYPE_F32, 1, {4}, NULL}};
    T_EQ_STATUS(attn_safetensors_save(path, bad, 2, NULL, NULL, 0), ATTN_NULL_ARG);
    T_CHECK(same_file(path, old, old_size));
    T_CHECK(!exists(tmp));

    /* the write itself fails midway: a file-size limit of 4 KiB against
     * 1 MiB of data (works for root too, unlike a read-only directory) */
    enum { BIG = 1 << 18 };
    float *big = calloc(BIG, sizeof(float));
    attn_safetensors_entry eb[1] = {{"big", ATTN_DTYPE_F32, 1, {BIG}, big}};
    struct rlimit lim, saved;
    T_EQ_INT(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    T_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    attn_status st = attn_safetensors_save(path, eb, 1, NULL, NULL, 0);
    T_EQ_INT(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    T_EQ_STATUS(st, ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "writing") != NULL);
    T_CHECK(same_file(path, old, old_size));
    T_CHECK(!exists(tmp));

    /* path is a directory: refused before anything is written */
    const char *dir = tmp_path("a_directory"), *dir_tmp = tmp_path("a_directory.tmp");
    T_EQ_INT(mkdir(dir, 0700), 0);
    T_EQ_STATUS(attn_safetensors_save(dir, ea, 1, NULL, NULL, 0), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "is a directory, not a regular file") != NULL);
    struct stat sb;
    T_CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    T_CHECK(!exists(dir_tmp));

    /* the temporary cannot be created: no such directory */
    T_EQ_STATUS(attn_safetensors_save(tmp_path("missing/x.safetensors"), ea, 1, NULL, NULL, 0), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "cannot create") != NULL);

    /* a stale temporary is replaced, and the save goes through */
    write_all(tmp, "stale", 5);
    T_EQ_STATUS(attn_safetensors_save(path, eb, 1, NULL, NULL, 0), ATTN_OK);
    T_CHECK(!exists(tmp));
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load(path, &f), ATTN_OK);
    T_EQ_INT(attn_safetensors_count(f), 1);
    attn_safetensors_info info;
    T_EQ_STATUS(attn_safetensors_find(f, "big", &info), ATTN_OK);
    attn_safetensors_free(f);
    free(big);
    free(old);
}

/* Files that are not regular: a FIFO to read from, or to write over (also
 * through a symbolic link), is refused at once and left as it is; a link
 * to a regular file is followed and the file replaced; an over-long path
 * is refused before anything is created. */
T_TEST(safetensors_special_files)
{
    static const float a[4] = {1, 2, 3, 4};
    attn_safetensors_entry ea[1] = {{"a", ATTN_DTYPE_F32, 1, {4}, a}};
    const char *fifo = tmp_path("special.fifo"), *to_fifo = tmp_path("special-to-fifo");
    T_EQ_INT(mkfifo(fifo, 0600), 0);
    T_EQ_INT(symlink(fifo, to_fifo), 0);
    attn_safetensors *f = NULL;
    alarm(20); /* a blocking open would hang: the alarm ends the run */
    T_EQ_STATUS(attn_safetensors_load(fifo, &f), ATTN_IO);
    T_CHECK(f == NULL && strstr(attn_last_error(), "it is a FIFO, not a regular file") != NULL);
    alarm(0);
    for (int via_link = 0; via_link < 2; via_link++) {
        T_EQ_STATUS(attn_safetensors_save(via_link ? to_fifo : fifo, ea, 1, NULL, NULL, 0), ATTN_IO);
        T_CHECK(strstr(attn_last_error(), "is a FIFO, not a regular file; it is left untouched") != NULL);
        struct stat sb;
        T_CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
        T_CHECK(lstat(to_fifo, &sb) == 0 && S_ISLNK(sb.st_mode));
        T_CHECK(!exists(tmp_path("special.fifo.tmp")) && !exists(tmp_path("special-to-fifo.tmp")));
    }
    /* a link to a regular file: the file is replaced, the link stays */
    const char *real = tmp_path("special-real.safetensors"), *link = tmp_path("special-link");
    write_all(real, "old", 3);
    T_EQ_INT(symlink("special-real.safetensors", link), 0);
    T_EQ_STATUS(attn_safetensors_save(link, ea, 1, NULL, NULL, 0), ATTN_OK);
    struct stat sb;
    T_CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    T_EQ_STATUS(attn_safetensors_load(real, &f), ATTN_OK);
    T_EQ_INT(attn_safetensors_count(f), 1);
    attn_safetensors_free(f);
    /* a 5000-byte path: refused, nothing created */
    char path[5100];
    int n = snprintf(path, sizeof path, "%s/deep", t_tmpdir());
    while (n < 5000) n += snprintf(path + n, sizeof path - (size_t)n, "/%s", "abcdefghij");
    T_EQ_STATUS(attn_safetensors_save(path, ea, 1, NULL, NULL, 0), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "attn_safetensors_save: argument 'path' is") != NULL);
    T_CHECK(!exists(tmp_path("deep")));
}

/* ---- out of memory ------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *img;
    size_t size;
    const char *path;
} oom_arg;

static attn_status op_open_memory(void *p)
{
    const oom_arg *a = p;
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load_memory(a->img, a->size, &f);
    if (st == ATTN_OK && attn_safetensors_count(f) != 3) st = ATTN_BAD_FILE;
    attn_safetensors_free(f);
    return st;
}

static attn_status op_open_file(void *p)
{
    const oom_arg *a = p;
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(a->path, &f);
    attn_safetensors_free(f);
    return st;
}

static attn_status op_save(void *p)
{
    const oom_arg *a = p;
    static const float w[2] = {1, 2};
    attn_safetensors_entry e[2] = {{"w", ATTN_DTYPE_F32, 1, {2}, w}, {"v", ATTN_DTYPE_U8, 1, {3}, "xyz"}};
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    attn_status st = attn_safetensors_save(a->path, e, 2, k, v, 1);
    /* a failed save leaves the previous file (the small one) unchanged */
    if (st != ATTN_OK && !same_file(a->path, a->img, a->size)) st = ATTN_IO;
    return st;
}

T_TEST(safetensors_out_of_memory)
{
    size_t size = 0;
    unsigned char *img = small_file(&size);
    if (img == NULL) return;
    const char *path = tmp_path("oom.safetensors");
    write_all(path, img, size);
    oom_arg a = {img, size, path};
    T_EQ_INT(t_oom_sweep(op_open_memory, &a), 5); /* copy, tree, scratch, file, sort */
    T_EQ_INT(t_oom_sweep(op_open_file, &a), 5);
    T_EQ_INT(t_oom_sweep(op_save, &a), 4);        /* plan, header, target and temporary paths */
    T_CHECK(!exists(tmp_path("oom.safetensors.tmp")));
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load(path, &f), ATTN_OK);
    T_EQ_INT(attn_safetensors_count(f), 2);
    attn_safetensors_free(f);
    free(img);
}
