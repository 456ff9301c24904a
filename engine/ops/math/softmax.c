/* Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1) and
   normalised over the whole trailing block; from 13 on, over the one axis (default -1). */
#include <string.h>

#include "math_ops.h"

typedef struct {
    int64_t outer, len, inner;
    int log_softmax;
} softmax_params;

static int softmax_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->dtype != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s does not support %s input '%s'", n->op_type,
                        octet_dtype_name(x->dtype), x->name);
    if (x->rank < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s input '%s' must have rank >= 1", n->op_type, x->name);
    int coerce_2d = g->opset < 13;
    int64_t axis;
    if (oct_norm_axis(oct_attr_int(n, "axis", coerce_2d ? 1 : -1), x->rank, &axis, err) < 0) return -1;
    softmax_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->outer = oct_math_span(x->dims, 0, (int)axis);
    p->len = coerce_2d ? oct_math_span(x->dims, (int)axis, x->rank) : x->dims[axis];
    p->inner = coerce_2d ? 1 : oct_math_span(x->dims, (int)axis + 1, x->rank);
    p->log_softmax = strcmp(n->op_type, "LogSoftmax") == 0;
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, x->dims);
    return 0;
}

typedef struct {
    const softmax_params *p;
    const float *x;
    float *y;
} softmax_job;

static void softmax_range(const void *arg, int64_t o0, int64_t o1) {
    const softmax_job *j = arg;
    oct_ref_softmax_f32(j->x, j->y, o0, o1, j->p->len, j->p->inner, j->p->log_softmax);
}

static int softmax_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const softmax_params *p = n->params;
    softmax_job j = {p, oct_in(ctx, n, 0)->data, oct_out(ctx, n, 0)->data};
    /* threads split the outer rows; a row is len*inner elements of work */
    int64_t row = p->len * p->inner > 0 ? p->len * p->inner : 1;
    oct_math_parallel(ctx, p->outer, OCT_MATH_GRAIN / row + 1, softmax_range, &j);
    return 0;
}

const oct_op oct_op_softmax = {"", "Softmax", OCT_OP_TEAM, softmax_infer, softmax_run, NULL};
const oct_op oct_op_log_softmax = {"", "LogSoftmax", OCT_OP_TEAM, softmax_infer, softmax_run, NULL};
