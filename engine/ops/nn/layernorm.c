/* LayerNormalization (opset 17): normalises over dims [axis, rank), then Y = norm * Scale + B with
   Scale and B broadcast to those dims. Optional outputs Mean and InvStdDev have X's shape with the
   normalised dims set to 1. Only stash_type 1 (float statistics) exists in practice. */
#include <stdlib.h>

#include "nn_common.h"

typedef struct {
    int64_t outer, inner;
    int expand;        /* Scale/B are broadcast, not already [inner]: expand into the workspace */
    int nrank;         /* number of normalised dims */
    int64_t ndims[OCTET_MAX_RANK];
    int threads;
} ln_params;

/* Checks that value v broadcasts to the normalised dims. */
static int ln_check_bcast(const oct_value *v, const ln_params *p, octet_error *err) {
    if (v->rank > p->nrank)
        return oct_fail(err, OCTET_ERR_SHAPE, "'%s' has rank %d, more than the %d normalised dims", v->name, v->rank,
                        p->nrank);
    for (int d = 0; d < v->rank; d++) {
        int64_t want = p->ndims[p->nrank - v->rank + d];
        if (v->dims[d] != 1 && v->dims[d] != want)
            return oct_fail(err, OCTET_ERR_SHAPE, "'%s' does not broadcast to the normalised dims", v->name);
    }
    return 0;
}

static int ln_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 2, 3, err)) return -1;
    if (n->n_out < 1 || n->n_out > 3)
        return oct_fail(err, OCTET_ERR_FORMAT, "LayerNormalization has %d outputs, expects 1 to 3", n->n_out);
    if (nn_require_float(g, n, 0, "X", err) || nn_require_float(g, n, 1, "Scale", err)) return -1;
    if (oct_node_has_input(n, 2) && nn_require_float(g, n, 2, "B", err)) return -1;
    if (oct_attr_int(n, "stash_type", 1) != 1)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "LayerNormalization stash_type other than 1 (float)");
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t axis;
    if (x->rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "X '%s' is a scalar", x->name);
    if (oct_norm_axis(oct_attr_int(n, "axis", -1), x->rank, &axis, err)) return -1;
    ln_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->outer = p->inner = 1;
    p->nrank = x->rank - (int)axis;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis) p->outer *= x->dims[d];
        else {
            p->inner *= x->dims[d];
            p->ndims[d - axis] = x->dims[d];
        }
    }
    p->expand = 0;
    for (int i = 1; i < 3; i++) {
        if (!oct_node_has_input(n, i)) continue;
        const oct_value *s = oct_in_val(g, n, i);
        if (ln_check_bcast(s, p, err)) return -1;
        if (oct_value_numel(s) != p->inner) p->expand = 1;
    }
    p->threads = nn_plan_threads();
    n->workspace_bytes = p->expand ? 2 * nn_float_bytes(p->inner) : 0;
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, x->dims);
    int64_t sdims[OCTET_MAX_RANK];
    for (int d = 0; d < x->rank; d++) sdims[d] = d < axis ? x->dims[d] : 1;
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0) oct_set_output(g, n, i, OCTET_FLOAT, x->rank, sdims);
    return 0;
}

/* Writes the broadcast of src (shape sdims, rank sr) over the normalised dims into dst[inner]. */
static void ln_expand(const ln_params *p, const oct_tensor *src, float *dst) {
    const float *s = src->data;
    for (int64_t i = 0; i < p->inner; i++) {
        int64_t rem = i, off = 0, stride = 1;
        for (int d = p->nrank - 1; d >= 0; d--) {
            int64_t idx = rem % p->ndims[d];
            rem /= p->ndims[d];
            int sd = d - (p->nrank - src->rank);
            if (sd >= 0) {
                if (src->dims[sd] != 1) off += idx * stride;
                stride *= src->dims[sd];
            }
        }
        dst[i] = s[off];
    }
}

static int ln_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const ln_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "LayerNormalization run before infer");
    const float *x = oct_in(ctx, n, 0)->data;
    const float *scale = oct_in(ctx, n, 1)->data;
    const float *bias = oct_node_has_input(n, 2) ? oct_in(ctx, n, 2)->data : NULL;
    if (p->expand) {
        float *s = ctx->workspace, *b = (float *)((char *)ctx->workspace + nn_float_bytes(p->inner));
        ln_expand(p, oct_in(ctx, n, 1), s);
        scale = s;
        if (bias) {
            ln_expand(p, oct_in(ctx, n, 2), b);
            bias = b;
        }
    }
    float *y = oct_out(ctx, n, 0)->data;
    float *mean = n->n_out > 1 && n->out[1] >= 0 ? oct_out(ctx, n, 1)->data : NULL;
    float *inv = n->n_out > 2 && n->out[2] >= 0 ? oct_out(ctx, n, 2)->data : NULL;
    const float eps = oct_attr_float(n, "epsilon", 1e-5f);
    const int t = nn_run_threads(ctx, p->threads);
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1 && p->outer * p->inner > 65536)
    for (int64_t r = 0; r < p->outer; r++) {
        float m, is;
        oct_ref_layernorm_row(x + r * p->inner, p->inner, eps, scale, bias, y + r * p->inner, &m, &is);
        if (mean) mean[r] = m;
        if (inv) inv[r] = is;
    }
    return 0;
}

const oct_op oct_op_layer_normalization = {"", "LayerNormalization", 0, ln_infer, ln_run, NULL};
