/* lines.h - the line reader of the `attn` program (lines.c): the sentences
 * of `attn embed --file F` and `attn similarity --file F`, one per line.
 * A line holds at most CLI_MAX_LINE bytes before its line end; a longer
 * line, a NUL byte or a read error is an error naming the file and the
 * line, never a silent end of the input. */
#ifndef ATTN_CLI_LINES_H
#define ATTN_CLI_LINES_H

#include <attn/attn.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The longest line accepted: 1 MiB before its "\n" (a "\r" there counts). */
#define CLI_MAX_LINE ((size_t)1 << 20)

/* A list of sentences: pointers into argv (owned = 0), or lines read from
 * a file (owned = 1: each string is freed with the list). */
typedef struct cli_texts {
    char **text; /* [n] */
    int64_t n, cap;
    int owned;
} cli_texts;

/* Appends s (not copied); 1 if out of memory. */
int cli_texts_push(cli_texts *t, char *s);
void cli_texts_free(cli_texts *t);

/* Reads f to its end into t (empty on entry): every line that is not
 * blank (only spaces and tabs), without its line end ("\n", and any "\r"
 * before it); the last line needs no "\n". A line longer than max_line
 * bytes or holding a NUL byte is ATTN_BAD_FILE, a read error ATTN_IO, an
 * allocation failure ATTN_NO_MEMORY; each message names `name` and the
 * line (from 1). On error t is not written. */
attn_status cli_read_lines(FILE *f, const char *name, size_t max_line, cli_texts *t);

/* cli_read_lines of the file at path, or of standard input for "-", with
 * the CLI_MAX_LINE limit. A path is opened without blocking and must be a
 * regular file (core/fileio.h): a FIFO or a device is ATTN_IO. */
attn_status cli_read_file_lines(const char *path, cli_texts *t);

#endif /* ATTN_CLI_LINES_H */
