/* The direct convolution kernel set for the ISA that oct_kernels() selected (so OCTET_ISA lowers it
   like every other kernel). Levels without a twin of their own use the next one down. */
#include <stdlib.h>

#include "direct_isa.h"
#include "kernels.h"

#if defined(__x86_64__)
static const oct_dconv_kernels avx2_set = {
    "avx2", 1, oct_avx2_dconv_f32, 1, oct_avx2_dconv_s8_wbytes, oct_avx2_dconv_s8_pack,
    oct_avx2_dconv_s8_repack, oct_avx2_dconv_s8,
};
static const oct_dconv_kernels avx512_set = {
    "avx512", 1, oct_avx512_dconv_f32, 1, oct_avx2_dconv_s8_wbytes, oct_avx2_dconv_s8_pack,
    oct_avx2_dconv_s8_repack, oct_avx2_dconv_s8,
};
static const oct_dconv_kernels vnni_set = {
    "vnni", 1, oct_avx512_dconv_f32, 1, oct_dconv_s8_quad_bytes, oct_dconv_s8_quad_pack,
    oct_avx2_dconv_s8_repack, oct_vnni_dconv_s8,
};
/* The 'vnni' level on a CPU with AVX-VNNI but not AVX-512: 256-bit kernels throughout. */
static const oct_dconv_kernels avxvnni_set = {
    "vnni (avx-vnni)", 1, oct_avx2_dconv_f32, 1, oct_avx2_dconv_s8_wbytes, oct_avx2_dconv_s8_pack,
    oct_avx2_dconv_s8_repack, oct_avx2_dconv_s8,
};
#elif defined(__aarch64__)
/* Plain NEON has no int8 twin (not SIMD: the int8 ops plan their other strategies there). */
static const oct_dconv_kernels neon_set = {
    "neon", 1, oct_neon_dconv_f32, 0, oct_dconv_s8_quad_bytes, oct_dconv_s8_quad_pack,
    oct_ref_dconv_s8_repack, oct_ref_dconv_s8,
};
static const oct_dconv_kernels dotprod_set = {
    "dotprod", 1, oct_neon_dconv_f32, 1, oct_dconv_s8_quad_bytes, oct_dconv_s8_quad_pack,
    oct_dotprod_dconv_s8_repack, oct_dotprod_dconv_s8,
};
#endif

const oct_dconv_kernels *oct_dconv_select(void) {
    const oct_kernel_table *t = oct_kernels();
    switch (t->isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &avx2_set;
    case OCT_ISA_AVX512: return &avx512_set;
    case OCT_ISA_VNNI: return oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni")
                                  ? &vnni_set : &avxvnni_set;
#elif defined(__aarch64__)
    case OCT_ISA_NEON: return &neon_set;
    case OCT_ISA_DOTPROD: return &dotprod_set;
#endif
    default: return &oct_ref_dconv_kernels;
    }
}

int oct_dconv_enabled(void) {
    const char *v = getenv("OCTET_DIRECT");
    return !(v && v[0] == '0');
}
