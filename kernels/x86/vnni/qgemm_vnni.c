/* AVX-512 VNNI int8 GEMM: 8 rows x 48 columns per micro-tile, 24 zmm accumulators. VPDPBUSD adds
   four u8 x s8 products into each int32 lane without saturation (the non-S form), so the sums are
   exact modulo 2^32 like ref. The packed activations hold 16 columns x 4 k per zmm; each row's 4 k
   weights are broadcast to all lanes.

   The fused path (qgemm_panel) requantizes whole row blocks straight from the accumulators when
   the output is 8-bit with contiguous rows and no per-column term (weight zero points 0, one
   activation zero point): QLinearConv's case. The per-row constants are folded once per call
   (zero-point term + bias, one wrapping int32 add) instead of once per micro-tile, and the int32
   sums never leave the registers; at small K (1x1 convolutions of few channels) that write-back is
   most of the work. Blocks cut by the requested rows and every other case take the generic tile
   (quant_isa.h, qwriteback_avx512.h); both run the float operations of oct_avx512_requant in the
   same order, so the bytes are the same. A fused activation table (oct_requant.table) is applied
   there in registers, one VBMI lookup per row of the micro-tile, on CPUs with VBMI; without it the
   generic tile maps the staged bytes. */
#include <immintrin.h>

#include "quant_isa.h"
#include "qlut_vbmi.h"
#include "qwriteback_avx512.h"

enum { MR = 8, NR = 48, LANES = 16 };

/* acc[MR][nv] += the k loop over `groups` 4-byte groups of packed weights w and panel x. */
static inline __attribute__((always_inline)) void dot_groups(int groups, const int8_t *w, const uint8_t *x,
                                                           const int nv, __m512i acc[MR][3]) {
    for (int g = 0; g < groups; g++) {
        __m512i xv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) xv[j] = _mm512_loadu_si512(x + j * 64);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            int32_t wi;
            memcpy(&wi, w + 4 * i, 4);
            const __m512i b = _mm512_set1_epi32(wi);
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv[j], b);
        }
        x += NR * 4;
        w += MR * 4;
    }
}

static inline __attribute__((always_inline)) void tile_8xnv(int groups, const int8_t *w, const uint8_t *x,
                                                          const int nv, int32_t *c, int64_t ldc, int accumulate) {
    __m512i acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++)
            acc[i][j] = accumulate ? _mm512_loadu_si512(c + i * ldc + j * LANES) : _mm512_setzero_si512();
    dot_groups(groups, w, x, nv, acc);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) _mm512_storeu_si512(c + i * ldc + j * LANES, acc[i][j]);
}

/* Requantization constants of one full row block: rows' (zero-point term + bias) and multipliers. */
typedef struct {
    int32_t add[MR];
    float m[MR];
} block_rq;

/* The raw sums of the micro-tile of tile_8xnv, through an L1 stage: requantizing from acc[][]
   directly makes GCC keep the accumulators in memory inside the k loop. */
static inline __attribute__((always_inline)) void tile_8xnv_stage(int groups, const int8_t *w, const uint8_t *x,
                                                                const int nv, int32_t stage[MR][NR]) {
    __m512i acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) acc[i][j] = _mm512_setzero_si512();
    dot_groups(groups, w, x, nv, acc);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) _mm512_store_si512(stage[i] + j * LANES, acc[i][j]);
}

/* 16 sums of a row, plus the row's constant c, requantized to bytes. */
static inline __attribute__((always_inline)) __m128i requant16(const int32_t *sums, __m512i c, __m512 m, __m512 vlo,
                                                             __m512 vhi, __m512i vzp) {
    const __m512i v = _mm512_add_epi32(_mm512_load_si512(sums), c);
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), m);
    f = _mm512_min_ps(_mm512_max_ps(f, vlo), vhi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), vzp));
}

/* The micro-tile of tile_8xnv, then each row requantized and stored as bytes at y (rows y_rs
   apart); only the first `cols` columns of the last vector are stored. */
static inline __attribute__((always_inline)) void tile_8xnv_rq(int groups, const int8_t *w, const uint8_t *x,
                                                             const int nv, const block_rq *rq, __m512 vlo,
                                                             __m512 vhi, __m512i vzp, uint8_t *y, int64_t y_rs,
                                                             int cols) {
    _Alignas(64) int32_t stage[MR][NR];
    tile_8xnv_stage(groups, w, x, nv, stage);
    const int last = cols - (nv - 1) * LANES;
    const __mmask16 tail = (__mmask16)(last >= LANES ? 0xFFFF : (1u << last) - 1);
    for (int i = 0; i < MR; i++) {
        const __m512i c = _mm512_set1_epi32(rq->add[i]);
        const __m512 m = _mm512_set1_ps(rq->m[i]);
        for (int j = 0; j < nv; j++)
            _mm_mask_storeu_epi8(y + i * y_rs + j * LANES, j == nv - 1 ? tail : (__mmask16)0xFFFF,
                                 requant16(stage[i] + j * LANES, c, m, vlo, vhi, vzp));
    }
}

/* tile_8xnv_rq with an activation table: each row's nv * 16 bytes gathered in one register,
   mapped there (qlut_vbmi.h) and stored under one mask. */
static inline __attribute__((always_inline)) OCT_VBMI_TARGET void
tile_8xnv_rq_table(int groups, const int8_t *w, const uint8_t *x, const int nv, const block_rq *rq, __m512 vlo,
                   __m512 vhi, __m512i vzp, const oct_vbmi_table *tab, uint8_t *y, int64_t y_rs, int cols) {
    _Alignas(64) int32_t stage[MR][NR];
    tile_8xnv_stage(groups, w, x, nv, stage);
    const __mmask64 store = cols >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << cols) - 1;
    for (int i = 0; i < MR; i++) {
        const __m512i c = _mm512_set1_epi32(rq->add[i]);
        const __m512 m = _mm512_set1_ps(rq->m[i]);
        __m512i row = _mm512_castsi128_si512(requant16(stage[i], c, m, vlo, vhi, vzp));
        if (nv > 1) row = _mm512_inserti32x4(row, requant16(stage[i] + LANES, c, m, vlo, vhi, vzp), 1);
        if (nv > 2) row = _mm512_inserti32x4(row, requant16(stage[i] + 2 * LANES, c, m, vlo, vhi, vzp), 2);
        _mm512_mask_storeu_epi8(y + i * y_rs, store, oct_vbmi_lookup(tab, row));
    }
}

/* The micro-kernel of a requantizing row block: cols (1..NR) columns, table NULL or mapped
   (then only on a CPU with VBMI). */
typedef void (*ukernel_rq_fn)(int groups, const void *w, const void *x, int cols, const block_rq *rq, __m512 vlo,
                              __m512 vhi, __m512i vzp, const uint8_t *table, uint8_t *y, int64_t y_rs);

static void ukernel_rq(int groups, const void *w, const void *x, int cols, const block_rq *rq, __m512 vlo,
                       __m512 vhi, __m512i vzp, const uint8_t *table, uint8_t *y, int64_t y_rs) {
    (void)table;
    if (cols > 2 * LANES) tile_8xnv_rq(groups, w, x, 3, rq, vlo, vhi, vzp, y, y_rs, cols);
    else if (cols > LANES) tile_8xnv_rq(groups, w, x, 2, rq, vlo, vhi, vzp, y, y_rs, cols);
    else tile_8xnv_rq(groups, w, x, 1, rq, vlo, vhi, vzp, y, y_rs, cols);
}

static OCT_VBMI_TARGET void ukernel_rq_table(int groups, const void *w, const void *x, int cols, const block_rq *rq,
                                             __m512 vlo, __m512 vhi, __m512i vzp, const uint8_t *table, uint8_t *y,
                                             int64_t y_rs) {
    const oct_vbmi_table tab = oct_vbmi_table_load(table); /* 4 loads from L1 per 8 x 48 tile */
    if (cols > 2 * LANES) tile_8xnv_rq_table(groups, w, x, 3, rq, vlo, vhi, vzp, &tab, y, y_rs, cols);
    else if (cols > LANES) tile_8xnv_rq_table(groups, w, x, 2, rq, vlo, vhi, vzp, &tab, y, y_rs, cols);
    else tile_8xnv_rq_table(groups, w, x, 1, rq, vlo, vhi, vzp, &tab, y, y_rs, cols);
}

static void ukernel(int groups, const void *w, const void *x, int nv, int32_t *c, int64_t ldc, int accumulate) {
    switch (nv) {
    case 3: tile_8xnv(groups, w, x, 3, c, ldc, accumulate); break;
    case 2: tile_8xnv(groups, w, x, 2, c, ldc, accumulate); break;
    default: tile_8xnv(groups, w, x, 1, c, ldc, accumulate); break;
    }
}

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst);

static void writeback(const int32_t *acc, int nv, const oct_qt_tile *t) { oct_avx512_writeback(acc, nv, MR, t); }

static const oct_qtiling tiling = {MR, NR, 4, LANES, 1, 1, 0, pack_x, ukernel, writeback};
static const oct_qpanel panel = {NR, 4, 1, 0};

static void pack_x(const uint8_t *x, int64_t ldx, int kc, int cn, int groups, void *dst) {
    oct_qt_pack_x4_sse2(&tiling, x, ldx, kc, cn, groups, dst);
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

/* Row blocks whose constants are folded at a time (on the stack). */
enum { RQ_BLOCKS = 16 };

/* The requantizing path of qgemm_panel (see the top): full row blocks in chunks of RQ_BLOCKS, the
   same loop orders as oct_qt_gemm_panel; the cut blocks at either end through the generic tile. */
static void gemm_panel_rq(const oct_qweights *w, int r0, int nr, int nc, const void *xp, const oct_qgemm_out *o) {
    const oct_requant *q = o->rq;
    const int groups = (int)oct_qt_groups(&tiling, w->k);
    const int64_t pstride = (int64_t)groups * NR * 4;
    const int64_t fb0 = (r0 + MR - 1) / MR, fb1 = (r0 + nr) / MR; /* full blocks [fb0, fb1) */
    if (fb0 >= fb1) {
        oct_qt_gemm_panel(&tiling, w, r0, nr, nc, xp, o);
        return;
    }
    /* the rows before the first full block and after the last one */
    const oct_qgemm_out head = *o;
    oct_qt_gemm_panel(&tiling, w, r0, (int)(fb0 * MR - r0), nc, xp, &head);
    oct_qgemm_out tail_o = *o;
    tail_o.y = (uint8_t *)o->y + (fb1 * MR - r0) * o->y_rs;
    oct_qt_gemm_panel(&tiling, w, (int)(fb1 * MR), (int)(r0 + nr - fb1 * MR), nc, xp, &tail_o);
    const ukernel_rq_fn kernel = q->table ? ukernel_rq_table : ukernel_rq;
    float flo, fhi;
    oct_qt_requant_bounds(q, &flo, &fhi);
    const __m512 vlo = _mm512_set1_ps(flo), vhi = _mm512_set1_ps(fhi);
    const __m512i vzp = _mm512_set1_epi32(q->zp);
    const uint32_t x_zp = (uint32_t)o->x_zp;
    for (int64_t cb = fb0; cb < fb1; cb += RQ_BLOCKS) {
        const int64_t nb = fb1 - cb < RQ_BLOCKS ? fb1 - cb : RQ_BLOCKS;
        block_rq rq[RQ_BLOCKS];
        for (int64_t b = 0; b < nb; b++)
            for (int i = 0; i < MR; i++) {
                const int64_t r = (cb + b) * MR + i;
                /* raw - x_zp * row_sum + bias (zero weight zero point), wrapping as oct_qt_fixup does */
                const uint32_t rs = (uint32_t)w->row_sum[r];
                rq[b].add[i] = (int32_t)(x_zp * (0u - rs) + (uint32_t)(q->bias ? q->bias[r] : 0));
                rq[b].m[i] = q->scale[q->scale_per_row ? r : 0];
            }
        uint8_t *yb = (uint8_t *)o->y + (cb * MR - r0) * o->y_rs;
        const char *wb = (const char *)w->data + cb * w->ld;
        if (pstride <= OCT_QT_L1_PANEL) {
            for (int c0 = 0; c0 < nc; c0 += NR)
                for (int64_t b = 0; b < nb; b++)
                    kernel(groups, wb + b * w->ld, (const char *)xp + (c0 / NR) * pstride, nc - c0 < NR ? nc - c0 : NR,
                           &rq[b], vlo, vhi, vzp, q->table, yb + b * MR * o->y_rs + c0, o->y_rs);
        } else {
            for (int64_t b = 0; b < nb; b++)
                for (int c0 = 0; c0 < nc; c0 += NR)
                    kernel(groups, wb + b * w->ld, (const char *)xp + (c0 / NR) * pstride, nc - c0 < NR ? nc - c0 : NR,
                           &rq[b], vlo, vhi, vzp, q->table, yb + b * MR * o->y_rs + c0, o->y_rs);
        }
    }
}

/* ---- one activation column (batch-1 QGemm / MatMul): a weight stream, not a GEMM ------------- */

/* With one panel column the micro-tile wastes 15 of 16 lanes and broadcasts each 4-byte weight
   group separately (9 loads per 32 weight bytes), so it streams a 1 MB weight at well under the
   memory's rate. Here each 64-byte load holds two whole groups of a row block (8 rows x 4 k, twice)
   and meets a vector of the column's matching two 4-byte x groups (lanes 0-7 the first, 8-15 the
   second): one full load and one VPDPBUSD per 64 weight bytes. GEMV_BLOCKS row blocks run side by
   side, so several independent streams are in flight. Lanes i and 8 + i then sum to row i's raw
   sum, which goes through the same write-back as the micro-tile's. The software prefetch 1 KB
   ahead in each stream measured 0-3% on a chain of 1.6 MB weights read from L3 (noisy machine). */
enum { GEMV_BLOCKS = 4, GEMV_PREFETCH = 1024 };

/* x groups g and g + 1 of panel column 0 (groups NR * 4 bytes apart); only g when g + 1 is past
   the end (the upper lanes zero, as the weights there are not loaded). */
static inline __m512i gemv_x_pair(const uint8_t *xp, int g, int pair) {
    int32_t x0, x1 = 0;
    memcpy(&x0, xp + (size_t)g * NR * 4, 4);
    if (pair) memcpy(&x1, xp + (size_t)(g + 1) * NR * 4, 4);
    return _mm512_mask_set1_epi32(_mm512_set1_epi32(x0), (__mmask16)0xFF00, x1);
}

/* Raw sums of nb (1..GEMV_BLOCKS, a constant in each instantiation) row blocks starting at w (ld
   bytes apart) into sums[b * MR + i]. */
static inline __attribute__((always_inline)) void gemv_blocks(const int nb, int groups, const int8_t *w, int64_t ld,
                                                            const uint8_t *xp, int32_t *sums) {
    __m512i acc[GEMV_BLOCKS];
#pragma GCC unroll 4
    for (int b = 0; b < nb; b++) acc[b] = _mm512_setzero_si512();
    int g = 0;
    for (; g + 2 <= groups; g += 2) {
        const __m512i xv = gemv_x_pair(xp, g, 1);
#pragma GCC unroll 4
        for (int b = 0; b < nb; b++) {
            const int8_t *wb = w + b * ld + (int64_t)g * MR * 4;
            _mm_prefetch((const char *)wb + GEMV_PREFETCH, _MM_HINT_T0);
            acc[b] = _mm512_dpbusd_epi32(acc[b], xv, _mm512_loadu_si512(wb));
        }
    }
    if (g < groups) {
        const __m512i xv = gemv_x_pair(xp, g, 0);
#pragma GCC unroll 4
        for (int b = 0; b < nb; b++)
            acc[b] = _mm512_dpbusd_epi32(acc[b], xv, _mm512_maskz_loadu_epi32((__mmask16)0x00FF, w + b * ld + (int64_t)g * MR * 4));
    }
#pragma GCC unroll 4
    for (int b = 0; b < nb; b++) {
        const __m256i lo = _mm512_castsi512_si256(acc[b]), hi = _mm512_extracti64x4_epi64(acc[b], 1);
        _mm256_storeu_si256((__m256i *)(sums + b * MR), _mm256_add_epi32(lo, hi));
    }
}

/* qgemm_panel for nc == 1: raw sums of every row block of [r0, r0 + nr), GEMV_BLOCKS at a time,
   then each block's write-back from a tile whose column 0 holds them. */
static void gemv_panel(const oct_qweights *w, int r0, int nr, const void *xp, const oct_qgemm_out *o) {
    const int groups = (int)oct_qt_groups(&tiling, w->k);
    int any_wzp = 0;
    for (int r = 0; o->w_zp && r < nr; r++) any_wzp |= o->w_zp[r0 + r] != 0;
    oct_qt_tile tile = {NULL, NULL, NULL, 0, 0, 0, o->rq, 0.f, 0.f, NULL, o->y_rs, o->y_cs};
    if (o->rq) oct_qt_requant_bounds(o->rq, &tile.flo, &tile.fhi);
    _Alignas(64) int32_t acc[OCT_QT_MR_MAX * OCT_QT_NR_MAX];
    memset(acc, 0, sizeof acc);
    const int64_t rb0 = r0 / MR, rb1 = (r0 + nr - 1) / MR + 1;
    for (int64_t rb = rb0; rb < rb1; rb += GEMV_BLOCKS) {
        const int nb = rb1 - rb < GEMV_BLOCKS ? (int)(rb1 - rb) : GEMV_BLOCKS;
        int32_t sums[GEMV_BLOCKS * MR];
        const int8_t *wb = (const int8_t *)w->data + rb * w->ld;
        if (nb == GEMV_BLOCKS) gemv_blocks(GEMV_BLOCKS, groups, wb, w->ld, xp, sums);
        else
            for (int b = 0; b < nb; b++) gemv_blocks(1, groups, wb + b * w->ld, w->ld, xp, sums + b * MR);
        for (int b = 0; b < nb; b++) {
            for (int i = 0; i < MR; i++) acc[i * OCT_QT_NR_MAX] = sums[b * MR + i];
            oct_qt_panel_tile_store(&tiling, w, r0, nr, 1, o, any_wzp, rb + b, 0, acc, &tile);
        }
    }
}

static void qgemm_panel(const oct_qweights *w, int r0, int nr, int nc, const void *xp, const oct_qgemm_out *o) {
    if (nr <= 0 || nc <= 0) return;
    if (nc == 1) {
        gemv_panel(w, r0, nr, xp, o);
        return;
    }
    int any_wzp = 0;
    for (int r = 0; o->w_zp && r < nr; r++) any_wzp |= o->w_zp[r0 + r] != 0;
    /* a table maps in registers here only with VBMI; else the generic tile maps it */
    if (o->rq && o->y_cs == 1 && !o->x_zp_cols && !any_wzp && (!o->rq->table || oct_cpu_has_vbmi()))
        gemm_panel_rq(w, r0, nr, nc, xp, o);
    else oct_qt_gemm_panel(&tiling, w, r0, nr, nc, xp, o);
}

const oct_quant_kernel_set oct_vnni_quant_kernels = {
    "vnni", weights_bytes, weights_pack, qgemm, oct_avx512_requant, &panel, qgemm_panel,
};
