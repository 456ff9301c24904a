/* The SE-squeeze fusion: a depthwise convolution whose output feeds a global average pool (the
   squeeze of an EfficientNet/MobileNetV3 squeeze-excitation block) becomes one pool node that
   runs the convolution and pools what it writes:
     Conv -> GlobalAveragePool                     (fp32, engine/ops/nn/global_pool.c)
     QLinearConv -> QLinearGlobalAveragePool       (int8, engine/ops/quant/qlinear_pool.c)
   The fused node takes the conv's inputs and attributes (the pool's quantization parameters
   appended for int8) and has two outputs: the conv's Y, which the excite Mul still reads, and the
   pooled value. The depthwise kernels sum every channel while its rows are in registers, instead
   of the pool reading the whole tensor again (17 passes over ~9 MB per EfficientNet-B0 run).

   Runs after the fusion pass (fuse.c), so that a Conv already carries its activation (SiLU). Y
   stays a value of the graph (only its producer changes), so every reader of it keeps working.
   A conv with a fused residual is left alone.
   The excite that follows, Mul(y, s) with one scale per channel, moves into the projection when
   that is a plain pointwise Conv on planes of more than 100 pixels (fuse_excite): the Conv reads y
   and scales its packed weights by s per run, so the product is never written (B0's Mul nodes
   were ~4% of an fp32 run). OCTET_NO_FUSE_SE=1 in the environment turns both off (comparisons). */
#include <stdlib.h>
#include <string.h>

#include "../op.h"
#include "passes.h"

static int is_default_domain(const oct_node *n) {
    return !n->domain || !*n->domain || strcmp(n->domain, "ai.onnx") == 0;
}

static int is_live_op(const oct_node *n, const char *type) {
    return !n->dead && is_default_domain(n) && strcmp(n->op_type, type) == 0;
}

static bool fuse_se_enabled(void) {
    const char *v = getenv("OCTET_NO_FUSE_SE");
    return !(v && strcmp(v, "1") == 0);
}

/* Node d is a live `type` (Conv or QLinearConv, weight at input w_slot) with one output, depthwise
   with one output channel per input channel: group = C = M, W of shape [C, 1, k...] (what their
   depthwise strategies run). */
static int is_depthwise_conv(const oct_graph *g, const oct_node *d, const char *type, int w_slot) {
    if (!is_live_op(d, type) || d->n_out != 1 || d->n_in <= w_slot || d->in[0] < 0 || d->in[w_slot] < 0) return 0;
    const oct_value *x = &g->values[d->in[0]], *w = &g->values[d->in[w_slot]];
    if (x->rank < 3 || w->rank != x->rank) return 0;
    const int64_t C = x->dims[1];
    return C > 1 && w->dims[0] == C && w->dims[1] == 1 && oct_attr_int(d, "group", 1) == C;
}

/* What a fused node gains besides the conv's attributes. */
typedef struct {
    const char *name;
    oct_attr_type type;
    int64_t i;
    float f;
    const char *s;
} extra_attr;

/* Fills the zeroed attribute a. */
static int set_attr(oct_attr *a, const extra_attr *e, octet_error *err) {
    a->name = strdup(e->name);
    a->s = e->s ? strdup(e->s) : NULL;
    if (!a->name || (e->s && !a->s)) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory fusing an SE squeeze");
    a->type = e->type;
    a->i = e->i;
    a->f = e->f;
    return 0;
}

/* Rewrites pool node pi to take over conv di: inputs in[n_in] (copied), outputs the conv's and
   the pool's, attributes the conv's plus extra[n_extra], fused label conv_type+what the conv had. */
static int fuse_pair(oct_graph *g, int pi, int di, const int *in_values, int n_in, const extra_attr *extra,
                     int n_extra, const char *conv_type, octet_error *err) {
    oct_node *p = &g->nodes[pi], *d = &g->nodes[di];
    int *in = malloc((size_t)n_in * sizeof *in), *out = malloc(2 * sizeof *out);
    oct_attr *attrs = realloc(d->attrs, ((size_t)d->n_attr + (size_t)n_extra) * sizeof *attrs);
    const char *what = d->fused ? d->fused : "";
    char *fused = malloc(strlen(conv_type) + strlen(what) + 2);
    if (attrs) d->attrs = attrs;
    if (!in || !out || !attrs || !fused) {
        free(in), free(out), free(fused);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory fusing an SE squeeze into node '%s'", p->name);
    }
    memset(&attrs[d->n_attr], 0, (size_t)n_extra * sizeof *attrs);
    strcpy(fused, conv_type);
    if (*what) strcat(strcat(fused, "+"), what);
    for (int k = 0; k < n_extra; k++)
        if (set_attr(&attrs[d->n_attr + k], &extra[k], err)) {
            for (int j = 0; j <= k; j++) free(attrs[d->n_attr + j].name), free(attrs[d->n_attr + j].s);
            free(in), free(out), free(fused);
            return -1;
        }
    memcpy(in, in_values, (size_t)n_in * sizeof *in);
    out[0] = d->out[0];
    out[1] = p->out[0];
    free(p->in);
    free(p->out);
    p->in = in;
    p->n_in = n_in;
    p->out = out;
    p->n_out = 2;
    /* the conv's attributes move over, the dead conv keeps none; the pool's own hold only
       defaults (an integer channels_last = 0: see the callers) */
    for (int k = 0; k < p->n_attr; k++) free(p->attrs[k].name);
    free(p->attrs);
    p->attrs = attrs;
    p->n_attr = d->n_attr + n_extra;
    d->attrs = NULL;
    d->n_attr = 0;
    free(p->fused);
    p->fused = fused;
    d->dead = true;
    return 0;
}

/* fp32: GlobalAveragePool(y), y = depthwise Conv(x). The Conv's activation moves into attributes
   (global_pool.c says why). */
static int fuse_float(oct_graph *g, int pi, octet_error *err) {
    const oct_node *p = &g->nodes[pi];
    if (p->n_in != 1 || p->n_out != 1 || p->n_attr != 0 || p->in[0] < 0) return 0;
    const int di = g->values[p->in[0]].producer;
    if (di < 0 || di == pi || !is_depthwise_conv(g, &g->nodes[di], "Conv", 1)) return 0;
    const oct_node *d = &g->nodes[di];
    if (d->out[0] != p->in[0] || d->epi.residual >= 0) return 0;
    const int in[3] = {d->in[0], d->in[1], d->n_in > 2 ? d->in[2] : -1};
    const extra_attr extra[4] = {{"fused_conv_activation", OCT_ATTR_INT, (int64_t)d->epi.act, 0.f, NULL},
                                 {"fused_conv_alpha", OCT_ATTR_FLOAT, 0, d->epi.alpha, NULL},
                                 {"fused_conv_beta", OCT_ATTR_FLOAT, 0, d->epi.beta, NULL},
                                 {"fused_conv_name", OCT_ATTR_STRING, 0, 0.f, d->name}};
    if (fuse_pair(g, pi, di, in, d->n_in, extra, 4, "Conv", err)) return -1;
    return 1;
}

/* int8: QLinearGlobalAveragePool(y), y = depthwise QLinearConv(x), channels first. The conv's
   epilogue (a Relu/Clip clamp) stays the node's: no pass splits int8 epilogues. */
static int fuse_quantized(oct_graph *g, int pi, octet_error *err) {
    const oct_node *p = &g->nodes[pi];
    if (p->n_in < 4 || p->n_in > 5 || p->n_out != 1 || p->in[0] < 0) return 0;
    for (int k = 0; k < p->n_attr; k++)
        if (strcmp(p->attrs[k].name, "channels_last") != 0 || p->attrs[k].i != 0) return 0;
    const int di = g->values[p->in[0]].producer;
    if (di < 0 || di == pi || !is_depthwise_conv(g, &g->nodes[di], "QLinearConv", 3)) return 0;
    const oct_node *d = &g->nodes[di];
    /* a Conv with an activation table (fuse_qlut.c) has it at input 9; it stays there */
    const int conv_inputs = oct_attr_int(d, "octet_output_table", 0) ? 10 : 9;
    if (d->out[0] != p->in[0] || d->n_in < 8 || d->n_in > conv_inputs || d->epi.residual >= 0) return 0;
    int in[14];
    for (int k = 0; k < conv_inputs; k++) in[k] = k < d->n_in ? d->in[k] : -1;
    in[conv_inputs] = p->in[1];
    in[conv_inputs + 1] = p->in[2];
    in[conv_inputs + 2] = p->in[3];
    in[conv_inputs + 3] = p->n_in > 4 ? p->in[4] : -1;
    const extra_attr extra[1] = {{"fused_qlinear_conv", OCT_ATTR_INT, 1, 0.f, NULL}};
    const oct_epilogue epi = d->epi;
    if (fuse_pair(g, pi, di, in, conv_inputs + 4, extra, 1, "QLinearConv", err)) return -1;
    g->nodes[pi].epi = epi;
    return 1;
}

/* ---- the excite into the projection --------------------------------------------------------- */

/* Pixels per plane above which the excite moves into the projection: the pointwise GEMM then
   keeps its pixels on the vector side (conv.c's pixels-as-A layers have at most 100), and
   scaling its M x C packed weights per run costs less than the C x H x W Mul (H x W > M). */
enum { EXCITE_MIN_PIXELS = 100 };

/* Whether 1 x 1 Conv d (stride 1, no padding, one group, constant weights [M, C, 1, 1]) can take
   the excite of channels c over planes of `pixels` pixels. */
static int is_plain_pointwise(const oct_graph *g, const oct_node *d, int64_t c, int64_t pixels) {
    if (d->dead || !is_default_domain(d) || strcmp(d->op_type, "Conv") != 0 || d->n_out != 1 || d->n_in < 2 ||
        d->n_in > 3 || d->in[1] < 0)
        return 0;
    const oct_value *w = &g->values[d->in[1]];
    if (w->kind != OCT_VAL_CONST || !w->data || w->dtype != OCTET_FLOAT || w->rank != 4 || w->dims[1] != c ||
        w->dims[2] != 1 || w->dims[3] != 1 || pixels <= w->dims[0])
        return 0;
    if (oct_attr_int(d, "group", 1) != 1) return 0;
    const char *pad = oct_attr_string(d, "auto_pad", "NOTSET");
    if (strcmp(pad, "NOTSET") != 0 && strcmp(pad, "VALID") != 0) return 0;
    static const char *const names[3] = {"strides", "dilations", "pads"};
    for (int a = 0; a < 3; a++) {
        const oct_attr *at = oct_node_attr(d, names[a]);
        for (int i = 0; at && i < at->n; i++)
            if (at->ints[i] != (a == 2 ? 0 : 1)) return 0;
    }
    return 1;
}

/* Mul(y [N, C, H, W], s [N or 1, C, 1, 1]) whose only reader is a plain pointwise Conv (input 0)
   becomes that Conv reading y, with s as input 3 (conv.c scales its packed weights by s). The
   Mul's name, output value and operand order stay in attributes for the way back. */
static int fuse_excite(oct_graph *g, int mi, octet_error *err) {
    const oct_node *m = &g->nodes[mi];
    if (m->n_in != 2 || m->n_out != 1 || m->in[0] < 0 || m->in[1] < 0) return 0;
    const oct_value *out = &g->values[m->out[0]];
    if (out->is_output || out->n_consumers != 1) return 0;
    int scale_first = -1;
    for (int k = 0; k < 2; k++) {
        const oct_value *y = &g->values[m->in[1 - k]], *sv = &g->values[m->in[k]];
        if (y->dtype != OCTET_FLOAT || sv->dtype != OCTET_FLOAT || y->rank != 4 || sv->rank != 4 ||
            y->kind == OCT_VAL_CONST || sv->dims[1] != y->dims[1] || sv->dims[2] != 1 || sv->dims[3] != 1 ||
            (sv->dims[0] != 1 && sv->dims[0] != y->dims[0]) || (y->dims[2] == 1 && y->dims[3] == 1))
            continue;
        scale_first = k;
    }
    if (scale_first < 0) return 0;
    const int yv = m->in[1 - scale_first], sv = m->in[scale_first];
    const int64_t pixels = g->values[yv].dims[2] * g->values[yv].dims[3];
    if (pixels <= EXCITE_MIN_PIXELS) return 0;
    int di = -1;
    for (int k = 0; k < g->n_nodes && di < 0; k++)
        if (!g->nodes[k].dead && g->nodes[k].n_in > 0 && g->nodes[k].in[0] == m->out[0]) di = k;
    if (di < 0 || !is_plain_pointwise(g, &g->nodes[di], g->values[yv].dims[1], pixels)) return 0;
    oct_node *d = &g->nodes[di];
    for (int k = 1; k < d->n_in; k++)
        if (d->in[k] == m->out[0]) return 0;
    int *in = realloc(d->in, 4 * sizeof *in);
    if (!in) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory fusing an SE excite");
    d->in = in;
    const extra_attr extra[4] = {{"octet_excite", OCT_ATTR_INT, 1, 0.f, NULL},
                                 {"octet_excite_scale_first", OCT_ATTR_INT, scale_first, 0.f, NULL},
                                 {"octet_excite_mul", OCT_ATTR_STRING, 0, 0.f, m->name},
                                 {"octet_excite_value", OCT_ATTR_STRING, 0, 0.f, out->name}};
    oct_attr *attrs = realloc(d->attrs, ((size_t)d->n_attr + 4) * sizeof *attrs);
    const char *what = d->fused ? d->fused : "";
    char *fused = malloc(strlen(what) + 5);
    if (attrs) d->attrs = attrs;
    if (!attrs || !fused) {
        free(fused);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory fusing an SE excite");
    }
    memset(&attrs[d->n_attr], 0, 4 * sizeof *attrs);
    for (int k = 0; k < 4; k++)
        if (set_attr(&attrs[d->n_attr + k], &extra[k], err)) {
            for (int j = 0; j <= k; j++) free(attrs[d->n_attr + j].name), free(attrs[d->n_attr + j].s);
            free(fused);
            return -1;
        }
    d->n_attr += 4;
    strcpy(fused, "Mul");
    if (*what) strcat(strcat(fused, "+"), what);
    free(d->fused);
    d->fused = fused;
    if (d->n_in < 3) d->in[2] = -1;
    d->in[3] = sv;
    d->in[0] = yv;
    d->n_in = 4;
    g->nodes[mi].dead = true;
    return 1;
}

int oct_pass_fuse_se(oct_graph *g, octet_error *err) {
    if (!fuse_se_enabled()) return 0;
    oct_graph_update_uses(g);
    int fused = 0;
    for (int pi = 0; pi < g->n_nodes; pi++) {
        const oct_node *p = &g->nodes[pi];
        if (p->dead) continue;
        int r = 0;
        if (is_default_domain(p) && strcmp(p->op_type, "GlobalAveragePool") == 0)
            r = fuse_float(g, pi, err);
        else if (p->domain && strcmp(p->domain, "com.microsoft") == 0 && strcmp(p->op_type, "QLinearGlobalAveragePool") == 0)
            r = fuse_quantized(g, pi, err);
        if (r < 0) return -1;
        fused += r;
    }
    if (fused) oct_graph_update_uses(g);
    int excited = 0;
    for (int mi = 0; mi < g->n_nodes; mi++) {
        if (!is_live_op(&g->nodes[mi], "Mul")) continue;
        const int r = fuse_excite(g, mi, err);
        if (r < 0) return -1;
        excited += r;
    }
    if (excited) oct_graph_update_uses(g);
    return 0;
}

/* ---- the way back, for graphs that leave the engine ------------------------------------------ */

static int is_fused_conv_attr(const char *name) { return strncmp(name, "fused_conv_", 11) == 0; }

/* Fused fp32 node pi back into Conv (name, attributes, activation as its epilogue) writing Y, and
   GlobalAveragePool(Y). */
static int unfuse_float(oct_graph *g, int pi, octet_error *err) {
    const char *name = oct_attr_string(&g->nodes[pi], "fused_conv_name", g->nodes[pi].name);
    char *conv_name = strdup(name);
    if (!conv_name) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory splitting an SE squeeze");
    const int di = oct_graph_add_node(g, conv_name, "Conv", "", g->nodes[pi].n_in, 1, err);
    free(conv_name);
    if (di < 0) return -1;
    oct_node *p = &g->nodes[pi], *d = &g->nodes[di]; /* after the add: it may move the nodes */
    int *pin = malloc(sizeof *pin), *pout = malloc(sizeof *pout);
    char *what = p->fused && strncmp(p->fused, "Conv+", 5) == 0 ? strdup(p->fused + 5) : NULL;
    if (!pin || !pout || (p->fused && strncmp(p->fused, "Conv+", 5) == 0 && !what)) {
        free(pin), free(pout), free(what);
        d->dead = true;
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory splitting an SE squeeze");
    }
    memcpy(d->in, p->in, (size_t)p->n_in * sizeof *d->in);
    d->out[0] = p->out[0];
    d->epi = (oct_epilogue){.act = (oct_act_kind)oct_attr_int(p, "fused_conv_activation", 0),
                            .alpha = oct_attr_float(p, "fused_conv_alpha", 0.f),
                            .beta = oct_attr_float(p, "fused_conv_beta", 0.f), .residual = -1};
    d->fused = what;
    /* the conv's own attributes go back to it, in order; the fused_conv_* ones are dropped */
    d->attrs = p->attrs;
    d->n_attr = 0;
    for (int k = 0; k < p->n_attr; k++) {
        if (is_fused_conv_attr(p->attrs[k].name)) {
            free(p->attrs[k].name);
            free(p->attrs[k].s);
            continue;
        }
        d->attrs[d->n_attr++] = p->attrs[k];
    }
    p->attrs = NULL;
    p->n_attr = 0;
    *pin = p->out[0];
    *pout = p->out[1];
    free(p->in);
    free(p->out);
    p->in = pin;
    p->n_in = 1;
    p->out = pout;
    p->n_out = 1;
    free(p->fused);
    p->fused = NULL;
    return 0;
}

/* Conv di with a fused excite back into Mul(y, s) (its name, output value and operand order) and
   the Conv reading the product. */
static int unfuse_excite(oct_graph *g, int di, octet_error *err) {
    const oct_node *d0 = &g->nodes[di];
    const int out = oct_graph_find_value(g, oct_attr_string(d0, "octet_excite_value", ""));
    if (out < 0 || d0->n_in != 4)
        return oct_fail(err, OCTET_ERR_INTERNAL, "node '%s': its fused excite cannot be split", d0->name);
    const int mi = oct_graph_add_node(g, oct_attr_string(d0, "octet_excite_mul", ""), "Mul", "", 2, 1, err);
    if (mi < 0) return -1;
    oct_node *m = &g->nodes[mi], *d = &g->nodes[di]; /* after the add: it may move the nodes */
    const int scale_first = (int)oct_attr_int(d, "octet_excite_scale_first", 0);
    m->in[scale_first] = d->in[3];
    m->in[1 - scale_first] = d->in[0];
    m->out[0] = out;
    d->in[0] = out;
    d->n_in = d->in[2] >= 0 ? 3 : 2;
    int kept = 0;
    for (int k = 0; k < d->n_attr; k++) {
        if (strncmp(d->attrs[k].name, "octet_excite", 12) == 0) {
            free(d->attrs[k].name);
            free(d->attrs[k].s);
            continue;
        }
        d->attrs[kept++] = d->attrs[k];
    }
    d->n_attr = kept;
    if (d->fused && strncmp(d->fused, "Mul", 3) == 0) {
        char *what = d->fused[3] == '+' ? strdup(d->fused + 4) : NULL;
        if (d->fused[3] == '+' && !what) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory splitting an SE excite");
        free(d->fused);
        d->fused = what;
    }
    return 0;
}

int oct_pass_unfuse_se(oct_graph *g, octet_error *err) {
    const int nd = g->n_nodes;
    for (int di = 0; di < nd; di++) {
        oct_node *d = &g->nodes[di];
        if (d->dead || !is_default_domain(d) || strcmp(d->op_type, "Conv") != 0 || !oct_attr_int(d, "octet_excite", 0))
            continue;
        if (d->params) {
            if (d->op && d->op->free_params) d->op->free_params(d->params);
            else free(d->params);
            d->params = NULL;
        }
        if (unfuse_excite(g, di, err)) return -1;
    }
    const int nn = g->n_nodes;
    for (int pi = 0; pi < nn; pi++) {
        const oct_node *p = &g->nodes[pi];
        if (p->dead || !is_default_domain(p) || strcmp(p->op_type, "GlobalAveragePool") != 0 ||
            !oct_node_attr(p, "fused_conv_activation"))
            continue;
        if (p->params) {
            /* the plan's parameters describe the fused form (clones have none) */
            if (p->op && p->op->free_params) p->op->free_params(p->params);
            else free(p->params);
            g->nodes[pi].params = NULL;
        }
        if (unfuse_float(g, pi, err)) return -1;
    }
    oct_graph_update_uses(g);
    return 0;
}
