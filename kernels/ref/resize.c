/* Resize kernels over per-axis tap tables (built by the Resize op from the coordinate transform
   and interpolation mode). Work is split over output rows: all dims but the last. */
#include <string.h>

#include "tensor_kernels.h"

#define MAX_RANK 8
/* Output elements of one row accumulated at a time, on the stack. */
#define CHUNK 256

/* Splits row index q into per-axis output coordinates o[0..r-2]; true if any is outside. */
static int row_coords(int64_t q, int r, const oct_resize_axis *axes, int64_t *o) {
    int outside = 0;
    for (int k = r - 2; k >= 0; k--) {
        o[k] = q % axes[k].out_len;
        q /= axes[k].out_len;
        if (axes[k].outside && axes[k].outside[o[k]]) outside = 1;
    }
    return outside;
}

#define NEAREST_ROW(T)                                                                   \
    do {                                                                                 \
        T *d = (T *)out;                                                                 \
        const T *s = (const T *)in;                                                      \
        T f;                                                                             \
        memcpy(&f, fill, sizeof f);                                                      \
        for (int64_t x = 0; x < len; x++) d[x] = out_flag && out_flag[x] ? f : s[idx[x]]; \
    } while (0)

void oct_ref_resize_nearest(const void *src, void *dst, size_t esize, int rank,
                            const oct_resize_axis *axes, const void *fill, int threads) {
    int64_t is[MAX_RANK], rows = 1;
    is[rank - 1] = 1;
    for (int k = rank - 2; k >= 0; k--) is[k] = is[k + 1] * axes[k + 1].in_len;
    for (int k = 0; k < rank - 1; k++) rows *= axes[k].out_len;
    const int64_t len = axes[rank - 1].out_len;
    const int64_t *idx = axes[rank - 1].index;
    const uint8_t *out_flag = axes[rank - 1].outside;
    if (rows == 0 || len == 0) return;
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t q = 0; q < rows; q++) {
        int64_t o[MAX_RANK], off = 0;
        int outside = row_coords(q, rank, axes, o);
        char *out = (char *)dst + (size_t)(q * len) * esize;
        if (outside) {
            for (int64_t x = 0; x < len; x++) memcpy(out + (size_t)x * esize, fill, esize);
            continue;
        }
        for (int k = 0; k < rank - 1; k++) off += axes[k].index[o[k]] * is[k];
        const char *in = (const char *)src + (size_t)off * esize;
        switch (esize) {
        case 1: NEAREST_ROW(uint8_t); break;
        case 2: NEAREST_ROW(uint16_t); break;
        case 4: NEAREST_ROW(uint32_t); break;
        case 8: NEAREST_ROW(uint64_t); break;
        default:
            for (int64_t x = 0; x < len; x++)
                memcpy(out + (size_t)x * esize,
                       out_flag && out_flag[x] ? fill : in + (size_t)idx[x] * esize, esize);
        }
    }
}

void oct_ref_resize_f32(const float *src, float *dst, int rank, const oct_resize_axis *axes,
                        float extrapolation, int threads) {
    int64_t is[MAX_RANK], rows = 1, combos = 1;
    is[rank - 1] = 1;
    for (int k = rank - 2; k >= 0; k--) is[k] = is[k + 1] * axes[k + 1].in_len;
    for (int k = 0; k < rank - 1; k++) {
        rows *= axes[k].out_len;
        combos *= axes[k].taps;
    }
    const oct_resize_axis *last = &axes[rank - 1];
    const int64_t len = last->out_len;
    const int lt = last->taps;
    if (rows == 0 || len == 0) return;
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t q = 0; q < rows; q++) {
        int64_t o[MAX_RANK];
        int outside = row_coords(q, rank, axes, o);
        float *out = dst + q * len;
        if (outside) {
            for (int64_t x = 0; x < len; x++) out[x] = extrapolation;
            continue;
        }
        float acc[CHUNK];
        for (int64_t x0 = 0; x0 < len; x0 += CHUNK) {
            int64_t n = len - x0 < CHUNK ? len - x0 : CHUNK;
            memset(acc, 0, (size_t)n * sizeof(float));
            /* Every combination of the outer axes' taps contributes one weighted input row. */
            for (int64_t c = 0; c < combos; c++) {
                int64_t rem = c, off = 0;
                float w = 1.f;
                for (int k = rank - 2; k >= 0; k--) {
                    int t = (int)(rem % axes[k].taps);
                    rem /= axes[k].taps;
                    int64_t slot = o[k] * axes[k].taps + t;
                    if (axes[k].weight) w *= axes[k].weight[slot];
                    off += axes[k].index[slot] * is[k];
                }
                if (w == 0.f) continue;
                const float *row = src + off;
                for (int64_t x = 0; x < n; x++) {
                    int64_t slot = (x0 + x) * lt;
                    float s = 0.f;
                    for (int t = 0; t < lt; t++)
                        s += (last->weight ? last->weight[slot + t] : 1.f) * row[last->index[slot + t]];
                    acc[x] += w * s;
                }
            }
            for (int64_t x = 0; x < n; x++)
                out[x0 + x] = last->outside && last->outside[x0 + x] ? extrapolation : acc[x];
        }
    }
}
