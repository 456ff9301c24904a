/* The lane-layout stem convolution (kernels/ref/stem_lanes.h): its ref against a plain direct
   convolution in double, and the AVX-512 twin against ref, over random geometries (windows 6 to
   11 wide, strides 1 to 3, pads wider than the window, rows that end mid-tile and mid-transpose,
   1 to 4 channels, 64 and 128 output channels, every activation kind), row ranges that start
   and end anywhere (rows outside them untouched). The zoo tests run the path inside ResNet. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref/stem_lanes.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng = 777u;
static uint32_t rnext(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static int rin(int lo, int hi) { return lo + (int)(rnext() % (uint32_t)(hi - lo + 1)); }
static float rf(void) { return (float)rin(-1000, 1000) / 1000.f; }

static oct_stem_geom random_geom(void) {
    oct_stem_geom g;
    g.kh = rin(1, 9);
    g.kw = rin(6, 11);
    g.sh = rin(1, 3);
    g.sw = rin(1, 3);
    g.pt = rin(0, 5);
    g.pl = rin(0, 12);
    const int64_t pb = rin(0, 5), pr = rin(0, 12);
    g.ih = g.kh + rin(0, 20) - (g.pt + pb < g.kh - 1 ? g.pt + pb : g.kh - 1);
    g.iw = g.kw + rin(0, 60) - (g.pl + pr < g.kw - 1 ? g.pl + pr : g.kw - 1);
    g.oh = (g.ih + g.pt + pb - g.kh) / g.sh + 1;
    g.ow = (g.iw + g.pl + pr - g.kw) / g.sw + 1;
    g.channels = rin(1, 4);
    g.m = rnext() % 3 ? 64 : 128;
    return g;
}

static oct_act random_act(void) {
    oct_act a = {rin(0, 7), 0.f, 0.f};
    if (a.kind == 2) {
        a.alpha = -0.5f;
        a.beta = 0.7f;
    } else if (a.kind == 3) {
        a.alpha = 0.1f;
    } else if (a.kind == 7) {
        a.alpha = 0.2f;
        a.beta = 0.5f;
    }
    return a;
}

static void check_case(const oct_stem_geom *g, const oct_act *act, int with_bias) {
    const int64_t taps = g->kh * g->kw, plane = g->ih * g->iw, out = g->oh * g->ow;
    float *x = malloc(sizeof(float) * (size_t)(g->channels * plane));
    float *w = malloc(sizeof(float) * (size_t)(g->m * g->channels * taps));
    float *wl = malloc(sizeof(float) * (size_t)oct_stem_weights_floats(g));
    float *bias = malloc(sizeof(float) * (size_t)g->m);
    float *ref = malloc(sizeof(float) * (size_t)(g->m * out)), *got = malloc(sizeof(float) * (size_t)(g->m * out));
    void *scratch = aligned_alloc(64, (oct_stem_scratch_bytes(g) + 63) / 64 * 64);
    ck_assert(x && w && wl && bias && ref && got && scratch);
    for (int64_t i = 0; i < g->channels * plane; i++) x[i] = rf();
    for (int64_t i = 0; i < g->m * g->channels * taps; i++) w[i] = rf();
    for (int64_t i = 0; i < g->m; i++) bias[i] = rf();
    oct_stem_pack(g, w, wl);
    const float *b = with_bias ? bias : NULL;
    const int64_t r0 = rin(0, (int)g->oh - 1), r1 = rin((int)r0 + 1, (int)g->oh);
    for (int64_t i = 0; i < g->m * out; i++) ref[i] = got[i] = -7.f;
    oct_ref_stem_rows_f32(g, x, plane, wl, b, act, ref, out, r0, r1, scratch);
    /* ref against a direct convolution */
    for (int64_t l = 0; l < g->m; l++)
        for (int64_t r = 0; r < g->oh; r++)
            for (int64_t c = 0; c < g->ow; c++) {
                const float v = ref[l * out + r * g->ow + c];
                if (r < r0 || r >= r1) {
                    ck_assert_msg(v == -7.f, "ref wrote row %lld outside [%lld, %lld)", (long long)r, (long long)r0,
                                  (long long)r1);
                    continue;
                }
                double s = b ? b[l] : 0.0;
                for (int64_t ch = 0; ch < g->channels; ch++)
                    for (int64_t i = 0; i < g->kh; i++)
                        for (int64_t j = 0; j < g->kw; j++) {
                            const int64_t ir = r * g->sh + i - g->pt, ic = c * g->sw + j - g->pl;
                            if (ir >= 0 && ir < g->ih && ic >= 0 && ic < g->iw)
                                s += (double)x[ch * plane + ir * g->iw + ic] * w[(l * g->channels + ch) * taps + i * g->kw + j];
                        }
                const float want = oct_act_apply(act, (float)s);
                ck_assert_msg(fabsf(v - want) <= 1e-4f * (1.f + fabsf(want)), "ref %g, direct %g", (double)v,
                              (double)want);
            }
#if defined(__x86_64__)
    if (oct_isa_supported(OCT_ISA_AVX512)) {
        oct_avx512_stem_rows_f32(g, x, plane, wl, b, act, got, out, r0, r1, scratch);
        for (int64_t i = 0; i < g->m * out; i++)
            ck_assert_msg(fabsf(got[i] - ref[i]) <= 1e-4f * (1.f + fabsf(ref[i])),
                          "avx512: k %lldx%lld s %lld,%lld pad %lld,%lld in %lldx%lld out %lldx%lld c %lld m %lld "
                          "act %d rows [%lld, %lld): float %lld is %g, ref %g",
                          (long long)g->kh, (long long)g->kw, (long long)g->sh, (long long)g->sw, (long long)g->pt,
                          (long long)g->pl, (long long)g->ih, (long long)g->iw, (long long)g->oh, (long long)g->ow,
                          (long long)g->channels, (long long)g->m, act->kind, (long long)r0, (long long)r1,
                          (long long)i, (double)got[i], (double)ref[i]);
    }
#endif
    free(x);
    free(w);
    free(wl);
    free(bias);
    free(ref);
    free(got);
    free(scratch);
}

START_TEST(kernels_match) {
    /* ResNet's stem, a narrow one */
    const oct_stem_geom resnet = {224, 224, 112, 112, 7, 7, 2, 2, 3, 3, 3, 64};
    const oct_act relu = {1, 0.f, 0.f};
    check_case(&resnet, &relu, 1);
    for (int i = 0; i < 150; i++) {
        const oct_stem_geom g = random_geom();
        const oct_act a = random_act();
        check_case(&g, &a, (int)(rnext() % 4 != 0));
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("stem_lanes");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, kernels_match);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
