/* Reference fp32 GEMM in plain C, cache- and register-blocked in the usual Goto/BLIS way:
   B is packed per (KC x NC) panel in NR-wide column strips, A per (MC x KC) block in MR-tall row
   strips, and an MR x NR (4 x 8) micro-tile keeps its accumulators in a small local array that gcc -O3
   turns into vector registers. Single-threaded: callers parallelise over output tiles.
   The pack buffers live on the stack (about 100 KB), so the kernel allocates nothing. */
#include <string.h>

#include "../kernels.h"

enum { MR = 4, NR = 8, KC = 256, MC = 64, NC = 128 };

/* Packs rows [0, mc) x cols [0, kc) of a into MR-row strips: ap[strip][p][i], zero-padded. */
static void pack_a(int mc, int kc, const float *a, int lda, float *ap) {
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int mr = mc - i0 < MR ? mc - i0 : MR;
        for (int p = 0; p < kc; p++) {
            for (int i = 0; i < mr; i++) ap[p * MR + i] = a[(size_t)(i0 + i) * lda + p];
            for (int i = mr; i < MR; i++) ap[p * MR + i] = 0.f;
        }
        ap += (size_t)kc * MR;
    }
}

/* Packs rows [0, kc) x cols [0, nc) of b into NR-column strips: bp[strip][p][j], zero-padded. */
static void pack_b(int kc, int nc, const float *b, int ldb, float *bp) {
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int nr = nc - j0 < NR ? nc - j0 : NR;
        for (int p = 0; p < kc; p++) {
            const float *src = b + (size_t)p * ldb + j0;
            float *dst = bp + p * NR;
            if (nr == NR) {
                for (int j = 0; j < NR; j++) dst[j] = src[j];
            } else {
                for (int j = 0; j < nr; j++) dst[j] = src[j];
                for (int j = nr; j < NR; j++) dst[j] = 0.f;
            }
        }
        bp += (size_t)kc * NR;
    }
}

/* c[mr x nr] (+)= ap * bp over kc. `load` says whether c already holds a partial sum. */
static void micro_tile(int kc, const float *restrict ap, const float *restrict bp, float *c, int ldc,
                       int mr, int nr, int load) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.f;
    for (int p = 0; p < kc; p++) {
        const float *b = bp + p * NR;
        for (int i = 0; i < MR; i++) {
            float av = ap[p * MR + i];
            for (int j = 0; j < NR; j++) acc[i][j] += av * b[j];
        }
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *cr = c + (size_t)i * ldc;
            if (load)
                for (int j = 0; j < NR; j++) cr[j] += acc[i][j];
            else
                for (int j = 0; j < NR; j++) cr[j] = acc[i][j];
        }
        return;
    }
    for (int i = 0; i < mr; i++) {
        float *cr = c + (size_t)i * ldc;
        for (int j = 0; j < nr; j++) cr[j] = load ? cr[j] + acc[i][j] : acc[i][j];
    }
}

void oct_ref_sgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                   int ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    float bp[KC * NC];
    float ap[MC * KC];
    for (int j0 = 0; j0 < n; j0 += NC) {
        int nc = n - j0 < NC ? n - j0 : NC;
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = k - p0 < KC ? k - p0 : KC;
            int load = accumulate || p0 > 0;
            pack_b(kc, nc, b + (size_t)p0 * ldb + j0, ldb, bp);
            for (int i0 = 0; i0 < m; i0 += MC) {
                int mc = m - i0 < MC ? m - i0 : MC;
                pack_a(mc, kc, a + (size_t)i0 * lda + p0, lda, ap);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bs = bp + (size_t)(jr / NR) * kc * NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        micro_tile(kc, ap + (size_t)(ir / MR) * kc * MR, bs,
                                   c + (size_t)(i0 + ir) * ldc + j0 + jr, ldc, mr, nr, load);
                    }
                }
            }
        }
    }
}
