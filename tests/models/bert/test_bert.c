/* test_bert.c - the BERT encoder (attn/bert.h): a tiny random BERT written
 * with attn_safetensors_save and checked against a naive double-precision forward
 * written here from the model's definition (hidden states, embeddings,
 * attention maps); the config.json catalogue; corrupt and truncated weight
 * files; padding and thread-count invariance; argument checks; and
 * out-of-memory injection. The real all-MiniLM-L6-v2 is checked against
 * sentence-transformers in python/tests/test_minilm.py. */
#include "nn_test.h"

#include <attn/bert.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a tiny BERT ------------------------------------------------------------------------- */

/* H, 3H and F are not multiples of 32 or 16 (the AVX-512 and AVX2 GEMM
 * panel widths) and H and F exceed their k-chunk of 256 */
enum { V = 50, H = 264, NH = 4, HD = 66, F = 300, P = 40, TV = 2, L = 2, MAX_T = 64 };
static const double EPS = 0.25; /* far from the usual 1e-12: a wrong eps shows */

static const char *const layer_suffix[16] = {
    "attention.self.query.weight", "attention.self.query.bias",
    "attention.self.key.weight", "attention.self.key.bias",
    "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias",
    "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
    "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias",
    "output.LayerNorm.weight", "output.LayerNorm.bias"};

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    float *data;
} tensor;

typedef struct {
    tensor t[MAX_T];
    int n;
} tiny;

static void add(tiny *m, const char *name, int64_t d0, int64_t d1, uint64_t *rng, double lo,
                double hi)
{
    tensor *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    int64_t n = d1 ? d0 * d1 : d0;
    t->data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) t->data[i] = (float)t_rand_uniform(rng, lo, hi);
}

/* Random weights of the config V, H, NH, F, P, TV, L; LayerNorm weights
 * near 1, matrices scaled so activations stay of order 1. */
static void tiny_make(tiny *m, uint64_t seed)
{
    uint64_t rng = seed;
    m->n = 0;
    add(m, "embeddings.word_embeddings.weight", V, H, &rng, -1, 1);
    add(m, "embeddings.position_embeddings.weight", P, H, &rng, -0.5, 0.5);
    add(m, "embeddings.token_type_embeddings.weight", TV, H, &rng, -0.5, 0.5);
    add(m, "embeddings.LayerNorm.weight", H, 0, &rng, 0.8, 1.2);
    add(m, "embeddings.LayerNorm.bias", H, 0, &rng, -0.2, 0.2);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 16; k++) {
            char name[96];
            snprintf(name, sizeof name, "encoder.layer.%d.%s", l, layer_suffix[k]);
            int bias = k % 2 == 1, ln = k == 8 || k == 9 || k == 14 || k == 15;
            int64_t rows = k == 10 || k == 11 ? F : H, cols = k == 12 ? F : H;
            double a = 1.0 / sqrt((double)cols);
            if (ln)
                add(m, name, H, 0, &rng, bias ? -0.2 : 0.8, bias ? 0.2 : 1.2);
            else if (bias)
                add(m, name, rows, 0, &rng, -0.3, 0.3);
            else
                add(m, name, rows, cols, &rng, -1.5 * a, 1.5 * a);
        }
}

static void tiny_free(tiny *m)
{
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    m->n = 0;
}

static const float *get(const tiny *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return m->t[i].data;
    return NULL;
}

static const float *lw(const tiny *m, int l, int k)
{
    char name[96];
    snprintf(name, sizeof name, "encoder.layer.%d.%s", l, layer_suffix[k]);
    return get(m, name);
}

/* The tensors as safetensors entries, names under prefix (names [MAX_T][128]). */
static int entries(const tiny *m, const char *prefix, attn_safetensors_entry *e, char (*names)[128])
{
    for (int i = 0; i < m->n; i++) {
        snprintf(names[i], 128, "%s%s", prefix, m->t[i].name);
        e[i] = (attn_safetensors_entry){names[i], ATTN_DTYPE_F32, m->t[i].ndim,
                               {m->t[i].shape[0], m->t[i].shape[1]}, m->t[i].data};
    }
    return m->n;
}

static const char *path_in_tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", t_tmpdir(), name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    T_CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static const char *tiny_config_json(void)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"architectures\": [\"BertModel\"], \"vocab_size\": %d, \"hidden_size\": %d, "
             "\"num_attention_heads\": %d, \"intermediate_size\": %d, "
             "\"max_position_embeddings\": %d, \"type_vocab_size\": %d, "
             "\"num_hidden_layers\": %d, \"layer_norm_eps\": %g, \"hidden_act\": \"gelu\", "
             "\"position_embedding_type\": \"absolute\", \"hidden_dropout_prob\": 0.1}",
             V, H, NH, F, P, TV, L, EPS);
    return buf;
}

/* Writes <dir>/config.json and <dir>/model.safetensors for e[0..n); returns dir. */
static const char *write_model(const char *dir_name, const attn_safetensors_entry *e, int64_t n)
{
    const char *dir = path_in_tmp(dir_name);
    char cmd[600], p[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    T_CHECK(system(cmd) == 0);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, tiny_config_json());
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    T_EQ_STATUS(attn_safetensors_save(p, e, n, NULL, NULL, 0), ATTN_OK);
    return dir;
}

static const char *write_tiny(const tiny *m, const char *dir_name)
{
    attn_safetensors_entry e[MAX_T];
    char names[MAX_T][128];
    int n = entries(m, "", e, names);
    return write_model(dir_name, e, n);
}

/* ---- the naive double-precision reference --------------------------------------------- */

/* With naive_bf16 set, the twin of attn_bert_set_dtype(BF16): each dense
 * layer's weights and input rounded to bfloat16 (the input from its
 * float32 rounding, as attn holds it), the rest in double as before. */
static bool naive_bf16;

static double bf16_of(double v)
{
    uint32_t u;
    float f = (float)v;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u; /* to nearest, ties to even (finite) */
    memcpy(&f, &u, sizeof f);
    return f;
}

/* y [n, out] = x [n, in] w^T + b */
static void lin(const double *x, int64_t n, int64_t in, const float *w, const float *b,
                int64_t out, double *y)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b[o];
            for (int64_t i = 0; i < in; i++)
                acc += naive_bf16 ? bf16_of(x[r * in + i]) * bf16_of(w[o * in + i])
                                  : x[r * in + i] * (double)w[o * in + i];
            y[r * out + o] = acc;
        }
}

static void ln(double *x, int64_t n, const float *g, const float *b)
{
    for (int64_t r = 0; r < n; r++) {
        double mu = 0, var = 0, *row = x + r * H;
        for (int i = 0; i < H; i++) mu += row[i] / H;
        for (int i = 0; i < H; i++) var += (row[i] - mu) * (row[i] - mu) / H;
        for (int i = 0; i < H; i++) row[i] = (row[i] - mu) / sqrt(var + EPS) * g[i] + b[i];
    }
}

/* out [n, H] = the encoder's output for ids[0..n); map [n, n], if not NULL,
 * receives the probabilities of (map_layer, map_head). */
static void naive_forward(const tiny *m, const int32_t *ids, int n, double *out, int map_layer,
                          int map_head, double *map)
{
    double *x = out, q[P * H], k[P * H], v[P * H], c[P * H], a[P * H], h[P * F];
    const float *word = get(m, "embeddings.word_embeddings.weight");
    const float *pos = get(m, "embeddings.position_embeddings.weight");
    const float *type = get(m, "embeddings.token_type_embeddings.weight");
    for (int t = 0; t < n; t++)
        for (int i = 0; i < H; i++)
            x[t * H + i] = (double)word[ids[t] * H + i] + type[i] + pos[t * H + i];
    ln(x, n, get(m, "embeddings.LayerNorm.weight"), get(m, "embeddings.LayerNorm.bias"));
    for (int l = 0; l < L; l++) {
        lin(x, n, H, lw(m, l, 0), lw(m, l, 1), H, q);
        lin(x, n, H, lw(m, l, 2), lw(m, l, 3), H, k);
        lin(x, n, H, lw(m, l, 4), lw(m, l, 5), H, v);
        for (int hh = 0; hh < NH; hh++)
            for (int i = 0; i < n; i++) {
                double s[P], mx = -INFINITY, z = 0;
                for (int j = 0; j < n; j++) {
                    s[j] = 0;
                    for (int d = 0; d < HD; d++) s[j] += q[i * H + hh * HD + d] * k[j * H + hh * HD + d];
                    s[j] /= sqrt((double)HD);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < n; j++) z += (s[j] = exp(s[j] - mx));
                for (int d = 0; d < HD; d++) c[i * H + hh * HD + d] = 0;
                for (int j = 0; j < n; j++) {
                    if (map && l == map_layer && hh == map_head) map[i * n + j] = s[j] / z;
                    for (int d = 0; d < HD; d++) c[i * H + hh * HD + d] += s[j] / z * v[j * H + hh * HD + d];
                }
            }
        lin(c, n, H, lw(m, l, 6), lw(m, l, 7), H, a);
        for (int e = 0; e < n * H; e++) x[e] += a[e];
        ln(x, n, lw(m, l, 8), lw(m, l, 9));
        lin(x, n, H, lw(m, l, 10), lw(m, l, 11), F, h);
        for (int e = 0; e < n * F; e++) h[e] = 0.5 * h[e] * (1.0 + erf(h[e] / sqrt(2.0)));
        lin(h, n, F, lw(m, l, 12), lw(m, l, 13), H, a);
        for (int e = 0; e < n * H; e++) x[e] += a[e];
        ln(x, n, lw(m, l, 14), lw(m, l, 15));
    }
}

/* A batch: B sequences of random ids with the given lengths, padded to S. */
static void random_ids(int32_t *ids, const int64_t *lens, int64_t B, int64_t S, uint64_t seed)
{
    uint64_t rng = seed;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < S; t++)
            ids[b * S + t] = t < lens[b] ? (int32_t)t_rand_int(&rng, 0, V - 1) : -12345;
}

static attn_bert *load_tiny(const tiny *m, const char *dir_name)
{
    attn_bert *b = NULL;
    T_EQ_STATUS(attn_bert_load(write_tiny(m, dir_name), &b), ATTN_OK);
    return b;
}

/* ---- against the naive forward ------------------------------------------------------------ */

/* max |hidden - ref| over the real rows of a batch (ref [B][S * H] from the
 * naive forward); padded rows must be 0. */
static double batch_error(const double *ref, const int64_t *lens, int64_t B, int64_t S,
                          const float *hidden)
{
    double err = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < S; t++)
            for (int i = 0; i < H; i++) {
                double got = hidden[(b * S + t) * H + i];
                double e = t < lens[b] ? fabs(got - ref[(b * S + t) * H + i]) : fabs(got) * 1e30;
                err = e > err || isnan(e) ? e : err;
            }
    return err;
}

/* max |emb - normalize(mean of the real rows of ref)| */
static double embed_error(const double *ref, const int64_t *lens, int64_t B, int64_t S,
                          const float *emb)
{
    double err = 0;
    for (int64_t b = 0; b < B; b++) {
        double mean[H] = {0}, norm = 0;
        for (int64_t t = 0; t < lens[b]; t++)
            for (int i = 0; i < H; i++) mean[i] += ref[(b * S + t) * H + i] / (double)lens[b];
        for (int i = 0; i < H; i++) norm += mean[i] * mean[i];
        for (int i = 0; i < H; i++) err = fmax(err, fabs(emb[b * H + i] - mean[i] / sqrt(norm)));
    }
    return err;
}

T_TEST(bert_forward_vs_naive_double)
{
    tiny m;
    tiny_make(&m, 11);
    attn_bert *b = load_tiny(&m, "naive");
    enum { B = 4, S = 17 };
    int64_t lens[B] = {7, 1, 17, 12};
    int32_t ids[B * S];
    random_ids(ids, lens, B, S, 5);
    static double ref[B * S * H];
    static float hidden[B * S * H], emb[B * H];
    for (int s = 0; s < B; s++) naive_forward(&m, ids + s * S, (int)lens[s], ref + s * S * H, -1, -1, NULL);
    for (int k = 0; k < T_KERNELS; k++) { /* the GEMM and row kernels of each ctx kernel */
        if (!t_kernel_available(t_kernels[k])) continue;
        for (int threads = 1; threads <= 2; threads++) {
            attn_ctx *ctx = t_ctx(threads);
            T_EQ_STATUS(attn_ctx_set_kernel(ctx, t_kernels[k]), ATTN_OK);
            memset(hidden, 0x7F, sizeof hidden);
            T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, B, S, hidden), ATTN_OK);
            T_LE(batch_error(ref, lens, B, S, hidden), 2e-5);
            T_EQ_STATUS(attn_bert_embed(ctx, b, ids, lens, B, S, emb), ATTN_OK);
            T_LE(embed_error(ref, lens, B, S, emb), 1e-6);
            attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
        }
    }
    const attn_bert_config *c = attn_bert_get_config(b);
    T_EQ_INT(c->hidden_size, H);
    T_EQ_INT(c->max_seq_length, P);
    T_CHECK(c->layer_norm_eps == EPS);
    attn_bert_free(b);
    tiny_free(&m);
}

T_TEST(bert_attention_maps_vs_naive_double)
{
    tiny m;
    tiny_make(&m, 12);
    attn_bert *b = load_tiny(&m, "maps");
    enum { N = 9 };
    int64_t n = N;
    int32_t ids[N];
    random_ids(ids, &n, 1, N, 8);
    double ref[P * H], map[N * N];
    float w[N * N];
    for (int l = 0; l < L; l++)
        for (int h = 0; h < NH; h++) {
            naive_forward(&m, ids, N, ref, l, h, map);
            T_EQ_STATUS(attn_bert_attention(t_ctx(2), b, ids, N, l, h, w), ATTN_OK);
            double err = 0, worst_sum = 0;
            for (int i = 0; i < N; i++) {
                double sum = 0;
                for (int j = 0; j < N; j++) {
                    err = fmax(err, fabs(w[i * N + j] - map[i * N + j]));
                    sum += w[i * N + j];
                }
                worst_sum = fmax(worst_sum, fabs(sum - 1));
            }
            T_LE(err, 1e-6);
            T_LE(worst_sum, 1e-5);
        }
    attn_bert_free(b);
    tiny_free(&m);
}

/* ---- invariances ------------------------------------------------------------------------------ */

T_TEST(bert_padding_invariance)
{
    tiny m;
    tiny_make(&m, 13);
    attn_bert *b = load_tiny(&m, "pad");
    enum { B = 5, S = 31 };
    int64_t lens[B] = {6, 31, 6, 6, 20};
    int32_t ids[B * S];
    random_ids(ids, lens, B, S, 9);
    float emb[B * H], hidden[B * S * H], one[S * H], one_emb[H];
    attn_ctx *ctx = t_ctx(2);
    T_EQ_STATUS(attn_bert_embed(ctx, b, ids, lens, B, S, emb), ATTN_OK);
    T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, B, S, hidden), ATTN_OK);
    double e_emb = 0, e_hid = 0;
    for (int s = 0; s < B; s++) { /* each sequence alone, unpadded */
        T_EQ_STATUS(attn_bert_embed(ctx, b, ids + s * S, &lens[s], 1, lens[s], one_emb), ATTN_OK);
        T_EQ_STATUS(attn_bert_forward(ctx, b, ids + s * S, &lens[s], 1, lens[s], one), ATTN_OK);
        for (int i = 0; i < H; i++) e_emb = fmax(e_emb, fabs(one_emb[i] - emb[s * H + i]));
        for (int64_t e = 0; e < lens[s] * H; e++) e_hid = fmax(e_hid, fabs(one[e] - hidden[s * S * H + e]));
    }
    T_LE(e_emb, 1e-6);
    T_LE(e_hid, 5e-6);
    attn_bert_free(b);
    tiny_free(&m);
}

/* Bitwise the same for 1-4 threads, on every path of the dense layers: AUTO
 * (the best GEMM, on the weights packed at load time), AVX2 (where it is
 * not the best, a GEMM that packs the weights as it goes) and TILED (the
 * portable GEMM); the paths agree within float rounding. */
T_TEST(bert_bitwise_across_thread_counts)
{
    tiny m;
    tiny_make(&m, 14);
    attn_bert *b = load_tiny(&m, "threads");
    enum { B = 7, S = 40 };
    int64_t lens[B] = {40, 3, 33, 17, 40, 25, 9}; /* 167 rows: several row blocks */
    int32_t ids[B * S];
    random_ids(ids, lens, B, S, 10);
    static float first[3][B * S * H], out[B * S * H];
    const attn_kernel path[3] = {ATTN_KERNEL_AUTO, ATTN_KERNEL_AVX2, ATTN_KERNEL_TILED};
    for (int p = 0; p < 3; p++) {
        if (!t_kernel_available(path[p])) {
            memcpy(first[p], first[0], sizeof out);
            continue;
        }
        for (int threads = 1; threads <= 4; threads++) {
            attn_ctx *ctx = t_ctx(threads);
            T_EQ_STATUS(attn_ctx_set_kernel(ctx, path[p]), ATTN_OK);
            float *dst = threads == 1 ? first[p] : out;
            T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, B, S, dst), ATTN_OK);
            if (threads > 1) T_CHECK(memcmp(first[p], out, sizeof out) == 0);
            attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
        }
    }
    double paths = 0;
    for (int e = 0; e < B * S * H; e++)
        for (int p = 1; p < 3; p++) paths = fmax(paths, fabs(first[0][e] - first[p][e]));
    T_LE(paths, 2e-5);
    attn_bert_free(b);
    tiny_free(&m);
}

/* The root mean square of hidden - ref over the real rows. */
static double batch_rms(const double *ref, const int64_t *lens, int64_t B, int64_t S,
                        const float *hidden)
{
    double sum = 0;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t e = b * S * H; e < (b * S + lens[b]) * H; e++, n++)
            sum += (hidden[e] - ref[e]) * (hidden[e] - ref[e]);
    return sqrt(sum / (double)n);
}

/* ---- bfloat16 dense layers ------------------------------------------------------------------ */

/* attn_bert_set_dtype(BF16) against the naive twin with bfloat16 dense
 * layers, on every ctx kernel (TILED packs the bfloat16 panels per call)
 * and 1-3 threads (bitwise the same); far from the float32 twin, so the
 * comparison can tell the two apart; back to F32 gives the float32 model's
 * bits again; other dtypes are refused. */
T_TEST(bert_bf16_vs_naive_double)
{
    tiny m;
    tiny_make(&m, 21);
    attn_bert *b = load_tiny(&m, "bf16");
    enum { B = 3, S = 23 };
    int64_t lens[B] = {23, 5, 14};
    int32_t ids[B * S];
    random_ids(ids, lens, B, S, 6);
    static double ref[B * S * H], ref32[B * S * H];
    static float f32[B * S * H], hidden[B * S * H], first[B * S * H], emb[B * H];
    for (int s = 0; s < B; s++) {
        naive_forward(&m, ids + s * S, (int)lens[s], ref32 + s * S * H, -1, -1, NULL);
        naive_bf16 = true;
        naive_forward(&m, ids + s * S, (int)lens[s], ref + s * S * H, -1, -1, NULL);
        naive_bf16 = false;
    }
    attn_ctx *ctx = t_ctx(2);
    T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, B, S, f32), ATTN_OK);
    T_EQ_INT(attn_bert_get_dtype(b), ATTN_DTYPE_F32);
    T_EQ_STATUS(attn_bert_set_dtype(b, ATTN_DTYPE_F16), ATTN_BAD_DTYPE);
    T_CHECK(strstr(attn_last_error(), "'dtype'") != NULL);
    T_EQ_STATUS(attn_bert_set_dtype(NULL, ATTN_DTYPE_BF16), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_set_dtype(b, ATTN_DTYPE_BF16), ATTN_OK);
    T_EQ_STATUS(attn_bert_set_dtype(b, ATTN_DTYPE_BF16), ATTN_OK); /* again: nothing to do */
    T_EQ_INT(attn_bert_get_dtype(b), ATTN_DTYPE_BF16);
    double worst = 0, apart;
    for (int k = 0; k < T_KERNELS; k++) {
        if (!t_kernel_available(t_kernels[k])) continue;
        for (int threads = 1; threads <= 3; threads++) {
            attn_ctx *c = t_ctx(threads);
            T_EQ_STATUS(attn_ctx_set_kernel(c, t_kernels[k]), ATTN_OK);
            memset(hidden, 0x7F, sizeof hidden);
            T_EQ_STATUS(attn_bert_forward(c, b, ids, lens, B, S, hidden), ATTN_OK);
            if (threads == 1) memcpy(first, hidden, sizeof first);
            T_CHECK(memcmp(first, hidden, sizeof first) == 0);
            worst = fmax(worst, batch_error(ref, lens, B, S, hidden));
            T_EQ_STATUS(attn_bert_embed(c, b, ids, lens, B, S, emb), ATTN_OK);
            static double h64[B * S * H]; /* the embedding pools this hidden state */
            for (int e = 0; e < B * S * H; e++) h64[e] = hidden[e];
            T_LE(embed_error(h64, lens, B, S, emb), 1e-6);
            attn_ctx_set_kernel(c, ATTN_KERNEL_AUTO);
        }
    }
    apart = batch_error(ref32, lens, B, S, first);
    double rms = batch_rms(ref, lens, B, S, first), rms32 = batch_rms(ref32, lens, B, S, first);
    /* Not element for element: where attn's float32 activation and the
     * twin's double one fall on either side of a bfloat16 rounding point,
     * the two round to neighbours (a few elements a layer), and that spreads
     * through the next attention; so the measure is the RMS over the batch,
     * held well below the float32 twin's (a dense input left unrounded
     * doubles it: 6.4e-4 here; 1.3e-3 and 1.6e-3 with the FFN's or the
     * attention output's input left unrounded). */
    T_LE(worst, 1e-2);
    T_LE(rms, 1e-3);
    T_LE(rms, rms32 / 3);
    printf("  bf16 model vs its double twin: max %.3g rms %.3g (vs the float32 twin: max %.3g rms %.3g)\n", worst, rms, apart, rms32);
    T_EQ_STATUS(attn_bert_set_dtype(b, ATTN_DTYPE_F32), ATTN_OK);
    T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, B, S, hidden), ATTN_OK);
    T_CHECK(memcmp(f32, hidden, sizeof hidden) == 0);
    attn_bert_free(b);
    tiny_free(&m);
}

/* ---- config.json ---------------------------------------------------------------------------- */

/* The tiny config with `from` replaced by `to` (first occurrence). */
static const char *config_with(const char *from, const char *to)
{
    static char buf[1024];
    const char *base = tiny_config_json(), *at = strstr(base, from);
    T_CHECK(at != NULL);
    if (!at) return base;
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return buf;
}

T_TEST(bert_config_catalogue)
{
    attn_bert_config c;
    T_EQ_STATUS(attn_bert_config_from_json(tiny_config_json(), strlen(tiny_config_json()), &c),
                ATTN_OK);
    T_EQ_INT(c.vocab_size, V);
    T_EQ_INT(c.n_layers, L);
    T_EQ_INT(c.n_heads, NH);
    T_EQ_INT(c.intermediate_size, F);
    T_EQ_INT(c.max_position, P);
    T_EQ_INT(c.type_vocab_size, TV);
    T_EQ_INT(c.max_seq_length, P);
    static const struct {
        const char *from, *to, *needle;
    } bad[] = {
        {"\"vocab_size\": 50", "\"vocab_size\": 0", "vocab_size"},
        {"\"vocab_size\": 50", "\"vocab_size\": 16777217", "vocab_size"},
        {"\"vocab_size\": 50", "\"vocab_size\": 50.5", "vocab_size"},
        {"\"vocab_size\": 50", "\"vocab_size\": \"50\"", "vocab_size"},
        {"\"vocab_size\": 50, ", "", "vocab_size"},
        {"\"hidden_size\": 264", "\"hidden_size\": -264", "hidden_size"},
        {"\"hidden_size\": 264", "\"hidden_size\": 266", "not a multiple"},
        {"\"hidden_size\": 264", "\"hidden_size\": 1e30", "hidden_size"},
        {"\"hidden_size\": 264", "\"hidden_size\": null", "hidden_size"},
        {"\"hidden_size\": 264", "\"hidden_size\": 65537", "hidden_size"},
        {"\"num_attention_heads\": 4", "\"num_attention_heads\": 0", "num_attention_heads"},
        {"\"num_attention_heads\": 4, ", "", "num_attention_heads"},
        {"\"intermediate_size\": 300", "\"intermediate_size\": true", "intermediate_size"},
        {"\"max_position_embeddings\": 40", "\"max_position_embeddings\": 0", "max_position_embeddings"},
        {"\"type_vocab_size\": 2", "\"type_vocab_size\": 0", "type_vocab_size"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1025", "num_hidden_layers"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": [2]", "num_hidden_layers"},
        {"\"layer_norm_eps\": 0.25", "\"layer_norm_eps\": 0", "layer_norm_eps"},
        {"\"layer_norm_eps\": 0.25", "\"layer_norm_eps\": -1e-12", "layer_norm_eps"},
        {"\"layer_norm_eps\": 0.25", "\"layer_norm_eps\": 1", "layer_norm_eps"},
        {"\"layer_norm_eps\": 0.25", "\"layer_norm_eps\": \"1e-12\"", "layer_norm_eps"},
        {"\"layer_norm_eps\": 0.25, ", "", "layer_norm_eps"},
        {"\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"", "hidden_act"},
        {"\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu_new\"", "hidden_act"},
        {"\"hidden_act\": \"gelu\"", "\"hidden_act\": 1", "hidden_act"},
        {"\"hidden_act\": \"gelu\", ", "", "hidden_act"},
        {"\"absolute\"", "\"relative_key\"", "position_embedding_type"},
        {"\"absolute\"", "null", "position_embedding_type"},
        {"\"hidden_size\": 264", "\"hidden_size\": 264, \"hidden_size\": 264", "duplicate"},
        {"{", "[", ""},
        {"0.1}", "0.1,}", ""},
        {"0.1}", "0.1} x", ""},
        {"0.1}", "0.1", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *text = config_with(bad[i].from, bad[i].to);
        memset(&c, 0xAB, sizeof c);
        attn_bert_config before = c;
        attn_status st = attn_bert_config_from_json(text, strlen(text), &c);
        T_EQ_STATUS(st, ATTN_BAD_FILE);
        T_CHECK(strstr(attn_last_error(), bad[i].needle) != NULL);
        T_CHECK(memcmp(&c, &before, sizeof c) == 0); /* nothing written on error */
        if (st != ATTN_BAD_FILE || !strstr(attn_last_error(), bad[i].needle))
            fprintf(stderr, "  config case %zu: %s\n  -> %s\n", i, text, attn_last_error());
    }
    static const char *const not_objects[] = {"", "[]", "null", "\"x\"", "{}"};
    for (size_t i = 0; i < 5; i++)
        T_EQ_STATUS(attn_bert_config_from_json(not_objects[i], strlen(not_objects[i]), &c),
                    ATTN_BAD_FILE);
    T_EQ_STATUS(attn_bert_config_from_json(NULL, 0, &c), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_config_from_json("{}", 2, NULL), ATTN_NULL_ARG);
}

T_TEST(bert_sentence_config_and_missing_files)
{
    tiny m;
    tiny_make(&m, 15);
    const char *dir = write_tiny(&m, "sbert");
    char cfg[600], wts[600], sb[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(wts, sizeof wts, "%s/model.safetensors", dir);
    snprintf(sb, sizeof sb, "%s/sentence_bert_config.json", dir);
    attn_bert *b = NULL;
    write_text(sb, "{\"max_seq_length\": 12, \"do_lower_case\": false}");
    T_EQ_STATUS(attn_bert_load(dir, &b), ATTN_OK);
    T_EQ_INT(b ? attn_bert_get_config(b)->max_seq_length : -1, 12);
    attn_bert_free(b);
    static const char *const bad_sb[] = {"{\"max_seq_length\": 0}", "{\"max_seq_length\": 41}",
                                         "{\"max_seq_length\": \"12\"}", "{}", "[12]", "{"};
    for (int i = 0; i < 6; i++) {
        write_text(sb, bad_sb[i]);
        b = (attn_bert *)&m; /* must stay untouched */
        T_EQ_STATUS(attn_bert_load(dir, &b), ATTN_BAD_FILE);
        T_CHECK(b == (attn_bert *)&m);
    }
    /* something that is not a regular file in its place: an error, not a default (nor a hang) */
    T_EQ_INT(remove(sb), 0);
    T_EQ_INT(mkfifo(sb, 0600), 0);
    alarm(20);
    T_EQ_STATUS(attn_bert_load(dir, &b), ATTN_IO);
    alarm(0);
    T_CHECK(b == (attn_bert *)&m && strstr(attn_last_error(), "sentence_bert_config.json': it is a FIFO") != NULL);
    T_EQ_INT(remove(sb), 0);
    T_EQ_STATUS(attn_bert_load_files(cfg, wts, NULL, &b), ATTN_OK); /* no sentence config */
    T_EQ_INT(b ? attn_bert_get_config(b)->max_seq_length : -1, P);
    attn_bert_free(b);
    T_EQ_STATUS(attn_bert_load_files(cfg, wts, path_in_tmp("absent.json"), &b), ATTN_IO);
    T_EQ_STATUS(attn_bert_load_files(path_in_tmp("absent.json"), wts, NULL, &b), ATTN_IO);
    T_EQ_STATUS(attn_bert_load_files(cfg, path_in_tmp("absent.st"), NULL, &b), ATTN_IO);
    T_EQ_STATUS(attn_bert_load(path_in_tmp("no_such_dir"), &b), ATTN_IO);
    T_EQ_STATUS(attn_bert_load(NULL, &b), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_load(dir, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_load_files(NULL, wts, NULL, &b), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_load_files(cfg, NULL, NULL, &b), ATTN_NULL_ARG);
    T_CHECK(attn_bert_get_config(NULL) == NULL);
    attn_bert_free(NULL);
    tiny_free(&m);
}

/* ---- weight files ---------------------------------------------------------------------------- */

typedef enum { DROP, RESHAPE, FLATTEN, TO_I32, TO_I64, RENAME, ADD, PUT_NAN, PUT_INF } edit_kind;

/* One corruption of the tiny model's file: what to do to tensor `name`. */
typedef struct {
    edit_kind kind;
    const char *name, *arg; /* RENAME/ADD: the new name */
} edit;

/* Writes the tiny model with edit ed applied; returns the directory. */
static const char *write_edited(const tiny *m, const edit *ed)
{
    attn_safetensors_entry e[MAX_T + 1];
    char names[MAX_T + 1][128];
    static float junk[(V + F + 1) * H]; /* more than any tensor of the tiny model */
    static int64_t ids64[P];
    int n = entries(m, "", e, names), k = 0;
    while (k < n && strcmp(e[k].name, ed->name) != 0) k++;
    T_CHECK(k < n || ed->kind == ADD);
    float *copy = NULL;
    switch (ed->kind) {
    case DROP: e[k] = e[--n]; break;
    case RESHAPE: e[k].shape[0] += 1; e[k].data = junk; break;
    case FLATTEN: e[k].shape[0] *= e[k].shape[1]; e[k].ndim = 1; break;
    case TO_I32: e[k].dtype = ATTN_DTYPE_I32; break;
    case TO_I64: e[k].dtype = ATTN_DTYPE_I64; e[k].shape[0] /= 2; break;
    case RENAME: e[k].name = ed->arg; break;
    case ADD:
        e[n] = (attn_safetensors_entry){ed->arg ? ed->arg : ed->name, ATTN_DTYPE_F32, 1, {H, 0}, junk};
        if (strcmp(e[n].name, "embeddings.position_ids") == 0)
            e[n] = (attn_safetensors_entry){e[n].name, ATTN_DTYPE_I64, 2, {1, P}, ids64};
        n++;
        break;
    case PUT_NAN:
    case PUT_INF: {
        size_t bytes = (size_t)e[k].shape[0] * (size_t)(e[k].ndim == 2 ? e[k].shape[1] : 1) * 4;
        copy = malloc(bytes);
        memcpy(copy, e[k].data, bytes);
        copy[3] = ed->kind == PUT_NAN ? NAN : -INFINITY;
        e[k].data = copy;
        break;
    }
    }
    const char *dir = write_model("edited", e, n);
    free(copy);
    return dir;
}

T_TEST(bert_corrupt_weight_catalogue)
{
    tiny m;
    tiny_make(&m, 16);
    static const struct {
        edit ed;
        const char *needle;
    } bad[] = {
        {{DROP, "encoder.layer.1.output.dense.bias", NULL}, "missing tensor 'encoder.layer.1.output.dense.bias'"},
        {{DROP, "embeddings.word_embeddings.weight", NULL}, "missing tensor 'embeddings.word_embeddings.weight'"},
        {{DROP, "embeddings.token_type_embeddings.weight", NULL}, "embeddings.token_type_embeddings.weight"},
        {{RESHAPE, "encoder.layer.0.intermediate.dense.weight", NULL}, "encoder.layer.0.intermediate.dense.weight' has"},
        {{RESHAPE, "embeddings.position_embeddings.weight", NULL}, "embeddings.position_embeddings.weight' has"},
        {{FLATTEN, "encoder.layer.0.attention.self.key.weight", NULL}, "attention.self.key.weight' has 1 dims"},
        {{TO_I32, "encoder.layer.1.attention.output.LayerNorm.weight", NULL}, "has dtype I32"},
        {{TO_I64, "encoder.layer.0.output.dense.weight", NULL}, "has dtype I64"},
        {{RENAME, "encoder.layer.1.output.LayerNorm.bias", "encoder.layer.2.output.LayerNorm.bias"}, "missing tensor 'encoder.layer.1.output.LayerNorm.bias'"},
        {{ADD, "encoder.layer.2.output.LayerNorm.bias", NULL}, "unexpected tensor 'encoder.layer.2.output.LayerNorm.bias'"},
        {{ADD, "encoder.layer.01.output.LayerNorm.bias", NULL}, "unexpected tensor 'encoder.layer.01.output"},
        {{ADD, "encoder.layer.1.output.LayerNorm.gamma", NULL}, "unexpected tensor 'encoder.layer.1.output.LayerNorm.gamma'"},
        {{ADD, "lm_head.bias", NULL}, "unexpected tensor 'lm_head.bias'"},
        {{ADD, "cls.predictions.bias", NULL}, "unexpected tensor 'cls.predictions.bias'"}, /* only with bert. */
        {{ADD, "bert.embeddings.word_embeddings.weight", NULL}, "bert.embeddings"},  /* two prefixes */
        {{ADD, "pooler.dense.weight", NULL}, "pooler.dense.weight' has"},
        {{ADD, "x", "embeddings.position_ids"}, NULL},                             /* I64 [1, P]: fine */
        {{ADD, "embeddings.position_ids", "embeddings.position_ids2"}, "unexpected tensor 'embeddings.position_ids2'"},
        {{PUT_NAN, "encoder.layer.1.intermediate.dense.bias", NULL}, "intermediate.dense.bias' has a non-finite value at element 3"},
        {{PUT_INF, "embeddings.LayerNorm.weight", NULL}, "non-finite"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attn_bert *b = (attn_bert *)&m;
        attn_status st = attn_bert_load(write_edited(&m, &bad[i].ed), &b);
        if (bad[i].needle == NULL) {
            T_EQ_STATUS(st, ATTN_OK);
            attn_bert_free(st == ATTN_OK ? b : NULL);
            continue;
        }
        T_EQ_STATUS(st, ATTN_BAD_FILE);
        T_CHECK(b == (attn_bert *)&m);
        T_CHECK(strstr(attn_last_error(), bad[i].needle) != NULL);
        if (!strstr(attn_last_error(), bad[i].needle))
            fprintf(stderr, "  weights case %zu: want '%s', got '%s'\n", i, bad[i].needle,
                    attn_last_error());
    }
    tiny_free(&m);
}

/* The same weights under "bert." with task heads, as F64 or BF16, with the
 * pooler and position_ids: accepted, and F64 gives bitwise the F32 result. */
T_TEST(bert_accepted_variants)
{
    tiny m;
    tiny_make(&m, 17);
    enum { N = 11 };
    int64_t n = N;
    int32_t ids[N];
    random_ids(ids, &n, 1, N, 12);
    float want[N * H], got[N * H];
    attn_bert *b = load_tiny(&m, "plain");
    T_EQ_STATUS(attn_bert_forward(t_ctx(1), b, ids, &n, 1, N, want), ATTN_OK);
    attn_bert_free(b);

    attn_safetensors_entry e[MAX_T + 4];
    char names[MAX_T + 4][128];
    static float pool_w[H * H], pool_b[H], head[V];
    static int64_t pos_ids[P];
    int cnt = entries(&m, "bert.", e, names);
    e[cnt++] = (attn_safetensors_entry){"bert.pooler.dense.weight", ATTN_DTYPE_F32, 2, {H, H}, pool_w};
    e[cnt++] = (attn_safetensors_entry){"bert.pooler.dense.bias", ATTN_DTYPE_F32, 1, {H, 0}, pool_b};
    e[cnt++] = (attn_safetensors_entry){"bert.embeddings.position_ids", ATTN_DTYPE_I64, 2, {1, P}, pos_ids};
    e[cnt++] = (attn_safetensors_entry){"cls.predictions.bias", ATTN_DTYPE_F32, 1, {V, 0}, head};
    b = NULL;
    T_EQ_STATUS(attn_bert_load(write_model("prefixed", e, cnt), &b), ATTN_OK);
    T_EQ_STATUS(attn_bert_forward(t_ctx(1), b, ids, &n, 1, N, got), ATTN_OK);
    T_CHECK(memcmp(want, got, sizeof got) == 0);
    attn_bert_free(b);

    cnt = entries(&m, "", e, names); /* as F64: the conversion is exact */
    double *wide[MAX_T];
    for (int i = 0; i < cnt; i++) {
        int64_t k = e[i].shape[0] * (e[i].ndim == 2 ? e[i].shape[1] : 1);
        wide[i] = malloc((size_t)k * sizeof(double));
        for (int64_t j = 0; j < k; j++) wide[i][j] = ((const float *)e[i].data)[j];
        e[i].data = wide[i];
        e[i].dtype = ATTN_DTYPE_F64;
    }
    b = NULL;
    T_EQ_STATUS(attn_bert_load(write_model("f64", e, cnt), &b), ATTN_OK);
    T_EQ_STATUS(attn_bert_forward(t_ctx(1), b, ids, &n, 1, N, got), ATTN_OK);
    T_CHECK(memcmp(want, got, sizeof got) == 0);
    attn_bert_free(b);
    for (int i = 0; i < cnt; i++) free(wide[i]);
    tiny_free(&m);
}

typedef struct {
    long live, calls, fail_at; /* fail_at: 1-based allocation that fails, 0 = none */
} counting;

static void *count_alloc(size_t bytes, void *user)
{
    counting *c = user;
    if (++c->calls == c->fail_at) return NULL;
    void *p = malloc(bytes);
    c->live += p != NULL;
    return p;
}

static void count_free(void *p, void *user)
{
    counting *c = user;
    c->live -= p != NULL;
    free(p);
}

/* The weight file cut at every byte of its header and 300 points of its
 * data: each is ATTN_BAD_FILE, without a leak. */
T_TEST(bert_truncated_weights)
{
    tiny m;
    tiny_make(&m, 18);
    const char *dir = write_tiny(&m, "cut");
    char wts[600], cut[600], cfg[600];
    snprintf(wts, sizeof wts, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    FILE *f = fopen(wts, "rb");
    T_CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    unsigned char *img = malloc(size);
    rewind(f);
    T_CHECK(fread(img, 1, size, f) == size);
    fclose(f);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | img[i];
    T_CHECK(header > 1000 && 8 + header < size);
    long bad = 0, leaks = 0, tried = 0;
    size_t step = (size - 8 - header) / 300 + 1;
    for (size_t len = 0; len < size; len += len < 8 + header ? 1 : step) {
        FILE *g = fopen(cut, "wb");
        fwrite(img, 1, len, g);
        fclose(g);
        counting c = {0, 0, 0};
        attn_set_allocator(count_alloc, count_free, &c);
        attn_bert *b = NULL;
        attn_status st = attn_bert_load_files(cfg, cut, NULL, &b);
        attn_set_allocator(NULL, NULL, NULL);
        bad += st != ATTN_BAD_FILE || b != NULL;
        leaks += c.live != 0;
        tried++;
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(leaks, 0);
    T_CHECK(tried > (long)header);
    free(img);
    tiny_free(&m);
}

/* Failing the k-th allocation, for every k, of a load and of each call. */
T_TEST(bert_out_of_memory)
{
    tiny m;
    tiny_make(&m, 19);
    const char *dir = write_tiny(&m, "oom");
    enum { B = 2, S = 6 };
    int64_t lens[B] = {6, 4};
    int32_t ids[B * S];
    random_ids(ids, lens, B, S, 13);
    float out[B * S * H];
    attn_bert *b = NULL;
    T_EQ_STATUS(attn_bert_load(dir, &b), ATTN_OK);
    float want[B * S * H];
    T_EQ_STATUS(attn_bert_forward(t_ctx(2), b, ids, lens, B, S, want), ATTN_OK);
    attn_ctx *tiled = t_ctx(1);
    T_EQ_STATUS(attn_ctx_set_kernel(tiled, ATTN_KERNEL_TILED), ATTN_OK);
    /* 0-3: load, forward, embed, maps; 4, 5: to BF16 and back to F32 (a
     * failure leaves the model as it was); 6: a BF16 forward on a kernel
     * the panels are not for (they are packed per call) */
    for (int what = 0; what < 7; what++) {
        long k = 1;
        for (;; k++) {
            counting c = {0, 0, k};
            attn_set_allocator(count_alloc, count_free, &c);
            attn_bert *lb = NULL;
            attn_status st = what == 0   ? attn_bert_load(dir, &lb)
                             : what == 1 ? attn_bert_forward(t_ctx(2), b, ids, lens, B, S, out)
                             : what == 2 ? attn_bert_embed(t_ctx(2), b, ids, lens, B, S, out)
                             : what == 3 ? attn_bert_attention(t_ctx(2), b, ids, 6, 1, 2, out)
                             : what == 4 ? attn_bert_set_dtype(b, ATTN_DTYPE_BF16)
                             : what == 5 ? attn_bert_set_dtype(b, ATTN_DTYPE_F32)
                                         : attn_bert_forward(tiled, b, ids, lens, B, S, out);
            attn_bert_free(lb);
            attn_set_allocator(NULL, NULL, NULL);
            T_EQ_INT(c.live, 0);
            if (c.calls < k) {
                T_EQ_STATUS(st, ATTN_OK);
                break;
            }
            T_EQ_STATUS(st, ATTN_NO_MEMORY);
            if (what == 4 || what == 5) /* unchanged by the failure */
                T_EQ_INT(attn_bert_get_dtype(b), what == 4 ? ATTN_DTYPE_F32 : ATTN_DTYPE_BF16);
        }
        T_CHECK(k > (what == 4 || what == 5 ? 1 : 2));
        if (what == 4) { /* leave it in BF16 for what 5; 6 needs it BF16 too */
            T_EQ_INT(attn_bert_get_dtype(b), ATTN_DTYPE_BF16);
        } else if (what == 5) {
            T_EQ_INT(attn_bert_get_dtype(b), ATTN_DTYPE_F32);
            T_EQ_STATUS(attn_bert_forward(t_ctx(2), b, ids, lens, B, S, out), ATTN_OK);
            T_CHECK(memcmp(out, want, sizeof out) == 0);
            T_EQ_STATUS(attn_bert_set_dtype(b, ATTN_DTYPE_BF16), ATTN_OK);
        }
    }
    attn_ctx_set_kernel(tiled, ATTN_KERNEL_AUTO);
    attn_bert_free(b);
    tiny_free(&m);
}

/* ---- argument checks ----------------------------------------------------------------------------- */

T_TEST(bert_argument_checks)
{
    tiny m;
    tiny_make(&m, 20);
    attn_bert *b = load_tiny(&m, "args");
    attn_ctx *ctx = t_ctx(1);
    enum { B = 2, S = 5 };
    int64_t lens[B] = {5, 3}, bad_lens[B];
    int32_t ids[B * S], bad_ids[B * S];
    random_ids(ids, lens, B, S, 14);
    static float out[P * P * H], sentinel[P * P * H];
    memset(sentinel, 0x5A, sizeof sentinel);
    const struct {
        const attn_ctx *ctx;
        const attn_bert *m;
        const int32_t *ids;
        const int64_t *lens;
        int64_t B, S;
        float *out;
        attn_status want;
    } cases[] = {
        {NULL, b, ids, lens, B, S, out, ATTN_NULL_ARG},
        {ctx, NULL, ids, lens, B, S, out, ATTN_NULL_ARG},
        {ctx, b, NULL, lens, B, S, out, ATTN_NULL_ARG},
        {ctx, b, ids, NULL, B, S, out, ATTN_NULL_ARG},
        {ctx, b, ids, lens, B, S, NULL, ATTN_NULL_ARG},
        {ctx, b, ids, lens, -1, S, out, ATTN_BAD_DIM},
        {ctx, b, ids, lens, B, -1, out, ATTN_BAD_DIM},
        {ctx, b, ids, lens, B, P + 1, out, ATTN_BAD_DIM},
        {ctx, b, ids, lens, INT64_MAX / 2, 4, out, ATTN_OVERFLOW},
        {ctx, b, ids, bad_lens, B, S, out, ATTN_BAD_PARAM},
        {ctx, b, bad_ids, lens, B, S, out, ATTN_BAD_PARAM},
        {ctx, b, ids, lens, B, S, (float *)(void *)ids, ATTN_OVERLAP},
        {ctx, b, ids, lens, B, S, (float *)(void *)lens, ATTN_OVERLAP},
    };
    for (int what = 0; what < 4; what++) /* forward/embed x too small/too large */
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            memcpy(bad_lens, lens, sizeof lens);
            memcpy(bad_ids, ids, sizeof ids);
            bad_lens[1] = what / 2 ? S + 1 : 0;
            bad_ids[S + 2] = what / 2 ? V : -1;
            memcpy(out, sentinel, sizeof out);
            attn_ctx *c = (attn_ctx *)cases[i].ctx;
            attn_status st = what % 2 == 0 ? attn_bert_forward(c, cases[i].m, cases[i].ids, cases[i].lens,
                                                           cases[i].B, cases[i].S, cases[i].out)
                                       : attn_bert_embed(c, cases[i].m, cases[i].ids, cases[i].lens,
                                                         cases[i].B, cases[i].S, cases[i].out);
            T_EQ_STATUS(st, cases[i].want);
            T_CHECK(memcmp(out, sentinel, sizeof out) == 0);
        }
    /* an id beyond a sequence's length is padding and never read */
    T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, B, S, out), ATTN_OK);
    memcpy(out, sentinel, sizeof out); /* B = 0 and B = S = 0 write nothing */
    T_EQ_STATUS(attn_bert_forward(ctx, b, ids, lens, 0, S, out), ATTN_OK);
    T_EQ_STATUS(attn_bert_embed(ctx, b, ids, lens, 0, 0, out), ATTN_OK);
    T_CHECK(memcmp(out, sentinel, sizeof out) == 0);

    T_EQ_STATUS(attn_bert_attention(NULL, b, ids, 5, 0, 0, out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_attention(ctx, NULL, ids, 5, 0, 0, out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_attention(ctx, b, NULL, 5, 0, 0, out), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 5, 0, 0, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 0, 0, 0, out), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, P + 1, 0, 0, out), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 5, L, 0, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 5, -1, 0, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 5, 0, NH, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 5, 0, -1, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, bad_ids, 5, 0, 0, out), ATTN_OK);
    bad_ids[2] = V;
    T_EQ_STATUS(attn_bert_attention(ctx, b, bad_ids, 5, 0, 0, out), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_bert_attention(ctx, b, ids, 5, 0, 0, (float *)(void *)ids), ATTN_OVERLAP);
    attn_bert_free(b);
    tiny_free(&m);
}

/* ---- the backward pass for explanations ----------------------------------------------------- */

enum { PT = 7 }; /* tokens of the probed sequence */

/* What the hook saw: per layer the probabilities and their gradient
 * [NH, PT, PT], and the order of the calls. */
typedef struct {
    float w[L][NH * PT * PT], dw[L][NH * PT * PT];
    int64_t order[L + 1];
    int calls, bad_sites;
    attn_status fail_with; /* returned by the hook when not ATTN_OK */
} probed;

static attn_status collect(attn_ctx *ctx, const attn_nn_attn_probe *p, void *user)
{
    probed *c = user;
    if (c->calls <= L) c->order[c->calls] = p->layer;
    c->calls++;
    if (p->stack != 0 || p->cross != 0 || p->layer < 0 || p->layer >= L || p->q.dim[1] != PT)
        c->bad_sites++;
    if (c->fail_with != ATTN_OK) return c->fail_with;
    if (p->layer < 0 || p->layer >= L) return ATTN_BAD_PARAM;
    return attn_nn_attn_probe_weights(ctx, p, c->w[p->layer], c->dw[p->layer]);
}

/* L = d . normalize(mean of the naive encoder output); map [NH][PT * PT]
 * of layer `layer`. */
static double naive_objective(const tiny *m, const int32_t *ids, const float *d, int layer,
                              double *map)
{
    static double out[PT * H];
    for (int h = 0; h < NH; h++) naive_forward(m, ids, PT, out, layer, h, map + h * PT * PT);
    double mean[H] = {0}, norm = 0, dot = 0;
    for (int t = 0; t < PT; t++)
        for (int i = 0; i < H; i++) mean[i] += out[t * H + i] / PT;
    for (int i = 0; i < H; i++) norm += mean[i] * mean[i];
    for (int i = 0; i < H; i++) dot += d[i] * mean[i] / sqrt(norm);
    return dot;
}

/* dL/dA by the probe against finite differences along a random change of
 * each layer's query weights: L moves only through that layer's
 * probabilities A, so dL/de = sum(dL/dA * dA/de), both sides from the
 * double-precision naive forward except the probe's dL/dA. */
T_TEST(bert_probe_grads_fd)
{
    tiny m;
    tiny_make(&m, 21);
    attn_bert *b = load_tiny(&m, "probe");
    int64_t len = PT;
    int32_t ids[PT];
    random_ids(ids, &len, 1, PT, 17);
    uint64_t rng = 99;
    float d[H], emb[H], ref_emb[H];
    t_fill(&rng, d, H, -1, 1);
    static probed c;
    memset(&c, 0, sizeof c);
    T_EQ_STATUS(attn_bert_attention_probe(t_ctx(2), b, ids, PT, d, collect, &c, emb), ATTN_OK);
    T_EQ_INT(c.calls, L);
    T_EQ_INT(c.bad_sites, 0);
    for (int l = 0; l < L; l++) T_EQ_INT(c.order[l], L - 1 - l); /* last layer first */
    T_EQ_STATUS(attn_bert_embed(t_ctx(1), b, ids, &len, 1, PT, ref_emb), ATTN_OK);
    double emb_err = 0;
    for (int i = 0; i < H; i++) emb_err = fmax(emb_err, fabs(emb[i] - ref_emb[i]));
    T_LE(emb_err, 1e-6);
    static double map[NH * PT * PT], plus[NH * PT * PT], minus[NH * PT * PT];
    const double eps = 1e-3;
    for (int l = 0; l < L; l++) {
        float *wq = (float *)lw(&m, l, 0), *save = malloc(H * H * sizeof(float));
        float dir[H * H];
        memcpy(save, wq, H * H * sizeof(float));
        t_fill(&rng, dir, H * H, -0.1, 0.1);
        naive_objective(&m, ids, d, l, map);
        double err = 0;
        for (int i = 0; i < NH * PT * PT; i++) err = fmax(err, fabs(map[i] - c.w[l][i]));
        T_LE(err, 1e-6); /* the probabilities the probe hands over */
        for (int e = 0; e < H * H; e++) wq[e] = (float)(save[e] + eps * dir[e]);
        double lp = naive_objective(&m, ids, d, l, plus);
        for (int e = 0; e < H * H; e++) wq[e] = (float)(save[e] - eps * dir[e]);
        double lm = naive_objective(&m, ids, d, l, minus);
        memcpy(wq, save, H * H * sizeof(float));
        free(save);
        double fd = (lp - lm) / (2 * eps), chain = 0;
        for (int i = 0; i < NH * PT * PT; i++) chain += c.dw[l][i] * (plus[i] - minus[i]) / (2 * eps);
        if (t_verbose) printf("  layer %d: dL/de %.9g, sum dL/dA dA/de %.9g\n", l, fd, chain);
        T_CHECK(fabs(fd) > 1e-4); /* the direction moves L */
        T_NEAR(chain, fd, 1e-5 + 1e-3 * fabs(fd));
    }
    attn_bert_free(b);
    tiny_free(&m);
}

T_TEST(bert_probe_errors)
{
    tiny m;
    tiny_make(&m, 22);
    attn_bert *b = load_tiny(&m, "probe_err");
    int64_t len = PT;
    int32_t ids[PT];
    random_ids(ids, &len, 1, PT, 18);
    float d[H] = {0}, emb[H];
    static probed c;
    memset(&c, 0, sizeof c);
    attn_ctx *ctx = t_ctx(1);
    T_EQ_STATUS(attn_bert_attention_probe(ctx, b, ids, PT, d, NULL, &c, emb), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_attention_probe(ctx, b, ids, PT, NULL, collect, &c, emb), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_bert_attention_probe(ctx, b, ids, 0, d, collect, &c, emb), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_bert_attention_probe(ctx, b, ids, P + 1, d, collect, &c, emb), ATTN_BAD_DIM);
    ids[3] = V;
    T_EQ_STATUS(attn_bert_attention_probe(ctx, b, ids, PT, d, collect, &c, emb), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "ids[3]") != NULL);
    ids[3] = 0;
    T_EQ_INT(c.calls, 0);
    /* a hook's failure stops the pass at once and comes back; emb is untouched */
    c.fail_with = ATTN_IO;
    memset(emb, 0x7F, sizeof emb);
    T_EQ_STATUS(attn_bert_attention_probe(ctx, b, ids, PT, d, collect, &c, emb), ATTN_IO);
    T_EQ_INT(c.calls, 1);
    T_CHECK(emb[0] != emb[0] || emb[0] > 1e30); /* 0x7F7F7F7F: still the fill */
    /* out of memory at every allocation: NO_MEMORY and nothing leaks */
    c.fail_with = ATTN_OK;
    for (long k = 1;; k++) {
        counting cnt = {0, 0, k};
        attn_set_allocator(count_alloc, count_free, &cnt);
        attn_status st = attn_bert_attention_probe(ctx, b, ids, PT, d, collect, &c, emb);
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(cnt.live, 0);
        if (cnt.calls < k) {
            T_EQ_STATUS(st, ATTN_OK);
            T_CHECK(k > 3);
            break;
        }
        T_EQ_STATUS(st, ATTN_NO_MEMORY);
    }
    attn_bert_free(b);
    tiny_free(&m);
}
