/* ARMv8.2 dot-product int8 GEMM. SDOT multiplies signed by signed, so the uint8 activations are
   packed as x - 128 (x ^ 0x80) and the tiling adds 128 * row_sum back with the zero points; SDOT
   adds four exact products into each int32 lane and wraps like ref. 8 rows x 12 columns per
   micro-tile: 24 accumulators; the weights of 4 rows x 4 k fill one register, picked by lane. */
#include <arm_neon.h>

#include "quant_isa.h"
#include "arm/neon/qwriteback_neon.h"

enum { MR = 8, NR = 12, LANES = 4 };

/* Row i of the tile: lane i % 4 of weight register i / 4. */
#define SDOT_ROW(i, wreg)                                                   \
    _Pragma("GCC unroll 3") for (int j = 0; j < nv; j++) acc[i][j] =        \
        vdotq_laneq_s32(acc[i][j], xv[j], wreg, (i) % 4)

static inline __attribute__((always_inline)) void tile_8xnv(int groups, const int8_t *w, const int8_t *x,
                                                          const int nv, int32_t *c, int64_t ldc, int accumulate) {
    int32x4_t acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) acc[i][j] = accumulate ? vld1q_s32(c + i * ldc + j * LANES) : vdupq_n_s32(0);
    for (int g = 0; g < groups; g++) {
        int8x16_t xv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) xv[j] = vld1q_s8(x + j * 16);
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);
        SDOT_ROW(0, w0);
        SDOT_ROW(1, w0);
        SDOT_ROW(2, w0);
        SDOT_ROW(3, w0);
        SDOT_ROW(4, w1);
        SDOT_ROW(5, w1);
        SDOT_ROW(6, w1);
        SDOT_ROW(7, w1);
        x += NR * 4;
        w += MR * 4;
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

static const oct_qtiling tiling = {MR, NR, 4, LANES, 1, 1, 128, pack_x, ukernel, writeback};
static const oct_qpanel panel = {NR, 4, 1, 0x80};

/* Four rows of 16 columns become 16 columns of 4 consecutive k (two rounds of zips), shifted to
   int8; stored as 4-column pieces, which a 12-column panel boundary never splits. */
static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst) {
    const int full_g = kc / 4, full_c = cn / 16 * 16;
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int g = 0; g < full_g; g++) {
        const uint8_t *r = x + (int64_t)g * 4 * ldx;
        for (int c = 0; c < full_c; c += 16) {
            const uint8x16_t x0 = vld1q_u8(r + c), x1 = vld1q_u8(r + ldx + c);
            const uint8x16_t x2 = vld1q_u8(r + 2 * ldx + c), x3 = vld1q_u8(r + 3 * ldx + c);
            const uint16x8_t a = vreinterpretq_u16_u8(vzip1q_u8(x0, x1)), b = vreinterpretq_u16_u8(vzip2q_u8(x0, x1));
            const uint16x8_t d = vreinterpretq_u16_u8(vzip1q_u8(x2, x3)), e = vreinterpretq_u16_u8(vzip2q_u8(x2, x3));
            vst1q_u8((uint8_t *)oct_qt_x_at(&tiling, dst, groups, g, c),
                     veorq_u8(vreinterpretq_u8_u16(vzip1q_u16(a, d)), flip));
            vst1q_u8((uint8_t *)oct_qt_x_at(&tiling, dst, groups, g, c + 4),
                     veorq_u8(vreinterpretq_u8_u16(vzip2q_u16(a, d)), flip));
            vst1q_u8((uint8_t *)oct_qt_x_at(&tiling, dst, groups, g, c + 8),
                     veorq_u8(vreinterpretq_u8_u16(vzip1q_u16(b, e)), flip));
            vst1q_u8((uint8_t *)oct_qt_x_at(&tiling, dst, groups, g, c + 12),
                     veorq_u8(vreinterpretq_u8_u16(vzip2q_u16(b, e)), flip));
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

const oct_quant_kernel_set oct_dotprod_quant_kernels = {
    "dotprod", weights_bytes, weights_pack, qgemm, oct_neon_requant, &panel, qgemm_panel,
};
