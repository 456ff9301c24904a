/* The math op family: each op is driven through infer() and run() on a one-node graph built by
   hand, and its output checked against values computed here. The broadcasting kernels are also
   checked against a naive index-by-index reference over many random shapes. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "kernels/ref/math_kernels.h"
#include "test_session.h"

/* ---- a one-node harness --------------------------------------------------------------------- */

typedef struct {
    oct_graph *g;
    int node;
    oct_tensor *t;     /* bound tensors, one per value, after h_run */
    void *ws;
    octet_error err;
} harness;

static harness *h_new(int64_t opset, const char *op_type, int n_in, int n_out) {
    harness *h = calloc(1, sizeof *h);
    h->g = oct_graph_new();
    h->g->opset = opset;
    h->node = oct_graph_add_node(h->g, "node", op_type, "", n_in, n_out, NULL);
    ck_assert_int_ge(h->node, 0);
    for (int i = 0; i < n_out; i++) {
        char name[16];
        snprintf(name, sizeof name, "y%d", i);
        int v = oct_graph_add_value(h->g, name, NULL);
        h->g->nodes[h->node].out[i] = v;
    }
    return h;
}

static oct_node *h_node(harness *h) { return &h->g->nodes[h->node]; }

/* Input slot i: a run-time input (is_const = 0) or a constant, holding a copy of data. */
static void h_input(harness *h, int i, int is_const, octet_dtype dt, int rank, const int64_t *dims,
                    const void *data) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    int v = oct_graph_add_value(h->g, name, NULL);
    oct_value *val = &h->g->values[v];
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d];
    size_t bytes = (size_t)n * octet_dtype_size(dt);
    void *copy = malloc(bytes ? bytes : 1);
    if (bytes) memcpy(copy, data, bytes);
    if (is_const) {
        oct_value_set_const(val, dt, rank, dims, copy);
    } else {
        val->kind = OCT_VAL_INPUT;
        val->dtype = dt;
        val->rank = rank;
        for (int d = 0; d < rank; d++) val->dims[d] = dims[d];
        val->data = copy; /* the harness binds it at run time; freed with the graph */
        val->data_owned = true;
    }
    h_node(h)->in[i] = v;
}

static oct_attr *h_attr(harness *h, const char *name, oct_attr_type type) {
    oct_node *n = h_node(h);
    n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = type;
    return a;
}
static void h_attr_int(harness *h, const char *name, int64_t v) { h_attr(h, name, OCT_ATTR_INT)->i = v; }
static void h_attr_float(harness *h, const char *name, float v) { h_attr(h, name, OCT_ATTR_FLOAT)->f = v; }
static void h_attr_ints(harness *h, const char *name, int cnt, const int64_t *v) {
    oct_attr *a = h_attr(h, name, OCT_ATTR_INTS);
    a->n = cnt;
    a->ints = malloc(sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}

/* infer() only; 0 or -1 with h->err set. */
static int h_infer(harness *h) {
    oct_node *n = h_node(h);
    n->op = oct_op_find("", n->op_type);
    ck_assert_msg(n->op != NULL, "op %s is not registered", n->op_type);
    memset(&h->err, 0, sizeof h->err);
    return n->op->infer(h->g, n, &h->err);
}

/* infer() then run() with `threads` threads; outputs are allocated here. */
static int h_run_threads(harness *h, int threads) {
    if (h_infer(h) < 0) return -1;
    oct_node *n = h_node(h);
    h->t = calloc((size_t)h->g->n_values, sizeof(oct_tensor));
    for (int v = 0; v < h->g->n_values; v++) {
        h->t[v] = oct_value_tensor(&h->g->values[v]);
    }
    for (int i = 0; i < n->n_out; i++) {
        oct_tensor *t = &h->t[n->out[i]];
        int64_t cnt = octet_tensor_numel(t);
        ck_assert_int_ge(cnt, 0);
        t->data = calloc((size_t)(cnt ? cnt : 1), octet_dtype_size(t->dtype));
    }
    h->ws = n->workspace_bytes ? malloc(n->workspace_bytes) : NULL;
    oct_run_ctx ctx = {h->g, h->t, h->ws, threads, NULL};
    return n->op->run(&ctx, n, &h->err);
}
static int h_run(harness *h) { return h_run_threads(h, 1); }

static oct_tensor *h_out(harness *h, int i) { return &h->t[h_node(h)->out[i]]; }

static void h_free(harness *h) {
    if (h->t) {
        oct_node *n = h_node(h);
        for (int i = 0; i < n->n_out; i++) free(h->t[n->out[i]].data);
    }
    free(h->t);
    free(h->ws);
    oct_node *n = h_node(h);
    free(n->params);
    n->params = NULL;
    oct_graph_free(h->g);
    free(h);
}

static void assert_shape(const oct_tensor *t, int rank, const int64_t *dims) {
    ck_assert_int_eq(t->rank, rank);
    for (int d = 0; d < rank; d++) ck_assert_int_eq(t->dims[d], dims[d]);
}

static void assert_close(const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f + 1e-5f * fabsf(want[i]),
                      "element %lld: got %g, want %g", (long long)i, got[i], want[i]);
}

static float frand(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return (float)((*seed >> 8) & 0xffff) / 65536.f * 4.f - 2.f;
}

/* ---- broadcasting --------------------------------------------------------------------------- */

START_TEST(add_same_shape) {
    harness *h = h_new(14, "Add", 2, 1);
    int64_t d[2] = {2, 3};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {10, 20, 30, 40, 50, 60};
    h_input(h, 0, 0, OCTET_FLOAT, 2, d, a);
    h_input(h, 1, 0, OCTET_FLOAT, 2, d, b);
    ck_assert_int_eq(h_run(h), 0);
    float want[6];
    for (int i = 0; i < 6; i++) want[i] = a[i] + b[i];
    assert_shape(h_out(h, 0), 2, d);
    assert_close(h_out(h, 0)->data, want, 6);
    h_free(h);
}
END_TEST

START_TEST(sub_broadcast_both_ways) {
    /* [2,1,4] - [3,1] -> [2,3,4]: each side broadcasts along a different dim */
    harness *h = h_new(14, "Sub", 2, 1);
    int64_t da[3] = {2, 1, 4}, db[2] = {3, 1};
    float a[8], b[3];
    for (int i = 0; i < 8; i++) a[i] = (float)i;
    for (int i = 0; i < 3; i++) b[i] = 100.f * (float)(i + 1);
    h_input(h, 0, 0, OCTET_FLOAT, 3, da, a);
    h_input(h, 1, 0, OCTET_FLOAT, 2, db, b);
    ck_assert_int_eq(h_run(h), 0);
    int64_t dy[3] = {2, 3, 4};
    assert_shape(h_out(h, 0), 3, dy);
    const float *y = h_out(h, 0)->data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) ck_assert_float_eq(y[(i * 3 + j) * 4 + k], a[i * 4 + k] - b[j]);
    h_free(h);
}
END_TEST

START_TEST(mul_scalar_rank0) {
    harness *h = h_new(14, "Mul", 2, 1);
    int64_t d[1] = {5};
    float a[5] = {1, -2, 3, -4, 5}, s = 2.5f;
    h_input(h, 0, 0, OCTET_FLOAT, 0, NULL, &s);
    h_input(h, 1, 0, OCTET_FLOAT, 1, d, a);
    ck_assert_int_eq(h_run(h), 0);
    assert_shape(h_out(h, 0), 1, d);
    float want[5];
    for (int i = 0; i < 5; i++) want[i] = a[i] * s;
    assert_close(h_out(h, 0)->data, want, 5);
    h_free(h);
}
END_TEST

START_TEST(add_per_channel_threaded) {
    /* [2,8,64,64] + [1,8,1,1], large enough for the OpenMP path */
    harness *h = h_new(14, "Add", 2, 1);
    int64_t dx[4] = {2, 8, 64, 64}, dc[4] = {1, 8, 1, 1};
    int64_t n = 2 * 8 * 64 * 64;
    float *x = malloc(sizeof(float) * (size_t)n), c[8];
    unsigned seed = 7;
    for (int64_t i = 0; i < n; i++) x[i] = frand(&seed);
    for (int i = 0; i < 8; i++) c[i] = (float)i * 10.f;
    h_input(h, 0, 0, OCTET_FLOAT, 4, dx, x);
    h_input(h, 1, 0, OCTET_FLOAT, 4, dc, c);
    ck_assert_int_eq(h_run_threads(h, 4), 0);
    const float *y = h_out(h, 0)->data;
    for (int64_t i = 0; i < n; i++) ck_assert_float_eq(y[i], x[i] + c[(i / 4096) % 8]);
    free(x);
    h_free(h);
}
END_TEST

/* Naive reference: output index -> input offsets, one element at a time. */
static int64_t ref_offset(int64_t o, int out_rank, const int64_t *od, int rank, const int64_t *d) {
    int64_t off = 0, stride = 1;
    for (int k = out_rank - 1; k >= 0; k--) {
        int64_t idx = o % od[k];
        o /= od[k];
        int di = k - (out_rank - rank);
        if (di >= 0) {
            if (d[di] != 1) off += idx * stride;
            stride *= d[di];
        }
    }
    return off;
}

START_TEST(bcast_kernel_random_shapes) {
    unsigned seed = 12345;
    for (int trial = 0; trial < 400; trial++) {
        int rank = 1 + (int)(seed % 4);
        int64_t od[4], da[4], db[4];
        int ra = rank - (int)((seed >> 3) % 2), rb = rank;
        seed = seed * 1103515245u + 12345u;
        for (int d = 0; d < rank; d++) {
            seed = seed * 1103515245u + 12345u;
            od[d] = 1 + (seed >> 16) % 4;
        }
        for (int d = 0; d < ra; d++) {
            seed = seed * 1103515245u + 12345u;
            da[d] = (seed >> 20) % 2 ? od[d + rank - ra] : 1;
        }
        for (int d = 0; d < rb; d++) {
            seed = seed * 1103515245u + 12345u;
            db[d] = (seed >> 20) % 3 ? od[d] : 1;
        }
        int64_t na = 1, nb = 1, ny = 1;
        for (int d = 0; d < ra; d++) na *= da[d];
        for (int d = 0; d < rb; d++) nb *= db[d];
        for (int d = 0; d < rank; d++) ny *= od[d];
        /* the output shape must be the broadcast of a and b: widen od where both are 1 */
        for (int d = 0; d < rank; d++) {
            int64_t a = d - (rank - ra) >= 0 ? da[d - (rank - ra)] : 1;
            if (a == 1 && db[d] == 1) od[d] = 1;
        }
        ny = 1;
        for (int d = 0; d < rank; d++) ny *= od[d];
        int32_t a[256], b[256], y[256];
        for (int i = 0; i < na; i++) a[i] = i * 7 + 1;
        for (int i = 0; i < nb; i++) b[i] = i * 1000;
        oct_bcast bc;
        int ranks[2] = {ra, rb};
        const int64_t *dims[2] = {da, db};
        ck_assert_int_eq(oct_bcast_plan(&bc, rank, od, 2, ranks, dims), 0);
        ck_assert_int_eq(oct_bcast_numel(&bc), ny);
        /* split into uneven ranges, as threads would */
        int64_t cut = ny / 3;
        ck_assert_int_eq(oct_ref_binary(OCT_BIN_ADD, OCTET_INT32, &bc, a, b, y, 0, cut), 0);
        ck_assert_int_eq(oct_ref_binary(OCT_BIN_ADD, OCTET_INT32, &bc, a, b, y, cut, ny), 0);
        for (int64_t o = 0; o < ny; o++) {
            int32_t want = a[ref_offset(o, rank, od, ra, da)] + b[ref_offset(o, rank, od, rb, db)];
            ck_assert_msg(y[o] == want, "trial %d element %lld: got %d want %d", trial, (long long)o,
                          y[o], want);
        }
    }
}
END_TEST

START_TEST(bcast_mismatch_is_an_error) {
    harness *h = h_new(14, "Add", 2, 1);
    int64_t da[2] = {2, 3}, db[1] = {4};
    float a[6] = {0}, b[4] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 2, da, a);
    h_input(h, 1, 0, OCTET_FLOAT, 1, db, b);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_int_eq(h->err.code, OCTET_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "[4]"));
    ck_assert_ptr_nonnull(strstr(h->err.msg, "[2,3]"));
    h_free(h);
}
END_TEST

START_TEST(dtype_mismatch_is_an_error) {
    harness *h = h_new(14, "Mul", 2, 1);
    int64_t d[1] = {2};
    float a[2] = {0};
    int32_t b[2] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, a);
    h_input(h, 1, 0, OCTET_INT32, 1, d, b);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "int32"));
    h_free(h);
}
END_TEST

START_TEST(missing_input_is_an_error) {
    harness *h = h_new(14, "Add", 1, 1);
    int64_t d[1] = {2};
    float a[2] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, a);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "inputs"));
    h_free(h);
}
END_TEST

/* ---- integer arithmetic --------------------------------------------------------------------- */

START_TEST(int_div_truncates) {
    harness *h = h_new(14, "Div", 2, 1);
    int64_t d[1] = {5};
    int32_t a[5] = {-7, 7, -7, 7, INT32_MIN}, b[5] = {2, 2, -2, -2, -1};
    h_input(h, 0, 0, OCTET_INT32, 1, d, a);
    h_input(h, 1, 0, OCTET_INT32, 1, d, b);
    ck_assert_int_eq(h_run(h), 0);
    const int32_t *y = h_out(h, 0)->data;
    ck_assert_int_eq(y[0], -3);
    ck_assert_int_eq(y[1], 3);
    ck_assert_int_eq(y[2], 3);
    ck_assert_int_eq(y[3], -3);
    ck_assert_int_eq(y[4], INT32_MIN); /* wraps instead of trapping */
    h_free(h);
}
END_TEST

START_TEST(int_div_by_zero_is_an_error) {
    harness *h = h_new(14, "Div", 2, 1);
    int64_t d[1] = {3};
    int64_t a[3] = {1, 2, 3}, b[3] = {1, 0, 1};
    h_input(h, 0, 0, OCTET_INT64, 1, d, a);
    h_input(h, 1, 0, OCTET_INT64, 1, d, b);
    ck_assert_int_eq(h_run(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "division by zero"));
    h_free(h);
}
END_TEST

START_TEST(uint8_arith_wraps) {
    harness *h = h_new(14, "Add", 2, 1);
    int64_t d[1] = {3};
    uint8_t a[3] = {250, 1, 128}, b[3] = {10, 2, 128};
    h_input(h, 0, 0, OCTET_UINT8, 1, d, a);
    h_input(h, 1, 0, OCTET_UINT8, 1, d, b);
    ck_assert_int_eq(h_run(h), 0);
    const uint8_t *y = h_out(h, 0)->data;
    ck_assert_int_eq(y[0], 4);
    ck_assert_int_eq(y[1], 3);
    ck_assert_int_eq(y[2], 0);
    ck_assert_int_eq(h_out(h, 0)->dtype, OCTET_UINT8);
    h_free(h);
}
END_TEST

START_TEST(pow_mixed_dtypes) {
    {
        harness *h = h_new(15, "Pow", 2, 1);
        int64_t d[1] = {3};
        float a[3] = {1.5f, 2.f, -3.f};
        int64_t e[3] = {2, 3, 3};
        h_input(h, 0, 0, OCTET_FLOAT, 1, d, a);
        h_input(h, 1, 0, OCTET_INT64, 1, d, e);
        ck_assert_int_eq(h_run(h), 0);
        ck_assert_int_eq(h_out(h, 0)->dtype, OCTET_FLOAT);
        float want[3] = {2.25f, 8.f, -27.f};
        assert_close(h_out(h, 0)->data, want, 3);
        h_free(h);
    }
    {
        harness *h = h_new(15, "Pow", 2, 1);
        int64_t d[1] = {3};
        int32_t a[3] = {4, 2, 3};
        float e[3] = {0.5f, 3.f, 2.5f};
        h_input(h, 0, 0, OCTET_INT32, 1, d, a);
        h_input(h, 1, 0, OCTET_FLOAT, 1, d, e);
        ck_assert_int_eq(h_run(h), 0);
        ck_assert_int_eq(h_out(h, 0)->dtype, OCTET_INT32);
        const int32_t *y = h_out(h, 0)->data;
        ck_assert_int_eq(y[0], 2);
        ck_assert_int_eq(y[1], 8);
        ck_assert_int_eq(y[2], 15); /* 15.588... truncated */
        h_free(h);
    }
    {
        harness *h = h_new(15, "Pow", 2, 1);
        int64_t d[1] = {3}, one[1] = {1};
        int64_t a[3] = {3, -2, 10}, e[1] = {3};
        h_input(h, 0, 0, OCTET_INT64, 1, d, a);
        h_input(h, 1, 0, OCTET_INT64, 1, one, e);
        ck_assert_int_eq(h_run(h), 0);
        const int64_t *y = h_out(h, 0)->data;
        ck_assert_int_eq(y[0], 27);
        ck_assert_int_eq(y[1], -8);
        ck_assert_int_eq(y[2], 1000);
        h_free(h);
    }
}
END_TEST

START_TEST(prelu_per_channel) {
    harness *h = h_new(16, "PRelu", 2, 1);
    int64_t dx[4] = {1, 2, 2, 2}, ds[3] = {2, 1, 1};
    float x[8] = {-1, 2, -3, 4, -5, 6, -7, 8}, s[2] = {0.5f, 0.25f};
    h_input(h, 0, 0, OCTET_FLOAT, 4, dx, x);
    h_input(h, 1, 0, OCTET_FLOAT, 3, ds, s);
    ck_assert_int_eq(h_run(h), 0);
    float want[8];
    for (int i = 0; i < 8; i++) want[i] = x[i] < 0 ? x[i] * s[i / 4] : x[i];
    assert_close(h_out(h, 0)->data, want, 8);
    h_free(h);
}
END_TEST

START_TEST(prelu_slope_must_broadcast_to_x) {
    harness *h = h_new(16, "PRelu", 2, 1);
    int64_t dx[1] = {3}, ds[2] = {2, 3};
    float x[3] = {0}, s[6] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 1, dx, x);
    h_input(h, 1, 0, OCTET_FLOAT, 2, ds, s);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "slope"));
    h_free(h);
}
END_TEST

/* ---- variadic, compare, where --------------------------------------------------------------- */

START_TEST(max_three_inputs_broadcast) {
    harness *h = h_new(13, "Max", 3, 1);
    int64_t d0[1] = {3}, d1[2] = {2, 1};
    float a[3] = {1, 5, -2}, b[2] = {3, -1}, c = 0.f;
    h_input(h, 0, 0, OCTET_FLOAT, 1, d0, a);
    h_input(h, 1, 0, OCTET_FLOAT, 2, d1, b);
    h_input(h, 2, 0, OCTET_FLOAT, 0, NULL, &c);
    ck_assert_int_eq(h_run(h), 0);
    int64_t dy[2] = {2, 3};
    assert_shape(h_out(h, 0), 2, dy);
    float want[6];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) want[i * 3 + j] = fmaxf(fmaxf(a[j], b[i]), c);
    assert_close(h_out(h, 0)->data, want, 6);
    h_free(h);
}
END_TEST

START_TEST(mean_and_single_input_sum) {
    harness *h = h_new(13, "Mean", 2, 1);
    int64_t d[1] = {4}, one[1] = {1};
    float a[4] = {1, 2, 3, 4}, b[1] = {10};
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, a);
    h_input(h, 1, 0, OCTET_FLOAT, 1, one, b);
    ck_assert_int_eq(h_run(h), 0);
    float want[4] = {5.5f, 6.f, 6.5f, 7.f};
    assert_close(h_out(h, 0)->data, want, 4);
    h_free(h);

    h = h_new(13, "Sum", 1, 1);
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, a);
    ck_assert_int_eq(h_run(h), 0);
    assert_close(h_out(h, 0)->data, a, 4);
    h_free(h);
}
END_TEST

START_TEST(min_int8) {
    harness *h = h_new(13, "Min", 2, 1);
    int64_t d[1] = {3};
    int8_t a[3] = {-128, 5, 7}, b[3] = {0, -5, 127};
    h_input(h, 0, 0, OCTET_INT8, 1, d, a);
    h_input(h, 1, 0, OCTET_INT8, 1, d, b);
    ck_assert_int_eq(h_run(h), 0);
    const int8_t *y = h_out(h, 0)->data;
    ck_assert_int_eq(y[0], -128);
    ck_assert_int_eq(y[1], -5);
    ck_assert_int_eq(y[2], 7);
    h_free(h);
}
END_TEST

START_TEST(compare_gives_bool) {
    const char *ops[3] = {"Equal", "Greater", "Less"};
    for (int k = 0; k < 3; k++) {
        harness *h = h_new(13, ops[k], 2, 1);
        int64_t da[2] = {2, 2}, db[1] = {2};
        int32_t a[4] = {1, 2, 3, 4}, b[2] = {2, 2};
        h_input(h, 0, 0, OCTET_INT32, 2, da, a);
        h_input(h, 1, 0, OCTET_INT32, 1, db, b);
        ck_assert_int_eq(h_run(h), 0);
        ck_assert_int_eq(h_out(h, 0)->dtype, OCTET_BOOL);
        const uint8_t *y = h_out(h, 0)->data;
        for (int i = 0; i < 4; i++) {
            int want = k == 0 ? a[i] == b[i % 2] : k == 1 ? a[i] > b[i % 2] : a[i] < b[i % 2];
            ck_assert_int_eq(y[i], want);
        }
        h_free(h);
    }
}
END_TEST

START_TEST(where_broadcast_int64) {
    harness *h = h_new(16, "Where", 3, 1);
    int64_t dc[2] = {2, 1}, dx[1] = {3};
    uint8_t c[2] = {1, 0};
    int64_t x[3] = {1, 2, 3}, y = -9;
    h_input(h, 0, 0, OCTET_BOOL, 2, dc, c);
    h_input(h, 1, 0, OCTET_INT64, 1, dx, x);
    h_input(h, 2, 0, OCTET_INT64, 0, NULL, &y);
    ck_assert_int_eq(h_run(h), 0);
    int64_t dout[2] = {2, 3};
    assert_shape(h_out(h, 0), 2, dout);
    const int64_t *o = h_out(h, 0)->data;
    int64_t want[6] = {1, 2, 3, -9, -9, -9};
    for (int i = 0; i < 6; i++) ck_assert_int_eq(o[i], want[i]);
    h_free(h);
}
END_TEST

START_TEST(where_needs_bool_condition) {
    harness *h = h_new(16, "Where", 3, 1);
    int64_t d[1] = {2};
    float c[2] = {1, 0}, x[2] = {0}, y[2] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, c);
    h_input(h, 1, 0, OCTET_FLOAT, 1, d, x);
    h_input(h, 2, 0, OCTET_FLOAT, 1, d, y);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "bool"));
    h_free(h);
}
END_TEST

/* ---- unary and clip ------------------------------------------------------------------------- */

START_TEST(unary_float_ops) {
    float x[5] = {-100.f, -1.f, 0.f, 0.5f, 100.f};
    int64_t d[1] = {5};
    const char *ops[] = {"Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Abs", "HardSwish", "HardSigmoid", "LeakyRelu"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        harness *h = h_new(14, ops[k], 1, 1);
        h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
        if (strcmp(ops[k], "LeakyRelu") == 0) h_attr_float(h, "alpha", 0.1f);
        ck_assert_int_eq(h_run(h), 0);
        const float *y = h_out(h, 0)->data;
        for (int i = 0; i < 5; i++) {
            double v = x[i], w;
            switch (k) {
            case 0: w = v > 0 ? v : 0; break;
            case 1: w = 1.0 / (1.0 + exp(-v)); break;
            case 2: w = tanh(v); break;
            case 3: w = erf(v); break;
            case 4: w = exp(v); break;
            case 5: w = -v; break;
            case 6: w = fabs(v); break;
            case 7: w = v * fmin(fmax(v / 6 + 0.5, 0), 1); break;
            case 8: w = fmin(fmax(0.2 * v + 0.5, 0), 1); break;
            default: w = v < 0 ? 0.1 * v : v; break;
            }
            if (fabs(w) > FLT_MAX) ck_assert(isinf(y[i]));
            else ck_assert_msg(fabs(y[i] - w) <= 1e-30 + 1e-5 * fabs(w), "%s(%g) = %g, want %g", ops[k], v, y[i], w);
        }
        h_free(h);
    }
}
END_TEST

START_TEST(sigmoid_is_finite_at_extremes) {
    float x[2] = {-1000.f, 1000.f};
    int64_t d[1] = {2};
    harness *h = h_new(13, "Sigmoid", 1, 1);
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
    ck_assert_int_eq(h_run(h), 0);
    const float *y = h_out(h, 0)->data;
    ck_assert_float_eq(y[0], 0.f);
    ck_assert_float_eq(y[1], 1.f);
    h_free(h);
}
END_TEST

START_TEST(unary_int_ops) {
    int64_t d[1] = {3};
    int8_t x[3] = {-128, -3, 4};
    harness *h = h_new(14, "Neg", 1, 1);
    h_input(h, 0, 0, OCTET_INT8, 1, d, x);
    ck_assert_int_eq(h_run(h), 0);
    const int8_t *y = h_out(h, 0)->data;
    ck_assert_int_eq(y[0], -128);
    ck_assert_int_eq(y[1], 3);
    ck_assert_int_eq(y[2], -4);
    h_free(h);

    h = h_new(14, "Relu", 1, 1);
    h_input(h, 0, 0, OCTET_INT8, 1, d, x);
    ck_assert_int_eq(h_run(h), 0);
    y = h_out(h, 0)->data;
    ck_assert_int_eq(y[0], 0);
    ck_assert_int_eq(y[2], 4);
    h_free(h);

    h = h_new(14, "Sqrt", 1, 1);
    h_input(h, 0, 0, OCTET_INT8, 1, d, x);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_int_eq(h->err.code, OCTET_ERR_UNSUPPORTED);
    h_free(h);
}
END_TEST

START_TEST(clip_opset6_attributes) {
    harness *h = h_new(6, "Clip", 1, 1);
    int64_t d[1] = {4};
    float x[4] = {-5, -0.5f, 0.5f, 5};
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
    h_attr_float(h, "min", -1.f);
    h_attr_float(h, "max", 1.f);
    ck_assert_int_eq(h_run(h), 0);
    float want[4] = {-1, -0.5f, 0.5f, 1};
    assert_close(h_out(h, 0)->data, want, 4);
    h_free(h);
}
END_TEST

START_TEST(clip_opset13_inputs) {
    /* int8 with only max given (min omitted) */
    harness *h = h_new(13, "Clip", 3, 1);
    int64_t d[1] = {4};
    int8_t x[4] = {-128, -1, 10, 127}, mx = 5;
    h_input(h, 0, 0, OCTET_INT8, 1, d, x);
    h_input(h, 2, 0, OCTET_INT8, 0, NULL, &mx);
    ck_assert_int_eq(h_run(h), 0);
    const int8_t *y = h_out(h, 0)->data;
    int8_t want[4] = {-128, -1, 5, 5};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(y[i], want[i]);
    h_free(h);

    /* min > max: everything becomes max */
    h = h_new(13, "Clip", 3, 1);
    float xf[3] = {-3, 0, 3}, lo = 2.f, hi = 1.f;
    int64_t d3[1] = {3};
    h_input(h, 0, 0, OCTET_FLOAT, 1, d3, xf);
    h_input(h, 1, 0, OCTET_FLOAT, 0, NULL, &lo);
    h_input(h, 2, 0, OCTET_FLOAT, 0, NULL, &hi);
    ck_assert_int_eq(h_run(h), 0);
    float wantf[3] = {1, 1, 1};
    assert_close(h_out(h, 0)->data, wantf, 3);
    h_free(h);

    /* a bound of another dtype is refused */
    h = h_new(13, "Clip", 2, 1);
    int32_t lo_i = 0;
    h_input(h, 0, 0, OCTET_FLOAT, 1, d3, xf);
    h_input(h, 1, 0, OCTET_INT32, 0, NULL, &lo_i);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "min"));
    h_free(h);
}
END_TEST

/* ---- softmax -------------------------------------------------------------------------------- */

static void ref_softmax(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, int log_sm) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double m = -INFINITY, s = 0;
            for (int64_t r = 0; r < len; r++) m = fmax(m, x[(o * len + r) * inner + i]);
            for (int64_t r = 0; r < len; r++) s += exp(x[(o * len + r) * inner + i] - m);
            for (int64_t r = 0; r < len; r++) {
                double v = x[(o * len + r) * inner + i] - m;
                y[(o * len + r) * inner + i] = (float)(log_sm ? v - log(s) : exp(v) / s);
            }
        }
}

START_TEST(softmax_opset13_middle_axis) {
    for (int log_sm = 0; log_sm < 2; log_sm++) {
        harness *h = h_new(13, log_sm ? "LogSoftmax" : "Softmax", 1, 1);
        int64_t d[3] = {2, 3, 4};
        float x[24], want[24];
        unsigned seed = 3;
        for (int i = 0; i < 24; i++) x[i] = frand(&seed) * 3.f;
        h_input(h, 0, 0, OCTET_FLOAT, 3, d, x);
        h_attr_int(h, "axis", 1);
        ck_assert_int_eq(h_run(h), 0);
        ref_softmax(x, want, 2, 3, 4, log_sm);
        assert_close(h_out(h, 0)->data, want, 24);
        h_free(h);
    }
}
END_TEST

START_TEST(softmax_opset11_coerces_to_2d) {
    harness *h = h_new(11, "Softmax", 1, 1);
    int64_t d[3] = {2, 3, 4};
    float x[24], want[24];
    unsigned seed = 5;
    for (int i = 0; i < 24; i++) x[i] = frand(&seed);
    h_input(h, 0, 0, OCTET_FLOAT, 3, d, x);
    ck_assert_int_eq(h_run(h), 0); /* default axis 1: rows of 3*4 */
    ref_softmax(x, want, 2, 12, 1, 0);
    assert_close(h_out(h, 0)->data, want, 24);
    h_free(h);
}
END_TEST

START_TEST(softmax_large_numbers) {
    harness *h = h_new(13, "Softmax", 1, 1);
    int64_t d[1] = {3};
    float x[3] = {10000.f, 10001.f, 10002.f}, want[3];
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
    ck_assert_int_eq(h_run(h), 0);
    ref_softmax(x, want, 1, 3, 1, 0);
    assert_close(h_out(h, 0)->data, want, 3);
    h_free(h);
}
END_TEST

START_TEST(softmax_bad_axis) {
    harness *h = h_new(13, "Softmax", 1, 1);
    int64_t d[2] = {2, 2};
    float x[4] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
    h_attr_int(h, "axis", 2);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "axis"));
    h_free(h);
}
END_TEST

/* ---- reductions ----------------------------------------------------------------------------- */

START_TEST(reduce_sum_axes_input_general) {
    /* axes {0, 2} of [2,3,4] are not adjacent: the general walk */
    harness *h = h_new(13, "ReduceSum", 2, 1);
    int64_t d[3] = {2, 3, 4}, da[1] = {2}, axes[2] = {0, -1};
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    h_input(h, 0, 0, OCTET_FLOAT, 3, d, x);
    h_input(h, 1, 1, OCTET_INT64, 1, da, axes);
    h_attr_int(h, "keepdims", 0);
    ck_assert_int_eq(h_run(h), 0);
    int64_t dy[1] = {3};
    assert_shape(h_out(h, 0), 1, dy);
    const float *y = h_out(h, 0)->data;
    for (int j = 0; j < 3; j++) {
        float s = 0;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++) s += x[(i * 3 + j) * 4 + k];
        ck_assert_float_eq(y[j], s);
    }
    h_free(h);
}
END_TEST

START_TEST(reduce_mean_attr_middle_axis) {
    harness *h = h_new(13, "ReduceMean", 1, 1);
    int64_t d[3] = {2, 3, 4}, axes[1] = {1};
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)(i * i % 7);
    h_input(h, 0, 0, OCTET_FLOAT, 3, d, x);
    h_attr_ints(h, "axes", 1, axes);
    ck_assert_int_eq(h_run(h), 0);
    int64_t dy[3] = {2, 1, 4};
    assert_shape(h_out(h, 0), 3, dy);
    const float *y = h_out(h, 0)->data;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            float s = 0;
            for (int j = 0; j < 3; j++) s += x[(i * 3 + j) * 4 + k];
            ck_assert_float_eq_tol(y[i * 4 + k], s / 3.f, 1e-6f);
        }
    h_free(h);
}
END_TEST

START_TEST(reduce_max_all_and_int) {
    harness *h = h_new(13, "ReduceMax", 1, 1);
    int64_t d[2] = {2, 3};
    int32_t x[6] = {-5, 9, 3, 9, -100, 0};
    h_input(h, 0, 0, OCTET_INT32, 2, d, x);
    ck_assert_int_eq(h_run(h), 0);
    int64_t dy[2] = {1, 1};
    assert_shape(h_out(h, 0), 2, dy);
    ck_assert_int_eq(((int32_t *)h_out(h, 0)->data)[0], 9);
    h_free(h);
}
END_TEST

START_TEST(reduce_sum_noop_with_empty_axes) {
    harness *h = h_new(13, "ReduceSum", 2, 1);
    int64_t d[2] = {2, 2}, da[1] = {0};
    float x[4] = {1, 2, 3, 4};
    h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
    int64_t none[1] = {0};
    h_input(h, 1, 1, OCTET_INT64, 1, da, none);
    h_attr_int(h, "noop_with_empty_axes", 1);
    ck_assert_int_eq(h_run(h), 0);
    assert_shape(h_out(h, 0), 2, d);
    assert_close(h_out(h, 0)->data, x, 4);
    h_free(h);
}
END_TEST

START_TEST(reduce_bad_axes) {
    harness *h = h_new(13, "ReduceMean", 1, 1);
    int64_t d[2] = {2, 2}, dup[2] = {1, -1};
    float x[4] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
    h_attr_ints(h, "axes", 2, dup);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "twice"));
    h_free(h);

    h = h_new(13, "ReduceSum", 2, 1);
    int64_t da[1] = {1}, ax[1] = {0};
    h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
    h_input(h, 1, 0, OCTET_INT64, 1, da, ax); /* not a constant */
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "constant"));
    h_free(h);
}
END_TEST

START_TEST(reduce_sum_large_threaded) {
    /* [64, 1000] over axis 1 on 2 threads, against a double-precision sum */
    harness *h = h_new(11, "ReduceSum", 1, 1);
    int64_t d[2] = {64, 1000}, axes[1] = {1};
    float *x = malloc(sizeof(float) * 64000);
    unsigned seed = 9;
    for (int i = 0; i < 64000; i++) x[i] = frand(&seed);
    h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
    h_attr_ints(h, "axes", 1, axes);
    h_attr_int(h, "keepdims", 0);
    ck_assert_int_eq(h_run_threads(h, 2), 0);
    const float *y = h_out(h, 0)->data;
    for (int r = 0; r < 64; r++) {
        double s = 0;
        for (int c = 0; c < 1000; c++) s += x[r * 1000 + c];
        ck_assert_float_eq_tol(y[r], (float)s, 1e-3f);
    }
    free(x);
    h_free(h);
}
END_TEST

/* ---- argmax, topk, cast --------------------------------------------------------------------- */

START_TEST(argmax_keepdims_and_last_index) {
    for (int last = 0; last < 2; last++) {
        harness *h = h_new(13, "ArgMax", 1, 1);
        int64_t d[2] = {2, 3};
        float x[6] = {1, 7, 7, 4, 4, 2};
        h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
        h_attr_int(h, "axis", -1);
        h_attr_int(h, "keepdims", 0);
        h_attr_int(h, "select_last_index", last);
        ck_assert_int_eq(h_run(h), 0);
        int64_t dy[1] = {2};
        assert_shape(h_out(h, 0), 1, dy);
        ck_assert_int_eq(h_out(h, 0)->dtype, OCTET_INT64);
        const int64_t *y = h_out(h, 0)->data;
        ck_assert_int_eq(y[0], last ? 2 : 1);
        ck_assert_int_eq(y[1], last ? 1 : 0);
        h_free(h);
    }
    harness *h = h_new(13, "ArgMax", 1, 1);
    int64_t d[2] = {2, 3};
    int32_t x[6] = {1, 9, 3, 4, 5, 6};
    h_input(h, 0, 0, OCTET_INT32, 2, d, x);
    ck_assert_int_eq(h_run(h), 0); /* axis 0, keepdims 1 */
    int64_t dy[2] = {1, 3};
    assert_shape(h_out(h, 0), 2, dy);
    const int64_t *y = h_out(h, 0)->data;
    ck_assert_int_eq(y[0], 1);
    ck_assert_int_eq(y[1], 0);
    ck_assert_int_eq(y[2], 1);
    h_free(h);
}
END_TEST

START_TEST(topk_largest_smallest_ties) {
    for (int largest = 0; largest < 2; largest++) {
        harness *h = h_new(11, "TopK", 2, 2);
        int64_t d[2] = {2, 5}, dk[1] = {1}, k = 3;
        float x[10] = {3, 1, 3, 5, 0, /**/ 2, 2, 2, 9, -1};
        h_input(h, 0, 0, OCTET_FLOAT, 2, d, x);
        h_input(h, 1, 1, OCTET_INT64, 1, dk, &k);
        h_attr_int(h, "largest", largest);
        ck_assert_int_eq(h_run(h), 0);
        int64_t dy[2] = {2, 3};
        assert_shape(h_out(h, 0), 2, dy);
        assert_shape(h_out(h, 1), 2, dy);
        const float *v = h_out(h, 0)->data;
        const int64_t *ix = h_out(h, 1)->data;
        int64_t want_ix[2][6] = {{4, 1, 0, 9, 5, 6}, {3, 0, 2, 8, 5, 6}};
        for (int i = 0; i < 6; i++) {
            ck_assert_int_eq(ix[i], want_ix[largest][i] % 5);
            ck_assert_float_eq(v[i], x[(i / 3) * 5 + ix[i]]);
        }
        h_free(h);
    }
}
END_TEST

START_TEST(topk_axis0_and_bad_k) {
    harness *h = h_new(11, "TopK", 2, 2);
    int64_t d[2] = {3, 2}, dk[1] = {1}, k = 2;
    int64_t x[6] = {1, 60, 30, 20, 50, 40};
    h_input(h, 0, 0, OCTET_INT64, 2, d, x);
    h_input(h, 1, 1, OCTET_INT64, 1, dk, &k);
    h_attr_int(h, "axis", 0);
    ck_assert_int_eq(h_run(h), 0);
    const int64_t *v = h_out(h, 0)->data, *ix = h_out(h, 1)->data;
    int64_t want_v[4] = {50, 60, 30, 40}, want_i[4] = {2, 0, 1, 2};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(v[i], want_v[i]);
        ck_assert_int_eq(ix[i], want_i[i]);
    }
    h_free(h);

    h = h_new(11, "TopK", 2, 2);
    k = 7;
    h_input(h, 0, 0, OCTET_INT64, 2, d, x);
    h_input(h, 1, 1, OCTET_INT64, 1, dk, &k);
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_ptr_nonnull(strstr(h->err.msg, "k=7"));
    h_free(h);
}
END_TEST

START_TEST(cast_conversions) {
    int64_t d[1] = {5};
    float x[5] = {-2.7f, 2.7f, 1e20f, NAN, 0.f};
    harness *h = h_new(13, "Cast", 1, 1);
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
    h_attr_int(h, "to", OCTET_INT32);
    ck_assert_int_eq(h_run(h), 0);
    ck_assert_int_eq(h_out(h, 0)->dtype, OCTET_INT32);
    const int32_t *y = h_out(h, 0)->data;
    int32_t want[5] = {-2, 2, INT32_MAX, 0, 0};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(y[i], want[i]);
    h_free(h);

    h = h_new(13, "Cast", 1, 1);
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
    h_attr_int(h, "to", OCTET_BOOL);
    ck_assert_int_eq(h_run(h), 0);
    const uint8_t *b = h_out(h, 0)->data;
    uint8_t want_b[5] = {1, 1, 1, 1, 0};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(b[i], want_b[i]);
    h_free(h);

    int64_t big[2] = {300, -1};
    int64_t d2[1] = {2};
    h = h_new(13, "Cast", 1, 1);
    h_input(h, 0, 0, OCTET_INT64, 1, d2, big);
    h_attr_int(h, "to", OCTET_UINT8);
    ck_assert_int_eq(h_run(h), 0);
    const uint8_t *u = h_out(h, 0)->data;
    ck_assert_int_eq(u[0], 44);  /* wraps like numpy's astype */
    ck_assert_int_eq(u[1], 255);
    h_free(h);

    h = h_new(13, "Cast", 1, 1);
    h_input(h, 0, 0, OCTET_FLOAT, 1, d, x);
    h_attr_int(h, "to", 11); /* double */
    ck_assert_int_eq(h_infer(h), -1);
    ck_assert_int_eq(h->err.code, OCTET_ERR_UNSUPPORTED);
    h_free(h);
}
END_TEST

static Suite *math_suite(void) {
    Suite *s = suite_create("ops_math");
    TCase *b = tcase_create("broadcast");
    tcase_add_test(b, add_same_shape);
    tcase_add_test(b, sub_broadcast_both_ways);
    tcase_add_test(b, mul_scalar_rank0);
    tcase_add_test(b, add_per_channel_threaded);
    tcase_add_test(b, bcast_kernel_random_shapes);
    tcase_add_test(b, bcast_mismatch_is_an_error);
    tcase_add_test(b, dtype_mismatch_is_an_error);
    tcase_add_test(b, missing_input_is_an_error);
    suite_add_tcase(s, b);
    TCase *i = tcase_create("integer");
    tcase_add_test(i, int_div_truncates);
    tcase_add_test(i, int_div_by_zero_is_an_error);
    tcase_add_test(i, uint8_arith_wraps);
    tcase_add_test(i, pow_mixed_dtypes);
    tcase_add_test(i, prelu_per_channel);
    tcase_add_test(i, prelu_slope_must_broadcast_to_x);
    suite_add_tcase(s, i);
    TCase *v = tcase_create("variadic_compare_where");
    tcase_add_test(v, max_three_inputs_broadcast);
    tcase_add_test(v, mean_and_single_input_sum);
    tcase_add_test(v, min_int8);
    tcase_add_test(v, compare_gives_bool);
    tcase_add_test(v, where_broadcast_int64);
    tcase_add_test(v, where_needs_bool_condition);
    suite_add_tcase(s, v);
    TCase *u = tcase_create("unary");
    tcase_add_test(u, unary_float_ops);
    tcase_add_test(u, sigmoid_is_finite_at_extremes);
    tcase_add_test(u, unary_int_ops);
    tcase_add_test(u, clip_opset6_attributes);
    tcase_add_test(u, clip_opset13_inputs);
    suite_add_tcase(s, u);
    TCase *sm = tcase_create("softmax");
    tcase_add_test(sm, softmax_opset13_middle_axis);
    tcase_add_test(sm, softmax_opset11_coerces_to_2d);
    tcase_add_test(sm, softmax_large_numbers);
    tcase_add_test(sm, softmax_bad_axis);
    suite_add_tcase(s, sm);
    TCase *r = tcase_create("reduce");
    tcase_add_test(r, reduce_sum_axes_input_general);
    tcase_add_test(r, reduce_mean_attr_middle_axis);
    tcase_add_test(r, reduce_max_all_and_int);
    tcase_add_test(r, reduce_sum_noop_with_empty_axes);
    tcase_add_test(r, reduce_bad_axes);
    tcase_add_test(r, reduce_sum_large_threaded);
    suite_add_tcase(s, r);
    TCase *o = tcase_create("argmax_topk_cast");
    tcase_add_test(o, argmax_keepdims_and_last_index);
    tcase_add_test(o, topk_largest_smallest_ties);
    tcase_add_test(o, topk_axis0_and_bad_k);
    tcase_add_test(o, cast_conversions);
    suite_add_tcase(s, o);
    return s;
}

int main(void) {
    return test_run_suite(math_suite());
}
