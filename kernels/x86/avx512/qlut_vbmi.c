/* The 256-entry byte table lookup with AVX-512 VBMI: VPERMI2B picks 64 bytes out of a 128-byte
   table by the low 7 bits of each index, so two of them cover both halves of the table and the
   index's top bit (VPMOVB2M) chooses between the two results. Compiled with -mavx512vbmi; only
   called when the CPU has it (kernels/misc_dispatch.c). */
#include <immintrin.h>

#include "misc_kernels.h"

void oct_vbmi_qlut(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y) {
    const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64),
                  t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i idx = _mm512_loadu_si512(x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1);
        const __m512i hi = _mm512_permutex2var_epi8(t2, idx, t3);
        _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
    }
    if (i < n) {
        /* the tail under a mask: no read or write past n */
        const __mmask64 m = (1ull << (n - i)) - 1; /* n - i < 64 */
        const __m512i idx = _mm512_maskz_loadu_epi8(m, x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1);
        const __m512i hi = _mm512_permutex2var_epi8(t2, idx, t3);
        _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
    }
}
