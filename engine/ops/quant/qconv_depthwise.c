/* QLinearConv / ConvInteger depthwise strategy (one input channel per group). QLinearConv on input
   planes at least DW_ROWS_MIN_WIDTH wide runs the int8 row kernels of kernels/ref/dwconv_rows.h
   where the CPU has them (VPDPBUSD on bytes, no float conversion nor transposes; dw_path.h), in
   work items of 16 channels as the blocked path's. Otherwise, channels that fill blocks
   of 16 (dw_path.h) run the channel-blocked kernels of kernels/ref/dwconv_blocked.h (blocks of 16
   channels, work items of a block and a run of output rows); other 2-D windows without dilation
   run the per-channel band kernels of kernels/ref/dwconv_kernels.h (exact integer sums in a float
   stream, requantization in the row write-back), one output channel per work item; both with a
   scratch slice per thread. The rest run the direct ref loop over tiles of output pixels, then
   the requantization. All give the same integers bit for bit. On request (qconv_dw_sums.h) the run
   also leaves each channel's sum for a fused QLinearGlobalAveragePool, taken in the band
   kernels' write-back while the values are in registers. A fused activation table (fuse_qlut.c)
   maps each work item's bytes as soon as the item has written them (qconv_apply_table), and the
   channel sums are then taken of the mapped bytes there instead. */
#include <stdlib.h>
#include <string.h>

#include "../nn/dw_path.h"
#include "qconv_dw_sums.h"
#include "ref/dwconv_kernels.h"
#include "team.h"

enum { DW_TILE = 4096 };

/* What packing keeps in p->dw_w. */
typedef struct {
    int fast;         /* plan is valid: the band kernels run */
    oct_dw_plan plan;
    int blocked;      /* bplan is valid and pays, or backs the row path up: the blocked kernels run */
    oct_dwb_plan bplan;
    int rows;         /* rplan is valid and pays: the row kernels run (with blocked set) */
    oct_dwr_plan rplan;
    int want_sums;    /* write channel sums at workspace + sums_offset */
    size_t sums_offset;
    float *wb;        /* blocked: [blocks][kvol][OCT_DWB_LANES] weights as floats, in this allocation */
    int8_t w[];       /* [M x kvol], int8 domain */
} dw_pack;

int qconv_depthwise_want_sums(qconv_params *p, size_t offset) {
    dw_pack *pk = p->dw_w;
    if (p->mode != QCONV_DEPTHWISE || !p->qlinear || !pk || offset % sizeof(int64_t)) return -1;
    pk->want_sums = 1;
    pk->sums_offset = offset;
    return 0;
}

static int64_t *sums_of(const oct_run_ctx *ctx, const dw_pack *pk) {
    return pk->want_sums ? (int64_t *)(void *)((char *)ctx->workspace + pk->sums_offset) : NULL;
}

int qconv_plan_depthwise(qconv_params *p, octet_error *err) {
    oct_dw_plan plan;
    oct_dwb_plan bplan;
    oct_dwr_plan rplan;
    p->col_bytes = 0;
    if (dw_rows_pays(&p->geom, p->Mg, &rplan, &bplan)) {
        p->tile = p->P;
        /* either kernels' (the blocked ones back the row ones up), 64 as below */
        const size_t r = oct_dwr_scratch_bytes(&rplan), b = oct_dwb_scratch_bytes(&bplan);
        p->slice_bytes = (r > b ? r : b) + 64;
        return 0;
    }
    if (dw_blocked_pays(&p->geom, p->M, p->Mg, &bplan)) {
        p->tile = p->P;
        /* 64 more: the kernels' aligned vectors need a 64-byte aligned slice, the workspace may not be */
        p->slice_bytes = oct_dwb_scratch_bytes(&bplan) + 64;
        return 0;
    }
    if (oct_dw_plan_init(&p->geom, &plan)) {
        p->tile = p->P;
        p->slice_bytes = oct_dw_scratch_bytes(&plan);
        return 0;
    }
    (void)err;
    p->tile = p->P < DW_TILE ? p->P : DW_TILE;
    if (p->tile < 1) p->tile = 1;
    p->slice_bytes = p->qlinear ? quant_align64((size_t)p->tile * sizeof(int32_t)) : 0;
    return 0;
}

int qconv_pack_depthwise(qconv_params *p, const uint8_t *w, octet_error *err) {
    const uint8_t flip = p->w_u8 ? 0x80 : 0;
    const size_t count = (size_t)(p->M * p->kvol); /* both checked to fit an int by the planner */
    oct_dwb_plan bplan;
    oct_dwr_plan rplan;
    const int rows = dw_rows_pays(&p->geom, p->Mg, &rplan, &bplan);
    const int blocked = rows || dw_blocked_pays(&p->geom, p->M, p->Mg, &bplan);
    const size_t blocks = (size_t)(p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    /* [struct][int8 weights][blocked float weights at a 64-byte offset] */
    const size_t wb_at = (sizeof(dw_pack) + count + 63) / 64 * 64;
    const size_t wb_count = blocked ? blocks * (size_t)p->kvol * OCT_DWB_LANES : 0;
    if (wb_count > (SIZE_MAX - wb_at) / sizeof(float) - 64)
        return oct_fail(err, OCTET_ERR_NOMEM, "depthwise weight buffer size overflows");
    dw_pack *pk = aligned_alloc(64, (wb_at + wb_count * sizeof(float) + 63) / 64 * 64);
    if (!pk) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    pk->fast = oct_dw_plan_init(&p->geom, &pk->plan);
    pk->blocked = blocked;
    pk->bplan = bplan;
    pk->rows = rows;
    pk->rplan = rplan;
    pk->want_sums = 0;
    pk->sums_offset = 0;
    pk->wb = blocked ? (float *)(void *)((char *)pk + wb_at) : NULL;
    for (size_t i = 0; i < count; i++) pk->w[i] = (int8_t)(w[i] ^ flip);
    /* channels-innermost per block, lanes past M zero */
    for (size_t b = 0; b < (blocked ? blocks : 0); b++)
        for (int64_t t = 0; t < p->kvol; t++)
            for (size_t l = 0; l < OCT_DWB_LANES; l++) {
                const size_t m = b * OCT_DWB_LANES + l;
                pk->wb[(b * (size_t)p->kvol + (size_t)t) * OCT_DWB_LANES + l] =
                    m < (size_t)p->M ? (float)pk->w[m * (size_t)p->kvol + (size_t)t] : 0.f;
            }
    p->dw_w = pk;
    return 0;
}

/* What a depthwise run's work items share (each path uses its part). */
typedef struct {
    const qconv_params *p;
    const qconv_run_args *a;
    const dw_pack *pk;
    char *slices;   /* one scratch slice per thread */
    int64_t *sums;  /* the fused squeeze's channel sums, or NULL */
    int64_t ntiles; /* ref: pixel tiles per channel */
    int64_t rows, chunks, blocks; /* blocked and row paths: rows per item, items per block, blocks */
    const oct_dwr_kernels *rk;
    float lo, hi;
    int zp_fits;
} dw_job;

static void ref_item(void *arg, int64_t it, int tid) {
    const dw_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    const int64_t tile_i = it % j->ntiles, bm = it / j->ntiles, b = bm / p->M, m = bm % p->M;
    const int64_t c = m / p->Mg; /* the input channel of m's group */
    const int64_t p0 = tile_i * p->tile, np = p->P - p0 < p->tile ? p->P - p0 : p->tile;
    const uint8_t *x = a->x + (b * p->C + c) * p->in_vol;
    const int64_t yoff = bm * p->P + p0;
    int32_t *acc = p->qlinear ? (int32_t *)(j->slices + (size_t)tid * p->slice_bytes) : (int32_t *)a->y + yoff;
    oct_ref_qconv_depthwise(&p->geom, x, a->x_xor, a->x_zp, j->pk->w + m * p->kvol, a->w_zp[m], p0, np, acc);
    if (p->qlinear) {
        oct_ref_requant(acc, np, (int)m, 1, (int)np, &a->rq, (uint8_t *)a->y + yoff, p->P, 1);
        qconv_apply_table(p, a, b, m, 1, p0, np, NULL);
    }
}

/* A finished channel's sum (the ref loop's tiles of a channel ran on any thread). */
static void ref_sum_item(void *arg, int64_t bm, int tid) {
    (void)tid;
    const dw_job *j = arg;
    const uint8_t *yc = (const uint8_t *)j->a->y + bm * j->p->P;
    int64_t s = 0;
    for (int64_t i = 0; i < j->p->P; i++) s += j->a->rq.out_s8 ? (int64_t)(int8_t)yc[i] : (int64_t)yc[i];
    j->sums[bm] = s;
}

/* The ref loop for the windows the band kernels do not cover. */
static void run_ref(int t, const oct_run_ctx *ctx, dw_job *j) {
    const qconv_params *p = j->p;
    j->ntiles = (p->P + p->tile - 1) / p->tile;
    oct_parallel_steal(ctx, t, p->N * p->M * j->ntiles, ref_item, j);
    j->sums = sums_of(ctx, j->pk);
    if (j->sums) oct_parallel_for(ctx, t, p->N * p->M, ref_sum_item, j);
}

/* Adds an item's part of its channels' sums: with a fused SE squeeze, a channel's rows still run
   in several items (whole channels per item left one thread with 5 blocks of 16 and the other 4). */
static void add_sums(int64_t *sums, const int64_t *part, int nch) {
    for (int l = 0; l < nch; l++) __atomic_fetch_add(&sums[l], part[l], __ATOMIC_RELAXED);
}

/* The blocked weights of channels [m0, m0 + nch) minus this run's zero points: integers in [-255, 255]. */
static void block_weights(const qconv_params *p, const qconv_run_args *a, const dw_pack *pk, int64_t m0, int nch,
                          float *wf) {
    float zp[OCT_DWB_LANES];
    for (int l = 0; l < OCT_DWB_LANES; l++) zp[l] = l < nch ? (float)a->w_zp[m0 + l] : 0.f;
    const float *wb = pk->wb + m0 * p->kvol;
    for (int64_t i = 0; i < p->kvol; i++)
        for (int l = 0; l < OCT_DWB_LANES; l++) wf[i * OCT_DWB_LANES + l] = wb[i * OCT_DWB_LANES + l] - zp[l];
}

static void blocked_item(void *arg, int64_t it, int tid) {
    const dw_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    const oct_dwb_plan *pl = &j->pk->bplan;
    void *scratch = dw_align64(j->slices + (size_t)tid * p->slice_bytes);
    _Alignas(64) float wf[OCT_DW_MAX_TAPS * OCT_DWB_LANES];
    const int64_t chunk = it % j->chunks, bb = it / j->chunks, b = bb / j->blocks, m0 = bb % j->blocks * OCT_DWB_LANES;
    const int nch = p->M - m0 < OCT_DWB_LANES ? (int)(p->M - m0) : OCT_DWB_LANES;
    const int64_t r0 = chunk * j->rows, r1 = r0 + j->rows < pl->oh ? r0 + j->rows : pl->oh;
    block_weights(p, a, j->pk, m0, nch, wf);
    int64_t part[OCT_DWB_LANES] = {0};
    int64_t *s = j->sums ? part : NULL;
    int64_t *ks = a->table ? NULL : s; /* with a table, the sums are the mapped bytes' */
    const int64_t yoff = (b * p->M + m0) * p->P;
    void *y = p->qlinear ? (void *)((uint8_t *)a->y + yoff) : (void *)((int32_t *)a->y + yoff);
    oct_dwb_conv_q8(oct_dwb_kernels_selected(), oct_dw_kernels_selected(), pl, a->x + (b * p->C + m0) * p->in_vol,
                    p->in_vol, a->x_xor, a->x_zp, nch, wf, p->qlinear ? &a->rq : NULL, m0, y, p->P, r0, r1, ks,
                    scratch);
    qconv_apply_table(p, a, b, m0, nch, r0 * pl->ow, (r1 - r0) * pl->ow, s);
    if (j->sums) add_sums(j->sums + b * p->M + m0, part, nch);
}

/* The blocked kernels: items are (image, block of channels, run of output rows). */
static void run_blocked(int t, const oct_run_ctx *ctx, dw_job *j) {
    const qconv_params *p = j->p;
    const oct_dwb_plan *pl = &j->pk->bplan;
    j->blocks = (p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    j->sums = p->qlinear ? sums_of(ctx, j->pk) : NULL;
    /* a channel's rows may run in several items: each adds its part of the sums (see add_sums) */
    j->rows = oct_dwb_rows_per_item(pl, p->N * j->blocks, t);
    if (j->sums) memset(j->sums, 0, (size_t)(p->N * p->M) * sizeof *j->sums);
    j->chunks = (pl->oh + j->rows - 1) / j->rows;
    oct_parallel_for(ctx, t, p->N * j->blocks * j->chunks, blocked_item, j);
}

static void rows_item(void *arg, int64_t it, int tid) {
    const dw_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    const oct_dwr_plan *pl = &j->pk->rplan;
    void *scratch = dw_align64(j->slices + (size_t)tid * p->slice_bytes);
    int32_t wg[OCT_DWB_LANES][OCT_DWR_MAX_GROUPS], wsum[OCT_DWB_LANES];
    const int64_t chunk = it % j->chunks, bb = it / j->chunks, b = bb / j->blocks, m0 = bb % j->blocks * OCT_DWB_LANES;
    const int nch = p->M - m0 < OCT_DWB_LANES ? (int)(p->M - m0) : OCT_DWB_LANES;
    const int64_t r0 = chunk * j->rows, r1 = r0 + j->rows < pl->oh ? r0 + j->rows : pl->oh;
    int64_t part[OCT_DWB_LANES] = {0};
    int64_t *s = j->sums ? part : NULL;
    int64_t *ks = a->table ? NULL : s; /* with a table, the sums are the mapped bytes' */
    const uint8_t *x = a->x + (b * p->C + m0) * p->in_vol;
    uint8_t *y = (uint8_t *)a->y + (b * p->M + m0) * p->P;
    int fits = j->zp_fits;
    for (int l = 0; l < nch && fits; l++)
        fits = oct_dwr_pack_weights(pl, j->pk->w + (m0 + l) * p->kvol, a->w_zp[m0 + l], wg[l], &wsum[l]);
    if (fits) {
        for (int l = 0; l < nch; l++) {
            const int64_t m = m0 + l;
            oct_dwr_conv_q8(j->rk, pl, x + l * p->in_vol, a->x_xor, a->x_zp, wg[l], wsum[l],
                            a->rq.bias ? a->rq.bias[m] : 0, a->rq.scale[a->rq.scale_per_row ? m : 0], j->lo, j->hi,
                            a->rq.zp, y + l * p->P, r0, r1, ks ? &ks[l] : NULL, scratch);
        }
    } else {
        _Alignas(64) float wf[OCT_DW_MAX_TAPS * OCT_DWB_LANES];
        block_weights(p, a, j->pk, m0, nch, wf);
        oct_dwb_conv_q8(oct_dwb_kernels_selected(), oct_dw_kernels_selected(), &j->pk->bplan, x, p->in_vol,
                        a->x_xor, a->x_zp, nch, wf, &a->rq, m0, y, p->P, r0, r1, ks, scratch);
    }
    qconv_apply_table(p, a, b, m0, nch, r0 * pl->ow, (r1 - r0) * pl->ow, s);
    if (j->sums) add_sums(j->sums + b * p->M + m0, part, nch);
}

/* The row kernels (QLinearConv only): items are (image, block of 16 channels, run of output rows),
   as the blocked path's, so that with 2 threads each reads the channels its producer wrote (the
   expansion conv splits channels in blocks of 16: nn_feeds_channel_split). A block with weights
   outside int8 (zero points far from the weights) runs the blocked kernels instead. */
static void run_rows(int t, const oct_run_ctx *ctx, dw_job *j) {
    const qconv_params *p = j->p;
    const oct_dwr_plan *pl = &j->pk->rplan;
    j->blocks = (p->M + OCT_DWB_LANES - 1) / OCT_DWB_LANES;
    j->sums = sums_of(ctx, j->pk);
    /* a channel's rows may run in several items: each adds its part of the sums (see add_sums) */
    j->rows = dw_rows_per_item(pl->oh, p->N * j->blocks, t);
    if (j->sums) memset(j->sums, 0, (size_t)(p->N * p->M) * sizeof *j->sums);
    j->chunks = (pl->oh + j->rows - 1) / j->rows;
    j->lo = (float)(j->a->rq.qmin - j->a->rq.zp);
    j->hi = (float)(j->a->rq.qmax - j->a->rq.zp);
    j->zp_fits = j->a->x_zp >= 0 && j->a->x_zp <= 255;
    oct_parallel_for(ctx, t, p->N * j->blocks * j->chunks, rows_item, j);
}

/* One output channel through the per-channel band kernels. */
static void band_item(void *arg, int64_t bm, int tid) {
    const dw_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    void *scratch = j->slices + (size_t)tid * p->slice_bytes;
    const int64_t b = bm / p->M, m = bm % p->M;
    const int64_t c = m / p->Mg;
    void *y = p->qlinear ? (void *)((uint8_t *)a->y + bm * p->P) : (void *)((int32_t *)a->y + bm * p->P);
    const int64_t s = oct_dw_conv_q8(oct_dw_kernels_selected(), &j->pk->plan, a->x + (b * p->C + c) * p->in_vol,
                                     a->x_xor, a->x_zp, j->pk->w + m * p->kvol, a->w_zp[m],
                                     p->qlinear ? &a->rq : NULL, m, y, j->sums != NULL && !a->table, scratch);
    if (j->sums) j->sums[bm] = s;
    if (a->table) {
        if (j->sums) j->sums[bm] = 0;
        qconv_apply_table(p, a, b, m, 1, 0, p->P, j->sums ? &j->sums[bm] : NULL);
    }
}

void qconv_run_depthwise(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a) {
    const int t = nn_run_threads(ctx, p->threads);
    dw_job j = {.p = p, .a = a, .pk = p->dw_w, .slices = (char *)ctx->workspace + p->head_bytes};
    j.rk = j.pk->rows && p->qlinear ? oct_dwr_kernels_selected() : NULL;
    if (j.rk) {
        run_rows(t, ctx, &j);
    } else if (j.pk->blocked) {
        run_blocked(t, ctx, &j);
    } else if (!j.pk->fast) {
        run_ref(t, ctx, &j);
    } else {
        /* Channels cost the same: contiguous static halves, no shared counter to bounce between
           cores for hundreds of tiny planes (960 channels of 7x7). */
        j.sums = p->qlinear ? sums_of(ctx, j.pk) : NULL;
        oct_parallel_for(ctx, t, p->N * p->M, band_item, &j);
    }
}
