// Wall-clock time for progress lines, profiles and benchmarks.
#ifndef MP_CORE_TIMER_H
#define MP_CORE_TIMER_H

#include <time.h>

// Seconds on the monotonic clock (not affected by changes of the system time).
static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
