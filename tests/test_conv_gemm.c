/* The packed-weight GEMM path and its fused epilogue, on every ISA level this CPU supports:
   - oct_sgemm_run (packed or plain A, packed, in-place or copied B, accumulate, every epilogue term
     and activation) against oct_ref_sgemm + oct_ref_epilogue, with guard cells around C;
   - oct_sgemm_store_transposed (the write-back of the pixels-as-rows conv GEMM) likewise;
   - the im2col tile and its panel layout against a per-element definition (padding, strides,
     dilation, 2-D and 3-D);
   - Conv (pointwise and im2col strategies, pixels as GEMM columns or rows, groups, bias, residual,
     activations, 1 and 2 threads),
     Gemm (constant B packed with transB, C, alpha/beta, M = 1) and MatMul (constant B) as ops, with
     constant weights so that planning packs them, against double-precision references. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "kernels/kernels.h"
#include "kernels/ref/nn_kernels.h"
#include "kernels/sgemm_blocked.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng = 12345u;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.f - 1.f;
}

static float *rand_buf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* Every supported ISA level with GEMM kernels of its own, ref first (vnni and dotprod borrow the
   avx512 and neon ones). */
static int levels(oct_isa out[OCT_ISA_COUNT]) {
    const oct_sgemm_arch *seen[OCT_ISA_COUNT];
    int n = 0;
    for (int i = 0; i < OCT_ISA_COUNT; i++) {
        if (!oct_isa_supported((oct_isa)i)) continue;
        test_use_isa((oct_isa)i);
        const oct_sgemm_arch *arch = oct_sgemm_arch_current();
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= seen[j] == arch;
        if (dup) continue;
        seen[n] = arch;
        out[n++] = (oct_isa)i;
    }
    test_default_isa();
    return n;
}

static void select_isa(oct_isa isa) {
    test_use_isa(isa);
    ck_assert_int_eq(oct_kernels()->isa, isa);
}

/* ------------------------------------------------------------------ kernel level: oct_sgemm_run */

static const oct_act ACTS[] = {{0, 0.f, 0.f},  {1, 0.f, 0.f},   {2, -0.5f, 0.7f}, {3, 0.1f, 0.f}, {4, 0.f, 0.f},
                               {5, 0.f, 0.f},  {6, 0.f, 0.f},   {7, 0.2f, 0.5f},  {8, 0.f, 0.f}};
enum { N_ACTS = sizeof ACTS / sizeof ACTS[0] };

typedef struct {
    int m, n, k;
    int pack_a, pack_b, accumulate;
    int bias, c_mode, res, act; /* c_mode: 0 none, 1 full [m, n], 2 row [n], 3 column [m] */
    float alpha;
} gemm_case;

static void check_gemm_case(const oct_sgemm_arch *arch, const gemm_case *gc) {
    const int m = gc->m, n = gc->n, k = gc->k, lda = k + 3, ldb = n + 5, ldc = n + 2;
    float *a = rand_buf((size_t)m * lda), *b = rand_buf((size_t)(k ? k : 1) * ldb);
    float *c = rand_buf((size_t)(m + 1) * ldc), *r = malloc((size_t)(m + 1) * ldc * sizeof(float));
    memcpy(r, c, (size_t)(m + 1) * ldc * sizeof(float));
    float *bias = rand_buf((size_t)m), *cm = rand_buf((size_t)m * n), *res = rand_buf((size_t)m * (n + 1));
    oct_epilogue_args e = {.alpha = gc->alpha, .row_bias = gc->bias ? bias : NULL, .beta = 0.75f,
                           .res = gc->res ? res : NULL, .ldr = n + 1, .act = ACTS[gc->act]};
    if (gc->c_mode == 1) e.c = cm, e.c_rs = n, e.c_cs = 1;
    if (gc->c_mode == 2) e.c = cm, e.c_rs = 0, e.c_cs = 1;
    if (gc->c_mode == 3) e.c = cm, e.c_rs = 1, e.c_cs = 0;

    float *ap = NULL, *bp = NULL;
    if (gc->pack_a) {
        ap = malloc(oct_sgemm_packed_a_floats(arch, m, k) * sizeof(float));
        oct_sgemm_pack_a(arch, m, k, a, lda, ap);
    }
    if (gc->pack_b) {
        bp = malloc(oct_sgemm_packed_b_floats(arch, k, n) * sizeof(float));
        oct_sgemm_pack_b(arch, k, n, b, ldb, 0, bp);
    }
    const oct_sgemm_call q = {.m = m, .n = n, .k = k, .a = a, .ap = ap, .lda = lda, .b = b, .bp = bp,
                              .ldb = ldb, .c = c, .ldc = ldc, .accumulate = gc->accumulate, .e = &e};
    oct_sgemm_run(arch, &q);
    oct_ref_sgemm(m, n, k, a, lda, b, ldb, r, ldc, gc->accumulate);
    oct_ref_epilogue(r, ldc, m, n, &e);
    for (int i = 0; i <= m; i++)
        for (int j = 0; j < ldc; j++) {
            const size_t at = (size_t)i * ldc + j;
            if (i == m || j >= n) {
                ck_assert_msg(c[at] == r[at], "%s: guard cell (%d, %d) changed", arch->name, i, j);
                continue;
            }
            /* Two summation orders: a few k * eps of the sum of |terms| (a dropped or doubled term,
               about that sum / k, cannot hide in it), through activations of slope <= 1.5, plus
               a few ulp of the vector expf. */
            double terms = gc->accumulate ? fabs(r[at]) : 0.0;
            for (int p = 0; p < k; p++) terms += fabs((double)a[(size_t)i * lda + p] * b[(size_t)p * ldb + j]);
            const double tol = 1.5 * (3.0 * (k + 2) * 6e-8 * (terms + 2.0)) + 2e-6 * fabs(r[at]) + 1e-6;
            ck_assert_msg(fabs((double)c[at] - r[at]) <= tol,
                          "%s m=%d n=%d k=%d packA=%d packB=%d acc=%d bias=%d c=%d res=%d act=%d alpha=%g: "
                          "(%d,%d) got %.9g want %.9g",
                          arch->name, m, n, k, gc->pack_a, gc->pack_b, gc->accumulate, gc->bias, gc->c_mode,
                          gc->res, gc->act, gc->alpha, i, j, c[at], r[at]);
        }
    free(a), free(b), free(c), free(r), free(bias), free(cm), free(res), free(ap), free(bp);
}

START_TEST(sgemm_run_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nl = levels(isas);
    /* Edges of every kind, more than one k block, B wider than the B block, no k at all, a reduction
       long enough for the B-strips-outer order of two packed operands. */
    static const int shapes[][3] = {{1, 1, 1},      {1, 1000, 37}, {7, 5, 3},       {8, 48, 256},
                                    {9, 49, 257},   {13, 97, 300}, {64, 200, 16},   {70, 130, 300},
                                    {3, 17, 0},     {17, 2100, 9}, {17, 100, 2100}};
    for (int li = 0; li < nl; li++) {
        select_isa(isas[li]);
        const oct_sgemm_arch *arch = oct_sgemm_arch_current();
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int pa = 0; pa < 2; pa++)
                for (int pb = 0; pb < 2; pb++) {
                    gemm_case gc = {shapes[s][0], shapes[s][1], shapes[s][2], pa, pb, 0, 0, 0, 0, 0, 1.f};
                    if (gc.k == 0 && (pa || pb)) continue; /* nothing to pack */
                    check_gemm_case(arch, &gc);
                    /* Every activation with bias and residual, on the two packed paths the ops take
                       (conv: packed A; Gemm/MatMul: packed B). */
                    for (int act = 0; act < N_ACTS && pa != pb; act++) {
                        gc.act = act;
                        gc.bias = 1, gc.res = 1, gc.c_mode = 0, gc.alpha = 1.f;
                        check_gemm_case(arch, &gc);
                    }
                    gc.act = 1;
                    for (int cm = 1; cm <= 3; cm++) {
                        gc.c_mode = cm, gc.alpha = 0.5f, gc.bias = cm == 2, gc.res = cm == 3;
                        check_gemm_case(arch, &gc);
                    }
                    gc.accumulate = 1, gc.c_mode = 0, gc.bias = 1, gc.alpha = 1.f;
                    check_gemm_case(arch, &gc);
                }
    }
    test_default_isa();
}
END_TEST

/* oct_sgemm_store_transposed: y (n x m, channel-major) from ct (m x n) with every epilogue term and
   activation, against the transposed copy plus oct_ref_epilogue; guard cells around y untouched. */
START_TEST(store_transposed_matches_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nl = levels(isas);
    static const int shapes[][2] = {{1, 1}, {49, 512}, {7, 5}, {100, 17}, {9, 49}, {256, 300}};
    for (int li = 0; li < nl; li++) {
        select_isa(isas[li]);
        const oct_sgemm_arch *arch = oct_sgemm_arch_current();
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int act = 0; act < N_ACTS; act++) {
                const int m = shapes[si][0], n = shapes[si][1], ldct = n + 3, ldy = m + 2;
                float *ct = rand_buf((size_t)m * ldct), *y = rand_buf((size_t)(n + 1) * ldy);
                float *want = malloc((size_t)(n + 1) * ldy * sizeof(float));
                memcpy(want, y, (size_t)(n + 1) * ldy * sizeof(float));
                float *bias = rand_buf((size_t)n), *res = rand_buf((size_t)n * m);
                /* Bias and residual on even activations, neither on odd ones (the copy alone). */
                const oct_epilogue_args e = {.alpha = 1.f, .row_bias = act % 2 ? NULL : bias,
                                             .res = act % 2 ? NULL : res, .ldr = m, .act = ACTS[act]};
                oct_sgemm_store_transposed(arch, ct, ldct, m, n, y, ldy, &e);
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) want[(size_t)j * ldy + i] = ct[(size_t)i * ldct + j];
                oct_ref_epilogue(want, ldy, n, m, &e);
                for (int j = 0; j <= n; j++)
                    for (int i = 0; i < ldy; i++) {
                        const size_t at = (size_t)j * ldy + i;
                        if (j == n || i >= m)
                            ck_assert_msg(y[at] == want[at], "%s: guard cell (%d, %d) changed", arch->name, j, i);
                        else
                            ck_assert_msg(fabsf(y[at] - want[at]) <= 1e-6f * (1.f + fabsf(want[at])),
                                          "%s m=%d n=%d act=%d: (%d,%d) got %.9g want %.9g", arch->name, m, n, act, j,
                                          i, y[at], want[at]);
                    }
                free(ct), free(y), free(want), free(bias), free(res);
            }
    }
    test_default_isa();
}
END_TEST

/* ------------------------------------------------------------------ im2col */

/* The definition: column (c, kd, kh, kw) x pixel p reads x at the window position, 0 outside. */
static float im2col_at(const oct_conv_geom *g, const float *x, int64_t c, int64_t kd, int64_t kh, int64_t kw,
                       int64_t pix) {
    const int64_t ow = pix % g->out[2], oh = pix / g->out[2] % g->out[1], od = pix / (g->out[2] * g->out[1]);
    const int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pad[0];
    const int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pad[1];
    const int64_t iw = ow * g->stride[2] + kw * g->dil[2] - g->pad[2];
    if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] || iw < 0 || iw >= g->in[2]) return 0.f;
    return x[((c * g->in[0] + id) * g->in[1] + ih) * g->in[2] + iw];
}

START_TEST(im2col_matches_definition) {
    /* in, k, stride, dil, pad (begin; the end padding only shows in the output size) */
    static const struct {
        int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    } cases[] = {
        {{1, 9, 11}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {{1, 12, 13}, {1, 7, 7}, {1, 2, 2}, {1, 1, 1}, {0, 3, 3}, {0, 3, 3}},
        {{1, 10, 9}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 0, 0}},
        {{1, 8, 17}, {1, 3, 2}, {1, 3, 3}, {1, 2, 2}, {0, 2, 0}, {0, 1, 4}},
        {{1, 1, 20}, {1, 1, 5}, {1, 1, 1}, {1, 1, 3}, {0, 0, 6}, {0, 0, 6}},
        {{5, 6, 7}, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
        {{1, 5, 4}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 4, 4}, {0, 4, 4}}, /* rows entirely in padding */
        /* rows of 24 pixels and more: with 48-wide strips the run-by-run copy, not the gather */
        {{1, 6, 60}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {{2, 5, 61}, {2, 3, 3}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}},
        {{1, 3, 70}, {1, 2, 5}, {1, 1, 1}, {1, 1, 2}, {0, 0, 2}, {0, 0, 0}},
    };
    const int64_t channels = 3;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        oct_conv_geom g;
        for (int i = 0; i < 3; i++) {
            g.in[i] = cases[ci].in[i], g.k[i] = cases[ci].k[i], g.stride[i] = cases[ci].s[i];
            g.dil[i] = cases[ci].d[i], g.pad[i] = cases[ci].pb[i];
            g.out[i] = (g.in[i] + cases[ci].pb[i] + cases[ci].pe[i] - (g.k[i] - 1) * g.dil[i] - 1) / g.stride[i] + 1;
        }
        const int64_t P = oct_geom_out_vol(&g), kvol = oct_geom_k_vol(&g);
        float *x = rand_buf((size_t)(channels * oct_geom_in_vol(&g)));
        /* Tiles that start and end mid-row, and one covering everything. */
        const int64_t tiles[][2] = {{0, P}, {3, P - 3 < 7 ? P - 3 : 7}, {P / 2, P - P / 2}};
        for (int t = 0; t < 3; t++) {
            const int64_t p0 = tiles[t][0], np = tiles[t][1];
            if (np <= 0) continue;
            float *col = malloc((size_t)(channels * kvol * np + 1) * sizeof(float));
            col[channels * kvol * np] = 77.f;
            oct_ref_im2col_tile(&g, x, channels, p0, np, col);
            ck_assert(col[channels * kvol * np] == 77.f);
            int64_t row = 0;
            for (int64_t c = 0; c < channels; c++)
                for (int64_t kd = 0; kd < g.k[0]; kd++)
                    for (int64_t kh = 0; kh < g.k[1]; kh++)
                        for (int64_t kw = 0; kw < g.k[2]; kw++, row++)
                            for (int64_t q = 0; q < np; q++)
                                ck_assert_msg(col[row * np + q] == im2col_at(&g, x, c, kd, kh, kw, p0 + q),
                                              "case %zu tile %d row %lld pixel %lld", ci, t, (long long)row,
                                              (long long)(p0 + q));
            free(col);
            /* The panel layout: strips of nr pixels, zero past np in the last strip. */
            for (int64_t nr = 5; nr <= 48; nr += 43) {
                const int64_t strips = (np + nr - 1) / nr, K = channels * kvol;
                float *bp = malloc((size_t)(strips * nr * K + 1) * sizeof(float));
                bp[strips * nr * K] = 77.f;
                oct_ref_im2col_f32_panel(&g, x, channels, p0, np, nr, bp);
                ck_assert(bp[strips * nr * K] == 77.f);
                int64_t r = 0;
                for (int64_t c = 0; c < channels; c++)
                    for (int64_t kd = 0; kd < g.k[0]; kd++)
                        for (int64_t kh = 0; kh < g.k[1]; kh++)
                            for (int64_t kw = 0; kw < g.k[2]; kw++, r++)
                                for (int64_t q = 0; q < strips * nr; q++) {
                                    const float want = q < np ? im2col_at(&g, x, c, kd, kh, kw, p0 + q) : 0.f;
                                    ck_assert_msg(bp[(q / nr) * nr * K + r * nr + q % nr] == want,
                                                  "panel nr %lld case %zu tile %d row %lld pixel %lld", (long long)nr,
                                                  ci, t, (long long)r, (long long)(p0 + q));
                                }
                free(bp);
            }
        }
        free(x);
    }
}
END_TEST

/* ------------------------------------------------------------------ ops with constant weights */

static oct_attr *add_attr(oct_node *n, const char *name, oct_attr_type t) {
    n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = t;
    return a;
}

static void attr_ints(oct_node *n, const char *name, int cnt, const int64_t *v) {
    oct_attr *a = add_attr(n, name, OCT_ATTR_INTS);
    a->n = cnt;
    a->ints = malloc(sizeof(int64_t) * (size_t)cnt);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}

/* Infers and runs the graph's single node with `threads` threads; returns the output data (owned by
   the caller). Input values that are graph inputs are bound to inputs[] in g->inputs order. */
static float *run_single(oct_graph *g, int ni, const float *const *inputs, int threads) {
    octet_error err = {0};
    oct_node *n = &g->nodes[ni];
    n->op = oct_op_find("", n->op_type);
    ck_assert_ptr_nonnull(n->op);
    ck_assert_msg(n->op->infer(g, n, &err) == 0, "infer: %s", err.msg);
    oct_tensor *t = calloc((size_t)g->n_values, sizeof *t);
    for (int v = 0; v < g->n_values; v++) t[v] = oct_value_tensor(&g->values[v]);
    for (int i = 0; i < g->n_inputs; i++) t[g->inputs[i]].data = (void *)inputs[i];
    const oct_value *yv = &g->values[n->out[0]];
    float *y = calloc((size_t)oct_value_numel(yv) + 1, sizeof(float));
    t[n->out[0]].data = y;
    void *ws = malloc(n->workspace_bytes + 64);
    oct_run_ctx ctx = {g, t, ws, threads, NULL};
    ck_assert_msg(n->op->run(&ctx, n, &err) == 0, "run: %s", err.msg);
    free(ws);
    free(t);
    return y;
}

static void expect_close(const float *got, const double *want, int64_t count, const char *what) {
    for (int64_t i = 0; i < count; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-4 * (1.0 + fabs(want[i])), "%s: [%lld] got %.8g want %.8g", what,
                      (long long)i, got[i], want[i]);
}

typedef struct {
    int64_t N, C, M, group, H, W, k, s, pad;
    int bias, res, act;
} conv_case;

static void check_conv(const conv_case *cc, int threads, const char *isa) {
    const int64_t Ho = (cc->H + 2 * cc->pad - cc->k) / cc->s + 1, Wo = (cc->W + 2 * cc->pad - cc->k) / cc->s + 1;
    const int64_t Cg = cc->C / cc->group, Mg = cc->M / cc->group;
    const int64_t xd[4] = {cc->N, cc->C, cc->H, cc->W}, wd[4] = {cc->M, Cg, cc->k, cc->k},
                  yd[4] = {cc->N, cc->M, Ho, Wo};
    const int64_t nx = test_numel(4, xd), nw = test_numel(4, wd), ny = test_numel(4, yd);
    float *x = rand_buf((size_t)nx), *w = rand_buf((size_t)nw), *b = rand_buf((size_t)cc->M),
          *r = rand_buf((size_t)ny);
    double *ref = malloc((size_t)ny * sizeof(double));
    for (int64_t bi = 0; bi < cc->N; bi++)
        for (int64_t m = 0; m < cc->M; m++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    const int64_t gi = m / Mg;
                    double acc = cc->bias ? b[m] : 0.0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < cc->k; kh++)
                            for (int64_t kw = 0; kw < cc->k; kw++) {
                                const int64_t ih = oh * cc->s + kh - cc->pad, iw = ow * cc->s + kw - cc->pad;
                                if (ih < 0 || ih >= cc->H || iw < 0 || iw >= cc->W) continue;
                                acc += (double)x[((bi * cc->C + gi * Cg + c) * cc->H + ih) * cc->W + iw] *
                                       w[((m * Cg + c) * cc->k + kh) * cc->k + kw];
                            }
                    const int64_t at = ((bi * cc->M + m) * Ho + oh) * Wo + ow;
                    if (cc->res) acc += r[at];
                    ref[at] = oct_act_apply(&ACTS[cc->act], (float)acc);
                }
    oct_graph *g = oct_graph_new();
    const int xv = test_graph_input(g, "x", OCTET_FLOAT, 4, xd);
    const int rv = cc->res ? test_graph_input(g, "r", OCTET_FLOAT, 4, yd) : -1;
    const int wv = test_graph_const(g, "w", OCTET_FLOAT, 4, wd, w);
    const int bv = test_graph_const(g, "b", OCTET_FLOAT, 1, &cc->M, b);
    const int yv = oct_graph_add_value(g, "y", NULL);
    const int ni = oct_graph_add_node(g, "conv", "Conv", "", cc->bias ? 3 : 2, 1, NULL);
    ck_assert_int_ge(ni, 0);
    oct_node *n = &g->nodes[ni];
    n->in[0] = xv, n->in[1] = wv, n->out[0] = yv;
    if (cc->bias) n->in[2] = bv;
    const int64_t ks[2] = {cc->k, cc->k}, st[2] = {cc->s, cc->s}, pads[4] = {cc->pad, cc->pad, cc->pad, cc->pad};
    attr_ints(n, "kernel_shape", 2, ks);
    attr_ints(n, "strides", 2, st);
    attr_ints(n, "pads", 4, pads);
    add_attr(n, "group", OCT_ATTR_INT)->i = cc->group;
    n->epi.residual = rv;
    n->epi.act = (oct_act_kind)ACTS[cc->act].kind;
    n->epi.alpha = ACTS[cc->act].alpha;
    n->epi.beta = ACTS[cc->act].beta;
    const float *inputs[2] = {x, r};
    float *y = run_single(g, ni, inputs, threads);
    char what[160];
    snprintf(what, sizeof what, "%s conv N%lld C%lld M%lld g%lld %lldx%lld k%lld s%lld p%lld act%d t%d", isa,
             (long long)cc->N, (long long)cc->C, (long long)cc->M, (long long)cc->group, (long long)cc->H,
             (long long)cc->W, (long long)cc->k, (long long)cc->s, (long long)cc->pad, cc->act, threads);
    expect_close(y, ref, ny, what);
    oct_graph_free(g);
    free(x), free(w), free(b), free(r), free(ref), free(y);
}

START_TEST(conv_packed_matches_reference) {
    /* The 3x3 stride-1 cases must take the im2col path here, not Winograd. */
    setenv("OCTET_WINOGRAD", "0", 1);
    static const conv_case cases[] = {
        /* N  C   M   grp H   W   k  s  pad bias res act */
        {1, 16, 96, 1, 23, 21, 1, 1, 0, 1, 0, 1},  /* pointwise expand, Relu */
        {2, 40, 20, 1, 9, 13, 1, 1, 0, 1, 1, 0},   /* pointwise with residual */
        {1, 24, 36, 2, 8, 7, 1, 1, 0, 1, 1, 5},    /* grouped pointwise, SiLU */
        {1, 3, 16, 1, 31, 29, 7, 2, 3, 1, 0, 1},   /* stem 7x7/2 */
        {1, 32, 40, 1, 15, 14, 3, 2, 1, 0, 1, 2},  /* 3x3/2, Clip */
        {1, 20, 70, 1, 12, 11, 3, 1, 1, 1, 1, 1},  /* 3x3/1 with residual + Relu */
        {2, 12, 18, 3, 10, 9, 3, 1, 1, 1, 0, 4},   /* grouped, Sigmoid */
        {1, 17, 9, 1, 6, 40, 3, 1, 0, 1, 1, 8},    /* Tanh */
        {1, 8, 30, 1, 12, 12, 3, 2, 1, 1, 0, 6},   /* HardSwish */
        {1, 8, 30, 1, 12, 12, 5, 1, 2, 1, 1, 7},   /* HardSigmoid */
        {1, 6, 11, 1, 9, 9, 3, 1, 1, 1, 1, 3},     /* LeakyRelu */
        {1, 64, 200, 1, 7, 7, 3, 1, 1, 1, 0, 1},   /* few pixels, many channels: channel blocks */
        {1, 40, 300, 1, 16, 16, 1, 1, 0, 1, 1, 1}, /* pointwise, 256 pixels: several channel slabs */
        {2, 24, 64, 2, 7, 7, 3, 1, 1, 1, 1, 5},    /* batch and groups, few pixels */
        {1, 48, 100, 1, 14, 14, 3, 2, 1, 1, 1, 1}, /* 7x7 output of a stride-2 layer */
    };
    oct_isa isas[OCT_ISA_COUNT];
    const int nl = levels(isas);
    /* Pixels as GEMM columns (0), as rows (1), and the measured choice (unset). */
    static const char *const pixel_modes[] = {"0", "1", NULL};
    for (int pm = 0; pm < 3; pm++) {
        if (pixel_modes[pm]) setenv("OCTET_CONV_PIXELS_A", pixel_modes[pm], 1);
        else unsetenv("OCTET_CONV_PIXELS_A");
        for (int li = 0; li < nl; li++) {
            select_isa(isas[li]);
            /* Two threads on every other case: the work splits (pixel tiles, channel blocks) differ. */
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                check_conv(&cases[i], 1 + (int)((i + pm) % 2), oct_isa_name(isas[li]));
        }
    }
    test_default_isa();
    unsetenv("OCTET_CONV_PIXELS_A");
    unsetenv("OCTET_WINOGRAD");
}
END_TEST

/* Gemm with a constant B (transB 0/1), C of each broadcast shape, alpha and beta; M = 1 included. */
static void check_gemm_op(int64_t M, int64_t N, int64_t K, int trans_b, int c_shape, int threads, const char *isa) {
    const int64_t ad[2] = {M, K}, bd[2] = {trans_b ? N : K, trans_b ? K : N};
    const int64_t cd_full[2] = {M, N}, cd_row[1] = {N}, cd_col[2] = {M, 1};
    float *a = rand_buf((size_t)(M * K)), *b = rand_buf((size_t)(K * N)), *c = rand_buf((size_t)(M * N));
    const float alpha = 0.5f, beta = 1.5f;
    double *ref = malloc((size_t)(M * N) * sizeof(double));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < K; p++) acc += (double)a[i * K + p] * (trans_b ? b[j * K + p] : b[p * N + j]);
            const double cv = c_shape == 1 ? c[i * N + j] : c_shape == 2 ? c[j] : c_shape == 3 ? c[i] : 0.0;
            ref[i * N + j] = alpha * acc + beta * cv;
        }
    oct_graph *g = oct_graph_new();
    const int av = test_graph_input(g, "a", OCTET_FLOAT, 2, ad);
    const int bv = test_graph_const(g, "b", OCTET_FLOAT, 2, bd, b);
    int cv = -1;
    if (c_shape == 1) cv = test_graph_const(g, "c", OCTET_FLOAT, 2, cd_full, c);
    if (c_shape == 2) cv = test_graph_const(g, "c", OCTET_FLOAT, 1, cd_row, c);
    if (c_shape == 3) cv = test_graph_const(g, "c", OCTET_FLOAT, 2, cd_col, c);
    const int yv = oct_graph_add_value(g, "y", NULL);
    const int ni = oct_graph_add_node(g, "gemm", "Gemm", "", c_shape ? 3 : 2, 1, NULL);
    oct_node *n = &g->nodes[ni];
    n->in[0] = av, n->in[1] = bv, n->out[0] = yv;
    if (c_shape) n->in[2] = cv;
    add_attr(n, "transB", OCT_ATTR_INT)->i = trans_b;
    add_attr(n, "alpha", OCT_ATTR_FLOAT)->f = alpha;
    add_attr(n, "beta", OCT_ATTR_FLOAT)->f = beta;
    const float *inputs[1] = {a};
    float *y = run_single(g, ni, inputs, threads);
    char what[128];
    snprintf(what, sizeof what, "%s gemm %lldx%lldx%lld transB %d C %d t%d", isa, (long long)M, (long long)N,
             (long long)K, trans_b, c_shape, threads);
    expect_close(y, ref, M * N, what);
    oct_graph_free(g);
    free(a), free(b), free(c), free(ref), free(y);
}

/* MatMul with a constant 2-D B shared by a batched A. */
static void check_matmul_op(int64_t batch, int64_t M, int64_t N, int64_t K, int threads, const char *isa) {
    const int64_t ad[3] = {batch, M, K}, bd[2] = {K, N};
    float *a = rand_buf((size_t)(batch * M * K)), *b = rand_buf((size_t)(K * N));
    double *ref = malloc((size_t)(batch * M * N) * sizeof(double));
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t p = 0; p < K; p++) acc += (double)a[(bi * M + i) * K + p] * b[p * N + j];
                ref[(bi * M + i) * N + j] = acc;
            }
    oct_graph *g = oct_graph_new();
    const int av = test_graph_input(g, "a", OCTET_FLOAT, 3, ad);
    const int bv = test_graph_const(g, "b", OCTET_FLOAT, 2, bd, b);
    const int yv = oct_graph_add_value(g, "y", NULL);
    const int ni = oct_graph_add_node(g, "mm", "MatMul", "", 2, 1, NULL);
    oct_node *n = &g->nodes[ni];
    n->in[0] = av, n->in[1] = bv, n->out[0] = yv;
    const float *inputs[1] = {a};
    float *y = run_single(g, ni, inputs, threads);
    char what[128];
    snprintf(what, sizeof what, "%s matmul %lldx%lldx%lldx%lld t%d", isa, (long long)batch, (long long)M,
             (long long)N, (long long)K, threads);
    expect_close(y, ref, batch * M * N, what);
    oct_graph_free(g);
    free(a), free(b), free(ref), free(y);
}

START_TEST(gemm_matmul_packed_b) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nl = levels(isas);
    for (int li = 0; li < nl; li++) {
        select_isa(isas[li]);
        const char *isa = oct_isa_name(isas[li]);
        for (int tb = 0; tb < 2; tb++)
            for (int cs = 0; cs <= 3; cs++) check_gemm_op(1, 1000, 300, tb, cs, 1 + cs % 2, isa);
        check_gemm_op(5, 61, 129, 1, 2, 2, isa);
        check_gemm_op(37, 50, 70, 0, 1, 1, isa);
        check_matmul_op(3, 7, 100, 64, 1, isa);
        check_matmul_op(1, 1, 130, 513, 2, isa);
    }
    test_default_isa();
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("conv_gemm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sgemm_run_matches_ref);
    tcase_add_test(tc, store_transposed_matches_ref);
    tcase_add_test(tc, im2col_matches_definition);
    tcase_add_test(tc, conv_packed_matches_reference);
    tcase_add_test(tc, gemm_matmul_packed_b);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
