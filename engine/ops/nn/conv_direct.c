/* Conv's direct strategy (kernels/ref/direct_conv.h) for stride-1 convolutions with few channels:
   with M output channels, im2col writes C * kernel volume values per output pixel and each feeds
   only M multiply-adds, so below a few dozen output channels the unfolding costs more than the
   GEMM. The direct kernels read the input in place; the weights are packed here, once. Work items
   are (image, group, output plane, block of rows); inside one, every block of 8 output channels
   runs over 3 rows at a time while their input rows are still in cache. */
#include <stdlib.h>

#include "conv.h"
#include "ref/direct_conv.h"
#include "team.h"

/* Output channels per group up to which direct beats im2col + GEMM on 2-D (and 1-D) layers; 3-D
   layers gain at every width measured (U-Net levels up to 128 channels), see conv_direct_fits. */
enum { DIRECT_2D_MAX_M = 32 };

typedef struct {
    const oct_dconv_kernels *ks;
    int64_t rows;     /* output rows per work item */
    float *w;         /* per group: oct_dconv_f32_packed_floats(Mg, Cg, kvol) */
    size_t w_floats;  /* per group */
} conv_direct_plan;

int conv_direct_fits(oct_graph *g, const oct_node *n, const conv_params *p) {
    if (!oct_dconv_enabled()) return 0;
    const oct_conv_geom *geo = &p->geom;
    for (int i = 0; i < 3; i++)
        if (geo->stride[i] != 1) return 0;
    /* Real depthwise layers (one channel per group, several groups) keep their own loop; a
       single-channel input (C = 1, one group) is a dense layer with K = kvol. */
    if (p->Cg == 1 && p->group > 1) return 0;
    if (geo->k[2] > OCT_DCONV_KW_MAX || (geo->k[2] - 1) * geo->dil[2] > OCT_DCONV_REACH_MAX) return 0;
    if (g->values[n->in[1]].kind != OCT_VAL_CONST) return 0;
    if (!oct_dconv_select()->f32_simd) return 0;
    const int three_d = geo->out[0] > 1 || geo->k[0] > 1;
    /* 1x1 layers are a plain GEMM on the input (no unfolding to save) unless there are few
       channels on both sides of a 2-D plane, where the GEMM's packing dominates. On 3-D volumes
       the GEMM wins at every width measured (96^3, 1 thread: 4->4 1.1 vs 2.3 ms, 16->2 2.9 vs
       5.2, the U-Net head 16->14 6.3 vs 9.1; 32->16 at 48^3 even), as direct reads the input
       once per 8 output channels. */
    if (p->kvol == 1 && (three_d || p->Mg > DIRECT_2D_MAX_M || p->Cg > 64)) return 0;
    if (three_d) return 1;
    /* 2-D 3x3 layers that the Winograd strategy takes stay with it. */
    return p->Mg <= DIRECT_2D_MAX_M && !conv_winograd_fits(g, n, p);
}

int conv_plan_direct(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    n->workspace_bytes = 0;
    if (g->shapes_only) return 0; /* no packing for an infer whose params are discarded */
    const oct_value *wv = oct_const_input(g, n, 1, err);
    if (!wv) return -1;
    const size_t per = oct_dconv_f32_packed_floats(p->Mg, p->Cg, p->kvol);
    if (!per || per > SIZE_MAX / sizeof(float) / (size_t)p->group - 1)
        return oct_fail(err, OCTET_ERR_NOMEM, "packed weight size overflows");
    conv_direct_plan *d = calloc(1, sizeof *d);
    if (!d) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    p->direct = d;
    d->ks = oct_dconv_select();
    d->w_floats = per;
    d->w = malloc(per * (size_t)p->group * sizeof(float) + sizeof(float));
    if (!d->w) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    const float *w = wv->data;
    for (int64_t gi = 0; gi < p->group; gi++)
        oct_dconv_f32_pack(&p->geom, p->Mg, p->Cg, w + gi * p->Mg * p->K, d->w + gi * per);
    /* Blocks of 12 rows (whole 3-row tiles) unless that leaves too few items for the threads. */
    const int64_t planes = p->N * p->group * p->geom.out[0], OH = p->geom.out[1];
    d->rows = 12;
    while (d->rows > 3 && planes * ((OH + d->rows - 1) / d->rows) < 8 * (int64_t)p->threads) d->rows -= 3;
    return 0;
}

void conv_direct_free(void *direct) {
    conv_direct_plan *d = direct;
    if (!d) return;
    free(d->w);
    free(d);
}

typedef struct {
    const conv_params *p;
    const float *x, *bias, *res;
    float *y;
    oct_act act;
    int64_t row_blocks;
} direct_job;

/* One work item: a block of output rows at one output depth, of one image and group. */
static void direct_item(void *arg, int64_t it, int tid) {
    (void)tid;
    const direct_job *j = arg;
    const conv_params *p = j->p;
    const conv_direct_plan *d = p->direct;
    const int64_t OD = p->geom.out[0], OH = p->geom.out[1];
    const int64_t mblocks = (p->Mg + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    const int64_t rb = it % j->row_blocks, od = (it / j->row_blocks) % OD, bg = it / (j->row_blocks * OD);
    const int64_t b = bg / p->group, gi = bg % p->group;
    const int64_t yoff = (b * p->M + gi * p->Mg) * p->P;
    const oct_dconv_f32 a = {.g = p->geom, .channels = p->Cg, .outs = p->Mg,
                             .x = j->x + (b * p->C + gi * p->Cg) * p->in_vol, .w = d->w + gi * d->w_floats,
                             .bias = j->bias ? j->bias + gi * p->Mg : NULL, .res = j->res ? j->res + yoff : NULL,
                             .act = j->act, .y = j->y + yoff};
    const int64_t r1 = (rb + 1) * d->rows < OH ? (rb + 1) * d->rows : OH;
    for (int64_t oh = rb * d->rows; oh < r1; oh += 3)
        for (int64_t mb = 0; mb < mblocks; mb++) d->ks->f32(&a, mb, od, oh, r1 - oh < 3 ? r1 - oh : 3);
}

void conv_run_direct(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                     const float *bias, const float *res, float *y) {
    const conv_direct_plan *d = p->direct;
    direct_job j = {p, x, bias, res, y, nn_node_act(n), (p->geom.out[1] + d->rows - 1) / d->rows};
    oct_parallel_steal(ctx, nn_run_threads(ctx, p->threads), p->N * p->group * p->geom.out[0] * j.row_blocks,
                       direct_item, &j);
}
