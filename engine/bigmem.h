/* Large buffers (activation arenas) from their own mappings, advised to use transparent huge
   pages: a 277 MB U-Net arena in 4 KB pages costs ~70 000 page faults on the first run (each one
   a hypervisor exit on the virtual machines we run on) and TLB misses on every run after. */
#ifndef OCT_BIGMEM_H
#define OCT_BIGMEM_H

#include <stddef.h>

/* bytes of memory aligned to 64 bytes at least (contents undefined); NULL when out of memory. */
void *oct_big_alloc(size_t bytes);
/* Frees a block from oct_big_alloc; bytes must be the size it was asked for. */
void oct_big_free(void *p, size_t bytes);

#endif
