/* Helpers shared by the tensor op family. */
#include <stdio.h>
#include <stdlib.h>

#include "tensor_ops.h"
#include "team.h"

/* The newest opset whose semantics this family implements. */
#define TENSOR_NEWEST_OPSET 17

int tensor_opset(const oct_graph *g) {
    return g->opset > 0 ? (int)g->opset : TENSOR_NEWEST_OPSET;
}

void tensor_set_params(oct_node *n, void *params) {
    if (n->params) {
        if (n->op && n->op->free_params) n->op->free_params(n->params);
        else free(n->params);
    }
    n->params = params;
}

int tensor_check_shape(int rank, const int64_t *dims, octet_dtype dtype, const char *what,
                       octet_error *err) {
    if (rank < 0 || rank > OCTET_MAX_RANK)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s would have rank %d, at most %d supported",
                        what, rank, OCTET_MAX_RANK);
    /* Keep byte sizes well inside int64/size_t so offsets computed later cannot overflow. */
    const int64_t limit = INT64_MAX / 16;
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return oct_fail(err, OCTET_ERR_SHAPE, "%s would have negative dim %lld at axis %d", what,
                            (long long)dims[i], i);
        if (dims[i] != 0 && numel > limit / dims[i])
            return oct_fail(err, OCTET_ERR_NOMEM, "%s is too large (element count overflows)", what);
        numel *= dims[i];
    }
    size_t es = octet_dtype_size(dtype);
    if (es && numel > limit / (int64_t)es)
        return oct_fail(err, OCTET_ERR_NOMEM, "%s is too large (byte size overflows)", what);
    return 0;
}

int tensor_check_dtype(octet_dtype dtype, const char *what, octet_error *err) {
    if (octet_dtype_size(dtype) == 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s has unsupported dtype %d", what, (int)dtype);
    return 0;
}

const char *tensor_format_dims(char *buf, size_t size, int rank, const int64_t *dims) {
    size_t used = 0;
    buf[0] = 0;
    used += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (used < size) snprintf(buf + used, size - used, ")");
    return buf;
}

static double clamp_to(double v, double lo, double hi) {
    return v != v ? 0.0 : (v < lo ? lo : (v > hi ? hi : v));
}

void tensor_from_float(float v, octet_dtype dt, void *out) {
    switch (dt) {
    case OCTET_FLOAT: *(float *)out = v; break;
    case OCTET_INT32: *(int32_t *)out = (int32_t)clamp_to(v, INT32_MIN, INT32_MAX); break;
    /* 2^63 is not representable in int64; the largest double below it is. */
    case OCTET_INT64: *(int64_t *)out = (int64_t)clamp_to(v, -9223372036854775808.0, 9223372036854774784.0); break;
    case OCTET_INT8: *(int8_t *)out = (int8_t)clamp_to(v, -128, 127); break;
    case OCTET_UINT8: *(uint8_t *)out = (uint8_t)clamp_to(v, 0, 255); break;
    case OCTET_BOOL: *(uint8_t *)out = v != 0.f; break;
    }
}

int64_t tensor_prod(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
}

int tensor_read_axes(oct_graph *g, const oct_node *n, int input, int input_since, const char *attr,
                     int64_t *axes, int max, octet_error *err) {
    if (tensor_opset(g) >= input_since) {
        /* An empty axes tensor counts as absent, as in ONNX Runtime. */
        if (!oct_node_has_input(n, input) || oct_value_numel(&g->values[n->in[input]]) == 0) return -1;
        int c = oct_const_ints(g, n, input, axes, max, err);
        return c < 0 ? -2 : c;
    }
    int c = oct_attr_ints(n, attr, axes, max, err);
    return c == -2 ? -2 : c;
}

int tensor_norm_axes(int64_t *axes, int count, int rank, octet_error *err) {
    for (int i = 0; i < count; i++) {
        if (oct_norm_axis(axes[i], rank, &axes[i], err)) return -1;
        for (int j = 0; j < i; j++)
            if (axes[j] == axes[i])
                return oct_fail(err, OCTET_ERR_FORMAT, "axis %lld is given twice", (long long)axes[i]);
    }
    return 0;
}

typedef struct {
    char *dst;
    const char *src;
    size_t bytes;
} copy_job;

static void copy_part(void *arg, int tid, int nthreads) {
    const copy_job *j = arg;
    int64_t lo, hi;
    oct_static_range((int64_t)j->bytes, tid, nthreads, &lo, &hi);
    if (hi > lo) memcpy(j->dst + lo, j->src + lo, (size_t)(hi - lo));
}

void tensor_copy(const oct_run_ctx *ctx, void *dst, const void *src, size_t bytes, int threads) {
    if (dst == src || bytes == 0) return;
    if (threads <= 1 || bytes < TENSOR_PARALLEL_BYTES) {
        memcpy(dst, src, bytes);
        return;
    }
    copy_job j = {dst, src, bytes};
    oct_parallel(ctx, threads, copy_part, &j);
}

/* One loop per element size so the compiler emits plain loads and stores, not memcpy calls. */
#define GATHER_LOOP(T)                                                              \
    do {                                                                            \
        T *d = dst;                                                                 \
        const T *s = src;                                                           \
        for (int64_t i = 0; i < n; i++) d[i] = s[i * src_step];                     \
    } while (0)

void tensor_gather_elems(void *dst, const void *src, int64_t n, size_t esize, int64_t src_step) {
    if (src_step == 1) {
        memcpy(dst, src, (size_t)n * esize);
        return;
    }
    switch (esize) {
    case 1: GATHER_LOOP(uint8_t); break;
    case 2: GATHER_LOOP(uint16_t); break;
    case 4: GATHER_LOOP(uint32_t); break;
    case 8: GATHER_LOOP(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * (int64_t)esize, (const char *)src + i * src_step * (int64_t)esize,
                   esize);
    }
}

#define FILL_LOOP(T)                                                                \
    do {                                                                            \
        T *d = dst, v;                                                              \
        memcpy(&v, value, sizeof v);                                                \
        for (int64_t i = 0; i < n; i++) d[i] = v;                                   \
    } while (0)

void tensor_fill_elems(void *dst, const void *value, int64_t n, size_t esize) {
    switch (esize) {
    case 1: memset(dst, *(const uint8_t *)value, (size_t)n); break;
    case 2: FILL_LOOP(uint16_t); break;
    case 4: FILL_LOOP(uint32_t); break;
    case 8: FILL_LOOP(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy((char *)dst + i * (int64_t)esize, value, esize);
    }
}

int tensor_run_copy(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    int64_t numel = octet_tensor_numel(x);
    size_t bytes = (size_t)(numel > 0 ? numel : 0) * octet_dtype_size(x->dtype);
    tensor_copy(ctx, y->data, x->data, bytes, tensor_threads(ctx, bytes));
    return 0;
}

typedef struct {
    void *dst;
    const void *src;
    size_t esize;
    int r;
    const int64_t *d, *st;
    int64_t row, step;
    size_t row_bytes;
} view_job;

/* Output row q of a view copy (see tensor_view_copy). */
static void view_row(void *arg, int64_t q, int tid) {
    (void)tid;
    const view_job *j = arg;
    int64_t rem = q, off = 0;
    for (int k = j->r - 2; k >= 0; k--) {
        off += (rem % j->d[k]) * j->st[k];
        rem /= j->d[k];
    }
    char *out = (char *)j->dst + (size_t)q * j->row_bytes;
    const char *in = (const char *)j->src + off * (int64_t)j->esize;
    if (j->step == 0) tensor_fill_elems(out, in, j->row, j->esize);
    else tensor_gather_elems(out, in, j->row, j->esize, j->step);
}

void tensor_view_copy(const oct_run_ctx *ctx, void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                      const int64_t *src_strides, int threads) {
    int64_t d[TENSOR_VIEW_MAX_RANK], st[TENSOR_VIEW_MAX_RANK];
    int r = 0;
    int64_t total = 1;
    for (int k = 0; k < rank; k++) {
        total *= dims[k];
        if (dims[k] == 1) continue;
        /* Merge into the previous dim when the pair walks src as one dim would. */
        if (r > 0 && st[r - 1] == src_strides[k] * dims[k]) {
            d[r - 1] *= dims[k];
            st[r - 1] = src_strides[k];
            continue;
        }
        d[r] = dims[k];
        st[r] = src_strides[k];
        r++;
    }
    if (total == 0) return;
    if (r == 0) {
        memcpy(dst, src, esize);
        return;
    }
    int64_t row = d[r - 1], step = st[r - 1], rows = total / row;
    size_t row_bytes = (size_t)row * esize;
    view_job j = {dst, src, esize, r, d, st, row, step, row_bytes};
    oct_parallel_for(ctx, threads, rows, view_row, &j);
}
