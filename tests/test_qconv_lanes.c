/* The channel-lane int8 convolution (kernels/ref/qconv_lanes.h, engine/ops/quant/qconv_lanes.c):
   every kernel set the CPU runs against a plain loop, byte for byte, over bands and channel
   blocks cut as the op cuts them; then QLinearConv through the op at 1 and 2 threads. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/quant/qconv.h"
#include "kernels/quant_isa.h"
#include "kernels/ref/qconv_lanes.h"
#include "test_util.h"

static uint32_t rng = 777u;
static int rin(int lo, int hi) {
    rng = rng * 1664525u + 1013904223u;
    return lo + (int)((rng >> 8) % (uint32_t)(hi - lo + 1));
}

typedef struct {
    int64_t C, M, IH, IW, KH, KW, sh, sw, dh, dw, pt, pl, pb, pr;
} lshape;

static const lshape shapes[] = {
    /* C   M   IH  IW KH KW sh sw dh dw pt pl pb pr */
    {16, 16, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* ResNet's 7x7 planes, one vector of channels */
    {32, 64, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* a whole block: the 6-pixel tiles */
    {48, 72, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},  /* stride 2; a second block of 8 channels */
    {16, 130, 5, 6, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0},   /* no padding; 3 blocks, the last of 2 */
    {20, 40, 8, 11, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},   /* C not a multiple of 16 (ref repack); nv = 3 */
    {16, 24, 10, 10, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},  /* dilation 2 */
    {32, 32, 11, 9, 1, 3, 1, 2, 1, 1, 0, 1, 0, 0},   /* 1x3, column stride 2, left pad only */
    {16, 48, 20, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* rows wider than one 64-column repack */
    {3, 16, 12, 12, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3},   /* a stem: 3 channels, 7x7 / 2 */
    {64, 64, 30, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* ResNet's first stage (channels), a smaller plane */
    {32, 40, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    /* 1x1 on a small plane: lanes */
    {32, 40, 11, 11, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* 1x1 on 121 pixels: the GEMM */
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

typedef struct {
    const lshape *s;
    oct_conv_geom g;
    int w_u8, x_s8, per_row, with_bias, out_s8, narrow;
    int32_t x_zp; /* uint8 domain */
    uint8_t *x;   /* as stored (int8 bytes when x_s8) */
    uint8_t *w;
    float *scale;
    int32_t *bias;
    oct_requant rq;
    uint8_t table[256];
} lcase;

static void lcase_init(lcase *c, const lshape *s, int variant) {
    memset(c, 0, sizeof *c);
    c->s = s;
    const int64_t OH = (s->IH + s->pt + s->pb - ((s->KH - 1) * s->dh + 1)) / s->sh + 1;
    const int64_t OW = (s->IW + s->pl + s->pr - ((s->KW - 1) * s->dw + 1)) / s->sw + 1;
    c->g = (oct_conv_geom){{1, s->IH, s->IW}, {1, OH, OW}, {1, s->KH, s->KW}, {1, s->sh, s->sw}, {1, s->dh, s->dw},
                           {0, s->pt, s->pl}};
    c->w_u8 = variant & 1;
    c->x_s8 = variant >> 1 & 1;
    c->per_row = variant % 3 != 0;
    c->with_bias = variant != 2;
    c->out_s8 = variant >> 2 & 1;
    c->narrow = variant % 4 == 3;
    c->x_zp = rin(0, 255);
    const int64_t xn = s->C * s->IH * s->IW, wn = s->M * s->C * s->KH * s->KW;
    c->x = malloc((size_t)xn);
    c->w = malloc((size_t)wn);
    for (int64_t i = 0; i < xn; i++) c->x[i] = (uint8_t)rin(0, 255);
    for (int64_t i = 0; i < wn; i++) c->w[i] = (uint8_t)rin(0, 255);
    c->scale = malloc(sizeof(float) * (size_t)s->M);
    c->bias = malloc(sizeof(int32_t) * (size_t)s->M);
    /* multipliers that put typical sums (~5500 sqrt(K)) around +-50 */
    const float unit = 2e-7f / sqrtf((float)(s->C * s->KH * s->KW));
    test_random_requant(rin, (int)s->M, unit, c->per_row, c->with_bias, c->out_s8, c->narrow, c->scale, c->bias,
                        &c->rq);
    if (variant % 2) { /* a fused activation table: any byte permutation */
        for (int i = 0; i < 256; i++) c->table[i] = (uint8_t)(i * 167 + 13);
        c->rq.table = c->table;
    }
}

static void lcase_free(lcase *c) { free(c->x), free(c->w), free(c->scale), free(c->bias); }

/* The plain loop: sum (x - x_zp) * w over the taps inside the input, requantized. */
static void naive(const lcase *c, uint8_t *y) {
    const lshape *s = c->s;
    const oct_conv_geom *g = &c->g;
    const int64_t OH = g->out[1], OW = g->out[2];
    const float lo = (float)(c->rq.qmin - c->rq.zp), hi = (float)(c->rq.qmax - c->rq.zp);
    for (int64_t m = 0; m < s->M; m++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t acc = 0;
                for (int64_t ci = 0; ci < s->C; ci++)
                    for (int64_t kh = 0; kh < s->KH; kh++)
                        for (int64_t kw = 0; kw < s->KW; kw++) {
                            const int64_t ih = oh * s->sh - s->pt + kh * s->dh, iw = ow * s->sw - s->pl + kw * s->dw;
                            if (ih < 0 || ih >= s->IH || iw < 0 || iw >= s->IW) continue;
                            const int xv = (c->x[(ci * s->IH + ih) * s->IW + iw] ^ (c->x_s8 ? 0x80 : 0)) - c->x_zp;
                            const uint8_t wr = c->w[((m * s->C + ci) * s->KH + kh) * s->KW + kw];
                            acc += (int64_t)xv * (c->w_u8 ? wr - 128 : (int8_t)wr);
                        }
                y[(m * OH + oh) * OW + ow] = oct_requant_byte(&c->rq, oct_requant_one(&c->rq, (int)m, (int32_t)acc, lo, hi));
            }
}

/* The kernels over bands of nh rows and two chunks of channel blocks. */
static void run_kernels(const oct_lconv_kernels *ks, const lcase *c, int64_t nh, uint8_t *y) {
    const lshape *s = c->s;
    oct_lconv_shape sh;
    ck_assert_int_eq(oct_lconv_shape_init(&sh, &c->g, s->C, s->M), 0);
    int8_t *w = aligned_alloc(64, (oct_lconv_wbytes(&sh) + 63) / 64 * 64);
    int32_t *wsum = malloc(sizeof(int32_t) * (size_t)s->M);
    oct_lconv_pack(&sh, c->w, c->w_u8, w, wsum);
    const oct_lconv_args a = {&sh, w, wsum, c->x_zp, &c->rq, y};
    const int64_t OH = c->g.out[1], half = (sh.mblocks + 1) / 2;
    for (int64_t oh0 = 0; oh0 < OH; oh0 += nh) {
        oct_lconv_band b;
        const size_t bytes = oct_lconv_band_init(&sh, oh0, OH - oh0 < nh ? OH - oh0 : nh, &b);
        ck_assert(bytes > 0);
        uint8_t *slab = malloc(bytes + 64);
        memset(slab, 0xA5, bytes + 64); /* garbage the repack must overwrite */
        ks->repack(&sh, c->x, c->x_s8 ? 0x80 : 0, (uint8_t)c->x_zp, &b, slab);
        ks->conv(&a, slab, &b, 0, half);
        ks->conv(&a, slab, &b, half, sh.mblocks);
        free(slab);
    }
    free(w), free(wsum);
}

START_TEST(kernels_match_the_plain_loop) {
    const lshape *s = &shapes[_i];
    for (int variant = 0; variant < 8; variant += 3) {
        lcase c;
        lcase_init(&c, s, variant + _i);
        const int64_t yn = s->M * oct_geom_out_vol(&c.g);
        uint8_t *want = malloc((size_t)yn), *y = malloc((size_t)yn + 64);
        naive(&c, want);
        /* ref, the set the CPU's 'vnni' level picks, and the 256-bit one where the CPU has AVX-VNNI */
        const oct_lconv_kernels *sets[3] = {&oct_ref_lconv_kernels, oct_lconv_kernels_for(OCT_ISA_VNNI), NULL};
#if defined(__x86_64__)
        if (oct_cpu_has_avxvnni()) sets[2] = &oct_avxvnni_lconv_kernels;
#endif
        for (int k = 0; k < 3; k++) {
            if (!sets[k] || (k == 1 && !oct_isa_supported(OCT_ISA_VNNI))) continue;
            if (c.rq.table && !sets[k]->maps_tables) continue;
            for (int64_t nh = 1; nh <= c.g.out[1]; nh = nh * 3 + 1) {
                memset(y, 0x5A, (size_t)yn + 64);
                run_kernels(sets[k], &c, nh, y);
                for (int64_t i = 0; i < yn; i++)
                    ck_assert_msg(y[i] == want[i], "shape %d variant %d %s nh %lld: byte %lld is %u, want %u", _i,
                                  variant, sets[k]->name, (long long)nh, (long long)i, y[i], want[i]);
                for (int64_t i = yn; i < yn + 64; i++) ck_assert_msg(y[i] == 0x5A, "write past the output");
            }
        }
        free(want), free(y);
        lcase_free(&c);
    }
}
END_TEST

/* ---------------------------------------------------------------- through the op */

static void *run_graph(oct_graph *g, const void *x, int threads) {
    octet_error err = {0};
    ck_assert_int_eq(oct_graph_toposort(g, &err), 0);
    oct_node *n = &g->nodes[0];
    n->op = oct_op_find(n->domain, n->op_type);
    ck_assert_msg(n->op->infer(g, n, &err) == 0, "infer: %s", err.msg);
    oct_tensor *t = calloc((size_t)g->n_values, sizeof(oct_tensor));
    for (int v = 0; v < g->n_values; v++) t[v] = oct_value_tensor(&g->values[v]);
    t[g->inputs[0]].data = (void *)x;
    const oct_value *out = &g->values[g->outputs[0]];
    void *y = calloc((size_t)oct_value_numel(out), 1);
    t[g->outputs[0]].data = y;
    void *ws = malloc(n->workspace_bytes + 64);
    oct_run_ctx ctx = {g, t, ws, threads, NULL};
    ck_assert_msg(n->op->run(&ctx, n, &err) == 0, "run: %s", err.msg);
    free(ws), free(t);
    return y;
}

/* A QLinearConv of the case whose multipliers s_x * s_w / s_y equal the case's, with a Relu fused
   when the case clamps. */
static oct_graph *qlinearconv_graph(const lcase *c, int64_t batch, const float *sw, float sx, float sy) {
    const lshape *s = c->s;
    oct_graph *g = oct_graph_new();
    g->opset = 17;
    const octet_dtype xt = c->x_s8 ? OCTET_INT8 : OCTET_UINT8, wt = c->w_u8 ? OCTET_UINT8 : OCTET_INT8;
    const int64_t xd[4] = {batch, s->C, s->IH, s->IW}, wd[4] = {s->M, s->C, s->KH, s->KW}, md = s->M;
    const int xi = test_graph_input(g, "x", xt, 4, xd);
    const uint8_t xz = (uint8_t)(c->x_zp - (c->x_s8 ? 128 : 0)), wz = c->w_u8 ? 128 : 0, yz = (uint8_t)c->rq.zp;
    int in[10] = {xi,
                       test_graph_f32(g, "sx", sx),
                       test_graph_const(g, "xz", xt, 0, NULL, &xz),
                       test_graph_const(g, "w", wt, 4, wd, c->w),
                       c->per_row ? test_graph_const(g, "sw", OCTET_FLOAT, 1, &md, sw) : test_graph_f32(g, "sw", sw[0]),
                       test_graph_const(g, "wz", wt, 0, NULL, &wz),
                       test_graph_f32(g, "sy", sy),
                       test_graph_const(g, "yz", c->out_s8 ? OCTET_INT8 : OCTET_UINT8, 0, NULL, &yz),
                       test_graph_const(g, "b", OCTET_INT32, 1, &md, c->bias)};
    const int ni = test_graph_node(g, "", "QLinearConv", c->rq.table ? 10 : 9, in);
    if (c->rq.table) {
        const int64_t td = 256;
        g->nodes[ni].in[9] = test_graph_const(g, "table", OCTET_UINT8, 1, &td, c->rq.table);
        test_attr_ints_fill(g, ni, "octet_output_table", 0, 1);
    }
    const int64_t pads[4] = {s->pt, s->pl, s->pb, s->pr}, strides[2] = {s->sh, s->sw}, dil[2] = {s->dh, s->dw};
    test_attr_ints(g, ni, "pads", 4, pads);
    test_attr_ints(g, ni, "strides", 2, strides);
    test_attr_ints(g, ni, "dilations", 2, dil);
    test_push_int(&g->outputs, &g->n_outputs, g->nodes[ni].out[0]);
    return g;
}

START_TEST(qlinearconv_plans_lanes_and_matches) {
    const lshape *s = &shapes[_i];
    lcase c;
    lcase_init(&c, s, 5 + _i);
    c.rq.bias = c.bias; /* the op always gets the bias input */
    /* the op computes its multipliers as s_x * s_w / s_y in float: build the case's from those */
    const float sx = 0.02f, sy = 0.5f;
    float *sw = malloc(sizeof(float) * (size_t)s->M);
    for (int64_t m = 0; m < s->M; m++) {
        sw[m] = c.per_row ? 0.0004f * (float)(1 + m % 7) : 0.0011f;
        c.scale[m] = sx * sw[m] / sy;
    }
    c.rq.qmin = c.out_s8 ? -128 : 0; /* no fused activation: the type's range */
    c.rq.qmax = c.out_s8 ? 127 : 255;
    /* odd shapes run a batch of two images (the second one random) */
    const int64_t batch = 1 + _i % 2, xn = s->C * s->IH * s->IW, yn = s->M * oct_geom_out_vol(&c.g);
    uint8_t *x = malloc((size_t)(batch * xn)), *want = malloc((size_t)(batch * yn));
    uint8_t *first = c.x;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t i = 0; i < xn; i++) x[b * xn + i] = b ? (uint8_t)rin(0, 255) : first[i];
        c.x = x + b * xn;
        naive(&c, want + b * yn);
    }
    c.x = first;
    for (int vnni = 0; vnni < 2; vnni++)
        for (int threads = 1; threads <= 2; threads++) {
            if (vnni && !oct_isa_supported(OCT_ISA_VNNI)) continue;
            test_use_isa(vnni ? OCT_ISA_VNNI : OCT_ISA_REF);
            oct_graph *g = qlinearconv_graph(&c, batch, sw, sx, sy);
            uint8_t *y = run_graph(g, x, threads);
            const qconv_params *p = g->nodes[0].params;
            const int small = s->KH * s->KW > 1 || oct_geom_out_vol(&c.g) <= 100;
            const oct_lconv_kernels *ks = oct_lconv_kernels_selected();
            const int expect = vnni && ks && (!c.rq.table || ks->maps_tables) && s->C >= 16 && small;
            ck_assert_msg((p->mode == QCONV_LANES) == expect, "shape %d: mode %d", _i, p->mode);
            for (int64_t i = 0; i < batch * yn; i++)
                ck_assert_msg(y[i] == want[i], "shape %d threads %d vnni %d: byte %lld is %u, want %u", _i, threads,
                              vnni, (long long)i, y[i], want[i]);
            free(y);
            oct_graph_free(g);
        }
    test_default_isa();
    free(x), free(want), free(sw);
    lcase_free(&c);
}
END_TEST

int main(void) {
    Suite *su = suite_create("qconv_lanes");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, kernels_match_the_plain_loop, 0, NSHAPES);
    tcase_add_loop_test(tc, qlinearconv_plans_lanes_and_matches, 0, NSHAPES);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
