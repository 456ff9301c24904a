/* QLinearConv and ConvInteger (opset 10): 1-D/2-D/3-D, groups, pads, strides, dilations,
   auto_pad; uint8 or int8 activations and weights; weight zero points (and for QLinearConv
   scales) per tensor or per output channel; QLinearConv's optional int32 bias.

   The weights must be constant: they are packed at plan time (int8 domain, see quant_kernels.h).
   Scales and zero points are read at run time. Two strategies:
   - depthwise (one input channel per group): a direct loop per output channel over pixel tiles;
   - otherwise implicit GEMM: a tile of output pixels is unfolded (im2col, in the uint8 domain,
     padding = the zero point) straight into the kernel set's activation panels in the thread's
     workspace slice, by the packers of the ISA level (qpanel_isa.h; a 1x1 stride-1 unpadded conv
     packs input rows as they are), then the fused
     GEMM multiplies every block of output channels of the work item over it and writes the
     requantized bytes (QLinearConv) or the int32 sums (ConvInteger) from its registers.
   QLinearConv honours a fused Relu/Clip epilogue by narrowing the requantization clamp, and a
   fused activation table (engine/passes/fuse_qlut.c: attribute octet_output_table = 1, the
   constant uint8 [256] table at input 9): the GEMM and direct write-backs map each byte as they
   store it (oct_requant.table), the depthwise strategy maps each work item's bytes after it. */
#include <stdlib.h>
#include <string.h>

#include "../nn/steal_range.h"
#include "team.h"
#include "misc_kernels.h"
#include "qconv.h"

/* Bytes of unfolded input (panels) a thread works on: they stay in L2 while every block of
   output channels runs over them (the block's weights sit in L1). */
enum { PANEL_BUDGET = 3 << 17 };

/* Multiply-adds below which a conv runs on one thread; 1x1 planes up to which the threads split
   output channels rather than pixels (qconv_plan_work). */
enum { SPLIT_MIN_MACS = 1 << 18, CHANNEL_SPLIT_MAX_PIXELS = 256 };

static void qconv_free(void *pp) {
    qconv_params *p = pp;
    if (!p) return;
    free(p->packed_buf);
    free(p->dw_w);
    free(p->const_mult);
    free(p->const_wzp);
    qconv_direct_free(p->direct);
    qconv_lanes_free(p->lanes);
    free(p);
}

static int qconv_check_types(oct_graph *g, const oct_node *n, const qconv_params *p, octet_error *err) {
    const qconv_slots *s = &p->in;
    if (quant_require_dtype(g, n, s->x, "input x", OCTET_UINT8, OCTET_INT8, err) ||
        quant_require_dtype(g, n, s->w, "weight w", OCTET_UINT8, OCTET_INT8, err))
        return -1;
    const octet_dtype xt = oct_in_val(g, n, s->x)->dtype;
    if (oct_node_has_input(n, s->x_zp) &&
        quant_check_param(g, n, s->x_zp, "x_zero_point", xt, -1, NULL, err) < 0)
        return -1;
    if (!p->qlinear) return 0;
    if (quant_check_param(g, n, s->x_scale, "x_scale", OCTET_FLOAT, -1, NULL, err) < 0 ||
        quant_check_param(g, n, s->y_scale, "y_scale", OCTET_FLOAT, -1, NULL, err) < 0)
        return -1;
    const oct_value *yz = oct_in_val(g, n, s->y_zp);
    if (!quant_is_8bit(yz->dtype))
        return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", yz->name,
                        octet_dtype_name(yz->dtype));
    return quant_check_param(g, n, s->y_zp, "y_zero_point", yz->dtype, -1, NULL, err) < 0 ? -1 : 0;
}

/* Per-channel parameters: weight scale and zero point count 1 or M; bias [M] int32. */
static int qconv_check_channels(oct_graph *g, const oct_node *n, qconv_params *p, octet_error *err) {
    const qconv_slots *s = &p->in;
    const octet_dtype wt = oct_in_val(g, n, s->w)->dtype;
    p->w_zp_count = 0;
    if (oct_node_has_input(n, s->w_zp)) {
        p->w_zp_count = quant_check_param(g, n, s->w_zp, "w_zero_point", wt, p->M, "the output channels", err);
        if (p->w_zp_count < 0) return -1;
    }
    if (!p->qlinear) return 0;
    p->w_scale_count = quant_check_param(g, n, s->w_scale, "w_scale", OCTET_FLOAT, p->M, "the output channels", err);
    if (p->w_scale_count < 0) return -1;
    if (oct_node_has_input(n, s->bias)) {
        const oct_value *b = oct_in_val(g, n, s->bias);
        if (b->dtype != OCTET_INT32)
            return oct_fail(err, OCTET_ERR_SHAPE, "bias '%s' is %s, expected int32", b->name, octet_dtype_name(b->dtype));
        if (b->rank != 1 || b->dims[0] != p->M)
            return oct_fail(err, OCTET_ERR_SHAPE, "bias '%s' must have shape [%lld]", b->name, (long long)p->M);
    }
    return 0;
}

/* Output geometry, as Conv computes it. */
static int qconv_geometry(oct_graph *g, const oct_node *n, qconv_params *p, octet_error *err) {
    const oct_value *x = oct_in_val(g, n, p->in.x), *w = oct_in_val(g, n, p->in.w);
    if (x->rank < 3 || x->rank > 5)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "input '%s' has rank %d; 1-D to 3-D convolution needs rank 3..5",
                        x->name, x->rank);
    if (w->rank != x->rank)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has rank %d, input has rank %d", w->name, w->rank, x->rank);
    p->group = oct_attr_int(n, "group", 1);
    p->C = x->dims[1];
    p->M = w->dims[0];
    if (p->C < 1 || p->M < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "convolution needs at least one input and one output channel");
    if (p->group < 1 || p->C % p->group != 0 || p->M % p->group != 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "group %lld does not divide input channels %lld and output channels %lld",
                        (long long)p->group, (long long)p->C, (long long)p->M);
    if (w->dims[1] != p->C / p->group)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has %lld input channels per group, expected %lld", w->name,
                        (long long)w->dims[1], (long long)(p->C / p->group));
    nn_window win = {.nsp = x->rank - 2};
    int64_t ks[OCTET_MAX_RANK];
    const int nks = oct_attr_ints(n, "kernel_shape", ks, OCTET_MAX_RANK, err);
    if (nks == -2) return -1;
    if (nks >= 0 && nks != win.nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "kernel_shape has %d values for %d spatial dims", nks, win.nsp);
    for (int i = 0; i < win.nsp; i++) {
        win.in[i] = x->dims[2 + i];
        win.k[i] = w->dims[2 + i];
        if (nks >= 0 && ks[i] != win.k[i])
            return oct_fail(err, OCTET_ERR_SHAPE, "kernel_shape[%d] = %lld does not match the weight (%lld)", i,
                            (long long)ks[i], (long long)win.k[i]);
    }
    if (nn_window_forward(n, 0, 1, &win, err)) return -1;
    nn_window_geom(&win, &p->geom);
    p->N = x->dims[0];
    p->Cg = p->C / p->group;
    p->Mg = p->M / p->group;
    p->kvol = oct_geom_k_vol(&p->geom);
    p->K = p->Cg * p->kvol;
    p->P = oct_geom_out_vol(&p->geom);
    p->in_vol = oct_geom_in_vol(&p->geom);
    if (nn_check_int(p->K, "the reduction size (channels x kernel volume)", err) ||
        nn_check_int(p->P, "the output volume", err) || nn_check_int(p->in_vol, "the input volume", err) ||
        nn_check_int(p->M, "the output channel count", err))
        return -1;
    int64_t dims[OCTET_MAX_RANK] = {p->N, p->M};
    for (int i = 0; i < win.nsp; i++) dims[2 + i] = win.out[i];
    const octet_dtype out = p->qlinear ? oct_in_val(g, n, p->in.y_zp)->dtype : OCTET_INT32;
    oct_set_output(g, n, 0, out, x->rank, dims);
    return 0;
}

/* Packs the constant weights for the chosen strategy. */
static int qconv_pack(oct_graph *g, const oct_node *n, qconv_params *p, octet_error *err) {
    const oct_value *w = oct_const_input(g, n, p->in.w, err);
    if (!w) return -1;
    if (g->shapes_only) return 0; /* an infer whose params are discarded: pack once, in the final one */
    const uint8_t *wd = w->data;
    if (p->mode == QCONV_DEPTHWISE) return qconv_pack_depthwise(p, wd, err);
    if (p->mode == QCONV_DIRECT) return qconv_pack_direct(p, wd, err);
    if (p->mode == QCONV_LANES) return qconv_pack_lanes(p, wd, err);
    const size_t bytes = p->ks->qweights_bytes((int)p->M, (int)p->K);
    if (!bytes) return oct_fail(err, OCTET_ERR_NOMEM, "packed weight size overflows");
    p->packed_buf = aligned_alloc(64, quant_align64(bytes));
    if (!p->packed_buf) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    p->ks->qweights_pack((int)p->M, (int)p->K, wd, p->w_u8, p->K, 1, p->packed_buf, &p->packed);
    return 0;
}

/* Columns a tile boundary is aligned to: the micro-kernels' vector width (16 int32 lanes on
   AVX-512; a multiple of the narrower sets' widths), so only a tile's last vector can be partial. */
enum { TILE_ALIGN = 16 };

/* First output pixel of GEMM tile i of n over P pixels: the cuts are spread evenly and aligned to
   TILE_ALIGN, so the tiles differ by at most one vector and no tile is a sliver. */
static int64_t qconv_gemm_tile_start(int64_t P, int64_t n, int64_t i) {
    if (i >= n) return P;
    return P * i / n / TILE_ALIGN * TILE_ALIGN; /* P < 2^31 and i < n <= P: no overflow */
}

/* The GEMM strategy's tiles: as few pixel tiles as keep each tile's panels within PANEL_BUDGET,
   but at least enough work items for every thread (more tiles, down to 2 vectors of columns,
   then blocks of output channels); the cuts are even (qconv_gemm_tile_start), so a small layer
   does not end in a sliver that one thread runs alone. A slice holds the largest tile's panels,
   its column sums (needed when a weight zero point is not 0) and the unfolding's scratch. */
static int qconv_plan_gemm(qconv_params *p, int64_t outer, int64_t want, octet_error *err) {
    const oct_qpanel *l = p->ks->panel;
    const int64_t per_col = oct_qpanel_stride(l, p->K) / l->nr; /* bytes of one column */
    int64_t budget = PANEL_BUDGET / (per_col > 0 ? per_col : 1);
    if (budget > 2048) budget = 2048;
    budget = budget / l->nr * l->nr;
    if (budget < l->nr) budget = l->nr;
    const int64_t min_cols = 2 * TILE_ALIGN, most = (p->P + min_cols - 1) / min_cols;
    int64_t ntiles = (p->P + budget - 1) / budget;
    /* split_channels: the channel blocks make the threads' work; pixel tiles only bound the panels */
    if (outer * ntiles < want && !p->split_channels) ntiles = (want + outer - 1) / outer;
    /* a count the threads share evenly: 7 equal tiles on 2 threads leave one thread running the
       last alone, 8 slightly smaller ones do not */
    if (outer == 1) ntiles = (ntiles + p->threads - 1) / p->threads * p->threads;
    if (ntiles > most) ntiles = most;
    if (ntiles < 1) ntiles = 1;
    /* the cuts round down by less than TILE_ALIGN, so no tile exceeds P / ntiles + TILE_ALIGN */
    const int64_t tile = p->P / ntiles + TILE_ALIGN < p->P ? p->P / ntiles + TILE_ALIGN : p->P;
    p->tile = tile;
    p->ntiles = ntiles;
    p->mblock = p->Mg;
    const int64_t items = outer * ntiles;
    if (p->split_channels) {
        /* one block per thread, of whole 16-channel groups (the depthwise consumers' blocks) */
        const int64_t groups16 = (p->Mg + 15) / 16;
        p->mblock = (groups16 + p->threads - 1) / p->threads * 16;
    } else if (items < want && p->Mg > 32) {
        /* blocks of whole micro-tile rows (8 divides every set's mr) */
        const int64_t split = (want + items - 1) / items;
        const int64_t mb = ((p->Mg + split - 1) / split + 7) / 8 * 8;
        p->mblock = mb < 32 ? 32 : mb;
    }
    const int64_t nmb = (p->Mg + p->mblock - 1) / p->mblock;
    if (items > NN_STEAL_MAX_ITEMS / nmb)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%lld work items (images x groups x tiles) are too many",
                        (long long)items);
    p->col_bytes = oct_qpanel_bytes(l, p->K, tile);
    p->sums_bytes = quant_align64((size_t)tile * sizeof(int32_t));
    const size_t scratch = oct_ref_qpanel_im2col_scratch(&p->geom, p->Cg);
    if (!p->col_bytes || !p->sums_bytes || !scratch || p->col_bytes > SIZE_MAX / 4 || scratch > SIZE_MAX / 4)
        return oct_fail(err, OCTET_ERR_NOMEM, "im2col workspace size overflows");
    p->slice_bytes = p->col_bytes + p->sums_bytes + scratch;
    return 0;
}

/* Tiles and the workspace: [multipliers M][weight zero points M][one slice per thread]. */
static int qconv_plan_work(oct_graph *g, oct_node *n, qconv_params *p, octet_error *err) {
    p->threads = nn_plan_threads();
    /* A split of a conv this small (the SE FC convs: a few microseconds of work) costs more than it
       saves, even on the run's team: EfficientNet-B0 int8 at 2 threads 1.7% faster without. */
    if ((double)p->N * (double)p->M * (double)p->K * (double)p->P < SPLIT_MIN_MACS) p->threads = 1;
    /* A 1x1-style expansion feeding a depthwise conv (MobileNet/EfficientNet blocks): each thread
       computes a block of output channels for every pixel, and the depthwise conv then reads its
       channels from the same core. A pixel split would hand it half of them from the other core,
       which on this 2-CCD machine made the 2-thread run no faster than 1 thread.
       A 1x1 conv on a small plane splits channels too: its pixel tiles would be a few dozen bytes of
       every input plane, so each thread fetched nearly every line of the input, half of them from
       the other core's cache one line at a time, while whole planes stream (ResNet-50's 1024->256
       at 14x14: 0.145 -> 0.118 ms at 2 threads; ResNet-50 int8 -2.5%, MobileNetV2 -2%). */
    const int small_pointwise = p->kvol == 1 && p->geom.stride[1] == 1 && p->geom.stride[2] == 1 &&
                                p->P <= CHANNEL_SPLIT_MAX_PIXELS;
    p->split_channels = p->mode == QCONV_GEMM && p->threads > 1 && p->N * p->group == 1 &&
                        p->Mg >= 16 * (int64_t)p->threads &&
                        (small_pointwise || nn_feeds_channel_split(g, n->out[0]));
    p->mult_bytes = quant_align64((size_t)p->M * sizeof(float));
    p->head_bytes = 2 * p->mult_bytes; /* the zero points are int32, as wide as the floats */
    const int64_t outer = p->N * p->group > 0 ? p->N * p->group : 1;
    const int64_t want = 2 * (int64_t)p->threads;
    if (p->mode == QCONV_DEPTHWISE) {
        if (qconv_plan_depthwise(p, err)) return -1;
    } else if (p->mode == QCONV_DIRECT) {
        if (qconv_plan_direct(p, err)) return -1;
    } else if (p->mode == QCONV_LANES) {
        if (qconv_plan_lanes(p, err)) return -1;
    } else if (qconv_plan_gemm(p, outer, want, err)) {
        return -1;
    }
    if (p->slice_bytes > (SIZE_MAX - p->head_bytes) / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "convolution workspace size overflows");
    n->workspace_bytes = p->head_bytes + p->slice_bytes * (size_t)p->threads;
    return 0;
}

enum { TABLE_SLOT = 9 };

/* The fused activation table, when the node has one: a constant uint8 [256] at TABLE_SLOT. */
static int qconv_read_table(oct_graph *g, const oct_node *n, qconv_params *p, octet_error *err) {
    if (!p->qlinear || !oct_attr_int(n, "octet_output_table", 0)) return 0;
    if (!oct_node_has_input(n, TABLE_SLOT))
        return oct_fail(err, OCTET_ERR_FORMAT, "octet_output_table = 1 but no table at input %d", TABLE_SLOT);
    const oct_value *t = oct_const_input(g, n, TABLE_SLOT, err);
    if (!t) return -1;
    if (t->dtype != OCTET_UINT8 || t->rank != 1 || t->dims[0] != 256)
        return oct_fail(err, OCTET_ERR_SHAPE, "output table '%s' must be uint8 [256]", t->name);
    memcpy(p->table, t->data, 256);
    p->has_table = 1;
    return 0;
}

void qconv_apply_table(const qconv_params *p, const qconv_run_args *a, int64_t b, int64_t ch, int64_t nch,
                       int64_t p0, int64_t np, int64_t *sums) {
    if (!a->table) return;
    const oct_misc_kernel_set *k = oct_misc_kernels();
    uint8_t *y = (uint8_t *)a->y + (b * p->M + ch) * p->P + p0;
    if (np == p->P && !sums) { /* whole planes: one run (7x7 planes would make calls of 49 bytes) */
        k->qlut(y, nch * np, a->table, y);
        return;
    }
    for (int64_t c = 0; c < nch; c++, y += p->P) {
        k->qlut(y, np, a->table, y);
        if (sums) sums[c] += k->qsum(y, p->out_s8, np);
    }
}

/* The int8-domain weight zero points (uint8 weights were packed shifted by -128, zero point or
   not; an absent one is 0) into w_zp[M]; returns whether any is not 0. */
static int qconv_weight_zps(const qconv_params *p, const oct_tensor *wz, int32_t *w_zp) {
    int any = 0;
    for (int64_t m = 0; m < p->M; m++) {
        w_zp[m] = quant_zp_at(wz, p->w_zp_count > 1 ? m : 0) - (p->w_u8 ? 128 : 0);
        any |= w_zp[m] != 0;
    }
    return any;
}

static const oct_tensor *const_tensor(oct_graph *g, const oct_node *n, int slot, oct_tensor *t) {
    if (!oct_node_has_input(n, slot)) return NULL;
    const oct_value *v = oct_in_val(g, n, slot);
    *t = oct_value_tensor(v);
    return t;
}

static int is_const(oct_graph *g, const oct_node *n, int slot) {
    if (slot < 0 || !oct_node_has_input(n, slot)) return 1;
    const oct_value *v = oct_in_val(g, n, slot);
    return v->kind == OCT_VAL_CONST && v->data;
}

/* Computes the weight zero points and, for QLinearConv, the multipliers once when their inputs
   are constants (see qconv_params.const_mult). */
static int qconv_plan_constants(oct_graph *g, const oct_node *n, qconv_params *p, octet_error *err) {
    const qconv_slots *s = &p->in;
    if (is_const(g, n, s->w_zp)) {
        p->const_wzp = malloc((size_t)p->M * sizeof *p->const_wzp);
        if (!p->const_wzp) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        oct_tensor wz;
        p->const_any_wzp = qconv_weight_zps(p, const_tensor(g, n, s->w_zp, &wz), p->const_wzp);
    }
    if (!p->qlinear || !is_const(g, n, s->x_scale) || !is_const(g, n, s->w_scale) || !is_const(g, n, s->y_scale))
        return 0;
    p->const_mult = malloc((size_t)p->M * sizeof *p->const_mult);
    if (!p->const_mult) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    const float sx = *(const float *)oct_in_val(g, n, s->x_scale)->data;
    const float sy = *(const float *)oct_in_val(g, n, s->y_scale)->data;
    return quant_multipliers(sx, oct_in_val(g, n, s->w_scale)->data, p->w_scale_count, sy, p->w_scale_count,
                             p->const_mult, err);
}

static int qconv_infer_common(oct_graph *g, oct_node *n, int qlinear, octet_error *err) {
    nn_reset_params(n);
    const int table = qlinear && oct_attr_int(n, "octet_output_table", 0);
    if (qlinear ? oct_check_inputs(n, 8, table ? TABLE_SLOT + 1 : 9, err) : oct_check_inputs(n, 2, 4, err))
        return -1;
    if (n->n_out != 1)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs, expects 1", n->op_type, n->n_out);
    qconv_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->qlinear = qlinear;
    p->in = qlinear ? QLINEAR_SLOTS : INTEGER_SLOTS;
    if (qconv_check_types(g, n, p, err) || qconv_geometry(g, n, p, err) || qconv_check_channels(g, n, p, err) ||
        qconv_read_table(g, n, p, err))
        return -1;
    /* QLinearConv applies a fused Relu/Clip through its requantization clamp */
    if (quant_check_epilogue(n, err)) return -1;
    if (!qlinear && n->epi.act != OCT_ACT_NONE)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "ConvInteger cannot apply a fused activation");
    p->x_s8 = oct_in_val(g, n, p->in.x)->dtype == OCTET_INT8;
    p->w_u8 = oct_in_val(g, n, p->in.w)->dtype == OCTET_UINT8;
    p->out_s8 = qlinear && oct_in_val(g, n, p->in.y_zp)->dtype == OCTET_INT8;
    p->mode = p->Cg == 1 ? QCONV_DEPTHWISE : QCONV_GEMM;
    if (qconv_direct_fits(g, n, p)) p->mode = QCONV_DIRECT;
    if (qconv_lanes_fits(g, n, p)) p->mode = QCONV_LANES;
    p->ks = quant_kernels();
    p->unfold = oct_qpanel_kernels_selected();
    if (qconv_plan_work(g, n, p, err)) return -1;
    if (!g->shapes_only && qconv_plan_constants(g, n, p, err)) return -1;
    return qconv_pack(g, n, p, err);
}

static int qlinearconv_infer(oct_graph *g, oct_node *n, octet_error *err) {
    return qconv_infer_common(g, n, 1, err);
}
static int convinteger_infer(oct_graph *g, oct_node *n, octet_error *err) {
    return qconv_infer_common(g, n, 0, err);
}

typedef struct {
    const qconv_params *p;
    const qconv_run_args *a;
    char *slices;
    nn_steal *work;
    int split, any_wzp;
} gemm_job;

/* One thread's part of the GEMM strategy: the items it claims (see run_gemm). */
static void gemm_part(void *arg, int me, int nthreads) {
    (void)nthreads;
    const gemm_job *j = arg;
    const qconv_params *p = j->p;
    const qconv_run_args *a = j->a;
    const oct_quant_kernel_set *ks = p->ks;
    const int64_t ntiles = p->ntiles, nmb = (p->Mg + p->mblock - 1) / p->mblock;
    const size_t esize = p->qlinear ? 1 : sizeof(int32_t);
    char *slice = j->slices + (size_t)me * p->slice_bytes;
    void *panel = slice;
    int32_t *colsum = (int32_t *)(slice + p->col_bytes);
    void *scratch = slice + p->col_bytes + p->sums_bytes;
    int64_t have = -1; /* the (image, group, tile) whose panels the slice holds */
    for (int64_t it; (it = nn_steal_next(j->work, me)) >= 0;) {
        const int64_t mbi = j->split ? it / ntiles : it % nmb;
        const int64_t bt = j->split ? it % ntiles : it / nmb, tile_i = bt % ntiles, bg = bt / ntiles;
        const int64_t b = bg / p->group, gi = bg % p->group;
        const int64_t p0 = qconv_gemm_tile_start(p->P, ntiles, tile_i);
        const int64_t np = qconv_gemm_tile_start(p->P, ntiles, tile_i + 1) - p0;
        const int64_t m0 = mbi * p->mblock, mc = p->Mg - m0 < p->mblock ? p->Mg - m0 : p->mblock;
        if (have != bt) {
            const uint8_t *xg = a->x + (b * p->C + gi * p->Cg) * p->in_vol;
            p->unfold->im2col(ks->panel, &p->geom, xg, p->Cg, p0, np, a->x_xor, (uint8_t)a->x_zp, scratch, panel);
            if (j->any_wzp) oct_ref_qpanel_colsums(ks->panel, panel, (int)p->K, (int)np, colsum);
            have = bt;
        }
        const int64_t ch = gi * p->Mg + m0;
        const oct_qgemm_out o = {.x_zp = a->x_zp, .w_zp = a->w_zp, .colsum = j->any_wzp ? colsum : NULL,
                                 .rq = p->qlinear ? &a->rq : NULL,
                                 .y = (char *)a->y + ((b * p->M + ch) * p->P + p0) * esize,
                                 .y_rs = p->P, .y_cs = 1};
        ks->qgemm_panel(&p->packed, (int)ch, (int)mc, (int)np, panel, &o);
    }
}

static void run_gemm(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a) {
    const int t = nn_run_threads(ctx, p->threads);
    const int64_t nmb = (p->Mg + p->mblock - 1) / p->mblock;
    const int64_t items = p->N * p->group * p->ntiles * nmb;
    /* Each thread runs a contiguous range of the items (stealing at the end, see steal_range.h):
       tile-major, so a thread's pixels are one band of the image, as in the layers before and after;
       with split_channels channel-block-major, one block per thread. */
    nn_steal work;
    nn_steal_init(&work, items, t); /* the plan checked the item count */
    /* alone, a thread runs tile-major: each tile is unfolded once for all its channel blocks */
    gemm_job j = {p, a, (char *)ctx->workspace + p->head_bytes, &work, p->split_channels && t > 1, a->any_wzp};
    oct_parallel(ctx, items > 1 ? t : 1, gemm_part, &j);
}

static int qconv_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qconv_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    if (p->N == 0 || p->P == 0) return 0;
    const qconv_slots *s = &p->in;
    qconv_run_args a = {.x = oct_in(ctx, n, s->x)->data, .y = oct_out(ctx, n, 0)->data};
    /* int8 activations move to the uint8 domain: flip the sign bit, shift the zero point. */
    a.x_xor = p->x_s8 ? 0x80 : 0;
    a.x_zp = quant_zp_at(quant_opt_in(ctx, n, s->x_zp), 0) + (p->x_s8 ? 128 : 0);
    if (p->const_wzp) {
        a.w_zp = p->const_wzp;
        a.any_wzp = p->const_any_wzp;
    } else {
        int32_t *w_zp = (int32_t *)((char *)ctx->workspace + p->mult_bytes);
        a.any_wzp = qconv_weight_zps(p, quant_opt_in(ctx, n, s->w_zp), w_zp);
        a.w_zp = w_zp;
    }
    if (p->qlinear) {
        const float sy = *(const float *)oct_in(ctx, n, s->y_scale)->data;
        const float *mult = p->const_mult;
        if (!mult) {
            float *m = ctx->workspace;
            const float sx = *(const float *)oct_in(ctx, n, s->x_scale)->data;
            if (quant_multipliers(sx, oct_in(ctx, n, s->w_scale)->data, p->w_scale_count, sy, p->w_scale_count, m,
                                  err))
                return -1;
            mult = m;
        }
        const oct_tensor *yz = oct_in(ctx, n, s->y_zp);
        const octet_dtype yt = p->out_s8 ? OCTET_INT8 : OCTET_UINT8;
        a.rq = (oct_requant){.scale = mult, .scale_per_row = p->w_scale_count > 1,
                             .bias = oct_node_has_input(n, s->bias) ? oct_in(ctx, n, s->bias)->data : NULL,
                             .zp = quant_zp_at(yz, 0), .qmin = quant_min(yt), .qmax = quant_max(yt),
                             .out_s8 = p->out_s8};
        quant_act_clamp(n, sy, a.rq.zp, &a.rq.qmin, &a.rq.qmax);
        a.table = p->has_table ? p->table : NULL;
        /* The GEMM and direct write-backs map each byte through the table as they store it; the
           depthwise strategy maps each work item's bytes after it (qconv_apply_table). */
        if (p->mode != QCONV_DEPTHWISE) {
            a.rq.table = a.table;
            a.table = NULL;
        }
    }
    if (p->mode == QCONV_DEPTHWISE) qconv_run_depthwise(ctx, p, &a);
    else if (p->mode == QCONV_DIRECT) qconv_run_direct(ctx, p, &a);
    else if (p->mode == QCONV_LANES) qconv_run_lanes(ctx, p, &a);
    else run_gemm(ctx, p, &a);
    return 0;
}

const oct_op oct_op_qlinear_conv = {"", "QLinearConv", OCT_OP_TEAM, qlinearconv_infer, qconv_run, qconv_free};
const oct_op oct_op_conv_integer = {"", "ConvInteger", OCT_OP_TEAM, convinteger_infer, qconv_run, qconv_free};
