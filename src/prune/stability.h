// The eigenvalue stability check of docs/DESIGN.md#stability-check. Mamba's state matrix is diagonal, so the
// eigenvalues of channel d, state n at token t are exp(Δ_{t,d} A_{d,n}) with Δ > 0 and
// A = -exp(A_log) < 0; their largest modulus over the calibration tokens is
// m_{d,n} = exp(min_t Δ_{t,d} * A_{d,n}). A mask update that pushes some m past 1 - ε
// (where it was at most 1 - ε before the update) is corrected by giving back the newly
// pruned A_log entry and, where Δ moved, the newly pruned weights of that channel's
// dt_proj row, then pruning as many of the lowest-scored kept weights elsewhere so that
// the counts stay exact.
#ifndef MP_PRUNE_STABILITY_H
#define MP_PRUNE_STABILITY_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "autograd/tensor.h"
#include "core/error.h"
#include "mamba/model.h"
#include "prune/masks.h"

typedef struct StabilityOptions {
    double epsilon;           // the bound is 1 - epsilon
    int batch_size, seqlen;   // the shape of one calibration batch
    int n_batches;            // calibration batches in tokens
    const int32_t *tokens;    // n_batches * batch_size * seqlen calibration tokens
    const float *values;      // a forecasting model (heads.h): n_batches * batch_size * seqlen * n_features
                              // calibration values instead of tokens
} StabilityOptions;

typedef struct StabilityReport {
    int n_layer;
    long *violations;         // per layer: entries pushed past the bound by the update (owned)
    long *corrected;          // per layer: weights given back (A_log entries + dt_proj weights) (owned)
    long corrected_a_log, corrected_dt_proj;
    long rebalanced;          // weights pruned elsewhere to keep the counts exact
    long remaining;           // violations left after the correction (0 unless nothing was left to give back)
    long blocks;              // the cost: blocks run per calibration batch over the call's passes (a whole
                              // pass is n_layer, the last block of a pass only up to Δ)
} StabilityReport;

void stability_report_free(StabilityReport *report);
cJSON *stability_report_json(const StabilityReport *report);

// m_{d,n} of every layer (n_layer * D * N floats, layer-major) for the model as it is.
int stability_measure(MambaModel *model, Tape *tape, const StabilityOptions *options, float *max_eigenvalue,
                      Error *err);

// Checks and corrects one mask update. The model holds the weights under the masks before
// the update (masks->tensors[i].keep); new_keep[i] is the update's mask of tensor i
// (new_keep[i][j] = 0 for every pruned weight, a superset of the old zeros), scores[i]
// the update's scores (higher = more important). group[i] says which tensors share a
// count: a weight given back is paid for by pruning the lowest-scored kept weight of
// the same group (global strategy: one group; layerwise: one per tensor; component: one
// per component). Changes only new_keep; the model is unchanged on return. The caller
// then copies new_keep into the masks and applies them.
int stability_correct(MambaModel *model, Tape *tape, const PruneMasks *masks, uint8_t *const *new_keep,
                      const float *const *scores, const int *group, const StabilityOptions *options,
                      StabilityReport *report, Error *err);

#endif
