/* octet.QLinearInstanceNormalization: Y = Q(InstanceNormalization(DQ(x), scale, B)), epsilon as
   InstanceNormalization. Inputs: x, x_scale, [x_zero_point], scale (float [C]), B (float [C]),
   y_scale, y_zero_point; x per tensor, uint8 or int8; the output has y_zero_point's type. Any
   fused activation of the epilogue (Relu, Clip, LeakyRelu, Sigmoid, SiLU, HardSwish, HardSigmoid,
   Tanh) is applied before the quantization.

   Per (n, c) the statistics are exact integer sums of the 8-bit values (mean and variance then
   in double). Normalisation is affine in the input, and an input channel holds at most 256
   distinct values, so the channel's normalise-activate-quantize map is a 256-entry table built
   in double (exact with respect to the float reference) and applied with one byte lookup per
   element: no float copy of the volume, not even a tile. */
#include <math.h>
#include <stdlib.h>

#include "../nn/nn_common.h"
#include "qops_common.h"

enum { S_X = 0, S_XS, S_XZ, S_SCALE, S_B, S_YS, S_YZ };

typedef struct {
    int64_t N, C, vol;
    int x_s8, y_s8;
    float eps;
    int threads;
} qin_params;

static int qin_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (qops_check_inputs(n, 7, 7, 0x7bu, err)) return -1;
    if (quant_require_dtype(g, n, S_X, "input x", OCTET_UINT8, OCTET_INT8, err)) return -1;
    const oct_value *x = oct_in_val(g, n, S_X), *yz = oct_in_val(g, n, S_YZ);
    if (!quant_is_8bit(yz->dtype))
        return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", yz->name,
                        octet_dtype_name(yz->dtype));
    if (qops_check_qparams(g, n, S_XS, S_XZ, x->dtype, "x", err) || qops_check_qparams(g, n, S_YS, S_YZ, yz->dtype, "y", err))
        return -1;
    if (x->rank < 3)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has rank %d; instance normalization needs (N, C, D1, ...)",
                        x->name, x->rank);
    const int64_t C = x->dims[1];
    for (int i = S_SCALE; i <= S_B; i++) {
        if (nn_require_float(g, n, i, i == S_SCALE ? "scale" : "B", err)) return -1;
        const oct_value *v = oct_in_val(g, n, i);
        if (v->rank != 1 || v->dims[0] != C)
            return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' must have shape [%lld]", i == S_SCALE ? "scale" : "B", v->name,
                            (long long)C);
    }
    if (n->epi.residual >= 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "QLinearInstanceNormalization cannot apply a fused residual");
    qin_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->N = x->dims[0];
    p->C = C;
    p->vol = 1;
    for (int d = 2; d < x->rank; d++) p->vol *= x->dims[d];
    p->x_s8 = x->dtype == OCTET_INT8;
    p->y_s8 = yz->dtype == OCTET_INT8;
    p->eps = oct_attr_float(n, "epsilon", 1e-5f);
    if (!(p->eps >= 0.f)) return oct_fail(err, OCTET_ERR_FORMAT, "epsilon is %g; it must be >= 0", (double)p->eps);
    p->threads = nn_plan_threads();
    oct_set_output(g, n, 0, yz->dtype, x->rank, x->dims);
    n->workspace_bytes = 0;
    return 0;
}

/* The epilogue's activation in double (the kinds of oct_act_kind). */
static double qin_act(const oct_epilogue *e, double v) {
    switch (e->act) {
    case OCT_ACT_RELU: return v > 0.0 ? v : 0.0;
    case OCT_ACT_CLIP: return v < e->alpha ? e->alpha : (v > e->beta ? e->beta : v);
    case OCT_ACT_LEAKY_RELU: return v < 0.0 ? e->alpha * v : v;
    case OCT_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case OCT_ACT_SILU: return v / (1.0 + exp(-v));
    case OCT_ACT_HARD_SWISH: {
        const double t = v / 6.0 + 0.5;
        return v * (t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t));
    }
    case OCT_ACT_HARD_SIGMOID: {
        const double t = e->alpha * v + e->beta;
        return t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    }
    case OCT_ACT_TANH: return tanh(v);
    default: return v;
    }
}

static int qin_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qin_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "QLinearInstanceNormalization run before infer");
    const qops_qparams xq = qops_run_qparams(ctx, n, S_XS, S_XZ), yq = qops_run_qparams(ctx, n, S_YS, S_YZ);
    if (qops_check_scale_value(xq.scale, "x", err) || qops_check_scale_value(yq.scale, "y", err)) return -1;
    const float *gamma = oct_in(ctx, n, S_SCALE)->data, *beta = oct_in(ctx, n, S_B)->data;
    const uint8_t *x = oct_in(ctx, n, S_X)->data;
    uint8_t *y = oct_out(ctx, n, 0)->data;
    const octet_dtype yt = p->y_s8 ? OCTET_INT8 : OCTET_UINT8;
    const int32_t qmin = quant_min(yt), qmax = quant_max(yt);
    const int64_t items = p->N * p->C, vol = p->vol;
    const oct_epilogue epi = n->epi;
    const int t = nn_run_threads(ctx, p->threads);
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && items > 1 && items * vol > (1 << 15))
    for (int64_t it = 0; it < items; it++) {
        const int64_t c = it % p->C;
        const uint8_t *xc = x + it * vol;
        int64_t s1 = 0, s2 = 0;
        oct_ref_qsum(xc, p->x_s8, vol, &s1, &s2);
        /* Statistics of the integer values, then of the dequantized ones. */
        const double mq = vol > 0 ? (double)s1 / (double)vol : 0.0;
        double vq = vol > 0 ? (double)s2 / (double)vol - mq * mq : 0.0;
        if (vq < 0.0) vq = 0.0;
        const double sx = xq.scale, mean = (mq - xq.zp) * sx, var = vq * sx * sx;
        const double inv = 1.0 / sqrt(var + (double)p->eps);
        const double gc = gamma[c], bc = beta[c];
        uint8_t table[256];
        for (int b = 0; b < 256; b++) {
            const double xr = (double)(oct_q8_value((uint8_t)b, p->x_s8) - xq.zp) * sx;
            const double v = qin_act(&epi, (xr - mean) * inv * gc + bc) / (double)yq.scale;
            const int32_t q = oct_q8_round(v, yq.zp, qmin, qmax);
            table[b] = p->y_s8 ? (uint8_t)(int8_t)q : (uint8_t)q;
        }
        oct_ref_qlut(xc, vol, table, y + it * vol);
    }
    return 0;
}

const oct_op oct_op_qlinear_instance_norm = {"octet", "QLinearInstanceNormalization", 0, qin_infer, qin_run, NULL};
