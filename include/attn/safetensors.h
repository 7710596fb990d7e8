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
/* Tensors in a file have one of the element types of attn_dtype (attn/attn.h). */

enum { ATTN_SAFETENSORS_MAX_DIMS = 8 };

typedef struct attn_safetensors attn_safetensors;

/* Reads and validates a whole file. Only a regular file is read: a
 * directory, FIFO, socket or device is ATTN_IO, without blocking. */
ATTN_API attn_status attn_safetensors_load(const char *path, attn_safetensors **out);
/* The same from memory (copied). */
ATTN_API attn_status attn_safetensors_load_memory(const void *data, size_t size,
                                         attn_safetensors **out);
ATTN_API void attn_safetensors_free(attn_safetensors *f); /* accepts NULL */

ATTN_API int64_t attn_safetensors_count(const attn_safetensors *f);
typedef struct attn_safetensors_info {
    const char *name; /* owned by the file */
    attn_dtype dtype;
    int ndim;
    int64_t shape[ATTN_SAFETENSORS_MAX_DIMS];
    int64_t numel;
    const void *data; /* little-endian bytes inside the file image */
    size_t bytes;
} attn_safetensors_info;
/* Tensor index in [0, count), in file order. */
ATTN_API attn_status attn_safetensors_get(const attn_safetensors *f, int64_t index, attn_safetensors_info *info);
/* By name: ATTN_BAD_FILE "missing tensor <name>" if absent. */
ATTN_API attn_status attn_safetensors_find(const attn_safetensors *f, const char *name,
                                  attn_safetensors_info *info);
/* Copies tensor `name` into dst as float32 (F32, F16, BF16 and F64 are
 * converted), after checking that its shape is exactly shape[0..ndim). */
ATTN_API attn_status attn_safetensors_read_f32(const attn_safetensors *f, const char *name, int ndim,
                                      const int64_t *shape, float *dst);
/* A __metadata__ value, or NULL if the key is absent. */
ATTN_API const char *attn_safetensors_metadata(const attn_safetensors *f, const char *key);

typedef struct attn_safetensors_entry {
    const char *name;
    attn_dtype dtype;
    int ndim;
    int64_t shape[ATTN_SAFETENSORS_MAX_DIMS];
    const void *data; /* numel * element size bytes */
} attn_safetensors_entry;
/* Writes a safetensors file atomically: to "<target>.tmp", flushed and
 * fsync'ed, then renamed over the target, so an existing file is never
 * lost. The target is path with its symbolic links followed; it must be a
 * regular file or not exist: a directory, FIFO, socket or device is ATTN_IO
 * and left untouched. path is at most 4095 bytes, each name in it at most
 * 255 and the file's name at most 251 (ATTN_BAD_PARAM); docs/checkpoint.md.
 * meta_keys/meta_values: n_meta strings for __metadata__ (may be 0). */
ATTN_API attn_status attn_safetensors_save(const char *path, const attn_safetensors_entry *entries,
                                  int64_t n, const char *const *meta_keys,
                                  const char *const *meta_values, int64_t n_meta);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_SAFETENSORS_H */
