/* kernel_digest.c - a fingerprint of what one kernel computes: a fixed set
 * of attention problems (every dtype, masks and options, the fused and the
 * split backward, decode), forward and backward, each output hashed
 * (FNV-1a over its bytes). Two builds or two machines that print the same
 * digests computed the same bits.
 *
 *   attn_kernel_digest [avx2|avx512|tiled|...]   (default: auto)
 *
 * Used to check that a refactor leaves a kernel's results unchanged, and
 * that the AVX-512 kernels on an AVX-512 CPU give the bits of their AVX2
 * emulation (scripts/test_avx512_emu.sh). Public API only; exits 1 when a
 * call fails. */
#include <attn/attn.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    attn_dtype dt, kv_dt;
    int64_t B, Sq, Sk, Hq, Hkv, Dk, Dv;
    int causal, align, window, bias, dropout, softcap, alibi, lens, backward;
} problem;

static const problem problems[] = {
    {"f32 causal 4 heads (fused bwd)", ATTN_DTYPE_F32, ATTN_DTYPE_F32, 1, 200, 200, 4, 4, 64, 64, 1, 0, 0, 0, 0, 0, 0, 0, 1},
    {"f32 gqa bias window dropout", ATTN_DTYPE_F32, ATTN_DTYPE_F32, 2, 130, 190, 4, 2, 80, 48, 0, 0, 1, 1, 1, 0, 0, 1, 1},
    {"f32 softcap alibi causal br", ATTN_DTYPE_F32, ATTN_DTYPE_F32, 1, 97, 300, 2, 1, 128, 128, 1, 1, 0, 0, 0, 1, 1, 0, 1},
    {"f32 small dims", ATTN_DTYPE_F32, ATTN_DTYPE_F32, 3, 33, 70, 2, 2, 16, 24, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    {"bf16 causal", ATTN_DTYPE_BF16, ATTN_DTYPE_BF16, 1, 150, 150, 2, 2, 64, 64, 1, 0, 0, 0, 0, 0, 0, 0, 1},
    {"f16 window", ATTN_DTYPE_F16, ATTN_DTYPE_F16, 1, 120, 120, 4, 4, 32, 32, 0, 0, 1, 0, 0, 0, 0, 0, 1},
    {"f32 decode", ATTN_DTYPE_F32, ATTN_DTYPE_F32, 1, 1, 3000, 8, 2, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"f32 decode over bf16 kv", ATTN_DTYPE_F32, ATTN_DTYPE_BF16, 1, 1, 2100, 9, 3, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"f32 decode 4 queries causal", ATTN_DTYPE_F32, ATTN_DTYPE_F32, 1, 4, 1500, 4, 1, 96, 96, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"f32 decode over f16 kv, group 4", ATTN_DTYPE_F32, ATTN_DTYPE_F16, 1, 1, 2100, 8, 2, 128, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"bf16 decode, group 8", ATTN_DTYPE_BF16, ATTN_DTYPE_BF16, 1, 1, 1500, 16, 2, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"f32 decode over bf16 kv, group 5", ATTN_DTYPE_F32, ATTN_DTYPE_BF16, 2, 1, 1100, 5, 1, 40, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static float uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 4503599627370496.0 - 1.0);
}

/* x rounded to a half dtype, to nearest even (finite inputs only). */
static uint16_t to_half(float x, attn_dtype dt)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if (dt == ATTN_DTYPE_BF16) return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    /* F16: values here are normal and small (|x| < 4) */
    uint32_t sign = (u >> 16) & 0x8000u, exp = (u >> 23) & 0xFFu, man = u & 0x7FFFFFu;
    if (exp < 103) return (uint16_t)sign;
    if (exp < 113) { /* subnormal */
        man |= 0x800000u;
        int shift = (int)(126 - exp);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((exp - 112) << 10) | (man >> 13), rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

static size_t esize(attn_dtype dt) { return dt == ATTN_DTYPE_F32 ? 4 : 2; }

static void *filled(int64_t n, attn_dtype dt, float amp)
{
    void *p = malloc((size_t)n * esize(dt) + 1);
    if (p == NULL) return NULL;
    for (int64_t i = 0; i < n; i++) {
        float x = amp * uniform();
        if (dt == ATTN_DTYPE_F32) ((float *)p)[i] = x;
        else ((uint16_t *)p)[i] = to_half(x, dt);
    }
    return p;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001B3u;
    return h;
}

static int run(attn_ctx *ctx, const problem *pr)
{
    int64_t nq = pr->B * pr->Sq * pr->Hq, nk = pr->B * pr->Sk * pr->Hkv;
    attn_dtype dt = pr->dt, kd = pr->kv_dt;
    void *q = filled(nq * pr->Dk, dt, 2.0f), *k = filled(nk * pr->Dk, kd, 2.0f), *v = filled(nk * pr->Dv, kd, 1.0f);
    void *o = calloc((size_t)(nq * pr->Dv), esize(dt)), *d_o = filled(nq * pr->Dv, dt, 1.0f);
    void *dq = calloc((size_t)(nq * pr->Dk), esize(dt)), *dk = calloc((size_t)(nk * pr->Dk), esize(kd));
    void *dv = calloc((size_t)(nk * pr->Dv), esize(kd));
    float *lse = calloc((size_t)nq, sizeof(float));
    float *bias = pr->bias ? filled(pr->Sq * pr->Sk, ATTN_DTYPE_F32, 1.5f) : NULL;
    float *dbias = pr->bias ? calloc((size_t)(pr->Sq * pr->Sk), sizeof(float)) : NULL;
    int rc = 1;
    if (!q || !k || !v || !o || !d_o || !dq || !dk || !dv || !lse || (pr->bias && (!bias || !dbias))) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    attn_tensor tq = attn_tensor_make(q, dt, pr->B, pr->Sq, pr->Hq, pr->Dk);
    attn_tensor tk = attn_tensor_make(k, kd, pr->B, pr->Sk, pr->Hkv, pr->Dk);
    attn_tensor tv = attn_tensor_make(v, kd, pr->B, pr->Sk, pr->Hkv, pr->Dv);
    attn_tensor to = attn_tensor_make(o, dt, pr->B, pr->Sq, pr->Hq, pr->Dv);
    attn_tensor tdo = attn_tensor_make(d_o, dt, pr->B, pr->Sq, pr->Hq, pr->Dv);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, pr->B, pr->Hq, pr->Sq, 1);
    attn_tensor tdq = attn_tensor_make(dq, dt, pr->B, pr->Sq, pr->Hq, pr->Dk);
    attn_tensor tdk = attn_tensor_make(dk, kd, pr->B, pr->Sk, pr->Hkv, pr->Dk);
    attn_tensor tdv = attn_tensor_make(dv, kd, pr->B, pr->Sk, pr->Hkv, pr->Dv);
    attn_tensor tb = attn_tensor_make(bias, ATTN_DTYPE_F32, 1, 1, pr->Sq, pr->Sk);
    attn_tensor tdb = attn_tensor_make(dbias, ATTN_DTYPE_F32, 1, 1, pr->Sq, pr->Sk);
    double slopes[16];
    for (int h = 0; h < 16; h++) slopes[h] = pow(2.0, -(h + 1));
    int64_t q_lens[3] = {pr->Sq, pr->Sq - 7, pr->Sq / 2}, k_lens[3] = {pr->Sk - 3, pr->Sk, pr->Sk / 3};
    attn_sdpa_params p = attn_sdpa_params_default();
    p.causal = pr->causal;
    p.align = pr->align ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    if (pr->window) {
        p.window_left = 40;
        p.window_right = 25;
    }
    p.bias = pr->bias ? &tb : NULL;
    p.dropout_p = pr->dropout ? 0.2 : 0.0;
    p.seed = 1234;
    p.softcap = pr->softcap ? 5.0 : 0.0;
    p.alibi_slopes = pr->alibi ? slopes : NULL;
    p.q_lens = pr->lens ? q_lens : NULL;
    p.k_lens = pr->lens ? k_lens : NULL;
    attn_status st = attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, &tl);
    if (st != ATTN_OK) {
        fprintf(stderr, "%s: forward: %s\n", pr->name, attn_last_error());
        goto done;
    }
    uint64_t hf = fnv(o, (size_t)(nq * pr->Dv) * esize(dt), 0xCBF29CE484222325u);
    hf = fnv(lse, (size_t)nq * sizeof(float), hf);
    printf("%-32s forward  %016llx\n", pr->name, (unsigned long long)hf);
    if (pr->backward) {
        st = attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, &p, &tdq, &tdk, &tdv, pr->bias ? &tdb : NULL);
        if (st != ATTN_OK) {
            fprintf(stderr, "%s: backward: %s\n", pr->name, attn_last_error());
            goto done;
        }
        uint64_t hb = fnv(dq, (size_t)(nq * pr->Dk) * esize(dt), 0xCBF29CE484222325u);
        hb = fnv(dk, (size_t)(nk * pr->Dk) * esize(kd), hb);
        hb = fnv(dv, (size_t)(nk * pr->Dv) * esize(kd), hb);
        if (pr->bias) hb = fnv(dbias, (size_t)(pr->Sq * pr->Sk) * sizeof(float), hb);
        printf("%-32s backward %016llx\n", pr->name, (unsigned long long)hb);
    }
    rc = 0;
done:
    free(q), free(k), free(v), free(o), free(d_o), free(dq), free(dk), free(dv), free(lse), free(bias), free(dbias);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"auto", "ref", "tiled", "avx2", "avx512", "amx", "avx512bf16"};
    attn_kernel kernel = ATTN_KERNEL_AUTO;
    if (argc > 1) {
        size_t x = 0;
        while (x < sizeof names / sizeof names[0] && strcmp(names[x], argv[1]) != 0) x++;
        if (x == sizeof names / sizeof names[0]) {
            fprintf(stderr, "usage: %s [auto|ref|tiled|avx2|avx512|amx|avx512bf16]\n", argv[0]);
            return 2;
        }
        kernel = (attn_kernel)x;
    }
    attn_ctx *ctx = NULL;
    if (attn_ctx_create(1, &ctx) != ATTN_OK || attn_ctx_set_kernel(ctx, kernel) != ATTN_OK) {
        fprintf(stderr, "%s\n", attn_last_error());
        attn_ctx_free(ctx);
        return 1;
    }
    printf("kernel %s\n", attn_kernel_name(attn_ctx_resolved_kernel(ctx)));
    int rc = 0;
    for (size_t x = 0; x < sizeof problems / sizeof problems[0] && rc == 0; x++) rc = run(ctx, &problems[x]);
    attn_ctx_free(ctx);
    return rc;
}
