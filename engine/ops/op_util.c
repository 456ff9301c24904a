/* Shared helpers for operator shape inference. */
#include <string.h>

#include "../op.h"

void oct_set_output(oct_graph *g, const oct_node *n, int i, octet_dtype dtype, int rank,
                    const int64_t *dims) {
    oct_value *v = &g->values[n->out[i]];
    v->dtype = dtype;
    v->rank = rank;
    for (int d = 0; d < rank; d++) v->dims[d] = dims[d];
}

int oct_check_inputs(const oct_node *n, int min, int max, octet_error *err) {
    if (n->n_in < min || n->n_in > max) {
        if (min == max) return oct_fail(err, OCTET_ERR_FORMAT, "expects %d inputs, has %d", min, n->n_in);
        return oct_fail(err, OCTET_ERR_FORMAT, "expects %d to %d inputs, has %d", min, max, n->n_in);
    }
    for (int i = 0; i < min; i++)
        if (n->in[i] < 0) return oct_fail(err, OCTET_ERR_FORMAT, "required input %d is missing", i);
    return 0;
}

const oct_value *oct_const_input(oct_graph *g, const oct_node *n, int i, octet_error *err) {
    if (!oct_node_has_input(n, i)) {
        oct_fail(err, OCTET_ERR_FORMAT, "input %d is missing", i);
        return NULL;
    }
    oct_value *v = &g->values[n->in[i]];
    if (v->kind == OCT_VAL_CONST && (v->data || oct_value_numel(v) == 0)) return v;
    if (v->kind == OCT_VAL_INPUT) v->value_needed = true;
    oct_fail(err, OCTET_ERR_UNSUPPORTED, "input '%s' must be a constant (octet plans static shapes)",
             v->name);
    return NULL;
}

int oct_const_ints(oct_graph *g, const oct_node *n, int i, int64_t *out, int max, octet_error *err) {
    const oct_value *v = oct_const_input(g, n, i, err);
    if (!v) return -1;
    if (v->dtype != OCTET_INT64 && v->dtype != OCTET_INT32)
        return oct_fail(err, OCTET_ERR_FORMAT, "input '%s' must be int64 or int32, is %s", v->name,
                        octet_dtype_name(v->dtype));
    int64_t cnt = oct_value_numel(v);
    if (cnt < 0 || cnt > max)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "input '%s' has %lld values, at most %d supported",
                        v->name, (long long)cnt, max);
    for (int64_t k = 0; k < cnt; k++)
        out[k] = v->dtype == OCTET_INT64 ? ((const int64_t *)v->data)[k] : ((const int32_t *)v->data)[k];
    return (int)cnt;
}

int oct_norm_axis(int64_t axis, int rank, int64_t *out, octet_error *err) {
    if (axis < -rank || axis >= (rank > 0 ? rank : 1))
        return oct_fail(err, OCTET_ERR_FORMAT, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

int oct_broadcast_shape(int ra, const int64_t *da, int rb, const int64_t *db, int *rout,
                        int64_t *dout, octet_error *err) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t a = i < r - ra ? 1 : da[i - (r - ra)];
        int64_t b = i < r - rb ? 1 : db[i - (r - rb)];
        if (a != b && a != 1 && b != 1)
            return oct_fail(err, OCTET_ERR_SHAPE, "shapes cannot broadcast: dim %d is %lld vs %lld", i,
                            (long long)a, (long long)b);
        dout[i] = a == 1 ? b : a;
    }
    *rout = r;
    return 0;
}
