/* Unary elementwise kernels. Each kind gets its own tight loop so the compiler can vectorise it. */
#include <math.h>

#include "math_kernels.h"

/* 1/(1+e^-x) overflows e^-x for very negative x; with e = e^-|x| (never above 1) the two halves
   are 1/(1+e) and e/(1+e), both exact to float precision, and the select has no branch. */
static inline float sigmoid_stable(float x) {
    float e = expf(-fabsf(x));
    float s = 1.f / (1.f + e);
    return x >= 0.f ? s : e * s;
}

static inline float clampf(float x, float lo, float hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

void oct_ref_unary_f32(oct_unary_kind k, float alpha, float beta, const float *x, float *y, size_t n) {
    switch (k) {
    case OCT_UN_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
        break;
    case OCT_UN_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.f ? alpha * x[i] : x[i];
        break;
    case OCT_UN_CLIP:
        /* min(max(x, lo), hi): with lo > hi everything becomes hi (ONNX); NaN passes through */
        for (size_t i = 0; i < n; i++) {
            float t = x[i] < alpha ? alpha : x[i];
            y[i] = t > beta ? beta : t;
        }
        break;
    case OCT_UN_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = sigmoid_stable(x[i]);
        break;
    case OCT_UN_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = clampf(alpha * x[i] + beta, 0.f, 1.f);
        break;
    case OCT_UN_HARD_SWISH:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * clampf(x[i] * (1.f / 6.f) + 0.5f, 0.f, 1.f);
        break;
    case OCT_UN_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case OCT_UN_ERF:
        for (size_t i = 0; i < n; i++) y[i] = erff(x[i]);
        break;
    case OCT_UN_EXP:
        for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    case OCT_UN_SQRT:
        for (size_t i = 0; i < n; i++) y[i] = sqrtf(x[i]);
        break;
    case OCT_UN_NEG:
        for (size_t i = 0; i < n; i++) y[i] = -x[i];
        break;
    case OCT_UN_ABS:
        for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
        break;
    }
}

/* Integer Relu/Neg/Abs/Clip. Neg and Abs go through the unsigned type so that the most negative
   value wraps (as numpy does) instead of overflowing. */
#define UNARY_INT(T, UT)                                                                           \
    static int unary_##T(oct_unary_kind k, int64_t lo, int64_t hi, const T *x, T *y, size_t n) {   \
        switch (k) {                                                                               \
        case OCT_UN_RELU:                                                                          \
            for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;                             \
            return 0;                                                                              \
        case OCT_UN_NEG:                                                                           \
            for (size_t i = 0; i < n; i++) y[i] = (T)(UT)(0u - (UT)x[i]);                          \
            return 0;                                                                              \
        case OCT_UN_ABS:                                                                           \
            for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? (T)(UT)(0u - (UT)x[i]) : x[i];        \
            return 0;                                                                              \
        case OCT_UN_CLIP:                                                                          \
            for (size_t i = 0; i < n; i++) {                                                       \
                int64_t v = (int64_t)x[i];                                                         \
                v = v < lo ? lo : v;                                                               \
                y[i] = (T)(v > hi ? hi : v);                                                       \
            }                                                                                      \
            return 0;                                                                              \
        default:                                                                                   \
            return -1;                                                                             \
        }                                                                                          \
    }

UNARY_INT(int8_t, uint8_t)
UNARY_INT(uint8_t, uint8_t)
UNARY_INT(int32_t, uint32_t)
UNARY_INT(int64_t, uint64_t)

int oct_ref_unary_int(oct_unary_kind k, octet_dtype dt, int64_t lo, int64_t hi, const void *x,
                      void *y, size_t n) {
    switch (dt) {
    case OCTET_INT8: return unary_int8_t(k, lo, hi, x, y, n);
    case OCTET_UINT8: return unary_uint8_t(k, lo, hi, x, y, n);
    case OCTET_INT32: return unary_int32_t(k, lo, hi, x, y, n);
    case OCTET_INT64: return unary_int64_t(k, lo, hi, x, y, n);
    default: return -1;
    }
}
