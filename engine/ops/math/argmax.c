/* ArgMax along one axis: int64 indices, keepdims (default 1) and select_last_index (default 0). */
#include "math_ops.h"

typedef struct {
    int64_t outer, len, inner;
    int select_last;
} argmax_params;

static int argmax_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (!oct_math_is_numeric(x->dtype))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "ArgMax does not support %s input '%s'",
                        octet_dtype_name(x->dtype), x->name);
    if (x->rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "ArgMax input '%s' must have rank >= 1", x->name);
    int64_t axis;
    if (oct_norm_axis(oct_attr_int(n, "axis", 0), x->rank, &axis, err) < 0) return -1;
    if (x->dims[axis] == 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "ArgMax over axis %lld of '%s', which is empty", (long long)axis, x->name);
    argmax_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->outer = oct_math_span(x->dims, 0, (int)axis);
    p->len = x->dims[axis];
    p->inner = oct_math_span(x->dims, (int)axis + 1, x->rank);
    p->select_last = oct_attr_int(n, "select_last_index", 0) != 0;
    int64_t dims[OCTET_MAX_RANK];
    int r = 0;
    int keep = oct_attr_int(n, "keepdims", 1) != 0;
    for (int d = 0; d < x->rank; d++) {
        if (d != axis) dims[r++] = x->dims[d];
        else if (keep) dims[r++] = 1;
    }
    oct_set_output(g, n, 0, OCTET_INT64, r, dims);
    return 0;
}

typedef struct {
    const argmax_params *p;
    octet_dtype dt;
    const void *x;
    int64_t *y;
} argmax_job;

static void argmax_range(const void *arg, int64_t o0, int64_t o1) {
    const argmax_job *j = arg;
    oct_ref_argmax(j->dt, j->x, j->y, o0, o1, j->p->len, j->p->inner, j->p->select_last);
}

static int argmax_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const argmax_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    argmax_job j = {p, x->dtype, x->data, oct_out(ctx, n, 0)->data};
    int64_t row = p->len * p->inner > 0 ? p->len * p->inner : 1;
    oct_math_parallel(ctx, p->outer, OCT_MATH_GRAIN / row + 1, argmax_range, &j);
    return 0;
}

const oct_op oct_op_argmax = {"", "ArgMax", OCT_OP_TEAM, argmax_infer, argmax_run, NULL};
