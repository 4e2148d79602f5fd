// Gradient-aware iterative pruning during fine-tuning (docs/DESIGN.md#iterative-pruning). The trainer
// drives it: after each backward pass it hands over the raw gradients of the steps just
// before a mask update (no extra forward passes), and after the optimizer steps that the
// schedule names it recomputes the masks:
//
//   scores     S = |w| * G^alpha, G the grad_stat statistic of the accumulated gradients,
//              then each tensor's scores normalised by score_norm (docs/DESIGN.md#gradient-statistics)
//   selection  per group (global: all masked tensors, or A_log apart with a_log_sparsity; layerwise: each tensor; component:
//              each component), round(s_t * group size) weights pruned, already pruned
//              ones first, then the lowest scores (ties by position): masks only grow
//   stability  stability_correct on fixed calibration batches (docs/DESIGN.md#stability-check), keeping the counts
//   apply      pruned weights and their AdamW moments set to exactly zero
//
// Everything it carries from step to step (the gradient accumulator, the totals) goes into
// checkpoints, so that a resumed run continues to the bit.
#ifndef MP_PRUNE_ITERATIVE_H
#define MP_PRUNE_ITERATIVE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "data/data.h"
#include "io/checkpoint.h"
#include "mamba/model.h"
#include "optim/adamw.h"
#include "prune/masks.h"
#include "prune/options.h"
#include "prune/sparsity_schedule.h"
#include "prune/stability.h"

// Seconds spent in each part of the pruning work.
typedef struct PruneTimes {
    double accumulate;        // adding gradients into the accumulator (and step-0 gradient passes)
    double score;             // S = |w| |g|^alpha
    double select;            // counting and selecting
    double stability;         // stability_correct
    double apply;             // copying the new masks and zeroing weights and moments
} PruneTimes;

double prune_times_total(const PruneTimes *times);

// Arrays of the pruner's checkpoint state (see iterative_checkpoint_*).
enum { ITERATIVE_N_ARRAYS = 3 };

typedef struct IterativePruner {
    PruneMasks *masks;        // the masks it updates (not owned)
    SparsitySchedule schedule;
    double alpha;
    PruneGradStat grad_stat;
    PruneScoreNorm score_norm;
    PruneStrategy strategy;
    int grad_accum_batches;

    // Selection groups: group[i] of masked tensor i, in [0, n_groups).
    int *group;
    int n_groups;
    double *group_final;      // s_f of each group (component strategy: its component's)
    size_t *group_total;      // weights of each group
    size_t *group_pruned;     // pruned weights of each group under the current masks

    // The gradient accumulator: the sum over grad_count steps of the raw gradients' terms
    // (prune_grad_term: g, |g| or g^2 by grad_stat), the masked tensors one after the other
    // (masks->total floats; NULL when alpha = 0).
    float *grad_sum;
    int grad_count;

    // Work buffers of an update, masks->total each, with per-tensor views.
    float *scores;
    float **score_views;
    uint8_t *new_keep;
    uint8_t **keep_views;
    float *norm_work;         // the median's copy of the largest tensor (score_norm median)
    double *norm_divisors;    // the last update's divisor of each tensor's scores (1 = none)

    // The stability check: on when enabled, with its fixed calibration tokens (owned).
    bool stability_enabled;
    StabilityOptions stability;
    int32_t *calibration_tokens;
    float *calibration_values;  // a series (data_is_series): its windows instead of tokens (owned)

    // Totals over the run.
    long updates;             // mask updates that pruned something
    int n_layer;
    float *layer_violations;  // per layer, counts (exact in float up to 2^24)
    float *layer_corrected;
    double corrected_a_log, corrected_dt_proj, rebalanced, remaining;
    PruneTimes times;

    CheckpointArray arrays[ITERATIVE_N_ARRAYS];  // views for checkpoints
} IterativePruner;

// A pruner for a run's pruning and stability options over masks (created for model, whose
// prunable tensors they cover). The calibration batches of the stability check are the
// training batches (options->batch_size x options->seqlen) at indices 1e9 + k, never
// reached by training, the same for the whole run. masks must outlive the pruner.
int iterative_init(IterativePruner *p, const PruneOptions *options, const PruneStabilityOptions *stability,
                   const Dataset *data, const MambaModel *model, PruneMasks *masks, Error *err);
void iterative_free(IterativePruner *p);

// Whether the gradient of training step `step` (0-based) belongs to the accumulation of the
// next update: the last grad_accum_batches steps before it, never reaching back past the
// previous update. Always false for alpha = 0.
bool iterative_wants_gradient(const IterativePruner *p, long step);
// Adds the masked tensors' current gradients (raw: before clipping) to the accumulator.
void iterative_accumulate(IterativePruner *p);
// Whether an update after t steps prunes anything (some group's target exceeds its count).
bool iterative_would_prune(const IterativePruner *p, long t);
// Whether an update after t steps must first measure gradients: it prunes, alpha > 0 and
// nothing was accumulated (only at t = 0, before any training step).
bool iterative_needs_gradient(const IterativePruner *p, long t);

// The mask update after t training steps, when sparsity_updates_at(schedule, t): scores,
// selection, the stability check and its correction, then the masks applied to the model's
// weights and the optimizer's moments. The accumulator is emptied. *event (NULL when nothing
// was pruned) receives the update's metrics line: step, s_t of the schedule, the sparsity
// reached, counts, seconds and the stability report.
int iterative_update(IterativePruner *p, long t, MambaModel *model, AdamW *optimizer, Tape *tape, cJSON **event,
                     Error *err);

// Checkpoints: iterative_checkpoint_save adds the pruner's values and arrays to state (the
// arrays point into the pruner, valid until its next call); for loading, first
// iterative_checkpoint_prepare_load (state->arrays set), then checkpoint_load, then
// iterative_checkpoint_restore, which also recounts the groups from the loaded masks (a
// counter the checkpoint lacks is an error naming path and the dataset).
int iterative_checkpoint_save(IterativePruner *p, CheckpointState *state, Error *err);
void iterative_checkpoint_prepare_load(IterativePruner *p, CheckpointState *state);
int iterative_checkpoint_restore(IterativePruner *p, const CheckpointState *state, const char *path, Error *err);

// The run's stability totals: {"enabled", "updates", "violations", "corrected",
// "corrected_a_log", "corrected_dt_proj", "rebalanced", "remaining",
// "layers": [{"layer", "violations", "corrected", "corrected_fraction"}]}, the fraction
// relative to the layer's masked weights.
cJSON *iterative_stability_totals(const IterativePruner *p);

#endif
