// Scores and exact-count selection of iterative pruning (docs/DESIGN.md#iterative-pruning). A score says how much a
// weight matters, S = |w| * |g|^alpha; pruning a group of weights to a count takes the
// lowest scores, ties broken by position, with a radix selection (two histogram passes over
// the score bits, no sort), so that the count is exact and the result deterministic.
#ifndef MP_PRUNE_SELECT_H
#define MP_PRUNE_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "prune/options.h"   // defines: PruneGradStat, PruneScoreNorm

// What the gradient accumulator adds for one step's gradient g under a statistic
// (docs/DESIGN.md#gradient-statistics): g (mean), |g| (abs_mean) or g^2 (rms).
static inline float prune_grad_term(PruneGradStat stat, float g) {
    return stat == PRUNE_GRAD_MEAN ? g : stat == PRUNE_GRAD_ABS_MEAN ? (g < 0 ? -g : g) : g * g;
}

// scores[j] = |w[j]| * G[j]^alpha with G from the accumulated sum of grad_count steps'
// terms (prune_grad_term): |sum / count| (mean), sum / count (abs_mean) or
// sqrt(sum / count) (rms). alpha = 0 is magnitude, |w|, and then grad_sum is not read (may
// be NULL): 0^0 counts as 1. A NaN score (a non-finite gradient) becomes +inf, so that a
// weight whose importance is unknown is kept rather than pruned. n weights.
void prune_scores(const float *w, const float *grad_sum, int grad_count, double alpha, PruneGradStat stat, size_t n,
                  float *scores);

// The per-tensor normalisation (docs/DESIGN.md#gradient-statistics): scores[j] /= c, c the
// mean or the median (the lower middle one for an even count) of the finite scores of the
// kept weights (keep[j] != 0); nothing changes when c is 0, not finite or there is no
// such score, or for PRUNE_NORM_NONE. work holds n floats (the median's copy). Returns c
// (1 when nothing was divided).
double prune_normalize_scores(float *scores, const uint8_t *keep, size_t n, PruneScoreNorm norm, float *work);

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
