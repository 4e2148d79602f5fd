// The fair reference of a pruning run (docs/DESIGN.md#fair-reference): the dense model
// trained for the same steps with the same schedule, data, seed and evaluation, unpruned
// ("dense fine-tuned"). It is trained once per dense model and configuration, in
// log.dir/references/<key>/, and reused by every pruning run with the same key; the
// pruning run's report then holds it next to "dense before pruning", and its headline
// ratio is pruned / dense fine-tuned.
#ifndef MP_RUN_REFERENCE_H
#define MP_RUN_REFERENCE_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

// The key: FNV-1a (64 bits) over the resolved YAML of every section that shapes the dense
// fine-tuning (model, data, train, optim, eval; not prune, stability, checkpoint, log,
// sweep; model.init not by its path) and over the bytes of model.init (a checkpoint file, or a transformers folder's
// config.json and model.safetensors; nothing for "random", which train.seed covers).
int reference_key(const RunConfig *c, uint64_t *key, Error *err);

// The configuration of the reference run: c with prune.method none.
int reference_config(const RunConfig *c, RunConfig *reference, Error *err);

// After a finished pruning run in run_dir with prune.reference finetuned: finds the
// reference of its key (training it first when it has not finished), adds
// quality.dense_finetuned {val_loss, val_perplexity, val_accuracy, key, run_dir} and
// quality.perplexity_ratio_finetuned to run_dir/report.json and rewrites report.md. Does
// nothing for prune.reference none or prune.method none.
int reference_attach(const RunConfig *c, const char *run_dir, Error *err);

#endif
