/* attn/dist.h - ring attention over MPI (libattn_dist): one sequence split
 * across the P ranks of a communicator, exact.
 *
 * Each rank holds 1/P of the rows of Q, K and V ([B, L, H, D] with
 * L = S / P). Forward: the K/V rows travel around the ring (rank r sends to
 * r + 1 and receives from r - 1 with MPI_Isend/MPI_Irecv, overlapped with
 * the attention of the local queries against the rows it holds), and the
 * P partial results merge by their log-sum-exp. Backward: with the
 * forward's O and LSE, each rank adds dQ of its queries, and the dK/dV
 * partials of the travelling rows travel with them until they are back
 * with their owner. docs/long-context.md has the algorithm and a scaling
 * model.
 *
 * Splits: CONTIGUOUS (rank r holds rows [r L, (r + 1) L)) or ZIGZAG (S in
 * 2P chunks of c = S / 2P; rank r holds chunk r then chunk 2P-1-r, so under
 * a causal mask every rank has the same work). attn_ring_rows says which.
 *
 * Options (params.sdpa): scale, softcap, ALiBi, causal (the one sequence's
 * own alignment: query i sees key j <= i), window, and k_lens (per batch
 * entry, over the whole sequence); params.doc_ids adds document masking
 * (packed documents: query i sees key j only with the same id). Bias,
 * mask, block_mask, dropout, q_lens, packed batches and other alignments
 * are ATTN_UNSUPPORTED. The result on each rank equals (within float
 * rounding) its rows of one attn_sdpa_forward / attn_sdpa_backward over
 * the whole sequence.
 *
 * Every rank must call with the same shapes and options: a digest of them
 * is compared (MPI_Allreduce) before any data moves, and on disagreement,
 * or when any rank's arguments are invalid, every rank returns an error
 * (ATTN_BAD_PARAM "ranks disagree", or the bad rank its own error) and
 * nothing is written. A failed MPI call is ATTN_IO. */
#ifndef ATTN_DIST_H
#define ATTN_DIST_H

#include <mpi.h>

#include "attn/attn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum attn_ring_split { ATTN_RING_CONTIGUOUS = 0, ATTN_RING_ZIGZAG = 1 } attn_ring_split;

typedef struct attn_ring_params {
    attn_sdpa_params sdpa;  /* the options above; the rest must stay at their defaults */
    attn_ring_split split;
    int64_t seq_len;        /* S: P divides it (CONTIGUOUS), 2P divides it (ZIGZAG) */
    const int64_t *doc_ids; /* [B, L]: this rank's rows' document ids, or NULL */
} attn_ring_params;

/* What a call did on this rank. */
typedef struct attn_ring_stats {
    int64_t bytes_sent; /* payload bytes this rank sent */
    int64_t pairs;      /* (query chunk, key chunk) products computed */
    int64_t skipped;    /* products skipped: every key masked for every query */
} attn_ring_stats;

ATTN_API attn_ring_params attn_ring_params_default(void);

/* The global rows rank `rank` of n_ranks holds: *n_chunks (1 or 2) chunks
 * of *chunk rows starting at start[0] (and start[1]). */
ATTN_API attn_status attn_ring_rows(int64_t seq_len, int n_ranks, int rank, attn_ring_split split,
                                    int64_t start[2], int64_t *n_chunks, int64_t *chunk);

/* q [B, L, Hq, Dk], k [B, L, Hkv, Dk], v [B, L, Hkv, Dv] (this rank's rows),
 * o [B, L, Hq, Dv], lse [B, Hq, L, 1] or NULL. stats may be NULL. */
ATTN_API attn_status attn_ring_forward(attn_ctx *ctx, MPI_Comm comm, const attn_tensor *q, const attn_tensor *k,
                                       const attn_tensor *v, const attn_ring_params *params, attn_tensor *o,
                                       attn_tensor *lse, attn_ring_stats *stats);

/* o and lse from attn_ring_forward; d_o like o; dq, dk, dv like q, k, v. */
ATTN_API attn_status attn_ring_backward(attn_ctx *ctx, MPI_Comm comm, const attn_tensor *q,
                                        const attn_tensor *k, const attn_tensor *v, const attn_tensor *o,
                                        const attn_tensor *d_o, const attn_tensor *lse,
                                        const attn_ring_params *params, attn_tensor *dq, attn_tensor *dk,
                                        attn_tensor *dv, attn_ring_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_DIST_H */
