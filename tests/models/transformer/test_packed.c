/* test_packed.c - attn_transformer_step on packed batches
 * (attn_nn_batch.cu_seqlens_src/tgt): the loss, the logits of every real
 * token and every parameter's gradient equal those of the same sequences
 * padded (random tokens in the padding), for many length mixes (one-token
 * sequences, one long among short ones, equal lengths), both
 * architectures, every kind of position, pre- and post-norm, with and
 * without gradient checkpointing, and with dropout on the attention
 * weights (whose masks both layouts draw alike); with every dropout on,
 * checkpointing changes nothing and the gradients match centred
 * differences; bad offsets are refused naming the argument, with nothing
 * written and nothing left allocated, and out-of-memory anywhere in a
 * packed step leaks nothing. */
#include "nn_test.h"

#include <stdlib.h>
#include <string.h>

enum { MAXB = 7, MAXL = 12, VOCAB = 11 };

/* The same sequences twice: padded [B, S] / [B, T] and packed. */
typedef struct {
    int64_t B, S, T, ls[MAXB], lt[MAXB], cs[MAXB + 1], ct[MAXB + 1];
    int32_t src[MAXB * MAXL], tin[MAXB * MAXL], tout[MAXB * MAXL];
    int32_t psrc[MAXB * MAXL], ptin[MAXB * MAXL], ptout[MAXB * MAXL];
    attn_nn_batch padded, packed;
} pair;

/* Lengths of mix kind k in [1, hi]: 0 random, 1 all one, 2 one long among
 * ones and twos, 3 all equal. */
static int64_t draw_len(uint64_t *rng, int kind, int64_t b, int64_t hi)
{
    if (kind == 1) return 1;
    if (kind == 2) return b == 0 ? hi : t_rand_int(rng, 1, 2);
    if (kind == 3) return hi;
    return t_rand_int(rng, 1, hi);
}

static void pair_make(pair *p, uint64_t *rng, int enc, int kind)
{
    memset(p, 0, sizeof *p);
    p->B = t_rand_int(rng, 1, MAXB);
    int64_t hs = t_rand_int(rng, 1, MAXL), ht = t_rand_int(rng, 1, MAXL);
    for (int64_t b = 0; b < p->B; b++) {
        p->ls[b] = enc ? draw_len(rng, kind, b, hs) : 0;
        p->lt[b] = draw_len(rng, kind, b, ht);
        p->S = p->ls[b] > p->S ? p->ls[b] : p->S;
        p->T = p->lt[b] > p->T ? p->lt[b] : p->T;
        p->cs[b + 1] = p->cs[b] + p->ls[b];
        p->ct[b + 1] = p->ct[b] + p->lt[b];
    }
    for (int64_t b = 0; b < p->B; b++) {
        for (int64_t j = 0; j < p->S; j++) { /* the padding holds any tokens */
            int32_t id = (int32_t)t_rand_int(rng, 1, VOCAB - 1);
            p->src[b * p->S + j] = id;
            if (j < p->ls[b]) p->psrc[p->cs[b] + j] = id;
        }
        for (int64_t t = 0; t < p->T; t++) {
            int32_t in = (int32_t)t_rand_int(rng, 1, VOCAB - 1);
            /* labels: one in eight the pad id 0 (ignored), as the decoder-only layout's */
            int32_t out = t_rand_int(rng, 0, 7) == 0 ? 0 : (int32_t)t_rand_int(rng, 1, VOCAB - 1);
            p->tin[b * p->T + t] = in;
            p->tout[b * p->T + t] = t < p->lt[b] ? out : 0;
            if (t < p->lt[b]) p->ptin[p->ct[b] + t] = in, p->ptout[p->ct[b] + t] = out;
        }
    }
    p->tout[0] = p->ptout[0] = 3; /* at least one label counts */
    p->padded = (attn_nn_batch){p->B, enc ? p->S : 0, p->T, enc ? p->src : NULL, p->tin, p->tout,
                                enc ? p->ls : NULL, NULL, 0, NULL, NULL};
    p->packed = (attn_nn_batch){p->B, enc ? p->cs[p->B] : 0, p->ct[p->B], enc ? p->psrc : NULL,
                                p->ptin, p->ptout, NULL, NULL, 0, enc ? p->cs : NULL, p->ct};
}

static attn_transformer_config config(uint64_t *rng, int enc)
{
    attn_transformer_config c = attn_transformer_config_default(
        enc ? ATTN_TRANSFORMER_ARCH_ENCDEC : ATTN_TRANSFORMER_ARCH_DECODER);
    c.vocab = VOCAB;
    c.n_heads = t_rand_int(rng, 1, 3) == 3 ? 4 : 2;
    c.n_kv_heads = !enc && t_rand_int(rng, 0, 1) ? c.n_heads / 2 : c.n_heads;
    c.d_model = 4 * c.n_heads;
    c.d_ff = t_rand_int(rng, 8, 24);
    c.n_enc_layers = enc ? t_rand_int(rng, 1, 2) : 0;
    c.n_dec_layers = t_rand_int(rng, 1, 2);
    c.max_len = MAXL;
    c.norm_first = (int)t_rand_int(rng, 0, 1);
    c.norm = t_rand_int(rng, 0, 1) ? ATTN_NN_NORM_LAYERNORM : ATTN_NN_NORM_RMSNORM;
    c.pos = (attn_nn_pos)t_rand_int(rng, 1, 3);
    c.act = t_rand_int(rng, 0, 1) ? ATTN_NN_ACT_GELU : ATTN_NN_ACT_RELU;
    c.tie_embeddings = t_rand_int(rng, 0, 3) == 0;
    c.dropout = c.attn_dropout = 0;
    return c;
}

/* The step's loss, logits [rows, vocab] and a copy of every gradient. */
typedef struct {
    double loss;
    float *logits, *grads;
} outcome;

static outcome run_step(attn_ctx *ctx, attn_transformer *m, const attn_nn_batch *b,
                        const attn_nn_train_opts *o, int64_t rows)
{
    outcome r = {-1, calloc((size_t)(rows * VOCAB), sizeof(float)), NULL};
    int64_t n = attn_transformer_param_count(m);
    attn_transformer_zero_grad(m);
    T_EQ_STATUS(attn_transformer_step(ctx, m, b, o, 1, &r.loss, r.logits, NULL), ATTN_OK);
    attn_nn_param p;
    T_EQ_STATUS(attn_transformer_tensor(m, 0, &p), ATTN_OK);
    r.grads = malloc((size_t)n * sizeof(float));
    memcpy(r.grads, p.grad, (size_t)n * sizeof(float));
    return r;
}

static void outcome_free(outcome *r)
{
    free(r->logits);
    free(r->grads);
}

/* The largest error of each tensor's gradient relative to its largest
 * entry (at least 1e-3 of the largest of all), and of the logits. */
static double grads_err(attn_transformer *m, const float *a, const float *b)
{
    double top = 0, worst = 0;
    int64_t n = attn_transformer_param_count(m);
    for (int64_t i = 0; i < n; i++) top = fmax(top, fabs((double)b[i]));
    attn_nn_param p0;
    attn_transformer_tensor(m, 0, &p0);
    for (int64_t t = 0; t < attn_transformer_n_tensors(m); t++) {
        attn_nn_param p;
        attn_transformer_tensor(m, t, &p);
        int64_t off = p.grad - p0.grad;
        double e = 0, s = 1e-3 * top + 1e-30;
        for (int64_t i = 0; i < p.numel; i++) {
            e = fmax(e, fabs((double)a[off + i] - (double)b[off + i]));
            s = fmax(s, fabs((double)b[off + i]));
        }
        if (e / s > 1e-5 && t_verbose) printf("    %s: %.3g\n", p.name, e / s);
        worst = fmax(worst, e / s);
    }
    return worst;
}

T_TEST(transformer_packed_equals_padded)
{
    uint64_t rng = 0x9acced;
    double worst_loss = 0, worst_logit = 0, worst_grad = 0;
    for (int round = 0; round < 40; round++) {
        int enc = round % 4 != 3, kind = round % 4, ckpt = round % 2;
        attn_transformer_config c = config(&rng, enc);
        int attn_drop = round % 5 == 4; /* the attention weights' masks agree */
        if (attn_drop) c.attn_dropout = 0.25;
        attn_transformer *m = NULL;
        T_EQ_STATUS(attn_transformer_create(&c, 100 + (uint64_t)round, &m), ATTN_OK);
        if (!m) continue;
        pair p;
        pair_make(&p, &rng, enc, kind);
        attn_ctx *ctx = t_ctx((int)t_rand_int(&rng, 1, 2));
        attn_nn_train_opts pad_o = {attn_drop, 5 + (uint64_t)round, round % 3 ? 0.0 : 0.1, 0};
        attn_nn_train_opts pk_o = pad_o;
        pk_o.checkpointing = ckpt;
        outcome a = run_step(ctx, m, &p.padded, &pad_o, p.B * p.T);
        outcome b = run_step(ctx, m, &p.packed, &pk_o, p.ct[p.B]);
        double el = fabs(a.loss - b.loss) / fmax(1, fabs(a.loss));
        T_LE(el, 1e-6);
        double lo = 0;
        for (int64_t s = 0; s < p.B; s++)
            for (int64_t t = 0; t < p.lt[s]; t++)
                for (int64_t v = 0; v < VOCAB; v++)
                    lo = fmax(lo, fabs((double)a.logits[(s * p.T + t) * VOCAB + v] -
                                       (double)b.logits[(p.ct[s] + t) * VOCAB + v]));
        T_LE(lo, 1e-5);
        double eg = grads_err(m, b.grads, a.grads);
        if (eg > 2e-5)
            t_fail(__FILE__, __LINE__, "round %d (arch %d, mix %d, checkpointing %d, pos %d): "
                   "gradients differ by %.3g of their scale", round, (int)c.arch, kind, ckpt,
                   (int)c.pos, eg);
        t_checks++;
        worst_loss = fmax(worst_loss, el), worst_logit = fmax(worst_logit, lo);
        worst_grad = fmax(worst_grad, eg);
        outcome_free(&a);
        outcome_free(&b);
        attn_transformer_free(m);
    }
    if (t_verbose)
        printf("  packed vs padded: loss %.3g, logits %.3g, gradients %.3g (relative, worst)\n",
               worst_loss, worst_logit, worst_grad);
}

/* A packed step with every dropout on: checkpointing recomputes the same
 * masks (bitwise the same loss and gradients), the masks are drawn (the loss
 * differs from evaluation), and the gradients match centred differences of
 * the step's own loss with the same seed. */
typedef struct {
    attn_ctx *ctx;
    attn_transformer *m;
    const attn_nn_batch *b;
    attn_nn_train_opts o;
} loss_case;

static double packed_loss(void *user)
{
    loss_case *k = user;
    double loss = NAN;
    if (attn_transformer_step(k->ctx, k->m, k->b, &k->o, 0, &loss, NULL, NULL) != ATTN_OK) return NAN;
    return loss;
}

T_TEST(transformer_packed_dropout_checkpointing)
{
    uint64_t rng = 0xd40f;
    for (int enc = 0; enc <= 1; enc++) {
        attn_transformer_config c = config(&rng, enc);
        c.act = ATTN_NN_ACT_GELU; /* smooth, for the differences */
        c.dropout = 0.2, c.attn_dropout = 0.2;
        attn_transformer *m = NULL;
        T_EQ_STATUS(attn_transformer_create(&c, 21, &m), ATTN_OK);
        if (!m) continue;
        pair p;
        pair_make(&p, &rng, enc, 0);
        attn_ctx *ctx = t_ctx(2);
        attn_nn_train_opts o = {1, 99, 0.0, 0};
        outcome a = run_step(ctx, m, &p.packed, &o, p.ct[p.B]);
        o.checkpointing = 1;
        outcome b = run_step(ctx, m, &p.packed, &o, p.ct[p.B]);
        int64_t n = attn_transformer_param_count(m);
        T_CHECK(a.loss == b.loss);
        T_CHECK(memcmp(a.grads, b.grads, (size_t)n * sizeof(float)) == 0);
        attn_nn_train_opts ev = {0, 99, 0.0, 0};
        double plain = 0;
        T_EQ_STATUS(attn_transformer_step(ctx, m, &p.packed, &ev, 0, &plain, NULL, NULL), ATTN_OK);
        T_CHECK(plain != a.loss);
        loss_case k = {ctx, m, &p.packed, {1, 99, 0.0, 0}};
        attn_nn_param p0;
        T_EQ_STATUS(attn_transformer_tensor(m, 0, &p0), ATTN_OK);
        for (int64_t t = 0; t < attn_transformer_n_tensors(m); t++) {
            attn_nn_param q;
            T_EQ_STATUS(attn_transformer_tensor(m, t, &q), ATTN_OK);
            for (int j = 0; j < 3; j++) {
                int64_t i = j == 0 ? 0 : j == 1 ? q.numel - 1 : t_rand_int(&rng, 0, q.numel - 1);
                double g = a.grads[(q.grad - p0.grad) + i], tol = 5e-4 + 1e-2 * fabs(g), fd = 0;
                for (int s = 0; s < 3; s++) { /* as test_grid_model.c: a smaller step may be needed */
                    float h = (float[]){1e-2f, 3e-3f, 1e-3f}[s], keep = q.value[i];
                    q.value[i] = keep + h;
                    float up = q.value[i];
                    double lp = packed_loss(&k);
                    q.value[i] = keep - h;
                    float dn = q.value[i];
                    double lm = packed_loss(&k);
                    q.value[i] = keep;
                    fd = (lp - lm) / ((double)up - (double)dn);
                    if (fabs(fd - g) <= tol) break;
                }
                if (!(fabs(fd - g) <= tol))
                    t_fail(__FILE__, __LINE__, "d %s[%lld] = %.7g, centred difference %.7g", q.name,
                           (long long)i, g, fd);
                t_checks++;
            }
        }
        outcome_free(&a);
        outcome_free(&b);
        attn_transformer_free(m);
    }
}

/* A step that must fail with want, naming what: nothing written to the loss
 * or the gradients, no allocation left live. */
static void refused(attn_ctx *ctx, attn_transformer *m, const attn_nn_batch *b, attn_status want,
                    const char *what)
{
    double loss = -7;
    attn_nn_train_opts o = {0, 0, 0, 0};
    attn_transformer_zero_grad(m);
    t_counting cnt = {0, 0, 0};
    attn_set_allocator(t_count_alloc, t_count_free, &cnt);
    attn_status st = attn_transformer_step(ctx, m, b, &o, 1, &loss, NULL, NULL);
    attn_set_allocator(NULL, NULL, NULL);
    T_EQ_STATUS(st, want);
    T_EQ_INT(cnt.live, 0);
    T_CHECK(loss == -7);
    if (strstr(attn_last_error(), what) == NULL)
        t_fail(__FILE__, __LINE__, "the message \"%s\" does not name %s", attn_last_error(), what);
    attn_nn_param p;
    attn_transformer_tensor(m, 0, &p);
    bool zero = true;
    for (int64_t i = 0; i < attn_transformer_param_count(m); i++) zero &= p.grad[i] == 0;
    T_CHECK(zero);
}

typedef struct {
    attn_ctx *ctx;
    attn_transformer *m;
    const attn_nn_batch *b;
} oom_case;

static attn_status oom_step(void *arg)
{
    oom_case *k = arg;
    attn_nn_train_opts o = {1, 3, 0.1, 1};
    double loss;
    return attn_transformer_step(k->ctx, k->m, k->b, &o, 1, &loss, NULL, NULL);
}

static attn_status probe_hook(attn_ctx *ctx, const attn_nn_attn_probe *p, void *user)
{
    (void)ctx, (void)p, (void)user;
    return ATTN_OK;
}

T_TEST(transformer_packed_bad_offsets)
{
    attn_transformer_config c = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    c.vocab = VOCAB, c.d_model = 8, c.n_heads = c.n_kv_heads = 2, c.d_ff = 8;
    c.n_enc_layers = c.n_dec_layers = 1, c.max_len = 6;
    c.dropout = 0.1;
    attn_transformer *m = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 4, &m), ATTN_OK);
    if (!m) return;
    attn_ctx *ctx = t_ctx(1);
    /* three sources of 2, 3, 1 tokens and targets of 3, 1, 2 */
    int32_t src[6] = {4, 5, 6, 7, 8, 9}, tin[6] = {1, 4, 5, 1, 1, 7}, tout[6] = {4, 5, 2, 2, 7, 2};
    int64_t cs[4] = {0, 2, 5, 6}, ct[4] = {0, 3, 4, 6}, lens[3] = {2, 3, 1};
    attn_nn_batch b = {3, 6, 6, src, tin, tout, NULL, NULL, 0, cs, ct};
    double loss = 0;
    attn_nn_train_opts o = {0, 0, 0, 0};
    T_EQ_STATUS(attn_transformer_step(ctx, m, &b, &o, 1, &loss, NULL, NULL), ATTN_OK);

    ct[0] = 1; /* not starting at 0 */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_tgt[0]'");
    ct[0] = 0, cs[2] = 1; /* decreasing */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_src[2]'");
    cs[2] = 5, ct[3] = 5; /* not ending at the total */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_tgt[3]'");
    ct[3] = 6, b.S_src = 7;
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_src[3]'");
    b.S_src = 6;
    /* src and tgt of different numbers of sequences: the targets of the
     * first two sequences only (in a zeroed buffer of four entries) with
     * the three sources: the target offsets fall back to 0 ... */
    int64_t ct2[4] = {0, 3, 4, 0};
    b.cu_seqlens_tgt = ct2, b.S_tgt = 4;
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_tgt[3]'");
    b.B = 2; /* ... or, called 2, the sources do not end at their total */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_src[2]'");
    b.B = 3, b.cu_seqlens_tgt = ct, b.S_tgt = 6;
    ct[1] = 0; /* an empty target */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_tgt'");
    ct[1] = 3;
    int64_t cs_long[4] = {0, 1, 2, 9}; /* a source beyond max_len 6 */
    int32_t src_long[9] = {4, 5, 6, 7, 8, 9, 4, 5, 6};
    b.cu_seqlens_src = cs_long, b.src = src_long, b.S_src = 9;
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_src'");
    b.cu_seqlens_src = cs, b.src = src, b.S_src = 6;
    b.cu_seqlens_src = NULL; /* one layout only */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_src'");
    b.cu_seqlens_src = cs, b.cu_seqlens_tgt = NULL;
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->cu_seqlens_tgt'");
    b.cu_seqlens_tgt = ct, b.src_lens = lens; /* lengths beside offsets */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->src_lens'");
    b.src_lens = NULL;
    src[5] = VOCAB; /* token ids are checked over the packed rows */
    refused(ctx, m, &b, ATTN_BAD_PARAM, "'batch->src[5]'");
    src[5] = 9;
    /* the probe takes padded batches only */
    T_EQ_STATUS(attn_transformer_step_probe(ctx, m, &b, &o, probe_hook, NULL, &loss), ATTN_UNSUPPORTED);
    T_CHECK(strstr(attn_last_error(), "'batch->cu_seqlens_tgt'") != NULL);
    /* out of memory anywhere in a packed step with checkpointing and dropout */
    oom_case k = {ctx, m, &b};
    T_CHECK(t_oom_sweep(oom_step, &k) > 0);
    attn_transformer_free(m);

    /* the decoder-only model has no source */
    attn_transformer_config d = c;
    d.arch = ATTN_TRANSFORMER_ARCH_DECODER, d.n_enc_layers = 0;
    T_EQ_STATUS(attn_transformer_create(&d, 4, &m), ATTN_OK);
    if (!m) return;
    attn_nn_batch db = {3, 0, 6, NULL, tin, tout, NULL, NULL, 0, NULL, ct};
    T_EQ_STATUS(attn_transformer_step(ctx, m, &db, &o, 1, &loss, NULL, NULL), ATTN_OK);
    db.cu_seqlens_src = cs;
    refused(ctx, m, &db, ATTN_BAD_PARAM, "'batch->cu_seqlens_src'");
    attn_transformer_free(m);
}
