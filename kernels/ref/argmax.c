/* ArgMax along one axis of x viewed as [outer, len, inner], writing int64 indices. */
#include "math_kernels.h"

/* The first (or, with select_last, the last) index holding the maximum. */
#define ARGMAX(S, T)                                                                               \
    static void argmax_##S(const T *x, int64_t *y, int64_t o0, int64_t o1, int64_t len,            \
                           int64_t inner, int select_last) {                                       \
        for (int64_t o = o0; o < o1; o++)                                                          \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                const T *xs = x + o * len * inner + i;                                             \
                int64_t best = 0;                                                                  \
                for (int64_t r = 1; r < len; r++) {                                                \
                    T v = xs[r * inner], b = xs[best * inner];                                     \
                    if (v > b || (select_last && v == b)) best = r;                                \
                }                                                                                  \
                y[o * inner + i] = best;                                                           \
            }                                                                                      \
    }
ARGMAX(f32, float)
ARGMAX(i32, int32_t)
ARGMAX(i64, int64_t)
ARGMAX(i8, int8_t)
ARGMAX(u8, uint8_t)

int oct_ref_argmax(octet_dtype dt, const void *x, int64_t *y, int64_t o0, int64_t o1, int64_t len,
                   int64_t inner, int select_last) {
    switch (dt) {
    case OCTET_FLOAT: argmax_f32(x, y, o0, o1, len, inner, select_last); return 0;
    case OCTET_INT32: argmax_i32(x, y, o0, o1, len, inner, select_last); return 0;
    case OCTET_INT64: argmax_i64(x, y, o0, o1, len, inner, select_last); return 0;
    case OCTET_INT8: argmax_i8(x, y, o0, o1, len, inner, select_last); return 0;
    case OCTET_UINT8: argmax_u8(x, y, o0, o1, len, inner, select_last); return 0;
    default: return -1;
    }
}
