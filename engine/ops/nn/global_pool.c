/* GlobalAveragePool and GlobalMaxPool: one value per (batch, channel) plane, any number of
   spatial dims. */
#include <stdlib.h>

#include "misc_kernels.h"
#include "nn_common.h"

typedef struct {
    int64_t planes, vol;
    int threads;
} gpool_params;

static int gpool_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs, expects 1", n->op_type, n->n_out);
    if (nn_require_float(g, n, 0, "input", err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->rank < 3)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s input '%s' has rank %d, needs at least 3", n->op_type, x->name,
                        x->rank);
    gpool_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    int64_t dims[OCTET_MAX_RANK];
    p->planes = x->dims[0] * x->dims[1];
    p->vol = 1;
    for (int d = 0; d < x->rank; d++) {
        dims[d] = d < 2 ? x->dims[d] : 1;
        if (d >= 2) p->vol *= x->dims[d];
    }
    if (p->vol == 0 && p->planes > 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s over an empty spatial extent", n->op_type);
    p->threads = nn_plan_threads();
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, dims);
    return 0;
}

static int gpool_run(const oct_run_ctx *ctx, const oct_node *n, int is_max, octet_error *err) {
    const gpool_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    const float *x = oct_in(ctx, n, 0)->data;
    float *y = oct_out(ctx, n, 0)->data;
    const int t = nn_run_threads(ctx, p->threads);
    const oct_misc_kernel_set *k = oct_misc_kernels();
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1 && p->planes * p->vol > 65536)
    for (int64_t c = 0; c < p->planes; c++) {
        const float *xc = x + c * p->vol;
        /* the sum comes back in double: planes reach 96^3 elements */
        y[c] = is_max ? k->max_f32(xc, p->vol) : (float)(k->sum_f32(xc, p->vol) / (double)p->vol);
    }
    return 0;
}

static int gavg_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) { return gpool_run(ctx, n, 0, err); }
static int gmax_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) { return gpool_run(ctx, n, 1, err); }

const oct_op oct_op_global_average_pool = {"", "GlobalAveragePool", 0, gpool_infer, gavg_run, NULL};
const oct_op oct_op_global_max_pool = {"", "GlobalMaxPool", 0, gpool_infer, gmax_run, NULL};
