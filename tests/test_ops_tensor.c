/* Tensor op family (data movement and shapes): each test builds a one-node graph by hand, runs
   the op's infer and run, and compares with values computed independently here (by naive index
   arithmetic or from the ONNX operator documentation's examples). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "test_session.h"

/* ---- a one-node harness ---- */

typedef struct {
    oct_graph *g;
    oct_tensor *t; /* bound tensors, one per value (run-time inputs and outputs) */
    int node;
    int threads;
    octet_error err;
} harness;

static harness *h_new(int opset) {
    harness *h = calloc(1, sizeof *h);
    h->g = oct_graph_new();
    h->g->opset = opset;
    h->node = -1;
    h->threads = 1;
    return h;
}

static int h_value(harness *h, const char *name, octet_dtype dt, int rank, const int64_t *dims,
                   const void *data, oct_value_kind kind) {
    int v = oct_graph_add_value(h->g, name, NULL);
    ck_assert_int_ge(v, 0);
    oct_value *val = &h->g->values[v];
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    size_t bytes = (size_t)n * octet_dtype_size(dt);
    void *copy = malloc(bytes + 1);
    if (bytes && data) memcpy(copy, data, bytes);
    else if (bytes) memset(copy, 0, bytes);
    if (kind == OCT_VAL_CONST) {
        oct_value_set_const(val, dt, rank, dims, copy);
    } else {
        val->kind = kind;
        val->dtype = dt;
        val->rank = rank;
        for (int i = 0; i < rank; i++) val->dims[i] = dims[i];
        val->data = copy; /* run-time data of an input; freed by h_free */
    }
    return v;
}

/* A run-time input (data bound only at run). */
static int h_input(harness *h, const char *name, octet_dtype dt, int rank, const int64_t *dims,
                   const void *data) {
    return h_value(h, name, dt, rank, dims, data, OCT_VAL_INPUT);
}

/* A constant (initializer). */
static int h_const(harness *h, const char *name, octet_dtype dt, int rank, const int64_t *dims,
                   const void *data) {
    return h_value(h, name, dt, rank, dims, data, OCT_VAL_CONST);
}

static int h_ints(harness *h, const char *name, int count, const int64_t *vals) {
    int64_t d = count;
    return h_const(h, name, OCTET_INT64, 1, &d, vals);
}

/* Adds the node; inputs given as value indices (-1: omitted); outputs named y0, y1, ... */
static oct_node *h_node(harness *h, const char *op, int n_in, const int *in, int n_out) {
    h->node = oct_graph_add_node(h->g, "node", op, "", n_in, n_out, NULL);
    ck_assert_int_ge(h->node, 0);
    oct_node *n = &h->g->nodes[h->node];
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    for (int i = 0; i < n_out; i++) {
        char name[16];
        snprintf(name, sizeof name, "y%d", i);
        int v = oct_graph_add_value(h->g, name, NULL);
        n = &h->g->nodes[h->node];
        n->out[i] = v;
    }
    return n;
}

static oct_attr *h_attr(harness *h, const char *name, oct_attr_type type) {
    oct_node *n = &h->g->nodes[h->node];
    n->attrs = realloc(n->attrs, (size_t)(n->n_attr + 1) * sizeof(oct_attr));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = type;
    return a;
}

static void h_attr_int(harness *h, const char *name, int64_t v) { h_attr(h, name, OCT_ATTR_INT)->i = v; }
static void h_attr_float(harness *h, const char *name, float v) { h_attr(h, name, OCT_ATTR_FLOAT)->f = v; }
static void h_attr_str(harness *h, const char *name, const char *s) {
    h_attr(h, name, OCT_ATTR_STRING)->s = strdup(s);
}
static void h_attr_ints(harness *h, const char *name, int count, const int64_t *v) {
    oct_attr *a = h_attr(h, name, OCT_ATTR_INTS);
    a->n = count;
    a->ints = malloc(sizeof(int64_t) * (size_t)(count + 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

/* infer only; returns 0 or -1 (message in h->err). */
static int h_infer(harness *h) {
    oct_node *n = &h->g->nodes[h->node];
    const oct_op *op = oct_op_find(n->domain, n->op_type);
    ck_assert_msg(op != NULL, "op %s is not registered", n->op_type);
    n->op = op;
    memset(&h->err, 0, sizeof h->err);
    return op->infer(h->g, n, &h->err);
}

/* infer, allocate outputs, run. */
static int h_run(harness *h) {
    if (h_infer(h)) return -1;
    oct_node *n = &h->g->nodes[h->node];
    free(h->t);
    h->t = calloc((size_t)h->g->n_values, sizeof(oct_tensor));
    for (int v = 0; v < h->g->n_values; v++) {
        oct_value *val = &h->g->values[v];
        h->t[v] = oct_value_tensor(val);
    }
    for (int i = 0; i < n->n_out; i++) {
        if (n->out[i] < 0) continue;
        oct_value *val = &h->g->values[n->out[i]];
        int64_t cnt = oct_value_numel(val);
        ck_assert_int_ge(cnt, 0);
        /* Poison the output so that elements the op forgets to write show up. */
        size_t bytes = (size_t)cnt * octet_dtype_size(val->dtype);
        h->t[n->out[i]].data = malloc(bytes + 1);
        memset(h->t[n->out[i]].data, 0xA5, bytes + 1);
    }
    oct_run_ctx ctx = {h->g, h->t, NULL, h->threads, NULL};
    return n->op->run(&ctx, n, &h->err);
}

static oct_tensor *h_out(harness *h, int i) {
    return &h->t[h->g->nodes[h->node].out[i]];
}

static void h_free(harness *h) {
    oct_node *n = &h->g->nodes[h->node];
    for (int i = 0; h->t && i < n->n_out; i++)
        if (n->out[i] >= 0) free(h->t[n->out[i]].data);
    for (int v = 0; v < h->g->n_values; v++) {
        oct_value *val = &h->g->values[v];
        if (val->kind == OCT_VAL_INPUT) free(val->data);
        if (val->kind == OCT_VAL_INPUT) val->data = NULL;
    }
    free(h->t);
    oct_graph_free(h->g);
    free(h);
}

static void assert_dims(const oct_tensor *t, int rank, const int64_t *dims) {
    ck_assert_int_eq(t->rank, rank);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(t->dims[i], dims[i]);
}

static void assert_floats(const oct_tensor *t, const float *want, int64_t n, float tol) {
    ck_assert_int_eq(t->dtype, OCTET_FLOAT);
    ck_assert_int_eq(octet_tensor_numel(t), n);
    const float *got = t->data;
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol + 1e-4f * fabsf(want[i]),
                      "element %lld: got %g, want %g", (long long)i, got[i], want[i]);
}

static void assert_int64s(const oct_tensor *t, const int64_t *want, int64_t n) {
    ck_assert_int_eq(t->dtype, OCTET_INT64);
    ck_assert_int_eq(octet_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(((const int64_t *)t->data)[i], want[i]);
}

static void assert_err(harness *h, int rc, const char *fragment) {
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(h->err.msg, fragment) != NULL, "message '%s' lacks '%s'", h->err.msg,
                  fragment);
}

static float *iota_f(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) p[i] = (float)i;
    return p;
}

/* Row-major offset of multi-index idx in dims. */
static int64_t offset_of(int rank, const int64_t *dims, const int64_t *idx) {
    int64_t off = 0;
    for (int d = 0; d < rank; d++) off = off * dims[d] + idx[d];
    return off;
}

/* Advances a multi-index; false when it wraps around. */
static bool next_index(int rank, const int64_t *dims, int64_t *idx) {
    for (int d = rank - 1; d >= 0; d--) {
        if (++idx[d] < dims[d]) return true;
        idx[d] = 0;
    }
    return false;
}

/* ---- Reshape family ---- */

START_TEST(reshape_zero_and_minus_one) {
    harness *h = h_new(14);
    int64_t xd[3] = {2, 3, 4};
    float *x = iota_f(24);
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 3, xd, x), h_ints(h, "s", 3, (int64_t[]){0, -1, 2})};
    h_node(h, "Reshape", 2, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 3, (int64_t[]){2, 6, 2});
    assert_floats(h_out(h, 0), x, 24, 0);
    free(x);
    h_free(h);
}
END_TEST

START_TEST(reshape_allowzero_keeps_zero) {
    harness *h = h_new(14);
    int64_t xd[3] = {0, 3, 4};
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 3, xd, NULL), h_ints(h, "s", 3, (int64_t[]){3, 4, 0})};
    h_node(h, "Reshape", 2, in, 1);
    h_attr_int(h, "allowzero", 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 3, (int64_t[]){3, 4, 0});
    h_free(h);
}
END_TEST

START_TEST(reshape_wrong_count_fails) {
    harness *h = h_new(14);
    int64_t xd[2] = {2, 3};
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 2, xd, NULL), h_ints(h, "s", 2, (int64_t[]){4, 2})};
    h_node(h, "Reshape", 2, in, 1);
    assert_err(h, h_infer(h), "cannot reshape 6 elements");
    h_free(h);
    h = h_new(14);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, xd, NULL);
    in[1] = h_ints(h, "s", 2, (int64_t[]){-1, 4});
    h_node(h, "Reshape", 2, in, 1);
    assert_err(h, h_infer(h), "cannot reshape 6 elements");
    h_free(h);
    h = h_new(14);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, xd, NULL);
    in[1] = h_ints(h, "s", 2, (int64_t[]){-1, -1});
    h_node(h, "Reshape", 2, in, 1);
    assert_err(h, h_infer(h), "more than one -1");
    h_free(h);
}
END_TEST

START_TEST(reshape_needs_constant_shape) {
    harness *h = h_new(14);
    int64_t xd[2] = {2, 3}, sd = 2, s[2] = {3, 2};
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 2, xd, NULL), h_input(h, "s", OCTET_INT64, 1, &sd, s)};
    h_node(h, "Reshape", 2, in, 1);
    assert_err(h, h_infer(h), "must be a constant");
    h_free(h);
}
END_TEST

START_TEST(flatten_axes) {
    static const struct { int64_t axis; int64_t a, b; } cases[] = {
        {0, 1, 120}, {1, 2, 60}, {3, 24, 5}, {4, 120, 1}, {-1, 24, 5}, {-4, 1, 120}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        harness *h = h_new(13);
        int64_t xd[4] = {2, 3, 4, 5};
        float *x = iota_f(120);
        int in[1] = {h_input(h, "x", OCTET_FLOAT, 4, xd, x)};
        h_node(h, "Flatten", 1, in, 1);
        h_attr_int(h, "axis", cases[c].axis);
        ck_assert_int_eq(h_run(h), 0);
        assert_dims(h_out(h, 0), 2, (int64_t[]){cases[c].a, cases[c].b});
        assert_floats(h_out(h, 0), x, 120, 0);
        free(x);
        h_free(h);
    }
    harness *h = h_new(13);
    int in[1] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, NULL)};
    h_node(h, "Flatten", 1, in, 1);
    h_attr_int(h, "axis", 3);
    assert_err(h, h_infer(h), "axis 3 is out of range");
    h_free(h);
}
END_TEST

START_TEST(squeeze_unsqueeze_by_opset) {
    /* opset 13: axes as an input */
    harness *h = h_new(13);
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){1, 3, 1, 5}, NULL),
                 h_ints(h, "a", 1, (int64_t[]){-2})};
    h_node(h, "Squeeze", 2, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 3, (int64_t[]){1, 3, 5});
    h_free(h);
    /* no axes: every 1 goes */
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){1, 3, 1, 5}, NULL);
    h_node(h, "Squeeze", 1, in, 1);
    ck_assert_int_eq(h_infer(h), 0);
    ck_assert_int_eq(h->g->values[h->g->nodes[h->node].out[0]].rank, 2);
    h_free(h);
    /* opset 11: axes attribute; squeezing a dim of size 3 fails */
    h = h_new(11);
    in[0] = h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){1, 3, 1, 5}, NULL);
    h_node(h, "Squeeze", 1, in, 1);
    h_attr_ints(h, "axes", 1, (int64_t[]){1});
    assert_err(h, h_infer(h), "cannot squeeze axis 1 of size 3");
    h_free(h);
    /* Unsqueeze-13, unsorted axes against the output rank */
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 4}, NULL);
    in[1] = h_ints(h, "a", 3, (int64_t[]){4, 0, -3});
    h_node(h, "Unsqueeze", 2, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 5, (int64_t[]){1, 3, 1, 4, 1});
    h_free(h);
    /* Unsqueeze-11 attribute; out-of-range and duplicate axes fail */
    h = h_new(11);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 4}, NULL);
    h_node(h, "Unsqueeze", 1, in, 1);
    h_attr_ints(h, "axes", 1, (int64_t[]){3});
    assert_err(h, h_infer(h), "axis 3 is out of range for rank 3");
    h_free(h);
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 4}, NULL);
    in[1] = h_ints(h, "a", 2, (int64_t[]){1, -3});
    h_node(h, "Unsqueeze", 2, in, 1);
    assert_err(h, h_infer(h), "given twice");
    h_free(h);
}
END_TEST

START_TEST(dropout_is_identity_with_true_mask) {
    harness *h = h_new(13);
    float x[6] = {1, -2, 3, -4, 5, -6};
    int in[1] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x)};
    h_node(h, "Dropout", 1, in, 2);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), x, 6, 0);
    ck_assert_int_eq(h_out(h, 1)->dtype, OCTET_BOOL);
    for (int i = 0; i < 6; i++) ck_assert_int_eq(((uint8_t *)h_out(h, 1)->data)[i], 1);
    h_free(h);
    /* training_mode=true is refused */
    h = h_new(13);
    uint8_t yes = 1;
    int in3[3] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x), -1,
                  h_const(h, "t", OCTET_BOOL, 0, NULL, &yes)};
    h_node(h, "Dropout", 3, in3, 1);
    assert_err(h, h_infer(h), "training_mode");
    h_free(h);
}
END_TEST

/* ---- Transpose ---- */

static void check_transpose(int rank, const int64_t *dims, const int *perm, octet_dtype dt, int threads) {
    harness *h = h_new(13);
    h->threads = threads;
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d];
    size_t es = octet_dtype_size(dt);
    uint8_t *x = malloc((size_t)n * es);
    for (int64_t i = 0; i < n * (int64_t)es; i++) x[i] = (uint8_t)(i * 7 + i / 251);
    int in[1] = {h_input(h, "x", dt, rank, dims, x)};
    h_node(h, "Transpose", 1, in, 1);
    int64_t p64[8], od[8];
    for (int d = 0; d < rank; d++) {
        p64[d] = perm[d];
        od[d] = dims[perm[d]];
    }
    h_attr_ints(h, "perm", rank, p64);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), rank, od);
    const uint8_t *y = h_out(h, 0)->data;
    int64_t oi[8] = {0}, ii[8];
    int64_t o = 0;
    do {
        for (int d = 0; d < rank; d++) ii[perm[d]] = oi[d];
        int64_t src = offset_of(rank, dims, ii);
        ck_assert_msg(memcmp(y + o * (int64_t)es, x + src * (int64_t)es, es) == 0,
                      "rank %d output element %lld differs", rank, (long long)o);
        o++;
    } while (next_index(rank, od, oi));
    free(x);
    h_free(h);
}

START_TEST(transpose_matches_naive) {
    const octet_dtype dts[] = {OCTET_FLOAT, OCTET_UINT8, OCTET_INT64, OCTET_BOOL};
    for (size_t t = 0; t < 4; t++) {
        check_transpose(2, (int64_t[]){37, 45}, (int[]){1, 0}, dts[t], 1);
        check_transpose(3, (int64_t[]){5, 6, 7}, (int[]){1, 0, 2}, dts[t], 1);
        check_transpose(3, (int64_t[]){5, 6, 7}, (int[]){2, 0, 1}, dts[t], 1);
        check_transpose(4, (int64_t[]){2, 3, 1, 5}, (int[]){0, 3, 1, 2}, dts[t], 1);
        check_transpose(4, (int64_t[]){3, 1, 4, 5}, (int[]){3, 2, 1, 0}, dts[t], 1);
        check_transpose(5, (int64_t[]){2, 3, 4, 5, 3}, (int[]){4, 2, 0, 3, 1}, dts[t], 1);
        check_transpose(3, (int64_t[]){2, 3, 4}, (int[]){0, 1, 2}, dts[t], 1);
    }
    /* Large enough for several tiles and threads. */
    check_transpose(3, (int64_t[]){67, 129, 33}, (int[]){2, 0, 1}, OCTET_FLOAT, 4);
    check_transpose(4, (int64_t[]){2, 64, 56, 56}, (int[]){0, 2, 3, 1}, OCTET_FLOAT, 4);
    check_transpose(4, (int64_t[]){3, 130, 70, 9}, (int[]){1, 0, 2, 3}, OCTET_INT8, 4);
    check_transpose(4, (int64_t[]){1, 3, 50, 70}, (int[]){0, 2, 3, 1}, OCTET_INT64, 3);
}
END_TEST

START_TEST(transpose_default_and_bad_perm) {
    harness *h = h_new(13);
    float x[6] = {0, 1, 2, 3, 4, 5};
    int in[1] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x)};
    h_node(h, "Transpose", 1, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 2, (int64_t[]){3, 2});
    assert_floats(h_out(h, 0), (float[]){0, 3, 1, 4, 2, 5}, 6, 0);
    h_free(h);
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x);
    h_node(h, "Transpose", 1, in, 1);
    h_attr_ints(h, "perm", 2, (int64_t[]){1, 1});
    assert_err(h, h_infer(h), "not a permutation");
    h_free(h);
}
END_TEST

/* ---- Concat / Split ---- */

START_TEST(concat_axes) {
    for (int axis = -3; axis < 3; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        harness *h = h_new(13);
        h->threads = 3;
        int64_t d0[3] = {2, 3, 4}, d1[3] = {2, 3, 4};
        d1[a] = 5;
        int64_t n0 = 24, n1 = 24 / d0[a] * 5;
        int32_t *x0 = malloc(sizeof(int32_t) * 24), *x1 = malloc(sizeof(int32_t) * (size_t)n1);
        for (int i = 0; i < n0; i++) x0[i] = i;
        for (int i = 0; i < n1; i++) x1[i] = 1000 + i;
        int in[2] = {h_input(h, "a", OCTET_INT32, 3, d0, x0), h_input(h, "b", OCTET_INT32, 3, d1, x1)};
        h_node(h, "Concat", 2, in, 1);
        h_attr_int(h, "axis", axis);
        ck_assert_int_eq(h_run(h), 0);
        int64_t od[3] = {2, 3, 4};
        od[a] = d0[a] + d1[a];
        assert_dims(h_out(h, 0), 3, od);
        const int32_t *y = h_out(h, 0)->data;
        int64_t idx[3] = {0}, o = 0;
        do {
            int32_t want;
            if (idx[a] < d0[a]) {
                want = x0[offset_of(3, d0, idx)];
            } else {
                int64_t j[3] = {idx[0], idx[1], idx[2]};
                j[a] -= d0[a];
                want = x1[offset_of(3, d1, j)];
            }
            ck_assert_int_eq(y[o++], want);
        } while (next_index(3, od, idx));
        free(x0);
        free(x1);
        h_free(h);
    }
    harness *h = h_new(13);
    int in[2] = {h_input(h, "a", OCTET_FLOAT, 2, (int64_t[]){2, 3}, NULL),
                 h_input(h, "b", OCTET_FLOAT, 2, (int64_t[]){3, 3}, NULL)};
    h_node(h, "Concat", 2, in, 1);
    h_attr_int(h, "axis", 1);
    assert_err(h, h_infer(h), "differ outside axis 1");
    h_free(h);
}
END_TEST

START_TEST(split_variants) {
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    /* opset 13, split input on axis 1 of (2, 6) */
    harness *h = h_new(13);
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 6}, x), h_ints(h, "s", 2, (int64_t[]){2, 4})};
    h_node(h, "Split", 2, in, 2);
    h_attr_int(h, "axis", 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){0, 1, 6, 7}, 4, 0);
    assert_floats(h_out(h, 1), (float[]){2, 3, 4, 5, 8, 9, 10, 11}, 8, 0);
    h_free(h);
    /* even split without sizes, opset 11 */
    h = h_new(11);
    in[0] = h_input(h, "x", OCTET_FLOAT, 1, (int64_t[]){12}, x);
    h_node(h, "Split", 1, in, 3);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 2), x + 8, 4, 0);
    h_free(h);
    /* attribute split in opset 11, with a zero-size part */
    h = h_new(11);
    in[0] = h_input(h, "x", OCTET_FLOAT, 1, (int64_t[]){12}, x);
    h_node(h, "Split", 1, in, 3);
    h_attr_ints(h, "split", 3, (int64_t[]){5, 0, 7});
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 1), 1, (int64_t[]){0});
    assert_floats(h_out(h, 2), x + 5, 7, 0);
    h_free(h);
    /* uneven or wrong sums fail */
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 1, (int64_t[]){10}, x);
    h_node(h, "Split", 1, in, 3);
    assert_err(h, h_infer(h), "does not split evenly");
    h_free(h);
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 1, (int64_t[]){10}, x);
    in[1] = h_ints(h, "s", 2, (int64_t[]){3, 3});
    h_node(h, "Split", 2, in, 2);
    assert_err(h, h_infer(h), "sum to 6");
    h_free(h);
}
END_TEST

/* ---- Slice ---- */

START_TEST(slice_steps_and_clamping) {
    int64_t xd[2] = {5, 7};
    float *x = iota_f(35);
    /* rows 4..0 step -2 (start clamps from 100), cols -5..INT64_MAX step 2 */
    harness *h = h_new(13);
    int in[5] = {h_input(h, "x", OCTET_FLOAT, 2, xd, x), h_ints(h, "st", 2, (int64_t[]){100, -5}),
                 h_ints(h, "en", 2, (int64_t[]){-100, INT64_MAX}), h_ints(h, "ax", 2, (int64_t[]){0, -1}),
                 h_ints(h, "sp", 2, (int64_t[]){-2, 2})};
    h_node(h, "Slice", 5, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 2, (int64_t[]){3, 3});
    float want[9];
    int k = 0;
    for (int r = 4; r >= 0; r -= 2)
        for (int c = 2; c < 7; c += 2) want[k++] = (float)(r * 7 + c);
    assert_floats(h_out(h, 0), want, 9, 0);
    h_free(h);
    /* default axes and steps; empty result when start >= end */
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, xd, x);
    in[1] = h_ints(h, "st", 1, (int64_t[]){3});
    in[2] = h_ints(h, "en", 1, (int64_t[]){1});
    h_node(h, "Slice", 3, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 2, (int64_t[]){0, 7});
    h_free(h);
    /* opset 1 attributes */
    h = h_new(9);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, xd, x);
    h_node(h, "Slice", 1, in, 1);
    h_attr_ints(h, "starts", 1, (int64_t[]){1});
    h_attr_ints(h, "ends", 1, (int64_t[]){3});
    h_attr_ints(h, "axes", 1, (int64_t[]){1});
    ck_assert_int_eq(h_run(h), 0);
    float want2[10];
    for (int r = 0; r < 5; r++) want2[2 * r] = (float)(r * 7 + 1), want2[2 * r + 1] = (float)(r * 7 + 2);
    assert_floats(h_out(h, 0), want2, 10, 0);
    h_free(h);
    /* zero step and bad axis fail */
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, xd, x);
    in[1] = h_ints(h, "st", 1, (int64_t[]){0});
    in[2] = h_ints(h, "en", 1, (int64_t[]){3});
    in[3] = h_ints(h, "ax", 1, (int64_t[]){0});
    in[4] = h_ints(h, "sp", 1, (int64_t[]){0});
    h_node(h, "Slice", 5, in, 1);
    assert_err(h, h_infer(h), "step of axis 0 is 0");
    h_free(h);
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, xd, x);
    in[1] = h_ints(h, "st", 1, (int64_t[]){0});
    in[2] = h_ints(h, "en", 1, (int64_t[]){3});
    in[3] = h_ints(h, "ax", 1, (int64_t[]){2});
    h_node(h, "Slice", 4, in, 1);
    assert_err(h, h_infer(h), "axis 2 is out of range");
    h_free(h);
    free(x);
}
END_TEST

/* ---- Gather ---- */

START_TEST(gather_negative_and_axis1) {
    float *x = iota_f(12);
    harness *h = h_new(13);
    int64_t idx[3] = {-1, 0, 2};
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 4}, x),
                 h_input(h, "i", OCTET_INT64, 1, (int64_t[]){3}, idx)};
    h_node(h, "Gather", 2, in, 1);
    h_attr_int(h, "axis", 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 2, (int64_t[]){3, 3});
    assert_floats(h_out(h, 0), (float[]){3, 0, 2, 7, 4, 6, 11, 8, 10}, 9, 0);
    h_free(h);
    /* scalar index with int32 removes the axis */
    h = h_new(13);
    int32_t one = -2;
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 4}, x);
    in[1] = h_input(h, "i", OCTET_INT32, 0, NULL, &one);
    h_node(h, "Gather", 2, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 1, (int64_t[]){4});
    assert_floats(h_out(h, 0), x + 4, 4, 0);
    h_free(h);
    free(x);
}
END_TEST

START_TEST(gather_out_of_range_fails_at_run) {
    float *x = iota_f(12);
    const int64_t bad[2] = {3, -4};
    for (int b = 0; b < 2; b++) {
        harness *h = h_new(13);
        int64_t idx[2] = {0, bad[b]};
        int in[2] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 4}, x),
                     h_input(h, "i", OCTET_INT64, 1, (int64_t[]){2}, idx)};
        h_node(h, "Gather", 2, in, 1);
        assert_err(h, h_run(h), "out of range for axis 0 of size 3");
        ck_assert_int_eq(h->err.code, OCTET_ERR_ARG);
        h_free(h);
    }
    free(x);
}
END_TEST

/* ---- Pad ---- */

START_TEST(pad_modes) {
    float x[6] = {1, 2, 3, 4, 5, 6}; /* (2, 3) */
    static const char *modes[] = {"constant", "reflect", "edge"};
    /* pads: rows +1/+0, cols +2/-1 (crop one at the end) */
    static const float want[3][3 * 4] = {
        {9, 9, 9, 9, 9, 9, 1, 2, 9, 9, 4, 5},
        {6, 5, 4, 5, 3, 2, 1, 2, 6, 5, 4, 5},
        {1, 1, 1, 2, 1, 1, 1, 2, 4, 4, 4, 5},
    };
    for (int m = 0; m < 3; m++) {
        harness *h = h_new(13);
        float cv = 9;
        int in[3] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x),
                     h_ints(h, "p", 4, (int64_t[]){1, 2, 0, -1}),
                     h_input(h, "v", OCTET_FLOAT, 0, NULL, &cv)};
        h_node(h, "Pad", 3, in, 1);
        h_attr_str(h, "mode", modes[m]);
        ck_assert_int_eq(h_run(h), 0);
        assert_dims(h_out(h, 0), 2, (int64_t[]){3, 4});
        assert_floats(h_out(h, 0), want[m], 12, 0);
        h_free(h);
    }
    /* Pad-2 attributes with an int32 tensor */
    harness *h = h_new(7);
    int32_t xi[3] = {7, 8, 9};
    int in[1] = {h_input(h, "x", OCTET_INT32, 1, (int64_t[]){3}, xi)};
    h_node(h, "Pad", 1, in, 1);
    h_attr_ints(h, "pads", 2, (int64_t[]){2, 1});
    h_attr_float(h, "value", -3.f);
    ck_assert_int_eq(h_run(h), 0);
    const int32_t wi[6] = {-3, -3, 7, 8, 9, -3};
    for (int i = 0; i < 6; i++) ck_assert_int_eq(((int32_t *)h_out(h, 0)->data)[i], wi[i]);
    h_free(h);
    /* reflect wider than the axis and a wrong pads count fail */
    h = h_new(13);
    int in2[2] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x), h_ints(h, "p", 4, (int64_t[]){0, 3, 0, 0})};
    h_node(h, "Pad", 2, in2, 1);
    h_attr_str(h, "mode", "reflect");
    assert_err(h, h_infer(h), "need to be smaller");
    h_free(h);
    h = h_new(13);
    in2[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 3}, x);
    in2[1] = h_ints(h, "p", 3, (int64_t[]){0, 3, 0});
    h_node(h, "Pad", 2, in2, 1);
    assert_err(h, h_infer(h), "pads has 3 values, expected 4");
    h_free(h);
}
END_TEST

/* ---- Resize / Upsample (expected values from the ONNX operator documentation) ---- */

static harness *resize_scales(const float *x, int64_t hgt, int64_t wid, const float *scales,
                              const char *mode, const char *coord) {
    harness *h = h_new(13);
    int64_t sd = 4;
    int in[3] = {h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){1, 1, hgt, wid}, x), -1,
                 h_const(h, "s", OCTET_FLOAT, 1, &sd, scales)};
    h_node(h, "Resize", 3, in, 1);
    h_attr_str(h, "mode", mode);
    if (coord) h_attr_str(h, "coordinate_transformation_mode", coord);
    return h;
}

START_TEST(resize_linear_and_nearest) {
    const float x22[4] = {1, 2, 3, 4};
    /* test_resize_upsample_scales_linear */
    harness *h = resize_scales(x22, 2, 2, (float[]){1, 1, 2, 2}, "linear", NULL);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 4, (int64_t[]){1, 1, 4, 4});
    assert_floats(h_out(h, 0), (float[]){1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f,
                                         3.25f, 3.5f, 3, 3.25f, 3.75f, 4}, 16, 1e-6f);
    h_free(h);
    /* test_resize_upsample_scales_nearest: scales (2, 3) */
    h = resize_scales(x22, 2, 2, (float[]){1, 1, 2, 3}, "nearest", NULL);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3,
                                         4, 4, 4}, 24, 0);
    h_free(h);
    /* test_resize_downsample_scales_linear_align_corners: uses the unrounded output width */
    const float x24[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    h = resize_scales(x24, 2, 4, (float[]){1, 1, 0.6f, 0.6f}, "linear", "align_corners");
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){1, 3.142857f}, 2, 1e-5f);
    h_free(h);
    /* test_resize_downsample_scales_linear (half_pixel) */
    h = resize_scales(x24, 2, 4, (float[]){1, 1, 0.6f, 0.6f}, "linear", NULL);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){2.6666667f, 4.3333335f}, 2, 1e-5f);
    h_free(h);
}
END_TEST

/* Cubic resampling of a ramp along one axis: the Keys kernel with a = -0.5 reproduces linear
   data exactly away from the edges, so interior samples equal the mapped coordinate. */
START_TEST(resize_cubic_reproduces_ramp) {
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)(i % 8) * 2.f; /* (2, 8): two equal ramps */
    harness *h = h_new(13);
    int64_t sd = 2;
    int in[3] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){2, 8}, x), -1,
                 h_const(h, "s", OCTET_FLOAT, 1, &sd, (float[]){1, 2})};
    h_node(h, "Resize", 3, in, 1);
    h_attr_str(h, "mode", "cubic");
    h_attr_float(h, "cubic_coeff_a", -0.5f);
    h_attr_str(h, "coordinate_transformation_mode", "asymmetric");
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 2, (int64_t[]){2, 16});
    const float *y = h_out(h, 0)->data;
    for (int r = 0; r < 2; r++)
        for (int o = 2; o < 12; o++) /* taps stay inside 0..7 */
            ck_assert_msg(fabsf(y[r * 16 + o] - (float)o) < 1e-5f, "o=%d got %g", o, y[r * 16 + o]);
    h_free(h);
}
END_TEST

START_TEST(resize_sizes_nearest_modes_and_upsample9) {
    /* test_resize_downsample_sizes_nearest: (2, 4) -> (1, 3) */
    float x24[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    harness *h = h_new(13);
    int in[4] = {h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){1, 1, 2, 4}, x24), -1, -1,
                 h_ints(h, "z", 4, (int64_t[]){1, 1, 1, 3})};
    h_node(h, "Resize", 4, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){1, 2, 4}, 3, 0);
    h_free(h);
    /* nearest_mode floor + align_corners on a 1-D uint8 tensor: (4) -> (7) */
    uint8_t xu[4] = {10, 20, 30, 40};
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_UINT8, 1, (int64_t[]){4}, xu);
    in[3] = h_ints(h, "z", 1, (int64_t[]){7});
    h_node(h, "Resize", 4, in, 1);
    h_attr_str(h, "coordinate_transformation_mode", "align_corners");
    h_attr_str(h, "nearest_mode", "floor");
    ck_assert_int_eq(h_run(h), 0);
    /* x_orig = o * 3/6 = 0, .5, 1, 1.5, 2, 2.5, 3 -> floor */
    const uint8_t wu[7] = {10, 10, 20, 20, 30, 30, 40};
    for (int i = 0; i < 7; i++) ck_assert_int_eq(((uint8_t *)h_out(h, 0)->data)[i], wu[i]);
    h_free(h);
    /* Upsample-9: scales input, nearest */
    h = h_new(9);
    int64_t sd = 4;
    int in2[2] = {h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){1, 1, 2, 2}, (float[]){1, 2, 3, 4}),
                  h_const(h, "s", OCTET_FLOAT, 1, &sd, (float[]){1, 1, 2, 3})};
    h_node(h, "Upsample", 2, in2, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3,
                                         4, 4, 4}, 24, 0);
    h_free(h);
    /* linear on int data and scales+sizes together are refused */
    h = h_new(13);
    int64_t sd1 = 1;
    int in3[3] = {h_input(h, "x", OCTET_INT32, 1, (int64_t[]){4}, (int32_t[]){1, 2, 3, 4}), -1,
                  h_const(h, "s", OCTET_FLOAT, 1, &sd1, (float[]){2})};
    h_node(h, "Resize", 3, in3, 1);
    h_attr_str(h, "mode", "linear");
    assert_err(h, h_infer(h), "needs float32");
    h_free(h);
}
END_TEST

/* ---- Shape / Constant / ConstantOfShape ---- */

START_TEST(shape_ranges) {
    static const struct { int64_t s, e; int n; int64_t want[4]; } cases[] = {
        {0, 4, 4, {2, 3, 4, 5}}, {1, 4, 3, {3, 4, 5}}, {-1, 4, 1, {5}},
        {1, -1, 2, {3, 4}}, {-10, 10, 4, {2, 3, 4, 5}}, {3, 1, 0, {0}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        harness *h = h_new(15);
        int in[1] = {h_input(h, "x", OCTET_FLOAT, 4, (int64_t[]){2, 3, 4, 5}, NULL)};
        h_node(h, "Shape", 1, in, 1);
        h_attr_int(h, "start", cases[c].s);
        h_attr_int(h, "end", cases[c].e);
        ck_assert_int_eq(h_run(h), 0);
        assert_dims(h_out(h, 0), 1, (int64_t[]){cases[c].n});
        assert_int64s(h_out(h, 0), cases[c].want, cases[c].n);
        h_free(h);
    }
    ck_assert(oct_op_find("", "Shape")->flags & OCT_OP_SHAPE_ONLY);
}
END_TEST

START_TEST(constant_attributes) {
    harness *h = h_new(13);
    h_node(h, "Constant", 0, NULL, 1);
    h_attr_ints(h, "value_ints", 3, (int64_t[]){4, -5, 6});
    ck_assert_int_eq(h_run(h), 0);
    assert_int64s(h_out(h, 0), (int64_t[]){4, -5, 6}, 3);
    h_free(h);
    h = h_new(13);
    h_node(h, "Constant", 0, NULL, 1);
    oct_attr *a = h_attr(h, "value", OCT_ATTR_TENSOR);
    a->t = calloc(1, sizeof *a->t);
    a->t->dtype = OCTET_FLOAT;
    a->t->rank = 2;
    a->t->dims[0] = 1;
    a->t->dims[1] = 2;
    a->t->data = malloc(8);
    memcpy(a->t->data, (float[]){0.5f, -1.5f}, 8);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 2, (int64_t[]){1, 2});
    assert_floats(h_out(h, 0), (float[]){0.5f, -1.5f}, 2, 0);
    h_free(h);
    h = h_new(13);
    h_node(h, "Constant", 0, NULL, 1);
    h_attr_float(h, "value_float", 2.5f);
    h_attr_int(h, "value_int", 2);
    assert_err(h, h_infer(h), "has both");
    h_free(h);
}
END_TEST

START_TEST(constant_of_shape_fills) {
    harness *h = h_new(13);
    int in[1] = {h_ints(h, "s", 2, (int64_t[]){2, 3})};
    h_node(h, "ConstantOfShape", 1, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_floats(h_out(h, 0), (float[]){0, 0, 0, 0, 0, 0}, 6, 0);
    h_free(h);
    h = h_new(13);
    in[0] = h_ints(h, "s", 1, (int64_t[]){4});
    h_node(h, "ConstantOfShape", 1, in, 1);
    oct_attr *a = h_attr(h, "value", OCT_ATTR_TENSOR);
    a->t = calloc(1, sizeof *a->t);
    a->t->dtype = OCTET_INT64;
    a->t->rank = 1;
    a->t->dims[0] = 1;
    a->t->data = malloc(8);
    *(int64_t *)a->t->data = -7;
    ck_assert_int_eq(h_run(h), 0);
    assert_int64s(h_out(h, 0), (int64_t[]){-7, -7, -7, -7}, 4);
    h_free(h);
    h = h_new(13);
    in[0] = h_ints(h, "s", 2, (int64_t[]){2, -3});
    h_node(h, "ConstantOfShape", 1, in, 1);
    assert_err(h, h_infer(h), "negative dim -3");
    h_free(h);
}
END_TEST

/* ---- Expand / Tile ---- */

START_TEST(expand_both_ways) {
    float x[3] = {1, 2, 3}; /* (3, 1) expanded with (2, 1, 4) -> (2, 3, 4) */
    harness *h = h_new(13);
    int in[2] = {h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 1}, x), h_ints(h, "s", 3, (int64_t[]){2, 1, 4})};
    h_node(h, "Expand", 2, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_dims(h_out(h, 0), 3, (int64_t[]){2, 3, 4});
    float want[24];
    for (int i = 0; i < 24; i++) want[i] = x[(i / 4) % 3];
    assert_floats(h_out(h, 0), want, 24, 0);
    h_free(h);
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_FLOAT, 2, (int64_t[]){3, 2}, NULL);
    in[1] = h_ints(h, "s", 2, (int64_t[]){4, 2});
    h_node(h, "Expand", 2, in, 1);
    assert_err(h, h_infer(h), "cannot broadcast");
    h_free(h);
}
END_TEST

START_TEST(tile_matches_naive) {
    int64_t xd[3] = {2, 1, 3}, reps[3] = {2, 3, 2}, od[3];
    int64_t x[6] = {1, 2, 3, 4, 5, 6};
    harness *h = h_new(13);
    h->threads = 2;
    int in[2] = {h_input(h, "x", OCTET_INT64, 3, xd, x), h_ints(h, "r", 3, reps)};
    h_node(h, "Tile", 2, in, 1);
    ck_assert_int_eq(h_run(h), 0);
    for (int d = 0; d < 3; d++) od[d] = xd[d] * reps[d];
    assert_dims(h_out(h, 0), 3, od);
    int64_t idx[3] = {0}, src[3], o = 0;
    const int64_t *y = h_out(h, 0)->data;
    do {
        for (int d = 0; d < 3; d++) src[d] = idx[d] % xd[d];
        ck_assert_int_eq(y[o++], x[offset_of(3, xd, src)]);
    } while (next_index(3, od, idx));
    h_free(h);
    h = h_new(13);
    in[0] = h_input(h, "x", OCTET_INT64, 3, xd, x);
    in[1] = h_ints(h, "r", 2, reps);
    h_node(h, "Tile", 2, in, 1);
    assert_err(h, h_infer(h), "repeats has 2 values");
    h_free(h);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, reshape_zero_and_minus_one);
    tcase_add_test(tc, reshape_allowzero_keeps_zero);
    tcase_add_test(tc, reshape_wrong_count_fails);
    tcase_add_test(tc, reshape_needs_constant_shape);
    tcase_add_test(tc, flatten_axes);
    tcase_add_test(tc, squeeze_unsqueeze_by_opset);
    tcase_add_test(tc, dropout_is_identity_with_true_mask);
    tcase_add_test(tc, transpose_matches_naive);
    tcase_add_test(tc, transpose_default_and_bad_perm);
    tcase_add_test(tc, concat_axes);
    tcase_add_test(tc, split_variants);
    tcase_add_test(tc, slice_steps_and_clamping);
    tcase_add_test(tc, gather_negative_and_axis1);
    tcase_add_test(tc, gather_out_of_range_fails_at_run);
    tcase_add_test(tc, pad_modes);
    tcase_add_test(tc, resize_linear_and_nearest);
    tcase_add_test(tc, resize_cubic_reproduces_ramp);
    tcase_add_test(tc, resize_sizes_nearest_modes_and_upsample9);
    tcase_add_test(tc, shape_ranges);
    tcase_add_test(tc, constant_attributes);
    tcase_add_test(tc, constant_of_shape_fills);
    tcase_add_test(tc, expand_both_ways);
    tcase_add_test(tc, tile_matches_naive);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
