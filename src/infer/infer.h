// The inference model: a Mamba-1 language model held for running only, each linear layer
// (in_proj, x_proj, dt_proj, out_proj) as a PackedMatrix in the format the measured rule
// picks, the small tensors (norms, conv, A_log, D, biases) and the tied embedding dense.
// It owns everything it holds and keeps no MambaModel alive. Two ways to run it: the
// recurrent step for a batch of sequences (decode), and the parallel forward over a
// (batch, seqlen) prompt that leaves the recurrent state as after the prompt.
#ifndef MP_INFER_INFER_H
#define MP_INFER_INFER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "mamba/config.h"
#include "mamba/model.h"
#include "prune/masks.h"
#include "sparse/lowp.h"
#include "sparse/packed.h"

// The linear layers of a block, in the order of InferLayer's linear[].
typedef enum InferLinear { INFER_IN_PROJ, INFER_X_PROJ, INFER_DT_PROJ, INFER_OUT_PROJ, INFER_N_LINEARS } InferLinear;

// "in_proj", "x_proj", "dt_proj", "out_proj".
const char *infer_linear_name(InferLinear which);

typedef struct InferLayer {
    float *norm_weight;                 // (d) (owned)
    PackedMatrix linear[INFER_N_LINEARS];  // in_proj (2D, d), x_proj (R+2N, D), dt_proj (D, R), out_proj (d, D)
    float *conv1d_weight;               // (D, K) (owned)
    float *conv1d_bias;                 // (D) (owned)
    float *dt_proj_bias;                // (D) (owned)
    float *A_log;                       // (D, N) (owned)
    float *A;                           // (D, N) = -fast_expf(A_log), as the scan uses it (derived, owned)
    float *D;                           // (D) (owned)
} InferLayer;

typedef struct InferModel {
    MambaConfig config;
    float *embedding;         // (V, d), also the output head (owned); NULL when head_format is not fp32
    LowpFormat head_format;   // LOWP_F32 (the default, exact): embedding; else head holds it
    LowpMatrix head;          // the tied embedding/head in bf16 or int8 (owned), opt-in: changes logits
    float *norm_f_weight;     // (d) (owned)
    InferLayer *layers;       // n_layer of them (owned)
} InferModel;

typedef struct InferOptions {
    bool force_dense;         // every linear PACKED_DENSE, whatever its zeros
} InferOptions;

// Builds model from source: each linear packed from its mask in masks (NULL, or a linear
// without a mask: from its zeros) in the format packed_choose_format picks, or dense with
// force_dense. source's weights should already be masked (prune_masks_apply); weights a
// mask prunes are dropped either way. source is not referenced afterwards (free it).
int infer_model_build(InferModel *model, const MambaModel *source, const PruneMasks *masks,
                      const InferOptions *options, Error *err);
// For a file reader: allocates (zeroed) the dense tensors of a config, with every linear
// empty (format DENSE, rows/cols set, no arrays); fill the linears with
// packed_matrix_alloc + validate, then the dense arrays.
void infer_model_alloc(InferModel *model, const MambaConfig *config);
// For a file reader, once the arrays are filled: derives what the step computes from
// them (A = -exp(A_log), which is otherwise recomputed for every token).
void infer_model_derive(InferModel *model);
void infer_model_free(InferModel *model);
// Holds the tied embedding/head in format (converted from what the model holds, through
// fp32; fp32 back from bf16 is exact, from int8 it is the dequantised values). The fp32
// array is freed, so bf16 halves the head's memory and its bytes read per decode step, int8
// quarters them; both change the logits (docs/SPARSE.md has the measured error).
void infer_model_set_head(InferModel *model, LowpFormat format);
// For a file reader: replaces the zeroed fp32 embedding of infer_model_alloc by zeroed
// arrays of format, to be filled.
void infer_model_alloc_head(InferModel *model, LowpFormat format);
// Checks that every linear has its layer's shape (rows, cols) and arrays; names the
// tensor ("backbone.layers.3.mixer.x_proj.weight") that does not.
int infer_model_check(const InferModel *model, Error *err);

// Per-linear facts for the report of what runs sparse.
typedef struct InferTensorInfo {
    char name[96];            // the transformers name, e.g. "backbone.layers.0.mixer.in_proj.weight"
    PackedFormat format;
    int rows, cols;
    double density;           // stored / rows * cols
    size_t bytes;             // packed_bytes of the matrix
    bool prompt_sparse;       // the prompt forward runs the sparse kernel (else unpack + sgemm)
} InferTensorInfo;
// Fills info[0 .. n_layer * INFER_N_LINEARS) (the caller allocates that many); returns the count.
int infer_model_tensors(const InferModel *model, InferTensorInfo *info);
// Bytes of every array the model holds (what stays resident).
size_t infer_model_bytes(const InferModel *model);

// The recurrent state of up to `capacity` sequences, and the work buffers of one step.
typedef struct InferState {
    int capacity;             // sequences
    float *conv;              // (capacity, n_layer, D, K-1): the last K-1 conv inputs, oldest first (owned)
    float *ssm;               // (capacity, n_layer, D, N) (owned)
    float *scratch;           // work buffers of a step of `capacity` sequences (owned)
} InferState;

void infer_state_create(InferState *state, const MambaConfig *config, int capacity);
// Zeroes the state of every sequence.
void infer_state_reset(InferState *state, const MambaConfig *config);
void infer_state_free(InferState *state);

// One decode step for sequences 0 .. batch-1 (batch <= state->capacity): feeds tokens
// (batch), writes logits (batch, V). Fails on a token outside [0, V) or a batch too large.
int infer_step(const InferModel *model, InferState *state, const int32_t *tokens, int batch, float *logits,
               Error *err);

// The parallel forward over a prompt of tokens (batch, seqlen), starting from an empty
// state: writes logits (batch, V) of each sequence's last position, or (batch * seqlen, V)
// of every position when all_positions, and leaves the state of sequences 0 .. batch-1 as
// after the prompt, so that infer_step continues it. batch <= state->capacity.
int infer_prompt(const InferModel *model, InferState *state, const int32_t *tokens, int batch, int seqlen,
                 float *logits, bool all_positions, Error *err);

#endif
