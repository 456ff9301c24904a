/* The activation-panel packers (layout in quant_kernels.h) written once and compiled per ISA:
   ref/qpanel.c includes this with portable loops, kernels/<arch>/.../qpanel_<isa>.c with vector
   ones, so every set unfolds with the same walk and only the innermost copies differ.

   Before including, a file defines these byte movers (n columns, any n >= 0; they may read only
   the n bytes of each source row they are given, except where noted):
     qp_interleave4(uint32_t *d, r0, r1, r2, r3, n)   d[t] = r0[t] | r1[t] << 8 | r2[t] << 16 | r3[t] << 24
     qp_interleave2_16(uint32_t *d, r0, r1, n)        d[t] = r0[t] | r1[t] << 16
     qp_widen16(uint16_t *d, r0, n)                   d[t] = r0[t]
     qp_gather2(uint8_t *d, const uint8_t *src, n)    d[t] = src[2 * t]   (src[2n - 1] may be read: its
                                                      rows lie in the scratch box, which has slack)
     qp_copy_xor(uint8_t *d, const uint8_t *src, n, v) d[t] = src[t] ^ v  (short rows: no library call)
   and then gets, all static:
     qp_pack(...)    the body of oct_ref_qpanel_pack
     qp_im2col(...)  the body of oct_ref_qpanel_im2col
   The results are the same bytes whatever the movers' ISA: they are plain copies. */
#ifndef OCT_QPANEL_UNFOLD_H
#define OCT_QPANEL_UNFOLD_H

#include <string.h>

#include "quant_kernels.h"

/* Columns staged per pass: kg rows of this many bytes stay in L1 on the stack. */
enum { QP_STAGE = 512, QP_KG_MAX = 4 };

static const uint8_t qp_zeros[QP_STAGE + 64];

static void qp_interleave_any(const oct_qpanel *l, char *d, const uint8_t *const rows[QP_KG_MAX], int64_t t0,
                              int64_t n) {
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

/* A run of columns inside one panel: source offset `at` (added to each k row's base), panel byte
   offset `dst` of its first column in group 0, and length n. Cutting a stage's columns into these
   once, before the k loop, keeps divisions and boundary tests out of it. */
typedef struct {
    int64_t at, dst, n;
} qp_seg;

enum { QP_ANY, QP_KG4_U8, QP_KG2_I16, QP_KG1_U8, QP_KG1_I16 };

static inline int qp_kind(const oct_qpanel *l) {
    return l->kg == 4 && l->x_size == 1   ? QP_KG4_U8
           : l->kg == 2 && l->x_size == 2 ? QP_KG2_I16
           : l->kg == 1                   ? (l->x_size == 1 ? QP_KG1_U8 : QP_KG1_I16)
                                          : QP_ANY;
}

/* Appends the segments of columns [c, c + n), whose sources are at src_at + t, to segs; returns
   how many. At most n / nr + 2. */
static int qp_cut(const oct_qpanel *l, int64_t groups, int64_t c, int64_t n, int64_t src_at, qp_seg *segs) {
    const int64_t vbytes = (int64_t)l->kg * l->x_size;
    int64_t panel = c / l->nr, col = c % l->nr;
    int cnt = 0;
    for (int64_t t = 0; t < n; panel++, col = 0) {
        const int64_t run = l->nr - col < n - t ? l->nr - col : n - t;
        segs[cnt++] = (qp_seg){src_at + t, (panel * groups * l->nr + col) * vbytes, run};
        t += run;
    }
    return cnt;
}

/* Writes the segments of group g: slot i of a segment's column t gets rows[i][at + t]. */
static void qp_put_segs(const oct_qpanel *l, int kind, int64_t g, const qp_seg *segs, int nseg,
                        const uint8_t *const rows[QP_KG_MAX], char *panel) {
    char *pg = panel + g * l->nr * l->kg * l->x_size;
    switch (kind) {
    case QP_KG4_U8:
        for (int s = 0; s < nseg; s++)
            qp_interleave4((uint32_t *)(void *)(pg + segs[s].dst), rows[0] + segs[s].at, rows[1] + segs[s].at,
                           rows[2] + segs[s].at, rows[3] + segs[s].at, segs[s].n);
        break;
    case QP_KG2_I16:
        for (int s = 0; s < nseg; s++)
            qp_interleave2_16((uint32_t *)(void *)(pg + segs[s].dst), rows[0] + segs[s].at, rows[1] + segs[s].at,
                              segs[s].n);
        break;
    case QP_KG1_U8:
        for (int s = 0; s < nseg; s++) memcpy(pg + segs[s].dst, rows[0] + segs[s].at, (size_t)segs[s].n);
        break;
    case QP_KG1_I16:
        for (int s = 0; s < nseg; s++) qp_widen16((uint16_t *)(void *)(pg + segs[s].dst), rows[0] + segs[s].at, segs[s].n);
        break;
    default:
        for (int s = 0; s < nseg; s++) qp_interleave_any(l, pg + segs[s].dst, rows, segs[s].at, segs[s].n);
    }
}

/* qp_put_segs for a group with k past K (rows[i] NULL: those slots get packed zero). */
static void qp_put_partial(const oct_qpanel *l, int kind, int64_t g, const qp_seg *segs, int nseg,
                           const uint8_t *const rows[QP_KG_MAX], char *panel) {
    for (int s = 0; s < nseg; s++) {
        const uint8_t *r[QP_KG_MAX];
        for (int i = 0; i < QP_KG_MAX; i++) r[i] = i < l->kg && rows[i] ? rows[i] + segs[s].at : qp_zeros;
        const qp_seg one = {0, segs[s].dst, segs[s].n};
        qp_put_segs(l, kind, g, &one, 1, r, panel);
    }
}

/* Packed zero in every group of columns [nc, whole panels). */
static void qp_zero_tail(const oct_qpanel *l, int64_t groups, int64_t nc, char *panel) {
    const int64_t end = (nc + l->nr - 1) / l->nr * l->nr;
    if (end == nc) return;
    const uint8_t *rows[QP_KG_MAX] = {qp_zeros, qp_zeros, qp_zeros, qp_zeros};
    qp_seg seg;
    qp_cut(l, groups, nc, end - nc, 0, &seg); /* less than one panel: one segment */
    for (int64_t g = 0; g < groups; g++) qp_put_segs(l, qp_kind(l), g, &seg, 1, rows, panel);
}

static void qp_pack(const oct_qpanel *l, const uint8_t *x, int64_t k_stride, int64_t c_stride, int k, int nc,
                    uint8_t x_xor, void *panel) {
    const int64_t groups = oct_qpanel_groups(l, k);
    const uint8_t v = x_xor ^ l->x_flip;
    const int kind = qp_kind(l);
    _Alignas(64) uint8_t stage[QP_KG_MAX][QP_STAGE];
    qp_seg segs[QP_STAGE + 2];
    for (int64_t c0 = 0; c0 < nc; c0 += QP_STAGE) {
        const int64_t n = nc - c0 < QP_STAGE ? nc - c0 : QP_STAGE;
        const int nseg = qp_cut(l, groups, c0, n, 0, segs);
        for (int64_t g = 0; g < groups; g++) {
            const uint8_t *rows[QP_KG_MAX];
            for (int i = 0; i < l->kg; i++) {
                const int64_t kk = g * l->kg + i;
                if (kk >= k) {
                    rows[i] = qp_zeros;
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
            qp_put_segs(l, kind, g, segs, nseg, rows, panel);
        }
    }
    qp_zero_tail(l, groups, nc, panel);
}

/* The padded box of input a stage of output pixels reads: for channels c, input depths
   [id0, id0 + bd), rows [ih0, ih0 + bh) and columns [-pad, bw - pad), each byte x ^ v or vpad
   outside the input. Built once per stage, so the unfolding below is plain copies with no bounds
   checks, however short the output rows are. */
typedef struct {
    int64_t bd, bh, bw; /* box dims */
    int64_t id0, ih0;   /* input depth and row at box (0, 0) */
    int64_t oh0;        /* first output row of the stage (within its depth slice) */
} qp_box;

static void qp_box_dims(const oct_conv_geom *g, int64_t rows, qp_box *b) {
    b->bd = (g->k[0] - 1) * g->dil[0] + 1;
    b->bh = (rows - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    b->bw = (g->out[2] - 1) * g->stride[2] + (g->k[2] - 1) * g->dil[2] + 1;
}

/* Output rows a stage of at most QP_STAGE pixels inside one depth slice can touch. */
static inline int64_t qp_stage_rows(const oct_conv_geom *g) {
    const int64_t rows = (QP_STAGE + g->out[2] - 2) / g->out[2] + 1;
    return rows < g->out[1] ? rows : g->out[1];
}

static inline int qp_is_pointwise(const oct_conv_geom *g) {
    int pw = 1;
    for (int d = 0; d < 3; d++) pw &= g->k[d] == 1 && g->stride[d] == 1 && g->pad[d] == 0 && g->in[d] == g->out[d];
    return pw;
}

static void qp_box_fill(const oct_conv_geom *g, const uint8_t *x, int64_t channels, const qp_box *b, uint8_t v,
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
                /* the padding columns are a few bytes: plain loops, no library calls per row */
                for (int64_t z = 0; z < lo; z++) d[z] = vpad;
                qp_copy_xor(d + lo, row, hi - lo, v);
                for (int64_t z = hi; z < b->bw; z++) d[z] = vpad;
            }
}

/* One output-row piece of a stage: n pixels from output (oh, ow) written at stage column q. */
typedef struct {
    int64_t q, n, oh, ow;
} qp_piece;

/* Where k row (c, kd, kh, kw) of the stage starts in the box: output row oh0, column 0. */
static inline const uint8_t *qp_row_base(const oct_conv_geom *g, const qp_box *b, const uint8_t *box, int64_t c,
                                         int64_t kd, int64_t kh, int64_t kw) {
    return box + ((c * b->bd + kd * g->dil[0]) * b->bh + kh * g->dil[1]) * b->bw + kw * g->dil[2];
}

/* Gathers the k row starting at base (qp_row_base) into dst, stage column q at dst[q], for a
   horizontal stride other than 1. */
static void qp_unfold_row(const oct_conv_geom *g, const qp_box *b, const uint8_t *base, const qp_piece *pcs,
                          int npc, uint8_t *dst) {
    const int64_t s = g->stride[2];
    for (int i = 0; i < npc; i++) {
        const uint8_t *restrict src = base + (pcs[i].oh - b->oh0) * g->stride[1] * b->bw + pcs[i].ow * s;
        uint8_t *restrict d = dst + pcs[i].q;
        const int64_t n = pcs[i].n;
        if (s == 2) /* the usual downsampling */
            qp_gather2(d, src, n);
        else
            for (int64_t t = 0; t < n; t++) d[t] = src[t * s];
    }
}

/* Packs k rows [0, K) of stage columns [q0, q0 + n) (output pixels p0 + q0.., all in one depth
   slice) into the panels. */
static void qp_unfold_stage(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels,
                            int64_t p, int64_t q0, int64_t n, uint8_t v, uint8_t vpad, uint8_t *box, void *panel) {
    const int64_t kvol = oct_geom_k_vol(g), K = channels * kvol, groups = oct_qpanel_groups(l, K);
    const int64_t ow0 = p % g->out[2], rest = p / g->out[2], oh0 = rest % g->out[1], od = rest / g->out[1];
    qp_piece pcs[QP_STAGE + 1];
    int npc = 0;
    for (int64_t q = 0, oh = oh0, ow = ow0; q < n; oh++, ow = 0) {
        const int64_t len = g->out[2] - ow < n - q ? g->out[2] - ow : n - q;
        pcs[npc++] = (qp_piece){q, len, oh, ow};
        q += len;
    }
    qp_box b;
    qp_box_dims(g, pcs[npc - 1].oh - oh0 + 1, &b);
    b.id0 = od * g->stride[0] - g->pad[0];
    b.ih0 = oh0 * g->stride[1] - g->pad[1];
    b.oh0 = oh0;
    qp_box_fill(g, x, channels, &b, v, vpad, box);
    _Alignas(64) uint8_t stage[QP_KG_MAX][QP_STAGE + 64];
    /* stride 1: each output-row piece of a k row is contiguous in the box, so the pieces are
       interleaved into the panels straight from it (a segment's source is its box offset);
       other strides gather into the stage first (a segment's source is its stage column) */
    const int direct = g->stride[2] == 1, kind = qp_kind(l);
    qp_seg segs[2 * QP_STAGE + 4];
    int nseg = 0;
    if (direct)
        for (int pc = 0; pc < npc; pc++)
            nseg += qp_cut(l, groups, q0 + pcs[pc].q, pcs[pc].n,
                           (pcs[pc].oh - b.oh0) * g->stride[1] * b.bw + pcs[pc].ow, segs + nseg);
    else
        nseg = qp_cut(l, groups, q0, n, 0, segs);
    int64_t c = 0, kd = 0, kh = 0, kw = 0; /* the tap of row kk, advanced row by row */
    for (int64_t g0 = 0; g0 < groups; g0++) {
        const uint8_t *rows[QP_KG_MAX], *bases[QP_KG_MAX];
        for (int i = 0; i < l->kg; i++) {
            if (g0 * l->kg + i >= K) {
                rows[i] = bases[i] = NULL;
                continue;
            }
            bases[i] = qp_row_base(g, &b, box, c, kd, kh, kw);
            if (!direct) {
                qp_unfold_row(g, &b, bases[i], pcs, npc, stage[i]);
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
        if (direct)
            for (int i = 0; i < l->kg; i++) rows[i] = bases[i];
        /* only the last group can hold k past K */
        if (g0 * l->kg + l->kg <= K) qp_put_segs(l, kind, g0, segs, nseg, rows, panel);
        else qp_put_partial(l, kind, g0, segs, nseg, rows, panel);
    }
}

static void qp_im2col(const oct_qpanel *l, const oct_conv_geom *g, const uint8_t *x, int64_t channels, int64_t p0,
                      int64_t np, uint8_t x_xor, uint8_t pad, void *scratch, void *panel) {
    const int64_t K = channels * oct_geom_k_vol(g), groups = oct_qpanel_groups(l, K);
    const int64_t in_vol = oct_geom_in_vol(g), plane = g->out[1] * g->out[2];
    const uint8_t v = x_xor ^ l->x_flip, vpad = pad ^ l->x_flip;
    if (qp_is_pointwise(g)) {
        /* output pixel p reads input pixel p: the rows are the input's own */
        _Alignas(64) uint8_t stage[QP_KG_MAX][QP_STAGE];
        const int kind = qp_kind(l);
        qp_seg segs[QP_STAGE + 2];
        for (int64_t q0 = 0; q0 < np; q0 += QP_STAGE) {
            const int64_t n = np - q0 < QP_STAGE ? np - q0 : QP_STAGE;
            const int nseg = qp_cut(l, groups, q0, n, 0, segs);
            for (int64_t g0 = 0; g0 < groups; g0++) {
                const uint8_t *rows[QP_KG_MAX];
                for (int i = 0; i < l->kg; i++) {
                    const int64_t kk = g0 * l->kg + i;
                    const uint8_t *src = x + kk * in_vol + p0 + q0;
                    if (kk >= K) {
                        rows[i] = qp_zeros;
                    } else if (!v) {
                        rows[i] = src;
                    } else {
                        for (int64_t t = 0; t < n; t++) stage[i][t] = (uint8_t)(src[t] ^ v);
                        rows[i] = stage[i];
                    }
                }
                qp_put_segs(l, kind, g0, segs, nseg, rows, panel);
            }
        }
    } else {
        /* stages of at most QP_STAGE pixels that never cross a depth slice */
        for (int64_t q0 = 0; q0 < np;) {
            const int64_t p = p0 + q0, to_slice = plane - p % plane;
            int64_t n = np - q0 < QP_STAGE ? np - q0 : QP_STAGE;
            if (n > to_slice) n = to_slice;
            qp_unfold_stage(l, g, x, channels, p, q0, n, v, vpad, scratch, panel);
            q0 += n;
        }
    }
    qp_zero_tail(l, groups, np, panel);
}

#endif
