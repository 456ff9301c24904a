/* The SE-squeeze fusion (engine/passes/fuse_se.c): depthwise Conv (+ activation) -> GlobalAveragePool
   becomes one node whose depthwise kernels sum each channel in their write-back.
   - SE-shaped graphs (x -> depthwise Conv -> act -> GlobalAveragePool -> Mul(y, s)) fuse (two
     nodes planned instead of three) and give the Conv output, the pooled means and the excite
     product of a double reference, at every ISA level, 1 and 2 threads, batch 1 and 2; with the
     band kernels (3x3, 5x5 stride 2, no bias, Relu/SiLU/none) and with the ref loop (dilation 2);
   - the same graphs planned with OCTET_NO_FUSE_SE=1 keep three nodes and agree;
   - what is not a depthwise squeeze does not fuse: a grouped (not depthwise) Conv, a Conv with a
     fused residual;
   - the planned graph plans again (the fused node resolves by its op type), and the calibration
     network of a model with an SE block (written out as ONNX by octet quantize) has the Conv and
     the GlobalAveragePool back as standard nodes, builds and runs, its pool values the means;
   - int8: depthwise QLinearConv -> QLinearGlobalAveragePool fuses and gives the bytes of the
     unfused pair bit for bit (uint8 and int8, band kernels and ref loop, 1 and 2 threads, every
     ISA level), the pooled bytes also against a direct computation;
   - the fp32 excite moved into a pointwise projection (Mul(y, s) -> 1x1 Conv becomes the Conv
     scaling its weights): either operand order, a scale per image or shared, bias, residual,
     against a double reference and the unfused plan (OCTET_NO_FUSE_SE=1), every ISA level, 1
     and 2 threads; small planes and wide projections keep the Mul; the calibration network gets
     the Mul back and computes the same;
   - the int8 excite, QLinearMul of a tensor by one value per plane (either operand), small planes
     (spread over the planes first) and large ones, bit for bit against the formula of
     qops_kernels.h, at every ISA level and 1 and 2 threads. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/calib_net.h"
#include "engine/model.h"
#include "engine/octet.h"
#include "kernels/kernels.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng_state = 5150u;
static float frand(float lo, float hi) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)((rng_state >> 8) & 0xffff) / 65536.f;
}

enum { ACT_NONE, ACT_RELU, ACT_SILU };

typedef struct {
    int64_t n, c, h, w, k, stride, pad, dil;
    int act, bias;
    int64_t group; /* 0: depthwise (group = c) */
    int residual;  /* Add(conv, x) after the conv: fused as the conv's residual */
} se_case;

static int64_t out_dim(const se_case *c, int64_t in) {
    return (in + 2 * c->pad - c->dil * (c->k - 1) - 1) / c->stride + 1;
}

/* x -> Conv -> [act] -> GlobalAveragePool -> s; outputs z = Mul(y, s) and s. w, b as given. */
static oct_graph *se_graph(const se_case *c, const float *w, const float *b) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->name = strdup("se");
    const int64_t xd[4] = {c->n, c->c, c->h, c->w};
    const int64_t group = c->group ? c->group : c->c;
    const int64_t wd[4] = {c->c, c->c / group, c->k, c->k};
    const int x = test_graph_input(g, "x", OCTET_FLOAT, 4, xd);
    const int wv = test_graph_const(g, "W", OCTET_FLOAT, 4, wd, w);
    const int bv = c->bias ? test_graph_const(g, "B", OCTET_FLOAT, 1, &c->c, b) : -1;
    const int conv = test_graph_node(g, "", "Conv", c->bias ? 3 : 2, (int[]){x, wv, bv});
    test_attr_ints_fill(g, conv, "group", 0, group);
    test_attr_ints_fill(g, conv, "kernel_shape", 2, c->k);
    test_attr_ints_fill(g, conv, "strides", 2, c->stride);
    test_attr_ints_fill(g, conv, "pads", 4, c->pad);
    test_attr_ints_fill(g, conv, "dilations", 2, c->dil);
    int y = g->nodes[conv].out[0];
    if (c->residual) y = test_graph_node_out(g, "", "Add", 2, (int[]){y, x});
    if (c->act == ACT_RELU) {
        y = test_graph_node_out(g, "", "Relu", 1, &y);
    } else if (c->act == ACT_SILU) {
        const int s = test_graph_node_out(g, "", "Sigmoid", 1, &y);
        y = test_graph_node_out(g, "", "Mul", 2, (int[]){y, s});
    }
    const int s = test_graph_node_out(g, "", "GlobalAveragePool", 1, &y);
    const int z = test_graph_node_out(g, "", "Mul", 2, (int[]){y, s});
    g->outputs = malloc(2 * sizeof(int));
    g->outputs[g->n_outputs++] = z;
    g->outputs[g->n_outputs++] = s;
    return g;
}

/* The conv output y, the means s and z = y * s in double. */
static void se_reference(const se_case *c, const float *x, const float *w, const float *b, double *y, double *s,
                         double *z) {
    const int64_t oh = out_dim(c, c->h), ow = out_dim(c, c->w), P = oh * ow;
    const int64_t group = c->group ? c->group : c->c, cg = c->c / group, mg = c->c / group;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t m = 0; m < c->c; m++) {
            double sum = 0.0;
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double v = c->bias ? b[m] : 0.0;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t ki = 0; ki < c->k; ki++)
                            for (int64_t kj = 0; kj < c->k; kj++) {
                                const int64_t hi = i * c->stride + ki * c->dil - c->pad;
                                const int64_t wi = j * c->stride + kj * c->dil - c->pad;
                                if (hi < 0 || hi >= c->h || wi < 0 || wi >= c->w) continue;
                                const int64_t ch = m / mg * cg + ci;
                                v += (double)x[((n * c->c + ch) * c->h + hi) * c->w + wi] *
                                     w[((m * cg + ci) * c->k + ki) * c->k + kj];
                            }
                    if (c->residual) v += x[((n * c->c + m) * c->h + i) * c->w + j];
                    if (c->act == ACT_RELU) v = v > 0.0 ? v : 0.0;
                    if (c->act == ACT_SILU) v = v / (1.0 + exp(-v));
                    y[(n * c->c + m) * P + i * ow + j] = v;
                    sum += v;
                }
            s[n * c->c + m] = sum / (double)P;
            for (int64_t p = 0; p < P; p++) z[(n * c->c + m) * P + p] = y[(n * c->c + m) * P + p] * s[n * c->c + m];
        }
}

/* Plans g (OCTET_NO_FUSE_SE as asked) at `threads`, checks the planned node count, runs x. */
static void run_se(oct_graph *g, const se_case *c, int no_fuse, int threads, int want_nodes, const float *x,
                   octet_tensor out[2]) {
    if (no_fuse) setenv("OCTET_NO_FUSE_SE", "1", 1);
    const octet_tensor in = {OCTET_FLOAT, 4, {c->n, c->c, c->h, c->w}, (void *)x};
    test_plan_run(g, threads, want_nodes, 1, &in, 2, out);
    unsetenv("OCTET_NO_FUSE_SE");
}

static const se_case FUSED_CASES[] = {
    {1, 8, 14, 14, 3, 1, 1, 1, ACT_SILU, 1, 0, 0}, /* band kernels, one band */
    {2, 5, 23, 19, 5, 2, 2, 1, ACT_RELU, 0, 0, 0}, /* stride 2, batch 2, no bias */
    {1, 3, 112, 40, 3, 1, 1, 1, ACT_NONE, 1, 0, 0}, /* several bands per channel */
    {1, 6, 7, 7, 3, 1, 2, 2, ACT_SILU, 1, 0, 0},   /* dilation: the ref loop */
    {1, 40, 9, 11, 3, 1, 1, 1, ACT_SILU, 1, 0, 0}, /* >= 16 channels: the channel-blocked kernels */
    {2, 48, 14, 14, 5, 2, 2, 1, ACT_RELU, 0, 0, 0}, /* blocked, stride 2, batch 2 */
};
enum { N_FUSED = sizeof FUSED_CASES / sizeof FUSED_CASES[0] };

static void check_close(const char *what, const se_case *c, const char *isa, int threads, const float *got,
                        const double *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 + 1e-4 * fabs(want[i]),
                      "%s (c=%lld k=%lld s=%lld act %d), %s, %d threads, [%lld]: %.9g, expected %.9g", what,
                      (long long)c->c, (long long)c->k, (long long)c->stride, c->act, isa, threads, (long long)i,
                      got[i], want[i]);
}

START_TEST(squeeze_fuses_and_matches_reference) {
    const se_case *c = &FUSED_CASES[_i];
    const int64_t nx = c->n * c->c * c->h * c->w, P = out_dim(c, c->h) * out_dim(c, c->w), ny = c->n * c->c * P;
    float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)(c->c * c->k * c->k));
    float b[64];
    double *y = malloc(sizeof(double) * (size_t)ny), *z = malloc(sizeof(double) * (size_t)ny), s[128];
    ck_assert(x && w && y && z && c->c <= 64 && c->n * c->c <= 128);
    for (int64_t i = 0; i < nx; i++) x[i] = frand(-1.f, 2.f);
    for (int64_t i = 0; i < c->c * c->k * c->k; i++) w[i] = frand(-0.5f, 0.6f);
    for (int i = 0; i < 64; i++) b[i] = frand(-0.3f, 0.3f);
    se_reference(c, x, w, b, y, s, z);
    oct_graph *g = se_graph(c, w, b);
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        for (int threads = 1; threads <= 2; threads++)
            for (int no_fuse = 0; no_fuse <= 1; no_fuse++) {
                octet_tensor out[2];
                run_se(g, c, no_fuse, threads, no_fuse ? 3 : 2, x, out);
                const char *name = no_fuse ? "unfused" : "fused";
                check_close(name, c, oct_isa_name((oct_isa)isa), threads, out[0].data, z, ny);
                check_close(name, c, oct_isa_name((oct_isa)isa), threads, out[1].data, s, c->n * c->c);
                ck_assert_int_eq(out[1].rank, 4);
                ck_assert(out[1].dims[2] == 1 && out[1].dims[3] == 1);
                octet_tensor_release(&out[0]);
                octet_tensor_release(&out[1]);
            }
    }
    test_default_isa();
    oct_graph_free(g);
    free(x), free(w), free(y), free(z);
}
END_TEST

/* A grouped conv (two channels per group) and a conv with a fused residual keep their pool. */
START_TEST(other_convs_do_not_fuse) {
    static const se_case cases[] = {
        {1, 4, 9, 9, 3, 1, 1, 1, ACT_SILU, 1, 2, 0},
        {1, 4, 9, 9, 3, 1, 1, 1, ACT_RELU, 1, 0, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const se_case *c = &cases[k];
        const int64_t nx = c->n * c->c * c->h * c->w, ny = nx; /* stride 1, same padding */
        const int64_t nw = c->c * (c->c / (c->group ? c->group : c->c)) * c->k * c->k;
        float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw), b[4];
        double *y = malloc(sizeof(double) * (size_t)ny), *z = malloc(sizeof(double) * (size_t)ny), s[4];
        for (int64_t i = 0; i < nx; i++) x[i] = frand(-1.f, 1.f);
        for (int64_t i = 0; i < nw; i++) w[i] = frand(-0.5f, 0.5f);
        for (int i = 0; i < 4; i++) b[i] = frand(-0.3f, 0.3f);
        se_reference(c, x, w, b, y, s, z);
        oct_graph *g = se_graph(c, w, b);
        octet_tensor out[2];
        run_se(g, c, 0, 1, 3, x, out); /* Conv(+epilogue), GlobalAveragePool, Mul */
        check_close("not fused", c, "default", 1, out[0].data, z, ny);
        check_close("not fused", c, "default", 1, out[1].data, s, c->c);
        octet_tensor_release(&out[0]);
        octet_tensor_release(&out[1]);
        oct_graph_free(g);
        free(x), free(w), free(y), free(z);
    }
}
END_TEST

typedef struct {
    int value, seen;
    float means[8];
} pool_watch;

static void observe_pool(void *user, int value, const octet_tensor *t) {
    pool_watch *pw = user;
    if (value != pw->value) return;
    pw->seen++;
    memcpy(pw->means, t->data, sizeof pw->means);
}

/* The fused node survives what re-infers cloned plans: planning the planned graph again, and the
   calibration network (which splits fused activations out of epilogues, not out of this node). */
START_TEST(fused_plan_plans_again_and_calibrates) {
    const se_case *c = &FUSED_CASES[0];
    const int64_t nx = c->n * c->c * c->h * c->w, ny = c->n * c->c * c->h * c->w;
    float *x = malloc(sizeof(float) * (size_t)nx), w[8 * 9], b[8];
    double *y = malloc(sizeof(double) * (size_t)ny), *z = malloc(sizeof(double) * (size_t)ny), s[8];
    for (int64_t i = 0; i < nx; i++) x[i] = frand(-1.f, 2.f);
    for (int i = 0; i < 72; i++) w[i] = frand(-0.5f, 0.5f);
    for (int i = 0; i < 8; i++) b[i] = frand(-0.3f, 0.3f);
    se_reference(c, x, w, b, y, s, z);
    oct_graph *g = se_graph(c, w, b);
    const octet_tensor in = {OCTET_FLOAT, 4, {c->n, c->c, c->h, c->w}, x};
    octet_error err = {0};
    oct_plan *p1 = oct_plan_build(g, NULL, NULL, 1, NULL, &err);
    ck_assert_msg(p1 != NULL, "%s", err.msg);
    int fused = 0;
    for (int k = 0; k < p1->n_exec; k++) {
        const oct_node *n = &p1->g->nodes[p1->exec[k]];
        if (strcmp(n->op_type, "GlobalAveragePool") == 0 && n->n_out == 2) fused++;
    }
    ck_assert_int_eq(fused, 1);
    oct_plan *p2 = oct_plan_build(p1->g, NULL, NULL, 1, NULL, &err);
    ck_assert_msg(p2 != NULL, "re-planning the fused graph: %s", err.msg);
    ck_assert_int_eq(p2->n_exec, p1->n_exec);
    oct_plan_free(p2);
    oct_plan_free(p1);

    oct_calib_net net;
    ck_assert_msg(oct_calib_net_build(&net, g, &in, &err) == 0, "%s", err.msg);
    /* the network is written out as a QDQ ONNX model: standard nodes only, the conv split back
       out under its own name with its SiLU as separate nodes again */
    int convs = 0, pools = 0;
    for (int k = 0; k < net.g->n_nodes; k++) {
        const oct_node *n = &net.g->nodes[k];
        if (n->dead) continue;
        if (strcmp(n->op_type, "GlobalAveragePool") == 0) {
            ck_assert(n->n_in == 1 && n->n_out == 1 && n->n_attr == 0);
            pools++;
        }
        if (strcmp(n->op_type, "Conv") == 0) {
            ck_assert_str_eq(n->name, "Conv");
            ck_assert(n->epi.act == OCT_ACT_NONE && n->n_out == 1);
            for (int a = 0; a < n->n_attr; a++) ck_assert(strncmp(n->attrs[a].name, "fused", 5) != 0);
            convs++;
        }
    }
    ck_assert(convs == 1 && pools == 1);
    pool_watch pw = {.value = g->outputs[1]};
    ck_assert_msg(oct_calib_net_run(&net, &in, 1, observe_pool, &pw, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pw.seen, 1);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(fabs(pw.means[i] - s[i]) <= 1e-5 + 1e-4 * fabs(s[i]), "calibration pool [%d]: %g vs %g", i,
                      (double)pw.means[i], s[i]);
    oct_calib_net_free(&net);
    oct_graph_free(g);
    free(x), free(y), free(z);
}
END_TEST


/* ---- int8: QLinearConv -> QLinearGlobalAveragePool ------------------------------------------ */

typedef struct {
    int64_t c, h, w, k, stride, pad, dil;
    int s8; /* int8 activations (else uint8); weights int8 */
} q_case;

static int q_scalar(oct_graph *g, const char *name, octet_dtype dt, int32_t v) {
    const uint8_t b = (uint8_t)v;
    return test_graph_const(g, name, dt, 0, NULL, &b);
}

/* x -> QLinearConv (depthwise, int32 bias) -> y -> QLinearGlobalAveragePool -> s; outputs y, s. */
static oct_graph *q_graph(const q_case *c, const int8_t *w, const int32_t *bias, const float *wscale) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->ms_opset = 1;
    g->name = strdup("qse");
    const octet_dtype t = c->s8 ? OCTET_INT8 : OCTET_UINT8;
    const int64_t xd[4] = {1, c->c, c->h, c->w}, wd[4] = {c->c, 1, c->k, c->k};
    const int x = test_graph_input(g, "x", t, 4, xd);
    const float xs = 0.02f, ys = 0.05f, ps = 0.01f;
    const int in[9] = {x, test_graph_const(g, "xs", OCTET_FLOAT, 0, NULL, &xs), q_scalar(g, "xz", t, c->s8 ? -3 : 121),
                       test_graph_const(g, "w", OCTET_INT8, 4, wd, w),
                       test_graph_const(g, "ws", OCTET_FLOAT, 1, &c->c, wscale), q_scalar(g, "wz", OCTET_INT8, 0),
                       test_graph_const(g, "ys", OCTET_FLOAT, 0, NULL, &ys), q_scalar(g, "yz", t, c->s8 ? 5 : 130),
                       test_graph_const(g, "B", OCTET_INT32, 1, &c->c, bias)};
    const int conv = test_graph_node(g, "", "QLinearConv", 9, in);
    test_attr_ints_fill(g, conv, "group", 0, c->c);
    test_attr_ints_fill(g, conv, "kernel_shape", 2, c->k);
    test_attr_ints_fill(g, conv, "strides", 2, c->stride);
    test_attr_ints_fill(g, conv, "pads", 4, c->pad);
    test_attr_ints_fill(g, conv, "dilations", 2, c->dil);
    const int y = g->nodes[conv].out[0];
    const int pin[5] = {y, in[6], in[7], test_graph_const(g, "ps", OCTET_FLOAT, 0, NULL, &ps),
                        q_scalar(g, "pz", t, c->s8 ? -10 : 100)};
    const int pool = test_graph_node(g, "com.microsoft", "QLinearGlobalAveragePool", 5, pin);
    g->outputs = malloc(2 * sizeof(int));
    g->outputs[g->n_outputs++] = y;
    g->outputs[g->n_outputs++] = g->nodes[pool].out[0];
    return g;
}

static void run_q(oct_graph *g, const q_case *c, int no_fuse, int threads, const void *x, octet_tensor out[2]) {
    if (no_fuse) setenv("OCTET_NO_FUSE_SE", "1", 1);
    const octet_tensor in = {c->s8 ? OCTET_INT8 : OCTET_UINT8, 4, {1, c->c, c->h, c->w}, (void *)x};
    test_plan_run(g, threads, no_fuse ? 2 : 1, 1, &in, 2, out);
    unsetenv("OCTET_NO_FUSE_SE");
}

static const q_case Q_CASES[] = {
    {6, 14, 14, 3, 1, 1, 1, 0}, /* uint8, band kernels */
    {5, 23, 19, 5, 2, 2, 1, 1}, /* int8, stride 2 */
    {4, 9, 9, 3, 1, 2, 2, 0},   /* dilation: the ref loop */
    {40, 9, 11, 3, 1, 1, 1, 1}, /* int8, >= 16 channels: the channel-blocked kernels */
    {45, 14, 14, 5, 2, 2, 1, 0}, /* uint8, blocked with a partial block, stride 2 */
};
enum { N_Q = sizeof Q_CASES / sizeof Q_CASES[0] };

/* ---- the excite moved into the projection ---------------------------------------------------- */

typedef struct {
    int64_t n, c, h, w, m;
    int scale_first, scale_per_image, bias, residual;
    int fuses; /* expected: the Mul is taken into the Conv */
} excite_case;

/* z = Conv1x1(Mul(y, s)) (+ r), outputs z; y, s (and r) graph inputs. */
static oct_graph *excite_graph(const excite_case *c, const float *w, const float *b) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->name = strdup("excite");
    const int64_t yd[4] = {c->n, c->c, c->h, c->w}, sd[4] = {c->scale_per_image ? c->n : 1, c->c, 1, 1};
    const int64_t wd[4] = {c->m, c->c, 1, 1}, rd[4] = {c->n, c->m, c->h, c->w};
    const int y = test_graph_input(g, "y", OCTET_FLOAT, 4, yd), s = test_graph_input(g, "s", OCTET_FLOAT, 4, sd);
    const int r = c->residual ? test_graph_input(g, "r", OCTET_FLOAT, 4, rd) : -1;
    const int wv = test_graph_const(g, "W", OCTET_FLOAT, 4, wd, w);
    const int bv = c->bias ? test_graph_const(g, "B", OCTET_FLOAT, 1, &c->m, b) : -1;
    const int prod = test_graph_node_out(g, "", "Mul", 2, c->scale_first ? (int[]){s, y} : (int[]){y, s});
    int z = test_graph_node_out(g, "", "Conv", c->bias ? 3 : 2, (int[]){prod, wv, bv});
    if (c->residual) z = test_graph_node_out(g, "", "Add", 2, (int[]){z, r});
    g->outputs = malloc(sizeof(int));
    g->outputs[g->n_outputs++] = z;
    return g;
}

static const excite_case EXCITE_CASES[] = {
    {1, 32, 12, 12, 16, 1, 0, 1, 0, 1},  /* 144 pixels, the scale first */
    {2, 24, 11, 13, 40, 0, 1, 0, 1, 1},  /* batch 2, a scale per image, no bias, a residual */
    {2, 20, 16, 9, 24, 1, 0, 1, 1, 1},   /* batch 2 sharing one scale */
    {1, 16, 10, 10, 8, 0, 0, 1, 0, 0},   /* 100 pixels: the Mul stays */
    {1, 16, 11, 11, 130, 0, 0, 1, 0, 0}, /* more output channels than pixels: the Mul stays */
};
enum { N_EXCITE = sizeof EXCITE_CASES / sizeof EXCITE_CASES[0] };

START_TEST(excite_moves_into_projection) {
    const excite_case *c = &EXCITE_CASES[_i];
    const int64_t P = c->h * c->w, ny = c->n * c->c * P, nz = c->n * c->m * P, ns = (c->scale_per_image ? c->n : 1) * c->c;
    float *y = malloc(sizeof(float) * (size_t)ny), *r = malloc(sizeof(float) * (size_t)nz);
    float *w = malloc(sizeof(float) * (size_t)(c->m * c->c)), *b = malloc(sizeof(float) * (size_t)c->m);
    float *sc = malloc(sizeof(float) * (size_t)ns);
    double *want = malloc(sizeof(double) * (size_t)nz);
    for (int64_t i = 0; i < ny; i++) y[i] = frand(-1.f, 2.f);
    for (int64_t i = 0; i < nz; i++) r[i] = frand(-1.f, 1.f);
    for (int64_t i = 0; i < c->m * c->c; i++) w[i] = frand(-0.5f, 0.5f);
    for (int64_t i = 0; i < c->m; i++) b[i] = frand(-0.3f, 0.3f);
    for (int64_t i = 0; i < ns; i++) sc[i] = frand(0.f, 1.f);
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t o = 0; o < c->m; o++)
            for (int64_t p = 0; p < P; p++) {
                double v = c->bias ? b[o] : 0.0;
                for (int64_t k = 0; k < c->c; k++)
                    v += (double)w[o * c->c + k] * y[(n * c->c + k) * P + p] * sc[(c->scale_per_image ? n : 0) * c->c + k];
                want[(n * c->m + o) * P + p] = v + (c->residual ? r[(n * c->m + o) * P + p] : 0.0);
            }
    oct_graph *g = excite_graph(c, w, b);
    const octet_tensor in[3] = {{OCTET_FLOAT, 4, {c->n, c->c, c->h, c->w}, y},
                                {OCTET_FLOAT, 4, {c->scale_per_image ? c->n : 1, c->c, 1, 1}, sc},
                                {OCTET_FLOAT, 4, {c->n, c->m, c->h, c->w}, r}};
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        for (int threads = 1; threads <= 2; threads++)
            for (int no_fuse = 0; no_fuse <= 1; no_fuse++) {
                if (no_fuse) setenv("OCTET_NO_FUSE_SE", "1", 1);
                octet_tensor out;
                test_plan_run(g, threads, c->fuses && !no_fuse ? 1 : 2, c->residual ? 3 : 2, in, 1, &out);
                unsetenv("OCTET_NO_FUSE_SE");
                const float *got = out.data;
                for (int64_t i = 0; i < nz; i++)
                    ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 + 1e-4 * fabs(want[i]),
                                  "excite case %d (%s), %s, %d threads, [%lld]: %.9g, expected %.9g", _i,
                                  no_fuse ? "unfused" : "fused", oct_isa_name((oct_isa)isa), threads, (long long)i,
                                  got[i], want[i]);
                octet_tensor_release(&out);
            }
    }
    test_default_isa();
    /* the calibration network gets the Mul back, under its name, and the Conv reading it */
    if (c->fuses) {
        octet_error err = {0};
        oct_calib_net net;
        ck_assert_msg(oct_calib_net_build(&net, g, in, &err) == 0, "%s", err.msg);
        int muls = 0, convs = 0;
        for (int k = 0; k < net.g->n_nodes; k++) {
            const oct_node *n = &net.g->nodes[k];
            if (n->dead) continue;
            if (strcmp(n->op_type, "Mul") == 0) {
                ck_assert_str_eq(n->name, "Mul");
                ck_assert_int_eq(net.g->values[n->in[c->scale_first ? 0 : 1]].dims[2], 1);
                muls++;
            }
            if (strcmp(n->op_type, "Conv") == 0) {
                ck_assert(n->n_in == (c->bias ? 3 : 2));
                ck_assert(net.g->values[n->in[0]].producer >= 0 &&
                          strcmp(net.g->nodes[net.g->values[n->in[0]].producer].op_type, "Mul") == 0);
                for (int a = 0; a < n->n_attr; a++) ck_assert(strncmp(n->attrs[a].name, "octet_excite", 12) != 0);
                convs++;
            }
        }
        ck_assert(muls == 1 && convs == 1);
        octet_tensor got;
        ck_assert_msg(oct_calib_net_run(&net, in, 1, NULL, NULL, &got, &err) == 0, "%s", err.msg);
        for (int64_t i = 0; i < nz; i++)
            ck_assert_msg(fabs(((float *)got.data)[i] - want[i]) <= 1e-5 + 1e-4 * fabs(want[i]),
                          "calibration network [%lld]: %g vs %g", (long long)i, ((float *)got.data)[i], want[i]);
        octet_tensor_release(&got);
        oct_calib_net_free(&net);
    }
    oct_graph_free(g);
    free(y), free(r), free(w), free(b), free(sc), free(want);
}
END_TEST

START_TEST(int8_squeeze_fuses_bit_exact) {
    const q_case *c = &Q_CASES[_i];
    const int64_t nx = c->c * c->h * c->w;
    uint8_t *x = malloc((size_t)nx);
    int8_t w[64 * 25];
    int32_t bias[64];
    float wscale[64];
    ck_assert(x && c->c <= 64 && c->k * c->k <= 25);
    for (int64_t i = 0; i < nx; i++) x[i] = (uint8_t)(frand(0.f, 256.f));
    for (int i = 0; i < c->c * c->k * c->k; i++) w[i] = (int8_t)frand(-127.f, 127.f);
    for (int i = 0; i < c->c; i++) {
        bias[i] = (int32_t)frand(-2000.f, 2000.f);
        wscale[i] = frand(0.002f, 0.01f);
    }
    oct_graph *g = q_graph(c, w, bias, wscale);
    octet_tensor want[2];
    run_q(g, c, 1, 1, x, want);
    const int64_t P = want[0].dims[2] * want[0].dims[3];
    /* the unfused pool itself, from its definition */
    for (int64_t ch = 0; ch < c->c; ch++) {
        const uint8_t *yc = (const uint8_t *)want[0].data + ch * P;
        int64_t sum = 0;
        for (int64_t i = 0; i < P; i++) sum += c->s8 ? (int64_t)(int8_t)yc[i] : (int64_t)yc[i];
        const int32_t yz = c->s8 ? 5 : 130, pz = c->s8 ? -10 : 100;
        double v = nearbyint((double)(sum - P * yz) / (double)P * ((double)0.05f / (double)0.01f)) + pz;
        v = v < (c->s8 ? -128 : 0) ? (c->s8 ? -128 : 0) : v > (c->s8 ? 127 : 255) ? (c->s8 ? 127 : 255) : v;
        const int32_t got = c->s8 ? ((const int8_t *)want[1].data)[ch] : ((const uint8_t *)want[1].data)[ch];
        ck_assert_msg(got == (int32_t)v, "unfused pool [%lld]: %d vs %g", (long long)ch, got, v);
    }
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        for (int threads = 1; threads <= 2; threads++) {
            octet_tensor got[2];
            run_q(g, c, 0, threads, x, got);
            for (int o = 0; o < 2; o++) {
                const int64_t n = test_numel(got[o].rank, got[o].dims);
                ck_assert_int_eq(n, test_numel(want[o].rank, want[o].dims));
                ck_assert_msg(memcmp(got[o].data, want[o].data, (size_t)n) == 0, "%s, %d threads: output %d differs",
                              oct_isa_name((oct_isa)isa), threads, o);
                octet_tensor_release(&got[o]);
            }
        }
    }
    test_default_isa();
    octet_tensor_release(&want[0]);
    octet_tensor_release(&want[1]);
    oct_graph_free(g);
    free(x);
}
END_TEST

/* ---- int8 excite: QLinearMul by one value per plane ----------------------------------------- */

START_TEST(int8_excite_mul_bit_exact) {
    /* planes of 7x7 (spread), 1x3 (spread, the per-plane operand first), 9x9 (the walker) */
    static const int64_t shapes[][4] = {{1, 24, 7, 7}, {2, 5, 1, 3}, {1, 6, 9, 9}};
    for (int sh = 0; sh < 3; sh++)
        for (int s8 = 0; s8 <= 1; s8++) {
            const int64_t *full = shapes[sh], per[4] = {full[0], full[1], 1, 1};
            const int per_first = sh == 1; /* A is the per-plane operand */
            const octet_dtype t = s8 ? OCTET_INT8 : OCTET_UINT8;
            const int64_t n = test_numel(4, full), planes = full[0] * full[1], plane = n / planes;
            uint8_t *x = malloc((size_t)n), sc[32], *want = malloc((size_t)n);
            ck_assert(x && want && planes <= 32);
            for (int64_t i = 0; i < n; i++) x[i] = (uint8_t)frand(0.f, 256.f);
            for (int64_t i = 0; i < planes; i++) sc[i] = (uint8_t)frand(0.f, 256.f);
            const float xs = 0.03f, ss = 0.004f, ys = 0.02f;
            const int32_t xz = s8 ? 7 : 120, sz = s8 ? -100 : 3, yz = s8 ? -4 : 128;
            const int32_t qmin = s8 ? -128 : 0, qmax = s8 ? 127 : 255;
            /* qops_kernels.h: (float)((a - za) * (b - zb)) * (sa * sb / sc), clamped, ties to even */
            const float ma = per_first ? ss * xs / ys : xs * ss / ys;
            for (int64_t i = 0; i < n; i++) {
                const int32_t xv = s8 ? (int8_t)x[i] : x[i], sv = s8 ? (int8_t)sc[i / plane] : sc[i / plane];
                float v = (float)((xv - xz) * (sv - sz)) * ma;
                v = v < (float)(qmin - yz) ? (float)(qmin - yz) : v > (float)(qmax - yz) ? (float)(qmax - yz) : v;
                want[i] = (uint8_t)((int32_t)rintf(v) + yz);
            }
            oct_graph *g = oct_graph_new();
            g->opset = 13;
            g->ms_opset = 1;
            g->name = strdup("excite");
            const int xv = test_graph_input(g, "x", t, 4, full), sv = test_graph_input(g, "s", t, 4, per);
            const int xq[2] = {test_graph_const(g, "xs", OCTET_FLOAT, 0, NULL, &xs), q_scalar(g, "xz", t, xz)};
            const int sq[2] = {test_graph_const(g, "ss", OCTET_FLOAT, 0, NULL, &ss), q_scalar(g, "sz", t, sz)};
            const int yq[2] = {test_graph_const(g, "ys", OCTET_FLOAT, 0, NULL, &ys), q_scalar(g, "yz", t, yz)};
            const int in[8] = {per_first ? sv : xv, per_first ? sq[0] : xq[0], per_first ? sq[1] : xq[1],
                               per_first ? xv : sv, per_first ? xq[0] : sq[0], per_first ? xq[1] : sq[1],
                               yq[0], yq[1]};
            const int mul = test_graph_node(g, "com.microsoft", "QLinearMul", 8, in);
            g->outputs = malloc(sizeof(int));
            g->outputs[g->n_outputs++] = g->nodes[mul].out[0];
            const octet_tensor ins[2] = {{t, 4, {full[0], full[1], full[2], full[3]}, x},
                                         {t, 4, {per[0], per[1], 1, 1}, sc}};
            for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
                if (!oct_isa_supported((oct_isa)isa)) continue;
                test_use_isa((oct_isa)isa);
                for (int threads = 1; threads <= 2; threads++) {
                    octet_tensor y;
                    test_plan_run(g, threads, -1, 2, ins, 1, &y);
                    for (int64_t i = 0; i < n; i++)
                        ck_assert_msg(((uint8_t *)y.data)[i] == want[i], "shape %d s8 %d %s %d threads [%lld]: %d vs %d",
                                      sh, s8, oct_isa_name((oct_isa)isa), threads, (long long)i, ((uint8_t *)y.data)[i],
                                      want[i]);
                    octet_tensor_release(&y);
                }
            }
            test_default_isa();
            oct_graph_free(g);
            free(x), free(want);
        }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("fuse_se");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, squeeze_fuses_and_matches_reference, 0, N_FUSED);
    tcase_add_test(tc, other_convs_do_not_fuse);
    tcase_add_test(tc, fused_plan_plans_again_and_calibrates);
    tcase_add_loop_test(tc, excite_moves_into_projection, 0, N_EXCITE);
    tcase_add_loop_test(tc, int8_squeeze_fuses_bit_exact, 0, N_Q);
    tcase_add_test(tc, int8_excite_mul_bit_exact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
