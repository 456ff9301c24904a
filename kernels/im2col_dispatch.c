/* Picks the fp32 im2col panel unfold of the ISA level oct_kernels() selected: the AVX-512 one on
   the avx512 level and on vnni when the CPU has AVX-512 (an AVX-VNNI-only CPU has not); ref
   elsewhere. */
#include "im2col_isa.h"
#include "kernels.h"

void oct_im2col_f32_panel(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                          int64_t nr, float *bp) {
#if defined(__x86_64__)
    const oct_isa isa = oct_kernels()->isa;
    if (isa == OCT_ISA_AVX512 || (isa == OCT_ISA_VNNI && oct_isa_supported(OCT_ISA_AVX512))) {
        oct_avx512_im2col_f32_panel(g, x, channels, p0, np, nr, bp);
        return;
    }
#endif
    oct_ref_im2col_f32_panel(g, x, channels, p0, np, nr, bp);
}
