/* qgemm_peak: how close the int8 GEMM kernel sets come to the machine's int8 multiply-add peak,
   on one thread.

   First the peaks: independent chains of VPDPBUSD (512-bit AVX-512 VNNI, 256-bit AVX-VNNI) and of
   VPMADDWD + VPADDD (the AVX2 path), more chains than latency x pipes so the pipes never wait.
   Then GOP/s (2 ops per multiply-add) of ref and of every int8 set the CPU runs, on square sizes
   and on the shapes convolutions hand to qgemm (rows = output channels, K = Cin * kernel volume,
   columns = output pixels), with the fraction of the 512-bit VNNI peak and of the set's own peak.
   The timed call is the whole qgemm (activation packing and zero-point fix-up included).
   Last, the fused convolution path as QLinearConv runs it on one thread: ResNet and MobileNet
   layers unfolded (im2col) straight into each set's panels by the packers of the selected ISA
   level (qpanel_isa.h), tile by tile, and qgemm_panel writing requantized bytes; GOP/s counts
   the GEMM's multiply-adds, the time includes the unfolding. Beside it, the GEMM alone (tiles
   unfolded outside the timing) and the same path with the portable ref packers, for the ratio.

   usage: qgemm_peak [--quick]     (--quick: fewer sizes, shorter timing; for smoke runs) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "kernels/qpanel_isa.h"
#include "kernels/quant_isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Thread CPU time: time spent descheduled on a shared machine does not count against a kernel. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile int32_t sink;
static double min_seconds = 0.3;

/* The peak loops are written in assembly: GCC spills arrays of vector chains to the stack inside
   target() functions, and the stores would be measured instead of the multiply-adds. */
#if defined(__x86_64__)
/* Each step: 16 independent VPDPBUSD of 64 u8 x s8 multiply-adds. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void dpbusd_chains_512(long iters) {
    __asm__ volatile(
        "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
        "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
        "1:\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm0\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm1\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm2\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm3\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm4\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm5\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm6\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm7\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm8\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm9\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm10\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm11\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm12\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm13\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm14\n\t"
        "vpdpbusd %%zmm17, %%zmm16, %%zmm15\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "cc");
}

/* Each step: 12 independent VEX VPDPBUSD of 32 multiply-adds (16 ymm registers, no AVX-512). */
__attribute__((target("avx2,avxvnni"))) static void dpbusd_chains_256(long iters) {
    __asm__ volatile(
        "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
        "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
        "1:\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm0\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm1\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm2\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm3\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm4\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm5\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm6\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm7\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm8\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm9\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm10\n\t"
        "%{vex%} vpdpbusd %%ymm13, %%ymm12, %%ymm11\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "cc");
}

/* Each step: 6 VPMADDWD of 16 int16 multiply-adds and the 6 VPADDD that accumulate them, the
   instruction pair of the AVX2 kernel. */
__attribute__((target("avx2"))) static void maddwd_chains_256(long iters) {
    __asm__ volatile(
        "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
        "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
        "1:\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm6\n\t"
        "vpaddd %%ymm6, %%ymm0, %%ymm0\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm7\n\t"
        "vpaddd %%ymm7, %%ymm1, %%ymm1\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm8\n\t"
        "vpaddd %%ymm8, %%ymm2, %%ymm2\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm9\n\t"
        "vpaddd %%ymm9, %%ymm3, %%ymm3\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm10\n\t"
        "vpaddd %%ymm10, %%ymm4, %%ymm4\n\t"
        "vpmaddwd %%ymm13, %%ymm12, %%ymm11\n\t"
        "vpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "cc");
}
#endif

#if defined(__x86_64__)
/* GOP/s of a chain loop doing `ops_per_step` per iteration. */
static double peak(void (*fn)(long), double ops_per_step) {
    long iters = 1 << 16;
    fn(iters); /* warm up: frequency, caches */
    for (;;) {
        const double t0 = now();
        fn(iters);
        const double dt = now() - t0;
        if (dt >= min_seconds) return ops_per_step * (double)iters / dt * 1e-9;
        iters *= dt > 1e-4 ? (long)(min_seconds / dt * 1.2) + 1 : 16;
    }
}
#endif

typedef struct {
    const char *what;
    const oct_quant_kernel_set *ks;
    double own_peak; /* GOP/s of its instruction, 0 if not measured */
} bench_set;

/* GOP/s of ks->qgemm on rows x k times k x cols, over the whole rows range in one call. */
static double run_qgemm(const oct_quant_kernel_set *ks, int rows, int k, int cols) {
    int8_t *w = malloc((size_t)rows * (size_t)k);
    uint8_t *x = malloc((size_t)k * (size_t)cols);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)rows * (size_t)cols);
    const size_t bytes = ks->qweights_bytes(rows, k);
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!w || !x || !acc || !buf) {
        fprintf(stderr, "qgemm_peak: out of memory for %d x %d x %d\n", rows, k, cols);
        exit(1);
    }
    uint32_t r = 1;
    for (size_t i = 0; i < (size_t)rows * (size_t)k; i++) w[i] = (int8_t)((r = r * 1664525u + 1013904223u) >> 24);
    for (size_t i = 0; i < (size_t)k * (size_t)cols; i++) x[i] = (uint8_t)((r = r * 1664525u + 1013904223u) >> 24);
    oct_qweights pw;
    ks->qweights_pack(rows, k, w, 0, k, 1, buf, &pw);
    const double ops = 2.0 * rows * (double)k * cols;
    ks->qgemm(&pw, 0, rows, cols, x, cols, 7, NULL, NULL, acc, cols);
    long reps = 1;
    double best = 0;
    for (;;) {
        const double t0 = now();
        for (long i = 0; i < reps; i++) ks->qgemm(&pw, 0, rows, cols, x, cols, 7, NULL, NULL, acc, cols);
        const double dt = now() - t0;
        if (dt >= min_seconds) {
            best = ops * (double)reps / dt * 1e-9;
            break;
        }
        reps *= dt > 1e-4 ? (long)(min_seconds / dt * 1.2) + 1 : 16;
    }
    sink = acc[0];
    free(w);
    free(x);
    free(acc);
    free(buf);
    return best;
}

/* GOP/s of a whole C x HxW -> M 2-D convolution (kernel k, stride s, pad k/2) through the fused
   path of ks, single-threaded, in pixel tiles of about 384 KiB of panels as qconv.c plans them,
   unfolded by pk; gemm_only: the tiles are unfolded once, outside the timing. */
static double run_conv(const oct_quant_kernel_set *ks, const oct_qpanel_kernels *pk, int C, int H, int M, int k,
                       int s, int gemm_only) {
    oct_conv_geom g = {{1, H, H}, {1, (H + 2 * (k / 2) - k) / s + 1, (H + 2 * (k / 2) - k) / s + 1}, {1, k, k},
                       {1, s, s}, {1, 1, 1}, {0, k / 2, k / 2}};
    const int K = C * k * k, P = (int)oct_geom_out_vol(&g);
    const int per_col = (int)(oct_qpanel_stride(ks->panel, K) / ks->panel->nr);
    int tile = (3 << 17) / per_col / ks->panel->nr * ks->panel->nr;
    if (tile > 2048) tile = 2048;
    if (tile < ks->panel->nr) tile = ks->panel->nr;
    if (tile > P) tile = P;
    int8_t *w = malloc((size_t)M * (size_t)K);
    uint8_t *x = malloc((size_t)C * (size_t)H * (size_t)H), *y = malloc((size_t)M * (size_t)P);
    float *scale = malloc(sizeof(float) * (size_t)M);
    void *wbuf = aligned_alloc(64, (ks->qweights_bytes(M, K) + 63) / 64 * 64);
    const size_t tile_bytes = oct_qpanel_bytes(ks->panel, K, tile);
    const int tiles = (P + tile - 1) / tile;
    char *panel = aligned_alloc(64, tile_bytes * (size_t)(gemm_only ? tiles : 1));
    void *scratch = aligned_alloc(64, oct_ref_qpanel_im2col_scratch(&g, C));
    if (!w || !x || !y || !scale || !wbuf || !panel || !scratch) {
        fprintf(stderr, "qgemm_peak: out of memory for a %d -> %d conv\n", C, M);
        exit(1);
    }
    uint32_t r = 5;
    for (size_t i = 0; i < (size_t)M * (size_t)K; i++) w[i] = (int8_t)((r = r * 1664525u + 1013904223u) >> 24);
    for (size_t i = 0; i < (size_t)C * H * H; i++) x[i] = (uint8_t)((r = r * 1664525u + 1013904223u) >> 24);
    for (int m = 0; m < M; m++) scale[m] = 1e-4f * (float)(1 + m % 7);
    oct_qweights pw;
    ks->qweights_pack(M, K, w, 0, K, 1, wbuf, &pw);
    const oct_requant rq = {scale, 1, NULL, 3, 0, 255, 0, NULL};
    const double ops = 2.0 * M * (double)K * P;
    for (int p0 = 0; gemm_only && p0 < P; p0 += tile)
        pk->im2col(ks->panel, &g, x, C, p0, P - p0 < tile ? P - p0 : tile, 0, 7, scratch,
                   panel + (size_t)(p0 / tile) * tile_bytes);
    long reps = 1;
    double best = 0;
    for (;;) {
        const double t0 = now();
        for (long i = 0; i < reps; i++)
            for (int p0 = 0; p0 < P; p0 += tile) {
                const int np = P - p0 < tile ? P - p0 : tile;
                char *tp = gemm_only ? panel + (size_t)(p0 / tile) * tile_bytes : panel;
                if (!gemm_only) pk->im2col(ks->panel, &g, x, C, p0, np, 0, 7, scratch, tp);
                const oct_qgemm_out o = {7, NULL, NULL, NULL, &rq, y + p0, P, 1};
                ks->qgemm_panel(&pw, 0, M, np, tp, &o);
            }
        const double dt = now() - t0;
        if (dt >= min_seconds) {
            best = ops * (double)reps / dt * 1e-9;
            break;
        }
        reps *= dt > 1e-4 ? (long)(min_seconds / dt * 1.2) + 1 : 16;
    }
    sink = y[P / 2];
    free(w);
    free(x);
    free(y);
    free(scale);
    free(wbuf);
    free(panel);
    free(scratch);
    return best;
}

int main(int argc, char **argv) {
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (quick) min_seconds = 0.05;
    bench_set sets[6];
    int n = 0;
    double vnni512 = 0;
    sets[n++] = (bench_set){"ref", &oct_ref_quant_kernels, 0};
#if defined(__x86_64__)
    printf("int8 multiply-add peak, 1 thread (GOP/s, 2 ops per multiply-add):\n");
    double p_avx2 = 0, p_avxvnni = 0;
    if (oct_isa_supported(OCT_ISA_AVX2)) {
        p_avx2 = peak(maddwd_chains_256, 6.0 * 16 * 2);
        printf("  VPMADDWD+VPADDD ymm  %8.1f\n", p_avx2);
        sets[n++] = (bench_set){"avx2", &oct_avx2_quant_kernels, p_avx2};
    }
    if (oct_cpu_has_avxvnni()) {
        p_avxvnni = peak(dpbusd_chains_256, 12.0 * 32 * 2);
        printf("  VPDPBUSD ymm         %8.1f\n", p_avxvnni);
        sets[n++] = (bench_set){"avxvnni", &oct_avxvnni_quant_kernels, p_avxvnni};
    }
    if (oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni")) {
        vnni512 = peak(dpbusd_chains_512, 16.0 * 64 * 2);
        printf("  VPDPBUSD zmm         %8.1f\n", vnni512);
        sets[n++] = (bench_set){"vnni", &oct_vnni_quant_kernels, vnni512};
    }
#elif defined(__aarch64__)
    sets[n++] = (bench_set){"neon", &oct_neon_quant_kernels, 0};
    if (oct_isa_supported(OCT_ISA_DOTPROD)) sets[n++] = (bench_set){"dotprod", &oct_dotprod_quant_kernels, 0};
#endif
    static const int square[] = {128, 256, 512, 1024};
    /* ResNet-style 3x3 layers at 224 input (56..7 pixels a side), a 1x1 expansion, a 3-D layer. */
    static const int conv[][3] = {{64, 576, 3136}, {128, 1152, 784}, {256, 2304, 196}, {512, 4608, 49},
                                  {256, 64, 3136}, {32, 864, 13824}};
    const int nsq = quick ? 2 : 4, ncv = quick ? 2 : 6;
    printf("\n%-22s %-8s %9s %9s %9s\n", "rows x K x cols", "set", "GOP/s", "%vnni512", "%own");
    for (int s = 0; s < nsq + ncv; s++) {
        const int rows = s < nsq ? square[s] : conv[s - nsq][0];
        const int k = s < nsq ? square[s] : conv[s - nsq][1];
        const int cols = s < nsq ? square[s] : conv[s - nsq][2];
        char shape[32];
        snprintf(shape, sizeof shape, "%d x %d x %d", rows, k, cols);
        for (int i = 0; i < n; i++) {
            /* ref on the big shapes would take minutes for nothing new. */
            if (sets[i].ks == &oct_ref_quant_kernels && (double)rows * k * cols > 3e8) continue;
            const double g = run_qgemm(sets[i].ks, rows, k, cols);
            printf("%-22s %-8s %9.1f", shape, sets[i].what, g);
            if (vnni512 > 0) printf(" %8.1f%%", 100.0 * g / vnni512);
            else printf(" %9s", "-");
            if (sets[i].own_peak > 0) printf(" %8.1f%%", 100.0 * g / sets[i].own_peak);
            printf("\n");
        }
    }
    /* ResNet-18/50 at 224: the 3x3 stages, a strided 3x3, the stem, a 1x1 expansion and a strided
       1x1; MobileNetV2's K = 16 expansion at 112x112 (write-back bound). */
    static const int convs[][5] = {{64, 56, 64, 3, 1},  {128, 28, 128, 3, 1}, {256, 14, 256, 3, 1},
                                   {512, 7, 512, 3, 1}, {64, 56, 128, 3, 2},  {3, 224, 64, 7, 2},
                                   {64, 56, 256, 1, 1}, {256, 56, 512, 1, 2}, {16, 112, 96, 1, 1}};
    const int ncv2 = quick ? 2 : 9;
    const oct_qpanel_kernels *pk = oct_qpanel_kernels_selected();
    printf("\nfused conv path, unfolded by the %s packers (ratio: against the ref packers)\n", pk->name);
    printf("%-26s %-8s %9s %9s %9s %10s %9s %9s %7s\n", "conv C,HxW->M kxk/s", "set", "GOP/s", "%vnni512", "%own",
           "GEMM only", "%vnni512", "ref unf.", "ratio");
    for (int c = 0; c < ncv2; c++) {
        char shape[40];
        snprintf(shape, sizeof shape, "%d,%dx%d->%d %dx%d/%d", convs[c][0], convs[c][1], convs[c][1], convs[c][2],
                 convs[c][3], convs[c][3], convs[c][4]);
        for (int i = 0; i < n; i++) {
            if (sets[i].ks == &oct_ref_quant_kernels) continue;
            const int *cv = convs[c];
            const double g = run_conv(sets[i].ks, pk, cv[0], cv[1], cv[2], cv[3], cv[4], 0);
            const double gg = run_conv(sets[i].ks, pk, cv[0], cv[1], cv[2], cv[3], cv[4], 1);
            const double go = run_conv(sets[i].ks, &oct_ref_qpanel_kernels, cv[0], cv[1], cv[2], cv[3], cv[4], 0);
            printf("%-26s %-8s %9.1f", shape, sets[i].what, g);
            if (vnni512 > 0) printf(" %8.1f%%", 100.0 * g / vnni512);
            else printf(" %9s", "-");
            if (sets[i].own_peak > 0) printf(" %8.1f%%", 100.0 * g / sets[i].own_peak);
            else printf(" %9s", "-");
            printf(" %10.1f", gg);
            if (vnni512 > 0) printf(" %8.1f%%", 100.0 * gg / vnni512);
            else printf(" %9s", "-");
            printf(" %9.1f %6.2fx\n", go, g / go);
        }
    }
    return 0;
}
