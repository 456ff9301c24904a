/* The Check side of the unit tests: plan and run a hand-built graph, run a suite from main. */
#ifndef OCT_TEST_SESSION_H
#define OCT_TEST_SESSION_H

#include <check.h>

#include "engine/graph.h"
#include "engine/octet.h"

/* Plans hand-built graph g for `threads` (want_nodes >= 0: checks that many nodes were planned,
   i.e. what fused), runs it on in[0..n_in) in graph-input order and fills out[0..n_out), which
   the caller releases. Environment switches (OCTET_NO_FUSE_SE, ...) set around the call apply. */
void test_plan_run(oct_graph *g, int threads, int want_nodes, int n_in, const octet_tensor *in, int n_out,
                   octet_tensor *out);

/* Runs every test of s (Check's default fork mode and output) and returns main's exit status. */
int test_run_suite(Suite *s);

#endif
