/* The exact chunked integer sums behind oct_ref_qsum (GlobalAveragePool and InstanceNorm
   statistics), as one inline body: ref/qpool.c calls it, and the kernels/vec files compile the
   same code per ISA so that it vectorises. */
#ifndef OCT_QSUM_BODY_H
#define OCT_QSUM_BODY_H

#include <stdint.h>

/* Elements per 32-bit partial sum: 32768 * 128^2 and 32768 * 255 fit, and 32768 * 255^2 < 2^32
   in unsigned arithmetic, so the inner loops run in 32-bit lanes without overflow. */
enum { OCT_QSUM_CHUNK = 1 << 15 };

/* *sum += sum of x[0..n) (int8 when is_s8, else uint8); *sumsq += the sum of squares unless sumsq
   is NULL (then, inlined, the squares are not computed at all). */
static inline void oct_qsum_body(const uint8_t *x, int is_s8, int64_t n, int64_t *sum, int64_t *sumsq) {
    int64_t s = 0, s2 = 0;
    for (int64_t i0 = 0; i0 < n; i0 += OCT_QSUM_CHUNK) {
        const int64_t m = n - i0 < OCT_QSUM_CHUNK ? n - i0 : OCT_QSUM_CHUNK;
        if (is_s8) {
            const int8_t *v = (const int8_t *)x + i0;
            int32_t a = 0, b = 0;
            for (int64_t i = 0; i < m; i++) {
                const int16_t w = v[i];
                a += w;
                b += (int32_t)(w * w);
            }
            s += a;
            s2 += b;
        } else {
            const uint8_t *v = x + i0;
            uint32_t a = 0, b = 0;
            for (int64_t i = 0; i < m; i++) {
                const int16_t w = v[i]; /* int16 products summed in pairs (pmaddwd) */
                a += (uint32_t)w;
                b += (uint32_t)(w * w);
            }
            s += a;
            s2 += b;
        }
    }
    *sum += s;
    if (sumsq) *sumsq += s2;
}

#endif
