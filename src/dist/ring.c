/* ring.c - ring attention over MPI (attn/dist.h): the argument checks and
 * the digest every rank compares before data moves, the travelling buffer
 * (this rank's K, V and document ids, and in the backward the dK, dV
 * partials of those rows), and the ring steps: each step posts the next
 * K/V exchange, computes the local query chunks against the chunks held
 * (attn_sdpa_forward / attn_sdpa_backward with ATTN_ALIGN_OFFSET for the
 * chunks' global positions), and merges (forward: by LSE; backward: adds).
 * Uses only libattn's public API. */
#include "attn/dist.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- one call's shapes ------------------------------------------------------------------- */

typedef struct {
    const char *fn;
    MPI_Comm comm;
    int P, rank;
    attn_dtype dt;
    size_t es;
    int64_t B, L, Hq, Hkv, Dk, Dv, S;
    int64_t n_chunks, chunk, start[2];
    const attn_ring_params *rp;
    bool backward;
} ring;

/* Sizes in bytes of the travelling buffer's parts: K, V, ids [B, L], and
 * in the backward dK, dV. */
typedef struct {
    size_t k, v, ids, total, kv_ids;
} layout;

static layout buffer_layout(const ring *R)
{
    layout y;
    y.k = (size_t)(R->B * R->L * R->Hkv * R->Dk) * R->es;
    y.v = (size_t)(R->B * R->L * R->Hkv * R->Dv) * R->es;
    y.ids = R->rp->doc_ids ? (size_t)(R->B * R->L) * sizeof(int64_t) : 0;
    y.kv_ids = y.k + y.v + y.ids;
    y.total = y.kv_ids + (R->backward ? y.k + y.v : 0);
    return y;
}

attn_ring_params attn_ring_params_default(void)
{
    attn_ring_params p;
    memset(&p, 0, sizeof p);
    p.sdpa = attn_sdpa_params_default();
    return p;
}

attn_status attn_ring_rows(int64_t seq_len, int n_ranks, int rank, attn_ring_split split, int64_t start[2],
                           int64_t *n_chunks, int64_t *chunk)
{
    const char *fn = "attn_ring_rows";
    if (start == NULL || n_chunks == NULL || chunk == NULL)
        return attn_fail(ATTN_NULL_ARG, "%s: start, n_chunks and chunk must not be NULL", fn);
    if (n_ranks < 1 || rank < 0 || rank >= n_ranks)
        return attn_fail(ATTN_BAD_PARAM, "%s: rank %d of %d ranks; it must be in [0, n_ranks)", fn, rank, n_ranks);
    if (split != ATTN_RING_CONTIGUOUS && split != ATTN_RING_ZIGZAG)
        return attn_fail(ATTN_BAD_PARAM, "%s: split is %d; it must be an attn_ring_split value", fn, (int)split);
    int64_t parts = split == ATTN_RING_ZIGZAG ? 2 * (int64_t)n_ranks : n_ranks;
    if (seq_len < 0 || seq_len % parts != 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: seq_len is %lld; it must be >= 0 and a multiple of %lld (%s over %d "
                         "ranks)", fn, (long long)seq_len, (long long)parts,
                         split == ATTN_RING_ZIGZAG ? "2P chunks" : "P chunks", n_ranks);
    *chunk = seq_len / parts;
    *n_chunks = split == ATTN_RING_ZIGZAG ? 2 : 1;
    start[0] = rank * *chunk;
    start[1] = split == ATTN_RING_ZIGZAG ? (parts - 1 - rank) * *chunk : start[0];
    return ATTN_OK;
}

/* ---- argument checks and the digest ------------------------------------------------------ */

static attn_status check_dims(const ring *R, const attn_tensor *t, const char *name, int64_t d1, int64_t d2,
                              int64_t d3, int64_t d4)
{
    if (t == NULL) return attn_fail(ATTN_NULL_ARG, "%s: %s is NULL", R->fn, name);
    if (t->dtype != R->dt)
        return attn_fail(ATTN_BAD_DTYPE, "%s: %s.dtype is %d; it must match q.dtype (%d)", R->fn, name,
                         (int)t->dtype, (int)R->dt);
    const int64_t want[4] = {d1, d2, d3, d4};
    for (int d = 0; d < 4; d++) {
        if (t->dim[d] != want[d])
            return attn_fail(ATTN_SHAPE_MISMATCH, "%s: %s.dim[%d] is %lld; expected %lld", R->fn, name, d,
                             (long long)t->dim[d], (long long)want[d]);
        if (t->stride[d] < 0)
            return attn_fail(ATTN_BAD_STRIDE, "%s: %s.stride[%d] is %lld; strides must be >= 0", R->fn, name, d,
                             (long long)t->stride[d]);
    }
    if (t->data == NULL && d1 * d2 * d3 * d4 > 0) return attn_fail(ATTN_NULL_ARG, "%s: %s.data is NULL", R->fn, name);
    return ATTN_OK;
}

/* The options attn/dist.h supports, and nothing else. */
static attn_status check_options(const ring *R)
{
    const attn_sdpa_params *a = &R->rp->sdpa;
    const char *bad = a->bias ? "bias" : a->mask ? "mask" : a->block_mask ? "block_mask"
                    : a->dropout_p != 0.0 ? "dropout_p" : a->q_lens ? "q_lens"
                    : (a->n_seqs || a->cu_seqlens_q || a->cu_seqlens_k) ? "cu_seqlens_q/k"
                    : a->align != ATTN_ALIGN_TOP_LEFT ? "align" : NULL;
    if (bad != NULL)
        return attn_fail(ATTN_UNSUPPORTED, "%s: params.sdpa.%s is set; ring attention takes scale, softcap, "
                         "ALiBi, causal, window and k_lens", R->fn, bad);
    for (int64_t b = 0; a->k_lens != NULL && b < R->B; b++)
        if (a->k_lens[b] < 0 || a->k_lens[b] > R->S)
            return attn_fail(ATTN_BAD_PARAM, "%s: params.sdpa.k_lens[%lld] is %lld; it must be in [0, seq_len=%lld]",
                             R->fn, (long long)b, (long long)a->k_lens[b], (long long)R->S);
    return ATTN_OK;
}

/* FNV-1a over bytes, continued from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t x = 0; x < n; x++) h = (h ^ c[x]) * 1099511628211ull;
    return h;
}

/* What every rank must agree on: shapes, dtype, split and options (values
 * of k_lens and the ALiBi slopes included); never 0. */
static uint64_t digest(const ring *R)
{
    const attn_sdpa_params *a = &R->rp->sdpa;
    int64_t f[14] = {R->dt, R->B, R->L, R->Hq, R->Hkv, R->Dk, R->Dv, R->S, R->rp->split, a->causal,
                     a->window_left, a->window_right, R->rp->doc_ids != NULL, a->has_scale};
    double d[2] = {a->has_scale ? a->scale : 0.0, a->softcap};
    uint64_t h = fnv(14695981039346656037ull, f, sizeof f);
    h = fnv(h, d, sizeof d);
    h = fnv(h, &R->P, sizeof R->P);
    if (a->k_lens) h = fnv(h, a->k_lens, sizeof(int64_t) * (size_t)R->B);
    if (a->alibi_slopes) h = fnv(h, a->alibi_slopes, sizeof(double) * (size_t)R->Hq);
    h = fnv(h, &R->backward, sizeof R->backward);
    return h | 1u;
}

/* Every rank learns whether all ranks' arguments are valid and equal: each
 * contributes (d, ~d) to an MPI_MAX reduction, d = 0 for invalid ones, so
 * max d == min d exactly when all agree. */
static attn_status agree(const ring *R, attn_status local)
{
    uint64_t mine = local == ATTN_OK ? digest(R) : 0, in[2] = {mine, ~mine}, out[2];
    if (MPI_Allreduce(in, out, 2, MPI_UINT64_T, MPI_MAX, R->comm) != MPI_SUCCESS)
        return attn_fail(ATTN_IO, "%s: MPI_Allreduce of the argument digest failed", R->fn);
    if (local != ATTN_OK) return local; /* this rank's own message stands */
    if (out[0] != ~out[1])
        return attn_fail(ATTN_BAD_PARAM, "%s: the ranks disagree on shapes or options (or another rank's "
                         "arguments are invalid); nothing was computed", R->fn);
    return ATTN_OK;
}

static attn_status setup(ring *R, const char *fn, attn_ctx *ctx, MPI_Comm comm, const attn_tensor *q,
                         const attn_tensor *k, const attn_tensor *v, const attn_ring_params *rp, bool backward)
{
    memset(R, 0, sizeof *R);
    R->fn = fn;
    R->comm = comm;
    R->backward = backward;
    R->rp = rp;
    if (MPI_Comm_size(comm, &R->P) != MPI_SUCCESS || MPI_Comm_rank(comm, &R->rank) != MPI_SUCCESS)
        return attn_fail(ATTN_IO, "%s: comm is not a valid communicator", fn);
    if (ctx == NULL || q == NULL || k == NULL || v == NULL || rp == NULL)
        return attn_fail(ATTN_NULL_ARG, "%s: ctx, q, k, v and params must not be NULL", fn);
    if (q->dtype == ATTN_DTYPE_BF16 || q->dtype == ATTN_DTYPE_F16) /* the blocks' O and LSE merge in q's dtype */
        return attn_fail(ATTN_UNSUPPORTED, "%s: q.dtype is %s; ring attention runs in F32 or F64 (its partial "
                         "outputs are merged in the tensors' dtype)", fn, attn_dtype_name(q->dtype));
    if (q->dtype != ATTN_DTYPE_F32 && q->dtype != ATTN_DTYPE_F64)
        return attn_fail(ATTN_BAD_DTYPE, "%s: q.dtype is %s (%d); it must be F32 or F64", fn,
                         attn_dtype_name(q->dtype), (int)q->dtype);
    R->dt = q->dtype;
    R->es = attn_dtype_size(R->dt);
    R->B = q->dim[0];
    R->L = q->dim[1];
    R->Hq = q->dim[2];
    R->Dk = q->dim[3];
    R->Hkv = k->dim[2];
    R->Dv = v->dim[3];
    R->S = rp->seq_len;
    attn_status st = attn_ring_rows(R->S, R->P, R->rank, rp->split, R->start, &R->n_chunks, &R->chunk);
    if (st != ATTN_OK) return attn_fail(st, "%s: params.seq_len/split: %s", fn, attn_last_error());
    if (R->L != R->n_chunks * R->chunk)
        return attn_fail(ATTN_SHAPE_MISMATCH, "%s: q.dim[1] is %lld; with seq_len %lld over %d ranks each holds "
                         "%lld rows", fn, (long long)R->L, (long long)R->S, R->P, (long long)(R->n_chunks * R->chunk));
    if (R->B < 0 || R->Hq < 1 || R->Hkv < 1 || R->Dk < 1 || R->Dv < 1 || R->Hq % R->Hkv != 0)
        return attn_fail(ATTN_BAD_DIM, "%s: q is [%lld, %lld, %lld, %lld], k has %lld heads; B >= 0, heads and "
                         "head dims >= 1, Hq a multiple of Hkv", fn, (long long)R->B, (long long)R->L,
                         (long long)R->Hq, (long long)R->Dk, (long long)R->Hkv);
    if ((st = check_dims(R, q, "q", R->B, R->L, R->Hq, R->Dk)) != ATTN_OK ||
        (st = check_dims(R, k, "k", R->B, R->L, R->Hkv, R->Dk)) != ATTN_OK ||
        (st = check_dims(R, v, "v", R->B, R->L, R->Hkv, R->Dv)) != ATTN_OK)
        return st;
    return check_options(R);
}

/* ---- views and element access ----------------------------------------------------------- */

/* Rows r0 .. r0+n-1 of dim d of t. */
static attn_tensor rows_of(const attn_tensor *t, int d, int64_t r0, int64_t n)
{
    attn_tensor x = *t;
    if (x.data != NULL) x.data = (char *)x.data + (size_t)(r0 * t->stride[d]) * attn_dtype_size(t->dtype);
    x.dim[d] = n;
    return x;
}

static int64_t off(const attn_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return a * t->stride[0] + b * t->stride[1] + c * t->stride[2] + d * t->stride[3];
}

static double ld(const attn_tensor *t, int64_t e)
{
    return t->dtype == ATTN_DTYPE_F64 ? ((const double *)t->data)[e] : ((const float *)t->data)[e];
}

static void st(const attn_tensor *t, int64_t e, double x)
{
    if (t->dtype == ATTN_DTYPE_F64)
        ((double *)t->data)[e] = x;
    else
        ((float *)t->data)[e] = (float)x;
}

/* dst (+)= src element-wise over the 4 dims (views of equal dims). */
static void copy4(const attn_tensor *dst, const attn_tensor *src, bool add)
{
    for (int64_t a = 0; a < src->dim[0]; a++)
        for (int64_t b = 0; b < src->dim[1]; b++)
            for (int64_t c = 0; c < src->dim[2]; c++)
                for (int64_t d = 0; d < src->dim[3]; d++) {
                    int64_t e = off(dst, a, b, c, d);
                    st(dst, e, ld(src, off(src, a, b, c, d)) + (add ? ld(dst, e) : 0.0));
                }
}

/* The parts of a travelling buffer as tensors [B, L, Hkv, D]. */
typedef struct {
    attn_tensor k, v, dk, dv;
    int64_t *ids;
} parts;

static parts parts_of(const ring *R, const layout *y, char *buf)
{
    parts p;
    p.k = attn_tensor_make(buf, R->dt, R->B, R->L, R->Hkv, R->Dk);
    p.v = attn_tensor_make(buf + y->k, R->dt, R->B, R->L, R->Hkv, R->Dv);
    p.ids = y->ids ? (int64_t *)(void *)(buf + y->k + y->v) : NULL;
    p.dk = attn_tensor_make(buf + y->kv_ids, R->dt, R->B, R->L, R->Hkv, R->Dk);
    p.dv = attn_tensor_make(buf + y->kv_ids + y->k, R->dt, R->B, R->L, R->Hkv, R->Dv);
    return p;
}

/* ---- one (query chunk, key chunk) product ------------------------------------------------ */

/* Whether query chunk at qs can see any key of the chunk at ks (causal and
 * window decide it for whole chunks). */
static bool chunks_meet(const ring *R, int64_t qs, int64_t ks)
{
    const attn_sdpa_params *a = &R->rp->sdpa;
    int64_t c = R->chunk, q1 = qs + c - 1, k1 = ks + c - 1;
    /* a window wider than INT64_MAX / 2 hides no key here either (the
     * positions are below 2^62): narrowed, so the sums below cannot overflow */
    int64_t wl = a->window_left > INT64_MAX / 2 ? INT64_MAX / 2 : a->window_left;
    int64_t wr = a->window_right > INT64_MAX / 2 ? INT64_MAX / 2 : a->window_right;
    if (a->causal && ks > q1) return false;
    if (wl >= 0 && k1 < qs - wl) return false;
    if (wr >= 0 && ks > q1 + wr) return false;
    return true;
}

/* Per-call scratch: chunk-sized results, key lengths, document ids. */
typedef struct {
    char *mem;
    attn_tensor o, lse, dq, dk, dv; /* [B, c, Hq, Dv], [B, Hq, c, 1], [B, c, Hq, Dk], [B, c, Hkv, Dk|Dv] */
    int64_t *klens, *idq, *idk;     /* [B], [B, c], [B, c] */
} scratch;

static attn_status scratch_alloc(const ring *R, scratch *s)
{
    int64_t B = R->B, c = R->chunk;
    size_t n[5] = {(size_t)(B * c * R->Hq * R->Dv), (size_t)(B * R->Hq * c), (size_t)(B * c * R->Hq * R->Dk),
                   (size_t)(B * c * R->Hkv * R->Dk), (size_t)(B * c * R->Hkv * R->Dv)};
    size_t bytes = (n[0] + n[1] + n[2] + n[3] + n[4]) * R->es + (size_t)(B + 2 * B * c + 1) * sizeof(int64_t);
    memset(s, 0, sizeof *s);
    s->mem = attn_calloc(1, bytes);
    if (s->mem == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: cannot allocate %zu bytes of scratch", R->fn, bytes);
    s->klens = (int64_t *)(void *)s->mem;
    s->idq = s->klens + B;
    s->idk = s->idq + B * c;
    char *p = (char *)(s->idk + B * c);
    s->o = attn_tensor_make(p, R->dt, B, c, R->Hq, R->Dv);
    s->lse = attn_tensor_make(p + n[0] * R->es, R->dt, B, R->Hq, c, 1);
    s->dq = attn_tensor_make(p + (n[0] + n[1]) * R->es, R->dt, B, c, R->Hq, R->Dk);
    s->dk = attn_tensor_make(p + (n[0] + n[1] + n[2]) * R->es, R->dt, B, c, R->Hkv, R->Dk);
    s->dv = attn_tensor_make(p + (n[0] + n[1] + n[2] + n[3]) * R->es, R->dt, B, c, R->Hkv, R->Dv);
    return ATTN_OK;
}

/* The options of the product of query chunk x (at qs) and key chunk y (at
 * ks) of the travelling rows: aligned by qs - ks, key lengths cut to the
 * chunk, and a DOCUMENTS block mask when there are ids (*bm, freed by the
 * caller). */
static attn_status pair_params(const ring *R, scratch *s, int64_t x, int64_t qs, int64_t y, int64_t ks,
                               const int64_t *ids_k, attn_sdpa_params *a, attn_block_mask **bm)
{
    int64_t B = R->B, c = R->chunk;
    *a = R->rp->sdpa;
    a->align = ATTN_ALIGN_OFFSET;
    a->align_offset = qs - ks;
    if (R->rp->sdpa.k_lens) {
        for (int64_t b = 0; b < B; b++) {
            int64_t n = R->rp->sdpa.k_lens[b] - ks;
            s->klens[b] = n < 0 ? 0 : n > c ? c : n;
        }
        a->k_lens = s->klens;
    }
    *bm = NULL;
    if (R->rp->doc_ids == NULL) return ATTN_OK;
    for (int64_t b = 0; b < B; b++) {
        memcpy(s->idq + b * c, R->rp->doc_ids + b * R->L + x * c, sizeof(int64_t) * (size_t)c);
        memcpy(s->idk + b * c, ids_k + b * R->L + y * c, sizeof(int64_t) * (size_t)c);
    }
    attn_block_mask_shape sh = {B > 0 ? B : 1, 1, c, c, 64, 64};
    attn_block_pattern pt = attn_block_pattern_default(ATTN_BLOCK_PATTERN_DOCUMENTS);
    pt.doc_q = s->idq;
    pt.doc_k = s->idk;
    attn_status st2 = attn_block_mask_from_pattern(&sh, &pt, bm);
    a->block_mask = *bm;
    return st2;
}

/* Merges a chunk's (O_t, LSE_t) into the running (O, LSE) rows: m = max,
 * O = (O e^(L-m) + O_t e^(L_t-m)) / (e^(L-m) + e^(L_t-m)), L = m + log(sum). */
static void merge(const ring *R, const attn_tensor *o, const attn_tensor *lse, const scratch *s)
{
    for (int64_t b = 0; b < R->B; b++)
        for (int64_t h = 0; h < R->Hq; h++)
            for (int64_t i = 0; i < R->chunk; i++) {
                double l1 = ld(lse, off(lse, b, h, i, 0)), l2 = ld(&s->lse, off(&s->lse, b, h, i, 0));
                double m = l1 > l2 ? l1 : l2;
                if (m == -INFINITY) continue;
                double w1 = exp(l1 - m), w2 = exp(l2 - m), sum = w1 + w2;
                for (int64_t d = 0; d < R->Dv; d++) {
                    int64_t e = off(o, b, i, h, d);
                    st(o, e, (ld(o, e) * w1 + ld(&s->o, off(&s->o, b, i, h, d)) * w2) / sum);
                }
                st(lse, off(lse, b, h, i, 0), m + log(sum));
            }
}

/* ---- the ring ------------------------------------------------------------------------------ */

typedef struct {
    attn_ctx *ctx;
    const attn_tensor *q, *o, *d_o, *lse, *dq; /* this rank's rows */
    attn_tensor lse_run;                        /* forward: the running LSE (lse or scratch) */
    attn_ring_stats stats;
} call;

/* All products of the local query chunks with the chunks of buffer `held`
 * (owned by rank `owner`). */
static attn_status step(const ring *R, call *C, scratch *s, const parts *held, int owner)
{
    int64_t ostart[2], on, oc, c = R->chunk;
    attn_ring_rows(R->S, R->P, owner, R->rp->split, ostart, &on, &oc);
    attn_status status = ATTN_OK;
    for (int64_t x = 0; x < R->n_chunks && status == ATTN_OK; x++)
        for (int64_t y = 0; y < on && status == ATTN_OK; y++) {
            if (!chunks_meet(R, R->start[x], ostart[y])) {
                C->stats.skipped++;
                continue;
            }
            C->stats.pairs++;
            attn_sdpa_params a;
            attn_block_mask *bm = NULL;
            status = pair_params(R, s, x, R->start[x], y, ostart[y], held->ids, &a, &bm);
            attn_tensor q = rows_of(C->q, 1, x * c, c), k = rows_of(&held->k, 1, y * c, c);
            attn_tensor v = rows_of(&held->v, 1, y * c, c);
            if (status == ATTN_OK && !R->backward) {
                status = attn_sdpa_forward(C->ctx, &q, &k, &v, &a, &s->o, &s->lse);
                attn_tensor o = rows_of(C->o, 1, x * c, c), l = rows_of(&C->lse_run, 2, x * c, c);
                if (status == ATTN_OK) merge(R, &o, &l, s);
            } else if (status == ATTN_OK) {
                attn_tensor o = rows_of(C->o, 1, x * c, c), d_o = rows_of(C->d_o, 1, x * c, c);
                attn_tensor l = rows_of(C->lse, 2, x * c, c), dq = rows_of(C->dq, 1, x * c, c);
                attn_tensor dk = rows_of(&held->dk, 1, y * c, c), dv = rows_of(&held->dv, 1, y * c, c);
                status = attn_sdpa_backward(C->ctx, &q, &k, &v, &o, &d_o, &l, &a, &s->dq, &s->dk, &s->dv, NULL);
                if (status == ATTN_OK) {
                    copy4(&dq, &s->dq, true);
                    copy4(&dk, &s->dk, true);
                    copy4(&dv, &s->dv, true);
                }
            }
            attn_block_mask_free(bm);
        }
    return status;
}

/* Sends n bytes of `out` to the next rank and receives n bytes into `in`
 * from the previous one, without waiting (req[2]). */
static attn_status exchange(const ring *R, call *C, const char *out, char *in, size_t n, MPI_Request req[2])
{
    int next = (R->rank + 1) % R->P, prev = (R->rank + R->P - 1) % R->P;
    if (n > (size_t)INT32_MAX)
        return attn_fail(ATTN_OVERFLOW, "%s: a message of %zu bytes is beyond MPI's int count", R->fn, n);
    if (MPI_Irecv(in, (int)n, MPI_BYTE, prev, 7, R->comm, &req[0]) != MPI_SUCCESS ||
        MPI_Isend(out, (int)n, MPI_BYTE, next, 7, R->comm, &req[1]) != MPI_SUCCESS)
        return attn_fail(ATTN_IO, "%s: MPI_Irecv/MPI_Isend failed", R->fn);
    C->stats.bytes_sent += (int64_t)n;
    return ATTN_OK;
}

static attn_status wait2(const ring *R, MPI_Request req[2])
{
    if (MPI_Waitall(2, req, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        return attn_fail(ATTN_IO, "%s: MPI_Waitall failed", R->fn);
    return ATTN_OK;
}

/* Fills buffer 0 with this rank's K, V (and ids; zero dK, dV), then runs
 * the P steps; the backward's own-row dK, dV end in dk, dv. A failed
 * product does not stop the ring (the other ranks wait for this one's
 * messages): the first error is kept, and every rank learns at the end
 * whether any failed. */
static attn_status run_ring(const ring *R, call *C, const attn_tensor *k, const attn_tensor *v,
                            const attn_tensor *dk, const attn_tensor *dv)
{
    layout y = buffer_layout(R);
    scratch s;
    attn_status status = scratch_alloc(R, &s);
    char *buf[2] = {attn_calloc(1, y.total + 1), attn_calloc(1, y.total + 1)};
    if (status == ATTN_OK && (buf[0] == NULL || buf[1] == NULL))
        status = attn_fail(ATTN_NO_MEMORY, "%s: cannot allocate 2 x %zu bytes of ring buffers", R->fn, y.total);
    int ok_here = status == ATTN_OK, ok_all = 0;
    if (MPI_Allreduce(&ok_here, &ok_all, 1, MPI_INT, MPI_MIN, R->comm) != MPI_SUCCESS && status == ATTN_OK)
        status = attn_fail(ATTN_IO, "%s: MPI_Allreduce failed", R->fn);
    if (status == ATTN_OK && !ok_all)
        status = attn_fail(ATTN_NO_MEMORY, "%s: another rank could not allocate its ring buffers", R->fn);
    attn_status first = status, mst = ATTN_OK;
    parts p[2] = {parts_of(R, &y, buf[0]), parts_of(R, &y, buf[1])};
    if (status == ATTN_OK) {
        copy4(&p[0].k, k, false);
        copy4(&p[0].v, v, false);
        if (p[0].ids) memcpy(p[0].ids, R->rp->doc_ids, y.ids);
    }
    for (int t = 0; status == ATTN_OK && t < R->P && mst == ATTN_OK; t++) {
        int cur = t % 2, owner = (R->rank - t + R->P) % R->P;
        MPI_Request req[2];
        bool more = t + 1 < R->P;
        if (more) mst = exchange(R, C, buf[cur], buf[1 - cur], y.kv_ids, req); /* next K/V, overlapped */
        attn_status sst = step(R, C, &s, &p[cur], owner);
        if (first == ATTN_OK) first = sst;
        if (more && mst == ATTN_OK) mst = wait2(R, req);
        if (R->backward && R->P > 1 && mst == ATTN_OK) { /* the dK/dV partials follow their rows */
            mst = exchange(R, C, buf[cur] + y.kv_ids, buf[1 - cur] + y.kv_ids, y.k + y.v, req);
            if (mst == ATTN_OK) mst = wait2(R, req);
        }
    }
    if (status == ATTN_OK && mst == ATTN_OK) {
        int good = first == ATTN_OK, all = 0;
        if (MPI_Allreduce(&good, &all, 1, MPI_INT, MPI_MIN, R->comm) != MPI_SUCCESS)
            first = attn_fail(ATTN_IO, "%s: MPI_Allreduce of the outcome failed", R->fn);
        else if (first == ATTN_OK && !all)
            first = attn_fail(ATTN_BAD_PARAM, "%s: another rank's attention call failed", R->fn);
    }
    if (first == ATTN_OK && mst != ATTN_OK) first = mst;
    if (first == ATTN_OK && R->backward) { /* after P steps (and P shifts) the own rows' partials */
        int fin = R->P == 1 ? 0 : R->P % 2;
        copy4(dk, &p[fin].dk, false);
        copy4(dv, &p[fin].dv, false);
    }
    attn_release(s.mem);
    attn_release(buf[0]);
    attn_release(buf[1]);
    return first;
}

/* Sets every element of a view to x. */
static void fill(const attn_tensor *t, double x)
{
    for (int64_t a = 0; a < t->dim[0]; a++)
        for (int64_t b = 0; b < t->dim[1]; b++)
            for (int64_t c = 0; c < t->dim[2]; c++)
                for (int64_t d = 0; d < t->dim[3]; d++) st(t, off(t, a, b, c, d), x);
}

attn_status attn_ring_forward(attn_ctx *ctx, MPI_Comm comm, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *v, const attn_ring_params *params, attn_tensor *o,
                              attn_tensor *lse, attn_ring_stats *stats)
{
    ring R;
    attn_status status = setup(&R, "attn_ring_forward", ctx, comm, q, k, v, params, false);
    if (status == ATTN_OK) status = check_dims(&R, o, "o", R.B, R.L, R.Hq, R.Dv);
    if (status == ATTN_OK && lse != NULL) status = check_dims(&R, lse, "lse", R.B, R.Hq, R.L, 1);
    if (R.P < 1) return status;
    if ((status = agree(&R, status)) != ATTN_OK) return status;
    call C;
    memset(&C, 0, sizeof C);
    C.ctx = ctx;
    C.q = q;
    C.o = o;
    char *own = NULL;
    if (lse != NULL) {
        C.lse_run = *lse;
    } else {
        own = attn_calloc((size_t)(R.B * R.Hq * R.L) + 1, R.es);
        C.lse_run = attn_tensor_make(own, R.dt, R.B, R.Hq, R.L, 1);
    }
    if (lse == NULL && own == NULL) status = attn_fail(ATTN_NO_MEMORY, "%s: cannot allocate the LSE", R.fn);
    if (status == ATTN_OK) {
        fill(o, 0.0);
        fill(&C.lse_run, -INFINITY);
    }
    attn_status rs = run_ring(&R, &C, k, v, NULL, NULL); /* collective: every rank runs it */
    attn_release(own);
    if (stats != NULL) *stats = C.stats;
    return status != ATTN_OK ? status : rs;
}

attn_status attn_ring_backward(attn_ctx *ctx, MPI_Comm comm, const attn_tensor *q, const attn_tensor *k,
                               const attn_tensor *v, const attn_tensor *o, const attn_tensor *d_o,
                               const attn_tensor *lse, const attn_ring_params *params, attn_tensor *dq,
                               attn_tensor *dk, attn_tensor *dv, attn_ring_stats *stats)
{
    ring R;
    attn_status status = setup(&R, "attn_ring_backward", ctx, comm, q, k, v, params, true);
    const attn_tensor *views[6] = {o, d_o, lse, dq, dk, dv};
    const char *names[6] = {"o", "d_o", "lse", "dq", "dk", "dv"};
    for (int x = 0; x < 6 && status == ATTN_OK; x++) {
        bool is_lse = x == 2, is_q = x == 0 || x == 1 || x == 3;
        int64_t d2 = is_lse ? R.Hq : R.L, d3 = is_lse ? R.L : is_q ? R.Hq : R.Hkv;
        int64_t d4 = is_lse ? 1 : x == 3 || x == 4 ? R.Dk : R.Dv;
        status = check_dims(&R, views[x], names[x], R.B, d2, d3, d4);
    }
    if (R.P < 1) return status;
    if ((status = agree(&R, status)) != ATTN_OK) return status;
    call C;
    memset(&C, 0, sizeof C);
    C.ctx = ctx;
    C.q = q;
    C.o = o;
    C.d_o = d_o;
    C.lse = lse;
    C.dq = dq;
    fill(dq, 0.0);
    status = run_ring(&R, &C, k, v, dk, dv);
    if (stats != NULL) *stats = C.stats;
    return status;
}
