/* Precision of planned nodes, for `octet inspect` and the tests: a node is int8 when it computes
   on 8-bit data (its first input or output is uint8/int8), whatever op it is. */
#include <string.h>

#include "qdq_common.h"

static bool is_8bit(const oct_graph *g, int v) {
    return v >= 0 && (g->values[v].dtype == OCTET_UINT8 || g->values[v].dtype == OCTET_INT8);
}

const char *oct_node_precision(const oct_graph *g, const oct_node *n) {
    if (qdq_is(n, "QuantizeLinear") || qdq_is(n, "DynamicQuantizeLinear")) return "quant";
    if (qdq_is(n, "DequantizeLinear")) return "dequant";
    if ((n->n_out > 0 && is_8bit(g, n->out[0])) || (n->n_in > 0 && is_8bit(g, n->in[0]))) return "int8";
    return "fp32";
}

bool oct_graph_is_quantized(const oct_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && strcmp(oct_node_precision(g, &g->nodes[i]), "fp32") != 0) return true;
    return false;
}
