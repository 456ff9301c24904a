/* AVX-512 direct fp32 convolution (ref/direct_conv.h): a register tile of 8 output channels x
   3 output rows x 16 pixels (24 zmm accumulators). Per (tap, input channel) it loads 3 input
   vectors and broadcasts 8 weights for 24 FMAs. Columns outside the input are masked off in the
   loads (masked lanes never fault), rows outside it read a static zero row, so the same order of
   additions as ref holds for every pixel. */
#include <immintrin.h>

#include "direct_isa.h"
#include "sgemm_avx512_act.h"

enum { LANES = 16, NV = 3 };

/* Rows outside the input read here: every lane a tap can reach from its start. */
static const float zero_row[OCT_DCONV_REACH_MAX + LANES];

/* Epilogue and store of one accumulator: y = act(acc + res), lanes in `mask`. */
static inline void store_out(const oct_dconv_f32 *a, __m512 v, int64_t off, __mmask16 mask) {
    if (a->res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a->res + off));
    v = oct_avx512_act(&a->act, v);
    _mm512_mask_storeu_ps(a->y + off, mask, v);
}

/* nv rows from oh, 16 pixels from ow0. km[kw]: the lanes of tap kw inside the input (used when
   `masked`; else every lane of every tap is inside). */
static inline __attribute__((always_inline)) void tile(const oct_dconv_f32 *a, const float *wb, const float *bias8,
                                                      int64_t mc, int64_t m0, int64_t od, int64_t oh, int64_t ow0,
                                                      const int nv, const int masked, const __mmask16 *km,
                                                      __mmask16 st) {
    const oct_conv_geom *g = &a->g;
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], C = a->channels;
    const int64_t H = g->in[1], W = g->in[2], dw = g->dil[2], in_vol = oct_geom_in_vol(g);
    __m512 acc[NV][OCT_DCONV_MB];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++) acc[j][i] = _mm512_set1_ps(bias8[i]);
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
            const float *wk = wb + (kd * KH + kh) * C * KW * OCT_DCONV_MB;
            for (int64_t c = 0; c < C; c++) {
                for (int64_t kw = 0; kw < KW; kw++) {
                    __m512 xv[NV];
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++)
                        xv[j] = masked ? _mm512_maskz_loadu_ps(km[kw], p[j] + kw * dw) : _mm512_loadu_ps(p[j] + kw * dw);
#pragma GCC unroll 8
                    for (int i = 0; i < OCT_DCONV_MB; i++) {
                        const __m512 wv = _mm512_set1_ps(wk[i]);
#pragma GCC unroll 3
                        for (int j = 0; j < nv; j++) acc[j][i] = _mm512_fmadd_ps(xv[j], wv, acc[j][i]);
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
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++)
            if (i < mc) store_out(a, acc[j][i], (m0 + i) * out_vol + (od * OH + oh + j) * OW + ow0, st);
}

void oct_avx512_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh) {
    const oct_conv_geom *g = &a->g;
    const int64_t KW = g->k[2], W = g->in[2], OW = g->out[2], dw = g->dil[2], pw = g->pad[2];
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = a->outs - m0 < OCT_DCONV_MB ? a->outs - m0 : OCT_DCONV_MB;
    const float *wb = a->w + m0 * a->channels * oct_geom_k_vol(g);
    float bias8[OCT_DCONV_MB];
    for (int i = 0; i < OCT_DCONV_MB; i++) bias8[i] = a->bias && i < mc ? a->bias[m0 + i] : 0.f;
    for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
        const int64_t n = OW - ow0 < LANES ? OW - ow0 : LANES;
        const __mmask16 st = (__mmask16)(n == LANES ? 0xffffu : (1u << n) - 1);
        __mmask16 km[OCT_DCONV_KW_MAX];
        int masked = n < LANES;
        for (int64_t kw = 0; kw < KW; kw++) {
            unsigned m = 0;
            for (int64_t l = 0; l < n; l++) {
                const int64_t iw = ow0 + l + kw * dw - pw;
                m |= (unsigned)(iw >= 0 && iw < W) << l;
            }
            km[kw] = (__mmask16)m;
            masked |= m != 0xffffu;
        }
        for (int64_t oh = oh0; oh < oh0 + nh; oh += NV) {
            const int64_t rows = oh0 + nh - oh < NV ? oh0 + nh - oh : NV;
            if (masked) {
                if (rows == 3) tile(a, wb, bias8, mc, m0, od, oh, ow0, 3, 1, km, st);
                else if (rows == 2) tile(a, wb, bias8, mc, m0, od, oh, ow0, 2, 1, km, st);
                else tile(a, wb, bias8, mc, m0, od, oh, ow0, 1, 1, km, st);
            } else {
                if (rows == 3) tile(a, wb, bias8, mc, m0, od, oh, ow0, 3, 0, km, st);
                else if (rows == 2) tile(a, wb, bias8, mc, m0, od, oh, ow0, 2, 0, km, st);
                else tile(a, wb, bias8, mc, m0, od, oh, ow0, 1, 0, km, st);
            }
        }
    }
}
