/* test_args.c - table-driven argument checks of every public function in
 * every dtype combination (F32, BF16, F16; F32 Q over a BF16 or F16 K/V:
 * the forward's cases only), the dtype combinations that are refused, a
 * test that produces every status code, and out-of-memory injection
 * through the allocator hook (every k-th allocation fails: a clean error,
 * no leak, nothing written) on every kernel path and dtype combination. */
#define _GNU_SOURCE
#include "problem.h"

#include "core/half.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { B = 2, SQ = 5, SK = 6, HQ = 4, HKV = 2, DK = 3, DV = 2 };
enum { OP_FORWARD, OP_BACKWARD, OP_WEIGHTS };

/* The dtype combinations: Q's (O, dO, dQ, w, bias) and K/V's. */
enum { DT_F32, DT_BF16, DT_F16, DT_MIXED_BF16, DT_MIXED_F16, N_DT };
static const attn_dtype dt_q[N_DT] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16, ATTN_DTYPE_F16, ATTN_DTYPE_F32,
                                      ATTN_DTYPE_F32};
static const attn_dtype dt_kv[N_DT] = {ATTN_DTYPE_F32, ATTN_DTYPE_BF16, ATTN_DTYPE_F16, ATTN_DTYPE_BF16,
                                       ATTN_DTYPE_F16};
static const char *const dt_name[N_DT] = {"f32", "bf16", "f16", "f32+bf16kv", "f32+f16kv"};

/* Room for n elements of any dtype the fixture uses (at most 4 bytes). */
#define ROOM(n) ((n) * 4)

/* A valid call of each entry point in one dtype combination; a case breaks
 * one thing. */
typedef struct {
    unsigned char q[ROOM(B * SQ * HQ * DK)], k[ROOM(B * SK * HKV * DK)], v[ROOM(B * SK * HKV * DV)];
    unsigned char o[ROOM(B * SQ * HQ * DV)], lse[ROOM(B * HQ * SQ)], d_o[ROOM(B * SQ * HQ * DV)];
    unsigned char dq[ROOM(B * SQ * HQ * DK)], dk[ROOM(B * SK * HKV * DK)], dv[ROOM(B * SK * HKV * DV)];
    unsigned char bias[ROOM(SQ * SK)], dbias[ROOM(SQ * SK)], w[ROOM(B * 2 * 3 * SK)];
    uint8_t mask[B * SK];
    double q64[B * SQ * HQ * DK];
    int64_t heads[2], rows[3], qlens[B], klens[B];
    double alibi[HQ];
    attn_tensor tq, tk, tv, to, tl, tdo, tdq, tdk, tdv, tb, tdb, tm, tw;
    attn_tensor *pq, *pk, *pv, *po, *pl, *pdo, *pdq, *pdk, *pdv, *pdb, *pw;
    attn_sdpa_params prm;
    attn_sdpa_params *pprm;
    attn_ctx *ctx;
    int64_t n_heads, n_rows;
    const int64_t *pheads, *prows;
} fx;

/* n random values in [-1, 1) into buf, in dtype dt. */
static void fill(uint64_t *s, unsigned char *buf, size_t n, attn_dtype dt)
{
    for (size_t x = 0; x < n; x++) {
        float v = (float)t_rand_uniform(s, -1, 1);
        if (dt == ATTN_DTYPE_F32) memcpy(buf + 4 * x, &v, 4);
        else ((uint16_t *)(void *)buf)[x] = dt == ATTN_DTYPE_BF16 ? attn__f32_to_bf16(v) : attn__f32_to_f16(v);
    }
}

static void fx_init(fx *f, int dt)
{
    memset(f, 0, sizeof *f);
    uint64_t s = 5;
    attn_dtype d = dt_q[dt], kv = dt_kv[dt];
    fill(&s, f->q, B * SQ * HQ * DK, d);
    fill(&s, f->k, B * SK * HKV * DK, kv);
    fill(&s, f->v, B * SK * HKV * DV, kv);
    fill(&s, f->d_o, B * SQ * HQ * DV, d);
    for (size_t x = 0; x < sizeof f->mask; x++) f->mask[x] = 1;
    f->tq = attn_tensor_make(f->q, d, B, SQ, HQ, DK);
    f->tk = attn_tensor_make(f->k, kv, B, SK, HKV, DK);
    f->tv = attn_tensor_make(f->v, kv, B, SK, HKV, DV);
    f->to = attn_tensor_make(f->o, d, B, SQ, HQ, DV);
    f->tl = attn_tensor_make(f->lse, ATTN_DTYPE_F32, B, HQ, SQ, 1);
    f->tdo = attn_tensor_make(f->d_o, d, B, SQ, HQ, DV);
    f->tdq = attn_tensor_make(f->dq, d, B, SQ, HQ, DK);
    f->tdk = attn_tensor_make(f->dk, kv, B, SK, HKV, DK);
    f->tdv = attn_tensor_make(f->dv, kv, B, SK, HKV, DV);
    f->tb = attn_tensor_make(f->bias, d, 1, 1, SQ, SK);
    f->tdb = attn_tensor_make(f->dbias, d, 1, 1, SQ, SK);
    f->tm = attn_tensor_make(f->mask, ATTN_DTYPE_BOOL, B, 1, 1, SK);
    f->tw = attn_tensor_make(f->w, d, B, 2, 3, SK);
    f->pq = &f->tq; f->pk = &f->tk; f->pv = &f->tv; f->po = &f->to; f->pl = &f->tl;
    f->pdo = &f->tdo; f->pdq = &f->tdq; f->pdk = &f->tdk; f->pdv = &f->tdv; f->pdb = &f->tdb;
    f->pw = &f->tw;
    f->prm = attn_sdpa_params_default();
    f->prm.bias = &f->tb;
    f->prm.mask = &f->tm;
    f->pprm = &f->prm;
    f->ctx = t_ctx(2);
    f->heads[0] = 3; f->heads[1] = 0;
    f->rows[0] = 4; f->rows[1] = 0; f->rows[2] = 2;
    f->pheads = f->heads; f->prows = f->rows;
    f->n_heads = 2; f->n_rows = 3;
    /* A valid forward first, so backward and weights get real O and LSE. */
    attn_sdpa_forward(f->ctx, &f->tq, &f->tk, &f->tv, &f->prm, &f->to, &f->tl);
}

/* Whether op can run in dtype combination dt: the mixed ones are forward only. */
static bool op_takes(int op, int dt) { return op == OP_FORWARD || dt < DT_MIXED_BF16; }

static attn_status fx_call(fx *f, int op)
{
    switch (op) {
    case OP_FORWARD:
        return attn_sdpa_forward(f->ctx, f->pq, f->pk, f->pv, f->pprm, f->po, f->pl);
    case OP_BACKWARD:
        return attn_sdpa_backward(f->ctx, f->pq, f->pk, f->pv, f->po, f->pdo, f->pl, f->pprm,
                                  f->pdq, f->pdk, f->pdv, f->pdb);
    default:
        return attn_sdpa_weights(f->ctx, f->pq, f->pk, f->pl, f->pprm, f->pheads, f->n_heads,
                                 f->prows, f->n_rows, 0, f->pw);
    }
}

typedef struct {
    const char *name;
    int op;
    void (*mutate)(fx *);
    attn_status want;
    const char *names; /* the message must contain this */
} arg_case;

#define MUT(name, body) static void name(fx *f) { body; }
MUT(m_ctx_null, f->ctx = NULL)
MUT(m_q_null, f->pq = NULL)
MUT(m_k_null, f->pk = NULL)
MUT(m_v_null, f->pv = NULL)
MUT(m_o_null, f->po = NULL)
MUT(m_q_data_null, f->tq.data = NULL)
MUT(m_v_data_null, f->tv.data = NULL)
MUT(m_q_dim_neg, f->tq.dim[1] = -1)
MUT(m_k_dim_neg, f->tk.dim[0] = -3)
MUT(m_dk_zero, f->tq.dim[3] = 0; f->tk.dim[3] = 0)
MUT(m_dv_zero, f->tv.dim[3] = 0; f->to.dim[3] = 0)
MUT(m_heads_not_multiple, f->tq.dim[2] = 3; f->to.dim[2] = 3; f->tl.dim[1] = 3)
MUT(m_hkv_zero, f->tk.dim[2] = 0; f->tv.dim[2] = 0)
MUT(m_k_batch, f->tk.dim[0] = 1)
MUT(m_k_dim, f->tk.dim[3] = 2)
MUT(m_v_seq, f->tv.dim[1] = 5)
MUT(m_o_shape, f->to.dim[1] = 4)
MUT(m_lse_shape, f->tl.dim[2] = 4)
MUT(m_k_dtype, f->tk.dtype = ATTN_DTYPE_F64)
MUT(m_q_dtype, f->tq.dtype = ATTN_DTYPE_BOOL)
MUT(m_o_dtype, f->to.dtype = ATTN_DTYPE_F64)
MUT(m_lse_dtype, f->tl.dtype = (attn_dtype)77)
MUT(m_q_stride_neg, f->tq.stride[2] = -3)
MUT(m_o_alias, f->to.stride[1] = 0)
MUT(m_o_alias2, f->to.stride[3] = 1; f->to.stride[2] = 1)
MUT(m_q_overflow_dims, f->tq.dim[0] = (int64_t)1 << 40; f->tq.dim[1] = (int64_t)1 << 40)
MUT(m_k_overflow_stride, f->tk.stride[1] = INT64_MAX / 2)
MUT(m_scale_nan, f->prm.has_scale = 1; f->prm.scale = NAN)
MUT(m_scale_inf, f->prm.has_scale = 1; f->prm.scale = INFINITY)
MUT(m_softcap_neg, f->prm.softcap = -1.0)
MUT(m_softcap_nan, f->prm.softcap = NAN)
MUT(m_p_one, f->prm.dropout_p = 1.0)
MUT(m_p_neg, f->prm.dropout_p = -0.1)
MUT(m_p_nan, f->prm.dropout_p = NAN)
MUT(m_causal_two, f->prm.causal = 2)
MUT(m_align_bad, f->prm.align = (attn_align)5)
MUT(m_window_bad, f->prm.window_left = -2)
MUT(m_qlens_range, f->qlens[0] = 2; f->qlens[1] = SQ + 1; f->prm.q_lens = f->qlens)
MUT(m_klens_neg, f->klens[0] = -1; f->prm.k_lens = f->klens)
MUT(m_alibi_nan, f->alibi[2] = NAN; f->prm.alibi_slopes = f->alibi)
MUT(m_bias_bcast, f->tb.dim[2] = 4)
MUT(m_bias_dtype, f->tb.dtype = ATTN_DTYPE_F64)
MUT(m_bias_dim_neg, f->tb.dim[3] = -1)
MUT(m_mask_dtype, f->tm.dtype = ATTN_DTYPE_F32)
MUT(m_mask_bcast, f->tm.dim[0] = 3)
MUT(m_mask_data_null, f->tm.data = NULL)
MUT(m_o_over_q, f->to.data = f->q)
MUT(m_lse_over_o, f->tl.data = f->o + 3)
MUT(m_o_over_mask, f->to.data = f->mask)
MUT(m_tiled_f64, attn_ctx_set_kernel(f->ctx, ATTN_KERNEL_TILED); f->tq.dtype = ATTN_DTYPE_F64; f->tq.data = f->q64)
MUT(m_lse_null, f->pl = NULL)
MUT(m_do_null, f->pdo = NULL)
MUT(m_dq_null, f->pdq = NULL)
MUT(m_dv_null, f->pdv = NULL)
MUT(m_dbias_no_bias, f->prm.bias = NULL)
MUT(m_dbias_shape, f->tdb.dim[2] = 1)
MUT(m_dq_over_dk, f->tdq.data = f->dk)
MUT(m_dk_over_k, f->tdk.data = f->k)
MUT(m_dv_over_do, f->tdv.data = f->d_o)
MUT(m_do_shape, f->tdo.dim[1] = 4)
MUT(m_dk_dtype, f->tdk.dtype = ATTN_DTYPE_F64)
MUT(m_dbias_alias, f->tdb.stride[3] = 0)
MUT(m_heads_range, f->heads[1] = HQ)
MUT(m_rows_range, f->rows[2] = -1)
MUT(m_nrows_neg, f->n_rows = -1)
MUT(m_w_shape, f->tw.dim[3] = SK - 1)
MUT(m_w_null, f->pw = NULL)
MUT(m_w_over_q, f->tw.data = f->q)
MUT(m_w_all_heads, f->pheads = NULL) /* then w must have Hq heads */

static const arg_case cases[] = {
    {"ctx NULL", OP_FORWARD, m_ctx_null, ATTN_NULL_ARG, "ctx"},
    {"q NULL", OP_FORWARD, m_q_null, ATTN_NULL_ARG, "q is"},
    {"k NULL", OP_FORWARD, m_k_null, ATTN_NULL_ARG, "k is"},
    {"v NULL", OP_FORWARD, m_v_null, ATTN_NULL_ARG, "v is"},
    {"o NULL", OP_FORWARD, m_o_null, ATTN_NULL_ARG, "o is"},
    {"q.data NULL", OP_FORWARD, m_q_data_null, ATTN_NULL_ARG, "q.data"},
    {"v.data NULL", OP_FORWARD, m_v_data_null, ATTN_NULL_ARG, "v.data"},
    {"q dim negative", OP_FORWARD, m_q_dim_neg, ATTN_BAD_DIM, "q.dim[1]"},
    {"k dim negative", OP_FORWARD, m_k_dim_neg, ATTN_BAD_DIM, "k.dim[0]"},
    {"Dk = 0", OP_FORWARD, m_dk_zero, ATTN_BAD_DIM, "Dk"},
    {"Dv = 0", OP_FORWARD, m_dv_zero, ATTN_BAD_DIM, "Dv"},
    {"Hq % Hkv != 0", OP_FORWARD, m_heads_not_multiple, ATTN_BAD_HEADS, "Hkv"},
    {"Hkv = 0", OP_FORWARD, m_hkv_zero, ATTN_BAD_HEADS, "Hkv"},
    {"k batch", OP_FORWARD, m_k_batch, ATTN_SHAPE_MISMATCH, "k is"},
    {"k head dim", OP_FORWARD, m_k_dim, ATTN_SHAPE_MISMATCH, "k is"},
    {"v seq", OP_FORWARD, m_v_seq, ATTN_SHAPE_MISMATCH, "v is"},
    {"o shape", OP_FORWARD, m_o_shape, ATTN_SHAPE_MISMATCH, "o is"},
    {"lse shape", OP_FORWARD, m_lse_shape, ATTN_SHAPE_MISMATCH, "lse is"},
    {"k dtype", OP_FORWARD, m_k_dtype, ATTN_BAD_DTYPE, "k.dtype"},
    {"q dtype", OP_FORWARD, m_q_dtype, ATTN_BAD_DTYPE, "q.dtype"},
    {"o dtype", OP_FORWARD, m_o_dtype, ATTN_BAD_DTYPE, "o.dtype"},
    {"lse dtype", OP_FORWARD, m_lse_dtype, ATTN_BAD_DTYPE, "lse.dtype"},
    {"negative stride", OP_FORWARD, m_q_stride_neg, ATTN_BAD_STRIDE, "q.stride[2]"},
    {"o aliases itself", OP_FORWARD, m_o_alias, ATTN_BAD_STRIDE, "o:"},
    {"o aliases itself 2", OP_FORWARD, m_o_alias2, ATTN_BAD_STRIDE, "o:"},
    {"dims overflow", OP_FORWARD, m_q_overflow_dims, ATTN_OVERFLOW, "q:"},
    {"stride overflow", OP_FORWARD, m_k_overflow_stride, ATTN_OVERFLOW, "k:"},
    {"scale NaN", OP_FORWARD, m_scale_nan, ATTN_BAD_PARAM, "scale"},
    {"scale Inf", OP_FORWARD, m_scale_inf, ATTN_BAD_PARAM, "scale"},
    {"softcap < 0", OP_FORWARD, m_softcap_neg, ATTN_BAD_PARAM, "softcap"},
    {"softcap NaN", OP_FORWARD, m_softcap_nan, ATTN_BAD_PARAM, "softcap"},
    {"dropout p = 1", OP_FORWARD, m_p_one, ATTN_BAD_PARAM, "dropout_p"},
    {"dropout p < 0", OP_FORWARD, m_p_neg, ATTN_BAD_PARAM, "dropout_p"},
    {"dropout p NaN", OP_FORWARD, m_p_nan, ATTN_BAD_PARAM, "dropout_p"},
    {"causal = 2", OP_FORWARD, m_causal_two, ATTN_BAD_PARAM, "causal"},
    {"align", OP_FORWARD, m_align_bad, ATTN_BAD_PARAM, "align"},
    {"window -2", OP_FORWARD, m_window_bad, ATTN_BAD_PARAM, "window"},
    {"q_lens > Sq", OP_FORWARD, m_qlens_range, ATTN_BAD_PARAM, "q_lens[1]"},
    {"k_lens < 0", OP_FORWARD, m_klens_neg, ATTN_BAD_PARAM, "k_lens[0]"},
    {"alibi NaN", OP_FORWARD, m_alibi_nan, ATTN_BAD_PARAM, "alibi_slopes[2]"},
    {"bias broadcast", OP_FORWARD, m_bias_bcast, ATTN_BAD_MASK, "params.bias.dim[2]"},
    {"bias dtype", OP_FORWARD, m_bias_dtype, ATTN_BAD_DTYPE, "params.bias"},
    {"bias dim < 0", OP_FORWARD, m_bias_dim_neg, ATTN_BAD_DIM, "params.bias.dim[3]"},
    {"mask dtype", OP_FORWARD, m_mask_dtype, ATTN_BAD_DTYPE, "params.mask"},
    {"mask broadcast", OP_FORWARD, m_mask_bcast, ATTN_BAD_MASK, "params.mask.dim[0]"},
    {"mask data NULL", OP_FORWARD, m_mask_data_null, ATTN_NULL_ARG, "params.mask.data"},
    {"o overlaps q", OP_FORWARD, m_o_over_q, ATTN_OVERLAP, "o overlaps q"},
    {"lse overlaps o", OP_FORWARD, m_lse_over_o, ATTN_OVERLAP, "lse overlaps o"},
    {"o overlaps mask", OP_FORWARD, m_o_over_mask, ATTN_OVERLAP, "o overlaps params.mask"},
    {"tiled kernel on F64", OP_FORWARD, m_tiled_f64, ATTN_UNSUPPORTED, "float32"},
    {"backward ctx NULL", OP_BACKWARD, m_ctx_null, ATTN_NULL_ARG, "ctx"},
    {"backward v NULL", OP_BACKWARD, m_v_null, ATTN_NULL_ARG, "v is"},
    {"backward o NULL", OP_BACKWARD, m_o_null, ATTN_NULL_ARG, "o is"},
    {"backward lse NULL", OP_BACKWARD, m_lse_null, ATTN_NULL_ARG, "lse is"},
    {"backward d_o NULL", OP_BACKWARD, m_do_null, ATTN_NULL_ARG, "d_o is"},
    {"backward dq NULL", OP_BACKWARD, m_dq_null, ATTN_NULL_ARG, "dq is"},
    {"backward dv NULL", OP_BACKWARD, m_dv_null, ATTN_NULL_ARG, "dv is"},
    {"backward Dk = 0", OP_BACKWARD, m_dk_zero, ATTN_BAD_DIM, "Dk"},
    {"backward heads", OP_BACKWARD, m_heads_not_multiple, ATTN_BAD_HEADS, "Hkv"},
    {"backward dbias without bias", OP_BACKWARD, m_dbias_no_bias, ATTN_BAD_PARAM, "dbias"},
    {"backward dbias shape", OP_BACKWARD, m_dbias_shape, ATTN_SHAPE_MISMATCH, "dbias is"},
    {"backward dq overlaps dk", OP_BACKWARD, m_dq_over_dk, ATTN_OVERLAP, "overlaps"},
    {"backward dk overlaps k", OP_BACKWARD, m_dk_over_k, ATTN_OVERLAP, "dk overlaps k"},
    {"backward dv overlaps d_o", OP_BACKWARD, m_dv_over_do, ATTN_OVERLAP, "dv overlaps d_o"},
    {"backward d_o shape", OP_BACKWARD, m_do_shape, ATTN_SHAPE_MISMATCH, "d_o is"},
    {"backward dk dtype", OP_BACKWARD, m_dk_dtype, ATTN_BAD_DTYPE, "dk.dtype"},
    {"backward dbias aliases", OP_BACKWARD, m_dbias_alias, ATTN_BAD_STRIDE, "dbias"},
    {"backward p = 1", OP_BACKWARD, m_p_one, ATTN_BAD_PARAM, "dropout_p"},
    {"backward mask", OP_BACKWARD, m_mask_bcast, ATTN_BAD_MASK, "params.mask"},
    {"weights q NULL", OP_WEIGHTS, m_q_null, ATTN_NULL_ARG, "q is"},
    {"weights lse NULL", OP_WEIGHTS, m_lse_null, ATTN_NULL_ARG, "lse is"},
    {"weights w NULL", OP_WEIGHTS, m_w_null, ATTN_NULL_ARG, "w is"},
    {"weights head index", OP_WEIGHTS, m_heads_range, ATTN_BAD_PARAM, "heads[1]"},
    {"weights row index", OP_WEIGHTS, m_rows_range, ATTN_BAD_PARAM, "rows[2]"},
    {"weights n_rows < 0", OP_WEIGHTS, m_nrows_neg, ATTN_BAD_DIM, "n_rows"},
    {"weights w shape", OP_WEIGHTS, m_w_shape, ATTN_SHAPE_MISMATCH, "w is"},
    {"weights w overlaps q", OP_WEIGHTS, m_w_over_q, ATTN_OVERLAP, "w overlaps q"},
    {"weights all heads needs Hq", OP_WEIGHTS, m_w_all_heads, ATTN_SHAPE_MISMATCH, "w is"},
    {"weights lse shape", OP_WEIGHTS, m_lse_shape, ATTN_SHAPE_MISMATCH, "lse is"},
    {"weights dropout p", OP_WEIGHTS, m_p_nan, ATTN_BAD_PARAM, "dropout_p"},
};

/* The dtype combinations that are refused, each from a valid fixture of
 * combination dt, and a few that are accepted (want ATTN_OK). */
typedef struct {
    const char *name;
    int dt, op;
    void (*mutate)(fx *);
    attn_status want;
    const char *names;
} dtype_case;

MUT(m_none, (void)f)
MUT(m_kv_f16, f->tk.dtype = ATTN_DTYPE_F16; f->tv.dtype = ATTN_DTYPE_F16)
MUT(m_kv_f32, f->tk.dtype = ATTN_DTYPE_F32; f->tv.dtype = ATTN_DTYPE_F32)
MUT(m_v_f16, f->tv.dtype = ATTN_DTYPE_F16)
MUT(m_q_f16, f->tq.dtype = ATTN_DTYPE_F16)
MUT(m_lse_bf16, f->tl.dtype = ATTN_DTYPE_BF16)
MUT(m_o_bf16, f->to.dtype = ATTN_DTYPE_BF16)
MUT(m_o_f32, f->to.dtype = ATTN_DTYPE_F32)
MUT(m_bias_f16, f->tb.dtype = ATTN_DTYPE_F16)
MUT(m_bias_bf16, f->tb.dtype = ATTN_DTYPE_BF16)
MUT(m_bias_f32, f->tb.dtype = ATTN_DTYPE_F32; f->tdb.dtype = ATTN_DTYPE_F32)
MUT(m_dbias_f32, f->tdb.dtype = ATTN_DTYPE_F32)
MUT(m_w_f32, f->tw.dtype = ATTN_DTYPE_F32)
MUT(m_dk_f32, f->tdk.dtype = ATTN_DTYPE_F32)
MUT(m_force_tiled, attn_ctx_set_kernel(f->ctx, ATTN_KERNEL_TILED))
MUT(m_force_ref, attn_ctx_set_kernel(f->ctx, ATTN_KERNEL_REF))

static const dtype_case dtype_cases[] = {
    {"bf16 q, f16 k and v", DT_BF16, OP_FORWARD, m_kv_f16, ATTN_BAD_DTYPE, "k.dtype is F16 (4) with q.dtype BF16"},
    {"f16 q, f32 k and v", DT_F16, OP_FORWARD, m_kv_f32, ATTN_BAD_DTYPE, "k.dtype is F32 (1) with q.dtype F16"},
    {"f32 q, bf16 k, f16 v", DT_MIXED_BF16, OP_FORWARD, m_v_f16, ATTN_BAD_DTYPE, "v.dtype is F16 (4) with k.dtype BF16"},
    {"f16 q, bf16 k and v", DT_MIXED_BF16, OP_FORWARD, m_q_f16, ATTN_BAD_DTYPE, "k.dtype is BF16 (5) with q.dtype F16"},
    {"mixed backward", DT_MIXED_BF16, OP_BACKWARD, m_none, ATTN_BAD_DTYPE, "is for attn_sdpa_forward only"},
    {"mixed backward f16", DT_MIXED_F16, OP_BACKWARD, m_none, ATTN_BAD_DTYPE, "k.dtype is F16 with q.dtype F32"},
    {"mixed weights", DT_MIXED_F16, OP_WEIGHTS, m_none, ATTN_BAD_DTYPE, "is for attn_sdpa_forward only"},
    {"half lse", DT_BF16, OP_FORWARD, m_lse_bf16, ATTN_BAD_DTYPE, "lse.dtype is BF16 (5) with q.dtype BF16; it must be F32"},
    {"half lse in backward", DT_F16, OP_BACKWARD, m_lse_bf16, ATTN_BAD_DTYPE, "lse.dtype is BF16"},
    {"half o under f32 q", DT_MIXED_BF16, OP_FORWARD, m_o_bf16, ATTN_BAD_DTYPE, "o.dtype is BF16 (5) with q.dtype F32; it must be F32"},
    {"f32 o under bf16 q", DT_BF16, OP_FORWARD, m_o_f32, ATTN_BAD_DTYPE, "o.dtype is F32 (1) with q.dtype BF16; it must be BF16"},
    {"f16 bias under bf16 q", DT_BF16, OP_FORWARD, m_bias_f16, ATTN_BAD_DTYPE, "params.bias.dtype is F16 (4) with q.dtype BF16"},
    {"bf16 bias under f32 q", DT_MIXED_BF16, OP_FORWARD, m_bias_bf16, ATTN_BAD_DTYPE, "params.bias.dtype is BF16"},
    {"f32 dbias of an f16 bias", DT_F16, OP_BACKWARD, m_dbias_f32, ATTN_BAD_DTYPE, "dbias.dtype is F32 (1) with q.dtype F16; it must be F16"},
    {"f32 dk under bf16 q", DT_BF16, OP_BACKWARD, m_dk_f32, ATTN_BAD_DTYPE, "dk.dtype is F32"},
    {"f32 w under f16 q", DT_F16, OP_WEIGHTS, m_w_f32, ATTN_BAD_DTYPE, "w.dtype is F32"},
    {"f32 bias under bf16 q", DT_BF16, OP_FORWARD, m_bias_f32, ATTN_OK, ""},
    {"f32 bias and dbias under f16 q", DT_F16, OP_BACKWARD, m_bias_f32, ATTN_OK, ""},
    {"f32 bias under f32 q, f16 k/v", DT_MIXED_F16, OP_FORWARD, m_none, ATTN_OK, ""},
    {"forced tiled, bf16", DT_BF16, OP_BACKWARD, m_force_tiled, ATTN_OK, ""},
    {"forced ref, mixed", DT_MIXED_F16, OP_FORWARD, m_force_ref, ATTN_OK, ""},
    {"forced ref, f16 weights", DT_F16, OP_WEIGHTS, m_force_ref, ATTN_OK, ""},
};

static bool outputs_unchanged(const fx *a, const fx *b)
{
    return memcmp(a->o, b->o, sizeof a->o) == 0 && memcmp(a->lse, b->lse, sizeof a->lse) == 0 &&
           memcmp(a->dq, b->dq, sizeof a->dq) == 0 && memcmp(a->dk, b->dk, sizeof a->dk) == 0 &&
           memcmp(a->dv, b->dv, sizeof a->dv) == 0 && memcmp(a->dbias, b->dbias, sizeof a->dbias) == 0 &&
           memcmp(a->w, b->w, sizeof a->w) == 0 && memcmp(a->q, b->q, sizeof a->q) == 0 &&
           memcmp(a->k, b->k, sizeof a->k) == 0 && memcmp(a->d_o, b->d_o, sizeof a->d_o) == 0;
}

static fx f_case, f_before; /* large: keep off the stack */

/* Case `name` from a fixture of dtype combination dt: op with mutate
 * applied must give want with a message containing names, and (on error)
 * write nothing. */
static void run_case(const char *name, int dt, int op, void (*mutate)(fx *), attn_status want, const char *names)
{
    fx_init(&f_case, dt);
    mutate(&f_case);
    memcpy(&f_before, &f_case, sizeof f_case);
    attn_status st = fx_call(&f_case, op);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", attn_last_error());
    attn_ctx_set_kernel(t_ctx(2), ATTN_KERNEL_AUTO);
    t_checks++;
    if (st != want || strstr(msg, names) == NULL)
        t_fail(__FILE__, __LINE__, "case '%s' (%s): got %s '%s', want %s naming '%s'", name, dt_name[dt],
               attn_status_name(st), msg, attn_status_name(want), names);
    if (want != ATTN_OK) T_CHECK(outputs_unchanged(&f_case, &f_before));
}

void test_argument_checks(void)
{
    for (int dt = 0; dt < N_DT; dt++) {
        for (int op = 0; op < 3; op++) { /* the unbroken fixture succeeds */
            if (!op_takes(op, dt)) continue;
            fx_init(&f_case, dt);
            T_EQ_STATUS(fx_call(&f_case, op), ATTN_OK);
        }
        for (size_t x = 0; x < sizeof cases / sizeof cases[0]; x++) {
            const arg_case *c = &cases[x];
            if (op_takes(c->op, dt)) run_case(c->name, dt, c->op, c->mutate, c->want, c->names);
        }
    }
    for (size_t x = 0; x < sizeof dtype_cases / sizeof dtype_cases[0]; x++) {
        const dtype_case *c = &dtype_cases[x];
        run_case(c->name, c->dt, c->op, c->mutate, c->want, c->names);
    }
    /* Context functions. */
    attn_ctx *ctx = NULL;
    T_EQ_STATUS(attn_ctx_create(-1, &ctx), ATTN_BAD_PARAM);
    T_CHECK(ctx == NULL);
    T_EQ_STATUS(attn_ctx_create(100000, &ctx), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_ctx_create(1, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_ctx_set_kernel(NULL, ATTN_KERNEL_REF), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_ctx_set_kernel(t_ctx(1), (attn_kernel)9), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "kernel") != NULL);
    T_EQ_INT(attn_ctx_threads(NULL), 0);
    attn_ctx_free(NULL);
    T_EQ_STATUS(attn_ctx_create(0, &ctx), ATTN_OK);
    T_CHECK(attn_ctx_threads(ctx) >= 1);
    attn_ctx_free(ctx);
}

#if defined(__SANITIZE_ADDRESS__)
#define ATTN_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTN_TEST_ASAN 1
#endif
#endif

#ifndef ATTN_TEST_ASAN
/* ATTN_THREAD: in a child process whose address space is capped, thread
 * stacks cannot be mapped. (Not under AddressSanitizer, whose own reserved
 * mappings make the cap meaningless.) */
static int thread_failure_status(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {64u << 20, 64u << 20};
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (f) {
            if (fscanf(f, "%lu", &pages) != 1) pages = 0;
            fclose(f);
        }
        rl.rlim_cur = rl.rlim_max = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (48u << 20);
        setrlimit(RLIMIT_AS, &rl);
        attn_ctx *ctx = NULL;
        attn_status st = attn_ctx_create(1024, &ctx);
        attn_ctx_free(ctx);
        _exit(st == ATTN_THREAD ? 0 : st == ATTN_NO_MEMORY ? 3 : 1);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 2;
}
#endif

void test_every_status_code(void)
{
    /* Each code from a real call (NO_MEMORY in out_of_memory too). */
    fx_init(&f_case, DT_F32);
    T_EQ_STATUS(fx_call(&f_case, OP_FORWARD), ATTN_OK);
    void (*mut[])(fx *) = {m_q_null, m_dk_zero, m_k_batch, m_k_dtype, m_q_stride_neg,
                           m_q_overflow_dims, m_p_one, m_heads_not_multiple, m_bias_bcast,
                           m_o_over_q, m_tiled_f64};
    attn_status want[] = {ATTN_NULL_ARG, ATTN_BAD_DIM, ATTN_SHAPE_MISMATCH, ATTN_BAD_DTYPE,
                          ATTN_BAD_STRIDE, ATTN_OVERFLOW, ATTN_BAD_PARAM, ATTN_BAD_HEADS,
                          ATTN_BAD_MASK, ATTN_OVERLAP, ATTN_UNSUPPORTED};
    for (size_t x = 0; x < sizeof want / sizeof want[0]; x++) {
        fx_init(&f_case, DT_F32);
        mut[x](&f_case);
        T_EQ_STATUS(fx_call(&f_case, OP_FORWARD), want[x]);
        attn_ctx_set_kernel(t_ctx(2), ATTN_KERNEL_AUTO);
    }
    /* ATTN_NO_MEMORY is produced by test_out_of_memory. */
#ifndef ATTN_TEST_ASAN
    T_EQ_INT(thread_failure_status(), 0); /* ATTN_THREAD */
#else
    printf("  (ATTN_THREAD is produced by the non-sanitizer build of this test)\n");
#endif
}

/* ---- out-of-memory injection ------------------------------------------------------ */

static atomic_long live, calls;
static long fail_at; /* fail the fail_at-th allocation (0-based), or -1 */

static void *failing_alloc(size_t n, void *user)
{
    (void)user;
    long c = atomic_fetch_add(&calls, 1);
    if (c == fail_at) return NULL;
    void *p = malloc(n);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

static void counting_free(void *p, void *user)
{
    (void)user;
    atomic_fetch_sub(&live, 1);
    free(p);
}

/* Runs op with the k-th allocation failing for k = 0, 1, ... until it
 * succeeds; each failure must be NO_MEMORY with no leak and no write. */
static void oom_sweep(const char *what, int dt, int op, attn_kernel kernel, bool with_dbias)
{
    long k = 0;
    for (;; k++) {
        fx_init(&f_case, dt);
        attn_ctx_set_kernel(f_case.ctx, kernel);
        if (!with_dbias) f_case.pdb = NULL;
        memcpy(&f_before, &f_case, sizeof f_case);
        atomic_store(&live, 0);
        atomic_store(&calls, 0);
        fail_at = k;
        attn_set_allocator(failing_alloc, counting_free, NULL);
        attn_status st = fx_call(&f_case, op);
        attn_set_allocator(NULL, NULL, NULL);
        attn_ctx_set_kernel(f_case.ctx, ATTN_KERNEL_AUTO);
        T_EQ_INT(atomic_load(&live), 0);
        if (atomic_load(&calls) <= k) { /* no allocation failed: done */
            T_EQ_STATUS(st, ATTN_OK);
            break;
        }
        t_checks++;
        if (st != ATTN_NO_MEMORY)
            t_fail(__FILE__, __LINE__, "%s: allocation %ld failed, got %s", what, k, attn_status_name(st));
        T_CHECK(outputs_unchanged(&f_case, &f_before));
    }
    T_CHECK(k >= 1); /* the call allocates at least once */
}

/* Every entry point (backward with and without a bias gradient: the
 * two-pass and the fused form) in every dtype combination on every kernel
 * path this machine has; a path it lacks is reported as skipped. */
void test_out_of_memory(void)
{
    static const char *const op_name[3] = {"forward", "backward", "weights"};
    t_report_absent_kernels();
    for (int x = 0; x < T_KERNELS; x++) {
        attn_kernel kernel = t_kernels[x];
        if (!t_kernel_available(kernel)) continue;
        for (int dt = 0; dt < N_DT; dt++)
            for (int op = 0; op < 3; op++)
                for (int dbias = 0; op_takes(op, dt) && dbias < (op == OP_BACKWARD ? 2 : 1); dbias++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s %s %s%s", dt_name[dt], attn_kernel_name(kernel), op_name[op],
                             dbias ? " + dbias" : "");
                    oom_sweep(what, dt, op, kernel, dbias != 0);
                }
    }
    /* Context creation with 3 threads: pool, thread table, worker args. */
    long k = 0;
    for (;; k++) {
        atomic_store(&live, 0);
        atomic_store(&calls, 0);
        fail_at = k;
        attn_set_allocator(failing_alloc, counting_free, NULL);
        attn_ctx *ctx = NULL;
        attn_status st = attn_ctx_create(3, &ctx);
        bool failed = atomic_load(&calls) > k;
        attn_ctx_free(ctx);
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(atomic_load(&live), 0);
        if (!failed) {
            T_EQ_STATUS(st, ATTN_OK);
            break;
        }
        T_EQ_STATUS(st, ATTN_NO_MEMORY);
        T_CHECK(ctx == NULL);
    }
    T_CHECK(k >= 3);
}
