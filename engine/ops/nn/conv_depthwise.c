/* Conv's depthwise strategy (one input channel per group). Channels that fill blocks of 16 (dw_path.h)
   with constant weights run the channel-blocked kernels of kernels/ref/dwconv_blocked.h (blocks of 16
   channels, work items of a block and a run of output rows); other 2-D windows without dilation
   run the SIMD band kernels of kernels/ref/dwconv_kernels.h (phase planes + one flat FMA stream
   per band, epilogue in the row write-back), one output channel per work item; both with a
   scratch slice per thread. Other windows (3-D, dilated, very large kernels or strides) run the
   direct ref loop.
   A node with a second output is a Conv with the SE squeeze fused in (engine/passes/fuse_se.c,
   run through global_pool.c): that output gets each channel's mean, summed while the rows are
   written, so that the pool does not read the tensor again. */
#include <omp.h>
#include <stdlib.h>

#include "conv.h"
#include "dw_path.h"
#include "ref/dwconv_kernels.h"

/* What planning keeps in p->dw_w (NULL: the ref loop). */
typedef struct {
    oct_dw_plan plan;   /* the band kernels' */
    int blocked;        /* bplan is valid and pays: the blocked kernels run on wb */
    oct_dwb_plan bplan;
    _Alignas(64) float wb[]; /* blocked: [blocks][kvol][OCT_DWB_LANES], lanes past M zero */
} dw_f32_plan;

int conv_plan_depthwise(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    n->workspace_bytes = 0; /* the ref loop writes straight into the output */
    oct_dw_plan plan;
    if (!oct_dw_plan_init(&p->geom, &plan)) return 0;
    oct_dwb_plan bplan;
    const oct_value *wv = oct_in_val(g, n, 1);
    /* the blocked weights are arranged once, here: only for constant weights */
    const int blocked = wv->kind == OCT_VAL_CONST && wv->data && dw_blocked_pays(&p->geom, p->M, p->Mg, &bplan);
    /* blocked: 64 more, for dw_align64 (the kernels' aligned vectors; the workspace may not be) */
    const size_t slice = blocked ? oct_dwb_scratch_bytes(&bplan) + 64 : oct_dw_scratch_bytes(&plan);
    if (slice > SIZE_MAX / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "depthwise convolution workspace size overflows");
    const size_t blocks = (size_t)(p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    const size_t wb_count = blocked ? blocks * (size_t)p->kvol * OCT_DWB_LANES : 0; /* M, kvol fit an int */
    const size_t bytes = (sizeof(dw_f32_plan) + wb_count * sizeof(float) + 63) / 64 * 64;
    dw_f32_plan *kept = aligned_alloc(64, bytes);
    if (!kept) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning a depthwise convolution");
    kept->plan = plan;
    kept->blocked = blocked;
    if (blocked) {
        kept->bplan = bplan;
        const float *w = wv->data;
        for (size_t b = 0; b < blocks; b++)
            for (int64_t t = 0; t < p->kvol; t++)
                for (size_t l = 0; l < OCT_DWB_LANES; l++) {
                    const size_t m = b * OCT_DWB_LANES + l;
                    kept->wb[(b * (size_t)p->kvol + (size_t)t) * OCT_DWB_LANES + l] =
                        m < (size_t)p->M ? w[m * (size_t)p->kvol + (size_t)t] : 0.f;
                }
    }
    p->dw_w = kept;
    p->slice_bytes = slice;
    n->workspace_bytes = slice * (size_t)p->threads;
    return 0;
}

/* The blocked kernels: items are (image, block of channels, run of output rows). */
static void run_blocked(const oct_run_ctx *ctx, int t, const conv_params *p, const dw_f32_plan *kept,
                        const float *x, const float *bias, const float *res, const oct_act *act, float *y,
                        float *mean) {
    const oct_dwb_kernels *bk = oct_dwb_kernels_selected();
    const oct_dw_kernels *k = oct_dw_kernels_selected();
    const oct_dwb_plan *pl = &kept->bplan;
    const int64_t blocks = (p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    /* a channel's mean needs all its rows in one item */
    const int64_t rows = mean ? pl->oh : oct_dwb_rows_per_item(pl, p->N * blocks, t);
    const int64_t chunks = (pl->oh + rows - 1) / rows, items = p->N * blocks * chunks;
#pragma omp parallel num_threads(t) if (t > 1 && items > 1)
    {
        void *scratch = dw_align64((char *)ctx->workspace + (size_t)omp_get_thread_num() * p->slice_bytes);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            const int64_t chunk = it % chunks, bb = it / chunks, b = bb / blocks, blk = bb % blocks;
            const int64_t m0 = blk * OCT_DWB_LANES;
            const int nch = p->M - m0 < OCT_DWB_LANES ? (int)(p->M - m0) : OCT_DWB_LANES;
            const int64_t r0 = chunk * rows, r1 = r0 + rows < pl->oh ? r0 + rows : pl->oh;
            const int64_t yoff = (b * p->M + m0) * p->P;
            double sums[OCT_DWB_LANES] = {0};
            oct_dwb_conv_f32(bk, k, pl, x + (b * p->C + m0) * p->in_vol, p->in_vol, nch,
                             kept->wb + blk * p->kvol * OCT_DWB_LANES, bias ? bias + m0 : NULL,
                             res ? res + yoff : NULL, act, y + yoff, p->P, r0, r1, mean ? sums : NULL, scratch);
            for (int l = 0; mean && l < nch; l++) mean[b * p->M + m0 + l] = (float)(sums[l] / (double)p->P);
        }
    }
}

void conv_run_depthwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                        const float *w, const float *bias, const float *res, float *y) {
    const int t = nn_run_threads(ctx, p->threads);
    const oct_act act = nn_node_act(n);
    const int64_t items = p->N * p->M;
    const dw_f32_plan *kept = p->dw_w;
    const oct_dw_plan *plan = kept ? &kept->plan : NULL;
    float *mean = n->n_out > 1 ? oct_out(ctx, n, 1)->data : NULL; /* [N, M] channel means */
    if (kept && kept->blocked) {
        run_blocked(ctx, t, p, kept, x, bias, res, &act, y, mean);
        return;
    }
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
