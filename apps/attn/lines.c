/* lines.c - the line reader of the `attn` program (lines.h): bounded
 * lines, read errors reported with the line they cut, and files opened by
 * the library's rules for inputs (core/fileio.h). */
#include "lines.h"

#include "core/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_texts_push(cli_texts *t, char *s)
{
    if (t->n == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 64;
        char **p = realloc(t->text, (size_t)cap * sizeof *p);
        if (!p) return 1;
        t->text = p;
        t->cap = cap;
    }
    t->text[t->n++] = s;
    return 0;
}

void cli_texts_free(cli_texts *t)
{
    if (t->owned)
        for (int64_t i = 0; i < t->n; i++) free(t->text[i]);
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* A growing line buffer: buf [cap], n bytes used. */
typedef struct {
    char *buf;
    size_t n, cap;
} line_buf;

static int line_put(line_buf *b, char c)
{
    if (b->n + 1 >= b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        char *p = realloc(b->buf, cap);
        if (!p) return 1;
        b->buf = p;
        b->cap = cap;
    }
    b->buf[b->n++] = c;
    return 0;
}

/* Reads one line of f into b (without "\n"); *end is 1 at the end of the
 * input. Checks the length and read errors; line counts from 1. */
static attn_status read_line(FILE *f, const char *name, int64_t line, size_t max_line,
                             line_buf *b, int *end)
{
    int c;
    b->n = 0;
    errno = 0;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (b->n == max_line)
            return attn_fail(ATTN_BAD_FILE, "'%.200s' line %lld is longer than %zu bytes", name,
                             (long long)line, max_line);
        if (line_put(b, (char)c))
            return attn_fail(ATTN_NO_MEMORY, "out of memory reading '%.200s' line %lld", name, (long long)line);
    }
    if (c == EOF && ferror(f))
        return attn_fail(ATTN_IO, "cannot read '%.200s' at line %lld: %s", name, (long long)line,
                         strerror(errno != 0 ? errno : EIO));
    *end = c == EOF;
    return ATTN_OK;
}

/* The line in b, kept (copied into t) unless blank; NUL bytes refused. */
static attn_status keep_line(const char *name, int64_t line, line_buf *b, cli_texts *t)
{
    while (b->n > 0 && b->buf[b->n - 1] == '\r') b->n--;
    if (b->n > 0 && memchr(b->buf, '\0', b->n) != NULL) /* b->buf is NULL before the first byte */
        return attn_fail(ATTN_BAD_FILE, "'%.200s' line %lld contains a NUL byte", name, (long long)line);
    size_t blank = 0;
    while (blank < b->n && (b->buf[blank] == ' ' || b->buf[blank] == '\t')) blank++;
    if (blank == b->n) return ATTN_OK;
    char *copy = malloc(b->n + 1);
    if (copy) {
        memcpy(copy, b->buf, b->n);
        copy[b->n] = '\0';
    }
    if (!copy || cli_texts_push(t, copy)) {
        free(copy);
        return attn_fail(ATTN_NO_MEMORY, "out of memory reading '%.200s' line %lld", name, (long long)line);
    }
    return ATTN_OK;
}

attn_status cli_read_lines(FILE *f, const char *name, size_t max_line, cli_texts *t)
{
    cli_texts got = {NULL, 0, 0, 1};
    line_buf b = {NULL, 0, 0};
    attn_status st = ATTN_OK;
    int end = 0;
    for (int64_t line = 1; st == ATTN_OK && !end; line++) {
        st = read_line(f, name, line, max_line, &b, &end);
        if (st == ATTN_OK && !(end && b.n == 0)) st = keep_line(name, line, &b, &got);
    }
    free(b.buf);
    if (st != ATTN_OK) {
        cli_texts_free(&got);
        return st;
    }
    *t = got;
    return ATTN_OK;
}

attn_status cli_read_file_lines(const char *path, cli_texts *t)
{
    if (strcmp(path, "-") == 0) return cli_read_lines(stdin, "(standard input)", CLI_MAX_LINE, t);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "'%.200s'", path);
    int fd;
    struct stat sb;
    attn_status st = attn__open_input(prefix, path, &fd, &sb);
    if (st != ATTN_OK) return st;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return attn_fail(ATTN_NO_MEMORY, "out of memory opening '%.200s'", path);
    }
    st = cli_read_lines(f, path, CLI_MAX_LINE, t);
    fclose(f);
    return st;
}
