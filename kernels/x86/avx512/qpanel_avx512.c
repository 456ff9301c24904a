/* AVX-512 BW/VL byte movers for the activation-panel packers (ref/qpanel_unfold.h): 32 columns per
   step, and the tails of short runs (7- and 14-pixel output rows, panel edges) through masked
   loads and stores instead of scalar loops. */
#include <immintrin.h>

#include "qpanel_isa.h"

static inline __mmask32 qp_mask32(int64_t n) { return n >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << n) - 1; }
static inline __mmask16 qp_mask16(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* Four rows of 32 bytes become 32 columns of 4 consecutive bytes: byte and word interleaves inside
   the 128-bit lanes, then a 4x4 lane transpose puts the columns in order. */
static inline void qp_interleave4(uint32_t *d, const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                  const uint8_t *r3, int64_t n) {
    for (int64_t t = 0; t < n; t += 32) {
        const __mmask32 m = qp_mask32(n - t);
        const __m256i x0 = _mm256_maskz_loadu_epi8(m, r0 + t), x1 = _mm256_maskz_loadu_epi8(m, r1 + t);
        const __m256i x2 = _mm256_maskz_loadu_epi8(m, r2 + t), x3 = _mm256_maskz_loadu_epi8(m, r3 + t);
        const __m256i a = _mm256_unpacklo_epi8(x0, x1), b = _mm256_unpackhi_epi8(x0, x1);
        const __m256i c = _mm256_unpacklo_epi8(x2, x3), e = _mm256_unpackhi_epi8(x2, x3);
        /* lane 0 of e0..e3 holds columns 0-3, 4-7, 8-11, 12-15; lane 1 the same plus 16 */
        const __m256i e0 = _mm256_unpacklo_epi16(a, c), e1 = _mm256_unpackhi_epi16(a, c);
        const __m256i e2 = _mm256_unpacklo_epi16(b, e), e3 = _mm256_unpackhi_epi16(b, e);
        const __m512i z0 = _mm512_inserti64x4(_mm512_castsi256_si512(e0), e1, 1);
        const __m512i z1 = _mm512_inserti64x4(_mm512_castsi256_si512(e2), e3, 1);
        _mm512_mask_storeu_epi32(d + t, qp_mask16(n - t), _mm512_shuffle_i32x4(z0, z1, 0x88));
        if (n - t > 16) _mm512_mask_storeu_epi32(d + t + 16, qp_mask16(n - t - 16), _mm512_shuffle_i32x4(z0, z1, 0xDD));
    }
}

static inline void qp_interleave2_16(uint32_t *d, const uint8_t *r0, const uint8_t *r1, int64_t n) {
    for (int64_t t = 0; t < n; t += 16) {
        const __mmask16 m = qp_mask16(n - t);
        const __m512i lo = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, r0 + t));
        const __m512i hi = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, r1 + t));
        _mm512_mask_storeu_epi32(d + t, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
}

static inline void qp_widen16(uint16_t *d, const uint8_t *r0, int64_t n) {
    for (int64_t t = 0; t < n; t += 32) {
        const __mmask32 m = qp_mask32(n - t);
        _mm512_mask_storeu_epi16(d + t, m, _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, r0 + t)));
    }
}

/* Even bytes: the low byte of each 16-bit word (VPMOVWB). */
static inline void qp_gather2(uint8_t *d, const uint8_t *src, int64_t n) {
    for (int64_t t = 0; t < n; t += 32) {
        const int64_t left = n - t;
        const __mmask64 in = left >= 32 ? ~(__mmask64)0 : ((__mmask64)1 << (2 * left)) - 1;
        const __m256i even = _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(in, src + 2 * t));
        _mm256_mask_storeu_epi8(d + t, qp_mask32(left), even);
    }
}

static inline void qp_copy_xor(uint8_t *d, const uint8_t *src, int64_t n, uint8_t v) {
    const __m512i vv = _mm512_set1_epi8((char)v);
    for (int64_t t = 0; t < n; t += 64) {
        const __mmask64 m = n - t >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - t)) - 1;
        _mm512_mask_storeu_epi8(d + t, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + t), vv));
    }
}

#include "ref/qpanel_unfold.h"

static void pack(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k, int nc,
                 uint8_t x_xor, void *panel) {
    qp_pack(l, x, k_stride, c_stride, k, nc, x_xor, panel);
}

static void im2col(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels, int64_t p0,
                   int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel) {
    qp_im2col(l, g, x, channels, p0, np, x_xor, pad, scratch, panel);
}

const oct_qpanel_kernels oct_avx512_qpanel_kernels = {"avx512", pack, im2col};
