/* xfer: what a 2-thread run pays when one core reads what the other just wrote.

   Layer after layer, octet's threads read tensors the previous layer wrote; when the previous
   layer split the work differently, half of those lines come from the other core's cache. On the
   shared 2-vCPU machines this costs 1.1x to 2.7x a core re-reading its own writes, and the factor
   changes within minutes as the hypervisor moves the vCPUs (session 4's note). Run this next to a
   2-thread benchmark to know which phase the machine is in.

   Two OpenMP threads. Per round, thread 0 writes a buffer; then either thread 0 (own) or thread 1
   (other) reads it. The buffer (default 512 KB) fits L2, as a layer's tensor does. Prints GB/s
   of both reads (median over rounds) and their ratio.

   usage: xfer [KB] [rounds] */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sums the buffer (64-bit words, so the loads dominate); the sum keeps the reads alive. */
static uint64_t read_all(const uint64_t *p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s;
}

int main(int argc, char **argv) {
    const long kb = argc > 1 ? atol(argv[1]) : 512, rounds = argc > 2 ? atol(argv[2]) : 200;
    if (kb < 4 || kb > (1L << 20) || rounds < 1 || rounds > 100000) {
        fprintf(stderr, "usage: xfer [KB 4..1048576] [rounds 1..100000]\n");
        return 2;
    }
    const size_t n = (size_t)kb * 1024 / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(64, n * sizeof(uint64_t));
    double *own = malloc((size_t)rounds * sizeof(double)), *other = malloc((size_t)rounds * sizeof(double));
    if (!buf || !own || !other) {
        fprintf(stderr, "xfer: out of memory\n");
        return 1;
    }
    uint64_t sink = 0;
    int threads = 0;
#pragma omp parallel num_threads(2) reduction(+ : sink)
    {
#pragma omp single
        threads = omp_get_num_threads();
        const int me = omp_get_thread_num();
        for (long r = 0; r < 2 * rounds; r++) {
            const int reader = (int)(r & 1); /* even rounds: thread 0 re-reads; odd: thread 1 reads */
            if (me == 0) memset(buf, (int)(r & 0xff), n * sizeof(uint64_t));
#pragma omp barrier
            if (me == reader) {
                const double t0 = now_s();
                sink += read_all(buf, n);
                (reader ? other : own)[r / 2] = now_s() - t0;
            }
#pragma omp barrier
        }
    }
    if (threads < 2) {
        fprintf(stderr, "xfer: needs 2 threads (OMP_NUM_THREADS, cores)\n");
        return 1;
    }
    qsort(own, (size_t)rounds, sizeof(double), cmp_double);
    qsort(other, (size_t)rounds, sizeof(double), cmp_double);
    const double bytes = (double)n * sizeof(uint64_t), g_own = bytes / own[rounds / 2] * 1e-9,
                 g_other = bytes / other[rounds / 2] * 1e-9;
    printf("buffer %ld KB: own core %.1f GB/s, other core %.1f GB/s, cross-core factor %.2f (checksum %llu)\n", kb,
           g_own, g_other, g_own / g_other, (unsigned long long)(sink & 0xff));
    free(buf), free(own), free(other);
    return 0;
}
