/* QLinearConv / ConvInteger direct strategy (kernels/ref/direct_conv.h) for stride-1 convolutions
   with few channels, where im2col's unfolding (K bytes per output pixel, each used for only M
   multiply-adds) costs more than the multiply-adds themselves.

   A work item is (image, group, a few output planes, a block of rows): its input with the halo is
   repacked into the thread's workspace slab (4 reduction bytes per pixel, padding = the zero
   point), then every block of 8 output channels runs over it 6 rows at a time, requantizing in the
   write-back (which also maps a fused activation table, oct_requant.table). The slab is bounded
   (SLAB_BUDGET), so no whole-volume temporary is needed.
   Weight zero points must be 0 in the int8 domain (symmetric int8 weights, or uint8 weights with
   zero point 128): the kernels subtract only the input zero point's term. */
#include <stdlib.h>

#include "qconv.h"
#include "team.h"
#include "ref/direct_conv.h"

/* Bytes of slab a thread aims for (stays in L2 with the weights); slabs above SLAB_MAX are refused. */
enum { SLAB_BUDGET = 256 << 10, SLAB_MAX = 8 << 20, ROWS_PER_PASS = 6 };
/* Output channels per group up to which direct beats the GEMM on 2-D (and 1-D) layers. */
enum { DIRECT_2D_MAX_M = 32 };

typedef struct {
    const oct_dconv_kernels *ks;
    oct_dconv_s8_shape shape;   /* one group's */
    int64_t nd, nh;             /* output planes and rows per work item */
    size_t slab_bytes;          /* the largest slab (64-byte multiple) */
    size_t w_bytes;             /* packed weights per group */
    int32_t *wsum;              /* [M] */
    uint8_t *w;                 /* [group][w_bytes] */
} qconv_direct_plan;

int qconv_weight_zp_is_zero(oct_graph *g, const oct_node *n, const qconv_params *p) {
    const int shift = p->w_u8 ? 128 : 0;
    if (!oct_node_has_input(n, p->in.w_zp)) return shift == 0;
    const oct_value *z = &g->values[n->in[p->in.w_zp]];
    if (z->kind != OCT_VAL_CONST || !z->data) return 0;
    const int64_t count = oct_value_numel(z);
    for (int64_t i = 0; i < count; i++) {
        const int v = p->w_u8 ? ((const uint8_t *)z->data)[i] : ((const int8_t *)z->data)[i];
        if (v - shift != 0) return 0;
    }
    return 1;
}

/* Chooses the slab (planes x rows per item); returns its bytes, 0 when too large. */
static size_t choose_slab(const qconv_params *p, const oct_dconv_s8_shape *s, int64_t *nd_out, int64_t *nh_out) {
    const int64_t OD = p->geom.out[0], OH = p->geom.out[1];
    const int64_t outer = p->N * p->group;
    int64_t nd = OD < 2 ? OD : 2, nh = OH;
    oct_dconv_slab sl;
    size_t bytes = oct_dconv_slab_init(s, 0, nd, 0, nh, &sl);
    while (nh > ROWS_PER_PASS && (!bytes || bytes > SLAB_BUDGET)) {
        nh = nh > 2 * ROWS_PER_PASS ? (nh / 2 + ROWS_PER_PASS - 1) / ROWS_PER_PASS * ROWS_PER_PASS : ROWS_PER_PASS;
        bytes = oct_dconv_slab_init(s, 0, nd, 0, nh, &sl);
    }
    /* Enough items for the threads: single planes, then fewer rows. */
    const int64_t want = 4 * (int64_t)p->threads;
    if (outer * ((OD + nd - 1) / nd) * ((OH + nh - 1) / nh) < want) nd = 1;
    while (nh > ROWS_PER_PASS && outer * ((OD + nd - 1) / nd) * ((OH + nh - 1) / nh) < want)
        nh = nh > 2 * ROWS_PER_PASS ? (nh / 2 + ROWS_PER_PASS - 1) / ROWS_PER_PASS * ROWS_PER_PASS : ROWS_PER_PASS;
    bytes = oct_dconv_slab_init(s, 0, nd, 0, nh, &sl);
    if (!bytes || bytes > SLAB_MAX) return 0;
    *nd_out = nd;
    *nh_out = nh;
    return quant_align64(bytes);
}

int qconv_direct_fits(oct_graph *g, const oct_node *n, const qconv_params *p) {
    if (!oct_dconv_enabled()) return 0;
    const oct_conv_geom *geo = &p->geom;
    for (int i = 0; i < 3; i++)
        if (geo->stride[i] != 1) return 0;
    if (p->Cg == 1 && p->group > 1) return 0; /* real depthwise layers keep their loop */
    if (geo->k[2] > OCT_DCONV_KW_MAX || (geo->k[2] - 1) * geo->dil[2] > OCT_DCONV_REACH_MAX) return 0;
    if (g->values[n->in[p->in.w]].kind != OCT_VAL_CONST || !qconv_weight_zp_is_zero(g, n, p)) return 0;
    if (!oct_dconv_select()->s8_simd) return 0;
    const int three_d = geo->out[0] > 1 || geo->k[0] > 1;
    if (p->kvol == 1) return 0; /* 1x1: the GEMM reads the input directly already */
    if (!three_d && p->Mg > DIRECT_2D_MAX_M) return 0;
    oct_dconv_s8_shape s;
    oct_dconv_s8_shape_init(&s, geo, p->Cg, p->Mg);
    int64_t nd, nh;
    oct_dconv_slab sl;
    return oct_dconv_slab_init(&s, 0, 1, 0, 1, &sl) && sl.wp <= OCT_DCONV_WP_MAX && choose_slab(p, &s, &nd, &nh);
}

int qconv_plan_direct(qconv_params *p, octet_error *err) {
    qconv_direct_plan *d = calloc(1, sizeof *d);
    if (!d) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    p->direct = d;
    d->ks = oct_dconv_select();
    oct_dconv_s8_shape_init(&d->shape, &p->geom, p->Cg, p->Mg);
    d->slab_bytes = choose_slab(p, &d->shape, &d->nd, &d->nh);
    d->w_bytes = d->ks->s8_wbytes(&d->shape);
    if (!d->slab_bytes || !d->w_bytes || d->w_bytes > (SIZE_MAX - 64) / (size_t)p->group)
        return oct_fail(err, OCTET_ERR_NOMEM, "direct convolution buffer sizes overflow");
    p->tile = 0;
    p->col_bytes = 0;
    p->slice_bytes = d->slab_bytes;
    return 0;
}

int qconv_pack_direct(qconv_params *p, const uint8_t *w, octet_error *err) {
    qconv_direct_plan *d = p->direct;
    d->wsum = malloc((size_t)p->M * sizeof(int32_t));
    d->w = malloc(d->w_bytes * (size_t)p->group);
    if (!d->wsum || !d->w) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    for (int64_t gi = 0; gi < p->group; gi++)
        d->ks->s8_pack(&d->shape, w + gi * p->Mg * p->K, p->w_u8, d->w + gi * d->w_bytes, d->wsum + gi * p->Mg);
    return 0;
}

void qconv_direct_free(void *direct) {
    qconv_direct_plan *d = direct;
    if (!d) return;
    free(d->wsum);
    free(d->w);
    free(d);
}

typedef struct {
    const qconv_params *p;
    const qconv_run_args *a;
    char *slabs; /* one per thread */
    int64_t dblocks, hblocks;
} direct_job;

/* One work item: a block of output depths and rows of one image and group, every channel. */
static void direct_item(void *arg, int64_t it, int tid) {
    const direct_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    const qconv_direct_plan *d = p->direct;
    const int64_t OD = p->geom.out[0], OH = p->geom.out[1];
    const int64_t mblocks = (p->Mg + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    const size_t out_size = p->qlinear ? 1 : sizeof(int32_t);
    uint8_t *slab = (uint8_t *)j->slabs + (size_t)tid * p->slice_bytes;
    const int64_t hb = it % j->hblocks, db = (it / j->hblocks) % j->dblocks, bg = it / (j->hblocks * j->dblocks);
    const int64_t b = bg / p->group, gi = bg % p->group;
    const int64_t d0 = db * d->nd, h0 = hb * d->nh;
    const int64_t nd = OD - d0 < d->nd ? OD - d0 : d->nd, nh = OH - h0 < d->nh ? OH - h0 : d->nh;
    oct_dconv_slab sl;
    oct_dconv_slab_init(&d->shape, d0, nd, h0, nh, &sl);
    d->ks->s8_repack(&d->shape, a->x + (b * p->C + gi * p->Cg) * p->in_vol, a->x_xor, (uint8_t)a->x_zp, &sl, slab);
    const oct_dconv_s8 args = {.s = &d->shape, .w = d->w + gi * d->w_bytes, .wsum = d->wsum + gi * p->Mg,
                               .x_zp = a->x_zp, .rq = p->qlinear ? &a->rq : NULL, .rq_row0 = gi * p->Mg,
                               .y = (char *)a->y + (size_t)((b * p->M + gi * p->Mg) * p->P) * out_size};
    for (int64_t od = d0; od < d0 + nd; od++)
        for (int64_t oh = h0; oh < h0 + nh; oh += ROWS_PER_PASS)
            for (int64_t mb = 0; mb < mblocks; mb++)
                d->ks->s8(&args, slab, &sl, mb, od, oh, h0 + nh - oh < ROWS_PER_PASS ? h0 + nh - oh : ROWS_PER_PASS);
}

void qconv_run_direct(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a) {
    const qconv_direct_plan *d = p->direct;
    direct_job j = {p, a, (char *)ctx->workspace + p->head_bytes, (p->geom.out[0] + d->nd - 1) / d->nd,
                    (p->geom.out[1] + d->nh - 1) / d->nh};
    oct_parallel_steal(ctx, nn_run_threads(ctx, p->threads), p->N * p->group * j.dblocks * j.hblocks, direct_item,
                       &j);
}
