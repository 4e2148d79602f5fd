// Scores and exact-count selection of iterative pruning (docs/DESIGN.md#iterative-pruning). A score says how much a
// weight matters, S = |w| * |g|^alpha; pruning a group of weights to a count takes the
// lowest scores, ties broken by position, with a radix selection (two histogram passes over
// the score bits, no sort), so that the count is exact and the result deterministic.
#ifndef MP_PRUNE_SELECT_H
#define MP_PRUNE_SELECT_H

#include <stddef.h>
#include <stdint.h>

// scores[j] = |w[j]| * |g[j]|^alpha with g[j] = grad_sum[j] / grad_count, the mean of the
// accumulated gradients. alpha = 0 is magnitude, |w|, and then grad_sum is not read (may
// be NULL): 0^0 counts as 1. A NaN score (a non-finite gradient) becomes +inf, so that a
// weight whose importance is unknown is kept rather than pruned. n weights.
void prune_scores(const float *w, const float *grad_sum, int grad_count, double alpha, size_t n, float *scores);

// A piece of a selection group: one tensor's keep mask (1 = kept) and its scores.
typedef struct PruneSlice {
    uint8_t *keep;
    const float *scores;      // >= 0, not NaN (prune_scores' output)
    size_t size;
} PruneSlice;

// Weights still kept in the slices.
size_t prune_count_kept(const PruneSlice *slices, int n_slices);

// Prunes (keep = 0) the `count` kept weights of lowest score over the slices taken as one
// sequence (slice 0 first); among equal scores the earlier position goes first. Already
// pruned weights are left as they are. Prunes every kept weight when count exceeds them.
// Returns the number pruned.
size_t prune_select_lowest(PruneSlice *slices, int n_slices, size_t count);

#endif
