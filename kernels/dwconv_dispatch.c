/* Which depthwise primitives (ref/dwconv_kernels.h) each ISA level runs. The float stream has no
   use for VNNI or dot-product instructions, so those levels run the AVX-512 and NEON sets; the
   same holds for the channel-blocked primitives (ref/dwconv_blocked.h). */
#include "dwconv_isa.h"
#include "kernels.h"

const oct_dw_kernels *oct_dw_kernels_for(oct_isa isa) {
    switch (isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &oct_avx2_dw_kernels;
    case OCT_ISA_AVX512: return &oct_avx512_dw_kernels;
    case OCT_ISA_VNNI: /* AVX-VNNI without AVX-512 is a 256-bit level */
        return oct_isa_supported(OCT_ISA_AVX512) ? &oct_avx512_dw_kernels : &oct_avx2_dw_kernels;
#elif defined(__aarch64__)
    case OCT_ISA_NEON:
    case OCT_ISA_DOTPROD: return &oct_neon_dw_kernels;
#endif
    default: return &oct_ref_dw_kernels;
    }
}

const oct_dw_kernels *oct_dw_kernels_selected(void) {
    return oct_dw_kernels_for(oct_kernels()->isa);
}

const oct_dwb_kernels *oct_dwb_kernels_for(oct_isa isa) {
    switch (isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &oct_avx2_dwb_kernels;
    case OCT_ISA_AVX512: return &oct_avx512_dwb_kernels;
    case OCT_ISA_VNNI: return oct_isa_supported(OCT_ISA_AVX512) ? &oct_avx512_dwb_kernels : &oct_avx2_dwb_kernels;
#elif defined(__aarch64__)
    case OCT_ISA_NEON:
    case OCT_ISA_DOTPROD: return &oct_neon_dwb_kernels;
#endif
    default: return &oct_ref_dwb_kernels;
    }
}

const oct_dwb_kernels *oct_dwb_kernels_selected(void) {
    return oct_dwb_kernels_for(oct_kernels()->isa);
}

/* The row path needs VPDPBUSD on 512 bits and VPERMB; without them it does not run at all (the
   callers take the blocked or band path). */
const oct_dwr_kernels *oct_dwr_kernels_for(oct_isa isa) {
#if defined(__x86_64__)
    if (isa == OCT_ISA_VNNI && oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx512vbmi"))
        return &oct_vbmi_dwr_kernels;
#endif
    (void)isa;
    return NULL;
}

const oct_dwr_kernels *oct_dwr_kernels_selected(void) {
    return oct_dwr_kernels_for(oct_kernels()->isa);
}

/* The fp32 row path needs 16-float vectors with masked loads and stores (AVX-512); without them the
   callers take the blocked or band path. */
const oct_dwf_kernels *oct_dwf_kernels_for(oct_isa isa) {
#if defined(__x86_64__)
    if ((isa == OCT_ISA_AVX512 || isa == OCT_ISA_VNNI) && oct_isa_supported(OCT_ISA_AVX512))
        return &oct_avx512_dwf_kernels;
#endif
    (void)isa;
    return NULL;
}

const oct_dwf_kernels *oct_dwf_kernels_selected(void) {
    return oct_dwf_kernels_for(oct_kernels()->isa);
}
