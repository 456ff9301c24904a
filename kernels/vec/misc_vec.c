/* The vector kernels of oct_misc_kernel_set (misc_kernels.h) in portable C that gcc vectorises:
   this one file is compiled once per ISA level with that level's flags (kernels/meson.build), and
   OCT_MISC_SET / OCT_MISC_NAME name the set it defines. Loops are written for the vectoriser:
   no calls, no early exits, selects instead of branches, unit or constant strides.

   Pooling is separable: a window's max (or sum) is the max over its columns of the max over its
   rows, so each output row first reduces the window's input rows element-wise into a row buffer
   (long contiguous vectors), then reduces that buffer horizontally with the stride. Every input
   row is read about k/s times instead of k^3 scattered taps per output. */
#include <float.h>
#include <string.h>

#include "misc_kernels.h"
#include "ref/qbinary_runs.h"
#include "ref/qsum_body.h"

#if !defined(OCT_MISC_SET) || !defined(OCT_MISC_NAME)
#error "misc_vec.c is compiled with -DOCT_MISC_SET=<set> -DOCT_MISC_NAME=<name>"
#endif

/* Columns of the row buffer: output columns are processed in blocks whose input span fits. */
enum { ROW_TILE = 2048 };

/* The window rows of output row (od, oh) that lie inside the input: their offsets into the plane.
   Returns the count (0 when the window is all padding). */
static int window_rows(const oct_conv_geom *g, int64_t od, int64_t oh, int64_t *rows, int max) {
    int nr = 0;
    for (int64_t kd = 0; kd < g->k[0]; kd++) {
        const int64_t id = od * g->stride[0] + kd - g->pad[0];
        if (id < 0 || id >= g->in[0]) continue;
        for (int64_t kh = 0; kh < g->k[1]; kh++) {
            const int64_t ih = oh * g->stride[1] + kh - g->pad[1];
            if (ih < 0 || ih >= g->in[1] || nr >= max) continue;
            rows[nr++] = (id * g->in[1] + ih) * g->in[2];
        }
    }
    return nr;
}

/* The row-window limit of the fast path: kd * kh rows per output row. */
enum { MAX_ROWS = 64 };

/* Max pooling for element type T. MAXV must be a select (a > b ? a : b) so that the x86 max
   instructions apply; ties are equal values, so the result equals ref's first-maximum rule. */
#define DEFINE_MAXPOOL_VEC(NAME, T, LOWEST, REF)                                                   \
    static void NAME(const oct_conv_geom *g, const T *x, T *y) {                                   \
        const int64_t IW = g->in[2], OW = g->out[2], KW = g->k[2], SW = g->stride[2], PW = g->pad[2]; \
        if (g->k[0] * g->k[1] > MAX_ROWS || KW > ROW_TILE / 2) {                                   \
            REF(g, x, y, NULL);                                                                    \
            return;                                                                                \
        }                                                                                          \
        const int64_t ob = (ROW_TILE - KW) / SW + 1; /* output columns per block */                \
        T t[ROW_TILE];                                                                             \
        int64_t rows[MAX_ROWS];                                                                    \
        for (int64_t od = 0; od < g->out[0]; od++)                                                 \
            for (int64_t oh = 0; oh < g->out[1]; oh++) {                                           \
                T *yr = y + (od * g->out[1] + oh) * OW;                                            \
                const int nr = window_rows(g, od, oh, rows, MAX_ROWS);                             \
                for (int64_t o0 = 0; o0 < OW; o0 += ob) {                                          \
                    const int64_t o1 = OW - o0 < ob ? OW : o0 + ob;                                \
                    const int64_t c0 = o0 * SW - PW, span = (o1 - 1 - o0) * SW + KW;               \
                    /* t[j] is column c0 + j reduced over the rows; LOWEST outside the input */    \
                    const int64_t j0 = c0 >= 0 ? 0 : -c0 < span ? -c0 : span;               \
                    int64_t j1 = IW - c0 < span ? IW - c0 : span;                                  \
                    if (j1 < j0) j1 = j0;                                                          \
                    for (int64_t j = 0; j < j0; j++) t[j] = LOWEST;                                \
                    for (int64_t j = j1; j < span; j++) t[j] = LOWEST;                             \
                    if (nr == 0) {                                                                 \
                        for (int64_t j = j0; j < j1; j++) t[j] = LOWEST;                           \
                    } else {                                                                       \
                        const T *r0 = x + rows[0] + c0;                                            \
                        for (int64_t j = j0; j < j1; j++) t[j] = r0[j];                            \
                        for (int r = 1; r < nr; r++) {                                             \
                            const T *rr = x + rows[r] + c0;                                        \
                            for (int64_t j = j0; j < j1; j++) t[j] = t[j] > rr[j] ? t[j] : rr[j];  \
                        }                                                                          \
                    }                                                                              \
                    T *yo = yr + o0;                                                               \
                    const int64_t no = o1 - o0;                                                    \
                    if (SW == 2 && KW == 2) {                                                      \
                        for (int64_t i = 0; i < no; i++) {                                         \
                            const T a = t[2 * i], b = t[2 * i + 1];                                \
                            yo[i] = a > b ? a : b;                                                 \
                        }                                                                          \
                    } else if (SW == 2 && KW == 3) {                                               \
                        for (int64_t i = 0; i < no; i++) {                                         \
                            const T a = t[2 * i], b = t[2 * i + 1], c = t[2 * i + 2];              \
                            const T m = a > b ? a : b;                                             \
                            yo[i] = m > c ? m : c;                                                 \
                        }                                                                          \
                    } else if (SW == 1) {                                                          \
                        for (int64_t i = 0; i < no; i++) yo[i] = t[i];                             \
                        for (int64_t k = 1; k < KW; k++)                                           \
                            for (int64_t i = 0; i < no; i++) yo[i] = yo[i] > t[i + k] ? yo[i] : t[i + k]; \
                    } else {                                                                       \
                        for (int64_t i = 0; i < no; i++) {                                         \
                            T m = t[i * SW];                                                       \
                            for (int64_t k = 1; k < KW; k++) m = m > t[i * SW + k] ? m : t[i * SW + k]; \
                            yo[i] = m;                                                             \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
    }

DEFINE_MAXPOOL_VEC(maxpool_f32, float, -FLT_MAX, oct_ref_maxpool_f32)
#if defined(OCT_MISC_MAXPOOL8_AVX512)
/* The AVX-512 sets take the hand-written byte kernels where they fit (x86/avx512/maxpool8_*.c),
   the row-buffer loop above elsewhere. */
DEFINE_MAXPOOL_VEC(maxpool_u8_rows, uint8_t, 0, oct_ref_maxpool_u8)
DEFINE_MAXPOOL_VEC(maxpool_s8_rows, int8_t, INT8_MIN, oct_ref_maxpool_s8)
static void maxpool_u8(const oct_conv_geom *g, const uint8_t *x, uint8_t *y) {
    if (oct_avx512_maxpool8_fits(g)) oct_avx512_maxpool_u8(g, x, y);
    else maxpool_u8_rows(g, x, y);
}
static void maxpool_s8(const oct_conv_geom *g, const int8_t *x, int8_t *y) {
    if (oct_avx512_maxpool8_fits(g)) oct_avx512_maxpool_s8(g, x, y);
    else maxpool_s8_rows(g, x, y);
}
static void maxpool_u8_vbmi(const oct_conv_geom *g, const uint8_t *x, uint8_t *y) {
    if (oct_avx512_maxpool8_fits(g)) oct_vbmi_maxpool_u8(g, x, y);
    else maxpool_u8_rows(g, x, y);
}
static void maxpool_s8_vbmi(const oct_conv_geom *g, const int8_t *x, int8_t *y) {
    if (oct_avx512_maxpool8_fits(g)) oct_vbmi_maxpool_s8(g, x, y);
    else maxpool_s8_rows(g, x, y);
}
#else
DEFINE_MAXPOOL_VEC(maxpool_u8, uint8_t, 0, oct_ref_maxpool_u8)
DEFINE_MAXPOOL_VEC(maxpool_s8, int8_t, INT8_MIN, oct_ref_maxpool_s8)
#endif

/* [lo, hi) of one dim's window inside the input and the divisor extent of count_include_pad, as
   kernels/ref/pool.c computes them. */
static void avg_window(int64_t o, int64_t k, int64_t s, int64_t pad, int64_t pad_end, int64_t in, int64_t *lo,
                       int64_t *hi, int64_t *padded) {
    const int64_t start = o * s - pad, end = start + k;
    const int64_t pend = end < in + pad_end ? end : in + pad_end;
    *padded = pend - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > in ? in : end;
}

static void avgpool_f32(const oct_conv_geom *g, const int64_t pad_end[3], int count_include_pad, const float *x,
                        float *y) {
    const int64_t IW = g->in[2], OW = g->out[2], KW = g->k[2], SW = g->stride[2], PW = g->pad[2];
    if (g->k[0] * g->k[1] > MAX_ROWS || KW > ROW_TILE / 2) {
        oct_ref_avgpool_f32(g, pad_end, count_include_pad, x, y);
        return;
    }
    const int64_t ob = (ROW_TILE - KW) / SW + 1;
    float t[ROW_TILE];
    int64_t rows[MAX_ROWS];
    for (int64_t od = 0; od < g->out[0]; od++) {
        int64_t d0, d1, dp;
        avg_window(od, g->k[0], g->stride[0], g->pad[0], pad_end[0], g->in[0], &d0, &d1, &dp);
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            int64_t h0, h1, hp;
            avg_window(oh, g->k[1], g->stride[1], g->pad[1], pad_end[1], g->in[1], &h0, &h1, &hp);
            float *yr = y + (od * g->out[1] + oh) * OW;
            const int nr = window_rows(g, od, oh, rows, MAX_ROWS);
            for (int64_t o0 = 0; o0 < OW; o0 += ob) {
                const int64_t o1 = OW - o0 < ob ? OW : o0 + ob;
                const int64_t c0 = o0 * SW - PW, span = (o1 - 1 - o0) * SW + KW;
                const int64_t j0 = c0 >= 0 ? 0 : -c0 < span ? -c0 : span;
                int64_t j1 = IW - c0 < span ? IW - c0 : span;
                if (j1 < j0) j1 = j0;
                /* padding adds 0 to the sums; the divisor below decides whether it counts */
                for (int64_t j = 0; j < span; j++) t[j] = 0.f;
                for (int r = 0; r < nr; r++) {
                    const float *rr = x + rows[r] + c0;
                    for (int64_t j = j0; j < j1; j++) t[j] += rr[j];
                }
                for (int64_t ow = o0; ow < o1; ow++) {
                    const float *tw = t + (ow - o0) * SW;
                    float s = 0.f;
                    for (int64_t k = 0; k < KW; k++) s += tw[k];
                    int64_t w0, w1, wp;
                    avg_window(ow, KW, SW, PW, pad_end[2], IW, &w0, &w1, &wp);
                    const int64_t cnt = count_include_pad ? dp * hp * wp : (d1 - d0) * (h1 - h0) * (w1 - w0);
                    yr[ow] = cnt > 0 ? s / (float)cnt : 0.f;
                }
            }
        }
    }
}

/* ---- quantize / dequantize ----------------------------------------------------------------- */

/* x / scale (a true division, as ref), clamped to the integer range less zp, NaN to 0, rounded
   half to even by the 1.5 * 2^23 trick (exact: |v| <= 383 here). */
#define DEFINE_QUANTIZE_VEC(NAME, T, QMIN, QMAX)                                                   \
    static void NAME(const float *x, int64_t n, float scale, int32_t zp, T *y) {                   \
        const float lo = (float)(QMIN - zp), hi = (float)(QMAX - zp);                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            float v = x[i] / scale;                                                                \
            v = v < lo ? lo : v;                                                                   \
            v = v > hi ? hi : v;                                                                   \
            v = v == v ? v : 0.f;                                                                  \
            v = (v + QBIN_ROUND_MAGIC) - QBIN_ROUND_MAGIC;                                         \
            y[i] = (T)((int32_t)v + zp);                                                           \
        }                                                                                          \
    }

DEFINE_QUANTIZE_VEC(quantize_f32_u8, uint8_t, 0, 255)
DEFINE_QUANTIZE_VEC(quantize_f32_s8, int8_t, -128, 127)

static void dequantize_u8(const uint8_t *x, int64_t n, float scale, int32_t zp, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

static void dequantize_s8(const int8_t *x, int64_t n, float scale, int32_t zp, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

/* ---- int8 element-wise, tables, sums -------------------------------------------------------- */

static void qbinary(const oct_qbinary *q, const oct_bcast *bc, const uint8_t *a, const uint8_t *b, uint8_t *y,
                    int64_t begin, int64_t end) {
    qbin_walk(q, bc, a, b, y, begin, end);
}

#if defined(__aarch64__)
#include <arm_neon.h>
/* TBL reads 64 table bytes at a time: index i - 64k selects from slice k, and TBX leaves lanes
   whose index is out of its slice (>= 64 after the wrapping subtraction) untouched. */
static void qlut_vec(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y) {
    const uint8x16x4_t t0 = vld1q_u8_x4(table), t1 = vld1q_u8_x4(table + 64), t2 = vld1q_u8_x4(table + 128),
                       t3 = vld1q_u8_x4(table + 192);
    const uint8x16_t k64 = vdupq_n_u8(64);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint8x16_t idx = vld1q_u8(x + i);
        uint8x16_t r = vqtbl4q_u8(t0, idx);
        idx = vsubq_u8(idx, k64);
        r = vqtbx4q_u8(r, t1, idx);
        idx = vsubq_u8(idx, k64);
        r = vqtbx4q_u8(r, t2, idx);
        idx = vsubq_u8(idx, k64);
        r = vqtbx4q_u8(r, t3, idx);
        vst1q_u8(y + i, r);
    }
    for (; i < n; i++) y[i] = table[x[i]];
}
#else
#define qlut_vec oct_ref_qlut /* no byte shuffle wider than 16 entries below VBMI */
#endif

static int64_t qsum(const uint8_t *x, int is_s8, int64_t n) {
    int64_t s = 0;
    oct_qsum_body(x, is_s8, n, &s, NULL);
    return s;
}

/* Float sums in LANES independent accumulators per block (a vector of partial sums; the order is
   fixed, so results do not depend on alignment), each block's total added in double. */
enum { SUM_LANES = 16, SUM_BLOCK = 1024 };

static double sum_f32(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += SUM_BLOCK) {
        /* the last block may be short (a 7x7 plane is all of one): its whole vectors go through the
           lanes too, not a scalar chain of dependent double adds */
        const int64_t len = n - i0 < SUM_BLOCK ? n - i0 : SUM_BLOCK, whole = len / SUM_LANES * SUM_LANES;
        float acc[SUM_LANES] = {0};
        for (int64_t i = 0; i < whole; i += SUM_LANES)
            for (int l = 0; l < SUM_LANES; l++) acc[l] += x[i0 + i + l];
        float b = 0.f;
        for (int l = 0; l < SUM_LANES; l++) b += acc[l];
        for (int64_t i = whole; i < len; i++) b += x[i0 + i];
        s += b;
    }
    return s;
}

static float max_f32(const float *x, int64_t n) {
    float acc[SUM_LANES];
    for (int l = 0; l < SUM_LANES; l++) acc[l] = -FLT_MAX;
    int64_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    float m = -FLT_MAX;
    for (int l = 0; l < SUM_LANES; l++) m = acc[l] > m ? acc[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

const oct_misc_kernel_set OCT_MISC_SET = {
    .name = OCT_MISC_NAME,
    .maxpool_f32 = maxpool_f32,
    .maxpool_u8 = maxpool_u8,
    .maxpool_s8 = maxpool_s8,
    .avgpool_f32 = avgpool_f32,
    .quantize_f32_u8 = quantize_f32_u8,
    .quantize_f32_s8 = quantize_f32_s8,
    .dequantize_u8 = dequantize_u8,
    .dequantize_s8 = dequantize_s8,
    .qbinary = qbinary,
    .qlut = qlut_vec,
    .qsum = qsum,
    .sum_f32 = sum_f32,
    .max_f32 = max_f32,
};

#if defined(OCT_MISC_VBMI_SET)
/* The same set with the VPERMI2B lookup (kernels/x86/avx512/qlut_vbmi.c). */
const oct_misc_kernel_set OCT_MISC_VBMI_SET = {
    .name = OCT_MISC_NAME "+vbmi",
    .maxpool_f32 = maxpool_f32,
    .maxpool_u8 = maxpool_u8_vbmi,
    .maxpool_s8 = maxpool_s8_vbmi,
    .avgpool_f32 = avgpool_f32,
    .quantize_f32_u8 = quantize_f32_u8,
    .quantize_f32_s8 = quantize_f32_s8,
    .dequantize_u8 = dequantize_u8,
    .dequantize_s8 = dequantize_s8,
    .qbinary = qbinary,
    .qlut = oct_vbmi_qlut,
    .qsum = qsum,
    .sum_f32 = sum_f32,
    .max_f32 = max_f32,
};
#endif
