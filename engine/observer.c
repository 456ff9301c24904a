/* Observers and threshold searches; see observer.h. */
#include "observer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void oct_observer_init(oct_observer *o) {
    memset(o, 0, sizeof *o);
    o->min = INFINITY;
    o->max = -INFINITY;
}

void oct_observer_free(oct_observer *o) {
    free(o->pos);
    free(o->neg);
    o->pos = o->neg = NULL;
}

void oct_observer_minmax(oct_observer *o, const float *x, int64_t n) {
    float lo = INFINITY, hi = -INFINITY;
    int64_t seen = 0;
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        seen++;
    }
    if (lo < o->min) o->min = lo;
    if (hi > o->max) o->max = hi;
    o->count += seen;
}

int oct_observer_begin_hist(oct_observer *o, octet_error *err) {
    oct_observer_free(o);
    o->pos = calloc(OCT_OBS_BINS, sizeof(double));
    o->neg = calloc(OCT_OBS_BINS, sizeof(double));
    if (!o->pos || !o->neg) {
        oct_observer_free(o);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for calibration histograms");
    }
    o->amax = o->count ? fmax(fabs(o->min), fabs(o->max)) : 0.0;
    o->hist_count = 0;
    return 0;
}

void oct_observer_hist(oct_observer *o, const float *x, int64_t n) {
    if (!o->pos) return;
    const double per_bin = o->amax > 0 ? OCT_OBS_BINS / o->amax : 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        const double a = fabs((double)v) * per_bin;
        const int b = a >= OCT_OBS_BINS - 1 ? OCT_OBS_BINS - 1 : (int)a;
        if (v < 0) o->neg[b] += 1;
        else o->pos[b] += 1;
        o->hist_count++;
    }
}

double oct_threshold_percentile(const double *hist, int nbins, double amax, double percentile) {
    double total = 0;
    for (int b = 0; b < nbins; b++) total += hist[b];
    if (total <= 0 || amax <= 0) return amax;
    const double want = total * percentile / 100.0;
    double cum = 0;
    for (int b = 0; b < nbins; b++) {
        cum += hist[b];
        if (cum >= want) return amax * (b + 1) / nbins;
    }
    return amax;
}

/* KL(P || Q) of the histogram clipped at bin i against its quantization to nq levels
   (TensorRT's entropy calibration). */
static double clipped_kl(const double *hist, int nbins, int i, int nq, double *p, double *q) {
    double outliers = 0;
    for (int b = i; b < nbins; b++) outliers += hist[b];
    double psum = 0;
    for (int b = 0; b < i; b++) {
        p[b] = hist[b];
        psum += p[b];
    }
    p[i - 1] += outliers;
    psum += outliers;
    double qsum = 0;
    for (int j = 0; j < nq; j++) {
        const int start = (int)((int64_t)j * i / nq), stop = (int)((int64_t)(j + 1) * i / nq);
        double sum = 0;
        int nz = 0;
        for (int b = start; b < stop; b++) {
            sum += hist[b];
            nz += hist[b] != 0;
        }
        for (int b = start; b < stop; b++) {
            q[b] = hist[b] != 0 ? sum / nz : 0.0;
            qsum += q[b];
        }
    }
    if (psum <= 0 || qsum <= 0) return INFINITY;
    double kl = 0;
    for (int b = 0; b < i; b++) {
        if (p[b] <= 0) continue;
        const double pp = p[b] / psum, qq = q[b] > 0 ? q[b] / qsum : 1e-12;
        kl += pp * log(pp / qq);
    }
    return kl;
}

double oct_threshold_entropy(const double *hist, int nbins, double amax, int levels) {
    const int nq = levels + 1;
    if (amax <= 0 || nbins <= nq) return amax;
    double *p = malloc((size_t)nbins * sizeof(double)), *q = malloc((size_t)nbins * sizeof(double));
    if (!p || !q) {
        free(p);
        free(q);
        return amax; /* without scratch memory: the full range, which is always valid */
    }
    /* Bin 0 (exact zeros after Relu, most of the data) quantizes to ~0 whatever the threshold;
       left in, its spike dominates P and drives the threshold far too low. */
    double *h = malloc((size_t)nbins * sizeof(double));
    if (!h) {
        free(p);
        free(q);
        return amax;
    }
    memcpy(h, hist, (size_t)nbins * sizeof(double));
    h[0] = 0;
    double best_kl = INFINITY;
    int best = nbins;
    for (int i = nq; i <= nbins; i++) {
        const double kl = clipped_kl(h, nbins, i, nq, p, q);
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    free(h);
    free(p);
    free(q);
    return amax * best / nbins;
}

/* Expected squared error of quantizing the histogram (values at bin centres) to `levels` steps
   over [0, T]: step^2/12 inside, the clipping distance squared outside. Suffix sums make each
   candidate O(1). */
double oct_threshold_mse(const double *hist, int nbins, double amax, int levels) {
    if (amax <= 0 || nbins < 1) return amax;
    const double w = amax / nbins;
    double *s0 = calloc((size_t)nbins + 1, sizeof(double)), *s1 = calloc((size_t)nbins + 1, sizeof(double)),
           *s2 = calloc((size_t)nbins + 1, sizeof(double));
    if (!s0 || !s1 || !s2) {
        free(s0);
        free(s1);
        free(s2);
        return amax;
    }
    for (int b = nbins - 1; b >= 0; b--) {
        const double c = (b + 0.5) * w;
        s0[b] = s0[b + 1] + hist[b];
        s1[b] = s1[b + 1] + hist[b] * c;
        s2[b] = s2[b + 1] + hist[b] * c * c;
    }
    double best_err = INFINITY;
    int best = nbins;
    for (int i = 1; i <= nbins; i++) {
        const double t = i * w, step = t / levels;
        const double inside = (s0[0] - s0[i]) * step * step / 12.0;
        const double clipped = s2[i] - 2 * t * s1[i] + t * t * s0[i];
        const double e = inside + clipped;
        if (e < best_err) {
            best_err = e;
            best = i;
        }
    }
    free(s0);
    free(s1);
    free(s2);
    return best * w;
}

int oct_observer_range(const oct_observer *o, oct_calib_method m, double percentile, bool symmetric, double *lo,
                       double *hi, octet_error *err) {
    if (!o->count) {
        *lo = *hi = 0.0;
        return 0;
    }
    double t = fmax(fabs(o->min), fabs(o->max));
    if (m != OCT_CALIB_MINMAX) {
        if (!o->pos) return oct_fail(err, OCTET_ERR_INTERNAL, "calibration histogram missing");
        if (m == OCT_CALIB_PERCENTILE && !(percentile > 0 && percentile <= 100))
            return oct_fail(err, OCTET_ERR_ARG, "percentile %g is outside (0, 100]", percentile);
        double mag[OCT_OBS_BINS];
        for (int b = 0; b < OCT_OBS_BINS; b++) mag[b] = o->pos[b] + o->neg[b];
        const int levels = !symmetric && o->min >= 0 ? 255 : 127;
        t = m == OCT_CALIB_PERCENTILE ? oct_threshold_percentile(mag, OCT_OBS_BINS, o->amax, percentile)
            : m == OCT_CALIB_ENTROPY  ? oct_threshold_entropy(mag, OCT_OBS_BINS, o->amax, levels)
                                      : oct_threshold_mse(mag, OCT_OBS_BINS, o->amax, levels);
    }
    *lo = fmin(0.0, fmax(o->min, -t));
    *hi = fmax(0.0, fmin(o->max, t));
    return 0;
}

double oct_observer_clip_rate(const oct_observer *o, double lo, double hi) {
    if (!o->pos || o->hist_count <= 0 || o->amax <= 0) return 0.0;
    const double w = o->amax / OCT_OBS_BINS;
    double out = 0;
    for (int b = 0; b < OCT_OBS_BINS; b++) {
        /* a bin counts when it lies wholly outside (its lower edge beyond the limit) */
        const double edge = b * w * (1 + 1e-12);
        if (edge > hi) out += o->pos[b];
        if (edge > -lo) out += o->neg[b];
    }
    return out / (double)o->hist_count;
}
