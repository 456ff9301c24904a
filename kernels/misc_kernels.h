/* The fast kernels of the memory-bound ops (pooling, quantize/dequantize, int8 element-wise and
   lookup tables, plane sums), one set per ISA level. Each entry has a ref twin it must match:

     entry          ref twin                      agreement
     maxpool_*      oct_ref_maxpool_* (idx NULL)   bit for bit on non-NaN data
     avgpool_f32    oct_ref_avgpool_f32            rounding (the sums run in another order)
     quantize_*     oct_ref_quantize_f32_*         bit for bit (division, then ties to even)
     dequantize_*   oct_ref_dequantize_*           bit for bit
     qbinary        oct_ref_qbinary                bit for bit
     qlut           oct_ref_qlut                   bit for bit
     qsum           oct_ref_qsum (sum only)        exact
     sum_f32        oct_ref_sum_f32                rounding (float partial sums, added in double)
     max_f32        oct_ref_max_f32                bit for bit on non-NaN data

   The vector sets are one portable source (kernels/vec/misc_vec.c) that the compiler vectorises
   under each ISA's flags, plus hand-written table lookups where the compiler cannot (AVX-512 VBMI
   VPERMI2B, NEON TBL) and the AVX-512 8-bit max pooling (masked byte loads, stride-2 column picks
   by VPMOVWB or VPERMT2B, which the compiler does not find). The pooling entries take dilation 1
   only and write no indices; the ops send other cases to ref. */
#ifndef OCT_MISC_KERNELS_H
#define OCT_MISC_KERNELS_H

#include <stdint.h>

#include "ref/nn_kernels.h"
#include "ref/qops_kernels.h"

typedef struct oct_misc_kernel_set {
    const char *name;
    void (*maxpool_f32)(const oct_conv_geom *g, const float *x, float *y);
    void (*maxpool_u8)(const oct_conv_geom *g, const uint8_t *x, uint8_t *y);
    void (*maxpool_s8)(const oct_conv_geom *g, const int8_t *x, int8_t *y);
    void (*avgpool_f32)(const oct_conv_geom *g, const int64_t pad_end[3], int count_include_pad,
                        const float *x, float *y);
    void (*quantize_f32_u8)(const float *x, int64_t n, float scale, int32_t zp, uint8_t *y);
    void (*quantize_f32_s8)(const float *x, int64_t n, float scale, int32_t zp, int8_t *y);
    void (*dequantize_u8)(const uint8_t *x, int64_t n, float scale, int32_t zp, float *y);
    void (*dequantize_s8)(const int8_t *x, int64_t n, float scale, int32_t zp, float *y);
    void (*qbinary)(const oct_qbinary *q, const oct_bcast *bc, const uint8_t *a, const uint8_t *b,
                    uint8_t *y, int64_t begin, int64_t end);
    void (*qlut)(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y);
    int64_t (*qsum)(const uint8_t *x, int is_s8, int64_t n);
    double (*sum_f32)(const float *x, int64_t n);
    float (*max_f32)(const float *x, int64_t n);
} oct_misc_kernel_set;

/* Ref twins that have no other home (kernels/ref/pool.c, kernels/ref/qpool.c): the sum (in
   double) and the max of a float plane, and the integer sum of an 8-bit plane. */
double oct_ref_sum_f32(const float *x, int64_t n);
float oct_ref_max_f32(const float *x, int64_t n);
int64_t oct_ref_qsum_plane(const uint8_t *x, int is_s8, int64_t n);

/* The set of the ISA level oct_kernels() selected (OCTET_ISA lowers it like the other tables). */
const oct_misc_kernel_set *oct_misc_kernels(void);

/* The sets; a vector set is only returned by oct_misc_kernels() when the CPU runs its ISA. */
extern const oct_misc_kernel_set oct_ref_misc_kernels;
#if defined(__x86_64__)
extern const oct_misc_kernel_set oct_avx2_misc_kernels;
extern const oct_misc_kernel_set oct_avx512_misc_kernels;
/* AVX-512 VBMI: oct_avx512_misc_kernels with a VPERMI2B table lookup. */
extern const oct_misc_kernel_set oct_avx512vbmi_misc_kernels;
void oct_vbmi_qlut(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y);
/* 8-bit max pooling for the geometries oct_avx512_maxpool8_fits accepts (row stride 1 or 2,
   k[2] <= 4): the maxpool_u8/s8 of oct_avx512_misc_kernels with AVX-512BW
   (x86/avx512/maxpool8_avx512.c) and of oct_avx512vbmi_misc_kernels with VPERMT2B
   (x86/avx512/maxpool8_vbmi.c). */
int oct_avx512_maxpool8_fits(const oct_conv_geom *g);
void oct_avx512_maxpool_u8(const oct_conv_geom *g, const uint8_t *x, uint8_t *y);
void oct_avx512_maxpool_s8(const oct_conv_geom *g, const int8_t *x, int8_t *y);
void oct_vbmi_maxpool_u8(const oct_conv_geom *g, const uint8_t *x, uint8_t *y);
void oct_vbmi_maxpool_s8(const oct_conv_geom *g, const int8_t *x, int8_t *y);
#endif
#if defined(__aarch64__)
extern const oct_misc_kernel_set oct_neon_misc_kernels;
#endif

#endif
