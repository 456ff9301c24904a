#include "test_session.h"

#include <check.h>
#include <stdlib.h>

#include "engine/model.h"

void test_plan_run(oct_graph *g, int threads, int want_nodes, int n_in, const octet_tensor *in, int n_out,
                   octet_tensor *out) {
    octet_model m = {.graph = g}; /* the session points at it: it outlives the session here */
    octet_error err = {0};
    const octet_session_options opts = {.threads = threads};
    octet_session *s = octet_session_create(&m, &opts, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    if (want_nodes >= 0) {
        octet_plan_stats st;
        ck_assert_int_eq(octet_session_plan_stats(s, &st), 0);
        ck_assert_msg(st.nodes == want_nodes, "%d nodes planned, expected %d", st.nodes, want_nodes);
    }
    ck_assert_msg(octet_session_run(s, n_in, NULL, in, n_out, NULL, out, &err) == 0, "%s", err.msg);
    octet_session_free(s);
}

int test_run_suite(Suite *s) {
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    const int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
