/* safetensors.h - safetensors files, read as untrusted input and written
 * atomically (library attn_formats: libc only). Part of the formats tier;
 * checkpoints and pretrained weights are built on it. */
#ifndef ATTN_SAFETENSORS_H
#define ATTN_SAFETENSORS_H

#include <attn/attn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- safetensors files (src/formats/safetensors.c) ------------------------------- */

/* The safetensors format: 8-byte little-endian header length N, N bytes of
 * JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "string", ...}}, then the data. A file is read as
 * untrusted input: the header length, the JSON, every dtype, shape and
 * offset are checked against the file size before anything is used; any
 * inconsistency is ATTN_BAD_FILE naming what is wrong. */
typedef enum attn_st_dtype {
    ATTN_ST_F32 = 1,
    ATTN_ST_F16 = 2,
    ATTN_ST_BF16 = 3,
    ATTN_ST_F64 = 4,
    ATTN_ST_I64 = 5,
    ATTN_ST_I32 = 6,
    ATTN_ST_U8 = 7,
    ATTN_ST_BOOL = 8
} attn_st_dtype;

enum { ATTN_ST_MAX_DIMS = 8 };

typedef struct attn_st_file attn_st_file;

/* Reads and validates a whole file. */
ATTN_API attn_status attn_st_open(const char *path, attn_st_file **out);
/* The same from memory (copied). */
ATTN_API attn_status attn_st_open_memory(const void *data, size_t size,
                                         attn_st_file **out);
ATTN_API void attn_st_close(attn_st_file *f); /* accepts NULL */

ATTN_API int64_t attn_st_count(const attn_st_file *f);
typedef struct attn_st_info {
    const char *name; /* owned by the file */
    attn_st_dtype dtype;
    int ndim;
    int64_t shape[ATTN_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* little-endian bytes inside the file image */
    size_t bytes;
} attn_st_info;
/* Tensor index in [0, count), in file order. */
ATTN_API attn_status attn_st_get(const attn_st_file *f, int64_t index, attn_st_info *info);
/* By name: ATTN_BAD_FILE "missing tensor <name>" if absent. */
ATTN_API attn_status attn_st_find(const attn_st_file *f, const char *name,
                                  attn_st_info *info);
/* Copies tensor `name` into dst as float32 (F32, F16, BF16 and F64 are
 * converted), after checking that its shape is exactly shape[0..ndim). */
ATTN_API attn_status attn_st_read_f32(const attn_st_file *f, const char *name, int ndim,
                                      const int64_t *shape, float *dst);
/* A __metadata__ value, or NULL if the key is absent. */
ATTN_API const char *attn_st_metadata(const attn_st_file *f, const char *key);

typedef struct attn_st_entry {
    const char *name;
    attn_st_dtype dtype;
    int ndim;
    int64_t shape[ATTN_ST_MAX_DIMS];
    const void *data; /* numel * element size bytes */
} attn_st_entry;
/* Writes a safetensors file atomically: to "<path>.tmp", flushed and
 * fsync'ed, then renamed over path, so an existing file is never lost.
 * meta_keys/meta_values: n_meta strings for __metadata__ (may be 0). */
ATTN_API attn_status attn_st_save(const char *path, const attn_st_entry *entries,
                                  int64_t n, const char *const *meta_keys,
                                  const char *const *meta_values, int64_t n_meta);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_SAFETENSORS_H */
