/* model_util.c - helpers of the model tests (model_util.h). */
#include "model_util.h"

#include <string.h>

attn_transformer_config t_tiny_transformer(void)
{
    attn_transformer_config c = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    c.vocab = 99;
    c.d_model = 16;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.d_ff = 16;
    c.n_enc_layers = c.n_dec_layers = 1;
    c.max_len = 64;
    return c;
}

bool t_same_transformer_params(const attn_transformer *a, const attn_transformer *b)
{
    attn_nn_param pa, pb;
    if (attn_transformer_param_count(a) != attn_transformer_param_count(b)) return false;
    attn_transformer_tensor(a, 0, &pa);
    attn_transformer_tensor(b, 0, &pb);
    return memcmp(pa.value, pb.value, (size_t)attn_transformer_param_count(a) * sizeof(float)) == 0;
}

bool t_same_seq2seq_params(const attn_seq2seq *a, const attn_seq2seq *b)
{
    if (attn_seq2seq_param_count(a) != attn_seq2seq_param_count(b)) return false;
    for (int64_t t = 0; t < attn_seq2seq_n_tensors(a); t++) {
        attn_nn_param p, q;
        attn_seq2seq_tensor(a, t, &p);
        attn_seq2seq_tensor(b, t, &q);
        if (strcmp(p.name, q.name) != 0 ||
            memcmp(p.value, q.value, (size_t)p.numel * sizeof(float)) != 0)
            return false;
    }
    return true;
}
