/* Cast among float32, int8, uint8, int32, int64 and bool. */
#include <math.h>
#include <string.h>

#include "math_kernels.h"

/* Float to integer: truncate toward zero, saturate at [lo, hi] and map NaN to 0, so that no
   conversion is undefined behaviour (ONNX leaves out-of-range casts unspecified). */
static inline int64_t float_to_int(float v, int64_t lo, int64_t hi) {
    if (isnan(v)) return 0;
    double d = v;
    if (d <= (double)lo) return lo;
    if (d >= (double)hi) return hi;
    return (int64_t)d;
}

static void from_f32(const float *x, void *y, octet_dtype to, size_t n) {
    switch (to) {
    case OCTET_FLOAT: memmove(y, x, n * sizeof(float)); break;
    case OCTET_INT8:
        for (size_t i = 0; i < n; i++) ((int8_t *)y)[i] = (int8_t)float_to_int(x[i], INT8_MIN, INT8_MAX);
        break;
    case OCTET_UINT8:
        for (size_t i = 0; i < n; i++) ((uint8_t *)y)[i] = (uint8_t)float_to_int(x[i], 0, UINT8_MAX);
        break;
    case OCTET_INT32:
        for (size_t i = 0; i < n; i++) ((int32_t *)y)[i] = (int32_t)float_to_int(x[i], INT32_MIN, INT32_MAX);
        break;
    case OCTET_INT64:
        for (size_t i = 0; i < n; i++) ((int64_t *)y)[i] = float_to_int(x[i], INT64_MIN, INT64_MAX);
        break;
    case OCTET_BOOL:
        for (size_t i = 0; i < n; i++) ((uint8_t *)y)[i] = x[i] != 0.f;
        break;
    }
}

/* From an integer or bool type: narrower integers wrap (two's complement, as numpy's astype). */
#define FROM_INT(S, T)                                                                             \
    static void from_##S(const T *x, void *y, octet_dtype to, size_t n) {                          \
        switch (to) {                                                                              \
        case OCTET_FLOAT: for (size_t i = 0; i < n; i++) ((float *)y)[i] = (float)x[i]; break;     \
        case OCTET_INT8: for (size_t i = 0; i < n; i++) ((int8_t *)y)[i] = (int8_t)x[i]; break;    \
        case OCTET_UINT8: for (size_t i = 0; i < n; i++) ((uint8_t *)y)[i] = (uint8_t)x[i]; break; \
        case OCTET_INT32: for (size_t i = 0; i < n; i++) ((int32_t *)y)[i] = (int32_t)x[i]; break; \
        case OCTET_INT64: for (size_t i = 0; i < n; i++) ((int64_t *)y)[i] = (int64_t)x[i]; break; \
        case OCTET_BOOL: for (size_t i = 0; i < n; i++) ((uint8_t *)y)[i] = x[i] != 0; break;      \
        }                                                                                          \
    }
FROM_INT(i8, int8_t)
FROM_INT(u8, uint8_t)
FROM_INT(i32, int32_t)
FROM_INT(i64, int64_t)

static int known(octet_dtype dt) {
    return dt == OCTET_FLOAT || dt == OCTET_INT8 || dt == OCTET_UINT8 || dt == OCTET_INT32 ||
           dt == OCTET_INT64 || dt == OCTET_BOOL;
}

int oct_ref_cast(octet_dtype from, octet_dtype to, const void *x, void *y, size_t n) {
    if (!known(from) || !known(to)) return -1;
    if (from == to) {
        memmove(y, x, n * octet_dtype_size(from));
        return 0;
    }
    switch (from) {
    case OCTET_FLOAT: from_f32(x, y, to, n); break;
    case OCTET_INT8: from_i8(x, y, to, n); break;
    case OCTET_UINT8: from_u8(x, y, to, n); break;
    case OCTET_BOOL: {
        /* bool bytes other than 0/1 still mean true */
        const uint8_t *b = x;
        for (size_t i = 0; i < n; i++) {
            uint8_t v = b[i] != 0;
            from_u8(&v, (char *)y + i * octet_dtype_size(to), to, 1);
        }
        break;
    }
    case OCTET_INT32: from_i32(x, y, to, n); break;
    case OCTET_INT64: from_i64(x, y, to, n); break;
    }
    return 0;
}
