/* The kernels of instance normalisation, one set per ISA level, each entry with a ref twin:

     entry            ref twin                     agreement
     shifted_sums     oct_ref_shifted_sums         rounding (double sums in another order)
     scale_shift_act  oct_ref_scale_shift_act      bit for bit where the ref is not contracted
                                                   into FMA (x86); one rounding otherwise
     qsums            oct_ref_qsum                 exact

   Statistics are one pass: the sum and the sum of squares of x - shift, accumulated in double.
   The shift (any element of the plane) keeps sumsq/n - mean^2 free of cancellation when the
   mean is large against the spread, which a plain sum of squares is not. Callers split a plane
   into chunks that share one shift, so the chunks' sums add up to the plane's.

   The vector sets are one portable source (kernels/vec/norm_vec.c) that gcc vectorises under each
   level's flags, built with -ffp-contract=off. */
#ifndef OCT_NORM_KERNELS_H
#define OCT_NORM_KERNELS_H

#include <stdint.h>

#include "kernels.h"

typedef struct oct_norm_kernel_set {
    const char *name;
    /* sum of (x[i] - shift) and of its square over n floats, in double */
    void (*shifted_sums)(const float *x, int64_t n, float shift, double *sum, double *sumsq);
    /* y[i] = act((x[i] - c) * a + b + res[i]) (res may be NULL; the operations in that order).
       Subtracting c (the mean's float part) first keeps the output's precision when the mean
       is large against the spread: x * a + b would cancel digits between x * a and b. */
    void (*scale_shift_act)(const float *x, int64_t n, float c, float a, float b, const float *res,
                            const oct_act *act, float *y);
    /* adds the exact sum and sum of squares of n 8-bit values (int8 when is_s8, else uint8) to
       *sum and *sumsq */
    void (*qsums)(const uint8_t *x, int is_s8, int64_t n, int64_t *sum, int64_t *sumsq);
} oct_norm_kernel_set;

/* Ref twins (kernels/ref/norm.c); oct_ref_qsum is in kernels/ref/qpool.c. */
void oct_ref_shifted_sums(const float *x, int64_t n, float shift, double *sum, double *sumsq);
void oct_ref_scale_shift_act(const float *x, int64_t n, float c, float a, float b, const float *res,
                             const oct_act *act, float *y);

/* The set of the ISA level oct_kernels() selected (OCTET_ISA lowers it like the other tables). */
const oct_norm_kernel_set *oct_norm_kernels(void);

extern const oct_norm_kernel_set oct_ref_norm_kernels;
#if defined(__x86_64__)
extern const oct_norm_kernel_set oct_avx2_norm_kernels;
extern const oct_norm_kernel_set oct_avx512_norm_kernels;
#endif
#if defined(__aarch64__)
extern const oct_norm_kernel_set oct_neon_norm_kernels;
#endif

#endif
