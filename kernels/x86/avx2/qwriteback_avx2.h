/* The fused write-back of the 256-bit int8 sets, AVX2 and AVX-VNNI (oct_qwriteback_fn): zero-point
   fix-up and requantization of a micro-tile straight from the raw sums, 8 lanes at a time, with
   the very operations of oct_avx2_requant (bit-identical to ref, see qrequant_avx2.c). Whole
   tiles with contiguous rows are stored directly; the rest, and every tile with an activation table
   (rq->table, mapped byte by byte there), goes through a stage and oct_qt_tile_store. */
#ifndef OCT_QWRITEBACK_AVX2_H
#define OCT_QWRITEBACK_AVX2_H

#include <immintrin.h>

#include "quant_isa.h"

static inline void oct_avx2_writeback(const int32_t *acc, int nv, int mr, const oct_qt_tile *t) {
    const oct_qt_rows *rw = t->rows;
    const int full = t->lo == 0 && t->hi == mr && t->cols == nv * 8 && t->y_cs == 1 &&
                     !(t->rq && t->rq->table); /* a table maps in oct_qt_tile_store */
    _Alignas(64) int32_t stage[OCT_QT_MR_MAX * OCT_QT_NR_MAX];
    /* Byte 0 of each int32 to the low 4 bytes of each 128-bit lane, then the two lanes together. */
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    const __m256 vlo = _mm256_set1_ps(t->flo), vhi = _mm256_set1_ps(t->fhi);
    const __m256i vzp = _mm256_set1_epi32(t->rq ? t->rq->zp : 0);
    for (int i = t->lo; i < t->hi; i++) {
        const __m256i add = _mm256_set1_epi32((int32_t)rw->add[i]), a = _mm256_set1_epi32((int32_t)rw->a[i]);
        const __m256i zw = _mm256_set1_epi32((int32_t)rw->zw[i]), vb = _mm256_set1_epi32(rw->bias[i]);
        const __m256 vm = _mm256_set1_ps(rw->m[i]);
        for (int j = 0; j < nv; j++) {
            __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * OCT_QT_NR_MAX + j * 8)), add);
            if (t->zx) v = _mm256_add_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(t->zx + j * 8)), a));
            if (t->cs) v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(t->cs + j * 8)), zw));
            if (!t->rq) {
                int32_t *dst = full ? (int32_t *)t->y + i * t->y_rs + j * 8 : stage + i * OCT_QT_NR_MAX + j * 8;
                _mm256_storeu_si256((__m256i *)dst, v);
                continue;
            }
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(v, vb)), vm);
            f = _mm256_min_ps(_mm256_max_ps(f, vlo), vhi);
            const __m256i out = _mm256_add_epi32(_mm256_cvtps_epi32(f), vzp);
            const __m128i bytes =
                _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(out, low_bytes), join));
            uint8_t *dst = full ? (uint8_t *)t->y + i * t->y_rs + j * 8 : (uint8_t *)stage + i * OCT_QT_NR_MAX + j * 8;
            _mm_storel_epi64((__m128i *)dst, bytes);
        }
    }
    if (!full) oct_qt_tile_store(t, stage, t->rq ? 1 : 4);
}

#endif
