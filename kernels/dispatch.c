/* Run-time kernel selection: the best ISA the CPU has, lowered by OCTET_ISA. */
#include <stdlib.h>
#include <string.h>

#include "isa_kernels.h"
#include "kernels.h"
#include "quant_isa.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static const char *const isa_names[OCT_ISA_COUNT] = {"ref", "avx2", "avx512", "vnni", "neon", "dotprod"};

const char *oct_isa_name(oct_isa isa) {
    return isa >= 0 && isa < OCT_ISA_COUNT ? isa_names[isa] : "unknown";
}

int oct_isa_supported(oct_isa isa) {
    switch (isa) {
    case OCT_ISA_REF: return 1;
#if defined(__x86_64__)
    case OCT_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case OCT_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
    case OCT_ISA_VNNI:
        return (oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni")) ||
               oct_cpu_has_avxvnni();
#elif defined(__aarch64__)
    case OCT_ISA_NEON: return 1;
    case OCT_ISA_DOTPROD: return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    default: return 0;
    }
}

/* One table per ISA. An entry is only ever selected when oct_isa_supported() holds for it, so the
   entries of the other architecture family keep the ref kernels (their ISA code is not built here).
   VNNI has no fp32 instructions of its own: its sgemm is the AVX-512 one; likewise dotprod and NEON. */
#if defined(__x86_64__)
#define AVX2_SGEMM oct_avx2_sgemm
#define AVX512_SGEMM oct_avx512_sgemm
#else
#define AVX2_SGEMM oct_ref_sgemm
#define AVX512_SGEMM oct_ref_sgemm
#endif
#if defined(__aarch64__)
#define NEON_SGEMM oct_neon_sgemm
#else
#define NEON_SGEMM oct_ref_sgemm
#endif

/* The int8 sets: avx512 (without VNNI) reuses the AVX2 one (VPMADDWD). */
#if defined(__x86_64__)
#define AVX2_QUANT &oct_avx2_quant_kernels
#define VNNI_QUANT &oct_vnni_quant_kernels
#else
#define AVX2_QUANT &oct_ref_quant_kernels
#define VNNI_QUANT &oct_ref_quant_kernels
#endif
#if defined(__aarch64__)
#define NEON_QUANT &oct_neon_quant_kernels
#define DOTPROD_QUANT &oct_dotprod_quant_kernels
#else
#define NEON_QUANT &oct_ref_quant_kernels
#define DOTPROD_QUANT &oct_ref_quant_kernels
#endif

static const oct_kernel_table tables[OCT_ISA_COUNT] = {
    [OCT_ISA_REF] = {OCT_ISA_REF, "ref", oct_ref_sgemm, &oct_ref_quant_kernels},
    [OCT_ISA_AVX2] = {OCT_ISA_AVX2, "avx2", AVX2_SGEMM, AVX2_QUANT},
    [OCT_ISA_AVX512] = {OCT_ISA_AVX512, "avx512", AVX512_SGEMM, AVX2_QUANT},
    [OCT_ISA_VNNI] = {OCT_ISA_VNNI, "vnni", AVX512_SGEMM, VNNI_QUANT},
    [OCT_ISA_NEON] = {OCT_ISA_NEON, "neon", NEON_SGEMM, NEON_QUANT},
    [OCT_ISA_DOTPROD] = {OCT_ISA_DOTPROD, "dotprod", NEON_SGEMM, DOTPROD_QUANT},
};

int oct_cpu_has_avxvnni(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!oct_isa_supported(OCT_ISA_AVX2) || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4) & 1;
#else
    return 0;
#endif
}

/* The 'vnni' level on a CPU with AVX-VNNI but not AVX-512 VNNI: 256-bit kernels throughout. */
#if defined(__x86_64__)
static const oct_kernel_table avxvnni_table = {OCT_ISA_VNNI, "vnni", AVX2_SGEMM, &oct_avxvnni_quant_kernels};
#endif

static const oct_kernel_table *table_for(oct_isa isa) {
#if defined(__x86_64__)
    if (isa == OCT_ISA_VNNI && !(oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni")))
        return &avxvnni_table;
#endif
    return &tables[isa];
}

static const oct_kernel_table *selected;

static oct_isa best_isa(void) {
    static const oct_isa ladder[] = {OCT_ISA_VNNI, OCT_ISA_AVX512, OCT_ISA_AVX2, OCT_ISA_DOTPROD, OCT_ISA_NEON};
    for (size_t i = 0; i < sizeof ladder / sizeof ladder[0]; i++)
        if (oct_isa_supported(ladder[i])) return ladder[i];
    return OCT_ISA_REF;
}

static oct_isa choose(void) {
    oct_isa best = best_isa();
    const char *want = getenv("OCTET_ISA");
    if (!want || !*want) return best;
    for (int i = 0; i < OCT_ISA_COUNT; i++)
        if (strcmp(want, isa_names[i]) == 0 && oct_isa_supported((oct_isa)i)) return (oct_isa)i;
    /* Unknown or unsupported: the best level the CPU has that is not above the request. */
    if (strcmp(want, "avx512") == 0 && oct_isa_supported(OCT_ISA_AVX2)) return OCT_ISA_AVX2;
    if (strcmp(want, "vnni") == 0)
        return oct_isa_supported(OCT_ISA_AVX512) ? OCT_ISA_AVX512
               : oct_isa_supported(OCT_ISA_AVX2) ? OCT_ISA_AVX2 : OCT_ISA_REF;
    if (strcmp(want, "dotprod") == 0 && oct_isa_supported(OCT_ISA_NEON)) return OCT_ISA_NEON;
    return OCT_ISA_REF;
}

const oct_kernel_table *oct_kernels(void) {
    const oct_kernel_table *t = __atomic_load_n(&selected, __ATOMIC_ACQUIRE);
    if (!t) {
        t = table_for(choose());
        __atomic_store_n(&selected, t, __ATOMIC_RELEASE);
    }
    return t;
}

void oct_kernels_reset(void) {
    __atomic_store_n(&selected, (const oct_kernel_table *)NULL, __ATOMIC_RELEASE);
}
