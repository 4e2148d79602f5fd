// The report at the end of a pruning run (docs/DESIGN.md#iterative-pruning): this module
// builds report.json from the run's results, writes it, renders it as Markdown (report.md)
// and prints its short version.
//
// The JSON object:
//   run       {"method", "strategy", "schedule", "alpha", "final_sparsity", "start_step",
//              "end_step", "prune_every", "grad_accum_batches", "steps", and for a one-shot
//              method "target": what it does, "to 50.0%", "to 2:4", "removing 1 block", ...}
//   quality   {"dense": {"val_loss", "val_perplexity", "val_accuracy"}, "pruned": {...},
//              "perplexity_ratio"}                       pruned / dense
//   sparsity  prune_sparsity_report(): per component and per layer
//   stability iterative_stability_totals(), or {"enabled": false}
//   time      {"train_seconds", "prune_seconds", "prune_fraction" (prune / train),
//              "accumulate", "score", "select", "stability", "apply", "oneshot"}
//   oneshot   the one-shot method's own report (one-shot runs only)
#ifndef MP_RUN_PRUNE_REPORT_H
#define MP_RUN_PRUNE_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/error.h"
#include "mamba/model.h"
#include "prune/iterative.h"
#include "prune/masks.h"
#include "run/evaluate.h"
#include "run/train_summary.h"

// What a one-shot method does, after its name: "to 50.0%", "to 2:4", "removing 1 block".
void prune_report_oneshot_target(const RunConfig *c, char *out, size_t size);

// The report of a pruning run of config c: dense and final evaluations, the summary's
// times, the sparsity of masks over model, the stability totals of pruner (NULL for a
// one-shot method: {"enabled": false}) and a one-shot method's own report (copied; NULL: {}).
cJSON *prune_report_build(const RunConfig *c, const Evaluation *dense, const Evaluation *final,
                          const TrainSummary *s, const MambaModel *model, const PruneMasks *masks,
                          const IterativePruner *pruner, const cJSON *oneshot);

// Writes run_dir/report.json and run_dir/report.md (each atomically).
int prune_report_write(const cJSON *report, const char *run_dir, Error *err);
void prune_report_markdown(const cJSON *report, FILE *out);
// A few lines: sparsity, dense vs pruned, stability corrections, time.
void prune_report_brief(const cJSON *report, FILE *out);

#endif
