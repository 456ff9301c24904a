/* 8-bit max pooling with AVX-512 VBMI for the geometries of oct_avx512_maxpool8_fits (row
   stride 1 or 2, up to 4 window columns): the ResNet stem's 3x3/2 and U-Net's 2x2(x2)/2. Ref
   twins: oct_ref_maxpool_u8/s8.

   A block reads 128 input columns, c .. c + 127, as two vectors A and B, each the max over the
   window rows (one masked load per row and vector). Window column k of output j is column
   j * stride + k of the pair, which one VPERMT2B picks for all 64 outputs at once, so a block
   of up to 64 outputs costs 2 loads per window row, KW permutes and KW - 1 maxes, where the
   AVX-512BW kernel (maxpool8_avx512.c) reloads every row KW times. Padding and the row ends are
   masked loads that yield the type's lowest value, which is what ref gives a tap outside the
   input: max is exact, so the result is ref's bit for bit. Compiled with -mavx512vbmi. */
#include "maxpool8.h"

/* The loads of every column block of a row, the same for all rows of a plane. */
typedef struct {
    int64_t nb, ob;                /* blocks per output row, outputs per block */
    __mmask64 a[MP8_MAX_BLOCKS];   /* lanes of vector A inside the input and read by an output */
    __mmask64 b[MP8_MAX_BLOCKS];   /* the same for B (0: B is not needed) */
    __mmask64 out_last;            /* the outputs of the last block */
    __m512i tap[MP8_MAX_KW];       /* lane j: j * stride + k, the pair column of window column k */
} mp8v_blocks;

static void blocks_of(const oct_conv_geom *g, mp8v_blocks *bl) {
    const int64_t IW = g->in[2], OW = g->out[2], KW = g->k[2], SW = g->stride[2];
    /* outputs whose taps stay inside the pair: (ob - 1) * SW + KW <= 128, at most 64 lanes */
    bl->ob = (128 - KW) / SW + 1 < 64 ? (128 - KW) / SW + 1 : 64;
    bl->nb = (OW + bl->ob - 1) / bl->ob;
    for (int64_t i = 0; i < bl->nb; i++) {
        const int64_t no = OW - i * bl->ob < bl->ob ? OW - i * bl->ob : bl->ob;
        const int64_t c = i * bl->ob * SW - g->pad[2], used = (no - 1) * SW + KW; /* columns read */
        const int64_t end = used < IW - c ? used : IW - c;                        /* pair columns < end */
        bl->a[i] = mp8_lanes(-c, end);
        bl->b[i] = mp8_lanes(-c - 64, end - 64);
    }
    bl->out_last = mp8_lanes(0, OW - (bl->nb - 1) * bl->ob);
    for (int64_t k = 0; k < MP8_MAX_KW; k++) { /* all of them: the rows copy the array whole */
        uint8_t idx[64];
        for (int j = 0; j < 64; j++) idx[j] = (uint8_t)((j * SW + k) & 127); /* lanes past ob: unused */
        bl->tap[k] = _mm512_loadu_si512(idx);
    }
}

/* MAX is the byte max of the type; LOWEST its lowest value (the value of a tap in padding).
   NAME##_block: one block of one output row from its KR window rows; NAME##_rows: the output
   rows of depth od. KR (= KD * KH), KW and SW are constants after inlining, so a block is
   straight-line code in registers; a row of one block (most CNN planes) keeps its masks out of
   the row loop. */
#define DEFINE_MAXPOOL8_VBMI(NAME, T, MAX, LOWEST)                                                  \
    static inline __attribute__((always_inline)) void NAME##_block(                                 \
        const uint8_t *const *rp, int64_t c, __mmask64 ma, __mmask64 mb, const __m512i *tap,        \
        T *yo, __mmask64 out, int full, const int KR, const int KW) {                               \
        const __m512i low = _mm512_set1_epi8(LOWEST);                                               \
        __m512i a = _mm512_mask_loadu_epi8(low, ma, mp8_addr(rp[0], c)), b = low;                   \
        for (int r = 1; r < KR; r++) a = MAX(a, _mm512_mask_loadu_epi8(low, ma, mp8_addr(rp[r], c))); \
        if (mb) {                                                                                   \
            b = _mm512_mask_loadu_epi8(low, mb, mp8_addr(rp[0], c + 64));                           \
            for (int r = 1; r < KR; r++)                                                            \
                b = MAX(b, _mm512_mask_loadu_epi8(low, mb, mp8_addr(rp[r], c + 64)));               \
        }                                                                                           \
        __m512i m = _mm512_permutex2var_epi8(a, tap[0], b);                                         \
        for (int k = 1; k < KW; k++) m = MAX(m, _mm512_permutex2var_epi8(a, tap[k], b));            \
        if (full) _mm512_storeu_si512(yo, m);                                                       \
        else _mm512_mask_storeu_epi8(yo, out, m);                                                   \
    }                                                                                               \
                                                                                                    \
    static inline __attribute__((always_inline)) void NAME##_rows(                                  \
        const oct_conv_geom *g, const mp8v_blocks *bl, const T *x, T *y, int64_t od,                \
        const int KD, const int KH, const int KW, const int SW) {                                   \
        const int64_t OW = g->out[2], step = bl->ob * SW;                                           \
        const __m512i tap[MP8_MAX_KW] = {bl->tap[0], bl->tap[1], bl->tap[2], bl->tap[3]};           \
        const __mmask64 a0 = bl->a[0], b0 = bl->b[0], out0 = bl->out_last;                          \
        for (int64_t oh = 0; oh < g->out[1]; oh++) {                                                \
            T *yr = y + (od * g->out[1] + oh) * OW;                                                 \
            const uint8_t *rp[MP8_MAX_ROWS];                                                        \
            if (!mp8_window_rows(g, (const uint8_t *)x, od, oh, KD, KH, rp)) {                      \
                for (int64_t i = 0; i < OW; i++) yr[i] = LOWEST;                                    \
                continue;                                                                           \
            }                                                                                       \
            if (bl->nb == 1) {                                                                      \
                NAME##_block(rp, 0, a0, b0, tap, yr, out0, 0, KD * KH, KW);                         \
                continue;                                                                           \
            }                                                                                       \
            for (int64_t i = 0; i < bl->nb; i++) {                                                  \
                const int last = i == bl->nb - 1;                                                   \
                NAME##_block(rp, i * step, bl->a[i], bl->b[i], tap, yr + i * bl->ob,                \
                             bl->out_last, !last, KD * KH, KW);                                     \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    void NAME(const oct_conv_geom *g, const T *x, T *y) {                                           \
        const int KD = (int)g->k[0], KH = (int)g->k[1], KW = (int)g->k[2], SW = (int)g->stride[2];  \
        if (g->out[2] <= 0) return; /* no block */                                                  \
        mp8v_blocks bl;                                                                             \
        blocks_of(g, &bl);                                                                          \
        for (int64_t od = 0; od < g->out[0]; od++)                                                  \
            MP8_BY_SHAPE(KD, KH, KW, SW, NAME##_rows, g, &bl, x, y, od);                            \
    }

DEFINE_MAXPOOL8_VBMI(oct_vbmi_maxpool_u8, uint8_t, _mm512_max_epu8, 0)
DEFINE_MAXPOOL8_VBMI(oct_vbmi_maxpool_s8, int8_t, _mm512_max_epi8, INT8_MIN)
