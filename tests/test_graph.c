/* Graph IR, topological sort and the arena memory planner. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/plan.h"
#include "test_session.h"

/* A chain of n nodes v0 -> v1 -> ... -> vn, each value `bytes` floats, plus optional skips. */
static oct_graph *chain(int n, int64_t elems) {
    oct_graph *g = oct_graph_new();
    char name[32];
    for (int i = 0; i <= n; i++) {
        snprintf(name, sizeof name, "v%d", i);
        int v = oct_graph_add_value(g, name, NULL);
        g->values[v].dtype = OCTET_FLOAT;
        g->values[v].rank = 1;
        g->values[v].dims[0] = elems;
    }
    g->values[0].kind = OCT_VAL_INPUT;
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = 0;
    g->n_inputs = 1;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = n;
    g->n_outputs = 1;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "n%d", i);
        int k = oct_graph_add_node(g, name, "Relu", "", 1, 1, NULL);
        g->nodes[k].in[0] = i;
        g->nodes[k].out[0] = i + 1;
    }
    return g;
}

static oct_plan *plan_for(oct_graph *g) {
    oct_plan *p = calloc(1, sizeof *p);
    p->g = g;
    ck_assert_int_eq(oct_graph_toposort(g, NULL), 0);
    oct_graph_update_uses(g);
    p->exec = malloc(sizeof(int) * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) p->exec[p->n_exec++] = g->order[i];
    ck_assert_int_eq(oct_plan_memory(p, NULL), 0);
    return p;
}

/* No two buffers that are live at the same step may overlap in the arena. */
static void assert_no_overlap(const oct_plan *p) {
    const oct_graph *g = p->g;
    int nv = g->n_values;
    int *first = malloc(sizeof(int) * (size_t)nv), *last = malloc(sizeof(int) * (size_t)nv);
    for (int v = 0; v < nv; v++) first[v] = last[v] = -1;
    for (int s = 0; s < p->n_exec; s++) {
        const oct_node *n = &g->nodes[p->exec[s]];
        for (int j = 0; j < n->n_out; j++) if (first[n->out[j]] < 0) first[n->out[j]] = last[n->out[j]] = s;
        for (int j = 0; j < n->n_in; j++) last[n->in[j]] = s;
    }
    for (int a = 0; a < nv; a++) {
        const oct_value *va = &g->values[a];
        if (!va->planned) continue;
        size_t sa = (size_t)oct_value_numel(va) * 4;
        ck_assert(va->arena_offset + sa <= p->arena_bytes);
        for (int b = a + 1; b < nv; b++) {
            const oct_value *vb = &g->values[b];
            if (!vb->planned) continue;
            if (last[a] < first[b] || last[b] < first[a]) continue;
            size_t sb = (size_t)oct_value_numel(vb) * 4;
            ck_assert_msg(va->arena_offset + sa <= vb->arena_offset || vb->arena_offset + sb <= va->arena_offset,
                          "values %s and %s overlap", va->name, vb->name);
        }
    }
    free(first);
    free(last);
}

START_TEST(chain_reuses_two_slots) {
    oct_graph *g = chain(10, 1000);
    oct_plan *p = plan_for(g);
    assert_no_overlap(p);
    /* v1..v9 are in the arena (v10 is the output); a chain needs only two live buffers. */
    ck_assert_uint_eq(p->arena_bytes, 2 * 4032);
    oct_plan_free(p);
}
END_TEST

START_TEST(skip_connections_keep_values_alive) {
    oct_graph *g = chain(8, 256);
    /* node 5 also reads v1: v1 stays live from step 0 to 5. */
    oct_node *n5 = &g->nodes[5];
    n5->in = realloc(n5->in, 2 * sizeof(int));
    n5->in[1] = 1;
    n5->n_in = 2;
    oct_plan *p = plan_for(g);
    assert_no_overlap(p);
    ck_assert_uint_eq(p->arena_bytes, 3 * 1024);
    oct_plan_free(p);
}
END_TEST

START_TEST(workspace_is_planned_per_node) {
    oct_graph *g = chain(3, 100);
    g->nodes[1].workspace_bytes = 5000;
    oct_plan *p = plan_for(g);
    assert_no_overlap(p);
    /* The workspace of node 1 overlaps neither v1 (its input) nor v2 (its output). */
    size_t ws = g->nodes[1].workspace_offset;
    const oct_value *v1 = &g->values[1], *v2 = &g->values[2];
    ck_assert(ws + 5000 <= v1->arena_offset || v1->arena_offset + 400 <= ws);
    ck_assert(ws + 5000 <= v2->arena_offset || v2->arena_offset + 400 <= ws);
    oct_plan_free(p);
}
END_TEST

START_TEST(toposort_orders_and_detects_cycles) {
    oct_graph *g = chain(4, 1);
    /* Reverse the node array: the sort must still follow the data. */
    oct_node tmp = g->nodes[0];
    g->nodes[0] = g->nodes[3];
    g->nodes[3] = tmp;
    ck_assert_int_eq(oct_graph_toposort(g, NULL), 0);
    for (int k = 0; k < 4; k++) ck_assert_int_eq(g->nodes[g->order[k]].in[0], k);
    /* n0 now reads v4, produced downstream: a cycle. */
    octet_error err = {0};
    g->nodes[3].in[0] = 4;
    ck_assert_int_eq(oct_graph_toposort(g, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cycle"));
    oct_graph_free(g);
}
END_TEST

START_TEST(undefined_input_is_named) {
    oct_graph *g = chain(2, 1);
    int orphan = oct_graph_add_value(g, "nobody_makes_me", NULL);
    g->nodes[1].in[0] = orphan;
    octet_error err = {0};
    ck_assert_int_eq(oct_graph_toposort(g, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "nobody_makes_me"));
    oct_graph_free(g);
}
END_TEST

START_TEST(clone_borrows_constants) {
    oct_graph *g = chain(2, 4);
    float *w = malloc(4 * sizeof(float));
    for (int i = 0; i < 4; i++) w[i] = (float)i;
    int c = oct_graph_add_value(g, "w", NULL);
    int64_t dims[1] = {4};
    oct_value_set_const(&g->values[c], OCTET_FLOAT, 1, dims, w);
    oct_graph *k = oct_graph_clone(g, NULL);
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_eq(k->values[c].data, w);
    ck_assert(!k->values[c].data_owned);
    ck_assert_int_eq(oct_value_make_owned(&k->values[c], NULL), 0);
    ck_assert_ptr_ne(k->values[c].data, w);
    ((float *)k->values[c].data)[0] = 42.f;
    ck_assert(w[0] == 0.f);
    oct_graph_free(k);
    oct_graph_free(g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, chain_reuses_two_slots);
    tcase_add_test(tc, skip_connections_keep_values_alive);
    tcase_add_test(tc, workspace_is_planned_per_node);
    tcase_add_test(tc, toposort_orders_and_detects_cycles);
    tcase_add_test(tc, undefined_input_is_named);
    tcase_add_test(tc, clone_borrows_constants);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
