/* Picks the oct_misc_kernel_set of the ISA level oct_kernels() chose (so OCTET_ISA lowers it too).
   The vector sets are built per architecture; a level of the other family never reaches here. */
#include "misc_kernels.h"

#include "kernels.h"
#include "ref/quant_kernels.h"

static void ref_maxpool_f32(const oct_conv_geom *g, const float *x, float *y) { oct_ref_maxpool_f32(g, x, y, NULL); }
static void ref_maxpool_u8(const oct_conv_geom *g, const uint8_t *x, uint8_t *y) { oct_ref_maxpool_u8(g, x, y, NULL); }
static void ref_maxpool_s8(const oct_conv_geom *g, const int8_t *x, int8_t *y) { oct_ref_maxpool_s8(g, x, y, NULL); }

const oct_misc_kernel_set oct_ref_misc_kernels = {
    .name = "ref",
    .maxpool_f32 = ref_maxpool_f32,
    .maxpool_u8 = ref_maxpool_u8,
    .maxpool_s8 = ref_maxpool_s8,
    .avgpool_f32 = oct_ref_avgpool_f32,
    .quantize_f32_u8 = oct_ref_quantize_f32_u8,
    .quantize_f32_s8 = oct_ref_quantize_f32_s8,
    .dequantize_u8 = oct_ref_dequantize_u8,
    .dequantize_s8 = oct_ref_dequantize_s8,
    .qbinary = oct_ref_qbinary,
    .qlut = oct_ref_qlut,
    .qsum = oct_ref_qsum_plane,
    .sum_f32 = oct_ref_sum_f32,
    .max_f32 = oct_ref_max_f32,
};

const oct_misc_kernel_set *oct_misc_kernels(void) {
    switch (oct_kernels()->isa) {
#if defined(__x86_64__)
    case OCT_ISA_AVX2: return &oct_avx2_misc_kernels;
    case OCT_ISA_AVX512:
    case OCT_ISA_VNNI:
        /* 'vnni' may be AVX-VNNI on a CPU without AVX-512 */
        if (!oct_isa_supported(OCT_ISA_AVX512)) return &oct_avx2_misc_kernels;
        return __builtin_cpu_supports("avx512vbmi") ? &oct_avx512vbmi_misc_kernels : &oct_avx512_misc_kernels;
#endif
#if defined(__aarch64__)
    case OCT_ISA_NEON:
    case OCT_ISA_DOTPROD: return &oct_neon_misc_kernels;
#endif
    default: return &oct_ref_misc_kernels;
    }
}
