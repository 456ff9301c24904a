/* The ISA-independent half of the fp32 GEMMs: Goto/BLIS cache blocking, the per-thread pack
   buffers, operands packed once ahead of time, and the fused epilogue. Each ISA directory (and
   ref/sgemm_tile.c) supplies its register-blocked micro-tile and the two packing routines, compiled
   with its own flags; this driver walks the blocks and calls them. */
#ifndef OCT_SGEMM_BLOCKED_H
#define OCT_SGEMM_BLOCKED_H

#include <stddef.h>

#include "ref/nn_kernels.h"

/* The micro-tile: c[rows x cols] (+= if load) ap-strip * b-strip over kc, see oct_sgemm_arch.tile. */
typedef void (*oct_sgemm_tile_fn)(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                                  size_t ldc, int load, const oct_epilogue_args *e);

typedef struct oct_sgemm_arch {
    const char *name;
    int mr, nr;     /* micro-tile rows (broadcast side, from A) and columns (vector side, from B) */
    int kc, mc, nc; /* cache blocks: mc is a multiple of mr, nc a multiple of nr */
    /* Packs rows [0, rows) x cols [0, kc) of a (rows <= mr) as ap[p * mr + i], zero-padded to mr. */
    void (*pack_a)(int rows, int kc, const float *a, int lda, float *ap);
    /* Packs rows [0, kc) x cols [0, cols) of b (cols <= nr) as bp[p * nr + j], zero-padded to nr. */
    void (*pack_b)(int kc, int cols, const float *b, int ldb, float *bp);
    /* c[rows x cols] (+= if load) ap-strip * b-strip over kc, where row p of the B strip starts at
       b + p * bs: bs == nr for a packed strip, or ldb when reading B in place (then the tile must not
       read past cols). rows <= mr, cols <= nr. When e is not NULL the tile applies it in its
       write-back; e is then relative to the tile's origin and e->c_cs is 0 or 1. */
    oct_sgemm_tile_fn tile;
    /* Optional (NULL: tile): tile() for a B strip packed contiguously (bs == its padded width) that
       streams from memory rather than cache - weights packed once, Winograd's U - prefetching the
       strip ahead of its loads. */
    oct_sgemm_tile_fn tile_stream;
    int reads_b_in_place; /* tile() honours cols on its B loads, so B need not be packed */
    /* Optional (NULL: a scalar copy): dst[j * ldd + i] = src[i * lds + j] for i, j < 8, the block
       copy of oct_sgemm_store_transposed. */
    void (*transpose8x8)(const float *src, size_t lds, float *dst, size_t ldd);
} oct_sgemm_arch;

/* One GEMM for oct_sgemm_run: c[m x n] = epilogue(a[m x k] * b[k x n] (+ c if accumulate)).
   Either operand may come pre-packed (ap / bp not NULL, in the layout of oct_sgemm_pack_a/_b for
   the same arch, starting at the strip that holds row 0 / column 0), else it is read through a/lda
   or b/ldb. e (NULL: none) is indexed from c's origin, like oct_ref_epilogue's. */
typedef struct {
    int m, n, k;
    const float *a, *ap;
    int lda;
    const float *b, *bp;
    int ldb;
    float *c;
    int ldc;
    int accumulate;
    const oct_epilogue_args *e;
} oct_sgemm_call;

void oct_sgemm_run(const oct_sgemm_arch *arch, const oct_sgemm_call *call);

/* C[m x n] = A[m x k] * B[k x n] (+ C if accumulate), the oct_sgemm_fn contract, with arch's
   kernels. Safe to call from several threads at once: pack buffers are per thread. */
void oct_sgemm_blocked(const oct_sgemm_arch *arch, int m, int n, int k, const float *a, int lda,
                       const float *b, int ldb, float *c, int ldc, int accumulate);

/* Whole-operand packing, done once for constant operands (weights). A is laid out as strips of mr
   rows, each covering all of k (strip s at s * mr * k, element [p * mr + i]); B as strips of nr
   columns (strip t at t * nr * k, element [p * nr + j]); both zero-padded. The sizes are in floats,
   0 when they overflow. b_trans: b holds B transposed (n x k, leading dim ldb), as Gemm's transB. */
size_t oct_sgemm_packed_a_floats(const oct_sgemm_arch *arch, int m, int k);
size_t oct_sgemm_packed_b_floats(const oct_sgemm_arch *arch, int k, int n);
void oct_sgemm_pack_a(const oct_sgemm_arch *arch, int m, int k, const float *a, int lda, float *ap);
void oct_sgemm_pack_b(const oct_sgemm_arch *arch, int k, int n, const float *b, int ldb, int b_trans,
                      float *bp);

/* y[j * ldy + i] = epilogue(ct[i * ldct + j]) for i < m, j < n: stores a product that was computed
   transposed (e.g. a convolution's pixels on the broadcast side, its output channels on the vector
   side) into channel-major y, then applies e (NULL: none; indexed from y's origin, as in
   oct_sgemm_run: row_bias per row j of y) with arch's tiles while the block is still in L1. */
void oct_sgemm_store_transposed(const oct_sgemm_arch *arch, const float *ct, int ldct, int m, int n, float *y,
                                int ldy, const oct_epilogue_args *e);

/* The arch of the ISA level oct_kernels() selected (the ref one for ref): the kernels packed operands
   must be packed for, and run with. */
const oct_sgemm_arch *oct_sgemm_arch_current(void);

/* The per-ISA archs (only those of the built architecture exist) and the portable one. */
extern const oct_sgemm_arch oct_ref_sgemm_arch;
#if defined(__x86_64__)
extern const oct_sgemm_arch oct_avx2_sgemm_arch, oct_avx512_sgemm_arch;
#elif defined(__aarch64__)
extern const oct_sgemm_arch oct_neon_sgemm_arch;
#endif

#endif
