/* Run-time kernel selection: the best ISA the CPU has, lowered by OCTET_ISA. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

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
               __builtin_cpu_supports("avx512vl");
    case OCT_ISA_VNNI:
        return oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
    case OCT_ISA_NEON: return 1;
    case OCT_ISA_DOTPROD: return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    default: return 0;
    }
}

/* One table per ISA. Until the SIMD kernels land (issue 3 and 5) every level uses the ref
   kernels; the table and the OCTET_ISA override exist so that tests already loop over levels. */
static const oct_kernel_table tables[OCT_ISA_COUNT] = {
    [OCT_ISA_REF] = {OCT_ISA_REF, "ref", oct_ref_sgemm},
    [OCT_ISA_AVX2] = {OCT_ISA_AVX2, "avx2", oct_ref_sgemm},
    [OCT_ISA_AVX512] = {OCT_ISA_AVX512, "avx512", oct_ref_sgemm},
    [OCT_ISA_VNNI] = {OCT_ISA_VNNI, "vnni", oct_ref_sgemm},
    [OCT_ISA_NEON] = {OCT_ISA_NEON, "neon", oct_ref_sgemm},
    [OCT_ISA_DOTPROD] = {OCT_ISA_DOTPROD, "dotprod", oct_ref_sgemm},
};

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
        t = &tables[choose()];
        __atomic_store_n(&selected, t, __ATOMIC_RELEASE);
    }
    return t;
}

void oct_kernels_reset(void) {
    __atomic_store_n(&selected, (const oct_kernel_table *)NULL, __ATOMIC_RELEASE);
}
