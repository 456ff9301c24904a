/* The calibrator: observers on known distributions, the scale/zero-point and bias rules, and
   models/brain_tumor_cnn.onnx quantized end to end (Q/DQ inserted, written as ONNX, loaded back,
   its convs planned as int8, its output close to fp32). No Python or ONNX Runtime needed. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/calibrate.h"
#include "engine/model.h"
#include "engine/octet.h"
#include "engine/passes/passes.h"
#include "loader/loader.h"
#include "test_session.h"
#include "test_util.h"

/* ---- observers ------------------------------------------------------------------------------ */

static oct_observer observe_twice(const float *x, int64_t n) {
    oct_observer o;
    oct_observer_init(&o);
    oct_observer_minmax(&o, x, n / 2);
    oct_observer_minmax(&o, x + n / 2, n - n / 2);
    ck_assert_int_eq(oct_observer_begin_hist(&o, NULL), 0);
    oct_observer_hist(&o, x, n);
    return o;
}

START_TEST(minmax_is_exact) {
    const float x[] = {0.5f, -3.25f, 7.125f, NAN, 2.f, -1.f};
    oct_observer o = observe_twice(x, 6);
    ck_assert(o.min == -3.25 && o.max == 7.125);
    ck_assert_int_eq(o.count, 5);
    double lo, hi;
    ck_assert_int_eq(oct_observer_range(&o, OCT_CALIB_MINMAX, 0, false, &lo, &hi, NULL), 0);
    ck_assert(lo == -3.25 && hi == 7.125);
    ck_assert(oct_observer_clip_rate(&o, lo, hi) == 0.0);
    /* A positive-only tensor still gets 0 in its range. */
    const float y[] = {2.f, 3.f};
    oct_observer p = observe_twice(y, 2);
    oct_observer_range(&p, OCT_CALIB_MINMAX, 0, false, &lo, &hi, NULL);
    ck_assert(lo == 0.0 && hi == 3.0);
    oct_observer_free(&o);
    oct_observer_free(&p);
}
END_TEST

START_TEST(percentile_of_known_array) {
    enum { N = 10000 };
    static float x[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i + 1); /* 1..10000 */
    oct_observer o = observe_twice(x, N);
    double lo, hi;
    ck_assert_int_eq(oct_observer_range(&o, OCT_CALIB_PERCENTILE, 90.0, false, &lo, &hi, NULL), 0);
    const double bin = 10000.0 / OCT_OBS_BINS;
    ck_assert_msg(fabs(hi - 9000.0) <= bin, "90th percentile %g, want 9000 +- %g", hi, bin);
    ck_assert(lo == 0.0);
    const double clip = oct_observer_clip_rate(&o, lo, hi);
    ck_assert_msg(fabs(clip - 0.10) < 0.002, "clip rate %g, want 0.10", clip);
    ck_assert_int_eq(oct_observer_range(&o, OCT_CALIB_PERCENTILE, 0.0, false, &lo, &hi, NULL), -1);
    oct_observer_free(&o);
}
END_TEST

/* Deterministic pseudo-random numbers in (0, 1). */
static double uniform01(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((*s >> 11) + 0.5) / 9007199254740992.0;
}

START_TEST(entropy_and_mse_clip_long_tails) {
    enum { N = 200000 };
    static float lap[N], uni[N];
    uint64_t s = 42;
    for (int i = 0; i < N; i++) {
        const double u = uniform01(&s) - 0.5;
        lap[i] = (float)(-(u < 0 ? -1 : 1) * log(1 - 2 * fabs(u))); /* Laplace(0, 1): long tails */
        uni[i] = (float)(2 * uniform01(&s) - 1);                  /* uniform on (-1, 1) */
    }
    lap[0] = 40.f; /* one outlier */
    oct_observer ol = observe_twice(lap, N), ou = observe_twice(uni, N);
    const oct_calib_method methods[2] = {OCT_CALIB_ENTROPY, OCT_CALIB_MSE};
    for (int m = 0; m < 2; m++) {
        double lo, hi;
        ck_assert_int_eq(oct_observer_range(&ol, methods[m], 0, false, &lo, &hi, NULL), 0);
        /* Far below the outlier, well above the bulk (|x| < 3 for 95% of Laplace(0, 1)). */
        ck_assert_msg(hi < 0.5 * ol.max && hi > 3.0 && lo < -3.0 && lo > -ol.max, "method %d: range [%g, %g]", m,
                      lo, hi);
        ck_assert(oct_observer_clip_rate(&ol, lo, hi) > 0.0);
        ck_assert_int_eq(oct_observer_range(&ou, methods[m], 0, false, &lo, &hi, NULL), 0);
        ck_assert_msg(hi > 0.9 * ou.max && lo < 0.9 * ou.min, "method %d: uniform range [%g, %g]", m, lo, hi);
    }
    oct_observer_free(&ol);
    oct_observer_free(&ou);
}
END_TEST

START_TEST(scale_and_zero_point) {
    oct_qparam q;
    oct_qparam_from_range(&q, OCTET_UINT8, 0.0, 25.5);
    ck_assert(q.zp == 0 && fabsf(q.scale - 0.1f) < 1e-7f);
    oct_qparam_from_range(&q, OCTET_UINT8, -1.0, 3.0);
    ck_assert_int_eq(q.zp, 64); /* rint(1 / (4/255)) = rint(63.75) */
    oct_qparam_from_range(&q, OCTET_INT8, -2.54, 1.0);
    ck_assert(q.zp == 0 && fabsf(q.scale - 0.02f) < 1e-7f);
    oct_qparam_from_range(&q, OCTET_UINT8, 0.0, 0.0); /* an all-zero tensor */
    ck_assert(q.scale == 1.f && q.zp == 0);
}
END_TEST

/* ---- the brain tumour model end to end ------------------------------------------------------- */

#define N_SAMPLES 6

/* Smooth pseudo-images 0..255 (blobs on a dark background), [1, 1, 128, 128]. */
static int fake_images(void *user, int64_t i, octet_tensor *in, octet_error *err) {
    (void)user;
    (void)err;
    in[0] = (octet_tensor){.dtype = OCTET_FLOAT, .rank = 4, .dims = {1, 1, 128, 128}};
    float *d = malloc(128 * 128 * sizeof(float));
    ck_assert_ptr_nonnull(d);
    const double cx = 40 + 9 * (double)i, cy = 70 - 5 * (double)i, r = 18 + 3 * (double)i;
    for (int y = 0; y < 128; y++)
        for (int x = 0; x < 128; x++) {
            const double head = hypot(x - 64, y - 64) < 55 ? 90 + 0.3 * x : 5;
            const double blob = 150 * exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * r * r));
            d[y * 128 + x] = (float)fmin(255, head + blob);
        }
    in[0].data = d;
    return 0;
}

static octet_model *load_model(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/brain_tumor_cnn.onnx", test_source_root());
    octet_error err = {0};
    octet_model *m = octet_model_load(path, &err);
    ck_assert_msg(m != NULL && oct_model_keep_weights(m, &err) == 0, "%s", err.msg); /* graph read directly */
    return m;
}

static const oct_node *node_named(const oct_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
    return NULL;
}

static const float *const_data(const oct_graph *g, int v) {
    ck_assert(v >= 0 && g->values[v].kind == OCT_VAL_CONST);
    return g->values[v].data;
}

/* The bias of the first conv is int32 round(b / (s_x * s_w[c])) at scale s_x * s_w[c], axis 0. */
static void check_bias(const oct_graph *g, const oct_calib_result *r, const float *bias_fp32, int64_t m) {
    const oct_node *conv = node_named(g, "/features/features.0/features.0.0/Conv");
    ck_assert_ptr_nonnull(conv);
    const oct_node *xdq = &g->nodes[g->values[conv->in[0]].producer];
    const oct_node *wdq = &g->nodes[g->values[conv->in[1]].producer];
    const oct_node *bdq = &g->nodes[g->values[conv->in[2]].producer];
    ck_assert_str_eq(bdq->op_type, "DequantizeLinear");
    ck_assert_int_eq(oct_attr_int(bdq, "axis", 1), 0);
    ck_assert_int_eq(g->values[bdq->in[0]].dtype, OCTET_INT32);
    const float sx = const_data(g, xdq->in[1])[0];
    const float *sw = const_data(g, wdq->in[1]), *sb = const_data(g, bdq->in[1]);
    const int32_t *qb = g->values[bdq->in[0]].data;
    (void)r;
    for (int64_t c = 0; c < m; c++) {
        ck_assert(sb[c] == sx * sw[c]);
        ck_assert_int_eq(qb[c], (int32_t)rint((double)bias_fp32[c] / (double)sb[c]));
    }
}

static double sqnr_db(const float *ref, const float *got, int64_t n) {
    double s = 0, e = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)ref[i] * ref[i];
        e += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
    }
    return e > 0 ? 10 * log10(s / e) : INFINITY;
}

static void quantize_model(oct_calib_method method, octet_dtype act, const char *exclude) {
    octet_model *model = load_model();
    octet_error err = {0};
    oct_calib_source src = {N_SAMPLES, fake_images, NULL};
    oct_calib_options o = {method, 99.99, act, 2, NULL, NULL};
    oct_calib_result r;
    ck_assert_msg(oct_calibrate(model->graph, &src, &o, &r, &err) == 0, "%s", err.msg);
    /* The first conv's fp32 bias, before insertion replaces it. */
    const oct_node *c0 = node_named(r.net.g, "/features/features.0/features.0.0/Conv");
    ck_assert_ptr_nonnull(c0);
    const int64_t m = oct_value_numel(&r.net.g->values[c0->in[2]]);
    float *b0 = malloc((size_t)m * sizeof(float));
    memcpy(b0, const_data(r.net.g, c0->in[2]), (size_t)m * sizeof(float));

    int *qv = NULL, nq = 0;
    oct_qparam *qp = NULL;
    const char *ex[1] = {exclude};
    ck_assert_msg(oct_qdq_insert(r.net.g, r.params, r.n_params, ex, exclude ? 1 : 0, &qv, &qp, &nq, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_ge(nq, 12);
    for (int k = 0; k < nq; k++) {
        ck_assert(qp[k].scale > 0 && isfinite(qp[k].scale) && qp[k].type == act);
        if (act == OCTET_INT8) ck_assert_int_eq(qp[k].zp, 0);
        if (method == OCT_CALIB_MINMAX) ck_assert(qp[k].clip_rate == 0.0);
    }
    check_bias(r.net.g, &r, b0, m);
    free(b0);

    char *path = test_write_temp("", 0, ".onnx");
    ck_assert_msg(oct_onnx_write(r.net.g, path, &err) == 0, "%s", err.msg);
    octet_model *qm = octet_model_load(path, &err);
    ck_assert_msg(qm != NULL && oct_model_keep_weights(qm, &err) == 0, "%s", err.msg); /* graph read directly */

    /* Every conv of the written model is planned int8, except the excluded one. */
    oct_shape shape = {.rank = 4, .dims = {1, 1, 128, 128}};
    oct_plan *p = oct_plan_build(qm->graph, &shape, NULL, 1, NULL, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    int int8_convs = 0, fp32_convs = 0;
    for (int k = 0; k < p->n_exec; k++) {
        const oct_node *n = &p->g->nodes[p->exec[k]];
        if (strcmp(n->op_type, "QLinearConv") == 0) int8_convs++;
        if (strcmp(n->op_type, "Conv") == 0) {
            fp32_convs++;
            ck_assert_str_eq(oct_node_precision(p->g, n), "fp32");
            ck_assert_msg(exclude && strcmp(n->name, exclude) == 0, "conv '%s' not lowered: %s", n->name,
                          n->why_fp32 ? n->why_fp32 : "?");
        }
    }
    ck_assert_int_eq(int8_convs + fp32_convs, 8);
    ck_assert_int_eq(fp32_convs, exclude ? 1 : 0);
    oct_plan_free(p);

    /* The per-tensor report: every tensor measured, and well above noise. Before any session:
       a session may release the weights of the graph it plans (engine/model.h), and the report
       plans the graphs themselves. */
    const char **names = malloc((size_t)nq * sizeof *names);
    double *per = malloc((size_t)nq * sizeof *per);
    for (int k = 0; k < nq; k++) names[k] = r.net.g->values[qv[k]].name;
    ck_assert_msg(oct_calib_sqnr(model->graph, qm->graph, &src, 3, 2, nq, names, qp, per, &err) == 0, "%s", err.msg);
    for (int k = 0; k < nq; k++) ck_assert_msg(per[k] > 15.0, "tensor '%s': SQNR %.2f dB", names[k], per[k]);
    free(names);
    free(per);

    /* Output of the int8 model vs fp32 on the calibration inputs, through the public API. */
    octet_session *sf = octet_session_create(model, NULL, &err), *sq = octet_session_create(qm, NULL, &err);
    ck_assert(sf && sq);
    float ref[N_SAMPLES * 4], got[N_SAMPLES * 4];
    for (int i = 0; i < N_SAMPLES; i++) {
        octet_tensor in, of, oq;
        fake_images(NULL, i, &in, NULL);
        ck_assert_msg(octet_session_run(sf, 1, NULL, &in, 1, NULL, &of, &err) == 0, "%s", err.msg);
        ck_assert_msg(octet_session_run(sq, 1, NULL, &in, 1, NULL, &oq, &err) == 0, "%s", err.msg);
        memcpy(ref + 4 * i, of.data, 4 * sizeof(float));
        memcpy(got + 4 * i, oq.data, 4 * sizeof(float));
        octet_tensor_release(&in);
        octet_tensor_release(&of);
        octet_tensor_release(&oq);
    }
    const double db = sqnr_db(ref, got, N_SAMPLES * 4);
    ck_assert_msg(db > 20.0, "output SQNR %.2f dB", db);

    octet_session_free(sf);
    octet_session_free(sq);
    octet_model_free(qm);
    unlink(path);
    free(path);
    free(qv);
    free(qp);
    oct_calib_result_free(&r);
    octet_model_free(model);
}

START_TEST(model_minmax_u8) { quantize_model(OCT_CALIB_MINMAX, OCTET_UINT8, NULL); }
END_TEST
START_TEST(model_percentile_s8) { quantize_model(OCT_CALIB_PERCENTILE, OCTET_INT8, NULL); }
END_TEST
START_TEST(model_mse_u8_exclude) { quantize_model(OCT_CALIB_MSE, OCTET_UINT8, "/features/features.2/features.2.0/Conv"); }
END_TEST

START_TEST(exclude_unknown_node_fails) {
    octet_model *model = load_model();
    octet_error err = {0};
    oct_calib_source src = {2, fake_images, NULL};
    oct_calib_options o = {OCT_CALIB_MINMAX, 0, OCTET_UINT8, 1, NULL, NULL};
    oct_calib_result r;
    ck_assert_int_eq(oct_calibrate(model->graph, &src, &o, &r, &err), 0);
    int *qv = NULL, nq = 0;
    oct_qparam *qp = NULL;
    const char *ex[1] = {"no_such_conv"};
    ck_assert_int_eq(oct_qdq_insert(r.net.g, r.params, r.n_params, ex, 1, &qv, &qp, &nq, &err), -1);
    ck_assert_msg(strstr(err.msg, "no_such_conv") != NULL, "%s", err.msg);
    oct_calib_result_free(&r);
    /* No data. */
    src.n_batches = 0;
    ck_assert_int_eq(oct_calibrate(model->graph, &src, &o, &r, &err), -1);
    octet_model_free(model);
}
END_TEST

int main(void) {
    Suite *s = suite_create("calibrate");
    TCase *t = tcase_create("observers");
    tcase_add_test(t, minmax_is_exact);
    tcase_add_test(t, percentile_of_known_array);
    tcase_add_test(t, entropy_and_mse_clip_long_tails);
    tcase_add_test(t, scale_and_zero_point);
    suite_add_tcase(s, t);
    TCase *m = tcase_create("model");
    tcase_set_timeout(m, 300);
    tcase_add_test(m, model_minmax_u8);
    tcase_add_test(m, model_percentile_s8);
    tcase_add_test(m, model_mse_u8_exclude);
    tcase_add_test(m, exclude_unknown_node_fails);
    suite_add_tcase(s, m);
    return test_run_suite(s);
}
