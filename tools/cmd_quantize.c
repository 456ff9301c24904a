/* `octet quantize`: fp32 model + calibration data -> a QDQ int8 ONNX model, with a per-tensor
   report (scale, zero point, clipping rate, SQNR of the int8 model against fp32). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calibrate.h"
#include "cli_util.h"
#include "mixed_precision.h"
#include "dataset.h"
#include "error.h"
#include "loader.h"
#include "model.h"
#include "passes/passes.h"

#define MAX_EXCLUDE 256
#define SQNR_BATCHES 16 /* calibration samples the report runs through both models */
#define CLI_EXIT_REJECTED 3 /* as `octet validate`: the gate failed */

typedef struct {
    const char *model, *calib, *out, *report, *preprocess;
    oct_calib_method method;
    double percentile;
    octet_dtype act;
    char *exclude_buf;
    const char *exclude[MAX_EXCLUDE];
    int n_exclude;
    int limit, threads;
    /* automatic mixed precision */
    const char *val;
    double target_drop, max_dice_drop;
    int max_fp32_layers, val_limit;
} quantize_args;

static int parse_method(const char *v, oct_calib_method *m) {
    static const char *const NAMES[] = {"minmax", "percentile", "entropy", "mse"};
    for (int i = 0; i < 4; i++)
        if (strcmp(v, NAMES[i]) == 0) return *m = (oct_calib_method)i, 0;
    return cli_usage_error("quantize", "--method must be minmax, percentile, entropy or mse, not '%s'", v);
}

static int split_exclude(quantize_args *a, const char *v) {
    free(a->exclude_buf);
    if (!(a->exclude_buf = strdup(v))) return cli_usage_error("quantize", "out of memory");
    a->n_exclude = 0;
    for (char *tok = strtok(a->exclude_buf, ","); tok; tok = strtok(NULL, ",")) {
        if (a->n_exclude == MAX_EXCLUDE) return cli_usage_error("quantize", "at most %d --exclude nodes", MAX_EXCLUDE);
        a->exclude[a->n_exclude++] = tok;
    }
    return 0;
}

static int parse_nonneg(const char *cmd, const char *name, const char *v, double *out) {
    char *end;
    const double x = strtod(v, &end);
    if (*end || end == v || !isfinite(x) || x < 0)
        return cli_usage_error(cmd, "%s needs a non-negative number, not '%s'", name, v), -1;
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, quantize_args *a) {
    const char *cmd = "quantize";
    memset(a, 0, sizeof *a);
    a->percentile = 99.99;
    a->act = OCTET_UINT8;
    a->target_drop = -1;
    a->max_dice_drop = 0.01;
    a->max_fp32_layers = 16;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if ((m = cli_flag_value(argc, argv, &i, cmd, "--calib", &v))) {
            if (m < 0) return -1;
            a->calib = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--output", &v)) ||
                   (m = cli_flag_value(argc, argv, &i, cmd, "-o", &v))) {
            if (m < 0) return -1;
            a->out = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--method", &v))) {
            if (m < 0 || parse_method(v, &a->method)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--percentile", &v))) {
            char *end;
            if (m < 0) return -1;
            a->percentile = strtod(v, &end);
            if (*end || !(a->percentile > 0 && a->percentile <= 100))
                return cli_usage_error(cmd, "--percentile must be a number in (0, 100], not '%s'", v), -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--act", &v))) {
            if (m < 0) return -1;
            if (strcmp(v, "u8") == 0) a->act = OCTET_UINT8;
            else if (strcmp(v, "s8") == 0) a->act = OCTET_INT8;
            else return cli_usage_error(cmd, "--act must be u8 or s8, not '%s'", v), -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--exclude", &v))) {
            if (m < 0 || split_exclude(a, v)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--report", &v))) {
            if (m < 0) return -1;
            a->report = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--preprocess", &v))) {
            if (m < 0) return -1;
            a->preprocess = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--limit", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--limit", v, 1, 1 << 30, &a->limit)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--threads", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--threads", v, 0, 4096, &a->threads)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--val", &v))) {
            if (m < 0) return -1;
            a->val = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--target-drop", &v))) {
            if (m < 0 || parse_nonneg(cmd, "--target-drop", v, &a->target_drop)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--max-dice-drop", &v))) {
            if (m < 0 || parse_nonneg(cmd, "--max-dice-drop", v, &a->max_dice_drop)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--max-fp32-layers", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--max-fp32-layers", v, 1, 4096, &a->max_fp32_layers)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--val-limit", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--val-limit", v, 1, 1 << 30, &a->val_limit)) return -1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]), -1;
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]), -1;
        }
    }
    if (!a->model) return cli_usage_error(cmd, "missing MODEL"), -1;
    if (!a->calib) return cli_usage_error(cmd, "missing --calib DATA.npz"), -1;
    if (!a->out) return cli_usage_error(cmd, "missing -o OUT.onnx"), -1;
    if ((a->target_drop >= 0) != (a->val != NULL))
        return cli_usage_error(cmd, a->val ? "--val needs --target-drop" : "--target-drop needs --val DATA.npz"), -1;
    return 0;
}

/* Calibration samples one at a time from the data set. */
typedef struct {
    const oct_dataset *ds;
    int rank;
    const int64_t *dims;
} sample_source;

static int get_sample(void *user, int64_t i, octet_tensor *in, octet_error *err) {
    const sample_source *s = user;
    return oct_dataset_batch(s->ds, i, 1, s->rank, s->dims, &in[0], err);
}

typedef struct {
    const char *label;
} progress_bar;

static void show_progress(void *user, int64_t done, int64_t total) {
    const progress_bar *p = user;
    const int width = 30, fill = total > 0 ? (int)(width * done / total) : width;
    fprintf(stderr, "\r%s [", p->label);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : ' ', stderr);
    fprintf(stderr, "] %lld/%lld", (long long)done, (long long)total);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

typedef struct {
    const char *name;
    oct_qparam q;
    double sqnr;
} tensor_row;

/* Worst first; tensors without a measurement last. */
static int by_sqnr(const void *a, const void *b) {
    const double x = ((const tensor_row *)a)->sqnr, y = ((const tensor_row *)b)->sqnr;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return x < y ? -1 : x > y;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

static int write_report(const char *path, const quantize_args *a, const tensor_row *rows, int n,
                        const oct_mp_search *mp, octet_error *err) {
    static const char *const METHODS[] = {"minmax", "percentile", "entropy", "mse"};
    FILE *f = fopen(path, "w");
    if (!f) return oct_fail(err, OCTET_ERR_IO, "cannot write the report '%s'", path);
    fprintf(f, "{\n  \"model\": ");
    json_string(f, a->model);
    fprintf(f, ",\n  \"output\": ");
    if (mp && !mp->approved) fputs("null", f);
    else json_string(f, a->out);
    fprintf(f, ",\n  \"method\": \"%s\",\n  \"activations\": \"%s\",\n", METHODS[a->method],
            a->act == OCTET_INT8 ? "s8" : "u8");
    if (a->method == OCT_CALIB_PERCENTILE) fprintf(f, "  \"percentile\": %g,\n", a->percentile);
    fprintf(f, "  \"tensors\": [\n");
    for (int k = 0; k < n; k++) {
        const oct_qparam *q = &rows[k].q;
        fprintf(f, "    {\"name\": ");
        json_string(f, rows[k].name);
        fprintf(f, ", \"type\": \"%s\", \"scale\": %.9g, \"zero_point\": %d, \"min\": ",
                q->type == OCTET_INT8 ? "int8" : "uint8", q->scale, (int)q->zp);
        json_number(f, q->min);
        fprintf(f, ", \"max\": ");
        json_number(f, q->max);
        fprintf(f, ", \"range\": [");
        json_number(f, q->lo);
        fprintf(f, ", ");
        json_number(f, q->hi);
        fprintf(f, "], \"clip_rate\": %.9g, \"sqnr_db\": ", q->clip_rate);
        json_number(f, rows[k].sqnr);
        fprintf(f, "}%s\n", k + 1 < n ? "," : "");
    }
    fprintf(f, "  ]");
    if (mp) {
        fprintf(f, ",\n");
        oct_mp_json(f, mp);
    }
    fprintf(f, "\n}\n");
    if (fclose(f)) return oct_fail(err, OCTET_ERR_IO, "cannot write the report '%s'", path);
    return 0;
}

/* Nodes of the written model that run int8 / in total, as octet plans it. */
static int count_int8(const oct_graph *g, const sample_source *s, int *int8, int *total, octet_error *err) {
    oct_shape shape = {.rank = s->rank};
    memcpy(shape.dims, s->dims, (size_t)s->rank * sizeof(int64_t));
    shape.dims[0] = 1;
    oct_plan *p = oct_plan_build(g, &shape, NULL, 1, NULL, err);
    if (!p) return -1;
    *int8 = *total = 0;
    for (int k = 0; k < p->n_exec; k++) {
        const oct_node *n = &p->g->nodes[p->exec[k]];
        *int8 += strcmp(oct_node_precision(p->g, n), "int8") == 0;
        *total += 1;
    }
    oct_plan_free(p);
    return 0;
}

/* The tensors of a QDQ model with their SQNR against fp32, worst first. */
static int measure(const oct_graph *fp32, const oct_calib_result *r, const octet_model *qmodel,
                   const oct_calib_source *src, int threads, const int *qvals, const oct_qparam *qparams, int nq,
                   tensor_row **rows_out, octet_error *err) {
    tensor_row *rows = calloc((size_t)nq + 1, sizeof *rows);
    const char **names = calloc((size_t)nq + 1, sizeof *names);
    double *sqnr = calloc((size_t)nq + 1, sizeof *sqnr);
    int rc = -1;
    if (!rows || !names || !sqnr) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < nq; k++) names[k] = r->net.g->values[qvals[k]].name;
    if (oct_calib_sqnr(fp32, qmodel->graph, src, SQNR_BATCHES, threads, nq, names, qparams, sqnr, err)) goto done;
    for (int k = 0; k < nq; k++) rows[k] = (tensor_row){names[k], qparams[k], sqnr[k]};
    qsort(rows, (size_t)nq, sizeof *rows, by_sqnr);
    rc = 0;
done:
    free(names);
    free(sqnr);
    if (rc) free(rows);
    else *rows_out = rows;
    return rc;
}

/* Automatic mixed precision over the all-int8 model int8: validates, searches, prints the summary.
   mp->approved tells whether a model met the gate (mp->kept layers in fp32). */
static int mixed_precision(const quantize_args *a, const oct_preprocess *pp, const oct_calib_result *r, const octet_model *int8, const tensor_row *rows, int nq,
                           oct_mp_search *mp, octet_error *err) {
    oct_dataset *val = oct_dataset_open(a->val, pp, err);
    if (!val) return -1;
    int label_rank, rc = -1;
    /* Sessions get their own instance of the fp32 model: a session may release the weights of the
       graph it plans (engine/model.h), and the calibration network borrows model's. */
    octet_model *fp32 = octet_model_load(a->model, err);
    if (!fp32) {
        oct_dataset_free(val);
        return -1;
    }
    const char **names = calloc((size_t)nq + 1, sizeof *names);
    double *sqnr = calloc((size_t)nq + 1, sizeof *sqnr);
    if (!names || !sqnr) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!oct_dataset_labels(val, &label_rank, NULL)) {
        oct_fail(err, OCTET_ERR_ARG, "%s: has no labels (array 'y'); --val needs them", a->val);
        goto done;
    }
    for (int k = 0; k < nq; k++) names[k] = rows[k].name, sqnr[k] = rows[k].sqnr;
    mp->calib = r;
    mp->out_path = a->out;
    mp->user_exclude = a->exclude;
    mp->n_user_exclude = a->n_exclude;
    mp->val = val;
    mp->n_val = oct_dataset_count(val);
    if (a->val_limit > 0 && a->val_limit < mp->n_val) mp->n_val = a->val_limit;
    mp->max_drop = a->target_drop;
    mp->max_dice_drop = a->max_dice_drop;
    mp->max_layers = a->max_fp32_layers;
    mp->batch = 8;
    mp->threads = a->threads;
    mp->progress = isatty(2);
    if (!(rc = oct_mp_run(mp, fp32, int8, nq, names, sqnr, err))) {
        int n_names;
        const char *const *class_names = oct_dataset_class_names(val, &n_names);
        oct_mp_print(mp, class_names, n_names);
    }
done:
    if (rc) oct_fail_context(err, "mixed precision on '%s'", a->val);
    free(names);
    free(sqnr);
    mp->val = NULL;
    oct_dataset_free(val);
    octet_model_free(fp32);
    return rc;
}

static int quantize_main(int argc, char **argv) {
    quantize_args a;
    if (parse_args(argc, argv, &a)) {
        free(a.exclude_buf);
        return CLI_EXIT_USAGE;
    }
    octet_error err = {0};
    oct_preprocess pp = {0};
    octet_model *model = NULL, *qmodel = NULL;
    oct_dataset *ds = NULL;
    oct_calib_result r = {0};
    int *qvals = NULL, nq = 0, rc = CLI_EXIT_FAIL;
    oct_qparam *qparams = NULL;
    tensor_row *rows = NULL;
    oct_mp_search mp;
    memset(&mp, 0, sizeof mp);
    const bool mixed = a.val != NULL;
    char *tmp = NULL; /* mixed precision: the all-int8 model until the gate has spoken */
    if (a.preprocess && oct_preprocess_parse(a.preprocess, &pp, &err)) goto done;
    if (!(model = octet_model_load(a.model, &err))) goto done;
    const oct_graph *g = model->graph;
    if (g->n_inputs != 1) {
        oct_fail(&err, OCTET_ERR_UNSUPPORTED, "calibration from a data set needs a model with one input (it has %d)",
                 g->n_inputs);
        goto done;
    }
    const oct_value *in = &g->values[g->inputs[0]];
    if (!(ds = oct_dataset_open(a.calib, &pp, &err))) goto done;
    sample_source ss = {ds, in->rank, in->dims};
    int64_t n = oct_dataset_count(ds);
    if (a.limit > 0 && a.limit < n) n = a.limit;
    oct_calib_source src = {n, get_sample, &ss};
    progress_bar bar = {"calibrating"};
    oct_calib_options o = {a.method, a.percentile, a.act, a.threads, isatty(2) ? show_progress : NULL, &bar};
    if (oct_calibrate(g, &src, &o, &r, &err)) goto done;
    const char *path = a.out;
    if (mixed) {
        const size_t len = strlen(a.out) + 32;
        int fd;
        if (!(tmp = malloc(len))) {
            oct_fail(&err, OCTET_ERR_NOMEM, "out of memory");
            goto done;
        }
        snprintf(tmp, len, "%s.int8-XXXXXX", a.out);
        if ((fd = mkstemp(tmp)) < 0) {
            oct_fail(&err, OCTET_ERR_IO, "cannot create a file next to '%s'", a.out);
            free(tmp), tmp = NULL;
            goto done;
        }
        close(fd);
        path = tmp;
    }
    /* Everything that plans qmodel's graph itself comes before any session on it (a session may
       release the weights of the graph it plans: engine/model.h). */
    int int8 = 0, total = 0;
    if (oct_qdq_model_build(&r, a.exclude, a.n_exclude, path, &qmodel, &qvals, &qparams, &nq, &err) ||
        measure(g, &r, qmodel, &src, a.threads, qvals, qparams, nq, &rows, &err) ||
        count_int8(qmodel->graph, &ss, &int8, &total, &err))
        goto done;
    if (mixed) {
        if (mixed_precision(&a, &pp, &r, qmodel, rows, nq, &mp, &err)) goto done;
        if (mp.approved && mp.kept == 0 && rename(tmp, a.out) != 0) {
            oct_fail(&err, OCTET_ERR_IO, "cannot write '%s'", a.out);
            goto done;
        }
        if (mp.approved && mp.kept > 0) { /* the approved model, and its own tensor report */
            octet_model_free(qmodel), qmodel = NULL;
            free(qvals), qvals = NULL;
            free(qparams), qparams = NULL;
            free(rows), rows = NULL;
            if (oct_qdq_model_build(&r, mp.fp32_nodes, mp.n_fp32_nodes, a.out, &qmodel, &qvals, &qparams, &nq, &err) ||
                measure(g, &r, qmodel, &src, a.threads, qvals, qparams, nq, &rows, &err) ||
                count_int8(qmodel->graph, &ss, &int8, &total, &err))
                goto done;
        }
    }
    if (!mixed || mp.approved)
        printf("wrote %s: %d tensors quantized, %d of %d nodes run int8 in octet\n", a.out, nq, int8, total);
    printf("worst tensors (SQNR of int8 vs fp32 on %lld calibration samples):\n",
           (long long)(n < SQNR_BATCHES ? n : SQNR_BATCHES));
    for (int k = 0; k < nq && k < 5; k++)
        printf("  %7.2f dB  clip %.5f%%  scale %-10.4g zp %-4d %s\n", rows[k].sqnr, 100 * rows[k].q.clip_rate,
               rows[k].q.scale, (int)rows[k].q.zp, rows[k].name);
    if (a.report && write_report(a.report, &a, rows, nq, mixed ? &mp : NULL, &err)) goto done;
    rc = !mixed || mp.approved ? CLI_EXIT_OK : CLI_EXIT_REJECTED;
done:
    if (rc == CLI_EXIT_FAIL) cli_runtime_error(&err);
    if (tmp) unlink(tmp); /* gone already when renamed to the output */
    free(tmp);
    free(rows);
    free(qvals);
    free(qparams);
    oct_mp_search_free(&mp);
    oct_calib_result_free(&r);
    oct_dataset_free(ds);
    octet_model_free(qmodel);
    octet_model_free(model);
    free(a.exclude_buf);
    return rc;
}

const cli_command cli_cmd_quantize = {
    "quantize",
    "fp32 model + calibration data -> QDQ int8 ONNX model",
    "usage: octet quantize MODEL.onnx --calib DATA.npz -o OUT.onnx [options]\n"
    "\n"
    "Calibrates MODEL on DATA (an .npz with x, model-ready float32 or raw uint8 images) and writes a\n"
    "QDQ model: activations per tensor, weights int8 per output channel, biases int32. ONNX Runtime\n"
    "runs it; octet runs its quantized ops with int8 kernels. Prints the 5 tensors with the worst\n"
    "SQNR of the int8 model against fp32.\n"
    "\n"
    "options:\n"
    "  --calib DATA.npz       calibration data (required)\n"
    "  -o, --output OUT.onnx  the quantized model (required)\n"
    "  --method M             minmax (default), percentile, entropy (KL) or mse\n"
    "  --percentile P         for --method percentile (default 99.99)\n"
    "  --act u8|s8            activations uint8 asymmetric (default) or int8 symmetric\n"
    "  --exclude N1,N2,...    nodes to keep fp32 (names as 'octet inspect' shows them)\n"
    "  --report REPORT.json   per tensor: scale, zero point, range, clipping rate, SQNR\n"
    "  --preprocess SPEC      raw images -> input: imagenet, unit, none, or scale=,mean=,std=\n"
    "  --limit N              use the first N samples only\n"
    "  --threads N            threads (default: all cores)\n"
    "\n"
    "automatic mixed precision (both of the first two, or neither):\n"
    "  --target-drop P        the gate of 'octet validate': accuracy and every class's recall may\n"
    "                         drop by at most P points (segmentation: mean and per-class Dice by\n"
    "                         --max-dice-drop, default 0.01) against fp32 on --val\n"
    "  --val DATA.npz         labelled validation data (same --preprocess)\n"
    "  --max-fp32-layers N    at most N layers in fp32 (default 16)\n"
    "  --val-limit N          validate on the first N samples only\n"
    "When the int8 model fails the gate, the layers that lose the most SQNR (from the report)\n"
    "are kept in fp32 with the tensors they read and write, 1, 2, 4, ... of them, then by\n"
    "bisection; every candidate is validated. Prints the layers kept, fp32/int8/mixed metrics\n"
    "and ms per image (batch 1). When even N layers fail, nothing is written and the exit\n"
    "status is 3 (the report, if asked for, says why).\n",
    quantize_main,
};
