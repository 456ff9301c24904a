/* ReduceSum, ReduceMean, ReduceMax. Axes come from input 1 when present (ReduceSum-13) or from the
   `axes` attribute (earlier ReduceSum, ReduceMean/ReduceMax up to 17); input axes must be a
   constant. No axes reduces everything, unless noop_with_empty_axes makes the op the identity. */
#include <string.h>

#include "math_ops.h"

typedef struct {
    oct_reduce_kind kind;
    int identity;                       /* noop_with_empty_axes with no axes */
    uint8_t reduced[OCTET_MAX_RANK];    /* per input dim */
} reduce_params;

static int reduce_kind(const char *type, oct_reduce_kind *k) {
    if (strcmp(type, "ReduceSum") == 0) *k = OCT_RED_SUM;
    else if (strcmp(type, "ReduceMean") == 0) *k = OCT_RED_MEAN;
    else if (strcmp(type, "ReduceMax") == 0) *k = OCT_RED_MAX;
    else return -1;
    return 0;
}

/* Reads the axes into axes[]; returns their count (0 when none are given) or -1. */
static int read_axes(oct_graph *g, const oct_node *n, int64_t *axes, octet_error *err) {
    if (oct_node_has_input(n, 1)) {
        const oct_value *v = oct_in_val(g, n, 1);
        /* an empty constant may carry no data buffer at all */
        if (v->kind == OCT_VAL_CONST && oct_value_numel(v) == 0) return 0;
        return oct_const_ints(g, n, 1, axes, OCTET_MAX_RANK, err);
    }
    int cnt = oct_attr_ints(n, "axes", axes, OCTET_MAX_RANK, err);
    if (cnt == -2) return -1;
    return cnt < 0 ? 0 : cnt;
}

static int reduce_infer(oct_graph *g, oct_node *n, octet_error *err) {
    oct_reduce_kind k;
    if (reduce_kind(n->op_type, &k) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a reduction", n->op_type);
    if (oct_check_inputs(n, 1, 2, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (!oct_math_is_numeric(x->dtype))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s does not support %s input '%s'", n->op_type,
                        octet_dtype_name(x->dtype), x->name);
    int64_t axes[OCTET_MAX_RANK];
    int n_axes = read_axes(g, n, axes, err);
    if (n_axes < 0) return -1;
    reduce_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->kind = k;
    int keep = oct_attr_int(n, "keepdims", 1) != 0;
    if (n_axes == 0) {
        if (oct_attr_int(n, "noop_with_empty_axes", 0)) p->identity = 1;
        else memset(p->reduced, 1, sizeof p->reduced);
    }
    for (int i = 0; i < n_axes; i++) {
        int64_t a;
        if (oct_norm_axis(axes[i], x->rank, &a, err) < 0) return -1;
        if (p->reduced[a])
            return oct_fail(err, OCTET_ERR_FORMAT, "%s axis %lld is given twice", n->op_type, (long long)axes[i]);
        p->reduced[a] = 1;
    }
    int64_t dims[OCTET_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (p->identity || !p->reduced[d]) dims[r++] = x->dims[d];
        else if (keep) dims[r++] = 1;
    }
    oct_set_output(g, n, 0, x->dtype, r, dims);
    return 0;
}

typedef struct {
    oct_reduce_kind kind;
    octet_dtype dt;
    const void *x;
    void *y;
    int rank;                        /* grouped dims: runs of kept or reduced dims */
    int64_t dims[OCTET_MAX_RANK];
    uint8_t reduced[OCTET_MAX_RANK];
    int64_t outer, red, inner;       /* the [kept][reduced][kept] case */
} reduce_job;

static void rows_range(const void *arg, int64_t o0, int64_t o1) {
    const reduce_job *j = arg;
    oct_ref_reduce_rows(j->kind, j->dt, j->x, j->y, o0, o1, j->red, j->inner);
}

static void general_range(const void *arg, int64_t b, int64_t e) {
    const reduce_job *j = arg;
    oct_ref_reduce_general(j->kind, j->dt, j->x, j->y, j->rank, j->dims, j->reduced, b, e);
}

static int reduce_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const reduce_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    reduce_job j = {.kind = p->kind, .dt = x->dtype, .x = x->data, .y = y->data};
    /* Group the dims into runs of kept / reduced ones; size-1 dims do not change the layout. */
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1) continue;
        uint8_t red = p->identity ? 0 : p->reduced[d];
        if (j.rank > 0 && j.reduced[j.rank - 1] == red) {
            j.dims[j.rank - 1] *= x->dims[d];
        } else {
            j.dims[j.rank] = x->dims[d];
            j.reduced[j.rank++] = red;
        }
    }
    int n_red = 0, first_red = -1;
    for (int d = 0; d < j.rank; d++)
        if (j.reduced[d]) {
            n_red++;
            if (first_red < 0) first_red = d;
        }
    if (n_red <= 1) {
        /* [outer][red][inner]; with nothing to reduce, red = 1 makes it a copy (or Mean of one) */
        j.outer = first_red < 0 ? octet_tensor_numel(x) : oct_math_span(j.dims, 0, first_red);
        j.red = first_red < 0 ? 1 : j.dims[first_red];
        j.inner = first_red < 0 ? 1 : oct_math_span(j.dims, first_red + 1, j.rank);
        int64_t row = j.red * j.inner > 0 ? j.red * j.inner : 1;
        oct_math_parallel(ctx, j.outer, OCT_MATH_GRAIN / row + 1, rows_range, &j);
    } else {
        int64_t out_n = octet_tensor_numel(y);
        int64_t per = out_n > 0 ? octet_tensor_numel(x) / out_n : 1;
        oct_math_parallel(ctx, out_n, OCT_MATH_GRAIN / (per > 0 ? per : 1) + 1, general_range, &j);
    }
    return 0;
}

const oct_op oct_op_reduce_sum = {"", "ReduceSum", OCT_OP_TEAM, reduce_infer, reduce_run, NULL};
const oct_op oct_op_reduce_mean = {"", "ReduceMean", OCT_OP_TEAM, reduce_infer, reduce_run, NULL};
const oct_op oct_op_reduce_max = {"", "ReduceMax", OCT_OP_TEAM, reduce_infer, reduce_run, NULL};
