/* ONNX ModelProto -> oct_graph. Validates opsets, names, dtypes, shapes and attributes, and
   fails with a message naming the node or tensor at fault. */
#include <inttypes.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "name_map.h"
#include "onnx_internal.h"

/* Default-domain opsets whose operators octet implements. Opsets below 7 are accepted because
   ops unchanged since opset 1 (GlobalAveragePool, ...) are still exported with opset 1. */
#define OPSET_MIN 1
#define OPSET_MAX 17

typedef struct {
    oct_graph *g;
    oct_name_map names;
    const char *base_dir;
    octet_error *err;
    int has_ms_domain;
    const oct_pb_slice *raw_slices; /* per initializer, where its raw_data lies in the buffer (or NULL) */
    oct_pb_slice *value_sources;     /* out: per value (grown with the graph), or NULL when unwanted */
    int n_value_sources;
} parse_ctx;

static char *dup_bytes(const void *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static int nomem(parse_ctx *c, const char *what) {
    return oct_fail(c->err, OCTET_ERR_NOMEM, "out of memory loading %s", what);
}

/* Adds a value and indexes its name; fails if the name is already defined. */
static int add_named_value(parse_ctx *c, const char *name, const char *role) {
    int prev = oct_name_map_find(&c->names, c->g, name);
    if (prev >= 0)
        return oct_fail(c->err, OCTET_ERR_FORMAT, "%s '%s' is defined twice", role, name);
    int v = oct_graph_add_value(c->g, name, c->err);
    if (v < 0) return -1;
    if (oct_name_map_put(&c->names, c->g, v)) return nomem(c, name);
    return v;
}

static int is_default_domain(const char *d) {
    return !d || !*d || !strcmp(d, "ai.onnx");
}

static int read_opsets(parse_ctx *c, const Onnx__ModelProto *m) {
    int64_t opset = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (is_default_domain(o->domain)) opset = o->version;
        else if (!strcmp(o->domain, "com.microsoft")) {
            c->g->ms_opset = o->version;
            c->has_ms_domain = 1;
        }
    }
    if (opset < OPSET_MIN || opset > OPSET_MAX)
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED,
                        "the model uses ONNX opset %" PRId64 "; octet supports opsets %d to %d",
                        opset, OPSET_MIN, OPSET_MAX);
    c->g->opset = opset;
    return 0;
}

static int read_initializers(parse_ctx *c, Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "initializer %zu has no name", i);
        int v = add_named_value(c, tp->name, "initializer");
        if (v < 0) return -1;
        oct_tensor t;
        if (oct_pb_tensor_take(tp, c->base_dir, &t, c->err))
            return oct_fail_context(c->err, "initializer '%s'", tp->name);
        oct_value_set_const(&c->g->values[v], t.dtype, t.rank, t.dims, t.data);
        if (c->value_sources && c->raw_slices && c->raw_slices[i].present) {
            if (v >= c->n_value_sources) {
                int cap = c->n_value_sources ? c->n_value_sources : 64;
                while (cap <= v) cap *= 2;
                oct_pb_slice *grown = realloc(c->value_sources, (size_t)cap * sizeof *grown);
                if (!grown) return nomem(c, "the initializer table");
                memset(grown + c->n_value_sources, 0, (size_t)(cap - c->n_value_sources) * sizeof *grown);
                c->value_sources = grown;
                c->n_value_sources = cap;
            }
            c->value_sources[v] = c->raw_slices[i];
        }
    }
    return 0;
}

/* Type and shape of a graph input from its ValueInfoProto. */
static int read_value_type(parse_ctx *c, const Onnx__ValueInfoProto *vi, oct_value *v) {
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED,
                        "graph input '%s' is not a tensor (sequences, maps and optionals are not "
                        "supported)", v->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int32_t dt = tt->elem_type;
    if (dt != OCTET_FLOAT && dt != OCTET_UINT8 && dt != OCTET_INT8 && dt != OCTET_INT32 &&
        dt != OCTET_INT64 && dt != OCTET_BOOL)
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "graph input '%s' has data type %s (%d)",
                        v->name, oct_onnx_dtype_name(dt), (int)dt);
    v->dtype = (octet_dtype)dt;
    if (!tt->shape) return 0; /* rank unknown: stays -1 */
    if (tt->shape->n_dim > OCTET_MAX_RANK)
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "graph input '%s' has rank %zu, at most %d",
                        v->name, tt->shape->n_dim, OCTET_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int d = 0; d < v->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        v->dims[d] = -1; /* symbolic or unknown; dim_params names it when the file does */
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dim->dim_value < 0)
                return oct_fail(c->err, OCTET_ERR_FORMAT,
                                "graph input '%s' has negative dimension %" PRId64 " at axis %d",
                                v->name, dim->dim_value, d);
            v->dims[d] = dim->dim_value;
        } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   dim->dim_param) {
            if (!(v->dim_params[d] = dup_bytes(dim->dim_param, strlen(dim->dim_param))))
                return nomem(c, v->name);
        }
    }
    return 0;
}

static int read_inputs(parse_ctx *c, const Onnx__GraphProto *gp) {
    c->g->inputs = calloc(gp->n_input + 1, sizeof(int));
    if (!c->g->inputs) return nomem(c, "graph inputs");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "graph input %zu has no name", i);
        int prev = oct_name_map_find(&c->names, c->g, vi->name);
        /* IR version < 4 lists initializers among the inputs too */
        if (prev >= 0 && c->g->values[prev].kind == OCT_VAL_CONST) continue;
        int v = add_named_value(c, vi->name, "graph input");
        if (v < 0) return -1;
        oct_value *val = &c->g->values[v];
        val->kind = OCT_VAL_INPUT;
        if (read_value_type(c, vi, val)) return -1;
        c->g->inputs[c->g->n_inputs++] = v;
    }
    return 0;
}

static int read_attribute(parse_ctx *c, const Onnx__NodeProto *np, Onnx__AttributeProto *ap,
                          oct_attr *a) {
    const char *node = c->g->nodes[c->g->n_nodes - 1].name;
    if (!ap->name || !*ap->name)
        return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' (%s) has an attribute without a name",
                        node, np->op_type);
    if (!(a->name = dup_bytes(ap->name, strlen(ap->name)))) return nomem(c, node);
    int type = ap->type;
    if (type == OCT_ATTR_UNDEFINED) { /* IR version 1 files carry no type: infer it */
        if (ap->has_f) type = OCT_ATTR_FLOAT;
        else if (ap->has_i) type = OCT_ATTR_INT;
        else if (ap->has_s) type = OCT_ATTR_STRING;
        else if (ap->t) type = OCT_ATTR_TENSOR;
        else if (ap->g) type = OCT_ATTR_GRAPH;
        else if (ap->n_floats) type = OCT_ATTR_FLOATS;
        else if (ap->n_ints) type = OCT_ATTR_INTS;
        else if (ap->n_strings) type = OCT_ATTR_STRINGS;
    }
    a->type = (oct_attr_type)type;
    switch (type) {
    case OCT_ATTR_FLOAT: a->f = ap->f; return 0;
    case OCT_ATTR_INT: a->i = ap->i; return 0;
    case OCT_ATTR_STRING:
        if (!(a->s = dup_bytes(ap->s.data, ap->s.len))) return nomem(c, node);
        return 0;
    case OCT_ATTR_TENSOR:
        if (!ap->t)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' (%s): tensor attribute '%s' is empty",
                            node, np->op_type, ap->name);
        if (!(a->t = malloc(sizeof *a->t))) return nomem(c, node);
        if (oct_pb_tensor_take(ap->t, c->base_dir, a->t, c->err)) {
            free(a->t);
            a->t = NULL;
            return oct_fail_context(c->err, "node '%s' (%s) attribute '%s'", node, np->op_type,
                                    ap->name);
        }
        return 0;
    case OCT_ATTR_FLOATS:
    case OCT_ATTR_INTS:
    case OCT_ATTR_STRINGS: {
        size_t n = type == OCT_ATTR_FLOATS ? ap->n_floats : type == OCT_ATTR_INTS ? ap->n_ints : ap->n_strings;
        if (n > INT_MAX)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s': attribute '%s' is too long", node,
                            ap->name);
        a->n = (int)n;
        if (type == OCT_ATTR_FLOATS) {
            if (!(a->floats = malloc(n * sizeof(float) + 1))) return nomem(c, node);
            if (n) memcpy(a->floats, ap->floats, n * sizeof(float));
        } else if (type == OCT_ATTR_INTS) {
            if (!(a->ints = malloc(n * sizeof(int64_t) + 1))) return nomem(c, node);
            if (n) memcpy(a->ints, ap->ints, n * sizeof(int64_t));
        } else {
            if (!(a->strings = calloc(n + 1, sizeof(char *)))) return nomem(c, node);
            for (size_t i = 0; i < n; i++)
                if (!(a->strings[i] = dup_bytes(ap->strings[i].data, ap->strings[i].len)))
                    return nomem(c, node);
        }
        return 0;
    }
    case OCT_ATTR_GRAPH:
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED,
                        "node '%s' (%s): attribute '%s' is a subgraph; control flow (If, Loop, Scan) "
                        "is not supported", node, np->op_type, ap->name);
    default:
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED,
                        "node '%s' (%s): attribute '%s' has unsupported type %d", node, np->op_type,
                        ap->name, type);
    }
}

static int check_domain(parse_ctx *c, const Onnx__NodeProto *np, const char *name) {
    if (is_default_domain(np->domain)) return 0;
    /* octet's own int8 ops (QLinearConvTranspose, QLinearLut, ...), as oct_onnx_write writes them */
    if (!strcmp(np->domain, "octet")) return 0;
    if (!strcmp(np->domain, "com.microsoft")) {
        if (c->has_ms_domain) return 0;
        return oct_fail(c->err, OCTET_ERR_FORMAT,
                        "node '%s' (%s) uses domain com.microsoft, which the model does not import",
                        name, np->op_type);
    }
    return oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "node '%s' (%s) uses domain '%s', which octet "
                    "does not support", name, np->op_type, np->domain);
}

/* Creates the node and values for its outputs; inputs are resolved later, once every
   output in the graph has a value. */
static int read_node(parse_ctx *c, size_t idx, Onnx__NodeProto *np) {
    if (!np->op_type || !*np->op_type)
        return oct_fail(c->err, OCTET_ERR_FORMAT, "node %zu has no op_type", idx);
    char fallback[64];
    const char *name = np->name;
    if (!name || !*name) { /* unnamed nodes get one so that errors can point at them */
        snprintf(fallback, sizeof fallback, "%.40s_%zu", np->op_type, idx);
        name = fallback;
    }
    if (check_domain(c, np, name)) return -1;
    if (np->n_input > INT_MAX / 2 || np->n_output > INT_MAX / 2)
        return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' has too many inputs or outputs", name);
    int ni = oct_graph_add_node(c->g, name, np->op_type,
                                is_default_domain(np->domain) ? "" : np->domain,
                                (int)np->n_input, (int)np->n_output, c->err);
    if (ni < 0) return -1;
    if (np->n_attribute) {
        oct_node *n = &c->g->nodes[ni];
        n->attrs = calloc(np->n_attribute, sizeof(oct_attr));
        if (!n->attrs) return nomem(c, name);
        for (size_t i = 0; i < np->n_attribute; i++) {
            n->n_attr = (int)i + 1;
            if (read_attribute(c, np, np->attribute[i], &n->attrs[i])) return -1;
            for (size_t j = 0; j < i; j++)
                if (!strcmp(n->attrs[j].name, n->attrs[i].name))
                    return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' (%s) has attribute '%s' twice",
                                    name, np->op_type, n->attrs[i].name);
        }
    }
    for (size_t j = 0; j < np->n_output; j++) {
        const char *oname = np->output[j];
        char unnamed[128];
        if (!*oname) {
            /* an omitted optional output still gets a value so ops can write it unconditionally */
            snprintf(unnamed, sizeof unnamed, "%.80s:unused_output_%zu", name, j);
            for (int k = 1; oct_name_map_find(&c->names, c->g, unnamed) >= 0; k++)
                snprintf(unnamed, sizeof unnamed, "%.80s:unused_output_%zu_%d", name, j, k);
            oname = unnamed;
        }
        int v = oct_name_map_find(&c->names, c->g, oname);
        if (v >= 0) {
            const oct_value *pv = &c->g->values[v];
            return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' (%s): output '%s' is already %s",
                            name, np->op_type, oname,
                            pv->kind == OCT_VAL_CONST ? "an initializer"
                            : pv->kind == OCT_VAL_INPUT ? "a graph input"
                                                        : "produced by another node");
        }
        if ((v = add_named_value(c, oname, "value")) < 0) return -1;
        c->g->values[v].producer = ni;
        c->g->nodes[ni].out[j] = v;
    }
    return 0;
}

static int resolve_inputs(parse_ctx *c, const Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        oct_node *n = &c->g->nodes[i];
        for (size_t j = 0; j < np->n_input; j++) {
            if (!*np->input[j]) continue; /* omitted optional input: stays -1 */
            int v = oct_name_map_find(&c->names, c->g, np->input[j]);
            if (v < 0)
                return oct_fail(c->err, OCTET_ERR_FORMAT,
                                "node '%s' (%s): input '%s' is not a graph input, an initializer or "
                                "the output of any node", n->name, n->op_type, np->input[j]);
            n->in[j] = v;
        }
    }
    return 0;
}

static int read_outputs(parse_ctx *c, const Onnx__GraphProto *gp) {
    if (!gp->n_output) return oct_fail(c->err, OCTET_ERR_FORMAT, "the graph has no outputs");
    c->g->outputs = calloc(gp->n_output + 1, sizeof(int));
    if (!c->g->outputs) return nomem(c, "graph outputs");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name;
        int v = name ? oct_name_map_find(&c->names, c->g, name) : -1;
        if (v < 0)
            return oct_fail(c->err, OCTET_ERR_FORMAT,
                            "graph output '%s' is not produced by any node, input or initializer",
                            name ? name : "");
        c->g->values[v].is_output = true;
        c->g->outputs[c->g->n_outputs++] = v;
    }
    return 0;
}

static int build_graph(parse_ctx *c, Onnx__ModelProto *m) {
    Onnx__GraphProto *gp = m->graph;
    if (read_opsets(c, m)) return -1;
    if (!(c->g->name = dup_bytes(gp->name ? gp->name : "", gp->name ? strlen(gp->name) : 0)))
        return nomem(c, "the graph");
    if (gp->n_sparse_initializer)
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "sparse initializer '%s' is not supported",
                        gp->sparse_initializer[0]->values && gp->sparse_initializer[0]->values->name
                            ? gp->sparse_initializer[0]->values->name : "");
    if (read_initializers(c, gp) || read_inputs(c, gp)) return -1;
    for (size_t i = 0; i < gp->n_node; i++)
        if (read_node(c, i, gp->node[i])) return -1;
    if (resolve_inputs(c, gp) || read_outputs(c, gp)) return -1;
    /* Rejects cycles (a node fed by its own output) now rather than at planning time. */
    return oct_graph_toposort(c->g, c->err);
}

/* Gives each initializer of the skeleton its raw_data, copied from the original buffer one
   tensor at a time; with release_pages, the pages of the (mapped, read-only) original that a
   copy has read are returned to the kernel right away. */
static int attach_raw_data(Onnx__ModelProto *m, const uint8_t *buf, const oct_pb_slice *slices, size_t n,
                           int release_pages, octet_error *err) {
    Onnx__GraphProto *gp = m->graph;
    if (!gp || gp->n_initializer != n)
        return oct_fail(err, OCTET_ERR_INTERNAL, "initializer count changed while splitting the model");
    for (size_t i = 0; i < n; i++) {
        if (!slices[i].present) continue;
        Onnx__TensorProto *tp = gp->initializer[i];
        uint8_t *copy = oct_pb_slice_copy(buf, &slices[i], release_pages);
        if (!copy) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading initializer %zu", i);
        tp->raw_data.data = copy;
        tp->raw_data.len = slices[i].len;
        tp->has_raw_data = 1;
    }
    return 0;
}

/* Wire check, then protobuf-c on the skeleton without raw_data, then the raw_data copies;
   *slices (caller frees) keeps where each initializer's raw_data lies. */
static Onnx__ModelProto *unpack_model(const uint8_t *buf, size_t size, int release_pages, oct_pb_slice **slices,
                                      octet_error *err) {
    *slices = NULL;
    if (oct_pb_wire_check(&onnx__model_proto__descriptor, buf, size, "ONNX model", err)) return NULL;
    uint8_t *skeleton;
    size_t skeleton_len, n_slices;
    if (oct_pb_split_raw_data(buf, size, &skeleton, &skeleton_len, slices, &n_slices, err)) return NULL;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, skeleton_len, skeleton);
    free(skeleton);
    if (!m) {
        oct_fail(err, OCTET_ERR_FORMAT, "not a valid ONNX model: protobuf decoding failed");
    } else if (m->graph && attach_raw_data(m, buf, *slices, n_slices, release_pages, err)) {
        onnx__model_proto__free_unpacked(m, NULL);
        m = NULL;
    }
    if (!m) {
        free(*slices);
        *slices = NULL;
    }
    return m;
}

oct_graph *oct_onnx_parse_buffer(const void *bytes, size_t size, const char *base_dir, int release_pages,
                                 oct_pb_slice **value_sources, octet_error *err) {
    if (value_sources) *value_sources = NULL;
    if (!bytes || !size) {
        oct_fail(err, OCTET_ERR_FORMAT, "not a valid ONNX model: the input is empty");
        return NULL;
    }
    oct_pb_slice *slices;
    Onnx__ModelProto *m = unpack_model(bytes, size, release_pages, &slices, err);
    if (!m) return NULL;
    if (!m->graph || (!m->n_opset_import && !m->has_ir_version)) {
        oct_fail(err, OCTET_ERR_FORMAT, "not a valid ONNX model: it has no %s",
                 m->graph ? "IR version or opset" : "graph");
        onnx__model_proto__free_unpacked(m, NULL);
        free(slices);
        return NULL;
    }
    parse_ctx c = {oct_graph_new(), {0}, base_dir, err, 0, slices, NULL, 0};
    if (value_sources && !(c.value_sources = calloc(64, sizeof *c.value_sources))) c.g = (oct_graph_free(c.g), NULL);
    c.n_value_sources = c.value_sources ? 64 : 0;
    oct_name_map_init(&c.names);
    int rc = c.g ? build_graph(&c, m) : nomem(&c, "the graph");
    oct_name_map_free(&c.names);
    onnx__model_proto__free_unpacked(m, NULL);
    free(slices);
    if (rc) {
        oct_graph_free(c.g);
        free(c.value_sources);
        return NULL;
    }
    /* one entry per value of the final graph */
    if (value_sources) {
        oct_pb_slice *fit = realloc(c.value_sources, ((size_t)c.g->n_values + 1) * sizeof *fit);
        if (!fit) {
            free(c.value_sources);
            oct_graph_free(c.g);
            nomem(&c, "the initializer table");
            return NULL;
        }
        for (int v = c.n_value_sources; v < c.g->n_values; v++) fit[v] = (oct_pb_slice){0, 0, 0};
        *value_sources = fit;
    }
    return c.g;
}

oct_graph *oct_onnx_parse(const void *bytes, size_t size, const char *base_dir, octet_error *err) {
    return oct_onnx_parse_buffer(bytes, size, base_dir, 0, NULL, err);
}
