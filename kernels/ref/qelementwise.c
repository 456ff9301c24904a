/* Quantized Add and Mul with numpy broadcasting (the formulas are in qops_kernels.h; the runs are
   in qbinary_runs.h, shared with the vector levels). */
#include "qbinary_runs.h"

void oct_ref_qbinary(const oct_qbinary *q, const oct_bcast *bc, const uint8_t *a, const uint8_t *b,
                     uint8_t *y, int64_t begin, int64_t end) {
    qbin_walk(q, bc, a, b, y, begin, end);
}
