/* The 256-entry byte table lookup with AVX-512 VBMI (the lookup itself: x86/vnni/qlut_vbmi.h).
   Compiled with -mavx512vbmi; only called when the CPU has it (kernels/misc_dispatch.c). */
#include "misc_kernels.h"
#include "x86/vnni/qlut_vbmi.h"

void oct_vbmi_qlut(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y) {
    const oct_vbmi_table t = oct_vbmi_table_load(table);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) _mm512_storeu_si512(y + i, oct_vbmi_lookup(&t, _mm512_loadu_si512(x + i)));
    if (i < n) {
        /* the tail under a mask: no read or write past n */
        const __mmask64 m = (1ull << (n - i)) - 1; /* n - i < 64 */
        _mm512_mask_storeu_epi8(y + i, m, oct_vbmi_lookup(&t, _mm512_maskz_loadu_epi8(m, x + i)));
    }
}
