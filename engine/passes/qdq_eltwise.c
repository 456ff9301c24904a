/* QDQ lowering of element-wise and pooling ops, DQ inputs -> op -> Q:
     Add, Mul                       -> com.microsoft QLinearAdd, QLinearMul
     Concat (scales differ)         -> com.microsoft QLinearConcat (equal scales: qdq_movement.c)
     GlobalAveragePool, AveragePool -> com.microsoft QLinearGlobalAveragePool, QLinearAveragePool
     InstanceNormalization          -> octet QLinearInstanceNormalization
     Sigmoid, Tanh, HardSwish, HardSigmoid, LeakyRelu, Relu, Clip, and SiLU written as
     Mul(x, Sigmoid(x))             -> octet QLinearLut (a 256-entry table built at plan time)
     Mul(x, gate) where gate is an already lowered Sigmoid or HardSigmoid table of the same x
     (SiLU / HardSwish in QDQ form: DQ(x) -> Sigmoid -> Q -> DQ, times DQ(x))
                                    -> octet QLinearLut SiLU / HardSwish with the gate's
                                       quantization as two more inputs (one table, one pass)
   Every int8 op here takes one 8-bit type for its inputs and output and per-tensor parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qdq_common.h"

/* The zero points of x and y (created when absent); 0 or -1 on error. */
static int zps(oct_graph *g, qdq_param *x, qdq_param *y, int *xz, int *yz, octet_error *err) {
    *xz = qdq_zp_value(g, x, err);
    *yz = qdq_zp_value(g, y, err);
    return *xz < 0 || *yz < 0 ? -1 : 0;
}

/* Rewrites node pi into (domain, type) writing Q's output, and retires the Q. */
static int finish(oct_graph *g, int qi, int pi, const char *domain, const char *type, int n_in, const int *in,
                  int out, octet_error *err) {
    if (qdq_rewrite(g, pi, domain, type, n_in, in, out, err)) return -1;
    g->nodes[qi].dead = true;
    oct_graph_update_uses(g);
    return QDQ_LOWERED;
}

/* ---- unary functions as a lookup table -------------------------------------------------------- */

static const char *const LUT_FUNCTIONS[] = {"Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "LeakyRelu",
                                            "Relu", "Clip", NULL};

static bool is_lut_function(const oct_node *n) {
    for (int i = 0; LUT_FUNCTIONS[i]; i++)
        if (qdq_is(n, LUT_FUNCTIONS[i])) return true;
    return false;
}

/* Mul(x, Sigmoid(x)) with the Sigmoid read by this Mul only: returns the Sigmoid node, or -1. */
static int silu_sigmoid(const oct_graph *g, int mi) {
    const oct_node *m = &g->nodes[mi];
    if (!qdq_is(m, "Mul") || m->n_in != 2) return -1;
    for (int k = 0; k < 2; k++) {
        const int si = qdq_producer(g, m->in[k]);
        if (si < 0 || !qdq_is(&g->nodes[si], "Sigmoid")) continue;
        if (g->nodes[si].in[0] == m->in[1 - k] && qdq_only_reader(g, m->in[k], mi)) return si;
    }
    return -1;
}

/* A Clip's bounds as the attributes QLinearLut reads (min, max). 0: bounds not constant. */
static int clip_attrs(oct_graph *g, int ci, const char **why, octet_error *err) {
    float b[2] = {-INFINITY, INFINITY};
    const char *names[2] = {"min", "max"};
    for (int k = 0; k < 2; k++) {
        const oct_node *c = &g->nodes[ci];
        b[k] = oct_attr_float(c, names[k], b[k]);
        if (!oct_node_has_input(c, k + 1)) continue;
        const oct_value *v = &g->values[c->in[k + 1]];
        if (v->kind != OCT_VAL_CONST || !v->data || v->dtype != OCTET_FLOAT || oct_value_numel(v) != 1)
            return *why = "Clip bounds are not constant", 0;
        b[k] = *(const float *)v->data;
    }
    if (!(b[0] <= b[1])) return *why = "Clip min above max", 0;
    if (qdq_set_attr_float(g, ci, "min", b[0], err) || qdq_set_attr_float(g, ci, "max", b[1], err)) return -1;
    return 1;
}

static int lower_lut(oct_graph *g, int qi, int pi, const char **why, octet_error *err) {
    const int si = silu_sigmoid(g, pi);
    const oct_node *p = &g->nodes[pi];
    const char *fn = si >= 0 ? "SiLU" : p->op_type;
    const int xin = si >= 0 ? g->nodes[si].in[0] : p->in[0];
    if (!qdq_have_op("octet", "QLinearLut")) return *why = "no int8 kernel for this function", QDQ_KEPT;
    qdq_param x, y;
    if (!qdq_to_q(g, p->out[0], &y, why) || !qdq_from_dq(g, xin, true, &x, why)) return QDQ_KEPT;
    if (x.qtype != y.qtype) return *why = "input and output are of different 8-bit types", QDQ_KEPT;
    if (qdq_is(p, "Clip")) {
        const int r = clip_attrs(g, pi, why, err);
        if (r <= 0) return r;
    }
    int xz, yz;
    if (zps(g, &x, &y, &xz, &yz, err) || qdq_set_attr_string(g, pi, "function", fn, err)) return -1;
    if (si >= 0) g->nodes[si].dead = true;
    const int in[5] = {x.q, x.scale, xz, y.scale, yz};
    return finish(g, qi, pi, "octet", "QLinearLut", 5, in, y.q, err);
}

/* ---- Add, Mul --------------------------------------------------------------------------------- */

/* Value index vi holds one float equal to v (scale) or one integer equal to z (zero point). */
static bool const_float_is(const oct_graph *g, int vi, float v) {
    if (vi < 0) return false;
    const oct_value *c = &g->values[vi];
    return c->kind == OCT_VAL_CONST && c->data && c->dtype == OCTET_FLOAT && oct_value_numel(c) == 1 &&
           *(const float *)c->data == v;
}
static bool const_zp_is(const oct_graph *g, int vi, int32_t z) {
    if (vi < 0) return z == 0;
    const oct_value *c = &g->values[vi];
    if (c->kind != OCT_VAL_CONST || !c->data || oct_value_numel(c) != 1) return false;
    if (c->dtype == OCTET_UINT8) return *(const uint8_t *)c->data == z;
    if (c->dtype == OCTET_INT8) return *(const int8_t *)c->data == z;
    return false;
}

/* The lowered gate table behind Mul input b: an octet QLinearLut Sigmoid or HardSigmoid of the same
   8-bit tensor that input a dequantizes, with a's parameters, whose output only b's DQ reads (and
   only this Mul reads that). Returns the table's node, or -1. */
static int gate_table(const oct_graph *g, int mi, const qdq_param *a, const qdq_param *b) {
    const int li = qdq_producer(g, b->q);
    if (li < 0) return -1;
    const oct_node *l = &g->nodes[li];
    if (strcmp(l->op_type, "QLinearLut") != 0 || !l->domain || strcmp(l->domain, "octet") != 0 || l->n_in != 5)
        return -1;
    const char *fn = oct_attr_string(l, "function", "");
    if (strcmp(fn, "Sigmoid") != 0 && strcmp(fn, "HardSigmoid") != 0) return -1;
    if (l->in[0] != a->q || !const_float_is(g, l->in[1], qdq_scale_at(g, a, 0)) ||
        !const_zp_is(g, l->in[2], qdq_zp_at(g, a, 0)))
        return -1;
    if (!const_float_is(g, l->in[3], qdq_scale_at(g, b, 0)) || !const_zp_is(g, l->in[4], qdq_zp_at(g, b, 0)))
        return -1;
    if (!qdq_only_reader(g, b->q, b->node) || !qdq_only_reader(g, b->f, mi)) return -1;
    return li;
}

/* Mul(DQ(x), DQ(gate(x))) -> Q as one gated QLinearLut (see engine/ops/quant/qlinear_lut.c). */
static int lower_gated(oct_graph *g, int qi, int pi, int li, const qdq_param *x, qdq_param *y, octet_error *err) {
    const bool sigmoid = strcmp(oct_attr_string(&g->nodes[li], "function", ""), "Sigmoid") == 0;
    const float alpha = oct_attr_float(&g->nodes[li], "alpha", 0.2f), beta = oct_attr_float(&g->nodes[li], "beta", 0.5f);
    const int yz = qdq_zp_value(g, y, err);
    if (yz < 0) return -1;
    const oct_node *l = &g->nodes[li];
    const int in[7] = {x->q, l->in[1], l->in[2], y->scale, yz, l->in[3], l->in[4]};
    if (qdq_set_attr_string(g, pi, "function", sigmoid ? "SiLU" : "HardSwish", err)) return -1;
    if (!sigmoid && (qdq_set_attr_float(g, pi, "alpha", alpha, err) || qdq_set_attr_float(g, pi, "beta", beta, err)))
        return -1;
    if (qdq_note_fused(g, pi, sigmoid ? "Sigmoid" : "HardSigmoid", err)) return -1;
    const int gate_dq = qdq_producer(g, g->nodes[pi].in[0]) == x->node ? qdq_producer(g, g->nodes[pi].in[1])
                                                                          : qdq_producer(g, g->nodes[pi].in[0]);
    g->nodes[li].dead = true;
    if (gate_dq >= 0) g->nodes[gate_dq].dead = true;
    return finish(g, qi, pi, "octet", "QLinearLut", 7, in, y->q, err);
}

static int lower_binary(oct_graph *g, int qi, int pi, const char **why, octet_error *err) {
    const oct_node *p = &g->nodes[pi];
    const char *type = qdq_is(p, "Add") ? "QLinearAdd" : "QLinearMul";
    if (p->n_in != 2) return *why = "not two inputs", QDQ_KEPT;
    if (!qdq_have_op("com.microsoft", type)) return *why = "no int8 kernel for this op", QDQ_KEPT;
    qdq_param a, b, y;
    if (!qdq_to_q(g, p->out[0], &y, why) || !qdq_from_dq(g, p->in[0], true, &a, why) ||
        !qdq_from_dq(g, p->in[1], true, &b, why))
        return QDQ_KEPT;
    if (a.qtype != y.qtype || b.qtype != y.qtype) return *why = "inputs and output of different 8-bit types", QDQ_KEPT;
    if (qdq_is(p, "Mul") && qdq_have_op("octet", "QLinearLut")) {
        int li = gate_table(g, pi, &a, &b);
        if (li >= 0) return lower_gated(g, qi, pi, li, &a, &y, err);
        if ((li = gate_table(g, pi, &b, &a)) >= 0) return lower_gated(g, qi, pi, li, &b, &y, err);
    }
    int az, yz;
    if (zps(g, &a, &y, &az, &yz, err)) return -1;
    const int bz = qdq_zp_value(g, &b, err);
    if (bz < 0) return -1;
    const int in[8] = {a.q, a.scale, az, b.q, b.scale, bz, y.scale, yz};
    return finish(g, qi, pi, "com.microsoft", type, 8, in, y.q, err);
}

/* ---- Concat with differing scales ------------------------------------------------------------- */

static int lower_concat(oct_graph *g, int qi, int pi, const char **why, octet_error *err) {
    if (!qdq_have_op("com.microsoft", "QLinearConcat")) return *why = "no int8 kernel for this op", QDQ_KEPT;
    qdq_param y, x;
    if (!qdq_to_q(g, g->nodes[pi].out[0], &y, why)) return QDQ_KEPT;
    const int k = g->nodes[pi].n_in;
    for (int j = 0; j < k; j++) {
        if (!qdq_from_dq(g, g->nodes[pi].in[j], true, &x, why)) return QDQ_KEPT;
        if (x.qtype != y.qtype) return *why = "inputs and output of different 8-bit types", QDQ_KEPT;
    }
    int *in = malloc(((size_t)k * 3 + 2) * sizeof(int));
    if (!in) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory lowering '%s'", g->nodes[pi].name);
    int rc = -1;
    in[0] = y.scale;
    if ((in[1] = qdq_zp_value(g, &y, err)) < 0) goto done;
    for (int j = 0; j < k; j++) {
        qdq_from_dq(g, g->nodes[pi].in[j], true, &x, why);
        in[2 + 3 * j] = x.q;
        in[3 + 3 * j] = x.scale;
        if ((in[4 + 3 * j] = qdq_zp_value(g, &x, err)) < 0) goto done;
    }
    rc = finish(g, qi, pi, "com.microsoft", "QLinearConcat", 2 + 3 * k, in, y.q, err);
done:
    free(in);
    return rc;
}

/* ---- pools and InstanceNormalization ---------------------------------------------------------- */

static int lower_single(oct_graph *g, int qi, int pi, const char *domain, const char *type, const char **why,
                        octet_error *err) {
    const oct_node *p = &g->nodes[pi];
    if (!qdq_have_op(domain, type)) return *why = "no int8 kernel for this op", QDQ_KEPT;
    if (p->n_out != 1) return *why = "more than one output", QDQ_KEPT;
    qdq_param x, y;
    if (!qdq_to_q(g, p->out[0], &y, why) || !qdq_from_dq(g, p->in[0], true, &x, why)) return QDQ_KEPT;
    if (x.qtype != y.qtype) return *why = "input and output are of different 8-bit types", QDQ_KEPT;
    const bool norm = qdq_is(p, "InstanceNormalization");
    int xz, yz;
    if (zps(g, &x, &y, &xz, &yz, err)) return -1;
    if (!norm) {
        const int in[5] = {x.q, x.scale, xz, y.scale, yz};
        return finish(g, qi, pi, domain, type, 5, in, y.q, err);
    }
    /* x, x_scale, x_zp, scale, B, y_scale, y_zp: scale and B stay fp32 (constants, or DQ of
       constants that the planner folds after this pass). */
    const int in[7] = {x.q, x.scale, xz, p->in[1], p->in[2], y.scale, yz};
    return finish(g, qi, pi, domain, type, 7, in, y.q, err);
}

/* ---- InstanceNormalization -> activation -> Q ------------------------------------------------ */

/* The activation node ai (or SiLU's Mul, whose Sigmoid is *sig) as an epilogue. 0: not one. */
static int activation_epilogue(const oct_graph *g, int ai, oct_epilogue *e, int *sig) {
    const oct_node *a = &g->nodes[ai];
    *e = (oct_epilogue){.act = OCT_ACT_NONE, .residual = -1};
    *sig = silu_sigmoid(g, ai);
    if (*sig >= 0) e->act = OCT_ACT_SILU;
    else if (qdq_is(a, "Relu")) e->act = OCT_ACT_RELU;
    else if (qdq_is(a, "Sigmoid")) e->act = OCT_ACT_SIGMOID;
    else if (qdq_is(a, "Tanh")) e->act = OCT_ACT_TANH;
    else if (qdq_is(a, "HardSwish")) e->act = OCT_ACT_HARD_SWISH;
    else if (qdq_is(a, "LeakyRelu")) {
        e->act = OCT_ACT_LEAKY_RELU;
        e->alpha = oct_attr_float(a, "alpha", 0.01f);
    } else if (qdq_is(a, "HardSigmoid")) {
        e->act = OCT_ACT_HARD_SIGMOID;
        e->alpha = oct_attr_float(a, "alpha", 0.2f);
        e->beta = oct_attr_float(a, "beta", 0.5f);
    }
    return e->act != OCT_ACT_NONE;
}

/* The normalisation node before activation ai (read by it only), or -1. */
static int norm_before(const oct_graph *g, int ai) {
    int sig;
    oct_epilogue e;
    if (!activation_epilogue(g, ai, &e, &sig)) return -1;
    const int x = sig >= 0 ? g->nodes[sig].in[0] : g->nodes[ai].in[0];
    const int ni = qdq_producer(g, x);
    if (ni < 0 || !qdq_is(&g->nodes[ni], "InstanceNormalization")) return -1;
    int who[3];
    const int readers = qdq_consumers(g, x, who, 3);
    if (g->values[x].is_output || readers != (sig >= 0 ? 2 : 1)) return -1;
    return ni;
}

static int lower_norm_act(oct_graph *g, int qi, int ai, int ni, const char **why, int *blame, octet_error *err) {
    *blame = ni;
    if (!qdq_have_op("octet", "QLinearInstanceNormalization")) return *why = "no int8 kernel for this op", QDQ_KEPT;
    int sig;
    oct_epilogue e;
    activation_epilogue(g, ai, &e, &sig);
    const oct_node *n = &g->nodes[ni];
    qdq_param x, y;
    if (!qdq_to_q(g, g->nodes[ai].out[0], &y, why) || !qdq_from_dq(g, n->in[0], true, &x, why)) return QDQ_KEPT;
    if (x.qtype != y.qtype) return *why = "input and output are of different 8-bit types", QDQ_KEPT;
    int xz, yz;
    if (zps(g, &x, &y, &xz, &yz, err)) return -1;
    const int in[7] = {x.q, x.scale, xz, n->in[1], n->in[2], y.scale, yz};
    if (qdq_note_fused(g, ni, sig >= 0 ? "SiLU" : g->nodes[ai].op_type, err)) return -1;
    g->nodes[ni].epi = e;
    g->nodes[ai].dead = true;
    if (sig >= 0) g->nodes[sig].dead = true;
    return finish(g, qi, ni, "octet", "QLinearInstanceNormalization", 7, in, y.q, err);
}

int qdq_lower_eltwise(oct_graph *g, int qi, int pi, const char **why, int *blame, octet_error *err) {
    *blame = pi;
    const oct_node *p = &g->nodes[pi];
    const int ni = norm_before(g, pi);
    if (ni >= 0) return lower_norm_act(g, qi, pi, ni, why, blame, err);
    if (is_lut_function(p) || silu_sigmoid(g, pi) >= 0) return lower_lut(g, qi, pi, why, err);
    if (qdq_is(p, "Add") || qdq_is(p, "Mul")) return lower_binary(g, qi, pi, why, err);
    if (qdq_is(p, "Concat")) return lower_concat(g, qi, pi, why, err);
    if (qdq_is(p, "GlobalAveragePool"))
        return lower_single(g, qi, pi, "com.microsoft", "QLinearGlobalAveragePool", why, err);
    if (qdq_is(p, "AveragePool")) return lower_single(g, qi, pi, "com.microsoft", "QLinearAveragePool", why, err);
    if (qdq_is(p, "InstanceNormalization"))
        return lower_single(g, qi, pi, "octet", "QLinearInstanceNormalization", why, err);
    *why = "no int8 form for this op";
    return QDQ_KEPT;
}
