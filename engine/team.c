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

/* A split is posted as: fn, arg, t written, then slot[i] = gen << 1 ("part i free") for the parts
   1..t-1, then gen bumped. A worker that sees the new gen counts itself in `busy` and claims its
   own part by turning its slot to gen << 1 | 1; thread 0 runs part 0, then claims and runs every
   part still free (a worker the OS has not scheduled yet does not hold the split up: its part runs
   here), then waits until busy is 0. A claim that wins therefore comes before thread 0's sweep and
   busy already counts it; nothing is rewritten before every claimed part has finished, so a worker
   that won reads the job it claimed. Claims of an older gen can never match a newer slot. */
struct oct_team {
    _Alignas(64) _Atomic unsigned gen;
    _Atomic unsigned gen_sleepers;
    _Atomic int quit; /* set with the last gen: leave the stretch */
    oct_par_fn fn;
    void *arg;
    int t;
    int size; /* threads in the team */
    _Alignas(64) _Atomic unsigned busy;
    _Atomic unsigned busy_sleepers;
    struct {
        _Alignas(64) _Atomic unsigned claim;
    } slot[TEAM_MAX];
};

static int claim(struct oct_team *tm, int i, unsigned g) {
    unsigned free_mark = g << 1;
    return atomic_compare_exchange_strong(&tm->slot[i].claim, &free_mark, g << 1 | 1);
}

static void publish(struct oct_team *tm, unsigned g) {
    atomic_store(&tm->gen, g);
    if (atomic_load(&tm->gen_sleepers)) futex_wake(&tm->gen);
}

/* Runs fn(arg, i, t) for i < t with the workers (see above). */
static void team_post(struct oct_team *tm, oct_par_fn fn, void *arg, int t) {
    const unsigned g = atomic_load_explicit(&tm->gen, memory_order_relaxed) + 1;
    tm->fn = fn;
    tm->arg = arg;
    tm->t = t;
    for (int i = 1; i < t; i++) atomic_store_explicit(&tm->slot[i].claim, g << 1, memory_order_relaxed);
    publish(tm, g);
    fn(arg, 0, t);
    for (int i = 1; i < t; i++)
        if (claim(tm, i, g)) fn(arg, i, t);
    for (unsigned left; (left = atomic_load(&tm->busy)) != 0;) wait_change(&tm->busy, left, &tm->busy_sleepers);
}

static void team_work(struct oct_team *tm, int me) {
    for (unsigned g = 0;;) {
        g = wait_change(&tm->gen, g, &tm->gen_sleepers);
        if (atomic_load(&tm->quit)) return;
        atomic_fetch_add(&tm->busy, 1);
        if (claim(tm, me, g)) tm->fn(tm->arg, me, tm->t);
        if (atomic_fetch_sub(&tm->busy, 1) == 1 && atomic_load(&tm->busy_sleepers)) futex_wake(&tm->busy);
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
            atomic_store(&tm.quit, 1);
            publish(&tm, atomic_load_explicit(&tm.gen, memory_order_relaxed) + 1);
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
