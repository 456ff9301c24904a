/* Goto/BLIS blocking for the fp32 GEMMs (see sgemm_blocked.h).

   Loop order, outermost first: k in kc blocks (C is read-modify-written once per block), m in mc
   blocks (the packed A block, re-read once per nc block from L3), n in nc blocks (the packed B block,
   sized to stay in L2 while every A strip sweeps it), A strips of mr rows (an 8 KB-ish micro-panel
   that stays in L1), B strips of nr columns (streamed from L2); the last two swap when both operands
   come packed with a long reduction (see b_outer). The kernels are called
   single-threaded from the callers' own OpenMP loops, so the pack buffers are per thread: one heap
   block per thread, grown on demand and freed by a pthread key destructor when the thread ends.
   Operands packed ahead of time (weights) skip their packing; the epilogue runs in the tiles'
   write-back on the last k block, while the tile is still in registers. */
#include "sgemm_blocked.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isa_kernels.h"
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

/* Bounds of the stack buffers of the out-of-memory path, above every arch's constants. */
enum { STACK_MR = 16, STACK_NR = 64, STACK_KC = 128 };

void oct_sgemm_run(const oct_sgemm_arch *arch, const oct_sgemm_call *q) {
    const int m = q->m, n = q->n, k = q->k, mr = arch->mr, nr = arch->nr;
    if (m <= 0 || n <= 0) return;
    const oct_epilogue_args *e = q->e && !oct_epilogue_is_identity(q->e) ? q->e : NULL;
    /* The tiles read C's broadcast term along a row or as one value per row; any other column
       stride gets the reference pass afterwards (no caller makes one today). */
    const oct_epilogue_args *e_after = e && e->c && e->c_cs != 0 && e->c_cs != 1 ? e : NULL;
    if (e_after) e = NULL;
    if (k <= 0) {
        if (!q->accumulate)
            for (int i = 0; i < m; i++) memset(q->c + (size_t)i * q->ldc, 0, (size_t)n * sizeof(float));
        if (e || e_after) oct_ref_epilogue(q->c, q->ldc, m, n, e ? e : e_after);
        return;
    }
    int kc_blk = arch->kc, mc_blk = arch->mc, nc_blk = arch->nc;
    /* When few A strips reuse each B strip (the callers' 64-row tiles), copying B into a panel costs
       more than the panel saves, as long as B's rows are close together (an im2col tile is at most
       2048 wide); farther apart, every k step touches a new page and packing wins again. Measured on
       AVX-512 (Zen 5): up to 8 strips and 2048 floats, and up to 16 strips when B's rows are at
       most 256 floats (14x14 planes: 576->96 at 14x14 8% faster). A single strip never gains from
       a copy. */
    const int b_in_place = !q->bp && arch->reads_b_in_place &&
                           (m <= mr || (m <= 8 * mr && q->ldb <= 2048) || (m <= 16 * mr && q->ldb <= 256));
    const int kc_max = min_int(k, kc_blk);
    /* Block sizes are bounded by the arch constants, so these products cannot overflow. */
    const size_t a_floats = q->ap ? 0 : (size_t)((min_int(m, mc_blk) + mr - 1) / mr) * mr * kc_max;
    const size_t b_floats = q->bp || b_in_place ? 0 : (size_t)((min_int(n, nc_blk) + nr - 1) / nr) * nr * kc_max;
    /* The B block starts on a 64-byte boundary, as the A block does. */
    const size_t a_padded = (a_floats + 15) / 16 * 16;
    float stack_a[STACK_MR * STACK_KC] __attribute__((aligned(64)));
    float stack_b[STACK_NR * STACK_KC] __attribute__((aligned(64)));
    float *ascr = NULL, *bscr = NULL;
    if (a_floats + b_floats) {
        ascr = thread_scratch(a_padded + b_floats);
        if (ascr) {
            bscr = ascr + a_padded;
        } else {
            /* Out of memory for a few hundred KB, and this function has no error channel: pack one
               strip at a time into stack buffers instead, the same arithmetic at a lower speed. */
            kc_blk = STACK_KC;
            mc_blk = mr;
            nc_blk = nr;
            ascr = stack_a;
            bscr = stack_b;
        }
    }
    const float *a = q->a, *b = q->b;
    const int lda = q->lda, ldb = q->ldb;
    /* B packed ahead of time is a layer's weights, read from memory rather than cache. */
    const oct_sgemm_tile_fn tile = q->bp && arch->tile_stream ? arch->tile_stream : arch->tile;
    /* Both operands packed and a long reduction (the 3x3 convs of 7x7 planes, run with pixels as A
       and weights as B, whose B block for one k block fills L2): each B strip is swept by every A
       strip before the next, so each weight line comes from memory once and the A panel block (a
       few strips) stays close. Measured (ab, AVX-512): ResNet-18 fp32 -4% (1t) / -2.6% (2t), a
       512->512 3x3 at 7x7 -8%; on short reductions (MobileNetV2's 1x1 at 7x7) it lost 3%. */
    const int b_outer = q->ap && q->bp && k >= 2048;

    for (int p0 = 0; p0 < k; p0 += kc_blk) {
        const int kc = min_int(k - p0, kc_blk);
        const int load = q->accumulate || p0 > 0, last = p0 + kc >= k;
        for (int i0 = 0; i0 < m; i0 += mc_blk) {
            const int mc = min_int(m - i0, mc_blk);
            if (!q->ap)
                for (int ir = 0; ir < mc; ir += mr)
                    arch->pack_a(min_int(mc - ir, mr), kc, a + (size_t)(i0 + ir) * lda + p0, lda,
                                 ascr + (size_t)ir * kc);
            for (int j0 = 0; j0 < n; j0 += nc_blk) {
                const int nc = min_int(n - j0, nc_blk);
                if (!q->bp && !b_in_place)
                    for (int jr = 0; jr < nc; jr += nr)
                        arch->pack_b(kc, min_int(nc - jr, nr), b + (size_t)p0 * ldb + j0 + jr, ldb,
                                     bscr + (size_t)jr * kc);
                const int astrips = (mc + mr - 1) / mr, bstrips = (nc + nr - 1) / nr;
                for (int o = 0; o < (b_outer ? bstrips : astrips); o++)
                    for (int in = 0; in < (b_outer ? astrips : bstrips); in++) {
                        const int ir = (b_outer ? in : o) * mr, jr = (b_outer ? o : in) * nr;
                        const int rows = min_int(mc - ir, mr), i = i0 + ir;
                        const int cols = min_int(nc - jr, nr), j = j0 + jr;
                        const float *astrip = q->ap ? q->ap + (size_t)(i / mr) * mr * k + (size_t)p0 * mr
                                                    : ascr + (size_t)ir * kc;
                        const float *bstrip;
                        size_t bs = (size_t)nr;
                        if (q->bp) {
                            bstrip = q->bp + (size_t)(j / nr) * nr * k + (size_t)p0 * nr;
                        } else if (b_in_place) {
                            bstrip = b + (size_t)p0 * ldb + j;
                            bs = (size_t)ldb;
                        } else {
                            bstrip = bscr + (size_t)jr * kc;
                        }
                        oct_epilogue_args te;
                        const oct_epilogue_args *tep = NULL;
                        if (e && last) {
                            te = *e;
                            if (te.row_bias) te.row_bias += i;
                            if (te.c) te.c += (int64_t)i * te.c_rs + (int64_t)j * te.c_cs;
                            if (te.res) te.res += (int64_t)i * te.ldr + j;
                            tep = &te;
                        }
                        tile(rows, cols, kc, astrip, bstrip, bs, q->c + (size_t)i * q->ldc + j, (size_t)q->ldc, load,
                             tep);
                    }
            }
        }
    }
    if (e_after) oct_ref_epilogue(q->c, q->ldc, m, n, e_after);
}

void oct_sgemm_blocked(const oct_sgemm_arch *arch, int m, int n, int k, const float *a, int lda,
                       const float *b, int ldb, float *c, int ldc, int accumulate) {
    const oct_sgemm_call q = {.m = m, .n = n, .k = k, .a = a, .lda = lda, .b = b, .ldb = ldb, .c = c,
                              .ldc = ldc, .accumulate = accumulate};
    oct_sgemm_run(arch, &q);
}

size_t oct_sgemm_packed_a_floats(const oct_sgemm_arch *arch, int m, int k) {
    if (m <= 0 || k <= 0) return 0;
    const size_t rows = (size_t)(m + arch->mr - 1) / (size_t)arch->mr * (size_t)arch->mr;
    if ((size_t)k > SIZE_MAX / sizeof(float) / rows) return 0;
    return rows * (size_t)k;
}

size_t oct_sgemm_packed_b_floats(const oct_sgemm_arch *arch, int k, int n) {
    return oct_sgemm_packed_a_floats(&(oct_sgemm_arch){.mr = arch->nr}, n, k);
}

void oct_sgemm_pack_a(const oct_sgemm_arch *arch, int m, int k, const float *a, int lda, float *ap) {
    for (int i = 0; i < m; i += arch->mr)
        arch->pack_a(min_int(m - i, arch->mr), k, a + (size_t)i * lda, lda, ap + (size_t)i * k);
}

void oct_sgemm_pack_b(const oct_sgemm_arch *arch, int k, int n, const float *b, int ldb, int b_trans,
                      float *bp) {
    const int nr = arch->nr;
    for (int j0 = 0; j0 < n; j0 += nr, bp += (size_t)nr * k) {
        const int cols = min_int(n - j0, nr);
        if (!b_trans) {
            arch->pack_b(k, cols, b + j0, ldb, bp);
            continue;
        }
        /* Plan time only: a plain transposing copy, one source row (output column) at a time. */
        for (int j = 0; j < nr; j++) {
            const float *src = b + (size_t)(j0 + j) * ldb;
            for (int p = 0; p < k; p++) bp[(size_t)p * nr + j] = j < cols ? src[p] : 0.f;
        }
    }
}

void oct_sgemm_store_transposed(const oct_sgemm_arch *arch, const float *ct, int ldct, int m, int n, float *y,
                                int ldy, const oct_epilogue_args *e) {
    if (m <= 0 || n <= 0) return;
    if (e && oct_epilogue_is_identity(e)) e = NULL;
    /* The tiles read C's term along a row or one value per row (see oct_sgemm_run). */
    const oct_epilogue_args *e_after = e && e->c && e->c_cs != 0 && e->c_cs != 1 ? e : NULL;
    if (e_after) e = NULL;
    const int mr = arch->mr, nr = arch->nr;
    /* mr rows of y at a time: the copy writes them, then the tiles re-read them from L1 with no
       k loop (kc = 0: the accumulators start at zero and load y) to apply the epilogue. */
    for (int j0 = 0; j0 < n; j0 += mr) {
        const int rows = min_int(n - j0, mr);
        /* whole 8 x 8 blocks through the arch's register transpose, the rest element by element */
        const int i_blocks = arch->transpose8x8 && rows == 8 ? m / 8 * 8 : 0;
        for (int i = 0; i < i_blocks; i += 8)
            arch->transpose8x8(ct + (size_t)i * ldct + j0, (size_t)ldct, y + (size_t)j0 * ldy + i, (size_t)ldy);
        for (int jj = 0; jj < rows; jj++) {
            const float *src = ct + j0 + jj;
            float *dst = y + (size_t)(j0 + jj) * ldy;
            for (int i = i_blocks; i < m; i++) dst[i] = src[(size_t)i * ldct];
        }
        if (!e) continue;
        for (int i0 = 0; i0 < m; i0 += nr) {
            oct_epilogue_args te = *e;
            if (te.row_bias) te.row_bias += j0;
            if (te.c) te.c += (int64_t)j0 * te.c_rs + (int64_t)i0 * te.c_cs;
            if (te.res) te.res += (int64_t)j0 * te.ldr + i0;
            arch->tile(rows, min_int(m - i0, nr), 0, ct, ct, 0, y + (size_t)j0 * ldy + i0, (size_t)ldy, 1, &te);
        }
    }
    if (e_after) oct_ref_epilogue(y, ldy, n, m, e_after);
}

const oct_sgemm_arch *oct_sgemm_arch_current(void) {
    /* Keyed on the selected sgemm rather than the ISA level, so that a level that borrows another's
       fp32 kernels (vnni, dotprod, the AVX-VNNI table) borrows its arch too. */
    const oct_sgemm_fn fn = oct_kernels()->sgemm;
#if defined(__x86_64__)
    if (fn == oct_avx512_sgemm) return &oct_avx512_sgemm_arch;
    if (fn == oct_avx2_sgemm) return &oct_avx2_sgemm_arch;
#elif defined(__aarch64__)
    if (fn == oct_neon_sgemm) return &oct_neon_sgemm_arch;
#endif
    (void)fn;
    return &oct_ref_sgemm_arch;
}
