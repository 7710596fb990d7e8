/* philox.c - public entry points of the counter-based RNG used for dropout
 * (the inline implementation lives in core.h so kernels can inline it). */
#include "core/core.h"

void attn_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                        uint32_t out[4])
{
    attn__philox(ctr, key, out);
}

int attn_dropout_keep(uint64_t seed, uint64_t offset, double p, int64_t b,
                      int64_t h, int64_t i, int64_t j, int64_t n_heads)
{
    if (!(p > 0.0)) return 1;
    return attn__dropout_keep(seed, offset, attn__dropout_threshold(p),
                              b * n_heads + h, i, j);
}
