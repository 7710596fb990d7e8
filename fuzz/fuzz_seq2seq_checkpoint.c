/* fuzz_seq2seq_checkpoint.c - libFuzzer target for the GRU encoder-decoder's
 * checkpoints (src/models/seq2seq/seq2seq.c on ckpt_io.c and the safetensors
 * reader). Any input must load or fail with ATTN_BAD_FILE (or
 * ATTN_NO_MEMORY) and a message, writing nothing; a loaded model must be
 * usable: its config survives the JSON writer and parser unchanged, and a
 * greedy decode of one source token gives ids inside the vocabulary. */
#include <attn/seq2seq.h>

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) abort();
}

/* The config's JSON, parsed back and written again, is the same text. */
static void config_round_trip(const attn_seq2seq_config *c)
{
    char a[512], b[512];
    attn_seq2seq_config back;
    check(attn_seq2seq_config_to_json(c, a, sizeof a) == ATTN_OK);
    check(attn_seq2seq_config_from_json(a, &back) == ATTN_OK);
    check(attn_seq2seq_config_to_json(&back, b, sizeof b) == ATTN_OK && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    attn_safetensors *f = NULL;
    attn_seq2seq *m = (attn_seq2seq *)&f; /* a sentinel: must stay untouched on error */
    attn_status st = attn_safetensors_load_memory(data, size, &f);
    if (st == ATTN_OK) st = attn_seq2seq_load_safetensors(f, &m);
    attn_safetensors_free(f);
    if (st != ATTN_OK) {
        check((st == ATTN_BAD_FILE || st == ATTN_NO_MEMORY) && attn_last_error()[0] != '\0');
        check(m == (attn_seq2seq *)&f);
        return 0;
    }
    const attn_seq2seq_config *c = attn_seq2seq_get_config(m);
    config_round_trip(c);
    check(attn_seq2seq_param_count(m) > 0 && attn_seq2seq_n_tensors(m) > 0);
    static attn_ctx *ctx;
    if (!ctx) check(attn_ctx_create(1, &ctx) == ATTN_OK);
    int32_t src = 0, out[4] = {-1, -1, -1, -1};
    int64_t len = 1, n_out = -1;
    attn_nn_gen_opts o = {0, 1, 4, 1, 0.0};
    check(attn_seq2seq_generate(ctx, m, &src, 1, 1, &len, &o, out, 4, &n_out, NULL) == ATTN_OK);
    check(n_out >= 0 && n_out <= 4);
    for (int64_t i = 0; i < n_out; i++) check(out[i] >= 0 && out[i] < c->vocab);
    attn_seq2seq_free(m);
    return 0;
}
