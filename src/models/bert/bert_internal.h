/* bert_internal.h - what the files of the BERT encoder share (attn/bert.h):
 * the model struct and the calls between config.c (config.json and
 * sentence_bert_config.json), weights.c (the safetensors checks, loading
 * and packing) and forward.c (the encoder, pooling and attention maps).
 * Not installed. */
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
    /* the same four dense weights as GEMM panels of the model's pack kernel */
    float *pqkv, *po, *pi, *po2;
} bert_layer;

struct attn_bert {
    attn_bert_config c;
    float *params;               /* every parameter, one block */
    float *word, *pos, *type;    /* [vocab, H], [max_position, H], [type_vocab, H] */
    float *emb_ln_w, *emb_ln_b;  /* [H] */
    bert_layer *layers;          /* [n_layers] */
    float *packed;               /* the panels of every layer (one block) */
    const attn__gemm_kernel *pack_kernel; /* the GEMM kernel the panels are for */
};

/* config.c: the model's config from config.json at path, then
 * max_seq_length (into c) from sentence_bert_config.json at path. */
attn_status attn__bert_load_config(const char *path, attn_bert_config *c);
attn_status attn__bert_load_sbert_config(const char *path, attn_bert_config *c);

#endif /* ATTN_BERT_INTERNAL_H */
