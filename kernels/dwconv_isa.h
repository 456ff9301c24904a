/* The per-ISA depthwise primitive sets (ref/dwconv_kernels.h), each compiled with its ISA's flags
   in kernels/<arch>/<isa>/dwconv_<isa>.c; dwconv_dispatch.c hands them out. */
#ifndef OCT_DWCONV_ISA_H
#define OCT_DWCONV_ISA_H

#include "ref/dwconv_blocked.h"
#include "ref/dwconv_kernels.h"
#include "ref/dwconv_rows.h"
#include "ref/dwconv_rows_f32.h"

#if defined(__x86_64__)
extern const oct_dw_kernels oct_avx2_dw_kernels;   /* AVX2 + FMA, 8 lanes */
extern const oct_dw_kernels oct_avx512_dw_kernels; /* AVX-512 F/BW/DQ/VL, 16 lanes, masked tails */
/* the channel-blocked primitives (ref/dwconv_blocked.h): vec/dwconv_blocked_vec.c per level */
extern const oct_dwb_kernels oct_avx2_dwb_kernels;
extern const oct_dwb_kernels oct_avx512_dwb_kernels;
/* the int8 row loop (ref/dwconv_rows.h): AVX-512 VNNI + VBMI */
extern const oct_dwr_kernels oct_vbmi_dwr_kernels;
/* the fp32 row loop (ref/dwconv_rows_f32.h): AVX-512 */
extern const oct_dwf_kernels oct_avx512_dwf_kernels;
#endif
#if defined(__aarch64__)
extern const oct_dw_kernels oct_neon_dw_kernels; /* ARMv8.0 NEON, 4 lanes */
extern const oct_dwb_kernels oct_neon_dwb_kernels;
#endif

#endif
