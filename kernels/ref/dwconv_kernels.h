/* Fast 2-D depthwise convolution (one input channel per output channel), fp32 and int8.

   Method. For one channel and a band of output rows, the zero-padded input is copied into
   sh x sw "phase planes" (plane (a, b) holds padded rows a, a+sh, ... and columns b, b+sw, ...),
   all with the same row pitch wq = OW + (KW-1)/sw. A strided convolution then becomes a stride-1
   one: tap (kh, kw) of output (oh, ow) reads plane (kh%sh, kw%sw) at flat index
   oh*wq + ow + (kh/sh)*wq + kw/sw. So the band is ONE flat vector stream: for every tap, acc[q] +=
   w[tap] * plane[q + off[tap]] over q < rows*wq, with no border tests and no gathers; the columns
   ow >= OW of each row are junk, computed and dropped. Small planes (7x7) thereby fill vector lanes
   across rows, and stride 2 needs no deinterleaving loads. A row-wise write-back then applies the
   fp32 epilogue (bias, residual, activation) or the int8 requantization into the output.

   int8 runs through the same float stream, exactly: after the zero points are subtracted,
   activations and weights are integers in [-255, 255], each product is below 2^16 and a sum of up
   to OCT_DW_MAX_TAPS of them below 2^24, so every float32 product and partial sum is an exact
   integer. The sum is therefore the exact int32 accumulator of oct_ref_qconv_depthwise (no wrap can
   occur at these sizes), and the requantization then follows quant_kernels.h step by step.

   The per-ISA parts are small primitives (oct_dw_kernels): row copies, the tap stream and the
   write-backs; the band loop and the weight preparation are shared portable C (dwconv.c). */
#ifndef OCT_DWCONV_KERNELS_H
#define OCT_DWCONV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "nn_kernels.h"
#include "quant_kernels.h"

enum {
    OCT_DW_MAX_TAPS = 64,   /* kernel area of the fast path (int8 exactness needs <= 258) */
    OCT_DW_MAX_STRIDE = 4,  /* per dim: at most 16 phase planes */
    OCT_DW_SLACK = 64       /* floats past each plane and accumulator row that a vector may touch */
};

/* A channel's geometry and buffers, fixed at plan time. */
typedef struct {
    int64_t ih, iw, oh, ow;
    int kh, kw, sh, sw, ph, pw;
    int na, nb;             /* phase planes built: min(sh, kh) x min(sw, kw) */
    int ntaps;
    int64_t wq;             /* row pitch of the phase planes and the accumulator band */
    int64_t band;           /* output rows per band */
    int64_t plane_stride;   /* floats per phase plane, slack included */
    int64_t acc_offset;     /* where the accumulator band starts in the scratch, in floats */
    int64_t tap_off[OCT_DW_MAX_TAPS]; /* per tap (kh-major): plane start + row/column shift */
} oct_dw_plan;

/* Fills pl for g and returns 1 when the fast path covers it: a 2-D (or 1-D) window, no dilation
   on dims with a kernel wider than 1, strides <= OCT_DW_MAX_STRIDE, kernel area <= OCT_DW_MAX_TAPS
   and sizes whose buffers stay small. Returns 0 otherwise (the caller uses the ref loops). */
int oct_dw_plan_init(const oct_conv_geom *g, oct_dw_plan *pl);
/* Bytes of per-thread scratch one oct_dw_conv_* call needs (64-byte multiple). */
size_t oct_dw_scratch_bytes(const oct_dw_plan *pl);

/* A run of input rows copied into phase rows by one fill call (strides 1 and 2). Each padded row
   has n columns: zeros, then the input row at columns [lo, hi), then zeros. With split, its even
   and odd columns go to phase rows d0 and d1 (n/2 each), else the padded row is phase row d0. */
typedef struct {
    int64_t rows;
    int64_t ld_src;   /* elements between consecutive input rows */
    int64_t n, lo, hi;
    int64_t ld_dst;   /* floats between consecutive phase rows */
    int split;
} oct_dw_rows;

/* What an ISA provides. "May write past" means by up to OCT_DW_SLACK floats, into the slack that
   follows every phase row, plane and accumulator band; rows are written in order, so
   a row's overrun lands where later writes go. Output rows are never written past their end. */
typedef struct {
    const char *name;
    /* The phase rows of r->rows input rows (d1 only with split): value (x ^ x_xor) - x_zp for
       8-bit input, x for fp32; reads exactly the input rows' [0, hi - lo); may write past each
       phase row. */
    void (*fill_u8)(const oct_dw_rows *r, const uint8_t *src, uint8_t x_xor, int32_t x_zp, float *d0, float *d1);
    void (*fill_f32)(const oct_dw_rows *r, const float *src, float *d0, float *d1);
    /* acc[i] = sum_t w[t] * base[off[t] + i] for i < n, taps summed in order t = 0, 1, ...; may
       read and write past n. */
    void (*taps)(const float *base, const int64_t *off, const float *w, int ntaps, int64_t n, float *acc);
    /* For rows r < rows (acc rows ld_acc apart, y and res rows n apart):
       y[i] = act(acc[i] + bias + res[i]) for i < n (res may be NULL). With sum (else NULL), also
       adds the sum of the values written to *sum (float partial sums over the call's rows, a band
       of at most a few thousand values, added in double): the channel total of a fused
       GlobalAveragePool, taken while y is in registers instead of in a second pass over it. */
    void (*epilogue_f32)(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, float bias, const float *res,
                         const oct_act *act, float *y, double *sum);
    /* The same rows: y[i] = requantized (int32)acc[i] with the row's bias, multiplier m, float clamp
       [lo, hi] and zero point zp, as oct_ref_requant; 8-bit output (the bits of uint8 and int8 agree).
       With sum (else NULL), also adds to *sum the values written, as the integers they stand for
       (q + zp before the cast: uint8 or int8 alike), exactly: a fused QLinearGlobalAveragePool. */
    void (*requant)(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, int32_t bias, float m, float lo,
                    float hi, int32_t zp, void *y, int64_t *sum);
} oct_dw_kernels;

extern const oct_dw_kernels oct_ref_dw_kernels;
/* The set for an ISA level (ISA levels without their own use the closest one below), and the one
   for the level oct_kernels() selected. */
const oct_dw_kernels *oct_dw_kernels_for(oct_isa isa);
const oct_dw_kernels *oct_dw_kernels_selected(void);

/* One fp32 channel: y = act(conv(x, w) + bias + res); res may be NULL. x is the IHxIW plane,
   w the KHxKW kernel, y the OHxOW plane; scratch is oct_dw_scratch_bytes long, 64-byte aligned.
   Returns the sum of y's values when want_sum is set (for a fused channel mean), else 0. */
double oct_dw_conv_f32(const oct_dw_kernels *k, const oct_dw_plan *pl, const float *x, const float *w,
                       float bias, const float *res, const oct_act *act, float *y, int want_sum, void *scratch);

/* One 8-bit channel: acc = sum over taps inside the input of ((x ^ x_xor) - x_zp) * (w - w_zp),
   as oct_ref_qconv_depthwise (w in the int8 domain). With rq, y gets row `row` of
   oct_ref_requant(acc) (8-bit, rq's type); with rq NULL, y gets acc as int32 (ConvInteger).
   Returns the exact sum of the 8-bit values written when want_sum is set (with rq), else 0. */
int64_t oct_dw_conv_q8(const oct_dw_kernels *k, const oct_dw_plan *pl, const uint8_t *x, uint8_t x_xor,
                       int32_t x_zp, const int8_t *w, int32_t w_zp, const oct_requant *rq, int64_t row,
                       void *y, int want_sum, void *scratch);

#endif
