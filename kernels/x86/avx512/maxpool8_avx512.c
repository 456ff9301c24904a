/* 8-bit max pooling with AVX-512BW for row strides 1 and 2 and up to 4 window columns (the
   ResNet stem's 3x3/2, U-Net's 2x2(x2)/2): the kernel of the AVX-512 set without VBMI (with VBMI,
   maxpool8_vbmi.c). Ref twins: oct_ref_maxpool_u8/s8.

   One block of 64 byte lanes covers 64 / stride outputs of an output row. For window column k
   the lanes load the input columns c + k + j of every window row, so after the max over rows and
   columns lane j holds the window max of the output starting at column c + j; stride 1 stores
   all lanes, stride 2 keeps the even ones with VPMOVWB (truncating 16-bit lanes to their low
   byte). No row buffer, no horizontal shuffles. Padding and the row ends are masked loads that
   yield the type's lowest value, which is what ref gives a tap outside the input: max is exact,
   so the result is ref's bit for bit. Compiled with -mavx512f -mavx512bw -mavx512vl. */
#include "maxpool8.h"

int oct_avx512_maxpool8_fits(const oct_conv_geom *g) {
    return g->k[0] * g->k[1] <= MP8_MAX_ROWS && g->k[2] >= 1 && g->k[2] <= MP8_MAX_KW &&
           (g->stride[2] == 1 || g->stride[2] == 2) && g->out[2] <= MP8_MAX_BLOCKS * (64 / g->stride[2]) &&
           g->dil[0] == 1 && g->dil[1] == 1 && g->dil[2] == 1;
}

/* The load masks of every column block of a row, the same for all rows of a plane. A block
   is 64 lanes: input columns c .. c + 63 with c = 64 * i - pad, for 64 / stride outputs. */
typedef struct {
    int64_t nb;                               /* blocks per output row */
    __mmask64 in[MP8_MAX_BLOCKS][MP8_MAX_KW]; /* lanes of column k's load inside the input */
    __mmask64 out_last;                       /* the outputs of the last block */
} mp8_blocks;

static void blocks_of(const oct_conv_geom *g, mp8_blocks *b) {
    const int64_t IW = g->in[2], OW = g->out[2], SW = g->stride[2], ob = 64 / SW;
    b->nb = (OW + ob - 1) / ob;
    for (int64_t i = 0; i < b->nb; i++) {
        const int64_t no = OW - i * ob < ob ? OW - i * ob : ob, c = 64 * i - g->pad[2];
        for (int64_t k = 0; k < g->k[2]; k++) /* lanes past no * SW reach no output */
            b->in[i][k] = mp8_lanes(-(c + k), no * SW < IW - (c + k) ? no * SW : IW - (c + k));
    }
    b->out_last = mp8_lanes(0, OW - (b->nb - 1) * ob);
}

/* MAX is the byte max of the type; LOWEST its lowest value (the value of a tap in padding).
   NAME##_rows runs the output rows of depth od; with KD, KH, KW, SW constants after inlining a
   block is straight-line code in registers. */
#define DEFINE_MAXPOOL8(NAME, T, MAX, LOWEST)                                                       \
    static inline __attribute__((always_inline)) void NAME##_rows(                                  \
        const oct_conv_geom *g, const mp8_blocks *b, const T *x, T *y, int64_t od,                  \
        const int KD, const int KH, const int KW, const int SW) {                                   \
        const int64_t OW = g->out[2];                                                               \
        const __m512i low = _mm512_set1_epi8(LOWEST);                                               \
        for (int64_t oh = 0; oh < g->out[1]; oh++) {                                                \
            T *yr = y + (od * g->out[1] + oh) * OW;                                                 \
            const uint8_t *rp[MP8_MAX_ROWS];                                                        \
            if (!mp8_window_rows(g, (const uint8_t *)x, od, oh, KD, KH, rp)) {                      \
                for (int64_t i = 0; i < OW; i++) yr[i] = LOWEST;                                    \
                continue;                                                                           \
            }                                                                                       \
            for (int64_t i = 0; i < b->nb; i++) {                                                   \
                /* the KW * KD * KH loads in two max chains */                                      \
                __m512i m[2] = {low, low};                                                          \
                for (int j = 0; j < KW * KD * KH; j++) {                                            \
                    const int k = j / (KD * KH), r = j % (KD * KH);                                 \
                    const __m512i v = _mm512_mask_loadu_epi8(low, b->in[i][k], mp8_addr(rp[r], 64 * i + k)); \
                    m[j & 1] = j < 2 ? v : MAX(m[j & 1], v);                                        \
                }                                                                                   \
                if (KW * KD * KH > 1) m[0] = MAX(m[0], m[1]);                                       \
                T *yo = yr + i * (64 / SW);                                                         \
                if (SW == 1) {                                                                      \
                    if (i < b->nb - 1) _mm512_storeu_si512(yo, m[0]);                               \
                    else _mm512_mask_storeu_epi8(yo, b->out_last, m[0]);                            \
                } else {                                                                            \
                    const __m256i e = _mm512_cvtepi16_epi8(m[0]);                                   \
                    if (i < b->nb - 1) _mm256_storeu_si256((__m256i *)yo, e);                       \
                    else _mm256_mask_storeu_epi8(yo, (__mmask32)b->out_last, e);                    \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    void NAME(const oct_conv_geom *g, const T *x, T *y) {                                           \
        const int KD = (int)g->k[0], KH = (int)g->k[1], KW = (int)g->k[2], SW = (int)g->stride[2];  \
        if (g->out[2] <= 0) return; /* no block */                                                  \
        mp8_blocks b;                                                                               \
        blocks_of(g, &b);                                                                           \
        for (int64_t od = 0; od < g->out[0]; od++)                                                  \
            MP8_BY_SHAPE(KD, KH, KW, SW, NAME##_rows, g, &b, x, y, od);                             \
    }

DEFINE_MAXPOOL8(oct_avx512_maxpool_u8, uint8_t, _mm512_max_epu8, 0)
DEFINE_MAXPOOL8(oct_avx512_maxpool_s8, int8_t, _mm512_max_epi8, INT8_MIN)
