/* main.c - the attn C test runner: one table of tests, run all or those
 * named on the command line; prints "N passed, N failed" and exits non-zero
 * on any failed check.
 *   attn_tests [--configs N] [--seed S] [-v] [test-name ...] */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long t_checks, t_failed_checks;
bool t_verbose;
long t_configs = 2000;
long long t_only_seed = -1;

#define TEST_LIST(X)          \
    X(status_strings)         \
    X(philox_known_answers)   \
    X(dropout_keep_rate)      \
    X(avx2_exp_accuracy)      \
    X(hand_computed)          \
    X(ref64_finite_difference) \
    X(tiled_finite_difference) \
    X(argument_checks)        \
    X(every_status_code)      \
    X(out_of_memory)          \
    X(contract_masked_rows)   \
    X(contract_masked_never_read) \
    X(contract_nan_propagation) \
    X(contract_huge_logits)   \
    X(contract_sizes)         \
    X(contract_strided_views) \
    X(contract_overlap)       \
    X(contract_determinism)   \
    X(weights_and_dropout_agree) \
    X(grid_vs_ref64)          \
    X(grid_big_vs_ref64)      \
    X(score_hand_computed)    \
    X(score_ref_finite_difference) \
    X(score_contract_masked_rows) \
    X(score_contract_masked_never_read) \
    X(score_contract_sizes)   \
    X(score_contract_huge)    \
    X(score_tanh_accuracy)    \
    X(score_argument_checks)  \
    X(score_out_of_memory)    \
    X(score_grid_vs_ref64)

#define DECLARE(name) void test_##name(void);
TEST_LIST(DECLARE)
#undef DECLARE

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case tests[] = {
#define ENTRY(name) {#name, test_##name},
    TEST_LIST(ENTRY)
#undef ENTRY
};

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

static bool selected(const char *name, int argc, char **argv, int first)
{
    if (first >= argc) return true;
    for (int a = first; a < argc; a++)
        if (strcmp(argv[a], name) == 0) return true;
    return false;
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
        } else {
            fprintf(stderr, "usage: %s [--configs N] [--seed S] [-v] [test-name ...]\n", argv[0]);
            return 2;
        }
    }
    int passed = 0, failed = 0;
    for (size_t x = 0; x < sizeof tests / sizeof tests[0]; x++) {
        if (!selected(tests[x].name, argc, argv, first)) continue;
        long before = t_failed_checks, checks = t_checks;
        clock_t c0 = clock();
        tests[x].fn();
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        bool ok = t_failed_checks == before;
        printf("%s %-28s %8ld checks  %6.2fs cpu\n", ok ? "PASS" : "FAIL", tests[x].name,
               t_checks - checks, sec);
        fflush(stdout);
        ok ? passed++ : failed++;
    }
    t_ctx_free_all();
    printf("attn_tests: %ld checks, %ld failed\n", t_checks, t_failed_checks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
