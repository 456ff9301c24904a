/* Work items of a parallel loop handed out as contiguous per-thread ranges, with stealing.

   Thread i owns items [i*n/parts, (i+1)*n/parts) and runs them in order, as `schedule(static)`
   would: consecutive layers split the same way keep each core's part of a tensor in its own cache
   (on this machine's 2 vCPUs, which may sit on different CCDs, a line another core wrote costs 2-5x
   one's own), and a thread's items stay neighbours (the im2col panel of a pixel tile is reused by
   its channel blocks). A thread that finishes its range takes items from the back of the others',
   as `dynamic` would, so a worker that the OS deschedules (a busy machine) does not leave the rest
   of the team waiting for its whole share at the closing barrier. A claim is one compare-and-swap
   on a line of the claimer's own while it works on its own range: no counter bounces between cores.

   Usage: nn_steal_init() before the parallel region (the struct is shared), then in the region
   `for (int64_t it; (it = nn_steal_next(&s, omp_get_thread_num())) >= 0;) ...`. Any team size is
   correct: threads beyond the parts share a range, ranges of absent threads are stolen. */
#ifndef OCT_STEAL_RANGE_H
#define OCT_STEAL_RANGE_H

#include <stdatomic.h>
#include <stdint.h>

enum { NN_STEAL_MAX_PARTS = 16 };

typedef struct {
    /* [begin, end) of the items a part has left, packed as begin | end << 32, one per cache line */
    struct {
        _Alignas(64) _Atomic uint64_t range;
    } part[NN_STEAL_MAX_PARTS];
    int parts;
} nn_steal;

/* The largest item count nn_steal_init accepts. */
#define NN_STEAL_MAX_ITEMS ((int64_t)UINT32_MAX)

/* Splits items [0, items) into min(threads, NN_STEAL_MAX_PARTS) parts (at least 1). items must be
   in [0, NN_STEAL_MAX_ITEMS]; returns -1 (nothing to hand out) when it is not. */
int nn_steal_init(nn_steal *s, int64_t items, int threads);

/* The next item for thread `me` (omp_get_thread_num()): the front of its own range, else the back
   of another's; -1 when none is left. */
int64_t nn_steal_next(nn_steal *s, int me);

#endif
