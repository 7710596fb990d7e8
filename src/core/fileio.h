/* fileio.h - the file rules of every tier (fileio.c): inputs opened without
 * blocking and read only if they are regular files; outputs replaced
 * atomically, only if they are regular files or do not exist yet (symbolic
 * links followed); paths checked against one documented limit. */
#ifndef ATTN_CORE_FILEIO_H
#define ATTN_CORE_FILEIO_H

#include "core/check.h"

#include <stdio.h>
#include <sys/stat.h>

/* Paths are at most ATTN__PATH_MAX - 1 bytes, each name in them (between
 * slashes) at most ATTN__NAME_MAX bytes: Linux's PATH_MAX and NAME_MAX. A
 * file written atomically needs 4 more bytes of name for its ".tmp". */
#define ATTN__PATH_MAX 4096
#define ATTN__NAME_MAX 255
/* Symbolic links followed from an output path to the file it names. */
#define ATTN__MAX_LINKS 40

/* "a directory", "a FIFO", "a socket", "a character device", ... */
ATTN__SHARED const char *attn__file_kind(mode_t mode);

/* ATTN_BAD_PARAM if path is empty, longer than ATTN__PATH_MAX - 1 bytes, or
 * holds a name longer than ATTN__NAME_MAX bytes; the message starts with fn,
 * then arg ("argument 'path'"). */
ATTN__SHARED attn_status attn__path_check(const char *fn, const char *arg, const char *path);

/* Opens path for reading: with O_NONBLOCK, so that a FIFO cannot block,
 * then fstat; anything but a regular file is ATTN_IO naming what it is;
 * O_NONBLOCK is cleared before *fd (and *sb, its fstat) is returned. Messages
 * start with prefix. */
ATTN__SHARED attn_status attn__open_input(const char *prefix, const char *path, int *fd,
                                          struct stat *sb);

/* The whole regular file at path into a new allocation *data [*size + 1]
 * (a NUL follows the bytes), opened by attn__open_input. A file above
 * max_bytes is ATTN_BAD_FILE, and nothing is allocated for it; a read
 * error is ATTN_IO; messages start with prefix. */
ATTN__SHARED attn_status attn__read_file(const char *prefix, const char *path, size_t max_bytes,
                                         char **data, size_t *size);

/* The file an output path names: path with its symbolic links followed (at
 * most ATTN__MAX_LINKS), into *target (attn_alloc; NULL to only check).
 * That file must be a regular file or not exist yet (*exists, may be
 * NULL): a directory, FIFO, socket or device is ATTN_IO naming it, and is
 * left untouched. Checks the path with attn__path_check first. */
ATTN__SHARED attn_status attn__output_target(const char *fn, const char *path, char **target,
                                             int *exists);

/* An atomic replacement in progress: the bytes go to `tmp`, "<target>.tmp"
 * in the target's directory; commit flushes and syncs it, renames it over
 * target and syncs the directory. */
typedef struct attn__atomic {
    FILE *fp;     /* the temporary file, open for writing */
    char *target; /* the file replaced (attn__output_target) */
    char *tmp;    /* "<target>.tmp" */
    const char *fn;
    int err;      /* the first write error (errno), or 0 */
} attn__atomic;

/* Starts replacing the file path names (attn__output_target). A stale
 * "<target>.tmp" (a regular file or a symbolic link) is removed first;
 * the new one is created exclusively, with the mode of the file it
 * replaces. On error nothing is left behind. */
ATTN__SHARED attn_status attn__atomic_open(const char *fn, const char *path, attn__atomic *a);
/* Writes n bytes of p to a->fp; the first failure is kept in a->err and
 * later writes are skipped. Callers may also write to a->fp directly. */
ATTN__SHARED void attn__atomic_write(attn__atomic *a, const void *p, size_t n);
/* Flushes, syncs and closes the temporary file, renames it over the
 * target, then syncs the directory (best effort: the file is in place).
 * On any failure (a->err, a stream error, flush, sync, close, rename) the
 * temporary file is removed and the target left as it was. Always
 * releases a. */
ATTN__SHARED attn_status attn__atomic_commit(attn__atomic *a);
/* Abandons the replacement: closes and removes the temporary file. */
ATTN__SHARED void attn__atomic_abort(attn__atomic *a);

#endif /* ATTN_CORE_FILEIO_H */
