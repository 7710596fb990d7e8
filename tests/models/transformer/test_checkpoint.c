/* test_checkpoint.c - model checkpoints: round trip
 * (the resume of training is tested with the task in tests/apps), a catalogue of corrupt checkpoints (each with its error), a
 * truncation sweep at every byte, and atomic overwrite. */
#include "../model_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

T_TEST(checkpoint_round_trip)
{
    attn_transformer_config c = t_tiny_transformer();
    attn_transformer *m = NULL, *r = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 5, &m), ATTN_OK);
    const char *p = t_path("rt.safetensors");
    T_EQ_STATUS(attn_transformer_save(m, p, 0, NULL, NULL, 0), ATTN_OK);
    T_EQ_STATUS(attn_transformer_load(p, &r), ATTN_OK);
    if (r) {
        T_CHECK(t_same_transformer_params(m, r));
        T_CHECK(memcmp(attn_transformer_get_config(m), attn_transformer_get_config(r), sizeof c) == 0);
        T_EQ_INT(attn_transformer_steps_taken(r), 0);
    }
    attn_transformer_free(m);
    attn_transformer_free(r);
}

/* Trains 2k steps straight, or k, checkpoint, load, k more: bitwise equal. */
/* ---- corrupt checkpoints ------------------------------------------------------------ */

typedef struct {
    const char *what, *config, *format, *step;
    int drop_tensor, extra_tensor, bad_shape, nan;
    const char *expect; /* substring of the error */
} corruption;

/* Writes m's tensors with one corruption, then loads. */
static void check_corruption(const attn_transformer *m, const corruption *k)
{
    int64_t n = attn_transformer_n_tensors(m);
    attn_safetensors_entry *e = calloc((size_t)n + 1, sizeof *e);
    float *scratch = NULL;
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        attn_nn_param p;
        attn_transformer_tensor(m, i, &p);
        if (k->drop_tensor && i == 3) continue;
        attn_safetensors_entry *x = &e[w++];
        x->name = p.name;
        x->dtype = ATTN_DTYPE_F32;
        x->ndim = p.ndim;
        x->shape[0] = p.shape[0];
        x->shape[1] = p.shape[1];
        x->data = p.value;
        if (k->bad_shape && i == 2) {
            x->ndim = 2;
            x->shape[0] = p.numel / (p.ndim > 1 ? p.shape[1] : 1);
            x->shape[1] = p.ndim > 1 ? p.shape[1] : 1;
            if (p.ndim == 1) x->shape[0] = 1, x->shape[1] = p.numel;
        }
        if (k->nan && i == 1) {
            scratch = malloc((size_t)p.numel * sizeof(float));
            memcpy(scratch, p.value, (size_t)p.numel * sizeof(float));
            scratch[p.numel / 2] = NAN;
            x->data = scratch;
        }
    }
    static float extra[4];
    if (k->extra_tensor) e[w++] = (attn_safetensors_entry){"surprise.weight", ATTN_DTYPE_F32, 1, {4}, extra};
    char cfg[2048];
    attn_transformer_config_to_json(attn_transformer_get_config(m), cfg, sizeof cfg);
    const char *keys[3] = {"attn.format", "attn.config", "attn.step"};
    const char *vals[3] = {k->format ? k->format : "attn-checkpoint-1", k->config ? k->config : cfg,
                           k->step ? k->step : "0"};
    const char *p = t_path("corrupt.safetensors");
    T_EQ_STATUS(attn_safetensors_save(p, e, w, keys, vals, 3), ATTN_OK);
    attn_transformer *r = NULL;
    attn_status st = attn_transformer_load(p, &r);
    T_EQ_STATUS(st, ATTN_BAD_FILE);
    T_CHECK(r == NULL);
    if (strstr(attn_last_error(), k->expect) == NULL)
        t_fail(__FILE__, __LINE__, "%s: message '%s' lacks '%s'", k->what, attn_last_error(), k->expect);
    else if (t_verbose)
        printf("  %-28s -> %s\n", k->what, attn_last_error());
    free(scratch);
    free(e);
}

T_TEST(checkpoint_corrupt_catalogue)
{
    attn_transformer_config c = t_tiny_transformer();
    attn_transformer *m = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 5, &m), ATTN_OK);
    static const char huge[] =
        "{\"arch\": \"encdec\", \"vocab\": 16000000, \"d_model\": 4096, \"n_heads\": 8, "
        "\"n_kv_heads\": 8, \"d_ff\": 16384, \"n_enc_layers\": 48, \"n_dec_layers\": 48, "
        "\"max_len\": 4096, \"norm_first\": 1, \"tie_embeddings\": 0, \"norm\": \"layernorm\", "
        "\"pos\": \"sinusoidal\", \"act\": \"gelu\", \"norm_eps\": 1e-05, \"dropout\": 0.1, "
        "\"attn_dropout\": 0.1, \"rope_theta\": 10000}";
    const corruption cat[] = {
        {"not an attn checkpoint", NULL, "something-else", NULL, 0, 0, 0, 0, "attn.format"},
        {"config not JSON", "{\"arch\": ", NULL, NULL, 0, 0, 0, 0, "config"},
        {"config unknown field", "{\"archh\": 1}", NULL, NULL, 0, 0, 0, 0, "unknown field"},
        {"config missing field", "{\"arch\": \"encdec\"}", NULL, NULL, 0, 0, 0, 0, "missing field"},
        {"config wrong type", "{\"arch\": 1}", NULL, NULL, 0, 0, 0, 0, "is a number"},
        {"config implausible size", huge, NULL, NULL, 0, 0, 0, 0, "at least"},
        {"bad step", NULL, NULL, "-3", 0, 0, 0, 0, "attn.step"},
        {"missing tensor", NULL, NULL, NULL, 1, 0, 0, 0, "tensors"},
        {"extra tensor", NULL, NULL, NULL, 0, 1, 0, 0, "tensors"},
        {"wrong shape", NULL, NULL, NULL, 0, 0, 1, 0, "shape"},
        {"non-finite value", NULL, NULL, NULL, 0, 0, 0, 1, "non-finite"},
    };
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++) check_corruption(m, &cat[i]);
    /* a config with a bad value: d_model not divisible by n_heads */
    char cfg[2048], *at;
    attn_transformer_config_to_json(&c, cfg, sizeof cfg);
    at = strstr(cfg, "\"n_heads\": 2");
    T_CHECK(at != NULL);
    if (at) {
        at[11] = '3';
        corruption bad = {"config inconsistent", cfg, NULL, NULL, 0, 0, 0, 0, "n_heads"};
        check_corruption(m, &bad);
    }
    attn_transformer_free(m);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

T_TEST(checkpoint_truncation_sweep)
{
    attn_transformer_config c = t_tiny_transformer();
    c.vocab = 8;
    c.max_len = 4;
    c.d_model = c.d_ff = 4;
    attn_transformer *m = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 5, &m), ATTN_OK);
    const char *p = t_path("trunc.safetensors");
    T_EQ_STATUS(attn_transformer_save(m, p, 1, NULL, NULL, 0), ATTN_OK);
    size_t n = 0;
    unsigned char *img = slurp(p, &n);
    T_CHECK(img != NULL && n > 100);
    long bad = 0;
    for (size_t len = 0; img && len < n; len++) {
        attn_safetensors *f = NULL;
        attn_transformer *r = NULL;
        attn_status st = attn_safetensors_load_memory(img, len, &f);
        if (st == ATTN_OK) st = attn_transformer_load_safetensors(f, &r);
        attn_safetensors_free(f);
        bad += st != ATTN_BAD_FILE || r != NULL;
        attn_transformer_free(r);
    }
    T_EQ_INT(bad, 0);
    /* the whole image loads, with the optimiser state */
    attn_safetensors *f = NULL;
    attn_transformer *r = NULL;
    T_EQ_STATUS(attn_safetensors_load_memory(img, n, &f), ATTN_OK);
    T_EQ_STATUS(attn_transformer_load_safetensors(f, &r), ATTN_OK);
    if (r) T_CHECK(t_same_transformer_params(m, r));
    if (t_verbose) printf("  %zu truncated prefixes of a %zu-byte checkpoint rejected\n", n, n);
    attn_safetensors_free(f);
    attn_transformer_free(r);
    attn_transformer_free(m);
    free(img);
}

T_TEST(checkpoint_overwrite_is_atomic)
{
    attn_transformer_config c = t_tiny_transformer();
    attn_transformer *m = NULL, *r = NULL;
    T_EQ_STATUS(attn_transformer_create(&c, 5, &m), ATTN_OK);
    const char *p = t_path("atomic.safetensors");
    T_EQ_STATUS(attn_transformer_save(m, p, 0, NULL, NULL, 0), ATTN_OK);
    /* a save that fails (metadata key not UTF-8) leaves the old file */
    const char *keys[1] = {"\xff\xfe"}, *vals[1] = {"x"};
    T_CHECK(attn_transformer_save(m, p, 0, keys, vals, 1) != ATTN_OK);
    T_EQ_STATUS(attn_transformer_load(p, &r), ATTN_OK);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "rb");
    T_CHECK(f == NULL);
    if (f) fclose(f);
    attn_transformer_free(r);
    attn_transformer_free(m);
}
