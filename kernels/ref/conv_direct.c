/* Depthwise convolution as a direct loop: with one input channel per group, im2col + GEMM would
   be a 1-row GEMM, so accumulating each kernel tap over a whole output row is both simpler and
   faster (the inner loop is a strided axpy that vectorises for stride 1). */
#include "nn_kernels.h"

void oct_ref_conv_depthwise(const oct_conv_geom *g, const float *x, const float *w, float bias,
                            const float *res, const oct_act *act, float *y) {
    const int64_t OW = g->out[2], IW = g->in[2], s = g->stride[2];
    for (int64_t od = 0; od < g->out[0]; od++)
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            float *yr = y + (od * g->out[1] + oh) * OW;
            for (int64_t ow = 0; ow < OW; ow++) yr[ow] = bias;
            for (int64_t kd = 0; kd < g->k[0]; kd++) {
                int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pad[0];
                if (id < 0 || id >= g->in[0]) continue;
                for (int64_t kh = 0; kh < g->k[1]; kh++) {
                    int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pad[1];
                    if (ih < 0 || ih >= g->in[1]) continue;
                    const float *xr = x + (id * g->in[1] + ih) * IW;
                    const float *wk = w + (kd * g->k[1] + kh) * g->k[2];
                    for (int64_t kw = 0; kw < g->k[2]; kw++) {
                        int64_t off = kw * g->dil[2] - g->pad[2];
                        /* valid ow: 0 <= ow*s + off < IW */
                        int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
                        int64_t hi = IW - off <= 0 ? 0 : (IW - off + s - 1) / s;
                        if (hi > OW) hi = OW;
                        const float wv = wk[kw];
                        if (s == 1) {
                            const float *xs = xr + off;
                            for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xs[ow];
                        } else {
                            for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * s + off];
                        }
                    }
                }
            }
            /* Epilogue while the row is still in L1. */
            const float *rr = res ? res + (od * g->out[1] + oh) * OW : NULL;
            if (rr)
                for (int64_t ow = 0; ow < OW; ow++) yr[ow] += rr[ow];
            if (act->kind)
                for (int64_t ow = 0; ow < OW; ow++) yr[ow] = oct_act_apply(act, yr[ow]);
        }
}
