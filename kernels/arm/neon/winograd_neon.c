/* NEON Winograd F(4x4, 3x3) transforms (ref/winograd.h): 4 tiles of one tile row per q register.
   Same scheme as the x86 twins (column pass on whole rows, then the row pass on de-interleaved
   columns), with the de-interleave and its inverse done by the structure loads/stores LD4/ST4. */
#include <arm_neon.h>

#include "../../winograd_isa.h"

enum { VL = 4, WCOLS = 20 }; /* scratch row: 4 * 4 + 2 columns used, + 4 read by the shifted LD4 */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline void bt6(const float32x4_t d[6], float32x4_t t[6]) {
    const float32x4_t d42 = vsubq_f32(d[4], d[2]), d31 = vsubq_f32(d[3], d[1]);
    t[0] = vfmaq_n_f32(vfmsq_n_f32(d[4], d[2], 5.f), d[0], 4.f);
    t[1] = vfmsq_n_f32(vaddq_f32(d[3], d[4]), vaddq_f32(d[1], d[2]), 4.f);
    t[2] = vfmaq_n_f32(vsubq_f32(d[4], d[3]), vsubq_f32(d[1], d[2]), 4.f);
    t[3] = vfmaq_n_f32(d42, d31, 2.f);
    t[4] = vfmsq_n_f32(d42, d31, 2.f);
    t[5] = vfmaq_n_f32(vfmsq_n_f32(d[5], d[3], 5.f), d[1], 4.f);
}

static inline void at6(const float32x4_t m[6], float32x4_t o[4]) {
    const float32x4_t p12 = vaddq_f32(m[1], m[2]), m12 = vsubq_f32(m[1], m[2]);
    const float32x4_t p34 = vaddq_f32(m[3], m[4]), m34 = vsubq_f32(m[3], m[4]);
    o[0] = vaddq_f32(vaddq_f32(m[0], p12), p34);
    o[1] = vfmaq_n_f32(m12, m34, 2.f);
    o[2] = vfmaq_n_f32(p12, p34, 4.f);
    o[3] = vaddq_f32(vfmaq_n_f32(m12, m34, 8.f), m[5]);
}

static void input_neon(const oct_wino_geom *g, const float *x, int64_t channels, int64_t t0, int64_t nt,
                       float *v, int64_t pos_stride, int64_t group, int64_t group_stride) {
    float w[OCT_WINO_IN][WCOLS];
    float buf[OCT_WINO_IN][WCOLS];
    for (int64_t i = 0; i < nt;) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t n = min64(VL, min64(g->tiles_x - tx, nt - i));
        const int64_t col0 = 4 * tx - g->pad_l, r0 = 4 * ty - g->pad_t;
        const int nq = (int)((4 * n + 2 + VL - 1) / VL);
        const int inside = col0 >= 0 && col0 + WCOLS <= g->in_w && r0 >= 0 && r0 + OCT_WINO_IN <= g->in_h;
        for (int q = nq; q < WCOLS / VL; q++)
            for (int k = 0; k < OCT_WINO_IN; k++) vst1q_f32(&w[k][VL * q], vdupq_n_f32(0.f));
        const oct_wino_segs sg = oct_wino_split(i, n, group, group_stride);
        const int whole = sg.count == 1 && n == VL; /* one plain store per vector */
        for (int64_t ch = 0; ch < channels; ch++) {
            const float *plane = x + ch * g->in_h * g->in_w;
            const float *src = inside ? plane + r0 * g->in_w + col0 : &buf[0][0];
            const int64_t lds = inside ? g->in_w : WCOLS;
            if (!inside) oct_wino_copy_rows(g, plane, ty, col0, WCOLS, &buf[0][0], WCOLS);
            for (int q = 0; q < nq; q++) {
                float32x4_t d[6], t[6];
                for (int a = 0; a < 6; a++) d[a] = vld1q_f32(src + a * lds + VL * q);
                bt6(d, t);
                for (int k = 0; k < 6; k++) vst1q_f32(&w[k][VL * q], t[k]);
            }
            float *vc = v + ch * group;
            for (int k = 0; k < 6; k++) {
                const float32x4x4_t lo = vld4q_f32(w[k]), hi = vld4q_f32(w[k] + 4);
                const float32x4_t e[6] = {lo.val[0], lo.val[1], lo.val[2], lo.val[3], hi.val[0], hi.val[1]};
                float32x4_t r[6];
                bt6(e, r);
                for (int l = 0; l < 6; l++) {
                    float *dst = vc + (k * 6 + l) * pos_stride;
                    if (whole) {
                        vst1q_f32(dst + sg.off[0], r[l]);
                    } else {
                        float tmp[VL];
                        vst1q_f32(tmp, r[l]);
                        for (int q = 0; q < sg.count; q++)
                            for (int j = sg.lo[q]; j < sg.hi[q]; j++) dst[sg.off[q] + j] = tmp[j];
                    }
                }
            }
        }
        i += n;
    }
}

static inline int act_is_vector(int kind) { return kind <= 3 || kind == 6 || kind == 7; }

static inline float32x4_t act_vector(const oct_act *a, float32x4_t v) {
    const float32x4_t zero = vdupq_n_f32(0.f), one = vdupq_n_f32(1.f);
    switch (a->kind) {
    case 1: return vmaxq_f32(v, zero);
    case 2: return vminq_f32(vmaxq_f32(v, vdupq_n_f32(a->alpha)), vdupq_n_f32(a->beta));
    case 3: return vbslq_f32(vcltq_f32(v, zero), vmulq_n_f32(v, a->alpha), v);
    case 6: {
        const float32x4_t t = vaddq_f32(vdivq_f32(v, vdupq_n_f32(6.f)), vdupq_n_f32(0.5f));
        return vmulq_f32(v, vminq_f32(vmaxq_f32(t, zero), one));
    }
    case 7: {
        const float32x4_t t = vfmaq_n_f32(vdupq_n_f32(a->beta), v, a->alpha);
        return vminq_f32(vmaxq_f32(t, zero), one);
    }
    default: return v;
    }
}

static void output_neon(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                        int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                        const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    const int vec_act = act_is_vector(act->kind);
    for (int64_t i = 0; i < nt;) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t n = min64(VL, min64(g->tiles_x - tx, nt - i));
        const int64_t ncols = min64(4 * n, g->out_w - 4 * tx);
        const int64_t nrows = min64(4, g->out_h - 4 * ty);
        const int64_t nfull = vec_act ? ncols / VL : 0;
        for (int64_t m = 0; m < channels; m++) {
            const float *ym = y + m * ld + i;
            float32x4_t t[6][4], o[4][4];
            for (int k = 0; k < 6; k++) {
                float32x4_t mm[6];
                for (int l = 0; l < 6; l++) {
                    const float *src = ym + (6 * k + l) * pos_stride;
                    if (n == VL) {
                        mm[l] = vld1q_f32(src);
                    } else {
                        float tmp[VL] = {0.f, 0.f, 0.f, 0.f};
                        for (int64_t j = 0; j < n; j++) tmp[j] = src[j];
                        mm[l] = vld1q_f32(tmp);
                    }
                }
                at6(mm, t[k]);
            }
            for (int l = 0; l < 4; l++) {
                const float32x4_t col[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
                float32x4_t r[4];
                at6(col, r);
                for (int a = 0; a < 4; a++) o[a][l] = r[a];
            }
            const float bm = bias ? bias[m] : 0.f;
            const float32x4_t bv = vdupq_n_f32(bm);
            for (int a = 0; a < nrows; a++) {
                const int64_t base = m * plane + (4 * ty + a) * g->out_w + 4 * tx;
                float row[4 * VL];
                const float32x4x4_t cols = {{o[a][0], o[a][1], o[a][2], o[a][3]}};
                vst4q_f32(row, cols);
                for (int64_t q = 0; q < nfull; q++) {
                    float32x4_t s = vaddq_f32(vld1q_f32(row + VL * q), bv);
                    if (res) s = vaddq_f32(s, vld1q_f32(res + base + VL * q));
                    vst1q_f32(out + base + VL * q, act_vector(act, s));
                }
                const int64_t j0 = nfull * VL;
                for (int64_t j = j0; j < ncols; j++) out[base + j] = row[j];
                oct_wino_finish_scalar(out + base + j0, ncols - j0, bm, res ? res + base + j0 : NULL, act);
            }
        }
        i += n;
    }
}

/* Tile-major y: 4 channels of one tile per q register; per output row, ST4 of o[a][0..3] lays out
   channel c's four columns at row[4c .. 4c+3]. */
static void output_t_neon(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                          int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                          const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    const int vec_act = act_is_vector(act->kind);
    for (int64_t i = 0; i < nt; i++) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t ncols = min64(4, g->out_w - 4 * tx), nrows = min64(4, g->out_h - 4 * ty);
        for (int64_t m0 = 0; m0 < channels; m0 += VL) {
            const int64_t nch = min64(VL, channels - m0);
            const float *ym = y + i * ld + m0;
            float32x4_t t[6][4], o[4][4];
            for (int k = 0; k < 6; k++) {
                float32x4_t mm[6];
                for (int l = 0; l < 6; l++) {
                    const float *src = ym + (6 * k + l) * pos_stride;
                    if (nch == VL) {
                        mm[l] = vld1q_f32(src);
                    } else {
                        float tmp[VL] = {0.f, 0.f, 0.f, 0.f};
                        for (int64_t j = 0; j < nch; j++) tmp[j] = src[j];
                        mm[l] = vld1q_f32(tmp);
                    }
                }
                at6(mm, t[k]);
            }
            float bt[VL] = {0.f, 0.f, 0.f, 0.f};
            for (int64_t j = 0; bias && j < nch; j++) bt[j] = bias[m0 + j];
            const float32x4_t bv = vld1q_f32(bt);
            for (int l = 0; l < 4; l++) {
                const float32x4_t col[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
                float32x4_t r[4];
                at6(col, r);
                for (int a = 0; a < 4; a++) o[a][l] = vaddq_f32(r[a], bv);
            }
            for (int a = 0; a < nrows; a++) {
                const int64_t row = (4 * ty + a) * g->out_w + 4 * tx;
                float vals[4 * VL];
                const float32x4x4_t cols = {{o[a][0], o[a][1], o[a][2], o[a][3]}};
                vst4q_f32(vals, cols);
                for (int64_t c = 0; c < nch; c++) {
                    float *dst = out + (m0 + c) * plane + row;
                    const float *rs = res ? res + (m0 + c) * plane + row : NULL;
                    if (ncols == 4 && vec_act) {
                        float32x4_t sv = vld1q_f32(vals + 4 * c);
                        if (rs) sv = vaddq_f32(sv, vld1q_f32(rs));
                        vst1q_f32(dst, act_vector(act, sv));
                    } else {
                        for (int64_t j = 0; j < ncols; j++) dst[j] = vals[4 * c + j];
                        oct_wino_finish_scalar(dst, ncols, 0.f, rs, act);
                    }
                }
            }
        }
    }
}

const oct_wino_kernel_set oct_neon_wino_kernels = {"neon", input_neon, output_neon, output_t_neon};
