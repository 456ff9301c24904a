/* BatchNormalization in inference mode (opsets 7, 9, 14, 15): y = (x - mean) / sqrt(var + eps) *
   scale + B, folded per channel into y = a*x + b. Training mode (training_mode=1, or any of the
   running/saved statistics outputs) is not supported. opset 7's spatial=0 (statistics per element
   of a [C, D1, ...] plane) is handled as well. */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "team.h"

typedef struct {
    int64_t N, C, vol;
    int per_element; /* statistics shaped [C, D1, ...] instead of [C] */
    int threads;
} bn_params;

static int bn_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 5, 5, err)) return -1;
    if (oct_attr_int(n, "training_mode", 0) != 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "BatchNormalization in training mode is not supported");
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                            "BatchNormalization output %d (training statistics) is not supported", i);
    static const char *const names[5] = {"X", "scale", "B", "mean", "var"};
    for (int i = 0; i < 5; i++)
        if (nn_require_float(g, n, i, names[i], err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->rank < 2) return oct_fail(err, OCTET_ERR_SHAPE, "X '%s' has rank %d, needs at least 2", x->name, x->rank);
    bn_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->vol = 1;
    for (int d = 2; d < x->rank; d++) p->vol *= x->dims[d];
    const int64_t want = oct_value_numel(oct_in_val(g, n, 1));
    p->per_element = want != p->C && want == p->C * p->vol;
    for (int i = 1; i < 5; i++) {
        const oct_value *s = oct_in_val(g, n, i);
        int64_t cnt = oct_value_numel(s);
        if (cnt != (p->per_element ? p->C * p->vol : p->C) || (!p->per_element && s->rank != 1))
            return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' must have shape [%lld]", names[i], s->name,
                            (long long)p->C);
    }
    p->threads = nn_plan_threads();
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, x->dims);
    return 0;
}

typedef struct {
    const bn_params *p;
    const float *x;
    float *y;
    const float *scale, *bias, *mean, *var;
    double eps;
} bn_job;

static void bn_plane(void *arg, int64_t pl, int tid) {
    (void)tid;
    const bn_job *j = arg;
    const bn_params *p = j->p;
    const int64_t c = pl % p->C;
    const float *xp = j->x + pl * p->vol;
    float *yp = j->y + pl * p->vol;
    if (!p->per_element) {
        double a = j->scale[c] / sqrt((double)j->var[c] + j->eps);
        oct_ref_scale_shift(xp, p->vol, (float)a, (float)(j->bias[c] - j->mean[c] * a), yp);
        return;
    }
    for (int64_t i = 0; i < p->vol; i++) {
        int64_t s = c * p->vol + i;
        double a = j->scale[s] / sqrt((double)j->var[s] + j->eps);
        yp[i] = (float)((xp[i] - j->mean[s]) * a + j->bias[s]);
    }
}

static int bn_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const bn_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "BatchNormalization run before infer");
    const float *x = oct_in(ctx, n, 0)->data, *scale = oct_in(ctx, n, 1)->data, *bias = oct_in(ctx, n, 2)->data;
    const float *mean = oct_in(ctx, n, 3)->data, *var = oct_in(ctx, n, 4)->data;
    float *y = oct_out(ctx, n, 0)->data;
    const double eps = oct_attr_float(n, "epsilon", 1e-5f);
    const int64_t planes = p->N * p->C;
    bn_job j = {p, x, y, scale, bias, mean, var, eps};
    oct_parallel_for(ctx, planes * p->vol > 65536 ? nn_run_threads(ctx, p->threads) : 1, planes, bn_plane, &j);
    return 0;
}

const oct_op oct_op_batch_normalization = {"", "BatchNormalization", OCT_OP_TEAM, bn_infer, bn_run, NULL};
