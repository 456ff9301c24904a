/* The run's team of threads (engine/team.h):
   - inside a stretch, every oct_parallel call runs each part 0..t'-1 exactly once, with t' the
     smaller of the request and the team, and returns only when all parts have finished;
   - oct_parallel_for and oct_parallel_steal run every item exactly once, inside a stretch and
     outside one (a plain OpenMP region), for empty, single and uneven item counts;
   - a failing node stops the stretch: later nodes do not run and the failure is returned;
   - an int8 block (expansion, depthwise, residual add, pool) gives the same bytes with the team
     as without it (OCTET_NO_TEAM=1), at 2 and 3 threads. */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "engine/team.h"
#include "test_session.h"
#include "test_util.h"

enum { MAX_PARTS = 8, NODES = 40 };

typedef struct {
    _Atomic int runs[MAX_PARTS];
    _Atomic int bad; /* a part saw a thread count other than the expected one */
    int want;        /* the thread count each part must see */
} parts_seen;

static void count_part(void *arg, int tid, int nthreads) {
    parts_seen *s = arg;
    if (nthreads != s->want || tid < 0 || tid >= nthreads) atomic_fetch_add(&s->bad, 1);
    else atomic_fetch_add(&s->runs[tid], 1);
}

typedef struct {
    int team_size, request;
    int fail_at;     /* node that fails, or -1 */
    int nodes_run;
    int parts_wrong; /* calls whose parts did not all run exactly once before oct_parallel returned */
} stretch_state;

static int parts_node(int k, struct oct_team *team, void *state) {
    stretch_state *st = state;
    st->nodes_run++;
    if (k == st->fail_at) return -1;
    const oct_run_ctx ctx = {.threads = st->request, .team = team};
    parts_seen s = {.want = st->request < st->team_size ? st->request : st->team_size};
    if (s.want < 1) s.want = 1;
    oct_parallel(&ctx, st->request, count_part, &s);
    for (int i = 0; i < MAX_PARTS; i++)
        if (atomic_load(&s.runs[i]) != (i < s.want)) st->parts_wrong++;
    if (atomic_load(&s.bad)) st->parts_wrong++;
    return 0;
}

START_TEST(parts_run_once) {
    static const int sizes[] = {2, 3, 4};
    static const int requests[] = {1, 2, 3, 4, 8};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t ri = 0; ri < sizeof requests / sizeof *requests; ri++) {
            stretch_state st = {.team_size = sizes[si], .request = requests[ri], .fail_at = -1};
            ck_assert_int_eq(oct_team_execute(0, NODES, sizes[si], parts_node, &st), 0);
            ck_assert_int_eq(st.nodes_run, NODES);
            ck_assert_msg(st.parts_wrong == 0, "team %d, %d threads asked: %d calls ran parts wrongly", sizes[si],
                          requests[ri], st.parts_wrong);
        }
}
END_TEST

START_TEST(failure_stops_stretch) {
    stretch_state st = {.team_size = 2, .request = 2, .fail_at = 5};
    ck_assert_int_eq(oct_team_execute(0, NODES, 2, parts_node, &st), -1);
    ck_assert_int_eq(st.nodes_run, 6);
    ck_assert_int_eq(st.parts_wrong, 0);
}
END_TEST

typedef struct {
    _Atomic int *seen;
    _Atomic int bad_tid;
    int threads;
} items_seen;

static void count_item(void *arg, int64_t i, int tid) {
    items_seen *s = arg;
    if (tid < 0 || tid >= s->threads) atomic_fetch_add(&s->bad_tid, 1);
    atomic_fetch_add(&s->seen[i], 1);
}

/* Runs both loop forms over each count with ctx (team or not) and checks every item ran once. */
static void check_loops(const oct_run_ctx *ctx, int threads) {
    static const int64_t counts[] = {0, 1, 2, 7, 1000};
    for (int steal = 0; steal < 2; steal++)
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
            const int64_t n = counts[ci];
            items_seen s = {.seen = calloc((size_t)n + 1, sizeof(_Atomic int)), .threads = threads};
            ck_assert_ptr_nonnull(s.seen);
            if (steal) oct_parallel_steal(ctx, threads, n, count_item, &s);
            else oct_parallel_for(ctx, threads, n, count_item, &s);
            for (int64_t i = 0; i < n; i++)
                ck_assert_msg(atomic_load(&s.seen[i]) == 1, "%s, %lld items, %d threads, %s: item %lld ran %d times",
                              steal ? "steal" : "static", (long long)n, threads, ctx->team ? "team" : "no team",
                              (long long)i, atomic_load(&s.seen[i]));
            ck_assert_int_eq(atomic_load(&s.bad_tid), 0);
            free(s.seen);
        }
}

static int loops_node(int k, struct oct_team *team, void *state) {
    (void)k;
    const oct_run_ctx ctx = {.threads = *(int *)state, .team = team};
    check_loops(&ctx, *(int *)state);
    return 0;
}

START_TEST(loops_cover_items) {
    for (int threads = 1; threads <= 3; threads++) {
        const oct_run_ctx plain = {.threads = threads};
        check_loops(&plain, threads);
        int t = threads;
        ck_assert_int_eq(oct_team_execute(0, 3, threads, loops_node, &t), 0);
    }
}
END_TEST

static uint32_t rng_state = 4242u;
static int rand_byte(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (int)(rng_state >> 24);
}

static int q_scalar(oct_graph *g, const char *name, octet_dtype t, int v) {
    const uint8_t b = (uint8_t)v;
    return test_graph_const(g, name, t, 0, NULL, &b);
}

static int f_scalar(oct_graph *g, const char *name, float v) {
    return test_graph_const(g, name, OCTET_FLOAT, 0, NULL, &v);
}

/* A uint8 QLinearConv of x ([1, c, H, W], scale xs / zero point xz): m channels, k x k, group. */
static int qconv(oct_graph *g, int x, int xs, int xz, int64_t c, int64_t m, int64_t k, int64_t group) {
    const int64_t wd[4] = {m, c / group, k, k}, nw = test_numel(4, wd);
    int8_t *w = malloc((size_t)nw);
    float *ws = malloc((size_t)m * sizeof *ws);
    int32_t *bias = malloc((size_t)m * sizeof *bias);
    ck_assert(w && ws && bias);
    for (int64_t i = 0; i < nw; i++) w[i] = (int8_t)(rand_byte() - 128);
    for (int64_t i = 0; i < m; i++) {
        ws[i] = 0.0005f + 0.0001f * (float)(rand_byte() % 16);
        bias[i] = (rand_byte() - 128) * 30;
    }
    const int in[9] = {x, xs, xz, test_graph_const(g, "w", OCTET_INT8, 4, wd, w), test_graph_const(g, "ws", OCTET_FLOAT, 1, &m, ws),
                       q_scalar(g, "wz", OCTET_INT8, 0), xs, xz, test_graph_const(g, "b", OCTET_INT32, 1, &m, bias)};
    free(w), free(ws), free(bias);
    const int node = test_graph_node(g, "", "QLinearConv", 9, in);
    test_attr_ints_fill(g, node, "group", 0, group);
    test_attr_ints_fill(g, node, "kernel_shape", 2, k);
    test_attr_ints_fill(g, node, "pads", 4, k / 2);
    return g->nodes[node].out[0];
}

/* x -> 1x1 expansion -> 3x3 depthwise -> QLinearAdd with the expansion -> global pool; outputs
   the sum and the pool: a stretch of OCT_OP_TEAM nodes, as in an int8 MobileNet block. The same
   weights on every call. */
static oct_graph *block_graph(void) {
    rng_state = 4242u;
    oct_graph *g = oct_graph_new();
    g->opset = 13;
    g->ms_opset = 1;
    g->name = strdup("team");
    const int64_t xd[4] = {1, 16, 40, 40};
    const int x = test_graph_input(g, "x", OCTET_UINT8, 4, xd);
    const int s = f_scalar(g, "s", 0.05f), z = q_scalar(g, "z", OCTET_UINT8, 128);
    const int e = qconv(g, x, s, z, 16, 48, 1, 1);
    const int d = qconv(g, e, s, z, 48, 48, 3, 48);
    const int sum = test_graph_node_out(g, "com.microsoft", "QLinearAdd", 8, (int[]){e, s, z, d, s, z, s, z});
    const int pool = test_graph_node_out(g, "com.microsoft", "QLinearGlobalAveragePool", 5, (int[]){sum, s, z, s, z});
    g->outputs = malloc(2 * sizeof(int));
    ck_assert(g->outputs != NULL);
    g->outputs[0] = sum;
    g->outputs[1] = pool;
    g->n_outputs = 2;
    return g;
}

START_TEST(block_same_with_team) {
    const int64_t n = 16 * 40 * 40;
    uint8_t *x = malloc((size_t)n);
    ck_assert(x != NULL);
    for (int64_t i = 0; i < n; i++) x[i] = (uint8_t)(i * 2654435761u >> 13);
    const octet_tensor in = {OCTET_UINT8, 4, {1, 16, 40, 40}, x};
    for (int threads = 2; threads <= 3; threads++) {
        octet_tensor out[2][2];
        for (int team = 0; team < 2; team++) {
            if (team) unsetenv("OCTET_NO_TEAM");
            else setenv("OCTET_NO_TEAM", "1", 1);
            oct_graph *g = block_graph();
            test_plan_run(g, threads, 4, 1, &in, 2, out[team]);
            oct_graph_free(g);
        }
        unsetenv("OCTET_NO_TEAM");
        for (int o = 0; o < 2; o++) {
            const int64_t len = test_numel(out[0][o].rank, out[0][o].dims);
            ck_assert_int_eq(len, test_numel(out[1][o].rank, out[1][o].dims));
            ck_assert_msg(!memcmp(out[0][o].data, out[1][o].data, (size_t)len), "%d threads: output %d differs", threads,
                          o);
            octet_tensor_release(&out[0][o]);
            octet_tensor_release(&out[1][o]);
        }
    }
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("team");
    TCase *tc = tcase_create("team");
    tcase_add_test(tc, parts_run_once);
    tcase_add_test(tc, failure_stops_stretch);
    tcase_add_test(tc, loops_cover_items);
    tcase_add_test(tc, block_same_with_team);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
