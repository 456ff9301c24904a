/* The ISA-independent half of the SIMD fp32 GEMMs: Goto/BLIS cache blocking and the per-thread pack
   buffers. Each ISA directory supplies its register-blocked micro-tile and the two packing routines
   (compiled with its own flags); this driver walks the blocks and calls them. */
#ifndef OCT_SGEMM_BLOCKED_H
#define OCT_SGEMM_BLOCKED_H

#include <stddef.h>

typedef struct {
    int mr, nr;     /* micro-tile rows (broadcast side, from A) and columns (vector side, from B) */
    int kc, mc, nc; /* cache blocks: mc is a multiple of mr, nc a multiple of nr */
    /* Packs rows [0, rows) x cols [0, kc) of a (rows <= mr) as ap[p * mr + i], zero-padded to mr. */
    void (*pack_a)(int rows, int kc, const float *a, int lda, float *ap);
    /* Packs rows [0, kc) x cols [0, cols) of b (cols <= nr) as bp[p * nr + j], zero-padded to nr. */
    void (*pack_b)(int kc, int cols, const float *b, int ldb, float *bp);
    /* c[rows x cols] (+= if load) ap-strip * b-strip over kc, where row p of the B strip starts at
       b + p * bs: bs == nr for a packed strip, or ldb when reading B in place (then the tile must not
       read past cols). rows <= mr, cols <= nr. */
    void (*tile)(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                 size_t ldc, int load);
    int reads_b_in_place; /* tile() honours cols on its B loads, so B need not be packed */
} oct_sgemm_arch;

/* C[m x n] = A[m x k] * B[k x n] (+ C if accumulate), the oct_sgemm_fn contract, with arch's
   kernels. Safe to call from several threads at once: pack buffers are per thread. */
void oct_sgemm_blocked(const oct_sgemm_arch *arch, int m, int n, int k, const float *a, int lda,
                       const float *b, int ldb, float *c, int ldc, int accumulate);

#endif
