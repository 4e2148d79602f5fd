// The sizes of a Mamba-1 language model (docs/DESIGN.md#model) and the values derived from them.
#ifndef MP_MAMBA_CONFIG_H
#define MP_MAMBA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

// What sits on top of the blocks (docs/DESIGN.md#task-heads): the tied language-model head, a
// classification head (pool the positions, then a linear layer to n_classes), a forecasting
// head (series values in through a linear input projection, the last position out to
// horizon x n_features values), or DLinear, the linear forecasting baseline, which has no
// Mamba blocks at all (n_layer 0).
typedef enum MambaHead { MAMBA_HEAD_LM, MAMBA_HEAD_CLASSIFY, MAMBA_HEAD_FORECAST, MAMBA_HEAD_DLINEAR } MambaHead;

// DLinear's moving-average window (Zeng et al. 2023, "Are Transformers Effective for Time
// Series Forecasting?"): 25 steps, the ends padded by repeating the first and last value.
#define MAMBA_DLINEAR_KERNEL 25

// Whether the head reads series values (forecast, dlinear) instead of token ids.
static inline int mamba_head_reads_values(MambaHead head) {
    return head == MAMBA_HEAD_FORECAST || head == MAMBA_HEAD_DLINEAR;
}
typedef enum MambaPool { MAMBA_POOL_MEAN, MAMBA_POOL_LAST } MambaPool;

// The forecast head's per-window normalisation (docs/DESIGN.md#forecasting): none; RevIN
// (Kim et al., ICLR 2022: each input window minus its per-feature mean, over its std, the
// forecast mapped back), RevIN with a learnable affine per feature ("revin.weight",
// "revin.bias"), or NLinear's subtraction of the window's last value (added back after).
typedef enum MambaWindowNorm {
    MAMBA_WINDOW_NONE,
    MAMBA_WINDOW_REVIN,
    MAMBA_WINDOW_REVIN_AFFINE,
    MAMBA_WINDOW_LAST
} MambaWindowNorm;
// RevIN's epsilon: added to the variance, and its square to the affine weight it divides by.
#define MAMBA_REVIN_EPS 1e-5f

typedef struct MambaConfig {
    int d_model;                  // d
    int n_layer;
    int vocab_size;               // as given (e.g. 256 for bytes)
    int pad_vocab_size_multiple;  // the embedding has vocab_padded rows
    int d_state;                  // N
    int d_conv;                   // K
    int expand;
    int dt_rank;                  // R; 0 means ceil(d_model / 16)
    float norm_eps;               // rmsnorm epsilon, 1e-5
    // Initialisation of dt (docs/DESIGN.md#model).
    float dt_min, dt_max, dt_init_floor;
    MambaHead head;               // lm by default
    int n_classes;                // classify: the number of labels (>= 2)
    MambaPool pool;               // classify: how the positions become one row
    int n_features;               // forecast, dlinear: values per time step, in and out (F)
    int horizon;                  // forecast, dlinear: time steps predicted (H)
    int input_len;                // dlinear: time steps of the input window (its maps are H x input_len)
    MambaWindowNorm window_norm;  // forecast: none by default
    // Derived by mamba_config_finish():
    int d_inner;                  // D = expand * d_model
    int vocab_padded;             // V, vocab_size rounded up to pad_vocab_size_multiple
} MambaConfig;

// The defaults of docs/DESIGN.md#model for everything but d_model, n_layer and vocab_size.
void mamba_config_defaults(MambaConfig *config);
// Checks ranges and fills the derived fields. Every derived size is computed in 64 bits
// and refused (naming the model.* keys) unless each tensor of the model, and each row
// count, fits the int of a tensor's shape: no size ever wraps.
int mamba_config_finish(MambaConfig *config, Error *err);

// Estimates, for refusing up front a model or a batch that cannot fit in memory. They
// need a finished config. Parameters: the exact count of the model's floats.
int64_t mamba_config_param_count(const MambaConfig *config);
// Bytes of a model (weights and their gradients) that is only evaluated.
uint64_t mamba_model_bytes(const MambaConfig *config);
// Bytes of training: the model, AdamW's two moments, and the activations that the tape
// keeps for the backward of a (batch, seqlen) step. An estimate from the shapes of the
// forward (d_model 256, 4 layers, 8 x 256 tokens: 0.40 GB estimated, 0.46 GB peak RSS
// measured with the libraries and the tape's first block). recompute: train.recompute's
// activations (each block's output, and one block's activations at a time).
uint64_t mamba_train_bytes(const MambaConfig *config, int64_t batch, int64_t seqlen, bool recompute);
// Bytes of evaluation: the model and the activations of a (batch, seqlen) forward.
uint64_t mamba_eval_bytes(const MambaConfig *config, int64_t batch, int64_t seqlen);
// 0 if bytes <= limit_bytes; else -1 and "what needs about X GB (keys), more than the
// Y GB ..." with the keys the size comes from and how to override the limit.
int mamba_check_memory(uint64_t bytes, uint64_t limit_bytes, const char *what, const char *keys,
                       const char *override_hint, Error *err);

#endif
