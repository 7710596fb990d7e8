/* table.h - the kernel table: one slot per operator that has fast
 * variants, each a set of function pointers with the tile sizes and
 * workspace sizes that go with them; the attention slots have one entry
 * per dtype combination of a call (attn__sdpa_dt). The portable kernels
 * fill every slot;
 * the best instruction set the CPU, the OS and this build allow then
 * overrides the slots it has variants of. table.c decides, once, at run
 * time; the operators (src/ops) call kernels only through a table (the
 * float64 reference, the oracle, is not in it: F64 tensors and
 * ATTN_KERNEL_REF run it directly).
 *
 * Adding an instruction set touches its kernel files, table.c and the list
 * of kernel files in CMakeLists.txt, nothing else (docs/kernels.md). */
#ifndef ATTN_KERNELS_TABLE_H
#define ATTN_KERNELS_TABLE_H

#include "core/check.h"
#include "core/toolkit_kernels.h"
#include "kernels/quant_kernels.h"
#include "kernels/score_kernels.h"
#include "kernels/sdpa_kernels.h"

#include <stddef.h>

/* The instruction sets a slot can be filled by, in the order they are
 * preferred (the last available one wins). */
typedef enum attn__isa {
    ATTN__ISA_PORTABLE,
    ATTN__ISA_AVX2,
    ATTN__ISA_AVX512,
    ATTN__ISA_AVX512BF16,
    ATTN__ISA_AMX,
    ATTN__N_ISA
} attn__isa;

/* X(id, name): the slots, in the order the description lists them. */
#define ATTN__SLOTS(X)                   \
    X(SDPA_FORWARD, "sdpa.forward")      \
    X(SDPA_DECODE, "sdpa.decode")        \
    X(SDPA_WEIGHTS, "sdpa.weights")      \
    X(SDPA_DELTA, "sdpa.delta")          \
    X(SDPA_DKDV, "sdpa.dkdv")            \
    X(SDPA_DQ, "sdpa.dq")                \
    X(SDPA_FUSED, "sdpa.fused_bwd")      \
    X(SCORE_ADDITIVE, "score.additive")  \
    X(SCORE_PROJ, "score.proj")          \
    X(GEMM, "nn.gemm")                   \
    X(GEMM_BF16, "nn.gemm_bf16")         \
    X(LAYERNORM_ROW, "nn.layernorm_row") \
    X(GELU_ROW, "nn.gelu_row")           \
    X(SOFTMAX_ROW, "nn.softmax_row")     \
    X(SWIGLU_ROW, "nn.swiglu_row")       \
    X(QUANT_MATMUL, "quant.matmul")

typedef enum attn__slot {
#define ATTN__SLOT_ENUM(id, name) ATTN__SLOT_##id,
    ATTN__SLOTS(ATTN__SLOT_ENUM)
#undef ATTN__SLOT_ENUM
    ATTN__N_SLOTS
} attn__slot;

/* The attention slots (sdpa.*) come first; they have a dtype dimension. */
static inline bool attn__slot_is_sdpa(attn__slot s) { return s <= ATTN__SLOT_SDPA_FUSED; }

/* X(id, name): the dtype combinations of an attention call, the second
 * dimension of the sdpa.* slots. Every tensor F32, BF16 or F16 (LSE is
 * F32), or the mixed decode: F32 Q and O against a BF16 or F16 K and V,
 * forward only. (F64 runs the reference, which is not in the table.) */
#define ATTN__SDPA_DTS(X)           \
    X(F32, "f32")                   \
    X(BF16, "bf16")                 \
    X(F16, "f16")                   \
    X(F32_BF16KV, "f32+bf16kv")     \
    X(F32_F16KV, "f32+f16kv")

typedef enum attn__sdpa_dt {
#define ATTN__SDPA_DT_ENUM(id, name) ATTN__SDPA_##id,
    ATTN__SDPA_DTS(ATTN__SDPA_DT_ENUM)
#undef ATTN__SDPA_DT_ENUM
    ATTN__N_SDPA_DT
} attn__sdpa_dt;

/* Whether slot s has an entry for dtype combination dt: the mixed ones
 * have the forward slots only. */
static inline bool attn__slot_has_dt(attn__slot s, attn__sdpa_dt dt)
{
    if (!attn__slot_is_sdpa(s)) return dt == ATTN__SDPA_F32;
    return dt < ATTN__SDPA_F32_BF16KV || s == ATTN__SLOT_SDPA_FORWARD || s == ATTN__SLOT_SDPA_DECODE;
}

/* Workspace of a kernel in floats per worker, from the problem. */
typedef int64_t (*attn__ws_fn)(const attn__sdpa *p);

/* ---- scaled dot-product attention (problem: kernels/sdpa_kernels.h) ------- */

typedef struct {
    int64_t tile_q; /* query rows per block, at most */
    attn__ws_fn ws;
    /* O and LSE of query rows i0 .. i0+nq-1 (nq <= tile_q) of head (b, h). */
    void (*block)(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws);
    /* Optional (NULL: none): K and V converted once per call instead of once
     * per query block. pack_bytes(p) bytes per key tile of pack_tile keys;
     * pack(p, b, hkv, t, dst) writes tile t of kv head (b, hkv). The driver
     * fills tiles (b, hkv, t) in that order, one after another, and passes
     * them to the blocks as p->kv_packed; it may also call the blocks with
     * kv_packed NULL. */
    int64_t pack_tile;
    bool pack_strided_only; /* pack only when a head's K or V rows are not adjacent ([B, S, H, D]) */
    int64_t (*pack_bytes)(const attn__sdpa *p);
    void (*pack)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);
} attn__k_forward;

/* A few query rows per kv head against many keys: keys split in chunks of
 * `split`, online softmax per chunk into partials (layout in
 * sdpa_kernels.h), then a fixed-order merge. Taken when a kv head has at
 * most max_rows rows (query heads of a group x queries) and Sk >= 2 split. */
typedef struct {
    int64_t max_rows, split;
    attn__ws_fn ws;
    void (*split_fn)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split,
                     float *part, float *ws);
    /* Optional (NULL: none): split s of every kv head of batch b at once,
     * head hkv's partials at part + hkv * head_stride (the cache read in the
     * order of its layout); false, with nothing written, for a problem it
     * does not take (then split_fn runs per kv head). */
    bool (*heads)(const attn__sdpa *p, int64_t b, int64_t s, int64_t split, float *part, int64_t head_stride,
                  float *ws);
    void (*merge)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t n_splits,
                  const float *parts);
} attn__k_decode;

/* Probabilities of row (b, h, i) into out[Sk], from the LSE. Workspace: the
 * row itself. */
typedef struct {
    void (*row)(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, bool with_dropout,
                float *out);
} attn__k_weights;

/* delta = rowsum(dO * O) of query block qb of head (b, h) into delta [Sq]. */
typedef struct {
    int64_t tile_q;
    void (*block)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *delta);
} attn__k_delta;

/* dK, dV of key block kb of kv head (b, hkv); delta [B, Hq, Sq]. */
typedef struct {
    int64_t tile_k;
    attn__ws_fn ws;
    void (*block)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, const float *delta,
                  float *ws);
} attn__k_dkdv;

/* dQ of query block qb of head (b, h), and the bias gradient of its rows
 * when dbias has the full [B, Hq, Sq, Sk] shape (write_dbias). */
typedef struct {
    int64_t tile_q;
    attn__ws_fn ws;
    void (*block)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, const float *delta,
                  bool write_dbias, float *ws);
} attn__k_dq;

/* dK, dV and dQ of kv head (b, hkv), or of a share of it, in one walk over
 * the key tiles: the S and dP tiles computed once (5 GEMMs, not the two
 * passes' 7). The driver uses it when B * Hkv >= min_kv_heads, and with
 * fewer kv heads when splitting them into shares (src/ops/sdpa.c) makes
 * at least min_kv_heads tasks. */
typedef struct {
    int64_t min_kv_heads;
    attn__ws_fn ws;
    void (*kvhead)(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part, const float *delta,
                   float *ws);
} attn__k_fused;

/* ---- learned-score attention (problem: kernels/score_kernels.h) ----------- */

/* The chunked float32 kernel of the tanh kinds (ADDITIVE, LUONG_CONCAT). */
typedef struct {
    int64_t tile_q, tile_k, groups; /* query rows per task, keys per chunk, key-chunk groups */
    int64_t (*ws)(const attn__score *p); /* floats per worker; -1 on overflow */
    void (*forward_block)(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                          int64_t qb, float *ws);
    void (*weights_block)(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                          int64_t qb, bool with_dropout, const attn_tensor *w, float *ws);
    void (*delta_head)(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h);
    void (*backward_group)(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                           int64_t g, float *ws);
    void (*reduce_dpq)(const attn__score *p, const attn__score_bufs *s, int64_t b, int64_t h,
                       int64_t qb);
} attn__k_score;

/* The projections of every kind (kernels/score_kernels.h describes each). */
typedef struct {
    int64_t rows; /* rows per projection task */
    void (*pack)(const attn_tensor *t, int64_t h, bool transpose, float *dst);
    void (*linear_rows)(const attn__score_linear *L, int64_t H, int64_t b, int64_t h, int64_t s0,
                        int64_t n, float *ws);
    void (*linear_dx_rows)(const attn__score_linear *L, const float *w, int64_t H, int64_t b,
                           int64_t h, int64_t s0, int64_t n, float *ws);
    void (*linear_dw_rows)(const attn__score_linear *L, int64_t B, int64_t H, int64_t h, int64_t r0,
                           int64_t n, float *ws);
    void (*gscale_rows)(const attn__score *p, const float *g, float *qs, int64_t b, int64_t h,
                        int64_t i0, int64_t n);
    void (*gscale_dq_rows)(const attn__score *p, const float *g, const float *dqs, int64_t b,
                           int64_t h, int64_t i0, int64_t n);
    void (*dg_head)(const attn__score *p, const float *dqs, int64_t h);
} attn__k_score_proj;

/* ---- quantized matrix products (problem: kernels/quant_kernels.h) ------- */

/* The outputs of rows [i0, i1) of x and columns [j0, j1) of matrix m. */
typedef void (*attn__quant_fn)(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1,
                               int64_t j0, int64_t j1, float *ws);

/* Below min_rows rows of x, `few` runs tasks of all the rows by a
 * contiguous run of at least few_cols columns (a GEMV; src/ops/quant.c
 * sizes the runs); from min_rows on, `many` runs tasks of at most many_rows
 * rows, a multiple of row_step (its register tile's rows), by many_cols
 * columns (a GEMM). few_xsum: `few` reads in->xsum (Q4_1). */
typedef struct {
    int64_t min_rows, few_cols, many_rows, many_cols, row_step;
    bool few_xsum;
    int64_t (*ws)(int64_t K, bool many); /* floats per worker */
    attn__quant_fn few, many;
} attn__k_quant;

/* ---- the toolkit's dense and row kernels: core/toolkit_kernels.h ------- */

/* ---- the table ------------------------------------------------------------- */

/* Optional (members NULL: none): the backward's inputs converted once per
 * call instead of once per block. kv_bytes(p) bytes per key tile of
 * dkdv.tile_k keys, kv(p, b, hkv, t, dst) writes tile t of kv head (b,
 * hkv), for the dQ blocks; q_bytes(p) per query block of dq.tile_q rows,
 * q(p, b, h, qb, dst) block qb of head (b, h) (after the forward: it may
 * read LSE), for the dK/dV blocks and the fused pass. The driver lays the
 * records out one after another in that index order and passes them as
 * p->bwd_kv_packed and p->bwd_q_packed; the blocks accept NULL. */
typedef struct {
    int64_t (*kv_bytes)(const attn__sdpa *p);
    void (*kv)(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t t, void *dst);
    int64_t (*q_bytes)(const attn__sdpa *p);
    void (*q)(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, void *dst);
} attn__k_bwd_pack;

/* The sdpa.* slots of one dtype combination (a mixed one: forward and
 * decode only, the others NULL). */
typedef struct attn__sdpa_kernels {
    attn__k_forward forward;
    attn__k_decode decode;
    attn__k_weights weights;
    attn__k_delta delta;
    attn__k_dkdv dkdv;
    attn__k_dq dq;
    attn__k_fused fused;
    attn__k_bwd_pack bwd_pack;
} attn__sdpa_kernels;

typedef struct attn__kernels {
    attn_kernel kernel; /* the choice this table implements: TILED, AVX2, ... */
    attn__sdpa_kernels sdpa[ATTN__N_SDPA_DT];
    attn__k_score score;
    attn__k_score_proj score_proj;
    attn__toolkit_kernels nn; /* nn.gemm, nn.*_row */
    attn__k_quant quant;
    /* which instruction set filled each slot, per dtype combination (the
     * score and nn slots: column F32 only) */
    attn__isa filled_by[ATTN__N_SLOTS][ATTN__N_SDPA_DT];
} attn__kernels;

/* The table a float32 call runs with for kernel choice k (TILED, AVX2,
 * AVX512, AMX, or AUTO: the best available), built once. On a choice this
 * CPU, OS or build cannot run: NULL, and why[] (if not NULL) says what is
 * missing ("the machine lacks avx512f (not in the CPU), ...; no AVX-512
 * attention kernels in this build"). REF gets the portable table (the
 * toolkit slots; SDPA and score calls run the reference instead). */
const attn__kernels *attn__kernels_get(attn_kernel k, char *why, size_t cap);

/* "sdpa.forward", ...; "?" outside the enumeration. */
const char *attn__slot_name(attn__slot s);
/* "f32", "bf16", "f16", "f32+bf16kv", "f32+f16kv"; "?" outside the enumeration. */
const char *attn__sdpa_dt_name(attn__sdpa_dt dt);
/* "portable", "avx2", "avx512", "avx512bf16", "amx". */
const char *attn__isa_name(attn__isa isa);
/* The attn_kernel value that forces instruction set isa (TILED for portable). */
attn_kernel attn__isa_kernel(attn__isa isa);
/* Whether isa can run here; if not, why[] says what is missing. */
bool attn__isa_available(attn__isa isa, char *why, size_t cap);
/* Why AUTO never picks isa (it runs only when forced), or NULL. */
const char *attn__isa_manual(attn__isa isa);

/* The text of attn_ctx_describe for kernel choice k (describe.c): written
 * into buf [cap] with its NUL when buf is not NULL and it fits; returns its
 * length without the NUL. */
size_t attn__kernels_describe(attn_kernel k, char *buf, size_t cap);

#endif /* ATTN_KERNELS_TABLE_H */
