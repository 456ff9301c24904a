/* Classification and segmentation metrics and the clinical gate (see metrics.h). */
#include "metrics.h"

#include <math.h>

int oct_argmax(const float *scores, int64_t n, int64_t stride) {
    int best = 0;
    for (int64_t c = 1; c < n; c++) {
        float v = scores[c * stride], b = scores[(int64_t)best * stride];
        if (v > b || (isnan(b) && !isnan(v))) best = (int)c;
    }
    return best;
}

void oct_class_metrics(const int64_t *cm, int k, oct_class_summary *sum, double *precision, double *recall,
                       double *f1) {
    int64_t total = 0, correct = 0;
    double f1_sum = 0;
    int f1_count = 0;
    for (int c = 0; c < k; c++) {
        int64_t tp = cm[(int64_t)c * k + c], support = 0, predicted = 0;
        for (int j = 0; j < k; j++) {
            support += cm[(int64_t)c * k + j];
            predicted += cm[(int64_t)j * k + c];
        }
        total += support;
        correct += tp;
        double p = predicted ? (double)tp / (double)predicted : 0.0;
        double r = support ? (double)tp / (double)support : NAN;
        double f = NAN;
        if (support || predicted) {
            double rr = support ? r : 0.0;
            f = p + rr > 0 ? 2 * p * rr / (p + rr) : 0.0;
            f1_sum += f;
            f1_count++;
        }
        if (precision) precision[c] = p;
        if (recall) recall[c] = r;
        if (f1) f1[c] = f;
    }
    if (sum) {
        sum->total = total;
        sum->accuracy = total ? (double)correct / (double)total : NAN;
        sum->macro_f1 = f1_count ? f1_sum / f1_count : NAN;
    }
}

double oct_dice(int64_t intersection, int64_t predicted, int64_t labelled, bool *absent) {
    bool none = predicted + labelled == 0;
    if (absent) *absent = none;
    return none ? 1.0 : 2.0 * (double)intersection / (double)(predicted + labelled);
}

double oct_mean_dice(const double *dice, const int64_t *labelled, int k) {
    double sum = 0;
    int n = 0;
    for (int c = 1; c < k; c++)
        if (labelled[c] > 0) {
            sum += dice[c];
            n++;
        }
    if (n) return sum / n;
    for (int c = 0; c < k; c++) sum += dice[c];
    return k ? sum / k : NAN;
}

bool oct_gate_within(double drop, double max_drop) {
    double slack = 1e-9 * (fabs(max_drop) > 1 ? fabs(max_drop) : 1);
    return drop <= max_drop + slack;
}

/* Records a drop; a NaN drop (a metric that cannot be computed) fails the gate and is the worst.
   Earlier drops win ties, so callers check the overall metric first. */
static void gate_check(oct_gate_result *g, double drop, int cls, double max_drop) {
    if (isnan(drop) || !oct_gate_within(drop, max_drop)) g->approved = false;
    if (isnan(g->worst_drop)) return;
    if (isnan(drop) || drop > g->worst_drop) {
        g->worst_drop = drop;
        g->worst_class = cls;
    }
}

oct_gate_result oct_gate_classification(const int64_t *cm_ref, const int64_t *cm_test, int k,
                                        double max_drop_points) {
    oct_gate_result g = {.approved = true, .worst_drop = -INFINITY, .worst_class = -1};
    int64_t ref_ok = 0, test_ok = 0, total = 0;
    for (int c = 0; c < k; c++)
        for (int j = 0; j < k; j++) total += cm_ref[(int64_t)c * k + j];
    for (int c = 0; c < k; c++) {
        ref_ok += cm_ref[(int64_t)c * k + c];
        test_ok += cm_test[(int64_t)c * k + c];
    }
    gate_check(&g, total ? 100.0 * (double)(ref_ok - test_ok) / (double)total : NAN, -1, max_drop_points);
    for (int c = 0; c < k; c++) {
        int64_t support = 0;
        for (int j = 0; j < k; j++) support += cm_ref[(int64_t)c * k + j];
        int64_t tp_ref = cm_ref[(int64_t)c * k + c], tp_test = cm_test[(int64_t)c * k + c];
        if (support) gate_check(&g, 100.0 * (double)(tp_ref - tp_test) / (double)support, c, max_drop_points);
    }
    return g;
}

oct_gate_result oct_gate_segmentation(const double *dice_ref, double mean_ref, const double *dice_test,
                                      double mean_test, int k, double max_dice_drop) {
    oct_gate_result g = {.approved = true, .worst_drop = -INFINITY, .worst_class = -1};
    gate_check(&g, mean_ref - mean_test, -1, max_dice_drop);
    for (int c = 0; c < k; c++) gate_check(&g, dice_ref[c] - dice_test[c], c, max_dice_drop);
    return g;
}
