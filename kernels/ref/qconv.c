/* int8 convolution pieces: the uint8 im2col tile for the implicit GEMM (never the whole volume)
   and the depthwise direct loop. */
#include "quant_kernels.h"

static void unflatten(const int64_t dims[3], int64_t p, int64_t *d, int64_t *h, int64_t *w) {
    *w = p % dims[2];
    p /= dims[2];
    *h = p % dims[1];
    *d = p / dims[1];
}

void oct_ref_im2col_tile_u8(const oct_conv_geom *g, const uint8_t *x, int64_t channels, int64_t p0,
                            int64_t np, uint8_t x_xor, uint8_t pad, uint8_t *col) {
    const int64_t in_vol = oct_geom_in_vol(g);
    int64_t d0, h0, w0;
    unflatten(g->out, p0, &d0, &h0, &w0);
    uint8_t *row = col;
    for (int64_t c = 0; c < channels; c++) {
        const uint8_t *xc = x + c * in_vol;
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, row += np) {
                    const int64_t offd = kd * g->dil[0] - g->pad[0];
                    const int64_t offh = kh * g->dil[1] - g->pad[1];
                    const int64_t offw = kw * g->dil[2] - g->pad[2];
                    int64_t od = d0, oh = h0, ow = w0, q = 0;
                    while (q < np) {
                        /* One output row segment: ow runs to the end of the row or the tile. */
                        int64_t seg = g->out[2] - ow;
                        if (seg > np - q) seg = np - q;
                        const int64_t id = od * g->stride[0] + offd;
                        const int64_t ih = oh * g->stride[1] + offh;
                        uint8_t *dst = row + q;
                        if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                            for (int64_t t = 0; t < seg; t++) dst[t] = pad;
                        } else {
                            const uint8_t *src = xc + (id * g->in[1] + ih) * g->in[2];
                            const int64_t s = g->stride[2];
                            for (int64_t t = 0; t < seg; t++) {
                                const int64_t iw = (ow + t) * s + offw;
                                dst[t] = iw >= 0 && iw < g->in[2] ? (uint8_t)(src[iw] ^ x_xor) : pad;
                            }
                        }
                        q += seg;
                        ow = 0;
                        if (++oh == g->out[1]) {
                            oh = 0;
                            od++;
                        }
                    }
                }
    }
}

void oct_ref_qconv_depthwise(const oct_conv_geom *g, const uint8_t *x, uint8_t x_xor, int32_t x_zp,
                             const int8_t *w, int32_t w_zp, int64_t p0, int64_t np, int32_t *acc) {
    int64_t od, oh, ow;
    unflatten(g->out, p0, &od, &oh, &ow);
    for (int64_t q = 0; q < np; q++) {
        uint32_t s = 0;
        const int8_t *wt = w;
        for (int64_t kd = 0; kd < g->k[0]; kd++) {
            const int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pad[0];
            const int inside_d = id >= 0 && id < g->in[0];
            for (int64_t kh = 0; kh < g->k[1]; kh++) {
                const int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pad[1];
                const int inside = inside_d && ih >= 0 && ih < g->in[1];
                const uint8_t *src = inside ? x + (id * g->in[1] + ih) * g->in[2] : NULL;
                for (int64_t kw = 0; kw < g->k[2]; kw++, wt++) {
                    const int64_t iw = ow * g->stride[2] + kw * g->dil[2] - g->pad[2];
                    if (!src || iw < 0 || iw >= g->in[2]) continue;
                    const int32_t xv = (int32_t)(uint8_t)(src[iw] ^ x_xor) - x_zp;
                    s += (uint32_t)(xv * ((int32_t)*wt - w_zp));
                }
            }
        }
        acc[q] = (int32_t)s;
        if (++ow == g->out[2]) {
            ow = 0;
            if (++oh == g->out[1]) {
                oh = 0;
                od++;
            }
        }
    }
}
