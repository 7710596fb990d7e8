/* bert_internal.h - what the files of the BERT encoder share (attn/bert.h):
 * the model struct and the calls between config.c (config.json and
 * sentence_bert_config.json), weights.c (the safetensors checks, loading
 * and packing), forward.c (the encoder, pooling and attention maps) and
 * probe.c (the backward pass that explanations use). Not installed. */
#ifndef ATTN_BERT_INTERNAL_H
#define ATTN_BERT_INTERNAL_H

#include "core/check.h"
#include "core/toolkit_kernels.h"

#include <attn/bert.h>

typedef struct {
    float *wqkv, *bqkv; /* [3H, H] (query, key, value rows), [3H] */
    float *wo, *bo;     /* attention output dense [H, H], [H] */
    float *ln1_w, *ln1_b;
    float *wi, *bi;     /* intermediate dense [F, H], [F] */
    float *wo2, *bo2;   /* output dense [H, F], [H] */
    float *ln2_w, *ln2_b;
} bert_layer;

struct attn_bert {
    attn_bert_config c;
    attn_dtype dtype;            /* of the dense layers: F32 (the default) or BF16 */
    float *params;               /* every parameter, one block */
    float *word, *pos, *type;    /* [vocab, H], [max_position, H], [type_vocab, H] */
    float *emb_ln_w, *emb_ln_b;  /* [H] */
    bert_layer *layers;          /* [n_layers] */
    /* every layer's dense weights as GEMM panels of pack_kernel (bert_panels
     * order), float32 (F32) or bfloat16 (BF16), from a cache line; the
     * allocation to release is panel_block */
    void *panel_block;
    const void *panels;
    const attn__gemm_kernel *pack_kernel;
};

/* weights.c: where a layer's four dense weights sit in a block of panels
 * for GEMM kernel k: layer l's qkv, o, i, o2 panels start at element
 * l * per + at[0..3]. */
enum { BERT_QKV, BERT_O, BERT_I, BERT_O2 };
typedef struct {
    int64_t per, at[4];
} bert_panels;
bert_panels attn__bert_panels(const attn_bert_config *c, const attn__gemm_kernel *k);

/* weights.c: *panels = every layer's dense weights packed for k
 * (bert_panels order), float32 or, for BF16, rounded to bfloat16, in
 * *block (to attn_release). fn names the caller in the error. */
attn_status attn__bert_pack(const char *fn, const attn_bert *m, attn_dtype dtype,
                            const attn__gemm_kernel *k, void **block, void **panels);

/* config.c: the model's config from config.json at path, then
 * max_seq_length (into c) from sentence_bert_config.json at path. */
attn_status attn__bert_load_config(const char *path, attn_bert_config *c);
attn_status attn__bert_load_sbert_config(const char *path, attn_bert_config *c);

/* forward.c: a view of rows of `row` floats holding nb sequences of len
 * tokens, nh heads of hd floats each, at p: [nb, len, nh, hd]. */
attn_tensor attn__bert_seq_view(const float *p, int64_t nb, int64_t len, int64_t nh, int64_t hd,
                                int64_t row);

/* forward.c: the arguments of a batch call (fn names it): ctx, m, ids
 * [B, S], lens [B] with 1 <= lens[b] <= S <= max_position and ids in the
 * vocabulary; *total = B * S. */
attn_status attn__bert_check_batch(const char *fn, attn_ctx *ctx, const attn_bert *m,
                                   const int32_t *ids, const int64_t *lens, int64_t B, int64_t S,
                                   int64_t *total);

/* forward.c: emb [H] = normalize(mean of the rows x [n, H]), the mean
 * computed in double into acc [H]; returns the norm it divided by,
 * max(|mean|, 1e-12). */
double attn__bert_pool_normalize(const float *x, int64_t n, int64_t H, double *acc, float *emb);

#endif /* ATTN_BERT_INTERNAL_H */
