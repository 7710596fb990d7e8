/* attn/llama.h - Llama-architecture causal language models on attn
 * (inference), from GGUF files with block-quantized weights, e.g.
 * SmolLM2-135M-Instruct: the model, a KV cache, sampling, generation and
 * the ChatML chat format. Library attn_nn; the file is read by attn/gguf.h,
 * the tokenizer is attn/text.h's byte-level BPE, the matrix products are
 * attn/quant.h's and the attention is attn_sdpa_forward. docs/llm.md.
 *
 * The model, for tokens x[0..n) at positions p (d = d_model, H = n_heads,
 * Hkv = n_kv_heads, D = d_head = d / H):
 *   h = embedding[x]                                   (token_embd.weight)
 *   each layer:
 *     a = RMSNorm(h) * attn_norm                       (eps rms_eps)
 *     q = a Wq^T [n, H, D], k = a Wk^T, v = a Wv^T [n, Hkv, D]
 *     q, k rotated (RoPE, theta rope_theta) in ADJACENT pairs
 *       (x[2i], x[2i+1]) by the angle p * theta^(-2i/D): the layout of a
 *       GGUF file, whose Q and K rows llama.cpp's converter permuted from
 *       Hugging Face's rotate-half order (pairs (x[i], x[i + D/2]))
 *     h += softmax(q k^T / sqrt(D), causal over every cached token) v Wo^T
 *       (grouped-query: query head j reads kv head j / (H / Hkv))
 *     f = RMSNorm(h) * ffn_norm
 *     h += (silu(f Wgate^T) * (f Wup^T)) Wdown^T
 *   logits = (RMSNorm(h) * output_norm) Wout^T, Wout = output.weight, or the
 *   embedding when the file has none (tied embeddings).
 * RMSNorm(x) = x / sqrt(mean(x^2) + eps). The weight matrices stay in the
 * file's quantization (Q4_1 or Q8_0) and are dequantized block by block
 * inside the products (attn/quant.h); norms are float32.
 *
 * Files are untrusted: general.architecture must be "llama"; the llama.*
 * hyper-parameters must be present, in range and consistent (d_model a
 * multiple of n_heads, n_heads of n_kv_heads, d_head even, the rotary
 * dimension equal to d_head, no rope scaling, every matrix's inner size a
 * multiple of 32); the file must hold exactly the tensors of that
 * architecture (an extra tensor such as a bias changes the model and is
 * refused), each with its shape and a supported type (matrices Q4_1 or
 * Q8_0, norms F32); the tokenizer must load (attn_bpe_load_gguf) with as
 * many tokens as the embedding has rows. Anything else is ATTN_BAD_FILE
 * naming the key or tensor.
 *
 * Errors: attn/attn.h's statuses, the detail in attn_last_error(); on error
 * nothing is written and nothing leaks (a session that fails in the middle
 * of attn_llama_forward keeps the tokens it had before the call).
 */
#ifndef ATTN_LLAMA_H
#define ATTN_LLAMA_H

#include <attn/attn.h>
#include <attn/text.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_llama_config {
    int64_t n_layers;   /* [1, 1024] */
    int64_t d_model;    /* [32, 65536], a multiple of 32 */
    int64_t n_heads;    /* d_model % n_heads == 0 */
    int64_t n_kv_heads; /* n_heads % n_kv_heads == 0 */
    int64_t d_head;     /* d_model / n_heads, even */
    int64_t d_ff;       /* [32, 2^20], a multiple of 32 */
    int64_t n_vocab;    /* rows of the embedding = tokens of the tokenizer */
    int64_t n_ctx;      /* the context it was trained for, [1, 2^20] */
    double rope_theta;  /* > 0 */
    double rms_eps;     /* (0, 1) */
    int tied;           /* 1: the output head is the embedding */
} attn_llama_config;

typedef struct attn_llama attn_llama;

/* Loads and validates a GGUF file (mapped, not copied) and builds its
 * tokenizer. ATTN_IO if it cannot be read. */
ATTN_API attn_status attn_llama_load(const char *path, attn_llama **out);
ATTN_API void attn_llama_free(attn_llama *m); /* accepts NULL */
ATTN_API const attn_llama_config *attn_llama_get_config(const attn_llama *m);
/* The tokenizer of the file (owned by m). */
ATTN_API const attn_bpe *attn_llama_tokenizer(const attn_llama *m);
/* The ids generation stops at (<|im_end|> and the file's eos; -1 where a
 * vocabulary lacks one). */
ATTN_API int32_t attn_llama_eos_id(const attn_llama *m);
ATTN_API int32_t attn_llama_im_end_id(const attn_llama *m);

/* ---- chat ----------------------------------------------------------------------- */

typedef struct attn_llama_message {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content; /* UTF-8 */
} attn_llama_message;

/* The default system line of the file's chat template (owned by m), or NULL
 * if the template has none. */
ATTN_API const char *attn_llama_default_system(const attn_llama *m);

/* Writes the ChatML text of the messages to buf [cap] (*n bytes, no NUL;
 * buf NULL and cap 0: size query), as the file's tokenizer.chat_template
 * describes it:
 *   [<|im_start|>system\n DEFAULT <|im_end|>\n]   (if the first message is
 *        not "system", the template has a default and continuation is 0)
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n          (each message)
 *   [<|im_start|>assistant\n]                       (add_generation_prompt)
 * continuation != 0 formats messages that continue a conversation already
 * in a session: no default system line, and the text starts with
 * "<|im_end|>\n" to close the assistant turn that generation left open
 * (generation stops before <|im_end|>, which is not fed to the cache).
 * ATTN_UNSUPPORTED if the file has no chat template or one that is not
 * ChatML; ATTN_BAD_PARAM for a role or content that is not valid UTF-8 or
 * holds "<|im_start|>" or "<|im_end|>"; ATTN_BAD_DIM if cap is too small. */
ATTN_API attn_status attn_llama_chat_format(const attn_llama *m, const attn_llama_message *msgs,
                                            int64_t n_msgs, int add_generation_prompt,
                                            int continuation, char *buf, size_t cap, size_t *n);

/* ---- sessions: the KV cache ------------------------------------------------------------ */

typedef struct attn_llama_session attn_llama_session;

typedef struct attn_llama_session_params {
    int64_t n_ctx;          /* most tokens it holds; 0: the model's n_ctx */
    attn_dtype cache_dtype; /* ATTN_DTYPE_F32, BF16 or F16 (half the bytes per token); 0: F32 */
} attn_llama_session_params;

ATTN_API attn_llama_session_params attn_llama_session_params_default(void);

/* A session of model m (which must outlive it): the keys and values of
 * every layer for the tokens fed so far, [layer][kv head][position][D], in
 * memory that grows with the tokens (up to 2 * n_layers * n_ctx *
 * n_kv_heads * d_head elements of cache_dtype). A BF16 or F16 cache holds
 * each key and value rounded once (after RoPE); the attention over it
 * computes in float32 like the F32 cache's. ATTN_BAD_PARAM for n_ctx < 0
 * or above the model's, ATTN_UNSUPPORTED for a cache dtype other than
 * F32, BF16 and F16. */
ATTN_API attn_status attn_llama_session_create(const attn_llama *m,
                                               const attn_llama_session_params *p,
                                               attn_llama_session **out);
ATTN_API void attn_llama_session_free(attn_llama_session *s); /* accepts NULL */
/* Tokens in the cache (-1 for NULL), and the most it can hold. */
ATTN_API int64_t attn_llama_session_length(const attn_llama_session *s);
ATTN_API int64_t attn_llama_session_capacity(const attn_llama_session *s);
/* The ids in the cache, [length] (owned by s; valid until the next call
 * that changes it). */
ATTN_API const int32_t *attn_llama_session_tokens(const attn_llama_session *s);
/* Forgets every token from position length on (0 <= length <= the length). */
ATTN_API attn_status attn_llama_session_rewind(attn_llama_session *s, int64_t length);

/* Feeds ids [n] (n >= 1, each in [0, n_vocab)) after the cached tokens and
 * writes the logits of the last one to logits [n_vocab] (NULL: not
 * computed). The prompt runs through the matrix products as one matrix
 * (in chunks of 512 tokens) and the attention as one call per layer with
 * bottom-right causal alignment over the cache; a single token runs the
 * same call, which takes the core's key-split decode path over a long
 * cache. ATTN_BAD_DIM, with the numbers, if the tokens do not fit in the
 * session's n_ctx. */
ATTN_API attn_status attn_llama_forward(attn_ctx *ctx, attn_llama_session *s, const int32_t *ids,
                                        int64_t n, float *logits);

/* Attention maps: w [n_heads_sel, n, n] = the attention probabilities of
 * layer `layer` for the heads heads [n_heads_sel] (NULL: all n_heads, in
 * order) over the sequence ids [n] (1 <= n <= the model's n_ctx), computed
 * afresh (a forward through layers 0..layer) with attn_sdpa_weights. Row i
 * is query token i; entries j > i are 0. */
ATTN_API attn_status attn_llama_attention(attn_ctx *ctx, const attn_llama *m, const int32_t *ids,
                                          int64_t n, int64_t layer, const int64_t *heads,
                                          int64_t n_heads_sel, float *w);

/* ---- sampling and generation ------------------------------------------------------------ */

/* How the next token is chosen from the logits, in this order (that of
 * Hugging Face's generate):
 *   1. repetition penalty r (off: 0 or 1): every id among the last
 *      repeat_last_n tokens of the history (0: all of them) has its logit
 *      divided by r if positive, multiplied by r if not;
 *   2. temperature T: 0 means greedy (the first largest logit; steps 3-6
 *      are skipped); else logits / T;
 *   3. top-k (off: 0): only the k largest logits stay (ties at the k-th
 *      stay too);
 *   4. softmax; top-p (off: 0 or 1): the most probable tokens whose
 *      cumulative probability first reaches p stay;
 *   5. min-p (off: 0): tokens with probability below min_p times the
 *      largest stay out;
 *   6. the survivors' probabilities renormalised; the token is drawn with
 *      u = the Philox4x32-10 uniform of (seed, step) in [0, 1).
 * The same seed, step, logits and history give the same token on every
 * machine. */
typedef struct attn_llama_sampling {
    double temperature;    /* >= 0 */
    int64_t top_k;         /* >= 0 */
    double top_p;          /* [0, 1] */
    double min_p;          /* [0, 1] */
    double repeat_penalty; /* >= 0 */
    int64_t repeat_last_n; /* >= 0 */
    uint64_t seed;
} attn_llama_sampling;

/* Greedy: temperature 0, every filter off, seed 0. */
ATTN_API attn_llama_sampling attn_llama_sampling_default(void);

/* *out = the token chosen from logits [n_vocab] (not modified) after the
 * history [n_history] for draw number step. ATTN_BAD_PARAM for a sampling
 * value out of range or NaN, a NaN logit, or a history id outside
 * [0, n_vocab); ATTN_NO_MEMORY for the n_vocab-entry scratch. */
ATTN_API attn_status attn_llama_sample(const attn_llama_sampling *p, const float *logits,
                                       int64_t n_vocab, const int32_t *history,
                                       int64_t n_history, uint64_t step, int32_t *out);

/* Called with each generated token and its text: the bytes that complete
 * UTF-8 characters so far (attn_bpe_stream_push: an unfinished character
 * waits for the next token; invalid bytes become U+FFFD). Return nonzero
 * to stop after this token. */
typedef int (*attn_llama_token_fn)(void *user, int32_t id, const char *text, size_t len);

typedef struct attn_llama_generate_params {
    attn_llama_sampling sampling;
    int64_t max_tokens; /* >= 0; 0: until a stop token or the context is full */
} attn_llama_generate_params;

ATTN_API attn_llama_generate_params attn_llama_generate_params_default(void);

/* Feeds prompt [n_prompt] (n_prompt >= 1) to the session, then generates:
 * each token is sampled with the session's tokens as history and step =
 * its position in the session, written to out (if not NULL), passed to
 * on_token (if not NULL) and fed to the session, until a stop token
 * (<|im_end|> or eos: neither written nor fed), max_tokens tokens, a full
 * context, or on_token returning nonzero. *n_out = the tokens generated;
 * *stopped (may be NULL) = 1 if a stop token ended it, else 0. out holds
 * cap ids: cap must be at least max_tokens, or, with max_tokens 0, the room
 * left in the context after the prompt (ATTN_BAD_DIM); out NULL and cap 0
 * keep no ids. ATTN_BAD_DIM, with the numbers, if the prompt does not fit.
 * The ids passed to on_token so far stay in the session if a later step
 * fails. */
ATTN_API attn_status attn_llama_generate(attn_ctx *ctx, attn_llama_session *s,
                                         const int32_t *prompt, int64_t n_prompt,
                                         const attn_llama_generate_params *p,
                                         attn_llama_token_fn on_token, void *user, int32_t *out,
                                         int64_t cap, int64_t *n_out, int *stopped);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_LLAMA_H */
