/* nn_main.c - the toolkit's test runner: runs every registered test, or
 * those named on the command line; prints "N passed, N failed" and exits
 * non-zero on any failed check.
 *   attn_nn_tests [-v] [--list] [test-name ...] */
#include "nn_test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long t_checks, t_failed_checks;
bool t_verbose;
long t_configs = 2000;
long long t_only_seed = -1;

enum { MAX_TESTS = 256 };
static struct {
    const char *name;
    t_nn_fn fn;
} tests[MAX_TESTS];
static int n_tests;

void t_nn_register(const char *name, t_nn_fn fn)
{
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "attn_nn_tests: more than %d tests\n", MAX_TESTS);
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    t_failed_checks++;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static char tmpdir[256];

static void remove_tmpdir(void)
{
    char cmd[300];
    if (tmpdir[0] == '\0') return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "attn_nn_tests: could not remove %s\n", tmpdir);
}

const char *t_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/attn_nn_tests.XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}

int main(int argc, char **argv)
{
    int n_named = 0, failed_tests = 0, ran = 0;
    qsort(tests, (size_t)n_tests, sizeof tests[0], by_name);
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-v") == 0) {
            t_verbose = true;
        } else if (strcmp(argv[a], "--list") == 0) {
            for (int t = 0; t < n_tests; t++) printf("%s\n", tests[t].name);
            return 0;
        } else {
            n_named++;
        }
    }
    for (int t = 0; t < n_tests; t++) {
        bool want = n_named == 0;
        for (int a = 1; a < argc && !want; a++) want = strcmp(argv[a], tests[t].name) == 0;
        if (!want) continue;
        long before = t_failed_checks, checks = t_checks;
        clock_t c0 = clock();
        tests[t].fn();
        double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
        ran++;
        bool ok = t_failed_checks == before;
        if (!ok) failed_tests++;
        printf("%-40s %s  (%ld checks, %.2f s cpu)\n", tests[t].name, ok ? "ok" : "FAILED",
               t_checks - checks, secs);
        fflush(stdout);
    }
    if (n_named > 0 && ran != n_named) {
        fprintf(stderr, "attn_nn_tests: %d of the named tests do not exist (--list)\n",
                n_named - ran);
        return 2;
    }
    t_ctx_free_all();
    printf("attn_nn_tests: %d passed, %d failed, %ld checks\n", ran - failed_tests,
           failed_tests, t_checks);
    return failed_tests == 0 && t_failed_checks == 0 ? 0 : 1;
}
