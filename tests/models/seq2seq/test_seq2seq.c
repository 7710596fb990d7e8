/* test_seq2seq.c - the Bahdanau encoder-decoder (attn/seq2seq.h):
 * gradients by centred finite differences (a tiny model with both initial
 * states; t_fd_check in tests/runner/util.c), padding invariance, greedy decoding against teacher forcing, a short
 * training run, checkpoints (round trip, corrupt catalogue, truncation
 * sweep), out-of-memory injection, argument checks, and the dates-task
 * tools (batches without a model, training, checkpoint, translation).
 */
#include "../model_util.h"

#include <attn/seq2seq.h>

#include <stdlib.h>
#include <string.h>

/* ---- the seq2seq model --------------------------------------------------------------- */

static attn_seq2seq_config tiny_config(attn_seq2seq_init init)
{
    attn_seq2seq_config c = {9, 3, 4, 5, 3, init};
    return c;
}

/* A batch of 3: sources of lengths 5, 3, 1 (S = 5), targets of 4 steps,
 * the last label of row 2 PAD (ignored). */
typedef struct {
    int32_t src[3 * 8], tgt_in[3 * 4], tgt_out[3 * 4];
    int64_t lens[3];
    attn_nn_batch b;
} tiny_batch;

static void tiny_batch_make(tiny_batch *t, int64_t S, uint64_t seed)
{
    uint64_t s = seed;
    memset(t, 0, sizeof *t);
    int64_t lens[3] = {5, 3, 1};
    for (int b = 0; b < 3; b++) {
        t->lens[b] = lens[b];
        for (int64_t j = 0; j < S; j++) t->src[b * S + j] = j < lens[b] ? (int32_t)t_rand_int(&s, 3, 8) : 0;
        t->tgt_in[b * 4] = 1;
        for (int i = 0; i < 4; i++) {
            t->tgt_out[b * 4 + i] = (int32_t)t_rand_int(&s, 2, 8);
            if (i + 1 < 4) t->tgt_in[b * 4 + i + 1] = t->tgt_out[b * 4 + i];
        }
    }
    t->tgt_out[2 * 4 + 3] = 0;
    t->b = (attn_nn_batch){3, S, 4, t->src, t->tgt_in, t->tgt_out, t->lens, NULL, 0, NULL, NULL};
}

typedef struct {
    attn_ctx *ctx;
    attn_seq2seq *m;
    const attn_nn_batch *b;
} model_case;

static double model_loss(void *user)
{
    model_case *k = user;
    double loss = NAN;
    if (attn_seq2seq_step(k->ctx, k->m, k->b, 0.0, 0, &loss, NULL) != ATTN_OK) return NAN;
    return loss;
}

T_TEST(seq2seq_backward_fd)
{
    attn_ctx *ctx = t_ctx(1);
    for (int init = ATTN_SEQ2SEQ_INIT_BACKWARD; init <= ATTN_SEQ2SEQ_INIT_MEAN; init++) {
        attn_seq2seq_config c = tiny_config((attn_seq2seq_init)init);
        attn_seq2seq *m = NULL;
        T_EQ_STATUS(attn_seq2seq_create(&c, 51, &m), ATTN_OK);
        if (!m) return;
        tiny_batch tb;
        tiny_batch_make(&tb, 5, 52);
        attn_seq2seq_zero_grad(m);
        double loss = 0;
        T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0.0, 1, &loss, NULL), ATTN_OK);
        T_CHECK(loss > 0.5 && loss < 10);
        model_case k = {ctx, m, &tb.b};
        uint64_t s = 53;
        int bad = 0;
        for (int64_t t = 0; t < attn_seq2seq_n_tensors(m); t++) {
            attn_nn_param p;
            T_EQ_STATUS(attn_seq2seq_tensor(m, t, &p), ATTN_OK);
            bad += t_fd_check(p.name, p.value, p.numel, p.grad, model_loss, &k, 5, &s);
        }
        T_EQ_INT(bad, 0);
        attn_seq2seq_free(m);
    }
}

/* Loss and gradients of a batch (zeroed first) into g [n_params]. */
static double model_grads(attn_ctx *ctx, attn_seq2seq *m, const attn_nn_batch *b, float *g)
{
    double loss = NAN;
    attn_seq2seq_zero_grad(m);
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, b, 0.0, 1, &loss, NULL), ATTN_OK);
    int64_t off = 0;
    for (int64_t t = 0; t < attn_seq2seq_n_tensors(m); t++) {
        attn_nn_param p;
        attn_seq2seq_tensor(m, t, &p);
        memcpy(g + off, p.grad, (size_t)p.numel * sizeof(float));
        off += p.numel;
    }
    return loss;
}

T_TEST(seq2seq_padding_invariance)
{
    attn_ctx *ctx = t_ctx(2);
    attn_seq2seq_config c = tiny_config(ATTN_SEQ2SEQ_INIT_MEAN);
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 61, &m), ATTN_OK);
    if (!m) return;
    int64_t n = attn_seq2seq_param_count(m);
    float *g1 = malloc((size_t)n * sizeof(float)), *g2 = malloc((size_t)n * sizeof(float));
    tiny_batch a, b;
    tiny_batch_make(&a, 5, 62);
    tiny_batch_make(&b, 8, 62); /* the same tokens, 3 more padded columns... */
    uint64_t s = 63;
    for (int r = 0; r < 3; r++) /* ...holding arbitrary tokens */
        for (int64_t j = b.lens[r]; j < 8; j++) b.src[r * 8 + j] = (int32_t)t_rand_int(&s, 0, 8);
    double la = model_grads(ctx, m, &a.b, g1), lb = model_grads(ctx, m, &b.b, g2);
    T_NEAR(la, lb, 1e-6);
    double worst = 0, big = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(g1[i] - g2[i]));
        big = fmax(big, fabs(g1[i]));
    }
    T_LE(worst, 1e-6 * big);
    free(g1);
    free(g2);
    attn_seq2seq_free(m);
}

T_TEST(seq2seq_generate_matches_teacher_forcing)
{
    attn_ctx *ctx = t_ctx(2);
    attn_seq2seq_config c = tiny_config(ATTN_SEQ2SEQ_INIT_BACKWARD);
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 71, &m), ATTN_OK);
    if (!m) return;
    enum { B = 3, S = 5, CAP = 6 };
    int32_t src[B * S] = {3, 4, 5, 6, 7, 8, 3, 4, 0, 0, 5, 0, 0, 0, 0}, out[B * CAP];
    int64_t lens[B] = {5, 3, 1}, n_out[B];
    float w[B * CAP * S];
    attn_nn_gen_opts o = {1, 2, CAP, 1, 0.0};
    T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src, B, S, lens, &o, out, CAP, n_out, w), ATTN_OK);
    for (int64_t b = 0; b < B; b++) {
        /* each row alone decodes the same */
        int32_t out1[CAP];
        int64_t n1 = -1;
        float w1[CAP * 5];
        T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src + b * S, 1, lens[b], lens + b, &o, out1, CAP, &n1, w1),
                    ATTN_OK);
        T_EQ_INT(n1, n_out[b]);
        for (int64_t r = 0; r < n1 && r < n_out[b]; r++) {
            T_EQ_INT(out1[r], out[b * CAP + r]);
            double sum = 0;
            for (int64_t j = 0; j < S; j++) {
                float v = w[(b * CAP + r) * S + j];
                if (j < lens[b]) T_NEAR(v, w1[r * lens[b] + j], 1e-6);
                if (j >= lens[b]) T_EQ_INT(v == 0.0f, 1);
                sum += v;
            }
            T_NEAR(sum, 1.0, 1e-5);
        }
        /* teacher forcing on its own output reproduces every token */
        int64_t T = n_out[b] + 1;
        int32_t tin[CAP + 1], tout[CAP + 1];
        float logits[(CAP + 1) * 9];
        tin[0] = 1;
        for (int64_t r = 0; r < n_out[b]; r++) tin[r + 1] = tout[r] = out[b * CAP + r];
        tout[T - 1] = n_out[b] < CAP ? 2 : 0;
        attn_nn_batch tb = {1, lens[b], T, src + b * S, tin, tout, lens + b, NULL, 0, NULL, NULL};
        double loss;
        T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb, 0.0, 0, &loss, logits), ATTN_OK);
        for (int64_t r = 0; r < T; r++) {
            int32_t best = 0;
            for (int32_t v = 1; v < 9; v++)
                if (logits[r * 9 + v] > logits[r * 9 + best]) best = v;
            if (r < n_out[b]) T_EQ_INT(best, out[b * CAP + r]);
            if (r == n_out[b] && n_out[b] < CAP) T_EQ_INT(best, 2);
        }
    }
    o.beam = 2;
    T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src, B, S, lens, &o, out, CAP, n_out, w), ATTN_UNSUPPORTED);
    o.beam = 1;
    lens[2] = 0;
    T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src, B, S, lens, &o, out, CAP, n_out, w), ATTN_BAD_DIM);
    lens[2] = 1;
    src[0] = 9;
    T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src, B, S, lens, &o, out, CAP, n_out, w), ATTN_BAD_PARAM);
    o.eos_id = 9;
    T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src, B, S, lens, &o, out, CAP, n_out, w), ATTN_BAD_PARAM);
    attn_seq2seq_free(m);
}

/* A copy task (output = source) that a tiny model learns in 300 steps. */
T_TEST(seq2seq_learns_to_copy)
{
    attn_ctx *ctx = t_ctx(2);
    attn_seq2seq_config c = {12, 8, 16, 16, 16, ATTN_SEQ2SEQ_INIT_BACKWARD};
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 81, &m), ATTN_OK);
    if (!m) return;
    enum { B = 16, S = 4 };
    uint64_t s = 82;
    attn_nn_adamw opt = attn_nn_adamw_default();
    double first = 0, last = 0;
    for (int step = 0; step < 300; step++) {
        int32_t src[B * S], tin[B * (S + 1)], tout[B * (S + 1)];
        int64_t lens[B];
        for (int b = 0; b < B; b++) {
            lens[b] = S;
            tin[b * (S + 1)] = 1;
            for (int j = 0; j < S; j++) src[b * S + j] = tout[b * (S + 1) + j] = tin[b * (S + 1) + j + 1] =
                (int32_t)t_rand_int(&s, 3, 11);
            tout[b * (S + 1) + S] = 2;
        }
        attn_nn_batch bt = {B, S, S + 1, src, tin, tout, lens, NULL, 0, NULL, NULL};
        double loss = 0;
        attn_seq2seq_zero_grad(m);
        T_EQ_STATUS(attn_seq2seq_step(ctx, m, &bt, 0.0, 1, &loss, NULL), ATTN_OK);
        T_EQ_STATUS(attn_seq2seq_update(m, &opt, 1e-2, 1.0, NULL), ATTN_OK);
        if (step == 0) first = loss;
        last = loss;
    }
    T_EQ_INT(attn_seq2seq_steps_taken(m), 300);
    T_LE(last, 0.1 * first);
    int32_t src[S] = {4, 9, 9, 5}, out[8];
    int64_t len = S, n = 0;
    attn_nn_gen_opts o = {1, 2, 8, 1, 0.0};
    T_EQ_STATUS(attn_seq2seq_generate(ctx, m, src, 1, S, &len, &o, out, 8, &n, NULL), ATTN_OK);
    T_EQ_INT(n, S);
    for (int j = 0; j < S && n == S; j++) T_EQ_INT(out[j], src[j]);
    attn_seq2seq_free(m);
}

/* ---- checkpoints ------------------------------------------------------------------------ */

T_TEST(seq2seq_checkpoint_round_trip)
{
    attn_ctx *ctx = t_ctx(1);
    attn_seq2seq_config c = tiny_config(ATTN_SEQ2SEQ_INIT_MEAN);
    attn_seq2seq *m = NULL, *r = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 91, &m), ATTN_OK);
    if (!m) return;
    tiny_batch tb;
    tiny_batch_make(&tb, 5, 92);
    attn_nn_adamw opt = attn_nn_adamw_default();
    double loss;
    for (int i = 0; i < 3; i++) {
        attn_seq2seq_zero_grad(m);
        T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0.1, 1, &loss, NULL), ATTN_OK);
        T_EQ_STATUS(attn_seq2seq_update(m, &opt, 1e-2, 1.0, NULL), ATTN_OK);
    }
    const char *keys[1] = {"note"}, *vals[1] = {"hello"};
    const char *p = t_path("rnn.safetensors");
    T_EQ_STATUS(attn_seq2seq_save(m, p, 1, keys, vals, 1), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_load(p, &r), ATTN_OK);
    if (!r) return;
    T_CHECK(t_same_seq2seq_params(m, r));
    T_EQ_INT(attn_seq2seq_steps_taken(r), 3);
    T_EQ_INT(attn_seq2seq_get_config(r)->init, ATTN_SEQ2SEQ_INIT_MEAN);
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load(p, &f), ATTN_OK);
    T_CHECK(f && attn_safetensors_metadata(f, "note") && strcmp(attn_safetensors_metadata(f, "note"), "hello") == 0);
    attn_safetensors_free(f);
    /* the optimiser state came back: one more step is identical on both */
    double l1, l2;
    attn_seq2seq_zero_grad(m);
    attn_seq2seq_zero_grad(r);
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0.0, 1, &l1, NULL), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_step(ctx, r, &tb.b, 0.0, 1, &l2, NULL), ATTN_OK);
    T_EQ_INT(l1 == l2, 1);
    T_EQ_STATUS(attn_seq2seq_update(m, &opt, 1e-2, 1.0, NULL), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_update(r, &opt, 1e-2, 1.0, NULL), ATTN_OK);
    T_CHECK(t_same_seq2seq_params(m, r));
    attn_seq2seq_free(r);
    r = NULL;
    /* without the optimiser */
    T_EQ_STATUS(attn_seq2seq_save(m, p, 0, NULL, NULL, 0), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_load(p, &r), ATTN_OK);
    T_CHECK(r && t_same_seq2seq_params(m, r));
    attn_seq2seq_free(r);
    /* the config JSON */
    char json[256];
    attn_seq2seq_config back;
    T_EQ_STATUS(attn_seq2seq_config_to_json(&c, json, sizeof json), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_config_from_json(json, &back), ATTN_OK);
    T_CHECK(back.vocab == c.vocab && back.embed == c.embed && back.hidden == c.hidden &&
            back.dec_hidden == c.dec_hidden && back.attn_dim == c.attn_dim && back.init == c.init);
    T_EQ_STATUS(attn_seq2seq_config_to_json(&c, json, 10), ATTN_BAD_DIM);
    attn_seq2seq_free(m);
}

/* Writes m's tensors with a config text and optional damage: tensor `drop`
 * left out, tensor `reshape` transposed, an `extra` tensor of that many
 * floats, a NaN in tensor `nan_at`. */
typedef struct {
    const char *tag, *config;
    int drop, reshape, extra, nan_at;
} damage;

static attn_status save_damaged(const attn_seq2seq *m, const char *path, const damage *d)
{
    attn_safetensors_entry e[24];
    int n = 0;
    float *copy = NULL;
    static const float junk[64];
    for (int64_t t = 0; t < attn_seq2seq_n_tensors(m); t++) {
        attn_nn_param p;
        attn_seq2seq_tensor(m, t, &p);
        if (t == d->drop) continue;
        e[n] = (attn_safetensors_entry){p.name, ATTN_DTYPE_F32, p.ndim, {p.shape[0], p.shape[1]}, p.value};
        if (t == d->reshape) {
            e[n].shape[0] = p.shape[1];
            e[n].shape[1] = p.shape[0];
        }
        if (t == d->nan_at) {
            copy = malloc((size_t)p.numel * sizeof(float));
            memcpy(copy, p.value, (size_t)p.numel * sizeof(float));
            copy[p.numel - 1] = NAN;
            e[n].data = copy;
        }
        n++;
    }
    if (d->extra) e[n++] = (attn_safetensors_entry){"stray", ATTN_DTYPE_F32, 1, {d->extra}, junk};
    const char *keys[3] = {"attn.format", "attn.config", "attn.step"};
    const char *vals[3] = {d->tag, d->config, "0"};
    attn_status st = attn_safetensors_save(path, e, n, keys, vals, 3);
    free(copy);
    return st;
}

T_TEST(seq2seq_checkpoint_corrupt_catalogue)
{
    attn_seq2seq_config c = tiny_config(ATTN_SEQ2SEQ_INIT_BACKWARD);
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 101, &m), ATTN_OK);
    if (!m) return;
    char good[256];
    T_EQ_STATUS(attn_seq2seq_config_to_json(&c, good, sizeof good), ATTN_OK);
    const char *tag = "attn-rnn-checkpoint-1";
#define CFG(vocab, embed, hidden, attn, init, extra)                                        \
    "{\"vocab\": " vocab ", \"embed\": " embed ", \"hidden\": " hidden ", \"dec_hidden\": 5" \
    attn ", \"init\": \"" init "\"" extra "}"
    const struct {
        const char *what;
        damage d;
    } cases[] = {
        {"intact", {tag, good, -1, -1, 0, -1}},
        {"wrong format tag", {"attn-checkpoint-1", good, -1, -1, 0, -1}},
        {"config not JSON", {tag, "{vocab: 9}", -1, -1, 0, -1}},
        {"config field missing", {tag, CFG("9", "3", "4", "", "backward", ""), -1, -1, 0, -1}},
        {"config field unknown",
         {tag, CFG("9", "3", "4", ", \"attn_dim\": 3", "backward", ", \"layers\": 2"), -1, -1, 0, -1}},
        {"config dim zero", {tag, CFG("9", "3", "0", ", \"attn_dim\": 3", "backward", ""), -1, -1, 0, -1}},
        {"config dim fractional",
         {tag, CFG("9", "3.5", "4", ", \"attn_dim\": 3", "backward", ""), -1, -1, 0, -1}},
        {"config init unknown", {tag, CFG("9", "3", "4", ", \"attn_dim\": 3", "zeros", ""), -1, -1, 0, -1}},
        {"config too big for the file",
         {tag, CFG("16777216", "65536", "4", ", \"attn_dim\": 3", "backward", ""), -1, -1, 0, -1}},
        {"config of another size",
         {tag, CFG("9", "3", "4", ", \"attn_dim\": 2", "backward", ""), -1, -1, 0, -1}},
        {"tensor missing", {tag, good, 13, -1, 24, -1}}, /* a stray one of its size instead */
        {"tensor shape", {tag, good, -1, 20, 0, -1}},
        {"tensor extra", {tag, good, -1, -1, 4, -1}},
        {"tensor NaN", {tag, good, -1, -1, 0, 4}},
    };
#undef CFG
    const char *p = t_path("bad.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_seq2seq *r = NULL;
        T_EQ_STATUS(save_damaged(m, p, &cases[i].d), ATTN_OK);
        attn_status st = attn_seq2seq_load(p, &r);
        if ((st == ATTN_OK) != (i == 0) || (i > 0 && st != ATTN_BAD_FILE))
            t_fail(__FILE__, __LINE__, "case '%s': %s (%s)", cases[i].what, attn_status_name(st),
                   attn_last_error());
        t_checks++;
        T_CHECK((r != NULL) == (i == 0));
        if (i == 0) T_CHECK(r && t_same_seq2seq_params(m, r));
        attn_seq2seq_free(r);
    }
    /* a transformer checkpoint is not an RNN checkpoint */
    attn_transformer_config tc = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    tc.d_model = tc.d_ff = 8;
    tc.n_heads = tc.n_kv_heads = 2;
    tc.max_len = 8;
    attn_transformer *tm = NULL;
    attn_seq2seq *r = NULL;
    T_EQ_STATUS(attn_transformer_create(&tc, 1, &tm), ATTN_OK);
    T_EQ_STATUS(attn_transformer_save(tm, p, 0, NULL, NULL, 0), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_load(p, &r), ATTN_BAD_FILE);
    T_CHECK(r == NULL);
    attn_transformer_free(tm);
    attn_seq2seq_free(m);
}

static unsigned char *slurp_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, fp);
    fclose(fp);
    return buf;
}

T_TEST(seq2seq_checkpoint_truncation_sweep)
{
    attn_seq2seq_config c = {5, 2, 2, 2, 2, ATTN_SEQ2SEQ_INIT_BACKWARD};
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 111, &m), ATTN_OK);
    if (!m) return;
    const char *p = t_path("trunc.safetensors");
    T_EQ_STATUS(attn_seq2seq_save(m, p, 1, NULL, NULL, 0), ATTN_OK);
    size_t n = 0;
    unsigned char *img = slurp_file(p, &n);
    T_CHECK(img != NULL && n > 100);
    long bad = 0;
    for (size_t len = 0; img && len < n; len++) {
        attn_safetensors *f = NULL;
        attn_seq2seq *r = NULL;
        attn_status st = attn_safetensors_load_memory(img, len, &f);
        if (st == ATTN_OK) st = attn_seq2seq_load_safetensors(f, &r);
        attn_safetensors_free(f);
        bad += st != ATTN_BAD_FILE || r != NULL;
        attn_seq2seq_free(r);
    }
    T_EQ_INT(bad, 0);
    attn_safetensors *f = NULL;
    attn_seq2seq *r = NULL;
    T_EQ_STATUS(attn_safetensors_load_memory(img, n, &f), ATTN_OK);
    T_EQ_STATUS(attn_seq2seq_load_safetensors(f, &r), ATTN_OK);
    T_CHECK(r && t_same_seq2seq_params(m, r));
    attn_safetensors_free(f);
    attn_seq2seq_free(r);
    attn_seq2seq_free(m);
    free(img);
}

/* ---- out of memory and argument checks ------------------------------------------------- */

typedef struct {
    long live, calls, fail_at;
} counting;

static void *count_alloc(size_t bytes, void *user)
{
    counting *c = user;
    if (++c->calls == c->fail_at) return NULL;
    void *p = malloc(bytes);
    if (p) c->live++;
    return p;
}

static void count_free(void *p, void *user)
{
    counting *c = user;
    c->live--;
    free(p);
}

T_TEST(seq2seq_out_of_memory)
{
    attn_ctx *ctx = t_ctx(1);
    attn_seq2seq_config c = tiny_config(ATTN_SEQ2SEQ_INIT_BACKWARD);
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 121, &m), ATTN_OK);
    if (!m) return;
    tiny_batch tb;
    tiny_batch_make(&tb, 5, 122);
    attn_nn_param p0;
    attn_seq2seq_tensor(m, 0, &p0);
    attn_seq2seq_zero_grad(m);
    int32_t out[3 * 4];
    int64_t n_out[3];
    float w[3 * 4 * 5];
    attn_nn_gen_opts o = {1, 2, 4, 1, 0.0};
    for (int op = 0; op < 3; op++) {
        long k = 1;
        for (;; k++) {
            counting cnt = {0, 0, k};
            attn_seq2seq *made = NULL;
            double loss;
            attn_set_allocator(count_alloc, count_free, &cnt);
            attn_status st =
                op == 0   ? attn_seq2seq_step(ctx, m, &tb.b, 0.0, 1, &loss, NULL)
                : op == 1 ? attn_seq2seq_generate(ctx, m, tb.src, 3, 5, tb.lens, &o, out, 4, n_out, w)
                          : attn_seq2seq_create(&c, 1, &made);
            attn_seq2seq_free(made);
            attn_set_allocator(NULL, NULL, NULL);
            T_EQ_INT(cnt.live, 0);
            if (cnt.calls < k) {
                T_EQ_STATUS(st, ATTN_OK);
                break;
            }
            T_EQ_STATUS(st, ATTN_NO_MEMORY);
            if (op == 0) /* a failed step leaves the gradients alone */
                for (int64_t i = 0; i < p0.numel; i++) T_EQ_INT(p0.grad[i] == 0.0f, 1);
        }
        T_CHECK(k > 2);
        if (op == 0) attn_seq2seq_zero_grad(m);
    }
    attn_seq2seq_free(m);
}

T_TEST(seq2seq_args)
{
    attn_ctx *ctx = t_ctx(1);
    attn_seq2seq_config c = tiny_config(ATTN_SEQ2SEQ_INIT_BACKWARD);
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(NULL, 1, &m), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_seq2seq_create(&c, 1, NULL), ATTN_NULL_ARG);
    c.hidden = 0;
    T_EQ_STATUS(attn_seq2seq_create(&c, 1, &m), ATTN_BAD_DIM);
    c.hidden = 4;
    c.init = (attn_seq2seq_init)3;
    T_EQ_STATUS(attn_seq2seq_create(&c, 1, &m), ATTN_BAD_PARAM);
    c.init = ATTN_SEQ2SEQ_INIT_BACKWARD;
    T_EQ_STATUS(attn_seq2seq_create(&c, 1, &m), ATTN_OK);
    if (!m) return;
    T_EQ_INT(attn_seq2seq_n_tensors(m), 22);
    attn_nn_param p;
    T_EQ_STATUS(attn_seq2seq_tensor(m, 22, &p), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_seq2seq_tensor(m, 13, &p), ATTN_OK);
    T_CHECK(strcmp(p.name, "decoder.attention.w_k") == 0 && p.shape[0] == 3 && p.shape[1] == 8);
    int64_t total = 0;
    for (int64_t t = 0; t < 22; t++) {
        attn_seq2seq_tensor(m, t, &p);
        total += p.numel;
    }
    T_EQ_INT(total, attn_seq2seq_param_count(m));
    tiny_batch tb;
    tiny_batch_make(&tb, 5, 131);
    double loss = -1;
    T_EQ_STATUS(attn_seq2seq_step(NULL, m, &tb.b, 0, 0, &loss, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, NULL, 0, 0, &loss, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0, 0, NULL, NULL), ATTN_NULL_ARG);
    tb.lens[1] = 6;
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0, 0, &loss, NULL), ATTN_BAD_DIM);
    tb.lens[1] = 3;
    tb.src[4] = 9;
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0, 0, &loss, NULL), ATTN_BAD_PARAM);
    tb.src[4] = 4;
    tb.tgt_out[0] = -3;
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0, 1, &loss, NULL), ATTN_BAD_PARAM);
    tb.tgt_out[0] = 4;
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 2.0, 0, &loss, NULL), ATTN_BAD_PARAM);
    int64_t cu[4] = {0, 5, 8, 13};
    tb.b.cu_seqlens_src = cu; /* packed batches are the transformer's */
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0, 0, &loss, NULL), ATTN_UNSUPPORTED);
    T_CHECK(strstr(attn_last_error(), "'batch->cu_seqlens_src'") != NULL);
    tb.b.cu_seqlens_src = NULL;
    T_EQ_INT(loss == -1, 1); /* nothing written by the failing calls */
    tb.b.B = 0;
    T_EQ_STATUS(attn_seq2seq_step(ctx, m, &tb.b, 0, 1, &loss, NULL), ATTN_OK);
    T_EQ_INT(loss == 0, 1);
    attn_nn_adamw opt = attn_nn_adamw_default();
    T_EQ_STATUS(attn_seq2seq_update(m, &opt, NAN, 1, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_seq2seq_update(m, NULL, 1e-3, 1, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_seq2seq_save(m, NULL, 0, NULL, NULL, 0), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_seq2seq_save(m, t_path("x.safetensors"), 0, NULL, NULL, 2), ATTN_BAD_PARAM);
    attn_seq2seq *r = NULL;
    T_EQ_STATUS(attn_seq2seq_load(t_path("absent.safetensors"), &r), ATTN_IO);
    T_EQ_STATUS(attn_seq2seq_config_from_json(NULL, &c), ATTN_NULL_ARG);
    attn_seq2seq_free(m);
    attn_seq2seq_free(NULL);
}

/* ---- the probe of each decoder step's attention ------------------------------------------- */

enum { PROBE_T = 4, PROBE_B = 3, PROBE_S = 5 };

/* w, dw [PROBE_T][B * S]: the weights and dL/dw of each step. */
typedef struct {
    float w[PROBE_T][PROBE_B * PROBE_S], dw[PROBE_T][PROBE_B * PROBE_S];
    int64_t rows[PROBE_T + 1];
    int calls, bad;
} steps;

static attn_status collect_steps(attn_ctx *ctx, const attn_nn_attn_probe *p, void *user)
{
    steps *c = user;
    if (p->stack != 1 || p->layer != 0 || p->cross != 1 || !p->score || p->row < 0 ||
        p->row >= PROBE_T || p->q.dim[1] != 1 || p->k.dim[1] != PROBE_S || c->calls > PROBE_T)
        return ++c->bad, ATTN_BAD_PARAM;
    c->rows[c->calls++] = p->row;
    return attn_nn_attn_probe_weights(ctx, p, c->w[p->row], c->dw[p->row]);
}

/* dL/dw of every step against finite differences along the loss's gradient
 * with respect to the scorer's v_a: the loss moves with v_a only through
 * the attention weights of the steps. */
T_TEST(seq2seq_probe_grads_fd)
{
    attn_ctx *ctx = t_ctx(1);
    attn_seq2seq_config c = {9, 8, 16, 16, 8, ATTN_SEQ2SEQ_INIT_BACKWARD};
    attn_seq2seq *m = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 61, &m), ATTN_OK);
    if (!m) return;
    tiny_batch tb;
    tiny_batch_make(&tb, PROBE_S, 62);
    attn_nn_param wq = {0};
    for (int64_t t = 0; t < attn_seq2seq_n_tensors(m); t++) {
        attn_nn_param p;
        attn_seq2seq_tensor(m, t, &p);
        if (strcmp(p.name, "decoder.attention.v_a") == 0) wq = p;
    }
    T_CHECK(wq.value != NULL);
    if (!wq.value) return;
    /* sharper scores than at initialisation: the loss depends on them more */
    for (int64_t e = 0; e < wq.numel; e++) wq.value[e] *= 8;
    static steps c0, cp, cm;
    double loss = 0, lp = 0, lm = 0;
    attn_seq2seq_zero_grad(m);
    T_EQ_STATUS(attn_seq2seq_step_probe(ctx, m, &tb.b, collect_steps, &c0, &loss), ATTN_OK);
    T_EQ_INT(c0.calls, PROBE_T);
    T_EQ_INT(c0.bad, 0);
    for (int i = 0; i < PROBE_T; i++) T_EQ_INT(c0.rows[i], PROBE_T - 1 - i); /* last step first */
    for (int b = 0; b < PROBE_B; b++) /* padded keys: no weight and no gradient */
        for (int j = (int)tb.lens[b]; j < PROBE_S; j++)
            T_CHECK(c0.w[1][b * PROBE_S + j] == 0 && c0.dw[1][b * PROBE_S + j] == 0);
    float *save = malloc((size_t)wq.numel * sizeof(float));
    memcpy(save, wq.value, (size_t)wq.numel * sizeof(float));
    double gmax = 0;
    for (int64_t e = 0; e < wq.numel; e++) gmax = fmax(gmax, fabs(wq.grad[e]));
    const double eps = 3e-2;
    for (int64_t e = 0; e < wq.numel; e++) wq.value[e] = (float)(save[e] + eps * wq.grad[e] / gmax);
    T_EQ_STATUS(attn_seq2seq_step_probe(ctx, m, &tb.b, collect_steps, &cp, &lp), ATTN_OK);
    for (int64_t e = 0; e < wq.numel; e++) wq.value[e] = (float)(save[e] - eps * wq.grad[e] / gmax);
    T_EQ_STATUS(attn_seq2seq_step_probe(ctx, m, &tb.b, collect_steps, &cm, &lm), ATTN_OK);
    memcpy(wq.value, save, (size_t)wq.numel * sizeof(float));
    free(save);
    double fd = (lp - lm) / (2 * eps), chain = 0;
    for (int i = 0; i < PROBE_T; i++)
        for (int e = 0; e < PROBE_B * PROBE_S; e++)
            chain += (double)c0.dw[i][e] * ((double)cp.w[i][e] - cm.w[i][e]) / (2 * eps);
    if (t_verbose) printf("  dL/de %.7g, sum dL/dw dw/de %.7g\n", fd, chain);
    T_CHECK(fabs(fd) > 5e-4); /* the direction moves the loss */
    T_NEAR(chain, fd, 2e-5 + 2e-3 * fabs(fd));
    /* the hook's failure stops the pass */
    steps bad;
    memset(&bad, 0, sizeof bad);
    bad.calls = PROBE_T + 1;
    T_EQ_STATUS(attn_seq2seq_step_probe(ctx, m, &tb.b, collect_steps, &bad, &loss), ATTN_BAD_PARAM);
    T_EQ_INT(bad.bad, 1);
    T_EQ_STATUS(attn_seq2seq_step_probe(ctx, m, &tb.b, NULL, &bad, &loss), ATTN_NULL_ARG);
    attn_seq2seq_free(m);
}
