/* Helpers shared by the math ops: threading, params, broadcasting and dtype checks. */
#include <stdlib.h>

#include "math_ops.h"
#include "team.h"

typedef struct {
    oct_math_range_fn fn;
    const void *arg;
    int64_t n;
} range_job;

static void range_part(void *arg, int tid, int nthreads) {
    const range_job *j = arg;
    int64_t b, e;
    oct_static_range(j->n, tid, nthreads, &b, &e);
    if (e > b) j->fn(j->arg, b, e);
}

void oct_math_parallel(const oct_run_ctx *ctx, int64_t n, int64_t grain, oct_math_range_fn fn, const void *arg) {
    int64_t chunks = grain > 0 ? n / grain : n;
    if (chunks > ctx->threads) chunks = ctx->threads;
    if (chunks <= 1) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    range_job j = {fn, arg, n};
    oct_parallel(ctx, (int)chunks, range_part, &j);
}

void *oct_math_new_params(oct_node *n, size_t size, octet_error *err) {
    /* infer may run again on the same node after the passes; the old block is ours to drop */
    free(n->params);
    n->params = calloc(1, size);
    if (!n->params) oct_fail(err, OCTET_ERR_NOMEM, "out of memory for node parameters");
    return n->params;
}

int oct_math_bcast(oct_bcast *bc, const oct_tensor *out, int n_in, const oct_tensor *const *in,
                   octet_error *err) {
    int ranks[OCT_BCAST_MAX_IN];
    const int64_t *dims[OCT_BCAST_MAX_IN];
    for (int i = 0; i < n_in; i++) {
        ranks[i] = in[i]->rank;
        dims[i] = in[i]->dims;
    }
    if (oct_bcast_plan(bc, out->rank, out->dims, n_in, ranks, dims) < 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "bound tensors do not broadcast to the planned output shape");
    return 0;
}

int oct_math_infer_bcast(oct_graph *g, const oct_node *n, int n_in, int *rank, int64_t *dims,
                         octet_error *err) {
    const oct_value *v0 = oct_in_val(g, n, 0);
    *rank = v0->rank;
    for (int d = 0; d < v0->rank; d++) dims[d] = v0->dims[d];
    for (int i = 1; i < n_in; i++) {
        const oct_value *v = oct_in_val(g, n, i);
        int64_t tmp[OCTET_MAX_RANK];
        int r;
        if (oct_broadcast_shape(*rank, dims, v->rank, v->dims, &r, tmp, NULL) < 0) {
            char sa[160], sb[160];
            oct_format_shape(sa, sizeof sa, *rank, dims);
            oct_format_shape(sb, sizeof sb, v->rank, v->dims);
            return oct_fail(err, OCTET_ERR_SHAPE, "input %d ('%s') of shape %s does not broadcast with %s",
                            i, v->name, sb, sa);
        }
        *rank = r;
        for (int d = 0; d < r; d++) dims[d] = tmp[d];
    }
    return 0;
}

int oct_math_is_int(octet_dtype dt) {
    return dt == OCTET_INT8 || dt == OCTET_UINT8 || dt == OCTET_INT32 || dt == OCTET_INT64;
}

int oct_math_is_numeric(octet_dtype dt) {
    return dt == OCTET_FLOAT || oct_math_is_int(dt);
}

int oct_math_same_dtype(oct_graph *g, const oct_node *n, int n_in, octet_error *err) {
    octet_dtype dt = oct_in_val(g, n, 0)->dtype;
    for (int i = 1; i < n_in; i++) {
        if (!oct_node_has_input(n, i)) continue;
        const oct_value *v = oct_in_val(g, n, i);
        if (v->dtype != dt)
            return oct_fail(err, OCTET_ERR_SHAPE, "input %d ('%s') is %s but input 0 is %s", i, v->name,
                            octet_dtype_name(v->dtype), octet_dtype_name(dt));
    }
    return (int)dt;
}

int64_t oct_math_span(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= dims[d];
    return p;
}
