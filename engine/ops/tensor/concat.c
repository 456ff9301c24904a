/* Concat along any axis (negative counts from the end): each output row of the dims before the
   axis is the inputs' contiguous runs laid side by side, so the copy is one memcpy per input
   per row. An input the memory plan placed inside the output (engine/memplan.c, Concat elision)
   is already where it belongs and is not copied. */
#include "tensor_ops.h"
#include "team.h"

static int infer_concat(oct_graph *g, oct_node *n, octet_error *err) {
    if (n->n_in < 1) return oct_fail(err, OCTET_ERR_FORMAT, "expects at least 1 input");
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] < 0) return oct_fail(err, OCTET_ERR_FORMAT, "input %d is missing", i);
    const oct_attr *a = oct_node_attr(n, "axis");
    if (!a && tensor_opset(g) >= 4) return oct_fail(err, OCTET_ERR_FORMAT, "attribute 'axis' is missing");
    const oct_value *x0 = oct_in_val(g, n, 0);
    if (x0->rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "cannot concatenate scalars");
    int64_t axis;
    if (oct_norm_axis(a ? a->i : 1, x0->rank, &axis, err)) return -1;
    int64_t out[OCTET_MAX_RANK];
    for (int d = 0; d < x0->rank; d++) out[d] = x0->dims[d];
    out[axis] = 0;
    char b0[160], b1[160];
    for (int i = 0; i < n->n_in; i++) {
        const oct_value *x = oct_in_val(g, n, i);
        if (x->dtype != x0->dtype)
            return oct_fail(err, OCTET_ERR_SHAPE, "input %d is %s but input 0 is %s", i,
                            octet_dtype_name(x->dtype), octet_dtype_name(x0->dtype));
        bool same = x->rank == x0->rank;
        for (int d = 0; same && d < x->rank; d++) same = d == axis || x->dims[d] == x0->dims[d];
        if (!same)
            return oct_fail(err, OCTET_ERR_SHAPE, "input %d has shape %s, input 0 %s: they differ "
                            "outside axis %lld", i, tensor_format_dims(b0, sizeof b0, x->rank, x->dims),
                            tensor_format_dims(b1, sizeof b1, x0->rank, x0->dims), (long long)axis);
        if (out[axis] > INT64_MAX / 2 - x->dims[axis])
            return oct_fail(err, OCTET_ERR_SHAPE, "concatenated axis is too large");
        out[axis] += x->dims[axis];
    }
    if (tensor_check_shape(x0->rank, out, x0->dtype, "output", err)) return -1;
    oct_set_output(g, n, 0, x0->dtype, x0->rank, out);
    return 0;
}

typedef struct {
    const oct_run_ctx *ctx;
    const oct_node *n;
    char *dst;
    size_t row_bytes;
    int64_t axis;
    size_t es;
} concat_job;

/* Output row r: each input's run of that row, in input order. */
static void concat_row(void *arg, int64_t r, int tid) {
    (void)tid;
    const concat_job *j = arg;
    char *d = j->dst + (size_t)r * j->row_bytes;
    for (int i = 0; i < j->n->n_in; i++) {
        const oct_tensor *x = oct_in(j->ctx, j->n, i);
        const size_t run = (size_t)tensor_prod(x->dims, (int)j->axis, x->rank) * j->es;
        if (run) memcpy(d, (const char *)x->data + (size_t)r * run, run);
        d += run;
    }
}

static int run_concat(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(y->dtype);
    const oct_attr *a = oct_node_attr(n, "axis");
    int64_t axis = a ? a->i : 1;
    if (axis < 0) axis += y->rank;
    int64_t outer = tensor_prod(y->dims, 0, (int)axis);
    size_t row_bytes = (size_t)tensor_prod(y->dims, (int)axis, y->rank) * es;
    size_t total = (size_t)outer * row_bytes;
    if (total == 0) return 0;
    char *dst = y->data;
    if (outer == 1) {
        for (int i = 0; i < n->n_in; i++) {
            const oct_tensor *x = oct_in(ctx, n, i);
            size_t bytes = (size_t)octet_tensor_numel(x) * es;
            if (x->data != dst) tensor_copy(ctx, dst, x->data, bytes, tensor_threads(ctx, bytes));
            dst += bytes;
        }
        return 0;
    }
    concat_job j = {ctx, n, dst, row_bytes, axis, es};
    oct_parallel_for(ctx, tensor_threads(ctx, total), outer, concat_row, &j);
    return 0;
}

const oct_op oct_op_concat = {"", "Concat", OCT_OP_TEAM, infer_concat, run_concat, NULL};
