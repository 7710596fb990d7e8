/* checkpoint.c - GRU encoder-decoder checkpoints: safetensors with every
 * parameter by name, optionally the AdamW moments, and the format tag,
 * config JSON and step in __metadata__ (models/ckpt_io.c); loading treats
 * the file as untrusted. */
#include "models/ckpt_io.h"
#include "seq2seq_internal.h"

#define FORMAT_TAG "attn-rnn-checkpoint-1"

attn_status attn_seq2seq_save(const attn_seq2seq *m, const char *path, int with_optim,
                                const char *const *meta_keys, const char *const *meta_values,
                                int64_t n_meta)
{
    ATTN__NOT_NULL(__func__, m);
    ATTN__NOT_NULL(__func__, path);
    char config[512];
    attn_status st = attn_seq2seq_config_to_json(&m->c, config, sizeof config);
    if (st != ATTN_OK) return st;
    attn__nn_paramset ps = attn__s2s_params(m);
    return attn__nn_ckpt_save(__func__, path, FORMAT_TAG, config, m->steps, &ps, with_optim,
                              meta_keys, meta_values, n_meta);
}

attn_status attn_seq2seq_load_safetensors(const attn_safetensors *f, attn_seq2seq **out)
{
    ATTN__NOT_NULL(__func__, f);
    ATTN__NOT_NULL(__func__, out);
    const char *cfg = NULL;
    int64_t steps = 0;
    double floats = 0;
    attn_seq2seq_config c;
    attn_status st = attn__nn_ckpt_header(f, "rnn checkpoint", FORMAT_TAG, &cfg, &steps, &floats);
    if (st == ATTN_OK) st = attn_seq2seq_config_from_json(cfg, &c);
    if (st != ATTN_OK) return st;
    int64_t need = attn__s2s_count_params(&c);
    if ((double)need > floats) /* no allocation for a config the file cannot hold */
        return attn_fail(ATTN_BAD_FILE, "rnn checkpoint: the config needs %lld parameters, the file "
                         "holds %.0f floats", (long long)need, floats);
    attn_seq2seq *m = NULL;
    if ((st = attn_seq2seq_create(&c, 0, &m)) != ATTN_OK) return st;
    attn__nn_paramset ps = attn__s2s_params(m);
    if ((st = attn__nn_ckpt_read(f, "rnn checkpoint", &ps)) != ATTN_OK) {
        attn_seq2seq_free(m);
        return st;
    }
    m->steps = steps;
    *out = m;
    return ATTN_OK;
}

attn_status attn_seq2seq_load(const char *path, attn_seq2seq **out)
{
    ATTN__NOT_NULL(__func__, path);
    ATTN__NOT_NULL(__func__, out);
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(path, &f);
    if (st != ATTN_OK) return st;
    st = attn_seq2seq_load_safetensors(f, out);
    attn_safetensors_free(f);
    return st;
}
