/* Kernels against naive loops: the sgemm of every ISA table on odd sizes, with and without
   accumulate and with padded leading dimensions; im2col/col2im adjointness; the epilogue. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref/nn_kernels.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng_state = 12345u;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.f - 1.f;
}

static void check_sgemm(oct_sgemm_fn fn, int m, int n, int k, int accumulate) {
    const int lda = k + 3, ldb = n + 5, ldc = n + 2;
    float *a = malloc(sizeof(float) * (size_t)(m * lda + 1));
    float *b = malloc(sizeof(float) * (size_t)(k * ldb + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    double *ref = malloc(sizeof(double) * (size_t)(m * n + 1));
    for (int i = 0; i < m * lda; i++) a[i] = frand();
    for (int i = 0; i < k * ldb; i++) b[i] = frand();
    for (int i = 0; i < m * ldc; i++) c[i] = frand();
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = accumulate ? c[i * ldc + j] : 0.0;
            for (int p = 0; p < k; p++) s += (double)a[i * lda + p] * b[p * ldb + j];
            ref[i * n + j] = s;
        }
    /* The padding columns of c beyond n must stay untouched. */
    float guard = c[n];
    fn(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double r = ref[i * n + j];
            ck_assert_msg(fabs(c[i * ldc + j] - r) <= 1e-4 * (1.0 + fabs(r)) + 1e-5 * k,
                          "sgemm m=%d n=%d k=%d acc=%d at (%d,%d): %g vs %g", m, n, k, accumulate, i, j,
                          (double)c[i * ldc + j], r);
        }
    ck_assert(c[n] == guard);
    free(a);
    free(b);
    free(c);
    free(ref);
}

START_TEST(sgemm_odd_sizes) {
    static const int sizes[] = {1, 2, 7, 16, 33, 100, 257};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    oct_sgemm_fn tested[OCT_ISA_COUNT];
    int ntested = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        oct_sgemm_fn fn = oct_kernels()->sgemm;
        /* Levels that share a kernel are checked once. */
        int seen = 0;
        for (int t = 0; t < ntested; t++) seen |= tested[t] == fn;
        if (seen) continue;
        tested[ntested++] = fn;
        for (int x = 0; x < ns; x++)
            for (int y = 0; y < ns; y++)
                for (int z = 0; z < ns; z += 2)
                    for (int acc = 0; acc < 2; acc++)
                        if (sizes[x] * sizes[y] * sizes[z] <= 257 * 100 * 100)
                            check_sgemm(fn, sizes[x], sizes[y], sizes[z], acc);
    }
    test_default_isa();
}
END_TEST

START_TEST(sgemm_zero_k) {
    float c[6] = {1, 2, 3, 4, 5, 6}, a[1] = {0}, b[1] = {0};
    oct_ref_sgemm(2, 3, 0, a, 1, b, 3, c, 3, 1);
    ck_assert(c[0] == 1 && c[5] == 6);
    oct_ref_sgemm(2, 3, 0, a, 1, b, 3, c, 3, 0);
    for (int i = 0; i < 6; i++) ck_assert(c[i] == 0.f);
}
END_TEST

/* <im2col(x), c> == <x, col2im(c)>: the two are adjoint, checked on a strided, dilated, padded
   3-D geometry with a tile that starts mid-row. */
START_TEST(im2col_col2im_adjoint) {
    oct_conv_geom g = {.in = {4, 5, 6}, .k = {2, 3, 2}, .stride = {1, 2, 2}, .dil = {2, 1, 1}, .pad = {1, 1, 0}};
    for (int i = 0; i < 3; i++) g.out[i] = (g.in[i] + 2 * g.pad[i] - (g.k[i] - 1) * g.dil[i] - 1) / g.stride[i] + 1;
    const int64_t C = 3, iv = oct_geom_in_vol(&g), ov = oct_geom_out_vol(&g), kv = oct_geom_k_vol(&g);
    const int64_t p0 = 5, np = ov - 7;
    float *x = malloc(sizeof(float) * C * iv), *col = malloc(sizeof(float) * C * kv * np);
    float *c = malloc(sizeof(float) * C * kv * np), *xt = calloc((size_t)(C * iv), sizeof(float));
    for (int64_t i = 0; i < C * iv; i++) x[i] = frand();
    for (int64_t i = 0; i < C * kv * np; i++) c[i] = frand();
    oct_ref_im2col_tile(&g, x, C, p0, np, col);
    /* col2im treats g->in as the transposed op's input: swap in/out for the adjoint. */
    oct_conv_geom t = g;
    memcpy(t.in, g.out, sizeof t.in);
    memcpy(t.out, g.in, sizeof t.out);
    oct_ref_col2im_tile(&t, c, C, p0, np, xt);
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < C * kv * np; i++) lhs += (double)col[i] * c[i];
    for (int64_t i = 0; i < C * iv; i++) rhs += (double)x[i] * xt[i];
    ck_assert_msg(fabs(lhs - rhs) < 1e-3 * (1 + fabs(lhs)), "%g vs %g", lhs, rhs);
    ck_assert(lhs != 0.0);
    free(x);
    free(col);
    free(c);
    free(xt);
}
END_TEST

START_TEST(epilogue_order) {
    /* y = act(alpha*y + bias + beta*c + res), with C broadcast along rows. */
    float y[6] = {1, -2, 3, -4, 5, -6}, bias[2] = {0.5f, -0.5f}, c[3] = {1, 2, 3}, res[6] = {0, 0, 0, 10, 0, 0};
    oct_epilogue_args e = {.alpha = 2.f, .row_bias = bias, .c = c, .c_rs = 0, .c_cs = 1, .beta = 0.5f,
                           .res = res, .ldr = 3, .act = {1, 0, 0}};
    oct_ref_epilogue(y, 3, 2, 3, &e);
    const float want[6] = {3.f, 0.f, 8.f, 2.f, 10.5f, 0.f};
    for (int i = 0; i < 6; i++) ck_assert_msg(fabsf(y[i] - want[i]) < 1e-6f, "%d: %g", i, (double)y[i]);
}
END_TEST

START_TEST(mean_var_double) {
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = 1000.f + (i % 2 ? 1.f : -1.f);
    double m, v;
    oct_ref_mean_var(x, N, &m, &v);
    ck_assert(fabs(m - 1000.0) < 1e-9 && fabs(v - 1.0) < 1e-9);
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sgemm_odd_sizes);
    tcase_add_test(tc, sgemm_zero_k);
    tcase_add_test(tc, im2col_col2im_adjoint);
    tcase_add_test(tc, epilogue_order);
    tcase_add_test(tc, mean_var_double);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
