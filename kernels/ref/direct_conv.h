/* Direct convolution (no im2col) for stride-1 convolutions with few channels, fp32 and int8.

   With few output channels M, unfolding (im2col) writes K = C * kernel volume values per output
   pixel and each is used for only M multiply-adds, so the unfolding costs more than the GEMM. The
   direct kernels instead keep a register tile of (up to 8 output channels) x (a few output rows x
   one vector of pixels along W) and accumulate over the kernel taps and input channels, reading the
   input rows at the tap offsets. Weights are packed at plan time in the order the kernels read
   them.

   fp32: the input is read in place. Taps that fall in the padding read zeros: a row outside the
   input reads a static row of zeros, and the columns outside it are masked off (SIMD twins) or
   skipped (ref). Accumulation per output value runs in the order bias, then (kd, kh, c, kw).

   int8: a slab of the input (a few output planes and rows, with their halo) is repacked per call
   into [group][plane][row][column][4 bytes], each 4-byte group holding 4 consecutive reduction
   elements of one pixel in the uint8 domain: 4 input channels, or, with fewer than 3 channels
   ("folded"), (channel, kw) pairs so that the few channels do not waste dot-product lanes. The
   padding holds the input zero point, so padded taps add nothing once the zero-point term
   x_zp * sum(w) is subtracted. Weight zero points must be 0 in the int8 domain (the op checks).
   The int32 sums are exact modulo 2^32, so every twin gives the same integers, and requantization
   follows quant_kernels.h bit for bit. */
#ifndef OCT_DIRECT_CONV_H
#define OCT_DIRECT_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "quant_kernels.h"

/* Output channels per packed weight block (one register tile's height). */
enum { OCT_DCONV_MB = 8 };
/* Limits that keep the kernels' tables and row copies on the stack: kernel width, the widest kw
   reach (KW-1)*dilation, and the slab row width in pixels. The ops choose the strategy within them. */
enum { OCT_DCONV_KW_MAX = 16, OCT_DCONV_REACH_MAX = 64, OCT_DCONV_WP_MAX = 4096 };

/* ---- fp32 ------------------------------------------------------------------------------------ */

/* One group of an fp32 stride-1 convolution, with its epilogue. */
typedef struct {
    oct_conv_geom g;     /* stride 1 in every dim */
    int64_t channels;    /* input channels (of the group) */
    int64_t outs;        /* output channels (of the group) */
    const float *x;      /* [channels][in volume] */
    const float *w;      /* packed by oct_dconv_f32_pack */
    const float *bias;   /* [outs] or NULL */
    const float *res;    /* [outs][out volume] or NULL: residual added before the activation */
    oct_act act;
    float *y;            /* [outs][out volume] */
} oct_dconv_f32;

/* Computes output channels [mblk*8, mblk*8+8) (those below outs) of output plane od, rows
   [oh0, oh0+nh), every column: y = act(bias + conv + res). */
typedef void (*oct_dconv_f32_fn)(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh);

/* Floats of the packed weights; 0 when the size overflows. */
size_t oct_dconv_f32_packed_floats(int64_t outs, int64_t channels, int64_t kvol);
/* Packs w[outs][channels][kd][kh][kw] as [mblk][kd][kh][c][kw][8] (channels past outs are 0). */
void oct_dconv_f32_pack(const oct_conv_geom *g, int64_t outs, int64_t channels, const float *w, float *packed);

void oct_ref_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh);

/* ---- int8 ------------------------------------------------------------------------------------ */

/* The reduction layout of one group of an int8 stride-1 convolution. */
typedef struct {
    oct_conv_geom g;     /* stride 1 in every dim */
    int64_t channels;    /* input channels (of the group) */
    int64_t outs;        /* output channels (of the group) */
    int fold;            /* 4-byte groups hold (channel, kw) pairs instead of 4 channels */
    int64_t groups;      /* 4-byte groups per slab pixel */
    int64_t taps_w;      /* kw taps walked per group: g.k[2], or 1 when folded */
} oct_dconv_s8_shape;

/* Fills s for a geometry and channel counts (folding when it saves dot-product work). */
void oct_dconv_s8_shape_init(oct_dconv_s8_shape *s, const oct_conv_geom *g, int64_t channels, int64_t outs);

/* A slab: output planes [d0, d0+nd) and rows [h0, h0+nh) with the input they read. */
typedef struct {
    int64_t d0, nd, h0, nh;
    int64_t dp, hp, wp;  /* its padded dims: nd + (KD-1)dd, nh + (KH-1)dh, OW + (taps_w-1)dw */
} oct_dconv_slab;

/* Sets the slab's padded dims and returns its bytes (with the tail the kernels may over-read);
   0 when the size overflows. */
size_t oct_dconv_slab_init(const oct_dconv_s8_shape *s, int64_t d0, int64_t nd, int64_t h0, int64_t nh,
                           oct_dconv_slab *sl);
/* Byte offset of (group, plane, row, column) inside a slab. */
static inline int64_t oct_dconv_slab_at(const oct_dconv_slab *sl, int64_t grp, int64_t pd, int64_t ph, int64_t pw) {
    return (((grp * sl->dp + pd) * sl->hp + ph) * sl->wp + pw) * 4;
}

/* The int8 value packed at (output channel m, kd, kh, group, kw tap, lane), from the weights
   w[outs][channels][kd][kh][kw] (uint8 flipped to the int8 domain when w_u8); 0 for padding. */
int8_t oct_dconv_s8_weight(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, int64_t m, int64_t kd,
                           int64_t kh, int64_t grp, int64_t kwt, int lane);

/* Run-time arguments of the int8 kernel for one group. */
typedef struct {
    const oct_dconv_s8_shape *s;
    const void *w;          /* packed by the kernel set's s8_pack */
    const int32_t *wsum;    /* [outs] sum of each output channel's int8 weights */
    int32_t x_zp;           /* input zero point, uint8 domain */
    const oct_requant *rq;  /* QLinearConv: 8-bit output; NULL: int32 output (ConvInteger) */
    int64_t rq_row0;        /* absolute output channel of the group's first channel, for rq */
    void *y;                /* [outs][out volume], 8-bit or int32 */
} oct_dconv_s8;

/* Computes output channels [mblk*8, mblk*8+8) of plane od, rows [oh0, oh0+nh), every column, from a
   slab (od and the rows inside it) filled by the set's s8_repack. */
typedef void (*oct_dconv_s8_fn)(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl,
                                int64_t mblk, int64_t od, int64_t oh0, int64_t nh);
/* Fills the slab from the group's input x[channels][in volume] (each byte ^ x_xor; padding = pad). */
typedef void (*oct_dconv_repack_fn)(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                                    const oct_dconv_slab *sl, uint8_t *slab);

/* Layout [mblk][kd][kh][group][kw tap][8][4] int8, shared by ref and the dot-product twins. */
size_t oct_dconv_s8_quad_bytes(const oct_dconv_s8_shape *s);
void oct_dconv_s8_quad_pack(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, void *buf, int32_t *wsum);

void oct_ref_dconv_s8_repack(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                             const oct_dconv_slab *sl, uint8_t *slab);
void oct_ref_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                      int64_t od, int64_t oh0, int64_t nh);

/* ---- kernel sets ----------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int f32_simd;                      /* f32 is a SIMD kernel (ops choose the strategy only then) */
    oct_dconv_f32_fn f32;
    int s8_simd;
    size_t (*s8_wbytes)(const oct_dconv_s8_shape *s);
    void (*s8_pack)(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, void *buf, int32_t *wsum);
    oct_dconv_repack_fn s8_repack;
    oct_dconv_s8_fn s8;
} oct_dconv_kernels;

extern const oct_dconv_kernels oct_ref_dconv_kernels;

/* The set for the ISA oct_kernels() selected (kernels/direct_dispatch.c). */
const oct_dconv_kernels *oct_dconv_select(void);
/* False when OCTET_DIRECT=0: the ops then plan their other strategies (for comparisons). */
int oct_dconv_enabled(void);

#endif
