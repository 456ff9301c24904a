/* numpy broadcasting: planning the strided walk, the walker shared by the broadcasting kernels,
   and the two byte-moving kernels (broadcast copy, Where). */
#include <string.h>

#include "bcast_walk.h"

int oct_bcast_plan(oct_bcast *bc, int out_rank, const int64_t *out_dims, int n_in, const int *ranks,
                   const int64_t *const *dims) {
    if (out_rank < 0 || out_rank > OCTET_MAX_RANK || n_in < 1 || n_in > OCT_BCAST_MAX_IN) return -1;
    memset(bc, 0, sizeof *bc);
    bc->n_in = n_in;
    int64_t st[OCT_BCAST_MAX_IN][OCTET_MAX_RANK];
    for (int i = 0; i < n_in; i++) {
        int ri = ranks[i];
        if (ri < 0 || ri > out_rank) return -1;
        int64_t stride = 1;
        for (int d = out_rank - 1; d >= 0; d--) {
            int di = d - (out_rank - ri);
            int64_t len = di >= 0 ? dims[i][di] : 1;
            if (len != out_dims[d] && len != 1) return -1;
            st[i][d] = len == 1 ? 0 : stride;
            stride *= len;
        }
    }
    /* Drop size-1 dims (nothing to walk) and merge a dim into the previous kept one when every
       input steps through the pair as one run. */
    int r = 0;
    for (int d = 0; d < out_rank; d++) {
        if (out_dims[d] == 1) continue;
        int merge = r > 0;
        for (int i = 0; i < n_in && merge; i++)
            merge = bc->strides[i][r - 1] == st[i][d] * out_dims[d];
        if (merge) {
            bc->dims[r - 1] *= out_dims[d];
            for (int i = 0; i < n_in; i++) bc->strides[i][r - 1] = st[i][d];
        } else {
            bc->dims[r] = out_dims[d];
            for (int i = 0; i < n_in; i++) bc->strides[i][r] = st[i][d];
            r++;
        }
    }
    if (r == 0) {
        bc->dims[0] = 1;
        r = 1;
    }
    bc->rank = r;
    return 0;
}

int64_t oct_bcast_numel(const oct_bcast *bc) {
    int64_t n = 1;
    for (int d = 0; d < bc->rank; d++) n *= bc->dims[d];
    return n;
}

void oct_bcast_walk(const oct_bcast *bc, const void *const *in, const size_t *elsize, void *y,
                    size_t y_elsize, int64_t begin, int64_t end, oct_bcast_run_fn run,
                    const void *ctx) {
    if (begin >= end) return;
    const int r = bc->rank, n_in = bc->n_in;
    int64_t idx[OCTET_MAX_RANK];
    int64_t off[OCT_BCAST_MAX_IN] = {0};
    int64_t rem = begin;
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = rem % bc->dims[d];
        rem /= bc->dims[d];
        for (int i = 0; i < n_in; i++) off[i] += idx[d] * bc->strides[i][d];
    }
    int64_t inner_stride[OCT_BCAST_MAX_IN];
    for (int i = 0; i < n_in; i++) inner_stride[i] = bc->strides[i][r - 1];
    const void *ptr[OCT_BCAST_MAX_IN];
    for (int64_t pos = begin; pos < end;) {
        int64_t n = bc->dims[r - 1] - idx[r - 1];
        if (n > end - pos) n = end - pos;
        for (int i = 0; i < n_in; i++) ptr[i] = (const char *)in[i] + off[i] * (int64_t)elsize[i];
        run(ctx, ptr, inner_stride, (char *)y + pos * (int64_t)y_elsize, n);
        pos += n;
        idx[r - 1] += n;
        for (int i = 0; i < n_in; i++) off[i] += n * inner_stride[i];
        /* carry into the outer dims */
        for (int d = r - 1; d > 0 && idx[d] == bc->dims[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int i = 0; i < n_in; i++)
                off[i] += bc->strides[i][d - 1] - bc->dims[d] * bc->strides[i][d];
        }
    }
}

#define COPY_RUN(T)                                                                                \
    static void copy_run_##T(const void *ctx, const void *const *in, const int64_t *s, void *py,   \
                             int64_t n) {                                                          \
        (void)ctx;                                                                                 \
        const T *x = in[0];                                                                        \
        T *y = py;                                                                                 \
        if (s[0] == 1) {                                                                           \
            memcpy(y, x, (size_t)n * sizeof(T));                                                   \
        } else {                                                                                   \
            for (int64_t j = 0; j < n; j++) y[j] = x[j * s[0]];                                    \
        }                                                                                          \
    }
#define WHERE_RUN(T)                                                                               \
    static void where_run_##T(const void *ctx, const void *const *in, const int64_t *s, void *py,  \
                             int64_t n) {                                                          \
        (void)ctx;                                                                                 \
        const uint8_t *c = in[0];                                                                  \
        const T *a = in[1], *b = in[2];                                                            \
        T *y = py;                                                                                 \
        if (s[0] == 1 && s[1] == 1 && s[2] == 1) {                                                 \
            for (int64_t j = 0; j < n; j++) y[j] = c[j] ? a[j] : b[j];                             \
        } else {                                                                                   \
            for (int64_t j = 0; j < n; j++) y[j] = c[j * s[0]] ? a[j * s[1]] : b[j * s[2]];        \
        }                                                                                          \
    }
COPY_RUN(uint8_t)
COPY_RUN(uint32_t)
COPY_RUN(uint64_t)
WHERE_RUN(uint8_t)
WHERE_RUN(uint32_t)
WHERE_RUN(uint64_t)

void oct_ref_bcast_copy(size_t elsize, const oct_bcast *bc, const void *x, void *y, int64_t begin,
                        int64_t end) {
    const void *in[1] = {x};
    size_t es[1] = {elsize};
    oct_bcast_run_fn f = elsize == 1   ? copy_run_uint8_t
                         : elsize == 4 ? copy_run_uint32_t
                                       : copy_run_uint64_t;
    oct_bcast_walk(bc, in, es, y, elsize, begin, end, f, NULL);
}

void oct_ref_where(size_t elsize, const oct_bcast *bc, const uint8_t *cond, const void *x,
                   const void *y, void *out, int64_t begin, int64_t end) {
    const void *in[3] = {cond, x, y};
    size_t es[3] = {1, elsize, elsize};
    oct_bcast_run_fn f = elsize == 1   ? where_run_uint8_t
                         : elsize == 4 ? where_run_uint32_t
                                       : where_run_uint64_t;
    oct_bcast_walk(bc, in, es, out, elsize, begin, end, f, NULL);
}
