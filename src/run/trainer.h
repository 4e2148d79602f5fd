// One training run from a resolved RunConfig: data, model, AdamW, the step loop with its
// progress line and JSON Lines metrics, periodic validation and a final summary.
#ifndef MP_RUN_TRAINER_H
#define MP_RUN_TRAINER_H

#include <stdbool.h>

#include "config/config.h"
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
    // The same evaluation of the model before any pruning (a pruning run: before the first
    // mask update that prunes, or before the one-shot pass); the final numbers otherwise.
    double dense_val_loss, dense_val_perplexity, dense_val_accuracy;
    // Forecasting: val_loss and dense_val_loss are the MSE, and these the MAE (perplexity and
    // accuracy 0).
    bool series;
    double val_mae, dense_val_mae;
    double sparsity;          // pruned / prunable weights at the end (0 without pruning)
    double tokens_per_s;      // training throughput: tokens / train_seconds
    double wall_s;            // this process, start to end
    double train_seconds;     // forward, backward and optimizer steps, over the whole run
    double prune_seconds;     // pruning work: the breakdown below, summed
    struct {
        double accumulate, score, select, stability, apply;  // iterative pruning (apply: also after every step)
        double oneshot;                                       // a one-shot method's pass
    } prune_breakdown;
    long parameters;          // parameter floats of the model at the end
} TrainSummary;

// The data of a run: its data section, with the seed of its train section.
void run_data_options(const RunConfig *config, DataOptions *options);

// Trains in run_dir (created if needed): config.yaml, metrics.jsonl and the checkpoints
// ckpt-<step>.h5 (every checkpoint.every steps and at the end, the newest checkpoint.keep
// kept) are written there. With prune.method gradient the masks are recomputed during
// training (prune/iterative.h); with a one-shot method the model is pruned once before
// training (checkpointed as step 0) and then fine-tuned with its masks held. A pruning run
// ends with report.json and report.md in run_dir. resume is NULL, a checkpoint path, or
// "latest" (the newest checkpoint of run_dir): the run then continues exactly where that
// checkpoint stood.
int train_run(const RunConfig *config, const char *run_dir, const char *resume, TrainSummary *summary, Error *err);

#endif
