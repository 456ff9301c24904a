/* TopK: the k largest (or smallest) values along an axis and their int64 indices, sorted, ties
   by lower index. k is attribute `k` before opset 10, else input 1, which must be a constant
   because octet plans static shapes. */
#include "math_ops.h"

typedef struct {
    int64_t outer, len, inner, k;
    int largest;
} topk_params;

static int topk_infer(oct_graph *g, oct_node *n, octet_error *err) {
    int k_input = g->opset >= 10;
    if (oct_check_inputs(n, k_input ? 2 : 1, k_input ? 2 : 1, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (!oct_math_is_numeric(x->dtype))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "TopK does not support %s input '%s'",
                        octet_dtype_name(x->dtype), x->name);
    if (x->rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "TopK input '%s' must have rank >= 1", x->name);
    if (n->n_out < 1 || n->out[0] < 0) return oct_fail(err, OCTET_ERR_FORMAT, "TopK needs its values output");
    int64_t axis, k;
    if (oct_norm_axis(oct_attr_int(n, "axis", -1), x->rank, &axis, err) < 0) return -1;
    if (k_input) {
        int cnt = oct_const_ints(g, n, 1, &k, 1, err);
        if (cnt < 0) return -1;
        if (cnt != 1) return oct_fail(err, OCTET_ERR_SHAPE, "TopK K must hold one value, has %d", cnt);
    } else {
        if (!oct_node_attr(n, "k")) return oct_fail(err, OCTET_ERR_FORMAT, "TopK-1 needs attribute k");
        k = oct_attr_int(n, "k", 0);
    }
    if (k < 0 || k > x->dims[axis])
        return oct_fail(err, OCTET_ERR_SHAPE, "TopK k=%lld is outside [0, %lld] (axis %lld of '%s')",
                        (long long)k, (long long)x->dims[axis], (long long)axis, x->name);
    if (x->dims[axis] > (int64_t)(SIZE_MAX / 4 / sizeof(int64_t)))
        return oct_fail(err, OCTET_ERR_NOMEM, "TopK axis of '%s' is too long", x->name);
    topk_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->outer = oct_math_span(x->dims, 0, (int)axis);
    p->len = x->dims[axis];
    p->inner = oct_math_span(x->dims, (int)axis + 1, x->rank);
    p->k = k;
    p->largest = oct_attr_int(n, "largest", 1) != 0;
    /* `sorted` = 0 leaves the order unspecified, so the sorted order serves both */
    n->workspace_bytes = oct_topk_scratch_bytes(p->len);
    int64_t dims[OCTET_MAX_RANK];
    for (int d = 0; d < x->rank; d++) dims[d] = d == axis ? k : x->dims[d];
    oct_set_output(g, n, 0, x->dtype, x->rank, dims);
    if (n->n_out > 1 && n->out[1] >= 0) oct_set_output(g, n, 1, OCTET_INT64, x->rank, dims);
    return 0;
}

static int topk_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const topk_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    if (!ctx->workspace && p->len > 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "TopK was run without its workspace");
    int64_t *indices = n->n_out > 1 && n->out[1] >= 0 ? oct_out(ctx, n, 1)->data : NULL;
    if (oct_ref_topk(x->dtype, x->data, oct_out(ctx, n, 0)->data, indices, p->outer,
                     p->len, p->inner, p->k, p->largest, ctx->workspace) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "TopK kernel refused its arguments");
    return 0;
}

const oct_op oct_op_topk = {"", "TopK", OCT_OP_TEAM, topk_infer, topk_run, NULL};
