/* choice.c - which GEMM and row kernels run (kernels/gemm_kernels.h,
 * kernels/row_kernels.h): the portable ones always exist; the AVX2+FMA and
 * AVX-512 ones are compiled in when the compiler has the flags (CMake sets
 * ATTN_HAVE_GEMM_AVX2, ATTN_HAVE_ROWS_AVX2, ATTN_HAVE_GEMM_AVX512) and run
 * when the CPU and the OS support them. The ctx's kernel choice forces a
 * path: REF and TILED the portable kernels, AVX2 the AVX2 ones, AUTO the
 * best.
 *
 * Until the library's one kernel table exists, the features come from
 * attn__cpu_has_avx2_fma() and, for AVX-512, a CPUID/XGETBV query here. */
#include "kernels/gemm_kernels.h"
#include "kernels/row_kernels.h"

#include "core/core.h"

#include <stdatomic.h>
#include <string.h>

#if defined(ATTN_HAVE_GEMM_AVX512) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>

/* AVX-512F in the CPU, and the opmask and ZMM state enabled by the OS. */
static bool cpu_has_avx512f(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; /* OSXSAVE */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) != 0xE6u) return false; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b & (1u << 16)) != 0; /* AVX512F */
}
#else
static bool cpu_has_avx512f(void) { return false; }
#endif

enum { KNOWN = 1, AVX2 = 2, AVX512 = 4 };

/* The CPU's features, found once (CPUID is slow under a hypervisor and the
 * CPU does not change; a race only finds the same bits twice). */
static int features(void)
{
    static atomic_int bits;
    int f = atomic_load(&bits);
    if (f == 0) {
        f = KNOWN | (attn__cpu_has_avx2_fma() ? AVX2 : 0) | (cpu_has_avx512f() ? AVX512 : 0);
        atomic_store(&bits, f);
    }
    return f;
}

/* ---- GEMM ------------------------------------------------------------------------ */

const attn__gemm_kernel *attn__gemm_kernel_named(const char *name, const char **why)
{
    const char *miss = "no such kernel";
    int f = features();
    (void)f; /* unused in builds with no x86 kernels */
    if (strcmp(name, "portable") == 0) return &attn__gemm_portable;
    if (strcmp(name, "avx2") == 0) {
#if defined(ATTN_HAVE_GEMM_AVX2)
        if (f & AVX2) return &attn__gemm_avx2;
        miss = "the CPU or the OS lacks AVX2+FMA";
#else
        miss = "not built (the compiler lacks -mavx2 -mfma)";
#endif
    } else if (strcmp(name, "avx512") == 0) {
#if defined(ATTN_HAVE_GEMM_AVX512)
        if (f & AVX512) return &attn__gemm_avx512;
        miss = "the CPU or the OS lacks AVX-512F";
#else
        miss = "not built (the compiler lacks -mavx512f)";
#endif
    }
    if (why) *why = miss;
    return NULL;
}

const attn__gemm_kernel *attn__gemm_kernel_best(void)
{
    const attn__gemm_kernel *k = attn__gemm_kernel_named("avx512", NULL);
    if (k == NULL) k = attn__gemm_kernel_named("avx2", NULL);
    return k ? k : &attn__gemm_portable;
}

const attn__gemm_kernel *attn__gemm_kernel_for(const attn_ctx *ctx)
{
    const attn__gemm_kernel *k = NULL;
    switch (attn_ctx_kernel(ctx)) {
    case ATTN_KERNEL_REF:
    case ATTN_KERNEL_TILED: break;
    case ATTN_KERNEL_AVX2: k = attn__gemm_kernel_named("avx2", NULL); break;
    default: k = attn__gemm_kernel_best(); break;
    }
    return k ? k : &attn__gemm_portable;
}

/* ---- rows ------------------------------------------------------------------------- */

const attn__row_kernels *attn__row_kernels_named(const char *name, const char **why)
{
    const char *miss = "no such kernel";
    int f = features();
    (void)f; /* unused in builds with no x86 kernels */
    if (strcmp(name, "portable") == 0) return &attn__rows_portable;
    if (strcmp(name, "avx2") == 0) {
#if defined(ATTN_HAVE_ROWS_AVX2)
        if (f & AVX2) return &attn__rows_avx2;
        miss = "the CPU or the OS lacks AVX2+FMA";
#else
        miss = "not built (the compiler lacks -mavx2 -mfma)";
#endif
    }
    if (why) *why = miss;
    return NULL;
}

const attn__row_kernels *attn__row_kernels_best(void)
{
    const attn__row_kernels *k = attn__row_kernels_named("avx2", NULL);
    return k ? k : &attn__rows_portable;
}

const attn__row_kernels *attn__row_kernels_for(const attn_ctx *ctx)
{
    attn_kernel k = attn_ctx_kernel(ctx);
    return k == ATTN_KERNEL_REF || k == ATTN_KERNEL_TILED ? &attn__rows_portable
                                                          : attn__row_kernels_best();
}
