/* The fusion pass. For each Conv/ConvTranspose/Gemm/MatMul/InstanceNormalization (the "producer"), repeatedly:
   1. Conv -> BatchNormalization with constant statistics: fold the BN into new constant weights
      and bias of the conv;
   2. producer -> Add(y, other) with other of the same shape: other becomes the epilogue residual;
   3. producer -> Relu/Clip/LeakyRelu/Sigmoid/HardSwish/HardSigmoid/Tanh, or x*Sigmoid(x) (SiLU):
      the activation becomes the epilogue's.
   A step applies only when the producer's output feeds nothing else and is not a graph output,
   so no value a user can observe changes. The absorbed node is marked dead and the producer takes
   over its output value; the planner re-sorts and re-infers afterwards. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "passes.h"

static int is_default_domain(const oct_node *n) {
    return !n->domain || !*n->domain || strcmp(n->domain, "ai.onnx") == 0;
}

static int is_op(const oct_node *n, const char *type) {
    return !n->dead && is_default_domain(n) && strcmp(n->op_type, type) == 0;
}

/* Live nodes reading value v as an input (residual uses count too, so they block fusion).
   Writes up to 2 of them into who; returns the total count. */
static int consumers(const oct_graph *g, int v, int who[2]) {
    int cnt = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *n = &g->nodes[i];
        if (n->dead) continue;
        int uses = n->epi.residual == v;
        for (int j = 0; j < n->n_in; j++) uses += n->in[j] == v;
        for (int u = 0; u < uses; u++) {
            if (cnt < 2) who[cnt] = i;
            cnt++;
        }
    }
    return cnt;
}

static int is_const(const oct_graph *g, int v) {
    return v >= 0 && g->values[v].kind == OCT_VAL_CONST && g->values[v].data && g->values[v].dtype == OCTET_FLOAT;
}

/* A value whose value nobody can observe: no consumer and not a graph output. */
static int unobserved(const oct_graph *g, int v) {
    int who[2];
    return v < 0 || (!g->values[v].is_output && consumers(g, v, who) == 0);
}

/* Appends "+what" (or "what") to n->fused. */
static int note_fused(oct_node *n, const char *what, octet_error *err) {
    size_t old = n->fused ? strlen(n->fused) : 0, add = strlen(what);
    char *s = realloc(n->fused, old + add + 2);
    if (!s) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory naming fused node '%s'", n->name);
    if (old) s[old++] = '+';
    memcpy(s + old, what, add + 1);
    n->fused = s;
    return 0;
}

/* The producer takes over the absorbed node's output; the absorbed node dies. */
static void absorb(oct_graph *g, int prod, int dead, int out_value) {
    g->nodes[prod].out[0] = out_value;
    g->nodes[dead].dead = true;
    oct_graph_update_uses(g);
}

/* A new constant float value owning data (taken over, also on failure). Returns its index. */
static int add_const(oct_graph *g, const char *base, const char *suffix, int rank, const int64_t *dims, float *data,
                     octet_error *err) {
    size_t len = strlen(base) + strlen(suffix) + 1;
    char *name = malloc(len);
    if (!name) {
        free(data);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    snprintf(name, len, "%s%s", base, suffix);
    int v = oct_graph_add_value(g, name, err);
    free(name);
    if (v < 0) {
        free(data);
        return -1;
    }
    oct_value_set_const(&g->values[v], OCTET_FLOAT, rank, dims, data);
    return v;
}

/* Step 1: Conv -> BatchNormalization. Returns 1 if fused, 0 if not applicable, -1 on error. */
static int fold_batchnorm(oct_graph *g, int ci, octet_error *err) {
    oct_node *conv = &g->nodes[ci];
    if (!is_op(conv, "Conv") || conv->fused || conv->epi.act || conv->epi.residual >= 0) return 0;
    const int y = conv->out[0];
    int who[2];
    if (g->values[y].is_output || consumers(g, y, who) != 1) return 0;
    const int bi = who[0];
    const oct_node *bn = &g->nodes[bi];
    if (!is_op(bn, "BatchNormalization") || bn->n_in != 5 || bn->in[0] != y) return 0;
    if (oct_attr_int(bn, "training_mode", 0) != 0 || oct_attr_int(bn, "spatial", 1) != 1) return 0;
    for (int j = 1; j < bn->n_out; j++)
        if (!unobserved(g, bn->out[j])) return 0;
    for (int j = 1; j < 5; j++)
        if (!is_const(g, bn->in[j])) return 0;
    const int w = conv->in[1], b = oct_node_has_input(conv, 2) ? conv->in[2] : -1;
    if (!is_const(g, w) || (b >= 0 && !is_const(g, b))) return 0;
    const oct_value *wv = &g->values[w];
    if (wv->rank < 3) return 0;
    const int64_t M = wv->dims[0], wnum = oct_value_numel(wv);
    if (M <= 0 || wnum <= 0) return 0;
    for (int j = 1; j < 5; j++)
        if (oct_value_numel(&g->values[bn->in[j]]) != M) return 0;
    if (b >= 0 && oct_value_numel(&g->values[b]) != M) return 0;

    const float *scale = g->values[bn->in[1]].data, *shift = g->values[bn->in[2]].data;
    const float *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
    const double eps = oct_attr_float(bn, "epsilon", 1e-5f);
    const int64_t per = wnum / M;
    float *nw = oct_big_alloc((size_t)wnum * sizeof(float)), *nb = malloc((size_t)M * sizeof(float));
    if (!nw || !nb) {
        free(nw);
        free(nb);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory folding BatchNormalization into '%s'", conv->name);
    }
    const float *ow = wv->data, *ob = b >= 0 ? g->values[b].data : NULL;
    for (int64_t m = 0; m < M; m++) {
        const double a = scale[m] / sqrt((double)var[m] + eps);
        for (int64_t k = 0; k < per; k++) nw[m * per + k] = (float)(ow[m * per + k] * a);
        nb[m] = (float)(((ob ? ob[m] : 0.0) - mean[m]) * a + shift[m]);
    }
    int64_t wdims[OCTET_MAX_RANK];
    const int wrank = wv->rank;
    memcpy(wdims, wv->dims, sizeof wdims);
    const int bn_out = bn->out[0];
    /* Adding values may move g->values and g->nodes stays put, but re-fetch pointers anyway. */
    int nwv = add_const(g, g->nodes[ci].name, "/bn_folded_weight", wrank, wdims, nw, err);
    if (nwv < 0) {
        free(nb);
        return -1;
    }
    int nbv = add_const(g, g->nodes[ci].name, "/bn_folded_bias", 1, &M, nb, err);
    if (nbv < 0) return -1;
    conv = &g->nodes[ci];
    if (conv->n_in < 3) {
        int *in = realloc(conv->in, 4 * sizeof(int));
        if (!in) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory growing the inputs of '%s'", conv->name);
        conv->in = in;
        for (int j = conv->n_in; j < 4; j++) conv->in[j] = -1;
        conv->n_in = 3;
    }
    conv->in[1] = nwv;
    conv->in[2] = nbv;
    if (note_fused(conv, "BatchNormalization", err)) return -1;
    absorb(g, ci, bi, bn_out);
    return 1;
}

static int same_shape(const oct_value *a, const oct_value *b) {
    if (a->rank != b->rank || a->dtype != b->dtype) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

/* Step 2: producer -> Add(y, other). */
static int fuse_residual(oct_graph *g, int pi, octet_error *err) {
    oct_node *p = &g->nodes[pi];
    if (p->epi.act || p->epi.residual >= 0) return 0;
    const int y = p->out[0];
    int who[2];
    if (g->values[y].is_output || consumers(g, y, who) != 1) return 0;
    const int ai = who[0];
    const oct_node *add = &g->nodes[ai];
    if (!is_op(add, "Add") || add->n_in != 2 || add->n_out != 1) return 0;
    const int other = add->in[0] == y ? add->in[1] : add->in[0];
    if (other < 0 || other == y || !same_shape(&g->values[other], &g->values[y])) return 0;
    /* other must not depend on the producer: it cannot, since y's only consumer is this Add and
       the producer has no other output; a producer of other is therefore computed before. */
    if (g->values[other].producer == pi) return 0;
    p->epi.residual = other;
    if (note_fused(p, "Add", err)) return -1;
    absorb(g, pi, ai, add->out[0]);
    return 1;
}

/* A Clip's bound from its attribute (opset < 11) or constant input (opset >= 11).
   Returns 0 if the bound is not a known constant. */
static int clip_bound(const oct_graph *g, const oct_node *c, int slot, const char *attr, float dflt, float *out) {
    *out = dflt;
    if (oct_node_attr(c, attr)) *out = oct_attr_float(c, attr, dflt);
    if (!oct_node_has_input(c, slot)) return 1;
    const oct_value *v = &g->values[c->in[slot]];
    if (!is_const(g, c->in[slot]) || oct_value_numel(v) != 1) return 0;
    *out = *(const float *)v->data;
    return 1;
}

/* Step 3: producer -> activation (or SiLU written as y * Sigmoid(y)). */
static int fuse_activation(oct_graph *g, int pi, octet_error *err) {
    oct_node *p = &g->nodes[pi];
    if (p->epi.act) return 0;
    const int y = p->out[0];
    int who[2];
    if (g->values[y].is_output) return 0;
    const int nc = consumers(g, y, who);
    if (nc == 2) {
        /* SiLU: Sigmoid(y) -> s, Mul(y, s), with s used only by the Mul. */
        int si = is_op(&g->nodes[who[0]], "Sigmoid") ? who[0] : who[1], mi = si == who[0] ? who[1] : who[0];
        const oct_node *sig = &g->nodes[si], *mul = &g->nodes[mi];
        if (!is_op(sig, "Sigmoid") || !is_op(mul, "Mul") || mul->n_in != 2 || mul->n_out != 1) return 0;
        const int s = sig->out[0];
        int sw[2];
        if (g->values[s].is_output || consumers(g, s, sw) != 1 || sw[0] != mi) return 0;
        if (!((mul->in[0] == y && mul->in[1] == s) || (mul->in[0] == s && mul->in[1] == y))) return 0;
        if (!same_shape(&g->values[mul->out[0]], &g->values[y])) return 0;
        p->epi.act = OCT_ACT_SILU;
        if (note_fused(p, "SiLU", err)) return -1;
        g->nodes[si].dead = true;
        absorb(g, pi, mi, mul->out[0]);
        return 1;
    }
    if (nc != 1) return 0;
    const int ai = who[0];
    const oct_node *a = &g->nodes[ai];
    if (a->dead || !is_default_domain(a) || a->n_out != 1 || a->n_in < 1 || a->in[0] != y) return 0;
    oct_epilogue e = p->epi;
    if (strcmp(a->op_type, "Relu") == 0) {
        e.act = OCT_ACT_RELU;
    } else if (strcmp(a->op_type, "Clip") == 0) {
        if (!clip_bound(g, a, 1, "min", -INFINITY, &e.alpha) || !clip_bound(g, a, 2, "max", INFINITY, &e.beta))
            return 0;
        if (e.alpha > e.beta) return 0; /* Clip then yields max everywhere; the epilogue would not */
        e.act = OCT_ACT_CLIP;
    } else if (strcmp(a->op_type, "LeakyRelu") == 0) {
        e.act = OCT_ACT_LEAKY_RELU;
        e.alpha = oct_attr_float(a, "alpha", 0.01f);
    } else if (strcmp(a->op_type, "Sigmoid") == 0) {
        e.act = OCT_ACT_SIGMOID;
    } else if (strcmp(a->op_type, "HardSwish") == 0) {
        e.act = OCT_ACT_HARD_SWISH;
    } else if (strcmp(a->op_type, "HardSigmoid") == 0) {
        e.act = OCT_ACT_HARD_SIGMOID;
        e.alpha = oct_attr_float(a, "alpha", 0.2f);
        e.beta = oct_attr_float(a, "beta", 0.5f);
    } else if (strcmp(a->op_type, "Tanh") == 0) {
        e.act = OCT_ACT_TANH;
    } else {
        return 0;
    }
    if (a->n_in > (e.act == OCT_ACT_CLIP ? 3 : 1)) return 0;
    if (!same_shape(&g->values[a->out[0]], &g->values[y])) return 0;
    p->epi = e;
    if (note_fused(p, a->op_type, err)) return -1;
    absorb(g, pi, ai, a->out[0]);
    return 1;
}

static int is_producer(const oct_node *n) {
    return n->n_out == 1 && (is_op(n, "Conv") || is_op(n, "ConvTranspose") || is_op(n, "Gemm") || is_op(n, "MatMul") ||
                             is_op(n, "InstanceNormalization")); /* normalises in a pass that can apply the epilogue */
}

int oct_pass_fuse(oct_graph *g, octet_error *err) {
    oct_graph_update_uses(g);
    const int nn = g->n_nodes;
    for (int k = 0; k < nn; k++) {
        const int i = g->order ? g->order[k] : k;
        if (i < 0 || i >= g->n_nodes || !is_producer(&g->nodes[i])) continue;
        if (g->values[g->nodes[i].out[0]].dtype != OCTET_FLOAT) continue;
        if (fold_batchnorm(g, i, err) < 0 || fuse_residual(g, i, err) < 0 || fuse_activation(g, i, err) < 0)
            return -1;
    }
    return 0;
}
