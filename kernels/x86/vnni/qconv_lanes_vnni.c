/* AVX-512 VNNI channel-lane int8 convolution (ref/qconv_lanes.h).

   Register tile: 6 pixels x 4 channel vectors (64 output channels) or 8 pixels x up to 3, at most
   24 zmm accumulators. Per (tap, channel group): the block's weight vectors are loaded once and
   each pixel's 4 input bytes are broadcast (VPBROADCASTD) and multiplied into every vector
   (VPDPBUSD: u8 activations x s8 weights, wrapping like ref). The write-back requantizes with
   per-lane constants (oct_requant_one's float sequence: VMAXPS keeps lo on NaN, VCVTPS2DQ rounds
   to nearest even) into an L1 stage of [pixel][64 channel bytes]; each 16 pixels of a strip are
   then transposed by four rounds of in-lane unpacks and stored as 16-byte runs of the NCHW output
   rows, through a fused activation table by VPERMI2B where the CPU has VBMI. The slab repack runs
   the same transposition the other way: 16 channel rows of 64 input columns become 64 pixels of 16
   channel bytes. */
#include <immintrin.h>
#include <string.h>

#include "qlut_vbmi.h"
#include "ref/qconv_lanes.h"

enum { LANES = 16, STRIP = 48, STAGE_ROW = 64 };

/* r[i] = row i (64 bytes); afterwards out[e]'s 128-bit lane L holds byte 16L + e of rows 0..15. */
static inline __attribute__((always_inline)) void transpose16x64(const __m512i r[16], __m512i out[16]) {
    __m512i a[16], b[16], c[16];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) { /* a[8h1 + k]: rows 2k, 2k+1; bytes e = 8h1 + word */
        a[k] = _mm512_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[8 + k] = _mm512_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 2
    for (int h1 = 0; h1 < 2; h1++)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) { /* b[8h1 + 4h2 + k]: rows 4k..4k+3; e = 8h1 + 4h2 + dword */
            b[8 * h1 + k] = _mm512_unpacklo_epi16(a[8 * h1 + 2 * k], a[8 * h1 + 2 * k + 1]);
            b[8 * h1 + 4 + k] = _mm512_unpackhi_epi16(a[8 * h1 + 2 * k], a[8 * h1 + 2 * k + 1]);
        }
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
#pragma GCC unroll 2
        for (int m = 0; m < 2; m++) { /* c[4h + 2h3 + m]: rows 8m..8m+7; e = 4h + 2h3 + qword */
            c[4 * h + m] = _mm512_unpacklo_epi32(b[4 * h + 2 * m], b[4 * h + 2 * m + 1]);
            c[4 * h + 2 + m] = _mm512_unpackhi_epi32(b[4 * h + 2 * m], b[4 * h + 2 * m + 1]);
        }
#pragma GCC unroll 8
    for (int h = 0; h < 8; h++) { /* out[2h + h4]: rows 0..15 of e = 2h + h4 */
        out[2 * h] = _mm512_unpacklo_epi64(c[2 * h], c[2 * h + 1]);
        out[2 * h + 1] = _mm512_unpackhi_epi64(c[2 * h], c[2 * h + 1]);
    }
}

static inline __m128i lane_of(__m512i v, int L) {
    switch (L) {
    case 0: return _mm512_castsi512_si128(v);
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    default: return _mm512_extracti32x4_epi32(v, 3);
    }
}

/* ---- slab repack --------------------------------------------------------------------------------- */

/* Input columns [iw0, iw0 + n) (n <= 64) of 16 channels' row into their slab pixels. */
static void repack_cols(const uint8_t *row, int64_t plane, int64_t n, __m512i vx, uint8_t *dst, int64_t C4) {
    const __mmask64 m = n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1;
    __m512i r[16], out[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, row + i * plane), vx);
    transpose16x64(r, out);
#pragma GCC unroll 4
    for (int L = 0; L < 4; L++)
#pragma GCC unroll 16
        for (int e = 0; e < 16; e++)
            if (16 * L + e < n) _mm_storeu_si128((__m128i *)(void *)(dst + (16 * L + e) * C4), lane_of(out[e], L));
}

static void vnni_repack(const oct_lconv_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                        const oct_lconv_band *b, uint8_t *slab) {
    if (s->C % 16) {
        oct_ref_lconv_kernels.repack(s, x, x_xor, pad, b, slab);
        return;
    }
    const int64_t IW = s->g.in[2], pw = s->g.pad[2], plane = s->g.in[1] * IW, C4 = s->C4;
    const __m512i vx = _mm512_set1_epi8((char)x_xor);
    for (int64_t r = 0; r < b->rows; r++) {
        uint8_t *srow = slab + r * b->pitch;
        int64_t lo, hi; /* slab columns holding input columns lo - pw .. hi - pw */
        const int64_t ih = oct_lconv_pad_row(s, b, r, pad, srow, &lo, &hi);
        if (ih < 0) continue;
        for (int64_t c0 = 0; c0 < s->C; c0 += 16)
            for (int64_t z = lo; z < hi; z += 64)
                repack_cols(x + c0 * plane + ih * IW + (z - pw), plane, hi - z < 64 ? hi - z : 64, vx,
                            srow + z * C4 + c0, C4);
    }
}

/* ---- the convolution ------------------------------------------------------------------------------ */

/* Per-lane write-back constants of one channel block. */
typedef struct {
    __m512i add[4]; /* bias - x_zp * wsum, wrapping */
    __m512 mul[4];
    __m512 lo, hi;
    __m512i zp;
} block_rq;

static inline __m128i requant(__m512i acc, __m512i add, __m512 mul, const block_rq *q) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, add)), mul);
    f = _mm512_min_ps(_mm512_max_ps(f, q->lo), q->hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), q->zp));
}

/* NP pixels (slab offsets poff) x nv channel vectors over every tap, requantized into
   stage[pixel][64]. */
static inline __attribute__((always_inline)) void tile(const uint8_t *slab, const int64_t *poff, const int8_t *w,
                                                      const int64_t *toff, int64_t taps, int64_t cgroups,
                                                      const int NP, const int nv, const block_rq *q,
                                                      uint8_t *stage) {
    __m512i acc[8][4];
#pragma GCC unroll 8
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[p][v] = _mm512_setzero_si512();
    for (int64_t t = 0; t < taps; t++) {
        const uint8_t *src[8];
#pragma GCC unroll 8
        for (int p = 0; p < NP; p++) src[p] = slab + poff[p] + toff[t];
        for (int64_t cg = 0; cg < cgroups; cg++) {
            __m512i wv[4];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) wv[v] = _mm512_load_si512(w + v * 64);
#pragma GCC unroll 8
            for (int p = 0; p < NP; p++) {
                int32_t xi;
                memcpy(&xi, src[p] + cg * 4, 4);
                const __m512i xb = _mm512_set1_epi32(xi);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], xb, wv[v]);
            }
            w += OCT_LCONV_MB * 4;
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            _mm_store_si128((__m128i *)(void *)(stage + p * STAGE_ROW + v * LANES), requant(acc[p][v], q->add[v], q->mul[v], q));
}

/* Pixels [0, n) of the stage (mv channels) to y[channel * P + pixel], each byte through tab when
   there is one. */
static inline __attribute__((always_inline)) void store_strip(const uint8_t *stage, int64_t n, int64_t mv,
                                                             uint8_t *y, int64_t P, const oct_vbmi_table *tab) {
    for (int64_t g0 = 0; g0 < n; g0 += 16) {
        const int64_t cnt = n - g0 < 16 ? n - g0 : 16;
        const __mmask16 m = (__mmask16)(cnt == 16 ? 0xFFFF : (1u << cnt) - 1);
        __m512i r[16], out[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            r[i] = i < cnt ? _mm512_load_si512(stage + (g0 + i) * STAGE_ROW) : _mm512_setzero_si512();
        transpose16x64(r, out);
#pragma GCC unroll 16
        for (int e = 0; e < 16; e++) {
            const __m512i v = tab ? oct_vbmi_lookup(tab, out[e]) : out[e];
#pragma GCC unroll 4
            for (int L = 0; L < 4; L++) {
                const int64_t ch = 16 * L + e;
                if (ch >= mv) continue;
                uint8_t *d = y + ch * P + g0;
                if (cnt == 16) _mm_storeu_si128((__m128i *)(void *)d, lane_of(v, L));
                else _mm_mask_storeu_epi8(d, m, lane_of(v, L));
            }
        }
    }
}

static void store_strip_plain(const uint8_t *stage, int64_t n, int64_t mv, uint8_t *y, int64_t P) {
    store_strip(stage, n, mv, y, P, NULL);
}

/* Only reached through oct_vbmi_lconv_kernels, on CPUs with VBMI. */
static OCT_VBMI_TARGET void store_strip_table(const uint8_t *stage, int64_t n, int64_t mv, uint8_t *y, int64_t P,
                                              const uint8_t table[256]) {
    const oct_vbmi_table tab = oct_vbmi_table_load(table);
    store_strip(stage, n, mv, y, P, &tab);
}

static void block_constants(const oct_lconv_args *a, int64_t m0, int64_t mv, block_rq *q) {
    const oct_requant *rq = a->rq;
    q->lo = _mm512_set1_ps((float)(rq->qmin - rq->zp));
    q->hi = _mm512_set1_ps((float)(rq->qmax - rq->zp));
    q->zp = _mm512_set1_epi32(rq->zp);
    const __m512i xzp = _mm512_set1_epi32(a->x_zp);
    for (int v = 0; v < 4; v++) {
        const int64_t left = mv - v * LANES;
        const __mmask16 m = (__mmask16)(left >= LANES ? 0xFFFF : left <= 0 ? 0 : (1u << left) - 1);
        const int64_t at = m0 + v * LANES;
        const __m512i bias = rq->bias ? _mm512_maskz_loadu_epi32(m, rq->bias + at) : _mm512_setzero_si512();
        const __m512i wsum = _mm512_maskz_loadu_epi32(m, a->wsum + at);
        q->add[v] = _mm512_sub_epi32(bias, _mm512_mullo_epi32(xzp, wsum));
        q->mul[v] = rq->scale_per_row ? _mm512_maskz_loadu_ps(m, rq->scale + at) : _mm512_set1_ps(rq->scale[0]);
    }
}

static void vnni_conv(const oct_lconv_args *a, const uint8_t *slab, const oct_lconv_band *b, int64_t mb0,
                      int64_t mb1) {
    const oct_lconv_shape *s = a->s;
    const oct_conv_geom *g = &s->g;
    const int64_t OW = g->out[2], P = g->out[1] * OW, taps = g->k[1] * g->k[2];
    const int64_t block_bytes = taps * s->cgroups * OCT_LCONV_MB * 4, npx = b->nh * OW;
    int64_t toff[OCT_LCONV_TAPS_MAX];
    oct_lconv_tap_offsets(s, b, toff);
    _Alignas(64) uint8_t stage[STRIP * STAGE_ROW];
    int64_t poff[STRIP];
    for (int64_t mb = mb0; mb < mb1; mb++) {
        const int64_t m0 = mb * OCT_LCONV_MB, mv = s->M - m0 < OCT_LCONV_MB ? s->M - m0 : OCT_LCONV_MB;
        const int nv = (int)((mv + LANES - 1) / LANES);
        block_rq q;
        block_constants(a, m0, mv, &q);
        const int8_t *wb = a->w + mb * block_bytes;
        uint8_t *yb = a->y + m0 * P + b->oh0 * OW;
        for (int64_t q0 = 0; q0 < npx; q0 += STRIP) {
            const int64_t n = npx - q0 < STRIP ? npx - q0 : STRIP;
            oct_lconv_pixel_offsets(s, b, q0, n, STRIP, poff);
            if (nv == 4)
                for (int64_t tp = 0; tp < n; tp += 6)
                    tile(slab, poff + tp, wb, toff, taps, s->cgroups, 6, 4, &q, stage + tp * STAGE_ROW);
            else
                for (int64_t tp = 0; tp < n; tp += 8) {
                    uint8_t *st = stage + tp * STAGE_ROW;
                    if (nv == 3) tile(slab, poff + tp, wb, toff, taps, s->cgroups, 8, 3, &q, st);
                    else if (nv == 2) tile(slab, poff + tp, wb, toff, taps, s->cgroups, 8, 2, &q, st);
                    else tile(slab, poff + tp, wb, toff, taps, s->cgroups, 8, 1, &q, st);
                }
            if (a->rq->table) store_strip_table(stage, n, mv, yb + q0, P, a->rq->table);
            else store_strip_plain(stage, n, mv, yb + q0, P);
        }
    }
}

const oct_lconv_kernels oct_vnni_lconv_kernels = {"vnni", vnni_repack, vnni_conv, 0};
const oct_lconv_kernels oct_vbmi_lconv_kernels = {"vnni+vbmi", vnni_repack, vnni_conv, 1};
