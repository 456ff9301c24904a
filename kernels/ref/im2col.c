/* im2col / col2im over a tile of pixels, so that convolution runs as GEMM without ever unfolding
   the whole volume (a 96^3 3-D conv would need gigabytes). */
#include <string.h>

#include "nn_kernels.h"

/* Decomposes a flat output pixel index into (d, h, w). */
static void unflatten(const int64_t dims[3], int64_t p, int64_t *d, int64_t *h, int64_t *w) {
    *w = p % dims[2];
    p /= dims[2];
    *h = p % dims[1];
    *d = p / dims[1];
}

/* dst[t] = src[(ow + t) * s + off] for t in [0, seg), 0 where that index leaves [0, in_w): the
   in-bounds run is found once, so the copy itself has no branches (a memcpy at stride 1). */
static void copy_row(const float *src, int64_t in_w, int64_t ow, int64_t s, int64_t off, int64_t seg,
                     float *dst) {
    /* Output columns whose input column is inside the row: [first, last]. */
    const int64_t first = off >= 0 ? 0 : (-off + s - 1) / s;
    const int64_t last = in_w - 1 - off < 0 ? -1 : (in_w - 1 - off) / s;
    int64_t lo = first - ow, hi = last + 1 - ow;
    lo = lo < 0 ? 0 : (lo > seg ? seg : lo);
    hi = hi < lo ? lo : (hi > seg ? seg : hi);
    for (int64_t t = 0; t < lo; t++) dst[t] = 0.f;
    const float *from = src + (hi > lo ? (ow + lo) * s + off : 0);
    if (s == 1) {
        memcpy(dst + lo, from, (size_t)(hi - lo) * sizeof(float));
    } else if (s == 2) {
        for (int64_t t = lo; t < hi; t++, from += 2) dst[t] = *from;
    } else {
        for (int64_t t = lo; t < hi; t++, from += s) dst[t] = *from;
    }
    for (int64_t t = hi; t < seg; t++) dst[t] = 0.f;
}

static void panel_runs(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                       int64_t nr, float *bp, int64_t in_vol, int64_t K);

/* int32 offsets in the gather path's table (32 KB, in L1 beside the input planes it reads). */
enum { GATHER_TABLE = 8192 };

/* The panel for short runs: when output rows or strips are only a few pixels wide, the run-by-run
   copy spends more on finding each run than on copying it. Instead, per chunk of whole strips, a
   table holds every tap's input offset for every pixel (-1 in the padding), built once and shared by
   all channels, and the panel is written strip by strip, row after row, in the order it sits in
   memory: a branch-free gather through the table. Needs kvol <= GATHER_TABLE. */
static void panel_gather(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                         int64_t nr, float *bp) {
    const int64_t in_vol = oct_geom_in_vol(g), kvol = oct_geom_k_vol(g), K = channels * kvol;
    int32_t off[GATHER_TABLE];
    int64_t chunk = GATHER_TABLE / kvol;
    if (chunk >= nr) chunk = chunk / nr * nr;
    int64_t d, h, w;
    unflatten(g->out, p0, &d, &h, &w);
    for (int64_t q0 = 0; q0 < np; q0 += chunk) {
        const int64_t nq = np - q0 < chunk ? np - q0 : chunk;
        for (int64_t q = 0; q < nq; q++) {
            /* The window origin in input coordinates (negative in the leading padding). */
            const int32_t id0 = (int32_t)(d * g->stride[0] - g->pad[0]), ih0 = (int32_t)(h * g->stride[1] - g->pad[1]),
                          iw0 = (int32_t)(w * g->stride[2] - g->pad[2]);
            int32_t *o = off + q;
            for (int64_t kd = 0; kd < g->k[0]; kd++) {
                const int32_t id = id0 + (int32_t)(kd * g->dil[0]);
                for (int64_t kh = 0; kh < g->k[1]; kh++) {
                    const int32_t ih = ih0 + (int32_t)(kh * g->dil[1]);
                    const int row_in = (uint32_t)id < (uint32_t)g->in[0] && (uint32_t)ih < (uint32_t)g->in[1];
                    const int32_t base = (int32_t)((id * g->in[1] + ih) * g->in[2]);
                    for (int64_t kw = 0; kw < g->k[2]; kw++, o += nq) {
                        const int32_t iw = iw0 + (int32_t)(kw * g->dil[2]);
                        *o = row_in && (uint32_t)iw < (uint32_t)g->in[2] ? base + iw : -1;
                    }
                }
            }
            if (++w == g->out[2]) {
                w = 0;
                if (++h == g->out[1]) h = 0, d++;
            }
        }
        for (int64_t q = 0; q < nq;) {
            /* One strip's share of the chunk: rows of len pixels, nr floats apart. */
            const int64_t at = q0 + q, j = at % nr, len = nq - q < nr - j ? nq - q : nr - j;
            float *dst = bp + (at / nr) * nr * K + j;
            for (int64_t c = 0; c < channels; c++) {
                const float *xc = x + c * in_vol;
                const int32_t *o = off + q;
                for (int64_t tap = 0; tap < kvol; tap++, o += nq, dst += nr)
                    for (int64_t t = 0; t < len; t++) dst[t] = o[t] >= 0 ? xc[o[t]] : 0.f;
            }
            q += len;
        }
    }
}

/* The gather path's coordinates are int32: every window coordinate and input offset must fit. */
static int gather_fits(const oct_conv_geom *g) {
    const int64_t lim = (int64_t)1 << 30;
    if (oct_geom_in_vol(g) >= lim) return 0;
    for (int i = 0; i < 3; i++)
        if (g->pad[i] >= lim || g->out[i] * g->stride[i] >= lim || (g->k[i] - 1) * g->dil[i] >= lim) return 0;
    return 1;
}

void oct_ref_im2col_f32_panel(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0,
                          int64_t np, int64_t nr, float *bp) {
    const int64_t in_vol = oct_geom_in_vol(g), K = channels * oct_geom_k_vol(g);
    /* Runs are at most min(row width, strip width) long; below 24 the gather wins (measured on
       resnet layers: 7- and 14-wide rows, 8-wide strips). */
    const int64_t run = g->out[2] < nr ? g->out[2] : nr;
    if (run < 24 && oct_geom_k_vol(g) <= GATHER_TABLE && gather_fits(g)) {
        panel_gather(g, x, channels, p0, np, nr, bp);
    } else {
        panel_runs(g, x, channels, p0, np, nr, bp, in_vol, K);
    }
    /* The last strip's columns past np are zero, as a packed panel's are. */
    const int64_t tail = np % nr;
    if (tail)
        for (int64_t row = 0; row < K; row++)
            memset(bp + (np / nr) * nr * K + row * nr + tail, 0, (size_t)(nr - tail) * sizeof(float));
}

/* The panel row by row, each output row segment one run (a memcpy at stride 1). */
static void panel_runs(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                       int64_t nr, float *bp, int64_t in_vol, int64_t K) {
    int64_t d0, h0, w0;
    unflatten(g->out, p0, &d0, &h0, &w0);
    int64_t r = 0; /* the GEMM row: (c, kd, kh, kw) */
    for (int64_t c = 0; c < channels; c++) {
        const float *xc = x + c * in_vol;
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, r++) {
                    const int64_t offd = kd * g->dil[0] - g->pad[0];
                    const int64_t offh = kh * g->dil[1] - g->pad[1];
                    const int64_t offw = kw * g->dil[2] - g->pad[2];
                    int64_t od = d0, oh = h0, ow = w0;
                    int64_t q = 0;
                    while (q < np) {
                        /* One output row segment: ow runs to the end of the row or the tile... */
                        int64_t seg = g->out[2] - ow;
                        if (seg > np - q) seg = np - q;
                        const int64_t id = od * g->stride[0] + offd;
                        const int64_t ih = oh * g->stride[1] + offh;
                        const int inside = id >= 0 && id < g->in[0] && ih >= 0 && ih < g->in[1];
                        const float *src = inside ? xc + (id * g->in[1] + ih) * g->in[2] : NULL;
                        /* ...cut where the panel's column strips end. */
                        for (int64_t done = 0; done < seg;) {
                            const int64_t at = q + done, j = at % nr;
                            const int64_t len = seg - done < nr - j ? seg - done : nr - j;
                            float *dst = bp + (at / nr) * nr * K + r * nr + j;
                            if (src)
                                copy_row(src, g->in[2], ow + done, g->stride[2], offw, len, dst);
                            else
                                memset(dst, 0, (size_t)len * sizeof(float));
                            done += len;
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

void oct_ref_im2col_tile(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0,
                         int64_t np, float *col) {
    /* A row-major tile is a panel with a single strip as wide as the tile. */
    oct_ref_im2col_f32_panel(g, x, channels, p0, np, np, col);
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

int oct_col2im_is_disjoint(const oct_conv_geom *g) {
    for (int i = 0; i < 3; i++)
        if (g->stride[i] != g->k[i] || g->pad[i] != 0 || (g->k[i] > 1 && g->dil[i] != 1) ||
            g->out[i] != g->in[i] * g->stride[i])
            return 0;
    return 1;
}

/* One output row from the s column rows of its taps kw = 0..s-1: dst[iw * s + kw] = src_kw[iw] + b.
   Stride 2 (the U-Net upsampling) gets its own loop, which gcc turns into vector interleaves. */
static void interleave_row(const float *src, int64_t ld, int64_t s, int64_t w, float b, float *dst) {
    if (s == 2) {
        const float *a = src, *c = src + ld;
        for (int64_t iw = 0; iw < w; iw++) {
            dst[2 * iw] = a[iw] + b;
            dst[2 * iw + 1] = c[iw] + b;
        }
        return;
    }
    for (int64_t iw = 0; iw < w; iw++)
        for (int64_t kw = 0; kw < s; kw++) dst[iw * s + kw] = src[kw * ld + iw] + b;
}

void oct_ref_col2im_tile_disjoint(const oct_conv_geom *g, const float *col, int64_t channels, int64_t p0,
                                  int64_t np, const float *bias, float *y) {
    const int64_t out_vol = oct_geom_out_vol(g), w = g->in[2];
    const int64_t s0 = g->stride[0], s1 = g->stride[1], s2 = g->stride[2];
    const float *row = col;
    for (int64_t c = 0; c < channels; c++) {
        const float b = bias ? bias[c] : 0.f;
        float *yc = y + c * out_vol;
        for (int64_t kd = 0; kd < s0; kd++)
            for (int64_t kh = 0; kh < s1; kh++, row += s2 * np)
                for (int64_t r = 0; r * w < np; r++) {
                    int64_t id, ih, iw;
                    unflatten(g->in, p0 + r * w, &id, &ih, &iw);
                    float *dst = yc + ((id * s0 + kd) * g->out[1] + ih * s1 + kh) * g->out[2];
                    interleave_row(row + r * w, np, s2, w, b, dst);
                }
    }
}
