/* Observers: statistics of one activation tensor over the calibration data, and the ways of
   turning them into a clipping range. Values are observed twice: a first pass finds min and max,
   a second fills histograms of |x| (positive and negative values apart) over [0, max(|min|,|max|)],
   from which percentile, entropy and MSE pick a threshold. */
#ifndef OCT_OBSERVER_H
#define OCT_OBSERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define OCT_OBS_BINS 2048

typedef enum { OCT_CALIB_MINMAX = 0, OCT_CALIB_PERCENTILE, OCT_CALIB_ENTROPY, OCT_CALIB_MSE } oct_calib_method;

typedef struct {
    double min, max;   /* over every value seen in the first pass (+inf/-inf before any) */
    int64_t count;     /* values seen in the first pass */
    double amax;       /* histogram range [0, amax], fixed at the start of the second pass */
    double *pos, *neg; /* OCT_OBS_BINS bins each: |x| of x >= 0 and of x < 0 */
    int64_t hist_count;
} oct_observer;

void oct_observer_init(oct_observer *o);
void oct_observer_free(oct_observer *o);
/* First pass: min and max. NaNs are ignored. */
void oct_observer_minmax(oct_observer *o, const float *x, int64_t n);
/* Starts the second pass (allocates the histograms over [0, max |x|]). */
int oct_observer_begin_hist(oct_observer *o, octet_error *err);
/* Second pass: histogram. Values beyond amax (there are none when the data are the same as in the
   first pass) land in the last bin. */
void oct_observer_hist(oct_observer *o, const float *x, int64_t n);

/* The range [*lo, *hi] a method picks; it always contains 0 (an exact zero is needed for padding
   and Relu). Entropy and MSE count the levels the magnitude gets: 255 for non-negative data in
   an asymmetric type, 127 otherwise (symmetric). percentile in (0, 100]. Needs the histograms
   except for minmax. */
int oct_observer_range(const oct_observer *o, oct_calib_method m, double percentile, bool symmetric, double *lo,
                       double *hi, octet_error *err);
/* Fraction of the histogrammed values outside [lo, hi] (to bin resolution); 0 without histograms. */
double oct_observer_clip_rate(const oct_observer *o, double lo, double hi);

/* Threshold search over a histogram of magnitudes, bins of width amax/nbins (exposed for tests). */
double oct_threshold_percentile(const double *hist, int nbins, double amax, double percentile);
double oct_threshold_entropy(const double *hist, int nbins, double amax, int levels);
double oct_threshold_mse(const double *hist, int nbins, double amax, int levels);

#endif
