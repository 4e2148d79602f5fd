// The sizes of a Mamba-1 language model (SPEC §1) and the values derived from them.
#ifndef MP_MAMBA_CONFIG_H
#define MP_MAMBA_CONFIG_H

#include "core/error.h"

// What sits on top of the blocks (docs/DESIGN.md): the tied language-model head, or a
// classification head (pool the positions, then a linear layer to n_classes).
typedef enum MambaHead { MAMBA_HEAD_LM, MAMBA_HEAD_CLASSIFY, MAMBA_HEAD_FORECAST } MambaHead;
typedef enum MambaPool { MAMBA_POOL_MEAN, MAMBA_POOL_LAST } MambaPool;

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
    // Initialisation of dt (SPEC §1).
    float dt_min, dt_max, dt_init_floor;
    MambaHead head;               // lm by default
    int n_classes;                // classify: the number of labels (>= 2)
    MambaPool pool;               // classify: how the positions become one row
    // Derived by mamba_config_finish():
    int d_inner;                  // D = expand * d_model
    int vocab_padded;             // V, vocab_size rounded up to pad_vocab_size_multiple
} MambaConfig;

// The defaults of SPEC §1 for everything but d_model, n_layer and vocab_size.
void mamba_config_defaults(MambaConfig *config);
// Checks ranges and fills the derived fields.
int mamba_config_finish(MambaConfig *config, Error *err);

#endif
