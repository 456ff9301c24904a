/* Reference kernels of the remaining int8 operators: 256-entry lookup tables, element-wise
   quantized Add/Mul with broadcasting, integer sums for pooling and normalisation statistics,
   quantized average pooling, and the int32 col2im of the quantized transposed convolution.

   Conventions (see quant_kernels.h for the GEMM-shaped ops): 8-bit data travels as bytes with a
   flag saying whether it is int8; a value's integer meaning is (int8_t)b or (uint8_t)b. Outputs
   are rounded half to even and clamped to [qmin, qmax] of the output type. */
#ifndef OCT_QOPS_KERNELS_H
#define OCT_QOPS_KERNELS_H

#include <math.h>
#include <stdint.h>

#include "math_kernels.h"
#include "nn_kernels.h"

/* The integer value of byte b of an 8-bit type. */
static inline int32_t oct_q8_value(uint8_t b, int is_s8) { return is_s8 ? (int32_t)(int8_t)b : (int32_t)b; }

/* Quantizes v (already divided by the output scale) in double: ties to even, plus zp, clamped to
   [qmin, qmax]; NaN becomes zp (as QuantizeLinear does). */
static inline int32_t oct_q8_round(double v, int32_t zp, int32_t qmin, int32_t qmax) {
    if (v != v) return zp < qmin ? qmin : (zp > qmax ? qmax : zp);
    const double lo = (double)(qmin - zp), hi = (double)(qmax - zp);
    v = v < lo ? lo : (v > hi ? hi : v);
    return (int32_t)nearbyint(v) + zp;
}

/* ---- lookup tables -------------------------------------------------------------------------- */

/* y[i] = table[x[i]] over n bytes; int8 data indexes the table by its bit pattern. */
void oct_ref_qlut(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y);

/* ---- element-wise Add / Mul ----------------------------------------------------------------- */

typedef enum { OCT_QBIN_ADD = 0, OCT_QBIN_MUL } oct_qbinary_kind;

/* Parameters of y = Q(DQ(a) op DQ(b)), all three of one 8-bit type:
     Add: v = (float)(a - a_zp) * ma + (float)(b - b_zp) * mb,  ma = a_scale / y_scale, mb likewise
     Mul: v = (float)((a - a_zp) * (b - b_zp)) * ma,            ma = a_scale * b_scale / y_scale
   then v is clamped to [qmin - y_zp, qmax - y_zp] in float, rounded half to even and offset by
   y_zp. The multipliers must be finite. */
typedef struct {
    oct_qbinary_kind kind;
    int is_s8;
    float ma, mb;
    int32_t a_zp, b_zp, y_zp;
    int32_t qmin, qmax;
} oct_qbinary;

/* Output elements [begin, end) of the broadcast plan bc (two inputs: a, b). */
void oct_ref_qbinary(const oct_qbinary *q, const oct_bcast *bc, const uint8_t *a, const uint8_t *b,
                     uint8_t *y, int64_t begin, int64_t end);

/* ---- integer sums --------------------------------------------------------------------------- */

/* Adds the sum of x[0..n) and of its squares (integer values, exact) to *sum and *sumsq. */
void oct_ref_qsum(const uint8_t *x, int is_s8, int64_t n, int64_t *sum, int64_t *sumsq);
/* sums[c] += sum over rows r of x[r * ld + c], for c < cols (channels-last reductions). */
void oct_ref_qcolsum(const uint8_t *x, int is_s8, int64_t rows, int64_t cols, int64_t ld, int64_t *sums);

/* ---- average pooling ------------------------------------------------------------------------ */

typedef struct {
    double scale;        /* x_scale / y_scale */
    int32_t x_zp, y_zp;
    int32_t qmin, qmax;  /* output clamp */
    int x_s8, y_s8;
} oct_qpool;

/* One channel plane of AveragePool over dequantized values, quantized: element p of the plane is
   x[p * xs] (xs is 1 for NCHW, C for channels-last), and output element q goes to y[q * ys].
   Padding contributes 0 in the real domain (the zero point); the divisor counts the padding when
   count_include_pad (but not the ceil_mode overhang past it, as AveragePool does). */
void oct_ref_qavgpool(const oct_conv_geom *g, const int64_t pad_end[3], int count_include_pad,
                      const oct_qpool *q, const uint8_t *x, int64_t xs, uint8_t *y, int64_t ys);

/* ---- transposed convolution ----------------------------------------------------------------- */

/* The int32 adjoint of im2col over a box of the output: col[(channels*kvol) x np] holds, for
   input pixels [p0, p0+np) of the transposed convolution (g->in is its input, g->out its output),
   the contribution of every kernel tap; contributions landing inside the output box
   [lo[d], lo[d] + ext[d]) are added (modulo 2^32) into acc[channels][ext[0]][ext[1]][ext[2]]. */
void oct_ref_qcol2im_box(const oct_conv_geom *g, const int32_t *col, int64_t channels, int64_t p0,
                         int64_t np, const int64_t lo[3], const int64_t ext[3], int32_t *acc);
/* The 8-bit col2im of a geometry whose windows tile the output (oct_col2im_is_disjoint): col
   holds the already requantized bytes [(channels*kvol) x np] and each one is stored to the one
   output pixel it reaches, y[c * out_vol + pixel] (y at the block's first channel). */
void oct_ref_qcol2im_disjoint(const oct_conv_geom *g, const uint8_t *col, int64_t channels, int64_t p0, int64_t np,
                              uint8_t *y);

#endif
