/* Conv's depthwise strategy (one input channel per group). Wide planes (dw_rows_f32_pays) run the row kernels of kernels/ref/dwconv_rows_f32.h where the ISA level has them (AVX-512;
   OCTET_DW_ROWS=0 turns them off). Other channels that fill blocks of 16 (dw_path.h)
   with constant weights run the channel-blocked kernels of kernels/ref/dwconv_blocked.h (blocks of 16
   channels, work items of a block and a run of output rows); other 2-D windows without dilation
   run the SIMD band kernels of kernels/ref/dwconv_kernels.h (phase planes + one flat FMA stream
   per band, epilogue in the row write-back), one output channel per work item; both with a
   scratch slice per thread. Other windows (3-D, dilated, very large kernels or strides) run the
   direct ref loop.
   A node with a second output is a Conv with the SE squeeze fused in (engine/passes/fuse_se.c,
   run through global_pool.c): that output gets each channel's mean, summed while the rows are
   written, so that the pool does not read the tensor again. */
#include <stdlib.h>

#include "conv.h"
#include "dw_path.h"
#include "ref/dwconv_kernels.h"
#include "team.h"

/* What planning keeps in p->dw_w (NULL: the ref loop). */
typedef struct {
    oct_dw_plan plan;   /* the band kernels' */
    int rows;           /* rplan is valid and pays: the row kernels rk run */
    oct_dwf_plan rplan;
    const oct_dwf_kernels *rk; /* the level selected at plan time: a plan fixes its kernels */
    int blocked;        /* bplan is valid and pays: the blocked kernels run on wb */
    oct_dwb_plan bplan;
    _Alignas(64) float wb[]; /* blocked: [blocks][kvol][OCT_DWB_LANES], lanes past M zero */
} dw_f32_plan;

int conv_plan_depthwise(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    n->workspace_bytes = 0; /* the ref loop writes straight into the output */
    oct_dw_plan plan;
    if (!oct_dw_plan_init(&p->geom, &plan)) return 0;
    oct_dwb_plan bplan;
    oct_dwf_plan rplan;
    const oct_value *wv = oct_in_val(g, n, 1);
    const char *force = getenv("OCTET_DW_ROWS"); /* 0: not the row path (tests, measurements) */
    const int rows = !(force && force[0] == '0') && dw_rows_f32_pays(&p->geom, &rplan);
    /* the blocked weights are arranged once, here: only for constant weights */
    const int blocked = !rows && wv->kind == OCT_VAL_CONST && wv->data && dw_blocked_pays(&p->geom, p->M, p->Mg, &bplan);
    /* rows and blocked: 64 more, for dw_align64 (the kernels' aligned vectors; the workspace may not be) */
    const size_t slice = rows      ? oct_dwf_scratch_bytes(&rplan) + 64
                         : blocked ? oct_dwb_scratch_bytes(&bplan) + 64
                                   : oct_dw_scratch_bytes(&plan);
    if (slice > SIZE_MAX / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "depthwise convolution workspace size overflows");
    const size_t blocks = (size_t)(p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    const size_t wb_count = blocked ? blocks * (size_t)p->kvol * OCT_DWB_LANES : 0; /* M, kvol fit an int */
    const size_t bytes = (sizeof(dw_f32_plan) + wb_count * sizeof(float) + 63) / 64 * 64;
    dw_f32_plan *kept = aligned_alloc(64, bytes);
    if (!kept) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning a depthwise convolution");
    kept->plan = plan;
    kept->rows = rows;
    kept->rk = rows ? oct_dwf_kernels_selected() : NULL;
    if (rows) kept->rplan = rplan;
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

/* What a depthwise run's work items share. */
typedef struct {
    const oct_run_ctx *ctx;
    const conv_params *p;
    const dw_f32_plan *kept;
    const float *x, *w, *bias, *res;
    const oct_act *act;
    float *y, *mean; /* mean: [N, M] channel means, or NULL */
    int64_t blocks, rows, chunks; /* blocked: channel blocks, rows per item, items per block */
} dw_job;

static void blocked_item(void *arg, int64_t it, int tid) {
    const dw_job *j = arg;
    const conv_params *p = j->p;
    const oct_dwb_plan *pl = &j->kept->bplan;
    void *scratch = dw_align64((char *)j->ctx->workspace + (size_t)tid * p->slice_bytes);
    const int64_t chunk = it % j->chunks, bb = it / j->chunks, b = bb / j->blocks, blk = bb % j->blocks;
    const int64_t m0 = blk * OCT_DWB_LANES;
    const int nch = p->M - m0 < OCT_DWB_LANES ? (int)(p->M - m0) : OCT_DWB_LANES;
    const int64_t r0 = chunk * j->rows, r1 = r0 + j->rows < pl->oh ? r0 + j->rows : pl->oh;
    const int64_t yoff = (b * p->M + m0) * p->P;
    double sums[OCT_DWB_LANES] = {0};
    oct_dwb_conv_f32(oct_dwb_kernels_selected(), oct_dw_kernels_selected(), pl, j->x + (b * p->C + m0) * p->in_vol,
                     p->in_vol, nch, j->kept->wb + blk * p->kvol * OCT_DWB_LANES, j->bias ? j->bias + m0 : NULL,
                     j->res ? j->res + yoff : NULL, j->act, j->y + yoff, p->P, r0, r1, j->mean ? sums : NULL, scratch);
    for (int l = 0; j->mean && l < nch; l++) j->mean[b * p->M + m0 + l] = (float)(sums[l] / (double)p->P);
}

/* The blocked kernels: items are (image, block of channels, run of output rows). */
static void run_blocked(int t, dw_job *j) {
    const conv_params *p = j->p;
    const oct_dwb_plan *pl = &j->kept->bplan;
    j->blocks = (p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    /* a channel's mean needs all its rows in one item */
    j->rows = j->mean ? pl->oh : oct_dwb_rows_per_item(pl, p->N * j->blocks, t);
    j->chunks = (pl->oh + j->rows - 1) / j->rows;
    oct_parallel_for(j->ctx, t, p->N * j->blocks * j->chunks, blocked_item, j);
}

/* Items of the row path: (image, block of 16 channels, run of output rows), as the blocked path's,
   so that with 2 threads each reads the channels its producer wrote (nn_feeds_channel_split). */
static void rows_item(void *arg, int64_t it, int tid) {
    const dw_job *j = arg;
    const conv_params *p = j->p;
    const oct_dwf_plan *pl = &j->kept->rplan;
    void *scratch = dw_align64((char *)j->ctx->workspace + (size_t)tid * p->slice_bytes);
    const int64_t chunk = it % j->chunks, bb = it / j->chunks, b = bb / j->blocks, m0 = bb % j->blocks * OCT_DWB_LANES;
    const int64_t m1 = p->M - m0 < OCT_DWB_LANES ? p->M : m0 + OCT_DWB_LANES;
    const int64_t r0 = chunk * j->rows, r1 = r0 + j->rows < pl->oh ? r0 + j->rows : pl->oh;
    const oct_dwf_kernels *rk = j->kept->rk;
    for (int64_t m = m0; m < m1; m++) {
        const int64_t c = m / p->Mg, yoff = (b * p->M + m) * p->P;
        double s = 0.0;
        oct_dwf_conv_f32(rk, pl, j->x + (b * p->C + c) * p->in_vol, j->w + m * p->kvol, j->bias ? j->bias[m] : 0.f,
                         j->res ? j->res + yoff : NULL, j->act, j->y + yoff, r0, r1, j->mean ? &s : NULL, scratch);
        if (j->mean) j->mean[b * p->M + m] = (float)(s / (double)p->P);
    }
}

static void run_rows(int t, dw_job *j) {
    const conv_params *p = j->p;
    const int64_t oh = j->kept->rplan.oh;
    j->blocks = (p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    /* a channel's mean needs all its rows in one item */
    j->rows = j->mean ? oh : dw_rows_per_item(oh, p->N * j->blocks, t);
    j->chunks = (oh + j->rows - 1) / j->rows;
    oct_parallel_for(j->ctx, t, p->N * j->blocks * j->chunks, rows_item, j);
}

/* One output channel through the ref loop (windows the band kernels do not cover). */
static void ref_item(void *arg, int64_t it, int tid) {
    (void)tid;
    const dw_job *j = arg;
    const conv_params *p = j->p;
    const int64_t b = it / p->M, m = it % p->M;
    const int64_t c = m / p->Mg; /* the input channel of m's group */
    float *yc = j->y + it * p->P;
    oct_ref_conv_depthwise(&p->geom, j->x + (b * p->C + c) * p->in_vol, j->w + m * p->kvol, j->bias ? j->bias[m] : 0.f,
                           j->res ? j->res + it * p->P : NULL, j->act, yc);
    if (j->mean) {
        double s = 0.0;
        for (int64_t i = 0; i < p->P; i++) s += yc[i];
        j->mean[it] = (float)(s / (double)p->P);
    }
}

/* One output channel through the per-channel band kernels. */
static void band_item(void *arg, int64_t it, int tid) {
    const dw_job *j = arg;
    const conv_params *p = j->p;
    void *scratch = (char *)j->ctx->workspace + (size_t)tid * p->slice_bytes;
    const int64_t b = it / p->M, m = it % p->M;
    const int64_t c = m / p->Mg;
    const double s = oct_dw_conv_f32(oct_dw_kernels_selected(), &j->kept->plan, j->x + (b * p->C + c) * p->in_vol,
                                     j->w + m * p->kvol, j->bias ? j->bias[m] : 0.f,
                                     j->res ? j->res + it * p->P : NULL, j->act, j->y + it * p->P, j->mean != NULL,
                                     scratch);
    if (j->mean) j->mean[it] = (float)(s / (double)p->P);
}

void conv_run_depthwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                        const float *w, const float *bias, const float *res, float *y) {
    const int t = nn_run_threads(ctx, p->threads);
    const oct_act act = nn_node_act(n);
    dw_job j = {.ctx = ctx, .p = p, .kept = p->dw_w, .x = x, .w = w, .bias = bias, .res = res, .act = &act, .y = y,
                .mean = n->n_out > 1 ? oct_out(ctx, n, 1)->data : NULL};
    if (j.kept && j.kept->rows) run_rows(t, &j);
    else if (j.kept && j.kept->blocked) run_blocked(t, &j);
    else if (!j.kept) oct_parallel_steal(ctx, t, p->N * p->M, ref_item, &j);
    /* Channels cost the same: contiguous static halves, no shared counter to bounce between cores
       for hundreds of tiny planes (960 channels of 7x7). */
    else oct_parallel_for(ctx, t, p->N * p->M, band_item, &j);
}
