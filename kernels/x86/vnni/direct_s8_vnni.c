/* AVX-512 VNNI direct int8 convolution (ref/direct_conv.h): a register tile of 8 output channels x
   3 output rows x 16 pixels (24 zmm int32 accumulators). One 64-byte load from the slab gives 16
   pixels x 4 reduction bytes; VPDPBUSD multiplies them by one output channel's 4 weights
   (broadcast) and adds, wrapping like ref. The zero-point term and the requantization follow
   oct_ref_requant's float sequence (VCVTPS2DQ rounds to nearest even by default MXCSR; VMAXPS
   returns its second operand on NaN, which is ref's qmin; VPMOVDB truncates like ref's cast). A
   fused activation table (oct_requant.table) maps the bytes as they are stored; the other twins
   requantize through oct_*_requant, which map them too. */
#include <immintrin.h>
#include <string.h>

#include "direct_isa.h"

enum { LANES = 16, NV = 3 };

static inline void store_out(const oct_dconv_s8 *a, __m512i acc, int64_t m, int64_t off, __mmask16 st) {
    const uint32_t corr = (uint32_t)a->x_zp * (uint32_t)a->wsum[m];
    __m512i v = _mm512_sub_epi32(acc, _mm512_set1_epi32((int32_t)corr));
    if (!a->rq) {
        _mm512_mask_storeu_epi32((int32_t *)a->y + off, st, v);
        return;
    }
    const oct_requant *q = a->rq;
    const int64_t row = a->rq_row0 + m;
    v = _mm512_add_epi32(v, _mm512_set1_epi32(q->bias ? q->bias[row] : 0));
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(q->scale[q->scale_per_row ? row : 0]));
    f = _mm512_max_ps(f, _mm512_set1_ps((float)(q->qmin - q->zp)));
    f = _mm512_min_ps(f, _mm512_set1_ps((float)(q->qmax - q->zp)));
    const __m512i out = _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(q->zp));
    if (!q->table) {
        _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)a->y + off, st, out);
        return;
    }
    /* a fused activation table: the lanes' bytes one by one (no model runs this path with one) */
    uint8_t bytes[LANES];
    _mm_storeu_si128((__m128i *)bytes, _mm512_cvtepi32_epi8(out));
    uint8_t *y = (uint8_t *)a->y + off;
    for (int i = 0; i < LANES; i++)
        if (st >> i & 1) y[i] = q->table[bytes[i]];
}

static inline __attribute__((always_inline)) void tile(const oct_dconv_s8 *a, const uint8_t *slab,
                                                      const oct_dconv_slab *sl, const int8_t *wb, int64_t m0,
                                                      int64_t mc, int64_t od, int64_t oh, int64_t ow0, const int nv,
                                                      __mmask16 st) {
    const oct_dconv_s8_shape *s = a->s;
    const oct_conv_geom *g = &s->g;
    const int64_t KD = g->k[0], KH = g->k[1], G = s->groups, TW = s->taps_w, dw4 = g->dil[2] * 4;
    const int64_t gstride = oct_dconv_slab_at(sl, 1, 0, 0, 0);
    __m512i acc[NV][OCT_DCONV_MB];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++) acc[j][i] = _mm512_setzero_si512();
    const int8_t *wk = wb;
    for (int64_t kd = 0; kd < KD; kd++) {
        const int64_t pd = od - sl->d0 + kd * g->dil[0];
        for (int64_t kh = 0; kh < KH; kh++) {
            const uint8_t *p[NV];
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++) p[j] = slab + oct_dconv_slab_at(sl, 0, pd, oh + j - sl->h0 + kh * g->dil[1], ow0);
            for (int64_t grp = 0; grp < G; grp++) {
                for (int64_t kwt = 0; kwt < TW; kwt++) {
                    __m512i xv[NV];
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++) xv[j] = _mm512_loadu_si512(p[j] + kwt * dw4);
#pragma GCC unroll 8
                    for (int i = 0; i < OCT_DCONV_MB; i++) {
                        int32_t wq;
                        memcpy(&wq, wk + i * 4, 4);
                        const __m512i wv = _mm512_set1_epi32(wq);
#pragma GCC unroll 3
                        for (int j = 0; j < nv; j++) acc[j][i] = _mm512_dpbusd_epi32(acc[j][i], xv[j], wv);
                    }
                    wk += OCT_DCONV_MB * 4;
                }
#pragma GCC unroll 3
                for (int j = 0; j < nv; j++) p[j] += gstride;
            }
        }
    }
    const int64_t out_vol = oct_geom_out_vol(g), OH = g->out[1], OW = g->out[2];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++)
            if (i < mc) store_out(a, acc[j][i], m0 + i, (m0 + i) * out_vol + (od * OH + oh + j) * OW + ow0, st);
}

void oct_vnni_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                       int64_t od, int64_t oh0, int64_t nh) {
    const oct_dconv_s8_shape *s = a->s;
    const int64_t OW = s->g.out[2];
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = s->outs - m0 < OCT_DCONV_MB ? s->outs - m0 : OCT_DCONV_MB;
    const int64_t taps = s->g.k[0] * s->g.k[1] * s->groups * s->taps_w;
    const int8_t *wb = (const int8_t *)a->w + mblk * taps * OCT_DCONV_MB * 4;
    for (int64_t oh = oh0; oh < oh0 + nh; oh += NV) {
        const int64_t rows = oh0 + nh - oh < NV ? oh0 + nh - oh : NV;
        for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
            const int64_t n = OW - ow0 < LANES ? OW - ow0 : LANES;
            const __mmask16 st = (__mmask16)(n == LANES ? 0xffffu : (1u << n) - 1);
            if (rows == 3) tile(a, slab, sl, wb, m0, mc, od, oh, ow0, 3, st);
            else if (rows == 2) tile(a, slab, sl, wb, m0, mc, od, oh, ow0, 2, st);
            else tile(a, slab, sl, wb, m0, mc, od, oh, ow0, 1, st);
        }
    }
}
