/* The fused write-back of the AVX-512 int8 set (oct_qwriteback_fn): zero-point fix-up and
   requantization of a micro-tile straight from the raw sums, 16 lanes at a time, with the very
   operations of oct_avx512_requant (bit-identical to ref, see qrequant_avx512.c). Whole tiles
   with contiguous rows are stored directly; the rest goes through a stage and
   oct_qt_tile_store, and so does a tile with an activation table (rq->table, mapped byte by byte
   there): this is the edge path (cut row blocks, zero-point terms per column, the GEMV), the
   VNNI set maps the table of its whole row blocks in registers (qgemm_vnni.c). */
#ifndef OCT_QWRITEBACK_AVX512_H
#define OCT_QWRITEBACK_AVX512_H

#include <immintrin.h>

#include "quant_isa.h"

static inline void oct_avx512_writeback(const int32_t *acc, int nv, int mr, const oct_qt_tile *t) {
    const oct_qt_rows *rw = t->rows;
    const int full = t->lo == 0 && t->hi == mr && t->cols == nv * 16 && t->y_cs == 1 &&
                     !(t->rq && t->rq->table); /* a table maps in oct_qt_tile_store */
    _Alignas(64) int32_t stage[OCT_QT_MR_MAX * OCT_QT_NR_MAX];
    __m512i zx[OCT_QT_NR_MAX / 16], cs[OCT_QT_NR_MAX / 16];
    for (int j = 0; j < nv; j++) {
        zx[j] = t->zx ? _mm512_loadu_si512(t->zx + j * 16) : _mm512_setzero_si512();
        cs[j] = t->cs ? _mm512_loadu_si512(t->cs + j * 16) : _mm512_setzero_si512();
    }
    const __m512 vlo = _mm512_set1_ps(t->flo), vhi = _mm512_set1_ps(t->fhi);
    const __m512i vzp = _mm512_set1_epi32(t->rq ? t->rq->zp : 0);
    for (int i = t->lo; i < t->hi; i++) {
        const __m512i add = _mm512_set1_epi32((int32_t)rw->add[i]), a = _mm512_set1_epi32((int32_t)rw->a[i]);
        const __m512i zw = _mm512_set1_epi32((int32_t)rw->zw[i]), vb = _mm512_set1_epi32(rw->bias[i]);
        const __m512 vm = _mm512_set1_ps(rw->m[i]);
        for (int j = 0; j < nv; j++) {
            __m512i v = _mm512_add_epi32(_mm512_loadu_si512(acc + i * OCT_QT_NR_MAX + j * 16), add);
            if (t->zx) v = _mm512_add_epi32(v, _mm512_mullo_epi32(zx[j], a));
            if (t->cs) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(cs[j], zw));
            if (!t->rq) {
                int32_t *dst = full ? (int32_t *)t->y + i * t->y_rs + j * 16 : stage + i * OCT_QT_NR_MAX + j * 16;
                _mm512_storeu_si512(dst, v);
                continue;
            }
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(v, vb)), vm);
            f = _mm512_min_ps(_mm512_max_ps(f, vlo), vhi);
            const __m128i out = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), vzp));
            uint8_t *dst = full ? (uint8_t *)t->y + i * t->y_rs + j * 16 : (uint8_t *)stage + i * OCT_QT_NR_MAX + j * 16;
            _mm_storeu_si128((__m128i *)dst, out);
        }
    }
    if (!full) oct_qt_tile_store(t, stage, t->rq ? 1 : 4);
}

#endif
