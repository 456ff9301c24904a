/* Ops whose output holds the input's bytes unchanged under a new shape: Reshape, Flatten,
   Squeeze, Unsqueeze, Identity, and Dropout in inference mode (identity plus an all-true mask). */
#include "tensor_ops.h"

static int infer_reshape(oct_graph *g, oct_node *n, octet_error *err) {
    bool shape_input = tensor_opset(g) >= 5;
    if (oct_check_inputs(n, shape_input ? 2 : 1, shape_input ? 2 : 1, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t shape[OCTET_MAX_RANK];
    int count = shape_input ? oct_const_ints(g, n, 1, shape, OCTET_MAX_RANK, err)
                            : oct_attr_ints(n, "shape", shape, OCTET_MAX_RANK, err);
    if (count == -1 && !shape_input)
        return oct_fail(err, OCTET_ERR_FORMAT, "attribute 'shape' is missing");
    if (count < 0) return -1;
    bool allowzero = oct_attr_int(n, "allowzero", 0) != 0;
    int64_t in_numel = oct_value_numel(x);
    int64_t out[OCTET_MAX_RANK], known = 1;
    int infer_at = -1;
    bool has_zero = false;
    char buf[160];
    for (int i = 0; i < count; i++) {
        int64_t s = shape[i];
        if (s == -1) {
            if (infer_at >= 0)
                return oct_fail(err, OCTET_ERR_FORMAT, "shape %s has more than one -1",
                                tensor_format_dims(buf, sizeof buf, count, shape));
            infer_at = i;
            continue;
        }
        if (s < -1)
            return oct_fail(err, OCTET_ERR_FORMAT, "shape %s has invalid dim %lld",
                            tensor_format_dims(buf, sizeof buf, count, shape), (long long)s);
        if (s == 0 && !allowzero) {
            if (i >= x->rank)
                return oct_fail(err, OCTET_ERR_SHAPE,
                                "shape %s copies dim %d (0) but the input has rank %d",
                                tensor_format_dims(buf, sizeof buf, count, shape), i, x->rank);
            s = x->dims[i];
        }
        has_zero |= s == 0;
        out[i] = s;
        if (s != 0 && known > INT64_MAX / s)
            return oct_fail(err, OCTET_ERR_SHAPE, "shape %s is too large",
                            tensor_format_dims(buf, sizeof buf, count, shape));
        known *= s;
    }
    if (infer_at >= 0) {
        if (allowzero && has_zero)
            return oct_fail(err, OCTET_ERR_FORMAT, "shape %s mixes -1 with 0 while allowzero=1",
                            tensor_format_dims(buf, sizeof buf, count, shape));
        if (known == 0 || in_numel % known != 0)
            return oct_fail(err, OCTET_ERR_SHAPE, "cannot reshape %lld elements %s into shape %s",
                            (long long)in_numel, tensor_format_dims(buf, sizeof buf, x->rank, x->dims),
                            tensor_format_dims(buf + 80, sizeof buf - 80, count, shape));
        out[infer_at] = in_numel / known;
        known = in_numel;
    }
    if (known != in_numel)
        return oct_fail(err, OCTET_ERR_SHAPE, "cannot reshape %lld elements %s into shape %s",
                        (long long)in_numel, tensor_format_dims(buf, sizeof buf, x->rank, x->dims),
                        tensor_format_dims(buf + 80, sizeof buf - 80, count, out));
    oct_set_output(g, n, 0, x->dtype, count, out);
    return 0;
}

static int infer_flatten(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t axis = oct_attr_int(n, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return oct_fail(err, OCTET_ERR_FORMAT, "axis %lld is out of range for rank %d",
                        (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    int64_t out[2] = {tensor_prod(x->dims, 0, (int)axis), tensor_prod(x->dims, (int)axis, x->rank)};
    oct_set_output(g, n, 0, x->dtype, 2, out);
    return 0;
}

static int infer_squeeze(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 2, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t axes[OCTET_MAX_RANK];
    int count = tensor_read_axes(g, n, 1, 13, "axes", axes, OCTET_MAX_RANK, err);
    if (count == -2) return -1;
    bool drop[OCTET_MAX_RANK] = {false};
    if (count < 0) {
        for (int d = 0; d < x->rank; d++) drop[d] = x->dims[d] == 1;
    } else {
        if (tensor_norm_axes(axes, count, x->rank, err)) return -1;
        for (int i = 0; i < count; i++) {
            if (x->dims[axes[i]] != 1)
                return oct_fail(err, OCTET_ERR_SHAPE, "cannot squeeze axis %lld of size %lld",
                                (long long)axes[i], (long long)x->dims[axes[i]]);
            drop[axes[i]] = true;
        }
    }
    int64_t out[OCTET_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (!drop[d]) out[r++] = x->dims[d];
    oct_set_output(g, n, 0, x->dtype, r, out);
    return 0;
}

static int infer_unsqueeze(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 2, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t axes[OCTET_MAX_RANK];
    int count = tensor_read_axes(g, n, 1, 13, "axes", axes, OCTET_MAX_RANK, err);
    if (count == -2) return -1;
    if (count < 0) return oct_fail(err, OCTET_ERR_FORMAT, "axes are required");
    int rank = x->rank + count;
    if (rank > OCTET_MAX_RANK)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, OCTET_MAX_RANK);
    if (tensor_norm_axes(axes, count, rank, err)) return -1;
    bool inserted[OCTET_MAX_RANK] = {false};
    for (int i = 0; i < count; i++) inserted[axes[i]] = true;
    int64_t out[OCTET_MAX_RANK];
    for (int d = 0, src = 0; d < rank; d++) out[d] = inserted[d] ? 1 : x->dims[src++];
    oct_set_output(g, n, 0, x->dtype, rank, out);
    return 0;
}

static int infer_identity(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    oct_set_output(g, n, 0, x->dtype, x->rank, x->dims);
    return 0;
}

static bool dropout_has_mask(const oct_node *n) {
    return n->n_out >= 2 && n->out[1] >= 0;
}

static int infer_dropout(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 3, err)) return -1;
    if (n->n_out < 1 || n->n_out > 2)
        return oct_fail(err, OCTET_ERR_FORMAT, "expects 1 or 2 outputs, has %d", n->n_out);
    if (oct_node_has_input(n, 2)) {
        /* training_mode: only a constant false keeps the op an identity. */
        const oct_value *t = oct_in_val(g, n, 2);
        if (t->kind != OCT_VAL_CONST || !t->data || t->dtype != OCTET_BOOL || oct_value_numel(t) != 1)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                            "training_mode must be a constant bool scalar (octet runs inference only)");
        if (*(const uint8_t *)t->data)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "training_mode=true is not supported");
    }
    const oct_value *x = oct_in_val(g, n, 0);
    oct_set_output(g, n, 0, x->dtype, x->rank, x->dims);
    /* The mask became bool in opset 10; before that it had the input's type. */
    if (dropout_has_mask(n))
        oct_set_output(g, n, 1, tensor_opset(g) >= 10 ? OCTET_BOOL : x->dtype, x->rank, x->dims);
    return 0;
}

static int run_dropout(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    if (tensor_run_copy(ctx, n, err)) return -1;
    if (!dropout_has_mask(n)) return 0;
    oct_tensor *mask = oct_out(ctx, n, 1);
    union { float f; int32_t i32; int64_t i64; uint8_t u8; } one;
    switch (mask->dtype) {
    case OCTET_FLOAT: one.f = 1.f; break;
    case OCTET_INT32: one.i32 = 1; break;
    case OCTET_INT64: one.i64 = 1; break;
    default: one.u8 = 1; break;
    }
    int64_t numel = octet_tensor_numel(mask);
    tensor_fill_elems(mask->data, &one, numel > 0 ? numel : 0, octet_dtype_size(mask->dtype));
    return 0;
}

const oct_op oct_op_reshape = {"", "Reshape", OCT_OP_TEAM, infer_reshape, tensor_run_copy, NULL};
const oct_op oct_op_flatten = {"", "Flatten", OCT_OP_TEAM, infer_flatten, tensor_run_copy, NULL};
const oct_op oct_op_squeeze = {"", "Squeeze", OCT_OP_TEAM, infer_squeeze, tensor_run_copy, NULL};
const oct_op oct_op_unsqueeze = {"", "Unsqueeze", OCT_OP_TEAM, infer_unsqueeze, tensor_run_copy, NULL};
const oct_op oct_op_identity = {"", "Identity", OCT_OP_TEAM, infer_identity, tensor_run_copy, NULL};
const oct_op oct_op_dropout = {"", "Dropout", OCT_OP_TEAM, infer_dropout, run_dropout, NULL};
