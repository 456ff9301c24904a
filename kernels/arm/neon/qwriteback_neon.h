/* The fused write-back of the ARM int8 sets, NEON and dot product (oct_qwriteback_fn): zero-point
   fix-up and requantization of a micro-tile straight from the raw sums, 4 lanes at a time, with
   the very operations of oct_neon_requant (bit-identical to ref, see qrequant_neon.c). Whole
   tiles with contiguous rows are stored directly; the rest, and every tile with an activation table
   (rq->table, mapped byte by byte there), goes through a stage and oct_qt_tile_store. */
#ifndef OCT_QWRITEBACK_NEON_H
#define OCT_QWRITEBACK_NEON_H

#include <arm_neon.h>

#include "quant_isa.h"

static inline void oct_neon_writeback(const int32_t *acc, int nv, int mr, const oct_qt_tile *t) {
    const oct_qt_rows *rw = t->rows;
    const int full = t->lo == 0 && t->hi == mr && t->cols == nv * 4 && t->y_cs == 1 &&
                     !(t->rq && t->rq->table); /* a table maps in oct_qt_tile_store */
    _Alignas(64) int32_t stage[OCT_QT_MR_MAX * OCT_QT_NR_MAX];
    const float32x4_t vlo = vdupq_n_f32(t->flo), vhi = vdupq_n_f32(t->fhi);
    const int32x4_t vzp = vdupq_n_s32(t->rq ? t->rq->zp : 0);
    for (int i = t->lo; i < t->hi; i++) {
        const int32x4_t add = vdupq_n_s32((int32_t)rw->add[i]), a = vdupq_n_s32((int32_t)rw->a[i]);
        const int32x4_t zw = vdupq_n_s32((int32_t)rw->zw[i]), vb = vdupq_n_s32(rw->bias[i]);
        const float32x4_t vm = vdupq_n_f32(rw->m[i]);
        for (int j = 0; j < nv; j++) {
            int32x4_t v = vaddq_s32(vld1q_s32(acc + i * OCT_QT_NR_MAX + j * 4), add);
            if (t->zx) v = vmlaq_s32(v, vld1q_s32(t->zx + j * 4), a);
            if (t->cs) v = vmlsq_s32(v, vld1q_s32(t->cs + j * 4), zw);
            if (!t->rq) {
                int32_t *dst = full ? (int32_t *)t->y + i * t->y_rs + j * 4 : stage + i * OCT_QT_NR_MAX + j * 4;
                vst1q_s32(dst, v);
                continue;
            }
            float32x4_t f = vmulq_f32(vcvtq_f32_s32(vaddq_s32(v, vb)), vm);
            f = vbslq_f32(vcgeq_f32(f, vlo), f, vlo);
            f = vminq_f32(f, vhi);
            const int32x4_t q = vaddq_s32(vcvtnq_s32_f32(f), vzp);
            const int8x8_t out = vmovn_s16(vcombine_s16(vmovn_s32(q), vmovn_s32(q)));
            int8_t *dst = full ? (int8_t *)t->y + i * t->y_rs + j * 4 : (int8_t *)stage + i * OCT_QT_NR_MAX + j * 4;
            const int32_t four = vget_lane_s32(vreinterpret_s32_s8(out), 0);
            memcpy(dst, &four, 4);
        }
    }
    if (!full) oct_qt_tile_store(t, stage, t->rq ? 1 : 4);
}

#endif
