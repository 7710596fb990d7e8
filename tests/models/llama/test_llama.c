/* test_llama.c - the Llama model (attn/llama.h) on tiny random models
 * written as GGUF files (llama_file.c).
 *
 * The forward pass against a naive float64 implementation of the model's
 * definition (the header's formulas: RMSNorm, adjacent-pair RoPE, grouped
 * causal attention, SwiGLU, tied or separate head) on the dequantized
 * weights; KV-cache decoding against recomputation (one token at a time,
 * and prompts split at every kind of boundary: the GEMV/GEMM switch, the
 * 512-token chunk); bitwise equality across thread counts; session rules;
 * the attention maps; sampling by hand-computed cases and by frequency;
 * the chat format; generation against a hand-written loop of forward and
 * sample; the loader's catalogue of corrupt files, a truncation sweep and
 * out-of-memory injection. The real SmolLM2 file is checked against
 * transformers in python/tests/test_llama.py. */
#include "llama_file.h"
#include "test.h"

#include <attn/gguf.h>
#include <attn/llama.h>

#include <stdlib.h>
#include <string.h>

static const char *tiny_path(void)
{
    static char path[512];
    if (path[0] == '\0') {
        t_llama_spec s = t_llama_spec_default();
        snprintf(path, sizeof path, "%s", t_path("tiny_llama.gguf"));
        if (t_llama_write(&s, path) != 0) fprintf(stderr, "test: cannot write %s\n", path);
    }
    return path;
}

static attn_llama *load_tiny(void)
{
    attn_llama *m = NULL;
    T_EQ_STATUS(attn_llama_load(tiny_path(), &m), ATTN_OK);
    return m;
}

static void rand_ids(uint64_t *rng, int32_t *ids, int64_t n)
{
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)t_rand_int(rng, 0, T_LLAMA_VOCAB - 1);
}

static float *logits_of(attn_ctx *ctx, const attn_llama *m, const int32_t *ids, int64_t n)
{
    attn_llama_session *s = NULL;
    float *lg = malloc((size_t)attn_llama_get_config(m)->n_vocab * sizeof(float));
    T_EQ_STATUS(attn_llama_session_create(m, NULL, &s), ATTN_OK);
    T_EQ_STATUS(attn_llama_forward(ctx, s, ids, n, lg), ATTN_OK);
    attn_llama_session_free(s);
    return lg;
}

static double max_abs_diff(const float *a, const float *b, int64_t n, double *scale)
{
    double worst = 0.0, big = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d;
        if (fabs((double)b[i]) > big) big = fabs((double)b[i]);
    }
    if (scale) *scale = big;
    return worst;
}

/* ---- a naive float64 model ------------------------------------------------------------ */

typedef struct {
    int64_t L, d, H, Hkv, D, ff, V;
    double theta, eps;
    double **w;  /* per tensor of the file, dequantized, in the file's order */
    char (*names)[48];
    int n;
} naive;

static const double *naive_w(const naive *nv, const char *name)
{
    for (int i = 0; i < nv->n; i++)
        if (strcmp(nv->names[i], name) == 0) return nv->w[i];
    return NULL;
}

/* Every tensor of the file as doubles (attn_gguf_read_rows, checked
 * against hand-computed blocks in the GGUF tests). */
static void naive_load(naive *nv, const char *path)
{
    attn_gguf *g = NULL;
    T_EQ_STATUS(attn_gguf_load(path, &g), ATTN_OK);
    nv->n = (int)attn_gguf_tensor_count(g);
    nv->w = calloc((size_t)nv->n, sizeof *nv->w);
    nv->names = calloc((size_t)nv->n, sizeof *nv->names);
    for (int i = 0; i < nv->n; i++) {
        attn_gguf_tensor_info t;
        T_EQ_STATUS(attn_gguf_tensor_get(g, i, &t), ATTN_OK);
        snprintf(nv->names[i], sizeof nv->names[i], "%s", t.name);
        float *f = malloc((size_t)t.numel * sizeof(float));
        T_EQ_STATUS(attn_gguf_read_rows(&t, 0, t.n_rows, f), ATTN_OK);
        nv->w[i] = malloc((size_t)t.numel * sizeof(double));
        for (int64_t e = 0; e < t.numel; e++) nv->w[i][e] = f[e];
        free(f);
    }
    attn_gguf_free(g);
}

static void naive_free(naive *nv)
{
    for (int i = 0; i < nv->n; i++) free(nv->w[i]);
    free(nv->w);
    free(nv->names);
}

/* y [out] = W [out, in] x [in] */
static void matvec(const double *W, const double *x, int64_t in, int64_t out, double *y)
{
    for (int64_t o = 0; o < out; o++) {
        double s = 0.0;
        for (int64_t i = 0; i < in; i++) s += W[o * in + i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(const double *x, const double *g, int64_t d, double eps, double *y)
{
    double ss = 0.0;
    for (int64_t i = 0; i < d; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = x[i] * r * g[i];
}

/* Rotates x [heads][D] of position p in the pairs (2i, 2i+1). */
static void rope(double *x, int64_t heads, int64_t D, int64_t p, double theta)
{
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < D / 2; i++) {
            double a = (double)p * pow(theta, -2.0 * (double)i / (double)D), c = cos(a), s = sin(a);
            double *v = x + h * D + 2 * i, x0 = v[0], x1 = v[1];
            v[0] = x0 * c - x1 * s;
            v[1] = x0 * s + x1 * c;
        }
}

/* logits [V] of the last of ids [n]; probs [H][n][n] of layer map_layer if
 * probs is not NULL. */
static void naive_forward(const naive *nv, const int32_t *ids, int64_t n, double *logits, int64_t map_layer,
                          double *probs)
{
    int64_t d = nv->d, D = nv->D, H = nv->H, Hkv = nv->Hkv, ff = nv->ff, kvd = Hkv * D;
    double *h = calloc((size_t)(n * d), sizeof(double)), *a = malloc((size_t)d * sizeof(double));
    double *q = malloc((size_t)(n * d) * sizeof(double)), *k = malloc((size_t)(n * kvd) * sizeof(double));
    double *v = malloc((size_t)(n * kvd) * sizeof(double)), *o = malloc((size_t)d * sizeof(double));
    double *t = malloc((size_t)d * sizeof(double)), *g = malloc((size_t)ff * sizeof(double));
    double *u = malloc((size_t)ff * sizeof(double)), *sc = malloc((size_t)n * sizeof(double));
    const double *E = naive_w(nv, "token_embd.weight");
    for (int64_t r = 0; r < n; r++) memcpy(h + r * d, E + (int64_t)ids[r] * d, (size_t)d * sizeof(double));
    for (int64_t l = 0; l < nv->L; l++) {
        char nm[64];
#define W(suffix) (snprintf(nm, sizeof nm, "blk.%lld." suffix, (long long)l), naive_w(nv, nm))
        for (int64_t r = 0; r < n; r++) {
            rmsnorm(h + r * d, W("attn_norm.weight"), d, nv->eps, a);
            matvec(W("attn_q.weight"), a, d, d, q + r * d);
            matvec(W("attn_k.weight"), a, d, kvd, k + r * kvd);
            matvec(W("attn_v.weight"), a, d, kvd, v + r * kvd);
            rope(q + r * d, H, D, r, nv->theta);
            rope(k + r * kvd, Hkv, D, r, nv->theta);
        }
        for (int64_t r = 0; r < n; r++) {
            for (int64_t hh = 0; hh < H; hh++) {
                int64_t kh = hh / (H / Hkv);
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j <= r; j++) {
                    double s = 0.0;
                    for (int64_t e = 0; e < D; e++) s += q[r * d + hh * D + e] * k[j * kvd + kh * D + e];
                    sc[j] = s / sqrt((double)D);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = 0; j <= r; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t e = 0; e < D; e++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j <= r; j++) acc += sc[j] / sum * v[j * kvd + kh * D + e];
                    o[hh * D + e] = acc;
                }
                for (int64_t j = 0; probs && l == map_layer && j < n; j++)
                    probs[(hh * n + r) * n + j] = j <= r ? sc[j] / sum : 0.0;
            }
            matvec(W("attn_output.weight"), o, d, d, t);
            for (int64_t i = 0; i < d; i++) q[r * d + i] = t[i]; /* q row r is not read again */
        }
        for (int64_t r = 0; r < n; r++) {
            double *hr = h + r * d;
            for (int64_t i = 0; i < d; i++) hr[i] += q[r * d + i];
            rmsnorm(hr, W("ffn_norm.weight"), d, nv->eps, a);
            matvec(W("ffn_gate.weight"), a, d, ff, g);
            matvec(W("ffn_up.weight"), a, d, ff, u);
            for (int64_t i = 0; i < ff; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            matvec(W("ffn_down.weight"), g, ff, d, t);
            for (int64_t i = 0; i < d; i++) hr[i] += t[i];
        }
#undef W
    }
    rmsnorm(h + (n - 1) * d, naive_w(nv, "output_norm.weight"), d, nv->eps, a);
    const double *head = naive_w(nv, "output.weight");
    matvec(head ? head : E, a, d, nv->V, logits);
    free(h), free(a), free(q), free(k), free(v), free(o), free(t), free(g), free(u), free(sc);
}

static void naive_from(naive *nv, const attn_llama_config *c, const char *path)
{
    memset(nv, 0, sizeof *nv);
    *nv = (naive){c->n_layers, c->d_model, c->n_heads, c->n_kv_heads, c->d_head, c->d_ff, c->n_vocab,
                  c->rope_theta, c->rms_eps, NULL, NULL, 0};
    naive_load(nv, path);
}

/* ---- tests -------------------------------------------------------------------------------- */

T_TEST(llama_load_tiny)
{
    attn_llama *m = load_tiny();
    if (m == NULL) return;
    const attn_llama_config *c = attn_llama_get_config(m);
    T_EQ_INT(c->n_layers, 2);
    T_EQ_INT(c->d_model, 64);
    T_EQ_INT(c->n_heads, 4);
    T_EQ_INT(c->n_kv_heads, 2);
    T_EQ_INT(c->d_head, 16);
    T_EQ_INT(c->d_ff, 96);
    T_EQ_INT(c->n_vocab, T_LLAMA_VOCAB);
    T_EQ_INT(c->n_ctx, 700);
    T_EQ_INT(c->tied, 1);
    T_NEAR(c->rope_theta, 10000.0, 0.0);
    T_NEAR(c->rms_eps, 1e-5, 1e-12);
    T_CHECK(attn_llama_default_system(m) && strcmp(attn_llama_default_system(m), "You are a test model") == 0);
    T_EQ_INT(attn_llama_eos_id(m), T_LLAMA_IM_END);
    T_EQ_INT(attn_llama_im_end_id(m), T_LLAMA_IM_END);
    T_EQ_INT(attn_bpe_vocab_size(attn_llama_tokenizer(m)), T_LLAMA_VOCAB);
    T_CHECK(attn_llama_get_config(NULL) == NULL && attn_llama_tokenizer(NULL) == NULL);
    T_EQ_INT(attn_llama_eos_id(NULL), -1);
    attn_llama_free(m);
    attn_llama_free(NULL);
}

/* Tied and separate heads, Q4_1 and Q8_0 matrices: logits of 40 tokens,
 * and the attention probabilities of layer 1, against float64. The float32
 * model's error is a few 1e-6 of the logits' scale; 1e-4 leaves room. */
T_TEST(llama_forward_vs_naive_float64)
{
    for (int variant = 0; variant < 2; variant++) {
        t_llama_spec sp = t_llama_spec_default();
        sp.untied = variant;
        sp.mat_type = variant ? 8 : 3;
        sp.seed = 77 + (uint64_t)variant;
        const char *path = t_path(variant ? "naive1.gguf" : "naive0.gguf");
        T_EQ_INT(t_llama_write(&sp, path), 0);
        attn_llama *m = NULL;
        T_EQ_STATUS(attn_llama_load(path, &m), ATTN_OK);
        if (m == NULL) return;
        const attn_llama_config *c = attn_llama_get_config(m);
        naive nv;
        naive_from(&nv, c, path);
        enum { N = 40 };
        int32_t ids[N];
        uint64_t rng = 5 + (uint64_t)variant;
        rand_ids(&rng, ids, N);
        double *ref = malloc((size_t)c->n_vocab * sizeof(double)), *probs = malloc((size_t)(c->n_heads * N * N) * sizeof(double));
        naive_forward(&nv, ids, N, ref, 1, probs);
        float *got = logits_of(t_ctx(2), m, ids, N), *reff = malloc((size_t)c->n_vocab * sizeof(float));
        for (int64_t i = 0; i < c->n_vocab; i++) reff[i] = (float)ref[i];
        double scale, diff = max_abs_diff(got, reff, c->n_vocab, &scale);
        T_LE(diff, 1e-4 * scale);
        T_CHECK(scale > 0.5);
        float *w = malloc((size_t)(c->n_heads * N * N) * sizeof(float));
        T_EQ_STATUS(attn_llama_attention(t_ctx(2), m, ids, N, 1, NULL, 0, w), ATTN_OK);
        double wd = 0.0;
        for (int64_t e = 0; e < c->n_heads * N * N; e++) wd = fmax(wd, fabs((double)w[e] - probs[e]));
        T_LE(wd, 1e-5);
        int64_t sel[2] = {3, 1};
        float *w2 = malloc((size_t)(2 * N * N) * sizeof(float));
        T_EQ_STATUS(attn_llama_attention(t_ctx(1), m, ids, N, 1, sel, 2, w2), ATTN_OK);
        T_CHECK(memcmp(w2, w + 3 * N * N, (size_t)(N * N) * sizeof(float)) == 0);
        T_CHECK(memcmp(w2 + N * N, w + 1 * N * N, (size_t)(N * N) * sizeof(float)) == 0);
        if (t_verbose) printf("  variant %d: logits max |diff| %.3g (scale %.3g), maps %.3g\n", variant, diff, scale, wd);
        free(ref), free(probs), free(got), free(reff), free(w), free(w2);
        naive_free(&nv);
        attn_llama_free(m);
    }
}

/* Logits after feeding a sequence in pieces equal those of feeding it whole:
 * token by token (the GEMV path and the decode attention), in pieces that
 * cross the GEMV/GEMM switch (8 rows) and the 512-token chunk. */
T_TEST(llama_kv_cache_equals_recompute)
{
    attn_llama *m = load_tiny();
    if (m == NULL) return;
    int64_t V = attn_llama_get_config(m)->n_vocab;
    enum { N = 600 };
    static int32_t ids[N];
    uint64_t rng = 11;
    rand_ids(&rng, ids, N);
    float *lg = malloc((size_t)V * sizeof(float));
    /* token by token up to 40, comparing with recomputation at 5 points */
    attn_llama_session *s = NULL;
    T_EQ_STATUS(attn_llama_session_create(m, NULL, &s), ATTN_OK);
    double worst = 0.0;
    for (int64_t t = 0; t < 40; t++) {
        T_EQ_STATUS(attn_llama_forward(t_ctx(2), s, ids + t, 1, lg), ATTN_OK);
        if (t % 9 == 0 || t == 39) {
            double scale;
            float *full = logits_of(t_ctx(2), m, ids, t + 1);
            double dd = max_abs_diff(lg, full, V, &scale);
            worst = fmax(worst, dd / scale);
            T_LE(dd, 1e-5 * scale);
            free(full);
        }
    }
    T_EQ_INT(attn_llama_session_length(s), 40);
    T_CHECK(memcmp(attn_llama_session_tokens(s), ids, 40 * sizeof(int32_t)) == 0);
    attn_llama_session_free(s);
    /* pieces: 3 + 9 + 500 + 1 + 87 = 600 */
    static const int64_t pieces[] = {3, 9, 500, 1, 87};
    T_EQ_STATUS(attn_llama_session_create(m, NULL, &s), ATTN_OK);
    int64_t at = 0;
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        T_EQ_STATUS(attn_llama_forward(t_ctx(2), s, ids + at, pieces[p], lg), ATTN_OK);
        at += pieces[p];
    }
    double scale;
    float *full = logits_of(t_ctx(2), m, ids, N);
    double dd = max_abs_diff(lg, full, V, &scale);
    T_LE(dd, 1e-5 * scale);
    worst = fmax(worst, dd / scale);
    if (t_verbose) printf("  largest |cached - recomputed| / max |logit|: %.3g\n", worst);
    free(full);
    free(lg);
    attn_llama_session_free(s);
    attn_llama_free(m);
}

T_TEST(llama_threads_bitwise)
{
    attn_llama *m = load_tiny();
    if (m == NULL) return;
    enum { N = 150 };
    int32_t ids[N];
    uint64_t rng = 3;
    rand_ids(&rng, ids, N);
    float *a = logits_of(t_ctx(1), m, ids, N), *b = logits_of(t_ctx(3), m, ids, N);
    T_CHECK(memcmp(a, b, (size_t)T_LLAMA_VOCAB * sizeof(float)) == 0);
    free(a);
    free(b);
    attn_llama_free(m);
}

T_TEST(llama_session_rules)
{
    attn_llama *m = load_tiny();
    if (m == NULL) return;
    attn_llama_session *s = NULL;
    attn_llama_session_params p = attn_llama_session_params_default();
    p.n_ctx = 701;
    T_EQ_STATUS(attn_llama_session_create(m, &p, &s), ATTN_BAD_PARAM);
    p.n_ctx = -1;
    T_EQ_STATUS(attn_llama_session_create(m, &p, &s), ATTN_BAD_PARAM);
    p.n_ctx = 0;
    p.cache_dtype = ATTN_DTYPE_BF16;
    T_EQ_STATUS(attn_llama_session_create(m, &p, &s), ATTN_UNSUPPORTED);
    T_EQ_STATUS(attn_llama_session_create(NULL, NULL, &s), ATTN_NULL_ARG);
    p = attn_llama_session_params_default();
    p.n_ctx = 20;
    T_EQ_STATUS(attn_llama_session_create(m, &p, &s), ATTN_OK);
    T_EQ_INT(attn_llama_session_capacity(s), 20);
    T_EQ_INT(attn_llama_session_length(s), 0);
    int32_t ids[32];
    uint64_t rng = 8;
    rand_ids(&rng, ids, 32);
    float lg[T_LLAMA_VOCAB], lg2[T_LLAMA_VOCAB];
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids, 15, lg), ATTN_OK);
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids + 15, 6, lg), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "6 tokens after the 15 in the session exceed its context of 20") != NULL);
    T_EQ_INT(attn_llama_session_length(s), 15);
    int32_t bad[2] = {5, T_LLAMA_VOCAB};
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, bad, 2, lg), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "ids[1] is 258") != NULL);
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids, 0, lg), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids, 1, (float *)(void *)ids), ATTN_OVERLAP);
    T_EQ_INT(attn_llama_session_length(s), 15);
    /* rewind to 10 and feed the same 5 again: the same logits */
    T_EQ_STATUS(attn_llama_session_rewind(s, 10), ATTN_OK);
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids + 10, 5, lg2), ATTN_OK);
    T_EQ_STATUS(attn_llama_session_rewind(s, 16), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_llama_session_rewind(s, 0), ATTN_OK);
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids, 15, lg2), ATTN_OK);
    T_CHECK(memcmp(lg, lg2, sizeof lg) == 0);
    T_EQ_STATUS(attn_llama_forward(t_ctx(1), s, ids, 5, NULL), ATTN_OK);
    T_EQ_INT(attn_llama_session_length(s), 20);
    T_EQ_INT(attn_llama_session_length(NULL), -1);
    attn_llama_session_free(s);
    attn_llama_session_free(NULL);
    float w[4];
    T_EQ_STATUS(attn_llama_attention(t_ctx(1), m, ids, 2, 2, NULL, 0, w), ATTN_BAD_PARAM);
    int64_t heads[1] = {4};
    T_EQ_STATUS(attn_llama_attention(t_ctx(1), m, ids, 2, 0, heads, 1, w), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_llama_attention(t_ctx(1), m, ids, 0, 0, NULL, 0, w), ATTN_BAD_DIM);
    attn_llama_free(m);
}

/* ---- sampling ---------------------------------------------------------------------------------- */

static int32_t draw(const attn_llama_sampling *p, const float *z, int64_t n, const int32_t *h, int64_t nh,
                    uint64_t step)
{
    int32_t id = -1;
    T_EQ_STATUS(attn_llama_sample(p, z, n, h, nh, step, &id), ATTN_OK);
    return id;
}

T_TEST(llama_sampling_rules)
{
    attn_llama_sampling p = attn_llama_sampling_default();
    const float z[5] = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
    T_EQ_INT(draw(&p, z, 5, NULL, 0, 0), 1); /* greedy: the first largest */
    T_EQ_INT(draw(NULL, z, 5, NULL, 0, 0), 1);
    /* penalty 2 on ids 1 (twice in the history) and 3: 3 -> 1.5, -2 -> -4 */
    p.repeat_penalty = 2.0;
    const int32_t hist[4] = {1, 3, 1, 0};
    T_EQ_INT(draw(&p, z, 5, hist, 3, 0), 2);
    p.repeat_last_n = 1; /* only the last token (0) counts: 1.0 -> 0.5 */
    T_EQ_INT(draw(&p, z, 5, hist, 4, 0), 1);
    /* top-k 1, top-p tiny, min-p 1 each leave the greedy choice (ties stay
     * for top-k and min-p: ids 1 and 2 share the top) */
    p = attn_llama_sampling_default();
    p.temperature = 1.0;
    p.top_k = 1;
    const float y[4] = {0.0f, 2.0f, 1.0f, -1.0f};
    for (uint64_t st = 0; st < 50; st++) T_EQ_INT(draw(&p, y, 4, NULL, 0, st), 1);
    p.top_k = 0;
    p.top_p = 1e-6;
    for (uint64_t st = 0; st < 50; st++) T_EQ_INT(draw(&p, y, 4, NULL, 0, st), 1);
    p.top_p = 0.0;
    p.min_p = 1.0;
    for (uint64_t st = 0; st < 50; st++) T_EQ_INT(draw(&p, y, 4, NULL, 0, st), 1);
    /* frequencies: softmax(y / 0.8) over 20000 steps, within 5 sigma */
    p = attn_llama_sampling_default();
    p.temperature = 0.8;
    p.seed = 42;
    int count[4] = {0};
    enum { DRAWS = 20000 };
    for (uint64_t st = 0; st < DRAWS; st++) count[draw(&p, y, 4, NULL, 0, st)]++;
    double e[4], sum = 0.0;
    for (int i = 0; i < 4; i++) sum += (e[i] = exp(y[i] / 0.8));
    for (int i = 0; i < 4; i++) {
        double pi = e[i] / sum, sd = sqrt(pi * (1 - pi) / DRAWS);
        T_NEAR((double)count[i] / DRAWS, pi, 5 * sd);
    }
    /* top-k 2 then top-p 0.9: {1, 2} with 0.73 / 0.27 -> p reaches 0.9 only with both */
    p.temperature = 1.0;
    p.top_k = 2;
    p.top_p = 0.9;
    memset(count, 0, sizeof count);
    for (uint64_t st = 0; st < DRAWS; st++) count[draw(&p, y, 4, NULL, 0, st)]++;
    T_EQ_INT(count[0] + count[3], 0);
    T_NEAR((double)count[1] / DRAWS, exp(2.0) / (exp(2.0) + exp(1.0)), 0.02);
    /* top-p 0.7: softmax is (0.09, 0.64, 0.24, 0.03); id 1 alone holds 0.64 <
     * 0.7, so id 2 joins, and ids 0 and 3 stay out */
    p.top_k = 0;
    p.top_p = 0.7;
    memset(count, 0, sizeof count);
    for (uint64_t st = 0; st < DRAWS; st++) count[draw(&p, y, 4, NULL, 0, st)]++;
    T_EQ_INT(count[0] + count[3], 0);
    /* min-p 0.3: exp(-1)=0.37 of the top survives (id 2), exp(-2) does not */
    p.top_p = 0.0;
    p.min_p = 0.3;
    memset(count, 0, sizeof count);
    for (uint64_t st = 0; st < DRAWS; st++) count[draw(&p, y, 4, NULL, 0, st)]++;
    T_EQ_INT(count[0] + count[3], 0);
    T_CHECK(count[2] > 0);
    /* the same seed and step, the same token; another seed, another stream */
    p = attn_llama_sampling_default();
    p.temperature = 1.0;
    p.seed = 1;
    int same = 0;
    for (uint64_t st = 0; st < 200; st++) {
        attn_llama_sampling q = p;
        q.seed = 2;
        same += draw(&p, y, 4, NULL, 0, st) == draw(&q, y, 4, NULL, 0, st);
        T_EQ_INT(draw(&p, y, 4, NULL, 0, st), draw(&p, y, 4, NULL, 0, st));
    }
    T_CHECK(same < 200);
    /* errors */
    int32_t out;
    const float nanz[2] = {0.0f, NAN};
    T_EQ_STATUS(attn_llama_sample(&p, nanz, 2, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    const float infz[2] = {0.0f, INFINITY};
    T_EQ_STATUS(attn_llama_sample(&p, infz, 2, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    const int32_t badh[1] = {4};
    T_EQ_STATUS(attn_llama_sample(&p, y, 4, badh, 1, 0, &out), ATTN_BAD_PARAM);
    attn_llama_sampling bad = p;
    bad.temperature = -1.0;
    T_EQ_STATUS(attn_llama_sample(&bad, y, 4, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    bad = p, bad.top_p = 1.5;
    T_EQ_STATUS(attn_llama_sample(&bad, y, 4, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    bad = p, bad.min_p = NAN;
    T_EQ_STATUS(attn_llama_sample(&bad, y, 4, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    bad = p, bad.top_k = -1;
    T_EQ_STATUS(attn_llama_sample(&bad, y, 4, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    bad = p, bad.repeat_penalty = INFINITY;
    T_EQ_STATUS(attn_llama_sample(&bad, y, 4, NULL, 0, 0, &out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_llama_sample(&p, y, 0, NULL, 0, 0, &out), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_llama_sample(&p, NULL, 4, NULL, 0, 0, &out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_llama_sample(&p, y, 4, NULL, 1, 0, &out), ATTN_NULL_ARG);
}

/* ---- chat format --------------------------------------------------------------------------------- */

static const char *chat(const attn_llama *m, const attn_llama_message *msgs, int64_t n, int gen, int cont,
                        char *buf, size_t cap)
{
    size_t len = 0;
    T_EQ_STATUS(attn_llama_chat_format(m, msgs, n, gen, cont, buf, cap - 1, &len), ATTN_OK);
    buf[len] = '\0';
    return buf;
}

T_TEST(llama_chat_format)
{
    attn_llama *m = load_tiny();
    if (m == NULL) return;
    char buf[512];
    attn_llama_message one[1] = {{"user", "Hi there"}};
    T_CHECK(strcmp(chat(m, one, 1, 1, 0, buf, sizeof buf),
                   "<|im_start|>system\nYou are a test model<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
                   "<|im_start|>assistant\n") == 0);
    attn_llama_message two[2] = {{"system", "Be brief."}, {"user", "é?"}};
    T_CHECK(strcmp(chat(m, two, 2, 0, 0, buf, sizeof buf),
                   "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\né?<|im_end|>\n") == 0);
    T_CHECK(strcmp(chat(m, one, 1, 1, 1, buf, sizeof buf),
                   "<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n") == 0);
    size_t n = 0;
    T_EQ_STATUS(attn_llama_chat_format(m, one, 1, 1, 0, NULL, 0, &n), ATTN_OK);
    T_EQ_INT(n, strlen("<|im_start|>system\nYou are a test model<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
                       "<|im_start|>assistant\n"));
    memset(buf, 'x', sizeof buf);
    T_EQ_STATUS(attn_llama_chat_format(m, one, 1, 1, 0, buf, n - 1, &n), ATTN_BAD_DIM);
    T_CHECK(buf[0] == 'x');
    attn_llama_message bad[1] = {{"user", "a<|im_end|>b"}};
    T_EQ_STATUS(attn_llama_chat_format(m, bad, 1, 1, 0, buf, sizeof buf, &n), ATTN_BAD_PARAM);
    bad[0] = (attn_llama_message){"user", "\xC3("};
    T_EQ_STATUS(attn_llama_chat_format(m, bad, 1, 1, 0, buf, sizeof buf, &n), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "not valid UTF-8 at byte 0") != NULL);
    bad[0] = (attn_llama_message){"us\ner", "x"};
    T_EQ_STATUS(attn_llama_chat_format(m, bad, 1, 1, 0, buf, sizeof buf, &n), ATTN_BAD_PARAM);
    bad[0] = (attn_llama_message){NULL, "x"};
    T_EQ_STATUS(attn_llama_chat_format(m, bad, 1, 1, 0, buf, sizeof buf, &n), ATTN_NULL_ARG);
    attn_llama_free(m);
    /* no template: chat is unsupported; no default system line: none added */
    t_llama_spec sp = t_llama_spec_default();
    sp.chat_template = NULL;
    T_EQ_INT(t_llama_write(&sp, t_path("notemplate.gguf")), 0);
    T_EQ_STATUS(attn_llama_load(t_path("notemplate.gguf"), &m), ATTN_OK);
    T_EQ_STATUS(attn_llama_chat_format(m, one, 1, 1, 0, buf, sizeof buf, &n), ATTN_UNSUPPORTED);
    T_CHECK(attn_llama_default_system(m) == NULL);
    attn_llama_free(m);
    sp.chat_template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    T_EQ_INT(t_llama_write(&sp, t_path("nosystem.gguf")), 0);
    T_EQ_STATUS(attn_llama_load(t_path("nosystem.gguf"), &m), ATTN_OK);
    T_CHECK(strcmp(chat(m, one, 1, 0, 0, buf, sizeof buf), "<|im_start|>user\nHi there<|im_end|>\n") == 0);
    attn_llama_free(m);
}

/* ---- generation ------------------------------------------------------------------------------------ */

typedef struct {
    int32_t ids[64];
    char text[2048];
    size_t len;
    int n, halt_at;
} streamed;

static int on_token(void *user, int32_t id, const char *text, size_t len)
{
    streamed *s = user;
    if (id >= 0) s->ids[s->n++] = id;
    if (s->len + len < sizeof s->text) memcpy(s->text + s->len, text, len), s->len += len;
    return s->n == s->halt_at;
}

T_TEST(llama_generate_matches_forward_and_sample)
{
    attn_llama *m = load_tiny();
    if (m == NULL) return;
    int32_t prompt[12];
    uint64_t rng = 21;
    rand_ids(&rng, prompt, 12);
    attn_llama_generate_params gp = attn_llama_generate_params_default();
    gp.sampling.temperature = 0.9;
    gp.sampling.top_k = 50;
    gp.sampling.seed = 7;
    gp.max_tokens = 30;
    /* by hand: forward, sample at step = position, stop tokens end it */
    attn_llama_session *s = NULL;
    T_EQ_STATUS(attn_llama_session_create(m, NULL, &s), ATTN_OK);
    float lg[T_LLAMA_VOCAB];
    int32_t want[30];
    int n_want = 0;
    T_EQ_STATUS(attn_llama_forward(t_ctx(2), s, prompt, 12, lg), ATTN_OK);
    while (n_want < 30) {
        int32_t id;
        T_EQ_STATUS(attn_llama_sample(&gp.sampling, lg, T_LLAMA_VOCAB, attn_llama_session_tokens(s),
                                      attn_llama_session_length(s), (uint64_t)attn_llama_session_length(s), &id),
                    ATTN_OK);
        if (id == T_LLAMA_IM_END) break;
        want[n_want++] = id;
        T_EQ_STATUS(attn_llama_forward(t_ctx(2), s, &id, 1, lg), ATTN_OK);
    }
    attn_llama_session_free(s);
    T_CHECK(n_want > 5);
    /* the same by attn_llama_generate, with the text streamed */
    T_EQ_STATUS(attn_llama_session_create(m, NULL, &s), ATTN_OK);
    int32_t out[30];
    int64_t n = 0;
    int stopped = -1;
    streamed st;
    memset(&st, 0, sizeof st);
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, on_token, &st, out, 30, &n, &stopped), ATTN_OK);
    T_EQ_INT(n, n_want);
    T_EQ_INT(stopped, n_want < 30);
    T_CHECK(memcmp(out, want, (size_t)n * sizeof(int32_t)) == 0);
    T_EQ_INT(st.n, n);
    T_CHECK(memcmp(st.ids, want, (size_t)n * sizeof(int32_t)) == 0);
    T_EQ_INT(attn_llama_session_length(s), 12 + n);
    /* the streamed text is the decoding of the ids, invalid UTF-8 replaced */
    char dec[2048];
    size_t dl = 0;
    T_EQ_STATUS(attn_bpe_decode(attn_llama_tokenizer(m), want, n, 0, dec, sizeof dec, &dl), ATTN_OK);
    T_CHECK(st.len >= dl / 2 && st.len <= 3 * dl + 3);
    attn_llama_session_free(s);
    /* the callback stops it after its 4th token, which is fed */
    T_EQ_STATUS(attn_llama_session_create(m, NULL, &s), ATTN_OK);
    memset(&st, 0, sizeof st);
    st.halt_at = 4;
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, on_token, &st, NULL, 0, &n, NULL), ATTN_OK);
    T_EQ_INT(n, n_want < 4 ? n_want : 4);
    T_EQ_INT(attn_llama_session_length(s), 12 + n);
    /* room and cap */
    gp.max_tokens = 0;
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, NULL, NULL, out, 30, &n, NULL), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "'cap' is 30") != NULL);
    gp.max_tokens = 31;
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, NULL, NULL, out, 30, &n, NULL), ATTN_BAD_DIM);
    gp.max_tokens = -1;
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, NULL, NULL, NULL, 0, &n, NULL), ATTN_BAD_PARAM);
    gp.max_tokens = 5;
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 0, &gp, NULL, NULL, NULL, 0, &n, NULL), ATTN_BAD_DIM);
    T_EQ_INT(attn_llama_session_length(s), 12 + (n_want < 4 ? n_want : 4));
    attn_llama_session_free(s);
    /* a session that fills up stops generation without an error */
    attn_llama_session_params sp = {14, ATTN_DTYPE_F32};
    T_EQ_STATUS(attn_llama_session_create(m, &sp, &s), ATTN_OK);
    gp.max_tokens = 0;
    gp.sampling.temperature = 0.0;
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, NULL, NULL, out, 2, &n, &stopped), ATTN_OK);
    T_CHECK(attn_llama_session_length(s) + (stopped ? 1 : 0) >= 12 + n);
    T_CHECK(n <= 2);
    T_EQ_STATUS(attn_llama_generate(t_ctx(2), s, prompt, 12, &gp, NULL, NULL, NULL, 0, &n, NULL), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "the prompt of 12 tokens does not fit") != NULL);
    attn_llama_session_free(s);
    attn_llama_free(m);
}

/* ---- corrupt files ------------------------------------------------------------------------------------ */

typedef struct {
    const char *what;
    void (*edit)(t_llama_spec *s);
    const char *message; /* a substring of attn_last_error() */
} corrupt_case;

static void c_arch(t_llama_spec *s) { s->arch = "qwen2"; }
static void c_no_layers(t_llama_spec *s) { s->omit_key = "llama.block_count"; }
static void c_no_eps(t_llama_spec *s) { s->omit_key = "llama.attention.layer_norm_rms_epsilon"; }
static void c_zero_layers(t_llama_spec *s) { s->n_layers = 0; }
static void c_heads(t_llama_spec *s) { s->heads = 3; }
static void c_kv_heads(t_llama_spec *s) { s->kv_heads = 3; }
static void c_odd_head(t_llama_spec *s) { s->heads = 64, s->kv_heads = 64, s->rope_dims = 1; }
static void c_rope_dims(t_llama_spec *s) { s->rope_dims = 8; }
static void c_rope_scaling(t_llama_spec *s) { s->rope_scaling = "linear"; }
static void c_theta(t_llama_spec *s) { s->theta = -1.0; }
static void c_eps(t_llama_spec *s) { s->eps = 2.0; }
static void c_vocab_key(t_llama_spec *s) { s->vocab_key = 300; }
static void c_tokens(t_llama_spec *s) { s->extra_tokens = 1; }
static void c_missing(t_llama_spec *s) { s->omit_tensor = "blk.1.ffn_up.weight"; }
static void c_missing_norm(t_llama_spec *s) { s->omit_tensor = "output_norm.weight"; }
static void c_extra(t_llama_spec *s) { s->extra_tensor = "blk.0.attn_q.bias"; }
static void c_extra_layer(t_llama_spec *s) { s->extra_tensor = "blk.2.attn_norm.weight"; }
static void c_grow(t_llama_spec *s) { s->grow_tensor = "blk.0.attn_k.weight"; }
static void c_grow_norm(t_llama_spec *s) { s->grow_tensor = "blk.1.ffn_norm.weight"; }
static void c_f16_matrix(t_llama_spec *s) { s->retype_tensor = "blk.0.attn_v.weight"; }
static void c_f16_norm(t_llama_spec *s) { s->retype_tensor = "blk.0.attn_norm.weight"; }
static void c_no_tokens(t_llama_spec *s) { s->omit_key = "tokenizer.ggml.tokens"; }
static void c_d_not_32(t_llama_spec *s) { s->d = 48, s->heads = 3, s->kv_heads = 1, s->mat_type = s->embd_type = 1; }

static const corrupt_case CORRUPT[] = {
    {"architecture", c_arch, "the architecture 'qwen2' is not 'llama'"},
    {"no block_count", c_no_layers, "llama.block_count"},
    {"no rms eps", c_no_eps, "llama.attention.layer_norm_rms_epsilon"},
    {"zero layers", c_zero_layers, "'llama.block_count' is 0"},
    {"heads do not divide d", c_heads, "is not a multiple of 'llama.attention.head_count' 3"},
    {"kv heads do not divide heads", c_kv_heads, "'llama.attention.head_count_kv' 3"},
    {"odd head dim", c_odd_head, "the head dimension 1 is odd"},
    {"rope dims", c_rope_dims, "'llama.rope.dimension_count' 8 differs from the head dimension 16"},
    {"rope scaling", c_rope_scaling, "'llama.rope.scaling.type' is 'linear'"},
    {"negative theta", c_theta, "'llama.rope.freq_base' is -1"},
    {"eps 2", c_eps, "'llama.attention.layer_norm_rms_epsilon' is 2"},
    {"vocab_size key", c_vocab_key, "'llama.vocab_size' is 300 but 'token_embd.weight' has 258 rows"},
    {"tokenizer size", c_tokens, "the tokenizer has 259 tokens but 'token_embd.weight' has 258 rows"},
    {"missing matrix", c_missing, "blk.1.ffn_up.weight"},
    {"missing norm", c_missing_norm, "output_norm.weight"},
    {"extra bias", c_extra, "tensor 'blk.0.attn_q.bias' is not part of the llama architecture"},
    {"extra layer", c_extra_layer, "tensor 'blk.2.attn_norm.weight' is not part of the llama architecture"},
    {"matrix shape", c_grow, "tensor 'blk.0.attn_k.weight' has dims [64, 33]; the config needs [64, 32]"},
    {"norm shape", c_grow_norm, "tensor 'blk.1.ffn_norm.weight' has dims [96]; the config needs [64]"},
    {"F16 matrix", c_f16_matrix, "tensor 'blk.0.attn_v.weight' is of type F16; attn multiplies Q4_1 and Q8_0"},
    {"F16 norm", c_f16_norm, "tensor 'blk.0.attn_norm.weight' is of type F16; norms must be F32"},
    {"no tokens", c_no_tokens, "tokenizer.ggml.tokens"},
    {"d not a multiple of 32", c_d_not_32, "must be multiples of 32"},
};

T_TEST(llama_corrupt_catalogue)
{
    for (size_t i = 0; i < sizeof CORRUPT / sizeof CORRUPT[0]; i++) {
        t_llama_spec s = t_llama_spec_default();
        CORRUPT[i].edit(&s);
        const char *path = t_path("corrupt.gguf");
        T_EQ_INT(t_llama_write(&s, path), 0);
        attn_llama *m = (attn_llama *)(uintptr_t)1;
        attn_status st = attn_llama_load(path, &m);
        T_EQ_STATUS(st, ATTN_BAD_FILE);
        T_CHECK(m == (attn_llama *)(uintptr_t)1);
        if (strstr(attn_last_error(), CORRUPT[i].message) == NULL)
            t_fail(__FILE__, __LINE__, "%s: message '%s' lacks '%s'", CORRUPT[i].what, attn_last_error(),
                   CORRUPT[i].message);
        if (t_verbose) printf("  %-28s %s\n", CORRUPT[i].what, attn_last_error());
    }
    attn_llama *m = NULL;
    T_EQ_STATUS(attn_llama_load(t_path("does-not-exist.gguf"), &m), ATTN_IO);
    T_EQ_STATUS(attn_llama_load(NULL, &m), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_llama_load(tiny_path(), NULL), ATTN_NULL_ARG);
}

/* Prefixes of the file: every one of its first 512 bytes, every 13th of the
 * rest of the metadata and tensor infos (the GGUF reader's own tests sweep
 * every byte), every 997th of the data: a clean ATTN_BAD_FILE each time
 * (never a crash, or a leak under the sanitizers). */
T_TEST(llama_truncation_sweep)
{
    t_gguf w = {0};
    t_llama_spec s = t_llama_spec_default();
    t_llama_image(&s, &w);
    attn_gguf *g = NULL;
    T_EQ_STATUS(attn_gguf_load(tiny_path(), &g), ATTN_OK);
    size_t data = attn_gguf_data_offset(g);
    attn_gguf_free(g);
    const char *path = t_path("trunc.gguf");
    long failed = 0, tried = 0;
    for (size_t cut = 0; cut < w.n; cut += cut < 512 ? 1 : cut < data ? 13 : 997) {
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(w.b, 1, cut, f) != cut || fclose(f) != 0) {
            t_fail(__FILE__, __LINE__, "cannot write %s", path);
            break;
        }
        attn_llama *m = NULL;
        attn_status st = attn_llama_load(path, &m);
        tried++;
        failed += st == ATTN_BAD_FILE && m == NULL;
        if (st != ATTN_BAD_FILE) t_fail(__FILE__, __LINE__, "cut at %zu: %s", cut, attn_status_name(st));
        attn_llama_free(m);
    }
    T_EQ_INT(failed, tried);
    t_gguf_free(&w);
}

static attn_status oom_run(void *arg)
{
    (void)arg;
    attn_llama *m = NULL;
    attn_llama_session *s = NULL;
    attn_status st = attn_llama_load(tiny_path(), &m);
    if (st == ATTN_OK) st = attn_llama_session_create(m, NULL, &s);
    int32_t ids[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    float lg[T_LLAMA_VOCAB];
    if (st == ATTN_OK) st = attn_llama_forward(t_ctx(2), s, ids, 20, lg);
    if (st == ATTN_OK) st = attn_llama_forward(t_ctx(2), s, ids, 1, lg);
    attn_llama_generate_params gp = attn_llama_generate_params_default();
    gp.max_tokens = 3;
    int64_t n;
    if (st == ATTN_OK) st = attn_llama_generate(t_ctx(2), s, ids, 2, &gp, NULL, NULL, NULL, 0, &n, NULL);
    float w[2 * 5 * 5];
    int64_t heads[2] = {0, 3};
    if (st == ATTN_OK) st = attn_llama_attention(t_ctx(2), m, ids, 5, 1, heads, 2, w);
    attn_llama_session_free(s);
    attn_llama_free(m);
    return st;
}

T_TEST(llama_out_of_memory)
{
    (void)t_ctx(2);
    tiny_path();
    T_CHECK(t_oom_sweep(oom_run, NULL) > 10);
}
