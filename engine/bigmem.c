/* Huge-page-advised allocations. Below HUGE_MIN the plain heap is better: advice on a small
   buffer would back most of a huge page for nothing. */
#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20, HUGE_MIN = 4 << 20 };

void *oct_big_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 64) return NULL;
    if (bytes < HUGE_MIN) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    /* The kernel backs only aligned 2 MB ranges with huge pages: start on one, and advise the
       whole huge pages (advice only: without THP the block keeps 4 KB pages). */
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, bytes)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes & ~(size_t)(HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
    return p;
}
