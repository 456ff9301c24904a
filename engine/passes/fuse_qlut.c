/* The int8 activation-table fusion: a non-depthwise QLinearConv -> a table-driven activation (octet
   QLinearLut, the SiLU/HardSwish/... the QDQ lowering builds; com.microsoft QLinearSigmoid,
   QLinearLeakyRelu) becomes one QLinearConv that maps every requantized byte through the activation's 256-byte table as it
   stores its output. The separate node cost a pass over the whole tensor (65 of them per
   EfficientNet-B0 run), and at 2 threads it read bytes the other core had just written.

   The table becomes a constant uint8 [256] value, the conv's input 9 (after the optional bias at
   8), and the attribute octet_output_table = 1 says the input is there (QLinearConv reads it only
   then, engine/ops/quant/qconv.c). The bytes are those the two nodes give: the table is the
   activation node's own (qops_lut_table), applied to the conv's own requantized output.

   Runs before the SE fusion (fuse_se.c), which keeps a conv's table when it hosts the conv in a
   pool node. A conv output that anything else reads, or that is a graph output, is left alone, as
   in fuse.c. OCTET_NO_FUSE_QLUT=1 turns the pass off. */
#include <stdlib.h>
#include <string.h>

#include "../op.h"
#include "../ops/quant/qops_common.h"
#include "passes.h"
#include "qdq_common.h"

enum { TABLE_SLOT = 9 };

static bool fuse_qlut_enabled(void) {
    const char *v = getenv("OCTET_NO_FUSE_QLUT");
    return !(v && strcmp(v, "1") == 0);
}

static int in_domain(const oct_node *n, const char *domain) {
    const char *d = n->domain ? n->domain : "";
    if (!*domain) return !*d || strcmp(d, "ai.onnx") == 0;
    return strcmp(d, domain) == 0;
}

/* A live activation-table node reading value y as its input 0, or NULL. */
static const char *table_function(const oct_node *a) {
    if (in_domain(a, "octet") && strcmp(a->op_type, "QLinearLut") == 0)
        return oct_attr_string(a, "function", "Lut");
    if (in_domain(a, "com.microsoft") && strcmp(a->op_type, "QLinearSigmoid") == 0) return "Sigmoid";
    if (in_domain(a, "com.microsoft") && strcmp(a->op_type, "QLinearLeakyRelu") == 0) return "LeakyRelu";
    return NULL;
}

/* Gives conv ci input TABLE_SLOT = table value tv, the marking attribute and the fused label. */
static int attach_table(oct_graph *g, int ci, int tv, const char *function, octet_error *err) {
    oct_node *c = &g->nodes[ci];
    int *in = realloc(c->in, (TABLE_SLOT + 1) * sizeof *in);
    if (!in) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory fusing an activation table");
    c->in = in;
    for (int k = c->n_in; k < TABLE_SLOT; k++) in[k] = -1; /* no bias */
    in[TABLE_SLOT] = tv;
    c->n_in = TABLE_SLOT + 1;
    if (qdq_set_attr_int(g, ci, "octet_output_table", 1, err)) return -1;
    return qdq_note_fused(g, ci, function, err);
}

/* Fuses the table node reading conv ci's output, if any. Returns 1 if fused, 0 if not, -1 on error. */
static int fuse_one(oct_graph *g, int ci, octet_error *err) {
    const oct_node *c = &g->nodes[ci];
    if (c->dead || !in_domain(c, "") || strcmp(c->op_type, "QLinearConv") != 0 || c->n_out != 1 || c->n_in < 8 ||
        c->n_in > TABLE_SLOT || oct_node_attr(c, "octet_output_table") || c->epi.residual >= 0)
        return 0;
    const int y = c->out[0];
    if (y < 0 || g->values[y].is_output) return 0;
    /* Depthwise convs keep their table node. Fused, the table (and then the SE squeeze the fusion
       exposes, summing the mapped bytes) runs inside the depthwise items, and EfficientNet int8 got
       slower: B0 2.5% at 1 thread and 6% at 2, B3 7% at 2 (one process, alternating). The op
       still honours a table on any strategy. */
    const oct_value *x = c->in[0] >= 0 ? &g->values[c->in[0]] : NULL;
    if (!x || x->rank < 3 || oct_attr_int(c, "group", 1) == x->dims[1]) return 0;
    int ai;
    if (qdq_consumers(g, y, &ai, 1) != 1) return 0;
    const oct_node *a = &g->nodes[ai];
    const char *function = table_function(a);
    if (!function || a->n_out != 1 || a->in[0] != y || g->values[a->out[0]].dtype != g->values[y].dtype) return 0;
    /* The table is a plan-time constant only when the activation's scales are; otherwise the node stays. */
    uint8_t *table = malloc(256);
    octet_error ignored = {0};
    if (!table) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory fusing an activation table");
    if (qops_lut_table(g, a, table, &ignored)) {
        free(table);
        return 0;
    }
    const int64_t dims[1] = {256};
    const int tv = qdq_add_const(g, c->name, "/octet_output_table", OCTET_UINT8, 1, dims, table, err);
    if (tv < 0 || attach_table(g, ci, tv, function, err)) return -1;
    oct_node *conv = &g->nodes[ci]; /* adding the value may not move nodes, but read it afresh */
    conv->out[0] = g->nodes[ai].out[0];
    g->nodes[ai].dead = true;
    return 1;
}

int oct_pass_fuse_qlut(oct_graph *g, octet_error *err) {
    if (!fuse_qlut_enabled()) return 0;
    int fused = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const int r = fuse_one(g, i, err);
        if (r < 0) return -1;
        fused += r;
    }
    if (fused) oct_graph_update_uses(g);
    return 0;
}
