// Wall-clock time for progress lines, profiles and benchmarks, and CPU time for benchmarks.
#ifndef MP_CORE_TIMER_H
#define MP_CORE_TIMER_H

#include <time.h>

// Seconds on the monotonic clock (not affected by changes of the system time).
static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Seconds of CPU time of the whole process (all its threads), for benchmarks on a shared
// machine: with one thread and OMP_WAIT_POLICY=passive it counts that thread's work,
// stalls on memory included, and not the time other work held the core.
static inline double process_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
