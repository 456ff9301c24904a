/* The reference int8 GEMM: packed int8 weights times a uint8 activation panel, int32 results,
   zero points applied through row and column sums (see quant_kernels.h). Arithmetic is in
   uint32_t, which wraps exactly like the int32 lanes of the SIMD twins and is defined in C. */
#include <string.h>

#include "quant_kernels.h"

/* Columns handled per pass: the panel of column sums lives on the stack, and one accumulator row
   segment stays in L1 while k runs. */
enum { QGEMM_NC = 256 };

static int64_t packed_ld(int k) { return ((int64_t)k + 3) / 4 * 4; }

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t oct_ref_qweights_bytes(int rows, int k) {
    if (rows < 0 || k < 0) return 0;
    const uint64_t data = (uint64_t)rows * (uint64_t)packed_ld(k);
    if (data > SIZE_MAX / 2 || (uint64_t)rows > SIZE_MAX / 8) return 0;
    return align64((size_t)data) + align64((size_t)rows * sizeof(int32_t)) + 64;
}

void oct_ref_qweights_pack(int rows, int k, const void *w, int w_is_u8, int64_t w_rs, int64_t w_ks,
                           void *buf, oct_qweights *out) {
    const int64_t ld = packed_ld(k);
    int8_t *data = buf;
    int32_t *sums = (int32_t *)((char *)buf + align64((size_t)rows * (size_t)ld));
    const uint8_t *src = w;
    /* The xor maps uint8 v to the int8 bit pattern of v - 128; int8 data is copied as is. */
    const uint8_t flip = w_is_u8 ? 0x80 : 0;
    for (int r = 0; r < rows; r++) {
        int8_t *d = data + (int64_t)r * ld;
        int32_t s = 0;
        for (int j = 0; j < k; j++) {
            const int8_t v = (int8_t)(src[r * w_rs + j * w_ks] ^ flip);
            d[j] = v;
            s += v;
        }
        for (int64_t j = k; j < ld; j++) d[j] = 0;
        sums[r] = s;
    }
    out->rows = rows;
    out->k = k;
    out->ld = ld;
    out->data = data;
    out->row_sum = sums;
}

void oct_ref_qgemm(const oct_qweights *w, int r0, int nr, int nc, const uint8_t *x, int64_t ldx,
                   int32_t x_zp, const int32_t *x_zp_cols, const int32_t *w_zp, int32_t *acc,
                   int64_t ldacc) {
    const int k = w->k;
    int any_wzp = 0;
    for (int r = 0; w_zp && r < nr; r++) any_wzp |= w_zp[r0 + r] != 0;
    uint32_t colsum[QGEMM_NC];
    for (int c0 = 0; c0 < nc; c0 += QGEMM_NC) {
        const int cn = nc - c0 < QGEMM_NC ? nc - c0 : QGEMM_NC;
        if (any_wzp) {
            memset(colsum, 0, sizeof colsum);
            for (int j = 0; j < k; j++) {
                const uint8_t *xk = x + j * ldx + c0;
                for (int c = 0; c < cn; c++) colsum[c] += xk[c];
            }
        }
        for (int r = 0; r < nr; r++) {
            uint32_t *a = (uint32_t *)(acc + r * ldacc + c0);
            const int8_t *wr = w->data + (int64_t)(r0 + r) * w->ld;
            memset(a, 0, sizeof(uint32_t) * (size_t)cn);
            for (int j = 0; j < k; j++) {
                const int32_t wk = wr[j];
                if (!wk) continue;
                const uint8_t *xk = x + j * ldx + c0;
                for (int c = 0; c < cn; c++) a[c] += (uint32_t)(wk * (int32_t)xk[c]);
            }
            const uint32_t zw = (uint32_t)(w_zp ? w_zp[r0 + r] : 0);
            const uint32_t rs = (uint32_t)w->row_sum[r0 + r];
            for (int c = 0; c < cn; c++) {
                const uint32_t zx = (uint32_t)(x_zp_cols ? x_zp_cols[c0 + c] : x_zp);
                uint32_t v = a[c] - zx * rs + (uint32_t)k * zw * zx;
                if (any_wzp) v -= zw * colsum[c];
                a[c] = v;
            }
        }
    }
}

/* ref's panels: one k per group, 16 columns, so the inner loop runs along contiguous columns. */
enum { PANEL_NR = 16 };
const oct_qpanel oct_ref_qpanel = {PANEL_NR, 1, 1, 0};

void oct_ref_qgemm_panel(const oct_qweights *w, int r0, int nr, int nc, const void *panel,
                         const oct_qgemm_out *o) {
    const int k = w->k;
    const int64_t stride = oct_qpanel_stride(&oct_ref_qpanel, k);
    int any_wzp = 0;
    for (int r = 0; o->w_zp && r < nr; r++) any_wzp |= o->w_zp[r0 + r] != 0;
    float lo = 0, hi = 0;
    if (o->rq) {
        lo = (float)(o->rq->qmin - o->rq->zp);
        hi = (float)(o->rq->qmax - o->rq->zp);
    }
    for (int c0 = 0; c0 < nc; c0 += PANEL_NR) {
        const uint8_t *xp = (const uint8_t *)panel + (c0 / PANEL_NR) * stride;
        const int cn = nc - c0 < PANEL_NR ? nc - c0 : PANEL_NR;
        for (int r = 0; r < nr; r++) {
            const int8_t *wr = w->data + (int64_t)(r0 + r) * w->ld;
            uint32_t a[PANEL_NR] = {0};
            for (int j = 0; j < k; j++) {
                const int32_t wk = wr[j];
                const uint8_t *xk = xp + (int64_t)j * PANEL_NR;
                for (int c = 0; c < PANEL_NR; c++) a[c] += (uint32_t)(wk * (int32_t)xk[c]);
            }
            const uint32_t zw = (uint32_t)(o->w_zp ? o->w_zp[r0 + r] : 0);
            const uint32_t rs = (uint32_t)w->row_sum[r0 + r];
            for (int c = 0; c < cn; c++) {
                const uint32_t zx = (uint32_t)(o->x_zp_cols ? o->x_zp_cols[c0 + c] : o->x_zp);
                uint32_t v = a[c] - zx * rs + (uint32_t)k * zw * zx;
                if (any_wzp) v -= zw * (uint32_t)o->colsum[c0 + c];
                const int64_t at = r * o->y_rs + (int64_t)(c0 + c) * o->y_cs;
                if (!o->rq) {
                    ((int32_t *)o->y)[at] = (int32_t)v;
                    continue;
                }
                const int32_t out = oct_requant_one(o->rq, r0 + r, (int32_t)v, lo, hi);
                ((uint8_t *)o->y)[at] = oct_requant_byte(o->rq, out);
            }
        }
    }
}

const oct_quant_kernel_set oct_ref_quant_kernels = {
    "ref", oct_ref_qweights_bytes, oct_ref_qweights_pack, oct_ref_qgemm, oct_ref_requant,
    &oct_ref_qpanel, oct_ref_qgemm_panel,
};
