/* Reductions (sum, mean, max) over one contiguous block of axes ([outer, red, inner]) or over any
   set of axes (the general walk), per dtype. Integers accumulate in int64 (wrapping like numpy's
   cast back to the input type); float32 rows accumulate in double for accuracy on long rows. */
#include <math.h>

#include "math_kernels.h"

/* S: suffix, T: element type, ACC: accumulator type, LOWEST: identity of max, ISNAN(v): NaN test
   (once a max is NaN no comparison replaces it, so NaN propagates like numpy), EMPTY_MEAN: the
   mean of nothing. */
#define REDUCE(S, T, ACC, LOWEST, ISNAN, EMPTY_MEAN)                                               \
    static T finish_##S(oct_reduce_kind k, ACC acc, int64_t count) {                               \
        if (k != OCT_RED_MEAN) return (T)acc;                                                      \
        return count ? (T)(acc / (ACC)count) : (T)(EMPTY_MEAN);                                    \
    }                                                                                              \
    static void rows_##S(oct_reduce_kind k, const T *x, T *y, int64_t o0, int64_t o1, int64_t red, \
                         int64_t inner) {                                                          \
        for (int64_t o = o0; o < o1; o++) {                                                        \
            const T *xo = x + o * red * inner;                                                     \
            T *yo = y + o * inner;                                                                 \
            if (k == OCT_RED_MAX) {                                                                \
                for (int64_t i = 0; i < inner; i++) yo[i] = (LOWEST);                              \
                for (int64_t r = 0; r < red; r++)                                                  \
                    for (int64_t i = 0; i < inner; i++) {                                          \
                        T v = xo[r * inner + i];                                                   \
                        if (v > yo[i] || ISNAN(v)) yo[i] = v;                                      \
                    }                                                                              \
            } else if (inner == 1) {                                                               \
                ACC acc = 0;                                                                       \
                for (int64_t r = 0; r < red; r++) acc += (ACC)xo[r];                               \
                yo[0] = finish_##S(k, acc, red);                                                   \
            } else {                                                                               \
                for (int64_t i = 0; i < inner; i++) yo[i] = 0;                                     \
                for (int64_t r = 0; r < red; r++)                                                  \
                    for (int64_t i = 0; i < inner; i++) yo[i] = (T)(yo[i] + xo[r * inner + i]);    \
                if (k == OCT_RED_MEAN)                                                             \
                    for (int64_t i = 0; i < inner; i++) yo[i] = finish_##S(k, (ACC)yo[i], red);    \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void general_##S(oct_reduce_kind k, const T *x, T *y, int rank, const int64_t *dims,    \
                            const uint8_t *reduced, int64_t begin, int64_t end) {                  \
        int64_t stride[OCTET_MAX_RANK], s = 1, count = 1;                                          \
        for (int d = rank - 1; d >= 0; d--) {                                                      \
            stride[d] = s;                                                                         \
            s *= dims[d];                                                                          \
            if (reduced[d]) count *= dims[d];                                                      \
        }                                                                                          \
        for (int64_t o = begin; o < end; o++) {                                                    \
            /* base offset of this output element from its kept-dim coordinates */                 \
            int64_t rem = o, base = 0;                                                             \
            for (int d = rank - 1; d >= 0; d--)                                                    \
                if (!reduced[d]) {                                                                 \
                    base += (rem % dims[d]) * stride[d];                                           \
                    rem /= dims[d];                                                                \
                }                                                                                  \
            ACC acc = k == OCT_RED_MAX ? (ACC)(LOWEST) : 0;                                        \
            int64_t idx[OCTET_MAX_RANK] = {0}, off = base;                                         \
            for (int64_t c = 0; c < count; c++) {                                                  \
                T v = x[off];                                                                      \
                if (k == OCT_RED_MAX) {                                                            \
                    if ((ACC)v > acc || ISNAN(v)) acc = (ACC)v; /* NaN sticks */                   \
                } else {                                                                           \
                    acc += (ACC)v;                                                                 \
                }                                                                                  \
                for (int d = rank - 1; d >= 0; d--) { /* odometer over the reduced dims */         \
                    if (!reduced[d]) continue;                                                     \
                    off += stride[d];                                                              \
                    if (++idx[d] < dims[d]) break;                                                 \
                    off -= idx[d] * stride[d];                                                     \
                    idx[d] = 0;                                                                    \
                }                                                                                  \
            }                                                                                      \
            y[o] = finish_##S(k, acc, count);                                                      \
        }                                                                                          \
    }

#define FLOAT_ISNAN(v) isnan((float)(v))
#define INT_ISNAN(v) ((void)(v), 0)
REDUCE(f32, float, double, -INFINITY, FLOAT_ISNAN, NAN)
REDUCE(i32, int32_t, int64_t, INT32_MIN, INT_ISNAN, 0)
REDUCE(i64, int64_t, int64_t, INT64_MIN, INT_ISNAN, 0)
REDUCE(i8, int8_t, int64_t, INT8_MIN, INT_ISNAN, 0)
REDUCE(u8, uint8_t, int64_t, 0, INT_ISNAN, 0)

int oct_ref_reduce_rows(oct_reduce_kind k, octet_dtype dt, const void *x, void *y, int64_t o0,
                        int64_t o1, int64_t red, int64_t inner) {
    switch (dt) {
    case OCTET_FLOAT: rows_f32(k, x, y, o0, o1, red, inner); return 0;
    case OCTET_INT32: rows_i32(k, x, y, o0, o1, red, inner); return 0;
    case OCTET_INT64: rows_i64(k, x, y, o0, o1, red, inner); return 0;
    case OCTET_INT8: rows_i8(k, x, y, o0, o1, red, inner); return 0;
    case OCTET_UINT8: rows_u8(k, x, y, o0, o1, red, inner); return 0;
    default: return -1;
    }
}

int oct_ref_reduce_general(oct_reduce_kind k, octet_dtype dt, const void *x, void *y, int rank,
                           const int64_t *dims, const uint8_t *reduced, int64_t begin, int64_t end) {
    switch (dt) {
    case OCTET_FLOAT: general_f32(k, x, y, rank, dims, reduced, begin, end); return 0;
    case OCTET_INT32: general_i32(k, x, y, rank, dims, reduced, begin, end); return 0;
    case OCTET_INT64: general_i64(k, x, y, rank, dims, reduced, begin, end); return 0;
    case OCTET_INT8: general_i8(k, x, y, rank, dims, reduced, begin, end); return 0;
    case OCTET_UINT8: general_u8(k, x, y, rank, dims, reduced, begin, end); return 0;
    default: return -1;
    }
}
