/* The calibration network and the observed run loop; see calib_net.h. */
#include "calib_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "op.h"
#include "passes/passes.h"

void oct_calib_net_free(oct_calib_net *net) {
    oct_graph_free(net->g);
    oct_plan_free(net->plan);
    net->g = NULL;
    net->plan = NULL;
}

/* A new activation value named base+suffix shaped like value `like`. */
static int add_like(oct_graph *g, int like, const char *base, const char *suffix, octet_error *err) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    const int v = oct_graph_add_value(g, name, err);
    if (v < 0) return -1;
    const oct_value *l = &g->values[like];
    oct_value *nv = &g->values[v];
    nv->kind = OCT_VAL_ACTIVATION;
    nv->dtype = l->dtype;
    nv->rank = l->rank;
    memcpy(nv->dims, l->dims, sizeof nv->dims);
    nv->producer = -1;
    return v;
}

static int add_attr_float(oct_graph *g, int ni, const char *name, float f, octet_error *err) {
    oct_node *n = &g->nodes[ni];
    oct_attr *a = realloc(n->attrs, ((size_t)n->n_attr + 1) * sizeof *a);
    if (!a) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->attrs = a;
    memset(&a[n->n_attr], 0, sizeof *a);
    if (!(a[n->n_attr].name = strdup(name))) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    a[n->n_attr].type = OCT_ATTR_FLOAT;
    a[n->n_attr].f = f;
    n->n_attr++;
    return 0;
}

static int add_scalar(oct_graph *g, const char *base, const char *suffix, float x, octet_error *err) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    const int v = oct_graph_add_value(g, name, err);
    float *d = malloc(sizeof(float));
    if (v < 0 || !d) {
        free(d);
        return v < 0 ? -1 : oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    *d = x;
    oct_value_set_const(&g->values[v], OCTET_FLOAT, 0, NULL, d);
    return v;
}

/* Node `type` reading in (n_in values) and writing out; returns its index. */
static int add_node(oct_graph *g, const char *base, const char *suffix, const char *type, int n_in, const int *in,
                    int out, octet_error *err) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    const int ni = oct_graph_add_node(g, name, type, "", n_in, 1, err);
    if (ni < 0) return -1;
    for (int k = 0; k < n_in; k++) g->nodes[ni].in[k] = in[k];
    g->nodes[ni].out[0] = out;
    return ni;
}

/* The activation of an epilogue as standard nodes reading x and writing y. */
static int split_activation(oct_graph *g, const char *base, const oct_epilogue *e, int x, int y, octet_error *err) {
    int in[3] = {x, -1, -1}, ni = 0;
    switch (e->act) {
    case OCT_ACT_RELU: return add_node(g, base, "/Relu", "Relu", 1, in, y, err) < 0 ? -1 : 0;
    case OCT_ACT_SIGMOID: return add_node(g, base, "/Sigmoid", "Sigmoid", 1, in, y, err) < 0 ? -1 : 0;
    case OCT_ACT_TANH: return add_node(g, base, "/Tanh", "Tanh", 1, in, y, err) < 0 ? -1 : 0;
    case OCT_ACT_HARD_SWISH: return add_node(g, base, "/HardSwish", "HardSwish", 1, in, y, err) < 0 ? -1 : 0;
    case OCT_ACT_CLIP:
        if ((in[1] = add_scalar(g, base, "/clip_min", e->alpha, err)) < 0 ||
            (in[2] = add_scalar(g, base, "/clip_max", e->beta, err)) < 0)
            return -1;
        return add_node(g, base, "/Clip", "Clip", 3, in, y, err) < 0 ? -1 : 0;
    case OCT_ACT_LEAKY_RELU:
        if ((ni = add_node(g, base, "/LeakyRelu", "LeakyRelu", 1, in, y, err)) < 0) return -1;
        return add_attr_float(g, ni, "alpha", e->alpha, err);
    case OCT_ACT_HARD_SIGMOID:
        if ((ni = add_node(g, base, "/HardSigmoid", "HardSigmoid", 1, in, y, err)) < 0) return -1;
        if (add_attr_float(g, ni, "alpha", e->alpha, err)) return -1;
        return add_attr_float(g, ni, "beta", e->beta, err);
    case OCT_ACT_SILU: {
        const int s = add_like(g, y, base, "/sigmoid_out", err);
        if (s < 0 || add_node(g, base, "/Sigmoid", "Sigmoid", 1, in, s, err) < 0) return -1;
        in[1] = s;
        return add_node(g, base, "/Mul", "Mul", 2, in, y, err) < 0 ? -1 : 0;
    }
    case OCT_ACT_NONE: break;
    }
    return oct_fail(err, OCTET_ERR_INTERNAL, "unknown epilogue activation %d", (int)e->act);
}

/* Splits node ni's epilogue unless it is empty or a lone Relu/Clip (which a QDQ model keeps
   fused: QuantizeLinear goes after the activation and the int8 op clamps). */
static int split_epilogue(oct_graph *g, int ni, octet_error *err) {
    const oct_epilogue e = g->nodes[ni].epi;
    if (e.residual < 0 && (e.act == OCT_ACT_NONE || e.act == OCT_ACT_RELU || e.act == OCT_ACT_CLIP)) return 0;
    char *base = strdup(g->nodes[ni].name);
    if (!base) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    const int y = g->nodes[ni].out[0];
    int rc = -1, x = add_like(g, y, base, "/pre_epilogue", err);
    if (x < 0) goto done;
    g->nodes[ni].out[0] = x;
    g->nodes[ni].epi = (oct_epilogue){.act = OCT_ACT_NONE, .residual = -1};
    if (e.residual >= 0) {
        const int s = e.act ? add_like(g, y, base, "/residual_sum", err) : y;
        const int in[2] = {x, e.residual};
        if (s < 0 || add_node(g, base, "/residual_Add", "Add", 2, in, s, err) < 0) goto done;
        x = s;
    }
    rc = e.act ? split_activation(g, base, &e, x, y, err) : 0;
done:
    free(base);
    return rc;
}

static int infer_all(oct_graph *g, octet_error *err) {
    if (oct_graph_toposort(g, err)) return -1;
    oct_graph_update_uses(g);
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        if (n->dead) continue;
        if (!n->op && !(n->op = oct_op_find(n->domain, n->op_type)))
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "node '%s': operator %s is not supported", n->name,
                            n->op_type);
        if (n->params) {
            if (n->op->free_params) n->op->free_params(n->params);
            else free(n->params);
            n->params = NULL;
        }
        n->workspace_bytes = 0;
        if (n->op->infer(g, n, err)) return oct_fail_context(err, "node '%s' (%s)", n->name, n->op_type);
    }
    return 0;
}

int oct_calib_net_build(oct_calib_net *net, const oct_graph *model, const octet_tensor *inputs, octet_error *err) {
    memset(net, 0, sizeof *net);
    if (model->n_inputs > 64) return oct_fail(err, OCTET_ERR_UNSUPPORTED, "more than 64 graph inputs");
    oct_shape shapes[64];
    for (int i = 0; i < model->n_inputs; i++) {
        shapes[i].rank = inputs[i].rank;
        memcpy(shapes[i].dims, inputs[i].dims, sizeof shapes[i].dims);
    }
    net->plan = oct_plan_build(model, shapes, NULL, 1, NULL, err);
    if (!net->plan) return -1;
    if (oct_graph_is_quantized(net->plan->g)) {
        oct_calib_net_free(net);
        return oct_fail(err, OCTET_ERR_ARG, "the model is already quantized (it has int8 or Q/DQ nodes)");
    }
    net->g = oct_graph_clone(net->plan->g, err);
    if (!net->g || oct_pass_unfuse_se(net->g, err)) goto fail;
    const int nn = net->g->n_nodes;
    for (int i = 0; i < nn; i++)
        if (!net->g->nodes[i].dead && split_epilogue(net->g, i, err)) goto fail;
    if (infer_all(net->g, err)) goto fail;
    return 0;
fail:
    oct_calib_net_free(net);
    return -1;
}

int oct_graph_run_observed(const oct_graph *g, const int *order, int n, const octet_tensor *inputs, int threads,
                           oct_observe_fn observe, void *user, octet_tensor *outputs, octet_error *err) {
    oct_tensor *t = calloc((size_t)g->n_values + 1, sizeof *t);
    bool *owned = calloc((size_t)g->n_values + 1, sizeof *owned);
    size_t ws_bytes = 0;
    void *ws = NULL;
    int rc = -1;
    if (!t || !owned) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++) t[v] = oct_value_tensor(&g->values[v]);
    for (int i = 0; i < g->n_inputs; i++) {
        const oct_value *v = &g->values[g->inputs[i]];
        if (v->kind == OCT_VAL_CONST) continue; /* bound at plan time */
        if (inputs[i].dtype != v->dtype || inputs[i].rank != v->rank ||
            memcmp(inputs[i].dims, v->dims, (size_t)v->rank * sizeof(int64_t)) != 0) {
            oct_fail(err, OCTET_ERR_SHAPE, "input '%s' does not have the planned dtype and shape", v->name);
            goto done;
        }
        t[g->inputs[i]].data = inputs[i].data;
    }
    for (int k = 0; k < n; k++) {
        const oct_node *nd = &g->nodes[order[k]];
        if (nd->dead) continue;
        if (nd->workspace_bytes > ws_bytes) ws_bytes = nd->workspace_bytes;
        for (int j = 0; j < nd->n_out; j++) {
            const int v = nd->out[j];
            if (v < 0 || g->values[v].kind == OCT_VAL_CONST) continue;
            const size_t bytes = (size_t)oct_value_numel(&g->values[v]) * octet_dtype_size(g->values[v].dtype);
            if (!(t[v].data = malloc(bytes + 1))) {
                oct_fail(err, OCTET_ERR_NOMEM, "out of memory for tensor '%s'", g->values[v].name);
                goto done;
            }
            owned[v] = true;
        }
    }
    if (ws_bytes && !(ws = aligned_alloc(64, (ws_bytes + 63) & ~(size_t)63))) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory for a %zu-byte workspace", ws_bytes);
        goto done;
    }
    for (int k = 0; k < n; k++) {
        const oct_node *nd = &g->nodes[order[k]];
        if (nd->dead) continue;
        oct_run_ctx ctx = {g, t, ws, threads > 0 ? threads : 1, NULL};
        if (nd->op->run(&ctx, nd, err)) {
            oct_fail_context(err, "node '%s' (%s)", nd->name, nd->op_type);
            goto done;
        }
        for (int j = 0; observe && j < nd->n_out; j++)
            if (nd->out[j] >= 0) observe(user, nd->out[j], &t[nd->out[j]]);
    }
    for (int i = 0; outputs && i < g->n_outputs; i++) {
        const int v = g->outputs[i];
        const size_t bytes = (size_t)oct_value_numel(&g->values[v]) * octet_dtype_size(g->values[v].dtype);
        outputs[i] = t[v];
        if (!(outputs[i].data = malloc(bytes + 1))) {
            for (int k = 0; k < i; k++) octet_tensor_release(&outputs[k]);
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory for output '%s'", g->values[v].name);
            goto done;
        }
        if (bytes) memcpy(outputs[i].data, t[v].data, bytes);
    }
    rc = 0;
done:
    for (int v = 0; owned && v < g->n_values; v++)
        if (owned[v]) free(t[v].data);
    free(ws);
    free(owned);
    free(t);
    return rc;
}

int oct_calib_net_run(const oct_calib_net *net, const octet_tensor *inputs, int threads, oct_observe_fn observe,
                      void *user, octet_tensor *outputs, octet_error *err) {
    return oct_graph_run_observed(net->g, net->g->order, net->g->n_nodes, inputs, threads, observe, user, outputs,
                                  err);
}
