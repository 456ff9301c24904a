/* Expand: broadcast the input to a shape (numpy rules, both ways), as a view with zero strides
   on the broadcast dims. */
#include "tensor_ops.h"

static int infer_expand(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 2, 2, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t shape[OCTET_MAX_RANK], out[OCTET_MAX_RANK];
    int count = oct_const_ints(g, n, 1, shape, OCTET_MAX_RANK, err);
    if (count < 0) return -1;
    for (int i = 0; i < count; i++)
        if (shape[i] < 0)
            return oct_fail(err, OCTET_ERR_FORMAT, "shape has negative dim %lld", (long long)shape[i]);
    int rank;
    if (oct_broadcast_shape(x->rank, x->dims, count, shape, &rank, out, err)) return -1;
    if (tensor_check_shape(rank, out, x->dtype, "output", err)) return -1;
    oct_set_output(g, n, 0, x->dtype, rank, out);
    return 0;
}

static int run_expand(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    int64_t strides[OCTET_MAX_RANK], stride = 1;
    int lead = y->rank - x->rank;
    for (int d = y->rank - 1; d >= 0; d--) {
        int xd = d - lead;
        bool broadcast = xd < 0 || (x->dims[xd] == 1 && y->dims[d] != 1);
        strides[d] = broadcast ? 0 : stride;
        if (xd >= 0) stride *= x->dims[xd];
    }
    int64_t numel = octet_tensor_numel(y);
    tensor_view_copy(ctx, y->data, x->data, es, y->rank, y->dims, strides,
                     tensor_threads(ctx, (size_t)(numel > 0 ? numel : 0) * es));
    return 0;
}

const oct_op oct_op_expand = {"", "Expand", OCT_OP_TEAM, infer_expand, run_expand, NULL};
