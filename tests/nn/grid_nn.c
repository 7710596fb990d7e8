/* grid_nn.c - the machinery of the toolkit's C grids (grid_nn.h). */
#include "grid_nn.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void *g_alloc(size_t bytes)
{
    void *p = calloc(bytes > 0 ? bytes : 1, 1);
    if (p == NULL) {
        fprintf(stderr, "grid_nn: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

void g_desc(g_grid *g, const char *fmt, ...)
{
    size_t used = strlen(g->desc);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->desc + used, sizeof g->desc - used, fmt, ap);
    va_end(ap);
}

static void fail_line(g_grid *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void fail_line(g_grid *g, const char *fmt, ...)
{
    va_list ap;
    if (g->ok) fprintf(stderr, "  %s seed %llu (%s):\n", g->name, (unsigned long long)g->seed, g->desc);
    g->ok = false;
    fprintf(stderr, "    ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void record(g_grid *g, const char *what, double err, double tol)
{
    double ratio = tol > 0 ? err / tol : (err == 0 ? 0 : INFINITY);
    if (!(ratio <= g->worst_ratio)) {
        g->worst_ratio = ratio != ratio ? INFINITY : ratio;
        g->worst_err = err;
        snprintf(g->worst_what, sizeof g->worst_what, "%s", what);
    }
}

bool g_close(g_grid *g, const char *what, const float *got, const double *ref, int64_t n,
             double tol, double floor)
{
    double scale = floor, err = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    if (scale < 1e-300) scale = 1e-300;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)got[i] == ref[i] ? 0.0 : fabs((double)got[i] - ref[i]) / scale;
        if (!(e <= err)) { /* NaN wins */
            err = e != e ? INFINITY : e;
            at = i;
        }
    }
    record(g, what, err, tol);
    if (err <= tol) return true;
    fail_line(g, "%s: err %.3g > tol %.3g at [%lld]: got %.9g, want %.9g (scale %.3g)", what,
              err, tol, (long long)at, (double)got[at], ref[at], scale);
    return false;
}

bool g_within(g_grid *g, const char *what, double err, double tol, const char *detail)
{
    record(g, what, err, tol);
    if (err <= tol) return true;
    fail_line(g, "%s: err %.3g > tol %.3g%s%s", what, err, tol, detail ? ": " : "",
              detail ? detail : "");
    return false;
}

void g_check(g_grid *g, const char *what, bool cond)
{
    if (!cond) fail_line(g, "%s", what);
}

int64_t g_log_int(g_grid *g, int64_t lo, int64_t hi)
{
    double v = exp(t_rand_uniform(&g->rng, log((double)lo), log((double)hi + 1.0)));
    int64_t r = (int64_t)floor(v);
    return r < lo ? lo : r > hi ? hi : r;
}

int64_t g_dim(g_grid *g, int64_t hi)
{
    static const int64_t edges[] = {8, 16, 32, 64, 128};
    if (t_rand_u64(&g->rng) & 1) return g_log_int(g, 1, hi);
    int64_t e = edges[t_rand_int(&g->rng, 0, 4)] + t_rand_int(&g->rng, -3, 3);
    return e < 1 ? 1 : e > hi ? hi : e;
}

double g_unif(g_grid *g, double lo, double hi) { return t_rand_uniform(&g->rng, lo, hi); }

float *g_floats(g_grid *g, int64_t n, double s)
{
    float *p = g_alloc((size_t)n * sizeof(float));
    t_fill(&g->rng, p, n, -s, s);
    return p;
}

double *g_doubles(const float *x, int64_t n)
{
    double *p = g_alloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) p[i] = x[i];
    return p;
}

double g_wsum(const double *y, const float *w, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += y[i] * (double)w[i];
    return s;
}

/* The library's gradient entry i, less its starting value. */
static double grad_at(const g_param *p, int64_t i)
{
    return (double)p->got[i] - (p->start ? (double)p->start[i] : 0.0);
}

/* (loss(x + h u) - loss(x - h u)) / 2h with u = e_i (dir NULL) or dir. */
static double centred(const g_param *p, int64_t i, const double *dir, g_loss loss, void *user)
{
    double h = 1e-5;
    if (dir == NULL) {
        double keep = p->x[i];
        h *= fmax(1.0, fabs(keep));
        p->x[i] = keep + h;
        double lp = loss(user);
        p->x[i] = keep - h;
        double lm = loss(user);
        p->x[i] = keep;
        return (lp - lm) / (2 * h);
    }
    for (int64_t k = 0; k < p->n; k++) p->x[k] += h * dir[k];
    double lp = loss(user);
    for (int64_t k = 0; k < p->n; k++) p->x[k] -= 2 * h * dir[k];
    double lm = loss(user);
    for (int64_t k = 0; k < p->n; k++) p->x[k] += h * dir[k];
    return (lp - lm) / (2 * h);
}

void g_fd(g_grid *g, const g_param *ps, int n_ps, g_loss loss, void *user, int n_pick,
          double tol, double floor)
{
    /* a difference of two losses near L0 carries their rounding, ~1e-13 |L0|
     * for sums of many terms, divided by the step 2h (h >= 1e-5) */
    double noise = 1e-13 * (1 + fabs(loss(user))) / 2e-5, top = floor;
    for (int t = 0; t < n_ps; t++)
        for (int64_t i = 0; i < ps[t].n; i++) top = fmax(top, fabs(grad_at(&ps[t], i)));
    for (int t = 0; t < n_ps; t++) {
        const g_param *p = &ps[t];
        if (p->n == 0) continue;
        double scale = fmax(1e-3 * top, floor), norm = 0;
        for (int64_t i = 0; i < p->n; i++) {
            scale = fmax(scale, fabs(grad_at(p, i)));
            norm += grad_at(p, i) * grad_at(p, i);
        }
        scale = fmax(scale, 1e-300);
        norm = fmax(fmax(sqrt(norm), 1e-3 * top * sqrt((double)p->n)), 1e-300);
        char what[64];
        snprintf(what, sizeof what, "d%s (entries)", p->name);
        for (int k = 0; k < n_pick; k++) {
            int64_t i = k == 0 ? 0 : k == 1 ? p->n - 1 : t_rand_int(&g->rng, 0, p->n - 1);
            double fd = centred(p, i, NULL, loss, user);
            double e = fmax(fabs(fd - grad_at(p, i)) - noise, 0) / scale;
            record(g, what, e, tol);
            if (!(e <= tol))
                fail_line(g, "d%s[%lld]: %.9g, centred difference %.9g (err %.3g > tol %.3g)",
                          p->name, (long long)i, grad_at(p, i), fd, e, tol);
        }
        double *dir = g_alloc((size_t)p->n * sizeof(double));
        snprintf(what, sizeof what, "d%s (directions)", p->name);
        for (int k = 0; k < 2; k++) {
            double dot = 0;
            for (int64_t i = 0; i < p->n; i++) {
                dir[i] = (t_rand_u64(&g->rng) & 1) ? 1.0 : -1.0;
                dot += dir[i] * grad_at(p, i);
            }
            double fd = centred(p, 0, dir, loss, user), e = fmax(fabs(fd - dot) - noise, 0) / norm;
            record(g, what, e, tol);
            if (!(e <= tol))
                fail_line(g, "d%s . u: %.9g, centred difference %.9g (err %.3g > tol %.3g)",
                          p->name, dot, fd, e, tol);
        }
        free(dir);
    }
}

static long configs_for(double weight)
{
    long n = (long)(weight * (double)t_configs / 10.0);
    return n < 4 ? 4 : n;
}

void g_run(const char *name, uint64_t base, double weight, void (*one)(g_grid *g))
{
    g_grid g;
    memset(&g, 0, sizeof g);
    g.name = name;
    long n = t_only_seed >= 0 ? 1 : configs_for(weight);
    for (long x = 0; x < n; x++) {
        g.seed = t_only_seed >= 0 ? (uint64_t)t_only_seed : base + (uint64_t)x;
        g.rng = g.seed * 0x9E3779B97F4A7C15ull + 12345;
        g.desc[0] = '\0';
        g.ok = true;
        one(&g);
        if (t_verbose) printf("    seed %llu: %s\n", (unsigned long long)g.seed, g.desc);
        t_checks++;
        g.configs++;
        if (!g.ok) {
            g.failed++;
            t_fail(__FILE__, __LINE__, "config failed; reproduce: attn_tests --seed %llu %s",
                   (unsigned long long)g.seed, name);
        }
    }
    printf("  %s: %ld configs, %ld failed; worst err/tol %.3f (%s, err %.3g)\n", name,
           g.configs, g.failed, g.worst_ratio, g.worst_what[0] ? g.worst_what : "-",
           g.worst_err);
}
