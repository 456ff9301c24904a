/* Broadcasting binary ops: Add, Sub, Mul, Div, Pow, PRelu. Add/Sub/Mul/Div take float32 and the
   integer dtypes (integer Div truncates toward zero; a zero divisor is an error). Pow takes a base
   and an exponent of any of those dtypes and returns the base's dtype. */
#include <string.h>

#include "math_ops.h"

typedef struct {
    oct_binary_kind kind;
    octet_dtype a_dt, b_dt;
    const oct_bcast *bc;
    const void *a, *b;
    void *y;
} binary_job;

static void binary_range(const void *arg, int64_t begin, int64_t end) {
    const binary_job *j = arg;
    if (j->a_dt == j->b_dt)
        oct_ref_binary(j->kind, j->a_dt, j->bc, j->a, j->b, j->y, begin, end);
    else
        oct_ref_pow_mixed(j->a_dt, j->b_dt, j->bc, j->a, j->b, j->y, begin, end);
}

int oct_math_run_binary(const oct_run_ctx *ctx, const oct_node *n, oct_binary_kind kind,
                        octet_error *err) {
    const oct_tensor *a = oct_in(ctx, n, 0), *b = oct_in(ctx, n, 1);
    oct_tensor *y = oct_out(ctx, n, 0);
    oct_bcast bc;
    const oct_tensor *ins[2] = {a, b};
    if (oct_math_bcast(&bc, y, 2, ins, err) < 0) return -1;
    binary_job j = {kind, a->dtype, b->dtype, &bc, a->data, b->data, y->data};
    oct_math_parallel(ctx, oct_bcast_numel(&bc), OCT_MATH_GRAIN, binary_range, &j);
    return 0;
}

static const struct {
    const char *type;
    oct_binary_kind kind;
} kinds[] = {{"Add", OCT_BIN_ADD}, {"Sub", OCT_BIN_SUB}, {"Mul", OCT_BIN_MUL},
             {"Div", OCT_BIN_DIV}, {"Pow", OCT_BIN_POW}, {"PRelu", OCT_BIN_PRELU}};

static int kind_of(const char *type, oct_binary_kind *k) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].type, type) == 0) {
            *k = kinds[i].kind;
            return 0;
        }
    return -1;
}

static int arith_infer(oct_graph *g, oct_node *n, octet_error *err) {
    oct_binary_kind k;
    if (kind_of(n->op_type, &k) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a binary math op", n->op_type);
    if (oct_check_inputs(n, 2, 2, err) < 0) return -1;
    const oct_value *a = oct_in_val(g, n, 0), *b = oct_in_val(g, n, 1);
    if (!oct_math_is_numeric(a->dtype))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s does not support %s input '%s'", n->op_type,
                        octet_dtype_name(a->dtype), a->name);
    if (k == OCT_BIN_POW) {
        if (!oct_math_is_numeric(b->dtype))
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "Pow does not support %s exponent '%s'",
                            octet_dtype_name(b->dtype), b->name);
    } else if (oct_math_same_dtype(g, n, 2, err) < 0) {
        return -1;
    }
    if (k == OCT_BIN_PRELU && a->dtype == OCTET_UINT8)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "PRelu does not support uint8 input '%s'", a->name);
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    if (oct_math_infer_bcast(g, n, 2, &rank, dims, err) < 0) return -1;
    if (k == OCT_BIN_PRELU) {
        /* the slope broadcasts to X, never X to the slope */
        int same = rank == a->rank;
        for (int d = 0; same && d < rank; d++) same = dims[d] == a->dims[d];
        if (!same)
            return oct_fail(err, OCTET_ERR_SHAPE, "PRelu slope '%s' (rank %d) does not broadcast to input '%s' (rank %d)",
                            b->name, b->rank, a->name, a->rank);
    }
    oct_set_output(g, n, 0, a->dtype, rank, dims);
    return 0;
}

/* Integer division by zero has no value (and traps on x86): refuse it with the divisor named. */
static int check_int_divisor(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const oct_tensor *b = oct_in(ctx, n, 1);
    int64_t cnt = octet_tensor_numel(b);
    size_t es = octet_dtype_size(b->dtype);
    const unsigned char *p = b->data;
    for (int64_t i = 0; i < cnt; i++) {
        int zero = 1;
        for (size_t k = 0; k < es; k++) zero &= p[i * (int64_t)es + (int64_t)k] == 0;
        if (zero)
            return oct_fail(err, OCTET_ERR_ARG, "integer division by zero: divisor '%s' element %lld is 0",
                            ctx->g ? ctx->g->values[n->in[1]].name : "", (long long)i);
    }
    return 0;
}

static int arith_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    oct_binary_kind k;
    if (kind_of(n->op_type, &k) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a binary math op", n->op_type);
    if (k == OCT_BIN_DIV && oct_math_is_int(oct_in(ctx, n, 0)->dtype) &&
        check_int_divisor(ctx, n, err) < 0)
        return -1;
    return oct_math_run_binary(ctx, n, k, err);
}

const oct_op oct_op_add = {"", "Add", OCT_OP_TEAM, arith_infer, arith_run, NULL};
const oct_op oct_op_sub = {"", "Sub", OCT_OP_TEAM, arith_infer, arith_run, NULL};
const oct_op oct_op_mul = {"", "Mul", OCT_OP_TEAM, arith_infer, arith_run, NULL};
const oct_op oct_op_div = {"", "Div", OCT_OP_TEAM, arith_infer, arith_run, NULL};
const oct_op oct_op_pow = {"", "Pow", OCT_OP_TEAM, arith_infer, arith_run, NULL};
const oct_op oct_op_prelu = {"", "PRelu", OCT_OP_TEAM, arith_infer, arith_run, NULL};
