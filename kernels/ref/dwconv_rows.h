/* int8 depthwise convolution by output rows with 4-byte tap groups: the path for large planes
   (MobileNet / EfficientNet at 28x28..150x150), where the channel-blocked path of dwconv_blocked.h
   spends most of its time turning bytes into floats and transposing them both ways.

   Method. For one channel and a band of output rows, the input rows the band reads are copied as
   bytes (x ^ x_xor) into a scratch whose padding holds x_zp, so every tap of every window can be
   read with plain loads and a tap outside the input contributes x_zp * w (loading straight from
   the input with masks for the padding measured 1.5x slower at stride 1). The taps of a kernel
   row go in groups of four columns: output column c gets, for each group g, the dot product of
   the bytes at padded columns [c * sw + 4 g, + 4) with the weights w[i][4 g .. 4 g + 3] (zero
   past kw), unsigned bytes times signed bytes summed into int32: what VPDPBUSD computes for 16
   columns at once. The accumulator
   starts at bias - x_zp * sum(w), so it ends at bias + the sum over taps inside the input of
   ((x ^ x_xor) - x_zp) * w, the int32 that oct_ref_requant gets (wrapping alike: all sums are
   taken modulo 2^32, and the products are far from int32's range). The requantization is then
   oct_requant_one's float sequence, so the bytes are those of oct_ref_qconv_depthwise +
   oct_ref_requant bit for bit. No transposes, and no widening beyond the int32 sums.

   It needs the weights minus their zero point in [-128, 127] (symmetric weights always are) and
   x_zp in [0, 255]; oct_dwr_pack_weights tells, and the caller otherwise takes another path.
   The per-ISA parts are the padded copy and the row loop (oct_dwr_kernels); the band driver, the
   plan, the weight groups and the ref twins are portable C in dwconv_rows.c. */
#ifndef OCT_DWCONV_ROWS_H
#define OCT_DWCONV_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "nn_kernels.h"

enum {
    OCT_DWR_COLS = 16,      /* output columns per vector: 16 int32 sums in 512 bits */
    OCT_DWR_MAX_GROUPS = 32 /* kh * ceil(kw / 4): the weight vectors a kernel holds in registers */
};

/* A channel's geometry, fixed at plan time. */
typedef struct {
    int64_t ih, iw, oh, ow;
    int kh, kw, sh, sw, ph, pw;
    int groups;      /* 4-byte tap groups per kernel row: ceil(kw / 4) */
    int64_t pitch;   /* bytes per scratch row, a multiple of 64: every vector load of a row stays inside it */
    int64_t band;    /* output rows per band */
    int64_t in_rows; /* scratch rows of a full band: (band - 1) * sh + kh */
} oct_dwr_plan;

/* Fills pl for g and returns 1 when the row path covers it: a 2-D (or 1-D) window without
   dilation on dims with a kernel wider than 1, strides up to 4 (a vector's 16 windows then span
   at most 64 bytes), kh * ceil(kw / 4) <= OCT_DWR_MAX_GROUPS and rows whose scratch stays small.
   Returns 0 otherwise. */
int oct_dwr_plan_init(const oct_conv_geom *g, oct_dwr_plan *pl);
/* Bytes of per-thread scratch one oct_dwr_conv_q8 call needs (64-byte multiple). */
size_t oct_dwr_scratch_bytes(const oct_dwr_plan *pl);

/* One channel's run: its input plane x (values x ^ x_xor, padding x_zp), its weight groups w
   [kh][groups] (int8 byte b of w[i * groups + g] is tap (i, 4 g + b), little-endian), and the
   requantization: acc starts at c0; y = clamp((float)acc * m, lo, hi) rounded to nearest even,
   + zp, as 8 bits. */
typedef struct {
    const uint8_t *x;
    uint8_t x_xor, x_zp;
    const int32_t *w;
    int32_t c0;
    float m, lo, hi;
    int32_t zp;
} oct_dwr_chan;

/* What an ISA provides. */
typedef struct {
    const char *name;
    /* Scratch rows r < n (dst 64-byte aligned, rows pl->pitch apart) get padded rows first + r of
       ch's plane: byte j is x ^ x_xor at input row first + r - ph, column j - pw, or x_zp outside
       the input. Reads only the plane's bytes. */
    void (*fill)(const oct_dwr_plan *pl, const oct_dwr_chan *ch, int64_t first, int64_t n, uint8_t *dst);
    /* Output rows r < rows from the scratch rows in (output row r reads scratch rows r * sh ..
       r * sh + kh - 1): y[r * ow + c] for c < ow gets the requantized sum, starting at ch->c0,
       of the dot products of bytes in[(r * sh + i) * pitch + c * sw + 4 g + b] with int8 byte b
       of ch->w[i * groups + g]. With sum (else NULL), adds the values written to *sum, as the
       integers they stand for (q + zp before the cast). Writes nothing past y[rows * ow). */
    void (*rows)(const oct_dwr_plan *pl, const oct_dwr_chan *ch, const uint8_t *in, int64_t rows, uint8_t *y,
                 int64_t *sum);
} oct_dwr_kernels;

extern const oct_dwr_kernels oct_ref_dwr_kernels;
/* The set for an ISA level, NULL where the row path has no kernels that beat the other paths
   (every level but AVX-512 VNNI with VBMI: the window gather is one VPERMB); and the one for the
   level oct_kernels() selected. */
const oct_dwr_kernels *oct_dwr_kernels_for(oct_isa isa);
const oct_dwr_kernels *oct_dwr_kernels_selected(void);

/* The weights of one channel (kh x kw, int8 domain) minus w_zp, in groups: wg[i * groups + g]
   holds w[i][4 g + b] - w_zp as byte b (0 past kw); *wsum gets their sum. Returns 1, or 0 when a
   difference falls outside int8 (the row path cannot take the channel). */
int oct_dwr_pack_weights(const oct_dwr_plan *pl, const int8_t *w, int32_t w_zp, int32_t *wg, int32_t *wsum);

/* Output rows [r0, r1) of one channel: x is the IHxIW plane ((x ^ x_xor) - x_zp the values,
   x_zp in [0, 255]), wg and wsum from oct_dwr_pack_weights, y the OHxOW plane. The accumulator
   is bias + the exact sum over taps inside the input, requantized with multiplier m, the float
   clamp [lo, hi] and zero point zp as oct_requant_one. With sum (else NULL), adds the values
   written. scratch: oct_dwr_scratch_bytes long, 64-byte aligned. */
void oct_dwr_conv_q8(const oct_dwr_kernels *rk, const oct_dwr_plan *pl, const uint8_t *x, uint8_t x_xor, int32_t x_zp,
                     const int32_t *wg, int32_t wsum, int32_t bias, float m, float lo, float hi, int32_t zp,
                     uint8_t *y, int64_t r0, int64_t r1, int64_t *sum, void *scratch);

#endif
