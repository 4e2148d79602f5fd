// The run state's save and load (see run_state.h).
#include "run/run_state.h"

#include <string.h>

// The values of every run, then those of a pruning run; the names are the datasets'.
static const Field run_fields[] = {
    FIELD_OF(RunState, interval_loss, "interval_loss"),
    FIELD_OF(RunState, interval_steps, "interval_steps"),
    FIELD_OF(RunState, last_loss, "last_loss"),
    FIELD_OF(RunState, train_seconds, "train_seconds"),
    FIELD_OF(RunState, lr, "lr"),
};
static const Field prune_fields[] = {
    FIELD_OF(RunState, dense_evaluated, "dense_evaluated"),
    FIELD_OF(RunState, dense.nll, "dense_val_loss"),
    FIELD_OF(RunState, dense.perplexity, "dense_val_perplexity"),
    FIELD_OF(RunState, dense.accuracy, "dense_val_accuracy"),
    FIELD_OF(RunState, dense.tokens, "dense_val_tokens"),
    FIELD_OF(RunState, mask_seconds, "mask_seconds"),
    FIELD_OF(RunState, oneshot_seconds, "oneshot_seconds"),
};
enum {
    N_RUN_FIELDS = sizeof run_fields / sizeof run_fields[0],
    N_PRUNE_FIELDS = sizeof prune_fields / sizeof prune_fields[0],
};

int run_state_save(const RunState *state, int train_seed, bool pruning, CheckpointState *out, Error *err) {
    out->step = state->step;
    out->data_cursor = state->step;
    rng_seed(&out->rng, (uint64_t)train_seed);
    if (checkpoint_fields_add(out, run_fields, N_RUN_FIELDS, state, err) != 0) return -1;
    if (pruning && checkpoint_fields_add(out, prune_fields, N_PRUNE_FIELDS, state, err) != 0) return -1;
    return 0;
}

int run_state_load(RunState *state, const CheckpointState *in, int train_seed, bool pruning, const char *path,
                   Error *err) {
    // hardening: the run's counters must agree (one batch per step).
    if (in->data_cursor != in->step)
        return error_set(err, "%s: /state/data_cursor is %ld but /state/step is %ld (they advance together)", path,
                         in->data_cursor, in->step);
    // Batches are a pure function of the seed and the step, so the saved generator is the
    // seed's own state: anything else is a checkpoint of another run, or damaged.
    Rng seeded;
    rng_seed(&seeded, (uint64_t)train_seed);
    if (memcmp(seeded.s, in->rng.s, sizeof seeded.s) != 0)
        return error_set(err, "%s: /state/rng is not the state of train.seed = %d: a checkpoint of another run, or "
                              "damaged", path, train_seed);
    state->step = in->step;
    if (checkpoint_fields_read(in, run_fields, N_RUN_FIELDS, state, path, err) != 0) return -1;
    if (pruning && checkpoint_fields_read(in, prune_fields, N_PRUNE_FIELDS, state, path, err) != 0) return -1;
    return 0;
}
