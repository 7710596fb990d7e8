/* bm_pattern.h - the named block-mask patterns (attn_block_pattern): each
 * pattern's element formula, and its classification of a block, which
 * must be exact when it says FULL or EMPTY and may say PARTIAL when unsure
 * (the element rule then decides). The builder (src/ops/block_mask.c)
 * classifies with these; the reference evaluates the formulas. */
#ifndef ATTN_KERNELS_BM_PATTERN_H
#define ATTN_KERNELS_BM_PATTERN_H

#include "core/core.h"

/* The largest random_blocks of BIGBIRD (the draws of a block row are kept
 * on the stack). */
enum { ATTN__BIGBIRD_MAX_RANDOM = 64 };

/* Element (i, j) of layout (b, h) (b, h already 0 for a shared layout);
 * the pattern's arrays are its own copies (LONGFORMER's globals sorted,
 * without duplicates). */
bool attn__pattern_visible(const attn_block_pattern *pt, const attn_block_mask_shape *s, int64_t b,
                           int64_t h, int64_t i, int64_t j);

/* The element rule as bits (attn__bm_bits): bits[r] bit c set when
 * (i0 + r, j0 + c) is visible, for r < n and c < nk <= 64. */
void attn__pattern_bits(const attn_block_pattern *pt, const attn_block_mask_shape *s, int64_t b, int64_t h,
                        int64_t i0, int64_t n, int64_t j0, int64_t nk, uint64_t *bits);

/* What a DOCUMENTS block classification needs: the smallest and largest
 * id of query block qb and of key block kb of the layout's batch. */
typedef struct {
    int64_t qmin, qmax, kmin, kmax;
} attn__doc_span;

/* Kind (ATTN__BLK_*) of block (qb, kb) of layout (b, h); doc is used by
 * DOCUMENTS only. */
int attn__pattern_block(const attn_block_pattern *pt, const attn_block_mask_shape *s, int64_t b, int64_t h,
                        int64_t qb, int64_t kb, const attn__doc_span *doc);

/* BIGBIRD's random key blocks of block row (h, qb): min(random_blocks,
 * nkb) distinct blocks into out (at most ATTN__BIGBIRD_MAX_RANDOM); returns
 * their count. */
int64_t attn__bigbird_random(const attn_block_pattern *pt, int64_t nkb, int64_t h, int64_t qb, int64_t *out);

#endif /* ATTN_KERNELS_BM_PATTERN_H */
