/* Max and average pooling over one channel plane (3-D geometry; see nn_kernels.h). */
#include <float.h>

#include "../misc_kernels.h"
#include "nn_kernels.h"

/* Max pooling for one element type. Ties keep the first element in row-major window order, as
   onnxruntime does; a window entirely in padding yields the type's lowest value and index -1. */
#define DEFINE_MAXPOOL(NAME, T, LOWEST)                                                           \
    void NAME(const oct_conv_geom *g, const T *x, T *y, int64_t *idx) {                           \
        int64_t p = 0;                                                                            \
        for (int64_t od = 0; od < g->out[0]; od++)                                                \
            for (int64_t oh = 0; oh < g->out[1]; oh++)                                            \
                for (int64_t ow = 0; ow < g->out[2]; ow++, p++) {                                 \
                    T best = LOWEST;                                                              \
                    int64_t at = -1;                                                              \
                    for (int64_t kd = 0; kd < g->k[0]; kd++) {                                    \
                        int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pad[0];              \
                        if (id < 0 || id >= g->in[0]) continue;                                   \
                        for (int64_t kh = 0; kh < g->k[1]; kh++) {                                \
                            int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pad[1];          \
                            if (ih < 0 || ih >= g->in[1]) continue;                               \
                            const int64_t row = (id * g->in[1] + ih) * g->in[2];                  \
                            for (int64_t kw = 0; kw < g->k[2]; kw++) {                            \
                                int64_t iw = ow * g->stride[2] + kw * g->dil[2] - g->pad[2];      \
                                if (iw < 0 || iw >= g->in[2]) continue;                           \
                                T v = x[row + iw];                                                \
                                if (at < 0 || v > best) {                                         \
                                    best = v;                                                     \
                                    at = row + iw;                                                \
                                }                                                                 \
                            }                                                                     \
                        }                                                                         \
                    }                                                                             \
                    y[p] = best;                                                                  \
                    if (idx) idx[p] = at;                                                         \
                }                                                                                 \
    }

DEFINE_MAXPOOL(oct_ref_maxpool_f32, float, -FLT_MAX)
DEFINE_MAXPOOL(oct_ref_maxpool_u8, uint8_t, 0)
DEFINE_MAXPOOL(oct_ref_maxpool_s8, int8_t, INT8_MIN)

/* [lo, hi) of window taps along one dim that fall inside the input, and the window extent that
   count_include_pad divides by (clipped to the padded input, so the ceil_mode overhang is not
   counted). */
static void window(int64_t o, int64_t k, int64_t s, int64_t pad, int64_t pad_end, int64_t in,
                   int64_t *lo, int64_t *hi, int64_t *padded) {
    int64_t start = o * s - pad, end = start + k;
    int64_t pend = end < in + pad_end ? end : in + pad_end;
    *padded = pend - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > in ? in : end;
}

void oct_ref_avgpool_f32(const oct_conv_geom *g, const int64_t pad_end[3], int count_include_pad,
                         const float *x, float *y) {
    int64_t p = 0;
    for (int64_t od = 0; od < g->out[0]; od++) {
        int64_t d0, d1, dp;
        window(od, g->k[0], g->stride[0], g->pad[0], pad_end[0], g->in[0], &d0, &d1, &dp);
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            int64_t h0, h1, hp;
            window(oh, g->k[1], g->stride[1], g->pad[1], pad_end[1], g->in[1], &h0, &h1, &hp);
            for (int64_t ow = 0; ow < g->out[2]; ow++, p++) {
                int64_t w0, w1, wp;
                window(ow, g->k[2], g->stride[2], g->pad[2], pad_end[2], g->in[2], &w0, &w1, &wp);
                float sum = 0.f;
                for (int64_t id = d0; id < d1; id++)
                    for (int64_t ih = h0; ih < h1; ih++) {
                        const float *xr = x + (id * g->in[1] + ih) * g->in[2];
                        for (int64_t iw = w0; iw < w1; iw++) sum += xr[iw];
                    }
                int64_t cnt = count_include_pad ? dp * hp * wp
                                                : (d1 - d0) * (h1 - h0) * (w1 - w0);
                y[p] = cnt > 0 ? sum / (float)cnt : 0.f;
            }
        }
    }
}

/* Global pooling of one plane (declared in misc_kernels.h). The sum runs in double: planes reach
   96^3 elements, where a float running sum loses digits. */
double oct_ref_sum_f32(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

float oct_ref_max_f32(const float *x, int64_t n) {
    float m = -FLT_MAX;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
