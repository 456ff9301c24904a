/* Normalisation building blocks: statistics in double (a 96^3 channel has ~900k elements, too
   many to sum in float without losing digits), then a float scale-and-shift. */
#include <math.h>

#include "../norm_kernels.h"
#include "nn_kernels.h"

void oct_ref_mean_var(const float *x, int64_t n, double *mean, double *var) {
    if (n <= 0) {
        *mean = 0.0;
        *var = 0.0;
        return;
    }
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double m = s / (double)n, q = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - m;
        q += d * d;
    }
    *mean = m;
    *var = q / (double)n;
}

void oct_ref_scale_shift(const float *x, int64_t n, float a, float b, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

void oct_ref_shifted_sums(const float *x, int64_t n, float shift, double *sum, double *sumsq) {
    double s = 0.0, q = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)x[i] - (double)shift;
        s += d;
        q += d * d;
    }
    *sum = s;
    *sumsq = q;
}

void oct_ref_scale_shift_act(const float *x, int64_t n, float c, float a, float b, const float *res,
                             const oct_act *act, float *y) {
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - c) * a + b;
        if (res) v += res[i];
        y[i] = oct_act_apply(act, v);
    }
}

void oct_ref_layernorm_row(const float *x, int64_t n, float eps, const float *scale,
                           const float *bias, float *y, float *mean, float *inv_std) {
    double m, v;
    oct_ref_mean_var(x, n, &m, &v);
    const float mf = (float)m, is = (float)(1.0 / sqrt(v + (double)eps));
    if (bias)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mf) * is * scale[i] + bias[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mf) * is * scale[i];
    *mean = mf;
    *inv_std = is;
}
