/* train.c - the main job's loop: batches of the dates task, AdamW with a
 * warm-up schedule and global-norm clipping, held-out evaluation, and
 * checkpoints carrying the training config so a resumed run is bit-exact:
 * batch k is a pure function of (data_seed, k), the dropout masks of step
 * t of (seed, t), and the optimiser state is in the checkpoint. */
#include "train.h"

#include "charvocab.h"
#include "dates.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

attn_train_cfg attn_train_cfg_default(void)
{
    attn_train_cfg c;
    memset(&c, 0, sizeof c);
    c.steps = 1500;
    c.batch = 64;
    c.warmup = 100;
    c.lr = 2e-3;
    c.min_lr = 2e-5;
    c.weight_decay = 0.01;
    c.clip = 1.0;
    c.label_smoothing = 0.0;
    c.schedule = ATTN_NN_SCHEDULE_COSINE;
    c.data_seed = 1;
    c.seed = 2;
    c.eval_every = 250;
    c.eval_n = 500;
    c.target = 0;
    return c;
}

/* ---- batches ------------------------------------------------------------------ */


void attn_train_batch_free(attn_train_batch *b)
{
    if (!b) return;
    attn_release(b->src);
    attn_release(b->tgt_in);
    attn_release(b->tgt_out);
    attn_release(b->src_lens);
    memset(b, 0, sizeof *b);
}

/* seq [n] = BOS src '=' tgt EOS (decoder-only) or the pieces (ENCDEC). */
static int64_t encode(const char *s, int32_t *ids)
{
    int64_t n = 0;
    for (; s[n]; n++) ids[n] = attn_charvocab_id((unsigned char)s[n]);
    return n;
}

/* Length bucketing, so that batches carry little padding: the examples of
 * POOL consecutive batches are drawn (pool p holds examples p*POOL*batch ..),
 * sorted by source length (ties by index), cut into POOL batches, and batch
 * `step` takes slice (slot * 7) % POOL of its pool, so that short and long
 * batches alternate. A pure function of (data_seed, step). */
enum { POOL = 16 };

typedef struct {
    int64_t len, index;
} keyed;

static int by_len(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static attn_status draw_bucketed(uint64_t seed, int64_t step, int64_t batch, attn_dates_sample *ex)
{
    int64_t n = POOL * batch, first = (step / POOL) * n;
    int64_t slice = ((step % POOL) * 7) % POOL;
    attn_dates_sample *pool = attn_calloc((size_t)n, sizeof *pool);
    keyed *keys = attn_calloc((size_t)n, sizeof *keys);
    attn_status st = pool && keys ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "attn_train_batch_make: out of memory");
    for (int64_t i = 0; i < n && st == ATTN_OK; i++) {
        st = attn_dates_example(seed, (uint64_t)(first + i), ATTN_DATES_TRAIN, &pool[i]);
        keys[i] = (keyed){(int64_t)strlen(pool[i].src), i};
    }
    if (st == ATTN_OK) {
        qsort(keys, (size_t)n, sizeof *keys, by_len);
        for (int64_t i = 0; i < batch; i++) ex[i] = pool[keys[slice * batch + i].index];
    }
    attn_release(pool);
    attn_release(keys);
    return st;
}

attn_status attn_train_batch_make(const attn_transformer *m, uint64_t data_seed, int64_t step,
                                  int64_t batch, attn_train_batch *b)
{
    if (!m) return attn_fail(ATTN_BAD_PARAM, "attn_train_batch_make: bad 'm', 'b', 'batch' or 'step'");
    return attn_train_batch_make_arch(attn_transformer_get_config(m)->arch == ATTN_TRANSFORMER_ARCH_DECODER, data_seed,
                                      step, batch, b);
}

attn_status attn_train_batch_make_arch(int dec_only, uint64_t data_seed, int64_t step,
                                       int64_t batch, attn_train_batch *b)
{
    if (!b || batch < 1 || step < 0)
        return attn_fail(ATTN_BAD_PARAM, "attn_train_batch_make: bad 'm', 'b', 'batch' or 'step'");
    memset(b, 0, sizeof *b);
    enum { W = ATTN_DATES_SRC_MAX + ATTN_DATES_TGT_LEN + 3 };
    b->src = attn_calloc((size_t)(batch * W), sizeof(int32_t));
    b->tgt_in = attn_calloc((size_t)(batch * W), sizeof(int32_t));
    b->tgt_out = attn_calloc((size_t)(batch * W), sizeof(int32_t));
    b->src_lens = attn_calloc((size_t)batch, sizeof(int64_t));
    if (!b->src || !b->tgt_in || !b->tgt_out || !b->src_lens) {
        attn_train_batch_free(b);
        return attn_fail(ATTN_NO_MEMORY, "attn_train_batch_make: out of memory");
    }
    attn_dates_sample *ex = attn_calloc((size_t)batch, sizeof *ex);
    if (!ex) {
        attn_train_batch_free(b);
        return attn_fail(ATTN_NO_MEMORY, "attn_train_batch_make: out of memory");
    }
    int64_t S_src = 1, S_tgt = ATTN_DATES_TGT_LEN + 1;
    attn_status st = draw_bucketed(data_seed, step, batch, ex);
    for (int64_t i = 0; i < batch && st == ATTN_OK; i++) {
        int64_t len = (int64_t)strlen(ex[i].src);
        b->src_lens[i] = len;
        if (len > S_src) S_src = len;
    }
    if (dec_only) S_tgt = S_src + ATTN_DATES_TGT_LEN + 2;
    for (int64_t i = 0; i < batch && st == ATTN_OK; i++) {
        int32_t seq[W], *in = b->tgt_in + i * S_tgt, *out = b->tgt_out + i * S_tgt;
        int64_t n = 0, first_label = 0;
        if (!dec_only) encode(ex[i].src, b->src + i * S_src);
        seq[n++] = ATTN_CHAR_BOS;
        if (dec_only) {
            n += encode(ex[i].src, seq + n);
            seq[n++] = attn_charvocab_id('=');
            first_label = n - 1; /* labels before the target are ignored */
        }
        n += encode(ex[i].tgt, seq + n);
        seq[n++] = ATTN_CHAR_EOS;
        for (int64_t t = 0; t + 1 < n; t++) {
            in[t] = seq[t];
            out[t] = t >= first_label ? seq[t + 1] : ATTN_CHAR_PAD;
        }
    }
    attn_release(ex);
    if (st != ATTN_OK) {
        attn_train_batch_free(b);
        return st;
    }
    b->nb.B = batch;
    b->nb.S_src = dec_only ? 0 : S_src;
    b->nb.S_tgt = S_tgt;
    b->nb.src = dec_only ? NULL : b->src;
    b->nb.src_lens = dec_only ? NULL : b->src_lens;
    b->nb.tgt_in = b->tgt_in;
    b->nb.tgt_out = b->tgt_out;
    b->nb.pad_id = ATTN_CHAR_PAD;
    return ATTN_OK;
}

/* ---- translation and evaluation ------------------------------------------------------ */

attn_status attn_translate(attn_ctx *ctx, attn_transformer *m, const char *src, int64_t beam,
                           char *out, size_t cap, float *maps, int64_t *n_out)
{
    if (!m || !src || !out || !n_out)
        return attn_fail(ATTN_NULL_ARG, "attn_translate: 'm', 'src', 'out', 'n_out' must be set");
    int dec_only = attn_transformer_get_config(m)->arch == ATTN_TRANSFORMER_ARCH_DECODER;
    int64_t len = (int64_t)strlen(src);
    if (len < 1 || len > ATTN_DATES_SRC_MAX)
        return attn_fail(ATTN_BAD_DIM, "attn_translate: the input must have 1 to %d characters, "
                         "not %lld", ATTN_DATES_SRC_MAX, (long long)len);
    int32_t ids[ATTN_DATES_SRC_MAX + 3], gen[ATTN_DATES_TGT_LEN + 2];
    int64_t n = 0;
    if (dec_only) ids[n++] = ATTN_CHAR_BOS;
    n += encode(src, ids + n);
    if (dec_only) ids[n++] = attn_charvocab_id('=');
    attn_nn_gen_opts o = {ATTN_CHAR_BOS, ATTN_CHAR_EOS, ATTN_DATES_TGT_LEN + 1, beam, 0.0};
    int64_t got = 0;
    attn_status st = attn_transformer_generate(ctx, m, ids, n, &o, gen, ATTN_DATES_TGT_LEN + 1, &got,
                                      dec_only ? NULL : maps);
    if (st != ATTN_OK) return st;
    if ((st = attn_charvocab_decode(gen, got, out, cap, NULL)) != ATTN_OK) return st;
    *n_out = got;
    return ATTN_OK;
}

attn_status attn_eval_dates(attn_ctx *ctx, attn_transformer *m, int64_t n, int64_t beam, double *acc)
{
    if (!acc || n < 1) return attn_fail(ATTN_BAD_PARAM, "attn_eval_dates: 'n' must be >= 1");
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        attn_dates_sample ex;
        char out[64];
        int64_t got;
        attn_status st = attn_dates_example(ATTN_TRAIN_EVAL_SEED, (uint64_t)i, ATTN_DATES_HELDOUT, &ex);
        if (st == ATTN_OK) st = attn_translate(ctx, m, ex.src, beam, out, sizeof out, NULL, &got);
        if (st != ATTN_OK) return st;
        right += strcmp(out, ex.tgt) == 0;
    }
    *acc = (double)right / (double)n;
    return ATTN_OK;
}

/* ---- the loop --------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The training config in a checkpoint's __metadata__: key, range, and
 * whether the value is a whole number, in the order of save()'s values. */
enum { N_META = 11 };
static const struct {
    const char *key;
    double lo, hi;
    int whole;
} train_meta[N_META] = {
    {"train.steps", 0, 1e9, 1},   {"train.batch", 1, 1e6, 1},
    {"train.warmup", 0, 1e9, 1},  {"train.lr", 0, 10, 0},
    {"train.min_lr", 0, 10, 0},   {"train.weight_decay", 0, 10, 0},
    {"train.clip", 0, 1e6, 0},    {"train.label_smoothing", 0, 1, 0},
    {"train.schedule", 0, 2, 1},  {"train.data_seed", 0, 4e9, 1},
    {"train.seed", 0, 4e9, 1}};

static attn_status save(const attn_transformer *m, const attn_train_cfg *c)
{
    char v[N_META][40];
    snprintf(v[0], 40, "%lld", (long long)c->steps);
    snprintf(v[1], 40, "%lld", (long long)c->batch);
    snprintf(v[2], 40, "%lld", (long long)c->warmup);
    snprintf(v[3], 40, "%.17g", c->lr);
    snprintf(v[4], 40, "%.17g", c->min_lr);
    snprintf(v[5], 40, "%.17g", c->weight_decay);
    snprintf(v[6], 40, "%.17g", c->clip);
    snprintf(v[7], 40, "%.17g", c->label_smoothing);
    snprintf(v[8], 40, "%d", (int)c->schedule);
    snprintf(v[9], 40, "%llu", (unsigned long long)c->data_seed);
    snprintf(v[10], 40, "%llu", (unsigned long long)c->seed);
    const char *keys[N_META], *vals[N_META];
    for (int i = 0; i < N_META; i++) {
        keys[i] = train_meta[i].key;
        vals[i] = v[i];
    }
    return attn_transformer_save(m, c->save_path, 1, keys, vals, N_META);
}

/* Entry i of train_meta from f: a decimal number as save() writes it (no
 * spaces, hex, "inf" or "nan"), inside its range, whole where it must be. */
static attn_status meta_num(const attn_safetensors *f, int i, double *out)
{
    const char *key = train_meta[i].key, *s = attn_safetensors_metadata(f, key);
    if (!s) return attn_fail(ATTN_BAD_FILE, "checkpoint: no training metadata '%s'", key);
    char *end = NULL;
    double x = s[0] != '\0' && strspn(s, "0123456789+-.eE") == strlen(s) ? strtod(s, &end) : NAN;
    if (end == NULL || *end != '\0' || !(x >= train_meta[i].lo && x <= train_meta[i].hi) ||
        (train_meta[i].whole && x != floor(x)))
        return attn_fail(ATTN_BAD_FILE, "checkpoint: '%s' = \"%.30s\" is not %s in [%g, %g]", key, s,
                         train_meta[i].whole ? "a whole number" : "a number", train_meta[i].lo,
                         train_meta[i].hi);
    *out = x;
    return ATTN_OK;
}

attn_status attn_train_cfg_from_meta(const attn_safetensors *f, attn_train_cfg *cfg)
{
    double x[N_META];
    for (int i = 0; i < N_META; i++) {
        attn_status st = meta_num(f, i, &x[i]);
        if (st != ATTN_OK) return st;
    }
    cfg->steps = (int64_t)x[0];
    cfg->batch = (int64_t)x[1];
    cfg->warmup = (int64_t)x[2];
    cfg->lr = x[3];
    cfg->min_lr = x[4];
    cfg->weight_decay = x[5];
    cfg->clip = x[6];
    cfg->label_smoothing = x[7];
    cfg->schedule = (attn_nn_schedule)(int)x[8];
    cfg->data_seed = (uint64_t)x[9];
    cfg->seed = (uint64_t)x[10];
    return ATTN_OK;
}

static int64_t count_tokens(const attn_nn_batch *b)
{
    int64_t n = 0;
    for (int64_t i = 0; b->src_lens && i < b->B; i++) n += b->src_lens[i];
    for (int64_t i = 0; i < b->B * b->S_tgt; i++) n += b->tgt_in[i] != b->pad_id;
    return n;
}

attn_status attn_train_dates(attn_ctx *ctx, attn_transformer *m, const attn_train_cfg *cfg,
                             attn_train_cb cb, void *user, attn_train_report *rep)
{
    if (!ctx || !m || !cfg || !rep)
        return attn_fail(ATTN_NULL_ARG, "attn_train_dates: 'ctx', 'm', 'cfg', 'rep' must be set");
    if (cfg->steps < 0 || cfg->batch < 1 || cfg->warmup < 0)
        return attn_fail(ATTN_BAD_PARAM, "attn_train_dates: 'steps', 'batch' or 'warmup' is out of range");
    memset(rep, 0, sizeof *rep);
    rep->heldout_acc = -1;
    attn_nn_adamw opt = attn_nn_adamw_default();
    opt.weight_decay = cfg->weight_decay;
    double t0 = now_s(), tokens = 0;
    int64_t first = attn_transformer_steps_taken(m) + 1;
    attn_status st = ATTN_OK;
    int64_t last = cfg->stop_after > 0 && cfg->stop_after < cfg->steps ? cfg->stop_after : cfg->steps;
    for (int64_t step = first; step <= last && st == ATTN_OK; step++) {
        attn_train_batch b;
        if ((st = attn_train_batch_make(m, cfg->data_seed, step - 1, cfg->batch, &b)) != ATTN_OK) break;
        attn_nn_train_opts o = {1, mix(cfg->seed, (uint64_t)step), cfg->label_smoothing,
                                cfg->checkpointing};
        attn_transformer_zero_grad(m);
        double loss = 0, gn = 0;
        size_t act = 0;
        st = attn_transformer_step(ctx, m, &b.nb, &o, 1, &loss, NULL, &act);
        double lr = 0;
        if (st == ATTN_OK)
            st = attn_nn_lr(cfg->schedule, step, cfg->warmup, cfg->steps, cfg->lr, cfg->min_lr, &lr);
        if (st == ATTN_OK) st = attn_transformer_update(m, &opt, lr, cfg->clip, &gn);
        tokens += (double)count_tokens(&b.nb);
        attn_train_batch_free(&b);
        if (st != ATTN_OK) break;
        double el = now_s() - t0;
        attn_train_progress p = {step, cfg->steps, loss, lr, gn, tokens / el, el,
                                 el / (double)(step - first + 1) * (double)(cfg->steps - step), -1, act};
        if (cfg->eval_every > 0 && (step % cfg->eval_every == 0 || step == cfg->steps)) {
            st = attn_eval_dates(ctx, m, cfg->eval_n, 1, &p.heldout_acc);
            rep->heldout_acc = p.heldout_acc;
        }
        rep->steps_run++;
        rep->last_step = step;
        rep->final_loss = loss;
        if (act > rep->activation_bytes) rep->activation_bytes = act;
        if (cb) cb(&p, user);
        if (st == ATTN_OK && cfg->save_path && cfg->save_every > 0 && step % cfg->save_every == 0)
            st = save(m, cfg);
        if (cfg->target > 0 && p.heldout_acc >= cfg->target) break;
    }
    rep->seconds = now_s() - t0;
    if (st == ATTN_OK && cfg->save_path) st = save(m, cfg);
    return st;
}
