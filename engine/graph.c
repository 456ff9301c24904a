/* Graph IR storage: creation, cloning, lookup, use counts and topological order. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "op.h"

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

oct_graph *oct_graph_new(void) {
    return calloc(1, sizeof(oct_graph));
}

static void free_attr(oct_attr *a) {
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    for (int i = 0; a->strings && i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    if (a->t) {
        free(a->t->data);
        free(a->t);
    }
}

static void free_node(oct_node *n) {
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->n_attr; i++) free_attr(&n->attrs[i]);
    free(n->attrs);
    if (n->params) {
        if (n->op && n->op->free_params) n->op->free_params(n->params);
        else free(n->params);
    }
    free(n->fused);
}

void oct_graph_free(oct_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) {
        oct_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < OCTET_MAX_RANK; d++) free(v->dim_params[d]);
        if (v->data_owned) free(v->data);
    }
    free(g->values);
    for (int i = 0; i < g->n_nodes; i++) free_node(&g->nodes[i]);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->order);
    free(g->name);
    free(g);
}

int oct_graph_add_value(oct_graph *g, const char *name, octet_error *err) {
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        oct_value *nv = realloc(g->values, (size_t)cap * sizeof *nv);
        if (!nv) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding value '%s'", name);
        g->values = nv;
        g->cap_values = cap;
    }
    oct_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = dup_str(name ? name : "");
    if (!v->name) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding value '%s'", name);
    v->rank = -1;
    v->producer = -1;
    return g->n_values++;
}

int oct_graph_find_value(const oct_graph *g, const char *name) {
    for (int i = g->n_values - 1; i >= 0; i--)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int oct_graph_add_node(oct_graph *g, const char *name, const char *op_type, const char *domain,
                       int n_in, int n_out, octet_error *err) {
    if (n_in < 0 || n_out < 0)
        return oct_fail(err, OCTET_ERR_FORMAT, "node '%s' has a negative input count", name);
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        oct_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding node '%s'", name);
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    oct_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->epi.residual = -1;
    n->name = dup_str(name ? name : "");
    n->op_type = dup_str(op_type ? op_type : "");
    n->domain = dup_str(domain ? domain : "");
    n->in = calloc((size_t)n_in + 1, sizeof(int));
    n->out = calloc((size_t)n_out + 1, sizeof(int));
    n->n_in = n_in;
    n->n_out = n_out;
    g->n_nodes++;
    if (!n->name || !n->op_type || !n->domain || !n->in || !n->out)
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory adding node '%s'", name);
    for (int i = 0; i < n_in; i++) n->in[i] = -1;
    for (int i = 0; i < n_out; i++) n->out[i] = -1;
    return g->n_nodes - 1;
}

void oct_value_set_const(oct_value *v, octet_dtype dtype, int rank, const int64_t *dims, void *data) {
    if (v->data_owned) free(v->data);
    v->kind = OCT_VAL_CONST;
    v->dtype = dtype;
    v->rank = rank;
    for (int i = 0; i < rank; i++) v->dims[i] = dims[i];
    v->data = data;
    v->data_owned = true;
}

void oct_format_shape(char *buf, size_t cap, int rank, const int64_t *dims) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && d < OCTET_MAX_RANK && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, d ? ",%lld" : "%lld", (long long)dims[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

int64_t oct_value_numel(const oct_value *v) {
    oct_tensor t = oct_value_tensor(v);
    return octet_tensor_numel(&t);
}

oct_tensor oct_value_tensor(const oct_value *v) {
    oct_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = v->dtype;
    t.rank = v->rank;
    for (int i = 0; i < v->rank && i < OCTET_MAX_RANK; i++) t.dims[i] = v->dims[i];
    t.data = v->data;
    return t;
}

int oct_value_make_owned(oct_value *v, octet_error *err) {
    if (v->data_owned || !v->data) return 0;
    int64_t n = oct_value_numel(v);
    size_t bytes = (size_t)(n > 0 ? n : 1) * octet_dtype_size(v->dtype);
    void *copy = malloc(bytes);
    if (!copy) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory copying '%s'", v->name);
    memcpy(copy, v->data, n > 0 ? (size_t)n * octet_dtype_size(v->dtype) : 0);
    v->data = copy;
    v->data_owned = true;
    return 0;
}

static int clone_attr(oct_attr *d, const oct_attr *s) {
    *d = *s;
    d->name = dup_str(s->name);
    d->s = s->s ? dup_str(s->s) : NULL;
    d->floats = NULL;
    d->ints = NULL;
    d->strings = NULL;
    d->t = NULL;
    if (!d->name || (s->s && !d->s)) return -1;
    if (s->floats) {
        if (!(d->floats = malloc((size_t)s->n * sizeof(float) + 1))) return -1;
        memcpy(d->floats, s->floats, (size_t)s->n * sizeof(float));
    }
    if (s->ints) {
        if (!(d->ints = malloc((size_t)s->n * sizeof(int64_t) + 1))) return -1;
        memcpy(d->ints, s->ints, (size_t)s->n * sizeof(int64_t));
    }
    if (s->strings) {
        if (!(d->strings = calloc((size_t)s->n + 1, sizeof(char *)))) return -1;
        for (int i = 0; i < s->n; i++)
            if (!(d->strings[i] = dup_str(s->strings[i]))) return -1;
    }
    if (s->t) {
        if (!(d->t = malloc(sizeof *d->t))) return -1;
        *d->t = *s->t;
        d->t->data = NULL;
        int64_t n = octet_tensor_numel(s->t);
        size_t bytes = (size_t)(n > 0 ? n : 0) * octet_dtype_size(s->t->dtype);
        if (!(d->t->data = malloc(bytes + 1))) return -1;
        if (bytes) memcpy(d->t->data, s->t->data, bytes);
    }
    return 0;
}

oct_graph *oct_graph_clone(const oct_graph *s, octet_error *err) {
    oct_graph *g = oct_graph_new();
    if (!g) goto nomem;
    g->name = dup_str(s->name ? s->name : "");
    g->opset = s->opset;
    g->ms_opset = s->ms_opset;
    g->values = calloc((size_t)s->n_values + 1, sizeof(oct_value));
    g->nodes = calloc((size_t)s->n_nodes + 1, sizeof(oct_node));
    g->inputs = calloc((size_t)s->n_inputs + 1, sizeof(int));
    g->outputs = calloc((size_t)s->n_outputs + 1, sizeof(int));
    if (!g->name || !g->values || !g->nodes || !g->inputs || !g->outputs) goto nomem;
    g->cap_values = s->n_values + 1;
    g->cap_nodes = s->n_nodes + 1;
    for (int i = 0; i < s->n_values; i++) {
        oct_value *v = &g->values[i];
        *v = s->values[i];
        v->data_owned = false;
        g->n_values = i + 1;
        v->name = dup_str(s->values[i].name);
        for (int d = 0; d < OCTET_MAX_RANK; d++) v->dim_params[d] = NULL;
        if (!v->name) goto nomem;
        for (int d = 0; d < OCTET_MAX_RANK; d++)
            if (s->values[i].dim_params[d] && !(v->dim_params[d] = dup_str(s->values[i].dim_params[d])))
                goto nomem;
    }
    for (int i = 0; i < s->n_nodes; i++) {
        const oct_node *sn = &s->nodes[i];
        oct_node *n = &g->nodes[i];
        memset(n, 0, sizeof *n);
        g->n_nodes = i + 1;
        n->name = dup_str(sn->name);
        n->op_type = dup_str(sn->op_type);
        n->domain = dup_str(sn->domain);
        n->fused = sn->fused ? dup_str(sn->fused) : NULL;
        n->n_in = sn->n_in;
        n->n_out = sn->n_out;
        n->in = malloc(((size_t)sn->n_in + 1) * sizeof(int));
        n->out = malloc(((size_t)sn->n_out + 1) * sizeof(int));
        n->epi = sn->epi;
        n->dead = sn->dead;
        if (!n->name || !n->op_type || !n->domain || !n->in || !n->out) goto nomem;
        memcpy(n->in, sn->in, (size_t)sn->n_in * sizeof(int));
        memcpy(n->out, sn->out, (size_t)sn->n_out * sizeof(int));
        if (sn->n_attr) {
            n->attrs = calloc((size_t)sn->n_attr, sizeof(oct_attr));
            if (!n->attrs) goto nomem;
            for (int a = 0; a < sn->n_attr; a++) {
                n->n_attr = a + 1;
                if (clone_attr(&n->attrs[a], &sn->attrs[a])) goto nomem;
            }
        }
    }
    memcpy(g->inputs, s->inputs, (size_t)s->n_inputs * sizeof(int));
    memcpy(g->outputs, s->outputs, (size_t)s->n_outputs * sizeof(int));
    g->n_inputs = s->n_inputs;
    g->n_outputs = s->n_outputs;
    return g;
nomem:
    oct_graph_free(g);
    oct_fail(err, OCTET_ERR_NOMEM, "out of memory cloning the graph");
    return NULL;
}

void oct_graph_update_uses(oct_graph *g) {
    for (int i = 0; i < g->n_values; i++) {
        g->values[i].producer = -1;
        g->values[i].n_consumers = 0;
        g->values[i].is_output = false;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        oct_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0) g->values[n->in[j]].n_consumers++;
        if (n->epi.residual >= 0) g->values[n->epi.residual].n_consumers++;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0) g->values[n->out[j]].producer = i;
    }
    for (int i = 0; i < g->n_outputs; i++) g->values[g->outputs[i]].is_output = true;
}

/* Kahn's algorithm, stable: among ready nodes the one earliest in the file goes first. */
int oct_graph_toposort(oct_graph *g, octet_error *err) {
    oct_graph_update_uses(g);
    int nn = g->n_nodes;
    int *order = calloc((size_t)nn + 1, sizeof(int));
    char *ready = calloc((size_t)g->n_values + 1, 1);
    if (!order || !ready) {
        free(order); free(ready);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory sorting the graph");
    }
    for (int v = 0; v < g->n_values; v++)
        ready[v] = g->values[v].kind != OCT_VAL_ACTIVATION;
    int done = 0, progress = 1;
    char *placed = calloc((size_t)nn + 1, 1);
    if (!placed) {
        free(order); free(ready);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory sorting the graph");
    }
    /* Simple repeated sweep: O(n^2) worst case but graphs are a few thousand nodes at most and
       the order stays close to the file order, which keeps the memory plan predictable. */
    while (progress) {
        progress = 0;
        for (int i = 0; i < nn; i++) {
            oct_node *n = &g->nodes[i];
            if (placed[i] || n->dead) continue;
            int ok = 1;
            for (int j = 0; j < n->n_in && ok; j++)
                if (n->in[j] >= 0 && !ready[n->in[j]]) ok = 0;
            if (ok && n->epi.residual >= 0 && !ready[n->epi.residual]) ok = 0;
            if (!ok) continue;
            placed[i] = 1;
            order[done++] = i;
            for (int j = 0; j < n->n_out; j++)
                if (n->out[j] >= 0) ready[n->out[j]] = 1;
            progress = 1;
        }
    }
    int bad = -1;
    for (int i = 0; i < nn && bad < 0; i++)
        if (!g->nodes[i].dead && !placed[i]) bad = i;
    for (int i = 0; i < nn; i++)
        if (g->nodes[i].dead) order[done++] = i;
    free(ready);
    free(placed);
    if (bad >= 0) {
        free(order);
        oct_node *n = &g->nodes[bad];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && g->values[n->in[j]].producer < 0 &&
                g->values[n->in[j]].kind == OCT_VAL_ACTIVATION)
                return oct_fail(err, OCTET_ERR_FORMAT,
                                "node '%s' (%s): input '%s' is not produced by any node, input or initializer",
                                n->name, n->op_type, g->values[n->in[j]].name);
        return oct_fail(err, OCTET_ERR_FORMAT, "the graph has a cycle through node '%s' (%s)",
                        n->name, n->op_type);
    }
    free(g->order);
    g->order = order;
    return 0;
}

const oct_attr *oct_node_attr(const oct_node *n, const char *name) {
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t oct_attr_int(const oct_node *n, const char *name, int64_t dflt) {
    const oct_attr *a = oct_node_attr(n, name);
    return a && a->type == OCT_ATTR_INT ? a->i : dflt;
}

float oct_attr_float(const oct_node *n, const char *name, float dflt) {
    const oct_attr *a = oct_node_attr(n, name);
    if (a && a->type == OCT_ATTR_FLOAT) return a->f;
    if (a && a->type == OCT_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *oct_attr_string(const oct_node *n, const char *name, const char *dflt) {
    const oct_attr *a = oct_node_attr(n, name);
    return a && a->type == OCT_ATTR_STRING && a->s ? a->s : dflt;
}

int oct_attr_ints(const oct_node *n, const char *name, int64_t *out, int max, octet_error *err) {
    const oct_attr *a = oct_node_attr(n, name);
    if (!a || a->type != OCT_ATTR_INTS) return -1;
    if (a->n > max) {
        oct_fail(err, OCTET_ERR_UNSUPPORTED, "attribute '%s' has %d values, at most %d supported",
                 name, a->n, max);
        return -2;
    }
    for (int i = 0; i < a->n; i++) out[i] = a->ints[i];
    return a->n;
}
