/* The fused epilogue of the AVX-512 GEMM tile on one vector of 16 outputs: alpha, row bias, C,
   residual and the activation (oct_act), in oct_ref_epilogue's order of operations. Sigmoid, SiLU
   and Tanh use a vector expf (range reduction to |r| <= ln2/2, degree-7 Taylor polynomial,
   scalef): about 1-2 ulp, against expf's < 1 ulp. Included by the AVX-512 sgemm and by the fp32
   depthwise row loop. */
#ifndef OCT_SGEMM_AVX512_ACT_H
#define OCT_SGEMM_AVX512_ACT_H

#include <immintrin.h>

#include "../../ref/nn_kernels.h"

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

/* The activations other than Relu and Clip: out of line, so the many tile instantiations stay small. */
static __attribute__((noinline)) __m512 oct_avx512_act_slow(const oct_act *a, __m512 x) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);
    switch (a->kind) {
    case 3: return _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, _mm512_set1_ps(a->alpha));
    case 4: return _mm512_div_ps(one, _mm512_add_ps(one, oct_avx512_exp(_mm512_sub_ps(zero, x))));
    case 5: return _mm512_div_ps(x, _mm512_add_ps(one, oct_avx512_exp(_mm512_sub_ps(zero, x))));
    case 6: {
        __m512 t = _mm512_add_ps(_mm512_div_ps(x, _mm512_set1_ps(6.f)), _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_max_ps(t, zero), one);
        return _mm512_mul_ps(x, t);
    }
    case 7: {
        __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(a->alpha), x), _mm512_set1_ps(a->beta));
        return _mm512_min_ps(_mm512_max_ps(t, zero), one);
    }
    case 8: return oct_avx512_tanh(x);
    default: return x;
    }
}

static inline __attribute__((always_inline)) __m512 oct_avx512_act(const oct_act *a, __m512 x) {
    switch (a->kind) {
    case 0: return x;
    case 1: return _mm512_max_ps(x, _mm512_setzero_ps());
    case 2: return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(a->alpha)), _mm512_set1_ps(a->beta));
    default: return oct_avx512_act_slow(a, x);
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
    return oct_avx512_act(&e->act, r);
}

#endif
