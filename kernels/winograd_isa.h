/* The per-ISA Winograd transform sets (ref/winograd.h), each compiled with its own flags in
   kernels/<arch>/<isa>/; winograd_dispatch.c selects one only when the CPU has its ISA. */
#ifndef OCT_WINOGRAD_ISA_H
#define OCT_WINOGRAD_ISA_H

#include "ref/winograd.h"

#if defined(__x86_64__)
extern const oct_wino_kernel_set oct_avx2_wino_kernels;   /* 8 tiles per ymm */
extern const oct_wino_kernel_set oct_avx512_wino_kernels; /* 16 tiles per zmm, masked edges */
#endif
#if defined(__aarch64__)
extern const oct_wino_kernel_set oct_neon_wino_kernels;   /* 4 tiles per q register */
#endif

#endif
