/* The SIMD twins of the int8 kernel set (ref/quant_kernels.h), and the tiling they share.

   Every twin computes the same integers as ref bit for bit: the raw products sum_k w*x are
   accumulated in 32-bit lanes (wrapping mod 2^32 like ref's uint32 arithmetic), and the zero
   points are applied afterwards through the same row and column sums. Only the packed layouts and
   the micro-kernels differ per ISA:

     set        weights (packed)          activations (packed per call)      instruction
     avx2       int16, pairs of k         uint8 widened to int16, pairs      VPMADDWD + VPADDD
     avxvnni    int8, groups of 4 k       uint8, groups of 4 k               VPDPBUSD ymm {vex}
     vnni       int8, groups of 4 k       uint8, groups of 4 k               VPDPBUSD zmm
     neon       int8 (widened in-kernel)  uint8 widened to int16             SMLAL by lane
     dotprod    int8, groups of 4 k       uint8 - 128 as int8, groups of 4   SDOT by lane

   Weights are cut into blocks of `mr` rows; inside a block, k runs in groups of `kg` values and
   each group holds the kg values of all mr rows ([block][group][row][kg], zero padded), so a
   micro-kernel reads one stream. Activations [k x nc] are repacked per call into panels of `nr`
   columns ([panel][group][column][kg]): a lane then holds the kg consecutive k of one column,
   which is what VPDPBUSD / VPMADDWD / SDOT consume, and the accumulators are rows of the output.
   A micro-kernel computes mr rows x (nv * lanes) columns; blocks that straddle the requested rows
   and partial panels go through a tile on the stack, so any r0, nr, nc works.

   Two entry points share the micro-kernels: qgemm (the ref contract: row-major x repacked per
   call, int32 out) and qgemm_panel, the fused path the int8 ops use: x arrives already in the
   panel layout (convolutions unfold straight into it, ref/qpanel.c), every micro-tile runs over
   the whole K, and the family's write-back (qwriteback_*.h) applies the zero points and the
   requantization to the raw sums and stores bytes, so no int32 block goes through memory.

   VPMADDUBSW is never used: its int16 saturation would break exactness. */
#ifndef OCT_QUANT_ISA_H
#define OCT_QUANT_ISA_H

#include <stdint.h>
#include <string.h>

#include "ref/quant_kernels.h"

/* ---- the kernel sets ------------------------------------------------------------------------ */

#if defined(__x86_64__)
extern const oct_quant_kernel_set oct_avx2_quant_kernels;    /* AVX2: the avx2 and avx512 levels */
extern const oct_quant_kernel_set oct_avxvnni_quant_kernels; /* AVX-VNNI, 256-bit */
extern const oct_quant_kernel_set oct_vnni_quant_kernels;    /* AVX-512 VNNI */
void oct_avx2_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                      void *y, int64_t y_rs, int64_t y_cs);
void oct_avx512_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc,
                        const oct_requant *q, void *y, int64_t y_rs, int64_t y_cs);
#endif
#if defined(__aarch64__)
extern const oct_quant_kernel_set oct_neon_quant_kernels;    /* ARMv8.0 NEON */
extern const oct_quant_kernel_set oct_dotprod_quant_kernels; /* ARMv8.2 dot product */
void oct_neon_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                      void *y, int64_t y_rs, int64_t y_cs);
#endif

/* True if the CPU (and OS) can run AVX-VNNI (cpuid leaf 7 subleaf 1, eax bit 4) with AVX2; the
   'vnni' level uses it when AVX-512 VNNI is absent. Always 0 off x86-64. */
int oct_cpu_has_avxvnni(void);

/* ---- the float part of requantization, shared by the vector requant twins ---------------------- */

/* Output clamp bounds as ref computes them. */
static inline void oct_qt_requant_bounds(const oct_requant *q, float *lo, float *hi) {
    *lo = (float)(q->qmin - q->zp);
    *hi = (float)(q->qmax - q->zp);
}

/* ---- the shared tiling (compiled into each ISA library with its flags) -------------------------- */

/* Columns per pass (a multiple of every nr) and the bytes of the packed activation buffer on the
   stack: it stays in L1 while every row block of the call runs over it. */
enum { OCT_QT_NC = 96, OCT_QT_XBUF = 24576, OCT_QT_MR_MAX = 8, OCT_QT_NR_MAX = 48 };

/* Packs activation rows [0, kc) and columns [0, cn) of x (row stride ldx) into ceil(cn / nr)
   panels of `groups` groups each (groups = ceil(kc / kg)), padding k and the last panel up to a
   whole vector with zeros. */
typedef void (*oct_qpack_x_fn)(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst);
/* c[i][j] (+)= sum over `groups` groups of the packed weights of row i times the packed
   activations of column j, for i < mr and j < nv * lanes; rows of c are ldc apart. */
typedef void (*oct_qukernel_fn)(int groups, const void *w, const void *x, int nv, int32_t *c,
                                int64_t ldc, int accumulate);

/* The fused write-back of one micro-tile (see oct_qt_gemm_panel). Per row of the weight block: */
typedef struct {
    uint32_t add[OCT_QT_MR_MAX]; /* x_shift*rs + x_zp*(K*zw - rs), the x_zp term only when x_zp is per tensor */
    uint32_t a[OCT_QT_MR_MAX];   /* K*zw - rs: times a per-column zx */
    uint32_t zw[OCT_QT_MR_MAX];  /* times colsum */
    float m[OCT_QT_MR_MAX];      /* requantization multiplier and bias */
    int32_t bias[OCT_QT_MR_MAX];
} oct_qt_rows;

typedef struct {
    const oct_qt_rows *rows;
    const int32_t *zx, *cs; /* per column, nv * lanes of them (zero padded), or NULL */
    int lo, hi, cols;       /* rows [lo, hi) and columns [0, cols) of the micro-tile are stored */
    const oct_requant *rq;  /* NULL: int32 output */
    float flo, fhi;         /* rq's clamp as floats */
    void *y;                /* row lo, column 0 */
    int64_t y_rs, y_cs;     /* elements */
} oct_qt_tile;

/* acc holds the raw sums of the micro-tile, rows OCT_QT_NR_MAX apart; applies the zero points
   and the requantization of t and stores rows [lo, hi), columns [0, cols). */
typedef void (*oct_qwriteback_fn)(const int32_t *acc, int nv, const oct_qt_tile *t);

typedef struct {
    int mr, nr, kg, lanes;  /* rows and columns of a micro-tile; k per group; columns per vector */
    int w_size, x_size;     /* bytes of one packed weight / activation value */
    uint32_t x_shift;       /* the packed activations hold x - x_shift (dotprod: 128) */
    oct_qpack_x_fn pack_x;
    oct_qukernel_fn ukernel;
    oct_qwriteback_fn writeback;
} oct_qtiling;

static inline int64_t oct_qt_groups(const oct_qtiling *t, int k) { return ((int64_t)k + t->kg - 1) / t->kg; }

/* Bytes of one packed row block: every group of the row block. */
static inline int64_t oct_qt_block_bytes(const oct_qtiling *t, int k) {
    return oct_qt_groups(t, k) * t->mr * t->kg * t->w_size;
}

static inline size_t oct_qt_weights_bytes(const oct_qtiling *t, int rows, int k) {
    if (rows < 0 || k < 0) return 0;
    const uint64_t blocks = ((uint64_t)rows + (uint64_t)t->mr - 1) / (uint64_t)t->mr;
    const uint64_t block = (uint64_t)oct_qt_block_bytes(t, k);
    if (block && blocks > (SIZE_MAX / 4) / block) return 0;
    const uint64_t data = (blocks * block + 63) & ~(uint64_t)63;
    if ((uint64_t)rows > SIZE_MAX / 16) return 0;
    return (size_t)data + (((size_t)rows * sizeof(int32_t) + 63) & ~(size_t)63) + 64;
}

/* The same contract as oct_ref_qweights_pack; out->ld is the bytes of one row block. Done once per
   model, so plain loops. */
static inline void oct_qt_weights_pack(const oct_qtiling *t, int rows, int k, const void *w, int w_is_u8,
                                       int64_t w_rs, int64_t w_ks, void *buf, oct_qweights *out) {
    const int64_t block = oct_qt_block_bytes(t, k);
    const int64_t blocks = ((int64_t)rows + t->mr - 1) / t->mr;
    const size_t data_bytes = ((size_t)(blocks * block) + 63) & ~(size_t)63;
    int8_t *data = buf;
    int32_t *sums = (int32_t *)((char *)buf + data_bytes);
    memset(data, 0, data_bytes);
    const uint8_t *src = w;
    const uint8_t flip = w_is_u8 ? 0x80 : 0;
    for (int r = 0; r < rows; r++) {
        char *blk = (char *)data + (int64_t)(r / t->mr) * block;
        int32_t s = 0;
        for (int j = 0; j < k; j++) {
            const int8_t v = (int8_t)(src[r * w_rs + j * w_ks] ^ flip);
            s += v;
            const int64_t at = ((int64_t)(j / t->kg) * t->mr + r % t->mr) * t->kg + j % t->kg;
            if (t->w_size == 2) {
                const int16_t v16 = v;
                memcpy(blk + at * 2, &v16, 2);
            } else {
                blk[at] = (char)v;
            }
        }
        sums[r] = s;
    }
    out->rows = rows;
    out->k = k;
    out->ld = block;
    out->data = data;
    out->row_sum = sums;
}

/* Address of packed activation (group g, column c) in a buffer of `groups` groups per panel. */
static inline char *oct_qt_x_at(const oct_qtiling *t, void *dst, int groups, int g, int c) {
    const int64_t panel = c / t->nr, col = c % t->nr;
    return (char *)dst + (((panel * groups + g) * t->nr + col) * t->kg) * t->x_size;
}

/* Element-wise packing of groups [g0, g1) x columns [c0, c1) (zeros past kc and cn): the edges
   that the vector packers leave. */
static inline void oct_qt_pack_x_edge(const oct_qtiling *t, const uint8_t *x, int64_t ldx, int kc, int cn,
                                      int groups, void *dst, int g0, int g1, int c0, int c1) {
    for (int g = g0; g < g1; g++)
        for (int c = c0; c < c1; c++) {
            char *d = oct_qt_x_at(t, dst, groups, g, c);
            for (int i = 0; i < t->kg; i++) {
                const int kk = g * t->kg + i;
                const int32_t v = kk < kc && c < cn ? (int32_t)x[kk * ldx + c] - (int32_t)t->x_shift : 0;
                if (t->x_size == 2) {
                    const int16_t v16 = (int16_t)v;
                    memcpy(d + i * 2, &v16, 2);
                } else {
                    d[i] = (char)(uint8_t)v;
                }
            }
        }
}

/* Applies the zero points to the raw sums of rows [0, nr) (absolute r0 + r), columns [c0, c0+cn):
     acc = raw + x_shift*rs + zx(c)*(K*zw - rs) - zw*colsum(c)   (mod 2^32)
   which equals ref's  sum wx - zx*rs - zw*colsum + K*zw*zx  since raw = sum wx - x_shift*rs. */
static inline void oct_qt_fixup(const oct_qtiling *t, const oct_qweights *w, int r0, int nr, int c0, int cn,
                                int32_t x_zp, const int32_t *x_zp_cols, const int32_t *w_zp,
                                const uint32_t *colsum, int32_t *acc, int64_t ldacc) {
    const uint32_t K = (uint32_t)w->k;
    for (int r = 0; r < nr; r++) {
        const uint32_t rs = (uint32_t)w->row_sum[r0 + r], zw = (uint32_t)(w_zp ? w_zp[r0 + r] : 0);
        const uint32_t a = K * zw - rs, base = t->x_shift * rs;
        uint32_t *row = (uint32_t *)(acc + r * ldacc + c0);
        if (!x_zp_cols) {
            const uint32_t add = base + (uint32_t)x_zp * a;
            if (colsum && zw)
                for (int c = 0; c < cn; c++) row[c] += add - zw * colsum[c];
            else
                for (int c = 0; c < cn; c++) row[c] += add;
        } else {
            const uint32_t *zx = (const uint32_t *)(x_zp_cols + c0);
            if (colsum && zw)
                for (int c = 0; c < cn; c++) row[c] += base + zx[c] * a - zw * colsum[c];
            else
                for (int c = 0; c < cn; c++) row[c] += base + zx[c] * a;
        }
    }
}

/* The qgemm contract of ref/quant_kernels.h over a tiling. Loops: column passes of OCT_QT_NC,
   k chunks that fit the activation buffer, then every row block over the packed chunk. */
static inline void oct_qt_gemm(const oct_qtiling *t, const oct_qweights *w, int r0, int nr, int nc,
                               const uint8_t *x, int64_t ldx, int32_t x_zp, const int32_t *x_zp_cols,
                               const int32_t *w_zp, int32_t *acc, int64_t ldacc) {
    if (nr <= 0 || nc <= 0) return;
    const int K = w->k, mr = t->mr;
    int any_wzp = 0;
    for (int r = 0; w_zp && r < nr; r++) any_wzp |= w_zp[r0 + r] != 0;
    const int64_t groups = oct_qt_groups(t, K);
    const int64_t chunk_max = OCT_QT_XBUF / (OCT_QT_NC * t->kg * t->x_size);
    const int64_t chunks = groups ? (groups + chunk_max - 1) / chunk_max : 1;
    const int64_t chunk_groups = (groups + chunks - 1) / chunks;
    _Alignas(64) unsigned char xbuf[OCT_QT_XBUF];
    _Alignas(64) int32_t tile[OCT_QT_MR_MAX * OCT_QT_NR_MAX];
    uint32_t colsum[OCT_QT_NC];
    memset(tile, 0, sizeof tile);
    for (int c0 = 0; c0 < nc; c0 += OCT_QT_NC) {
        const int cn = nc - c0 < OCT_QT_NC ? nc - c0 : OCT_QT_NC;
        if (any_wzp) {
            memset(colsum, 0, sizeof colsum);
            for (int j = 0; j < K; j++) {
                const uint8_t *xk = x + j * ldx + c0;
                for (int c = 0; c < cn; c++) colsum[c] += xk[c];
            }
        }
        for (int64_t ch = 0; ch < chunks; ch++) {
            const int64_t g0 = ch * chunk_groups;
            const int gn = (int)(groups - g0 < chunk_groups ? groups - g0 : chunk_groups);
            const int64_t k0 = g0 * t->kg;
            const int kc = (int)(K - k0 < (int64_t)gn * t->kg ? K - k0 : (int64_t)gn * t->kg);
            t->pack_x(x + k0 * ldx + c0, ldx, kc, cn, gn, xbuf);
            const int64_t panel_bytes = (int64_t)gn * t->nr * t->kg * t->x_size;
            for (int64_t rb = r0 / mr; rb <= (r0 + nr - 1) / mr; rb++) {
                const char *wp = (const char *)w->data + rb * w->ld + g0 * mr * t->kg * t->w_size;
                const int lo = (int)((rb * mr > r0 ? rb * mr : r0) - rb * mr);
                const int hi = (int)((rb * mr + mr < r0 + nr ? rb * mr + mr : r0 + nr) - rb * mr);
                for (int cs = 0; cs < cn; cs += t->nr) {
                    const int cols = cn - cs < t->nr ? cn - cs : t->nr;
                    const int nv = (cols + t->lanes - 1) / t->lanes;
                    const void *xp = xbuf + (cs / t->nr) * panel_bytes;
                    int32_t *dst = acc + (rb * mr + lo - r0) * ldacc + c0 + cs;
                    if (lo == 0 && hi == mr && cols == nv * t->lanes) {
                        t->ukernel(gn, wp, xp, nv, dst, ldacc, ch > 0);
                        continue;
                    }
                    if (ch > 0)
                        for (int i = lo; i < hi; i++)
                            memcpy(tile + i * OCT_QT_NR_MAX, dst + (i - lo) * ldacc, sizeof(int32_t) * (size_t)cols);
                    t->ukernel(gn, wp, xp, nv, tile, OCT_QT_NR_MAX, ch > 0);
                    for (int i = lo; i < hi; i++)
                        memcpy(dst + (i - lo) * ldacc, tile + i * OCT_QT_NR_MAX, sizeof(int32_t) * (size_t)cols);
                }
            }
        }
        oct_qt_fixup(t, w, r0, nr, c0, cn, x_zp, x_zp_cols, w_zp, any_wzp ? colsum : NULL, acc, ldacc);
    }
}

/* ---- the fused path: panels packed once, results written from the micro-tile ------------------ */

/* The panel layout a tiling's micro-kernel reads (the same one pack_x writes). */
static inline oct_qpanel oct_qt_panel_layout(const oct_qtiling *t) {
    return (oct_qpanel){t->nr, t->kg, t->x_size, (uint8_t)(t->x_shift ? 0x80 : 0)};
}

/* Rows [lo, hi) of weight block rb: the fix-up terms of oct_qt_fixup and the requantization
   parameters, so the write-back only broadcasts them. */
static inline void oct_qt_block_rows(const oct_qtiling *t, const oct_qweights *w, int64_t rb, int lo, int hi,
                                     const oct_qgemm_out *o, oct_qt_rows *rows) {
    memset(rows, 0, sizeof *rows);
    const uint32_t K = (uint32_t)w->k;
    for (int i = lo; i < hi; i++) {
        const int64_t r = rb * t->mr + i;
        const uint32_t rs = (uint32_t)w->row_sum[r], zw = (uint32_t)(o->w_zp ? o->w_zp[r] : 0);
        rows->a[i] = K * zw - rs;
        rows->add[i] = t->x_shift * rs + (o->x_zp_cols ? 0u : (uint32_t)o->x_zp * rows->a[i]);
        rows->zw[i] = zw;
        if (o->rq) {
            rows->m[i] = o->rq->scale[o->rq->scale_per_row ? r : 0];
            rows->bias[i] = o->rq->bias ? o->rq->bias[r] : 0;
        }
    }
}

/* The scalar end of a write-back: rows [lo, hi), columns [0, cols) of stage (rows
   OCT_QT_NR_MAX elements apart, esize bytes each) to y through its strides; requantized bytes go
   through rq->table when there is one (the write-backs without an in-register lookup send every
   tile with a table here). */
static inline void oct_qt_tile_store(const oct_qt_tile *t, const void *stage, int esize) {
    const uint8_t *table = esize == 1 && t->rq ? t->rq->table : NULL;
    for (int i = t->lo; i < t->hi; i++) {
        const char *src = (const char *)stage + (int64_t)i * OCT_QT_NR_MAX * esize;
        char *dst = (char *)t->y + (i - t->lo) * t->y_rs * esize;
        if (table) {
            const uint8_t *b = (const uint8_t *)src;
            for (int c = 0; c < t->cols; c++) dst[c * t->y_cs] = (char)table[b[c]];
            continue;
        }
        if (t->y_cs == 1) {
            memcpy(dst, src, (size_t)t->cols * (size_t)esize);
            continue;
        }
        for (int c = 0; c < t->cols; c++) memcpy(dst + c * t->y_cs * esize, src + c * esize, (size_t)esize);
    }
}

/* The write-back half of a micro-tile of oct_qt_gemm_panel: weight block rb, panel columns
   [c0, c0 + nr), whose raw sums acc (rows OCT_QT_NR_MAX apart) some kernel has computed; applies the
   zero points and the requantization of o and stores the rows of [r0, r0 + nr) the block holds. */
static inline void oct_qt_panel_tile_store(const oct_qtiling *t, const oct_qweights *w, int r0, int nr, int nc,
                                           const oct_qgemm_out *o, int any_wzp, int64_t rb, int c0,
                                           const int32_t *acc, oct_qt_tile *tile) {
    const int mr = t->mr, esize = o->rq ? 1 : 4;
    _Alignas(64) int32_t zx[OCT_QT_NR_MAX], cs[OCT_QT_NR_MAX];
    oct_qt_rows rows;
    tile->rows = &rows;
    tile->lo = (int)((rb * mr > r0 ? rb * mr : r0) - rb * mr);
    tile->hi = (int)((rb * mr + mr < r0 + nr ? rb * mr + mr : r0 + nr) - rb * mr);
    oct_qt_block_rows(t, w, rb, tile->lo, tile->hi, o, &rows);
    const int cols = nc - c0 < t->nr ? nc - c0 : t->nr;
    const int nv = (cols + t->lanes - 1) / t->lanes;
    tile->cols = cols;
    tile->zx = tile->cs = NULL;
    if (o->x_zp_cols) {
        memset(zx, 0, sizeof zx);
        memcpy(zx, o->x_zp_cols + c0, sizeof(int32_t) * (size_t)cols);
        tile->zx = zx;
    }
    if (any_wzp) {
        memset(cs, 0, sizeof cs);
        memcpy(cs, o->colsum + c0, sizeof(int32_t) * (size_t)cols);
        tile->cs = cs;
    }
    tile->y = (char *)o->y + ((rb * mr + tile->lo - r0) * o->y_rs + c0 * o->y_cs) * esize;
    t->writeback(acc, nv, tile);
}

/* One micro-tile of oct_qt_gemm_panel: weight block rb over the panel of columns [c0, c0 + nr). */
static inline void oct_qt_panel_tile(const oct_qtiling *t, const oct_qweights *w, int r0, int nr, int nc,
                                     const void *panel, int64_t pstride, int groups, const oct_qgemm_out *o,
                                     int any_wzp, int64_t rb, int c0, oct_qt_tile *tile) {
    _Alignas(64) int32_t acc[OCT_QT_MR_MAX * OCT_QT_NR_MAX];
    const int cols = nc - c0 < t->nr ? nc - c0 : t->nr;
    const int nv = (cols + t->lanes - 1) / t->lanes;
    t->ukernel(groups, (const char *)w->data + rb * w->ld, (const char *)panel + (c0 / t->nr) * pstride, nv, acc,
               OCT_QT_NR_MAX, 0);
    oct_qt_panel_tile_store(t, w, r0, nr, nc, o, any_wzp, rb, c0, acc, tile);
}

/* A panel this small stays in L1 while every weight block (from L2) runs over it. */
enum { OCT_QT_L1_PANEL = 24 << 10 };

/* The qgemm_panel contract of ref/quant_kernels.h over a tiling; the micro-kernel's raw sums go
   straight to the write-back, so no int32 block leaves the cache. Loop order by what fits L1:
   a small panel (K x nr) stays there while the weight blocks stream over it; otherwise each
   weight block (mr x K) stays there while the panels (from L2) stream under it. */
static inline void oct_qt_gemm_panel(const oct_qtiling *t, const oct_qweights *w, int r0, int nr, int nc,
                                     const void *panel, const oct_qgemm_out *o) {
    if (nr <= 0 || nc <= 0) return;
    const oct_qpanel layout = oct_qt_panel_layout(t);
    const int groups = (int)oct_qpanel_groups(&layout, w->k);
    const int64_t pstride = oct_qpanel_stride(&layout, w->k);
    int any_wzp = 0;
    for (int r = 0; o->w_zp && r < nr; r++) any_wzp |= o->w_zp[r0 + r] != 0;
    oct_qt_tile tile = {NULL, NULL, NULL, 0, 0, 0, o->rq, 0.f, 0.f, NULL, o->y_rs, o->y_cs};
    if (o->rq) oct_qt_requant_bounds(o->rq, &tile.flo, &tile.fhi);
    const int64_t rb0 = r0 / t->mr, rb1 = (r0 + nr - 1) / t->mr;
    if (pstride <= OCT_QT_L1_PANEL) {
        for (int c0 = 0; c0 < nc; c0 += t->nr)
            for (int64_t rb = rb0; rb <= rb1; rb++)
                oct_qt_panel_tile(t, w, r0, nr, nc, panel, pstride, groups, o, any_wzp, rb, c0, &tile);
    } else {
        for (int64_t rb = rb0; rb <= rb1; rb++)
            for (int c0 = 0; c0 < nc; c0 += t->nr)
                oct_qt_panel_tile(t, w, r0, nr, nc, panel, pstride, groups, o, any_wzp, rb, c0, &tile);
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* The x86 packer for groups of 4 uint8 k (both VPDPBUSD sets): four rows of 16 columns become 16
   columns of 4 consecutive k by two rounds of byte/word interleaves; tails go element-wise. */
static inline void oct_qt_pack_x4_sse2(const oct_qtiling *t, const uint8_t *x, int64_t ldx, int kc, int cn,
                                       int groups, void *dst) {
    const int full_g = kc / 4, full_c = cn / 16 * 16;
    for (int g = 0; g < full_g; g++) {
        const uint8_t *r = x + (int64_t)g * 4 * ldx;
        for (int c = 0; c < full_c; c += 16) {
            const __m128i x0 = _mm_loadu_si128((const __m128i *)(r + c));
            const __m128i x1 = _mm_loadu_si128((const __m128i *)(r + ldx + c));
            const __m128i x2 = _mm_loadu_si128((const __m128i *)(r + 2 * ldx + c));
            const __m128i x3 = _mm_loadu_si128((const __m128i *)(r + 3 * ldx + c));
            const __m128i a = _mm_unpacklo_epi8(x0, x1), b = _mm_unpackhi_epi8(x0, x1);
            const __m128i d = _mm_unpacklo_epi8(x2, x3), e = _mm_unpackhi_epi8(x2, x3);
            /* 4 columns per store: a panel boundary (nr is a multiple of 4) never splits them. */
            _mm_storeu_si128((__m128i *)oct_qt_x_at(t, dst, groups, g, c), _mm_unpacklo_epi16(a, d));
            _mm_storeu_si128((__m128i *)oct_qt_x_at(t, dst, groups, g, c + 4), _mm_unpackhi_epi16(a, d));
            _mm_storeu_si128((__m128i *)oct_qt_x_at(t, dst, groups, g, c + 8), _mm_unpacklo_epi16(b, e));
            _mm_storeu_si128((__m128i *)oct_qt_x_at(t, dst, groups, g, c + 12), _mm_unpackhi_epi16(b, e));
        }
    }
    const int c_end = (cn + t->lanes - 1) / t->lanes * t->lanes;
    oct_qt_pack_x_edge(t, x, ldx, kc, cn, groups, dst, 0, full_g, full_c, c_end);
    oct_qt_pack_x_edge(t, x, ldx, kc, cn, groups, dst, full_g, groups, 0, c_end);
}
#endif

#endif
