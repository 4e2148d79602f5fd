// Sweeps (docs/DESIGN.md#configuration): one training run per combination of a config's sweep values, each in
// its own folder, ending with a summary table and a plot.
#ifndef MP_RUN_SWEEP_H
#define MP_RUN_SWEEP_H

#include "config/config.h"
#include "core/error.h"

// Runs every combination of base's sweep in sweep_dir/<label>/ (label such as
// "prune.alpha=0.5", one folder per run with its config, metrics and checkpoints).
// A run whose metrics end with a summary is finished and skipped; any other run goes on
// from its newest checkpoint, so re-running a killed sweep picks up where it stopped.
// Then writes sweep_dir/summary.md, summary.csv and summary.svg: per run the swept values,
// dense and pruned validation loss / perplexity / accuracy, the sparsity reached and the
// time; the plot shows the first swept key against the quality metric (perplexity on
// text, accuracy on the synthetic tasks). Returns -1 if a run failed (the other runs are
// still made and tabulated).
int sweep_run(const RunConfig *base, const char *sweep_dir, Error *err);

#endif
