/* Variadic ops with numpy broadcasting over all inputs: Max, Min, Sum, Mean. The output is folded
   input by input (y = in0 op in1, then y = y op in_i) within each thread's range of elements, so a
   range stays in cache across the inputs. */
#include <string.h>

#include "math_ops.h"

static int variadic_kind(const char *type, oct_binary_kind *k) {
    if (strcmp(type, "Max") == 0) *k = OCT_BIN_MAX;
    else if (strcmp(type, "Min") == 0) *k = OCT_BIN_MIN;
    else if (strcmp(type, "Sum") == 0 || strcmp(type, "Mean") == 0) *k = OCT_BIN_ADD;
    else return -1;
    return 0;
}

static int variadic_infer(oct_graph *g, oct_node *n, octet_error *err) {
    oct_binary_kind k;
    if (variadic_kind(n->op_type, &k) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a variadic math op", n->op_type);
    if (n->n_in < 1) return oct_fail(err, OCTET_ERR_FORMAT, "%s needs at least one input", n->op_type);
    for (int i = 0; i < n->n_in; i++)
        if (!oct_node_has_input(n, i))
            return oct_fail(err, OCTET_ERR_FORMAT, "%s input %d is missing", n->op_type, i);
    int dt = oct_math_same_dtype(g, n, n->n_in, err);
    if (dt < 0) return -1;
    int mean = strcmp(n->op_type, "Mean") == 0;
    if (mean ? dt != OCTET_FLOAT : !oct_math_is_numeric((octet_dtype)dt))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s does not support %s inputs", n->op_type,
                        octet_dtype_name((octet_dtype)dt));
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    if (oct_math_infer_bcast(g, n, n->n_in, &rank, dims, err) < 0) return -1;
    oct_set_output(g, n, 0, (octet_dtype)dt, rank, dims);
    return 0;
}

typedef struct {
    oct_binary_kind kind;
    int mean;
    const oct_run_ctx *ctx;
    const oct_node *n;
    const oct_tensor *y;
} variadic_job;

static void variadic_range(const void *arg, int64_t begin, int64_t end) {
    const variadic_job *j = arg;
    const oct_node *n = j->n;
    const oct_tensor *y = j->y;
    oct_bcast bc;
    /* shapes were checked by infer, so planning cannot fail here */
    if (n->n_in == 1) {
        const oct_tensor *ins[1] = {oct_in(j->ctx, n, 0)};
        if (oct_math_bcast(&bc, y, 1, ins, NULL) < 0) return;
        oct_ref_bcast_copy(octet_dtype_size(y->dtype), &bc, ins[0]->data, y->data, begin, end);
    } else {
        const oct_tensor *ins[2] = {oct_in(j->ctx, n, 0), oct_in(j->ctx, n, 1)};
        if (oct_math_bcast(&bc, y, 2, ins, NULL) < 0) return;
        oct_ref_binary(j->kind, y->dtype, &bc, ins[0]->data, ins[1]->data, y->data, begin, end);
        for (int i = 2; i < n->n_in; i++) {
            const oct_tensor *acc[2] = {y, oct_in(j->ctx, n, i)};
            if (oct_math_bcast(&bc, y, 2, acc, NULL) < 0) return;
            oct_ref_binary(j->kind, y->dtype, &bc, y->data, acc[1]->data, y->data, begin, end);
        }
    }
    if (j->mean) {
        float *p = y->data, inv = 1.f / (float)n->n_in;
        for (int64_t i = begin; i < end; i++) p[i] *= inv;
    }
}

static int variadic_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    oct_binary_kind k;
    if (variadic_kind(n->op_type, &k) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a variadic math op", n->op_type);
    const oct_tensor *y = oct_out(ctx, n, 0);
    oct_bcast bc;
    for (int i = 0; i < n->n_in; i++) { /* validate the bound shapes once, with an error */
        const oct_tensor *ins[1] = {oct_in(ctx, n, i)};
        if (oct_math_bcast(&bc, y, 1, ins, err) < 0) return oct_fail_context(err, "input %d", i);
    }
    variadic_job j = {k, strcmp(n->op_type, "Mean") == 0, ctx, n, y};
    oct_math_parallel(ctx, octet_tensor_numel(y), OCT_MATH_GRAIN, variadic_range, &j);
    return 0;
}

const oct_op oct_op_max = {"", "Max", OCT_OP_TEAM, variadic_infer, variadic_run, NULL};
const oct_op oct_op_min = {"", "Min", OCT_OP_TEAM, variadic_infer, variadic_run, NULL};
const oct_op oct_op_sum = {"", "Sum", OCT_OP_TEAM, variadic_infer, variadic_run, NULL};
const oct_op oct_op_mean = {"", "Mean", OCT_OP_TEAM, variadic_infer, variadic_run, NULL};
