/* test_probe.c - attn_nn_attn_probe_weights: the probabilities and their
 * gradient dP = dO V^T from a probe, against a naive double computation
 * with grouped-query heads, key lengths and a causal mask; zeros where V is
 * never read; argument errors. */
#include "nn_test.h"

#include <math.h>
#include <string.h>

enum { B = 2, SQ = 3, SK = 5, HQ = 4, HKV = 2, D = 3, DV = 2 };

T_TEST(probe_weights_vs_naive)
{
    uint64_t rng = 3;
    float q[B * SQ * HQ * D], k[B * SK * HKV * D], v[B * SK * HKV * DV], o[B * SQ * HQ * DV];
    float lse[B * HQ * SQ], d_o[B * SQ * HQ * DV], w[B * HQ * SQ * SK], dw[B * HQ * SQ * SK];
    t_fill(&rng, q, B * SQ * HQ * D, -1, 1);
    t_fill(&rng, k, B * SK * HKV * D, -1, 1);
    t_fill(&rng, v, B * SK * HKV * DV, -1, 1);
    t_fill(&rng, d_o, B * SQ * HQ * DV, -1, 1);
    int64_t k_lens[B] = {5, 3};
    attn_sdpa_params p = attn_sdpa_params_default();
    p.k_lens = k_lens;
    p.causal = 1;
    p.align = ATTN_ALIGN_BOTTOM_RIGHT;
    attn_nn_attn_probe pr = {0, 0, 0, attn_tensor_make(q, ATTN_DTYPE_F32, B, SQ, HQ, D),
                             attn_tensor_make(k, ATTN_DTYPE_F32, B, SK, HKV, D),
                             attn_tensor_make(v, ATTN_DTYPE_F32, B, SK, HKV, DV),
                             attn_tensor_make(lse, ATTN_DTYPE_F32, B, HQ, SQ, 1),
                             attn_tensor_make(d_o, ATTN_DTYPE_F32, B, SQ, HQ, DV), &p, NULL, 0};
    attn_tensor to = attn_tensor_make(o, ATTN_DTYPE_F32, B, SQ, HQ, DV);
    T_EQ_STATUS(attn_sdpa_forward(t_ctx(1), &pr.q, &pr.k, &pr.v, &p, &to, &pr.lse), ATTN_OK);
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(1), &pr, w, dw), ATTN_OK);
    double werr = 0, derr = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HQ; h++)
            for (int i = 0; i < SQ; i++) {
                int g = h / (HQ / HKV), last = (int)(i + k_lens[b] - SQ); /* bottom-right causal */
                double s[SK], mx = -INFINITY, z = 0;
                for (int j = 0; j < SK; j++) {
                    s[j] = -INFINITY;
                    if (j >= k_lens[b] || j > last) continue;
                    s[j] = 0;
                    for (int e = 0; e < D; e++)
                        s[j] += (double)q[((b * SQ + i) * HQ + h) * D + e] * k[((b * SK + j) * HKV + g) * D + e];
                    s[j] /= sqrt((double)D);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < SK; j++) z += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                for (int j = 0; j < SK; j++) {
                    double pw = s[j] == -INFINITY ? 0 : exp(s[j] - mx) / z, dp = 0;
                    for (int e = 0; j < k_lens[b] && e < DV; e++)
                        dp += (double)d_o[((b * SQ + i) * HQ + h) * DV + e] * v[((b * SK + j) * HKV + g) * DV + e];
                    int at = ((b * HQ + h) * SQ + i) * SK + j;
                    werr = fmax(werr, fabs(w[at] - pw));
                    derr = fmax(derr, fabs(dw[at] - dp));
                    if (j >= k_lens[b]) T_CHECK(dw[at] == 0 && w[at] == 0);
                }
            }
    T_LE(werr, 1e-6);
    T_LE(derr, 1e-6);
    /* one output alone gives the same values */
    float w2[B * HQ * SQ * SK];
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(2), &pr, w2, NULL), ATTN_OK);
    T_CHECK(memcmp(w, w2, sizeof w) == 0);

    /* errors: nothing written */
    memset(dw, 0x55, sizeof dw);
    attn_nn_attn_probe bad = pr;
    p.dropout_p = 0.1;
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(1), &pr, w, dw), ATTN_UNSUPPORTED);
    p.dropout_p = 0;
    bad.d_o.dim[2] = HQ - 1;
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(1), &bad, w, dw), ATTN_SHAPE_MISMATCH);
    bad = pr;
    bad.v.dtype = ATTN_DTYPE_F64;
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(1), &bad, w, dw), ATTN_BAD_DTYPE);
    T_CHECK(strstr(attn_last_error(), "'p->v'") != NULL);
    bad = pr;
    bad.lse.data = NULL;
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(1), &bad, w, dw), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_nn_attn_probe_weights(t_ctx(1), NULL, w, dw), ATTN_NULL_ARG);
    unsigned char fill[sizeof dw];
    memset(fill, 0x55, sizeof fill);
    T_CHECK(memcmp(dw, fill, sizeof dw) == 0);
}
