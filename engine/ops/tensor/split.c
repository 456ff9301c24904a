/* Split along one axis into the outputs: sizes from the split input (opset 13+) or attribute
   (before 13), else equal parts (num_outputs of opset 18 allows a smaller last part). */
#include <stdlib.h>

#include "tensor_ops.h"

typedef struct {
    int axis;
    int64_t sizes[]; /* one per output */
} split_params;

static int read_sizes(oct_graph *g, oct_node *n, int64_t dim, int64_t *sizes, octet_error *err) {
    int n_out = n->n_out;
    int count = -1;
    if (tensor_opset(g) < 13) {
        count = oct_attr_ints(n, "split", sizes, n_out, err);
        if (count == -2) return oct_fail(err, OCTET_ERR_FORMAT, "split has more sizes than the %d outputs", n_out);
    } else if (oct_node_has_input(n, 1)) {
        int64_t given = oct_value_numel(oct_in_val(g, n, 1));
        if (given != n_out)
            return oct_fail(err, OCTET_ERR_FORMAT, "split has %lld sizes for %d outputs", (long long)given, n_out);
        count = oct_const_ints(g, n, 1, sizes, n_out, err);
        if (count < 0) return -1;
    }
    if (count >= 0) {
        if (count != n_out)
            return oct_fail(err, OCTET_ERR_FORMAT, "split has %d sizes for %d outputs", count, n_out);
        int64_t sum = 0;
        for (int i = 0; i < count; i++) {
            if (sizes[i] < 0 || sizes[i] > dim)
                return oct_fail(err, OCTET_ERR_FORMAT, "split size %lld is invalid", (long long)sizes[i]);
            sum += sizes[i];
        }
        if (sum != dim)
            return oct_fail(err, OCTET_ERR_SHAPE, "split sizes sum to %lld but the axis has %lld",
                            (long long)sum, (long long)dim);
        return 0;
    }
    const oct_attr *num = oct_node_attr(n, "num_outputs");
    if (num) {
        if (num->i != n_out)
            return oct_fail(err, OCTET_ERR_FORMAT, "num_outputs is %lld but the node has %d outputs",
                            (long long)num->i, n_out);
        int64_t part = (dim + n_out - 1) / n_out, left = dim;
        for (int i = 0; i < n_out; i++) {
            sizes[i] = left < part ? left : part;
            left -= sizes[i];
        }
        return 0;
    }
    if (dim % n_out != 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "axis of size %lld does not split evenly into %d outputs",
                        (long long)dim, n_out);
    for (int i = 0; i < n_out; i++) sizes[i] = dim / n_out;
    return 0;
}

static int infer_split(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 2, err)) return -1;
    if (n->n_out < 1) return oct_fail(err, OCTET_ERR_FORMAT, "expects at least 1 output");
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t axis;
    if (oct_norm_axis(oct_attr_int(n, "axis", 0), x->rank, &axis, err)) return -1;
    split_params *p = malloc(sizeof *p + (size_t)n->n_out * sizeof(int64_t));
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    p->axis = (int)axis;
    if (read_sizes(g, n, x->dims[axis], p->sizes, err)) {
        free(p);
        return -1;
    }
    int64_t dims[OCTET_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < n->n_out; i++) {
        if (n->out[i] < 0) continue;
        dims[axis] = p->sizes[i];
        oct_set_output(g, n, i, x->dtype, x->rank, dims);
    }
    tensor_set_params(n, p);
    return 0;
}

static int run_split(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const split_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    int64_t outer = tensor_prod(x->dims, 0, p->axis);
    size_t inner = (size_t)tensor_prod(x->dims, p->axis + 1, x->rank) * es;
    size_t row = (size_t)x->dims[p->axis] * inner;
    size_t offset = 0;
    for (int i = 0; i < n->n_out; i++) {
        size_t run = (size_t)p->sizes[i] * inner;
        if (n->out[i] >= 0 && run) {
            char *dst = oct_out(ctx, n, i)->data;
            const char *src = (const char *)x->data + offset;
            int threads = tensor_threads(ctx, run * (size_t)outer);
            #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
            for (int64_t r = 0; r < outer; r++)
                memcpy(dst + (size_t)r * run, src + (size_t)r * row, run);
        }
        offset += run;
    }
    return 0;
}

const oct_op oct_op_split = {"", "Split", 0, infer_split, run_split, NULL};
