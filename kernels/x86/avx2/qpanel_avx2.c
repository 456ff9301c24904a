/* AVX2 byte movers for the activation-panel packers (ref/qpanel_unfold.h): 32 columns per step
   (16 for the widening ones); AVX2 has no byte masks, so the tail of a run goes column by column. */
#include <immintrin.h>

#include "qpanel_isa.h"

/* Four rows of 32 bytes become 32 columns of 4 consecutive bytes: byte and word interleaves inside
   the 128-bit lanes, then lane swaps put the columns in order. */
static inline void qp_interleave4(uint32_t *d, const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                  const uint8_t *r3, int64_t n) {
    int64_t t = 0;
    for (; t + 32 <= n; t += 32) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(r0 + t));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(r1 + t));
        const __m256i x2 = _mm256_loadu_si256((const __m256i *)(r2 + t));
        const __m256i x3 = _mm256_loadu_si256((const __m256i *)(r3 + t));
        const __m256i a = _mm256_unpacklo_epi8(x0, x1), b = _mm256_unpackhi_epi8(x0, x1);
        const __m256i c = _mm256_unpacklo_epi8(x2, x3), e = _mm256_unpackhi_epi8(x2, x3);
        const __m256i e0 = _mm256_unpacklo_epi16(a, c), e1 = _mm256_unpackhi_epi16(a, c);
        const __m256i e2 = _mm256_unpacklo_epi16(b, e), e3 = _mm256_unpackhi_epi16(b, e);
        _mm256_storeu_si256((__m256i *)(d + t), _mm256_permute2x128_si256(e0, e1, 0x20));
        _mm256_storeu_si256((__m256i *)(d + t + 8), _mm256_permute2x128_si256(e2, e3, 0x20));
        _mm256_storeu_si256((__m256i *)(d + t + 16), _mm256_permute2x128_si256(e0, e1, 0x31));
        _mm256_storeu_si256((__m256i *)(d + t + 24), _mm256_permute2x128_si256(e2, e3, 0x31));
    }
    for (; t + 16 <= n; t += 16) {
        const __m128i x0 = _mm_loadu_si128((const __m128i *)(r0 + t));
        const __m128i x1 = _mm_loadu_si128((const __m128i *)(r1 + t));
        const __m128i x2 = _mm_loadu_si128((const __m128i *)(r2 + t));
        const __m128i x3 = _mm_loadu_si128((const __m128i *)(r3 + t));
        const __m128i a = _mm_unpacklo_epi8(x0, x1), b = _mm_unpackhi_epi8(x0, x1);
        const __m128i c = _mm_unpacklo_epi8(x2, x3), e = _mm_unpackhi_epi8(x2, x3);
        _mm_storeu_si128((__m128i *)(d + t), _mm_unpacklo_epi16(a, c));
        _mm_storeu_si128((__m128i *)(d + t + 4), _mm_unpackhi_epi16(a, c));
        _mm_storeu_si128((__m128i *)(d + t + 8), _mm_unpacklo_epi16(b, e));
        _mm_storeu_si128((__m128i *)(d + t + 12), _mm_unpackhi_epi16(b, e));
    }
    for (; t < n; t++)
        d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 8 | (uint32_t)r2[t] << 16 | (uint32_t)r3[t] << 24;
}

static inline void qp_interleave2_16(uint32_t *d, const uint8_t *r0, const uint8_t *r1, int64_t n) {
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r0 + t)));
        const __m256i hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r1 + t)));
        _mm256_storeu_si256((__m256i *)(d + t), _mm256_or_si256(lo, _mm256_slli_epi32(hi, 16)));
    }
    for (; t < n; t++) d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 16;
}

static inline void qp_widen16(uint16_t *d, const uint8_t *r0, int64_t n) {
    int64_t t = 0;
    for (; t + 16 <= n; t += 16)
        _mm256_storeu_si256((__m256i *)(d + t), _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r0 + t))));
    for (; t < n; t++) d[t] = r0[t];
}

/* Even bytes: mask the low byte of each word and pack the words back to bytes. */
static inline void qp_gather2(uint8_t *d, const uint8_t *src, int64_t n) {
    const __m256i low = _mm256_set1_epi16(0xFF);
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
        const __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + 2 * t)), low);
        _mm_storeu_si128((__m128i *)(d + t),
                         _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
    }
    for (; t < n; t++) d[t] = src[2 * t];
}

static inline void qp_copy_xor(uint8_t *d, const uint8_t *src, int64_t n, uint8_t v) {
    const __m128i vv = _mm_set1_epi8((char)v);
    int64_t t = 0;
    for (; t + 16 <= n; t += 16)
        _mm_storeu_si128((__m128i *)(d + t), _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + t)), vv));
    for (; t < n; t++) d[t] = (uint8_t)(src[t] ^ v);
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

const oct_qpanel_kernels oct_avx2_qpanel_kernels = {"avx2", pack, im2col};
