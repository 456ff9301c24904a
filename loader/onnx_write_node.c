/* One graph node as ONNX NodeProtos: the node itself with its attributes, then its fused
   epilogue (n->epi) spelled out as standard nodes: Add(y, residual), then the activation. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "onnx_write_internal.h"

/* A name the graph owns, as protobuf-c's non-const field type (packing only reads it). */
static char *borrow(const char *s) {
    return (char *)(uintptr_t)s;
}

static int write_attr(oct_wctx *c, const oct_node *n, const oct_attr *a, Onnx__AttributeProto **out) {
    Onnx__AttributeProto *ap = owx_alloc(c, sizeof *ap);
    if (!ap) return -1;
    onnx__attribute_proto__init(ap);
    ap->name = borrow(a->name);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    size_t cnt = a->n > 0 ? (size_t)a->n : 0;
    switch (a->type) {
    case OCT_ATTR_FLOAT: ap->has_f = 1; ap->f = a->f; break;
    case OCT_ATTR_INT: ap->has_i = 1; ap->i = a->i; break;
    case OCT_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)borrow(a->s ? a->s : "");
        ap->s.len = a->s ? strlen(a->s) : 0;
        break;
    case OCT_ATTR_TENSOR: {
        if (!a->t)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' (%s): tensor attribute '%s' is empty", n->name,
                            n->op_type, a->name);
        if (!(ap->t = owx_tensor(c, a->name, (int)a->t->dtype, a->t->rank, a->t->dims, a->t->data,
                                 "tensor attribute")))
            return oct_fail_context(c->err, "node '%s' (%s)", n->name, n->op_type);
        break;
    }
    case OCT_ATTR_FLOATS: ap->n_floats = cnt; ap->floats = a->floats; break;
    case OCT_ATTR_INTS: ap->n_ints = cnt; ap->ints = a->ints; break;
    case OCT_ATTR_STRINGS:
        if (!(ap->strings = owx_alloc(c, (cnt + 1) * sizeof *ap->strings))) return -1;
        for (size_t i = 0; i < cnt; i++) {
            ap->strings[i].data = (uint8_t *)borrow(a->strings[i] ? a->strings[i] : "");
            ap->strings[i].len = a->strings[i] ? strlen(a->strings[i]) : 0;
        }
        ap->n_strings = cnt;
        break;
    default:
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "node '%s' (%s): attribute '%s' has type %d, which octet "
                        "cannot write", n->name, n->op_type, a->name, (int)a->type);
    }
    *out = ap;
    return 0;
}

/* An attribute the writer makes up (epilogue activations). */
static int add_float_attr(oct_wctx *c, Onnx__NodeProto *np, const char *name, float v) {
    Onnx__AttributeProto *ap = owx_alloc(c, sizeof *ap);
    if (!ap) return -1;
    onnx__attribute_proto__init(ap);
    ap->name = borrow(name);
    ap->has_type = 1;
    ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    ap->has_f = 1;
    ap->f = v;
    np->attribute[np->n_attribute++] = ap;
    return 0;
}

/* The parser names omitted optional outputs "<node>:unused_output_<j>" (node name cut at 80
   characters); they go back to "". */
static bool synthetic_output(const oct_node *n, const char *name) {
    size_t len = strlen(n->name);
    if (len > 80) len = 80;
    return strncmp(name, n->name, len) == 0 && strncmp(name + len, ":unused_output_", 15) == 0;
}

/* A scalar float initializer for a Clip bound. Returns its name or NULL. */
static char *clip_bound(oct_wctx *c, const oct_node *n, const char *suffix, float v) {
    if (c->n_inits == c->cap_inits) {
        oct_fail(c->err, OCTET_ERR_INTERNAL, "initializer list overflow at '%s'", n->name);
        return NULL;
    }
    float *data = owx_alloc(c, sizeof(float));
    char *name = owx_fresh_name(c, n->name, suffix);
    if (!data || !name) return NULL;
    *data = v;
    Onnx__TensorProto *t = owx_tensor(c, name, OCTET_FLOAT, 0, NULL, data, "Clip bound");
    if (!t) return NULL;
    c->inits[c->n_inits++] = t;
    return name;
}

/* Nodes the activation takes: SiLU is Sigmoid+Mul, HardSwish before opset 14 HardSigmoid+Mul. */
static int act_node_count(const oct_graph *g, oct_act_kind act) {
    if (act == OCT_ACT_NONE) return 0;
    if (act == OCT_ACT_SILU || (act == OCT_ACT_HARD_SWISH && g->opset < 14)) return 2;
    return 1;
}

/* Writes act(x) into y. */
static int write_activation(oct_wctx *c, const oct_node *n, char *x, char *y) {
    const oct_epilogue *e = &n->epi;
    const char *op = NULL;
    switch (e->act) {
    case OCT_ACT_RELU: op = "Relu"; break;
    case OCT_ACT_CLIP: op = "Clip"; break;
    case OCT_ACT_LEAKY_RELU: op = "LeakyRelu"; break;
    case OCT_ACT_SIGMOID: op = "Sigmoid"; break;
    case OCT_ACT_HARD_SIGMOID: op = "HardSigmoid"; break;
    case OCT_ACT_TANH: op = "Tanh"; break;
    case OCT_ACT_SILU: op = "Sigmoid"; break;
    case OCT_ACT_HARD_SWISH: op = c->g->opset >= 14 ? "HardSwish" : "HardSigmoid"; break;
    default:
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "node '%s' (%s) has a fused activation of unknown kind %d",
                        n->name, n->op_type, (int)e->act);
    }
    const bool two = act_node_count(c->g, e->act) == 2;
    char suffix[48];
    snprintf(suffix, sizeof suffix, "/epilogue_%s", op);
    char *node_name = owx_fresh_name(c, n->name, suffix);
    char *act_out = two ? owx_fresh_name(c, y, e->act == OCT_ACT_SILU ? "/sigmoid" : "/hard_sigmoid") : y;
    if (!node_name || !act_out) return -1;
    Onnx__NodeProto *np;
    if (e->act == OCT_ACT_CLIP && c->g->opset >= 11) {
        /* bounds are inputs since opset 11; an infinite bound is an omitted input */
        char *lo = isinf(e->alpha) && e->alpha < 0 ? "" : clip_bound(c, n, "/clip_min", e->alpha);
        char *hi = isinf(e->beta) && e->beta > 0 ? "" : clip_bound(c, n, "/clip_max", e->beta);
        if (!lo || !hi) return -1;
        size_t n_in = *hi ? 3 : *lo ? 2 : 1;
        if (!(np = owx_node(c, node_name, op, "", n_in, 1, 0))) return -1;
        if (n_in > 1) np->input[1] = lo;
        if (n_in > 2) np->input[2] = hi;
    } else {
        if (!(np = owx_node(c, node_name, op, "", 1, 1, 2))) return -1;
        int rc = 0;
        if (e->act == OCT_ACT_CLIP) {
            if (!(isinf(e->alpha) && e->alpha < 0)) rc |= add_float_attr(c, np, "min", e->alpha);
            if (!(isinf(e->beta) && e->beta > 0)) rc |= add_float_attr(c, np, "max", e->beta);
        } else if (e->act == OCT_ACT_LEAKY_RELU) {
            rc = add_float_attr(c, np, "alpha", e->alpha);
        } else if (e->act == OCT_ACT_HARD_SIGMOID) {
            rc = add_float_attr(c, np, "alpha", e->alpha) | add_float_attr(c, np, "beta", e->beta);
        } else if (e->act == OCT_ACT_HARD_SWISH && two) {
            rc = add_float_attr(c, np, "alpha", 1.f / 6.f) | add_float_attr(c, np, "beta", 0.5f);
        }
        if (rc) return -1;
    }
    np->input[0] = x;
    np->output[0] = act_out;
    if (!two) return 0;
    char *mul_name = owx_fresh_name(c, n->name, "/epilogue_Mul");
    Onnx__NodeProto *mul = mul_name ? owx_node(c, mul_name, "Mul", "", 2, 1, 0) : NULL;
    if (!mul) return -1;
    mul->input[0] = x;
    mul->input[1] = act_out;
    mul->output[0] = y;
    return 0;
}

int owx_write_node(oct_wctx *c, const oct_node *n) {
    const oct_graph *g = c->g;
    const oct_epilogue *e = &n->epi;
    if (!n->name || !n->op_type || !*n->op_type)
        return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' has no %s", n->name ? n->name : "",
                        n->name ? "op_type" : "name");
    for (int i = 0; i < n->n_attr; i++)
        if (!n->attrs[i].name || !*n->attrs[i].name)
            return oct_fail(c->err, OCTET_ERR_FORMAT, "node '%s' (%s): attribute %d has no name", n->name,
                            n->op_type, i);
    const bool has_epi = e->act != OCT_ACT_NONE || e->residual >= 0;
    if (has_epi && (n->n_out < 1 || n->out[0] < 0 || g->values[n->out[0]].dtype != OCTET_FLOAT))
        return oct_fail(c->err, OCTET_ERR_UNSUPPORTED,
                        "node '%s' (%s) has a fused epilogue on a non-float output; ONNX has no standard "
                        "form for it", n->name, n->op_type);
    const char *domain = n->domain ? n->domain : "";
    if (!strcmp(domain, "com.microsoft")) c->uses_ms = true;
    else if (!strcmp(domain, "octet")) c->uses_octet = true;

    /* trailing omitted inputs and outputs are dropped, as ONNX allows */
    int n_in = n->n_in, n_out = n->n_out;
    while (n_in > 0 && n->in[n_in - 1] < 0) n_in--;
    while (n_out > 0 && (n->out[n_out - 1] < 0 || synthetic_output(n, g->values[n->out[n_out - 1]].name))) n_out--;
    Onnx__NodeProto *np = owx_node(c, n->name, n->op_type, domain, (size_t)n_in, (size_t)n_out,
                                   n->n_attr > 0 ? (size_t)n->n_attr : 0);
    if (!np) return -1;
    for (int i = 0; i < n_in; i++) {
        int v = n->in[i];
        np->input[i] = borrow(v >= 0 ? g->values[v].name : "");
        if (v >= 0 && g->values[v].kind == OCT_VAL_CONST && owx_initializer(c, v))
            return oct_fail_context(c->err, "node '%s' (%s)", n->name, n->op_type);
    }
    for (int i = 0; i < n_out; i++) {
        int v = n->out[i];
        np->output[i] = borrow(v >= 0 && !synthetic_output(n, g->values[v].name) ? g->values[v].name : "");
    }
    for (int i = 0; i < n->n_attr; i++)
        if (write_attr(c, n, &n->attrs[i], &np->attribute[np->n_attribute++])) return -1;
    if (!has_epi) return 0;

    /* op -> t0 [-> Add(t0, residual) -> t1] [-> activation -> y]: only the last writes y */
    char *y = borrow(g->values[n->out[0]].name);
    char *cur = owx_fresh_name(c, y, e->residual >= 0 ? "/before_residual" : "/before_activation");
    if (!cur) return -1;
    np->output[0] = cur;
    if (e->residual >= 0) {
        const int r = e->residual;
        if (g->values[r].kind == OCT_VAL_CONST && owx_initializer(c, r))
            return oct_fail_context(c->err, "node '%s' (%s)", n->name, n->op_type);
        char *add_name = owx_fresh_name(c, n->name, "/epilogue_Add");
        char *sum = e->act != OCT_ACT_NONE ? owx_fresh_name(c, y, "/before_activation") : y;
        Onnx__NodeProto *add = add_name && sum ? owx_node(c, add_name, "Add", "", 2, 1, 0) : NULL;
        if (!add) return -1;
        add->input[0] = cur;
        add->input[1] = borrow(g->values[r].name);
        add->output[0] = sum;
        cur = sum;
    }
    return e->act != OCT_ACT_NONE ? write_activation(c, n, cur, y) : 0;
}
