/* fileio.c - reading a whole file for the toolkit's loaders (safetensors,
 * vocabularies, configs): a regular file, its size checked against a limit
 * before anything is allocated, read completely or not at all. */
#include "core/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

attn_status attn__read_file(const char *prefix, const char *path, size_t max_bytes,
                            char **data, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return attn_fail(ATTN_IO, "%s: cannot open: %s", prefix, strerror(errno));
    struct stat sb;
    attn_status st = ATTN_OK;
    char *buf = NULL;
    size_t want = 0, got = 0;
    if (fstat(fileno(fp), &sb) != 0)
        st = attn_fail(ATTN_IO, "%s: cannot stat: %s", prefix, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = attn_fail(ATTN_IO, "%s: not a regular file", prefix);
    else if ((uintmax_t)sb.st_size > max_bytes)
        st = attn_fail(ATTN_BAD_FILE, "%s: %jd bytes; at most %zu are accepted", prefix,
                       (intmax_t)sb.st_size, max_bytes);
    if (st == ATTN_OK) {
        want = (size_t)sb.st_size;
        buf = attn_alloc(want + 1);
        if (buf == NULL)
            st = attn_fail(ATTN_NO_MEMORY, "%s: no memory for the %zu-byte file", prefix, want);
    }
    while (st == ATTN_OK && got < want) {
        size_t k = fread(buf + got, 1, want - got, fp);
        if (k == 0) break;
        got += k;
    }
    if (st == ATTN_OK && got < want)
        st = attn_fail(ATTN_IO, "%s: read %zu of %zu bytes: %s", prefix, got, want,
                       ferror(fp) ? strerror(errno) : "the file shrank");
    fclose(fp);
    if (st != ATTN_OK) {
        attn_release(buf);
        return st;
    }
    buf[want] = '\0';
    *data = buf;
    *size = want;
    return ATTN_OK;
}
