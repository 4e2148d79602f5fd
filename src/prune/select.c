// Scores and selection (see select.h). The selection works on the bits of the scores: for
// floats >= 0 the IEEE-754 bit patterns, read as unsigned integers, sort like the values.
// A histogram of the upper 16 bits finds the bucket holding the count-th lowest score, a
// histogram of the lower 16 bits within that bucket finds the score itself (the threshold
// tau), and a last pass prunes every kept weight below tau and, in order of position, as
// many weights equal to tau as the count still needs. Three streaming passes, parallel
// over the weights, and the same result for any number of threads.
#include "prune/select.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

// Below this many weights a pass is not worth starting threads for.
#define PARALLEL_MIN ((size_t)1 << 15)

void prune_scores(const float *w, const float *grad_sum, int grad_count, double alpha, PruneGradStat stat, size_t n,
                  float *scores) {
    const float count = (float)(grad_count > 0 ? grad_count : 1);
    const float a = (float)alpha;
    // The common exponents get their exact expressions; powf for the rest.
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t j = 0; j < n; j++) {
        float magnitude = fabsf(w[j]);
        float s;
        if (alpha == 0.0) {
            s = magnitude;
        } else {
            float mean = grad_sum[j] / count;
            float g = stat == PRUNE_GRAD_MEAN ? fabsf(mean) : stat == PRUNE_GRAD_ABS_MEAN ? mean : sqrtf(mean);
            if (alpha == 1.0) s = magnitude * g;
            else if (alpha == 2.0) s = magnitude * (g * g);
            else if (alpha == 0.5) s = magnitude * sqrtf(g);
            else s = magnitude * powf(g, a);
        }
        scores[j] = isnan(s) ? INFINITY : s;
    }
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double prune_normalize_scores(float *scores, const uint8_t *keep, size_t n, PruneScoreNorm norm, float *work) {
    if (norm == PRUNE_NORM_NONE) return 1.0;
    double c = 0.0;
    size_t m = 0;
    if (norm == PRUNE_NORM_MEAN) {
        double sum = 0.0;
        for (size_t j = 0; j < n; j++)
            if (keep[j] && isfinite(scores[j])) {
                sum += scores[j];
                m++;
            }
        if (m > 0) c = sum / (double)m;
    } else {
        for (size_t j = 0; j < n; j++)
            if (keep[j] && isfinite(scores[j])) work[m++] = scores[j];
        if (m > 0) {
            qsort(work, m, sizeof(float), compare_floats);
            c = work[(m - 1) / 2];
        }
    }
    if (!(c > 0.0) || !isfinite(c)) return 1.0;
    const float divisor = (float)c;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t j = 0; j < n; j++) scores[j] /= divisor;
    return c;
}

static inline uint32_t score_bits(float score) {
    uint32_t bits;
    memcpy(&bits, &score, sizeof bits);
    return bits;
}

size_t prune_count_kept(const PruneSlice *slices, int n_slices) {
    size_t kept = 0;
    for (int i = 0; i < n_slices; i++) {
        const uint8_t *keep = slices[i].keep;
        size_t n = slices[i].size, slice_kept = 0;
#pragma omp parallel for reduction(+ : slice_kept) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t j = 0; j < n; j++) slice_kept += keep[j] != 0;
        kept += slice_kept;
    }
    return kept;
}

enum { BUCKETS = 1 << 16 };

// counts[b] = kept weights whose score bits have upper half b (high = true), or, among
// those with upper half `upper`, lower half b (high = false).
static void histogram(const PruneSlice *slices, int n_slices, bool high, uint32_t upper, uint32_t *counts) {
    memset(counts, 0, sizeof(uint32_t) * BUCKETS);
    for (int i = 0; i < n_slices; i++) {
        const uint8_t *keep = slices[i].keep;
        const float *scores = slices[i].scores;
        size_t n = slices[i].size;
        if (n < PARALLEL_MIN) {
            for (size_t j = 0; j < n; j++) {
                if (!keep[j]) continue;
                uint32_t bits = score_bits(scores[j]);
                if (high) counts[bits >> 16]++;
                else if (bits >> 16 == upper) counts[bits & 0xffffu]++;
            }
            continue;
        }
#pragma omp parallel
        {
            uint32_t *local = xcalloc(BUCKETS, sizeof(uint32_t));
#pragma omp for schedule(static) nowait
            for (size_t j = 0; j < n; j++) {
                if (!keep[j]) continue;
                uint32_t bits = score_bits(scores[j]);
                if (high) local[bits >> 16]++;
                else if (bits >> 16 == upper) local[bits & 0xffffu]++;
            }
#pragma omp critical
            for (int b = 0; b < BUCKETS; b++) counts[b] += local[b];
            free(local);
        }
    }
}

// The bucket where the running total of counts, starting at *below, reaches target
// (> *below); *below becomes the total of the buckets before it.
static uint32_t bucket_reaching(const uint32_t *counts, size_t target, size_t *below) {
    size_t total = *below;
    for (uint32_t b = 0; b < BUCKETS; b++) {
        if (total + counts[b] >= target) {
            *below = total;
            return b;
        }
        total += counts[b];
    }
    *below = total;  // not reached: the caller asked for more than there is
    return BUCKETS - 1;
}

size_t prune_select_lowest(PruneSlice *slices, int n_slices, size_t count) {
    if (count == 0) return 0;
    size_t kept = prune_count_kept(slices, n_slices);
    if (count >= kept) {
        for (int i = 0; i < n_slices; i++) memset(slices[i].keep, 0, slices[i].size);
        return kept;
    }
    uint32_t *counts = xmalloc(sizeof(uint32_t) * BUCKETS);
    size_t below = 0;
    histogram(slices, n_slices, true, 0, counts);
    uint32_t upper = bucket_reaching(counts, count, &below);
    histogram(slices, n_slices, false, upper, counts);
    uint32_t lower = bucket_reaching(counts, count, &below);
    free(counts);
    const uint32_t tau = upper << 16 | lower;
    // Every kept score < tau goes (there are `below` of them), then ties at tau in order.
    for (int i = 0; i < n_slices; i++) {
        uint8_t *keep = slices[i].keep;
        const float *scores = slices[i].scores;
        size_t n = slices[i].size;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
        for (size_t j = 0; j < n; j++)
            if (keep[j] && score_bits(scores[j]) < tau) keep[j] = 0;
    }
    size_t ties = count - below;
    for (int i = 0; i < n_slices && ties > 0; i++) {
        uint8_t *keep = slices[i].keep;
        const float *scores = slices[i].scores;
        for (size_t j = 0; j < slices[i].size && ties > 0; j++) {
            if (keep[j] && score_bits(scores[j]) == tau) {
                keep[j] = 0;
                ties--;
            }
        }
    }
    return count;
}
