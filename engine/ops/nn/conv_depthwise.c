/* Conv's depthwise strategy (one input channel per group): a direct loop per output channel;
   im2col + GEMM would be a one-row GEMM. */
#include "conv.h"

int conv_plan_depthwise(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    (void)g, (void)p, (void)err;
    n->workspace_bytes = 0; /* the loop writes straight into the output */
    return 0;
}

void conv_run_depthwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                        const float *w, const float *bias, const float *res, float *y) {
    const int t = nn_run_threads(ctx, p->threads);
    const oct_act act = nn_node_act(n);
    const int64_t items = p->N * p->M;
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && items > 1)
    for (int64_t it = 0; it < items; it++) {
        const int64_t b = it / p->M, m = it % p->M;
        const int64_t c = m / p->Mg; /* the input channel of m's group */
        oct_ref_conv_depthwise(&p->geom, x + (b * p->C + c) * p->in_vol, w + m * p->kvol, bias ? bias[m] : 0.f,
                               res ? res + it * p->P : NULL, &act, y + it * p->P);
    }
}
