/* Helpers of the QDQ lowering; see qdq_common.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../op.h"
#include "qdq_common.h"

static bool default_domain(const oct_node *n) {
    return !n->domain || !*n->domain || strcmp(n->domain, "ai.onnx") == 0;
}

bool qdq_is(const oct_node *n, const char *type) {
    return !n->dead && default_domain(n) && strcmp(n->op_type, type) == 0;
}

int qdq_producer(const oct_graph *g, int v) {
    if (v < 0) return -1;
    const int p = g->values[v].producer;
    return p >= 0 && !g->nodes[p].dead ? p : -1;
}

int qdq_consumers(const oct_graph *g, int v, int *who, int max) {
    int cnt = 0;
    if (v < 0) return 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *n = &g->nodes[i];
        if (n->dead) continue;
        int uses = n->epi.residual == v;
        for (int j = 0; j < n->n_in; j++) uses += n->in[j] == v;
        for (int u = 0; u < uses; u++) {
            if (cnt < max) who[cnt] = i;
            cnt++;
        }
    }
    return cnt;
}

bool qdq_only_reader(const oct_graph *g, int v, int reader) {
    int who[2];
    if (v < 0 || g->values[v].is_output) return false;
    return qdq_consumers(g, v, who, 2) == 1 && who[0] == reader;
}

static bool is_const(const oct_graph *g, int v) {
    return v >= 0 && g->values[v].kind == OCT_VAL_CONST && g->values[v].data;
}

int qdq_read(const oct_graph *g, int node, qdq_param *p, const char **why) {
    const oct_node *n = &g->nodes[node];
    const bool is_q = strcmp(n->op_type, "QuantizeLinear") == 0;
    memset(p, 0, sizeof *p);
    p->node = node;
    p->f = is_q ? n->in[0] : n->out[0];
    p->q = is_q ? n->out[0] : n->in[0];
    p->scale = n->n_in > 1 ? n->in[1] : -1;
    p->zp = oct_node_has_input(n, 2) ? n->in[2] : -1;
    if (oct_attr_int(n, "block_size", 0) != 0) {
        *why = "blocked quantization (block_size)";
        return 0;
    }
    if (!is_const(g, p->scale) || g->values[p->scale].dtype != OCTET_FLOAT) {
        *why = "quantization scale is not a constant";
        return 0;
    }
    if (p->zp >= 0 && !is_const(g, p->zp)) {
        *why = "zero point is not a constant";
        return 0;
    }
    const oct_value *s = &g->values[p->scale];
    p->count = oct_value_numel(s);
    if (p->count < 1) {
        *why = "quantization scale is empty";
        return 0;
    }
    for (int64_t i = 0; i < p->count; i++) {
        const float v = ((const float *)s->data)[i];
        if (!(v > 0.f) || !isfinite(v)) {
            *why = "quantization scale is zero, negative or not finite";
            return 0;
        }
    }
    /* A Q without zero point writes uint8, or output_dtype (opset 21). */
    const octet_dtype q_default = (octet_dtype)oct_attr_int(n, "output_dtype", OCTET_UINT8);
    p->qtype = p->zp >= 0 ? g->values[p->zp].dtype : (is_q ? q_default : g->values[p->q].dtype);
    if (p->zp >= 0 && oct_value_numel(&g->values[p->zp]) != 1 && oct_value_numel(&g->values[p->zp]) != p->count) {
        *why = "zero point and scale lengths differ";
        return 0;
    }
    p->axis = 0;
    if (p->count > 1) {
        const oct_value *x = &g->values[p->q];
        int64_t axis = oct_attr_int(n, "axis", 1);
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank || x->dims[axis] != p->count) {
            *why = "per-axis scale does not match its axis";
            return 0;
        }
        p->axis = (int)axis;
    }
    return 1;
}

int qdq_from_dq(const oct_graph *g, int v, bool activation, qdq_param *p, const char **why) {
    const int d = qdq_producer(g, v);
    if (d < 0 || !qdq_is(&g->nodes[d], "DequantizeLinear")) {
        *why = "input not from DequantizeLinear";
        return 0;
    }
    if (!qdq_read(g, d, p, why)) return 0;
    if (activation && p->qtype != OCTET_UINT8 && p->qtype != OCTET_INT8) {
        *why = "input is not 8-bit";
        return 0;
    }
    if (activation && p->count != 1) {
        *why = "per-channel activation scale";
        return 0;
    }
    return 1;
}

int qdq_to_q(const oct_graph *g, int v, qdq_param *p, const char **why) {
    int who[2];
    const int nc = qdq_consumers(g, v, who, 2);
    if (nc == 0 || g->values[v].is_output) {
        *why = g->values[v].is_output ? "output is a graph output in fp32" : "no QuantizeLinear after it";
        return 0;
    }
    if (nc > 1) {
        *why = "output also read in fp32";
        return 0;
    }
    const oct_node *q = &g->nodes[who[0]];
    if (!qdq_is(q, "QuantizeLinear") || q->in[0] != v) {
        *why = "no QuantizeLinear after it";
        return 0;
    }
    if (!qdq_read(g, who[0], p, why)) return 0;
    if (p->qtype != OCTET_UINT8 && p->qtype != OCTET_INT8) {
        *why = "output quantized to a type other than uint8/int8";
        return 0;
    }
    if (p->count != 1) {
        *why = "per-channel activation scale";
        return 0;
    }
    return 1;
}

float qdq_scale_at(const oct_graph *g, const qdq_param *p, int64_t i) {
    return ((const float *)g->values[p->scale].data)[p->count > 1 ? i : 0];
}

int32_t qdq_zp_at(const oct_graph *g, const qdq_param *p, int64_t i) {
    if (p->zp < 0) return 0;
    const oct_value *z = &g->values[p->zp];
    const int64_t j = oct_value_numel(z) > 1 ? i : 0;
    switch (z->dtype) {
    case OCTET_UINT8: return ((const uint8_t *)z->data)[j];
    case OCTET_INT8: return ((const int8_t *)z->data)[j];
    case OCTET_INT32: return ((const int32_t *)z->data)[j];
    default: return 0;
    }
}

bool qdq_same_params(const oct_graph *g, const qdq_param *a, const qdq_param *b) {
    if (a->qtype != b->qtype || a->count != 1 || b->count != 1) return false;
    const float sa = qdq_scale_at(g, a, 0), sb = qdq_scale_at(g, b, 0);
    return memcmp(&sa, &sb, sizeof sa) == 0 && qdq_zp_at(g, a, 0) == qdq_zp_at(g, b, 0);
}

int32_t qdq_type_min(octet_dtype t) { return t == OCTET_INT8 ? -128 : 0; }
int32_t qdq_type_max(octet_dtype t) { return t == OCTET_INT8 ? 127 : 255; }

int32_t qdq_quantize(float x, float scale, int32_t zp, octet_dtype t) {
    const float v = x / scale;
    if (isnan(v)) return zp;
    const float lo = (float)(qdq_type_min(t) - zp), hi = (float)(qdq_type_max(t) - zp);
    return (int32_t)rintf(v < lo ? lo : (v > hi ? hi : v)) + zp;
}

int qdq_add_const(oct_graph *g, const char *base, const char *suffix, octet_dtype dt, int rank,
                  const int64_t *dims, void *data, octet_error *err) {
    const size_t len = strlen(base) + strlen(suffix) + 1;
    char *name = malloc(len);
    if (!name) {
        free(data);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding a constant for '%s'", base);
    }
    snprintf(name, len, "%s%s", base, suffix);
    const int v = oct_graph_add_value(g, name, err);
    free(name);
    if (v < 0) {
        free(data);
        return -1;
    }
    oct_value_set_const(&g->values[v], dt, rank, dims, data);
    return v;
}

int qdq_zp_value(oct_graph *g, qdq_param *p, octet_error *err) {
    if (p->zp >= 0) return p->zp;
    void *zero = calloc(1, sizeof(int32_t));
    if (!zero) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding a zero point");
    const int v = qdq_add_const(g, g->values[p->q].name, "/zero_point", p->qtype, 0, NULL, zero, err);
    if (v >= 0) p->zp = v;
    return v;
}

int qdq_rewrite(oct_graph *g, int ni, const char *domain, const char *type, int n_in, const int *in, int out,
                octet_error *err) {
    oct_node *n = &g->nodes[ni];
    char *t = strdup(type), *d = strdup(domain);
    int *ins = malloc(((size_t)n_in + 1) * sizeof(int));
    if (!t || !d || !ins) {
        free(t);
        free(d);
        free(ins);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory lowering node '%s'", n->name);
    }
    /* params belong to the old op: free them with it before the op changes. */
    if (n->params) {
        if (n->op && n->op->free_params) n->op->free_params(n->params);
        else free(n->params);
        n->params = NULL;
    }
    n->op = NULL;
    n->workspace_bytes = 0;
    free(n->op_type);
    free(n->domain);
    free(n->in);
    n->op_type = t;
    n->domain = d;
    n->in = ins;
    n->n_in = n_in;
    memcpy(n->in, in, (size_t)n_in * sizeof(int));
    n->out[0] = out;
    for (int j = 1; j < n->n_out; j++) n->out[j] = -1;
    n->n_out = 1;
    n->why_fp32 = NULL;
    return 0;
}

int qdq_note_fused(oct_graph *g, int ni, const char *what, octet_error *err) {
    oct_node *n = &g->nodes[ni];
    size_t old = n->fused ? strlen(n->fused) : 0;
    const size_t add = strlen(what);
    char *s = realloc(n->fused, old + add + 2);
    if (!s) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory naming lowered node '%s'", n->name);
    if (old) s[old++] = '+';
    memcpy(s + old, what, add + 1);
    n->fused = s;
    return 0;
}

bool qdq_have_op(const char *domain, const char *type) { return oct_op_find(domain, type) != NULL; }

/* The attribute `name` of node ni, added when absent (its old content freed when present). */
static oct_attr *attr_slot(oct_graph *g, int ni, const char *name, octet_error *err) {
    oct_node *n = &g->nodes[ni];
    for (int a = 0; a < n->n_attr; a++)
        if (strcmp(n->attrs[a].name, name) == 0) {
            oct_attr *at = &n->attrs[a];
            free(at->s);
            at->s = NULL;
            return at;
        }
    char *nm = strdup(name);
    oct_attr *attrs = nm ? realloc(n->attrs, ((size_t)n->n_attr + 1) * sizeof(oct_attr)) : NULL;
    if (!attrs) {
        free(nm);
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding attribute '%s' to '%s'", name, n->name);
        return NULL;
    }
    n->attrs = attrs;
    oct_attr *at = &n->attrs[n->n_attr++];
    memset(at, 0, sizeof *at);
    at->name = nm;
    return at;
}

int qdq_set_attr_float(oct_graph *g, int ni, const char *name, float v, octet_error *err) {
    oct_attr *at = attr_slot(g, ni, name, err);
    if (!at) return -1;
    at->type = OCT_ATTR_FLOAT;
    at->f = v;
    return 0;
}

int qdq_set_attr_int(oct_graph *g, int ni, const char *name, int64_t v, octet_error *err) {
    oct_attr *at = attr_slot(g, ni, name, err);
    if (!at) return -1;
    at->type = OCT_ATTR_INT;
    at->i = v;
    return 0;
}

int qdq_set_attr_string(oct_graph *g, int ni, const char *name, const char *v, octet_error *err) {
    oct_attr *at = attr_slot(g, ni, name, err);
    if (!at) return -1;
    if (!(at->s = strdup(v))) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    at->type = OCT_ATTR_STRING;
    return 0;
}
