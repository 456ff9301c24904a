/* 8-bit max pooling with AVX-512BW for row strides 1 and 2 and up to 4 window columns: the
   ResNet stem (3x3/2, pad 1) and the U-Net 2x2(x2)/2 cases. Ref twins: oct_ref_maxpool_u8/s8.

   One block of 64 byte lanes covers 64 / stride outputs of an output row. For window column k
   the lanes load the input columns c + k + j of every window row, so after the max over rows and
   columns lane j holds the window max of the output starting at column c + j; stride 1 stores
   all lanes, stride 2 keeps the even ones with VPMOVWB (truncating 16-bit lanes to their low
   byte). No row buffer, no horizontal shuffles. Padding and the row ends are masked loads that
   yield the type's lowest value, which is what ref gives a tap outside the input: max is exact,
   so the result is ref's bit for bit. Compiled with -mavx512f -mavx512bw -mavx512vl. */
#include <immintrin.h>
#include <stdint.h>

#include "misc_kernels.h"

/* Window rows per output row (kd * kh) the kernel takes. */
enum { MP8_MAX_ROWS = 64, MP8_MAX_KW = 4 };

int oct_avx512_maxpool8_fits(const oct_conv_geom *g) {
    return g->k[0] * g->k[1] <= MP8_MAX_ROWS && g->k[2] >= 1 && g->k[2] <= MP8_MAX_KW &&
           (g->stride[2] == 1 || g->stride[2] == 2) && g->dil[0] == 1 && g->dil[1] == 1 && g->dil[2] == 1;
}

/* Lanes [lo, hi) of a block, clipped to [0, 64). */
static inline __mmask64 lanes(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 64) hi = 64;
    if (hi <= lo) return 0;
    const uint64_t below_hi = hi == 64 ? ~0ull : (1ull << hi) - 1;
    return (__mmask64)(below_hi & ~((1ull << lo) - 1));
}

/* The byte at offset off of base, as an address only: off may lie before the plane for a left
   pad, where the masked load touches no byte (masked lanes do not fault). */
static inline const void *addr(const void *base, int64_t off) { return (const void *)((uintptr_t)base + (uintptr_t)off); }

/* Window column masks of a row's first and last block (every other block reads whole vectors);
   the same for all rows of a plane, so they are computed once per call. */
typedef struct {
    int64_t nb, ob;                  /* blocks per output row, outputs per block */
    __mmask64 first[MP8_MAX_KW], last[MP8_MAX_KW];
    __mmask64 store_last;            /* the outputs of the last block */
} mp8_blocks;

static mp8_blocks blocks_of(const oct_conv_geom *g) {
    const int64_t IW = g->in[2], OW = g->out[2], SW = g->stride[2], PW = g->pad[2];
    mp8_blocks b = {.ob = 64 / SW};
    b.nb = (OW + b.ob - 1) / b.ob;
    const int64_t last_no = OW - (b.nb - 1) * b.ob;
    for (int64_t k = 0; k < g->k[2]; k++) {
        /* lane j of block o0 reads column o0 * SW - PW + k + j; only lanes below no * SW reach outputs */
        const int64_t c_first = -PW + k, c_last = (b.nb - 1) * b.ob * SW - PW + k;
        const int64_t first_used = b.nb == 1 ? last_no * SW : 64;
        b.first[k] = lanes(-c_first, first_used < IW - c_first ? first_used : IW - c_first);
        b.last[k] = lanes(-c_last, last_no * SW < IW - c_last ? last_no * SW : IW - c_last);
    }
    b.store_last = lanes(0, last_no);
    return b;
}

/* MAX is the byte max of the type; LOWEST its lowest value (the value of a tap in padding). One
   output row: rp holds its nr window rows; KW and SW are constants after inlining, so the column
   loop unrolls into KW independent max chains. */
#define DEFINE_MAXPOOL8(NAME, T, MAX, LOWEST)                                                      \
    static inline __attribute__((always_inline)) void NAME##_row(                                  \
        const mp8_blocks *b, const T *const *rp, int nr, int64_t PW, T *yr, const int KW, const int SW) { \
        const __m512i low = _mm512_set1_epi8(LOWEST);                                              \
        for (int64_t i = 0; i < b->nb; i++) {                                                      \
            const int64_t c = i * b->ob * SW - PW;                                                 \
            __m512i m[MP8_MAX_KW] = {low}; /* KW >= 1 (fits) */                                 \
            for (int k = 0; k < KW; k++) {                                                         \
                const __mmask64 in = i == 0 ? b->first[k] : i == b->nb - 1 ? b->last[k] : ~0ull; \
                m[k] = low;                                                                        \
                for (int r = 0; r < nr; r++)                                                       \
                    m[k] = MAX(m[k], _mm512_mask_loadu_epi8(low, in, addr(rp[r], c + k)));         \
            }                                                                                      \
            for (int k = 1; k < KW; k++) m[0] = MAX(m[0], m[k]);                                   \
            T *yo = yr + i * b->ob;                                                                \
            if (SW == 1) {                                                                         \
                if (i < b->nb - 1) _mm512_storeu_si512(yo, m[0]);                                  \
                else _mm512_mask_storeu_epi8(yo, b->store_last, m[0]);                            \
            } else {                                                                               \
                const __m256i e = _mm512_cvtepi16_epi8(m[0]);                                      \
                if (i < b->nb - 1) _mm256_storeu_si256((__m256i *)yo, e);                          \
                else _mm256_mask_storeu_epi8(yo, (__mmask32)b->store_last, e);                              \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    void NAME(const oct_conv_geom *g, const T *x, T *y) {                                          \
        const mp8_blocks b = blocks_of(g);                                                         \
        const int64_t IH = g->in[1], IW = g->in[2], OW = g->out[2], KW = g->k[2], SW = g->stride[2]; \
        const T *rp[MP8_MAX_ROWS];                                                                 \
        for (int64_t od = 0; od < g->out[0]; od++)                                                 \
            for (int64_t oh = 0; oh < g->out[1]; oh++) {                                           \
                int nr = 0;                                                                        \
                for (int64_t kd = 0; kd < g->k[0]; kd++) {                                         \
                    const int64_t id = od * g->stride[0] + kd - g->pad[0];                         \
                    if (id < 0 || id >= g->in[0]) continue;                                        \
                    for (int64_t kh = 0; kh < g->k[1]; kh++) {                                     \
                        const int64_t ih = oh * g->stride[1] + kh - g->pad[1];                     \
                        if (ih >= 0 && ih < IH) rp[nr++] = x + (id * IH + ih) * IW;                \
                    }                                                                              \
                }                                                                                  \
                T *yr = y + (od * g->out[1] + oh) * OW;                                            \
                if (SW == 2 && KW == 3) NAME##_row(&b, rp, nr, g->pad[2], yr, 3, 2);              \
                else if (SW == 2 && KW == 2) NAME##_row(&b, rp, nr, g->pad[2], yr, 2, 2);         \
                else if (SW == 1 && KW == 3) NAME##_row(&b, rp, nr, g->pad[2], yr, 3, 1);         \
                else NAME##_row(&b, rp, nr, g->pad[2], yr, (int)KW, (int)SW);                     \
            }                                                                                      \
    }

DEFINE_MAXPOOL8(oct_avx512_maxpool_u8, uint8_t, _mm512_max_epu8, 0)
DEFINE_MAXPOOL8(oct_avx512_maxpool_s8, int8_t, _mm512_max_epi8, INT8_MIN)
