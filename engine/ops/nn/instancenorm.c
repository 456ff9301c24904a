/* InstanceNormalization (opset 6): each (batch, channel) plane is normalised by its own mean and
   variance, then scaled and shifted per channel. Statistics in double (96^3 planes). */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"

typedef struct {
    int64_t N, C, vol;
    int threads;
} in_params;

static int in_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 3, 3, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "InstanceNormalization has %d outputs", n->n_out);
    static const char *const names[3] = {"input", "scale", "B"};
    for (int i = 0; i < 3; i++)
        if (nn_require_float(g, n, i, names[i], err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->rank < 3)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has rank %d, needs at least 3", x->name, x->rank);
    for (int i = 1; i < 3; i++) {
        const oct_value *s = oct_in_val(g, n, i);
        if (s->rank != 1 || s->dims[0] != x->dims[1])
            return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' must have shape [%lld]", names[i], s->name,
                            (long long)x->dims[1]);
    }
    in_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->vol = 1;
    for (int d = 2; d < x->rank; d++) p->vol *= x->dims[d];
    p->threads = nn_plan_threads();
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, x->dims);
    return 0;
}

static int in_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const in_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "InstanceNormalization run before infer");
    const float *x = oct_in(ctx, n, 0)->data, *scale = oct_in(ctx, n, 1)->data, *bias = oct_in(ctx, n, 2)->data;
    float *y = oct_out(ctx, n, 0)->data;
    const double eps = oct_attr_float(n, "epsilon", 1e-5f);
    const int t = nn_run_threads(ctx, p->threads);
    const int64_t planes = p->N * p->C;
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && planes * p->vol > 65536)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t c = pl % p->C;
        double mean, var;
        oct_ref_mean_var(x + pl * p->vol, p->vol, &mean, &var);
        const double a = scale[c] / sqrt(var + eps);
        oct_ref_scale_shift(x + pl * p->vol, p->vol, (float)a, (float)(bias[c] - mean * a), y + pl * p->vol);
    }
    return 0;
}

const oct_op oct_op_instance_normalization = {"", "InstanceNormalization", 0, in_infer, in_run, NULL};
