/* attn/gguf.h - GGUF model files (the format of llama.cpp and ggml), read as
 * untrusted input (library attn_formats: libc only). Part of the formats
 * tier; the byte-level BPE tokenizer (attn/text.h) and the models read
 * their vocabularies, hyper-parameters and weights from it.
 *
 * The format, little-endian, versions 2 and 3:
 *   "GGUF" | uint32 version | uint64 n_tensors | uint64 n_kv
 *   n_kv metadata pairs:  string key | uint32 value type | value
 *   n_tensors infos:      string name | uint32 n_dims | uint64 dims[n_dims]
 *                         | uint32 tensor type | uint64 offset
 *   padding up to a multiple of the alignment (the metadata value
 *   "general.alignment", a UINT32, else 32), then the data section; a
 *   tensor's data starts at data_offset + its offset.
 * A string is a uint64 byte length and the bytes (no NUL); an array is a
 * uint32 element type, a uint64 count and the elements, which may be
 * arrays themselves. dims[0] varies fastest (ggml's order): a weight of
 * dims [n_in, n_out] is the row-major matrix [n_out][n_in], one row of
 * n_in elements per output.
 *
 * Loading checks, before anything is used or allocated, and fails with
 * ATTN_BAD_FILE naming what is wrong and where (a byte offset, a key, a
 * tensor):
 *   - the magic, and the version (2 or 3; 1 and big-endian files are
 *     named as such);
 *   - every count and length against the bytes left in the file (an array
 *     of n elements needs at least n times its smallest element), so that
 *     nothing is allocated for data the file cannot hold;
 *   - keys and tensor names: 1 to ATTN_GGUF_MAX_KEY_BYTES /
 *     ATTN_GGUF_MAX_NAME_BYTES bytes of UTF-8 without NUL, each unique;
 *   - value types (0-12), BOOL bytes (0 or 1), array nesting (at most
 *     ATTN_GGUF_MAX_DEPTH levels);
 *   - general.alignment: a UINT32 power of two;
 *   - tensors: at most ATTN_GGUF_MAX_DIMS dims, each below 2^63 with an
 *     element count that fits int64_t, a known tensor type, a first dim
 *     that is a whole number of blocks, an offset that is a multiple of the
 *     alignment, data inside the file, no two tensors sharing a byte.
 * Tensor types that attn cannot convert (Q6_K, IQ2_XS, ...) load, and are
 * rejected with ATTN_UNSUPPORTED, by name, only when read.
 *
 * A loaded file is immutable: any number of threads may read it at once.
 * Strings and infos it returns live as long as it does. Errors: statuses of
 * attn/attn.h, the detail in attn_last_error(); on error nothing is written
 * and nothing leaks.
 */
#ifndef ATTN_GGUF_H
#define ATTN_GGUF_H

#include <attn/attn.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { ATTN_GGUF_MAX_DIMS = 4, ATTN_GGUF_MAX_DEPTH = 8 };
#define ATTN_GGUF_MAX_KEY_BYTES 65535
#define ATTN_GGUF_MAX_NAME_BYTES 1024

/* Metadata value types, numbered as in the file. */
typedef enum attn_gguf_type {
    ATTN_GGUF_TYPE_UINT8 = 0,
    ATTN_GGUF_TYPE_INT8 = 1,
    ATTN_GGUF_TYPE_UINT16 = 2,
    ATTN_GGUF_TYPE_INT16 = 3,
    ATTN_GGUF_TYPE_UINT32 = 4,
    ATTN_GGUF_TYPE_INT32 = 5,
    ATTN_GGUF_TYPE_FLOAT32 = 6,
    ATTN_GGUF_TYPE_BOOL = 7,
    ATTN_GGUF_TYPE_STRING = 8,
    ATTN_GGUF_TYPE_ARRAY = 9,
    ATTN_GGUF_TYPE_UINT64 = 10,
    ATTN_GGUF_TYPE_INT64 = 11,
    ATTN_GGUF_TYPE_FLOAT64 = 12
} attn_gguf_type;

/* "UINT8", ..., "FLOAT64"; "?" outside the enum. */
ATTN_API const char *attn_gguf_type_name(attn_gguf_type t);

/* Tensor types (ggml_type): X(name, value, elements per block, bytes per
 * block). attn converts F32, F16, BF16, Q8_0 and Q4_1 to float32:
 *   Q8_0 block: f16 d, int8 q[32];          x[j] = d * q[j]
 *   Q4_1 block: f16 d, f16 m, uint8 q[16];  x[j] = d * (q[j] & 15) + m,
 *                                           x[j + 16] = d * (q[j] >> 4) + m
 * (j in [0, 16); the products are rounded to float32 before the sum). The
 * other types are known by name and size only. */
#define ATTN_GGUF_TENSOR_TYPE_TABLE(X) \
    X(F32, 0, 1, 4)                    \
    X(F16, 1, 1, 2)                    \
    X(Q4_0, 2, 32, 18)                 \
    X(Q4_1, 3, 32, 20)                 \
    X(Q5_0, 6, 32, 22)                 \
    X(Q5_1, 7, 32, 24)                 \
    X(Q8_0, 8, 32, 34)                 \
    X(Q8_1, 9, 32, 40)                 \
    X(Q2_K, 10, 256, 84)               \
    X(Q3_K, 11, 256, 110)              \
    X(Q4_K, 12, 256, 144)              \
    X(Q5_K, 13, 256, 176)              \
    X(Q6_K, 14, 256, 210)              \
    X(Q8_K, 15, 256, 292)              \
    X(IQ2_XXS, 16, 256, 66)            \
    X(IQ2_XS, 17, 256, 74)             \
    X(IQ3_XXS, 18, 256, 98)            \
    X(IQ1_S, 19, 256, 50)              \
    X(IQ4_NL, 20, 32, 18)              \
    X(IQ3_S, 21, 256, 110)             \
    X(IQ2_S, 22, 256, 82)              \
    X(IQ4_XS, 23, 256, 136)            \
    X(I8, 24, 1, 1)                    \
    X(I16, 25, 1, 2)                   \
    X(I32, 26, 1, 4)                   \
    X(I64, 27, 1, 8)                   \
    X(F64, 28, 1, 8)                   \
    X(IQ1_M, 29, 256, 56)              \
    X(BF16, 30, 1, 2)                  \
    X(TQ1_0, 34, 256, 54)              \
    X(TQ2_0, 35, 256, 66)              \
    X(MXFP4, 39, 32, 17)               \
    X(NVFP4, 40, 64, 36)               \
    X(Q1_0, 41, 128, 18)

typedef enum attn_gguf_tensor_type {
#define ATTN__GGUF_TENSOR_ENUM(name, value, block, bytes) ATTN_GGUF_TENSOR_TYPE_##name = value,
    ATTN_GGUF_TENSOR_TYPE_TABLE(ATTN__GGUF_TENSOR_ENUM)
#undef ATTN__GGUF_TENSOR_ENUM
} attn_gguf_tensor_type;

/* "Q4_1", ...; NULL for a value outside the table. */
ATTN_API const char *attn_gguf_tensor_type_name(attn_gguf_tensor_type t);
/* The elements and bytes of one block of type t; ATTN_BAD_PARAM for a
 * value outside the table. */
ATTN_API attn_status attn_gguf_tensor_type_block(attn_gguf_tensor_type t, int64_t *block_elems,
                                                 size_t *block_bytes);

typedef struct attn_gguf attn_gguf;
/* An array value inside a file (owned by the file). */
typedef struct attn_gguf_value attn_gguf_value;

/* Maps the file read-only (mmap: the bytes are not copied) and validates
 * it. ATTN_IO if it cannot be opened, is not a regular file or cannot be
 * mapped. */
ATTN_API attn_status attn_gguf_load(const char *path, attn_gguf **out);
/* The same from size bytes in memory (copied; data may be freed after). */
ATTN_API attn_status attn_gguf_load_memory(const void *data, size_t size, attn_gguf **out);
ATTN_API void attn_gguf_free(attn_gguf *g); /* accepts NULL */

/* The version (2 or 3), the alignment and the byte offset of the data
 * section; 0 for NULL. */
ATTN_API uint32_t attn_gguf_version(const attn_gguf *g);
ATTN_API size_t attn_gguf_alignment(const attn_gguf *g);
ATTN_API size_t attn_gguf_data_offset(const attn_gguf *g);

/* ---- metadata ---------------------------------------------------------------- */

/* Number of key-value pairs (0 for NULL). */
ATTN_API int64_t attn_gguf_kv_count(const attn_gguf *g);
/* Pair index in [0, count), in file order: its key (NUL-terminated, owned
 * by g) and value type. ATTN_BAD_PARAM for an index out of range. */
ATTN_API attn_status attn_gguf_kv(const attn_gguf *g, int64_t index, const char **key,
                                  attn_gguf_type *type);
/* The index of key, or -1 if the file lacks it (or an argument is NULL). */
ATTN_API int64_t attn_gguf_kv_index(const attn_gguf *g, const char *key);

/* Typed getters by key. A missing key, or a value of another type, is
 * ATTN_BAD_FILE naming the key and both types:
 *   _string  STRING: *s is NUL-terminated (owned by g; a NUL inside the
 *            value ends it early, *len is the full length; len may be NULL)
 *   _uint    any integer type holding a value >= 0
 *   _int     any integer type holding a value that fits int64_t
 *   _float   FLOAT32 or FLOAT64 (FLOAT32 converted exactly)
 *   _bool    BOOL: 0 or 1
 *   _array   ARRAY: a handle for the array functions below */
ATTN_API attn_status attn_gguf_get_string(const attn_gguf *g, const char *key, const char **s,
                                          size_t *len);
ATTN_API attn_status attn_gguf_get_uint(const attn_gguf *g, const char *key, uint64_t *out);
ATTN_API attn_status attn_gguf_get_int(const attn_gguf *g, const char *key, int64_t *out);
ATTN_API attn_status attn_gguf_get_float(const attn_gguf *g, const char *key, double *out);
ATTN_API attn_status attn_gguf_get_bool(const attn_gguf *g, const char *key, int *out);
ATTN_API attn_status attn_gguf_get_array(const attn_gguf *g, const char *key,
                                         const attn_gguf_value **array);

/* An array's element count and element type (-1 and ATTN_GGUF_TYPE_ARRAY
 * for NULL). */
ATTN_API int64_t attn_gguf_array_count(const attn_gguf_value *array);
ATTN_API attn_gguf_type attn_gguf_array_type(const attn_gguf_value *array);
/* Element index of an array, with the conversions of the getters above; an
 * element of another type is ATTN_BAD_FILE naming the key, an index out of
 * range ATTN_BAD_PARAM. Strings in arrays are not copied: *s points into
 * the file's bytes and is NOT NUL-terminated (use *len). */
ATTN_API attn_status attn_gguf_array_string(const attn_gguf_value *array, int64_t index,
                                            const char **s, size_t *len);
ATTN_API attn_status attn_gguf_array_uint(const attn_gguf_value *array, int64_t index,
                                          uint64_t *out);
ATTN_API attn_status attn_gguf_array_int(const attn_gguf_value *array, int64_t index,
                                         int64_t *out);
ATTN_API attn_status attn_gguf_array_float(const attn_gguf_value *array, int64_t index,
                                           double *out);
ATTN_API attn_status attn_gguf_array_bool(const attn_gguf_value *array, int64_t index, int *out);
ATTN_API attn_status attn_gguf_array_array(const attn_gguf_value *array, int64_t index,
                                           const attn_gguf_value **out);

/* ---- tensors -------------------------------------------------------------------- */

/* Number of tensors (0 for NULL). */
ATTN_API int64_t attn_gguf_tensor_count(const attn_gguf *g);

typedef struct attn_gguf_tensor_info {
    const char *name;           /* owned by the file */
    attn_gguf_tensor_type type;
    int n_dims;                 /* 0 to ATTN_GGUF_MAX_DIMS */
    int64_t dims[ATTN_GGUF_MAX_DIMS]; /* dims[0] fastest; 1 beyond n_dims */
    int64_t numel;              /* product of the dims */
    int64_t n_rows;             /* numel / dims[0]: rows of dims[0] elements */
    size_t row_bytes;           /* bytes of one row (dims[0] / block * block bytes) */
    size_t bytes;               /* n_rows * row_bytes */
    size_t offset;              /* of the data from the start of the file */
    const void *data;           /* the bytes, inside the file image */
} attn_gguf_tensor_info;

/* Tensor index in [0, count), in file order; ATTN_BAD_PARAM if out of range. */
ATTN_API attn_status attn_gguf_tensor_get(const attn_gguf *g, int64_t index,
                                          attn_gguf_tensor_info *info);
/* By name: ATTN_BAD_FILE "missing tensor <name>" if absent. */
ATTN_API attn_status attn_gguf_tensor_find(const attn_gguf *g, const char *name,
                                           attn_gguf_tensor_info *info);

/* dst [n_rows][t->dims[0]] = rows [row0, row0 + n_rows) of tensor t as
 * float32 (for a matrix, row r holds the weights of output r). ATTN_BAD_PARAM
 * if the rows are not inside [0, t->n_rows); ATTN_UNSUPPORTED naming the
 * type if attn cannot convert it. */
ATTN_API attn_status attn_gguf_read_rows(const attn_gguf_tensor_info *t, int64_t row0,
                                         int64_t n_rows, float *dst);
/* dst [n] = the n elements at src (n / block elements blocks of type type,
 * as laid out in a file) as float32. n must be a multiple of the block size
 * (ATTN_BAD_PARAM); ATTN_UNSUPPORTED for a type attn cannot convert. */
ATTN_API attn_status attn_gguf_dequantize(attn_gguf_tensor_type type, const void *src, int64_t n,
                                          float *dst);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_GGUF_H */
