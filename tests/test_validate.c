/* `octet validate` and what it stands on: the metrics (hand-made confusion matrices with exact
   values, Dice on tiny volumes), the clinical gate's edges, the data-set reader (HWC -> CHW,
   gray -> RGB, bilinear resize against torch's values, --preprocess specs), and the command run
   in-process on a tiny 3-D segmentation model and data set that this file writes itself
   (protobuf-c for the model, a stored zip of .npy members for the data), so CI needs no Python. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx.pb-c.h"

#include "loader/dataset.h"
#include "loader/npz.h"
#include "test_npz.h"
#include "test_session.h"
#include "test_util.h"

/* The command and its helpers are compiled in, so the test drives validate_main directly. */
#include "tools/cli_util.c"
#include "tools/cmd_validate.c"
#include "tools/metrics.c"
#include "tools/evaluate.c"

#define EPS 1e-12

/* ---------------- metrics ---------------- */

START_TEST(class_metrics_exact) {
    /* rows: truth, columns: prediction; class 2 never occurs nor is predicted */
    const int64_t cm[9] = {5, 1, 0, 2, 3, 0, 0, 0, 0};
    oct_class_summary s;
    double p[3], r[3], f[3];
    oct_class_metrics(cm, 3, &s, p, r, f);
    ck_assert_int_eq(s.total, 11);
    ck_assert_double_eq_tol(s.accuracy, 8.0 / 11, EPS);
    ck_assert_double_eq_tol(p[0], 5.0 / 7, EPS);
    ck_assert_double_eq_tol(r[0], 5.0 / 6, EPS);
    ck_assert_double_eq_tol(f[0], 10.0 / 13, EPS);
    ck_assert_double_eq_tol(p[1], 3.0 / 4, EPS);
    ck_assert_double_eq_tol(r[1], 3.0 / 5, EPS);
    ck_assert_double_eq_tol(f[1], 2.0 / 3, EPS);
    ck_assert_double_eq(p[2], 0);
    ck_assert(isnan(r[2]) && isnan(f[2]));
    ck_assert_double_eq_tol(s.macro_f1, (10.0 / 13 + 2.0 / 3) / 2, EPS);
}
END_TEST

START_TEST(class_metrics_predicted_but_absent) {
    /* class 1 has no sample but is predicted once: precision 0, recall n/a, F1 0 (counted) */
    const int64_t cm[4] = {1, 1, 0, 0};
    oct_class_summary s;
    double p[2], r[2], f[2];
    oct_class_metrics(cm, 2, &s, p, r, f);
    ck_assert_double_eq_tol(s.accuracy, 0.5, EPS);
    ck_assert_double_eq(p[0], 1);
    ck_assert_double_eq_tol(r[0], 0.5, EPS);
    ck_assert_double_eq_tol(f[0], 2.0 / 3, EPS);
    ck_assert_double_eq(p[1], 0);
    ck_assert(isnan(r[1]));
    ck_assert_double_eq(f[1], 0);
    ck_assert_double_eq_tol(s.macro_f1, 1.0 / 3, EPS);
    /* nothing at all */
    const int64_t zero[4] = {0};
    oct_class_metrics(zero, 2, &s, NULL, NULL, NULL);
    ck_assert(isnan(s.accuracy) && isnan(s.macro_f1));
}
END_TEST

START_TEST(argmax_ties_and_nan) {
    const float a[4] = {1, 3, 3, 2};
    ck_assert_int_eq(oct_argmax(a, 4, 1), 1);
    const float b[3] = {NAN, -5, NAN};
    ck_assert_int_eq(oct_argmax(b, 3, 1), 1);
    const float strided[6] = {0, 9, 5, 9, 1, 9}; /* every other value */
    ck_assert_int_eq(oct_argmax(strided, 3, 2), 1);
}
END_TEST

START_TEST(dice_values) {
    bool absent = true;
    ck_assert_double_eq_tol(oct_dice(3, 4, 4, &absent), 0.75, EPS);
    ck_assert(!absent);
    ck_assert_double_eq(oct_dice(0, 2, 0, &absent), 0);
    ck_assert(!absent);
    ck_assert_double_eq(oct_dice(0, 0, 0, &absent), 1); /* absent from both: 1 */
    ck_assert(absent);
    /* mean over foreground classes present in the labels: classes 1 and 3 */
    const double d[4] = {0.99, 0.5, 1.0, 0.7};
    const int64_t lab[4] = {100, 10, 0, 5};
    ck_assert_double_eq_tol(oct_mean_dice(d, lab, 4), 0.6, EPS);
    const int64_t bg_only[2] = {7, 0};
    const double d2[2] = {0.8, 1.0};
    ck_assert_double_eq_tol(oct_mean_dice(d2, bg_only, 2), 0.9, EPS);
}
END_TEST

/* ---------------- the gate ---------------- */

START_TEST(gate_edges) {
    ck_assert(oct_gate_within(1.0, 1.0));
    ck_assert(!oct_gate_within(1.01, 1.0));
    ck_assert(oct_gate_within(97.4 - 96.4, 1.0)); /* 1.0000000000000142 in doubles */
    ck_assert(!oct_gate_within(1.0 + 1e-6, 1.0));
    ck_assert(oct_gate_within(-3, 0)); /* an improvement */

    /* 100 + 100 samples; the candidate loses one in each class: accuracy and both recalls drop
       by exactly 1.0 point */
    int64_t ref[4] = {100, 0, 0, 100}, test[4] = {99, 1, 1, 99};
    oct_gate_result g = oct_gate_classification(ref, test, 2, 1.0);
    ck_assert(g.approved);
    ck_assert_double_eq_tol(g.worst_drop, 1.0, EPS);
    ck_assert_int_eq(g.worst_class, -1); /* the accuracy is checked first and wins the tie */
    ck_assert(!oct_gate_classification(ref, test, 2, 0.99).approved);

    /* 5000 + 5000: 50 and 51 lost, accuracy drop 1.01 points: rejected */
    int64_t ref2[4] = {5000, 0, 0, 5000}, test2[4] = {4950, 50, 51, 4949};
    g = oct_gate_classification(ref2, test2, 2, 1.0);
    ck_assert(!g.approved);
    ck_assert_double_eq_tol(g.worst_drop, 1.02, 1e-9); /* class 1's recall */
    ck_assert_int_eq(g.worst_class, 1);

    /* accuracy holds (0.1 point) but the rare class 0 loses 10 points of recall */
    int64_t ref3[4] = {10, 0, 0, 990}, test3[4] = {9, 1, 0, 990};
    g = oct_gate_classification(ref3, test3, 2, 1.0);
    ck_assert(!g.approved);
    ck_assert_int_eq(g.worst_class, 0);
    ck_assert_double_eq_tol(g.worst_drop, 10.0, 1e-9);

    /* a class with no samples is not gated, however it is predicted */
    int64_t ref4[4] = {10, 0, 0, 0}, test4[4] = {10, 0, 0, 0};
    ck_assert(oct_gate_classification(ref4, test4, 2, 0).approved);

    /* segmentation: mean and per class */
    const double dr[3] = {0.99, 0.90, 0.80}, dt[3] = {0.99, 0.89, 0.80};
    g = oct_gate_segmentation(dr, 0.85, dt, 0.845, 3, 0.01);
    ck_assert(g.approved);
    ck_assert_int_eq(g.worst_class, 1);
    const double dt2[3] = {0.99, 0.90, 0.7899};
    g = oct_gate_segmentation(dr, 0.85, dt2, 0.845, 3, 0.01);
    ck_assert(!g.approved);
    ck_assert_int_eq(g.worst_class, 2);
    g = oct_gate_segmentation(dr, 0.85, dr, 0.8399, 3, 0.01);
    ck_assert(!g.approved);
    ck_assert_int_eq(g.worst_class, -1);
}
END_TEST

/* ---------------- writing .npz files ---------------- */

static oct_dataset *open_x(const npy_member *x, const char *spec, octet_error *err) {
    char *path = write_npz(x, 1);
    oct_preprocess pp = {.scale = 1.f};
    if (spec) ck_assert_int_eq(oct_preprocess_parse(spec, &pp, err), 0);
    oct_dataset *ds = oct_dataset_open(path, &pp, err);
    unlink(path);
    free(path);
    return ds;
}

/* ---------------- the data-set reader ---------------- */

START_TEST(dataset_hwc_to_chw) {
    uint8_t px[2 * 2 * 3 * 3]; /* [N=2, H=2, W=3, C=3] */
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 7 % 251);
    npy_member x = {"x", "|u1", 4, {2, 2, 3, 3}, px, sizeof px};
    octet_error err = {0};
    oct_dataset *ds = open_x(&x, NULL, &err);
    ck_assert_msg(ds, "%s", err.msg);
    ck_assert_int_eq(oct_dataset_count(ds), 2);
    ck_assert_ptr_null(oct_dataset_labels(ds, NULL, NULL));
    const int64_t dims[4] = {-1, 3, 2, 3};
    octet_tensor t;
    ck_assert_msg(oct_dataset_batch(ds, 1, 1, 4, dims, &t, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(t.dtype, OCTET_FLOAT);
    ck_assert_int_eq(t.dims[0], 1);
    ck_assert_int_eq(t.dims[1], 3);
    const float *v = t.data;
    for (int c = 0; c < 3; c++)
        for (int h = 0; h < 2; h++)
            for (int w = 0; w < 3; w++)
                ck_assert_float_eq(v[(c * 2 + h) * 3 + w], px[18 + (h * 3 + w) * 3 + c]);
    octet_tensor_release(&t);
    /* out of range */
    ck_assert_int_eq(oct_dataset_batch(ds, 1, 2, 4, dims, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "outside the 2 samples"));
    oct_dataset_free(ds);
}
END_TEST

START_TEST(dataset_gray_to_rgb) {
    uint8_t px[4] = {0, 51, 102, 255};
    npy_member x = {"x", "|u1", 3, {1, 2, 2}, px, sizeof px};
    const int64_t rgb[4] = {1, 3, 2, 2}, gray[4] = {1, 1, 2, 2};
    octet_error err = {0};
    octet_tensor t;
    /* without --preprocess: the channel axis is added, but 1 -> 3 channels is refused */
    oct_dataset *ds = open_x(&x, NULL, &err);
    ck_assert_msg(ds, "%s", err.msg);
    ck_assert_int_eq(oct_dataset_batch(ds, 0, 1, 4, gray, &t, &err), 0);
    ck_assert_float_eq(((float *)t.data)[3], 255.f);
    octet_tensor_release(&t);
    ck_assert_int_eq(oct_dataset_batch(ds, 0, 1, 4, rgb, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "[1, 1, 2, 2]") && strstr(err.msg, "[1, 3, 2, 2]"), "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "--preprocess"));
    oct_dataset_free(ds);
    /* with it: each channel is the gray value / 255, normalised per channel */
    ds = open_x(&x, "scale=0.00392156862745098,mean=0:0.5:1,std=1:0.5:2", &err);
    ck_assert_msg(ds, "%s", err.msg);
    ck_assert_msg(oct_dataset_batch(ds, 0, 1, 4, rgb, &t, &err) == 0, "%s", err.msg);
    const float *v = t.data;
    for (int p = 0; p < 4; p++) {
        float u = px[p] / 255.f;
        ck_assert_float_eq_tol(v[p], u, 1e-6);
        ck_assert_float_eq_tol(v[4 + p], (u - 0.5f) / 0.5f, 1e-6);
        ck_assert_float_eq_tol(v[8 + p], (u - 1.f) / 2.f, 1e-6);
    }
    octet_tensor_release(&t);
    oct_dataset_free(ds);
}
END_TEST

START_TEST(dataset_resize) {
    /* torch.nn.functional.interpolate(x, size=(4, 4), mode='bilinear', align_corners=False) */
    uint8_t up[4] = {0, 1, 2, 3};
    const float want_up[16] = {0.0f, 0.25f, 0.75f, 1.0f, 0.5f, 0.75f, 1.25f, 1.5f,
                               1.5f, 1.75f, 2.25f, 2.5f, 2.0f, 2.25f, 2.75f, 3.0f};
    npy_member x = {"x", "|u1", 3, {1, 2, 2}, up, sizeof up};
    octet_error err = {0};
    octet_tensor t;
    oct_dataset *ds = open_x(&x, "raw", &err);
    ck_assert_msg(ds, "%s", err.msg);
    const int64_t big[4] = {1, 1, 4, 4};
    ck_assert_msg(oct_dataset_batch(ds, 0, 1, 4, big, &t, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 16; i++) ck_assert_float_eq_tol(((float *)t.data)[i], want_up[i], 1e-6);
    octet_tensor_release(&t);
    oct_dataset_free(ds);
    /* down: a 4x4 ramp 4i+j to 2x2 averages 2x2 blocks; 6x3 to 3x2 mixes scales */
    float ramp[16], out[6];
    for (int i = 0; i < 16; i++) ramp[i] = (float)i;
    oct_resize_bilinear(ramp, 4, 4, out, 2, 2);
    ck_assert_float_eq_tol(out[0], 2.5f, 1e-6);
    ck_assert_float_eq_tol(out[1], 4.5f, 1e-6);
    ck_assert_float_eq_tol(out[2], 10.5f, 1e-6);
    ck_assert_float_eq_tol(out[3], 12.5f, 1e-6);
    /* 4x4 -> 3x2: source rows (d + 0.5) * 4/3 - 0.5 = 1/6, 1.5, 17/6; columns 0.5, 2.5; bilinear
       reproduces a linear ramp exactly */
    oct_resize_bilinear(ramp, 4, 4, out, 3, 2);
    const float ys[3] = {1.f / 6, 1.5f, 17.f / 6}, xs[2] = {0.5f, 2.5f};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 2; c++) ck_assert_float_eq_tol(out[r * 2 + c], 4 * ys[r] + xs[c], 1e-5);
    /* without a spec a size mismatch is an error naming both shapes */
    ds = open_x(&x, NULL, &err);
    ck_assert_int_eq(oct_dataset_batch(ds, 0, 1, 4, big, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "[1, 1, 2, 2]") && strstr(err.msg, "[1, 1, 4, 4]"), "%s", err.msg);
    oct_dataset_free(ds);
}
END_TEST

START_TEST(dataset_labels_and_names) {
    float xs[6] = {1, 2, 3, 4, 5, 6};
    uint8_t ys[3] = {2, 0, 1};
    /* '<U5' names: UTF-32LE, NUL padded; the second has a non-ASCII letter */
    uint32_t un[3][5] = {{'c', 'a', 't'}, {'c', 0xe9, 'p', 'e'}, {'d', 'o', 'g', 's', '!'}};
    npy_member m[3] = {{"x", "<f4", 2, {3, 2}, xs, sizeof xs},
                       {"y", "|u1", 1, {3}, ys, sizeof ys},
                       {"class_names", "<U5", 1, {3}, un, sizeof un}};
    char *path = write_npz(m, 3);
    octet_error err = {0};
    oct_dataset *ds = oct_dataset_open(path, NULL, &err);
    ck_assert_msg(ds, "%s", err.msg);
    int rank, n;
    const int64_t *dims;
    const int64_t *y = oct_dataset_labels(ds, &rank, &dims);
    ck_assert_int_eq(rank, 1);
    ck_assert_int_eq(y[0], 2);
    ck_assert_int_eq(y[2], 1);
    const char *const *names = oct_dataset_class_names(ds, &n);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[0], "cat");
    ck_assert_str_eq(names[1], "c\xc3\xa9pe");
    ck_assert_str_eq(names[2], "dogs!");
    /* [N, 2] features into a [N, 2] model, as stored */
    const int64_t in[2] = {2, 2};
    octet_tensor t;
    ck_assert_int_eq(oct_dataset_batch(ds, 1, 2, 2, in, &t, &err), 0);
    ck_assert_float_eq(((float *)t.data)[3], 6.f);
    octet_tensor_release(&t);
    /* a rank that fits neither way */
    const int64_t r5[5] = {1, 1, 2, 2, 2};
    ck_assert_int_eq(oct_dataset_batch(ds, 0, 1, 5, r5, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "rank"), "%s", err.msg);
    oct_dataset_free(ds);
    unlink(path);
    free(path);

    /* labels that do not match the samples, and bytes names */
    char sn[2][3] = {{'a', 'b', 0}, {'x', 'y', 'z'}};
    npy_member bad[3] = {{"x", "<f4", 2, {3, 2}, xs, sizeof xs},
                         {"y", "|u1", 1, {2}, ys, 2},
                         {"class_names", "|S3", 1, {2}, sn, sizeof sn}};
    path = write_npz(bad, 3);
    ck_assert_ptr_null(oct_dataset_open(path, NULL, &err));
    ck_assert_msg(strstr(err.msg, "y has 2 entries") && strstr(err.msg, "3 samples"), "%s", err.msg);
    unlink(path);
    free(path);
    bad[1].dims[0] = 3;
    bad[1].nbytes = 3;
    path = write_npz(bad, 3);
    ds = oct_dataset_open(path, NULL, &err);
    ck_assert_msg(ds, "%s", err.msg);
    names = oct_dataset_class_names(ds, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(names[0], "ab");
    ck_assert_str_eq(names[1], "xyz");
    oct_dataset_free(ds);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(preprocess_specs) {
    oct_preprocess pp;
    octet_error err = {0};
    ck_assert_int_eq(oct_preprocess_parse("none", &pp, &err), 0);
    ck_assert_int_eq(pp.enabled, 0);
    ck_assert_int_eq(oct_preprocess_parse("unit", &pp, &err), 0);
    ck_assert(pp.enabled && pp.n_channels == 0);
    ck_assert_float_eq_tol(pp.scale, 1 / 255.f, 1e-9);
    ck_assert_int_eq(oct_preprocess_parse("imagenet", &pp, &err), 0);
    ck_assert_int_eq(pp.n_channels, 3);
    ck_assert_float_eq_tol(pp.mean[1], 0.456f, 1e-7);
    ck_assert_float_eq_tol(pp.std[2], 0.225f, 1e-7);
    ck_assert_int_eq(oct_preprocess_parse("scale=0.0039,mean=0.485:0.456:0.406,std=0.229:0.224:0.225", &pp, &err), 0);
    ck_assert_float_eq_tol(pp.scale, 0.0039f, 1e-9);
    ck_assert_float_eq_tol(pp.mean[2], 0.406f, 1e-7);
    ck_assert_int_eq(oct_preprocess_parse("mean=0.5,std=0.25", &pp, &err), 0);
    ck_assert(pp.n_channels == 1 && pp.scale == 1.f && pp.std[2] == 0.25f);
    ck_assert_int_eq(oct_preprocess_parse("std=2:3:4", &pp, &err), 0);
    ck_assert(pp.n_channels == 3 && pp.mean[1] == 0.f && pp.std[1] == 3.f);

    static const struct {
        const char *spec, *needle;
    } bad[] = {
        {"", "empty"},
        {"foo", "not KEY=VALUE"},
        {"colour=1", "unknown or repeated key 'colour'"},
        {"scale=abc", "scale needs numbers"},
        {"scale=1:2", "scale takes 1"},
        {"mean=1:2", "mean takes 1 or 3 values, got 2"},
        {"mean=1:2:3:4", "got more"},
        {"std=0", "std must be positive"},
        {"std=1:-1:1", "std must be positive"},
        {"scale=1,scale=2", "repeated key 'scale'"},
        {"mean=1:", "mean needs numbers"},
        {"scale=nan", "scale needs numbers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        ck_assert_int_eq(oct_preprocess_parse(bad[i].spec, &pp, &err), -1);
        ck_assert_msg(strstr(err.msg, bad[i].needle), "'%s': %s", bad[i].spec, err.msg);
    }
    /* 3 means need a 3-channel model */
    uint8_t px[4] = {0};
    npy_member x = {"x", "|u1", 3, {1, 2, 2}, px, sizeof px};
    oct_dataset *ds = open_x(&x, "imagenet", &err);
    ck_assert_msg(ds, "%s", err.msg);
    const int64_t gray[4] = {1, 1, 2, 2};
    octet_tensor t;
    ck_assert_int_eq(oct_dataset_batch(ds, 0, 1, 4, gray, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "3 mean/std"));
    oct_dataset_free(ds);
}
END_TEST

/* ---------------- the command on a tiny 3-D segmentation model ---------------- */

static char *sdup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static Onnx__TensorProto *init_tensor(const char *name, int rank, const int64_t *dims, const float *v, size_t n) {
    Onnx__TensorProto *t = malloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = sdup(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)rank;
    t->dims = malloc(sizeof(int64_t) * (size_t)rank);
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.len = n * sizeof(float);
    t->raw_data.data = malloc(t->raw_data.len);
    memcpy(t->raw_data.data, v, t->raw_data.len);
    return t;
}

/* A float tensor value info; dim 0 is the symbolic batch "N". */
static Onnx__ValueInfoProto *value_info(const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *vi = malloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = sdup(name);
    vi->type = malloc(sizeof *vi->type);
    onnx__type_proto__init(vi->type);
    vi->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    Onnx__TypeProto__Tensor *tt = malloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = malloc(sizeof *tt->shape);
    onnx__tensor_shape_proto__init(tt->shape);
    tt->shape->n_dim = (size_t)rank;
    tt->shape->dim = malloc(sizeof *tt->shape->dim * (size_t)rank);
    for (int d = 0; d < rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = malloc(sizeof *dim);
        onnx__tensor_shape_proto__dimension__init(dim);
        if (d == 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = sdup("N");
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
        }
        tt->shape->dim[d] = dim;
    }
    vi->type->tensor_type = tt;
    return vi;
}

/* A 1x1x1 Conv3d from 1 to 4 channels: score_c = c * x + bias_c. With bias_c = -c^2/2 the
   argmax is the class nearest to x (score_c = x^2/2 - (x - c)^2/2), so voxel values 0, 1, 2
   segment as classes 0, 1, 2 and class 3 stays absent. bias2 moves class 2's boundary. */
static char *write_seg_model(float bias2) {
    Onnx__ModelProto *m = malloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->n_opset_import = 1;
    m->opset_import = malloc(sizeof *m->opset_import);
    m->opset_import[0] = malloc(sizeof **m->opset_import);
    onnx__operator_set_id_proto__init(m->opset_import[0]);
    m->opset_import[0]->domain = sdup("");
    m->opset_import[0]->has_version = 1;
    m->opset_import[0]->version = 13;
    Onnx__GraphProto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = sdup("seg");
    const int64_t wd[5] = {4, 1, 1, 1, 1}, bd[1] = {4}, xd[5] = {-1, 1, 2, 2, 2}, yd[5] = {-1, 4, 2, 2, 2};
    const float w[4] = {0, 1, 2, 3}, b[4] = {0, -0.5f, bias2, -4.5f};
    g->n_initializer = 2;
    g->initializer = malloc(2 * sizeof *g->initializer);
    g->initializer[0] = init_tensor("w", 5, wd, w, 4);
    g->initializer[1] = init_tensor("b", 1, bd, b, 4);
    g->n_input = 1;
    g->input = malloc(sizeof *g->input);
    g->input[0] = value_info("volume", 5, xd);
    g->n_output = 1;
    g->output = malloc(sizeof *g->output);
    g->output[0] = value_info("scores", 5, yd);
    Onnx__NodeProto *n = malloc(sizeof *n);
    onnx__node_proto__init(n);
    n->name = sdup("conv");
    n->op_type = sdup("Conv");
    n->n_input = 3;
    n->input = malloc(3 * sizeof *n->input);
    n->input[0] = sdup("volume");
    n->input[1] = sdup("w");
    n->input[2] = sdup("b");
    n->n_output = 1;
    n->output = malloc(sizeof *n->output);
    n->output[0] = sdup("scores");
    g->n_node = 1;
    g->node = malloc(sizeof *g->node);
    g->node[0] = n;
    m->graph = g;
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(size);
    onnx__model_proto__pack(m, buf);
    onnx__model_proto__free_unpacked(m, NULL);
    char *path = test_write_temp(buf, size, ".onnx");
    free(buf);
    ck_assert_ptr_nonnull(path);
    return path;
}

/* Two 2x2x2 volumes of values 0..2 (stored without the channel axis) and labels equal to
   them except one voxel labelled 2 where the value is 1. fp32 Dice: class 0: 1, class 1: 10/11,
   class 2: 10/11, class 3: absent (1); mean over classes 1, 2: 10/11. */
static char *write_seg_data(void) {
    static const float x[16] = {0, 0, 1, 1, 2, 2, 0, 1, 1, 1, 1, 0, 2, 2, 2, 0};
    static int64_t y[16];
    for (int i = 0; i < 16; i++) y[i] = (int64_t)x[i];
    y[8] = 2;
    npy_member m[2] = {{"x", "<f4", 4, {2, 2, 2, 2}, x, sizeof x}, {"y", "<i8", 4, {2, 2, 2, 2}, y, sizeof y}};
    return write_npz(m, 2);
}

/* Runs `octet validate ARGS...` in-process; returns the exit code and the stdout text. */
static int run_validate(char **args, int n, char *out, size_t cap) {
    char *argv[16];
    argv[0] = "validate";
    for (int i = 0; i < n; i++) argv[i + 1] = args[i];
    char *capture = test_write_temp("", 0, ".txt");
    fflush(stdout);
    int saved = dup(1), fd = open(capture, O_WRONLY | O_TRUNC);
    dup2(fd, 1);
    close(fd);
    int rc = cli_cmd_validate.main(n + 1, argv);
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

START_TEST(validate_segmentation) {
    char *good = write_seg_model(-2.f), *worse = write_seg_model(-3.f), *data = write_seg_data();
    static char out[65536];
    char *same[] = {good, good, "--data", data};
    int rc = run_validate(same, 4, out, sizeof out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "segmentation, 4 classes"), "%s", out);
    ck_assert_msg(strstr(out, "mean (foreground in labels)     0.9091    0.9091    0.0000"), "%s", out);
    ck_assert_msg(strstr(out, "2 class 2                       0.9091    0.9091"), "%s", out);
    ck_assert_msg(strstr(out, "3 class 3                       1.0000    1.0000    0.0000  (absent)"), "%s", out);
    ck_assert_msg(strstr(out, "flips: 0 of 16 voxels"), "%s", out);
    ck_assert_msg(strstr(out, "batch invariance (int8, first 2 samples at batch 1, 2, 4): yes (0 differ)"), "%s", out);
    ck_assert_msg(strstr(out, "\nAPPROVED\n"), "%s", out);

    /* the worse model never predicts class 2: its Dice is 0, class 1's is 10/16 */
    char *cmp[] = {good, worse, "--data", data, "--batch", "1", "--json"};
    rc = run_validate(cmp, 7, out, sizeof out);
    ck_assert_msg(rc == 3, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "\"mean_dice\": 0.3125"), "%s", out);
    ck_assert_msg(strstr(out, "\"dice\": 0.625"), "%s", out);
    ck_assert_msg(strstr(out, "\"flipped_voxels\": 5"), "%s", out);
    ck_assert_msg(strstr(out, "\"worst\": \"class 2\""), "%s", out);
    ck_assert_msg(strstr(out, "\"verdict\": \"REJECTED\"}\n"), "%s", out);

    /* a looser limit approves the same pair */
    char *loose[] = {good, worse, "--data", data, "--max-dice-drop", "1"};
    ck_assert_int_eq(run_validate(loose, 6, out, sizeof out), 0);

    /* errors: data without labels, wrong shapes, bad flags */
    char *no_data[] = {good, good};
    ck_assert_int_eq(run_validate(no_data, 2, out, sizeof out), CLI_EXIT_USAGE);
    char *bad_drop[] = {good, good, "--data", data, "--max-drop", "-1"};
    ck_assert_int_eq(run_validate(bad_drop, 6, out, sizeof out), CLI_EXIT_USAGE);
    char *bad_spec[] = {good, good, "--data", data, "--preprocess", "mean=1:2"};
    ck_assert_int_eq(run_validate(bad_spec, 6, out, sizeof out), CLI_EXIT_FAIL);
    static const float xs[4] = {0, 1, 2, 3};
    npy_member unlabelled[1] = {{"x", "<f4", 4, {1, 2, 2, 1}, xs, sizeof xs}};
    char *nolab = write_npz(unlabelled, 1);
    char *no_y[] = {good, good, "--data", nolab};
    ck_assert_int_eq(run_validate(no_y, 4, out, sizeof out), CLI_EXIT_FAIL);
    static const int64_t ys[1] = {0};
    npy_member mism[2] = {{"x", "<f4", 4, {1, 2, 2, 1}, xs, sizeof xs}, {"y", "<i8", 1, {1}, ys, sizeof ys}};
    char *wrong = write_npz(mism, 2);
    char *wrong_shape[] = {good, good, "--data", wrong};
    ck_assert_int_eq(run_validate(wrong_shape, 4, out, sizeof out), CLI_EXIT_FAIL);

    const char *files[] = {good, worse, data, nolab, wrong};
    for (int i = 0; i < 5; i++) {
        unlink(files[i]);
        free((void *)files[i]);
    }
}
END_TEST

/* The shipped demo classifier on 64 validation slices, against itself: identical numbers. */
START_TEST(validate_brain_tumor_classifier) {
    char model[4096], data[4096];
    snprintf(model, sizeof model, "%s/models/brain_tumor_cnn.onnx", test_source_root());
    snprintf(data, sizeof data, "%s/data/brain_tumor_mri_4c/brain_tumor_mri_4c_128_val.npz", test_shared_dir());
    if (access(model, R_OK) || access(data, R_OK)) {
        fprintf(stderr, "validate_brain_tumor_classifier: %s or %s missing; skipped\n", model, data);
        return;
    }
    static char out[65536];
    char *args[] = {model, model, "--data", data, "--limit", "64", "--batch", "16"};
    int rc = run_validate(args, 8, out, sizeof out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "(64 samples, classification, 4 classes)"), "%s", out);
    ck_assert_msg(strstr(out, "0 glioma"), "%s", out);
    ck_assert_msg(strstr(out, "flips: 0 of 64 images"), "%s", out);
    ck_assert_msg(strstr(out, "yes (0 differ)"), "%s", out);
    ck_assert_msg(strstr(out, "\nAPPROVED\n"), "%s", out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, class_metrics_exact);
    tcase_add_test(tc, class_metrics_predicted_but_absent);
    tcase_add_test(tc, argmax_ties_and_nan);
    tcase_add_test(tc, dice_values);
    tcase_add_test(tc, gate_edges);
    suite_add_tcase(s, tc);
    tc = tcase_create("dataset");
    tcase_add_test(tc, dataset_hwc_to_chw);
    tcase_add_test(tc, dataset_gray_to_rgb);
    tcase_add_test(tc, dataset_resize);
    tcase_add_test(tc, dataset_labels_and_names);
    tcase_add_test(tc, preprocess_specs);
    suite_add_tcase(s, tc);
    tc = tcase_create("command");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, validate_segmentation);
    tcase_add_test(tc, validate_brain_tumor_classifier);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
