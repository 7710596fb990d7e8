/* llama_file.h - tiny Llama models as GGUF files for the tests
 * (llama_file.c): random quantized weights of a given shape, a byte-level
 * tokenizer (the 256 GPT-2 byte characters, <|im_start|>, <|im_end|>), a
 * ChatML template, and knobs that break one thing at a time for the loader's
 * catalogue of corrupt files. */
#ifndef ATTN_TEST_LLAMA_FILE_H
#define ATTN_TEST_LLAMA_FILE_H

#include "gguf_write.h"

#include <stdint.h>

enum { T_LLAMA_BYTE_TOKENS = 256, T_LLAMA_IM_START = 256, T_LLAMA_IM_END = 257, T_LLAMA_VOCAB = 258 };

typedef struct t_llama_spec {
    const char *arch;                      /* general.architecture */
    int64_t n_layers, d, heads, kv_heads, ff, ctx;
    double theta, eps;
    int64_t rope_dims;                     /* llama.rope.dimension_count; -1: absent */
    int64_t vocab_key;                     /* llama.vocab_size; -1: absent */
    const char *rope_scaling;              /* llama.rope.scaling.type; NULL: absent */
    const char *chat_template;             /* NULL: absent */
    const char *omit_key, *omit_tensor;    /* left out; NULL: none */
    const char *extra_tensor;              /* an extra F32 [d] tensor; NULL: none */
    const char *grow_tensor;               /* written with one row more (a vector: 32 more) */
    const char *retype_tensor;             /* written as F16 */
    uint32_t mat_type, embd_type;          /* GGUF types of the matrices (Q4_1 3, Q8_0 8) */
    int untied;                            /* 1: an output.weight of its own */
    int extra_tokens;                      /* tokens beyond the embedding's rows */
    uint64_t seed;
} t_llama_spec;

/* 2 layers, d 64, 4 heads (D 16), 2 kv heads, d_ff 96, context 700, theta
 * 10000, eps 1e-5, Q4_1 matrices, a Q8_0 embedding (tied), the ChatML
 * template of SmolLM2 with the system line "You are a test model". */
t_llama_spec t_llama_spec_default(void);

/* The file image of spec into w (appended). */
void t_llama_image(const t_llama_spec *spec, t_gguf *w);

/* Writes the image of spec to path (t_path); 0 on success. */
int t_llama_write(const t_llama_spec *spec, const char *path);

#endif /* ATTN_TEST_LLAMA_FILE_H */
