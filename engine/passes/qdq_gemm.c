/* QDQ lowering of the GEMM-shaped ops:
       DQ(x) -> Conv(DQ(w), [DQ(bias) | fp32 bias]) -> [Relu | Clip] -> Q
   becomes one QLinearConv (ConvTranspose: octet.QLinearConvTranspose, MatMul: QLinearMatMul,
   Gemm: com.microsoft.QGemm). Weights stay the constant int8 tensor the DQ read, with its
   per-tensor or per-output-channel scales. The bias is requantized to int32 at s_x * s_w[c] (the
   scale ONNX Runtime's quantizer gives it, so an int32 bias written at that scale is kept exactly).
   Relu/Clip become the output clamp: quantization is monotonic, so Q(clip(v, lo, hi)) =
   clamp(Q(v), Q(lo), Q(hi)); when that clamp is the type's whole range the op need not know. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qdq_common.h"

typedef enum { K_CONV, K_CONVT, K_MATMUL, K_GEMM } gemm_kind;

bool qdq_is_gemm_like(const oct_node *n) {
    return n->n_out == 1 && (qdq_is(n, "Conv") || qdq_is(n, "ConvTranspose") || qdq_is(n, "MatMul") || qdq_is(n, "Gemm"));
}

/* The int8 op each kind lowers into and whether that op narrows its clamp by n->epi (Relu/Clip). */
static const struct {
    const char *domain, *type;
    bool applies_clamp;
} TARGET[] = {
    [K_CONV] = {"", "QLinearConv", true},
    [K_CONVT] = {"octet", "QLinearConvTranspose", true},
    [K_MATMUL] = {"", "QLinearMatMul", true},
    [K_GEMM] = {"com.microsoft", "QGemm", true},
};

static bool is_const(const oct_graph *g, int v) {
    return v >= 0 && g->values[v].kind == OCT_VAL_CONST && g->values[v].data;
}

/* A Clip bound from its constant input (opset >= 11) or attribute (older). 0: not constant. */
static int clip_bound(const oct_graph *g, const oct_node *c, int slot, const char *attr, float dflt, float *out) {
    *out = oct_attr_float(c, attr, dflt);
    if (!oct_node_has_input(c, slot)) return 1;
    const oct_value *v = &g->values[c->in[slot]];
    if (!is_const(g, c->in[slot]) || v->dtype != OCTET_FLOAT || oct_value_numel(v) != 1) return 0;
    *out = *(const float *)v->data;
    return 1;
}

/* What the matcher found, before anything is rewritten. */
typedef struct {
    gemm_kind kind;
    int ci, ai;           /* the op and its activation (-1) */
    qdq_param x, w, y;
    int64_t M;            /* output channels (Conv) or columns (MatMul, Gemm) */
    int bias_slot;        /* the op's bias input slot, -1 if none */
    oct_act_kind act;
    float lo, hi;
    bool clamp_trivial;   /* the activation's clamp is the output type's whole range */
} gemm_match;

static int match_shapes(const oct_graph *g, gemm_match *m, const char **why) {
    const oct_node *c = &g->nodes[m->ci];
    const oct_value *w = &g->values[m->w.q];
    int waxis = 0;
    m->bias_slot = -1;
    switch (m->kind) {
    case K_CONV:
        if (w->rank < 3) return *why = "weight rank below 3", 0;
        m->M = w->dims[0];
        m->bias_slot = 2;
        break;
    case K_CONVT: {
        const int64_t group = oct_attr_int(c, "group", 1);
        if (w->rank < 3 || group < 1) return *why = "weight rank below 3", 0;
        m->M = w->dims[1] * group;
        waxis = 1;
        m->bias_slot = 2;
        /* Per-channel scales of axis 1 repeat for every group (QLinearConvTranspose takes M/group). */
        if (m->w.count > 1 && m->w.axis == 1 && m->w.count == w->dims[1]) return 1;
        break;
    }
    case K_MATMUL:
        if (m->w.count > 1 && w->rank != 2) return *why = "per-column weights of a batched MatMul", 0;
        m->M = w->dims[w->rank - 1];
        waxis = w->rank - 1;
        break;
    case K_GEMM: {
        if (w->rank != 2) return *why = "Gemm weight is not 2-D", 0;
        if (oct_attr_float(c, "alpha", 1.f) != 1.f || oct_attr_float(c, "beta", 1.f) != 1.f)
            return *why = "Gemm alpha or beta other than 1", 0;
        const bool tb = oct_attr_int(c, "transB", 0) != 0;
        m->M = tb ? w->dims[0] : w->dims[1];
        waxis = tb ? 0 : 1;
        m->bias_slot = 2;
        break;
    }
    }
    if (m->w.count > 1 && (m->w.axis != waxis || m->w.count != m->M))
        return *why = "weight scales are per channel on an axis the int8 op does not take", 0;
    return 1;
}

static int match_activation(const oct_graph *g, gemm_match *m, const char **why) {
    const octet_dtype yt = m->y.qtype;
    m->act = OCT_ACT_NONE;
    m->clamp_trivial = true;
    if (m->ai < 0) return 1;
    const oct_node *a = &g->nodes[m->ai];
    if (qdq_is(a, "Relu")) {
        m->act = OCT_ACT_RELU;
        m->lo = 0.f;
        m->hi = INFINITY;
    } else {
        if (!clip_bound(g, a, 1, "min", -INFINITY, &m->lo) || !clip_bound(g, a, 2, "max", INFINITY, &m->hi))
            return *why = "Clip bounds are not constant", 0;
        if (!(m->lo <= m->hi)) return *why = "Clip min above max", 0;
        m->act = OCT_ACT_CLIP;
    }
    const float ys = qdq_scale_at(g, &m->y, 0);
    const int32_t yz = qdq_zp_at(g, &m->y, 0);
    m->clamp_trivial = qdq_quantize(m->lo, ys, yz, yt) <= qdq_type_min(yt) && qdq_quantize(m->hi, ys, yz, yt) >= qdq_type_max(yt);
    if (!m->clamp_trivial && !TARGET[m->kind].applies_clamp)
        return *why = "its activation cannot become the int8 op's clamp", 0;
    return 1;
}

static int match(const oct_graph *g, int qi, int pi, gemm_match *m, const char **why, int *blame) {
    memset(m, 0, sizeof *m);
    m->ai = -1;
    m->ci = pi;
    const oct_node *p = &g->nodes[pi];
    if (qdq_is(p, "Relu") || qdq_is(p, "Clip")) {
        m->ai = pi;
        m->ci = qdq_producer(g, p->in[0]);
    }
    *blame = m->ci;
    const oct_node *c = &g->nodes[m->ci];
    m->kind = qdq_is(c, "Conv") ? K_CONV : qdq_is(c, "ConvTranspose") ? K_CONVT : qdq_is(c, "MatMul") ? K_MATMUL : K_GEMM;
    if (!qdq_have_op(TARGET[m->kind].domain, TARGET[m->kind].type))
        return *why = "no int8 kernel for this op", 0;
    if (!qdq_to_q(g, g->nodes[m->ai >= 0 ? m->ai : m->ci].out[0], &m->y, why)) return 0;
    if (m->y.node != qi) return *why = "internal: QuantizeLinear mismatch", 0;
    if (m->ai >= 0 && !qdq_only_reader(g, c->out[0], m->ai)) return *why = "output also read in fp32", 0;
    if (!qdq_from_dq(g, c->in[0], true, &m->x, why)) return 0;
    if (!qdq_from_dq(g, c->in[1], false, &m->w, why)) {
        if (strcmp(*why, "input not from DequantizeLinear") == 0) *why = "weights not from DequantizeLinear";
        return 0;
    }
    if (m->w.qtype != OCTET_UINT8 && m->w.qtype != OCTET_INT8) return *why = "weights are not 8-bit", 0;
    if (!is_const(g, m->w.q) && (m->kind != K_MATMUL || m->w.count != 1)) return *why = "weights not constant", 0;
    return match_shapes(g, m, why) && match_activation(g, m, why);
}

/* The op's bias as float per output channel: a constant fp32 tensor or DQ of a constant int32
   one, of M elements (a Gemm's may be one element, broadcast). 0 with *why otherwise. */
static int bias_float(const oct_graph *g, const gemm_match *m, double *b, const char **why) {
    const int bv = g->nodes[m->ci].in[m->bias_slot];
    const oct_value *v = &g->values[bv];
    const int64_t n = oct_value_numel(v);
    if (n != m->M && !(m->kind == K_GEMM && n == 1)) return *why = "bias is not one value per output channel", 0;
    if (v->dtype == OCTET_FLOAT && is_const(g, bv)) {
        for (int64_t c = 0; c < m->M; c++) b[c] = ((const float *)v->data)[n == 1 ? 0 : c];
        return 1;
    }
    qdq_param bq;
    if (!qdq_from_dq(g, bv, false, &bq, why) || !is_const(g, bq.q) || bq.qtype != OCTET_INT32)
        return *why = "bias is not constant", 0;
    const int32_t *bi = g->values[bq.q].data;
    for (int64_t c = 0; c < m->M; c++) {
        const int64_t j = n == 1 ? 0 : c;
        /* As DequantizeLinear computes it: (float)(b - zp) * scale. */
        b[c] = (float)(bi[j] - qdq_zp_at(g, &bq, j)) * qdq_scale_at(g, &bq, j);
    }
    return 1;
}

/* The int32 bias at scale s_x * s_w[c] as a new constant (value index), 0 with *why when it does
   not fit, -1 on error. */
static int quantize_bias(oct_graph *g, const gemm_match *m, int *out, const char **why, octet_error *err) {
    double *bf = malloc((size_t)m->M * sizeof(double));
    int32_t *bq = malloc((size_t)m->M * sizeof(int32_t));
    if (!bf || !bq) {
        free(bf);
        free(bq);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory quantizing the bias of '%s'", g->nodes[m->ci].name);
    }
    int ok = bias_float(g, m, bf, why);
    const float sx = qdq_scale_at(g, &m->x, 0);
    for (int64_t c = 0; ok && c < m->M; c++) {
        /* float32, as the requantization computes it; grouped ConvTranspose repeats its scales */
        const float sxw = sx * qdq_scale_at(g, &m->w, m->w.count > 1 ? c % m->w.count : 0);
        const double q = sxw > 0.f ? rint(bf[c] / sxw) : (bf[c] == 0.0 ? 0.0 : INFINITY);
        if (!(fabs(q) <= 2147483647.0)) {
            *why = "bias does not fit int32 at the input x weight scale";
            ok = 0;
        } else {
            bq[c] = (int32_t)q;
        }
    }
    free(bf);
    if (!ok) {
        free(bq);
        return 0;
    }
    const int64_t dims[1] = {m->M};
    *out = qdq_add_const(g, g->nodes[m->ci].name, "/bias_int32", OCTET_INT32, 1, dims, bq, err);
    return *out < 0 ? -1 : 1;
}

int qdq_lower_gemm(oct_graph *g, int qi, int pi, const char **why, int *blame, octet_error *err) {
    gemm_match m;
    if (!match(g, qi, pi, &m, why, blame)) return QDQ_KEPT;
    int bias = -1;
    if (m.bias_slot >= 0 && oct_node_has_input(&g->nodes[m.ci], m.bias_slot)) {
        const int r = quantize_bias(g, &m, &bias, why, err);
        if (r <= 0) return r;
    }
    const int xz = qdq_zp_value(g, &m.x, err), wz = qdq_zp_value(g, &m.w, err), yz = qdq_zp_value(g, &m.y, err);
    if (xz < 0 || wz < 0 || yz < 0) return -1;
    int in[9] = {m.x.q, m.x.scale, xz, m.w.q, m.w.scale, wz, m.y.scale, yz, bias};
    int n_in = bias >= 0 ? 9 : 8;
    if (m.kind == K_GEMM) { /* QGemm: A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp */
        in[6] = bias;
        in[7] = m.y.scale;
        in[8] = yz;
        n_in = 9;
    }
    if (qdq_rewrite(g, m.ci, TARGET[m.kind].domain, TARGET[m.kind].type, n_in, in, m.y.q, err)) return -1;
    oct_node *c = &g->nodes[m.ci];
    if (m.ai >= 0) {
        if (!m.clamp_trivial) {
            c->epi.act = m.act;
            c->epi.alpha = m.act == OCT_ACT_CLIP ? m.lo : 0.f;
            c->epi.beta = m.act == OCT_ACT_CLIP ? m.hi : 0.f;
        }
        if (qdq_note_fused(g, m.ci, g->nodes[m.ai].op_type, err)) return -1;
        g->nodes[m.ai].dead = true;
    }
    g->nodes[qi].dead = true;
    oct_graph_update_uses(g);
    return QDQ_LOWERED;
}
