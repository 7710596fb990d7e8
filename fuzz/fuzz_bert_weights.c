/* fuzz_bert_weights.c - libFuzzer target for the BERT weight checks
 * (src/models/bert/weights.c: tensor names, the "bert." prefix, tolerated
 * extras, dtypes and shapes): each input is written as model.safetensors
 * beside a fixed small config.json in a scratch directory and loaded with
 * attn_bert_load_files. It must load or fail with ATTN_BAD_FILE (or
 * ATTN_NO_MEMORY) and a message, writing nothing; a loaded model has the
 * fixed config and embeds a short sequence. The scratch directory is in
 * $TMPDIR if set, else in /dev/shm (memory) when it is there, else /tmp:
 * rewriting a file on a disk file system (ext4 flushes a file truncated and
 * rewritten when it is closed) took most of the time of an input. */
#include <attn/bert.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* vocab 8, hidden 4, 1 layer, 2 heads, intermediate 8, 8 positions, 2 types */
static const char config_json[] =
    "{\"vocab_size\": 8, \"hidden_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 8, \"max_position_embeddings\": 8, \"type_vocab_size\": 2,"
    " \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}";

static void check(int ok)
{
    if (!ok) abort();
}

static char dir[64], cfg_path[96], wts_path[96];

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    check(f != NULL);
    check(size == 0 || fwrite(data, 1, size, f) == size);
    check(fclose(f) == 0);
}

static void remove_dir(void)
{
    unlink(cfg_path);
    unlink(wts_path);
    rmdir(dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!(tmp && *tmp && strlen(tmp) < 40))
        tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_bert.XXXXXX", tmp);
    check(mkdtemp(dir) != NULL);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(wts_path, sizeof wts_path, "%s/model.safetensors", dir);
    write_file(cfg_path, config_json, sizeof config_json - 1);
    atexit(remove_dir);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (dir[0] == '\0') setup();
    write_file(wts_path, data, size);
    attn_bert *m = (attn_bert *)dir; /* a sentinel: must stay untouched on error */
    attn_status st = attn_bert_load_files(cfg_path, wts_path, NULL, &m);
    if (st != ATTN_OK) {
        check((st == ATTN_BAD_FILE || st == ATTN_NO_MEMORY) && attn_last_error()[0] != '\0');
        check(m == (attn_bert *)dir);
        return 0;
    }
    const attn_bert_config *c = attn_bert_get_config(m);
    check(c->vocab_size == 8 && c->hidden_size == 4 && c->n_layers == 1 && c->n_heads == 2);
    check(c->intermediate_size == 8 && c->max_position == 8 && c->type_vocab_size == 2);
    static attn_ctx *ctx;
    if (!ctx) check(attn_ctx_create(1, &ctx) == ATTN_OK);
    int32_t ids[3] = {1, 7, 2};
    int64_t len = 3;
    float emb[4];
    check(attn_bert_embed(ctx, m, ids, &len, 1, 3, emb) == ATTN_OK);
    attn_bert_free(m);
    return 0;
}
