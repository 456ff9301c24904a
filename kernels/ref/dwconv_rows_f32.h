/* fp32 depthwise convolution by output rows: the path for wide planes (MobileNet / EfficientNet at
   28x28..150x150), where the channel-blocked path of dwconv_blocked.h spends most of its time
   transposing channels into vector lanes and back (a 16-channel block of 56x56: ~24 cycles per
   output vector against 9 FMAs).

   Method. For one channel and a band of output rows, the input rows the band reads are copied into
   a zero-padded scratch (in L1). Each output vector is a sum over taps of (input vector) *
   (broadcast weight), started at the bias; the residual, the activation and the optional channel
   sum (a fused SE squeeze) are applied in registers before the one store. No transposes, no
   second pass. At column stride 2 the scratch rows have one of two layouts:
   - plain (OCT_DWF_PLAIN): the padded row as it is; the depthwise 3x3 and 5x5 loops take the
     even or odd columns of each tap from three aligned loads with VPERMT2PS;
   - phases (OCT_DWF_PHASES): each padded row split into its even and odd columns (two phases of
     `half` floats), so that every tap of 16 consecutive output columns is one plain vector load
     (tap (i, j) of output column c reads row r * sh + i, phase j % sw, position c + j / sw): the
     other kernels and the dense loop, which reuse each loaded vector for several outputs.
   At column stride 1 both are the plain padded row.

   The same scratch serves dense convolutions with few input channels (image stems: 3 channels,
   stride 2, where im2col writes 27..147 values per output pixel for 32..64 multiply-adds each):
   the band's rows of every input channel are copied once and each output vector sums over
   channels and taps, four output channels per loaded vector.

   The per-ISA parts are the padded copy and the row loops (oct_dwf_kernels); the band drivers, the
   plan and the ref twins are portable C in dwconv_rows_f32.c. */
#ifndef OCT_DWCONV_ROWS_F32_H
#define OCT_DWCONV_ROWS_F32_H

#include <stddef.h>
#include <stdint.h>

#include "nn_kernels.h"

enum { OCT_DWF_COLS = 16 }; /* output columns per vector */

enum { OCT_DWF_PHASES, OCT_DWF_PLAIN }; /* scratch row layouts at column stride 2 (see above) */

/* A channel's geometry, fixed at plan time. */
typedef struct {
    int64_t ih, iw, oh, ow;
    int kh, kw, sh, sw, ph, pw;
    int layout;      /* OCT_DWF_PHASES or OCT_DWF_PLAIN (always plain at column stride 1) */
    int64_t half;    /* phases: floats per phase of a scratch row (a multiple of 16); plain: pitch */
    int64_t pitch;   /* floats per scratch row, a multiple of 16 */
    int64_t band;    /* output rows per band */
    int64_t in_rows; /* scratch rows of a full band: (band - 1) * sh + kh */
} oct_dwf_plan;

/* Fills pl for g with scratch rows in `layout` and returns 1 when the row path covers it: what
   oct_dw_plan_init covers (2-D or 1-D windows without dilation, at most OCT_DW_MAX_TAPS taps) with
   a column stride of 1 or 2 and rows whose scratch stays small. Returns 0 otherwise. */
int oct_dwf_plan_init(const oct_conv_geom *g, int layout, oct_dwf_plan *pl);
/* Where tap (i, j) of output column c of output row r reads the scratch (floats from its start). */
static inline int64_t oct_dwf_at(const oct_dwf_plan *pl, int64_t r, int i, int j, int64_t c) {
    const int64_t row = (r * pl->sh + i) * pl->pitch;
    return pl->layout == OCT_DWF_PHASES ? row + (j % pl->sw) * pl->half + c + j / pl->sw : row + c * pl->sw + j;
}
/* Bytes of per-thread scratch one oct_dwf_conv_f32 call needs (64-byte multiple). */
size_t oct_dwf_scratch_bytes(const oct_dwf_plan *pl);

/* What an ISA provides. */
typedef struct {
    const char *name;
    /* Scratch rows r < n (dst 64-byte aligned, rows pl->pitch apart) get padded input row
       first + r - ph of the IHxIW plane x: padded column q (input column q - pw, 0 outside the
       input) at dst[(q % sw) * half + q / sw] (phases) or dst[q] (plain), every float a tap or
       a vector load may read that is not an input column 0. Reads only the plane. */
    void (*fill)(const oct_dwf_plan *pl, const float *x, int64_t first, int64_t n, float *dst);
    /* Output rows r < rows from the scratch rows in (output row r reads scratch rows r * sh ..
       r * sh + kh - 1): y[r * ow + c] = act(bias + sum over taps (i, j), i-major, of
       in[oct_dwf_at(pl, r, i, j, c)] * w[i * kw + j] + res[r * ow + c]) (res NULL: no residual).
       With sum (else NULL), adds the values written to *sum. Writes nothing past y[rows * ow).
       The plain layout at column stride 2 is taken for 3x3 and 5x5 windows only. */
    void (*rows)(const oct_dwf_plan *pl, const float *in, int64_t rows, const float *w, float bias,
                 const float *res, const oct_act *act, float *y, double *sum);
    /* The same rows of a dense convolution over `channels` input channels (an image stem), for
       OCT_DWF_DENSE_M output channels at once, from scratch rows in phases: the scratch holds each
       input channel's rows as fill leaves them, channel c at in + c * cs; output channel l < nm
       gets y[l * y_cs + r * ow + col] =
       act(bias[l] + the sum over channels c and taps (i, j) of its scratch value (as in rows) times
       w[((l * channels + c) * kh + i) * kw + j] + res[l * y_cs + r * ow + col]) (res NULL: none).
       w and bias hold OCT_DWF_DENSE_M channels (rows of zeros past nm); only channels l < nm are
       written. */
    void (*dense_rows)(const oct_dwf_plan *pl, const float *in, int64_t cs, int channels, int64_t rows,
                       const float *w, const float *bias, int nm, const float *res, const oct_act *act, float *y,
                       int64_t y_cs);
} oct_dwf_kernels;

enum {
    OCT_DWF_DENSE_M = 4,    /* output channels per dense_rows call */
    OCT_DWF_DENSE_MAX_C = 4 /* input channels a dense convolution may have */
};

extern const oct_dwf_kernels oct_ref_dwf_kernels;
/* The set for an ISA level, NULL where the row path has no kernels (only AVX-512 has them so far:
   the other levels take the blocked or band path); and the one for the level oct_kernels()
   selected. */
const oct_dwf_kernels *oct_dwf_kernels_for(oct_isa isa);
const oct_dwf_kernels *oct_dwf_kernels_selected(void);

/* Output rows [r0, r1) of one channel: x is its IHxIW input plane, w its kh x kw weights, y its
   OHxOW output plane and res (NULL: none) a residual plane shaped like y. With sum (else NULL),
   adds the values written. scratch: oct_dwf_scratch_bytes long, 64-byte aligned. */
void oct_dwf_conv_f32(const oct_dwf_kernels *rk, const oct_dwf_plan *pl, const float *x, const float *w, float bias,
                      const float *res, const oct_act *act, float *y, int64_t r0, int64_t r1, double *sum,
                      void *scratch);

/* Output rows [r0, r1) of a dense convolution (one group) over channels <= OCT_DWF_DENSE_MAX_C
   input planes (channel c
   at x + c * x_cs) into m output planes (channel l at y + l * y_cs), weights w [m][channels][kh][kw],
   bias (NULL: 0) and res (NULL, or read like y). scratch: oct_dwf_dense_scratch_bytes long,
   64-byte aligned: the padded rows of every input channel for a band, read by all the output
   channels. */
size_t oct_dwf_dense_scratch_bytes(const oct_dwf_plan *pl, int channels);
void oct_dwf_dense_f32(const oct_dwf_kernels *rk, const oct_dwf_plan *pl, const float *x, int64_t x_cs, int channels,
                       const float *w, int64_t m, const float *bias, const float *res, const oct_act *act, float *y,
                       int64_t y_cs, int64_t r0, int64_t r1, void *scratch);

#endif
