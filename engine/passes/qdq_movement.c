/* QDQ lowering of data movement: DQ(a) -> op -> Q with the same scale, zero point and type on
   both sides runs op on a itself, because moving, selecting or taking the maximum of values
   commutes with the (monotonic) quantization and Q(DQ(a)) = a. The ops listed take uint8/int8
   data as they are. Pad's constant becomes Q(constant), which is what the reference pads with
   once its output is quantized. DQ(a) -> Q with equal parameters is a itself. */
#include <stdlib.h>
#include <string.h>

#include "qdq_common.h"

static const char *const MOVEMENT[] = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "MaxPool",
                                       "Slice", "Gather", "Pad", "Resize", "Identity", "Concat", "Expand",
                                       "Tile", NULL};

bool qdq_is_movement(const oct_node *n) {
    for (int i = 0; MOVEMENT[i]; i++)
        if (qdq_is(n, MOVEMENT[i])) return true;
    return false;
}

/* Makes every reader of value `from` read `to` instead. */
static void redirect(oct_graph *g, int from, int to) {
    for (int i = 0; i < g->n_nodes; i++) {
        oct_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] == from) n->in[j] = to;
        if (n->epi.residual == from) n->epi.residual = to;
    }
}

/* DQ(a) -> Q: the Q's readers read a when the parameters agree. */
static int lower_dq_q(oct_graph *g, int qi, int di, const char **why) {
    qdq_param x, y;
    if (!qdq_read(g, di, &x, why) || !qdq_read(g, qi, &y, why)) return QDQ_KEPT;
    if (!qdq_same_params(g, &x, &y)) return *why = "DequantizeLinear -> QuantizeLinear with other parameters", QDQ_KEPT;
    if (g->values[y.q].is_output) return *why = "quantized graph output", QDQ_KEPT;
    redirect(g, y.q, x.q);
    g->nodes[qi].dead = true;
    oct_graph_update_uses(g);
    return QDQ_LOWERED;
}

/* Pad's constant value (input 2, fp32) as a constant of the quantized type, Q(c). */
static int pad_value(oct_graph *g, int pi, const qdq_param *y, int *out, const char **why, octet_error *err) {
    const oct_node *p = &g->nodes[pi];
    *out = -1;
    if (g->opset < 11) return *why = "Pad before opset 11 (value attribute)", 0;
    if (strcmp(oct_attr_string(p, "mode", "constant"), "constant") != 0) return 1;
    float c = 0.f;
    if (oct_node_has_input(p, 2)) {
        const oct_value *v = &g->values[p->in[2]];
        if (v->kind != OCT_VAL_CONST || !v->data || v->dtype != OCTET_FLOAT || oct_value_numel(v) != 1)
            return *why = "Pad value is not a constant", 0;
        c = *(const float *)v->data;
    }
    const int32_t q = qdq_quantize(c, qdq_scale_at(g, y, 0), qdq_zp_at(g, y, 0), y->qtype);
    int8_t *d = malloc(4);
    if (!d) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory lowering '%s'", p->name);
    d[0] = (int8_t)(uint8_t)q; /* the byte pattern of q in either 8-bit type */
    *out = qdq_add_const(g, p->name, "/pad_value_q", y->qtype, 0, NULL, d, err);
    return *out < 0 ? -1 : 1;
}

int qdq_lower_movement(oct_graph *g, int qi, int pi, const char **why, int *blame, octet_error *err) {
    *blame = pi;
    if (qdq_is(&g->nodes[pi], "DequantizeLinear")) {
        *blame = -1;
        return lower_dq_q(g, qi, pi, why);
    }
    const oct_node *p = &g->nodes[pi];
    qdq_param y, x;
    if (p->n_out != 1 && !qdq_is(p, "MaxPool")) return *why = "more than one output", QDQ_KEPT;
    for (int j = 1; j < p->n_out; j++) {
        int who[1];
        if (p->out[j] >= 0 && (g->values[p->out[j]].is_output || qdq_consumers(g, p->out[j], who, 1)))
            return *why = "MaxPool indices are used", QDQ_KEPT;
    }
    if (!qdq_to_q(g, p->out[0], &y, why)) return QDQ_KEPT;
    if (qdq_is(p, "Resize") && strcmp(oct_attr_string(p, "mode", "nearest"), "nearest") != 0)
        return *why = "Resize mode is not nearest", QDQ_KEPT;
    const bool all = qdq_is(p, "Concat");
    const int n_data = all ? p->n_in : 1;
    for (int j = 0; j < n_data; j++) {
        if (!qdq_from_dq(g, p->in[j], true, &x, why)) return QDQ_KEPT;
        if (!qdq_same_params(g, &x, &y))
            return *why = "scale or zero point differs between its DequantizeLinear and QuantizeLinear", QDQ_KEPT;
    }
    int pad = -1;
    if (qdq_is(p, "Pad")) {
        const int r = pad_value(g, pi, &y, &pad, why, err);
        if (r <= 0) return r;
    }
    oct_node *n = &g->nodes[pi];
    for (int j = 0; j < n_data; j++) {
        qdq_from_dq(g, n->in[j], true, &x, why);
        n->in[j] = x.q;
    }
    if (pad >= 0) {
        if (n->n_in < 3) {
            int *in = realloc(n->in, 4 * sizeof(int));
            if (!in) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory lowering '%s'", n->name);
            n->in = in;
            for (int j = n->n_in; j < 3; j++) n->in[j] = -1;
            n->n_in = 3;
        }
        n->in[2] = pad;
    }
    n->out[0] = y.q;
    n->why_fp32 = NULL;
    g->nodes[qi].dead = true;
    oct_graph_update_uses(g);
    return QDQ_LOWERED;
}
