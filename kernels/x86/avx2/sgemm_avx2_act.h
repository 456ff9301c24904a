/* The fused epilogue of the AVX2 GEMM tile on one vector of 8 outputs: alpha, row bias, C, residual
   and the activation (oct_act), in oct_ref_epilogue's order of operations. Sigmoid and SiLU use
   oct_avx2_logistic, Tanh a vector expf (range reduction to |r| <= ln2/2, degree-7 Taylor
   polynomial, 2^n built in the exponent bits): about 1-2 ulp. Included by sgemm_avx2.c only. */
#ifndef OCT_SGEMM_AVX2_ACT_H
#define OCT_SGEMM_AVX2_ACT_H

#include <immintrin.h>

#include "../../ref/nn_kernels.h"
#include "../logistic_poly.h"

/* e^x; inputs clamped to [-87.3, 88.3] so that 2^n (n in [-126, 127]) is a normal float. */
static inline __m256 oct_avx2_exp(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* ln 2 split in two so that n * hi is exact. */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.f / 5040.f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* 1 / (1 + e^-x) as oct_avx512_logistic (sgemm_avx512_act.h): degree-5 minimax e^-s after a
   Cody-Waite reduction, 2^n built in the exponent bits (n in [-126, 126] after the clamp), the
   reciprocal by VRCPPS and one Newton step (about 3e-7 relative error) instead of a division. */
static inline __m256 oct_avx2_logistic(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-OCT_LOGISTIC_CLAMP)), _mm256_set1_ps(OCT_LOGISTIC_CLAMP));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(OCT_LOGISTIC_NEG_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 s = _mm256_fmadd_ps(n, _mm256_set1_ps(OCT_LOGISTIC_LN2_HI), x);
    s = _mm256_fmadd_ps(n, _mm256_set1_ps(OCT_LOGISTIC_LN2_LO), s);
    __m256 p = _mm256_set1_ps(OCT_LOGISTIC_C5);
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(OCT_LOGISTIC_C4));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(OCT_LOGISTIC_C3));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(OCT_LOGISTIC_C2));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(OCT_LOGISTIC_C1));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(OCT_LOGISTIC_C0));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 d = _mm256_fmadd_ps(p, _mm256_castsi256_ps(e), _mm256_set1_ps(1.f));
    const __m256 r = _mm256_rcp_ps(d);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.f)));
}

/* tanh: odd Taylor polynomial to x^9 below |x| = 0.25, 1 - 2 / (e^2|x| + 1) above. */
static inline __m256 oct_avx2_tanh(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    const __m256 ax = _mm256_andnot_ps(sign, x), x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(62.f / 2835.f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-17.f / 315.f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.f / 15.f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.f / 3.f));
    p = _mm256_mul_ps(p, x2);
    const __m256 small = _mm256_fmadd_ps(p, x, x);
    const __m256 ex = oct_avx2_exp(_mm256_add_ps(ax, ax));
    const __m256 one = _mm256_set1_ps(1.f);
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(ex, one)));
    big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.25f), _CMP_LT_OQ));
}

/* The activations other than Relu and Clip: out of line, so the tile instantiations stay small. */
static __attribute__((noinline)) __m256 oct_avx2_act_slow(const oct_act *a, __m256 x) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    switch (a->kind) {
    case 3:
        return _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(a->alpha)), _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
    case 4: return oct_avx2_logistic(x);
    case 5: return _mm256_mul_ps(x, oct_avx2_logistic(x));
    case 6: {
        __m256 t = _mm256_add_ps(_mm256_div_ps(x, _mm256_set1_ps(6.f)), _mm256_set1_ps(0.5f));
        t = _mm256_min_ps(_mm256_max_ps(t, zero), one);
        return _mm256_mul_ps(x, t);
    }
    case 7: {
        __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(a->alpha), x), _mm256_set1_ps(a->beta));
        return _mm256_min_ps(_mm256_max_ps(t, zero), one);
    }
    case 8: return oct_avx2_tanh(x);
    default: return x;
    }
}

static inline __attribute__((always_inline)) __m256 oct_avx2_act(const oct_act *a, __m256 x) {
    switch (a->kind) {
    case 0: return x;
    case 1: return _mm256_max_ps(x, _mm256_setzero_ps());
    case 2: return _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(a->alpha)), _mm256_set1_ps(a->beta));
    default: return oct_avx2_act_slow(a, x);
    }
}

/* r holds row i, columns [j, j + 8) of the tile; when !full only the lanes of mk exist (and are
   loaded). e is relative to the tile's origin. */
static inline __attribute__((always_inline)) __m256 oct_avx2_epilogue(const oct_epilogue_args *e, int i, int j,
                                                                       __m256 r, __m256i mk, int full) {
    if (e->alpha != 1.f) r = _mm256_mul_ps(r, _mm256_set1_ps(e->alpha));
    if (e->row_bias) r = _mm256_add_ps(r, _mm256_set1_ps(e->row_bias[i]));
    if (e->c) {
        const float *cr = e->c + (int64_t)i * e->c_rs;
        const __m256 cv = !e->c_cs ? _mm256_set1_ps(cr[0])
                          : full   ? _mm256_loadu_ps(cr + j)
                                   : _mm256_maskload_ps(cr + j, mk);
        r = _mm256_add_ps(r, _mm256_mul_ps(_mm256_set1_ps(e->beta), cv));
    }
    if (e->res) {
        const float *rr = e->res + (int64_t)i * e->ldr + j;
        r = _mm256_add_ps(r, full ? _mm256_loadu_ps(rr) : _mm256_maskload_ps(rr, mk));
    }
    return oct_avx2_act(&e->act, r);
}

#endif
