/* AVX-512 twin of oct_ref_stem_rows_f32 (ref/stem_lanes.h): tiles of 4 output pixels x 64 output
   channels in 16 accumulators, the bias and activation applied in registers, each output row
   staged pixel-major and written to the NCHW planes by 16x16 register transposes. */
#include <immintrin.h>
#include <stdint.h>

#include "../../ref/stem_lanes.h"
#include "sgemm_avx512_act.h"
#include "transpose16_avx512.h"

/* 16 rows of 16 floats (src, rows ld apart) -> their transpose (dst rows dst_ld apart; only the
   first `cols` floats of each dst row are stored). */
static inline void transpose16_store(const float *src, int64_t ld, float *dst, int64_t dst_ld, int cols) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_load_ps(src + i * ld);
    oct_avx512_transpose16(r);
    const __mmask16 m = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
    for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(dst + i * dst_ld, m, r[i]);
}

void oct_avx512_stem_rows_f32(const oct_stem_geom *g, const float *x, int64_t x_cs, const float *wl,
                              const float *bias, const oct_act *act, float *y, int64_t y_cs, int64_t r0, int64_t r1,
                              void *scratch) {
    float *pad = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const int64_t pitch = oct_stem_pitch(g), kh = g->kh, kw = g->kw, sw = g->sw, m = g->m;
    float *stage = pad + g->channels * kh * pitch; /* [pixel][64 channels] */
    for (int64_t r = r0; r < r1; r++) {
        oct_stem_fill_rows(g, x, x_cs, r, pad);
        for (int64_t m0 = 0; m0 < m; m0 += OCT_STEM_MBLOCK) {
            __m512 b[4];
            for (int v = 0; v < 4; v++) b[v] = bias ? _mm512_loadu_ps(bias + m0 + 16 * v) : _mm512_setzero_ps();
            for (int64_t ox = 0; ox < g->ow; ox += OCT_STEM_PIXELS) {
                __m512 acc[4][4];
                for (int p = 0; p < 4; p++)
                    for (int v = 0; v < 4; v++) acc[p][v] = b[v];
                for (int64_t c = 0; c < g->channels; c++)
                    for (int64_t i = 0; i < kh; i++) {
                        const float *xr = pad + (c * kh + i) * pitch + ox * sw;
                        const float *wr = wl + (c * kh + i) * kw * m + m0;
                        for (int64_t j = 0; j < kw; j++, wr += m) {
                            const __m512 w0 = _mm512_loadu_ps(wr), w1 = _mm512_loadu_ps(wr + 16);
                            const __m512 w2 = _mm512_loadu_ps(wr + 32), w3 = _mm512_loadu_ps(wr + 48);
#pragma GCC unroll 4
                            for (int p = 0; p < 4; p++) {
                                const __m512 xb = _mm512_set1_ps(xr[p * sw + j]);
                                acc[p][0] = _mm512_fmadd_ps(xb, w0, acc[p][0]);
                                acc[p][1] = _mm512_fmadd_ps(xb, w1, acc[p][1]);
                                acc[p][2] = _mm512_fmadd_ps(xb, w2, acc[p][2]);
                                acc[p][3] = _mm512_fmadd_ps(xb, w3, acc[p][3]);
                            }
                        }
                    }
                for (int p = 0; p < 4; p++)
                    for (int v = 0; v < 4; v++)
                        _mm512_store_ps(stage + (ox + p) * OCT_STEM_MBLOCK + 16 * v, oct_avx512_act(act, acc[p][v]));
            }
            /* stage rows past ow hold the padded tile's pixels: the transposes never store them */
            for (int64_t px = 0; px < g->ow; px += 16) {
                const int cols = g->ow - px < 16 ? (int)(g->ow - px) : 16;
                for (int v = 0; v < 4; v++)
                    transpose16_store(stage + px * OCT_STEM_MBLOCK + 16 * v, OCT_STEM_MBLOCK,
                                y + (m0 + 16 * v) * y_cs + r * g->ow + px, y_cs, cols);
            }
        }
    }
}
