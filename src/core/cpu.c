/* cpu.c - run-time CPU feature detection, the one place that asks: CPUID
 * for what the CPU implements, XGETBV for the register states the OS saves
 * (XCR0: YMM for AVX; opmask, ZMM_Hi256 and Hi16_ZMM for AVX-512; tile
 * config and tile data for AMX), and on Linux the permission to use AMX
 * tile data (arch_prctl ARCH_REQ_XCOMP_PERM), requested once. Compiler
 * flags never decide which kernel runs. */
#define _DEFAULT_SOURCE /* syscall() */
#include "core/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define ATTN_CPU_X86 1
#endif

static const char *const feature_names[] = {
#define NAME_ENTRY(id, name) name,
    ATTN__CPU_FEATURES(NAME_ENTRY)
#undef NAME_ENTRY
};

const char *attn__cpu_feature_name(attn__feature f)
{
    return (int)f >= 0 && f < ATTN__CPU_N_FEATURES ? feature_names[f] : "?";
}

static void absent(attn__cpu *c, attn__feature f, const char *why)
{
    c->has[f] = false;
    snprintf(c->why_not[f], sizeof c->why_not[f], "%s", why);
}

#if defined(ATTN_CPU_X86)

/* The register states a feature needs the OS to save (XCR0 bits). */
enum {
    XCR0_YMM = 0x6,          /* SSE + AVX (bits 1, 2) */
    XCR0_ZMM = 0xE6,         /* and opmask, ZMM_Hi256, Hi16_ZMM (bits 5-7) */
    XCR0_TILE = 0x60000      /* XTILECFG, XTILEDATA (bits 17, 18) */
};

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void read_brand(attn__cpu *c)
{
    unsigned r[12], a, b, cx, d;
    c->brand[0] = '\0';
    if (!__get_cpuid(0x80000000u, &a, &b, &cx, &d) || a < 0x80000004u) return;
    for (unsigned leaf = 0; leaf < 3; leaf++)
        __get_cpuid(0x80000002u + leaf, &r[4 * leaf], &r[4 * leaf + 1], &r[4 * leaf + 2], &r[4 * leaf + 3]);
    char raw[49];
    memcpy(raw, r, 48);
    raw[48] = '\0';
    const char *s = raw;
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ') n--;
    memcpy(c->brand, s, n);
    c->brand[n] = '\0';
}

/* What CPUID says the CPU implements, per feature. */
static void cpu_bits(bool in_cpu[ATTN__CPU_N_FEATURES], bool *osxsave)
{
    unsigned a = 0, b = 0, c = 0, d = 0, max = __get_cpuid_max(0, NULL);
    unsigned c1 = 0, b7 = 0, d7 = 0, a71 = 0;
    if (max >= 1 && __get_cpuid(1, &a, &b, &c, &d)) c1 = c;
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        b7 = b;
        d7 = d;
        if (a >= 1) { /* subleaf 1 exists */
            __cpuid_count(7, 1, a, b, c, d);
            a71 = a;
        }
    }
    bool avx = c1 & (1u << 28);
    *osxsave = c1 & (1u << 27);
    in_cpu[ATTN__CPU_AVX2] = avx && (b7 & (1u << 5));
    in_cpu[ATTN__CPU_FMA] = avx && (c1 & (1u << 12));
    in_cpu[ATTN__CPU_F16C] = avx && (c1 & (1u << 29));
    in_cpu[ATTN__CPU_AVX512F] = b7 & (1u << 16);
    in_cpu[ATTN__CPU_AVX512DQ] = b7 & (1u << 17);
    in_cpu[ATTN__CPU_AVX512BW] = b7 & (1u << 30);
    in_cpu[ATTN__CPU_AVX512VL] = b7 & (1u << 31);
    in_cpu[ATTN__CPU_AVX512_BF16] = a71 & (1u << 5);
    in_cpu[ATTN__CPU_AVX512_FP16] = d7 & (1u << 23);
    in_cpu[ATTN__CPU_AMX_BF16] = d7 & (1u << 22);
    in_cpu[ATTN__CPU_AMX_TILE] = d7 & (1u << 24);
    in_cpu[ATTN__CPU_AMX_FP16] = a71 & (1u << 21);
}

/* Linux hands out AMX tile data only on request (since 5.16); "" if the
 * request succeeded, else why not. */
static void request_amx(char *why, size_t cap)
{
    why[0] = '\0';
#if defined(__linux__) && defined(SYS_arch_prctl)
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) != 0)
        snprintf(why, cap, "permission refused by the OS (arch_prctl ARCH_REQ_XCOMP_PERM: errno %d)", errno);
#else
    (void)cap;
#endif
}

static void detect(attn__cpu *c)
{
    bool in_cpu[ATTN__CPU_N_FEATURES], osxsave;
    read_brand(c);
    cpu_bits(in_cpu, &osxsave);
    c->xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm = (c->xcr0 & XCR0_YMM) == XCR0_YMM, zmm = (c->xcr0 & XCR0_ZMM) == XCR0_ZMM;
    bool tile = (c->xcr0 & XCR0_TILE) == XCR0_TILE;
    char amx_refused[112] = "";
    if (tile && in_cpu[ATTN__CPU_AMX_TILE]) request_amx(amx_refused, sizeof amx_refused);
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++) {
        bool is_amx = f >= ATTN__CPU_AMX_TILE, is_512 = f >= ATTN__CPU_AVX512F && !is_amx;
        c->has[f] = true;
        c->why_not[f][0] = '\0';
        if (!in_cpu[f])
            absent(c, (attn__feature)f, "not in the CPU");
        else if (!osxsave)
            absent(c, (attn__feature)f, "not enabled by the OS (OSXSAVE is off)");
        else if (is_amx && !tile)
            absent(c, (attn__feature)f, "not enabled by the OS (XCR0 lacks the tile config and tile data states)");
        else if (is_amx && amx_refused[0] != '\0')
            absent(c, (attn__feature)f, amx_refused);
        else if (is_512 && !zmm)
            absent(c, (attn__feature)f, "not enabled by the OS (XCR0 lacks the opmask and ZMM states)");
        else if (!is_amx && !ymm)
            absent(c, (attn__feature)f, "not enabled by the OS (XCR0 lacks the YMM state)");
    }
}

#else

static void detect(attn__cpu *c)
{
    c->brand[0] = '\0';
    c->xcr0 = 0;
    for (int f = 0; f < ATTN__CPU_N_FEATURES; f++) absent(c, (attn__feature)f, "not an x86 build");
}

#endif

static attn__cpu cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void detect_once(void) { detect(&cpu); }

const attn__cpu *attn__cpu_get(void)
{
    pthread_once(&cpu_once, detect_once);
    return &cpu;
}
