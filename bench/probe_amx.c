/* probe_amx.c - the AMX bfloat16 loop of the probe (bench.h): TDPBF16PS
 * into 4 independent tile accumulators. Compiled with -mamx-tile
 * -mamx-bf16 only when the compiler accepts them; run only where the CPU
 * has AMX and the OS granted the tile data (src/core/cpu.c makes the
 * arch_prctl request once, before the probe runs). */
#include "bench.h"

#include <immintrin.h>
#include <string.h>

/* The 64-byte tile configuration of palette 1. */
typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} tile_config;

double bench_loop_amx_bf16(void)
{
    static unsigned short a[16 * 32], b[16 * 32]; /* bf16 operands: 16 rows of 64 bytes */
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { /* tiles 0-3: C (16 x 16 float32); 4, 5: A; 6, 7: B */
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    for (int i = 0; i < 16 * 32; i++) a[i] = b[i] = 0x3C00; /* bf16 2^-7: sums stay small */
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, a, 64);
    _tile_loadd(6, b, 64);
    _tile_loadd(7, b, 64);
    long iters = 2000000;
    for (long n = 0; n < iters; n++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    static float c[16 * 16];
    _tile_stored(0, c, 64);
    _tile_release();
    volatile float keep = c[0];
    (void)keep;
    return (double)iters * 4 * (16.0 * 16 * 32 * 2); /* C 16 x 16 += A 16 x 32 . B 32 x 16 */
}
