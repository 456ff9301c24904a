/* `octet validate`: runs an fp32 model and its int8 version over a labelled data set, reports
   accuracy / per-class metrics (or Dice), flips, batch-size invariance and timing, and approves
   or rejects the int8 model against the clinical gate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "dataset.h"
#include "error.h"
#include "evaluate.h"
#include "metrics.h"
#include "model.h"

#define CLI_EXIT_REJECTED 3
#define INVARIANCE_SAMPLES 8

typedef struct {
    const char *paths[2]; /* fp32, int8 */
    const char *data, *preprocess;
    double max_drop, max_dice_drop;
    int batch, threads, limit, json;
} validate_args;

static const char *const ROLE[2] = {"fp32", "int8"};

static int parse_double(const char *cmd, const char *name, const char *text, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || v < 0) {
        cli_usage_error(cmd, "option '%s' needs a non-negative number, got '%s'", name, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, validate_args *a) {
    const char *cmd = "validate";
    memset(a, 0, sizeof *a);
    a->max_drop = 1.0;
    a->max_dice_drop = 0.01;
    a->batch = 8;
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if ((m = cli_flag_value(argc, argv, &i, cmd, "--data", &v))) {
            if (m < 0) return -1;
            a->data = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--preprocess", &v))) {
            if (m < 0) return -1;
            a->preprocess = v;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--max-drop", &v))) {
            if (m < 0 || parse_double(cmd, "--max-drop", v, &a->max_drop)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--max-dice-drop", &v))) {
            if (m < 0 || parse_double(cmd, "--max-dice-drop", v, &a->max_dice_drop)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--batch", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--batch", v, 1, 4096, &a->batch)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--threads", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--threads", v, 0, 4096, &a->threads)) return -1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--limit", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--limit", v, 1, 1 << 30, &a->limit)) return -1;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cli_usage_error(cmd, "unknown option '%s'", argv[i]);
            return -1;
        } else if (n_paths < 2) {
            a->paths[n_paths++] = argv[i];
        } else {
            cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
            return -1;
        }
    }
    if (n_paths < 2) {
        cli_usage_error(cmd, n_paths ? "missing INT8 model" : "missing FP32 and INT8 models");
        return -1;
    }
    if (!a->data) {
        cli_usage_error(cmd, "missing --data DATA.npz");
        return -1;
    }
    return 0;
}

/* ---- the two runs ---- */

typedef struct {
    oct_task_shape task;
    int64_t n;
    oct_eval st[2];     /* fp32, int8 */
    int64_t flips;      /* samples (classification) or voxels (segmentation) whose argmax changed */
    int64_t flip_total;
    int inv_checked, inv_samples, inv_differ;
} results;

/* Runs the int8 model on the first samples at batch 1, 2 and 4 and counts the samples whose
   predictions differ from those at batch 1. */
static int check_invariance(oct_eval_model *m, const oct_dataset *ds, results *r, octet_error *err) {
    int n = r->n < INVARIANCE_SAMPLES ? (int)r->n : INVARIANCE_SAMPLES;
    int64_t v = r->task.voxels;
    r->inv_samples = n;
    if (!m->dynamic_batch) return 0;
    r->inv_checked = 1;
    int *ref = malloc((size_t)(n * v) * sizeof *ref), *got = malloc((size_t)(n * v) * sizeof *got);
    unsigned char *differs = calloc((size_t)n, 1);
    int rc = -1;
    if (!ref || !got || !differs) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory for the batch-invariance check");
        goto done;
    }
    static const int sizes[3] = {1, 2, 4};
    for (int b = 0; b < 3; b++) {
        for (int start = 0; start < n; start += sizes[b]) {
            int count = n - start < sizes[b] ? n - start : sizes[b];
            octet_tensor x, y;
            if (oct_dataset_batch(ds, start, count, m->in_rank, m->in_dims, &x, err)) goto done;
            int failed = oct_eval_model_run(m, &x, &y, err);
            octet_tensor_release(&x);
            if (failed) goto done;
            int *out = b == 0 ? ref : got;
            if (y.rank < 2 || y.dims[0] != count || y.dims[1] != r->task.k || octet_tensor_numel(&y) != count * r->task.k * v) {
                octet_tensor_release(&y);
                oct_fail(err, OCTET_ERR_SHAPE, "output shape changes with the batch size");
                goto done;
            }
            const float *s = y.data;
            for (int i = 0; i < count; i++)
                for (int64_t p = 0; p < v; p++)
                    out[(start + i) * v + p] = oct_argmax(s + (int64_t)i * r->task.k * v + p, r->task.k, v);
            octet_tensor_release(&y);
        }
        if (b > 0)
            for (int i = 0; i < n; i++)
                if (memcmp(ref + i * v, got + i * v, (size_t)v * sizeof *ref) != 0) differs[i] = 1;
    }
    for (int i = 0; i < n; i++) r->inv_differ += differs[i];
    rc = 0;
done:
    free(ref);
    free(got);
    free(differs);
    return rc;
}

/* Both models over the data, then the flips and the batch-invariance check. */
static int run_all(oct_eval_model *ms, const oct_dataset *ds, const validate_args *a, results *r, octet_error *err) {
    const int batch = oct_eval_common_batch(&ms[0], &ms[1], a->batch), progress = isatty(2);
    static const char *const LABEL[2] = {"validating fp32", "validating int8"};
    for (int m = 0; m < 2; m++)
        if (oct_eval_run(&ms[m], ds, r->n, batch, progress ? LABEL[m] : NULL, &r->st[m], err))
            return oct_fail_context(err, "%s model", ROLE[m]);
    r->task = r->st[0].task;
    if (r->st[1].task.k != r->task.k || r->st[1].task.voxels != r->task.voxels)
        return oct_fail(err, OCTET_ERR_SHAPE, "the int8 model outputs %d classes x %lld voxels, the fp32 model %d x %lld",
                        r->st[1].task.k, (long long)r->st[1].task.voxels, r->task.k, (long long)r->task.voxels);
    r->flips = oct_eval_flips(&r->st[0], &r->st[1], &r->flip_total);
    if (check_invariance(&ms[1], ds, r, err))
        return oct_fail_context(err, "batch-invariance check of %s", a->paths[1]);
    return 0;
}

/* ---- report ---- */

static void json_num(double v) {
    if (isnan(v) || isinf(v))
        printf("null");
    else
        printf("%.6g", v);
}

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *class_name(const char *const *names, int n_names, int c, char *buf, size_t cap) {
    if (names && c < n_names) return names[c];
    snprintf(buf, cap, "class %d", c);
    return buf;
}

static void print_confusion(const int64_t *cm, int k, const char *title) {
    printf("\nconfusion matrix, %s (rows: label, columns: prediction)\n       ", title);
    for (int j = 0; j < k; j++) printf(" %6d", j);
    printf("\n");
    for (int i = 0; i < k; i++) {
        printf("  %4d ", i);
        for (int j = 0; j < k; j++) printf(" %6lld", (long long)cm[(int64_t)i * k + j]);
        printf("\n");
    }
}

static void fmt_pct(double v, char *buf, size_t cap) {
    if (isnan(v))
        snprintf(buf, cap, "n/a");
    else
        snprintf(buf, cap, "%.2f", 100 * v);
}

static void report_classification(const validate_args *a, const results *r,
                                  const char *const *names, int n_names, oct_gate_result g) {
    int k = r->task.k;
    oct_class_summary sum[2];
    double *pr[2], *rc[2], *f1[2];
    double *buf = malloc((size_t)k * 6 * sizeof(double));
    if (!buf) {
        fprintf(stderr, "octet: error: out of memory for the report\n");
        return;
    }
    for (int m = 0; m < 2; m++) {
        pr[m] = buf + (3 * m + 0) * k;
        rc[m] = buf + (3 * m + 1) * k;
        f1[m] = buf + (3 * m + 2) * k;
        oct_class_metrics(r->st[m].cm, k, &sum[m], pr[m], rc[m], f1[m]);
    }
    char nb[32];
    if (a->json) {
        printf("{\"task\": \"classification\", \"data\": ");
        json_str(a->data);
        printf(", \"samples\": %lld, \"classes\": %d", (long long)r->n, k);
        for (int m = 0; m < 2; m++) {
            printf(", \"%s\": {\"model\": ", ROLE[m]);
            json_str(a->paths[m]);
            printf(", \"ms_per_image\": ");
            json_num(r->st[m].ms_per_image);
            printf(", \"accuracy\": ");
            json_num(100 * sum[m].accuracy);
            printf(", \"macro_f1\": ");
            json_num(sum[m].macro_f1);
            printf(", \"per_class\": [");
            for (int c = 0; c < k; c++) {
                printf("%s{\"class\": %d, \"name\": ", c ? ", " : "", c);
                json_str(class_name(names, n_names, c, nb, sizeof nb));
                printf(", \"precision\": ");
                json_num(100 * pr[m][c]);
                printf(", \"recall\": ");
                json_num(100 * rc[m][c]);
                printf(", \"f1\": ");
                json_num(f1[m][c]);
                printf("}");
            }
            printf("], \"confusion\": [");
            for (int i = 0; i < k; i++) {
                printf("%s[", i ? ", " : "");
                for (int j = 0; j < k; j++) printf("%s%lld", j ? ", " : "", (long long)r->st[m].cm[(int64_t)i * k + j]);
                printf("]");
            }
            printf("]}");
        }
        printf(", \"flips\": %lld", (long long)r->flips);
    } else {
        printf("data: %s (%lld samples, classification, %d classes)\n", a->data, (long long)r->n, k);
        for (int m = 0; m < 2; m++)
            printf("%s: %s  %.3f ms/image\n", ROLE[m], a->paths[m], r->st[m].ms_per_image);
        char s0[16], s1[16];
        fmt_pct(sum[0].accuracy, s0, sizeof s0);
        fmt_pct(sum[1].accuracy, s1, sizeof s1);
        printf("\n%-28s %9s %9s %9s\n", "", "fp32", "int8", "drop");
        printf("%-28s %8s%% %8s%% %9.2f\n", "accuracy", s0, s1, 100 * (sum[0].accuracy - sum[1].accuracy));
        printf("%-28s %9.4f %9.4f\n", "macro-F1", sum[0].macro_f1, sum[1].macro_f1);
        printf("\n%-28s %-15s %-22s %-15s\n", "per class (%)", "precision", "recall", "F1");
        printf("%-28s %7s %7s %7s %7s %6s %7s %7s\n", "", "fp32", "int8", "fp32", "int8", "drop", "fp32", "int8");
        for (int c = 0; c < k; c++) {
            char p0[16], p1[16], r0[16], r1[16], d[16];
            fmt_pct(pr[0][c], p0, sizeof p0);
            fmt_pct(pr[1][c], p1, sizeof p1);
            fmt_pct(rc[0][c], r0, sizeof r0);
            fmt_pct(rc[1][c], r1, sizeof r1);
            fmt_pct(rc[0][c] - rc[1][c], d, sizeof d);
            char label[64];
            snprintf(label, sizeof label, "%d %s", c, class_name(names, n_names, c, nb, sizeof nb));
            printf("%-28.28s %7s %7s %7s %7s %6s %7.4f %7.4f\n", label, p0, p1, r0, r1, d, f1[0][c], f1[1][c]);
        }
        for (int c = 0; c < k; c++)
            if (isnan(rc[0][c])) {
                printf("(recall n/a: no sample of the class in the data; it is not gated)\n");
                break;
            }
        print_confusion(r->st[0].cm, k, "fp32");
        print_confusion(r->st[1].cm, k, "int8");
        printf("\nflips: %lld of %lld images changed their top-1 class\n", (long long)r->flips,
               (long long)r->flip_total);
    }
    free(buf);
    (void)g;
}

static void report_segmentation(const validate_args *a, const results *r,
                                const char *const *names, int n_names, double *dice[2], const double mean[2]) {
    int k = r->task.k;
    char nb[32];
    if (a->json) {
        printf("{\"task\": \"segmentation\", \"data\": ");
        json_str(a->data);
        printf(", \"samples\": %lld, \"classes\": %d", (long long)r->n, k);
        for (int m = 0; m < 2; m++) {
            printf(", \"%s\": {\"model\": ", ROLE[m]);
            json_str(a->paths[m]);
            printf(", \"ms_per_image\": ");
            json_num(r->st[m].ms_per_image);
            printf(", \"mean_dice\": ");
            json_num(mean[m]);
            printf(", \"per_class\": [");
            for (int c = 0; c < k; c++) {
                bool absent;
                oct_dice(r->st[m].inter[c], r->st[m].pred[c], r->st[m].lab[c], &absent);
                printf("%s{\"class\": %d, \"name\": ", c ? ", " : "", c);
                json_str(class_name(names, n_names, c, nb, sizeof nb));
                printf(", \"dice\": ");
                json_num(dice[m][c]);
                printf(", \"absent\": %s, \"label_voxels\": %lld, \"predicted_voxels\": %lld}", absent ? "true" : "false",
                       (long long)r->st[m].lab[c], (long long)r->st[m].pred[c]);
            }
            printf("]}");
        }
        printf(", \"flipped_voxels\": %lld, \"voxels\": %lld", (long long)r->flips, (long long)r->flip_total);
    } else {
        printf("data: %s (%lld volumes, segmentation, %d classes, %lld voxels each)\n", a->data, (long long)r->n, k,
               (long long)r->task.voxels);
        for (int m = 0; m < 2; m++)
            printf("%s: %s  %.3f ms/image\n", ROLE[m], a->paths[m], r->st[m].ms_per_image);
        printf("\n%-28s %9s %9s %9s\n", "Dice", "fp32", "int8", "drop");
        printf("%-28s %9.4f %9.4f %9.4f\n", "mean (foreground in labels)", mean[0], mean[1], mean[0] - mean[1]);
        for (int c = 0; c < k; c++) {
            bool absent0, absent1;
            oct_dice(r->st[0].inter[c], r->st[0].pred[c], r->st[0].lab[c], &absent0);
            oct_dice(r->st[1].inter[c], r->st[1].pred[c], r->st[1].lab[c], &absent1);
            char label[64];
            snprintf(label, sizeof label, "%d %s", c, class_name(names, n_names, c, nb, sizeof nb));
            printf("%-28.28s %9.4f %9.4f %9.4f%s\n", label, dice[0][c], dice[1][c], dice[0][c] - dice[1][c],
                   absent0 || absent1 ? "  (absent)" : "");
        }
        printf("(Dice over all voxels of the data set; a class absent from both labels and prediction\n"
               " counts as Dice 1 and is marked (absent); the mean is over foreground classes present in\n"
               " the labels)\n");
        printf("\nflips: %lld of %lld voxels changed their class\n", (long long)r->flips, (long long)r->flip_total);
    }
}

static void report_tail(const validate_args *a, const results *r, oct_gate_result g, const char *const *names,
                        int n_names) {
    char nb[32];
    const char *worst = g.worst_class < 0 ? (r->task.segmentation ? "mean Dice" : "accuracy")
                                          : class_name(names, n_names, g.worst_class, nb, sizeof nb);
    double limit = r->task.segmentation ? a->max_dice_drop : a->max_drop;
    if (a->json) {
        printf(", \"batch_invariance\": {\"checked\": %s, \"samples\": %d, \"batches\": [1, 2, 4], \"differ\": %d, "
               "\"invariant\": %s}",
               r->inv_checked ? "true" : "false", r->inv_samples, r->inv_differ,
               !r->inv_checked ? "null" : r->inv_differ ? "false" : "true");
        printf(", \"gate\": {\"metric\": \"%s\", \"max_drop\": ", r->task.segmentation ? "dice" : "points");
        json_num(limit);
        printf(", \"worst_drop\": ");
        json_num(g.worst_drop);
        printf(", \"worst\": ");
        json_str(worst);
        printf("}, \"verdict\": \"%s\"}\n", g.approved ? "APPROVED" : "REJECTED");
        return;
    }
    if (r->inv_checked)
        printf("batch invariance (int8, first %d samples at batch 1, 2, 4): %s (%d differ)\n", r->inv_samples,
               r->inv_differ ? "no" : "yes", r->inv_differ);
    else
        printf("batch invariance: not checked (the int8 model has a fixed batch of 1)\n");
    if (r->task.segmentation)
        printf("\ngate: mean Dice and every class's Dice may drop by at most %g; worst drop %.4f (%s)\n", limit,
               g.worst_drop, worst);
    else
        printf("\ngate: accuracy and every class's recall may drop by at most %g points; worst drop %.2f (%s)\n",
               limit, g.worst_drop, worst);
    printf("%s\n", g.approved ? "APPROVED" : "REJECTED");
}

static int validate_main(int argc, char **argv) {
    validate_args a;
    if (parse_args(argc, argv, &a)) return CLI_EXIT_USAGE;
    octet_error err = {0};
    oct_preprocess pp = {.scale = 1.f};
    oct_eval_model ms[2];
    memset(ms, 0, sizeof ms);
    results r;
    memset(&r, 0, sizeof r);
    oct_dataset *ds = NULL;
    double *dice_buf = NULL;
    int rc = CLI_EXIT_FAIL;
    if (a.preprocess && oct_preprocess_parse(a.preprocess, &pp, &err)) goto done;
    if (!(ds = oct_dataset_open(a.data, &pp, &err))) goto done;
    int label_rank;
    if (!oct_dataset_labels(ds, &label_rank, NULL)) {
        oct_fail(&err, OCTET_ERR_ARG, "%s: has no labels (array 'y'); validate needs them", a.data);
        goto done;
    }
    r.n = oct_dataset_count(ds);
    if (a.limit && a.limit < r.n) r.n = a.limit;
    if (r.n < 1) {
        oct_fail(&err, OCTET_ERR_ARG, "%s: has no samples", a.data);
        goto done;
    }
    for (int m = 0; m < 2; m++)
        if (oct_eval_model_open(&ms[m], a.paths[m], a.batch, a.threads, &err)) goto done;
    char s0[160], s1[160];
    if (ms[0].in_rank != ms[1].in_rank ||
        memcmp(ms[0].in_dims + 1, ms[1].in_dims + 1, (size_t)(ms[0].in_rank - 1) * sizeof(int64_t)) != 0) {
        oct_fail(&err, OCTET_ERR_SHAPE, "the models take different inputs: fp32 %s, int8 %s",
                 cli_shape_str(ms[0].in_rank, ms[0].in_dims, s0, sizeof s0),
                 cli_shape_str(ms[1].in_rank, ms[1].in_dims, s1, sizeof s1));
        goto done;
    }
    if (run_all(ms, ds, &a, &r, &err)) goto done;

    int n_names;
    const char *const *names = oct_dataset_class_names(ds, &n_names);
    if (names && n_names != r.task.k) {
        oct_fail(&err, OCTET_ERR_SHAPE, "%s: class_names lists %d classes but the model outputs %d", a.data, n_names,
                 r.task.k);
        goto done;
    }
    oct_gate_result g;
    if (oct_eval_gate(&r.st[0], &r.st[1], a.max_drop, a.max_dice_drop, &g, &err)) goto done;
    if (r.task.segmentation) {
        int k = r.task.k;
        dice_buf = malloc((size_t)k * 2 * sizeof(double));
        if (!dice_buf) {
            oct_fail(&err, OCTET_ERR_NOMEM, "out of memory");
            goto done;
        }
        double *dice[2] = {dice_buf, dice_buf + k}, mean[2];
        for (int m = 0; m < 2; m++) oct_eval_dice(&r.st[m], dice[m], &mean[m]);
        report_segmentation(&a, &r, names, n_names, dice, mean);
    } else {
        report_classification(&a, &r, names, n_names, g);
    }
    report_tail(&a, &r, g, names, n_names);
    rc = g.approved ? CLI_EXIT_OK : CLI_EXIT_REJECTED;
done:
    if (rc == CLI_EXIT_FAIL) cli_runtime_error(&err);
    free(dice_buf);
    for (int m = 0; m < 2; m++) {
        oct_eval_free(&r.st[m]);
        oct_eval_model_close(&ms[m]);
    }
    oct_dataset_free(ds);
    return rc;
}

const cli_command cli_cmd_validate = {
    .name = "validate",
    .summary = "compare an int8 model with its fp32 original on labelled data; approve or reject",
    .usage =
        "usage: octet validate FP32.onnx INT8.onnx --data DATA.npz [--preprocess SPEC]\n"
        "                      [--max-drop P] [--max-dice-drop D] [--batch B] [--threads N]\n"
        "                      [--limit N] [--json]\n"
        "\n"
        "Runs both models over the samples of DATA.npz (array x, labels y, optional class_names)\n"
        "and reports, per model: accuracy, per-class precision/recall/F1, macro-F1 and the confusion\n"
        "matrix (classification, labels y [N]), or per-class and mean Dice (segmentation: output\n"
        "[N, C, (D,) H, W], label volumes y [N, (D,) H, W]); the flips (samples whose top-1 class, or\n"
        "voxels whose class, changed); timing in ms per image; and batch-size invariance (the first\n"
        "8 samples run through the int8 model at batch 1, 2 and 4 give the same predictions).\n"
        "\n"
        "The clinical gate: the int8 model is APPROVED when its accuracy and every class's recall are\n"
        "at most P percentage points below the fp32 model's (classification), or its mean Dice and\n"
        "every class's Dice at most D below (segmentation). A drop equal to the limit passes.\n"
        "\n"
        "  --data DATA.npz      x: float32 samples in the model's layout, or uint8 images [N, H, W]\n"
        "                       (a channel axis is added) or [N, H, W, C] (transposed to NCHW)\n"
        "  --preprocess SPEC    how raw images become model input: none (default: x must match the\n"
        "                       model input), raw (resize / gray->RGB only), unit (x/255), imagenet\n"
        "                       (x/255, ImageNet mean/std), or scale=S,mean=M[:M:M],std=S[:S:S].\n"
        "                       With a spec, images are resized (bilinear, half-pixel) to the model's\n"
        "                       H and W and gray is repeated to 3 channels when the model wants them\n"
        "  --max-drop P         classification limit in percentage points (default 1.0)\n"
        "  --max-dice-drop D    segmentation limit in Dice (default 0.01)\n"
        "  --batch B            batch size when both models have a dynamic batch (default 8; else 1)\n"
        "  --threads N          worker threads (default: all cores)\n"
        "  --limit N            use only the first N samples\n"
        "  --json               print one JSON object with every number instead of the text report\n"
        "\n"
        "exit status: 0 APPROVED, 3 REJECTED, 1 error (bad model, data or shapes), 2 bad command line.\n"
        "Timing excludes one untimed warm-up batch per model (plan building). A progress count is\n"
        "shown on stderr when it is a terminal.\n"
        "\n"
        "example:\n"
        "  octet validate model.onnx model_int8.onnx --data brain_tumor_mri_4c_128_val.npz\n",
    .main = validate_main,
};
