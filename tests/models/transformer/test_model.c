/* test_model.c - the models: KV-cache decoding against full recomputation,
 * beam search against greedy, gradient checkpointing, checkpoints (round
 * trip, bit-exact resume, a catalogue of corrupt files, a truncation sweep)
 * and argument checks. */
#include "nn_test.h"

#include <stdlib.h>
#include <string.h>

static attn_transformer_config small_config(attn_transformer_arch arch)
{
    attn_transformer_config c = attn_transformer_config_default(arch);
    c.vocab = 13;
    c.d_model = 16;
    c.n_heads = 4;
    c.n_kv_heads = arch == ATTN_TRANSFORMER_ARCH_DECODER ? 2 : 4;
    c.d_ff = 24;
    c.n_enc_layers = arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? 2 : 0;
    c.n_dec_layers = 2;
    c.max_len = 12;
    c.dropout = 0.1;
    c.attn_dropout = 0.1;
    if (arch == ATTN_TRANSFORMER_ARCH_DECODER) {
        c.pos = ATTN_NN_POS_ROPE;
        c.norm = ATTN_NN_NORM_RMSNORM;
    }
    return c;
}

/* Argmax of the last position's logits for the prefix seq[0..n), by a full
 * forward without any cache. */
static int32_t full_argmax(attn_ctx *ctx, attn_transformer *m, const int32_t *src, int64_t src_len,
                           const int32_t *seq, int64_t n)
{
    const attn_transformer_config *c = attn_transformer_get_config(m);
    int32_t labels[16] = {0};
    float logits[16 * 13];
    attn_nn_batch b = {1, src_len, n, src, seq, labels, &src_len, NULL, 0, NULL, NULL};
    if (c->arch == ATTN_TRANSFORMER_ARCH_DECODER) b.src = NULL;
    attn_nn_train_opts o = {0, 0, 0, 0};
    double loss;
    T_EQ_STATUS(attn_transformer_step(ctx, m, &b, &o, 0, &loss, logits, NULL), ATTN_OK);
    const float *last = logits + (n - 1) * c->vocab;
    int32_t best = 0;
    for (int32_t v = 1; v < c->vocab; v++)
        if (last[v] > last[best]) best = v;
    return best;
}

T_TEST(generate_cache_matches_full_forward)
{
    attn_ctx *ctx = t_ctx(2);
    for (int arch = ATTN_TRANSFORMER_ARCH_ENCDEC; arch <= ATTN_TRANSFORMER_ARCH_DECODER; arch++) {
        attn_transformer_config c = small_config((attn_transformer_arch)arch);
        for (int seed = 1; seed <= 3; seed++) {
            attn_transformer *m = NULL;
            T_EQ_STATUS(attn_transformer_create(&c, (uint64_t)seed, &m), ATTN_OK);
            int32_t src[5] = {4, 7, 5, 9, 11}, out[8], seq[16];
            int64_t n_out = 0, src_len = 5;
            attn_nn_gen_opts o = {1, 2, 6, 1, 0.0};
            T_EQ_STATUS(attn_transformer_generate(ctx, m, src, src_len, &o, out, 8, &n_out, NULL), ATTN_OK);
            /* replay: the same tokens by full recomputation */
            int64_t n = 0;
            if (arch == ATTN_TRANSFORMER_ARCH_ENCDEC) seq[n++] = 1;
            else
                for (int64_t i = 0; i < src_len; i++) seq[n++] = src[i];
            for (int64_t i = 0; i <= n_out && i < 6; i++) {
                int32_t want = full_argmax(ctx, m, src, src_len, seq, n);
                int32_t got = i < n_out ? out[i] : 2;
                T_EQ_INT(got, want);
                seq[n++] = want;
            }
            attn_transformer_free(m);
        }
    }
}

/* Sum of log-probabilities of out (then EOS) by teacher forcing. */
static double seq_logprob(attn_ctx *ctx, attn_transformer *m, const int32_t *src, int64_t src_len,
                          const int32_t *out, int64_t n_out)
{
    int32_t in[16], lab[16];
    in[0] = 1;
    for (int64_t i = 0; i < n_out; i++) in[i + 1] = lab[i] = out[i];
    lab[n_out] = 2;
    attn_nn_batch b = {1, src_len, n_out + 1, src, in, lab, &src_len, NULL, 0, NULL, NULL};
    attn_nn_train_opts o = {0, 0, 0, 0};
    double loss = 0;
    T_EQ_STATUS(attn_transformer_step(ctx, m, &b, &o, 0, &loss, NULL, NULL), ATTN_OK);
    return -loss * (double)(n_out + 1);
}

T_TEST(beam_search_beats_greedy)
{
    attn_ctx *ctx = t_ctx(2);
    attn_transformer_config c = small_config(ATTN_TRANSFORMER_ARCH_ENCDEC);
    int wins = 0;
    for (int seed = 1; seed <= 6; seed++) {
        attn_transformer *m = NULL;
        T_EQ_STATUS(attn_transformer_create(&c, (uint64_t)seed, &m), ATTN_OK);
        int32_t src[4] = {5, 6, 7, 8}, g[8], bm[8];
        int64_t ng = 0, nbm = 0;
        attn_nn_gen_opts o = {1, 2, 6, 1, 0.0};
        T_EQ_STATUS(attn_transformer_generate(ctx, m, src, 4, &o, g, 8, &ng, NULL), ATTN_OK);
        o.beam = 4;
        T_EQ_STATUS(attn_transformer_generate(ctx, m, src, 4, &o, bm, 8, &nbm, NULL), ATTN_OK);
        /* only finished hypotheses compare by their full probability */
        if (ng < 6 && nbm < 6) {
            double lg = seq_logprob(ctx, m, src, 4, g, ng), lb = seq_logprob(ctx, m, src, 4, bm, nbm);
            T_LE(lg, lb + 1e-5);
            wins += lb > lg + 1e-6;
        }
        attn_transformer_free(m);
    }
    if (t_verbose) printf("  beam 4 strictly better than greedy on %d of 6 models\n", wins);
}

T_TEST(checkpointing_same_gradients_less_memory)
{
    attn_ctx *ctx = t_ctx(2);
    attn_transformer_config c = small_config(ATTN_TRANSFORMER_ARCH_ENCDEC);
    c.n_enc_layers = c.n_dec_layers = 4;
    attn_transformer *m = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 3, &m), ATTN_OK);
    int32_t src[2 * 10], tin[2 * 8], tout[2 * 8];
    for (int i = 0; i < 20; i++) src[i] = 3 + i % 10;
    for (int i = 0; i < 16; i++) tin[i] = tout[i] = 3 + (i * 7) % 10;
    int64_t lens[2] = {10, 6};
    attn_nn_batch b = {2, 10, 8, src, tin, tout, lens, NULL, 0, NULL, NULL};
    size_t bytes[2];
    double loss[2];
    float *g0 = NULL;
    int64_t n = attn_transformer_param_count(m);
    for (int ck = 0; ck < 2; ck++) {
        attn_nn_train_opts o = {1, 77, 0.1, ck};
        attn_transformer_zero_grad(m);
        T_EQ_STATUS(attn_transformer_step(ctx, m, &b, &o, 1, &loss[ck], NULL, &bytes[ck]), ATTN_OK);
        attn_nn_param p;
        T_EQ_STATUS(attn_transformer_tensor(m, 0, &p), ATTN_OK);
        if (ck == 0) {
            g0 = malloc((size_t)n * sizeof(float));
            memcpy(g0, p.grad, (size_t)n * sizeof(float));
        } else {
            T_CHECK(memcmp(g0, p.grad, (size_t)n * sizeof(float)) == 0);
        }
    }
    T_CHECK(loss[0] == loss[1]);
    T_LE((double)bytes[1], 0.6 * (double)bytes[0]);
    if (t_verbose)
        printf("  activations: %zu bytes without, %zu with checkpointing\n", bytes[0], bytes[1]);
    free(g0);
    attn_transformer_free(m);
}
