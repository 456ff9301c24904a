/* Activation panels for the fused int8 GEMM (layout in quant_kernels.h): packing a matrix,
   unfolding a convolution tile (im2col) straight into panels, and the column sums a weight zero
   point needs. Portable C shared by every kernel set: each set only names its layout. The inner
   loops interleave kg contiguous byte rows into the panel, a pattern compilers vectorize. */
#include <string.h>

#include "quant_kernels.h"

/* Columns staged per pass: kg rows of this many bytes stay in L1 on the stack. */
enum { STAGE = 512, KG_MAX = 4 };

static const uint8_t zeros[STAGE];

size_t oct_qpanel_bytes(const oct_qpanel *l, int64_t k, int64_t nc) {
    if (k < 0 || nc < 0 || k > INT32_MAX || nc > INT32_MAX) return 0;
    const uint64_t panels = ((uint64_t)nc + (uint64_t)l->nr - 1) / (uint64_t)l->nr;
    const uint64_t stride = (uint64_t)oct_qpanel_stride(l, k);
    if (stride && panels > (SIZE_MAX / 2) / stride) return 0;
    const uint64_t bytes = panels * stride;
    return (size_t)((bytes + 63) & ~(uint64_t)63) + 64;
}

/* The interleaves of one run of columns inside a panel: slot i of column t gets r[i][t]. */
static void interleave4(uint32_t *restrict d, const uint8_t *restrict r0, const uint8_t *restrict r1,
                        const uint8_t *restrict r2, const uint8_t *restrict r3, int64_t n) {
    for (int64_t t = 0; t < n; t++)
        d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 8 | (uint32_t)r2[t] << 16 | (uint32_t)r3[t] << 24;
}
static void interleave2_16(uint32_t *restrict d, const uint8_t *restrict r0, const uint8_t *restrict r1, int64_t n) {
    for (int64_t t = 0; t < n; t++) d[t] = (uint32_t)r0[t] | (uint32_t)r1[t] << 16;
}
static void widen16(uint16_t *restrict d, const uint8_t *restrict r0, int64_t n) {
    for (int64_t t = 0; t < n; t++) d[t] = r0[t];
}
static void interleave_any(const oct_qpanel *l, char *d, const uint8_t *const rows[KG_MAX], int64_t t0, int64_t n) {
    for (int64_t t = 0; t < n; t++)
        for (int i = 0; i < l->kg; i++) {
            const uint8_t v = rows[i][t0 + t];
            if (l->x_size == 2) {
                const uint16_t v16 = v;
                memcpy(d + (t * l->kg + i) * 2, &v16, 2);
            } else {
                d[t * l->kg + i] = (char)v;
            }
        }
}

/* Writes columns [c, c + n) of group g: slot i of column c + t gets rows[i][t] (n <= STAGE).
   The columns run through consecutive panels: one division, then whole panel steps. */
static void put_group(const oct_qpanel *l, int64_t groups, int64_t g, int64_t c, int64_t n,
                      const uint8_t *const rows[KG_MAX], char *panel) {
    const int64_t vbytes = (int64_t)l->kg * l->x_size, pstep = groups * l->nr * vbytes;
    int64_t col = c % l->nr, t0 = 0;
    char *d = panel + (((c / l->nr) * groups + g) * l->nr + col) * vbytes;
    enum { ANY, KG4_U8, KG2_I16, KG1_U8, KG1_I16 };
    const int kind = l->kg == 4 && l->x_size == 1   ? KG4_U8
                     : l->kg == 2 && l->x_size == 2 ? KG2_I16
                     : l->kg == 1                   ? (l->x_size == 1 ? KG1_U8 : KG1_I16)
                                                    : ANY;
    while (t0 < n) {
        const int64_t run = l->nr - col < n - t0 ? l->nr - col : n - t0;
        switch (kind) {
        case KG4_U8: interleave4((uint32_t *)(void *)d, rows[0] + t0, rows[1] + t0, rows[2] + t0, rows[3] + t0, run); break;
        case KG2_I16: interleave2_16((uint32_t *)(void *)d, rows[0] + t0, rows[1] + t0, run); break;
        case KG1_U8: memcpy(d, rows[0] + t0, (size_t)run); break;
        case KG1_I16: widen16((uint16_t *)(void *)d, rows[0] + t0, run); break;
        default: interleave_any(l, d, rows, t0, run);
        }
        t0 += run;
        d += pstep - col * vbytes; /* the next panel's column 0 */
        col = 0;
    }
}

/* Packed zero in every group of columns [nc, whole panels). */
static void zero_tail(const oct_qpanel *l, int64_t groups, int64_t nc, char *panel) {
    const int64_t end = (nc + l->nr - 1) / l->nr * l->nr;
    if (end == nc) return;
    const uint8_t *rows[KG_MAX] = {zeros, zeros, zeros, zeros};
    for (int64_t g = 0; g < groups; g++) put_group(l, groups, g, nc, end - nc, rows, panel);
}

void oct_ref_qpanel_pack(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k,
                        int nc, uint8_t x_xor, void *panel) {
    const int64_t groups = oct_qpanel_groups(l, k);
    const uint8_t v = x_xor ^ l->x_flip;
    _Alignas(64) uint8_t stage[KG_MAX][STAGE];
    for (int64_t c0 = 0; c0 < nc; c0 += STAGE) {
        const int64_t n = nc - c0 < STAGE ? nc - c0 : STAGE;
        for (int64_t g = 0; g < groups; g++) {
            const uint8_t *rows[KG_MAX];
            for (int i = 0; i < l->kg; i++) {
                const int64_t kk = g * l->kg + i;
                if (kk >= k) {
                    rows[i] = zeros;
                    continue;
                }
                const uint8_t *src = x + kk * k_stride + c0 * c_stride;
                if (c_stride == 1 && !v) {
                    rows[i] = src; /* already a contiguous row in the packed domain */
                    continue;
                }
                for (int64_t t = 0; t < n; t++) stage[i][t] = (uint8_t)(src[t * c_stride] ^ v);
                rows[i] = stage[i];
            }
            put_group(l, groups, g, c0, n, rows, panel);
        }
    }
    zero_tail(l, groups, nc, panel);
}

/* The padded box of input a stage of output pixels reads: for channels c, input depths
   [id0, id0 + bd), rows [ih0, ih0 + bh) and columns [-pad, bw - pad), each byte x ^ v or vpad
   outside the input. Built once per stage, so the unfolding below is plain copies with no bounds
   checks, however short the output rows are. */
typedef struct {
    int64_t bd, bh, bw; /* box dims */
    int64_t id0, ih0;   /* input depth and row at box (0, 0) */
    int64_t oh0;        /* first output row of the stage (within its depth slice) */
} box_geom;

static void box_dims(const oct_conv_geom *g, int64_t rows, box_geom *b) {
    b->bd = (g->k[0] - 1) * g->dil[0] + 1;
    b->bh = (rows - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    b->bw = (g->out[2] - 1) * g->stride[2] + (g->k[2] - 1) * g->dil[2] + 1;
}

/* Output rows a stage of at most STAGE pixels inside one depth slice can touch. */
static int64_t stage_rows(const oct_conv_geom *g) {
    const int64_t rows = (STAGE + g->out[2] - 2) / g->out[2] + 1;
    return rows < g->out[1] ? rows : g->out[1];
}

static int is_pointwise(const oct_conv_geom *g) {
    int pw = 1;
    for (int d = 0; d < 3; d++) pw &= g->k[d] == 1 && g->stride[d] == 1 && g->pad[d] == 0 && g->in[d] == g->out[d];
    return pw;
}

size_t oct_ref_qpanel_im2col_scratch(const oct_conv_geom *g, int64_t channels) {
    if (is_pointwise(g)) return 64;
    box_geom b;
    box_dims(g, stage_rows(g), &b);
    if (channels < 1 || b.bd < 1 || b.bh < 1 || b.bw < 1) return 0;
    const uint64_t plane = (uint64_t)b.bd * (uint64_t)b.bh;
    if ((uint64_t)b.bw > (SIZE_MAX / 4) / plane || (uint64_t)channels > (SIZE_MAX / 4) / (plane * (uint64_t)b.bw))
        return 0;
    return (size_t)(((uint64_t)channels * plane * (uint64_t)b.bw + 16 + 63) & ~(uint64_t)63);
}

static void box_fill(const oct_conv_geom *g, const uint8_t *x, int64_t channels, const box_geom *b, uint8_t v,
                     uint8_t vpad, uint8_t *box) {
    const int64_t in_vol = oct_geom_in_vol(g), W = g->in[2], pad = g->pad[2];
    /* box column z holds input column z - pad; those inside the input are [lo, hi) */
    int64_t lo = pad, hi = pad + W;
    if (lo > b->bw) lo = b->bw;
    if (hi > b->bw) hi = b->bw;
    for (int64_t c = 0; c < channels; c++)
        for (int64_t zd = 0; zd < b->bd; zd++)
            for (int64_t zh = 0; zh < b->bh; zh++) {
                uint8_t *restrict d = box + ((c * b->bd + zd) * b->bh + zh) * b->bw;
                const int64_t id = b->id0 + zd, ih = b->ih0 + zh;
                if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] || hi <= lo) {
                    memset(d, vpad, (size_t)b->bw);
                    continue;
                }
                const uint8_t *restrict row = x + c * in_vol + (id * g->in[1] + ih) * W + (lo - pad);
                memset(d, vpad, (size_t)lo);
                if (v)
                    for (int64_t z = 0; z < hi - lo; z++) d[lo + z] = (uint8_t)(row[z] ^ v);
                else
                    memcpy(d + lo, row, (size_t)(hi - lo));
                memset(d + hi, vpad, (size_t)(b->bw - hi));
            }
}

/* One output-row piece of a stage: n pixels from output (oh, ow) written at stage column q. */
typedef struct {
    int64_t q, n, oh, ow;
} row_piece;

/* Where k row (c, kd, kh, kw) of the stage starts in the box: output row oh0, column 0. */
static const uint8_t *row_base(const oct_conv_geom *g, const box_geom *b, const uint8_t *box, int64_t c, int64_t kd,
                               int64_t kh, int64_t kw) {
    return box + ((c * b->bd + kd * g->dil[0]) * b->bh + kh * g->dil[1]) * b->bw + kw * g->dil[2];
}

/* Gathers the k row starting at base (row_base) into dst, stage column q at dst[q], for a
   horizontal stride other than 1. */
static void unfold_row(const oct_conv_geom *g, const box_geom *b, const uint8_t *base, const row_piece *pcs,
                       int npc, uint8_t *dst) {
    const int64_t s = g->stride[2];
    for (int i = 0; i < npc; i++) {
        const uint8_t *restrict src = base + (pcs[i].oh - b->oh0) * g->stride[1] * b->bw + pcs[i].ow * s;
        uint8_t *restrict d = dst + pcs[i].q;
        const int64_t n = pcs[i].n;
        if (s == 2) /* the usual downsampling: a constant stride the compiler can vectorize */
            for (int64_t t = 0; t < n; t++) d[t] = src[2 * t];
        else
            for (int64_t t = 0; t < n; t++) d[t] = src[t * s];
    }
}

/* Packs k rows [0, K) of stage columns [q0, q0 + n) (output pixels p0 + q0.., all in one depth
   slice) into the panels. */
static void unfold_stage(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels,
                         int64_t p, int64_t q0, int64_t n, uint8_t v, uint8_t vpad, uint8_t *box, void *panel) {
    const int64_t kvol = oct_geom_k_vol(g), K = channels * kvol, groups = oct_qpanel_groups(l, K);
    const int64_t ow0 = p % g->out[2], rest = p / g->out[2], oh0 = rest % g->out[1], od = rest / g->out[1];
    row_piece pcs[STAGE + 1];
    int npc = 0;
    for (int64_t q = 0, oh = oh0, ow = ow0; q < n; oh++, ow = 0) {
        const int64_t len = g->out[2] - ow < n - q ? g->out[2] - ow : n - q;
        pcs[npc++] = (row_piece){q, len, oh, ow};
        q += len;
    }
    box_geom b;
    box_dims(g, pcs[npc - 1].oh - oh0 + 1, &b);
    b.id0 = od * g->stride[0] - g->pad[0];
    b.ih0 = oh0 * g->stride[1] - g->pad[1];
    b.oh0 = oh0;
    box_fill(g, x, channels, &b, v, vpad, box);
    _Alignas(64) uint8_t stage[KG_MAX][STAGE + 8];
    /* stride 1: each output-row piece of a k row is contiguous in the box, so the pieces are
       interleaved into the panels straight from it; other strides gather into the stage first */
    const int direct = g->stride[2] == 1;
    int64_t c = 0, kd = 0, kh = 0, kw = 0; /* the tap of row kk, advanced row by row */
    for (int64_t g0 = 0; g0 < groups; g0++) {
        const uint8_t *rows[KG_MAX], *bases[KG_MAX];
        for (int i = 0; i < l->kg; i++) {
            if (g0 * l->kg + i >= K) {
                rows[i] = bases[i] = NULL;
                continue;
            }
            bases[i] = row_base(g, &b, box, c, kd, kh, kw);
            if (!direct) {
                unfold_row(g, &b, bases[i], pcs, npc, stage[i]);
                rows[i] = stage[i];
            }
            if (++kw == g->k[2]) {
                kw = 0;
                if (++kh == g->k[1]) {
                    kh = 0;
                    if (++kd == g->k[0]) {
                        kd = 0;
                        c++;
                    }
                }
            }
        }
        if (!direct) {
            for (int i = 0; i < l->kg; i++)
                if (!rows[i]) rows[i] = zeros;
            put_group(l, groups, g0, q0, n, rows, panel);
            continue;
        }
        for (int pc = 0; pc < npc; pc++) {
            const int64_t at = (pcs[pc].oh - b.oh0) * g->stride[1] * b.bw + pcs[pc].ow;
            for (int i = 0; i < l->kg; i++) rows[i] = bases[i] ? bases[i] + at : zeros;
            put_group(l, groups, g0, q0 + pcs[pc].q, pcs[pc].n, rows, panel);
        }
    }
}

void oct_ref_qpanel_im2col(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels,
                          int64_t p0, int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel) {
    const int64_t K = channels * oct_geom_k_vol(g), groups = oct_qpanel_groups(l, K);
    const int64_t in_vol = oct_geom_in_vol(g), plane = g->out[1] * g->out[2];
    const uint8_t v = x_xor ^ l->x_flip, vpad = pad ^ l->x_flip;
    if (is_pointwise(g)) {
        /* output pixel p reads input pixel p: the rows are the input's own */
        _Alignas(64) uint8_t stage[KG_MAX][STAGE];
        for (int64_t q0 = 0; q0 < np; q0 += STAGE) {
            const int64_t n = np - q0 < STAGE ? np - q0 : STAGE;
            for (int64_t g0 = 0; g0 < groups; g0++) {
                const uint8_t *rows[KG_MAX];
                for (int i = 0; i < l->kg; i++) {
                    const int64_t kk = g0 * l->kg + i;
                    const uint8_t *src = x + kk * in_vol + p0 + q0;
                    if (kk >= K) {
                        rows[i] = zeros;
                    } else if (!v) {
                        rows[i] = src;
                    } else {
                        for (int64_t t = 0; t < n; t++) stage[i][t] = (uint8_t)(src[t] ^ v);
                        rows[i] = stage[i];
                    }
                }
                put_group(l, groups, g0, q0, n, rows, panel);
            }
        }
    } else {
        /* stages of at most STAGE pixels that never cross a depth slice */
        for (int64_t q0 = 0; q0 < np;) {
            const int64_t p = p0 + q0, to_slice = plane - p % plane;
            int64_t n = np - q0 < STAGE ? np - q0 : STAGE;
            if (n > to_slice) n = to_slice;
            unfold_stage(l, g, x, channels, p, q0, n, v, vpad, scratch, panel);
            q0 += n;
        }
    }
    zero_tail(l, groups, np, panel);
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
