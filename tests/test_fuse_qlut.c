/* The int8 activation-table fusion (engine/passes/fuse_qlut.c): QLinearConv -> QLinearLut /
   QLinearSigmoid becomes one QLinearConv that maps its stored bytes through the table.
   - conv shapes of every non-depthwise strategy (1x1 GEMM on large and 7x7 planes, 3x3 stride-2
     im2col GEMM with groups, the direct path, batch 2) with SiLU, gated SiLU and Sigmoid tables
     fuse (one node planned) and give the bytes of the unfused pair (OCTET_NO_FUSE_QLUT=1, two
     nodes) bit for bit, at every ISA level, 1 and 2 threads;
   - a depthwise QLinearConv carrying a table (the attribute and input 9 written by hand; the pass
     leaves depthwise convs alone) gives the bytes of the pair through the row, blocked and
     per-channel kernels, and with a QLinearGlobalAveragePool after it fuses into the pool (the SE
     squeeze keeps the table), its two outputs those of the unfused conv and pool;
   - a conv output that is also a graph output, or that two nodes read, and a depthwise conv, do not
     fuse;
   - a malformed table input gets an error naming it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "kernels/kernels.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng_state = 777u;
static int rand_byte(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (int)(rng_state >> 24);
}

typedef struct {
    int64_t n, c, m, h, w, k, stride, pad, group;
    int s8;       /* int8 activations (else uint8) */
    int table;    /* 0: QLinearLut SiLU, 1: gated QLinearLut SiLU, 2: QLinearSigmoid */
} lut_case;

static int scalar_q(oct_graph *g, const char *name, octet_dtype t, int v) {
    const uint8_t b = (uint8_t)v;
    return test_graph_const(g, name, t, 0, NULL, &b);
}

/* The 9 QLinearConv inputs of case c (random int8 weights with zero point 0, per-channel scales,
   int32 bias), x a graph input. */
static void conv_inputs(oct_graph *g, const lut_case *c, int in[9]) {
    const octet_dtype t = c->s8 ? OCTET_INT8 : OCTET_UINT8;
    const int64_t xd[4] = {c->n, c->c, c->h, c->w}, wd[4] = {c->m, c->c / c->group, c->k, c->k};
    const int64_t nw = test_numel(4, wd);
    int8_t *w = malloc((size_t)nw);
    float *ws = malloc((size_t)c->m * sizeof *ws);
    int32_t *bias = malloc((size_t)c->m * sizeof *bias);
    ck_assert(w && ws && bias);
    for (int64_t i = 0; i < nw; i++) w[i] = (int8_t)(rand_byte() - 128);
    for (int64_t i = 0; i < c->m; i++) {
        ws[i] = 0.001f + 0.0001f * (float)(rand_byte() % 20);
        bias[i] = (rand_byte() - 128) * 40;
    }
    const float xs = 0.02f, ys = 0.08f;
    in[0] = test_graph_input(g, "x", t, 4, xd);
    in[1] = test_graph_const(g, "xs", OCTET_FLOAT, 0, NULL, &xs);
    in[2] = scalar_q(g, "xz", t, c->s8 ? -7 : 119);
    in[3] = test_graph_const(g, "w", OCTET_INT8, 4, wd, w);
    in[4] = test_graph_const(g, "ws", OCTET_FLOAT, 1, &c->m, ws);
    in[5] = scalar_q(g, "wz", OCTET_INT8, 0);
    in[6] = test_graph_const(g, "ys", OCTET_FLOAT, 0, NULL, &ys);
    in[7] = scalar_q(g, "yz", t, c->s8 ? 3 : 131);
    in[8] = test_graph_const(g, "B", OCTET_INT32, 1, &c->m, bias);
    free(w), free(ws), free(bias);
}

static void conv_attrs(oct_graph *g, int k, const lut_case *c) {
    test_attr_ints_fill(g, k, "group", 0, c->group);
    test_attr_ints_fill(g, k, "kernel_shape", 2, c->k);
    test_attr_ints_fill(g, k, "strides", 2, c->stride);
    test_attr_ints_fill(g, k, "pads", 4, c->pad);
}

/* The activation node of case c reading y (scale in[6], zero point in[7]); returns its output. */
static int table_node(oct_graph *g, const lut_case *c, const int in[9], int y) {
    const octet_dtype t = c->s8 ? OCTET_INT8 : OCTET_UINT8;
    const float zs = 0.05f, gs = 1.f / 255.f;
    const int zs_v = test_graph_const(g, "zs", OCTET_FLOAT, 0, NULL, &zs), zz = scalar_q(g, "zz", t, c->s8 ? -100 : 28);
    if (c->table == 2)
        return test_graph_node_out(g, "com.microsoft", "QLinearSigmoid", 5, (int[]){y, in[6], in[7], zs_v, zz});
    int k;
    if (c->table == 1) {
        const int gsv = test_graph_const(g, "gs", OCTET_FLOAT, 0, NULL, &gs), gz = scalar_q(g, "gz", t, c->s8 ? -128 : 0);
        k = test_graph_node(g, "octet", "QLinearLut", 7, (int[]){y, in[6], in[7], zs_v, zz, gsv, gz});
    } else {
        k = test_graph_node(g, "octet", "QLinearLut", 5, (int[]){y, in[6], in[7], zs_v, zz});
    }
    test_attr_string(g, k, "function", "SiLU");
    return g->nodes[k].out[0];
}

static void add_output(oct_graph *g, int v) {
    g->outputs = realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof(int));
    ck_assert(g->outputs != NULL);
    g->outputs[g->n_outputs++] = v;
}

/* x -> QLinearConv -> table -> z (the output); with conv_out_too, the conv's output is one too. */
static oct_graph *pair_graph(const lut_case *c, int conv_out_too) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->ms_opset = 1;
    g->name = strdup("qlut");
    int in[9];
    conv_inputs(g, c, in);
    const int k = test_graph_node(g, "", "QLinearConv", 9, in);
    conv_attrs(g, k, c);
    const int y = g->nodes[k].out[0];
    add_output(g, table_node(g, c, in, y));
    if (conv_out_too) add_output(g, y);
    return g;
}

/* Plans g (with the fusion off when no_fuse), checks the planned node count, runs it on x and
   returns output 0 (malloc'ed bytes). */
static uint8_t *run_graph(oct_graph *g, const lut_case *c, int no_fuse, int threads, int want_nodes, const uint8_t *x,
                          int64_t *n_out) {
    if (no_fuse) setenv("OCTET_NO_FUSE_QLUT", "1", 1);
    const octet_tensor in = {c->s8 ? OCTET_INT8 : OCTET_UINT8, 4, {c->n, c->c, c->h, c->w}, (void *)x};
    octet_tensor out[2];
    test_plan_run(g, threads, want_nodes, 1, &in, g->n_outputs, out);
    unsetenv("OCTET_NO_FUSE_QLUT");
    *n_out = test_numel(out[0].rank, out[0].dims);
    uint8_t *bytes = malloc((size_t)*n_out);
    ck_assert(bytes != NULL);
    memcpy(bytes, out[0].data, (size_t)*n_out);
    for (int o = 0; o < g->n_outputs; o++) octet_tensor_release(&out[o]);
    return bytes;
}

static uint8_t *random_input(const lut_case *c) {
    const int64_t n = c->n * c->c * c->h * c->w;
    uint8_t *x = malloc((size_t)n);
    ck_assert(x != NULL);
    for (int64_t i = 0; i < n; i++) x[i] = (uint8_t)rand_byte();
    return x;
}

/* Runs g fused at every ISA level and 1 and 2 threads against the unfused pair. */
static void check_fused_matches(oct_graph *g, const lut_case *c, int fused_nodes) {
    uint8_t *x = random_input(c);
    int64_t n_want, n_got;
    uint8_t *want = run_graph(g, c, 1, 1, 2, x, &n_want);
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        for (int threads = 1; threads <= 2; threads++) {
            uint8_t *got = run_graph(g, c, 0, threads, fused_nodes, x, &n_got);
            ck_assert_int_eq(n_got, n_want);
            for (int64_t i = 0; i < n_want; i++)
                ck_assert_msg(got[i] == want[i], "%s, %d threads: byte %lld is %d, the pair gives %d",
                              oct_isa_name((oct_isa)isa), threads, (long long)i, got[i], want[i]);
            free(got);
        }
    }
    test_default_isa();
    free(want);
    free(x);
}

static const lut_case FUSED_CASES[] = {
    {1, 24, 40, 28, 28, 1, 1, 0, 1, 0, 0},  /* 1x1 GEMM, uint8, SiLU table */
    {1, 64, 96, 7, 7, 1, 1, 0, 1, 1, 1},    /* 1x1 on a 7x7 plane (whole-plane items), int8, gated SiLU */
    {2, 8, 24, 15, 15, 3, 2, 1, 2, 0, 2},   /* 3x3 stride 2, groups, batch 2: im2col GEMM, Sigmoid */
    {1, 4, 8, 20, 20, 3, 1, 1, 1, 1, 0},    /* stride 1, few channels: the direct path */
    {1, 3, 16, 5, 5, 3, 1, 1, 1, 0, 1},     /* a tiny stem-like conv */
    {1, 16, 20, 12, 12, 1, 1, 0, 1, 1, 0},  /* 20 channels: whole and cut row blocks of the GEMM write-back */
};
enum { N_FUSED = sizeof FUSED_CASES / sizeof FUSED_CASES[0] };

START_TEST(conv_table_fuses_bit_exact) {
    const lut_case *c = &FUSED_CASES[_i];
    oct_graph *g = pair_graph(c, 0);
    check_fused_matches(g, c, 1);
    oct_graph_free(g);
}
END_TEST

/* A depthwise conv with the table attached by hand: the same bytes as conv then table. */
START_TEST(depthwise_with_table_matches_pair) {
    static const lut_case cases[] = {
        {1, 32, 32, 14, 14, 3, 1, 1, 32, 0, 0}, /* channel-blocked kernels */
        {1, 5, 5, 11, 9, 5, 2, 2, 5, 1, 1},     /* per-channel kernels, stride 2 */
        {1, 32, 32, 30, 30, 3, 1, 1, 32, 1, 2}, /* row kernels (VBMI), with the squeeze's sums */
        {1, 40, 40, 29, 31, 5, 2, 2, 40, 1, 1}, /* row kernels, 5x5 stride 2, a partial block of 16 */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const lut_case *c = &cases[ci];
        const uint32_t seed = rng_state; /* the conv alone below gets the pair's weights */
        oct_graph *pair = pair_graph(c, 0);
        uint8_t *x = random_input(c);
        int64_t n_want, n_got;
        uint8_t *want = run_graph(pair, c, 1, 1, 2, x, &n_want);
        /* the table the pair's activation computes: run it on every byte */
        uint8_t table[256];
        {
            oct_graph *tg = oct_graph_new();
            tg->opset = 13;
            tg->ms_opset = 1;
            tg->name = strdup("table");
            int in[9];
            conv_inputs(tg, c, in);
            const int64_t d[1] = {256};
            const octet_dtype t = c->s8 ? OCTET_INT8 : OCTET_UINT8;
            const int codes = test_graph_input(tg, "codes", t, 1, d);
            add_output(tg, table_node(tg, c, in, codes));
            tg->inputs[0] = codes; /* feed only the codes */
            tg->n_inputs = 1;
            uint8_t all[256];
            for (int b = 0; b < 256; b++) all[b] = (uint8_t)b;
            const octet_tensor tin = {t, 1, {256}, all};
            octet_tensor tout;
            test_plan_run(tg, 1, 1, 1, &tin, 1, &tout);
            memcpy(table, tout.data, 256);
            octet_tensor_release(&tout);
            oct_graph_free(tg);
        }
        /* the conv alone, with the table as its input 9 */
        oct_graph *g = oct_graph_new();
        g->opset = 13;
        g->ms_opset = 1;
        g->name = strdup("dw_table");
        int in[10];
        rng_state = seed;
        conv_inputs(g, c, in);
        const int64_t td[1] = {256};
        in[9] = test_graph_const(g, "table", OCTET_UINT8, 1, td, table);
        const int k = test_graph_node(g, "", "QLinearConv", 10, in);
        conv_attrs(g, k, c);
        test_attr_ints_fill(g, k, "octet_output_table", 0, 1);
        add_output(g, g->nodes[k].out[0]);
        for (int threads = 1; threads <= 2; threads++) {
            uint8_t *got = run_graph(g, c, 0, threads, 1, x, &n_got);
            ck_assert_int_eq(n_got, n_want);
            ck_assert_msg(memcmp(got, want, (size_t)n_want) == 0, "case %zu, %d threads: bytes differ", ci, threads);
            free(got);
        }
        /* the SE squeeze after it: fused into one pool node, or (OCTET_NO_FUSE_SE) the conv and the pool */
        const octet_dtype t = c->s8 ? OCTET_INT8 : OCTET_UINT8;
        const float ps = 0.1f; /* near the conv's own scale: pooled values do not saturate */
        const uint8_t pz = (uint8_t)(c->s8 ? 0 : 128);
        const int pin[5] = {g->nodes[k].out[0], in[6], in[7], test_graph_const(g, "ps", OCTET_FLOAT, 0, NULL, &ps),
                            test_graph_const(g, "pz", t, 0, NULL, &pz)};
        add_output(g, test_graph_node_out(g, "com.microsoft", "QLinearGlobalAveragePool", 5, pin));
        const octet_tensor xin = {t, 4, {c->n, c->c, c->h, c->w}, x};
        octet_tensor sep[2], fused[2];
        setenv("OCTET_NO_FUSE_SE", "1", 1);
        test_plan_run(g, 1, 2, 1, &xin, 2, sep);
        unsetenv("OCTET_NO_FUSE_SE");
        ck_assert_msg(memcmp(sep[0].data, want, (size_t)n_want) == 0, "case %zu: the unfused conv differs", ci);
        for (int threads = 1; threads <= 2; threads++) {
            test_plan_run(g, threads, 1, 1, &xin, 2, fused);
            for (int o = 0; o < 2; o++) {
                const int64_t n = test_numel(sep[o].rank, sep[o].dims);
                ck_assert_int_eq(n, test_numel(fused[o].rank, fused[o].dims));
                ck_assert_msg(memcmp(sep[o].data, fused[o].data, (size_t)n) == 0,
                              "case %zu, %d threads: output %d of the fused squeeze differs", ci, threads, o);
                octet_tensor_release(&fused[o]);
            }
        }
        octet_tensor_release(&sep[0]);
        octet_tensor_release(&sep[1]);
        free(want);
        free(x);
        oct_graph_free(g);
        oct_graph_free(pair);
    }
}
END_TEST

START_TEST(observed_conv_output_does_not_fuse) {
    const lut_case c = {1, 8, 16, 9, 9, 1, 1, 0, 1, 0, 0};
    /* the conv's output is a graph output as well */
    oct_graph *g = pair_graph(&c, 1);
    uint8_t *x = random_input(&c);
    int64_t n;
    free(run_graph(g, &c, 0, 1, 2, x, &n));
    oct_graph_free(g);
    /* two tables read the conv's output */
    g = oct_graph_new();
    g->opset = 13;
    g->ms_opset = 1;
    g->name = strdup("two_readers");
    int in[9];
    conv_inputs(g, &c, in);
    const int k = test_graph_node(g, "", "QLinearConv", 9, in);
    conv_attrs(g, k, &c);
    const int y = g->nodes[k].out[0];
    add_output(g, table_node(g, &c, in, y));
    add_output(g, table_node(g, &c, in, y));
    free(run_graph(g, &c, 0, 1, 3, x, &n));
    oct_graph_free(g);
    free(x);
    /* a depthwise conv */
    const lut_case d = {1, 16, 16, 9, 9, 3, 1, 1, 16, 0, 0};
    g = pair_graph(&d, 0);
    x = random_input(&d);
    free(run_graph(g, &d, 0, 1, 2, x, &n));
    oct_graph_free(g);
    free(x);
}
END_TEST

START_TEST(malformed_table_is_refused) {
    const lut_case c = {1, 8, 16, 9, 9, 1, 1, 0, 1, 0, 0};
    for (int variant = 0; variant < 2; variant++) {
        oct_graph *g = oct_graph_new();
        g->opset = 13;
        g->name = strdup("bad_table");
        int in[10];
        conv_inputs(g, &c, in);
        const int64_t td[1] = {255};
        uint8_t table[255] = {0};
        in[9] = test_graph_const(g, "table", OCTET_UINT8, 1, td, table);
        /* variant 0: a 255-byte table; variant 1: the attribute without the input */
        const int k = test_graph_node(g, "", "QLinearConv", variant ? 9 : 10, in);
        conv_attrs(g, k, &c);
        test_attr_ints_fill(g, k, "octet_output_table", 0, 1);
        add_output(g, g->nodes[k].out[0]);
        octet_model m = {.graph = g};
        octet_error err = {0};
        octet_session *s = octet_session_create(&m, NULL, &err);
        ck_assert(s == NULL);
        ck_assert_msg(strstr(err.msg, variant ? "octet_output_table = 1 but no table at input 9" : "output table 'table' must be uint8 [256]"), "%s", err.msg);
        oct_graph_free(g);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("fuse_qlut");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, conv_table_fuses_bit_exact, 0, N_FUSED);
    tcase_add_test(tc, depthwise_with_table_matches_pair);
    tcase_add_test(tc, observed_conv_output_does_not_fuse);
    tcase_add_test(tc, malformed_table_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
