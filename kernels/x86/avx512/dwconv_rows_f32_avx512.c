/* The padded copy and the row loop of the fp32 depthwise row path (ref/dwconv_rows_f32.h) with
   AVX-512: 16 output columns per vector, one FMA per tap, the weights of the common kernels (3x3,
   5x5) held in registers, two accumulators per vector so that the tap
   chain is half as long; epilogue in registers before the one store. */
#include <immintrin.h>

#include "dwconv_isa.h"
#include "sgemm_avx512_act.h"

static inline __mmask16 first_lanes(int64_t count) {
    return count <= 0 ? 0 : count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

/* Column stride 2: 32 input columns at a time, split into their even and odd columns (VPERMT2PS),
   each stored at its phase position. */
static void fill_split(const oct_dwf_plan *pl, const float *row, float *dst) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    /* input column ic (padded q = ic + pw) goes to phase q % 2, position q / 2 */
    float *ev = dst + (pl->pw & 1) * pl->half + pl->pw / 2;
    float *od = dst + ((pl->pw + 1) & 1) * pl->half + (pl->pw + 1) / 2;
    for (int64_t ic = 0; ic < pl->iw; ic += 32) {
        const int64_t left = pl->iw - ic;
        if (left >= 32) { /* plain loads and stores: a masked store costs more even with every lane set */
            const __m512 a = _mm512_loadu_ps(row + ic), b = _mm512_loadu_ps(row + ic + 16);
            _mm512_storeu_ps(ev + ic / 2, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(od + ic / 2, _mm512_permutex2var_ps(a, odd, b));
        } else {
            const __m512 a = _mm512_maskz_loadu_ps(first_lanes(left), row + ic);
            const __m512 b = _mm512_maskz_loadu_ps(first_lanes(left - 16), row + ic + 16);
            _mm512_mask_storeu_ps(ev + ic / 2, first_lanes((left + 1) / 2), _mm512_permutex2var_ps(a, even, b));
            _mm512_mask_storeu_ps(od + ic / 2, first_lanes(left / 2), _mm512_permutex2var_ps(a, odd, b));
        }
    }
}

/* Only the padding the taps read is zeroed (each phase's first vector, and from its last input
   column on), before the input columns are stored over it: zeroing whole rows cost as much as the
   copy itself. The zeroing loops stay inline (not turned into memset calls: a call per few
   vectors), and the phase bounds are computed once per band (an integer division per row was a
   fifth of the stride-2 time). */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void
fill_avx512(const oct_dwf_plan *pl, const float *x, int64_t first, int64_t n, float *dst) {
    const int64_t pitch = pl->pitch, half = pl->half, ih = pl->ih, iw = pl->iw, pw = pl->pw, ph = pl->ph;
    const int phases = pl->layout == OCT_DWF_PHASES ? pl->sw : 1;
    const __m512 zero = _mm512_setzero_ps();
    int64_t tail[2]; /* phase f holds padded columns q = f + phases * m; from m = tail[f] (rounded
                        down to a vector) on, none is an input column */
    for (int f = 0; f < phases; f++) tail[f] = f * half + (pw + iw - f + phases - 1) / phases / 16 * 16;
    for (int64_t r = 0; r < n; r++, dst += pitch) {
        const int64_t ir = first + r - ph;
        if (ir < 0 || ir >= ih) {
            for (int64_t j = 0; j < pitch; j += 16) _mm512_store_ps(dst + j, zero);
            continue;
        }
        for (int f = 0; f < phases; f++) {
            _mm512_store_ps(dst + f * half, zero);
            for (int64_t j = tail[f]; j < (f + 1) * half; j += 16) _mm512_store_ps(dst + j, zero);
        }
        const float *row = x + ir * iw;
        if (phases == 2) {
            fill_split(pl, row, dst);
            continue;
        }
        float *d = dst + pw;
        int64_t c = 0;
        for (; c + 16 <= iw; c += 16) _mm512_storeu_ps(d + c, _mm512_loadu_ps(row + c));
        if (c < iw) {
            const __mmask16 tail_cols = first_lanes(iw - c);
            _mm512_mask_storeu_ps(d + c, tail_cols, _mm512_maskz_loadu_ps(tail_cols, row + c));
        }
    }
}

/* Lanes k of the 32 floats a0:a1 from off + k (off a compile-time constant after inlining). */
static inline __attribute__((always_inline)) __m512 shifted(__m512 a0, __m512 a1, int off) {
#define OCT_ALIGNR(n) _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(a1), _mm512_castps_si512(a0), n))
    switch (off) {
    case 0: return a0;
    case 1: return OCT_ALIGNR(1);
    case 2: return OCT_ALIGNR(2);
    case 3: return OCT_ALIGNR(3);
    default: return OCT_ALIGNR(4);
    }
#undef OCT_ALIGNR
}

/* The epilogue of one output vector and its store: residual, activation, the channel sum. */
static inline __attribute__((always_inline)) void put(__m512 acc, const float *res, const oct_act *act, float *y,
                                                      int64_t left, __m512 *total, int want_sum) {
    const __mmask16 keep = first_lanes(left);
    if (res) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(keep, res));
    acc = oct_avx512_act(act, acc);
    if (left >= 16) _mm512_storeu_ps(y, acc); /* a masked store costs more even with every lane set */
    else _mm512_mask_storeu_ps(y, keep, acc);
    if (want_sum) *total = _mm512_mask_add_ps(*total, keep, *total, acc);
}

/* The taps of nr (1 or 2) output rows at columns [c0, c0 + 16) at column stride 1, the second
   row one scratch row below the first (row stride 1), into acc[row][tap parity]. Each scratch row
   the rows read is two aligned loads (rows start on 64 bytes, c0 on 16 floats); the taps at
   offsets 1..4 are VALIGND of the pair, where unaligned loads would split a cache line on 15 of
   16 offsets; two rows share the kh - 1 scratch rows they both read. */
static inline __attribute__((always_inline)) void taps(const float *in, int64_t pitch, int64_t c0, const __m512 *wv,
                                                       const int kh, const int kw, const int nr, __m512 acc[2][2]) {
#pragma GCC unroll 6
    for (int ii = 0; ii < kh + nr - 1; ii++) {
        const float *src = in + ii * pitch + c0;
        const __m512 a0 = _mm512_load_ps(src), a1 = kw > 1 ? _mm512_load_ps(src + 16) : a0;
#pragma GCC unroll 5
        for (int j = 0; j < kw; j++) {
            const __m512 v = shifted(a0, a1, j);
#pragma GCC unroll 2
            for (int q = 0; q < nr; q++) {
                const int i = ii - q;
                if (i >= 0 && i < kh) acc[q][j & 1] = _mm512_fmadd_ps(v, wv[i * kw + j], acc[q][j & 1]);
            }
        }
    }
}

/* Output rows of a band at column stride 1 for the kernels whose weights sit in registers (kh, kw
   compile-time constants, kw <= 5): rows in pairs at row stride 1 (four independent accumulator
   chains, and the shared scratch rows read once), else one at a time. */
static inline __attribute__((always_inline)) void rows_held(const oct_dwf_plan *pl, const float *in, int64_t rows,
                                                            const float *w, float bias, const float *res,
                                                            const oct_act *act, float *y, double *sum, const int kh,
                                                            const int kw) {
    __m512 wv[25];
#pragma GCC unroll 25
    for (int t = 0; t < kh * kw; t++) wv[t] = _mm512_set1_ps(w[t]);
    const int64_t pitch = pl->pitch, ow = pl->ow, step = pl->sh * pitch;
    const __m512 vb = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
    __m512 total = zero;
    int64_t r = 0;
    if (pl->sh == 1)
        for (; r + 2 <= rows; r += 2, in += 2 * pitch) {
            for (int64_t c0 = 0; c0 < ow; c0 += OCT_DWF_COLS) {
                __m512 acc[2][2] = {{vb, zero}, {vb, zero}};
                taps(in, pitch, c0, wv, kh, kw, 2, acc);
                for (int q = 0; q < 2; q++)
                    put(_mm512_add_ps(acc[q][0], acc[q][1]), res ? res + (r + q) * ow + c0 : NULL, act,
                        y + (r + q) * ow + c0, ow - c0, &total, sum != NULL);
            }
        }
    for (; r < rows; r++, in += step)
        for (int64_t c0 = 0; c0 < ow; c0 += OCT_DWF_COLS) {
            __m512 acc[2][2] = {{vb, zero}, {zero, zero}};
            taps(in, pitch, c0, wv, kh, kw, 1, acc);
            put(_mm512_add_ps(acc[0][0], acc[0][1]), res ? res + r * ow + c0 : NULL, act, y + r * ow + c0, ow - c0,
                &total, sum != NULL);
        }
    if (sum) *sum += (double)_mm512_reduce_add_ps(total);
}

/* Any other kernel: one unaligned load per tap, weights broadcast per tap. */
static void rows_any(const oct_dwf_plan *pl, const float *in, int64_t rows, const float *w, float bias,
                     const float *res, const oct_act *act, float *y, double *sum) {
    const int kh = pl->kh, kw = pl->kw, sw = pl->sw;
    const int64_t pitch = pl->pitch, half = pl->half, ow = pl->ow, step = pl->sh * pitch;
    for (int64_t r = 0; r < rows; r++, in += step, y += ow) {
        __m512 total = _mm512_setzero_ps();
        for (int64_t c0 = 0; c0 < ow; c0 += OCT_DWF_COLS) {
            __m512 acc = _mm512_set1_ps(bias);
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(in + i * pitch + (j % sw) * half + c0 + j / sw),
                                          _mm512_set1_ps(w[i * kw + j]), acc);
            put(acc, res ? res + r * ow + c0 : NULL, act, y + c0, ow - c0, &total, sum != NULL);
        }
        if (sum) *sum += (double)_mm512_reduce_add_ps(total);
    }
}

/* Output rows of a band at column stride 2 from plain scratch rows (3x3 and 5x5 windows): per
   kernel row, three aligned loads from the vector's first window and two VALIGND pairs (shifted by
   2 and 4 columns); each tap's even or odd columns are one VPERMT2PS of a pair. Measured against
   the phase split (one channel at a time, both alternating): 1.1x at 112 input columns, 1.16x at
   56, 1.2-1.3x at 28 and 56 with 5x5: splitting every input row cost more than the permutes. */
static inline __attribute__((always_inline)) void rows_s2perm(const oct_dwf_plan *pl, const float *in, int64_t rows,
                                                            const float *w, float bias, const float *res,
                                                            const oct_act *act, float *y, double *sum, const int kh,
                                                            const int kw) {
    __m512 wv[25];
#pragma GCC unroll 25
    for (int t = 0; t < kh * kw; t++) wv[t] = _mm512_set1_ps(w[t]);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const int64_t pitch = pl->pitch, ow = pl->ow, step = pl->sh * pitch;
    const __m512 vb = _mm512_set1_ps(bias);
    __m512 total = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++, in += step)
        for (int64_t c0 = 0; c0 < ow; c0 += OCT_DWF_COLS) {
            __m512 acc0 = vb, acc1 = _mm512_setzero_ps();
#pragma GCC unroll 5
            for (int i = 0; i < kh; i++) {
                const float *src = in + i * pitch + 2 * c0;
                const __m512 a0 = _mm512_load_ps(src), a1 = _mm512_load_ps(src + 16), a2 = _mm512_load_ps(src + 32);
                const __m512 b0 = shifted(a0, a1, 2), b1 = shifted(a1, a2, 2);
                const __m512 d0 = shifted(a0, a1, 4), d1 = shifted(a1, a2, 4);
#pragma GCC unroll 5
                for (int j = 0; j < kw; j++) {
                    const __m512 lo = j < 2 ? a0 : j < 4 ? b0 : d0, hi = j < 2 ? a1 : j < 4 ? b1 : d1;
                    const __m512 v = _mm512_permutex2var_ps(lo, j & 1 ? odd : even, hi);
                    if (j & 1) acc1 = _mm512_fmadd_ps(v, wv[i * kw + j], acc1);
                    else acc0 = _mm512_fmadd_ps(v, wv[i * kw + j], acc0);
                }
            }
            put(_mm512_add_ps(acc0, acc1), res ? res + r * ow + c0 : NULL, act, y + r * ow + c0, ow - c0, &total,
                sum != NULL);
        }
    if (sum) *sum += (double)_mm512_reduce_add_ps(total);
}

static void rows_avx512(const oct_dwf_plan *pl, const float *in, int64_t rows, const float *w, float bias,
                        const float *res, const oct_act *act, float *y, double *sum) {
    const int plain2 = pl->sw == 2 && pl->layout == OCT_DWF_PLAIN;
    if (plain2 && pl->kh == 3 && pl->kw == 3) rows_s2perm(pl, in, rows, w, bias, res, act, y, sum, 3, 3);
    else if (plain2 && pl->kh == 5 && pl->kw == 5) rows_s2perm(pl, in, rows, w, bias, res, act, y, sum, 5, 5);
    else if (plain2) oct_ref_dwf_kernels.rows(pl, in, rows, w, bias, res, act, y, sum); /* not planned so */
    else if (pl->sw == 1 && pl->kh == 3 && pl->kw == 3) rows_held(pl, in, rows, w, bias, res, act, y, sum, 3, 3);
    else if (pl->sw == 1 && pl->kh == 5 && pl->kw == 5) rows_held(pl, in, rows, w, bias, res, act, y, sum, 5, 5);
    else rows_any(pl, in, rows, w, bias, res, act, y, sum); /* and stride-2 phases, which dw_path.h does not plan
                                                               for 3x3 / 5x5 */
}

/* ---- dense convolutions with few input channels ---------------------------------------------- */

/* The taps of nv (1 or 2, compile-time) output vectors at columns c0 (and c0 + 16) of one output
   row, for OCT_DWF_DENSE_M output channels: acc[l][v]. Each shifted input vector feeds four FMAs
   (one per output channel), each weight broadcast two. kh, kw, sw compile-time, kw / sw <= 4; the
   plan's phase width holds the third vector a pair loads (kw > sw: half >= 16 * vecs + 16). */
static inline __attribute__((always_inline)) void dense_taps(const float *in, int64_t cs, int channels,
                                                             int64_t pitch, int64_t half, int64_t c0,
                                                             const float *w, const int kh, const int kw,
                                                             const int sw, const int nv, __m512 acc[4][2]) {
    const int kvol = kh * kw;
    for (int c = 0; c < channels; c++) {
        const float *wc = w + c * kvol; /* output channel l's at wc + l * channels * kvol */
#pragma GCC unroll 7
        for (int i = 0; i < kh; i++) {
#pragma GCC unroll 2
            for (int ph = 0; ph < sw; ph++) {
                const float *src = in + c * cs + i * pitch + ph * half + c0;
                const __m512 a0 = _mm512_load_ps(src);
                const __m512 a1 = kw > sw || nv == 2 ? _mm512_load_ps(src + 16) : a0;
                const __m512 a2 = kw > sw && nv == 2 ? _mm512_load_ps(src + 32) : a1;
#pragma GCC unroll 7
                for (int j = ph; j < kw; j += sw) {
                    const __m512 v0 = shifted(a0, a1, j / sw), v1 = nv == 2 ? shifted(a1, a2, j / sw) : v0;
#pragma GCC unroll 4
                    for (int l = 0; l < OCT_DWF_DENSE_M; l++) {
                        const __m512 wt = _mm512_set1_ps(wc[l * channels * kvol + i * kw + j]);
                        acc[l][0] = _mm512_fmadd_ps(v0, wt, acc[l][0]);
                        if (nv == 2) acc[l][1] = _mm512_fmadd_ps(v1, wt, acc[l][1]);
                    }
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) void dense_put(__m512 acc[4][2], const float *bias, int nm,
                                                            const float *res, const oct_act *act, float *y,
                                                            int64_t y_cs, int64_t off, int64_t left, const int nv) {
    __m512 unused = _mm512_setzero_ps();
    /* constant indices into acc (l < nm tested inside), so that it stays in registers */
#pragma GCC unroll 4
    for (int l = 0; l < OCT_DWF_DENSE_M; l++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            if (l >= nm) continue;
            const int64_t o = l * y_cs + off + 16 * v;
            put(_mm512_add_ps(acc[l][v], _mm512_set1_ps(bias[l])), res ? res + o : NULL, act, y + o, left - 16 * v,
                &unused, 0);
        }
}

static inline __attribute__((always_inline)) void dense_held(const oct_dwf_plan *pl, const float *in, int64_t cs,
                                                             int channels, int64_t rows, const float *w,
                                                             const float *bias, int nm, const float *res,
                                                             const oct_act *act, float *y, int64_t y_cs,
                                                             const int kh, const int kw, const int sw) {
    const int64_t pitch = pl->pitch, half = pl->half, ow = pl->ow, step = pl->sh * pitch;
    for (int64_t r = 0; r < rows; r++, in += step) {
        int64_t c0 = 0;
        for (; c0 + 16 < ow; c0 += 32) {
            __m512 acc[4][2];
            for (int l = 0; l < 4; l++) acc[l][0] = acc[l][1] = _mm512_setzero_ps();
            dense_taps(in, cs, channels, pitch, half, c0, w, kh, kw, sw, 2, acc);
            dense_put(acc, bias, nm, res, act, y, y_cs, r * ow + c0, ow - c0, 2);
        }
        if (c0 < ow) {
            __m512 acc[4][2];
            for (int l = 0; l < 4; l++) acc[l][0] = acc[l][1] = _mm512_setzero_ps();
            dense_taps(in, cs, channels, pitch, half, c0, w, kh, kw, sw, 1, acc);
            dense_put(acc, bias, nm, res, act, y, y_cs, r * ow + c0, ow - c0, 1);
        }
    }
}

/* Any other kernel: one unaligned load per tap and input channel, four output channels. */
static void dense_any(const oct_dwf_plan *pl, const float *in, int64_t cs, int channels, int64_t rows,
                      const float *w, const float *bias, int nm, const float *res, const oct_act *act, float *y,
                      int64_t y_cs) {
    const int kh = pl->kh, kw = pl->kw, sw = pl->sw, kvol = kh * kw;
    const int64_t pitch = pl->pitch, half = pl->half, ow = pl->ow, step = pl->sh * pitch;
    for (int64_t r = 0; r < rows; r++, in += step)
        for (int64_t c0 = 0; c0 < ow; c0 += OCT_DWF_COLS) {
            __m512 acc[4][2];
            for (int l = 0; l < 4; l++) acc[l][0] = acc[l][1] = _mm512_setzero_ps();
            for (int c = 0; c < channels; c++)
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++) {
                        const __m512 v = _mm512_loadu_ps(in + c * cs + i * pitch + (j % sw) * half + c0 + j / sw);
                        for (int l = 0; l < OCT_DWF_DENSE_M; l++)
                            acc[l][0] = _mm512_fmadd_ps(
                                v, _mm512_set1_ps(w[(l * channels + c) * kvol + i * kw + j]), acc[l][0]);
                    }
            dense_put(acc, bias, nm, res, act, y, y_cs, r * ow + c0, ow - c0, 1);
        }
}

static void dense_rows_avx512(const oct_dwf_plan *pl, const float *in, int64_t cs, int channels, int64_t rows,
                              const float *w, const float *bias, int nm, const float *res, const oct_act *act,
                              float *y, int64_t y_cs) {
    if (pl->sw == 2 && pl->layout == OCT_DWF_PLAIN) /* not planned so */
        oct_ref_dwf_kernels.dense_rows(pl, in, cs, channels, rows, w, bias, nm, res, act, y, y_cs);
    else if (pl->kh == 3 && pl->kw == 3 && pl->sw == 2)
        dense_held(pl, in, cs, channels, rows, w, bias, nm, res, act, y, y_cs, 3, 3, 2);
    else if (pl->kh == 7 && pl->kw == 7 && pl->sw == 2)
        dense_held(pl, in, cs, channels, rows, w, bias, nm, res, act, y, y_cs, 7, 7, 2);
    else if (pl->kh == 5 && pl->kw == 5 && pl->sw == 2)
        dense_held(pl, in, cs, channels, rows, w, bias, nm, res, act, y, y_cs, 5, 5, 2);
    else if (pl->kh == 3 && pl->kw == 3 && pl->sw == 1)
        dense_held(pl, in, cs, channels, rows, w, bias, nm, res, act, y, y_cs, 3, 3, 1);
    else dense_any(pl, in, cs, channels, rows, w, bias, nm, res, act, y, y_cs);
}

const oct_dwf_kernels oct_avx512_dwf_kernels = {"avx512", fill_avx512, rows_avx512, dense_rows_avx512};
