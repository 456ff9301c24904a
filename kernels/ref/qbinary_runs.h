/* The runs of quantized Add and Mul (formulas in qops_kernels.h), as static functions that every
   translation unit including this header compiles under its own flags: kernels/ref/qelementwise.c
   for the ref level, kernels/vec/misc_vec.c once per ISA level. One source for both keeps them
   bit-identical by construction; the vector levels differ only in the instructions gcc picks.

   The runs the broadcast walker hands out are specialised for contiguous and scalar operands, and
   written without calls or branches in the loop body so that gcc vectorises them; rounding uses
   the 2^23 + 2^22 trick, exact for |v| < 2^22 (v is clamped to a few hundred first) in the default
   round-to-nearest-even mode. Floating-point contraction must be off (-ffp-contract=off, the
   default under -std=c11): an FMA in the Add formula would round differently. */
#ifndef OCT_QBINARY_RUNS_H
#define OCT_QBINARY_RUNS_H

#include "bcast_walk.h"
#include "qops_kernels.h"

#define QBIN_ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */

static inline float qbin_clamp_round(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (v + QBIN_ROUND_MAGIC) - QBIN_ROUND_MAGIC;
}

/* One run for element type T: a and b step s[0], s[1] elements (0 or 1 after planning, or any
   stride for a non-merged dim). */
#define QBIN_RUN(NAME, T, EXPR)                                                                     \
    static void NAME(const void *ctx, const void *const *in, const int64_t *s, void *py, int64_t n) { \
        const oct_qbinary *q = ctx;                                                                 \
        const T *a = in[0], *b = in[1];                                                             \
        T *y = py;                                                                                  \
        const float ma = q->ma, mb = q->mb;                                                         \
        const int32_t za = q->a_zp, zb = q->b_zp, zy = q->y_zp;                                     \
        const float lo = (float)(q->qmin - zy), hi = (float)(q->qmax - zy);                         \
        (void)mb;                                                                                   \
        if (s[0] == 1 && s[1] == 1) {                                                               \
            for (int64_t j = 0; j < n; j++) {                                                       \
                const int32_t av = a[j], bv = b[j];                                                 \
                y[j] = (T)((int32_t)qbin_clamp_round(EXPR, lo, hi) + zy);                           \
            }                                                                                       \
        } else if (s[0] == 1 && s[1] == 0) {                                                        \
            const int32_t bv = b[0];                                                                \
            for (int64_t j = 0; j < n; j++) {                                                       \
                const int32_t av = a[j];                                                            \
                y[j] = (T)((int32_t)qbin_clamp_round(EXPR, lo, hi) + zy);                           \
            }                                                                                       \
        } else if (s[0] == 0 && s[1] == 1) {                                                        \
            const int32_t av = a[0];                                                                \
            for (int64_t j = 0; j < n; j++) {                                                       \
                const int32_t bv = b[j];                                                            \
                y[j] = (T)((int32_t)qbin_clamp_round(EXPR, lo, hi) + zy);                           \
            }                                                                                       \
        } else {                                                                                    \
            for (int64_t j = 0; j < n; j++) {                                                       \
                const int32_t av = a[j * s[0]], bv = b[j * s[1]];                                   \
                y[j] = (T)((int32_t)qbin_clamp_round(EXPR, lo, hi) + zy);                           \
            }                                                                                       \
        }                                                                                           \
    }

#define QBIN_ADD_EXPR ((float)(av - za) * ma + (float)(bv - zb) * mb)
#define QBIN_MUL_EXPR ((float)((av - za) * (bv - zb)) * ma)

QBIN_RUN(qbin_add_u8, uint8_t, QBIN_ADD_EXPR)
QBIN_RUN(qbin_add_s8, int8_t, QBIN_ADD_EXPR)
QBIN_RUN(qbin_mul_u8, uint8_t, QBIN_MUL_EXPR)
QBIN_RUN(qbin_mul_s8, int8_t, QBIN_MUL_EXPR)

/* Output elements [begin, end) of plan bc through this translation unit's runs. */
static inline void qbin_walk(const oct_qbinary *q, const oct_bcast *bc, const uint8_t *a, const uint8_t *b,
                             uint8_t *y, int64_t begin, int64_t end) {
    oct_bcast_run_fn run;
    if (q->kind == OCT_QBIN_ADD) run = q->is_s8 ? qbin_add_s8 : qbin_add_u8;
    else run = q->is_s8 ? qbin_mul_s8 : qbin_mul_u8;
    const void *in[2] = {a, b};
    const size_t es[2] = {1, 1};
    oct_bcast_walk(bc, in, es, y, 1, begin, end, run, q);
}

#endif
