/* Reference of the lane-layout stem convolution (stem_lanes.h): the same padded rows and tap
   order as the vector kernels, one output value at a time. */
#include "stem_lanes.h"

#include <string.h>

void oct_stem_pack(const oct_stem_geom *g, const float *w, float *wl) {
    const int64_t taps = g->kh * g->kw;
    for (int64_t l = 0; l < g->m; l++)
        for (int64_t c = 0; c < g->channels; c++)
            for (int64_t t = 0; t < taps; t++) wl[(c * taps + t) * g->m + l] = w[(l * g->channels + c) * taps + t];
}

size_t oct_stem_scratch_bytes(const oct_stem_geom *g) {
    const int64_t ow16 = (g->ow + 15) / 16 * 16;
    const int64_t floats = g->channels * g->kh * oct_stem_pitch(g) + ow16 * OCT_STEM_MBLOCK;
    return (size_t)floats * sizeof(float) + 64;
}

void oct_stem_fill_rows(const oct_stem_geom *g, const float *x, int64_t x_cs, int64_t r, float *pad) {
    const int64_t pitch = oct_stem_pitch(g);
    /* input columns [c0, c1) land at padded columns [c0 + pl, c1 + pl) */
    const int64_t q0 = g->pl < pitch ? g->pl : pitch;
    int64_t q1 = g->pl + g->iw;
    if (q1 > pitch) q1 = pitch;
    for (int64_t c = 0; c < g->channels; c++)
        for (int64_t i = 0; i < g->kh; i++) {
            float *dst = pad + (c * g->kh + i) * pitch;
            const int64_t row = r * g->sh + i - g->pt;
            if (row < 0 || row >= g->ih || q1 <= q0) {
                memset(dst, 0, (size_t)pitch * sizeof(float));
                continue;
            }
            memset(dst, 0, (size_t)q0 * sizeof(float));
            memcpy(dst + q0, x + c * x_cs + row * g->iw, (size_t)(q1 - q0) * sizeof(float));
            memset(dst + q1, 0, (size_t)(pitch - q1) * sizeof(float));
        }
}

void oct_ref_stem_rows_f32(const oct_stem_geom *g, const float *x, int64_t x_cs, const float *wl, const float *bias,
                           const oct_act *act, float *y, int64_t y_cs, int64_t r0, int64_t r1, void *scratch) {
    float *pad = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const int64_t pitch = oct_stem_pitch(g);
    for (int64_t r = r0; r < r1; r++) {
        oct_stem_fill_rows(g, x, x_cs, r, pad);
        for (int64_t l = 0; l < g->m; l++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float s = 0.f;
                for (int64_t c = 0; c < g->channels; c++)
                    for (int64_t i = 0; i < g->kh; i++)
                        for (int64_t j = 0; j < g->kw; j++)
                            s += pad[(c * g->kh + i) * pitch + ox * g->sw + j] *
                                 wl[((c * g->kh + i) * g->kw + j) * g->m + l];
                y[l * y_cs + r * g->ow + ox] = oct_act_apply(act, s + (bias ? bias[l] : 0.f));
            }
    }
}
