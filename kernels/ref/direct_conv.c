/* Reference direct convolution (see direct_conv.h): the packing shared by every twin and the
   portable kernels the SIMD twins are tested against. */
#include <string.h>

#include "direct_conv.h"

/* ---- fp32 ------------------------------------------------------------------------------------ */

size_t oct_dconv_f32_packed_floats(int64_t outs, int64_t channels, int64_t kvol) {
    if (outs < 1 || channels < 1 || kvol < 1) return 0;
    const uint64_t blocks = ((uint64_t)outs + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    const uint64_t per = (uint64_t)channels * (uint64_t)kvol;
    if (per > (SIZE_MAX / sizeof(float)) / OCT_DCONV_MB / blocks) return 0;
    return (size_t)(blocks * OCT_DCONV_MB * per);
}

void oct_dconv_f32_pack(const oct_conv_geom *g, int64_t outs, int64_t channels, const float *w, float *packed) {
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], kvol = KD * KH * KW;
    const int64_t blocks = (outs + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    float *p = packed;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t kd = 0; kd < KD; kd++)
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t c = 0; c < channels; c++)
                    for (int64_t kw = 0; kw < KW; kw++)
                        for (int64_t i = 0; i < OCT_DCONV_MB; i++) {
                            const int64_t m = b * OCT_DCONV_MB + i;
                            *p++ = m < outs ? w[(m * channels + c) * kvol + (kd * KH + kh) * KW + kw] : 0.f;
                        }
}

void oct_ref_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh) {
    const oct_conv_geom *g = &a->g;
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], C = a->channels;
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    const int64_t in_vol = oct_geom_in_vol(g), out_vol = oct_geom_out_vol(g);
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = a->outs - m0 < OCT_DCONV_MB ? a->outs - m0 : OCT_DCONV_MB;
    const float *wb = a->w + m0 * C * KD * KH * KW;
    for (int64_t oh = oh0; oh < oh0 + nh; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            float acc[OCT_DCONV_MB];
            for (int64_t i = 0; i < mc; i++) acc[i] = a->bias ? a->bias[m0 + i] : 0.f;
            for (int64_t kd = 0; kd < KD; kd++) {
                const int64_t id = od + kd * g->dil[0] - g->pad[0];
                if (id < 0 || id >= g->in[0]) continue;
                for (int64_t kh = 0; kh < KH; kh++) {
                    const int64_t ih = oh + kh * g->dil[1] - g->pad[1];
                    if (ih < 0 || ih >= H) continue;
                    const float *wk = wb + (kd * KH + kh) * C * KW * OCT_DCONV_MB;
                    for (int64_t c = 0; c < C; c++) {
                        const float *xr = a->x + c * in_vol + (id * H + ih) * W;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            const int64_t iw = ow + kw * g->dil[2] - g->pad[2];
                            if (iw < 0 || iw >= W) continue;
                            const float *wt = wk + (c * KW + kw) * OCT_DCONV_MB;
                            for (int64_t i = 0; i < mc; i++) acc[i] += wt[i] * xr[iw];
                        }
                    }
                }
            }
            const int64_t at = (od * OH + oh) * OW + ow;
            for (int64_t i = 0; i < mc; i++) {
                const int64_t o = (m0 + i) * out_vol + at;
                a->y[o] = oct_act_apply(&a->act, a->res ? acc[i] + a->res[o] : acc[i]);
            }
        }
}

/* ---- int8: layout ----------------------------------------------------------------------------- */

void oct_dconv_s8_shape_init(oct_dconv_s8_shape *s, const oct_conv_geom *g, int64_t channels, int64_t outs) {
    s->g = *g;
    s->channels = channels;
    s->outs = outs;
    const int64_t KW = g->k[2];
    const int64_t by_channel = (channels + 3) / 4 * KW, by_pair = (channels * KW + 3) / 4;
    s->fold = channels < 3 && by_pair < by_channel;
    s->groups = s->fold ? by_pair : (channels + 3) / 4;
    s->taps_w = s->fold ? 1 : KW;
}

/* Bytes the kernels may read past the last slab pixel (a vector of up to 16 pixels from the last
   column of a row). */
enum { SLAB_TAIL = 128 };

size_t oct_dconv_slab_init(const oct_dconv_s8_shape *s, int64_t d0, int64_t nd, int64_t h0, int64_t nh,
                           oct_dconv_slab *sl) {
    const oct_conv_geom *g = &s->g;
    sl->d0 = d0;
    sl->nd = nd;
    sl->h0 = h0;
    sl->nh = nh;
    sl->dp = nd + (g->k[0] - 1) * g->dil[0];
    sl->hp = nh + (g->k[1] - 1) * g->dil[1];
    sl->wp = g->out[2] + (s->taps_w - 1) * g->dil[2];
    const uint64_t px = (uint64_t)sl->dp * (uint64_t)sl->hp, row = (uint64_t)sl->wp * 4 * (uint64_t)s->groups;
    if (!px || !row || px > (SIZE_MAX / 2) / row) return 0;
    return (size_t)(px * row) + SLAB_TAIL;
}

int8_t oct_dconv_s8_weight(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, int64_t m, int64_t kd,
                           int64_t kh, int64_t grp, int64_t kwt, int lane) {
    const int64_t KW = s->g.k[2], e = grp * 4 + lane;
    const int64_t c = s->fold ? e / KW : e, kw = s->fold ? e % KW : kwt;
    if (m >= s->outs || c >= s->channels) return 0;
    const uint8_t v = w[(((m * s->channels + c) * s->g.k[0] + kd) * s->g.k[1] + kh) * KW + kw];
    return (int8_t)(w_u8 ? v ^ 0x80 : v);
}

size_t oct_dconv_s8_quad_bytes(const oct_dconv_s8_shape *s) {
    const uint64_t blocks = ((uint64_t)s->outs + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    const uint64_t taps = (uint64_t)s->g.k[0] * (uint64_t)s->g.k[1] * (uint64_t)s->groups * (uint64_t)s->taps_w;
    if (!blocks || !taps || taps > (SIZE_MAX / 4) / (OCT_DCONV_MB * 4) / blocks) return 0;
    return (size_t)(blocks * taps * OCT_DCONV_MB * 4);
}

void oct_dconv_s8_quad_pack(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, void *buf, int32_t *wsum) {
    const int64_t blocks = (s->outs + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    int8_t *p = buf;
    for (int64_t m = 0; m < s->outs; m++) wsum[m] = 0;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t kd = 0; kd < s->g.k[0]; kd++)
            for (int64_t kh = 0; kh < s->g.k[1]; kh++)
                for (int64_t grp = 0; grp < s->groups; grp++)
                    for (int64_t kwt = 0; kwt < s->taps_w; kwt++)
                        for (int64_t i = 0; i < OCT_DCONV_MB; i++)
                            for (int lane = 0; lane < 4; lane++) {
                                const int64_t m = b * OCT_DCONV_MB + i;
                                const int8_t v = oct_dconv_s8_weight(s, w, w_u8, m, kd, kh, grp, kwt, lane);
                                if (m < s->outs) wsum[m] += v;
                                *p++ = v;
                            }
}

void oct_ref_dconv_s8_repack(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                             const oct_dconv_slab *sl, uint8_t *slab) {
    const oct_conv_geom *g = &s->g;
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2], KW = g->k[2], in_vol = oct_geom_in_vol(g);
    for (int64_t grp = 0; grp < s->groups; grp++)
        for (int64_t pd = 0; pd < sl->dp; pd++) {
            const int64_t id = sl->d0 - g->pad[0] + pd;
            for (int64_t ph = 0; ph < sl->hp; ph++) {
                const int64_t ih = sl->h0 - g->pad[1] + ph;
                const int row_in = id >= 0 && id < D && ih >= 0 && ih < H;
                uint8_t *out = slab + oct_dconv_slab_at(sl, grp, pd, ph, 0);
                for (int64_t pw = 0; pw < sl->wp; pw++)
                    for (int lane = 0; lane < 4; lane++) {
                        const int64_t e = grp * 4 + lane;
                        const int64_t c = s->fold ? e / KW : e, kw = s->fold ? e % KW : 0;
                        const int64_t iw = pw - g->pad[2] + kw * g->dil[2];
                        uint8_t v = 0;
                        if (c < s->channels)
                            v = row_in && iw >= 0 && iw < W ? x[c * in_vol + (id * H + ih) * W + iw] ^ x_xor : pad;
                        out[pw * 4 + lane] = v;
                    }
            }
        }
    memset(slab + oct_dconv_slab_at(sl, s->groups, 0, 0, 0), 0, SLAB_TAIL);
}

void oct_ref_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                      int64_t od, int64_t oh0, int64_t nh) {
    const oct_dconv_s8_shape *s = a->s;
    const oct_conv_geom *g = &s->g;
    const int64_t KD = g->k[0], KH = g->k[1], OH = g->out[1], OW = g->out[2], out_vol = oct_geom_out_vol(g);
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = s->outs - m0 < OCT_DCONV_MB ? s->outs - m0 : OCT_DCONV_MB;
    const int64_t taps = KD * KH * s->groups * s->taps_w;
    const int8_t *wb = (const int8_t *)a->w + mblk * taps * OCT_DCONV_MB * 4;
    for (int64_t oh = oh0; oh < oh0 + nh; oh++)
        for (int64_t ow = 0; ow < OW; ow++)
            for (int64_t i = 0; i < mc; i++) {
                uint32_t acc = 0;
                const int8_t *wt = wb + i * 4;
                for (int64_t kd = 0; kd < KD; kd++)
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t grp = 0; grp < s->groups; grp++)
                            for (int64_t kwt = 0; kwt < s->taps_w; kwt++, wt += OCT_DCONV_MB * 4) {
                                const uint8_t *px = slab + oct_dconv_slab_at(sl, grp, od - sl->d0 + kd * g->dil[0],
                                                                             oh - sl->h0 + kh * g->dil[1],
                                                                             ow + kwt * g->dil[2]);
                                for (int lane = 0; lane < 4; lane++)
                                    acc += (uint32_t)((int32_t)wt[lane] * (int32_t)px[lane]);
                            }
                acc -= (uint32_t)a->x_zp * (uint32_t)a->wsum[m0 + i];
                const int32_t v = (int32_t)acc;
                const int64_t at = (m0 + i) * out_vol + (od * OH + oh) * OW + ow;
                if (a->rq)
                    oct_ref_requant(&v, 1, (int)(a->rq_row0 + m0 + i), 1, 1, a->rq, (uint8_t *)a->y + at, 1, 1);
                else
                    ((int32_t *)a->y)[at] = v;
            }
}

const oct_dconv_kernels oct_ref_dconv_kernels = {
    "ref", 0, oct_ref_dconv_f32, 0, oct_dconv_s8_quad_bytes, oct_dconv_s8_quad_pack,
    oct_ref_dconv_s8_repack, oct_ref_dconv_s8,
};
