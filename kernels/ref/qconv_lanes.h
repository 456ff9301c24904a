/* Channel-lane int8 convolution (QLinearConv, 2-D, one group): output channels in the vector
   lanes, pixels broadcast, no im2col.

   The implicit GEMM unfolds K = C * KH * KW bytes per output pixel (9x the input for a 3x3 conv)
   and, with pixels in the lanes, wastes most of a vector on small planes (7x7 = 49 pixels fill
   4 vectors of 16). Here a band of input rows is repacked once into a slab of pixels
   [row][column][C4] (C4 = C rounded up to 4: 4 consecutive channels per 4-byte group, the halo
   holding the input zero point); a register tile then holds a few output pixels x up to 64 output
   channels, each pixel's 4 channel bytes at a tap are broadcast to all lanes, and the weights of 16
   channels x 4 bytes are one vector. Any stride or dilation is a pixel's slab offset; the plane
   size costs nothing. The write-back requantizes each pixel's channel vectors, and a strip of
   pixels is transposed to the NCHW output rows.

   Weights are packed at plan time as [channel block of 64][kh][kw][channel group][64 lanes][4]
   int8 (uint8 weights shifted to int8), zero past M and past C. Weight zero points must be 0 in the
   int8 domain: the write-back subtracts only the input zero point's term x_zp * sum(w). Sums wrap
   modulo 2^32 like every int8 kernel here, and the requantization is oct_requant_one's float
   sequence, so every twin stores the same bytes. */
#ifndef OCT_QCONV_LANES_H
#define OCT_QCONV_LANES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nn_kernels.h"
#include "quant_kernels.h"

/* Output channels per packed block (four 16-lane vectors); the most kernel taps (KH * KW). */
enum { OCT_LCONV_MB = 64, OCT_LCONV_TAPS_MAX = 121 };

typedef struct {
    oct_conv_geom g;     /* 2-D: out[0] = k[0] = 1 */
    int64_t C, M;        /* input and output channels */
    int64_t C4;          /* bytes per slab pixel: C rounded up to 4 */
    int64_t cgroups;     /* C4 / 4 */
    int64_t mblocks;     /* ceil(M / 64) */
} oct_lconv_shape;

/* Fills s; returns 0, or -1 when the geometry is not 2-D or has more than OCT_LCONV_TAPS_MAX taps. */
int oct_lconv_shape_init(oct_lconv_shape *s, const oct_conv_geom *g, int64_t C, int64_t M);

/* A band of output rows [oh0, oh0 + nh) and the slab of input rows it reads: input rows
   [ih0, ih0 + rows), columns [-pad, wp - pad), each pixel C4 bytes, rows `pitch` bytes apart. */
typedef struct {
    int64_t oh0, nh, ih0, rows, wp, pitch;
} oct_lconv_band;

/* Fills b and returns the slab's bytes; 0 when the size overflows. */
size_t oct_lconv_band_init(const oct_lconv_shape *s, int64_t oh0, int64_t nh, oct_lconv_band *b);

/* The SIMD twins' shared walk of a band's slab. */

/* Pads slab row r of band b (srow) and returns its input row: the whole row when that lies outside
   the input (then -1), else the columns outside the input's, which are [*lo, *hi). */
static inline int64_t oct_lconv_pad_row(const oct_lconv_shape *s, const oct_lconv_band *b, int64_t r, uint8_t pad,
                                        uint8_t *srow, int64_t *lo, int64_t *hi) {
    const int64_t pw = s->g.pad[2], IW = s->g.in[2], ih = b->ih0 + r;
    *lo = pw < b->wp ? pw : b->wp;
    *hi = pw + IW < b->wp ? pw + IW : b->wp;
    if (ih < 0 || ih >= s->g.in[1] || *hi <= *lo) {
        memset(srow, pad, (size_t)b->pitch);
        return -1;
    }
    memset(srow, pad, (size_t)(*lo * s->C4));
    memset(srow + *hi * s->C4, pad, (size_t)((b->wp - *hi) * s->C4));
    return ih;
}

/* Slab offsets of the taps, toff[kh * KW + kw] (from a pixel's top-left input byte). */
static inline void oct_lconv_tap_offsets(const oct_lconv_shape *s, const oct_lconv_band *b, int64_t *toff) {
    const oct_conv_geom *g = &s->g;
    for (int64_t kh = 0; kh < g->k[1]; kh++)
        for (int64_t kw = 0; kw < g->k[2]; kw++)
            toff[kh * g->k[2] + kw] = kh * g->dil[1] * b->pitch + kw * g->dil[2] * s->C4;
}

/* Slab offsets of the band's pixels [q0, q0 + n) (row-major over its output rows) into poff[0, n),
   and of pixel q0 again into poff[n, count): tiles compute whole, the extras are never stored. */
static inline void oct_lconv_pixel_offsets(const oct_lconv_shape *s, const oct_lconv_band *b, int64_t q0, int64_t n,
                                           int64_t count, int64_t *poff) {
    const int64_t OW = s->g.out[2], row_step = s->g.stride[1] * b->pitch, col_step = s->g.stride[2] * s->C4;
    int64_t oh = q0 / OW, ow = q0 % OW;
    for (int64_t i = 0; i < n; i++) {
        poff[i] = oh * row_step + ow * col_step;
        if (++ow == OW) ow = 0, oh++;
    }
    for (int64_t i = n; i < count; i++) poff[i] = poff[0];
}

/* Bytes of the packed weights; 0 when the size overflows. */
size_t oct_lconv_wbytes(const oct_lconv_shape *s);
/* Packs w[M][C][KH][KW] (int8, or uint8 when w_u8) and sets wsum[m] = sum of channel m's int8
   weights. */
void oct_lconv_pack(const oct_lconv_shape *s, const uint8_t *w, int w_u8, int8_t *buf, int32_t *wsum);

/* Run-time arguments for one image. */
typedef struct {
    const oct_lconv_shape *s;
    const int8_t *w;       /* packed */
    const int32_t *wsum;   /* [M] */
    int32_t x_zp;          /* input zero point, uint8 domain */
    const oct_requant *rq; /* rows = output channels; a table only for sets that map tables */
    uint8_t *y;            /* [M][OH * OW] */
} oct_lconv_args;

typedef struct {
    const char *name;
    /* Fills the slab of band b from x[C][IH][IW] (each byte ^ x_xor; outside the input: pad). */
    void (*repack)(const oct_lconv_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad, const oct_lconv_band *b,
                   uint8_t *slab);
    /* Output channel blocks [mb0, mb1) of every pixel of band b, from its slab. */
    void (*conv)(const oct_lconv_args *a, const uint8_t *slab, const oct_lconv_band *b, int64_t mb0, int64_t mb1);
    int maps_tables; /* conv applies oct_requant.table (the SIMD twin needs VBMI for it) */
} oct_lconv_kernels;

extern const oct_lconv_kernels oct_ref_lconv_kernels;

/* The set for an ISA level, NULL where the level has none (the op then plans another strategy):
   the 'vnni' level only, 512-bit with AVX-512 (mapping tables where the CPU has VBMI), else 256-bit
   with AVX-VNNI. */
#if defined(__x86_64__)
extern const oct_lconv_kernels oct_avxvnni_lconv_kernels; /* for tests on CPUs that also have AVX-512 */
#endif
const oct_lconv_kernels *oct_lconv_kernels_for(oct_isa isa);
const oct_lconv_kernels *oct_lconv_kernels_selected(void);

#endif
