/* im2col / col2im over a tile of pixels, so that convolution runs as GEMM without ever unfolding
   the whole volume (a 96^3 3-D conv would need gigabytes). */
#include "nn_kernels.h"

/* Decomposes a flat output pixel index into (d, h, w). */
static void unflatten(const int64_t dims[3], int64_t p, int64_t *d, int64_t *h, int64_t *w) {
    *w = p % dims[2];
    p /= dims[2];
    *h = p % dims[1];
    *d = p / dims[1];
}

void oct_ref_im2col_tile(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0,
                         int64_t np, float *col) {
    const int64_t in_vol = oct_geom_in_vol(g);
    int64_t d0, h0, w0;
    unflatten(g->out, p0, &d0, &h0, &w0);
    float *row = col;
    for (int64_t c = 0; c < channels; c++) {
        const float *xc = x + c * in_vol;
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, row += np) {
                    const int64_t offd = kd * g->dil[0] - g->pad[0];
                    const int64_t offh = kh * g->dil[1] - g->pad[1];
                    const int64_t offw = kw * g->dil[2] - g->pad[2];
                    int64_t od = d0, oh = h0, ow = w0;
                    int64_t q = 0;
                    while (q < np) {
                        /* One output row segment: ow runs to the end of the row or the tile. */
                        int64_t seg = g->out[2] - ow;
                        if (seg > np - q) seg = np - q;
                        const int64_t id = od * g->stride[0] + offd;
                        const int64_t ih = oh * g->stride[1] + offh;
                        float *dst = row + q;
                        if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                            for (int64_t t = 0; t < seg; t++) dst[t] = 0.f;
                        } else {
                            const float *src = xc + (id * g->in[1] + ih) * g->in[2];
                            const int64_t s = g->stride[2];
                            for (int64_t t = 0; t < seg; t++) {
                                int64_t iw = (ow + t) * s + offw;
                                dst[t] = iw >= 0 && iw < g->in[2] ? src[iw] : 0.f;
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

void oct_ref_col2im_tile(const oct_conv_geom *g, const float *col, int64_t channels, int64_t p0,
                         int64_t np, float *y) {
    const int64_t out_vol = oct_geom_out_vol(g);
    int64_t d0, h0, w0;
    unflatten(g->in, p0, &d0, &h0, &w0);
    const float *row = col;
    for (int64_t c = 0; c < channels; c++) {
        float *yc = y + c * out_vol;
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, row += np) {
                    const int64_t offd = kd * g->dil[0] - g->pad[0];
                    const int64_t offh = kh * g->dil[1] - g->pad[1];
                    const int64_t offw = kw * g->dil[2] - g->pad[2];
                    int64_t id = d0, ih = h0, iw = w0;
                    int64_t q = 0;
                    while (q < np) {
                        int64_t seg = g->in[2] - iw;
                        if (seg > np - q) seg = np - q;
                        const int64_t od = id * g->stride[0] + offd;
                        const int64_t oh = ih * g->stride[1] + offh;
                        if (od >= 0 && od < g->out[0] && oh >= 0 && oh < g->out[1]) {
                            float *dst = yc + (od * g->out[1] + oh) * g->out[2];
                            const float *src = row + q;
                            const int64_t s = g->stride[2];
                            for (int64_t t = 0; t < seg; t++) {
                                int64_t ow = (iw + t) * s + offw;
                                if (ow >= 0 && ow < g->out[2]) dst[ow] += src[t];
                            }
                        }
                        q += seg;
                        iw = 0;
                        if (++ih == g->in[1]) {
                            ih = 0;
                            id++;
                        }
                    }
                }
    }
}
