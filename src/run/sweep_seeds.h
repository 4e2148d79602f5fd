// Sweeps over seeds (docs/DESIGN.md#sweeps-over-seeds): runs that differ only in seed-like
// keys are repetitions of one setting. Their table gives, per setting, the number of
// finished runs and each quality column as mean ± sd (sample standard deviation, n - 1).
#ifndef MP_RUN_SWEEP_SEEDS_H
#define MP_RUN_SWEEP_SEEDS_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "config/config.h"

// Whether a swept key repeats a run rather than changing its setting: train.seed (the
// table of such keys is in sweep_seeds.c; a second seed-like key is one more entry).
bool sweep_is_seed_key(const char *key);

// group[r] = the setting of run r (0-based, in order of first appearance): runs with equal
// values for every swept key that is not seed-like share it. values holds n_runs rows of
// base->n_sweep values. Returns the number of settings.
int sweep_seed_groups(const RunConfig *base, const char *const *values, int n_runs, int *group);

// The Markdown table over seeds (nothing when no swept key is seed-like): one row per
// setting, its non-seed values, n, and "mean ± sd" of the dense and pruned perplexity, loss
// and accuracy and of the sparsity over its finished runs ("-" for sd with one run).
void sweep_write_seed_table(FILE *md, const RunConfig *base, const char *const *values, int n_runs,
                            cJSON *const *summaries);

#endif
