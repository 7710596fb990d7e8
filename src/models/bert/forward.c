/* forward.c - the BERT encoder's inference (attn/bert.h): the forward
 * pass, sentence embeddings (mean pooling + L2 normalisation) and attention
 * maps.
 *
 * The forward pass works on PACKED rows: the T = sum(lens) real tokens of a
 * batch, one after another, so padding costs nothing. Per layer, with x the
 * hidden states (H = hidden, F = intermediate, nh heads of hd = H / nh):
 *   qkv [T, 3H] = x Wqkv^T + bqkv     one GEMM: q, k, v weights concatenated
 *   o   [T, H]  = attention of every sequence on its own, in one packed
 *                 variable-length call (params.cu_seqlens_q) straight on
 *                 strided views of qkv (attn_sdpa_forward, no copies)
 *   y   [T, H]  = x + bo + o Wo^T;    x = LayerNorm(y)
 *   h   [T, F]  = GELU(x Wi^T + bi)   (bias and GELU fused in one pass)
 *   y   [T, H]  = x + bo2 + h Wo2^T;  x = LayerNorm(y)
 * Everything but the attention core is row-wise, so one "row pass" per layer
 * runs the output dense layer through to the next layer's qkv on blocks of
 * at most BLOCK_ROWS rows, each block start to end while its y and h (a
 * thread's scratch) are in cache. The blocks are the tasks of the ctx's
 * thread pool; each runs its dense layers on one thread with the ctx's GEMM
 * kernel (on the weights packed at load time when it is the one they were
 * packed for) and LayerNorm and GELU on its row kernels (the kernel table's
 * nn.* slots, core/toolkit_kernels.h). The blocks depend on T only and every
 * element of a GEMM is computed the same way in any block, so results are
 * bitwise the same for every thread count.
 */
#include "bert_internal.h"

#include "core/run.h"

#include <attn/attn.h>

#include <limits.h>
#include <math.h>
#include <string.h>

/* ---- the forward pass ------------------------------------------------------------------------ */

enum {
    BLOCK_ROWS = 120, /* rows of a block at most */
    ROW_STEP = 24     /* blocks are whole micro-tiles of every GEMM kernel (4, 6, 8 rows) */
};

/* One call's state: the packed batch and the work buffers. */
typedef struct {
    attn_ctx *ctx;
    const attn_bert *m;
    const attn__gemm_kernel *gemm; /* the ctx's GEMM kernel */
    const attn__toolkit_kernels *rows; /* its row kernels */
    bool bf16;          /* the model's dense layers run in BF16 */
    const void *panels; /* the weights' panels for gemm (the model's, or own's), or NULL: */
    void *own;          /*   F32 packs as it goes; BF16 packs per call for a forced kernel */
    bert_panels pan;    /* where each layer's panels are */
    int64_t B, T;       /* sequences, real tokens */
    const int64_t *lens;
    int64_t *start;     /* [B + 1] first packed row of each sequence */
    int32_t *tok, *pos; /* [T] id and position of each packed row */
    float *x, *qkv, *o; /* [T, H], [T, 3H], [T, H] */
    float *scratch;     /* [threads, BLOCK_ROWS * (H + F)] per-thread y and h */
    int64_t layer;      /* the layer a row pass works on */
} run;

/* y [n, d] = x + b (x [n, d] or NULL for 0), row by row */
static void bias_rows(float *y, const float *x, const float *b, int64_t n, int64_t d)
{
    for (int64_t r = 0; r < n; r++) {
        float *yr = y + r * d;
        if (x)
            for (int64_t i = 0; i < d; i++) yr[i] = x[r * d + i] + b[i];
        else
            memcpy(yr, b, (size_t)d * sizeof(float));
    }
}

/* y [n, out] = beta * y + x [n, in] w^T for weight `which` of layer l
 * (w [out, in], or its panels), beta 0 or 1, on the calling thread. In
 * BF16, x holds bfloat16 values. */
static void dense(const run *r, int64_t l, int which, const float *x, int64_t n, int64_t in,
                  const float *w, int64_t out, float beta, float *y)
{
    int64_t at = l * r->pan.per + r->pan.at[which];
    attn__gemm_args g = {n, out, in, ATTN__GEMM_N, ATTN__GEMM_T, x, w,
                         r->panels && !r->bf16 ? (const float *)r->panels + at : NULL, in, in, beta, y, out,
                         r->panels && r->bf16 ? (const uint16_t *)r->panels + at : NULL};
    attn__gemm_serial(r->gemm, &g);
}

/* The input of a dense layer: x [n, d] itself in F32; in BF16, x rounded
 * to bfloat16 into tmp (which may be x). */
static const float *dense_input(const run *r, const float *x, int64_t n, int64_t d, float *tmp)
{
    if (!r->bf16) return x;
    attn__round_bf16(x, n * d, tmp);
    return tmp;
}

/* qkv [n, 3H] = x [n, H] Wqkv^T + bqkv of layer l (rows r0.. of the batch);
 * tmp [n, H] scratch. */
static void qkv_rows(const run *r, int64_t l, int64_t r0, int64_t n, float *tmp)
{
    int64_t H = r->m->c.hidden_size;
    const bert_layer *L = &r->m->layers[l];
    bias_rows(r->qkv + r0 * 3 * H, NULL, L->bqkv, n, 3 * H);
    dense(r, l, BERT_QKV, dense_input(r, r->x + r0 * H, n, H, tmp), n, H, L->wqkv, 3 * H, 1.0f, r->qkv + r0 * 3 * H);
}

/* Rows [r0, r0 + n): embeddings, their LayerNorm and layer 0's q, k, v. */
static void embed_block(const run *r, int64_t r0, int64_t n, float *scratch)
{
    const attn_bert *m = r->m;
    int64_t H = m->c.hidden_size;
    for (int64_t t = r0; t < r0 + n; t++) {
        float *x = r->x + t * H;
        const float *w = m->word + (int64_t)r->tok[t] * H, *p = m->pos + (int64_t)r->pos[t] * H;
        for (int64_t i = 0; i < H; i++) x[i] = (w[i] + m->type[i]) + p[i];
        r->rows->layernorm_row(x, H, m->emb_ln_w, m->emb_ln_b, m->c.layer_norm_eps, x, NULL, NULL);
    }
    qkv_rows(r, 0, r0, n, scratch);
}

/* Rows [r0, r0 + n) of layer r->layer after the attention core: output
 * dense, LayerNorm, feed-forward, LayerNorm, then the next layer's q, k, v.
 * scratch: y [n, H], h [n, F]. */
static void layer_block(const run *r, int64_t r0, int64_t n, float *scratch)
{
    const attn_bert_config *c = &r->m->c;
    const bert_layer *L = &r->m->layers[r->layer];
    int64_t H = c->hidden_size, F = c->intermediate_size;
    float *x = r->x + r0 * H, *y = scratch, *h = scratch + n * H, *o = r->o + r0 * H;
    int64_t l = r->layer;
    bias_rows(y, x, L->bo, n, H); /* y = x + bo + o Wo^T */
    dense(r, l, BERT_O, dense_input(r, o, n, H, o), n, H, L->wo, H, 1.0f, y);
    for (int64_t t = 0; t < n; t++)
        r->rows->layernorm_row(y + t * H, H, L->ln1_w, L->ln1_b, c->layer_norm_eps, x + t * H,
                               NULL, NULL);
    dense(r, l, BERT_I, dense_input(r, x, n, H, y), n, H, L->wi, F, 0.0f, h);
    for (int64_t t = 0; t < n; t++) r->rows->gelu_row(h + t * F, L->bi, F, h + t * F);
    bias_rows(y, x, L->bo2, n, H); /* y = x + bo2 + h Wo2^T */
    dense(r, l, BERT_O2, dense_input(r, h, n, F, h), n, F, L->wo2, H, 1.0f, y);
    for (int64_t t = 0; t < n; t++)
        r->rows->layernorm_row(y + t * H, H, L->ln2_w, L->ln2_b, c->layer_norm_eps, x + t * H,
                               NULL, NULL);
    if (l + 1 < c->n_layers) qkv_rows(r, l + 1, r0, n, y);
}

typedef void (*block_fn)(const run *r, int64_t r0, int64_t n, float *scratch);

/* Rows per block: about T / 8 (so that threads share the work evenly),
 * rounded up to ROW_STEP, at most BLOCK_ROWS. It depends on T only: the
 * blocks, and so every GEMM call, are the same for any number of threads. */
static int64_t block_rows(int64_t T)
{
    int64_t rows = ((T + 7) / 8 + ROW_STEP - 1) / ROW_STEP * ROW_STEP;
    return rows < BLOCK_ROWS ? rows : BLOCK_ROWS;
}

/* A row pass: block task of `rows` rows, on the scratch of thread tid. */
typedef struct {
    const run *r;
    block_fn fn;
    int64_t rows;
} pass;

static void pass_task(void *arg, int64_t task, int tid)
{
    const pass *p = arg;
    const attn_bert_config *c = &p->r->m->c;
    int64_t r0 = task * p->rows, n = p->r->T - r0 < p->rows ? p->r->T - r0 : p->rows;
    p->fn(p->r, r0, n, p->r->scratch + tid * BLOCK_ROWS * (c->hidden_size + c->intermediate_size));
}

/* Runs fn over all T rows, block by block, on the ctx's threads. */
static void row_pass(const run *r, block_fn fn)
{
    pass p = {r, fn, block_rows(r->T)};
    attn__ctx_run(r->ctx, (r->T + p.rows - 1) / p.rows, pass_task, &p);
}

attn_tensor attn__bert_seq_view(const float *p, int64_t nb, int64_t len, int64_t nh, int64_t hd,
                                int64_t row)
{
    attn_tensor t = attn_tensor_make((void *)p, ATTN_DTYPE_F32, nb, len, nh, hd);
    t.stride[0] = len * row;
    t.stride[1] = row;
    return t;
}

/* o [T, H] = softmax(q k^T / sqrt(hd)) v from qkv [T, 3H]: one packed
 * variable-length call (params.cu_seqlens_q = start), each sentence
 * attending to itself only, no work on padding. */
static attn_status attention(const run *r)
{
    const attn_bert_config *c = &r->m->c;
    int64_t H = c->hidden_size, nh = c->n_heads, hd = H / nh;
    attn_sdpa_params p = attn_sdpa_params_default();
    p.n_seqs = r->B;
    p.cu_seqlens_q = r->start;
    attn_tensor q = attn__bert_seq_view(r->qkv, 1, r->T, nh, hd, 3 * H);
    attn_tensor k = attn__bert_seq_view(r->qkv + H, 1, r->T, nh, hd, 3 * H);
    attn_tensor v = attn__bert_seq_view(r->qkv + 2 * H, 1, r->T, nh, hd, 3 * H);
    attn_tensor t = attn__bert_seq_view(r->o, 1, r->T, nh, hd, H);
    return attn_sdpa_forward(r->ctx, &q, &k, &v, &p, &t, NULL);
}

/* An attention map request: layer, head and where its [len, len] goes. */
typedef struct {
    int64_t layer, head;
    float *weights;
} map_req;

/* weights [len, len] of head req->head, from the q, k of the one sequence of r. */
static attn_status attention_map(const run *r, const map_req *req)
{
    const attn_bert_config *c = &r->m->c;
    int64_t H = c->hidden_size, nh = c->n_heads, hd = H / nh, len = r->T;
    float *lse = attn_alloc((size_t)(nh * len) * sizeof(float)); /* [1, nh, len, 1] */
    if (lse == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_bert_attention: out of memory");
    attn_sdpa_params p = attn_sdpa_params_default();
    attn_tensor q = attn__bert_seq_view(r->qkv, 1, len, nh, hd, 3 * H);
    attn_tensor k = attn__bert_seq_view(r->qkv + H, 1, len, nh, hd, 3 * H);
    attn_tensor v = attn__bert_seq_view(r->qkv + 2 * H, 1, len, nh, hd, 3 * H);
    attn_tensor t = attn__bert_seq_view(r->o, 1, len, nh, hd, H);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, 1, nh, len, 1);
    attn_tensor w = attn_tensor_make(req->weights, ATTN_DTYPE_F32, 1, 1, len, len);
    attn_status st = attn_sdpa_forward(r->ctx, &q, &k, &v, &p, &t, &tl);
    if (st == ATTN_OK)
        st = attn_sdpa_weights(r->ctx, &q, &k, &tl, &p, &req->head, 1, NULL, 0, 0, &w);
    attn_release(lse);
    return st;
}

static void run_free(run *r)
{
    attn_release(r->own);
    attn_release(r->start);
    attn_release(r->tok);
    attn_release(r->x);
}

/* Packs the batch (ids [B, S] into tok, pos) and allocates the work buffers. */
static attn_status run_init(run *r, attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                            const int64_t *lens, int64_t B, int64_t S)
{
    const attn_bert_config *c = &m->c;
    int64_t H = c->hidden_size, n, per, threads;
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->m = m;
    r->B = B;
    r->lens = lens;
    r->start = attn_alloc((size_t)(B + 1) * sizeof(int64_t));
    if (r->start == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_bert: out of memory");
    r->start[0] = 0;
    for (int64_t b = 0; b < B; b++) r->start[b + 1] = r->start[b] + lens[b];
    r->T = r->start[B];
    r->rows = attn__ctx_toolkit(ctx);
    r->bf16 = m->dtype == ATTN_DTYPE_BF16;
    r->gemm = r->bf16 ? r->rows->gemm_bf16 : r->rows->gemm;
    r->pan = attn__bert_panels(c, r->gemm);
    if (r->gemm == m->pack_kernel) {
        r->panels = m->panels;
    } else if (r->bf16) { /* a forced kernel: bfloat16 panels of its own for this call */
        void *own;
        attn_status st = attn__bert_pack("attn_bert", m, m->dtype, r->gemm, &r->own, &own);
        if (st != ATTN_OK) {
            run_free(r);
            return st;
        }
        r->panels = own;
    }
    threads = attn_ctx_threads(ctx);
    per = BLOCK_ROWS * (H + c->intermediate_size);
    if (!attn__mul(r->T, 5 * H, &n) || n > ATTN__MAX_ELEMS - threads * per) {
        run_free(r);
        return attn_fail(ATTN_OVERFLOW, "attn_bert: the work buffer size overflows");
    }
    r->tok = attn_alloc((size_t)(2 * r->T) * sizeof(int32_t));
    r->x = attn_alloc((size_t)(n + threads * per) * sizeof(float));
    if (r->tok == NULL || r->x == NULL) {
        run_free(r);
        return attn_fail(ATTN_NO_MEMORY, "attn_bert: no memory for %lld work floats",
                         (long long)(n + threads * per));
    }
    r->pos = r->tok + r->T;
    r->qkv = r->x + r->T * H;
    r->o = r->qkv + r->T * 3 * H;
    r->scratch = r->o + r->T * H;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < lens[b]; t++) {
            r->tok[r->start[b] + t] = ids[b * S + t];
            r->pos[r->start[b] + t] = (int32_t)t;
        }
    return ATTN_OK;
}

/* x [T, H] = the encoder's output, or (req) only the requested map. */
static attn_status encode(run *r, const map_req *req)
{
    row_pass(r, embed_block);
    for (int64_t l = 0; l < r->m->c.n_layers; l++) {
        if (req && req->layer == l) return attention_map(r, req);
        attn_status st = attention(r);
        if (st != ATTN_OK) return st;
        r->layer = l;
        row_pass(r, layer_block);
    }
    return ATTN_OK;
}

/* ---- the public calls --------------------------------------------------------------------------- */

attn_status attn__bert_check_batch(const char *fn, attn_ctx *ctx, const attn_bert *m,
                                   const int32_t *ids, const int64_t *lens, int64_t B, int64_t S,
                               int64_t *total)
{
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, m);
    ATTN__NOT_NULL(fn, ids);
    ATTN__NOT_NULL(fn, lens);
    ATTN__DIM(fn, B);
    ATTN__DIM(fn, S);
    if (S > m->c.max_position)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'S' is %lld; the model takes at most %lld "
                         "tokens (max_position)", fn, (long long)S, (long long)m->c.max_position);
    ATTN__MUL(fn, B, S, total);
    if (*total > INT_MAX)
        return attn_fail(ATTN_OVERFLOW, "%s: B * S = %lld tokens exceeds %d", fn,
                         (long long)*total, INT_MAX);
    for (int64_t b = 0; b < B; b++) {
        if (lens[b] < 1 || lens[b] > S)
            return attn_fail(ATTN_BAD_PARAM, "%s: argument 'lens[%lld]' is %lld; it must be in "
                             "[1, S = %lld]", fn, (long long)b, (long long)lens[b], (long long)S);
        for (int64_t t = 0; t < lens[b]; t++) {
            int32_t id = ids[b * S + t];
            if (id < 0 || id >= m->c.vocab_size)
                return attn_fail(ATTN_BAD_PARAM, "%s: argument 'ids[%lld]' is %d; it must be in "
                                 "[0, %lld)", fn, (long long)(b * S + t), (int)id,
                                 (long long)m->c.vocab_size);
        }
    }
    return ATTN_OK;
}

/* ATTN_OVERLAP if out (out_bytes) shares a byte with ids or lens. */
static attn_status check_out(const char *fn, const float *out, size_t out_bytes,
                             const int32_t *ids, int64_t total, const int64_t *lens, int64_t B)
{
    attn__span sp[] = {{"out", out, out_bytes},
                       {"ids", ids, (size_t)total * sizeof(int32_t)},
                       {"lens", lens, (size_t)B * sizeof(int64_t)}};
    return attn__disjoint(fn, sp, 3, 1);
}

attn_status attn_bert_forward(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                              const int64_t *lens, int64_t B, int64_t S, float *hidden)
{
    int64_t total = 0, count;
    attn_status st = attn__bert_check_batch(__func__, ctx, m, ids, lens, B, S, &total);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, hidden);
    int64_t H = m->c.hidden_size;
    ATTN__MUL(__func__, total, H, &count);
    st = check_out(__func__, hidden, (size_t)count * sizeof(float), ids, total, lens, B);
    if (st != ATTN_OK || B == 0) return st;
    run r;
    if ((st = run_init(&r, ctx, m, ids, lens, B, S)) != ATTN_OK) return st;
    if ((st = encode(&r, NULL)) == ATTN_OK) {
        memset(hidden, 0, (size_t)count * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            memcpy(hidden + b * S * H, r.x + r.start[b] * H, (size_t)(lens[b] * H) * sizeof(float));
    }
    run_free(&r);
    return st;
}

double attn__bert_pool_normalize(const float *x, int64_t n, int64_t H, double *acc, float *emb)
{
    for (int64_t i = 0; i < H; i++) acc[i] = 0.0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < H; i++) acc[i] += x[t * H + i];
    double ss = 0.0;
    for (int64_t i = 0; i < H; i++) {
        acc[i] /= (double)n;
        ss += acc[i] * acc[i];
    }
    double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
    for (int64_t i = 0; i < H; i++) emb[i] = (float)(acc[i] / norm);
    return norm;
}

attn_status attn_bert_embed(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                            const int64_t *lens, int64_t B, int64_t S, float *emb)
{
    int64_t total = 0, count;
    attn_status st = attn__bert_check_batch(__func__, ctx, m, ids, lens, B, S, &total);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, emb);
    int64_t H = m->c.hidden_size;
    ATTN__MUL(__func__, B, H, &count);
    st = check_out(__func__, emb, (size_t)count * sizeof(float), ids, total, lens, B);
    if (st != ATTN_OK || B == 0) return st;
    double *acc = attn_alloc((size_t)H * sizeof(double));
    if (acc == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", __func__);
    run r;
    if ((st = run_init(&r, ctx, m, ids, lens, B, S)) == ATTN_OK) {
        st = encode(&r, NULL);
        for (int64_t b = 0; st == ATTN_OK && b < B; b++)
            attn__bert_pool_normalize(r.x + r.start[b] * H, lens[b], H, acc, emb + b * H);
        run_free(&r);
    }
    attn_release(acc);
    return st;
}

attn_status attn_bert_attention(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                                int64_t len, int64_t layer, int64_t head, float *weights)
{
    int64_t total = 0, count;
    ATTN__DIM_POS(__func__, len);
    attn_status st = attn__bert_check_batch(__func__, ctx, m, ids, &len, 1, len, &total);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(__func__, weights);
    if (layer < 0 || layer >= m->c.n_layers)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'layer' is %lld; it must be in [0, %lld)",
                         __func__, (long long)layer, (long long)m->c.n_layers);
    if (head < 0 || head >= m->c.n_heads)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'head' is %lld; it must be in [0, %lld)",
                         __func__, (long long)head, (long long)m->c.n_heads);
    ATTN__MUL(__func__, len, len, &count);
    st = check_out(__func__, weights, (size_t)count * sizeof(float), ids, total, &len, 1);
    if (st != ATTN_OK) return st;
    run r;
    if ((st = run_init(&r, ctx, m, ids, &len, 1, len)) != ATTN_OK) return st;
    map_req req = {layer, head, weights};
    st = encode(&r, &req);
    run_free(&r);
    return st;
}
