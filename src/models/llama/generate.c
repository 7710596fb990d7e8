/* generate.c - text from the Llama model: the ChatML chat format of the
 * file's template, sampling (repetition penalty, temperature, top-k, top-p,
 * min-p, a Philox draw per position) and the generation loop, which streams
 * each token's whole UTF-8 characters to a callback. */
#include "llama_internal.h"

#include "core/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- chat format ------------------------------------------------------------------ */

/* ATTN_BAD_PARAM unless s is valid UTF-8 without the ChatML markers (and,
 * for a role, non-empty and without a newline). */
static attn_status check_text(const char *s, const char *what, int64_t i, bool role)
{
    static const char *const fn = "attn_llama_chat_format";
    if (s == NULL) return attn_fail(ATTN_NULL_ARG, "%s: msgs[%lld].%s is NULL", fn, (long long)i, what);
    size_t n = strlen(s);
    for (size_t at = 0; at < n;) {
        uint32_t c;
        int len = attn__utf8_decode((const unsigned char *)s + at, n - at, &c);
        if (len == 0)
            return attn_fail(ATTN_BAD_PARAM, "%s: msgs[%lld].%s is not valid UTF-8 at byte %zu", fn,
                             (long long)i, what, at);
        at += (size_t)len;
    }
    if (strstr(s, "<|im_start|>") != NULL || strstr(s, "<|im_end|>") != NULL)
        return attn_fail(ATTN_BAD_PARAM, "%s: msgs[%lld].%s holds a ChatML marker (<|im_start|> or <|im_end|>)",
                         fn, (long long)i, what);
    if (role && (n == 0 || strchr(s, '\n') != NULL))
        return attn_fail(ATTN_BAD_PARAM, "%s: msgs[%lld].role must be non-empty and without a newline", fn,
                         (long long)i);
    return ATTN_OK;
}

/* Appends s to buf [cap] at *at (counting only once buf is full). */
static void put(char *buf, size_t cap, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (buf != NULL && *at + n <= cap) memcpy(buf + *at, s, n);
    *at += n;
}

static void put_turn(char *buf, size_t cap, size_t *at, const char *role, const char *content)
{
    put(buf, cap, at, "<|im_start|>");
    put(buf, cap, at, role);
    put(buf, cap, at, "\n");
    put(buf, cap, at, content);
    put(buf, cap, at, "<|im_end|>\n");
}

/* The ChatML text into buf [cap] if buf is not NULL (it must fit); returns
 * its length. */
static size_t format(const attn_llama *m, const attn_llama_message *msgs, int64_t n_msgs, bool gen,
                     bool cont, char *buf, size_t cap)
{
    size_t at = 0;
    if (cont) put(buf, cap, &at, "<|im_end|>\n");
    if (!cont && m->system != NULL && (n_msgs == 0 || strcmp(msgs[0].role, "system") != 0))
        put_turn(buf, cap, &at, "system", m->system);
    for (int64_t i = 0; i < n_msgs; i++) put_turn(buf, cap, &at, msgs[i].role, msgs[i].content);
    if (gen) put(buf, cap, &at, "<|im_start|>assistant\n");
    return at;
}

attn_status attn_llama_chat_format(const attn_llama *m, const attn_llama_message *msgs, int64_t n_msgs,
                                   int add_generation_prompt, int continuation, char *buf, size_t cap,
                                   size_t *n)
{
    static const char *const fn = "attn_llama_chat_format";
    ATTN__NOT_NULL(fn, m);
    ATTN__NOT_NULL(fn, n);
    ATTN__DIM(fn, n_msgs);
    if (n_msgs > 0) ATTN__NOT_NULL(fn, msgs);
    if (buf == NULL && cap != 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'buf' is NULL with cap %zu", fn, cap);
    if (!m->chatml)
        return attn_fail(ATTN_UNSUPPORTED, "%s: the file has no ChatML chat template (tokenizer.chat_template)", fn);
    attn_status st;
    for (int64_t i = 0; i < n_msgs; i++)
        if ((st = check_text(msgs[i].role, "role", i, true)) != ATTN_OK ||
            (st = check_text(msgs[i].content, "content", i, false)) != ATTN_OK)
            return st;
    bool gen = add_generation_prompt != 0, cont = continuation != 0;
    size_t need = format(m, msgs, n_msgs, gen, cont, NULL, 0);
    if (buf != NULL && need > cap)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' is %zu; the text needs %zu bytes", fn, cap, need);
    if (buf != NULL) format(m, msgs, n_msgs, gen, cont, buf, cap);
    *n = need;
    return ATTN_OK;
}

/* ---- sampling ------------------------------------------------------------------------- */

attn_llama_sampling attn_llama_sampling_default(void)
{
    attn_llama_sampling p;
    memset(&p, 0, sizeof p);
    return p;
}

static attn_status check_sampling(const attn_llama_sampling *p)
{
    static const char *const fn = "attn_llama_sample";
    const struct {
        const char *name;
        double v, lo, hi;
    } r[] = {{"temperature", p->temperature, 0.0, HUGE_VAL}, {"top_p", p->top_p, 0.0, 1.0},
             {"min_p", p->min_p, 0.0, 1.0},                 {"repeat_penalty", p->repeat_penalty, 0.0, HUGE_VAL}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (!(r[i].v >= r[i].lo && r[i].v <= r[i].hi) || isinf(r[i].v))
            return attn_fail(ATTN_BAD_PARAM, "%s: '%s' is %g; it must be finite and in [%g, %g]", fn, r[i].name,
                             r[i].v, r[i].lo, r[i].hi);
    if (p->top_k < 0 || p->repeat_last_n < 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'top_k' (%lld) and 'repeat_last_n' (%lld) must be >= 0", fn,
                         (long long)p->top_k, (long long)p->repeat_last_n);
    return ATTN_OK;
}

/* A candidate: its value and id. */
typedef struct {
    float v;
    int32_t id;
} cand;

/* Scratch of one draw over n_vocab tokens. */
typedef struct {
    float *z;      /* [n] the logits, penalised and scaled, then probabilities */
    cand *cand;    /* [n] candidates to sort, or a heap of values */
    uint8_t *keep; /* [n] 1: in the running; 2: penalised already */
} sampler;

static attn_status sampler_alloc(int64_t n, sampler *w)
{
    w->z = attn_alloc((size_t)n * sizeof(float));
    w->cand = attn_alloc((size_t)n * sizeof(cand));
    w->keep = attn_alloc((size_t)n);
    if (w->z == NULL || w->cand == NULL || w->keep == NULL) {
        attn_release(w->z);
        attn_release(w->cand);
        attn_release(w->keep);
        return attn_fail(ATTN_NO_MEMORY, "attn_llama_sample: out of memory for %lld tokens", (long long)n);
    }
    return ATTN_OK;
}

static void sampler_free(sampler *w)
{
    attn_release(w->z);
    attn_release(w->cand);
    attn_release(w->keep);
}

/* Uniform in [0, 1) with 53 bits: Philox4x32-10 of counter (step, "SAMP")
 * and key seed. */
static double uniform(uint64_t seed, uint64_t step)
{
    uint32_t ctr[4] = {(uint32_t)step, (uint32_t)(step >> 32), 0x53414D50u, 0};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
    attn_philox4x32_10(ctr, key, out);
    return (double)(((uint64_t)out[0] << 21) ^ (out[1] >> 11)) * 0x1p-53;
}

/* Descending value, then ascending id (the sort of the candidates). */
static int by_value(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->v > y->v ? -1 : x->v < y->v ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* The value of the k-th largest of z over keep (k < count), by a min-heap
 * of k values in the scratch. */
static float kth_largest(const float *z, const uint8_t *keep, int64_t n, int64_t k, cand *scratch)
{
    float *heap = (float *)(void *)scratch;
    int64_t size = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        float v = z[i];
        if (size < k) {
            int64_t c = size++;
            while (c > 0 && heap[(c - 1) / 2] > v) heap[c] = heap[(c - 1) / 2], c = (c - 1) / 2;
            heap[c] = v;
        } else if (v > heap[0]) {
            int64_t c = 0;
            for (;;) {
                int64_t l = 2 * c + 1, r = l + 1, s = c;
                float sv = v;
                if (l < k && heap[l] < sv) s = l, sv = heap[l];
                if (r < k && heap[r] < sv) s = r;
                if (s == c) break;
                heap[c] = heap[s];
                c = s;
            }
            heap[c] = v;
        }
    }
    return heap[0];
}

/* Top-p on the probabilities z over keep (sum 1): keeps the most probable
 * tokens until their sum reaches p. Only tokens with probability >= t are
 * sorted, t lowered until those hold p (the rest cannot be in the set). */
static void top_p(const float *z, uint8_t *keep, cand *c, int64_t n, double p, float pmax)
{
    for (float t = pmax * 1e-3f;; t *= 1e-3f) {
        double sum = 0.0;
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (keep[i] && (z[i] >= t || t < 1e-30f)) sum += z[i], c[m++] = (cand){z[i], (int32_t)i};
        if (sum < p && t >= 1e-30f) continue;
        qsort(c, (size_t)m, sizeof *c, by_value);
        double cum = 0.0;
        int64_t last = 0;
        while (last < m - 1 && (cum += c[last].v) < p) last++;
        memset(keep, 0, (size_t)n);
        for (int64_t i = 0; i <= last; i++) keep[c[i].id] = 1;
        return;
    }
}

/* One draw (check_sampling and the history already validated). */
static int32_t sample(const attn_llama_sampling *p, const float *logits, int64_t n, const int32_t *hist,
                      int64_t n_hist, uint64_t step, sampler *w)
{
    float *z = w->z;
    memcpy(z, logits, (size_t)n * sizeof(float));
    memset(w->keep, 1, (size_t)n);
    if (p->repeat_penalty > 0.0 && p->repeat_penalty != 1.0) {
        int64_t from = p->repeat_last_n > 0 && p->repeat_last_n < n_hist ? n_hist - p->repeat_last_n : 0;
        for (int64_t i = from; i < n_hist; i++) {
            int32_t id = hist[i];
            if (w->keep[id] == 2) continue;
            z[id] = z[id] > 0.0f ? (float)(z[id] / p->repeat_penalty) : (float)(z[id] * p->repeat_penalty);
            w->keep[id] = 2;
        }
        memset(w->keep, 1, (size_t)n);
    }
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (z[i] > z[best]) best = (int32_t)i;
    if (p->temperature == 0.0) return best;
    for (int64_t i = 0; i < n; i++) z[i] = (float)(z[i] / p->temperature);
    if (p->top_k > 0 && p->top_k < n) {
        float kth = kth_largest(z, w->keep, n, p->top_k, w->cand);
        for (int64_t i = 0; i < n; i++) w->keep[i] = z[i] >= kth;
    }
    double sum = 0.0;
    float zmax = z[best];
    for (int64_t i = 0; i < n; i++) {
        z[i] = w->keep[i] ? (float)exp((double)z[i] - (double)zmax) : 0.0f;
        sum += z[i];
    }
    for (int64_t i = 0; i < n; i++) z[i] = (float)(z[i] / sum);
    float pmax = z[best];
    if (p->top_p > 0.0 && p->top_p < 1.0) top_p(z, w->keep, w->cand, n, p->top_p, pmax);
    if (p->min_p > 0.0)
        for (int64_t i = 0; i < n; i++) w->keep[i] = w->keep[i] && z[i] >= (float)(p->min_p * pmax);
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += w->keep[i] ? z[i] : 0.0;
    double target = uniform(p->seed, step) * total, cum = 0.0;
    int32_t last = best;
    for (int64_t i = 0; i < n; i++) {
        if (!w->keep[i]) continue;
        last = (int32_t)i;
        if ((cum += z[i]) > target) return last;
    }
    return last;
}

static attn_status check_sample_input(const attn_llama_sampling *p, const float *logits, int64_t n,
                                      const int32_t *hist, int64_t n_hist)
{
    static const char *const fn = "attn_llama_sample";
    attn_status st = check_sampling(p);
    if (st != ATTN_OK) return st;
    for (int64_t i = 0; i < n; i++)
        if (isnan(logits[i]) || logits[i] == INFINITY)
            return attn_fail(ATTN_BAD_PARAM, "%s: logits[%lld] is %g; logits must be below +inf and not NaN", fn,
                             (long long)i, (double)logits[i]);
    for (int64_t i = 0; i < n_hist; i++)
        if (hist[i] < 0 || hist[i] >= n)
            return attn_fail(ATTN_BAD_PARAM, "%s: history[%lld] is %d; it must be in [0, %lld)", fn, (long long)i,
                             hist[i], (long long)n);
    return ATTN_OK;
}

attn_status attn_llama_sample(const attn_llama_sampling *p, const float *logits, int64_t n_vocab,
                              const int32_t *history, int64_t n_history, uint64_t step, int32_t *out)
{
    static const char *const fn = "attn_llama_sample";
    attn_llama_sampling d = attn_llama_sampling_default();
    if (p == NULL) p = &d;
    ATTN__NOT_NULL(fn, logits);
    ATTN__NOT_NULL(fn, out);
    ATTN__DIM_POS(fn, n_vocab);
    ATTN__DIM(fn, n_history);
    if (n_history > 0) ATTN__NOT_NULL(fn, history);
    if (n_vocab > INT32_MAX)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'n_vocab' is %lld; it must be < 2^31", fn, (long long)n_vocab);
    attn_status st = check_sample_input(p, logits, n_vocab, history, n_history);
    sampler w;
    if (st != ATTN_OK || (st = sampler_alloc(n_vocab, &w)) != ATTN_OK) return st;
    *out = sample(p, logits, n_vocab, history, n_history, step, &w);
    sampler_free(&w);
    return ATTN_OK;
}

/* ---- generation ---------------------------------------------------------------------------- */

attn_llama_generate_params attn_llama_generate_params_default(void)
{
    attn_llama_generate_params p;
    memset(&p, 0, sizeof p);
    p.sampling = attn_llama_sampling_default();
    return p;
}

/* The state of one generation. */
typedef struct {
    attn_ctx *ctx;
    attn_llama_session *s;
    const attn_llama_generate_params *p;
    attn_llama_token_fn on_token;
    void *user;
    float *logits;
    sampler w;
    char *text; /* the streamed bytes of one token */
    size_t text_cap;
} gen;

static bool is_stop(const attn_llama *m, int32_t id) { return id == m->eos_id || id == m->im_end_id; }

/* Generates into out (or only streams); *n tokens so far. */
static attn_status run(gen *g, int32_t *out, int64_t *n, int *stopped)
{
    const attn_llama *m = g->s->m;
    attn_bpe_stream bs;
    memset(&bs, 0, sizeof bs);
    attn_status st = ATTN_OK;
    while ((g->p->max_tokens == 0 || *n < g->p->max_tokens) && g->s->len < g->s->n_ctx) {
        int32_t id;
        if ((st = check_sample_input(&g->p->sampling, g->logits, m->cfg.n_vocab, NULL, 0)) != ATTN_OK) return st;
        id = sample(&g->p->sampling, g->logits, m->cfg.n_vocab, g->s->ids, g->s->len, (uint64_t)g->s->len, &g->w);
        if (is_stop(m, id)) {
            *stopped = 1;
            break;
        }
        if (out != NULL) out[*n] = id;
        (*n)++;
        size_t len = 0;
        if ((st = attn_bpe_stream_push(m->tok, &bs, id, g->text, g->text_cap, &len, NULL)) != ATTN_OK) return st;
        int halt = g->on_token ? g->on_token(g->user, id, g->text, len) : 0;
        bool last = halt || *n == g->p->max_tokens || g->s->len + 1 == g->s->n_ctx;
        if ((st = attn_llama_forward(g->ctx, g->s, &id, 1, last ? NULL : g->logits)) != ATTN_OK || halt) break;
    }
    size_t len = 0;
    if (st == ATTN_OK && attn_bpe_stream_flush(&bs, g->text, g->text_cap, &len, NULL) == ATTN_OK && len > 0 &&
        g->on_token)
        g->on_token(g->user, -1, g->text, len);
    return st;
}

static attn_status check_generate(const attn_llama_session *s, int64_t n_prompt,
                                  const attn_llama_generate_params *p, const int32_t *out, int64_t cap)
{
    static const char *const fn = "attn_llama_generate";
    if (n_prompt < 1)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'n_prompt' is %lld; it must be >= 1", fn, (long long)n_prompt);
    if (p->max_tokens < 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: 'max_tokens' is %lld; it must be >= 0", fn, (long long)p->max_tokens);
    attn_status st = check_sampling(&p->sampling);
    if (st != ATTN_OK) return st;
    if (n_prompt > s->n_ctx - s->len)
        return attn_fail(ATTN_BAD_DIM, "%s: the prompt of %lld tokens does not fit: the session holds %lld of "
                         "%lld tokens", fn, (long long)n_prompt, (long long)s->len, (long long)s->n_ctx);
    int64_t room = s->n_ctx - s->len - n_prompt;
    int64_t need = p->max_tokens > 0 && p->max_tokens < room ? p->max_tokens : room;
    if (out == NULL && cap != 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'out' is NULL with cap %lld", fn, (long long)cap);
    if (out != NULL && cap < need)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' is %lld; up to %lld tokens may be generated", fn,
                         (long long)cap, (long long)need);
    return ATTN_OK;
}

attn_status attn_llama_generate(attn_ctx *ctx, attn_llama_session *s, const int32_t *prompt, int64_t n_prompt,
                                const attn_llama_generate_params *p, attn_llama_token_fn on_token, void *user,
                                int32_t *out, int64_t cap, int64_t *n_out, int *stopped)
{
    static const char *const fn = "attn_llama_generate";
    attn_llama_generate_params d = attn_llama_generate_params_default();
    if (p == NULL) p = &d;
    ATTN__NOT_NULL(fn, ctx);
    ATTN__NOT_NULL(fn, s);
    ATTN__NOT_NULL(fn, prompt);
    ATTN__NOT_NULL(fn, n_out);
    attn_status st = check_generate(s, n_prompt, p, out, cap);
    if (st != ATTN_OK) return st;
    const attn_llama *m = s->m;
    gen g = {.ctx = ctx, .s = s, .p = p, .on_token = on_token, .user = user};
    g.text_cap = 3 * (3 + ATTN_BPE_MAX_TOKEN_BYTES);
    g.logits = attn_alloc((size_t)m->cfg.n_vocab * sizeof(float));
    g.text = attn_alloc(g.text_cap);
    if (g.logits == NULL || g.text == NULL || (st = sampler_alloc(m->cfg.n_vocab, &g.w)) != ATTN_OK) {
        attn_release(g.logits);
        attn_release(g.text);
        return st != ATTN_OK ? st : attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    }
    int64_t n = 0;
    int stop = 0;
    st = attn_llama_forward(ctx, s, prompt, n_prompt, g.logits);
    if (st == ATTN_OK) st = run(&g, out, &n, &stop);
    sampler_free(&g.w);
    attn_release(g.logits);
    attn_release(g.text);
    if (st != ATTN_OK) return st;
    *n_out = n;
    if (stopped != NULL) *stopped = stop;
    return ATTN_OK;
}
