/* Conv's depthwise strategy (one input channel per group). 2-D windows without dilation run the
   SIMD band kernels of kernels/ref/dwconv_kernels.h (phase planes + one flat FMA stream per band,
   epilogue in the row write-back), one output channel per work item, with a scratch slice per
   thread; other windows (3-D, dilated, very large kernels or strides) run the direct ref loop.
   A node with a second output is a Conv with the SE squeeze fused in (engine/passes/fuse_se.c,
   run through global_pool.c): that output gets each channel's mean, summed while the rows are
   written, so that the pool does not read the tensor again. */
#include <omp.h>
#include <stdlib.h>

#include "conv.h"
#include "ref/dwconv_kernels.h"

int conv_plan_depthwise(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    (void)g;
    n->workspace_bytes = 0; /* the ref loop writes straight into the output */
    oct_dw_plan plan;
    if (!oct_dw_plan_init(&p->geom, &plan)) return 0;
    const size_t slice = oct_dw_scratch_bytes(&plan);
    if (slice > SIZE_MAX / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "depthwise convolution workspace size overflows");
    oct_dw_plan *kept = malloc(sizeof *kept);
    if (!kept) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning a depthwise convolution");
    *kept = plan;
    p->dw_w = kept;
    p->slice_bytes = slice;
    n->workspace_bytes = slice * (size_t)p->threads;
    return 0;
}

void conv_run_depthwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                        const float *w, const float *bias, const float *res, float *y) {
    const int t = nn_run_threads(ctx, p->threads);
    const oct_act act = nn_node_act(n);
    const int64_t items = p->N * p->M;
    const oct_dw_plan *plan = p->dw_w;
    float *mean = n->n_out > 1 ? oct_out(ctx, n, 1)->data : NULL; /* [N, M] channel means */
    if (!plan) {
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && items > 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t b = it / p->M, m = it % p->M;
            const int64_t c = m / p->Mg; /* the input channel of m's group */
            float *yc = y + it * p->P;
            oct_ref_conv_depthwise(&p->geom, x + (b * p->C + c) * p->in_vol, w + m * p->kvol,
                                   bias ? bias[m] : 0.f, res ? res + it * p->P : NULL, &act, yc);
            if (mean) {
                double s = 0.0;
                for (int64_t i = 0; i < p->P; i++) s += yc[i];
                mean[it] = (float)(s / (double)p->P);
            }
        }
        return;
    }
    const oct_dw_kernels *k = oct_dw_kernels_selected();
#pragma omp parallel num_threads(t) if (t > 1 && items > 1)
    {
        void *scratch = (char *)ctx->workspace + (size_t)omp_get_thread_num() * p->slice_bytes;
/* Channels cost the same: contiguous static halves, no shared counter to bounce between
           cores for hundreds of tiny planes (960 channels of 7x7). */
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            const int64_t b = it / p->M, m = it % p->M;
            const int64_t c = m / p->Mg;
            const double s = oct_dw_conv_f32(k, plan, x + (b * p->C + c) * p->in_vol, w + m * p->kvol,
                                             bias ? bias[m] : 0.f, res ? res + it * p->P : NULL, &act,
                                             y + it * p->P, mean != NULL, scratch);
            if (mean) mean[it] = (float)(s / (double)p->P);
        }
    }
}
