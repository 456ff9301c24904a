/* How ops split a node's work over threads: oct_parallel.

   On this machine's 2 vCPUs a libgomp `omp parallel` region costs about 3 us (the master starts
   its own part ~2 us after the call, the join takes ~1.5 us more), while one cache line passed
   between the cores costs about 0.25 us each way. EfficientNet-B0 int8 runs ~115 such regions
   per image, ~0.35 ms of a 3.3 ms run at 2 threads. So a run keeps one OpenMP team for each
   stretch of consecutive nodes whose ops split their work only through oct_parallel (op flag
   OCT_OP_TEAM, engine/op.h): thread 0 executes the nodes and posts each split on one shared line;
   the other threads spin on it (then sleep on a futex), claim their part and run it; thread 0 runs
   its own part, then any part no worker has claimed yet, and waits for the claimed ones
   (engine/team.c). Nodes outside such a stretch (and constant folding, the calibrator) get a plain
   OpenMP region per call. */
#ifndef OCT_TEAM_H
#define OCT_TEAM_H

#include <stdint.h>

struct oct_run_ctx;
struct oct_team;

/* One thread's part of a split: tid in [0, nthreads). */
typedef void (*oct_par_fn)(void *arg, int tid, int nthreads);

/* Runs fn(arg, i, t') for every i < t' on t' threads, t' = min(t, the threads available: the
   team's size inside a stretch); returns when all parts have. t <= 1 runs fn(arg, 0, 1) here. */
void oct_parallel(const struct oct_run_ctx *ctx, int t, oct_par_fn fn, void *arg);

/* One item of a parallel loop, on thread tid (for a per-thread scratch slice). */
typedef void (*oct_item_fn)(void *arg, int64_t i, int tid);

/* `omp parallel for schedule(static)`: thread i runs items [n*i/t', n*(i+1)/t') in order. */
void oct_parallel_for(const struct oct_run_ctx *ctx, int t, int64_t n, oct_item_fn fn, void *arg);

/* `schedule(dynamic)` done better: contiguous ranges as above, and a thread that finishes its own
   takes items from the back of the others' (engine/ops/nn/steal_range.h). n < 2^32. */
void oct_parallel_steal(const struct oct_run_ctx *ctx, int t, int64_t n, oct_item_fn fn, void *arg);

/* [*i0, *i1): part tid of n items cut into nthreads contiguous, near-equal ranges (what
   `schedule(static)` gives), so consecutive nodes split the same way keep each core's part of a
   tensor in its cache. */
static inline void oct_static_range(int64_t n, int tid, int nthreads, int64_t *i0, int64_t *i1) {
    *i0 = n * tid / nthreads;
    *i1 = n * (tid + 1) / nthreads;
}

/* Executes nodes [k0, k1) of the plan on a team of `threads` OpenMP threads (see above); the
   caller has checked that their ops are OCT_OP_TEAM. run_node(k, ctx_team, state) runs node k
   (with the team to put in its run context) and returns 0 or -1; the first failure stops the
   stretch and is returned. */
typedef int (*oct_team_node_fn)(int k, struct oct_team *team, void *state);
int oct_team_execute(int k0, int k1, int threads, oct_team_node_fn run_node, void *state);

#endif
