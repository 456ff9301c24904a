/* Thread pinning (see affinity.h). libgomp keeps one pool of worker threads per thread that starts
   parallel regions and hands out the same pool members in the same order while the team size does
   not grow, so pinning the members once places every later region of the same width: each op's
   `omp parallel num_threads(t)` with t <= threads runs on the first t pinned CPUs. Without pinning,
   the OS may move a worker between cores mid-run and leave its L2 behind. */
#include "affinity.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

/* The team size this thread pinned last (0: never). */
static _Thread_local int pinned_width;

int oct_pin_team(int threads) {
    if (threads < 1 || threads == pinned_width) return 0;
    cpu_set_t allowed;
    if (pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0) return -1;
    int cpus[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
    if (n == 0) return -1;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(+ : failed)
    {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[omp_get_thread_num() % n], &one);
        failed += pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0;
    }
    pinned_width = threads;
    return failed ? -1 : 0;
}
