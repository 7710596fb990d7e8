/* cpu.h - the instruction-set features the CPU has and the operating
 * system lets a program use, detected once at run time (cpu.c), with a
 * human-readable reason for every feature that is absent. The kernel table
 * (src/kernels/table.c) decides from these which kernels may run. */
#ifndef ATTN_CORE_CPU_H
#define ATTN_CORE_CPU_H

#include <stdbool.h>
#include <stdint.h>

/* X(id, name): every feature attn asks about, in the order it reports them. */
#define ATTN__CPU_FEATURES(X)      \
    X(AVX2, "avx2")                \
    X(FMA, "fma")                  \
    X(F16C, "f16c")                \
    X(AVX512F, "avx512f")          \
    X(AVX512BW, "avx512bw")        \
    X(AVX512VL, "avx512vl")        \
    X(AVX512DQ, "avx512dq")        \
    X(AVX512_BF16, "avx512_bf16")  \
    X(AVX512_FP16, "avx512_fp16")  \
    X(AMX_TILE, "amx_tile")        \
    X(AMX_BF16, "amx_bf16")        \
    X(AMX_FP16, "amx_fp16")

typedef enum attn__feature {
#define ATTN__CPU_ENUM(id, name) ATTN__CPU_##id,
    ATTN__CPU_FEATURES(ATTN__CPU_ENUM)
#undef ATTN__CPU_ENUM
    ATTN__CPU_N_FEATURES
} attn__feature;

typedef struct attn__cpu {
    char brand[49];    /* CPUID brand string, trimmed; "" where there is none */
    uint64_t xcr0;     /* the OS's enabled register states (0 without OSXSAVE) */
    bool has[ATTN__CPU_N_FEATURES];
    /* Why a feature is absent ("" when present): not in the CPU, not
     * enabled by the OS, permission refused by the OS, not an x86 build. */
    char why_not[ATTN__CPU_N_FEATURES][112];
} attn__cpu;

/* The features of this machine: detected on the first call (thread-safe;
 * for AMX this is where the one permission request to the OS is made),
 * the same object afterwards. */
const attn__cpu *attn__cpu_get(void);
/* "avx2", "avx512f", ...; "?" outside the enumeration. */
const char *attn__cpu_feature_name(attn__feature f);

#endif /* ATTN_CORE_CPU_H */
