/* The quantized ops and int8 kernels against naive loops written here:
   - the int8 GEMM against a plain triple loop (odd sizes, nonzero zero points, int32 wrap-around);
   - requantization rounding (ties to even), clamping and bias;
   - QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear against the spec's formulas;
   - QLinearConv and ConvInteger against a naive integer convolution (exact) and against a float
     reference (dequantize, convolve in double, quantize: within 1 LSB), over groups, depthwise,
     1-D/3-D, strides, pads, dilations, auto_pad, int8/uint8 activations and weights, per-channel
     weight scales; thread counts must not change a bit;
   - QLinearMatMul and MatMulInteger with batch broadcasting, 1-D operands, per-column scales and
     per-row/per-column zero points, constant and run-time b;
   - bad inputs fail in infer with messages that name the problem. */
#include <check.h>

#include "test_session.h"
#include "test_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "kernels/ref/quant_kernels.h"

/* ---------------------------------------------------------------- random data */

static uint32_t rng = 12345u;
static uint32_t rnext(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
/* Uniform integer in [lo, hi]. */
static int32_t rint_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnext() % (uint32_t)(hi - lo + 1)); }
static float runi(float lo, float hi) { return lo + (hi - lo) * (float)(rnext() & 0xffff) / 65535.f; }

static int32_t tmin(octet_dtype t) { return t == OCTET_INT8 ? -128 : 0; }
static int32_t tmax(octet_dtype t) { return t == OCTET_INT8 ? 127 : 255; }

/* n random values of an 8-bit type, stored as bytes. */
static uint8_t *rand_q(octet_dtype t, int64_t n) {
    uint8_t *b = malloc((size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)rint_in(tmin(t), tmax(t));
    return b;
}
/* Element i of 8-bit data as an integer. */
static int32_t qat(octet_dtype t, const void *d, int64_t i) {
    return t == OCTET_INT8 ? ((const int8_t *)d)[i] : ((const uint8_t *)d)[i];
}

/* Round half to even in double, then saturate: the float reference of quantization. */
static int32_t quant_ref(double v, int32_t zp, octet_dtype t) {
    double r = nearbyint(v) + zp;
    if (r < tmin(t)) r = tmin(t);
    if (r > tmax(t)) r = tmax(t);
    return (int32_t)r;
}

/* The documented requantization (quant_kernels.h), written out independently. */
static int32_t requant_ref(int64_t acc, int32_t bias, float sx, float sw, float sy, int32_t zp, int32_t lo,
                           int32_t hi) {
    const float m = sx * sw / sy;
    const int32_t s = (int32_t)(uint32_t)((uint64_t)acc + (uint64_t)(int64_t)bias);
    float v = (float)s * m;
    const float r = rintf(v);
    int64_t q = (int64_t)r + zp;
    if (q < lo) q = lo;
    if (q > hi) q = hi;
    return (int32_t)q;
}

/* ---------------------------------------------------------------- graph building */

static oct_graph *g_new(int opset) {
    oct_graph *g = oct_graph_new();
    g->opset = opset;
    g->name = strdup("test");
    return g;
}
static int g_q(oct_graph *g, const char *name, octet_dtype t, int32_t v) {
    uint8_t b = (uint8_t)v;
    int32_t i = v;
    return test_graph_const(g, name, t, 0, NULL, t == OCTET_INT32 ? (void *)&i : (void *)&b);
}
static int g_act(oct_graph *g, const char *name) { return oct_graph_add_value(g, name, NULL); }
static int g_node(oct_graph *g, const char *type, int n_in, const int *in, int n_out, const int *out) {
    int i = oct_graph_add_node(g, type, type, "", n_in, n_out, NULL);
    ck_assert_int_ge(i, 0);
    memcpy(g->nodes[i].in, in, sizeof(int) * (size_t)n_in);
    memcpy(g->nodes[i].out, out, sizeof(int) * (size_t)n_out);
    for (int k = 0; k < n_out; k++) test_push_int(&g->outputs, &g->n_outputs, out[k]);
    return i;
}
static oct_attr *new_attr(oct_graph *g, int ni, const char *name, oct_attr_type t) {
    oct_node *n = &g->nodes[ni];
    n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = t;
    return a;
}
static void a_int(oct_graph *g, int ni, const char *name, int64_t v) { new_attr(g, ni, name, OCT_ATTR_INT)->i = v; }
static void a_str(oct_graph *g, int ni, const char *name, const char *s) {
    new_attr(g, ni, name, OCT_ATTR_STRING)->s = strdup(s);
}
static void a_ints(oct_graph *g, int ni, const char *name, int n, const int64_t *v) {
    oct_attr *a = new_attr(g, ni, name, OCT_ATTR_INTS);
    a->n = n;
    a->ints = malloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

/* ---------------------------------------------------------------- a tiny executor */

static int infer_all(oct_graph *g, octet_error *err) {
    if (oct_graph_toposort(g, err)) return -1;
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        n->op = oct_op_find(n->domain, n->op_type);
        ck_assert_msg(n->op != NULL, "no op %s", n->op_type);
        if (n->op->infer(g, n, err)) return -1;
    }
    return 0;
}

typedef struct {
    oct_graph *g;
    oct_tensor *t;
    char *owned;
} exec_t;

/* Infers and runs g with `threads`; inputs follow g->inputs. Returns the run's status in *rc. */
static exec_t exec_rc(oct_graph *g, const void *const *inputs, int threads, int *rc, octet_error *err) {
    ck_assert_msg(infer_all(g, err) == 0, "infer: %s", err->msg);
    exec_t e = {g, calloc((size_t)g->n_values, sizeof(oct_tensor)), calloc((size_t)g->n_values, 1)};
    for (int v = 0; v < g->n_values; v++) {
        oct_value *val = &g->values[v];
        e.t[v] = oct_value_tensor(val);
        if (val->kind == OCT_VAL_ACTIVATION && val->rank >= 0 && val->dtype) {
            int64_t n = oct_value_numel(val);
            e.t[v].data = calloc((size_t)(n > 0 ? n : 1), octet_dtype_size(val->dtype));
            e.owned[v] = 1;
        }
    }
    for (int i = 0; i < g->n_inputs; i++) e.t[g->inputs[i]].data = (void *)inputs[i];
    *rc = 0;
    for (int k = 0; k < g->n_nodes && !*rc; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        void *ws = malloc(n->workspace_bytes + 64);
        oct_run_ctx ctx = {g, e.t, ws, threads, NULL};
        *rc = n->op->run(&ctx, n, err);
        free(ws);
    }
    return e;
}
static exec_t exec(oct_graph *g, const void *const *inputs, int threads) {
    octet_error err = {0};
    int rc;
    exec_t e = exec_rc(g, inputs, threads, &rc, &err);
    ck_assert_msg(rc == 0, "run: %s", err.msg);
    return e;
}
static const void *out_data(const exec_t *e, int i) { return e->t[e->g->outputs[i]].data; }
static const oct_tensor *out_t(const exec_t *e, int i) { return &e->t[e->g->outputs[i]]; }
static void exec_free(exec_t *e) {
    for (int v = 0; v < e->g->n_values; v++)
        if (e->owned[v]) free(e->t[v].data);
    free(e->t);
    free(e->owned);
    oct_graph_free(e->g);
}

static void expect_infer_error(oct_graph *g, octet_status code, const char *needle) {
    octet_error err = {0};
    ck_assert_int_ne(infer_all(g, &err), 0);
    ck_assert_msg(err.code == code, "code %d (%s)", err.code, err.msg);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    oct_graph_free(g);
}

/* ---------------------------------------------------------------- the int8 GEMM */

/* Naive sum_k (w - zw[r]) (x - zx[c]) in int64, reduced to int32 the way 32-bit lanes wrap. */
static int32_t qgemm_naive(const uint8_t *w, int w_u8, int k, int r, const uint8_t *x, int nc, int c, int32_t zw,
                           int32_t zx) {
    int64_t s = 0;
    for (int j = 0; j < k; j++) {
        const int32_t wv = w_u8 ? (int32_t)w[(int64_t)r * k + j] : (int32_t)(int8_t)w[(int64_t)r * k + j];
        s += (int64_t)(wv - zw) * ((int32_t)x[(int64_t)j * nc + c] - zx);
    }
    return (int32_t)(uint32_t)(uint64_t)s;
}

static void qgemm_case(int rows, int nc, int k, int w_u8, int per_col_zx, int zw_kind) {
    uint8_t *w = rand_q(w_u8 ? OCTET_UINT8 : OCTET_INT8, (int64_t)rows * k);
    uint8_t *x = rand_q(OCTET_UINT8, (int64_t)k * nc);
    int32_t *zw_orig = malloc(sizeof(int32_t) * (size_t)rows), *zw = malloc(sizeof(int32_t) * (size_t)rows);
    int32_t *zx = malloc(sizeof(int32_t) * (size_t)nc);
    for (int r = 0; r < rows; r++) {
        zw_orig[r] = zw_kind == 0 ? (w_u8 ? 128 : 0) : (w_u8 ? rint_in(0, 255) : rint_in(-128, 127));
        zw[r] = zw_orig[r] - (w_u8 ? 128 : 0); /* the kernel's int8 domain */
    }
    const int32_t zx0 = rint_in(0, 255);
    for (int c = 0; c < nc; c++) zx[c] = per_col_zx ? rint_in(0, 255) : zx0;
    void *buf = aligned_alloc(64, (oct_ref_qweights_bytes(rows, k) + 63) / 64 * 64);
    oct_qweights pw;
    oct_ref_qweights_pack(rows, k, w, w_u8, k, 1, buf, &pw);
    /* Rows from r0 on, accumulators with a padded leading dimension. */
    const int r0 = rows > 2 ? 1 : 0, nr = rows - r0, ld = nc + 3;
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)nr * (size_t)ld);
    oct_ref_qgemm(&pw, r0, nr, nc, x, nc, zx0, per_col_zx ? zx : NULL, zw, acc, ld);
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            const int32_t want = qgemm_naive(w, w_u8, k, r0 + r, x, nc, c, zw_orig[r0 + r], zx[c]);
            ck_assert_msg(acc[r * ld + c] == want, "qgemm %dx%dx%d w_u8=%d at (%d,%d): %d vs %d", rows, nc, k, w_u8,
                          r, c, acc[r * ld + c], want);
        }
    free(w);
    free(x);
    free(zw_orig);
    free(zw);
    free(zx);
    free(buf);
    free(acc);
}

START_TEST(qgemm_matches_naive) {
    const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 13}, {5, 300, 29}, {37, 257, 70}, {2, 3, 1}, {9, 1, 131}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int w_u8 = 0; w_u8 < 2; w_u8++)
            for (int per_col = 0; per_col < 2; per_col++)
                for (int zk = 0; zk < 2; zk++) qgemm_case(sizes[i][0], sizes[i][1], sizes[i][2], w_u8, per_col, zk);
}
END_TEST

START_TEST(qgemm_wraps_like_int32) {
    /* 70000 products of 255 * -128 overflow int32: the result is the exact sum modulo 2^32. */
    const int k = 70000;
    int8_t *w = malloc((size_t)k);
    uint8_t *x = malloc((size_t)k);
    for (int j = 0; j < k; j++) {
        w[j] = -128;
        x[j] = 255;
    }
    void *buf = aligned_alloc(64, (oct_ref_qweights_bytes(1, k) + 63) / 64 * 64);
    oct_qweights pw;
    oct_ref_qweights_pack(1, k, w, 0, k, 1, buf, &pw);
    int32_t acc;
    const int32_t zw = 3;
    oct_ref_qgemm(&pw, 0, 1, 1, x, 1, 7, NULL, &zw, &acc, 1);
    const int64_t exact = (int64_t)k * (-128 - 3) * (255 - 7);
    ck_assert_int_eq(acc, (int32_t)(uint32_t)(uint64_t)exact);
    free(w);
    free(x);
    free(buf);
}
END_TEST

START_TEST(requant_rounds_half_to_even_and_clamps) {
    const int32_t acc[] = {1, 3, 5, -1, -3, 0, 1000, -1000, 7};
    const float m = 0.5f;
    oct_requant q = {.scale = &m, .scale_per_row = 0, .bias = NULL, .zp = 10, .qmin = 0, .qmax = 255, .out_s8 = 0};
    uint8_t y[9];
    oct_ref_requant(acc, 9, 0, 1, 9, &q, y, 9, 1);
    const uint8_t want[] = {10, 12, 12, 10, 8, 10, 255, 0, 14};
    for (int i = 0; i < 9; i++) ck_assert_msg(y[i] == want[i], "y[%d] = %u, want %u", i, y[i], want[i]);
    /* A fused Relu raises qmin to the zero point; int8 output; per-row scale and bias. */
    const float ms[2] = {0.25f, 1.f};
    const int32_t bias[2] = {2, -5};
    q = (oct_requant){.scale = ms, .scale_per_row = 1, .bias = bias, .zp = -3, .qmin = -3, .qmax = 127, .out_s8 = 1};
    const int32_t acc2[2][3] = {{0, -40, 500}, {4, 10, -200}};
    int8_t y2[3][2]; /* written transposed: rows of acc are columns of y */
    oct_ref_requant(&acc2[0][0], 3, 0, 2, 3, &q, y2, 1, 2);
    const int8_t want2[3][2] = {{-3, -3}, {-3, 2}, {123, -3}};
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 2; r++)
            ck_assert_msg(y2[c][r] == want2[c][r], "y2[%d][%d] = %d, want %d", c, r, y2[c][r], want2[c][r]);
}
END_TEST

/* ---------------------------------------------------------------- (de)quantization ops */

START_TEST(quantize_linear_per_tensor_and_axis) {
    /* ties to even, saturation and NaN -> zero point, uint8 and int8 */
    const float x[] = {5.f, 7.f, -5.f, -7.f, 1e9f, -1e9f, NAN, 0.f, 2.9f};
    const int64_t d[] = {9};
    for (int s8 = 0; s8 < 2; s8++) {
        const octet_dtype t = s8 ? OCTET_INT8 : OCTET_UINT8;
        oct_graph *g = g_new(13);
        int in[3] = {test_graph_input(g, "x", OCTET_FLOAT, 1, d), test_graph_f32(g, "s", 2.f), g_q(g, "z", t, s8 ? -1 : 100)};
        int out = g_act(g, "y");
        g_node(g, "QuantizeLinear", 3, in, 1, &out);
        const void *inputs[] = {x};
        exec_t e = exec(g, inputs, 2);
        ck_assert_int_eq(out_t(&e, 0)->dtype, t);
        const int32_t want_u[] = {102, 104, 98, 96, 255, 0, 100, 100, 101};
        const int32_t want_s[] = {1, 3, -3, -5, 127, -128, -1, -1, 0};
        for (int i = 0; i < 9; i++)
            ck_assert_int_eq(qat(t, out_data(&e, 0), i), s8 ? want_s[i] : want_u[i]);
        exec_free(&e);
    }
    /* per axis (axis = -2 of [2, 3, 4]) on random data against the formula; int32 input too */
    const int64_t dims[] = {2, 3, 4}, sd[] = {3};
    float xs[24], sc[3] = {0.5f, 0.25f, 3.f};
    int32_t xi[24];
    uint8_t zp[3] = {0, 128, 255};
    for (int i = 0; i < 24; i++) {
        xs[i] = runi(-300.f, 300.f);
        xi[i] = rint_in(-400, 400);
    }
    for (int as_int = 0; as_int < 2; as_int++) {
        oct_graph *g = g_new(13);
        int in[3] = {test_graph_input(g, "x", as_int ? OCTET_INT32 : OCTET_FLOAT, 3, dims), test_graph_const(g, "s", OCTET_FLOAT, 1, sd, sc),
                     test_graph_const(g, "z", OCTET_UINT8, 1, sd, zp)};
        int out = g_act(g, "y");
        int ni = g_node(g, "QuantizeLinear", 3, in, 1, &out);
        a_int(g, ni, "axis", -2);
        const void *inputs[] = {as_int ? (const void *)xi : (const void *)xs};
        exec_t e = exec(g, inputs, 1);
        const uint8_t *y = out_data(&e, 0);
        for (int i = 0; i < 24; i++) {
            const int c = (i / 4) % 3;
            const double v = as_int ? (double)xi[i] / sc[c] : (double)(xs[i] / sc[c]);
            ck_assert_msg(y[i] == quant_ref(v, zp[c], OCTET_UINT8), "y[%d] = %u", i, y[i]);
        }
        exec_free(&e);
    }
}
END_TEST

START_TEST(dequantize_linear_types_and_axis) {
    const int64_t dims[] = {3, 2}, sd[] = {3};
    const float sc[3] = {0.5f, 2.f, 0.125f};
    const uint8_t xu[6] = {0, 255, 128, 7, 9, 200};
    const int8_t xs[6] = {-128, 127, 0, -7, 9, 100};
    const int32_t xi[6] = {-100000, 7, 0, 2147483647, -5, 123456789};
    const uint8_t zu[3] = {128, 0, 9};
    const int8_t zs[3] = {-128, 5, 0};
    for (int kind = 0; kind < 3; kind++) {
        const octet_dtype t = kind == 0 ? OCTET_UINT8 : kind == 1 ? OCTET_INT8 : OCTET_INT32;
        oct_graph *g = g_new(13);
        int in[3] = {test_graph_input(g, "x", t, 2, dims), test_graph_const(g, "s", OCTET_FLOAT, 1, sd, sc), -1};
        if (kind < 2) in[2] = test_graph_const(g, "z", t, 1, sd, kind == 0 ? (const void *)zu : (const void *)zs);
        int out = g_act(g, "y");
        int ni = g_node(g, "DequantizeLinear", kind < 2 ? 3 : 2, in, 1, &out);
        a_int(g, ni, "axis", 0);
        const void *inputs[] = {kind == 0 ? (const void *)xu : kind == 1 ? (const void *)xs : (const void *)xi};
        exec_t e = exec(g, inputs, 1);
        const float *y = out_data(&e, 0);
        for (int i = 0; i < 6; i++) {
            const int c = i / 2;
            const int64_t xv = kind == 0 ? xu[i] : kind == 1 ? xs[i] : xi[i];
            const int64_t z = kind == 0 ? zu[c] : kind == 1 ? zs[c] : 0;
            ck_assert_msg(y[i] == (float)(xv - z) * sc[c], "kind %d y[%d] = %g", kind, i, (double)y[i]);
        }
        exec_free(&e);
    }
    /* int32 with a nonzero zero point is refused at run time */
    oct_graph *g = g_new(13);
    const int32_t one = 1;
    int in[3] = {test_graph_input(g, "x", OCTET_INT32, 2, dims), test_graph_f32(g, "s", 1.f), test_graph_const(g, "z", OCTET_INT32, 0, NULL, &one)};
    int out = g_act(g, "y");
    g_node(g, "DequantizeLinear", 3, in, 1, &out);
    const void *inputs[] = {xi};
    octet_error err = {0};
    int rc;
    exec_t e = exec_rc(g, inputs, 1, &rc, &err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.msg, "int32") != NULL, "%s", err.msg);
    exec_free(&e);
}
END_TEST

START_TEST(dynamic_quantize_linear_formula) {
    enum { N = 1000 };
    static float x[N];
    for (int trial = 0; trial < 4; trial++) {
        for (int i = 0; i < N; i++)
            x[i] = trial == 0 ? runi(-3.f, 5.f) : trial == 1 ? runi(0.5f, 2.f) : trial == 2 ? runi(-9.f, -1.f) : 0.f;
        const int64_t d[] = {N};
        oct_graph *g = g_new(11);
        int in = test_graph_input(g, "x", OCTET_FLOAT, 1, d);
        int out[3] = {g_act(g, "y"), g_act(g, "ys"), g_act(g, "yz")};
        g_node(g, "DynamicQuantizeLinear", 1, &in, 3, out);
        const void *inputs[] = {x};
        exec_t e = exec(g, inputs, 3);
        float lo = 0.f, hi = 0.f;
        for (int i = 0; i < N; i++) {
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
        }
        const float scale = hi == lo ? 1.f : (hi - lo) / 255.f;
        const int32_t zp = quant_ref((double)(0.f - lo / scale), 0, OCTET_UINT8);
        ck_assert_float_eq(*(const float *)out_data(&e, 1), scale);
        ck_assert_int_eq(*(const uint8_t *)out_data(&e, 2), zp);
        ck_assert_int_eq(out_t(&e, 1)->rank, 0);
        const uint8_t *y = out_data(&e, 0);
        for (int i = 0; i < N; i++) ck_assert_int_eq(y[i], quant_ref((double)(x[i] / scale), zp, OCTET_UINT8));
        if (trial == 1) ck_assert_int_eq(zp, 0);
        if (trial == 2) ck_assert_int_eq(zp, 255);
        exec_free(&e);
    }
}
END_TEST

/* ---------------------------------------------------------------- QLinearConv / ConvInteger */

typedef struct {
    int nsp;
    int64_t N, C, M, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    const char *auto_pad; /* SAME_UPPER/SAME_LOWER: pb/pe are derived here */
    octet_dtype xt, wt, yt;
    int per_channel, bias;
} qconv_case;

/* Geometry right-aligned into 3 dims, pads resolved. */
typedef struct {
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
} geom3;

static geom3 geom_of(const qconv_case *c) {
    geom3 q;
    const int off = 3 - c->nsp;
    for (int i = 0; i < 3; i++) {
        const int j = i - off;
        q.in[i] = j < 0 ? 1 : c->in[j];
        q.k[i] = j < 0 ? 1 : c->k[j];
        q.s[i] = j < 0 ? 1 : c->s[j];
        q.d[i] = j < 0 ? 1 : c->d[j];
        int64_t pb = j < 0 ? 0 : c->pb[j], pe = j < 0 ? 0 : c->pe[j];
        if (j >= 0 && c->auto_pad) {
            const int64_t out = (q.in[i] + q.s[i] - 1) / q.s[i];
            int64_t total = (out - 1) * q.s[i] + (q.k[i] - 1) * q.d[i] + 1 - q.in[i];
            if (total < 0) total = 0;
            pb = strcmp(c->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            pe = total - pb;
        }
        q.pb[i] = pb;
        q.out[i] = (q.in[i] + pb + pe - (q.k[i] - 1) * q.d[i] - 1) / q.s[i] + 1;
    }
    return q;
}

/* Naive integer convolution: acc = sum (x - zx)(w - zw[m]) over taps inside the input. */
static void qconv_naive(const qconv_case *c, const geom3 *q, const void *x, int32_t zx, const void *w,
                        const int32_t *zw, int64_t *acc) {
    const int64_t Cg = c->C / c->group, Mg = c->M / c->group;
    const int64_t ov = q->out[0] * q->out[1] * q->out[2], iv = q->in[0] * q->in[1] * q->in[2];
    const int64_t kv = q->k[0] * q->k[1] * q->k[2];
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++)
            for (int64_t o = 0; o < ov; o++) {
                const int64_t o0 = o / (q->out[1] * q->out[2]), o1 = (o / q->out[2]) % q->out[1], o2 = o % q->out[2];
                int64_t s = 0;
                for (int64_t cg = 0; cg < Cg; cg++) {
                    const int64_t ci = (m / Mg) * Cg + cg;
                    for (int64_t t = 0; t < kv; t++) {
                        const int64_t k0 = t / (q->k[1] * q->k[2]), k1 = (t / q->k[2]) % q->k[1], k2 = t % q->k[2];
                        const int64_t i0 = o0 * q->s[0] - q->pb[0] + k0 * q->d[0];
                        const int64_t i1 = o1 * q->s[1] - q->pb[1] + k1 * q->d[1];
                        const int64_t i2 = o2 * q->s[2] - q->pb[2] + k2 * q->d[2];
                        if (i0 < 0 || i0 >= q->in[0] || i1 < 0 || i1 >= q->in[1] || i2 < 0 || i2 >= q->in[2]) continue;
                        const int64_t xi = (n * c->C + ci) * iv + (i0 * q->in[1] + i1) * q->in[2] + i2;
                        s += (int64_t)(qat(c->xt, x, xi) - zx) * (qat(c->wt, w, (m * Cg + cg) * kv + t) - zw[m]);
                    }
                }
                acc[(n * c->M + m) * ov + o] = s;
            }
}

/* Adds the node's geometry attributes. */
static void conv_attrs(oct_graph *g, int ni, const qconv_case *c) {
    int64_t pads[6];
    for (int i = 0; i < c->nsp; i++) {
        pads[i] = c->pb[i];
        pads[i + c->nsp] = c->pe[i];
    }
    a_ints(g, ni, "strides", c->nsp, c->s);
    a_ints(g, ni, "dilations", c->nsp, c->d);
    a_ints(g, ni, "kernel_shape", c->nsp, c->k);
    if (c->auto_pad) a_str(g, ni, "auto_pad", c->auto_pad);
    else a_ints(g, ni, "pads", 2 * c->nsp, pads);
    a_int(g, ni, "group", c->group);
}

static void run_qconv_case(const qconv_case *c) {
    const geom3 q = geom_of(c);
    const int64_t Cg = c->C / c->group, kv = q.k[0] * q.k[1] * q.k[2];
    const int64_t ov = q.out[0] * q.out[1] * q.out[2], iv = q.in[0] * q.in[1] * q.in[2];
    const int64_t xn = c->N * c->C * iv, wn = c->M * Cg * kv, yn = c->N * c->M * ov;
    uint8_t *x = rand_q(c->xt, xn), *w = rand_q(c->wt, wn);
    const int32_t zx = rint_in(tmin(c->xt), tmax(c->xt));
    const int64_t nsc = c->per_channel ? c->M : 1;
    float *sw = malloc(sizeof(float) * (size_t)nsc);
    uint8_t *zw8 = malloc((size_t)nsc);
    int32_t *zw = malloc(sizeof(int32_t) * (size_t)c->M), *bias = malloc(sizeof(int32_t) * (size_t)c->M);
    for (int64_t i = 0; i < nsc; i++) {
        sw[i] = runi(0.002f, 0.02f);
        zw8[i] = (uint8_t)rint_in(tmin(c->wt) / 4 + (c->wt == OCTET_UINT8 ? 100 : 0), tmax(c->wt) / 4 + (c->wt == OCTET_UINT8 ? 100 : 0));
    }
    for (int64_t m = 0; m < c->M; m++) {
        zw[m] = qat(c->wt, zw8, c->per_channel ? m : 0);
        bias[m] = c->bias ? rint_in(-3000, 3000) : 0;
    }
    const float sx = runi(0.01f, 0.05f);
    int64_t *acc = malloc(sizeof(int64_t) * (size_t)yn);
    qconv_naive(c, &q, x, zx, w, zw, acc);
    /* Output scale from the real range, so that most values land inside and a few saturate. */
    double amax = 1e-9;
    for (int64_t i = 0; i < yn; i++) {
        const int64_t m = (i / ov) % c->M;
        const double real = ((double)acc[i] + bias[m]) * sx * sw[c->per_channel ? m : 0];
        amax = fabs(real) > amax ? fabs(real) : amax;
    }
    const float sy = (float)(amax / 110.0);
    const int32_t zy = c->yt == OCTET_UINT8 ? rint_in(100, 150) : rint_in(-20, 20);

    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, Cg}, md[1] = {c->M}, sd[1] = {nsc};
    for (int i = 0; i < c->nsp; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
    }
    for (int threads = 1; threads <= 4; threads += 3) {
        /* QLinearConv: exact against the documented requantization, within 1 LSB of float. */
        oct_graph *g = g_new(10);
        int in[9] = {test_graph_input(g, "x", c->xt, 2 + c->nsp, xd), test_graph_f32(g, "xs", sx), g_q(g, "xz", c->xt, zx),
                     test_graph_const(g, "w", c->wt, 2 + c->nsp, wd, w), test_graph_const(g, "ws", OCTET_FLOAT, c->per_channel, sd, sw),
                     test_graph_const(g, "wz", c->wt, c->per_channel, sd, zw8), test_graph_f32(g, "ys", sy), g_q(g, "yz", c->yt, zy),
                     c->bias ? test_graph_const(g, "b", OCTET_INT32, 1, md, bias) : -1};
        int out = g_act(g, "y");
        conv_attrs(g, g_node(g, "QLinearConv", c->bias ? 9 : 8, in, 1, &out), c);
        const void *inputs[] = {x};
        exec_t e = exec(g, inputs, threads);
        ck_assert_int_eq(out_t(&e, 0)->dtype, c->yt);
        ck_assert_int_eq(test_numel(out_t(&e, 0)->rank, out_t(&e, 0)->dims), yn);
        const void *y = out_data(&e, 0);
        for (int64_t i = 0; i < yn; i++) {
            const int64_t m = (i / ov) % c->M;
            const float swm = sw[c->per_channel ? m : 0];
            const int32_t exact = requant_ref(acc[i], bias[m], sx, swm, sy, zy, tmin(c->yt), tmax(c->yt));
            const int32_t got = qat(c->yt, y, i);
            ck_assert_msg(got == exact, "QLinearConv [%lld]: %d vs exact %d", (long long)i, got, exact);
            const double real = ((double)acc[i] + bias[m]) * sx * swm;
            const int32_t fref = quant_ref(real / sy, zy, c->yt);
            ck_assert_msg(abs(got - fref) <= 1, "QLinearConv [%lld]: %d vs float reference %d", (long long)i, got, fref);
        }
        exec_free(&e);

        /* ConvInteger (no bias, the zero points of the same case): the accumulators themselves. */
        g = g_new(10);
        int in2[4] = {test_graph_input(g, "x", c->xt, 2 + c->nsp, xd), test_graph_const(g, "w", c->wt, 2 + c->nsp, wd, w),
                      g_q(g, "xz", c->xt, zx), test_graph_const(g, "wz", c->wt, c->per_channel, sd, zw8)};
        out = g_act(g, "y");
        conv_attrs(g, g_node(g, "ConvInteger", 4, in2, 1, &out), c);
        e = exec(g, inputs, threads);
        ck_assert_int_eq(out_t(&e, 0)->dtype, OCTET_INT32);
        const int32_t *yi = out_data(&e, 0);
        for (int64_t i = 0; i < yn; i++)
            ck_assert_msg(yi[i] == (int32_t)acc[i], "ConvInteger [%lld]: %d vs %lld", (long long)i, yi[i],
                          (long long)acc[i]);
        exec_free(&e);
    }
    free(x);
    free(w);
    free(sw);
    free(zw8);
    free(zw);
    free(bias);
    free(acc);
}

START_TEST(qconv_cases) {
    const octet_dtype U = OCTET_UINT8, S = OCTET_INT8;
    const qconv_case cases[] = {
        /* 2-D 3x3, pads, uint8 x / int8 w, per-channel, bias */
        {2, 1, 3, 5, 1, {9, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, NULL, U, S, U, 1, 1},
        /* strides 2, asymmetric pads, int8 x / uint8 w, int8 output */
        {2, 2, 4, 6, 1, {11, 10}, {3, 2}, {2, 2}, {1, 1}, {0, 1}, {2, 0}, NULL, S, U, S, 1, 1},
        /* groups 2 with dilation, per-tensor weights */
        {2, 1, 6, 4, 2, {10, 9}, {3, 3}, {1, 2}, {2, 1}, {2, 1}, {1, 2}, NULL, U, U, U, 0, 1},
        /* depthwise 3x3 stride 2 SAME_UPPER, int8 x */
        {2, 2, 5, 5, 5, {13, 12}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, "SAME_UPPER", S, S, U, 1, 1},
        /* depthwise multiplier 2, SAME_LOWER, uint8 weights */
        {2, 1, 3, 6, 3, {7, 9}, {4, 3}, {1, 2}, {1, 1}, {0, 0}, {0, 0}, "SAME_LOWER", U, U, S, 1, 0},
        /* 1x1 pointwise over uint8 (direct path) and over int8 (unfolded) */
        {2, 2, 8, 7, 1, {5, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, NULL, U, S, U, 1, 1},
        {2, 1, 8, 7, 1, {5, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, NULL, S, S, S, 0, 1},
        /* 1-D with groups */
        {1, 2, 4, 6, 2, {17}, {3}, {2}, {2}, {2}, {1}, NULL, U, S, U, 1, 1},
        /* 3-D, groups 2, strides and pads */
        {3, 1, 4, 6, 2, {5, 6, 7}, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 1, 0}, {1, 0, 1}, NULL, S, S, U, 1, 1},
        /* 3-D depthwise */
        {3, 1, 3, 3, 3, {4, 5, 6}, {3, 2, 3}, {1, 1, 1}, {1, 2, 1}, {1, 0, 1}, {1, 1, 1}, NULL, U, S, U, 0, 1},
        /* larger: several pixel tiles, output-channel blocks and accumulator sub-blocks */
        {2, 1, 64, 80, 1, {40, 40}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, NULL, U, S, U, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_qconv_case(&cases[i]);
}
END_TEST

/* ---------------------------------------------------------------- QLinearMatMul / MatMulInteger */

typedef struct {
    int ra, rb;
    int64_t ad[4], bd[4];
    octet_dtype at, bt, yt;
    int per_col;   /* b scale and zero point per column */
    int per_row;   /* a zero point per row (MatMulInteger only) */
    int b_const;
} qmm_case;

/* Output dims of numpy matmul, and for every output matrix the a and b matrix it reads. */
static int mm_shape(const qmm_case *c, int64_t *M, int64_t *K, int64_t *N, int64_t *od, int *orank, int64_t *nb,
                    int64_t *a_of, int64_t *b_of) {
    *M = c->ra == 1 ? 1 : c->ad[c->ra - 2];
    *K = c->ad[c->ra - 1];
    *N = c->rb == 1 ? 1 : c->bd[c->rb - 1];
    const int ba = c->ra > 2 ? c->ra - 2 : 0, bb = c->rb > 2 ? c->rb - 2 : 0, br = ba > bb ? ba : bb;
    int64_t bdims[4];
    *nb = 1;
    for (int d = 0; d < br; d++) {
        const int64_t x = d - (br - ba) >= 0 ? c->ad[d - (br - ba)] : 1, y = d - (br - bb) >= 0 ? c->bd[d - (br - bb)] : 1;
        bdims[d] = x > y ? x : y;
        od[d] = bdims[d];
        *nb *= bdims[d];
    }
    *orank = br;
    if (c->ra > 1) od[(*orank)++] = *M;
    if (c->rb > 1) od[(*orank)++] = *N;
    for (int64_t o = 0; o < *nb; o++) {
        int64_t idx[4], rem = o;
        for (int d = br - 1; d >= 0; d--) {
            idx[d] = rem % bdims[d];
            rem /= bdims[d];
        }
        int64_t ai = 0, bi = 0;
        for (int d = 0; d < br; d++) {
            const int da = d - (br - ba), db = d - (br - bb);
            if (da >= 0) ai = ai * c->ad[da] + (c->ad[da] == 1 ? 0 : idx[d]);
            if (db >= 0) bi = bi * c->bd[db] + (c->bd[db] == 1 ? 0 : idx[d]);
        }
        a_of[o] = ai;
        b_of[o] = bi;
    }
    return 0;
}

static void run_qmm_case(const qmm_case *c) {
    int64_t M, K, N, od[6], nb, a_of[64], b_of[64];
    int orank;
    mm_shape(c, &M, &K, &N, od, &orank, &nb, a_of, b_of);
    const int64_t an = test_numel(c->ra, c->ad), bn = test_numel(c->rb, c->bd), yn = nb * M * N;
    uint8_t *a = rand_q(c->at, an), *b = rand_q(c->bt, bn);
    uint8_t *za = rand_q(c->at, M), *zb = rand_q(c->bt, N);
    float *sb = malloc(sizeof(float) * (size_t)N);
    for (int64_t j = 0; j < N; j++) sb[j] = runi(0.002f, 0.02f);
    const float sa = runi(0.01f, 0.05f);
    int64_t *acc = malloc(sizeof(int64_t) * (size_t)yn);
    for (int pass = 0; pass < 2; pass++) { /* 0: QLinearMatMul zero points; 1: MatMulInteger ones */
        const int per_row = pass == 1 && c->per_row;
        for (int64_t o = 0; o < nb; o++)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t s = 0;
                    const int32_t zav = qat(c->at, za, per_row ? i : 0), zbv = qat(c->bt, zb, c->per_col ? j : 0);
                    for (int64_t k = 0; k < K; k++)
                        s += (int64_t)(qat(c->at, a, (a_of[o] * M + i) * K + k) - zav) *
                             (qat(c->bt, b, (b_of[o] * K + k) * N + j) - zbv);
                    acc[(o * M + i) * N + j] = s;
                }
        const int64_t zbd[2] = {1, N};
        const int64_t zad[2] = {M, 1};
        oct_graph *g = g_new(10);
        int ia = test_graph_input(g, "a", c->at, c->ra, c->ad);
        int ib = c->b_const ? test_graph_const(g, "b", c->bt, c->rb, c->bd, b) : test_graph_input(g, "b", c->bt, c->rb, c->bd);
        const void *inputs[] = {a, b};
        int out = g_act(g, "y");
        if (pass == 0) {
            double amax = 1e-9;
            for (int64_t i = 0; i < yn; i++) {
                const double r = (double)acc[i] * sa * sb[c->per_col ? i % N : 0];
                amax = fabs(r) > amax ? fabs(r) : amax;
            }
            const float sy = (float)(amax / 100.0);
            const int32_t zy = c->yt == OCTET_UINT8 ? rint_in(100, 150) : rint_in(-20, 20);
            int in[8] = {ia, test_graph_f32(g, "as", sa), g_q(g, "az", c->at, qat(c->at, za, 0)), ib,
                         test_graph_const(g, "bs", OCTET_FLOAT, c->per_col ? 2 : 0, zbd, sb),
                         c->per_col ? test_graph_const(g, "bz", c->bt, 2, zbd, zb) : g_q(g, "bz", c->bt, qat(c->bt, zb, 0)),
                         test_graph_f32(g, "ys", sy), g_q(g, "yz", c->yt, zy)};
            g_node(g, "QLinearMatMul", 8, in, 1, &out);
            exec_t e = exec(g, inputs, 3);
            ck_assert_int_eq(out_t(&e, 0)->rank, orank);
            for (int d = 0; d < orank; d++) ck_assert_int_eq(out_t(&e, 0)->dims[d], od[d]);
            const void *y = out_data(&e, 0);
            for (int64_t i = 0; i < yn; i++) {
                const float sbj = sb[c->per_col ? i % N : 0];
                const int32_t exact = requant_ref(acc[i], 0, sa, sbj, sy, zy, tmin(c->yt), tmax(c->yt));
                const int32_t got = qat(c->yt, y, i);
                ck_assert_msg(got == exact, "QLinearMatMul [%lld]: %d vs exact %d", (long long)i, got, exact);
                const int32_t fref = quant_ref((double)acc[i] * sa * sbj / sy, zy, c->yt);
                ck_assert_msg(abs(got - fref) <= 1, "QLinearMatMul [%lld]: %d vs float %d", (long long)i, got, fref);
            }
            exec_free(&e);
        } else {
            int in[4] = {ia, ib, per_row ? test_graph_const(g, "az", c->at, 2, zad, za) : g_q(g, "az", c->at, qat(c->at, za, 0)),
                         c->per_col ? test_graph_const(g, "bz", c->bt, 1, &N, zb) : g_q(g, "bz", c->bt, qat(c->bt, zb, 0))};
            g_node(g, "MatMulInteger", 4, in, 1, &out);
            exec_t e = exec(g, inputs, 2);
            ck_assert_int_eq(out_t(&e, 0)->dtype, OCTET_INT32);
            const int32_t *y = out_data(&e, 0);
            for (int64_t i = 0; i < yn; i++)
                ck_assert_msg(y[i] == (int32_t)acc[i], "MatMulInteger [%lld]: %d vs %lld", (long long)i, y[i],
                              (long long)acc[i]);
            exec_free(&e);
        }
    }
    free(a);
    free(b);
    free(za);
    free(zb);
    free(sb);
    free(acc);
}

START_TEST(qmatmul_cases) {
    const octet_dtype U = OCTET_UINT8, S = OCTET_INT8;
    const qmm_case cases[] = {
        {2, 2, {5, 7}, {7, 9}, U, S, U, 1, 1, 1},
        {2, 2, {5, 7}, {7, 9}, S, U, S, 0, 0, 0},
        {4, 3, {2, 1, 5, 7}, {3, 7, 9}, U, U, U, 1, 1, 0},
        {4, 3, {2, 1, 5, 7}, {3, 7, 9}, S, S, S, 1, 0, 1},
        {1, 3, {7}, {2, 7, 4}, U, S, U, 1, 0, 0},
        {3, 1, {3, 5, 7}, {7}, S, S, U, 0, 1, 1},
        {2, 2, {300, 70}, {70, 270}, U, S, U, 1, 1, 1},
        {2, 2, {1, 131}, {131, 33}, U, U, S, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_qmm_case(&cases[i]);
}
END_TEST

/* ---------------------------------------------------------------- bad inputs */

/* A QLinearConv [1,4,5,5] x [6,4,3,3] graph with one parameter replaced. */
static oct_graph *bad_qconv(int which) {
    oct_graph *g = g_new(10);
    const int64_t xd[] = {1, 4, 5, 5}, wd[] = {6, 4, 3, 3}, five[] = {5}, six[] = {6}, two[] = {2};
    static uint8_t w[216];
    static float sw[6] = {1, 1, 1, 1, 1, 1};
    static uint8_t zw[6];
    static int32_t bias[6];
    int in[9] = {test_graph_input(g, "x", OCTET_UINT8, 4, xd), test_graph_f32(g, "xs", 0.1f), g_q(g, "xz", OCTET_UINT8, 3),
                 test_graph_const(g, "w", OCTET_INT8, 4, wd, w), test_graph_const(g, "ws", OCTET_FLOAT, 1, six, sw),
                 test_graph_const(g, "wz", OCTET_INT8, 1, six, zw), test_graph_f32(g, "ys", 0.2f), g_q(g, "yz", OCTET_UINT8, 5),
                 test_graph_const(g, "b", OCTET_INT32, 1, six, bias)};
    switch (which) {
    case 0: in[4] = test_graph_const(g, "ws5", OCTET_FLOAT, 1, five, sw); break;        /* 5 scales for 6 channels */
    case 1: in[2] = g_q(g, "xz8", OCTET_INT8, 3); break;                     /* x zero point int8, x uint8 */
    case 2: in[5] = test_graph_const(g, "wzu", OCTET_UINT8, 1, six, zw); break;         /* w zero point uint8, w int8 */
    case 3: in[8] = test_graph_const(g, "b5", OCTET_INT32, 1, five, bias); break;       /* bias shape */
    case 4: in[6] = test_graph_const(g, "ys2", OCTET_FLOAT, 1, two, sw); break;         /* y_scale with two values */
    case 5: in[8] = test_graph_const(g, "bf", OCTET_FLOAT, 1, six, sw); break;          /* float bias */
    default: break;
    }
    int out = g_act(g, "y");
    g_node(g, "QLinearConv", 9, in, 1, &out);
    return g;
}

START_TEST(bad_inputs_fail_clearly) {
    expect_infer_error(bad_qconv(0), OCTET_ERR_SHAPE, "w_scale 'ws5' has 5 values");
    expect_infer_error(bad_qconv(1), OCTET_ERR_SHAPE, "x_zero_point 'xz8' is int8, expected uint8");
    expect_infer_error(bad_qconv(2), OCTET_ERR_SHAPE, "w_zero_point 'wzu' is uint8, expected int8");
    expect_infer_error(bad_qconv(3), OCTET_ERR_SHAPE, "bias 'b5' must have shape [6]");
    expect_infer_error(bad_qconv(4), OCTET_ERR_SHAPE, "y_scale 'ys2' has 2 values");
    expect_infer_error(bad_qconv(5), OCTET_ERR_SHAPE, "bias 'bf' is float32, expected int32");

    /* QLinearMatMul: per-row a_scale is refused, b_scale must match the columns, inner dims */
    const int64_t ad[] = {3, 4}, bd[] = {4, 5}, bbad[] = {6, 5}, three[] = {3}, four[] = {4};
    const float s3[3] = {1, 1, 1}, s4[4] = {1, 1, 1, 1};
    for (int which = 0; which < 3; which++) {
        oct_graph *g = g_new(10);
        int in[8] = {test_graph_input(g, "a", OCTET_UINT8, 2, ad), test_graph_f32(g, "as", 0.1f), g_q(g, "az", OCTET_UINT8, 1),
                     test_graph_input(g, "b", OCTET_INT8, 2, which == 2 ? bbad : bd), test_graph_f32(g, "bs", 0.1f), g_q(g, "bz", OCTET_INT8, 0),
                     test_graph_f32(g, "ys", 0.1f), g_q(g, "yz", OCTET_UINT8, 0)};
        if (which == 0) in[1] = test_graph_const(g, "as3", OCTET_FLOAT, 1, three, s3);
        if (which == 1) in[4] = test_graph_const(g, "bs4", OCTET_FLOAT, 1, four, s4);
        int out = g_act(g, "y");
        g_node(g, "QLinearMatMul", 8, in, 1, &out);
        if (which == 0) expect_infer_error(g, OCTET_ERR_UNSUPPORTED, "a_scale 'as3' is per row");
        if (which == 1) expect_infer_error(g, OCTET_ERR_SHAPE, "b_scale 'bs4' has 4 values");
        if (which == 2) expect_infer_error(g, OCTET_ERR_SHAPE, "inner dimensions differ");
    }

    /* (De)quantization: per-axis scale of the wrong length, zero point type, per-axis at opset 10 */
    const int64_t xd[] = {2, 3};
    for (int which = 0; which < 3; which++) {
        oct_graph *g = g_new(which == 2 ? 10 : 13);
        int in[3] = {test_graph_input(g, "x", which == 1 ? OCTET_UINT8 : OCTET_FLOAT, 2, xd),
                     test_graph_const(g, "s", OCTET_FLOAT, 1, which == 0 ? four : three, s4),
                     which == 1 ? g_q(g, "z", OCTET_INT8, 0) : test_graph_const(g, "z", OCTET_UINT8, 1, which == 0 ? four : three, ad)};
        int out = g_act(g, "y");
        g_node(g, which == 1 ? "DequantizeLinear" : "QuantizeLinear", 3, in, 1, &out);
        if (which == 0) expect_infer_error(g, OCTET_ERR_SHAPE, "scale 's' has 4 values but axis 1");
        if (which == 1) expect_infer_error(g, OCTET_ERR_SHAPE, "zero point 'z' is int8, expected uint8");
        if (which == 2) expect_infer_error(g, OCTET_ERR_SHAPE, "per-axis quantization needs opset 13");
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_quant");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, qgemm_matches_naive);
    tcase_add_test(tc, qgemm_wraps_like_int32);
    tcase_add_test(tc, requant_rounds_half_to_even_and_clamps);
    tcase_add_test(tc, quantize_linear_per_tensor_and_axis);
    tcase_add_test(tc, dequantize_linear_types_and_axis);
    tcase_add_test(tc, dynamic_quantize_linear_formula);
    tcase_add_test(tc, qconv_cases);
    tcase_add_test(tc, qmatmul_cases);
    tcase_add_test(tc, bad_inputs_fail_clearly);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
