/* Reference fp32 GEMM: blocked over k and n so that it is not pathologically slow, but plain C. */
#include "../kernels.h"

void oct_ref_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                   int ldc, int accumulate) {
    if (!accumulate)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = 0.f;
    enum { KB = 256, NB = 512 };
    for (int k0 = 0; k0 < k; k0 += KB) {
        int k1 = k0 + KB < k ? k0 + KB : k;
        for (int j0 = 0; j0 < n; j0 += NB) {
            int j1 = j0 + NB < n ? j0 + NB : n;
            for (int i = 0; i < m; i++) {
                float *crow = c + (size_t)i * ldc;
                for (int p = k0; p < k1; p++) {
                    float av = a[(size_t)i * lda + p];
                    const float *brow = b + (size_t)p * ldb;
                    for (int j = j0; j < j1; j++) crow[j] += av * brow[j];
                }
            }
        }
    }
}
