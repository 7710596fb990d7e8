/* sdpa_tiled.c - portable tiled float32 kernel of scaled-dot-product
 * attention (FlashAttention-2 style). A block of ATTN__TILE_Q queries
 * streams over key tiles of ATTN__TILE_K with an online softmax (running max
 * m and sum l per row); no Sq x Sk buffer exists, workspace is O(tile).
 *
 * Backward recomputes probabilities from the saved LSE, in passes that each
 * own their outputs, so results never depend on the thread count:
 *   dK, dV per (b, kv head, key tile), summed over the group's query heads;
 *   dQ per (b, head, query block);
 * or fused, per (b, kv head): the dK/dV tiles in order, adding dQ as they
 * go (the same sums in the same order as the dQ pass).
 * Decode splits the keys of a kv head in chunks (the forward's online
 * softmax over each chunk) and merges the chunks' partials in order.
 * Masks are evaluated per element from each row's visible key interval
 * [lo, hi) (lengths, causal, window) plus the boolean mask and bias; a
 * block mask skips the tiles it leaves EMPTY and hides keys only inside
 * the tiles it does not mark FULL. */
#include "kernels/sdpa_kernels.h"

#include <string.h>

enum { TQ = ATTN__TILE_Q, TK = ATTN__TILE_K };

/* dst [n, d] = rows s0 .. s0+n-1 of head h of t, in float32 (any dtype of
 * attn__ldf: a half tile is converted as it is loaded). */
static void load_rows(const attn_tensor *t, int64_t b, int64_t s0, int64_t n, int64_t h,
                      int64_t d, float *dst)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t x = 0; x < d; x++)
            dst[r * d + x] = attn__ldf(t, attn__off(t->stride, b, s0 + r, h, x));
}

static float dotf(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t x = 0; x < n; x++) s += a[x] * b[x];
    return s;
}

/* Score of (b, h, i, j) for a structurally visible key, from the dot
 * product q_i . k_j: scale, soft-cap, bias, ALiBi. -inf if the boolean mask
 * or the bias masks it. *capgrad receives d s / d (scale * dot). */
static float score(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j,
                   float dot, float *capgrad)
{
    if (p->has_mask && p->mask[attn__off(p->mask_stride, b, h, i, j)] == 0) return -INFINITY;
    float s = (float)p->scale * dot;
    *capgrad = 1.0f;
    if (p->softcap > 0.0) {
        float cap = (float)p->softcap;
        float t = tanhf(s / cap);
        s = cap * t;
        *capgrad = 1.0f - t * t;
    }
    if (p->has_bias) {
        float bv = attn__bias_ldf(p, attn__off(p->bias_stride, b, h, i, j));
        if (bv <= (float)ATTN__BIAS_MASK_LIMIT) return -INFINITY;
        s += bv;
    }
    if (p->alibi != NULL) s -= (float)p->alibi[h] * (float)llabs(attn__aligned(p, b, i) - j);
    return s;
}

/* Dropout factor: 0 if dropped, 1/(1-p) if kept. */
static float drop_factor(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (p->dropout_p <= 0.0) return 1.0f;
    bool keep = attn__dropout_keep(p->seed, p->offset, p->drop_threshold, attn__drop_bh(p, b, h), i, j);
    return keep ? (float)(1.0 / (1.0 - p->dropout_p)) : 0.0f;
}

/* hid[c] = -inf where the block mask hides key j0 + c from row i of head
 * (b, h), else 0 (c < n <= TK). */
static void hidden_keys(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t n, float *hid)
{
    memset(hid, 0, sizeof(float) * (size_t)n);
    attn__tile_hide(p, b, h, i, j0, n, hid, 1);
}

/* ---- forward -------------------------------------------------------------- */

int64_t attn__tiled_forward_ws(const attn__sdpa *p)
{
    return TQ * p->Dk + TK * (p->Dk + p->Dv) + TQ * p->Dv + TQ * TK + 2 * TQ;
}

/* The forward's workspace, carved from attn__tiled_forward_ws floats. */
typedef struct {
    float *qt, *kt, *vt; /* (TQ, Dk), (TK, Dk), (TK, Dv) */
    float *acc;          /* (TQ, Dv) unnormalised output */
    float *s;            /* (TQ, TK) scores of one tile */
    float *m, *l;        /* (TQ) running max and sum */
} fwd_ws;

static fwd_ws carve_fwd(const attn__sdpa *p, float *ws)
{
    fwd_ws w;
    w.qt = ws;
    w.kt = w.qt + TQ * p->Dk;
    w.vt = w.kt + TK * p->Dk;
    w.acc = w.vt + TK * p->Dv;
    w.s = w.acc + TQ * p->Dv;
    w.m = w.s + TQ * TK;
    w.l = w.m + TQ;
    return w;
}

/* Online softmax of query rows i0 .. i0+nq-1 (nq <= TQ) of head (b, h) over
 * the keys of [k0, k1) each row may see: w->acc, w->m, w->l, and seen[r]
 * (whether row r saw any key). */
static void online_rows(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq,
                        int64_t k0, int64_t k1, const fwd_ws *w, bool *seen)
{
    int64_t hk = h / p->group, lo[TQ], hi[TQ], jmin, jmax;
    float *acc = w->acc, *s = w->s, *m = w->m, *l = w->l;

    attn__block_ranges_in(p, b, i0, nq, k0, k1, lo, hi, &jmin, &jmax);
    for (int64_t r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        seen[r] = false;
    }
    memset(acc, 0, sizeof(float) * (size_t)(TQ * p->Dv));
    if (jmin < jmax) load_rows(&p->q, b, i0, nq, h, p->Dk, w->qt);

    for (int64_t j0 = jmin < jmax ? jmin / TK * TK : jmax; j0 < jmax; j0 += TK) {
        if ((j0 = attn__next_key_tile(p, b, h, i0, nq, j0, TK)) >= jmax) break;
        int64_t nk = jmax - j0 < TK ? jmax - j0 : TK;
        int kind = attn__tile_kind(p, b, h, i0, nq, j0, nk);
        if (kind == ATTN__BLK_EMPTY) continue; /* K and V not read */
        attn__tiles_add(1);
        load_rows(&p->k, b, j0, nk, hk, p->Dk, w->kt);
        load_rows(&p->v, b, j0, nk, hk, p->Dv, w->vt);
        for (int64_t r = 0; r < nq; r++) {
            int64_t i = i0 + r;
            float *sr = s + r * TK, tmax = -INFINITY, cg;
            bool any = false;
            for (int64_t c = 0; c < nk; c++) {
                int64_t j = j0 + c;
                sr[c] = j < lo[r] || j >= hi[r]
                            ? -INFINITY
                            : score(p, b, h, i, j, dotf(w->qt + r * p->Dk, w->kt + c * p->Dk, p->Dk), &cg);
            }
            if (kind == ATTN__BLK_PARTIAL) attn__tile_hide(p, b, h, i, j0, nk, sr, 1);
            for (int64_t c = 0; c < nk; c++) {
                any |= sr[c] != -INFINITY;
                if (sr[c] > tmax) tmax = sr[c];
            }
            if (!any) continue;
            seen[r] = true;
            float mnew = tmax > m[r] ? tmax : m[r];
            if (mnew == -INFINITY) mnew = 0.0f; /* only NaN scores so far: keep NaN */
            float alpha = expf(m[r] - mnew);
            float *ar = acc + r * p->Dv, lsum = 0.0f;
            for (int64_t x = 0; x < p->Dv; x++) ar[x] *= alpha;
            for (int64_t c = 0; c < nk; c++) {
                if (sr[c] == -INFINITY) continue; /* masked: V not read */
                float e = expf(sr[c] - mnew);
                lsum += e;
                float f = drop_factor(p, b, h, i, j0 + c);
                if (f == 0.0f) continue; /* dropped: V not read */
                float wt = e * f;
                for (int64_t x = 0; x < p->Dv; x++) ar[x] += wt * w->vt[c * p->Dv + x];
            }
            l[r] = l[r] * alpha + lsum;
            m[r] = mnew;
        }
    }
}

void attn__tiled_forward_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t i0, int64_t nq, float *ws)
{
    fwd_ws w = carve_fwd(p, ws);
    bool seen[TQ];
    online_rows(p, b, h, i0, nq, 0, p->Sk, &w, seen);

    for (int64_t r = 0; r < nq; r++) {
        int64_t i = i0 + r;
        float inv = seen[r] ? 1.0f / w.l[r] : 0.0f;
        for (int64_t x = 0; x < p->Dv; x++)
            attn__stf(&p->o, attn__off(p->o.stride, b, i, h, x), seen[r] ? w.acc[r * p->Dv + x] * inv : 0.0f);
        if (p->lse.data != NULL)
            ((float *)p->lse.data)[attn__off(p->lse.stride, b, h, i, 0)] =
                seen[r] ? w.m[r] + logf(w.l[r]) : -INFINITY;
    }
}

/* ---- decode: the key-split forward ----------------------------------------- */

void attn__tiled_decode_split(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t s, int64_t split,
                              float *part, float *ws)
{
    int64_t k0 = s * split, k1 = k0 + split < p->Sk ? k0 + split : p->Sk, ld = attn__decode_ld(p);
    fwd_ws w = carve_fwd(p, ws);
    bool seen[TQ];
    for (int64_t g = 0; g < p->group; g++) {
        online_rows(p, b, hkv * p->group + g, 0, p->Sq, k0, k1, &w, seen);
        for (int64_t i = 0; i < p->Sq; i++) {
            float *pr = part + (g * p->Sq + i) * (ld + 3);
            memcpy(pr, w.acc + i * p->Dv, sizeof(float) * (size_t)p->Dv);
            pr[ld] = w.m[i];
            pr[ld + 1] = w.l[i];
            pr[ld + 2] = seen[i] ? 1.0f : 0.0f;
        }
    }
}

/* m = max m_s, l = sum l_s e^(m_s - m), O = sum acc_s e^(m_s - m) / l over
 * the splits that saw a key, in split order; O is summed in float32 a
 * chunk of MERGE_CHUNK columns at a time and then stored in its dtype. */
enum { MERGE_CHUNK = 64 };

void attn__decode_merge(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t n_splits,
                        const float *parts)
{
    int64_t M = attn__decode_rows(p), dv = attn__decode_ld(p), stride = M * (dv + 3);
    for (int64_t r = 0; r < M; r++) {
        int64_t h = hkv * p->group + r / p->Sq, i = r % p->Sq;
        float m = -INFINITY, l = 0.0f;
        bool seen = false;
        for (int64_t s = 0; s < n_splits; s++) {
            const float *pr = parts + s * stride + r * (dv + 3);
            if (pr[dv + 2] == 0.0f) continue;
            if (pr[dv] > m) m = pr[dv];
            seen = true;
        }
        for (int64_t s = 0; seen && s < n_splits; s++) {
            const float *pr = parts + s * stride + r * (dv + 3);
            if (pr[dv + 2] == 0.0f) continue;
            l += pr[dv + 1] * expf(pr[dv] - m);
        }
        for (int64_t x0 = 0; x0 < p->Dv; x0 += MERGE_CHUNK) {
            int64_t n = p->Dv - x0 < MERGE_CHUNK ? p->Dv - x0 : MERGE_CHUNK;
            float acc[MERGE_CHUNK] = {0.0f};
            for (int64_t s = 0; seen && s < n_splits; s++) {
                const float *pr = parts + s * stride + r * (dv + 3);
                if (pr[dv + 2] == 0.0f) continue;
                float w = expf(pr[dv] - m) / l;
                for (int64_t x = 0; x < n; x++) acc[x] += w * pr[x0 + x];
            }
            for (int64_t x = 0; x < n; x++) attn__stf(&p->o, attn__off(p->o.stride, b, i, h, x0 + x), acc[x]);
        }
        if (p->lse.data != NULL)
            ((float *)p->lse.data)[attn__off(p->lse.stride, b, h, i, 0)] = seen ? m + logf(l) : -INFINITY;
    }
}

/* ---- backward ------------------------------------------------------------- */

static float lse_at(const attn__sdpa *p, int64_t b, int64_t h, int64_t i)
{
    return ((const float *)p->lse.data)[attn__off(p->lse.stride, b, h, i, 0)];
}

/* The gradients of one visible element (i, j), given the dot products
 * q_i.k_j and dO_i.v_j: P_ij (before dropout, from the LSE), its dropout
 * factor, and dS_ij (gradient of the final score). Returns false if the
 * element is masked by the boolean mask or the bias. *dqk receives
 * d loss / d (q_i . k_j). */
typedef struct {
    float prob, factor, ds, dqk;
} elem_grad;

static bool element_grad(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j,
                         float qk, const float *dorow, const float *vrow, float lse,
                         float delta, elem_grad *g)
{
    float cg;
    float s = score(p, b, h, i, j, qk, &cg);
    if (s == -INFINITY) return false;
    g->prob = expf(s - lse);
    g->factor = drop_factor(p, b, h, i, j);
    float dp = g->factor == 0.0f ? 0.0f : g->factor * dotf(dorow, vrow, p->Dv);
    g->ds = g->prob * (dp - delta);          /* softmax backward */
    g->dqk = g->ds * cg * (float)p->scale;   /* through soft-cap and scale */
    return true;
}

void attn__tiled_delta_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb, float *delta)
{
    int64_t i0 = qb * TQ, nq = p->Sq - i0 < TQ ? p->Sq - i0 : TQ, lq = attn__qlen(p, b);
    for (int64_t i = i0; i < i0 + nq; i++) {
        float acc = 0.0f;
        for (int64_t x = 0; i < lq && x < p->Dv; x++)
            acc += attn__ldf(&p->d_o, attn__off(p->d_o.stride, b, i, h, x)) *
                   attn__ldf(&p->o, attn__off(p->o.stride, b, i, h, x));
        delta[i] = acc;
    }
}

int64_t attn__tiled_backward_ws(const attn__sdpa *p)
{
    int64_t sk = p->Sk > 0 ? p->Sk : 1;
    int64_t dkdv = 2 * TK * (p->Dk + p->Dv) + p->Dk + p->Dv;
    int64_t dq = 2 * p->Dk + p->Dv + TK * (p->Dk + p->Dv);
    int64_t dbias = 2 * (p->Dk + p->Dv) + sk;
    int64_t n = dkdv > dq ? dkdv : dq;
    return n > dbias ? n : dbias;
}

/* Row i of head (b, h) against keys j0 .. j0+nk-1 (in kt, vt): adds its
 * terms to the dK, dV accumulators and, with dqr != NULL, to dQ row i;
 * with dbias, writes its visible elements' dS into the bias gradient.
 * qr, dor, hid: one q row, one dO row, TK floats of scratch. part: the
 * fused share's bias gradient (write_dbias, dbias_acc), or NULL. */
static void dkdv_row(const attn__sdpa *p, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t nk, float delta,
                     const float *kt, const float *vt, float *qr, float *dor, float *hid, float *dk, float *dv,
                     float *dqr, const attn__fused_part *part)
{
    bool dbias = part != NULL && part->write_dbias;
    float *acc = part != NULL ? part->dbias_acc : NULL;
    int64_t lo, hi;
    attn__key_range(p, b, i, &lo, &hi);
    int64_t c0 = lo > j0 ? lo - j0 : 0, c1 = hi - j0 < nk ? hi - j0 : nk;
    if (c0 >= c1) return;
    float lse = lse_at(p, b, h, i);
    if (lse == -INFINITY) return;
    load_rows(&p->q, b, i, 1, h, p->Dk, qr);
    load_rows(&p->d_o, b, i, 1, h, p->Dv, dor);
    hidden_keys(p, b, h, i, j0, nk, hid);
    for (int64_t c = c0; c < c1; c++) {
        elem_grad g;
        if (hid[c] != 0.0f) continue;
        float qk = dotf(qr, kt + c * p->Dk, p->Dk);
        if (!element_grad(p, b, h, i, j0 + c, qk, dor, vt + c * p->Dv, lse, delta, &g)) continue;
        float w = g.prob * g.factor; /* dV_j += P_ij f_ij dO_i */
        for (int64_t x = 0; w != 0.0f && x < p->Dv; x++) dv[c * p->Dv + x] += w * dor[x];
        for (int64_t x = 0; x < p->Dk; x++) dk[c * p->Dk + x] += g.dqk * qr[x];
        for (int64_t x = 0; dqr != NULL && x < p->Dk; x++) dqr[x] += g.dqk * kt[c * p->Dk + x];
        if (dbias) attn__stf(&p->dbias, attn__off(p->dbias.stride, b, h, i, j0 + c), g.ds);
        if (acc != NULL) acc[attn__off(part->acc_stride, b, h, i, j0 + c)] += g.ds;
    }
}

/* dK, dV of key block kb of kv head (b, hkv) over its query heads [h0,
 * h1); with dqa != NULL also adds the block's part of dQ of those heads
 * into dqa [group, Sq, Dk] (head h at h - hkv * group), and with a fused
 * share's part its bias gradient of the visible elements. Query rows go by
 * tiles of TQ, so a block mask skips the EMPTY ones. */
static void dkdv_block(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb, int64_t h0, int64_t h1,
                       const float *delta, float *ws, float *dqa, const attn__fused_part *part)
{
    int64_t j0 = kb * TK, nk = p->Sk - j0 < TK ? p->Sk - j0 : TK;
    float *kt = ws, *vt = kt + TK * p->Dk;            /* (TK, Dk), (TK, Dv) */
    float *dk = vt + TK * p->Dv, *dv = dk + TK * p->Dk; /* accumulators */
    float *qr = dv + TK * p->Dv, *dor = qr + p->Dk;   /* one q row, one dO row */
    float hid[TK];
    memset(dk, 0, sizeof(float) * (size_t)(TK * (p->Dk + p->Dv)));
    load_rows(&p->k, b, j0, nk, hkv, p->Dk, kt);
    load_rows(&p->v, b, j0, nk, hkv, p->Dv, vt);

    for (int64_t h = h0; h < h1; h++) {
        const float *dl = delta + (b * p->Hq + h) * p->Sq;
        for (int64_t i0 = 0; i0 < p->Sq; i0 += TQ) {
            if ((i0 = attn__next_query_tile(p, b, h, j0, nk, i0, TQ)) >= p->Sq) break;
            int64_t nq = p->Sq - i0 < TQ ? p->Sq - i0 : TQ;
            if (attn__tile_kind(p, b, h, i0, nq, j0, nk) == ATTN__BLK_EMPTY) continue;
            attn__tiles_add(1);
            for (int64_t i = i0; i < i0 + nq; i++)
                dkdv_row(p, b, h, i, j0, nk, dl[i], kt, vt, qr, dor, hid, dk, dv,
                         dqa == NULL ? NULL : dqa + ((h - hkv * p->group) * p->Sq + i) * p->Dk, part);
        }
    }
    for (int64_t c = 0; c < nk; c++) {
        for (int64_t x = 0; x < p->Dk; x++)
            attn__stf(&p->dk, attn__off(p->dk.stride, b, j0 + c, hkv, x), dk[c * p->Dk + x]);
        for (int64_t x = 0; x < p->Dv; x++)
            attn__stf(&p->dv, attn__off(p->dv.stride, b, j0 + c, hkv, x), dv[c * p->Dv + x]);
    }
}

void attn__tiled_dkdv_block(const attn__sdpa *p, int64_t b, int64_t hkv, int64_t kb,
                            const float *delta, float *ws)
{
    dkdv_block(p, b, hkv, kb, hkv * p->group, (hkv + 1) * p->group, delta, ws, NULL, NULL);
}

int64_t attn__tiled_fused_ws(const attn__sdpa *p)
{
    return attn__tiled_backward_ws(p) + p->group * p->Sq * p->Dk;
}

void attn__fused_zero_dbias(const attn__sdpa *p, int64_t b, const attn__fused_part *part, int64_t tile)
{
    int64_t j0 = part->kb0 * tile, j1 = part->kb1 * tile < p->Sk ? part->kb1 * tile : p->Sk;
    size_t es = attn_dtype_size(p->dbias.dtype);
    for (int64_t h = part->h0; part->write_dbias && h < part->h1; h++)
        for (int64_t i = 0; i < p->Sq; i++) {
            int64_t off = attn__off(p->dbias.stride, b, h, i, j0);
            if (p->dbias.stride[3] == 1 && j1 > j0) /* +0.0 is all zero bits in every float dtype */
                memset((char *)p->dbias.data + (size_t)off * es, 0, (size_t)(j1 - j0) * es);
            else
                for (int64_t j = j0; j < j1; j++) attn__stf(&p->dbias, off + (j - j0) * p->dbias.stride[3], 0.0f);
        }
}

void attn__tiled_fused_kvhead(const attn__sdpa *p, int64_t b, int64_t hkv, const attn__fused_part *part,
                              const float *delta, float *ws)
{
    float *dqa = ws + attn__tiled_backward_ws(p);
    int64_t g0 = part->h0 - hkv * p->group, g1 = part->h1 - hkv * p->group;
    memset(dqa + g0 * p->Sq * p->Dk, 0, sizeof(float) * (size_t)((g1 - g0) * p->Sq * p->Dk));
    attn__fused_zero_dbias(p, b, part, TK);
    for (int64_t kb = part->kb0; kb < part->kb1; kb++)
        dkdv_block(p, b, hkv, kb, part->h0, part->h1, delta, ws, dqa, part);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t x = 0; x < p->Dk; x++)
                attn__stf(&p->dq, attn__off(p->dq.stride, b, i, hkv * p->group + g, x), dqa[(g * p->Sq + i) * p->Dk + x]);
}

void attn__tiled_dq_block(const attn__sdpa *p, int64_t b, int64_t h, int64_t qb,
                          const float *delta, bool write_dbias, float *ws)
{
    int64_t i0 = qb * TQ, nq = p->Sq - i0 < TQ ? p->Sq - i0 : TQ, hk = h / p->group;
    float *qr = ws, *dq = qr + p->Dk, *dor = dq + p->Dk;   /* (Dk), (Dk), (Dv) */
    float *kt = dor + p->Dv, *vt = kt + TK * p->Dk;        /* (TK, Dk), (TK, Dv) */
    const float *dl = delta + (b * p->Hq + h) * p->Sq;
    float hid[TK];

    for (int64_t i = i0; i < i0 + nq; i++) {
        int64_t lo, hi;
        attn__key_range(p, b, i, &lo, &hi);
        float lse = lo < hi ? lse_at(p, b, h, i) : -INFINITY;
        memset(dq, 0, sizeof(float) * (size_t)p->Dk);
        if (write_dbias)
            for (int64_t j = 0; j < p->Sk; j++) attn__stf(&p->dbias, attn__off(p->dbias.stride, b, h, i, j), 0.0f);
        if (lse != -INFINITY) {
            load_rows(&p->q, b, i, 1, h, p->Dk, qr);
            load_rows(&p->d_o, b, i, 1, h, p->Dv, dor);
        }
        for (int64_t j0 = lo / TK * TK; lse != -INFINITY && j0 < hi; j0 += TK) {
            if ((j0 = attn__next_key_tile(p, b, h, i, 1, j0, TK)) >= hi) break;
            int64_t c0 = lo > j0 ? lo - j0 : 0, c1 = hi - j0 < TK ? hi - j0 : TK;
            int kind = attn__tile_kind(p, b, h, i, 1, j0 + c0, c1 - c0);
            if (kind == ATTN__BLK_EMPTY) continue;
            attn__tiles_add(1);
            hidden_keys(p, b, h, i, j0, c1, hid);
            load_rows(&p->k, b, j0 + c0, c1 - c0, hk, p->Dk, kt + c0 * p->Dk);
            load_rows(&p->v, b, j0 + c0, c1 - c0, hk, p->Dv, vt + c0 * p->Dv);
            for (int64_t c = c0; c < c1; c++) {
                elem_grad g;
                if (hid[c] != 0.0f) continue;
                if (!element_grad(p, b, h, i, j0 + c, dotf(qr, kt + c * p->Dk, p->Dk), dor,
                                  vt + c * p->Dv, lse, dl[i], &g))
                    continue;
                for (int64_t x = 0; x < p->Dk; x++) dq[x] += g.dqk * kt[c * p->Dk + x];
                if (write_dbias) attn__stf(&p->dbias, attn__off(p->dbias.stride, b, h, i, j0 + c), g.ds);
            }
        }
        for (int64_t x = 0; x < p->Dk; x++) attn__stf(&p->dq, attn__off(p->dq.stride, b, i, h, x), dq[x]);
    }
}

void attn__tiled_weights_row(const attn__sdpa *p, int64_t b, int64_t h, int64_t i,
                             bool with_dropout, float *out)
{
    int64_t lo, hi, hk = h / p->group;
    attn__key_range(p, b, i, &lo, &hi);
    float lse = lo < hi ? lse_at(p, b, h, i) : -INFINITY;
    float hid[TK];
    for (int64_t j = 0; j < p->Sk; j++) {
        out[j] = 0.0f;
        if (j % TK == 0) hidden_keys(p, b, h, i, j, p->Sk - j < TK ? p->Sk - j : TK, hid);
        if (lse == -INFINITY || j < lo || j >= hi || hid[j % TK] != 0.0f) continue;
        float dot = 0.0f, cg;
        for (int64_t x = 0; x < p->Dk; x++)
            dot += attn__ldf(&p->q, attn__off(p->q.stride, b, i, h, x)) *
                   attn__ldf(&p->k, attn__off(p->k.stride, b, j, hk, x));
        float s = score(p, b, h, i, j, dot, &cg);
        if (s == -INFINITY) continue;
        out[j] = expf(s - lse);
        if (with_dropout) out[j] *= drop_factor(p, b, h, i, j);
    }
}
