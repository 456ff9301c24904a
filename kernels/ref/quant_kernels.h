/* Reference int8 kernels: quantize/dequantize, the u8 x s8 -> s32 GEMM over packed weights, the
   requantization epilogue, the u8 im2col tile and the depthwise direct convolution.

   Integer domain. Every GEMM-shaped int8 op is brought to one form before it reaches a kernel:
   the "weight" operand is int8 (uint8 weights are shifted by -128, w ^ 0x80, and so is their zero
   point), the "activation" operand is uint8 (int8 activations are shifted by +128, x ^ 0x80, and
   so is their zero point). The shift changes no difference (x - zx), so results are identical.
   Zero points are applied through row and column sums, as SIMD kernels do:
       sum_k (w - zw)(x - zx) = sum wx - zx*sum_k w - zw*sum_k x + K*zw*zx
   Accumulation is modulo 2^32 (it wraps as int32 does; the spec allows overflow only there), so
   every twin that adds in 32-bit lanes gives the same integers bit for bit.

   Requantization, which every twin must reproduce exactly:
       m[r] = (s_x * s_w[r]) / s_y                 float32, evaluated once per row at plan/run time,
                                                   in this order (as ONNX Runtime does)
       v    = (float)(acc + bias[r]) * m[r]        int32 add (wrapping), one float32 multiply
       v    = clamp(v, qmin - zp, qmax - zp)       in float
       y    = (int)rint(v) + zp                    round half to even (default FP environment)
   qmin/qmax are the clamp in the output's integer domain: the type's range, or narrower when an
   activation (Relu, Clip) is fused into the producer. */
#ifndef OCT_QUANT_KERNELS_H
#define OCT_QUANT_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "nn_kernels.h"

/* ---- element-wise quantization -------------------------------------------------------------- */

/* y[i] = clamp(rint(x[i] / scale) + zp, qmin, qmax), the division in float32, ties to even;
   NaN becomes zp. */
void oct_ref_quantize_f32_u8(const float *x, int64_t n, float scale, int32_t zp, uint8_t *y);
void oct_ref_quantize_f32_s8(const float *x, int64_t n, float scale, int32_t zp, int8_t *y);
/* int32 input (QuantizeLinear allows it): the division in double, as the ONNX reference computes. */
void oct_ref_quantize_s32_u8(const int32_t *x, int64_t n, float scale, int32_t zp, uint8_t *y);
void oct_ref_quantize_s32_s8(const int32_t *x, int64_t n, float scale, int32_t zp, int8_t *y);

/* y[i] = (float)(x[i] - zp) * scale, the subtraction exact in integers. */
void oct_ref_dequantize_u8(const uint8_t *x, int64_t n, float scale, int32_t zp, float *y);
void oct_ref_dequantize_s8(const int8_t *x, int64_t n, float scale, int32_t zp, float *y);
void oct_ref_dequantize_s32(const int32_t *x, int64_t n, float scale, int32_t zp, float *y);

/* Widens lo and hi to cover x[0..n); NaN elements are skipped. */
void oct_ref_minmax_f32(const float *x, int64_t n, float *lo, float *hi);

/* DynamicQuantizeLinear's parameters from the range [lo, hi] of the data (ONNX Runtime's
   GetQuantizationParameter): the range widened to include 0, scale = (hi - lo) / 255 in float32
   (1 when the range is empty, i.e. all zeros), zp = rint(clamp(0 - lo / scale, 0, 255)). */
void oct_ref_dynamic_qparams_u8(float lo, float hi, float *scale, uint8_t *zp);

/* ---- the int8 GEMM ------------------------------------------------------------------------ */

/* Packed weight operand: `rows` output channels of `k` int8 values each, plus each row's sum.
   The layout of `data` belongs to the kernel set that packed it; only that set's qgemm reads it.
   ref: row-major, rows `ld` bytes apart. */
typedef struct {
    int rows, k;
    int64_t ld;
    const int8_t *data;
    const int32_t *row_sum; /* sum_k w[r][k] after the shift to int8 */
} oct_qweights;

/* Bytes of the buffer oct_ref_qweights_pack fills for rows x k weights; 0 if the size overflows. */
size_t oct_ref_qweights_bytes(int rows, int k);
/* Packs w[r][k] = w[r * w_rs + k * w_ks] (int8, or uint8 when w_is_u8, which is shifted by -128)
   into buf (64-byte aligned, oct_ref_qweights_bytes long) and describes it in *out. The strides
   let a MatMul pack B[k x n] as n rows (w_rs 1, w_ks n). */
void oct_ref_qweights_pack(int rows, int k, const void *w, int w_is_u8, int64_t w_rs, int64_t w_ks,
                           void *buf, oct_qweights *out);

/* acc[r][c] = sum_k (w[r0+r][k] - w_zp[r0+r]) * (x[k][c] - zx(c))  for r < nr, c < nc,
   modulo 2^32. x is uint8, row-major [k x nc] with row stride ldx; zx(c) is x_zp_cols[c] when
   x_zp_cols is not NULL, else x_zp. w_zp is indexed by absolute row (r0 + r) and may be NULL (0).
   acc rows are ldacc elements apart. */
void oct_ref_qgemm(const oct_qweights *w, int r0, int nr, int nc, const uint8_t *x, int64_t ldx,
                   int32_t x_zp, const int32_t *x_zp_cols, const int32_t *w_zp, int32_t *acc,
                   int64_t ldacc);

/* ---- requantization ----------------------------------------------------------------------- */

typedef struct {
    const float *scale;   /* multipliers m[r], indexed by absolute row */
    int scale_per_row;    /* 0: scale[0] for every row */
    const int32_t *bias;  /* per absolute row, or NULL */
    int32_t zp;           /* output zero point */
    int32_t qmin, qmax;   /* clamp in the output's integer domain */
    int out_s8;           /* output int8 (else uint8) */
    /* A fused activation table (engine/passes/fuse_qlut.c), 256 bytes: each stored byte b becomes
       table[b], b the byte's bit pattern (int8 -1 reads entry 255, as QLinearLut's tables are
       indexed); NULL stores the requantized bytes as they are. */
    const uint8_t *table;
} oct_requant;

/* y[r * y_rs + c * y_cs] = requantized acc[r][c] (through q->table if any) for rows r0..r0+nr
   (acc and y at the block's origin, parameters at absolute row r0 + r), nc columns. Strides are in
   elements. */
void oct_ref_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                     void *y, int64_t y_rs, int64_t y_cs);

/* One requantized value, exactly as above: acc of absolute row r. Every fused write-back (ref and
   the scalar edges of the SIMD twins) goes through this one sequence. */
static inline int32_t oct_requant_one(const oct_requant *q, int r, int32_t acc, float lo, float hi) {
    const uint32_t b = (uint32_t)(q->bias ? q->bias[r] : 0);
    float v = (float)(int32_t)((uint32_t)acc + b) * q->scale[q->scale_per_row ? r : 0];
    if (!(v >= lo)) v = lo; /* NaN cannot occur with finite multipliers; if it did, qmin */
    if (v > hi) v = hi;
    return (int32_t)rintf(v) + q->zp;
}

/* The byte stored for a value of oct_requant_one: its low 8 bits (what a cast to int8 or uint8
   keeps), through q->table when there is one. */
static inline uint8_t oct_requant_byte(const oct_requant *q, int32_t out) {
    const uint8_t b = (uint8_t)out;
    return q->table ? q->table[b] : b;
}

/* ---- activation panels and the fused GEMM ---------------------------------------------------- */

/* The layout in which a kernel set's fused GEMM reads the activation operand x[k][c] (uint8
   domain): panels of `nr` columns, each [groups][nr][kg] with groups = ceil(K / kg), so one
   vector lane holds kg consecutive k of one column (what VPDPBUSD / VPMADDWD / SDOT consume).
   Values are x ^ x_flip as bytes (x_size 1; flip 0x80 gives SDOT's int8 x - 128), or x
   zero-extended to int16 (x_size 2, flip 0). k past K and columns past nc hold packed zero.
   Convolutions unfold (im2col) straight into this layout, so a tile is written once. */
typedef struct {
    int nr, kg, x_size;
    uint8_t x_flip;
} oct_qpanel;

static inline int64_t oct_qpanel_groups(const oct_qpanel *l, int64_t k) { return (k + l->kg - 1) / l->kg; }
/* Bytes of one panel (nr columns, every group). */
static inline int64_t oct_qpanel_stride(const oct_qpanel *l, int64_t k) {
    return oct_qpanel_groups(l, k) * l->nr * l->kg * l->x_size;
}
/* Bytes of the panels holding k x nc activations, a multiple of 64; 0 if the size overflows. */
size_t oct_qpanel_bytes(const oct_qpanel *l, int64_t k, int64_t nc);

/* Packs x[k][c] = x[c * c_stride + k * k_stride] ^ x_xor for k < K, c < nc into panels (a matrix
   whose rows are the columns, c_stride K and k_stride 1, is a MatMul's a). */
void oct_ref_qpanel_pack(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k,
                        int nc, uint8_t x_xor, void *panel);
/* The im2col tile of oct_ref_im2col_tile_u8 (output pixels [p0, p0+np), channels x kvol rows,
   padding reads `pad`), written straight into panels. scratch (64-byte aligned) holds
   oct_ref_qpanel_im2col_scratch bytes: a padded copy of the input rows a stage reads. */
void oct_ref_qpanel_im2col(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels,
                          int64_t p0, int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel);
/* Bytes of that scratch for `channels` channels of geometry g; 0 if the size overflows. */
size_t oct_ref_qpanel_im2col_scratch(const oct_conv_geom *g, int64_t channels);
/* colsum[c] = sum_k x[k][c] (uint8 domain, mod 2^32) for c < nc: the weight zero point's term. */
void oct_ref_qpanel_colsums(const oct_qpanel *l, const void *panel, int k, int nc, int32_t *colsum);

/* Where the fused GEMM puts rows r0..r0+nr of its result and how it gets there:
     acc[r][c] = sum_k (w[r0+r][k] - w_zp[r0+r]) * (x[k][c] - zx(c))   as oct_ref_qgemm (mod 2^32),
   with colsum (oct_ref_qpanel_colsums of the same panel) required when some w_zp in the rows is not 0.
   rq NULL: y is int32 and gets acc; else y is 8-bit (rq->out_s8) and gets oct_requant_byte of
   oct_requant_one(acc) at row r0 + r (rq->table applied). y points at (r = 0, c = 0); y_rs, y_cs
   are in elements. */
typedef struct {
    int32_t x_zp;
    const int32_t *x_zp_cols; /* per column c (of this call), or NULL */
    const int32_t *w_zp;      /* per absolute row, or NULL */
    const int32_t *colsum;    /* per column c, or NULL */
    const oct_requant *rq;
    void *y;
    int64_t y_rs, y_cs;
} oct_qgemm_out;

/* The reference fused GEMM over panels in oct_ref_qpanel's layout. */
extern const oct_qpanel oct_ref_qpanel;
void oct_ref_qgemm_panel(const oct_qweights *w, int r0, int nr, int nc, const void *panel,
                         const oct_qgemm_out *o);

/* ---- convolution pieces ------------------------------------------------------------------- */

/* Unfolds output pixels [p0, p0+np) over `channels` 8-bit input channels into
   col[(channels*kvol) x np] (row stride np): each byte is x ^ x_xor (0x80 turns int8 into the
   uint8 domain, 0 keeps uint8), and taps in the padding read pad (the zero point in that domain,
   so padding adds nothing). */
void oct_ref_im2col_tile_u8(const oct_conv_geom *g, const uint8_t *x, int64_t channels, int64_t p0,
                            int64_t np, uint8_t x_xor, uint8_t pad, uint8_t *col);
/* One channel of a depthwise convolution for output pixels [p0, p0+np):
   acc[p] = sum over taps inside the input of ((x ^ x_xor) - x_zp) * (w[tap] - w_zp), mod 2^32.
   w holds the kernel volume in the int8 domain. */
void oct_ref_qconv_depthwise(const oct_conv_geom *g, const uint8_t *x, uint8_t x_xor, int32_t x_zp,
                             const int8_t *w, int32_t w_zp, int64_t p0, int64_t np, int32_t *acc);

/* ---- a kernel set ------------------------------------------------------------------------- */

/* What an int8 op calls; SIMD twins provide their own set (each twin packs for its own qgemm),
   the dispatcher will pick one. Ops keep the set they packed with in their params. */
typedef struct oct_quant_kernel_set {
    const char *name;
    size_t (*qweights_bytes)(int rows, int k);
    void (*qweights_pack)(int rows, int k, const void *w, int w_is_u8, int64_t w_rs, int64_t w_ks,
                          void *buf, oct_qweights *out);
    void (*qgemm)(const oct_qweights *w, int r0, int nr, int nc, const uint8_t *x, int64_t ldx,
                  int32_t x_zp, const int32_t *x_zp_cols, const int32_t *w_zp, int32_t *acc,
                  int64_t ldacc);
    void (*requant)(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                    void *y, int64_t y_rs, int64_t y_cs);
    /* The fused path: activations packed once in `panel`'s layout, the GEMM writes its result
       (requantized or int32) from registers; see oct_qgemm_out. */
    const oct_qpanel *panel;
    void (*qgemm_panel)(const oct_qweights *w, int r0, int nr, int nc, const void *panel,
                        const oct_qgemm_out *o);
} oct_quant_kernel_set;

extern const oct_quant_kernel_set oct_ref_quant_kernels;

#endif
