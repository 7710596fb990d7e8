/* nn_test.h - the toolkit runner (attn_nn_tests): the asserts of test.h,
 * and tests that register themselves, so each file owns its tests:
 *
 *   T_NN_TEST(layernorm_vs_double) { ... T_CHECK(...); }
 */
#ifndef ATTN_NN_TEST_H
#define ATTN_NN_TEST_H

#include "test.h"

#include <attn_nn.h>

typedef void (*t_nn_fn)(void);
void t_nn_register(const char *name, t_nn_fn fn);

#define T_NN_TEST(name)                                              \
    static void test_##name(void);                                   \
    __attribute__((constructor)) static void t_register_##name(void) \
    {                                                                \
        t_nn_register(#name, test_##name);                           \
    }                                                                \
    static void test_##name(void)

/* |a - b| <= tol, printing both values. */
#define T_NEAR(a, b, tol)                                                         \
    do {                                                                          \
        double t_a = (double)(a), t_b = (double)(b), t_t = (double)(tol);         \
        t_checks++;                                                               \
        if (!(fabs(t_a - t_b) <= t_t))                                            \
            t_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %.3g)", #a, #b, \
                   t_a, t_b, t_t);                                                \
    } while (0)

/* A fresh scratch directory for this run's files (removed at exit). */
const char *t_tmpdir(void);

#endif /* ATTN_NN_TEST_H */
