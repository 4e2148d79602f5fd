// The sparsity schedule of iterative pruning (docs/DESIGN.md#iterative-pruning): the target sparsity s_t after t
// training steps, and the steps at which the mask is recomputed. Pure arithmetic, no
// state: a resumed run asks the same questions and gets the same answers.
#ifndef MP_PRUNE_SPARSITY_SCHEDULE_H
#define MP_PRUNE_SPARSITY_SCHEDULE_H

#include <stdbool.h>

#include "prune/options.h"   // defines: PruneOptions, PruneSchedule

typedef struct SparsitySchedule {
    PruneSchedule shape;        // cubic, linear or exponential
    double initial, final;    // s_0 and s_f
    double exp_k;             // k of the exponential shape
    long start, end;          // t0 and T (T > t0)
    long every;               // prune_every (>= 1)
} SparsitySchedule;

// The schedule of a run's pruning options.
void sparsity_schedule_from_options(SparsitySchedule *s, const PruneOptions *o);

// s_t with p = (t - t0) / (T - t0) clamped to [0, 1]:
//   cubic        s_f + (s_0 - s_f) (1 - p)^3
//   linear       s_f + (s_0 - s_f) (1 - p)
//   exponential  s_0 + (s_f - s_0) (1 - exp(-k p)) / (1 - exp(-k))   (s_f (1 - exp(-k p)) / (1 - exp(-k)) when s_0 = 0)
// so s_t = s_0 up to t0 and exactly s_f from T on.
double sparsity_at(const SparsitySchedule *s, long t);

// Whether the mask is recomputed after t training steps (before step t runs, 0-based):
// at t0, t0 + every, t0 + 2 every, ... while < T, and at T itself, so that the last update
// reaches s_f exactly; never after T. Also at t = 0 when s_0 > 0 and t0 > 0, since the
// sparsity before t0 is s_0.
bool sparsity_updates_at(const SparsitySchedule *s, long t);

// The first update step > t, or -1 when there is none.
long sparsity_next_update(const SparsitySchedule *s, long t);
// The last update step <= t, or -1 when there is none.
long sparsity_previous_update(const SparsitySchedule *s, long t);

// The number of weights of a group of total weights to be pruned at sparsity s:
// round(s * total), the exact count of the selection.
size_t sparsity_count(double s, size_t total);

#endif
