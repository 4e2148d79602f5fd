// One training run from a resolved RunConfig: data, model, AdamW, the step loop with its
// progress line and JSON Lines metrics, pruning, periodic validation and checkpoints, and
// a final summary (docs/DESIGN.md#data-flow-of-one-run).
#ifndef MP_RUN_TRAINER_H
#define MP_RUN_TRAINER_H

#include "config/config.h"
#include "core/error.h"
#include "run/run_data.h"        // defines: run_data_options
#include "run/train_summary.h"   // defines: TrainSummary

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
