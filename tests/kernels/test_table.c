/* test_table.c - the CPU-feature file and the kernel table: the features
 * against the kernel's own view (/proc/cpuinfo), which table each kernel
 * choice gets, the status of forcing every attn_kernel value on this
 * machine (branching on the detected features, so the expectations hold on
 * any CPU), ATTN_KERNEL in the environment, attn_ctx_describe, and the
 * portable fused backward against the two-pass one (bitwise). */
#include "test.h"

#include "core/cpu.h"
#include "kernels/nn_kernels.h"
#include "kernels/table.h"
#include "ops/ctx.h"
#if defined(ATTN_HAVE_AVX2)
#include "kernels/x86/sdpa_x86.h"
#endif

#include <stdlib.h>
#include <string.h>

/* Which kernels this build compiled (CMake's definitions). */
#if defined(ATTN_HAVE_AVX2)
#define BUILT_AVX2 true
#else
#define BUILT_AVX2 false
#endif
#if defined(ATTN_HAVE_AVX512) && defined(ATTN_HAVE_AVX2)
#define BUILT_AVX512 true
#else
#define BUILT_AVX512 false
#endif
#if defined(ATTN_HAVE_AVX512BF16)
#define BUILT_AVX512BF16 true
#else
#define BUILT_AVX512BF16 false
#endif
#if defined(ATTN_HAVE_AMX)
#define BUILT_AMX true
#else
#define BUILT_AMX false
#endif

static bool contains(const char *s, const char *what) { return strstr(s, what) != NULL; }

/* /proc/cpuinfo's "flags" and "model name" of the first CPU; false if it
 * cannot be read (not Linux). */
static bool read_cpuinfo(char *flags, size_t fcap, char *model, size_t mcap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    bool got_flags = false;
    model[0] = '\0';
    if (f == NULL) return false;
    while (fgets(line, sizeof line, f) != NULL && !got_flags) {
        char *colon = strchr(line, ':');
        if (colon == NULL) continue;
        char *val = colon + 1 + (colon[1] == ' ');
        val[strcspn(val, "\n")] = '\0';
        if (strncmp(line, "model name", 10) == 0 && model[0] == '\0') snprintf(model, mcap, "%s", val);
        if (strncmp(line, "flags", 5) == 0) {
            snprintf(flags, fcap, " %s ", val);
            got_flags = true;
        }
    }
    fclose(f);
    return got_flags;
}

void test_cpu_features(void)
{
    const attn__cpu *cpu = attn__cpu_get();
    T_CHECK(attn__cpu_get() == cpu); /* detected once */
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++) {
        const char *why = cpu->why_not[f];
        T_CHECK(cpu->has[f] == (why[0] == '\0'));
        T_CHECK(cpu->has[f] || contains(why, "not in the CPU") || contains(why, "not enabled by the OS") ||
                contains(why, "permission refused by the OS") || contains(why, "not an x86 build"));
    }
    static char flags[65536], model[256];
    if (!read_cpuinfo(flags, sizeof flags, model, sizeof model)) {
        printf("  (no /proc/cpuinfo: the features are not compared with the kernel's)\n");
        return;
    }
    /* Linux lists a feature only if the CPU has it and the kernel enabled
     * its register state: the same rule, found independently. */
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++) {
        char word[64];
        snprintf(word, sizeof word, " %s ", attn__cpu_feature_name((attn__feature)f));
        t_checks++;
        if (cpu->has[f] != contains(flags, word))
            t_fail(__FILE__, __LINE__, "%s: attn says %d (%s), /proc/cpuinfo says %d", word, cpu->has[f],
                   cpu->why_not[f], contains(flags, word));
    }
    t_checks++;
    if (model[0] != '\0' && strcmp(model, cpu->brand) != 0)
        t_fail(__FILE__, __LINE__, "brand '%s' vs /proc/cpuinfo '%s'", cpu->brand, model);
    if (t_verbose) printf("  cpu '%s'\n", cpu->brand);
}

/* Whether the machine has all of the features, and the first it lacks. */
static bool has_all(const attn__feature *need, int n, const char **missing)
{
    const attn__cpu *cpu = attn__cpu_get();
    for (int x = 0; x < n; x++)
        if (!cpu->has[need[x]]) {
            *missing = attn__cpu_feature_name(need[x]);
            return false;
        }
    return true;
}

/* Every slot of a table holds a kernel, for every dtype combination it
 * has (the mixed ones: forward and decode only, the rest empty). */
static void check_complete(const attn__kernels *t)
{
    for (int d = 0; d < ATTN__N_SDPA_DT; d++) {
        const attn__sdpa_kernels *k = &t->sdpa[d];
        bool all = attn__slot_has_dt(ATTN__SLOT_SDPA_DKDV, (attn__sdpa_dt)d);
        T_CHECK(attn__slot_has_dt(ATTN__SLOT_SDPA_FORWARD, (attn__sdpa_dt)d));
        T_CHECK(attn__slot_has_dt(ATTN__SLOT_SDPA_DECODE, (attn__sdpa_dt)d));
        T_CHECK(k->forward.block != NULL && k->forward.ws != NULL && k->forward.tile_q > 0);
        T_CHECK(k->decode.split_fn != NULL && k->decode.merge != NULL && k->decode.ws != NULL);
        T_CHECK(k->decode.max_rows > 0 && k->decode.split > 0);
        T_EQ_INT(all, d == ATTN__SDPA_F32 || d == ATTN__SDPA_BF16 || d == ATTN__SDPA_F16);
        T_CHECK((k->weights.row != NULL) == all);
        T_CHECK((k->delta.block != NULL && k->delta.tile_q > 0) == all);
        T_CHECK((k->dkdv.block != NULL && k->dkdv.ws != NULL && k->dkdv.tile_k > 0) == all);
        T_CHECK((k->dq.block != NULL && k->dq.ws != NULL && k->dq.tile_q > 0) == all);
        T_CHECK((k->fused.kvhead != NULL && k->fused.ws != NULL && k->fused.min_kv_heads > 0) == all);
    }
    T_CHECK(t->score.ws != NULL && t->score.forward_block != NULL && t->score.weights_block != NULL &&
            t->score.delta_head != NULL && t->score.backward_group != NULL && t->score.reduce_dpq != NULL);
    T_CHECK(t->score_proj.pack != NULL && t->score_proj.linear_rows != NULL &&
            t->score_proj.linear_dx_rows != NULL && t->score_proj.linear_dw_rows != NULL &&
            t->score_proj.gscale_rows != NULL && t->score_proj.gscale_dq_rows != NULL &&
            t->score_proj.dg_head != NULL && t->score_proj.rows > 0);
    T_CHECK(t->nn.gemm_bf16 != NULL &&
            (t->nn.gemm_bf16->micro_bf16 != NULL) != (t->nn.gemm_bf16->pack_a != NULL) &&
            (t->nn.gemm_bf16->pack_a != NULL) == (t->nn.gemm_bf16->micro_ap != NULL));
    T_CHECK(t->nn.gemm != NULL && t->nn.layernorm_row != NULL && t->nn.gelu_row != NULL &&
            t->nn.gelu_grad_row != NULL && t->nn.softmax_row != NULL && t->nn.swiglu_row != NULL);
    for (int s = 0; s < ATTN__N_SLOTS; s++)
        for (int d = 0; d < ATTN__N_SDPA_DT; d++)
            T_CHECK(t->filled_by[s][d] >= 0 && t->filled_by[s][d] < ATTN__N_ISA);
}

/* Slot s of table t was filled by isa for every dtype combination it has. */
static bool filled_by(const attn__kernels *t, attn__slot s, attn__isa isa)
{
    bool all = true;
    for (int d = 0; d < ATTN__N_SDPA_DT; d++) all &= !attn__slot_has_dt(s, (attn__sdpa_dt)d) || t->filled_by[s][d] == isa;
    return all;
}

void test_kernel_table_choice(void)
{
    attn_ctx *ctx = NULL;
    T_EQ_STATUS(attn_ctx_create(1, &ctx), ATTN_OK);
    if (ctx == NULL) return;
    /* Forced tiled: the portable table, every slot portable. */
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, ATTN_KERNEL_TILED), ATTN_OK);
    const attn__kernels *t = attn__ctx_kernels(ctx);
    T_EQ_INT(attn_ctx_resolved_kernel(ctx), ATTN_KERNEL_TILED);
    T_EQ_INT(t->kernel, ATTN_KERNEL_TILED);
    for (int d = 0; d < ATTN__N_SDPA_DT; d++) {
        T_CHECK(t->sdpa[d].forward.block == attn__tiled_forward_block);
        T_CHECK(d >= ATTN__SDPA_F32_BF16KV || t->sdpa[d].dq.block == attn__tiled_dq_block);
    }
    for (int s = 0; s < ATTN__N_SLOTS; s++) T_CHECK(filled_by(t, (attn__slot)s, ATTN__ISA_PORTABLE));
    check_complete(t);
    /* AVX2 where the CPU, the OS and the build allow it. */
    static const attn__feature avx2[] = {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C};
    const char *missing = NULL;
    bool cpu_ok = has_all(avx2, 3, &missing);
    bool avx2_ok = cpu_ok && BUILT_AVX2;
    attn_status st = attn_ctx_set_kernel(ctx, ATTN_KERNEL_AVX2);
    T_EQ_STATUS(st, avx2_ok ? ATTN_OK : ATTN_UNSUPPORTED);
    if (!avx2_ok)
        T_CHECK(contains(attn_last_error(), cpu_ok ? "no AVX2 attention kernels" : missing));
#if defined(ATTN_HAVE_AVX2)
    if (avx2_ok) {
        t = attn__ctx_kernels(ctx);
        T_EQ_INT(attn_ctx_resolved_kernel(ctx), ATTN_KERNEL_AVX2);
        for (int d = 0; d < ATTN__N_SDPA_DT; d++) { /* every dtype combination */
            const attn__sdpa_kernels *k = &t->sdpa[d];
            T_CHECK(k->forward.block == attn__avx2_forward_block && k->decode.split_fn == attn__avx2_decode_split &&
                    k->decode.heads == attn__avx2_decode_heads);
            if (d >= ATTN__SDPA_F32_BF16KV) continue;
            T_CHECK(k->dq.block == attn__avx2_dq_block && k->fused.kvhead == attn__avx2_fused_kvhead);
            T_CHECK(k->weights.row == attn__tiled_weights_row); /* no AVX2 variant */
        }
        T_CHECK(filled_by(t, ATTN__SLOT_SDPA_FORWARD, ATTN__ISA_AVX2));
        T_CHECK(filled_by(t, ATTN__SLOT_SDPA_DQ, ATTN__ISA_AVX2));
        T_CHECK(filled_by(t, ATTN__SLOT_SDPA_WEIGHTS, ATTN__ISA_PORTABLE));
        check_complete(t);
    }
#endif
#if defined(ATTN_HAVE_AVX512)
    if (attn_ctx_set_kernel(ctx, ATTN_KERNEL_AVX512) == ATTN_OK) { /* the 16-lane attention kernels */
        t = attn__ctx_kernels(ctx);
        for (int d = 0; d < ATTN__N_SDPA_DT; d++) {
            const attn__sdpa_kernels *k = &t->sdpa[d];
            T_CHECK(k->forward.block == attn__avx512_forward_block && k->decode.split_fn == attn__avx512_decode_split &&
                    k->decode.heads == attn__avx512_decode_heads);
            if (d >= ATTN__SDPA_F32_BF16KV) continue;
            T_CHECK(k->dq.block == attn__avx512_dq_block && k->fused.kvhead == attn__avx512_fused_kvhead);
        }
        T_CHECK(filled_by(t, ATTN__SLOT_SDPA_FORWARD, ATTN__ISA_AVX512));
        T_CHECK(filled_by(t, ATTN__SLOT_SDPA_DKDV, ATTN__ISA_AVX512));
        T_CHECK(filled_by(t, ATTN__SLOT_QUANT_MATMUL, ATTN__ISA_AVX2)); /* kept from AVX2 */
#if defined(ATTN_AVX512_EMULATED) /* the toolkit's kernels stay AVX2's */
        T_CHECK(filled_by(t, ATTN__SLOT_SWIGLU_ROW, ATTN__ISA_AVX2) && t->nn.gemm == &attn__gemm_avx2);
#else
        T_CHECK(filled_by(t, ATTN__SLOT_SWIGLU_ROW, ATTN__ISA_AVX512) && t->nn.gemm == &attn__gemm_avx512);
#endif
        check_complete(t);
    }
#endif
#if defined(ATTN_HAVE_AVX512BF16)
    /* AVX512-BF16: the AVX-512 table with the BF16 forward and backward on vdpbf16ps */
    t = attn__kernels_get(ATTN_KERNEL_AVX512BF16, NULL, 0);
    if (t != NULL) {
        const attn__kernels *t5 = attn__kernels_get(ATTN_KERNEL_AVX512, NULL, 0);
        T_CHECK(t5 != NULL);
        for (int d = 0; t5 && d < ATTN__N_SDPA_DT; d++) {
            bool dp = d == ATTN__SDPA_BF16;
            attn__isa want = dp ? ATTN__ISA_AVX512BF16 : ATTN__ISA_AVX512;
            T_CHECK(t->sdpa[d].forward.block == (dp ? attn__avx512_forward_block_dp : t5->sdpa[d].forward.block));
            T_CHECK(t->filled_by[ATTN__SLOT_SDPA_FORWARD][d] == want);
            T_CHECK(t->sdpa[d].decode.split_fn == t5->sdpa[d].decode.split_fn);
            T_CHECK(t->filled_by[ATTN__SLOT_SDPA_DECODE][d] == ATTN__ISA_AVX512);
            if (d >= ATTN__SDPA_F32_BF16KV) continue;
            T_CHECK(t->sdpa[d].fused.kvhead == (dp ? attn__avx512_fused_kvhead_dp : t5->sdpa[d].fused.kvhead));
            T_CHECK(t->sdpa[d].dq.block == (dp ? attn__avx512_dq_block_dp : t5->sdpa[d].dq.block));
            T_CHECK(t->sdpa[d].dkdv.block == (dp ? attn__avx512_dkdv_block_dp : t5->sdpa[d].dkdv.block));
            T_CHECK(t->filled_by[ATTN__SLOT_SDPA_FUSED][d] == want && t->filled_by[ATTN__SLOT_SDPA_DQ][d] == want &&
                    t->filled_by[ATTN__SLOT_SDPA_DKDV][d] == want);
        }
#if defined(ATTN_AVX512BF16_EMULATED) /* the toolkit keeps the pair build's (AVX2's) kernels */
        T_CHECK(t5 && t->nn.gemm == t5->nn.gemm && t->nn.gemm_bf16 == t5->nn.gemm_bf16);
#else
        T_CHECK(t5 && t->nn.gemm == t5->nn.gemm && t->nn.gemm_bf16 == &attn__gemm_avx512bf16);
        T_CHECK(t->filled_by[ATTN__SLOT_GEMM_BF16][ATTN__SDPA_F32] == ATTN__ISA_AVX512BF16);
#endif
        T_CHECK(attn__isa_manual(ATTN__ISA_AVX512BF16) == NULL);
        check_complete(t);
    }
#endif
#if defined(ATTN_HAVE_AMX)
    /* AMX: the AVX-512 table with the BF16 forward and backward on tiles,
     * forced only (its kernels have not run on an AMX CPU yet) */
    t = attn__kernels_get(ATTN_KERNEL_AMX, NULL, 0);
    if (t != NULL) {
        const attn__kernels *t5 = attn__kernels_get(ATTN_KERNEL_AVX512, NULL, 0);
        T_CHECK(t5 != NULL);
        for (int d = 0; t5 && d < ATTN__N_SDPA_DT; d++) {
            bool tiles = d == ATTN__SDPA_BF16;
            T_CHECK(t->sdpa[d].forward.block == (tiles ? attn__avx512_forward_block_amx : t5->sdpa[d].forward.block));
            T_CHECK(t->sdpa[d].decode.split_fn == t5->sdpa[d].decode.split_fn);
            T_CHECK(t->filled_by[ATTN__SLOT_SDPA_DECODE][d] == ATTN__ISA_AVX512);
            static const attn__slot tiled_slots[] = {ATTN__SLOT_SDPA_FORWARD, ATTN__SLOT_SDPA_DKDV,
                                                     ATTN__SLOT_SDPA_DQ, ATTN__SLOT_SDPA_FUSED};
            for (int x = 0; x < 4; x++)
                if (attn__slot_has_dt(tiled_slots[x], (attn__sdpa_dt)d))
                    T_CHECK(t->filled_by[tiled_slots[x]][d] == (tiles ? ATTN__ISA_AMX : ATTN__ISA_AVX512));
            if (d >= ATTN__SDPA_F32_BF16KV) continue;
            T_CHECK(t->sdpa[d].dq.block == (tiles ? attn__avx512_dq_block_amx : t5->sdpa[d].dq.block));
            T_CHECK(t->sdpa[d].fused.kvhead == (tiles ? attn__avx512_fused_kvhead_amx : t5->sdpa[d].fused.kvhead));
            T_CHECK(!tiles || t->sdpa[d].dkdv.ws == attn__avx512_backward_ws_amx);
        }
        T_CHECK(t5 && t->nn.gemm == t5->nn.gemm && t->nn.gemm_bf16 == &attn__gemm_amx);
        T_CHECK(t->filled_by[ATTN__SLOT_GEMM_BF16][ATTN__SDPA_F32] == ATTN__ISA_AMX);
        T_CHECK(attn__isa_manual(ATTN__ISA_AMX) != NULL);
        check_complete(t);
    }
#endif
    /* AUTO: the most capable available one (AVX2 here unless a build and
     * a CPU have AVX-512 or AMX kernels). */
    attn_kernel best = avx2_ok ? ATTN_KERNEL_AVX2 : ATTN_KERNEL_TILED;
    static const attn__isa above[] = {ATTN__ISA_AVX512, ATTN__ISA_AVX512BF16, ATTN__ISA_AMX}; /* in order */
    for (int x = 0; x < 3; x++) {
        attn_kernel k = attn__isa_kernel(above[x]);
        if (attn__kernels_get(k, NULL, 0) != NULL && attn__isa_manual(above[x]) == NULL) best = k;
    }
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO), ATTN_OK);
    T_EQ_INT(attn_ctx_resolved_kernel(ctx), best);
    T_CHECK(attn__ctx_kernels(ctx) == attn__kernels_get(best, NULL, 0));
    /* REF: the reference runs; the table is the portable one (nn slots). */
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, ATTN_KERNEL_REF), ATTN_OK);
    T_EQ_INT(attn_ctx_resolved_kernel(ctx), ATTN_KERNEL_REF);
    T_CHECK(attn__ctx_kernels(ctx) == attn__kernels_get(ATTN_KERNEL_TILED, NULL, 0));
    T_CHECK(attn__ctx_kernels(NULL) == NULL);
    /* The toolkit's view: the nn slots of the context's table (AUTO's
     * without a context). */
    T_CHECK(attn__ctx_toolkit(ctx) == &attn__ctx_kernels(ctx)->nn);
    T_CHECK(attn__ctx_toolkit(NULL) == &attn__kernels_get(ATTN_KERNEL_AUTO, NULL, 0)->nn);
    attn_ctx_free(ctx);
}

/* What forcing each value must give here: OK, or ATTN_UNSUPPORTED with a
 * message naming the first missing feature or the missing kernels. */
typedef struct {
    attn_kernel kernel;
    const char *name;
    int n_needs;
    attn__feature needs[4];
    bool built;
    const char *not_built;
} forced_case;

void test_kernel_forcing(void)
{
    static const forced_case cases[] = {
        {ATTN_KERNEL_AUTO, "auto", 0, {0}, true, ""},
        {ATTN_KERNEL_REF, "ref", 0, {0}, true, ""},
        {ATTN_KERNEL_TILED, "tiled", 0, {0}, true, ""},
        {ATTN_KERNEL_AVX2, "avx2", 3, {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}, BUILT_AVX2,
         "no AVX2 attention kernels"},
#if defined(ATTN_AVX512_EMULATED) /* the AVX-512 kernels built with AVX2 (make test-avx512-emu) */
        {ATTN_KERNEL_AVX512, "avx512", 3, {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}, BUILT_AVX512,
         "no AVX-512 kernels"},
#else
        {ATTN_KERNEL_AVX512, "avx512", 4,
         {ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW, ATTN__CPU_AVX512VL, ATTN__CPU_AVX512DQ}, BUILT_AVX512,
         "no AVX-512 kernels"},
#endif
#if defined(ATTN_AVX512BF16_EMULATED) /* vdpbf16ps in AVX2 (make test-avx512-emu) */
        {ATTN_KERNEL_AVX512BF16, "avx512bf16", 3, {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}, BUILT_AVX512BF16,
         "no AVX512-BF16 kernels"},
#else
        {ATTN_KERNEL_AVX512BF16, "avx512bf16", 4,
         {ATTN__CPU_AVX512_BF16, ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW, ATTN__CPU_AVX512VL}, BUILT_AVX512BF16,
         "no AVX512-BF16 kernels"},
#endif
#if defined(ATTN_AMX_EMULATED) /* the AMX kernels with C tiles (make test-avx512-emu) */
        {ATTN_KERNEL_AMX, "amx", 3, {ATTN__CPU_AVX2, ATTN__CPU_FMA, ATTN__CPU_F16C}, BUILT_AMX,
         "no AMX attention kernels"},
#else
        {ATTN_KERNEL_AMX, "amx", 4, {ATTN__CPU_AMX_TILE, ATTN__CPU_AMX_BF16, ATTN__CPU_AVX512F, ATTN__CPU_AVX512BW},
         BUILT_AMX, "no AMX attention kernels"},
#endif
    };
    attn_ctx *ctx = NULL;
    T_EQ_STATUS(attn_ctx_create(1, &ctx), ATTN_OK);
    if (ctx == NULL) return;
    for (size_t x = 0; x < sizeof cases / sizeof cases[0]; x++) {
        const forced_case *c = &cases[x];
        const char *missing = NULL;
        bool cpu_ok = has_all(c->needs, c->n_needs, &missing);
        T_CHECK(strcmp(attn_kernel_name(c->kernel), c->name) == 0);
        T_EQ_STATUS(attn_ctx_set_kernel(ctx, ATTN_KERNEL_TILED), ATTN_OK);
        attn_status st = attn_ctx_set_kernel(ctx, c->kernel);
        if (cpu_ok && c->built) {
            T_EQ_STATUS(st, ATTN_OK);
            T_EQ_INT(attn_ctx_kernel(ctx), c->kernel);
            continue;
        }
        T_EQ_STATUS(st, ATTN_UNSUPPORTED);
        const char *msg = attn_last_error();
        if (t_verbose) printf("  %s: %s\n", c->name, msg);
        T_CHECK(contains(msg, "attn_ctx_set_kernel") && contains(msg, c->name));
        T_CHECK(cpu_ok || contains(msg, missing));
        T_CHECK(c->built || contains(msg, c->not_built));
        T_EQ_INT(attn_ctx_kernel(ctx), ATTN_KERNEL_TILED); /* unchanged */
    }
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, (attn_kernel)7), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, (attn_kernel)-1), ATTN_BAD_PARAM);
    T_CHECK(strcmp(attn_kernel_name((attn_kernel)7), "unknown") == 0);
    attn_ctx_free(ctx);
}

/* attn_ctx_create under ATTN_KERNEL=value: its status, and the choice. */
static attn_status create_with(const char *value, attn_kernel *kernel)
{
    attn_ctx *ctx = NULL;
    setenv("ATTN_KERNEL", value, 1);
    attn_status st = attn_ctx_create(1, &ctx);
    *kernel = attn_ctx_kernel(ctx);
    if (st != ATTN_OK) T_CHECK(ctx == NULL);
    attn_ctx_free(ctx);
    return st;
}

void test_kernel_env_variable(void)
{
    const char *saved = getenv("ATTN_KERNEL");
    char *keep = saved != NULL ? strdup(saved) : NULL;
    static const char *const ok[] = {"ref", "tiled", "auto", ""};
    static const attn_kernel want[] = {ATTN_KERNEL_REF, ATTN_KERNEL_TILED, ATTN_KERNEL_AUTO, ATTN_KERNEL_AUTO};
    attn_kernel k;
    for (int x = 0; x < 4; x++) {
        T_EQ_STATUS(create_with(ok[x], &k), ATTN_OK);
        T_EQ_INT(k, want[x]);
    }
    static const char *const bad[] = {"bogus", "AVX2", "avx2 ", "reference"};
    for (int x = 0; x < 4; x++) {
        T_EQ_STATUS(create_with(bad[x], &k), ATTN_BAD_PARAM);
        T_CHECK(contains(attn_last_error(), "ATTN_KERNEL") && contains(attn_last_error(), bad[x]));
    }
    /* The ISAs: available or ATTN_UNSUPPORTED naming the variable. */
    static const attn_kernel isa[] = {ATTN_KERNEL_AVX2, ATTN_KERNEL_AVX512, ATTN_KERNEL_AVX512BF16, ATTN_KERNEL_AMX};
    for (int x = 0; x < 4; x++) {
        bool available = attn__kernels_get(isa[x], NULL, 0) != NULL;
        T_EQ_STATUS(create_with(attn_kernel_name(isa[x]), &k), available ? ATTN_OK : ATTN_UNSUPPORTED);
        if (available) T_EQ_INT(k, isa[x]);
        else T_CHECK(contains(attn_last_error(), "ATTN_KERNEL=") && contains(attn_last_error(), "is not available: "));
    }
    if (keep != NULL) setenv("ATTN_KERNEL", keep, 1);
    else unsetenv("ATTN_KERNEL");
    free(keep);
}

void test_ctx_describe(void)
{
    static const char *const slots[] = {
        "sdpa.forward.f32", "sdpa.forward.bf16", "sdpa.forward.f16", "sdpa.forward.f32+bf16kv",
        "sdpa.forward.f32+f16kv", "sdpa.decode.f32", "sdpa.decode.bf16", "sdpa.decode.f16",
        "sdpa.decode.f32+bf16kv", "sdpa.decode.f32+f16kv", "sdpa.weights.f32", "sdpa.weights.bf16",
        "sdpa.weights.f16", "sdpa.delta.f32", "sdpa.delta.f16", "sdpa.dkdv.bf16", "sdpa.dq.f32",
        "sdpa.fused_bwd.bf16", "sdpa.fused_bwd.f16", "score.additive", "score.proj", "nn.gemm", "nn.gemm_bf16",
        "nn.layernorm_row", "nn.gelu_row", "nn.softmax_row", "nn.swiglu_row"};
    attn_ctx *ctx = NULL;
    T_EQ_STATUS(attn_ctx_create(1, &ctx), ATTN_OK);
    if (ctx == NULL) return;
    size_t len = 0, len2 = 0;
    T_EQ_STATUS(attn_ctx_describe(ctx, NULL, 0, &len), ATTN_OK); /* size query */
    T_CHECK(len > 100);
    char *buf = malloc(len + 8);
    memset(buf, '#', len + 8);
    len2 = 12345;
    T_EQ_STATUS(attn_ctx_describe(ctx, buf, len, &len2), ATTN_BAD_DIM); /* no room for the NUL */
    T_CHECK(contains(attn_last_error(), "cap"));
    T_EQ_INT(len2, 12345);
    bool untouched = true;
    for (size_t x = 0; x < len + 8; x++) untouched &= buf[x] == '#';
    T_CHECK(untouched);
    T_EQ_STATUS(attn_ctx_describe(ctx, buf, len + 1, &len2), ATTN_OK);
    T_EQ_INT(len2, len);
    T_EQ_INT(strlen(buf), len);
    T_CHECK(buf[len + 1] == '#');
    const attn__cpu *cpu = attn__cpu_get();
    char line[256];
    snprintf(line, sizeof line, "cpu: %s\n", cpu->brand);
    T_CHECK(cpu->brand[0] == '\0' || contains(buf, line));
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++) {
        snprintf(line, sizeof line, "absent %s: %s\n", attn__cpu_feature_name((attn__feature)f), cpu->why_not[f]);
        T_CHECK(cpu->has[f] != contains(buf, line));
    }
    for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) {
        snprintf(line, sizeof line, "slot %s: ", slots[s]);
        T_CHECK(contains(buf, line));
    }
    T_CHECK(contains(buf, "kernel: auto"));
    T_CHECK(!contains(buf, "slot sdpa.dq.f32+bf16kv") && !contains(buf, "slot sdpa.weights.f32+f16kv"));
    T_CHECK(!contains(buf, "slot nn.gemm.")); /* the toolkit slots have no dtype dimension */
    /* Forced tiled: every slot portable. */
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, ATTN_KERNEL_TILED), ATTN_OK);
    T_EQ_STATUS(attn_ctx_describe(ctx, NULL, 0, &len2), ATTN_OK);
    char *tiled = malloc(len2 + 1);
    T_EQ_STATUS(attn_ctx_describe(ctx, tiled, len2 + 1, &len2), ATTN_OK);
    T_CHECK(contains(tiled, "kernel: tiled (forced)") && contains(tiled, "slot sdpa.forward.bf16: portable (forced"));
    if (t_verbose) fputs(buf, stdout);
    T_EQ_STATUS(attn_ctx_describe(NULL, buf, len + 1, &len2), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_ctx_describe(ctx, buf, len + 1, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_ctx_describe(ctx, NULL, 5, &len2), ATTN_NULL_ARG);
    free(tiled);
    free(buf);
    attn_ctx_free(ctx);
}

/* The portable fused backward (B * Hkv >= 4) gives bitwise the dQ, dK, dV
 * of the two-pass backward, which the same problem one batch at a time
 * (B * Hkv = 1) takes. (No dropout: its pattern depends on the batch index.) */
void test_tiled_fused_backward_bitwise(void)
{
    enum { B = 4, SQ = 45, SK = 77, HQ = 2, DK = 9, DV = 7 };
    static float q[B * SQ * HQ * DK], k[B * SK * DK], v[B * SK * DV], o[B * SQ * HQ * DV], lse[B * HQ * SQ];
    static float d_o[B * SQ * HQ * DV], bias[SQ * SK];
    static float dq[2][B * SQ * HQ * DK], dk[2][B * SK * DK], dv[2][B * SK * DV];
    int64_t klens[B] = {SK, 50, 3, 0};
    uint64_t s = 31;
    for (size_t x = 0; x < sizeof q / 4; x++) q[x] = (float)t_rand_uniform(&s, -2, 2);
    for (size_t x = 0; x < sizeof k / 4; x++) k[x] = (float)t_rand_uniform(&s, -2, 2);
    for (size_t x = 0; x < sizeof v / 4; x++) v[x] = (float)t_rand_uniform(&s, -1, 1);
    for (size_t x = 0; x < sizeof d_o / 4; x++) d_o[x] = (float)t_rand_uniform(&s, -1, 1);
    for (size_t x = 0; x < sizeof bias / 4; x++) bias[x] = (float)t_rand_uniform(&s, -1, 1);
    attn_ctx *ctx = t_ctx(2);
    T_EQ_STATUS(attn_ctx_set_kernel(ctx, ATTN_KERNEL_TILED), ATTN_OK);
    attn_tensor tb = attn_tensor_make(bias, ATTN_DTYPE_F32, 1, 1, SQ, SK);
    attn_sdpa_params prm = attn_sdpa_params_default();
    prm.causal = 1;
    prm.align = ATTN_ALIGN_BOTTOM_RIGHT;
    prm.softcap = 3.0;
    prm.bias = &tb;
    for (int split = 0; split < 2; split++)
        for (int64_t b0 = 0; b0 < B; b0 += split ? 1 : B) {
            int64_t nb = split ? 1 : B;
            attn_tensor tq = attn_tensor_make(q + b0 * SQ * HQ * DK, ATTN_DTYPE_F32, nb, SQ, HQ, DK);
            attn_tensor tk = attn_tensor_make(k + b0 * SK * DK, ATTN_DTYPE_F32, nb, SK, 1, DK);
            attn_tensor tv = attn_tensor_make(v + b0 * SK * DV, ATTN_DTYPE_F32, nb, SK, 1, DV);
            attn_tensor to = attn_tensor_make(o + b0 * SQ * HQ * DV, ATTN_DTYPE_F32, nb, SQ, HQ, DV);
            attn_tensor tl = attn_tensor_make(lse + b0 * HQ * SQ, ATTN_DTYPE_F32, nb, HQ, SQ, 1);
            attn_tensor tdo = attn_tensor_make(d_o + b0 * SQ * HQ * DV, ATTN_DTYPE_F32, nb, SQ, HQ, DV);
            attn_tensor tdq = attn_tensor_make(dq[split] + b0 * SQ * HQ * DK, ATTN_DTYPE_F32, nb, SQ, HQ, DK);
            attn_tensor tdk = attn_tensor_make(dk[split] + b0 * SK * DK, ATTN_DTYPE_F32, nb, SK, 1, DK);
            attn_tensor tdv = attn_tensor_make(dv[split] + b0 * SK * DV, ATTN_DTYPE_F32, nb, SK, 1, DV);
            prm.k_lens = klens + b0;
            T_EQ_STATUS(attn_sdpa_forward(ctx, &tq, &tk, &tv, &prm, &to, &tl), ATTN_OK);
            T_EQ_STATUS(attn_sdpa_backward(ctx, &tq, &tk, &tv, &to, &tdo, &tl, &prm, &tdq, &tdk, &tdv, NULL),
                        ATTN_OK);
        }
    attn_ctx_set_kernel(ctx, ATTN_KERNEL_AUTO);
    T_CHECK(memcmp(dq[0], dq[1], sizeof dq[0]) == 0);
    T_CHECK(memcmp(dk[0], dk[1], sizeof dk[0]) == 0);
    T_CHECK(memcmp(dv[0], dv[1], sizeof dv[0]) == 0);
    float mx = 0.0f;
    for (size_t x = 0; x < sizeof dq[0] / 4; x++) mx = fabsf(dq[0][x]) > mx ? fabsf(dq[0][x]) : mx;
    T_CHECK(mx > 0.01f); /* a real gradient, not zeros */
}
