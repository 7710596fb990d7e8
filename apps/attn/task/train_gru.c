/* train_gru.c - the GRU encoder-decoder with additive attention on the dates
 * task: training with the batches, schedule and optimiser of train.c, greedy
 * translation with attention maps, and batched held-out evaluation on the
 * very examples task_eval_dates reads, so `attn compare` measures both
 * models on the same data. */
#include "train_gru.h"

#include "charvocab.h"
#include "dates.h"

#include <string.h>
#include <time.h>

enum { EVAL_CHUNK = 250, OUT_CAP = TASK_DATES_TGT_LEN + 1 };

attn_seq2seq_config task_gru_dates_config(void)
{
    attn_seq2seq_config c = attn_seq2seq_config_default();
    c.vocab = TASK_CHARVOCAB_SIZE;
    return c;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t count_tokens(const attn_nn_batch *b)
{
    int64_t n = 0;
    for (int64_t i = 0; i < b->B; i++) n += b->src_lens[i];
    for (int64_t i = 0; i < b->B * b->S_tgt; i++) n += b->tgt_in[i] != b->pad_id;
    return n;
}

/* One optimiser step on batch `step - 1` of the stream: *loss, *lr, *gn. */
static attn_status train_step(attn_ctx *ctx, attn_seq2seq *m, const task_train_cfg *cfg,
                              const attn_nn_adamw *opt, int64_t step, double *loss, double *lr,
                              double *gn, double *tokens)
{
    task_train_batch b;
    attn_status st = task_train_batch_make_arch(0, cfg->data_seed, step - 1, cfg->batch, &b);
    if (st != ATTN_OK) return st;
    attn_seq2seq_zero_grad(m);
    st = attn_seq2seq_step(ctx, m, &b.nb, cfg->label_smoothing, 1, loss, NULL);
    if (st == ATTN_OK)
        st = attn_nn_lr(cfg->schedule, step, cfg->warmup, cfg->steps, cfg->lr, cfg->min_lr, lr);
    if (st == ATTN_OK) st = attn_seq2seq_update(m, opt, *lr, cfg->clip, gn);
    *tokens += (double)count_tokens(&b.nb);
    task_train_batch_free(&b);
    return st;
}

attn_status task_train_gru_dates(attn_ctx *ctx, attn_seq2seq *m, const task_train_cfg *cfg,
                                 task_train_cb cb, void *user, task_train_report *rep)
{
    if (!ctx || !m || !cfg || !rep)
        return attn_fail(ATTN_NULL_ARG, "task_train_gru_dates: 'ctx', 'm', 'cfg', 'rep' must be set");
    if (cfg->steps < 0 || cfg->batch < 1 || cfg->warmup < 0)
        return attn_fail(ATTN_BAD_PARAM, "task_train_gru_dates: 'steps', 'batch' or 'warmup' is "
                                         "out of range");
    memset(rep, 0, sizeof *rep);
    rep->heldout_acc = -1;
    attn_nn_adamw opt = attn_nn_adamw_default();
    opt.weight_decay = cfg->weight_decay;
    double t0 = now_s(), tokens = 0;
    int64_t first = attn_seq2seq_steps_taken(m) + 1;
    int64_t last = cfg->stop_after > 0 && cfg->stop_after < cfg->steps ? cfg->stop_after : cfg->steps;
    attn_status st = ATTN_OK;
    for (int64_t step = first; step <= last && st == ATTN_OK; step++) {
        double loss = 0, lr = 0, gn = 0;
        if ((st = train_step(ctx, m, cfg, &opt, step, &loss, &lr, &gn, &tokens)) != ATTN_OK) break;
        double el = now_s() - t0;
        task_train_progress p = {step, cfg->steps, loss, lr, gn, tokens / el, el,
                                 el / (double)(step - first + 1) * (double)(cfg->steps - step), -1, 0};
        if (cfg->eval_every > 0 && (step % cfg->eval_every == 0 || step == cfg->steps)) {
            st = task_gru_eval_dates(ctx, m, cfg->eval_n, &p.heldout_acc);
            rep->heldout_acc = p.heldout_acc;
        }
        rep->steps_run++;
        rep->last_step = step;
        rep->final_loss = loss;
        if (cb) cb(&p, user);
        if (st == ATTN_OK && cfg->save_path && cfg->save_every > 0 && step % cfg->save_every == 0)
            st = attn_seq2seq_save(m, cfg->save_path, 1, NULL, NULL, 0);
        if (cfg->target > 0 && p.heldout_acc >= cfg->target) break;
    }
    rep->seconds = now_s() - t0;
    if (st == ATTN_OK && cfg->save_path) st = attn_seq2seq_save(m, cfg->save_path, 1, NULL, NULL, 0);
    return st;
}

/* ---- translation and evaluation ------------------------------------------------------ */

attn_status task_gru_translate(attn_ctx *ctx, attn_seq2seq *m, const char *src, char *out,
                               size_t cap, float *maps, int64_t *n_out)
{
    if (!m || !src || !out || !n_out)
        return attn_fail(ATTN_NULL_ARG, "task_gru_translate: 'm', 'src', 'out', 'n_out' must be set");
    int64_t len = (int64_t)strlen(src);
    if (len < 1 || len > TASK_DATES_SRC_MAX)
        return attn_fail(ATTN_BAD_DIM, "task_gru_translate: the input must have 1 to %d characters, "
                         "not %lld", TASK_DATES_SRC_MAX, (long long)len);
    int32_t ids[TASK_DATES_SRC_MAX], gen[OUT_CAP];
    float w[OUT_CAP * TASK_DATES_SRC_MAX];
    for (int64_t j = 0; j < len; j++) ids[j] = task_charvocab_id((unsigned char)src[j]);
    attn_nn_gen_opts o = {TASK_CHAR_BOS, TASK_CHAR_EOS, OUT_CAP, 1, 0.0};
    int64_t got = 0;
    attn_status st = attn_seq2seq_generate(ctx, m, ids, 1, len, &len, &o, gen, OUT_CAP, &got, maps ? w : NULL);
    if (st == ATTN_OK) st = task_charvocab_decode(gen, got, out, cap, NULL);
    if (st != ATTN_OK) return st;
    if (maps) memcpy(maps, w, (size_t)(got * len) * sizeof(float));
    *n_out = got;
    return ATTN_OK;
}

/* Held-out examples first .. first+B-1: how many come out exactly right. */
static attn_status eval_chunk(attn_ctx *ctx, attn_seq2seq *m, int64_t first, int64_t B,
                              int64_t *right)
{
    task_dates_sample ex[EVAL_CHUNK];
    int32_t ids[EVAL_CHUNK * TASK_DATES_SRC_MAX] = {0}, out[EVAL_CHUNK * OUT_CAP];
    int64_t lens[EVAL_CHUNK] = {0}, n_out[EVAL_CHUNK] = {0}, S = 1;
    for (int64_t i = 0; i < B; i++) {
        attn_status st = task_dates_example(TASK_TRAIN_EVAL_SEED, (uint64_t)(first + i), TASK_DATES_HELDOUT, &ex[i]);
        if (st != ATTN_OK) return st;
        lens[i] = (int64_t)strlen(ex[i].src);
        if (lens[i] > S) S = lens[i];
    }
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < lens[i]; j++) ids[i * S + j] = task_charvocab_id((unsigned char)ex[i].src[j]);
    attn_nn_gen_opts o = {TASK_CHAR_BOS, TASK_CHAR_EOS, OUT_CAP, 1, 0.0};
    attn_status st = attn_seq2seq_generate(ctx, m, ids, B, S, lens, &o, out, OUT_CAP, n_out, NULL);
    for (int64_t i = 0; i < B && st == ATTN_OK; i++) {
        char text[OUT_CAP + 1];
        st = task_charvocab_decode(out + i * OUT_CAP, n_out[i], text, sizeof text, NULL);
        *right += st == ATTN_OK && strcmp(text, ex[i].tgt) == 0;
    }
    return st;
}

attn_status task_gru_eval_dates(attn_ctx *ctx, attn_seq2seq *m, int64_t n, double *acc)
{
    if (!acc || n < 1) return attn_fail(ATTN_BAD_PARAM, "task_gru_eval_dates: 'n' must be >= 1");
    int64_t right = 0;
    for (int64_t first = 0; first < n; first += EVAL_CHUNK) {
        attn_status st = eval_chunk(ctx, m, first, n - first < EVAL_CHUNK ? n - first : EVAL_CHUNK, &right);
        if (st != ATTN_OK) return st;
    }
    *acc = (double)right / (double)n;
    return ATTN_OK;
}
