/* gemm_amx.c - the toolkit's products over bfloat16 weights on AMX-BF16
 * tiles (the nn.gemm_bf16 slot of the AMX table; core/toolkit_kernels.h):
 * a 32 x 32 tile of C in four 16 x 16 float32 accumulator tiles. Each step
 * of 32 k loads two A tiles (16 rows x 32 k of A in bfloat16) and two B
 * tiles (16 k pairs x 16 columns of the panel, which is packed in pairs:
 * kpad 32, pairs) and issues four TDPBF16PS. A holds bfloat16 values
 * (the caller rounds it, attn__round_bf16), so its conversion to a tile is
 * exact; the driver has each tile of 32 rows copied into a zero-padded
 * buffer once per group of panels (pack_a), and C goes through a 32 x 32
 * buffer, so edge tiles need no special case. Each
 * element is then a chain over k in order of exact products, rounded after
 * every addition: the FMA kernels' chain (bit for bit where the CPU adds
 * as the SDM defines; the tile layer is kernels/x86/amx.h, which the
 * tests' build emulates in C). There is no float32 product here (micro is
 * NULL): float32 layers keep the AVX-512 GEMM. */
#include "kernels/nn_kernels.h"

#include "core/half.h"
#include "kernels/x86/amx.h"

#include <stdbool.h>
#include <string.h>

enum { MR = 32, NR = 32, KMAX = 256 }; /* k per call at most: the driver's chunk (KC) */

/* A's tile in bfloat16, [32][kp] with kp = kc rounded up to 32, zeros
 * past mr and kc. */
static void pack_a_amx(int64_t kc, const float *a, int64_t a_rs, int64_t a_ks, int mr, void *dst)
{
    int64_t kp = (kc + 31) / 32 * 32;
    for (int i = 0; i < MR; i++) {
        uint16_t *row = (uint16_t *)dst + i * kp;
        int64_t k = 0;
        if (i < mr)
            for (; k < kc; k++) row[k] = attn__f32_to_bf16(a[i * a_rs + k * a_ks]);
        for (; k < kp; k++) row[k] = 0;
    }
}

static void micro_amx_bf16(int64_t kc, const void *ap, const uint16_t *b, float *c, int64_t ldc, int mr, int nr,
                           int acc)
{
    const uint16_t *at = ap;
    float ct[MR * NR]; /* C's tile */
    int64_t kp = (kc + 31) / 32 * 32;
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) ct[i * NR + j] = acc && i < mr && j < nr ? c[i * ldc + j] : 0.0f;
    amx_begin();
    AMX_LOAD(0, ct, NR * 4);
    AMX_LOAD(1, ct + 16, NR * 4);
    AMX_LOAD(2, ct + 16 * NR, NR * 4);
    AMX_LOAD(3, ct + 16 * NR + 16, NR * 4);
    for (int64_t k = 0; k < kp; k += 32) {
        const uint16_t *bk = b + k * NR; /* pair row k / 2 of the panel */
        AMX_LOAD(4, at + k, kp * 2);
        AMX_LOAD(5, at + 16 * kp + k, kp * 2);
        AMX_LOAD(6, bk, NR * 4);
        AMX_LOAD(7, bk + 32, NR * 4);
        AMX_DPBF16(0, 4, 6);
        AMX_DPBF16(1, 4, 7);
        AMX_DPBF16(2, 5, 6);
        AMX_DPBF16(3, 5, 7);
    }
    AMX_STORE(0, ct, NR * 4);
    AMX_STORE(1, ct + 16, NR * 4);
    AMX_STORE(2, ct + 16 * NR, NR * 4);
    AMX_STORE(3, ct + 16 * NR + 16, NR * 4);
    amx_end();
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = ct[i * NR + j];
}

const attn__gemm_kernel attn__gemm_amx = {.name = "amx",
                                          .mr = MR,
                                          .nr = NR,
                                          .pack_a = pack_a_amx,
                                          .micro_ap = micro_amx_bf16,
                                          .kpad = 32,
                                          .pairs = true};
