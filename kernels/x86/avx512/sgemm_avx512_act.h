/* The fused epilogue of the AVX-512 GEMM tile on one vector of 16 outputs: alpha, row bias, C,
   residual and the activation (oct_act), in oct_ref_epilogue's order of operations. Sigmoid, SiLU
   use oct_avx512_logistic (about 3 ulp), Tanh a vector expf (range reduction to |r| <= ln2/2,
   degree-7 Taylor polynomial, scalef: 1-2 ulp). The activations of every AVX-512 fp32 kernel: the
   sgemm tile, the depthwise rows and bands, Winograd's output transform, direct convolution. */
#ifndef OCT_SGEMM_AVX512_ACT_H
#define OCT_SGEMM_AVX512_ACT_H

#include <immintrin.h>

#include "../../ref/nn_kernels.h"
#include "../logistic_poly.h"

/* e^x; inputs are clamped to [-87.3, 88.3] so that 2^n stays a normal float (exp(-87.3) is
   1e-38 and exp(88.3) 2e38, both far beyond where sigmoid/tanh saturate). */
static inline __m512 oct_avx512_exp(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* ln 2 split in two so that n * hi is exact (hi has 9 significant bits, |n| <= 128). */
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.f / 5040.f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, n);
}

/* tanh: an odd Taylor polynomial to x^9 below |x| = 0.25 (error < 3e-9 there), where the
   1 - 2 / (e^2|x| + 1) form would lose bits to cancellation; that form above. */
static inline __m512 oct_avx512_tanh(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x), x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(62.f / 2835.f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-17.f / 315.f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.f / 15.f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.f / 3.f));
    p = _mm512_mul_ps(p, x2);
    const __m512 small = _mm512_fmadd_ps(p, x, x);
    const __m512 ex = oct_avx512_exp(_mm512_add_ps(ax, ax));
    const __m512 one = _mm512_set1_ps(1.f);
    __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.f), _mm512_add_ps(ex, one)));
    /* sign of x onto |tanh| */
    big = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(big),
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.25f), _CMP_LT_OQ), big, small);
}

/* 1 / (1 + e^-x), the logistic function, in 17 operations (oct_avx512_exp and a division took
   22 and bounded EfficientNet's SiLU): n = round(-x log2 e), s = x + n ln 2 (Cody-Waite, n ln 2's
   high part exact), e^-x = 2^n e^-s with e^-s a degree-5 minimax polynomial on |s| <= ln2/2
   (relative error 1.5e-7); the reciprocal by VRCP14PS and one Newton step. x is clamped to
   +-87.3 for the exponential only, so that 2^n stays a finite normal float. */
static inline __m512 oct_avx512_logistic(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-OCT_LOGISTIC_CLAMP)), _mm512_set1_ps(OCT_LOGISTIC_CLAMP));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(OCT_LOGISTIC_NEG_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 s = _mm512_fmadd_ps(n, _mm512_set1_ps(OCT_LOGISTIC_LN2_HI), x);
    s = _mm512_fmadd_ps(n, _mm512_set1_ps(OCT_LOGISTIC_LN2_LO), s);
    __m512 p = _mm512_set1_ps(OCT_LOGISTIC_C5);
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(OCT_LOGISTIC_C4));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(OCT_LOGISTIC_C3));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(OCT_LOGISTIC_C2));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(OCT_LOGISTIC_C1));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(OCT_LOGISTIC_C0));
    const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.f));
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.f)));
}

/* Activation `kind` (a constant after inlining) on 16 lanes, as oct_act_apply. VMAXPS and VMINPS
   return their second operand when one is NaN: the operand orders below give NaN where
   oct_act_apply does (Clip, HardSigmoid) and 0 for Relu, as it does. */
static inline __attribute__((always_inline)) __m512 oct_avx512_act_kind(const oct_act *a, const int kind, __m512 x) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);
    switch (kind) {
    case 1: return _mm512_max_ps(x, zero);
    case 2: return _mm512_min_ps(_mm512_set1_ps(a->beta), _mm512_max_ps(_mm512_set1_ps(a->alpha), x));
    case 3: return _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, _mm512_set1_ps(a->alpha));
    case 4: return oct_avx512_logistic(x);
    case 5: return _mm512_mul_ps(x, oct_avx512_logistic(x));
    case 6: {
        const __m512 t = _mm512_add_ps(_mm512_div_ps(x, _mm512_set1_ps(6.f)), _mm512_set1_ps(0.5f));
        return _mm512_mul_ps(x, _mm512_min_ps(one, _mm512_max_ps(zero, t)));
    }
    case 7: {
        const __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(a->alpha), x), _mm512_set1_ps(a->beta));
        return _mm512_min_ps(one, _mm512_max_ps(zero, t));
    }
    case 8: return oct_avx512_tanh(x);
    default: return x;
    }
}

/* Any kind, inline (the depthwise row loop, whose outputs leave registers one vector at a time). */
static inline __attribute__((always_inline)) __m512 oct_avx512_act(const oct_act *a, __m512 x) {
    switch (a->kind) {
    case 1: return oct_avx512_act_kind(a, 1, x);
    case 2: return oct_avx512_act_kind(a, 2, x);
    case 3: return oct_avx512_act_kind(a, 3, x);
    case 4: return oct_avx512_act_kind(a, 4, x);
    case 5: return oct_avx512_act_kind(a, 5, x);
    case 6: return oct_avx512_act_kind(a, 6, x);
    case 7: return oct_avx512_act_kind(a, 7, x);
    case 8: return oct_avx512_act_kind(a, 8, x);
    default: return x;
    }
}

/* Relu, Clip and LeakyRelu: cheap enough to apply in the GEMM tile's write-back; the tile runs
   the other kinds as oct_avx512_act_rect over the outputs it has just stored (as fast as inlining
   them into every tile, measured on EfficientNet-B0, at 430 KB less code). */
static inline int oct_avx512_act_is_cheap(int kind) { return kind <= 3; }

static inline __attribute__((always_inline)) __m512 oct_avx512_act_cheap(const oct_act *a, __m512 x) {
    switch (a->kind) {
    case 1: return oct_avx512_act_kind(a, 1, x);
    case 2: return oct_avx512_act_kind(a, 2, x);
    case 3: return oct_avx512_act_kind(a, 3, x);
    default: return x;
    }
}

/* rows x n outputs at y, rows ld floats apart: y = act(y) in place. kind is a constant after
   inlining, so the constants are set up once per call. */
static inline __attribute__((always_inline)) void oct_avx512_act_rect_kind(const oct_act *a, const int kind, float *y,
                                                                           int64_t ld, int64_t rows, int64_t n) {
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1u);
    for (int64_t r = 0; r < rows; r++, y += ld) {
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, oct_avx512_act_kind(a, kind, _mm512_loadu_ps(y + i)));
        if (tail)
            _mm512_mask_storeu_ps(y + i, tail, oct_avx512_act_kind(a, kind, _mm512_maskz_loadu_ps(tail, y + i)));
    }
}

static __attribute__((noinline, unused)) void oct_avx512_act_rect(const oct_act *a, float *y, int64_t ld, int64_t rows,
                                                                  int64_t n) {
    switch (a->kind) {
    case 1: oct_avx512_act_rect_kind(a, 1, y, ld, rows, n); break;
    case 2: oct_avx512_act_rect_kind(a, 2, y, ld, rows, n); break;
    case 3: oct_avx512_act_rect_kind(a, 3, y, ld, rows, n); break;
    case 4: oct_avx512_act_rect_kind(a, 4, y, ld, rows, n); break;
    case 5: oct_avx512_act_rect_kind(a, 5, y, ld, rows, n); break;
    case 6: oct_avx512_act_rect_kind(a, 6, y, ld, rows, n); break;
    case 7: oct_avx512_act_rect_kind(a, 7, y, ld, rows, n); break;
    case 8: oct_avx512_act_rect_kind(a, 8, y, ld, rows, n); break;
    default: break;
    }
}

/* r holds row i, columns [j, j + 16) of the tile (lanes outside mk are not stored); e is relative
   to the tile's origin. */
static inline __attribute__((always_inline)) __m512 oct_avx512_epilogue(const oct_epilogue_args *e, int i,
                                                                         int j, __m512 r, __mmask16 mk) {
    if (e->alpha != 1.f) r = _mm512_mul_ps(r, _mm512_set1_ps(e->alpha));
    if (e->row_bias) r = _mm512_add_ps(r, _mm512_set1_ps(e->row_bias[i]));
    if (e->c) {
        const float *cr = e->c + (int64_t)i * e->c_rs;
        const __m512 cv = e->c_cs ? _mm512_maskz_loadu_ps(mk, cr + j) : _mm512_set1_ps(cr[0]);
        r = _mm512_add_ps(r, _mm512_mul_ps(_mm512_set1_ps(e->beta), cv));
    }
    if (e->res) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, e->res + (int64_t)i * e->ldr + j));
    return oct_avx512_act_cheap(&e->act, r); /* the other kinds: oct_avx512_act_rect after the store */
}

#endif
