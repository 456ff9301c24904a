/* AVX2 direct fp32 convolution (ref/direct_conv.h): the 8 channels of a weight block run as two
   register tiles of 4 output channels x 3 output rows x 8 pixels (12 ymm accumulators, 3 input
   vectors, 1 broadcast weight). Edge columns use VMASKMOVPS, whose masked lanes never fault; rows
   outside the input read a static zero row. */
#include <immintrin.h>

#include "direct_isa.h"

enum { LANES = 8, NV = 3, HALF = 4 };

static const float zero_row[OCT_DCONV_REACH_MAX + LANES];

static inline __m256i lane_mask(int64_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

static inline void store_out(const oct_dconv_f32 *a, __m256 v, int64_t off, __m256i mask, int full) {
    if (a->res)
        v = _mm256_add_ps(v, full ? _mm256_loadu_ps(a->res + off) : _mm256_maskload_ps(a->res + off, mask));
    switch (a->act.kind) {
    case 0: break;
    case 1: v = _mm256_max_ps(v, _mm256_setzero_ps()); break;
    case 2: v = _mm256_min_ps(_mm256_set1_ps(a->act.beta), _mm256_max_ps(_mm256_set1_ps(a->act.alpha), v)); break;
    case 3: {
        const __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
        v = _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(a->act.alpha)), neg);
        break;
    }
    default: {
        float t[LANES];
        _mm256_storeu_ps(t, v);
        for (int l = 0; l < LANES; l++) t[l] = oct_act_apply(&a->act, t[l]);
        v = _mm256_loadu_ps(t);
        break;
    }
    }
    if (full) _mm256_storeu_ps(a->y + off, v);
    else _mm256_maskstore_ps(a->y + off, mask, v);
}

/* Channels [half*4, half*4+4) of the block, nv rows from oh, 8 pixels from ow0. */
static inline __attribute__((always_inline)) void tile(const oct_dconv_f32 *a, const float *wb, const float *bias8,
                                                      int64_t mc, int64_t m0, int half, int64_t od, int64_t oh,
                                                      int64_t ow0, const int nv, const int masked,
                                                      const __m256i *km, __m256i st, int full) {
    const oct_conv_geom *g = &a->g;
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], C = a->channels;
    const int64_t H = g->in[1], W = g->in[2], dw = g->dil[2], in_vol = oct_geom_in_vol(g);
    __m256 acc[NV][HALF];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 4
        for (int i = 0; i < HALF; i++) acc[j][i] = _mm256_set1_ps(bias8[half * HALF + i]);
    for (int64_t kd = 0; kd < KD; kd++) {
        const int64_t id = od + kd * g->dil[0] - g->pad[0];
        if (id < 0 || id >= g->in[0]) continue;
        for (int64_t kh = 0; kh < KH; kh++) {
            const float *p[NV];
            int64_t step[NV];
            int any = 0;
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++) {
                const int64_t ih = oh + j + kh * g->dil[1] - g->pad[1];
                if (ih >= 0 && ih < H) {
                    p[j] = a->x + (id * H + ih) * W + ow0 - g->pad[2];
                    step[j] = in_vol;
                    any = 1;
                } else {
                    p[j] = zero_row;
                    step[j] = 0;
                }
            }
            if (!any) continue;
            const float *wk = wb + (kd * KH + kh) * C * KW * OCT_DCONV_MB + half * HALF;
            for (int64_t c = 0; c < C; c++) {
                for (int64_t kw = 0; kw < KW; kw++) {
                    __m256 xv[NV];
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++)
                        xv[j] = masked ? _mm256_maskload_ps(p[j] + kw * dw, km[kw]) : _mm256_loadu_ps(p[j] + kw * dw);
#pragma GCC unroll 4
                    for (int i = 0; i < HALF; i++) {
                        const __m256 wv = _mm256_broadcast_ss(wk + i);
#pragma GCC unroll 3
                        for (int j = 0; j < nv; j++) acc[j][i] = _mm256_fmadd_ps(xv[j], wv, acc[j][i]);
                    }
                    wk += OCT_DCONV_MB;
                }
#pragma GCC unroll 3
                for (int j = 0; j < nv; j++) p[j] += step[j];
            }
        }
    }
    const int64_t out_vol = oct_geom_out_vol(g), OH = g->out[1], OW = g->out[2];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 4
        for (int i = 0; i < HALF; i++)
            if (half * HALF + i < mc)
                store_out(a, acc[j][i], (m0 + half * HALF + i) * out_vol + (od * OH + oh + j) * OW + ow0, st, full);
}

void oct_avx2_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh) {
    const oct_conv_geom *g = &a->g;
    const int64_t KW = g->k[2], W = g->in[2], OW = g->out[2], dw = g->dil[2], pw = g->pad[2];
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = a->outs - m0 < OCT_DCONV_MB ? a->outs - m0 : OCT_DCONV_MB;
    const float *wb = a->w + m0 * a->channels * oct_geom_k_vol(g);
    float bias8[OCT_DCONV_MB];
    for (int i = 0; i < OCT_DCONV_MB; i++) bias8[i] = a->bias && i < mc ? a->bias[m0 + i] : 0.f;
    const int halves = mc > HALF ? 2 : 1;
    for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
        const int64_t n = OW - ow0 < LANES ? OW - ow0 : LANES;
        const int full = n == LANES;
        const __m256i st = lane_mask(n);
        __m256i km[OCT_DCONV_KW_MAX];
        int masked = !full;
        for (int64_t kw = 0; kw < KW; kw++) {
            /* lanes l < n with 0 <= ow0 + l + kw*dw - pw < W */
            const int64_t off = ow0 + kw * dw - pw;
            int64_t lo = -off, hi = W - off;
            if (lo < 0) lo = 0;
            if (hi > n) hi = n;
            if (hi < lo) hi = lo;
            km[kw] = _mm256_andnot_si256(lane_mask(lo), lane_mask(hi));
            masked |= lo > 0 || hi < LANES;
        }
        for (int64_t oh = oh0; oh < oh0 + nh; oh += NV) {
            const int64_t rows = oh0 + nh - oh < NV ? oh0 + nh - oh : NV;
            for (int half = 0; half < halves; half++) {
                if (masked) {
                    if (rows == 3) tile(a, wb, bias8, mc, m0, half, od, oh, ow0, 3, 1, km, st, full);
                    else if (rows == 2) tile(a, wb, bias8, mc, m0, half, od, oh, ow0, 2, 1, km, st, full);
                    else tile(a, wb, bias8, mc, m0, half, od, oh, ow0, 1, 1, km, st, full);
                } else {
                    if (rows == 3) tile(a, wb, bias8, mc, m0, half, od, oh, ow0, 3, 0, km, st, full);
                    else if (rows == 2) tile(a, wb, bias8, mc, m0, half, od, oh, ow0, 2, 0, km, st, full);
                    else tile(a, wb, bias8, mc, m0, half, od, oh, ow0, 1, 0, km, st, full);
                }
            }
        }
    }
}
