/* attn/attn.h - exact scaled-dot-product attention for CPUs, forward and backward.
 *
 * This header is the manual. Everything here is C11 and also compiles as C++.
 *
 *   O = softmax(mask(scale * Q K^T + bias)) V          per batch b and head h
 *
 * Tensors are non-owning views (attn_tensor): a data pointer, a dtype, four
 * dims and four strides in elements. The logical layout of Q, K, V, O is
 * [batch, seq, heads, dim]; any non-negative strides are accepted, so BSHD,
 * BHSD, packed QKV and views into a larger KV cache all work without copies.
 *
 *   Q [B, Sq, Hq,  Dk]     K [B, Sk, Hkv, Dk]     V [B, Sk, Hkv, Dv]
 *   O [B, Sq, Hq,  Dv]     LSE [B, Hq, Sq, 1]  (natural log of the softmax
 *                                                denominator, optional)
 *   Hq % Hkv == 0: query head h reads key/value head h / (Hq / Hkv)
 *   (multi-head Hkv == Hq, grouped-query, multi-query Hkv == 1).
 *
 * The score of query i and key j, in this order (docs/operator.md):
 *   1. s = scale * dot(q_i, k_j); scale defaults to 1/sqrt(Dk).
 *   2. soft-capping if softcap > 0: s = softcap * tanh(s / softcap).
 *   3. additive terms: the float bias tensor, and ALiBi -slope[h] * |i' - j|.
 *   4. masks: causal, sliding window, key and query lengths, boolean mask.
 *      In the boolean mask, NONZERO (true) MEANS ATTEND. (PyTorch's SDPA uses
 *      the same polarity; nn.MultiheadAttention's key_padding_mask is the
 *      opposite.) A bias value at or below -FLT_MAX (-inf, or
 *      torch.finfo(float32).min; in a BF16 or F16 bias only -inf) also
 *      masks its key.
 *   5. softmax over keys. A row with no visible key gives O = 0 and
 *      LSE = -inf, never NaN. Masked keys (K, V, bias entries) are never read.
 *   6. dropout on the probabilities, kept ones scaled by 1/(1-p), with a
 *      keep mask that is a pure function of (seed, offset, b, h, i, j)
 *      (Philox4x32-10), identical in forward, backward and attn_sdpa_weights.
 *
 * i' is the aligned query position: i' = i for ATTN_ALIGN_TOP_LEFT (PyTorch's
 * is_causal), i' = i + Lk - Lq for ATTN_ALIGN_BOTTOM_RIGHT (FlashAttention
 * >= 2.1), where Lq and Lk are batch b's query and key lengths, and
 * i' = i + align_offset for ATTN_ALIGN_OFFSET (a chunk of queries against a
 * chunk of keys of one longer sequence: chunked and ring attention).
 *
 * Long contexts (docs/long-context.md): block-sparse masks (attn_block_mask,
 * params.block_mask) skip the blocks no query sees; packed variable-length
 * batches (params.cu_seqlens_q/k) attend each sequence of a packed tensor on
 * its own.
 *
 * Errors: every function returns an attn_status; on error nothing is written,
 * nothing leaks, and attn_last_error() names the bad argument. The library
 * never exits or aborts on user input.
 */
#ifndef ATTN_H
#define ATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ATTN_API __attribute__((visibility("default")))
#else
#define ATTN_API
#endif

#define ATTN_VERSION_MAJOR 0
#define ATTN_VERSION_MINOR 1
#define ATTN_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH": the version of the library that was loaded (a program
 * may run with a newer library than the header it was compiled with). CMake
 * and the Python package read their versions from the three macros above. */
ATTN_API const char *attn_version(void);

/* ---- status codes ------------------------------------------------------- */

/* X(name, value, description): one table for codes and their strings. */
#define ATTN_STATUS_TABLE(X)                                                  \
    X(OK, 0, "success")                                                       \
    X(NULL_ARG, -1, "a required pointer argument is NULL")                    \
    X(BAD_DIM, -2, "a dimension is negative, or zero where it must not be")   \
    X(SHAPE_MISMATCH, -3, "tensor shapes disagree")                           \
    X(BAD_DTYPE, -4, "unsupported or mismatched dtype")                       \
    X(BAD_STRIDE, -5, "a stride is negative or makes output elements alias")  \
    X(OVERFLOW, -6, "a size computation overflows")                           \
    X(BAD_PARAM, -7, "a scalar parameter is out of range (NaN, Inf, p)")      \
    X(BAD_HEADS, -8, "Hq is not a multiple of Hkv")                           \
    X(BAD_MASK, -9, "a mask or bias does not broadcast to [B, Hq, Sq, Sk]")   \
    X(OVERLAP, -10, "an output buffer overlaps an input or another output")   \
    X(NO_MEMORY, -11, "memory allocation failed")                             \
    X(THREAD, -12, "a thread could not be created")                           \
    X(UNSUPPORTED, -13, "the requested combination is not supported")        \
    X(IO, -14, "a file could not be opened, read or written")                 \
    X(BAD_FILE, -15, "a file is corrupt, truncated or not in the expected format")

typedef enum attn_status {
#define ATTN__STATUS_ENUM(name, value, text) ATTN_##name = value,
    ATTN_STATUS_TABLE(ATTN__STATUS_ENUM)
#undef ATTN__STATUS_ENUM
} attn_status;

/* "ATTN_BAD_DIM" etc.; "ATTN_UNKNOWN" for values outside the table. */
ATTN_API const char *attn_status_name(attn_status s);
/* One-sentence description of the code. Never NULL. */
ATTN_API const char *attn_status_string(attn_status s);
/* Detail of the last failure on the calling thread, naming the function and
 * the argument ("attn_sdpa_forward: q.dim[3] (Dk) is 0; it must be
 * positive"). "" if there was none. */
ATTN_API const char *attn_last_error(void);
/* For code built on attn (the toolkit in attn/nn.h, user layers): records
 * the per-thread detail message, printf-style, and returns s. */
ATTN_API attn_status attn_fail(attn_status s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- memory --------------------------------------------------------------- */

/* All allocations of the library go through these. Pass NULLs to restore
 * malloc/free. Not thread-safe with respect to running calls: set it once,
 * before use (tests use it to inject out-of-memory failures). */
typedef void *(*attn_alloc_fn)(size_t bytes, void *user);
typedef void (*attn_free_fn)(void *ptr, void *user);
ATTN_API void attn_set_allocator(attn_alloc_fn alloc, attn_free_fn release, void *user);
/* Allocation through the hook, for code built on attn: NULL on failure or
 * bytes == 0; attn_calloc zero-fills and checks count * size for overflow;
 * attn_release accepts NULL. */
ATTN_API void *attn_alloc(size_t bytes);
ATTN_API void *attn_calloc(size_t count, size_t size);
ATTN_API void attn_release(void *p);

/* ---- tensors -------------------------------------------------------------- */

/* Element types: X(name, value, bytes), one table for the enum, the names
 * and the sizes. The attention operators take F32, BF16, F16 and F64
 * tensors (F64 runs the double-precision reference kernel) and BOOL masks;
 * the other types appear in files (attn/safetensors.h). F16 is IEEE
 * binary16 and BF16 the high half of a float, both stored as uint16_t. */
#define ATTN_DTYPE_TABLE(X) \
    X(F32, 1, 4)            \
    X(F64, 2, 8)            \
    X(BOOL, 3, 1)           \
    X(F16, 4, 2)            \
    X(BF16, 5, 2)           \
    X(I64, 6, 8)            \
    X(I32, 7, 4)            \
    X(U8, 8, 1)

typedef enum attn_dtype {
#define ATTN__DTYPE_ENUM(name, value, bytes) ATTN_DTYPE_##name = value,
    ATTN_DTYPE_TABLE(ATTN__DTYPE_ENUM)
#undef ATTN__DTYPE_ENUM
} attn_dtype;

/* "F32", "BF16", ... (the safetensors spelling); "?" outside the table. */
ATTN_API const char *attn_dtype_name(attn_dtype d);
/* Bytes of one element; 0 outside the table. */
ATTN_API size_t attn_dtype_size(attn_dtype d);

/* A non-owning strided view. Element (a,b,c,d) lives at
 * data + (a*stride[0] + b*stride[1] + c*stride[2] + d*stride[3]) elements.
 * Strides are >= 0; a zero stride broadcasts an input along that dim. */
typedef struct attn_tensor {
    void *data;
    attn_dtype dtype;
    int64_t dim[4];
    int64_t stride[4];
} attn_tensor;

/* A contiguous (row-major) view of dims d0..d3. */
ATTN_API attn_tensor attn_tensor_make(void *data, attn_dtype dtype, int64_t d0,
                             int64_t d1, int64_t d2, int64_t d3);

/* ---- context ---------------------------------------------------------------- */

typedef struct attn_ctx attn_ctx;

typedef enum attn_kernel {
    ATTN_KERNEL_AUTO = 0,   /* the fastest exact kernels this CPU, its OS and this build allow */
    ATTN_KERNEL_REF = 1,    /* double-precision reference (the test oracle) */
    ATTN_KERNEL_TILED = 2,  /* portable tiled online-softmax kernels (float32 math) */
    ATTN_KERNEL_AVX2 = 3,   /* AVX2+FMA(+F16C) kernels, float32 math (x86-64) */
    ATTN_KERNEL_AVX512 = 4, /* AVX-512 kernels, float32 math (ATTN_UNSUPPORTED without AVX-512F/BW/DQ/VL) */
    ATTN_KERNEL_AMX = 5     /* the AVX-512 kernels with BF16 attention and BF16 dense layers on AMX
                             * tiles (ATTN_UNSUPPORTED without AMX-BF16 and the OS's tile state);
                             * never chosen by AUTO in this release: see docs/kernels.md */,
    ATTN_KERNEL_AVX512BF16 = 6 /* the AVX-512 kernels with BF16 attention's Q K^T and dO V^T and BF16
                                * dense layers on AVX512-BF16 dot products (ATTN_UNSUPPORTED without
                                * AVX512-BF16); AUTO picks it over AVX512 */
} attn_kernel;

/* A context owns a thread pool of n_threads (>= 1; 0 means the number of
 * online CPUs) and the kernel choice. One context must not run two calls at
 * once; use one context per calling thread. The environment variable
 * ATTN_KERNEL=ref|tiled|avx2|avx512|avx512bf16|amx|auto sets the initial choice (unset
 * or empty: auto); any other value makes attn_ctx_create fail with
 * ATTN_BAD_PARAM naming the variable, and a choice this CPU, its OS or this
 * build cannot run with ATTN_UNSUPPORTED naming what is missing (a feature
 * of the CPU, its enabling by the OS, or the kernels in the build).
 * attn_ctx_set_kernel makes the same checks: forcing AVX2, AVX512, AVX512BF16 or AMX on
 * a CPU, OS or build without what it needs is ATTN_UNSUPPORTED. */
ATTN_API attn_status attn_ctx_create(int n_threads, attn_ctx **out);
ATTN_API void attn_ctx_free(attn_ctx *ctx); /* accepts NULL */
/* A context keeps the large buffers of its calls (workspaces, packed K and
 * V, partial sums; up to 8 of 32 MiB or more) for its next calls, so that
 * repeated calls of the same shapes do not map and fault in fresh memory
 * each time; one unused while 64 others were taken is freed. attn_ctx_trim
 * frees them now (attn_ctx_free does too); accepts NULL. */
ATTN_API void attn_ctx_trim(attn_ctx *ctx);
ATTN_API int attn_ctx_threads(const attn_ctx *ctx);
ATTN_API attn_status attn_ctx_set_kernel(attn_ctx *ctx, attn_kernel kernel);
ATTN_API attn_kernel attn_ctx_kernel(const attn_ctx *ctx);
/* The kernels an F32, BF16 or F16 call on this context runs (TILED, AVX2,
 * AVX512, AVX512BF16 or AMX; REF when forced), resolving AUTO from the CPU.
 * An instruction set's table keeps the kernels of the ones below it for
 * the dtypes it has none of (attn_ctx_describe names each slot's). */
ATTN_API attn_kernel attn_ctx_resolved_kernel(const attn_ctx *ctx);
/* "auto", "ref", "tiled", "avx2", "avx512", "amx", "avx512bf16"; "unknown" otherwise. */
ATTN_API const char *attn_kernel_name(attn_kernel kernel);
/* A few lines of text: the CPU (its CPUID brand string), the features
 * attn looks for with the reason each absent one is absent, the kernel
 * choice of ctx, and for every kernel slot (sdpa.forward, ...) the
 * instruction set that runs it and why. Writes the text and its NUL into
 * buf [cap] and its length (without the NUL) into *len. buf NULL and cap 0
 * is a size query: only *len is written. ATTN_BAD_DIM if cap < *len + 1
 * (nothing is written). */
ATTN_API attn_status attn_ctx_describe(const attn_ctx *ctx, char *buf, size_t cap, size_t *len);

/* ---- scaled dot-product attention --------------------------------------- */

typedef enum attn_align {
    ATTN_ALIGN_TOP_LEFT = 0,     /* i' = i (PyTorch is_causal) */
    ATTN_ALIGN_BOTTOM_RIGHT = 1, /* i' = i + Lk - Lq (FlashAttention >= 2.1) */
    ATTN_ALIGN_OFFSET = 2        /* i' = i + params.align_offset */
} attn_align;

/* ---- block-sparse masks ------------------------------------------------------ */

/* A block mask (the BlockMask of PyTorch's FlexAttention) cuts the Sq x Sk
 * scores of each (batch, head) into blocks of block_q queries x block_k keys
 * and lists, per query block, the key blocks that are FULL (every element
 * visible: no per-element mask work at all) and those that are PARTIAL (the
 * mask's element rule decides each element); every other block is EMPTY,
 * and no kernel visits it (its K, V and bias are never read). Passed as
 * params.block_mask, it is one more mask: a key is visible only if the
 * block mask and every other option (causal, window, lengths, boolean mask,
 * bias) let it through. The kernels work in their own tiles, which may
 * straddle blocks: a tile is skipped if all its blocks are EMPTY, computed
 * without per-element work if all are FULL, and masked per element
 * otherwise (any block sizes >= 1 work; sizes that are multiples of 64
 * waste least). The float64 reference evaluates the mask's definition
 * (the function, the pattern's formula) for every element instead, so the
 * tests check the layout against the definition. docs/long-context.md.
 *
 * A mask covers n_batch x n_heads layouts: n_batch is 1 (one layout for
 * every batch b; the element rule then sees b = 0) or B, and n_heads 1 (h
 * = 0 for every head) or Hq. At a call its seq_q and seq_k must equal Sq
 * and Sk, n_batch be 1 or B and n_heads 1 or Hq, else ATTN_BAD_MASK. A mask
 * is immutable and may be shared by calls on any number of threads. */
typedef struct attn_block_mask attn_block_mask;

/* Element rule of a mask: nonzero if query i may see key j in head h of
 * batch b. It must be a pure function: the kernels call it again for the
 * elements of PARTIAL blocks, from any of the context's threads. */
typedef int (*attn_mask_fn)(int64_t b, int64_t h, int64_t i, int64_t j, void *user);

typedef struct attn_block_mask_shape {
    int64_t n_batch, n_heads; /* 1 (shared) or B, Hq */
    int64_t seq_q, seq_k;     /* Sq, Sk (>= 0) */
    int64_t block_q, block_k; /* >= 1; the last block of a row or column may be short */
} attn_block_mask_shape;

/* From an element rule. Build rule: every element of every block is
 * evaluated exactly once (n_batch * n_heads * seq_q * seq_k calls, on the
 * calling thread); a block is FULL if fn is nonzero on all its elements,
 * EMPTY if on none, PARTIAL otherwise. The kernels call fn again only inside
 * PARTIAL blocks. fn and user are kept by the mask: user must outlive it. */
ATTN_API attn_status attn_block_mask_from_fn(const attn_block_mask_shape *shape, attn_mask_fn fn,
                                             void *user, attn_block_mask **out);

/* From explicit lists (FlexAttention's kv_num_blocks / kv_indices and their
 * full_ twins). Layout row r = (b * n_heads + h) * n_qblocks + qb, with
 * n_qblocks = ceil(seq_q / block_q), n_kblocks = ceil(seq_k / block_k):
 * row r has partial_count[r] PARTIAL key blocks, listed in partial_idx
 * after those of rows 0 .. r-1, and full_count[r] FULL ones in full_idx.
 * Each list must be strictly increasing (sorted, no duplicate) with
 * entries in [0, n_kblocks), and no block may be in both lists of a row:
 * else ATTN_BAD_MASK naming the entry. fn (with user) is the element rule
 * inside PARTIAL blocks; it may be NULL only if no block is PARTIAL. The
 * arrays are copied. */
typedef struct attn_block_layout {
    attn_block_mask_shape shape;
    const int64_t *partial_count, *partial_idx;
    const int64_t *full_count, *full_idx;
} attn_block_layout;
ATTN_API attn_status attn_block_mask_from_layout(const attn_block_layout *layout, attn_mask_fn fn,
                                                 void *user, attn_block_mask **out);

/* Named patterns, built without any callback. With p = i + q_offset (the
 * key position of query i) the element rules are:
 *   DOCUMENTS   doc_q[b][i] == doc_k[b][j]      (packed documents; ids any int64)
 *   PREFIX_LM   j < prefix[b]  or  j <= p       (bidirectional prefix, causal rest)
 *   LONGFORMER  p - window_left <= j <= p + window_right (-1: unbounded side),
 *               or p or j is one of the global positions
 *   BIGBIRD     block-level, with qb = i / block_q, kb = j / block_k
 *               (block_q == block_k): |qb - kb| <= window_blocks, or
 *               qb < global_blocks or kb < global_blocks, or kb is one of
 *               the random_blocks key blocks drawn for (h, qb) from seed
 *               (Philox4x32-10; distinct; per head when n_heads > 1)
 *   DILATED     (p - j) % dilation == 0 and -window_right * dilation <= p - j
 *               <= window_left * dilation (-1: unbounded side)
 *   CHUNKED     p / chunk == j / chunk           (chunked local attention)
 * Every array is copied. Causal, lengths and the rest stay in
 * attn_sdpa_params (PREFIX_LM is the one pattern with its causal part). */
typedef enum attn_block_pattern_kind {
    ATTN_BLOCK_PATTERN_DOCUMENTS = 1,
    ATTN_BLOCK_PATTERN_PREFIX_LM = 2,
    ATTN_BLOCK_PATTERN_LONGFORMER = 3,
    ATTN_BLOCK_PATTERN_BIGBIRD = 4,
    ATTN_BLOCK_PATTERN_DILATED = 5,
    ATTN_BLOCK_PATTERN_CHUNKED = 6
} attn_block_pattern_kind;

typedef struct attn_block_pattern {
    attn_block_pattern_kind kind;
    int64_t q_offset;              /* all but DOCUMENTS and BIGBIRD */
    const int64_t *doc_q, *doc_k;  /* DOCUMENTS: [n_batch, seq_q], [n_batch, seq_k] (NULL: doc_q) */
    const int64_t *prefix;         /* PREFIX_LM: [n_batch], each >= 0 */
    int64_t window_left, window_right; /* LONGFORMER, DILATED: >= 0 or -1 */
    const int64_t *global;         /* LONGFORMER: n_global key positions in [0, seq_k) */
    int64_t n_global;
    int64_t dilation;              /* DILATED: >= 1 */
    int64_t chunk;                 /* CHUNKED: >= 1 */
    int64_t window_blocks, global_blocks, random_blocks; /* BIGBIRD: >= 0 */
    uint64_t seed;                 /* BIGBIRD */
} attn_block_pattern;

/* kind set, every other field 0 but the windows (-1) and dilation, chunk (1). */
ATTN_API attn_block_pattern attn_block_pattern_default(attn_block_pattern_kind kind);
/* ATTN_BAD_PARAM naming the field for a value out of range. */
ATTN_API attn_status attn_block_mask_from_pattern(const attn_block_mask_shape *shape,
                                                  const attn_block_pattern *pattern,
                                                  attn_block_mask **out);

/* Combination: AND (intersection: visible where both are) or OR (union).
 * a and b must agree on seq_q, seq_k, block_q and block_k (ATTN_BAD_MASK
 * otherwise); n_batch and n_heads broadcast (1 against B). A block of the
 * result is FULL only where AND has two FULL blocks or OR at least one,
 * EMPTY where AND has one EMPTY block or OR two, PARTIAL elsewhere; inside
 * PARTIAL blocks each operand's rule is applied. The result is a new mask
 * that copies what it needs: a and b may be freed at once. */
typedef enum attn_block_mask_op { ATTN_BLOCK_MASK_OP_AND = 1, ATTN_BLOCK_MASK_OP_OR = 2 } attn_block_mask_op;
ATTN_API attn_status attn_block_mask_combine(const attn_block_mask *a, const attn_block_mask *b,
                                             attn_block_mask_op op, attn_block_mask **out);
ATTN_API void attn_block_mask_free(attn_block_mask *m); /* accepts NULL */

/* The mask's shape; all zero for NULL. */
ATTN_API attn_block_mask_shape attn_block_mask_get_shape(const attn_block_mask *m);
/* Number of FULL (full != 0) or PARTIAL blocks over all its layouts; -1 for NULL. */
ATTN_API int64_t attn_block_mask_n_blocks(const attn_block_mask *m, int full);
/* Kind of block (qb, kb) of layout (b, h) (b, h taken modulo 1 when
 * shared): 0 EMPTY, 1 PARTIAL, 2 FULL; -1 for NULL or indices out of range. */
ATTN_API int attn_block_mask_kind(const attn_block_mask *m, int64_t b, int64_t h, int64_t qb, int64_t kb);

/* Options of one call. Start from attn_sdpa_params_default(); every field
 * left at its default is off. The attn_sdpa_ calls accept params == NULL
 * and then use the defaults. */
typedef struct attn_sdpa_params {
    int has_scale;  /* 0: scale = 1/sqrt(Dk) */
    double scale;   /* any finite value, negative allowed */
    double softcap; /* 0: off; otherwise finite and > 0 */

    int causal;       /* key j visible only if j <= i' */
    attn_align align; /* alignment of causal, window and ALiBi */
    /* Sliding window: key j visible only if i'-left <= j <= i'+right.
     * -1 means unbounded on that side. */
    int64_t window_left, window_right;

    /* Per-batch lengths, arrays of B entries or NULL (= Sq, Sk). Query rows
     * i >= q_lens[b] are padding: O = 0, LSE = -inf, zero gradients. Keys
     * j >= k_lens[b] are masked. 0 <= q_lens[b] <= Sq, 0 <= k_lens[b] <= Sk. */
    const int64_t *q_lens;
    const int64_t *k_lens;

    /* Additive bias [B|1, Hq|1, Sq|1, Sk|1], of Q's dtype, or F32 when Q is
     * BF16 or F16. A dim of 1 (or a zero stride) broadcasts. NULL: none. */
    const attn_tensor *bias;
    /* Boolean mask [B|1, Hq|1, Sq|1, Sk|1], ATTN_DTYPE_BOOL. NONZERO MEANS ATTEND.
     * NULL: none. */
    const attn_tensor *mask;
    /* ALiBi slopes, Hq finite doubles: adds -alibi_slopes[h] * |i' - j|. */
    const double *alibi_slopes;

    /* Dropout on the attention probabilities, 0 <= p < 1. The keep mask is
     * Philox4x32-10 of (seed, offset, b, h, i, j); see docs/operator.md. */
    double dropout_p;
    uint64_t seed;
    uint64_t offset;

    /* With align = ATTN_ALIGN_OFFSET: i' = i + align_offset (any value). */
    int64_t align_offset;
    /* Block-sparse mask (above), or NULL. */
    const attn_block_mask *block_mask;

    /* Packed variable-length batch (FlashAttention's cu_seqlens), or NULL:
     * Q [1, Tq, Hq, Dk], K [1, Tk, Hkv, Dk], V [1, Tk, Hkv, Dv], O and dO
     * [1, Tq, Hq, Dv], LSE [1, Hq, Tq, 1]; n_seqs sequences, sequence s
     * holding the queries cu_seqlens_q[s] .. cu_seqlens_q[s+1]-1 and the
     * keys cu_seqlens_k[s] .. cu_seqlens_k[s+1]-1 (cu_seqlens_k NULL: the
     * query offsets, and Tk must equal Tq). Each sequence is attended on its
     * own as batch entry s of lengths Lq_s, Lk_s: causal, window and ALiBi
     * align within it, dropout draws with b = s and i, j counted from the
     * sequence's start, so the result equals that of the same sequences
     * padded into a batch of n_seqs with q_lens, k_lens; the work is
     * sum Lq_s * Lk_s. The offsets (n_seqs + 1 each) must start at 0, never
     * decrease and end at Tq (Tk), and q.dim[0] be 1: else ATTN_BAD_PARAM,
     * as for q_lens or k_lens beside them. Bias, mask and block_mask are
     * ATTN_UNSUPPORTED with them. attn_sdpa_weights: rows index the packed
     * queries; w is [1, n_heads, n_rows, Tk], 0 outside the row's
     * sequence. */
    int64_t n_seqs;
    const int64_t *cu_seqlens_q, *cu_seqlens_k;
} attn_sdpa_params;

ATTN_API attn_sdpa_params attn_sdpa_params_default(void);

/* Forward. Writes O and, if lse is not NULL, LSE [B, Hq, Sq, 1].
 * Dtypes (docs/operator.md): Q, K, V and O share one of F32, BF16, F16 (the
 * context's kernels, computing in float32: scores, softmax, LSE and every
 * accumulator; half tensors are converted when loaded and O rounded to
 * nearest even when stored) or F64 (the reference kernel). LSE is F32 (F64
 * in an F64 call). The mixed decode: F32 Q and O over a BF16 or F16 K and
 * V (a half-precision KV cache), forward only. Any other combination is
 * ATTN_BAD_DTYPE naming the tensor and the dtypes.
 * Outputs must not overlap inputs or each other (ATTN_OVERLAP).
 * Sq, Sk, B or heads = 0 are valid; Dk or Dv = 0 is ATTN_BAD_DIM. */
ATTN_API attn_status attn_sdpa_forward(attn_ctx *ctx, const attn_tensor *q,
                              const attn_tensor *k, const attn_tensor *v,
                              const attn_sdpa_params *params, attn_tensor *o,
                              attn_tensor *lse);

/* Backward. Needs the forward's O and LSE, and dO [B, Sq, Hq, Dv]. Writes
 * dQ, dK, dV (shapes of Q, K, V) and, if dbias is not NULL, the gradient of
 * params->bias with the bias's dims and dtype (broadcast dims are summed).
 * Q, K, V, O, dO and the gradients share one dtype (F32, BF16, F16 or
 * F64); LSE as in the forward; no mixed dtypes. Deterministic: bitwise
 * identical across runs and thread counts. */
ATTN_API attn_status attn_sdpa_backward(attn_ctx *ctx, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v,
                               const attn_tensor *o, const attn_tensor *d_o,
                               const attn_tensor *lse,
                               const attn_sdpa_params *params, attn_tensor *dq,
                               attn_tensor *dk, attn_tensor *dv,
                               attn_tensor *dbias);

/* Exact attention probabilities recomputed from Q, K and the forward's LSE,
 * for the chosen heads and query rows only (no Sq x Sk buffer otherwise).
 * heads: n_heads indices in [0, Hq), or NULL for all Hq heads.
 * rows:  n_rows indices in [0, Sq), or NULL for all Sq rows.
 * w: [B, n_heads, n_rows, Sk], of Q's dtype (Q and K share one; LSE as in
 * the forward).
 * with_dropout != 0 gives the weights actually applied to V (dropped entries
 * 0, kept ones scaled by 1/(1-p)); 0 gives the softmax before dropout. */
ATTN_API attn_status attn_sdpa_weights(attn_ctx *ctx, const attn_tensor *q,
                              const attn_tensor *k, const attn_tensor *lse,
                              const attn_sdpa_params *params,
                              const int64_t *heads, int64_t n_heads,
                              const int64_t *rows, int64_t n_rows,
                              int with_dropout, attn_tensor *w);

/* ---- counter-based random numbers ------------------------------------------ */

/* Philox4x32-10 (Salmon et al., SC'11; the Random123 reference):
 * out = philox(ctr, key). Exposed for tests and for users who want to
 * reproduce the dropout mask. */
ATTN_API void attn_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                        uint32_t out[4]);

/* The dropout keep decision used by every kernel: 1 if element (b, h, i, j)
 * is kept. p in [0, 1). */
ATTN_API int attn_dropout_keep(uint64_t seed, uint64_t offset, double p, int64_t b,
                      int64_t h, int64_t i, int64_t j, int64_t n_heads);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_H */
