/* core.h - private services shared by every part of the library: error
 * reporting, the allocator hook, the argument checks (check.h), the thread
 * pool and the counter-based RNG. Names here carry the attn__ prefix. */
#ifndef ATTN_CORE_H
#define ATTN_CORE_H

#include "core/run.h"

#include <attn/attn.h>
#include "core/check.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Clears the per-thread detail message (attn_fail records it). */
void attn__clear_error(void);

void *attn__malloc(size_t bytes); /* NULL on failure or bytes == 0 */
void *attn__calloc(size_t count, size_t size);
void attn__free(void *p);
/* The hooks in force now (attn_set_allocator): a buffer kept for later
 * (ops/ctx.c) is freed with the hook that allocated it, and reused only
 * while the same hooks are in force. */
void attn__alloc_hooks(attn_alloc_fn *alloc, attn_free_fn *release, void **user);

/* ---- thread pool ---------------------------------------------------------- */

typedef struct attn__pool attn__pool;

attn_status attn__pool_create(int n_threads, attn__pool **out);
void attn__pool_free(attn__pool *pool);
int attn__pool_threads(const attn__pool *pool);
/* Runs fn for every task, spread over the pool and the calling thread;
 * returns when all are done. Tasks must write disjoint outputs. */
void attn__pool_run(attn__pool *pool, int64_t n_tasks, attn__task_fn fn,
                    void *arg);

/* ---- Philox4x32-10 -------------------------------------------------------- */

static inline void attn__philox(const uint32_t ctr_in[4], const uint32_t key_in[2],
                                uint32_t out[4])
{
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The dropout keep rule (docs/operator.md): counter {j/4, i, b*H+h, offset
 * low word}, key {seed low, seed high ^ offset high}, word j%4 of the output;
 * kept iff that word >= threshold = floor(p * 2^32). */
static inline uint32_t attn__dropout_threshold(double p)
{
    double t = p * 4294967296.0;
    return t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
}

static inline void attn__dropout_block(uint64_t seed, uint64_t offset,
                                       int64_t bh, int64_t i, int64_t j4,
                                       uint32_t out[4])
{
    uint32_t ctr[4] = {(uint32_t)j4, (uint32_t)i, (uint32_t)bh, (uint32_t)offset};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ (uint32_t)(offset >> 32)};
    attn__philox(ctr, key, out);
}

static inline bool attn__dropout_keep(uint64_t seed, uint64_t offset,
                                      uint32_t threshold, int64_t bh, int64_t i,
                                      int64_t j)
{
    uint32_t r[4];
    attn__dropout_block(seed, offset, bh, i, j >> 2, r);
    return r[j & 3] >= threshold;
}

#endif /* ATTN_CORE_H */
