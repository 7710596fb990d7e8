/* fileio.h - whole-file reading for every tier that reads files (fileio.c). */
#ifndef ATTN_CORE_FILEIO_H
#define ATTN_CORE_FILEIO_H

#include "core/check.h"

/* The whole regular file at path into a new allocation *data [*size + 1]
 * (a NUL follows the bytes). A file above max_bytes is ATTN_BAD_FILE, and
 * nothing is allocated for it; messages start with prefix (fileio.c). */
ATTN__SHARED attn_status attn__read_file(const char *prefix, const char *path, size_t max_bytes,
                               char **data, size_t *size);

#endif /* ATTN_CORE_FILEIO_H */
