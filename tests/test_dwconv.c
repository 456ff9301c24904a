/* The depthwise band kernels (kernels/ref/dwconv_kernels.h) at every ISA level this CPU supports,
   ref twin included, against the direct ref loops they replace:
   - fp32 against oct_ref_conv_depthwise within a forward error bound, over plane sizes from 1x1 to
     112x112 and 1xN rows, kernels 1x1..7x7 (even and non-square too), strides 1/2/3 and mixed,
     pads 0/1/2 and asymmetric ones, with bias, residual and every activation kind;
   - int8 bit for bit against oct_ref_qconv_depthwise + oct_ref_requant: uint8 and int8 input
     (x ^ 0x80), any zero points, per-tensor and per-channel multipliers, uint8/int8 output, clamps
     narrowed by a fused Relu/Clip, bias near the int32 wrap, and the int32 output of ConvInteger;
   - the extremes of the exactness argument (|x - zx| = |w - zw| = 255 over 64 taps);
   - nothing written past a row's end, and the plan refusing what the ref loops must keep;
   - the same for the channel-blocked kernels (dwconv_blocked.h), the int8 row kernels
     (dwconv_rows.h) and the fp32 row kernels (dwconv_rows_f32.h: ref twin and every level that has
     them), and the ops through sessions. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "kernels/kernels.h"
#include "kernels/ref/dwconv_blocked.h"
#include "kernels/ref/dwconv_kernels.h"
#include "kernels/ref/dwconv_rows.h"
#include "kernels/ref/dwconv_rows_f32.h"
#include "test_session.h"
#include "test_util.h"

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

/* One fp32 depthwise channel's random case and its reference (oct_ref_conv_depthwise). */
typedef struct {
    const dw_case *c;
    oct_conv_geom g;
    int act_kind, with_res;
    int64_t P;
    float *x, *w, *res, *ref, *y, bias;
    double *mag;
    oct_act act;
    const float *r; /* res, or NULL without a residual */
} f32_data;

static void f32_data_make(const dw_case *c, const oct_conv_geom *g, int act_kind, int with_res, f32_data *d) {
    d->c = c, d->g = *g, d->act_kind = act_kind, d->with_res = with_res;
    const int64_t in = c->ih * c->iw, K = c->kh * c->kw, P = d->P = g->out[1] * g->out[2];
    d->x = malloc(sizeof(float) * (size_t)in), d->w = malloc(sizeof(float) * (size_t)K);
    d->res = malloc(sizeof(float) * (size_t)P), d->ref = malloc(sizeof(float) * (size_t)P);
    d->y = malloc(sizeof(float) * (size_t)(P + 16));
    d->mag = malloc(sizeof(double) * (size_t)P);
    for (int64_t i = 0; i < in; i++) d->x[i] = 2.f * frand();
    for (int64_t i = 0; i < K; i++) d->w[i] = frand();
    for (int64_t i = 0; i < P; i++) d->res[i] = frand();
    d->bias = frand();
    d->act = (oct_act){act_kind, act_kind == 2 ? -0.5f : act_kind == 7 ? 0.2f : 0.1f, act_kind == 2 ? 0.75f : 0.5f};
    d->r = with_res ? d->res : NULL;
    oct_ref_conv_depthwise(g, d->x, d->w, d->bias, d->r, &d->act, d->ref);
    abs_sums(g, d->x, d->w, d->mag);
}

static void f32_data_free(f32_data *d) { free(d->x), free(d->w), free(d->res), free(d->ref), free(d->y), free(d->mag); }

/* Checks d->y against the reference, the guard past it, and the channel sum (float partial sums
   of up to sum_run values per lane, added in double). */
static void f32_data_check(const f32_data *d, const char *name, double sum, int want_sum, int64_t sum_run) {
    const dw_case *c = d->c;
    double exact = 0.0, size = 0.0;
    for (int64_t i = 0; i < d->P; i++) exact += d->y[i], size += fabs((double)d->y[i]);
    const double sum_tol = want_sum ? 1e-6 * (double)(sum_run + 1) * size + 1e-12 : 0.0;
    ck_assert_msg(fabs(sum - (want_sum ? exact : 0.0)) <= sum_tol, "%s: channel sum %.9g vs %.9g (want %d)", name, sum,
                  exact, want_sum);
    for (int64_t i = 0; i < d->P; i++) {
        /* every activation here has a slope <= 1.5, so the pre-activation bound carries over */
        const double tol = 1e-5 * (d->mag[i] + fabs(d->bias) + 2.0) + 2e-6 * fabs(d->ref[i]);
        ck_assert_msg(fabs((double)d->y[i] - d->ref[i]) <= tol,
                      "%s: %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld act %d res %d [%lld]: %g vs ref %g", name,
                      (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw, (long long)c->sh,
                      (long long)c->sw, (long long)c->ph, (long long)c->pw, d->act_kind, d->with_res, (long long)i,
                      (double)d->y[i], (double)d->ref[i]);
    }
    for (int64_t i = d->P; i < d->P + 16; i++) ck_assert_msg(d->y[i] == GUARD, "%s wrote past the output", name);
}

static void check_f32_case(const dw_case *c, int act_kind, int with_res, const oct_isa *isas, int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dw_plan pl;
    ck_assert_msg(oct_dw_plan_init(&g, &pl), "plan refused %lldx%lld k%lldx%lld", (long long)c->ih, (long long)c->iw,
                  (long long)c->kh, (long long)c->kw);
    f32_data d;
    f32_data_make(c, &g, act_kind, with_res, &d);
    void *scratch = scratch_for(&pl);
    for (int l = 0; l < nisa; l++) {
        const oct_dw_kernels *k = select_level(isas[l]);
        for (int64_t i = 0; i < d.P + 16; i++) d.y[i] = GUARD;
        /* the channel sum of a fused GlobalAveragePool: every other case, so that want_sum = 0
           is run as well (and must report nothing) */
        const int want_sum = (int)((c->ih + c->kw + act_kind + with_res) & 1);
        const double sum = oct_dw_conv_f32(k, &pl, d.x, d.w, d.bias, d.r, &d.act, d.y, want_sum, scratch);
        /* a band's few thousand values in 4 to 16 lanes */
        f32_data_check(&d, k->name, sum, want_sum, pl.band * pl.ow / 4);
    }
    restore_level();
    free(scratch);
    f32_data_free(&d);
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

/* Per-row multipliers and biases for 8 rows that keep acc[0..P) in the output range (o->big_bias:
   biases near INT32_MAX, to wrap), and the output zero point. */
static int32_t random_requant(const q8_opts *o, const int32_t *acc, int64_t P, float scale[8], int32_t bias[8]) {
    double amax = 1;
    for (int64_t i = 0; i < P; i++) amax = fabs((double)acc[i]) > amax ? fabs((double)acc[i]) : amax;
    for (int i = 0; i < 8; i++) {
        scale[i] = (float)(irand(60, 200) / amax);
        bias[i] = o->big_bias ? INT32_MAX - irand(0, 1000) : irand(-(int32_t)amax / 4 - 1, (int32_t)amax / 4 + 1);
    }
    return o->out_s8 ? irand(-20, 20) : irand(90, 160);
}

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
    const int32_t zp = random_requant(o, acc, P, scale, bias);
    const int32_t qmin = o->out_s8 ? -128 : 0, qmax = o->out_s8 ? 127 : 255;
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

/* The options of int8 variant `variant`: input domain, zero points, per-row scales, output type,
   narrow clamp, int32 output and large biases, each switched by its own residue. */
static q8_opts q8_opts_of(int variant) {
    return (q8_opts){.x_xor = (variant & 1) ? 0x80 : 0,
                     .x_zp = irand(0, 255),
                     .w_zp = variant % 3 == 0 ? 0 : irand(-128, 127),
                     .per_row = (variant >> 1) & 1,
                     .out_s8 = (variant >> 2) & 1,
                     .narrow = variant % 5 == 0,
                     .int32_out = variant % 7 == 3,
                     .big_bias = variant % 11 == 4};
}

static void q8_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    const q8_opts o = q8_opts_of(variant);
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

/* ---- the channel-blocked path (ref/dwconv_blocked.h) --------------------------------------- */

/* Blocks of nch channels over output rows split in two calls at `split` (a band boundary or not),
   so that a call starting inside the plane is covered too. */
static int64_t split_row(const oct_dwb_plan *pl, int variant) {
    return pl->oh < 2 ? pl->oh : (variant & 1 ? pl->oh / 2 : (pl->band < pl->oh ? pl->band : pl->oh - 1));
}

static void *dwb_scratch_for(const oct_dwb_plan *pl) {
    void *s = aligned_alloc(64, oct_dwb_scratch_bytes(pl));
    ck_assert_ptr_nonnull(s);
    memset(s, 0xff, oct_dwb_scratch_bytes(pl)); /* garbage (NaN floats), as the arena may hold */
    return s;
}

/* The block's weights [taps][lanes], lanes past nch zero. */
static float *dwb_weights(const float *w, int64_t K, int nch) {
    float *wb = aligned_alloc(64, sizeof(float) * (size_t)(K * OCT_DWB_LANES));
    ck_assert_ptr_nonnull(wb);
    for (int64_t t = 0; t < K; t++)
        for (int l = 0; l < OCT_DWB_LANES; l++) wb[t * OCT_DWB_LANES + l] = l < nch ? w[l * K + t] : 0.f;
    return wb;
}

static void check_blocked_f32(const dw_case *c, int act_kind, int with_res, int nch, int variant, const oct_isa *isas,
                              int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dwb_plan pl;
    if (!oct_dwb_plan_init(&g, &pl)) {
        ck_assert_msg((g.out[2] - 1) * c->sw + c->kw > 256 || c->pw + c->iw > 256,
                      "blocked plan refused a %lld-wide row", (long long)c->iw);
        return;
    }
    const int64_t in = c->ih * c->iw, P = g.out[1] * g.out[2], K = c->kh * c->kw;
    const int64_t xs = in + 3, ys = P + 16; /* channel strides, with a guard gap in y */
    float *x = malloc(sizeof(float) * (size_t)(xs * nch)), *w = malloc(sizeof(float) * (size_t)(K * nch));
    float *res = malloc(sizeof(float) * (size_t)(ys * nch)), *ref = malloc(sizeof(float) * (size_t)(P * nch));
    float *y = malloc(sizeof(float) * (size_t)(ys * nch)), bias[OCT_DWB_LANES];
    double *mag = malloc(sizeof(double) * (size_t)(P * nch)), sums[OCT_DWB_LANES];
    for (int64_t i = 0; i < xs * nch; i++) x[i] = 2.f * frand();
    for (int64_t i = 0; i < K * nch; i++) w[i] = frand();
    for (int64_t i = 0; i < ys * nch; i++) res[i] = frand();
    for (int l = 0; l < nch; l++) bias[l] = frand();
    const oct_act act = {act_kind, act_kind == 2 ? -0.5f : act_kind == 7 ? 0.2f : 0.1f, act_kind == 2 ? 0.75f : 0.5f};
    for (int l = 0; l < nch; l++) {
        oct_ref_conv_depthwise(&g, x + l * xs, w + l * K, bias[l], with_res ? res + l * ys : NULL, &act, ref + l * P);
        abs_sums(&g, x + l * xs, w + l * K, mag + l * P);
    }
    float *wb = dwb_weights(w, K, nch);
    void *scratch = dwb_scratch_for(&pl);
    const int want_sums = variant % 3 == 0;
    const int64_t mid = split_row(&pl, variant);
    for (int li = 0; li < nisa; li++) {
        const oct_dw_kernels *k = select_level(isas[li]);
        const oct_dwb_kernels *bk = oct_dwb_kernels_selected();
        for (int64_t i = 0; i < ys * nch; i++) y[i] = GUARD;
        for (int l = 0; l < nch; l++) sums[l] = 0.0;
        oct_dwb_conv_f32(bk, k, &pl, x, xs, nch, wb, bias, with_res ? res : NULL, &act, y, ys, 0, mid,
                         want_sums ? sums : NULL, scratch);
        oct_dwb_conv_f32(bk, k, &pl, x, xs, nch, wb, bias, with_res ? res : NULL, &act, y, ys, mid, pl.oh,
                         want_sums ? sums : NULL, scratch);
        for (int l = 0; l < nch; l++) {
            const float *yl = y + l * ys, *rl = ref + l * P;
            double exact = 0.0, size = 0.0;
            for (int64_t i = 0; i < P; i++) {
                const double tol = 1e-5 * (mag[l * P + i] + fabs(bias[l]) + 2.0) + 2e-6 * fabs(rl[i]);
                ck_assert_msg(fabs((double)yl[i] - rl[i]) <= tol,
                              "%s blocked: %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld act %d res %d ch %d/%d [%lld]: "
                              "%g vs ref %g",
                              bk->name, (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw,
                              (long long)c->sh, (long long)c->sw, (long long)c->ph, (long long)c->pw, act_kind,
                              with_res, l, nch, (long long)i, (double)yl[i], (double)rl[i]);
                exact += yl[i], size += fabs((double)yl[i]);
            }
            for (int64_t i = P; i < ys; i++) ck_assert_msg(yl[i] == GUARD, "%s blocked wrote past a channel", bk->name);
            const double tol = want_sums ? 1e-6 * (double)(pl.band * pl.ow / 4 + 1) * size + 1e-12 : 0.0;
            ck_assert_msg(fabs(sums[l] - (want_sums ? exact : 0.0)) <= tol, "%s blocked: channel sum %.9g vs %.9g",
                          bk->name, sums[l], exact);
        }
    }
    restore_level();
    free(scratch), free(wb);
    free(x), free(w), free(res), free(ref), free(y), free(mag);
}

static void blocked_f32_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    check_blocked_f32(c, variant % 9, (variant / 9) % 2, 1 + (variant * 7) % OCT_DWB_LANES, variant, isas, nisa);
}

START_TEST(blocked_f32_against_ref_loop) { for_cases(blocked_f32_variant); }
END_TEST

/* Every activation, all 16 lanes, on the shapes of MobileNetV2 and EfficientNet. */
START_TEST(blocked_f32_every_epilogue) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {{14, 14, 3, 3, 1, 1, 1, 1, 1, 1},
                             {15, 15, 5, 5, 2, 2, 2, 2, 2, 2},
                             {7, 7, 5, 5, 1, 1, 2, 2, 2, 2},
                             {29, 30, 3, 3, 2, 2, 0, 0, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int act = 0; act <= 8; act++)
            for (int res = 0; res <= 1; res++)
                check_blocked_f32(&cases[i], act, res, OCT_DWB_LANES, act + res, isas, nisa);
}
END_TEST

static void check_blocked_q8(const dw_case *c, const q8_opts *o, int nch, int variant, const oct_isa *isas, int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dwb_plan pl;
    if (!oct_dwb_plan_init(&g, &pl)) {
        ck_assert_msg((g.out[2] - 1) * c->sw + c->kw > 256 || c->pw + c->iw > 256,
                      "blocked plan refused a %lld-wide row", (long long)c->iw);
        return;
    }
    enum { M0 = 2 }; /* channel l is row M0 + l of the requantization */
    const int64_t in = c->ih * c->iw, P = g.out[1] * g.out[2], K = c->kh * c->kw, xs = in + 5, ys = P + 16;
    uint8_t *x = malloc((size_t)(xs * nch)), *yref = malloc((size_t)(P * nch)), *y = malloc((size_t)(ys * nch));
    int8_t *w = malloc((size_t)(K * nch));
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)(P * nch)), *yi = malloc(sizeof(int32_t) * (size_t)(ys * nch));
    float *wf = malloc(sizeof(float) * (size_t)(K * nch));
    for (int64_t i = 0; i < xs * nch; i++) x[i] = o->extremes ? (uint8_t)(255 ^ o->x_xor) : (uint8_t)irand(0, 255);
    for (int64_t i = 0; i < K * nch; i++) w[i] = o->extremes ? (int8_t)-128 : (int8_t)irand(-128, 127);
    for (int64_t i = 0; i < K * nch; i++) wf[i] = (float)((int32_t)w[i] - o->w_zp);
    double amax = 1;
    for (int l = 0; l < nch; l++)
        oct_ref_qconv_depthwise(&g, x + l * xs, o->x_xor, o->x_zp, w + l * K, o->w_zp, 0, P, acc + l * P);
    for (int64_t i = 0; i < P * nch; i++) amax = fabs((double)acc[i]) > amax ? fabs((double)acc[i]) : amax;
    float scale[M0 + OCT_DWB_LANES];
    int32_t bias[M0 + OCT_DWB_LANES];
    for (int i = 0; i < M0 + OCT_DWB_LANES; i++) {
        scale[i] = (float)(irand(60, 200) / amax);
        bias[i] = o->big_bias ? INT32_MAX - irand(0, 1000) : irand(-(int32_t)amax / 4 - 1, (int32_t)amax / 4 + 1);
    }
    const int32_t qmin = o->out_s8 ? -128 : 0, qmax = o->out_s8 ? 127 : 255;
    const int32_t zp = o->out_s8 ? irand(-20, 20) : irand(90, 160);
    const oct_requant rq = {.scale = o->per_row ? scale : scale + M0,
                            .scale_per_row = o->per_row,
                            .bias = bias,
                            .zp = zp,
                            .qmin = o->narrow ? zp : qmin,
                            .qmax = o->narrow ? qmax - 20 : qmax,
                            .out_s8 = o->out_s8};
    oct_ref_requant(acc, P, M0, nch, (int)P, &rq, yref, P, 1);
    float *wb = dwb_weights(wf, K, nch);
    void *scratch = dwb_scratch_for(&pl);
    const int64_t mid = split_row(&pl, variant);
    for (int li = 0; li < nisa; li++) {
        const oct_dw_kernels *k = select_level(isas[li]);
        const oct_dwb_kernels *bk = oct_dwb_kernels_selected();
        if (o->int32_out) {
            for (int64_t i = 0; i < ys * nch; i++) yi[i] = 0x5a5a5a5a;
            oct_dwb_conv_q8(bk, k, &pl, x, xs, o->x_xor, o->x_zp, nch, wb, NULL, M0, yi, ys, 0, mid, NULL, scratch);
            oct_dwb_conv_q8(bk, k, &pl, x, xs, o->x_xor, o->x_zp, nch, wb, NULL, M0, yi, ys, mid, pl.oh, NULL, scratch);
            for (int l = 0; l < nch; l++) {
                for (int64_t i = 0; i < P; i++)
                    ck_assert_msg(yi[l * ys + i] == acc[l * P + i], "%s blocked int32 ch %d [%lld]: %d vs ref %d",
                                  bk->name, l, (long long)i, yi[l * ys + i], acc[l * P + i]);
                for (int64_t i = P; i < ys; i++)
                    ck_assert_msg(yi[l * ys + i] == 0x5a5a5a5a, "%s blocked wrote past a channel", bk->name);
            }
            continue;
        }
        memset(y, 0xa5, (size_t)(ys * nch));
        int64_t sums[OCT_DWB_LANES] = {0};
        const int want_sums = (li + variant) % 2 == 0;
        oct_dwb_conv_q8(bk, k, &pl, x, xs, o->x_xor, o->x_zp, nch, wb, &rq, M0, y, ys, 0, mid, want_sums ? sums : NULL,
                        scratch);
        oct_dwb_conv_q8(bk, k, &pl, x, xs, o->x_xor, o->x_zp, nch, wb, &rq, M0, y, ys, mid, pl.oh,
                        want_sums ? sums : NULL, scratch);
        for (int l = 0; l < nch; l++) {
            int64_t exact = 0;
            for (int64_t i = 0; i < P; i++) {
                const uint8_t r = yref[l * P + i];
                ck_assert_msg(
                    y[l * ys + i] == r,
                    "%s blocked: %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld xor %d zx %d zw %d s8 %d ch %d/%d "
                    "[%lld]: %d vs ref %d",
                    bk->name, (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw, (long long)c->sh,
                    (long long)c->sw, (long long)c->ph, (long long)c->pw, o->x_xor, o->x_zp, o->w_zp, o->out_s8, l, nch,
                    (long long)i, y[l * ys + i], r);
                exact += o->out_s8 ? (int64_t)(int8_t)r : (int64_t)r;
            }
            for (int64_t i = P; i < ys; i++)
                ck_assert_msg(y[l * ys + i] == 0xa5, "%s blocked wrote past a channel", bk->name);
            ck_assert_msg(sums[l] == (want_sums ? exact : 0), "%s blocked: sum %lld vs %lld", bk->name,
                          (long long)sums[l], (long long)exact);
        }
    }
    restore_level();
    free(scratch), free(wb);
    free(x), free(yref), free(y), free(w), free(acc), free(yi), free(wf);
}

static void blocked_q8_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    const q8_opts o = q8_opts_of(variant);
    check_blocked_q8(c, &o, 1 + (variant * 5) % OCT_DWB_LANES, variant, isas, nisa);
}

START_TEST(blocked_q8_against_ref_loop) { for_cases(blocked_q8_variant); }
END_TEST

START_TEST(blocked_q8_extremes) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {
        {9, 9, 3, 3, 1, 1, 1, 1, 1, 1}, {12, 12, 5, 5, 2, 2, 2, 2, 2, 2}, {10, 11, 8, 8, 1, 1, 0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int xr = 0; xr <= 1; xr++)
            for (int out = 0; out <= 1; out++) {
                const q8_opts o = {.x_xor = xr ? 0x80 : 0,
                                   .x_zp = 0,
                                   .w_zp = 127,
                                   .per_row = 1,
                                   .out_s8 = out,
                                   .int32_out = out,
                                   .extremes = 1};
                check_blocked_q8(&cases[i], &o, OCT_DWB_LANES, (int)i + xr, isas, nisa);
            }
}
END_TEST

/* ---- the int8 row path (ref/dwconv_rows.h) ------------------------------------------------ */

/* One channel through the ref twin and the row kernels of every level that has them, the rows
   split in two calls at `mid` (inside a band or not), against oct_ref_qconv_depthwise +
   oct_ref_requant: bit for bit, nothing written past the plane, the exact sum. Weights whose
   difference from w_zp leaves int8 must be refused instead. */
static void check_rows_q8(const dw_case *c, const q8_opts *o, int variant, const oct_isa *isas, int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dwr_plan pl;
    if (!oct_dwr_plan_init(&g, &pl)) {
        ck_assert_msg(c->sw > 4 || c->kh * ((c->kw + 3) / 4) > OCT_DWR_MAX_GROUPS,
                      "row plan refused %lldx%lld k%lldx%lld",
                      (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw);
        return;
    }
    enum { ROW = 5 };
    const int64_t in = c->ih * c->iw, P = g.out[1] * g.out[2], K = c->kh * c->kw;
    uint8_t *x = malloc((size_t)in), *yref = malloc((size_t)P), *y = malloc((size_t)(P + 16));
    int8_t *w = malloc((size_t)K);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)P), wg[OCT_DWR_MAX_GROUPS], wsum;
    for (int64_t i = 0; i < in; i++) x[i] = o->extremes ? (uint8_t)(255 ^ o->x_xor) : (uint8_t)irand(0, 255);
    /* weights within int8 of the zero point (the row path's domain) */
    for (int64_t i = 0; i < K; i++)
        w[i] = o->extremes ? (int8_t)(o->w_zp - 128) : (int8_t)irand(o->w_zp < 0 ? -128 : o->w_zp - 128,
                                                                   o->w_zp < 0 ? o->w_zp + 127 : 127);
    ck_assert(oct_dwr_pack_weights(&pl, w, o->w_zp, wg, &wsum));
    oct_ref_qconv_depthwise(&g, x, o->x_xor, o->x_zp, w, o->w_zp, 0, P, acc);
    float scale[8];
    int32_t bias[8];
    const int32_t zp = random_requant(o, acc, P, scale, bias);
    const int32_t qmin = o->out_s8 ? -128 : 0, qmax = o->out_s8 ? 127 : 255;
    const oct_requant rq = {.scale = scale, .scale_per_row = 1, .bias = bias, .zp = zp,
                            .qmin = o->narrow ? zp : qmin, .qmax = o->narrow ? qmax - 20 : qmax, .out_s8 = o->out_s8};
    oct_ref_requant(acc, P, ROW, 1, (int)P, &rq, yref, P, 1);
    int64_t exact = 0;
    for (int64_t i = 0; i < P; i++) exact += o->out_s8 ? (int64_t)(int8_t)yref[i] : (int64_t)yref[i];
    const float lo = (float)(rq.qmin - zp), hi = (float)(rq.qmax - zp);
    void *scratch = aligned_alloc(64, oct_dwr_scratch_bytes(&pl));
    ck_assert_ptr_nonnull(scratch);
    const int64_t mid = variant % 3 == 0 ? 0 : variant % 3 == 1 ? pl.oh / 2 : pl.band;
    /* the ref twin, then the level sets (NULL where a level has none) */
    for (int li = -1; li < nisa; li++) {
        const oct_dwr_kernels *rk = li < 0 ? &oct_ref_dwr_kernels : oct_dwr_kernels_for(isas[li]);
        if (!rk) continue;
        memset(scratch, 0xff, oct_dwr_scratch_bytes(&pl)); /* garbage, as the arena holds */
        memset(y, 0xa5, (size_t)(P + 16));
        const int want_sum = (li + variant) % 2 == 0;
        int64_t sum = 0;
        const int64_t cut = mid < pl.oh ? mid : pl.oh;
        oct_dwr_conv_q8(rk, &pl, x, o->x_xor, o->x_zp, wg, wsum, bias[ROW], scale[ROW], lo, hi, zp, y, 0, cut,
                        want_sum ? &sum : NULL, scratch);
        oct_dwr_conv_q8(rk, &pl, x, o->x_xor, o->x_zp, wg, wsum, bias[ROW], scale[ROW], lo, hi, zp, y, cut, pl.oh,
                        want_sum ? &sum : NULL, scratch);
        for (int64_t i = 0; i < P; i++)
            ck_assert_msg(y[i] == yref[i],
                          "%s rows: %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld xor %d zx %d zw %d s8 %d [%lld]: "
                          "%d vs ref %d",
                          rk->name, (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw,
                          (long long)c->sh, (long long)c->sw, (long long)c->ph, (long long)c->pw, o->x_xor, o->x_zp,
                          o->w_zp, o->out_s8, (long long)i, y[i], yref[i]);
        for (int64_t i = P; i < P + 16; i++) ck_assert_msg(y[i] == 0xa5, "%s rows wrote past the output", rk->name);
        ck_assert_msg(sum == (want_sum ? exact : 0), "%s rows: sum %lld vs %lld", rk->name, (long long)sum,
                      (long long)exact);
    }
    /* a weight 129 away from its zero point does not fit */
    w[K - 1] = o->w_zp >= 0 ? (int8_t)(o->w_zp - 129 >= -128 ? o->w_zp - 129 : -128) : (int8_t)(o->w_zp + 129);
    if ((int32_t)w[K - 1] - o->w_zp < -128 || (int32_t)w[K - 1] - o->w_zp > 127)
        ck_assert(!oct_dwr_pack_weights(&pl, w, o->w_zp, wg, &wsum));
    free(scratch);
    free(x), free(yref), free(y), free(w), free(acc);
}

static void rows_q8_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    q8_opts o = q8_opts_of(variant);
    o.int32_out = 0; /* QLinearConv only */
    check_rows_q8(c, &o, variant, isas, nisa);
}

START_TEST(rows_q8_against_ref_loop) { for_cases(rows_q8_variant); }
END_TEST

/* The largest sums: every input 255 (or 127 flipped) against weights 128 below the zero point,
   and the widest kernels the groups take. */
START_TEST(rows_q8_extremes) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {{9, 9, 3, 3, 1, 1, 1, 1, 1, 1}, {40, 37, 5, 5, 2, 2, 2, 2, 2, 2},
                             {10, 70, 8, 8, 1, 1, 0, 0, 0, 0}, {6, 90, 2, 16, 1, 4, 1, 7, 0, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int xr = 0; xr <= 1; xr++)
            for (int out = 0; out <= 1; out++) {
                const q8_opts o = {.x_xor = xr ? 0x80 : 0, .x_zp = 0, .w_zp = 127, .per_row = 1, .out_s8 = out,
                                   .extremes = 1};
                check_rows_q8(&cases[i], &o, (int)i + xr + out, isas, nisa);
            }
}
END_TEST

/* ---- the fp32 row path (ref/dwconv_rows_f32.h) ------------------------------------------- */

/* One channel through the ref twin and the row kernels of every level that has them, the rows
   split in two calls at a cut that varies (inside a band or not), against oct_ref_conv_depthwise
   within check_f32_case's bound; nothing written past the plane; the channel sum. */
static void check_rows_f32(const dw_case *c, int act_kind, int with_res, int variant, const oct_isa *isas,
                           int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dwf_plan pl;
    /* both layouts of stride-2 rows, in turn */
    const int layout = variant % 2 ? OCT_DWF_PLAIN : OCT_DWF_PHASES;
    if (!oct_dwf_plan_init(&g, layout, &pl)) {
        oct_dw_plan base;
        ck_assert_msg(c->sw > 2 || !oct_dw_plan_init(&g, &base), "row plan refused %lldx%lld k%lldx%lld s%lld",
                      (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw, (long long)c->sw);
        return;
    }
    f32_data d;
    f32_data_make(c, &g, act_kind, with_res, &d);
    void *scratch = aligned_alloc(64, oct_dwf_scratch_bytes(&pl));
    ck_assert_ptr_nonnull(scratch);
    const int64_t mid = variant % 3 == 0 ? 0 : variant % 3 == 1 ? pl.oh / 2 : pl.band + 1;
    const int64_t cut = mid < pl.oh ? mid : pl.oh;
    for (int li = -1; li < nisa; li++) {
        const oct_dwf_kernels *rk = li < 0 ? &oct_ref_dwf_kernels : oct_dwf_kernels_for(isas[li]);
        if (!rk) continue;
        memset(scratch, 0xff, oct_dwf_scratch_bytes(&pl)); /* garbage (NaN), as the arena may hold */
        for (int64_t i = 0; i < d.P + 16; i++) d.y[i] = GUARD;
        const int want_sum = (li + variant) % 2 == 0;
        double sum = 0.0;
        oct_dwf_conv_f32(rk, &pl, d.x, d.w, d.bias, d.r, &d.act, d.y, 0, cut, want_sum ? &sum : NULL, scratch);
        oct_dwf_conv_f32(rk, &pl, d.x, d.w, d.bias, d.r, &d.act, d.y, cut, pl.oh, want_sum ? &sum : NULL, scratch);
        char name[64];
        snprintf(name, sizeof name, "%s rows", rk->name);
        f32_data_check(&d, name, sum, want_sum, pl.band * pl.ow / 16); /* a band in 16 lanes */
    }
    free(scratch);
    f32_data_free(&d);
}

static void rows_f32_variant(const dw_case *c, int variant, const oct_isa *isas, int nisa) {
    check_rows_f32(c, variant % 9, (variant / 9) % 2, variant, isas, nisa);
}

START_TEST(rows_f32_against_ref_loop) { for_cases(rows_f32_variant); }
END_TEST

/* Every activation on the wide shapes the row path takes in MobileNetV2 / EfficientNet-B0/B3, and
   pads that leave the last input column unread or read twice as padding. */
START_TEST(rows_f32_every_epilogue) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {{112, 112, 3, 3, 2, 2, 0, 0, 1, 1}, {57, 56, 3, 3, 1, 1, 1, 1, 1, 1},
                             {75, 75, 5, 5, 1, 1, 2, 2, 2, 2}, {150, 150, 5, 5, 2, 2, 2, 2, 2, 2},
                             {30, 113, 3, 3, 2, 2, 1, 1, 0, 0}, {20, 64, 5, 5, 1, 2, 2, 1, 2, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int act = 0; act <= 8; act++)
            for (int res = 0; res <= 1; res++)
                for (int layout = 0; layout <= 1; layout++)
                    check_rows_f32(&cases[i], act, res, 2 * (act + res) + layout, isas, nisa);
}
END_TEST

/* The dense rows (few input channels, ref/dwconv_rows_f32.h) of the ref twin and every level that
   has them, against a double-precision loop; output groups of 4 and a last partial one, with and
   without bias, the rows split in two calls, nothing written past the planes. */
static void check_dense_f32(const dw_case *c, int channels, int64_t m, int act_kind, int with_res, int with_bias,
                            const oct_isa *isas, int nisa) {
    oct_conv_geom g;
    if (!geom_of(c, &g)) return;
    oct_dwf_plan pl;
    ck_assert(oct_dwf_plan_init(&g, OCT_DWF_PHASES, &pl));
    const int64_t in = c->ih * c->iw, P = g.out[1] * g.out[2], K = c->kh * c->kw;
    float *x = malloc(sizeof(float) * (size_t)(channels * in)), *w = malloc(sizeof(float) * (size_t)(m * channels * K));
    float *bias = malloc(sizeof(float) * (size_t)m), *res = malloc(sizeof(float) * (size_t)(m * P));
    float *y = malloc(sizeof(float) * (size_t)(m * P + 16));
    double *ref = malloc(sizeof(double) * (size_t)(m * P)), *mag = malloc(sizeof(double) * (size_t)(m * P));
    for (int64_t i = 0; i < channels * in; i++) x[i] = 2.f * frand();
    for (int64_t i = 0; i < m * channels * K; i++) w[i] = frand();
    for (int64_t i = 0; i < m; i++) bias[i] = with_bias ? frand() : 0.f;
    for (int64_t i = 0; i < m * P; i++) res[i] = frand();
    const oct_act act = {act_kind, act_kind == 2 ? -0.5f : 0.1f, act_kind == 2 ? 0.75f : 0.5f};
    for (int64_t l = 0; l < m; l++)
        for (int64_t p = 0; p < P; p++) {
            const int64_t oh = p / pl.ow, ow = p % pl.ow;
            double s = bias[l], a = fabs((double)bias[l]);
            for (int ch = 0; ch < channels; ch++)
                for (int64_t i = 0; i < c->kh; i++)
                    for (int64_t j = 0; j < c->kw; j++) {
                        const int64_t ih = oh * c->sh + i - c->ph, iw = ow * c->sw + j - c->pw;
                        if (ih < 0 || ih >= c->ih || iw < 0 || iw >= c->iw) continue;
                        const double t = (double)x[ch * in + ih * c->iw + iw] * w[(l * channels + ch) * K + i * c->kw + j];
                        s += t, a += fabs(t);
                    }
            if (with_res) s += res[l * P + p], a += fabs((double)res[l * P + p]);
            ref[l * P + p] = oct_act_apply(&act, (float)s);
            mag[l * P + p] = a;
        }
    void *scratch = aligned_alloc(64, oct_dwf_dense_scratch_bytes(&pl, channels));
    ck_assert_ptr_nonnull(scratch);
    const int64_t cut = pl.oh / 2;
    for (int li = -1; li < nisa; li++) {
        const oct_dwf_kernels *rk = li < 0 ? &oct_ref_dwf_kernels : oct_dwf_kernels_for(isas[li]);
        if (!rk) continue;
        memset(scratch, 0xff, oct_dwf_dense_scratch_bytes(&pl, channels));
        for (int64_t i = 0; i < m * P + 16; i++) y[i] = GUARD;
        const float *r = with_res ? res : NULL, *b = with_bias ? bias : NULL;
        oct_dwf_dense_f32(rk, &pl, x, in, channels, w, m, b, r, &act, y, P, 0, cut, scratch);
        oct_dwf_dense_f32(rk, &pl, x, in, channels, w, m, b, r, &act, y, P, cut, pl.oh, scratch);
        for (int64_t i = 0; i < m * P; i++) {
            const double tol = 1e-5 * (mag[i] + 2.0) + 2e-6 * fabs(ref[i]);
            ck_assert_msg(fabs((double)y[i] - ref[i]) <= tol,
                          "%s dense: %lldx%lld k%lldx%lld s%lldx%lld C%d M%lld act %d [%lld]: %g vs %g", rk->name,
                          (long long)c->ih, (long long)c->iw, (long long)c->kh, (long long)c->kw, (long long)c->sh,
                          (long long)c->sw, channels, (long long)m, act_kind, (long long)i, (double)y[i], ref[i]);
        }
        for (int64_t i = m * P; i < m * P + 16; i++)
            ck_assert_msg(y[i] == GUARD, "%s dense wrote past the output", rk->name);
    }
    free(scratch);
    free(x), free(w), free(bias), free(res), free(y), free(ref), free(mag);
}

/* Stems and their edges: 3x3 / 5x5 / 7x7 at stride 2, the generic kernel (4x4, 3x3 at column
   stride 1), 1 to 4 input channels, output counts around the groups of 4. */
START_TEST(dense_f32_against_loop) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    const dw_case cases[] = {{64, 64, 3, 3, 2, 2, 1, 1, 1, 1}, {33, 50, 5, 5, 2, 2, 2, 2, 2, 2},
                             {40, 41, 7, 7, 2, 2, 3, 3, 3, 3}, {17, 35, 4, 4, 2, 2, 1, 1, 2, 2},
                             {9, 70, 3, 3, 1, 1, 1, 1, 0, 1}, {30, 29, 3, 3, 2, 2, 0, 0, 0, 0}};
    int v = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int channels = 1; channels <= OCT_DWF_DENSE_MAX_C; channels++, v++)
            check_dense_f32(&cases[i], channels, 4 + v % 5, v % 9, v % 2, v % 3 != 0, isas, nisa);
}
END_TEST

/* ---- the ops on the blocked path ---------------------------------------------------------- */

/* Depthwise Conv -> SiLU -> GlobalAveragePool -> Mul(y, s) (fp32, the SE squeeze fused into the
   conv) and QLinearConv -> QLinearGlobalAveragePool (int8, fused likewise), run through sessions.
   Channels are independent, so the same network cut into slices of OP_SLICE channels (too few for
   the blocked path: the per-channel band kernels run) gives the reference for every channel. */
enum { OP_SLICE = 8 };

typedef struct {
    int64_t n, c, h, w, k, s;
    int q8;
    int wz; /* int8: the weights' zero point */
} op_case;

static oct_graph *op_graph(const op_case *e, int64_t c0, int64_t nc, const float *wf, const float *bf, const int8_t *wq,
                           const int32_t *bq, const float *wscale) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->ms_opset = 1;
    g->name = strdup("dw");
    const int64_t xd[4] = {e->n, nc, e->h, e->w}, wd[4] = {nc, 1, e->k, e->k}, kv = e->k * e->k;
    int conv, y;
    g->outputs = malloc(2 * sizeof(int));
    if (!e->q8) {
        const int in[3] = {test_graph_input(g, "x", OCTET_FLOAT, 4, xd),
                           test_graph_const(g, "W", OCTET_FLOAT, 4, wd, wf + c0 * kv),
                           test_graph_const(g, "B", OCTET_FLOAT, 1, &nc, bf + c0)};
        conv = test_graph_node(g, "", "Conv", 3, in);
    } else {
        const float xs = 0.02f, ys = 0.05f;
        const uint8_t xz = 121, yz = 130;
        const int8_t wz = (int8_t)e->wz;
        const int in[9] = {test_graph_input(g, "x", OCTET_UINT8, 4, xd),
                           test_graph_const(g, "xs", OCTET_FLOAT, 0, NULL, &xs),
                           test_graph_const(g, "xz", OCTET_UINT8, 0, NULL, &xz),
                           test_graph_const(g, "w", OCTET_INT8, 4, wd, wq + c0 * kv),
                           test_graph_const(g, "ws", OCTET_FLOAT, 1, &nc, wscale + c0),
                           test_graph_const(g, "wz", OCTET_INT8, 0, NULL, &wz),
                           test_graph_const(g, "ys", OCTET_FLOAT, 0, NULL, &ys),
                           test_graph_const(g, "yz", OCTET_UINT8, 0, NULL, &yz),
                           test_graph_const(g, "B", OCTET_INT32, 1, &nc, bq + c0)};
        conv = test_graph_node(g, "", "QLinearConv", 9, in);
    }
    test_attr_ints_fill(g, conv, "group", 0, nc);
    test_attr_ints_fill(g, conv, "kernel_shape", 2, e->k);
    test_attr_ints_fill(g, conv, "strides", 2, e->s);
    test_attr_ints_fill(g, conv, "pads", 4, e->k / 2);
    y = g->nodes[conv].out[0];
    if (!e->q8) {
        const int sg = test_graph_node_out(g, "", "Sigmoid", 1, &y);
        y = test_graph_node_out(g, "", "Mul", 2, (int[]){y, sg});
        const int s = test_graph_node_out(g, "", "GlobalAveragePool", 1, &y);
        g->outputs[g->n_outputs++] = test_graph_node_out(g, "", "Mul", 2, (int[]){y, s});
        g->outputs[g->n_outputs++] = s;
    } else {
        const float ys = 0.05f, ps = 0.01f;
        const uint8_t yz = 130, pz = 100;
        const int pin[5] = {y, test_graph_const(g, "ys2", OCTET_FLOAT, 0, NULL, &ys),
                            test_graph_const(g, "yz2", OCTET_UINT8, 0, NULL, &yz),
                            test_graph_const(g, "ps", OCTET_FLOAT, 0, NULL, &ps),
                            test_graph_const(g, "pz", OCTET_UINT8, 0, NULL, &pz)};
        g->outputs[g->n_outputs++] = y;
        g->outputs[g->n_outputs++] =
            test_graph_node_out(g, "com.microsoft", "QLinearGlobalAveragePool", 5, pin);
    }
    return g;
}

/* Runs g on x (the squeeze fused: the conv, and the excite Mul for fp32); out[0] the conv side,
   out[1] the pool. */
static void op_run(oct_graph *g, const op_case *e, int64_t nc, int threads, const void *x, octet_tensor out[2]) {
    const octet_tensor in = {e->q8 ? OCTET_UINT8 : OCTET_FLOAT, 4, {e->n, nc, e->h, e->w}, (void *)x};
    test_plan_run(g, threads, e->q8 ? 1 : 2, 1, &in, 2, out); /* 1 or 2 nodes: the squeeze fused */
}

static int op_close(const op_case *e, float got, float want) {
    return e->q8 ? got == want : fabsf(got - want) <= 1e-5f + 1e-4f * fabsf(want);
}

static void check_op_case(const op_case *e) {
    const int64_t kv = e->k * e->k, hw = e->h * e->w, esz = e->q8 ? 1 : 4;
    float *xf = malloc(sizeof(float) * (size_t)(e->n * e->c * hw)), *wf = malloc(sizeof(float) * (size_t)(e->c * kv));
    float *bf = malloc(sizeof(float) * (size_t)e->c), *wscale = malloc(sizeof(float) * (size_t)e->c);
    uint8_t *xq = malloc((size_t)(e->n * e->c * hw)), *xs = malloc((size_t)(e->n * OP_SLICE * hw * 4));
    int8_t *wq = malloc((size_t)(e->c * kv));
    int32_t *bq = malloc(sizeof(int32_t) * (size_t)e->c);
    for (int64_t i = 0; i < e->n * e->c * hw; i++) xf[i] = 2.f * frand(), xq[i] = (uint8_t)irand(0, 255);
    for (int64_t i = 0; i < e->c * kv; i++) wf[i] = frand(), wq[i] = (int8_t)irand(-127, 127);
    /* with a zero point, the first 16 channels' weights stay within int8 of it and the others
       not: the int8 row path runs the first block and hands the others to the blocked kernels */
    for (int64_t i = 0; i < (e->wz ? 16 * kv : 0); i++) wq[i] = (int8_t)irand(e->wz - 128, 127);
    for (int64_t i = 0; i < e->c; i++)
        bf[i] = frand(), bq[i] = irand(-2000, 2000), wscale[i] = 0.002f + 0.008f * (frand() + 1.f) / 2.f;
    const void *x = e->q8 ? (const void *)xq : (const void *)xf;
    /* the reference, slice by slice at the ref level (no row path: a slice may be wide enough), one thread */
    select_level(OCT_ISA_REF);
    octet_tensor want[2] = {{0}};
    int64_t P = 0;
    float *ref_y = NULL, *ref_s = malloc(sizeof(float) * (size_t)(e->n * e->c));
    for (int64_t c0 = 0; c0 < e->c; c0 += OP_SLICE) {
        const int64_t nc = e->c - c0 < OP_SLICE ? e->c - c0 : OP_SLICE;
        for (int64_t b = 0; b < e->n; b++)
            memcpy(xs + b * nc * hw * esz, (const char *)x + (b * e->c + c0) * hw * esz, (size_t)(nc * hw * esz));
        oct_graph *g = op_graph(e, c0, nc, wf, bf, wq, bq, wscale);
        op_run(g, e, nc, 1, xs, want);
        oct_graph_free(g);
        P = want[0].dims[2] * want[0].dims[3];
        if (!ref_y) ref_y = malloc(sizeof(float) * (size_t)(e->n * e->c * P));
        for (int64_t b = 0; b < e->n; b++)
            for (int64_t i = 0; i < nc; i++) {
                for (int64_t p = 0; p < P; p++) {
                    const int64_t at = (b * nc + i) * P + p;
                    ref_y[((b * e->c) + c0 + i) * P + p] =
                        e->q8 ? ((const uint8_t *)want[0].data)[at] : ((const float *)want[0].data)[at];
                }
                ref_s[b * e->c + c0 + i] =
                    e->q8 ? ((const uint8_t *)want[1].data)[b * nc + i] : ((const float *)want[1].data)[b * nc + i];
            }
        octet_tensor_release(&want[0]), octet_tensor_release(&want[1]);
    }
    /* the whole network on the blocked path, every level, 1 and 2 threads */
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = levels(isas);
    for (int li = 0; li < nisa; li++) {
        select_level(isas[li]);
        for (int threads = 1; threads <= 2; threads++) {
            oct_graph *g = op_graph(e, 0, e->c, wf, bf, wq, bq, wscale);
            octet_tensor got[2];
            op_run(g, e, e->c, threads, x, got);
            for (int64_t i = 0; i < e->n * e->c * P; i++) {
                const float v = e->q8 ? ((const uint8_t *)got[0].data)[i] : ((const float *)got[0].data)[i];
                ck_assert_msg(op_close(e, v, ref_y[i]), "%s, %d threads, %s %lldx%lld k%lld s%lld: y[%lld] %g vs %g",
                              oct_isa_name(isas[li]), threads, e->q8 ? "int8" : "fp32", (long long)e->h,
                              (long long)e->w, (long long)e->k, (long long)e->s, (long long)i, (double)v,
                              (double)ref_y[i]);
            }
            for (int64_t i = 0; i < e->n * e->c; i++) {
                const float v = e->q8 ? ((const uint8_t *)got[1].data)[i] : ((const float *)got[1].data)[i];
                ck_assert_msg(op_close(e, v, ref_s[i]), "%s, %d threads, %s: pooled [%lld] %g vs %g",
                              oct_isa_name(isas[li]), threads, e->q8 ? "int8" : "fp32", (long long)i, (double)v,
                              (double)ref_s[i]);
            }
            octet_tensor_release(&got[0]), octet_tensor_release(&got[1]);
            oct_graph_free(g);
        }
    }
    restore_level();
    free(xf), free(wf), free(bf), free(wscale), free(xq), free(xs), free(wq), free(bq), free(ref_y), free(ref_s);
}

START_TEST(ops_on_blocked_path) {
    /* 40 channels: blocks of 16, 16 and 8; batch 2 for fp32; planes split over threads or not */
    const op_case cases[] = {{2, 40, 11, 9, 3, 1, 0, 0},
                             {1, 40, 13, 13, 5, 2, 0, 0},
                             {1, 40, 11, 9, 3, 1, 1, 0},
                             {1, 48, 14, 14, 5, 2, 1, 0},
                             {1, 16, 30, 7, 3, 1, 1, 0},
                             /* wide enough for the int8 row path */
                             {1, 40, 56, 56, 3, 1, 1, 0},
                             {1, 20, 60, 61, 5, 2, 1, 0},
                             {1, 3, 30, 29, 3, 2, 1, 0},
                             {1, 40, 33, 60, 3, 2, 1, 100},
                             /* wide enough for the fp32 row path (AVX-512) */
                             {1, 40, 56, 56, 3, 1, 0, 0},
                             {2, 20, 112, 112, 3, 2, 0, 0},
                             {1, 20, 60, 61, 5, 1, 0, 0},
                             {1, 18, 114, 113, 5, 2, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_op_case(&cases[i]);
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
    /* the blocked path: the same scope, rows narrow enough for a band of lanes, scratch bounded */
    oct_dwb_plan bp;
    ck_assert(!oct_dwb_plan_init(&g, &bp)); /* 100000 wide */
    ck_assert(geom_of(&ok, &g));
    ck_assert(oct_dwb_plan_init(&g, &bp));
    ck_assert_int_eq(bp.band, 7);
    bad = g;
    bad.dil[2] = 2;
    ck_assert(!oct_dwb_plan_init(&bad, &bp));
    const dw_case tall = {100000, 112, 5, 5, 2, 2, 2, 2, 2, 2};
    ck_assert(geom_of(&tall, &g));
    ck_assert(oct_dwb_plan_init(&g, &bp));
    ck_assert(bp.band >= 4 && bp.band < 100);
    ck_assert(oct_dwb_scratch_bytes(&bp) < 512 * 1024);
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
    tcase_add_test(tc, blocked_f32_against_ref_loop);
    tcase_add_test(tc, blocked_f32_every_epilogue);
    tcase_add_test(tc, blocked_q8_against_ref_loop);
    tcase_add_test(tc, blocked_q8_extremes);
    tcase_add_test(tc, rows_q8_against_ref_loop);
    tcase_add_test(tc, rows_q8_extremes);
    tcase_add_test(tc, rows_f32_against_ref_loop);
    tcase_add_test(tc, rows_f32_every_epilogue);
    tcase_add_test(tc, dense_f32_against_loop);
    tcase_add_test(tc, ops_on_blocked_path);
    tcase_add_test(tc, plan_scope);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(dwconv_suite());
}
