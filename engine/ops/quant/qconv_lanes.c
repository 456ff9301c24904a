/* QLinearConv channel-lane strategy (kernels/ref/qconv_lanes.h): 2-D convolutions of one group
   with a real window (3x3, 5x5, ..., any stride), where im2col would unfold every input byte
   KH * KW times, and 1x1 ones on small planes, which would leave the GEMM's pixel lanes empty.

   A work item is (image, band of output rows, chunk of 64-channel blocks): the band's input rows
   are repacked into the thread's slab (skipped when its previous item had the same band), then each
   block of output channels runs over every pixel of the band. Bands keep their slab in L2; with
   several threads, small planes split the channel blocks rather than cutting the plane into bands of
   a few pixels (each tile computes 6 or 8 pixels whether the band has them or not). */
#include <stdlib.h>

#include "../nn/steal_range.h"
#include "qconv.h"
#include "team.h"
#include "ref/qconv_lanes.h"

/* Bytes of slab a thread aims for (stays in L2 beside a block's weights); pixels a band keeps at
   least when a plane is cut for the threads. */
enum { SLAB_BUDGET = 96 << 10, BAND_MIN_PIXELS = 96 };

typedef struct {
    const oct_lconv_kernels *ks;
    oct_lconv_shape shape;
    int64_t nh, bands, mchunks, blocks_per_chunk;
    int32_t *wsum; /* [M] */
    int8_t *w;     /* packed, 64-byte aligned */
} qconv_lanes_plan;

static int lanes_enabled(void) {
    const char *v = getenv("OCTET_LANES");
    return !(v && v[0] == '0');
}

/* 1x1 convs stay with the GEMM (which reads a stride-1 input as its panel as it is) unless the
   plane is small enough to leave its pixel lanes empty: 49 pixels fill 4 vectors of 16, 100 fill 7.
   Measured, 1 thread, lanes for 1x1 planes up to 100 pixels: ResNet-50 int8 -1.6%, MobileNetV2
   -1.1%, EfficientNet-B0 -1.6%, B3 -1.5%; up to 196 (14x14) no better; strided 1x1 convs on
   larger planes even. */
enum { POINTWISE_LANES_MAX_PIXELS = 100 };

int qconv_lanes_fits(oct_graph *g, const oct_node *n, const qconv_params *p) {
    const oct_lconv_kernels *ks = oct_lconv_kernels_selected();
    if (!lanes_enabled() || !ks || (p->has_table && !ks->maps_tables)) return 0;
    if (!p->qlinear || p->group != 1 || p->C < 16) return 0;
    if (p->kvol == 1 && p->P > POINTWISE_LANES_MAX_PIXELS) return 0;
    if (g->values[n->in[p->in.w]].kind != OCT_VAL_CONST || !qconv_weight_zp_is_zero(g, n, p)) return 0;
    oct_lconv_shape s;
    if (oct_lconv_shape_init(&s, &p->geom, p->C, p->M)) return 0;
    oct_lconv_band b;
    return oct_lconv_band_init(&s, 0, 1, &b) != 0;
}

/* Rows per band, bands and channel chunks for the plan's threads. */
static void choose_bands(const qconv_params *p, qconv_lanes_plan *d) {
    const oct_lconv_shape *s = &d->shape;
    const oct_conv_geom *g = &s->g;
    const int64_t OH = g->out[1], OW = g->out[2];
    oct_lconv_band b;
    oct_lconv_band_init(s, 0, 1, &b);
    const int64_t fit_rows = SLAB_BUDGET / b.pitch, reach = (g->k[1] - 1) * g->dil[1] + 1;
    int64_t nh = fit_rows > reach ? (fit_rows - reach) / g->stride[1] + 1 : 1;
    if (nh > OH) nh = OH;
    int64_t bands = (OH + nh - 1) / nh, mchunks = 1;
    const int64_t want = p->threads > 1 ? 4 * (int64_t)p->threads : 1;
    if (p->N * bands < want) {
        int64_t most = OH * OW / BAND_MIN_PIXELS; /* bands of at least BAND_MIN_PIXELS */
        if (most > OH) most = OH;
        if (most < 1) most = 1;
        const int64_t need = (want + p->N - 1) / p->N, target = need < most ? need : most;
        if (bands < target) bands = target;
        if (p->N * bands < want) {
            const int64_t more = (want + p->N * bands - 1) / (p->N * bands);
            mchunks = more < s->mblocks ? more : s->mblocks;
        }
    }
    d->nh = (OH + bands - 1) / bands;
    d->bands = (OH + d->nh - 1) / d->nh;
    d->blocks_per_chunk = (s->mblocks + mchunks - 1) / mchunks;
    d->mchunks = (s->mblocks + d->blocks_per_chunk - 1) / d->blocks_per_chunk;
}

int qconv_plan_lanes(qconv_params *p, octet_error *err) {
    qconv_lanes_plan *d = calloc(1, sizeof *d);
    if (!d) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    p->lanes = d;
    d->ks = oct_lconv_kernels_selected();
    oct_lconv_shape_init(&d->shape, &p->geom, p->C, p->M);
    choose_bands(p, d);
    oct_lconv_band b;
    const size_t slab = oct_lconv_band_init(&d->shape, 0, d->nh, &b);
    if (!slab || !oct_lconv_wbytes(&d->shape) || p->N * d->bands * d->mchunks > NN_STEAL_MAX_ITEMS)
        return oct_fail(err, OCTET_ERR_NOMEM, "channel-lane convolution buffer sizes overflow");
    p->tile = 0;
    p->col_bytes = 0;
    p->slice_bytes = quant_align64(slab);
    return 0;
}

int qconv_pack_lanes(qconv_params *p, const uint8_t *w, octet_error *err) {
    qconv_lanes_plan *d = p->lanes;
    d->wsum = malloc((size_t)p->M * sizeof(int32_t));
    d->w = aligned_alloc(64, quant_align64(oct_lconv_wbytes(&d->shape)));
    if (!d->wsum || !d->w) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    oct_lconv_pack(&d->shape, w, p->w_u8, d->w, d->wsum);
    return 0;
}

void qconv_lanes_free(void *lanes) {
    qconv_lanes_plan *d = lanes;
    if (!d) return;
    free(d->wsum);
    free(d->w);
    free(d);
}

typedef struct {
    const qconv_params *p;
    const qconv_run_args *a;
    char *slabs; /* one per thread */
    nn_steal *work;
} lanes_job;

static void lanes_part(void *arg, int me, int nthreads) {
    (void)nthreads;
    const lanes_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    const qconv_lanes_plan *d = p->lanes;
    uint8_t *slab = (uint8_t *)j->slabs + (size_t)me * p->slice_bytes;
    int64_t have = -1; /* the (image, band) whose rows the slab holds */
    for (int64_t it; (it = nn_steal_next(j->work, me)) >= 0;) {
        const int64_t chunk = it % d->mchunks, bb = it / d->mchunks, band = bb % d->bands, b = bb / d->bands;
        const int64_t oh0 = band * d->nh, OH = p->geom.out[1];
        oct_lconv_band bd;
        oct_lconv_band_init(&d->shape, oh0, OH - oh0 < d->nh ? OH - oh0 : d->nh, &bd);
        if (have != bb) {
            d->ks->repack(&d->shape, a->x + b * p->C * p->in_vol, a->x_xor, (uint8_t)a->x_zp, &bd, slab);
            have = bb;
        }
        const oct_lconv_args args = {.s = &d->shape, .w = d->w, .wsum = d->wsum, .x_zp = a->x_zp, .rq = &a->rq,
                                     .y = (uint8_t *)a->y + b * p->M * p->P};
        const int64_t mb0 = chunk * d->blocks_per_chunk;
        const int64_t mb1 = mb0 + d->blocks_per_chunk < d->shape.mblocks ? mb0 + d->blocks_per_chunk : d->shape.mblocks;
        d->ks->conv(&args, slab, &bd, mb0, mb1);
    }
}

void qconv_run_lanes(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a) {
    const qconv_lanes_plan *d = p->lanes;
    const int t = nn_run_threads(ctx, p->threads);
    const int64_t items = p->N * d->bands * d->mchunks;
    nn_steal work;
    nn_steal_init(&work, items, t); /* the plan checked the item count */
    lanes_job j = {p, a, (char *)ctx->workspace + p->head_bytes, &work};
    oct_parallel(ctx, items > 1 ? t : 1, lanes_part, &j);
}
