/* main.c - the attn C test runner: one table of tests, run all or those
 * named on the command line; prints "N passed, N failed" and exits non-zero
 * on any failed check.
 * Tests and tiers can be named; tests of a tier this build lacks, and tests
 * that call t_skip (a kernel this build or CPU lacks), are reported as
 * skipped, by name, never as passed.
 *   attn_tests [--configs N] [--seed S] [-v] [--list] [test-or-tier ...] */
#include "list.h"
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long t_checks, t_failed_checks;
bool t_verbose;
static const char *skip_reason; /* set by t_skip during a test */
long t_configs = 2000;
long long t_only_seed = -1;

/* Which tiers this build has (CMake defines ATTN_TESTS_<TIER> = 0 for a
 * tier it could not build; docs/testing.md). */
#ifndef ATTN_TESTS_NN
#define ATTN_TESTS_NN 1
#endif
#ifndef ATTN_TESTS_VIZ
#define ATTN_TESTS_VIZ 1
#endif
#ifndef ATTN_TESTS_DIST
#define ATTN_TESTS_DIST 1
#endif
#define ATTN_TESTS_MODELS ATTN_TESTS_NN
#define ATTN_TESTS_APPS (ATTN_TESTS_NN && ATTN_TESTS_VIZ)

typedef struct {
    const char *name;
    const char *tier;
    void (*fn)(void); /* NULL: the tier is not built */
} test_case;

#define DECLARE(name) void test_##name(void);
T_TESTS_CORE(DECLARE)
T_TESTS_OPS(DECLARE)
T_TESTS_FORMATS(DECLARE)
T_TESTS_TEXT(DECLARE)
#if ATTN_TESTS_NN
T_TESTS_NN(DECLARE)
T_TESTS_MODELS(DECLARE)
#endif
#if ATTN_TESTS_VIZ
T_TESTS_VIZ(DECLARE)
#endif
T_TESTS_EXPLAIN(DECLARE)
#if ATTN_TESTS_APPS
T_TESTS_APPS(DECLARE)
#endif
#if ATTN_TESTS_DIST
T_TESTS_DIST(DECLARE)
#endif
#undef DECLARE

#define CORE(name) {#name, "core", test_##name},
#define OPS(name) {#name, "ops", test_##name},
#define FORMATS(name) {#name, "formats", test_##name},
#define TEXT(name) {#name, "text", test_##name},
#if ATTN_TESTS_NN
#define NN(name) {#name, "nn", test_##name},
#define MODELS(name) {#name, "models", test_##name},
#else
#define NN(name) {#name, "nn", NULL},
#define MODELS(name) {#name, "models", NULL},
#endif
#if ATTN_TESTS_VIZ
#define VIZ(name) {#name, "viz", test_##name},
#else
#define VIZ(name) {#name, "viz", NULL},
#endif
#define EXPLAIN(name) {#name, "explain", test_##name},
#if ATTN_TESTS_APPS
#define APPS(name) {#name, "apps", test_##name},
#else
#define APPS(name) {#name, "apps", NULL},
#endif
#if ATTN_TESTS_DIST
#define DIST(name) {#name, "dist", test_##name},
#else
#define DIST(name) {#name, "dist", NULL},
#endif

static const test_case tests[] = {T_TESTS_CORE(CORE) T_TESTS_OPS(OPS) T_TESTS_FORMATS(FORMATS)
                                  T_TESTS_TEXT(TEXT) T_TESTS_NN(NN) T_TESTS_MODELS(MODELS)
                                  T_TESTS_VIZ(VIZ) T_TESTS_EXPLAIN(EXPLAIN)
                                  T_TESTS_APPS(APPS) T_TESTS_DIST(DIST)};

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

void t_skip(const char *why) { skip_reason = why; }

/* A test is selected if nothing is named, or its name or its tier is. */
static bool selected(const test_case *t, int argc, char **argv, int first)
{
    if (first >= argc) return true;
    for (int a = first; a < argc; a++)
        if (strcmp(argv[a], t->name) == 0 || strcmp(argv[a], t->tier) == 0) return true;
    return false;
}

static bool known(const char *arg)
{
    for (size_t x = 0; x < sizeof tests / sizeof tests[0]; x++)
        if (strcmp(arg, tests[x].name) == 0 || strcmp(arg, tests[x].tier) == 0) return true;
    return false;
}

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--configs N] [--seed S] [-v] [--list] [test-or-tier ...]\n", prog);
    return 2;
}

int main(int argc, char **argv)
{
    const char *env = getenv("ATTN_TEST_CONFIGS");
    if (env != NULL) t_configs = atol(env);
    int first = 1;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "--configs") == 0 && first + 1 < argc) {
            t_configs = atol(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "--seed") == 0 && first + 1 < argc) {
            t_only_seed = atoll(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "-v") == 0) {
            t_verbose = true;
            first++;
        } else if (strcmp(argv[first], "--list") == 0) {
            for (size_t x = 0; x < sizeof tests / sizeof tests[0]; x++)
                printf("%-8s %s%s\n", tests[x].tier, tests[x].name,
                       tests[x].fn ? "" : "  (not built)");
            return 0;
        } else {
            return usage(argv[0]);
        }
    }
    for (int a = first; a < argc; a++)
        if (!known(argv[a])) {
            fprintf(stderr, "%s: no test or tier named '%s' (--list)\n", argv[0], argv[a]);
            return 2;
        }
    int passed = 0, failed = 0, skipped = 0;
    for (size_t x = 0; x < sizeof tests / sizeof tests[0]; x++) {
        const test_case *t = &tests[x];
        if (!selected(t, argc, argv, first)) continue;
        if (t->fn == NULL) {
            printf("SKIP %-40s (tier %s is not built)\n", t->name, t->tier);
            skipped++;
            continue;
        }
        long before = t_failed_checks, checks = t_checks;
        clock_t c0 = clock();
        skip_reason = NULL;
        t->fn();
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        bool ok = t_failed_checks == before;
        if (skip_reason != NULL) { /* a skip counts only if nothing was checked */
            bool clean = ok && t_checks == checks;
            printf("%s %-40s (%s)\n", clean ? "SKIP" : "FAIL", t->name,
                   clean ? skip_reason : "skipped after making checks");
            clean ? skipped++ : failed++;
            continue;
        }
        printf("%s %-40s %8ld checks  %6.2fs cpu\n", ok ? "PASS" : "FAIL", t->name,
               t_checks - checks, sec);
        fflush(stdout);
        ok ? passed++ : failed++;
    }
    t_ctx_free_all();
    printf("attn_tests: %ld checks, %ld failed\n", t_checks, t_failed_checks);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed == 0 && passed > 0 ? 0 : 1;
}
