/* The vector kernels of oct_norm_kernel_set (norm_kernels.h) in portable C that gcc vectorises:
   compiled once per ISA level with that level's flags (kernels/meson.build); OCT_NORM_SET and
   OCT_NORM_NAME name the set it defines. Loops are written for the vectoriser: independent lane
   accumulators instead of one serial sum, no calls, selects instead of branches. */
#include "norm_kernels.h"
#include "ref/qsum_body.h"

#if !defined(OCT_NORM_SET) || !defined(OCT_NORM_NAME)
#error "norm_vec.c is compiled with -DOCT_NORM_SET=<set> -DOCT_NORM_NAME=<name>"
#endif

/* Double accumulators per sum: four 512-bit (eight 256-bit, sixteen 128-bit) vectors, enough
   independent add chains to hide the adder's latency, so the pass runs at memory speed. */
enum { SUM_LANES = 32 };

static void shifted_sums(const float *x, int64_t n, float shift, double *sum, double *sumsq) {
    double s[SUM_LANES] = {0}, q[SUM_LANES] = {0};
    const double k = shift;
    int64_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) {
            const double d = (double)x[i + l] - k;
            s[l] += d;
            q[l] += d * d;
        }
    double ts = 0.0, tq = 0.0;
    for (int l = 0; l < SUM_LANES; l++) {
        ts += s[l];
        tq += q[l];
    }
    for (; i < n; i++) {
        const double d = (double)x[i] - k;
        ts += d;
        tq += d * d;
    }
    *sum = ts;
    *sumsq = tq;
}

/* One loop per activation kind and residual presence, so each is a straight vector loop. ACT is
   an expression of v; the additions run in the ref's order. */
#define SCALE_SHIFT_LOOP(ACT)                                                                      \
    do {                                                                                           \
        if (res)                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float v = (x[i] - c) * a + b + res[i];                                       \
                y[i] = (ACT);                                                                      \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float v = (x[i] - c) * a + b;                                                \
                y[i] = (ACT);                                                                      \
            }                                                                                      \
    } while (0)

static void scale_shift_act(const float *x, int64_t n, float c, float a, float b, const float *res,
                            const oct_act *act, float *y) {
    const float lo = act->alpha, hi = act->beta;
    switch (act->kind) {
    case 0: SCALE_SHIFT_LOOP(v); break;
    case 1: SCALE_SHIFT_LOOP(v > 0.f ? v : 0.f); break;
    case 2: SCALE_SHIFT_LOOP(v < lo ? lo : (v > hi ? hi : v)); break;
    case 3: SCALE_SHIFT_LOOP(v < 0.f ? lo * v : v); break;
    default: SCALE_SHIFT_LOOP(oct_act_apply(act, v)); break; /* transcendental: libm per element */
    }
}

static void qsums(const uint8_t *x, int is_s8, int64_t n, int64_t *sum, int64_t *sumsq) {
    oct_qsum_body(x, is_s8, n, sum, sumsq);
}

const oct_norm_kernel_set OCT_NORM_SET = {
    .name = OCT_NORM_NAME,
    .shifted_sums = shifted_sums,
    .scale_shift_act = scale_shift_act,
    .qsums = qsums,
};
