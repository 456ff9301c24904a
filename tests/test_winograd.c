/* Winograd F(4x4, 3x3) convolution: the SIMD transforms against their ref twins on every ISA level
   the CPU supports (odd planes, padding on every side, tile ranges that cross tile rows, guard cells
   around every output), and the whole Conv strategy against a direct convolution in double (bias,
   residual, every activation, several images, one and several threads), plus the plan-time choice
   and its OCTET_WINOGRAD switch. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "engine/ops/nn/conv.h"
#include "kernels/kernels.h"
#include "kernels/ref/winograd.h"
#include "test_session.h"
#include "test_util.h"

static const float GUARD = 1234.5f;

static uint32_t rng_state = 4242u;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.f - 1.f;
}
static float *rand_buf(int64_t n) {
    float *b = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(b);
    for (int64_t i = 0; i < n; i++) b[i] = frand();
    return b;
}
static float *guard_buf(int64_t n) {
    float *b = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(b);
    for (int64_t i = 0; i < n; i++) b[i] = GUARD;
    return b;
}

static void select_isa(oct_isa isa) {
    test_use_isa(isa);
    ck_assert_msg(oct_kernels()->isa == isa, "OCTET_ISA=%s selected %s", oct_isa_name(isa), oct_kernels()->name);
}
/* Supported levels above ref whose transform set is not one already listed. */
static int distinct_levels(oct_isa isas[OCT_ISA_COUNT]) {
    const oct_wino_kernel_set *seen[OCT_ISA_COUNT];
    int count = 0;
    for (int isa = OCT_ISA_REF + 1; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        select_isa((oct_isa)isa);
        const oct_wino_kernel_set *ks = oct_wino_kernels();
        int dup = ks == &oct_ref_wino_kernels;
        for (int i = 0; i < count; i++) dup |= seen[i] == ks;
        if (dup) continue;
        seen[count] = ks;
        isas[count++] = (oct_isa)isa;
    }
    test_default_isa();
    return count;
}

/* ---------------------------------------------------------------- transforms vs ref */

typedef struct {
    int64_t in_h, in_w, pad_t, pad_l, pad_b, pad_r;
} plane_case;

static const plane_case planes[] = {
    {1, 1, 1, 1, 1, 1},   {4, 4, 0, 0, 0, 0},   {5, 7, 1, 1, 1, 1},   {9, 6, 0, 2, 1, 0},
    {14, 14, 1, 1, 1, 1}, {13, 37, 2, 1, 0, 2}, {23, 70, 1, 1, 1, 1}, {8, 131, 1, 0, 1, 3},
};

static oct_wino_geom geom_of(const plane_case *c) {
    oct_wino_geom g = {.in_h = c->in_h, .in_w = c->in_w, .pad_t = c->pad_t, .pad_l = c->pad_l};
    g.out_h = c->in_h + c->pad_t + c->pad_b - 2;
    g.out_w = c->in_w + c->pad_l + c->pad_r - 2;
    g.tiles_x = (g.out_w + 3) / 4;
    return g;
}

/* A few ulps of the largest magnitude involved: the SIMD twins use FMAs and other groupings, but a
   wrong or missing term (of the inputs' size, about 1) cannot hide in it. */
static void expect_near(const float *got, const float *want, int64_t n, float tol, const char *what,
                        const char *isa) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol * (1.f + fabsf(want[i])) || (got[i] == want[i]),
                      "%s %s[%lld]: %.7g vs ref %.7g", isa, what, (long long)i, (double)got[i], (double)want[i]);
}

/* The input transform in the plain layout (one group wider than nt, an extra channel row between
   positions) and in packed-operand layouts of several strip widths, across which one vector of
   tiles is split; everything outside the written slots stays GUARD. */
static void check_input(const oct_wino_kernel_set *ks, const char *isa, const plane_case *pc, int64_t channels,
                        int64_t t0, int64_t nt) {
    const oct_wino_geom g = geom_of(pc);
    float *x = rand_buf(channels * g.in_h * g.in_w);
    const int64_t groups[] = {nt + 3, 1, 4, 6, 8, 12, 16, 48};
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
        const int64_t group = groups[gi], gs = (channels + 1) * group;
        const int64_t ps = ((nt + group - 1) / group) * gs + 5, n = OCT_WINO_POS * ps;
        float *v = guard_buf(n), *r = guard_buf(n);
        oct_ref_wino_input(&g, x, channels, t0, nt, r, ps, group, gs);
        ks->input(&g, x, channels, t0, nt, v, ps, group, gs);
        expect_near(v, r, n, 1e-6f, "input", isa);
        int64_t written = 0;
        for (int64_t i = 0; i < n; i++) {
            ck_assert_msg((v[i] == GUARD) == (r[i] == GUARD), "%s input (group %lld) wrote outside at %lld", isa,
                          (long long)group, (long long)i);
            written += r[i] != GUARD;
        }
        ck_assert_int_eq(written, OCT_WINO_POS * channels * nt); /* the ref wrote every slot once */
        free(v);
        free(r);
    }
    free(x);
}

static void check_output(const oct_wino_kernel_set *ks, const char *isa, const plane_case *pc, int64_t channels,
                         int64_t t0, int64_t nt, int with_bias, int with_res, oct_act act) {
    const oct_wino_geom g = geom_of(pc);
    const int64_t ld = nt + 5, ps = channels * ld + 7, plane = g.out_h * g.out_w;
    float *y = rand_buf(OCT_WINO_POS * ps);
    float *bias = with_bias ? rand_buf(channels) : NULL;
    float *res = with_res ? rand_buf(channels * plane) : NULL;
    float *o = guard_buf(channels * plane), *r = guard_buf(channels * plane);
    oct_ref_wino_output(&g, y, ps, ld, channels, t0, nt, bias, res, &act, r);
    ks->output(&g, y, ps, ld, channels, t0, nt, bias, res, &act, o);
    /* Both leave the pixels of the other tiles at GUARD, so a stray write shows as a difference. */
    expect_near(o, r, channels * plane, 2e-6f, "output", isa);
    free(y);
    free(bias);
    free(res);
    free(o);
    free(r);
}

/* The tile-major variant (channels contiguous): channel counts below, at and above a vector. */
static void check_output_t(const oct_wino_kernel_set *ks, const char *isa, const plane_case *pc, int64_t channels,
                           int64_t t0, int64_t nt, int with_bias, int with_res, oct_act act) {
    const oct_wino_geom g = geom_of(pc);
    const int64_t ld = channels + 3, ps = nt * ld + 7, plane = g.out_h * g.out_w;
    float *y = rand_buf(OCT_WINO_POS * ps);
    float *bias = with_bias ? rand_buf(channels) : NULL;
    float *res = with_res ? rand_buf(channels * plane) : NULL;
    float *o = guard_buf(channels * plane), *r = guard_buf(channels * plane);
    oct_ref_wino_output_t(&g, y, ps, ld, channels, t0, nt, bias, res, &act, r);
    ks->output_t(&g, y, ps, ld, channels, t0, nt, bias, res, &act, o);
    expect_near(o, r, channels * plane, 2e-6f, "output_t", isa);
    free(y);
    free(bias);
    free(res);
    free(o);
    free(r);
}

START_TEST(transforms_match_ref) {
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = distinct_levels(isas);
    const oct_act acts[] = {{0, 0, 0}, {1, 0, 0}, {2, -0.5f, 0.75f}, {3, 0.1f, 0}, {4, 0, 0},
                            {5, 0, 0}, {6, 0, 0}, {7, 0.2f, 0.5f}, {8, 0, 0}};
    for (int li = 0; li < nisa; li++) {
        select_isa(isas[li]);
        const oct_wino_kernel_set *ks = oct_wino_kernels();
        for (size_t pi = 0; pi < sizeof planes / sizeof planes[0]; pi++) {
            const oct_wino_geom g = geom_of(&planes[pi]);
            const int64_t tiles = g.tiles_x * ((g.out_h + 3) / 4);
            /* All tiles; a range starting mid-row and crossing rows; a single tile at the end. */
            const int64_t ranges[3][2] = {{0, tiles}, {tiles / 3, tiles - tiles / 3 - tiles / 5}, {tiles - 1, 1}};
            for (int ri = 0; ri < 3; ri++) {
                if (ranges[ri][1] < 1) continue;
                check_input(ks, ks->name, &planes[pi], 3, ranges[ri][0], ranges[ri][1]);
                for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
                    check_output(ks, ks->name, &planes[pi], 2, ranges[ri][0], ranges[ri][1], ai % 2 == 0,
                                 ai % 3 != 1, acts[ai]);
                for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
                    check_output_t(ks, ks->name, &planes[pi], (int64_t[]){3, 8, 16, 21}[ai % 4], ranges[ri][0],
                                   ranges[ri][1], ai % 2 == 0, ai % 3 != 1, acts[ai]);
            }
        }
    }
    test_default_isa();
}
END_TEST

/* ---------------------------------------------------------------- the Conv strategy */

typedef struct {
    int64_t N, C, M, H, W, pads[4]; /* pads: top, left, bottom, right */
    int bias, residual;
    oct_act act;
} conv_case;

static oct_attr *add_attr(oct_node *n, const char *name, oct_attr_type t) {
    n->attrs = realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1));
    ck_assert_ptr_nonnull(n->attrs);
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = t;
    return a;
}
static void add_ints(oct_node *n, const char *name, int cnt, const int64_t *v) {
    oct_attr *a = add_attr(n, name, OCT_ATTR_INTS);
    a->n = cnt;
    a->ints = malloc(sizeof(int64_t) * (size_t)cnt);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}
static int add_value(oct_graph *g, const char *name, oct_value_kind kind, int rank, const int64_t *dims,
                     const float *const_data) {
    const int v = oct_graph_add_value(g, name, NULL);
    ck_assert_int_ge(v, 0);
    oct_value *val = &g->values[v];
    if (const_data) {
        int64_t n = 1;
        for (int i = 0; i < rank; i++) n *= dims[i];
        float *d = malloc(sizeof(float) * (size_t)n);
        memcpy(d, const_data, sizeof(float) * (size_t)n);
        oct_value_set_const(val, OCTET_FLOAT, rank, dims, d);
    } else if (kind == OCT_VAL_INPUT) {
        val->kind = kind;
        val->dtype = OCTET_FLOAT;
        val->rank = rank;
        memcpy(val->dims, dims, sizeof(int64_t) * (size_t)rank);
    }
    return v;
}

/* A one-node Conv graph planned on its own; weights constant unless weights_as_input. */
typedef struct {
    oct_graph *g;
    oct_node *n;
    int xv, wv, bv, rv, yv;
} conv_graph;

static conv_graph build(const conv_case *c, const float *w, const float *b, int weights_as_input) {
    conv_graph cg = {.g = oct_graph_new(), .rv = -1, .bv = -1};
    cg.g->opset = 17;
    const int64_t xd[4] = {c->N, c->C, c->H, c->W}, wd[4] = {c->M, c->C, 3, 3};
    cg.xv = add_value(cg.g, "x", OCT_VAL_INPUT, 4, xd, NULL);
    cg.wv = add_value(cg.g, "w", OCT_VAL_INPUT, 4, wd, weights_as_input ? NULL : w);
    if (c->bias) cg.bv = add_value(cg.g, "b", OCT_VAL_INPUT, 1, &c->M, b);
    cg.yv = add_value(cg.g, "y", OCT_VAL_ACTIVATION, 0, NULL, NULL);
    const int ni = oct_graph_add_node(cg.g, "conv", "Conv", "", c->bias ? 3 : 2, 1, NULL);
    ck_assert_int_ge(ni, 0);
    cg.n = &cg.g->nodes[ni];
    cg.n->in[0] = cg.xv;
    cg.n->in[1] = cg.wv;
    if (c->bias) cg.n->in[2] = cg.bv;
    cg.n->out[0] = cg.yv;
    const int64_t ks[2] = {3, 3}, pads[4] = {c->pads[0], c->pads[1], c->pads[2], c->pads[3]};
    add_ints(cg.n, "kernel_shape", 2, ks);
    add_ints(cg.n, "pads", 4, pads);
    cg.n->epi.act = (oct_act_kind)c->act.kind;
    cg.n->epi.alpha = c->act.alpha;
    cg.n->epi.beta = c->act.beta;
    cg.n->epi.residual = -1;
    if (c->residual) {
        const int64_t oh = c->H + c->pads[0] + c->pads[2] - 2, ow = c->W + c->pads[1] + c->pads[3] - 2;
        const int64_t rd[4] = {c->N, c->M, oh, ow};
        cg.rv = add_value(cg.g, "r", OCT_VAL_INPUT, 4, rd, NULL);
        cg.n->epi.residual = cg.rv;
    }
    cg.n->op = oct_op_find("", "Conv");
    ck_assert_ptr_nonnull(cg.n->op);
    octet_error err = {0};
    ck_assert_msg(cg.n->op->infer(cg.g, cg.n, &err) == 0, "infer: %s", err.msg);
    return cg;
}

static int mode_of(const conv_graph *cg) { return ((const conv_params *)cg->n->params)->mode; }

static void run(const conv_graph *cg, const float *x, const float *w, const float *b, const float *r, float *y,
                int threads) {
    oct_tensor *t = calloc((size_t)cg->g->n_values, sizeof *t);
    for (int v = 0; v < cg->g->n_values; v++) t[v] = oct_value_tensor(&cg->g->values[v]);
    t[cg->xv].data = (void *)x;
    if (!t[cg->wv].data) t[cg->wv].data = (void *)w;
    if (cg->bv >= 0) t[cg->bv].data = (void *)b;
    if (cg->rv >= 0) t[cg->rv].data = (void *)r;
    t[cg->yv].data = y;
    void *ws = malloc(cg->n->workspace_bytes + 1);
    oct_run_ctx ctx = {cg->g, t, ws, threads, NULL};
    octet_error err = {0};
    ck_assert_msg(cg->n->op->run(&ctx, cg->n, &err) == 0, "run: %s", err.msg);
    free(ws);
    free(t);
}

/* Direct convolution in double; sums[i] gets the sum of |terms| of output i, for the error bound. */
static void direct(const conv_case *c, const float *x, const float *w, const float *b, const float *r,
                   double *y, double *sums) {
    const int64_t oh = c->H + c->pads[0] + c->pads[2] - 2, ow = c->W + c->pads[1] + c->pads[3] - 2;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = b ? b[m] : 0.0, abs_sum = b ? fabs(b[m]) : 0.0;
                    for (int64_t ch = 0; ch < c->C; ch++)
                        for (int64_t a = 0; a < 3; a++)
                            for (int64_t e = 0; e < 3; e++) {
                                const int64_t ii = i - c->pads[0] + a, jj = j - c->pads[1] + e;
                                if (ii < 0 || ii >= c->H || jj < 0 || jj >= c->W) continue;
                                const double term = (double)x[((n * c->C + ch) * c->H + ii) * c->W + jj] *
                                                    w[((m * c->C + ch) * 3 + a) * 3 + e];
                                acc += term;
                                abs_sum += fabs(term);
                            }
                    const int64_t o = ((n * c->M + m) * oh + i) * ow + j;
                    if (r) {
                        acc += r[o];
                        abs_sum += fabs(r[o]);
                    }
                    y[o] = oct_act_apply(&c->act, (float)acc);
                    sums[o] = abs_sum;
                }
}

static const conv_case conv_cases[] = {
    /* N  C   M   H   W   pads t l b r   bias res act */
    {1, 3, 4, 5, 7, {1, 1, 1, 1}, 1, 0, {0, 0, 0}},
    {2, 5, 9, 9, 6, {0, 2, 1, 0}, 0, 1, {1, 0, 0}},
    {1, 16, 24, 14, 14, {1, 1, 1, 1}, 1, 1, {1, 0, 0}},
    {1, 8, 8, 1, 1, {1, 1, 1, 1}, 1, 0, {2, 0.f, 6.f}},
    {1, 4, 12, 13, 37, {2, 1, 0, 2}, 1, 0, {5, 0, 0}},
    {2, 12, 20, 23, 30, {1, 1, 1, 1}, 1, 1, {3, 0.1f, 0}},
    /* Several tile blocks and output-channel blocks per image. */
    {1, 64, 72, 40, 41, {1, 1, 1, 1}, 1, 1, {1, 0, 0}},
    /* Over 256 tiles per image: tiles as the GEMMs' columns instead of their rows. */
    {1, 12, 40, 66, 67, {1, 1, 1, 1}, 1, 1, {1, 0, 0}},
    {2, 6, 10, 70, 63, {1, 0, 1, 2}, 0, 1, {3, 0.1f, 0}},
};

START_TEST(conv_matches_direct) {
    setenv("OCTET_WINOGRAD", "1", 1);
    const int many = omp_get_max_threads() > 1 ? omp_get_max_threads() : 3;
    oct_isa levels[OCT_ISA_COUNT];
    int nl = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++)
        if (oct_isa_supported((oct_isa)isa)) levels[nl++] = (oct_isa)isa;
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++) {
        const conv_case *c = &conv_cases[ci];
        const int64_t oh = c->H + c->pads[0] + c->pads[2] - 2, ow = c->W + c->pads[1] + c->pads[3] - 2;
        const int64_t ny = c->N * c->M * oh * ow;
        float *x = rand_buf(c->N * c->C * c->H * c->W), *w = rand_buf(c->M * c->C * 9), *b = rand_buf(c->M);
        float *r = c->residual ? rand_buf(ny) : NULL, *y = malloc(sizeof(float) * (size_t)ny);
        double *want = malloc(sizeof(double) * (size_t)ny), *sums = malloc(sizeof(double) * (size_t)ny);
        direct(c, x, w, c->bias ? b : NULL, r, want, sums);
        for (int li = 0; li < nl; li++) {
            select_isa(levels[li]);
            conv_graph cg = build(c, w, b, 0);
            ck_assert_int_eq(mode_of(&cg), CONV_WINOGRAD);
            for (int threads = 1; threads <= many; threads += many - 1) {
                for (int64_t i = 0; i < ny; i++) y[i] = GUARD;
                run(&cg, x, w, b, r, y, threads);
                /* F(4,3) loses a few bits to its +-8 and 1/24 coefficients: within 2e-6 of the terms'
                   magnitude, where a wrong or missing term (about 1/C of it) is far outside. */
                for (int64_t i = 0; i < ny; i++)
                    ck_assert_msg(fabs(y[i] - want[i]) <= 1e-6 + 2e-6 * sums[i],
                                  "case %zu %s threads %d y[%lld] = %.7g, direct %.7g (terms %.3g)", ci,
                                  oct_isa_name(levels[li]), threads, (long long)i, (double)y[i], want[i], sums[i]);
            }
            oct_graph_free(cg.g);
        }
        free(x);
        free(w);
        free(b);
        free(r);
        free(y);
        free(want);
        free(sums);
    }
    test_default_isa();
    unsetenv("OCTET_WINOGRAD");
}
END_TEST

START_TEST(plan_choice_and_switch) {
    const conv_case wide = {1, 64, 64, 56, 56, {1, 1, 1, 1}, 1, 0, {1, 0, 0}};
    const conv_case deep = {1, 64, 64, 7, 7, {1, 1, 1, 1}, 1, 0, {1, 0, 0}};
    float *w = rand_buf(64 * 64 * 9), *b = rand_buf(64);
    unsetenv("OCTET_WINOGRAD");
    conv_graph cg = build(&wide, w, b, 0);
    ck_assert_int_eq(mode_of(&cg), CONV_WINOGRAD);
    ck_assert_msg(cg.n->workspace_bytes > 0, "Winograd plans a workspace");
    oct_graph_free(cg.g);
    cg = build(&deep, w, b, 0); /* 4 tiles: too few to reuse the transformed weights */
    ck_assert_int_eq(mode_of(&cg), CONV_IM2COL);
    oct_graph_free(cg.g);
    cg = build(&wide, w, b, 1); /* weights only known at run time */
    ck_assert_int_eq(mode_of(&cg), CONV_IM2COL);
    oct_graph_free(cg.g);
    setenv("OCTET_WINOGRAD", "0", 1);
    cg = build(&wide, w, b, 0);
    ck_assert_int_eq(mode_of(&cg), CONV_IM2COL);
    oct_graph_free(cg.g);
    setenv("OCTET_WINOGRAD", "1", 1);
    cg = build(&deep, w, b, 0);
    ck_assert_int_eq(mode_of(&cg), CONV_WINOGRAD);
    oct_graph_free(cg.g);
    unsetenv("OCTET_WINOGRAD");
    free(w);
    free(b);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("winograd");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, transforms_match_ref);
    tcase_add_test(tc, conv_matches_direct);
    tcase_add_test(tc, plan_choice_and_switch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
