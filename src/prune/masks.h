// Pruning masks (docs/DESIGN.md#iterative-pruning): a mask is a property of a tensor. Each prunable parameter gets a
// byte per weight, 1 = kept and 0 = pruned (the layout of the checkpoint's /masks), and
// applying the masks sets the pruned weights, and their AdamW moments, to exactly zero.
// Every method, iterative or one-shot, produces its result as a PruneMasks.
#ifndef MP_PRUNE_MASKS_H
#define MP_PRUNE_MASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "io/checkpoint.h"
#include "mamba/model.h"
#include "optim/adamw.h"

// The parts of a mixer that the reports count separately (docs/DESIGN.md#evaluation).
typedef enum PruneComponent {
    PRUNE_IN_PROJ,
    PRUNE_CONV1D,
    PRUNE_X_PROJ,
    PRUNE_DT_PROJ,
    PRUNE_A_LOG,
    PRUNE_OUT_PROJ,
    PRUNE_OTHER,              // norms, biases, D, the embedding
    PRUNE_N_COMPONENTS,
} PruneComponent;

// "in_proj", "conv1d", "x_proj", "dt_proj", "A_log", "out_proj", "other".
const char *prune_component_name(PruneComponent component);
// The component of a parameter name, and its layer (-1 outside the layers). Biases of
// conv1d and dt_proj are PRUNE_OTHER: the components count weight matrices and A_log.
PruneComponent prune_component_of(const char *name, int *layer);

typedef struct MaskedTensor {
    const char *name;         // the model's parameter name (not owned)
    Tensor *tensor;           // the parameter (not owned)
    uint8_t *keep;            // tensor->size bytes, 1 = kept, 0 = pruned (owned)
    int layer;
    PruneComponent component;
} MaskedTensor;

typedef struct PruneMasks {
    MaskedTensor *tensors;    // n of them, in the model's parameter order
    int n;
    size_t total;             // weights under a mask
} PruneMasks;

// A mask, all kept, for each parameter i of the model with prunable[i].
void prune_masks_create(PruneMasks *masks, MambaModel *model, const bool *prunable);
void prune_masks_free(PruneMasks *masks);
// The mask of a parameter, or NULL.
MaskedTensor *prune_masks_find(PruneMasks *masks, const char *name);

size_t prune_masks_pruned(const PruneMasks *masks);
double prune_masks_sparsity(const PruneMasks *masks);     // pruned / total, 0 when total is 0

// Zeroes every pruned weight and, when optimizer is not NULL, its AdamW moments, so that
// nothing comes back to life at the next step.
void prune_masks_apply(const PruneMasks *masks, AdamW *optimizer);

// Fills views[0 .. masks->n) for checkpoint_save / checkpoint_load (pointing at the masks).
void prune_masks_checkpoint_views(const PruneMasks *masks, CheckpointMask *views);
// Sets every mask from the weights that are exactly zero (a model pruned elsewhere, then
// loaded without its masks).
void prune_masks_from_zeros(PruneMasks *masks);

// The sparsity table of docs/DESIGN.md#evaluation over the whole model, per component and per layer (each
// layer's mixer weight matrices and A_log), plus the masks' own total. A tensor under a
// mask counts its masked weights: a weight that is merely zero is not pruned (A_log's
// first state column starts at log 1 = 0, which is A = -1, not a pruned entry). A tensor
// under no mask counts its zeros, which is what structural removal leaves (the
// shedder's removed SSMs have zero C rows).
//
// {"sparsity": s, "pruned": n, "prunable": n,
//  "components": {"in_proj": {"sparsity": s, "pruned": n, "total": n}, ...},
//  "layers": [{"layer": 0, "sparsity": s, "in_proj": s, ...}, ...]}
cJSON *prune_sparsity_report(const MambaModel *model, const PruneMasks *masks);
// The same as a Markdown table: one row per layer, one column per component, and a total row.
void prune_sparsity_markdown(const cJSON *report, FILE *out);

#endif
