/* QLinearConv / ConvInteger depthwise strategy (one input channel per group): a direct loop per
   output channel over tiles of output pixels. */
#include <omp.h>
#include <stdlib.h>

#include "qconv.h"

enum { DW_TILE = 4096 };

int qconv_plan_depthwise(qconv_params *p, octet_error *err) {
    (void)err;
    p->tile = p->P < DW_TILE ? p->P : DW_TILE;
    if (p->tile < 1) p->tile = 1;
    p->col_bytes = 0;
    p->slice_bytes = p->qlinear ? quant_align64((size_t)p->tile * sizeof(int32_t)) : 0;
    return 0;
}

int qconv_pack_depthwise(qconv_params *p, const uint8_t *w, octet_error *err) {
    const uint8_t flip = p->w_u8 ? 0x80 : 0;
    int8_t *dw = malloc((size_t)(p->M * p->kvol));
    if (!dw) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    for (int64_t i = 0; i < p->M * p->kvol; i++) dw[i] = (int8_t)(w[i] ^ flip);
    p->dw_w = dw;
    return 0;
}

void qconv_run_depthwise(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a) {
    const int t = nn_run_threads(ctx, p->threads);
    const int64_t ntiles = (p->P + p->tile - 1) / p->tile;
    const int64_t items = p->N * p->M * ntiles;
    char *slices = (char *)ctx->workspace + p->head_bytes;
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && items > 1)
    for (int64_t it = 0; it < items; it++) {
        const int64_t tile_i = it % ntiles, bm = it / ntiles, b = bm / p->M, m = bm % p->M;
        const int64_t c = m / p->Mg; /* the input channel of m's group */
        const int64_t p0 = tile_i * p->tile, np = p->P - p0 < p->tile ? p->P - p0 : p->tile;
        const uint8_t *x = a->x + (b * p->C + c) * p->in_vol;
        const int64_t yoff = bm * p->P + p0;
        int32_t *acc = p->qlinear ? (int32_t *)(slices + (size_t)omp_get_thread_num() * p->slice_bytes)
                                  : (int32_t *)a->y + yoff;
        oct_ref_qconv_depthwise(&p->geom, x, a->x_xor, a->x_zp, p->dw_w + m * p->kvol, a->w_zp[m], p0, np, acc);
        if (p->qlinear)
            oct_ref_requant(acc, np, (int)m, 1, (int)np, &a->rq, (uint8_t *)a->y + yoff, p->P, 1);
    }
}

