/* Instance normalisation: the kernel sets (kernels/norm_kernels.h) at every ISA level this CPU runs
   against their ref twins at lengths around the vector widths; the one-pass shifted statistics
   against a two-pass reference on data whose mean dwarfs its spread; then the op with its fused
   epilogue (Relu, LeakyRelu, Sigmoid, residual Add + Relu) against a double reference on odd 3-D
   shapes, at every level and 1, 2 and 3 threads (whole planes per thread and planes shared in
   chunks), bit-identical across thread counts; and the int8 op (QLinearInstanceNormalization)
   identical across levels and threads and within one step of a double reference. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "kernels/kernels.h"
#include "kernels/norm_kernels.h"
#include "kernels/ref/qops_kernels.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng_state = 90210u;
static uint32_t urand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(urand() & 0xffff) / 65536.f; }

/* Every level this CPU runs, with its set; returns the count. */
static int levels(oct_isa isas[OCT_ISA_COUNT], const oct_norm_kernel_set *sets[OCT_ISA_COUNT]) {
    int n = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        isas[n] = (oct_isa)isa;
        sets[n++] = oct_norm_kernels();
    }
    test_default_isa();
    return n;
}

static const int64_t LENGTHS[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 129, 1000, 4099, 40000, 70001};
enum { N_LENGTHS = sizeof LENGTHS / sizeof LENGTHS[0], MAX_LEN = 70001 };

/* ---- kernels -------------------------------------------------------------------------------- */

START_TEST(shifted_sums_match_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_norm_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    float *x = malloc(sizeof(float) * MAX_LEN);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < MAX_LEN; i++) x[i] = frand(-3.f, 5.f);
    for (int l = 0; l < nl; l++)
        for (int k = 0; k < N_LENGTHS; k++) {
            const int64_t n = LENGTHS[k];
            const float shift = n ? x[n / 2] : 0.f;
            double rs, rq, vs = -1.0, vq = -1.0;
            oct_ref_shifted_sums(x, n, shift, &rs, &rq);
            sets[l]->shifted_sums(x, n, shift, &vs, &vq);
            const double tol = 1e-12 * (rq + 1.0);
            ck_assert_msg(fabs(vs - rs) <= tol && fabs(vq - rq) <= tol, "%s n=%lld: sums %.17g %.17g, ref %.17g %.17g",
                          sets[l]->name, (long long)n, vs, vq, rs, rq);
        }
    free(x);
}
END_TEST

/* The one-pass variance of data at 1e4 +- 0.1 (a plain sum of squares loses it in float and
   nearly in double) agrees with a two-pass one. */
START_TEST(shifted_sums_survive_large_mean) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_norm_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    const int64_t n = 50003;
    float *x = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) x[i] = 10000.f + frand(-0.1f, 0.1f);
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)n;
    for (int l = 0; l < nl; l++) {
        double s, q;
        sets[l]->shifted_sums(x, n, x[0], &s, &q);
        const double m = x[0] + s / (double)n, v = q / (double)n - (s / (double)n) * (s / (double)n);
        ck_assert_msg(fabs(m - mean) <= 1e-9 * mean, "%s: mean %.12g, expected %.12g", sets[l]->name, m, mean);
        ck_assert_msg(fabs(v - var) <= 1e-6 * var, "%s: variance %.12g, expected %.12g", sets[l]->name, v, var);
    }
    free(x);
}
END_TEST

/* Equal bits, or (where the ref may be contracted into FMA) within one rounding. */
static int same_float(float a, float b) {
    if (memcmp(&a, &b, sizeof a) == 0) return 1;
#if defined(__x86_64__)
    return 0;
#else
    return fabsf(a - b) <= 2e-7f * fabsf(b) + 1e-30f;
#endif
}

START_TEST(scale_shift_act_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_norm_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    float *x = malloc(sizeof(float) * MAX_LEN), *r = malloc(sizeof(float) * MAX_LEN);
    float *want = malloc(sizeof(float) * (MAX_LEN + 1)), *got = malloc(sizeof(float) * (MAX_LEN + 1));
    ck_assert(x && r && want && got);
    for (int64_t i = 0; i < MAX_LEN; i++) {
        x[i] = frand(-4.f, 4.f);
        r[i] = frand(-1.f, 1.f);
    }
    const oct_act acts[] = {{0, 0.f, 0.f}, {1, 0.f, 0.f}, {2, -0.5f, 1.25f}, {3, 0.1f, 0.f}, {4, 0.f, 0.f},
                            {5, 0.f, 0.f}, {6, 0.f, 0.f}, {7, 0.2f, 0.5f},   {8, 0.f, 0.f}};
    for (int l = 0; l < nl; l++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
            for (int withres = 0; withres < 2; withres++)
                for (int k = 0; k < N_LENGTHS; k++) {
                    const int64_t n = LENGTHS[k];
                    want[n] = got[n] = 777.f; /* guard */
                    oct_ref_scale_shift_act(x, n, 0.37f, 0.73f, -0.31f, withres ? r : NULL, &acts[a], want);
                    sets[l]->scale_shift_act(x, n, 0.37f, 0.73f, -0.31f, withres ? r : NULL, &acts[a], got);
                    ck_assert_msg(got[n] == 777.f, "%s wrote past n=%lld", sets[l]->name, (long long)n);
                    int64_t i = 0; /* the first difference (a passing ck_assert per element is slow) */
                    while (i < n && same_float(got[i], want[i])) i++;
                    ck_assert_msg(i == n, "%s act %d res %d n=%lld [%lld]: %.9g, ref %.9g", sets[l]->name,
                                  acts[a].kind, withres, (long long)n, (long long)i, got[i], want[i]);
                }
    free(x), free(r), free(want), free(got);
}
END_TEST

START_TEST(qsums_match_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_norm_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    const int64_t big = 3 * 32768 + 77; /* crosses the 32-bit partial-sum chunks */
    uint8_t *x = malloc((size_t)big);
    ck_assert_ptr_nonnull(x);
    for (int s8 = 0; s8 < 2; s8++) {
        /* extremes first: all-255 (or -128) chunks are where 32-bit partial sums would overflow */
        for (int64_t i = 0; i < big; i++) x[i] = i < 40000 ? (s8 ? 0x80 : 0xff) : (uint8_t)urand();
        for (int l = 0; l < nl; l++)
            for (int k = 0; k <= N_LENGTHS; k++) {
                const int64_t n = k < N_LENGTHS ? LENGTHS[k] : big;
                int64_t rs = 5, rq = 7, vs = 5, vq = 7; /* both add to what is there */
                oct_ref_qsum(x, s8, n, &rs, &rq);
                sets[l]->qsums(x, s8, n, &vs, &vq);
                ck_assert_msg(vs == rs && vq == rq, "%s s8=%d n=%lld: %lld %lld, ref %lld %lld", sets[l]->name, s8,
                              (long long)n, (long long)vs, (long long)vq, (long long)rs, (long long)rq);
            }
    }
    free(x);
}
END_TEST

/* ---- the fp32 op with its fused epilogue ---------------------------------------------------- */

enum { EPI_RELU, EPI_LEAKY, EPI_SIGMOID, EPI_RES_RELU, EPI_NONE, N_EPI };
static const char *const EPI_NAMES[N_EPI] = {"Relu", "LeakyRelu", "Sigmoid", "Add+Relu", "none"};

/* x [dims] (and r, for the residual) -> InstanceNormalization -> the epilogue's nodes. */
static oct_graph *norm_graph(const int64_t dims[5], int epi, const float *scale, const float *bias, float eps) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->name = strdup("instancenorm");
    const int x = test_graph_input(g, "x", OCTET_FLOAT, 5, dims);
    const int r = epi == EPI_RES_RELU ? test_graph_input(g, "r", OCTET_FLOAT, 5, dims) : -1;
    const int sc = test_graph_const(g, "scale", OCTET_FLOAT, 1, &dims[1], scale);
    const int b = test_graph_const(g, "B", OCTET_FLOAT, 1, &dims[1], bias);
    const int in = test_graph_node(g, "", "InstanceNormalization", 3, (int[]){x, sc, b});
    test_attr_float(g, in, "epsilon", eps);
    int last = in;
    const int y = g->nodes[in].out[0];
    switch (epi) {
    case EPI_RELU: last = test_graph_node(g, "", "Relu", 1, &y); break;
    case EPI_LEAKY:
        last = test_graph_node(g, "", "LeakyRelu", 1, &y);
        test_attr_float(g, last, "alpha", 0.07f);
        break;
    case EPI_SIGMOID: last = test_graph_node(g, "", "Sigmoid", 1, &y); break;
    case EPI_RES_RELU: {
        const int add = test_graph_node(g, "", "Add", 2, (int[]){y, r});
        last = test_graph_node(g, "", "Relu", 1, &g->nodes[add].out[0]);
        break;
    }
    default: break;
    }
    g->outputs = malloc(sizeof(int));
    g->outputs[g->n_outputs++] = g->nodes[last].out[0];
    return g;
}

/* The expected output in double, two-pass statistics. */
static void norm_reference(const int64_t dims[5], const float *x, const float *r, const float *scale,
                           const float *bias, float eps, int epi, double *y) {
    const int64_t planes = dims[0] * dims[1], vol = dims[2] * dims[3] * dims[4];
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * vol;
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < vol; i++) m += xp[i];
        m /= (double)vol;
        for (int64_t i = 0; i < vol; i++) v += (xp[i] - m) * (xp[i] - m);
        v /= (double)vol;
        const int64_t c = p % dims[1];
        for (int64_t i = 0; i < vol; i++) {
            double t = (xp[i] - m) / sqrt(v + eps) * scale[c] + bias[c];
            if (epi == EPI_RES_RELU) t += r[p * vol + i];
            if (epi == EPI_RELU || epi == EPI_RES_RELU) t = t > 0.0 ? t : 0.0;
            if (epi == EPI_LEAKY) t = t < 0.0 ? 0.07 * t : t;
            if (epi == EPI_SIGMOID) t = 1.0 / (1.0 + exp(-t));
            y[p * vol + i] = t;
        }
    }
}

/* Runs g at `threads`; checks that the epilogue fused (one node planned); returns the output. */
static float *run_norm(oct_graph *g, int threads, const int64_t dims[5], const float *x, const float *r) {
    octet_tensor in[2] = {{OCTET_FLOAT, 5, {dims[0], dims[1], dims[2], dims[3], dims[4]}, (void *)x},
                          {OCTET_FLOAT, 5, {dims[0], dims[1], dims[2], dims[3], dims[4]}, (void *)r}};
    octet_tensor y;
    test_plan_run(g, threads, 1, r ? 2 : 1, in, 1, &y); /* one node: the epilogue fused */
    const int64_t n = test_numel(5, dims);
    float *out = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(out);
    memcpy(out, y.data, sizeof(float) * (size_t)n);
    octet_tensor_release(&y);
    return out;
}

/* Odd shapes: many small planes (whole planes per thread), three planes of 70k (shared in
   chunks on 2 threads, whole on 3), one plane, and a batch of 2. */
static const int64_t SHAPES[][5] = {{1, 5, 3, 7, 9}, {1, 3, 41, 43, 40}, {1, 1, 33, 35, 37}, {2, 3, 5, 11, 13}};

START_TEST(fused_op_matches_reference) {
    const int shape = _i / N_EPI, epi = _i % N_EPI;
    const int64_t *dims = SHAPES[shape];
    const int64_t n = test_numel(5, dims);
    float *x = malloc(sizeof(float) * (size_t)n), *r = malloc(sizeof(float) * (size_t)n);
    double *want = malloc(sizeof(double) * (size_t)n);
    ck_assert(x && r && want);
    float scale[5], bias[5];
    for (int c = 0; c < dims[1]; c++) {
        scale[c] = frand(0.5f, 2.f);
        bias[c] = frand(-0.5f, 0.5f);
    }
    /* planes with their own offsets, one of them far from 0 */
    for (int64_t i = 0; i < n; i++) {
        const int64_t p = i / (n / (dims[0] * dims[1]));
        x[i] = frand(-2.f, 3.f) + (p == 1 ? 300.f : 0.1f * (float)p);
        r[i] = frand(-1.f, 1.f);
    }
    const float eps = 1e-5f;
    norm_reference(dims, x, r, scale, bias, eps, epi, want);
    oct_graph *g = norm_graph(dims, epi, scale, bias, eps);
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        float *first = NULL;
        for (int threads = 1; threads <= 3; threads++) {
            float *y = run_norm(g, threads, dims, x, epi == EPI_RES_RELU ? r : NULL);
            int64_t i = 0;
            while (i < n && fabs(y[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i])) i++;
            ck_assert_msg(i == n, "%s, %s, %d threads, [%lld]: %.9g, expected %.9g", EPI_NAMES[epi],
                          oct_isa_name((oct_isa)isa), threads, (long long)i, i < n ? y[i] : 0.f, i < n ? want[i] : 0.0);
            if (!first) {
                first = y;
                continue;
            }
            ck_assert_msg(memcmp(first, y, sizeof(float) * (size_t)n) == 0, "%s, %s: %d threads differ from 1",
                          EPI_NAMES[epi], oct_isa_name((oct_isa)isa), threads);
            free(y);
        }
        free(first);
    }
    test_default_isa();
    oct_graph_free(g);
    free(x), free(r), free(want);
}
END_TEST

START_TEST(negative_epsilon_is_rejected) {
    const int64_t dims[5] = {1, 2, 2, 2, 2};
    const float scale[2] = {1.f, 1.f}, bias[2] = {0.f, 0.f};
    oct_graph *g = norm_graph(dims, EPI_NONE, scale, bias, -1.f);
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "epsilon") != NULL, "%s", err.msg);
    oct_graph_free(g);
}
END_TEST

/* ---- the int8 op ---------------------------------------------------------------------------- */

/* x -> QLinearInstanceNormalization with a fused Relu. */
static oct_graph *qnorm_graph(const int64_t dims[5], octet_dtype dt, const float *scale, const float *bias) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->name = strdup("qinstancenorm");
    const int s8 = dt == OCTET_INT8;
    const uint8_t zx = s8 ? (uint8_t)(int8_t)-7 : 121, zy = s8 ? (uint8_t)(int8_t)-128 : 0;
    const int x = test_graph_input(g, "x", dt, 5, dims);
    const int xs = test_graph_f32(g, "xs", 0.031f), ys = test_graph_f32(g, "ys", 0.013f);
    const int xz = test_graph_const(g, "xz", dt, 0, NULL, &zx), yz = test_graph_const(g, "yz", dt, 0, NULL, &zy);
    const int sc = test_graph_const(g, "scale", OCTET_FLOAT, 1, &dims[1], scale);
    const int b = test_graph_const(g, "B", OCTET_FLOAT, 1, &dims[1], bias);
    const int k = test_graph_node(g, "octet", "QLinearInstanceNormalization", 7, (int[]){x, xs, xz, sc, b, ys, yz});
    g->nodes[k].epi.act = OCT_ACT_RELU;
    g->outputs = malloc(sizeof(int));
    g->outputs[g->n_outputs++] = g->nodes[k].out[0];
    return g;
}

static uint8_t *run_qnorm(oct_graph *g, int threads, const int64_t dims[5], octet_dtype dt, const uint8_t *x) {
    octet_tensor in = {dt, 5, {dims[0], dims[1], dims[2], dims[3], dims[4]}, (void *)x}, y;
    test_plan_run(g, threads, -1, 1, &in, 1, &y);
    ck_assert_int_eq(y.dtype, dt);
    const int64_t n = test_numel(5, dims);
    uint8_t *out = malloc((size_t)n);
    ck_assert_ptr_nonnull(out);
    memcpy(out, y.data, (size_t)n);
    octet_tensor_release(&y);
    return out;
}

START_TEST(qlinear_op_matches_reference) {
    const int shape = _i / 2;
    const octet_dtype dt = _i % 2 ? OCTET_INT8 : OCTET_UINT8;
    const int s8 = dt == OCTET_INT8;
    const int64_t *dims = SHAPES[shape];
    const int64_t n = test_numel(5, dims), planes = dims[0] * dims[1], vol = n / planes;
    uint8_t *x = malloc((size_t)n);
    ck_assert_ptr_nonnull(x);
    float scale[5], bias[5];
    for (int c = 0; c < dims[1]; c++) {
        scale[c] = frand(0.5f, 2.f);
        bias[c] = frand(-0.5f, 0.5f);
    }
    for (int64_t i = 0; i < n; i++) {
        const int32_t v = (int32_t)(urand() % 90) + (int32_t)(i / vol) * 20 - (s8 ? 100 : 0);
        x[i] = s8 ? (uint8_t)(int8_t)v : (uint8_t)v;
    }
    /* the expected codes, in double from the dequantized values */
    const double xsc = 0.031f, ysc = 0.013f;
    const int32_t zx = s8 ? -7 : 121, zy = s8 ? -128 : 0, qmin = s8 ? -128 : 0, qmax = s8 ? 127 : 255;
    int32_t *want = malloc(sizeof(int32_t) * (size_t)n);
    ck_assert_ptr_nonnull(want);
    for (int64_t p = 0; p < planes; p++) {
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < vol; i++) m += (oct_q8_value(x[p * vol + i], s8) - zx) * xsc;
        m /= (double)vol;
        for (int64_t i = 0; i < vol; i++) {
            const double d = (oct_q8_value(x[p * vol + i], s8) - zx) * xsc - m;
            v += d * d;
        }
        v /= (double)vol;
        const int64_t c = p % dims[1];
        for (int64_t i = 0; i < vol; i++) {
            const double xr = (oct_q8_value(x[p * vol + i], s8) - zx) * xsc;
            double t = (xr - m) / sqrt(v + 1e-5) * scale[c] + bias[c];
            t = t > 0.0 ? t : 0.0;
            want[p * vol + i] = oct_q8_round(t / ysc, zy, qmin, qmax);
        }
    }
    oct_graph *g = qnorm_graph(dims, dt, scale, bias);
    uint8_t *first = NULL;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        for (int threads = 1; threads <= 3; threads++) {
            uint8_t *y = run_qnorm(g, threads, dims, dt, x);
            if (!first) {
                first = y;
                int64_t i = 0;
                while (i < n && abs(oct_q8_value(y[i], s8) - want[i]) <= 1) i++;
                ck_assert_msg(i == n, "%s [%lld]: %d, expected %d", octet_dtype_name(dt), (long long)i,
                              i < n ? oct_q8_value(y[i], s8) : 0, i < n ? want[i] : 0);
                continue;
            }
            ck_assert_msg(memcmp(first, y, (size_t)n) == 0, "%s, %s, %d threads: differs from ref at 1 thread",
                          octet_dtype_name(dt), oct_isa_name((oct_isa)isa), threads);
            free(y);
        }
    }
    test_default_isa();
    oct_graph_free(g);
    free(first), free(x), free(want);
}
END_TEST

int main(void) {
    Suite *s = suite_create("instancenorm");
    TCase *k = tcase_create("kernels");
    tcase_set_timeout(k, 300);
    tcase_add_test(k, shifted_sums_match_ref);
    tcase_add_test(k, shifted_sums_survive_large_mean);
    tcase_add_test(k, scale_shift_act_matches_ref);
    tcase_add_test(k, qsums_match_ref);
    suite_add_tcase(s, k);
    TCase *op = tcase_create("op");
    tcase_set_timeout(op, 300);
    const int n_shapes = sizeof SHAPES / sizeof SHAPES[0];
    tcase_add_loop_test(op, fused_op_matches_reference, 0, n_shapes * N_EPI);
    tcase_add_test(op, negative_epsilon_is_rejected);
    tcase_add_loop_test(op, qlinear_op_matches_reference, 0, n_shapes * 2);
    suite_add_tcase(s, op);
    return test_run_suite(s);
}
