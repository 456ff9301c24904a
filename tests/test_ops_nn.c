/* The nn ops on small hand-built graphs, compared with naive loops in double written here
   (direct convolution, scatter-form transposed convolution, window pooling, ...), plus the fuse
   pass: fused and unfused graphs must agree. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "engine/passes/passes.h"
#include "test_session.h"

/* ---------------------------------------------------------------- graph building */

static uint32_t rng_state = 777u;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.f - 1.f;
}
static float *rand_buf(int64_t n) {
    float *b = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) b[i] = frand();
    return b;
}
static int64_t numel(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

static oct_graph *g_new(void) {
    oct_graph *g = oct_graph_new();
    g->opset = 17;
    g->name = strdup("test");
    return g;
}
static void push(int **arr, int *n, int v) {
    *arr = realloc(*arr, sizeof(int) * (size_t)(*n + 1));
    (*arr)[(*n)++] = v;
}
/* A graph input with the given shape and dtype. */
static int g_input_t(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims) {
    int v = oct_graph_add_value(g, name, NULL);
    oct_value *val = &g->values[v];
    val->kind = OCT_VAL_INPUT;
    val->dtype = dt;
    val->rank = rank;
    memcpy(val->dims, dims, sizeof(int64_t) * (size_t)rank);
    push(&g->inputs, &g->n_inputs, v);
    return v;
}
static int g_input(oct_graph *g, const char *name, int rank, const int64_t *dims) {
    return g_input_t(g, name, OCTET_FLOAT, rank, dims);
}
static int g_const(oct_graph *g, const char *name, int rank, const int64_t *dims, const float *data) {
    int v = oct_graph_add_value(g, name, NULL);
    int64_t n = numel(rank, dims);
    float *d = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    memcpy(d, data, sizeof(float) * (size_t)n);
    oct_value_set_const(&g->values[v], OCTET_FLOAT, rank, dims, d);
    return v;
}
static int g_act(oct_graph *g, const char *name) { return oct_graph_add_value(g, name, NULL); }
static void g_output(oct_graph *g, int v) { push(&g->outputs, &g->n_outputs, v); }
static int g_node(oct_graph *g, const char *type, int n_in, const int *in, int n_out, const int *out) {
    int i = oct_graph_add_node(g, type, type, "", n_in, n_out, NULL);
    ck_assert_int_ge(i, 0);
    memcpy(g->nodes[i].in, in, sizeof(int) * (size_t)n_in);
    memcpy(g->nodes[i].out, out, sizeof(int) * (size_t)n_out);
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

/* ---------------------------------------------------------------- a tiny planner/executor */

typedef struct {
    oct_graph *g;
    oct_tensor *t;
    char *owned;
} exec_t;

static int infer_all(oct_graph *g, octet_error *err) {
    if (oct_graph_toposort(g, err)) return -1;
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        if (n->dead) continue;
        n->op = oct_op_find(n->domain, n->op_type);
        ck_assert_msg(n->op != NULL, "no op %s", n->op_type);
        if (n->op->infer(g, n, err)) return -1;
    }
    return 0;
}

/* Plans (optionally with the fuse pass) and runs g; inputs follow g->inputs. */
static exec_t exec(oct_graph *g, int fuse, const void *const *inputs, int threads) {
    octet_error err = {0};
    ck_assert_msg(infer_all(g, &err) == 0, "infer: %s", err.msg);
    if (fuse) {
        ck_assert_msg(oct_pass_fuse(g, &err) == 0, "fuse: %s", err.msg);
        ck_assert_msg(infer_all(g, &err) == 0, "re-infer: %s", err.msg);
        oct_graph_update_uses(g);
    }
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
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        if (n->dead) continue;
        void *ws = malloc(n->workspace_bytes + 64);
        oct_run_ctx ctx = {g, e.t, ws, threads, NULL};
        int rc = n->op->run(&ctx, n, &err);
        free(ws);
        ck_assert_msg(rc == 0, "run %s: %s", n->op_type, err.msg);
    }
    return e;
}
static const float *out_f(const exec_t *e, int i) { return e->t[e->g->outputs[i]].data; }
static void exec_free(exec_t *e) {
    for (int v = 0; v < e->g->n_values; v++)
        if (e->owned[v]) free(e->t[v].data);
    free(e->t);
    free(e->owned);
    oct_graph_free(e->g);
}

static void expect_close(const float *got, const double *want, int64_t n, double rtol, const char *what) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 + rtol * fabs(want[i]), "%s[%lld]: %.7g vs %.7g", what,
                      (long long)i, (double)got[i], want[i]);
}

/* Runs infer on the (single) node graph and expects failure with the given code. */
static void expect_infer_error(oct_graph *g, octet_status code, const char *needle) {
    octet_error err = {0};
    ck_assert_int_ne(infer_all(g, &err), 0);
    ck_assert_msg(err.code == code, "code %d (%s)", err.code, err.msg);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    oct_graph_free(g);
}

/* ---------------------------------------------------------------- Conv */

typedef struct {
    int nsp;
    int64_t N, C, M, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    const char *auto_pad; /* NULL: explicit pads pb/pe; else pb/pe are the pads it implies */
    int bias;
    int epi; /* 1: residual + relu epilogue set by hand */
} conv_case;

static int64_t ax(const int64_t *v, int nsp, int i) { return i < 3 - nsp ? 1 : v[i - (3 - nsp)]; }

/* Direct convolution in double over 3-D geometry (leading dims of size 1 for 1-D/2-D). */
static void conv_ref(const conv_case *c, const float *x, const float *w, const float *b, const float *res,
                     int64_t out[3], double *y) {
    int64_t in[3], k[3], s[3], d[3], pb[3];
    for (int i = 0; i < 3; i++) {
        in[i] = ax(c->in, c->nsp, i);
        k[i] = ax(c->k, c->nsp, i);
        s[i] = i < 3 - c->nsp ? 1 : c->s[i - (3 - c->nsp)];
        d[i] = i < 3 - c->nsp ? 1 : c->d[i - (3 - c->nsp)];
        pb[i] = i < 3 - c->nsp ? 0 : c->pb[i - (3 - c->nsp)];
        int64_t pe = i < 3 - c->nsp ? 0 : c->pe[i - (3 - c->nsp)];
        out[i] = (in[i] + pb[i] + pe - (k[i] - 1) * d[i] - 1) / s[i] + 1;
    }
    const int64_t Cg = c->C / c->group, Mg = c->M / c->group, ov = out[0] * out[1] * out[2];
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++)
            for (int64_t o0 = 0; o0 < out[0]; o0++)
                for (int64_t o1 = 0; o1 < out[1]; o1++)
                    for (int64_t o2 = 0; o2 < out[2]; o2++) {
                        double acc = b ? b[m] : 0.0;
                        for (int64_t cg = 0; cg < Cg; cg++) {
                            int64_t ci = (m / Mg) * Cg + cg;
                            for (int64_t k0 = 0; k0 < k[0]; k0++)
                                for (int64_t k1 = 0; k1 < k[1]; k1++)
                                    for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                        int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
                                        int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
                                        int64_t i2 = o2 * s[2] - pb[2] + k2 * d[2];
                                        if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2])
                                            continue;
                                        acc += (double)x[(((n * c->C + ci) * in[0] + i0) * in[1] + i1) * in[2] + i2] *
                                               w[(((m * Cg + cg) * k[0] + k0) * k[1] + k1) * k[2] + k2];
                                    }
                        }
                        int64_t yi = (n * c->M + m) * ov + (o0 * out[1] + o1) * out[2] + o2;
                        if (res) {
                            acc += res[yi];
                            acc = acc > 0 ? acc : 0;
                        }
                        y[yi] = acc;
                    }
}

static void run_conv_case(const conv_case *c, int threads) {
    oct_graph *g = g_new();
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->group}, yd[5] = {c->N, c->M};
    int64_t out[3];
    for (int i = 0; i < c->nsp; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
    }
    const int rank = c->nsp + 2;
    float *x = rand_buf(numel(rank, xd)), *w = rand_buf(numel(rank, wd)), *b = rand_buf(c->M);
    /* The reference first, for the output shape and the residual's size. */
    int64_t probe[3];
    for (int i = 0; i < 3; i++)
        probe[i] = (ax(c->in, c->nsp, i) + (i < 3 - c->nsp ? 0 : c->pb[i - 3 + c->nsp] + c->pe[i - 3 + c->nsp]) -
                    (ax(c->k, c->nsp, i) - 1) * (i < 3 - c->nsp ? 1 : c->d[i - 3 + c->nsp]) - 1) /
                       (i < 3 - c->nsp ? 1 : c->s[i - 3 + c->nsp]) + 1;
    for (int i = 0; i < c->nsp; i++) yd[2 + i] = probe[3 - c->nsp + i];
    const int64_t ny = numel(rank, yd);
    float *res = c->epi ? rand_buf(ny) : NULL;
    double *ref = malloc(sizeof(double) * (size_t)ny);
    conv_ref(c, x, w, c->bias ? b : NULL, res, out, ref);

    int xv = g_input(g, "x", rank, xd), wv = g_input(g, "w", rank, wd), bv = g_input(g, "b", 1, &c->M);
    int rv = c->epi ? g_input(g, "r", rank, yd) : -1;
    int yv = g_act(g, "y");
    int in[3] = {xv, wv, bv};
    int ni = g_node(g, "Conv", c->bias ? 3 : 2, in, 1, &yv);
    a_int(g, ni, "group", c->group);
    a_ints(g, ni, "kernel_shape", c->nsp, c->k);
    a_ints(g, ni, "strides", c->nsp, c->s);
    a_ints(g, ni, "dilations", c->nsp, c->d);
    if (c->auto_pad) {
        a_str(g, ni, "auto_pad", c->auto_pad);
    } else {
        int64_t pads[6];
        for (int i = 0; i < c->nsp; i++) {
            pads[i] = c->pb[i];
            pads[c->nsp + i] = c->pe[i];
        }
        a_ints(g, ni, "pads", 2 * c->nsp, pads);
    }
    if (c->epi) {
        g->nodes[ni].epi.residual = rv;
        g->nodes[ni].epi.act = OCT_ACT_RELU;
    }
    g_output(g, yv);
    const void *inputs[4] = {x, w, b, res};
    exec_t e = exec(g, 0, inputs, threads);
    const oct_value *yval = &g->values[yv];
    ck_assert_int_eq(yval->rank, rank);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(yval->dims[i], yd[i]);
    expect_close(out_f(&e, 0), ref, ny, 1e-4, "conv");
    exec_free(&e);
    free(x);
    free(w);
    free(b);
    free(res);
    free(ref);
}

static const conv_case conv_cases[] = {
    /* nsp N  C  M  grp  in            k          s          d          pb         pe        auto bias epi */
    {2, 1, 3, 4, 1, {5, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, NULL, 1, 0},
    {2, 2, 3, 5, 1, {7, 5}, {3, 2}, {2, 1}, {1, 1}, {1, 0}, {0, 2}, NULL, 0, 0},
    {2, 1, 4, 6, 2, {6, 6}, {3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}, NULL, 1, 0},
    {2, 1, 4, 4, 4, {8, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, NULL, 1, 1},   /* depthwise */
    {2, 2, 3, 6, 3, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, NULL, 0, 0},   /* multiplier 2 */
    {2, 1, 8, 5, 1, {4, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, NULL, 1, 1},   /* pointwise */
    {2, 1, 8, 6, 2, {4, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, NULL, 0, 0},   /* grouped pointwise */
    {2, 1, 3, 4, 1, {7, 7}, {4, 4}, {2, 2}, {1, 1}, {2, 2}, {1, 1}, "SAME_LOWER", 1, 0},
    {2, 1, 3, 4, 1, {7, 8}, {3, 4}, {2, 3}, {1, 1}, {1, 1}, {1, 1}, "SAME_UPPER", 0, 0},
    {2, 1, 2, 3, 1, {6, 5}, {3, 2}, {2, 1}, {1, 1}, {0, 0}, {0, 0}, "VALID", 1, 0},
    {1, 2, 4, 4, 2, {11}, {3}, {1}, {2}, {2}, {1}, NULL, 1, 0},
    {3, 1, 3, 4, 1, {5, 6, 4}, {3, 3, 3}, {2, 1, 1}, {1, 2, 1}, {1, 2, 1}, {0, 1, 1}, NULL, 1, 1},
    {3, 1, 3, 3, 3, {5, 4, 6}, {3, 3, 3}, {1, 1, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, NULL, 1, 0},
    /* Large enough for several pixel tiles and output-channel blocks. */
    {2, 1, 48, 80, 1, {23, 21}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, NULL, 1, 1},
    {2, 2, 64, 72, 1, {9, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, NULL, 0, 0},
    /* image stems (few input channels, column stride 2: conv_few.c on AVX-512): a last group of one
       output channel, 5x5, 4 channels with asymmetric pads, row stride 1, 7x7 */
    {2, 2, 3, 33, 1, {37, 45}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, NULL, 1, 1},
    {2, 1, 3, 8, 1, {40, 64}, {5, 5}, {2, 2}, {1, 1}, {2, 2}, {2, 2}, NULL, 0, 0},
    {2, 1, 4, 12, 1, {30, 50}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, {1, 1}, NULL, 1, 0},
    {2, 1, 2, 7, 1, {20, 33}, {3, 3}, {1, 2}, {1, 1}, {1, 1}, {1, 1}, NULL, 1, 0},
    {2, 1, 3, 16, 1, {50, 47}, {7, 7}, {2, 2}, {1, 1}, {3, 3}, {3, 3}, NULL, 1, 0},
};

START_TEST(conv_cases_match_direct) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        run_conv_case(&conv_cases[i], 1);
        run_conv_case(&conv_cases[i], omp_get_max_threads() > 1 ? omp_get_max_threads() : 4);
    }
}
END_TEST

START_TEST(conv_bad_shapes) {
    int64_t xd[4] = {1, 3, 5, 5}, wd[4] = {4, 2, 3, 3};
    oct_graph *g = g_new();
    int in[2] = {g_input(g, "x", 4, xd), g_input(g, "w", 4, wd)}, y = g_act(g, "y");
    g_node(g, "Conv", 2, in, 1, &y);
    expect_infer_error(g, OCTET_ERR_SHAPE, "input channels per group");

    int64_t wd2[4] = {4, 3, 7, 7};
    g = g_new();
    int in2[2] = {g_input(g, "x", 4, xd), g_input(g, "w", 4, wd2)};
    y = g_act(g, "y");
    g_node(g, "Conv", 2, in2, 1, &y);
    expect_infer_error(g, OCTET_ERR_SHAPE, "larger than the padded input");

    int64_t wd3[4] = {4, 3, 3, 3};
    g = g_new();
    int in3[2] = {g_input(g, "x", 4, xd), g_input(g, "w", 4, wd3)};
    y = g_act(g, "y");
    int ni = g_node(g, "Conv", 2, in3, 1, &y);
    a_str(g, ni, "auto_pad", "SAME_MIDDLE");
    expect_infer_error(g, OCTET_ERR_FORMAT, "auto_pad");
}
END_TEST

/* ---------------------------------------------------------------- ConvTranspose */

typedef struct {
    int nsp;
    int64_t N, C, M, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], adj[3];
    int64_t oshape[3]; /* 0: not given */
    int bias;
} convt_case;

/* With const_w the weights are a constant (transposed once at plan time), else a graph input. */
static void run_convt_case(const convt_case *c, int threads, int const_w) {
    const int rank = c->nsp + 2;
    const int64_t Mg = c->M / c->group, Cg = c->C / c->group;
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->C, Mg}, yd[5] = {c->N, c->M};
    int64_t kv = 1, iv = 1, ov = 1;
    for (int i = 0; i < c->nsp; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
        yd[2 + i] = c->oshape[0] ? c->oshape[i]
                                 : c->s[i] * (c->in[i] - 1) + c->adj[i] + (c->k[i] - 1) * c->d[i] + 1 - c->pb[i] - c->pe[i];
        kv *= c->k[i];
        iv *= c->in[i];
        ov *= yd[2 + i];
    }
    float *x = rand_buf(numel(rank, xd)), *w = rand_buf(numel(rank, wd)), *b = rand_buf(c->M);
    const int64_t ny = numel(rank, yd);
    double *ref = calloc((size_t)ny, sizeof(double));
    /* Scatter form: every input pixel adds w * x to the outputs its taps reach. */
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t ci = 0; ci < c->C; ci++)
            for (int64_t ip = 0; ip < iv; ip++)
                for (int64_t mg = 0; mg < Mg; mg++)
                    for (int64_t kp = 0; kp < kv; kp++) {
                        int64_t o = 0, rem_i = ip, rem_k = kp, ok = 1, scale = 1;
                        for (int dd = c->nsp - 1; dd >= 0; dd--) {
                            int64_t ii = rem_i % c->in[dd], kk = rem_k % c->k[dd];
                            rem_i /= c->in[dd];
                            rem_k /= c->k[dd];
                            int64_t oo = ii * c->s[dd] - c->pb[dd] + kk * c->d[dd];
                            if (oo < 0 || oo >= yd[2 + dd]) ok = 0;
                            o += oo * scale;
                            scale *= yd[2 + dd];
                        }
                        if (!ok) continue;
                        int64_t m = (ci / Cg) * Mg + mg;
                        ref[(n * c->M + m) * ov + o] +=
                            (double)x[(n * c->C + ci) * iv + ip] * w[(ci * Mg + mg) * kv + kp];
                    }
    if (c->bias)
        for (int64_t n = 0; n < c->N; n++)
            for (int64_t m = 0; m < c->M; m++)
                for (int64_t q = 0; q < ov; q++) ref[(n * c->M + m) * ov + q] += b[m];

    oct_graph *g = g_new();
    int in[3] = {g_input(g, "x", rank, xd), const_w ? g_const(g, "w", rank, wd, w) : g_input(g, "w", rank, wd),
                 g_input(g, "b", 1, &c->M)};
    int yv = g_act(g, "y");
    int ni = g_node(g, "ConvTranspose", c->bias ? 3 : 2, in, 1, &yv);
    a_int(g, ni, "group", c->group);
    a_ints(g, ni, "strides", c->nsp, c->s);
    a_ints(g, ni, "dilations", c->nsp, c->d);
    a_ints(g, ni, "output_padding", c->nsp, c->adj);
    if (c->oshape[0]) {
        a_ints(g, ni, "output_shape", c->nsp, c->oshape);
    } else {
        int64_t pads[6];
        for (int i = 0; i < c->nsp; i++) {
            pads[i] = c->pb[i];
            pads[c->nsp + i] = c->pe[i];
        }
        a_ints(g, ni, "pads", 2 * c->nsp, pads);
    }
    g_output(g, yv);
    const void *inputs[3] = {x, const_w ? (const void *)b : w, b}; /* the graph inputs, in order */
    exec_t e = exec(g, 0, inputs, threads);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(g->values[yv].dims[i], yd[i]);
    expect_close(out_f(&e, 0), ref, ny, 1e-4, "convtranspose");
    exec_free(&e);
    free(x);
    free(w);
    free(b);
    free(ref);
}

static const convt_case convt_cases[] = {
    /* nsp N C M grp in k s d pb pe adj oshape bias */
    {2, 1, 2, 3, 1, {3, 4}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {0}, 1},
    {2, 2, 4, 6, 2, {4, 3}, {4, 4}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {0}, 1},
    {2, 1, 3, 3, 3, {5, 5}, {4, 4}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0}, 0},
    {2, 1, 2, 2, 1, {3, 3}, {3, 3}, {1, 1}, {2, 2}, {0, 0}, {0, 0}, {0, 0}, {0}, 0},
    {1, 1, 3, 2, 1, {5}, {3}, {3}, {1}, {0}, {0}, {0}, {0}, 1},
    {3, 1, 4, 2, 1, {3, 2, 3}, {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0}, 1},
    {3, 1, 2, 3, 1, {3, 3, 2}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0}, 1},
    /* output_shape bigger than the natural size: zero total padding, extra pixels at the end */
    {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {0, 0}, {0, 0}, {0, 0}, {10, 8}, 0},
    /* several pixel tiles and channel blocks */
    {2, 1, 16, 40, 1, {19, 17}, {2, 2}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, {0, 0}, {0}, 1},
    /* windows that tile the output (stride == kernel): written once, not accumulated; stride 3,
       rows longer than a tile, groups, and with output_padding (not disjoint) for contrast */
    {3, 1, 3, 4, 1, {4, 5, 6}, {3, 3, 3}, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0}, 1},
    {1, 2, 4, 6, 2, {300}, {2}, {2}, {1}, {0}, {0}, {0}, {0}, 1},
    {2, 1, 8, 8, 1, {9, 40}, {2, 2}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, {0}, 1},
};

START_TEST(convtranspose_cases_match_scatter) {
    for (size_t i = 0; i < sizeof convt_cases / sizeof convt_cases[0]; i++) {
        run_convt_case(&convt_cases[i], 1, 0);
        run_convt_case(&convt_cases[i], 4, 0);
        run_convt_case(&convt_cases[i], 1, 1);
        run_convt_case(&convt_cases[i], 4, 1);
    }
}
END_TEST

/* ---------------------------------------------------------------- Gemm / MatMul */

static void run_gemm(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha, float beta, int crank,
                     const int64_t *cd) {
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N}, yd[2] = {M, N};
    float *a = rand_buf(M * K), *b = rand_buf(K * N), *c = rand_buf(numel(crank, cd));
    double *ref = malloc(sizeof(double) * (size_t)(M * N));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t p = 0; p < K; p++)
                s += (double)(ta ? a[p * M + i] : a[i * K + p]) * (tb ? b[j * K + p] : b[p * N + j]);
            int64_t ci = 0;
            if (crank == 2) ci = (cd[0] == 1 ? 0 : i * cd[1]) + (cd[1] == 1 ? 0 : j);
            else if (crank == 1) ci = cd[0] == 1 ? 0 : j;
            ref[i * N + j] = alpha * s + (crank >= 0 ? beta * c[ci] : 0.0);
        }
    oct_graph *g = g_new();
    int in[3] = {g_input(g, "a", 2, ad), g_input(g, "b", 2, bd), crank >= 0 ? g_input(g, "c", crank, cd) : -1};
    int y = g_act(g, "y");
    int ni = g_node(g, "Gemm", crank >= 0 ? 3 : 2, in, 1, &y);
    a_int(g, ni, "transA", ta);
    a_int(g, ni, "transB", tb);
    a_float(g, ni, "alpha", alpha);
    a_float(g, ni, "beta", beta);
    g_output(g, y);
    const void *inputs[3] = {a, b, c};
    exec_t e = exec(g, 0, inputs, 3);
    ck_assert_int_eq(g->values[y].dims[0], yd[0]);
    ck_assert_int_eq(g->values[y].dims[1], yd[1]);
    expect_close(out_f(&e, 0), ref, M * N, 1e-4, "gemm");
    exec_free(&e);
    free(a);
    free(b);
    free(c);
    free(ref);
}

START_TEST(gemm_variants) {
    int64_t c2[2] = {5, 7}, crow[2] = {1, 7}, ccol[2] = {5, 1}, c1[1] = {7}, c11[1] = {1};
    run_gemm(5, 7, 3, 0, 0, 1.f, 1.f, 2, c2);
    run_gemm(5, 7, 3, 1, 0, 0.5f, 2.f, 2, crow);
    run_gemm(5, 7, 3, 0, 1, 1.f, 1.f, 2, ccol);
    run_gemm(5, 7, 3, 1, 1, 2.f, -1.f, 1, c1);
    run_gemm(5, 7, 3, 0, 0, 1.f, 0.5f, 1, c11);
    run_gemm(5, 7, 3, 0, 0, 1.f, 0.5f, 0, c11);
    run_gemm(5, 7, 3, 0, 1, 1.f, 1.f, -1, NULL);
    int64_t cbig[1] = {300};
    run_gemm(70, 300, 129, 0, 1, 1.f, 1.f, 1, cbig);
}
END_TEST

static void run_matmul(int ra, const int64_t *ad, int rb, const int64_t *bd, int ry, const int64_t *yd) {
    float *a = rand_buf(numel(ra, ad)), *b = rand_buf(numel(rb, bd));
    const int64_t ny = numel(ry, yd);
    double *ref = malloc(sizeof(double) * (size_t)ny);
    /* Promote to rank-4 views, the way numpy does. */
    int64_t A[4] = {1, 1, 1, 1}, B[4] = {1, 1, 1, 1};
    if (ra == 1) A[3] = ad[0];
    else
        for (int i = 0; i < ra; i++) A[4 - ra + i] = ad[i];
    if (rb == 1) B[2] = bd[0];
    else
        for (int i = 0; i < rb; i++) B[4 - rb + i] = bd[i];
    const int64_t M = A[2], K = A[3], N = B[3];
    int64_t Y0 = A[0] > B[0] ? A[0] : B[0], Y1 = A[1] > B[1] ? A[1] : B[1], q = 0;
    for (int64_t i0 = 0; i0 < Y0; i0++)
        for (int64_t i1 = 0; i1 < Y1; i1++)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t abat = (A[0] == 1 ? 0 : i0) * A[1] + (A[1] == 1 ? 0 : i1);
                    int64_t bbat = (B[0] == 1 ? 0 : i0) * B[1] + (B[1] == 1 ? 0 : i1);
                    double s = 0;
                    for (int64_t p = 0; p < K; p++) s += (double)a[(abat * M + i) * K + p] * b[(bbat * K + p) * N + j];
                    ref[q++] = s;
                }
    ck_assert_int_eq(q, ny);
    oct_graph *g = g_new();
    int in[2] = {g_input(g, "a", ra, ad), g_input(g, "b", rb, bd)}, y = g_act(g, "y");
    g_node(g, "MatMul", 2, in, 1, &y);
    g_output(g, y);
    const void *inputs[2] = {a, b};
    exec_t e = exec(g, 0, inputs, 4);
    ck_assert_int_eq(g->values[y].rank, ry);
    for (int i = 0; i < ry; i++) ck_assert_int_eq(g->values[y].dims[i], yd[i]);
    expect_close(out_f(&e, 0), ref, ny, 1e-4, "matmul");
    exec_free(&e);
    free(a);
    free(b);
    free(ref);
}

START_TEST(matmul_broadcasting) {
    { int64_t a[2] = {7, 33}, b[2] = {33, 100}, y[2] = {7, 100}; run_matmul(2, a, 2, b, 2, y); }
    { int64_t a[4] = {2, 1, 5, 7}, b[3] = {3, 7, 4}, y[4] = {2, 3, 5, 4}; run_matmul(4, a, 3, b, 4, y); }
    { int64_t a[1] = {6}, b[3] = {2, 6, 3}, y[2] = {2, 3}; run_matmul(1, a, 3, b, 2, y); }
    { int64_t a[3] = {2, 4, 6}, b[1] = {6}, y[2] = {2, 4}; run_matmul(3, a, 1, b, 2, y); }
    { int64_t a[1] = {9}, b[1] = {9}; run_matmul(1, a, 1, b, 0, NULL); }
    { int64_t a[3] = {1, 1, 65}, b[2] = {65, 300}, y[3] = {1, 1, 300}; run_matmul(3, a, 2, b, 3, y); }
}
END_TEST

START_TEST(matmul_bad_inner) {
    int64_t ad[2] = {3, 4}, bd[2] = {5, 2};
    oct_graph *g = g_new();
    int in[2] = {g_input(g, "a", 2, ad), g_input(g, "b", 2, bd)}, y = g_act(g, "y");
    g_node(g, "MatMul", 2, in, 1, &y);
    expect_infer_error(g, OCTET_ERR_SHAPE, "inner dims");
}
END_TEST

/* ---------------------------------------------------------------- pooling */

/* Reference pooling on a 2-D plane, explicit pads; mode 0 max, 1 avg exclude pad, 2 avg include pad. */
static void pool2d_ref(const float *x, int64_t H, int64_t W, const int64_t k[2], const int64_t s[2],
                       const int64_t d[2], const int64_t pb[2], const int64_t pe[2], int64_t OH, int64_t OW,
                       int mode, double *y, int64_t *idx) {
    for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            double best = -INFINITY, sum = 0;
            int64_t cnt = 0, at = -1, cnt_pad = 0;
            for (int64_t kh = 0; kh < k[0]; kh++)
                for (int64_t kw = 0; kw < k[1]; kw++) {
                    int64_t ih = oh * s[0] - pb[0] + kh * d[0], iw = ow * s[1] - pb[1] + kw * d[1];
                    if (ih < H + pe[0] && iw < W + pe[1]) cnt_pad++;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                    double v = x[ih * W + iw];
                    sum += v;
                    cnt++;
                    if (v > best) {
                        best = v;
                        at = ih * W + iw;
                    }
                }
            y[oh * OW + ow] = mode == 0 ? best : sum / (double)(mode == 1 ? cnt : cnt_pad);
            if (idx) idx[oh * OW + ow] = at;
        }
}

typedef struct {
    int64_t H, W, k[2], s[2], d[2], pb[2], pe[2];
    int ceil_mode;
} pool_case;

static void run_pool(const pool_case *c, const char *type, int mode) {
    const int64_t N = 2, C = 3;
    int64_t OH, OW, o[2];
    for (int i = 0; i < 2; i++) {
        int64_t in = i ? c->W : c->H, span = in + c->pb[i] + c->pe[i] - (c->k[i] - 1) * c->d[i] - 1;
        o[i] = (c->ceil_mode ? (span + c->s[i] - 1) / c->s[i] : span / c->s[i]) + 1;
        if (c->ceil_mode && (o[i] - 1) * c->s[i] >= in + c->pb[i]) o[i]--;
    }
    OH = o[0];
    OW = o[1];
    int64_t xd[4] = {N, C, c->H, c->W}, yd[4] = {N, C, OH, OW};
    float *x = rand_buf(N * C * c->H * c->W);
    double *ref = malloc(sizeof(double) * (size_t)(N * C * OH * OW));
    int64_t *ridx = malloc(sizeof(int64_t) * (size_t)(N * C * OH * OW));
    for (int64_t p = 0; p < N * C; p++) {
        pool2d_ref(x + p * c->H * c->W, c->H, c->W, c->k, c->s, c->d, c->pb, c->pe, OH, OW, mode, ref + p * OH * OW,
                   ridx + p * OH * OW);
        for (int64_t q = 0; q < OH * OW; q++) ridx[p * OH * OW + q] += p * c->H * c->W;
    }
    oct_graph *g = g_new();
    int xv = g_input(g, "x", 4, xd), outs[2] = {g_act(g, "y"), g_act(g, "i")};
    int ni = g_node(g, type, 1, &xv, mode == 0 ? 2 : 1, outs);
    int64_t pads[4] = {c->pb[0], c->pb[1], c->pe[0], c->pe[1]};
    a_ints(g, ni, "kernel_shape", 2, c->k);
    a_ints(g, ni, "strides", 2, c->s);
    a_ints(g, ni, "pads", 4, pads);
    if (mode == 0) a_ints(g, ni, "dilations", 2, c->d);
    a_int(g, ni, "ceil_mode", c->ceil_mode);
    if (mode == 2) a_int(g, ni, "count_include_pad", 1);
    g_output(g, outs[0]);
    if (mode == 0) g_output(g, outs[1]);
    const void *inputs[1] = {x};
    exec_t e = exec(g, 0, inputs, 2);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(g->values[outs[0]].dims[i], yd[i]);
    expect_close(out_f(&e, 0), ref, N * C * OH * OW, 1e-5, type);
    if (mode == 0) {
        const int64_t *gi = e.t[outs[1]].data;
        ck_assert_int_eq(g->values[outs[1]].dtype, OCTET_INT64);
        for (int64_t q = 0; q < N * C * OH * OW; q++) ck_assert_int_eq(gi[q], ridx[q]);
    }
    exec_free(&e);
    free(x);
    free(ref);
    free(ridx);
}

static const pool_case pool_cases[] = {
    {5, 5, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 0},
    {7, 6, {3, 2}, {2, 2}, {1, 1}, {1, 0}, {0, 1}, 0},
    {6, 6, {3, 3}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, 1},
    {8, 7, {2, 2}, {2, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
    {9, 9, {3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}, 0},
};

START_TEST(pools_match_reference) {
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        run_pool(&pool_cases[i], "MaxPool", 0);
        if (pool_cases[i].d[0] == 1) {
            run_pool(&pool_cases[i], "AveragePool", 1);
            run_pool(&pool_cases[i], "AveragePool", 2);
        }
    }
}
END_TEST

START_TEST(maxpool_uint8_and_storage_order) {
    int64_t xd[4] = {1, 1, 3, 4}, k[2] = {2, 2};
    uint8_t x[12] = {1, 9, 3, 4, 250, 6, 7, 8, 0, 10, 11, 200};
    oct_graph *g = g_new();
    int xv = g_input_t(g, "x", OCTET_UINT8, 4, xd), outs[2] = {g_act(g, "y"), g_act(g, "i")};
    int ni = g_node(g, "MaxPool", 1, &xv, 2, outs);
    a_ints(g, ni, "kernel_shape", 2, k);
    a_int(g, ni, "storage_order", 1);
    g_output(g, outs[0]);
    g_output(g, outs[1]);
    const void *inputs[1] = {x};
    exec_t e = exec(g, 0, inputs, 1);
    ck_assert_int_eq(g->values[outs[0]].dtype, OCTET_UINT8);
    const uint8_t *y = e.t[outs[0]].data;
    const int64_t *id = e.t[outs[1]].data;
    const uint8_t want[6] = {250, 9, 8, 250, 11, 200};
    /* column-major within the 3x4 plane: (h, w) -> h + w*3 */
    const int64_t want_i[6] = {1, 3, 10, 1, 8, 11};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(y[i], want[i]);
        ck_assert_int_eq(id[i], want_i[i]);
    }
    exec_free(&e);
}
END_TEST

START_TEST(pool_same_upper_and_3d) {
    /* 3-D max and average pooling with SAME_UPPER: compared against a 2-D reference by using a
       depth kernel of 1 on every depth slice. */
    int64_t xd[5] = {1, 2, 3, 5, 6}, k[3] = {1, 3, 2}, s[3] = {1, 2, 2};
    float *x = rand_buf(2 * 3 * 5 * 6);
    for (int mode = 0; mode < 2; mode++) {
        oct_graph *g = g_new();
        int xv = g_input(g, "x", 5, xd), y = g_act(g, "y");
        int ni = g_node(g, mode ? "AveragePool" : "MaxPool", 1, &xv, 1, &y);
        a_ints(g, ni, "kernel_shape", 3, k);
        a_ints(g, ni, "strides", 3, s);
        a_str(g, ni, "auto_pad", "SAME_UPPER");
        g_output(g, y);
        const void *inputs[1] = {x};
        exec_t e = exec(g, 0, inputs, 2);
        /* out = ceil(in / s): 3, 3, 3; pads H: total (3-1)*2+3-5 = 2 -> 1/1; W: (3-1)*2+2-6 = 0 */
        ck_assert_int_eq(g->values[y].dims[3], 3);
        ck_assert_int_eq(g->values[y].dims[4], 3);
        int64_t k2[2] = {3, 2}, s2[2] = {2, 2}, d2[2] = {1, 1}, pb[2] = {1, 0}, pe[2] = {1, 0};
        double ref[9];
        for (int64_t pl = 0; pl < 2 * 3; pl++) {
            pool2d_ref(x + pl * 30, 5, 6, k2, s2, d2, pb, pe, 3, 3, mode, ref, NULL);
            expect_close(out_f(&e, 0) + pl * 9, ref, 9, 1e-5, "pool3d");
        }
        exec_free(&e);
    }
    free(x);
}
END_TEST

START_TEST(global_pools) {
    int64_t xd[5] = {2, 3, 4, 5, 3};
    const int64_t vol = 60;
    float *x = rand_buf(2 * 3 * vol);
    for (int mode = 0; mode < 2; mode++) {
        oct_graph *g = g_new();
        int xv = g_input(g, "x", 5, xd), y = g_act(g, "y");
        g_node(g, mode ? "GlobalMaxPool" : "GlobalAveragePool", 1, &xv, 1, &y);
        g_output(g, y);
        const void *inputs[1] = {x};
        exec_t e = exec(g, 0, inputs, 2);
        ck_assert_int_eq(g->values[y].rank, 5);
        ck_assert_int_eq(g->values[y].dims[1], 3);
        ck_assert_int_eq(g->values[y].dims[4], 1);
        double ref[6];
        for (int p = 0; p < 6; p++) {
            double s = 0, m = -INFINITY;
            for (int64_t i = 0; i < vol; i++) {
                s += x[p * vol + i];
                m = x[p * vol + i] > m ? x[p * vol + i] : m;
            }
            ref[p] = mode ? m : s / vol;
        }
        expect_close(out_f(&e, 0), ref, 6, 1e-5, "globalpool");
        exec_free(&e);
    }
    free(x);
}
END_TEST

/* ---------------------------------------------------------------- normalisation */

START_TEST(batchnorm_inference) {
    int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
    float *x = rand_buf(120), sc[3] = {0.5f, -1.f, 2.f}, bi[3] = {0.1f, 0.2f, -0.3f}, mu[3] = {0.f, 0.3f, -0.2f},
          var[3] = {1.f, 0.25f, 4.f};
    double ref[120];
    for (int i = 0; i < 120; i++) {
        int c = (i / 20) % 3;
        ref[i] = (x[i] - mu[c]) / sqrt(var[c] + 1e-3) * sc[c] + bi[c];
    }
    oct_graph *g = g_new();
    int in[5] = {g_input(g, "x", 4, xd), g_input(g, "s", 1, cd), g_input(g, "b", 1, cd), g_input(g, "m", 1, cd),
                 g_input(g, "v", 1, cd)};
    int y = g_act(g, "y");
    int ni = g_node(g, "BatchNormalization", 5, in, 1, &y);
    a_float(g, ni, "epsilon", 1e-3f);
    g_output(g, y);
    const void *inputs[5] = {x, sc, bi, mu, var};
    exec_t e = exec(g, 0, inputs, 2);
    expect_close(out_f(&e, 0), ref, 120, 1e-5, "batchnorm");
    exec_free(&e);
    free(x);

    g = g_new();
    int in2[5] = {g_input(g, "x", 4, xd), g_input(g, "s", 1, cd), g_input(g, "b", 1, cd), g_input(g, "m", 1, cd),
                  g_input(g, "v", 1, cd)};
    int outs[3] = {g_act(g, "y"), g_act(g, "rm"), g_act(g, "rv")};
    ni = g_node(g, "BatchNormalization", 5, in2, 3, outs);
    a_int(g, ni, "training_mode", 1);
    expect_infer_error(g, OCTET_ERR_UNSUPPORTED, "training");
}
END_TEST

START_TEST(instancenorm_planes) {
    int64_t xd[5] = {2, 3, 4, 3, 5}, cd[1] = {3};
    const int64_t vol = 60;
    float *x = rand_buf(2 * 3 * vol), sc[3] = {1.f, 0.5f, -2.f}, bi[3] = {0.f, 1.f, 0.5f};
    double *ref = malloc(sizeof(double) * 360);
    for (int p = 0; p < 6; p++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < vol; i++) m += x[p * vol + i];
        m /= vol;
        for (int64_t i = 0; i < vol; i++) v += (x[p * vol + i] - m) * (x[p * vol + i] - m);
        v /= vol;
        for (int64_t i = 0; i < vol; i++) ref[p * vol + i] = (x[p * vol + i] - m) / sqrt(v + 1e-5) * sc[p % 3] + bi[p % 3];
    }
    oct_graph *g = g_new();
    int in[3] = {g_input(g, "x", 5, xd), g_input(g, "s", 1, cd), g_input(g, "b", 1, cd)}, y = g_act(g, "y");
    g_node(g, "InstanceNormalization", 3, in, 1, &y);
    g_output(g, y);
    const void *inputs[3] = {x, sc, bi};
    exec_t e = exec(g, 0, inputs, 2);
    expect_close(out_f(&e, 0), ref, 360, 1e-4, "instancenorm");
    exec_free(&e);
    free(x);
    free(ref);
}
END_TEST

static void run_layernorm(int64_t axis, int srank, const int64_t *sd, int with_bias) {
    int64_t xd[3] = {2, 3, 4};
    const int64_t a = axis < 0 ? axis + 3 : axis;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < 3; d++) {
        if (d < a) outer *= xd[d];
        else inner *= xd[d];
    }
    float *x = rand_buf(24), *s = rand_buf(numel(srank, sd)), *b = rand_buf(numel(srank, sd));
    double ref[24], rm[24], ri[24];
    for (int64_t r = 0; r < outer; r++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < inner; i++) m += x[r * inner + i];
        m /= inner;
        for (int64_t i = 0; i < inner; i++) v += (x[r * inner + i] - m) * (x[r * inner + i] - m);
        v /= inner;
        rm[r] = m;
        ri[r] = 1 / sqrt(v + 1e-5);
        for (int64_t i = 0; i < inner; i++) {
            /* broadcast index of scale over the trailing inner dims */
            int64_t rem = i, off = 0, stride = 1;
            for (int d = 2; d >= (int)a; d--) {
                int64_t id = rem % xd[d];
                rem /= xd[d];
                int sdim = d - (3 - srank);
                if (sdim >= 0) {
                    if (sd[sdim] != 1) off += id * stride;
                    stride *= sd[sdim];
                }
            }
            ref[r * inner + i] = (x[r * inner + i] - m) * ri[r] * s[off] + (with_bias ? b[off] : 0.0);
        }
    }
    oct_graph *g = g_new();
    int in[3] = {g_input(g, "x", 3, xd), g_input(g, "s", srank, sd), with_bias ? g_input(g, "b", srank, sd) : -1};
    int outs[3] = {g_act(g, "y"), g_act(g, "mean"), g_act(g, "inv")};
    int ni = g_node(g, "LayerNormalization", with_bias ? 3 : 2, in, 3, outs);
    a_int(g, ni, "axis", axis);
    for (int i = 0; i < 3; i++) g_output(g, outs[i]);
    const void *inputs[3] = {x, s, b};
    exec_t e = exec(g, 0, inputs, 2);
    expect_close(out_f(&e, 0), ref, 24, 1e-4, "layernorm");
    expect_close(out_f(&e, 1), rm, outer, 1e-5, "layernorm mean");
    expect_close(out_f(&e, 2), ri, outer, 1e-4, "layernorm inv_std");
    for (int d = 0; d < 3; d++) ck_assert_int_eq(g->values[outs[1]].dims[d], d < a ? xd[d] : 1);
    exec_free(&e);
    free(x);
    free(s);
    free(b);
}

START_TEST(layernorm_axes) {
    int64_t s4[1] = {4}, s34[2] = {3, 4}, s14[2] = {1, 4}, s234[3] = {2, 3, 4};
    run_layernorm(-1, 1, s4, 1);
    run_layernorm(1, 2, s34, 1);
    run_layernorm(1, 2, s14, 0);
    run_layernorm(0, 3, s234, 1);
    run_layernorm(-2, 1, s4, 1);
}
END_TEST

/* ---------------------------------------------------------------- fusion */

/* Conv -> BatchNormalization -> [Add(., r)] -> Relu with constant weights; returns the graph. */
static oct_graph *conv_bn_graph(int with_add, int with_bn, const float *w, const float *bn_params, int *yout) {
    int64_t xd[4] = {1, 3, 6, 5}, wd[4] = {4, 3, 3, 3}, cd[1] = {4}, rd[4] = {1, 4, 6, 5};
    oct_graph *g = g_new();
    int xv = g_input(g, "x", 4, xd);
    int rv = with_add ? g_input(g, "r", 4, rd) : -1;
    int wv = g_const(g, "w", 4, wd, w);
    int c = g_act(g, "conv_out");
    int in[2] = {xv, wv};
    int ni = g_node(g, "Conv", 2, in, 1, &c);
    int64_t pads[4] = {1, 1, 1, 1};
    a_ints(g, ni, "pads", 4, pads);
    int cur = c;
    if (with_bn) {
        int bnin[5] = {cur, g_const(g, "s", 1, cd, bn_params), g_const(g, "b", 1, cd, bn_params + 4),
                       g_const(g, "m", 1, cd, bn_params + 8), g_const(g, "v", 1, cd, bn_params + 12)};
        int bo = g_act(g, "bn_out");
        int bi = g_node(g, "BatchNormalization", 5, bnin, 1, &bo);
        a_float(g, bi, "epsilon", 1e-5f);
        cur = bo;
    }
    if (with_add) {
        int ain[2] = {rv, cur}, ao = g_act(g, "add_out");
        g_node(g, "Add", 2, ain, 1, &ao);
        cur = ao;
    }
    int y = g_act(g, "y");
    g_node(g, "Relu", 1, &cur, 1, &y);
    g_output(g, y);
    *yout = y;
    return g;
}

static int live_nodes(const oct_graph *g) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !g->nodes[i].dead;
    return n;
}

static void compare_fused(int with_add, int with_bn, const char *want_fused) {
    float *w = rand_buf(4 * 3 * 9), *x = rand_buf(90), *r = rand_buf(120);
    float bnp[16] = {0.5f, -1.2f, 2.f, 1.f, 0.1f, 0.2f, -0.3f, 0.f, 0.05f, -0.1f, 0.2f, 0.f, 1.f, 0.3f, 2.f, 0.7f};
    int y0, y1;
    oct_graph *plain = conv_bn_graph(with_add, with_bn, w, bnp, &y0);
    oct_graph *fused = conv_bn_graph(with_add, with_bn, w, bnp, &y1);
    const void *inputs[2] = {x, r};
    exec_t a = exec(plain, 0, inputs, 2), b = exec(fused, 1, inputs, 2);
    ck_assert_int_eq(live_nodes(fused), 1);
    const oct_node *conv = &fused->nodes[0];
    ck_assert_str_eq(conv->op_type, "Conv");
    ck_assert_ptr_nonnull(conv->fused);
    ck_assert_str_eq(conv->fused, want_fused);
    ck_assert_int_eq(conv->epi.act, OCT_ACT_RELU);
    ck_assert_int_eq(conv->out[0], y1);
    if (with_bn) ck_assert_int_eq(conv->n_in, 3);
    /* The borrowed/original weight must be untouched by folding. */
    ck_assert(memcmp(fused->values[1 + with_add].data, w, sizeof(float) * 108) == 0);
    const float *pa = out_f(&a, 0), *pb = out_f(&b, 0);
    int nonzero = 0;
    for (int i = 0; i < 120; i++) {
        ck_assert_msg(fabsf(pa[i] - pb[i]) <= 1e-5f * (1.f + fabsf(pa[i])), "%d: %g vs %g", i, (double)pa[i],
                      (double)pb[i]);
        nonzero += pa[i] != 0.f;
    }
    ck_assert_int_gt(nonzero, 10);
    exec_free(&a);
    exec_free(&b);
    free(w);
    free(x);
    free(r);
}

START_TEST(fuse_conv_bn_relu) { compare_fused(0, 1, "BatchNormalization+Relu"); }
END_TEST
START_TEST(fuse_conv_add_relu) { compare_fused(1, 0, "Add+Relu"); }
END_TEST
START_TEST(fuse_conv_bn_add_relu) { compare_fused(1, 1, "BatchNormalization+Add+Relu"); }
END_TEST

START_TEST(fuse_silu_and_clip) {
    /* MatMul -> x*Sigmoid(x); Gemm -> Clip(min, max) with constant bounds. */
    int64_t ad[2] = {3, 5}, bd[2] = {5, 4}, sd[1] = {1};
    float *a = rand_buf(15), *bm = rand_buf(20), lo = -0.2f, hi = 0.3f;
    for (int fuse = 0; fuse < 2; fuse++) {
        oct_graph *g = g_new();
        int av = g_input(g, "a", 2, ad), bv = g_const(g, "b", 2, bd, bm);
        int m = g_act(g, "mm"), s = g_act(g, "sig"), y = g_act(g, "y");
        int in[2] = {av, bv};
        g_node(g, "MatMul", 2, in, 1, &m);
        g_node(g, "Sigmoid", 1, &m, 1, &s);
        int min[2] = {s, m};
        g_node(g, "Mul", 2, min, 1, &y);
        int gm = g_act(g, "gm"), y2 = g_act(g, "y2");
        int gin[2] = {av, bv};
        g_node(g, "Gemm", 2, gin, 1, &gm);
        int cin[3] = {gm, g_const(g, "lo", 0, sd, &lo), g_const(g, "hi", 0, sd, &hi)};
        g_node(g, "Clip", 3, cin, 1, &y2);
        g_output(g, y);
        g_output(g, y2);
        const void *inputs[1] = {a};
        exec_t e = exec(g, fuse, inputs, 2);
        double want[12], want2[12];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                double acc = 0;
                for (int p = 0; p < 5; p++) acc += (double)a[i * 5 + p] * bm[p * 4 + j];
                want[i * 4 + j] = acc / (1 + exp(-acc));
                want2[i * 4 + j] = acc < lo ? lo : acc > hi ? hi : acc;
            }
        expect_close(out_f(&e, 0), want, 12, 1e-5, "silu");
        expect_close(out_f(&e, 1), want2, 12, 1e-5, "clip");
        if (fuse) {
            ck_assert_int_eq(live_nodes(g), 2);
            ck_assert_int_eq(g->nodes[0].epi.act, OCT_ACT_SILU);
            ck_assert_int_eq(g->nodes[3].epi.act, OCT_ACT_CLIP);
            ck_assert_str_eq(g->nodes[3].fused, "Clip");
        }
        exec_free(&e);
    }
    free(a);
    free(bm);
}
END_TEST

START_TEST(fuse_respects_graph_outputs) {
    /* The conv output is itself a graph output: folding the BN or the Relu would change it. */
    float *w = rand_buf(108), bnp[16] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    int y;
    oct_graph *g = conv_bn_graph(0, 1, w, bnp, &y);
    g_output(g, g->nodes[0].out[0]);
    octet_error err = {0};
    ck_assert_int_eq(infer_all(g, &err), 0);
    ck_assert_int_eq(oct_pass_fuse(g, &err), 0);
    ck_assert_int_eq(live_nodes(g), 3);
    ck_assert_ptr_null(g->nodes[0].fused);
    ck_assert_int_eq(g->nodes[0].epi.act, OCT_ACT_NONE);
    oct_graph_free(g);
    free(w);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_nn");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, conv_cases_match_direct);
    tcase_add_test(tc, conv_bad_shapes);
    tcase_add_test(tc, convtranspose_cases_match_scatter);
    tcase_add_test(tc, gemm_variants);
    tcase_add_test(tc, matmul_broadcasting);
    tcase_add_test(tc, matmul_bad_inner);
    tcase_add_test(tc, pools_match_reference);
    tcase_add_test(tc, maxpool_uint8_and_storage_order);
    tcase_add_test(tc, pool_same_upper_and_3d);
    tcase_add_test(tc, global_pools);
    tcase_add_test(tc, batchnorm_inference);
    tcase_add_test(tc, instancenorm_planes);
    tcase_add_test(tc, layernorm_axes);
    tcase_add_test(tc, fuse_conv_bn_relu);
    tcase_add_test(tc, fuse_conv_add_relu);
    tcase_add_test(tc, fuse_conv_bn_add_relu);
    tcase_add_test(tc, fuse_silu_and_clip);
    tcase_add_test(tc, fuse_respects_graph_outputs);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
