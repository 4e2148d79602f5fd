// Mamba-Shedder (docs/DESIGN.md#one-shot-methods, last bullet): greedy structural removal of whole residual
// blocks, or of only the SSMs of blocks, scored by calibration perplexity (a forecaster: MSE); then the
// extraction of the result as a model in the standard parameter set.
//
// The search never writes the model: a removed block is left out of a shallow view of
// the model (a layers array of the kept MambaLayer structs, sharing their data), and a
// removed SSM is a layer struct whose x_proj and D point at substitute buffers. Only
// the forward is run (no tape recording, no backward).
#ifndef MP_PRUNE_SHEDDER_H
#define MP_PRUNE_SHEDDER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/error.h"
#include "mamba/model.h"

typedef enum ShedderTarget {
    SHEDDER_BLOCK,            // a candidate is a whole residual block x + mixer(rmsnorm(x))
    SHEDDER_SSM,              // a candidate is a block's SSM (steps 3-6 of docs/DESIGN.md#model): y = x instead
} ShedderTarget;

typedef struct ShedderOptions {
    int steps;                // removals: 1 <= steps < n_layer (the number of candidates)
    ShedderTarget target;
    int batch;                // calibration sequences per forward, >= 1
} ShedderOptions;

// One chosen removal.
typedef struct ShedderRemoval {
    int layer;                // index in the model given to shedder_search (not renumbered)
    double score;             // calibration perplexity with this and every earlier removal
                              // (shedder_search_values: the calibration MSE)
    double seconds;           // wall time of this step's search over all remaining candidates
} ShedderRemoval;

// Greedy search on the calibration sequences tokens/targets (nsamples x seqlen, row-major;
// a target < 0 is ignored; tokens and targets >= 0 must be < the model's vocab_padded).
// Step s (1..steps) evaluates, in turn, each remaining candidate removed on top of the
// removals of steps 1..s-1, computes the calibration perplexity exp(Σ NLL / Σ tokens) in
// forwards of options->batch sequences (the last one may be shorter), and removes the
// candidate with the lowest perplexity; ties go to the lowest layer, and a non-finite
// perplexity never wins (an error if every candidate's is non-finite). Fills
// removals[0 .. steps-1] in the order chosen.
//
// If search_log is not NULL (a cJSON array), appends to it, in this order:
//   {"step": 0, "dense_perplexity": p}                   the model with nothing removed
//   {"step": s, "layer": l, "perplexity": p}             each candidate evaluated at step s
//   {"step": s, "removed": l, "perplexity": p}           the candidate chosen at step s
// (a non-finite perplexity is written as null, cJSON's rendering of NaN and infinity).
//
// Errors name the key of the value at fault: prune.shedder_steps, prune.nsamples,
// prune.calib_seqlen, or "shedder: batch". The model's weights are never written, so
// they are unchanged on return, error or not.
int shedder_search(MambaModel *model, const int32_t *tokens, const int32_t *targets, int nsamples, int seqlen,
                   const ShedderOptions *options, ShedderRemoval *removals, cJSON *search_log, Error *err);

// The same search for a forecaster (model.head forecast, heads.h) on its calibration
// windows: values (nsamples, seqlen, F) and the values to predict future (nsamples, H, F),
// row-major. A removal is scored by the mean squared error over every predicted value
// (mamba_forward_values), lower is better, with the same ties and non-finite rule; the log
// is as above with "mse" for "perplexity" ("dense_mse" at step 0).
int shedder_search_values(MambaModel *model, const float *values, const float *future, int nsamples, int seqlen,
                          const ShedderOptions *options, ShedderRemoval *removals, cJSON *search_log, Error *err);

// The result of a search, extracted into *out (a new model the caller frees with
// mamba_model_free; untouched on error). removals[0 .. steps-1] name distinct layers of
// model, 1 <= steps < n_layer.
//
// SHEDDER_BLOCK: out has n_layer - steps layers, the kept ones in their order, renumbered
//   0.. (parameter names backbone.layers.{i}.* follow the new index), and every parameter
//   of the model outside the blocks (embedding or a forecaster's input_proj.* and revin.*,
//   norm_f, head.*).
// SHEDDER_SSM: out is a copy of the model in which each removed layer's mixer computes
//   y = x ⊙ silu(z) instead of the scan. That is written exactly in the standard parameter
//   set, so that checkpoints and transformers exports need nothing new: the layer's C rows
//   of x_proj (rows R+N .. R+2N-1) are zeroed, so y_t = h_t C_t + D ⊙ x_t = D ⊙ x_t, and
//   its D is set to 1. The layer's other SSM parameters (δ and B rows of x_proj, dt_proj,
//   A_log) are kept as they were: they no longer affect the output, and the scan is still
//   computed, so the parameter count and the compute do not drop.
int shedder_extract(const MambaModel *model, ShedderTarget target, const ShedderRemoval *removals, int steps,
                    MambaModel *out, Error *err);

#endif
