/* Thread placement for octet_session_options.pin_threads. */
#ifndef OCT_AFFINITY_H
#define OCT_AFFINITY_H

/* Pins the OpenMP team of `threads` that the calling thread starts, member i to the i-th CPU (modulo
   their count) of the calling thread's allowed set, the caller itself being member 0. Pinning
   sticks to the OS threads, so it runs once per calling thread and team size; later calls are a
   thread-local compare. Returns 0, or -1 when the system refuses (the run goes on unpinned). */
int oct_pin_team(int threads);

#endif
