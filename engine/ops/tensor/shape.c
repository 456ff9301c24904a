/* Ops whose output does not depend on input data: Shape (the input's dims, with start/end of
   opset 15), Constant (an attribute) and ConstantOfShape (a filled tensor). The planner folds
   all three into constants at load time. */
#include "tensor_ops.h"

/* Shape's [start, end) range of dims, clamped as opset 15 specifies. */
static void shape_range(const oct_node *n, int rank, int64_t *start, int64_t *end) {
    int64_t s = oct_attr_int(n, "start", 0), e = oct_attr_int(n, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : (s > rank ? rank : s);
    e = e < 0 ? 0 : (e > rank ? rank : e);
    *start = s;
    *end = e > s ? e : s;
}

static int infer_shape(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    int64_t s, e;
    shape_range(n, oct_in_val(g, n, 0)->rank, &s, &e);
    int64_t len = e - s;
    oct_set_output(g, n, 0, OCTET_INT64, 1, &len);
    return 0;
}

static int run_shape(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const oct_tensor *x = oct_in(ctx, n, 0);
    int64_t s, e;
    shape_range(n, x->rank, &s, &e);
    int64_t *out = oct_out(ctx, n, 0)->data;
    for (int64_t d = s; d < e; d++) out[d - s] = x->dims[d];
    return 0;
}

/* The one value-carrying attribute of a Constant, or NULL with err set. */
static const oct_attr *constant_attr(const oct_node *n, octet_error *err) {
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints", "sparse_value", "value_string",
                                        "value_strings"};
    const oct_attr *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const oct_attr *a = oct_node_attr(n, names[i]);
        if (!a) continue;
        if (found) {
            oct_fail(err, OCTET_ERR_FORMAT, "has both '%s' and '%s'", found->name, a->name);
            return NULL;
        }
        found = a;
    }
    if (!found) {
        oct_fail(err, OCTET_ERR_FORMAT, "has no value attribute");
        return NULL;
    }
    if (strcmp(found->name, "sparse_value") == 0 || strncmp(found->name, "value_string", 12) == 0) {
        oct_fail(err, OCTET_ERR_UNSUPPORTED, "attribute '%s' is not supported", found->name);
        return NULL;
    }
    return found;
}

static int infer_constant(oct_graph *g, oct_node *n, octet_error *err) {
    if (n->n_in != 0) return oct_fail(err, OCTET_ERR_FORMAT, "expects no inputs, has %d", n->n_in);
    const oct_attr *a = constant_attr(n, err);
    if (!a) return -1;
    int64_t len;
    switch (a->type) {
    case OCT_ATTR_TENSOR:
        if (!a->t) return oct_fail(err, OCTET_ERR_FORMAT, "attribute 'value' has no tensor");
        if (tensor_check_dtype(a->t->dtype, "attribute 'value'", err) ||
            tensor_check_shape(a->t->rank, a->t->dims, a->t->dtype, "attribute 'value'", err))
            return -1;
        oct_set_output(g, n, 0, a->t->dtype, a->t->rank, a->t->dims);
        return 0;
    case OCT_ATTR_FLOAT: oct_set_output(g, n, 0, OCTET_FLOAT, 0, NULL); return 0;
    case OCT_ATTR_INT: oct_set_output(g, n, 0, OCTET_INT64, 0, NULL); return 0;
    case OCT_ATTR_FLOATS:
        len = a->n;
        oct_set_output(g, n, 0, OCTET_FLOAT, 1, &len);
        return 0;
    case OCT_ATTR_INTS:
        len = a->n;
        oct_set_output(g, n, 0, OCTET_INT64, 1, &len);
        return 0;
    default:
        return oct_fail(err, OCTET_ERR_FORMAT, "attribute '%s' has the wrong type %d", a->name,
                        (int)a->type);
    }
}

static int run_constant(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const oct_attr *a = constant_attr(n, err);
    if (!a) return -1;
    void *out = oct_out(ctx, n, 0)->data;
    switch (a->type) {
    case OCT_ATTR_TENSOR: {
        int64_t numel = octet_tensor_numel(a->t);
        if (numel > 0) memcpy(out, a->t->data, (size_t)numel * octet_dtype_size(a->t->dtype));
        break;
    }
    case OCT_ATTR_FLOAT: memcpy(out, &a->f, sizeof(float)); break;
    case OCT_ATTR_INT: memcpy(out, &a->i, sizeof(int64_t)); break;
    case OCT_ATTR_FLOATS: if (a->n) memcpy(out, a->floats, (size_t)a->n * sizeof(float)); break;
    case OCT_ATTR_INTS: if (a->n) memcpy(out, a->ints, (size_t)a->n * sizeof(int64_t)); break;
    default: return oct_fail(err, OCTET_ERR_INTERNAL, "constant attribute changed type");
    }
    return 0;
}

static int infer_constant_of_shape(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    const oct_value *sv = oct_in_val(g, n, 0);
    if (sv->rank != 1)
        return oct_fail(err, OCTET_ERR_FORMAT, "input must be a 1-D shape, has rank %d", sv->rank);
    int64_t dims[OCTET_MAX_RANK];
    int rank = oct_const_ints(g, n, 0, dims, OCTET_MAX_RANK, err);
    if (rank < 0) return -1;
    octet_dtype dt = OCTET_FLOAT;
    const oct_attr *a = oct_node_attr(n, "value");
    if (a) {
        if (a->type != OCT_ATTR_TENSOR || !a->t || octet_tensor_numel(a->t) != 1)
            return oct_fail(err, OCTET_ERR_FORMAT, "attribute 'value' must be a one-element tensor");
        if (tensor_check_dtype(a->t->dtype, "attribute 'value'", err)) return -1;
        dt = a->t->dtype;
    }
    if (tensor_check_shape(rank, dims, dt, "output", err)) return -1;
    oct_set_output(g, n, 0, dt, rank, dims);
    return 0;
}

static int run_constant_of_shape(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    oct_tensor *y = oct_out(ctx, n, 0);
    const oct_attr *a = oct_node_attr(n, "value");
    uint64_t zero = 0;
    const void *value = a ? a->t->data : &zero;
    int64_t numel = octet_tensor_numel(y);
    size_t es = octet_dtype_size(y->dtype);
    if (numel <= 0) return 0;
    int threads = tensor_threads(ctx, (size_t)numel * es);
    int64_t chunk = (numel + threads - 1) / threads;
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int t = 0; t < threads; t++) {
        int64_t lo = (int64_t)t * chunk, hi = lo + chunk < numel ? lo + chunk : numel;
        if (hi > lo) tensor_fill_elems((char *)y->data + (size_t)lo * es, value, hi - lo, es);
    }
    return 0;
}

const oct_op oct_op_shape = {"", "Shape", OCT_OP_SHAPE_ONLY, infer_shape, run_shape, NULL};
const oct_op oct_op_constant = {"", "Constant", 0, infer_constant, run_constant, NULL};
const oct_op oct_op_constant_of_shape = {"", "ConstantOfShape", 0, infer_constant_of_shape,
                                         run_constant_of_shape, NULL};
