/* block_mask.h - the inside of an attn_block_mask (attn/attn.h) and what
 * the kernels ask of it. The constructors (src/ops/block_mask.c) validate
 * and build; the queries here (block_mask.c) are pure reads, safe on any
 * number of threads.
 *
 * A mask holds its layout twice: by rows (per query block, its non-EMPTY
 * key blocks, sorted, each PARTIAL or FULL), which the forward, dQ, decode
 * and weights walk, and by columns (per key block, its query blocks), which
 * the dK/dV pass walks. Layout row r of query block qb in layout (b, h) is
 * (b * n_heads + h) * nqb + qb; columns likewise with nkb. Its element rule
 * is a tree: a leaf (a function, explicit lists with a function inside
 * their PARTIAL blocks, or a named pattern) or an AND/OR of two masks,
 * each with its own layout, owned by the node. */
#ifndef ATTN_KERNELS_BLOCK_MASK_H
#define ATTN_KERNELS_BLOCK_MASK_H

#include "core/core.h"

#include <math.h>

enum { ATTN__BLK_EMPTY = 0, ATTN__BLK_PARTIAL = 1, ATTN__BLK_FULL = 2 };

typedef enum {
    ATTN__BM_FN,      /* fn on every element */
    ATTN__BM_LISTS,   /* explicit lists: FULL blocks visible, fn inside PARTIAL ones */
    ATTN__BM_PATTERN, /* a named pattern's formula */
    ATTN__BM_AND,
    ATTN__BM_OR
} attn__bm_rule;

/* Sorted lists per row (or column) r: entries ptr[r] .. ptr[r+1]-1 of idx
 * (block indices, increasing) and kind (PARTIAL or FULL). */
typedef struct {
    int64_t *ptr, *idx;
    uint8_t *kind;
} attn__bm_lists;

struct attn_block_mask {
    attn_block_mask_shape shape;
    int64_t nqb, nkb;
    attn__bm_lists rows, cols;
    attn__bm_rule rule;
    attn_mask_fn fn; /* FN, LISTS */
    void *user;
    attn_block_pattern pat; /* PATTERN: its arrays point into `owned` */
    int64_t *owned;
    struct attn_block_mask *a, *b; /* AND, OR */
};

/* Layout index of batch b, head h (shared layouts take 0). */
static inline int64_t attn__bm_layout(const attn_block_mask *m, int64_t b, int64_t h)
{
    return (m->shape.n_batch == 1 ? 0 : b) * m->shape.n_heads + (m->shape.n_heads == 1 ? 0 : h);
}

/* Kind of block (qb, kb) in layout (b, h). */
int attn__bm_block(const attn_block_mask *m, int64_t b, int64_t h, int64_t qb, int64_t kb);

/* The definition, element by element (the reference kernel's view): the
 * function, the pattern's formula, or the operands' definitions combined. */
bool attn__bm_def(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j);

/* The same through the layouts: a FULL block is visible, an EMPTY one not,
 * and only PARTIAL blocks apply the element rule (the kernels' view). */
bool attn__bm_eval(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j);

/* Kind of the tile of query rows [i0, i0 + nq) and keys [j0, j0 + nk):
 * FULL if every block it touches is FULL, EMPTY if every one is EMPTY,
 * else PARTIAL. */
int attn__bm_tile(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t j0,
                  int64_t nk);

/* The first key tile start x >= j (j and x multiples of tile) whose keys
 * [x, x + tile) meet a non-EMPTY block of a query block of rows
 * [i0, i0 + nq); INT64_MAX if none. */
int64_t attn__bm_next_key(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq,
                          int64_t j, int64_t tile);

/* Transposed: the first query tile start x >= i (multiples of tile) whose
 * rows [x, x + tile) meet a non-EMPTY block of a key block of keys
 * [j0, j0 + nk); INT64_MAX if none. */
int64_t attn__bm_next_query(const attn_block_mask *m, int64_t b, int64_t h, int64_t j0, int64_t nk,
                            int64_t i, int64_t tile);

/* Visibility bits of a tile, the kernels' cheap form of attn__bm_eval:
 * bits[r] (r < nq) has bit c (c < nk <= 64) set when row i0 + r of layout
 * (b, h) sees key j0 + c. The layouts are looked up once per block row of
 * the tile, FULL blocks are set whole, EMPTY ones left clear, and PARTIAL
 * ones take the rule's bits: a named pattern's closed form (intervals for
 * windows, chunks, prefixes and globals; a stride for DILATED; id
 * compares for DOCUMENTS), the operands' bits combined for AND / OR, and
 * the function per element only for masks built from functions. */
void attn__bm_bits(const attn_block_mask *m, int64_t b, int64_t h, int64_t i0, int64_t nq, int64_t j0, int64_t nk,
                   uint64_t *bits);

/* Bits c in [lo, hi) clipped to [0, n) (n <= 64): the positions of an
 * interval inside a tile of n keys. */
static inline uint64_t attn__bits_span(int64_t lo, int64_t hi, int64_t n)
{
    if (lo < 0) lo = 0;
    if (hi > n) hi = n;
    if (lo >= hi) return 0;
    uint64_t top = hi >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << hi) - 1;
    return top & ~(((uint64_t)1 << lo) - 1);
}

/* s[c * st] = -inf for every c < n (n <= 64) whose bit is clear. */
static inline void attn__bits_hide(uint64_t bits, int64_t n, float *s, int64_t st)
{
    uint64_t z = ~bits & attn__bits_span(0, n, n);
#if defined(__GNUC__) || defined(__clang__)
    for (; z != 0; z &= z - 1) s[__builtin_ctzll(z) * st] = -INFINITY;
#else
    for (int64_t c = 0; z != 0; c++, z >>= 1)
        if (z & 1) s[c * st] = -INFINITY;
#endif
}

/* s[c * st] = -inf for every key j0 + c (c < n) that row i of layout
 * (b, h) does not see (attn__bm_eval false), from attn__bm_bits 64 keys
 * at a time. */
void attn__bm_hide(const attn_block_mask *m, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t n, float *s,
                   int64_t st);

/* The key blocks row (b, h, qb) lists: *idx, *kind and their count. */
int64_t attn__bm_row(const attn_block_mask *m, int64_t b, int64_t h, int64_t qb, const int64_t **idx,
                     const uint8_t **kind);

/* ---- counted work ------------------------------------------------------------- */

/* Tiles (a block of query rows times a tile of keys, or a chunk of keys
 * for a row) the fast kernels computed, summed over all calls and threads:
 * the tests' measure of work (O(S w) for a window). attn__tiles_take
 * returns the count and resets it. */
void attn__tiles_add(int64_t n);
int64_t attn__tiles_take(void);

#endif /* ATTN_KERNELS_BLOCK_MASK_H */
