// What a finished run reports: the TrainSummary, written as the last line of metrics.jsonl
// ("summary": true) and read back from there by sweeps. One table of its fields
// (train_summary.c) gives the line's keys for both directions.
#ifndef MP_RUN_TRAIN_SUMMARY_H
#define MP_RUN_TRAIN_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/error.h"

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
    // Forecasting (series): val_loss and dense_val_loss are the MSE; the line then holds
    // these instead of perplexity and accuracy (docs/DESIGN.md#forecasting).
    bool series;
    double val_mse, val_mae, val_repeat_last_mse, val_repeat_last_mae;
    double dense_val_mse, dense_val_mae;
    double sparsity;          // pruned / prunable weights at the end (0 without pruning)
    double tokens_per_s;      // training throughput: tokens / train_seconds
    double wall_s;            // this process, start to end
    double train_seconds;     // forward, backward and optimizer steps, over the whole run
    double prune_seconds;     // pruning work: the breakdown below, summed
    struct {
        double accumulate, score, select, stability, apply;  // iterative pruning (apply: also after every step)
        double oneshot;                                       // a one-shot method's pass
    } prune_breakdown;        // (report.json only, not in the summary line)
    long parameters;          // parameter floats of the model at the end
} TrainSummary;

// The summary line: {"step", "val_loss", "val_perplexity", "val_accuracy", "val_tokens",
// "summary": true, "dense_val_loss", ..., "parameters"}; a forecaster's has the keys of its
// evaluation line ("val_mse", "val_mae", ...) and "dense_val_mse", "dense_val_mae".
cJSON *train_summary_json(const TrainSummary *s);

// The summary of a finished run: the last summary line of run_dir/metrics.jsonl. 1 and *s
// filled when there is one; 0 when the run has not finished (no file, no summary line);
// -1 when the summary line lacks a key, naming the file, the line and the key.
int train_summary_read(const char *run_dir, TrainSummary *s, Error *err);

// The summary line's key of the member at offsetof(TrainSummary, member), e.g. "wall_s";
// NULL for a member not in the line.
const char *train_summary_key(size_t offset);

#endif
