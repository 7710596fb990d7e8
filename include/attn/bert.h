/* attn/bert.h - BERT-family encoders on attn (inference only), e.g. the
 * sentence-embedding model all-MiniLM-L6-v2: Hugging Face BertModel weights
 * (safetensors) and config.json, the encoder's hidden states, sentence
 * embeddings (mean pooling + L2 normalisation, as sentence-transformers'
 * Pooling(mean) + Normalize) and the attention map of any layer and head.
 *
 * The model, for token ids x[0..len) of one sequence (H = hidden_size):
 *   e_t   = word[x_t] + type[0] + pos[t];  h = LayerNorm(e)
 *   each layer:  a = Attention(h) (heads of H / n_heads, scale 1/sqrt(hd),
 *                    q/k/v/output dense layers with biases)
 *                h = LayerNorm(h + a)
 *                h = LayerNorm(h + W2 GELU(W1 h + b1) + b2)   (exact erf GELU)
 * Every LayerNorm has eps = layer_norm_eps; token type 0 throughout.
 *
 * Batches: ids [B, S] int32 row-major with per-sequence lengths lens [B]
 * (1 <= lens[b] <= S <= max_position). Positions t >= lens[b] are padding:
 * their ids are never read, no real token attends to them, and they cost no
 * work (the real tokens are packed before the dense layers). A sequence's
 * results do not depend on the rest of its batch or on S, up to rounding
 * (~1e-7: a GEMM or the attention kernel may round a row differently in a
 * batch of another shape).
 *
 * Files are untrusted input. config.json is parsed strictly (types and
 * ranges of every field used, hidden_act "gelu", absolute positions); the
 * safetensors file must hold exactly the BertModel tensors of that config
 * (names with or without a "bert." prefix), each with a float dtype (F32,
 * F16, BF16 or F64), its exact shape and finite values. Tolerated besides:
 * "embeddings.position_ids" (I64 [1, max_position]), the pooler
 * ("pooler.dense.weight" [H, H], "pooler.dense.bias" [H]; unused) and, with
 * the "bert." prefix, task heads named "cls.*" (unused). Anything missing,
 * extra, mis-shaped or mistyped is ATTN_BAD_FILE naming the tensor.
 *
 * Dense layers: attn's own GEMM (the best of AVX-512, AVX2+FMA and portable
 * C that the CPU runs, or the one the ctx's kernel forces: portable for REF
 * and TILED, AVX2 for AVX2) over weights packed at load time for the best
 * one (about 40 MB more memory for all-MiniLM-L6-v2). LayerNorm and GELU
 * run on the toolkit's row kernels, as attn/nn.h's layers do.
 *
 * Threads: attention runs on the ctx's threads; the dense layers, GELU and
 * LayerNorm run on blocks of token rows, which are the tasks of the same
 * threads. The blocks depend on the batch only and every GEMM element is
 * computed the same way in any block, so results are bitwise identical for
 * every ctx thread count.
 *
 * Errors: attn/attn.h's statuses, the detail in attn_last_error(); on error
 * nothing is written and nothing leaks.
 */
#ifndef ATTN_BERT_H
#define ATTN_BERT_H

#include <attn.h>
#include <attn/nn.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_bert_config {
    int64_t vocab_size;        /* word pieces, [1, 2^24] */
    int64_t hidden_size;       /* H, [1, 65536] */
    int64_t n_layers;        /* [1, 1024] */
    int64_t n_heads;         /* [1, H], H % n_heads == 0 */
    int64_t intermediate_size; /* I, [1, 2^20] */
    int64_t max_position;      /* longest sequence, [CLS]/[SEP] included, [1, 2^20] */
    int64_t type_vocab_size;   /* [1, 2^16] */
    double layer_norm_eps;     /* (0, 1) */
    /* Longest input the sentence model was trained on (sentence_bert_config
     * .json's max_seq_length, in [1, max_position]); max_position if that
     * file is not given. Inputs are truncated to it by the caller. */
    int64_t max_seq_length;
} attn_bert_config;

typedef struct attn_bert attn_bert;

/* Parses the text of a Hugging Face BERT config.json (json[0..len)) into
 * *c (max_seq_length = max_position). ATTN_BAD_FILE naming the field for
 * anything malformed, missing, of the wrong type or out of range. */
ATTN_API attn_status attn_bert_config_from_json(const char *json, size_t len,
                                                attn_bert_config *c);

/* Loads model_dir/config.json, model_dir/model.safetensors and, if it
 * exists, model_dir/sentence_bert_config.json. */
ATTN_API attn_status attn_bert_load(const char *model_dir, attn_bert **out);
/* The same from explicit paths; sbert_config_path may be NULL. */
ATTN_API attn_status attn_bert_load_files(const char *config_path, const char *weights_path,
                                          const char *sbert_config_path, attn_bert **out);
ATTN_API void attn_bert_free(attn_bert *m); /* accepts NULL */
/* The precision of the dense layers (forward, embed and attention maps):
 *   ATTN_DTYPE_F32   the default: float32 weights and products, exact as
 *                    the header says;
 *   ATTN_DTYPE_BF16  the weights rounded to bfloat16 once (and packed in
 *                    half the memory), each dense layer's input rounded
 *                    to bfloat16, the products summed in float32 (each
 *                    product of two bfloat16 values is exact in float32);
 *                    the residual stream, biases, LayerNorm, GELU,
 *                    attention and pooling stay float32. Every kernel and
 *                    thread count gives the same bits. all-MiniLM-L6-v2's
 *                    embeddings keep a cosine >= 0.9999 to the float32
 *                    ones on the test sentences (docs/minilm.md).
 * Other dtypes are ATTN_BAD_DTYPE. Repacks the weights (the other
 * precision's panels are freed); not while another thread runs the model.
 * attn_bert_attention_probe always runs in float32. */
ATTN_API attn_status attn_bert_set_dtype(attn_bert *m, attn_dtype dtype);
ATTN_API attn_dtype attn_bert_get_dtype(const attn_bert *m); /* F32 for NULL */
ATTN_API const attn_bert_config *attn_bert_get_config(const attn_bert *m);

/* hidden [B, S, H] = the last layer's hidden states; padded rows
 * (t >= lens[b]) are written as 0. ids [B, S], lens [B]. B = 0 is a no-op. */
ATTN_API attn_status attn_bert_forward(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                                       const int64_t *lens, int64_t B, int64_t S,
                                       float *hidden);

/* emb [B, H] = normalize(mean over t < lens[b] of hidden[b, t]), with
 * normalize(v) = v / max(|v|_2, 1e-12) (torch.nn.functional.normalize). */
ATTN_API attn_status attn_bert_embed(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                                     const int64_t *lens, int64_t B, int64_t S, float *emb);

/* weights [len, len]: the attention probabilities of layer `layer` in
 * [0, n_layers) and head `head` in [0, n_heads) for one sequence
 * ids[0..len); row i is query token i, each row sums to 1. */
ATTN_API attn_status attn_bert_attention(attn_ctx *ctx, const attn_bert *m, const int32_t *ids,
                                         int64_t len, int64_t layer, int64_t head,
                                         float *weights);

/* For explanations (`attn explain`, src/models/bert/probe.c): the backward
 * pass of one sequence ids[0..len) for a scalar L of its sentence
 * embedding, given d_emb [H] = dL/d emb. The forward runs again on the
 * toolkit's layers (attn/nn.h) and keeps what backward needs (no len x len
 * buffer: each layer's LSE); the backward then hands every layer's
 * attention call to hook, from the last layer to the first (attn/nn.h:
 * stack 0, the gradient at the attention output), from which
 * attn_nn_attn_probe_weights reads the probabilities and dL/dA. emb [H],
 * if not NULL, receives this forward's embedding (attn_bert_embed's up to
 * rounding). A hook's status other than ATTN_OK stops the pass. */
ATTN_API attn_status attn_bert_attention_probe(attn_ctx *ctx, const attn_bert *m,
                                               const int32_t *ids, int64_t len,
                                               const float *d_emb, attn_nn_attn_hook hook,
                                               void *user, float *emb);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_BERT_H */
