/* com.microsoft QLinearGlobalAveragePool and QLinearAveragePool: Y = Q(AveragePool(DQ(X))), one
   8-bit type for X and Y, per-tensor scales and zero points (read at run time). Inputs: X,
   x_scale, [x_zero_point], y_scale, [y_zero_point]. channels_last = 1 takes X as (N, D1.., C).
   Window sums are exact integers; the mean is scaled to the output in double. AveragePool takes
   kernel_shape, strides, pads, auto_pad, ceil_mode and count_include_pad as AveragePool does.

   The SE squeeze of a quantized EfficientNet-style block (engine/passes/fuse_se.c) is a
   QLinearGlobalAveragePool with its depthwise QLinearConv fused in: inputs 0..8 are the
   QLinearConv's (x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B;
   an absent B is -1), then its activation table when the Conv has one (input 9, attribute
   octet_output_table = 1: engine/passes/fuse_qlut.c), then the pool's X scale and zero point and
   Y scale and zero point, the
   attributes the Conv's plus fused_qlinear_conv = 1, the epilogue the Conv's; outputs the Conv's
   Y (still read by the excite QLinearMul) and the pooled Y. The Conv runs through the QLinearConv
   op on a view of the node; its depthwise strategy leaves the exact channel sums in the
   workspace (qconv_dw_sums.h), from which the pool's bytes follow as they do below. */
#include <stdlib.h>
#include <string.h>

#include "../nn/nn_common.h"
#include "misc_kernels.h"
#include "qconv_dw_sums.h"
#include "qops_common.h"
#include "team.h"

typedef struct {
    int global, channels_last, count_include_pad, s8;
    oct_conv_geom geom;
    int64_t pad_end[3];
    int64_t N, C, in_vol, out_vol;
    int threads;
    /* the fused form */
    const oct_op *conv;
    void *conv_params;
    int conv_inputs;   /* the leading inputs that are the Conv's */
    int conv_sums;     /* the conv leaves the channel sums at workspace + sums_offset */
    size_t sums_offset;
} qpool_params;

#define FUSED_MARK "fused_qlinear_conv"
enum { FUSED_CONV_INPUTS = 9, FUSED_POOL_INPUTS = 4 };

static void qpool_free(void *pp) {
    qpool_params *p = pp;
    if (!p) return;
    if (p->conv && p->conv_params) p->conv->free_params ? p->conv->free_params(p->conv_params) : free(p->conv_params);
    free(p);
}

/* One pooled byte from the exact sum s of vol values. */
static uint8_t pooled_byte(int64_t s, int64_t vol, const oct_qpool *q) {
    const double v = vol > 0 ? (double)(s - vol * (int64_t)q->x_zp) / (double)vol * q->scale : 0.0;
    return (uint8_t)oct_q8_round(v, q->y_zp, q->qmin, q->qmax);
}

/* The leading inputs of fused node n that are its Conv's: 9 (B, -1 when absent), 10 with a table. */
static int fused_conv_inputs(const oct_node *n) {
    return FUSED_CONV_INPUTS + (oct_attr_int(n, "octet_output_table", 0) != 0);
}

/* The fused node as the QLinearConv it holds (shares n's arrays; params are the caller's). */
static oct_node qconv_view(const oct_node *n, int conv_inputs, void *params) {
    static char type[] = "QLinearConv", domain[] = "";
    oct_node c = *n;
    c.op_type = type;
    c.domain = domain;
    c.n_in = conv_inputs > FUSED_CONV_INPUTS || n->in[FUSED_CONV_INPUTS - 1] >= 0 ? conv_inputs : FUSED_CONV_INPUTS - 1;
    c.n_out = 1;
    c.params = params;
    return c;
}

static int fused_infer(oct_graph *g, oct_node *n, qpool_params *p, octet_error *err) {
    p->conv_inputs = fused_conv_inputs(n);
    const int want = p->conv_inputs + FUSED_POOL_INPUTS;
    if (n->n_in != want || n->n_out != 2)
        return oct_fail(err, OCTET_ERR_FORMAT, "fused QLinearConv+%s has %d inputs and %d outputs, expects %d and 2",
                        n->op_type, n->n_in, n->n_out, want);
    if (!(p->conv = oct_op_find("", "QLinearConv")))
        return oct_fail(err, OCTET_ERR_INTERNAL, "QLinearConv is not registered");
    oct_node c = qconv_view(n, p->conv_inputs, NULL);
    const int rc = p->conv->infer(g, &c, err);
    p->conv_params = c.params; /* freed with p, also on failure */
    if (rc) return oct_fail_context(err, "fused QLinearConv");
    const oct_value *y = oct_out_val(g, n, 0);
    const int q0 = p->conv_inputs; /* the pool's X scale */
    if (qops_check_qparams(g, n, q0, q0 + 1, y->dtype, "x", err) || qops_check_qparams(g, n, q0 + 2, q0 + 3, y->dtype, "y", err))
        return -1;
    p->global = 1;
    p->s8 = y->dtype == OCTET_INT8;
    p->N = y->dims[0];
    p->C = y->dims[1];
    p->in_vol = 1;
    int64_t dims[OCTET_MAX_RANK];
    for (int d = 0; d < y->rank; d++) {
        dims[d] = d < 2 ? y->dims[d] : 1;
        if (d >= 2) p->in_vol *= y->dims[d];
    }
    p->out_vol = 1;
    oct_set_output(g, n, 1, y->dtype, y->rank, dims);
    n->run_unread_inputs = c.run_unread_inputs;
    /* the sums go past the conv's own workspace, on a line of their own */
    const size_t base = (c.workspace_bytes + 63) / 64 * 64, count = (size_t)(p->N * p->C);
    n->workspace_bytes = c.workspace_bytes;
    if (base >= c.workspace_bytes && count <= (SIZE_MAX - base) / sizeof(int64_t) &&
        qconv_depthwise_want_sums(c.params, base) == 0) {
        p->conv_sums = 1;
        p->sums_offset = base;
        n->workspace_bytes = base + count * sizeof(int64_t);
    }
    return 0;
}

/* Channels per work item of the channels-last global pool (its sums live on the stack). */
enum { COLS_BLOCK = 64 };

static int qpool_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_node_attr(n, FUSED_MARK) && strcmp(n->op_type, "QLinearGlobalAveragePool") == 0) {
        qpool_params *p = calloc(1, sizeof *p);
        if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        n->params = p;
        p->threads = nn_plan_threads();
        return fused_infer(g, n, p, err);
    }
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

typedef struct {
    const qpool_params *p;
    const oct_qpool *q;
    const uint8_t *x;
    uint8_t *y;
    const oct_misc_kernel_set *k;
} pool_job;

/* Global pool of one channels-first plane. */
static void pool_plane(void *arg, int64_t it, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const int64_t vol = j->p->in_vol;
    j->y[it] = pooled_byte(j->k->qsum(j->x + it * vol, j->p->s8, vol), vol, j->q);
}

/* Global pool of a block of COLS_BLOCK channels-last columns. */
static void pool_cols(void *arg, int64_t it, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const int64_t C = j->p->C, vol = j->p->in_vol, blocks = (C + COLS_BLOCK - 1) / COLS_BLOCK;
    const int64_t b = it / blocks, c0 = (it % blocks) * COLS_BLOCK;
    const int64_t nc = C - c0 < COLS_BLOCK ? C - c0 : COLS_BLOCK;
    int64_t sums[COLS_BLOCK] = {0};
    oct_ref_qcolsum(j->x + b * vol * C + c0, j->p->s8, vol, nc, C, sums);
    for (int64_t c = 0; c < nc; c++) j->y[b * C + c0 + c] = pooled_byte(sums[c], vol, j->q);
}

/* Windowed average pool of one channel. */
static void pool_window(void *arg, int64_t it, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const qpool_params *p = j->p;
    const int64_t C = p->C, vol = p->in_vol, b = it / C, c = it % C;
    if (p->channels_last)
        oct_ref_qavgpool(&p->geom, p->pad_end, p->count_include_pad, j->q, j->x + b * vol * C + c, C,
                         j->y + b * p->out_vol * C + c, C);
    else
        oct_ref_qavgpool(&p->geom, p->pad_end, p->count_include_pad, j->q, j->x + it * vol, 1, j->y + it * p->out_vol, 1);
}

static int qpool_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qpool_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    if (p->conv) {
        const oct_node c = qconv_view(n, p->conv_inputs, p->conv_params);
        if (p->conv->run(ctx, &c, err)) return -1;
    }
    const int q0 = p->conv ? p->conv_inputs : 1; /* the pool's X scale */
    const qops_qparams xq = qops_run_qparams(ctx, n, q0, q0 + 1), yq = qops_run_qparams(ctx, n, q0 + 2, q0 + 3);
    if (qops_check_scale_value(xq.scale, "x", err) || qops_check_scale_value(yq.scale, "y", err)) return -1;
    const octet_dtype t = p->s8 ? OCTET_INT8 : OCTET_UINT8;
    const oct_qpool q = {.scale = (double)xq.scale / (double)yq.scale, .x_zp = xq.zp, .y_zp = yq.zp,
                         .qmin = quant_min(t), .qmax = quant_max(t), .x_s8 = p->s8, .y_s8 = p->s8};
    /* the fused form pools the conv's output 0 into output 1 */
    const uint8_t *x = p->conv ? oct_out(ctx, n, 0)->data : oct_in(ctx, n, 0)->data;
    uint8_t *y = oct_out(ctx, n, p->conv ? 1 : 0)->data;
    const int th = nn_run_threads(ctx, p->threads);
    const int64_t C = p->C, vol = p->in_vol;
    if (p->conv_sums) {
        const int64_t *sums = (const int64_t *)(const void *)((const char *)ctx->workspace + p->sums_offset);
        for (int64_t it = 0; it < p->N * C; it++) y[it] = pooled_byte(sums[it], vol, &q);
    } else {
        pool_job j = {p, &q, x, y, oct_misc_kernels()};
        if (p->global && !p->channels_last) {
            const int64_t items = p->N * C;
            oct_parallel_for(ctx, items * vol > (1 << 15) ? th : 1, items, pool_plane, &j);
        } else if (p->global) {
            const int64_t blocks = (C + COLS_BLOCK - 1) / COLS_BLOCK;
            oct_parallel_for(ctx, p->N * C * vol > (1 << 15) ? th : 1, p->N * blocks, pool_cols, &j);
        } else {
            oct_parallel_for(ctx, th, p->N * C, pool_window, &j);
        }
    }
    return 0;
}

const oct_op oct_op_qlinear_global_average_pool = {"com.microsoft", "QLinearGlobalAveragePool", OCT_OP_TEAM, qpool_infer,
                                                   qpool_run, qpool_free};
const oct_op oct_op_qlinear_average_pool = {"com.microsoft", "QLinearAveragePool", OCT_OP_TEAM, qpool_infer, qpool_run,
                                            qpool_free};
