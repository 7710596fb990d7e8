/* describe.c - the text of attn_ctx_describe: the CPU, the features attn
 * looks for (with why each absent one is absent), the instruction sets and
 * whether they can run, the kernel choice, and per slot of the kernel table
 * the instruction set that runs it and why. Measured and written by the
 * same code, so a size query and the write agree. */
#include "kernels/table.h"

#include "core/cpu.h"

#include <stdarg.h>
#include <stdio.h>

/* Appends to buf [cap] while it fits; counts every byte regardless. */
typedef struct {
    char *buf;
    size_t cap, len;
} writer;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool room = w->buf != NULL && w->len < w->cap;
    int n = vsnprintf(room ? w->buf + w->len : NULL, room ? w->cap - w->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) w->len += (size_t)n;
}

static void put_cpu(writer *w, const attn__cpu *cpu)
{
    put(w, "cpu: %s\n", cpu->brand[0] != '\0' ? cpu->brand : "(no CPUID brand string)");
    put(w, "features:");
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++)
        if (cpu->has[f]) put(w, " %s", attn__cpu_feature_name((attn__feature)f));
    put(w, "\n");
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++)
        if (!cpu->has[f])
            put(w, "  absent %s: %s\n", attn__cpu_feature_name((attn__feature)f), cpu->why_not[f]);
}

static void put_isas(writer *w)
{
    for (int i = 0; i < ATTN__N_ISA; i++) {
        char why[512];
        bool ok = attn__isa_available((attn__isa)i, why, sizeof why);
        const char *note = "";
#if defined(ATTN_AVX512_EMULATED)
        if (i == ATTN__ISA_AVX512)
            note = " (emulated: a test build of the AVX-512 attention kernels for AVX2, 16 lanes as two ymm "
                   "registers; no AVX-512 instruction runs)";
#endif
#if defined(ATTN_AVX512BF16_EMULATED)
        if (i == ATTN__ISA_AVX512BF16)
            note = " (emulated: a test build whose vdpbf16ps is computed in AVX2 as the SDM defines it; no "
                   "AVX512-BF16 instruction runs)";
#endif
#if defined(ATTN_AMX_EMULATED)
        if (i == ATTN__ISA_AMX)
            note = " (emulated: a test build whose AMX tiles are C arrays and whose tile instructions are C "
                   "loops; no AMX instruction runs)";
#endif
        const char *manual = attn__isa_manual((attn__isa)i);
        put(w, "isa %s (ATTN_KERNEL=%s): %s%s%s%s%s\n", attn__isa_name((attn__isa)i),
            attn_kernel_name(attn__isa_kernel((attn__isa)i)), ok ? "available" : "unavailable: ",
            ok ? "" : why, note, ok && manual ? "; only when forced: " : "", ok && manual ? manual : "");
    }
}

/* The instruction set whose table t is. */
static attn__isa isa_of(const attn__kernels *t)
{
    for (int i = 0; i < ATTN__N_ISA; i++)
        if (attn__isa_kernel((attn__isa)i) == t->kernel) return (attn__isa)i;
    return ATTN__ISA_PORTABLE;
}

/* The blocking of a slot, where it has one. */
static void put_shape(writer *w, const attn__kernels *t, int s, int d)
{
    const attn__sdpa_kernels *k = &t->sdpa[d];
    switch (s) {
    case ATTN__SLOT_SDPA_FORWARD: put(w, "; %lld query rows per block", (long long)k->forward.tile_q); break;
    case ATTN__SLOT_SDPA_DECODE:
        put(w, "; up to %lld rows per kv head, keys split by %lld", (long long)k->decode.max_rows,
            (long long)k->decode.split);
        break;
    case ATTN__SLOT_SDPA_DELTA: put(w, "; %lld query rows per block", (long long)k->delta.tile_q); break;
    case ATTN__SLOT_SDPA_DKDV: put(w, "; %lld keys per block", (long long)k->dkdv.tile_k); break;
    case ATTN__SLOT_SDPA_DQ: put(w, "; %lld query rows per block", (long long)k->dq.tile_q); break;
    case ATTN__SLOT_SDPA_FUSED:
        put(w, "; whole kv heads from %lld, shares of fewer", (long long)k->fused.min_kv_heads);
        break;
    case ATTN__SLOT_QUANT_MATMUL:
        if (t->quant.many != NULL)
            put(w, "; GEMV below %lld rows of x, then a GEMM in tiles of at most %lld x %lld",
                (long long)t->quant.min_rows, (long long)t->quant.many_rows, (long long)t->quant.many_cols);
        break;
    default: break;
    }
}

/* One line: slot s (for the attention slots: of dtype combination d). */
static void put_slot(writer *w, const attn__kernels *t, attn_kernel k, attn__isa chosen, int s, int d)
{
    attn__isa by = t->filled_by[s][d];
    bool ref = k == ATTN_KERNEL_REF && s < ATTN__SLOT_GEMM; /* the attention and score slots */
    put(w, "slot %s", attn__slot_name((attn__slot)s));
    if (attn__slot_is_sdpa((attn__slot)s)) put(w, ".%s", attn__sdpa_dt_name((attn__sdpa_dt)d));
    put(w, ": %s (", ref ? "ref" : attn__isa_name(by));
    if (ref)
        put(w, "forced: the float64 reference instead of the table");
    else if (k == ATTN_KERNEL_REF)
        put(w, "the reference has no kernel for it");
    else if (by != chosen)
        put(w, "%s has no kernel for it", attn__isa_name(chosen));
    else
        put(w, "%s", k == ATTN_KERNEL_AUTO ? "the chosen instruction set's kernel" : "forced");
    if (!ref) put_shape(w, t, s, d);
    put(w, ")\n");
}

size_t attn__kernels_describe(attn_kernel k, char *buf, size_t cap)
{
    writer w = {buf, cap, 0};
    const attn__kernels *t = attn__kernels_get(k, NULL, 0);
    put_cpu(&w, attn__cpu_get());
    put_isas(&w);
    attn__isa chosen = isa_of(t);
    if (k == ATTN_KERNEL_AUTO)
        put(&w, "kernel: auto: %s, the most capable instruction set available (of those auto may pick)\n",
            attn__isa_name(chosen));
    else if (k == ATTN_KERNEL_REF)
        put(&w, "kernel: ref (forced): attention and score calls run the float64 reference; the "
                "nn slots run %s\n", attn__isa_name(chosen));
    else
        put(&w, "kernel: %s (forced)\n", attn_kernel_name(k));
    put(&w, "float64 tensors always run the float64 reference; the attention slots have one "
            "entry per dtype combination (f32, bf16, f16; f32+bf16kv and f32+f16kv: the mixed "
            "decode, forward only)\n");
    for (int s = 0; s < ATTN__N_SLOTS; s++)
        for (int d = 0; d < ATTN__N_SDPA_DT; d++)
            if (attn__slot_has_dt((attn__slot)s, (attn__sdpa_dt)d)) put_slot(&w, t, k, chosen, s, d);
    if (buf != NULL && cap > 0 && w.len >= cap) buf[cap - 1] = '\0';
    return w.len;
}
