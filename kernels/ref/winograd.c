/* Reference Winograd F(4x4, 3x3) transforms (see winograd.h): one tile at a time, in the
   separable form T^T X T = T^T (T^T X^T)^T, each 1-D transform written out with the shared
   sub-expressions that the matrices' +-1, +-2, +-4 structure allows. */
#include <string.h>

#include "winograd.h"

/* B^T d for a 6-vector with stride s. */
static void bt6(const float *d, int64_t s, float *t, int64_t ts) {
    const float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    t[0] = 4.f * d0 - 5.f * d2 + d4;
    t[ts] = (d3 + d4) - 4.f * (d1 + d2);
    t[2 * ts] = (d4 - d3) + 4.f * (d1 - d2);
    t[3 * ts] = (d4 - d2) + 2.f * (d3 - d1);
    t[4 * ts] = (d4 - d2) - 2.f * (d3 - d1);
    t[5 * ts] = 4.f * d1 - 5.f * d3 + d5;
}

/* A^T m for a 6-vector with stride s. */
static void at6(const float *m, int64_t s, float *o, int64_t os) {
    const float p12 = m[s] + m[2 * s], m12 = m[s] - m[2 * s];
    const float p34 = m[3 * s] + m[4 * s], m34 = m[3 * s] - m[4 * s];
    o[0] = m[0] + p12 + p34;
    o[os] = m12 + 2.f * m34;
    o[2 * os] = p12 + 4.f * p34;
    o[3 * os] = m12 + 8.f * m34 + m[5 * s];
}

void oct_ref_wino_weights(const float *w, int64_t m, int64_t c, float *u) {
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
    };
    /* A block of input channels at a time through a small buffer, then one contiguous run per
       position: stored straight, the 36 position streams lie m * c floats apart, often a multiple
       of 4 KB, and evicted each other from L1 (a fifth of ResNet-18-BN's load time). */
    enum { CB = 64 };
    float blk[OCT_WINO_POS][CB];
    const int64_t pos_stride = m * c;
    for (int64_t mi = 0; mi < m; mi++)
        for (int64_t c0 = 0; c0 < c; c0 += CB) {
            const int64_t cn = c - c0 < CB ? c - c0 : CB;
            for (int64_t k = 0; k < cn; k++) {
                const float *g = w + (mi * c + c0 + k) * 9;
                double gg[6][3]; /* G g */
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 3; j++)
                        gg[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 6; j++)
                        blk[i * 6 + j][k] = (float)(gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2]);
            }
            for (int p = 0; p < OCT_WINO_POS; p++)
                memcpy(u + p * pos_stride + mi * c + c0, blk[p], (size_t)cn * sizeof(float));
        }
}

void oct_ref_wino_input(const oct_wino_geom *g, const float *x, int64_t channels, int64_t t0, int64_t nt,
                        float *v, int64_t pos_stride, int64_t group, int64_t group_stride) {
    for (int64_t ch = 0; ch < channels; ch++) {
        const float *plane = x + ch * g->in_h * g->in_w;
        for (int64_t i = 0; i < nt; i++) {
            const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
            const int64_t r0 = 4 * ty - g->pad_t, c0 = 4 * tx - g->pad_l;
            float d[6][6], t[6][6], r[6][6];
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) {
                    const int64_t rr = r0 + a, cc = c0 + b;
                    d[a][b] = rr >= 0 && rr < g->in_h && cc >= 0 && cc < g->in_w ? plane[rr * g->in_w + cc] : 0.f;
                }
            for (int b = 0; b < 6; b++) bt6(&d[0][b], 6, &t[0][b], 6);   /* columns: B^T d */
            for (int a = 0; a < 6; a++) bt6(&t[a][0], 1, &r[a][0], 1);   /* rows: (B^T d) B */
            float *dst = v + (i / group) * group_stride + ch * group + i % group;
            for (int p = 0; p < OCT_WINO_POS; p++) dst[p * pos_stride] = r[p / 6][p % 6];
        }
    }
}

/* Both output layouts: the GEMM result of position p, channel m, tile i at
   y[p * pos_stride + m * m_stride + i * i_stride]. */
static void output_strided(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t m_stride,
                           int64_t i_stride, int64_t channels, int64_t t0, int64_t nt, const float *bias,
                           const float *res, const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    for (int64_t m = 0; m < channels; m++)
        for (int64_t i = 0; i < nt; i++) {
            const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
            float mm[6][6], t[4][6], o[4][4];
            for (int p = 0; p < OCT_WINO_POS; p++) mm[p / 6][p % 6] = y[p * pos_stride + m * m_stride + i * i_stride];
            for (int b = 0; b < 6; b++) at6(&mm[0][b], 6, &t[0][b], 6); /* columns: A^T m */
            for (int a = 0; a < 4; a++) at6(&t[a][0], 1, &o[a][0], 1);  /* rows: (A^T m) A */
            const float bm = bias ? bias[m] : 0.f;
            for (int a = 0; a < 4 && 4 * ty + a < g->out_h; a++) {
                const int64_t off = m * plane + (4 * ty + a) * g->out_w + 4 * tx;
                const int64_t cnt = g->out_w - 4 * tx < 4 ? g->out_w - 4 * tx : 4;
                for (int64_t b = 0; b < cnt; b++)
                    out[off + b] = oct_act_apply(act, o[a][b] + bm + (res ? res[off + b] : 0.f));
            }
        }
}

void oct_ref_wino_output(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                         int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                         const oct_act *act, float *out) {
    output_strided(g, y, pos_stride, ld, 1, channels, t0, nt, bias, res, act, out);
}

void oct_ref_wino_output_t(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                           int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                           const oct_act *act, float *out) {
    output_strided(g, y, pos_stride, 1, ld, channels, t0, nt, bias, res, act, out);
}

const oct_wino_kernel_set oct_ref_wino_kernels = {"ref", oct_ref_wino_input, oct_ref_wino_output,
                                                  oct_ref_wino_output_t};
