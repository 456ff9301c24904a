/* Which activation-panel packers (qpanel_isa.h) each ISA level runs. The packers move bytes and
   need no dot-product instructions, so the VNNI levels run the AVX-512 (or AVX2) movers and
   dot-product runs NEON's. */
#include "qpanel_isa.h"

const oct_qpanel_kernels oct_ref_qpanel_kernels = {"ref", oct_ref_qpanel_pack, oct_ref_qpanel_im2col};

const oct_qpanel_kernels *oct_qpanel_kernels_for(oct_isa isa) {
    switch (isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &oct_avx2_qpanel_kernels;
    case OCT_ISA_AVX512: return &oct_avx512_qpanel_kernels;
    case OCT_ISA_VNNI: /* AVX-VNNI without AVX-512 is a 256-bit level */
        return oct_isa_supported(OCT_ISA_AVX512) ? &oct_avx512_qpanel_kernels : &oct_avx2_qpanel_kernels;
#elif defined(__aarch64__)
    case OCT_ISA_NEON:
    case OCT_ISA_DOTPROD: return &oct_neon_qpanel_kernels;
#endif
    default: return &oct_ref_qpanel_kernels;
    }
}

const oct_qpanel_kernels *oct_qpanel_kernels_selected(void) {
    return oct_qpanel_kernels_for(oct_kernels()->isa);
}
