/* The row loop of the int8 depthwise row path (ref/dwconv_rows.h) with AVX-512 VNNI and VBMI:
   16 output columns per vector. Per kernel row and tap group, one 64-byte load at the vector's
   first window, one VPERMB that gives lane k the four bytes of window k (k * sw .. k * sw + 3:
   any stride up to 4, so stride 2 wastes no lane and needs no phase split), and one VPDPBUSD with
   the group's four weights. The requantization is oct_requant_one's float sequence (VCVTPS2DQ
   rounds nearest-even like rintf; VMAXPS returns its second operand for NaN, ref's lo; VPMOVDB
   keeps the low byte like ref's cast). The padded copy of the band's rows uses plain loads but at
   a plane's very end: masked loads cost as much as the whole tap loop here (measured: 96 channels
   of 112x112, stride 2, 91 -> 68 us). */
#include <immintrin.h>

#include "dwconv_isa.h"

static inline __mmask16 first_lanes(int64_t count) {
    return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

static inline __mmask64 first_bytes(int64_t count) {
    return count <= 0 ? 0 : count >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << count) - 1);
}

static void fill_vbmi(const oct_dwr_plan *pl, const oct_dwr_chan *ch, int64_t first, int64_t n, uint8_t *dst) {
    const __m512i vx = _mm512_set1_epi8((char)ch->x_xor), vpad = _mm512_set1_epi8((char)ch->x_zp);
    const int64_t iw = pl->iw, plane_end = pl->ih * iw;
    for (int64_t r = 0; r < n; r++, dst += pl->pitch) {
        /* the padding first, then the row over it */
        for (int64_t j = 0; j < pl->pitch; j += 64) _mm512_store_si512(dst + j, vpad);
        const int64_t ir = first + r - pl->ph;
        if (ir < 0 || ir >= pl->ih) continue;
        const uint8_t *row = ch->x + ir * iw;
        uint8_t *d = dst + pl->pw;
        int64_t c = 0;
        for (; c + 64 <= iw; c += 64) _mm512_storeu_si512(d + c, _mm512_xor_si512(_mm512_loadu_si512(row + c), vx));
        if (c == iw) continue;
        const __mmask64 tail = first_bytes(iw - c);
        /* a whole 64-byte load where the plane goes on that far */
        const __m512i v =
            ir * iw + c + 64 <= plane_end ? _mm512_loadu_si512(row + c) : _mm512_maskz_loadu_epi8(tail, row + c);
        _mm512_mask_storeu_epi8(d + c, tail, _mm512_xor_si512(v, vx));
    }
}

/* The requantization constants of a channel. */
typedef struct {
    __m512i zp;
    __m512 m, lo, hi;
} rq_vecs;

/* Requantizes the 16 sums acc into the first `left` (at most 16 stored) bytes of y, adding the
   values stored to total with want (a compile-time switch: the sum costs 5% where unused). */
static inline __attribute__((always_inline)) void put(__m512i acc, const rq_vecs *q, int64_t left, uint8_t *y,
                                                      __m512i *total, const int want) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), q->m);
    v = _mm512_min_ps(_mm512_max_ps(v, q->lo), q->hi);
    const __m512i o = _mm512_add_epi32(_mm512_cvtps_epi32(v), q->zp);
    const __mmask16 keep = first_lanes(left);
    _mm_mask_storeu_epi8(y, keep, _mm512_cvtepi32_epi8(o));
    if (want) *total = _mm512_mask_add_epi32(*total, keep, *total, o);
}

/* Output rows of a band. With a stride sh known at compile time, rows go in pairs: the kh + sh
   scratch rows of a pair are each loaded and gathered once for both rows (a 3x3 stride-1 kernel:
   4 gathers for 2 output vectors instead of 6). sh 0: one row at a time, pl->sh. */
static inline __attribute__((always_inline)) void rows_body(const oct_dwr_plan *pl, const oct_dwr_chan *ch,
                                                            const uint8_t *in, int64_t rows, uint8_t *y, int64_t *sum,
                                                            const int kh, const int groups, const int sh,
                                                            const int want) {
    __m512i wv[OCT_DWR_MAX_GROUPS];
#pragma GCC unroll 32
    for (int t = 0; t < kh * groups; t++) wv[t] = _mm512_set1_epi32(ch->w[t]);
    /* byte b of lane k: k * sw + b */
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i idx = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(pl->sw * 0x01010101)),
                                         _mm512_set1_epi32(0x03020100));
    const __m512i vc = _mm512_set1_epi32(ch->c0);
    const rq_vecs q = {_mm512_set1_epi32(ch->zp), _mm512_set1_ps(ch->m), _mm512_set1_ps(ch->lo),
                       _mm512_set1_ps(ch->hi)};
    const int64_t pitch = pl->pitch, ow = pl->ow, col_step = OCT_DWR_COLS * pl->sw;
    /* a lane adds at most rows * ow / 16 values of 8 bits: a band's rows fit the scratch, so far
       inside int32 */
    __m512i total = _mm512_setzero_si512();
    int64_t r = 0;
    if (sh > 0)
        for (; r + 2 <= rows; r += 2) {
            const uint8_t *win = in + r * sh * pitch;
            uint8_t *y0 = y + r * ow, *y1 = y0 + ow;
            for (int64_t c = 0; c < ow; c += OCT_DWR_COLS, win += col_step) {
                __m512i acc0 = vc, acc1 = vc;
#pragma GCC unroll 8
                for (int i = 0; i < kh + sh; i++)
#pragma GCC unroll 4
                    for (int g = 0; g < groups; g++) {
                        const __m512i v = _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(win + i * pitch + 4 * g));
                        if (i < kh) acc0 = _mm512_dpbusd_epi32(acc0, v, wv[i * groups + g]);
                        if (i >= sh) acc1 = _mm512_dpbusd_epi32(acc1, v, wv[(i - sh) * groups + g]);
                    }
                put(acc0, &q, ow - c, y0 + c, &total, want);
                put(acc1, &q, ow - c, y1 + c, &total, want);
            }
        }
    const int64_t row_step = pl->sh * pitch;
    for (in += r * row_step; r < rows; r++, in += row_step) {
        const uint8_t *win = in;
        for (int64_t c = 0; c < ow; c += OCT_DWR_COLS, win += col_step) {
            __m512i acc = vc;
#pragma GCC unroll 8
            for (int i = 0; i < kh; i++)
#pragma GCC unroll 4
                for (int g = 0; g < groups; g++) {
                    const __m512i v = _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(win + i * pitch + 4 * g));
                    acc = _mm512_dpbusd_epi32(acc, v, wv[i * groups + g]);
                }
            put(acc, &q, ow - c, y + r * ow + c, &total, want);
        }
    }
    if (want)
        *sum += _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(total)),
                                                         _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(total, 1))));
}

static void rows_vbmi(const oct_dwr_plan *pl, const oct_dwr_chan *ch, const uint8_t *in, int64_t rows, uint8_t *y,
                      int64_t *sum) {
    /* the networks' kernels and strides get their own unrolled copy */
    const int kh = pl->kh, groups = pl->groups, sh = pl->sh;
#define ROWS_BODY(kh_, groups_, sh_)                                                                   \
    (sum ? rows_body(pl, ch, in, rows, y, sum, kh_, groups_, sh_, 1)                                   \
         : rows_body(pl, ch, in, rows, y, sum, kh_, groups_, sh_, 0))
    if (kh == 3 && groups == 1 && sh == 1) ROWS_BODY(3, 1, 1);
    else if (kh == 3 && groups == 1 && sh == 2) ROWS_BODY(3, 1, 2);
    else if (kh == 5 && groups == 2 && sh == 1) ROWS_BODY(5, 2, 1);
    else if (kh == 5 && groups == 2 && sh == 2) ROWS_BODY(5, 2, 2);
    else ROWS_BODY(kh, groups, 0);
#undef ROWS_BODY
}

const oct_dwr_kernels oct_vbmi_dwr_kernels = {"vbmi", fill_vbmi, rows_vbmi};
