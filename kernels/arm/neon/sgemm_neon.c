/* NEON fp32 GEMM: the micro-tile and packing for oct_sgemm_blocked.

   Micro-tile 8 x 12: two q registers hold 8 A values and each feeds 12 by-lane FMAs (vfmaq_laneq_f32)
   against 3 q registers of B, so 24 accumulators + 5 operands fit the 32 NEON registers and a k step is
   24 FMAs for 5 loads. Both panels are zero-padded when packed, so an edge tile computes a full 8 x 12
   and stores only the rows and lanes that exist. On the last k block the fused epilogue is applied
   to the accumulators before they are stored. */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "../../isa_kernels.h"
#include "../../sgemm_blocked.h"
#include "sgemm_neon_act.h"

enum { MR = 8, NR = 12 };

static void pack_a(int rows, int kc, const float *a, int lda, float *ap) {
    int p = 0;
    if (rows == MR)
        /* 4 x 4 blocks transposed with trn1/trn2 keep the copy at vector width. */
        for (; p + 4 <= kc; p += 4)
            for (int h = 0; h < 2; h++) {
                const float *s = a + (size_t)(4 * h) * lda + p;
                float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + lda), r2 = vld1q_f32(s + 2 * (size_t)lda),
                            r3 = vld1q_f32(s + 3 * (size_t)lda);
                float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1);
                float32x4_t t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
                float *d = ap + (size_t)p * MR + 4 * h;
                vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0),
                                                              vreinterpretq_f64_f32(t2))));
                vst1q_f32(d + MR, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1),
                                                                   vreinterpretq_f64_f32(t3))));
                vst1q_f32(d + 2 * MR, vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0),
                                                                       vreinterpretq_f64_f32(t2))));
                vst1q_f32(d + 3 * MR, vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1),
                                                                       vreinterpretq_f64_f32(t3))));
            }
    for (; p < kc; p++) {
        float *dst = ap + (size_t)p * MR;
        for (int i = 0; i < rows; i++) dst[i] = a[(size_t)i * lda + p];
        for (int i = rows; i < MR; i++) dst[i] = 0.f;
    }
}

static void pack_b(int kc, int cols, const float *b, int ldb, float *bp) {
    for (int p = 0; p < kc; p++, b += ldb, bp += NR) {
        if (cols == NR) {
            vst1q_f32(bp, vld1q_f32(b));
            vst1q_f32(bp + 4, vld1q_f32(b + 4));
            vst1q_f32(bp + 8, vld1q_f32(b + 8));
        } else {
            memcpy(bp, b, (size_t)cols * sizeof(float));
            memset(bp + cols, 0, (size_t)(NR - cols) * sizeof(float));
        }
    }
}

/* One A column (8 rows, two q registers) against one B row (3 q registers). */
#define ROW_FMA(acc, av, lane, b0, b1, b2)                     \
    do {                                                       \
        acc[0] = vfmaq_laneq_f32(acc[0], b0, av, lane);        \
        acc[1] = vfmaq_laneq_f32(acc[1], b1, av, lane);        \
        acc[2] = vfmaq_laneq_f32(acc[2], b2, av, lane);        \
    } while (0)

/* The first n (< 4) lanes of v stored at p. */
static inline void store_part(float *p, float32x4_t v, int n) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}

static void tile(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                 size_t ldc, int load, const oct_epilogue_args *e) {
    float32x4_t c0[3], c1[3], c2[3], c3[3], c4[3], c5[3], c6[3], c7[3];
    for (int v = 0; v < 3; v++)
        c0[v] = c1[v] = c2[v] = c3[v] = c4[v] = c5[v] = c6[v] = c7[v] = vdupq_n_f32(0.f);
    for (int p = 0; p < kc; p++, ap += MR, b += bs) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        const float32x4_t alo = vld1q_f32(ap), ahi = vld1q_f32(ap + 4);
        ROW_FMA(c0, alo, 0, b0, b1, b2);
        ROW_FMA(c1, alo, 1, b0, b1, b2);
        ROW_FMA(c2, alo, 2, b0, b1, b2);
        ROW_FMA(c3, alo, 3, b0, b1, b2);
        ROW_FMA(c4, ahi, 0, b0, b1, b2);
        ROW_FMA(c5, ahi, 1, b0, b1, b2);
        ROW_FMA(c6, ahi, 2, b0, b1, b2);
        ROW_FMA(c7, ahi, 3, b0, b1, b2);
    }
    float32x4_t *const acc[MR] = {c0, c1, c2, c3, c4, c5, c6, c7};
    if (rows == MR && cols == NR) {
        for (int i = 0; i < MR; i++) {
            float *cr = c + (size_t)i * ldc;
            for (int v = 0; v < 3; v++) {
                float32x4_t r = acc[i][v];
                if (load) r = vaddq_f32(r, vld1q_f32(cr + 4 * v));
                if (e) r = oct_neon_epilogue(e, i, 4 * v, r, 4);
                vst1q_f32(cr + 4 * v, r);
            }
        }
        return;
    }
    for (int i = 0; i < rows; i++) {
        float *cr = c + (size_t)i * ldc;
        for (int v = 0; v < 3 && 4 * v < cols; v++) {
            const int n = cols - 4 * v < 4 ? cols - 4 * v : 4;
            float32x4_t r = acc[i][v];
            if (load) r = vaddq_f32(r, n == 4 ? vld1q_f32(cr + 4 * v) : oct_neon_load_n(cr + 4 * v, n));
            if (e) r = oct_neon_epilogue(e, i, 4 * v, r, n);
            if (n == 4) vst1q_f32(cr + 4 * v, r);
            else store_part(cr + 4 * v, r, n);
        }
    }
}

/* kc x 12 of B (12 KB) and the 8 KB A strip stay in a 64 KB L1; the B block (kc x nc, 288 KB) fits
   the 512 KB L2 of an A76-class core. */
const oct_sgemm_arch oct_neon_sgemm_arch = {
    .name = "neon", .mr = MR, .nr = NR, .kc = 256, .mc = 256, .nc = 288,
    .pack_a = pack_a, .pack_b = pack_b, .tile = tile, .reads_b_in_place = 0,
};

void oct_neon_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                    int ldc, int accumulate) {
    oct_sgemm_blocked(&oct_neon_sgemm_arch, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}
