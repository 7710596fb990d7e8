/* amx.h - the AMX tile operations of the AMX kernels: the intrinsics in a
 * build with -mamx-tile -mamx-bf16, or, in a build configured with
 * ATTN_EMULATE_AMX (the tests' make test-avx512-emu), plain C on eight
 * 1 KB tiles per thread that follows Intel's definition of each
 * instruction (SDM vol. 2, TILELOADD, TILESTORED, TILEZERO, TDPBF16PS), so
 * that the kernels' own code runs, and is tested, on a CPU without AMX.
 *
 * The kernels use one configuration (palette 1): all eight tiles 16 rows of
 * 64 bytes, which is each operand's shape:
 *   A   16 rows x 32 bfloat16 (k),
 *   B   16 rows (k pairs) x 16 columns x 2 bfloat16: "VNNI" order, element
 *       (k, n) at row k / 2, bytes 4 n + 2 (k % 2),
 *   C   16 rows x 16 float32.
 * TDPBF16PS c, a, b: for every row m and column n, for k = 0 .. 15 in order,
 *   c[m][n] += a[m][2k] b[k][2n];  c[m][n] += a[m][2k+1] b[k][2n+1]
 * each product exact in float32 (8 + 8 significant bits), each sum rounded
 * to nearest even, denormal inputs and results flushed to zero. (Whether a
 * given CPU rounds the pair in exactly this way is for its tests to say:
 * the kernels' tests hold them to error bounds, not to these bits.)
 *
 * Tile numbers are constants (the intrinsics take immediates). A thread
 * loads the configuration (amx_begin) before its first tile instruction
 * and releases the tiles (amx_end) when its kernel returns. The process
 * must hold the OS's permission for the tile data (src/core/cpu.c asks for
 * it); the kernel table offers AMX only when it does. */
#ifndef ATTN_KERNELS_X86_AMX_H
#define ATTN_KERNELS_X86_AMX_H

#include "core/half.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

enum { AMX_ROWS = 16, AMX_COLSB = 64 };

static inline void amx_config_all(amx_config *c)
{
    memset(c, 0, sizeof *c);
    c->palette = 1;
    for (int t = 0; t < 8; t++) {
        c->rows[t] = AMX_ROWS;
        c->colsb[t] = AMX_COLSB;
    }
}

#if defined(ATTN_AMX_EMULATED)

/* the eight tiles of this thread */
static _Thread_local union {
    uint8_t b[AMX_ROWS][AMX_COLSB];
    uint16_t h[AMX_ROWS][AMX_COLSB / 2];
    float f[AMX_ROWS][AMX_COLSB / 4];
} amx_tmm[8];

static inline void amx_begin(void) {}
static inline void amx_end(void) {}

static inline void amx_emu_load(int t, const void *base, int64_t stride)
{
    for (int r = 0; r < AMX_ROWS; r++)
        memcpy(amx_tmm[t].b[r], (const char *)base + r * stride, AMX_COLSB);
}

static inline void amx_emu_store(int t, void *base, int64_t stride)
{
    for (int r = 0; r < AMX_ROWS; r++) memcpy((char *)base + r * stride, amx_tmm[t].b[r], AMX_COLSB);
}

/* x with a denormal flushed to a zero of its sign */
static inline float amx_emu_ftz(float x)
{
    uint32_t u = attn__f32_bits(x);
    return (u & 0x7F800000u) == 0 ? attn__bits_f32(u & 0x80000000u) : x;
}

/* a bfloat16 as float32, denormals as zero */
static inline float amx_emu_bf16(uint16_t h) { return amx_emu_ftz(attn__bf16_to_f32(h)); }

static inline void amx_emu_dpbf16(int c, int a, int b)
{
    for (int m = 0; m < AMX_ROWS; m++)
        for (int k = 0; k < AMX_COLSB / 4; k++) {
            float a0 = amx_emu_bf16(amx_tmm[a].h[m][2 * k]), a1 = amx_emu_bf16(amx_tmm[a].h[m][2 * k + 1]);
            for (int n = 0; n < AMX_COLSB / 4; n++) {
                float acc = amx_emu_ftz(amx_tmm[c].f[m][n]);
                acc = amx_emu_ftz(acc + a0 * amx_emu_bf16(amx_tmm[b].h[k][2 * n]));
                acc = amx_emu_ftz(acc + a1 * amx_emu_bf16(amx_tmm[b].h[k][2 * n + 1]));
                amx_tmm[c].f[m][n] = acc;
            }
        }
}

#define AMX_ZERO(t) memset(amx_tmm[t].b, 0, sizeof amx_tmm[t].b)
#define AMX_LOAD(t, base, stride) amx_emu_load(t, base, stride)
#define AMX_STORE(t, base, stride) amx_emu_store(t, base, stride)
#define AMX_DPBF16(c, a, b) amx_emu_dpbf16(c, a, b)

#else

#include <immintrin.h>

static inline void amx_begin(void)
{
    amx_config c;
    amx_config_all(&c);
    _tile_loadconfig(&c);
}

static inline void amx_end(void) { _tile_release(); }

#define AMX_ZERO(t) _tile_zero(t)
#define AMX_LOAD(t, base, stride) _tile_loadd(t, base, stride)
#define AMX_STORE(t, base, stride) _tile_stored(t, base, stride)
#define AMX_DPBF16(c, a, b) _tile_dpbf16ps(c, a, b)

#endif

#endif /* ATTN_KERNELS_X86_AMX_H */
