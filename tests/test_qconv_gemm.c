/* The fused int8 GEMM path of QLinearConv / ConvInteger / QLinearMatMul / QGemm, piece by piece:
   - the panel packers of every ISA level the CPU runs (qpanel_isa.h, ref included), each
     im2col against oct_ref_im2col_tile_u8 decoded through every kernel set's panel
     layout (and a few layouts no set uses, which take the generic path): 1-D, 2-D and 3-D
     geometries with strides, dilations, asymmetric padding, pointwise, int8 input and the
     dot-product sign flip, tiles that start mid-row and cross depth slices; padded k and columns
     must hold packed zero;
     (short rows, long rows and stride 2 exercise the vector movers' tails);
   - each packer's pack for both operand orientations, and the column sums;
   - every set's qgemm_panel against oct_ref_qgemm + oct_ref_requant, bit for bit: odd sizes, row
     sub-ranges, weight zero points per row, activation zero points per column, requantization
     with per-row or shared scales, bias, narrowed clamps, int8/uint8 output, int32 output,
     transposed stores, guard cells around the output, a random activation table (oct_requant.table,
     checked in ref against the plain bytes mapped afterwards) on whole and cut row blocks; the sets are called directly and through
     OCTET_ISA + oct_kernels_reset(). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/qpanel_isa.h"
#include "kernels/quant_isa.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng = 77u;
static uint32_t rnext(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static int rin(int lo, int hi) { return lo + (int)(rnext() % (uint32_t)(hi - lo + 1)); }

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---------------------------------------------------------------- layouts */

/* Every layout worth checking: the sets' own (all compiled ones: packing is portable C) and
   layouts no set uses. Returns the count. */
static int all_layouts(const oct_qpanel *out[16]) {
    /* the ARM sets' layouts on every host, and layouts no set uses */
    static const oct_qpanel extra[] = {{12, 1, 2, 0}, {12, 4, 1, 0x80}, {8, 2, 1, 0},
                                       {5, 4, 1, 0x80}, {12, 1, 1, 0x80}, {7, 3, 2, 0}};
    int n = 0;
    out[n++] = oct_ref_quant_kernels.panel;
#if defined(__x86_64__)
    out[n++] = oct_avx2_quant_kernels.panel;
    out[n++] = oct_avxvnni_quant_kernels.panel;
    out[n++] = oct_vnni_quant_kernels.panel;
#endif
#if defined(__aarch64__)
    out[n++] = oct_neon_quant_kernels.panel;
    out[n++] = oct_dotprod_quant_kernels.panel;
#endif
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) out[n++] = &extra[i];
    return n;
}

/* The packers of every ISA level the CPU runs, each once. Returns the count. */
static int all_packers(const oct_qpanel_kernels *out[OCT_ISA_COUNT]) {
    int n = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        const oct_qpanel_kernels *k = oct_qpanel_kernels_for((oct_isa)isa);
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= out[i] == k;
        if (!seen) out[n++] = k;
    }
    ck_assert_ptr_eq(out[0], &oct_ref_qpanel_kernels);
    return n;
}

/* The packed value (k, c) of a panel, as the kernels read it (int16 or the byte). */
static int32_t panel_at(const oct_qpanel *l, const void *panel, int64_t k, int64_t K, int64_t c) {
    const int64_t groups = oct_qpanel_groups(l, K);
    const int64_t at = (((c / l->nr) * groups + k / l->kg) * l->nr + c % l->nr) * l->kg + k % l->kg;
    if (l->x_size == 2) {
        int16_t v;
        memcpy(&v, (const char *)panel + at * 2, 2);
        return v;
    }
    return ((const uint8_t *)panel)[at];
}

/* Checks a panel against the row-major x[k][c] (uint8 domain), k < K, c < nc; everything the
   panels hold beyond them must be packed zero. */
static void check_panel(const char *what, const oct_qpanel *l, const void *panel, const uint8_t *x, int64_t K,
                        int64_t nc) {
    const int64_t groups = oct_qpanel_groups(l, K), cols = (nc + l->nr - 1) / l->nr * l->nr;
    for (int64_t c = 0; c < cols; c++)
        for (int64_t k = 0; k < groups * l->kg; k++) {
            const int32_t want = k < K && c < nc ? (int32_t)(uint8_t)(x[k * nc + c] ^ l->x_flip) : 0;
            const int32_t got = panel_at(l, panel, k, K, c);
            ck_assert_msg(got == want, "%s (layout nr %d kg %d size %d flip %d): k %lld c %lld = %d, want %d", what,
                          l->nr, l->kg, l->x_size, l->x_flip, (long long)k, (long long)c, got, want);
        }
}

/* ---------------------------------------------------------------- im2col into panels */

typedef struct {
    int64_t in[3], k[3], stride[3], dil[3], pad[3], pad_end[3];
} geom_spec;

static oct_conv_geom make_geom(const geom_spec *s) {
    oct_conv_geom g;
    for (int d = 0; d < 3; d++) {
        g.in[d] = s->in[d];
        g.k[d] = s->k[d];
        g.stride[d] = s->stride[d];
        g.dil[d] = s->dil[d];
        g.pad[d] = s->pad[d];
        g.out[d] = (s->in[d] + s->pad[d] + s->pad_end[d] - ((s->k[d] - 1) * s->dil[d] + 1)) / s->stride[d] + 1;
    }
    return g;
}

static void check_im2col(const oct_qpanel_kernels *pk, const oct_qpanel *l, const geom_spec *s, int64_t channels,
                         int64_t p0, int64_t np, uint8_t x_xor, uint8_t pad) {
    const oct_conv_geom g = make_geom(s);
    const int64_t in_vol = oct_geom_in_vol(&g), K = channels * oct_geom_k_vol(&g);
    uint8_t *x = xmalloc((size_t)(channels * in_vol));
    for (int64_t i = 0; i < channels * in_vol; i++) x[i] = (uint8_t)rin(0, 255);
    uint8_t *col = xmalloc((size_t)(K * np));
    oct_ref_im2col_tile_u8(&g, x, channels, p0, np, x_xor, pad, col);
    const size_t bytes = oct_qpanel_bytes(l, K, np), scratch_bytes = oct_ref_qpanel_im2col_scratch(&g, channels);
    ck_assert(bytes > 0 && scratch_bytes > 0);
    uint8_t *panel = xmalloc(bytes), *scratch = xmalloc(scratch_bytes);
    memset(panel, 0xcd, bytes); /* stale bytes: padding must be written, not assumed */
    pk->im2col(l, &g, x, channels, p0, np, x_xor, pad, scratch, panel);
    char what[180];
    snprintf(what, sizeof what, "%s im2col in %lldx%lldx%lld k %lldx%lldx%lld s %lld,%lld,%lld ch %lld p0 %lld np %lld",
             pk->name, (long long)s->in[0], (long long)s->in[1], (long long)s->in[2], (long long)s->k[0], (long long)s->k[1],
             (long long)s->k[2], (long long)s->stride[0], (long long)s->stride[1], (long long)s->stride[2],
             (long long)channels, (long long)p0, (long long)np);
    check_panel(what, l, panel, col, K, np);
    /* column sums: of the uint8-domain values, padding included */
    int32_t *sums = xmalloc(sizeof(int32_t) * (size_t)np);
    oct_ref_qpanel_colsums(l, panel, (int)K, (int)np, sums);
    for (int64_t c = 0; c < np; c++) {
        uint32_t want = 0;
        for (int64_t k = 0; k < K; k++) want += col[k * np + c];
        ck_assert_msg((uint32_t)sums[c] == want, "%s: colsum[%lld] = %d, want %u", what, (long long)c, sums[c], want);
    }
    free(x);
    free(col);
    free(panel);
    free(scratch);
    free(sums);
}

static geom_spec random_geom(void) {
    geom_spec s;
    const int dims = rin(1, 3);
    for (int d = 0; d < 3; d++) {
        const int used = d >= 3 - dims;
        s.k[d] = used ? rin(1, 4) : 1;
        s.stride[d] = used ? rin(1, 3) : 1;
        s.dil[d] = used && rnext() % 4 == 0 ? 2 : 1;
        s.pad[d] = used ? rin(0, 2) : 0;
        s.pad_end[d] = used ? rin(0, 2) : 0;
        const int64_t span = (s.k[d] - 1) * s.dil[d] + 1;
        s.in[d] = used ? span + rin(0, dims == 3 ? 6 : 25) : 1;
    }
    return s;
}

START_TEST(im2col_panel_layouts) {
    const oct_qpanel *layouts[16];
    const int nl = all_layouts(layouts);
    const oct_qpanel_kernels *packers[OCT_ISA_COUNT];
    const int npk = all_packers(packers);
    /* fixed: resnet-like 3x3 pad 1, a stride-2 7x7 stem, a pointwise, a 1x1 stride 2, long rows,
       long stride-2 rows, 7-pixel rows */
    static const geom_spec fixed[] = {
        {{1, 14, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {{1, 30, 30}, {1, 7, 7}, {1, 2, 2}, {1, 1, 1}, {0, 3, 3}, {0, 3, 3}},
        {{1, 9, 11}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {{1, 13, 13}, {1, 1, 1}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {{1, 3, 700}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {{5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
        {{1, 4, 301}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {{1, 7, 7}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {{1, 70, 70}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
    };
    for (int pi = 0; pi < npk; pi++)
    for (int li = 0; li < nl; li++) {
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            const oct_conv_geom g = make_geom(&fixed[i]);
            const int64_t P = oct_geom_out_vol(&g);
            check_im2col(packers[pi], layouts[li], &fixed[i], rin(1, 9), 0, P, 0, (uint8_t)rin(0, 255));
            const int64_t p0 = rin(0, (int)P - 1);
            check_im2col(packers[pi], layouts[li], &fixed[i], rin(1, 9), p0, rin(1, (int)(P - p0)), 0x80,
                         (uint8_t)rin(0, 255));
        }
        for (int i = 0; i < 25; i++) {
            const geom_spec s = random_geom();
            const oct_conv_geom g = make_geom(&s);
            const int64_t P = oct_geom_out_vol(&g);
            const int64_t p0 = rnext() % 2 ? 0 : rin(0, (int)P - 1);
            check_im2col(packers[pi], layouts[li], &s, rin(1, 7), p0, rin(1, (int)(P - p0)), rnext() % 2 ? 0x80 : 0,
                         (uint8_t)rin(0, 255));
        }
    }
}
END_TEST

START_TEST(pack_panel_orientations) {
    const oct_qpanel *layouts[16];
    const int nl = all_layouts(layouts);
    const oct_qpanel_kernels *packers[OCT_ISA_COUNT];
    const int npk = all_packers(packers);
    for (int pi = 0; pi < npk; pi++)
    for (int li = 0; li < nl; li++)
        for (int i = 0; i < 30; i++) {
            const int K = rnext() % 4 ? rin(1, 70) : rin(1, 5), nc = rin(1, 600);
            const uint8_t x_xor = rnext() % 2 ? 0x80 : 0;
            uint8_t *src = xmalloc((size_t)K * (size_t)nc), *rowmajor = xmalloc((size_t)K * (size_t)nc);
            for (int64_t j = 0; j < (int64_t)K * nc; j++) src[j] = (uint8_t)rin(0, 255);
            const int transposed = rnext() % 2; /* src is [nc][K] (a MatMul's a) or [K][nc] */
            for (int k = 0; k < K; k++)
                for (int c = 0; c < nc; c++)
                    rowmajor[k * nc + c] = (uint8_t)(src[transposed ? (int64_t)c * K + k : (int64_t)k * nc + c] ^ x_xor);
            const size_t bytes = oct_qpanel_bytes(layouts[li], K, nc);
            uint8_t *panel = xmalloc(bytes);
            memset(panel, 0xcd, bytes);
            if (transposed) packers[pi]->pack(layouts[li], src, 1, K, K, nc, x_xor, panel);
            else packers[pi]->pack(layouts[li], src, nc, 1, K, nc, x_xor, panel);
            check_panel(transposed ? "pack [nc][K]" : "pack [K][nc]", layouts[li], panel, rowmajor, K, nc);
            free(src);
            free(rowmajor);
            free(panel);
        }
    ck_assert_uint_eq(oct_qpanel_bytes(layouts[0], -1, 4), 0);
    ck_assert_uint_eq(oct_qpanel_bytes(layouts[0], (int64_t)1 << 40, 4), 0);
}
END_TEST

/* ---------------------------------------------------------------- the fused GEMM */

typedef struct {
    const char *what;
    const oct_quant_kernel_set *ks;
} set_case;

static int direct_sets(set_case out[8]) {
    int n = 0;
    out[n++] = (set_case){"ref", &oct_ref_quant_kernels};
#if defined(__x86_64__)
    if (oct_isa_supported(OCT_ISA_AVX2)) out[n++] = (set_case){"avx2", &oct_avx2_quant_kernels};
    if (oct_cpu_has_avxvnni()) out[n++] = (set_case){"avxvnni", &oct_avxvnni_quant_kernels};
    if (oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni"))
        out[n++] = (set_case){"vnni", &oct_vnni_quant_kernels};
#endif
#if defined(__aarch64__)
    out[n++] = (set_case){"neon", &oct_neon_quant_kernels};
    if (oct_isa_supported(OCT_ISA_DOTPROD)) out[n++] = (set_case){"dotprod", &oct_dotprod_quant_kernels};
#endif
    return n;
}

typedef struct {
    int rows, k, cols, r0, nr;
    int w_u8, zp_mode, zx_cols; /* zp_mode: 0 none, 1 per row, 2 per row all zero */
    int requant, out_s8, per_row, bias, narrow, trans;
    int table; /* a random activation table in the requantization */
} fused_case;

/* dst[r * y_rs + c * y_cs] = table[src[...]] for r < nr, c < nc: the table applied after the fact. */
static void map_bytes(const uint8_t *src, uint8_t *dst, const uint8_t table[256], int nr, int nc, int64_t y_rs,
                      int64_t y_cs) {
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) dst[r * y_rs + c * y_cs] = table[src[r * y_rs + c * y_cs]];
}

static void compare_fused(const char *what, const oct_quant_kernel_set *ks, const fused_case *c) {
    const int rows = c->rows, K = c->k, cols = c->cols;
    uint8_t *w = xmalloc((size_t)rows * (size_t)K), *x = xmalloc((size_t)K * (size_t)cols);
    int32_t *wzp = xmalloc(sizeof(int32_t) * (size_t)rows), *zxc = xmalloc(sizeof(int32_t) * (size_t)cols);
    for (int64_t i = 0; i < (int64_t)rows * K; i++) w[i] = (uint8_t)rin(0, 255);
    for (int64_t i = 0; i < (int64_t)K * cols; i++) x[i] = (uint8_t)(rnext() % 9 == 0 ? 255 * (int)(rnext() & 1) : rin(0, 255));
    for (int r = 0; r < rows; r++) wzp[r] = c->zp_mode == 2 ? 0 : rin(-128, 127);
    for (int j = 0; j < cols; j++) zxc[j] = rin(0, 255);
    const int32_t x_zp = rin(0, 255);
    /* the same weights packed by ref and by the set */
    const size_t rb = oct_ref_qweights_bytes(rows, K), sb = ks->qweights_bytes(rows, K);
    void *rbuf = xmalloc(rb), *sbuf = xmalloc(sb);
    oct_qweights rw, sw;
    oct_ref_qweights_pack(rows, K, w, c->w_u8, K, 1, rbuf, &rw);
    ks->qweights_pack(rows, K, w, c->w_u8, K, 1, sbuf, &sw);
    /* requantization */
    float *scale = xmalloc(sizeof(float) * (size_t)rows);
    int32_t *bias = xmalloc(sizeof(int32_t) * (size_t)rows);
    oct_requant q;
    test_random_requant(rin, rows, 1e-8f, c->per_row, c->bias, c->out_s8, c->narrow, scale, bias, &q);
    /* ref: the int32 block, then requantization, stored through the same strides */
    const int32_t *zp = c->zp_mode ? wzp : NULL, *zc = c->zx_cols ? zxc : NULL;
    int32_t *acc = xmalloc(sizeof(int32_t) * (size_t)c->nr * (size_t)cols);
    oct_ref_qgemm(&rw, c->r0, c->nr, cols, x, cols, x_zp, zc, zp, acc, cols);
    const int64_t y_rs = c->trans ? 1 : cols + 3, y_cs = c->trans ? c->nr + 2 : 1;
    const size_t esize = c->requant ? 1 : 4;
    const size_t ny = (size_t)(c->trans ? cols * y_cs : c->nr * y_rs) + 16;
    char *ry = xmalloc(ny * esize), *sy = xmalloc(ny * esize);
    memset(ry, 0xa5, ny * esize);
    memset(sy, 0xa5, ny * esize);
    uint8_t table[256];
    for (int i = 0; i < 256; i++) table[i] = (uint8_t)rnext();
    if (c->requant && c->table) {
        /* ref's table against the plain requantization mapped afterwards; then the set gets it */
        char *plain = xmalloc(ny);
        memcpy(plain, ry, ny);
        oct_ref_requant(acc, cols, c->r0, c->nr, cols, &q, plain, y_rs, y_cs);
        memcpy(ry, plain, ny);
        map_bytes((const uint8_t *)plain, (uint8_t *)ry, table, c->nr, cols, y_rs, y_cs);
        q.table = table;
        oct_ref_requant(acc, cols, c->r0, c->nr, cols, &q, plain, y_rs, y_cs);
        ck_assert_msg(memcmp(plain, ry, ny) == 0, "%s: oct_ref_requant with a table differs from the mapped bytes",
                      what);
        free(plain);
    } else if (c->requant) {
        oct_ref_requant(acc, cols, c->r0, c->nr, cols, &q, ry, y_rs, y_cs);
    } else {
        for (int r = 0; r < c->nr; r++)
            for (int j = 0; j < cols; j++) memcpy(ry + (r * y_rs + j * y_cs) * 4, &acc[r * cols + j], 4);
    }
    /* the set: panels of its layout, colsums when a weight zero point is used */
    const size_t pb = oct_qpanel_bytes(ks->panel, K, cols);
    void *panel = xmalloc(pb);
    oct_ref_qpanel_pack(ks->panel, x, cols, 1, K, cols, 0, panel);
    int32_t *colsum = xmalloc(sizeof(int32_t) * (size_t)cols);
    oct_ref_qpanel_colsums(ks->panel, panel, K, cols, colsum);
    const oct_qgemm_out o = {x_zp, zc, zp, colsum, c->requant ? &q : NULL, sy, y_rs, y_cs};
    ks->qgemm_panel(&sw, c->r0, c->nr, cols, panel, &o);
    for (size_t i = 0; i < ny * esize; i++)
        ck_assert_msg(sy[i] == ry[i],
                      "%s qgemm_panel rows %d k %d cols %d (r0 %d nr %d, u8 %d, zp %d, zx_cols %d, requant %d, "
                      "s8 %d, per_row %d, bias %d, narrow %d, trans %d, table %d): byte %zu = %d, ref %d",
                      what, rows, K, cols, c->r0, c->nr, c->w_u8, c->zp_mode, c->zx_cols, c->requant, c->out_s8,
                      c->per_row, c->bias, c->narrow, c->trans, c->table, i, (uint8_t)sy[i], (uint8_t)ry[i]);
    free(w);
    free(x);
    free(wzp);
    free(zxc);
    free(rbuf);
    free(sbuf);
    free(scale);
    free(bias);
    free(acc);
    free(ry);
    free(sy);
    free(panel);
    free(colsum);
}

static fused_case random_fused(void) {
    fused_case c;
    c.rows = rin(1, 70);
    c.k = rnext() % 4 ? rin(1, 300) : rin(1, 9);
    c.cols = rin(1, 150);
    c.r0 = rnext() % 2 ? 0 : rin(0, c.rows - 1);
    c.nr = rin(1, c.rows - c.r0);
    c.w_u8 = rnext() % 3 == 0;
    c.zp_mode = rin(0, 2);
    c.zx_cols = rnext() % 3 == 0;
    c.requant = rnext() % 4 != 0;
    c.out_s8 = rnext() & 1;
    c.per_row = rnext() & 1;
    c.bias = rnext() % 3 != 0;
    c.narrow = rnext() % 4 == 0;
    c.trans = rnext() % 3 == 0;
    c.table = rnext() % 2;
    return c;
}

static void fused_suite(const char *what, const oct_quant_kernel_set *ks, int random_cases) {
    /* whole micro-tiles and every edge: 8 x 48, 4 x 24, 4 x 16, 8 x 12 and one more or less */
    static const int shapes[][3] = {{8, 64, 48}, {16, 256, 96}, {9, 5, 97}, {7, 301, 49}, {4, 2, 16},
                                    {12, 129, 25}, {64, 576, 144}, {1, 1, 1}, {33, 40, 47}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int v = 0; v < 6; v++) {
            /* tables: v 0 and 3 (uint8 and int8) on the whole-block path, 1 and 4 on the generic tile */
            fused_case c = {shapes[i][0], shapes[i][1], shapes[i][2], 0, shapes[i][0], v & 1, v % 3, v == 4,
                            v != 5, v == 2, v & 1, v < 4, v == 3, v == 1, v != 2 && v != 5};
            compare_fused(what, ks, &c);
        }
    for (int i = 0; i < random_cases; i++) {
        const fused_case c = random_fused();
        compare_fused(what, ks, &c);
    }
    /* sums that wrap int32: 40000 products of 255 * 255 */
    fused_case wrap = {3, 40000, 20, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    compare_fused(what, ks, &wrap);
    wrap.requant = 1;
    wrap.zx_cols = 1;
    compare_fused(what, ks, &wrap);
    wrap.table = 1;
    compare_fused(what, ks, &wrap);
}

START_TEST(qgemm_panel_direct) {
    set_case sets[8];
    const int n = direct_sets(sets);
    for (int i = 0; i < n; i++) fused_suite(sets[i].what, sets[i].ks, 120);
}
END_TEST

START_TEST(qgemm_panel_levels) {
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        const oct_kernel_table *t = oct_kernels();
        ck_assert_int_eq(t->isa, isa);
        ck_assert_ptr_nonnull(t->quant->panel);
        ck_assert_ptr_nonnull(t->quant->qgemm_panel);
        ck_assert_ptr_eq(oct_qpanel_kernels_selected(), oct_qpanel_kernels_for((oct_isa)isa));
        fused_suite(t->quant->name, t->quant, 30);
    }
    test_default_isa();
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("qconv_gemm");
    TCase *tc = tcase_create("panels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, im2col_panel_layouts);
    tcase_add_test(tc, pack_panel_orientations);
    suite_add_tcase(s, tc);
    TCase *gemm = tcase_create("fused");
    tcase_set_timeout(gemm, 300);
    tcase_add_test(gemm, qgemm_panel_direct);
    tcase_add_test(gemm, qgemm_panel_levels);
    suite_add_tcase(s, gemm);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
