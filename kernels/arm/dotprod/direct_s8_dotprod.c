/* Dot-product (SDOT) direct int8 convolution (ref/direct_conv.h): a register tile of 8 output
   channels x 3 output rows x 4 pixels (24 q-register int32 accumulators). One 16-byte load from the
   slab gives 4 pixels x 4 reduction bytes; SDOT by lane multiplies them by one output channel's 4
   weights and adds. SDOT multiplies int8 by int8, so this set's repack stores x - 128 (the uint8
   slab of ref with its top bit flipped): sum(w * (x - 128)) + 128 * sum(w) is ref's sum(w * x),
   exact modulo 2^32 like ref's, and the zero-point term becomes (x_zp - 128) * sum(w). The
   requantization is oct_neon_requant, bit-identical to ref's. */
#include <arm_neon.h>

#include "direct_isa.h"
#include "quant_isa.h"

enum { LANES = 4, NV = 3 };

void oct_dotprod_dconv_s8_repack(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                                 const oct_dconv_slab *sl, uint8_t *slab) {
    oct_ref_dconv_s8_repack(s, x, (uint8_t)(x_xor ^ 0x80), (uint8_t)(pad ^ 0x80), sl, slab);
}

/* y = requant(acc - (x_zp - 128) * wsum[m]) (or the int32 itself for ConvInteger), first n pixels. */
static void store_out(const oct_dconv_s8 *a, int32x4_t acc, int64_t m, int64_t off, int n) {
    const uint32_t corr = ((uint32_t)a->x_zp - 128u) * (uint32_t)a->wsum[m];
    int32_t v[LANES];
    vst1q_s32(v, vsubq_s32(acc, vdupq_n_s32((int32_t)corr)));
    if (!a->rq) {
        for (int l = 0; l < n; l++) ((int32_t *)a->y)[off + l] = v[l];
        return;
    }
    oct_neon_requant(v, LANES, (int)(a->rq_row0 + m), 1, n, a->rq, (uint8_t *)a->y + off, 0, 1);
}

static inline __attribute__((always_inline)) void tile(const oct_dconv_s8 *a, const uint8_t *slab,
                                                      const oct_dconv_slab *sl, const int8_t *wb, int64_t m0,
                                                      int64_t mc, int64_t od, int64_t oh, int64_t ow0, const int nv,
                                                      int n) {
    const oct_dconv_s8_shape *s = a->s;
    const oct_conv_geom *g = &s->g;
    const int64_t KD = g->k[0], KH = g->k[1], G = s->groups, TW = s->taps_w, dw4 = g->dil[2] * 4;
    const int64_t gstride = oct_dconv_slab_at(sl, 1, 0, 0, 0);
    int32x4_t acc[NV][OCT_DCONV_MB];
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 8
        for (int i = 0; i < OCT_DCONV_MB; i++) acc[j][i] = vdupq_n_s32(0);
    const int8_t *wk = wb;
    for (int64_t kd = 0; kd < KD; kd++) {
        const int64_t pd = od - sl->d0 + kd * g->dil[0];
        for (int64_t kh = 0; kh < KH; kh++) {
            const int8_t *p[NV];
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++)
                p[j] = (const int8_t *)slab + oct_dconv_slab_at(sl, 0, pd, oh + j - sl->h0 + kh * g->dil[1], ow0);
            for (int64_t grp = 0; grp < G; grp++) {
                for (int64_t kwt = 0; kwt < TW; kwt++) {
                    int8x16_t xv[NV];
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++) xv[j] = vld1q_s8(p[j] + kwt * dw4);
                    const int8x16_t w0 = vld1q_s8(wk), w1 = vld1q_s8(wk + 16);
#pragma GCC unroll 3
                    for (int j = 0; j < nv; j++) {
                        acc[j][0] = vdotq_laneq_s32(acc[j][0], xv[j], w0, 0);
                        acc[j][1] = vdotq_laneq_s32(acc[j][1], xv[j], w0, 1);
                        acc[j][2] = vdotq_laneq_s32(acc[j][2], xv[j], w0, 2);
                        acc[j][3] = vdotq_laneq_s32(acc[j][3], xv[j], w0, 3);
                        acc[j][4] = vdotq_laneq_s32(acc[j][4], xv[j], w1, 0);
                        acc[j][5] = vdotq_laneq_s32(acc[j][5], xv[j], w1, 1);
                        acc[j][6] = vdotq_laneq_s32(acc[j][6], xv[j], w1, 2);
                        acc[j][7] = vdotq_laneq_s32(acc[j][7], xv[j], w1, 3);
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
            if (i < mc) store_out(a, acc[j][i], m0 + i, (m0 + i) * out_vol + (od * OH + oh + j) * OW + ow0, n);
}

void oct_dotprod_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
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
            const int n = OW - ow0 < LANES ? (int)(OW - ow0) : LANES;
            if (rows == 3) tile(a, slab, sl, wb, m0, mc, od, oh, ow0, 3, n);
            else if (rows == 2) tile(a, slab, sl, wb, m0, mc, od, oh, ow0, 2, n);
            else tile(a, slab, sl, wb, m0, mc, od, oh, ow0, 1, n);
        }
    }
}
