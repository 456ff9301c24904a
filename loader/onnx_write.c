/* oct_graph -> ONNX ModelProto: the inverse of onnx_parse.c for the live part of a graph.
   Node order, graph inputs/outputs and the model fields are here; nodes and their fused
   epilogues in onnx_write_node.c; the arena, names and tensors in onnx_write_util.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "onnx_write_internal.h"

/* IR version 8 goes with opset 17, the newest octet reads; ONNX Runtime accepts it for older
   opsets too. */
#define WRITE_IR_VERSION 8
/* protobuf refuses to parse messages of 2 GiB or more; weights beyond that need external data,
   which the writer does not produce. */
#define MAX_MODEL_BYTES (((size_t)2 << 30) - 1)

static const char *vname(const oct_graph *g, int v) {
    return v >= 0 && v < g->n_values && g->values[v].name ? g->values[v].name : "?";
}

/* prod[v] = the live node producing value v, or -1. */
static int collect_producers(const oct_graph *g, int *prod, octet_error *err) {
    for (int v = 0; v < g->n_values; v++) prod[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->n_out; j++) {
            int v = n->out[j];
            if (v < 0) continue;
            if (v >= g->n_values)
                return oct_fail(err, OCTET_ERR_FORMAT, "node '%s' writes value %d, beyond the graph's %d values",
                                n->name, v, g->n_values);
            if (prod[v] >= 0)
                return oct_fail(err, OCTET_ERR_FORMAT, "value '%s' is produced by both node '%s' and node '%s'",
                                vname(g, v), g->nodes[prod[v]].name, n->name);
            prod[v] = i;
        }
    }
    return 0;
}

/* Value read by node n as its k-th dependency (inputs, then the epilogue residual); -1 if none. */
static int dependency(const oct_node *n, int k) {
    return k < n->n_in ? n->in[k] : n->epi.residual;
}

/* Live nodes in topological order by depth-first search, ties in node index order (g->order
   is not used: a pass may have added nodes since it was computed). */
static int topo_order(const oct_graph *g, const int *prod, int *order, int *n_order, octet_error *err) {
    unsigned char *state = calloc((size_t)g->n_nodes + 1, 1); /* 0 new, 1 on the stack, 2 emitted */
    int *stack = malloc(((size_t)g->n_nodes + 1) * sizeof(int));
    int *cursor = calloc((size_t)g->n_nodes + 1, sizeof(int));
    int rc = 0;
    *n_order = 0;
    if (!state || !stack || !cursor) {
        rc = oct_fail(err, OCTET_ERR_NOMEM, "out of memory ordering the nodes to write");
        goto done;
    }
    for (int s = 0; s < g->n_nodes && !rc; s++) {
        if (g->nodes[s].dead || state[s]) continue;
        int top = 0;
        stack[top++] = s;
        state[s] = 1;
        while (top > 0 && !rc) {
            const int i = stack[top - 1];
            const oct_node *n = &g->nodes[i];
            if (cursor[i] > n->n_in) { /* every dependency emitted */
                state[i] = 2;
                order[(*n_order)++] = i;
                top--;
                continue;
            }
            const int v = dependency(n, cursor[i]++);
            if (v < 0 || v >= g->n_values || prod[v] < 0 || state[prod[v]] == 2) continue;
            if (state[prod[v]] == 1)
                rc = oct_fail(err, OCTET_ERR_FORMAT, "the graph has a cycle through node '%s' (value '%s')",
                              n->name, vname(g, v));
            else {
                state[prod[v]] = 1;
                stack[top++] = prod[v];
            }
        }
    }
done:
    free(state);
    free(stack);
    free(cursor);
    return rc;
}

/* Each node live, written once, and reading only graph inputs, constants or earlier outputs. */
static int check_order(const oct_graph *g, const int *order, int n_order, octet_error *err) {
    bool *avail = calloc((size_t)g->n_values + 1, sizeof(bool));
    bool *seen = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    int rc = 0;
    if (!avail || !seen) {
        rc = oct_fail(err, OCTET_ERR_NOMEM, "out of memory checking the nodes to write");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++)
        avail[v] = g->values[v].kind == OCT_VAL_CONST || g->values[v].kind == OCT_VAL_INPUT;
    for (int k = 0; k < n_order && !rc; k++) {
        const int i = order[k];
        if (i < 0 || i >= g->n_nodes) {
            rc = oct_fail(err, OCTET_ERR_ARG, "node order entry %d is %d; the graph has %d nodes", k, i, g->n_nodes);
            break;
        }
        const oct_node *n = &g->nodes[i];
        if (n->dead || seen[i]) {
            rc = oct_fail(err, OCTET_ERR_ARG, "node '%s' in the node order is %s", n->name,
                          n->dead ? "dead" : "listed twice");
            break;
        }
        seen[i] = true;
        for (int j = 0; j <= n->n_in && !rc; j++) {
            const int v = dependency(n, j);
            if (v >= g->n_values)
                rc = oct_fail(err, OCTET_ERR_FORMAT, "node '%s' reads value %d, beyond the graph's %d values",
                              n->name, v, g->n_values);
            else if (v >= 0 && !avail[v])
                rc = oct_fail(err, OCTET_ERR_FORMAT,
                              "node '%s' (%s) reads '%s', which no earlier node, graph input or constant "
                              "provides", n->name, n->op_type, vname(g, v));
        }
        for (int j = 0; j < n->n_out && !rc; j++)
            if (n->out[j] >= 0 && n->out[j] < g->n_values) avail[n->out[j]] = true;
    }
    for (int k = 0; k < g->n_outputs && !rc; k++) {
        const int v = g->outputs[k];
        if (v < 0 || v >= g->n_values || !avail[v])
            rc = oct_fail(err, OCTET_ERR_FORMAT, "graph output '%s' is not produced by any written node",
                          vname(g, v));
    }
done:
    free(avail);
    free(seen);
    return rc;
}

/* ValueInfoProto of value v: dtype (omitted while unknown) and shape (omitted while the rank is
   unknown); a dimension named in dim_params, or by batch_name for axis 0, is written symbolic. */
static Onnx__ValueInfoProto *value_info(oct_wctx *c, int v, const char *batch_name) {
    const oct_value *val = &c->g->values[v];
    Onnx__ValueInfoProto *vi = owx_alloc(c, sizeof *vi);
    if (!vi) return NULL;
    onnx__value_info_proto__init(vi);
    vi->name = (char *)(uintptr_t)val->name;
    if (val->dtype == 0) return vi;
    Onnx__TypeProto *tp = owx_alloc(c, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = owx_alloc(c, sizeof *tt);
    if (!tp || !tt) return NULL;
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)val->dtype;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    if (val->rank < 0) return vi;
    if (val->rank > OCTET_MAX_RANK) {
        oct_fail(c->err, OCTET_ERR_FORMAT, "value '%s' has rank %d", val->name, val->rank);
        return NULL;
    }
    Onnx__TensorShapeProto *sp = owx_alloc(c, sizeof *sp);
    Onnx__TensorShapeProto__Dimension **dims = owx_alloc(c, ((size_t)val->rank + 1) * sizeof *dims);
    if (!sp || !dims) return NULL;
    onnx__tensor_shape_proto__init(sp);
    for (int d = 0; d < val->rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = owx_alloc(c, sizeof *dim);
        if (!dim) return NULL;
        onnx__tensor_shape_proto__dimension__init(dim);
        const char *param = val->dim_params[d] ? val->dim_params[d] : d == 0 ? batch_name : NULL;
        if (param) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = (char *)(uintptr_t)param;
        } else if (val->dims[d] >= 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = val->dims[d];
        } /* else unknown: neither is set */
        dims[d] = dim;
    }
    sp->n_dim = (size_t)val->rank;
    sp->dim = dims;
    tt->shape = sp;
    return vi;
}

/* A plan fixes a symbolic batch to a number. An output whose first dim equals a symbolic graph
   input's planned first dim is taken to follow the batch and gets the same name, so that the
   written model still runs at any batch. */
static const char *output_batch_name(const oct_graph *g, const oct_value *out) {
    if (out->rank < 1 || out->dim_params[0]) return NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        const oct_value *in = &g->values[g->inputs[i]];
        if (in->kind == OCT_VAL_INPUT && in->rank >= 1 && in->dim_params[0] && in->dims[0] >= 0 &&
            in->dims[0] == out->dims[0])
            return in->dim_params[0];
    }
    return NULL;
}

static int write_io(oct_wctx *c, Onnx__GraphProto *gp) {
    const oct_graph *g = c->g;
    gp->input = owx_alloc(c, ((size_t)g->n_inputs + 1) * sizeof *gp->input);
    gp->output = owx_alloc(c, ((size_t)g->n_outputs + 1) * sizeof *gp->output);
    if (!gp->input || !gp->output) return -1;
    for (int i = 0; i < g->n_inputs; i++) {
        const int v = g->inputs[i];
        if (v < 0 || v >= g->n_values)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "graph input %d refers to value %d", i, v);
        /* inputs a plan bound to values are constants now: initializers if read, else gone */
        if (g->values[v].kind != OCT_VAL_INPUT) continue;
        if (!(gp->input[gp->n_input++] = value_info(c, v, NULL))) return -1;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const int v = g->outputs[i]; /* in range: check_order looked */
        if (g->values[v].kind == OCT_VAL_CONST && owx_initializer(c, v))
            return oct_fail_context(c->err, "graph output");
        if (!(gp->output[gp->n_output++] = value_info(c, v, output_batch_name(g, &g->values[v])))) return -1;
    }
    return 0;
}

static Onnx__OperatorSetIdProto *opset(oct_wctx *c, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *o = owx_alloc(c, sizeof *o);
    if (!o) return NULL;
    onnx__operator_set_id_proto__init(o);
    o->domain = (char *)(uintptr_t)domain;
    o->has_version = 1;
    o->version = version;
    return o;
}

static int build_model(oct_wctx *c, const int *order, int n_order, Onnx__ModelProto *m) {
    const oct_graph *g = c->g;
    if (g->opset < 1)
        return oct_fail(c->err, OCTET_ERR_FORMAT, "the graph has no ONNX opset (%lld)", (long long)g->opset);
    /* epilogues add at most 3 nodes (Add, activation, Mul) and 2 initializers (Clip bounds) */
    c->cap_nodes = 4 * (size_t)n_order + 1;
    c->cap_inits = (size_t)g->n_values + 2 * (size_t)n_order + 1;
    c->nodes = owx_alloc(c, c->cap_nodes * sizeof *c->nodes);
    c->inits = owx_alloc(c, c->cap_inits * sizeof *c->inits);
    c->is_init = owx_alloc(c, (size_t)g->n_values + 1);
    if (!c->nodes || !c->inits || !c->is_init) return -1;
    for (int v = 0; v < g->n_values; v++) {
        if (!g->values[v].name)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "value %d has no name", v);
        if (owx_name_take(c, g->values[v].name)) return -1;
    }
    for (int k = 0; k < n_order; k++)
        if (g->nodes[order[k]].name && owx_name_take(c, g->nodes[order[k]].name)) return -1;
    for (int k = 0; k < n_order; k++)
        if (owx_write_node(c, &g->nodes[order[k]])) return -1;

    Onnx__GraphProto *gp = owx_alloc(c, sizeof *gp);
    Onnx__OperatorSetIdProto **ops = owx_alloc(c, 4 * sizeof *ops);
    if (!gp || !ops) return -1;
    onnx__graph_proto__init(gp);
    if (write_io(c, gp)) return -1;
    gp->name = (char *)(uintptr_t)(g->name && *g->name ? g->name : "octet_graph"); /* ONNX wants one */
    gp->node = c->nodes;
    gp->n_node = c->n_nodes;
    gp->initializer = c->inits;
    gp->n_initializer = c->n_inits;

    size_t n_ops = 0;
    if (!(ops[n_ops++] = opset(c, "", g->opset))) return -1;
    if (c->uses_ms && !(ops[n_ops++] = opset(c, "com.microsoft", g->ms_opset > 0 ? g->ms_opset : 1))) return -1;
    if (c->uses_octet && !(ops[n_ops++] = opset(c, "octet", 1))) return -1;
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = WRITE_IR_VERSION;
    m->opset_import = ops;
    m->n_opset_import = n_ops;
    m->producer_name = "octet";
    m->producer_version = (char *)(uintptr_t)octet_version();
    m->graph = gp;
    return 0;
}

static void wctx_free(oct_wctx *c) {
    for (size_t i = 0; i < c->n_allocs; i++) free(c->allocs[i]);
    free(c->allocs);
    free(c->names);
}

/* Builds the model and hands it to emit (which packs it somewhere). order NULL: every live
   node, topologically. */
static int with_model(const oct_graph *g, const int *order, int n_order, octet_error *err,
                      int (*emit)(const Onnx__ModelProto *m, size_t size, void *arg, octet_error *err), void *arg) {
    if (!g) return oct_fail(err, OCTET_ERR_ARG, "no graph to write");
    if (order && n_order < 0) return oct_fail(err, OCTET_ERR_ARG, "negative node count %d", n_order);
    int *own = NULL, *prod = NULL, rc = -1;
    oct_wctx c = {.g = g, .err = err};
    if (!order) {
        own = malloc(((size_t)g->n_nodes + 1) * sizeof(int));
        prod = malloc(((size_t)g->n_values + 1) * sizeof(int));
        if (!own || !prod) {
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory ordering the nodes to write");
            goto done;
        }
        if (collect_producers(g, prod, err) || topo_order(g, prod, own, &n_order, err)) goto done;
        order = own;
    }
    if (check_order(g, order, n_order, err)) goto done;
    Onnx__ModelProto m;
    if (build_model(&c, order, n_order, &m)) goto done;
    size_t size = onnx__model_proto__get_packed_size(&m);
    if (size > MAX_MODEL_BYTES) {
        oct_fail(err, OCTET_ERR_UNSUPPORTED, "the model would take %zu bytes; ONNX files are limited to 2 GiB "
                 "and octet does not write external data", size);
        goto done;
    }
    rc = emit(&m, size, arg, err);
done:
    wctx_free(&c);
    free(own);
    free(prod);
    return rc;
}

typedef struct {
    void **bytes;
    size_t *size;
} mem_out;

static int emit_memory(const Onnx__ModelProto *m, size_t size, void *arg, octet_error *err) {
    mem_out *o = arg;
    uint8_t *buf = malloc(size + 1);
    if (!buf) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory serialising the model (%zu bytes)", size);
    if (onnx__model_proto__pack(m, buf) != size) {
        free(buf);
        return oct_fail(err, OCTET_ERR_INTERNAL, "protobuf-c packed a different size than it announced");
    }
    *o->bytes = buf;
    *o->size = size;
    return 0;
}

/* A protobuf-c output buffer that streams into a file, so the model is never held twice. */
typedef struct {
    ProtobufCBuffer base;
    FILE *f;
    int failed; /* errno of the first failed write */
} file_sink;

static void file_sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_sink *s = (file_sink *)b;
    if (!s->failed && len && fwrite(data, 1, len, s->f) != len) s->failed = errno ? errno : EIO;
}

static int emit_file(const Onnx__ModelProto *m, size_t size, void *arg, octet_error *err) {
    const char *path = arg;
    errno = 0;
    FILE *f = fopen(path, "wb");
    if (!f) return oct_fail(err, OCTET_ERR_IO, "cannot open '%s' for writing: %s", path, strerror(errno));
    file_sink s = {{file_sink_append}, f, 0};
    errno = 0;
    size_t packed = onnx__model_proto__pack_to_buffer(m, &s.base);
    if (!s.failed && fflush(f)) s.failed = errno ? errno : EIO;
    if (fclose(f) && !s.failed) s.failed = errno ? errno : EIO;
    if (s.failed || packed != size) {
        unlink(path); /* no truncated model left behind */
        return s.failed ? oct_fail(err, OCTET_ERR_IO, "writing '%s' failed: %s", path, strerror(s.failed))
                        : oct_fail(err, OCTET_ERR_INTERNAL, "protobuf-c packed a different size than it announced");
    }
    return 0;
}

int oct_onnx_serialize(const oct_graph *g, const int *order, int n_order, void **bytes, size_t *size,
                       octet_error *err) {
    if (!bytes || !size) return oct_fail(err, OCTET_ERR_ARG, "no output buffer to serialise the model into");
    *bytes = NULL;
    *size = 0;
    mem_out o = {bytes, size};
    return with_model(g, order, n_order, err, emit_memory, &o);
}

int oct_onnx_write_nodes(const oct_graph *g, const int *order, int n_order, const char *path, octet_error *err) {
    if (!path || !*path) return oct_fail(err, OCTET_ERR_ARG, "no path to write the model to");
    if (with_model(g, order, n_order, err, emit_file, (void *)(uintptr_t)path))
        return oct_fail_context(err, "writing ONNX model '%s'", path);
    return 0;
}

int oct_onnx_write(const oct_graph *g, const char *path, octet_error *err) {
    return oct_onnx_write_nodes(g, NULL, 0, path, err);
}
