// Scores and exact-count selection (prune/select.h): S = |w| |g|^alpha for alpha 0, 0.5, 1,
// 2 (and a generic one) against a direct computation in double, alpha = 0 independent of g;
// the gradient statistics mean, abs_mean and rms from the raw per-step gradients, and the
// per-tensor normalisation by the mean or median of the kept weights' finite scores, each
// against a direct computation;
// the selection against a reference that sorts (score, position) pairs: the same mask, bit
// for bit, with random scores, heavy ties, already pruned weights, several slices, and a
// large group that takes the parallel path; masks only grow.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "prune/select.h"

#include "check.h"

static void check_scores(double alpha, const char *label) {
    enum { N = 1000, COUNT = 3 };
    Rng rng;
    rng_seed(&rng, 11);
    float w[N], sum[N], scores[N];
    for (int j = 0; j < N; j++) {
        w[j] = rng_normal(&rng) * 0.1f;
        sum[j] = rng_normal(&rng) * 0.01f * COUNT;
    }
    w[0] = 0.0f;   // a pruned weight
    sum[1] = 0.0f; // a weight without gradient: 0^alpha (1 when alpha = 0)
    w[2] = -0.5f;
    sum[2] = -0.03f;
    prune_scores(w, sum, COUNT, alpha, PRUNE_GRAD_MEAN, N, scores);
    double worst = 0.0;
    for (int j = 0; j < N; j++) {
        double g = (double)sum[j] / COUNT;
        double direct = fabs((double)w[j]) * (alpha == 0.0 ? 1.0 : pow(fabs(g), alpha));
        double relative = fabs(scores[j] - direct) / (direct > 1e-30 ? direct : 1.0);
        if (relative > worst) worst = relative;
    }
    check(worst < 2e-6, "scores, alpha %s: |w| |mean g|^alpha to %.1e relative", label, worst);
    check(scores[0] == 0.0f, "alpha %s: a zero weight scores 0", label);
    check(alpha == 0.0 ? scores[1] == fabsf(w[1]) : scores[1] == 0.0f, "alpha %s: no gradient scores %g", label,
          scores[1]);
}

// The statistics from COUNT steps of raw gradients, accumulated by prune_grad_term,
// against |mean g|, mean |g| and sqrt(mean g^2) computed in double from the steps.
static void check_grad_stat(PruneGradStat stat, double alpha) {
    enum { N = 40000, COUNT = 4 };  // past PARALLEL_MIN: the parallel path
    Rng rng;
    rng_seed(&rng, 21);
    float *w = malloc(sizeof(float) * N), *sum = calloc(N, sizeof(float)), *scores = malloc(sizeof(float) * N);
    float(*steps)[COUNT] = malloc(sizeof(float[COUNT]) * N);
    for (int j = 0; j < N; j++) {
        w[j] = rng_normal(&rng) * 0.1f;
        for (int k = 0; k < COUNT; k++) steps[j][k] = rng_normal(&rng) * 0.01f + (j % 3 == 0 ? 0.005f : 0.0f);
    }
    for (int k = 0; k < COUNT; k++)
        for (int j = 0; j < N; j++) sum[j] += prune_grad_term(stat, steps[j][k]);
    prune_scores(w, sum, COUNT, alpha, stat, N, scores);
    double worst = 0.0;
    for (int j = 0; j < N; j++) {
        double mean = 0, abs_mean = 0, square = 0;
        for (int k = 0; k < COUNT; k++) {
            mean += steps[j][k] / (double)COUNT;
            abs_mean += fabs(steps[j][k]) / COUNT;
            square += (double)steps[j][k] * steps[j][k] / COUNT;
        }
        double g = stat == PRUNE_GRAD_MEAN ? fabs(mean) : stat == PRUNE_GRAD_ABS_MEAN ? abs_mean : sqrt(square);
        double direct = fabs((double)w[j]) * pow(g, alpha);
        double relative = fabs(scores[j] - direct) / (direct > 1e-30 ? direct : 1.0);
        // |mean g| loses digits when the steps nearly cancel: compare it on an absolute scale too.
        double absolute = fabs(scores[j] - direct) / (fabs((double)w[j]) * pow(abs_mean, alpha) + 1e-30);
        double error = relative < absolute ? relative : absolute;
        if (error > worst) worst = error;
    }
    check(worst < 1e-5, "grad_stat %s, alpha %g: the score from the per-step gradients to %.1e",
          prune_grad_stat_names[stat], alpha, worst);
    free(w);
    free(sum);
    free(scores);
    free(steps);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Normalisation against a direct computation: the mean, or the sorted middle, of the kept
// weights' finite scores; pruned weights and +inf scores do not count.
static void check_normalize(PruneScoreNorm norm, size_t n) {
    Rng rng;
    rng_seed(&rng, 31 + (uint64_t)n);
    float *scores = malloc(sizeof(float) * n), *before = malloc(sizeof(float) * n), *work = malloc(sizeof(float) * n);
    uint8_t *keep = malloc(n);
    for (size_t j = 0; j < n; j++) {
        keep[j] = rng_below(&rng, 4) != 0;
        scores[j] = keep[j] ? fabsf(rng_normal(&rng)) * (j < n / 2 ? 1e-4f : 1.0f) : 0.0f;
        if (j % 97 == 5) scores[j] = INFINITY;
        before[j] = scores[j];
    }
    double *finite = malloc(sizeof(double) * n);
    size_t m = 0;
    double sum = 0;
    for (size_t j = 0; j < n; j++)
        if (keep[j] && isfinite(before[j])) {
            finite[m++] = before[j];
            sum += before[j];
        }
    double expected;
    if (norm == PRUNE_NORM_MEAN) {
        expected = sum / (double)m;
    } else {
        qsort(finite, m, sizeof(double), compare_doubles);
        expected = finite[(m - 1) / 2];  // the lower middle
    }
    double c = prune_normalize_scores(scores, keep, n, norm, work);
    check(fabs(c - expected) <= 1e-6 * expected, "score_norm %s, %zu weights: divisor %.9g, direct %.9g",
          prune_score_norm_names[norm], n, c, expected);
    size_t wrong = 0;
    for (size_t j = 0; j < n; j++) {
        float direct = before[j] / (float)expected;
        wrong += !(scores[j] == direct || (isinf(direct) && isinf(scores[j])));
    }
    check(wrong == 0, "score_norm %s, %zu weights: %zu scores differ from score / divisor", prune_score_norm_names[norm],
          n, wrong);
    free(scores);
    free(before);
    free(work);
    free(keep);
    free(finite);
}

// The reference selection: sort the kept (score, position) pairs, prune the first count.
typedef struct Ranked {
    float score;
    size_t position;
} Ranked;

static int by_score_then_position(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return (x->position > y->position) - (x->position < y->position);
}

// keep (n bytes, one sequence) after pruning count more of the kept, lowest first.
static void reference_select(uint8_t *keep, const float *scores, size_t n, size_t count) {
    Ranked *ranked = malloc(sizeof(Ranked) * (n ? n : 1));
    size_t kept = 0;
    for (size_t j = 0; j < n; j++)
        if (keep[j]) ranked[kept++] = (Ranked){scores[j], j};
    qsort(ranked, kept, sizeof(Ranked), by_score_then_position);
    for (size_t i = 0; i < count && i < kept; i++) keep[ranked[i].position] = 0;
    free(ranked);
}

// Selects count over slices of the given sizes cut from one sequence of n weights, and
// compares with the reference on the whole sequence.
static void check_selection(const char *label, const float *scores, const uint8_t *keep0, size_t n,
                            const size_t *slice_sizes, int n_slices, size_t count) {
    uint8_t *keep = malloc(n), *expected = malloc(n);
    memcpy(keep, keep0, n);
    memcpy(expected, keep0, n);
    PruneSlice slices[8];
    size_t offset = 0;
    for (int i = 0; i < n_slices; i++) {
        slices[i] = (PruneSlice){keep + offset, scores + offset, slice_sizes[i]};
        offset += slice_sizes[i];
    }
    size_t kept_before = prune_count_kept(slices, n_slices);
    size_t pruned = prune_select_lowest(slices, n_slices, count);
    reference_select(expected, scores, n, count);
    size_t kept_after = prune_count_kept(slices, n_slices);
    bool only_grow = true;
    for (size_t j = 0; j < n; j++) only_grow = only_grow && !(keep[j] && !keep0[j]);
    size_t want = count < kept_before ? count : kept_before;
    check(pruned == want && kept_before - kept_after == want,
          "%s: exactly %zu more pruned (returned %zu, kept %zu -> %zu)", label, want, pruned, kept_before, kept_after);
    check(memcmp(keep, expected, n) == 0, "%s: the same mask as sorting (score, position)", label);
    check(only_grow, "%s: no pruned weight comes back", label);
    free(keep);
    free(expected);
}

int main(void) {
    check_scores(0.0, "0");
    check_scores(0.5, "0.5");
    check_scores(1.0, "1");
    check_scores(2.0, "2");
    check_scores(0.75, "0.75");

    // alpha = 0 does not read the gradient at all.
    float w[3] = {1.0f, -2.0f, 0.0f}, s[3];
    prune_scores(w, NULL, 0, 0.0, PRUNE_GRAD_RMS, 3, s);
    check(s[0] == 1.0f && s[1] == 2.0f && s[2] == 0.0f, "alpha 0 without gradient: |w| (%g %g %g)", s[0], s[1], s[2]);
    float nan_sum[1] = {NAN}, one[1] = {1.0f};
    prune_scores(one, nan_sum, 1, 1.0, PRUNE_GRAD_MEAN, 1, s);
    check(isinf(s[0]) && s[0] > 0, "a NaN gradient scores +inf (kept): %g", s[0]);
    for (int stat = 0; stat < PRUNE_GRAD_STAT_COUNT; stat++) {
        check_grad_stat((PruneGradStat)stat, 1.0);
        check_grad_stat((PruneGradStat)stat, 2.0);
        check_grad_stat((PruneGradStat)stat, 0.75);
    }
    // The three statistics of the gradients {+1, -1}: |mean| 0, mean |g| 1, rms 1; of {3, -1, 0, 2}:
    // 1, 1.5, sqrt(3.5).
    const float two[2] = {1.0f, -1.0f}, four[4] = {3.0f, -1.0f, 0.0f, 2.0f};
    const double expected_two[3] = {0.0, 1.0, 1.0}, expected_four[3] = {1.0, 1.5, sqrt(3.5)};
    for (int stat = 0; stat < PRUNE_GRAD_STAT_COUNT; stat++) {
        float sum2 = 0, sum4 = 0, s2, s4;
        for (int k = 0; k < 2; k++) sum2 += prune_grad_term((PruneGradStat)stat, two[k]);
        for (int k = 0; k < 4; k++) sum4 += prune_grad_term((PruneGradStat)stat, four[k]);
        prune_scores(one, &sum2, 2, 1.0, (PruneGradStat)stat, 1, &s2);
        prune_scores(one, &sum4, 4, 1.0, (PruneGradStat)stat, 1, &s4);
        check(fabs(s2 - expected_two[stat]) < 1e-6 && fabs(s4 - expected_four[stat]) < 1e-6,
              "grad_stat %s of {1, -1} and {3, -1, 0, 2}: %g and %g, expected %g and %g", prune_grad_stat_names[stat],
              s2, s4, expected_two[stat], expected_four[stat]);
    }
    for (int norm = PRUNE_NORM_MEAN; norm < PRUNE_SCORE_NORM_COUNT; norm++) {
        check_normalize((PruneScoreNorm)norm, 1001);
        check_normalize((PruneScoreNorm)norm, 1000);
        check_normalize((PruneScoreNorm)norm, 50000);
    }
    {  // none changes nothing; all pruned or all zero changes nothing.
        float x[3] = {1.0f, 2.0f, 4.0f}, work[3];
        uint8_t all[3] = {1, 1, 1}, none[3] = {0, 0, 0};
        double c0 = prune_normalize_scores(x, all, 3, PRUNE_NORM_NONE, work);
        double c1 = prune_normalize_scores(x, none, 3, PRUNE_NORM_MEAN, work);
        check(c0 == 1.0 && c1 == 1.0 && x[0] == 1.0f && x[1] == 2.0f && x[2] == 4.0f,
              "score_norm none, or no kept weight: the scores stay (%g %g %g)", x[0], x[1], x[2]);
        double c2 = prune_normalize_scores(x, all, 3, PRUNE_NORM_MEDIAN, work);
        check(c2 == 2.0 && x[0] == 0.5f && x[1] == 1.0f && x[2] == 2.0f, "median of {1, 2, 4} is 2: %g (%g %g %g)", c2,
              x[0], x[1], x[2]);
    }

    Rng rng;
    rng_seed(&rng, 5);
    enum { N = 5000 };
    float *scores = malloc(sizeof(float) * N);
    uint8_t *keep = malloc(N);
    for (int j = 0; j < N; j++) scores[j] = fabsf(rng_normal(&rng));
    memset(keep, 1, N);
    size_t one_slice[1] = {N};
    check_selection("random scores, one slice, 1234 of 5000", scores, keep, N, one_slice, 1, 1234);
    check_selection("count 0", scores, keep, N, one_slice, 1, 0);
    check_selection("count = all", scores, keep, N, one_slice, 1, N);
    check_selection("count past all", scores, keep, N, one_slice, 1, N + 10);

    // Already pruned weights (some with high scores) are not counted again.
    for (int j = 0; j < N; j++) keep[j] = rng_below(&rng, 3) != 0;
    size_t sizes[4] = {1000, 7, 2993, 1000};
    check_selection("a third already pruned, 4 slices, 1500 more", scores, keep, N, sizes, 4, 1500);

    // Heavy ties: 5 distinct values, zeros among them, and scores differing in the low bits only.
    for (int j = 0; j < N; j++) scores[j] = (float)rng_below(&rng, 5) * 0.25f;
    check_selection("5 distinct scores, ties broken by position", scores, keep, N, sizes, 4, 2001);
    for (int j = 0; j < N; j++) scores[j] = nextafterf(1.0f, 2.0f * (float)rng_below(&rng, 2));
    memset(keep, 1, N);
    check_selection("scores one ulp apart", scores, keep, N, one_slice, 1, 2600);
    for (int j = 0; j < N; j++) scores[j] = j % 2 ? INFINITY : 0.0f;
    check_selection("zeros and +inf", scores, keep, N, one_slice, 1, 2600);

    // A group large enough for the parallel passes.
    enum { LARGE = 300000 };
    float *large_scores = malloc(sizeof(float) * LARGE);
    uint8_t *large_keep = malloc(LARGE);
    for (int j = 0; j < LARGE; j++) {
        large_scores[j] = j % 10 == 0 ? 0.5f : fabsf(rng_normal(&rng));  // ties at 0.5 across threads
        large_keep[j] = rng_below(&rng, 10) != 0;
    }
    size_t large_sizes[3] = {100000, 150000, 50000};
    check_selection("300000 weights in 3 slices, 40% more", large_scores, large_keep, LARGE, large_sizes, 3, 120000);
    free(large_scores);
    free(large_keep);
    free(scores);
    free(keep);
    return check_summary("prune scores and selection");
}
