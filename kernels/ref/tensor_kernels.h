/* Reference kernels of the tensor op family (data movement and resampling). They know nothing
   of graphs: pointers, element sizes, dims. `threads` is the OpenMP team size they may use. */
#ifndef OCT_TENSOR_KERNELS_H
#define OCT_TENSOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* dst = src transposed: output dim k is input dim perm[k]. Works on elements of esize bytes;
   merges dims that stay adjacent, copies contiguous runs with memcpy and transposes the rest in
   cache-sized tiles. rank <= 8. */
void oct_ref_transpose(const void *src, void *dst, size_t esize, int rank, const int64_t *dims,
                       const int *perm, int threads);

/* Resampling along one axis: output coordinate o reads the input at index[o*taps + t] with
   weight[o*taps + t] for t < taps. Indices are already clamped into the input. */
typedef struct {
    int64_t in_len, out_len;
    int taps;               /* 1 for nearest, 2 linear, 4 cubic */
    const int64_t *index;   /* out_len * taps */
    const float *weight;    /* out_len * taps; NULL when taps == 1 (weight 1) */
    const uint8_t *outside; /* out_len flags: the coordinate maps outside the input and takes the
                               extrapolation value (tf_crop_and_resize); NULL: never */
} oct_resize_axis;

/* Nearest-neighbour resize of any element type (taps must be 1 on every axis). `fill` is the
   esize-byte element written where an axis marks a coordinate outside. */
void oct_ref_resize_nearest(const void *src, void *dst, size_t esize, int rank,
                            const oct_resize_axis *axes, const void *fill, int threads);

/* Separable linear/cubic resize of float32: the weighted sum over the taps of every axis. */
void oct_ref_resize_f32(const float *src, float *dst, int rank, const oct_resize_axis *axes,
                        float extrapolation, int threads);

#endif
