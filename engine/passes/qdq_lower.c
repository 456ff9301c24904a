/* The QDQ lowering pass. A QDQ model (ONNX Runtime's quantizer, TensorRT Model Optimizer) keeps
   float ops and brackets them with DequantizeLinear (DQ) on the inputs and QuantizeLinear (Q) on
   the output. Every live Q is a candidate end of a pattern; the node producing its input decides
   which matcher tries it:
     DQ or data movement           -> qdq_movement.c (the op runs on the 8-bit data)
     Conv/ConvTranspose/MatMul/Gemm, optionally followed by Relu/Clip -> qdq_gemm.c
     element-wise, pooling, normalisation, activations                 -> qdq_eltwise.c
   A matched pattern becomes one int8 node that takes over the Q's output value; the float op, its
   activation and the Q die, and DQs nobody reads any more are removed by the planner. What is not
   matched stays fp32, and the node says why (why_fp32, shown by `octet inspect`).
   Before matching, DQs that read the same tensor with the same parameters are merged, so that a
   Q->DQ step feeding several fp32 ops dequantizes once. */
#include <stdlib.h>
#include <string.h>

#include "qdq_common.h"

bool oct_pass_qdq_enabled(void) {
    const char *e = getenv("OCTET_NO_QDQ_LOWERING");
    return !e || !*e || strcmp(e, "0") == 0;
}

static bool is_qdq_node(const oct_node *n) {
    return qdq_is(n, "QuantizeLinear") || qdq_is(n, "DequantizeLinear");
}

static bool same_attr_int(const oct_node *a, const oct_node *b, const char *name, int64_t dflt) {
    return oct_attr_int(a, name, dflt) == oct_attr_int(b, name, dflt);
}

/* Merges DQ nodes with identical inputs and axis; returns how many were merged. */
static int share_dequantize(oct_graph *g) {
    int merged = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *a = &g->nodes[i];
        if (!qdq_is(a, "DequantizeLinear")) continue;
        for (int j = i + 1; j < g->n_nodes; j++) {
            oct_node *b = &g->nodes[j];
            if (!qdq_is(b, "DequantizeLinear") || b->n_in != a->n_in || g->values[b->out[0]].is_output) continue;
            bool same = same_attr_int(a, b, "axis", 1) && same_attr_int(a, b, "block_size", 0);
            for (int k = 0; k < a->n_in && same; k++) same = a->in[k] == b->in[k];
            if (!same) continue;
            const int from = b->out[0], to = a->out[0];
            for (int m = 0; m < g->n_nodes; m++) {
                oct_node *n = &g->nodes[m];
                if (n->dead) continue;
                for (int k = 0; k < n->n_in; k++)
                    if (n->in[k] == from) n->in[k] = to;
                if (n->epi.residual == from) n->epi.residual = to;
            }
            b->dead = true;
            merged++;
        }
    }
    if (merged) oct_graph_update_uses(g);
    return merged;
}

/* An activation whose input comes from a GEMM-shaped op (Conv -> Sigmoid -> Q): -1 if not. */
static int activation_after_gemm(const oct_graph *g, const oct_node *p) {
    if (p->n_in < 1 || qdq_is(p, "Relu") || qdq_is(p, "Clip")) return -1;
    static const char *const ACTS[] = {"Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "LeakyRelu", "Mul", NULL};
    bool act = false;
    for (int i = 0; ACTS[i]; i++) act = act || qdq_is(p, ACTS[i]);
    if (!act) return -1;
    for (int k = 0; k < p->n_in; k++) {
        const int c = qdq_producer(g, p->in[k]);
        if (c >= 0 && qdq_is_gemm_like(&g->nodes[c])) return c;
        /* SiLU: Mul(y, Sigmoid(y)) */
        if (c >= 0 && qdq_is(&g->nodes[c], "Sigmoid")) {
            const int cc = qdq_producer(g, g->nodes[c].in[0]);
            if (cc >= 0 && qdq_is_gemm_like(&g->nodes[cc])) return cc;
        }
    }
    return -1;
}

/* Tries the pattern ending at Q node qi. */
static int lower_at(oct_graph *g, int qi, octet_error *err) {
    const int pi = qdq_producer(g, g->nodes[qi].in[0]);
    if (pi < 0) return QDQ_KEPT; /* quantizes a graph input or a constant */
    const oct_node *p = &g->nodes[pi];
    const char *why = NULL;
    int blame = pi, r;
    const int before_act = qdq_is(p, "Relu") || qdq_is(p, "Clip") ? qdq_producer(g, p->in[0]) : -1;
    const int gemm_before = activation_after_gemm(g, p);
    if (qdq_is(p, "DequantizeLinear") || qdq_is_movement(p)) {
        r = qdq_lower_movement(g, qi, pi, &why, &blame, err);
        if (r == QDQ_KEPT && qdq_is(p, "Concat")) r = qdq_lower_eltwise(g, qi, pi, &why, &blame, err);
    } else if (qdq_is_gemm_like(p) || (before_act >= 0 && qdq_is_gemm_like(&g->nodes[before_act]))) {
        r = qdq_lower_gemm(g, qi, pi, &why, &blame, err);
    } else if (gemm_before >= 0) {
        /* The op's output has no scale of its own: lowering it would change the values. */
        g->nodes[gemm_before].why_fp32 = "an activation other than Relu/Clip sits between it and QuantizeLinear";
        r = qdq_lower_eltwise(g, qi, pi, &why, &blame, err);
    } else {
        r = qdq_lower_eltwise(g, qi, pi, &why, &blame, err);
    }
    if (r == QDQ_KEPT && blame >= 0 && why && !g->nodes[blame].dead) g->nodes[blame].why_fp32 = why;
    return r;
}

/* Gives every fp32 compute node that no matcher explained a reason. */
static void explain_rest(oct_graph *g, const char *all) {
    for (int i = 0; i < g->n_nodes; i++) {
        oct_node *n = &g->nodes[i];
        if (n->dead || is_qdq_node(n) || n->why_fp32 || strcmp(oct_node_precision(g, n), "fp32") != 0) continue;
        if (all) {
            n->why_fp32 = all;
            continue;
        }
        bool reads_dq = false, feeds_q = false;
        for (int k = 0; k < n->n_in; k++) {
            const int pr = qdq_producer(g, n->in[k]);
            reads_dq = reads_dq || (pr >= 0 && qdq_is(&g->nodes[pr], "DequantizeLinear"));
        }
        for (int k = 0; k < n->n_out && n->out[k] >= 0; k++) {
            int who[4];
            const int c = qdq_consumers(g, n->out[k], who, 4);
            for (int j = 0; j < c && j < 4; j++) feeds_q = feeds_q || qdq_is(&g->nodes[who[j]], "QuantizeLinear");
        }
        bool graph_output = false;
        for (int k = 0; k < n->n_out; k++) graph_output = graph_output || (n->out[k] >= 0 && g->values[n->out[k]].is_output);
        n->why_fp32 = graph_output && !feeds_q ? "output is a graph output in fp32"
                      : reads_dq && !feeds_q  ? "no QuantizeLinear after it"
                      : feeds_q && !reads_dq ? "input not from DequantizeLinear"
                      : reads_dq             ? "not lowered"
                                             : "outside the quantized part of the graph";
    }
}

int oct_pass_qdq_lower(oct_graph *g, octet_error *err) {
    oct_graph_update_uses(g);
    bool any = false;
    for (int i = 0; i < g->n_nodes && !any; i++) any = is_qdq_node(&g->nodes[i]);
    if (!any) return 0;
    if (!oct_pass_qdq_enabled()) {
        explain_rest(g, "QDQ lowering disabled (OCTET_NO_QDQ_LOWERING)");
        return 0;
    }
    int rewrites = share_dequantize(g);
    /* g->order is the topological order of the first sweep; the pass only rewrites nodes in place,
       so it stays valid, and producers are visited before their readers. */
    for (int k = 0; k < g->n_nodes; k++) {
        const int qi = g->order ? g->order[k] : k;
        if (!qdq_is(&g->nodes[qi], "QuantizeLinear")) continue;
        const int r = lower_at(g, qi, err);
        if (r < 0) return -1;
        rewrites += r;
    }
    explain_rest(g, NULL);
    return rewrites;
}
