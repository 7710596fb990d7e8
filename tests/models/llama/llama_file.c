/* llama_file.c - tiny Llama GGUF files for the tests (llama_file.h): the
 * metadata of a llama model with a byte-level tokenizer and a ChatML
 * template, then random weights, one tensor after another at offsets
 * aligned to 32. */
#include "llama_file.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { G_UINT32 = 4, G_INT32 = 5, G_FLOAT32 = 6, G_STRING = 8, G_ARRAY = 9 };
enum { T_F32 = 0, T_F16 = 1, T_Q4_1 = 3, T_Q8_0 = 8 };

static const char *const SMOLLM_TEMPLATE =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a test model<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

t_llama_spec t_llama_spec_default(void)
{
    t_llama_spec s;
    memset(&s, 0, sizeof s);
    s.arch = "llama";
    s.n_layers = 2;
    s.d = 64;
    s.heads = 4;
    s.kv_heads = 2;
    s.ff = 96;
    s.ctx = 700;
    s.theta = 10000.0;
    s.eps = 1e-5;
    s.rope_dims = 16;
    s.vocab_key = T_LLAMA_VOCAB;
    s.chat_template = SMOLLM_TEMPLATE;
    s.mat_type = T_Q4_1;
    s.embd_type = T_Q8_0;
    s.seed = 2024;
    return s;
}

/* GPT-2's character for byte b: printable Latin-1 bytes stand for
 * themselves, the others for U+0100.. in byte order; as UTF-8 into out. */
static void byte_token(int b, char *out)
{
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = b;
    if (!printable) {
        int k = 0;
        for (int x = 0; x < b; x++)
            k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255));
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

/* ---- the tensors ------------------------------------------------------------------ */

typedef struct {
    char name[48];
    uint32_t type;
    uint32_t n_dims;
    uint64_t dims[2];
} tinfo;

enum { MAX_T = 64 };

static void add(tinfo *t, int *n, const char *name, uint32_t type, uint64_t d0, uint64_t d1)
{
    tinfo *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->type = type;
    x->n_dims = d1 ? 2 : 1;
    x->dims[0] = d0;
    x->dims[1] = d1;
}

static int tensor_list(const t_llama_spec *s, tinfo *t)
{
    int n = 0;
    uint64_t d = (uint64_t)s->d, hd = (uint64_t)(s->d / s->heads), kv = hd * (uint64_t)s->kv_heads;
    add(t, &n, "token_embd.weight", s->embd_type, d, T_LLAMA_VOCAB);
    for (int64_t l = 0; l < s->n_layers; l++) {
        char p[48];
        const struct {
            const char *suffix;
            uint64_t d0, d1;
        } L[] = {{"attn_norm.weight", d, 0},       {"attn_q.weight", d, d},        {"attn_k.weight", d, kv},
                 {"attn_v.weight", d, kv},         {"attn_output.weight", d, d},   {"ffn_norm.weight", d, 0},
                 {"ffn_gate.weight", d, (uint64_t)s->ff}, {"ffn_up.weight", d, (uint64_t)s->ff},
                 {"ffn_down.weight", (uint64_t)s->ff, d}};
        for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
            snprintf(p, sizeof p, "blk.%lld.%s", (long long)l, L[i].suffix);
            add(t, &n, p, L[i].d1 ? s->mat_type : T_F32, L[i].d0, L[i].d1);
        }
    }
    add(t, &n, "output_norm.weight", T_F32, d, 0);
    if (s->untied) add(t, &n, "output.weight", s->mat_type, d, T_LLAMA_VOCAB);
    if (s->extra_tensor) add(t, &n, s->extra_tensor, T_F32, d, 0);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (s->omit_tensor && strcmp(t[i].name, s->omit_tensor) == 0) continue;
        if (s->grow_tensor && strcmp(t[i].name, s->grow_tensor) == 0) {
            if (t[i].n_dims == 2) t[i].dims[1] += 1;
            else t[i].dims[0] += 32;
        }
        if (s->retype_tensor && strcmp(t[i].name, s->retype_tensor) == 0) t[i].type = T_F16;
        t[kept++] = t[i];
    }
    return kept;
}

static uint64_t tensor_bytes(const tinfo *t)
{
    uint64_t rows = t->n_dims == 2 ? t->dims[1] : 1, blocks = t->dims[0] / 32;
    switch (t->type) {
    case T_Q4_1: return rows * blocks * 20;
    case T_Q8_0: return rows * blocks * 34;
    case T_F16: return rows * t->dims[0] * 2;
    default: return rows * t->dims[0] * 4;
    }
}

static void tensor_data(const tinfo *t, uint64_t *rng, t_gguf *w)
{
    uint64_t bytes = tensor_bytes(t);
    unsigned char *b = malloc(bytes + 1);
    if (t->type == T_Q4_1 || t->type == T_Q8_0) {
        t_fill_quant(rng, t->type == T_Q4_1 ? ATTN_QUANT_Q4_1 : ATTN_QUANT_Q8_0, b, (int64_t)(bytes / (t->type == T_Q4_1 ? 20 : 34)));
    } else if (t->type == T_F32) { /* norm weights around 1 */
        for (uint64_t i = 0; i < bytes / 4; i++) {
            float v = (float)t_rand_uniform(rng, 0.5, 1.5);
            memcpy(b + 4 * i, &v, 4);
        }
    } else {
        for (uint64_t i = 0; i < bytes; i++) b[i] = (unsigned char)t_rand_int(rng, 0, 255);
    }
    t_gguf_bytes(w, b, bytes);
    free(b);
}

/* ---- the metadata --------------------------------------------------------------------- */

typedef struct {
    t_gguf *w;
    const char *omit;
    uint64_t count;
    int write; /* 0: count only */
} kvw;

static int want(kvw *k, const char *key)
{
    if (k->omit && strcmp(key, k->omit) == 0) return 0;
    k->count++;
    return k->write;
}

static void kv_u32(kvw *k, const char *key, uint32_t v)
{
    if (!want(k, key)) return;
    t_gguf_key(k->w, key, G_UINT32);
    t_gguf_u32(k->w, v);
}

static void kv_f32(kvw *k, const char *key, double v)
{
    if (!want(k, key)) return;
    t_gguf_key(k->w, key, G_FLOAT32);
    t_gguf_f32(k->w, (float)v);
}

static void kv_str(kvw *k, const char *key, const char *v)
{
    if (!want(k, key)) return;
    t_gguf_key(k->w, key, G_STRING);
    t_gguf_str(k->w, v);
}

static void kv_tokens(kvw *k, const t_llama_spec *s)
{
    int n = T_LLAMA_VOCAB + s->extra_tokens;
    if (want(k, "tokenizer.ggml.tokens")) {
        t_gguf_key(k->w, "tokenizer.ggml.tokens", G_ARRAY);
        t_gguf_array(k->w, G_STRING, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            char tok[32];
            if (i < T_LLAMA_BYTE_TOKENS) byte_token(i, tok);
            else if (i == T_LLAMA_IM_START) snprintf(tok, sizeof tok, "<|im_start|>");
            else if (i == T_LLAMA_IM_END) snprintf(tok, sizeof tok, "<|im_end|>");
            else snprintf(tok, sizeof tok, "<extra_%d>", i);
            t_gguf_str(k->w, tok);
        }
    }
    if (want(k, "tokenizer.ggml.token_type")) {
        t_gguf_key(k->w, "tokenizer.ggml.token_type", G_ARRAY);
        t_gguf_array(k->w, G_INT32, (uint64_t)n);
        for (int i = 0; i < n; i++) t_gguf_u32(k->w, i >= T_LLAMA_BYTE_TOKENS ? 3u : 1u);
    }
    if (want(k, "tokenizer.ggml.merges")) {
        t_gguf_key(k->w, "tokenizer.ggml.merges", G_ARRAY);
        t_gguf_array(k->w, G_STRING, 0);
    }
}

static void metadata(kvw *k, const t_llama_spec *s)
{
    kv_str(k, "general.architecture", s->arch);
    kv_u32(k, "llama.block_count", (uint32_t)s->n_layers);
    kv_u32(k, "llama.context_length", (uint32_t)s->ctx);
    kv_u32(k, "llama.embedding_length", (uint32_t)s->d);
    kv_u32(k, "llama.feed_forward_length", (uint32_t)s->ff);
    kv_u32(k, "llama.attention.head_count", (uint32_t)s->heads);
    kv_u32(k, "llama.attention.head_count_kv", (uint32_t)s->kv_heads);
    kv_f32(k, "llama.rope.freq_base", s->theta);
    kv_f32(k, "llama.attention.layer_norm_rms_epsilon", s->eps);
    if (s->rope_dims >= 0) kv_u32(k, "llama.rope.dimension_count", (uint32_t)s->rope_dims);
    if (s->vocab_key >= 0) kv_u32(k, "llama.vocab_size", (uint32_t)s->vocab_key);
    if (s->rope_scaling) kv_str(k, "llama.rope.scaling.type", s->rope_scaling);
    kv_str(k, "tokenizer.ggml.model", "gpt2");
    kv_str(k, "tokenizer.ggml.pre", "gpt-2");
    kv_tokens(k, s);
    kv_u32(k, "tokenizer.ggml.eos_token_id", T_LLAMA_IM_END);
    if (s->chat_template) kv_str(k, "tokenizer.chat_template", s->chat_template);
}

void t_llama_image(const t_llama_spec *s, t_gguf *w)
{
    tinfo t[MAX_T];
    int n = tensor_list(s, t);
    kvw k = {w, s->omit_key, 0, 0};
    metadata(&k, s);
    t_gguf_header(w, 3, (uint64_t)n, k.count);
    k.write = 1;
    metadata(&k, s);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        t_gguf_tensor(w, t[i].name, t[i].n_dims, t[i].dims, t[i].type, off);
        off += (tensor_bytes(&t[i]) + 31) / 32 * 32;
    }
    t_gguf_pad(w, 32);
    uint64_t rng = s->seed;
    for (int i = 0; i < n; i++) {
        tensor_data(&t[i], &rng, w);
        t_gguf_pad(w, 32);
    }
}

int t_llama_write(const t_llama_spec *spec, const char *path)
{
    t_gguf w = {0};
    t_llama_image(spec, &w);
    FILE *f = fopen(path, "wb");
    int bad = f == NULL || fwrite(w.b, 1, w.n, f) != w.n;
    if (f != NULL) bad |= fclose(f) != 0;
    t_gguf_free(&w);
    return bad;
}
