/* Channel-blocked 2-D depthwise convolution, fp32 and int8: the path for many channels with small
   planes (MobileNet / EfficientNet at 7x7..28x28), where the per-channel band path of
   dwconv_kernels.h pays fixed costs per channel that dwarf the few hundred MACs of a plane.

   Method. Channels go in blocks of OCT_DWB_LANES. For one block and a band of output rows:
   1. to_lanes transposes the input rows the band reads, as values (x ^ x_xor) - x_zp for 8-bit
      input, into a channels-innermost scratch [row][col][lane] with the zero padding around them;
   2. taps computes every output pixel as a sum over taps of (input pixel vector) * (the block's
      weight vector for that tap): no per-channel setup, any stride; the weights are arranged
      [taps][lane] per block beforehand;
   3. from_lanes transposes the pixel vectors back into one row per channel, and the per-channel
      epilogue / requant primitive of dwconv_kernels.h writes the output (bias, residual,
      activation and the optional channel sum, or the int8 requantization with its exact sum).
   int8 stays exact for the reason dwconv_kernels.h gives (integers below 2^24 in float), so the
   result is bit for bit that of oct_ref_qconv_depthwise + oct_ref_requant at every ISA level.

   The per-ISA parts are the transposes and the tap loop (oct_dwb_kernels); the band driver, the
   plan and the ref primitives are portable C in dwconv_blocked.c. */
#ifndef OCT_DWCONV_BLOCKED_H
#define OCT_DWCONV_BLOCKED_H

#include "dwconv_kernels.h"

enum { OCT_DWB_LANES = 16 }; /* channels per block: one AVX-512 vector, two AVX2, four NEON */

/* A block's geometry, fixed at plan time. */
typedef struct {
    int64_t ih, iw, oh, ow;
    int kh, kw, sh, sw, ph, pw;
    int ntaps;
    int64_t wp;         /* columns per scratch row: the padded columns the band reads, (ow - 1) * sw + kw,
                           or pw + iw if more, so that every input column has its place */
    int64_t band;       /* output rows per band */
    int64_t in_rows;    /* scratch rows of a full band: (band - 1) * sh + kh */
    int64_t acc_pitch;  /* floats per channel row of step 3 (slack included) */
    int64_t lanes_off;  /* where the lane scratch of step 1 starts, in floats */
    int64_t out_off;    /* where the pixel vectors of step 2 start, in floats */
    int64_t total;      /* floats of scratch */
} oct_dwb_plan;

/* Fills pl for g and returns 1 when the blocked path covers it (what oct_dw_plan_init covers,
   with buffers that stay small), else 0. */
int oct_dwb_plan_init(const oct_conv_geom *g, oct_dwb_plan *pl);
/* Bytes of per-thread scratch one oct_dwb_conv_* call needs (64-byte multiple). */
size_t oct_dwb_scratch_bytes(const oct_dwb_plan *pl);

/* What an ISA provides. Vectors are OCT_DWB_LANES floats; every buffer is 64-byte aligned. */
typedef struct {
    const char *name;
    /* The largest input plane (pixels) on which this set beats the per-channel path, 0 for any:
       without register transposes, the transposes of big planes cost more than they save. */
    int64_t max_plane;
    /* The n = rows * iw input pixels (r, c) of a run of whole rows, channel l's at src + l * cs, to
       dst[r * ld_row + c][l] (lanes l >= nch are 0), as floats (x ^ x_xor) - x_zp for 8-bit
       input; reads only the run's bytes (floats) of each channel. */
    void (*to_lanes_u8)(const uint8_t *src, int64_t cs, int nch, int64_t n, int64_t iw, uint8_t x_xor,
                        int32_t x_zp, float *dst, int64_t ld_row);
    void (*to_lanes_f32)(const float *src, int64_t cs, int nch, int64_t n, int64_t iw, float *dst, int64_t ld_row);
    /* dst[l * ld_dst + i] = src[i][l] for i < round_up(q, 16), l < nch. */
    void (*from_lanes)(const float *src, int64_t q, int nch, float *dst, int64_t ld_dst);
    /* For the n = rows * pl->ow output pixels (row r, column c) of a band:
       out[r * ow + c][l] = sum over taps (i, j), i-major, of
       in[(r * sh + i) * pl->wp + c * sw + j][l] * w[i * kw + j][l].
       May write out up to round_up(n, 16) pixels (the values past n are unspecified). */
    void (*taps)(const oct_dwb_plan *pl, const float *in, const float *w, int64_t rows, float *out);
} oct_dwb_kernels;

extern const oct_dwb_kernels oct_ref_dwb_kernels;
/* The set for an ISA level (levels without their own use the closest one below), and the one for
   the level oct_kernels() selected. */
const oct_dwb_kernels *oct_dwb_kernels_for(oct_isa isa);
const oct_dwb_kernels *oct_dwb_kernels_selected(void);

/* Output rows [r0, r1) of nch <= OCT_DWB_LANES fp32 channels: channel l reads the IHxIW plane
   x + l * x_cs and writes the OHxOW plane y + l * y_cs, with res (NULL, or read like y), bias[l]
   (bias NULL: 0) and act. w is the block's weights [ntaps][OCT_DWB_LANES]. With sums (else NULL),
   adds each channel's sum of the values written to sums[l]. scratch: oct_dwb_scratch_bytes long,
   64-byte aligned. */
void oct_dwb_conv_f32(const oct_dwb_kernels *bk, const oct_dw_kernels *k, const oct_dwb_plan *pl,
                      const float *x, int64_t x_cs, int nch, const float *w, const float *bias, const float *res,
                      const oct_act *act, float *y, int64_t y_cs, int64_t r0, int64_t r1, double *sums,
                      void *scratch);

/* The same rows of nch 8-bit channels: acc = sum over taps inside the input of
   ((x ^ x_xor) - x_zp) * w, where w [ntaps][OCT_DWB_LANES] holds the block's weights minus their
   zero points as floats (integers in [-255, 255]). With rq, channel l (absolute row m0 + l of rq)
   gets oct_ref_requant(acc) as 8-bit values; with rq NULL, acc as int32 (ConvInteger). With sums
   (rq only, else NULL), adds each channel's exact sum of the integers written to sums[l]. */
void oct_dwb_conv_q8(const oct_dwb_kernels *bk, const oct_dw_kernels *k, const oct_dwb_plan *pl,
                     const uint8_t *x, int64_t x_cs, uint8_t x_xor, int32_t x_zp, int nch, const float *w,
                     const oct_requant *rq, int64_t m0, void *y, int64_t y_cs, int64_t r0, int64_t r1,
                     int64_t *sums, void *scratch);

/* Output rows per work item when the blocks alone cannot keep `threads` busy: whole bands, so
   that the items of a block write disjoint rows. */
int64_t oct_dwb_rows_per_item(const oct_dwb_plan *pl, int64_t blocks, int threads);

#endif
