/* main.c - the attn C test runner: one table of tests, run all or those
 * named on the command line; prints "N passed, N failed" and exits non-zero
 * on any failed check.
 * Tests and tiers can be named; tests of a tier this build lacks, and tests
 * that call t_skip (a kernel this build or CPU lacks), are reported as
 * skipped, by name, never as passed.
 * --jobs N (or ATTN_TEST_JOBS) forks N workers: the grid tests
 * (T_TESTS_SHARDED) split their configurations between them, the other
 * tests go to the workers in turn; each worker's output is printed whole,
 * in worker order, when all have finished, and the counts are summed.
 *   attn_tests [--configs N] [--seed S] [--jobs N] [-v] [--list] [test-or-tier ...] */
#include "list.h"
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long t_checks, t_failed_checks;
bool t_verbose;
static const char *skip_reason; /* set by t_skip during a test */
long t_configs = 2000;
long long t_only_seed = -1;
int t_shard, t_shards = 1;

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

/* --skip NAME: tests (or tiers) left out of this run, reported as skipped. */
enum { MAX_SKIPS = 16 };
static const char *skips[MAX_SKIPS];
static int n_skips;

static const char *skipped_by(const test_case *t)
{
    for (int x = 0; x < n_skips; x++)
        if (strcmp(skips[x], t->name) == 0 || strcmp(skips[x], t->tier) == 0) return skips[x];
    return NULL;
}

static bool known(const char *arg)
{
    for (size_t x = 0; x < sizeof tests / sizeof tests[0]; x++)
        if (strcmp(arg, tests[x].name) == 0 || strcmp(arg, tests[x].tier) == 0) return true;
    return false;
}

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--configs N] [--seed S] [--jobs N] [--skip test-or-tier]... [-v] [--list] "
                    "[test-or-tier ...]\n", prog);
    return 2;
}

typedef struct {
    int passed, failed, skipped;
    long checks, failed_checks;
} tally;

static bool sharded(const char *name)
{
#define SHARDED(n) if (strcmp(name, #n) == 0) return true;
    T_TESTS_SHARDED(SHARDED)
#undef SHARDED
    return false;
}

/* Worker `worker` of `jobs`: every selected sharded test (on its share of
 * the configurations) and every jobs-th other selected test. */
static void run_worker(int worker, int jobs, int argc, char **argv, int first, tally *out)
{
    int passed = 0, failed = 0, skipped = 0;
    long turn = 0;
    for (size_t x = 0; x < sizeof tests / sizeof tests[0]; x++) {
        const test_case *t = &tests[x];
        if (!selected(t, argc, argv, first)) continue;
        if (skipped_by(t) != NULL) { /* said once, by the first worker */
            if (worker == 0) {
                printf("SKIP %-40s (--skip %s)\n", t->name, skipped_by(t));
                skipped++;
            }
            continue;
        }
        bool sh = t->fn != NULL && sharded(t->name);
        if (!sh && turn++ % jobs != worker) continue;
        if (t->fn == NULL) {
            printf("SKIP %-40s (tier %s is not built)\n", t->name, t->tier);
            skipped++;
            continue;
        }
        t_shards = sh ? jobs : 1;
        t_shard = sh ? worker : 0;
        char label[96];
        if (sh && jobs > 1)
            snprintf(label, sizeof label, "%s [%d/%d]", t->name, worker + 1, jobs);
        else
            snprintf(label, sizeof label, "%s", t->name);
        long before = t_failed_checks, checks = t_checks;
        clock_t c0 = clock();
        skip_reason = NULL;
        t->fn();
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        bool ok = t_failed_checks == before;
        if (skip_reason != NULL) { /* a skip counts only if nothing was checked */
            bool clean = ok && t_checks == checks;
            printf("%s %-40s (%s)\n", clean ? "SKIP" : "FAIL", label,
                   clean ? skip_reason : "skipped after making checks");
            clean ? skipped++ : failed++;
            continue;
        }
        printf("%s %-40s %8ld checks  %6.2fs cpu\n", ok ? "PASS" : "FAIL", label, t_checks - checks, sec);
        fflush(stdout);
        ok ? passed++ : failed++;
    }
    *out = (tally){passed, failed, skipped, t_checks, t_failed_checks};
}

/* Forks the workers, each writing its output to a temporary file and its
 * tally to a pipe; then prints the outputs in order and sums the tallies.
 * A worker that dies (a signal, or no tally) counts as a failed test. */
static bool run_workers(int jobs, int argc, char **argv, int first, tally *all)
{
    enum { MAX_JOBS = 64 };
    if (jobs > MAX_JOBS) jobs = MAX_JOBS;
    FILE *outs[MAX_JOBS];
    int fds[MAX_JOBS];
    pid_t pids[MAX_JOBS];
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < jobs; k++) {
        int p[2] = {-1, -1};
        bool made = (outs[k] = tmpfile()) != NULL && pipe(p) == 0 && (pids[k] = fork()) >= 0;
        if (!made) { /* stop the workers already started */
            perror("attn_tests: starting a worker");
            for (int j = 0; j < k; j++) {
                kill(pids[j], SIGTERM);
                waitpid(pids[j], NULL, 0);
            }
            return false;
        }
        if (pids[k] == 0) {
            close(p[0]);
            if (dup2(fileno(outs[k]), 1) < 0 || dup2(fileno(outs[k]), 2) < 0) _exit(3);
            setvbuf(stdout, NULL, _IOLBF, 0);
            tally t;
            run_worker(k, jobs, argc, argv, first, &t);
            t_ctx_free_all();
            fflush(stdout);
            bool sent = write(p[1], &t, sizeof t) == (ssize_t)sizeof t;
            close(p[1]);
            exit(sent ? 0 : 3); /* exit: the temporary directory's atexit handler runs */
        }
        close(p[1]);
        fds[k] = p[0];
    }
    for (int k = 0; k < jobs; k++) {
        tally t;
        bool got = read(fds[k], &t, sizeof t) == (ssize_t)sizeof t;
        close(fds[k]);
        int status = 0;
        waitpid(pids[k], &status, 0);
        rewind(outs[k]);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, outs[k])) > 0) fwrite(buf, 1, n, stdout);
        fclose(outs[k]);
        if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAIL worker %d of %d died (%s %d) before reporting its tally\n", k + 1, jobs,
                   WIFSIGNALED(status) ? "signal" : "exit status",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            all->failed++;
            continue;
        }
        all->passed += t.passed;
        all->failed += t.failed;
        all->skipped += t.skipped;
        all->checks += t.checks;
        all->failed_checks += t.failed_checks;
    }
    fflush(stdout);
    return true;
}

int main(int argc, char **argv)
{
    const char *env = getenv("ATTN_TEST_CONFIGS");
    if (env != NULL) t_configs = atol(env);
    env = getenv("ATTN_TEST_JOBS");
    int jobs = env != NULL ? atoi(env) : 1;
    int first = 1;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "--configs") == 0 && first + 1 < argc) {
            t_configs = atol(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "--seed") == 0 && first + 1 < argc) {
            t_only_seed = atoll(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "--jobs") == 0 && first + 1 < argc) {
            jobs = atoi(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "--skip") == 0 && first + 1 < argc) {
            if (n_skips == MAX_SKIPS) {
                fprintf(stderr, "%s: at most %d --skip\n", argv[0], (int)MAX_SKIPS);
                return 2;
            }
            if (!known(argv[first + 1])) {
                fprintf(stderr, "%s: no test or tier named '%s' (--list)\n", argv[0], argv[first + 1]);
                return 2;
            }
            skips[n_skips++] = argv[first + 1];
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
    if (jobs < 1 || t_only_seed >= 0) jobs = 1; /* one seed: one configuration, one worker */
    tally all = {0, 0, 0, 0, 0};
    if (jobs == 1) {
        run_worker(0, 1, argc, argv, first, &all);
        t_ctx_free_all();
    } else if (!run_workers(jobs, argc, argv, first, &all)) {
        return 1;
    }
    printf("attn_tests: %ld checks, %ld failed%s\n", all.checks, all.failed_checks,
           jobs > 1 ? " (all workers)" : "");
    printf("%d passed, %d failed, %d skipped\n", all.passed, all.failed, all.skipped);
    return all.failed == 0 && all.passed > 0 ? 0 : 1;
}
