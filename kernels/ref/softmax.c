/* Softmax and LogSoftmax along one axis of x viewed as [outer, len, inner]. The row maximum is
   subtracted before exp so that large inputs do not overflow. */
#include <math.h>

#include "math_kernels.h"

/* Columns of a strided (inner > 1) softmax are processed in blocks so that the running max and
   sum fit on the stack while the loops over the block still vectorise. */
#define SOFTMAX_BLOCK 256

static void softmax_row(const float *x, float *y, int64_t len, int log_softmax) {
    float m = -INFINITY;
    for (int64_t r = 0; r < len; r++) m = x[r] > m ? x[r] : m;
    double sum = 0.0;
    if (log_softmax) {
        for (int64_t r = 0; r < len; r++) sum += expf(x[r] - m);
        float lse = m + (float)log(sum);
        for (int64_t r = 0; r < len; r++) y[r] = x[r] - lse;
    } else {
        for (int64_t r = 0; r < len; r++) {
            y[r] = expf(x[r] - m);
            sum += y[r];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t r = 0; r < len; r++) y[r] *= inv;
    }
}

static void softmax_columns(const float *x, float *y, int64_t len, int64_t inner, int64_t i0,
                            int64_t cnt, int log_softmax) {
    float m[SOFTMAX_BLOCK], sum[SOFTMAX_BLOCK];
    for (int64_t i = 0; i < cnt; i++) {
        m[i] = -INFINITY;
        sum[i] = 0.f;
    }
    for (int64_t r = 0; r < len; r++) {
        const float *xr = x + r * inner + i0;
        for (int64_t i = 0; i < cnt; i++) m[i] = xr[i] > m[i] ? xr[i] : m[i];
    }
    for (int64_t r = 0; r < len; r++) {
        const float *xr = x + r * inner + i0;
        float *yr = y + r * inner + i0;
        for (int64_t i = 0; i < cnt; i++) {
            float e = expf(xr[i] - m[i]);
            sum[i] += e;
            if (!log_softmax) yr[i] = e;
        }
    }
    for (int64_t i = 0; i < cnt; i++) sum[i] = log_softmax ? m[i] + logf(sum[i]) : 1.f / sum[i];
    for (int64_t r = 0; r < len; r++) {
        const float *xr = x + r * inner + i0;
        float *yr = y + r * inner + i0;
        if (log_softmax)
            for (int64_t i = 0; i < cnt; i++) yr[i] = xr[i] - sum[i];
        else
            for (int64_t i = 0; i < cnt; i++) yr[i] *= sum[i];
    }
}

void oct_ref_softmax_f32(const float *x, float *y, int64_t o0, int64_t o1, int64_t len,
                         int64_t inner, int log_softmax) {
    for (int64_t o = o0; o < o1; o++) {
        const float *xo = x + o * len * inner;
        float *yo = y + o * len * inner;
        if (inner == 1) {
            softmax_row(xo, yo, len, log_softmax);
            continue;
        }
        for (int64_t i0 = 0; i0 < inner; i0 += SOFTMAX_BLOCK) {
            int64_t cnt = inner - i0 < SOFTMAX_BLOCK ? inner - i0 : SOFTMAX_BLOCK;
            softmax_columns(xo, yo, len, inner, i0, cnt, log_softmax);
        }
    }
}
