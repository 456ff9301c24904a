/* AVX-512 fp32 GEMM: the micro-tile and packing for oct_sgemm_blocked.

   Micro-tile 8 x 48: 8 rows of A broadcast against 3 zmm of B, 24 zmm accumulators, so each k step
   issues 24 FMAs for 11 loads and the two FMA pipes never wait on the 4-cycle FMA latency. Row and
   column edges are separate instantiations of the same inline body (rows 1..8, 1..3 vectors) with a
   lane mask on the last vector, so an edge costs no wasted FMAs and needs no scratch tile. On the
   last k block the fused epilogue (alpha, row bias, C, residual, activation) is applied to the
   accumulators before they are stored, so the output is written once. The streaming twins
   (tile_stream) also prefetch the B strip PF_FLOATS ahead, for B packed once and read from memory:
   the hardware prefetchers alone kept weights of Winograd's U and of pixels-as-rows layers at
   9-12 GB/s (of ~30 a core streams), see the arch's tile_stream in sgemm_blocked.h. */
#include <immintrin.h>
#include <stdint.h>

#include "../../isa_kernels.h"
#include "../../sgemm_blocked.h"
#include "sgemm_avx512_act.h"

/* PF_FLOATS: 8 KB, ~100 ns of the stream at the tile's pace; 1, 2 and 4 KB measured slower on
   Winograd's U (Zen 5). */
enum { MR = 8, NR = 48, NV = NR / 16, PF_FLOATS = 2048 };

/* The first `cols` of 16 lanes. */
static inline __mmask16 lanes(int cols) { return cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1u); }

/* 8 rows x 8 columns of a into rows of ap (ldp floats apart): the classic unpack/shuffle/permute
   transpose. */
static inline void transpose8x8_to(const float *a, size_t lda, float *ap, size_t ldp) {
    __m256 r0 = _mm256_loadu_ps(a), r1 = _mm256_loadu_ps(a + lda), r2 = _mm256_loadu_ps(a + 2 * lda),
           r3 = _mm256_loadu_ps(a + 3 * lda), r4 = _mm256_loadu_ps(a + 4 * lda),
           r5 = _mm256_loadu_ps(a + 5 * lda), r6 = _mm256_loadu_ps(a + 6 * lda),
           r7 = _mm256_loadu_ps(a + 7 * lda);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(ap + 0 * ldp, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(ap + 1 * ldp, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(ap + 2 * ldp, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(ap + 3 * ldp, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(ap + 4 * ldp, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(ap + 5 * ldp, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(ap + 6 * ldp, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(ap + 7 * ldp, _mm256_permute2f128_ps(s3, s7, 0x31));
}

static inline void transpose8x8(const float *a, size_t lda, float *ap) { transpose8x8_to(a, lda, ap, 8); }

static void transpose_block(const float *src, size_t lds, float *dst, size_t ldd) {
    transpose8x8_to(src, lds, dst, ldd);
}

static void pack_a(int rows, int kc, const float *a, int lda, float *ap) {
    int p = 0;
    if (rows == MR)
        for (; p + 8 <= kc; p += 8) transpose8x8(a + p, (size_t)lda, ap + (size_t)p * MR);
    for (; p < kc; p++) {
        float *dst = ap + (size_t)p * MR;
        for (int i = 0; i < rows; i++) dst[i] = a[(size_t)i * lda + p];
        for (int i = rows; i < MR; i++) dst[i] = 0.f;
    }
}

static void pack_b(int kc, int cols, const float *b, int ldb, float *bp) {
    if (cols == NR) {
        for (int p = 0; p < kc; p++, b += ldb, bp += NR) {
            _mm512_storeu_ps(bp, _mm512_loadu_ps(b));
            _mm512_storeu_ps(bp + 16, _mm512_loadu_ps(b + 16));
            _mm512_storeu_ps(bp + 32, _mm512_loadu_ps(b + 32));
        }
        return;
    }
    const __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16 > 0 ? cols - 16 : 0),
                    m2 = lanes(cols - 32 > 0 ? cols - 32 : 0);
    for (int p = 0; p < kc; p++, b += ldb, bp += NR) {
        _mm512_storeu_ps(bp, _mm512_maskz_loadu_ps(m0, b));
        _mm512_storeu_ps(bp + 16, _mm512_maskz_loadu_ps(m1, b + 16));
        _mm512_storeu_ps(bp + 32, _mm512_maskz_loadu_ps(m2, b + 32));
    }
}

/* rows x (nv vectors) of C; the last vector's lanes limited by `last`. rows and nv are constants in
   every instantiation, so the loops unroll and acc lives in registers. */
static inline __attribute__((always_inline)) void tile_body(const int rows, const int nv, int kc,
                                                            const float *restrict ap,
                                                            const float *restrict b, size_t bs, float *c,
                                                            size_t ldc, __mmask16 last, int load,
                                                            const oct_epilogue_args *e, const int stream) {
    __m512 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++, ap += MR, b += bs) {
        __m512 bv[NV];
        if (stream) /* a contiguous B strip: the lines this tile reads PF_FLOATS further on */
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(b + PF_FLOATS + 16 * v), _MM_HINT_T0);
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            bv[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++) {
            const __m512 av = _mm512_set1_ps(ap[i]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++) {
        float *cr = c + (size_t)i * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            const __mmask16 mk = v == nv - 1 ? last : (__mmask16)0xffff;
            __m512 r = acc[i][v];
            if (load) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, cr + 16 * v));
            if (e) r = oct_avx512_epilogue(e, i, 16 * v, r, mk);
            _mm512_mask_storeu_ps(cr + 16 * v, mk, r);
        }
    }
    if (e && !oct_avx512_act_is_cheap(e->act.kind)) /* one pass over the tile just stored */
        oct_avx512_act_rect(&e->act, c, (int64_t)ldc, rows, 16 * (nv - 1) + __builtin_popcount(last));
}

typedef void (*tile_fn)(int kc, const float *ap, const float *b, size_t bs, float *c, size_t ldc,
                        __mmask16 last, int load, const oct_epilogue_args *e);

#define TILE_FN(R, V)                                                                                   \
    static void tile_##R##x##V(int kc, const float *ap, const float *b, size_t bs, float *c, size_t ldc, \
                               __mmask16 last, int load, const oct_epilogue_args *e) {                  \
        tile_body(R, V, kc, ap, b, bs, c, ldc, last, load, e, 0);                                       \
    }                                                                                                   \
    static void stream_##R##x##V(int kc, const float *ap, const float *b, size_t bs, float *c,           \
                                 size_t ldc, __mmask16 last, int load, const oct_epilogue_args *e) {    \
        tile_body(R, V, kc, ap, b, bs, c, ldc, last, load, e, 1);                                       \
    }
#define TILE_ROW(R) TILE_FN(R, 1) TILE_FN(R, 2) TILE_FN(R, 3)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)
TILE_ROW(7)
TILE_ROW(8)

/* [stream][rows - 1][vectors - 1] */
#define TILE_ROW_OF(P, R) {P##_##R##x1, P##_##R##x2, P##_##R##x3}
#define TILE_SET(P)                                                                                      \
    {TILE_ROW_OF(P, 1), TILE_ROW_OF(P, 2), TILE_ROW_OF(P, 3), TILE_ROW_OF(P, 4), TILE_ROW_OF(P, 5),     \
     TILE_ROW_OF(P, 6), TILE_ROW_OF(P, 7), TILE_ROW_OF(P, 8)}
static const tile_fn tiles[2][MR][NV] = {TILE_SET(tile), TILE_SET(stream)};

static inline void run_tile(int stream, int rows, int cols, int kc, const float *ap, const float *b, size_t bs,
                            float *c, size_t ldc, int load, const oct_epilogue_args *e) {
    const int nv = (cols + 15) / 16;
    tiles[stream][rows - 1][nv - 1](kc, ap, b, bs, c, ldc, lanes(cols - 16 * (nv - 1)), load, e);
}

static void tile(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                 size_t ldc, int load, const oct_epilogue_args *e) {
    run_tile(0, rows, cols, kc, ap, b, bs, c, ldc, load, e);
}

static void tile_stream(int rows, int cols, int kc, const float *ap, const float *b, size_t bs, float *c,
                        size_t ldc, int load, const oct_epilogue_args *e) {
    run_tile(1, rows, cols, kc, ap, b, bs, c, ldc, load, e);
}

/* kc x NR of B (48 KB) streams from L2 per tile; the 8 KB A strip stays in L1; the kc x nc B block
   (480 KB) fits the 1 MB L2 of current AVX-512 cores with room for the A strip and C. */
const oct_sgemm_arch oct_avx512_sgemm_arch = {
    .name = "avx512", .mr = MR, .nr = NR, .kc = 256, .mc = 512, .nc = 480,
    .pack_a = pack_a, .pack_b = pack_b, .tile = tile, .tile_stream = tile_stream, .reads_b_in_place = 1,
    .transpose8x8 = transpose_block,
};

void oct_avx512_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                      int ldc, int accumulate) {
    oct_sgemm_blocked(&oct_avx512_sgemm_arch, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}
