/* The QDQ lowering on hand-built QDQ graphs, through the public API. Each graph is planned twice:
   with OCTET_NO_QDQ_LOWERING=1 (every DequantizeLinear, float op and QuantizeLinear runs in fp32:
   the reference semantics) and with the lowering. Outputs are the quantized (uint8/int8) tensors
   the final QuantizeLinear writes and must agree within one unit; `octet inspect` (JSON) must show
   the expected nodes as int8, and the arena must shrink. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "test_session.h"

/* ---- graph building ------------------------------------------------------------------------- */

static int value(oct_graph *g, const char *name) {
    char buf[64];
    if (!name) {
        snprintf(buf, sizeof buf, "v%d", g->n_values);
        name = buf;
    }
    return oct_graph_add_value(g, name, NULL);
}

static int input(oct_graph *g, const char *name, int rank, const int64_t *dims) {
    const int v = value(g, name);
    g->values[v].kind = OCT_VAL_INPUT;
    g->values[v].dtype = OCTET_FLOAT;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, sizeof(int64_t) * (size_t)rank);
    g->inputs = realloc(g->inputs, sizeof(int) * (size_t)(g->n_inputs + 1));
    g->inputs[g->n_inputs++] = v;
    return v;
}

static void output(oct_graph *g, int v) {
    g->outputs = realloc(g->outputs, sizeof(int) * (size_t)(g->n_outputs + 1));
    g->outputs[g->n_outputs++] = v;
}

static int constant(oct_graph *g, octet_dtype dt, int rank, const int64_t *dims, const void *data) {
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d];
    const size_t bytes = (size_t)n * octet_dtype_size(dt);
    void *copy = malloc(bytes ? bytes : 1);
    memcpy(copy, data, bytes);
    const int v = value(g, NULL);
    oct_value_set_const(&g->values[v], dt, rank, dims, copy);
    return v;
}

static int scalar_f(oct_graph *g, float f) { return constant(g, OCTET_FLOAT, 0, NULL, &f); }
static int scalar_u8(oct_graph *g, uint8_t u) { return constant(g, OCTET_UINT8, 0, NULL, &u); }
static int scalar_s8(oct_graph *g, int8_t u) { return constant(g, OCTET_INT8, 0, NULL, &u); }

static int node(oct_graph *g, const char *op, int n_in, const int *in, int out) {
    char name[48];
    snprintf(name, sizeof name, "%s_%d", op, g->n_nodes);
    const int k = oct_graph_add_node(g, name, op, "", n_in, 1, NULL);
    memcpy(g->nodes[k].in, in, sizeof(int) * (size_t)n_in);
    g->nodes[k].out[0] = out >= 0 ? out : value(g, NULL);
    return k;
}

/* Output value of a new node. */
static int op(oct_graph *g, const char *type, int n_in, const int *in) {
    const int k = node(g, type, n_in, in, -1);
    return g->nodes[k].out[0];
}

static oct_attr *attr(oct_graph *g, const char *name) {
    oct_node *n = &g->nodes[g->n_nodes - 1];
    n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    return a;
}

/* Sets an int / ints attribute on the last node added. */
static void attr_i(oct_graph *g, const char *name, int64_t i) {
    oct_attr *a = attr(g, name);
    a->type = OCT_ATTR_INT;
    a->i = i;
}

static void attr_ints(oct_graph *g, const char *name, int n, const int64_t *v) {
    oct_attr *a = attr(g, name);
    a->type = OCT_ATTR_INTS;
    a->n = n;
    a->ints = malloc(sizeof(int64_t) * (size_t)n);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

static int quant(oct_graph *g, int x, float s, int zp_value) { return op(g, "QuantizeLinear", 3, (int[]){x, scalar_f(g, s), zp_value}); }
static int dequant(oct_graph *g, int q, int scale, int zp) { return op(g, "DequantizeLinear", zp >= 0 ? 3 : 2, (int[]){q, scale, zp}); }
/* Q then DQ with the same per-tensor uint8 parameters: the QDQ "fake quantization" of x. */
static int qdq_u8(oct_graph *g, int x, float s, uint8_t zp, int *q_out) {
    const int sv = scalar_f(g, s), zv = scalar_u8(g, zp);
    const int q = op(g, "QuantizeLinear", 3, (int[]){x, sv, zv});
    if (q_out) *q_out = q;
    return dequant(g, q, sv, zv);
}

static uint32_t rng = 12345;
static float frand(float lo, float hi) {
    rng = rng * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng >> 8) / 16777216.f;
}

/* DQ(int8 weights [M, C, k, k], per-channel scales on axis 0). */
static int conv_weights(oct_graph *g, int64_t M, int64_t C, int64_t k, int per_channel, int64_t *wdims_out) {
    const int64_t dims[4] = {M, C, k, k}, n = M * C * k * k;
    int8_t *w = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) w[i] = (int8_t)(int)lrintf(frand(-127.f, 127.f));
    float *s = malloc(sizeof(float) * (size_t)M);
    for (int64_t m = 0; m < M; m++) s[m] = 0.002f + 0.001f * (float)m;
    const int wv = constant(g, OCTET_INT8, 4, dims, w);
    const int64_t sd[1] = {M};
    const int sv = per_channel ? constant(g, OCTET_FLOAT, 1, sd, s) : scalar_f(g, s[0]);
    int8_t *z = calloc((size_t)M, 1);
    const int zv = per_channel ? constant(g, OCTET_INT8, 1, sd, z) : scalar_s8(g, 0);
    const int out = op(g, "DequantizeLinear", 3, (int[]){wv, sv, zv});
    attr_i(g, "axis", 0);
    free(w);
    free(s);
    free(z);
    if (wdims_out) memcpy(wdims_out, dims, sizeof dims);
    return out;
}

/* DQ(int32 bias) at scale s_x * s_w[m], as ONNX Runtime's quantizer writes it. */
static int conv_bias(oct_graph *g, int64_t M, float sx, int per_channel) {
    int32_t *b = malloc(sizeof(int32_t) * (size_t)M);
    float *s = malloc(sizeof(float) * (size_t)M);
    for (int64_t m = 0; m < M; m++) {
        s[m] = sx * (per_channel ? 0.002f + 0.001f * (float)m : 0.002f);
        b[m] = (int32_t)lrintf(frand(-0.5f, 0.5f) / s[m]);
    }
    const int64_t d[1] = {M};
    const int bv = constant(g, OCTET_INT32, 1, d, b);
    const int sv = constant(g, OCTET_FLOAT, 1, d, s);
    int32_t *z = calloc((size_t)M, sizeof(int32_t));
    const int zv = constant(g, OCTET_INT32, 1, d, z);
    const int out = op(g, "DequantizeLinear", 3, (int[]){bv, sv, zv});
    attr_i(g, "axis", 0);
    free(b);
    free(s);
    free(z);
    return out;
}

static int conv(oct_graph *g, int x, int w, int b, int64_t pad) {
    const int y = op(g, "Conv", b >= 0 ? 3 : 2, (int[]){x, w, b});
    const int64_t pads[4] = {pad, pad, pad, pad};
    attr_ints(g, "pads", 4, pads);
    return y;
}

static oct_graph *new_graph(void) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->name = strdup("qdq_test");
    rng = 12345; /* the same data whether tests run forked or not */
    return g;
}

/* ---- running both ways ---------------------------------------------------------------------- */

typedef struct {
    octet_tensor out[4];
    int n_out;
    octet_plan_stats stats;
    char *json;
} run_result;

static void run_graph(oct_graph *g, int lowered, const float *x, run_result *r) {
    if (lowered) unsetenv("OCTET_NO_QDQ_LOWERING");
    else setenv("OCTET_NO_QDQ_LOWERING", "1", 1);
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    const oct_value *xv = &g->values[g->inputs[0]];
    octet_tensor in = {OCTET_FLOAT, xv->rank, {0}, (void *)x};
    memcpy(in.dims, xv->dims, sizeof in.dims);
    r->n_out = g->n_outputs;
    ck_assert_int_le(r->n_out, 4);
    ck_assert_msg(octet_session_run(s, 1, NULL, &in, r->n_out, NULL, r->out, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(octet_session_plan_stats(s, &r->stats), 0);
    size_t len = 0;
    FILE *f = open_memstream(&r->json, &len);
    octet_session_describe(s, f, 1);
    fclose(f);
    octet_session_free(s);
    unsetenv("OCTET_NO_QDQ_LOWERING");
}

static void release(run_result *r) {
    for (int i = 0; i < r->n_out; i++) octet_tensor_release(&r->out[i]);
    free(r->json);
}

static int count(const char *hay, const char *needle) {
    int c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

static int byte_value(const octet_tensor *t, int64_t i) {
    return t->dtype == OCTET_INT8 ? ((const int8_t *)t->data)[i] : ((const uint8_t *)t->data)[i];
}

/* Lowered and reference outputs agree within one unit, and the outputs are not degenerate
   (saturated or constant), so that the comparison means something. */
static void compare(const run_result *ref, const run_result *low) {
    for (int o = 0; o < ref->n_out; o++) {
        const octet_tensor *a = &ref->out[o], *b = &low->out[o];
        ck_assert_int_eq(a->dtype, b->dtype);
        ck_assert_int_eq(a->rank, b->rank);
        const int64_t n = octet_tensor_numel(a);
        ck_assert_int_eq(n, octet_tensor_numel(b));
        int seen[256] = {0}, distinct = 0, off = 0;
        for (int64_t i = 0; i < n; i++) {
            const int va = byte_value(a, i), vb = byte_value(b, i);
            ck_assert_msg(abs(va - vb) <= 1, "output %d element %lld: reference %d, lowered %d", o, (long long)i, va, vb);
            off += va != vb;
            distinct += !seen[va & 255]++;
        }
        ck_assert_msg(n < 64 || distinct >= 8, "output %d has only %d distinct values", o, distinct);
        ck_assert_msg(off * 10 <= n, "output %d: %d of %lld elements off by one", o, off, (long long)n);
    }
}

/* Runs both ways, compares, prints the arena peaks; returns the lowered plan's JSON description
   (caller frees). */
static char *check_both(oct_graph *g, const float *x, const char *what) {
    run_result ref, low;
    run_graph(g, 0, x, &ref);
    run_graph(g, 1, x, &low);
    compare(&ref, &low);
    printf("%-28s arena %7zu -> %7zu B, peak %8zu -> %8zu B, nodes %d -> %d\n", what, ref.stats.arena_bytes,
           low.stats.arena_bytes, ref.stats.peak_bytes, low.stats.peak_bytes, ref.stats.nodes, low.stats.nodes);
    ck_assert_msg(count(ref.json, "\"precision\":\"int8\"") == 0, "reference plan has int8 nodes: %s", ref.json);
    char *json = low.json;
    low.json = NULL;
    release(&ref);
    release(&low);
    return json;
}

static float *random_input(int64_t n, float lo, float hi) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = frand(lo, hi);
    return x;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* x -> Q/DQ -> Conv(DQ w per channel, DQ int32 bias) -> Relu -> Q, output zero point 10 so that the
   Relu is a real clamp (above the type's minimum). */
START_TEST(conv_relu_lowers_to_qlinearconv) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 3, 12, 12};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int w = conv_weights(g, 8, 3, 3, 1, NULL);
    const int b = conv_bias(g, 8, 0.02f, 1);
    const int c = conv(g, xq, w, b, 1);
    const int r = op(g, "Relu", 1, (int[]){c});
    const int y = quant(g, r, 0.01f, scalar_u8(g, 10));
    output(g, y);
    float *xv = random_input(3 * 144, -2.5f, 2.5f);
    char *json = check_both(g, xv, "conv+relu");
    ck_assert_msg(count(json, "\"op\":\"QLinearConv\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"precision\":\"int8\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"Conv\"") == 0, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* The same with Clip(0, 6) and per-tensor weights and an fp32 bias the pass quantizes itself. */
START_TEST(conv_clip_fp32_bias) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 4, 10, 10};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.03f, 100, NULL);
    const int w = conv_weights(g, 6, 4, 3, 0, NULL);
    float bias[6];
    for (int i = 0; i < 6; i++) bias[i] = frand(-0.3f, 0.3f);
    const int64_t bd[1] = {6};
    const int c = conv(g, xq, w, constant(g, OCTET_FLOAT, 1, bd, bias), 0);
    const int r = op(g, "Clip", 3, (int[]){c, scalar_f(g, 0.f), scalar_f(g, 0.6f)});
    const int y = quant(g, r, 0.004f, scalar_u8(g, 0));
    output(g, y);
    float *xv = random_input(4 * 100, -3.f, 3.f);
    char *json = check_both(g, xv, "conv+clip, fp32 bias");
    ck_assert_msg(count(json, "\"op\":\"QLinearConv\"") == 1, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* Residual block: DQ(x) feeds a conv and the Add; Add(DQ(conv), DQ(x)) -> Q becomes QLinearAdd. */
START_TEST(residual_add_lowers_to_qlinearadd) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 4, 8, 8};
    const int x = input(g, "x", 4, xd);
    const int xs = scalar_f(g, 0.02f), xz = scalar_u8(g, 120);
    const int xq_int = op(g, "QuantizeLinear", 3, (int[]){x, xs, xz});
    const int xq = dequant(g, xq_int, xs, xz);
    const int c = conv(g, xq, conv_weights(g, 4, 4, 3, 1, NULL), conv_bias(g, 4, 0.02f, 1), 1);
    const int c_dq = qdq_u8(g, c, 0.025f, 128, NULL);
    /* A second DQ of the same Q: the pass shares them. */
    const int x_dq2 = dequant(g, xq_int, xs, xz);
    const int a = op(g, "Add", 2, (int[]){c_dq, x_dq2});
    const int y = quant(g, a, 0.03f, scalar_u8(g, 128));
    output(g, y);
    float *xv = random_input(4 * 64, -2.f, 2.f);
    char *json = check_both(g, xv, "residual add");
    ck_assert_msg(count(json, "\"op\":\"QLinearAdd\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"QLinearConv\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"DequantizeLinear\"") == 0, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* Concat of two conv branches: with differing scales QLinearConcat, with equal scales a plain
   Concat over the 8-bit data. */
static void concat_case(int equal_scales) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 3, 8, 8};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int c1 = conv(g, xq, conv_weights(g, 4, 3, 3, 1, NULL), -1, 1);
    const int c2 = conv(g, xq, conv_weights(g, 5, 3, 1, 1, NULL), -1, 0);
    const int d1 = qdq_u8(g, c1, 0.02f, 128, NULL);
    const int d2 = qdq_u8(g, c2, equal_scales ? 0.02f : 0.015f, equal_scales ? 128 : 100, NULL);
    const int cc = op(g, "Concat", 2, (int[]){d1, d2});
    attr_i(g, "axis", 1);
    const int y = quant(g, cc, 0.02f, scalar_u8(g, 128));
    output(g, y);
    float *xv = random_input(3 * 64, -2.f, 2.f);
    char *json = check_both(g, xv, equal_scales ? "concat, equal scales" : "concat, differing scales");
    ck_assert_msg(count(json, equal_scales ? "\"op\":\"Concat\"" : "\"op\":\"QLinearConcat\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"precision\":\"int8\"") == 3, "%s", json);
    ck_assert_msg(count(json, "\"precision\":\"fp32\"") == 0, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}

START_TEST(concat_lowers) {
    concat_case(0);
    concat_case(1);
}
END_TEST

/* Conv -> Q/DQ -> MaxPool -> Q (same parameters) -> DQ -> GlobalAveragePool -> Q. */
START_TEST(maxpool_runs_on_int8_data) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 3, 16, 16};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int c = conv(g, xq, conv_weights(g, 8, 3, 3, 1, NULL), conv_bias(g, 8, 0.02f, 1), 1);
    const int sv = scalar_f(g, 0.02f), zv = scalar_u8(g, 60);
    const int cq = op(g, "QuantizeLinear", 3, (int[]){c, sv, zv});
    const int p = op(g, "MaxPool", 1, (int[]){dequant(g, cq, sv, zv)});
    attr_ints(g, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(g, "strides", 2, (int64_t[]){2, 2});
    const int pq = op(g, "QuantizeLinear", 3, (int[]){p, sv, zv});
    output(g, pq);
    const int gp = op(g, "GlobalAveragePool", 1, (int[]){dequant(g, pq, sv, zv)});
    output(g, quant(g, gp, 0.005f, scalar_u8(g, 60)));
    float *xv = random_input(3 * 256, -2.f, 2.f);
    char *json = check_both(g, xv, "maxpool + global pool");
    ck_assert_msg(count(json, "\"op\":\"MaxPool\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"QLinearGlobalAveragePool\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"precision\":\"int8\"") == 3, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* Conv -> Q/DQ -> Reshape -> Q/DQ -> Conv -> Q: both convs and the Reshape run int8, and the
   activations between them are uint8 (the arena shrinks). */
START_TEST(two_convs_with_reshape) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 4, 16, 16};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int c1 = conv(g, xq, conv_weights(g, 8, 4, 3, 1, NULL), conv_bias(g, 8, 0.02f, 1), 1);
    const int r1 = op(g, "Relu", 1, (int[]){c1});
    const int d1 = qdq_u8(g, r1, 0.01f, 0, NULL);
    const int64_t shape[4] = {1, 16, 8, 16};
    const int64_t sd[1] = {4};
    const int rs = op(g, "Reshape", 2, (int[]){d1, constant(g, OCTET_INT64, 1, sd, shape)});
    const int d2 = qdq_u8(g, rs, 0.01f, 0, NULL);
    const int c2 = conv(g, d2, conv_weights(g, 6, 16, 3, 1, NULL), conv_bias(g, 6, 0.01f, 1), 1);
    output(g, quant(g, c2, 0.02f, scalar_u8(g, 128)));
    float *xv = random_input(4 * 256, -2.f, 2.f);
    run_result ref, low;
    run_graph(g, 0, xv, &ref);
    run_graph(g, 1, xv, &low);
    compare(&ref, &low);
    printf("%-28s arena %7zu -> %7zu B, peak %8zu -> %8zu B\n", "conv-reshape-conv", ref.stats.arena_bytes,
           low.stats.arena_bytes, ref.stats.peak_bytes, low.stats.peak_bytes);
    ck_assert_msg(count(low.json, "\"precision\":\"int8\"") == 3, "%s", low.json);
    ck_assert_msg(count(low.json, "\"precision\":\"fp32\"") == 0, "%s", low.json);
    ck_assert_msg(low.stats.arena_bytes < ref.stats.arena_bytes, "arena %zu vs %zu", low.stats.arena_bytes,
                  ref.stats.arena_bytes);
    ck_assert_msg(low.stats.peak_bytes < ref.stats.peak_bytes, "peak %zu vs %zu", low.stats.peak_bytes,
                  ref.stats.peak_bytes);
    release(&ref);
    release(&low);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* Conv -> Q/DQ -> Flatten -> Q/DQ -> Gemm(DQ w, DQ bias) -> Q: QGemm. Plus MatMul with an int8
   output. */
START_TEST(gemm_and_matmul_lower) {
    oct_graph *g = new_graph();
    const int64_t xd[2] = {3, 32};
    const int x = input(g, "x", 2, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    /* Gemm weight [N=10, K=32] with transB, per-channel on axis 0. */
    const int64_t wd[2] = {10, 32}, nd[1] = {10};
    int8_t w[320];
    float ws[10];
    for (int i = 0; i < 320; i++) w[i] = (int8_t)(int)lrintf(frand(-127.f, 127.f));
    for (int i = 0; i < 10; i++) ws[i] = 0.003f + 0.0005f * (float)i;
    const int wdq = op(g, "DequantizeLinear", 3,
                       (int[]){constant(g, OCTET_INT8, 2, wd, w), constant(g, OCTET_FLOAT, 1, nd, ws),
                               constant(g, OCTET_INT8, 1, nd, (int8_t[10]){0})});
    attr_i(g, "axis", 0);
    float bias[10];
    for (int i = 0; i < 10; i++) bias[i] = frand(-0.5f, 0.5f);
    const int gm = op(g, "Gemm", 3, (int[]){xq, wdq, constant(g, OCTET_FLOAT, 1, nd, bias)});
    attr_i(g, "transB", 1);
    output(g, quant(g, gm, 0.02f, scalar_u8(g, 128)));
    /* MatMul with per-tensor int8 weights [32, 7] into an int8 output. */
    const int64_t md[2] = {32, 7};
    int8_t mw[224];
    for (int i = 0; i < 224; i++) mw[i] = (int8_t)(int)lrintf(frand(-127.f, 127.f));
    const int mdq = dequant(g, constant(g, OCTET_INT8, 2, md, mw), scalar_f(g, 0.004f), scalar_s8(g, 0));
    const int mm = op(g, "MatMul", 2, (int[]){xq, mdq});
    output(g, quant(g, mm, 0.02f, scalar_s8(g, -3)));
    float *xv = random_input(96, -2.f, 2.f);
    char *json = check_both(g, xv, "gemm + matmul");
    ck_assert_msg(count(json, "\"op\":\"QGemm\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"QLinearMatMul\"") == 1, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* DQ -> Sigmoid -> Q and DQ -> x*Sigmoid(x) -> Q become lookup tables; Conv -> Sigmoid -> Q (no Q
   at the conv output) stays fp32 and says why. */
START_TEST(activations_and_fallback) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 3, 8, 8};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.03f, 128, NULL);
    output(g, quant(g, op(g, "Sigmoid", 1, (int[]){xq}), 1.f / 256.f, scalar_u8(g, 0)));
    const int s = op(g, "Sigmoid", 1, (int[]){xq});
    output(g, quant(g, op(g, "Mul", 2, (int[]){xq, s}), 0.02f, scalar_u8(g, 30)));
    const int c = conv(g, xq, conv_weights(g, 4, 3, 3, 1, NULL), -1, 1);
    const int cs = op(g, "Sigmoid", 1, (int[]){c});
    output(g, quant(g, cs, 1.f / 256.f, scalar_u8(g, 0)));
    float *xv = random_input(3 * 64, -3.f, 3.f);
    char *json = check_both(g, xv, "activations");
    ck_assert_msg(count(json, "\"op\":\"QLinearLut\"") == 2, "%d %s", count(json, "\"op\":\"QLinearLut\""), json);
    ck_assert_msg(count(json, "\"op\":\"Conv\"") == 1, "%s", json);
    ck_assert_msg(strstr(json, "activation other than Relu/Clip") != NULL, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* SiLU and HardSwish as a QDQ quantizer writes them, the gate quantized on its own:
   DQ(x) -> Sigmoid -> Q -> DQ, Mul(DQ(x), that) -> Q (the Mul's inputs in both orders, uint8 and
   int8). Each becomes one gated QLinearLut: no QLinearMul, no separate gate table left. A Sigmoid
   whose quantized output has a second reader stays a table of its own, with a QLinearMul. */
START_TEST(silu_qdq_fuses_to_one_table) {
    for (int s8 = 0; s8 < 2; s8++) {
        oct_graph *g = new_graph();
        const int64_t xd[4] = {1, 4, 9, 9};
        const int x = input(g, "x", 4, xd);
        const int xs = scalar_f(g, 0.045f), xz = s8 ? scalar_s8(g, -20) : scalar_u8(g, 108);
        const int xq = dequant(g, op(g, "QuantizeLinear", 3, (int[]){x, xs, xz}), xs, xz);
        const int gs = scalar_f(g, 1.f / 255.f), gz = s8 ? scalar_s8(g, -128) : scalar_u8(g, 0);
        /* SiLU, Mul(x, gate) */
        const int sg = op(g, "Sigmoid", 1, (int[]){xq});
        const int sgq = dequant(g, op(g, "QuantizeLinear", 3, (int[]){sg, gs, gz}), gs, gz);
        output(g, quant(g, op(g, "Mul", 2, (int[]){xq, sgq}), 0.03f, s8 ? scalar_s8(g, -90) : scalar_u8(g, 38)));
        /* HardSwish as x * HardSigmoid(x) (alpha 1/6), Mul(gate, x) */
        const int hs = op(g, "HardSigmoid", 1, (int[]){xq});
        oct_attr *al = attr(g, "alpha");
        al->type = OCT_ATTR_FLOAT;
        al->f = 1.f / 6.f;
        const int hsq = dequant(g, op(g, "QuantizeLinear", 3, (int[]){hs, gs, gz}), gs, gz);
        output(g, quant(g, op(g, "Mul", 2, (int[]){hsq, xq}), 0.03f, s8 ? scalar_s8(g, -90) : scalar_u8(g, 38)));
        /* a gate that is also an output of its own: not fused */
        const int s2 = op(g, "Sigmoid", 1, (int[]){xq});
        const int s2q_int = op(g, "QuantizeLinear", 3, (int[]){s2, gs, gz});
        output(g, s2q_int);
        output(g, quant(g, op(g, "Mul", 2, (int[]){xq, dequant(g, s2q_int, gs, gz)}), 0.03f,
                        s8 ? scalar_s8(g, -90) : scalar_u8(g, 38)));
        float *xv = random_input(4 * 81, -5.f, 4.f);
        char *json = check_both(g, xv, s8 ? "silu / hardswish, int8" : "silu / hardswish, uint8");
        ck_assert_msg(count(json, "\"op\":\"QLinearLut\"") == 3, "%s", json);
        ck_assert_msg(count(json, "\"op\":\"QLinearMul\"") == 1, "%s", json);
        ck_assert_msg(count(json, "\"precision\":\"fp32\"") == 0, "%s", json);
        free(json);
        free(xv);
        oct_graph_free(g);
    }
}
END_TEST

/* A 3-D decoder block: ConvTranspose (per-channel weights on axis 1) -> InstanceNormalization ->
   LeakyRelu, then Pad, Transpose, Resize (nearest), Slice and AveragePool, each between a DQ and a
   Q. Every node runs int8. */
START_TEST(decoder_block_3d) {
    oct_graph *g = new_graph();
    const int64_t xd[5] = {1, 4, 3, 3, 3};
    const int x = input(g, "x", 5, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int64_t wd[5] = {4, 3, 2, 2, 2}, md[1] = {3};
    int8_t w[96];
    for (int i = 0; i < 96; i++) w[i] = (int8_t)(int)lrintf(frand(-127.f, 127.f));
    const float ws[3] = {0.004f, 0.005f, 0.006f};
    const int wdq = op(g, "DequantizeLinear", 3,
                       (int[]){constant(g, OCTET_INT8, 5, wd, w), constant(g, OCTET_FLOAT, 1, md, ws),
                               constant(g, OCTET_INT8, 1, md, (int8_t[3]){0})});
    attr_i(g, "axis", 1);
    const float bias[3] = {0.1f, -0.2f, 0.05f}, gamma[3] = {1.f, 0.8f, 1.2f}, beta[3] = {0.f, 0.1f, -0.1f};
    const int ct = op(g, "ConvTranspose", 3, (int[]){xq, wdq, constant(g, OCTET_FLOAT, 1, md, bias)});
    attr_ints(g, "strides", 3, (int64_t[]){2, 2, 2});
    const int ctq = qdq_u8(g, ct, 0.02f, 128, NULL);
    const int in = op(g, "InstanceNormalization", 3,
                      (int[]){ctq, constant(g, OCTET_FLOAT, 1, md, gamma), constant(g, OCTET_FLOAT, 1, md, beta)});
    const int lr = op(g, "LeakyRelu", 1, (int[]){in});
    const int a = qdq_u8(g, lr, 0.015f, 40, NULL);
    const int64_t pads[10] = {0, 0, 1, 1, 1, 0, 0, 1, 1, 1}, pd[1] = {10};
    const int pad = qdq_u8(g, op(g, "Pad", 3, (int[]){a, constant(g, OCTET_INT64, 1, pd, pads), scalar_f(g, 0.f)}),
                           0.015f, 40, NULL);
    const int tr = op(g, "Transpose", 1, (int[]){pad});
    attr_ints(g, "perm", 5, (int64_t[]){0, 1, 4, 3, 2});
    const int trq = qdq_u8(g, tr, 0.015f, 40, NULL);
    const float scales[5] = {1, 1, 1, 1, 1.5f};
    const int64_t sd[1] = {5};
    const int rs = op(g, "Resize", 3, (int[]){trq, -1, constant(g, OCTET_FLOAT, 1, sd, scales)});
    const int rsq = qdq_u8(g, rs, 0.015f, 40, NULL);
    const int64_t starts[1] = {1}, ends[1] = {7}, axes[1] = {2}, one[1] = {1};
    const int sl = op(g, "Slice", 4,
                      (int[]){rsq, constant(g, OCTET_INT64, 1, one, starts), constant(g, OCTET_INT64, 1, one, ends),
                              constant(g, OCTET_INT64, 1, one, axes)});
    const int slq = qdq_u8(g, sl, 0.015f, 40, NULL);
    const int ap = op(g, "AveragePool", 1, (int[]){slq});
    attr_ints(g, "kernel_shape", 3, (int64_t[]){2, 2, 2});
    output(g, quant(g, ap, 0.01f, scalar_u8(g, 50)));
    float *xv = random_input(4 * 27, -2.f, 2.f);
    char *json = check_both(g, xv, "3-D decoder block");
    ck_assert_msg(count(json, "\"op\":\"QLinearConvTranspose\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"QLinearInstanceNormalization\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"epilogue\":\"LeakyRelu\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"QLinearAveragePool\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"precision\":\"fp32\"") == 0, "%s", json);
    ck_assert_msg(count(json, "\"precision\":\"int8\"") == 7, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* Q -> DQ -> Q with the same parameters -> DQ -> Sigmoid -> Q: the middle Q is the identity and
   goes; the Sigmoid reads the first Q's output. */
START_TEST(dq_q_pair_is_removed) {
    oct_graph *g = new_graph();
    const int64_t xd[2] = {4, 64};
    const int x = input(g, "x", 2, xd);
    const int sv = scalar_f(g, 0.05f), zv = scalar_u8(g, 128);
    const int q1 = op(g, "QuantizeLinear", 3, (int[]){x, sv, zv});
    const int q2 = op(g, "QuantizeLinear", 3, (int[]){dequant(g, q1, sv, zv), sv, zv});
    output(g, quant(g, op(g, "Sigmoid", 1, (int[]){dequant(g, q2, sv, zv)}), 1.f / 256.f, scalar_u8(g, 0)));
    float *xv = random_input(256, -6.f, 6.f);
    char *json = check_both(g, xv, "DQ->Q pair");
    ck_assert_msg(count(json, "\"op\":\"QuantizeLinear\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"QLinearLut\"") == 1, "%s", json);
    ck_assert_msg(count(json, "\"op\":\"DequantizeLinear\"") == 0, "%s", json);
    free(json);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* A zero scale on the output Q: the conv stays fp32 with the reason, and the model still runs as
   the reference does. */
START_TEST(zero_scale_falls_back) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 2, 6, 6};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int c = conv(g, xq, conv_weights(g, 3, 2, 3, 1, NULL), -1, 1);
    const int y = op(g, "QuantizeLinear", 3, (int[]){c, scalar_f(g, 0.f), scalar_u8(g, 128)});
    output(g, y);
    float *xv = random_input(72, -2.f, 2.f);
    run_result ref, low;
    run_graph(g, 0, xv, &ref);
    run_graph(g, 1, xv, &low);
    ck_assert_int_eq(memcmp(ref.out[0].data, low.out[0].data, 3 * 36), 0);
    ck_assert_msg(strstr(low.json, "\"op\":\"Conv\"") && strstr(low.json, "scale is zero"), "%s", low.json);
    release(&ref);
    release(&low);
    free(xv);
    oct_graph_free(g);
}
END_TEST

/* Per-channel weight scales of the wrong length: a clear error naming the scale, no crash. */
START_TEST(mismatched_per_channel_scale_is_an_error) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 2, 6, 6};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int64_t wd[4] = {4, 2, 3, 3}, sd[1] = {3};
    int8_t w[72] = {1};
    const float s[3] = {0.01f, 0.01f, 0.01f};
    const int sv = constant(g, OCTET_FLOAT, 1, sd, s);
    free(g->values[sv].name);
    g->values[sv].name = strdup("w_scale");
    const int wdq = op(g, "DequantizeLinear", 2, (int[]){constant(g, OCTET_INT8, 4, wd, w), sv});
    attr_i(g, "axis", 0);
    output(g, quant(g, conv(g, xq, wdq, -1, 1), 0.02f, scalar_u8(g, 128)));
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s_ = octet_session_create(&m, NULL, &err);
    ck_assert_ptr_null(s_);
    ck_assert_msg(strstr(err.msg, "w_scale") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "3") && strstr(err.msg, "4"), "%s", err.msg);
    oct_graph_free(g);
}
END_TEST

/* `octet inspect` text: a precision column, and the reason of an fp32 node. */
START_TEST(inspect_text_shows_precision) {
    oct_graph *g = new_graph();
    const int64_t xd[4] = {1, 3, 8, 8};
    const int x = input(g, "x", 4, xd);
    const int xq = qdq_u8(g, x, 0.02f, 128, NULL);
    const int c1 = conv(g, xq, conv_weights(g, 4, 3, 3, 1, NULL), -1, 1);
    const int y1 = quant(g, c1, 0.02f, scalar_u8(g, 128));
    output(g, y1);
    /* A conv whose output is a float graph output: no Q after it. */
    output(g, conv(g, xq, conv_weights(g, 2, 3, 1, 1, NULL), -1, 0));
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    octet_session_describe(s, f, 0);
    fclose(f);
    ck_assert_msg(strstr(text, "QLinearConv") && strstr(text, "int8"), "%s", text);
    ck_assert_msg(strstr(text, "(fp32: output is a graph output in fp32)"), "%s", text);
    ck_assert_msg(strstr(text, "precision: 1 of"), "%s", text);
    free(text);
    octet_session_free(s);
    oct_graph_free(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("qdq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, conv_relu_lowers_to_qlinearconv);
    tcase_add_test(tc, conv_clip_fp32_bias);
    tcase_add_test(tc, residual_add_lowers_to_qlinearadd);
    tcase_add_test(tc, concat_lowers);
    tcase_add_test(tc, maxpool_runs_on_int8_data);
    tcase_add_test(tc, two_convs_with_reshape);
    tcase_add_test(tc, gemm_and_matmul_lower);
    tcase_add_test(tc, activations_and_fallback);
    tcase_add_test(tc, silu_qdq_fuses_to_one_table);
    tcase_add_test(tc, decoder_block_3d);
    tcase_add_test(tc, dq_q_pair_is_removed);
    tcase_add_test(tc, zero_scale_falls_back);
    tcase_add_test(tc, mismatched_per_channel_scale_is_an_error);
    tcase_add_test(tc, inspect_text_shows_precision);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
