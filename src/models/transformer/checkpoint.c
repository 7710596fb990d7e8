/* checkpoint.c - model checkpoints as safetensors files: every parameter
 * under its torch-style name, optionally the AdamW moments
 * ("optim.m.<name>", "optim.v.<name>"), and in __metadata__ the format tag,
 * the config as JSON and the optimiser step. Loading treats the file as
 * untrusted: the config is parsed strictly and validated, and every tensor
 * must be present with exactly the shape the config implies, with nothing
 * extra. See docs/checkpoint.md. */
#include "models/ckpt_io.h"
#include "transformer_internal.h"

#include <stdio.h>
#include <string.h>

#define FORMAT_TAG "attn-checkpoint-1"

attn_status attn_transformer_save(const attn_transformer *m, const char *path, int with_optim,
                               const char *const *meta_keys, const char *const *meta_values,
                               int64_t n_meta)
{
    if (!m || !path) return attn_fail(ATTN_NULL_ARG, "attn_transformer_save: 'm' or 'path' is NULL");
    char config[2048];
    attn_status st = attn_transformer_config_to_json(&m->c, config, sizeof config);
    if (st != ATTN_OK) return st;
    attn__nn_paramset ps = attn__transformer_params(m);
    return attn__nn_ckpt_save("attn_transformer_save", path, FORMAT_TAG, config, m->steps, &ps,
                              with_optim, meta_keys, meta_values, n_meta);
}

attn_status attn_transformer_load_safetensors(const attn_safetensors *f, attn_transformer **out)
{
    if (!f || !out) return attn_fail(ATTN_NULL_ARG, "attn_transformer_load_safetensors: 'f' or 'out' is NULL");
    const char *cfg = NULL;
    int64_t steps = 0;
    double file_floats = 0;
    attn_status st = attn__nn_ckpt_header(f, "checkpoint", FORMAT_TAG, &cfg, &steps, &file_floats);
    if (st != ATTN_OK) return st;
    attn_transformer_config c;
    if ((st = attn_transformer_config_from_json(cfg, &c)) != ATTN_OK) return st;
    /* An absurd config must not make us allocate: a lower bound of its
     * parameter count must fit in the file's tensors. */
    double lower = (double)c.vocab * (double)c.d_model +
                   (double)(c.n_enc_layers + c.n_dec_layers) *
                       (2.0 * (double)c.d_model * (double)c.d_model +
                        2.0 * (double)c.d_model * (double)c.d_ff);
    if (!(lower <= file_floats))
        return attn_fail(ATTN_BAD_FILE, "checkpoint: the config needs at least %.0f parameters, "
                         "the file holds %.0f", lower, file_floats);
    attn_transformer *m = NULL;
    if ((st = attn_transformer_create(&c, 0, &m)) != ATTN_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", attn_last_error());
        return attn_fail(st == ATTN_NO_MEMORY ? st : ATTN_BAD_FILE, "checkpoint: config: %s", why);
    }
    attn__nn_paramset ps = attn__transformer_params(m);
    if ((st = attn__nn_ckpt_read(f, "checkpoint", &ps)) != ATTN_OK) {
        attn_transformer_free(m);
        return st;
    }
    m->steps = steps;
    *out = m;
    return ATTN_OK;
}

attn_status attn_transformer_load(const char *path, attn_transformer **out)
{
    if (!path || !out) return attn_fail(ATTN_NULL_ARG, "attn_transformer_load: 'path' or 'out' is NULL");
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load(path, &f);
    if (st != ATTN_OK) return st;
    st = attn_transformer_load_safetensors(f, out);
    attn_safetensors_free(f);
    return st;
}
