/* Element-wise quantize / dequantize and the range scan of DynamicQuantizeLinear. */
#include <math.h>

#include "quant_kernels.h"

/* round(v) + zp saturated to [lo, hi]. The clamp happens in float before the conversion, so huge
   or infinite v cannot overflow the int; the bounds are integers, so clamping before or after the
   rounding gives the same result. NaN maps to the zero point (a quantized 0). */
static inline int32_t round_sat(float v, int32_t zp, int32_t lo, int32_t hi) {
    if (v != v) return zp;
    const float flo = (float)(lo - zp), fhi = (float)(hi - zp);
    if (v < flo) v = flo;
    if (v > fhi) v = fhi;
    return (int32_t)rintf(v) + zp;
}

static inline int32_t round_sat_d(double v, int32_t zp, int32_t lo, int32_t hi) {
    if (v != v) return zp;
    const double dlo = (double)(lo - zp), dhi = (double)(hi - zp);
    if (v < dlo) v = dlo;
    if (v > dhi) v = dhi;
    return (int32_t)rint(v) + zp;
}

void oct_ref_quantize_f32_u8(const float *x, int64_t n, float scale, int32_t zp, uint8_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (uint8_t)round_sat(x[i] / scale, zp, 0, 255);
}

void oct_ref_quantize_f32_s8(const float *x, int64_t n, float scale, int32_t zp, int8_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (int8_t)round_sat(x[i] / scale, zp, -128, 127);
}

void oct_ref_quantize_s32_u8(const int32_t *x, int64_t n, float scale, int32_t zp, uint8_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (uint8_t)round_sat_d((double)x[i] / (double)scale, zp, 0, 255);
}

void oct_ref_quantize_s32_s8(const int32_t *x, int64_t n, float scale, int32_t zp, int8_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (int8_t)round_sat_d((double)x[i] / (double)scale, zp, -128, 127);
}

void oct_ref_dequantize_u8(const uint8_t *x, int64_t n, float scale, int32_t zp, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

void oct_ref_dequantize_s8(const int8_t *x, int64_t n, float scale, int32_t zp, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

void oct_ref_dequantize_s32(const int32_t *x, int64_t n, float scale, int32_t zp, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)((int64_t)x[i] - zp) * scale;
}

void oct_ref_minmax_f32(const float *x, int64_t n, float *lo, float *hi) {
    float mn = *lo, mx = *hi;
    for (int64_t i = 0; i < n; i++) {
        /* Comparisons with NaN are false, so NaN never becomes a bound. */
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    *lo = mn;
    *hi = mx;
}

void oct_ref_dynamic_qparams_u8(float lo, float hi, float *scale, uint8_t *zp) {
    if (lo > 0.f) lo = 0.f;
    if (hi < 0.f) hi = 0.f;
    const float s = hi == lo ? 1.f : (hi - lo) / 255.f;
    float z = 0.f - lo / s;
    if (!(z >= 0.f)) z = 0.f; /* also catches NaN from an infinite range */
    if (z > 255.f) z = 255.f;
    *scale = s;
    *zp = (uint8_t)rintf(z);
}
