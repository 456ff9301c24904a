/* NEON direct fp32 convolution (ref/direct_conv.h): a register tile of 8 output channels x 3 output
   rows x 4 pixels (24 q-register accumulators). Per (tap, input channel) it loads 3 input vectors
   and the 8 weights as two vectors, then 24 FMAs by lane. NEON has no masked loads: a tile whose
   taps reach outside the input row (the edges and the last, partial vector) reads a zero-padded
   copy of the row segment instead, so every pixel sees the same additions as ref. */
#include <arm_neon.h>

#include "direct_isa.h"

enum { LANES = 4, NV = 3, SEG = LANES + OCT_DCONV_REACH_MAX };

/* Rows outside the input read here: every lane a tap can reach from its start. */
static const float zero_row[SEG];

static inline float32x4_t act_vec(const oct_act *act, float32x4_t v) {
    switch (act->kind) {
    case 0: return v;
    case 1: return vmaxq_f32(v, vdupq_n_f32(0.f)); /* NaN -> 0, as ref's x > 0 ? x : 0 */
    default: {
        float t[LANES];
        vst1q_f32(t, v);
        for (int l = 0; l < LANES; l++) t[l] = oct_act_apply(act, t[l]);
        return vld1q_f32(t);
    }
    }
}

/* Epilogue and store of one accumulator: y = act(acc + res), the first n lanes. */
static inline void store_out(const oct_dconv_f32 *a, float32x4_t v, int64_t off, int n) {
    if (n == LANES) {
        if (a->res) v = vaddq_f32(v, vld1q_f32(a->res + off));
        vst1q_f32(a->y + off, act_vec(&a->act, v));
        return;
    }
    float t[LANES];
    vst1q_f32(t, v);
    for (int l = 0; l < n; l++) a->y[off + l] = oct_act_apply(&a->act, a->res ? t[l] + a->res[off + l] : t[l]);
}

/* Zero-padded copy of input columns [iw0, iw0 + len) of a row (NULL: a row outside the input). */
static void fill_segment(float *seg, const float *row, int64_t iw0, int64_t len, int64_t W) {
    for (int64_t t = 0; t < len; t++) {
        const int64_t iw = iw0 + t;
        seg[t] = row && iw >= 0 && iw < W ? row[iw] : 0.f;
    }
}

/* nv rows from oh, 4 pixels from ow0 (n of them stored). `padded`: read zero-padded segments. */
static inline __attribute__((always_inline)) void tile(const oct_dconv_f32 *a, const float *wb, const float *bias8,
                                                      int64_t mc, int64_t m0, int64_t od, int64_t oh, int64_t ow0,
                                                      const int nv, const int padded, int n) {
    const oct_conv_geom *g = &a->g;
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], C = a->channels;
    const int64_t H = g->in[1], W = g->in[2], dw = g->dil[2], in_vol = oct_geom_in_vol(g);
    const int64_t iw0 = ow0 - g->pad[2], seg_len = LANES + (KW - 1) * dw;
    const float32x4_t b0 = vld1q_f32(bias8), b1 = vld1q_f32(bias8 + 4);
    float32x4_t acc[NV][OCT_DCONV_MB];
    float seg[NV][SEG];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++) acc[j][i] = vdupq_laneq_f32(i < 4 ? b0 : b1, i & 3);
    for (int64_t kd = 0; kd < KD; kd++) {
        const int64_t id = od + kd * g->dil[0] - g->pad[0];
        if (id < 0 || id >= g->in[0]) continue;
        for (int64_t kh = 0; kh < KH; kh++) {
            const float *row[NV];
            int64_t step[NV];
            int any = 0;
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++) {
                const int64_t ih = oh + j + kh * g->dil[1] - g->pad[1];
                if (ih >= 0 && ih < H) {
                    row[j] = a->x + (id * H + ih) * W;
                    step[j] = in_vol;
                    any = 1;
                } else {
                    row[j] = NULL;
                    step[j] = 0;
                }
            }
            if (!any) continue;
            const float *wk = wb + (kd * KH + kh) * C * KW * OCT_DCONV_MB;
            for (int64_t c = 0; c < C; c++) {
                const float *p[NV];
#pragma GCC unroll 3
                for (int j = 0; j < nv; j++) {
                    if (padded) {
                        fill_segment(seg[j], row[j], iw0, seg_len, W);
                        p[j] = seg[j];
                    } else {
                        p[j] = row[j] ? row[j] + iw0 : zero_row;
                    }
                }
                for (int64_t kw = 0; kw < KW; kw++) {
                    float32x4_t xv[NV];
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++) xv[j] = vld1q_f32(p[j] + kw * dw);
                    const float32x4_t w0 = vld1q_f32(wk), w1 = vld1q_f32(wk + 4);
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++) {
                        acc[j][0] = vfmaq_laneq_f32(acc[j][0], xv[j], w0, 0);
                        acc[j][1] = vfmaq_laneq_f32(acc[j][1], xv[j], w0, 1);
                        acc[j][2] = vfmaq_laneq_f32(acc[j][2], xv[j], w0, 2);
                        acc[j][3] = vfmaq_laneq_f32(acc[j][3], xv[j], w0, 3);
                        acc[j][4] = vfmaq_laneq_f32(acc[j][4], xv[j], w1, 0);
                        acc[j][5] = vfmaq_laneq_f32(acc[j][5], xv[j], w1, 1);
                        acc[j][6] = vfmaq_laneq_f32(acc[j][6], xv[j], w1, 2);
                        acc[j][7] = vfmaq_laneq_f32(acc[j][7], xv[j], w1, 3);
                    }
                    wk += OCT_DCONV_MB;
                }
#pragma GCC unroll 3
                for (int j = 0; j < nv; j++)
                    if (row[j]) row[j] += step[j];
            }
        }
    }
    const int64_t out_vol = oct_geom_out_vol(g), OH = g->out[1], OW = g->out[2];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++)
            if (i < mc) store_out(a, acc[j][i], (m0 + i) * out_vol + (od * OH + oh + j) * OW + ow0, n);
}

void oct_neon_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh) {
    const oct_conv_geom *g = &a->g;
    const int64_t KW = g->k[2], W = g->in[2], OW = g->out[2], dw = g->dil[2], pw = g->pad[2];
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = a->outs - m0 < OCT_DCONV_MB ? a->outs - m0 : OCT_DCONV_MB;
    const float *wb = a->w + m0 * a->channels * oct_geom_k_vol(g);
    float bias8[OCT_DCONV_MB];
    for (int i = 0; i < OCT_DCONV_MB; i++) bias8[i] = a->bias && i < mc ? a->bias[m0 + i] : 0.f;
    for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
        const int n = OW - ow0 < LANES ? (int)(OW - ow0) : LANES;
        /* Every lane of every tap inside the row: read in place; else the padded copy. */
        const int padded = n < LANES || ow0 - pw < 0 || ow0 - pw + LANES - 1 + (KW - 1) * dw >= W;
        for (int64_t oh = oh0; oh < oh0 + nh; oh += NV) {
            const int64_t rows = oh0 + nh - oh < NV ? oh0 + nh - oh : NV;
            if (padded) {
                if (rows == 3) tile(a, wb, bias8, mc, m0, od, oh, ow0, 3, 1, n);
                else if (rows == 2) tile(a, wb, bias8, mc, m0, od, oh, ow0, 2, 1, n);
                else tile(a, wb, bias8, mc, m0, od, oh, ow0, 1, 1, n);
            } else {
                if (rows == 3) tile(a, wb, bias8, mc, m0, od, oh, ow0, 3, 0, n);
                else if (rows == 2) tile(a, wb, bias8, mc, m0, od, oh, ow0, 2, 0, n);
                else tile(a, wb, bias8, mc, m0, od, oh, ow0, 1, 0, n);
            }
        }
    }
}
