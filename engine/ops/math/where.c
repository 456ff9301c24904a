/* Where(cond, X, Y) with numpy broadcasting over all three; X and Y of any one dtype. */
#include "math_ops.h"

static int where_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 3, 3, err) < 0) return -1;
    const oct_value *c = oct_in_val(g, n, 0), *x = oct_in_val(g, n, 1), *y = oct_in_val(g, n, 2);
    if (c->dtype != OCTET_BOOL)
        return oct_fail(err, OCTET_ERR_SHAPE, "Where condition '%s' must be bool, is %s", c->name,
                        octet_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return oct_fail(err, OCTET_ERR_SHAPE, "Where X '%s' is %s but Y '%s' is %s", x->name,
                        octet_dtype_name(x->dtype), y->name, octet_dtype_name(y->dtype));
    if (octet_dtype_size(x->dtype) == 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "Where does not support the dtype of '%s'", x->name);
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    if (oct_math_infer_bcast(g, n, 3, &rank, dims, err) < 0) return -1;
    oct_set_output(g, n, 0, x->dtype, rank, dims);
    return 0;
}

typedef struct {
    const oct_bcast *bc;
    size_t elsize;
    const void *c, *x, *y;
    void *out;
} where_job;

static void where_range(const void *arg, int64_t b, int64_t e) {
    const where_job *j = arg;
    oct_ref_where(j->elsize, j->bc, j->c, j->x, j->y, j->out, b, e);
}

static int where_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const oct_tensor *ins[3] = {oct_in(ctx, n, 0), oct_in(ctx, n, 1), oct_in(ctx, n, 2)};
    oct_tensor *out = oct_out(ctx, n, 0);
    oct_bcast bc;
    if (oct_math_bcast(&bc, out, 3, ins, err) < 0) return -1;
    where_job j = {&bc, octet_dtype_size(out->dtype), ins[0]->data, ins[1]->data, ins[2]->data, out->data};
    oct_math_parallel(ctx, oct_bcast_numel(&bc), OCT_MATH_GRAIN, where_range, &j);
    return 0;
}

const oct_op oct_op_where = {"", "Where", OCT_OP_TEAM, where_infer, where_run, NULL};
