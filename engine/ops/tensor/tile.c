/* Tile: repeat the input along each axis. Output axis d of size r*n is laid out as an (r, n)
   pair, so the copy is a view of rank 2*rank with a zero stride on every repeat dim. */
#include "tensor_ops.h"

static int infer_tile(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 2, 2, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t repeats[OCTET_MAX_RANK], out[OCTET_MAX_RANK];
    int count = oct_const_ints(g, n, 1, repeats, OCTET_MAX_RANK, err);
    if (count < 0) return -1;
    if (count != x->rank)
        return oct_fail(err, OCTET_ERR_FORMAT, "repeats has %d values for an input of rank %d", count,
                        x->rank);
    for (int d = 0; d < count; d++) {
        if (repeats[d] < 0)
            return oct_fail(err, OCTET_ERR_FORMAT, "repeat %lld of axis %d is negative",
                            (long long)repeats[d], d);
        if (repeats[d] != 0 && x->dims[d] > INT64_MAX / repeats[d])
            return oct_fail(err, OCTET_ERR_NOMEM, "output is too large");
        out[d] = x->dims[d] * repeats[d];
    }
    if (tensor_check_shape(count, out, x->dtype, "output", err)) return -1;
    oct_set_output(g, n, 0, x->dtype, count, out);
    return 0;
}

static int run_tile(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    int64_t dims[TENSOR_VIEW_MAX_RANK], strides[TENSOR_VIEW_MAX_RANK], stride = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        dims[2 * d] = x->dims[d] ? y->dims[d] / x->dims[d] : 0;
        strides[2 * d] = 0;
        dims[2 * d + 1] = x->dims[d];
        strides[2 * d + 1] = stride;
        stride *= x->dims[d];
    }
    int64_t numel = octet_tensor_numel(y);
    tensor_view_copy(ctx, y->data, x->data, es, 2 * x->rank, dims, strides,
                     tensor_threads(ctx, (size_t)(numel > 0 ? numel : 0) * es));
    return 0;
}

const oct_op oct_op_tile = {"", "Tile", OCT_OP_TEAM, infer_tile, run_tile, NULL};
