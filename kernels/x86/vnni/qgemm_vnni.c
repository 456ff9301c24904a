/* AVX-512 VNNI int8 GEMM: 8 rows x 48 columns per micro-tile, 24 zmm accumulators. VPDPBUSD adds
   four u8 x s8 products into each int32 lane without saturation (the non-S form), so the sums are
   exact modulo 2^32 like ref. The packed activations hold 16 columns x 4 k per zmm; each row's 4 k
   weights are broadcast to all lanes. */
#include <immintrin.h>

#include "quant_isa.h"
#include "qwriteback_avx512.h"

enum { MR = 8, NR = 48, LANES = 16 };

static inline __attribute__((always_inline)) void tile_8xnv(int groups, const int8_t *w, const uint8_t *x,
                                                          const int nv, int32_t *c, int64_t ldc, int accumulate) {
    __m512i acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++)
            acc[i][j] = accumulate ? _mm512_loadu_si512(c + i * ldc + j * LANES) : _mm512_setzero_si512();
    for (int g = 0; g < groups; g++) {
        __m512i xv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) xv[j] = _mm512_loadu_si512(x + j * 64);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            int32_t wi;
            memcpy(&wi, w + 4 * i, 4);
            const __m512i b = _mm512_set1_epi32(wi);
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv[j], b);
        }
        x += NR * 4;
        w += MR * 4;
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) _mm512_storeu_si512(c + i * ldc + j * LANES, acc[i][j]);
}

static void ukernel(int groups, const void *w, const void *x, int nv, int32_t *c, int64_t ldc, int accumulate) {
    switch (nv) {
    case 3: tile_8xnv(groups, w, x, 3, c, ldc, accumulate); break;
    case 2: tile_8xnv(groups, w, x, 2, c, ldc, accumulate); break;
    default: tile_8xnv(groups, w, x, 1, c, ldc, accumulate); break;
    }
}

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst);

static void writeback(const int32_t *acc, int nv, const oct_qt_tile *t) { oct_avx512_writeback(acc, nv, MR, t); }

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

const oct_quant_kernel_set oct_vnni_quant_kernels = {
    "vnni", weights_bytes, weights_pack, qgemm, oct_avx512_requant, &panel, qgemm_panel,
};
