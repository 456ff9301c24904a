/* `octet run`: feeds input files to a model and prints or saves the outputs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "error.h"
#include "loader.h"

#define MAX_INPUT_ARGS 64
#define TOP_K 5

typedef enum { PRECISION_FP32, PRECISION_INT8, PRECISION_AUTO } precision_mode;

typedef struct {
    const char *model;
    const char *inputs[MAX_INPUT_ARGS];
    int n_inputs;
    const char *out_dir;
    int threads, batch;
    const char *precision; /* as given; NULL: auto with --int8, else fp32 */
    precision_mode mode;
    const char *int8_model;
    const char *shadow; /* as given, NULL when not */
    double shadow_fraction;
} run_args;

static int parse_fraction(const char *cmd, const char *name, const char *text, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= 0.0 && v <= 1.0)) {
        cli_usage_error(cmd, "option '%s' needs a number in [0, 1], got '%s'", name, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Checks --precision, --int8 and --shadow together and sets a->mode. */
static int resolve_precision(const char *cmd, run_args *a) {
    const char *problem = NULL;
    if (!a->precision) a->mode = a->int8_model ? PRECISION_AUTO : PRECISION_FP32;
    else if (strcmp(a->precision, "fp32") == 0) a->mode = PRECISION_FP32;
    else if (strcmp(a->precision, "int8") == 0) a->mode = PRECISION_INT8;
    else if (strcmp(a->precision, "auto") == 0) a->mode = PRECISION_AUTO;
    else {
        cli_usage_error(cmd, "--precision takes fp32, int8 or auto, got '%s'", a->precision);
        return -1;
    }
    if (a->mode == PRECISION_INT8 && !a->int8_model)
        problem = "--precision int8 needs the int8 model: --int8 MODEL_INT8";
    else if (a->mode == PRECISION_FP32 && a->int8_model)
        problem = "--int8 is not used with --precision fp32";
    else if (a->shadow && a->mode != PRECISION_AUTO)
        problem = "--shadow needs --precision auto";
    if (problem) {
        cli_usage_error(cmd, "%s", problem);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, run_args *a) {
    const char *cmd = "run";
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if ((m = cli_flag_value(argc, argv, &i, cmd, "--input", &v)) ||
            (m = cli_flag_value(argc, argv, &i, cmd, "-i", &v))) {
            if (m < 0) return -1;
            if (a->n_inputs == MAX_INPUT_ARGS) {
                cli_usage_error(cmd, "at most %d inputs", MAX_INPUT_ARGS);
                return -1;
            }
            a->inputs[a->n_inputs++] = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--output", &v)) ||
                   (m = cli_flag_value(argc, argv, &i, cmd, "-o", &v))) {
            if (m < 0) return -1;
            a->out_dir = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--threads", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--threads", v, 0, 4096, &a->threads)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--batch", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--batch", v, 1, 1 << 20, &a->batch)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--precision", &v))) {
            if (m < 0) return -1;
            a->precision = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--int8", &v))) {
            if (m < 0) return -1;
            a->int8_model = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--shadow", &v))) {
            if (m < 0 || parse_fraction(cmd, "--shadow", v, &a->shadow_fraction)) return -1;
            a->shadow = v;
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
    return resolve_precision(cmd, a);
}

/* Matches the -i arguments to the graph inputs and reads them. names[k] and tensors[k] are in
   graph order. */
static int read_inputs(const octet_session *s, const run_args *a, const char **names, octet_tensor *tensors,
                       octet_error *err) {
    int n = octet_session_input_count(s);
    if (a->n_inputs != n) {
        if (n == 1)
            return oct_fail(err, OCTET_ERR_ARG, "the model has 1 input; give it with -i FILE (%d given)",
                            a->n_inputs);
        return oct_fail(err, OCTET_ERR_ARG, "the model has %d inputs; give each with -i NAME=FILE (%d given)", n,
                        a->n_inputs);
    }
    const char *files[MAX_INPUT_ARGS] = {0};
    for (int k = 0; k < a->n_inputs; k++) {
        const char *arg = a->inputs[k], *eq = strchr(arg, '=');
        int slot = -1;
        /* NAME=FILE when NAME is one of the inputs; otherwise the whole argument is a file. */
        for (int j = 0; eq && j < n; j++) {
            const char *name;
            octet_session_input_info(s, j, &name, NULL, NULL, NULL);
            if (strlen(name) == (size_t)(eq - arg) && strncmp(arg, name, (size_t)(eq - arg)) == 0) slot = j;
        }
        const char *file = slot >= 0 ? eq + 1 : arg;
        if (slot < 0) {
            if (n > 1)
                return oct_fail(err, OCTET_ERR_ARG, "input '%s' does not name a model input; use -i NAME=FILE",
                                arg);
            slot = 0;
        }
        if (files[slot]) {
            const char *name;
            octet_session_input_info(s, slot, &name, NULL, NULL, NULL);
            return oct_fail(err, OCTET_ERR_ARG, "input '%s' is given twice", name);
        }
        files[slot] = file;
    }
    for (int j = 0; j < n; j++) {
        octet_dtype dtype;
        int rank;
        int64_t dims[OCTET_MAX_RANK];
        octet_session_input_info(s, j, &names[j], &dtype, &rank, dims);
        if (cli_read_input(files[j], dtype, rank, dims, &tensors[j], err))
            return oct_fail_context(err, "input '%s'", names[j]);
    }
    return 0;
}

static int write_outputs(const char *dir, const octet_session *s, const octet_tensor *outs, int n,
                         octet_error *err) {
    if (cli_make_dir(dir, err)) return -1;
    char written[MAX_INPUT_ARGS][256];
    for (int j = 0; j < n; j++) {
        const char *name;
        octet_session_output_info(s, j, &name, NULL, NULL, NULL);
        char file_name[256], path[4096];
        cli_file_name(name, file_name, sizeof file_name);
        if (!file_name[0]) snprintf(file_name, sizeof file_name, "output_%d", j);
        /* two names may sanitize alike ("a/b", "a:b"): keep both files */
        for (int k = 0; k < j && k < MAX_INPUT_ARGS; k++)
            if (strcmp(written[k], file_name) == 0) {
                size_t len = strlen(file_name);
                snprintf(file_name + len, sizeof file_name - len, "_%d", j);
                break;
            }
        if (j < MAX_INPUT_ARGS) snprintf(written[j], sizeof written[j], "%s", file_name);
        snprintf(path, sizeof path, "%s/%s.npy", dir, file_name);
        if (oct_npy_write(path, &outs[j], err)) return -1;
        char shape[160];
        printf("%s: %s %s -> %s\n", name, octet_dtype_name(outs[j].dtype),
               cli_shape_str(outs[j].rank, outs[j].dims, shape, sizeof shape), path);
    }
    return 0;
}

/* Prints the top classes of each row of a [N, classes] score matrix. Rows that are already a
   probability distribution are shown as they are, others go through a softmax. */
static void print_top_classes(const float *scores, int64_t rows, int64_t classes) {
    int k_max = classes < TOP_K ? (int)classes : TOP_K;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = scores + r * classes;
        double sum = 0, mx = -INFINITY;
        int is_prob = 1;
        for (int64_t c = 0; c < classes; c++) {
            if (!(x[c] >= 0.f && x[c] <= 1.f)) is_prob = 0;
            sum += x[c];
            if (x[c] > mx) mx = x[c];
        }
        if (fabs(sum - 1.0) > 1e-3) is_prob = 0;
        double denom = 0;
        if (!is_prob)
            for (int64_t c = 0; c < classes; c++) denom += exp((double)x[c] - mx);
        int top[TOP_K];
        for (int k = 0; k < k_max; k++) {
            int best = -1;
            for (int64_t c = 0; c < classes; c++) {
                int taken = 0;
                for (int q = 0; q < k; q++) taken |= top[q] == c;
                /* NaN scores rank last */
                if (!taken && (best < 0 || x[c] > x[best] || (isnan(x[best]) && !isnan(x[c])))) best = (int)c;
            }
            top[k] = best;
        }
        printf("  row %lld, top %d (%s):\n", (long long)r, k_max, is_prob ? "probabilities" : "softmax");
        for (int k = 0; k < k_max; k++) {
            double p = is_prob ? x[top[k]] : exp((double)x[top[k]] - mx) / denom;
            printf("    class %-5d p=%.4f  score=%g\n", top[k], p, (double)x[top[k]]);
        }
    }
}

static void print_output(const char *name, const octet_tensor *t) {
    char shape[160];
    printf("%s: %s %s\n", name, octet_dtype_name(t->dtype), cli_shape_str(t->rank, t->dims, shape, sizeof shape));
    int64_t n = octet_tensor_numel(t);
    if (t->dtype != OCTET_FLOAT || n <= 0) return;
    if (t->rank == 2 && t->dims[1] > 1) {
        print_top_classes(t->data, t->dims[0], t->dims[1]);
        return;
    }
    const float *x = t->data;
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum += x[i];
    }
    printf("  min %g  max %g  mean %g\n", mn, mx, sum / (double)n);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --precision auto: the selector, which says on stderr which precision it serves and why. */
static octet_selector *create_selector(const run_args *a, octet_error *err) {
    octet_selector_options opts = {.threads = a->threads, .batch = a->batch, .shadow_fraction = a->shadow_fraction};
    octet_selector *sel = octet_selector_create(a->model, a->int8_model, &opts, err);
    octet_selector_stats st;
    if (sel && octet_selector_stats_get(sel, &st) == 0) fprintf(stderr, "precision auto: %s\n", st.reason);
    return sel;
}

/* Which precision answered the one request, and the counters when shadowing (one line each). */
static void report_selector(const octet_selector *sel, const run_args *a) {
    octet_selector_stats st;
    if (octet_selector_stats_get(sel, &st)) return;
    fprintf(stderr, "served by %s\n", st.int8_runs ? "int8" : "fp32");
    if (!st.using_int8 && st.int8_runs) fprintf(stderr, "precision auto: %s\n", st.reason);
    if (a->shadow_fraction > 0)
        fprintf(stderr, "selector: %llu requests, %llu int8, %llu fp32, %llu shadow, %llu disagreements\n",
                (unsigned long long)st.requests, (unsigned long long)st.int8_runs,
                (unsigned long long)st.fp32_runs, (unsigned long long)st.shadow_runs,
                (unsigned long long)st.disagreements);
}

static int run_main(int argc, char **argv) {
    run_args a;
    if (parse_args(argc, argv, &a)) return CLI_EXIT_USAGE;

    octet_error err = {0};
    octet_session_options opts = {.threads = a.threads, .batch = a.batch};
    const char *in_names[MAX_INPUT_ARGS];
    octet_tensor inputs[MAX_INPUT_ARGS] = {0};
    octet_tensor *outputs = NULL;
    int n_in = 0, n_out = 0, rc = CLI_EXIT_FAIL;

    /* fp32 and int8 run one model directly; auto runs the selector, whose fp32 session
       describes the inputs and outputs (the int8 model has the same ones) */
    octet_model *model = NULL;
    octet_session *own = NULL;
    octet_selector *sel = NULL;
    const octet_session *s = NULL;
    if (a.mode == PRECISION_AUTO) {
        sel = create_selector(&a, &err);
        s = octet_selector_session(sel);
    } else {
        model = octet_model_load(a.mode == PRECISION_INT8 ? a.int8_model : a.model, &err);
        s = own = model ? octet_session_create(model, &opts, &err) : NULL;
    }
    if (!s) goto done;
    n_in = octet_session_input_count(s);
    n_out = octet_session_output_count(s);
    if (n_in > MAX_INPUT_ARGS) {
        oct_fail(&err, OCTET_ERR_UNSUPPORTED, "the model has %d inputs; the command line takes at most %d", n_in,
                 MAX_INPUT_ARGS);
        goto done;
    }
    if (read_inputs(s, &a, in_names, inputs, &err)) goto done;
    outputs = calloc(n_out ? (size_t)n_out : 1, sizeof *outputs);
    if (!outputs) {
        oct_fail(&err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    double t0 = now_ms();
    if (sel ? octet_selector_run(sel, n_in, in_names, inputs, n_out, NULL, outputs, &err)
            : octet_session_run(own, n_in, in_names, inputs, n_out, NULL, outputs, &err))
        goto done;
    double elapsed = now_ms() - t0;
    if (a.out_dir) {
        if (write_outputs(a.out_dir, s, outputs, n_out, &err)) goto done;
    } else {
        for (int j = 0; j < n_out; j++) {
            const char *name;
            octet_session_output_info(s, j, &name, NULL, NULL, NULL);
            print_output(name, &outputs[j]);
        }
    }
    fprintf(stderr, "ran in %.2f ms\n", elapsed);
    if (sel) report_selector(sel, &a);
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_runtime_error(&err);
    for (int j = 0; outputs && j < n_out; j++) octet_tensor_release(&outputs[j]);
    free(outputs);
    for (int k = 0; k < n_in && k < MAX_INPUT_ARGS; k++) octet_tensor_release(&inputs[k]);
    octet_session_free(own);
    octet_model_free(model);
    octet_selector_free(sel);
    return rc;
}

const cli_command cli_cmd_run = {
    .name = "run",
    .summary = "run a model on input files; print the top classes or save the outputs",
    .usage =
        "usage: octet run MODEL [-i NAME=FILE]... [-o DIR] [--threads N] [--batch N]\n"
        "                 [--precision fp32|int8|auto] [--int8 MODEL_INT8] [--shadow FRACTION]\n"
        "\n"
        "Runs MODEL (.onnx) once on the given inputs.\n"
        "\n"
        "  -i, --input [NAME=]FILE  an input; NAME may be left out when the model has one input.\n"
        "                           FILE is a .npy array, a TensorProto .pb, or FILE.npz:ARRAY@INDEX\n"
        "                           (sample INDEX along axis 0 of ARRAY in an .npz, or all of ARRAY\n"
        "                           without @INDEX; uint8 data are cast to float32 for a float32\n"
        "                           input and reshaped to the input's sample shape when the\n"
        "                           element counts fit)\n"
        "  -o, --output DIR         write each output to DIR/NAME.npy instead of printing it\n"
        "  --threads N              worker threads (default: all cores)\n"
        "  --batch N                value of a symbolic batch dimension (default 1)\n"
        "  --precision P            fp32: run MODEL; int8: run MODEL_INT8; auto (the default when\n"
        "                           --int8 is given): run MODEL_INT8 when it loads and has MODEL's\n"
        "                           inputs and outputs, else MODEL, saying why on stderr; an int8\n"
        "                           run that fails is answered by MODEL\n"
        "  --int8 MODEL_INT8        the int8 (quantized) version of MODEL\n"
        "  --shadow FRACTION        with auto: also run MODEL on this share of the requests (every\n"
        "                           round(1/FRACTION)-th, the first included) and compare the top\n"
        "                           classes of the first output; the counters go to stderr\n"
        "\n"
        "Without -o every output's name, dtype and shape is printed, and for a [N, classes]\n"
        "float output the top-5 classes of each row with their softmax probabilities.\n"
        "\n"
        "example:\n"
        "  octet run model.onnx -i brain_tumor_mri_4c_128_val.npz:x@0\n"
        "  octet run model.onnx --int8 model_int8.onnx --shadow 1 -i image.npy\n",
    .main = run_main,
};
