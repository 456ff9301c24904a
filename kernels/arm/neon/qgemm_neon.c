/* NEON (ARMv8.0) int8 GEMM: activations widened to int16 when packed, weights widened in the
   kernel, and SMLAL by lane adds int16 x int16 products into int32 lanes, exactly and wrapping
   like ref (SMLAL does not saturate). 8 rows x 12 columns per micro-tile: 24 accumulators. */
#include <arm_neon.h>

#include "quant_isa.h"
#include "qwriteback_neon.h"

enum { MR = 8, NR = 12, LANES = 4 };

/* Row i of the tile: acc[i][j] += x[j] * w[i] (lane i of the widened weights). */
#define MLAL_ROW(i)                                                         \
    _Pragma("GCC unroll 3") for (int j = 0; j < nv; j++) acc[i][j] =        \
        vmlal_laneq_s16(acc[i][j], xv[j], wv, i)

static inline __attribute__((always_inline)) void tile_8xnv(int groups, const int8_t *w, const int16_t *x,
                                                          const int nv, int32_t *c, int64_t ldc, int accumulate) {
    int32x4_t acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) acc[i][j] = accumulate ? vld1q_s32(c + i * ldc + j * LANES) : vdupq_n_s32(0);
    for (int g = 0; g < groups; g++) {
        int16x4_t xv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) xv[j] = vld1_s16(x + j * LANES);
        const int16x8_t wv = vmovl_s8(vld1_s8(w));
        MLAL_ROW(0);
        MLAL_ROW(1);
        MLAL_ROW(2);
        MLAL_ROW(3);
        MLAL_ROW(4);
        MLAL_ROW(5);
        MLAL_ROW(6);
        MLAL_ROW(7);
        x += NR;
        w += MR;
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) vst1q_s32(c + i * ldc + j * LANES, acc[i][j]);
}

static void ukernel(int groups, const void *w, const void *x, int nv, int32_t *c, int64_t ldc, int accumulate) {
    switch (nv) {
    case 3: tile_8xnv(groups, w, x, 3, c, ldc, accumulate); break;
    case 2: tile_8xnv(groups, w, x, 2, c, ldc, accumulate); break;
    default: tile_8xnv(groups, w, x, 1, c, ldc, accumulate); break;
    }
}

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst);

static void writeback(const int32_t *acc, int nv, const oct_qt_tile *t) { oct_neon_writeback(acc, nv, MR, t); }

static const oct_qtiling tiling = {MR, NR, 1, LANES, 1, 2, 0, pack_x, ukernel, writeback};
static const oct_qpanel panel = {NR, 1, 2, 0};

/* Each k row: 16 columns widened to int16, stored as four 4-column pieces (a 12-column panel
   boundary never splits one). */
static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst) {
    const int full_c = cn / 16 * 16;
    for (int k = 0; k < kc; k++) {
        const uint8_t *r = x + k * ldx;
        for (int c = 0; c < full_c; c += 16) {
            const uint8x16_t v = vld1q_u8(r + c);
            const int16x8_t lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v)));
            const int16x8_t hi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(v)));
            vst1_s16((int16_t *)oct_qt_x_at(&tiling, dst, groups, k, c), vget_low_s16(lo));
            vst1_s16((int16_t *)oct_qt_x_at(&tiling, dst, groups, k, c + 4), vget_high_s16(lo));
            vst1_s16((int16_t *)oct_qt_x_at(&tiling, dst, groups, k, c + 8), vget_low_s16(hi));
            vst1_s16((int16_t *)oct_qt_x_at(&tiling, dst, groups, k, c + 12), vget_high_s16(hi));
        }
    }
    const int c_end = (cn + LANES - 1) / LANES * LANES;
    oct_qt_pack_x_edge(&tiling, x, ldx, kc, cn, groups, dst, 0, groups, full_c, c_end);
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

const oct_quant_kernel_set oct_neon_quant_kernels = {
    "neon", weights_bytes, weights_pack, qgemm, oct_neon_requant, &panel, qgemm_panel,
};
