/* ckpt_io.c - the checkpoint file logic both models share (ckpt_io.h):
 * parameters and AdamW moments to safetensors and back, with the format
 * tag, config and step in __metadata__, every length, dtype, shape and
 * value checked on the way in. */
#include "ckpt_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NAME_CAP = 224 };
static const char *const prefixes[3] = {"", "optim.m.", "optim.v."};

attn_status attn__nn_ckpt_save(const char *fn, const char *path, const char *tag,
                               const char *config, int64_t steps, const attn__nn_paramset *ps,
                               int with_optim, const char *const *meta_keys,
                               const char *const *meta_values, int64_t n_meta)
{
    if (n_meta < 0 || n_meta > 64 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return attn_fail(ATTN_BAD_PARAM, "%s: 'n_meta' must be in [0, 64] with 'meta_keys' and "
                                         "'meta_values'", fn);
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)steps);
    int64_t per = with_optim ? 3 : 1, n = ps->n * per;
    attn_safetensors_entry *e = attn_calloc((size_t)n, sizeof *e);
    char *names = attn_calloc((size_t)n, NAME_CAP);
    const char *keys[67] = {"attn.format", "attn.config", "attn.step"};
    const char *vals[67] = {tag, config, step};
    attn_status st;
    if (!e || !names) {
        st = attn_fail(ATTN_NO_MEMORY, "%s: out of memory", fn);
    } else {
        for (int64_t t = 0; t < ps->n; t++) {
            const attn_nn_param *p = &ps->tensors[t];
            size_t off = (size_t)(p->value - ps->params);
            const float *src[3] = {p->value, ps->adam_m + off, ps->adam_v + off};
            for (int64_t k = 0; k < per; k++) {
                char *nm = names + (size_t)(k * ps->n + t) * NAME_CAP;
                snprintf(nm, NAME_CAP, "%s%s", prefixes[k], p->name);
                e[k * ps->n + t] = (attn_safetensors_entry){nm, ATTN_DTYPE_F32, p->ndim,
                                                   {p->shape[0], p->shape[1]}, src[k]};
            }
        }
        for (int64_t i = 0; i < n_meta; i++) {
            keys[3 + i] = meta_keys[i];
            vals[3 + i] = meta_values[i];
        }
        st = attn_safetensors_save(path, e, n, keys, vals, n_meta + 3);
    }
    attn_release(e);
    attn_release(names);
    return st;
}

attn_status attn__nn_ckpt_header(const attn_safetensors *f, const char *what, const char *tag,
                                 const char **config, int64_t *steps, double *file_floats)
{
    const char *t = attn_safetensors_metadata(f, "attn.format");
    if (!t || strcmp(t, tag) != 0)
        return attn_fail(ATTN_BAD_FILE, "%s: __metadata__ 'attn.format' is not \"%s\" (not this "
                         "kind of attn checkpoint)", what, tag);
    const char *cfg = attn_safetensors_metadata(f, "attn.config"), *step = attn_safetensors_metadata(f, "attn.step");
    if (!cfg || !step)
        return attn_fail(ATTN_BAD_FILE, "%s: __metadata__ lacks 'attn.config' or 'attn.step'", what);
    char *end = NULL;
    long long s = strtoll(step, &end, 10);
    if (end == step || *end != '\0' || s < 0 || s > (1ll << 40))
        return attn_fail(ATTN_BAD_FILE, "%s: 'attn.step' = \"%.30s\" is not a step count", what, step);
    double floats = 0;
    for (int64_t i = 0; i < attn_safetensors_count(f); i++) {
        attn_safetensors_info info;
        if (attn_safetensors_get(f, i, &info) == ATTN_OK) floats += (double)info.bytes / 4.0;
    }
    *config = cfg;
    *steps = s;
    *file_floats = floats;
    return ATTN_OK;
}

attn_status attn__nn_ckpt_read(const attn_safetensors *f, const char *what,
                               const attn__nn_paramset *ps)
{
    char name[NAME_CAP];
    attn_safetensors_info info;
    snprintf(name, sizeof name, "optim.m.%s", ps->tensors[0].name);
    int per = attn_safetensors_find(f, name, &info) == ATTN_OK ? 3 : 1;
    if (attn_safetensors_count(f) != ps->n * per)
        return attn_fail(ATTN_BAD_FILE, "%s: %lld tensors, the config implies %lld", what,
                         (long long)attn_safetensors_count(f), (long long)(ps->n * per));
    for (int64_t t = 0; t < ps->n; t++) {
        const attn_nn_param *p = &ps->tensors[t];
        size_t off = (size_t)(p->value - ps->params);
        float *dst[3] = {p->value, ps->adam_m + off, ps->adam_v + off};
        for (int k = 0; k < per; k++) {
            snprintf(name, sizeof name, "%s%s", prefixes[k], p->name);
            attn_status st = attn_safetensors_find(f, name, &info);
            if (st != ATTN_OK) return st;
            if (info.dtype != ATTN_DTYPE_F32)
                return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' is not F32", what, name);
            if ((st = attn_safetensors_read_f32(f, name, p->ndim, p->shape, dst[k])) != ATTN_OK) return st;
            for (int64_t i = 0; i < p->numel; i++)
                if (!isfinite(dst[k][i]))
                    return attn_fail(ATTN_BAD_FILE, "%s: tensor '%s' holds a non-finite value at "
                                     "%lld", what, name, (long long)i);
        }
    }
    return ATTN_OK;
}
