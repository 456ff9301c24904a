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
#include "ref/stem_lanes.h"
#include "team.h"

typedef struct {
    const oct_dwf_kernels *rk; /* the level selected at plan time: a plan fixes its kernels */
    oct_dwf_plan pl;
    int64_t oh;   /* output rows */
    int64_t rows; /* output rows per work item */
    /* windows wider than 5 on AVX-512: output channels in the lanes (ref/stem_lanes.h) */
    oct_stem_rows_fn lanes;
    oct_stem_geom sg;
    float *wl; /* the weights packed for it */
} conv_few_plan;

/* The lane-layout kernel for this layer, or NULL: AVX-512, whole blocks of 64 output channels,
   windows 6 to 11 wide (ResNet's 7x7 stem). */
static oct_stem_rows_fn lanes_kernel(const conv_params *p) {
#if defined(__x86_64__)
    const oct_conv_geom *g = &p->geom;
    if (oct_dwf_kernels_selected() == oct_dwf_kernels_for(OCT_ISA_AVX512) && p->M % OCT_STEM_MBLOCK == 0 &&
        g->k[2] > 5 && g->k[2] <= 11 && g->dil[1] == 1 && g->dil[2] == 1)
        return oct_avx512_stem_rows_f32;
#else
    (void)p;
#endif
    return NULL;
}

int conv_few_fits(oct_graph *g, const oct_node *n, const conv_params *p) {
    const char *force = getenv("OCTET_CONV_FEW");
    if (force && force[0] == '0') return 0;
    const oct_dwf_kernels *rk = oct_dwf_kernels_selected();
    const oct_conv_geom *ge = &p->geom;
    oct_dwf_plan pl;
    if (!rk || p->group != 1 || p->Cg > OCT_DWF_DENSE_MAX_C || ge->in[0] != 1 || ge->k[0] != 1 || ge->stride[2] != 2)
        return 0;
    /* Wider windows (ResNet's 7x7) take the lane kernel, which packs constant weights at plan time
       and adds no residual: the row kernel measured even with im2col + GEMM there (28 weight
       broadcasts per 56 FMAs per kernel row keep its loop from the FMA bound); on 3x3 stems
       (MobileNet, EfficientNet) the row kernel is 1.5x faster than im2col. */
    if (ge->k[2] > 5) return n->epi.residual < 0 && nn_input_is_const(g, n, 1) && lanes_kernel(p) != NULL;
    return oct_dwf_plan_init(ge, OCT_DWF_PHASES, &pl);
}

/* The lane kernel's geometry and packed weights (none for an infer whose params are discarded). */
static int plan_lanes(oct_graph *g, oct_node *n, conv_params *p, conv_few_plan *f, octet_error *err) {
    const oct_conv_geom *ge = &p->geom;
    f->sg = (oct_stem_geom){.ih = ge->in[1], .iw = ge->in[2], .oh = ge->out[1], .ow = ge->out[2], .kh = ge->k[1],
                            .kw = ge->k[2], .sh = ge->stride[1], .sw = ge->stride[2], .pt = ge->pad[1],
                            .pl = ge->pad[2], .channels = p->Cg, .m = p->M};
    n->run_unread_inputs |= 1u << 1;
    if (g->shapes_only) return 0;
    f->wl = malloc(nn_float_bytes(oct_stem_weights_floats(&f->sg)));
    if (!f->wl) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing the weights of '%s'", n->name);
    oct_stem_pack(&f->sg, oct_in_val(g, n, 1)->data, f->wl);
    return 0;
}

int conv_plan_few(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    conv_few_plan *f = malloc(sizeof *f);
    if (!f) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning a convolution");
    f->rk = oct_dwf_kernels_selected();
    f->lanes = p->geom.k[2] > 5 ? lanes_kernel(p) : NULL; /* conv_few_fits checked the rest */
    f->wl = NULL;
    int64_t band;
    if (f->lanes) {
        p->few = f;
        if (plan_lanes(g, n, p, f, err)) return -1;
        f->oh = f->sg.oh;
        band = 1;
        p->slice_bytes = oct_stem_scratch_bytes(&f->sg);
    } else {
        if (!f->rk || !oct_dwf_plan_init(&p->geom, OCT_DWF_PHASES, &f->pl)) {
            free(f);
            return oct_fail(err, OCTET_ERR_INTERNAL, "Conv '%s': the few-channel plan refused its geometry", n->name);
        }
        p->few = f;
        f->oh = f->pl.oh;
        band = f->pl.band;
        /* 64 more: the kernels' aligned vectors, the workspace may not be */
        p->slice_bytes = oct_dwf_dense_scratch_bytes(&f->pl, (int)p->Cg) + 64;
    }
    /* about four items per thread, in whole bands */
    const int64_t bands = (f->oh + band - 1) / band;
    int64_t per_image = p->N >= 4 * (int64_t)p->threads ? 1 : (4 * (int64_t)p->threads + p->N - 1) / p->N;
    if (per_image > bands) per_image = bands;
    f->rows = (bands + per_image - 1) / per_image * band;
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
    const int64_t r1 = r0 + f->rows < f->oh ? r0 + f->rows : f->oh;
    const uintptr_t at = (uintptr_t)j->ctx->workspace + (size_t)tid * p->slice_bytes;
    void *scratch = (void *)((at + 63) & ~(uintptr_t)63);
    const int64_t yoff = b * p->M * p->P;
    if (f->lanes) {
        f->lanes(&f->sg, j->x + b * p->C * p->in_vol, p->in_vol, f->wl, j->bias, &j->act, j->y + yoff, p->P, r0, r1,
                 scratch);
        return;
    }
    oct_dwf_dense_f32(f->rk, &f->pl, j->x + b * p->C * p->in_vol, p->in_vol, (int)p->Cg, j->w,
                      p->M, j->bias, j->res ? j->res + yoff : NULL, &j->act, j->y + yoff, p->P, r0, r1, scratch);
}

void conv_run_few(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x, const float *w,
                  const float *bias, const float *res, float *y) {
    const conv_few_plan *f = p->few;
    few_job j = {ctx, p, x, w, bias, res, y, nn_node_act(n), (f->oh + f->rows - 1) / f->rows};
    oct_parallel_for(ctx, nn_run_threads(ctx, p->threads), p->N * j.chunks, few_item, &j);
}

void conv_few_free(void *few) {
    conv_few_plan *f = few;
    if (f) free(f->wl);
    free(f);
}
