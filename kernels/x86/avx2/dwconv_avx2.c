/* AVX2 + FMA depthwise primitives (ref/dwconv_kernels.h): 8 lanes, four vectors of one band in
   flight; row ends through VMASKMOVPS (floats) or a small copy (bytes). The requantization is
   oct_ref_requant's float sequence (VCVTPS2DQ rounds by MXCSR, nearest-even like rintf; VMAXPS
   returns its second operand for NaN, which gives ref's qmin; the low byte of each lane is kept). */
#include <immintrin.h>
#include <string.h>

#include "dwconv_isa.h"

/* Lanes [0, count) set, as VMASKMOVPS wants them. */
static inline __m256i lane_mask(int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 8 ? count : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Padded columns [c0, c0 + 8) of a row run as floats, zero outside the input [lo, hi). Inside the
   row one 8-byte load; at its ends the bytes go through a small copy, so nothing outside the row
   is read. Each destination vector is stored once. */
static inline __m256 cols_u8(const oct_dw_rows *r, const uint8_t *src, int64_t c0, __m128i vx, __m256i vz) {
    __m128i b;
    __m256i inside;
    if (c0 >= r->lo && c0 + 8 <= r->hi) {
        b = _mm_loadl_epi64((const __m128i *)(src + (c0 - r->lo)));
        inside = _mm256_set1_epi32(-1);
    } else {
        uint8_t bytes[8] = {0};
        int32_t lanes[8];
        for (int l = 0; l < 8; l++) {
            const int64_t c = c0 + l;
            lanes[l] = c >= r->lo && c < r->hi ? -1 : 0;
            if (lanes[l]) bytes[l] = src[c - r->lo];
        }
        b = _mm_loadl_epi64((const __m128i *)bytes);
        inside = _mm256_loadu_si256((const __m256i *)lanes);
    }
    const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_xor_si128(b, vx)), vz);
    return _mm256_cvtepi32_ps(_mm256_and_si256(v, inside));
}
static inline __m256 cols_f32(const oct_dw_rows *r, const float *src, int64_t c0) {
    if (c0 >= r->lo && c0 + 8 <= r->hi) return _mm256_loadu_ps(src + (c0 - r->lo));
    float v[8];
    for (int l = 0; l < 8; l++) {
        const int64_t c = c0 + l;
        v[l] = c >= r->lo && c < r->hi ? src[c - r->lo] : 0.f;
    }
    return _mm256_loadu_ps(v);
}

/* Even and odd lanes of the 16 floats a, b: within 128-bit halves, then the quarters in order. */
static inline void deinterleave(__m256 a, __m256 b, __m256 *even, __m256 *odd) {
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

static void fill_u8_avx2(const oct_dw_rows *r, const uint8_t *src, uint8_t x_xor, int32_t x_zp, float *d0,
                         float *d1) {
    const __m128i vx = _mm_set1_epi8((char)x_xor);
    const __m256i vz = _mm256_set1_epi32(x_zp);
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst) {
        if (!r->split) {
            for (int64_t j = 0; j < r->n; j += 8) _mm256_storeu_ps(d0 + j, cols_u8(r, src, j, vx, vz));
            continue;
        }
        float *o = d1 + i * r->ld_dst;
        for (int64_t j = 0; j < r->n / 2; j += 8) {
            __m256 e, od;
            deinterleave(cols_u8(r, src, 2 * j, vx, vz), cols_u8(r, src, 2 * j + 8, vx, vz), &e, &od);
            _mm256_storeu_ps(d0 + j, e);
            _mm256_storeu_ps(o + j, od);
        }
    }
}

static void fill_f32_avx2(const oct_dw_rows *r, const float *src, float *d0, float *d1) {
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst) {
        if (!r->split) {
            for (int64_t j = 0; j < r->n; j += 8) _mm256_storeu_ps(d0 + j, cols_f32(r, src, j));
            continue;
        }
        float *o = d1 + i * r->ld_dst;
        for (int64_t j = 0; j < r->n / 2; j += 8) {
            __m256 e, od;
            deinterleave(cols_f32(r, src, 2 * j), cols_f32(r, src, 2 * j + 8), &e, &od);
            _mm256_storeu_ps(d0 + j, e);
            _mm256_storeu_ps(o + j, od);
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
    for (; i + 32 <= n; i += 32) {
        __m256 w0 = _mm256_broadcast_ss(w);
        __m256 a0 = _mm256_mul_ps(_mm256_loadu_ps(src[0] + i), w0);
        __m256 a1 = _mm256_mul_ps(_mm256_loadu_ps(src[0] + i + 8), w0);
        __m256 a2 = _mm256_mul_ps(_mm256_loadu_ps(src[0] + i + 16), w0);
        __m256 a3 = _mm256_mul_ps(_mm256_loadu_ps(src[0] + i + 24), w0);
#pragma GCC unroll 64
        for (int t = 1; t < nt; t++) {
            const __m256 wt = _mm256_broadcast_ss(w + t);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(src[t] + i), wt, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(src[t] + i + 8), wt, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(src[t] + i + 16), wt, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(src[t] + i + 24), wt, a3);
        }
        _mm256_storeu_ps(acc + i, a0);
        _mm256_storeu_ps(acc + i + 8, a1);
        _mm256_storeu_ps(acc + i + 16, a2);
        _mm256_storeu_ps(acc + i + 24, a3);
    }
    for (; i < n; i += 8) { /* the last vector may run into the slack */
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(src[0] + i), _mm256_broadcast_ss(w));
#pragma GCC unroll 64
        for (int t = 1; t < nt; t++) a = _mm256_fmadd_ps(_mm256_loadu_ps(src[t] + i), _mm256_broadcast_ss(w + t), a);
        _mm256_storeu_ps(acc + i, a);
    }
}

static void taps_avx2(const float *base, const int64_t *off, const float *w, int ntaps, int64_t n, float *acc) {
    switch (ntaps) { /* the common kernels get their own unrolled copy */
    case 9: taps_fixed(base, off, w, 9, n, acc); break;
    case 25: taps_fixed(base, off, w, 25, n, acc); break;
    case 3: taps_fixed(base, off, w, 3, n, acc); break;
    default: taps_fixed(base, off, w, ntaps, n, acc); break;
    }
}

/* e^x, Cephes' expf scheme: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, then
   2^n built in the exponent field (n stays in [-126, 127] over the clamped range). */
static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.f));
    const __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(e, _mm256_castsi256_ps(pow2));
}

/* oct_act_apply on 8 lanes for the kinds it has a vector form of (see vector_act). Comparisons
   are ordered like ref's so that NaN comes out the same. */
static inline __m256 act256(__m256 v, int kind, __m256 alpha, __m256 beta) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    switch (kind) {
    case 1: return _mm256_max_ps(v, zero);
    case 2: return _mm256_min_ps(beta, _mm256_max_ps(alpha, v));
    case 3: return _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case 4: return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, v))));
    case 5: return _mm256_div_ps(v, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, v))));
    case 6: {
        __m256 t = _mm256_add_ps(_mm256_div_ps(v, _mm256_set1_ps(6.f)), _mm256_set1_ps(0.5f));
        return _mm256_mul_ps(v, _mm256_min_ps(_mm256_max_ps(t, zero), one));
    }
    case 7: {
        __m256 t = _mm256_add_ps(_mm256_mul_ps(alpha, v), beta);
        return _mm256_min_ps(_mm256_max_ps(t, zero), one);
    }
    default: return v;
    }
}

static int vector_act(int kind) { return kind >= 0 && kind <= 7; }

static void epilogue_avx2(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, float bias, const float *res,
                          const oct_act *act, float *y, double *sum) {
    const int kind = act->kind;
    const __m256 vb = _mm256_set1_ps(bias), alpha = _mm256_set1_ps(act->alpha), beta = _mm256_set1_ps(act->beta);
    __m256 band_sum = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++, acc += ld_acc, y += n, res = res ? res + n : NULL)
        for (int64_t i = 0; i < n; i += 8) {
            const int full = n - i >= 8;
            const __m256i m = lane_mask(n - i);
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(acc + i), vb); /* acc has slack */
            if (res) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(res + i) : _mm256_maskload_ps(res + i, m));
            if (vector_act(kind)) {
                v = act256(v, kind, alpha, beta);
            } else { /* Tanh and the rest: the scalar definition, lane by lane */
                float lanes[8];
                _mm256_storeu_ps(lanes, v);
                for (int l = 0; l < 8; l++) lanes[l] = oct_act_apply(act, lanes[l]);
                v = _mm256_loadu_ps(lanes);
            }
            if (full) _mm256_storeu_ps(y + i, v);
            else _mm256_maskstore_ps(y + i, m, v);
            /* the bitwise mask zeroes the lanes past n whatever they hold (NaN included) */
            band_sum = _mm256_add_ps(band_sum, full ? v : _mm256_and_ps(v, _mm256_castsi256_ps(m)));
        }
    if (sum) {
        const __m128 h = _mm_add_ps(_mm256_castps256_ps128(band_sum), _mm256_extractf128_ps(band_sum, 1));
        const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
        *sum += (double)_mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
    }
}

static void requant_avx2(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, int32_t bias, float m,
                         float lo, float hi, int32_t zp, void *y, int64_t *sum) {
    const __m256 vm = _mm256_set1_ps(m), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i vb = _mm256_set1_epi32(bias), vzp = _mm256_set1_epi32(zp);
    /* byte 0 of each int32 to the low 4 bytes of each 128-bit lane, then the two lanes together */
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    uint8_t *out = y;
    for (int64_t r = 0; r < rows; r++, acc += ld_acc, out += n) {
        __m256i row_sum = _mm256_setzero_si256();
        for (int64_t i = 0; i < n; i += 8) {
            /* exact integers, so the conversion is exact; lanes past n hold anything and are not stored */
            const __m256i s = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_loadu_ps(acc + i)), vb);
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s), vm);
            v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
            const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
            const __m128i bytes =
                _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, low_bytes), join));
            if (n - i >= 8) {
                _mm_storel_epi64((__m128i *)(out + i), bytes);
            } else {
                uint8_t b8[16];
                _mm_storeu_si128((__m128i *)b8, bytes);
                memcpy(out + i, b8, (size_t)(n - i));
            }
            row_sum = _mm256_add_epi32(row_sum, _mm256_and_si256(q, lane_mask(n - i)));
        }
        if (sum) { /* lanes hold n/8 values of 8 bits each: int32 suffices, the total goes to 64 bits */
            int32_t lanes[8];
            _mm256_storeu_si256((__m256i *)lanes, row_sum);
            for (int l = 0; l < 8; l++) *sum += lanes[l];
        }
    }
}

const oct_dw_kernels oct_avx2_dw_kernels = {"avx2", fill_u8_avx2, fill_f32_avx2,
                                             taps_avx2, epilogue_avx2, requant_avx2};
