/* The one-column (batch-1 QGemm / QLinearMatMul) case of every int8 kernel set's qgemm_panel
   against oct_ref_qgemm + oct_ref_requant, bit for bit. The VNNI set runs it as a weight stream of
   its own (two 4-k groups per load, several row blocks side by side), so the shapes here hit its
   edges: odd group counts (K not a multiple of 8), K below one group, row counts that leave a last
   run of fewer row blocks, row sub-ranges starting inside a block, weight zero points, per-column
   activation zero points, int32 and requantized (per-row or shared scale, bias, narrowed clamp,
   int8 / uint8, with or without a random activation table) output through both output
   orientations, and sums that wrap int32. Guard bytes around the output must stay untouched. Each set is called directly and through OCTET_ISA. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/qpanel_isa.h"
#include "kernels/quant_isa.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng = 1234567u;
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

typedef struct {
    int rows, k, r0, nr;
    int w_u8, wzp, zx_col, requant, out_s8, per_row, bias, narrow, trans, saturate;
    int table; /* a random activation table in the requantization */
} gemv_case;

static void compare(const char *what, const oct_quant_kernel_set *ks, const gemv_case *c) {
    const int rows = c->rows, K = c->k;
    uint8_t *w = xmalloc((size_t)rows * (size_t)K), *x = xmalloc((size_t)K);
    for (int64_t i = 0; i < (int64_t)rows * K; i++) w[i] = c->saturate ? 0 : (uint8_t)rin(0, 255);
    for (int i = 0; i < K; i++) x[i] = c->saturate ? 255 : (uint8_t)rin(0, 255);
    int32_t *wzp = xmalloc(sizeof(int32_t) * (size_t)rows);
    for (int r = 0; r < rows; r++) wzp[r] = rin(-128, 127);
    int32_t zx = rin(0, 255);
    const int32_t x_zp = rin(0, 255);
    const size_t rb = oct_ref_qweights_bytes(rows, K), sb = ks->qweights_bytes(rows, K);
    void *rbuf = xmalloc(rb), *sbuf = xmalloc(sb);
    oct_qweights rw, sw;
    /* saturate: weights all -128 (0 ^ 0x80 as uint8), x all 255: the largest sums, wrapping */
    oct_ref_qweights_pack(rows, K, w, c->w_u8 || c->saturate, K, 1, rbuf, &rw);
    ks->qweights_pack(rows, K, w, c->w_u8 || c->saturate, K, 1, sbuf, &sw);
    float *scale = xmalloc(sizeof(float) * (size_t)rows);
    int32_t *bias = xmalloc(sizeof(int32_t) * (size_t)rows);
    oct_requant q;
    test_random_requant(rin, rows, 1e-7f, c->per_row, c->bias, c->out_s8, c->narrow, scale, bias, &q);
    const int32_t *zp = c->wzp ? wzp : NULL, *zc = c->zx_col ? &zx : NULL;
    int32_t *acc = xmalloc(sizeof(int32_t) * (size_t)c->nr);
    oct_ref_qgemm(&rw, c->r0, c->nr, 1, x, 1, x_zp, zc, zp, acc, 1);
    /* y: nr outputs, contiguous (trans: one column of a row-major M x N block) or y_rs apart */
    const int64_t y_rs = c->trans ? 1 : 3, y_cs = c->trans ? c->nr + 2 : 1;
    const size_t esize = c->requant ? 1 : 4, ny = (size_t)(c->nr * y_rs + y_cs) + 16;
    char *ry = xmalloc(ny * esize), *sy = xmalloc(ny * esize);
    memset(ry, 0x5a, ny * esize);
    memset(sy, 0x5a, ny * esize);
    uint8_t table[256];
    for (int i = 0; i < 256; i++) table[i] = (uint8_t)rnext();
    if (c->requant) oct_ref_requant(acc, 1, c->r0, c->nr, 1, &q, ry, y_rs, y_cs);
    if (c->requant && c->table) {
        /* ref's table against its plain bytes mapped afterwards; then every set gets the table */
        char *mapped = xmalloc(ny);
        memcpy(mapped, ry, ny);
        for (int r = 0; r < c->nr; r++) mapped[r * y_rs] = (char)table[(uint8_t)ry[r * y_rs]];
        q.table = table;
        oct_ref_requant(acc, 1, c->r0, c->nr, 1, &q, ry, y_rs, y_cs);
        ck_assert_msg(memcmp(mapped, ry, ny) == 0, "%s: oct_ref_requant with a table differs from the mapped bytes",
                      what);
        free(mapped);
    }
    if (!c->requant)
        for (int r = 0; r < c->nr; r++) memcpy(ry + r * y_rs * 4, &acc[r], 4);
    void *panel = xmalloc(oct_qpanel_bytes(ks->panel, K, 1));
    oct_ref_qpanel_pack(ks->panel, x, 1, 1, K, 1, 0, panel);
    int32_t colsum;
    oct_ref_qpanel_colsums(ks->panel, panel, K, 1, &colsum);
    const oct_qgemm_out o = {x_zp, zc, zp, &colsum, c->requant ? &q : NULL, sy, y_rs, y_cs};
    ks->qgemm_panel(&sw, c->r0, c->nr, 1, panel, &o);
    for (size_t i = 0; i < ny * esize; i++)
        ck_assert_msg(sy[i] == ry[i],
                      "%s gemv rows %d k %d (r0 %d nr %d, u8 %d, wzp %d, zx_col %d, requant %d, s8 %d, per_row %d, "
                      "bias %d, narrow %d, trans %d, saturate %d, table %d): byte %zu = %d, ref %d",
                      what, rows, K, c->r0, c->nr, c->w_u8, c->wzp, c->zx_col, c->requant, c->out_s8, c->per_row,
                      c->bias, c->narrow, c->trans, c->saturate, c->table, i, (uint8_t)sy[i], (uint8_t)ry[i]);
    free(w);
    free(x);
    free(wzp);
    free(rbuf);
    free(sbuf);
    free(scale);
    free(bias);
    free(acc);
    free(ry);
    free(sy);
    free(panel);
}

static void suite_for(const char *what, const oct_quant_kernel_set *ks) {
    /* rows: one block, a run of whole blocks, a last run of 1..3 blocks, a partial last block;
       k: below a group, odd and even group counts, the classifier's 1280 */
    static const int shapes[][2] = {{8, 8},   {32, 64},  {1, 1},    {40, 4},   {33, 9},    {100, 1280},
                                    {1000, 1280}, {57, 12}, {7, 3}, {64, 1536}, {24, 20}, {200, 333}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int v = 0; v < 8; v++) {
            const int rows = shapes[i][0];
            gemv_case c = {rows, shapes[i][1], 0, rows, v & 1, v % 3 == 1, v == 5, v != 6, (v >> 1) & 1, v < 4,
                           v % 3 != 2, v == 3, v == 2 || v == 7, 0, v == 2 || v == 5};
            compare(what, ks, &c);
        }
    for (int i = 0; i < 150; i++) {
        gemv_case c;
        c.rows = rin(1, 90);
        c.k = rnext() % 3 ? rin(1, 600) : rin(1, 17);
        c.r0 = rnext() % 2 ? 0 : rin(0, c.rows - 1);
        c.nr = rin(1, c.rows - c.r0);
        c.w_u8 = rnext() % 3 == 0;
        c.wzp = rnext() % 3 == 0;
        c.zx_col = rnext() % 4 == 0;
        c.requant = rnext() % 4 != 0;
        c.out_s8 = rnext() & 1;
        c.per_row = rnext() & 1;
        c.bias = rnext() % 3 != 0;
        c.narrow = rnext() % 4 == 0;
        c.trans = rnext() % 3 == 0;
        c.saturate = 0;
        c.table = rnext() % 2;
        compare(what, ks, &c);
    }
    /* 70000 products of 255 * -128 wrap int32 in every row */
    gemv_case wrap = {37, 70000, 0, 37, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    compare(what, ks, &wrap);
    wrap.requant = 1;
    wrap.r0 = 5;
    wrap.nr = 30;
    compare(what, ks, &wrap);
    wrap.table = 1;
    wrap.out_s8 = 1;
    compare(what, ks, &wrap);
}

START_TEST(gemv_direct) {
    suite_for("ref", &oct_ref_quant_kernels);
#if defined(__x86_64__)
    if (oct_isa_supported(OCT_ISA_AVX2)) suite_for("avx2", &oct_avx2_quant_kernels);
    if (oct_cpu_has_avxvnni()) suite_for("avxvnni", &oct_avxvnni_quant_kernels);
    if (oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni"))
        suite_for("vnni", &oct_vnni_quant_kernels);
#endif
#if defined(__aarch64__)
    suite_for("neon", &oct_neon_quant_kernels);
    if (oct_isa_supported(OCT_ISA_DOTPROD)) suite_for("dotprod", &oct_dotprod_quant_kernels);
#endif
}
END_TEST

START_TEST(gemv_levels) {
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        const oct_kernel_table *t = oct_kernels();
        ck_assert_int_eq(t->isa, isa);
        suite_for(t->quant->name, t->quant);
    }
    test_default_isa();
}
END_TEST

int main(void) {
    Suite *s = suite_create("qgemm_gemv");
    TCase *tc = tcase_create("gemv");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gemv_direct);
    tcase_add_test(tc, gemv_levels);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
