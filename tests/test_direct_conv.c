/* The direct convolution (kernels/ref/direct_conv.h, engine/ops/nn/conv_direct.c,
   engine/ops/quant/qconv_direct.c):
   - kernels: the ref fp32 kernel against a naive double convolution, and every SIMD level the CPU
     supports against ref, over 1-D/2-D/3-D shapes with channel counts off the 8-block, widths off
     the vector, asymmetric pads, dilations, bias, residual and every activation kind, called in
     odd row chunks, with guard cells around the output;
   - int8 kernels: ref and every SIMD level against a naive integer convolution with ref
     requantization, bit for bit: uint8/int8 inputs, int8/uint8 weights, per-tensor and
     per-channel scales, fused clamps, int8/uint8/int32 outputs, folded (1-2 channel) layouts,
     slabs cut into odd pieces;
   - ops: Conv, QLinearConv and ConvInteger graphs that plan the direct strategy (checked) give
     the naive results, for 1 and 2 threads, on every ISA level. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "engine/ops/nn/conv.h"
#include "engine/ops/quant/qconv.h"
#include "kernels/kernels.h"
#include "kernels/ref/direct_conv.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng = 4242u;
static uint32_t rnext(void) {
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}
static int64_t rint_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnext() % (uint32_t)(hi - lo + 1)); }
static float frand(void) { return (float)(rnext() & 0xffff) / 32768.f - 1.f; }

static const float GUARD = 1234.5f;
enum { GUARD_N = 64 };

/* ---------------------------------------------------------------- shapes */

typedef struct {
    int nsp;
    int64_t C, M, in[3], k[3], dil[3], pb[3], pe[3];
} shape_t;

/* Geometry with leading dims set to 1 for 1-D/2-D. */
static oct_conv_geom geom_of(const shape_t *s) {
    oct_conv_geom g;
    for (int i = 0; i < 3; i++) {
        g.in[i] = s->in[i];
        g.k[i] = s->k[i];
        g.stride[i] = 1;
        g.dil[i] = s->dil[i];
        g.pad[i] = s->pb[i];
        g.out[i] = s->in[i] + s->pb[i] + s->pe[i] - (s->k[i] - 1) * s->dil[i];
    }
    return g;
}

static const shape_t shapes[] = {
    /* 3-D: the U-Net's 3x3x3 pad 1, channel counts on and off the blocks */
    {3, 16, 16, {6, 7, 33}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    {3, 1, 16, {5, 6, 20}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    {3, 2, 11, {4, 5, 17}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    {3, 5, 13, {4, 4, 12}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    {3, 32, 9, {3, 4, 24}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    {3, 3, 7, {5, 5, 9}, {2, 3, 2}, {1, 1, 2}, {0, 2, 1}, {1, 0, 2}},
    {3, 6, 4, {4, 6, 40}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
    /* 2-D: widths off the vector, asymmetric pads, dilation, 5x5 and 7-wide kernels */
    {2, 3, 8, {1, 9, 31}, {1, 3, 3}, {1, 1, 1}, {0, 1, 0}, {0, 1, 2}},
    {2, 7, 17, {1, 10, 18}, {1, 5, 5}, {1, 1, 1}, {0, 2, 2}, {0, 2, 2}},
    {2, 4, 5, {1, 8, 21}, {1, 3, 7}, {1, 2, 2}, {0, 2, 6}, {0, 1, 3}},
    {2, 9, 24, {1, 6, 7}, {1, 3, 3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
    {2, 1, 3, {1, 5, 3}, {1, 3, 3}, {1, 1, 1}, {0, 2, 2}, {0, 2, 2}},
    /* 1-D */
    {1, 4, 6, {1, 1, 50}, {1, 1, 5}, {1, 1, 3}, {0, 0, 4}, {0, 0, 7}},
    {1, 12, 10, {1, 1, 16}, {1, 1, 3}, {1, 1, 1}, {0, 0, 1}, {0, 0, 1}},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* ISA levels this CPU supports, ref first. */
static int levels(oct_isa out[OCT_ISA_COUNT]) {
    int n = 0;
    for (int i = 0; i < OCT_ISA_COUNT; i++)
        if (oct_isa_supported((oct_isa)i)) out[n++] = (oct_isa)i;
    return n;
}
static const oct_dconv_kernels *select_isa(oct_isa isa) {
    test_use_isa(isa);
    ck_assert_int_eq(oct_kernels()->isa, isa);
    return oct_dconv_select();
}
/* ---------------------------------------------------------------- fp32 kernels */

static double act_d(const oct_act *a, double x) { return (double)oct_act_apply(a, (float)x); }

/* Naive conv in double: y = act(bias + conv + res). */
static void naive_f32(const shape_t *s, const oct_conv_geom *g, const float *x, const float *w, const float *bias,
                      const float *res, const oct_act *act, double *y) {
    const int64_t in_vol = oct_geom_in_vol(g), out_vol = oct_geom_out_vol(g), kvol = oct_geom_k_vol(g);
    for (int64_t m = 0; m < s->M; m++)
        for (int64_t od = 0; od < g->out[0]; od++)
            for (int64_t oh = 0; oh < g->out[1]; oh++)
                for (int64_t ow = 0; ow < g->out[2]; ow++) {
                    double acc = bias ? bias[m] : 0.;
                    for (int64_t c = 0; c < s->C; c++)
                        for (int64_t kd = 0; kd < g->k[0]; kd++)
                            for (int64_t kh = 0; kh < g->k[1]; kh++)
                                for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                    const int64_t id = od + kd * g->dil[0] - g->pad[0];
                                    const int64_t ih = oh + kh * g->dil[1] - g->pad[1];
                                    const int64_t iw = ow + kw * g->dil[2] - g->pad[2];
                                    if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] || iw < 0 || iw >= g->in[2])
                                        continue;
                                    acc += (double)x[c * in_vol + (id * g->in[1] + ih) * g->in[2] + iw] *
                                           w[(m * s->C + c) * kvol + (kd * g->k[1] + kh) * g->k[2] + kw];
                                }
                    const int64_t o = m * out_vol + (od * g->out[1] + oh) * g->out[2] + ow;
                    y[o] = act_d(act, res ? acc + res[o] : acc);
                }
}

/* Runs kernel f over the whole output, rows in chunks of `chunk` (not a multiple of the tile). */
static void run_f32(oct_dconv_f32_fn f, const oct_dconv_f32 *a, int64_t chunk) {
    const int64_t mblocks = (a->outs + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    for (int64_t od = 0; od < a->g.out[0]; od++)
        for (int64_t oh = 0; oh < a->g.out[1]; oh += chunk)
            for (int64_t mb = 0; mb < mblocks; mb++)
                f(a, mb, od, oh, a->g.out[1] - oh < chunk ? a->g.out[1] - oh : chunk);
}

static float *guarded(int64_t n) {
    float *b = malloc(sizeof(float) * (size_t)(n + 2 * GUARD_N));
    for (int64_t i = 0; i < n + 2 * GUARD_N; i++) b[i] = GUARD;
    return b + GUARD_N;
}
static void check_guards(const float *y, int64_t n, const char *what) {
    for (int i = 1; i <= GUARD_N; i++) {
        ck_assert_msg(y[-i] == GUARD, "%s wrote before the output", what);
        ck_assert_msg(y[n - 1 + i] == GUARD, "%s wrote past the output", what);
    }
}

static void f32_case(const shape_t *s, int act_kind, int with_bias, int with_res) {
    const oct_conv_geom g = geom_of(s);
    const int64_t in_n = s->C * oct_geom_in_vol(&g), out_n = s->M * oct_geom_out_vol(&g), kvol = oct_geom_k_vol(&g);
    float *x = malloc(sizeof(float) * (size_t)in_n), *w = malloc(sizeof(float) * (size_t)(s->M * s->C * kvol));
    float *bias = malloc(sizeof(float) * (size_t)s->M), *res = malloc(sizeof(float) * (size_t)out_n);
    for (int64_t i = 0; i < in_n; i++) x[i] = frand();
    for (int64_t i = 0; i < s->M * s->C * kvol; i++) w[i] = frand();
    for (int64_t i = 0; i < s->M; i++) bias[i] = frand();
    for (int64_t i = 0; i < out_n; i++) res[i] = frand();
    const oct_act act = {act_kind, act_kind == 2 ? -0.3f : act_kind == 7 ? 0.2f : 0.1f, act_kind == 2 ? 0.4f : 0.5f};
    double *want = malloc(sizeof(double) * (size_t)out_n);
    naive_f32(s, &g, x, w, with_bias ? bias : NULL, with_res ? res : NULL, &act, want);
    const size_t pf = oct_dconv_f32_packed_floats(s->M, s->C, kvol);
    ck_assert(pf > 0);
    float *packed = malloc(sizeof(float) * pf);
    oct_dconv_f32_pack(&g, s->M, s->C, w, packed);
    float *ref = guarded(out_n), *got = guarded(out_n);
    oct_dconv_f32 a = {.g = g, .channels = s->C, .outs = s->M, .x = x, .w = packed,
                       .bias = with_bias ? bias : NULL, .res = with_res ? res : NULL, .act = act, .y = ref};
    run_f32(oct_ref_dconv_f32, &a, 4);
    check_guards(ref, out_n, "ref");
    const double tol = 1e-5 * (double)(s->C * kvol + 2);
    for (int64_t i = 0; i < out_n; i++)
        ck_assert_msg(fabs(ref[i] - want[i]) <= tol, "ref C=%lld M=%lld act %d at %lld: %g vs naive %g",
                      (long long)s->C, (long long)s->M, act_kind, (long long)i, ref[i], want[i]);
    oct_isa isas[OCT_ISA_COUNT];
    const int nl = levels(isas);
    for (int l = 0; l < nl; l++) {
        const oct_dconv_kernels *ks = select_isa(isas[l]);
        for (int chunk = 1; chunk <= 7; chunk += 3) {
            for (int64_t i = 0; i < out_n; i++) got[i] = -777.f;
            a.y = got;
            run_f32(ks->f32, &a, chunk);
            check_guards(got, out_n, ks->name);
            for (int64_t i = 0; i < out_n; i++)
                ck_assert_msg(fabsf(got[i] - ref[i]) <= 1e-5f * (float)(s->C * kvol + 2),
                              "%s C=%lld M=%lld act %d chunk %d at %lld: %g vs ref %g", ks->name, (long long)s->C,
                              (long long)s->M, act_kind, chunk, (long long)i, got[i], ref[i]);
        }
    }
    test_default_isa();
    free(x), free(w), free(bias), free(res), free(want), free(packed), free(ref - GUARD_N), free(got - GUARD_N);
}

START_TEST(f32_kernels_match_naive_and_ref) {
    const shape_t *s = &shapes[_i];
    f32_case(s, 0, 0, 0);
    f32_case(s, 1, 1, 0);
    f32_case(s, 2, 1, 1);
    f32_case(s, 3, 0, 1);
    if (_i % 3 == 0)
        for (int k = 4; k <= 8; k++) f32_case(s, k, 1, 1);
}
END_TEST

/* ---------------------------------------------------------------- int8 kernels */

typedef struct {
    int x_s8, w_u8, qlinear, per_channel, out_s8, clamp;
} qmode_t;

static const qmode_t qmodes[] = {
    {0, 0, 1, 1, 0, 0}, {1, 0, 1, 0, 1, 0}, {0, 1, 1, 0, 0, 1}, {1, 1, 1, 1, 0, 1},
    {0, 0, 0, 0, 0, 0}, {1, 0, 0, 1, 0, 0}, {0, 0, 1, 0, 1, 1},
};
enum { NQMODES = sizeof qmodes / sizeof qmodes[0] };

typedef struct {
    const shape_t *s;
    oct_conv_geom g;
    const qmode_t *q;
    uint8_t *x, *w;     /* as stored: x uint8/int8, w int8/uint8 (zero point 0 / 128) */
    int32_t x_zp;       /* in x's own type */
    float *scale;       /* per channel multipliers (or one) */
    int32_t *bias;
    oct_requant rq;
} qcase_t;

static void qcase_init(qcase_t *c, const shape_t *s, const qmode_t *q) {
    c->s = s;
    c->q = q;
    c->g = geom_of(s);
    const int64_t in_n = s->C * oct_geom_in_vol(&c->g), wn = s->M * s->C * oct_geom_k_vol(&c->g);
    c->x = malloc((size_t)in_n);
    c->w = malloc((size_t)wn);
    for (int64_t i = 0; i < in_n; i++) c->x[i] = (uint8_t)rnext();
    for (int64_t i = 0; i < wn; i++) c->w[i] = (uint8_t)rnext();
    c->x_zp = q->x_s8 ? (int32_t)rint_in(-20, 20) : (int32_t)rint_in(100, 150);
    c->scale = malloc(sizeof(float) * (size_t)s->M);
    c->bias = malloc(sizeof(int32_t) * (size_t)s->M);
    for (int64_t m = 0; m < s->M; m++) {
        c->scale[m] = 1e-4f * (float)(1 + rnext() % 50);
        c->bias[m] = (int32_t)rint_in(-20000, 20000);
    }
    const int32_t zp = q->out_s8 ? (int32_t)rint_in(-10, 10) : (int32_t)rint_in(120, 135);
    c->rq = (oct_requant){.scale = c->scale, .scale_per_row = q->per_channel, .bias = c->bias, .zp = zp,
                          .qmin = q->out_s8 ? -128 : 0, .qmax = q->out_s8 ? 127 : 255, .out_s8 = q->out_s8};
    if (q->clamp) c->rq.qmin = zp, c->rq.qmax = zp + 90 > c->rq.qmax ? c->rq.qmax : zp + 90;
}
static void qcase_free(qcase_t *c) { free(c->x), free(c->w), free(c->scale), free(c->bias); }
static size_t out_size(const qcase_t *c) { return c->q->qlinear ? 1 : sizeof(int32_t); }
static uint8_t x_xor(const qcase_t *c) { return c->q->x_s8 ? 0x80 : 0; }
static int32_t x_zp_u8(const qcase_t *c) { return c->x_zp + (c->q->x_s8 ? 128 : 0); }

/* Naive: integer sum of (w - w_zp)(x - x_zp) over taps inside the input, then ref requant. */
static void naive_s8(const qcase_t *c, void *y) {
    const shape_t *s = c->s;
    const oct_conv_geom *g = &c->g;
    const int64_t in_vol = oct_geom_in_vol(g), out_vol = oct_geom_out_vol(g), kvol = oct_geom_k_vol(g);
    for (int64_t m = 0; m < s->M; m++)
        for (int64_t o = 0; o < out_vol; o++) {
            const int64_t od = o / (g->out[1] * g->out[2]), oh = o / g->out[2] % g->out[1], ow = o % g->out[2];
            int64_t acc = 0;
            for (int64_t ci = 0; ci < s->C; ci++)
                for (int64_t kd = 0; kd < g->k[0]; kd++)
                    for (int64_t kh = 0; kh < g->k[1]; kh++)
                        for (int64_t kw = 0; kw < g->k[2]; kw++) {
                            const int64_t id = od + kd * g->dil[0] - g->pad[0];
                            const int64_t ih = oh + kh * g->dil[1] - g->pad[1];
                            const int64_t iw = ow + kw * g->dil[2] - g->pad[2];
                            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] || iw < 0 || iw >= g->in[2])
                                continue;
                            const uint8_t xb = c->x[ci * in_vol + (id * g->in[1] + ih) * g->in[2] + iw];
                            const uint8_t wb = c->w[(m * s->C + ci) * kvol + (kd * g->k[1] + kh) * g->k[2] + kw];
                            const int64_t xv = c->q->x_s8 ? (int8_t)xb : xb;
                            const int64_t wv = c->q->w_u8 ? (int64_t)wb - 128 : (int8_t)wb;
                            acc += wv * (xv - c->x_zp);
                        }
            const int32_t v = (int32_t)acc; /* fits: |acc| < 2^31 for these sizes */
            if (c->q->qlinear) oct_ref_requant(&v, 1, (int)m, 1, 1, &c->rq, (uint8_t *)y + m * out_vol + o, 1, 1);
            else ((int32_t *)y)[m * out_vol + o] = v;
        }
}

/* Runs a kernel set over the whole output, slabs of nd planes x nh rows, row chunks of `chunk`. */
static void run_s8(const oct_dconv_kernels *ks, const qcase_t *c, int64_t nd, int64_t nh, int64_t chunk, void *y) {
    const shape_t *s = c->s;
    oct_dconv_s8_shape sh;
    oct_dconv_s8_shape_init(&sh, &c->g, s->C, s->M);
    const size_t wb = ks->s8_wbytes(&sh);
    ck_assert(wb > 0);
    void *packed = malloc(wb);
    int32_t *wsum = malloc(sizeof(int32_t) * (size_t)s->M);
    ks->s8_pack(&sh, c->w, c->q->w_u8, packed, wsum);
    const oct_dconv_s8 a = {.s = &sh, .w = packed, .wsum = wsum, .x_zp = x_zp_u8(c),
                            .rq = c->q->qlinear ? &c->rq : NULL, .rq_row0 = 0, .y = y};
    const int64_t mblocks = (s->M + OCT_DCONV_MB - 1) / OCT_DCONV_MB;
    for (int64_t d0 = 0; d0 < c->g.out[0]; d0 += nd)
        for (int64_t h0 = 0; h0 < c->g.out[1]; h0 += nh) {
            const int64_t ndd = c->g.out[0] - d0 < nd ? c->g.out[0] - d0 : nd;
            const int64_t nhh = c->g.out[1] - h0 < nh ? c->g.out[1] - h0 : nh;
            oct_dconv_slab sl;
            const size_t bytes = oct_dconv_slab_init(&sh, d0, ndd, h0, nhh, &sl);
            ck_assert(bytes > 0);
            uint8_t *slab = malloc(bytes);
            memset(slab, 0xA5, bytes); /* the repack must write every byte the kernels use */
            ks->s8_repack(&sh, c->x, x_xor(c), (uint8_t)x_zp_u8(c), &sl, slab);
            for (int64_t od = d0; od < d0 + ndd; od++)
                for (int64_t oh = h0; oh < h0 + nhh; oh += chunk)
                    for (int64_t mb = 0; mb < mblocks; mb++)
                        ks->s8(&a, slab, &sl, mb, od, oh, h0 + nhh - oh < chunk ? h0 + nhh - oh : chunk);
            free(slab);
        }
    free(packed);
    free(wsum);
}

START_TEST(s8_kernels_match_naive_bit_for_bit) {
    const shape_t *s = &shapes[_i];
    for (int qi = 0; qi < NQMODES; qi++) {
        qcase_t c;
        qcase_init(&c, s, &qmodes[qi]);
        const int64_t out_n = s->M * oct_geom_out_vol(&c.g);
        const size_t bytes = (size_t)out_n * out_size(&c);
        uint8_t *want = malloc(bytes), *got = malloc(bytes + 2 * GUARD_N);
        naive_s8(&c, want);
        oct_isa isas[OCT_ISA_COUNT];
        const int nl = levels(isas);
        for (int l = 0; l < nl; l++) {
            const oct_dconv_kernels *ks = select_isa(isas[l]);
            const int64_t cuts[][3] = {{1, 100000, 6}, {2, 3, 2}, {3, 5, 4}};
            for (int k = 0; k < 3; k++) {
                memset(got, 0x5A, bytes + 2 * GUARD_N);
                run_s8(ks, &c, cuts[k][0], cuts[k][1], cuts[k][2], got + GUARD_N);
                for (int i = 0; i < GUARD_N; i++)
                    ck_assert_msg(got[i] == 0x5A && got[GUARD_N + bytes + i] == 0x5A, "%s wrote outside the output",
                                  ks->name);
                for (size_t i = 0; i < bytes; i++)
                    ck_assert_msg(got[GUARD_N + i] == want[i],
                                  "%s shape %d mode %d cut %d: byte %zu is %u, naive %u (C=%lld M=%lld)", ks->name,
                                  _i, qi, k, i, got[GUARD_N + i], want[i], (long long)s->C, (long long)s->M);
            }
        }
        test_default_isa();
        free(want), free(got);
        qcase_free(&c);
    }
}
END_TEST

START_TEST(s8_fold_chosen_for_few_channels) {
    const oct_conv_geom g = geom_of(&shapes[1]);
    oct_dconv_s8_shape sh;
    oct_dconv_s8_shape_init(&sh, &g, 1, 16);
    ck_assert(sh.fold && sh.groups == 1 && sh.taps_w == 1);
    oct_dconv_s8_shape_init(&sh, &g, 2, 16);
    ck_assert(sh.fold && sh.groups == 2);
    oct_dconv_s8_shape_init(&sh, &g, 16, 16);
    ck_assert(!sh.fold && sh.groups == 4 && sh.taps_w == 3);
}
END_TEST

/* ---------------------------------------------------------------- ops */

static int infer_all(oct_graph *g, octet_error *err) {
    if (oct_graph_toposort(g, err)) return -1;
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        n->op = oct_op_find(n->domain, n->op_type);
        ck_assert_msg(n->op != NULL, "no op %s", n->op_type);
        if (n->op->infer(g, n, err)) return -1;
    }
    return 0;
}

/* Infers and runs the one-node graph g (node 0) with `threads`; returns its output (malloc'ed). */
static void *run_node(oct_graph *g, const void *const *inputs, int threads) {
    octet_error err = {0};
    ck_assert_msg(infer_all(g, &err) == 0, "infer: %s", err.msg);
    oct_tensor *t = calloc((size_t)g->n_values, sizeof(oct_tensor));
    for (int v = 0; v < g->n_values; v++) t[v] = oct_value_tensor(&g->values[v]);
    for (int i = 0; i < g->n_inputs; i++) t[g->inputs[i]].data = (void *)inputs[i];
    oct_value *out = &g->values[g->outputs[0]];
    void *y = calloc((size_t)oct_value_numel(out), octet_dtype_size(out->dtype));
    t[g->outputs[0]].data = y;
    oct_node *n = &g->nodes[0];
    void *ws = malloc(n->workspace_bytes + 64);
    oct_run_ctx ctx = {g, t, ws, threads, NULL};
    ck_assert_msg(n->op->run(&ctx, n, &err) == 0, "run: %s", err.msg);
    free(ws);
    free(t);
    return y;
}

static oct_attr *new_attr(oct_graph *g, int ni, const char *name, oct_attr_type t) {
    oct_node *n = &g->nodes[ni];
    n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = t;
    return a;
}
static void attr_ints(oct_graph *g, int ni, const char *name, int n, const int64_t *v) {
    oct_attr *a = new_attr(g, ni, name, OCT_ATTR_INTS);
    a->n = n;
    a->ints = malloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

static void node_geometry(oct_graph *g, int ni, const shape_t *s, int64_t group) {
    int64_t pads[6], dil[3];
    for (int i = 0; i < s->nsp; i++) {
        const int a = 3 - s->nsp + i;
        pads[i] = s->pb[a];
        pads[s->nsp + i] = s->pe[a];
        dil[i] = s->dil[a];
    }
    attr_ints(g, ni, "pads", 2 * s->nsp, pads);
    attr_ints(g, ni, "dilations", s->nsp, dil);
    new_attr(g, ni, "group", OCT_ATTR_INT)->i = group;
}
static int dims_of(const shape_t *s, int64_t n, int64_t c, const int64_t *sp, int64_t *dims) {
    dims[0] = n;
    dims[1] = c;
    for (int i = 0; i < s->nsp; i++) dims[2 + i] = sp[3 - s->nsp + i];
    return 2 + s->nsp;
}
/* Direct is planned for every stride-1 3-D layer here and for 2-D/1-D ones other than 3x3. */
/* What the fp32 planner gives the direct strategy: 3-D layers but 1x1x1 ones (a GEMM), and the 2-D
   ones Winograd does not take. */
static int expect_direct(const shape_t *s) {
    const int pointwise = s->k[0] * s->k[1] * s->k[2] == 1;
    return s->nsp == 3 ? !pointwise : !(s->k[1] == 3 && s->k[2] == 3);
}

enum { OP_N = 2 };

START_TEST(conv_op_plans_direct_and_matches_naive) {
    const shape_t *s = &shapes[_i];
    const oct_conv_geom geo = geom_of(s);
    const int64_t G = s->C > 1 ? 1 + _i % 2 : 1, in_vol = oct_geom_in_vol(&geo), out_vol = oct_geom_out_vol(&geo);
    const int64_t kvol = oct_geom_k_vol(&geo), xn = OP_N * G * s->C * in_vol, yn = OP_N * G * s->M * out_vol;
    const int64_t wn = G * s->M * s->C * kvol;
    float *x = malloc(sizeof(float) * (size_t)xn), *w = malloc(sizeof(float) * (size_t)wn);
    float *bias = malloc(sizeof(float) * (size_t)(G * s->M)), *res = malloc(sizeof(float) * (size_t)yn);
    for (int64_t i = 0; i < xn; i++) x[i] = frand();
    for (int64_t i = 0; i < wn; i++) w[i] = frand();
    for (int64_t i = 0; i < G * s->M; i++) bias[i] = frand();
    for (int64_t i = 0; i < yn; i++) res[i] = frand();
    const oct_act act = {OCT_ACT_RELU, 0.f, 0.f};
    double *want = malloc(sizeof(double) * (size_t)yn);
    for (int64_t b = 0; b < OP_N; b++)
        for (int64_t gi = 0; gi < G; gi++) {
            const int64_t yo = (b * G + gi) * s->M * out_vol;
            naive_f32(s, &geo, x + (b * G + gi) * s->C * in_vol, w + gi * s->M * s->C * kvol, bias + gi * s->M,
                      res + yo, &act, want + yo);
        }
    oct_isa isas[OCT_ISA_COUNT];
    const int nl = levels(isas);
    for (int l = 0; l < nl; l++)
        for (int threads = 1; threads <= 2; threads++) {
            select_isa(isas[l]);
            oct_graph *g = oct_graph_new();
            g->opset = 17;
            int64_t dims[5];
            const int r = dims_of(s, OP_N, G * s->C, s->in, dims);
            const int xi = test_graph_input(g, "x", OCTET_FLOAT, r, dims);
            int64_t out_sp[3] = {geo.out[0], geo.out[1], geo.out[2]};
            dims_of(s, OP_N, G * s->M, out_sp, dims);
            const int ri = test_graph_input(g, "r", OCTET_FLOAT, r, dims);
            dims_of(s, G * s->M, s->C, s->k, dims);
            const int wi = test_graph_const(g, "w", OCTET_FLOAT, r, dims, w);
            const int64_t bd = G * s->M;
            const int bi = test_graph_const(g, "b", OCTET_FLOAT, 1, &bd, bias);
            const int yi = oct_graph_add_value(g, "y", NULL);
            const int ni = oct_graph_add_node(g, "conv", "Conv", "", 3, 1, NULL);
            g->nodes[ni].in[0] = xi, g->nodes[ni].in[1] = wi, g->nodes[ni].in[2] = bi, g->nodes[ni].out[0] = yi;
            g->nodes[ni].epi = (oct_epilogue){OCT_ACT_RELU, 0.f, 0.f, ri};
            test_push_int(&g->outputs, &g->n_outputs, yi);
            node_geometry(g, ni, s, G);
            const void *ins[2] = {x, res};
            float *y = run_node(g, ins, threads);
            const conv_params *p = g->nodes[ni].params;
            if (expect_direct(s) && oct_dconv_select()->f32_simd)
                ck_assert_msg(p->mode == CONV_DIRECT, "shape %d on %s planned mode %d, not direct", _i,
                              oct_isa_name(isas[l]), p->mode);
            for (int64_t i = 0; i < yn; i++)
                ck_assert_msg(fabs(y[i] - want[i]) <= 1e-5 * (double)(s->C * kvol + 2),
                              "shape %d %s threads %d at %lld: %g vs naive %g", _i, oct_isa_name(isas[l]), threads,
                              (long long)i, y[i], want[i]);
            free(y);
            oct_graph_free(g);
        }
    test_default_isa();
    free(x), free(w), free(bias), free(res), free(want);
}
END_TEST

/* QLinearConv (Relu fused when the mode clamps) or ConvInteger through the op. */
START_TEST(qconv_ops_plan_direct_and_match_naive) {
    const shape_t *s = &shapes[_i];
    /* two modes per shape; the loop over shapes covers every mode */
    for (int qk = 0; qk < 2; qk++) {
        const int qi = (_i + qk * 3) % NQMODES;
        const qmode_t *q = &qmodes[qi];
        qcase_t c;
        qcase_init(&c, s, q);
        /* the op's multipliers: s_x * s_w[r] / s_y in float, as quant_multipliers computes */
        const float sx = 0.02f, sy = 0.5f;
        float *sw = malloc(sizeof(float) * (size_t)s->M);
        for (int64_t m = 0; m < s->M; m++) {
            sw[m] = q->per_channel ? 0.001f * (float)(1 + m % 7) : 0.003f;
            c.scale[m] = sx * sw[m] / sy;
        }
        if (q->clamp) { /* a fused Relu clamps at the zero point */
            c.rq.qmin = c.rq.zp;
            c.rq.qmax = q->out_s8 ? 127 : 255;
        }
        const oct_conv_geom *geo = &c.g;
        const int64_t out_vol = oct_geom_out_vol(geo), yn = s->M * out_vol;
        const size_t esize = q->qlinear ? 1 : 4;
        uint8_t *want = malloc((size_t)yn * esize);
        naive_s8(&c, want);
        oct_isa isas[OCT_ISA_COUNT];
        const int nl = levels(isas);
        for (int l = 0; l < nl; l++)
            for (int threads = 1; threads <= 2; threads++) {
                select_isa(isas[l]);
                oct_graph *g = oct_graph_new();
                g->opset = 17;
                int64_t dims[5];
                const int r = dims_of(s, 1, s->C, s->in, dims);
                const octet_dtype xt = q->x_s8 ? OCTET_INT8 : OCTET_UINT8, wt = q->w_u8 ? OCTET_UINT8 : OCTET_INT8;
                const int xi = test_graph_input(g, "x", xt, r, dims);
                dims_of(s, s->M, s->C, s->k, dims);
                const int wi = test_graph_const(g, "w", wt, r, dims, c.w);
                const uint8_t xz = (uint8_t)c.x_zp, wz = q->w_u8 ? 128 : 0, yz = (uint8_t)c.rq.zp;
                const int xzi = test_graph_const(g, "xz", xt, 0, NULL, &xz);
                const int64_t md = s->M;
                uint8_t *wzs = malloc((size_t)s->M);
                memset(wzs, wz, (size_t)s->M);
                const int wzi = test_graph_const(g, "wz", wt, q->per_channel ? 1 : 0, &md, wzs);
                free(wzs);
                const int yi = oct_graph_add_value(g, "y", NULL);
                int ni;
                if (q->qlinear) {
                    ni = oct_graph_add_node(g, "qconv", "QLinearConv", "", 9, 1, NULL);
                    const int in[9] = {xi, test_graph_f32(g, "sx", sx), xzi, wi,
                                       q->per_channel ? test_graph_const(g, "sw", OCTET_FLOAT, 1, &md, sw)
                                                      : test_graph_f32(g, "sw", sw[0]),
                                       wzi, test_graph_f32(g, "sy", sy),
                                       test_graph_const(g, "yz", q->out_s8 ? OCTET_INT8 : OCTET_UINT8, 0, NULL, &yz),
                                       test_graph_const(g, "b", OCTET_INT32, 1, &md, c.bias)};
                    memcpy(g->nodes[ni].in, in, sizeof in);
                    if (q->clamp) g->nodes[ni].epi = (oct_epilogue){OCT_ACT_RELU, 0.f, 0.f, -1};
                } else {
                    ni = oct_graph_add_node(g, "convint", "ConvInteger", "", 4, 1, NULL);
                    const int in[4] = {xi, wi, xzi, wzi};
                    memcpy(g->nodes[ni].in, in, sizeof in);
                }
                g->nodes[ni].out[0] = yi;
                test_push_int(&g->outputs, &g->n_outputs, yi);
                node_geometry(g, ni, s, 1);
                const void *ins[1] = {c.x};
                uint8_t *y = run_node(g, ins, threads);
                const qconv_params *p = g->nodes[ni].params;
                if (expect_direct(s) && oct_geom_k_vol(geo) > 1 && oct_dconv_select()->s8_simd)
                    ck_assert_msg(p->mode == QCONV_DIRECT, "shape %d mode %d on %s planned mode %d, not direct", _i,
                                  qi, oct_isa_name(isas[l]), p->mode);
                for (int64_t i = 0; i < yn * (int64_t)esize; i++)
                    ck_assert_msg(y[i] == want[i], "shape %d mode %d %s threads %d: byte %lld is %u, naive %u", _i, qi,
                                  oct_isa_name(isas[l]), threads, (long long)i, y[i], want[i]);
                free(y);
                oct_graph_free(g);
            }
        test_default_isa();
        free(want), free(sw);
        qcase_free(&c);
    }
}
END_TEST

START_TEST(nonzero_weight_zero_point_keeps_the_gemm) {
    const shape_t *s = &shapes[0];
    qcase_t c;
    qcase_init(&c, s, &qmodes[4]); /* ConvInteger, int8 weights */
    oct_graph *g = oct_graph_new();
    g->opset = 17;
    int64_t dims[5];
    const int r = dims_of(s, 1, s->C, s->in, dims);
    const int xi = test_graph_input(g, "x", OCTET_UINT8, r, dims);
    dims_of(s, s->M, s->C, s->k, dims);
    const int wi = test_graph_const(g, "w", OCTET_INT8, r, dims, c.w);
    const uint8_t xz = 3, wz = 5;
    const int in[4] = {xi, wi, test_graph_const(g, "xz", OCTET_UINT8, 0, NULL, &xz),
                       test_graph_const(g, "wz", OCTET_INT8, 0, NULL, &wz)};
    const int ni = oct_graph_add_node(g, "convint", "ConvInteger", "", 4, 1, NULL);
    memcpy(g->nodes[ni].in, in, sizeof in);
    g->nodes[ni].out[0] = oct_graph_add_value(g, "y", NULL);
    test_push_int(&g->outputs, &g->n_outputs, g->nodes[ni].out[0]);
    node_geometry(g, ni, s, 1);
    octet_error err = {0};
    ck_assert_msg(infer_all(g, &err) == 0, "infer: %s", err.msg);
    ck_assert_int_ne(((const qconv_params *)g->nodes[ni].params)->mode, QCONV_DIRECT);
    oct_graph_free(g);
    qcase_free(&c);
}
END_TEST

Suite *direct_conv_suite(void) {
    Suite *su = suite_create("direct_conv");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, f32_kernels_match_naive_and_ref, 0, NSHAPES);
    tcase_add_loop_test(tc, s8_kernels_match_naive_bit_for_bit, 0, NSHAPES);
    tcase_add_test(tc, s8_fold_chosen_for_few_channels);
    suite_add_tcase(su, tc);
    TCase *to = tcase_create("ops");
    tcase_set_timeout(to, 600);
    tcase_add_loop_test(to, conv_op_plans_direct_and_matches_naive, 0, NSHAPES);
    tcase_add_loop_test(to, qconv_ops_plan_direct_and_match_naive, 0, NSHAPES);
    tcase_add_test(to, nonzero_weight_zero_point_keeps_the_gemm);
    suite_add_tcase(su, to);
    return su;
}

int main(void) {
    return test_run_suite(direct_conv_suite());
}
