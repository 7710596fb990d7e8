/* test_block_mask.c - block-sparse masks (attn_block_mask): the named
 * patterns and combinations against this file's own formulas, element by
 * element; the layouts' blocks against the element rule (a FULL block has
 * every element visible, an EMPTY one none); the kernels' visibility bits
 * against the definition; every kernel against ref64 on
 * random problems with random masks (the grid's error rule), in float32 and
 * in BF16, F16 or float32 over a half K/V, decode included; keys of hidden blocks never read (NaN planted there); the
 * tiles counted for window, Longformer and BigBird growing as S w, not S^2;
 * bad layouts and shapes; out-of-memory. */
#include "problem.h"

#include "kernels/block_mask.h"

#include <stdlib.h>
#include <string.h>

/* ---- this file's definitions of the patterns -------------------------------------- */

static bool win(int64_t p, int64_t j, int64_t l, int64_t r) { return (l < 0 || j >= p - l) && (r < 0 || j <= p + r); }

static int64_t fdiv(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }

/* The element rule of pattern pt at (b, h, i, j), from docs/long-context.md
 * (BIGBIRD's random blocks are taken from the mask: their draw is checked
 * by bigbird_structure). */
static bool formula(const attn_block_pattern *pt, const attn_block_mask *m, int64_t b, int64_t i, int64_t j)
{
    attn_block_mask_shape s = attn_block_mask_get_shape(m);
    int64_t p = i + pt->q_offset;
    bool g = false;
    switch (pt->kind) {
    case ATTN_BLOCK_PATTERN_DOCUMENTS:
        return pt->doc_q[b * s.seq_q + i] == (pt->doc_k ? pt->doc_k : pt->doc_q)[b * s.seq_k + j];
    case ATTN_BLOCK_PATTERN_PREFIX_LM: return j < pt->prefix[b] || j <= p;
    case ATTN_BLOCK_PATTERN_LONGFORMER:
        for (int64_t x = 0; x < pt->n_global; x++) g |= pt->global[x] == p || pt->global[x] == j;
        return g || win(p, j, pt->window_left, pt->window_right);
    case ATTN_BLOCK_PATTERN_DILATED:
        return (p - j) % pt->dilation == 0 &&
               win(p, j, pt->window_left < 0 ? -1 : pt->window_left * pt->dilation,
                   pt->window_right < 0 ? -1 : pt->window_right * pt->dilation);
    case ATTN_BLOCK_PATTERN_CHUNKED: return fdiv(p, pt->chunk) == j / pt->chunk;
    default: return false;
    }
}

/* Every element of every layout: the definition, the layout's view and
 * (when want is given) want agree; FULL blocks all visible, EMPTY none. */
typedef bool (*want_fn)(const void *arg, int64_t b, int64_t h, int64_t i, int64_t j);

static void check_elements(const attn_block_mask *m, want_fn want, const void *arg)
{
    attn_block_mask_shape s = attn_block_mask_get_shape(m);
    long bad = 0, kind_bad = 0;
    for (int64_t b = 0; b < s.n_batch; b++)
        for (int64_t h = 0; h < s.n_heads; h++)
            for (int64_t i = 0; i < s.seq_q; i++)
                for (int64_t j = 0; j < s.seq_k; j++) {
                    bool d = attn__bm_def(m, b, h, i, j), e = attn__bm_eval(m, b, h, i, j);
                    int k = attn_block_mask_kind(m, b, h, i / s.block_q, j / s.block_k);
                    bad += d != e || (want != NULL && d != want(arg, b, h, i, j));
                    kind_bad += (k == 2 && !d) || (k == 0 && d);
                }
    T_EQ_INT(bad, 0);
    T_EQ_INT(kind_bad, 0);
}

typedef struct {
    const attn_block_pattern *pt;
    const attn_block_mask *m;
} pattern_arg;

static bool want_pattern(const void *arg, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const pattern_arg *a = arg;
    (void)h;
    return formula(a->pt, a->m, b, i, j);
}

static attn_block_mask_shape shape_of(int64_t nb, int64_t nh, int64_t sq, int64_t sk, int64_t bq, int64_t bk)
{
    attn_block_mask_shape s = {nb, nh, sq, sk, bq, bk};
    return s;
}

/* A pattern of `kind` with random parameters for shape s, its arrays in
 * buf (at least 2 * n_batch * max(seq) + 64 entries). */
static attn_block_pattern random_pattern(uint64_t *rs, attn_block_pattern_kind kind, const attn_block_mask_shape *s,
                                         int64_t *buf)
{
    attn_block_pattern pt = attn_block_pattern_default(kind);
    pt.q_offset = kind == ATTN_BLOCK_PATTERN_BIGBIRD ? 0 : t_rand_int(rs, -3, 3);
    switch (kind) {
    case ATTN_BLOCK_PATTERN_DOCUMENTS: { /* sorted runs of ids, as packed documents */
        int64_t *dq = buf, *dk = buf + s->n_batch * s->seq_q;
        for (int64_t b = 0; b < s->n_batch; b++) {
            int64_t id = 0;
            for (int64_t i = 0; i < s->seq_q; i++) {
                if (t_rand_int(rs, 0, 9) == 0) id++;
                dq[b * s->seq_q + i] = id;
            }
            id = 0;
            for (int64_t j = 0; j < s->seq_k; j++) {
                if (t_rand_int(rs, 0, 9) == 0) id++;
                dk[b * s->seq_k + j] = id;
            }
        }
        pt.doc_q = dq;
        pt.doc_k = dk;
        break;
    }
    case ATTN_BLOCK_PATTERN_PREFIX_LM:
        for (int64_t b = 0; b < s->n_batch; b++) buf[b] = t_rand_int(rs, 0, s->seq_k);
        pt.prefix = buf;
        break;
    case ATTN_BLOCK_PATTERN_LONGFORMER:
        pt.window_left = t_rand_int(rs, -1, 20);
        pt.window_right = t_rand_int(rs, -1, 6);
        pt.n_global = s->seq_k > 0 ? t_rand_int(rs, 0, 4) : 0;
        for (int64_t x = 0; x < pt.n_global; x++) buf[x] = t_rand_int(rs, 0, s->seq_k - 1);
        pt.global = buf;
        break;
    case ATTN_BLOCK_PATTERN_BIGBIRD:
        pt.window_blocks = t_rand_int(rs, 0, 2);
        pt.global_blocks = t_rand_int(rs, 0, 1);
        pt.random_blocks = t_rand_int(rs, 0, 3);
        pt.seed = t_rand_u64(rs);
        break;
    case ATTN_BLOCK_PATTERN_DILATED:
        pt.dilation = t_rand_int(rs, 1, 4);
        pt.window_left = t_rand_int(rs, -1, 8);
        pt.window_right = t_rand_int(rs, -1, 3);
        break;
    default:
        pt.chunk = t_rand_int(rs, 1, 40);
        break;
    }
    return pt;
}

T_TEST(block_mask_patterns)
{
    uint64_t rs = 11;
    int64_t *buf = malloc(sizeof(int64_t) * 4096);
    for (int round = 0; round < 60; round++) {
        attn_block_pattern_kind kind = (attn_block_pattern_kind)(1 + round % 6);
        int64_t sq = t_rand_int(&rs, 1, 90), sk = t_rand_int(&rs, 1, 90), bq = t_rand_int(&rs, 1, 33);
        int64_t bk = kind == ATTN_BLOCK_PATTERN_BIGBIRD ? bq : t_rand_int(&rs, 1, 33);
        attn_block_mask_shape s = shape_of(t_rand_int(&rs, 1, 2), t_rand_int(&rs, 1, 3), sq, sk, bq, bk);
        attn_block_pattern pt = random_pattern(&rs, kind, &s, buf);
        attn_block_mask *m = NULL;
        T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
        if (m == NULL) continue;
        pattern_arg a = {&pt, m};
        check_elements(m, kind == ATTN_BLOCK_PATTERN_BIGBIRD ? NULL : want_pattern, &a);
        attn_block_mask_free(m);
    }
    free(buf);
}

/* BIGBIRD: window and global blocks FULL, each block row with exactly
 * min(random, free blocks) more, the same for the same seed. */
T_TEST(block_mask_bigbird_structure)
{
    attn_block_mask_shape s = shape_of(1, 2, 640, 640, 32, 32);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_BIGBIRD);
    pt.window_blocks = 1;
    pt.global_blocks = 1;
    pt.random_blocks = 3;
    pt.seed = 42;
    attn_block_mask *m = NULL, *m2 = NULL, *m3 = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m2), ATTN_OK);
    pt.seed = 43;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m3), ATTN_OK);
    long bad = 0, same = 0, differ = 0, extra = 0;
    for (int64_t h = 0; h < 2; h++)
        for (int64_t qb = 0; qb < 20; qb++) {
            int64_t structural = 0, listed = 0;
            for (int64_t kb = 0; kb < 20; kb++) {
                bool st = llabs(qb - kb) <= 1 || qb < 1 || kb < 1;
                int k = attn_block_mask_kind(m, 0, h, qb, kb);
                bad += (st && k != 2) || k == 1;
                structural += st;
                listed += k == 2;
                same += k == attn_block_mask_kind(m2, 0, h, qb, kb);
                differ += k != attn_block_mask_kind(m3, 0, h, qb, kb);
            }
            T_LE(structural, listed);
            T_LE(listed, structural + 3);
            extra += listed - structural;
        }
    T_CHECK(extra > 0); /* random draws land off the band */
    T_EQ_INT(bad, 0);
    T_EQ_INT(same, 2 * 20 * 20);
    T_CHECK(differ > 0);
    check_elements(m, NULL, NULL);
    attn_block_mask_free(m);
    attn_block_mask_free(m2);
    attn_block_mask_free(m3);
}

/* ---- masks from functions and lists ------------------------------------------------ */

/* A structured random rule: per 7 x 11 cell of (b, h) one of hidden, visible
 * or a hash per element, so masks of other block sizes get all kinds. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return x;
}

typedef struct {
    uint64_t seed;
    long calls;
} fn_arg;

static int rule_fn(int64_t b, int64_t h, int64_t i, int64_t j, void *user)
{
    fn_arg *a = user;
    uint64_t cell = mix(a->seed ^ mix((uint64_t)(b * 131 + h) ^ mix((uint64_t)(i / 7) * 1000003u + (uint64_t)(j / 11))));
    switch (cell % 3) {
    case 0: return 0;
    case 1: return 1;
    default: return (int)(mix(cell ^ (uint64_t)(i * 977 + j)) & 1);
    }
}

static bool want_fn_rule(const void *arg, int64_t b, int64_t h, int64_t i, int64_t j)
{
    fn_arg a = *(const fn_arg *)arg;
    return rule_fn(b, h, i, j, &a) != 0;
}

static int counting_fn(int64_t b, int64_t h, int64_t i, int64_t j, void *user)
{
    fn_arg *a = user;
    a->calls++;
    return rule_fn(b, h, i, j, user);
}

T_TEST(block_mask_from_fn)
{
    uint64_t rs = 5;
    for (int round = 0; round < 20; round++) {
        attn_block_mask_shape s = shape_of(t_rand_int(&rs, 1, 2), t_rand_int(&rs, 1, 3), t_rand_int(&rs, 1, 70),
                                           t_rand_int(&rs, 1, 70), t_rand_int(&rs, 1, 20), t_rand_int(&rs, 1, 20));
        fn_arg a = {t_rand_u64(&rs), 0};
        attn_block_mask *m = NULL;
        T_EQ_STATUS(attn_block_mask_from_fn(&s, counting_fn, &a, &m), ATTN_OK);
        /* the build rule: every element once */
        T_EQ_INT(a.calls, s.n_batch * s.n_heads * s.seq_q * s.seq_k);
        check_elements(m, want_fn_rule, &a);
        attn_block_mask_free(m);
    }
}

/* Combinations: AND and OR of a pattern and a function mask (with
 * broadcast layouts) equal the element-wise AND and OR. */
typedef struct {
    const attn_block_mask *a, *b;
    bool and_op;
} combo_arg;

static bool want_combo(const void *arg, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const combo_arg *c = arg;
    bool x = attn__bm_def(c->a, b, h, i, j), y = attn__bm_def(c->b, b, h, i, j);
    return c->and_op ? x && y : x || y;
}

static bool want_chunk_or_rule(const void *arg, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const fn_arg *a = arg;
    fn_arg c = *a;
    bool in_chunk = i / 16 == j / 16, r = rule_fn(b, 0, i, j, &c) != 0; /* the rule's layouts: 1 head */
    (void)h;
    return a->calls ? in_chunk || r : in_chunk && r; /* calls reused as the operator flag */
}

T_TEST(block_mask_combine)
{
    attn_block_mask_shape s1 = shape_of(1, 3, 50, 60, 8, 12), s2 = shape_of(2, 1, 50, 60, 8, 12);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_CHUNKED);
    pt.chunk = 16;
    fn_arg fa = {99, 0};
    attn_block_mask *a = NULL, *b = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s1, &pt, &a), ATTN_OK);
    T_EQ_STATUS(attn_block_mask_from_fn(&s2, rule_fn, &fa, &b), ATTN_OK);
    for (int op = 1; op <= 2; op++) {
        attn_block_mask *c = NULL;
        T_EQ_STATUS(attn_block_mask_combine(a, b, (attn_block_mask_op)op, &c), ATTN_OK);
        attn_block_mask_shape sc = attn_block_mask_get_shape(c);
        T_EQ_INT(sc.n_batch, 2);
        T_EQ_INT(sc.n_heads, 3);
        combo_arg ca = {a, b, op == ATTN_BLOCK_MASK_OP_AND};
        check_elements(c, want_combo, &ca);
        fn_arg flag = {99, op == ATTN_BLOCK_MASK_OP_OR};
        check_elements(c, want_chunk_or_rule, &flag);
        attn_block_mask_free(c);
    }
    attn_block_mask *bad = NULL;
    attn_block_mask_shape s3 = shape_of(1, 1, 50, 60, 8, 10);
    attn_block_mask *d = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s3, &pt, &d), ATTN_OK);
    T_EQ_STATUS(attn_block_mask_combine(a, d, ATTN_BLOCK_MASK_OP_AND, &bad), ATTN_BAD_MASK);
    T_CHECK(bad == NULL);
    attn_block_mask_free(a);
    attn_block_mask_free(b);
    attn_block_mask_free(d);
}

/* ---- bad layouts, shapes and parameters -------------------------------------------- */

T_TEST(block_mask_bad_layout)
{
    /* 1 layout of 2 query blocks x 3 key blocks */
    int64_t pc[2] = {1, 1}, fc[2] = {1, 1}, pi[2] = {0, 1}, fi[2] = {2, 0};
    attn_block_layout L = {shape_of(1, 1, 8, 12, 4, 4), pc, pi, fc, fi};
    fn_arg fa = {1, 0};
    attn_block_mask *m = NULL;
    T_EQ_STATUS(attn_block_mask_from_layout(&L, rule_fn, &fa, &m), ATTN_OK);
    T_EQ_INT(attn_block_mask_kind(m, 0, 0, 0, 0), 1);
    T_EQ_INT(attn_block_mask_kind(m, 0, 0, 0, 2), 2);
    T_EQ_INT(attn_block_mask_kind(m, 0, 0, 1, 2), 0);
    T_EQ_INT(attn_block_mask_n_blocks(m, 1), 2);
    T_EQ_INT(attn_block_mask_n_blocks(m, 0), 2);
    attn_block_mask_free(m);

    attn_block_mask *bad = NULL;
    fi[1] = 3; /* out of range */
    T_EQ_STATUS(attn_block_mask_from_layout(&L, rule_fn, &fa, &bad), ATTN_BAD_MASK);
    T_CHECK(strstr(attn_last_error(), "full_idx[1]") != NULL);
    fi[1] = 1; /* row 1 lists block 1 as PARTIAL and FULL */
    T_EQ_STATUS(attn_block_mask_from_layout(&L, rule_fn, &fa, &bad), ATTN_BAD_MASK);
    T_CHECK(strstr(attn_last_error(), "full_idx[1]") != NULL);
    int64_t pc2[2] = {2, 0}, pi2[2] = {1, 0}, fc2[2] = {0, 0};
    attn_block_layout L2 = {shape_of(1, 1, 8, 12, 4, 4), pc2, pi2, fc2, fi};
    T_EQ_STATUS(attn_block_mask_from_layout(&L2, rule_fn, &fa, &bad), ATTN_BAD_MASK); /* unsorted */
    T_CHECK(strstr(attn_last_error(), "partial_idx[1]") != NULL);
    pi2[1] = 1; /* duplicated */
    T_EQ_STATUS(attn_block_mask_from_layout(&L2, rule_fn, &fa, &bad), ATTN_BAD_MASK);
    T_CHECK(strstr(attn_last_error(), "partial_idx[1]") != NULL);
    pi2[0] = -1;
    T_EQ_STATUS(attn_block_mask_from_layout(&L2, rule_fn, &fa, &bad), ATTN_BAD_MASK);
    T_CHECK(strstr(attn_last_error(), "partial_idx[0]") != NULL);
    pi2[0] = 0;
    T_EQ_STATUS(attn_block_mask_from_layout(&L2, NULL, NULL, &bad), ATTN_NULL_ARG); /* PARTIAL needs fn */
    T_CHECK(bad == NULL);
    L2.shape.block_q = 0;
    T_EQ_STATUS(attn_block_mask_from_layout(&L2, rule_fn, &fa, &bad), ATTN_BAD_DIM);

    /* pattern parameters */
    attn_block_mask_shape s = shape_of(1, 1, 8, 12, 4, 4);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_CHUNKED);
    pt.chunk = 0;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &bad), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "pattern.chunk") != NULL);
    pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_BIGBIRD);
    s.block_k = 3;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &bad), ATTN_BAD_PARAM);
    s.block_k = 4;
    pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_LONGFORMER);
    int64_t g = 12;
    pt.global = &g;
    pt.n_global = 1;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &bad), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "pattern.global[0]") != NULL);
    pt = attn_block_pattern_default((attn_block_pattern_kind)9);
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &bad), ATTN_BAD_PARAM);
    T_CHECK(bad == NULL);
}

/* A call whose Sq, Sk, B or Hq disagree with the mask is ATTN_BAD_MASK and
 * writes nothing. */
T_TEST(block_mask_call_shape)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = 2; c.Sq = 20; c.Sk = 30; c.Hq = 4; c.Hkv = 2; c.Dk = 8; c.Dv = 8;
    c.window_left = c.window_right = -1;
    c.threads = 1;
    c.seed = 3;
    t_problem P;
    t_problem_make(&P, &c);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_CHUNKED);
    pt.chunk = 5;
    const attn_block_mask_shape shapes[4] = {shape_of(1, 1, 21, 30, 4, 4), shape_of(1, 1, 20, 29, 4, 4),
                                             shape_of(3, 1, 20, 30, 4, 4), shape_of(1, 2, 20, 30, 4, 4)};
    for (int x = 0; x < 4; x++) {
        attn_block_mask *m = NULL;
        T_EQ_STATUS(attn_block_mask_from_pattern(&shapes[x], &pt, &m), ATTN_OK);
        P.bm = m;
        t_result r;
        t_run(&P, ATTN_DTYPE_F32, t_ctx(1), LAYOUT_BSHD, false, &r);
        T_EQ_STATUS(r.status, ATTN_BAD_MASK);
        T_CHECK(strstr(attn_last_error(), "params.block_mask") != NULL);
        t_result_free(&r);
        attn_block_mask_free(m);
    }
    t_problem_free(&P);
}

/* ---- every kernel against ref64 ------------------------------------------------------- */

/* A random mask for problem c: a pattern, a function, lists drawn at
 * random, or an AND / OR of two of them; layouts shared or per (b, h). */
static attn_block_mask *random_mask(uint64_t *rs, const t_cfg *c, int64_t *buf, fn_arg *fa, int depth)
{
    /* block rows that the x86 forward's 144-row tile takes one per block (64,
     * 128, 100, 97), of 200 (100-row blocks: a divisor), 149 (no divisor near
     * the tile: blocks straddle them), or small (several per block) */
    static const int64_t big_bq[] = {64, 64, 128, 100, 97, 200, 149};
    int64_t bq = t_rand_int(rs, 0, 2) == 0 ? big_bq[t_rand_int(rs, 0, 6)] : t_rand_int(rs, 1, 40);
    int64_t bk = t_rand_int(rs, 0, 2) == 0 ? 64 : t_rand_int(rs, 1, 40);
    int kind = (int)t_rand_int(rs, 0, depth > 0 ? 7 : 9); /* 0-5 patterns, 6 fn, 7 lists, 8-9 AND/OR */
    if (kind == ATTN_BLOCK_PATTERN_BIGBIRD - 1) bk = bq; /* square blocks */
    attn_block_mask_shape s = shape_of(t_rand_int(rs, 0, 1) ? c->B : 1, t_rand_int(rs, 0, 1) ? c->Hq : 1, c->Sq,
                                       c->Sk, bq, bk);
    attn_block_mask *m = NULL;
    if (kind <= 5) {
        attn_block_pattern pt = random_pattern(rs, (attn_block_pattern_kind)(kind + 1), &s, buf);
        T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
    } else if (kind == 6) {
        fa->seed = t_rand_u64(rs);
        T_EQ_STATUS(attn_block_mask_from_fn(&s, rule_fn, fa, &m), ATTN_OK);
    } else if (kind == 7) { /* random lists: each block EMPTY, PARTIAL or FULL */
        int64_t nqb = (c->Sq + bq - 1) / bq, nkb = (c->Sk + bk - 1) / bk, rows = s.n_batch * s.n_heads * nqb;
        int64_t *pc = calloc((size_t)rows, sizeof *pc), *fc = calloc((size_t)rows, sizeof *fc);
        int64_t *pi = malloc(sizeof(int64_t) * (size_t)(rows * nkb + 1)), *fi = malloc(sizeof(int64_t) * (size_t)(rows * nkb + 1));
        int64_t np = 0, nf = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t kb = 0; kb < nkb; kb++) {
                int64_t k = t_rand_int(rs, 0, 2);
                if (k == 1) { pi[np++] = kb; pc[r]++; }
                if (k == 2) { fi[nf++] = kb; fc[r]++; }
            }
        attn_block_layout L = {s, pc, pi, fc, fi};
        fa->seed = t_rand_u64(rs);
        T_EQ_STATUS(attn_block_mask_from_layout(&L, rule_fn, fa, &m), ATTN_OK);
        free(pc); free(fc); free(pi); free(fi);
    } else {
        attn_block_mask *a = random_mask(rs, c, buf, fa, depth + 1), *b = NULL;
        attn_block_mask_shape sa = attn_block_mask_get_shape(a);
        s.block_q = sa.block_q;
        s.block_k = sa.block_k;
        attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_LONGFORMER);
        pt.window_left = t_rand_int(rs, 0, 30);
        pt.window_right = t_rand_int(rs, 0, 30);
        T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &b), ATTN_OK);
        T_EQ_STATUS(attn_block_mask_combine(a, b, kind == 9 ? ATTN_BLOCK_MASK_OP_OR : ATTN_BLOCK_MASK_OP_AND, &m), ATTN_OK);
        attn_block_mask_free(a);
        attn_block_mask_free(b);
    }
    return m;
}

static void grid(long n, uint64_t first, bool decode)
{
    int64_t *buf = malloc(sizeof(int64_t) * 20000);
    long failures = 0;
    long ran = 0;
    for (long x = 0; x < n; x++) {
        if (!t_mine(x)) continue;
        ran++;
        uint64_t seed = t_only_seed >= 0 ? (uint64_t)t_only_seed : first + (uint64_t)x, rs = seed;
        t_cfg c = t_cfg_sample(seed, false);
        c.layout = LAYOUT_BSHD + (int)(seed % 2);
        if (seed % 4 == 0) { /* a chunk of queries at an offset into the keys (ring attention's case) */
            c.align = ATTN_ALIGN_OFFSET;
            c.align_offset = t_rand_int(&rs, -3, c.Sk);
        }
        if (decode) { /* few rows per kv head against many keys: the decode kernels */
            c.Sq = t_rand_int(&rs, 1, 2);
            c.Sk = t_rand_int(&rs, 1030, 1300);
            c.Hq = 4;
            c.Hkv = 2;
            c.B = 1;
            c.bias_kind = BIAS_NONE;
            c.mask_kind = MASK_NONE;
            c.dbias = false;
            if (x % 2 == 0) { /* the shape the all-heads decode takes, but for the block mask */
                c.Sq = 1;
                c.Dk = c.Dv = 64;
                c.softcap = c.dropout_p = 0.0;
                c.alibi = false;
            }
        }
        fn_arg fa = {0, 0};
        attn_block_mask *m = random_mask(&rs, &c, buf, &fa, 0);
        if (t_verbose) {
            t_cfg_print(&c, stdout);
            attn_block_mask_shape s = attn_block_mask_get_shape(m);
            printf(" block mask %lldx%lld blocks %lldx%lld full %lld partial %lld\n", (long long)s.n_batch,
                   (long long)s.n_heads, (long long)s.block_q, (long long)s.block_k,
                   (long long)attn_block_mask_n_blocks(m, 1), (long long)attn_block_mask_n_blocks(m, 0));
        }
        bool ok = m != NULL;
        for (int d = 0; ok && d < 2; d++) { /* float32, then BF16, F16 or mixed by seed */
            attn_dtype dt, kv;
            t_grid_dtypes(d == 0 ? 0 : 1 + (int)(seed % 3), seed / 3, &dt, &kv);
            t_problem P;
            t_problem_make(&P, &c);
            t_problem_as(&P, dt, kv);
            P.bm = m;
            ok = t_check_problem(&P, dt, x % 8 == 0);
            t_problem_free(&P);
        }
        t_checks++;
        if (!ok) {
            failures++;
            t_failed_checks++;
            fprintf(stderr, "  FAILED: attn_tests --seed %llu %s\n", (unsigned long long)seed,
                    decode ? "block_mask_decode_vs_ref64" : "block_mask_grid_vs_ref64");
        }
        attn_block_mask_free(m);
        if (t_only_seed >= 0) break;
    }
    printf("  %ld configs, %ld failed\n", ran, failures);
    free(buf);
}

T_TEST(block_mask_grid_vs_ref64) { grid(240, 7000, false); }

T_TEST(block_mask_decode_vs_ref64) { grid(24, 9000, true); }

/* ---- the kernels' visibility bits ---------------------------------------------------- */

/* attn__bm_bits (the closed forms of the patterns, the operands' bits of
 * AND / OR, the layouts' FULL and EMPTY blocks) and attn__bm_hide against
 * the definition, element by element, on random masks of every kind and
 * random tiles: any rows (more than one pass of the walk's scratch), any
 * keys, up to 64 of them, anywhere in the blocks. */
T_TEST(block_mask_bits)
{
    int64_t *buf = malloc(sizeof(int64_t) * 20000);
    uint64_t bits[300];
    float s[2 * 64];
    long bad = 0, hide_bad = 0, set = 0, clear = 0;
    for (long round = 0; round < 300; round++) {
        uint64_t rs = 0xB175u + (uint64_t)round;
        t_cfg c;
        memset(&c, 0, sizeof c);
        c.B = t_rand_int(&rs, 1, 2);
        c.Hq = t_rand_int(&rs, 1, 3);
        c.Sq = t_rand_int(&rs, 1, 300);
        c.Sk = t_rand_int(&rs, 1, 300);
        fn_arg fa = {0, 0};
        attn_block_mask *m = random_mask(&rs, &c, buf, &fa, 0);
        if (m == NULL) continue;
        for (int tile = 0; tile < 12; tile++) {
            int64_t b = t_rand_int(&rs, 0, c.B - 1), h = t_rand_int(&rs, 0, c.Hq - 1);
            int64_t i0 = t_rand_int(&rs, 0, c.Sq - 1), nq = t_rand_int(&rs, 1, c.Sq - i0);
            int64_t j0 = t_rand_int(&rs, 0, c.Sk - 1), nk = t_rand_int(&rs, 1, c.Sk - j0 < 64 ? c.Sk - j0 : 64);
            if (nq > 300) nq = 300;
            attn__bm_bits(m, b, h, i0, nq, j0, nk, bits);
            for (int64_t r = 0; r < nq; r++) {
                bad += nk < 64 && (bits[r] >> nk) != 0; /* nothing beyond the tile */
                for (int64_t x = 0; x < nk; x++) {
                    bool on = (bits[r] >> x) & 1;
                    bad += on != attn__bm_def(m, b, h, i0 + r, j0 + x) || on != attn__bm_eval(m, b, h, i0 + r, j0 + x);
                    set += on;
                    clear += !on;
                }
            }
            /* attn__bm_hide on a strided row: -inf exactly at the hidden keys, the rest untouched */
            int64_t i = i0 + nq - 1;
            for (int x = 0; x < 2 * 64; x++) s[x] = 1.0f;
            attn__bm_hide(m, b, h, i, j0, nk, s, 2);
            for (int64_t x = 0; x < nk; x++) {
                hide_bad += (s[2 * x] == -INFINITY) == attn__bm_def(m, b, h, i, j0 + x);
                hide_bad += s[2 * x + 1] != 1.0f;
            }
        }
        attn_block_mask_free(m);
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(hide_bad, 0);
    T_CHECK(set > 1000 && clear > 1000);
    free(buf);
}

/* ---- hidden keys are never read --------------------------------------------------------- */

/* One sequence of S queries and S keys, no other mask, 2 threads. */
static t_cfg square_cfg(int64_t S, int64_t Hq, int64_t Hkv, int64_t Dk, int64_t Dv, uint64_t seed)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = 1; c.Sq = S; c.Sk = S; c.Hq = Hq; c.Hkv = Hkv; c.Dk = Dk; c.Dv = Dv;
    c.window_left = c.window_right = -1;
    c.threads = 2;
    c.seed = seed;
    return c;
}

/* Chunked attention in chunks of 64 (blocks of 32 x 64): NaN in K and V of
 * chunk 1 must leave every row of chunks 0 and 2 exactly as with finite
 * values there, forward and backward, on every kernel. */
T_TEST(block_mask_hidden_never_read)
{
    t_cfg c = square_cfg(192, 4, 2, 16, 8, 5);
    attn_block_mask_shape s = shape_of(1, 1, 192, 192, 32, 64);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_CHUNKED);
    pt.chunk = 64;
    attn_block_mask *m = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
    t_problem clean, dirty;
    t_problem_make(&clean, &c);
    t_problem_make(&dirty, &c);
    clean.bm = dirty.bm = m;
    for (int64_t j = 64; j < 128; j++)
        for (int64_t x = 0; x < 2 * 16; x++) {
            dirty.k[j * 2 * 16 + x] = NAN;
            if (x < 2 * 8) dirty.v[j * 2 * 8 + x] = NAN;
        }
    for (int x = 0; x < T_KERNELS; x++) {
        if (!t_kernel_available(t_kernels[x])) continue;
        attn_ctx *ctx = t_ctx(2);
        attn_ctx_set_kernel(ctx, t_kernels[x]);
        t_result a, b;
        t_run(&clean, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, true, &a);
        t_run(&dirty, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, true, &b);
        attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
        T_EQ_STATUS(b.status, ATTN_OK);
        long differ = 0;
        for (int64_t i = 0; i < 192; i++) {
            if (i >= 64 && i < 128) continue;
            for (int64_t e = 0; e < 4 * 8; e++) differ += a.o[i * 32 + e] != b.o[i * 32 + e];
            for (int64_t e = 0; e < 4 * 16; e++) differ += a.dq[i * 64 + e] != b.dq[i * 64 + e];
            for (int64_t e = 0; e < 2 * 16; e++) differ += a.dk[i * 32 + e] != b.dk[i * 32 + e];
            for (int64_t e = 0; e < 2 * 8; e++) differ += a.dv[i * 16 + e] != b.dv[i * 16 + e];
        }
        if (differ) fprintf(stderr, "    %s: %ld values differ\n", attn_kernel_name(t_kernels[x]), differ);
        T_EQ_INT(differ, 0);
        t_result_free(&a);
        t_result_free(&b);
    }
    t_problem_free(&clean);
    t_problem_free(&dirty);
    attn_block_mask_free(m);
}

/* Longformer with global tokens 0 and 100 (one query block of the x86
 * forward holds both, with the rows between them that see only their
 * window): NaN in one V row of a far key tile (key 581, seen there by the
 * global rows only) must reach those rows and leave every row that does
 * not see it exactly as with a finite V, in float32 and BF16 (the AMX
 * forward's path), on every kernel. The rows between the global ones skip
 * the far tiles, so what they recorded for an earlier tile must not be
 * taken for this one (it was, on the AMX path). */
T_TEST(block_mask_hidden_never_read_global)
{
    t_cfg c = square_cfg(704, 2, 2, 16, 16, 6);
    attn_block_mask_shape s = shape_of(1, 1, 704, 704, 32, 32);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_LONGFORMER);
    int64_t global[2] = {0, 100};
    pt.window_left = pt.window_right = 30;
    pt.global = global;
    pt.n_global = 2;
    attn_block_mask *m = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
    static const attn_dtype dts[] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        t_problem clean, dirty;
        t_problem_make(&clean, &c);
        t_problem_make(&dirty, &c);
        for (int64_t x = 0; x < 2 * 16; x++) dirty.v[581 * 2 * 16 + x] = NAN;
        t_problem_as(&clean, dts[d], dts[d]);
        t_problem_as(&dirty, dts[d], dts[d]);
        clean.bm = dirty.bm = m;
        for (int x = 0; x < T_KERNELS; x++) {
            if (!t_kernel_available(t_kernels[x])) continue;
            attn_ctx *ctx = t_ctx(2);
            attn_ctx_set_kernel(ctx, t_kernels[x]);
            t_result a, b;
            t_run(&clean, dts[d], ctx, LAYOUT_BSHD, false, &a);
            t_run(&dirty, dts[d], ctx, LAYOUT_BSHD, false, &b);
            attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
            T_EQ_STATUS(b.status, ATTN_OK);
            long differ = 0, hidden_nan = 0;
            for (int64_t i = 0; i < 704; i++) {
                bool sees = i == 0 || i == 100 || (i >= 581 - 30 && i <= 581 + 30);
                for (int64_t e = 0; e < 2 * 16; e++) {
                    if (sees) hidden_nan += !isnan(b.o[i * 32 + e]); /* NaN reaches the rows that see it */
                    else differ += memcmp(&a.o[i * 32 + e], &b.o[i * 32 + e], sizeof(double)) != 0;
                }
            }
            if (differ || hidden_nan)
                fprintf(stderr, "    %s %s: %ld values differ, %ld values of seeing rows not NaN\n",
                        dts[d] == ATTN_DTYPE_F32 ? "f32" : "bf16", attn_kernel_name(t_kernels[x]), differ, hidden_nan);
            T_EQ_INT(differ, 0);
            T_EQ_INT(hidden_nan, 0);
            t_result_free(&a);
            t_result_free(&b);
        }
        t_problem_free(&clean);
        t_problem_free(&dirty);
    }
    attn_block_mask_free(m);
}

/* ---- weights ------------------------------------------------------------------------------ */

/* All weights [B, Hq, Sq, Sk] of P (lse from ref64) in dtype dt on kernel k. */
static double *weights_of(const t_problem *P, const double *lse, attn_dtype dt, attn_kernel k)
{
    const t_cfg *c = &P->c;
    size_t es = dt == ATTN_DTYPE_F64 ? 8 : 4;
    int64_t nq = c->B * c->Sq * c->Hq * c->Dk, nk = c->B * c->Sk * c->Hkv * c->Dk, nl = c->B * c->Hq * c->Sq;
    int64_t nw = nl * c->Sk;
    char *q = malloc((size_t)nq * es), *kk = malloc((size_t)nk * es), *l = malloc((size_t)nl * es);
    char *w = malloc((size_t)nw * es);
    double *out = malloc((size_t)nw * sizeof(double));
    const double *src[3] = {P->q, P->k, lse};
    char *dst[3] = {q, kk, l};
    int64_t n[3] = {nq, nk, nl};
    for (int t = 0; t < 3; t++)
        for (int64_t x = 0; x < n[t]; x++)
            dt == ATTN_DTYPE_F64 ? (((double *)dst[t])[x] = src[t][x]) : (((float *)dst[t])[x] = (float)src[t][x]);
    attn_tensor tq = attn_tensor_make(q, dt, c->B, c->Sq, c->Hq, c->Dk);
    attn_tensor tk = attn_tensor_make(kk, dt, c->B, c->Sk, c->Hkv, c->Dk);
    attn_tensor tl = attn_tensor_make(l, dt, c->B, c->Hq, c->Sq, 1), tw = attn_tensor_make(w, dt, c->B, c->Hq, c->Sq, c->Sk);
    attn_sdpa_params pa = t_params(P, NULL, NULL);
    attn_ctx *ctx = t_ctx(2);
    attn_ctx_set_kernel(ctx, k);
    T_EQ_STATUS(attn_sdpa_weights(ctx, &tq, &tk, &tl, &pa, NULL, c->Hq, NULL, c->Sq, 1, &tw), ATTN_OK);
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    for (int64_t x = 0; x < nw; x++) out[x] = dt == ATTN_DTYPE_F64 ? ((double *)w)[x] : ((float *)w)[x];
    free(q); free(kk); free(l); free(w);
    return out;
}

/* attn_sdpa_weights under a block mask (with causal, dropout and GQA): 0
 * wherever the mask's definition hides the key, and every kernel within
 * 2e-6 of ref64. */
T_TEST(block_mask_weights)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = 2; c.Sq = 70; c.Sk = 90; c.Hq = 4; c.Hkv = 2; c.Dk = 8; c.Dv = 4;
    c.window_left = c.window_right = -1;
    c.causal = 1;
    c.align = ATTN_ALIGN_BOTTOM_RIGHT;
    c.dropout_p = 0.25;
    c.threads = 2;
    c.seed = 8;
    t_problem P;
    t_problem_make(&P, &c);
    uint64_t rs = 3;
    int64_t buf[1024];
    attn_block_mask_shape s = shape_of(2, 4, 70, 90, 16, 16);
    attn_block_pattern pt = random_pattern(&rs, ATTN_BLOCK_PATTERN_DOCUMENTS, &s, buf);
    attn_block_mask *m = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
    P.bm = m;
    t_result r;
    t_run(&P, ATTN_DTYPE_F64, t_ctx(2), LAYOUT_BSHD, false, &r);
    double *ref = weights_of(&P, r.lse, ATTN_DTYPE_F64, ATTN_KERNEL_AUTO);
    int64_t nw = c.B * c.Hq * c.Sq * c.Sk;
    long hidden_bad = 0, seen = 0;
    for (int64_t x = 0; x < nw; x++) {
        int64_t j = x % c.Sk, i = x / c.Sk % c.Sq, h = x / (c.Sk * c.Sq) % c.Hq, b = x / (c.Sk * c.Sq * c.Hq);
        hidden_bad += !attn__bm_def(m, b, h, i, j) && ref[x] != 0.0;
        seen += ref[x] != 0.0;
    }
    T_EQ_INT(hidden_bad, 0);
    T_CHECK(seen > 0);
    for (int x = 0; x < T_KERNELS; x++) {
        if (!t_kernel_available(t_kernels[x])) continue;
        double *w = weights_of(&P, r.lse, ATTN_DTYPE_F32, t_kernels[x]);
        T_LE(t_max_err(w, ref, nw), 2e-6);
        free(w);
    }
    free(ref);
    t_result_free(&r);
    t_problem_free(&P);
    attn_block_mask_free(m);
}

/* ---- work grows as S w ----------------------------------------------------------------- */

/* Tiles of a forward and a backward (grad) or of a forward alone at
 * sequence length S on kernel k; *listed (may be NULL): the mask's listed
 * blocks. */
static int64_t tiles_at(attn_kernel k, int64_t S, int which, int64_t *dense, bool grad, int64_t *listed)
{
    t_cfg c;
    memset(&c, 0, sizeof c);
    c.B = 1; c.Sq = S; c.Sk = S; c.Hq = 1; c.Hkv = 1; c.Dk = 8; c.Dv = 8;
    c.window_left = c.window_right = -1;
    c.threads = 1;
    c.seed = 1;
    t_problem P;
    t_problem_make(&P, &c);
    attn_block_mask_shape s = shape_of(1, 1, S, S, 64, 64);
    attn_block_pattern pt = attn_block_pattern_default(which == 2 ? ATTN_BLOCK_PATTERN_BIGBIRD
                                                                  : ATTN_BLOCK_PATTERN_LONGFORMER);
    int64_t g[4] = {0, 1, 2, 3};
    pt.window_left = pt.window_right = 128; /* window */
    if (which == 1) { /* Longformer: window + 4 global tokens */
        pt.global = g;
        pt.n_global = 4;
    }
    if (which == 2) {
        pt.window_blocks = 1;
        pt.global_blocks = 1;
        pt.random_blocks = 2;
        pt.seed = 3;
    }
    attn_block_mask *m = NULL;
    T_EQ_STATUS(attn_block_mask_from_pattern(&s, &pt, &m), ATTN_OK);
    if (listed != NULL) *listed = attn_block_mask_n_blocks(m, 0) + attn_block_mask_n_blocks(m, 1);
    P.bm = m;
    attn_ctx *ctx = t_ctx(1);
    attn_ctx_set_kernel(ctx, k);
    t_result r;
    attn__tiles_take();
    t_run(&P, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, grad, &r);
    int64_t n = attn__tiles_take();
    t_result_free(&r);
    P.bm = NULL;
    if (dense != NULL) {
        t_run(&P, ATTN_DTYPE_F32, ctx, LAYOUT_BSHD, grad, &r);
        *dense = attn__tiles_take();
        t_result_free(&r);
    }
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    attn_block_mask_free(m);
    t_problem_free(&P);
    return n;
}

T_TEST(block_mask_tile_counts)
{
    attn_kernel ks[3] = {ATTN_KERNEL_TILED, ATTN_KERNEL_AVX2, ATTN_KERNEL_AVX512};
    for (int x = 0; x < 3; x++) {
        if (!t_kernel_available(ks[x])) continue;
        for (int which = 0; which < 3; which++) {
            if (!t_mine(x * 3 + which)) continue; /* six parts for the runner's workers */
            int64_t dense = 0, n1 = tiles_at(ks[x], 1024, which, NULL, true, NULL);
            int64_t n2 = tiles_at(ks[x], 2048, which, NULL, true, NULL), n4 = tiles_at(ks[x], 4096, which, &dense, true, NULL);
            if (t_verbose)
                printf("  %s pattern %d: tiles %lld, %lld, %lld at S = 1K, 2K, 4K; dense %lld at 4K\n",
                       attn_kernel_name(ks[x]), which, (long long)n1, (long long)n2, (long long)n4, (long long)dense);
            /* linear in S: doubling S at most doubles the work (plus the
             * globals' and the edges' share), far below the dense S^2 */
            T_LE((double)n2, 2.2 * (double)n1);
            T_LE((double)n4, 2.2 * (double)n2);
            T_CHECK(n1 > 0);
            T_LE((double)n4 * 5.0, (double)dense);
        }
    }
    /* The AVX2 forward's query blocks follow the mask's 64-row block rows,
     * so it computes each listed block once and nothing else (its 144-row
     * tiles would straddle block rows and compute their union). */
    for (int which = 0; which < 3 && t_kernel_available(ATTN_KERNEL_AVX2); which++) {
        if (!t_mine(6 + which)) continue;
        int64_t listed = 0, n = tiles_at(ATTN_KERNEL_AVX2, 2048, which, NULL, false, &listed);
        if (t_verbose) printf("  avx2 forward, pattern %d: %lld tiles, %lld listed blocks\n", which, (long long)n, (long long)listed);
        T_EQ_INT(n, listed);
    }
}

/* ---- out of memory ----------------------------------------------------------------------- */

static attn_status build_all(void *arg)
{
    (void)arg;
    static int64_t ids[2 * 40];
    for (int x = 0; x < 80; x++) ids[x] = x / 13;
    attn_block_mask_shape s = shape_of(2, 1, 40, 40, 8, 8);
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_DOCUMENTS);
    pt.doc_q = ids;
    fn_arg fa = {4, 0};
    attn_block_mask *a = NULL, *b = NULL, *c = NULL;
    attn_status st = attn_block_mask_from_pattern(&s, &pt, &a);
    if (st == ATTN_OK) st = attn_block_mask_from_fn(&s, rule_fn, &fa, &b);
    if (st == ATTN_OK) st = attn_block_mask_combine(a, b, ATTN_BLOCK_MASK_OP_OR, &c);
    attn_block_mask_free(a);
    attn_block_mask_free(b);
    attn_block_mask_free(c);
    return st;
}

T_TEST(block_mask_out_of_memory) { T_CHECK(t_oom_sweep(build_all, NULL) > 0); }
