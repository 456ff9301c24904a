/* Reference kernels of the nn family: convolution pieces (im2col, col2im, depthwise), pooling,
   normalisation and the fused epilogue. Pure functions over pointers; no graph knowledge.
   Spatial geometry is always three-dimensional (D, H, W): 1-D and 2-D callers set the leading
   dims to 1 with kernel 1, stride 1, dilation 1 and no padding, so one loop nest serves all. */
#ifndef OCT_NN_KERNELS_H
#define OCT_NN_KERNELS_H

#include <stdint.h>

#include "../kernels.h"

typedef struct {
    int64_t in[3];     /* input spatial dims */
    int64_t out[3];    /* output spatial dims */
    int64_t k[3];      /* kernel dims */
    int64_t stride[3];
    int64_t dil[3];
    int64_t pad[3];    /* padding at the beginning of each dim */
} oct_conv_geom;

static inline int64_t oct_geom_in_vol(const oct_conv_geom *g) { return g->in[0] * g->in[1] * g->in[2]; }
static inline int64_t oct_geom_out_vol(const oct_conv_geom *g) { return g->out[0] * g->out[1] * g->out[2]; }
static inline int64_t oct_geom_k_vol(const oct_conv_geom *g) { return g->k[0] * g->k[1] * g->k[2]; }

/* What a producer adds in its write-back: y = act(alpha*y + row_bias[i] + beta*c[i,j] + res[i,j]).
   c is read through strides (0 for a broadcast dim); any pointer may be NULL. */
typedef struct {
    float alpha;
    const float *row_bias;
    const float *c;
    int64_t c_rs, c_cs;
    float beta;
    const float *res;
    int64_t ldr;
    oct_act act;
} oct_epilogue_args;

/* Applies e to the m x n block y (leading dimension ldy); c and res are indexed from the same
   block origin (the caller offsets them). */
void oct_ref_epilogue(float *y, int64_t ldy, int64_t m, int64_t n, const oct_epilogue_args *e);
/* True when e changes nothing (alpha 1, no bias, no C, no residual, no activation). */
int oct_epilogue_is_identity(const oct_epilogue_args *e);

/* Unfolds output pixels [p0, p0+np) of a convolution over `channels` input channels into
   col[(channels*kvol) x np] (row stride np), zero where the window reads padding. */
void oct_ref_im2col_tile(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0,
                         int64_t np, float *col);
/* The same columns unfolded straight into the B-panel layout of the GEMM driver: strips of nr
   pixels, strip t at bp + t * nr * K (K = channels * kvol), element [row * nr + j], the columns
   past np of the last strip zero. Convolution then runs the GEMM on a packed B with no copy. */
void oct_ref_im2col_f32_panel(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0,
                          int64_t np, int64_t nr, float *bp);
/* The adjoint for transposed convolution: col[(channels*kvol) x np] holds, for input pixels
   [p0, p0+np), the contributions to every kernel tap; adds them into y (channels x out volume).
   Here g->in is the transposed conv's input and g->out its output. */
void oct_ref_col2im_tile(const oct_conv_geom *g, const float *col, int64_t channels, int64_t p0,
                         int64_t np, float *y);
/* True when a ConvTranspose's windows tile the output without overlap or gaps: stride == kernel,
   no dilation and no padding on every dim, and the output is exactly input x stride. */
int oct_col2im_is_disjoint(const oct_conv_geom *g);
/* col2im for such a geometry, whose every output pixel receives exactly one column value: the
   tile is written, not accumulated, y = col + bias[c] (bias may be NULL). The tile [p0, p0 + np)
   must cover whole input rows (p0 and np multiples of in[2]). */
void oct_ref_col2im_tile_disjoint(const oct_conv_geom *g, const float *col, int64_t channels, int64_t p0,
                                  int64_t np, const float *bias, float *y);
/* One channel of a depthwise (one input channel per group) convolution:
   y = act(conv(x, w) + bias + res); res may be NULL. */
void oct_ref_conv_depthwise(const oct_conv_geom *g, const float *x, const float *w, float bias,
                            const float *res, const oct_act *act, float *y);

/* Pooling over one channel. Max pooling writes, when idx is not NULL, the flat offset of the
   chosen element inside the input plane (row-major D,H,W). */
void oct_ref_maxpool_f32(const oct_conv_geom *g, const float *x, float *y, int64_t *idx);
void oct_ref_maxpool_u8(const oct_conv_geom *g, const uint8_t *x, uint8_t *y, int64_t *idx);
void oct_ref_maxpool_s8(const oct_conv_geom *g, const int8_t *x, int8_t *y, int64_t *idx);
/* Average pooling. pad_end gives the padding at the end of each dim, needed for
   count_include_pad (the divisor counts padding but not the ceil_mode overhang beyond it). */
void oct_ref_avgpool_f32(const oct_conv_geom *g, const int64_t pad_end[3], int count_include_pad,
                         const float *x, float *y);

/* Mean and (population) variance of n floats, accumulated in double. */
void oct_ref_mean_var(const float *x, int64_t n, double *mean, double *var);
/* y[i] = x[i] * a + b over n elements. */
void oct_ref_scale_shift(const float *x, int64_t n, float a, float b, float *y);
/* Layer-normalises one row: y = (x - mean) * inv_std * scale + bias (bias may be NULL).
   Writes mean and inv_std. */
void oct_ref_layernorm_row(const float *x, int64_t n, float eps, const float *scale,
                           const float *bias, float *y, float *mean, float *inv_std);

/* Copies the m x n matrix a (leading dim lda) transposed into t (n x m, leading dim m). */
void oct_ref_transpose_f32(const float *a, int64_t m, int64_t n, int64_t lda, float *t);

#endif
