/* Q/DQ insertion into an fp32 calibration network, as ONNX Runtime's QDQ quantizer writes it:
     activation x of a quantizable op:  producer -> x' -> QuantizeLinear -> x_quantized
                                         -> DequantizeLinear -> x -> every reader
     weights: int8 per output channel (symmetric) -> DequantizeLinear(axis) -> the op
     bias: int32 at scale s_x * s_w[c] -> DequantizeLinear(axis 0) -> the op
     constant operands of Add/Mul/Concat: 8-bit per tensor -> DequantizeLinear
   A Relu/Clip fused into its producer stays fused (the ONNX writer expands it before the
   QuantizeLinear, and the lowering makes it the int8 op's clamp). With uint8 activations a
   standalone Relu after a quantized op (the residual Add -> Relu) is dropped: its output's zero
   point is 0, so QuantizeLinear already clamps at 0, as ONNX Runtime's quantizer does.
   Data movement (MaxPool, Reshape, Flatten, ...) takes its input's parameters for its output so
   that the lowering runs it on the 8-bit data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../calibrate.h"
#include "qdq_common.h"

static const char *const QUANTIZABLE[] = {"Conv",    "ConvTranspose", "Gemm",        "MatMul",      "Add",
                                          "Mul",     "Concat",        "GlobalAveragePool", "AveragePool",
                                          "MaxPool", "Sigmoid",       "HardSwish",   "Tanh",        "LeakyRelu",
                                          "HardSigmoid", "InstanceNormalization", "Resize", NULL};
/* Ops whose output takes the input's parameters. */
static const char *const SAME_PARAMS[] = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                                          "Resize",  "Identity", NULL};

static bool in_list(const oct_node *n, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (qdq_is(n, list[i])) return true;
    return false;
}

static bool is_gemm(const oct_node *n) {
    return qdq_is(n, "Conv") || qdq_is(n, "ConvTranspose") || qdq_is(n, "Gemm") || qdq_is(n, "MatMul");
}

static bool is_const(const oct_graph *g, int v) {
    return v >= 0 && g->values[v].kind == OCT_VAL_CONST && g->values[v].data;
}

static bool is_float_act(const oct_graph *g, int v) {
    return v >= 0 && g->values[v].kind != OCT_VAL_CONST && g->values[v].dtype == OCTET_FLOAT;
}

void oct_qdq_quantized_name(const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s_quantized", name);
}

/* Input slots of n that carry data to quantize (weights and biases are handled apart). */
static bool data_slot(const oct_graph *g, const oct_node *n, int k) {
    if (k >= n->n_in || n->in[k] < 0) return false;
    if (qdq_is(n, "Add") || qdq_is(n, "Mul") || qdq_is(n, "Concat")) return true;
    if (qdq_is(n, "MatMul") || qdq_is(n, "Gemm")) return k == 0 || (k == 1 && !is_const(g, n->in[1]));
    return k == 0;
}

static bool quantizable(const oct_graph *g, const oct_node *n, const bool excluded) {
    if (excluded || !in_list(n, QUANTIZABLE) || n->n_out < 1 || !is_float_act(g, n->out[0])) return false;
    if (qdq_is(n, "Resize")) return strcmp(oct_attr_string(n, "mode", "nearest"), "nearest") == 0;
    return true;
}

static int set_attr_int(oct_graph *g, int ni, const char *name, int64_t v, octet_error *err) {
    oct_node *n = &g->nodes[ni];
    oct_attr *a = realloc(n->attrs, ((size_t)n->n_attr + 1) * sizeof *a);
    if (!a) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->attrs = a;
    memset(&a[n->n_attr], 0, sizeof *a);
    if (!(a[n->n_attr].name = strdup(name))) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    a[n->n_attr].type = OCT_ATTR_INT;
    a[n->n_attr].i = v;
    n->n_attr++;
    return 0;
}

/* A new activation value named name+suffix of the given dtype and value `like`'s shape. */
static int new_value(oct_graph *g, const char *name, const char *suffix, octet_dtype dt, int like,
                     octet_error *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s", name, suffix);
    const int rank = g->values[like].rank;
    int64_t dims[OCTET_MAX_RANK];
    memcpy(dims, g->values[like].dims, sizeof dims);
    const int v = oct_graph_add_value(g, buf, err);
    if (v < 0) return -1;
    oct_value *nv = &g->values[v];
    nv->kind = OCT_VAL_ACTIVATION;
    nv->dtype = dt;
    nv->rank = rank;
    memcpy(nv->dims, dims, sizeof dims);
    nv->producer = -1;
    return v;
}

/* A node (type) named name+suffix with the given inputs and one output, axis attribute if >= 0. */
static int new_node(oct_graph *g, const char *name, const char *suffix, const char *type, int n_in, const int *in,
                    int out, int axis, octet_error *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s", name, suffix);
    const int ni = oct_graph_add_node(g, buf, type, "", n_in, 1, err);
    if (ni < 0) return -1;
    for (int k = 0; k < n_in; k++) g->nodes[ni].in[k] = in[k];
    g->nodes[ni].out[0] = out;
    return axis >= 0 ? set_attr_int(g, ni, "axis", axis, err) : 0;
}

/* Constants of a per-tensor scale and zero point. */
static int scale_zp_consts(oct_graph *g, const char *name, float scale, int32_t zp, octet_dtype type, int *sv,
                           int *zv, octet_error *err) {
    float *s = malloc(sizeof(float));
    uint8_t *z = malloc(1);
    if (!s || !z) {
        free(s);
        free(z);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    *s = scale;
    *z = (uint8_t)zp; /* the byte of zp in either 8-bit type */
    *sv = qdq_add_const(g, name, "_scale", OCTET_FLOAT, 0, NULL, s, err);
    if (*sv < 0) {
        free(z);
        return -1;
    }
    *zv = qdq_add_const(g, name, "_zero_point", type, 0, NULL, z, err);
    return *zv < 0 ? -1 : 0;
}

/* Value v (an activation with parameters q) gets QuantizeLinear -> DequantizeLinear; afterwards
   value v is the DequantizeLinear output (graph inputs: a new value every reader is moved to). */
static int insert_qdq(oct_graph *g, int v, const oct_qparam *q, octet_error *err) {
    char *name = strdup(g->values[v].name);
    char qname[1024];
    int rc = -1, sv, zv;
    if (!name) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    oct_qdq_quantized_name(name, qname, sizeof qname);
    if (scale_zp_consts(g, name, q->scale, q->zp, q->type, &sv, &zv, err)) goto done;
    const int vq = new_value(g, qname, "", q->type, v, err);
    if (vq < 0) goto done;
    const int p = qdq_producer(g, v);
    int src = v, dst = v;
    if (p >= 0) {
        if ((src = new_value(g, name, "_prequant", OCTET_FLOAT, v, err)) < 0) goto done;
        oct_node *pn = &g->nodes[p];
        for (int j = 0; j < pn->n_out; j++)
            if (pn->out[j] == v) pn->out[j] = src;
    } else {
        if ((dst = new_value(g, name, "_dequantized", OCTET_FLOAT, v, err)) < 0) goto done;
        for (int i = 0; i < g->n_nodes; i++) {
            oct_node *n = &g->nodes[i];
            if (n->dead) continue;
            for (int k = 0; k < n->n_in; k++)
                if (n->in[k] == v) n->in[k] = dst;
            if (n->epi.residual == v) n->epi.residual = dst;
        }
    }
    const int qin[3] = {src, sv, zv}, dqin[3] = {vq, sv, zv};
    if (new_node(g, name, "_QuantizeLinear", "QuantizeLinear", 3, qin, vq, -1, err) ||
        new_node(g, name, "_DequantizeLinear", "DequantizeLinear", 3, dqin, dst, -1, err))
        goto done;
    rc = 0;
done:
    free(name);
    return rc;
}

/* Per-channel weight layout of a GEMM-shaped node: channel count, axis and whether it applies. */
static bool weight_layout(const oct_graph *g, const oct_node *n, int *axis, int64_t *channels, int64_t *bias_m) {
    const oct_value *w = &g->values[n->in[1]];
    *bias_m = 0;
    if (qdq_is(n, "Conv")) {
        if (w->rank < 3) return false;
        *axis = 0;
        *channels = w->dims[0];
        *bias_m = w->dims[0];
    } else if (qdq_is(n, "ConvTranspose")) {
        if (w->rank < 3) return false;
        *axis = 1;
        *channels = w->dims[1];
        *bias_m = w->dims[1] * oct_attr_int(n, "group", 1);
    } else if (qdq_is(n, "Gemm")) {
        if (w->rank != 2) return false;
        const bool tb = oct_attr_int(n, "transB", 0) != 0;
        *axis = tb ? 0 : 1;
        *channels = w->dims[*axis];
        *bias_m = *channels;
    } else { /* MatMul: per column of a 2-D B, else per tensor */
        *axis = w->rank == 2 ? 1 : -1;
        *channels = w->rank == 2 ? w->dims[1] : 1;
    }
    return *channels > 0;
}

/* Symmetric int8 weights with one scale per channel of `axis` (-1: per tensor). */
static int quantize_weight(oct_graph *g, int ni, int axis, int64_t channels, float *scales, octet_error *err) {
    const int wv = g->nodes[ni].in[1];
    const oct_value *w = &g->values[wv];
    const int64_t n = oct_value_numel(w);
    int64_t inner = 1, outer = 1;
    for (int d = 0; d < w->rank; d++) {
        if (axis >= 0 && d > axis) inner *= w->dims[d];
        if (axis >= 0 && d < axis) outer *= w->dims[d];
    }
    if (axis < 0) inner = n;
    const float *wd = w->data;
    int8_t *q = malloc((size_t)n + 1);
    int8_t *z = calloc((size_t)channels, 1);
    float *s = malloc((size_t)channels * sizeof(float));
    if (!q || !z || !s) {
        free(q);
        free(z);
        free(s);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory quantizing the weights of '%s'", g->nodes[ni].name);
    }
    for (int64_t c = 0; c < channels; c++) {
        double amax = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) amax = fmax(amax, fabs(wd[(o * channels + c) * inner + i]));
        s[c] = amax > 0 && (float)(amax / 127.0) > 0 ? (float)(amax / 127.0) : 1.f;
        scales[c] = s[c];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                const int64_t j = (o * channels + c) * inner + i;
                const float r = rintf(wd[j] / s[c]);
                q[j] = (int8_t)(r > 127.f ? 127 : r < -127.f ? -127 : r);
            }
    }
    char *name = strdup(w->name);
    const int rank = w->rank;
    int64_t dims[OCTET_MAX_RANK];
    memcpy(dims, w->dims, sizeof dims);
    if (!name) {
        free(q);
        free(z);
        free(s);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    int rc = -1;
    const int64_t cdim[1] = {channels};
    const int crank = axis >= 0 ? 1 : 0;
    const int qv = qdq_add_const(g, name, "_quantized", OCTET_INT8, rank, dims, q, err);
    const int sv = qv < 0 ? -1 : qdq_add_const(g, name, "_scale", OCTET_FLOAT, crank, cdim, s, err);
    const int zv = sv < 0 ? -1 : qdq_add_const(g, name, "_zero_point", OCTET_INT8, crank, cdim, z, err);
    if (qv < 0) free(s);
    if (sv < 0) free(z);
    if (zv < 0) goto done;
    const int dq = new_value(g, name, "_dequantized", OCTET_FLOAT, wv, err);
    const int in[3] = {qv, sv, zv};
    if (dq < 0 || new_node(g, name, "_DequantizeLinear", "DequantizeLinear", 3, in, dq, axis, err)) goto done;
    g->nodes[ni].in[1] = dq;
    rc = 0;
done:
    free(name);
    return rc;
}

/* int32 bias at scale s_x * s_w[c]; a bias that does not fit int32 stays fp32. */
static int quantize_bias(oct_graph *g, int ni, float sx, const float *sw, int64_t channels, int64_t m,
                         octet_error *err) {
    const int bv = g->nodes[ni].in[2];
    const oct_value *b = &g->values[bv];
    if (b->dtype != OCTET_FLOAT || oct_value_numel(b) != m || m <= 0) return 0;
    int32_t *q = malloc((size_t)m * sizeof(int32_t));
    float *s = malloc((size_t)m * sizeof(float));
    if (!q || !s) {
        free(q);
        free(s);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory quantizing the bias of '%s'", g->nodes[ni].name);
    }
    for (int64_t c = 0; c < m; c++) {
        s[c] = sx * sw[channels > 1 ? c % channels : 0]; /* float32, as the int8 op computes it */
        const double r = rint((double)((const float *)b->data)[c] / s[c]);
        if (!(s[c] > 0.f) || !(fabs(r) <= 2147483647.0)) {
            free(q);
            free(s);
            return 0;
        }
        q[c] = (int32_t)r;
    }
    char *name = strdup(b->name);
    if (!name) {
        free(q);
        free(s);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    int rc = -1;
    const int64_t dims[1] = {m};
    const int qv = qdq_add_const(g, name, "_quantized", OCTET_INT32, 1, dims, q, err);
    const int sv = qv < 0 ? -1 : qdq_add_const(g, name, "_scale", OCTET_FLOAT, 1, dims, s, err);
    if (qv < 0) free(s);
    if (sv < 0) goto done;
    const int dq = new_value(g, name, "_dequantized", OCTET_FLOAT, bv, err);
    const int in[2] = {qv, sv};
    if (dq < 0 || new_node(g, name, "_DequantizeLinear", "DequantizeLinear", 2, in, dq, 0, err)) goto done;
    g->nodes[ni].in[2] = dq;
    rc = 0;
done:
    free(name);
    return rc;
}

/* A float constant operand (Add, Mul, Concat) as 8-bit per tensor -> DequantizeLinear. */
static int quantize_const_operand(oct_graph *g, int ni, int k, octet_dtype type, octet_error *err) {
    const int cv = g->nodes[ni].in[k];
    const oct_value *c = &g->values[cv];
    const int64_t n = oct_value_numel(c);
    if (c->dtype != OCTET_FLOAT || n <= 0) return 0;
    const float *d = c->data;
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = fmin(lo, d[i]);
        hi = fmax(hi, d[i]);
    }
    oct_qparam q;
    oct_qparam_from_range(&q, type, lo, hi);
    uint8_t *qd = malloc((size_t)n);
    char *name = strdup(c->name);
    if (!qd || !name) {
        free(qd);
        free(name);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) qd[i] = (uint8_t)qdq_quantize(d[i], q.scale, q.zp, type);
    const int rank = c->rank;
    int64_t dims[OCTET_MAX_RANK];
    memcpy(dims, c->dims, sizeof dims);
    int rc = -1, sv, zv;
    const int qv = qdq_add_const(g, name, "_quantized", type, rank, dims, qd, err);
    if (qv < 0 || scale_zp_consts(g, name, q.scale, q.zp, type, &sv, &zv, err)) goto done;
    const int dq = new_value(g, name, "_dequantized", OCTET_FLOAT, cv, err);
    const int in[3] = {qv, sv, zv};
    if (dq < 0 || new_node(g, name, "_DequantizeLinear", "DequantizeLinear", 3, in, dq, -1, err)) goto done;
    g->nodes[ni].in[k] = dq;
    rc = 0;
done:
    free(name);
    return rc;
}

/* Drops Relu after a quantized non-GEMM op with uint8 output of zero point 0 (see the top). */
static void drop_relus(oct_graph *g, const oct_qparam *params, int n_params, const bool *excluded) {
    for (int i = 0; i < g->n_nodes; i++) {
        oct_node *r = &g->nodes[i];
        if (!qdq_is(r, "Relu") || excluded[i]) continue;
        const int s = r->in[0], y = r->out[0];
        const int p = qdq_producer(g, s);
        if (p < 0 || is_gemm(&g->nodes[p]) || !quantizable(g, &g->nodes[p], excluded[p]) || g->nodes[p].n_out != 1)
            continue;
        if (y >= n_params || !params[y].valid || params[y].type != OCTET_UINT8 || params[y].zp != 0) continue;
        if (!qdq_only_reader(g, s, i) || g->values[y].is_output) continue;
        g->nodes[p].out[0] = y;
        r->dead = true;
        oct_graph_update_uses(g);
    }
}

/* Not vectorised: gcc 12 for aarch64 crashes (internal compiler error in vect_transform_reduction)
   vectorising this function, and it is load-time graph code where vectors buy nothing. */
__attribute__((optimize("no-tree-vectorize")))
int oct_qdq_insert(oct_graph *g, const oct_qparam *params, int n_params, const char *const *exclude, int n_exclude,
                   int **quantized, oct_qparam **used, int *n_quantized, octet_error *err) {
    *quantized = NULL;
    *used = NULL;
    *n_quantized = 0;
    if (g->opset < 13)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "per-channel QDQ needs opset 13 or later; the model is opset %lld", (long long)g->opset);
    const int nn = g->n_nodes, nv = g->n_values;
    bool *excluded = calloc((size_t)nn + 1, sizeof(bool));
    bool *mark = calloc((size_t)nv + 1, sizeof(bool));
    oct_qparam *q = calloc((size_t)nv + 1, sizeof *q);
    float *sw = NULL;
    int *list = malloc(((size_t)nv + 1) * sizeof(int));
    oct_qparam *list_q = malloc(((size_t)nv + 1) * sizeof *list_q);
    int rc = -1, count = 0;
    if (!excluded || !mark || !q || !list || !list_q) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(q, params, (size_t)(n_params < nv ? n_params : nv) * sizeof *q);
    for (int e = 0; e < n_exclude; e++) {
        bool found = false;
        for (int i = 0; i < nn; i++)
            if (!g->nodes[i].dead && strcmp(g->nodes[i].name, exclude[e]) == 0) found = excluded[i] = true;
        if (!found) {
            oct_fail(err, OCTET_ERR_ARG, "--exclude: the model has no node named '%s' (after fusion)", exclude[e]);
            goto done;
        }
    }
    if (oct_graph_toposort(g, err)) goto done;
    oct_graph_update_uses(g);
    drop_relus(g, q, nv, excluded);
    /* The activations to quantize, then parameters carried through data movement. */
    for (int i = 0; i < nn; i++) {
        const oct_node *n = &g->nodes[i];
        if (!quantizable(g, n, excluded[i])) continue;
        for (int k = 0; k < n->n_in; k++)
            if (data_slot(g, n, k) && is_float_act(g, n->in[k])) mark[n->in[k]] = true;
        mark[n->out[0]] = true;
    }
    for (int k = 0; k < nn; k++) {
        const oct_node *n = &g->nodes[g->order[k]];
        if (n->dead || !in_list(n, SAME_PARAMS) || n->n_in < 1 || excluded[g->order[k]]) continue;
        const int x = n->in[0], y = n->out[0];
        if (qdq_is(n, "Resize") && strcmp(oct_attr_string(n, "mode", "nearest"), "nearest") != 0) continue;
        if (x < 0 || y < 0 || !mark[x] || !q[x].valid || !is_float_act(g, y)) continue;
        mark[y] = true;
        q[y] = q[x];
    }
    for (int v = 0; v < nv; v++)
        if (mark[v] && !(q[v].valid && is_float_act(g, v))) mark[v] = false;
    /* Weights and biases (before the activations move, so that s_x is found by value index). */
    for (int i = 0; i < nn; i++) {
        const oct_node *n = &g->nodes[i];
        if (!quantizable(g, n, excluded[i]) || n->n_in < 2 || !mark[n->in[0]]) continue;
        if (is_gemm(n)) {
            if (!is_const(g, n->in[1]) || g->values[n->in[1]].dtype != OCTET_FLOAT) continue;
            if (qdq_is(n, "Gemm") && oct_attr_int(n, "transA", 0)) continue;
            int axis;
            int64_t ch, m;
            if (!weight_layout(g, n, &axis, &ch, &m)) continue;
            const float sx = q[n->in[0]].scale;
            free(sw);
            if (!(sw = malloc((size_t)ch * sizeof(float)))) {
                oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
                goto done;
            }
            if (quantize_weight(g, i, axis, ch, sw, err)) goto done;
            if (m > 0 && oct_node_has_input(&g->nodes[i], 2) && is_const(g, g->nodes[i].in[2]) &&
                quantize_bias(g, i, sx, sw, axis >= 0 ? ch : 1, m, err))
                goto done;
        } else if (qdq_is(n, "Add") || qdq_is(n, "Mul") || qdq_is(n, "Concat")) {
            for (int k = 0; k < g->nodes[i].n_in; k++)
                if (is_const(g, g->nodes[i].in[k]) &&
                    quantize_const_operand(g, i, k, q[g->nodes[i].out[0]].type, err))
                    goto done;
        }
    }
    for (int v = 0; v < nv; v++) {
        if (!mark[v]) continue;
        if (insert_qdq(g, v, &q[v], err)) goto done;
        list_q[count] = q[v];
        list[count++] = v;
    }
    oct_graph_update_uses(g);
    if (oct_graph_toposort(g, err)) goto done;
    *quantized = list;
    *used = list_q;
    *n_quantized = count;
    list = NULL;
    list_q = NULL;
    rc = 0;
done:
    free(list);
    free(list_q);
    free(sw);
    free(q);
    free(mark);
    free(excluded);
    return rc;
}
