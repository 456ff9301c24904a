/* Comparisons with numpy broadcasting: Equal, Greater, Less. Output bool; inputs float32 or the
   integer dtypes, and bool for Equal. */
#include <string.h>

#include "math_ops.h"

static int compare_kind(const char *type) {
    if (strcmp(type, "Equal") == 0) return OCT_BIN_EQUAL;
    if (strcmp(type, "Greater") == 0) return OCT_BIN_GREATER;
    if (strcmp(type, "Less") == 0) return OCT_BIN_LESS;
    return -1;
}

static int compare_infer(oct_graph *g, oct_node *n, octet_error *err) {
    int k = compare_kind(n->op_type);
    if (k < 0) return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a comparison", n->op_type);
    if (oct_check_inputs(n, 2, 2, err) < 0) return -1;
    int dt = oct_math_same_dtype(g, n, 2, err);
    if (dt < 0) return -1;
    if (!oct_math_is_numeric((octet_dtype)dt) && !(k == OCT_BIN_EQUAL && dt == OCTET_BOOL))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s does not support %s inputs", n->op_type,
                        octet_dtype_name((octet_dtype)dt));
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    if (oct_math_infer_bcast(g, n, 2, &rank, dims, err) < 0) return -1;
    oct_set_output(g, n, 0, OCTET_BOOL, rank, dims);
    return 0;
}

static int compare_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    int k = compare_kind(n->op_type);
    if (k < 0) return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a comparison", n->op_type);
    return oct_math_run_binary(ctx, n, (oct_binary_kind)k, err);
}

const oct_op oct_op_equal = {"", "Equal", OCT_OP_TEAM, compare_infer, compare_run, NULL};
const oct_op oct_op_greater = {"", "Greater", OCT_OP_TEAM, compare_infer, compare_run, NULL};
const oct_op oct_op_less = {"", "Less", OCT_OP_TEAM, compare_infer, compare_run, NULL};
