/* AVX2 int8 GEMM without VNNI: activations (uint8) and weights (int8) widened to int16 and paired
   along k, so one VPMADDWD gives w[k]x[k] + w[k+1]x[k+1] per int32 lane, exactly (|sum| < 2^16),
   and VPADDD accumulates modulo 2^32 like ref. VPMADDUBSW would be faster but saturates to int16,
   which breaks exactness. 4 rows x 16 columns per micro-tile. */
#include <immintrin.h>

#include "quant_isa.h"
#include "qwriteback_avx2.h"

enum { MR = 4, NR = 16, LANES = 8 };

static inline __attribute__((always_inline)) void tile_4xnv(int groups, const int16_t *w, const int16_t *x,
                                                          const int nv, int32_t *c, int64_t ldc, int accumulate) {
    __m256i acc[MR][2];
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++)
            acc[i][j] = accumulate ? _mm256_loadu_si256((const __m256i *)(c + i * ldc + j * LANES))
                                   : _mm256_setzero_si256();
    for (int g = 0; g < groups; g++) {
        __m256i xv[2];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) xv[j] = _mm256_loadu_si256((const __m256i *)(x + j * 16));
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++) {
            int32_t pair;
            memcpy(&pair, w + 2 * i, 4);
            const __m256i b = _mm256_set1_epi32(pair);
#pragma GCC unroll 2
            for (int j = 0; j < nv; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(xv[j], b));
        }
        x += NR * 2;
        w += MR * 2;
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) _mm256_storeu_si256((__m256i *)(c + i * ldc + j * LANES), acc[i][j]);
}

static void ukernel(int groups, const void *w, const void *x, int nv, int32_t *c, int64_t ldc, int accumulate) {
    if (nv == 2) tile_4xnv(groups, w, x, 2, c, ldc, accumulate);
    else tile_4xnv(groups, w, x, 1, c, ldc, accumulate);
}

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst);

static void writeback(const int32_t *acc, int nv, const oct_qt_tile *t) { oct_avx2_writeback(acc, nv, MR, t); }

static const oct_qtiling tiling = {MR, NR, 2, LANES, 2, 2, 0, pack_x, ukernel, writeback};
static const oct_qpanel panel = {NR, 2, 2, 0};

/* Two rows of 16 columns: interleave the bytes of k and k+1, then zero-extend to int16 pairs. */
static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst) {
    const int full_g = kc / 2, full_c = cn / 16 * 16;
    for (int g = 0; g < full_g; g++) {
        const uint8_t *r = x + (int64_t)g * 2 * ldx;
        for (int c = 0; c < full_c; c += 16) {
            const __m128i x0 = _mm_loadu_si128((const __m128i *)(r + c));
            const __m128i x1 = _mm_loadu_si128((const __m128i *)(r + ldx + c));
            _mm256_storeu_si256((__m256i *)oct_qt_x_at(&tiling, dst, groups, g, c),
                                _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(x0, x1)));
            _mm256_storeu_si256((__m256i *)oct_qt_x_at(&tiling, dst, groups, g, c + 8),
                                _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(x0, x1)));
        }
    }
    const int c_end = (cn + LANES - 1) / LANES * LANES;
    oct_qt_pack_x_edge(&tiling, x, ldx, kc, cn, groups, dst, 0, full_g, full_c, c_end);
    oct_qt_pack_x_edge(&tiling, x, ldx, kc, cn, groups, dst, full_g, groups, 0, c_end);
}

static size_t weights_bytes(int rows, int k) { return oct_qt_weights_bytes(&tiling, rows, k); }

static void weights_pack(int rows, int k, const void *w, int w_is_u8, int64_t w_rs, int64_t w_ks, void *buf,
                         oct_qweights *out) {
    oct_qt_weights_pack(&tiling, rows, k, w, w_is_u8, w_rs, w_ks, buf, out);
}

static void qgemm(const oct_qweights *w, int r0, int nr, int nc, const uint8_t *x, int64_t ldx, int32_t x_zp,
                  const int32_t *x_zp_cols, const int32_t *w_zp, int32_t *acc, int64_t ldacc) {
    oct_qt_gemm(&tiling, w, r0, nr, nc, x, ldx, x_zp, x_zp_cols, w_zp, acc, ldacc);
}

static void qgemm_panel(const oct_qweights *w, int r0, int nr, int nc, const void *xp, const oct_qgemm_out *o) {
    oct_qt_gemm_panel(&tiling, w, r0, nr, nc, xp, o);
}

const oct_quant_kernel_set oct_avx2_quant_kernels = {
    "avx2", weights_bytes, weights_pack, qgemm, oct_avx2_requant, &panel, qgemm_panel,
};
