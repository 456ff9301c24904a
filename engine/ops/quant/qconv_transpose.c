/* octet.QLinearConvTranspose: the int8 ConvTranspose that ONNX Runtime lacks (every 3-D U-Net
   decoder needs it). Inputs: x, x_scale, [x_zero_point], w, w_scale, [w_zero_point], y_scale,
   y_zero_point, [B]. x uint8/int8 per tensor; w uint8/int8 shaped like ConvTranspose's weight
   (C, M/group, k...), its scale and zero point per tensor or per output channel: M/group values
   (axis 1 of w, repeated for every group, as a QDQ model quantizes it) or M values; B int32 [M]
   with scale x_scale * w_scale; the output has y_zero_point's type. Attributes as ConvTranspose:
   group, kernel_shape, strides, dilations, pads, auto_pad, output_padding, output_shape; 1-D to
   3-D. A fused Relu/Clip narrows the requantization clamp.

   Computation: per group, col[(Mg*kvol) x tile] = W_g^T * X_g[:, tile] is an int8 GEMM (weights
   packed at plan time, one row per (output channel, kernel tap)), and col2im adds col into an
   int32 accumulator. A work item owns a block of output channels and a slab of the output along
   its outermost non-trivial spatial dim; it runs the GEMM over the input rows that reach the slab
   only, accumulates the slab exactly in int32 (the zero points are applied inside the GEMM, so
   every contribution is exact), and requantizes it per output channel. Memory per thread is the
   slab accumulator and one col tile; nothing is as large as the output volume. When the windows
   tile the output without overlap (stride == kernel: U-Net upsampling), every output pixel gets
   one GEMM value: the col tile is requantized row by row and its bytes stored straight into the
   output, with no accumulator. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/nn_common.h"
#include "qops_common.h"

enum { S_X = 0, S_XS, S_XZ, S_W, S_WS, S_WZ, S_YS, S_YZ, S_B };

typedef struct {
    oct_conv_geom geom; /* in: the op's input, out: its output */
    int64_t N, C, M, group, Cg, Mg, kvol, in_vol, out_vol;
    int x_s8, w_u8, out_s8;
    int64_t w_scale_count, w_zp_count;
    int sd;                   /* the slab dim (0..2 of geom) */
    int64_t inner_in, inner_out; /* pixels per unit of the slab dim, input and output */
    int64_t slab, mc, tile;   /* slab height, output channels per item, input pixels per GEMM */
    int disjoint;             /* oct_col2im_is_disjoint: no accumulator, bytes stored directly */
    int threads;
    const oct_quant_kernel_set *ks;
    void *packed_buf;
    oct_qweights *packed;     /* one per group */
    size_t mult_bytes, wzp_bytes, acc_bytes, col_bytes, panel_bytes, slice_bytes;
} qconvt_params;

/* Bytes of the slab accumulator and the col tile a thread works on. */
enum { ACC_BUDGET = 1 << 19, COL_BUDGET = 1 << 18 };

static void qconvt_free(void *pp) {
    qconvt_params *p = pp;
    if (!p) return;
    free(p->packed_buf);
    free(p->packed);
    free(p);
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

/* Output size and padding of spatial dim i, as ConvTranspose defines them: from output_shape or
   SAME_* auto_pad (output = input * stride) the total padding follows from the output size (an odd
   pixel goes to the end for SAME_UPPER, to the beginning otherwise); a negative total pads nothing
   and leaves the extra output pixels holding only the bias. */
static int qconvt_dim(const char *auto_pad, int64_t adj, int64_t want_out, nn_window *w, int i, octet_error *err) {
    const int upper = strcmp(auto_pad, "SAME_UPPER") == 0, same = upper || strcmp(auto_pad, "SAME_LOWER") == 0;
    const int64_t ek = (w->k[i] - 1) * w->dil[i] + 1;
    const int64_t natural = w->stride[i] * (w->in[i] - 1) + adj + ek;
    if (want_out < 0 && same) want_out = w->in[i] * w->stride[i];
    if (want_out >= 0) {
        int64_t total = natural - want_out;
        if (total < 0) total = 0;
        w->pad_begin[i] = upper ? total / 2 : total - total / 2;
        w->pad_end[i] = total - w->pad_begin[i];
        w->out[i] = want_out;
    } else {
        w->out[i] = natural - w->pad_begin[i] - w->pad_end[i];
    }
    if (w->out[i] < 1 || w->out[i] > INT32_MAX)
        return oct_fail(err, OCTET_ERR_SHAPE, "output spatial dim %d would be %lld", i, (long long)w->out[i]);
    return 0;
}

static int qconvt_geometry(oct_graph *g, const oct_node *n, qconvt_params *p, nn_window *win, octet_error *err) {
    const oct_value *x = oct_in_val(g, n, S_X), *w = oct_in_val(g, n, S_W);
    if (x->rank < 3 || x->rank > 5)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "input '%s' has rank %d; 1-D to 3-D (rank 3..5) is supported",
                        x->name, x->rank);
    if (w->rank != x->rank)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has rank %d, input has rank %d", w->name, w->rank, x->rank);
    p->group = oct_attr_int(n, "group", 1);
    p->C = x->dims[1];
    if (p->C < 1 || w->dims[1] < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "QLinearConvTranspose needs at least one input and one output channel");
    if (p->group < 1 || p->C % p->group != 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "group %lld does not divide the input channels %lld", (long long)p->group,
                        (long long)p->C);
    if (w->dims[0] != p->C)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has %lld input channels, the input has %lld", w->name,
                        (long long)w->dims[0], (long long)p->C);
    if (w->dims[1] > INT32_MAX / p->group) return oct_fail(err, OCTET_ERR_SHAPE, "output channel count overflows");
    p->Mg = w->dims[1];
    p->M = p->Mg * p->group;
    p->Cg = p->C / p->group;
    win->nsp = x->rank - 2;
    int64_t ks[OCTET_MAX_RANK], adj[OCTET_MAX_RANK], os[OCTET_MAX_RANK];
    const int nks = oct_attr_ints(n, "kernel_shape", ks, OCTET_MAX_RANK, err);
    const int nadj = nks == -2 ? -2 : oct_attr_ints(n, "output_padding", adj, OCTET_MAX_RANK, err);
    const int nos = nadj == -2 ? -2 : oct_attr_ints(n, "output_shape", os, OCTET_MAX_RANK, err);
    if (nos == -2) return -1;
    if (nks >= 0 && nks != win->nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "kernel_shape has %d values for %d spatial dims", nks, win->nsp);
    if (nadj >= 0 && nadj != win->nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "output_padding has %d values for %d spatial dims", nadj, win->nsp);
    const int64_t *want = NULL; /* output_shape: the spatial dims, or the whole output shape */
    if (nos >= 0) {
        if (nos == win->nsp) want = os;
        else if (nos == x->rank) want = os + 2;
        else return oct_fail(err, OCTET_ERR_FORMAT, "output_shape has %d values for %d spatial dims", nos, win->nsp);
    }
    if (nn_window_read_strides(n, win, 1, err)) return -1;
    const char *ap = oct_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER"))
        return oct_fail(err, OCTET_ERR_FORMAT, "unknown auto_pad '%s'", ap);
    if (strcmp(ap, "NOTSET") == 0) {
        if (nn_window_read_pads(n, win, err)) return -1;
    } else {
        for (int i = 0; i < win->nsp; i++) win->pad_begin[i] = win->pad_end[i] = 0;
    }
    for (int i = 0; i < win->nsp; i++) {
        win->in[i] = x->dims[2 + i];
        win->k[i] = w->dims[2 + i];
        if (nks >= 0 && ks[i] != win->k[i])
            return oct_fail(err, OCTET_ERR_SHAPE, "kernel_shape[%d] = %lld does not match the weight (%lld)", i,
                            (long long)ks[i], (long long)win->k[i]);
        if (win->in[i] < 1 || win->in[i] > INT32_MAX || win->k[i] < 1 || win->k[i] > INT32_MAX ||
            win->stride[i] > INT32_MAX || win->dil[i] > INT32_MAX)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "spatial dim %d is empty or too large", i);
        const int64_t a = nadj >= 0 ? adj[i] : 0;
        if (a < 0 || a > INT32_MAX) return oct_fail(err, OCTET_ERR_FORMAT, "output_padding[%d] is %lld", i, (long long)a);
        if (want && (want[i] < 1 || want[i] > INT32_MAX))
            return oct_fail(err, OCTET_ERR_FORMAT, "output_shape[%d] is %lld", i, (long long)want[i]);
        if (qconvt_dim(ap, a, want ? want[i] : -1, win, i, err)) return -1;
    }
    nn_window_geom(win, &p->geom);
    p->N = x->dims[0];
    p->kvol = oct_geom_k_vol(&p->geom);
    p->in_vol = oct_geom_in_vol(&p->geom);
    p->out_vol = oct_geom_out_vol(&p->geom);
    if (nn_check_int(p->Mg * p->kvol, "output channels per group x kernel volume", err) ||
        nn_check_int(p->Cg, "input channels per group", err) || nn_check_int(p->in_vol, "the input volume", err) ||
        nn_check_int(p->out_vol, "the output volume", err))
        return -1;
    if (p->out_vol > INT64_MAX / p->M / (p->N > 0 ? p->N : 1))
        return oct_fail(err, OCTET_ERR_NOMEM, "output size overflows");
    int64_t dims[OCTET_MAX_RANK] = {p->N, p->M};
    for (int i = 0; i < win->nsp; i++) dims[2 + i] = win->out[i];
    oct_set_output(g, n, 0, oct_in_val(g, n, S_YZ)->dtype, x->rank, dims);
    return 0;
}

/* A per-tensor or per-output-channel parameter of w: 1, M/group or M values. */
static int64_t qconvt_check_wparam(oct_graph *g, const oct_node *n, const qconvt_params *p, int i, const char *what,
                                   octet_dtype dtype, octet_error *err) {
    const oct_value *v = oct_in_val(g, n, i);
    if (v->dtype != dtype)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' is %s, expected %s", what, v->name, octet_dtype_name(v->dtype),
                        octet_dtype_name(dtype));
    const int64_t count = oct_value_numel(v);
    if (count == 1) return 1;
    if (v->rank == 1 && (count == p->Mg || count == p->M)) return count;
    return oct_fail(err, OCTET_ERR_SHAPE,
                    "%s '%s' has %lld values (rank %d); expected one, %lld (axis 1 of the weight) or %lld (all output "
                    "channels)",
                    what, v->name, (long long)count, v->rank, (long long)p->Mg, (long long)p->M);
}

static int qconvt_check_types(oct_graph *g, const oct_node *n, qconvt_params *p, octet_error *err) {
    if (quant_require_dtype(g, n, S_X, "input x", OCTET_UINT8, OCTET_INT8, err) ||
        quant_require_dtype(g, n, S_W, "weight w", OCTET_UINT8, OCTET_INT8, err))
        return -1;
    const octet_dtype xt = oct_in_val(g, n, S_X)->dtype, wt = oct_in_val(g, n, S_W)->dtype;
    const oct_value *yz = oct_in_val(g, n, S_YZ);
    if (!quant_is_8bit(yz->dtype))
        return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", yz->name,
                        octet_dtype_name(yz->dtype));
    if (qops_check_qparams(g, n, S_XS, S_XZ, xt, "x", err) || qops_check_qparams(g, n, S_YS, S_YZ, yz->dtype, "y", err))
        return -1;
    p->x_s8 = xt == OCTET_INT8;
    p->w_u8 = wt == OCTET_UINT8;
    p->out_s8 = yz->dtype == OCTET_INT8;
    return 0;
}

static int qconvt_check_channels(oct_graph *g, const oct_node *n, qconvt_params *p, octet_error *err) {
    const octet_dtype wt = oct_in_val(g, n, S_W)->dtype;
    p->w_scale_count = qconvt_check_wparam(g, n, p, S_WS, "w_scale", OCTET_FLOAT, err);
    if (p->w_scale_count < 0) return -1;
    p->w_zp_count = 1;
    if (oct_node_has_input(n, S_WZ) && (p->w_zp_count = qconvt_check_wparam(g, n, p, S_WZ, "w_zero_point", wt, err)) < 0)
        return -1;
    if (oct_node_has_input(n, S_B)) {
        const oct_value *b = oct_in_val(g, n, S_B);
        if (b->dtype != OCTET_INT32)
            return oct_fail(err, OCTET_ERR_SHAPE, "bias '%s' is %s, expected int32", b->name, octet_dtype_name(b->dtype));
        if (b->rank != 1 || b->dims[0] != p->M)
            return oct_fail(err, OCTET_ERR_SHAPE, "bias '%s' must have shape [%lld]", b->name, (long long)p->M);
    }
    return quant_check_epilogue(n, err);
}

/* Slab dim and height, channel block, input tile and the workspace: [mult M][w zp rows M*kvol]
   then per thread [slab accumulator][col tile][int8 -> uint8 input panel]. */
static int qconvt_plan(oct_node *n, qconvt_params *p, octet_error *err) {
    const oct_conv_geom *g = &p->geom;
    p->threads = nn_plan_threads();
    p->sd = 2;
    for (int d = 0; d < 3; d++)
        if (g->in[d] > 1 || g->out[d] > 1) {
            p->sd = d;
            break;
        }
    p->inner_in = p->inner_out = 1;
    for (int d = p->sd + 1; d < 3; d++) {
        p->inner_in *= g->in[d];
        p->inner_out *= g->out[d];
    }
    const int64_t acc_pix = ACC_BUDGET / (int64_t)sizeof(int32_t), out_sd = g->out[p->sd], s = g->stride[p->sd];
    const int64_t mc0 = p->Mg < 16 ? p->Mg : 16;
    int64_t slab = acc_pix / (mc0 * p->inner_out);
    if (slab > out_sd) slab = out_sd;
    if (slab >= s) slab -= slab % s; /* whole strides: an input row then feeds one slab when k <= s */
    if (slab < 1) slab = 1;
    int64_t mc = acc_pix / (slab * p->inner_out);
    if (mc > p->Mg) mc = p->Mg;
    if (mc < 1) mc = 1;
    /* Enough work items for every thread: thinner slabs first, then fewer channels per item. */
    const int64_t want = 2 * (int64_t)p->threads, outer = p->N * p->group > 0 ? p->N * p->group : 1;
    while (outer * ((p->Mg + mc - 1) / mc) * ((out_sd + slab - 1) / slab) < want && slab > 1) slab = (slab + 1) / 2;
    while (outer * ((p->Mg + mc - 1) / mc) * ((out_sd + slab - 1) / slab) < want && mc > 1) mc = (mc + 1) / 2;
    p->disjoint = oct_col2im_is_disjoint(g);
    if (p->disjoint) slab = (slab + s - 1) / s * s; /* whole strides: each input row feeds one slab */
    p->slab = slab;
    p->mc = mc;
    int64_t tile = COL_BUDGET / (int64_t)sizeof(int32_t) / (mc * p->kvol);
    if (tile > 1024) tile = 1024;
    if (tile < 16) tile = 16;
    if (tile > p->in_vol) tile = p->in_vol;
    p->tile = tile;
    if (nn_check_int(slab * p->inner_out, "the accumulator tile", err)) return -1;
    p->mult_bytes = quant_align64((size_t)p->M * sizeof(float));
    p->wzp_bytes = quant_align64((size_t)(p->M * p->kvol) * sizeof(int32_t));
    /* disjoint: the slot holds the requantized col tile instead of the slab accumulator */
    p->acc_bytes = p->disjoint ? quant_align64((size_t)(mc * p->kvol * tile))
                               : quant_align64((size_t)(mc * slab * p->inner_out) * sizeof(int32_t));
    p->col_bytes = quant_align64((size_t)(mc * p->kvol * tile) * sizeof(int32_t));
    p->panel_bytes = p->x_s8 ? quant_align64((size_t)(p->Cg * tile)) : 0;
    if (!p->mult_bytes || !p->wzp_bytes || !p->acc_bytes || !p->col_bytes || (p->x_s8 && !p->panel_bytes))
        return oct_fail(err, OCTET_ERR_NOMEM, "QLinearConvTranspose workspace size overflows");
    p->slice_bytes = p->acc_bytes + p->col_bytes + p->panel_bytes;
    const size_t head = p->mult_bytes + p->wzp_bytes;
    if (p->slice_bytes > (SIZE_MAX - head) / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "QLinearConvTranspose workspace size overflows");
    n->workspace_bytes = head + p->slice_bytes * (size_t)p->threads;
    return 0;
}

/* Packs each group's weights: row (m, tap) of group gi holds w[gi*Cg + c][m][tap] over c. */
static int qconvt_pack(oct_graph *g, const oct_node *n, qconvt_params *p, octet_error *err) {
    const oct_value *w = oct_const_input(g, n, S_W, err);
    if (!w) return -1;
    p->ks = quant_kernels();
    const int rows = (int)(p->Mg * p->kvol), k = (int)p->Cg;
    const size_t one = quant_align64(p->ks->qweights_bytes(rows, k));
    if (!one || (size_t)p->group > SIZE_MAX / one) return oct_fail(err, OCTET_ERR_NOMEM, "packed weight size overflows");
    p->packed_buf = aligned_alloc(64, one * (size_t)p->group);
    p->packed = calloc((size_t)p->group, sizeof *p->packed);
    if (!p->packed_buf || !p->packed) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing weights");
    const int64_t per_group = p->Cg * p->Mg * p->kvol;
    for (int64_t gi = 0; gi < p->group; gi++)
        p->ks->qweights_pack(rows, k, (const uint8_t *)w->data + gi * per_group, p->w_u8, 1, p->Mg * p->kvol,
                             (char *)p->packed_buf + (size_t)gi * one, &p->packed[gi]);
    return 0;
}

static int qconvt_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (qops_check_inputs(n, 8, 9, 0xdbu, err)) return -1;
    qconvt_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    nn_window win;
    memset(&win, 0, sizeof win);
    if (qconvt_check_types(g, n, p, err) || qconvt_geometry(g, n, p, &win, err) || qconvt_check_channels(g, n, p, err) ||
        qconvt_plan(n, p, err))
        return -1;
    return qconvt_pack(g, n, p, err);
}

typedef struct {
    const uint8_t *x;
    uint8_t *y;
    int32_t x_zp;          /* uint8 domain */
    const int32_t *w_zp;   /* [group][Mg*kvol], int8 domain */
    oct_requant rq;
} qconvt_args;

/* One work item: output channels [m0, m0+mcc) of group gi, image b, output slab [o_lo, o_hi). */
static void qconvt_item(const qconvt_params *p, const qconvt_args *a, char *slice, int64_t b, int64_t gi, int64_t m0,
                        int64_t mcc, int64_t o_lo, int64_t o_hi) {
    const oct_conv_geom *g = &p->geom;
    const int sd = p->sd;
    int32_t *acc = (int32_t *)slice;
    uint8_t *bytes = (uint8_t *)slice; /* disjoint: the requantized col tile */
    int32_t *col = (int32_t *)(slice + p->acc_bytes);
    uint8_t *panel = (uint8_t *)(slice + p->acc_bytes + p->col_bytes);
    int64_t lo[3] = {0, 0, 0}, ext[3] = {g->out[0], g->out[1], g->out[2]};
    lo[sd] = o_lo;
    ext[sd] = o_hi - o_lo;
    const int64_t box = ext[0] * ext[1] * ext[2];
    if (!p->disjoint) memset(acc, 0, (size_t)(mcc * box) * sizeof(int32_t));
    /* Input rows along sd whose taps can land in the slab. */
    const int64_t s = g->stride[sd], reach = (g->k[sd] - 1) * g->dil[sd];
    int64_t i_lo = ceil_div(o_lo + g->pad[sd] - reach, s), i_hi = floor_div(o_hi - 1 + g->pad[sd], s);
    if (i_lo < 0) i_lo = 0;
    if (i_hi > g->in[sd] - 1) i_hi = g->in[sd] - 1;
    const int64_t ch = gi * p->Mg + m0;
    if (i_lo <= i_hi) {
        const uint8_t *xg = a->x + (b * p->C + gi * p->Cg) * p->in_vol;
        const int32_t *wzp = a->w_zp + gi * p->Mg * p->kvol;
        const int64_t ip1 = (i_hi + 1) * p->inner_in;
        for (int64_t p0 = i_lo * p->inner_in; p0 < ip1; p0 += p->tile) {
            const int64_t np = ip1 - p0 < p->tile ? ip1 - p0 : p->tile;
            const uint8_t *xt = xg + p0;
            int64_t ldx = p->in_vol;
            if (p->x_s8) {
                for (int64_t c = 0; c < p->Cg; c++) {
                    const uint8_t *src = xg + c * p->in_vol + p0;
                    uint8_t *dst = panel + c * np;
                    for (int64_t q = 0; q < np; q++) dst[q] = (uint8_t)(src[q] ^ 0x80);
                }
                xt = panel;
                ldx = np;
            }
            p->ks->qgemm(&p->packed[gi], (int)(m0 * p->kvol), (int)(mcc * p->kvol), (int)np, xt, ldx, a->x_zp, NULL, wzp,
                         col, np);
            if (!p->disjoint) {
                oct_ref_qcol2im_box(g, col, mcc, p0, np, lo, ext, acc);
                continue;
            }
            for (int64_t r = 0; r < mcc * p->kvol; r++) /* row r is channel ch + r / kvol */
                p->ks->requant(col + r * np, np, (int)(ch + r / p->kvol), 1, (int)np, &a->rq, bytes + r * np, np, 1);
            oct_ref_qcol2im_disjoint(g, bytes, mcc, p0, np, a->y + (b * p->M + ch) * p->out_vol);
        }
    }
    if (p->disjoint) return;
    uint8_t *y = a->y + (b * p->M + ch) * p->out_vol + o_lo * p->inner_out;
    p->ks->requant(acc, box, (int)ch, (int)mcc, (int)box, &a->rq, y, p->out_vol, 1);
}

static int qconvt_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qconvt_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "QLinearConvTranspose run before infer");
    if (p->N == 0) return 0;
    float *mult = ctx->workspace;
    int32_t *w_zp = (int32_t *)((char *)ctx->workspace + p->mult_bytes);
    const qops_qparams xq = qops_run_qparams(ctx, n, S_XS, S_XZ), yq = qops_run_qparams(ctx, n, S_YS, S_YZ);
    if (qops_check_scale_value(xq.scale, "x", err) || qops_check_scale_value(yq.scale, "y", err)) return -1;
    const float *sw = oct_in(ctx, n, S_WS)->data;
    const oct_tensor *wz = quant_opt_in(ctx, n, S_WZ);
    for (int64_t o = 0; o < p->M; o++) {
        const int64_t si = p->w_scale_count == 1 ? 0 : (p->w_scale_count == p->M ? o : o % p->Mg);
        const int64_t zi = p->w_zp_count == 1 ? 0 : (p->w_zp_count == p->M ? o : o % p->Mg);
        if (quant_multipliers(xq.scale, sw + si, 1, yq.scale, 1, mult + o, err)) return -1;
        /* uint8 weights were packed shifted by -128 */
        const int32_t z = quant_zp_at(wz, zi) - (p->w_u8 ? 128 : 0);
        for (int64_t t = 0; t < p->kvol; t++) w_zp[o * p->kvol + t] = z;
    }
    const octet_dtype yt = p->out_s8 ? OCTET_INT8 : OCTET_UINT8;
    qconvt_args a = {.x = oct_in(ctx, n, S_X)->data, .y = oct_out(ctx, n, 0)->data,
                     .x_zp = xq.zp + (p->x_s8 ? 128 : 0), .w_zp = w_zp};
    a.rq = (oct_requant){.scale = mult, .scale_per_row = 1,
                         .bias = oct_node_has_input(n, S_B) ? oct_in(ctx, n, S_B)->data : NULL, .zp = yq.zp,
                         .qmin = quant_min(yt), .qmax = quant_max(yt), .out_s8 = p->out_s8};
    quant_act_clamp(n, yq.scale, yq.zp, &a.rq.qmin, &a.rq.qmax);
    const int64_t out_sd = p->geom.out[p->sd];
    const int64_t nslabs = (out_sd + p->slab - 1) / p->slab, nmb = (p->Mg + p->mc - 1) / p->mc;
    const int64_t items = p->N * p->group * nmb * nslabs;
    const int t = nn_run_threads(ctx, p->threads);
    char *slices = (char *)ctx->workspace + p->mult_bytes + p->wzp_bytes;
#pragma omp parallel num_threads(t) if (t > 1 && items > 1)
    {
        char *slice = slices + (size_t)omp_get_thread_num() * p->slice_bytes;
        /* Slab-major within a channel block keeps the block's packed weights hot. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t si = it % nslabs, rest = it / nslabs;
            const int64_t mbi = rest % nmb, bg = rest / nmb, b = bg / p->group, gi = bg % p->group;
            const int64_t m0 = mbi * p->mc, mcc = p->Mg - m0 < p->mc ? p->Mg - m0 : p->mc;
            const int64_t o_lo = si * p->slab, o_hi = o_lo + p->slab < out_sd ? o_lo + p->slab : out_sd;
            qconvt_item(p, &a, slice, b, gi, m0, mcc, o_lo, o_hi);
        }
    }
    return 0;
}

const oct_op oct_op_qlinear_conv_transpose = {"octet", "QLinearConvTranspose", 0, qconvt_infer, qconvt_run,
                                              qconvt_free};
