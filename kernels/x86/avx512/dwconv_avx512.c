/* AVX-512 depthwise primitives (ref/dwconv_kernels.h): 16 lanes, four vectors of one band in flight
   so that the FMA latency is hidden, every weight of a 3x3 or 5x5 kernel held in a register;
   masked loads and stores at row ends. The requantization is oct_ref_requant's float sequence
   (VCVTPS2DQ rounds by MXCSR, nearest-even like rintf; VMAXPS returns its second operand for NaN,
   which gives ref's qmin; VPMOVDB keeps the low byte like ref's cast). */
#include <immintrin.h>

#include "dwconv_isa.h"
#include "sgemm_avx512_act.h"

static inline __mmask16 first_lanes(int64_t count) {
    return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

/* The lanes of padded columns [c0, c0 + 16) that hold input, i.e. lie in [lo, hi). */
static inline __mmask16 input_lanes(int64_t c0, int64_t lo, int64_t hi) {
    const int64_t s = lo - c0 < 0 ? 0 : lo - c0 > 16 ? 16 : lo - c0;
    const int64_t e = hi - c0 < 0 ? 0 : hi - c0 > 16 ? 16 : hi - c0;
    return (__mmask16)(first_lanes(e) & ~first_lanes(s));
}

/* Address of input element i of a row; masked loads touch only the lanes inside the row, so the
   base may lie before it (computed as an integer: no out-of-object pointer arithmetic in C). */
static inline const void *at(const void *row, int64_t i, size_t size) {
    return (const void *)((uintptr_t)row + (uintptr_t)(i * (int64_t)size));
}

/* Padded columns [c0, c0 + 16) of a row run as floats, zero outside the input. Every destination
   vector is built in registers and stored once: no reload of freshly stored partial vectors. */
static inline __m512 cols_u8(const oct_dw_rows *r, const uint8_t *src, int64_t c0, __m128i vx, __m512i vz) {
    const __mmask16 k = input_lanes(c0, r->lo, r->hi);
    const __m128i b = _mm_xor_si128(_mm_maskz_loadu_epi8(k, at(src, c0 - r->lo, 1)), vx);
    return _mm512_cvtepi32_ps(_mm512_maskz_sub_epi32(k, _mm512_cvtepu8_epi32(b), vz));
}
static inline __m512 cols_f32(const oct_dw_rows *r, const float *src, int64_t c0) {
    return _mm512_maskz_loadu_ps(input_lanes(c0, r->lo, r->hi), at(src, c0 - r->lo, sizeof(float)));
}

static const int32_t EVEN_LANES[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};

static void fill_u8_avx512(const oct_dw_rows *r, const uint8_t *src, uint8_t x_xor, int32_t x_zp, float *d0,
                           float *d1) {
    const __m128i vx = _mm_set1_epi8((char)x_xor);
    const __m512i vz = _mm512_set1_epi32(x_zp), even = _mm512_loadu_si512(EVEN_LANES);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst) {
        if (!r->split) {
            for (int64_t j = 0; j < r->n; j += 16) _mm512_storeu_ps(d0 + j, cols_u8(r, src, j, vx, vz));
            continue;
        }
        float *o = d1 + i * r->ld_dst;
        for (int64_t j = 0; j < r->n / 2; j += 16) {
            const __m512 a = cols_u8(r, src, 2 * j, vx, vz), b = cols_u8(r, src, 2 * j + 16, vx, vz);
            _mm512_storeu_ps(d0 + j, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(o + j, _mm512_permutex2var_ps(a, odd, b));
        }
    }
}

static void fill_f32_avx512(const oct_dw_rows *r, const float *src, float *d0, float *d1) {
    const __m512i even = _mm512_loadu_si512(EVEN_LANES), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst) {
        if (!r->split) {
            for (int64_t j = 0; j < r->n; j += 16) _mm512_storeu_ps(d0 + j, cols_f32(r, src, j));
            continue;
        }
        float *o = d1 + i * r->ld_dst;
        for (int64_t j = 0; j < r->n / 2; j += 16) {
            const __m512 a = cols_f32(r, src, 2 * j), b = cols_f32(r, src, 2 * j + 16);
            _mm512_storeu_ps(d0 + j, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(o + j, _mm512_permutex2var_ps(a, odd, b));
        }
    }
}

static inline __attribute__((always_inline)) void taps_fixed(const float *base, const int64_t *off,
                                                             const float *w, const int nt, int64_t n,
                                                             float *acc) {
    const float *src[OCT_DW_MAX_TAPS];
    __m512 wv[OCT_DW_MAX_TAPS];
#pragma GCC unroll 64
    for (int t = 0; t < nt; t++) {
        src[t] = base + off[t];
        wv[t] = _mm512_set1_ps(w[t]);
    }
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a0 = _mm512_mul_ps(_mm512_loadu_ps(src[0] + i), wv[0]);
        __m512 a1 = _mm512_mul_ps(_mm512_loadu_ps(src[0] + i + 16), wv[0]);
        __m512 a2 = _mm512_mul_ps(_mm512_loadu_ps(src[0] + i + 32), wv[0]);
        __m512 a3 = _mm512_mul_ps(_mm512_loadu_ps(src[0] + i + 48), wv[0]);
#pragma GCC unroll 64
        for (int t = 1; t < nt; t++) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(src[t] + i), wv[t], a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(src[t] + i + 16), wv[t], a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(src[t] + i + 32), wv[t], a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(src[t] + i + 48), wv[t], a3);
        }
        _mm512_storeu_ps(acc + i, a0);
        _mm512_storeu_ps(acc + i + 16, a1);
        _mm512_storeu_ps(acc + i + 32, a2);
        _mm512_storeu_ps(acc + i + 48, a3);
    }
    for (; i < n; i += 16) { /* the last vector may run into the slack */
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(src[0] + i), wv[0]);
#pragma GCC unroll 64
        for (int t = 1; t < nt; t++) a = _mm512_fmadd_ps(_mm512_loadu_ps(src[t] + i), wv[t], a);
        _mm512_storeu_ps(acc + i, a);
    }
}

static void taps_avx512(const float *base, const int64_t *off, const float *w, int ntaps, int64_t n, float *acc) {
    switch (ntaps) { /* the common kernels get their own unrolled copy */
    case 9: taps_fixed(base, off, w, 9, n, acc); break;
    case 25: taps_fixed(base, off, w, 25, n, acc); break;
    case 3: taps_fixed(base, off, w, 3, n, acc); break;
    default: taps_fixed(base, off, w, ntaps, n, acc); break;
    }
}

static void epilogue_avx512(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, float bias,
                            const float *res, const oct_act *act, float *y, double *sum) {
    const __m512 vb = _mm512_set1_ps(bias);
    __m512 band_sum = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++, acc += ld_acc, y += n, res = res ? res + n : NULL)
        for (int64_t i = 0; i < n; i += 16) {
            const __mmask16 m = first_lanes(n - i);
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(acc + i), vb); /* acc has slack */
            if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + i));
            v = oct_avx512_act(act, v);
            _mm512_mask_storeu_ps(y + i, m, v);
            band_sum = _mm512_mask_add_ps(band_sum, m, band_sum, v);
        }
    if (sum) *sum += (double)_mm512_reduce_add_ps(band_sum);
}

static void requant_avx512(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, int32_t bias, float m,
                           float lo, float hi, int32_t zp, void *y, int64_t *sum) {
    const __m512 vm = _mm512_set1_ps(m), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512i vb = _mm512_set1_epi32(bias), vzp = _mm512_set1_epi32(zp);
    uint8_t *out = y;
    for (int64_t r = 0; r < rows; r++, acc += ld_acc, out += n) {
        __m512i row_sum = _mm512_setzero_si512();
        for (int64_t i = 0; i < n; i += 16) {
            /* exact integers, so the conversion is exact; lanes past n hold anything and are not stored */
            const __m512i s = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_loadu_ps(acc + i)), vb);
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(s), vm);
            v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
            const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), vzp);
            const __mmask16 keep = first_lanes(n - i);
            _mm_mask_storeu_epi8(out + i, keep, _mm512_cvtepi32_epi8(q));
            row_sum = _mm512_mask_add_epi32(row_sum, keep, row_sum, q);
        }
        /* a lane adds n/16 values of 8 bits: inside int32 for rows up to 2^24 (the plan's bound);
           the 16 lanes are added in 64 bits */
        if (sum)
            *sum += _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(row_sum)),
                                                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(row_sum, 1))));
    }
}

const oct_dw_kernels oct_avx512_dw_kernels = {"avx512", fill_u8_avx512, fill_f32_avx512,
                                               taps_avx512, epilogue_avx512, requant_avx512};
