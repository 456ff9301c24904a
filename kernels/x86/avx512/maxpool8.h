/* Pieces shared by the two AVX-512 8-bit max pooling kernels (maxpool8_avx512.c, AVX-512BW;
   maxpool8_vbmi.c, VPERMT2B). Both take the geometries oct_avx512_maxpool8_fits accepts. */
#ifndef OCT_MAXPOOL8_H
#define OCT_MAXPOOL8_H

#include <immintrin.h>
#include <stdint.h>

#include "misc_kernels.h"

/* Window rows per output row (kd * kh), window columns, column blocks per row. */
enum { MP8_MAX_ROWS = 64, MP8_MAX_KW = 4, MP8_MAX_BLOCKS = 32 };

/* Lanes [lo, hi) of a 64-lane block, clipped to [0, 64). */
static inline __mmask64 mp8_lanes(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 64) hi = 64;
    if (hi <= lo) return 0;
    const uint64_t below_hi = hi == 64 ? ~0ull : (1ull << hi) - 1;
    return (__mmask64)(below_hi & ~((1ull << lo) - 1));
}

/* base + off as an address only: off may lie before the plane for a left pad, where the masked
   load touches no byte (masked-off lanes do not fault). */
static inline const void *mp8_addr(const void *base, int64_t off) {
    return (const void *)((uintptr_t)base + (uintptr_t)off);
}

/* Calls ROWS(args..., kd, kh, kw, sw) with constant window dims for the shapes both kernels compile
   straight-line (3x3/2 of ResNet, 2x2/2 and 2x2x2/2 of U-Nets, 3x3/1), with the run-time ones else. */
#define MP8_BY_SHAPE(KD, KH, KW, SW, ROWS, ...)                                                      \
    do {                                                                                            \
        if ((KD) == 1 && (KH) == 3 && (KW) == 3 && (SW) == 2) ROWS(__VA_ARGS__, 1, 3, 3, 2);         \
        else if ((KD) == 1 && (KH) == 2 && (KW) == 2 && (SW) == 2) ROWS(__VA_ARGS__, 1, 2, 2, 2);    \
        else if ((KD) == 2 && (KH) == 2 && (KW) == 2 && (SW) == 2) ROWS(__VA_ARGS__, 2, 2, 2, 2);    \
        else if ((KD) == 1 && (KH) == 3 && (KW) == 3 && (SW) == 1) ROWS(__VA_ARGS__, 1, 3, 3, 1);    \
        else ROWS(__VA_ARGS__, KD, KH, KW, SW);                                                     \
    } while (0)

/* clamp(v, 0, n - 1) */
static inline int64_t mp8_clamp(int64_t v, int64_t n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

/* The KD * KH window rows of output row (od, oh) as row starts less the column pad. A row in
   padding is replaced by the nearest real row of the same window (the clamped index; max is
   idempotent), so every output row reads the same number of rows. Returns 0 when the window
   has no real row (its outputs are the lowest value). */
static inline int mp8_window_rows(const oct_conv_geom *g, const uint8_t *x, int64_t od, int64_t oh,
                                  const int KD, const int KH, const uint8_t **rp) {
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t d0 = od * g->stride[0] - g->pad[0], h0 = oh * g->stride[1] - g->pad[1];
    if (d0 + KD <= 0 || d0 >= ID || h0 + KH <= 0 || h0 >= IH) return 0;
    for (int kd = 0; kd < KD; kd++)
        for (int kh = 0; kh < KH; kh++)
            rp[kd * KH + kh] = x + (mp8_clamp(d0 + kd, ID) * IH + mp8_clamp(h0 + kh, IH)) * IW - g->pad[2];
    return 1;
}

#endif
