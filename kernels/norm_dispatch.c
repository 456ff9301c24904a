/* Picks the oct_norm_kernel_set of the ISA level oct_kernels() chose (so OCTET_ISA lowers it too).
   vnni shares avx512's set (and is AVX-VNNI, 256-bit only, on a CPU without AVX-512). */
#include "norm_kernels.h"

#include "ref/qops_kernels.h"

const oct_norm_kernel_set oct_ref_norm_kernels = {
    .name = "ref",
    .shifted_sums = oct_ref_shifted_sums,
    .scale_shift_act = oct_ref_scale_shift_act,
    .qsums = oct_ref_qsum,
};

const oct_norm_kernel_set *oct_norm_kernels(void) {
    switch (oct_kernels()->isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &oct_avx2_norm_kernels;
    case OCT_ISA_AVX512:
    case OCT_ISA_VNNI: return oct_isa_supported(OCT_ISA_AVX512) ? &oct_avx512_norm_kernels : &oct_avx2_norm_kernels;
#endif
#if defined(__aarch64__)
    case OCT_ISA_NEON:
    case OCT_ISA_DOTPROD: return &oct_neon_norm_kernels;
#endif
    default: return &oct_ref_norm_kernels;
    }
}
