/* One model over a labelled data set and the gate between two runs (see evaluate.h). */
#include "evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "error.h"
#include "model.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the model ---- */

int oct_eval_model_adopt(oct_eval_model *m, const octet_model *model, bool owned, const char *label, int batch,
                         int threads, octet_error *err) {
    memset(m, 0, sizeof *m);
    m->model = model;
    m->owned = owned;
    m->label = label;
    if (!model) return -1;
    const oct_graph *g = model->graph;
    if (g->n_inputs != 1 || g->n_outputs < 1)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: has %d inputs and %d outputs; evaluation needs 1 input",
                        label, g->n_inputs, g->n_outputs);
    const oct_value *in = &g->values[g->inputs[0]];
    m->dynamic_batch = in->rank >= 1 && (in->dim_params[0] != NULL || in->dims[0] < 0);
    if (!m->dynamic_batch && in->rank >= 1 && in->dims[0] != 1)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "%s: input '%s' has a fixed batch of %lld; evaluation needs a dynamic batch or batch 1", label,
                        in->name, (long long)in->dims[0]);
    octet_session_options opts = {.threads = threads, .batch = m->dynamic_batch ? batch : 1};
    m->session = octet_session_create(model, &opts, err);
    if (!m->session) return oct_fail_context(err, "%s", label);
    octet_dtype dt;
    octet_session_input_info(m->session, 0, &m->in_name, &dt, &m->in_rank, m->in_dims);
    octet_session_output_info(m->session, 0, &m->out_name, NULL, NULL, NULL);
    if (dt != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: input '%s' is %s; evaluation feeds float32", label,
                        m->in_name, octet_dtype_name(dt));
    return 0;
}

int oct_eval_model_open(oct_eval_model *m, const char *path, int batch, int threads, octet_error *err) {
    return oct_eval_model_adopt(m, octet_model_load(path, err), true, path, batch, threads, err);
}

void oct_eval_model_close(oct_eval_model *m) {
    octet_session_free(m->session);
    if (m->owned) octet_model_free((octet_model *)m->model);
    memset(m, 0, sizeof *m);
}

int oct_eval_model_run(oct_eval_model *m, const octet_tensor *x, octet_tensor *y, octet_error *err) {
    memset(y, 0, sizeof *y);
    double t0 = now_ms();
    if (octet_session_run(m->session, 1, &m->in_name, x, 1, &m->out_name, y, err)) return -1;
    m->run_ms += now_ms() - t0;
    if (y->dtype != OCTET_FLOAT) {
        octet_dtype dt = y->dtype;
        octet_tensor_release(y);
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "output '%s' is %s; evaluation reads float32 scores", m->out_name,
                        octet_dtype_name(dt));
    }
    return 0;
}

int oct_eval_common_batch(const oct_eval_model *a, const oct_eval_model *b, int batch) {
    return a->dynamic_batch && (!b || b->dynamic_batch) ? batch : 1;
}

/* ---- what the output means ---- */

static int task_from_output(const octet_tensor *y, int64_t batch, int label_rank, const int64_t *label_dims,
                            oct_task_shape *t, octet_error *err) {
    char ys[160], ls[160];
    cli_shape_str(y->rank, y->dims, ys, sizeof ys);
    cli_shape_str(label_rank, label_dims, ls, sizeof ls);
    if (y->rank < 2 || y->dims[0] != batch || y->dims[1] < 1 || y->dims[1] > 1 << 20)
        return oct_fail(err, OCTET_ERR_SHAPE, "model output %s is not [N, classes, ...] for a batch of %lld", ys,
                        (long long)batch);
    t->k = (int)y->dims[1];
    t->voxels = 1;
    if (label_rank == 1) {
        for (int d = 2; d < y->rank; d++)
            if (y->dims[d] != 1)
                return oct_fail(err, OCTET_ERR_SHAPE,
                                "labels y %s are one class per sample but the model output %s is not [N, classes]", ls,
                                ys);
        t->segmentation = 0;
        return 0;
    }
    int skip = label_rank == y->rank && label_dims[1] == 1 ? 2 : 1; /* [N, 1, spatial] labels */
    int ok = label_rank - skip == y->rank - 2;
    for (int d = 0; ok && d < y->rank - 2; d++) {
        ok = label_dims[skip + d] == y->dims[2 + d];
        t->voxels *= y->dims[2 + d];
    }
    if (!ok)
        return oct_fail(err, OCTET_ERR_SHAPE,
                        "label volumes y %s do not match the model output %s ([N, classes, spatial...])", ls, ys);
    t->segmentation = 1;
    return 0;
}

static int alloc_results(oct_eval *e, octet_error *err) {
    const size_t k = (size_t)e->task.k;
    if (e->task.segmentation) {
        e->inter = calloc(k, sizeof *e->inter);
        e->pred = calloc(k, sizeof *e->pred);
        e->lab = calloc(k, sizeof *e->lab);
        if (!e->inter || !e->pred || !e->lab) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    } else {
        if (k > 65536) return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%zu classes are too many for a confusion matrix", k);
        if (!(e->cm = calloc(k * k, sizeof *e->cm))) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    /* One prediction per label entry: never more than the labels the data set already holds. */
    if (e->task.voxels > INT64_MAX / (int64_t)sizeof(int) / (e->n > 0 ? e->n : 1))
        return oct_fail(err, OCTET_ERR_NOMEM, "%lld samples of %lld voxels: too many predictions to keep",
                        (long long)e->n, (long long)e->task.voxels);
    if (!(e->top = malloc((size_t)(e->n * e->task.voxels) * sizeof *e->top + 1)))
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for %lld predictions",
                        (long long)(e->n * e->task.voxels));
    return 0;
}

void oct_eval_free(oct_eval *e) {
    free(e->cm);
    free(e->inter);
    free(e->pred);
    free(e->lab);
    free(e->top);
    memset(e, 0, sizeof *e);
}

/* Argmax over the class axis of each of count samples (one per voxel for segmentation). */
static void predict(const octet_tensor *y, const oct_task_shape *t, int64_t count, int *out) {
    const float *s = y->data;
    const int64_t v = t->voxels;
#pragma omp parallel for
    for (int64_t i = 0; i < count; i++)
        for (int64_t p = 0; p < v; p++) out[i * v + p] = oct_argmax(s + i * t->k * v + p, t->k, v);
}

/* Adds the predictions of samples [start, start+count) to the statistics. */
static int accumulate(oct_eval *e, int64_t start, int64_t count, const int64_t *labels, octet_error *err) {
    const int k = e->task.k;
    const int64_t v = e->task.voxels;
    for (int64_t i = start * v; i < (start + count) * v; i++) {
        const int64_t truth = labels[i];
        if (truth < 0 || truth >= k)
            return oct_fail(err, OCTET_ERR_SHAPE, "label %lld of sample %lld is outside the model's %d classes",
                            (long long)truth, (long long)(i / v), k);
        const int c = e->top[i];
        if (e->task.segmentation) {
            e->pred[c]++;
            e->lab[truth]++;
            e->inter[c] += c == truth;
        } else {
            e->cm[truth * k + c]++;
        }
    }
    return 0;
}

int oct_eval_run(oct_eval_model *m, const oct_dataset *ds, int64_t n, int batch, const char *progress_label,
                 oct_eval *e, octet_error *err) {
    memset(e, 0, sizeof *e);
    e->n = n;
    int label_rank;
    const int64_t *label_dims;
    const int64_t *labels = oct_dataset_labels(ds, &label_rank, &label_dims);
    if (!labels) return oct_fail(err, OCTET_ERR_ARG, "the data set has no labels (array 'y')");
    if (n < 1 || n > oct_dataset_count(ds))
        return oct_fail(err, OCTET_ERR_ARG, "cannot evaluate %lld of the data set's %lld samples", (long long)n,
                        (long long)oct_dataset_count(ds));
    if (!m->dynamic_batch) batch = 1;
    double timed = 0;
    for (int64_t start = 0; start < n; start += batch) {
        const int count = n - start < batch ? (int)(n - start) : batch;
        octet_tensor x, y;
        if (oct_dataset_batch(ds, start, count, m->in_rank, m->in_dims, &x, err)) goto fail;
        if (start == 0) { /* warm-up, untimed: the first run of a shape builds its plan */
            int failed = oct_eval_model_run(m, &x, &y, err);
            octet_tensor_release(&y);
            if (failed) {
                octet_tensor_release(&x);
                goto fail;
            }
        }
        const double before = m->run_ms;
        int failed = oct_eval_model_run(m, &x, &y, err);
        octet_tensor_release(&x);
        if (failed) goto fail;
        timed += m->run_ms - before;
        if (start == 0 && (task_from_output(&y, count, label_rank, label_dims, &e->task, err) || alloc_results(e, err))) {
            octet_tensor_release(&y);
            goto fail;
        }
        if (y.rank < 2 || y.dims[0] != count || y.dims[1] != e->task.k ||
            octet_tensor_numel(&y) != count * e->task.k * e->task.voxels) {
            char ys[160];
            oct_fail(err, OCTET_ERR_SHAPE, "output %s changes shape with the batch (first batch: [%d, %d, ...])",
                     cli_shape_str(y.rank, y.dims, ys, sizeof ys), batch, e->task.k);
            octet_tensor_release(&y);
            goto fail;
        }
        predict(&y, &e->task, count, e->top + start * e->task.voxels);
        octet_tensor_release(&y);
        if (accumulate(e, start, count, labels, err)) goto fail;
        if (progress_label)
            fprintf(stderr, "\r%s: %lld/%lld", progress_label, (long long)(start + count), (long long)n);
    }
    if (progress_label) fprintf(stderr, "\r\033[K");
    e->ms_per_image = timed / (double)n;
    return 0;
fail:
    if (progress_label) fprintf(stderr, "\n");
    oct_fail_context(err, "%s", m->label);
    oct_eval_free(e);
    return -1;
}

int64_t oct_eval_flips(const oct_eval *a, const oct_eval *b, int64_t *total) {
    const int64_t n = (a->n < b->n ? a->n : b->n) * a->task.voxels;
    int64_t flips = 0;
    for (int64_t i = 0; i < n; i++) flips += a->top[i] != b->top[i];
    if (total) *total = a->task.segmentation ? n : n / a->task.voxels;
    return flips;
}

void oct_eval_dice(const oct_eval *e, double *dice, double *mean) {
    for (int c = 0; c < e->task.k; c++) dice[c] = oct_dice(e->inter[c], e->pred[c], e->lab[c], NULL);
    *mean = oct_mean_dice(dice, e->lab, e->task.k);
}

int oct_eval_gate(const oct_eval *ref, const oct_eval *test, double max_drop_points, double max_dice_drop,
                  oct_gate_result *g, octet_error *err) {
    if (ref->task.segmentation != test->task.segmentation || ref->task.k != test->task.k ||
        ref->task.voxels != test->task.voxels || ref->n != test->n)
        return oct_fail(err, OCTET_ERR_SHAPE, "the two models disagree on the task: %d vs %d classes over %lld vs %lld samples",
                        ref->task.k, test->task.k, (long long)ref->n, (long long)test->n);
    if (!ref->task.segmentation) {
        *g = oct_gate_classification(ref->cm, test->cm, ref->task.k, max_drop_points);
        return 0;
    }
    double *dice = malloc((size_t)ref->task.k * 2 * sizeof *dice);
    if (!dice) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    double mean[2];
    oct_eval_dice(ref, dice, &mean[0]);
    oct_eval_dice(test, dice + ref->task.k, &mean[1]);
    *g = oct_gate_segmentation(dice, mean[0], dice + ref->task.k, mean[1], ref->task.k, max_dice_drop);
    free(dice);
    return 0;
}

double oct_eval_headline(const oct_eval *e) {
    if (!e->task.segmentation) {
        oct_class_summary s;
        oct_class_metrics(e->cm, e->task.k, &s, NULL, NULL, NULL);
        return 100 * s.accuracy;
    }
    double *dice = malloc((size_t)e->task.k * sizeof *dice + 1), mean = NAN;
    if (dice) oct_eval_dice(e, dice, &mean);
    free(dice);
    return mean;
}
