/* AVX-VNNI (256-bit) channel-lane int8 convolution (ref/qconv_lanes.h), for CPUs with AVX-VNNI but
   not AVX-512 (the client cores of clinic edge boxes). Sixteen ymm registers: the tile is 6 pixels x
   16 output channels (12 accumulators, 2 weight vectors, 1 broadcast), run four times per 64-channel
   block. The rest follows the AVX-512 twin: VPDPBUSD with each pixel's 4 channel bytes broadcast,
   the write-back requantizes with oct_requant_one's float sequence (VMAXPS keeps lo on NaN,
   VCVTPS2DQ rounds to nearest even, the low byte of each lane is stored), stages [pixel][64] bytes
   and transposes each 16 pixels by four rounds of in-lane unpacks into the NCHW rows; the slab
   repack runs the same transposition the other way. No activation tables (no byte permute across
   64 entries here): the op keeps the other strategies for convs with one. */
#include <immintrin.h>
#include <string.h>

#include "ref/qconv_lanes.h"

enum { LANES = 8, NP = 6, STRIP = 48, STAGE_ROW = 64 };

/* r[i] = row i (32 bytes); afterwards out[e]'s 128-bit lane L holds byte 16L + e of rows 0..15. */
static inline __attribute__((always_inline)) void transpose16x32(const __m256i r[16], __m256i out[16]) {
    __m256i a[16], b[16], c[16];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        a[k] = _mm256_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[8 + k] = _mm256_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 2
    for (int h1 = 0; h1 < 2; h1++)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            b[8 * h1 + k] = _mm256_unpacklo_epi16(a[8 * h1 + 2 * k], a[8 * h1 + 2 * k + 1]);
            b[8 * h1 + 4 + k] = _mm256_unpackhi_epi16(a[8 * h1 + 2 * k], a[8 * h1 + 2 * k + 1]);
        }
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
#pragma GCC unroll 2
        for (int m = 0; m < 2; m++) {
            c[4 * h + m] = _mm256_unpacklo_epi32(b[4 * h + 2 * m], b[4 * h + 2 * m + 1]);
            c[4 * h + 2 + m] = _mm256_unpackhi_epi32(b[4 * h + 2 * m], b[4 * h + 2 * m + 1]);
        }
#pragma GCC unroll 8
    for (int h = 0; h < 8; h++) {
        out[2 * h] = _mm256_unpacklo_epi64(c[2 * h], c[2 * h + 1]);
        out[2 * h + 1] = _mm256_unpackhi_epi64(c[2 * h], c[2 * h + 1]);
    }
}

static inline __m128i lane_of(__m256i v, int L) {
    return L ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
}

/* ---- slab repack --------------------------------------------------------------------------------- */

/* Input columns [z0, z0 + 32) of 16 channels' row into their slab pixels (16 bytes each). */
static void repack_cols(const uint8_t *row, int64_t plane, __m256i vx, uint8_t *dst, int64_t C4) {
    __m256i r[16], out[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(row + i * plane)), vx);
    transpose16x32(r, out);
#pragma GCC unroll 2
    for (int L = 0; L < 2; L++)
#pragma GCC unroll 16
        for (int e = 0; e < 16; e++) _mm_storeu_si128((__m128i *)(void *)(dst + (16 * L + e) * C4), lane_of(out[e], L));
}

static void avxvnni_repack(const oct_lconv_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                           const oct_lconv_band *b, uint8_t *slab) {
    if (s->C % 16) {
        oct_ref_lconv_kernels.repack(s, x, x_xor, pad, b, slab);
        return;
    }
    const int64_t IW = s->g.in[2], pw = s->g.pad[2], plane = s->g.in[1] * IW, C4 = s->C4;
    const __m256i vx = _mm256_set1_epi8((char)x_xor);
    for (int64_t r = 0; r < b->rows; r++) {
        uint8_t *srow = slab + r * b->pitch;
        int64_t lo, hi; /* slab columns holding input columns lo - pw .. hi - pw */
        const int64_t ih = oct_lconv_pad_row(s, b, r, pad, srow, &lo, &hi);
        if (ih < 0) continue;
        int64_t z = lo;
        for (; z + 32 <= hi; z += 32) /* whole 32-column steps; no masked byte loads on AVX2 */
            for (int64_t c0 = 0; c0 < s->C; c0 += 16)
                repack_cols(x + c0 * plane + ih * IW + (z - pw), plane, vx, srow + z * C4 + c0, C4);
        for (; z < hi; z++) /* the row's last columns */
            for (int64_t c = 0; c < s->C; c++) srow[z * C4 + c] = x[c * plane + ih * IW + (z - pw)] ^ x_xor;
    }
}

/* ---- the convolution ------------------------------------------------------------------------------ */

typedef struct {
    __m256i add[8]; /* bias - x_zp * wsum, wrapping, per 8 channels of the block */
    __m256 mul[8];
    __m256 lo, hi;
    __m256i zp;
} block_rq;

/* The low byte of each int32 lane, the 8 of them in order. */
static inline __m128i low_bytes8(__m256i v) {
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i b = _mm256_shuffle_epi8(v, pick);
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}

static inline __m128i requant(__m256i acc, __m256i add, __m256 mul, const block_rq *q) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, add)), mul);
    f = _mm256_min_ps(_mm256_max_ps(f, q->lo), q->hi);
    return low_bytes8(_mm256_add_epi32(_mm256_cvtps_epi32(f), q->zp));
}

/* 6 pixels x 16 channels (vectors v0, v0 + 1 of the block) over every tap, into stage[pixel][64]. */
static inline __attribute__((always_inline)) void tile(const uint8_t *slab, const int64_t *poff, const int8_t *w,
                                                      const int64_t *toff, int64_t taps, int64_t cgroups, int v0,
                                                      const block_rq *q, uint8_t *stage) {
    __m256i acc[NP][2];
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
    w += v0 * 32;
    for (int64_t t = 0; t < taps; t++) {
        const uint8_t *src[NP];
#pragma GCC unroll 6
        for (int p = 0; p < NP; p++) src[p] = slab + poff[p] + toff[t];
        for (int64_t cg = 0; cg < cgroups; cg++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)w);
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32));
#pragma GCC unroll 6
            for (int p = 0; p < NP; p++) {
                int32_t xi;
                memcpy(&xi, src[p] + cg * 4, 4);
                const __m256i xb = _mm256_set1_epi32(xi);
                acc[p][0] = _mm256_dpbusd_avx_epi32(acc[p][0], xb, w0);
                acc[p][1] = _mm256_dpbusd_avx_epi32(acc[p][1], xb, w1);
            }
            w += OCT_LCONV_MB * 4;
        }
    }
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++)
            _mm_storel_epi64((__m128i *)(void *)(stage + p * STAGE_ROW + (v0 + v) * LANES),
                             requant(acc[p][v], q->add[v0 + v], q->mul[v0 + v], q));
}

/* Pixels [0, n) of the stage (mv channels) to y[channel * P + pixel]. */
static void store_strip(const uint8_t *stage, int64_t n, int64_t mv, uint8_t *y, int64_t P) {
    for (int64_t g0 = 0; g0 < n; g0 += 16) {
        const int64_t cnt = n - g0 < 16 ? n - g0 : 16;
        for (int half = 0; half < 2 && 32 * half < mv; half++) {
            __m256i r[16], out[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < cnt ? _mm256_loadu_si256((const __m256i *)(const void *)(stage + (g0 + i) * STAGE_ROW + 32 * half))
                               : _mm256_setzero_si256();
            transpose16x32(r, out);
#pragma GCC unroll 2
            for (int L = 0; L < 2; L++)
#pragma GCC unroll 16
                for (int e = 0; e < 16; e++) {
                    const int64_t ch = 32 * half + 16 * L + e;
                    if (ch >= mv) continue;
                    uint8_t *d = y + ch * P + g0;
                    if (cnt == 16) {
                        _mm_storeu_si128((__m128i *)(void *)d, lane_of(out[e], L));
                    } else {
                        uint8_t tmp[16];
                        _mm_storeu_si128((__m128i *)(void *)tmp, lane_of(out[e], L));
                        memcpy(d, tmp, (size_t)cnt);
                    }
                }
        }
    }
}

static void block_constants(const oct_lconv_args *a, int64_t m0, int64_t mv, block_rq *q) {
    const oct_requant *rq = a->rq;
    q->lo = _mm256_set1_ps((float)(rq->qmin - rq->zp));
    q->hi = _mm256_set1_ps((float)(rq->qmax - rq->zp));
    q->zp = _mm256_set1_epi32(rq->zp);
    for (int v = 0; v < 8; v++) {
        _Alignas(32) int32_t add[LANES];
        _Alignas(32) float mul[LANES];
        for (int l = 0; l < LANES; l++) {
            const int64_t m = m0 + v * LANES + l;
            add[l] = 0;
            mul[l] = 0.f;
            if (m >= m0 + mv) continue;
            const uint32_t bias = (uint32_t)(rq->bias ? rq->bias[m] : 0);
            add[l] = (int32_t)(bias - (uint32_t)a->x_zp * (uint32_t)a->wsum[m]);
            mul[l] = rq->scale[rq->scale_per_row ? m : 0];
        }
        q->add[v] = _mm256_load_si256((const __m256i *)(const void *)add);
        q->mul[v] = _mm256_load_ps(mul);
    }
}

static void avxvnni_conv(const oct_lconv_args *a, const uint8_t *slab, const oct_lconv_band *b, int64_t mb0,
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
        block_rq q;
        block_constants(a, m0, mv, &q);
        const int8_t *wb = a->w + mb * block_bytes;
        uint8_t *yb = a->y + m0 * P + b->oh0 * OW;
        for (int64_t q0 = 0; q0 < npx; q0 += STRIP) {
            const int64_t n = npx - q0 < STRIP ? npx - q0 : STRIP;
            oct_lconv_pixel_offsets(s, b, q0, n, STRIP, poff);
            for (int v0 = 0; v0 * LANES < mv; v0 += 2)
                for (int64_t tp = 0; tp < n; tp += NP)
                    tile(slab, poff + tp, wb, toff, taps, s->cgroups, v0, &q, stage + tp * STAGE_ROW);
            store_strip(stage, n, mv, yb + q0, P);
        }
    }
}

const oct_lconv_kernels oct_avxvnni_lconv_kernels = {"avx-vnni", avxvnni_repack, avxvnni_conv, 0};
