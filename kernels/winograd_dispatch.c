/* Picks the Winograd transform set matching the ISA level that oct_kernels() selected, so that
   OCTET_ISA lowers these kernels together with the GEMMs they feed. Levels without transforms of
   their own use the set of the level below (vnni: AVX-512 or, on AVX-VNNI-only CPUs, AVX2;
   dotprod: NEON). */
#include "kernels.h"
#include "winograd_isa.h"

const oct_wino_kernel_set *oct_wino_kernels(void) {
    switch (oct_kernels()->isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &oct_avx2_wino_kernels;
    case OCT_ISA_AVX512: return &oct_avx512_wino_kernels;
    case OCT_ISA_VNNI:
        return oct_isa_supported(OCT_ISA_AVX512) ? &oct_avx512_wino_kernels : &oct_avx2_wino_kernels;
#endif
#if defined(__aarch64__)
    case OCT_ISA_NEON:
    case OCT_ISA_DOTPROD: return &oct_neon_wino_kernels;
#endif
    default: return &oct_ref_wino_kernels;
    }
}
