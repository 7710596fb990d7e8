/* grid_nn.h - what the toolkit's C grids share (tests/nn/test_grid_*.c): a
 * grid runs one function per seeded configuration, compares float32 results
 * with double twins written in the tests, and checks gradients by centred
 * differences of the twin in double (so the C runner alone catches a wrong
 * gradient). A failed configuration prints its one-line reproducer
 *   attn_tests --seed S grid_nn_NAME
 * and the grid's summary line gives its worst error relative to tolerance. */
#ifndef ATTN_GRID_NN_H
#define ATTN_GRID_NN_H

#include "nn_test.h"

typedef struct g_grid {
    const char *name;
    uint64_t seed;     /* of the current configuration */
    uint64_t rng;      /* its random stream */
    char desc[512];    /* what it drew, printed on failure */
    bool ok;           /* the current configuration passed so far */
    long configs, failed;
    double worst_ratio, worst_err;
    char worst_what[64];
} g_grid;

/* Runs one(g) on max(4, weight * t_configs / 10) configurations (or the
 * one --seed names), seeds base, base + 1, ... */
void g_run(const char *name, uint64_t base, double weight, void (*one)(g_grid *g));

/* Appends to g->desc (printf-style). */
void g_desc(g_grid *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* err = max|got - ref| / max(max|ref|, floor) <= tol; records the worst. */
bool g_close(g_grid *g, const char *what, const float *got, const double *ref, int64_t n,
             double tol, double floor);
/* err <= tol for one measured error (what names it; detail, if not NULL,
 * is printed on failure); records the worst. */
bool g_within(g_grid *g, const char *what, double err, double tol, const char *detail);
/* A condition that must hold (exact results, statuses). */
void g_check(g_grid *g, const char *what, bool cond);

/* Draws: an int in [lo, hi] log-uniform; a dim in [1, hi] next to a power of
 * two half the time (every residue mod 8 and 16). */
int64_t g_log_int(g_grid *g, int64_t lo, int64_t hi);
int64_t g_dim(g_grid *g, int64_t hi);
double g_unif(g_grid *g, double lo, double hi);
/* n floats uniform in [-s, s] (allocated, exits on failure); a double copy. */
float *g_floats(g_grid *g, int64_t n, double s);
double *g_doubles(const float *x, int64_t n);
/* Zeroed scratch, exits on failure. */
void *g_alloc(size_t bytes);

/* One gradient to check: x is the twin's double copy of the input (the
 * checker moves its entries), got the library's gradient, start its value
 * before the call (accumulate contract) or NULL for zero. */
typedef struct {
    const char *name;
    double *x;
    int64_t n;
    const float *got;
    const float *start;
} g_param;
typedef double (*g_loss)(void *user); /* the twin's loss at the current x's */

/* Centred differences of loss in double, per gradient: the first, last and
 * n_pick - 2 random entries, and two random +-1 directions. An entry must be
 * within tol of max(max|gradient|, 1e-3 max over all gradients, floor)
 * (plus the differences' own rounding); a direction within tol of the
 * gradient's 2-norm. */
void g_fd(g_grid *g, const g_param *ps, int n_ps, g_loss loss, void *user, int n_pick,
          double tol, double floor);

/* sum_i w[i] y[i] in double: the weighted-sum losses of the twins. */
double g_wsum(const double *y, const float *w, int64_t n);

#endif /* ATTN_GRID_NN_H */
