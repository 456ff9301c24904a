/* Which depthwise path a node runs (Conv and QLinearConv / ConvInteger alike): the channel-blocked
   one of kernels/ref/dwconv_blocked.h, or the per-channel band one of dwconv_kernels.h; for
   QLinearConv on wide planes also the int8 row path of dwconv_rows.h. */
#ifndef OCT_DW_PATH_H
#define OCT_DW_PATH_H

#include <stdint.h>

#include "ref/dwconv_blocked.h"
#include "ref/dwconv_rows.h"
#include "ref/dwconv_rows_f32.h"

/* Input columns from which the int8 row path beats the blocked one: a vector holds 16 output
   columns, so narrower planes leave lanes idle that the blocked path fills with channels.
   Measured with AVX-512 VNNI (one thread, both paths alternating in one process): stride 1,
   1.45-1.5x at 28 columns (192 and 240 channels, 3x3 and 5x5), 1.5-2.7x at 38 to 150, even at 19
   and 14 (0.94-1.02x); stride 2, 1.1-1.25x from 28 input columns (14 and 19 output columns),
   1.5-2.6x from 56, but 0.6x from 14 (7 output columns). */
enum { DW_ROWS_MIN_WIDTH = 28 };

/* 1 when the blocked path covers geometry g with m output channels and channel multiplier mg
   (pl filled) and is the faster one with the kernels of the selected ISA level. Measured on the
   zoo's depthwise shapes (fp32 and int8, one thread, both paths alternating in one process): with
   AVX-512, blocked wins 1.0-1.7x on 28x28 to 112x112 planes and 1.6-3.4x on 7x7 to 19x19 ones
   (960 channels of 7x7, int8: 66 -> 24 us); without register transposes only on small planes
   (oct_dwb_kernels.max_plane). It loses where lanes go unused: 8 channels 0.74x, 24 channels of
   150x150 (two blocks, 3/4 full) 0.89x, 40 of 150x150 (5/6 full) even. Hence: blocks at least
   4/5 full. */
static inline int dw_blocked_pays(const oct_conv_geom *g, int64_t m, int64_t mg, oct_dwb_plan *pl) {
    if (mg != 1 || m < OCT_DWB_LANES || !oct_dwb_plan_init(g, pl)) return 0;
    const int64_t max_plane = oct_dwb_kernels_selected()->max_plane;
    if (max_plane && pl->ih * pl->iw > max_plane) return 0;
    const int64_t lanes = (m + OCT_DWB_LANES - 1) / OCT_DWB_LANES * OCT_DWB_LANES;
    return 5 * m >= 4 * lanes;
}

/* 1 when the int8 row path of kernels/ref/dwconv_rows.h covers geometry g with channel multiplier
   mg (pl filled), the selected ISA level has its kernels and the plane is wide enough for them to
   win. bpl gets the blocked plan too: the row path falls back on it for channel blocks whose
   weights do not fit int8 around their zero points. */
static inline int dw_rows_pays(const oct_conv_geom *g, int64_t mg, oct_dwr_plan *pl, oct_dwb_plan *bpl) {
    if (mg != 1 || !oct_dwr_kernels_selected() || !oct_dwr_plan_init(g, pl) || !oct_dwb_plan_init(g, bpl)) return 0;
    return pl->iw >= DW_ROWS_MIN_WIDTH;
}

/* Input columns from which the fp32 row path beats the blocked one, at column stride 1 and 2.
   Measured with AVX-512 (one thread, both paths alternating in one process, MobileNetV2 and
   EfficientNet-B0 layers): stride 1 wins 1.45-1.85x at 112 and 56 columns but loses 0.86x at 28
   (two vectors per row, 12 of 16 lanes in the second, and the per-row copy); stride 2 (plain rows,
   VPERMT2PS taps) wins 1.25x at 112 columns (MobileNetV2 features.2: 0.30 -> 0.22 ms with the
   blocked path at 0.30), is even at 56 (MobileNetV2 1.07x, but 0.77x on EfficientNet's 5x5 with
   the SE squeeze) and loses at 28 (0.67x). */
enum { DW_ROWS_F32_MIN_WIDTH_S1 = 56, DW_ROWS_F32_MIN_WIDTH_S2 = 112 };

/* 1 when the fp32 row path of kernels/ref/dwconv_rows_f32.h covers geometry g (pl filled), the
   selected ISA level has its kernels and the plane is wide enough for them to win. */
static inline int dw_rows_f32_pays(const oct_conv_geom *g, oct_dwf_plan *pl) {
    /* the permute loop of plain rows at column stride 2 takes 3x3 and 5x5 windows */
    const int held = (g->k[1] == 3 && g->k[2] == 3) || (g->k[1] == 5 && g->k[2] == 5);
    if (!oct_dwf_kernels_selected() || !oct_dwf_plan_init(g, held ? OCT_DWF_PLAIN : OCT_DWF_PHASES, pl)) return 0;
    return pl->iw >= (pl->sw == 1 ? DW_ROWS_F32_MIN_WIDTH_S1 : DW_ROWS_F32_MIN_WIDTH_S2);
}

/* Output rows per work item of the row paths (int8 and fp32) when the blocks of 16 channels alone
   cannot keep `threads` busy: about four items per thread. */
static inline int64_t dw_rows_per_item(int64_t oh, int64_t blocks, int threads) {
    if (threads <= 1 || blocks >= 4 * (int64_t)threads) return oh;
    int64_t per_block = (4 * (int64_t)threads + blocks - 1) / blocks;
    if (per_block > oh) per_block = oh;
    return (oh + per_block - 1) / per_block;
}

/* The first 64-byte boundary at or after p: where a blocked slice's scratch starts. */
static inline void *dw_align64(void *p) { return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

#endif
