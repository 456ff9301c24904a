/* `octet bench`: load time, latency percentiles, throughput and peak memory of a model on
   random inputs, and optionally where the time goes, per op type and per node. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli_util.h"
#include "error.h"
#include "profile.h"

#define MAX_INPUTS 64
#define TOP_NODES 15 /* nodes listed by --profile unless --top says otherwise */

typedef struct {
    const char *model;
    int threads, batch, warmup, iters, top;
    bool json, profile, pin;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a) {
    const char *cmd = "bench";
    *a = (bench_args){.warmup = 5, .iters = 30, .top = TOP_NODES};
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if ((m = cli_flag_value(argc, argv, &i, cmd, "--threads", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--threads", v, 0, 4096, &a->threads)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--batch", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--batch", v, 1, 1 << 20, &a->batch)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--warmup", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--warmup", v, 0, 1 << 20, &a->warmup)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--iters", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--iters", v, 1, 1 << 20, &a->iters)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--top", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--top", v, 0, 1 << 20, &a->top)) return -1;
            a->profile = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (strcmp(argv[i], "--profile") == 0) {
            a->profile = true;
        } else if (strcmp(argv[i], "--pin") == 0) {
            a->pin = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cli_usage_error(cmd, "unknown option '%s'", argv[i]);
            return -1;
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
            return -1;
        }
    }
    if (!a->model) {
        cli_usage_error(cmd, "missing MODEL");
        return -1;
    }
    return 0;
}

/* splitmix64: a fixed seed gives the same inputs on every run and machine. */
static uint64_t next_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so log() below stays finite. */
static double next_unit(uint64_t *state) {
    return ((double)(next_u64(state) >> 11) + 1.0) / 9007199254740992.0;
}

/* Fills one graph input of the planned shape with N(0,1) samples (Box-Muller). */
static int make_input(const octet_session *s, int i, uint64_t *seed, octet_tensor *t, octet_error *err) {
    const char *name;
    octet_session_input_info(s, i, &name, &t->dtype, &t->rank, t->dims);
    if (t->dtype != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "input '%s' is %s; octet bench feeds random float32 inputs only", name,
                        octet_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] <= 0)
            return oct_fail(err, OCTET_ERR_SHAPE,
                            "input '%s' has no fixed size in dimension %d (the plan waits for input values)",
                            name, d);
    int64_t n = octet_tensor_numel(t);
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return oct_fail(err, OCTET_ERR_NOMEM, "input '%s' is too large", name);
    float *x = malloc((size_t)n * sizeof *x + 1);
    if (!x) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for input '%s' (%lld floats)", name, (long long)n);
    for (int64_t k = 0; k < n; k += 2) {
        double r = sqrt(-2.0 * log(next_unit(seed))), phi = 6.283185307179586 * next_unit(seed);
        x[k] = (float)(r * cos(phi));
        if (k + 1 < n) x[k + 1] = (float)(r * sin(phi));
    }
    t->data = x;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of an ascending array, as bench/ort_run.js computes it. */
static double percentile(const double *sorted, int n, double p) {
    int k = (int)ceil(p / 100.0 * n) - 1;
    return sorted[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static double median(const double *sorted, int n) {
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* Peak resident set of this process in MB (Linux reports ru_maxrss in KiB). */
static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0;
}

typedef struct {
    const char *op_type;
    const char *precision; /* "mixed" when the nodes of this op type differ */
    int nodes;
    double ms;
} op_total;

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

typedef struct {
    double ms;
    int k; /* position in execution order */
} node_time;

static int cmp_node_time(const void *a, const void *b) {
    const node_time *x = a, *y = b;
    return (x->ms < y->ms) - (x->ms > y->ms);
}

static int cmp_op_total(const void *a, const void *b) {
    const op_total *x = a, *y = b;
    return (x->ms < y->ms) - (x->ms > y->ms);
}

/* Per-op-type totals and the slowest nodes of the profiled runs, as a table or a JSON member.
   Times are per run: the sums over the profiled runs divided by their count. */
static int report_profile(const oct_profile *prof, double run_ms, bool json, int top_n, octet_error *err) {
    int n = prof->n_nodes, runs = prof->runs > 0 ? prof->runs : 1;
    op_total *ops = calloc(n > 0 ? (size_t)n : 1, sizeof *ops);
    node_time *nodes = calloc(n > 0 ? (size_t)n : 1, sizeof *nodes);
    if (!ops || !nodes) {
        free(ops);
        free(nodes);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for the profile of %d nodes", n);
    }
    int n_ops = 0;
    double total = 0;
    for (int k = 0; k < n; k++) {
        oct_profile_node info;
        oct_profile_node_info(prof, k, &info);
        double ms = info.ms / runs;
        total += ms;
        nodes[k] = (node_time){ms, k};
        int j = 0;
        while (j < n_ops && strcmp(ops[j].op_type, info.op_type) != 0) j++;
        if (j == n_ops) ops[n_ops++] = (op_total){info.op_type, info.precision, 0, 0};
        else if (strcmp(ops[j].precision, info.precision) != 0) ops[j].precision = "mixed";
        ops[j].nodes++;
        ops[j].ms += ms;
    }
    qsort(ops, (size_t)n_ops, sizeof *ops, cmp_op_total);
    qsort(nodes, (size_t)n, sizeof *nodes, cmp_node_time);
    int top = n < top_n ? n : top_n;
    double pct_base = total > 0 ? total : 1;
    if (json) {
        printf(",\"profile\":{\"runs\":%d,\"node_ms\":%.4f,\"ops\":[", prof->runs, total);
        for (int j = 0; j < n_ops; j++) {
            printf("%s{\"op\":", j ? "," : "");
            print_json_string(ops[j].op_type);
            printf(",\"precision\":\"%s\",\"nodes\":%d,\"ms\":%.4f,\"percent\":%.2f}", ops[j].precision,
                   ops[j].nodes, ops[j].ms, 100 * ops[j].ms / pct_base);
        }
        printf("],\"top_nodes\":[");
        for (int r = 0; r < top; r++) {
            oct_profile_node info;
            oct_profile_node_info(prof, nodes[r].k, &info);
            printf("%s{\"name\":", r ? "," : "");
            print_json_string(info.name);
            printf(",\"op\":");
            print_json_string(info.op_type);
            printf(",\"precision\":\"%s\",\"fused\":", info.precision);
            print_json_string(info.fused);
            printf(",\"ms\":%.4f,\"percent\":%.2f}", nodes[r].ms, 100 * nodes[r].ms / pct_base);
        }
        printf("]}");
    } else {
        printf("\nprofile over %d runs: nodes take %.3f ms of the %.3f ms mean run (%.1f%%)\n", prof->runs,
               total, run_ms, run_ms > 0 ? 100 * total / run_ms : 0.0);
        printf("\n  %-24s %-8s %6s %10s %7s\n", "op type", "prec", "nodes", "ms/run", "%");
        for (int j = 0; j < n_ops; j++)
            printf("  %-24s %-8s %6d %10.3f %6.1f%%\n", ops[j].op_type, ops[j].precision, ops[j].nodes, ops[j].ms,
                   100 * ops[j].ms / pct_base);
        printf("\n  top %d nodes:\n  %4s  %-36s %-18s %-8s %10s %7s  %s\n", top, "#", "node", "op type", "prec",
               "ms/run", "%", "fused");
        for (int r = 0; r < top; r++) {
            oct_profile_node info;
            oct_profile_node_info(prof, nodes[r].k, &info);
            /* long names differ in their tails ("/layer3/layer3.1/conv2/Conv"): keep the tail */
            size_t len = strlen(info.name);
            const char *cut = len > 36 ? "..." : "", *tail = len > 36 ? info.name + len - 33 : info.name;
            printf("  %4d  %s%-*s %-18.18s %-8s %10.3f %6.1f%%  %s\n", nodes[r].k, cut, 36 - (int)strlen(cut), tail,
                   info.op_type,
                   info.precision, nodes[r].ms, 100 * nodes[r].ms / pct_base, info.fused);
        }
    }
    free(ops);
    free(nodes);
    return 0;
}

/* Images per second at the median; 0 when the clock saw no time pass (keeps the JSON finite). */
static double images_per_s(int batch, double median_ms) {
    return median_ms > 0 ? batch / (median_ms / 1e3) : 0;
}

typedef struct {
    double load_ms, first_ms, min_ms, median_ms, p90_ms, mean_ms, rss_mb;
    int threads, batch, nodes;
    char shape[160];
} bench_result;

static void print_text(const bench_args *a, const bench_result *r) {
    printf("model    %s\n", a->model);
    printf("input    %s, N(0,1) random\n", r->shape);
    printf("threads  %d%s, batch %d, kernels %s\n", r->threads, a->pin ? " (pinned)" : "", r->batch, octet_kernel_set());
    printf("load     %.2f ms (file to a planned session, %d nodes per run)\n", r->load_ms, r->nodes);
    printf("first    %.2f ms (first run, allocates the arena)\n", r->first_ms);
    printf("latency  min %.3f  median %.3f  p90 %.3f  mean %.3f ms (%d runs after %d warm-up)\n", r->min_ms,
           r->median_ms, r->p90_ms, r->mean_ms, a->iters, a->warmup);
    printf("speed    %.1f images/s\n", images_per_s(r->batch, r->median_ms));
    printf("peak RSS %.1f MB\n", r->rss_mb);
}

static void print_json(const bench_args *a, const bench_result *r) {
    printf("{\"model\":");
    print_json_string(a->model);
    printf(",\"input_shape\":");
    print_json_string(r->shape);
    printf(",\"kernels\":\"%s\",\"pinned\":%s", octet_kernel_set(), a->pin ? "true" : "false");
    printf(",\"threads\":%d,\"batch\":%d,\"warmup\":%d,\"iters\":%d,\"nodes\":%d,\"load_ms\":%.3f,"
           "\"first_run_ms\":%.3f,\"min_ms\":%.4f,\"median_ms\":%.4f,\"p90_ms\":%.4f,\"mean_ms\":%.4f,"
           "\"images_per_s\":%.3f,\"peak_rss_mb\":%.2f",
           r->threads, r->batch, a->warmup, a->iters, r->nodes, r->load_ms, r->first_ms, r->min_ms, r->median_ms,
           r->p90_ms, r->mean_ms, images_per_s(r->batch, r->median_ms), r->rss_mb);
}

static int bench_main(int argc, char **argv) {
    bench_args a;
    if (parse_args(argc, argv, &a)) return CLI_EXIT_USAGE;

    octet_error err = {0};
    octet_session_options opts = {.threads = a.threads, .batch = a.batch, .pin_threads = a.pin};
    bench_result r = {.threads = a.threads > 0 ? a.threads : omp_get_max_threads()};
    octet_tensor inputs[MAX_INPUTS] = {0};
    octet_tensor *outputs = NULL;
    double *times = NULL;
    oct_profile prof = {0};
    int n_in = 0, n_out = 0, rc = CLI_EXIT_FAIL;

    double t0 = oct_profile_now_ms();
    octet_model *model = octet_model_load(a.model, &err);
    octet_session *s = model ? octet_session_create(model, &opts, &err) : NULL;
    if (!s) goto done;
    r.load_ms = oct_profile_now_ms() - t0;
    n_in = octet_session_input_count(s);
    n_out = octet_session_output_count(s);
    if (n_in > MAX_INPUTS) {
        oct_fail(&err, OCTET_ERR_UNSUPPORTED, "the model has %d inputs; octet bench feeds at most %d", n_in,
                 MAX_INPUTS);
        goto done;
    }
    uint64_t seed = 20240601;
    for (int i = 0; i < n_in; i++)
        if (make_input(s, i, &seed, &inputs[i], &err)) goto done;
    /* Images per run: the leading dim of the first input (the batch of a [N, C, ...] input). */
    r.batch = n_in > 0 && inputs[0].rank > 0 ? (int)inputs[0].dims[0] : 1;
    if (n_in > 0) cli_shape_str(inputs[0].rank, inputs[0].dims, r.shape, sizeof r.shape);
    if (n_in > 1) {
        size_t len = strlen(r.shape);
        snprintf(r.shape + len, sizeof r.shape - len, " (+%d more inputs)", n_in - 1);
    }
    outputs = calloc(n_out ? (size_t)n_out : 1, sizeof *outputs);
    times = calloc((size_t)a.iters, sizeof *times);
    if (!outputs || !times) {
        oct_fail(&err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* The first run is always made and timed apart: it allocates the arena and the outputs, which
       the later runs reuse (octet_session_run_into), as a serving loop would. */
    for (int it = -1 - a.warmup; it < a.iters; it++) {
        double start = oct_profile_now_ms();
        /* Only the timed runs are profiled; the per-node clock reads cost well under a microsecond. */
        oct_profile *p = a.profile && it >= 0 ? &prof : NULL;
        const int into = it > -1 - a.warmup;
        if (oct_session_run_profiled(s, n_in, NULL, inputs, n_out, NULL, outputs, into, p, &err)) goto done;
        double ms = oct_profile_now_ms() - start;
        if (it == -1 - a.warmup) r.first_ms = ms;
        if (it >= 0) times[it] = ms;
    }
    octet_plan_stats st;
    r.nodes = octet_session_plan_stats(s, &st) == 0 ? st.nodes : prof.n_nodes;
    for (int it = 0; it < a.iters; it++) r.mean_ms += times[it] / a.iters;
    qsort(times, (size_t)a.iters, sizeof *times, cmp_double);
    r.min_ms = times[0];
    r.median_ms = median(times, a.iters);
    r.p90_ms = percentile(times, a.iters, 90);
    r.rss_mb = peak_rss_mb();
    if (a.json) print_json(&a, &r);
    else print_text(&a, &r);
    if (a.profile && report_profile(&prof, r.mean_ms, a.json, a.top, &err)) {
        if (a.json) printf("}\n"); /* keep stdout one JSON object even when the profile fails */
        goto done;
    }
    if (a.json) printf("}\n");
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_runtime_error(&err);
    for (int j = 0; outputs && j < n_out; j++) octet_tensor_release(&outputs[j]);
    free(outputs);
    free(times);
    oct_profile_free(&prof);
    for (int i = 0; i < n_in && i < MAX_INPUTS; i++) octet_tensor_release(&inputs[i]);
    octet_session_free(s);
    octet_model_free(model);
    return rc;
}

const cli_command cli_cmd_bench = {
    .name = "bench",
    .summary = "time a model on random inputs: load, latency, throughput, peak memory, per-op profile",
    .usage =
        "usage: octet bench MODEL [--threads N] [--batch B] [--warmup W] [--iters I] [--json] [--profile] [--top N] [--pin]\n"
        "\n"
        "Loads MODEL (.onnx), feeds every float32 input N(0,1) random data (fixed seed) of the\n"
        "planned shape, makes W warm-up runs and I timed runs, and prints the load time (file to\n"
        "a planned session), min/median/p90/mean latency, images/s (batch / median) and the\n"
        "process's peak resident memory.\n"
        "\n"
        "  --threads N   worker threads (default: all cores)\n"
        "  --batch B     value of a symbolic batch dimension (default 1)\n"
        "  --warmup W    untimed runs before timing (default 5; the first run is always made)\n"
        "  --iters I     timed runs (default 30)\n"
        "  --json        print one JSON object: median_ms, p90_ms, min_ms, mean_ms, load_ms,\n"
        "                first_run_ms, images_per_s, peak_rss_mb, threads, batch, ...\n"
        "  --profile     time every node during the timed runs: ms per run by op type and the\n"
        "                15 slowest nodes with their precision (int8/fp32) and fused epilogue\n"
        "                (with --json: a \"profile\" member)\n"
        "  --top N       list the N slowest nodes instead of 15 (implies --profile)\n"
        "  --pin         pin worker thread i to the i-th allowed CPU (session option pin_threads)\n"
        "\n"
        "example:\n"
        "  octet bench resnet50.onnx --threads 1 --profile\n",
    .main = bench_main,
};
