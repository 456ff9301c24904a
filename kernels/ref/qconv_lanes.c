/* Channel-lane int8 convolution: layout helpers and the portable twin (qconv_lanes.h). */
#include <string.h>

#include "qconv_lanes.h"

int oct_lconv_shape_init(oct_lconv_shape *s, const oct_conv_geom *g, int64_t C, int64_t M) {
    if (g->out[0] != 1 || g->k[0] != 1 || g->in[0] != 1 || C < 1 || M < 1) return -1;
    if (g->k[1] * g->k[2] > OCT_LCONV_TAPS_MAX) return -1;
    s->g = *g;
    s->C = C;
    s->M = M;
    s->C4 = (C + 3) / 4 * 4;
    s->cgroups = s->C4 / 4;
    s->mblocks = (M + OCT_LCONV_MB - 1) / OCT_LCONV_MB;
    return 0;
}

size_t oct_lconv_band_init(const oct_lconv_shape *s, int64_t oh0, int64_t nh, oct_lconv_band *b) {
    const oct_conv_geom *g = &s->g;
    b->oh0 = oh0;
    b->nh = nh;
    b->ih0 = oh0 * g->stride[1] - g->pad[1];
    b->rows = (nh - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    b->wp = (g->out[2] - 1) * g->stride[2] + (g->k[2] - 1) * g->dil[2] + 1;
    if (b->wp > INT64_MAX / s->C4) return 0;
    b->pitch = b->wp * s->C4;
    if (b->rows > (int64_t)(SIZE_MAX / 2) / b->pitch) return 0;
    return (size_t)(b->rows * b->pitch);
}

size_t oct_lconv_wbytes(const oct_lconv_shape *s) {
    const int64_t taps = s->g.k[1] * s->g.k[2];
    const int64_t per_block = taps * s->cgroups * OCT_LCONV_MB * 4;
    if (per_block <= 0 || s->mblocks > (int64_t)(SIZE_MAX / 2) / per_block) return 0;
    return (size_t)(s->mblocks * per_block);
}

void oct_lconv_pack(const oct_lconv_shape *s, const uint8_t *w, int w_u8, int8_t *buf, int32_t *wsum) {
    const int64_t KH = s->g.k[1], KW = s->g.k[2], kvol = KH * KW;
    int8_t *d = buf;
    for (int64_t m = 0; m < s->M; m++) wsum[m] = 0;
    for (int64_t mb = 0; mb < s->mblocks; mb++)
        for (int64_t t = 0; t < kvol; t++)
            for (int64_t cg = 0; cg < s->cgroups; cg++)
                for (int64_t lane = 0; lane < OCT_LCONV_MB; lane++)
                    for (int64_t j = 0; j < 4; j++, d++) {
                        const int64_t m = mb * OCT_LCONV_MB + lane, c = cg * 4 + j;
                        *d = 0;
                        if (m >= s->M || c >= s->C) continue;
                        const uint8_t raw = w[(m * s->C + c) * kvol + t];
                        *d = (int8_t)(w_u8 ? raw - 128 : (int8_t)raw);
                        wsum[m] += *d;
                    }
}

static void ref_repack(const oct_lconv_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                       const oct_lconv_band *b, uint8_t *slab) {
    const oct_conv_geom *g = &s->g;
    const int64_t IH = g->in[1], IW = g->in[2];
    for (int64_t r = 0; r < b->rows; r++)
        for (int64_t z = 0; z < b->wp; z++) {
            const int64_t ih = b->ih0 + r, iw = z - g->pad[2];
            const int inside = ih >= 0 && ih < IH && iw >= 0 && iw < IW;
            uint8_t *px = slab + r * b->pitch + z * s->C4;
            for (int64_t c = 0; c < s->C4; c++)
                px[c] = c >= s->C ? 0 : inside ? (uint8_t)(x[(c * IH + ih) * IW + iw] ^ x_xor) : pad;
        }
}

static void ref_conv(const oct_lconv_args *a, const uint8_t *slab, const oct_lconv_band *b, int64_t mb0,
                     int64_t mb1) {
    const oct_lconv_shape *s = a->s;
    const oct_conv_geom *g = &s->g;
    const int64_t KH = g->k[1], KW = g->k[2], OW = g->out[2], P = g->out[1] * OW;
    const int64_t block_bytes = KH * KW * s->cgroups * OCT_LCONV_MB * 4;
    const oct_requant *q = a->rq;
    const float lo = (float)(q->qmin - q->zp), hi = (float)(q->qmax - q->zp);
    for (int64_t mb = mb0; mb < mb1; mb++)
        for (int64_t lane = 0; lane < OCT_LCONV_MB; lane++) {
            const int64_t m = mb * OCT_LCONV_MB + lane;
            if (m >= s->M) break;
            const int8_t *wb = a->w + mb * block_bytes + lane * 4;
            for (int64_t oh = b->oh0; oh < b->oh0 + b->nh; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const uint8_t *px = slab + (oh - b->oh0) * g->stride[1] * b->pitch + ow * g->stride[2] * s->C4;
                    uint32_t acc = 0;
                    const int8_t *wk = wb;
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t kw = 0; kw < KW; kw++) {
                            const uint8_t *tap = px + kh * g->dil[1] * b->pitch + kw * g->dil[2] * s->C4;
                            for (int64_t cg = 0; cg < s->cgroups; cg++, wk += OCT_LCONV_MB * 4)
                                for (int j = 0; j < 4; j++) acc += (uint32_t)((int32_t)tap[cg * 4 + j] * wk[j]);
                        }
                    acc -= (uint32_t)a->x_zp * (uint32_t)a->wsum[m];
                    a->y[m * P + oh * OW + ow] = oct_requant_byte(q, oct_requant_one(q, (int)m, (int32_t)acc, lo, hi));
                }
        }
}

const oct_lconv_kernels oct_ref_lconv_kernels = {"ref", ref_repack, ref_conv, 1};
