/* The depthwise band kernels (kernels/ref/dwconv_kernels.h) at every ISA level this CPU supports,
   ref twin included, against the direct ref loops they replace:
   - fp32 against oct_ref_conv_depthwise within a forward error bound, over plane sizes from 1x1 to
     112x112 and 1xN rows, kernels 1x1..7x7 (even and non-square too), strides 1/2/3 and mixed,
     pads 0/1/2 and asymmetric ones, with bias, residual and every activation kind;
   - int8 bit for bit against oct_ref_qconv_depthwise + oct_ref_requant: uint8 and int8 input
     (x ^ 0x80), any zero points, per-tensor and per-channel multipliers, uint8/int8 output, clamps
     narrowed by a fused Relu/Clip, bias near the int32 wrap, and the int32 output of ConvInteger;
   - the extremes of the exactness argument (|x - zx| = |w - zw| = 255 over 64 taps);
   - nothing written past a row's end, and the plan refusing what the ref loops must keep. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref/dwconv_kernels.h"

static const float GUARD = 1234.5f;

static uint32_t rng = 4242u;
static uint32_t rnext(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static float frand(void) { return (float)(rnext() & 0xffff) / 32768.f - 1.f; }
static int32_t irand(int32_t lo, int32_t hi) { return lo + (int32_t)(rnext() % (uint32_t)(hi - lo + 1)); }

typedef struct {
    int64_t ih, iw, kh, kw, sh, sw, ph, pw, eh, ew; /* e*: padding at the end */
} dw_case;

/* The 2-D geometry of c (leading dim 1); 0 if the output would be empty. */
static int geom_of(const dw_case *c, oct_conv_geom *g) {
    memset(g, 0, sizeof *g);
    const int64_t in[3] = {1, c->ih, c->iw}, k[3] = {1, c->kh, c->kw}, s[3] = {1, c->sh, c->sw};
    const int64_t pb[3] = {0, c->ph, c->pw}, pe[3] = {0, c->eh, c->ew};
    for (int d = 0; d < 3; d++) {
        g->in[d] = in[d], g->k[d] = k[d], g->stride[d] = s[d], g->dil[d] = 1, g->pad[d] = pb[d];
        const int64_t span = in[d] + pb[d] + pe[d] - k[d];
        if (span < 0) return 0;
        g->out[d] = span / s[d] + 1;
    }
    return 1;
}

/* The levels to test: ref and every supported ISA, each through the public dispatch. */
static int levels(oct_isa out[OCT_ISA_COUNT]) {
    int n = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++)
        if (oct_isa_supported((oct_isa)isa)) out[n++] = (oct_isa)isa;
    return n;
}

static const oct_dw_kernels *select_level(oct_isa isa) {
    setenv("OCTET_ISA", oct_isa_name(isa), 1);
    oct_kernels_reset();
    ck_assert_int_eq(oct_kernels()->isa, isa);
    return oct_dw_kernels_selected();
}

static void restore_level(void) {
    unsetenv("OCTET_ISA");
    oct_kernels_reset();
}

static void *scratch_for(const oct_dw_plan *pl) {
    void *s = aligned_alloc(64, oct_dw_scratch_bytes(pl));
    ck_assert_ptr_nonnull(s);
    /* garbage, as the arena holds: the kernels must not depend on it */
    memset(s, 0xff, oct_dw_scratch_bytes(pl));
    return s;
}

/* ---- fp32 --------------------------------------------------------------------------------- */

/* sum |w x| per output (double): the scale of the rounding error of any summation order. */
static void abs_sums(const oct_conv_geom *g, const float *x, const float *w, double *out) {
    for (int64_t oh = 0; oh < g->out[1]; oh++)
        for (int64_t ow = 0; ow < g->out[2]; ow++) {
            double s = 0;
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++) {
                    const int64_t ih = oh * g->stride[1] + kh - g->pad[1], iw = ow * g->stride[2] + kw - g->pad[2];
                    if (ih >= 0 && ih < g->in[1] && iw >= 0 && iw < g->in[2])
                        s += fabs((double)x[ih * g->in[2] + iw] * w[kh * g->k[2] + kw]);
                }
            out[oh * g->out[2] + ow] = s;
        }
}

static void check_f32_case(const dw_case *c, int act_kind, int with_res, const oct_isa *isas, int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dw_plan pl;
    ck_assert_msg(oct_dw_plan_init(&g, &pl), "plan refused %lldx%lld k%lldx%lld", (long long)c->ih, (long long)c->iw,
                  (long long)c->kh, (long long)c->kw);
    const int64_t in = c->ih * c->iw, P = g.out[1] * g.out[2], K = c->kh * c->kw;
    float *x = malloc(sizeof(float) * (size_t)in), *w = malloc(sizeof(float) * (size_t)K);
    float *res = malloc(sizeof(float) * (size_t)P), *ref = malloc(sizeof(float) * (size_t)P);
    float *y = malloc(sizeof(float) * (size_t)(P + 16));
    double *mag = malloc(sizeof(double) * (size_t)P);
    for (int64_t i = 0; i < in; i++) x[i] = 2.f * frand();
    for (int64_t i = 0; i < K; i++) w[i] = frand();
    for (int64_t i = 0; i < P; i++) res[i] = frand();
    const float bias = frand();
    const oct_act act = {act_kind, act_kind == 2 ? -0.5f : act_kind == 7 ? 0.2f : 0.1f,
                         act_kind == 2 ? 0.75f : 0.5f};
    const float *r = with_res ? res : NULL;
    oct_ref_conv_depthwise(&g, x, w, bias, r, &act, ref);
    abs_sums(&g, x, w, mag);
    void *scratch = scratch_for(&pl);
    for (int l = 0; l < nisa; l++) {
        const oct_dw_kernels *k = select_level(isas[l]);
        for (int64_t i = 0; i < P + 16; i++) y[i] = GUARD;
        /* the channel sum of a fused GlobalAveragePool: every other case, so that want_sum = 0
           is run as well (and must report nothing) */
        const int want_sum = (int)((c->ih + c->kw + act_kind + with_res) & 1);
        const double sum = oct_dw_conv_f32(k, &pl, x, w, bias, r, &act, y, want_sum, scratch);
        double exact = 0.0, size = 0.0;
        for (int64_t i = 0; i < P; i++) exact += y[i], size += fabs((double)y[i]);
        /* float partial sums over a band (a few thousand values in 4 to 16 lanes), added in double */
        const double sum_tol = want_sum ? 1e-6 * (double)(pl.band * pl.ow / 4 + 1) * size + 1e-12 : 0.0;
        ck_assert_msg(fabs(sum - (want_sum ? exact : 0.0)) <= sum_tol, "%s: channel sum %.9g vs %.9g (want %d)",
                      k->name, sum, exact, want_sum);
        for (int64_t i = 0; i < P; i++) {
            /* every activation here has a slope <= 1.5, so the pre-activation bound carries over */
            const double tol = 1e-5 * (mag[i] + fabs(bias) + 2.0) + 2e-6 * fabs(ref[i]);
            ck_assert_msg(fabs((double)y[i] - ref[i]) <= tol,
                          "%s: %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld act %d res %d [%lld]: %g vs ref %g", k->name,
                          (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw, (long long)c->sh,
                          (long long)c->sw, (long long)c->ph, (long long)c->pw, act_kind, with_res, (long long)i,
                          (double)y[i], (double)ref[i]);
        }
        for (int64_t i = P; i < P + 16; i++) ck_assert_msg(y[i] == GUARD, "%s wrote past the output", k->name);
    }
    restore_level();
    free(scratch);
    free(x), free(w), free(res), free(ref), free(y), free(mag);
}

/* The shapes: the networks' own, then edges of every kind. */
static const int64_t PLANES[][2] = {{112, 112}, {56, 56}, {28, 28}, {14, 14}, {7, 7}, {1, 1}, {1, 9}, {1, 37},
                                    {9, 1}, {5, 23}, {13, 17}, {3, 100}, {2, 700}, {19, 4}};
static const int64_t KERNELS[][2] = {{3, 3}, {5, 5}, {1, 1}, {1, 3}, {3, 1}, {2, 2}, {4, 3}, {7, 7}};
static const int64_t STRIDES[][2] = {{1, 1}, {2, 2}, {1, 2}, {2, 1}, {3, 3}};

/* Runs f over the case grid (big planes only with the network kernels and strides). */
static void for_cases(void (*f)(const dw_case *c, int variant, const oct_isa *isas, int nisa)) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    int variant = 0;
    for (size_t p = 0; p < sizeof PLANES / sizeof PLANES[0]; p++)
        for (size_t k = 0; k < sizeof KERNELS / sizeof KERNELS[0]; k++)
            for (size_t s = 0; s < sizeof STRIDES / sizeof STRIDES[0]; s++)
                for (int64_t pad = 0; pad <= 2; pad++) {
                    const int64_t kh = KERNELS[k][0], kw = KERNELS[k][1];
                    const int big = PLANES[p][0] * PLANES[p][1] > 1000;
                    if (big && (k > 1 || s > 1 || pad != (kh - 1) / 2)) continue;
                    /* SAME-style pads for odd kernels, then asymmetric ones on the end */
                    const dw_case c = {PLANES[p][0], PLANES[p][1], kh, kw, STRIDES[s][0], STRIDES[s][1],
                                       kh > 1 ? pad : 0, kw > 1 ? pad : 0, kh > 1 ? (pad + variant) % 3 : 0,
                                       kw > 1 ? (pad + 2 * variant) % 3 : 0};
                    f(&c, variant++, isas, nisa);
                }
}

static void f32_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    check_f32_case(c, variant % 9, (variant / 9) % 2, isas, nisa);
}

START_TEST(f32_against_ref_loop) { for_cases(f32_variant); }
END_TEST

/* Every activation on the shapes of MobileNetV2 and EfficientNet, with and without residual. */
START_TEST(f32_every_epilogue) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {{14, 14, 3, 3, 1, 1, 1, 1, 1, 1}, {15, 15, 5, 5, 2, 2, 2, 2, 2, 2},
                             {7, 7, 5, 5, 1, 1, 2, 2, 2, 2}, {29, 30, 3, 3, 2, 2, 0, 0, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int act = 0; act <= 8; act++)
            for (int res = 0; res <= 1; res++) check_f32_case(&cases[i], act, res, isas, nisa);
}
END_TEST

/* ---- int8 --------------------------------------------------------------------------------- */

typedef struct {
    uint8_t x_xor;
    int32_t x_zp, w_zp;
    int per_row, out_s8, narrow, int32_out, big_bias, extremes;
} q8_opts;

static void check_q8_case(const dw_case *c, const q8_opts *o, const oct_isa *isas, int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dw_plan pl;
    ck_assert(oct_dw_plan_init(&g, &pl));
    const int64_t in = c->ih * c->iw, P = g.out[1] * g.out[2], K = c->kh * c->kw;
    uint8_t *x = malloc((size_t)in), *yref = malloc((size_t)P), *y = malloc((size_t)(P + 16));
    int8_t *w = malloc((size_t)K);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)P), *yi = malloc(sizeof(int32_t) * (size_t)(P + 16));
    for (int64_t i = 0; i < in; i++) x[i] = o->extremes ? (uint8_t)(255 ^ o->x_xor) : (uint8_t)irand(0, 255);
    for (int64_t i = 0; i < K; i++) w[i] = o->extremes ? (int8_t)-128 : (int8_t)irand(-128, 127);
    oct_ref_qconv_depthwise(&g, x, o->x_xor, o->x_zp, w, o->w_zp, 0, P, acc);
    /* the row's parameters sit at row 3 of the per-row arrays */
    enum { ROW = 3 };
    float scale[8];
    int32_t bias[8];
    double amax = 1;
    for (int64_t i = 0; i < P; i++) amax = fabs((double)acc[i]) > amax ? fabs((double)acc[i]) : amax;
    for (int i = 0; i < 8; i++) {
        scale[i] = (float)(irand(60, 200) / amax);
        bias[i] = o->big_bias ? INT32_MAX - irand(0, 1000) : irand(-(int32_t)amax / 4 - 1, (int32_t)amax / 4 + 1);
    }
    const int32_t qmin = o->out_s8 ? -128 : 0, qmax = o->out_s8 ? 127 : 255;
    const int32_t zp = o->out_s8 ? irand(-20, 20) : irand(90, 160);
    oct_requant rq = {.scale = o->per_row ? scale : scale + ROW, .scale_per_row = o->per_row, .bias = bias,
                      .zp = zp, .qmin = o->narrow ? zp : qmin, .qmax = o->narrow ? qmax - 20 : qmax,
                      .out_s8 = o->out_s8};
    oct_ref_requant(acc, P, ROW, 1, (int)P, &rq, yref, P, 1);
    void *scratch = scratch_for(&pl);
    for (int l = 0; l < nisa; l++) {
        const oct_dw_kernels *k = select_level(isas[l]);
        if (o->int32_out) {
            for (int64_t i = 0; i < P + 16; i++) yi[i] = 0x5a5a5a5a;
            /* ConvInteger has no 8-bit values to sum: a sum asked for stays 0 */
            ck_assert(oct_dw_conv_q8(k, &pl, x, o->x_xor, o->x_zp, w, o->w_zp, NULL, ROW, yi, 1, scratch) == 0);
            for (int64_t i = 0; i < P; i++)
                ck_assert_msg(yi[i] == acc[i], "%s int32 [%lld]: %d vs ref %d", k->name, (long long)i, yi[i], acc[i]);
            for (int64_t i = P; i < P + 16; i++) ck_assert_msg(yi[i] == 0x5a5a5a5a, "%s wrote past the output", k->name);
            continue;
        }
        memset(y, 0xa5, (size_t)(P + 16));
        /* the exact sum of the values written (a fused QLinearGlobalAveragePool), every other level */
        const int want_sum = (l + (int)c->ih) % 2 == 0;
        const int64_t sum = oct_dw_conv_q8(k, &pl, x, o->x_xor, o->x_zp, w, o->w_zp, &rq, ROW, y, want_sum, scratch);
        int64_t exact = 0;
        for (int64_t i = 0; i < P; i++) exact += o->out_s8 ? (int64_t)(int8_t)yref[i] : (int64_t)yref[i];
        ck_assert_msg(sum == (want_sum ? exact : 0), "%s: sum %lld vs %lld (want %d, s8 %d)", k->name, (long long)sum,
                      (long long)exact, want_sum, o->out_s8);
        for (int64_t i = 0; i < P; i++)
            ck_assert_msg(y[i] == yref[i],
                          "%s: %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld xor %d zx %d zw %d s8 %d [%lld]: %d vs ref %d",
                          k->name, (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw,
                          (long long)c->sh, (long long)c->sw, (long long)c->ph, (long long)c->pw, o->x_xor, o->x_zp,
                          o->w_zp, o->out_s8, (long long)i, y[i], yref[i]);
        for (int64_t i = P; i < P + 16; i++) ck_assert_msg(y[i] == 0xa5, "%s wrote past the output", k->name);
    }
    restore_level();
    free(scratch);
    free(x), free(yref), free(y), free(w), free(acc), free(yi);
}

static void q8_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    const q8_opts o = {.x_xor = (variant & 1) ? 0x80 : 0,
                       .x_zp = irand(0, 255),
                       .w_zp = variant % 3 == 0 ? 0 : irand(-128, 127),
                       .per_row = (variant >> 1) & 1,
                       .out_s8 = (variant >> 2) & 1,
                       .narrow = variant % 5 == 0,
                       .int32_out = variant % 7 == 3,
                       .big_bias = variant % 11 == 4};
    check_q8_case(c, &o, isas, nisa);
}

START_TEST(q8_against_ref_loop) { for_cases(q8_variant); }
END_TEST

/* The largest products and sums the exactness argument allows, on both input domains. */
START_TEST(q8_extremes) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {{9, 9, 3, 3, 1, 1, 1, 1, 1, 1}, {12, 12, 5, 5, 2, 2, 2, 2, 2, 2}, {10, 11, 8, 8, 1, 1, 0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int xr = 0; xr <= 1; xr++)
            for (int out = 0; out <= 1; out++) {
                const q8_opts o = {.x_xor = xr ? 0x80 : 0, .x_zp = 0, .w_zp = 127, .per_row = 1, .out_s8 = out,
                                   .int32_out = out, .extremes = 1};
                check_q8_case(&cases[i], &o, isas, nisa);
            }
}
END_TEST

/* ---- what the plan takes ------------------------------------------------------------------ */

START_TEST(plan_scope) {
    const dw_case ok = {7, 7, 3, 3, 1, 1, 1, 1, 1, 1};
    oct_conv_geom g;
    oct_dw_plan pl;
    ck_assert(geom_of(&ok, &g));
    ck_assert(oct_dw_plan_init(&g, &pl));
    oct_conv_geom bad = g;
    bad.in[0] = 2, bad.out[0] = 2; /* 3-D */
    ck_assert(!oct_dw_plan_init(&bad, &pl));
    bad = g;
    bad.dil[2] = 2; /* dilated */
    ck_assert(!oct_dw_plan_init(&bad, &pl));
    bad = g;
    bad.stride[1] = OCT_DW_MAX_STRIDE + 1;
    ck_assert(!oct_dw_plan_init(&bad, &pl));
    bad = g;
    bad.k[1] = bad.k[2] = 9; /* 81 taps */
    ck_assert(!oct_dw_plan_init(&bad, &pl));
    bad = g;
    bad.k[2] = 1, bad.dil[2] = 3; /* dilation along a dim of kernel 1 changes nothing */
    ck_assert(oct_dw_plan_init(&bad, &pl));
    /* a very wide row: one output row per band, scratch still bounded by the row */
    const dw_case wide = {3, 100000, 3, 3, 1, 1, 1, 1, 1, 1};
    ck_assert(geom_of(&wide, &g));
    ck_assert(oct_dw_plan_init(&g, &pl));
    ck_assert_int_eq(pl.band, 1);
    ck_assert(oct_dw_scratch_bytes(&pl) < 6 * sizeof(float) * 110000); /* 3 plane rows, acc, row buffer */
}
END_TEST

static Suite *dwconv_suite(void) {
    Suite *s = suite_create("dwconv");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, f32_against_ref_loop);
    tcase_add_test(tc, f32_every_epilogue);
    tcase_add_test(tc, q8_against_ref_loop);
    tcase_add_test(tc, q8_extremes);
    tcase_add_test(tc, plan_scope);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(dwconv_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
