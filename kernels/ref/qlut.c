/* The 256-entry lookup table kernel behind the table-driven int8 ops (Sigmoid, LeakyRelu, the
   octet QLinearLut activations, Concat requantization, InstanceNorm's per-channel affine map). */
#include "qops_kernels.h"

void oct_ref_qlut(const uint8_t *x, int64_t n, const uint8_t table[256], uint8_t *y) {
    /* Four independent loads per step keep the load ports busy; a byte gather has no vector form
       on baseline x86-64. */
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t a = table[x[i]], b = table[x[i + 1]], c = table[x[i + 2]], d = table[x[i + 3]];
        y[i] = a;
        y[i + 1] = b;
        y[i + 2] = c;
        y[i + 3] = d;
    }
    for (; i < n; i++) y[i] = table[x[i]];
}
