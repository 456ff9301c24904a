/* Winograd F(4x4, 3x3) pieces for 2-D 3x3 stride-1 fp32 convolution (Lavin & Gray's transform
   with interpolation points 0, +-1, +-2, infinity). A 6x6 input tile d gives the 4x4 outputs
   A^T [(G g G^T) .* (B^T d B)] A, so the 9 x 16 multiplications per tile and channel pair of a
   direct 3x3 convolution become 36 element-wise products, summed over input channels by 36
   independent GEMMs (one per transform position). The kernels here are the transforms; the GEMMs
   and the blocking belong to the caller (engine/ops/nn/conv_winograd.c).

   Layouts. Tiles cover the output plane row-major, tiles_x per row; tile (ty, tx) produces output
   rows 4ty..4ty+3 and columns 4tx..4tx+3 (cropped at the plane's edge) and reads input rows
   4ty-pad_t .. 4ty-pad_t+5 and columns 4tx-pad_l .. 4tx-pad_l+5, zero outside the input plane.
   The GEMM results (the output transform's input) of transform position pos (0..35, row-major
   over the 6x6 tile), channel ch and tile i of a block sit at y[pos * pos_stride + ch * ld + i].
   The input transform writes straight into a GEMM operand's packed layout instead: tiles in groups
   of `group` (the micro-tile's strip width), each group holding all channels,
   v[pos * pos_stride + (i / group) * group_stride + ch * group + i % group]; a single group
   (group >= nt) is the plain layout above with ld = group. */
#ifndef OCT_WINOGRAD_H
#define OCT_WINOGRAD_H

#include <stdint.h>
#include <string.h>

#include "../kernels.h"

enum { OCT_WINO_IN = 6, OCT_WINO_OUT = 4, OCT_WINO_POS = 36 };

/* One image plane's tiling. */
typedef struct {
    int64_t in_h, in_w;   /* input plane */
    int64_t out_h, out_w; /* output plane */
    int64_t pad_t, pad_l; /* padding before the first row / column */
    int64_t tiles_x;      /* tiles per output row: ceil(out_w / 4) */
} oct_wino_geom;

/* The transformed weights u[pos][m][c] = (G w[m][c] G^T)[pos] of w[m][c][3][3], computed in
   double: the row-major A operand (lda c) of each position's GEMM. */
void oct_ref_wino_weights(const float *w, int64_t m, int64_t c, float *u);

/* B^T d B of tiles t0 .. t0+nt-1 over `channels` input planes x (in_h * in_w each) into v, in the
   grouped layout described above. Lanes of a group past nt are left untouched. */
typedef void (*oct_wino_input_fn)(const oct_wino_geom *g, const float *x, int64_t channels, int64_t t0,
                                  int64_t nt, float *v, int64_t pos_stride, int64_t group,
                                  int64_t group_stride);
/* out = act(A^T y A + bias[m] + res) for tiles t0 .. t0+nt-1 of `channels` output planes: y holds
   the GEMM results (y[pos * pos_stride + m * ld + i]); out and res (may be NULL), like bias (may be
   NULL), start at the block's first channel, one out_h * out_w plane per channel. */
typedef void (*oct_wino_output_fn)(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                                   int64_t channels, int64_t t0, int64_t nt, const float *bias,
                                   const float *res, const oct_act *act, float *out);

/* The same from tile-major GEMM results, y[pos * pos_stride + i * ld + m] (the transposed GEMMs of
   small planes, whose channels are the vector side): vectorised across channels. */
typedef void (*oct_wino_output_t_fn)(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                                     int64_t channels, int64_t t0, int64_t nt, const float *bias,
                                     const float *res, const oct_act *act, float *out);

typedef struct {
    const char *name;
    oct_wino_input_fn input;
    oct_wino_output_fn output;
    oct_wino_output_t_fn output_t;
} oct_wino_kernel_set;

void oct_ref_wino_input(const oct_wino_geom *g, const float *x, int64_t channels, int64_t t0, int64_t nt,
                        float *v, int64_t pos_stride, int64_t group, int64_t group_stride);
void oct_ref_wino_output(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                         int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                         const oct_act *act, float *out);
void oct_ref_wino_output_t(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                           int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                           const oct_act *act, float *out);

/* The set for the ISA level oct_kernels() selected (kernels/winograd_dispatch.c). */
const oct_wino_kernel_set *oct_wino_kernels(void);
extern const oct_wino_kernel_set oct_ref_wino_kernels;

/* Shared by the SIMD twins, which vectorise across the tiles of one tile row: copies the six input
   rows of tile row ty, columns col0 .. col0+width-1, into buf (row stride ldb), zero where they fall
   outside the plane. */
static inline void oct_wino_copy_rows(const oct_wino_geom *g, const float *x, int64_t ty, int64_t col0,
                                      int64_t width, float *buf, int64_t ldb) {
    const int64_t lo = col0 < 0 ? -col0 : 0;
    int64_t hi = g->in_w - col0;
    if (hi > width) hi = width;
    for (int64_t i = 0; i < OCT_WINO_IN; i++) {
        float *dst = buf + i * ldb;
        const int64_t r = 4 * ty - g->pad_t + i;
        if (r < 0 || r >= g->in_h || hi <= lo) {
            memset(dst, 0, (size_t)width * sizeof(float));
            continue;
        }
        const float *src = x + r * g->in_w + col0;
        for (int64_t j = 0; j < lo; j++) dst[j] = 0.f;
        memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
        for (int64_t j = hi; j < width; j++) dst[j] = 0.f;
    }
}

/* Where the SIMD twins store a vector holding tiles i .. i+n-1 of a block (lane j: tile i+j) in the
   grouped layout: segment k takes lanes [lo[k], hi[k]), lane j of it going to base + off[k] + j,
   base being the position's and channel's origin (v + pos * pos_stride + ch * group). A vector of
   up to 16 lanes touches at most 16 groups (group 1). */
typedef struct {
    int count;
    int lo[16], hi[16];
    int64_t off[16];
} oct_wino_segs;

static inline oct_wino_segs oct_wino_split(int64_t i, int64_t n, int64_t group, int64_t group_stride) {
    oct_wino_segs s = {0};
    for (int64_t j = 0; j < n && s.count < 16;) {
        const int64_t t = i + j, in_group = t % group;
        int64_t end = j + group - in_group;
        if (end > n) end = n;
        s.lo[s.count] = (int)j;
        s.hi[s.count] = (int)end;
        /* Lane j sits at (t / group) * group_stride + in_group: the offset of lane 0's slot. */
        s.off[s.count] = (t / group) * group_stride + in_group - j;
        s.count++;
        j = end;
    }
    return s;
}

/* The epilogue of one output row segment, scalar: y[j] = act(y[j] + bias + res[j]). */
static inline void oct_wino_finish_scalar(float *y, int64_t n, float bias, const float *res, const oct_act *act) {
    for (int64_t j = 0; j < n; j++) y[j] = oct_act_apply(act, y[j] + bias + (res ? res[j] : 0.f));
}

#endif
