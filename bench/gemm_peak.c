/* gemm_peak: how close the fp32 GEMM kernels come to the machine's FMA peak, on one thread.

   Times are the thread's CPU time and each figure is a median over samples (see median()).
   First the peak itself: independent FMA chains (more than latency x pipes of them, so the pipes
   never wait) at each vector width the CPU has. Then GFLOP/s of the ref sgemm and of every distinct
   ISA sgemm on square sizes and on the shapes convolutions hand to the kernels (M = output channels,
   K = Cin * kernel volume, N = output pixels), with the fraction of the peak at the kernel's width.
   Last the path the Conv op takes: weights (A) packed once ahead of time, bias + Relu fused into the
   tiles' write-back (oct_sgemm_run), next to the plain sgemm plus a separate epilogue pass, on the
   shapes of resnet and mobilenet layers, and for those with few output pixels (N <= 256) the
   pixels-as-rows form the Conv op picks there (px-rows: Y^T = col^T W^T, stored transposed).

   usage: gemm_peak [--quick]     (--quick: fewer sizes, shorter timing; for smoke runs) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "kernels/ref/nn_kernels.h"
#include "kernels/sgemm_blocked.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* The calling thread's CPU time, not wall time: on a shared machine the time this thread spends
   descheduled would otherwise count against the kernels. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keeps results alive so the compiler cannot drop the timed work. */
static volatile float sink;

static double min_seconds = 0.3;

/* Each peak loop runs `iters` steps of `chains` independent FMAs of `lanes` floats: 2 flops per lane. */
#define PEAK_CHAINS 16

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) static void fma_chains_512(long iters) {
    __m512 acc[PEAK_CHAINS];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    sink = _mm512_reduce_add_ps(s);
}

/* 12 chains: with the two constants that is 14 of AVX2's 16 ymm registers. */
__attribute__((target("avx2,fma"))) static void fma_chains_256(long iters) {
    __m256 acc[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    sink = out[0] + out[7];
}
#elif defined(__aarch64__)
static void fma_chains_128(long iters) {
    float32x4_t acc[PEAK_CHAINS];
    const float32x4_t x = vdupq_n_f32(0.999999f), y = vdupq_n_f32(1e-6f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = vdupq_n_f32((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = vfmaq_f32(y, acc[i], x);
    float32x4_t s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = vaddq_f32(s, acc[i]);
    sink = vaddvq_f32(s);
}
#endif

enum { MAX_SAMPLES = 41 };

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The median of n samples (sorted in place): robust to the odd preempted or mis-accounted sample on
   a shared machine, where the best sample would flatter and the mean would punish. */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* GFLOP/s of fn(iters) with flops_per_iter: the median over samples of at least ~5 ms each, taken
   until min_seconds have passed (at least 5, at most MAX_SAMPLES). */
static double peak_gflops(void (*fn)(long), int chains, int lanes) {
    const double flops_per_iter = 2.0 * lanes * chains;
    long iters = 1 << 12;
    for (;;) { /* warm-up and calibration: clocks up, code in cache */
        const double t0 = now();
        fn(iters);
        if (now() - t0 >= 5e-3) break;
        iters *= 2;
    }
    double g[MAX_SAMPLES], spent = 0.0;
    int n = 0;
    while (n < MAX_SAMPLES && (n < 5 || spent < min_seconds)) {
        const double t0 = now();
        fn(iters);
        const double dt = now() - t0;
        spent += dt;
        g[n++] = flops_per_iter * (double)iters / dt * 1e-9;
    }
    return median(g, n);
}

typedef struct {
    double gflops_512, gflops_256, gflops_128; /* 0 when the width is absent */
} peaks;

static peaks measure_peaks(void) {
    peaks p = {0, 0, 0};
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        p.gflops_512 = peak_gflops(fma_chains_512, PEAK_CHAINS, 16);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        p.gflops_256 = peak_gflops(fma_chains_256, 12, 8);
#elif defined(__aarch64__)
    p.gflops_128 = peak_gflops(fma_chains_128, PEAK_CHAINS, 4);
#endif
    return p;
}

/* The peak at the vector width an ISA's sgemm uses; the widest one for ref (its baseline code has
   no FMA, so this says how much the machine leaves unused). */
static double peak_for(const peaks *p, oct_isa isa) {
    switch (isa) {
    case OCT_ISA_AVX2: return p->gflops_256;
    case OCT_ISA_AVX512: case OCT_ISA_VNNI: return p->gflops_512;
    case OCT_ISA_NEON: case OCT_ISA_DOTPROD: return p->gflops_128;
    default: return p->gflops_512 > 0 ? p->gflops_512 : p->gflops_256 > 0 ? p->gflops_256 : p->gflops_128;
    }
}

typedef struct {
    const char *what;
    int m, n, k;
} shape;

static float *random_floats(size_t count) {
    float *v = malloc(count * sizeof(float));
    if (!v) {
        fprintf(stderr, "gemm_peak: cannot allocate %zu floats\n", count);
        exit(1);
    }
    uint32_t s = 2463534242u;
    for (size_t i = 0; i < count; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        v[i] = (float)(s >> 8) / 16777216.f - 0.5f;
    }
    return v;
}

/* GFLOP/s of one sgemm shape, measured like the peak: small problems run several calls per sample. */
static double sgemm_gflops(oct_sgemm_fn fn, const shape *s, const float *a, const float *b, float *c) {
    const double flops = 2.0 * s->m * s->n * (double)s->k;
    double t0 = now();
    fn(s->m, s->n, s->k, a, s->k, b, s->n, c, s->n, 0); /* warm-up: pack buffers, caches, clocks */
    const double once = now() - t0;
    const int calls = once >= 5e-3 ? 1 : (int)(5e-3 / (once > 1e-7 ? once : 1e-7)) + 1;
    double g[MAX_SAMPLES], spent = 0.0;
    int n = 0;
    while (n < MAX_SAMPLES && (n < 5 || spent < min_seconds)) {
        t0 = now();
        for (int i = 0; i < calls; i++) fn(s->m, s->n, s->k, a, s->k, b, s->n, c, s->n, 0);
        const double dt = now() - t0;
        spent += dt;
        g[n++] = flops * calls / dt * 1e-9;
    }
    sink = c[0];
    return median(g, n);
}

/* One conv-shaped GEMM the ways the Conv op can run it: packed A + fused epilogue (fused 1), sgemm +
   oct_ref_epilogue (fused 0), or pixels as rows (fused 2: the unfolded pixels packed as A in pa, the
   weights packed transposed as B in wt, the product block ct stored transposed with the epilogue). */
typedef struct {
    const oct_sgemm_arch *arch;
    oct_sgemm_fn fn;
    const shape *s;
    const float *a, *ap, *b, *bias, *pa, *wt;
    float *c, *ct;
    int fused;
} conv_job;

static void run_conv_job(const conv_job *j) {
    const shape *s = j->s;
    const oct_epilogue_args e = {.alpha = 1.f, .row_bias = j->bias, .act = {1, 0.f, 0.f}};
    if (j->fused == 2) {
        const oct_sgemm_call q = {.m = s->n, .n = s->m, .k = s->k, .ap = j->pa, .bp = j->wt, .c = j->ct, .ldc = s->m};
        oct_sgemm_run(j->arch, &q);
        oct_sgemm_store_transposed(j->arch, j->ct, s->m, s->n, s->m, j->c, s->n, &e);
    } else if (j->fused) {
        const oct_sgemm_call q = {.m = s->m, .n = s->n, .k = s->k, .a = j->a, .ap = j->ap, .lda = s->k, .b = j->b,
                                  .ldb = s->n, .c = j->c, .ldc = s->n, .e = &e};
        oct_sgemm_run(j->arch, &q);
    } else {
        j->fn(s->m, s->n, s->k, j->a, s->k, j->b, s->n, j->c, s->n, 0);
        oct_ref_epilogue(j->c, s->n, s->m, s->n, &e);
    }
}

static double conv_job_gflops(const conv_job *j) {
    const double flops = 2.0 * j->s->m * j->s->n * (double)j->s->k;
    double t0 = now();
    run_conv_job(j);
    const double once = now() - t0;
    const int calls = once >= 5e-3 ? 1 : (int)(5e-3 / (once > 1e-7 ? once : 1e-7)) + 1;
    double g[MAX_SAMPLES], spent = 0.0;
    int n = 0;
    while (n < MAX_SAMPLES && (n < 5 || spent < min_seconds)) {
        t0 = now();
        for (int i = 0; i < calls; i++) run_conv_job(j);
        const double dt = now() - t0;
        spent += dt;
        g[n++] = flops * calls / dt * 1e-9;
    }
    sink = j->c[0];
    return median(g, n);
}

int main(int argc, char **argv) {
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
            min_seconds = 0.05;
        } else {
            fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
            return 2;
        }
    }
    const peaks pk = measure_peaks();
    printf("fp32 FMA peak, 1 thread:");
    if (pk.gflops_512 > 0) printf("  512-bit %.1f GFLOP/s", pk.gflops_512);
    if (pk.gflops_256 > 0) printf("  256-bit %.1f GFLOP/s", pk.gflops_256);
    if (pk.gflops_128 > 0) printf("  128-bit %.1f GFLOP/s", pk.gflops_128);
    printf("\n\n");

    /* The kernels to compare: ref and each supported level with a kernel of its own. */
    oct_isa isas[OCT_ISA_COUNT];
    oct_sgemm_fn fns[OCT_ISA_COUNT];
    int nk = 0;
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        setenv("OCTET_ISA", oct_isa_name((oct_isa)isa), 1);
        oct_kernels_reset();
        oct_sgemm_fn fn = oct_kernels()->sgemm;
        int dup = 0;
        for (int j = 0; j < nk; j++) dup |= fns[j] == fn;
        if (dup) continue;
        isas[nk] = (oct_isa)isa;
        fns[nk++] = fn;
    }
    unsetenv("OCTET_ISA");
    oct_kernels_reset();

    static const shape full[] = {
        {"square", 256, 256, 256},      {"square", 512, 512, 512},       {"square", 1024, 1024, 1024},
        {"square", 1536, 1536, 1536},   {"square", 2048, 2048, 2048},
        {"conv 3x3 3->64 @224", 64, 50176, 27},     {"conv 3x3 64->64 @112", 64, 12544, 576},
        {"conv 3x3 64->64 @56", 64, 3136, 576},     {"conv 1x1 64->256 @56", 256, 3136, 64},
        {"conv 1x1 256->64 @56", 64, 3136, 256},    {"conv 3x3 128->128 @56", 128, 3136, 1152},
        {"conv 3x3 256->256 @56", 256, 3136, 2304}, {"conv 3x3 512->512 @56", 512, 3136, 4608},
    };
    static const shape brief[] = {
        {"square", 256, 256, 256}, {"square", 1024, 1024, 1024},
        {"conv 3x3 3->64 @224", 64, 50176, 27}, {"conv 3x3 64->64 @56", 64, 3136, 576},
    };
    const shape *shapes = quick ? brief : full;
    const int nshapes = quick ? (int)(sizeof brief / sizeof brief[0]) : (int)(sizeof full / sizeof full[0]);

    printf("%-24s %5s %6s %5s", "sgemm, 1 thread", "M", "N", "K");
    for (int j = 0; j < nk; j++) printf(" | %7s GFLOP/s %%peak", oct_isa_name(isas[j]));
    printf("\n");
    for (int s = 0; s < nshapes; s++) {
        const shape *sh = &shapes[s];
        float *a = random_floats((size_t)sh->m * sh->k), *b = random_floats((size_t)sh->k * sh->n);
        float *c = random_floats((size_t)sh->m * sh->n);
        printf("%-24s %5d %6d %5d", sh->what, sh->m, sh->n, sh->k);
        fflush(stdout);
        for (int j = 0; j < nk; j++) {
            const double g = sgemm_gflops(fns[j], sh, a, b, c);
            const double peak = peak_for(&pk, isas[j]);
            printf(" | %15.1f %4.0f%%", g, peak > 0 ? 100.0 * g / peak : NAN);
            fflush(stdout);
        }
        printf("\n");
        free(a);
        free(b);
        free(c);
    }
    printf("\n%%peak: of the FMA peak at the kernel's vector width (ref: of the widest).\n\n");

    static const shape conv_full[] = {
        {"r50 1x1 64->256 @56", 256, 3136, 64},     {"r50 1x1 256->64 @56", 64, 3136, 256},
        {"r50 3x3 64->64 @56", 64, 3136, 576},      {"r50 3x3 256->256 @14", 256, 196, 2304},
        {"r50 3x3 512->512 @7", 512, 49, 4608},     {"r50 1x1 512->2048 @7", 2048, 49, 512},
        {"mbv2 1x1 16->96 @112", 96, 12544, 16},    {"mbv2 1x1 960->320 @7", 320, 49, 960},
        {"mbv2 1x1 320->1280 @7", 1280, 49, 320},   {"r18 7x7 3->64 /2", 64, 12544, 147},
    };
    static const shape conv_brief[] = {{"r50 3x3 64->64 @56", 64, 3136, 576}, {"mbv2 1x1 16->96 @112", 96, 12544, 16}};
    const shape *cs = quick ? conv_brief : conv_full;
    const int ncs = quick ? (int)(sizeof conv_brief / sizeof conv_brief[0]) : (int)(sizeof conv_full / sizeof conv_full[0]);
    printf("%-24s %5s %6s %5s", "conv GEMM + bias + Relu", "M", "N", "K");
    for (int j = 0; j < nk; j++) printf(" | %7s sgemm+pass  packed+fused %%peak  px-rows", oct_isa_name(isas[j]));
    printf("\n");
    for (int s = 0; s < ncs; s++) {
        const shape *sh = &cs[s];
        float *a = random_floats((size_t)sh->m * sh->k), *b = random_floats((size_t)sh->k * sh->n);
        float *c = random_floats((size_t)sh->m * sh->n), *bias = random_floats((size_t)sh->m);
        printf("%-24s %5d %6d %5d", sh->what, sh->m, sh->n, sh->k);
        fflush(stdout);
        for (int j = 0; j < nk; j++) {
            setenv("OCTET_ISA", oct_isa_name(isas[j]), 1);
            oct_kernels_reset();
            const oct_sgemm_arch *arch = oct_sgemm_arch_current();
            float *ap = malloc(oct_sgemm_packed_a_floats(arch, sh->m, sh->k) * sizeof(float));
            if (!ap) {
                fprintf(stderr, "gemm_peak: cannot allocate packed weights\n");
                return 1;
            }
            oct_sgemm_pack_a(arch, sh->m, sh->k, a, sh->k, ap);
            conv_job job = {arch, fns[j], sh, a, ap, b, bias, NULL, NULL, c, NULL, 0};
            const double plain = conv_job_gflops(&job);
            job.fused = 1;
            const double fused = conv_job_gflops(&job);
            const double peak = peak_for(&pk, isas[j]);
            printf(" | %18.1f %13.1f %4.0f%%", plain, fused, peak > 0 ? 100.0 * fused / peak : NAN);
            /* Pixels as rows, the Conv op's choice for few output pixels: B^T is the unfolded
               pixels (packed as A, as im2col writes them), A^T the weights (packed once as B). */
            if (sh->n <= 256) {
                float *bt = malloc((size_t)sh->n * sh->k * sizeof(float));
                float *pa = malloc(oct_sgemm_packed_a_floats(arch, sh->n, sh->k) * sizeof(float));
                float *wt = malloc(oct_sgemm_packed_b_floats(arch, sh->k, sh->m) * sizeof(float));
                float *ct = malloc((size_t)sh->n * sh->m * sizeof(float));
                if (!bt || !pa || !wt || !ct) {
                    fprintf(stderr, "gemm_peak: cannot allocate the pixels-as-rows operands\n");
                    return 1;
                }
                for (int p = 0; p < sh->k; p++)
                    for (int i = 0; i < sh->n; i++) bt[(size_t)i * sh->k + p] = b[(size_t)p * sh->n + i];
                oct_sgemm_pack_a(arch, sh->n, sh->k, bt, sh->k, pa);
                oct_sgemm_pack_b(arch, sh->k, sh->m, a, sh->k, 1, wt);
                job.pa = pa, job.wt = wt, job.ct = ct, job.fused = 2;
                printf(" %8.1f", conv_job_gflops(&job));
                free(bt), free(pa), free(wt), free(ct);
            } else {
                printf(" %8s", "-");
            }
            fflush(stdout);
            free(ap);
        }
        printf("\n");
        free(a), free(b), free(c), free(bias);
    }
    unsetenv("OCTET_ISA");
    oct_kernels_reset();
    printf("\nGFLOP/s; %%peak of the packed+fused path; px-rows: pixels as rows (N <= 256 only).\n");
    return 0;
}
