/* TopK along one axis of x viewed as [outer, len, inner]. Each slice's indices are merge-sorted
   (stable, so equal values keep the lower index first, as ONNX asks) and the first k kept. */
#include <string.h>

#include "math_kernels.h"

size_t oct_topk_scratch_bytes(int64_t len) {
    return 2 * (size_t)(len > 0 ? len : 0) * sizeof(int64_t);
}

/* BEFORE(a, b): value a belongs strictly before value b in the output order. */
#define TOPK(S, T)                                                                                 \
    static void topk_##S(const T *x, T *vals, int64_t *out_idx, int64_t outer, int64_t len,        \
                         int64_t inner, int64_t k, int largest, int64_t *idx, int64_t *tmp) {      \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                const T *xs = x + o * len * inner + i;                                             \
                for (int64_t r = 0; r < len; r++) idx[r] = r;                                      \
                int64_t *src = idx, *dst = tmp;                                                    \
                for (int64_t w = 1; w < len; w *= 2) { /* bottom-up merge sort */                  \
                    for (int64_t lo = 0; lo < len; lo += 2 * w) {                                  \
                        int64_t mid = lo + w < len ? lo + w : len;                                 \
                        int64_t hi = lo + 2 * w < len ? lo + 2 * w : len;                          \
                        int64_t p = lo, q = mid, d = lo;                                           \
                        while (p < mid && q < hi) {                                                \
                            T a = xs[src[q] * inner], b = xs[src[p] * inner];                      \
                            int take_q = largest ? a > b : a < b;                                  \
                            dst[d++] = take_q ? src[q++] : src[p++];                               \
                        }                                                                          \
                        while (p < mid) dst[d++] = src[p++];                                       \
                        while (q < hi) dst[d++] = src[q++];                                        \
                    }                                                                              \
                    int64_t *t = src;                                                              \
                    src = dst;                                                                     \
                    dst = t;                                                                       \
                }                                                                                  \
                for (int64_t r = 0; r < k; r++) {                                                  \
                    vals[(o * k + r) * inner + i] = xs[src[r] * inner];                            \
                    if (out_idx) out_idx[(o * k + r) * inner + i] = src[r];                        \
                }                                                                                  \
            }                                                                                      \
    }
TOPK(f32, float)
TOPK(i32, int32_t)
TOPK(i64, int64_t)
TOPK(i8, int8_t)
TOPK(u8, uint8_t)

int oct_ref_topk(octet_dtype dt, const void *x, void *values, int64_t *indices, int64_t outer,
                 int64_t len, int64_t inner, int64_t k, int largest, void *scratch) {
    if (k < 0 || k > len) return -1;
    int64_t *idx = scratch, *tmp = idx + len;
    switch (dt) {
    case OCTET_FLOAT: topk_f32(x, values, indices, outer, len, inner, k, largest, idx, tmp); return 0;
    case OCTET_INT32: topk_i32(x, values, indices, outer, len, inner, k, largest, idx, tmp); return 0;
    case OCTET_INT64: topk_i64(x, values, indices, outer, len, inner, k, largest, idx, tmp); return 0;
    case OCTET_INT8: topk_i8(x, values, indices, outer, len, inner, k, largest, idx, tmp); return 0;
    case OCTET_UINT8: topk_u8(x, values, indices, outer, len, inner, k, largest, idx, tmp); return 0;
    default: return -1;
    }
}
