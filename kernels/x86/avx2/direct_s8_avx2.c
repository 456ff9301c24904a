/* AVX2 pieces of the direct int8 convolution (ref/direct_conv.h).

   Kernel: VPMADDWD rather than VPMADDUBSW (whose int16 saturation would break exactness). A 32-byte
   slab load holds 8 pixels x 4 bytes; masking the even bytes and shifting out the odd ones gives
   two vectors of int16 pairs (bytes 0,2 and 1,3 of each pixel), and the weights are packed as the
   matching int16 pairs, so two VPMADDWD per output channel give the 4-byte dot product in each
   32-bit lane. Register tile: 4 output channels x 2 rows x 8 pixels; the 8 channels of a weight
   block run as two halves. Requantization is oct_avx2_requant on the tile.

   Repack (also used by the VNNI set): each of the 4 lanes of a group reads one zero-padded row
   copy (a channel, or in the folded layout a channel shifted by its kw tap), and SSE2 byte/word
   unpacks interleave 16 pixels of the 4 rows into 64 bytes. */
#include <immintrin.h>
#include <string.h>

#include "direct_isa.h"
#include "quant_isa.h"

enum { LANES = 8, NV = 2, HALF = 4, WBYTES = 8 /* per output channel and tap: two int16 pairs */ };

size_t oct_avx2_dconv_s8_wbytes(const oct_dconv_s8_shape *s) {
    const size_t quad = oct_dconv_s8_quad_bytes(s); /* 4 bytes per (channel, tap); ours are 8 */
    return quad && quad <= SIZE_MAX / 2 ? quad * 2 : 0;
}

void oct_avx2_dconv_s8_pack(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, void *buf, int32_t *wsum) {
    const int64_t blocks = (s->outs + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    int16_t *p = buf;
    for (int64_t m = 0; m < s->outs; m++) wsum[m] = 0;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t kd = 0; kd < s->g.k[0]; kd++)
            for (int64_t kh = 0; kh < s->g.k[1]; kh++)
                for (int64_t grp = 0; grp < s->groups; grp++)
                    for (int64_t kwt = 0; kwt < s->taps_w; kwt++)
                        for (int64_t i = 0; i < OCT_DCONV_MB; i++) {
                            const int64_t m = b * OCT_DCONV_MB + i;
                            int8_t v[4];
                            for (int lane = 0; lane < 4; lane++) {
                                v[lane] = oct_dconv_s8_weight(s, w, w_u8, m, kd, kh, grp, kwt, lane);
                                if (m < s->outs) wsum[m] += v[lane];
                            }
                            *p++ = v[0], *p++ = v[2], *p++ = v[1], *p++ = v[3];
                        }
}

static inline __attribute__((always_inline)) void tile(const oct_dconv_s8 *a, const uint8_t *slab,
                                                      const oct_dconv_slab *sl, const uint8_t *wb, int64_t m0,
                                                      int64_t mc, int half, int64_t od, int64_t oh, int64_t ow0,
                                                      const int nv, int64_t n) {
    const oct_dconv_s8_shape *s = a->s;
    const oct_conv_geom *g = &s->g;
    const int64_t KD = g->k[0], KH = g->k[1], G = s->groups, TW = s->taps_w, dw4 = g->dil[2] * 4;
    const int64_t gstride = oct_dconv_slab_at(sl, 1, 0, 0, 0);
    const __m256i even = _mm256_set1_epi16(0x00ff);
    __m256i acc[NV][HALF];
#pragma GCC unroll 2
    for (int j = 0; j < nv; j++)
#pragma GCC unroll 4
        for (int i = 0; i < HALF; i++) acc[j][i] = _mm256_setzero_si256();
    const uint8_t *wk = wb + half * HALF * WBYTES;
    for (int64_t kd = 0; kd < KD; kd++) {
        const int64_t pd = od - sl->d0 + kd * g->dil[0];
        for (int64_t kh = 0; kh < KH; kh++) {
            const uint8_t *p[NV];
#pragma GCC unroll 2
            for (int j = 0; j < nv; j++) p[j] = slab + oct_dconv_slab_at(sl, 0, pd, oh + j - sl->h0 + kh * g->dil[1], ow0);
            for (int64_t grp = 0; grp < G; grp++) {
                for (int64_t kwt = 0; kwt < TW; kwt++) {
                    __m256i xe[NV], xo[NV];
#pragma GCC unroll 2
                    for (int j = 0; j < nv; j++) {
                        const __m256i x = _mm256_loadu_si256((const __m256i *)(p[j] + kwt * dw4));
                        xe[j] = _mm256_and_si256(x, even);
                        xo[j] = _mm256_srli_epi16(x, 8);
                    }
#pragma GCC unroll 4
                    for (int i = 0; i < HALF; i++) {
                        int32_t we, wo;
                        memcpy(&we, wk + i * WBYTES, 4);
                        memcpy(&wo, wk + i * WBYTES + 4, 4);
                        const __m256i ve = _mm256_set1_epi32(we), vo = _mm256_set1_epi32(wo);
#pragma GCC unroll 2
                        for (int j = 0; j < nv; j++)
                            acc[j][i] = _mm256_add_epi32(acc[j][i], _mm256_add_epi32(_mm256_madd_epi16(xe[j], ve),
                                                                                     _mm256_madd_epi16(xo[j], vo)));
                    }
                    wk += OCT_DCONV_MB * WBYTES;
                }
#pragma GCC unroll 2
                for (int j = 0; j < nv; j++) p[j] += gstride;
            }
        }
    }
    const int64_t out_vol = oct_geom_out_vol(g), OH = g->out[1], OW = g->out[2];
    const int64_t c0 = m0 + half * HALF, rows = mc - half * HALF < HALF ? mc - half * HALF : HALF;
    const __m256i st = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 2
    for (int j = 0; j < nv; j++) {
        int32_t t[HALF][LANES];
        const int64_t at = c0 * out_vol + (od * OH + oh + j) * OW + ow0;
#pragma GCC unroll 4
        for (int i = 0; i < HALF; i++) {
            if (i >= rows) break;
            const uint32_t corr = (uint32_t)a->x_zp * (uint32_t)a->wsum[c0 + i];
            const __m256i v = _mm256_sub_epi32(acc[j][i], _mm256_set1_epi32((int32_t)corr));
            if (a->rq) _mm256_storeu_si256((__m256i *)t[i], v);
            else _mm256_maskstore_epi32((int32_t *)a->y + at + i * out_vol, st, v);
        }
        if (a->rq)
            oct_avx2_requant(&t[0][0], LANES, (int)(a->rq_row0 + c0), (int)rows, (int)n, a->rq,
                             (uint8_t *)a->y + at, out_vol, 1);
    }
}

void oct_avx2_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                       int64_t od, int64_t oh0, int64_t nh) {
    const oct_dconv_s8_shape *s = a->s;
    const int64_t OW = s->g.out[2];
    const int64_t m0 = mblk * OCT_DCONV_MB;
    const int64_t mc = s->outs - m0 < OCT_DCONV_MB ? s->outs - m0 : OCT_DCONV_MB;
    const int64_t taps = s->g.k[0] * s->g.k[1] * s->groups * s->taps_w;
    const uint8_t *wb = (const uint8_t *)a->w + mblk * taps * OCT_DCONV_MB * WBYTES;
    const int halves = mc > HALF ? 2 : 1;
    for (int64_t oh = oh0; oh < oh0 + nh; oh += NV) {
        const int64_t rows = oh0 + nh - oh < NV ? oh0 + nh - oh : NV;
        for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
            const int64_t n = OW - ow0 < LANES ? OW - ow0 : LANES;
            for (int half = 0; half < halves; half++) {
                if (rows == 2) tile(a, slab, sl, wb, m0, mc, half, od, oh, ow0, 2, n);
                else tile(a, slab, sl, wb, m0, mc, half, od, oh, ow0, 1, n);
            }
        }
    }
}

/* ---- repack ------------------------------------------------------------------------------------ */

enum { ROW_CAP = OCT_DCONV_WP_MAX + OCT_DCONV_REACH_MAX + 32 };
static const uint8_t zero_bytes[ROW_CAP];

/* Row copy of input row r (or none: all padding) as the slab columns see it: column q holds input
   column q - pad_w, padding outside. Covers [0, n). */
static void padded_row(const uint8_t *r, int64_t W, int64_t pad_w, int64_t n, uint8_t x_xor, uint8_t pad,
                       uint8_t *dst) {
    int64_t lo = pad_w < n ? pad_w : n, hi = pad_w + W < n ? pad_w + W : n;
    if (!r) lo = hi = n;
    memset(dst, pad, (size_t)lo);
    for (int64_t q = lo; q < hi; q++) dst[q] = r[q - pad_w] ^ x_xor;
    if (hi < n) memset(dst + hi, pad, (size_t)(n - hi));
}

void oct_avx2_dconv_s8_repack(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                              const oct_dconv_slab *sl, uint8_t *slab) {
    const oct_conv_geom *g = &s->g;
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2], KW = g->k[2], in_vol = oct_geom_in_vol(g);
    const int64_t reach = s->fold ? (KW - 1) * g->dil[2] : 0;
    const int64_t n = sl->wp + reach + 16; /* the last 16-pixel step reads up to wp + 15 */
    uint8_t rows[4][ROW_CAP];
    for (int64_t grp = 0; grp < s->groups; grp++)
        for (int64_t pd = 0; pd < sl->dp; pd++) {
            const int64_t id = sl->d0 - g->pad[0] + pd;
            for (int64_t ph = 0; ph < sl->hp; ph++) {
                const int64_t ih = sl->h0 - g->pad[1] + ph;
                const int row_in = id >= 0 && id < D && ih >= 0 && ih < H;
                const uint8_t *src[4];
                int64_t built = -1; /* the channel in rows[slot], reused by the lanes of a folded group */
                int slot = -1;
                for (int lane = 0; lane < 4; lane++) {
                    const int64_t e = grp * 4 + lane;
                    const int64_t c = s->fold ? e / KW : e, kw = s->fold ? e % KW : 0;
                    if (c >= s->channels) {
                        src[lane] = zero_bytes;
                        continue;
                    }
                    if (c != built) {
                        slot++;
                        built = c;
                        padded_row(row_in ? x + c * in_vol + (id * H + ih) * W : NULL, W, g->pad[2], n, x_xor, pad,
                                   rows[slot]);
                    }
                    src[lane] = rows[slot] + kw * g->dil[2];
                }
                uint8_t *out = slab + oct_dconv_slab_at(sl, grp, pd, ph, 0);
                for (int64_t q = 0; q < sl->wp; q += 16) {
                    const __m128i r0 = _mm_loadu_si128((const __m128i *)(src[0] + q));
                    const __m128i r1 = _mm_loadu_si128((const __m128i *)(src[1] + q));
                    const __m128i r2 = _mm_loadu_si128((const __m128i *)(src[2] + q));
                    const __m128i r3 = _mm_loadu_si128((const __m128i *)(src[3] + q));
                    const __m128i a_lo = _mm_unpacklo_epi8(r0, r1), a_hi = _mm_unpackhi_epi8(r0, r1);
                    const __m128i b_lo = _mm_unpacklo_epi8(r2, r3), b_hi = _mm_unpackhi_epi8(r2, r3);
                    /* Stores past wp land in the next row (written after) or the slab tail. */
                    _mm_storeu_si128((__m128i *)(out + q * 4), _mm_unpacklo_epi16(a_lo, b_lo));
                    _mm_storeu_si128((__m128i *)(out + q * 4 + 16), _mm_unpackhi_epi16(a_lo, b_lo));
                    _mm_storeu_si128((__m128i *)(out + q * 4 + 32), _mm_unpacklo_epi16(a_hi, b_hi));
                    _mm_storeu_si128((__m128i *)(out + q * 4 + 48), _mm_unpackhi_epi16(a_hi, b_hi));
                }
            }
        }
}
