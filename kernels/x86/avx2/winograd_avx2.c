/* AVX2 Winograd F(4x4, 3x3) transforms (ref/winograd.h): 8 tiles of one tile row per ymm.
   Same scheme as the AVX-512 twin: column pass on whole rows, then the 4-way de-interleave that
   puts column 4t+j of 8 tiles in one vector - here two 128-bit loads per register and the in-lane
   4x4 transpose. Rows that touch the padding are first copied into a zero-filled scratch, since
   AVX2 masked loads work on 32-bit lanes only through integer masks. */
#include <immintrin.h>

#include "../../winograd_isa.h"

enum { VL = 8, WCOLS = 40 }; /* scratch row: 4 * 8 + 2 columns used, + 4 read by the shifted loads */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline __m256i lane_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > VL ? VL : n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline void bt6(const __m256 d[6], __m256 t[6]) {
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f);
    const __m256 d42 = _mm256_sub_ps(d[4], d[2]), d31 = _mm256_sub_ps(d[3], d[1]);
    t[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    t[1] = _mm256_fnmadd_ps(four, _mm256_add_ps(d[1], d[2]), _mm256_add_ps(d[3], d[4]));
    t[2] = _mm256_fmadd_ps(four, _mm256_sub_ps(d[1], d[2]), _mm256_sub_ps(d[4], d[3]));
    t[3] = _mm256_fmadd_ps(two, d31, d42);
    t[4] = _mm256_fnmadd_ps(two, d31, d42);
    t[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

static inline void at6(const __m256 m[6], __m256 o[4]) {
    const __m256 p12 = _mm256_add_ps(m[1], m[2]), m12 = _mm256_sub_ps(m[1], m[2]);
    const __m256 p34 = _mm256_add_ps(m[3], m[4]), m34 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], p12), p34);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.f), m34, m12);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.f), p34, p12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.f), m34, m12), m[5]);
}

/* In-lane 4x4 transpose of r[0..3]. */
static inline void transpose4(const __m256 r[4], __m256 e[4]) {
    const __m256 a = _mm256_unpacklo_ps(r[0], r[1]), b = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 c = _mm256_unpacklo_ps(r[2], r[3]), d = _mm256_unpackhi_ps(r[2], r[3]);
    e[0] = _mm256_shuffle_ps(a, c, _MM_SHUFFLE(1, 0, 1, 0));
    e[1] = _mm256_shuffle_ps(a, c, _MM_SHUFFLE(3, 2, 3, 2));
    e[2] = _mm256_shuffle_ps(b, d, _MM_SHUFFLE(1, 0, 1, 0));
    e[3] = _mm256_shuffle_ps(b, d, _MM_SHUFFLE(3, 2, 3, 2));
}

/* Tile t's 4 columns from p (tiles 0-3 low lanes, 4-7 high lanes): register t%4 holds tiles t, t+4. */
static inline void load_tiles(const float *p, __m256 r[4]) {
    for (int t = 0; t < 4; t++)
        r[t] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p + 4 * t)), _mm_loadu_ps(p + 16 + 4 * t), 1);
}

/* Columns 4t+j, j = 0..5, of 8 tiles t from the scratch row r (at least 36 floats). */
static inline void deinterleave(const float *r, __m256 e[6]) {
    __m256 l[4], s[4], es[4];
    load_tiles(r, l);
    transpose4(l, e);
    load_tiles(r + 4, s);
    transpose4(s, es);
    e[4] = es[0];
    e[5] = es[1];
}

static void input_avx2(const oct_wino_geom *g, const float *x, int64_t channels, int64_t t0, int64_t nt,
                       float *v, int64_t pos_stride, int64_t group, int64_t group_stride) {
    float w[OCT_WINO_IN][WCOLS] __attribute__((aligned(32)));
    float buf[OCT_WINO_IN][WCOLS] __attribute__((aligned(32)));
    for (int64_t i = 0; i < nt;) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t n = min64(VL, min64(g->tiles_x - tx, nt - i));
        const int64_t col0 = 4 * tx - g->pad_l, r0 = 4 * ty - g->pad_t;
        const int nq = (int)((4 * n + 2 + VL - 1) / VL);
        /* Inside the plane the rows are read in place; otherwise through the zero-padded copy. */
        const int inside = col0 >= 0 && col0 + WCOLS <= g->in_w && r0 >= 0 && r0 + OCT_WINO_IN <= g->in_h;
        for (int q = nq; q < WCOLS / VL; q++)
            for (int k = 0; k < OCT_WINO_IN; k++) _mm256_store_ps(&w[k][VL * q], _mm256_setzero_ps());
        const oct_wino_segs sg = oct_wino_split(i, n, group, group_stride);
        __m256i store[16];
        for (int k = 0; k < sg.count; k++)
            store[k] = _mm256_andnot_si256(lane_mask(sg.lo[k]), lane_mask(sg.hi[k]));
        const int whole = sg.count == 1 && n == VL; /* one plain store per vector */
        for (int64_t ch = 0; ch < channels; ch++) {
            const float *plane = x + ch * g->in_h * g->in_w;
            const float *src = inside ? plane + r0 * g->in_w + col0 : &buf[0][0];
            const int64_t lds = inside ? g->in_w : WCOLS;
            if (!inside) oct_wino_copy_rows(g, plane, ty, col0, WCOLS, &buf[0][0], WCOLS);
            for (int q = 0; q < nq; q++) {
                __m256 d[6], t[6];
                for (int a = 0; a < 6; a++) d[a] = _mm256_loadu_ps(src + a * lds + VL * q);
                bt6(d, t);
                for (int k = 0; k < 6; k++) _mm256_store_ps(&w[k][VL * q], t[k]);
            }
            float *vc = v + ch * group;
            for (int k = 0; k < 6; k++) {
                __m256 e[6], r[6];
                deinterleave(w[k], e);
                bt6(e, r);
                for (int l = 0; l < 6; l++) {
                    float *dst = vc + (k * 6 + l) * pos_stride;
                    if (whole)
                        _mm256_storeu_ps(dst + sg.off[0], r[l]);
                    else
                        for (int q = 0; q < sg.count; q++) _mm256_maskstore_ps(dst + sg.off[q], store[q], r[l]);
                }
            }
        }
        i += n;
    }
}

static inline int act_is_vector(int kind) { return kind <= 3 || kind == 6 || kind == 7; }

static inline __m256 act_vector(const oct_act *a, __m256 v) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    switch (a->kind) {
    case 1: return _mm256_max_ps(v, zero);
    case 2: return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(a->alpha)), _mm256_set1_ps(a->beta));
    case 3: return _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(a->alpha)), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case 6: {
        const __m256 t = _mm256_add_ps(_mm256_div_ps(v, _mm256_set1_ps(6.f)), _mm256_set1_ps(0.5f));
        return _mm256_mul_ps(v, _mm256_min_ps(_mm256_max_ps(t, zero), one));
    }
    case 7: {
        const __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(a->alpha), v, _mm256_set1_ps(a->beta));
        return _mm256_min_ps(_mm256_max_ps(t, zero), one);
    }
    default: return v;
    }
}

static void output_avx2(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                        int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                        const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    const int vec_act = act_is_vector(act->kind);
    for (int64_t i = 0; i < nt;) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t n = min64(VL, min64(g->tiles_x - tx, nt - i));
        const int64_t ncols = min64(4 * n, g->out_w - 4 * tx);
        const int64_t nrows = min64(4, g->out_h - 4 * ty);
        const int64_t nfull = vec_act ? ncols / VL : 0; /* vectors written whole; the rest is scalar */
        const __m256i load = lane_mask(n);
        for (int64_t m = 0; m < channels; m++) {
            const float *ym = y + m * ld + i;
            __m256 t[6][4], o[4][4];
            for (int k = 0; k < 6; k++) {
                __m256 mm[6];
                for (int l = 0; l < 6; l++) {
                    const float *src = ym + (6 * k + l) * pos_stride;
                    mm[l] = n == VL ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, load);
                }
                at6(mm, t[k]);
            }
            for (int l = 0; l < 4; l++) {
                const __m256 col[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
                __m256 r[4];
                at6(col, r);
                for (int a = 0; a < 4; a++) o[a][l] = r[a];
            }
            const float bm = bias ? bias[m] : 0.f;
            const __m256 bv = _mm256_set1_ps(bm);
            for (int a = 0; a < nrows; a++) {
                const int64_t base = m * plane + (4 * ty + a) * g->out_w + 4 * tx;
                __m256 e[4], row[4];
                transpose4(o[a], e); /* e[t%4] = tile t | tile t+4, 4 columns each */
                row[0] = _mm256_permute2f128_ps(e[0], e[1], 0x20);
                row[1] = _mm256_permute2f128_ps(e[2], e[3], 0x20);
                row[2] = _mm256_permute2f128_ps(e[0], e[1], 0x31);
                row[3] = _mm256_permute2f128_ps(e[2], e[3], 0x31);
                for (int64_t q = 0; q < nfull; q++) {
                    __m256 s = _mm256_add_ps(row[q], bv);
                    if (res) s = _mm256_add_ps(s, _mm256_loadu_ps(res + base + VL * q));
                    _mm256_storeu_ps(out + base + VL * q, act_vector(act, s));
                }
                if (nfull * VL < ncols) {
                    float tmp[4 * VL];
                    for (int q = 0; q < 4; q++) _mm256_storeu_ps(tmp + VL * q, row[q]);
                    const int64_t j0 = nfull * VL;
                    for (int64_t j = j0; j < ncols; j++) out[base + j] = tmp[j];
                    oct_wino_finish_scalar(out + base + j0, ncols - j0, bm, res ? res + base + j0 : NULL, act);
                }
            }
        }
        i += n;
    }
}

/* Tile-major y: 8 channels of one tile per ymm; per output row, transpose4 turns o[a][0..3] into
   e[k] holding channel k's four columns (low half) and channel k+4's (high half). */
static void output_t_avx2(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                          int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                          const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    const int vec_act = act_is_vector(act->kind);
    for (int64_t i = 0; i < nt; i++) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t ncols = min64(4, g->out_w - 4 * tx), nrows = min64(4, g->out_h - 4 * ty);
        const __m128i cm = _mm_cmpgt_epi32(_mm_set1_epi32((int)ncols), _mm_setr_epi32(0, 1, 2, 3));
        for (int64_t m0 = 0; m0 < channels; m0 += VL) {
            const int nch = (int)min64(VL, channels - m0);
            const __m256i lm = lane_mask(nch);
            const float *ym = y + i * ld + m0;
            __m256 t[6][4], o[4][4];
            for (int k = 0; k < 6; k++) {
                __m256 mm[6];
                for (int l = 0; l < 6; l++) mm[l] = _mm256_maskload_ps(ym + (6 * k + l) * pos_stride, lm);
                at6(mm, t[k]);
            }
            const __m256 bv = bias ? _mm256_maskload_ps(bias + m0, lm) : _mm256_setzero_ps();
            for (int l = 0; l < 4; l++) {
                const __m256 col[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
                __m256 r[4];
                at6(col, r);
                for (int a = 0; a < 4; a++) o[a][l] = _mm256_add_ps(r[a], bv);
            }
            for (int a = 0; a < nrows; a++) {
                const int64_t row = (4 * ty + a) * g->out_w + 4 * tx;
                __m256 e[4];
                transpose4(o[a], e);
                for (int k = 0; k < 4; k++) {
                    __m256 sv = e[k];
                    if (res) {
                        const __m128 lo = k < nch ? _mm_maskload_ps(res + (m0 + k) * plane + row, cm) : _mm_setzero_ps();
                        const __m128 hi =
                            k + 4 < nch ? _mm_maskload_ps(res + (m0 + k + 4) * plane + row, cm) : _mm_setzero_ps();
                        sv = _mm256_add_ps(sv, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
                    }
                    if (vec_act) sv = act_vector(act, sv);
                    for (int h = 0; h < 2; h++) {
                        if (k + 4 * h >= nch) continue;
                        float *dst = out + (m0 + k + 4 * h) * plane + row;
                        _mm_maskstore_ps(dst, cm, h ? _mm256_extractf128_ps(sv, 1) : _mm256_castps256_ps128(sv));
                        if (!vec_act) oct_wino_finish_scalar(dst, ncols, 0.f, NULL, act);
                    }
                }
            }
        }
    }
}

const oct_wino_kernel_set oct_avx2_wino_kernels = {"avx2", input_avx2, output_avx2, output_t_avx2};
