/* Pad with modes constant, reflect and edge. Pads come from an input (opset 11+, with the
   optional axes input of opset 18) or from attributes (opset 2); negative pads crop. The
   constant value is read at run time, since it need not be a constant. */
#include <stdlib.h>

#include "tensor_ops.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE } pad_mode;

typedef struct {
    pad_mode mode;
    int64_t begin[OCTET_MAX_RANK], end[OCTET_MAX_RANK];
    uint64_t value; /* opset < 11: the 'value' attribute converted to the data's dtype */
} pad_params;

static int read_pads(oct_graph *g, const oct_node *n, int rank, pad_params *p, octet_error *err) {
    int64_t pads[2 * OCTET_MAX_RANK], axes[OCTET_MAX_RANK];
    int count, n_axes = rank;
    if (tensor_opset(g) >= 11) {
        count = oct_const_ints(g, n, 1, pads, 2 * OCTET_MAX_RANK, err);
        if (count < 0) return -1;
        if (oct_node_has_input(n, 3)) {
            n_axes = oct_const_ints(g, n, 3, axes, OCTET_MAX_RANK, err);
            if (n_axes < 0) return -1;
            if (tensor_norm_axes(axes, n_axes, rank, err)) return -1;
        }
    } else {
        count = oct_attr_ints(n, "pads", pads, 2 * OCTET_MAX_RANK, err);
        if (count == -2) return -1;
        if (count < 0) return oct_fail(err, OCTET_ERR_FORMAT, "attribute 'pads' is missing");
    }
    if (n_axes == rank && !oct_node_has_input(n, 3))
        for (int i = 0; i < rank; i++) axes[i] = i;
    if (count != 2 * n_axes)
        return oct_fail(err, OCTET_ERR_FORMAT, "pads has %d values, expected %d (2 per padded axis)",
                        count, 2 * n_axes);
    for (int i = 0; i < n_axes; i++) {
        p->begin[axes[i]] = pads[i];
        p->end[axes[i]] = pads[n_axes + i];
    }
    return 0;
}

static int infer_pad(oct_graph *g, oct_node *n, octet_error *err) {
    bool inputs = tensor_opset(g) >= 11;
    if (oct_check_inputs(n, inputs ? 2 : 1, inputs ? 4 : 1, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    pad_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    const char *mode = oct_attr_string(n, "mode", "constant");
    int64_t out[OCTET_MAX_RANK];
    if (strcmp(mode, "constant") == 0) p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0) p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0) p->mode = PAD_EDGE;
    else {
        oct_fail(err, OCTET_ERR_UNSUPPORTED, "mode '%s' is not supported (constant, reflect, edge)", mode);
        goto fail;
    }
    if (read_pads(g, n, x->rank, p, err)) goto fail;
    if (inputs && oct_node_has_input(n, 2)) {
        const oct_value *cv = oct_in_val(g, n, 2);
        if (cv->dtype != x->dtype || oct_value_numel(cv) != 1) {
            oct_fail(err, OCTET_ERR_FORMAT, "constant_value must be one %s value",
                     octet_dtype_name(x->dtype));
            goto fail;
        }
    }
    /* Before opset 11 the value is an attribute; later a missing constant_value means 0. */
    tensor_from_float(inputs ? 0.f : oct_attr_float(n, "value", 0.f), x->dtype, &p->value);
    for (int d = 0; d < x->rank; d++) {
        int64_t dim = x->dims[d], b = p->begin[d], e = p->end[d];
        if (b < -dim || e < -dim || b > INT64_MAX / 4 || e > INT64_MAX / 4 || dim + b + e < 0) {
            oct_fail(err, OCTET_ERR_SHAPE, "pads %lld, %lld of axis %d (size %lld) are invalid",
                     (long long)b, (long long)e, d, (long long)dim);
            goto fail;
        }
        if ((b > 0 || e > 0) && p->mode == PAD_EDGE && dim == 0) {
            oct_fail(err, OCTET_ERR_SHAPE, "edge padding of the empty axis %d", d);
            goto fail;
        }
        if ((b > 0 || e > 0) && p->mode == PAD_REFLECT && (b >= dim || e >= dim)) {
            oct_fail(err, OCTET_ERR_SHAPE,
                     "reflect pads %lld, %lld of axis %d need to be smaller than its size %lld",
                     (long long)b, (long long)e, d, (long long)dim);
            goto fail;
        }
        out[d] = dim + b + e;
    }
    if (tensor_check_shape(x->rank, out, x->dtype, "output", err)) goto fail;
    tensor_set_params(n, p);
    oct_set_output(g, n, 0, x->dtype, x->rank, out);
    return 0;
fail:
    free(p);
    return -1;
}

/* Maps output position j of an axis to an input index, or -1 for the constant. */
static int64_t map_index(pad_mode mode, int64_t j, int64_t begin, int64_t dim) {
    int64_t i = j - begin;
    if (i >= 0 && i < dim) return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : dim - 1;
    case PAD_REFLECT: return i < 0 ? -i : 2 * (dim - 1) - i;
    default: return -1;
    }
}

static int run_pad(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const pad_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    const void *value = &p->value;
    if (tensor_opset(ctx->g) >= 11 && oct_node_has_input(n, 2)) value = oct_in(ctx, n, 2)->data;
    int r = y->rank;
    int64_t total = octet_tensor_numel(y);
    if (total <= 0) return 0;
    if (r == 0) {
        memcpy(y->data, x->data, es);
        return 0;
    }
    int64_t len = y->dims[r - 1], dim = x->dims[r - 1], b = p->begin[r - 1], rows = total / len;
    /* The part of the row that copies straight from the input. */
    int64_t j0 = b > 0 ? b : 0, j1 = b + dim < len ? b + dim : len;
    if (j1 < j0) j1 = j0;
    int64_t in_stride[OCTET_MAX_RANK];
    in_stride[r - 1] = 1;
    for (int d = r - 2; d >= 0; d--) in_stride[d] = in_stride[d + 1] * x->dims[d + 1];
    int threads = tensor_threads(ctx, (size_t)total * es);
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t q = 0; q < rows; q++) {
        char *out = (char *)y->data + (size_t)q * (size_t)len * es;
        int64_t rem = q, off = 0;
        bool fill = false;
        for (int d = r - 2; d >= 0; d--) {
            int64_t i = map_index(p->mode, rem % y->dims[d], p->begin[d], x->dims[d]);
            rem /= y->dims[d];
            if (i < 0) fill = true;
            else off += i * in_stride[d];
        }
        if (fill) {
            tensor_fill_elems(out, value, len, es);
            continue;
        }
        const char *in = (const char *)x->data + (size_t)off * es;
        for (int64_t j = 0; j < j0; j++) {
            int64_t i = map_index(p->mode, j, b, dim);
            memcpy(out + (size_t)j * es, i < 0 ? value : in + (size_t)i * es, es);
        }
        if (j1 > j0) memcpy(out + (size_t)j0 * es, in + (size_t)(j0 - b) * es, (size_t)(j1 - j0) * es);
        for (int64_t j = j1; j < len; j++) {
            int64_t i = map_index(p->mode, j, b, dim);
            memcpy(out + (size_t)j * es, i < 0 ? value : in + (size_t)i * es, es);
        }
    }
    return 0;
}

const oct_op oct_op_pad = {"", "Pad", 0, infer_pad, run_pad, NULL};
