/* The per-ISA twins of the direct convolution kernels (ref/direct_conv.h), each compiled with its
   own flags in kernels/<arch>/<isa>/. direct_dispatch.c calls them only on a CPU that has the ISA. */
#ifndef OCT_DIRECT_ISA_H
#define OCT_DIRECT_ISA_H

#include "ref/direct_conv.h"

#if defined(__x86_64__)
/* fp32: 8 output channels x 3 rows of 16 pixels in zmm registers, masked loads at the edges. */
void oct_avx512_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh);
/* fp32: 2 x (4 output channels x 3 rows of 8 pixels) in ymm registers. */
void oct_avx2_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh);
/* int8, AVX-512 VNNI: VPDPBUSD over the ref quad layout, 8 channels x 3 rows of 16 pixels. */
void oct_vnni_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                       int64_t od, int64_t oh0, int64_t nh);
/* int8, AVX2: VPMADDWD over even/odd byte pairs; its own weight layout (int16 pairs). */
size_t oct_avx2_dconv_s8_wbytes(const oct_dconv_s8_shape *s);
void oct_avx2_dconv_s8_pack(const oct_dconv_s8_shape *s, const uint8_t *w, int w_u8, void *buf, int32_t *wsum);
void oct_avx2_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                       int64_t od, int64_t oh0, int64_t nh);
/* The slab repack with SSE2/AVX2 byte interleaves (channel layout; folded slabs use ref). */
void oct_avx2_dconv_s8_repack(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                              const oct_dconv_slab *sl, uint8_t *slab);
#elif defined(__aarch64__)
/* fp32: 8 output channels x 3 rows of 4 pixels in q registers, zero-padded row copies at the edges. */
void oct_neon_dconv_f32(const oct_dconv_f32 *a, int64_t mblk, int64_t od, int64_t oh0, int64_t nh);
/* int8, dot-product extension: SDOT by lane over the ref quad layout, 8 channels x 3 rows of 4
   pixels; its repack stores x - 128 (SDOT is int8 x int8). */
void oct_dotprod_dconv_s8_repack(const oct_dconv_s8_shape *s, const uint8_t *x, uint8_t x_xor, uint8_t pad,
                                 const oct_dconv_slab *sl, uint8_t *slab);
void oct_dotprod_dconv_s8(const oct_dconv_s8 *a, const uint8_t *slab, const oct_dconv_slab *sl, int64_t mblk,
                          int64_t od, int64_t oh0, int64_t nh);
#endif

#endif
