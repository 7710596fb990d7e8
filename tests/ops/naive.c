/* naive.c - naive attention, forward and backward, straight from the math
 * with float accumulators: the baseline e_base of the error rule (an
 * optimized kernel may be at most 2x (forward) / 3x (gradients) as far
 * from ref64 as this). In a half dtype every step's result is rounded to
 * it, as a framework computing in that dtype does (PyTorch's math path:
 * each matmul accumulates in float32 and rounds its result, softmax
 * rounds its output). Its mask logic is written from the spec again, so it
 * is also a third opinion on the masks (but for a block mask, whose
 * definition it takes from the library: test_block_mask.c checks those
 * definitions against the tests' own formulas). */
#include "problem.h"

#include "core/half.h"
#include "kernels/block_mask.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static int64_t bidx(const int64_t dim[4], int64_t b, int64_t h, int64_t i, int64_t j)
{
    b = dim[0] == 1 ? 0 : b;
    h = dim[1] == 1 ? 0 : h;
    i = dim[2] == 1 ? 0 : i;
    j = dim[3] == 1 ? 0 : j;
    return ((b * dim[1] + h) * dim[2] + i) * dim[3] + j;
}

/* x rounded to dt (F32: unchanged). */
static float rnd(attn_dtype dt, float x)
{
    if (dt == ATTN_DTYPE_BF16) return attn__bf16_to_f32(attn__f32_to_bf16(x));
    if (dt == ATTN_DTYPE_F16) return attn__f16_to_f32(attn__f32_to_f16(x));
    return x;
}

/* Score of (b, h, i, j) in float, or -inf if masked; *cg = d s / d(scale q.k). */
static float score(const t_problem *P, attn_dtype dt, int64_t b, int64_t h, int64_t i, int64_t j, float *cg)
{
    const t_cfg *c = &P->c;
    int64_t lq = P->qlens ? P->qlens[b] : c->Sq, lk = P->klens ? P->klens[b] : c->Sk;
    if (i >= lq || j >= lk) return -INFINITY;
    int64_t ia = c->align == ATTN_ALIGN_OFFSET ? i + c->align_offset : c->align ? i + lk - lq : i;
    if (c->causal && j > ia) return -INFINITY;
    if (c->window_left >= 0 && j < ia - c->window_left) return -INFINITY;
    if (c->window_right >= 0 && j > ia + c->window_right) return -INFINITY;
    if (P->mask && !P->mask[bidx(P->mask_dim, b, h, i, j)]) return -INFINITY;
    if (P->bm && !attn__bm_def(P->bm, b, h, i, j)) return -INFINITY;
    int64_t hk = h / (c->Hq / c->Hkv);
    float dot = 0.0f;
    for (int64_t d = 0; d < c->Dk; d++)
        dot += (float)P->q[((b * c->Sq + i) * c->Hq + h) * c->Dk + d] *
               (float)P->k[((b * c->Sk + j) * c->Hkv + hk) * c->Dk + d];
    float s = rnd(dt, (float)(c->scale != 0.0 ? c->scale : 1.0 / sqrt((double)c->Dk)) * rnd(dt, dot));
    *cg = 1.0f;
    if (c->softcap > 0.0) {
        float t = rnd(dt, tanhf(rnd(dt, s / (float)c->softcap)));
        s = rnd(dt, (float)c->softcap * t);
        *cg = rnd(dt, 1.0f - t * t);
    }
    if (P->bias) {
        float bv = (float)P->bias[bidx(P->bias_dim, b, h, i, j)];
        if (bv <= -FLT_MAX) return -INFINITY;
        s = rnd(dt, s + bv);
    }
    if (P->alibi) s = rnd(dt, s - (float)P->alibi[h] * (float)llabs(ia - j));
    return s;
}

static float factor32(const t_problem *P, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (P->c.dropout_p <= 0.0) return 1.0f;
    attn_sdpa_params a = t_params(P, NULL, NULL);
    return attn_dropout_keep(a.seed, a.offset, a.dropout_p, b, h, i, j, P->c.Hq)
               ? (float)(1.0 / (1.0 - a.dropout_p)) : 0.0f;
}

void t_naive(const t_problem *P, attn_dtype dt, bool want_grad, t_result *r)
{
    const t_cfg *c = &P->c;
    int64_t B = c->B, Sq = c->Sq, Sk = c->Sk, Hq = c->Hq, Hkv = c->Hkv, Dk = c->Dk, Dv = c->Dv;
    memset(r, 0, sizeof *r);
    r->o = calloc((size_t)(B * Sq * Hq * Dv + 1), sizeof(double));
    r->lse = calloc((size_t)(B * Hq * Sq + 1), sizeof(double));
    float *p = calloc((size_t)(Sk + 1), sizeof(float)), *cg = calloc((size_t)(Sk + 1), sizeof(float));
    float *dq = calloc((size_t)(Dk + 1), sizeof(float)), *orow32 = calloc((size_t)(Dv + 1), sizeof(float));
    float *dk = NULL, *dv = NULL, *db = NULL;
    if (want_grad) {
        r->dq = calloc((size_t)(B * Sq * Hq * Dk + 1), sizeof(double));
        r->dk = calloc((size_t)(B * Sk * Hkv * Dk + 1), sizeof(double));
        r->dv = calloc((size_t)(B * Sk * Hkv * Dv + 1), sizeof(double));
        dk = calloc((size_t)(B * Sk * Hkv * Dk + 1), sizeof(float));
        dv = calloc((size_t)(B * Sk * Hkv * Dv + 1), sizeof(float));
        if (P->bias) {
            r->dbias = calloc((size_t)(t_numel(P->bias_dim) + 1), sizeof(double));
            db = calloc((size_t)(t_numel(P->bias_dim) + 1), sizeof(float));
        }
    }
    float scale = (float)(c->scale != 0.0 ? c->scale : 1.0 / sqrt((double)Dk));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < Sq; i++) {
                int64_t hk = h / (Hq / Hkv), orow = ((b * Sq + i) * Hq + h);
                float m = -INFINITY, l = 0.0f;
                bool any = false;
                for (int64_t j = 0; j < Sk; j++) {
                    p[j] = score(P, dt, b, h, i, j, &cg[j]);
                    any |= p[j] != -INFINITY;
                    if (p[j] > m) m = p[j];
                }
                r->lse[(b * Hq + h) * Sq + i] = -INFINITY;
                if (!any) continue;
                if (m == -INFINITY) m = 0.0f;
                for (int64_t j = 0; j < Sk; j++)
                    if (p[j] != -INFINITY) l += expf(p[j] - m);
                r->lse[(b * Hq + h) * Sq + i] = m + logf(l);
                for (int64_t d = 0; d < Dv; d++) orow32[d] = 0.0f;
                for (int64_t j = 0; j < Sk; j++) {
                    if (p[j] == -INFINITY) { p[j] = -1.0f; continue; } /* -1 marks masked */
                    p[j] = rnd(dt, expf(p[j] - m) / l);
                    float f = factor32(P, b, h, i, j);
                    if (f == 0.0f) continue;
                    float pf = rnd(dt, p[j] * f);
                    for (int64_t d = 0; d < Dv; d++)
                        orow32[d] += pf * (float)P->v[((b * Sk + j) * Hkv + hk) * Dv + d];
                }
                for (int64_t d = 0; d < Dv; d++) r->o[orow * Dv + d] = orow32[d] = rnd(dt, orow32[d]);
                if (!want_grad) continue;
                float delta = 0.0f;
                for (int64_t d = 0; d < Dv; d++) delta += (float)P->dout[orow * Dv + d] * orow32[d];
                delta = rnd(dt, delta);
                for (int64_t d = 0; d < Dk; d++) dq[d] = 0.0f;
                for (int64_t j = 0; j < Sk; j++) {
                    if (p[j] < 0.0f) continue;
                    float f = factor32(P, b, h, i, j), dp = 0.0f;
                    int64_t krow = (b * Sk + j) * Hkv + hk;
                    float pf = rnd(dt, p[j] * f);
                    for (int64_t d = 0; f != 0.0f && d < Dv; d++) {
                        float g = (float)P->dout[orow * Dv + d];
                        dv[krow * Dv + d] += pf * g;
                        dp += g * (float)P->v[krow * Dv + d];
                    }
                    float ds = rnd(dt, p[j] * rnd(dt, rnd(dt, f * rnd(dt, dp)) - delta));
                    if (db) db[bidx(P->bias_dim, b, h, i, j)] += ds;
                    float dqk = rnd(dt, rnd(dt, ds * cg[j]) * scale);
                    for (int64_t d = 0; d < Dk; d++) {
                        dq[d] += dqk * (float)P->k[krow * Dk + d];
                        dk[krow * Dk + d] += dqk * (float)P->q[orow * Dk + d];
                    }
                }
                for (int64_t d = 0; d < Dk; d++) r->dq[orow * Dk + d] = rnd(dt, dq[d]);
            }
    if (want_grad) {
        for (int64_t x = 0; x < B * Sk * Hkv * Dk; x++) r->dk[x] = rnd(dt, dk[x]);
        for (int64_t x = 0; x < B * Sk * Hkv * Dv; x++) r->dv[x] = rnd(dt, dv[x]);
        for (int64_t x = 0; db && x < t_numel(P->bias_dim); x++) r->dbias[x] = rnd(dt, db[x]);
    }
    free(p);
    free(cg);
    free(dq);
    free(orow32);
    free(dk);
    free(dv);
    free(db);
    r->status = ATTN_OK;
    r->guards_ok = true;
}
