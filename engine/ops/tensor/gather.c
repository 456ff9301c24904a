/* Gather along an axis with int32/int64 indices. Negative indices count from the end. Indices
   may be computed at run time, so every index is checked before any byte is read: an index out
   of range is an error, never an out-of-bounds read. */
#include "tensor_ops.h"

static int infer_gather(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 2, 2, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0), *idx = oct_in_val(g, n, 1);
    if (idx->dtype != OCTET_INT64 && idx->dtype != OCTET_INT32)
        return oct_fail(err, OCTET_ERR_FORMAT, "indices must be int32 or int64, are %s",
                        octet_dtype_name(idx->dtype));
    if (x->rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "cannot gather from a scalar");
    int64_t axis;
    if (oct_norm_axis(oct_attr_int(n, "axis", 0), x->rank, &axis, err)) return -1;
    int rank = x->rank - 1 + idx->rank;
    if (rank > OCTET_MAX_RANK)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, OCTET_MAX_RANK);
    int64_t out[OCTET_MAX_RANK];
    int r = 0;
    for (int d = 0; d < axis; d++) out[r++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) out[r++] = idx->dims[d];
    for (int d = (int)axis + 1; d < x->rank; d++) out[r++] = x->dims[d];
    if (tensor_check_shape(rank, out, x->dtype, "output", err)) return -1;
    oct_set_output(g, n, 0, x->dtype, rank, out);
    return 0;
}

static int run_gather(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const oct_tensor *x = oct_in(ctx, n, 0), *idx = oct_in(ctx, n, 1);
    oct_tensor *y = oct_out(ctx, n, 0);
    int64_t axis = oct_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    int64_t dim = x->dims[axis], nidx = octet_tensor_numel(idx);
    for (int64_t i = 0; i < nidx; i++) {
        int64_t v = idx->dtype == OCTET_INT64 ? ((const int64_t *)idx->data)[i]
                                              : ((const int32_t *)idx->data)[i];
        if (v < -dim || v >= dim)
            return oct_fail(err, OCTET_ERR_ARG,
                            "index %lld (at position %lld) is out of range for axis %lld of size %lld",
                            (long long)v, (long long)i, (long long)axis, (long long)dim);
    }
    size_t es = octet_dtype_size(x->dtype);
    int64_t outer = tensor_prod(x->dims, 0, (int)axis);
    size_t inner = (size_t)tensor_prod(x->dims, (int)axis + 1, x->rank) * es;
    int64_t tasks = outer * nidx;
    if (tasks == 0 || inner == 0) return 0;
    const char *src = x->data;
    char *dst = y->data;
    int threads = tensor_threads(ctx, (size_t)tasks * inner);
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nidx, i = t % nidx;
        int64_t v = idx->dtype == OCTET_INT64 ? ((const int64_t *)idx->data)[i]
                                              : ((const int32_t *)idx->data)[i];
        if (v < 0) v += dim;
        memcpy(dst + (size_t)t * inner, src + ((size_t)o * (size_t)dim + (size_t)v) * inner, inner);
    }
    return 0;
}

const oct_op oct_op_gather = {"", "Gather", 0, infer_gather, run_gather, NULL};
