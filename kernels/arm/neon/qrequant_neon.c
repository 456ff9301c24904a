/* NEON requantization, bit-identical to oct_ref_requant: the same float32 operations in the same
   order, 8 values at a time. FCVTNS rounds to nearest-even like rintf in the default FP
   environment; NaN takes qmin through an explicit compare (FMAX would propagate it), and
   XTN keeps the low bits like ref's cast to 8 bits. An activation table (q->table) maps the bytes
   one by one on their way out. */
#include <arm_neon.h>

#include "quant_isa.h"

static inline int32x4_t requant4(int32x4_t a, int32x4_t b, float32x4_t m, float32x4_t lo, float32x4_t hi,
                                 int32x4_t zp) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(vaddq_s32(a, b)), m);
    v = vbslq_f32(vcgeq_f32(v, lo), v, lo);
    v = vminq_f32(v, hi);
    return vaddq_s32(vcvtnq_s32_f32(v), zp);
}

void oct_neon_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                      void *y, int64_t y_rs, int64_t y_cs) {
    float lo, hi;
    oct_qt_requant_bounds(q, &lo, &hi);
    const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    const int32x4_t vzp = vdupq_n_s32(q->zp);
    for (int r = 0; r < nr; r++) {
        const float32x4_t vm = vdupq_n_f32(q->scale[q->scale_per_row ? r0 + r : 0]);
        const int32x4_t vb = vdupq_n_s32(q->bias ? q->bias[r0 + r] : 0);
        const int32_t *a = acc + r * ldacc;
        int8_t *yr = (int8_t *)y + r * y_rs;
        for (int c = 0; c < nc; c += 8) {
            const int n = nc - c < 8 ? nc - c : 8;
            int32x4_t a0, a1;
            if (n == 8) {
                a0 = vld1q_s32(a + c);
                a1 = vld1q_s32(a + c + 4);
            } else {
                int32_t part[8] = {0};
                memcpy(part, a + c, sizeof(int32_t) * (size_t)n);
                a0 = vld1q_s32(part);
                a1 = vld1q_s32(part + 4);
            }
            const int16x8_t h = vcombine_s16(vmovn_s32(requant4(a0, vb, vm, vlo, vhi, vzp)),
                                             vmovn_s32(requant4(a1, vb, vm, vlo, vhi, vzp)));
            const int8x8_t out = vmovn_s16(h);
            if (n == 8 && y_cs == 1 && !q->table) {
                vst1_s8(yr + c, out);
            } else {
                uint8_t b8[8];
                vst1_u8(b8, vreinterpret_u8_s8(out));
                for (int i = 0; i < n; i++) yr[(c + i) * y_cs] = (int8_t)(q->table ? q->table[b8[i]] : b8[i]);
            }
        }
    }
}
