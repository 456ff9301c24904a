/* Dense convolutions over few input channels (image stems: 3 channels, 7x7 at stride 2) with the
   output channels in vector lanes: every output pixel's input values are broadcast against
   vectors of 16 output channels' weights, a tile of 4 pixels x 64 channels (16 accumulators;
   per tap 4 weight loads, 4 broadcasts, 16 FMAs), then each output row is transposed into the
   NCHW planes. im2col wrote 147 values per pixel for 64 multiply-adds each, and the row kernel
   of dwconv_rows_f32.h reloads a weight per FMA group on 7-wide windows; this layout (ONNX
   Runtime's NCHWc stem) keeps the FMA units busy. */
#ifndef OCT_STEM_LANES_H
#define OCT_STEM_LANES_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels.h"

enum { OCT_STEM_MBLOCK = 64, OCT_STEM_PIXELS = 4 };

typedef struct {
    int64_t ih, iw, oh, ow; /* input and output plane */
    int64_t kh, kw, sh, sw; /* window and strides (dilation 1) */
    int64_t pt, pl;         /* leading pads */
    int64_t channels, m;    /* input channels; output channels, a multiple of OCT_STEM_MBLOCK */
} oct_stem_geom;

/* Floats of the weights packed for the kernels: [channel][kh][kw][m]. */
static inline int64_t oct_stem_weights_floats(const oct_stem_geom *g) { return g->channels * g->kh * g->kw * g->m; }
/* w [m][channels][kh][kw] -> the packed layout. */
void oct_stem_pack(const oct_stem_geom *g, const float *w, float *wl);
/* Bytes of one thread's scratch (64-byte aligned): the zero-padded input rows of one output row
   and the staged output row. */
size_t oct_stem_scratch_bytes(const oct_stem_geom *g);

/* Output rows [r0, r1): y[l * y_cs + r * ow + c] = act(bias[l] + sum over channels, kh, kw of x
   times w) for every output channel l < m; x's channel c at x + c * x_cs; bias NULL: 0. */
typedef void (*oct_stem_rows_fn)(const oct_stem_geom *g, const float *x, int64_t x_cs, const float *wl,
                                 const float *bias, const oct_act *act, float *y, int64_t y_cs, int64_t r0,
                                 int64_t r1, void *scratch);
void oct_ref_stem_rows_f32(const oct_stem_geom *g, const float *x, int64_t x_cs, const float *wl, const float *bias,
                           const oct_act *act, float *y, int64_t y_cs, int64_t r0, int64_t r1, void *scratch);
#if defined(__x86_64__)
void oct_avx512_stem_rows_f32(const oct_stem_geom *g, const float *x, int64_t x_cs, const float *wl,
                              const float *bias, const oct_act *act, float *y, int64_t y_cs, int64_t r0, int64_t r1,
                              void *scratch);
#endif

/* The padded input rows of output row r: row (c, i) at pad + (c * kh + i) * pitch, padded column q
   holding input column q - pl (0 outside). The pitch covers whole pixel tiles. */
static inline int64_t oct_stem_pitch(const oct_stem_geom *g) {
    const int64_t ow4 = (g->ow + OCT_STEM_PIXELS - 1) / OCT_STEM_PIXELS * OCT_STEM_PIXELS;
    return ((ow4 - 1) * g->sw + g->kw + 15) / 16 * 16;
}
void oct_stem_fill_rows(const oct_stem_geom *g, const float *x, int64_t x_cs, int64_t r, float *pad);

#endif
