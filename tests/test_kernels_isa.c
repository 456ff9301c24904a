/* The SIMD kernels against their ref twins on every ISA level this CPU supports: sgemm on odd and
   block-crossing sizes, with and without accumulate, with padded leading dimensions and guard cells
   around C; concurrent calls from several threads (per-thread pack buffers); the dispatch wiring and
   the OCTET_ISA override. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "test_session.h"
#include "test_util.h"

static const float GUARD = 1234.5f;

static uint32_t rng_state = 777u;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.f - 1.f;
}

/* The kernel of one ISA level, through the public dispatch path. */
static oct_sgemm_fn kernel_for(oct_isa isa) {
    test_use_isa(isa);
    const oct_kernel_table *t = oct_kernels();
    ck_assert_msg(t->isa == isa, "OCTET_ISA=%s selected %s", oct_isa_name(isa), t->name);
    return t->sgemm;
}

/* The levels worth testing: supported, above ref, and not sharing a kernel with a lower level (vnni
   and dotprod reuse the avx512 and neon sgemm). Fills isas[], returns the count. */
static int distinct_levels(oct_isa isas[OCT_ISA_COUNT]) {
    oct_sgemm_fn seen[OCT_ISA_COUNT];
    int count = 0;
    for (int isa = OCT_ISA_REF + 1; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        oct_sgemm_fn fn = kernel_for((oct_isa)isa);
        int dup = fn == oct_ref_sgemm;
        for (int i = 0; i < count; i++) dup |= seen[i] == fn;
        if (dup) continue;
        seen[count] = fn;
        isas[count++] = (oct_isa)isa;
    }
    return count;
}

/* p with room for n items of `size` bytes: grown (and *cap raised) only when too small. The first
   call for a buffer passes p == NULL. */
static void *grow(void *p, size_t *cap, size_t n, size_t size) {
    if (n <= *cap && p) return p;
    free(p);
    p = malloc(n * size);
    ck_assert_msg(p != NULL, "test buffer of %zu items", n);
    *cap = n;
    return p;
}

/* Runs fn and oct_ref_sgemm on the same random problem and compares them element by element. C has
   one guard row below and ldc - n guard columns right of every row; both must stay untouched. The
   bound is a forward error bound for two different summation orders: a few k * eps of the sum of
   |terms|, so a dropped or doubled term (about |terms| / k) cannot hide in it. */
static void compare(const char *isa, oct_sgemm_fn fn, int m, int n, int k, int accumulate, int pad) {
    const int lda = k + pad, ldb = n + 2 * pad, ldc = n + pad + 1;
    const size_t asz = (size_t)m * lda + 1, bsz = (size_t)(k > 0 ? k : 1) * ldb,
                 csz = (size_t)(m + 1) * ldc;
    /* Buffers are reused across the thousands of cases: fresh pages for each would dominate. */
    static float *a, *b, *c, *r;
    static double *scale;
    static size_t acap, bcap, ccap, rcap, scap;
    a = grow(a, &acap, asz, sizeof *a);
    b = grow(b, &bcap, bsz, sizeof *b);
    c = grow(c, &ccap, csz, sizeof *c);
    r = grow(r, &rcap, csz, sizeof *r);
    scale = grow(scale, &scap, (size_t)m * n, sizeof *scale);
    for (size_t i = 0; i < asz; i++) a[i] = frand();
    for (size_t i = 0; i < bsz; i++) b[i] = frand();
    for (size_t i = 0; i < csz; i++) c[i] = GUARD;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = frand();
    memcpy(r, c, sizeof(float) * csz);
    for (int i = 0; i < m; i++) {
        double *srow = scale + (size_t)i * n;
        for (int j = 0; j < n; j++) srow[j] = accumulate ? fabs(c[(size_t)i * ldc + j]) : 0.0;
        for (int p = 0; p < k; p++) {
            const double av = fabs(a[(size_t)i * lda + p]);
            const float *brow = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) srow[j] += av * fabs(brow[j]);
        }
    }
    oct_ref_sgemm(m, n, k, a, lda, b, ldb, r, ldc, accumulate);
    fn(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    /* Plain ifs: a passing ck_assert costs a write to Check's pipe, millions of them here. */
    const double tol_rel = 4.0 * FLT_EPSILON * (k + 1);
    for (int i = 0; i <= m; i++)
        for (int j = 0; j < ldc; j++) {
            const size_t at = (size_t)i * ldc + j;
            if (i == m || j >= n) {
                if (c[at] != GUARD)
                    ck_abort_msg("%s sgemm m=%d n=%d k=%d acc=%d wrote outside C at (%d,%d)", isa, m, n, k,
                                 accumulate, i, j);
                continue;
            }
            const double tol = tol_rel * scale[(size_t)i * n + j] + 1e-30;
            if (!(fabs((double)c[at] - r[at]) <= tol))
                ck_abort_msg("%s sgemm m=%d n=%d k=%d acc=%d lda=%d ldb=%d ldc=%d at (%d,%d): %.9g vs ref %.9g",
                             isa, m, n, k, accumulate, lda, ldb, ldc, i, j, (double)c[at], (double)r[at]);
        }
}

START_TEST(sgemm_all_levels_odd_sizes) {
    static const int sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 100, 257};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = distinct_levels(isas);
    for (int l = 0; l < nisa; l++) {
        const oct_isa isa = isas[l];
        oct_sgemm_fn fn = kernel_for(isa);
        for (int x = 0; x < ns; x++)
            for (int y = 0; y < ns; y++)
                for (int z = 0; z < ns; z++) {
                    /* The largest products are left to the block-crossing test (qemu runs this one
                       too); accumulate and padded leading dimensions alternate over the cases. */
                    if (sizes[x] * sizes[y] * sizes[z] > 257 * 33 * 33) continue;
                    compare(oct_isa_name(isa), fn, sizes[x], sizes[y], sizes[z], (x + y + z) % 2,
                            (x + 2 * y + z) % 4 < 2 ? 3 : 0);
                }
    }
    test_default_isa();
}
END_TEST

/* Sizes that cross every cache block of every ISA (kc 256, mc up to 516, nc up to 480), so the
   k-block accumulation, the repacking per m block and the n-block walk are all exercised, with B
   packed (m > 64) and read in place (m <= 64). */
START_TEST(sgemm_all_levels_block_crossing) {
    static const int shapes[][3] = {{520, 50, 300}, {9, 1000, 270}, {70, 500, 40}, {64, 1000, 27}};
    oct_isa isas[OCT_ISA_COUNT];
    const int nisa = distinct_levels(isas);
    for (int l = 0; l < nisa; l++) {
        const oct_isa isa = isas[l];
        oct_sgemm_fn fn = kernel_for(isa);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int acc = 0; acc < 2; acc++)
                compare(oct_isa_name(isa), fn, shapes[s][0], shapes[s][1], shapes[s][2], acc, 5);
    }
    test_default_isa();
}
END_TEST

START_TEST(sgemm_all_levels_zero_k) {
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        oct_sgemm_fn fn = kernel_for((oct_isa)isa);
        float c[8] = {1, 2, 3, GUARD, 4, 5, 6, GUARD}, a[1] = {0}, b[1] = {0};
        fn(2, 3, 0, a, 1, b, 3, c, 4, 1);
        ck_assert(c[0] == 1 && c[2] == 3 && c[4] == 4 && c[6] == 6);
        fn(2, 3, 0, a, 1, b, 3, c, 4, 0);
        ck_assert(c[0] == 0 && c[2] == 0 && c[4] == 0 && c[6] == 0);
        ck_assert(c[3] == GUARD && c[7] == GUARD);
    }
    test_default_isa();
}
END_TEST

/* Several threads at once, each with its own problem size, so that per-thread pack buffers of
   different sizes are live together; each result must equal what the same kernel gives alone. */
START_TEST(sgemm_concurrent_threads) {
    enum { T = 6 };
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        oct_sgemm_fn fn = kernel_for((oct_isa)isa);
        float *a[T], *b[T], *c[T], *solo[T];
        int dims[T][3];
        for (int t = 0; t < T; t++) {
            dims[t][0] = 20 + 19 * t;
            dims[t][1] = 150 - 23 * t;
            dims[t][2] = 50 + 61 * t;
            const size_t am = (size_t)dims[t][0] * dims[t][2], bm = (size_t)dims[t][2] * dims[t][1],
                         cm = (size_t)dims[t][0] * dims[t][1];
            a[t] = malloc(sizeof(float) * am);
            b[t] = malloc(sizeof(float) * bm);
            c[t] = malloc(sizeof(float) * cm);
            solo[t] = malloc(sizeof(float) * cm);
            ck_assert(a[t] && b[t] && c[t] && solo[t]);
            for (size_t i = 0; i < am; i++) a[t][i] = frand();
            for (size_t i = 0; i < bm; i++) b[t][i] = frand();
            fn(dims[t][0], dims[t][1], dims[t][2], a[t], dims[t][2], b[t], dims[t][1], solo[t], dims[t][1], 0);
        }
        for (int rep = 0; rep < 2; rep++) {
#pragma omp parallel for num_threads(T) schedule(static, 1)
            for (int t = 0; t < T; t++)
                fn(dims[t][0], dims[t][1], dims[t][2], a[t], dims[t][2], b[t], dims[t][1], c[t], dims[t][1], 0);
            for (int t = 0; t < T; t++)
                ck_assert_msg(memcmp(c[t], solo[t], sizeof(float) * (size_t)dims[t][0] * dims[t][1]) == 0,
                              "%s sgemm: thread %d's result differs when run concurrently",
                              oct_isa_name((oct_isa)isa), t);
        }
        for (int t = 0; t < T; t++) {
            free(a[t]);
            free(b[t]);
            free(c[t]);
            free(solo[t]);
        }
    }
    test_default_isa();
}
END_TEST

/* Higher is preferred; the two families never coexist on one CPU. */
static int isa_rank(oct_isa isa) {
    switch (isa) {
    case OCT_ISA_AVX2: case OCT_ISA_NEON: return 1;
    case OCT_ISA_AVX512: case OCT_ISA_DOTPROD: return 2;
    case OCT_ISA_VNNI: return 3;
    default: return 0;
    }
}

/* On the architectures with SIMD kernels, every supported level above ref must have its own kernel,
   and a request above what the CPU has must land on the best level below it. */
START_TEST(dispatch_wiring) {
#if defined(__x86_64__) || defined(__aarch64__)
    for (int isa = 1; isa < OCT_ISA_COUNT; isa++)
        if (oct_isa_supported((oct_isa)isa))
            ck_assert_msg(kernel_for((oct_isa)isa) != oct_ref_sgemm, "%s still uses the ref sgemm",
                          oct_isa_name((oct_isa)isa));
#endif
    setenv("OCTET_ISA", "ref", 1);
    oct_kernels_reset();
    ck_assert(oct_kernels()->isa == OCT_ISA_REF && oct_kernels()->sgemm == oct_ref_sgemm);
    setenv("OCTET_ISA", "no-such-isa", 1);
    oct_kernels_reset();
    ck_assert(oct_kernels()->isa == OCT_ISA_REF);
    if (!oct_isa_supported(OCT_ISA_VNNI) && oct_isa_supported(OCT_ISA_AVX512)) {
        setenv("OCTET_ISA", "vnni", 1);
        oct_kernels_reset();
        ck_assert(oct_kernels()->isa == OCT_ISA_AVX512);
    }
    if (!oct_isa_supported(OCT_ISA_DOTPROD) && oct_isa_supported(OCT_ISA_NEON)) {
        setenv("OCTET_ISA", "dotprod", 1);
        oct_kernels_reset();
        ck_assert(oct_kernels()->isa == OCT_ISA_NEON);
    }
    /* No override: no supported level ranks above the selected one. */
    test_default_isa();
    const oct_isa chosen = oct_kernels()->isa;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++)
        if (oct_isa_supported((oct_isa)isa))
            ck_assert_msg(isa_rank((oct_isa)isa) <= isa_rank(chosen), "default selection %s skipped the supported %s",
                          oct_isa_name(chosen), oct_isa_name((oct_isa)isa));
    test_default_isa();
}
END_TEST

int main(void) {
    Suite *s = suite_create("kernels_isa");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sgemm_all_levels_odd_sizes);
    tcase_add_test(tc, sgemm_all_levels_block_crossing);
    tcase_add_test(tc, sgemm_all_levels_zero_k);
    tcase_add_test(tc, sgemm_concurrent_threads);
    tcase_add_test(tc, dispatch_wiring);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
