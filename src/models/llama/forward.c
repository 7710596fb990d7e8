/* forward.c - the Llama forward pass over a session's KV cache: sessions
 * (the cache, grown as tokens come), the layers (RMSNorm, the Q/K/V, output
 * and SwiGLU products on the quantized weights, RoPE in adjacent pairs,
 * attention through attn_sdpa_forward with bottom-right causal alignment
 * over the cache), the output head, and the attention maps.
 *
 * Layout: the cache is k, v [n_layers][Hkv][cap][D], head-major: a decode
 * step reads each kv head's keys as one contiguous run (cap * D elements
 * apart per head), which the hardware prefetchers stream at full speed,
 * where a token-major [cap][Hkv][D] cache makes every head's pass a strided
 * walk over pages shared with the other heads. The K and V products of a
 * chunk are copied into it after RoPE (rounded once for a bf16 or f16
 * cache, half the bytes a decode step reads), and the attention reads it as
 * a strided view [1, len, Hkv, D]: float32 queries over a half cache run the
 * mixed kernels (scores, softmax and sums in float32). */
#include "llama_internal.h"

#include "core/core.h"
#include "core/half.h"
#include "core/toolkit_kernels.h"

#include <attn/nn.h>

#include <math.h>
#include <string.h>

/* ---- sessions ------------------------------------------------------------------ */

attn_llama_session_params attn_llama_session_params_default(void)
{
    return (attn_llama_session_params){0, ATTN_DTYPE_F32};
}

attn_status attn_llama_session_create(const attn_llama *m, const attn_llama_session_params *p,
                                      attn_llama_session **out)
{
    static const char *const fn = "attn_llama_session_create";
    ATTN__NOT_NULL(fn, m);
    ATTN__NOT_NULL(fn, out);
    attn_llama_session_params d = attn_llama_session_params_default();
    if (p == NULL) p = &d;
    if (p->n_ctx < 0 || p->n_ctx > m->cfg.n_ctx)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'n_ctx' is %lld; it must be in [0, %lld] (0: the model's)",
                         fn, (long long)p->n_ctx, (long long)m->cfg.n_ctx);
    attn_dtype dt = p->cache_dtype == 0 ? ATTN_DTYPE_F32 : p->cache_dtype;
    if (dt != ATTN_DTYPE_F32 && dt != ATTN_DTYPE_BF16 && dt != ATTN_DTYPE_F16)
        return attn_fail(ATTN_UNSUPPORTED, "%s: 'cache_dtype' is %s (%d); the cache holds F32, BF16 or F16",
                         fn, attn_dtype_name(dt), (int)dt);
    attn_llama_session *s = attn_calloc(1, sizeof *s);
    if (s == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    s->m = m;
    s->n_ctx = p->n_ctx ? p->n_ctx : m->cfg.n_ctx;
    s->cache_dtype = dt;
    s->es = attn_dtype_size(dt);
    *out = s;
    return ATTN_OK;
}

void attn_llama_session_free(attn_llama_session *s)
{
    if (s == NULL) return;
    attn_release(s->k);
    attn_release(s->v);
    attn_release(s->ids);
    attn_release(s);
}

int64_t attn_llama_session_length(const attn_llama_session *s) { return s ? s->len : -1; }
int64_t attn_llama_session_capacity(const attn_llama_session *s) { return s ? s->n_ctx : -1; }
const int32_t *attn_llama_session_tokens(const attn_llama_session *s) { return s ? s->ids : NULL; }

attn_status attn_llama_session_rewind(attn_llama_session *s, int64_t length)
{
    ATTN__NOT_NULL("attn_llama_session_rewind", s);
    if (length < 0 || length > s->len)
        return attn_fail(ATTN_BAD_PARAM, "attn_llama_session_rewind: 'length' is %lld; it must be in [0, %lld]",
                         (long long)length, (long long)s->len);
    s->len = length;
    return ATTN_OK;
}

/* Room for `need` tokens: the cache grows to at least twice its size (at
 * most n_ctx), keeping the cached rows. */
static attn_status reserve(attn_llama_session *s, int64_t need)
{
    if (need <= s->cap) return ATTN_OK;
    const attn_llama_config *c = &s->m->cfg;
    int64_t cap = s->cap < 128 ? 256 : 2 * s->cap, row = c->n_kv_heads * c->d_head, per, total;
    if (cap > s->n_ctx) cap = s->n_ctx;
    if (cap < need) cap = need;
    if (!attn__mul(cap, row, &per) || !attn__mul(per, c->n_layers, &total))
        return attn_fail(ATTN_OVERFLOW, "attn_llama_forward: a cache of %lld tokens overflows", (long long)cap);
    if ((uint64_t)total > SIZE_MAX / 2 / s->es)
        return attn_fail(ATTN_OVERFLOW, "attn_llama_forward: a cache of %lld tokens overflows", (long long)cap);
    char *k = attn_alloc((size_t)total * s->es), *v = attn_alloc((size_t)total * s->es);
    int32_t *ids = attn_alloc((size_t)cap * sizeof(int32_t));
    if (k == NULL || v == NULL || ids == NULL) {
        attn_release(k);
        attn_release(v);
        attn_release(ids);
        return attn_fail(ATTN_NO_MEMORY, "attn_llama_forward: cannot allocate the KV cache for %lld tokens "
                         "(%zu bytes)", (long long)cap, 2 * (size_t)total * s->es);
    }
    /* each (layer, kv head) run of len rows moves to its new start */
    size_t old = (size_t)(s->cap * c->d_head) * s->es, now = (size_t)(cap * c->d_head) * s->es;
    size_t kept = (size_t)(s->len * c->d_head) * s->es;
    for (int64_t r = 0; r < c->n_layers * c->n_kv_heads && s->len > 0; r++) {
        memcpy(k + (size_t)r * now, (char *)s->k + (size_t)r * old, kept);
        memcpy(v + (size_t)r * now, (char *)s->v + (size_t)r * old, kept);
    }
    if (s->len > 0) memcpy(ids, s->ids, (size_t)s->len * sizeof(int32_t));
    attn_release(s->k);
    attn_release(s->v);
    attn_release(s->ids);
    s->k = k;
    s->v = v;
    s->ids = ids;
    s->cap = cap;
    return ATTN_OK;
}

/* ---- one chunk through the layers -------------------------------------------------- */

/* The buffers of one call, for chunks of up to `rows` tokens. */
typedef struct {
    float *x, *a, *t;  /* [rows, d]: hidden state, normed, a product to add */
    float *q, *o;      /* [rows, H * D] */
    float *g, *u;      /* [rows, d_ff] */
    float *cs, *sn;    /* [rows, D / 2]: cos and sin of the chunk's angles */
    float *kf, *vf;    /* [rows, Hkv * D]: K and V before they go into the cache */
    float *all;
} scratch;

static attn_status scratch_alloc(const attn_llama_config *c, int64_t rows, scratch *w)
{
    int64_t hd = c->n_heads * c->d_head;
    int64_t per_row = 3 * c->d_model + 2 * hd + 2 * c->d_ff + c->d_head + 2 * c->n_kv_heads * c->d_head, total;
    if (!attn__mul(rows, per_row, &total))
        return attn_fail(ATTN_OVERFLOW, "attn_llama_forward: the scratch of %lld rows overflows", (long long)rows);
    if ((w->all = attn_alloc((size_t)total * sizeof(float))) == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_llama_forward: cannot allocate %zu bytes of scratch",
                         (size_t)total * sizeof(float));
    float *p = w->all;
    float **bufs[] = {&w->x, &w->a, &w->t, &w->q, &w->o, &w->g, &w->u, &w->cs, &w->sn, &w->kf, &w->vf};
    int64_t kvr = c->n_kv_heads * c->d_head;
    int64_t sizes[] = {c->d_model, c->d_model, c->d_model, hd, hd, c->d_ff, c->d_ff, c->d_head / 2, c->d_head / 2,
                       kvr, kvr};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *bufs[i] = p;
        p += rows * sizes[i];
    }
    return ATTN_OK;
}

/* cs, sn [n, D/2] = cos, sin of (pos0 + r) * inv_freq[i], the angle
 * rounded to float32 first, as transformers does. */
static void rope_table(const attn_llama *m, int64_t pos0, int64_t n, float *cs, float *sn)
{
    int64_t h2 = m->cfg.d_head / 2;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < h2; i++) {
            float ang = (float)(pos0 + r) * m->inv_freq[i];
            cs[r * h2 + i] = cosf(ang);
            sn[r * h2 + i] = sinf(ang);
        }
}

/* x [n, heads, D] rotated in place in adjacent pairs (x[2i], x[2i+1]) (the
 * GGUF layout of Q and K rows) by the angles of cs, sn [n, D/2]. */
static void rope_pairs(float *x, int64_t n, int64_t heads, int64_t D, const float *cs, const float *sn)
{
    int64_t h2 = D / 2;
    for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < heads; h++) {
            float *p = x + (r * heads + h) * D;
            const float *c = cs + r * h2, *s = sn + r * h2;
            for (int64_t i = 0; i < h2; i++) {
                float x0 = p[2 * i], x1 = p[2 * i + 1];
                p[2 * i] = x0 * c[i] - x1 * s[i];
                p[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
}

/* g [n] = silu(g) * u, blocks of it on the pool, each by the context's
 * nn.swiglu_row kernel (vectorised; a scalar expf per element cost 7% of a
 * prompt). */
typedef struct {
    float *g;
    const float *u;
    int64_t n;
    attn__swiglu_row_fn row;
} swiglu_job;

enum { SWIGLU_BLOCK = 4096 };

static void swiglu_task(void *arg, int64_t t, int tid)
{
    const swiglu_job *j = arg;
    (void)tid;
    int64_t i1 = (t + 1) * SWIGLU_BLOCK < j->n ? (t + 1) * SWIGLU_BLOCK : j->n;
    int64_t i0 = t * SWIGLU_BLOCK;
    j->row(j->g + i0, j->u + i0, i1 - i0);
}

static void swiglu(attn_ctx *ctx, float *g, const float *u, int64_t n)
{
    swiglu_job j = {g, u, n, attn__ctx_toolkit(ctx)->swiglu_row};
    attn__ctx_run(ctx, (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK, swiglu_task, &j);
}

/* y [n, d] = RMSNorm(x) * g, blocks of rows spread over the pool (the
 * toolkit's attn_nn_rmsnorm_forward on each block). */
typedef struct {
    const float *x, *g;
    float *y;
    int64_t n, d;
    double eps;
    attn_status st; /* of the first block (the blocks cannot fail apart) */
} norm_job;

enum { NORM_BLOCK = 32 };

static void norm_task(void *arg, int64_t t, int tid)
{
    norm_job *j = arg;
    (void)tid;
    int64_t r0 = t * NORM_BLOCK, rows = j->n - r0 < NORM_BLOCK ? j->n - r0 : NORM_BLOCK;
    attn_status st = attn_nn_rmsnorm_forward(j->x + r0 * j->d, rows, j->d, j->g, j->eps, j->y + r0 * j->d, NULL);
    if (t == 0) j->st = st;
}

static attn_status rmsnorm(attn_ctx *ctx, const float *x, int64_t n, int64_t d, const float *g, double eps,
                           float *y)
{
    norm_job j = {x, g, y, n, d, eps, ATTN_OK};
    attn__ctx_run(ctx, (n + NORM_BLOCK - 1) / NORM_BLOCK, norm_task, &j);
    return j.st;
}

/* y [n] = x [n] rounded to bf16 or f16 (nearest, ties to even). */
/* The view [1, len, Hkv, D] of layer l's keys (from = s->k) or values. */
static attn_tensor cache_view(const attn_llama_session *s, void *from, int64_t l, int64_t len)
{
    const attn_llama_config *c = &s->m->cfg;
    int64_t run = s->cap * c->d_head; /* one kv head's rows */
    attn_tensor t = attn_tensor_make((char *)from + (size_t)(l * c->n_kv_heads * run) * s->es, s->cache_dtype,
                                     1, len, c->n_kv_heads, c->d_head);
    t.stride[0] = c->n_kv_heads * run;
    t.stride[1] = c->d_head;
    t.stride[2] = run;
    return t;
}

/* Rows x [n, Hkv, D] into layer l's cache `to` (s->k or s->v) at positions
 * pos0 .., rounded to the cache's dtype. */
static void store_rows(const attn_llama_session *s, void *to, int64_t l, int64_t pos0, int64_t n, const float *x)
{
    const attn_llama_config *c = &s->m->cfg;
    int64_t D = c->d_head, H = c->n_kv_heads;
    for (int64_t h = 0; h < H; h++) {
        size_t at = (size_t)(((l * H + h) * s->cap + pos0) * D);
        for (int64_t r = 0; r < n; r++) {
            const float *src = x + (r * H + h) * D;
            if (s->cache_dtype == ATTN_DTYPE_F32) {
                memcpy((float *)to + at + (size_t)(r * D), src, (size_t)D * sizeof(float));
            } else {
                uint16_t *y = (uint16_t *)to + at + (size_t)(r * D);
                if (s->cache_dtype == ATTN_DTYPE_BF16)
                    for (int64_t i = 0; i < D; i++) y[i] = attn__f32_to_bf16(src[i]);
                else
                    for (int64_t i = 0; i < D; i++) y[i] = attn__f32_to_f16(src[i]);
            }
        }
    }
}

static void add_into(float *x, const float *t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] += t[i];
}

/* o [n, H, D] = attention of q [n, H, D] (positions pos0 ..) over the
 * cache's first pos0 + n tokens of layer l, causal with the last query
 * aligned to the last key. */
static attn_status attend(attn_ctx *ctx, const attn_llama_session *s, int64_t l, int64_t pos0, int64_t n,
                          float *q, float *o)
{
    const attn_llama_config *c = &s->m->cfg;
    attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, n, c->n_heads, c->d_head);
    attn_tensor to = attn_tensor_make(o, ATTN_DTYPE_F32, 1, n, c->n_heads, c->d_head);
    attn_tensor tk = cache_view(s, s->k, l, pos0 + n), tv = cache_view(s, s->v, l, pos0 + n);
    attn_sdpa_params p = attn_sdpa_params_default();
    p.causal = 1;
    p.align = ATTN_ALIGN_BOTTOM_RIGHT;
    return attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, NULL);
}

/* Layer l on the chunk's hidden states w->x [n, d] at positions pos0 ..;
 * its keys and values go to the cache rows pos0 ... The rotated queries are
 * copied to qcap [n, H * D] if it is not NULL. */
static attn_status layer(attn_ctx *ctx, attn_llama_session *s, int64_t l, int64_t pos0, int64_t n,
                         const scratch *w, float *qcap)
{
    const attn_llama *m = s->m;
    const attn_llama_config *c = &m->cfg;
    const llama_layer *L = &m->layers[l];
    int64_t d = c->d_model, hd = c->n_heads * c->d_head;
    float *kc = w->kf, *vc = w->vf;
    attn_quant_matrix qkv[3] = {L->q, L->k, L->v}, gu[2] = {L->gate, L->up};
    float *qkv_out[3] = {w->q, kc, vc}, *gu_out[2] = {w->g, w->u};
    attn_status st = rmsnorm(ctx, w->x, n, d, L->attn_norm, c->rms_eps, w->a);
    if (st == ATTN_OK) st = attn_quant_matmul(ctx, w->a, n, d, qkv, 3, qkv_out);
    if (st != ATTN_OK) return st;
    rope_pairs(w->q, n, c->n_heads, c->d_head, w->cs, w->sn);
    rope_pairs(kc, n, c->n_kv_heads, c->d_head, w->cs, w->sn);
    store_rows(s, s->k, l, pos0, n, kc);
    store_rows(s, s->v, l, pos0, n, vc);
    if (qcap != NULL) memcpy(qcap, w->q, (size_t)(n * hd) * sizeof(float));
    if ((st = attend(ctx, s, l, pos0, n, w->q, w->o)) != ATTN_OK ||
        (st = attn_quant_matmul(ctx, w->o, n, hd, &L->o, 1, &w->t)) != ATTN_OK)
        return st;
    add_into(w->x, w->t, n * d);
    if ((st = rmsnorm(ctx, w->x, n, d, L->ffn_norm, c->rms_eps, w->a)) != ATTN_OK ||
        (st = attn_quant_matmul(ctx, w->a, n, d, gu, 2, gu_out)) != ATTN_OK)
        return st;
    swiglu(ctx, w->g, w->u, n * c->d_ff);
    if ((st = attn_quant_matmul(ctx, w->g, n, c->d_ff, &L->down, 1, &w->t)) != ATTN_OK) return st;
    add_into(w->x, w->t, n * d);
    return ATTN_OK;
}

/* x [n, d] = the embedding rows of ids [n]. */
static attn_status embed(const attn_llama *m, const int32_t *ids, int64_t n, float *x)
{
    int64_t d = m->cfg.d_model;
    size_t row = (size_t)(d / 32) * attn_quant_block_bytes(m->embd.type);
    for (int64_t r = 0; r < n; r++) {
        attn_status st = attn_quant_dequantize(m->embd.type, (const char *)m->embd.data + (size_t)ids[r] * row,
                                               d / 32, x + r * d);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

/* logits [n_vocab] = head(RMSNorm(x) * output_norm) for one row x [d]. */
static attn_status head(attn_ctx *ctx, const attn_llama *m, const float *x, float *a, float *logits)
{
    attn_status st = rmsnorm(ctx, x, 1, m->cfg.d_model, m->out_norm, m->cfg.rms_eps, a);
    if (st != ATTN_OK) return st;
    return attn_quant_matmul(ctx, a, 1, m->cfg.d_model, &m->head, 1, &logits);
}

static attn_status check_ids(const attn_llama *m, const int32_t *ids, int64_t n)
{
    for (int64_t r = 0; r < n; r++)
        if (ids[r] < 0 || ids[r] >= m->cfg.n_vocab)
            return attn_fail(ATTN_BAD_PARAM, "attn_llama_forward: ids[%lld] is %d; it must be in [0, %lld)",
                             (long long)r, ids[r], (long long)m->cfg.n_vocab);
    return ATTN_OK;
}

attn_status attn__llama_feed(attn_ctx *ctx, attn_llama_session *s, const int32_t *ids, int64_t n,
                             int64_t n_run, const attn__llama_capture *cap, float *logits)
{
    const attn_llama *m = s->m;
    const attn_llama_config *c = &m->cfg;
    if (n > s->n_ctx - s->len)
        return attn_fail(ATTN_BAD_DIM, "attn_llama_forward: %lld tokens after the %lld in the session exceed "
                         "its context of %lld tokens", (long long)n, (long long)s->len, (long long)s->n_ctx);
    attn_status st = check_ids(m, ids, n);
    if (st == ATTN_OK) st = reserve(s, s->len + n);
    scratch w;
    int64_t rows = n < ATTN__LLAMA_CHUNK ? n : ATTN__LLAMA_CHUNK;
    if (st != ATTN_OK || (st = scratch_alloc(c, rows, &w)) != ATTN_OK) return st;
    int64_t hd = c->n_heads * c->d_head;
    for (int64_t off = 0; off < n && st == ATTN_OK; off += rows) {
        int64_t k = n - off < rows ? n - off : rows, pos0 = s->len + off;
        rope_table(m, pos0, k, w.cs, w.sn);
        st = embed(m, ids + off, k, w.x);
        for (int64_t l = 0; l < n_run && st == ATTN_OK; l++)
            st = layer(ctx, s, l, pos0, k, &w, cap && cap->layer == l ? cap->q + off * hd : NULL);
        if (st == ATTN_OK && logits != NULL && off + k == n)
            st = head(ctx, m, w.x + (k - 1) * c->d_model, w.a, logits);
    }
    attn_release(w.all);
    if (st != ATTN_OK) return st;
    memcpy(s->ids + s->len, ids, (size_t)n * sizeof(int32_t));
    s->len += n;
    return ATTN_OK;
}

attn_status attn_llama_forward(attn_ctx *ctx, attn_llama_session *s, const int32_t *ids, int64_t n,
                               float *logits)
{
    static const char *const fn = "attn_llama_forward";
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, s);
    ATTN__NOT_NULL(fn, ids);
    if (n < 1) return attn_fail(ATTN_BAD_DIM, "%s: argument 'n' is %lld; it must be >= 1", fn, (long long)n);
    if (logits != NULL) {
        attn__span sp[] = {{"logits", logits, (size_t)s->m->cfg.n_vocab * sizeof(float)},
                              {"ids", ids, (size_t)n * sizeof(int32_t)}};
        attn_status st = attn__disjoint(fn, sp, 2, 1);
        if (st != ATTN_OK) return st;
    }
    return attn__llama_feed(ctx, s, ids, n, s->m->cfg.n_layers, NULL, logits);
}

/* ---- attention maps ------------------------------------------------------------------ */

static attn_status check_map_args(const attn_llama *m, const int32_t *ids, int64_t n, int64_t layer,
                                  const int64_t *heads, int64_t n_sel, float *w)
{
    static const char *const fn = "attn_llama_attention";
    ATTN__NOT_NULL(fn, m);
    ATTN__NOT_NULL(fn, ids);
    ATTN__NOT_NULL(fn, w);
    const attn_llama_config *c = &m->cfg;
    if (n < 1 || n > c->n_ctx)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'n' is %lld; it must be in [1, %lld]", fn, (long long)n,
                         (long long)c->n_ctx);
    if (layer < 0 || layer >= c->n_layers)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'layer' is %lld; it must be in [0, %lld)", fn,
                         (long long)layer, (long long)c->n_layers);
    if (heads != NULL && n_sel < 1)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'n_heads_sel' is %lld; it must be >= 1", fn, (long long)n_sel);
    for (int64_t i = 0; heads != NULL && i < n_sel; i++)
        if (heads[i] < 0 || heads[i] >= c->n_heads)
            return attn_fail(ATTN_BAD_PARAM, "%s: heads[%lld] is %lld; it must be in [0, %lld)", fn,
                             (long long)i, (long long)heads[i], (long long)c->n_heads);
    return ATTN_OK;
}

attn_status attn_llama_attention(attn_ctx *ctx, const attn_llama *m, const int32_t *ids, int64_t n,
                                 int64_t layer, const int64_t *heads, int64_t n_heads_sel, float *w)
{
    ATTN__NOT_NULL("attn_llama_attention", ctx);
    attn_status st = check_map_args(m, ids, n, layer, heads, n_heads_sel, w);
    if (st != ATTN_OK) return st;
    const attn_llama_config *c = &m->cfg;
    int64_t hd = c->n_heads * c->d_head, n_sel = heads ? n_heads_sel : c->n_heads;
    attn_llama_session_params sp = {n, ATTN_DTYPE_F32};
    attn_llama_session *s = NULL;
    float *buf = attn_alloc((size_t)(2 * n * hd + n * c->n_heads) * sizeof(float));
    if (buf == NULL) return attn_fail(ATTN_NO_MEMORY, "attn_llama_attention: out of memory for %lld tokens", (long long)n);
    attn__llama_capture cap = {layer, buf};
    if ((st = attn_llama_session_create(m, &sp, &s)) == ATTN_OK)
        st = attn__llama_feed(ctx, s, ids, n, layer + 1, &cap, NULL);
    if (st == ATTN_OK) {
        attn_tensor tq = attn_tensor_make(buf, ATTN_DTYPE_F32, 1, n, c->n_heads, c->d_head);
        attn_tensor to = attn_tensor_make(buf + n * hd, ATTN_DTYPE_F32, 1, n, c->n_heads, c->d_head);
        attn_tensor tl = attn_tensor_make(buf + 2 * n * hd, ATTN_DTYPE_F32, 1, c->n_heads, n, 1);
        attn_tensor tk = cache_view(s, s->k, layer, n), tv = cache_view(s, s->v, layer, n);
        attn_tensor tw = attn_tensor_make(w, ATTN_DTYPE_F32, 1, n_sel, n, n);
        attn_sdpa_params p = attn_sdpa_params_default();
        p.causal = 1;
        p.align = ATTN_ALIGN_BOTTOM_RIGHT;
        st = attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, &tl);
        if (st == ATTN_OK) st = attn_sdpa_weights(ctx, &tq, &tk, &tl, &p, heads, n_sel, NULL, n, 0, &tw);
    }
    attn_llama_session_free(s);
    attn_release(buf);
    return st;
}
