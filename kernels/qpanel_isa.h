/* The per-ISA activation-panel packers: the walk of ref/qpanel_unfold.h compiled with each ISA's
   byte movers (kernels/<arch>/.../qpanel_<isa>.c). Every set handles every panel layout and
   writes the very bytes of oct_ref_qpanel_pack / oct_ref_qpanel_im2col, so an op may pair any of
   them with any kernel set; qpanel_dispatch.c hands out the one the ISA level runs. */
#ifndef OCT_QPANEL_ISA_H
#define OCT_QPANEL_ISA_H

#include "kernels.h"
#include "ref/quant_kernels.h"

typedef struct {
    const char *name;
    /* the contracts of oct_ref_qpanel_pack and oct_ref_qpanel_im2col (same scratch size) */
    void (*pack)(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k, int nc,
                 uint8_t x_xor, void *panel);
    void (*im2col)(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels, int64_t p0,
                   int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel);
} oct_qpanel_kernels;

extern const oct_qpanel_kernels oct_ref_qpanel_kernels;
#if defined(__x86_64__)
extern const oct_qpanel_kernels oct_avx2_qpanel_kernels;   /* SSE/AVX2 shuffles, tails through a stage */
extern const oct_qpanel_kernels oct_avx512_qpanel_kernels; /* AVX-512 BW/VL, masked tails */
#endif
#if defined(__aarch64__)
extern const oct_qpanel_kernels oct_neon_qpanel_kernels; /* VST4/VLD2 interleaves */
#endif

/* The packers for an ISA level (the fastest the CPU runs at or below it). */
const oct_qpanel_kernels *oct_qpanel_kernels_for(oct_isa isa);
/* Those of the level selected now (OCTET_ISA honoured). */
const oct_qpanel_kernels *oct_qpanel_kernels_selected(void);

#endif
