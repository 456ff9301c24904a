/* The ONNX writer: planned graphs written, reloaded and run must give the outputs of the original;
   fused epilogues come back as standard nodes; attributes, opsets and symbolic batches survive;
   bad graphs and unwritable paths give errors naming what is wrong. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"

#include "engine/graph.h"
#include "engine/model.h"
#include "engine/plan.h"
#include "loader/loader.h"
#include "test_session.h"
#include "test_util.h"

/* ---- helpers ---- */

static char *tmp_model_path(void) {
    char *p = test_write_temp("", 0, ".onnx");
    ck_assert_msg(p != NULL, "cannot create a temp file");
    return p;
}

static octet_model *load_or_die(const char *path) {
    octet_error err = {0};
    octet_model *m = octet_model_load(path, &err);
    ck_assert_msg(m != NULL && oct_model_keep_weights(m, &err) == 0, "loading %s: %s", path, err.msg);
    return m; /* the tests read the graph directly besides running sessions */
}

static octet_model *wrap_graph(oct_graph *g) {
    octet_model *m = calloc(1, sizeof *m); /* no file mapping: weights are never released */
    ck_assert_ptr_nonnull(m);
    m->graph = g;
    return m;
}

/* Runs m at `batch` on inputs given by name (names NULL: graph order). Returns 0 or -1 (err set). */
static int run_model(const octet_model *m, int batch, int n_in, const char *const *names, const octet_tensor *in,
                     octet_tensor *out, int *n_out, octet_error *err) {
    octet_session_options o = {.threads = 1, .batch = batch};
    octet_session *s = octet_session_create(m, &o, err);
    if (!s) return -1;
    *n_out = octet_session_output_count(s);
    int rc = octet_session_run(s, n_in, names, in, *n_out, NULL, out, err);
    octet_session_free(s);
    return rc;
}

static void assert_same(const octet_tensor *a, const octet_tensor *b, double rtol, const char *what) {
    ck_assert_msg(a->dtype == b->dtype, "%s: dtype %d vs %d", what, a->dtype, b->dtype);
    ck_assert_msg(a->rank == b->rank, "%s: rank %d vs %d", what, a->rank, b->rank);
    for (int d = 0; d < a->rank; d++)
        ck_assert_msg(a->dims[d] == b->dims[d], "%s: dim %d is %lld vs %lld", what, d, (long long)a->dims[d],
                      (long long)b->dims[d]);
    int64_t n = octet_tensor_numel(a);
    if (a->dtype != OCTET_FLOAT || rtol == 0) {
        ck_assert_msg(n == 0 || memcmp(a->data, b->data, (size_t)n * octet_dtype_size(a->dtype)) == 0,
                      "%s: outputs differ", what);
        return;
    }
    const float *x = a->data, *y = b->data;
    for (int64_t i = 0; i < n; i++) {
        int same_nan = isnan(x[i]) && isnan(y[i]);
        ck_assert_msg(same_nan || fabs((double)x[i] - y[i]) <= rtol * fabs((double)x[i]) + 1e-7,
                      "%s: element %lld is %.9g vs %.9g", what, (long long)i, (double)x[i], (double)y[i]);
    }
}

static void release_all(octet_tensor *t, int n) {
    for (int i = 0; i < n; i++) octet_tensor_release(&t[i]);
}

/* How many nodes of op_type the model at path holds. */
static int count_op(const oct_graph *g, const char *op_type) {
    int c = 0;
    for (int i = 0; i < g->n_nodes; i++) c += strcmp(g->nodes[i].op_type, op_type) == 0;
    return c;
}

static Onnx__ModelProto *unpack_file(const char *path) {
    void *bytes = NULL;
    size_t size = 0;
    octet_error err = {0};
    ck_assert_msg(oct_read_file(path, (size_t)1 << 30, &bytes, &size, &err) == 0, "%s", err.msg);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, bytes);
    free(bytes);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* ---- round trip of ONNX node tests ---- */

#define MAX_IO 16

typedef struct {
    int n_in, n_out;
    octet_tensor in[MAX_IO], ref[MAX_IO];
} test_data;

static void read_test_data(const char *dir, test_data *d) {
    memset(d, 0, sizeof *d);
    char path[1024];
    octet_error err = {0};
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < MAX_IO; i++) {
            snprintf(path, sizeof path, "%s/test_data_set_0/%s_%d.pb", dir, kind ? "output" : "input", i);
            if (access(path, R_OK)) break;
            octet_tensor *t = kind ? &d->ref[d->n_out++] : &d->in[d->n_in++];
            ck_assert_msg(oct_tensor_pb_read(path, t, NULL, &err) == 0, "%s: %s", path, err.msg);
        }
    }
}

static void free_test_data(test_data *d) {
    for (int i = 0; i < d->n_in; i++) free(d->in[i].data);
    for (int i = 0; i < d->n_out; i++) free(d->ref[i].data);
}

/* Plans the model for the test's input shapes, binding the inputs whose values shape inference needs. */
static oct_plan *plan_for(const oct_graph *g, const test_data *d, octet_error *err) {
    oct_shape shapes[MAX_IO];
    const octet_tensor *values[MAX_IO] = {0};
    if (g->n_inputs > d->n_in) {
        oct_fail(err, OCTET_ERR_ARG, "model has %d inputs, test data %d", g->n_inputs, d->n_in);
        return NULL;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        shapes[i].rank = d->in[i].rank;
        memcpy(shapes[i].dims, d->in[i].dims, sizeof shapes[i].dims);
    }
    /* binding one input may reveal that another one is needed too */
    for (int attempt = 0; attempt <= g->n_inputs; attempt++) {
        uint64_t needed = 0;
        oct_plan *p = oct_plan_build(g, shapes, values, 1, &needed, err);
        if (p || !needed) return p;
        for (int i = 0; i < g->n_inputs && i < 64; i++)
            if (needed & ((uint64_t)1 << i)) values[i] = &d->in[i];
    }
    return NULL;
}

/* Runs the written model: feeds each of its inputs the test tensor of the original input of that name. */
static void run_written(const octet_model *w, const oct_graph *orig, const test_data *d, octet_tensor *out,
                        int *n_out, const char *what) {
    const char *names[MAX_IO];
    octet_tensor in[MAX_IO];
    const oct_graph *g = w->graph;
    for (int i = 0; i < g->n_inputs; i++) {
        const char *name = g->values[g->inputs[i]].name;
        int k = 0;
        while (k < orig->n_inputs && strcmp(orig->values[orig->inputs[k]].name, name) != 0) k++;
        ck_assert_msg(k < orig->n_inputs, "%s: written input '%s' is not an input of the original", what, name);
        names[i] = name;
        in[i] = d->in[k];
    }
    octet_error err = {0};
    ck_assert_msg(run_model(w, 1, g->n_inputs, names, in, out, n_out, &err) == 0, "%s: running the written "
                  "model: %s", what, err.msg);
}

/* Returns 1 if the test ran (0: octet cannot run the original, skipped). */
static int roundtrip_node_test(const char *dir, int must_run) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    octet_error err = {0};
    octet_model *m0 = octet_model_load(path, &err);
    if (m0 && oct_model_keep_weights(m0, &err)) ck_abort_msg("%s", err.msg); /* graph read directly */
    if (!m0) {
        ck_assert_msg(!must_run, "%s: %s", path, err.msg);
        return 0;
    }
    test_data d;
    read_test_data(dir, &d);
    octet_tensor out0[MAX_IO], out1[MAX_IO], out2[MAX_IO];
    int n0 = 0, n1 = 0, n2 = 0;
    oct_plan *p = NULL;
    const int ran = run_model(m0, 1, d.n_in, NULL, d.in, out0, &n0, &err) == 0;
    if (!ran || !(p = plan_for(m0->graph, &d, &err))) {
        ck_assert_msg(!must_run, "%s: octet cannot run the original: %s", dir, err.msg);
        if (ran) release_all(out0, n0);
        free_test_data(&d);
        octet_model_free(m0);
        return 0;
    }
    /* to a file in the plan's execution order */
    char *tmp = tmp_model_path();
    ck_assert_msg(oct_onnx_write_nodes(p->g, p->exec, p->n_exec, tmp, &err) == 0, "%s: %s", dir, err.msg);
    octet_model *w1 = load_or_die(tmp);
    run_written(w1, m0->graph, &d, out1, &n1, dir);
    /* to memory in the writer's own order */
    void *bytes = NULL;
    size_t size = 0;
    ck_assert_msg(oct_onnx_serialize(p->g, NULL, 0, &bytes, &size, &err) == 0, "%s: %s", dir, err.msg);
    octet_model *w2 = octet_model_load_memory(bytes, size, NULL, &err);
    ck_assert_msg(w2 != NULL, "%s: reloading the serialised model: %s", dir, err.msg);
    run_written(w2, m0->graph, &d, out2, &n2, dir);

    ck_assert_msg(n1 == n0 && n2 == n0, "%s: %d outputs, written %d / %d", dir, n0, n1, n2);
    for (int i = 0; i < n0; i++) {
        char what[1200];
        snprintf(what, sizeof what, "%s output %d", dir, i);
        assert_same(&out0[i], &out1[i], 0, what);
        assert_same(&out0[i], &out2[i], 0, what);
    }
    release_all(out0, n0);
    release_all(out1, n1);
    release_all(out2, n2);
    free(bytes);
    unlink(tmp);
    free(tmp);
    octet_model_free(w1);
    octet_model_free(w2);
    oct_plan_free(p);
    free_test_data(&d);
    octet_model_free(m0);
    return 1;
}

START_TEST(named_node_tests_round_trip) {
    static const char *const tests[] = {
        "test_conv_with_strides_padding", "test_maxpool_2d_pads", "test_gemm_default_single_elem_vector_bias",
        "test_resize_upsample_scales_linear", "test_clip", "test_leakyrelu", "test_argmax_keepdims_example",
        "test_maxpool_with_argmax_2d_precomputed_pads", "test_batchnorm_epsilon", "test_constantofshape_int_zeros",
        "test_split_equal_parts_1d", "test_reshape_reordered_all_dims",
    };
    char dir[1024];
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        snprintf(dir, sizeof dir, "%s/onnx-node-tests/%s", test_shared_dir(), tests[i]);
        struct stat st;
        ck_assert_msg(stat(dir, &st) == 0, "missing node test %s", dir);
        ran += roundtrip_node_test(dir, 1);
    }
    ck_assert_int_eq(ran, (int)(sizeof tests / sizeof tests[0]));
}
END_TEST

/* Every node test octet runs must survive the round trip unchanged. */
START_TEST(all_node_tests_round_trip) {
    const char *sets[] = {"onnx-node-tests", "onnx-node-tests-supplement"};
    int ran = 0, seen = 0;
    for (int s = 0; s < 2; s++) {
        char root[1024];
        snprintf(root, sizeof root, "%s/%s", test_shared_dir(), sets[s]);
        DIR *dh = opendir(root);
        if (!dh) continue;
        struct dirent *e;
        while ((e = readdir(dh))) {
            if (strncmp(e->d_name, "test_", 5) != 0 && strncmp(e->d_name, "supp_", 5) != 0) continue;
            char dir[2048];
            snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
            seen++;
            if (roundtrip_node_test(dir, 0)) ran++;
            else fprintf(stderr, "writer: skipped %s: octet does not run it\n", e->d_name);
        }
        closedir(dh);
    }
    fprintf(stderr, "writer: %d of %d node tests round-tripped\n", ran, seen);
    ck_assert_msg(seen > 300 && ran > seen * 9 / 10, "only %d of %d node tests ran", ran, seen);
}
END_TEST

/* ---- the fused CNN ---- */

static void random_tensor(octet_tensor *t, int batch, unsigned seed) {
    t->dtype = OCTET_FLOAT;
    t->rank = 4;
    int64_t dims[4] = {batch, 1, 128, 128};
    memcpy(t->dims, dims, sizeof dims);
    int64_t n = octet_tensor_numel(t);
    float *x = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 65535.f;
    }
    t->data = x;
}

START_TEST(fused_cnn_round_trip) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/brain_tumor_cnn.onnx", test_source_root());
    octet_model *m0 = load_or_die(path);
    octet_error err = {0};
    oct_plan *p = oct_plan_build(m0->graph, NULL, NULL, 2, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    /* the plan must really hold fused nodes, or this test proves nothing */
    int with_act = 0, with_residual = 0;
    for (int k = 0; k < p->n_exec; k++) {
        const oct_node *n = &p->g->nodes[p->exec[k]];
        with_act += n->epi.act == OCT_ACT_RELU;
        with_residual += n->epi.residual >= 0;
    }
    ck_assert_int_gt(with_act, 0);
    ck_assert_int_gt(with_residual, 0);

    char *tmp = tmp_model_path();
    ck_assert_msg(oct_onnx_write(p->g, tmp, &err) == 0, "%s", err.msg);
    octet_model *w = load_or_die(tmp);
    const oct_graph *g0 = m0->graph, *g1 = w->graph;
    ck_assert_int_eq(count_op(g1, "BatchNormalization"), 0);
    ck_assert_int_eq(count_op(g1, "Relu"), count_op(g0, "Relu"));
    ck_assert_int_eq(count_op(g1, "Add"), count_op(g0, "Add"));
    ck_assert_int_eq(count_op(g1, "Conv"), count_op(g0, "Conv"));

    /* the batch stays symbolic: run at the planned batch and at two others */
    const int batches[] = {2, 1, 3};
    for (int b = 0; b < 3; b++) {
        octet_tensor x, y0[1], y1[1];
        int n0 = 0, n1 = 0;
        random_tensor(&x, batches[b], 7u + (unsigned)b);
        ck_assert_msg(run_model(m0, batches[b], 1, NULL, &x, y0, &n0, &err) == 0, "%s", err.msg);
        ck_assert_msg(run_model(w, batches[b], 1, NULL, &x, y1, &n1, &err) == 0, "batch %d: %s", batches[b],
                      err.msg);
        ck_assert_int_eq(n0, 1);
        ck_assert_int_eq(n1, 1);
        ck_assert_int_eq(y1[0].dims[0], batches[b]);
        assert_same(&y0[0], &y1[0], 1e-6, "brain_tumor_cnn logits");
        release_all(y0, n0);
        release_all(y1, n1);
        free(x.data);
    }
    /* the file says so too: batch named on the input and the output */
    Onnx__ModelProto *m = unpack_file(tmp);
    ck_assert_int_eq(m->ir_version, 8);
    ck_assert_str_eq(m->producer_name, "octet");
    ck_assert_str_eq(m->producer_version, octet_version());
    ck_assert_int_eq((int)m->n_opset_import, 1);
    ck_assert_int_eq(m->opset_import[0]->version, 13);
    const Onnx__GraphProto *gp = m->graph;
    ck_assert_int_eq((int)gp->n_input, 1);
    ck_assert_int_eq((int)gp->n_output, 1);
    const Onnx__TensorShapeProto__Dimension *din = gp->input[0]->type->tensor_type->shape->dim[0];
    const Onnx__TensorShapeProto__Dimension *dout = gp->output[0]->type->tensor_type->shape->dim[0];
    ck_assert_int_eq(din->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
    ck_assert_str_eq(din->dim_param, "batch");
    ck_assert_int_eq(dout->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
    ck_assert_str_eq(dout->dim_param, "batch");
    ck_assert_int_eq(gp->output[0]->type->tensor_type->shape->dim[1]->dim_value, 4);
    for (size_t i = 0; i < gp->n_initializer; i++) ck_assert(gp->initializer[i]->has_raw_data);
    onnx__model_proto__free_unpacked(m, NULL);

    unlink(tmp);
    free(tmp);
    octet_model_free(w);
    oct_plan_free(p);
    octet_model_free(m0);
}
END_TEST

/* ---- hand-built graphs ---- */

static int add_input(oct_graph *g, const char *name, int rank, const int64_t *dims, const char *batch_param) {
    int v = oct_graph_add_value(g, name, NULL);
    ck_assert_int_ge(v, 0);
    oct_value *val = &g->values[v];
    val->kind = OCT_VAL_INPUT;
    val->dtype = OCTET_FLOAT;
    val->rank = rank;
    memcpy(val->dims, dims, (size_t)rank * sizeof(int64_t));
    if (batch_param) {
        val->dims[0] = -1;
        val->dim_params[0] = strdup(batch_param);
    }
    int *in = realloc(g->inputs, ((size_t)g->n_inputs + 1) * sizeof(int));
    ck_assert_ptr_nonnull(in);
    g->inputs = in;
    g->inputs[g->n_inputs++] = v;
    return v;
}

static int add_const(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims, unsigned seed,
                     float lo, float hi) {
    int v = oct_graph_add_value(g, name, NULL);
    ck_assert_int_ge(v, 0);
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d];
    void *data = malloc((size_t)n * octet_dtype_size(dt) + 1);
    ck_assert_ptr_nonnull(data);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        float f = lo + (hi - lo) * (float)((seed >> 8) & 0xffff) / 65535.f;
        if (dt == OCTET_FLOAT) ((float *)data)[i] = f;
        else memset((char *)data + i * (int64_t)octet_dtype_size(dt), (int)i, octet_dtype_size(dt));
    }
    oct_value_set_const(&g->values[v], dt, rank, dims, data);
    return v;
}

static int add_node(oct_graph *g, const char *name, const char *op, const char *domain, int n_in, const int *in,
                    int n_out, const char *const *out_names) {
    int i = oct_graph_add_node(g, name, op, domain, n_in, n_out, NULL);
    ck_assert_int_ge(i, 0);
    memcpy(g->nodes[i].in, in, (size_t)n_in * sizeof(int));
    for (int j = 0; j < n_out; j++) {
        int v = oct_graph_add_value(g, out_names[j], NULL);
        ck_assert_int_ge(v, 0);
        g->nodes[i].out[j] = v;
        g->values[v].producer = i;
    }
    return i;
}

static oct_attr *new_attr(oct_node *n, const char *name, oct_attr_type type) {
    oct_attr *a = realloc(n->attrs, ((size_t)n->n_attr + 1) * sizeof *a);
    ck_assert_ptr_nonnull(a);
    n->attrs = a;
    a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = type;
    return a;
}

static void attr_ints(oct_node *n, const char *name, int cnt, const int64_t *v) {
    oct_attr *a = new_attr(n, name, OCT_ATTR_INTS);
    a->n = cnt;
    a->ints = malloc((size_t)cnt * sizeof(int64_t) + 1);
    memcpy(a->ints, v, (size_t)cnt * sizeof(int64_t));
}

static void set_output(oct_graph *g, int v) {
    int *o = realloc(g->outputs, ((size_t)g->n_outputs + 1) * sizeof(int));
    ck_assert_ptr_nonnull(o);
    g->outputs = o;
    g->outputs[g->n_outputs++] = v;
    g->values[v].is_output = true;
}

static void finish_graph(oct_graph *g, int64_t opset) {
    g->opset = opset;
    g->name = strdup("hand_built");
    octet_error err = {0};
    ck_assert_msg(oct_graph_toposort(g, &err) == 0, "%s", err.msg);
}

/* x[N,2,5,5] -> Conv(3x3, pads 1) -> BatchNormalization -> Add(., x) -> Clip(0, 6) -> y */
static oct_graph *conv_bn_graph(void) {
    oct_graph *g = oct_graph_new();
    ck_assert_ptr_nonnull(g);
    const int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {2, 2, 3, 3}, cd[1] = {2}, scalar[1] = {0};
    int x = add_input(g, "x", 4, xd, "N");
    int w = add_const(g, "w", OCTET_FLOAT, 4, wd, 1, -1, 1), b = add_const(g, "b", OCTET_FLOAT, 1, cd, 2, -1, 1);
    int sc = add_const(g, "scale", OCTET_FLOAT, 1, cd, 3, 0.5f, 2), sh = add_const(g, "shift", OCTET_FLOAT, 1, cd, 4, -1, 1);
    int mu = add_const(g, "mean", OCTET_FLOAT, 1, cd, 5, -1, 1), var = add_const(g, "var", OCTET_FLOAT, 1, cd, 6, 0.5f, 2);
    int lo = add_const(g, "lo", OCTET_FLOAT, 0, scalar, 0, 0, 0), hi = add_const(g, "hi", OCTET_FLOAT, 0, scalar, 0, 6, 6);
    const char *c_out[] = {"c"}, *bn_out[] = {"bn"}, *a_out[] = {"a"}, *y_out[] = {"y"};
    int ci = add_node(g, "conv", "Conv", "", 3, (int[]){x, w, b}, 1, c_out);
    const int64_t pads[4] = {1, 1, 1, 1};
    attr_ints(&g->nodes[ci], "pads", 4, pads);
    int bi = add_node(g, "bn", "BatchNormalization", "", 5, (int[]){g->nodes[ci].out[0], sc, sh, mu, var}, 1, bn_out);
    new_attr(&g->nodes[bi], "epsilon", OCT_ATTR_FLOAT)->f = 1e-3f;
    int ai = add_node(g, "add", "Add", "", 2, (int[]){g->nodes[bi].out[0], x}, 1, a_out);
    int yi = add_node(g, "clip", "Clip", "", 3, (int[]){g->nodes[ai].out[0], lo, hi}, 1, y_out);
    set_output(g, g->nodes[yi].out[0]);
    finish_graph(g, 13);
    return g;
}

static octet_tensor random_input(int rank, const int64_t *dims, unsigned seed) {
    octet_tensor t = {OCTET_FLOAT, rank, {0}, NULL};
    memcpy(t.dims, dims, (size_t)rank * sizeof(int64_t));
    int64_t n = octet_tensor_numel(&t);
    float *x = malloc((size_t)n * sizeof(float) + 1);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = 8.f * (float)((seed >> 8) & 0xffff) / 65535.f - 4.f;
    }
    t.data = x;
    return t;
}

START_TEST(batchnorm_residual_clip_symbolic_batch) {
    octet_model *m0 = wrap_graph(conv_bn_graph());
    octet_error err = {0};
    oct_plan *p = oct_plan_build(m0->graph, NULL, NULL, 1, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    ck_assert_int_eq(p->n_exec, 1); /* Conv with BN folded, the Add and the Clip in its epilogue */
    const oct_node *conv = &p->g->nodes[p->exec[0]];
    ck_assert_int_eq(conv->epi.act, OCT_ACT_CLIP);
    ck_assert_int_ge(conv->epi.residual, 0);

    char *tmp = tmp_model_path();
    ck_assert_msg(oct_onnx_write(p->g, tmp, &err) == 0, "%s", err.msg);
    octet_model *w = load_or_die(tmp);
    const oct_graph *g = w->graph;
    ck_assert_int_eq(g->n_nodes, 3);
    ck_assert_int_eq(count_op(g, "BatchNormalization"), 0);
    ck_assert_int_eq(count_op(g, "Conv"), 1);
    ck_assert_int_eq(count_op(g, "Add"), 1);
    ck_assert_int_eq(count_op(g, "Clip"), 1);
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *n = &g->nodes[i];
        if (strcmp(n->op_type, "Clip") == 0) {
            ck_assert_int_eq(n->n_in, 3); /* opset 13: bounds as constant inputs */
            ck_assert_int_eq(g->values[n->in[1]].kind, OCT_VAL_CONST);
            ck_assert(*(const float *)g->values[n->in[1]].data == 0.f);
            ck_assert(*(const float *)g->values[n->in[2]].data == 6.f);
            ck_assert_str_eq(g->values[n->out[0]].name, "y"); /* the last node writes the original output */
        }
        if (strcmp(n->op_type, "Conv") == 0) {
            ck_assert_str_eq(n->name, "conv");
            ck_assert_int_eq(oct_node_attr(n, "pads")->n, 4);
        }
    }
    ck_assert_str_eq(g->values[g->inputs[0]].dim_params[0], "N");

    for (int b = 1; b <= 3; b += 2) {
        const int64_t xd[4] = {b, 2, 5, 5};
        octet_tensor x = random_input(4, xd, 11u * (unsigned)b), y0[1], y1[1];
        int n0 = 0, n1 = 0;
        ck_assert_msg(run_model(m0, b, 1, NULL, &x, y0, &n0, &err) == 0, "%s", err.msg);
        ck_assert_msg(run_model(w, b, 1, NULL, &x, y1, &n1, &err) == 0, "batch %d: %s", b, err.msg);
        ck_assert_int_eq(y1[0].dims[0], b);
        assert_same(&y0[0], &y1[0], 1e-6, "conv+bn+add+clip");
        release_all(y0, n0);
        release_all(y1, n1);
        free(x.data);
    }
    unlink(tmp);
    free(tmp);
    octet_model_free(w);
    oct_plan_free(p);
    octet_model_free(m0);
}
END_TEST

/* x[2,3] @ w[3,4] with a hand-set epilogue (and residual r), run before and after writing. */
typedef struct {
    oct_act_kind act;
    float alpha, beta;
    const char *op;   /* the op the activation must come back as */
    int extra_nodes;  /* nodes besides MatMul and the residual Add */
} epi_case;

static void epilogue_case(const epi_case *ec, int64_t opset, int residual) {
    oct_graph *g = oct_graph_new();
    const int64_t xd[2] = {2, 3}, wd[2] = {3, 4}, rd[2] = {2, 4};
    int x = add_input(g, "x", 2, xd, NULL), r = add_input(g, "r", 2, rd, NULL);
    int wv = add_const(g, "w", OCTET_FLOAT, 2, wd, 9, -2, 2);
    const char *y_out[] = {"y"};
    int mi = add_node(g, "mm", "MatMul", "", 2, (int[]){x, wv}, 1, y_out);
    g->nodes[mi].epi = (oct_epilogue){ec->act, ec->alpha, ec->beta, residual ? r : -1};
    set_output(g, g->nodes[mi].out[0]);
    finish_graph(g, opset);
    octet_model *m0 = wrap_graph(g);
    octet_error err = {0};
    oct_plan *p = oct_plan_build(g, NULL, NULL, 1, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    void *bytes = NULL;
    size_t size = 0;
    ck_assert_msg(oct_onnx_serialize(p->g, p->exec, p->n_exec, &bytes, &size, &err) == 0, "%s", err.msg);
    octet_model *w = octet_model_load_memory(bytes, size, NULL, &err);
    ck_assert_msg(w != NULL, "act %d opset %lld: %s", ec->act, (long long)opset, err.msg);
    const oct_graph *g1 = w->graph;
    ck_assert_int_eq(g1->n_nodes, 1 + residual + ec->extra_nodes);
    ck_assert_int_eq(count_op(g1, "MatMul"), 1);
    ck_assert_int_eq(count_op(g1, "Add"), residual);
    if (ec->op) ck_assert_msg(count_op(g1, ec->op) == 1, "act %d opset %lld: no %s", ec->act, (long long)opset, ec->op);
    ck_assert_int_eq(g1->n_inputs, 2);

    octet_tensor in[2] = {random_input(2, xd, 3), random_input(2, rd, 4)}, y0[1], y1[1];
    int n0 = 0, n1 = 0;
    ck_assert_msg(run_model(m0, 1, 2, NULL, in, y0, &n0, &err) == 0, "%s", err.msg);
    ck_assert_msg(run_model(w, 1, 2, NULL, in, y1, &n1, &err) == 0, "act %d opset %lld: %s", ec->act, (long long)opset,
                  err.msg);
    /* SiLU and the HardSwish of old opsets round differently once split into two nodes */
    assert_same(&y0[0], &y1[0], 1e-6, ec->op ? ec->op : "epilogue");
    release_all(y0, n0);
    release_all(y1, n1);
    free(in[0].data);
    free(in[1].data);
    free(bytes);
    octet_model_free(w);
    oct_plan_free(p);
    octet_model_free(m0);
}

START_TEST(every_epilogue_kind) {
    const epi_case cases[] = {
        {OCT_ACT_NONE, 0, 0, NULL, 0},
        {OCT_ACT_RELU, 0, 0, "Relu", 1},
        {OCT_ACT_CLIP, -1.f, 2.f, "Clip", 1},
        {OCT_ACT_CLIP, -INFINITY, 1.5f, "Clip", 1},
        {OCT_ACT_CLIP, 0.25f, INFINITY, "Clip", 1},
        {OCT_ACT_LEAKY_RELU, 0.1f, 0, "LeakyRelu", 1},
        {OCT_ACT_SIGMOID, 0, 0, "Sigmoid", 1},
        {OCT_ACT_SILU, 0, 0, "Sigmoid", 2},
        {OCT_ACT_HARD_SIGMOID, 0.3f, 0.4f, "HardSigmoid", 1},
        {OCT_ACT_TANH, 0, 0, "Tanh", 1},
    };
    const int64_t opsets[] = {10, 13, 14};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int o = 0; o < 3; o++)
            for (int res = 0; res < 2; res++) {
                if (cases[i].act == OCT_ACT_NONE && !res) continue; /* no epilogue at all */
                epilogue_case(&cases[i], opsets[o], res);
            }
    const epi_case hs_new = {OCT_ACT_HARD_SWISH, 0, 0, "HardSwish", 1};
    const epi_case hs_old = {OCT_ACT_HARD_SWISH, 0, 0, "HardSigmoid", 2};
    for (int res = 0; res < 2; res++) {
        epilogue_case(&hs_new, 14, res);
        epilogue_case(&hs_old, 13, res);
    }
}
END_TEST

/* ---- attributes, domains, model fields ---- */

START_TEST(attributes_round_trip) {
    oct_graph *g = oct_graph_new();
    const int64_t xd[2] = {2, 3};
    int x = add_input(g, "x", 2, xd, "batch");
    const char *h_out[] = {"h", "h_unused"}, *z_out[] = {"z"};
    int hi = add_node(g, "holder", "AttrHolder", "", 1, (int[]){x}, 2, h_out);
    oct_node *n = &g->nodes[hi];
    new_attr(n, "f", OCT_ATTR_FLOAT)->f = 2.5f;
    new_attr(n, "i", OCT_ATTR_INT)->i = -1234567890123LL;
    new_attr(n, "s", OCT_ATTR_STRING)->s = strdup("constant");
    oct_attr *ta = new_attr(n, "t", OCT_ATTR_TENSOR);
    ta->t = calloc(1, sizeof *ta->t);
    ta->t->dtype = OCTET_INT64;
    ta->t->rank = 1;
    ta->t->dims[0] = 3;
    ta->t->data = malloc(3 * sizeof(int64_t));
    memcpy(ta->t->data, (int64_t[]){4, -5, 6}, 3 * sizeof(int64_t));
    oct_attr *fa = new_attr(n, "fs", OCT_ATTR_FLOATS);
    fa->n = 2;
    fa->floats = malloc(2 * sizeof(float));
    fa->floats[0] = -0.5f;
    fa->floats[1] = 1e30f;
    attr_ints(n, "is", 3, (const int64_t[]){1, -2, 3});
    oct_attr *sa = new_attr(n, "ss", OCT_ATTR_STRINGS);
    sa->n = 2;
    sa->strings = calloc(3, sizeof(char *));
    sa->strings[0] = strdup("a");
    sa->strings[1] = strdup("");
    new_attr(n, "empty_ints", OCT_ATTR_INTS);
    /* a com.microsoft node reading the first output; the second output is never read */
    int zi = add_node(g, "ms", "MsThing", "com.microsoft", 1, (int[]){g->nodes[hi].out[0]}, 1, z_out);
    set_output(g, g->nodes[zi].out[0]);
    finish_graph(g, 15);

    octet_error err = {0};
    void *bytes = NULL;
    size_t size = 0;
    ck_assert_msg(oct_onnx_serialize(g, NULL, 0, &bytes, &size, &err) == 0, "%s", err.msg);
    oct_graph *g2 = oct_onnx_parse(bytes, size, NULL, &err);
    ck_assert_msg(g2 != NULL, "%s", err.msg);
    ck_assert_int_eq(g2->opset, 15);
    ck_assert_int_eq(g2->ms_opset, 1);
    ck_assert_str_eq(g2->name, "hand_built");
    ck_assert_int_eq(g2->n_nodes, 2);
    const oct_node *h = &g2->nodes[0];
    ck_assert_str_eq(h->name, "holder");
    ck_assert_str_eq(g2->nodes[1].name, "ms");
    ck_assert_str_eq(g2->nodes[1].domain, "com.microsoft");
    ck_assert_int_eq(h->n_out, 2);
    ck_assert_str_eq(g2->values[h->out[1]].name, "h_unused");
    ck_assert_int_eq(h->n_attr, 8);
    ck_assert(oct_attr_float(h, "f", 0) == 2.5f);
    ck_assert_int_eq(oct_attr_int(h, "i", 0), -1234567890123LL);
    ck_assert_str_eq(oct_attr_string(h, "s", ""), "constant");
    const oct_attr *t = oct_node_attr(h, "t");
    ck_assert_int_eq(t->type, OCT_ATTR_TENSOR);
    ck_assert_int_eq(t->t->dtype, OCTET_INT64);
    ck_assert_int_eq(t->t->rank, 1);
    ck_assert_int_eq(t->t->dims[0], 3);
    ck_assert_int_eq(((int64_t *)t->t->data)[1], -5);
    const oct_attr *fs = oct_node_attr(h, "fs");
    ck_assert_int_eq(fs->type, OCT_ATTR_FLOATS);
    ck_assert_int_eq(fs->n, 2);
    ck_assert(fs->floats[0] == -0.5f && fs->floats[1] == 1e30f);
    int64_t is[4];
    ck_assert_int_eq(oct_attr_ints(h, "is", is, 4, NULL), 3);
    ck_assert(is[0] == 1 && is[1] == -2 && is[2] == 3);
    const oct_attr *ss = oct_node_attr(h, "ss");
    ck_assert_int_eq(ss->type, OCT_ATTR_STRINGS);
    ck_assert_int_eq(ss->n, 2);
    ck_assert_str_eq(ss->strings[0], "a");
    ck_assert_str_eq(ss->strings[1], "");
    ck_assert_int_eq(oct_node_attr(h, "empty_ints")->type, OCT_ATTR_INTS);
    ck_assert_int_eq(oct_node_attr(h, "empty_ints")->n, 0);
    /* the symbolic input keeps its name; an unplanned output has no type to write */
    ck_assert_str_eq(g2->values[g2->inputs[0]].dim_params[0], "batch");
    ck_assert_int_eq(g2->values[g2->inputs[0]].dims[1], 3);
    oct_graph_free(g2);
    free(bytes);

    /* an octet-domain node brings the octet opset import */
    oct_graph_free(g);
    g = oct_graph_new();
    x = add_input(g, "x", 2, xd, NULL);
    const char *o_out[] = {"o"};
    int oi = add_node(g, "lut", "QLinearLut", "octet", 1, (int[]){x}, 1, o_out);
    set_output(g, g->nodes[oi].out[0]);
    finish_graph(g, 17);
    ck_assert_msg(oct_onnx_serialize(g, NULL, 0, &bytes, &size, &err) == 0, "%s", err.msg);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, bytes);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq((int)m->n_opset_import, 2);
    ck_assert_str_eq(m->opset_import[1]->domain, "octet");
    ck_assert_int_eq(m->opset_import[1]->version, 1);
    ck_assert_str_eq(m->graph->node[0]->domain, "octet");
    onnx__model_proto__free_unpacked(m, NULL);
    free(bytes);
    oct_graph_free(g);
}
END_TEST

/* ---- errors ---- */

START_TEST(errors_name_the_culprit) {
    oct_graph *g = conv_bn_graph();
    octet_error err = {0};
    /* a path that cannot be opened */
    ck_assert_int_eq(oct_onnx_write(g, "/nonexistent-dir/model.onnx", &err), -1);
    ck_assert_int_eq(err.code, OCTET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent-dir/model.onnx"));

    /* an explicit order with a node before the one producing its input */
    void *bytes = NULL;
    size_t size = 0;
    const int bad_order[] = {g->order[1], g->order[0]};
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(oct_onnx_serialize(g, bad_order, 2, &bytes, &size, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, g->nodes[bad_order[0]].name));
    ck_assert_ptr_null(bytes);
    /* out-of-range and repeated entries */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(oct_onnx_serialize(g, (const int[]){g->order[0], 99}, 2, &bytes, &size, &err), -1);
    ck_assert_int_eq(err.code, OCTET_ERR_ARG);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(oct_onnx_serialize(g, (const int[]){g->order[0], g->order[0]}, 2, &bytes, &size, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    /* dead nodes are skipped by default, so the output is then produced by nobody */
    g->nodes[g->order[3]].dead = true;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(oct_onnx_serialize(g, NULL, 0, &bytes, &size, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'y'"));
    g->nodes[g->order[3]].dead = false;

    /* a constant of a data type octet does not write (float64) */
    int v = oct_graph_find_value(g, "w");
    g->values[v].dtype = (octet_dtype)11;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(oct_onnx_serialize(g, NULL, 0, &bytes, &size, &err), -1);
    ck_assert_int_eq(err.code, OCTET_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "'w'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "'conv'"));
    g->values[v].dtype = OCTET_FLOAT;

    /* a fused epilogue on an int8 output has no standard form */
    oct_graph *q = oct_graph_new();
    const int64_t xd[2] = {2, 3};
    int x = add_input(q, "x", 2, xd, NULL);
    const char *o_out[] = {"o"};
    int qi = add_node(q, "qnode", "QThing", "com.microsoft", 1, (int[]){x}, 1, o_out);
    q->values[q->nodes[qi].out[0]].dtype = OCTET_UINT8;
    q->nodes[qi].epi.act = OCT_ACT_RELU;
    set_output(q, q->nodes[qi].out[0]);
    finish_graph(q, 13);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(oct_onnx_serialize(q, NULL, 0, &bytes, &size, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'qnode'"));
    oct_graph_free(q);

    /* the graph is still writable after all that */
    memset(&err, 0, sizeof err);
    ck_assert_msg(oct_onnx_serialize(g, NULL, 0, &bytes, &size, &err) == 0, "%s", err.msg);
    ck_assert_uint_gt(size, 0);
    free(bytes);
    oct_graph_free(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("writer");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, named_node_tests_round_trip);
    tcase_add_test(tc, fused_cnn_round_trip);
    tcase_add_test(tc, batchnorm_residual_clip_symbolic_batch);
    tcase_add_test(tc, every_epilogue_kind);
    tcase_add_test(tc, attributes_round_trip);
    tcase_add_test(tc, errors_name_the_culprit);
    tcase_add_test(tc, all_node_tests_round_trip);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
