/* Huge-page-advised mappings for large buffers. Below HUGE_MIN the heap is better: a mapping per
   small buffer would waste most of a huge page and a system call. */
#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20, HUGE_MIN = 4 << 20 };

static size_t mapped_bytes(size_t bytes) {
    return (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}

void *oct_big_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 2 * (size_t)HUGE_PAGE) return NULL;
    if (bytes < HUGE_MIN) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    /* Map one huge page more and trim both ends, so that the block starts on a huge-page
       boundary: the kernel backs only aligned 2 MB ranges with huge pages. */
    const size_t want = mapped_bytes(bytes), span = want + HUGE_PAGE;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (start > raw) munmap(raw, (size_t)(start - raw));
    const size_t tail = (size_t)(raw + span - (start + want));
    if (tail) munmap(start + want, tail);
#ifdef MADV_HUGEPAGE
    madvise(start, want, MADV_HUGEPAGE); /* advice only: without THP the block keeps 4 KB pages */
#endif
    return start;
}

void oct_big_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < HUGE_MIN)
        free(p);
    else
        munmap(p, mapped_bytes(bytes));
}
