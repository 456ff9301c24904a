/* Table-driven int8 activations: com.microsoft QLinearSigmoid and QLinearLeakyRelu, and the
   octet-domain QLinearLut (the QDQ pass lowers DequantizeLinear -> activation -> QuantizeLinear
   into it). Inputs: x, x_scale, [x_zero_point], y_scale, [y_zero_point]; the output has x's type.

   With per-tensor parameters an 8-bit input has 256 possible values, so the whole op is a lookup
   table built at plan time from the float function (dequantize, f in double, quantize with ties to
   even): exact with respect to the QDQ reference, whatever f is. The scales and zero points must
   therefore be constants. QLinearLut's `function` is one of Sigmoid, SiLU, HardSwish, Tanh,
   LeakyRelu (alpha, default 0.01), Relu, Clip (min, max; default unbounded) and HardSigmoid
   (alpha 0.2, beta 0.5 by default).

   Gated form (QLinearLut only): with two more inputs, gate_scale and [gate_zero_point], the op is
   x times a quantized gate, y = Q_y(DQ_x(x) * DQ_g(Q_g(gate(DQ_x(x))))), which is what a QDQ model
   writes for SiLU (function "SiLU": gate Sigmoid) and HardSwish (function "HardSwish": gate
   HardSigmoid with alpha, beta; 1/6 and 1/2 by default). The QDQ lowering fuses the int8 Sigmoid
   table and the QLinearMul after it into this form; the table applies the gate's table and then
   QLinearMul's own arithmetic (oct_ref_qbinary), so it is bit-identical to the two-op chain. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/nn_common.h"
#include "misc_kernels.h"
#include "qops_common.h"
#include "team.h"

typedef struct {
    uint8_t table[256];
    int threads;
} qlut_params;

typedef struct {
    double alpha, beta;
} lut_args;

static double f_sigmoid(double x, const void *c) {
    (void)c;
    return 1.0 / (1.0 + exp(-x));
}
static double f_silu(double x, const void *c) {
    (void)c;
    return x / (1.0 + exp(-x));
}
static double f_hardswish(double x, const void *c) {
    (void)c;
    double t = x / 6.0 + 0.5;
    t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    return x * t;
}
static double f_tanh(double x, const void *c) {
    (void)c;
    return tanh(x);
}
static double f_leaky(double x, const void *c) {
    const lut_args *a = c;
    return x < 0.0 ? a->alpha * x : x;
}
static double f_relu(double x, const void *c) {
    (void)c;
    return x > 0.0 ? x : 0.0;
}
static double f_clip(double x, const void *c) {
    const lut_args *a = c;
    return x < a->alpha ? a->alpha : (x > a->beta ? a->beta : x);
}
static double f_hardsigmoid(double x, const void *c) {
    const lut_args *a = c;
    const double t = a->alpha * x + a->beta;
    return t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
}

/* The function an op computes, with its arguments from the attributes. */
static int lut_function(const oct_node *n, qops_fn *f, lut_args *a, octet_error *err) {
    a->alpha = a->beta = 0.0;
    if (strcmp(n->op_type, "QLinearSigmoid") == 0) {
        *f = f_sigmoid;
        return 0;
    }
    if (strcmp(n->op_type, "QLinearLeakyRelu") == 0) {
        *f = f_leaky;
        a->alpha = oct_attr_float(n, "alpha", 0.01f);
        return 0;
    }
    const char *fn = oct_attr_string(n, "function", NULL);
    if (!fn) return oct_fail(err, OCTET_ERR_FORMAT, "QLinearLut needs the attribute 'function'");
    if (strcmp(fn, "Sigmoid") == 0) *f = f_sigmoid;
    else if (strcmp(fn, "SiLU") == 0) *f = f_silu;
    else if (strcmp(fn, "HardSwish") == 0) *f = f_hardswish;
    else if (strcmp(fn, "Tanh") == 0) *f = f_tanh;
    else if (strcmp(fn, "Relu") == 0) *f = f_relu;
    else if (strcmp(fn, "LeakyRelu") == 0) {
        *f = f_leaky;
        a->alpha = oct_attr_float(n, "alpha", 0.01f);
    } else if (strcmp(fn, "HardSigmoid") == 0) {
        *f = f_hardsigmoid;
        a->alpha = oct_attr_float(n, "alpha", 0.2f);
        a->beta = oct_attr_float(n, "beta", 0.5f);
    } else if (strcmp(fn, "Clip") == 0) {
        *f = f_clip;
        a->alpha = oct_attr_float(n, "min", -INFINITY);
        a->beta = oct_attr_float(n, "max", INFINITY);
        if (isnan(a->alpha) || isnan(a->beta) || a->alpha > a->beta)
            return oct_fail(err, OCTET_ERR_FORMAT, "QLinearLut Clip has min %g and max %g", a->alpha, a->beta);
    } else {
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "QLinearLut function '%s' is not one of Sigmoid, SiLU, HardSwish, Tanh, LeakyRelu, Relu, "
                        "Clip, HardSigmoid",
                        fn);
    }
    return 0;
}

/* The gate of the gated form, from `function`. */
static int gate_function(const oct_node *n, qops_fn *f, lut_args *a, octet_error *err) {
    const char *fn = oct_attr_string(n, "function", "");
    a->alpha = a->beta = 0.0;
    if (strcmp(fn, "SiLU") == 0) {
        *f = f_sigmoid;
    } else if (strcmp(fn, "HardSwish") == 0) {
        *f = f_hardsigmoid;
        a->alpha = oct_attr_float(n, "alpha", 1.f / 6.f);
        a->beta = oct_attr_float(n, "beta", 0.5f);
    } else {
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "QLinearLut with a gate (7 inputs) computes SiLU or HardSwish, not '%s'", fn);
    }
    return 0;
}

/* table[b] = QLinearMul(b, gate_table[b]): the gate quantized to (g.scale, g.zp) by the float
   function, then multiplied by x with the arithmetic QLinearMul runs. */
static int gated_table(int s8, qops_qparams x, qops_qparams gq, qops_qparams y, qops_fn gate, const lut_args *a,
                       uint8_t table[256], octet_error *err) {
    const octet_dtype t = s8 ? OCTET_INT8 : OCTET_UINT8;
    uint8_t codes[256], gates[256];
    qops_build_table(s8, x, s8, gq, quant_min(t), quant_max(t), gate, a, gates);
    for (int b = 0; b < 256; b++) codes[b] = (uint8_t)b;
    const oct_qbinary q = {.kind = OCT_QBIN_MUL, .is_s8 = s8, .ma = x.scale * gq.scale / y.scale, .mb = 0.f,
                           .a_zp = x.zp, .b_zp = gq.zp, .y_zp = y.zp, .qmin = quant_min(t), .qmax = quant_max(t)};
    if (!isfinite(q.ma))
        return oct_fail(err, OCTET_ERR_FORMAT, "QLinearLut gate multiplier is not finite (scales %g, %g, output %g)",
                        (double)x.scale, (double)gq.scale, (double)y.scale);
    const int64_t dims[1] = {256};
    const int ranks[2] = {1, 1};
    const int64_t *const in_dims[2] = {dims, dims};
    oct_bcast bc;
    if (oct_bcast_plan(&bc, 1, dims, 2, ranks, in_dims) < 0)
        return oct_fail(err, OCTET_ERR_INTERNAL, "QLinearLut: no broadcast plan for the gate table");
    oct_ref_qbinary(&q, &bc, codes, gates, table, 0, 256);
    return 0;
}

int qops_lut_table(oct_graph *g, const oct_node *n, uint8_t table[256], octet_error *err) {
    const int lut = strcmp(n->op_type, "QLinearLut") == 0;
    if (qops_check_inputs(n, 4, lut ? 7 : 5, lut && n->n_in > 5 ? 0x2bu : 0xbu, err)) return -1;
    if (quant_require_dtype(g, n, 0, "input X", OCTET_UINT8, OCTET_INT8, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (qops_check_qparams(g, n, 1, 2, x->dtype, "X", err) || qops_check_qparams(g, n, 3, 4, x->dtype, "Y", err))
        return -1;
    if (n->n_in > 5 && qops_check_qparams(g, n, 5, 6, x->dtype, "gate", err)) return -1;
    const int gated = n->n_in > 5;
    qops_fn f;
    lut_args a;
    if (gated ? gate_function(n, &f, &a, err) : lut_function(n, &f, &a, err)) return -1;
    qops_qparams xq, yq;
    if (qops_const_qparams(g, n, 1, 2, "X", &xq, err) || qops_const_qparams(g, n, 3, 4, "Y", &yq, err)) return -1;
    const int s8 = x->dtype == OCTET_INT8;
    if (gated) {
        qops_qparams gq;
        if (qops_const_qparams(g, n, 5, 6, "gate", &gq, err)) return -1;
        return gated_table(s8, xq, gq, yq, f, &a, table, err);
    }
    qops_build_table(s8, xq, s8, yq, quant_min(x->dtype), quant_max(x->dtype), f, &a, table);
    return 0;
}

static int qlut_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    qlut_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    if (qops_lut_table(g, n, p->table, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    oct_set_output(g, n, 0, x->dtype, x->rank, x->dims);
    p->threads = nn_plan_threads();
    n->workspace_bytes = 0;
    return 0;
}

/* Below this many bytes per thread, threads cost more than they save. */
enum { LUT_MIN_PER_THREAD = 1 << 15 };

typedef struct {
    const oct_misc_kernel_set *k;
    const uint8_t *x;
    uint8_t *y;
    const uint8_t *table;
    int64_t total, pieces;
} qlut_job;

static void qlut_piece(void *arg, int64_t i, int tid) {
    (void)tid;
    const qlut_job *j = arg;
    int64_t b, e;
    qops_split(j->total, j->pieces, i, &b, &e);
    j->k->qlut(j->x + b, e - b, j->table, j->y + b);
}

static int qlut_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qlut_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    const oct_tensor *xt = oct_in(ctx, n, 0);
    const uint8_t *x = xt->data;
    uint8_t *y = oct_out(ctx, n, 0)->data;
    int64_t total = 1;
    for (int d = 0; d < xt->rank; d++) total *= xt->dims[d];
    int64_t pieces = total / LUT_MIN_PER_THREAD;
    const int t = nn_run_threads(ctx, p->threads);
    if (pieces > t) pieces = t;
    if (pieces < 1) pieces = 1;
    qlut_job j = {oct_misc_kernels(), x, y, p->table, total, pieces};
    oct_parallel_for(ctx, t, pieces, qlut_piece, &j);
    return 0;
}

const oct_op oct_op_qlinear_sigmoid = {"com.microsoft", "QLinearSigmoid", OCT_OP_TEAM, qlut_infer, qlut_run, NULL};
const oct_op oct_op_qlinear_leaky_relu = {"com.microsoft", "QLinearLeakyRelu", OCT_OP_TEAM, qlut_infer, qlut_run, NULL};
const oct_op oct_op_qlinear_lut = {"octet", "QLinearLut", OCT_OP_TEAM, qlut_infer, qlut_run, NULL};
