// One training run from a resolved RunConfig: data, model, AdamW, the step loop with its
// progress line and JSON Lines metrics, periodic validation and a final summary.
#ifndef MP_CLI_TRAINER_H
#define MP_CLI_TRAINER_H

#include "cli/config.h"
#include "core/error.h"
#include "data/data.h"

// What a finished run reports (also written as the last line of metrics.jsonl).
typedef struct TrainSummary {
    long steps;
    double train_loss;        // mean over the last log interval
    double val_loss;          // mean NLL per validation target
    double val_perplexity;    // exp(val_loss)
    double val_accuracy;      // argmax accuracy on validation targets
    long val_tokens;          // validation targets counted
    double tokens_per_s;      // training throughput over the whole run
    double wall_s;
} TrainSummary;

// The data of a run: its data section, with the seed of its train section.
void run_data_options(const RunConfig *config, DataOptions *options);

// Trains in run_dir (created if needed): config.yaml, metrics.jsonl and the checkpoints
// ckpt-<step>.h5 (every checkpoint.every steps and at the end, the newest checkpoint.keep
// kept) are written there. resume is NULL, a checkpoint path, or "latest" (the newest
// checkpoint of run_dir): the run then continues exactly where that checkpoint stood.
int train_run(const RunConfig *config, const char *run_dir, const char *resume, TrainSummary *summary, Error *err);

#endif
