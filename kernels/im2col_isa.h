/* The fp32 im2col panel unfold of the GEMM convolutions (the contract of oct_ref_im2col_f32_panel,
   ref/nn_kernels.h) for the selected ISA level; im2col_dispatch.c picks the twin. */
#ifndef OCT_IM2COL_ISA_H
#define OCT_IM2COL_ISA_H

#include "ref/nn_kernels.h"

/* oct_ref_im2col_f32_panel's contract and bytes, with the faster twin of the ISA level that
   oct_kernels() selected (OCTET_ISA lowers it with the GEMMs). */
void oct_im2col_f32_panel(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                          int64_t nr, float *bp);

#if defined(__x86_64__)
void oct_avx512_im2col_f32_panel(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                                 int64_t nr, float *bp);
#endif

#endif
