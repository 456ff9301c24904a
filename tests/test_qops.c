/* The remaining int8 ops against float references written here (dequantize, the float op in
   double, quantize with ties to even):
   - QLinearSigmoid / QLinearLeakyRelu / octet QLinearLut over all 256 inputs: exact;
   - QLinearAdd / QLinearMul with numpy broadcasting: within 1 LSB (ties to even checked exactly);
   - QLinearConcat (copy and requantizing inputs): exact;
   - QLinearGlobalAveragePool and QLinearAveragePool, NCHW and channels-last: within 1 LSB;
   - QGemm: transposes, alpha, every C shape, per-column scales and zero points, quantized and
     float output, constant and run-time B: within 1 LSB;
   - QLinearConvTranspose 2-D/3-D with groups, strides, dilations, pads, output_padding and outputs
     larger than one accumulator slab: within 1 LSB, and identical for 1 and 3 threads;
   - QLinearInstanceNormalization on volumes bigger than a 32-bit partial sum: within 1 LSB;
   - fused Relu/Clip on QLinearConv, QLinearMatMul, QGemm and QLinearConvTranspose: exactly the
     unfused result clamped at Q(lo), Q(hi);
   - bad inputs fail in infer with messages that name the problem.
   Every case runs for uint8 and int8. */
#include <check.h>

#include "test_session.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"

/* ---------------------------------------------------------------- random data */

static uint32_t rng = 2024u;
static uint32_t rnext(void) {
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}
static int32_t rint_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnext() % (uint32_t)(hi - lo + 1)); }
static float runi(float lo, float hi) { return lo + (hi - lo) * (float)(rnext() & 0xffff) / 65535.f; }

static octet_dtype qt(int s8) { return s8 ? OCTET_INT8 : OCTET_UINT8; }
static int32_t tmin(int s8) { return s8 ? -128 : 0; }
static int32_t tmax(int s8) { return s8 ? 127 : 255; }

static uint8_t *rand_bytes(int64_t n, int s8, int32_t lo, int32_t hi) {
    uint8_t *b = malloc((size_t)(n > 0 ? n : 1));
    if (lo < tmin(s8)) lo = tmin(s8);
    if (hi > tmax(s8)) hi = tmax(s8);
    for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)rint_in(lo, hi);
    return b;
}
static int32_t val(const uint8_t *d, int64_t i, int s8) { return s8 ? (int32_t)(int8_t)d[i] : (int32_t)d[i]; }

/* Quantization of the real value v: ties to even in double, clamped to the type. */
static int32_t qref(double v, float scale, int32_t zp, int s8) {
    double r = nearbyint(v / (double)scale) + zp;
    if (r < tmin(s8)) r = tmin(s8);
    if (r > tmax(s8)) r = tmax(s8);
    return (int32_t)r;
}
static double dq(int32_t q, float scale, int32_t zp) { return (double)(q - zp) * (double)scale; }

/* ---------------------------------------------------------------- graph building */

static oct_graph *g_new(void) {
    oct_graph *g = oct_graph_new();
    g->opset = 17;
    g->ms_opset = 1;
    g->name = strdup("test");
    return g;
}
static int g_zp(oct_graph *g, const char *name, int s8, int32_t v) {
    const uint8_t b = (uint8_t)v;
    return test_graph_const(g, name, qt(s8), 0, NULL, &b);
}
static int g_act(oct_graph *g, const char *name) { return oct_graph_add_value(g, name, NULL); }
static int g_node(oct_graph *g, const char *domain, const char *type, int n_in, const int *in, int out) {
    int i = oct_graph_add_node(g, type, type, domain, n_in, 1, NULL);
    ck_assert_int_ge(i, 0);
    memcpy(g->nodes[i].in, in, sizeof(int) * (size_t)n_in);
    g->nodes[i].out[0] = out;
    test_push_int(&g->outputs, &g->n_outputs, out);
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
static void a_float(oct_graph *g, int ni, const char *name, float v) { new_attr(g, ni, name, OCT_ATTR_FLOAT)->f = v; }
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
        ck_assert_msg(n->op != NULL, "no op %s.%s", n->domain, n->op_type);
        if (n->op->infer(g, n, err)) return -1;
    }
    return 0;
}

typedef struct {
    oct_graph *g;
    oct_tensor *t;
    char *owned;
} exec_t;

/* Infers and runs g with `threads`; inputs follow g->inputs. */
static exec_t exec(oct_graph *g, const void *const *inputs, int threads) {
    octet_error err = {0};
    ck_assert_msg(infer_all(g, &err) == 0, "infer: %s", err.msg);
    exec_t e = {g, calloc((size_t)g->n_values, sizeof(oct_tensor)), calloc((size_t)g->n_values, 1)};
    for (int v = 0; v < g->n_values; v++) {
        oct_value *val = &g->values[v];
        e.t[v] = oct_value_tensor(val);
        if (val->kind == OCT_VAL_ACTIVATION && val->rank >= 0 && val->dtype) {
            const int64_t n = oct_value_numel(val);
            e.t[v].data = calloc((size_t)(n > 0 ? n : 1), octet_dtype_size(val->dtype));
            e.owned[v] = 1;
        }
    }
    for (int i = 0; i < g->n_inputs; i++) e.t[g->inputs[i]].data = (void *)inputs[i];
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        void *ws = malloc(n->workspace_bytes + 64);
        oct_run_ctx ctx = {g, e.t, ws, threads, NULL};
        const int rc = n->op->run(&ctx, n, &err);
        free(ws);
        ck_assert_msg(rc == 0, "run: %s", err.msg);
    }
    return e;
}
static const void *out_data(const exec_t *e) { return e->t[e->g->outputs[0]].data; }
static const oct_tensor *out_t(const exec_t *e) { return &e->t[e->g->outputs[0]]; }
static void exec_free(exec_t *e) {
    for (int v = 0; v < e->g->n_values; v++)
        if (e->owned[v]) free(e->t[v].data);
    free(e->t);
    free(e->owned);
    oct_graph_free(e->g);
}

static void expect_infer_error(oct_graph *g, const char *needle) {
    octet_error err = {0};
    ck_assert_int_ne(infer_all(g, &err), 0);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    oct_graph_free(g);
}

/* Checks |got - want| <= tol for 8-bit output element i; counts the inexact ones. */
static void check_q(const uint8_t *y, int64_t i, int s8, int32_t want, int tol, const char *what, int64_t *inexact) {
    const int32_t got = val(y, i, s8);
    ck_assert_msg(abs(got - want) <= tol, "%s s8=%d: y[%lld] = %d, reference %d", what, s8, (long long)i, got, want);
    if (got != want) (*inexact)++;
}

/* ---------------------------------------------------------------- lookup-table activations */

typedef double (*ref_fn)(double x, double a, double b);
static double r_sigmoid(double x, double a, double b) { (void)a, (void)b; return 1.0 / (1.0 + exp(-x)); }
static double r_silu(double x, double a, double b) { (void)a, (void)b; return x / (1.0 + exp(-x)); }
static double r_hswish(double x, double a, double b) {
    (void)a, (void)b;
    return x * fmin(1.0, fmax(0.0, x / 6.0 + 0.5));
}
static double r_tanh(double x, double a, double b) { (void)a, (void)b; return tanh(x); }
static double r_leaky(double x, double a, double b) { (void)b; return x < 0 ? a * x : x; }
static double r_relu(double x, double a, double b) { (void)a, (void)b; return x > 0 ? x : 0; }
static double r_clip(double x, double a, double b) { return fmin(b, fmax(a, x)); }
static double r_hsig(double x, double a, double b) { return fmin(1.0, fmax(0.0, a * x + b)); }

START_TEST(lut_ops_exact_over_all_inputs) {
    struct {
        const char *domain, *type, *fn;
        ref_fn f;
        float a, b;
    } cases[] = {
        {"com.microsoft", "QLinearSigmoid", NULL, r_sigmoid, 0, 0},
        {"com.microsoft", "QLinearLeakyRelu", NULL, r_leaky, 0.13f, 0},
        {"octet", "QLinearLut", "Sigmoid", r_sigmoid, 0, 0},
        {"octet", "QLinearLut", "SiLU", r_silu, 0, 0},
        {"octet", "QLinearLut", "HardSwish", r_hswish, 0, 0},
        {"octet", "QLinearLut", "Tanh", r_tanh, 0, 0},
        {"octet", "QLinearLut", "LeakyRelu", r_leaky, 0.2f, 0},
        {"octet", "QLinearLut", "Relu", r_relu, 0, 0},
        {"octet", "QLinearLut", "Clip", r_clip, -0.5f, 1.25f},
        {"octet", "QLinearLut", "HardSigmoid", r_hsig, 0.25f, 0.4f},
    };
    /* every byte value, repeated so that the run splits over threads */
    enum { REP = 300 };
    static uint8_t x[256 * REP];
    for (int i = 0; i < 256 * REP; i++) x[i] = (uint8_t)(i * 7 + i / 256);
    const int64_t dims[] = {REP, 256};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int s8 = 0; s8 < 2; s8++)
            for (int zp_absent = 0; zp_absent < 2; zp_absent++) {
                const float sx = runi(0.01f, 0.06f), sy = runi(0.004f, 0.03f);
                const int32_t zx = zp_absent ? 0 : rint_in(tmin(s8), tmax(s8));
                const int32_t zy = zp_absent ? 0 : rint_in(tmin(s8) + 40, tmax(s8) - 40);
                oct_graph *g = g_new();
                int in[5] = {test_graph_input(g, "x", qt(s8), 2, dims), test_graph_f32(g, "xs", sx), zp_absent ? -1 : g_zp(g, "xz", s8, zx),
                             test_graph_f32(g, "ys", sy), zp_absent ? -1 : g_zp(g, "yz", s8, zy)};
                const int ni = g_node(g, cases[c].domain, cases[c].type, 5, in, g_act(g, "y"));
                if (cases[c].fn) a_str(g, ni, "function", cases[c].fn);
                if (strstr(cases[c].type, "Leaky") || (cases[c].fn && strcmp(cases[c].fn, "LeakyRelu") == 0))
                    a_float(g, ni, "alpha", cases[c].a);
                if (cases[c].fn && strcmp(cases[c].fn, "Clip") == 0) {
                    a_float(g, ni, "min", cases[c].a);
                    a_float(g, ni, "max", cases[c].b);
                }
                if (cases[c].fn && strcmp(cases[c].fn, "HardSigmoid") == 0) {
                    a_float(g, ni, "alpha", cases[c].a);
                    a_float(g, ni, "beta", cases[c].b);
                }
                const void *inputs[] = {x};
                exec_t e = exec(g, inputs, 3);
                ck_assert_int_eq(out_t(&e)->dtype, qt(s8));
                const uint8_t *y = out_data(&e);
                for (int i = 0; i < 256 * REP; i++) {
                    const float xr = (float)(val(x, i, s8) - zx) * sx; /* DequantizeLinear, float32 */
                    const int32_t want = qref(cases[c].f((double)xr, cases[c].a, cases[c].b), sy, zy, s8);
                    ck_assert_msg(val(y, i, s8) == want, "%s %s s8=%d x=%d: %d vs %d", cases[c].type,
                                  cases[c].fn ? cases[c].fn : "", s8, val(x, i, s8), val(y, i, s8), want);
                }
                exec_free(&e);
            }
}
END_TEST

/* ---------------------------------------------------------------- Add / Mul */

static void qbinary_case(const char *type, int s8, int ra, const int64_t *da, int rb, const int64_t *db) {
    const int mul = strcmp(type, "QLinearMul") == 0;
    const float sa = runi(0.01f, 0.05f), sb = runi(0.01f, 0.05f), sc = mul ? runi(0.02f, 0.2f) : runi(0.02f, 0.06f);
    const int32_t za = rint_in(tmin(s8), tmax(s8)), zb = rint_in(tmin(s8), tmax(s8)), zc = rint_in(tmin(s8) + 60, tmax(s8) - 60);
    const int64_t na = test_numel(ra, da), nb = test_numel(rb, db);
    uint8_t *a = rand_bytes(na, s8, -128, 255), *b = rand_bytes(nb, s8, -128, 255);
    oct_graph *g = g_new();
    int in[8] = {test_graph_input(g, "a", qt(s8), ra, da), test_graph_f32(g, "as", sa), g_zp(g, "az", s8, za), test_graph_input(g, "b", qt(s8), rb, db),
                 test_graph_f32(g, "bs", sb), g_zp(g, "bz", s8, zb), test_graph_f32(g, "cs", sc), g_zp(g, "cz", s8, zc)};
    g_node(g, "com.microsoft", type, 8, in, g_act(g, "c"));
    const void *inputs[] = {a, b};
    exec_t e = exec(g, inputs, 3);
    const oct_tensor *yt = out_t(&e);
    const int r = ra > rb ? ra : rb;
    ck_assert_int_eq(yt->rank, r);
    const uint8_t *y = yt->data;
    const int64_t ny = test_numel(yt->rank, yt->dims);
    int64_t inexact = 0;
    for (int64_t o = 0; o < ny; o++) {
        /* unravel o, then index a and b with broadcasting */
        int64_t rem = o, ia = 0, ib = 0, sta = 1, stb = 1;
        for (int d = r - 1; d >= 0; d--) {
            const int64_t i = rem % yt->dims[d];
            rem /= yt->dims[d];
            const int dA = d - (r - ra), dB = d - (r - rb);
            if (dA >= 0) {
                if (da[dA] != 1) ia += i * sta;
                sta *= da[dA];
            }
            if (dB >= 0) {
                if (db[dB] != 1) ib += i * stb;
                stb *= db[dB];
            }
        }
        const double va = dq(val(a, ia, s8), sa, za), vb = dq(val(b, ib, s8), sb, zb);
        check_q(y, o, s8, qref(mul ? va * vb : va + vb, sc, zc, s8), 1, type, &inexact);
    }
    ck_assert_msg(inexact * 50 <= ny + 50, "%s: %lld of %lld off by one", type, (long long)inexact, (long long)ny);
    free(a);
    free(b);
    exec_free(&e);
}

START_TEST(qlinear_add_mul_broadcast) {
    const int64_t s1[] = {3, 64, 200}, s2[] = {1}, s3[] = {2, 3, 4, 5}, s4[] = {3, 1, 5}, s5[] = {4, 1}, s6[] = {1, 7},
                  s7[] = {64, 1};
    for (int op = 0; op < 2; op++) {
        const char *type = op ? "QLinearMul" : "QLinearAdd";
        for (int s8 = 0; s8 < 2; s8++) {
            qbinary_case(type, s8, 3, s1, 3, s1);  /* same shape, large enough for threads */
            qbinary_case(type, s8, 3, s1, 1, s2);  /* scalar b */
            qbinary_case(type, s8, 0, NULL, 3, s1); /* scalar a (rank 0) */
            qbinary_case(type, s8, 4, s3, 3, s4);  /* middle broadcast */
            qbinary_case(type, s8, 2, s5, 2, s6);  /* outer product */
            qbinary_case(type, s8, 3, s1, 2, s7);  /* per-row operand */
        }
    }
}
END_TEST

START_TEST(qlinear_add_ties_to_even) {
    /* scales that make every result a multiple of 1/2: exact halves round to even */
    const int64_t d[] = {8};
    const uint8_t a[8] = {1, 3, 5, 7, 2, 4, 0, 9}, b[8] = {0, 0, 0, 0, 1, 1, 3, 0};
    oct_graph *g = g_new();
    int in[8] = {test_graph_input(g, "a", OCTET_UINT8, 1, d), test_graph_f32(g, "as", 0.5f), g_zp(g, "az", 0, 0), test_graph_input(g, "b", OCTET_UINT8, 1, d),
                 test_graph_f32(g, "bs", 0.5f), g_zp(g, "bz", 0, 0), test_graph_f32(g, "cs", 1.f), g_zp(g, "cz", 0, 10)};
    g_node(g, "com.microsoft", "QLinearAdd", 8, in, g_act(g, "c"));
    const void *inputs[] = {a, b};
    exec_t e = exec(g, inputs, 1);
    const uint8_t *y = out_data(&e);
    /* 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, 1.5 -> 2, 2.5 -> 2, 1.5 -> 2, 4.5 -> 4 */
    const uint8_t want[8] = {10, 12, 12, 14, 12, 12, 12, 14};
    for (int i = 0; i < 8; i++) ck_assert_msg(y[i] == want[i], "y[%d] = %u, want %u", i, y[i], want[i]);
    exec_free(&e);
}
END_TEST

/* ---------------------------------------------------------------- Concat */

START_TEST(qlinear_concat_requantizes_exactly) {
    const int64_t d0[] = {2, 3, 5, 4}, d1[] = {2, 1, 5, 4}, d2[] = {2, 6, 5, 4};
    for (int s8 = 0; s8 < 2; s8++)
        for (int axis_kind = 0; axis_kind < 2; axis_kind++) {
            const float sy = 0.05f, sx[3] = {0.05f, 0.031f, 0.2f};
            const int32_t zy = s8 ? -3 : 120, zx[3] = {zy, s8 ? 20 : 90, s8 ? -60 : 200};
            const int64_t *dims[3] = {d0, d1, d2};
            /* axis 1, or the same data permuted so that the concat axis is the last one (-1) */
            int64_t shp[3][4];
            for (int i = 0; i < 3; i++) {
                memcpy(shp[i], dims[i], sizeof shp[i]);
                if (axis_kind) {
                    shp[i][3] = dims[i][1];
                    shp[i][1] = dims[i][3];
                }
            }
            uint8_t *x[3];
            for (int i = 0; i < 3; i++) x[i] = rand_bytes(test_numel(4, shp[i]), s8, -128, 255);
            oct_graph *g = g_new();
            int in[11] = {test_graph_f32(g, "ys", sy), g_zp(g, "yz", s8, zy)};
            for (int i = 0; i < 3; i++) {
                char nm[8];
                snprintf(nm, sizeof nm, "x%d", i);
                in[2 + 3 * i] = test_graph_input(g, nm, qt(s8), 4, shp[i]);
                in[3 + 3 * i] = test_graph_f32(g, "s", sx[i]);
                in[4 + 3 * i] = g_zp(g, "z", s8, zx[i]);
            }
            const int ni = g_node(g, "com.microsoft", "QLinearConcat", 11, in, g_act(g, "y"));
            a_int(g, ni, "axis", axis_kind ? -1 : 1);
            const void *inputs[] = {x[0], x[1], x[2]};
            exec_t e = exec(g, inputs, 2);
            const oct_tensor *yt = out_t(&e);
            const int ax = axis_kind ? 3 : 1;
            ck_assert_int_eq(yt->dims[ax], 10);
            const uint8_t *y = yt->data;
            int64_t outer = 1, inner = 1;
            for (int d = 0; d < ax; d++) outer *= yt->dims[d];
            for (int d = ax + 1; d < 4; d++) inner *= yt->dims[d];
            for (int64_t o = 0; o < outer; o++) {
                int64_t at = o * 10 * inner;
                for (int i = 0; i < 3; i++) {
                    const int64_t row = shp[i][ax] * inner;
                    for (int64_t j = 0; j < row; j++, at++) {
                        const int32_t want = qref((double)((float)(val(x[i], o * row + j, s8) - zx[i]) * sx[i]), sy, zy, s8);
                        ck_assert_msg(val(y, at, s8) == want, "concat s8=%d axis %d input %d: %d vs %d", s8, ax, i,
                                      val(y, at, s8), want);
                    }
                }
            }
            for (int i = 0; i < 3; i++) free(x[i]);
            exec_free(&e);
        }
}
END_TEST

/* ---------------------------------------------------------------- pooling */

START_TEST(qlinear_global_average_pool) {
    for (int s8 = 0; s8 < 2; s8++)
        for (int cl = 0; cl < 2; cl++) {
            const int64_t N = 2, C = 70, H = 9, W = 11;
            const int64_t dims[4] = {N, cl ? H : C, cl ? W : H, cl ? C : W};
            uint8_t *x = rand_bytes(N * C * H * W, s8, -128, 255);
            const float sx = runi(0.01f, 0.1f), sy = runi(0.005f, 0.05f);
            const int32_t zx = rint_in(tmin(s8), tmax(s8)), zy = rint_in(tmin(s8), tmax(s8));
            oct_graph *g = g_new();
            int in[5] = {test_graph_input(g, "x", qt(s8), 4, dims), test_graph_f32(g, "xs", sx), g_zp(g, "xz", s8, zx), test_graph_f32(g, "ys", sy),
                         g_zp(g, "yz", s8, zy)};
            const int ni = g_node(g, "com.microsoft", "QLinearGlobalAveragePool", 5, in, g_act(g, "y"));
            a_int(g, ni, "channels_last", cl);
            const void *inputs[] = {x};
            exec_t e = exec(g, inputs, 2);
            const oct_tensor *yt = out_t(&e);
            ck_assert_int_eq(yt->dims[cl ? 3 : 1], C);
            ck_assert_int_eq(yt->dims[cl ? 1 : 2], 1);
            ck_assert_int_eq(yt->dims[cl ? 2 : 3], 1);
            int64_t inexact = 0;
            for (int64_t b = 0; b < N; b++)
                for (int64_t c = 0; c < C; c++) {
                    double s = 0;
                    for (int64_t p = 0; p < H * W; p++)
                        s += dq(val(x, cl ? (b * H * W + p) * C + c : (b * C + c) * H * W + p, s8), sx, zx);
                    check_q(out_data(&e), b * C + c, s8, qref(s / (double)(H * W), sy, zy, s8), 1, "global pool", &inexact);
                }
            free(x);
            exec_free(&e);
        }
}
END_TEST

/* Output size of one pooled dim, as AveragePool computes it. */
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe, int ceil_mode) {
    const int64_t span = in + pb + pe - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pb) out--;
    return out;
}

/* AveragePool of a quantized (N, C, spatial) or channels-last tensor, nsp spatial dims. */
static void qavgpool_case(int s8, int nsp, int cl, const int64_t *sp, const int64_t *k, const int64_t *st,
                          const int64_t *pads, int ceil_mode, int include_pad) {
    const int64_t N = 2, C = 3;
    int64_t dims[5], in_vol = 1;
    dims[0] = N;
    dims[cl ? nsp + 1 : 1] = C;
    for (int i = 0; i < nsp; i++) {
        dims[(cl ? 1 : 2) + i] = sp[i];
        in_vol *= sp[i];
    }
    uint8_t *x = rand_bytes(N * C * in_vol, s8, -128, 255);
    const float sx = runi(0.01f, 0.1f), sy = runi(0.01f, 0.05f);
    const int32_t zx = rint_in(tmin(s8), tmax(s8)), zy = rint_in(tmin(s8), tmax(s8));
    oct_graph *g = g_new();
    int in[5] = {test_graph_input(g, "x", qt(s8), nsp + 2, dims), test_graph_f32(g, "xs", sx), g_zp(g, "xz", s8, zx), test_graph_f32(g, "ys", sy),
                 g_zp(g, "yz", s8, zy)};
    const int ni = g_node(g, "com.microsoft", "QLinearAveragePool", 5, in, g_act(g, "y"));
    a_ints(g, ni, "kernel_shape", nsp, k);
    a_ints(g, ni, "strides", nsp, st);
    a_ints(g, ni, "pads", 2 * nsp, pads);
    a_int(g, ni, "ceil_mode", ceil_mode);
    a_int(g, ni, "count_include_pad", include_pad);
    a_int(g, ni, "channels_last", cl);
    const void *inputs[] = {x};
    exec_t e = exec(g, inputs, 2);
    const oct_tensor *yt = out_t(&e);
    int64_t od[3] = {1, 1, 1}, id[3] = {1, 1, 1}, kk[3] = {1, 1, 1}, ss[3] = {1, 1, 1}, pb[3] = {0}, pe[3] = {0};
    for (int i = 0; i < nsp; i++) {
        const int j = 3 - nsp + i;
        id[j] = sp[i];
        kk[j] = k[i];
        ss[j] = st[i];
        pb[j] = pads[i];
        pe[j] = pads[nsp + i];
        od[j] = pool_out(sp[i], k[i], st[i], pads[i], pads[nsp + i], ceil_mode);
        ck_assert_int_eq(yt->dims[(cl ? 1 : 2) + i], od[j]);
    }
    const int64_t out_vol = od[0] * od[1] * od[2];
    int64_t inexact = 0;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t o = 0; o < out_vol; o++) {
                const int64_t o2 = o % od[2], o1 = (o / od[2]) % od[1], o0 = o / (od[2] * od[1]);
                const int64_t oo[3] = {o0, o1, o2};
                double s = 0;
                int64_t inside = 0, padded = 1;
                int64_t lo[3], hi[3];
                for (int j = 0; j < 3; j++) {
                    const int64_t start = oo[j] * ss[j] - pb[j], end = start + kk[j];
                    padded *= (end < id[j] + pe[j] ? end : id[j] + pe[j]) - start;
                    lo[j] = start < 0 ? 0 : start;
                    hi[j] = end > id[j] ? id[j] : end;
                }
                for (int64_t a0 = lo[0]; a0 < hi[0]; a0++)
                    for (int64_t a1 = lo[1]; a1 < hi[1]; a1++)
                        for (int64_t a2 = lo[2]; a2 < hi[2]; a2++) {
                            const int64_t p = (a0 * id[1] + a1) * id[2] + a2;
                            s += dq(val(x, cl ? (b * in_vol + p) * C + c : (b * C + c) * in_vol + p, s8), sx, zx);
                            inside++;
                        }
                const double mean = s / (double)(include_pad ? padded : inside);
                const int64_t yi = cl ? (b * out_vol + o) * C + c : (b * C + c) * out_vol + o;
                check_q(yt->data, yi, s8, qref(mean, sy, zy, s8), 1, "average pool", &inexact);
            }
    free(x);
    exec_free(&e);
}

START_TEST(qlinear_average_pool) {
    const int64_t sp2[] = {9, 10}, k2[] = {3, 2}, st2[] = {2, 2}, p2[] = {1, 0, 1, 1};
    const int64_t sp3[] = {5, 6, 7}, k3[] = {2, 3, 3}, st3[] = {1, 2, 2}, p3[] = {0, 1, 1, 1, 0, 1};
    const int64_t sp1[] = {17}, k1[] = {4}, st1[] = {3}, p1[] = {2, 1};
    for (int s8 = 0; s8 < 2; s8++)
        for (int incl = 0; incl < 2; incl++)
            for (int ceil_mode = 0; ceil_mode < 2; ceil_mode++) {
                qavgpool_case(s8, 2, 0, sp2, k2, st2, p2, ceil_mode, incl);
                qavgpool_case(s8, 2, 1, sp2, k2, st2, p2, ceil_mode, incl);
                qavgpool_case(s8, 3, 0, sp3, k3, st3, p3, ceil_mode, incl);
                qavgpool_case(s8, 1, 0, sp1, k1, st1, p1, ceil_mode, incl);
            }
}
END_TEST

/* ---------------------------------------------------------------- QGemm */

typedef struct {
    int a_s8, b_s8, y_kind; /* y_kind: 0 float, 1 uint8, 2 int8 */
    int trans_a, trans_b, b_const, per_col;
    int c_kind;             /* 0 none, 1 scalar, 2 [N], 3 [M, N], 4 [M, 1] */
    float alpha;
    int act;                /* 0 none, 1 Relu, 2 Clip */
} qgemm_case_t;

/* Runs one QGemm; returns the output bytes (malloc'ed) in *out. */
static void *qgemm_run_case(const qgemm_case_t *q, int64_t M, int64_t K, int64_t N, const uint8_t *a, const uint8_t *b,
                            float sa, int32_t za, const float *sb, const int32_t *zb, const int32_t *cvals, float sy,
                            int32_t zy, int use_act, int threads) {
    oct_graph *g = g_new();
    const int64_t ad[2] = {q->trans_a ? K : M, q->trans_a ? M : K}, bd[2] = {q->trans_b ? N : K, q->trans_b ? K : N};
    const int64_t nd[1] = {N};
    int in[9];
    in[0] = test_graph_input(g, "a", qt(q->a_s8), 2, ad);
    in[1] = test_graph_f32(g, "as", sa);
    in[2] = g_zp(g, "az", q->a_s8, za);
    in[3] = q->b_const ? test_graph_const(g, "b", qt(q->b_s8), 2, bd, b) : test_graph_input(g, "b", qt(q->b_s8), 2, bd);
    in[4] = q->per_col ? test_graph_const(g, "bs", OCTET_FLOAT, 1, nd, sb) : test_graph_f32(g, "bs", sb[0]);
    uint8_t zbb[64];
    for (int64_t j = 0; j < N; j++) zbb[j] = (uint8_t)zb[j];
    in[5] = q->per_col ? test_graph_const(g, "bz", qt(q->b_s8), 1, nd, zbb) : g_zp(g, "bz", q->b_s8, zb[0]);
    in[6] = -1;
    const int64_t cd[4][2] = {{1, 1}, {N, 1}, {M, N}, {M, 1}};
    if (q->c_kind == 1) in[6] = test_graph_const(g, "c", OCTET_INT32, 0, NULL, cvals);
    else if (q->c_kind == 2) in[6] = test_graph_const(g, "c", OCTET_INT32, 1, cd[1], cvals);
    else if (q->c_kind >= 3) in[6] = test_graph_const(g, "c", OCTET_INT32, 2, cd[q->c_kind - 1], cvals);
    int nin = 7;
    if (q->y_kind) {
        in[7] = test_graph_f32(g, "ys", sy);
        in[8] = g_zp(g, "yz", q->y_kind == 2, zy);
        nin = 9;
    }
    const int ni = g_node(g, "com.microsoft", "QGemm", nin, in, g_act(g, "y"));
    a_int(g, ni, "transA", q->trans_a);
    a_int(g, ni, "transB", q->trans_b);
    a_float(g, ni, "alpha", q->alpha);
    if (use_act && q->act) {
        g->nodes[ni].epi.act = q->act == 1 ? OCT_ACT_RELU : OCT_ACT_CLIP;
        g->nodes[ni].epi.alpha = -0.3f;
        g->nodes[ni].epi.beta = 0.4f;
    }
    const void *inputs[2] = {a, b};
    exec_t e = exec(g, inputs, threads);
    const size_t bytes = (size_t)(M * N) * (q->y_kind ? 1 : sizeof(float));
    void *out = malloc(bytes);
    memcpy(out, out_data(&e), bytes);
    ck_assert_int_eq(out_t(&e)->dtype, q->y_kind == 0 ? OCTET_FLOAT : qt(q->y_kind == 2));
    exec_free(&e);
    return out;
}

static void qgemm_check_case(const qgemm_case_t *q, int64_t M, int64_t K, int64_t N) {
    uint8_t *a = rand_bytes(M * K, q->a_s8, -128, 255), *b = rand_bytes(K * N, q->b_s8, -128, 255);
    const float sa = runi(0.01f, 0.05f), sy = runi(0.05f, 0.5f);
    const int32_t za = rint_in(tmin(q->a_s8), tmax(q->a_s8)), zy = rint_in(tmin(q->y_kind == 2) + 50, tmax(q->y_kind == 2) - 50);
    float sb[64];
    int32_t zb[64], cv[64 * 64];
    const int32_t zb0 = rint_in(tmin(q->b_s8), tmax(q->b_s8));
    for (int64_t j = 0; j < N; j++) {
        sb[j] = q->per_col ? runi(0.002f, 0.02f) : 0.01f;
        zb[j] = q->per_col ? rint_in(tmin(q->b_s8), tmax(q->b_s8)) : zb0;
    }
    for (int i = 0; i < 64 * 64; i++) cv[i] = rint_in(-3000, 3000);
    const int threads = q->b_const ? 3 : 1;
    uint8_t *y = qgemm_run_case(q, M, K, N, a, b, sa, za, sb, zb, cv, sy, zy, 1, threads);
    int64_t inexact = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                const int32_t av = val(a, q->trans_a ? k * M + m : m * K + k, q->a_s8);
                const int32_t bv = val(b, q->trans_b ? j * K + k : k * N + j, q->b_s8);
                s += (double)(av - za) * (double)(bv - zb[j]);
            }
            int32_t c = 0;
            if (q->c_kind == 1) c = cv[0];
            else if (q->c_kind == 2) c = cv[j];
            else if (q->c_kind == 3) c = cv[m * N + j];
            else if (q->c_kind == 4) c = cv[m];
            double v = (s + c) * (double)sa * (double)sb[j] * (double)q->alpha;
            if (q->act == 1) v = fmax(v, 0.0);
            if (q->act == 2) v = fmin(fmax(v, -0.3), 0.4);
            if (q->y_kind == 0) {
                const float got = ((const float *)(const void *)y)[m * N + j];
                ck_assert_msg(fabs(got - v) <= 1e-5 * fabs(v) + 1e-6, "QGemm float (%lld,%lld): %g vs %g", (long long)m,
                              (long long)j, (double)got, v);
            } else {
                check_q(y, m * N + j, q->y_kind == 2, qref(v, sy, zy, q->y_kind == 2), 1, "QGemm", &inexact);
            }
        }
    if (q->act && q->y_kind) {
        /* the fused clamp is exactly the unfused result clamped at Q(lo) and Q(hi) */
        uint8_t *plain = qgemm_run_case(q, M, K, N, a, b, sa, za, sb, zb, cv, sy, zy, 0, threads);
        const int s8 = q->y_kind == 2;
        const int32_t lo = q->act == 1 ? zy : qref(-0.3, sy, zy, s8), hi = q->act == 1 ? tmax(s8) : qref(0.4, sy, zy, s8);
        for (int64_t i = 0; i < M * N; i++) {
            int32_t want = val(plain, i, s8);
            want = want < lo ? lo : (want > hi ? hi : want);
            ck_assert_msg(val(y, i, s8) == want, "QGemm fused act %d at %lld: %d vs %d", q->act, (long long)i, val(y, i, s8),
                          want);
        }
        free(plain);
    }
    free(a);
    free(b);
    free(y);
}

START_TEST(qgemm_cases) {
    int n = 0;
    for (int a_s8 = 0; a_s8 < 2; a_s8++)
        for (int b_s8 = 0; b_s8 < 2; b_s8++)
            for (int y_kind = 0; y_kind < 3; y_kind++)
                for (int tr = 0; tr < 4; tr++) {
                    const qgemm_case_t q = {a_s8, b_s8, y_kind, tr & 1, tr >> 1, (n % 3) != 0, n % 2, n % 5,
                                            n % 4 == 1 ? 0.5f : 1.f, n % 3};
                    qgemm_check_case(&q, 13 + n % 5, 37 + n % 7, 19 + n % 11);
                    n++;
                }
    /* big enough for several tiles over threads */
    const qgemm_case_t big = {0, 1, 1, 0, 1, 1, 1, 2, 1.f, 1};
    qgemm_check_case(&big, 300, 70, 64);
}
END_TEST

/* ---------------------------------------------------------------- QLinearConvTranspose */

typedef struct {
    int nsp;
    int64_t N, C, group, Mg;
    int64_t in[3], k[3], s[3], dil[3], pb[3], pe[3], adj[3];
    int x_s8, w_u8, y_s8;
    int per_channel; /* 0 per tensor, 1 M/group values (axis 1 of w), 2 M values */
    int bias, act;   /* act: 0 none, 1 Relu, 2 Clip(-0.2, 0.5) */
} convt_case_t;

typedef struct {
    uint8_t *x, *w;
    float sx, sy, sw[64];
    int32_t zx, zy, zw[64], bias[64];
    int64_t M, out[3], in_vol, out_vol, kvol;
} convt_data_t;

static void convt_make(const convt_case_t *q, convt_data_t *d) {
    d->M = q->Mg * q->group;
    d->in_vol = d->out_vol = d->kvol = 1;
    for (int i = 0; i < q->nsp; i++) {
        d->out[i] = q->s[i] * (q->in[i] - 1) + q->adj[i] + (q->k[i] - 1) * q->dil[i] + 1 - q->pb[i] - q->pe[i];
        d->in_vol *= q->in[i];
        d->out_vol *= d->out[i];
        d->kvol *= q->k[i];
    }
    d->x = rand_bytes(q->N * q->C * d->in_vol, q->x_s8, -128, 255);
    d->w = rand_bytes(q->C * q->Mg * d->kvol, !q->w_u8, -128, 255);
    d->sx = runi(0.01f, 0.05f);
    d->sy = runi(0.05f, 0.2f);
    d->zx = rint_in(tmin(q->x_s8), tmax(q->x_s8));
    d->zy = rint_in(tmin(q->y_s8) + 40, tmax(q->y_s8) - 40);
    const int64_t nparam = q->per_channel == 0 ? 1 : (q->per_channel == 1 ? q->Mg : d->M);
    const int32_t wlo = q->w_u8 ? 0 : -128, whi = q->w_u8 ? 255 : 127;
    for (int64_t o = 0; o < nparam; o++) {
        d->sw[o] = runi(0.002f, 0.02f);
        d->zw[o] = q->w_u8 ? rint_in(wlo, whi) : (o % 3 == 0 ? 0 : rint_in(-5, 5));
    }
    for (int64_t o = 0; o < d->M; o++) d->bias[o] = rint_in(-2000, 2000);
}

/* Runs the op; returns the output bytes. */
static uint8_t *convt_run(const convt_case_t *q, const convt_data_t *d, int use_act, int threads) {
    oct_graph *g = g_new();
    int64_t xd[5] = {q->N, q->C}, wd[5] = {q->C, q->Mg};
    for (int i = 0; i < q->nsp; i++) {
        xd[2 + i] = q->in[i];
        wd[2 + i] = q->k[i];
    }
    const int64_t nparam = q->per_channel == 0 ? 1 : (q->per_channel == 1 ? q->Mg : d->M);
    const int64_t pd[1] = {nparam}, md[1] = {d->M};
    uint8_t zwb[64];
    for (int64_t o = 0; o < nparam; o++) zwb[o] = (uint8_t)d->zw[o];
    int in[9] = {test_graph_input(g, "x", qt(q->x_s8), q->nsp + 2, xd), test_graph_f32(g, "xs", d->sx), g_zp(g, "xz", q->x_s8, d->zx),
                 test_graph_const(g, "w", q->w_u8 ? OCTET_UINT8 : OCTET_INT8, q->nsp + 2, wd, d->w),
                 q->per_channel ? test_graph_const(g, "ws", OCTET_FLOAT, 1, pd, d->sw) : test_graph_f32(g, "ws", d->sw[0]),
                 q->per_channel ? test_graph_const(g, "wz", q->w_u8 ? OCTET_UINT8 : OCTET_INT8, 1, pd, zwb)
                                : g_zp(g, "wz", !q->w_u8, d->zw[0]),
                 test_graph_f32(g, "ys", d->sy), g_zp(g, "yz", q->y_s8, d->zy), -1};
    if (q->bias) in[8] = test_graph_const(g, "b", OCTET_INT32, 1, md, d->bias);
    const int ni = g_node(g, "octet", "QLinearConvTranspose", q->bias ? 9 : 8, in, g_act(g, "y"));
    int64_t v[6];
    a_int(g, ni, "group", q->group);
    a_ints(g, ni, "kernel_shape", q->nsp, q->k);
    a_ints(g, ni, "strides", q->nsp, q->s);
    a_ints(g, ni, "dilations", q->nsp, q->dil);
    for (int i = 0; i < q->nsp; i++) {
        v[i] = q->pb[i];
        v[q->nsp + i] = q->pe[i];
    }
    a_ints(g, ni, "pads", 2 * q->nsp, v);
    a_ints(g, ni, "output_padding", q->nsp, q->adj);
    if (use_act && q->act) {
        g->nodes[ni].epi.act = q->act == 1 ? OCT_ACT_RELU : OCT_ACT_CLIP;
        g->nodes[ni].epi.alpha = -0.2f;
        g->nodes[ni].epi.beta = 0.5f;
    }
    const void *inputs[] = {d->x};
    exec_t e = exec(g, inputs, threads);
    const oct_tensor *yt = out_t(&e);
    ck_assert_int_eq(yt->dtype, qt(q->y_s8));
    ck_assert_int_eq(yt->dims[1], d->M);
    for (int i = 0; i < q->nsp; i++) ck_assert_int_eq(yt->dims[2 + i], d->out[i]);
    const size_t bytes = (size_t)(q->N * d->M * d->out_vol);
    uint8_t *y = malloc(bytes);
    memcpy(y, yt->data, bytes);
    exec_free(&e);
    return y;
}

static void convt_check(const convt_case_t *q) {
    convt_data_t d;
    convt_make(q, &d);
    uint8_t *y = convt_run(q, &d, 1, 3);
    /* exact integer accumulation, then the real-valued result */
    int64_t *acc = calloc((size_t)(q->N * d.M * d.out_vol), sizeof(int64_t));
    int64_t in3[3] = {1, 1, 1}, out3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1}, dl3[3] = {1, 1, 1}, p3[3] = {0};
    for (int i = 0; i < q->nsp; i++) {
        const int j = 3 - q->nsp + i;
        in3[j] = q->in[i];
        out3[j] = d.out[i];
        k3[j] = q->k[i];
        s3[j] = q->s[i];
        dl3[j] = q->dil[i];
        p3[j] = q->pb[i];
    }
    const int64_t Cg = q->C / q->group;
    for (int64_t b = 0; b < q->N; b++)
        for (int64_t c = 0; c < q->C; c++) {
            const int64_t gi = c / Cg;
            for (int64_t ip = 0; ip < d.in_vol; ip++) {
                const int64_t i2 = ip % in3[2], i1 = (ip / in3[2]) % in3[1], i0 = ip / (in3[2] * in3[1]);
                const int32_t xv = val(d.x, (b * q->C + c) * d.in_vol + ip, q->x_s8) - d.zx;
                for (int64_t m = 0; m < q->Mg; m++) {
                    const int64_t o = gi * q->Mg + m;
                    const int64_t zi = q->per_channel == 0 ? 0 : (q->per_channel == 1 ? m : o);
                    for (int64_t t = 0; t < d.kvol; t++) {
                        const int64_t t2 = t % k3[2], t1 = (t / k3[2]) % k3[1], t0 = t / (k3[2] * k3[1]);
                        const int64_t o0 = i0 * s3[0] + t0 * dl3[0] - p3[0], o1 = i1 * s3[1] + t1 * dl3[1] - p3[1],
                                      o2 = i2 * s3[2] + t2 * dl3[2] - p3[2];
                        if (o0 < 0 || o0 >= out3[0] || o1 < 0 || o1 >= out3[1] || o2 < 0 || o2 >= out3[2]) continue;
                        const int32_t wv = val(d.w, (c * q->Mg + m) * d.kvol + t, !q->w_u8) - d.zw[zi];
                        acc[(b * d.M + o) * d.out_vol + (o0 * out3[1] + o1) * out3[2] + o2] += (int64_t)xv * wv;
                    }
                }
            }
        }
    int64_t inexact = 0;
    for (int64_t b = 0; b < q->N; b++)
        for (int64_t o = 0; o < d.M; o++) {
            const int64_t si = q->per_channel == 0 ? 0 : (q->per_channel == 1 ? o % q->Mg : o);
            for (int64_t p = 0; p < d.out_vol; p++) {
                const int64_t at = (b * d.M + o) * d.out_vol + p;
                double v = (double)(acc[at] + (q->bias ? d.bias[o] : 0)) * (double)d.sx * (double)d.sw[si];
                if (q->act == 1) v = fmax(v, 0.0);
                if (q->act == 2) v = fmin(fmax(v, -0.2), 0.5);
                check_q(y, at, q->y_s8, qref(v, d.sy, d.zy, q->y_s8), 1, "QLinearConvTranspose", &inexact);
            }
        }
    ck_assert_msg(inexact * 20 <= q->N * d.M * d.out_vol + 20, "%lld results off by one", (long long)inexact);
    /* one thread gives the same bytes */
    uint8_t *y1 = convt_run(q, &d, 1, 1);
    ck_assert_msg(memcmp(y, y1, (size_t)(q->N * d.M * d.out_vol)) == 0, "thread count changed the result");
    if (q->act) {
        uint8_t *plain = convt_run(q, &d, 0, 3);
        const int32_t lo = q->act == 1 ? d.zy : qref(-0.2, d.sy, d.zy, q->y_s8);
        const int32_t hi = q->act == 1 ? tmax(q->y_s8) : qref(0.5, d.sy, d.zy, q->y_s8);
        for (int64_t i = 0; i < q->N * d.M * d.out_vol; i++) {
            int32_t want = val(plain, i, q->y_s8);
            want = want < lo ? lo : (want > hi ? hi : want);
            ck_assert_msg(val(y, i, q->y_s8) == want, "fused act at %lld: %d vs %d", (long long)i, val(y, i, q->y_s8), want);
        }
        free(plain);
    }
    free(y1);
    free(acc);
    free(y);
    free(d.x);
    free(d.w);
}

START_TEST(qconv_transpose_2d) {
    for (int s8 = 0; s8 < 2; s8++) {
        /* stride 2 upsampling, per-tensor */
        convt_case_t a = {2, 2, 4, 1, 3, {5, 6, 1}, {2, 2, 1}, {2, 2, 1}, {1, 1, 1}, {0}, {0}, {0}, s8, 0, s8, 0, 1, 0};
        convt_check(&a);
        /* groups, k > s, pads, output_padding, dilation, per-channel (axis 1) scales, Relu */
        convt_case_t b = {2, 1, 6, 3, 2, {7, 5, 1}, {3, 2, 1}, {2, 3, 1}, {1, 2, 1}, {1, 0}, {0, 1}, {1, 2},
                          s8, 1, !s8, 1, 1, 1};
        convt_check(&b);
        /* 1-D, per-channel over all M, Clip */
        convt_case_t c = {1, 2, 4, 2, 2, {9}, {4}, {3}, {1}, {2}, {1}, {2}, !s8, 0, s8, 2, 0, 2};
        convt_check(&c);
        /* 1-D windows that tile the output (k = s = 3): bytes stored directly, Clip, groups */
        convt_case_t d = {1, 1, 4, 2, 3, {700}, {3}, {3}, {1}, {0}, {0}, {0}, s8, !s8, s8, 2, 1, 2};
        convt_check(&d);
    }
}
END_TEST

START_TEST(qconv_transpose_3d) {
    for (int s8 = 0; s8 < 2; s8++) {
        /* U-Net decoder shape: k 2, s 2; the output (24 x 80 x 80) spans several accumulator slabs */
        convt_case_t a = {3, 1, 4, 1, 2, {12, 40, 40}, {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {0}, {0}, {0}, s8, 0, s8, 1, 1, 1};
        convt_check(&a);
        /* k 3 > s 2 (slabs overlap in the input), pads, output_padding, groups, per-M scales */
        convt_case_t b = {3, 1, 4, 2, 3, {10, 30, 30}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1},
                          !s8, 0, s8, 2, 1, 0};
        convt_check(&b);
        /* small odd geometry with dilation and asymmetric pads, batch 2, uint8 weights */
        convt_case_t c = {3, 2, 2, 2, 2, {3, 4, 2}, {2, 3, 2}, {1, 2, 3}, {2, 1, 1}, {0, 1, 0}, {1, 0, 1}, {0, 1, 2},
                          s8, 1, !s8, 1, 0, 2};
        convt_check(&c);
        /* windows that tile the output with mixed strides (k = s = 1, 3, 2), groups, per-M scales */
        convt_case_t e = {3, 1, 6, 3, 2, {5, 7, 9}, {1, 3, 2}, {1, 3, 2}, {1, 1, 1}, {0}, {0}, {0}, !s8, s8, s8, 2, 1, 0};
        convt_check(&e);
    }
}
END_TEST

/* ---------------------------------------------------------------- QLinearInstanceNormalization */

static void instnorm_case(int x_s8, int y_s8, int64_t N, int64_t C, int64_t D, int relu) {
    const int64_t dims[5] = {N, C, D, D, D}, cd[1] = {C}, vol = D * D * D;
    /* a narrow value range, so the mean and variance are far from the type's middle */
    uint8_t *x = rand_bytes(N * C * vol, x_s8, x_s8 ? -100 : 30, x_s8 ? 20 : 180);
    float gamma[8], beta[8];
    for (int64_t c = 0; c < C; c++) {
        gamma[c] = runi(0.5f, 2.f);
        beta[c] = runi(-1.f, 1.f);
    }
    const float sx = runi(0.01f, 0.05f), sy = runi(0.01f, 0.04f), eps = 1e-3f;
    const int32_t zx = rint_in(tmin(x_s8), tmax(x_s8)), zy = rint_in(tmin(y_s8) + 60, tmax(y_s8) - 60);
    oct_graph *g = g_new();
    int in[7] = {test_graph_input(g, "x", qt(x_s8), 5, dims), test_graph_f32(g, "xs", sx), g_zp(g, "xz", x_s8, zx),
                 test_graph_const(g, "gamma", OCTET_FLOAT, 1, cd, gamma), test_graph_const(g, "beta", OCTET_FLOAT, 1, cd, beta), test_graph_f32(g, "ys", sy),
                 g_zp(g, "yz", y_s8, zy)};
    const int ni = g_node(g, "octet", "QLinearInstanceNormalization", 7, in, g_act(g, "y"));
    a_float(g, ni, "epsilon", eps);
    if (relu) g->nodes[ni].epi.act = OCT_ACT_RELU;
    const void *inputs[] = {x};
    exec_t e = exec(g, inputs, 2);
    ck_assert_int_eq(out_t(&e)->dtype, qt(y_s8));
    const uint8_t *y = out_data(&e);
    int64_t inexact = 0;
    for (int64_t nc = 0; nc < N * C; nc++) {
        const int64_t c = nc % C;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < vol; i++) mean += dq(val(x, nc * vol + i, x_s8), sx, zx);
        mean /= (double)vol;
        for (int64_t i = 0; i < vol; i++) {
            const double dv = dq(val(x, nc * vol + i, x_s8), sx, zx) - mean;
            var += dv * dv;
        }
        var /= (double)vol;
        const double inv = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < vol; i++) {
            double v = (dq(val(x, nc * vol + i, x_s8), sx, zx) - mean) * inv * gamma[c] + beta[c];
            if (relu) v = fmax(v, 0.0);
            check_q(y, nc * vol + i, y_s8, qref(v, sy, zy, y_s8), 1, "QLinearInstanceNormalization", &inexact);
        }
    }
    /* the table is built in double from exact sums: at most a stray tie may differ */
    ck_assert_msg(inexact * 1000 <= N * C * vol, "%lld results off by one", (long long)inexact);
    free(x);
    exec_free(&e);
}

START_TEST(qinstance_norm) {
    instnorm_case(0, 0, 2, 3, 40, 0); /* 64000 values per channel: more than one 32-bit partial sum */
    instnorm_case(1, 1, 1, 4, 33, 0);
    instnorm_case(0, 1, 2, 2, 7, 1);
    instnorm_case(1, 0, 1, 3, 5, 1);
}
END_TEST

/* ---------------------------------------------------------------- fused Relu / Clip */

/* Runs a QLinearConv (matmul = 0) or QLinearMatMul with the given epilogue; returns the bytes. */
static uint8_t *fused_run(int matmul, int s8, oct_act_kind act, const uint8_t *x, const int8_t *w, int64_t *bytes) {
    oct_graph *g = g_new();
    const int64_t xd[4] = {1, 4, 9, 9}, wd[4] = {6, 4, 3, 3}, ad[2] = {20, 16}, bd[2] = {16, 12}, cd[1] = {6};
    const float ws[6] = {0.01f, 0.02f, 0.015f, 0.03f, 0.005f, 0.012f};
    const int32_t zy = s8 ? -10 : 100;
    int in[8];
    if (!matmul) {
        in[0] = test_graph_input(g, "x", qt(s8), 4, xd);
        in[3] = test_graph_const(g, "w", OCTET_INT8, 4, wd, w);
        in[4] = test_graph_const(g, "ws", OCTET_FLOAT, 1, cd, ws);
    } else {
        in[0] = test_graph_input(g, "x", qt(s8), 2, ad);
        in[3] = test_graph_const(g, "w", OCTET_INT8, 2, bd, w);
        in[4] = test_graph_f32(g, "ws", 0.01f);
    }
    in[1] = test_graph_f32(g, "xs", 0.03f);
    in[2] = g_zp(g, "xz", s8, s8 ? 3 : 130);
    const int8_t zero = 0;
    in[5] = test_graph_const(g, "wz", OCTET_INT8, 0, NULL, &zero);
    in[6] = test_graph_f32(g, "ys", 0.02f);
    in[7] = g_zp(g, "yz", s8, zy);
    const int ni = g_node(g, "", matmul ? "QLinearMatMul" : "QLinearConv", 8, in, g_act(g, "y"));
    if (!matmul) {
        const int64_t pads[4] = {1, 1, 1, 1};
        a_ints(g, ni, "pads", 4, pads);
    }
    g->nodes[ni].epi.act = act;
    g->nodes[ni].epi.alpha = -0.7f;
    g->nodes[ni].epi.beta = 0.9f;
    const void *inputs[] = {x};
    exec_t e = exec(g, inputs, 2);
    *bytes = test_numel(out_t(&e)->rank, out_t(&e)->dims);
    uint8_t *y = malloc((size_t)*bytes);
    memcpy(y, out_data(&e), (size_t)*bytes);
    exec_free(&e);
    return y;
}

START_TEST(fused_relu_clip_narrow_the_clamp) {
    for (int matmul = 0; matmul < 2; matmul++)
        for (int s8 = 0; s8 < 2; s8++) {
            uint8_t *x = rand_bytes(matmul ? 20 * 16 : 4 * 81, s8, -128, 255);
            int8_t *w = (int8_t *)rand_bytes(matmul ? 16 * 12 : 6 * 36, 1, -128, 127);
            int64_t n0, n1, n2;
            uint8_t *plain = fused_run(matmul, s8, OCT_ACT_NONE, x, w, &n0);
            uint8_t *relu = fused_run(matmul, s8, OCT_ACT_RELU, x, w, &n1);
            uint8_t *clip = fused_run(matmul, s8, OCT_ACT_CLIP, x, w, &n2);
            const int32_t zy = s8 ? -10 : 100;
            const int32_t clo = qref(-0.7, 0.02f, zy, s8), chi = qref(0.9, 0.02f, zy, s8);
            int64_t below = 0;
            for (int64_t i = 0; i < n0; i++) {
                const int32_t p = val(plain, i, s8);
                below += p < zy;
                ck_assert_int_eq(val(relu, i, s8), p < zy ? zy : p);
                ck_assert_int_eq(val(clip, i, s8), p < clo ? clo : (p > chi ? chi : p));
            }
            ck_assert_msg(below > 0 && below < n0, "the data should straddle zero (%lld of %lld below)", (long long)below,
                          (long long)n0);
            free(x);
            free(w);
            free(plain);
            free(relu);
            free(clip);
        }
}
END_TEST

/* ---------------------------------------------------------------- bad inputs */

START_TEST(bad_inputs_fail_clearly) {
    const int64_t d[2] = {2, 3}, two[1] = {2}, k4[2] = {3, 4}, w4[4] = {2, 3, 2, 2}, x4[4] = {1, 2, 4, 4};
    const float sv[2] = {0.1f, 0.2f};
    {   /* a scale that is not a scalar */
        oct_graph *g = g_new();
        int in[8] = {test_graph_input(g, "a", OCTET_UINT8, 2, d), test_graph_const(g, "as", OCTET_FLOAT, 1, two, sv), -1,
                     test_graph_input(g, "b", OCTET_UINT8, 2, d), test_graph_f32(g, "bs", 0.1f), -1, test_graph_f32(g, "cs", 0.1f), -1};
        g_node(g, "com.microsoft", "QLinearAdd", 8, in, g_act(g, "c"));
        expect_infer_error(g, "A scale 'as' has 2 values; expected a single value");
    }
    {   /* a zero point of the other 8-bit type */
        oct_graph *g = g_new();
        int in[5] = {test_graph_input(g, "x", OCTET_UINT8, 2, d), test_graph_f32(g, "xs", 0.1f), g_zp(g, "xz", 1, 0), test_graph_f32(g, "ys", 0.1f), -1};
        g_node(g, "com.microsoft", "QLinearSigmoid", 5, in, g_act(g, "y"));
        expect_infer_error(g, "X zero point 'xz' is int8, expected uint8");
    }
    {   /* operands of different types */
        oct_graph *g = g_new();
        int in[8] = {test_graph_input(g, "a", OCTET_UINT8, 2, d), test_graph_f32(g, "as", 0.1f), -1, test_graph_input(g, "b", OCTET_INT8, 2, d),
                     test_graph_f32(g, "bs", 0.1f), -1, test_graph_f32(g, "cs", 0.1f), -1};
        g_node(g, "com.microsoft", "QLinearMul", 8, in, g_act(g, "c"));
        expect_infer_error(g, "input B 'b' is int8, expected uint8");
    }
    {   /* shapes that do not broadcast */
        const int64_t e[2] = {2, 4};
        oct_graph *g = g_new();
        int in[8] = {test_graph_input(g, "a", OCTET_UINT8, 2, d), test_graph_f32(g, "as", 0.1f), -1, test_graph_input(g, "b", OCTET_UINT8, 2, e),
                     test_graph_f32(g, "bs", 0.1f), -1, test_graph_f32(g, "cs", 0.1f), -1};
        g_node(g, "com.microsoft", "QLinearAdd", 8, in, g_act(g, "c"));
        expect_infer_error(g, "broadcast");
    }
    {   /* an unknown QLinearLut function */
        oct_graph *g = g_new();
        int in[5] = {test_graph_input(g, "x", OCTET_INT8, 2, d), test_graph_f32(g, "xs", 0.1f), -1, test_graph_f32(g, "ys", 0.1f), -1};
        const int ni = g_node(g, "octet", "QLinearLut", 5, in, g_act(g, "y"));
        a_str(g, ni, "function", "Gelu");
        expect_infer_error(g, "QLinearLut function 'Gelu'");
    }
    {   /* a zero scale */
        oct_graph *g = g_new();
        int in[5] = {test_graph_input(g, "x", OCTET_INT8, 2, d), test_graph_f32(g, "xs", 0.f), -1, test_graph_f32(g, "ys", 0.1f), -1};
        g_node(g, "com.microsoft", "QLinearLeakyRelu", 5, in, g_act(g, "y"));
        expect_infer_error(g, "X scale is 0");
    }
    {   /* concat inputs of different types */
        oct_graph *g = g_new();
        int in[8] = {test_graph_f32(g, "ys", 0.1f), g_zp(g, "yz", 0, 0), test_graph_input(g, "x0", OCTET_UINT8, 2, d), test_graph_f32(g, "s0", 0.1f),
                     g_zp(g, "z0", 0, 0), test_graph_input(g, "x1", OCTET_INT8, 2, d), test_graph_f32(g, "s1", 0.1f), g_zp(g, "z1", 1, 0)};
        const int ni = g_node(g, "com.microsoft", "QLinearConcat", 8, in, g_act(g, "y"));
        a_int(g, ni, "axis", 0);
        expect_infer_error(g, "input X 'x1' is int8, expected uint8");
    }
    {   /* QGemm with y_scale but no y_zero_point, then a C of the wrong shape */
        for (int k = 0; k < 2; k++) {
            oct_graph *g = g_new();
            const int32_t cv[4] = {0};
            const int64_t cd[1] = {3};
            int in[9] = {test_graph_input(g, "a", OCTET_UINT8, 2, d), test_graph_f32(g, "as", 0.1f), g_zp(g, "az", 0, 0),
                         test_graph_input(g, "b", OCTET_INT8, 2, k4), test_graph_f32(g, "bs", 0.1f), g_zp(g, "bz", 1, 0),
                         k ? test_graph_const(g, "c", OCTET_INT32, 1, cd, cv) : -1, test_graph_f32(g, "ys", 0.1f), k ? g_zp(g, "yz", 0, 0) : -1};
            g_node(g, "com.microsoft", "QGemm", 9, in, g_act(g, "y"));
            expect_infer_error(g, k ? "C 'c' (1 x 3) does not broadcast to the output (2 x 4)"
                                    : "both y_scale and y_zero_point");
        }
    }
    {   /* ConvTranspose weight scales of the wrong count */
        oct_graph *g = g_new();
        int8_t w[24] = {0};
        const float ws[2] = {0.1f, 0.1f};
        const int64_t sd[1] = {2};
        int in[8] = {test_graph_input(g, "x", OCTET_UINT8, 4, x4), test_graph_f32(g, "xs", 0.1f), g_zp(g, "xz", 0, 0),
                     test_graph_const(g, "w", OCTET_INT8, 4, w4, w), test_graph_const(g, "ws", OCTET_FLOAT, 1, sd, ws), -1, test_graph_f32(g, "ys", 0.1f),
                     g_zp(g, "yz", 0, 0)};
        g_node(g, "octet", "QLinearConvTranspose", 8, in, g_act(g, "y"));
        expect_infer_error(g, "w_scale 'ws' has 2 values (rank 1); expected one, 3");
    }
    {   /* an activation an int8 producer cannot fuse */
        oct_graph *g = g_new();
        int8_t w[24] = {0};
        int in[8] = {test_graph_input(g, "x", OCTET_UINT8, 4, x4), test_graph_f32(g, "xs", 0.1f), g_zp(g, "xz", 0, 0),
                     test_graph_const(g, "w", OCTET_INT8, 4, w4, w), test_graph_f32(g, "ws", 0.1f), -1, test_graph_f32(g, "ys", 0.1f), g_zp(g, "yz", 0, 0)};
        const int ni = g_node(g, "octet", "QLinearConvTranspose", 8, in, g_act(g, "y"));
        g->nodes[ni].epi.act = OCT_ACT_SIGMOID;
        expect_infer_error(g, "can fuse only Relu or Clip");
    }
    {   /* LUT scales must be constants: a scale produced at run time is refused */
        oct_graph *g = g_new();
        const int64_t one[1] = {1};
        const int xs_in = test_graph_input(g, "xs_src", OCTET_FLOAT, 1, one);
        const int xs = g_act(g, "xs");
        const int ni = oct_graph_add_node(g, "relu", "Relu", "", 1, 1, NULL);
        g->nodes[ni].in[0] = xs_in;
        g->nodes[ni].out[0] = xs;
        int in[5] = {test_graph_input(g, "x", OCTET_UINT8, 2, d), xs, -1, test_graph_f32(g, "ys", 0.1f), -1};
        g_node(g, "com.microsoft", "QLinearSigmoid", 5, in, g_act(g, "y"));
        expect_infer_error(g, "must be a constant");
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("qops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, lut_ops_exact_over_all_inputs);
    tcase_add_test(tc, qlinear_add_mul_broadcast);
    tcase_add_test(tc, qlinear_add_ties_to_even);
    tcase_add_test(tc, qlinear_concat_requantizes_exactly);
    tcase_add_test(tc, qlinear_global_average_pool);
    tcase_add_test(tc, qlinear_average_pool);
    tcase_add_test(tc, qgemm_cases);
    tcase_add_test(tc, qconv_transpose_2d);
    tcase_add_test(tc, qconv_transpose_3d);
    tcase_add_test(tc, qinstance_norm);
    tcase_add_test(tc, fused_relu_clip_narrow_the_clamp);
    tcase_add_test(tc, bad_inputs_fail_clearly);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
