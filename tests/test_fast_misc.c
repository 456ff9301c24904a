/* The memory-bound kernel sets (kernels/misc_kernels.h) at every ISA level this CPU runs, against
   their ref twins: max and average pooling over 2-D and 3-D geometries (the common k2/s2, k3/s2/p1
   and global shapes, odd sizes, padding, ceil-mode overhang, rows wider than the kernels' row
   buffer), quantize/dequantize (ties, saturation, NaN and infinities), quantized Add/Mul over
   same-shape, per-channel and scalar broadcasts, the byte table lookup at every length around
   the vector widths, and plane sums. Then the gated QLinearLut (the fused SiLU): bit-identical to
   the QLinearLut(Sigmoid) -> QLinearMul chain it replaces, over every input byte. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/octet.h"
#include "kernels/kernels.h"
#include "kernels/misc_kernels.h"
#include "kernels/ref/quant_kernels.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng_state = 4242u;
static uint32_t urand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(urand() & 0xffff) / 65536.f; }

/* Every level this CPU runs, with its set; returns the count. */
static int levels(oct_isa isas[OCT_ISA_COUNT], const oct_misc_kernel_set *sets[OCT_ISA_COUNT]) {
    int n = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        isas[n] = (oct_isa)isa;
        sets[n++] = oct_misc_kernels();
    }
    test_default_isa();
    return n;
}

/* ---- pooling -------------------------------------------------------------------------------- */

typedef struct {
    int64_t in[3], k[3], s[3], pad[3], pad_end[3];
} pool_case;

/* The geometry of a case, output dims as AveragePool/MaxPool compute them (floor, over the padded
   input; pad_end may exceed the pad to model ceil_mode's overhang). */
static oct_conv_geom geom_of(const pool_case *c) {
    oct_conv_geom g;
    for (int d = 0; d < 3; d++) {
        g.in[d] = c->in[d];
        g.k[d] = c->k[d];
        g.stride[d] = c->s[d];
        g.dil[d] = 1;
        g.pad[d] = c->pad[d];
        g.out[d] = (c->in[d] + c->pad[d] + c->pad_end[d] - c->k[d]) / c->s[d] + 1;
    }
    return g;
}

static const pool_case POOL_CASES[] = {
    {{1, 112, 112}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1}},   /* resnet stem */
    {{1, 17, 23}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1}},     /* odd sizes */
    {{1, 16, 16}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, {0, 0, 0}},
    {{1, 15, 15}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, {0, 1, 1}},     /* ceil-mode overhang */
    {{12, 14, 10}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 0, 0}},    /* 3-D U-Net */
    {{9, 11, 13}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}},
    {{1, 9, 9}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},       /* stride 1 */
    {{1, 20, 31}, {1, 5, 4}, {1, 3, 3}, {0, 2, 1}, {0, 2, 3}},     /* generic stride */
    {{1, 7, 7}, {1, 7, 7}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},       /* global as a window */
    {{1, 3, 5000}, {1, 2, 3}, {1, 1, 2}, {0, 0, 1}, {0, 0, 1}},    /* wider than the row buffer */
    {{1, 4, 4}, {1, 2, 2}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1}},       /* windows half in padding */
    {{1, 1, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},       /* k = 1 */
};
enum { N_POOL_CASES = sizeof POOL_CASES / sizeof POOL_CASES[0] };

/* The sets that pool: every level's, plus on x86 the AVX-512 set without VBMI when the CPU's
   AVX-512 level picks the VBMI one, so both 8-bit max pooling kernels run here. */
static int pool_sets(const oct_misc_kernel_set *sets[OCT_ISA_COUNT + 1]) {
    oct_isa isas[OCT_ISA_COUNT];
    int n = levels(isas, sets);
#if defined(__x86_64__)
    int has_plain = 0, has_vbmi = 0;
    for (int l = 0; l < n; l++) {
        has_plain |= sets[l] == &oct_avx512_misc_kernels;
        has_vbmi |= sets[l] == &oct_avx512vbmi_misc_kernels;
    }
    if (has_vbmi && !has_plain) sets[n++] = &oct_avx512_misc_kernels;
#endif
    return n;
}

/* Max pooling of one geometry at every set against ref, for float, uint8 and int8 (random
   bytes, so int8 sees negative values); the 8-bit outputs get a guard byte past the end. */
static void check_maxpool(const oct_conv_geom *g, const char *what, int ci) {
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT + 1];
    const int nl = pool_sets(sets);
    const int64_t ni = oct_geom_in_vol(g), no = oct_geom_out_vol(g);
    float *x = malloc(sizeof(float) * (size_t)ni), *r = malloc(sizeof(float) * (size_t)no),
          *y = malloc(sizeof(float) * (size_t)(no + 1));
    uint8_t *xb = malloc((size_t)ni), *rb = malloc((size_t)no), *yb = malloc((size_t)no + 1);
    for (int64_t i = 0; i < ni; i++) {
        x[i] = frand(-4.f, 4.f);
        xb[i] = (uint8_t)urand();
    }
    oct_ref_maxpool_f32(g, x, r, NULL);
    for (int l = 0; l < nl; l++) {
        y[no] = 777.f;
        sets[l]->maxpool_f32(g, x, y);
        ck_assert_msg(y[no] == 777.f, "%s %s %d wrote past the output", sets[l]->name, what, ci);
        for (int64_t i = 0; i < no; i++)
            ck_assert_msg(y[i] == r[i], "%s maxpool f32 %s %d [%lld]: %g, ref %g", sets[l]->name, what, ci,
                          (long long)i, y[i], r[i]);
    }
    for (int is_s8 = 0; is_s8 < 2; is_s8++) {
        if (is_s8) oct_ref_maxpool_s8(g, (const int8_t *)xb, (int8_t *)rb, NULL);
        else oct_ref_maxpool_u8(g, xb, rb, NULL);
        for (int l = 0; l < nl; l++) {
            memset(yb, 0x5a, (size_t)no + 1);
            if (is_s8) sets[l]->maxpool_s8(g, (const int8_t *)xb, (int8_t *)yb);
            else sets[l]->maxpool_u8(g, xb, yb);
            ck_assert_msg(yb[no] == 0x5a, "%s %s %d wrote past the output", sets[l]->name, what, ci);
            for (int64_t i = 0; i < no; i++)
                ck_assert_msg(yb[i] == rb[i], "%s maxpool %s %s %d [%lld]: %d, ref %d", sets[l]->name,
                              is_s8 ? "s8" : "u8", what, ci, (long long)i, is_s8 ? (int8_t)yb[i] : yb[i],
                              is_s8 ? (int8_t)rb[i] : rb[i]);
        }
    }
    free(x), free(r), free(y), free(xb), free(rb), free(yb);
}

START_TEST(maxpool_matches_ref) {
    for (int ci = 0; ci < N_POOL_CASES; ci++) {
        const oct_conv_geom g = geom_of(&POOL_CASES[ci]);
        check_maxpool(&g, "case", ci);
    }
}
END_TEST

/* The 8-bit AVX-512 kernels' cases (row stride 1 or 2, up to 4 window columns) swept over
   widths around their 64- and 128-column blocks, every column pad below the window and the
   ceil-mode overhang: masks at both row ends, one block or several, tiny rows. */
START_TEST(maxpool_row_blocks_match_ref) {
    static const int64_t WIDTHS[] = {1, 2, 3, 5, 31, 63, 64, 65, 66, 112, 113, 126, 127, 128, 129, 130, 131, 191, 256, 259};
    int ci = 0;
    for (size_t wi = 0; wi < sizeof WIDTHS / sizeof WIDTHS[0]; wi++)
        for (int64_t sw = 1; sw <= 2; sw++)
            for (int64_t kw = 1; kw <= 4; kw++)
                for (int64_t pw = 0; pw < kw; pw++)
                    for (int64_t over = 0; over < sw; over++, ci++) {
                        if (WIDTHS[wi] + 2 * pw < kw) continue;
                        const pool_case c = {{1, 5, WIDTHS[wi]}, {1, 3, kw}, {1, 2, sw}, {0, 1, pw}, {0, 1, pw + over}};
                        const oct_conv_geom g = geom_of(&c);
                        check_maxpool(&g, "row blocks", ci);
                    }
}
END_TEST

/* Window rows: 3-D windows of several depths (the generic row count), windows whose rows all
   lie in padding (pad >= kernel, which the kernels allow), more window rows than the AVX-512
   kernels take (to the row-buffer loop), and wider rows than their block table. */
START_TEST(maxpool_window_rows_match_ref) {
    static const pool_case CASES[] = {
        {{6, 7, 70}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}},
        {{5, 9, 130}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 0}},
        {{3, 3, 20}, {1, 2, 2}, {1, 2, 2}, {0, 2, 2}, {0, 2, 2}},    /* all-padding rows and columns */
        {{4, 4, 9}, {2, 2, 3}, {2, 1, 1}, {3, 0, 1}, {3, 0, 1}},     /* all-padding depths */
        {{9, 9, 40}, {9, 9, 2}, {1, 1, 2}, {0, 0, 0}, {0, 0, 0}},    /* 81 window rows */
        {{8, 8, 33}, {4, 4, 4}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}},    /* 16 window rows, 4 columns */
        {{1, 2, 2100}, {1, 1, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},  /* 2099 outputs: past the table */
        {{1, 2, 4100}, {1, 2, 3}, {1, 1, 2}, {0, 0, 1}, {0, 0, 1}},
        {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {{1, 1, 1}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1}},
    };
    for (int ci = 0; ci < (int)(sizeof CASES / sizeof CASES[0]); ci++) {
        const oct_conv_geom g = geom_of(&CASES[ci]);
        check_maxpool(&g, "window rows", ci);
    }
}
END_TEST

START_TEST(avgpool_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    for (int ci = 0; ci < N_POOL_CASES; ci++)
        for (int cip = 0; cip < 2; cip++) {
            const oct_conv_geom g = geom_of(&POOL_CASES[ci]);
            const int64_t ni = oct_geom_in_vol(&g), no = oct_geom_out_vol(&g);
            float *x = malloc(sizeof(float) * (size_t)ni), *r = malloc(sizeof(float) * (size_t)no),
                  *y = malloc(sizeof(float) * (size_t)no);
            for (int64_t i = 0; i < ni; i++) x[i] = frand(-4.f, 4.f);
            oct_ref_avgpool_f32(&g, POOL_CASES[ci].pad_end, cip, x, r);
            for (int l = 0; l < nl; l++) {
                sets[l]->avgpool_f32(&g, POOL_CASES[ci].pad_end, cip, x, y);
                /* another summation order: a few float ulps of the window's |sum| (<= 4 per tap) */
                const float tol = 1e-5f * 4.f;
                for (int64_t i = 0; i < no; i++)
                    ck_assert_msg(fabsf(y[i] - r[i]) <= tol, "%s avgpool case %d cip %d [%lld]: %g, ref %g",
                                  sets[l]->name, ci, cip, (long long)i, y[i], r[i]);
            }
            free(x), free(r), free(y);
        }
}
END_TEST

/* ---- quantize / dequantize ------------------------------------------------------------------ */

START_TEST(quantize_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    enum { N = 4099 };
    static float x[N];
    static uint8_t r[N], y[N];
    const float scales[3] = {0.02f, 0.1f, 3.f};
    for (int si = 0; si < 3; si++) {
        const float s = scales[si];
        for (int i = 0; i < N; i++) {
            switch (i % 5) {
            case 0: x[i] = ((float)(int)(urand() % 600) - 300.f + 0.5f) * s; break; /* ties */
            case 1: x[i] = frand(-400.f, 400.f) * s; break;                       /* saturates */
            default: x[i] = frand(-130.f, 130.f) * s; break;
            }
        }
        x[3] = NAN, x[7] = INFINITY, x[11] = -INFINITY, x[13] = -0.f;
        const int32_t zps_u8[3] = {0, 128, 255}, zps_s8[3] = {-128, 0, 127};
        for (int zi = 0; zi < 3; zi++) {
            oct_ref_quantize_f32_u8(x, N, s, zps_u8[zi], r);
            for (int l = 0; l < nl; l++) {
                for (int len = N - 3; len <= N; len++) {
                    memset(y, 0x5a, sizeof y);
                    sets[l]->quantize_f32_u8(x, len, s, zps_u8[zi], y);
                    ck_assert_msg(memcmp(y, r, (size_t)len) == 0, "%s quantize u8 scale %g zp %d", sets[l]->name,
                                  (double)s, zps_u8[zi]);
                    for (int i = len; i < N; i++) ck_assert_int_eq(y[i], 0x5a);
                }
            }
            oct_ref_quantize_f32_s8(x, N, s, zps_s8[zi], (int8_t *)r);
            for (int l = 0; l < nl; l++) {
                sets[l]->quantize_f32_s8(x, N, s, zps_s8[zi], (int8_t *)y);
                ck_assert_msg(memcmp(y, r, N) == 0, "%s quantize s8 scale %g zp %d", sets[l]->name, (double)s,
                              zps_s8[zi]);
            }
        }
    }
}
END_TEST

START_TEST(dequantize_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    enum { N = 1000 };
    uint8_t x[N];
    float r[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (uint8_t)urand();
    for (int l = 0; l < nl; l++) {
        oct_ref_dequantize_u8(x, N, 0.037f, 131, r);
        sets[l]->dequantize_u8(x, N, 0.037f, 131, y);
        ck_assert_msg(memcmp(y, r, sizeof r) == 0, "%s dequantize u8", sets[l]->name);
        oct_ref_dequantize_s8((const int8_t *)x, N - 1, 0.011f, -7, r);
        sets[l]->dequantize_s8((const int8_t *)x, N - 1, 0.011f, -7, y);
        ck_assert_msg(memcmp(y, r, sizeof(float) * (N - 1)) == 0, "%s dequantize s8", sets[l]->name);
    }
}
END_TEST

/* ---- quantized Add / Mul -------------------------------------------------------------------- */

static void qbinary_case(const oct_misc_kernel_set *const *sets, int nl, int rank, const int64_t *ad,
                         const int64_t *bd, const int64_t *yd, oct_qbinary_kind kind, int s8) {
    oct_bcast bc;
    const int ranks[2] = {rank, rank};
    const int64_t *const dims[2] = {ad, bd};
    ck_assert_int_eq(oct_bcast_plan(&bc, rank, yd, 2, ranks, dims), 0);
    const int64_t na = test_numel(rank, ad), nb = test_numel(rank, bd), ny = test_numel(rank, yd);
    uint8_t *a = malloc((size_t)na), *b = malloc((size_t)nb), *r = malloc((size_t)ny), *y = malloc((size_t)ny);
    for (int64_t i = 0; i < na; i++) a[i] = (uint8_t)urand();
    for (int64_t i = 0; i < nb; i++) b[i] = (uint8_t)urand();
    const oct_qbinary q = {.kind = kind, .is_s8 = s8, .ma = kind == OCT_QBIN_MUL ? 0.00037f : 0.71f,
                           .mb = kind == OCT_QBIN_MUL ? 0.f : 0.53f, .a_zp = s8 ? -3 : 120, .b_zp = s8 ? 5 : 131,
                           .y_zp = s8 ? 2 : 125, .qmin = s8 ? -128 : 0, .qmax = s8 ? 127 : 255};
    oct_ref_qbinary(&q, &bc, a, b, r, 0, ny);
    for (int l = 0; l < nl; l++) {
        memset(y, 0, (size_t)ny);
        /* in two pieces, as the op splits the work over threads */
        sets[l]->qbinary(&q, &bc, a, b, y, 0, ny / 3);
        sets[l]->qbinary(&q, &bc, a, b, y, ny / 3, ny);
        ck_assert_msg(memcmp(y, r, (size_t)ny) == 0, "%s qbinary kind %d s8 %d rank %d", sets[l]->name, kind, s8, rank);
    }
    free(a), free(b), free(r), free(y);
}

START_TEST(qbinary_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    const int64_t full[4] = {1, 24, 13, 11}, chan[4] = {1, 24, 1, 1}, one[4] = {1, 1, 1, 1}, row[4] = {1, 1, 1, 11},
                  col[4] = {2, 1, 13, 1}, y2[4] = {2, 24, 13, 11};
    for (int kind = 0; kind < 2; kind++)
        for (int s8 = 0; s8 < 2; s8++) {
            qbinary_case(sets, nl, 4, full, full, full, (oct_qbinary_kind)kind, s8);
            qbinary_case(sets, nl, 4, chan, full, full, (oct_qbinary_kind)kind, s8); /* SE block scale */
            qbinary_case(sets, nl, 4, full, chan, full, (oct_qbinary_kind)kind, s8);
            qbinary_case(sets, nl, 4, full, one, full, (oct_qbinary_kind)kind, s8);
            qbinary_case(sets, nl, 4, row, col, y2, (oct_qbinary_kind)kind, s8); /* strided walk */
        }
}
END_TEST

/* ---- tables and sums ------------------------------------------------------------------------ */

START_TEST(qlut_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    enum { N = 700 };
    uint8_t table[256], x[N], r[N], y[N + 1];
    for (int i = 0; i < 256; i++) table[i] = (uint8_t)urand();
    for (int i = 0; i < N; i++) x[i] = (uint8_t)(i < 256 ? (uint32_t)i : urand());
    for (int l = 0; l < nl; l++)
        for (int n = 0; n <= N; n += n < 140 ? 1 : 37) {
            oct_ref_qlut(x, n, table, r);
            y[n] = 0xa5;
            sets[l]->qlut(x, n, table, y);
            ck_assert_msg(memcmp(y, r, (size_t)n) == 0, "%s qlut n %d", sets[l]->name, n);
            ck_assert_msg(y[n] == 0xa5, "%s qlut n %d wrote past the end", sets[l]->name, n);
        }
}
END_TEST

START_TEST(sums_match_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const oct_misc_kernel_set *sets[OCT_ISA_COUNT];
    const int nl = levels(isas, sets);
    const int64_t N = 96 * 96 * 7 + 13;
    float *x = malloc(sizeof(float) * (size_t)N);
    uint8_t *b = malloc((size_t)N);
    for (int64_t i = 0; i < N; i++) {
        x[i] = frand(-1.f, 3.f);
        b[i] = (uint8_t)urand();
    }
    for (int l = 0; l < nl; l++)
        for (int64_t n = 0; n <= N; n = n * 3 + 1) {
            const double rs = oct_ref_sum_f32(x, n), ys = sets[l]->sum_f32(x, n);
            ck_assert_msg(fabs(ys - rs) <= 1e-6 * (double)n * 3.0 + 1e-12, "%s sum n %lld: %g, ref %g", sets[l]->name,
                          (long long)n, ys, rs);
            ck_assert_msg(sets[l]->max_f32(x, n) == oct_ref_max_f32(x, n), "%s max n %lld", sets[l]->name, (long long)n);
            for (int s8 = 0; s8 < 2; s8++)
                ck_assert_msg(sets[l]->qsum(b, s8, n) == oct_ref_qsum_plane(b, s8, n), "%s qsum n %lld s8 %d",
                              sets[l]->name, (long long)n, s8);
        }
    free(x), free(b);
}
END_TEST

/* ---- the gated QLinearLut (fused SiLU / HardSwish) ------------------------------------------ */

/* Runs the one-input graph g on the 256 codes (shape [1, 256]) and returns its output bytes. */
static void run_codes(oct_graph *g, octet_dtype dt, uint8_t out[256]) {
    uint8_t codes[256];
    for (int i = 0; i < 256; i++) codes[i] = (uint8_t)i;
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    octet_tensor in = {dt, 2, {1, 256}, codes}, y;
    ck_assert_msg(octet_session_run(s, 1, NULL, &in, 1, NULL, &y, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(y.dtype, dt);
    memcpy(out, y.data, 256);
    octet_tensor_release(&y);
    octet_session_free(s);
}

/* A graph over x (the codes): either QLinearLut(gate) -> QLinearMul(x, gate) or one gated table. */
static oct_graph *gate_graph(octet_dtype dt, const char *gate_fn, const char *fused_fn, int fused) {
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->ms_opset = 1;
    g->name = strdup("gated_lut");
    const int64_t d[2] = {1, 256};
    const int x = test_graph_input(g, "x", dt, 2, d);
    const int s8 = dt == OCTET_INT8;
    const uint8_t zx = s8 ? (uint8_t)(int8_t)-9 : 140, zg = s8 ? (uint8_t)(int8_t)-128 : 0,
                  zy = s8 ? (uint8_t)(int8_t)-100 : 20;
    const int xs = test_graph_f32(g, "xs", 0.047f), gs = test_graph_f32(g, "gs", 1.f / 255.f),
              ys = test_graph_f32(g, "ys", 0.029f);
    const int xz = test_graph_const(g, "xz", dt, 0, NULL, &zx), gz = test_graph_const(g, "gz", dt, 0, NULL, &zg),
              yz = test_graph_const(g, "yz", dt, 0, NULL, &zy);
    int last;
    if (fused) {
        last = test_graph_node(g, "octet", "QLinearLut", 7, (int[]){x, xs, xz, ys, yz, gs, gz});
        test_attr_string(g, last, "function", fused_fn);
    } else {
        const int k = test_graph_node(g, "octet", "QLinearLut", 5, (int[]){x, xs, xz, gs, gz});
        test_attr_string(g, k, "function", gate_fn);
        if (strcmp(gate_fn, "HardSigmoid") == 0) {
            /* HardSwish's gate: alpha 1/6 (QLinearLut's HardSigmoid defaults to 0.2) */
            oct_node *n = &g->nodes[k];
            n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
            oct_attr *a = &n->attrs[n->n_attr++];
            memset(a, 0, sizeof *a);
            a->name = strdup("alpha");
            a->type = OCT_ATTR_FLOAT;
            a->f = 1.f / 6.f;
        }
        last = test_graph_node(g, "com.microsoft", "QLinearMul", 8, (int[]){g->nodes[k].out[0], gs, gz, x, xs, xz, ys, yz});
    }
    g->outputs = malloc(sizeof(int));
    g->outputs[g->n_outputs++] = g->nodes[last].out[0];
    return g;
}

START_TEST(gated_lut_equals_lut_then_mul) {
    const char *gates[2][2] = {{"Sigmoid", "SiLU"}, {"HardSigmoid", "HardSwish"}};
    const octet_dtype types[2] = {OCTET_UINT8, OCTET_INT8};
    for (int t = 0; t < 2; t++)
        for (int f = 0; f < 2; f++) {
            uint8_t chain[256], fused[256];
            oct_graph *g = gate_graph(types[t], gates[f][0], gates[f][1], 0);
            run_codes(g, types[t], chain);
            oct_graph_free(g);
            g = gate_graph(types[t], gates[f][0], gates[f][1], 1);
            run_codes(g, types[t], fused);
            oct_graph_free(g);
            int distinct = 0, seen[256] = {0};
            for (int i = 0; i < 256; i++) {
                ck_assert_msg(chain[i] == fused[i], "%s %s code %d: chain %d, fused %d", gates[f][1],
                              octet_dtype_name(types[t]), i, chain[i], fused[i]);
                distinct += !seen[fused[i]]++;
            }
            ck_assert_msg(distinct > 50, "%s: only %d distinct outputs", gates[f][1], distinct);
        }
}
END_TEST

START_TEST(gated_lut_rejects_other_functions) {
    oct_graph *g = gate_graph(OCTET_UINT8, "Sigmoid", "Tanh", 1);
    octet_model m = {.graph = g};
    octet_error err = {0};
    octet_session *s = octet_session_create(&m, NULL, &err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "SiLU or HardSwish") != NULL, "%s", err.msg);
    oct_graph_free(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("fast_misc");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, maxpool_matches_ref);
    tcase_add_test(tc, maxpool_row_blocks_match_ref);
    tcase_add_test(tc, maxpool_window_rows_match_ref);
    tcase_add_test(tc, avgpool_matches_ref);
    tcase_add_test(tc, quantize_matches_ref);
    tcase_add_test(tc, dequantize_matches_ref);
    tcase_add_test(tc, qbinary_matches_ref);
    tcase_add_test(tc, qlut_matches_ref);
    tcase_add_test(tc, sums_match_ref);
    suite_add_tcase(s, tc);
    TCase *op = tcase_create("gated_lut");
    tcase_add_test(op, gated_lut_equals_lut_then_mul);
    tcase_add_test(op, gated_lut_rejects_other_functions);
    suite_add_tcase(s, op);
    return test_run_suite(s);
}
