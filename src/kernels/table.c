/* table.c - the one place that decides which kernels run. Every
 * instruction set has an entry: the CPU features it needs (core/cpu.h) and
 * the function that fills its slots, present only when CMake compiled its
 * kernel files (the compile definition ATTN_HAVE_<ISA>). On the first call
 * every table is built once: the portable kernels fill every slot, then an
 * available instruction set overrides the slots it has variants of. AUTO
 * runs the last available entry (the most capable) that is not marked
 * manual (kernels not yet run on real hardware).
 *
 * To add an instruction set: write its kernel files, add them to CMake's
 * list of kernel files, and here write its fill function and point its
 * entry at it (docs/kernels.md, "Adding an ISA"). */
#include "kernels/table.h"

#include "core/cpu.h"
#include "kernels/nn_kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(ATTN_HAVE_AVX2)
#include "kernels/x86/sdpa_x86.h"
#endif

/* The shape rules, the same for every instruction set. Decode: at most
 * this many rows per kv head (query heads of a group x queries; the
 * portable split keeps a head's queries in one block of ATTN__TILE_Q), keys
 * split in fixed chunks (a multiple of every key tile; independent of the
 * thread count). Fused backward: one task per kv head, so enough kv heads
 * to keep the workers busy. */
enum { DECODE_MAX_ROWS = 16, DECODE_SPLIT = 512, FUSED_MIN_KV_HEADS = 4 };

/* The toolkit's slots from a GEMM kernel and a build of the row kernels. */
static attn__toolkit_kernels nn_slots(const attn__gemm_kernel *gemm, const attn__row_kernels *rows)
{
    return (attn__toolkit_kernels){gemm, gemm, rows->layernorm, rows->gelu, rows->gelu_grad, rows->logsumexp,
                                   rows->swiglu};
}

/* ---- the portable kernels: every slot ----------------------------------------- */

/* Marks the slots in mine[] (n of them), for every dtype combination
 * each has, as filled by isa. */
static void mark(attn__kernels *t, const attn__slot *mine, size_t n, attn__isa isa)
{
    for (size_t x = 0; x < n; x++)
        for (int d = 0; d < ATTN__N_SDPA_DT; d++)
            if (attn__slot_has_dt(mine[x], (attn__sdpa_dt)d)) t->filled_by[mine[x]][d] = isa;
}

/* The portable attention kernels read and write every dtype of the table
 * themselves (tiles converted to float32 as they are loaded, outputs
 * rounded as they are stored), so one set serves every combination. */
static void fill_portable_sdpa(attn__sdpa_kernels *k, bool forward_only)
{
    k->forward = (attn__k_forward){ATTN__TILE_Q, attn__tiled_forward_ws, attn__tiled_forward_block, 0, false, NULL, NULL};
    k->decode = (attn__k_decode){DECODE_MAX_ROWS, DECODE_SPLIT, attn__tiled_forward_ws,
                                 attn__tiled_decode_split, NULL, attn__decode_merge};
    if (forward_only) return;
    k->weights = (attn__k_weights){attn__tiled_weights_row};
    k->delta = (attn__k_delta){ATTN__TILE_Q, attn__tiled_delta_block};
    k->dkdv = (attn__k_dkdv){ATTN__TILE_K, attn__tiled_backward_ws, attn__tiled_dkdv_block};
    k->dq = (attn__k_dq){ATTN__TILE_Q, attn__tiled_backward_ws, attn__tiled_dq_block};
    k->fused = (attn__k_fused){FUSED_MIN_KV_HEADS, attn__tiled_fused_ws, attn__tiled_fused_kvhead};
}

static void fill_portable(attn__kernels *t)
{
    memset(t, 0, sizeof *t);
    for (int d = 0; d < ATTN__N_SDPA_DT; d++)
        fill_portable_sdpa(&t->sdpa[d], !attn__slot_has_dt(ATTN__SLOT_SDPA_DKDV, (attn__sdpa_dt)d));
    t->score = (attn__k_score){ATTN__SCORE_TQ, ATTN__SCORE_TK, ATTN__SCORE_GROUPS, attn__score_chunked_ws,
                               attn__score_forward_block, attn__score_weights_block, attn__score_delta_head,
                               attn__score_backward_group, attn__score_reduce_dpq};
    t->score_proj = (attn__k_score_proj){ATTN__SCORE_ROWS, attn__score_pack, attn__score_linear_rows,
                                         attn__score_linear_dx_rows, attn__score_linear_dw_rows,
                                         attn__score_gscale_rows, attn__score_gscale_dq_rows,
                                         attn__score_dg_head};
    t->nn = nn_slots(&attn__gemm_portable, &attn__rows_portable);
    /* the twin: every row count is a "few" (dequantize a row, dot in double) */
    t->quant = (attn__k_quant){INT64_MAX, 8, 0, 0, 1, false, attn__quant_ref_ws, attn__quant_ref, NULL};
    static const attn__slot every[] = {
#define SLOT_ID(id, name) ATTN__SLOT_##id,
        ATTN__SLOTS(SLOT_ID)
#undef SLOT_ID
    };
    mark(t, every, ATTN__N_SLOTS, ATTN__ISA_PORTABLE);
}

/* ---- AVX2+FMA and AVX-512 (x86/sdpa_avx2.c, x86/sdpa_avx512.c) ------------------ */

#if defined(ATTN_HAVE_AVX2)
/* The attention kernels of one x86 build (kernels/x86/sdpa_x86.h). */
typedef struct {
    attn__ws_fn forward_ws, decode_ws, backward_ws, fused_ws, forward_pack_bytes;
    void (*forward)(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws);
    void (*forward_pack)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);
    void (*decode)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split, float *part, float *ws);
    bool (*decode_heads)(const attn__sdpa *p, int64_t b, int64_t s, int64_t split, float *part, int64_t head_stride,
                         float *ws);
    void (*delta)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *delta);
    void (*dkdv)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta, float *ws);
    void (*dq)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta, bool write_dbias,
               float *ws);
    void (*fused)(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part, const float *delta,
                  float *ws);
    int64_t (*bwd_q_bytes)(const attn__sdpa *p);
    void (*bwd_q_pack)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst);
} x86_sdpa;

/* Every dtype combination: BF16 and F16 tiles are converted to float32 as
 * they are packed (F16C for F16) and outputs rounded as they are stored. */
static void fill_x86_sdpa(attn__kernels *t, const x86_sdpa *x, attn__isa isa)
{
    for (int d = 0; d < ATTN__N_SDPA_DT; d++) {
        attn__sdpa_kernels *k = &t->sdpa[d];
        k->forward = (attn__k_forward){ATTN__X86_TILE_Q, x->forward_ws, x->forward,
                                       ATTN__X86_TILE_K, true, x->forward_pack_bytes, x->forward_pack};
        k->decode = (attn__k_decode){DECODE_MAX_ROWS, DECODE_SPLIT, x->decode_ws, x->decode, x->decode_heads,
                                     attn__decode_merge};
        if (!attn__slot_has_dt(ATTN__SLOT_SDPA_DKDV, (attn__sdpa_dt)d)) continue;
        k->delta = (attn__k_delta){ATTN__X86_TILE_K, x->delta};
        k->dkdv = (attn__k_dkdv){ATTN__X86_TILE_K, x->backward_ws, x->dkdv};
        k->dq = (attn__k_dq){ATTN__X86_TILE_Q_BWD, x->backward_ws, x->dq};
        k->fused = (attn__k_fused){FUSED_MIN_KV_HEADS, x->fused_ws, x->fused};
        k->bwd_pack = (attn__k_bwd_pack){NULL, NULL, x->bwd_q_bytes, x->bwd_q_pack};
    }
    static const attn__slot mine[] = {ATTN__SLOT_SDPA_FORWARD, ATTN__SLOT_SDPA_DECODE, ATTN__SLOT_SDPA_DELTA,
                                      ATTN__SLOT_SDPA_DKDV,    ATTN__SLOT_SDPA_DQ,     ATTN__SLOT_SDPA_FUSED};
    mark(t, mine, sizeof mine / sizeof mine[0], isa);
}

/* The kernels of build P (attn__avx2, attn__avx512) as P##_sdpa. */
#define X86_SDPA(P)                                                                                      \
    static const x86_sdpa P##_sdpa = {P##_forward_ws,    P##_decode_ws,      P##_backward_ws,             \
                                      P##_fused_ws,      P##_forward_pack_bytes, P##_forward_block,       \
                                      P##_forward_pack,  P##_decode_split,   P##_decode_heads,            \
                                      P##_delta_block,                                                     \
                                      P##_dkdv_block,                                                      \
                                      P##_dq_block,      P##_fused_kvhead,   P##_bwd_q_bytes,             \
                                      P##_bwd_q_pack};

/* The toolkit's slots (nn.gemm and the row kernels) from one build, marked
 * as filled by isa. */
static void fill_nn(attn__kernels *t, const attn__gemm_kernel *gemm, const attn__row_kernels *rows, attn__isa isa)
{
    t->nn = nn_slots(gemm, rows);
    static const attn__slot mine[] = {ATTN__SLOT_GEMM, ATTN__SLOT_GEMM_BF16, ATTN__SLOT_LAYERNORM_ROW,
                                      ATTN__SLOT_GELU_ROW, ATTN__SLOT_SOFTMAX_ROW, ATTN__SLOT_SWIGLU_ROW};
    mark(t, mine, sizeof mine / sizeof mine[0], isa);
}

X86_SDPA(attn__avx2)

static void fill_avx2(attn__kernels *t)
{
    fill_x86_sdpa(t, &attn__avx2_sdpa, ATTN__ISA_AVX2);
    fill_nn(t, &attn__gemm_avx2, &attn__rows_avx2, ATTN__ISA_AVX2);
    /* the quantized products read the blocks' half scales with F16C, which
     * this table needs anyway (the half-precision tiles) */
    t->quant = (attn__k_quant){ATTN__QGEMM_MIN_ROWS, ATTN__QGEMV_COLS, ATTN__QGEMM_ROWS, ATTN__QGEMM_COLS,
                               ATTN__QGEMM_MR,
                               true, attn__quant_avx2_ws, attn__quant_avx2_gemv, attn__quant_avx2_gemm};
    static const attn__slot quant[] = {ATTN__SLOT_QUANT_MATMUL};
    mark(t, quant, 1, ATTN__ISA_AVX2);
}
#define FILL_AVX2 fill_avx2
#else
#define FILL_AVX2 NULL
#endif

/* AVX-512: the attention kernels, the toolkit's GEMM and row kernels at 16
 * lanes, over the AVX2 table (whose quantized kernels it keeps, so it
 * needs AVX2's features too). A build configured with ATTN_EMULATE_AVX512 (the
 * tests' make test-avx512-emu) compiles the attention kernels with AVX2
 * only, each 16-lane vector as two ymm registers (kernels/x86/vec.h): the
 * AVX-512 kernels' own code then runs, and is tested, on a CPU without
 * AVX-512; such a build keeps AVX2's GEMM and row kernels and needs
 * only AVX2's features. */
#if defined(ATTN_HAVE_AVX512) && defined(ATTN_HAVE_AVX2)
X86_SDPA(attn__avx512)

static void fill_avx512(attn__kernels *t)
{
    fill_avx2(t);
    fill_x86_sdpa(t, &attn__avx512_sdpa, ATTN__ISA_AVX512);
#if !defined(ATTN_AVX512_EMULATED)
    fill_nn(t, &attn__gemm_avx512, &attn__rows_avx512, ATTN__ISA_AVX512);
#endif
}
#define FILL_AVX512 fill_avx512
#else
#define FILL_AVX512 NULL
#endif

/* AVX512-BF16: the AVX-512 table with the BF16 products on vdpbf16ps
 * (sdpa_body.h): S = Q K^T and O += P V (forward), S, dP = dO V^T, dV and
 * dK (backward), P and dS rounded to bfloat16 where they are operands;
 * and the toolkit's
 * products over bfloat16 weights (x86/gemm_avx512bf16.c; not in the
 * emulated build, which keeps AVX2's GEMM); every other slot and dtype
 * keeps the AVX-512 kernels. A build configured with ATTN_EMULATE_AVX512
 * computes vdpbf16ps in AVX2 (kernels/x86/vec.h) and needs AVX2's
 * features only. */
#if defined(ATTN_HAVE_AVX512BF16) && defined(ATTN_HAVE_AVX512) && defined(ATTN_HAVE_AVX2)
static void fill_avx512bf16(attn__kernels *t)
{
    fill_avx512(t);
    t->sdpa[ATTN__SDPA_BF16].forward =
        (attn__k_forward){ATTN__X86_TILE_Q, attn__avx512_forward_ws_dp, attn__avx512_forward_block_dp,
                          ATTN__X86_TILE_K, false, attn__avx512_forward_pack_bytes_dp, attn__avx512_forward_pack_dp};
    attn__sdpa_kernels *k = &t->sdpa[ATTN__SDPA_BF16];
    k->dkdv = (attn__k_dkdv){ATTN__X86_TILE_K, attn__avx512_backward_ws_dp, attn__avx512_dkdv_block_dp};
    k->dq = (attn__k_dq){ATTN__X86_TILE_Q_BWD, attn__avx512_backward_ws_dp, attn__avx512_dq_block_dp};
    k->fused = (attn__k_fused){FUSED_MIN_KV_HEADS, attn__avx512_fused_ws_dp, attn__avx512_fused_kvhead_dp};
    k->bwd_pack = (attn__k_bwd_pack){NULL, NULL, attn__avx512_bwd_q_bytes_dp, attn__avx512_bwd_q_pack_dp};
    static const attn__slot mine[] = {ATTN__SLOT_SDPA_FORWARD, ATTN__SLOT_SDPA_DKDV, ATTN__SLOT_SDPA_DQ,
                                      ATTN__SLOT_SDPA_FUSED};
    for (size_t x = 0; x < sizeof mine / sizeof mine[0]; x++)
        t->filled_by[mine[x]][ATTN__SDPA_BF16] = ATTN__ISA_AVX512BF16;
#if !defined(ATTN_AVX512BF16_EMULATED)
    t->nn.gemm_bf16 = &attn__gemm_avx512bf16; /* products over bfloat16 weights, x86/gemm_avx512bf16.c */
    t->filled_by[ATTN__SLOT_GEMM_BF16][ATTN__SDPA_F32] = ATTN__ISA_AVX512BF16;
#endif
}
#define FILL_AVX512BF16 fill_avx512bf16
#else
#define FILL_AVX512BF16 NULL
#endif

/* AMX: the AVX-512 table with the BF16 forward's and backward's products
 * on AMX-BF16 tiles (the AVX-512 kernels with tiles, sdpa_body.h), and
 * the toolkit's products over bfloat16 weights on tiles (x86/gemm_amx.c).
 * Decode, every other dtype and the other slots keep the AVX-512 kernels. A build configured with
 * ATTN_EMULATE_AMX (with ATTN_EMULATE_AVX512) runs the tiles in C
 * (kernels/x86/amx.h) and needs AVX2's features only. */
#if defined(ATTN_HAVE_AMX) && defined(ATTN_HAVE_AVX512) && defined(ATTN_HAVE_AVX2)
static void fill_amx(attn__kernels *t)
{
    fill_avx512(t);
    attn__sdpa_kernels *k = &t->sdpa[ATTN__SDPA_BF16];
    k->forward = (attn__k_forward){ATTN__X86_TILE_Q, attn__avx512_forward_ws_amx, attn__avx512_forward_block_amx,
                                   ATTN__X86_TILE_K, false, attn__avx512_forward_pack_bytes_amx,
                                   attn__avx512_forward_pack_amx};
    k->dkdv = (attn__k_dkdv){ATTN__X86_TILE_K, attn__avx512_backward_ws_amx, attn__avx512_dkdv_block_amx};
    k->dq = (attn__k_dq){ATTN__X86_TILE_Q_BWD, attn__avx512_backward_ws_amx, attn__avx512_dq_block_amx};
    k->fused = (attn__k_fused){FUSED_MIN_KV_HEADS, attn__avx512_fused_ws_amx, attn__avx512_fused_kvhead_amx};
    k->bwd_pack = (attn__k_bwd_pack){attn__avx512_bwd_kv_bytes_amx, attn__avx512_bwd_kv_pack_amx,
                                     attn__avx512_bwd_q_bytes_amx, attn__avx512_bwd_q_pack_amx};
    static const attn__slot mine[] = {ATTN__SLOT_SDPA_FORWARD, ATTN__SLOT_SDPA_DKDV, ATTN__SLOT_SDPA_DQ,
                                      ATTN__SLOT_SDPA_FUSED};
    for (size_t x = 0; x < sizeof mine / sizeof mine[0]; x++) t->filled_by[mine[x]][ATTN__SDPA_BF16] = ATTN__ISA_AMX;
    t->nn.gemm_bf16 = &attn__gemm_amx; /* products over bfloat16 weights on tiles */
    t->filled_by[ATTN__SLOT_GEMM_BF16][ATTN__SDPA_F32] = ATTN__ISA_AMX;
}
#define FILL_AMX fill_amx
#else
#define FILL_AMX NULL
#endif

/* ---- the instruction sets ------------------------------------------------------------ */

enum { MAX_NEEDS = 9 };

typedef struct {
    const char *name;
    attn_kernel kernel;                /* the value that forces it */
    void (*fill)(attn__kernels *t);    /* NULL: no kernels in this build */
    const char *not_built;             /* what to say then */
    int n_needs;
    attn__feature needs[MAX_NEEDS];    /* CPU features (with the OS's support) */
    const char *manual;                /* not NULL: AUTO never picks it (why); forcing runs it */
} isa_entry;

/* AVX-512 fills the attention slots and the toolkit's GEMM and row kernels
 * over the AVX2 kernels (whose features it therefore needs too); an emulated build
 * needs AVX2's only. An instruction set whose kernels this build did
 * not compile has a NULL fill (docs/kernels.md).
 * A fill may set some dtype combinations only, e.g. AMX-BF16 or
 * AVX512-BF16 kernels just t->sdpa[ATTN__SDPA_BF16] (and mark only those
 * entries in filled_by): the other combinations keep the kernels of the
 * fills before it. */
/* The AMX kernels have run only with their tiles emulated (no AMX CPU
 * where they were written): AUTO leaves them alone until the tests have
 * passed on one; ATTN_KERNEL=amx runs them. */
#define AMX_MANUAL                                                                                  \
    "its kernels have run only with emulated tiles, not yet on an AMX CPU, so auto does not pick " \
    "it; ATTN_KERNEL=amx runs it"

static const isa_entry isas[ATTN__N_ISA] = {
    [ATTN__ISA_PORTABLE] = {.name = "portable", .kernel = ATTN_KERNEL_TILED, .fill = fill_portable},
    [ATTN__ISA_AVX2] = {.name = "avx2", .kernel = ATTN_KERNEL_AVX2, .fill = FILL_AVX2,
                        .not_built = "no AVX2 attention kernels in this build",
                        .n_needs = 3, .needs = {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}},
#if defined(ATTN_AVX512_EMULATED)
    [ATTN__ISA_AVX512] = {.name = "avx512", .kernel = ATTN_KERNEL_AVX512, .fill = FILL_AVX512,
                          .not_built = "no AVX-512 kernels in this build", .n_needs = 3,
                          .needs = {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}},
#else
    [ATTN__ISA_AVX512] = {.name = "avx512", .kernel = ATTN_KERNEL_AVX512, .fill = FILL_AVX512,
                          .not_built = "no AVX-512 kernels in this build", .n_needs = 7,
                          .needs = {ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW, ATTN__CPU_AVX512VL, ATTN__CPU_AVX512DQ,
                                    ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}},
#endif
#if defined(ATTN_AVX512BF16_EMULATED)
    [ATTN__ISA_AVX512BF16] = {.name = "avx512bf16", .kernel = ATTN_KERNEL_AVX512BF16, .fill = FILL_AVX512BF16,
                              .not_built = "no AVX512-BF16 kernels in this build", .n_needs = 3,
                              .needs = {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}},
#else
    [ATTN__ISA_AVX512BF16] = {.name = "avx512bf16", .kernel = ATTN_KERNEL_AVX512BF16, .fill = FILL_AVX512BF16,
                              .not_built = "no AVX512-BF16 kernels in this build", .n_needs = 8,
                              .needs = {ATTN__CPU_AVX512_BF16, ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW,
                                        ATTN__CPU_AVX512VL, ATTN__CPU_AVX512DQ, ATTN__CPU_AVX2, ATTN__CPU_FMA,
                                        ATTN__CPU_F16C}},
#endif
#if defined(ATTN_AMX_EMULATED)
    [ATTN__ISA_AMX] = {.name = "amx", .kernel = ATTN_KERNEL_AMX, .fill = FILL_AMX,
                       .not_built = "no AMX attention kernels in this build", .n_needs = 3,
                       .needs = {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}, .manual = AMX_MANUAL},
#else
    [ATTN__ISA_AMX] = {.name = "amx", .kernel = ATTN_KERNEL_AMX, .fill = FILL_AMX,
                       .not_built = "no AMX attention kernels in this build", .n_needs = 9,
                       .needs = {ATTN__CPU_AMX_TILE, ATTN__CPU_AMX_BF16, ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW,
                                 ATTN__CPU_AVX512VL, ATTN__CPU_AVX512DQ, ATTN__CPU_AVX2, ATTN__CPU_FMA,
                                 ATTN__CPU_F16C},
                       .manual = AMX_MANUAL},
#endif
};

enum { WHY_CAP = 512 };

static struct {
    attn__kernels table[ATTN__N_ISA];
    bool usable[ATTN__N_ISA];
    char why[ATTN__N_ISA][WHY_CAP]; /* why not usable */
    attn__isa best;
} state;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

/* Whether isa e can run here; if not, why[] says what it lacks: features
 * of the CPU or their enabling by the OS, then kernels in this build. */
static bool check_isa(const isa_entry *e, const attn__cpu *cpu, char *why, size_t cap)
{
    size_t n = 0;
    why[0] = '\0';
    for (int x = 0; x < e->n_needs; x++) {
        attn__feature f = e->needs[x];
        if (cpu->has[f] || n >= cap) continue;
        n += (size_t)snprintf(why + n, cap - n, "%s%s (%s)", n == 0 ? "the machine lacks " : ", ",
                              attn__cpu_feature_name(f), cpu->why_not[f]);
    }
    if (e->fill == NULL && n < cap) n += (size_t)snprintf(why + n, cap - n, "%s%s", n == 0 ? "" : "; ", e->not_built);
    return n == 0;
}

static void build(void)
{
    const attn__cpu *cpu = attn__cpu_get();
    for (int i = 0; i < ATTN__N_ISA; i++) {
        state.usable[i] = check_isa(&isas[i], cpu, state.why[i], WHY_CAP);
        if (!state.usable[i]) continue;
        fill_portable(&state.table[i]);
        isas[i].fill(&state.table[i]);
        state.table[i].kernel = isas[i].kernel;
        if (isas[i].manual == NULL) state.best = (attn__isa)i;
    }
}

static void ready(void) { pthread_once(&state_once, build); }

static bool isa_of(attn_kernel k, attn__isa *isa)
{
    for (int i = 0; i < ATTN__N_ISA; i++)
        if (isas[i].kernel == k) {
            *isa = (attn__isa)i;
            return true;
        }
    return false;
}

const attn__kernels *attn__kernels_get(attn_kernel k, char *why, size_t cap)
{
    ready();
    attn__isa isa = state.best;
    if (k == ATTN_KERNEL_REF) isa = ATTN__ISA_PORTABLE;
    if (k != ATTN_KERNEL_AUTO && k != ATTN_KERNEL_REF && !isa_of(k, &isa)) {
        if (why != NULL && cap > 0) snprintf(why, cap, "%d is not an attn_kernel value", (int)k);
        return NULL;
    }
    if (!state.usable[isa]) {
        if (why != NULL && cap > 0) snprintf(why, cap, "%s", state.why[isa]);
        return NULL;
    }
    return &state.table[isa];
}

bool attn__isa_available(attn__isa isa, char *why, size_t cap)
{
    ready();
    if (!state.usable[isa] && why != NULL && cap > 0) snprintf(why, cap, "%s", state.why[isa]);
    return state.usable[isa];
}

const char *attn__isa_manual(attn__isa isa)
{
    return (int)isa >= 0 && isa < ATTN__N_ISA ? isas[isa].manual : NULL;
}

const char *attn__isa_name(attn__isa isa)
{
    return (int)isa >= 0 && isa < ATTN__N_ISA ? isas[isa].name : "?";
}

attn_kernel attn__isa_kernel(attn__isa isa)
{
    return (int)isa >= 0 && isa < ATTN__N_ISA ? isas[isa].kernel : ATTN_KERNEL_AUTO;
}

static const char *const slot_names[] = {
#define SLOT_NAME(id, name) name,
    ATTN__SLOTS(SLOT_NAME)
#undef SLOT_NAME
};

const char *attn__slot_name(attn__slot s)
{
    return (int)s >= 0 && s < ATTN__N_SLOTS ? slot_names[s] : "?";
}

static const char *const dt_names[] = {
#define DT_NAME(id, name) name,
    ATTN__SDPA_DTS(DT_NAME)
#undef DT_NAME
};

const char *attn__sdpa_dt_name(attn__sdpa_dt dt)
{
    return (int)dt >= 0 && dt < ATTN__N_SDPA_DT ? dt_names[dt] : "?";
}

const char *attn_kernel_name(attn_kernel kernel)
{
    static const char *const names[] = {"auto", "ref", "tiled", "avx2", "avx512", "amx", "avx512bf16"};
    return (int)kernel >= 0 && (size_t)kernel < sizeof names / sizeof names[0] ? names[kernel] : "unknown";
}
