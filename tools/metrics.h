/* Metrics of `octet validate`: classification (confusion matrix, accuracy, per-class
   precision/recall/F1, macro-F1), segmentation (per-class Dice) and the clinical gate that
   approves an int8 model against its fp32 reference. Pure functions over counts: no I/O, no
   allocation, so that every number can be checked by hand in the tests. */
#ifndef OCT_METRICS_H
#define OCT_METRICS_H

#include <stdbool.h>
#include <stdint.h>

/* Index of the largest of n scores; NaN ranks below every number, ties go to the lowest index. */
int oct_argmax(const float *scores, int64_t n, int64_t stride);

/* Confusion matrix: cm[truth * k + pred], k classes. */
typedef struct {
    double accuracy;  /* fraction of all samples, 0..1 */
    double macro_f1;  /* mean F1 over the classes that occur in the labels or the predictions */
    int64_t total;
} oct_class_summary;

/* Per class c: precision = tp / predicted (0 when nothing was predicted as c), recall = tp / support
   (NaN when c has no sample: a recall that does not exist cannot be gated), F1 = 2pr/(p+r) (0 when
   p+r is 0; NaN when the class occurs in neither labels nor predictions, and then left out of the
   macro-F1). Any of the per-class arrays may be NULL. */
void oct_class_metrics(const int64_t *cm, int k, oct_class_summary *sum, double *precision, double *recall,
                       double *f1);

/* Dice of class c from voxel counts summed over the data set: 2 |P & L| / (|P| + |L|).
   A class absent from both prediction and labels has Dice 1 ("nothing there, nothing found");
   *absent (may be NULL) says so. */
double oct_dice(int64_t intersection, int64_t predicted, int64_t labelled, bool *absent);

/* Mean Dice over the foreground classes (1..k-1) that occur in the labels; over all k classes when
   k == 1 or no foreground class occurs. labelled[c] is the voxel count of class c in the labels. */
double oct_mean_dice(const double *dice, const int64_t *labelled, int k);

/* The verdict and the worst offender, for the report. */
typedef struct {
    bool approved;
    double worst_drop;  /* largest drop seen (points for classification, Dice for segmentation) */
    int worst_class;    /* class of worst_drop, -1 when it is the accuracy / the mean Dice */
} oct_gate_result;

/* Drops are ref - test in percentage points (or Dice units); a drop equal to the limit passes
   (a relative slack of 1e-9 absorbs the rounding of values such as 97.4 - 96.4). */
bool oct_gate_within(double drop, double max_drop);

/* Classification gate: accuracy and the recall of every class that has samples may drop by at most
   max_drop_points percentage points. cm_ref and cm_test are k x k confusion matrices over the same
   labels. */
oct_gate_result oct_gate_classification(const int64_t *cm_ref, const int64_t *cm_test, int k,
                                        double max_drop_points);

/* Segmentation gate: the mean Dice and every class's Dice may drop by at most max_dice_drop. */
oct_gate_result oct_gate_segmentation(const double *dice_ref, double mean_ref, const double *dice_test,
                                      double mean_test, int k, double max_dice_drop);

#endif
