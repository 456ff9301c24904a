/* AVX-512 requantization, bit-identical to oct_ref_requant: the same float32 operations in the same
   order, 16 lanes at a time. VCVTPS2DQ rounds by MXCSR, whose default is nearest-even like rintf;
   VMAXPS returns its second operand for NaN, which gives ref's qmin; VPMOVDB truncates like ref's
   cast to 8 bits. An activation table (q->table) maps 64 bytes at a time in registers where the CPU
   has VBMI (qlut_vbmi.h), else byte by byte on the way out. */
#include <immintrin.h>

#include "quant_isa.h"
#include "qlut_vbmi.h"

/* The bytes of 16 values a (lanes outside mask read as 0) of a row with bias vb, multiplier vm. */
static inline __attribute__((always_inline)) __m128i requant16(const int32_t *a, __mmask16 mask, __m512i vb,
                                                             __m512 vm, __m512 vlo, __m512 vhi, __m512i vzp) {
    const __m512i s = _mm512_add_epi32(_mm512_maskz_loadu_epi32(mask, a), vb);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(s), vm);
    v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), vzp));
}

static inline __mmask16 lanes16(int n) { return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1); }

/* With a table, on a CPU with VBMI: 64 columns of a row requantized into one register, mapped, stored. */
static OCT_VBMI_TARGET void requant_table_vbmi(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc,
                                               const oct_requant *q, void *y, int64_t y_rs, int64_t y_cs) {
    float lo, hi;
    oct_qt_requant_bounds(q, &lo, &hi);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512i vzp = _mm512_set1_epi32(q->zp);
    const oct_vbmi_table tab = oct_vbmi_table_load(q->table);
    for (int r = 0; r < nr; r++) {
        const __m512 vm = _mm512_set1_ps(q->scale[q->scale_per_row ? r0 + r : 0]);
        const __m512i vb = _mm512_set1_epi32(q->bias ? q->bias[r0 + r] : 0);
        const int32_t *a = acc + r * ldacc;
        uint8_t *yr = (uint8_t *)y + r * y_rs;
        for (int c = 0; c < nc; c += 64) {
            const int n = nc - c < 64 ? nc - c : 64;
            __m512i v = _mm512_castsi128_si512(requant16(a + c, lanes16(n), vb, vm, vlo, vhi, vzp));
            if (n > 16) v = _mm512_inserti32x4(v, requant16(a + c + 16, lanes16(n - 16), vb, vm, vlo, vhi, vzp), 1);
            if (n > 32) v = _mm512_inserti32x4(v, requant16(a + c + 32, lanes16(n - 32), vb, vm, vlo, vhi, vzp), 2);
            if (n > 48) v = _mm512_inserti32x4(v, requant16(a + c + 48, lanes16(n - 48), vb, vm, vlo, vhi, vzp), 3);
            v = oct_vbmi_lookup(&tab, v);
            if (y_cs == 1) {
                _mm512_mask_storeu_epi8(yr + c, n == 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1, v);
            } else {
                uint8_t bytes[64];
                _mm512_storeu_si512(bytes, v);
                for (int i = 0; i < n; i++) yr[(c + i) * y_cs] = bytes[i];
            }
        }
    }
}

void oct_avx512_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                        void *y, int64_t y_rs, int64_t y_cs) {
    if (q->table && oct_cpu_has_vbmi()) {
        requant_table_vbmi(acc, ldacc, r0, nr, nc, q, y, y_rs, y_cs);
        return;
    }
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
            const __m128i out = requant16(a + c, lanes16(n), vb, vm, vlo, vhi, vzp);
            if (y_cs == 1 && !q->table) {
                _mm_mask_storeu_epi8(yr + c, lanes16(n), out);
            } else {
                uint8_t bytes[16];
                _mm_storeu_si128((__m128i *)bytes, out);
                for (int i = 0; i < n; i++) yr[(c + i) * y_cs] = q->table ? q->table[bytes[i]] : bytes[i];
            }
        }
    }
}
