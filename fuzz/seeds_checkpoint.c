/* seeds_checkpoint.c - writes the small seeds of fuzz_checkpoint
 * (fuzz/corpus/checkpoint/) with the library's own checkpoint writer, so
 * that they are valid files of the current format. Each is a few KB (the
 * header, one name per tensor, is most of it), to fit the target's -max_len
 * (fuzz/checkpoint.options); between them they load through every branch of
 * the reader: both architectures, with and without the AdamW moments, extra
 * metadata, and the config's enums. `make fuzz-seeds` builds it and
 * writes them again (when the checkpoint format changes). */
#include <attn/transformer.h>

#include <stdio.h>
#include <stdlib.h>

static void save(const char *dir, const char *name, const attn_transformer_config *c, int with_optim)
{
    static const char *const keys[] = {"train.steps", "train.batch", "train.lr"};
    static const char *const values[] = {"200", "8", "0.001"};
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    attn_transformer *m = NULL;
    if (attn_transformer_create(c, 1, &m) != ATTN_OK ||
        attn_transformer_save(m, path, with_optim, keys, values, with_optim ? 3 : 0) != ATTN_OK) {
        fprintf(stderr, "%s: %s\n", path, attn_last_error());
        exit(1);
    }
    attn_transformer_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds_checkpoint DIR\n");
        return 2;
    }
    /* the encoder-decoder: pre-norm LayerNorm, sinusoidal positions, GELU;
     * 65 tokens make nine 8-column panels of the output projection, more
     * than the GEMM deals in one block (the forward step's kernel paths) */
    attn_transformer_config c = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_ENCDEC);
    c.vocab = 65, c.d_model = 8, c.n_heads = 1, c.n_kv_heads = 1, c.d_ff = 8;
    c.n_enc_layers = 1, c.n_dec_layers = 1, c.max_len = 8, c.dropout = c.attn_dropout = 0;
    save(argv[1], "encdec.safetensors", &c, 0);
    /* decoder-only with the AdamW moments: RMSNorm, rotary positions, ReLU,
     * grouped keys and values, tied embeddings */
    c = attn_transformer_config_default(ATTN_TRANSFORMER_ARCH_DECODER);
    c.vocab = 6, c.d_model = 4, c.n_heads = 2, c.n_kv_heads = 1, c.d_ff = 4;
    c.n_enc_layers = 0, c.n_dec_layers = 1, c.max_len = 8, c.dropout = c.attn_dropout = 0;
    c.norm = ATTN_NN_NORM_RMSNORM, c.pos = ATTN_NN_POS_ROPE, c.act = ATTN_NN_ACT_RELU;
    c.tie_embeddings = 1;
    save(argv[1], "decoder_optim.safetensors", &c, 1);
    /* decoder-only, post-norm, learned positions, untied */
    c.n_kv_heads = 2, c.norm = ATTN_NN_NORM_LAYERNORM, c.pos = ATTN_NN_POS_LEARNED;
    c.act = ATTN_NN_ACT_GELU, c.tie_embeddings = 0, c.norm_first = 0;
    save(argv[1], "decoder_post.safetensors", &c, 0);
    return 0;
}
