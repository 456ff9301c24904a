/* Thread work splitting for 2-thread speed (engine/ops/nn/steal_range.h and the channel split):
   - nn_steal hands out every item exactly once for any team size, the owner's range in order,
     then the others' from the back; item counts it cannot hold are refused;
   - a pointwise conv feeding a depthwise conv plans an output-channel split (int8 and fp32), one
     feeding anything else does not, and the two-node network's output is the same, bit for bit, for
     1, 2 and 3 threads. */
#include <check.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/ops/nn/conv.h"
#include "engine/ops/nn/steal_range.h"
#include "engine/ops/quant/qconv.h"
#include "engine/plan.h"
#include "test_session.h"
#include "test_util.h"

START_TEST(each_item_once) {
    static const int64_t counts[] = {0, 1, 2, 7, 100, 1001};
    static const int teams[] = {1, 2, 3, 5, NN_STEAL_MAX_PARTS + 4};
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
        for (size_t ti = 0; ti < sizeof teams / sizeof *teams; ti++) {
            const int64_t items = counts[ci];
            int *seen = calloc((size_t)items + 1, sizeof *seen);
            nn_steal s;
            ck_assert_int_eq(nn_steal_init(&s, items, teams[ti]), 0);
#pragma omp parallel num_threads(teams[ti])
            for (int64_t it; (it = nn_steal_next(&s, omp_get_thread_num())) >= 0;) {
#pragma omp atomic
                seen[it]++;
            }
            for (int64_t i = 0; i < items; i++)
                ck_assert_msg(seen[i] == 1, "%lld items, %d threads: item %lld ran %d times", (long long)items,
                              teams[ti], (long long)i, seen[i]);
            free(seen);
        }
}
END_TEST

START_TEST(own_range_first) {
    nn_steal s;
    ck_assert_int_eq(nn_steal_init(&s, 10, 2), 0);
    /* thread 0 alone: its half in order, then thread 1's half from the back */
    static const int64_t want0[] = {0, 1, 2, 3, 4, 9, 8, 7};
    for (size_t i = 0; i < sizeof want0 / sizeof *want0; i++) ck_assert_int_eq(nn_steal_next(&s, 0), want0[i]);
    /* thread 1 resumes what is left of its range from the front */
    ck_assert_int_eq(nn_steal_next(&s, 1), 5);
    ck_assert_int_eq(nn_steal_next(&s, 0), 6);
    ck_assert_int_eq(nn_steal_next(&s, 1), -1);
    ck_assert_int_eq(nn_steal_next(&s, 0), -1);
    /* too many items: refused, and nothing is handed out */
    ck_assert_int_eq(nn_steal_init(&s, NN_STEAL_MAX_ITEMS + 1, 2), -1);
    ck_assert_int_eq(nn_steal_next(&s, 0), -1);
    ck_assert_int_eq(nn_steal_init(&s, -1, 2), -1);
    ck_assert_int_eq(nn_steal_next(&s, 1), -1);
}
END_TEST

enum { C = 8, M = 48, H = 40, W = 37 }; /* over the single-thread size of a conv (qconv.c SPLIT_MIN_MACS) */

static uint32_t rng = 12345u;
static int irand(int lo, int hi) {
    rng = rng * 1664525u + 1013904223u;
    return lo + (int)((rng >> 8) % (uint32_t)(hi - lo + 1));
}

/* x -> pointwise conv (C -> M) -> [depthwise 3x3 conv | Relu] -> y, int8 (QLinearConv) or fp32. */
static oct_graph *build(int q8, int depthwise_next) {
    oct_graph *g = oct_graph_new();
    const int64_t xd[4] = {1, C, H, W}, w1d[4] = {M, C, 1, 1}, w2d[4] = {M, 1, 3, 3}, md[1] = {M};
    const int x = test_graph_input(g, "x", q8 ? OCTET_UINT8 : OCTET_FLOAT, 4, xd);
    int8_t w1q[M * C], w2q[M * 9];
    float w1f[M * C], w2f[M * 9], sc[M];
    int32_t bq[M];
    for (int i = 0; i < M * C; i++) w1q[i] = (int8_t)irand(-127, 127), w1f[i] = (float)irand(-100, 100) / 64.f;
    for (int i = 0; i < M * 9; i++) w2q[i] = (int8_t)irand(-127, 127), w2f[i] = (float)irand(-100, 100) / 64.f;
    for (int i = 0; i < M; i++) sc[i] = 0.001f * (float)irand(1, 9), bq[i] = irand(-3000, 3000);
    const uint8_t zp = 7;
    int h;
    if (q8) {
        const int in[9] = {x, test_graph_f32(g, "xs", 0.05f), test_graph_const(g, "xz", OCTET_UINT8, 0, NULL, &zp),
                           test_graph_const(g, "w1", OCTET_INT8, 4, w1d, w1q), test_graph_const(g, "s1", OCTET_FLOAT, 1, md, sc),
                           test_graph_const(g, "z1", OCTET_INT8, 1, md, (int8_t[M]){0}), test_graph_f32(g, "hs", 0.1f),
                           test_graph_const(g, "hz", OCTET_UINT8, 0, NULL, &zp), test_graph_const(g, "b1", OCTET_INT32, 1, md, bq)};
        const int k1 = test_graph_node(g, "", "QLinearConv", 9, in); /* may move g->nodes */
        h = g->nodes[k1].out[0];
    } else {
        const int in[2] = {x, test_graph_const(g, "w1", OCTET_FLOAT, 4, w1d, w1f)};
        const int k1 = test_graph_node(g, "", "Conv", 2, in);
        h = g->nodes[k1].out[0];
    }
    int k;
    if (!depthwise_next) {
        k = test_graph_node(g, "", "Relu", 1, &h);
    } else if (q8) {
        const int in[9] = {h, test_graph_f32(g, "hs2", 0.1f), test_graph_const(g, "hz2", OCTET_UINT8, 0, NULL, &zp),
                           test_graph_const(g, "w2", OCTET_INT8, 4, w2d, w2q), test_graph_const(g, "s2", OCTET_FLOAT, 1, md, sc),
                           test_graph_const(g, "z2", OCTET_INT8, 1, md, (int8_t[M]){0}), test_graph_f32(g, "ys", 0.2f),
                           test_graph_const(g, "yz", OCTET_UINT8, 0, NULL, &zp), test_graph_const(g, "b2", OCTET_INT32, 1, md, bq)};
        k = test_graph_node(g, "", "QLinearConv", 9, in);
    } else {
        const int in[2] = {h, test_graph_const(g, "w2", OCTET_FLOAT, 4, w2d, w2f)};
        k = test_graph_node(g, "", "Conv", 2, in);
    }
    if (depthwise_next) {
        test_attr_ints_fill(g, k, "group", 0, M);
        test_attr_ints_fill(g, k, "pads", 4, 1);
    }
    test_push_int(&g->outputs, &g->n_outputs, g->nodes[k].out[0]);
    return g;
}

/* Runs g with `threads` (planned for `threads` as well) into y; returns whether the pointwise conv
   planned the channel split. */
static int run(oct_graph *g, int q8, int threads, const void *x, void *y) {
    omp_set_num_threads(threads); /* the plan sizes its work for omp_get_max_threads() */
    octet_model m = {.graph = g};
    octet_error err = {0};
    const octet_session_options opts = {.threads = threads};
    octet_session *s = octet_session_create(&m, &opts, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    const octet_tensor in = {q8 ? OCTET_UINT8 : OCTET_FLOAT, 4, {1, C, H, W}, (void *)x};
    octet_tensor out = {q8 ? OCTET_UINT8 : OCTET_FLOAT, 4, {1, M, H, W}, y};
    ck_assert_msg(octet_session_run_into(s, 1, NULL, &in, 1, NULL, &out, &err) == 0, "%s", err.msg);
    octet_session_free(s);
    /* the same plan, built again to look at its pointwise node: the first live conv */
    uint64_t needed = 0;
    oct_plan *plan = oct_model_plan(&m, NULL, NULL, 1, &needed, &err);
    ck_assert_msg(plan != NULL, "%s", err.msg);
    const oct_graph *pg = plan->g;
    int split = -1;
    for (int i = 0; i < pg->n_nodes && split < 0; i++) {
        const oct_node *n = &pg->nodes[i];
        if (n->dead || !n->params) continue;
        if (strcmp(n->op_type, "QLinearConv") == 0) split = ((const qconv_params *)n->params)->split_channels;
        else if (strcmp(n->op_type, "Conv") == 0) split = ((const conv_params *)n->params)->split_channels;
    }
    oct_model_plan_free(&m, plan);
    return split;
}

START_TEST(channel_split_same_result) {
    const int q8 = _i;
    const size_t esz = q8 ? 1 : sizeof(float), ysize = (size_t)M * H * W * esz;
    uint8_t xq[C * H * W];
    float xf[C * H * W];
    for (int i = 0; i < C * H * W; i++) xq[i] = (uint8_t)irand(0, 255), xf[i] = (float)irand(-200, 200) / 64.f;
    const void *x = q8 ? (const void *)xq : (const void *)xf;
    const int saved = omp_get_max_threads();
    for (int dw = 0; dw <= 1; dw++) {
        oct_graph *g = build(q8, dw);
        char *ref = malloc(ysize), *got = malloc(ysize);
        ck_assert_int_eq(run(g, q8, 1, x, ref), 0);
        for (int threads = 2; threads <= 3; threads++) {
            memset(got, 0xa5, ysize);
            const int split = run(g, q8, threads, x, got);
            ck_assert_msg(split == dw, "%s, %d threads, %s next: split_channels %d", q8 ? "int8" : "fp32", threads,
                          dw ? "depthwise" : "Relu", split);
            ck_assert_msg(memcmp(ref, got, ysize) == 0, "%s, %d threads, %s next: output differs from 1 thread",
                          q8 ? "int8" : "fp32", threads, dw ? "depthwise" : "Relu");
        }
        free(ref);
        free(got);
        oct_graph_free(g);
    }
    omp_set_num_threads(saved);
}
END_TEST

int main(void) {
    Suite *s = suite_create("steal_range");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, each_item_once);
    tcase_add_test(tc, own_range_first);
    tcase_add_loop_test(tc, channel_split_same_result, 0, 2);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
