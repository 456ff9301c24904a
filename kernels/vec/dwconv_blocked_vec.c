/* The primitives of oct_dwb_kernels (ref/dwconv_blocked.h) in portable C with GCC vector types:
   compiled once per ISA level with that level's flags (kernels/meson.build); OCT_DWB_SET and
   OCT_DWB_NAME name the set it defines. A pixel's OCT_DWB_LANES floats are one register on
   AVX-512, two on AVX2, four on NEON. With AVX-512 the transposes are register transposes (16x16
   floats; for 8-bit input 16x16 bytes in each 128-bit lane, 64 pixels at a time); elsewhere they
   go through a 16x16 tile, loops the compiler vectorises along one contiguous side. */
#include <string.h>

#include "ref/dwconv_blocked.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include "x86/avx512/transpose16_avx512.h"
#endif

#if !defined(OCT_DWB_SET) || !defined(OCT_DWB_NAME)
#error "dwconv_blocked_vec.c is compiled with -DOCT_DWB_SET=<set> -DOCT_DWB_NAME=<name>"
#endif

/* The native vector: one register (16 floats on AVX-512, 8 on AVX2, 4 on NEON); a pixel's lanes
   are SUB of them. Wider generic vectors would make gcc go through the stack on AVX2 and NEON. */
#if defined(__AVX512F__)
enum { VW = 16 };
#elif defined(__AVX2__)
enum { VW = 8 };
#else
enum { VW = 4 };
#endif
enum { SUB = OCT_DWB_LANES / VW };
typedef float vnat __attribute__((vector_size(VW * sizeof(float))));

/* Output pixels in flight in the tap loop: enough independent FMA chains to hide the latency,
   few enough that accumulators and operands stay in registers (AVX-512: 8 accumulators of 32
   registers; AVX2: 4 x 2 of 16; NEON: 4 x 4 of 32). */
#if defined(__AVX512F__)
enum { PIX = 8 };
#else
enum { PIX = 4 };
#endif

static int64_t round_up16(int64_t v) { return (v + 15) / 16 * 16; }

#if defined(__AVX512F__)
/* Pixel j of a chunk of 16 to its place in the scratch, row and column advanced as it goes. */
static inline __attribute__((always_inline)) void store_pixels(const __m512 v[16], int64_t cnt, int64_t *r, int64_t *c,
                                                               int64_t iw, float *dst, int64_t ld_row) {
    for (int64_t j = 0; j < cnt; j++) {
        _mm512_store_ps(dst + (*r * ld_row + *c) * OCT_DWB_LANES, v[j]);
        if (++*c == iw) *c = 0, ++*r;
    }
}

/* r[l] holds bytes [64] of channel l; afterwards, 128-bit lane j of r[i] holds the 16 channel
   bytes of pixel 16 j + i: a 16x16 byte transpose in each 128-bit lane, four unpack stages (a
   quarter of the shuffles of a float transpose of the same pixels). */
static inline __attribute__((always_inline)) void transpose_bytes(__m512i r[16]) {
    __m512i a[16], b[16];
    /* pairs of channels: a[2i + h] holds channels (2i, 2i+1) of pixels 8h..8h+7 */
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    /* quads: b[4k + 2h + q] holds channels 4k..4k+3 of pixels 8h + 4q .. +3 */
    for (int k = 0; k < 4; k++)
        for (int h = 0; h < 2; h++) {
            b[4 * k + 2 * h] = _mm512_unpacklo_epi16(a[4 * k + h], a[4 * k + 2 + h]);
            b[4 * k + 2 * h + 1] = _mm512_unpackhi_epi16(a[4 * k + h], a[4 * k + 2 + h]);
        }
    /* octets: a[8m + 2x + o] holds channels 8m..8m+7 of pixels 4x + 2o, +1 (x = 2h + q) */
    for (int m = 0; m < 2; m++)
        for (int x = 0; x < 4; x++) {
            a[8 * m + 2 * x] = _mm512_unpacklo_epi32(b[8 * m + x], b[8 * m + 4 + x]);
            a[8 * m + 2 * x + 1] = _mm512_unpackhi_epi32(b[8 * m + x], b[8 * m + 4 + x]);
        }
    /* all 16 channels of pixel 2y + e (y = 2x + o) */
    for (int y = 0; y < 8; y++) {
        r[2 * y] = _mm512_unpacklo_epi64(a[y], a[8 + y]);
        r[2 * y + 1] = _mm512_unpackhi_epi64(a[y], a[8 + y]);
    }
}

static void to_lanes_u8(const uint8_t *src, int64_t cs, int nch, int64_t n, int64_t iw, uint8_t x_xor,
                        int32_t x_zp, float *dst, int64_t ld_row) {
    const __m512i vx = _mm512_set1_epi8((char)x_xor), vz = _mm512_set1_epi32(x_zp);
    const __mmask16 live = (__mmask16)(nch >= 16 ? 0xffffu : (1u << nch) - 1); /* lanes past nch stay 0 */
    _Alignas(64) uint8_t px[16][64];
    int64_t r = 0, c = 0;
    for (int64_t p = 0; p < n; p += 64) {
        const int64_t cnt = n - p < 64 ? n - p : 64;
        const __mmask64 k = cnt == 64 ? ~(__mmask64)0 : (((__mmask64)1 << cnt) - 1);
        __m512i v[16];
        for (int l = 0; l < 16; l++)
            v[l] = l < nch ? _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, src + l * cs + p), vx)
                           : _mm512_setzero_si512();
        transpose_bytes(v);
        for (int i = 0; i < 16; i++) _mm512_store_si512(px[i], v[i]);
        for (int64_t j = 0; j < cnt;) { /* runs of pixels along one input row */
            const int64_t run = cnt - j < iw - c ? cnt - j : iw - c;
            float *d = dst + (r * ld_row + c) * OCT_DWB_LANES;
            for (int64_t e = j + run; j < e; j++, d += OCT_DWB_LANES) {
                const __m128i b = _mm_load_si128((const __m128i *)(const void *)(px[j & 15] + (j >> 4) * 16));
                const __m512i q = _mm512_maskz_sub_epi32(live, _mm512_cvtepu8_epi32(b), vz);
                _mm512_store_ps(d, _mm512_cvtepi32_ps(q)); /* exact integers */
            }
            if ((c += run) == iw) c = 0, ++r;
        }
    }
}

static void to_lanes_f32(const float *src, int64_t cs, int nch, int64_t n, int64_t iw, float *dst, int64_t ld_row) {
    int64_t r = 0, c = 0;
    for (int64_t p = 0; p < n; p += 16) {
        const int64_t cnt = n - p < 16 ? n - p : 16;
        const __mmask16 k = (__mmask16)(cnt == 16 ? 0xffffu : (1u << cnt) - 1);
        __m512 v[16];
        for (int l = 0; l < 16; l++) v[l] = l < nch ? _mm512_maskz_loadu_ps(k, src + l * cs + p) : _mm512_setzero_ps();
        oct_avx512_transpose16(v);
        store_pixels(v, cnt, &r, &c, iw, dst, ld_row);
    }
}

static void from_lanes(const float *src, int64_t q, int nch, float *dst, int64_t ld_dst) {
    const int64_t qr = round_up16(q);
    for (int64_t i = 0; i < qr; i += 16) {
        __m512 r[16];
        for (int j = 0; j < 16; j++) r[j] = _mm512_load_ps(src + (i + j) * OCT_DWB_LANES);
        oct_avx512_transpose16(r);
        for (int l = 0; l < nch; l++) _mm512_store_ps(dst + l * ld_dst + i, r[l]);
    }
}
#else
/* Chunks of 16 pixels through a 16 x 16 tile: the loads run along the contiguous input rows,
   the stores along the contiguous pixel vectors. */
static inline __attribute__((always_inline)) void tile_out(const float tile[16][OCT_DWB_LANES], int64_t cnt,
                                                           int64_t *r, int64_t *c, int64_t iw, float *dst,
                                                           int64_t ld_row) {
    for (int64_t j = 0; j < cnt; j++) {
        memcpy(dst + (*r * ld_row + *c) * OCT_DWB_LANES, tile[j], sizeof tile[j]);
        if (++*c == iw) *c = 0, ++*r;
    }
}

static void to_lanes_u8(const uint8_t *src, int64_t cs, int nch, int64_t n, int64_t iw, uint8_t x_xor,
                        int32_t x_zp, float *dst, int64_t ld_row) {
    int64_t r = 0, c = 0;
    for (int64_t p = 0; p < n; p += 16) {
        const int64_t cnt = n - p < 16 ? n - p : 16;
        float tile[16][OCT_DWB_LANES] = {{0}};
        for (int l = 0; l < nch; l++)
            for (int64_t j = 0; j < cnt; j++)
                tile[j][l] = (float)((int32_t)(uint8_t)(src[l * cs + p + j] ^ x_xor) - x_zp);
        tile_out(tile, cnt, &r, &c, iw, dst, ld_row);
    }
}

static void to_lanes_f32(const float *src, int64_t cs, int nch, int64_t n, int64_t iw, float *dst, int64_t ld_row) {
    int64_t r = 0, c = 0;
    for (int64_t p = 0; p < n; p += 16) {
        const int64_t cnt = n - p < 16 ? n - p : 16;
        float tile[16][OCT_DWB_LANES] = {{0}};
        for (int l = 0; l < nch; l++)
            for (int64_t j = 0; j < cnt; j++) tile[j][l] = src[l * cs + p + j];
        tile_out(tile, cnt, &r, &c, iw, dst, ld_row);
    }
}

static void from_lanes(const float *src, int64_t q, int nch, float *dst, int64_t ld_dst) {
    const int64_t qr = round_up16(q);
    for (int64_t i = 0; i < qr; i += 16) {
        const float *s = src + i * OCT_DWB_LANES;
        for (int l = 0; l < nch; l++) {
            float *d = dst + l * ld_dst + i;
            for (int j = 0; j < 16; j++) d[j] = s[j * OCT_DWB_LANES + l];
        }
    }
}
#endif

/* PIX consecutive output pixels (in row-major order over the band, so a chunk may wrap to the
   next row: small planes such as 7x7 fill the chunk) from their window origins base[p]. */
static inline __attribute__((always_inline)) void taps_chunk(const vnat *const base[PIX], int64_t wp, const int kh,
                                                             const int kw, const vnat *w, vnat *out) {
    vnat acc[PIX][SUB];
#pragma GCC unroll 16
    for (int p = 0; p < PIX; p++)
#pragma GCC unroll 4
        for (int v = 0; v < SUB; v++) acc[p][v] = (vnat){0};
#pragma GCC unroll 8
    for (int i = 0; i < kh; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < kw; j++) {
            const int64_t off = (i * wp + j) * SUB;
#pragma GCC unroll 4
            for (int v = 0; v < SUB; v++) {
                const vnat wt = w[(i * kw + j) * SUB + v];
#pragma GCC unroll 16
                for (int p = 0; p < PIX; p++) acc[p][v] += base[p][off + v] * wt;
            }
        }
    }
#pragma GCC unroll 16
    for (int p = 0; p < PIX; p++)
#pragma GCC unroll 4
        for (int v = 0; v < SUB; v++) out[p * SUB + v] = acc[p][v];
}

static inline __attribute__((always_inline)) void taps_body(const oct_dwb_plan *pl, const float *in, const float *w,
                                                            int64_t rows, float *out, const int kh, const int kw) {
    const vnat *vin = (const vnat *)(const void *)in, *vw = (const vnat *)(const void *)w;
    vnat *vout = (vnat *)(void *)out;
    const int64_t n = rows * pl->ow, row_step = pl->sh * pl->wp;
    int64_t r = 0, c = 0; /* row and column of pixel q0 */
    for (int64_t q0 = 0; q0 < n; q0 += PIX) {
        const vnat *base[PIX];
        int64_t rr = r, cc = c;
        for (int p = 0; p < PIX; p++) {
            /* pixels past n repeat the last one: their vectors are unspecified, their reads valid */
            base[p] = vin + (rr * row_step + cc * pl->sw) * SUB;
            if (q0 + p + 1 < n && ++cc == pl->ow) cc = 0, rr++;
        }
        taps_chunk(base, pl->wp, kh, kw, vw, vout + q0 * SUB);
        c += PIX;
        while (c >= pl->ow) c -= pl->ow, r++;
    }
}

static void taps(const oct_dwb_plan *pl, const float *in, const float *w, int64_t rows, float *out) {
    if (pl->kh == 3 && pl->kw == 3) taps_body(pl, in, w, rows, out, 3, 3);
    else if (pl->kh == 5 && pl->kw == 5) taps_body(pl, in, w, rows, out, 5, 5);
    else taps_body(pl, in, w, rows, out, pl->kh, pl->kw);
}

/* Measured with AVX2 (one thread, both paths alternating): blocked 1.25-2.8x on 7x7..28x28
   input planes, 0.6-0.9x on 56x56 and up; NEON, not measured, is assumed alike. */
#if defined(__AVX512F__)
#define MAX_PLANE 0
#else
#define MAX_PLANE (32 * 32)
#endif

const oct_dwb_kernels OCT_DWB_SET = {OCT_DWB_NAME, MAX_PLANE, to_lanes_u8, to_lanes_f32, from_lanes, taps};
