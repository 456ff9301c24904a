/* Data sets for calibration and validation: an .npz with `x` (model-ready float32 [N, ...] or raw
   uint8 images [N, H, W] / [N, H, W, C]) and optionally `y` (int64 labels [N], or label volumes
   [N, ...] for segmentation) and `class_names`. Samples are converted to model-ready float32 one
   batch at a time, so a data set of raw uint8 images never exists as a whole float copy. */
#ifndef OCT_DATASET_H
#define OCT_DATASET_H

#include <stdint.h>

#include "../engine/error.h"
#include "../engine/graph.h"

/* How raw uint8 images become model input (--preprocess). Applied in this order:
   resize (bilinear, to the model input's H and W), gray -> RGB (repeat the channel when the model
   wants 3 channels), x * scale, then (x - mean[c]) / std[c]. */
typedef struct {
    int enabled;     /* 0: x must already match the model input (float32, or uint8 cast as is) */
    float scale;     /* e.g. 1/255 */
    int n_channels;  /* entries used in mean/std (1 or 3; 0: no normalisation) */
    float mean[3], std[3];
} oct_preprocess;

/* Parses a --preprocess spec such as "imagenet" (scale 1/255, ImageNet mean/std), "unit" (scale
   1/255), "none", or "scale=0.0039,mean=0.485:0.456:0.406,std=0.229:0.224:0.225". */
int oct_preprocess_parse(const char *spec, oct_preprocess *pp, octet_error *err);

typedef struct oct_dataset oct_dataset;

/* Opens path (.npz). Reads `x`, `y` (if present) and `class_names` (if present). */
oct_dataset *oct_dataset_open(const char *path, const oct_preprocess *pp, octet_error *err);
void oct_dataset_free(oct_dataset *ds);

int64_t oct_dataset_count(const oct_dataset *ds);
/* Labels: NULL when the file has no `y`. For classification, *rank is 1 and labels[i] is sample i's
   class; for segmentation, *rank > 1 and dims give [N, ...] of the label volumes. */
const int64_t *oct_dataset_labels(const oct_dataset *ds, int *rank, const int64_t **dims);
/* Class names (may be NULL) and their count. */
const char *const *oct_dataset_class_names(const oct_dataset *ds, int *count);

/* Fills x (allocated by the call, release with octet_tensor_release) with samples
   [start, start+count) as float32 of shape [count, input_dims[1..]] where input_dims is the model
   input's shape (rank input_rank, batch dim ignored). Errors name the mismatch. */
int oct_dataset_batch(const oct_dataset *ds, int64_t start, int count, int input_rank,
                      const int64_t *input_dims, octet_tensor *x, octet_error *err);

/* Bilinear resize of one [sh, sw] plane to [dh, dw] with half-pixel centres and no antialiasing,
   as torch's F.interpolate(mode='bilinear', align_corners=False). */
void oct_resize_bilinear(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh, int64_t dw);

#endif
