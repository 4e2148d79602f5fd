// The run state: where a training run stands between two steps, beyond the tensors, as one
// typed struct with one save/load pair over the checkpoint's /state group
// (docs/DESIGN.md#files). Every field is written and read through one table under the
// name of its /state/schedule dataset; loading a checkpoint that lacks one is an error
// naming the file and the dataset.
#ifndef MP_RUN_RUN_STATE_H
#define MP_RUN_RUN_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "io/checkpoint.h"   // defines: CheckpointState
#include "run/evaluate.h"    // defines: Evaluation

typedef struct RunState {
    long step;                // steps done: /state/step, and the batch cursor /state/data_cursor
    double interval_loss;     // the sum of the losses since the last metrics line
    int interval_steps;       // the steps since the last metrics line
    double last_loss;         // the mean loss of the last metrics line
    double train_seconds;     // forward, backward and optimizer steps so far
    double lr;                // the learning rate of step `step` (written for readers; the run recomputes it)
    // A pruning run's dense reference (that model is gone once pruned) and its pruning time.
    bool dense_evaluated;
    Evaluation dense;
    double mask_seconds;      // holding the masks after every optimizer step
    double oneshot_seconds;   // the one-shot pass
} RunState;

// Adds the state to *out: step, data cursor and the generator of train_seed (batches are a pure
// function of the seed and the step), the run's values, and with `pruning` the pruning values.
int run_state_save(const RunState *state, int train_seed, bool pruning, CheckpointState *out, Error *err);
// The state from a checkpoint's loaded /state (path for messages). The data cursor must be
// the step and the generator train_seed's; every value the save writes must be there.
int run_state_load(RunState *state, const CheckpointState *in, int train_seed, bool pruning, const char *path,
                   Error *err);

#endif
