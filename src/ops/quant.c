/* quant.c - the quantized matrix products of attn/quant.h: argument checks,
 * then the plan: the output columns of every matrix are cut into blocks
 * (and, on the GEMM path, the rows of x too), one task per block on the
 * context's pool, so each output element is computed by one task in a fixed
 * order whatever the thread count. */
#include "ops/ctx.h"

static const char *const FN = "attn_quant_matmul";

const char *attn_quant_name(attn_quant q)
{
    switch (q) {
    case ATTN_QUANT_Q8_0: return "Q8_0";
    case ATTN_QUANT_Q4_1: return "Q4_1";
    }
    return "?";
}

size_t attn_quant_block_bytes(attn_quant q)
{
    switch (q) {
    case ATTN_QUANT_Q8_0: return ATTN__Q8_0_BYTES;
    case ATTN_QUANT_Q4_1: return ATTN__Q4_1_BYTES;
    }
    return 0;
}

attn_status attn_quant_dequantize(attn_quant q, const void *blocks, int64_t n_blocks, float *out)
{
    static const char *const fn = "attn_quant_dequantize";
    attn__clear_error();
    size_t bytes = attn_quant_block_bytes(q);
    if (bytes == 0) return attn_fail(ATTN_BAD_PARAM, "%s: argument 'q' is %d; it is not an attn_quant", fn, (int)q);
    ATTN__DIM(fn, n_blocks);
    if (n_blocks == 0) return ATTN_OK;
    ATTN__NOT_NULL(fn, blocks);
    ATTN__NOT_NULL(fn, out);
    int64_t n_out;
    ATTN__MUL(fn, n_blocks, (int64_t)32, &n_out);
    if ((uint64_t)n_blocks > SIZE_MAX / bytes)
        return attn_fail(ATTN_OVERFLOW, "%s: %lld blocks of %zu bytes overflow", fn, (long long)n_blocks, bytes);
    attn__span spans[] = {{"out", out, (size_t)n_out * sizeof(float)},
                             {"blocks", blocks, (size_t)n_blocks * bytes}};
    attn_status st = attn__disjoint(fn, spans, 2, 1);
    if (st != ATTN_OK) return st;
    attn__quant_dequant_blocks(q, blocks, n_blocks, out);
    return ATTN_OK;
}

enum { MAX_MATS = 64 };

/* One call's plan. GEMM path: task t is column block t - first[m] of the
 * matrix m with first[m] <= t < first[m + 1], times row block. GEMV path
 * (span > 0): the columns of all matrices, one after the other, cut into
 * contiguous runs of `span` columns, one task each (a run may cross from one
 * matrix into the next): a few long runs per thread stream the weights
 * better than many short blocks (32-column tasks ran 20% slower on Zen 3). */
typedef struct {
    attn__qin in;
    attn__qmat mats[MAX_MATS];
    int64_t first[MAX_MATS + 1];
    int64_t start[MAX_MATS + 1]; /* GEMV: the first column of matrix m in the joined order */
    int n_mats;
    int64_t cols, rows, row_blocks; /* a task's columns and rows; blocks of rows */
    int64_t span, total_cols;       /* GEMV: columns per task, all columns */
    attn__quant_fn kernel;
    float *ws;
    int64_t ws_floats; /* per worker */
} plan;

/* Tasks per thread on the GEMV path: enough that a thread held up for a
 * while does not leave the others idle at the end, few enough that each
 * run is long. */
enum { GEMV_TASKS_PER_THREAD = 2 };

static void run_span(const plan *p, int64_t t, int tid)
{
    int64_t g0 = t * p->span, g1 = g0 + p->span < p->total_cols ? g0 + p->span : p->total_cols;
    float *ws = p->ws + (size_t)tid * (size_t)p->ws_floats;
    for (int m = 0; m < p->n_mats && g0 < g1; m++) {
        int64_t a = p->start[m], z = p->start[m + 1];
        if (g0 >= z) continue;
        int64_t e = g1 < z ? g1 : z;
        p->kernel(&p->in, &p->mats[m], 0, p->in.n, g0 - a, e - a, ws);
        g0 = e;
    }
}

static void run_task(void *arg, int64_t t, int tid)
{
    const plan *p = arg;
    if (p->span > 0) {
        run_span(p, t, tid);
        return;
    }
    int64_t rb = t % p->row_blocks, cb = t / p->row_blocks;
    int m = 0;
    while (cb >= p->first[m + 1]) m++;
    const attn__qmat *mat = &p->mats[m];
    int64_t j0 = (cb - p->first[m]) * p->cols, i0 = rb * p->rows;
    int64_t j1 = j0 + p->cols < mat->rows ? j0 + p->cols : mat->rows;
    int64_t i1 = i0 + p->rows < p->in.n ? i0 + p->rows : p->in.n;
    p->kernel(&p->in, mat, i0, i1, j0, j1, p->ws + (size_t)tid * (size_t)p->ws_floats);
}

/* Checks the matrices and fills p->mats and p->first. */
static attn_status check_mats(plan *p, const attn_quant_matrix *w, int n_w, float *const *y)
{
    int64_t nb = p->in.K / 32, total = 0;
    for (int m = 0; m < n_w; m++) {
        size_t bytes = attn_quant_block_bytes(w[m].type);
        if (bytes == 0)
            return attn_fail(ATTN_BAD_PARAM, "%s: w[%d].type is %d; it is not an attn_quant", FN, m,
                             (int)w[m].type);
        if (w[m].rows < 0)
            return attn_fail(ATTN_BAD_DIM, "%s: w[%d].rows is %lld; it must be >= 0", FN, m,
                             (long long)w[m].rows);
        int64_t n_y, n_blocks;
        if (!attn__mul(p->in.n, w[m].rows, &n_y) || !attn__mul(w[m].rows, nb, &n_blocks) ||
            (uint64_t)n_blocks > SIZE_MAX / bytes)
            return attn_fail(ATTN_OVERFLOW, "%s: w[%d] of %lld rows overflows a size", FN, m,
                             (long long)w[m].rows);
        if (n_blocks > 0 && w[m].data == NULL)
            return attn_fail(ATTN_NULL_ARG, "%s: argument 'w[%d].data' is NULL", FN, m);
        if (n_y > 0 && y[m] == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'y[%d]' is NULL", FN, m);
        p->mats[m] = (attn__qmat){.w = w[m].data, .type = w[m].type, .rows = w[m].rows,
                                  .row_bytes = (size_t)nb * bytes, .y = y[m]};
        p->first[m] = total;
        total += (w[m].rows + p->cols - 1) / p->cols;
        p->start[m + 1] = p->start[m] + w[m].rows;
    }
    p->first[n_w] = total;
    p->total_cols = p->start[n_w];
    p->n_mats = n_w;
    return ATTN_OK;
}

/* ATTN_OVERLAP naming the pair if an output overlaps x, a matrix's weights
 * or another output. */
static attn_status check_overlaps(const plan *p, size_t x_bytes)
{
    for (int m = 0; m < p->n_mats; m++) {
        const attn__qmat *a = &p->mats[m];
        size_t y_bytes = (size_t)(p->in.n * a->rows) * sizeof(float);
        if (attn__overlap(a->y, y_bytes, p->in.x, x_bytes))
            return attn_fail(ATTN_OVERLAP, "%s: argument 'y[%d]' overlaps 'x'", FN, m);
        for (int j = 0; j < p->n_mats; j++) {
            const attn__qmat *b = &p->mats[j];
            if (j != m && attn__overlap(a->y, y_bytes, b->y, (size_t)(p->in.n * b->rows) * sizeof(float)))
                return attn_fail(ATTN_OVERLAP, "%s: argument 'y[%d]' overlaps 'y[%d]'", FN, m, j);
            if (attn__overlap(a->y, y_bytes, b->w, (size_t)b->rows * b->row_bytes))
                return attn_fail(ATTN_OVERLAP, "%s: argument 'y[%d]' overlaps 'w[%d].data'", FN, m, j);
        }
    }
    return ATTN_OK;
}

/* GEMM path: at least GEMM_TASKS_PER_THREAD tasks per thread where the
 * rows allow, so that the threads end together; beyond that, row blocks as
 * tall as the kernel takes, since each task dequantizes its columns' panel
 * afresh (with 128-row blocks that was 6% of a 512-token prompt). */
enum { GEMM_TASKS_PER_THREAD = 8 };

/* The rows of a GEMM task: n rows in blocks of at most max_rows, a
 * multiple of step (the last block takes the rest), with enough blocks
 * that col_blocks column blocks give each thread its share of tasks. */
static int64_t gemm_rows(int64_t n, int64_t max_rows, int64_t step, int64_t col_blocks, int threads)
{
    max_rows = max_rows / step * step;
    int64_t blocks = (n + max_rows - 1) / max_rows;
    int64_t want = ((int64_t)GEMM_TASKS_PER_THREAD * threads + col_blocks - 1) / col_blocks;
    if (threads > 1 && want > blocks) blocks = want;
    int64_t steps = (n + step - 1) / step; /* at most one block per step of rows */
    if (blocks > steps) blocks = steps;
    int64_t rows = ((n + blocks - 1) / blocks + step - 1) / step * step;
    return rows < max_rows ? rows : max_rows;
}

/* xsum [n, K/32]: the sums of each block of 32 activations. */
static void block_sums(const attn__qin *in, float *xsum)
{
    int64_t nb = in->K / 32;
    for (int64_t i = 0; i < in->n * nb; i++) {
        const float *x = in->x + i * 32;
        float s = 0.0f;
        for (int t = 0; t < 32; t++) s += x[t];
        xsum[i] = s;
    }
}

attn_status attn_quant_matmul(attn_ctx *ctx, const float *x, int64_t n, int64_t K,
                              const attn_quant_matrix *w, int n_w, float *const *y)
{
    attn__clear_error();
    ATTN__NOT_NULL(FN, ctx);
    ATTN__NOT_NULL(FN, w);
    ATTN__NOT_NULL(FN, y);
    ATTN__DIM(FN, n);
    if (K <= 0 || K % 32 != 0)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'K' is %lld; it must be a positive multiple of 32",
                         FN, (long long)K);
    if (n_w < 1 || n_w > MAX_MATS)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'n_w' is %d; it must be in [1, %d]", FN, n_w, MAX_MATS);
    if (n > 0 && x == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'x' is NULL", FN);
    int64_t n_x;
    ATTN__MUL(FN, n, K, &n_x);

    const attn__k_quant *k = &attn__ctx_kernels(ctx)->quant;
    bool many = n >= k->min_rows;
    plan p = {.in = {.x = x, .n = n, .K = K}, .kernel = many ? k->many : k->few};
    p.cols = many ? k->many_cols : k->few_cols;
    p.rows = many ? k->many_rows : (n > 0 ? n : 1);
    attn_status st = check_mats(&p, w, n_w, y);
    int threads = attn_ctx_threads(ctx);
    if (st == ATTN_OK) st = check_overlaps(&p, (size_t)n_x * sizeof(float));
    if (st != ATTN_OK) return st;
    if (n == 0 || p.first[n_w] == 0) return ATTN_OK;

    bool sums = false;
    for (int m = 0; m < n_w; m++) sums |= !many && k->few_xsum && w[m].type == ATTN_QUANT_Q4_1;
    if (many) p.rows = gemm_rows(n, k->many_rows, k->row_step, p.first[n_w], threads);
    p.row_blocks = (n + p.rows - 1) / p.rows;
    p.ws_floats = k->ws(K, many);
    int64_t n_tasks = p.first[n_w] * p.row_blocks;
    if (!many) { /* GEMV: equal contiguous runs of at least few_cols columns */
        int64_t want = (int64_t)threads * GEMV_TASKS_PER_THREAD;
        p.span = (p.total_cols + want - 1) / want;
        p.span = p.span < p.cols ? p.cols : (p.span + 7) / 8 * 8;
        n_tasks = (p.total_cols + p.span - 1) / p.span;
    }
    size_t ws = (size_t)p.ws_floats * (size_t)threads + (sums ? (size_t)(n_x / 32) : 0);
    float *buf = NULL;
    if (ws > 0 && (buf = attn__ctx_take(ctx, ws * sizeof(float), false)) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: cannot allocate %zu bytes of workspace", FN, ws * sizeof(float));
    p.ws = buf;
    if (sums) {
        float *xsum = buf + (size_t)p.ws_floats * (size_t)threads;
        block_sums(&p.in, xsum);
        p.in.xsum = xsum;
    }
    attn__ctx_run(ctx, n_tasks, run_task, &p);
    attn__ctx_give(ctx, buf);
    return ATTN_OK;
}
