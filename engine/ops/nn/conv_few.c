/* Conv's few-channel strategy: dense 2-D convolutions over at most OCT_DWF_DENSE_MAX_C input
   channels at column stride 2 with windows up to 5 wide (image stems: 3 channels, 3x3), by output rows
   (kernels/ref/dwconv_rows_f32.h). im2col would write 27..147 values per output pixel that then
   feed only 32..64 multiply-adds each; here every input channel's rows are copied once per band
   into a padded L1 scratch and each loaded vector feeds four output channels. Work items are
   (image, run of output rows) over all output channels, so that the band's copy serves them all.
   OCTET_CONV_FEW=0 turns the strategy off (measurements). */
#include <stdlib.h>

#include "conv.h"
#include "ref/dwconv_rows_f32.h"
#include "team.h"

typedef struct {
    const oct_dwf_kernels *rk; /* the level selected at plan time: a plan fixes its kernels */
    oct_dwf_plan pl;
    int64_t rows; /* output rows per work item */
} conv_few_plan;

int conv_few_fits(const conv_params *p) {
    const char *force = getenv("OCTET_CONV_FEW");
    if (force && force[0] == '0') return 0;
    const oct_dwf_kernels *rk = oct_dwf_kernels_selected();
    const oct_conv_geom *g = &p->geom;
    oct_dwf_plan pl;
    /* 7x7 stems (ResNet) measured even with im2col + GEMM: 28 weight broadcasts per 56 FMAs per
       kernel row keep the loop from the FMA bound; 3x3 ones (MobileNet, EfficientNet) 1.5x faster */
    if (!rk || p->group != 1 || p->Cg > OCT_DWF_DENSE_MAX_C || g->in[0] != 1 || g->k[0] != 1 || g->stride[2] != 2 ||
        g->k[2] > 5)
        return 0;
    return oct_dwf_plan_init(g, OCT_DWF_PHASES, &pl);
}

int conv_plan_few(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    (void)g;
    conv_few_plan *f = malloc(sizeof *f);
    if (!f) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning a convolution");
    f->rk = oct_dwf_kernels_selected();
    if (!f->rk || !oct_dwf_plan_init(&p->geom, OCT_DWF_PHASES, &f->pl)) {
        free(f);
        return oct_fail(err, OCTET_ERR_INTERNAL, "Conv '%s': the few-channel plan refused its geometry", n->name);
    }
    /* about four items per thread, in whole bands */
    const int64_t bands = (f->pl.oh + f->pl.band - 1) / f->pl.band;
    int64_t per_image = p->N >= 4 * (int64_t)p->threads ? 1 : (4 * (int64_t)p->threads + p->N - 1) / p->N;
    if (per_image > bands) per_image = bands;
    f->rows = (bands + per_image - 1) / per_image * f->pl.band;
    p->few = f;
    /* 64 more: the kernels' aligned vectors, the workspace may not be */
    p->slice_bytes = oct_dwf_dense_scratch_bytes(&f->pl, (int)p->Cg) + 64;
    if (p->slice_bytes > SIZE_MAX / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "Conv workspace size overflows");
    n->workspace_bytes = p->slice_bytes * (size_t)p->threads;
    return 0;
}

typedef struct {
    const oct_run_ctx *ctx;
    const conv_params *p;
    const float *x, *w, *bias, *res;
    float *y;
    oct_act act;
    int64_t chunks; /* items per image */
} few_job;

static void few_item(void *arg, int64_t it, int tid) {
    const few_job *j = arg;
    const conv_params *p = j->p;
    const conv_few_plan *f = p->few;
    const int64_t b = it / j->chunks, r0 = it % j->chunks * f->rows;
    const int64_t r1 = r0 + f->rows < f->pl.oh ? r0 + f->rows : f->pl.oh;
    const uintptr_t at = (uintptr_t)j->ctx->workspace + (size_t)tid * p->slice_bytes;
    void *scratch = (void *)((at + 63) & ~(uintptr_t)63);
    const int64_t yoff = b * p->M * p->P;
    oct_dwf_dense_f32(f->rk, &f->pl, j->x + b * p->C * p->in_vol, p->in_vol, (int)p->Cg, j->w,
                      p->M, j->bias, j->res ? j->res + yoff : NULL, &j->act, j->y + yoff, p->P, r0, r1, scratch);
}

void conv_run_few(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x, const float *w,
                  const float *bias, const float *res, float *y) {
    const conv_few_plan *f = p->few;
    few_job j = {ctx, p, x, w, bias, res, y, nn_node_act(n), (f->pl.oh + f->rows - 1) / f->rows};
    oct_parallel_for(ctx, nn_run_threads(ctx, p->threads), p->N * j.chunks, few_item, &j);
}
