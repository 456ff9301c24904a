/* Contiguous per-thread ranges with stealing (see steal_range.h). */
#include "steal_range.h"

static uint64_t pack(uint64_t begin, uint64_t end) {
    return begin | end << 32;
}

int nn_steal_init(nn_steal *s, int64_t items, int threads) {
    const int parts = threads < 1 ? 1 : threads > NN_STEAL_MAX_PARTS ? NN_STEAL_MAX_PARTS : threads;
    const int ok = items >= 0 && items <= NN_STEAL_MAX_ITEMS;
    s->parts = parts;
    for (int i = 0; i < parts; i++) {
        const uint64_t b = ok ? (uint64_t)(items * i / parts) : 0, e = ok ? (uint64_t)(items * (i + 1) / parts) : 0;
        atomic_init(&s->part[i].range, pack(b, e));
    }
    return ok ? 0 : -1;
}

/* Takes the first (own range) or the last (a stolen one) item of part i, or returns -1 when the
   part is empty. Relaxed ordering: the claim only has to be exclusive; the items' data is
   published by the parallel region's barriers. */
static int64_t take(nn_steal *s, int i, int from_front) {
    uint64_t r = atomic_load_explicit(&s->part[i].range, memory_order_relaxed);
    for (;;) {
        const uint64_t b = r & UINT32_MAX, e = r >> 32;
        if (b >= e) return -1;
        const uint64_t next = from_front ? pack(b + 1, e) : pack(b, e - 1);
        if (atomic_compare_exchange_weak_explicit(&s->part[i].range, &r, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (int64_t)(from_front ? b : e - 1);
    }
}

int64_t nn_steal_next(nn_steal *s, int me) {
    const int own = (me < 0 ? 0 : me) % s->parts;
    int64_t it = take(s, own, 1);
    /* Ranges only shrink, so one pass that finds every other part empty ends the loop. */
    for (int k = 1; it < 0 && k < s->parts; k++) it = take(s, (own + k) % s->parts, 0);
    return it;
}
