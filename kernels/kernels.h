/* Kernels: pure functions over pointers and sizes, no graph knowledge. ref/ holds the portable C
   of every kernel; each ISA directory holds faster twins. dispatch.c picks one set at start-up. */
#ifndef OCT_KERNELS_H
#define OCT_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Activation applied in a kernel's write-back; mirrors oct_act_kind in engine/graph.h. */
typedef struct {
    int kind;          /* oct_act_kind */
    float alpha, beta;
} oct_act;

static inline float oct_act_apply(const oct_act *a, float x) {
    switch (a->kind) {
    case 0: return x;
    case 1: return x > 0.f ? x : 0.f;
    case 2: return x < a->alpha ? a->alpha : (x > a->beta ? a->beta : x);
    case 3: return x < 0.f ? a->alpha * x : x;
    case 4: return 1.f / (1.f + expf(-x));
    case 5: return x / (1.f + expf(-x));
    case 6: { float t = x / 6.f + 0.5f; t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t); return x * t; }
    case 7: { float t = a->alpha * x + a->beta; return t < 0.f ? 0.f : (t > 1.f ? 1.f : t); }
    case 8: return tanhf(x);
    default: return x;
    }
}

typedef enum { OCT_ISA_REF = 0, OCT_ISA_AVX2, OCT_ISA_AVX512, OCT_ISA_VNNI, OCT_ISA_NEON,
               OCT_ISA_DOTPROD, OCT_ISA_COUNT } oct_isa;

/* C[m x n] = A[m x k] * B[k x n] (+ C if accumulate); row-major with leading dimensions. */
typedef void (*oct_sgemm_fn)(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                             float *c, int ldc, int accumulate);

typedef struct {
    oct_isa isa;
    const char *name;
    oct_sgemm_fn sgemm;
    const struct oct_quant_kernel_set *quant; /* the int8 set (ref/quant_kernels.h, quant_isa.h) */
} oct_kernel_table;

/* The table for the best ISA the CPU has, lowered by OCTET_ISA=ref|avx2|avx512|vnni|neon|dotprod.
   Asking for an ISA the CPU lacks falls back to the best available one below it. */
const oct_kernel_table *oct_kernels(void);
/* Re-reads OCTET_ISA (tests switch ISA inside one process). */
void oct_kernels_reset(void);
const char *oct_isa_name(oct_isa isa);
/* True if the running CPU can execute isa. */
int oct_isa_supported(oct_isa isa);

/* Reference kernels. */
void oct_ref_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                   int ldc, int accumulate);

#endif
