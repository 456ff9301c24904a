/* Goto/BLIS blocking for the SIMD fp32 GEMMs (see sgemm_blocked.h).

   Loop order, outermost first: k in kc blocks (C is read-modify-written once per block), m in mc
   blocks (the packed A block, re-read once per nc block from L3), n in nc blocks (the packed B block,
   sized to stay in L2 while every A strip sweeps it), A strips of mr rows (an 8 KB-ish micro-panel
   that stays in L1), B strips of nr columns (streamed from L2). The kernels are called
   single-threaded from the callers' own OpenMP loops, so the pack buffers are per thread: one heap
   block per thread, grown on demand and freed by a pthread key destructor when the thread ends. */
#include "sgemm_blocked.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

typedef struct {
    float *buf;
    size_t floats;
} pack_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *p) {
    pack_scratch *s = p;
    free(s->buf);
    free(s);
}

static void scratch_key_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

/* This thread's pack buffer with room for `floats` floats, 64-byte aligned; NULL if out of memory. */
static float *thread_scratch(size_t floats) {
    pthread_once(&scratch_once, scratch_key_init);
    if (!scratch_key_ok) return NULL;
    pack_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->floats < floats) {
        /* Round up so that slightly larger calls do not reallocate again. */
        size_t want = (floats + 4095) / 4096 * 4096;
        float *nb = aligned_alloc(64, want * sizeof(float));
        if (!nb) return NULL;
        free(s->buf);
        s->buf = nb;
        s->floats = want;
    }
    return s->buf;
}

static int min_int(int a, int b) { return a < b ? a : b; }

void oct_sgemm_blocked(const oct_sgemm_arch *arch, int m, int n, int k, const float *a, int lda,
                       const float *b, int ldb, float *c, int ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    const int mr = arch->mr, nr = arch->nr;
    const int kc_max = min_int(k, arch->kc);
    const int mc_max = min_int(m, arch->mc), nc_max = min_int(n, arch->nc);
    /* When few A strips reuse each B strip (the callers' 64-row tiles), copying B into a panel costs
       more than the panel saves, as long as B's rows are close together (an im2col tile is at most
       2048 wide); farther apart, every k step touches a new page and packing wins again. Measured on
       AVX-512 (Zen 5): up to 8 strips and 2048 floats. A single strip never gains from a copy. */
    const int b_in_place = arch->reads_b_in_place && (m <= mr || (m <= 8 * mr && ldb <= 2048));
    /* Block sizes are bounded by the arch constants, so these products cannot overflow. */
    const size_t a_floats = (size_t)((mc_max + mr - 1) / mr) * mr * kc_max;
    const size_t b_floats = b_in_place ? 0 : (size_t)((nc_max + nr - 1) / nr) * nr * kc_max;
    /* The B block starts on a 64-byte boundary, as the A block does. */
    const size_t a_padded = (a_floats + 15) / 16 * 16;
    float *ap = thread_scratch(a_padded + b_floats);
    if (!ap) {
        /* Out of memory for a few hundred KB: the reference kernel needs no heap and gives the same
           result within rounding, and this function has no error channel. */
        oct_ref_sgemm(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
        return;
    }
    float *bp = ap + a_padded;

    for (int p0 = 0; p0 < k; p0 += arch->kc) {
        const int kc = min_int(k - p0, arch->kc);
        const int load = accumulate || p0 > 0;
        for (int i0 = 0; i0 < m; i0 += arch->mc) {
            const int mc = min_int(m - i0, arch->mc);
            for (int ir = 0; ir < mc; ir += mr)
                arch->pack_a(min_int(mc - ir, mr), kc, a + (size_t)(i0 + ir) * lda + p0, lda,
                             ap + (size_t)ir * kc);
            for (int j0 = 0; j0 < n; j0 += arch->nc) {
                const int nc = min_int(n - j0, arch->nc);
                const float *bblock = b + (size_t)p0 * ldb + j0;
                if (!b_in_place)
                    for (int jr = 0; jr < nc; jr += nr)
                        arch->pack_b(kc, min_int(nc - jr, nr), bblock + jr, ldb, bp + (size_t)jr * kc);
                for (int ir = 0; ir < mc; ir += mr) {
                    const int rows = min_int(mc - ir, mr);
                    const float *astrip = ap + (size_t)ir * kc;
                    float *crow = c + (size_t)(i0 + ir) * ldc + j0;
                    for (int jr = 0; jr < nc; jr += nr) {
                        const int cols = min_int(nc - jr, nr);
                        if (b_in_place)
                            arch->tile(rows, cols, kc, astrip, bblock + jr, (size_t)ldb, crow + jr,
                                       (size_t)ldc, load);
                        else
                            arch->tile(rows, cols, kc, astrip, bp + (size_t)jr * kc, (size_t)nr, crow + jr,
                                       (size_t)ldc, load);
                    }
                }
            }
        }
    }
}
