/* com.microsoft QLinearGlobalAveragePool and QLinearAveragePool: Y = Q(AveragePool(DQ(X))), one
   8-bit type for X and Y, per-tensor scales and zero points (read at run time). Inputs: X,
   x_scale, [x_zero_point], y_scale, [y_zero_point]. channels_last = 1 takes X as (N, D1.., C).
   Window sums are exact integers; the mean is scaled to the output in double. AveragePool takes
   kernel_shape, strides, pads, auto_pad, ceil_mode and count_include_pad as AveragePool does. */
#include <stdlib.h>
#include <string.h>

#include "../nn/nn_common.h"
#include "misc_kernels.h"
#include "qops_common.h"

typedef struct {
    int global, channels_last, count_include_pad, s8;
    oct_conv_geom geom;
    int64_t pad_end[3];
    int64_t N, C, in_vol, out_vol;
    int threads;
} qpool_params;

/* Channels per work item of the channels-last global pool (its sums live on the stack). */
enum { COLS_BLOCK = 64 };

static int qpool_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (qops_check_inputs(n, 4, 5, 0xbu, err)) return -1;
    if (quant_require_dtype(g, n, 0, "input X", OCTET_UINT8, OCTET_INT8, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (qops_check_qparams(g, n, 1, 2, x->dtype, "x", err) || qops_check_qparams(g, n, 3, 4, x->dtype, "y", err))
        return -1;
    qpool_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->global = strcmp(n->op_type, "QLinearGlobalAveragePool") == 0;
    p->channels_last = oct_attr_int(n, "channels_last", 0) != 0;
    p->s8 = x->dtype == OCTET_INT8;
    const int min_rank = 3, max_rank = p->global ? OCTET_MAX_RANK : 5;
    if (x->rank < min_rank || x->rank > max_rank)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s input '%s' has rank %d; supported ranks are %d..%d", n->op_type,
                        x->name, x->rank, min_rank, max_rank);
    const int nsp = x->rank - 2, sp0 = p->channels_last ? 1 : 2;
    p->N = x->dims[0];
    p->C = p->channels_last ? x->dims[x->rank - 1] : x->dims[1];
    int64_t dims[OCTET_MAX_RANK];
    dims[0] = p->N;
    if (p->global) {
        p->in_vol = 1;
        for (int i = 0; i < nsp; i++) p->in_vol *= x->dims[sp0 + i];
        p->out_vol = 1;
        for (int i = 0; i < nsp; i++) dims[sp0 + i] = 1;
    } else {
        nn_window win = {.nsp = nsp};
        int64_t ks[OCTET_MAX_RANK];
        const int nks = oct_attr_ints(n, "kernel_shape", ks, OCTET_MAX_RANK, err);
        if (nks == -2) return -1;
        if (nks != nsp)
            return oct_fail(err, OCTET_ERR_FORMAT, "kernel_shape must have %d values (has %d)", nsp, nks < 0 ? 0 : nks);
        for (int i = 0; i < nsp; i++) {
            win.in[i] = x->dims[sp0 + i];
            win.k[i] = ks[i];
        }
        if (nn_window_forward(n, oct_attr_int(n, "ceil_mode", 0) != 0, 0, &win, err)) return -1;
        nn_window_geom(&win, &p->geom);
        for (int i = 0; i < 3; i++) p->pad_end[i] = 0;
        for (int i = 0; i < nsp; i++) p->pad_end[3 - nsp + i] = win.pad_end[i];
        p->count_include_pad = oct_attr_int(n, "count_include_pad", 0) != 0;
        p->in_vol = oct_geom_in_vol(&p->geom);
        p->out_vol = oct_geom_out_vol(&p->geom);
        for (int i = 0; i < nsp; i++) dims[sp0 + i] = win.out[i];
    }
    dims[p->channels_last ? x->rank - 1 : 1] = p->C;
    oct_set_output(g, n, 0, x->dtype, x->rank, dims);
    p->threads = nn_plan_threads();
    n->workspace_bytes = 0;
    return 0;
}

static int qpool_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qpool_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    const qops_qparams xq = qops_run_qparams(ctx, n, 1, 2), yq = qops_run_qparams(ctx, n, 3, 4);
    if (qops_check_scale_value(xq.scale, "x", err) || qops_check_scale_value(yq.scale, "y", err)) return -1;
    const octet_dtype t = p->s8 ? OCTET_INT8 : OCTET_UINT8;
    const oct_qpool q = {.scale = (double)xq.scale / (double)yq.scale, .x_zp = xq.zp, .y_zp = yq.zp,
                         .qmin = quant_min(t), .qmax = quant_max(t), .x_s8 = p->s8, .y_s8 = p->s8};
    const uint8_t *x = oct_in(ctx, n, 0)->data;
    uint8_t *y = oct_out(ctx, n, 0)->data;
    const int th = nn_run_threads(ctx, p->threads);
    const int64_t C = p->C, vol = p->in_vol;
    if (p->global && !p->channels_last) {
        const int64_t items = p->N * C;
        const oct_misc_kernel_set *k = oct_misc_kernels();
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && items * vol > (1 << 15))
        for (int64_t it = 0; it < items; it++) {
            const int64_t s = k->qsum(x + it * vol, p->s8, vol);
            const double v = vol > 0 ? (double)(s - vol * (int64_t)q.x_zp) / (double)vol * q.scale : 0.0;
            y[it] = (uint8_t)oct_q8_round(v, q.y_zp, q.qmin, q.qmax);
        }
    } else if (p->global) {
        const int64_t blocks = (C + COLS_BLOCK - 1) / COLS_BLOCK, items = p->N * blocks;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && items > 1 && p->N * C * vol > (1 << 15))
        for (int64_t it = 0; it < items; it++) {
            const int64_t b = it / blocks, c0 = (it % blocks) * COLS_BLOCK;
            const int64_t nc = C - c0 < COLS_BLOCK ? C - c0 : COLS_BLOCK;
            int64_t sums[COLS_BLOCK] = {0};
            oct_ref_qcolsum(x + b * vol * C + c0, p->s8, vol, nc, C, sums);
            for (int64_t c = 0; c < nc; c++) {
                const double v = vol > 0 ? (double)(sums[c] - vol * (int64_t)q.x_zp) / (double)vol * q.scale : 0.0;
                y[b * C + c0 + c] = (uint8_t)oct_q8_round(v, q.y_zp, q.qmin, q.qmax);
            }
        }
    } else {
        const int64_t items = p->N * C;
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && items > 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t b = it / C, c = it % C;
            if (p->channels_last)
                oct_ref_qavgpool(&p->geom, p->pad_end, p->count_include_pad, &q, x + b * vol * C + c, C,
                                 y + b * p->out_vol * C + c, C);
            else
                oct_ref_qavgpool(&p->geom, p->pad_end, p->count_include_pad, &q, x + it * vol, 1, y + it * p->out_vol, 1);
        }
    }
    return 0;
}

const oct_op oct_op_qlinear_global_average_pool = {"com.microsoft", "QLinearGlobalAveragePool", 0, qpool_infer,
                                                   qpool_run, NULL};
const oct_op oct_op_qlinear_average_pool = {"com.microsoft", "QLinearAveragePool", 0, qpool_infer, qpool_run, NULL};
