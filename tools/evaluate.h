/* One model over a labelled data set, and the clinical gate between two such runs: the part of
   `octet validate` that `octet quantize --target-drop` (automatic mixed precision) reuses, so that
   both commands approve or reject a model by exactly the same rule. */
#ifndef OCT_EVALUATE_H
#define OCT_EVALUATE_H

#include <stdbool.h>
#include <stdint.h>

#include "dataset.h"
#include "metrics.h"
#include "octet.h"

/* A model with a session, its single float input and output 0. */
typedef struct {
    const octet_model *model;
    bool owned; /* close frees the model */
    octet_session *session;
    const char *label; /* for messages: the path, or a description */
    const char *in_name, *out_name;
    int dynamic_batch;
    int in_rank;
    int64_t in_dims[OCTET_MAX_RANK];
    double run_ms; /* accumulated by oct_eval_model_run */
} oct_eval_model;

/* Loads path and opens a session (batch: the largest batch it will run; 1 for a fixed batch). */
int oct_eval_model_open(oct_eval_model *m, const char *path, int batch, int threads, octet_error *err);
/* As oct_eval_model_open on a model already loaded; with owned, m takes ownership of model (also
   on failure), else the model must outlive m. */
int oct_eval_model_adopt(oct_eval_model *m, const octet_model *model, bool owned, const char *label, int batch,
                         int threads, octet_error *err);
void oct_eval_model_close(oct_eval_model *m);
/* Output 0 of the model on x (timed into run_ms); it must be float32. */
int oct_eval_model_run(oct_eval_model *m, const octet_tensor *x, octet_tensor *y, octet_error *err);
/* The batch both models can run: batch when both have a dynamic batch, else 1. */
int oct_eval_common_batch(const oct_eval_model *a, const oct_eval_model *b, int batch);

/* What the output means: classification (output [N, K], labels [N]) or segmentation (output
   [N, C, spatial...], labels [N, spatial...] or [N, 1, spatial...]). */
typedef struct {
    int segmentation;
    int k;          /* classes */
    int64_t voxels; /* per sample (segmentation), else 1 */
} oct_task_shape;

/* One model's results over the first n samples. */
typedef struct {
    oct_task_shape task;
    int64_t n;
    int64_t *cm;                 /* classification: k x k confusion matrix [truth][pred] */
    int64_t *inter, *pred, *lab; /* segmentation: per class voxel counts */
    int *top;                    /* argmax per sample (classification) or per voxel: n * voxels */
    double ms_per_image;         /* excluding one untimed warm-up batch */
} oct_eval;

/* Runs m over samples [0, n) of ds in batches of `batch` and fills e (free with oct_eval_free).
   The first batch is run once untimed (plan building). A progress count goes to stderr when
   progress_label is not NULL. */
int oct_eval_run(oct_eval_model *m, const oct_dataset *ds, int64_t n, int batch, const char *progress_label,
                 oct_eval *e, octet_error *err);
void oct_eval_free(oct_eval *e);

/* Samples (classification) or voxels (segmentation) whose argmax differs between two runs over
   the same data; *total receives the count compared. */
int64_t oct_eval_flips(const oct_eval *a, const oct_eval *b, int64_t *total);

/* Per-class Dice (k entries) and mean Dice of a segmentation run. */
void oct_eval_dice(const oct_eval *e, double *dice, double *mean);

/* The clinical gate of test against ref (same data): classification, accuracy and every class's
   recall may drop by at most max_drop_points; segmentation, the mean Dice and every class's Dice
   by at most max_dice_drop. Fails with an error when the runs do not describe the same task. */
int oct_eval_gate(const oct_eval *ref, const oct_eval *test, double max_drop_points, double max_dice_drop,
                  oct_gate_result *g, octet_error *err);

/* Accuracy in percent (classification) or mean Dice (segmentation): the one-number summary. */
double oct_eval_headline(const oct_eval *e);

#endif
