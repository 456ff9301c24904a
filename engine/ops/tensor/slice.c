/* Slice: starts/ends/axes/steps as inputs (opset 10+) or attributes (opset 1). Negative starts
   and ends count from the end, out-of-range values are clamped as ONNX specifies (differently
   for negative steps), and the result is a strided view of the input copied out. */
#include <stdlib.h>

#include "tensor_ops.h"

typedef struct {
    int64_t start[OCTET_MAX_RANK];
    int64_t step[OCTET_MAX_RANK];
} slice_params;

/* Reads one of the slice parameter lists; returns its count or -1 when absent, -2 on error. */
static int read_list(oct_graph *g, const oct_node *n, int input, const char *attr, int64_t *out,
                     octet_error *err) {
    if (tensor_opset(g) >= 10) {
        if (!oct_node_has_input(n, input)) return -1;
        int c = oct_const_ints(g, n, input, out, OCTET_MAX_RANK, err);
        return c < 0 ? -2 : c;
    }
    int c = oct_attr_ints(n, attr, out, OCTET_MAX_RANK, err);
    return c == -2 ? -2 : c;
}

/* Clamps one axis' start/end for the given step and returns the output length. */
static int64_t slice_axis(int64_t dim, int64_t *start, int64_t end, int64_t step) {
    int64_t s = *start, e = end;
    if (dim == 0) {
        *start = 0;
        return 0;
    }
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
        s = s < 0 ? 0 : (s > dim ? dim : s);
        e = e < 0 ? 0 : (e > dim ? dim : e);
        *start = s;
        return e > s ? (e - s - 1) / step + 1 : 0;
    }
    s = s < 0 ? 0 : (s > dim - 1 ? dim - 1 : s);
    e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
    *start = s;
    return s > e ? (s - e - 1) / -step + 1 : 0;
}

static int infer_slice(oct_graph *g, oct_node *n, octet_error *err) {
    bool inputs = tensor_opset(g) >= 10;
    if (oct_check_inputs(n, inputs ? 3 : 1, inputs ? 5 : 1, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "cannot slice a scalar");
    int64_t starts[OCTET_MAX_RANK], ends[OCTET_MAX_RANK], axes[OCTET_MAX_RANK], steps[OCTET_MAX_RANK];
    int ns = read_list(g, n, 1, "starts", starts, err);
    int ne = read_list(g, n, 2, "ends", ends, err);
    int na = read_list(g, n, 3, "axes", axes, err);
    int nt = read_list(g, n, 4, "steps", steps, err);
    if (ns == -2 || ne == -2 || na == -2 || nt == -2) return -1;
    if (ns < 0 || ne < 0) return oct_fail(err, OCTET_ERR_FORMAT, "starts and ends are required");
    if (ns != ne || (na >= 0 && na != ns) || (nt >= 0 && nt != ns))
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "starts, ends, axes and steps differ in length (%d, %d, %d, %d)", ns, ne, na,
                        nt);
    if (ns > x->rank)
        return oct_fail(err, OCTET_ERR_FORMAT, "%d axes sliced on an input of rank %d", ns, x->rank);
    if (na < 0)
        for (int i = 0; i < ns; i++) axes[i] = i;
    if (tensor_norm_axes(axes, ns, x->rank, err)) return -1;
    slice_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    int64_t out[OCTET_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        out[d] = x->dims[d];
    }
    for (int i = 0; i < ns; i++) {
        int64_t step = nt >= 0 ? steps[i] : 1, d = axes[i];
        if (step == 0) {
            free(p);
            return oct_fail(err, OCTET_ERR_FORMAT, "step of axis %lld is 0", (long long)d);
        }
        /* A step longer than the axis takes at most one element; shortening it keeps the
           strides computed at run time from overflowing. */
        int64_t dim = x->dims[d] > 0 ? x->dims[d] : 1;
        if (step > dim) step = dim;
        if (step < -dim) step = -dim;
        p->start[d] = starts[i];
        p->step[d] = step;
        out[d] = slice_axis(x->dims[d], &p->start[d], ends[i], step);
    }
    tensor_set_params(n, p);
    oct_set_output(g, n, 0, x->dtype, x->rank, out);
    return 0;
}

static int run_slice(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const slice_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    int64_t numel = octet_tensor_numel(y);
    if (numel <= 0) return 0;
    int64_t stride = 1, strides[OCTET_MAX_RANK], base = 0;
    for (int d = x->rank - 1; d >= 0; d--) {
        strides[d] = p->step[d] * stride;
        base += p->start[d] * stride;
        stride *= x->dims[d];
    }
    tensor_view_copy(ctx, y->data, (const char *)x->data + base * (int64_t)es, es, y->rank, y->dims, strides,
                     tensor_threads(ctx, (size_t)numel * es));
    return 0;
}

const oct_op oct_op_slice = {"", "Slice", OCT_OP_TEAM, infer_slice, run_slice, NULL};
