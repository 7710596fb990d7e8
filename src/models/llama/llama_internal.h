/* llama_internal.h - what the files of the Llama model share: the loaded
 * model (config.c reads the hyper-parameters and the chat template,
 * weights.c checks and maps the tensors), the session with its KV cache
 * and the forward pass (forward.c), used by generation (generate.c). */
#ifndef ATTN_LLAMA_INTERNAL_H
#define ATTN_LLAMA_INTERNAL_H

#include "core/check.h"

#include <attn/gguf.h>
#include <attn/llama.h>
#include <attn/quant.h>
#include <attn/text.h>

#include <stdbool.h>

/* One layer's weights, pointing into the file. */
typedef struct llama_layer {
    const float *attn_norm, *ffn_norm; /* [d_model] */
    attn_quant_matrix q, k, v, o;      /* [H*D, d], [Hkv*D, d] x2, [d, H*D] */
    attn_quant_matrix gate, up, down;  /* [d_ff, d] x2, [d, d_ff] */
} llama_layer;

struct attn_llama {
    attn_llama_config cfg;
    attn_gguf *file;
    attn_bpe *tok;
    llama_layer *layers;       /* [n_layers] */
    attn_quant_matrix embd;    /* [n_vocab, d_model] */
    attn_quant_matrix head;    /* the output head: embd when tied */
    const float *out_norm;     /* [d_model], in norms */
    float *norms;              /* every norm's weights, copied from the file */
    float *inv_freq;           /* [d_head / 2]: theta^(-2i/D), float32 as transformers */
    int32_t eos_id, im_end_id;
    char *system;              /* the chat template's default system line, or NULL */
    bool chatml;               /* the template is ChatML */
};

/* config.c: the hyper-parameters of the file into m->cfg; the chat
 * template into m->chatml and m->system. */
attn_status attn__llama_read_config(attn_llama *m);
/* weights.c: every tensor checked against m->cfg and mapped. */
attn_status attn__llama_map_weights(attn_llama *m);

/* The largest number of tokens one pass through the layers takes. */
enum { ATTN__LLAMA_CHUNK = 512 };

struct attn_llama_session {
    const attn_llama *m;
    int64_t n_ctx, len, cap; /* most tokens, tokens held, room allocated */
    attn_dtype cache_dtype;  /* F32, BF16 or F16 */
    size_t es;               /* bytes per cached element */
    void *k, *v;             /* [n_layers][Hkv][cap][D] of cache_dtype */
    int32_t *ids;            /* [cap] */
};

/* Where forward.c keeps a copy of one layer's rotated queries [n, H, D]
 * (for the attention maps), or layer -1 for none. */
typedef struct attn__llama_capture {
    int64_t layer;
    float *q; /* [tokens fed in this call][H][D] */
} attn__llama_capture;

/* Feeds ids [n] through layers [0, n_run) (all of them and the head when
 * n_run is n_layers and logits is not NULL), capturing the queries of cap
 * if given. The session grows by n on success only. */
attn_status attn__llama_feed(attn_ctx *ctx, attn_llama_session *s, const int32_t *ids, int64_t n,
                             int64_t n_run, const attn__llama_capture *cap, float *logits);

#endif /* ATTN_LLAMA_INTERNAL_H */
