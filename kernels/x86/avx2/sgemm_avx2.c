/* AVX2 + FMA fp32 GEMM: the micro-tile and packing for oct_sgemm_blocked.

   Micro-tile 6 x 16: 6 rows of A broadcast against 2 ymm of B, 12 ymm accumulators (+2 for B and 1
   for the broadcast fits the 16 registers), 12 FMAs per 8 loads per k step, enough independent chains
   to cover the FMA latency on two pipes. Edges are separate instantiations (rows 1..6, 1..2 vectors)
   with maskload/maskstore on the last vector, so B can also be read in place. On the last k block the
   fused epilogue is applied to the accumulators before they are stored. The streaming twins
   (tile_stream) also prefetch the B strip PF_FLOATS ahead, for weights read from memory (see the
   AVX-512 tile). */
#include <immintrin.h>
#include <stdint.h>

#include "../../isa_kernels.h"
#include "../../sgemm_blocked.h"
#include "sgemm_avx2_act.h"

enum { MR = 6, NR = 16, NV = NR / 8, PF_FLOATS = 2048 };

/* Lanes [0, cols) of 8 set, as maskload/maskstore want them (sign bit per lane). */
static inline __m256i lanes(int cols) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void pack_a(int rows, int kc, const float *a, int lda, float *ap) {
    if (rows == MR) {
        const float *a0 = a, *a1 = a + lda, *a2 = a1 + lda, *a3 = a2 + lda, *a4 = a3 + lda, *a5 = a4 + lda;
        for (int p = 0; p < kc; p++, ap += MR) {
            ap[0] = a0[p];
            ap[1] = a1[p];
            ap[2] = a2[p];
            ap[3] = a3[p];
            ap[4] = a4[p];
            ap[5] = a5[p];
        }
        return;
    }
    for (int p = 0; p < kc; p++, ap += MR) {
        for (int i = 0; i < rows; i++) ap[i] = a[(size_t)i * lda + p];
        for (int i = rows; i < MR; i++) ap[i] = 0.f;
    }
}

static void pack_b(int kc, int cols, const float *b, int ldb, float *bp) {
    if (cols == NR) {
        for (int p = 0; p < kc; p++, b += ldb, bp += NR) {
            _mm256_storeu_ps(bp, _mm256_loadu_ps(b));
            _mm256_storeu_ps(bp + 8, _mm256_loadu_ps(b + 8));
        }
        return;
    }
    const __m256i m0 = lanes(cols), m1 = lanes(cols - 8);
    for (int p = 0; p < kc; p++, b += ldb, bp += NR) {
        _mm256_storeu_ps(bp, _mm256_maskload_ps(b, m0));
        _mm256_storeu_ps(bp + 8, _mm256_maskload_ps(b + 8, m1));
    }
}

/* rows x (nv vectors) of C with the last vector's lanes limited by `last`; rows and nv are constants
   in every instantiation so that acc lives in registers. */
static inline __attribute__((always_inline)) void tile_body(const int rows, const int nv, int kc,
                                                            const float *restrict ap,
                                                            const float *restrict b, size_t bs, float *c,
                                                            size_t ldc, __m256i last, int full, int load,
                                                            const oct_epilogue_args *e, const int stream) {
    __m256 acc[MR][NV];
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) acc[i][v] = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++, ap += MR, b += bs) {
        __m256 bv[NV];
        /* a contiguous B strip: the line this tile reads PF_FLOATS further on (one per 16 floats) */
        if (stream) _mm_prefetch((const char *)(b + PF_FLOATS), _MM_HINT_T0);
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            bv[v] = v == nv - 1 && !full ? _mm256_maskload_ps(b + 8 * v, last) : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            const __m256 av = _mm256_broadcast_ss(ap + i);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        float *cr = c + (size_t)i * ldc;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m256 r = acc[i][v];
            if (v == nv - 1 && !full) {
                if (load) r = _mm256_add_ps(r, _mm256_maskload_ps(cr + 8 * v, last));
                if (e) r = oct_avx2_epilogue(e, i, 8 * v, r, last, 0);
                _mm256_maskstore_ps(cr + 8 * v, last, r);
            } else {
                if (load) r = _mm256_add_ps(r, _mm256_loadu_ps(cr + 8 * v));
                if (e) r = oct_avx2_epilogue(e, i, 8 * v, r, last, 1);
                _mm256_storeu_ps(cr + 8 * v, r);
            }
        }
    }
}

typedef void (*tile_fn)(int kc, const float *ap, const float *b, size_t bs, float *c, size_t ldc,
                        __m256i last, int load, const oct_epilogue_args *e);

/* F: a full last vector (the common case skips the masks entirely); M: a masked one; S: streaming. */
#define TILE_FN(R, V, FULL, KIND, STREAM)                                                               \
    static void tile_##R##x##V##KIND(int kc, const float *ap, const float *b, size_t bs, float *c,       \
                                     size_t ldc, __m256i last, int load, const oct_epilogue_args *e) {  \
        tile_body(R, V, kc, ap, b, bs, c, ldc, last, FULL, load, e, STREAM);                            \
    }
#define TILE_KINDS(R, V) TILE_FN(R, V, 1, F, 0) TILE_FN(R, V, 0, M, 0) TILE_FN(R, V, 1, FS, 1) TILE_FN(R, V, 0, MS, 1)
#define TILE_ROW(R) TILE_KINDS(R, 1) TILE_KINDS(R, 2)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)

/* [stream][rows - 1][vectors - 1][masked last vector] */
#define TILE_ENTRY(R, S) {{tile_##R##x1F##S, tile_##R##x1M##S}, {tile_##R##x2F##S, tile_##R##x2M##S}}
#define TILE_TABLE(S) {TILE_ENTRY(1, S), TILE_ENTRY(2, S), TILE_ENTRY(3, S), TILE_ENTRY(4, S), TILE_ENTRY(5, S), TILE_ENTRY(6, S)}
static const tile_fn tiles[2][MR][NV][2] = {TILE_TABLE(), TILE_TABLE(S)};

static inline void run_tile(int stream, int rows, int cols, int kc, const float *ap, const float *b, size_t bs,
                            float *c, size_t ldc, int load, const oct_epilogue_args *e) {
    const int nv = (cols + 7) / 8, rem = cols - 8 * (nv - 1);
    tiles[stream][rows - 1][nv - 1][rem != 8](kc, ap, b, bs, c, ldc, lanes(rem), load, e);
}

static void tile(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                 size_t ldc, int load, const oct_epilogue_args *e) {
    run_tile(0, rows, cols, kc, ap, b, bs, c, ldc, load, e);
}

static void tile_stream(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                        size_t ldc, int load, const oct_epilogue_args *e) {
    run_tile(1, rows, cols, kc, ap, b, bs, c, ldc, load, e);
}

/* kc x 16 of B (16 KB) plus the 6 KB A strip sit in a 32 KB L1; the B block (kc x nc, 256 KB) in L2. */
const oct_sgemm_arch oct_avx2_sgemm_arch = {
    .name = "avx2", .mr = MR, .nr = NR, .kc = 256, .mc = 516, .nc = 256,
    .pack_a = pack_a, .pack_b = pack_b, .tile = tile, .tile_stream = tile_stream, .reads_b_in_place = 1,
};

void oct_avx2_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                    int ldc, int accumulate) {
    oct_sgemm_blocked(&oct_avx2_sgemm_arch, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}
