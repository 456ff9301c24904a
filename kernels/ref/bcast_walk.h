/* The strided walker behind the broadcasting kernels (internal to kernels/ref). */
#ifndef OCT_BCAST_WALK_H
#define OCT_BCAST_WALK_H

#include "math_kernels.h"

/* Computes n contiguous outputs from inputs in[i] stepping s[i] elements (0: a broadcast value);
   ctx is passed through from the walker's caller. */
typedef void (*oct_bcast_run_fn)(const void *ctx, const void *const *in, const int64_t *s, void *y,
                                 int64_t n);

/* Calls run on each innermost run of output elements [begin, end) of plan bc. */
void oct_bcast_walk(const oct_bcast *bc, const void *const *in, const size_t *elsize, void *y,
                    size_t y_elsize, int64_t begin, int64_t end, oct_bcast_run_fn run, const void *ctx);

#endif
