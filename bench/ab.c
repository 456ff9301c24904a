/* A/B of two plans of one model in one process: `ab MODEL VAR A B [--threads T] [--runs N] [--show K]`
   plans one session with the environment variable VAR set to A and one with it set to B (VAR
   "threads": one session with A threads, one with B; a value "-" leaves VAR unset), then
   runs them alternately on the same random input and prints each side's min and median, the
   ratio, and the op types and nodes whose time moved most. On a shared, noisy machine this is
   the fair way to judge a change that a plan-time switch can turn on and off: both sides see the
   same load, the same clock phase and the same caches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octet.h"
#include "profile.h"

typedef struct {
    const char *var, *val; /* the side's environment switch, set again before each of its runs */
    octet_session *s;
    oct_profile prof;
    double *ms; /* wall time of each run */
} side;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The side's value of the switch ("-": unset), for switches read at plan time and at run time. */
static void set_switch(const side *sd) {
    if (!sd->var) return;
    if (!strcmp(sd->val, "-")) unsetenv(sd->var);
    else setenv(sd->var, sd->val, 1);
}

static int plan_side(const octet_model *m, const char *var, const char *val, int threads, int runs, side *sd,
                     octet_error *err) {
    /* VAR "threads": the sides differ in their thread count, A and B */
    const int by_threads = !strcmp(var, "threads");
    sd->var = by_threads ? NULL : var;
    sd->val = val;
    set_switch(sd);
    const octet_session_options o = {.threads = by_threads ? atoi(val) : threads};
    sd->s = octet_session_create(m, &o, err);
    sd->ms = calloc((size_t)runs, sizeof *sd->ms);
    return sd->s && sd->ms ? 0 : -1;
}

/* Uniform [-1, 1) floats of the planned shape of input 0 (the zoo models have one input). */
static float *make_input(const octet_session *s, octet_tensor *t) {
    const char *name;
    octet_session_input_info(s, 0, &name, &t->dtype, &t->rank, t->dims);
    const int64_t n = octet_tensor_numel(t);
    if (t->dtype != OCTET_FLOAT || n <= 0) return NULL;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t r = 12345;
    for (int64_t i = 0; x && i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    }
    t->data = x;
    return x;
}

static int run_side(side *sd, const octet_tensor *in, octet_error *err, double *ms) {
    octet_tensor out[8] = {{0}};
    const int n_out = octet_session_output_count(sd->s);
    if (n_out > 8) return -1;
    set_switch(sd);
    const double t0 = oct_profile_now_ms();
    if (oct_session_run_profiled(sd->s, 1, NULL, in, n_out, NULL, out, 0, &sd->prof, err)) return -1;
    *ms = oct_profile_now_ms() - t0;
    for (int j = 0; j < n_out; j++) octet_tensor_release(&out[j]);
    return 0;
}

/* Per-node and per-op-type time of both sides (the plans must have the same nodes to compare). */
static void print_nodes(const side *a, const side *b, int show) {
    if (a->prof.n_nodes != b->prof.n_nodes) {
        printf("the plans differ (%d vs %d nodes): no per-node comparison\n", a->prof.n_nodes, b->prof.n_nodes);
        return;
    }
    enum { TYPES = 64 };
    const char *type[TYPES];
    double ta[TYPES] = {0}, tb[TYPES] = {0};
    int ntypes = 0;
    const int n = a->prof.n_nodes;
    double *diff = malloc((size_t)n * sizeof *diff);
    int *order = malloc((size_t)n * sizeof *order);
    if (!diff || !order) goto done;
    for (int k = 0; k < n; k++) {
        oct_profile_node x, y;
        oct_profile_node_info(&a->prof, k, &x);
        oct_profile_node_info(&b->prof, k, &y);
        const double ma = x.ms / a->prof.runs, mb = y.ms / b->prof.runs;
        int t = 0;
        while (t < ntypes && strcmp(type[t], x.op_type)) t++;
        if (t == ntypes && ntypes < TYPES) type[ntypes++] = x.op_type;
        if (t < TYPES) ta[t] += ma, tb[t] += mb;
        diff[k] = mb - ma;
        order[k] = k;
    }
    printf("\n  op type          mean A ms   B ms   B/A\n");
    for (int t = 0; t < ntypes; t++)
        if (ta[t] > 0.002) printf("  %-18s %8.3f %8.3f  %5.3f\n", type[t], ta[t], tb[t], tb[t] / ta[t]);
    /* selection of the largest |B - A| */
    for (int i = 0; i < show && i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fabs(diff[order[j]]) > fabs(diff[order[i]])) {
                const int s = order[i];
                order[i] = order[j];
                order[j] = s;
            }
    printf("\n  nodes that moved most    mean A ms     B ms\n");
    for (int i = 0; i < show && i < n; i++) {
        oct_profile_node x;
        oct_profile_node_info(&a->prof, order[i], &x);
        const size_t len = strlen(x.name);
        printf("  %-28s %8.3f %8.3f  %s\n", len > 28 ? x.name + len - 28 : x.name, x.ms / a->prof.runs,
               x.ms / a->prof.runs + diff[order[i]], x.op_type);
    }
done:
    free(diff);
    free(order);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: ab MODEL VAR A B [--threads T] [--runs N] [--show K]   (VAR \"threads\": A and B threads)\n");
        return 2;
    }
    int threads = 1, runs = 200, show = 12;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--show")) show = atoi(argv[i + 1]);
    }
    if (threads < 1 || runs < 2) {
        fprintf(stderr, "ab: --threads and --runs must be at least 1 and 2\n");
        return 2;
    }
    octet_error err = {0};
    octet_model *m = octet_model_load(argv[1], &err);
    side a = {0}, b = {0};
    octet_tensor in = {0};
    int rc = 1;
    if (!m || plan_side(m, argv[2], argv[3], threads, runs, &a, &err) ||
        plan_side(m, argv[2], argv[4], threads, runs, &b, &err))
        goto out;
    if (!make_input(a.s, &in)) {
        fprintf(stderr, "ab: input 0 must be float32 of a fixed shape\n");
        goto out;
    }
    double warm;
    for (int w = 0; w < 5; w++)
        if (run_side(&a, &in, &err, &warm) || run_side(&b, &in, &err, &warm)) goto out;
    oct_profile_free(&a.prof);
    oct_profile_free(&b.prof);
    a.prof = (oct_profile){0};
    b.prof = (oct_profile){0};
    for (int r = 0; r < runs; r++) /* alternate which side goes first, so neither always follows the other */
        if (r % 2 ? run_side(&b, &in, &err, &b.ms[r]) || run_side(&a, &in, &err, &a.ms[r])
                  : run_side(&a, &in, &err, &a.ms[r]) || run_side(&b, &in, &err, &b.ms[r]))
            goto out;
    const double meda = median_of(a.ms, runs), medb = median_of(b.ms, runs);
    printf("%s, %d threads, %d runs each, alternating\n", argv[1], threads, runs);
    printf("  A %s=%s: min %.3f  median %.3f ms\n", argv[2], argv[3], a.ms[0], meda);
    printf("  B %s=%s: min %.3f  median %.3f ms\n", argv[2], argv[4], b.ms[0], medb);
    printf("  B/A: min %.3f  median %.3f\n", b.ms[0] / a.ms[0], medb / meda);
    print_nodes(&a, &b, show);
    rc = 0;
out:
    if (rc && err.code) fprintf(stderr, "ab: %s\n", err.msg);
    free(in.data);
    oct_profile_free(&a.prof);
    oct_profile_free(&b.prof);
    free(a.ms);
    free(b.ms);
    octet_session_free(a.s);
    octet_session_free(b.s);
    octet_model_free(m);
    return rc;
}
