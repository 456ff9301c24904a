/* NEON (ARMv8.0) depthwise primitives (ref/dwconv_kernels.h): 4 lanes, four vectors of one band
   in flight; row ends through a small copy. The requantization is oct_ref_requant's float sequence:
   FCVTNS rounds to nearest-even like rintf, SCVTF rounds like C's int-to-float conversion, NaN
   takes lo through an explicit compare (FMAX would propagate it), XTN keeps the low byte. */
#include <arm_neon.h>
#include <string.h>

#include "dwconv_isa.h"

/* Padded columns [c0, c0 + 8) of a row run as floats (two vectors), zero outside the input
   [lo, hi). Inside the row one 8-byte load; at its ends the bytes go through a small copy, so
   nothing outside the row is read. Each destination vector is stored once. */
static inline void cols_u8(const oct_dw_rows *r, const uint8_t *src, int64_t c0, uint8x8_t vx, int32x4_t vz,
                           float32x4_t out[2]) {
    uint8x8_t b;
    uint32x4_t in0, in1;
    if (c0 >= r->lo && c0 + 8 <= r->hi) {
        b = vld1_u8(src + (c0 - r->lo));
        in0 = in1 = vdupq_n_u32(~0u);
    } else {
        uint8_t bytes[8] = {0};
        uint32_t lanes[8];
        for (int l = 0; l < 8; l++) {
            const int64_t c = c0 + l;
            lanes[l] = c >= r->lo && c < r->hi ? ~0u : 0u;
            if (lanes[l]) bytes[l] = src[c - r->lo];
        }
        b = vld1_u8(bytes);
        in0 = vld1q_u32(lanes);
        in1 = vld1q_u32(lanes + 4);
    }
    const uint16x8_t h = vmovl_u8(veor_u8(b, vx));
    const int32x4_t l0 = vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(h))), vz);
    const int32x4_t l1 = vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(h))), vz);
    out[0] = vcvtq_f32_s32(vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_s32(l0), in0)));
    out[1] = vcvtq_f32_s32(vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_s32(l1), in1)));
}
static inline float32x4_t cols_f32(const oct_dw_rows *r, const float *src, int64_t c0) {
    if (c0 >= r->lo && c0 + 4 <= r->hi) return vld1q_f32(src + (c0 - r->lo));
    float v[4];
    for (int l = 0; l < 4; l++) {
        const int64_t c = c0 + l;
        v[l] = c >= r->lo && c < r->hi ? src[c - r->lo] : 0.f;
    }
    return vld1q_f32(v);
}

static void fill_u8_neon(const oct_dw_rows *r, const uint8_t *src, uint8_t x_xor, int32_t x_zp, float *d0,
                         float *d1) {
    const uint8x8_t vx = vdup_n_u8(x_xor);
    const int32x4_t vz = vdupq_n_s32(x_zp);
    float32x4_t v[2];
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst) {
        if (!r->split) {
            for (int64_t j = 0; j < r->n; j += 8) {
                cols_u8(r, src, j, vx, vz, v);
                vst1q_f32(d0 + j, v[0]);
                vst1q_f32(d0 + j + 4, v[1]);
            }
            continue;
        }
        float *o = d1 + i * r->ld_dst;
        for (int64_t j = 0; j < r->n / 2; j += 4) {
            cols_u8(r, src, 2 * j, vx, vz, v);
            vst1q_f32(d0 + j, vuzp1q_f32(v[0], v[1]));
            vst1q_f32(o + j, vuzp2q_f32(v[0], v[1]));
        }
    }
}

static void fill_f32_neon(const oct_dw_rows *r, const float *src, float *d0, float *d1) {
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst) {
        if (!r->split) {
            for (int64_t j = 0; j < r->n; j += 4) vst1q_f32(d0 + j, cols_f32(r, src, j));
            continue;
        }
        float *o = d1 + i * r->ld_dst;
        for (int64_t j = 0; j < r->n / 2; j += 4) {
            const float32x4_t a = cols_f32(r, src, 2 * j), b = cols_f32(r, src, 2 * j + 4);
            vst1q_f32(d0 + j, vuzp1q_f32(a, b));
            vst1q_f32(o + j, vuzp2q_f32(a, b));
        }
    }
}

static inline __attribute__((always_inline)) void taps_fixed(const float *base, const int64_t *off,
                                                             const float *w, const int nt, int64_t n,
                                                             float *acc) {
    const float *src[OCT_DW_MAX_TAPS];
#pragma GCC unroll 64
    for (int t = 0; t < nt; t++) src[t] = base + off[t];
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float32x4_t w0 = vdupq_n_f32(w[0]);
        float32x4_t a0 = vmulq_f32(vld1q_f32(src[0] + i), w0);
        float32x4_t a1 = vmulq_f32(vld1q_f32(src[0] + i + 4), w0);
        float32x4_t a2 = vmulq_f32(vld1q_f32(src[0] + i + 8), w0);
        float32x4_t a3 = vmulq_f32(vld1q_f32(src[0] + i + 12), w0);
#pragma GCC unroll 64
        for (int t = 1; t < nt; t++) {
            const float32x4_t wt = vdupq_n_f32(w[t]);
            a0 = vfmaq_f32(a0, vld1q_f32(src[t] + i), wt);
            a1 = vfmaq_f32(a1, vld1q_f32(src[t] + i + 4), wt);
            a2 = vfmaq_f32(a2, vld1q_f32(src[t] + i + 8), wt);
            a3 = vfmaq_f32(a3, vld1q_f32(src[t] + i + 12), wt);
        }
        vst1q_f32(acc + i, a0);
        vst1q_f32(acc + i + 4, a1);
        vst1q_f32(acc + i + 8, a2);
        vst1q_f32(acc + i + 12, a3);
    }
    for (; i < n; i += 4) { /* the last vector may run into the slack */
        float32x4_t a = vmulq_f32(vld1q_f32(src[0] + i), vdupq_n_f32(w[0]));
#pragma GCC unroll 64
        for (int t = 1; t < nt; t++) a = vfmaq_f32(a, vld1q_f32(src[t] + i), vdupq_n_f32(w[t]));
        vst1q_f32(acc + i, a);
    }
}

static void taps_neon(const float *base, const int64_t *off, const float *w, int ntaps, int64_t n, float *acc) {
    switch (ntaps) { /* the common kernels get their own unrolled copy */
    case 9: taps_fixed(base, off, w, 9, n, acc); break;
    case 25: taps_fixed(base, off, w, 25, n, acc); break;
    case 3: taps_fixed(base, off, w, 3, n, acc); break;
    default: taps_fixed(base, off, w, ntaps, n, acc); break;
    }
}

/* e^x, Cephes' expf scheme: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, then
   2^n built in the exponent field (n stays in [-126, 127] over the clamped range). */
static inline float32x4_t exp_neon(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.0f));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    const float32x4_t e = vaddq_f32(vfmaq_f32(r, vmulq_f32(p, r), r), vdupq_n_f32(1.f));
    const int32x4_t pow2 = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(e, vreinterpretq_f32_s32(pow2));
}

/* oct_act_apply on 4 lanes for the kinds it has a vector form of (see vector_act). Selects follow
   ref's comparisons so that NaN comes out the same. */
static inline float32x4_t act_neon(float32x4_t v, int kind, float32x4_t alpha, float32x4_t beta) {
    const float32x4_t zero = vdupq_n_f32(0.f), one = vdupq_n_f32(1.f);
    switch (kind) {
    case 1: return vbslq_f32(vcgtq_f32(v, zero), v, zero);
    case 2: {
        const float32x4_t t = vbslq_f32(vcgtq_f32(v, beta), beta, v);
        return vbslq_f32(vcltq_f32(v, alpha), alpha, t);
    }
    case 3: return vbslq_f32(vcltq_f32(v, zero), vmulq_f32(v, alpha), v);
    case 4: return vdivq_f32(one, vaddq_f32(one, exp_neon(vnegq_f32(v))));
    case 5: return vdivq_f32(v, vaddq_f32(one, exp_neon(vnegq_f32(v))));
    case 6: {
        const float32x4_t t = vaddq_f32(vdivq_f32(v, vdupq_n_f32(6.f)), vdupq_n_f32(0.5f));
        return vmulq_f32(v, vminq_f32(vmaxq_f32(t, zero), one));
    }
    case 7: {
        const float32x4_t t = vaddq_f32(vmulq_f32(alpha, v), beta);
        return vminq_f32(vmaxq_f32(t, zero), one);
    }
    default: return v;
    }
}

static int vector_act(int kind) { return kind >= 0 && kind <= 7; }

static void epilogue_neon(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, float bias, const float *res,
                          const oct_act *act, float *y, double *sum) {
    const int kind = act->kind;
    const float32x4_t vb = vdupq_n_f32(bias), alpha = vdupq_n_f32(act->alpha), beta = vdupq_n_f32(act->beta);
    float32x4_t band_sum = vdupq_n_f32(0.f);
    for (int64_t r = 0; r < rows; r++, acc += ld_acc, y += n, res = res ? res + n : NULL)
        for (int64_t i = 0; i < n; i += 4) {
            const int64_t cnt = n - i < 4 ? n - i : 4;
            float lanes[4] = {0.f, 0.f, 0.f, 0.f};
            float32x4_t v = vaddq_f32(vld1q_f32(acc + i), vb); /* acc has slack */
            if (res) {
                memcpy(lanes, res + i, (size_t)cnt * sizeof(float));
                v = vaddq_f32(v, vld1q_f32(lanes));
            }
            if (vector_act(kind)) {
                v = act_neon(v, kind, alpha, beta);
            } else { /* Tanh and the rest: the scalar definition, lane by lane */
                vst1q_f32(lanes, v);
                for (int l = 0; l < 4; l++) lanes[l] = oct_act_apply(act, lanes[l]);
                v = vld1q_f32(lanes);
            }
            if (cnt == 4) {
                vst1q_f32(y + i, v);
            } else {
                vst1q_f32(lanes, v);
                memcpy(y + i, lanes, (size_t)cnt * sizeof(float));
                for (int64_t l = cnt; l < 4; l++) lanes[l] = 0.f; /* lanes past n are not summed */
                v = vld1q_f32(lanes);
            }
            band_sum = vaddq_f32(band_sum, v);
        }
    if (sum) *sum += (double)vaddvq_f32(band_sum);
}

static inline int32x4_t requant4(float32x4_t a, int32x4_t vb, float32x4_t vm, float32x4_t vlo, float32x4_t vhi,
                                 int32x4_t vzp) {
    /* exact integers, so the first conversion is exact; lanes past n hold anything, unstored */
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(vaddq_s32(vcvtnq_s32_f32(a), vb)), vm);
    v = vbslq_f32(vcgeq_f32(v, vlo), v, vlo);
    v = vminq_f32(v, vhi);
    return vaddq_s32(vcvtnq_s32_f32(v), vzp);
}

static void requant_neon(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, int32_t bias, float m,
                         float lo, float hi, int32_t zp, void *y, int64_t *sum) {
    const float32x4_t vm = vdupq_n_f32(m), vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    const int32x4_t vb = vdupq_n_s32(bias), vzp = vdupq_n_s32(zp);
    static const int32_t LANE[4] = {0, 1, 2, 3};
    const int32x4_t lane = vld1q_s32(LANE);
    uint8_t *out = y;
    for (int64_t r = 0; r < rows; r++, acc += ld_acc, out += n) {
        int32x4_t row_sum = vdupq_n_s32(0);
        for (int64_t i = 0; i < n; i += 16) { /* acc has slack: four full vectors are always readable */
            const int32x4_t q0 = requant4(vld1q_f32(acc + i), vb, vm, vlo, vhi, vzp);
            const int32x4_t q1 = requant4(vld1q_f32(acc + i + 4), vb, vm, vlo, vhi, vzp);
            const int32x4_t q2 = requant4(vld1q_f32(acc + i + 8), vb, vm, vlo, vhi, vzp);
            const int32x4_t q3 = requant4(vld1q_f32(acc + i + 12), vb, vm, vlo, vhi, vzp);
            const int16x8_t h0 = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
            const int16x8_t h1 = vcombine_s16(vmovn_s32(q2), vmovn_s32(q3));
            const uint8x16_t bytes = vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
            if (n - i >= 16) {
                vst1q_u8(out + i, bytes);
            } else {
                uint8_t b16[16];
                vst1q_u8(b16, bytes);
                memcpy(out + i, b16, (size_t)(n - i));
            }
            if (sum) { /* the lanes below n (n < 2^24 by the plan's bound, so int32 holds it) */
                const int32x4_t left = vdupq_n_s32((int32_t)(n - i));
                const int32x4_t q[4] = {q0, q1, q2, q3};
                for (int v = 0; v < 4; v++) {
                    const uint32x4_t in_row = vcltq_s32(vaddq_s32(lane, vdupq_n_s32(4 * v)), left);
                    row_sum = vaddq_s32(row_sum, vandq_s32(q[v], vreinterpretq_s32_u32(in_row)));
                }
            }
        }
        if (sum) *sum += vaddlvq_s32(row_sum);
    }
}

const oct_dw_kernels oct_neon_dw_kernels = {"neon", fill_u8_neon, fill_f32_neon,
                                             taps_neon, epilogue_neon, requant_neon};
