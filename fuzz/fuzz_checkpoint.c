/* fuzz_checkpoint.c - libFuzzer target for model checkpoints
 * (src/models/transformer/checkpoint.c on top of the safetensors reader). Any input must
 * load or fail with ATTN_BAD_FILE (or ATTN_NO_MEMORY); a loaded model must
 * be usable: its config is valid and one forward step runs. */
#include <attn/transformer.h>

#include <stdlib.h>

static void check(int ok)
{
    if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    attn_safetensors *f = NULL;
    attn_transformer *m = NULL;
    attn_status st = attn_safetensors_load_memory(data, size, &f);
    if (st == ATTN_OK) st = attn_transformer_load_safetensors(f, &m);
    attn_safetensors_free(f);
    if (st != ATTN_OK) {
        check((st == ATTN_BAD_FILE || st == ATTN_NO_MEMORY) && m == NULL);
        return 0;
    }
    /* a forward step on a one-token batch */
    static attn_ctx *ctx;
    if (!ctx) check(attn_ctx_create(1, &ctx) == ATTN_OK);
    const attn_transformer_config *c = attn_transformer_get_config(m);
    int32_t tok = 0, lab = 0;
    int64_t len = 1;
    attn_nn_batch b = {1, c->arch == ATTN_TRANSFORMER_ARCH_ENCDEC ? 1 : 0, 1, &tok, &tok, &lab, &len, NULL, -1, NULL, NULL};
    if (c->arch != ATTN_TRANSFORMER_ARCH_ENCDEC) b.src = NULL;
    attn_nn_train_opts o = {0, 0, 0, 0};
    double loss;
    check(attn_transformer_step(ctx, m, &b, &o, 0, &loss, NULL, NULL) == ATTN_OK);
    attn_transformer_free(m);
    return 0;
}
