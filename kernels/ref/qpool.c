/* Integer sums (exact statistics for GlobalAveragePool and InstanceNorm) and quantized average
   pooling over one channel plane. */
#include "../misc_kernels.h"
#include "qops_kernels.h"
#include "qsum_body.h"

void oct_ref_qsum(const uint8_t *x, int is_s8, int64_t n, int64_t *sum, int64_t *sumsq) {
    oct_qsum_body(x, is_s8, n, sum, sumsq);
}

void oct_ref_qcolsum(const uint8_t *x, int is_s8, int64_t rows, int64_t cols, int64_t ld, int64_t *sums) {
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = x + r * ld;
        if (is_s8)
            for (int64_t c = 0; c < cols; c++) sums[c] += (int8_t)row[c];
        else
            for (int64_t c = 0; c < cols; c++) sums[c] += row[c];
    }
}

/* Taps [lo, hi) of one window dim inside the input, and the extent count_include_pad divides by
   (the window clipped to the padded input). */
static void window(int64_t o, int64_t k, int64_t s, int64_t pad, int64_t pad_end, int64_t in, int64_t *lo,
                   int64_t *hi, int64_t *padded) {
    const int64_t start = o * s - pad, end = start + k;
    const int64_t pend = end < in + pad_end ? end : in + pad_end;
    *padded = pend - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > in ? in : end;
}

void oct_ref_qavgpool(const oct_conv_geom *g, const int64_t pad_end[3], int count_include_pad,
                      const oct_qpool *q, const uint8_t *x, int64_t xs, uint8_t *y, int64_t ys) {
    int64_t p = 0;
    for (int64_t od = 0; od < g->out[0]; od++) {
        int64_t d0, d1, dp;
        window(od, g->k[0], g->stride[0], g->pad[0], pad_end[0], g->in[0], &d0, &d1, &dp);
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            int64_t h0, h1, hp;
            window(oh, g->k[1], g->stride[1], g->pad[1], pad_end[1], g->in[1], &h0, &h1, &hp);
            for (int64_t ow = 0; ow < g->out[2]; ow++, p++) {
                int64_t w0, w1, wp;
                window(ow, g->k[2], g->stride[2], g->pad[2], pad_end[2], g->in[2], &w0, &w1, &wp);
                int64_t sum = 0;
                for (int64_t id = d0; id < d1; id++)
                    for (int64_t ih = h0; ih < h1; ih++) {
                        const uint8_t *xr = x + ((id * g->in[1] + ih) * g->in[2]) * xs;
                        for (int64_t iw = w0; iw < w1; iw++) sum += oct_q8_value(xr[iw * xs], q->x_s8);
                    }
                const int64_t inside = (d1 - d0) * (h1 - h0) * (w1 - w0);
                const int64_t cnt = count_include_pad ? dp * hp * wp : inside;
                /* Taps in the padding are zero in the real domain: only inside taps shift by the
                   zero point. */
                const double v = cnt > 0 ? (double)(sum - inside * (int64_t)q->x_zp) / (double)cnt * q->scale : 0.0;
                const int32_t out = oct_q8_round(v, q->y_zp, q->qmin, q->qmax);
                y[p * ys] = (uint8_t)out;
            }
        }
    }
}

int64_t oct_ref_qsum_plane(const uint8_t *x, int is_s8, int64_t n) {
    int64_t s = 0;
    oct_ref_qsum(x, is_s8, n, &s, NULL);
    return s;
}
