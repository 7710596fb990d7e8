/* train.c - the main job's loop: batches of the dates task (packed by
 * default, padded on request), AdamW with a warm-up schedule and
 * global-norm clipping, held-out evaluation, and checkpoints carrying the
 * training config so a resumed run is bit-exact:
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

task_train_cfg task_train_cfg_default(void)
{
    task_train_cfg c;
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


void task_train_batch_free(task_train_batch *b)
{
    if (!b) return;
    attn_release(b->src);
    attn_release(b->tgt_in);
    attn_release(b->tgt_out);
    attn_release(b->src_lens);
    attn_release(b->tgt_lens);
    attn_release(b->cu_src);
    attn_release(b->cu_tgt);
    memset(b, 0, sizeof *b);
}

/* Row i's first lens[i] entries of x [B, S], moved to cu[i] (cu[i] <= i * S,
 * so each move is to the same place or further back). */
static void compact(int32_t *x, int64_t B, int64_t S, const int64_t *lens, int64_t *cu)
{
    cu[0] = 0;
    for (int64_t i = 0; i < B; i++) {
        memmove(x + cu[i], x + i * S, (size_t)lens[i] * sizeof(int32_t));
        cu[i + 1] = cu[i] + lens[i];
    }
}

attn_status task_train_batch_pack(task_train_batch *b)
{
    if (!b || !b->tgt_in || !b->tgt_lens)
        return attn_fail(ATTN_NULL_ARG, "task_train_batch_pack: 'b' is not a batch of task_train_batch_make");
    if (b->cu_tgt) return ATTN_OK;
    int64_t B = b->nb.B;
    int enc = b->nb.src != NULL;
    b->cu_tgt = attn_calloc((size_t)(B + 1), sizeof(int64_t));
    b->cu_src = enc ? attn_calloc((size_t)(B + 1), sizeof(int64_t)) : NULL;
    if (!b->cu_tgt || (enc && !b->cu_src)) {
        attn_release(b->cu_tgt);
        attn_release(b->cu_src);
        b->cu_tgt = b->cu_src = NULL;
        return attn_fail(ATTN_NO_MEMORY, "task_train_batch_pack: out of memory");
    }
    compact(b->tgt_in, B, b->nb.S_tgt, b->tgt_lens, b->cu_tgt);
    compact(b->tgt_out, B, b->nb.S_tgt, b->tgt_lens, b->cu_tgt);
    b->nb.S_tgt = b->cu_tgt[B];
    b->nb.cu_seqlens_tgt = b->cu_tgt;
    if (enc) {
        compact(b->src, B, b->nb.S_src, b->src_lens, b->cu_src);
        b->nb.S_src = b->cu_src[B];
        b->nb.cu_seqlens_src = b->cu_src;
        b->nb.src_lens = NULL;
    }
    return ATTN_OK;
}

/* seq [n] = BOS src '=' tgt EOS (decoder-only) or the pieces (ENCDEC). */
static int64_t encode(const char *s, int32_t *ids)
{
    int64_t n = 0;
    for (; s[n]; n++) ids[n] = task_charvocab_id((unsigned char)s[n]);
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

static attn_status draw_bucketed(uint64_t seed, int64_t step, int64_t batch, task_dates_sample *ex)
{
    int64_t n = POOL * batch, first = (step / POOL) * n;
    int64_t slice = ((step % POOL) * 7) % POOL;
    task_dates_sample *pool = attn_calloc((size_t)n, sizeof *pool);
    keyed *keys = attn_calloc((size_t)n, sizeof *keys);
    attn_status st = pool && keys ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "task_train_batch_make: out of memory");
    for (int64_t i = 0; i < n && st == ATTN_OK; i++) {
        st = task_dates_example(seed, (uint64_t)(first + i), TASK_DATES_TRAIN, &pool[i]);
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

attn_status task_train_batch_make(const attn_transformer *m, uint64_t data_seed, int64_t step,
                                  int64_t batch, task_train_batch *b)
{
    if (!m) return attn_fail(ATTN_BAD_PARAM, "task_train_batch_make: bad 'm', 'b', 'batch' or 'step'");
    return task_train_batch_make_arch(attn_transformer_get_config(m)->arch == ATTN_TRANSFORMER_ARCH_DECODER, data_seed,
                                      step, batch, b);
}

attn_status task_train_batch_make_arch(int dec_only, uint64_t data_seed, int64_t step,
                                       int64_t batch, task_train_batch *b)
{
    if (!b || batch < 1 || step < 0)
        return attn_fail(ATTN_BAD_PARAM, "task_train_batch_make: bad 'm', 'b', 'batch' or 'step'");
    memset(b, 0, sizeof *b);
    enum { W = TASK_DATES_SRC_MAX + TASK_DATES_TGT_LEN + 3 };
    b->src = attn_calloc((size_t)(batch * W), sizeof(int32_t));
    b->tgt_in = attn_calloc((size_t)(batch * W), sizeof(int32_t));
    b->tgt_out = attn_calloc((size_t)(batch * W), sizeof(int32_t));
    b->src_lens = attn_calloc((size_t)batch, sizeof(int64_t));
    b->tgt_lens = attn_calloc((size_t)batch, sizeof(int64_t));
    if (!b->src || !b->tgt_in || !b->tgt_out || !b->src_lens || !b->tgt_lens) {
        task_train_batch_free(b);
        return attn_fail(ATTN_NO_MEMORY, "task_train_batch_make: out of memory");
    }
    task_dates_sample *ex = attn_calloc((size_t)batch, sizeof *ex);
    if (!ex) {
        task_train_batch_free(b);
        return attn_fail(ATTN_NO_MEMORY, "task_train_batch_make: out of memory");
    }
    int64_t S_src = 1, S_tgt = TASK_DATES_TGT_LEN + 1;
    attn_status st = draw_bucketed(data_seed, step, batch, ex);
    for (int64_t i = 0; i < batch && st == ATTN_OK; i++) {
        int64_t len = (int64_t)strlen(ex[i].src);
        b->src_lens[i] = len;
        if (len > S_src) S_src = len;
    }
    if (dec_only) S_tgt = S_src + TASK_DATES_TGT_LEN + 2;
    for (int64_t i = 0; i < batch && st == ATTN_OK; i++) {
        int32_t seq[W], *in = b->tgt_in + i * S_tgt, *out = b->tgt_out + i * S_tgt;
        int64_t n = 0, first_label = 0;
        if (!dec_only) encode(ex[i].src, b->src + i * S_src);
        seq[n++] = TASK_CHAR_BOS;
        if (dec_only) {
            n += encode(ex[i].src, seq + n);
            seq[n++] = task_charvocab_id('=');
            first_label = n - 1; /* labels before the target are ignored */
        }
        n += encode(ex[i].tgt, seq + n);
        seq[n++] = TASK_CHAR_EOS;
        for (int64_t t = 0; t + 1 < n; t++) {
            in[t] = seq[t];
            out[t] = t >= first_label ? seq[t + 1] : TASK_CHAR_PAD;
        }
        b->tgt_lens[i] = n - 1;
    }
    attn_release(ex);
    if (st != ATTN_OK) {
        task_train_batch_free(b);
        return st;
    }
    b->nb.B = batch;
    b->nb.S_src = dec_only ? 0 : S_src;
    b->nb.S_tgt = S_tgt;
    b->nb.src = dec_only ? NULL : b->src;
    b->nb.src_lens = dec_only ? NULL : b->src_lens;
    b->nb.tgt_in = b->tgt_in;
    b->nb.tgt_out = b->tgt_out;
    b->nb.pad_id = TASK_CHAR_PAD;
    return ATTN_OK;
}

/* ---- translation and evaluation ------------------------------------------------------ */

attn_status task_translate(attn_ctx *ctx, attn_transformer *m, const char *src, int64_t beam,
                           char *out, size_t cap, float *maps, int64_t *n_out)
{
    if (!m || !src || !out || !n_out)
        return attn_fail(ATTN_NULL_ARG, "task_translate: 'm', 'src', 'out', 'n_out' must be set");
    int dec_only = attn_transformer_get_config(m)->arch == ATTN_TRANSFORMER_ARCH_DECODER;
    int64_t len = (int64_t)strlen(src);
    if (len < 1 || len > TASK_DATES_SRC_MAX)
        return attn_fail(ATTN_BAD_DIM, "task_translate: the input must have 1 to %d characters, "
                         "not %lld", TASK_DATES_SRC_MAX, (long long)len);
    int32_t ids[TASK_DATES_SRC_MAX + 3], gen[TASK_DATES_TGT_LEN + 2];
    int64_t n = 0;
    if (dec_only) ids[n++] = TASK_CHAR_BOS;
    n += encode(src, ids + n);
    if (dec_only) ids[n++] = task_charvocab_id('=');
    attn_nn_gen_opts o = {TASK_CHAR_BOS, TASK_CHAR_EOS, TASK_DATES_TGT_LEN + 1, beam, 0.0};
    int64_t got = 0;
    attn_status st = attn_transformer_generate(ctx, m, ids, n, &o, gen, TASK_DATES_TGT_LEN + 1, &got,
                                      dec_only ? NULL : maps);
    if (st != ATTN_OK) return st;
    if ((st = task_charvocab_decode(gen, got, out, cap, NULL)) != ATTN_OK) return st;
    *n_out = got;
    return ATTN_OK;
}

attn_status task_eval_dates(attn_ctx *ctx, attn_transformer *m, int64_t n, int64_t beam, double *acc)
{
    if (!acc || n < 1) return attn_fail(ATTN_BAD_PARAM, "task_eval_dates: 'n' must be >= 1");
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        task_dates_sample ex;
        char out[64];
        int64_t got;
        attn_status st = task_dates_example(TASK_TRAIN_EVAL_SEED, (uint64_t)i, TASK_DATES_HELDOUT, &ex);
        if (st == ATTN_OK) st = task_translate(ctx, m, ex.src, beam, out, sizeof out, NULL, &got);
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

/* ---- the training config in a checkpoint's __metadata__ ------------------------------ */

/* X(field, type, lo, hi): field of task_train_cfg under the key
 * "train.<field>", in [lo, hi]. Integers are written in decimal, reals
 * with 17 significant digits (exactly), the schedule as its number. */
#define TRAIN_META(X)                 \
    X(steps, I64, 0, 1e9)             \
    X(batch, I64, 1, 1e6)             \
    X(warmup, I64, 0, 1e9)            \
    X(lr, F64, 0, 10)                 \
    X(min_lr, F64, 0, 10)             \
    X(weight_decay, F64, 0, 10)       \
    X(clip, F64, 0, 1e6)              \
    X(label_smoothing, F64, 0, 1)     \
    X(schedule, SCHEDULE, 0, 2)       \
    X(data_seed, U64, 0, 4e9)         \
    X(seed, U64, 0, 4e9)

#define COUNT(name, type, lo, hi) +1
enum { N_META = 0 TRAIN_META(COUNT), META_LEN = 40 };
#undef COUNT

static void put_I64(char *s, const int64_t *v) { snprintf(s, META_LEN, "%lld", (long long)*v); }
static void put_U64(char *s, const uint64_t *v) { snprintf(s, META_LEN, "%llu", (unsigned long long)*v); }
static void put_F64(char *s, const double *v) { snprintf(s, META_LEN, "%.17g", *v); }
static void put_SCHEDULE(char *s, const attn_nn_schedule *v) { snprintf(s, META_LEN, "%d", (int)*v); }

static attn_status save(const attn_transformer *m, const task_train_cfg *c)
{
    char text[N_META][META_LEN];
    const char *keys[N_META], *vals[N_META];
    int i = 0;
#define PUT(name, type, lo, hi) \
    put_##type(text[i], &c->name), keys[i] = "train." #name, vals[i] = text[i], i++;
    TRAIN_META(PUT)
#undef PUT
    return attn_transformer_save(m, c->save_path, 1, keys, vals, N_META);
}

/* The value of key as a number in [lo, hi] (an integer if integer), in
 * decimal as save() writes it: no spaces, hex, "inf" or "nan". */
static attn_status meta_num(const attn_safetensors *f, const char *key, bool integer, double lo,
                            double hi, double *out)
{
    const char *s = attn_safetensors_metadata(f, key);
    if (!s) return attn_fail(ATTN_BAD_FILE, "checkpoint: no training metadata '%s'", key);
    char *end = NULL;
    double x = NAN;
    if (s[0] != '\0' && strspn(s, integer ? "0123456789+-" : "0123456789+-.eE") == strlen(s))
        x = integer ? (double)strtoll(s, &end, 10) : strtod(s, &end);
    if (end == NULL || end == s || *end != '\0' || !(x >= lo && x <= hi))
        return attn_fail(ATTN_BAD_FILE, "checkpoint: '%s' = \"%.30s\" is not %s in [%g, %g]", key,
                         s, integer ? "an integer" : "a number", lo, hi);
    *out = x;
    return ATTN_OK;
}

/* The ranges hold every integer exactly in a double. */
static attn_status get_I64(const attn_safetensors *f, const char *key, double lo, double hi,
                           int64_t *v)
{
    double x = 0;
    attn_status st = meta_num(f, key, true, lo, hi, &x);
    if (st == ATTN_OK) *v = (int64_t)x;
    return st;
}
static attn_status get_U64(const attn_safetensors *f, const char *key, double lo, double hi,
                           uint64_t *v)
{
    double x = 0;
    attn_status st = meta_num(f, key, true, lo, hi, &x);
    if (st == ATTN_OK) *v = (uint64_t)x;
    return st;
}
static attn_status get_F64(const attn_safetensors *f, const char *key, double lo, double hi,
                           double *v)
{
    return meta_num(f, key, false, lo, hi, v);
}
static attn_status get_SCHEDULE(const attn_safetensors *f, const char *key, double lo, double hi,
                                attn_nn_schedule *v)
{
    double x = 0;
    attn_status st = meta_num(f, key, true, lo, hi, &x);
    if (st == ATTN_OK) *v = (attn_nn_schedule)(int)x;
    return st;
}

attn_status task_train_cfg_from_meta(const attn_safetensors *f, task_train_cfg *cfg)
{
    if (!f || !cfg) return attn_fail(ATTN_NULL_ARG, "task_train_cfg_from_meta: 'f' or 'cfg' is NULL");
    task_train_cfg t = *cfg;
    attn_status st = ATTN_OK;
#define GET(name, type, lo, hi) \
    if (st == ATTN_OK) st = get_##type(f, "train." #name, lo, hi, &t.name);
    TRAIN_META(GET)
#undef GET
#define SET(name, type, lo, hi) cfg->name = t.name;
    if (st == ATTN_OK) { TRAIN_META(SET) }
#undef SET
    return st;
}

/* The real tokens of a batch, padded or packed. */
static int64_t count_tokens(const attn_nn_batch *b)
{
    int64_t n = b->cu_seqlens_src ? b->S_src : 0;
    for (int64_t i = 0; b->src_lens && i < b->B; i++) n += b->src_lens[i];
    int64_t rows = b->cu_seqlens_tgt ? b->S_tgt : b->B * b->S_tgt;
    for (int64_t i = 0; i < rows; i++) n += b->tgt_in[i] != b->pad_id;
    return n;
}

attn_status task_train_dates(attn_ctx *ctx, attn_transformer *m, const task_train_cfg *cfg,
                             task_train_cb cb, void *user, task_train_report *rep)
{
    if (!ctx || !m || !cfg || !rep)
        return attn_fail(ATTN_NULL_ARG, "task_train_dates: 'ctx', 'm', 'cfg', 'rep' must be set");
    if (cfg->steps < 0 || cfg->batch < 1 || cfg->warmup < 0)
        return attn_fail(ATTN_BAD_PARAM, "task_train_dates: 'steps', 'batch' or 'warmup' is out of range");
    memset(rep, 0, sizeof *rep);
    rep->heldout_acc = -1;
    attn_nn_adamw opt = attn_nn_adamw_default();
    opt.weight_decay = cfg->weight_decay;
    double t0 = now_s(), tokens = 0;
    int64_t first = attn_transformer_steps_taken(m) + 1;
    attn_status st = ATTN_OK;
    int64_t last = cfg->stop_after > 0 && cfg->stop_after < cfg->steps ? cfg->stop_after : cfg->steps;
    for (int64_t step = first; step <= last && st == ATTN_OK; step++) {
        task_train_batch b;
        if ((st = task_train_batch_make(m, cfg->data_seed, step - 1, cfg->batch, &b)) != ATTN_OK) break;
        if (!cfg->padded && (st = task_train_batch_pack(&b)) != ATTN_OK) {
            task_train_batch_free(&b);
            break;
        }
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
        task_train_batch_free(&b);
        if (st != ATTN_OK) break;
        double el = now_s() - t0;
        task_train_progress p = {step, cfg->steps, loss, lr, gn, tokens / el, el,
                                 el / (double)(step - first + 1) * (double)(cfg->steps - step), -1, act};
        if (cfg->eval_every > 0 && (step % cfg->eval_every == 0 || step == cfg->steps)) {
            st = task_eval_dates(ctx, m, cfg->eval_n, 1, &p.heldout_acc);
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
