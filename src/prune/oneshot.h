// The one-shot pruning methods of docs/DESIGN.md#one-shot-methods (magnitude, wanda, sparsegpt, sparsessm, shedder),
// run block by block on calibration windows of the training split.
#ifndef MP_PRUNE_ONESHOT_H
#define MP_PRUNE_ONESHOT_H

#include <cjson/cJSON.h>

#include "core/error.h"
#include "data/data.h"
#include "mamba/model.h"
#include "prune/masks.h"
#include "prune/options.h"

// The calibration windows are the training batch of this index (data_train_batch with
// nsamples rows of calib_seqlen tokens): fixed by the data's seed, and an
// index that no training run reaches.
#define ONESHOT_CALIB_BATCH 2000000000L

// Prunes model with o->method (one of the one-shot methods) to o->final_sparsity
// of the tensors under masks, with calibration windows from data's training split. On
// return the pruned weights are zero and their masks 0. Structural results (shedder's
// removed blocks, sparsessm's removed state columns) replace *model with the smaller model
// and re-create *masks for it (o->include and o->exclude decide which tensors get a
// mask). report (an object) receives the method's details: timings, per-layer figures,
// the search log.
int oneshot_prune(const PruneOptions *o, const Dataset *data, MambaModel *model, PruneMasks *masks, cJSON *report,
                  Error *err);

// The walk of oneshot_prune for wanda and sparsegpt from given calibration inputs of block
// 0 (nsamples windows of seqlen rows of d_model, e.g. the embedded windows), for checking
// the walk against a reference (tools/ref_prune.py). block_inputs (n_layer, nsamples *
// seqlen, d_model), or NULL, receives the input each block was calibrated on: block 0's
// are the given ones, block i's the outputs of the pruned blocks before it.
int oneshot_prune_inputs(const PruneOptions *o, const float *inputs, int nsamples, int seqlen, MambaModel *model,
                         PruneMasks *masks, float *block_inputs, cJSON *report, Error *err);

#endif
