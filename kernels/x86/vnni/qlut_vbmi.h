/* An activation table (oct_requant.table, 256 bytes) applied to 64 bytes held in a zmm register,
   for the AVX-512 write-backs that map requantized bytes before they are stored. VPERMI2B picks
   64 bytes out of 128 by the low 7 bits of each index, so two of them cover both halves of the
   table and the index's top bit (VPMOVB2M) chooses between the two results: 4 instructions per 64
   bytes, with the table in 4 registers. kernels/x86/avx512/qlut_vbmi.c (the QLinearLut kernel) uses it too.

   The functions carry target("avx512vbmi") so that a library built for AVX-512 VNNI alone can
   hold them: only callers with the same target may inline them, and only when the CPU has VBMI
   (oct_cpu_has_vbmi) may they run. */
#ifndef OCT_QLUT_VBMI_H
#define OCT_QLUT_VBMI_H

#include <immintrin.h>
#include <stdint.h>

#define OCT_VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512vbmi")))

typedef struct {
    __m512i q0, q1, q2, q3; /* entries 0-63, 64-127, 128-191, 192-255 */
} oct_vbmi_table;

static inline OCT_VBMI_TARGET oct_vbmi_table oct_vbmi_table_load(const uint8_t table[256]) {
    return (oct_vbmi_table){_mm512_loadu_si512(table), _mm512_loadu_si512(table + 64),
                            _mm512_loadu_si512(table + 128), _mm512_loadu_si512(table + 192)};
}

/* table[b] for each byte b of idx. */
static inline OCT_VBMI_TARGET __m512i oct_vbmi_lookup(const oct_vbmi_table *t, __m512i idx) {
    const __m512i lo = _mm512_permutex2var_epi8(t->q0, idx, t->q1);
    const __m512i hi = _mm512_permutex2var_epi8(t->q2, idx, t->q3);
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
}

/* True if the CPU runs AVX-512 VBMI (the AVX-512 levels check the rest). */
static inline int oct_cpu_has_vbmi(void) { return __builtin_cpu_supports("avx512vbmi"); }

#endif
