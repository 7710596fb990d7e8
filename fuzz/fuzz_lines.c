/* fuzz_lines.c - libFuzzer target for the `attn` program's line reader
 * (apps/attn/lines.c, the --file of embed and similarity), with a limit of
 * 64 bytes a line. The result is compared with a reference computed here
 * from the bytes: the non-blank lines without their line ends, or the
 * first line over the limit or holding a NUL byte as ATTN_BAD_FILE naming
 * that line, with nothing returned. */
#include "lines.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_LINE = 64 };

static void check(int ok)
{
    if (!ok) abort();
}

/* The message names line k. */
static void names_line(int64_t k)
{
    char want[40];
    snprintf(want, sizeof want, " line %lld ", (long long)k);
    check(strstr(attn_last_error(), want) != NULL);
}

/* Only spaces and tabs in p [n]. */
static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t') return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    FILE *f = fmemopen((void *)data, size, "rb");
    check(f != NULL);
    cli_texts t = {NULL, 0, 0, 0};
    attn_status st = cli_read_lines(f, "fuzz", MAX_LINE, &t);
    fclose(f);
    /* the reference, line by line */
    const char *p = (const char *)data, *end = p + size;
    int64_t kept = 0;
    for (int64_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > MAX_LINE || memchr(p, '\0', n) != NULL) {
            check(st == ATTN_BAD_FILE && t.n == 0 && t.text == NULL);
            check(strstr(attn_last_error(), n > MAX_LINE ? "is longer than 64 bytes" : "contains a NUL byte") != NULL);
            names_line(line);
            return 0;
        }
        while (n > 0 && p[n - 1] == '\r') n--;
        if (!blank(p, n)) { /* the next text */
            check(st != ATTN_OK ||
                  (kept < t.n && strlen(t.text[kept]) == n && memcmp(t.text[kept], p, n) == 0));
            kept++;
        }
        p = nl ? nl + 1 : end;
    }
    check(st == ATTN_OK && t.n == kept && t.owned);
    cli_texts_free(&t);
    return 0;
}
