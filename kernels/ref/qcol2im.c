/* The int32 col2im of the quantized transposed convolution, restricted to a box of the output so
   that a work item accumulates one output slab in a bounded tile instead of the whole volume; and
   the byte scatter for windows that do not overlap, which need no accumulation at all. */
#include "qops_kernels.h"

static void unflatten(const int64_t dims[3], int64_t p, int64_t *d, int64_t *h, int64_t *w) {
    *w = p % dims[2];
    p /= dims[2];
    *h = p % dims[1];
    *d = p / dims[1];
}

void oct_ref_qcol2im_box(const oct_conv_geom *g, const int32_t *col, int64_t channels, int64_t p0,
                         int64_t np, const int64_t lo[3], const int64_t ext[3], int32_t *acc) {
    const int64_t box_vol = ext[0] * ext[1] * ext[2];
    int64_t d0, h0, w0;
    unflatten(g->in, p0, &d0, &h0, &w0);
    const int32_t *row = col;
    for (int64_t c = 0; c < channels; c++) {
        uint32_t *ac = (uint32_t *)acc + c * box_vol;
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, row += np) {
                    /* Output coordinate relative to the box, before the input position's stride. */
                    const int64_t offd = kd * g->dil[0] - g->pad[0] - lo[0];
                    const int64_t offh = kh * g->dil[1] - g->pad[1] - lo[1];
                    const int64_t offw = kw * g->dil[2] - g->pad[2] - lo[2];
                    const int64_t sw = g->stride[2];
                    int64_t id = d0, ih = h0, iw = w0;
                    int64_t q = 0;
                    while (q < np) {
                        /* One input row segment: iw runs to the end of the row or the tile. */
                        int64_t seg = g->in[2] - iw;
                        if (seg > np - q) seg = np - q;
                        const int64_t bd = id * g->stride[0] + offd, bh = ih * g->stride[1] + offh;
                        if (bd >= 0 && bd < ext[0] && bh >= 0 && bh < ext[1]) {
                            uint32_t *dst = ac + (bd * ext[1] + bh) * ext[2];
                            const int32_t *src = row + q;
                            /* The taps inside the box along w: bw = (iw + t) * sw + offw in [0, ext). */
                            int64_t t0 = 0, t1 = seg;
                            const int64_t first = iw * sw + offw;
                            if (first < 0) t0 = (-first + sw - 1) / sw;
                            const int64_t lim = ext[2] - first; /* need t * sw < lim */
                            if (lim <= 0) t1 = 0;
                            else if ((lim + sw - 1) / sw < t1) t1 = (lim + sw - 1) / sw;
                            for (int64_t t = t0; t < t1; t++) dst[first + t * sw] += (uint32_t)src[t];
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

/* dst[iw * s + kw] = src_kw[iw]: stride 2 has its own loop, which gcc turns into byte unpacks. */
static void interleave_bytes(const uint8_t *src, int64_t ld, int64_t s, int64_t n, uint8_t *dst) {
    if (s == 2) {
        const uint8_t *a = src, *b = src + ld;
        for (int64_t i = 0; i < n; i++) {
            dst[2 * i] = a[i];
            dst[2 * i + 1] = b[i];
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t kw = 0; kw < s; kw++) dst[i * s + kw] = src[kw * ld + i];
}

void oct_ref_qcol2im_disjoint(const oct_conv_geom *g, const uint8_t *col, int64_t channels, int64_t p0, int64_t np,
                              uint8_t *y) {
    const int64_t out_vol = oct_geom_out_vol(g), s0 = g->stride[0], s1 = g->stride[1], s2 = g->stride[2];
    const uint8_t *row = col;
    for (int64_t c = 0; c < channels; c++)
        for (int64_t kd = 0; kd < s0; kd++)
            for (int64_t kh = 0; kh < s1; kh++, row += s2 * np)
                for (int64_t q = 0; q < np;) { /* runs of pixels along one input row */
                    int64_t id, ih, iw;
                    unflatten(g->in, p0 + q, &id, &ih, &iw);
                    const int64_t seg = g->in[2] - iw < np - q ? g->in[2] - iw : np - q;
                    uint8_t *dst = y + c * out_vol + ((id * s0 + kd) * g->out[1] + ih * s1 + kh) * g->out[2] + iw * s2;
                    interleave_bytes(row + q, np, s2, seg, dst);
                    q += seg;
                }
}
