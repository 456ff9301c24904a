/* The fused epilogue of the NEON GEMM tile on one vector of 4 outputs: alpha, row bias, C, residual
   and the activation (oct_act), in oct_ref_epilogue's order of operations. Sigmoid, SiLU and Tanh
   use a vector expf (range reduction to |r| <= ln2/2, degree-7 Taylor polynomial, 2^n built in the
   exponent bits): about 1-2 ulp. Included by sgemm_neon.c only. */
#ifndef OCT_SGEMM_NEON_ACT_H
#define OCT_SGEMM_NEON_ACT_H

#include <arm_neon.h>
#include <string.h>

#include "../../ref/nn_kernels.h"

/* e^x; inputs clamped to [-87.3, 88.3] so that 2^n (n in [-126, 127]) is a normal float. */
static inline float32x4_t oct_neon_exp(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
    const int32x4_t ni = vcvtnq_s32_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    const float32x4_t n = vcvtq_f32_s32(ni);
    /* ln 2 split in two so that n * hi is exact. */
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.f / 5040.f);
    p = vfmaq_f32(vdupq_n_f32(1.f / 720.f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.f / 120.f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.f / 24.f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.f / 6.f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.f), p, r);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(ni, vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

/* tanh: odd Taylor polynomial to x^9 below |x| = 0.25, 1 - 2 / (e^2|x| + 1) above. */
static inline float32x4_t oct_neon_tanh(float32x4_t x) {
    const float32x4_t ax = vabsq_f32(x), x2 = vmulq_f32(x, x);
    float32x4_t p = vdupq_n_f32(62.f / 2835.f);
    p = vfmaq_f32(vdupq_n_f32(-17.f / 315.f), p, x2);
    p = vfmaq_f32(vdupq_n_f32(2.f / 15.f), p, x2);
    p = vfmaq_f32(vdupq_n_f32(-1.f / 3.f), p, x2);
    p = vmulq_f32(p, x2);
    const float32x4_t small = vfmaq_f32(x, p, x);
    const float32x4_t one = vdupq_n_f32(1.f);
    const float32x4_t ex = oct_neon_exp(vaddq_f32(ax, ax));
    float32x4_t big = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.f), vaddq_f32(ex, one)));
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big), sign));
    return vbslq_f32(vcltq_f32(ax, vdupq_n_f32(0.25f)), small, big);
}

/* The activations other than Relu and Clip, out of line. */
static __attribute__((noinline)) float32x4_t oct_neon_act_slow(const oct_act *a, float32x4_t x) {
    const float32x4_t zero = vdupq_n_f32(0.f), one = vdupq_n_f32(1.f);
    switch (a->kind) {
    case 3: return vbslq_f32(vcltq_f32(x, zero), vmulq_f32(x, vdupq_n_f32(a->alpha)), x);
    case 4: return vdivq_f32(one, vaddq_f32(one, oct_neon_exp(vnegq_f32(x))));
    case 5: return vdivq_f32(x, vaddq_f32(one, oct_neon_exp(vnegq_f32(x))));
    case 6: {
        float32x4_t t = vaddq_f32(vdivq_f32(x, vdupq_n_f32(6.f)), vdupq_n_f32(0.5f));
        t = vminq_f32(vmaxq_f32(t, zero), one);
        return vmulq_f32(x, t);
    }
    case 7: {
        float32x4_t t = vaddq_f32(vmulq_f32(vdupq_n_f32(a->alpha), x), vdupq_n_f32(a->beta));
        return vminq_f32(vmaxq_f32(t, zero), one);
    }
    case 8: return oct_neon_tanh(x);
    default: return x;
    }
}

static inline float32x4_t oct_neon_act(const oct_act *a, float32x4_t x) {
    switch (a->kind) {
    case 0: return x;
    case 1: return vmaxq_f32(x, vdupq_n_f32(0.f));
    case 2: return vminq_f32(vmaxq_f32(x, vdupq_n_f32(a->alpha)), vdupq_n_f32(a->beta));
    default: return oct_neon_act_slow(a, x);
    }
}

/* The first n (1..4) floats at p, the other lanes zero. */
static inline float32x4_t oct_neon_load_n(const float *p, int n) {
    if (n == 4) return vld1q_f32(p);
    float t[4] = {0.f, 0.f, 0.f, 0.f};
    memcpy(t, p, (size_t)n * sizeof(float));
    return vld1q_f32(t);
}

/* r holds row i, columns [j, j + n) of the tile (n <= 4 lanes exist); e is relative to the tile's
   origin. */
static inline float32x4_t oct_neon_epilogue(const oct_epilogue_args *e, int i, int j, float32x4_t r, int n) {
    if (e->alpha != 1.f) r = vmulq_f32(r, vdupq_n_f32(e->alpha));
    if (e->row_bias) r = vaddq_f32(r, vdupq_n_f32(e->row_bias[i]));
    if (e->c) {
        const float *cr = e->c + (int64_t)i * e->c_rs;
        const float32x4_t cv = e->c_cs ? oct_neon_load_n(cr + j, n) : vdupq_n_f32(cr[0]);
        r = vaddq_f32(r, vmulq_f32(vdupq_n_f32(e->beta), cv));
    }
    if (e->res) r = vaddq_f32(r, oct_neon_load_n(e->res + (int64_t)i * e->ldr + j, n));
    return oct_neon_act(&e->act, r);
}

#endif
