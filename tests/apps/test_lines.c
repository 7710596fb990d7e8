/* test_lines.c - the `attn` program's line reader (apps/attn/lines.c):
 * blank lines and line ends dropped, the last line without "\n" kept; a
 * line over the limit, a NUL byte and a read error after some lines are
 * errors naming the file and the line, with nothing returned; a FIFO, a
 * directory or a missing file given as --file is refused without blocking.
 * fopencookie (a GNU extension) makes a stream that fails midway. */
#define _GNU_SOURCE
#include "test.h"

#include "lines.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Reads text [n] with cli_read_lines; the status, the lines in *t. */
static attn_status read_text(const char *text, size_t n, size_t max_line, cli_texts *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fmemopen((void *)text, n, "rb");
    T_CHECK(f != NULL);
    if (!f) return ATTN_IO;
    attn_status st = cli_read_lines(f, "mem", max_line, t);
    fclose(f);
    return st;
}

/* A stream that yields `text`, then fails with EIO. */
static ssize_t failing_read(void *cookie, char *buf, size_t size)
{
    const char **rest = cookie;
    size_t n = strlen(*rest);
    if (n == 0) {
        errno = EIO;
        return -1;
    }
    if (n > size) n = size;
    memcpy(buf, *rest, n);
    *rest += n;
    return (ssize_t)n;
}

T_TEST(lines_reader_limits_and_errors)
{
    cli_texts t;
    static const char ok[] = "first\n\n  \t\nsecond\r\n\r\n third \nlast";
    T_EQ_STATUS(read_text(ok, sizeof ok - 1, 16, &t), ATTN_OK);
    T_EQ_INT(t.n, 4);
    if (t.n == 4) {
        T_CHECK(strcmp(t.text[0], "first") == 0 && strcmp(t.text[1], "second") == 0);
        T_CHECK(strcmp(t.text[2], " third ") == 0 && strcmp(t.text[3], "last") == 0);
    }
    cli_texts_free(&t);
    T_EQ_STATUS(read_text("", 0, 16, &t), ATTN_OK);
    T_EQ_INT(t.n, 0);
    cli_texts_free(&t);
    /* an empty first line, before the line buffer exists (a fuzzing find:
     * memchr on a NULL buffer, which UBSan reports in `make test-asan`) */
    T_EQ_STATUS(read_text("\nx\n", 3, 16, &t), ATTN_OK);
    T_EQ_INT(t.n, 1);
    cli_texts_free(&t);
    /* exactly the limit, then one byte over it on line 3 */
    T_EQ_STATUS(read_text("abcd\n\nabcd", 10, 4, &t), ATTN_OK);
    T_EQ_INT(t.n, 2);
    cli_texts_free(&t);
    T_EQ_STATUS(read_text("abcd\n\nabcde\nx\n", 14, 4, &t), ATTN_BAD_FILE);
    T_CHECK(strcmp(attn_last_error(), "'mem' line 3 is longer than 4 bytes") == 0);
    T_CHECK(t.n == 0 && t.text == NULL);
    /* a NUL byte */
    T_EQ_STATUS(read_text("ok\nab\0c\n", 8, 16, &t), ATTN_BAD_FILE);
    T_CHECK(strcmp(attn_last_error(), "'mem' line 2 contains a NUL byte") == 0);
    T_CHECK(t.n == 0 && t.text == NULL);
    /* a read error after two lines: an error, not a shorter input */
    const char *rest = "ab\ncd\nef";
    cookie_io_functions_t io = {failing_read, NULL, NULL, NULL};
    FILE *f = fopencookie(&rest, "r", io);
    T_CHECK(f != NULL);
    if (!f) return;
    memset(&t, 0, sizeof t);
    T_EQ_STATUS(cli_read_lines(f, "flaky", 16, &t), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "cannot read 'flaky' at line 3: ") != NULL);
    T_CHECK(strstr(attn_last_error(), strerror(EIO)) != NULL);
    T_CHECK(t.n == 0 && t.text == NULL);
    fclose(f);
}

T_TEST(lines_file_must_be_regular)
{
    char fifo[600], file[600];
    snprintf(fifo, sizeof fifo, "%s/lines.fifo", t_tmpdir());
    snprintf(file, sizeof file, "%s/lines.txt", t_tmpdir());
    T_EQ_INT(mkfifo(fifo, 0600), 0);
    cli_texts t = {NULL, 0, 0, 0};
    alarm(20); /* a blocking open would hang: the alarm ends the run */
    T_EQ_STATUS(cli_read_file_lines(fifo, &t), ATTN_IO);
    alarm(0);
    T_CHECK(strstr(attn_last_error(), "it is a FIFO, not a regular file") != NULL);
    T_EQ_STATUS(cli_read_file_lines(t_tmpdir(), &t), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "it is a directory") != NULL);
    T_EQ_STATUS(cli_read_file_lines(file, &t), ATTN_IO);
    T_CHECK(strstr(attn_last_error(), "cannot open") != NULL);
    T_CHECK(t.n == 0 && t.text == NULL);
    FILE *f = fopen(file, "wb");
    T_CHECK(f != NULL);
    if (!f) return;
    fputs("one\ntwo\n", f);
    fclose(f);
    T_EQ_STATUS(cli_read_file_lines(file, &t), ATTN_OK);
    T_EQ_INT(t.n, 2);
    T_CHECK(t.owned == 1);
    cli_texts_free(&t);
}
