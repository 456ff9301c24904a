/* Requantization of int32 accumulators to 8 bits; the exact float sequence is specified in
   quant_kernels.h (oct_requant_one) because every SIMD twin must reproduce it bit for bit. */
#include "quant_kernels.h"

void oct_ref_requant(const int32_t *acc, int64_t ldacc, int r0, int nr, int nc, const oct_requant *q,
                     void *y, int64_t y_rs, int64_t y_cs) {
    const float lo = (float)(q->qmin - q->zp), hi = (float)(q->qmax - q->zp);
    for (int r = 0; r < nr; r++) {
        const int32_t *a = acc + r * ldacc;
        for (int c = 0; c < nc; c++) {
            const int32_t out = oct_requant_one(q, r0 + r, a[c], lo, hi);
            ((uint8_t *)y)[r * y_rs + c * y_cs] = oct_requant_byte(q, out);
        }
    }
}
