/* AVX-VNNI (256-bit VPDPBUSD, VEX-encoded) int8 GEMM for CPUs without AVX-512: 4 rows x 24 columns
   per micro-tile, 12 ymm accumulators of the 16 registers. Same arithmetic as the AVX-512 VNNI set:
   four u8 x s8 products per int32 lane, no saturation, wrapping like ref. */
#include <immintrin.h>

#include "quant_isa.h"
#include "x86/avx2/qwriteback_avx2.h"

enum { MR = 4, NR = 24, LANES = 8 };

static inline __attribute__((always_inline)) void tile_4xnv(int groups, const int8_t *w, const uint8_t *x,
                                                          const int nv, int32_t *c, int64_t ldc, int accumulate) {
    __m256i acc[MR][3];
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++)
            acc[i][j] = accumulate ? _mm256_loadu_si256((const __m256i *)(c + i * ldc + j * LANES))
                                   : _mm256_setzero_si256();
    for (int g = 0; g < groups; g++) {
        __m256i xv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) xv[j] = _mm256_loadu_si256((const __m256i *)(x + j * 32));
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++) {
            int32_t wi;
            memcpy(&wi, w + 4 * i, 4);
            const __m256i b = _mm256_set1_epi32(wi);
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++) acc[i][j] = _mm256_dpbusd_avx_epi32(acc[i][j], xv[j], b);
        }
        x += NR * 4;
        w += MR * 4;
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) _mm256_storeu_si256((__m256i *)(c + i * ldc + j * LANES), acc[i][j]);
}

static void ukernel(int groups, const void *w, const void *x, int nv, int32_t *c, int64_t ldc, int accumulate) {
    switch (nv) {
    case 3: tile_4xnv(groups, w, x, 3, c, ldc, accumulate); break;
    case 2: tile_4xnv(groups, w, x, 2, c, ldc, accumulate); break;
    default: tile_4xnv(groups, w, x, 1, c, ldc, accumulate); break;
    }
}

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst);

static void writeback(const int32_t *acc, int nv, const oct_qt_tile *t) { oct_avx2_writeback(acc, nv, MR, t); }

static const oct_qtiling tiling = {MR, NR, 4, LANES, 1, 1, 0, pack_x, ukernel, writeback};
static const oct_qpanel panel = {NR, 4, 1, 0};

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst) {
    oct_qt_pack_x4_sse2(&tiling, x, ldx, kc, cn, groups, dst);
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

const oct_quant_kernel_set oct_avxvnni_quant_kernels = {
    "avxvnni", weights_bytes, weights_pack, qgemm, oct_avx2_requant, &panel, qgemm_panel,
};
