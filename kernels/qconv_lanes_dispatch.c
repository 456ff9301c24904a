/* The channel-lane int8 convolution set for an ISA level (ref/qconv_lanes.h): the 'vnni' level has
   a 512-bit twin on AVX-512 VNNI and a 256-bit one on AVX-VNNI alone; elsewhere the op keeps its
   other strategies (the ref twin serves the tests). */
#include "kernels.h"
#include "quant_isa.h"
#include "ref/qconv_lanes.h"

#if defined(__x86_64__)
extern const oct_lconv_kernels oct_vnni_lconv_kernels, oct_vbmi_lconv_kernels;
#endif

const oct_lconv_kernels *oct_lconv_kernels_for(oct_isa isa) {
#if defined(__x86_64__)
    if (isa == OCT_ISA_VNNI && oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni"))
        return __builtin_cpu_supports("avx512vbmi") ? &oct_vbmi_lconv_kernels : &oct_vnni_lconv_kernels;
    if (isa == OCT_ISA_VNNI && oct_cpu_has_avxvnni()) return &oct_avxvnni_lconv_kernels;
#endif
    (void)isa;
    return NULL;
}

const oct_lconv_kernels *oct_lconv_kernels_selected(void) {
    return oct_lconv_kernels_for(oct_kernels()->isa);
}
