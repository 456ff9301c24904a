/* Large buffers (activation arenas, graph outputs) advised to use transparent huge pages. A
   277 MB U-Net arena in 4 KB pages costs ~70 000 page faults on the first run (each one a
   hypervisor exit on the virtual machines we run on), and on every run the page walks of TLB
   misses: a 50 MB output written after the rest of the network has evicted its page tables took
   6x longer than the same write alone. */
#ifndef OCT_BIGMEM_H
#define OCT_BIGMEM_H

#include <stddef.h>

/* bytes of memory aligned to 64 bytes at least (contents undefined), released with free();
   NULL when out of memory. */
void *oct_big_alloc(size_t bytes);

#endif
