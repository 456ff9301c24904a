/* The per-ISA twins of the ref kernels, each compiled with its own flags in kernels/<arch>/<isa>/.
   Only call one after oct_isa_supported() says the CPU has its ISA; dispatch.c does that. */
#ifndef OCT_ISA_KERNELS_H
#define OCT_ISA_KERNELS_H

#if defined(__x86_64__)
/* AVX2 + FMA: 6 x 16 micro-tile in ymm registers. */
void oct_avx2_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                    int ldc, int accumulate);
/* AVX-512 F/BW/VL/DQ: 8 x 48 micro-tile in zmm registers, masked edges. */
void oct_avx512_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                      int ldc, int accumulate);
#endif

#if defined(__aarch64__)
/* NEON (ARMv8.0): 8 x 12 micro-tile with by-lane FMA. */
void oct_neon_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                    int ldc, int accumulate);
#endif

#endif
