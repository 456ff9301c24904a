/* Activation panels for the fused int8 GEMM (layout in quant_kernels.h): the portable twins of
   packing a matrix and unfolding a convolution tile (im2col) straight into panels, and the column
   sums a weight zero point needs. The walk lives in qpanel_unfold.h, shared with the per-ISA
   unfolds (kernels/<arch>/.../qpanel_*.c); here it gets plain C byte movers. */
#include <string.h>

#include "quant_kernels.h"

size_t oct_qpanel_bytes(const oct_qpanel *l, int64_t k, int64_t nc) {
    if (k < 0 || nc < 0 || k > INT32_MAX || nc > INT32_MAX) return 0;
    const uint64_t panels = ((uint64_t)nc + (uint64_t)l->nr - 1) / (uint64_t)l->nr;
    const uint64_t stride = (uint64_t)oct_qpanel_stride(l, k);
    if (stride && panels > (SIZE_MAX / 2) / stride) return 0;
    const uint64_t bytes = panels * stride;
    return (size_t)((bytes + 63) & ~(uint64_t)63) + 64;
}

static void qp_interleave4(uint32_t *restrict d, const uint8_t *restrict r0, const uint8_t *restrict r1,
                           const uint8_t *restrict r2, const uint8_t *restrict r3, int64_t n) {
    for (int64_t t = 0; t < n; t++)
        d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 8 | (uint32_t)r2[t] << 16 | (uint32_t)r3[t] << 24;
}
static void qp_interleave2_16(uint32_t *restrict d, const uint8_t *restrict r0, const uint8_t *restrict r1,
                              int64_t n) {
    for (int64_t t = 0; t < n; t++) d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 16;
}
static void qp_widen16(uint16_t *restrict d, const uint8_t *restrict r0, int64_t n) {
    for (int64_t t = 0; t < n; t++) d[t] = r0[t];
}
static void qp_gather2(uint8_t *restrict d, const uint8_t *restrict src, int64_t n) {
    for (int64_t t = 0; t < n; t++) d[t] = src[2 * t];
}

static void qp_copy_xor(uint8_t *restrict d, const uint8_t *restrict src, int64_t n, uint8_t v) {
    for (int64_t t = 0; t < n; t++) d[t] = (uint8_t)(src[t] ^ v);
}

#include "qpanel_unfold.h"

void oct_ref_qpanel_pack(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k,
                        int nc, uint8_t x_xor, void *panel) {
    qp_pack(l, x, k_stride, c_stride, k, nc, x_xor, panel);
}

size_t oct_ref_qpanel_im2col_scratch(const oct_conv_geom *g, int64_t channels) {
    if (qp_is_pointwise(g)) return 64;
    qp_box b;
    qp_box_dims(g, qp_stage_rows(g), &b);
    if (channels < 1 || b.bd < 1 || b.bh < 1 || b.bw < 1) return 0;
    const uint64_t plane = (uint64_t)b.bd * (uint64_t)b.bh;
    if ((uint64_t)b.bw > (SIZE_MAX / 4) / plane || (uint64_t)channels > (SIZE_MAX / 4) / (plane * (uint64_t)b.bw))
        return 0;
    return (size_t)(((uint64_t)channels * plane * (uint64_t)b.bw + 16 + 63) & ~(uint64_t)63);
}

void oct_ref_qpanel_im2col(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels,
                          int64_t p0, int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel) {
    qp_im2col(l, g, x, channels, p0, np, x_xor, pad, scratch, panel);
}

void oct_ref_qpanel_colsums(const oct_qpanel *l, const void *panel, int k, int nc, int32_t *colsum) {
    const int64_t groups = oct_qpanel_groups(l, k), stride = oct_qpanel_stride(l, k);
    /* Each value contributes (value ^ flip); padded k holds packed zero, i.e. flip, so it is skipped. */
    for (int c = 0; c < nc; c++) {
        const char *p = (const char *)panel + (c / l->nr) * stride + (int64_t)(c % l->nr) * l->kg * l->x_size;
        uint32_t s = 0;
        for (int64_t g = 0; g < groups; g++, p += (int64_t)l->nr * l->kg * l->x_size)
            for (int i = 0; i < l->kg && g * l->kg + i < k; i++) {
                uint32_t val;
                if (l->x_size == 2) {
                    uint16_t v16;
                    memcpy(&v16, p + i * 2, 2);
                    val = v16;
                } else {
                    val = (uint8_t)((uint8_t)p[i] ^ l->x_flip);
                }
                s += val;
            }
        colsum[c] = (int32_t)s;
    }
}
