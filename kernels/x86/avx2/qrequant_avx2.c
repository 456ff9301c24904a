/* AVX2 requantization, bit-identical to oct_ref_requant: the same float32 operations in the same
   order, 8 lanes at a time. VCVTPS2DQ rounds by MXCSR (default nearest-even, like rintf); VMAXPS
   returns its second operand for NaN, which gives ref's qmin; the low byte of each lane is kept,
   like ref's cast to 8 bits. Column tails go through a padded copy so they take the same path; an
   activation table (q->table) maps the bytes one by one on their way out. */
#include <immintrin.h>

#include "quant_isa.h"

void oct_avx2_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                      void *y, int64_t y_rs, int64_t y_cs) {
    float lo, hi;
    oct_qt_requant_bounds(q, &lo, &hi);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i vzp = _mm256_set1_epi32(q->zp);
    /* Byte 0 of each int32 to the low 4 bytes of each 128-bit lane, then the two lanes together. */
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    for (int r = 0; r < nr; r++) {
        const __m256 vm = _mm256_set1_ps(q->scale[q->scale_per_row ? r0 + r : 0]);
        const __m256i vb = _mm256_set1_epi32(q->bias ? q->bias[r0 + r] : 0);
        const int32_t *a = acc + r * ldacc;
        uint8_t *yr = (uint8_t *)y + r * y_rs;
        for (int c = 0; c < nc; c += 8) {
            const int n = nc - c < 8 ? nc - c : 8;
            __m256i s;
            if (n == 8) {
                s = _mm256_loadu_si256((const __m256i *)(a + c));
            } else {
                int32_t part[8] = {0};
                memcpy(part, a + c, sizeof(int32_t) * (size_t)n);
                s = _mm256_loadu_si256((const __m256i *)part);
            }
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s, vb)), vm);
            v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
            const __m256i out = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
            const __m128i bytes =
                _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(out, low_bytes), join));
            if (n == 8 && y_cs == 1 && !q->table) {
                _mm_storel_epi64((__m128i *)(yr + c), bytes);
            } else {
                uint8_t b8[16];
                _mm_storeu_si128((__m128i *)b8, bytes);
                for (int i = 0; i < n; i++) yr[(c + i) * y_cs] = q->table ? q->table[b8[i]] : b8[i];
            }
        }
    }
}
