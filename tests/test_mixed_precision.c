/* Automatic mixed precision (`octet quantize --target-drop --val`): the ranking by SQNR loss, the
   fp32 closure of a layer, and the whole search on a small model built here whose all-int8
   version genuinely fails the gate: two of its tensors carry one outlier channel (a bias of 300)
   beside channels of magnitude ~0.5, so per-tensor 8-bit rounding (step ~1.2) wipes out the
   channels the next layer reads. Keeping those tensors in float recovers the fp32 predictions;
   keeping only one of them does not, which makes the limit testable too. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "loader/loader.h"
#include "test_npz.h"
#include "test_session.h"
#include "test_util.h"

/* The command and its helpers are compiled in, so the test drives quantize_main directly. */
#include "tools/cli_util.c"
#include "tools/cmd_quantize.c"
#include "tools/evaluate.c"
#include "tools/metrics.c"
#include "tools/mixed_precision.c"

#define WIDTH 8
#define N_IN 4
#define N_LAYERS 6 /* A..F */
#define N_SAMPLES 240

static uint64_t rng;
static double uniform(void) { /* in (-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng >> 11) + 0.5) / 4503599627370496.0 - 1.0;
}

typedef struct {
    int in, out;
    float w[WIDTH * WIDTH], b[WIDTH];
} dense;

/* Layers A..F: x[4] -> 8 -> 8 (B: outlier) -> 8 -> 8 (D: outlier) -> 8 -> 2 logits. An outlier
   channel 0 is ignored by the next layer (its weights from channel 0 are zero). */
static void make_layers(dense *L) {
    rng = 2026;
    const int ins[N_LAYERS] = {N_IN, WIDTH, WIDTH, WIDTH, WIDTH, WIDTH};
    const int outs[N_LAYERS] = {WIDTH, WIDTH, WIDTH, WIDTH, WIDTH, 2};
    for (int l = 0; l < N_LAYERS; l++) {
        L[l].in = ins[l];
        L[l].out = outs[l];
        const bool outlier = l == 1 || l == 3, after_outlier = l == 2 || l == 4;
        for (int i = 0; i < L[l].in; i++)
            for (int o = 0; o < L[l].out; o++)
                L[l].w[i * L[l].out + o] = after_outlier && i == 0 ? 0.f
                                           : outlier && o == 0     ? 0.01f * (float)uniform()
                                                                   : (float)(uniform() / sqrt((double)L[l].in));
        for (int o = 0; o < L[l].out; o++) L[l].b[o] = outlier && o == 0 ? 300.f : 0.1f * (float)uniform();
    }
}

static const char *const LAYER_NAMES[N_LAYERS] = {"A", "B", "C", "D", "E", "F"};

static void forward(const dense *L, const float *x, double *logits);

static int by_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Shifts the class-1 bias so that the two classes are about equally frequent. */
static void balance(dense *L) {
    enum { M = 401 };
    double d[M];
    rng = 99;
    for (int i = 0; i < M; i++) {
        float s[N_IN];
        for (int j = 0; j < N_IN; j++) s[j] = (float)(2 * uniform());
        double l[2];
        forward(L, s, l);
        d[i] = l[1] - l[0];
    }
    qsort(d, M, sizeof *d, by_double);
    L[N_LAYERS - 1].b[1] -= (float)d[M / 2];
}

/* The model as ONNX: Gemm nodes (B stored [in, out], transB 0), input x [1, 4]. */
static char *write_model(const dense *L) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->name = strdup("mixed_precision_test");
    int v = test_graph_input(g, "x", OCTET_FLOAT, 2, (const int64_t[]){1, N_IN});
    for (int l = 0; l < N_LAYERS; l++) {
        char name[32];
        snprintf(name, sizeof name, "W%s", LAYER_NAMES[l]);
        const int w = test_graph_const(g, name, OCTET_FLOAT, 2, (const int64_t[]){L[l].in, L[l].out}, L[l].w);
        snprintf(name, sizeof name, "b%s", LAYER_NAMES[l]);
        const int b = test_graph_const(g, name, OCTET_FLOAT, 1, (const int64_t[]){L[l].out}, L[l].b);
        const int k = oct_graph_add_node(g, LAYER_NAMES[l], "Gemm", "", 3, 1, NULL);
        snprintf(name, sizeof name, "%s_out", LAYER_NAMES[l]);
        const int y = oct_graph_add_value(g, l + 1 < N_LAYERS ? name : "logits", NULL);
        g->nodes[k].in[0] = v, g->nodes[k].in[1] = w, g->nodes[k].in[2] = b;
        g->nodes[k].out[0] = y;
        v = y;
    }
    test_push_int(&g->outputs, &g->n_outputs, v);
    g->values[v].dtype = OCTET_FLOAT;
    char *path = test_write_temp("", 0, ".onnx");
    octet_error err = {0};
    ck_assert_msg(oct_onnx_write(g, path, &err) == 0, "%s", err.msg);
    oct_graph_free(g);
    return path;
}

static void forward(const dense *L, const float *x, double *logits) {
    double a[WIDTH], b[WIDTH];
    for (int i = 0; i < N_IN; i++) a[i] = x[i];
    for (int l = 0; l < N_LAYERS; l++) {
        for (int o = 0; o < L[l].out; o++) {
            b[o] = L[l].b[o];
            for (int i = 0; i < L[l].in; i++) b[o] += a[i] * L[l].w[i * L[l].out + o];
        }
        memcpy(a, b, sizeof a);
    }
    logits[0] = a[0], logits[1] = a[1];
}

/* Samples whose fp32 logits are at least `margin` apart, labelled with the fp32 argmax: the fp32
   model is right on every one, and small int8 noise cannot flip them. */
static char *write_data(const dense *L, uint64_t seed, int n) {
    static float x[N_SAMPLES * N_IN];
    static int64_t y[N_SAMPLES];
    ck_assert_int_le(n, N_SAMPLES);
    rng = seed;
    int count = 0, c1 = 0;
    while (count < n) {
        float s[N_IN];
        for (int i = 0; i < N_IN; i++) s[i] = (float)(2 * uniform());
        double l[2];
        forward(L, s, l);
        if (fabs(l[0] - l[1]) < 0.05) continue;
        memcpy(&x[count * N_IN], s, sizeof s);
        y[count] = l[1] > l[0];
        c1 += (int)y[count++];
    }
    ck_assert_msg(c1 > n / 5 && c1 < 4 * n / 5, "unbalanced labels: %d of %d are class 1", c1, n);
    npy_member m[2] = {{"x", "<f4", 2, {n, N_IN}, x, (size_t)n * N_IN * sizeof(float)},
                       {"y", "<i8", 1, {n}, y, (size_t)n * sizeof(int64_t)}};
    return write_npz(m, 2);
}

/* Runs `octet quantize ARGS...` in-process; returns the exit code and the stdout text. */
static int run_quantize(char **args, int n, char *out, size_t cap) {
    char *argv[32];
    argv[0] = "quantize";
    ck_assert_int_lt(n, 31);
    for (int i = 0; i < n; i++) argv[i + 1] = args[i];
    char *capture = test_write_temp("", 0, ".txt");
    fflush(stdout);
    int saved = dup(1), fd = open(capture, O_WRONLY | O_TRUNC);
    dup2(fd, 1);
    close(fd);
    int rc = cli_cmd_quantize.main(n + 1, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(capture, "rb");
    size_t got = fread(out, 1, cap - 1, f);
    out[got] = '\0';
    fclose(f);
    unlink(capture);
    free(capture);
    return rc;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

typedef struct {
    dense layers[N_LAYERS];
    char *model, *calib, *val, *out, *report;
} fixture;

static void setup(fixture *t) {
    make_layers(t->layers);
    balance(t->layers);
    t->model = write_model(t->layers);
    t->calib = write_data(t->layers, 7, 64);
    t->val = write_data(t->layers, 11, 200);
    t->out = test_write_temp("", 0, ".onnx");
    t->report = test_write_temp("", 0, ".json");
    unlink(t->out);
}

static void teardown(fixture *t) {
    const char *paths[] = {t->model, t->calib, t->val, t->out, t->report};
    for (int i = 0; i < 5; i++) unlink(paths[i]);
    free(t->model), free(t->calib), free(t->val), free(t->out), free(t->report);
}

/* The gate of `octet validate`, run by the library both commands share. */
static oct_gate_result validate(const char *fp32, const char *int8, const char *data, double max_drop) {
    octet_error err = {0};
    oct_preprocess pp = {0};
    oct_dataset *ds = oct_dataset_open(data, &pp, &err);
    ck_assert_msg(ds != NULL, "%s", err.msg);
    oct_eval_model m[2];
    oct_eval e[2];
    const char *paths[2] = {fp32, int8};
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(oct_eval_model_open(&m[i], paths[i], 8, 1, &err) == 0, "%s", err.msg);
        ck_assert_msg(oct_eval_run(&m[i], ds, oct_dataset_count(ds), 8, NULL, &e[i], &err) == 0, "%s", err.msg);
    }
    oct_gate_result g;
    ck_assert_int_eq(oct_eval_gate(&e[0], &e[1], max_drop, 0.01, &g, &err), 0);
    ck_assert_msg(oct_eval_headline(&e[0]) == 100.0, "fp32 accuracy %g on its own labels", oct_eval_headline(&e[0]));
    for (int i = 0; i < 2; i++) {
        oct_eval_free(&e[i]);
        oct_eval_model_close(&m[i]);
    }
    oct_dataset_free(ds);
    return g;
}

START_TEST(int8_fails_and_mixed_precision_recovers) {
    fixture t;
    setup(&t);
    static char out[1 << 16];
    /* The premise: plain int8 fails the gate on this model. */
    char *plain[] = {t.model, "--calib", t.calib, "-o", t.out};
    ck_assert_int_eq(run_quantize(plain, 5, out, sizeof out), 0);
    oct_gate_result g = validate(t.model, t.out, t.val, 1.0);
    ck_assert_msg(!g.approved && g.worst_drop > 10, "all-int8 worst drop %g: the model does not test anything",
                  g.worst_drop);
    unlink(t.out);

    char *args[] = {t.model, "--calib", t.calib, "-o", t.out, "--target-drop", "1", "--val", t.val,
                    "--report", t.report, "--threads", "1"};
    int rc = run_quantize(args, 13, out, sizeof out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "the int8 model fails the gate"), "%s", out);
    ck_assert_msg(strstr(out, "kept in fp32: 2 layers"), "%s", out);
    ck_assert_msg(strstr(out, "\nAPPROVED\n"), "%s", out);
    /* Layers E and C show the loss (they read the rounded tensors; E loses more); A stays int8. */
    const char *json = read_text(t.report);
    ck_assert_msg(strstr(json, "\"approved\": true"), "%s", json);
    ck_assert_msg(strstr(json, "\"fp32_layers\": [{\"node\": \"E\""), "%s", json);
    ck_assert_msg(strstr(json, "}, {\"node\": \"C\""), "%s", json);
    ck_assert_msg(strstr(json, "\"fp32_nodes\": [\"D\", \"E\", \"F\", \"B\", \"C\"]"), "%s", json);
    ck_assert_msg(strstr(json, "{\"fp32_layers\": 1, ") && strstr(json, "{\"fp32_layers\": 2, "), "%s", json);
    ck_assert_msg(strstr(json, "\"speed\": {\"images\": 8, \"batch\": 1, \"fp32_ms\": "), "%s", json);

    /* What was written passes `octet validate`'s gate, and A really runs int8 in it. */
    g = validate(t.model, t.out, t.val, 1.0);
    ck_assert_msg(g.approved, "written model: worst drop %g", g.worst_drop);
    octet_error err = {0};
    octet_model *m = octet_model_load(t.out, &err);
    ck_assert_msg(m != NULL && oct_model_keep_weights(m, &err) == 0, "%s", err.msg); /* graph read directly */
    oct_plan *p = oct_plan_build(m->graph, &(oct_shape){.rank = 2, .dims = {1, N_IN}}, NULL, 1, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    int int8_gemms = 0, fp32_gemms = 0;
    for (int k = 0; k < p->n_exec; k++) {
        const oct_node *n = &p->g->nodes[p->exec[k]];
        if (strcmp(n->name, "A") == 0) ck_assert_str_eq(oct_node_precision(p->g, n), "int8");
        if (strstr(n->op_type, "Gemm") || strstr(n->op_type, "MatMul"))
            strcmp(oct_node_precision(p->g, n), "int8") == 0 ? int8_gemms++ : fp32_gemms++;
    }
    ck_assert_int_eq(fp32_gemms, 5);
    ck_assert_int_eq(int8_gemms, 1);
    oct_plan_free(p);
    octet_model_free(m);
    teardown(&t);
}
END_TEST

START_TEST(limit_reached_writes_nothing) {
    fixture t;
    setup(&t);
    static char out[1 << 16];
    char *args[] = {t.model, "--calib", t.calib, "-o", t.out, "--target-drop", "1", "--val", t.val,
                    "--max-fp32-layers", "1", "--report", t.report};
    int rc = run_quantize(args, 13, out, sizeof out);
    ck_assert_msg(rc == 3, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "the gate still fails with 1 layers in fp32 (--max-fp32-layers 1): no model written"),
                  "%s", out);
    ck_assert_msg(strstr(out, "\nREJECTED\n"), "%s", out);
    ck_assert_msg(access(t.out, F_OK) != 0, "a rejected model was written");
    const char *json = read_text(t.report);
    ck_assert_msg(strstr(json, "\"output\": null") && strstr(json, "\"approved\": false"), "%s", json);
    /* No candidate file is left next to the output. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s.* 2>/dev/null | grep -q .", t.out);
    ck_assert_msg(system(cmd) != 0, "candidate files left next to %s", t.out);
    teardown(&t);
}
END_TEST

/* Ranking and closure on a hand-made graph x -> P -> p -> Q -> q -> R -> r, q -> S -> s -> U -> u,
   where s is not quantized (no SQNR): the loss across a layer decides, an unmeasured input is
   traced up to the measured tensors it comes from, and the graph input counts as the best SQNR. */
START_TEST(rank_and_closure) {
    oct_graph *g = oct_graph_new();
    int x = test_graph_input(g, "x", OCTET_FLOAT, 2, (const int64_t[]){1, 2});
    const char *nodes[5] = {"P", "Q", "R", "S", "U"}, *outs[5] = {"p", "q", "r", "s", "u"};
    const int from[5] = {-1, 0, 1, 1, 3}; /* input: x or the output of node i */
    int v[5];
    for (int i = 0; i < 5; i++) {
        const int k = oct_graph_add_node(g, nodes[i], "Relu", "", 1, 1, NULL);
        v[i] = oct_graph_add_value(g, outs[i], NULL);
        g->nodes[k].in[0] = from[i] < 0 ? x : v[from[i]];
        g->nodes[k].out[0] = v[i];
    }
    const char *names[6] = {"p", "q", "r", "s", "u", "x"};
    const double sqnr[6] = {40, 38, 20, NAN, 30, NAN};
    oct_mp_layer *L;
    int n;
    ck_assert_int_eq(oct_mp_rank(g, 6, names, sqnr, &L, &n, NULL), 0);
    ck_assert_int_eq(n, 4);
    /* R loses 18 dB, U 8 (s traced up to q: 38), Q 2, P 0 (x counts as the best, 40); S has no
       measured output and is not a candidate. */
    ck_assert_str_eq(L[0].node, "R");
    ck_assert_double_eq_tol(L[0].loss_db, 18, 1e-12);
    ck_assert_str_eq(L[1].node, "U");
    ck_assert_double_eq_tol(L[1].sqnr_in, 38, 1e-12);
    ck_assert_str_eq(L[2].node, "Q");
    ck_assert_str_eq(L[3].node, "P");
    ck_assert_double_eq_tol(L[3].loss_db, 0, 1e-12);
    const char **fp32;
    int nf;
    const char *user[1] = {"P"};
    ck_assert_int_eq(oct_mp_fp32_nodes(g, L, 1, user, 1, &fp32, &nf, NULL), 0);
    /* R reads q (made by Q, also read by S) and writes r: P (the user's), Q, R, S */
    ck_assert_int_eq(nf, 4);
    ck_assert_str_eq(fp32[0], "P");
    ck_assert_str_eq(fp32[1], "Q");
    ck_assert_str_eq(fp32[2], "R");
    ck_assert_str_eq(fp32[3], "S");
    free(fp32);
    free(L);
    oct_graph_free(g);
}
END_TEST

START_TEST(usage_errors) {
    static char out[4096];
    char *no_val[] = {"m.onnx", "--calib", "c.npz", "-o", "o.onnx", "--target-drop", "1"};
    ck_assert_int_eq(run_quantize(no_val, 7, out, sizeof out), CLI_EXIT_USAGE);
    char *no_target[] = {"m.onnx", "--calib", "c.npz", "-o", "o.onnx", "--val", "v.npz"};
    ck_assert_int_eq(run_quantize(no_target, 7, out, sizeof out), CLI_EXIT_USAGE);
    char *negative[] = {"m.onnx", "--calib", "c.npz", "-o", "o.onnx", "--val", "v.npz", "--target-drop", "-1"};
    ck_assert_int_eq(run_quantize(negative, 9, out, sizeof out), CLI_EXIT_USAGE);
    char *zero_layers[] = {"m.onnx", "--calib", "c.npz", "-o", "o.onnx", "--val", "v.npz", "--target-drop", "1",
                           "--max-fp32-layers", "0"};
    ck_assert_int_eq(run_quantize(zero_layers, 11, out, sizeof out), CLI_EXIT_USAGE);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mixed_precision");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, rank_and_closure);
    tcase_add_test(tc, usage_errors);
    tcase_add_test(tc, int8_fails_and_mixed_precision_recovers);
    tcase_add_test(tc, limit_reached_writes_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
