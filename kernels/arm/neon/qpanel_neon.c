/* NEON byte movers for the activation-panel packers (ref/qpanel_unfold.h): VST4 / VST2 store
   interleaved, VLD2 loads de-interleaved, 16 columns per step; the tail of a run goes column by
   column. */
#include <arm_neon.h>

#include "qpanel_isa.h"

static inline void qp_interleave4(uint32_t *d, const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                  const uint8_t *r3, int64_t n) {
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
        const uint8x16x4_t v = {{vld1q_u8(r0 + t), vld1q_u8(r1 + t), vld1q_u8(r2 + t), vld1q_u8(r3 + t)}};
        vst4q_u8((uint8_t *)(d + t), v);
    }
    for (; t + 8 <= n; t += 8) {
        const uint8x8x4_t v = {{vld1_u8(r0 + t), vld1_u8(r1 + t), vld1_u8(r2 + t), vld1_u8(r3 + t)}};
        vst4_u8((uint8_t *)(d + t), v);
    }
    for (; t < n; t++)
        d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 8 | (uint32_t)r2[t] << 16 | (uint32_t)r3[t] << 24;
}

static inline void qp_interleave2_16(uint32_t *d, const uint8_t *r0, const uint8_t *r1, int64_t n) {
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        const uint16x8x2_t v = {{vmovl_u8(vld1_u8(r0 + t)), vmovl_u8(vld1_u8(r1 + t))}};
        vst2q_u16((uint16_t *)(d + t), v);
    }
    for (; t < n; t++) d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 16;
}

static inline void qp_widen16(uint16_t *d, const uint8_t *r0, int64_t n) {
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
        const uint8x16_t v = vld1q_u8(r0 + t);
        vst1q_u16(d + t, vmovl_u8(vget_low_u8(v)));
        vst1q_u16(d + t + 8, vmovl_high_u8(v));
    }
    for (; t + 8 <= n; t += 8) vst1q_u16(d + t, vmovl_u8(vld1_u8(r0 + t)));
    for (; t < n; t++) d[t] = r0[t];
}

static inline void qp_gather2(uint8_t *d, const uint8_t *src, int64_t n) {
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) vst1q_u8(d + t, vld2q_u8(src + 2 * t).val[0]);
    for (; t < n; t++) d[t] = src[2 * t];
}

static inline void qp_copy_xor(uint8_t *d, const uint8_t *src, int64_t n, uint8_t v) {
    const uint8x16_t vv = vdupq_n_u8(v);
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) vst1q_u8(d + t, veorq_u8(vld1q_u8(src + t), vv));
    for (; t < n; t++) d[t] = (uint8_t)(src[t] ^ v);
}

#include "ref/qpanel_unfold.h"

static void pack(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k, int nc,
                 uint8_t x_xor, void *panel) {
    qp_pack(l, x, k_stride, c_stride, k, nc, x_xor, panel);
}

static void im2col(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels, int64_t p0,
                   int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel) {
    qp_im2col(l, g, x, channels, p0, np, x_xor, pad, scratch, panel);
}

const oct_qpanel_kernels oct_neon_qpanel_kernels = {"neon", pack, im2col};
