/* Cast among float32, int8, uint8, int32, int64 and bool (attribute `to`). */
#include "math_ops.h"

typedef struct {
    octet_dtype to;
} cast_params;

static int supported(int64_t dt) {
    return dt == OCTET_FLOAT || dt == OCTET_INT8 || dt == OCTET_UINT8 || dt == OCTET_INT32 ||
           dt == OCTET_INT64 || dt == OCTET_BOOL;
}

static int cast_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (!oct_node_attr(n, "to")) return oct_fail(err, OCTET_ERR_FORMAT, "Cast needs attribute 'to'");
    int64_t to = oct_attr_int(n, "to", 0);
    if (!supported(to))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "Cast to ONNX dtype %lld is not supported", (long long)to);
    if (!supported(x->dtype))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "Cast from the dtype of '%s' is not supported", x->name);
    cast_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->to = (octet_dtype)to;
    oct_set_output(g, n, 0, p->to, x->rank, x->dims);
    return 0;
}

typedef struct {
    octet_dtype from, to;
    const void *x;
    void *y;
} cast_job;

static void cast_range(const void *arg, int64_t b, int64_t e) {
    const cast_job *j = arg;
    oct_ref_cast(j->from, j->to, (const char *)j->x + b * (int64_t)octet_dtype_size(j->from),
                 (char *)j->y + b * (int64_t)octet_dtype_size(j->to), (size_t)(e - b));
}

static int cast_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const cast_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    cast_job j = {x->dtype, p->to, x->data, oct_out(ctx, n, 0)->data};
    oct_math_parallel(ctx, octet_tensor_numel(x), OCT_MATH_GRAIN, cast_range, &j);
    return 0;
}

const oct_op oct_op_cast = {"", "Cast", OCT_OP_TEAM, cast_infer, cast_run, NULL};
