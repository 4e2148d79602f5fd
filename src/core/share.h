// A pass over many arrays laid end to end (a model's parameters, about ten a block, most
// too small to split alone), cut into one consecutive share per OpenMP thread: one
// parallel region for the whole pass, not one an array, which left threads idle on 16
// cores (README "Threads"). Call inside the parallel region.
#ifndef MP_CORE_SHARE_H
#define MP_CORE_SHARE_H

#include <omp.h>
#include <stdbool.h>
#include <stddef.h>

// Below this many elements in all, a pass runs on one thread.
enum { SHARE_MIN_PARALLEL = 65536 };

// This thread's share of `total` elements: [lo, hi), the shares of the threads nearly
// equal, their ends at multiples of 16 elements.
static inline void share_of_thread(size_t total, size_t *lo, size_t *hi) {
    const size_t t = (size_t)omp_get_thread_num(), n = (size_t)omp_get_num_threads();
    *lo = t == 0 ? 0 : total / n * t / 16 * 16;
    *hi = t + 1 == n ? total : total / n * (t + 1) / 16 * 16;
}

// Clips the share [lo, hi) to the part that falls in one array of `size` elements
// starting at `offset` of the concatenation, as [begin, end) of that array: false if none does.
static inline bool share_in_array(size_t lo, size_t hi, size_t offset, size_t size, size_t *begin, size_t *end) {
    *begin = lo > offset ? lo - offset : 0;
    *end = hi < offset + size ? hi - offset : size;
    return hi > offset && lo < offset + size && *begin < *end;
}

#endif
