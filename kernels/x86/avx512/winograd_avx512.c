/* AVX-512 Winograd F(4x4, 3x3) transforms (ref/winograd.h): 16 tiles of one tile row per zmm.

   Input: the column pass B^T d runs first, on whole input rows (contiguous masked loads; the
   padding is the zeroed lanes), into a 6 x 80 scratch; the row pass then needs, per scratch row,
   columns 4t+j of 16 tiles t as one vector for each j = 0..5 - a 4-way de-interleave done with
   two-source permutes, not gathers. Output: the mirror image - A^T m A over 16 tiles, re-interleave
   to 64 contiguous output columns, epilogue, masked stores. */
#include <immintrin.h>

#include "../../winograd_isa.h"
#include "sgemm_avx512_act.h"

enum { VL = 16, WCOLS = 80 }; /* scratch row: 4 * 16 + 2 columns used, + 4 read by the shifted loads */

static inline __mmask16 lanes(int64_t n) {
    return n <= 0 ? (__mmask16)0 : n >= VL ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* B^T d. */
static inline void bt6(const __m512 d[6], __m512 t[6]) {
    const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f);
    const __m512 d42 = _mm512_sub_ps(d[4], d[2]), d31 = _mm512_sub_ps(d[3], d[1]);
    t[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    t[1] = _mm512_fnmadd_ps(four, _mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4]));
    t[2] = _mm512_fmadd_ps(four, _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3]));
    t[3] = _mm512_fmadd_ps(two, d31, d42);
    t[4] = _mm512_fnmadd_ps(two, d31, d42);
    t[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* A^T m over m[0], m[s], ..., m[5s]. */
static inline void at6(const __m512 *m, int s, __m512 o[4]) {
    const __m512 p12 = _mm512_add_ps(m[s], m[2 * s]), m12 = _mm512_sub_ps(m[s], m[2 * s]);
    const __m512 p34 = _mm512_add_ps(m[3 * s], m[4 * s]), m34 = _mm512_sub_ps(m[3 * s], m[4 * s]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], p12), p34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), m34, m12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), p34, p12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), m34, m12), m[5 * s]);
}

/* How one 16-column vector of an input row is loaded: a masked load at column `off`, and for a
   vector that starts left of the plane a lane shift right by `shift` (lanes below it zero). */
typedef struct {
    int64_t off;
    __mmask16 load, keep;
    __m512i idx;
    int shift;
} col_load;

static col_load plan_cols(int64_t c, int64_t w) {
    col_load L = {.off = c, .keep = 0xffff, .shift = 0};
    if (c >= 0) {
        L.load = lanes(w - c);
        return L;
    }
    const int64_t s = -c;
    L.off = 0;
    L.shift = 1;
    L.load = s >= VL ? 0 : lanes(min64(VL - s, w));
    L.keep = (__mmask16)~lanes(s);
    L.idx = _mm512_and_si512(_mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32((int)(s & 15))),
                             _mm512_set1_epi32(15));
    return L;
}

static inline __m512 load_cols(const col_load *L, const float *row) {
    if (!L->load) return _mm512_setzero_ps();
    const __m512 v = _mm512_maskz_loadu_ps(L->load, row + L->off);
    return L->shift ? _mm512_maskz_permutexvar_ps(L->keep, L->idx, v) : v;
}

/* Columns 4t+j, j = 0..5, of 16 tiles t from the scratch row r (at least 68 floats). */
static inline void deinterleave(const float *r, __m512 e[6]) {
    const __m512i ia = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i ib = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512 l0 = _mm512_loadu_ps(r), l1 = _mm512_loadu_ps(r + 16), l2 = _mm512_loadu_ps(r + 32),
                 l3 = _mm512_loadu_ps(r + 48);
    const __m512 s0 = _mm512_loadu_ps(r + 4), s1 = _mm512_loadu_ps(r + 20), s2 = _mm512_loadu_ps(r + 36),
                 s3 = _mm512_loadu_ps(r + 52);
    /* [j for tiles 0-7 | j+1 for tiles 0-7] and the same for tiles 8-15, then the halves joined. */
    const __m512 a01 = _mm512_permutex2var_ps(l0, ia, l1), b01 = _mm512_permutex2var_ps(l2, ia, l3);
    const __m512 a23 = _mm512_permutex2var_ps(l0, ib, l1), b23 = _mm512_permutex2var_ps(l2, ib, l3);
    const __m512 a45 = _mm512_permutex2var_ps(s0, ia, s1), b45 = _mm512_permutex2var_ps(s2, ia, s3);
    e[0] = _mm512_shuffle_f32x4(a01, b01, _MM_SHUFFLE(1, 0, 1, 0));
    e[1] = _mm512_shuffle_f32x4(a01, b01, _MM_SHUFFLE(3, 2, 3, 2));
    e[2] = _mm512_shuffle_f32x4(a23, b23, _MM_SHUFFLE(1, 0, 1, 0));
    e[3] = _mm512_shuffle_f32x4(a23, b23, _MM_SHUFFLE(3, 2, 3, 2));
    e[4] = _mm512_shuffle_f32x4(a45, b45, _MM_SHUFFLE(1, 0, 1, 0));
    e[5] = _mm512_shuffle_f32x4(a45, b45, _MM_SHUFFLE(3, 2, 3, 2));
}

/* The inverse: o[l] holds column 4t+l of 16 tiles; r[q] gets columns 16q .. 16q+15. */
static inline void interleave(const __m512 o[4], __m512 r[4]) {
    const __m512i i0 = _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
    const __m512i i1 = _mm512_setr_epi32(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
    const __m512 q0 = _mm512_shuffle_f32x4(o[0], o[1], _MM_SHUFFLE(1, 0, 1, 0)); /* l0 t0-7 | l1 t0-7 */
    const __m512 q1 = _mm512_shuffle_f32x4(o[0], o[1], _MM_SHUFFLE(3, 2, 3, 2)); /* l0 t8-15 | l1 t8-15 */
    const __m512 q2 = _mm512_shuffle_f32x4(o[2], o[3], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 q3 = _mm512_shuffle_f32x4(o[2], o[3], _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm512_permutex2var_ps(q0, i0, q2);
    r[1] = _mm512_permutex2var_ps(q0, i1, q2);
    r[2] = _mm512_permutex2var_ps(q1, i0, q3);
    r[3] = _mm512_permutex2var_ps(q1, i1, q3);
}

static void input_avx512(const oct_wino_geom *g, const float *x, int64_t channels, int64_t t0, int64_t nt,
                         float *v, int64_t pos_stride, int64_t group, int64_t group_stride) {
    float w[OCT_WINO_IN][WCOLS] __attribute__((aligned(64)));
    for (int64_t i = 0; i < nt;) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t n = min64(VL, min64(g->tiles_x - tx, nt - i));
        const int64_t col0 = 4 * tx - g->pad_l;
        const int nq = (int)((4 * n + 2 + VL - 1) / VL);
        col_load cl[WCOLS / VL];
        for (int q = 0; q < nq; q++) cl[q] = plan_cols(col0 + 16 * q, g->in_w);
        /* Columns past the chunk are read by the de-interleave into lanes that are never stored. */
        for (int q = nq; q < WCOLS / VL; q++)
            for (int k = 0; k < OCT_WINO_IN; k++) _mm512_store_ps(&w[k][16 * q], _mm512_setzero_ps());
        int64_t rows[OCT_WINO_IN];
        for (int a = 0; a < OCT_WINO_IN; a++) {
            const int64_t r = 4 * ty - g->pad_t + a;
            rows[a] = r >= 0 && r < g->in_h ? r : -1;
        }
        const oct_wino_segs sg = oct_wino_split(i, n, group, group_stride);
        __mmask16 store[16];
        for (int k = 0; k < sg.count; k++) store[k] = (__mmask16)(lanes(sg.hi[k]) & ~lanes(sg.lo[k]));
        for (int64_t ch = 0; ch < channels; ch++) {
            const float *plane = x + ch * g->in_h * g->in_w;
            for (int q = 0; q < nq; q++) {
                __m512 d[6], t[6];
                for (int a = 0; a < 6; a++)
                    d[a] = rows[a] < 0 ? _mm512_setzero_ps() : load_cols(&cl[q], plane + rows[a] * g->in_w);
                bt6(d, t);
                for (int k = 0; k < 6; k++) _mm512_store_ps(&w[k][16 * q], t[k]);
            }
            float *vc = v + ch * group;
            for (int k = 0; k < 6; k++) {
                __m512 e[6], r[6];
                deinterleave(w[k], e);
                bt6(e, r);
                for (int l = 0; l < 6; l++)
                    for (int q = 0; q < sg.count; q++)
                        _mm512_mask_storeu_ps(vc + (k * 6 + l) * pos_stride + sg.off[q], store[q], r[l]);
            }
        }
        i += n;
    }
}

static void output_avx512(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                          int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                          const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    for (int64_t i = 0; i < nt;) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t n = min64(VL, min64(g->tiles_x - tx, nt - i));
        const int64_t ncols = min64(4 * n, g->out_w - 4 * tx);
        const int64_t nrows = min64(4, g->out_h - 4 * ty);
        const __mmask16 load = lanes(n);
        __mmask16 cm[4];
        for (int q = 0; q < 4; q++) cm[q] = lanes(ncols - 16 * q);
        for (int64_t m = 0; m < channels; m++) {
            const float *ym = y + m * ld + i;
            __m512 mm[36], t[6][4], o[4][4];
            for (int p = 0; p < 36; p++) mm[p] = _mm512_maskz_loadu_ps(load, ym + p * pos_stride);
            for (int k = 0; k < 6; k++) at6(&mm[6 * k], 1, t[k]);
            for (int l = 0; l < 4; l++) {
                const __m512 col[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
                __m512 r[4];
                at6(col, 1, r);
                for (int a = 0; a < 4; a++) o[a][l] = r[a];
            }
            const __m512 bv = _mm512_set1_ps(bias ? bias[m] : 0.f);
            for (int a = 0; a < nrows; a++) {
                const int64_t base = m * plane + (4 * ty + a) * g->out_w + 4 * tx;
                __m512 r[4];
                interleave(o[a], r);
                for (int q = 0; q < 4 && cm[q]; q++) {
                    __m512 s = _mm512_add_ps(r[q], bv);
                    if (res) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(cm[q], res + base + 16 * q));
                    s = oct_avx512_act(act, s);
                    _mm512_mask_storeu_ps(out + base + 16 * q, cm[q], s);
                }
            }
        }
        i += n;
    }
}

/* 128-bit block q of v, and v with block q replaced by x (q a constant after unrolling). */
static inline __m128 block128(__m512 v, int q) {
    switch (q) {
    case 0: return _mm512_castps512_ps128(v);
    case 1: return _mm512_extractf32x4_ps(v, 1);
    case 2: return _mm512_extractf32x4_ps(v, 2);
    default: return _mm512_extractf32x4_ps(v, 3);
    }
}
static inline __m512 with_block128(__m512 v, __m128 x, int q) {
    switch (q) {
    case 0: return _mm512_insertf32x4(v, x, 0);
    case 1: return _mm512_insertf32x4(v, x, 1);
    case 2: return _mm512_insertf32x4(v, x, 2);
    default: return _mm512_insertf32x4(v, x, 3);
    }
}

/* Tile-major y: 16 channels of one tile per zmm. A^T m A gives o[a][b] over the channels; per output
   row a, a 4 x 16 transpose turns o[a][0..3] into r[k] whose 128-bit block q is channel 4q+k's four
   columns, stored (with the residual, the activation and the column mask) as one xmm each. */
static void output_t_avx512(const oct_wino_geom *g, const float *y, int64_t pos_stride, int64_t ld,
                            int64_t channels, int64_t t0, int64_t nt, const float *bias, const float *res,
                            const oct_act *act, float *out) {
    const int64_t plane = g->out_h * g->out_w;
    for (int64_t i = 0; i < nt; i++) {
        const int64_t ty = (t0 + i) / g->tiles_x, tx = (t0 + i) % g->tiles_x;
        const int64_t ncols = min64(4, g->out_w - 4 * tx), nrows = min64(4, g->out_h - 4 * ty);
        const __mmask8 cm = (__mmask8)((1u << ncols) - 1u);
        for (int64_t m0 = 0; m0 < channels; m0 += VL) {
            const int nch = (int)min64(VL, channels - m0);
            const __mmask16 lm = lanes(nch);
            const float *ym = y + i * ld + m0;
            __m512 mm[36], t[6][4], o[4][4];
            for (int p = 0; p < 36; p++) mm[p] = _mm512_maskz_loadu_ps(lm, ym + p * pos_stride);
            for (int k = 0; k < 6; k++) at6(&mm[6 * k], 1, t[k]);
            const __m512 bv = bias ? _mm512_maskz_loadu_ps(lm, bias + m0) : _mm512_setzero_ps();
            for (int l = 0; l < 4; l++) {
                const __m512 col[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
                __m512 r[4];
                at6(col, 1, r);
                for (int a = 0; a < 4; a++) o[a][l] = _mm512_add_ps(r[a], bv);
            }
            for (int a = 0; a < nrows; a++) {
                const int64_t row = (4 * ty + a) * g->out_w + 4 * tx;
                const __m512 t0v = _mm512_unpacklo_ps(o[a][0], o[a][1]), t1v = _mm512_unpackhi_ps(o[a][0], o[a][1]);
                const __m512 t2v = _mm512_unpacklo_ps(o[a][2], o[a][3]), t3v = _mm512_unpackhi_ps(o[a][2], o[a][3]);
                const __m512d p0 = _mm512_castps_pd(t0v), p1 = _mm512_castps_pd(t1v);
                const __m512d p2 = _mm512_castps_pd(t2v), p3 = _mm512_castps_pd(t3v);
                const __m512 r[4] = {_mm512_castpd_ps(_mm512_unpacklo_pd(p0, p2)),
                                     _mm512_castpd_ps(_mm512_unpackhi_pd(p0, p2)),
                                     _mm512_castpd_ps(_mm512_unpacklo_pd(p1, p3)),
                                     _mm512_castpd_ps(_mm512_unpackhi_pd(p1, p3))};
                for (int k = 0; k < 4; k++) {
                    __m512 sv = r[k];
                    if (res) {
                        __m512 rv = _mm512_setzero_ps();
                        for (int q = 0; q < 4; q++)
                            if (4 * q + k < nch)
                                rv = with_block128(rv, _mm_maskz_loadu_ps(cm, res + (m0 + 4 * q + k) * plane + row), q);
                        sv = _mm512_add_ps(sv, rv);
                    }
                    sv = oct_avx512_act(act, sv);
                    for (int q = 0; q < 4; q++) {
                        if (4 * q + k >= nch) continue;
                        float *dst = out + (m0 + 4 * q + k) * plane + row;
                        _mm_mask_storeu_ps(dst, cm, block128(sv, q));
                    }
                }
            }
        }
    }
}

const oct_wino_kernel_set oct_avx512_wino_kernels = {"avx512", input_avx512, output_avx512, output_t_avx512};
