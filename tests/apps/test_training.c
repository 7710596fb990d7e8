/* test_training.c - the training loops of the dates task (apps/attn/task):
 * bit-exact resume of the transformer from a checkpoint, and the GRU
 * model's batches, training, evaluation and translation. */
#include "../models/model_util.h"

#include "task/charvocab.h"
#include "task/train.h"
#include "task/train_gru.h"

#include <attn/seq2seq.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

T_TEST(checkpoint_resume_bit_exact)
{
    attn_ctx *ctx = t_ctx(2);
    attn_transformer_config c = t_tiny_transformer();
    task_train_cfg t = task_train_cfg_default();
    t.steps = 8;
    t.batch = 6;
    t.warmup = 3;
    t.eval_every = 0;
    task_train_report rep;
    attn_transformer *a = NULL, *b = NULL, *b2 = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 9, &a), ATTN_OK);
    T_EQ_STATUS(task_train_dates(ctx, a, &t, NULL, NULL, &rep), ATTN_OK);
    T_EQ_INT(rep.steps_run, 8);

    T_EQ_STATUS(attn_transformer_create(&c, 9, &b), ATTN_OK);
    task_train_cfg half = t;
    const char *p = t_path("resume.safetensors");
    half.stop_after = 4; /* the schedule still spans 8 steps */
    half.save_path = p;
    T_EQ_STATUS(task_train_dates(ctx, b, &half, NULL, NULL, &rep), ATTN_OK);
    T_EQ_INT(rep.steps_run, 4);
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_load(p, &f), ATTN_OK);
    task_train_cfg back = task_train_cfg_default();
    T_EQ_STATUS(task_train_cfg_from_meta(f, &back), ATTN_OK);
    T_EQ_STATUS(attn_transformer_load_safetensors(f, &b2), ATTN_OK);
    attn_safetensors_free(f);
    T_EQ_INT(back.batch, 6);
    T_CHECK(back.lr == t.lr);
    if (b2) {
        T_EQ_INT(attn_transformer_steps_taken(b2), 4);
        T_EQ_INT(back.steps, 8);
        back.eval_every = 0;
        T_EQ_STATUS(task_train_dates(ctx, b2, &back, NULL, NULL, &rep), ATTN_OK);
        T_EQ_INT(rep.steps_run, 4);
        T_CHECK(t_same_transformer_params(a, b2));
    }
    attn_transformer_free(a);
    attn_transformer_free(b);
    attn_transformer_free(b2);
}

/* The dates task's packed batches (task_train_batch_pack, the training
 * loop's default) hold the real tokens of the padded ones, back to back,
 * and a step on them gives the padded step's loss and gradients, for both
 * layouts (encoder-decoder; decoder-only, whose labels before the target
 * are the pad id), with and without checkpointing. */
T_TEST(dates_packed_batches_equal_padded)
{
    attn_ctx *ctx = t_ctx(2);
    for (int arch = ATTN_TRANSFORMER_ARCH_ENCDEC; arch <= ATTN_TRANSFORMER_ARCH_DECODER; arch++) {
        attn_transformer_config c = t_tiny_transformer();
        c.arch = (attn_transformer_arch)arch;
        if (arch == ATTN_TRANSFORMER_ARCH_DECODER) c.n_enc_layers = 0;
        attn_transformer *m = NULL;
        T_EQ_STATUS(attn_transformer_create(&c, 3, &m), ATTN_OK);
        if (!m) continue;
        int64_t n = attn_transformer_param_count(m);
        float *g = malloc((size_t)n * sizeof(float));
        for (int64_t step = 0; step < 40; step += 13) {
            task_train_batch a, b;
            T_EQ_STATUS(task_train_batch_make(m, 5, step, 9, &a), ATTN_OK);
            T_EQ_STATUS(task_train_batch_make(m, 5, step, 9, &b), ATTN_OK);
            T_EQ_STATUS(task_train_batch_pack(&b), ATTN_OK);
            T_EQ_STATUS(task_train_batch_pack(&b), ATTN_OK); /* a second time: unchanged */
            bool same = b.nb.cu_seqlens_tgt[0] == 0 && b.nb.S_tgt == b.nb.cu_seqlens_tgt[b.nb.B];
            for (int64_t i = 0; i < a.nb.B; i++) {
                int64_t lt = b.nb.cu_seqlens_tgt[i + 1] - b.nb.cu_seqlens_tgt[i];
                same &= lt == a.tgt_lens[i];
                same &= memcmp(b.nb.tgt_in + b.nb.cu_seqlens_tgt[i], a.tgt_in + i * a.nb.S_tgt, (size_t)lt * 4) == 0;
                same &= memcmp(b.nb.tgt_out + b.nb.cu_seqlens_tgt[i], a.tgt_out + i * a.nb.S_tgt, (size_t)lt * 4) == 0;
                for (int64_t t = lt; t < a.nb.S_tgt; t++) same &= a.tgt_out[i * a.nb.S_tgt + t] == TASK_CHAR_PAD;
                if (arch == ATTN_TRANSFORMER_ARCH_ENCDEC) {
                    int64_t ls = b.nb.cu_seqlens_src[i + 1] - b.nb.cu_seqlens_src[i];
                    same &= ls == a.src_lens[i];
                    same &= memcmp(b.nb.src + b.nb.cu_seqlens_src[i], a.src + i * a.nb.S_src, (size_t)ls * 4) == 0;
                }
            }
            T_CHECK(same);
            for (int ck = 0; ck <= 1; ck++) {
                attn_nn_train_opts o = {0, 1, 0.1, ck};
                double la = 0, lb = 0;
                attn_nn_param p;
                attn_transformer_zero_grad(m);
                T_EQ_STATUS(attn_transformer_step(ctx, m, &a.nb, &o, 1, &la, NULL, NULL), ATTN_OK);
                T_EQ_STATUS(attn_transformer_tensor(m, 0, &p), ATTN_OK);
                memcpy(g, p.grad, (size_t)n * sizeof(float));
                attn_transformer_zero_grad(m);
                T_EQ_STATUS(attn_transformer_step(ctx, m, &b.nb, &o, 1, &lb, NULL, NULL), ATTN_OK);
                T_NEAR(lb, la, 1e-6 * la);
                double err = 0, top = 0;
                for (int64_t i = 0; i < n; i++) {
                    err = fmax(err, fabs((double)p.grad[i] - g[i]));
                    top = fmax(top, fabs((double)g[i]));
                }
                T_LE(err, 1e-5 * top);
            }
            task_train_batch_free(&a);
            task_train_batch_free(&b);
        }
        free(g);
        attn_transformer_free(m);
    }
}

/* The training config of a checkpoint as train.c writes it, with key k's
 * value replaced by v (v NULL: the key left out), saved without tensors and
 * loaded again. */
static attn_safetensors *meta_file(const char *k, const char *v)
{
    const char *keys[11] = {"train.steps", "train.batch", "train.warmup", "train.lr",
                            "train.min_lr", "train.weight_decay", "train.clip",
                            "train.label_smoothing", "train.schedule", "train.data_seed", "train.seed"};
    const char *vals[11] = {"8", "6", "3", "0.002", "2.0000000000000002e-05", "0.01", "1", "0.1",
                            "2", "4000000000", "7"};
    int n = 0;
    for (int i = 0; i < 11; i++) {
        if (k && strcmp(keys[i], k) == 0) {
            if (!v) continue;
            vals[i] = v;
        }
        keys[n] = keys[i];
        vals[n++] = vals[i];
    }
    attn_safetensors *f = NULL;
    T_EQ_STATUS(attn_safetensors_save(t_path("meta.safetensors"), NULL, 0, keys, vals, n), ATTN_OK);
    T_EQ_STATUS(attn_safetensors_load(t_path("meta.safetensors"), &f), ATTN_OK);
    return f;
}

/* task_train_cfg_from_meta: exact values, and every malformed value refused
 * with nothing written (before the fuzzing of fuzz/fuzz_resume_meta.c, a
 * form feed before a number passed, "3.5" steps became 3, and a batch of 0
 * was refused after the other fields had been written). */
T_TEST(train_cfg_from_meta_checks)
{
    task_train_cfg before, c;
    memset(&before, 0x5A, sizeof before);
    memcpy(&c, &before, sizeof c);
    attn_safetensors *f = meta_file(NULL, NULL);
    T_EQ_STATUS(task_train_cfg_from_meta(f, &c), ATTN_OK);
    attn_safetensors_free(f);
    T_CHECK(c.steps == 8 && c.batch == 6 && c.warmup == 3 && c.lr == 0.002 && c.min_lr == 2e-5);
    T_CHECK(c.weight_decay == 0.01 && c.clip == 1 && c.label_smoothing == 0.1);
    T_CHECK(c.schedule == ATTN_NN_SCHEDULE_INVSQRT && c.data_seed == 4000000000u && c.seed == 7);
    T_CHECK(memcmp(&c.save_path, &before.save_path, sizeof c.save_path) == 0);
    static const char *const bad[][2] = {
        {"train.steps", "3.5"},   {"train.batch", "0"},      {"train.batch", "\f4"},
        {"train.batch", " 4"},    {"train.steps", "0x10"},   {"train.lr", "nan"},
        {"train.lr", "inf"},      {"train.clip", "-1"},      {"train.schedule", "3"},
        {"train.seed", "4000000001"}, {"train.steps", ""},   {"train.warmup", "1e10"},
        {"train.label_smoothing", "1.5"}, {"train.lr", "+"}, {"train.steps", "1e3"},
        {"train.lr", " 0.5"}, {"train.lr", "0x1p-3"}, {"train.seed", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(&c, &before, sizeof c);
        f = meta_file(bad[i][0], bad[i][1]);
        T_EQ_STATUS(task_train_cfg_from_meta(f, &c), ATTN_BAD_FILE);
        T_CHECK(strstr(attn_last_error(), bad[i][0]) != NULL);
        T_CHECK(memcmp(&c, &before, sizeof c) == 0);
        attn_safetensors_free(f);
    }
}

/* The training config in a checkpoint's __metadata__: every field written
 * by a save and read back by key (whatever the order of the keys), and a
 * missing, malformed or out-of-range value rejected naming its key, with
 * the config untouched. */
static bool same_train_cfg(const task_train_cfg *a, const task_train_cfg *b)
{
    return a->steps == b->steps && a->batch == b->batch && a->warmup == b->warmup &&
           a->lr == b->lr && a->min_lr == b->min_lr && a->weight_decay == b->weight_decay &&
           a->clip == b->clip && a->label_smoothing == b->label_smoothing &&
           a->schedule == b->schedule && a->data_seed == b->data_seed && a->seed == b->seed;
}

/* Loads path's metadata into a copy of *cfg; the status. */
static attn_status meta_of(const char *path, task_train_cfg *cfg)
{
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(path, &f);
    if (st == ATTN_OK) st = task_train_cfg_from_meta(f, cfg);
    attn_safetensors_free(f);
    return st;
}

T_TEST(train_meta_by_key)
{
    attn_ctx *ctx = t_ctx(1);
    attn_transformer_config c = t_tiny_transformer();
    attn_transformer *m = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 9, &m), ATTN_OK);
    task_train_cfg t = task_train_cfg_default(), back = task_train_cfg_default();
    t.steps = 0; /* no step: only the save */
    t.batch = 3, t.warmup = 7, t.lr = 0.1 / 3, t.min_lr = 1e-7, t.weight_decay = 0.3;
    t.clip = 0.0, t.label_smoothing = 0.125, t.schedule = ATTN_NN_SCHEDULE_INVSQRT;
    t.data_seed = 3999999999u, t.seed = 77;
    t.eval_every = 0;
    t.save_path = t_path("meta.safetensors");
    task_train_report rep;
    T_EQ_STATUS(task_train_dates(ctx, m, &t, NULL, NULL, &rep), ATTN_OK);
    T_EQ_STATUS(meta_of(t.save_path, &back), ATTN_OK);
    T_CHECK(same_train_cfg(&t, &back));
    /* the same values under the keys in reverse order, one key spoiled at a time */
    static const char *const keys[] = {"train.steps", "train.batch", "train.warmup", "train.lr",
                                       "train.min_lr", "train.weight_decay", "train.clip",
                                       "train.label_smoothing", "train.schedule",
                                       "train.data_seed", "train.seed"};
    static const char *const vals[] = {"0", "3", "7", "0.033333333333333333", "1e-07", "0.3",
                                       "0", "0.125", "2", "3999999999", "77"};
    static const char *const spoiled[] = {"2.5", "0", "-1", "11", "x", "1e999", "-0.5", "2",
                                          "3", "4000000001", "7e"};
    enum { N = sizeof keys / sizeof keys[0] };
    attn_nn_param p;
    T_EQ_STATUS(attn_transformer_tensor(m, 0, &p), ATTN_OK);
    attn_safetensors_entry e = {p.name, ATTN_DTYPE_F32, p.ndim, {p.shape[0], p.shape[1]}, p.value};
    for (int bad = -1; bad < N; bad++) {
        const char *k[N], *v[N];
        int n = 0;
        for (int i = N - 1; i >= 0; i--) {
            k[n] = keys[i];
            v[n++] = i == bad ? spoiled[i] : vals[i];
        }
        const char *path = t_path("meta-by-key.safetensors");
        T_EQ_STATUS(attn_safetensors_save(path, &e, 1, k, v, N), ATTN_OK);
        task_train_cfg r = task_train_cfg_default(), before = r;
        attn_status st = meta_of(path, &r);
        if (bad < 0) {
            T_EQ_STATUS(st, ATTN_OK);
            T_CHECK(same_train_cfg(&r, &t));
            continue;
        }
        T_EQ_STATUS(st, ATTN_BAD_FILE);
        T_CHECK(strstr(attn_last_error(), keys[bad]) != NULL);
        T_CHECK(same_train_cfg(&r, &before));
    }
    /* a key missing */
    const char *path = t_path("meta-missing.safetensors");
    T_EQ_STATUS(attn_safetensors_save(path, &e, 1, keys, vals, N - 1), ATTN_OK);
    T_EQ_STATUS(meta_of(path, &back), ATTN_BAD_FILE);
    T_CHECK(strstr(attn_last_error(), "'train.seed'") != NULL);
    attn_transformer_free(m);
}

/* ---- the GRU model on the dates task (apps/attn/task/train_gru.c) ---------------------------------------------- */

static void first_loss_cb(const task_train_progress *p, void *user)
{
    if (p->step == 1) *(double *)user = p->loss;
}

T_TEST(gru_dates_batches_training_translation)
{
    /* batches without a model are those of a model of the same layout */
    for (int arch = ATTN_TRANSFORMER_ARCH_ENCDEC; arch <= ATTN_TRANSFORMER_ARCH_DECODER; arch++) {
        attn_transformer_config tc = attn_transformer_config_default((attn_transformer_arch)arch);
        tc.d_model = tc.d_ff = 8;
        tc.n_heads = tc.n_kv_heads = 2;
        attn_transformer *tm = NULL;
        T_EQ_STATUS(attn_transformer_create(&tc, 1, &tm), ATTN_OK);
        for (int64_t step = 0; step < 20 && tm; step += 7) {
            task_train_batch a, b;
            T_EQ_STATUS(task_train_batch_make(tm, 3, step, 5, &a), ATTN_OK);
            T_EQ_STATUS(task_train_batch_make_arch(arch == ATTN_TRANSFORMER_ARCH_DECODER, 3, step, 5, &b), ATTN_OK);
            int64_t ns = a.nb.B * a.nb.S_src, nt = a.nb.B * a.nb.S_tgt;
            T_CHECK(a.nb.B == b.nb.B && a.nb.S_src == b.nb.S_src && a.nb.S_tgt == b.nb.S_tgt);
            T_CHECK((a.nb.src == NULL) == (b.nb.src == NULL));
            T_CHECK(memcmp(a.tgt_in, b.tgt_in, (size_t)nt * 4) == 0 &&
                    memcmp(a.tgt_out, b.tgt_out, (size_t)nt * 4) == 0);
            if (a.nb.src && b.nb.src)
                T_CHECK(memcmp(a.src, b.src, (size_t)ns * 4) == 0 && memcmp(a.src_lens, b.src_lens, 40) == 0);
            task_train_batch_free(&a);
            task_train_batch_free(&b);
        }
        attn_transformer_free(tm);
    }
    attn_ctx *ctx = t_ctx(2);
    attn_seq2seq_config c = task_gru_dates_config();
    c.embed = c.hidden = c.dec_hidden = c.attn_dim = 16;
    attn_seq2seq *m = NULL, *r = NULL;
    T_EQ_STATUS(attn_seq2seq_create(&c, 2, &m), ATTN_OK);
    if (!m) return;
    task_train_cfg t = task_train_cfg_default();
    t.stop_after = 30;
    t.batch = 16;
    t.eval_every = 0;
    t.save_path = t_path("dates-gru.safetensors");
    t.warmup = 5;
    task_train_report rep;
    double first_loss = 0;
    T_EQ_STATUS(task_train_gru_dates(ctx, m, &t, first_loss_cb, &first_loss, &rep), ATTN_OK);
    T_EQ_INT(rep.steps_run, 30);
    T_EQ_INT(attn_seq2seq_steps_taken(m), 30);
    T_LE(rep.final_loss, 0.8 * first_loss); /* about log(99) = 4.6 at the start */
    T_EQ_STATUS(attn_seq2seq_load(t.save_path, &r), ATTN_OK);
    T_CHECK(r && t_same_seq2seq_params(m, r) && attn_seq2seq_steps_taken(r) == 30);
    attn_seq2seq_free(r);
    double acc = -1;
    T_EQ_STATUS(task_gru_eval_dates(ctx, m, 300, &acc), ATTN_OK);
    T_CHECK(acc >= 0 && acc <= 1);
    T_EQ_STATUS(task_gru_eval_dates(ctx, m, 0, &acc), ATTN_BAD_PARAM);
    const char *src = "3/4/05";
    char out[64];
    float w[11 * 6];
    int64_t n = -1;
    T_EQ_STATUS(task_gru_translate(ctx, m, src, out, sizeof out, w, &n), ATTN_OK);
    T_CHECK(n >= 0 && n <= 11 && (int64_t)strlen(out) == n);
    for (int64_t i = 0; i < n; i++) {
        double sum = 0;
        for (int j = 0; j < 6; j++) sum += w[i * 6 + j];
        T_NEAR(sum, 1.0, 1e-5);
    }
    T_EQ_STATUS(task_gru_translate(ctx, m, "", out, sizeof out, w, &n), ATTN_BAD_DIM);
    attn_seq2seq_free(m);
}
