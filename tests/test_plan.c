/* The planner and sessions on hand-built graphs: folding, dead nodes, re-planning for a new
   batch, input-value binding, concurrent runs and error messages. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "engine/plan.h"
#include "test_session.h"

static int add_value(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims) {
    int v = oct_graph_add_value(g, name, NULL);
    g->values[v].dtype = dt;
    g->values[v].rank = rank;
    for (int d = 0; d < rank; d++) g->values[v].dims[d] = dims[d];
    return v;
}

static int add_const_i64(oct_graph *g, const char *name, int n, const int64_t *vals) {
    int v = oct_graph_add_value(g, name, NULL);
    int64_t *data = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(data, vals, sizeof(int64_t) * (size_t)n);
    int64_t dims[1] = {n};
    oct_value_set_const(&g->values[v], OCTET_INT64, 1, dims, data);
    return v;
}

static int node(oct_graph *g, const char *op, int n_in, const int *in, int n_out, const int *out) {
    char name[32];
    snprintf(name, sizeof name, "%s_%d", op, g->n_nodes);
    int k = oct_graph_add_node(g, name, op, "", n_in, n_out, NULL);
    memcpy(g->nodes[k].in, in, sizeof(int) * (size_t)n_in);
    memcpy(g->nodes[k].out, out, sizeof(int) * (size_t)n_out);
    return k;
}

static void set_io(oct_graph *g, int input, int output) {
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = input;
    g->n_inputs = 1;
    g->values[input].kind = OCT_VAL_INPUT;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = output;
    g->n_outputs = 1;
}

/* x[N,2,3] -> Relu -> Reshape(shape = Concat(Gather(Shape(x), 0), [-1])) -> y[N,6], the pattern
   PyTorch exports for flatten with a dynamic batch; plus a dead Neg branch. */
static octet_model *flatten_model(void) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    int64_t xd[3] = {-1, 2, 3};
    int x = add_value(g, "x", OCTET_FLOAT, 3, xd);
    g->values[x].dim_params[0] = strdup("N");
    int r = oct_graph_add_value(g, "r", NULL);
    node(g, "Relu", 1, (int[]){x}, 1, (int[]){r});
    int shp = oct_graph_add_value(g, "shp", NULL);
    node(g, "Shape", 1, (int[]){x}, 1, (int[]){shp});
    int zero = oct_graph_add_value(g, "zero", NULL);
    int64_t *zd = malloc(sizeof(int64_t));
    *zd = 0;
    oct_value_set_const(&g->values[zero], OCTET_INT64, 0, NULL, zd);
    int n = oct_graph_add_value(g, "n", NULL);
    node(g, "Gather", 2, (int[]){shp, zero}, 1, (int[]){n});
    int axes = add_const_i64(g, "axes", 1, (int64_t[]){0});
    int n1 = oct_graph_add_value(g, "n1", NULL);
    node(g, "Unsqueeze", 2, (int[]){n, axes}, 1, (int[]){n1});
    int minus1 = add_const_i64(g, "minus1", 1, (int64_t[]){-1});
    int target = oct_graph_add_value(g, "target", NULL);
    int k = node(g, "Concat", 2, (int[]){n1, minus1}, 1, (int[]){target});
    oct_attr *a = calloc(1, sizeof *a);
    a->name = strdup("axis");
    a->type = OCT_ATTR_INT;
    a->i = 0;
    g->nodes[k].attrs = a;
    g->nodes[k].n_attr = 1;
    int y = oct_graph_add_value(g, "y", NULL);
    node(g, "Reshape", 2, (int[]){r, target}, 1, (int[]){y});
    int dead = oct_graph_add_value(g, "unused", NULL);
    node(g, "Neg", 1, (int[]){x}, 1, (int[]){dead});
    set_io(g, x, y);
    octet_model *m = calloc(1, sizeof *m);
    m->graph = g;
    return m;
}

START_TEST(shape_chain_folds_and_dead_nodes_go) {
    octet_model *m = flatten_model();
    octet_error err = {0};
    octet_session *s = octet_session_create(m, NULL, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    octet_plan_stats st;
    ck_assert_int_eq(octet_session_plan_stats(s, &st), 0);
    /* Shape/Gather/Unsqueeze/Concat fold to a constant, Neg is dead: Relu and Reshape remain. */
    ck_assert_int_eq(st.nodes, 2);
    const char *name;
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    ck_assert_int_eq(octet_session_output_info(s, 0, &name, NULL, &rank, dims), 0);
    ck_assert_str_eq(name, "y");
    ck_assert_int_eq(rank, 2);
    ck_assert_int_eq(dims[0], 1);
    ck_assert_int_eq(dims[1], 6);
    octet_session_free(s);
    octet_model_free(m);
}
END_TEST

static void run_batch(octet_session *s, int batch) {
    float x[4 * 6];
    for (int i = 0; i < batch * 6; i++) x[i] = (float)(i % 5) - 2.f;
    octet_tensor in = {OCTET_FLOAT, 3, {batch, 2, 3}, x}, out;
    octet_error err = {0};
    ck_assert_msg(octet_session_run(s, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(out.rank, 2);
    ck_assert_int_eq(out.dims[0], batch);
    ck_assert_int_eq(out.dims[1], 6);
    for (int i = 0; i < batch * 6; i++) ck_assert(((float *)out.data)[i] == (x[i] > 0 ? x[i] : 0));
    octet_tensor_release(&out);
}

START_TEST(new_batch_replans) {
    octet_model *m = flatten_model();
    octet_session *s = octet_session_create(m, NULL, NULL);
    ck_assert_ptr_nonnull(s);
    run_batch(s, 1);
    run_batch(s, 4);
    run_batch(s, 1);
    run_batch(s, 3);
    octet_session_free(s);
    octet_model_free(m);
}
END_TEST

static void *run_many(void *arg) {
    for (int i = 0; i < 50; i++) run_batch(arg, 1 + i % 3);
    return NULL;
}

START_TEST(concurrent_runs_share_a_session) {
    octet_model *m = flatten_model();
    octet_session *s = octet_session_create(m, NULL, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, run_many, s);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    octet_session_free(s);
    octet_model_free(m);
}
END_TEST

/* pin_threads: the results do not change, and the calling thread (worker 0) ends up on the first
   CPU it was allowed, alone. */
static void *run_pinned(void *arg) {
    cpu_set_t before, after;
    ck_assert_int_eq(pthread_getaffinity_np(pthread_self(), sizeof before, &before), 0);
    int first = 0;
    while (!CPU_ISSET(first, &before)) first++;
    run_batch(arg, 3);
    run_batch(arg, 1);
    ck_assert_int_eq(pthread_getaffinity_np(pthread_self(), sizeof after, &after), 0);
    ck_assert_int_eq(CPU_COUNT(&after), 1);
    ck_assert(CPU_ISSET(first, &after));
    return NULL;
}

START_TEST(pinned_sessions_pin_their_workers) {
    octet_model *m = flatten_model();
    octet_session_options o = {.threads = 2, .pin_threads = 1};
    octet_session *s = octet_session_create(m, &o, NULL);
    ck_assert_ptr_nonnull(s);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, run_pinned, s), 0);
    pthread_join(t, NULL);
    octet_session_free(s);
    octet_model_free(m);
}
END_TEST

START_TEST(bad_inputs_are_named) {
    octet_model *m = flatten_model();
    octet_session *s = octet_session_create(m, NULL, NULL);
    octet_error err = {0};
    int32_t xi[6] = {0};
    octet_tensor wrong_type = {OCTET_INT32, 3, {1, 2, 3}, xi}, out;
    ck_assert_int_eq(octet_session_run(s, 1, NULL, &wrong_type, 1, NULL, &out, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'x'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "float32"));
    float xf[8] = {0};
    octet_tensor wrong_dim = {OCTET_FLOAT, 3, {1, 2, 4}, xf};
    ck_assert_int_eq(octet_session_run(s, 1, NULL, &wrong_dim, 1, NULL, &out, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "dim 2"));
    octet_tensor wrong_rank = {OCTET_FLOAT, 2, {2, 3}, xf};
    ck_assert_int_eq(octet_session_run(s, 1, NULL, &wrong_rank, 1, NULL, &out, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "rank"));
    const char *bad_name = "nope";
    octet_tensor ok = {OCTET_FLOAT, 3, {1, 2, 3}, xf};
    ck_assert_int_eq(octet_session_run(s, 1, &bad_name, &ok, 1, NULL, &out, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope"));
    octet_session_free(s);
    octet_model_free(m);
}
END_TEST

START_TEST(unsupported_op_names_the_node) {
    oct_graph *g = oct_graph_new();
    int64_t d[1] = {4};
    int x = add_value(g, "x", OCTET_FLOAT, 1, d);
    int y = oct_graph_add_value(g, "y", NULL);
    int k = node(g, "FancyOp", 1, (int[]){x}, 1, (int[]){y});
    free(g->nodes[k].name);
    g->nodes[k].name = strdup("my_fancy_node");
    set_io(g, x, y);
    octet_model m = {.graph = g};
    octet_error err = {0};
    ck_assert_ptr_null(octet_session_create(&m, NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "my_fancy_node"));
    ck_assert_ptr_nonnull(strstr(err.msg, "FancyOp"));
    ck_assert_int_eq(err.code, OCTET_ERR_UNSUPPORTED);
    oct_graph_free(g);
}
END_TEST

/* octet_session_run_into writes into the caller's buffers, and names a buffer that does not fit. */
START_TEST(run_into_uses_the_callers_buffers) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    int64_t d[1] = {4};
    int x = add_value(g, "x", OCTET_FLOAT, 1, d);
    int y = oct_graph_add_value(g, "y", NULL);
    node(g, "Relu", 1, (int[]){x}, 1, (int[]){y});
    set_io(g, x, y);
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    float xv[4] = {-1, 2, -3, 4}, yv[4] = {9, 9, 9, 9};
    octet_tensor in = {OCTET_FLOAT, 1, {4}, xv}, out = {OCTET_FLOAT, 1, {4}, yv};
    ck_assert_msg(octet_session_run_into(s, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
    ck_assert_ptr_eq(out.data, yv);
    ck_assert(yv[0] == 0.f && yv[1] == 2.f && yv[2] == 0.f && yv[3] == 4.f);
    octet_tensor small = {OCTET_FLOAT, 1, {3}, yv};
    ck_assert_int_eq(octet_session_run_into(s, 1, NULL, &in, 1, NULL, &small, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "output 'y'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "[3]"));
    octet_session_free(s);
    oct_graph_free(g);
}
END_TEST

/* Unsqueeze-13 with its axes as a graph input: planned per axes value at run time. */
START_TEST(input_values_that_fix_shapes_are_bound) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    int64_t d[1] = {3}, ad[1] = {1};
    int x = add_value(g, "x", OCTET_FLOAT, 1, d);
    int axes = add_value(g, "axes", OCTET_INT64, 1, ad);
    int y = oct_graph_add_value(g, "y", NULL);
    node(g, "Unsqueeze", 2, (int[]){x, axes}, 1, (int[]){y});
    set_io(g, x, y);
    g->inputs = realloc(g->inputs, 2 * sizeof(int));
    g->inputs[1] = axes;
    g->n_inputs = 2;
    g->values[axes].kind = OCT_VAL_INPUT;
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    float xv[3] = {1, 2, 3};
    for (int64_t axis = 0; axis <= 1; axis++) {
        octet_tensor in[2] = {{OCTET_FLOAT, 1, {3}, xv}, {OCTET_INT64, 1, {1}, &axis}}, out;
        ck_assert_msg(octet_session_run(s, 2, NULL, in, 1, NULL, &out, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(out.rank, 2);
        ck_assert_int_eq(out.dims[0], axis == 0 ? 1 : 3);
        ck_assert_int_eq(out.dims[1], axis == 0 ? 3 : 1);
        octet_tensor_release(&out);
    }
    octet_session_free(s);
    oct_graph_free(g);
}
END_TEST

/* x[1,2,16] -> Relu -> a, x -> Neg -> b, Concat(a, b) -> c -> Neg -> y. Along axis 1 (only a 1
   before it) a and b are views into c's buffer and the Concat copies nothing; along axis 2 they
   keep their own buffers. Either way y = -(relu(x) ++ -x). */
static oct_graph *concat_graph(int64_t axis) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    int x = add_value(g, "x", OCTET_FLOAT, 3, (int64_t[]){1, 2, 16});
    int a = oct_graph_add_value(g, "a", NULL), b = oct_graph_add_value(g, "b", NULL);
    int c = oct_graph_add_value(g, "c", NULL), y = oct_graph_add_value(g, "y", NULL);
    node(g, "Relu", 1, (int[]){x}, 1, (int[]){a});
    node(g, "Neg", 1, (int[]){x}, 1, (int[]){b});
    int k = node(g, "Concat", 2, (int[]){a, b}, 1, (int[]){c});
    oct_attr *at = calloc(1, sizeof *at);
    at->name = strdup("axis");
    at->type = OCT_ATTR_INT;
    at->i = axis;
    g->nodes[k].attrs = at;
    g->nodes[k].n_attr = 1;
    node(g, "Neg", 1, (int[]){c}, 1, (int[]){y});
    set_io(g, x, y);
    return g;
}

START_TEST(concat_inputs_are_planned_inside_its_output) {
    for (int64_t axis = 1; axis <= 2; axis++) {
        oct_graph *g = concat_graph(axis);
        octet_error err = {0};
        oct_shape shape = {3, {1, 2, 16}};
        oct_plan *p = oct_plan_build(g, &shape, NULL, 1, NULL, &err);
        ck_assert_msg(p != NULL, "%s", err.msg);
        const oct_value *a = &p->g->values[oct_graph_find_value(p->g, "a")];
        const oct_value *b = &p->g->values[oct_graph_find_value(p->g, "b")];
        const oct_value *c = &p->g->values[oct_graph_find_value(p->g, "c")];
        ck_assert(a->planned && b->planned && c->planned);
        if (axis == 1) {
            ck_assert_uint_eq(a->arena_offset, c->arena_offset);
            ck_assert_uint_eq(b->arena_offset, c->arena_offset + 2 * 16 * sizeof(float));
            ck_assert_uint_eq(p->arena_bytes, 4 * 16 * sizeof(float));
        } else {
            ck_assert(a->arena_offset + 128 <= c->arena_offset || c->arena_offset + 256 <= a->arena_offset);
            ck_assert(b->arena_offset + 128 <= c->arena_offset || c->arena_offset + 256 <= b->arena_offset);
        }
        oct_plan_free(p);

        octet_model m = {.graph = g};
        octet_session *s = octet_session_create(&m, NULL, &err);
        ck_assert_msg(s != NULL, "%s", err.msg);
        /* `octet inspect` says which Concat inputs are written in place */
        char text[4096] = {0};
        FILE *f = fmemopen(text, sizeof text - 1, "w");
        ck_assert_int_eq(octet_session_describe(s, f, 0), 0);
        fclose(f);
        ck_assert_msg((strstr(text, "2 of 2 inputs written in place") != NULL) == (axis == 1), "%s", text);
        float xv[32], yv[64];
        for (int i = 0; i < 32; i++) xv[i] = (float)(i % 7) - 3.f;
        octet_tensor in = {OCTET_FLOAT, 3, {1, 2, 16}, xv}, out = {OCTET_FLOAT, 3, {1, axis == 1 ? 4 : 2, axis == 1 ? 16 : 32}, yv};
        for (int run = 0; run < 2; run++) {
            ck_assert_msg(octet_session_run_into(s, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
            for (int ch = 0; ch < 2; ch++)
                for (int i = 0; i < 16; i++) {
                    const float v = xv[ch * 16 + i];
                    const float ya = axis == 1 ? yv[ch * 16 + i] : yv[ch * 32 + i];
                    const float yb = axis == 1 ? yv[32 + ch * 16 + i] : yv[ch * 32 + 16 + i];
                    ck_assert(ya == -(v > 0 ? v : 0.f));
                    ck_assert(yb == v);
                }
        }
        octet_session_free(s);
        oct_graph_free(g);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, shape_chain_folds_and_dead_nodes_go);
    tcase_add_test(tc, new_batch_replans);
    tcase_add_test(tc, concurrent_runs_share_a_session);
    tcase_add_test(tc, pinned_sessions_pin_their_workers);
    tcase_add_test(tc, bad_inputs_are_named);
    tcase_add_test(tc, unsupported_op_names_the_node);
    tcase_add_test(tc, input_values_that_fix_shapes_are_bound);
    tcase_add_test(tc, run_into_uses_the_callers_buffers);
    tcase_add_test(tc, concat_inputs_are_planned_inside_its_output);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
