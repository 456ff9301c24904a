/* The adaptive int8/fp32 selector: int8 models that cannot be used, shadow validation and the
   switch to fp32, int8 run failures, counters under concurrent use. Stand-ins for int8 models are
   other models with the same inputs and outputs (ONNX node tests and hand-built graphs), so that
   agreement and disagreement are known in advance. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "test_session.h"
#include "test_util.h"

static char path_buf[8][1024];
static int path_next;

/* onnx-node-tests/test_NAME/model.onnx (x, y: float32 [3, 4, 5]) */
static const char *node_model(const char *name) {
    char *p = path_buf[path_next++ % 8];
    snprintf(p, 1024, "%s/onnx-node-tests/test_%s/model.onnx", test_shared_dir(), name);
    return p;
}

static const char *brain_model(void) {
    char *p = path_buf[path_next++ % 8];
    snprintf(p, 1024, "%s/models/brain_tumor_cnn.onnx", test_source_root());
    return p;
}

static octet_selector_stats stats_of(const octet_selector *sel) {
    octet_selector_stats st;
    ck_assert_int_eq(octet_selector_stats_get(sel, &st), 0);
    return st;
}

static void assert_counters_add_up(const octet_selector_stats *st) {
    ck_assert_uint_eq(st->requests, st->int8_runs + st->fp32_runs + st->failed);
}

/* ---- inputs for the [3, 4, 5] node-test models ---- */

#define NX 60

/* Positive everywhere: relu and abs agree on the argmax over dim 1 (the largest channel, 3). */
static void agreeing_x(float *x) {
    for (int i = 0; i < NX; i++) x[i] = (float)((i / 5) % 4 + 1);
}

/* Channel 0 very negative, the others small and positive: abs picks channel 0, relu channel 3. */
static void disagreeing_x(float *x) {
    for (int i = 0; i < NX; i++) {
        int c = (i / 5) % 4;
        x[i] = c == 0 ? -10.f : (float)c;
    }
}

/* Runs one [3, 4, 5] request; returns the first output value and checks every value is
   relu(x) (expect_neg 0) or -x (expect_neg 1). */
static void run_node(octet_selector *sel, const float *x, int expect_neg) {
    octet_tensor in = {OCTET_FLOAT, 3, {3, 4, 5}, (void *)x}, out;
    octet_error err = {0};
    ck_assert_msg(octet_selector_run(sel, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(out.rank, 3);
    const float *y = out.data;
    for (int i = 0; i < NX; i++) {
        float want = expect_neg ? -x[i] : (x[i] > 0 ? x[i] : 0.f);
        ck_assert_msg(y[i] == want, "y[%d] = %g, want %g", i, (double)y[i], (double)want);
    }
    octet_tensor_release(&out);
}

/* ---- (a) unusable int8 files ---- */

static void expect_fp32_with_reason(const char *int8_path, const char *mention) {
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 1.0};
    octet_selector *sel = octet_selector_create(node_model("relu"), int8_path, &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_msg(strstr(st.reason, mention) != NULL, "reason '%s' does not mention '%s'", st.reason, mention);
    ck_assert_msg(strstr(st.reason, "fp32") != NULL, "%s", st.reason);
    float x[NX];
    disagreeing_x(x);
    run_node(sel, x, 0);
    st = stats_of(sel);
    ck_assert_uint_eq(st.requests, 1);
    ck_assert_uint_eq(st.fp32_runs, 1);
    ck_assert_uint_eq(st.int8_runs, 0);
    ck_assert_uint_eq(st.shadow_runs, 0);
    octet_selector_free(sel);
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

START_TEST(random_bytes_int8_serves_fp32) {
    unsigned char junk[4096];
    unsigned state = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        state = state * 1103515245u + 12345u;
        junk[i] = (unsigned char)(state >> 16);
    }
    char *path = test_write_temp(junk, sizeof junk, "_int8.onnx");
    ck_assert_ptr_nonnull(path);
    expect_fp32_with_reason(path, path);
    remove(path);
    free(path);
}
END_TEST

START_TEST(truncated_int8_serves_fp32) {
    size_t n;
    unsigned char *bytes = read_file(brain_model(), &n);
    char *path = test_write_temp(bytes, n / 2, "_int8.onnx");
    ck_assert_ptr_nonnull(path);
    /* the fp32 model is the relu node test: the truncated file must be refused at load already */
    expect_fp32_with_reason(path, path);
    remove(path);
    free(path);
    free(bytes);
}
END_TEST

START_TEST(missing_int8_serves_fp32) {
    expect_fp32_with_reason("/nonexistent/model_int8.onnx", "/nonexistent/model_int8.onnx");
}
END_TEST

START_TEST(no_int8_model_serves_fp32) {
    octet_error err = {0};
    octet_selector *sel = octet_selector_create(node_model("relu"), NULL, NULL, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_ptr_nonnull(strstr(st.reason, "no int8 model"));
    octet_selector_free(sel);
}
END_TEST

/* ---- (b) int8 model with other inputs or outputs ---- */

START_TEST(int8_with_other_input_shape_serves_fp32) {
    /* softmax_example has x, y like softmax_axis_1 but [1, 3] instead of [3, 4, 5] */
    octet_error err = {0};
    octet_selector *sel = octet_selector_create(node_model("softmax_axis_1"), node_model("softmax_example"), NULL, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_msg(strstr(st.reason, "input 0") && strstr(st.reason, "[1, 3]") && strstr(st.reason, "[3, 4, 5]"),
                  "%s", st.reason);
    ck_assert_msg(strstr(st.reason, "test_softmax_example") != NULL, "%s", st.reason);
    octet_selector_free(sel);
}
END_TEST

START_TEST(int8_with_other_input_names_serves_fp32) {
    /* gather_0 has inputs data and indices */
    octet_error err = {0};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("gather_0"), NULL, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_msg(strstr(st.reason, "2 inputs") != NULL, "%s", st.reason);
    octet_selector_free(sel);
}
END_TEST

/* ---- (c) int8 == fp32: no disagreement, counters add up ---- */

START_TEST(same_node_model_agrees) {
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 1.0, .min_shadow_runs = 1};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("relu"), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    ck_assert_int_eq(stats_of(sel).using_int8, 1);
    float x[NX];
    for (int r = 0; r < 10; r++) {
        for (int i = 0; i < NX; i++) x[i] = (float)((i * 7 + r * 13) % 11) - 5.f;
        run_node(sel, x, 0);
    }
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 1);
    ck_assert_uint_eq(st.requests, 10);
    ck_assert_uint_eq(st.int8_runs, 10);
    ck_assert_uint_eq(st.fp32_runs, 0);
    ck_assert_uint_eq(st.shadow_runs, 10);
    ck_assert_uint_eq(st.disagreements, 0);
    assert_counters_add_up(&st);
    octet_selector_free(sel);
}
END_TEST

START_TEST(same_brain_model_agrees) {
    octet_error err = {0};
    octet_selector_options o = {.threads = 2, .shadow_fraction = 1.0, .min_shadow_runs = 1};
    octet_selector *sel = octet_selector_create(brain_model(), brain_model(), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    octet_selector_stats st = stats_of(sel);
    ck_assert_msg(st.using_int8 == 1, "%s", st.reason);
    octet_model *m = octet_model_load(brain_model(), &err);
    octet_session *ref = octet_session_create(m, &(octet_session_options){.threads = 2}, &err);
    ck_assert_msg(ref != NULL, "%s", err.msg);
    enum { PIXELS = 128 * 128 };
    float *img = malloc(PIXELS * sizeof *img);
    unsigned state = 7;
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < PIXELS; i++) {
            state = state * 1103515245u + 12345u;
            img[i] = (float)((state >> 16) % 256);
        }
        octet_tensor in = {OCTET_FLOAT, 4, {1, 1, 128, 128}, img}, got, want;
        ck_assert_msg(octet_selector_run(sel, 1, NULL, &in, 1, NULL, &got, &err) == 0, "%s", err.msg);
        ck_assert_msg(octet_session_run(ref, 1, NULL, &in, 1, NULL, &want, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(got.rank, 2);
        ck_assert_int_eq(got.dims[1], 4);
        ck_assert_int_eq(memcmp(got.data, want.data, 4 * sizeof(float)), 0);
        octet_tensor_release(&got);
        octet_tensor_release(&want);
    }
    st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 1);
    ck_assert_uint_eq(st.requests, 4);
    ck_assert_uint_eq(st.int8_runs, 4);
    ck_assert_uint_eq(st.shadow_runs, 4);
    ck_assert_uint_eq(st.disagreements, 0);
    assert_counters_add_up(&st);
    free(img);
    octet_session_free(ref);
    octet_model_free(m);
    octet_selector_free(sel);
}
END_TEST

/* ---- (d) an int8 model that disagrees ---- */

START_TEST(disagreeing_int8_switches_after_min_shadow_runs) {
    /* "int8" is Neg, fp32 is Relu: argmax over dim 1 of -x is argmin of x, so every position of
       the varied input below disagrees */
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 1.0, .min_shadow_runs = 20, .max_disagreement = 0.05};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("neg"), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    float x[NX];
    disagreeing_x(x);
    for (int r = 0; r < 19; r++) run_node(sel, x, 1);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 1); /* 19 of 19 disagree, but min_shadow_runs is 20 */
    ck_assert_uint_eq(st.disagreements, 19);
    run_node(sel, x, 1); /* the 20th is still int8's answer; it triggers the switch */
    st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_msg(strstr(st.reason, "disagreed") && strstr(st.reason, "20 of 20"), "%s", st.reason);
    for (int r = 0; r < 5; r++) run_node(sel, x, 0);
    st = stats_of(sel);
    ck_assert_uint_eq(st.requests, 25);
    ck_assert_uint_eq(st.int8_runs, 20);
    ck_assert_uint_eq(st.fp32_runs, 5);
    ck_assert_uint_eq(st.shadow_runs, 20);
    ck_assert_uint_eq(st.disagreements, 20);
    assert_counters_add_up(&st);
    octet_selector_free(sel);
}
END_TEST

START_TEST(shadow_fraction_picks_every_kth_request) {
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 0.5, .min_shadow_runs = 20};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("neg"), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    float x[NX];
    disagreeing_x(x);
    /* requests 0, 2, ..., 38 are shadowed: the 20th shadow run is request 38 */
    for (int r = 0; r < 39; r++) run_node(sel, x, 1);
    for (int r = 0; r < 6; r++) run_node(sel, x, 0);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_uint_eq(st.int8_runs, 39);
    ck_assert_uint_eq(st.fp32_runs, 6);
    ck_assert_uint_eq(st.shadow_runs, 20);
    ck_assert_uint_eq(st.disagreements, 20);
    octet_selector_free(sel);
}
END_TEST

/* abs as "int8" against relu: agreeing_x agrees, disagreeing_x disagrees. */
static octet_selector *abs_vs_relu(int min_runs, double max_dis) {
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 1.0, .min_shadow_runs = min_runs, .max_disagreement = max_dis};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("abs"), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    return sel;
}

static void run_abs(octet_selector *sel, int agree) {
    float x[NX];
    if (agree) agreeing_x(x);
    else disagreeing_x(x);
    octet_tensor in = {OCTET_FLOAT, 3, {3, 4, 5}, x}, out;
    octet_error err = {0};
    ck_assert_msg(octet_selector_run(sel, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
    octet_tensor_release(&out);
}

START_TEST(disagreement_rate_threshold_is_exceeded_not_reached) {
    octet_selector *sel = abs_vs_relu(10, 0.3);
    for (int r = 0; r < 8; r++) run_abs(sel, 1);
    for (int r = 0; r < 2; r++) run_abs(sel, 0);
    octet_selector_stats st = stats_of(sel);
    ck_assert_uint_eq(st.shadow_runs, 10);
    ck_assert_uint_eq(st.disagreements, 2);
    ck_assert_int_eq(st.using_int8, 1); /* 20% <= 30% */
    run_abs(sel, 0);
    ck_assert_int_eq(stats_of(sel).using_int8, 1); /* 3 of 11: 27% */
    run_abs(sel, 0);
    st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0); /* 4 of 12: 33% */
    ck_assert_msg(strstr(st.reason, "4 of 12") != NULL, "%s", st.reason);
    octet_selector_free(sel);
}
END_TEST

START_TEST(early_disagreements_wait_for_min_shadow_runs) {
    octet_selector *sel = abs_vs_relu(10, 0.3);
    for (int r = 0; r < 5; r++) run_abs(sel, 0);
    for (int r = 0; r < 4; r++) run_abs(sel, 1);
    ck_assert_int_eq(stats_of(sel).using_int8, 1); /* 5 of 9, below min_shadow_runs */
    run_abs(sel, 1);
    ck_assert_int_eq(stats_of(sel).using_int8, 0); /* 5 of 10 */
    octet_selector_free(sel);
}
END_TEST

START_TEST(one_differing_position_of_fifteen_disagrees) {
    /* 15 positions (3 x 5) decide over dim 1; one differing position is 6.7% > 1% */
    octet_selector *sel = abs_vs_relu(1, 0.5);
    float x[NX];
    agreeing_x(x);
    x[0] = -10.f; /* position (0, 0): |x| now peaks at channel 0, relu still at channel 3 */
    octet_tensor in = {OCTET_FLOAT, 3, {3, 4, 5}, x}, out;
    octet_error err = {0};
    ck_assert_msg(octet_selector_run(sel, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
    octet_tensor_release(&out);
    octet_selector_stats st = stats_of(sel);
    ck_assert_uint_eq(st.disagreements, 1);
    ck_assert_int_eq(st.using_int8, 0);
    octet_selector_free(sel);
}
END_TEST

/* ---- int8 run failures ---- */

static int add_value(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims) {
    int v = oct_graph_add_value(g, name, NULL);
    g->values[v].dtype = dt;
    g->values[v].rank = rank;
    g->values[v].kind = OCT_VAL_INPUT;
    for (int d = 0; d < rank; d++) g->values[v].dims[d] = dims[d];
    return v;
}

static void add_node(oct_graph *g, const char *op, int a, int b, int out) {
    char name[32];
    snprintf(name, sizeof name, "%s_%d", op, g->n_nodes);
    int k = oct_graph_add_node(g, name, op, "", 2, 1, NULL);
    g->nodes[k].in[0] = a;
    g->nodes[k].in[1] = b;
    g->nodes[k].out[0] = out;
}

/* y = Gather(data[3, 2], indices[2]); with shift the indices are first increased by one, so
   index 2 fails at run time while the unshifted graph accepts it. */
static octet_model *gather_model(int shift) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    int data = add_value(g, "data", OCTET_FLOAT, 2, (int64_t[]){3, 2});
    int idx = add_value(g, "indices", OCTET_INT64, 1, (int64_t[]){2});
    int y = oct_graph_add_value(g, "y", NULL);
    if (shift) {
        int one = oct_graph_add_value(g, "one", NULL);
        int64_t *v = malloc(sizeof *v);
        *v = 1;
        oct_value_set_const(&g->values[one], OCTET_INT64, 1, (int64_t[]){1}, v);
        int shifted = oct_graph_add_value(g, "shifted", NULL);
        add_node(g, "Add", idx, one, shifted);
        add_node(g, "Gather", data, shifted, y);
    } else {
        add_node(g, "Gather", data, idx, y);
    }
    g->inputs = malloc(2 * sizeof(int));
    g->inputs[0] = data;
    g->inputs[1] = idx;
    g->n_inputs = 2;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = y;
    g->n_outputs = 1;
    octet_model *m = calloc(1, sizeof *m);
    m->graph = g;
    return m;
}

static int run_gather(octet_selector *sel, int64_t i0, int64_t i1, float *first, octet_error *err) {
    float data[6] = {0, 1, 10, 11, 20, 21};
    int64_t idx[2] = {i0, i1};
    octet_tensor in[2] = {{OCTET_FLOAT, 2, {3, 2}, data}, {OCTET_INT64, 1, {2}, idx}}, out;
    if (octet_selector_run(sel, 2, NULL, in, 1, NULL, &out, err)) return -1;
    *first = ((float *)out.data)[0];
    octet_tensor_release(&out);
    return 0;
}

START_TEST(failed_int8_run_is_answered_by_fp32_and_switches) {
    octet_model *fp32 = gather_model(0), *int8 = gather_model(1);
    octet_error err = {0};
    octet_selector *sel = octet_selector_create_from_models(fp32, int8, NULL, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    ck_assert_int_eq(stats_of(sel).using_int8, 1);
    float first;
    ck_assert_int_eq(run_gather(sel, 0, 1, &first, &err), 0);
    ck_assert(first == 10.f); /* the shifted graph answered */
    /* a request both models reject is the caller's fault: an error, and int8 stays */
    ck_assert_int_eq(run_gather(sel, 7, 0, &first, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    ck_assert_int_eq(stats_of(sel).using_int8, 1);
    /* int8 fails on index 2 (3 after the shift), fp32 answers it */
    ck_assert_msg(run_gather(sel, 2, 0, &first, &err) == 0, "%s", err.msg);
    ck_assert(first == 20.f);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_msg(strstr(st.reason, "int8 run failed") && strstr(st.reason, "out of range"), "%s", st.reason);
    ck_assert_int_eq(run_gather(sel, 0, 1, &first, &err), 0);
    ck_assert(first == 0.f); /* fp32 for good */
    st = stats_of(sel);
    ck_assert_uint_eq(st.requests, 4);
    ck_assert_uint_eq(st.int8_runs, 1);
    ck_assert_uint_eq(st.fp32_runs, 2);
    ck_assert_uint_eq(st.failed, 1);
    octet_selector_free(sel);
    octet_model_free(fp32);
    octet_model_free(int8);
}
END_TEST

/* x[4, 1] -> op -> y: no class axis, so values are compared. */
static octet_model *unary_model(const char *op) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    int x = add_value(g, "x", OCTET_FLOAT, 2, (int64_t[]){4, 1});
    int y = oct_graph_add_value(g, "y", NULL);
    int k = oct_graph_add_node(g, "unary", op, "", 1, 1, NULL);
    g->nodes[k].in[0] = x;
    g->nodes[k].out[0] = y;
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = x;
    g->n_inputs = 1;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = y;
    g->n_outputs = 1;
    octet_model *m = calloc(1, sizeof *m);
    m->graph = g;
    return m;
}

START_TEST(outputs_without_class_axis_compare_values) {
    octet_model *relu = unary_model("Relu"), *abs = unary_model("Abs");
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 1.0, .min_shadow_runs = 3, .max_disagreement = 0.5};
    octet_selector *sel = octet_selector_create_from_models(relu, abs, &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    float agree[4] = {1, 2, 3, 400}, differ[4] = {-10, 2, 3, 400}, within[4] = {-1, 2, 3, 400};
    const float *xs[3] = {agree, within, differ};
    for (int r = 0; r < 3; r++) {
        octet_tensor in = {OCTET_FLOAT, 2, {4, 1}, (void *)xs[r]}, out;
        ck_assert_msg(octet_selector_run(sel, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
        octet_tensor_release(&out);
    }
    /* |abs - relu| = 1 is within 1% of 400, 10 is not */
    octet_selector_stats st = stats_of(sel);
    ck_assert_uint_eq(st.shadow_runs, 3);
    ck_assert_uint_eq(st.disagreements, 1);
    ck_assert_int_eq(st.using_int8, 1);
    octet_selector_free(sel);
    octet_model_free(relu);
    octet_model_free(abs);
}
END_TEST

/* ---- options and arguments ---- */

START_TEST(bad_options_are_refused) {
    octet_error err = {0};
    octet_selector_options o = {.shadow_fraction = 1.5};
    ck_assert_ptr_null(octet_selector_create(node_model("relu"), NULL, &o, &err));
    ck_assert_int_eq(err.code, OCTET_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "shadow fraction"));
    o = (octet_selector_options){.max_disagreement = -0.1};
    ck_assert_ptr_null(octet_selector_create(node_model("relu"), NULL, &o, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "max disagreement"));
    o = (octet_selector_options){.min_shadow_runs = -1};
    ck_assert_ptr_null(octet_selector_create(node_model("relu"), NULL, &o, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "min shadow runs"));
    ck_assert_ptr_null(octet_selector_create("/nonexistent/fp32.onnx", NULL, NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/fp32.onnx"));
    ck_assert_int_eq(octet_selector_run(NULL, 0, NULL, NULL, 0, NULL, NULL, &err), -1);
    ck_assert_int_eq(octet_selector_stats_get(NULL, NULL), -1);
    octet_selector_free(NULL);
}
END_TEST

START_TEST(shadow_compares_the_requested_output) {
    /* outputs requested by name go through the same comparison */
    octet_selector *sel = abs_vs_relu(1, 0.5);
    float x[NX];
    disagreeing_x(x);
    const char *y = "y";
    octet_tensor in = {OCTET_FLOAT, 3, {3, 4, 5}, x}, out;
    octet_error err = {0};
    ck_assert_msg(octet_selector_run(sel, 1, (const char *[]){"x"}, &in, 1, &y, &out, &err) == 0, "%s", err.msg);
    octet_tensor_release(&out);
    octet_selector_stats st = stats_of(sel);
    ck_assert_uint_eq(st.shadow_runs, 1);
    ck_assert_uint_eq(st.disagreements, 1);
    ck_assert_int_eq(st.using_int8, 0);
    octet_selector_free(sel);
}
END_TEST

/* ---- (e) concurrent runs ---- */

typedef struct {
    octet_selector *sel;
    int runs;
    int neg_possible; /* the answer may be int8's -x */
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    float x[NX];
    disagreeing_x(x);
    octet_tensor in = {OCTET_FLOAT, 3, {3, 4, 5}, x};
    for (int r = 0; r < w->runs; r++) {
        octet_tensor out;
        octet_error err = {0};
        if (octet_selector_run(w->sel, 1, NULL, &in, 1, NULL, &out, &err)) return "run failed";
        const float *y = out.data;
        int is_relu = 1, is_neg = 1;
        for (int i = 0; i < NX; i++) {
            is_relu &= y[i] == (x[i] > 0 ? x[i] : 0.f);
            is_neg &= y[i] == -x[i];
        }
        octet_tensor_release(&out);
        if (!is_relu && !(w->neg_possible && is_neg)) return "wrong answer";
    }
    return NULL;
}

static void run_threads(octet_selector *sel, int runs, int neg_possible) {
    pthread_t t[4];
    worker_arg w = {sel, runs, neg_possible};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &w), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        ck_assert_msg(res == NULL, "%s", (const char *)res);
    }
}

START_TEST(concurrent_runs_keep_counters) {
    octet_error err = {0};
    octet_selector_options o = {.threads = 1, .shadow_fraction = 0.25};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("relu"), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    run_threads(sel, 50, 0);
    octet_selector_stats st = stats_of(sel);
    ck_assert_uint_eq(st.requests, 200);
    ck_assert_uint_eq(st.int8_runs, 200);
    ck_assert_uint_eq(st.shadow_runs, 50); /* requests 0, 4, ..., 196 whatever the interleaving */
    ck_assert_uint_eq(st.disagreements, 0);
    ck_assert_int_eq(st.using_int8, 1);
    octet_selector_free(sel);
}
END_TEST

START_TEST(concurrent_runs_switch_once) {
    octet_error err = {0};
    octet_selector_options o = {.threads = 1, .shadow_fraction = 1.0, .min_shadow_runs = 20};
    octet_selector *sel = octet_selector_create(node_model("relu"), node_model("neg"), &o, &err);
    ck_assert_msg(sel != NULL, "%s", err.msg);
    run_threads(sel, 50, 1);
    octet_selector_stats st = stats_of(sel);
    ck_assert_int_eq(st.using_int8, 0);
    ck_assert_uint_eq(st.requests, 200);
    assert_counters_add_up(&st);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.shadow_runs, st.disagreements);
    ck_assert_uint_eq(st.shadow_runs, st.int8_runs); /* every int8 answer was shadowed */
    /* at least 20 before the switch; at most 3 more were in flight in the other threads */
    ck_assert_uint_ge(st.shadow_runs, 20);
    ck_assert_uint_le(st.shadow_runs, 23);
    ck_assert_msg(strstr(st.reason, "disagreed") != NULL, "%s", st.reason);
    octet_selector_free(sel);
}
END_TEST

static Suite *selector_suite(void) {
    Suite *s = suite_create("selector");
    TCase *tc = tcase_create("selector");
    tcase_add_test(tc, random_bytes_int8_serves_fp32);
    tcase_add_test(tc, truncated_int8_serves_fp32);
    tcase_add_test(tc, missing_int8_serves_fp32);
    tcase_add_test(tc, no_int8_model_serves_fp32);
    tcase_add_test(tc, int8_with_other_input_shape_serves_fp32);
    tcase_add_test(tc, int8_with_other_input_names_serves_fp32);
    tcase_add_test(tc, same_node_model_agrees);
    tcase_add_test(tc, same_brain_model_agrees);
    tcase_add_test(tc, disagreeing_int8_switches_after_min_shadow_runs);
    tcase_add_test(tc, shadow_fraction_picks_every_kth_request);
    tcase_add_test(tc, disagreement_rate_threshold_is_exceeded_not_reached);
    tcase_add_test(tc, early_disagreements_wait_for_min_shadow_runs);
    tcase_add_test(tc, one_differing_position_of_fifteen_disagrees);
    tcase_add_test(tc, failed_int8_run_is_answered_by_fp32_and_switches);
    tcase_add_test(tc, outputs_without_class_axis_compare_values);
    tcase_add_test(tc, bad_options_are_refused);
    tcase_add_test(tc, shadow_compares_the_requested_output);
    tcase_add_test(tc, concurrent_runs_keep_counters);
    tcase_add_test(tc, concurrent_runs_switch_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(selector_suite());
}
