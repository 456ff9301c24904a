/* The run's team of threads and oct_parallel (see team.h). */
#include "team.h"

#include <limits.h>
#include <linux/futex.h>
#include <omp.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "op.h"
#include "ops/nn/steal_range.h"

/* SPIN_PAUSES: about 50-100 us of pause instructions, longer than a node's part usually takes and
   than the gaps between a stretch's nodes; a wait that lasts longer sleeps on a futex, so a team
   larger than the free cores (a busy machine) still makes progress. */
enum { TEAM_MAX = 64, SPIN_PAUSES = 4096 };

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void futex_wait(_Atomic unsigned *addr, unsigned val) {
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic unsigned *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Waits until *addr != val: spins, then sleeps on the futex after announcing it in *sleepers
   (the writer wakes the futex when it sees a sleeper; both sides use sequentially consistent
   operations, so either the sleeper sees the new value or the writer sees the sleeper). */
static unsigned wait_change(_Atomic unsigned *addr, unsigned val, _Atomic unsigned *sleepers) {
    unsigned now;
    for (unsigned spins = 0; (now = atomic_load(addr)) == val;) {
        if (++spins < SPIN_PAUSES) {
            cpu_relax();
            continue;
        }
        atomic_fetch_add(sleepers, 1);
        if (atomic_load(addr) == val) futex_wait(addr, val);
        atomic_fetch_sub(sleepers, 1);
    }
    return now;
}

/* Thread 0 writes fn, arg and t, sets `pending` to the worker count and bumps gen; every worker
   that sees the new gen runs its part (when tid < t) and decrements pending; thread 0 returns
   when pending is 0, so the job fields are never rewritten while a worker may still read them. */
struct oct_team {
    _Alignas(64) _Atomic unsigned gen;
    _Atomic unsigned gen_sleepers;
    oct_par_fn fn; /* NULL with a new gen: leave the stretch */
    void *arg;
    int t;
    int size; /* threads in the team */
    _Alignas(64) _Atomic unsigned pending;
    _Atomic unsigned pending_sleepers;
};

/* Posts a job (fn NULL: leave) and, after running part 0 when there is one, waits for every worker. */
static void team_post(struct oct_team *tm, oct_par_fn fn, void *arg, int t) {
    tm->fn = fn;
    tm->arg = arg;
    tm->t = t;
    atomic_store(&tm->pending, (unsigned)(tm->size - 1));
    atomic_store(&tm->gen, atomic_load_explicit(&tm->gen, memory_order_relaxed) + 1);
    if (atomic_load(&tm->gen_sleepers)) futex_wake(&tm->gen);
    if (fn) fn(arg, 0, t);
    for (unsigned left; (left = atomic_load(&tm->pending)) != 0;) wait_change(&tm->pending, left, &tm->pending_sleepers);
}

static void team_work(struct oct_team *tm, int me) {
    for (unsigned seen = 0;;) {
        seen = wait_change(&tm->gen, seen, &tm->gen_sleepers);
        const oct_par_fn fn = tm->fn;
        if (fn && me < tm->t) fn(tm->arg, me, tm->t);
        if (atomic_fetch_sub(&tm->pending, 1) == 1 && atomic_load(&tm->pending_sleepers)) futex_wake(&tm->pending);
        if (!fn) return;
    }
}

void oct_parallel(const oct_run_ctx *ctx, int t, oct_par_fn fn, void *arg) {
    struct oct_team *tm = ctx ? ctx->team : NULL;
    if (tm && t > tm->size) t = tm->size;
    if (t <= 1) {
        fn(arg, 0, 1);
    } else if (tm) {
        team_post(tm, fn, arg, t);
    } else {
#pragma omp parallel num_threads(t)
        fn(arg, omp_get_thread_num(), omp_get_num_threads());
    }
}

int oct_team_execute(int k0, int k1, int threads, oct_team_node_fn run_node, void *state) {
    struct oct_team tm = {.size = 1};
    int rc = 0;
    if (threads > TEAM_MAX) threads = TEAM_MAX;
#pragma omp parallel num_threads(threads)
    {
        const int me = omp_get_thread_num();
        if (me == 0) tm.size = omp_get_num_threads(); /* maybe fewer than asked (nested, limits) */
#pragma omp barrier
        if (me == 0) {
            for (int k = k0; k < k1 && !rc; k++) rc = run_node(k, &tm, state);
            team_post(&tm, NULL, NULL, 0);
        } else {
            team_work(&tm, me);
        }
    }
    return rc;
}

typedef struct {
    oct_item_fn fn;
    void *arg;
    int64_t n;
    nn_steal *steal; /* NULL: static ranges */
} loop_job;

static void loop_part(void *arg, int tid, int nthreads) {
    const loop_job *j = arg;
    if (j->steal) {
        for (int64_t i; (i = nn_steal_next(j->steal, tid)) >= 0;) j->fn(j->arg, i, tid);
        return;
    }
    int64_t i0, i1;
    oct_static_range(j->n, tid, nthreads, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) j->fn(j->arg, i, tid);
}

void oct_parallel_for(const oct_run_ctx *ctx, int t, int64_t n, oct_item_fn fn, void *arg) {
    loop_job j = {fn, arg, n, NULL};
    oct_parallel(ctx, n > 1 ? t : 1, loop_part, &j);
}

void oct_parallel_steal(const oct_run_ctx *ctx, int t, int64_t n, oct_item_fn fn, void *arg) {
    nn_steal steal;
    if (t > 1 && n > 1 && nn_steal_init(&steal, n, t) == 0) {
        loop_job j = {fn, arg, n, &steal};
        oct_parallel(ctx, t, loop_part, &j);
        return;
    }
    oct_parallel_for(ctx, 1, n, fn, arg);
}
