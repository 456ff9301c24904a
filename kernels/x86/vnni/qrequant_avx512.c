/* AVX-512 requantization, bit-identical to oct_ref_requant: the same float32 operations in the same
   order, 16 lanes at a time. VCVTPS2DQ rounds by MXCSR, whose default is nearest-even like rintf;
   VMAXPS returns its second operand for NaN, which gives ref's qmin; VPMOVDB truncates like ref's
   cast to 8 bits. */
#include <immintrin.h>

#include "quant_isa.h"

void oct_avx512_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                        void *y, int64_t y_rs, int64_t y_cs) {
    float lo, hi;
    oct_qt_requant_bounds(q, &lo, &hi);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512i vzp = _mm512_set1_epi32(q->zp);
    for (int r = 0; r < nr; r++) {
        const __m512 vm = _mm512_set1_ps(q->scale[q->scale_per_row ? r0 + r : 0]);
        const __m512i vb = _mm512_set1_epi32(q->bias ? q->bias[r0 + r] : 0);
        const int32_t *a = acc + r * ldacc;
        uint8_t *yr = (uint8_t *)y + r * y_rs;
        for (int c = 0; c < nc; c += 16) {
            const int n = nc - c < 16 ? nc - c : 16;
            const __mmask16 mask = (__mmask16)(n == 16 ? 0xffff : (1u << n) - 1);
            const __m512i s = _mm512_add_epi32(_mm512_maskz_loadu_epi32(mask, a + c), vb);
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(s), vm);
            v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
            const __m128i out = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), vzp));
            if (y_cs == 1) {
                _mm_mask_storeu_epi8(yr + c, mask, out);
            } else {
                uint8_t bytes[16];
                _mm_storeu_si128((__m128i *)bytes, out);
                for (int i = 0; i < n; i++) yr[(c + i) * y_cs] = bytes[i];
            }
        }
    }
}
